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
//! Uniprocessor: it runs with interrupts masked on the one running CPU.
//! Kernel code is not preempted at arbitrary points; a task is switched
//! out only when it blocks, yields, is about to return to EL0 with a
//! reschedule pending, or reaches a pause point of a long memory pass
//! (`mm`'s `MmEnv::should_yield`, [`preempt_point`]).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use aspen_abi::sched::{Policy, SchedParams, MAX_RT_PRIORITY};
use spin::Mutex;

use super::loadavg::LoadTracker;
use super::{cputime, Pid, Task, TaskState, UserContext};
use crate::arch::context::{self, CpuContext, FpState};
use crate::arch::{cpu, mmu, timer};

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
    /// When `task`'s slice ends, if it must: a round-robin or
    /// `SCHED_OTHER` task (not the idle one) with a ready task of its level
    /// waiting. A task alone at its level runs on without a tick.
    fn slice_end_of(&self, task: &Arc<Task>) -> Option<u64> {
        let idle = self.idle.as_ref().is_some_and(|idle| Arc::ptr_eq(idle, task));
        let sliced = !idle && task.sched_params().policy != Policy::Fifo;
        (sliced && self.run.best().is_some_and(|p| p <= task.priority())).then_some(self.slice_end)
    }
}

impl RunQueues {
    const EMPTY: Level = Level { head: ptr::null(), tail: ptr::null() };

    fn level(task: &Task) -> usize {
        (task.priority() as usize).min(PRIORITIES - 1)
    }

    fn push(&mut self, task: Arc<Task>) {
        self.push_at(task, End::Back);
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

    fn pop(&mut self) -> Option<Arc<Task>> {
        let p = self.best()? as usize;
        let head = self.levels[p].head;
        // SAFETY: a level marked non-empty has a queued head.
        Some(unsafe { self.unlink(p, head) })
    }

    /// The best level waiting, if any: O(1), a look at three words.
    fn best(&self) -> Option<u8> {
        let (word, bits) = self.nonempty.iter().enumerate().find(|(_, bits)| **bits != 0)?;
        Some((word * 64 + bits.trailing_zeros() as usize) as u8)
    }
}

struct Scheduler {
    run: RunQueues,
    current: Option<Arc<Task>>,
    idle: Option<Arc<Task>>,
    /// Blocked tasks with a wake-up time (counter ticks), by deadline then
    /// pid; a sleeper's task remembers its deadline, so an early wake-up
    /// finds its entry without a scan.
    sleepers: BTreeMap<(u64, Pid), Arc<Task>>,
    /// The task just switched away from, released by the task switched to
    /// (once nothing runs on its stack any more).
    switched_out: Option<Arc<Task>>,
    /// The user context whose address space TTBR0 holds (or held last,
    /// before a process exit emptied it).
    last_user: Option<Arc<dyn UserContext>>,
    slice_end: u64,
    load: LoadTracker,
}

impl Scheduler {
    /// Tasks that can run now: the ready ones and the running one (unless
    /// it is the idle task).
    fn runnable(&self) -> usize {
        let idle_runs = match (&self.current, &self.idle) {
            (Some(current), Some(idle)) => Arc::ptr_eq(current, idle),
            _ => true,
        };
        self.run.len + usize::from(!idle_runs)
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
    current: None,
    idle: None,
    sleepers: BTreeMap::new(),
    switched_out: None,
    last_user: None,
    slice_end: 0,
    load: LoadTracker::new(),
});

static NEED_RESCHED: AtomicBool = AtomicBool::new(false);
/// The running task's slice is over: when it is switched out, it goes
/// behind the others of its level (otherwise, preempted, before them).
static SLICE_OVER: AtomicBool = AtomicBool::new(false);

/// The task running on this core, readable without the scheduler's lock
/// (system calls and faults ask for it on every entry): a field of the
/// core's per-CPU block. Kept equal to `current` by `schedule`; the task
/// it points at is kept alive by `current`. Null on the secondary cores,
/// which run no task yet.
#[inline(always)]
fn running() -> &'static AtomicPtr<Task> {
    &crate::smp::this_cpu().running
}

fn slice_ticks() -> u64 {
    timer::frequency() * TIME_SLICE_MS / 1000
}

