//! Tasks: a kernel stack, a saved CPU context, FP/SIMD state and (for user
//! tasks) what they run on behalf of, a [`UserContext`] (a thread of a process). The
//! scheduler (`sched`) decides which one runs.

pub mod bkl;
pub mod cputime;
pub mod loadavg;
pub mod lock;
pub mod sched;
pub mod stack;
pub mod timer;
pub mod wait;

use alloc::sync::Arc;
use core::any::Any;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use aspen_abi::sched::SchedParams;
use spin::Mutex;

use self::stack::{KernelStack, StackError};
use crate::arch::context::{CpuContext, FpState, ThreadPointers};

/// A task's identity; for user tasks also its process ID.
pub type Pid = u32;

/// Drops the last node of a B-tree set that has become empty. A `BTreeSet`
/// keeps its root leaf when its last entry goes; one that first got an
/// entry at the peak of a burst of tasks (a parent's first child ends)
/// would keep that leaf in the kernel heap's newest region and pin the
/// whole region after the burst.
pub fn release_if_empty<T: Ord>(set: &mut alloc::collections::BTreeSet<T>) {
    if set.is_empty() {
        *set = alloc::collections::BTreeSet::new();
    }
}

/// What a user task runs on behalf of, as the scheduler needs it. The
/// process layer implements it (and gets its own type back with `Any`), so
/// tasks and the scheduler depend on nothing above them.
pub trait UserContext: Any + Send + Sync {
    /// Makes this context's address space current on this CPU; called as
    /// its task is switched in.
    fn activate(&self);

    /// What tells its address space from every other live one (0: none):
    /// a switch between two contexts with one key needs no change of
    /// translation.
    fn space_key(&self) -> usize;

    /// Runs as the task first leaves the kernel for EL0 (what the kernel
    /// does before every return to user space: pending exits, signals).
    fn entering_user(&self);
}

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Ready,
    Running,
    /// Waiting for `sched::wake` (a child's exit, a timeout, ...).
    Blocked,
    /// Finished; the value is the Linux wait status.
    Exited(i32),
}

/// A schedulable thread of execution.
pub struct Task {
    pub pid: Pid,
    /// The level it runs at (0 best, see `sched`): the best of `base`,
    /// `boost` and `lock_boost`. They change only under the scheduler's
    /// lock, which keeps a ready task in the queue of its `priority`.
    priority: AtomicU8,
    /// The level its scheduling parameters give it.
    base: AtomicU8,
    /// The level priority inheritance lends it through PI futexes
    /// (`u8::MAX`: none).
    boost: AtomicU8,
    /// The level the waiters of the sleeping lock it holds lend it
    /// (`lock::SleepLock`; `u8::MAX`: none).
    lock_boost: AtomicU8,
    /// Its policy and real-time priority (`SchedParams::DEFAULT` for
    /// kernel threads, whose level is set directly).
    params: Mutex<SchedParams>,
    state: Mutex<TaskState>,
    /// While it sleeps with a deadline: the deadline, its key (with the
    /// pid) among the scheduler's sleepers.
    sleep_deadline: Mutex<Option<u64>>,
    context: UnsafeCell<CpuContext>,
    fp: UnsafeCell<FpState>,
    /// `None` for the boot CPU's idle task, which runs on the boot stack.
    stack: Option<KernelStack>,
    /// What a user task runs on behalf of, set once when it is made; never
    /// set for kernel threads.
    user: spin::Once<Arc<dyn UserContext>>,
    /// The cores it may run on (bit n: core n; `sched_setaffinity`).
    /// Changed only under the scheduler's lock ([`sched::set_affinity`]).
    allowed: AtomicU64,
    /// The core it runs on, or ran on last.
    cpu: AtomicUsize,
    /// How deep it is in faults taken by a system call's user copy
    /// ([`sched::in_user_copy_fault`]), which may hold spin locks.
    copy_faults: AtomicU32,
    /// Its CPU time and switches.
    pub times: cputime::TaskTimes,
    /// The counter when it was made.
    pub started: u64,
    /// Its heap allocations left until one fails (`crate::failslab`;
    /// 0: none will).
    pub fail_nth: core::sync::atomic::AtomicU32,
    /// Its preloaded heap sections (`crate::heap::Preload`).
    pub preload: crate::failslab::PreloadState,
    /// Its links in its level's run queue while ready: intrusive, so that
    /// queueing a task (in the timer interrupt, at a wake-up) never
    /// allocates. Only the scheduler touches them, under its lock.
    run_link: UnsafeCell<sched::RunLink>,
}

// SAFETY: `context` and `fp` are only touched by the scheduler, with
// interrupts masked and the big kernel lock held, on the CPU that switches
// the task out or in; a task is never running on two CPUs at once (the
// core that switches it out holds the lock until the switch is complete).
// `run_link` only under the scheduler's lock.
unsafe impl Sync for Task {}
// SAFETY: as above; everything else is behind locks.
unsafe impl Send for Task {}

