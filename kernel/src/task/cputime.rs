//! Where CPU time goes: each task's time at EL0 (user) and in the kernel
//! (system), the CPU's idle time, and context switches, in counter ticks.
//! The counter is read where the CPU changes hands: on a trap from EL0
//! (user time ends), on the return to EL0 (system time ends) and at a task
//! switch (the previous task's system time, or the idle time, ends).
//! Everything between two reads goes to whoever held the CPU.
//!
//! One CPU, and these run with IRQs masked: the per-CPU mark and each
//! running task's counters have one writer, so plain loads and stores do.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{sched, Task};
use crate::arch::timer;

/// The counter at the last hand-over on this CPU.
static MARK: AtomicU64 = AtomicU64::new(0);

/// The CPU's totals since boot, as `/proc/stat` reports them.
pub struct Totals {
    pub user: AtomicU64,
    pub system: AtomicU64,
    pub idle: AtomicU64,
    /// Task switches (`ctxt`).
    pub switches: AtomicU64,
}

pub static TOTALS: Totals =
    Totals { user: AtomicU64::new(0), system: AtomicU64::new(0), idle: AtomicU64::new(0), switches: AtomicU64::new(0) };

/// A task's CPU time and switches.
#[derive(Default)]
pub struct TaskTimes {
    pub user: AtomicU64,
    pub system: AtomicU64,
    /// Switches away while it blocked.
    pub voluntary: AtomicU64,
    /// Switches away while it could have run on (preempted, yielded).
    pub involuntary: AtomicU64,
}

fn add(counter: &AtomicU64, ticks: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(ticks), Ordering::Relaxed);
}

/// Ticks since the last hand-over, and a new mark.
fn elapsed() -> u64 {
    let now = timer::ticks();
    now.saturating_sub(MARK.swap(now, Ordering::Relaxed))
}

/// A trap from EL0: the running task's user time ends here.
#[inline]
pub fn entered_kernel() {
    let ticks = elapsed();
    sched::with_current(|task| add(&task.times.user, ticks));
    add(&TOTALS.user, ticks);
}

/// The return to EL0: the running task's system time ends here.
#[inline]
pub fn leaving_kernel() {
    let ticks = elapsed();
    sched::with_current(|task| add(&task.times.system, ticks));
    add(&TOTALS.system, ticks);
}

/// A switch away from `prev` (the idle task when `idle`), which `blocked`
/// or could have run on.
pub(super) fn switched_from(prev: &Task, idle: bool, blocked: bool) {
    let ticks = elapsed();
    if idle {
        add(&TOTALS.idle, ticks);
    } else {
        add(&prev.times.system, ticks);
        add(&TOTALS.system, ticks);
        add(if blocked { &prev.times.voluntary } else { &prev.times.involuntary }, 1);
    }
    add(&TOTALS.switches, 1);
}
