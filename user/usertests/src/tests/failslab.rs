//! Kernel allocation failure never panics: a workload of the main memory,
//! file, pipe, process and thread paths runs under `/proc/thread-self/fail-nth`
//! (the Nth kernel allocation of the task fails) for N = 1, 2, ... until a
//! run completes with the count never reached. Every run must end with the
//! call that met the failure reporting `ENOMEM`, or with the task killed
//! by a signal (`SIGKILL`, `SIGSEGV`, `SIGBUS`: what a fault that cannot
//! get memory ends in), and free memory is back at its baseline after all
//! of them. A kernel that panics ends the whole suite. A second workload,
//! run the same way, drops files' last references and changes the tree
//! (truncate, rename, unlink, dup3, close, munmap) and ends in execve of a
//! `#!` script whose interpreter execs a static program.
//!
//! Linux has the same file when built with `CONFIG_FAULT_INJECTION`; the
//! test is skipped on a Linux without it.

use alloc::format;
use core::sync::atomic::Ordering::SeqCst;
use core::sync::atomic::{AtomicU32, AtomicU64};

use aspen_sys::fd::{pipe2, PollEvents, PollFd};
use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::mem::{self, MapFlags, Prot, PAGE_SIZE};
use aspen_sys::process::{self, Fork, SIGBUS, SIGKILL, SIGSEGV};
use aspen_sys::raw::{syscall1, syscall3, syscall4, Sysno};
use aspen_sys::signal::{set_of, SaFlags, SigSet, SIG_IGN};
use aspen_sys::thread::{
    futex, futex_op, futex_waiters, FUTEX_CMP_REQUEUE, FUTEX_LOCK_PI, FUTEX_OWNER_DIED, FUTEX_PRIVATE_FLAG,
    FUTEX_TID_MASK, FUTEX_UNLOCK_PI, FUTEX_WAITERS, FUTEX_WAKE_OP,
};
use aspen_sys::time::{self, Timespec, CLOCK_MONOTONIC};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{Context, Ctx, TestResult};
use crate::procfs::{memfree, vmstat};

const FAIL_NTH: &core::ffi::CStr = c"/proc/thread-self/fail-nth";
/// The file the workload maps and reads (made before the baseline).
const FILE: &core::ffi::CStr = c"/tmp/usertests-failslab";
/// More runs than this: the workload's allocations are not counted down
/// (the injection never fires, or the count never runs out).
const MAX_RUNS: u32 = 5000;
/// A run that completed with the count not reached.
const COMPLETED: i32 = 0;
/// A run whose injected failure was absorbed: every call succeeded, yet the
/// count reached 0 (an allocation the kernel can do without, as a cache).
const ABSORBED: i32 = 2;
/// A run in which a call returned an error other than ENOMEM.
const WRONG_ERROR: i32 = 3;
/// `ENOMEM_AT + k`: call `k` of the workload returned ENOMEM.
const ENOMEM_AT: i32 = 100;

/// Ends the run: `ENOMEM` from call `step` is the expected outcome, any
/// other error is not.
fn stop(step: i32, errno: Errno) -> ! {
    process::exit_group(if errno == Errno::ENOMEM { ENOMEM_AT + step } else { WRONG_ERROR })
}

/// `Ok(v)`, or the run ends as [`stop`] says.
fn check<T>(step: i32, result: Result<T, Errno>) -> T {
    result.unwrap_or_else(|errno| stop(step, errno))
}

/// Touches every page of `[start, start + len)` for writing.
fn touch(start: usize, len: usize) {
    for at in (start..start + len).step_by(PAGE_SIZE) {
        // SAFETY: the caller mapped the range read-write.
        unsafe { core::ptr::write_volatile(at as *mut u8, 1) };
    }
}

