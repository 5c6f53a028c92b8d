//! The scheduler: priority levels (0 highest .. PRIORITIES-1 lowest),
//! each a FIFO queue, with POSIX policies on top. Levels 0-98 are the
//! real-time priorities 99-1 (`SCHED_FIFO`: no time slice; `SCHED_RR`:
//! round robin with a slice), 120 is `SCHED_OTHER`/`SCHED_BATCH` (round
//! robin with a slice), 139 `SCHED_IDLE`; kernel threads pick a level
//! directly (around [`DEFAULT_PRIORITY`]). A task's level is the better of
//! its own and the one priority inheritance lends it (`futex`'s PI
//! futexes); a change moves a ready task to its new queue. Preemption at
//! the end of a slice, or when a better task becomes ready or is boosted.
//!
//! Every core runs tasks. One set of queues serves them all (a core takes
//! the best ready task its affinity allows, so an idle core takes any
//! unpinned ready task); each core has its own running task, idle task,
//! time slice, reschedule flag and user translation. Making a task ready
//! finds it a core ([`Scheduler::place`]): an idle one it may run on,
//! else the one running the worst task if it beats that, and tells that
//! core with a reschedule SGI when it is another.
//!
//! It runs with interrupts masked, under its lock and the big kernel lock
//! ([`super::bkl`]), so the kernel is not preempted at arbitrary points: a
//! task is switched out only when it blocks, yields, is about to return to
//! EL0 with a reschedule pending, or reaches a pause point of a long memory
//! pass (`mm`'s `MmEnv::should_yield`, [`preempt_point`]). The core that
//! switches a task out holds the big kernel lock until the switch is
//! complete, so no other core resumes a task before its registers are
//! saved.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use aspen_abi::sched::{Policy, SchedParams, MAX_RT_PRIORITY};
use aspen_mm::asid::MAX_CPUS;
use spin::Mutex;

use super::loadavg::LoadTracker;
use super::{bkl, cputime, Pid, Task, TaskState, UserContext};
use crate::arch::context::{self, CpuContext, FpState};
use crate::arch::{cpu, mmu, timer};
use crate::smp::{self, Ipi};

/// How many levels there are (as Linux's 140 priorities).
pub const PRIORITIES: usize = 140;
/// The level of `SCHED_OTHER` and `SCHED_BATCH` threads, and of kernel
/// threads unless they ask for another.
pub const DEFAULT_PRIORITY: u8 = 120;
/// The level of `SCHED_IDLE` threads.
const IDLE_POLICY_PRIORITY: u8 = PRIORITIES as u8 - 1;
/// A task runs this long before others of its level get a turn (not
/// `SCHED_FIFO` ones, which run until they block or yield).
pub const TIME_SLICE_MS: u64 = 10;
/// Words of the bitmap of non-empty queues.
const BITMAP_WORDS: usize = PRIORITIES.div_ceil(64);
/// Heap a sleeper's entry may take: a B-tree insert, a node (under 512
/// bytes) per level; eight levels hold far more tasks than can exist.
const SLEEPER_INSERT_BOUND: usize = 8 * 512;

/// The level of a user task scheduled as `params`.
pub const fn level_of(params: SchedParams) -> u8 {
    match params.policy {
        Policy::Fifo | Policy::RoundRobin => (MAX_RT_PRIORITY - params.priority) as u8,
        Policy::Other | Policy::Batch => DEFAULT_PRIORITY,
        Policy::Idle => IDLE_POLICY_PRIORITY,
    }
}

/// Where a task goes in its level's queue.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// Behind the others: it had its turn (a yield, a slice used up, a
    /// wake-up, a raised priority).
    Back,
    /// Before them: it was preempted, or its priority lowered, and keeps
    /// its place (as POSIX asks of `SCHED_FIFO`).
    Front,
}

/// A task's links in its level's run queue (`Task::run_link`).
pub struct RunLink {
    prev: *const Task,
    next: *const Task,
    queued: bool,
}

impl RunLink {
    pub const UNLINKED: Self = Self { prev: ptr::null(), next: ptr::null(), queued: false };
}

/// One level's queue: a doubly linked list through the tasks' own links,
/// which holds a reference to each task in it (`Arc::into_raw`).
#[derive(Clone, Copy)]
struct Level {
    head: *const Task,
    tail: *const Task,
}

struct RunQueues {
    levels: [Level; PRIORITIES],
    /// Bit p set: queue p is not empty.
    nonempty: [u64; BITMAP_WORDS],
    /// Tasks in all queues.
    len: usize,
}

// SAFETY: the queues' pointers are references to tasks (which are Send
// and Sync) that the queues own; they are used only under the scheduler's
// lock.
unsafe impl Send for RunQueues {}

