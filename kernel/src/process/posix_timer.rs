//! POSIX per-process timers: `timer_create`, `timer_settime`,
//! `timer_gettime`, `timer_getoverrun`, `timer_delete`, on the kernel's
//! timer queue (as `ITIMER_REAL`). A timer follows the real-time,
//! monotonic or boot-time clock (one counter here), signals its process
//! (`SIGEV_SIGNAL`, and glibc's `SIGEV_THREAD`), one of its threads
//! (`SIGEV_THREAD_ID`) or nobody (`SIGEV_NONE`), with `SI_TIMER`, its id
//! and its `sigev_value`. As Linux's, a periodic timer is armed again when
//! its signal is taken (delivered, or waited for with `sigtimedwait`), not
//! when it expires: the periods that passed in between are the signal's
//! `si_overrun` and `timer_getoverrun`'s answer, and a timer whose signal
//! stays blocked costs nothing. A periodic timer whose signal is ignored
//! reloads itself at once, but no faster than every 4 ms (Linux's tick at
//! `HZ=250`), so a tiny interval cannot flood the CPU with interrupts. A
//! `SIGEV_NONE` timer is never armed: its setting is computed when read.
//! Timers are not inherited by `fork` and end at `execve` and exit.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use aspen_abi::signal::SigInfo;
use aspen_abi::syscall::{ClockId, Timespec};
use aspen_abi::timer::{Itimerspec, Notify, SigEvent, TIMER_ABSTIME};
use aspen_mm::errno::Errno;

use super::Process;
use crate::arch::timer;
use crate::task::timer::{Expiry, Slot, TimerId};

/// The most timers a process may have (Linux bounds them by
/// `RLIMIT_SIGPENDING`: `EAGAIN`).
const MAX_TIMERS: usize = 1024;
/// Heap a timer's insert into its process's map may take: a B-tree node
/// (under 1 KiB) per level, six levels for `MAX_TIMERS`.
const TIMERS_INSERT_BOUND: usize = 6 * 1024;

struct PosixTimer {
    event: SigEvent,
    /// Its next expiry (`SIGEV_NONE`: its first).
    deadline: Option<u64>,
    /// Its place on the timer queue (armed for `deadline` unless
    /// `SIGEV_NONE`).
    slot: Slot,
    /// Reload interval in counter ticks (0: once).
    interval: u64,
    /// The expiry whose signal is sent and not yet taken (then it waits
    /// to be armed again).
    signalled: Option<u64>,
    /// Periods that passed between its last expiry and the taking of its
    /// signal.
    overrun: i32,
}

/// The least time between two expiries of a periodic timer whose signal is
/// ignored (4 ms).
fn ignored_reload_ticks() -> u64 {
    timer::frequency() / 250
}

/// A process's timers by id.
#[derive(Default)]
pub struct Timers {
    timers: BTreeMap<i32, PosixTimer>,
    next_id: i32,
}

fn ticks_of(time: Timespec) -> u64 {
    time.to_ticks(core::num::NonZeroU64::new(timer::frequency()).unwrap_or(core::num::NonZeroU64::MIN))
        .unwrap_or(u64::MAX)
}

fn timespec_of(ticks: u64) -> Timespec {
    Timespec::from_ticks(ticks, core::num::NonZeroU64::new(timer::frequency()).unwrap_or(core::num::NonZeroU64::MIN))
}

impl PosixTimer {
    fn disarm(&mut self) {
        self.slot.disarm();
        self.deadline = None;
        self.signalled = None;
    }

    /// Arms it for `deadline` (`SIGEV_NONE`: only noted).
    fn arm(&mut self, process: &Arc<Process>, deadline: u64) {
        self.deadline = Some(deadline);
        if self.event.notify != Notify::None {
            let target: Arc<dyn Expiry> = process.clone();
            self.slot.arm(deadline, &target);
        }
    }

    /// The first expiry after `now` of a periodic timer last due at
    /// `deadline`, and how many periods passed since then.
    fn next_after(&self, deadline: u64, now: u64) -> Option<(u64, u64)> {
        let missed = now.saturating_sub(deadline).checked_div(self.interval)?;
        Some((deadline.saturating_add((missed + 1).saturating_mul(self.interval)), missed))
    }

    fn setting(&self, now: u64) -> Itimerspec {
        let next = match (self.deadline, self.event.notify) {
            // Never armed: a periodic one's next expiry, a one-shot's if
            // still ahead.
            (Some(deadline), Notify::None) if deadline <= now => self.next_after(deadline, now).map(|(next, _)| next),
            (deadline, _) if self.signalled.is_none() => deadline,
            // Expired, its signal not yet taken: due again now.
            _ => self.signalled.filter(|_| self.interval != 0).map(|_| now),
        };
        // An armed timer never shows zero left.
        let value = next.map_or(Timespec::default(), |next| timespec_of(next.saturating_sub(now).max(1)));
        Itimerspec { interval: timespec_of(self.interval), value }
    }
}

