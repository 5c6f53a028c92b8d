//! A user page fault that finds no free frame: Linux's out-of-memory
//! killer, in small. The faulting thread first gives back the page
//! cache's clean, unused pages (`/proc/sys/vm/drop_caches`' work) and
//! retries its access. When that frees nothing, the process with the most
//! resident pages (never init) is killed with SIGKILL, together with every
//! process sharing its address space, and the faulting thread sleeps until
//! that space is gone and torn down (its frames back in the pool), then
//! retries. A victim
//! already on its way out is waited for, not joined by a second one. Only
//! when nothing can be killed, or when frames are not short at all (the
//! kernel heap refused, e.g. an injected `failslab` failure), does the
//! faulting thread get SIGBUS.
//!
//! Without this the thread that happened to fault got SIGBUS: a child that
//! had locked all memory (`mlockall` of a huge heap) left its parent
//! unable to write its own stack after `fork` (a copy-on-write fault) and
//! the parent, not the hog, died.

use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicU64, Ordering};

use aspen_abi::signal::{SigInfo, SigNo, Signal, SI_KERNEL};

use super::{Process, SharedSpace};
use crate::arch::timer;
use crate::task::sched;

/// Free frames above the reserve below which a fault's failure is taken
/// for a shortage of frames: a fault needs a page and at most three table
/// pages, the heap's growth a few more.
const SHORTAGE_MARGIN: usize = 64;

/// How long a faulting thread waits for a killed process's memory at most.
const WAIT_MS: u64 = 1_000;
/// How often it looks.
const WAIT_STEP_MS: u64 = 2;

/// Processes killed so far (`oom_kill` of /proc/vmstat, as Linux's).
static KILLS: AtomicU64 = AtomicU64::new(0);

/// Processes the OOM killer has killed since boot.
pub fn kills() -> u64 {
    KILLS.load(Ordering::Relaxed)
}

/// What the faulting thread does next.
pub enum Outcome {
    /// Memory was given back (or is on its way): retry the access.
    Retry,
    /// Nothing could be freed: the thread takes its fault signal.
    Unresolved,
}

/// The largest user of memory, with its resident pages.
struct Candidate {
    process: Arc<Process>,
    space: SharedSpace,
    pages: usize,
    ending: bool,
}

/// Frees memory for the current thread's fault that found none.
pub fn out_of_memory() -> Outcome {
    let pool = crate::memory::frames::pool();
    if pool.free_frame_count() > pool.reserved_frame_count() + SHORTAGE_MARGIN {
        // Frames are there: the kernel heap said no (fragmentation, or an
        // injected failure, `failslab`). Killing would free nothing it needs.
        return Outcome::Unresolved;
    }
    let dropped = crate::files::vfs().drop_clean_caches();
    if dropped > 0 {
        log::info!("out of memory: dropped {dropped} clean page-cache pages");
        return Outcome::Retry;
    }
    let Some(victim) = largest() else { return Outcome::Unresolved };
    let me = super::current_process();
    if !victim.ending {
        log::warn!(
            "out of memory: killing pid {} ({} resident pages) for a fault of pid {}",
            victim.process.pid,
            victim.pages,
            me.pid
        );
        let kill = SigNo::from(Signal::Kill);
        for process in Process::walk(|_| true) {
            let shares = process.space.lock().as_ref().is_some_and(|s| Arc::ptr_eq(s, &victim.space));
            if shares {
                let _ = process.send(kill, SigInfo::from_process(kill, SI_KERNEL, 0));
                KILLS.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if Arc::ptr_eq(&victim.process, &me) || me.is_dying() {
        // The way back to user space ends this thread.
        return Outcome::Retry;
    }
    let space: Weak<_> = Arc::downgrade(&victim.space);
    drop(victim);
    let step = timer::frequency() / 1000 * WAIT_STEP_MS;
    for _ in 0..WAIT_MS / WAIT_STEP_MS {
        // No reference left is not enough: the teardown pauses (and lets
        // other cores in) before its frames are back, and a retry then
        // would find memory short still and kill again (this thread's own
        // process, the largest left).
        if space.strong_count() == 0 && !super::spaces_ending() {
            break;
        }
        sched::sleep_ticks(step);
    }
    Outcome::Retry
}

/// The process whose address space holds the most resident pages, init
/// aside; `None` when no process holds any.
fn largest() -> Option<Candidate> {
    let mut best: Option<Candidate> = None;
    for process in Process::walk(|p| p.pid > 1) {
        let Some(space) = process.space.lock().clone() else { continue };
        let pages = space.lock().resident_count();
        if pages > best.as_ref().map_or(0, |b| b.pages) {
            let ending = process.is_dying();
            best = Some(Candidate { process, space, pages, ending });
        }
    }
    best
}