/// `task`'s links.
///
/// # Safety
/// The caller holds the scheduler's lock (the links' only users), and
/// `task` is alive.
#[allow(clippy::mut_from_ref)]
unsafe fn link_of<'a>(task: *const Task) -> &'a mut RunLink {
    // SAFETY: guaranteed by the caller; no other reference to the links
    // lives across calls.
    unsafe { &mut *(*task).run_link.get() }
}

impl Scheduler {
    /// When the slice of core `n`'s running task ends, if it must: a
    /// round-robin or `SCHED_OTHER` task (not the idle one) with a ready
    /// task of its level that may run there waiting. A task alone at its
    /// level runs on without a tick.
    fn slice_end_of(&self, n: usize) -> Option<u64> {
        let core = &self.cpus[n];
        let task = core.current.as_ref()?;
        let sliced = !core.idles() && task.sched_params().policy != Policy::Fifo;
        (sliced && self.run.best_for(n).is_some_and(|p| p <= task.priority())).then_some(core.slice_end)
    }

    /// The level core `n` runs at: its task's, or none (`u8::MAX`) while
    /// it idles or runs no task.
    fn running_level(&self, n: usize) -> u8 {
        let core = &self.cpus[n];
        match &core.current {
            Some(task) if !core.idles() => task.priority(),
            _ => u8::MAX,
        }
    }

    /// Queues `task` at `end` of its level and finds it a core: the first
    /// idle core it may run on not yet told to reschedule (the one it ran
    /// on last, then this one, then any), else the allowed core running
    /// the worst task, told to reschedule if `task` beats that one, or to
    /// end its slice in time if they share a level.
    fn place(&mut self, task: Arc<Task>, end: End) {
        let allowed = task.allowed_cpus() & smp::online_mask();
        let last = task.cpu();
        self.run.push_at(task, end);
        let me = smp::this_cpu_id();
        let candidates = [last, me].into_iter().chain(0..MAX_CPUS);
        let mut idle = candidates.filter(|&n| allowed & (1 << n) != 0 && self.cpus[n].idles());
        if let Some(n) = idle.find(|&n| !smp::cpu(n).need_resched.load(Ordering::Relaxed)) {
            return reschedule(n);
        }
        // Idle cores left are told already: each takes one task.
        let busy = (0..MAX_CPUS).filter(|&n| allowed & (1 << n) != 0 && !self.cpus[n].idles());
        let worst = busy.max_by_key(|&n| (self.running_level(n), n == me));
        if let Some(n) = worst {
            self.check_preemption(n);
        }
    }

    /// Makes core `n` reschedule when a ready task it may run beats its
    /// running one, or arms its slice's end when one of its level waits.
    fn check_preemption(&self, n: usize) {
        let running = self.running_level(n);
        let Some(best) = self.run.best_for(n) else { return };
        let core = &self.cpus[n];
        if best < running {
            reschedule(n);
        } else if best == running && core.current.as_ref().is_some_and(|t| t.sched_params().policy != Policy::Fifo) {
            // (`running_level` is `u8::MAX` for an idle core: no slice.)
            arm_slice(n, core.slice_end);
        }
    }
}

/// Tells core `n` to reschedule: at once if it is this one (before its
/// return to EL0, or at its next pause point), by SGI otherwise.
fn reschedule(n: usize) {
    smp::cpu(n).need_resched.store(true, Ordering::Relaxed);
    if n != smp::this_cpu_id() {
        smp::send_ipi(n, Ipi::Reschedule);
    }
}

/// Makes core `n`'s timer fire by `end` (the end of its slice): this core
/// arms its own; another is told by SGI ([`on_reschedule_ipi`]).
fn arm_slice(n: usize, end: u64) {
    if n == smp::this_cpu_id() {
        timer::fire_by(end);
    } else {
        SLICE_DUE[n].store(end, Ordering::Relaxed);
        smp::send_ipi(n, Ipi::Reschedule);
    }
}

/// A reschedule SGI taken (without the big kernel lock: it only touches
/// this core's timer): arms the slice end another core asked for. The
/// reschedule itself happens on the way out of the interrupt (the return
/// to EL0, or the idle loop).
pub fn on_reschedule_ipi() {
    let due = SLICE_DUE[smp::this_cpu_id()].swap(u64::MAX, Ordering::Relaxed);
    if due != u64::MAX {
        timer::fire_by(due);
    }
}

impl RunQueues {
    const EMPTY: Level = Level { head: ptr::null(), tail: ptr::null() };

    fn level(task: &Task) -> usize {
        (task.priority() as usize).min(PRIORITIES - 1)
    }