/// The workload: each system call is numbered, so that a run that ends in
/// ENOMEM says where. It allocates nothing in user space.
fn workload() {
    let rw = Prot::READ | Prot::WRITE;
    let private = MapFlags::PRIVATE | MapFlags::ANONYMOUS;
    // SAFETY: a new mapping disturbs nothing.
    let anon = check(1, unsafe { mem::mmap(0, 4 * PAGE_SIZE, rw, private, -1, 0) });
    touch(anon, 4 * PAGE_SIZE);
    // SAFETY: this workload's own mapping.
    check(2, unsafe { mem::mprotect(anon + PAGE_SIZE, PAGE_SIZE, Prot::READ) });
    // SAFETY: as above.
    check(3, unsafe { mem::munmap(anon + 2 * PAGE_SIZE, PAGE_SIZE) });

    // SAFETY: a new mapping.
    let shared = check(21, unsafe { mem::mmap(0, 2 * PAGE_SIZE, rw, MapFlags::SHARED | MapFlags::ANONYMOUS, -1, 0) });
    touch(shared, 2 * PAGE_SIZE);

    let fd = check(4, fs::open(FILE, OpenFlags::RDWR, 0));
    // SAFETY: a new mapping.
    let file_private = check(5, unsafe { mem::mmap(0, PAGE_SIZE, rw, MapFlags::PRIVATE, fd, 0) });
    // SAFETY: mapped readable just above.
    let _ = unsafe { core::ptr::read_volatile(file_private as *const u8) };
    touch(file_private, PAGE_SIZE);
    // SAFETY: a new mapping.
    let file_shared = check(6, unsafe { mem::mmap(0, PAGE_SIZE, rw, MapFlags::SHARED, fd, 0) });
    touch(file_shared, PAGE_SIZE);
    let mut buf = [0u8; 16];
    check(7, fs::read(fd, &mut buf));
    check(8, fs::close(fd));

    let (read_end, write_end) = check(9, pipe2(OpenFlags::empty()));
    check(10, fs::write(write_end, b"failslab"));
    check(11, fs::read(read_end, &mut buf));
    check(12, fs::close(read_end));
    check(13, fs::close(write_end));

    // SAFETY: brk only moves the break; the pages above it are this
    // process's heap, which nothing here uses.
    let start = unsafe { mem::brk(0) };
    // SAFETY: as above.
    if unsafe { mem::brk(start + 2 * PAGE_SIZE) } != start + 2 * PAGE_SIZE {
        stop(14, Errno::ENOMEM);
    }
    touch(start, 2 * PAGE_SIZE);
    // SAFETY: gives back only the pages just added.
    unsafe { mem::brk(start) };

    match check(15, process::fork()) {
        Fork::Child => process::exit_group(0),
        Fork::Parent(pid) => {
            let (_, status) = check(16, process::wait4(pid, 0));
            if !status.success() {
                process::exit_group(WRONG_ERROR);
            }
        }
    }

    let thread = check(24, aspen_sys::thread::spawn_thread(thread_body, 0));
    check(25, thread.join());

    // SAFETY: the mappings made above, used no more.
    check(17, unsafe { mem::munmap(file_private, PAGE_SIZE) });
    // SAFETY: as above.
    check(18, unsafe { mem::munmap(file_shared, PAGE_SIZE) });
    // SAFETY: as above.
    check(19, unsafe { mem::munmap(anon, 4 * PAGE_SIZE) });
    // SAFETY: as above.
    check(22, unsafe { mem::munmap(shared, 2 * PAGE_SIZE) });
}

/// A thread of the workload: it only ends (its clone and exit are what
/// is tested).
extern "C" fn thread_body(_: usize) {}

/// Arms `fail-nth` with `n`, runs `work`, and ends the process with the
/// run's outcome.
fn run(n: u32, work: fn()) -> ! {
    arm_fail_nth(n);
    work();
    let left = read_fail_nth(26);
    process::exit_group(if left > 0 { COMPLETED } else { ABSORBED })
}

/// What is left of this thread's count; call `step` of the workload.
fn read_fail_nth(step: i32) -> u32 {
    let fd = check(step, fs::open(FAIL_NTH, OpenFlags::RDWR, 0));
    let mut text = [0u8; 16];
    let len = check(step + 1, fs::read(fd, &mut text));
    let value = core::str::from_utf8(&text[..len]).ok().and_then(|t| t.trim_end().parse::<u32>().ok());
    // Disarmed before the exit, whose allocations the count must not reach.
    let _ = fs::write(fd, b"0");
    let _ = fs::close(fd);
    value.unwrap_or_else(|| process::exit_group(WRONG_ERROR))
}