/// Makes the code running now (boot, on the boot stack) the idle task.
pub fn init_idle() {
    let idle = Task::with_stack(u8::MAX, SchedParams::DEFAULT, None, CpuContext::default(), FpState::new());
    idle.set_state(TaskState::Running);
    let mut s = SCHED.lock();
    s.idle = Some(idle.clone());
    running().store(Arc::as_ptr(&idle) as *mut Task, Ordering::Release);
    s.current = Some(idle);
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
        }
        if s.current.as_ref().is_some_and(|current| task.priority() < current.priority()) {
            NEED_RESCHED.store(true, Ordering::Relaxed);
        }
        s.run.push(task);
        // A task that ran alone at its level has no slice timer armed.
        if let Some(end) = s.current.as_ref().and_then(|current| s.slice_end_of(current)) {
            timer::fire_by(end);
        }
    }
    cpu::restore_irqs(irq);
}

/// Wakes a blocked task; does nothing to a task in any other state.
pub fn wake(task: &Arc<Task>) {
    if task.state() == TaskState::Blocked {
        make_ready(task.clone());
    }
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
                s.run.push_at(task.clone(), if new < old { End::Back } else { End::Front });
            }
            let running = s.current.as_ref().map_or(u8::MAX, |t| t.priority());
            if s.run.best().is_some_and(|best| best < running) {
                NEED_RESCHED.store(true, Ordering::Relaxed);
            }
            // A task now of the running one's level takes turns with it.
            if let Some(end) = s.current.as_ref().and_then(|current| s.slice_end_of(current)) {
                timer::fire_by(end);
            }
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
        let current = s.current.clone().expect("block before init_idle");
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

/// Called from the timer interrupt: wakes sleepers whose time has come and
/// ends the running task's slice. Returns when the timer should fire next:
/// the first sleeper's deadline, or the end of the slice when a task of the
/// running one's level waits for its turn; `None` (no interrupt at all)
/// while a task runs alone or the CPU idles.
pub fn on_timer(now: u64) -> Option<u64> {
    let mut s = SCHED.lock();
    s.sample_load();
    while let Some(sleeper) = s.sleepers.first_entry().filter(|e| e.key().0 <= now) {
        let task = sleeper.remove();
        *task.sleep_deadline.lock() = None;
        task.set_state(TaskState::Ready);
        s.run.push(task);
    }
    let current_priority = s.current.as_ref().map_or(u8::MAX, |t| t.priority());
    let sliced = s.current.as_ref().is_some_and(|t| t.sched_params().policy != Policy::Fifo);
    let preempt_by_priority = s.run.best().is_some_and(|p| p < current_priority);
    let slice_over = sliced && now >= s.slice_end && s.run.best().is_some_and(|p| p <= current_priority);
    if slice_over {
        SLICE_OVER.store(true, Ordering::Relaxed);
    }
    if preempt_by_priority || slice_over {
        NEED_RESCHED.store(true, Ordering::Relaxed);
    }
    // A slice that is over ends at the switch, which arms the next one.
    let slice = if slice_over { None } else { s.current.as_ref().and_then(|current| s.slice_end_of(current)) };
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
/// freed, which no task may translate through any more.
pub fn drop_user_table() {
    let irq = cpu::disable_irqs();
    SCHED.lock().last_user = None;
    mmu::set_empty_user_table();
    cpu::restore_irqs(irq);
}

/// A pause point of a long kernel pass (`mm`'s `MmEnv::should_yield`):
/// takes the interrupts pending while IRQs were masked (the timer's, which
/// wakes sleepers), and says whether a better task is ready (then the
/// caller makes its work safe to be seen and calls [`preempt_if_needed`]).
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
    NEED_RESCHED.load(Ordering::Relaxed)
}

/// A pause point of a long system call outside the memory passes (exec's
/// steps, fork's start): lets a better task that is ready run now. The
/// caller holds no lock another task could want.
pub fn pause_point() {
    if preempt_point() {
        preempt_if_needed();
    }
}