    /// Queues `task` (a task already queued stays where it is). Never
    /// allocates: the links are the task's own.
    fn push_at(&mut self, task: Arc<Task>, end: End) {
        let p = Self::level(&task);
        let this = Arc::into_raw(task);
        // SAFETY: under the scheduler's lock (`&mut self`); every pointer
        // in a queue is a live task the queue holds a reference to.
        unsafe {
            let link = link_of(this);
            if link.queued {
                drop(Arc::from_raw(this));
                return;
            }
            let level = &mut self.levels[p];
            match end {
                End::Back => {
                    *link = RunLink { prev: level.tail, next: ptr::null(), queued: true };
                    match level.tail.is_null() {
                        true => level.head = this,
                        false => link_of(level.tail).next = this,
                    }
                    level.tail = this;
                }
                End::Front => {
                    *link = RunLink { prev: ptr::null(), next: level.head, queued: true };
                    match level.head.is_null() {
                        true => level.tail = this,
                        false => link_of(level.head).prev = this,
                    }
                    level.head = this;
                }
            }
        }
        self.len += 1;
        self.nonempty[p / 64] |= 1 << (p % 64);
    }

    /// Takes the queued task `this` out of level `p`'s queue and returns
    /// the queue's reference to it.
    ///
    /// # Safety
    /// `this` is queued at level `p`; the caller holds the scheduler's lock.
    unsafe fn unlink(&mut self, p: usize, this: *const Task) -> Arc<Task> {
        // SAFETY: guaranteed by the caller; its neighbours are queued tasks.
        unsafe {
            let link = link_of(this);
            let level = &mut self.levels[p];
            match link.prev.is_null() {
                true => level.head = link.next,
                false => link_of(link.prev).next = link.next,
            }
            match link.next.is_null() {
                true => level.tail = link.prev,
                false => link_of(link.next).prev = link.prev,
            }
            *link = RunLink::UNLINKED;
            if level.head.is_null() {
                self.nonempty[p / 64] &= !(1 << (p % 64));
            }
            self.len -= 1;
            Arc::from_raw(this)
        }
    }

    /// Takes `task` out of the queue of its level; whether it was there.
    fn remove(&mut self, task: &Arc<Task>) -> bool {
        let this = Arc::as_ptr(task);
        // SAFETY: under the scheduler's lock; `task` is alive. A queued
        // task is in the queue of its level (levels change only once it
        // is taken out, in `set_levels`).
        unsafe {
            if !link_of(this).queued {
                return false;
            }
            drop(self.unlink(Self::level(task), this));
        }
        true
    }

    /// The best ready task core `n` may run: its level and the task. The
    /// levels in order (the bitmap's set bits), the first task in each
    /// whose affinity has `n`: a look at three words and one queue's head
    /// when nothing is pinned elsewhere.
    fn find_for(&self, n: usize) -> Option<(usize, *const Task)> {
        let may_run_here = |task: *const Task| {
            // SAFETY: a queued task is alive (its queue holds a reference).
            unsafe { (*task).allowed_cpus() & (1 << n) != 0 }
        };
        for (word, &bits) in self.nonempty.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                let p = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let mut at = self.levels[p].head;
                while !at.is_null() {
                    if may_run_here(at) {
                        return Some((p, at));
                    }
                    // SAFETY: under the scheduler's lock (`&self` of the
                    // locked scheduler); `at` is queued.
                    at = unsafe { link_of(at).next };
                }
            }
        }
        None
    }

    /// The best level ready that core `n` may run, if any.
    fn best_for(&self, n: usize) -> Option<u8> {
        self.find_for(n).map(|(p, _)| p as u8)
    }

    /// Takes the best ready task core `n` may run.
    fn pop_for(&mut self, n: usize) -> Option<Arc<Task>> {
        let (p, task) = self.find_for(n)?;
        // SAFETY: `find_for` found `task` queued at level `p`; under the
        // scheduler's lock.
        Some(unsafe { self.unlink(p, task) })
    }
}

/// What the scheduler keeps for each core.
struct CoreState {
    /// Its running task (its idle task while it idles).
    current: Option<Arc<Task>>,
    idle: Option<Arc<Task>>,
    /// The task just switched away from, released by the task switched to
    /// (once nothing runs on its stack any more).
    switched_out: Option<Arc<Task>>,
    /// The user context whose address space its TTBR0 holds; `None` while
    /// TTBR0 holds the empty table (its idle task or a kernel thread runs,
    /// or a process exit emptied it).
    last_user: Option<Arc<dyn UserContext>>,
    /// When its running task's slice ends.
    slice_end: u64,
}