/// `failslab_preload_overruns` of /proc/vmstat: kernel sections that
/// allocated more than they reserved (their bound is wrong).
fn preload_overruns() -> Result<u64, alloc::string::String> {
    vmstat("failslab_preload_overruns")
}

/// Runs `work` in a child under fail-nth `n` (0: none); returns how the
/// child ended.
fn run_child(n: u32, work: fn()) -> Result<process::WaitStatus, alloc::string::String> {
    match process::fork().ctx("fork")? {
        Fork::Child if n == 0 => {
            work();
            process::exit_group(COMPLETED)
        }
        Fork::Child => run(n, work),
        Fork::Parent(pid) => Ok(process::wait4(pid, 0).ctx("wait4")?.1),
    }
}

/// Whether this kernel has fail-nth (Linux built without
/// `CONFIG_FAULT_INJECTION`, as Debian's, has not: the tests are skipped).
fn has_fail_nth(ctx: &Context) -> Result<bool, alloc::string::String> {
    match fs::open(FAIL_NTH, OpenFlags::RDONLY, 0).and_then(fs::close) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) if ctx.linux => Ok(false),
        Err(e) => Err(format!("open {FAIL_NTH:?}: {e}")),
    }
}

pub fn allocation_failures_end_cleanly(ctx: &Context) -> TestResult {
    if !has_fail_nth(ctx)? {
        return Ok(());
    }
    let fd = fs::open(FILE, OpenFlags::RDWR | OpenFlags::CREAT | OpenFlags::TRUNC, 0o600).ctx("create")?;
    fs::write(fd, &[7u8; PAGE_SIZE]).ctx("write")?;
    fs::close(fd).ctx("close")?;
    sweep(ctx, COMPLETED, |n| run_child(n, workload))?;
    aspen_sys::path::unlinkat(fs::AT_FDCWD, FILE, 0).ctx("unlink")
}

/// Runs a workload (`start(n)`: a child under fail-nth `n`, 0 for none,
/// whose exit code says how it ended; `uninjected`: the code of a run
/// without injection) under N = 1, 2, ... until a run completes: each
/// run must end in ENOMEM, a clean kill or an absorbed failure; then free
/// memory is back at its baseline, no preloaded section overran, and
/// neither interrupt handlers nor no-allocation sections allocated.
fn sweep(
    ctx: &Context,
    uninjected: i32,
    start: impl Fn(u32) -> Result<process::WaitStatus, alloc::string::String>,
) -> TestResult {
    // Twice without injection: first-use costs (the file's page cache,
    // this process's tables) come before the baseline.
    for _ in 0..2 {
        let status = start(0)?;
        ensure!(status.exit_code() == Some(uninjected), "the workload without injection ended with {status}");
    }
    let baseline = memfree().map_err(|e| format!("meminfo: {e}"))?;
    let overruns = preload_overruns()?;
    let irq_allocations = vmstat("failslab_irq_allocations")?;
    let no_alloc_allocations = vmstat("failslab_noalloc_allocations")?;
    let (mut enomem, mut killed, mut absorbed) = (0, 0, 0);
    let mut n = 1;
    loop {
        ensure!(n <= MAX_RUNS, "the workload still met an injected failure after {MAX_RUNS} runs");
        let status = start(n)?;
        match (status.exit_code(), status.signal()) {
            (Some(COMPLETED), _) => break,
            (Some(ABSORBED), _) => absorbed += 1,
            (Some(code), _) if code > ENOMEM_AT => enomem += 1,
            (_, Some(SIGKILL | SIGSEGV | SIGBUS)) => killed += 1,
            _ => return Err(format!("with the allocation {n} failing, the workload ended with {status}")),
        }
        n += 1;
    }
    let now = memfree().map_err(|e| format!("meminfo: {e}"))?;
    ensure!(
        baseline.abs_diff(now) <= ctx.memfree_slack,
        "after {n} runs ({enomem} ENOMEM, {killed} killed, {absorbed} absorbed): free memory {now} bytes, {baseline} \
         at the baseline (slack {})",
        ctx.memfree_slack
    );
    ensure!(enomem > 0, "no run of {n} met ENOMEM");
    let overran = preload_overruns()? - overruns;
    ensure!(overran == 0, "{overran} preloaded sections allocated more than they reserved");
    let in_irq = vmstat("failslab_irq_allocations")? - irq_allocations;
    ensure!(in_irq == 0, "interrupt handlers made {in_irq} heap allocations");
    let where_none = vmstat("failslab_noalloc_allocations")? - no_alloc_allocations;
    ensure!(
        where_none == 0,
        "paths that cannot fail (an ending thread's PI hand-off) made {where_none} heap allocations"
    );
    Ok(())
}

