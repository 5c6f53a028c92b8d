//! Processes: thread groups. A process has an address space (shared with
//! the processes `CLONE_VM` made: a `vfork` child and its parent), open
//! files (shared with `CLONE_FILES`), a parent and children, and one or more
//! threads ([`thread::Thread`]), each a task of the scheduler.
//!
//! A thread ends with `exit`; the process ends when its last thread does.
//! `exit_group` (and a fatal signal) ends every thread: the others are
//! interrupted from what they wait for and end on their way back to user
//! space, where a thread always checks what is pending for it
//! ([`return_to_user`]): that is also where signals are delivered
//! ([`signal`]). A process belongs to a process group and a session
//! (`pgid`, `sid`), inherited at clone.

pub mod exec;
pub mod fd;
pub mod itimer;
pub mod jobctl;
pub mod oom;
pub mod policy;
pub mod posix_timer;
pub mod procfs;
pub mod signal;
pub mod sysfs;
pub mod thread;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use aspen_abi::clone::{CloneArgs, CloneFlags};
use aspen_abi::cred::Credentials;
use aspen_abi::fcntl::OpenFlags;
use aspen_abi::resource::Limits;
use aspen_abi::sched::SchedParams;
use aspen_abi::signal::{SaFlags, SigInfo, SigNo, CLD_EXITED, CLD_KILLED, SIG_IGN};
use aspen_abi::uaccess::{UserMemory, UserSlice};
use aspen_abi::wait::{Signal, WaitStatus};
use aspen_mm::aspace::{Activation, AddressSpace, FaultError, FaultKind, NeedsExclusive};
use aspen_mm::errno::Errno;
use aspen_mm::share_gate::{Hold, ShareGate};
use spin::Mutex;

use self::fd::{Description, FdTable, OpenDescription};
use self::signal::{Actions, Pending, SharedActions};
use self::thread::Thread;
use crate::arch::context::{FpState, ThreadPointers};
use crate::arch::exception::TrapFrame;
use crate::arch::{cpu, mmu};
use crate::memory::user_env::KernelMm;
use crate::task::lock::{SleepLock, SleepLockGuard};
use crate::task::sched;
use crate::task::stack::StackError;
use crate::task::wait::WaitQueue;
use crate::task::{Pid, Task, TaskState};

pub type UserSpace = AddressSpace<'static, KernelMm>;
/// An address space and the processes that share it.
pub type SharedSpace = Arc<Space>;

/// An address space as processes share it: the space behind a sleeping
/// lock (its holder may be switched out at the pause points of a long
/// memory pass, and a thread that faults meanwhile waits), and beside it
/// what a task switch needs to make it current, which takes no lock.
///
/// Page faults its threads take on first touches of anonymous memory and
/// of a file's cached pages, on copy-on-write pages of private memory and
/// on writes to a shared mapping's read-only pages, do not take the lock (nor the big kernel lock): they resolve with the
/// space shared ([`Space::fault_shared`]), several cores at once, inside
/// its `gate`; the lock's holder closes the gate, waits for them to leave
/// and keeps new ones out while it changes the space ([`Space::lock`],
/// [`SpaceEdit`]).
pub struct Space {
    activation: Activation<'static, KernelMm>,
    /// Dropped by `Space`'s own `drop`, which counts the teardown.
    mm: ManuallyDrop<SleepLock<UserSpace>>,
    /// Between the faults resolving with the space shared and the lock's
    /// holder, which closes it to change the space.
    gate: ShareGate,
}

/// How many times a shared fault looks at a space in an editing stretch
/// before it takes the locks instead (a stretch is a few thousand
/// instructions).
const EDITING_SPINS: u32 = 512;

/// The space's lock held for a change whose table work runs while faults
/// share the space (mmap, a small munmap): the varea map changes in short
/// stretches alone ([`Self::alone`]).
pub struct SpaceEdit<'s> {
    space: &'s Space,
    mm: SleepLockGuard<'s, UserSpace>,
}

impl SpaceEdit<'_> {
    /// Runs `f` on the space, the faults sharing it ended and new ones
    /// held back (spinning: `f` must be short and have no pause point).
    pub fn alone<R>(&mut self, f: impl FnOnce(&mut UserSpace) -> R) -> R {
        self.space.gate.close(Hold::Editing);
        let result = f(&mut self.mm);
        self.space.gate.open(Hold::Editing);
        result
    }

    /// Runs `f` on the space, the faults sharing it ended and new ones
    /// sent to take the lock (`f` may pause), as [`Space::lock`].
    pub fn exclusive<R>(&mut self, f: impl FnOnce(&mut UserSpace) -> R) -> R {
        self.space.gate.close(Hold::Exclusive);
        let result = f(&mut self.mm);
        self.space.gate.open(Hold::Exclusive);
        result
    }

    /// Empties an unmap's range while faults share the space.
    pub fn zap_shared(&self, zap: &aspen_mm::aspace::SharedZap) {
        // SAFETY: this task holds the space's lock with the gate open:
        // every other user of the space meanwhile is a shared fault, and
        // `zap` is this unmap's.
        unsafe { self.mm.zap_shared(zap) }
    }
}

/// The space, for the holder of its lock alone ([`Space::lock`]).
pub struct SpaceGuard<'s> {
    space: &'s Space,
    mm: SleepLockGuard<'s, UserSpace>,
}

impl core::ops::Deref for SpaceGuard<'_> {
    type Target = UserSpace;

    fn deref(&self) -> &UserSpace {
        &self.mm
    }
}

impl core::ops::DerefMut for SpaceGuard<'_> {
    fn deref_mut(&mut self) -> &mut UserSpace {
        &mut self.mm
    }
}

impl Drop for SpaceGuard<'_> {
    fn drop(&mut self) {
        // Shared faults may come back in (the lock itself goes after).
        self.space.gate.open(Hold::Exclusive);
    }
}

/// Address spaces being torn down now. The teardown's pause points let
/// other tasks (on other cores, too) run before its frames are back, after
/// the last reference is gone: the OOM killer waits for this to be 0, not
/// only for its victim's space to have no reference left.
static SPACES_ENDING: AtomicUsize = AtomicUsize::new(0);

impl Space {
    pub fn new(mm: UserSpace) -> SharedSpace {
        Arc::new(Self {
            activation: mm.activation(),
            mm: ManuallyDrop::new(SleepLock::new(mm)),
            gate: ShareGate::new(),
        })
    }

