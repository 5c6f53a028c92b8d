//! `ppoll` and `pselect6`: which of a set of descriptors are ready,
//! waiting until one is, the deadline passes or the thread is interrupted
//! (Linux's fs/select.c).
//!
//! What each kind of description is ready for: the console is writable
//! always and readable as its line discipline says ([`tty::readable`]); regular files and `/proc`
//! files are always readable and writable (Linux's `DEFAULT_POLLMASK`);
//! pipes as [`crate::pipe`] says. A wait sleeps on the wait queues of the
//! pipes and the console it watches.

use alloc::collections::TryReserveError;
use alloc::sync::Arc;
use alloc::vec::Vec;

use aspen_abi::poll::{PollEvents, PollFd, SelectReady};
use aspen_abi::signal::Restart;
use aspen_mm::errno::Errno;

use crate::arch::timer;
use crate::process::fd::{Description, OpenDescription};
use crate::process::thread;
use crate::task::wait::{self, WaitQueue};
use crate::tty;

/// The events `description` is ready for now.
fn ready(description: &OpenDescription) -> PollEvents {
    match &description.kind {
        Description::Console(_) if tty::readable() => PollEvents::READABLE | PollEvents::WRITABLE,
        Description::Console(_) => PollEvents::WRITABLE,
        Description::File(_) | Description::Snapshot(_) | Description::Device(..) => PollEvents::ALWAYS_READY,
        Description::PipeRead(reader) => reader.poll(),
        Description::PipeWrite(writer) => writer.poll(),
    }
}

/// The queue that wakes a waiter when `description`'s readiness changes;
/// `None` for what has no such queue.
fn queue(description: &OpenDescription) -> Option<&WaitQueue> {
    match &description.kind {
        Description::PipeRead(reader) => Some(reader.events()),
        Description::PipeWrite(writer) => Some(writer.events()),
        Description::Console(_) => Some(tty::readers()),
        Description::File(_) | Description::Snapshot(_) | Description::Device(..) => None,
    }
}

/// `poll`: looks at `entries` until one reports an event, `deadline`
/// (counter ticks; `None`: no deadline) passes, or the thread is
/// interrupted. Returns each entry's `revents` and the number of entries
/// with a nonzero one, or `EINTR` (with the `revents` of the last look).
pub fn poll(entries: &[PollFd], deadline: Option<u64>) -> (Vec<PollEvents>, Result<usize, Errno>) {
    watch(entries, deadline, |_, revents| usize::from(!revents.is_empty()))
}

/// `select`: as [`poll`], for entries whose events say which sets they are
/// in ([`SelectReady::requested`]); ready means some set bit to report, and
/// the count is of set bits.
pub fn select(entries: &[PollFd], deadline: Option<u64>) -> (Vec<PollEvents>, Result<usize, Errno>) {
    watch(entries, deadline, |entry, revents| SelectReady::from_events(entry.events, revents).count())
}

/// Looks at `entries` until `score` (of an entry and its `revents`) sums
/// to more than 0, the deadline passes or the thread is interrupted.
fn watch(
    entries: &[PollFd],
    deadline: Option<u64>,
    score: impl Fn(&PollFd, PollEvents) -> usize,
) -> (Vec<PollEvents>, Result<usize, Errno>) {
    // The buffers are made fallibly before the first look: no room is
    // ENOMEM with nothing done, as Linux's poll.
    let buffers = (|| {
        let mut descriptions: Vec<Option<Arc<OpenDescription>>> = Vec::new();
        descriptions.try_reserve_exact(entries.len())?;
        Ok((filled(PollEvents::empty(), entries.len())?, descriptions))
    })();
    let Ok((mut revents, mut descriptions)) = buffers.map_err(|_: TryReserveError| Errno::ENOMEM) else {
        return (Vec::new(), Err(Errno::ENOMEM));
    };
    loop {
        // Descriptors are looked up at every look: another thread may close
        // or replace one meanwhile, as in Linux.
        descriptions.clear();
        descriptions.extend(entries.iter().map(|entry| {
            let fd = u64::try_from(entry.fd).ok()?;
            thread::with_current(|t| t.process.with_files(|f| f.get(fd).ok())).ok().flatten()
        }));
        let mut count = 0;
        for ((entry, description), out) in entries.iter().zip(&descriptions).zip(&mut revents) {
            *out = match description {
                _ if entry.fd < 0 => PollEvents::empty(),
                None => PollEvents::NVAL,
                Some(description) => PollEvents::reported(ready(description), entry.events),
            };
            count += score(entry, *out);
        }
        let now = timer::ticks();
        if count > 0 || deadline.is_some_and(|d| now >= d) {
            return (revents, Ok(count));
        }
        if thread::with_current(|t| t.interrupted()) {
            // Restarted when no handler runs, as Linux's (the time left
            // is written back first); EINTR after a handler.
            return (revents, Err(Restart::NoHand.errno()));
        }
        // One queue per entry at most; no room: ENOMEM after a look that
        // changed nothing.
        let mut queues: Vec<&WaitQueue> = Vec::new();
        if queues.try_reserve_exact(entries.len()).is_err() {
            return (revents, Err(Errno::ENOMEM));
        }
        queues.extend(descriptions.iter().flatten().filter_map(|d| queue(d)));
        wait::wait_any(&queues, deadline);
    }
}

/// `len` copies of `value`, or the allocation error (nothing allocated).
pub fn filled<T: Clone>(value: T, len: usize) -> Result<Vec<T>, TryReserveError> {
    let mut out = Vec::new();
    out.try_reserve_exact(len)?;
    out.resize(len, value);
    Ok(out)
}
