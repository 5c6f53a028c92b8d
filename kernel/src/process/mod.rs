//! Processes: a task running at EL0 in its own address space, with open
//! files, a parent and children. One task per process (no threads yet).

pub mod exec;
pub mod fd;
pub mod procfs;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use aspen_abi::wait::{Signal, WaitStatus};
use aspen_mm::aspace::{AddressSpace, FaultError, FaultKind};
use aspen_mm::errno::Errno;
use spin::Mutex;

use self::fd::{Description, FdTable};
use crate::arch::exception::TrapFrame;
use crate::arch::{cpu, mmu};
use crate::memory::user_env::KernelMm;
use crate::task::sched::{self, DEFAULT_PRIORITY};
use crate::task::stack::StackError;
use crate::task::{Pid, Task, TaskState, UserContext};

pub type UserSpace = AddressSpace<'static, KernelMm>;

/// A process.
pub struct Process {
    pub pid: Pid,
    parent: Mutex<Weak<Process>>,
    /// Its task, kept alive while it may block (the scheduler holds only
    /// running and ready tasks); let go when the process exits.
    task: Mutex<Option<Arc<Task>>>,
    /// `None` after exit (the address space is freed at once).
    pub mm: Mutex<Option<UserSpace>>,
    pub files: Mutex<FdTable>,
    /// Its children by pid, zombies included until reaped.
    children: Mutex<BTreeMap<Pid, Arc<Process>>>,
    /// The pids of its children that have exited and wait to be reaped, so
    /// that `wait` finds one without scanning every child.
    zombies: Mutex<BTreeSet<Pid>>,
    /// The wait status once the process has exited (a zombie until reaped).
    exit_status: Mutex<Option<i32>>,
    /// argv joined with NULs, for `/proc/<pid>/cmdline`.
    pub cmdline: Mutex<Vec<u8>>,
    /// Page faults resolved for it (`minflt` in `/proc/<pid>/stat`).
    pub faults: AtomicU64,
}

static PROCESSES: Mutex<BTreeMap<Pid, Arc<Process>>> = Mutex::new(BTreeMap::new());
/// The process that adopts orphans.
const INIT_PID: Pid = 1;

/// Why a process could not be made.
#[derive(Debug)]
pub enum SpawnError {
    Stack(StackError),
    Errno(Errno),
}

impl From<Errno> for SpawnError {
    fn from(e: Errno) -> Self {
        Self::Errno(e)
    }
}

impl From<SpawnError> for Errno {
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::Stack(_) => Errno::ENOMEM,
            SpawnError::Errno(e) => e,
        }
    }
}

impl Process {
    pub fn get(pid: Pid) -> Option<Arc<Process>> {
        PROCESSES.lock().get(&pid).cloned()
    }

    /// Every process, for `/proc`.
    pub fn all() -> Vec<Arc<Process>> {
        PROCESSES.lock().values().cloned().collect()
    }

    pub fn ppid(&self) -> Pid {
        self.parent.lock().upgrade().map_or(0, |p| p.pid)
    }

    pub fn is_zombie(&self) -> bool {
        self.exit_status.lock().is_some()
    }

    /// Runs `f` on the address space; `ESRCH` after exit.
    pub fn with_mm<R>(&self, f: impl FnOnce(&mut UserSpace) -> R) -> Result<R, Errno> {
        self.mm.lock().as_mut().map(f).ok_or(Errno::ESRCH)
    }
}

/// The process whose task is running, if it is a user task.
pub fn current() -> Option<Arc<Process>> {
    let user: Arc<dyn Any + Send + Sync> = sched::with_current(|task| task.user_context().cloned())?;
    user.downcast().ok()
}

/// Like [`current`], for code that only runs on behalf of a process.
pub fn current_process() -> Arc<Process> {
    current().expect("process state used from a kernel thread")
}

impl UserContext for Process {
    /// Makes the address space current on this CPU (TTBR0 with its ASID, no
    /// TLB invalidation), or the empty table once the process has exited.
    fn activate(&self) {
        match self.mm.lock().as_ref().map(|mm| mm.activate(cpu::cpu_id())) {
            Some((root, asid)) => mmu::set_user_table(root, asid.0),
            None => mmu::set_empty_user_table(),
        }
    }

    fn resolve_fault(&self, addr: u64, kind: FaultKind) -> Result<(), FaultError> {
        let result =
            self.with_mm(|mm| mm.handle_fault(aspen_mm::VirtAddr::new(addr), kind)).map_err(|_| FaultError::Segv)?;
        if result.is_ok() {
            self.faults.fetch_add(1, Ordering::Relaxed);
        }
        if crate::syscall::tracing() {
            log::info!("pid {}: {kind:?} fault at {addr:#x}: {result:?}", self.pid);
        }
        result
    }
}