    /// Takes the space's lock (blocking while another task holds it),
    /// then waits for the faults resolving with the space shared to end:
    /// they run with IRQs masked and wait for nothing this holder has (no
    /// big kernel lock, no sleeping lock), so the wait is short. New ones
    /// stay out until the guard drops.
    pub fn lock(&self) -> SpaceGuard<'_> {
        let mm = self.mm.lock();
        self.gate.close(Hold::Exclusive);
        SpaceGuard { space: self, mm }
    }

    /// Takes the space's lock for a change that runs mostly while faults
    /// share the space ([`SpaceEdit`]).
    pub fn lock_for_edit(&self) -> SpaceEdit<'_> {
        SpaceEdit { space: self, mm: self.mm.lock() }
    }

    /// Resolves a fault of `kind` at `va` with the space shared, without
    /// its lock: a first touch of anonymous memory or of a file's cached
    /// page, or a write to a page of private memory shared copy-on-write
    /// or to a shared mapping's read-only page (`what`), on as many cores
    /// at once as fault
    /// (see `aspen_mm::aspace::shared`). [`NeedsExclusive`]
    /// while the lock's holder uses the space, or for any other fault:
    /// nothing changed, and the caller resolves it under the lock. Called
    /// with IRQs masked: the lock's holder waits for it.
    pub fn fault_shared(
        &self,
        va: aspen_mm::VirtAddr,
        kind: FaultKind,
        what: SharedFault,
    ) -> Result<(), NeedsExclusive> {
        // An editing stretch is short, unless its core is not running (under
        // an emulator with fewer host cores than guest ones): then the locks
        // are the better wait.
        let _inside = self.gate.enter(EDITING_SPINS).ok_or(NeedsExclusive)?;
        // SAFETY: inside the open gate, so the lock's holder changes the
        // space only after this call ends (closing waits for the sharers
        // inside): every other use of it meanwhile is another shared fault,
        // or an unmap's `zap_shared`, as `fault_shared` requires.
        let mm = unsafe { &*self.mm.as_ptr() };
        match what {
            // SAFETY: as above.
            SharedFault::FirstTouch => unsafe { mm.fault_shared(va, kind) },
            // SAFETY: as above.
            SharedFault::CopyOnWrite => unsafe { mm.cow_shared(va) },
        }
    }
}

/// Which faults resolve with the space shared ([`Space::fault_shared`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedFault {
    /// A translation fault: no entry (a first touch).
    FirstTouch,
    /// A permission fault on a write: a page shared copy-on-write, or a
    /// shared mapping's page mapped read-only.
    CopyOnWrite,
}

