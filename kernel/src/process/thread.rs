//! Threads: the tasks of a process. Each has its own id, kernel stack,
//! registers and thread pointers (in its task), signal mask, pending
//! signals and alternate stack, and the words
//! `CLONE_CHILD_CLEARTID`/`set_tid_address` name; everything else (the
//! address space, open files, children, signal actions) belongs to its
//! process.

use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use spin::Mutex;

use super::signal::ThreadSignals;
use super::Process;
use crate::task::{sched, Pid, Task, UserContext};

/// A thread of a process.
pub struct Thread {
    /// Its id (`gettid`); the process's id for its first thread, and for a
    /// thread that execs (it becomes the leader).
    tid: AtomicU32,
    /// The process it belongs to, for life.
    pub process: Arc<Process>,
    /// Its task, kept while it may block (whoever wakes it needs it); let
    /// go when it exits.
    task: Mutex<Option<Arc<Task>>>,
    /// `CLONE_CHILD_CLEARTID` / `set_tid_address`: cleared and futex-woken
    /// when the thread ends (0: none).
    clear_child_tid: AtomicU64,
    /// What it must look at before it returns to user space
    /// (`signal::WORK_*` bits): 0 in the common case, so the check on
    /// every return is one relaxed load.
    pub(super) work: AtomicU32,
    /// Its signal mask, pending signals and alternate stack.
    pub(super) signals: Mutex<ThreadSignals>,
    /// `set_robust_list`: the head of its robust futex list, walked when
    /// it ends (0: none).
    robust_list: AtomicU64,
    /// `sched_setaffinity`: the CPUs it may run on (bit n: CPU n), within
    /// the ones the board has (its task's, which the scheduler keeps to,
    /// as long as it has one). Inherited by clone and fork.
    affinity: AtomicU64,
}

impl Thread {
    /// A thread of `process` running as `task`.
    pub(super) fn new(process: Arc<Process>, task: Arc<Task>) -> Arc<Self> {
        Arc::new(Self {
            tid: AtomicU32::new(task.pid),
            process,
            task: Mutex::new(Some(task)),
            clear_child_tid: AtomicU64::new(0),
            work: AtomicU32::new(0),
            signals: Mutex::new(ThreadSignals::default()),
            robust_list: AtomicU64::new(0),
            affinity: AtomicU64::new(crate::smp::present_mask()),
        })
    }

    /// The CPUs it may run on (`sched_getaffinity`, before the offline
    /// ones are left out).
    pub fn affinity(&self) -> u64 {
        self.affinity.load(Ordering::Relaxed)
    }

    /// Sets the CPUs it may run on; the caller has checked `mask` (one
    /// of them online). Running elsewhere, it moves (the caller's own
    /// thread before it returns to EL0).
    pub fn set_affinity(&self, mask: u64) {
        self.affinity.store(mask, Ordering::Relaxed);
        let task = self.task.lock().clone();
        if let Some(task) = task {
            sched::set_affinity(&task, mask);
        }
    }

    pub fn tid(&self) -> Pid {
        self.tid.load(Ordering::Relaxed)
    }

    /// Becomes the leader after an `execve` ended the other threads.
    pub(super) fn take_leader_id(&self) {
        self.tid.store(self.process.pid, Ordering::Relaxed);
    }

    pub fn task(&self) -> Option<Arc<Task>> {
        self.task.lock().clone()
    }

    pub(super) fn release_task(&self) {
        self.task.lock().take();
    }

    pub fn clear_child_tid(&self) -> u64 {
        self.clear_child_tid.load(Ordering::Relaxed)
    }

    pub fn set_clear_child_tid(&self, addr: u64) {
        self.clear_child_tid.store(addr, Ordering::Relaxed);
    }

    /// The head of its robust futex list (0: none).
    pub fn robust_list(&self) -> u64 {
        self.robust_list.load(Ordering::Relaxed)
    }

    pub fn set_robust_list(&self, head: u64) {
        self.robust_list.store(head, Ordering::Relaxed);
    }

    /// The head of its robust futex list, forgotten (what exit and exec
    /// walk once).
    pub(crate) fn take_robust_list(&self) -> u64 {
        self.robust_list.swap(0, Ordering::Relaxed)
    }

    /// Wakes the thread from a block, to look at why (a signal, the end of
    /// its process); nothing if it is not blocked.
    pub fn interrupt(&self) {
        if let Some(task) = self.task() {
            sched::wake(&task);
        }
    }

    /// Whether the thread must stop waiting and return towards user space
    /// (where what is pending for it happens): its process is ending or
    /// stopping, or a signal it does not block waits.
    pub fn interrupted(&self) -> bool {
        self.process.must_end(self) || self.stop_pending() || self.has_deliverable()
    }

    /// Whether a stop of its process waits for it to park.
    pub fn stop_pending(&self) -> bool {
        self.work.load(Ordering::Relaxed) & super::signal::WORK_STOP != 0
    }
}

impl UserContext for Thread {
    fn activate(&self) {
        self.process.activate();
    }

    fn space_key(&self) -> usize {
        self.process.space_key()
    }

    fn entering_user(&self) {
        let task = self.task().expect("a thread entering user space without its task");
        // SAFETY: this runs on the thread's own kernel stack, below the
        // trap frame it is about to return through, which nothing else
        // touches while the thread runs.
        let frame = unsafe { &mut *super::user_frame_of(&task) };
        drop(task);
        super::return_to_user(frame);
    }
}

/// The thread running on this CPU, if a user task runs.
pub fn current() -> Option<Arc<Thread>> {
    let user: Arc<dyn Any + Send + Sync> = sched::with_current(|task| task.user_context().cloned())?;
    user.downcast().ok()
}

/// Runs `f` on the thread running on this CPU, without taking a reference.
pub fn with_current<R>(f: impl FnOnce(&Thread) -> R) -> R {
    sched::with_current(|task| {
        let user = task.user_context().expect("thread state used from a kernel thread");
        debug_assert!((user.as_ref() as &dyn Any).is::<Thread>(), "a user context that is not a thread");
        // SAFETY: every user context is a `Thread` (`Task::set_user_context`'s
        // contract), so the data half of the `dyn` pointer points at one.
        f(unsafe { &*(Arc::as_ptr(user) as *const Thread) })
    })
}
