//! The scheduler: fixed priorities (0 highest .. PRIORITIES-1 lowest),
//! round robin within a priority, preemption at the end of a time slice or
//! when a higher-priority task wakes.
//!
//! Uniprocessor: it runs with interrupts masked on the one running CPU.
//! Kernel code is not preempted; a task is switched out only when it
//! blocks, yields, or is about to return to EL0 with a reschedule pending.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use spin::Mutex;

use super::{Pid, Task, TaskState, UserContext};
use crate::arch::context::{self, CpuContext, FpState};
use crate::arch::{cpu, mmu, timer};

pub const PRIORITIES: usize = 32;
/// What tasks get unless they ask for another.
pub const DEFAULT_PRIORITY: u8 = 16;
/// A task runs this long before others of its priority get a turn.
pub const TIME_SLICE_MS: u64 = 10;
/// A run queue keeps at most this many slots of capacity for nothing: a
/// burst of ready tasks (a fork bomb) must not pin its peak in the heap.
const RUN_QUEUE_SPARE: usize = 64;

struct RunQueues {
    queues: [VecDeque<Arc<Task>>; PRIORITIES],
    /// Bit p set: queue p is not empty.
    nonempty: u32,
}

impl RunQueues {
    fn push(&mut self, task: Arc<Task>) {
        let p = (task.priority as usize).min(PRIORITIES - 1);
        self.queues[p].push_back(task);
        self.nonempty |= 1 << p;
    }

    fn pop(&mut self) -> Option<Arc<Task>> {
        if self.nonempty == 0 {
            return None;
        }
        let p = self.nonempty.trailing_zeros() as usize;
        let queue = &mut self.queues[p];
        let task = queue.pop_front();
        if queue.is_empty() {
            self.nonempty &= !(1 << p);
        }
        // Halving at a quarter full keeps pops amortized O(1).
        if queue.capacity() > RUN_QUEUE_SPARE && queue.len() < queue.capacity() / 4 {
            queue.shrink_to(queue.capacity() / 2);
        }
        task
    }

    /// The best priority waiting, if any.
    fn best(&self) -> Option<u8> {
        (self.nonempty != 0).then(|| self.nonempty.trailing_zeros() as u8)
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
}

static SCHED: Mutex<Scheduler> = Mutex::new(Scheduler {
    run: RunQueues { queues: [const { VecDeque::new() }; PRIORITIES], nonempty: 0 },
    current: None,
    idle: None,
    sleepers: BTreeMap::new(),
    switched_out: None,
    last_user: None,
    slice_end: 0,
});

static NEED_RESCHED: AtomicBool = AtomicBool::new(false);

/// The running task, readable without the scheduler's lock (system calls
/// and faults ask for it on every entry). Kept equal to `current` by
/// `schedule`; the task it points at is kept alive by `current`.
static RUNNING: AtomicPtr<Task> = AtomicPtr::new(core::ptr::null_mut());

fn slice_ticks() -> u64 {
    timer::frequency() * TIME_SLICE_MS / 1000
}

/// Makes the code running now (boot, on the boot stack) the idle task.
pub fn init_idle() {
    let idle = Task::with_stack(u8::MAX, None, CpuContext::default(), FpState::new());
    idle.set_state(TaskState::Running);
    let mut s = SCHED.lock();
    s.idle = Some(idle.clone());
    RUNNING.store(Arc::as_ptr(&idle) as *mut Task, Ordering::Release);
    s.current = Some(idle);
}

/// The task running on this CPU.
pub fn current() -> Arc<Task> {
    SCHED.lock().current.clone().expect("scheduler used before init_idle")
}

/// Runs `f` on the task running on this CPU, without taking the
/// scheduler's lock.
pub fn with_current<R>(f: impl FnOnce(&Task) -> R) -> R {
    let task = RUNNING.load(Ordering::Acquire);
    assert!(!task.is_null(), "scheduler used before init_idle");
    // SAFETY: RUNNING points at the task in `current`, which holds a
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
        task.set_state(TaskState::Ready);
        if let Some(deadline) = task.sleep_deadline.lock().take() {
            s.sleepers.remove(&(deadline, task.pid));
        }
        if let Some(current) = &s.current {
            if task.priority < current.priority {
                NEED_RESCHED.store(true, Ordering::Relaxed);
            }
        }
        s.run.push(task);
    }
    cpu::restore_irqs(irq);
}