impl Drop for Space {
    fn drop(&mut self) {
        SPACES_ENDING.fetch_add(1, Ordering::AcqRel);
        // SAFETY: `mm` is dropped once, here, and `self` is not used after.
        unsafe { ManuallyDrop::drop(&mut self.mm) };
        SPACES_ENDING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether an address space is being torn down (its frames on their way
/// back to the pool).
pub fn spaces_ending() -> bool {
    SPACES_ENDING.load(Ordering::Acquire) != 0
}
/// A descriptor table and the processes that share it.
pub type SharedFiles = Arc<Mutex<FdTable>>;
/// A working directory and umask and the processes that share them.
pub type SharedFs = Arc<Mutex<FsContext>>;

/// What `CLONE_FS` shares: where relative paths start and the umask.
#[derive(Clone, Debug)]
pub struct FsContext {
    /// The working directory: an absolute path without "." or ".."
    /// components (what `getcwd` reports).
    pub cwd: Vec<u8>,
    /// The permission bits `open` and `mkdir` clear in a new file's mode.
    pub umask: u32,
}

impl Default for FsContext {
    fn default() -> Self {
        Self { cwd: alloc::vec![b'/'], umask: 0o022 }
    }
}

/// A process: a thread group.
pub struct Process {
    /// Its id: the thread group id, its first thread's id.
    pub pid: Pid,
    parent: Mutex<Weak<Process>>,
    /// Its live threads by thread id.
    threads: Mutex<BTreeMap<Pid, Arc<Thread>>>,
    /// `None` once the process has ended.
    space: Mutex<Option<SharedSpace>>,
    /// The address of the space's cell while it holds one (0 once ended),
    /// kept with `space` (written under its lock): a task switch compares
    /// two processes' spaces without taking either lock.
    space_key: AtomicUsize,
    /// `None` once the process has ended.
    files: Mutex<Option<SharedFiles>>,
    /// Its children by pid, zombies included until reaped.
    children: Mutex<BTreeMap<Pid, Arc<Process>>>,
    /// The pids of its children that have ended and wait to be reaped, so
    /// that `wait` finds one without scanning every child.
    zombies: Mutex<BTreeSet<Pid>>,
    /// Woken when a child ends or a `vfork` child lets its parent go.
    child_events: WaitQueue,
    /// Woken when one of its threads ends (`execve` waits for the others).
    thread_events: WaitQueue,
    /// How its threads are to end, if they are.
    ending: Mutex<Ending>,
    /// Whether `ending` asks any thread to end: the check on every return
    /// to user space reads only this.
    ending_pending: AtomicBool,
    /// The wait status once the process has ended (a zombie until reaped).
    exit_status: Mutex<Option<i32>>,
    /// The signal its parent gets when it ends (0: none).
    exit_signal: AtomicU8,
    /// A `vfork` child's parent thread, waiting until the child execs or
    /// ends.
    vfork_parent: Mutex<Option<Arc<Thread>>>,
    /// argv joined with NULs, for `/proc/<pid>/cmdline`.
    pub cmdline: Mutex<Vec<u8>>,
    /// The path of the program it runs, for `/proc/<pid>/exe`.
    pub exe: Mutex<Vec<u8>>,
    /// Its working directory and umask (shared with `CLONE_FS`).
    fs: SharedFs,
    /// Its user and group ids, inherited at clone and kept by `execve`.
    pub creds: Mutex<Credentials>,
    /// Its resource limits.
    pub limits: Mutex<Limits>,
    /// `ITIMER_REAL`.
    real_timer: Mutex<itimer::RealTimer>,
    /// Its POSIX timers (`timer_create`).
    posix_timers: Mutex<posix_timer::Timers>,
    /// Page faults resolved for it (`minflt` in `/proc/<pid>/stat`).
    pub faults: AtomicU64,
    /// Times a switch to one of its threads wrote TTBR0.
    pub space_switches: AtomicU64,
    /// The CPU time and switches of its threads that have ended.
    ended_threads: Mutex<CpuUsage>,
    /// The CPU time of its reaped children and theirs (`cutime`, `cstime`).
    reaped_children: Mutex<CpuUsage>,
    /// The counter when it was made (its first thread's start).
    pub started: u64,
    /// Its signal actions (shared with `CLONE_SIGHAND` processes; a new
    /// table at `execve` if shared).
    actions: Mutex<SharedActions>,
    /// Signals sent to the process, waiting for a thread to take them.
    pending: Mutex<Pending>,
    /// Its process group.
    pgid: AtomicU32,
    /// Its session.
    sid: AtomicU32,
    /// Whether it has called `execve` (`setpgid` on it is then `EACCES`).
    execed: AtomicBool,
    /// Where its address space maps the `rt_sigreturn` trampoline (0: not
    /// yet; mapped when a handler without `SA_RESTORER` is installed).
    trampoline: AtomicU64,
    /// Job control: a stop in progress or in force, what the parent has
    /// yet to learn of it.
    job: Mutex<jobctl::JobState>,
    /// Whether it gave up its session's controlling terminal
    /// (`TIOCNOTTY`), inherited at fork, cleared by `setsid`.
    detached_from_tty: AtomicBool,
}

/// CPU time (counter ticks), task switches and page faults.
#[derive(Clone, Copy, Default, Debug)]
pub struct CpuUsage {
    pub user: u64,
    pub system: u64,
    pub voluntary: u64,
    pub involuntary: u64,
    /// Page faults resolved (counted per process, not per thread).
    pub faults: u64,
}

impl CpuUsage {
    fn of(task: &Task) -> Self {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (user, system) = crate::task::cputime::task_times(task);
        let t = &task.times;
        Self { user, system, voluntary: get(&t.voluntary), involuntary: get(&t.involuntary), faults: 0 }
    }

    fn add(&mut self, other: CpuUsage) {
        self.user += other.user;
        self.system += other.system;
        self.voluntary += other.voluntary;
        self.involuntary += other.involuntary;
        self.faults += other.faults;
    }
}

/// How the threads of a process are to end.
#[derive(Default)]
struct Ending {
    /// `exit_group` or a fatal signal: every thread ends, and the process
    /// with this status.
    group: Option<i32>,
    /// A thread in `execve` (this id) ending the others.
    exec_by: Option<Pid>,
    /// The first thread's status, when it ended with `exit` before others.
    leader: Option<i32>,
}

static PROCESSES: Mutex<BTreeMap<Pid, Arc<Process>>> = Mutex::new(BTreeMap::new());
/// The first process (`spawn_init`), which adopts orphans; its pid is 1
/// unless kernel threads (`aspen.ktest`) took the first ids.
static INIT: spin::Once<Weak<Process>> = spin::Once::new();
/// The memory balance when the first process started ([`report_memory`]).
static START_BALANCE: spin::Once<procfs::MemoryBalance> = spin::Once::new();

/// Prints where memory is now and how much of it nothing accounts for
/// against the start of the first process (`aspen: memory ...`, on the
/// console whatever the log level): how a run that ends by powering off
/// shows that it gave back what it took (`scripts/ltp.sh` checks it).
pub fn report_memory() {
    let now = procfs::memory_balance();
    let Some(start) = START_BALANCE.get() else { return };
    let unaccounted = start.total() as i64 - now.total() as i64;
    crate::println!("aspen: memory at power off: {now}");
    crate::println!("aspen: memory at the start of the first process: {start}");
    crate::println!("aspen: memory unaccounted for: {unaccounted} kB");
}

fn init_process() -> Option<Arc<Process>> {
    INIT.get().and_then(Weak::upgrade)
}
/// The first process's group and session.
const INIT_PID: Pid = 1;

/// Why a process or thread could not be made.
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

    /// The first process after pid `after` for which `which` holds, in pid
    /// order: a walk of the table that allocates nothing and holds its
    /// lock only while it looks.
    pub fn next_after(after: Pid, which: impl Fn(&Process) -> bool) -> Option<Arc<Process>> {
        use core::ops::Bound::{Excluded, Unbounded};
        PROCESSES.lock().range((Excluded(after), Unbounded)).map(|(_, p)| p).find(|p| which(p)).cloned()
    }

    /// The processes for which `which` holds, in pid order, walked one at
    /// a time ([`Self::next_after`]): no list is made, and no lock of the
    /// table is held between two steps.
    pub fn walk(which: impl Fn(&Process) -> bool) -> impl Iterator<Item = Arc<Process>> {
        let mut after = 0;
        core::iter::from_fn(move || {
            let process = Self::next_after(after, &which)?;
            after = process.pid;
            Some(process)
        })
    }

    /// [`Self::all`], `ENOMEM` when the list cannot be allocated.
    pub fn try_all() -> Result<Vec<Arc<Process>>, Errno> {
        let processes = PROCESSES.lock();
        let mut all = Vec::new();
        all.try_reserve_exact(processes.len()).map_err(|_| Errno::ENOMEM)?;
        all.extend(processes.values().cloned());
        Ok(all)
    }

    pub fn ppid(&self) -> Pid {
        self.parent.lock().upgrade().map_or(0, |p| p.pid)
    }

    pub fn is_zombie(&self) -> bool {
        self.exit_status.lock().is_some()
    }

    /// The CPU time and switches of all its threads, ended ones included.
    pub fn cpu_usage(&self) -> CpuUsage {
        let mut usage = *self.ended_threads.lock();
        for task in self.threads.lock().values().filter_map(|t| t.task()) {
            usage.add(CpuUsage::of(&task));
        }
        usage
    }

    /// The CPU time of its reaped children (and of theirs).
    pub fn children_usage(&self) -> CpuUsage {
        *self.reaped_children.lock()
    }

    /// Its live threads.
    pub fn threads(&self) -> Vec<Arc<Thread>> {
        self.threads.lock().values().cloned().collect()
    }

    /// How many threads it has.
    pub fn thread_count(&self) -> usize {
        self.threads.lock().len()
    }

    /// Runs `f` on the address space, under its sleeping lock (which
    /// may block, and `f` may yield at the pause points of a long pass:
    /// the caller holds no spin lock); `ESRCH` after exit.
    pub fn with_mm<R>(&self, f: impl FnOnce(&mut UserSpace) -> R) -> Result<R, Errno> {
        self.with_space(|space| f(&mut space.lock()))
    }

    /// Runs `f` on the address space as processes share it (whose lock `f`
    /// takes); `ESRCH` after exit.
    pub fn with_space<R>(&self, f: impl FnOnce(&Space) -> R) -> Result<R, Errno> {
        let space = self.space.lock().clone().ok_or(Errno::ESRCH)?;
        Ok(f(&space))
    }

    /// Runs `f` on the working directory and umask.
    pub fn with_fs<R>(&self, f: impl FnOnce(&mut FsContext) -> R) -> R {
        f(&mut self.fs.lock())
    }

    /// Runs `f` on the descriptor table; `ESRCH` after exit.
    pub fn with_files<R>(&self, f: impl FnOnce(&mut FdTable) -> R) -> Result<R, Errno> {
        let files = self.files.lock();
        let mut table = files.as_ref().ok_or(Errno::ESRCH)?.lock();
        Ok(f(&mut table))
    }

    /// Makes the address space current on this CPU (TTBR0 with its ASID,
    /// no TLB invalidation), or the empty table once the process has ended.
    /// Runs inside the scheduler: takes only the `space` cell's spin lock
    /// (never held across a switch), not the space's sleeping lock.
    fn activate(&self) {
        match self.space.lock().as_ref() {
            Some(space) => {
                let (root, asid) = space.activation.activate(cpu::cpu_id());
                mmu::set_user_table(root, asid.0);
            }
            None => mmu::set_empty_user_table(),
        }
        self.space_switches.fetch_add(1, Ordering::Relaxed);
    }

    /// What tells its address space from every other live one (0 once
    /// ended): two processes with one key share their space.
    fn space_key(&self) -> usize {
        self.space_key.load(Ordering::Relaxed)
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

    /// Whether `thread` must end on its way back to user space.
    /// Whether every thread of it is to end (a fatal signal, exit_group).
    fn is_dying(&self) -> bool {
        self.ending_pending.load(Ordering::Relaxed) && self.ending.lock().group.is_some()
    }

    fn must_end(&self, thread: &Thread) -> bool {
        if !self.ending_pending.load(Ordering::Relaxed) {
            return false;
        }
        let ending = self.ending.lock();
        ending.group.is_some() || ending.exec_by.is_some_and(|tid| tid != thread.tid())
    }

    fn set_ending(&self, change: impl FnOnce(&mut Ending)) {
        let mut ending = self.ending.lock();
        change(&mut ending);
        let pending = ending.group.is_some() || ending.exec_by.is_some();
        self.ending_pending.store(pending, Ordering::Relaxed);
        drop(ending);
        if pending {
            for thread in self.threads.lock().values() {
                thread.work.fetch_or(signal::WORK_ENDING, Ordering::Relaxed);
            }
        }
    }

    /// Its process group.
    pub fn pgid(&self) -> Pid {
        self.pgid.load(Ordering::Relaxed)
    }

    /// Its session.
    pub fn sid(&self) -> Pid {
        self.sid.load(Ordering::Relaxed)
    }

    /// Whether it gave up its session's controlling terminal (`TIOCNOTTY`).
    pub fn detached_from_tty(&self) -> bool {
        self.detached_from_tty.load(Ordering::Relaxed)
    }

    /// Gives up its session's controlling terminal (`TIOCNOTTY`).
    pub fn detach_from_tty(&self) {
        self.detached_from_tty.store(true, Ordering::Relaxed);
    }

    /// Interrupts every thread but `me` (to end them).
    fn interrupt_others(&self, me: &Thread) {
        let others: Vec<Arc<Thread>> = self.threads.lock().values().filter(|t| t.tid() != me.tid()).cloned().collect();
        for thread in others {
            thread.interrupt();
        }
    }

    /// `execve` in a threaded process: ends every other thread and waits
    /// until they are gone; `me` then takes the process's id. `EINTR` when
    /// the process is ending anyway (another thread's `exit_group` or
    /// `execve` came first): the caller ends on its way out.
    pub fn end_other_threads(&self, me: &Thread) -> Result<(), Errno> {
        let mut refused = false;
        self.set_ending(|ending| match ending {
            Ending { group: None, exec_by: None, .. } => ending.exec_by = Some(me.tid()),
            _ => refused = true,
        });
        if refused {
            return Err(Errno::EINTR);
        }
        while self.thread_count() > 1 {
            if self.ending.lock().group.is_some() {
                self.set_ending(|ending| ending.exec_by = None);
                return Err(Errno::EINTR);
            }
            self.interrupt_others(me);
            self.thread_events.wait(None);
        }
        self.set_ending(|ending| {
            ending.exec_by = None;
            ending.leader = None;
        });
        if me.tid() != self.pid {
            let mut threads = self.threads.lock();
            let thread = threads.remove(&me.tid());
            me.take_leader_id();
            threads.extend(thread.map(|t| (self.pid, t)));
        }
        Ok(())
    }

    /// `execve`'s change of program, once the new one is loaded and the
    /// other threads are gone: the new address space, descriptors of its
    /// own without the close-on-exec ones, a `vfork` parent let go.
    /// Handlers go back to the default (ignored signals stay ignored; the
    /// mask and pending signals stay), the alternate stack goes. Returns
    /// the old address space, active no more.
    #[must_use = "the old space, for the caller to drop outside its preloaded section"]
    pub fn replace_image(&self, space: UserSpace, cmdline: Vec<u8>, exe: Vec<u8>) -> Option<Arc<Space>> {
        *self.cmdline.lock() = cmdline;
        *self.exe.lock() = exe;
        // POSIX timers end here; ITIMER_REAL goes on (as Linux).
        posix_timer::release_all(self);
        self.execed.store(true, Ordering::Relaxed);
        self.trampoline.store(0, Ordering::Relaxed);
        {
            let mut actions = self.actions.lock();
            if Arc::strong_count(&actions) > 1 {
                let copy = actions.lock().clone();
                *actions = Arc::new(Mutex::new(copy));
            }
            actions.lock().reset_handlers();
        }
        for thread in self.threads.lock().values() {
            thread.signals.lock().altstack = aspen_abi::signal::AltStack::default();
        }
        let new = Space::new(space);
        let old = {
            let mut space = self.space.lock();
            self.space_key.store(Arc::as_ptr(&new) as usize, Ordering::Relaxed);
            space.replace(new)
        };
        // Onto the new address space before the old one goes.
        self.activate();
        let mut files = self.files.lock();
        if let Some(shared) = files.as_mut() {
            if Arc::strong_count(shared) > 1 {
                let copy = shared.lock().clone();
                *shared = Arc::new(Mutex::new(copy));
            }
            shared.lock().close_on_exec();
        }
        drop(files);
        self.release_vfork_parent();
        old
    }

    /// Heap a copy of the descriptor table takes (execve unshares it).
    pub fn files_heap_size(&self) -> usize {
        self.with_files(|files| files.heap_size()).unwrap_or(0)
    }

    fn release_vfork_parent(&self) {
        let parent = self.vfork_parent.lock().take();
        if let Some(parent) = parent {
            parent.process.child_events.wake_all();
        }
    }

    /// Ends the process once its last thread has ended: frees its memory
    /// and files, hands its children to init, tells its parent.
    fn end(self: &Arc<Self>, status: i32) {
        itimer::release(self);
        posix_timer::release_all(self);
        // Off the address space before it goes.
        sched::drop_user_table();
        let space = {
            let mut space = self.space.lock();
            self.space_key.store(0, Ordering::Relaxed);
            space.take()
        };
        drop(space);
        let files = self.files.lock().take();
        drop(files);
        self.release_vfork_parent();
        if self.sid() == self.pid {
            crate::tty::session_leader_ended(self.pid);
        }

        let orphans = core::mem::take(&mut *self.children.lock());
        let orphan_zombies = core::mem::take(&mut *self.zombies.lock());
        // The groups this end may leave orphaned: its own, and those of
        // children in other groups of its session.
        let mut ties: Vec<Pid> = orphans
            .values()
            .filter(|child| !child.is_zombie() && child.pgid() != self.pgid() && child.sid() == self.sid())
            .map(|child| child.pgid())
            .collect();
        match init_process().filter(|init| !core::ptr::eq(init.as_ref(), self.as_ref())) {
            Some(init) if !orphans.is_empty() => {
                for child in orphans.values() {
                    *child.parent.lock() = Arc::downgrade(&init);
                    // As Linux: init is not to be sent other signals, and its
                    // plain wait4 must see every child it adopts.
                    child.exit_signal.store(Signal::Chld.number(), Ordering::Relaxed);
                }
                init.children.lock().extend(orphans);
                if !orphan_zombies.is_empty() {
                    init.zombies.lock().extend(orphan_zombies);
                    init.child_events.wake_all();
                }
            }
            // Nobody will reap them (the live ones remove themselves when
            // they end, finding no parent).
            _ => {
                let mut processes = PROCESSES.lock();
                for pid in orphan_zombies {
                    processes.remove(&pid);
                }
            }
        }
        *self.exit_status.lock() = Some(status);
        let parent = self.parent.lock().upgrade();
        if parent.as_ref().is_some_and(|parent| parent.pgid() != self.pgid() && parent.sid() == self.sid()) {
            ties.push(self.pgid());
        }
        ties.sort_unstable();
        ties.dedup();
        for pgid in ties {
            jobctl::hang_up_if_orphaned(pgid);
        }
        if let Some(parent) = parent {
            self.notify_parent(&parent, status);
        } else {
            // Nobody will reap it.
            PROCESSES.lock().remove(&self.pid);
        }
    }

    /// Tells `parent` that the process ended with `status`: its exit
    /// signal (`SIGCHLD` with `CLD_EXITED`/`CLD_KILLED`), and a zombie to
    /// reap, unless the parent ignores `SIGCHLD` or has `SA_NOCLDWAIT`
    /// (then the child is reaped at once, as Linux).
    fn notify_parent(self: &Arc<Self>, parent: &Arc<Process>, status: i32) {
        let status = WaitStatus(status);
        let (code, value) = match status.term_signal() {
            Some(signo) => (CLD_KILLED, i32::from(signo)),
            None => (CLD_EXITED, i32::from(status.exit_code().unwrap_or(0))),
        };
        let mut signo = SigNo::new(u64::from(self.exit_signal.load(Ordering::Relaxed)));
        let mut autoreap = false;
        if signo == Some(SigNo::from(Signal::Chld)) {
            let action = parent.actions().lock().get(SigNo::from(Signal::Chld));
            autoreap = action.handler == SIG_IGN || action.flags.contains(SaFlags::NOCLDWAIT);
            if action.handler == SIG_IGN {
                signo = None;
            }
        }
        if autoreap {
            parent.children.lock().remove(&self.pid);
            PROCESSES.lock().remove(&self.pid);
        } else {
            parent.zombies.lock().insert(self.pid);
        }
        parent.child_events.wake_all();
        if let Some(signo) = signo {
            let mut info = SigInfo::child(code, self.pid, 0, value);
            info.signo = signo.number() as i32;
            // A parent's full real-time queue loses the notice, not the child.
            let _ = parent.send(signo, info);
        }
    }
}

/// The live thread whose id is `tid`, in any process.
pub fn thread_by_tid(tid: Pid) -> Option<Arc<Thread>> {
    PROCESSES.lock().values().find_map(|process| process.threads.lock().get(&tid).cloned())
}

/// The process whose thread is running, if a user task runs.
pub fn current() -> Option<Arc<Process>> {
    thread::current().map(|thread| thread.process.clone())
}

/// Like [`current`], for code that only runs on behalf of a process.
pub fn current_process() -> Arc<Process> {
    thread::with_current(|thread| thread.process.clone())
}

/// The user context saved at the top of `task`'s kernel stack.
fn user_frame_of(task: &Task) -> *mut TrapFrame {
    (task.stack_top() as usize - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame
}

/// A task scheduled as `params` that will return to EL0 through `frame`
/// (copied to the top of its kernel stack) with FP/SIMD state `fp` and
/// thread pointers `pointers`.
fn new_task(
    params: SchedParams,
    frame: &TrapFrame,
    fp: FpState,
    pointers: ThreadPointers,
) -> Result<Arc<Task>, SpawnError> {
    let task = Task::new_user(params, core::mem::size_of::<TrapFrame>(), fp, pointers).map_err(SpawnError::Stack)?;
    // SAFETY: the new task's stack is ours alone until it is made ready,
    // and `new_user` left exactly one TrapFrame's room at its top.
    unsafe { user_frame_of(&task).write(frame.clone()) };
    Ok(task)
}

/// Whether the running task may let others run at a pause point of a
/// long pass over its address space (its space's lock stays held): only
/// when no other task uses that space. A thread of the space could
/// otherwise fault inside a system call's user copy while it holds a spin
/// lock (a pipe's, an open file's offset, a `/proc` file's position),
/// block on the space's lock, and leave any task that then wants the same
/// spin lock spinning forever. Kernel threads and processes whose space is
/// gone (a teardown at exit) may always.
pub fn may_pause_memory_pass() -> bool {
    let Some(me) = thread::current() else { return true };
    let process = &me.process;
    // The process's own reference, and the one `with_mm` holds.
    process.thread_count() <= 1 && process.space.lock().as_ref().is_none_or(|space| Arc::strong_count(space) <= 2)
}

/// Whether the current thread alone can reach `description` (held by its
/// caller and by one descriptor of a table no other process shares, in a
/// single-threaded process): then a long read or write may let other tasks
/// run between its chunks without anyone seeing them interleave with
/// another transfer (which Linux prevents with the description's
/// `f_pos_lock`, a sleeping lock Aspen does not have yet).
pub fn owns_description_alone(description: &Arc<fd::OpenDescription>) -> bool {
    let Some(me) = thread::current() else { return false };
    let process = &me.process;
    Arc::strong_count(description) <= 2
        && process.thread_count() <= 1
        && process.files.lock().as_ref().is_some_and(|files| Arc::strong_count(files) == 1)
}

/// What a new process is made of.
struct ProcessParts {
    parent: Option<Arc<Process>>,
    space: SharedSpace,
    files: SharedFiles,
    fs: SharedFs,
    creds: Credentials,
    cmdline: Vec<u8>,
    exe: Vec<u8>,
    limits: Limits,
    exit_signal: u8,
    actions: SharedActions,
    /// Process group and session.
    pgid: Pid,
    sid: Pid,
    trampoline: u64,
    detached_from_tty: bool,
}

/// Makes a process with one thread running `task`; the caller makes the
/// task ready.
fn new_process(parts: ProcessParts, task: Arc<Task>) -> Arc<Thread> {
    let process = Arc::new(Process {
        pid: task.pid,
        parent: Mutex::new(parts.parent.as_ref().map_or_else(Weak::new, Arc::downgrade)),
        threads: Mutex::new(BTreeMap::new()),
        space_key: AtomicUsize::new(Arc::as_ptr(&parts.space) as usize),
        space: Mutex::new(Some(parts.space)),
        files: Mutex::new(Some(parts.files)),
        children: Mutex::new(BTreeMap::new()),
        zombies: Mutex::new(BTreeSet::new()),
        child_events: WaitQueue::new(),
        thread_events: WaitQueue::new(),
        ending: Mutex::new(Ending::default()),
        ending_pending: AtomicBool::new(false),
        exit_status: Mutex::new(None),
        exit_signal: AtomicU8::new(parts.exit_signal),
        vfork_parent: Mutex::new(None),
        cmdline: Mutex::new(parts.cmdline),
        exe: Mutex::new(parts.exe),
        fs: parts.fs,
        creds: Mutex::new(parts.creds),
        limits: Mutex::new(parts.limits),
        real_timer: Mutex::new(itimer::RealTimer::default()),
        posix_timers: Mutex::new(posix_timer::Timers::default()),
        faults: AtomicU64::new(0),
        space_switches: AtomicU64::new(0),
        ended_threads: Mutex::new(CpuUsage::default()),
        reaped_children: Mutex::new(CpuUsage::default()),
        started: task.started,
        actions: Mutex::new(parts.actions),
        pending: Mutex::new(Pending::default()),
        pgid: AtomicU32::new(parts.pgid),
        sid: AtomicU32::new(parts.sid),
        execed: AtomicBool::new(false),
        trampoline: AtomicU64::new(parts.trampoline),
        job: Mutex::new(jobctl::JobState::default()),
        detached_from_tty: AtomicBool::new(parts.detached_from_tty),
    });
    let thread = add_thread(&process, task);
    if let Some(parent) = parts.parent {
        parent.children.lock().insert(process.pid, process.clone());
    }
    PROCESSES.lock().insert(process.pid, process);
    thread
}

fn add_thread(process: &Arc<Process>, task: Arc<Task>) -> Arc<Thread> {
    let thread = Thread::new(process.clone(), task.clone());
    // SAFETY: the user context is a `Thread`.
    unsafe { task.set_user_context(thread.clone()) };
    process.threads.lock().insert(thread.tid(), thread.clone());
    if process.ending_pending.load(Ordering::Relaxed) {
        thread.work.fetch_or(signal::WORK_ENDING, Ordering::Relaxed);
    }
    process.join_stop(&thread);
    thread
}

fn start(thread: &Thread) {
    if let Some(task) = thread.task() {
        sched::make_ready(task);
    }
}

/// Starts the first process: `path` with `argv`, fds 0-2 on the console.
pub fn spawn_init(path: &[u8], argv: &[&[u8]]) -> Result<Arc<Process>, Errno> {
    let limits = Limits::default();
    let stack_limit = limits.get(aspen_abi::resource::Resource::Stack).cur;
    let stack =
        exec::StackRoom { size: exec::stack_size(stack_limit), arg_limit: aspen_abi::stack::arg_limit(stack_limit) };
    let image = exec::load(path, argv, &[b"HOME=/", b"TERM=linux"], stack, &Credentials::root())
        .map_err(exec::ExecError::errno)?;
    let mut files = FdTable::default();
    // One open of the console, duplicated: its status flags are shared.
    let console =
        OpenDescription::new(Description::Console(crate::tty::Node::Console), OpenFlags::RDWR | OpenFlags::LARGEFILE);
    for _ in 0..3 {
        files.insert(console.clone(), false)?;
    }
    let task = new_task(SchedParams::DEFAULT, &image.initial_frame(), FpState::new(), ThreadPointers::default())?;
    let parts = ProcessParts {
        parent: None,
        space: Space::new(image.mm),
        files: Arc::new(Mutex::new(files)),
        fs: Arc::new(Mutex::new(FsContext::default())),
        creds: Credentials::root(),
        cmdline: image.cmdline,
        exe: image.exe,
        limits,
        exit_signal: Signal::Chld.number(),
        actions: Actions::new(),
        pgid: INIT_PID,
        sid: INIT_PID,
        trampoline: 0,
        detached_from_tty: false,
    };
    let thread = new_process(parts, task);
    INIT.call_once(|| Arc::downgrade(&thread.process));
    START_BALANCE.call_once(procfs::memory_balance);
    start(&thread);
    Ok(thread.process.clone())
}

/// `clone`/`clone3`: a new thread of the caller's process, or a new
/// process (with a copy-on-write copy of the address space, or the same
/// one with `CLONE_VM`), returning 0 from the same system call on `args`'
/// stack. Nothing is made when it fails.
/// Heap a clone allocates besides the copy of the address space and the
/// command line: the task, thread and process, a copy of the descriptor
/// table (a slot of 16 bytes per descriptor), signal actions, the
/// working directory, and their entries in the process and thread tables.
const CLONE_HEAP_BOUND: usize = 64 * 1024 + fd::MAX_FDS * 16;

pub fn clone(frame: &TrapFrame, args: &CloneArgs) -> Result<Pid, Errno> {
    let me = thread::current().expect("clone from a kernel thread");
    let process = &me.process;
    let mut child_frame = frame.clone();
    child_frame.x[0] = 0;
    if args.stack_pointer != 0 {
        child_frame.sp_el0 = args.stack_pointer;
    }
    let mut pointers = ThreadPointers::current();
    if args.flags.contains(CloneFlags::SETTLS) {
        pointers.tpidr = args.tls;
    }
    // As Linux's sched_fork: the parent's own policy (not a level lent by
    // priority inheritance), reset by SCHED_RESET_ON_FORK.
    let params = sched::with_current(|task| task.sched_params()).for_child();
    // What the copy allocates, preloaded: ENOMEM before anything is made.
    // Ends before a vfork parent waits (a section's reserve does not
    // outlast a sleep).
    let copied_space =
        if args.flags.contains(CloneFlags::VM) { 0 } else { process.with_mm(|mm| mm.change_heap_bound())? };
    let preload = crate::heap::preload(copied_space + process.cmdline.lock().len() + CLONE_HEAP_BOUND)?;
    let task = new_task(params, &child_frame, FpState::current(), pointers)?;
    let child = if args.is_thread() {
        add_thread(process, task)
    } else {
        let space = if args.flags.contains(CloneFlags::VM) {
            process.space.lock().clone().ok_or(Errno::ESRCH)?
        } else {
            // The new task is made; the copy of the tree (which has pause
            // points of its own) is ahead: a woken better task runs first.
            sched::pause_point();
            Space::new(process.with_mm(|mm| mm.fork())??)
        };
        let files = process.files.lock().clone().ok_or(Errno::ESRCH)?;
        let files = if args.flags.contains(CloneFlags::FILES) {
            files
        } else {
            let copy = files.lock().clone();
            Arc::new(Mutex::new(copy))
        };
        let parent = if args.flags.contains(CloneFlags::PARENT) {
            process.parent.lock().upgrade()
        } else {
            Some(process.clone())
        };
        let cmdline = process.cmdline.lock().clone();
        let exe = process.exe.lock().clone();
        let fs = if args.flags.contains(CloneFlags::FS) {
            process.fs.clone()
        } else {
            Arc::new(Mutex::new(process.fs.lock().clone()))
        };
        let actions = if args.flags.contains(CloneFlags::SIGHAND) {
            process.actions()
        } else {
            let mut copy = process.actions().lock().clone();
            if args.flags.contains(CloneFlags::CLEAR_SIGHAND) {
                copy.reset_handlers();
            }
            Arc::new(Mutex::new(copy))
        };
        let parts = ProcessParts {
            parent,
            space,
            files,
            fs,
            creds: process.creds.lock().clone(),
            cmdline,
            exe,
            limits: *process.limits.lock(),
            exit_signal: args.exit_signal,
            actions,
            pgid: process.pgid(),
            sid: process.sid(),
            trampoline: process.trampoline.load(Ordering::Relaxed),
            detached_from_tty: process.detached_from_tty.load(Ordering::Relaxed),
        };
        new_process(parts, task)
    };
    child.set_affinity(me.affinity());
    // The child blocks what the caller blocks; a thread sharing the
    // address space (not vfork) starts without the alternate stack.
    {
        let mine = me.signals.lock();
        let mut theirs = child.signals.lock();
        theirs.mask = mine.mask;
        if !args.flags.contains(CloneFlags::VM) || args.flags.contains(CloneFlags::VFORK) {
            theirs.altstack = mine.altstack;
        }
    }
    let tid = child.tid();
    // As Linux, a word that cannot be written is not an error of clone.
    if args.flags.contains(CloneFlags::CHILD_SETTID) {
        if let Ok(slice) = UserSlice::new(args.child_tid, 4) {
            let _ = child.process.with_mm(|mm| mm.write(slice, &tid.to_le_bytes()));
        }
    }
    if args.flags.contains(CloneFlags::CHILD_CLEARTID) {
        child.set_clear_child_tid(args.child_tid);
    }
    if args.flags.contains(CloneFlags::PARENT_SETTID) {
        let _ = crate::syscall::copy_out_at(args.parent_tid, &tid.to_le_bytes());
    }
    let vfork = args.flags.contains(CloneFlags::VFORK);
    if vfork {
        *child.process.vfork_parent.lock() = Some(me.clone());
    }
    drop(preload);
    start(&child);
    if vfork {
        // Until the child execs or ends (or this process is ending: as
        // Linux, signals do not end this wait, only the end of the process).
        while child.process.vfork_parent.lock().is_some() && !process.must_end(&me) {
            process.child_events.wait(None);
        }
    }
    Ok(tid)
}

/// Resolves a fault of the running thread with its space shared, without
/// the big kernel lock or the space's ([`Space::fault_shared`]): whether
/// it did. IRQs stay masked.
pub fn resolve_fault_shared(addr: u64, kind: FaultKind, what: SharedFault) -> bool {
    if crate::syscall::tracing() {
        return false;
    }
    thread::with_current(|thread| {
        let process = &thread.process;
        // The process holds the space until its last thread, this one among
        // them, has ended, or another thread's exec (which waits for this
        // one to end) replaces it: the reference `with_space` takes is
        // never the last.
        let shared = process.with_space(|space| space.fault_shared(aspen_mm::VirtAddr::new(addr), kind, what));
        let resolved = matches!(shared, Ok(Ok(())));
        if resolved {
            process.faults.fetch_add(1, Ordering::Relaxed);
        }
        resolved
    })
}

/// Resolves a fault of the current process at `addr`: an error when it is
/// not one the address space can resolve (the signal to send).
pub fn resolve_fault(addr: u64, kind: FaultKind) -> Result<(), FaultError> {
    thread::with_current(|thread| thread.process.resolve_fault(addr, kind))
}

/// Whether a varea of the current process covers `addr` (a fault there
/// is `SEGV_ACCERR`, elsewhere `SEGV_MAPERR`).
pub fn is_mapped(addr: u64) -> bool {
    let addr = aspen_mm::VirtAddr::new(addr);
    current_process().with_mm(|mm| mm.vareas().any(|v| v.range.contains(addr))).unwrap_or(false)
}

/// What a thread does on its way out of the kernel to user space: end,
/// when its process is ending; take its signals; restart or fail an
/// interrupted system call. One relaxed load when there is nothing to do.
pub fn return_to_user(frame: &mut TrapFrame) {
    if work_pending() {
        signal::deliver(frame);
    }
}

/// Whether the running thread has something to do before it returns to
/// user space (one relaxed load).
pub fn work_pending() -> bool {
    thread::with_current(|thread| thread.work.load(Ordering::Relaxed)) != 0
}

/// What the thread leaves behind for others: its robust futexes and PI
/// futexes released (`futex::release`), then its `CLONE_CHILD_CLEARTID`
/// word cleared and its waiters woken, when anyone else still uses the
/// address space (Linux's `futex_exit_release` and `mm_release`).
fn release_user_words(me: &Thread) {
    crate::futex::release(me);
    let addr = me.clear_child_tid();
    if addr == 0 {
        return;
    }
    me.set_clear_child_tid(0);
    let shared = me.process.thread_count() > 1
        || me.process.space.lock().as_ref().is_some_and(|space| Arc::strong_count(space) > 1);
    if shared && crate::syscall::copy_out_at(addr, &0u32.to_le_bytes()).is_ok() {
        crate::futex::wake_at(addr, 1);
    }
}

/// Ends the current thread (`exit`); the process ends with its last
/// thread. Never returns.
pub fn exit_thread(status: i32) -> ! {
    let me = thread::current().expect("exit from a kernel thread");
    let process = me.process.clone();
    release_user_words(&me);
    let last = {
        let mut threads = process.threads.lock();
        threads.remove(&me.tid());
        if let Some(task) = me.task() {
            process.ended_threads.lock().add(CpuUsage::of(&task));
        }
        threads.is_empty()
    };
    if last {
        let ending = process.ending.lock();
        let status = ending.group.or(ending.leader).unwrap_or(status);
        drop(ending);
        process.end(status);
    } else {
        if me.tid() == process.pid {
            process.set_ending(|ending| ending.leader = Some(status));
        }
        process.thread_left_stop();
    }
    process.thread_events.wake_all();
    // The running task stays alive through the scheduler until it is off
    // its stack; the thread no longer needs it.
    me.release_task();
    drop(me);
    drop(process);
    sched::exit_current(TaskState::Exited(status));
    unreachable!("an exited thread was scheduled again");
}

/// Ends every thread of the current process (`exit_group`), the process
/// with wait status `status`. Never returns.
pub fn exit_group(status: i32) -> ! {
    let me = thread::current().expect("exit_group from a kernel thread");
    me.process.set_ending(|ending| {
        ending.group.get_or_insert(status);
    });
    me.process.interrupt_others(&me);
    drop(me);
    exit_thread(status)
}

/// Kills the current process with `signal` (its default action: end the
/// process), logging why.
pub fn kill_current(signal: Signal, why: core::fmt::Arguments<'_>) -> ! {
    let process = current_process();
    log::warn!("pid {} ({}): killed by {signal}: {why}", process.pid, name(&process));
    drop(process);
    exit_group(WaitStatus::signaled(signal).0)
}

/// What a wait found about a child.
#[derive(Clone, Copy, Debug)]
pub enum ChildState {
    /// It ended with this wait status.
    Ended(WaitStatus),
    /// It stopped or continued.
    Job(jobctl::JobReport),
}

/// A child a wait reports: its pid, real user id and state.
#[derive(Clone, Copy, Debug)]
pub struct WaitReport {
    pub pid: Pid,
    pub uid: u32,
    pub state: ChildState,
}

/// `wait4(pid, options)` and `waitid`: a child (any child for -1, child
/// `pid`, a child in the caller's process group for 0 or in group `-pid`)
/// that ended (with `options.exited`; reaped unless `WNOWAIT`), stopped
/// (`WUNTRACED`) or continued (`WCONTINUED`) and was not reported yet;
/// `Ok(None)` with WNOHANG when there is none yet. Interrupted by a signal:
/// `ERESTARTSYS` (restarted or `EINTR` as the handler says).
pub fn wait(pid: i32, options: &aspen_abi::wait::WaitOptions) -> Result<Option<WaitReport>, Errno> {
    let me = thread::current().expect("wait from a kernel thread");
    let process = &me.process;
    let group = match pid {
        0 => Some(process.pgid()),
        -1 => None,
        p if p < 0 => Some(p.unsigned_abs()),
        _ => None,
    };
    let eligible = |child: &Process| {
        options.selects_child(u32::from(child.exit_signal.load(Ordering::Relaxed)))
            && group.is_none_or(|g| child.pgid() == g)
            && (pid <= 0 || child.pid == pid as Pid)
    };
    let report = |child: &Process, state| WaitReport { pid: child.pid, uid: child.creds.lock().ruid, state };
    loop {
        let live = {
            let mut children = process.children.lock();
            let mut zombies = process.zombies.lock();
            if !children.values().any(|c| eligible(c)) {
                return Err(Errno::ECHILD);
            }
            let zombie = options
                .exited
                .then(|| zombies.iter().copied().find(|pid| children.get(pid).is_some_and(|c| eligible(c))))
                .flatten();
            if let Some(pid) = zombie {
                let child = if options.no_wait {
                    children.get(&pid).cloned()
                } else {
                    zombies.remove(&pid);
                    // A parent's first zombie may come at the peak of a
                    // fork bomb: its leaf must not outlive the last one.
                    crate::task::release_if_empty(&mut zombies);
                    children.remove(&pid)
                };
                if let Some(child) = child {
                    if !options.no_wait {
                        PROCESSES.lock().remove(&child.pid);
                        // Its time and faults, and its reaped children's, are the parent's now.
                        let mut usage = child.cpu_usage();
                        usage.faults = child.faults.load(Ordering::Relaxed);
                        usage.add(child.children_usage());
                        process.reaped_children.lock().add(usage);
                    }
                    let status = WaitStatus(child.exit_status.lock().unwrap_or(0));
                    return Ok(Some(report(&child, ChildState::Ended(status))));
                }
            }
            let watches_jobs = options.untraced || options.continued;
            let live = children.values().filter(|c| watches_jobs && eligible(c) && !zombies.contains(&c.pid));
            live.cloned().collect::<Vec<_>>()
        };
        for child in live {
            if let Some(job) = child.job_report(options.untraced, options.continued, options.no_wait) {
                return Ok(Some(report(&child, ChildState::Job(job))));
            }
        }
        if options.no_hang {
            return Ok(None);
        }
        if me.interrupted() {
            return Err(aspen_abi::signal::Restart::Sys.errno());
        }
        process.child_events.wait(None);
    }
}

/// `setpgid(pid, pgid)` with Linux's rules: the caller or a child of it
/// that has not exec'd (`EACCES`) in its session (`EPERM`), not a session
/// leader (`EPERM`), into its own new group or an existing group of the
/// caller's session (`EPERM`); `ESRCH` for anyone else.
pub fn setpgid(pid: i32, pgid: i32) -> Result<(), Errno> {
    let me = current_process();
    let pid = if pid == 0 { me.pid as i32 } else { pid };
    let pgid = if pgid == 0 { pid } else { pgid };
    if pid < 0 || pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = Process::get(pid as Pid).filter(|p| !p.is_zombie()).ok_or(Errno::ESRCH)?;
    if target.ppid() == me.pid {
        if target.sid() != me.sid() {
            return Err(Errno::EPERM);
        }
        if target.execed.load(Ordering::Relaxed) {
            return Err(Errno::EACCES);
        }
    } else if target.pid != me.pid {
        return Err(Errno::ESRCH);
    }
    if target.sid() == target.pid {
        return Err(Errno::EPERM);
    }
    let pgid = pgid as Pid;
    if pgid != target.pid && Process::walk(|p| p.pgid() == pgid && p.sid() == me.sid()).next().is_none() {
        return Err(Errno::EPERM);
    }
    target.pgid.store(pgid, Ordering::Relaxed);
    Ok(())
}

/// The process `pid` names for `getpgid`/`getsid` (0: the caller).
fn process_for(pid: i32) -> Result<Arc<Process>, Errno> {
    match pid {
        0 => Ok(current_process()),
        p if p > 0 => Process::get(p as Pid).ok_or(Errno::ESRCH),
        _ => Err(Errno::ESRCH),
    }
}

/// `getpgid(pid)`.
pub fn getpgid(pid: i32) -> Result<Pid, Errno> {
    process_for(pid).map(|p| p.pgid())
}

/// `getsid(pid)`.
pub fn getsid(pid: i32) -> Result<Pid, Errno> {
    process_for(pid).map(|p| p.sid())
}

/// `setsid()`: a new session and group led by the caller; `EPERM` when a
/// process group already has its id.
pub fn setsid() -> Result<Pid, Errno> {
    let me = current_process();
    if Process::walk(|p| p.pgid() == me.pid).next().is_some() {
        return Err(Errno::EPERM);
    }
    me.sid.store(me.pid, Ordering::Relaxed);
    me.pgid.store(me.pid, Ordering::Relaxed);
    me.detached_from_tty.store(false, Ordering::Relaxed);
    Ok(me.pid)
}

/// A process's name: its argv[0].
pub fn name(process: &Process) -> String {
    let cmdline = process.cmdline.lock();
    let first = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(first).into_owned()
}