/// The second workload's futex words: `REQUEUE_FROM` is waited on by its
/// thread and requeued onto `REQUEUE_TO`; `PI_LOCK` is a PI lock the
/// thread contends for.
static REQUEUE_FROM: AtomicU32 = AtomicU32::new(0);
static REQUEUE_TO: AtomicU32 = AtomicU32::new(0);
static PI_LOCK: AtomicU32 = AtomicU32::new(0);
/// The robust list of the workload's PI owner: a head and one entry (its
/// PI bit set) whose lock word, `lock`, follows the entry's `next`. The
/// thread takes the lock and still holds it when it ends, while the
/// workload waits for it.
#[repr(C)]
struct RobustPi {
    head_next: AtomicU64,
    futex_offset: AtomicU64,
    pending: AtomicU64,
    entry_next: AtomicU64,
    lock: AtomicU32,
}

static HELD: RobustPi = RobustPi {
    head_next: AtomicU64::new(0),
    futex_offset: AtomicU64::new(8),
    pending: AtomicU64::new(0),
    entry_next: AtomicU64::new(0),
    lock: AtomicU32::new(0),
};

/// `SIGUSR1`, which the workload's POSIX timer sends (blocked).
const SIGUSR1: i32 = 10;

/// One millisecond.
const MILLISECOND: Timespec = Timespec { tv_sec: 0, tv_nsec: 1_000_000 };