static NEXT_PID: AtomicU32 = AtomicU32::new(1);
/// Tasks that exist, the idle task aside (Linux's `nr_threads`).
static TASKS: AtomicU32 = AtomicU32::new(0);

/// How many tasks exist (running, ready, blocked, or ended and not yet
/// reaped), the idle task aside.
pub fn task_count() -> u32 {
    TASKS.load(Ordering::Relaxed)
}

/// The last task id handed out.
pub fn last_pid() -> Pid {
    NEXT_PID.load(Ordering::Relaxed) - 1
}

impl Task {
    fn with_stack(
        priority: u8,
        params: SchedParams,
        stack: Option<KernelStack>,
        context: CpuContext,
        fp: FpState,
    ) -> Arc<Self> {
        // The idle task (no stack of its own) is 0; the first process, 1.
        let pid = if stack.is_some() { NEXT_PID.fetch_add(1, Ordering::Relaxed) } else { 0 };
        if stack.is_some() {
            TASKS.fetch_add(1, Ordering::Relaxed);
        }
        Arc::new(Self {
            pid,
            priority: AtomicU8::new(priority),
            base: AtomicU8::new(priority),
            boost: AtomicU8::new(u8::MAX),
            lock_boost: AtomicU8::new(u8::MAX),
            params: Mutex::new(params),
            state: Mutex::new(TaskState::Ready),
            sleep_deadline: Mutex::new(None),
            context: UnsafeCell::new(context),
            fp: UnsafeCell::new(fp),
            stack,
            user: spin::Once::new(),
            allowed: AtomicU64::new(u64::MAX),
            cpu: AtomicUsize::new(crate::smp::this_cpu_id()),
            copy_faults: AtomicU32::new(0),
            times: cputime::TaskTimes::default(),
            started: crate::arch::timer::ticks(),
            fail_nth: core::sync::atomic::AtomicU32::new(0),
            preload: crate::failslab::PreloadState::new(),
            run_link: UnsafeCell::new(sched::RunLink::UNLINKED),
        })
    }

    /// A kernel thread of level `priority` that runs `entry(arg)` and
    /// exits when it returns.
    pub fn new_kernel(priority: u8, entry: fn(usize), arg: usize) -> Result<Arc<Self>, StackError> {
        let stack = KernelStack::new()?;
        let context = CpuContext::kernel_thread(
            stack.top().as_u64(),
            sched::kernel_thread_started,
            entry,
            arg,
            sched::kernel_thread_exit,
        );
        Ok(Self::with_stack(priority, SchedParams::DEFAULT, Some(stack), context, FpState::new()))
    }

    /// A user task scheduled as `params`: its first switch-in returns to
    /// EL0 through the trap frame the caller puts in the top `frame_size`
    /// bytes of its stack, with FP/SIMD registers `fp` and thread pointers
    /// `pointers`.
    pub fn new_user(
        params: SchedParams,
        frame_size: usize,
        fp: FpState,
        pointers: ThreadPointers,
    ) -> Result<Arc<Self>, StackError> {
        let stack = KernelStack::new()?;
        let mut context = CpuContext::user_task(stack.top().as_u64() - frame_size as u64, sched::user_task_started);
        context.set_thread_pointers(pointers);
        Ok(Self::with_stack(sched::level_of(params), params, Some(stack), context, fp))
    }

    /// The top of the kernel stack (0 for the idle task).
    pub fn stack_top(&self) -> u64 {
        self.stack.as_ref().map_or(0, |s| s.top().as_u64())
    }

    /// What this task runs on behalf of, if it is a user task.
    pub fn user_context(&self) -> Option<&Arc<dyn UserContext>> {
        self.user.get()
    }

    /// Makes `user` what this task runs on behalf of (once).
    ///
    /// # Safety
    ///
    /// `user` is a `process::thread::Thread`, the one kind of user context
    /// there is: `thread::with_current`, on every system call and fault,
    /// takes it for one without asking its type (a virtual call).
    pub unsafe fn set_user_context(&self, user: Arc<dyn UserContext>) {
        self.user.call_once(|| user);
    }

    /// The level it runs at now (0 best), inherited priority included.
    pub fn priority(&self) -> u8 {
        self.priority.load(Ordering::Relaxed)
    }

    /// The level its own parameters give it, without inheritance.
    pub fn base_priority(&self) -> u8 {
        self.base.load(Ordering::Relaxed)
    }

    /// The cores it may run on (bit n: core n).
    pub fn allowed_cpus(&self) -> u64 {
        self.allowed.load(Ordering::Relaxed)
    }

    /// The core it runs on, or ran on last.
    pub fn cpu(&self) -> usize {
        self.cpu.load(Ordering::Relaxed)
    }

    /// Its scheduling policy and real-time priority.
    pub fn sched_params(&self) -> SchedParams {
        *self.params.lock()
    }

    pub fn state(&self) -> TaskState {
        *self.state.lock()
    }

    fn set_state(&self, state: TaskState) {
        *self.state.lock() = state;
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if self.stack.is_some() {
            TASKS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