impl CoreState {
    /// Whether it runs its idle task (or has none yet: not started).
    fn idles(&self) -> bool {
        match (&self.current, &self.idle) {
            (Some(current), Some(idle)) => Arc::ptr_eq(current, idle),
            _ => false,
        }
    }
}

struct Scheduler {
    run: RunQueues,
    cpus: [CoreState; MAX_CPUS],
    /// Blocked tasks with a wake-up time (counter ticks), by deadline then
    /// pid; a sleeper's task remembers its deadline, so an early wake-up
    /// finds its entry without a scan.
    sleepers: BTreeMap<(u64, Pid), Arc<Task>>,
    load: LoadTracker,
}

impl Scheduler {
    /// Tasks that can run now: the ready ones and the running ones (idle
    /// tasks aside).
    fn runnable(&self) -> usize {
        self.run.len + self.cpus.iter().filter(|core| core.current.is_some() && !core.idles()).count()
    }

    /// Drops the sleepers' last B-tree node once none is left: a node that
    /// was made at the peak of a burst of sleepers (a fork bomb's children)
    /// lies in the kernel heap's newest region and would pin the region.
    fn forget_sleepers_if_none(&mut self) {
        if self.sleepers.is_empty() {
            self.sleepers = BTreeMap::new();
        }
    }

    /// Brings the load averages up to now; called before the count of
    /// runnable tasks changes.
    fn sample_load(&mut self) {
        let active = self.runnable() as u64;
        self.load.catch_up(timer::ticks(), active);
    }
}

static SCHED: Mutex<Scheduler> = Mutex::new(Scheduler {
    run: RunQueues { levels: [RunQueues::EMPTY; PRIORITIES], nonempty: [0; BITMAP_WORDS], len: 0 },
    cpus: [const { CoreState { current: None, idle: None, switched_out: None, last_user: None, slice_end: 0 } };
        MAX_CPUS],
    sleepers: BTreeMap::new(),
    load: LoadTracker::new(),
});

/// Per core: the running task's slice is over: when it is switched out,
/// it goes behind the others of its level (otherwise, preempted, before
/// them).
static SLICE_OVER: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Per core: a slice end another core asked it to arm its timer for
/// (`u64::MAX`: none).
static SLICE_DUE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

/// This core's reschedule flag (a field of its per-CPU block).
#[inline(always)]
fn need_resched() -> &'static AtomicBool {
    &smp::this_cpu().need_resched
}

/// The task running on this core, readable without the scheduler's lock
/// (system calls and faults ask for it on every entry): a field of the
/// core's per-CPU block. Kept equal to its `current` by `schedule`; the
/// task it points at is kept alive by `current`. Null on a core that has
/// not started its scheduler yet.
#[inline(always)]
fn running() -> &'static AtomicPtr<Task> {
    &crate::smp::this_cpu().running
}

fn slice_ticks() -> u64 {
    timer::frequency() * TIME_SLICE_MS / 1000
}

/// Makes the code running now on this core (boot, on its boot stack) its
/// idle task. The caller holds the big kernel lock.
pub fn init_idle() {
    let idle = Task::with_stack(u8::MAX, SchedParams::DEFAULT, None, CpuContext::default(), FpState::new());
    idle.set_state(TaskState::Running);
    let irq = cpu::disable_irqs();
    let mut s = SCHED.lock();
    let core = &mut s.cpus[smp::this_cpu_id()];
    core.idle = Some(idle.clone());
    running().store(Arc::as_ptr(&idle) as *mut Task, Ordering::Release);
    core.current = Some(idle);
    drop(s);
    cputime::start_core();
    cpu::restore_irqs(irq);
}

/// The task running on this CPU.
pub fn current() -> Arc<Task> {
    let task = running().load(Ordering::Acquire);
    assert!(!task.is_null(), "scheduler used before init_idle");
    // SAFETY: `running()` points at the task in `current`, an `Arc` the
    // scheduler holds until it switches away from the caller, which it
    // cannot do meanwhile: one more strong count is the caller's own
    // reference. (No lock: every sleeping lock's `lock` asks for it.)
    unsafe {
        Arc::increment_strong_count(task);
        Arc::from_raw(task)
    }
}

/// The task running on this CPU, as `Arc::as_ptr` gives it, without
/// touching its reference count: an identity for as long as the caller
/// runs (sleeping locks record their holder so).
pub fn current_ptr() -> *const Task {
    running().load(Ordering::Acquire)
}

/// The core `task` is running on, if it is running.
pub fn running_on(task: &Task) -> Option<usize> {
    (0..MAX_CPUS).find(|&n| core::ptr::eq(smp::cpu(n).running.load(Ordering::Acquire), task))
}

