//! Where CPU time goes: each task's time at EL0 (user) and in the kernel
//! (system), the CPU's idle time, and context switches, in counter ticks.
//! The counter is read where the CPU changes hands: on a trap from EL0
//! (user time ends), on the return to EL0 (system time ends) and at a task
//! switch (the previous task's system time, or the idle time, ends).
//! Everything between two reads goes to whoever held the CPU.
//!
//! The entry and exit of a system call only add to this CPU's pending
//! user and system time (a counter read, two loads and two stores); a
//! switch hands what is pending to the task switched away from, so a
//! task's own figures lack only what it ran since it was switched in,
//! which [`task_times`] adds for the running task.
//!
//! One CPU, and these run with IRQs masked: the per-CPU counters and each
//! task's have one writer, so plain loads and stores do.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{sched, Task};
use crate::arch::timer;

/// The counter at the last hand-over on this CPU.
static MARK: AtomicU64 = AtomicU64::new(0);
/// The running task's user and system time not yet added to its figures.
static PENDING_USER: AtomicU64 = AtomicU64::new(0);
static PENDING_SYSTEM: AtomicU64 = AtomicU64::new(0);

/// The CPU's totals since boot, as `/proc/stat` reports them (the running
/// task's pending time aside: see [`totals`]).
struct Totals {
    user: AtomicU64,
    system: AtomicU64,
    idle: AtomicU64,
    switches: AtomicU64,
}

static TOTALS: Totals =
    Totals { user: AtomicU64::new(0), system: AtomicU64::new(0), idle: AtomicU64::new(0), switches: AtomicU64::new(0) };

/// A task's CPU time and switches.
#[derive(Default)]
pub struct TaskTimes {
    user: AtomicU64,
    system: AtomicU64,
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
    let now = timer::ticks_unordered();
    let mark = MARK.load(Ordering::Relaxed);
    MARK.store(now, Ordering::Relaxed);
    now.saturating_sub(mark)
}

/// A trap from EL0: the running task's user time ends here.
#[inline]
pub fn entered_kernel() {
    add(&PENDING_USER, elapsed());
}

/// The return to EL0: the running task's system time ends here.
#[inline]
pub fn leaving_kernel() {
    add(&PENDING_SYSTEM, elapsed());
}

/// A switch away from `prev` (the idle task when `idle`), which `blocked`
/// or could have run on: it gets its pending time.
pub(super) fn switched_from(prev: &Task, idle: bool, blocked: bool) {
    let ticks = elapsed();
    let user = PENDING_USER.load(Ordering::Relaxed);
    let system = PENDING_SYSTEM.load(Ordering::Relaxed) + ticks;
    PENDING_USER.store(0, Ordering::Relaxed);
    PENDING_SYSTEM.store(0, Ordering::Relaxed);
    if idle {
        add(&TOTALS.idle, user + system);
    } else {
        add(&prev.times.user, user);
        add(&prev.times.system, system);
        add(&TOTALS.user, user);
        add(&TOTALS.system, system);
        add(if blocked { &prev.times.voluntary } else { &prev.times.involuntary }, 1);
    }
    add(&TOTALS.switches, 1);
}

/// `task`'s user and system time in counter ticks, with what is pending
/// when it is the one running.
pub fn task_times(task: &Task) -> (u64, u64) {
    let (mut user, mut system) = (task.times.user.load(Ordering::Relaxed), task.times.system.load(Ordering::Relaxed));
    if sched::with_current(|running| core::ptr::eq(running, task)) {
        user += PENDING_USER.load(Ordering::Relaxed);
        system += PENDING_SYSTEM.load(Ordering::Relaxed);
    }
    (user, system)
}

/// The CPU's user, system and idle time since boot (counter ticks) and
/// its task switches.
pub fn totals() -> (u64, u64, u64, u64) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    (
        get(&TOTALS.user) + get(&PENDING_USER),
        get(&TOTALS.system) + get(&PENDING_SYSTEM),
        get(&TOTALS.idle),
        get(&TOTALS.switches),
    )
}