/// The second workload: the console, `/proc` snapshots, sleeps, POSIX and
/// interval timers, poll and select on a pipe, a futex requeue with a
/// waiter, `FUTEX_WAKE_OP`, a contended PI lock, a PI lock whose owner
/// ends while the workload waits for it, `rt_sigaction`, `kill` and
/// `tgkill`. Steps 30 and up.
fn waits_and_proc_workload() {
    // The console: nothing typed, so EAGAIN (what Linux gives as well).
    let console = check(30, fs::open(c"/dev/console", OpenFlags::RDONLY | OpenFlags::NONBLOCK, 0));
    let mut byte = [0u8; 1];
    match fs::read(console, &mut byte) {
        Ok(_) | Err(Errno::EAGAIN) => {}
        Err(errno) => stop(31, errno),
    }
    check(32, fs::close(console));

    let mut digits = [0u8; 12];
    let pid = super::pipes::decimal(process::getpid() as u32, &mut digits).to_bytes();
    let mut name = [0u8; 64];
    let mut at = 0;
    for part in [b"/proc/".as_slice(), pid] {
        name[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    name[at..at + 6].copy_from_slice(b"/stat\0");
    let pid_stat = core::ffi::CStr::from_bytes_until_nul(&name).unwrap_or(c"/proc/self/stat");
    for (step, path) in [
        (33, c"/proc/self/maps"),
        (35, c"/proc/self/status"),
        (37, c"/proc/meminfo"),
        (39, c"/proc/vmstat"),
        (41, pid_stat),
        (43, c"/proc/self/task"),
    ] {
        read_whole(step, path);
    }

    check(45, time::nanosleep(&MILLISECOND));
    check(46, clock_nanosleep(&MILLISECOND));

    check(47, aspen_sys::signal::sigprocmask(aspen_sys::signal::SIG_BLOCK, Some(set_of(&[SIGUSR1]))));
    // EAGAIN is timer_create's error for a failed kernel allocation.
    let timer = check(48, timer_create(SIGUSR1).map_err(|e| if e == Errno::EAGAIN { Errno::ENOMEM } else { e }));
    // Periodic, so that it expires (in the timer interrupt) while the
    // workload sleeps below, and arms itself again.
    check(49, timer_settime(timer, MILLISECOND, MILLISECOND));
    check(50, time::nanosleep(&Timespec { tv_sec: 0, tv_nsec: 3_000_000 }));
    check(51, timer_delete(timer));
    check(52, setitimer(Timespec { tv_sec: 10, tv_nsec: 0 }));
    check(53, setitimer(Timespec::default()));

    let (read_end, write_end) = check(54, pipe2(OpenFlags::empty()));
    // Nothing to read yet: ppoll waits out its timeout.
    let mut fds = [PollFd::new(read_end, PollEvents::IN)];
    check(55, aspen_sys::fd::ppoll(&mut fds, Some(1_000_000)));
    check(56, fs::write(write_end, b"x"));
    let mut fds = [PollFd::new(read_end, PollEvents::IN), PollFd::new(write_end, PollEvents::OUT)];
    check(57, aspen_sys::fd::ppoll(&mut fds, Some(0)));
    let mut sets = [[0u64; 16]; 3];
    sets[0][0] = 1 << read_end;
    sets[1][0] = 1 << write_end;
    check(58, super::pipes::pselect(write_end.max(read_end) + 1, &mut sets, 1_000_000));
    check(59, fs::close(read_end));
    check(60, fs::close(write_end));

    REQUEUE_FROM.store(0, SeqCst);
    PI_LOCK.store(0, SeqCst);
    check(61, futex(&PI_LOCK, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0));
    let waiter = check(62, aspen_sys::thread::spawn_thread(futex_waiter, 0));
    while check(63, futex_waiters(&REQUEUE_FROM)) == 0 {
        check(64, time::nanosleep(&MILLISECOND));
    }
    let to = &REQUEUE_TO as *const AtomicU32 as usize;
    let moved = check(65, futex(&REQUEUE_FROM, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 0, 1, to, 0));
    if moved != 1 {
        process::exit_group(WRONG_ERROR);
    }
    // FUTEX_OP_SET of 0 to the second word, whose waiter is woken only if
    // it held something else (FUTEX_OP_CMP_NE 0): nobody is woken.
    check(66, futex(&REQUEUE_FROM, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, 1, to, futex_op(0, 0, 1, 0)));
    while check(67, aspen_sys::thread::futex_wake(&REQUEUE_TO, 1)) == 0 {
        check(68, time::nanosleep(&MILLISECOND));
    }
    // The thread now blocks on the PI lock, which the unlock hands it.
    while PI_LOCK.load(SeqCst) & FUTEX_WAITERS == 0 {
        check(69, time::nanosleep(&MILLISECOND));
    }
    check(70, futex(&PI_LOCK, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0));
    check(71, waiter.join());

    // Signals: an action set in a table shared with the parent since the
    // fork (copied on write), and kill's and tgkill's lookups (signal 0:
    // only checked).
    check(72, aspen_sys::signal::sigaction_raw(SIGUSR1, SIG_IGN, SaFlags::empty(), SigSet::EMPTY));
    check(73, aspen_sys::signal::kill(0, 0));
    check(74, aspen_sys::signal::tgkill(process::getpid(), aspen_sys::thread::gettid(), 0));

    // A thread that ends holding a robust PI lock the workload waits for
    // hands it over, as Linux's: the waiter's id in the word, with
    // FUTEX_OWNER_DIED. The hand-off of an ending thread cannot fail, and
    // the sweep checks it allocated nothing.
    HELD.lock.store(0, SeqCst);
    let owner = check(75, aspen_sys::thread::spawn_thread(pi_owner, 0));
    while HELD.lock.load(SeqCst) == 0 {
        check(76, time::nanosleep(&MILLISECOND));
    }
    check(77, futex(&HELD.lock, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0));
    let word = HELD.lock.load(SeqCst);
    if word & FUTEX_TID_MASK != aspen_sys::thread::gettid() as u32 || word & FUTEX_OWNER_DIED == 0 {
        process::exit_group(WRONG_ERROR);
    }
    check(78, owner.join());
    check(79, futex(&HELD.lock, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0));
}

/// The workload's second thread: registers its robust list, takes
/// `HELD.lock` (in user space, as C libraries do) and ends holding it once
/// the workload waits for it.
extern "C" fn pi_owner(_: usize) {
    let head = &HELD.head_next as *const AtomicU64 as u64;
    let entry = &HELD.entry_next as *const AtomicU64 as u64;
    // Bit 0 of an entry's address marks a PI lock.
    HELD.head_next.store(entry | 1, SeqCst);
    HELD.entry_next.store(head, SeqCst);
    // SAFETY: the kernel only records the head, which is static.
    unsafe { aspen_sys::raw::syscall2(Sysno::SetRobustList.number(), head as usize, 24) };
    let _ = HELD.lock.compare_exchange(0, aspen_sys::thread::gettid() as u32, SeqCst, SeqCst);
    while HELD.lock.load(SeqCst) & FUTEX_WAITERS == 0 {
        let _ = time::nanosleep(&MILLISECOND);
    }
}

/// The workload's thread (its own allocations are not counted): waits on
/// `REQUEUE_FROM` until requeued and woken, then takes and gives back
/// the PI lock.
extern "C" fn futex_waiter(_: usize) {
    while REQUEUE_TO.load(SeqCst) == 0 && aspen_sys::thread::futex_wait(&REQUEUE_FROM, 0, None).is_err() {}
    let _ = futex(&PI_LOCK, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0);
    let _ = futex(&PI_LOCK, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0);
}

/// Opens and reads `path` to its end (steps `step` and `step + 1`).
fn read_whole(step: i32, path: &core::ffi::CStr) {
    let flags = if path.to_bytes().ends_with(b"task") { OpenFlags::DIRECTORY } else { OpenFlags::RDONLY };
    let fd = check(step, fs::open(path, flags, 0));
    let mut buf = [0u8; 1024];
    if !flags.contains(OpenFlags::DIRECTORY) {
        while check(step + 1, fs::read(fd, &mut buf)) != 0 {}
    }
    let _ = fs::close(fd);
}

/// `clock_nanosleep(CLOCK_MONOTONIC, 0, duration, NULL)`.
fn clock_nanosleep(duration: &Timespec) -> Result<usize, Errno> {
    // SAFETY: the kernel only reads the request.
    Errno::result(unsafe {
        syscall4(Sysno::ClockNanosleep.number(), CLOCK_MONOTONIC as usize, 0, duration as *const Timespec as usize, 0)
    })
}

/// `timer_create(CLOCK_MONOTONIC)` sending `signo` to the process.
fn timer_create(signo: i32) -> Result<usize, Errno> {
    // struct sigevent: value, signo, notify (SIGEV_SIGNAL: 0), padding.
    let mut event = [0u32; 16];
    event[2] = signo as u32;
    let mut id = 0i32;
    // SAFETY: the kernel reads the event and writes the id.
    Errno::result(unsafe {
        syscall3(
            Sysno::TimerCreate.number(),
            CLOCK_MONOTONIC as usize,
            event.as_ptr() as usize,
            &mut id as *mut i32 as usize,
        )
    })?;
    Ok(id as usize)
}

/// `timer_settime(timer, 0, {interval, value}, NULL)`.
fn timer_settime(timer: usize, interval: Timespec, value: Timespec) -> Result<usize, Errno> {
    let spec = [interval, value];
    // SAFETY: the kernel only reads the setting.
    Errno::result(unsafe { syscall4(Sysno::TimerSettime.number(), timer, 0, spec.as_ptr() as usize, 0) })
}

fn timer_delete(timer: usize) -> Result<usize, Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall1(Sysno::TimerDelete.number(), timer) })
}