/// Runs `f` on the task running on this CPU, without taking the
/// scheduler's lock.
pub fn with_current<R>(f: impl FnOnce(&Task) -> R) -> R {
    let task = running().load(Ordering::Acquire);
    assert!(!task.is_null(), "scheduler used before init_idle");
    // SAFETY: `running()` points at the task in `current`, which holds a
    // reference until the next switch; a switch cannot happen on this CPU
    // inside `f` unless `f` blocks, and the task blocking is `f`'s own,
    // which stays referenced while it runs.
    f(unsafe { &*task })
}

/// Queues `task` to run. A task of better priority than the running one
/// asks for a reschedule.
pub fn make_ready(task: Arc<Task>) {
    let irq = cpu::disable_irqs();
    {
        let mut s = SCHED.lock();
        s.sample_load();
        task.set_state(TaskState::Ready);
        if let Some(deadline) = task.sleep_deadline.lock().take() {
            s.sleepers.remove(&(deadline, task.pid));
            s.forget_sleepers_if_none();
        }
        s.place(task, End::Back);
    }
    cpu::restore_irqs(irq);
}

/// Wakes a blocked task; a task running on another core is sent an SGI
/// instead, so that it looks at what is pending for it (a signal, the end
/// of its process) now, not at its next entry to the kernel.
pub fn wake(task: &Arc<Task>) {
    match task.state() {
        TaskState::Blocked => make_ready(task.clone()),
        TaskState::Running if task.cpu() != smp::this_cpu_id() => smp::send_ipi(task.cpu(), Ipi::Reschedule),
        _ => {}
    }
}

/// Whether this core has a reschedule pending.
#[inline]
pub fn reschedule_pending() -> bool {
    need_resched().load(Ordering::Relaxed)
}

/// Gives the CPU to the next ready task of the same or better priority
/// (the caller goes behind the others of its level).
pub fn yield_now() {
    schedule(End::Back);
}

/// Which of a task's levels a change sets.
#[derive(Clone, Copy)]
enum LevelOf {
    /// Its own (`sched_setscheduler`).
    Base,
    /// Lent through PI futexes.
    Boost,
    /// Lent by the waiters of its sleeping lock.
    LockBoost,
}

/// Sets one of `task`'s levels to `level` and its effective level to the
/// best of the three, moving it to its new queue if it is ready (behind
/// the others when raised, before them when lowered, as Linux), and asks
/// for a reschedule when a ready task now beats the running one.
fn set_levels(task: &Arc<Task>, which: LevelOf, level: u8) {
    let irq = cpu::disable_irqs();
    {
        let mut s = SCHED.lock();
        match which {
            LevelOf::Base => &task.base,
            LevelOf::Boost => &task.boost,
            LevelOf::LockBoost => &task.lock_boost,
        }
        .store(level, Ordering::Relaxed);
        let old = task.priority();
        let lent = task.boost.load(Ordering::Relaxed).min(task.lock_boost.load(Ordering::Relaxed));
        let new = task.base_priority().min(lent);
        if new != old {
            let queued = task.state() == TaskState::Ready && s.run.remove(task);
            task.priority.store(new, Ordering::Relaxed);
            if queued {
                s.place(task.clone(), if new < old { End::Back } else { End::Front });
            } else if task.state() == TaskState::Running {
                // Lowered, it may now lose to a ready task; raised or
                // lowered, it may now share a level with one (its slice).
                s.check_preemption(task.cpu());
            }
        }
    }
    cpu::restore_irqs(irq);
}

/// Lets `task` run only on the cores of `mask` (`sched_setaffinity`; the
/// caller has checked that one of them is online). A ready task goes to
/// a core it may run on; a running one outside the mask is switched out
/// there (the caller itself before it returns to EL0) and moves.
pub fn set_affinity(task: &Arc<Task>, mask: u64) {
    let irq = cpu::disable_irqs();
    {
        let mut s = SCHED.lock();
        task.allowed.store(mask, Ordering::Relaxed);
        match task.state() {
            TaskState::Ready if s.run.remove(task) => s.place(task.clone(), End::Back),
            TaskState::Running if mask & (1 << task.cpu()) == 0 => reschedule(task.cpu()),
            _ => {}
        }
    }
    cpu::restore_irqs(irq);
}

/// Schedules a user task as `params` (`sched_setscheduler`); a level
/// inherited through a PI futex still applies if better.
pub fn set_params(task: &Arc<Task>, params: SchedParams) {
    *task.params.lock() = params;
    set_levels(task, LevelOf::Base, level_of(params));
}

/// Lends `task` the level `boost` (`u8::MAX`: none) by priority
/// inheritance.
pub fn set_boost(task: &Arc<Task>, boost: u8) {
    set_levels(task, LevelOf::Boost, boost);
}