/// Wakes a blocked task; does nothing to a task in any other state.
pub fn wake(task: &Arc<Task>) {
    if task.state() == TaskState::Blocked {
        make_ready(task.clone());
    }
}

/// Gives the CPU to the next ready task of the same or better priority.
pub fn yield_now() {
    schedule();
}

/// Blocks the running task until `wake` (or, with a deadline in counter
/// ticks, until then). The scheduler keeps only running, ready and sleeping
/// tasks alive: whoever will wake a task blocked without a deadline must
/// hold a reference to it (a process holds its task).
pub fn block(deadline: Option<u64>) {
    let irq = cpu::disable_irqs();
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
    schedule();
    cpu::restore_irqs(irq);
}

/// Sleeps for at least `ticks` counter ticks.
pub fn sleep_ticks(ticks: u64) {
    block(Some(timer::ticks().saturating_add(ticks)));
}

/// Called from the timer interrupt: wakes sleepers whose time has come and
/// ends the running task's slice. Returns when the timer should fire next.
pub fn on_timer(now: u64) -> u64 {
    let mut s = SCHED.lock();
    while let Some(sleeper) = s.sleepers.first_entry().filter(|e| e.key().0 <= now) {
        let task = sleeper.remove();
        *task.sleep_deadline.lock() = None;
        task.set_state(TaskState::Ready);
        s.run.push(task);
    }
    let current_priority = s.current.as_ref().map_or(u8::MAX, |t| t.priority);
    let preempt_by_priority = s.run.best().is_some_and(|p| p < current_priority);
    let slice_over = now >= s.slice_end && s.run.best().is_some_and(|p| p <= current_priority);
    if preempt_by_priority || slice_over {
        NEED_RESCHED.store(true, Ordering::Relaxed);
    }
    let next_slice = if now >= s.slice_end { now + slice_ticks() } else { s.slice_end };
    s.sleepers.first_key_value().map_or(next_slice, |((deadline, _), _)| next_slice.min(*deadline))
}

/// Points TTBR0 at the empty table: for an address space about to be
/// freed, which no task may translate through any more.
pub fn drop_user_table() {
    let irq = cpu::disable_irqs();
    SCHED.lock().last_user = None;
    mmu::set_empty_user_table();
    cpu::restore_irqs(irq);
}

/// Switches if a reschedule is pending; called before returning to EL0
/// and by the idle loop.
pub fn preempt_if_needed() {
    if NEED_RESCHED.load(Ordering::Relaxed) {
        schedule();
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
    schedule();
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
    with_current(|task| task.user_context().cloned()).expect("a user task without a user context").entering_user();
}

fn after_switch() {
    let switched_out = SCHED.lock().switched_out.take();
    // Nothing runs on its stack now; this may be the last reference.
    drop(switched_out);
}

/// Picks the next task and switches to it.
fn schedule() {
    let irq = cpu::disable_irqs();
    NEED_RESCHED.store(false, Ordering::Relaxed);
    let mut s = SCHED.lock();
    let prev = s.current.clone().expect("schedule before init_idle");
    let idle = s.idle.clone().expect("schedule before init_idle");
    if prev.state() == TaskState::Running {
        prev.set_state(TaskState::Ready);
        if !Arc::ptr_eq(&prev, &idle) {
            s.run.push(prev.clone());
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
    let (prev_ctx, next_ctx) = (prev.context.get(), next.context.get());
    let (prev_fp, next_fp) = (prev.fp.get(), next.fp.get());
    // The translation changes only for a user task of another address
    // space. Kernel threads and the idle task borrow whatever user table is
    // current (they never touch user memory; a table is never freed while
    // current: an exiting process switches to the empty table first), so
    // a thread that blocks and a thread of its space that wakes from idle
    // write no TTBR0 either.
    if let Some(user) = next.user_context() {
        if !s.last_user.as_ref().is_some_and(|last| user.shares_space_with(last.as_ref())) {
            user.activate();
        }
        s.last_user = Some(user.clone());
    }
    RUNNING.store(Arc::as_ptr(&next) as *mut Task, Ordering::Release);
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
        cpu::enable_irqs();
        cpu::wait_for_interrupt();
        cpu::disable_irqs();
        preempt_if_needed();
    }
}