/// `timer_create(clock, event)`: the new timer's id. No event: `SIGALRM`
/// to the process with the id as its value. `EAGAIN` (Linux's error for
/// its allocation failing) when the heap has no room for it.
pub fn create(process: &Arc<Process>, clock: i32, event: Option<SigEvent>) -> Result<i32, Errno> {
    match ClockId::from_raw(clock)? {
        ClockId::Realtime | ClockId::Monotonic | ClockId::Boottime => {}
        // No per-process CPU time accounting yet; the others Linux refuses too.
        _ => return Err(Errno::EINVAL),
    }
    if let Some(SigEvent { notify: Notify::Thread(_, tid), .. }) = event {
        if !process.threads.lock().contains_key(&tid) {
            return Err(Errno::EINVAL);
        }
    }
    let mut timers = process.posix_timers.lock();
    if timers.timers.len() >= MAX_TIMERS {
        return Err(Errno::EAGAIN);
    }
    let id = timers.next_id;
    let next_id = id.checked_add(1).ok_or(Errno::EAGAIN)?;
    let alarm = aspen_abi::signal::Signal::Alrm.into();
    let event = event.unwrap_or(SigEvent { value: id as u64, notify: Notify::Process(alarm) });
    let slot = Slot::new().map_err(|_| Errno::EAGAIN)?;
    // A B-tree insert: a node per level at most.
    let _preload = crate::heap::preload(TIMERS_INSERT_BOUND).map_err(|_| Errno::EAGAIN)?;
    timers.next_id = next_id;
    timers.timers.insert(id, PosixTimer { event, deadline: None, slot, interval: 0, signalled: None, overrun: 0 });
    Ok(id)
}

/// `timer_settime(id, flags, new)`: the previous setting.
pub fn settime(process: &Arc<Process>, id: i32, flags: u64, new: Itimerspec) -> Result<Itimerspec, Errno> {
    let now = timer::ticks();
    let mut timers = process.posix_timers.lock();
    let timer = timers.timers.get_mut(&id).ok_or(Errno::EINVAL)?;
    let old = timer.setting(now);
    timer.disarm();
    timer.interval = ticks_of(new.interval);
    timer.overrun = 0;
    if new.value != Timespec::default() {
        let value = ticks_of(new.value);
        // Every clock counts from reset, so an absolute time is a counter value.
        let deadline = if flags & TIMER_ABSTIME != 0 { value } else { now.saturating_add(value) };
        timer.arm(process, deadline);
    }
    Ok(old)
}

/// `timer_gettime(id)`.
pub fn gettime(process: &Process, id: i32) -> Result<Itimerspec, Errno> {
    let timers = process.posix_timers.lock();
    Ok(timers.timers.get(&id).ok_or(Errno::EINVAL)?.setting(timer::ticks()))
}

/// `timer_getoverrun(id)`.
pub fn getoverrun(process: &Process, id: i32) -> Result<i32, Errno> {
    Ok(process.posix_timers.lock().timers.get(&id).ok_or(Errno::EINVAL)?.overrun)
}

/// `timer_delete(id)`.
pub fn delete(process: &Process, id: i32) -> Result<(), Errno> {
    let mut timer = process.posix_timers.lock().timers.remove(&id).ok_or(Errno::EINVAL)?;
    timer.disarm();
    Ok(())
}

/// Deletes every timer (at `execve` and exit).
pub fn release_all(process: &Process) {
    let timers = core::mem::take(&mut process.posix_timers.lock().timers);
    for (_, mut timer) in timers {
        timer.disarm();
    }
}

/// The timer queue's entry `id` expired at `now`: whether it was one of
/// `process`'s timers (then it has signalled).
pub fn expired(process: &Arc<Process>, id: TimerId, now: u64) -> bool {
    let mut timers = process.posix_timers.lock();
    let Some((&timer_id, timer)) =
        timers.timers.iter_mut().find(|(_, t)| t.slot.armed().is_some_and(|(_, armed)| armed == id))
    else {
        return false;
    };
    timer.slot.take_expired(id);
    let Some(deadline) = timer.deadline.take() else { return true };
    let (event, signo) = match timer.event.notify {
        Notify::None => return true,
        Notify::Process(signo) | Notify::Thread(signo, _) => (timer.event, signo),
    };
    let ignored = process.actions().lock().get(signo).ignores(signo);
    if ignored {
        // No signal will be taken to arm it again: it reloads itself.
        if let Some((next, _)) = timer.next_after(deadline, now) {
            timer.arm(process, next.max(now.saturating_add(ignored_reload_ticks())));
        }
        return true;
    }
    timer.signalled = Some(deadline);
    drop(timers);
    let info = SigInfo::timer(signo, timer_id, 0, event.value);
    // A thread or process that ended in the meantime takes no signal.
    let _ = match event.notify {
        Notify::Thread(_, tid) => match process.threads.lock().get(&tid).cloned() {
            Some(thread) => thread.send(signo, info),
            None => Ok(()),
        },
        _ => process.send(signo, info),
    };
    true
}

/// A timer's signal `info` is being taken: a periodic timer is armed for
/// its next period, and the periods that passed since the expiry go into
/// `info` as its overrun (Linux's `posixtimer_rearm`).
pub fn signal_taken(process: &Arc<Process>, info: &mut SigInfo) {
    let timer_id = info.fields[0] as u32 as i32;
    let mut timers = process.posix_timers.lock();
    let Some(timer) = timers.timers.get_mut(&timer_id) else { return };
    let Some(deadline) = timer.signalled.take() else { return };
    let now = timer::ticks();
    timer.overrun = 0;
    if let Some((next, missed)) = timer.next_after(deadline, now) {
        timer.overrun = i32::try_from(missed).unwrap_or(i32::MAX);
        timer.arm(process, next);
    }
    info.fields[0] = timer_id as u32 as u64 | (timer.overrun as u32 as u64) << 32;
}