/// Switches if a reschedule is pending; called before returning to EL0,
/// by the idle loop and at the pause points of long kernel passes (the
/// task keeps its place at the front of its level, as a preempted one).
pub fn preempt_if_needed() {
    if NEED_RESCHED.load(Ordering::Relaxed) {
        let end = if SLICE_OVER.load(Ordering::Relaxed) { End::Back } else { End::Front };
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
/// a switch returns; kernel threads run with interrupts unmasked.
pub(super) extern "C" fn kernel_thread_started() {
    after_switch();
    cpu::enable_irqs();
}

/// Runs on a user task's first switch-in, before it returns to EL0 with
/// interrupts still masked (the return unmasks them).
pub(super) extern "C" fn user_task_started() {
    after_switch();
    // Through the running task's own reference, not a clone: a task killed
    // before its first turn ends in `entering_user` and never comes back
    // here, and a reference left on this stack would keep its thread, and
    // through it its process, forever.
    with_current(|task| task.user_context().expect("a user task without a user context").entering_user());
    cputime::leaving_kernel();
}

fn after_switch() {
    let switched_out = SCHED.lock().switched_out.take();
    // Nothing runs on its stack now; this may be the last reference.
    drop(switched_out);
}

/// Picks the next task and switches to it; the running task, if still
/// runnable, goes to `end` of its level's queue.
fn schedule(end: End) {
    let irq = cpu::disable_irqs();
    NEED_RESCHED.store(false, Ordering::Relaxed);
    SLICE_OVER.store(false, Ordering::Relaxed);
    let mut s = SCHED.lock();
    let prev = s.current.clone().expect("schedule before init_idle");
    let idle = s.idle.clone().expect("schedule before init_idle");
    let blocked = prev.state() != TaskState::Running;
    let prev_idle = Arc::ptr_eq(&prev, &idle);
    // Only a task that stops running (blocks, ends) changes the count of
    // runnable ones here: a yield or preemption trades one for another.
    if blocked && !prev_idle {
        s.sample_load();
    }
    if !blocked {
        prev.set_state(TaskState::Ready);
        if !prev_idle {
            s.run.push_at(prev.clone(), end);
        }
    }
    let next = s.run.pop().unwrap_or(idle);
    next.set_state(TaskState::Running);
    if Arc::ptr_eq(&prev, &next) {
        drop(s);
        cpu::restore_irqs(irq);
        return;
    }
    s.slice_end = timer::ticks() + slice_ticks();
    if let Some(end) = s.slice_end_of(&next) {
        timer::fire_by(end);
    }
    let (prev_ctx, next_ctx) = (prev.context.get(), next.context.get());
    let (prev_fp, next_fp) = (prev.fp.get(), next.fp.get());
    // The translation changes only for a user task of another address
    // space. Kernel threads and the idle task borrow whatever user table is
    // current (they never touch user memory; a table is never freed while
    // current: an exiting process switches to the empty table first), so
    // a thread that blocks and a thread of its space that wakes from idle
    // write no TTBR0 either.
    if let Some(user) = next.user_context() {
        let key = user.space_key();
        if key == 0 || s.last_user.as_ref().is_none_or(|last| last.space_key() != key) {
            user.activate();
        }
        s.last_user = Some(user.clone());
    }
    cputime::switched_from(&prev, prev_idle, blocked);
    running().store(Arc::as_ptr(&next) as *mut Task, Ordering::Release);
    s.current = Some(next);
    s.switched_out = Some(prev);
    drop(s);
    // SAFETY: interrupts are masked and only this CPU schedules, so nobody
    // else touches either task's context or FP state. `switched_out` keeps
    // the previous task (and its stack) alive until the next task has
    // switched in, `current` keeps the next one; both contexts are complete
    // (saved by a switch, or made for a new task).
    unsafe { context::switch(prev_ctx, prev_fp, next_ctx, next_fp) };
    after_switch();
    cpu::restore_irqs(irq);
}

/// The idle loop: the boot CPU's last stop, waiting for interrupts.
pub fn idle_loop() -> ! {
    loop {
        // IRQs stay masked across the check and the WFI, which still wakes
        // for a pending interrupt: one that comes after the check is not
        // slept through (there is no periodic tick to end the sleep).
        if !NEED_RESCHED.load(Ordering::Relaxed) {
            cpu::wait_for_interrupt();
        }
        cpu::take_pending_irqs();
        preempt_if_needed();
    }
}