/// The user context saved at the top of `task`'s kernel stack.
fn user_frame_of(task: &Task) -> *mut TrapFrame {
    (task.stack_top() as usize - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame
}

/// Makes a user process around a task that will return to EL0 through
/// `frame` (copied to the top of its kernel stack).
fn new_process(
    parent: Option<&Arc<Process>>,
    mm: UserSpace,
    files: FdTable,
    frame: &TrapFrame,
    cmdline: Vec<u8>,
) -> Result<Arc<Process>, SpawnError> {
    let task = Task::new_user(DEFAULT_PRIORITY, core::mem::size_of::<TrapFrame>()).map_err(SpawnError::Stack)?;
    // SAFETY: the new task's stack is ours alone until it is made ready,
    // and `new_user` left exactly one TrapFrame's room at its top.
    unsafe { user_frame_of(&task).write(frame.clone()) };
    let process = Arc::new(Process {
        pid: task.pid,
        parent: Mutex::new(parent.map_or_else(Weak::new, Arc::downgrade)),
        task: Mutex::new(Some(task.clone())),
        mm: Mutex::new(Some(mm)),
        files: Mutex::new(files),
        children: Mutex::new(BTreeMap::new()),
        zombies: Mutex::new(BTreeSet::new()),
        exit_status: Mutex::new(None),
        cmdline: Mutex::new(cmdline),
        faults: AtomicU64::new(0),
    });
    task.set_user_context(process.clone());
    if let Some(parent) = parent {
        parent.children.lock().insert(process.pid, process.clone());
    }
    PROCESSES.lock().insert(process.pid, process.clone());
    sched::make_ready(task);
    Ok(process)
}

/// Starts the first process: `path` with `argv`, fds 0-2 on the console.
pub fn spawn_init(path: &[u8], argv: &[&[u8]]) -> Result<Arc<Process>, Errno> {
    let image = exec::load(path, argv, &[b"HOME=/", b"TERM=linux"]).map_err(exec::ExecError::errno)?;
    let mut files = FdTable::default();
    for _ in 0..3 {
        files.insert(Description::Console, false)?;
    }
    let frame = image.initial_frame();
    Ok(new_process(None, image.mm, files, &frame, image.cmdline)?)
}

/// `fork()`: a child with a copy-on-write copy of the address space, the
/// same open files, returning 0 from the same system call.
pub fn fork(frame: &TrapFrame) -> Result<Pid, Errno> {
    let parent = current_process();
    let mm = parent.with_mm(|mm| mm.fork())??;
    let files = parent.files.lock().clone();
    let mut child_frame = frame.clone();
    child_frame.x[0] = 0;
    let cmdline = parent.cmdline.lock().clone();
    let child = new_process(Some(&parent), mm, files, &child_frame, cmdline)?;
    Ok(child.pid)
}

/// Resolves a fault of the current process at `addr`: an error when it is
/// not one the address space can resolve (the signal to send).
pub fn resolve_fault(addr: u64, kind: FaultKind) -> Result<(), FaultError> {
    sched::with_current(|task| task.user_context().ok_or(FaultError::Segv)?.resolve_fault(addr, kind))
}

/// Ends the current process with wait status `status`: frees its memory
/// and files, hands its children to init, wakes its parent. Never returns.
pub fn exit_current(status: i32) -> ! {
    let process = current_process();
    // Off the address space before it goes.
    mmu::set_empty_user_table();
    let mm = process.mm.lock().take();
    drop(mm);
    process.files.lock().close_all();

    let orphans = core::mem::take(&mut *process.children.lock());
    let orphan_zombies = core::mem::take(&mut *process.zombies.lock());
    if !orphans.is_empty() {
        if let Some(init) = Process::get(INIT_PID).filter(|i| i.pid != process.pid) {
            for child in orphans.values() {
                *child.parent.lock() = Arc::downgrade(&init);
            }
            init.children.lock().extend(orphans);
            if !orphan_zombies.is_empty() {
                init.zombies.lock().extend(orphan_zombies);
                wake_process(&init);
            }
        }
    }
    *process.exit_status.lock() = Some(status);
    // The running task stays alive through the scheduler until it is off
    // its stack; the process no longer needs it.
    process.task.lock().take();
    if let Some(parent) = process.parent.lock().upgrade() {
        parent.zombies.lock().insert(process.pid);
        wake_process(&parent);
    } else {
        // Nobody will reap it.
        PROCESSES.lock().remove(&process.pid);
    }
    drop(process);
    sched::exit_current(TaskState::Exited(status));
    unreachable!("an exited process was scheduled again");
}

/// Kills the current process with `signal` (its default action: end the
/// process), logging why.
pub fn kill_current(signal: Signal, why: core::fmt::Arguments<'_>) -> ! {
    let process = current_process();
    log::warn!("pid {} ({}): killed by {signal}: {why}", process.pid, name(&process));
    drop(process);
    exit_current(WaitStatus::signaled(signal).0)
}

fn wake_process(process: &Process) {
    let task = process.task.lock().clone();
    if let Some(task) = task {
        sched::wake(&task);
    }
}

/// `wait4(pid, options)`: the pid and wait status of an exited child,
/// `Ok(None)` with WNOHANG when none has exited yet.
pub fn wait(pid: i64, nohang: bool) -> Result<Option<(Pid, i32)>, Errno> {
    let me = current_process();
    // -1: any child; a positive pid: that child; nothing else matches
    // (no process groups).
    let wanted = match pid {
        -1 => None,
        pid => Some(Pid::try_from(pid).map_err(|_| Errno::ECHILD)?),
    };
    loop {
        {
            let mut children = me.children.lock();
            let mut zombies = me.zombies.lock();
            let zombie = match wanted {
                None if children.is_empty() => return Err(Errno::ECHILD),
                None => zombies.pop_first(),
                Some(pid) if !children.contains_key(&pid) => return Err(Errno::ECHILD),
                Some(pid) => zombies.take(&pid),
            };
            if let Some(child) = zombie.and_then(|pid| children.remove(&pid)) {
                PROCESSES.lock().remove(&child.pid);
                let status = child.exit_status.lock().unwrap_or(0);
                return Ok(Some((child.pid, status)));
            }
        }
        if nohang {
            return Ok(None);
        }
        // Uniprocessor, kernel not preemptible: no child can exit between
        // the check above and blocking here.
        sched::block(None);
    }
}

/// A process's name: its argv[0].
pub fn name(process: &Process) -> String {
    let cmdline = process.cmdline.lock();
    let first = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(first).into_owned()
}