/// `setitimer(ITIMER_REAL, {0, value}, NULL)` (zero: disarmed).
fn setitimer(value: Timespec) -> Result<usize, Errno> {
    // struct itimerval: interval and value, in seconds and microseconds.
    let spec = [0i64, 0, value.tv_sec, value.tv_nsec / 1000];
    // SAFETY: the kernel only reads the setting.
    Errno::result(unsafe { syscall3(Sysno::Setitimer.number(), 0, spec.as_ptr() as usize, 0) })
}

pub fn allocation_failures_in_waits_and_proc_end_cleanly(ctx: &Context) -> TestResult {
    if !has_fail_nth(ctx)? {
        return Ok(());
    }
    sweep(ctx, COMPLETED, |n| run_child(n, waits_and_proc_workload))
}

/// The files the release workload makes, renames and removes (each run
/// makes them again; the last run leaves none).
const RELEASED: [&core::ffi::CStr; 4] = [
    c"/tmp/usertests-failslab-a",
    c"/tmp/usertests-failslab-b",
    c"/tmp/usertests-failslab-c",
    c"/tmp/usertests-failslab-d",
];
/// A `#!` script run by usertests [`EXEC_STAGE`] (made before the baseline).
const EXEC_SCRIPT: &core::ffi::CStr = c"/tmp/usertests-failslab-script";
/// usertests as the script's interpreter: checks its arguments and
/// execs usertests [`EXEC_TAIL`].
pub const EXEC_STAGE: &core::ffi::CStr = c"--failslab-exec";
/// usertests as the last program of a release run: ends it as [`run`] does.
pub const EXEC_TAIL: &core::ffi::CStr = c"--failslab-tail";

