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
//! Each core keeps its own mark, pending time and totals; they run with
//! IRQs masked on that core (a task's figures change under the big kernel
//! lock), so each counter has one writer at a time and plain loads and
//! stores do. Another core reads them without a lock (a few ticks stale).

use core::sync::atomic::{AtomicU64, Ordering};

use aspen_mm::asid::MAX_CPUS;

use super::{sched, Task};
use crate::arch::timer;
use crate::smp;

/// One core's figures, a field of its per-CPU block.
pub struct Core {
    /// The counter at the last hand-over on this core.
    mark: AtomicU64,
    /// The running task's user and system time not yet added to its figures.
    pending_user: AtomicU64,
    pending_system: AtomicU64,
    /// Totals since boot, as `/proc/stat` reports them (the running task's
    /// pending time aside: see [`totals_of`]).
    user: AtomicU64,
    system: AtomicU64,
    idle: AtomicU64,
    switches: AtomicU64,
}

impl Core {
    pub const fn new() -> Self {
        Self {
            mark: AtomicU64::new(0),
            pending_user: AtomicU64::new(0),
            pending_system: AtomicU64::new(0),
            user: AtomicU64::new(0),
            system: AtomicU64::new(0),
            idle: AtomicU64::new(0),
            switches: AtomicU64::new(0),
        }
    }
}

/// The calling core's figures.
#[inline(always)]
fn this_core() -> &'static Core {
    &smp::this_cpu().cputime
}

/// A core starts its idle task: its time counts from now (a secondary's
/// time before it came up is nobody's).
pub(super) fn start_core() {
    let core = this_core();
    if smp::this_cpu_id() != 0 {
        core.mark.store(timer::ticks(), Ordering::Relaxed);
    }
}

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
fn elapsed(core: &Core) -> u64 {
    let now = timer::ticks_unordered();
    let mark = core.mark.load(Ordering::Relaxed);
    core.mark.store(now, Ordering::Relaxed);
    now.saturating_sub(mark)
}

/// A trap from EL0: the running task's user time ends here.
#[inline]
pub fn entered_kernel() {
    let core = this_core();
    add(&core.pending_user, elapsed(core));
}

/// The return to EL0: the running task's system time ends here.
#[inline]
pub fn leaving_kernel() {
    let core = this_core();
    add(&core.pending_system, elapsed(core));
}

/// A switch away from `prev` (the idle task when `idle`), which `blocked`
/// or could have run on: it gets its pending time.
pub(super) fn switched_from(prev: &Task, idle: bool, blocked: bool) {
    let core = this_core();
    let ticks = elapsed(core);
    let user = core.pending_user.load(Ordering::Relaxed);
    let system = core.pending_system.load(Ordering::Relaxed) + ticks;
    core.pending_user.store(0, Ordering::Relaxed);
    core.pending_system.store(0, Ordering::Relaxed);
    if idle {
        add(&core.idle, user + system);
    } else {
        add(&prev.times.user, user);
        add(&prev.times.system, system);
        add(&core.user, user);
        add(&core.system, system);
        add(if blocked { &prev.times.voluntary } else { &prev.times.involuntary }, 1);
    }
    add(&core.switches, 1);
}

/// `task`'s user and system time in counter ticks, with what is pending
/// when it is running (on this core, or another: what that core has
/// pending, and its user time since it last left the kernel).
pub fn task_times(task: &Task) -> (u64, u64) {
    let (mut user, mut system) = (task.times.user.load(Ordering::Relaxed), task.times.system.load(Ordering::Relaxed));
    if sched::with_current(|running| core::ptr::eq(running, task)) {
        let core = this_core();
        user += core.pending_user.load(Ordering::Relaxed);
        system += core.pending_system.load(Ordering::Relaxed);
    } else if let Some(n) = sched::running_on(task) {
        // In EL0 there since its core's mark (or in the kernel there,
        // then a few ticks go to user time until that core's next mark).
        let core = &smp::cpu(n).cputime;
        let since = timer::ticks_unordered().saturating_sub(core.mark.load(Ordering::Relaxed));
        user += core.pending_user.load(Ordering::Relaxed) + since;
        system += core.pending_system.load(Ordering::Relaxed);
    }
    (user, system)
}

/// Core `n`'s user, system and idle time since boot (counter ticks) and
/// its task switches.
pub fn totals_of(n: usize) -> (u64, u64, u64, u64) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let core = &smp::cpu(n).cputime;
    (
        get(&core.user) + get(&core.pending_user),
        get(&core.system) + get(&core.pending_system),
        get(&core.idle),
        get(&core.switches),
    )
}

/// The sums of [`totals_of`] over the cores.
pub fn totals() -> (u64, u64, u64, u64) {
    (0..MAX_CPUS).map(totals_of).fold((0, 0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3))
}