/// Lends `task`, the owner of a sleeping lock, the level `boost` of its
/// best waiter (`u8::MAX`: none); kept apart from what PI futexes lend.
pub fn set_lock_boost(task: &Arc<Task>, boost: u8) {
    set_levels(task, LevelOf::LockBoost, boost);
}

/// Blocks the running task until `wake` (or, with a deadline in counter
/// ticks, until then). The scheduler keeps only running, ready and sleeping
/// tasks alive: whoever will wake a task blocked without a deadline must
/// hold a reference to it (a process holds its task). When the heap has
/// no room for a sleeper's entry, it only yields: a spurious wake-up, after
/// which every caller checks its condition (and the time) again.
pub fn block(deadline: Option<u64>) {
    let irq = cpu::disable_irqs();
    // Opened before the lock (a preload may grow the heap) and closed
    // before the switch: a section's reserve is not kept across a sleep.
    let preload = match deadline.map(|_| crate::heap::preload(SLEEPER_INSERT_BOUND)) {
        Some(Err(_)) => {
            yield_now();
            cpu::restore_irqs(irq);
            return;
        }
        preload => preload,
    };
    {
        let mut s = SCHED.lock();
        let current = s.cpus[smp::this_cpu_id()].current.clone().expect("block before init_idle");
        current.set_state(TaskState::Blocked);
        if let Some(deadline) = deadline {
            *current.sleep_deadline.lock() = Some(deadline);
            s.sleepers.insert((deadline, current.pid), current);
            // The timer may be armed for later (the end of a slice).
            timer::fire_by(deadline);
        }
    }
    drop(preload);
    schedule(End::Back);
    cpu::restore_irqs(irq);
}

/// Sleeps for at least `ticks` counter ticks.
pub fn sleep_ticks(ticks: u64) {
    block(Some(timer::ticks().saturating_add(ticks)));
}

/// Called from a core's timer interrupt (any core's: a sleeper's deadline
/// is armed on the core that blocked it, and whichever core's timer comes
/// first wakes it): wakes sleepers whose time has come and ends this
/// core's running task's slice. Returns when this core's timer should fire
/// next: the first sleeper's deadline, or the end of the slice when a task
/// of the running one's level waits for its turn; `None` (no interrupt at
/// all) while a task runs alone or the core idles and nobody sleeps.
pub fn on_timer(now: u64) -> Option<u64> {
    let me = smp::this_cpu_id();
    let mut s = SCHED.lock();
    s.sample_load();
    while let Some(sleeper) = s.sleepers.first_entry().filter(|e| e.key().0 <= now) {
        let task = sleeper.remove();
        *task.sleep_deadline.lock() = None;
        task.set_state(TaskState::Ready);
        s.place(task, End::Back);
    }
    s.forget_sleepers_if_none();
    let core = &s.cpus[me];
    let current_priority = s.running_level(me);
    let sliced = !core.idles() && core.current.as_ref().is_some_and(|t| t.sched_params().policy != Policy::Fifo);
    let best = s.run.best_for(me);
    let preempt_by_priority = best.is_some_and(|p| p < current_priority);
    let slice_over = sliced && now >= core.slice_end && best.is_some_and(|p| p <= current_priority);
    if slice_over {
        SLICE_OVER[me].store(true, Ordering::Relaxed);
    }
    if preempt_by_priority || slice_over {
        smp::cpu(me).need_resched.store(true, Ordering::Relaxed);
    }
    // A slice that is over ends at the switch, which arms the next one.
    let slice = if slice_over { None } else { s.slice_end_of(me) };
    let sleeper = s.sleepers.first_key_value().map(|((deadline, _), _)| *deadline);
    earliest(slice, sleeper)
}

/// The load averages now, the tasks runnable now (the running one
/// included), for `/proc/loadavg` and `sysinfo`.
pub fn load() -> (aspen_abi::sysinfo::LoadAverages, usize) {
    let irq = cpu::disable_irqs();
    let mut s = SCHED.lock();
    s.sample_load();
    let load = (s.load.averages, s.runnable());
    drop(s);
    cpu::restore_irqs(irq);
    load
}

/// The earlier of two optional times.
pub fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Points TTBR0 at the empty table: for an address space about to be
/// freed, which no task may translate through any more. Only this core can
/// hold it: a core holds a user table only while it runs a thread of its
/// space (its idle task and kernel threads run on the empty table), and
/// the space's last thread is the caller.
pub fn drop_user_table() {
    let irq = cpu::disable_irqs();
    SCHED.lock().cpus[smp::this_cpu_id()].last_user = None;
    mmu::set_empty_user_table();
    cpu::restore_irqs(irq);
}