/// Creates `path` (empty) and opens it read-write; call `step`.
fn create(step: i32, path: &core::ffi::CStr) -> i32 {
    check(step, fs::open(path, OpenFlags::RDWR | OpenFlags::CREAT | OpenFlags::TRUNC, 0o600))
}

/// Maps one page of `fd` shared and read-write, and dirties it; call `step`.
fn map_dirty(step: i32, fd: i32) -> usize {
    // SAFETY: a new mapping.
    let at = check(step, unsafe { mem::mmap(0, PAGE_SIZE, Prot::READ | Prot::WRITE, MapFlags::SHARED, fd, 0) });
    touch(at, PAGE_SIZE);
    at
}

/// The release workload: truncate and ftruncate of a mapped file, msync, rename
/// and unlink of open and mapped files, dup3 over, close and munmap of the
/// last reference of a file with dirty shared pages; then execve of a `#!`
/// script with arguments, whose interpreter execs a static program
/// ([`exec_stage`], [`exec_tail`]). Steps 40 on.
fn release_workload(exe: &core::ffi::CStr) -> ! {
    use aspen_sys::path::{renameat2, truncate, unlinkat};
    let [a, b, c, d] = RELEASED;
    let fd_a = create(40, a);
    check(41, aspen_sys::path::ftruncate(fd_a, 2 * PAGE_SIZE as i64));
    // SAFETY: a new mapping.
    let map_a = check(42, unsafe { mem::mmap(0, 2 * PAGE_SIZE, Prot::READ | Prot::WRITE, MapFlags::SHARED, fd_a, 0) });
    touch(map_a, 2 * PAGE_SIZE);
    // Shrinks under the mapping: its second page is not touched again.
    check(43, truncate(a, PAGE_SIZE as i64 + 100));
    let fd_b = create(44, b);
    check(45, fs::write(fd_b, &[3u8; PAGE_SIZE]));
    let map_b = map_dirty(46, fd_b);
    check(64, mem::msync(map_b, PAGE_SIZE, mem::MsyncFlags::SYNC));
    // Dirty again, for the release below.
    touch(map_b, PAGE_SIZE);
    check(47, renameat2(fs::AT_FDCWD, a, fs::AT_FDCWD, c, 0));
    // Over c, which is a: a loses its last name while open and mapped.
    check(48, renameat2(fs::AT_FDCWD, b, fs::AT_FDCWD, c, 0));
    check(49, unlinkat(fs::AT_FDCWD, c, 0));
    // SAFETY: the mapping made above, used no more.
    check(50, unsafe { mem::munmap(map_a, 2 * PAGE_SIZE) });
    // The last reference of a (dirty, nameless) goes with the dup3.
    check(51, aspen_sys::fd::dup3(fd_b, fd_a, OpenFlags::empty()));
    check(52, fs::close(fd_a));
    // SAFETY: as above.
    check(53, unsafe { mem::munmap(map_b, PAGE_SIZE) });
    // The last reference of b, with the page dirtied through its mapping.
    check(54, fs::close(fd_b));
    let fd_d = create(55, d);
    check(56, aspen_sys::path::ftruncate(fd_d, PAGE_SIZE as i64));
    let map_d = map_dirty(57, fd_d);
    check(58, fs::close(fd_d));
    check(59, unlinkat(fs::AT_FDCWD, d, 0));
    // The last reference of d is its mapping.
    // SAFETY: as above.
    check(60, unsafe { mem::munmap(map_d, PAGE_SIZE) });
    let e = process::execve(EXEC_SCRIPT, &[EXEC_SCRIPT, c"one", c"two words"], &[exe]);
    stop(61, e)
}

