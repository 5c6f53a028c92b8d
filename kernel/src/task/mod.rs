//! Tasks: a kernel stack, a saved CPU context, FP/SIMD state and (for user
//! tasks) a process. The scheduler (`sched`) decides which one runs.

pub mod sched;
pub mod stack;

core::arch::global_asm!(include_str!("switch.s"));

use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};

use spin::Mutex;

use self::stack::{KernelStack, StackError};
use crate::process::Process;

/// A task's identity; for user tasks also its process ID.
pub type Pid = u32;

/// What `switch.s` saves across a switch: x19-x30 and SP.
#[repr(C)]
#[derive(Default)]
pub struct CpuContext {
    regs: [u64; 12],
    sp: u64,
}

impl CpuContext {
    /// A context that starts at `entry` on `stack_top`, with x19 and x20
    /// set (the kernel-thread entry's function and argument).
    fn starting_at(entry: u64, stack_top: u64, x19: u64, x20: u64) -> Self {
        let mut regs = [0; 12];
        regs[0] = x19;
        regs[1] = x20;
        regs[11] = entry; // x30: where `aspen_switch` returns to
        Self { regs, sp: stack_top }
    }
}

/// The FP/SIMD registers (q0-q31, FPCR, FPSR), saved at task switches only:
/// the kernel itself never touches them (it is built soft-float).
#[repr(C, align(16))]
pub struct FpState {
    q: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

impl FpState {
    const fn new() -> Self {
        Self { q: [0; 32], fpcr: 0, fpsr: 0 }
    }
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
    pub priority: u8,
    state: Mutex<TaskState>,
    context: UnsafeCell<CpuContext>,
    fp: UnsafeCell<FpState>,
    /// `None` for the boot CPU's idle task, which runs on the boot stack.
    stack: Option<KernelStack>,
    /// The process a user task runs, set once when it is made; never set
    /// for kernel threads.
    process: spin::Once<Arc<Process>>,
}

// SAFETY: `context` and `fp` are only touched by the scheduler, with
// interrupts masked, on the CPU that switches the task out or in; a task
// is never running on two CPUs at once.
unsafe impl Sync for Task {}
// SAFETY: as above; everything else is behind locks.
unsafe impl Send for Task {}

static NEXT_PID: AtomicU32 = AtomicU32::new(1);

impl Task {
    fn with_stack(priority: u8, stack: Option<KernelStack>, context: CpuContext) -> Arc<Self> {
        // The idle task (no stack of its own) is 0; the first process, 1.
        let pid = if stack.is_some() { NEXT_PID.fetch_add(1, Ordering::Relaxed) } else { 0 };
        Arc::new(Self {
            pid,
            priority,
            state: Mutex::new(TaskState::Ready),
            context: UnsafeCell::new(context),
            fp: UnsafeCell::new(FpState::new()),
            stack,
            process: spin::Once::new(),
        })
    }

    /// A kernel thread that runs `entry(arg)` and exits when it returns.
    pub fn new_kernel(priority: u8, entry: fn(usize), arg: usize) -> Result<Arc<Self>, StackError> {
        let stack = KernelStack::new()?;
        extern "C" {
            fn aspen_task_entry_kernel();
        }
        let context = CpuContext::starting_at(
            aspen_task_entry_kernel as *const () as u64,
            stack.top().as_u64(),
            entry as usize as u64,
            arg as u64,
        );
        Ok(Self::with_stack(priority, Some(stack), context))
    }

    /// A user task: its first switch-in returns to EL0 through the trap
    /// frame the caller puts in the top `frame_size` bytes of its stack.
    pub fn new_user(priority: u8, frame_size: usize) -> Result<Arc<Self>, StackError> {
        let stack = KernelStack::new()?;
        extern "C" {
            fn aspen_task_entry_user();
        }
        let frame = stack.top().as_u64() - frame_size as u64;
        let context = CpuContext::starting_at(aspen_task_entry_user as *const () as u64, frame, 0, 0);
        Ok(Self::with_stack(priority, Some(stack), context))
    }

    /// The top of the kernel stack (0 for the idle task).
    pub fn stack_top(&self) -> u64 {
        self.stack.as_ref().map_or(0, |s| s.top().as_u64())
    }

    /// The process this task runs, if it is a user task.
    pub fn process(&self) -> Option<&Arc<Process>> {
        self.process.get()
    }

    pub fn set_process(&self, process: Arc<Process>) {
        self.process.call_once(|| process);
    }

    pub fn state(&self) -> TaskState {
        *self.state.lock()
    }

    fn set_state(&self, state: TaskState) {
        *self.state.lock() = state;
    }
}