/// A pause point of a long kernel pass (`mm`'s `MmEnv::should_yield`):
/// takes the interrupts pending while IRQs were masked (the timer's, which
/// wakes sleepers), and says whether a better task is ready or another core
/// waits for the big kernel lock (then the caller makes its work safe to
/// be seen and calls [`pause_now`]).
/// A register read and a load when nothing is pending. Never inlined: its
/// address is how `scripts/stretch.sh` finds every pause point.
#[inline(never)]
pub fn preempt_point() -> bool {
    if cpu::irq_pending() {
        // (A kernel thread runs with IRQs unmasked: its mask goes back.)
        let unmasked = cpu::disable_irqs();
        cpu::take_pending_irqs();
        cpu::restore_irqs(unmasked);
    }
    need_resched().load(Ordering::Relaxed) || (bkl::contended() && !in_copy_fault())
}

/// What a pause point does once its pass is safe to be seen: switches to
/// a better task if one is ready, and lets the cores waiting for the big
/// kernel lock have it for a moment, unless the pass serves a fault of a
/// system call's user copy: the call may hold a spin lock across the copy
/// (a pipe's, an open file's offset) that another core would then spin
/// for while holding the big kernel lock.
pub fn pause_now() {
    preempt_if_needed();
    if !in_copy_fault() {
        bkl::let_others_in();
    }
}

/// Runs `resolve`, the demand paging of a fault a system call's user copy
/// took, marked as such for the pause points inside it.
pub fn in_user_copy_fault<R>(resolve: impl FnOnce() -> R) -> R {
    with_current(|task| task.copy_faults.fetch_add(1, Ordering::Relaxed));
    let result = resolve();
    with_current(|task| task.copy_faults.fetch_sub(1, Ordering::Relaxed));
    result
}

/// Whether the running task is inside [`in_user_copy_fault`].
fn in_copy_fault() -> bool {
    with_current(|task| task.copy_faults.load(Ordering::Relaxed) != 0)
}

/// A pause point of a long system call outside the memory passes (exec's
/// steps, fork's start): lets a better task that is ready run now, and
/// other cores into the kernel. The caller holds no lock another task
/// could want.
pub fn pause_point() {
    if preempt_point() {
        pause_now();
    }
}

/// Switches if a reschedule is pending; called before returning to EL0,
/// by the idle loop and at the pause points of long kernel passes (the
/// task keeps its place at the front of its level, as a preempted one).
pub fn preempt_if_needed() {
    if need_resched().load(Ordering::Relaxed) {
        let end = if SLICE_OVER[smp::this_cpu_id()].load(Ordering::Relaxed) { End::Back } else { End::Front };
        schedule(end);
    }
}

/// Ends the running kernel thread: where its entry function returns to.
pub(super) extern "C" fn kernel_thread_exit() -> ! {
    exit_current(TaskState::Exited(0));
    unreachable!("an exited task was scheduled again");
}

/// Marks the running task finished and switches away for good. A kernel
/// thread is freed by the next task; a user task stays referenced by its
/// process until its parent reaps it.
pub fn exit_current(state: TaskState) {
    cpu::disable_irqs();
    current().set_state(state);
    schedule(End::Back);
}

/// Runs on a kernel thread's first switch-in: what `schedule` does after
/// a switch returns; kernel threads run with interrupts unmasked (and the
/// big kernel lock held).
pub(super) extern "C" fn kernel_thread_started() {
    after_switch();
    cpu::enable_irqs();
}

/// Runs on a user task's first switch-in, before it returns to EL0 with
/// interrupts still masked (the return unmasks them): it gives up the big
/// kernel lock its core switched under.
pub(super) extern "C" fn user_task_started() {
    after_switch();
    // Through the running task's own reference, not a clone: a task killed
    // before its first turn ends in `entering_user` and never comes back
    // here, and a reference left on this stack would keep its thread, and
    // through it its process, forever.
    with_current(|task| task.user_context().expect("a user task without a user context").entering_user());
    cputime::leaving_kernel();
    bkl::release_to_user();
}

fn after_switch() {
    let switched_out = SCHED.lock().cpus[smp::this_cpu_id()].switched_out.take();
    // Nothing runs on its stack now; this may be the last reference.
    drop(switched_out);
}