/// `usertests --failslab-exec SCRIPT one "two words"` (the script's
/// interpreter, as execve rewrote its arguments), environment: the
/// path of usertests. Execs usertests [`EXEC_TAIL`] with arguments.
pub fn exec_stage(args: &aspen_sys::Args) -> i32 {
    let expected = [EXEC_STAGE, EXEC_SCRIPT, c"one", c"two words"];
    if !args.iter().skip(1).eq(expected.iter().copied()) {
        return WRONG_ERROR;
    }
    let Some(exe) = args.env().next() else { return WRONG_ERROR };
    let e = process::execve(exe, &[exe, EXEC_TAIL, c"three"], &[]);
    stop(62, e)
}

/// `usertests --failslab-tail three`: the run completed unless the count
/// ran out on the way.
pub fn exec_tail(args: &aspen_sys::Args) -> i32 {
    if !args.iter().skip(1).eq([EXEC_TAIL, c"three"]) {
        return WRONG_ERROR;
    }
    if read_fail_nth(63) > 0 {
        COMPLETED
    } else {
        ABSORBED
    }
}

/// Runs the release workload in a child under fail-nth `n` (0: none);
/// returns how the child ended.
fn run_release_child(n: u32, exe: &core::ffi::CStr) -> Result<process::WaitStatus, alloc::string::String> {
    match process::fork().ctx("fork")? {
        Fork::Child => {
            if n != 0 {
                arm_fail_nth(n);
            }
            release_workload(exe)
        }
        Fork::Parent(pid) => Ok(process::wait4(pid, 0).ctx("wait4")?.1),
    }
}

/// Makes this thread's `n`th kernel allocation from now fail.
fn arm_fail_nth(n: u32) {
    let fd = fs::open(FAIL_NTH, OpenFlags::RDWR, 0).unwrap_or_else(|_| process::exit_group(WRONG_ERROR));
    let mut buf = [0u8; 12];
    let text = super::pipes::decimal(n, &mut buf).to_bytes();
    if fs::write(fd, text) != Ok(text.len()) {
        process::exit_group(WRONG_ERROR);
    }
    let _ = fs::close(fd);
}

/// The release workload under every N, as `allocation_failures_end_cleanly`
/// runs its own.
pub fn release_and_exec_failures_end_cleanly(ctx: &Context) -> TestResult {
    if !has_fail_nth(ctx)? {
        return Ok(());
    }
    let interpreter = [b"#!".as_slice(), ctx.exe.to_bytes(), b" ", EXEC_STAGE.to_bytes(), b"\n"];
    super::script::write_script(EXEC_SCRIPT, &interpreter).ctx("script")?;
    // A run without injection ends in the exec'd program, which finds
    // nothing armed: as an absorbed failure.
    sweep(ctx, ABSORBED, |n| run_release_child(n, ctx.exe))?;
    for path in RELEASED {
        ensure!(fs::open(path, OpenFlags::RDONLY, 0) == Err(Errno::ENOENT), "{path:?} left behind");
    }
    aspen_sys::path::unlinkat(fs::AT_FDCWD, EXEC_SCRIPT, 0).ctx("unlink")
}