/// Picks the next task for this core and switches to it; the running
/// task, if still runnable, goes to `end` of its level's queue (or, when
/// its affinity no longer has this core, to a core it may run on).
fn schedule(end: End) {
    let irq = cpu::disable_irqs();
    debug_assert!(bkl::depth() == 1, "a switch without the big kernel lock, or nested in an interrupt");
    let me = smp::this_cpu_id();
    let mut s = SCHED.lock();
    smp::cpu(me).need_resched.store(false, Ordering::Relaxed);
    SLICE_OVER[me].store(false, Ordering::Relaxed);
    let prev = s.cpus[me].current.clone().expect("schedule before init_idle");
    let blocked = prev.state() != TaskState::Running;
    let prev_idle = s.cpus[me].idles();
    // Only a task that stops running (blocks, ends) changes the count of
    // runnable ones here: a yield or preemption trades one for another.
    if blocked && !prev_idle {
        s.sample_load();
    }
    let mut moves = false;
    if !blocked {
        prev.set_state(TaskState::Ready);
        moves = !prev_idle && prev.allowed_cpus() & (1 << me) == 0;
        if !prev_idle && !moves {
            s.run.push_at(prev.clone(), end);
        }
    }
    // The idle task's reference is taken only when it is the one to run.
    let next = match s.run.pop_for(me) {
        Some(task) => task,
        None => s.cpus[me].idle.clone().expect("schedule before init_idle"),
    };
    next.set_state(TaskState::Running);
    next.cpu.store(me, Ordering::Relaxed);
    if moves {
        // Another core may take it once this one has switched away (it
        // holds the big kernel lock until then).
        s.place(prev.clone(), End::Front);
    }
    if Arc::ptr_eq(&prev, &next) {
        drop(s);
        cpu::restore_irqs(irq);
        return;
    }
    let (prev_ctx, next_ctx) = (prev.context.get(), next.context.get());
    let (prev_fp, next_fp) = (prev.fp.get(), next.fp.get());
    let core = &mut s.cpus[me];
    core.slice_end = timer::ticks() + slice_ticks();
    // `next` is the core's running task from here: its slice, not the
    // previous task's, ends when one of its level waits (switched in from
    // the idle task, a task never had a slice, and a task of its level
    // made ready with it waited until it blocked).
    core.current = Some(next);
    if let Some(end) = s.slice_end_of(me) {
        timer::fire_by(end);
    }
    let core = &mut s.cpus[me];
    let next = core.current.as_ref().expect("the task just chosen");
    // The translation changes only for a user task of another address
    // space (a switch between threads of one space writes no TTBR0). Kernel
    // threads and the idle task run on the empty table: a core then holds
    // no table of a space it does not run, so a space that ends is off
    // every other core already (`drop_user_table`), and no idle core keeps
    // a thread, and through it its process, alive.
    match next.user_context() {
        Some(user) => {
            let key = user.space_key();
            if key == 0 || core.last_user.as_ref().is_none_or(|last| last.space_key() != key) {
                user.activate();
            }
            core.last_user = Some(user.clone());
        }
        None => {
            if core.last_user.take().is_some() {
                mmu::set_empty_user_table();
            }
        }
    }
    cputime::switched_from(&prev, prev_idle, blocked);
    running().store(Arc::as_ptr(next) as *mut Task, Ordering::Release);
    core.switched_out = Some(prev);
    drop(s);
    // SAFETY: interrupts are masked and this core holds the big kernel
    // lock until after the switch, so nobody else touches either task's
    // context or FP state (another core may take `prev` from the queue
    // only once it has the lock). `switched_out` keeps the previous task
    // (and its stack) alive until the next task has switched in,
    // `current` keeps the next one; both contexts are complete (saved by a
    // switch, or made for a new task).
    unsafe { context::switch(prev_ctx, prev_fp, next_ctx, next_fp) };
    after_switch();
    cpu::restore_irqs(irq);
}

/// The idle loop: every core's last stop, waiting for interrupts. Entered
/// with the big kernel lock held; it gives it up while it waits.
pub fn idle_loop() -> ! {
    let me = smp::this_cpu_id();
    loop {
        // A ready task this core may run and nobody told it about (a
        // core that was busy when it was queued): take it.
        {
            let s = SCHED.lock();
            if s.run.best_for(me).is_some() {
                smp::cpu(me).need_resched.store(true, Ordering::Relaxed);
            }
        }
        // IRQs stay masked across the check and the WFI, which still wakes
        // for a pending interrupt: one that comes after the check (another
        // core's reschedule SGI included) is not slept through (there is no
        // periodic tick to end the sleep).
        // The interrupts are taken before the lock is: SGIs need none (a
        // core that holds it may be waiting for one), the others take it.
        if !smp::cpu(me).need_resched.load(Ordering::Relaxed) {
            bkl::release();
            cpu::wait_for_interrupt();
            cpu::take_pending_irqs();
            bkl::acquire();
        }
        cpu::take_pending_irqs();
        preempt_if_needed();
    }
}
