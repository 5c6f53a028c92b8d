//! The Linux aarch64 system-call interface: number in x8, arguments in
//! x0-x5, result (or -errno) in x0. Unknown numbers get -ENOSYS. The
//! dispatcher decodes flags into aspen-abi's types once; every user pointer
//! becomes a checked `UserSlice`/`UserPtr` and every access to user memory
//! goes through the fallible copy routines, so no argument can crash the
//! kernel.

use alloc::sync::Arc;
use alloc::vec::Vec;

use aspen_abi::clone::CloneArgs;
use aspen_abi::fcntl::{AtFlags, FcntlCmd, OpenFlags, Pipe2Flags, AT_FDCWD, FD_CLOEXEC};
use aspen_abi::mman::{Advice, MapFlags, MlockallFlags, MremapFlags, MsyncFlags, Prot};
use aspen_abi::poll::{fd_set_bytes, PollFd, SelectReady, PIPE_BUF};
use aspen_abi::signal::{
    MaskHow, Restart, SigAction, SigInfo, SigSet, Signal, StackT, CLD_EXITED, CLD_KILLED, SIGSET_SIZE,
};
use aspen_abi::syscall::{Dirent64, FileType, Stat, Sysno, Timespec, UtsName};
use aspen_abi::uaccess::{CopyFault, UserMemory, UserPtr, UserSlice};
use aspen_abi::wait::{WaitId, WaitOptions, WaitStatus};
use aspen_fs::{ReadIntoError, Whence};
use aspen_mm::aspace::FaultKind;
use aspen_mm::errno::Errno;
use aspen_mm::VirtAddr;

use crate::arch::exception::TrapFrame;
use crate::arch::timer;
use crate::arch::uaccess::{Access, ActiveSpace};
use crate::device::{CharDevice, MemDevice};
use crate::pipe::WriteError;
use crate::process::exec::ExecError;
use crate::process::fd::{Description, OpenDescription};
use crate::process::thread::{self, Thread};
use crate::process::ChildState;
use crate::process::{self, policy, procfs, signal};
use crate::task::sched;
use crate::{files, pipe, poll, power, tty};

mod creds;
mod limits;
mod paths;
mod sendfile;
mod time;

type SysResult = Result<u64, Errno>;

/// Handles the system call in `frame` and stores its result there.
pub fn handle(frame: &mut TrapFrame) {
    let [a0, a1, a2, a3, a4, a5] = [frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4], frame.x[5]];
    let Some(call) = Sysno::from_number(frame.x[8] as usize) else {
        frame.x[0] = Errno::ENOSYS.as_neg() as u64;
        if tracing() {
            log::info!("pid {}: unknown system call {} = -ENOSYS", process::current_process().pid, frame.x[8]);
        }
        return;
    };
    // Calls that allocate through deep structures (the file tree) run in a
    // preloaded section: ENOMEM before they change anything.
    let preload = match heap_bound(call) {
        Some(bytes) => match crate::heap::preload(bytes) {
            Ok(preload) => Some(preload),
            Err(e) => {
                frame.x[0] = Errno::from(e).as_neg() as u64;
                return;
            }
        },
        None => None,
    };
    let result = match call {
        Sysno::Read => read(a0, a1, a2),
        Sysno::Write => signal_broken_pipe(write(a0, a1, a2)),
        Sysno::Readv => signal_broken_pipe(vectored(a0, a1, a2, false)),
        Sysno::Writev => signal_broken_pipe(vectored(a0, a1, a2, true)),
        Sysno::Sendfile => signal_broken_pipe(sendfile::sendfile(a0, a1, a2, a3)),
        Sysno::Openat => openat(a0 as i32 as i64, a1, OpenFlags::from_register(a2), a3),
        // The description's last reference goes after the table's lock.
        Sysno::Close => with_files(|f| f.close(a0)).map(|_| 0),
        Sysno::Dup => with_files(|f| f.duplicate(a0, 0, false)).map(|fd| fd as u64),
        Sysno::Dup3 => dup3(a0, a1, a2),
        Sysno::Fcntl => fcntl(a0, a1, a2),
        Sysno::Pipe2 => pipe2(a0, a1),
        Sysno::Ppoll => ppoll(a0, a1, a2, a3, a4),
        Sysno::Pselect6 => pselect6(a0, [a1, a2, a3], a4, a5),
        Sysno::Lseek => lseek(a0, a1 as i64, a2),
        Sysno::Getdents64 => getdents64(a0, a1, a2),
        Sysno::Getcwd => paths::getcwd(a0, a1),
        Sysno::Chdir => paths::chdir(a0),
        Sysno::Fchdir => paths::fchdir(a0),
        Sysno::Umask => paths::umask(a0),
        Sysno::Mkdirat => paths::mkdirat(a0 as i32 as i64, a1, a2),
        Sysno::Unlinkat => paths::unlinkat(a0 as i32 as i64, a1, a2),
        Sysno::Linkat => paths::linkat(a0 as i32 as i64, a1, a2 as i32 as i64, a3, a4),
        Sysno::Symlinkat => paths::symlinkat(a0, a1 as i32 as i64, a2),
        Sysno::Renameat => paths::renameat2(a0 as i32 as i64, a1, a2 as i32 as i64, a3, 0),
        Sysno::Renameat2 => paths::renameat2(a0 as i32 as i64, a1, a2 as i32 as i64, a3, a4 as u32 as u64),
        Sysno::Faccessat => paths::faccessat2(a0 as i32 as i64, a1, a2 as u32 as u64, 0),
        Sysno::Faccessat2 => paths::faccessat2(a0 as i32 as i64, a1, a2 as u32 as u64, a3 as u32 as u64),
        Sysno::Fchmodat => paths::fchmodat(a0 as i32 as i64, a1, a2),
        Sysno::Fchmod => paths::fchmod(a0, a1),
        Sysno::Fchownat => paths::fchownat(a0 as i32 as i64, a1, a2, a3, a4),
        Sysno::Fchown => paths::fchown(a0, a1, a2),
        Sysno::Truncate => paths::truncate(a0, a1),
        Sysno::Ftruncate => paths::ftruncate(a0, a1),
        Sysno::Fsync | Sysno::Fdatasync => paths::fsync(a0),
        Sysno::Statfs => paths::statfs(a0, a1),
        Sysno::Fstatfs => paths::fstatfs(a0, a1),
        Sysno::Readlinkat => paths::readlinkat(a0 as i32 as i64, a1, a2, a3),
        Sysno::Utimensat => paths::utimensat(a0 as i32 as i64, a1, a2, a3),
        Sysno::Statx => paths::statx(a0 as i32 as i64, a1, a2, a3, a4),
        Sysno::Fstat => fstat(a0, a1),
        Sysno::Newfstatat => newfstatat(a0 as i32 as i64, a1, a2, AtFlags::from_register(a3)),
        Sysno::Ioctl => ioctl(a0, a1 as u32, a2),
        Sysno::Exit => process::exit_thread(WaitStatus::exited(a0 as i32).0),
        Sysno::ExitGroup => process::exit_group(WaitStatus::exited(a0 as i32).0),
        Sysno::Clone => CloneArgs::from_clone(a0, a1, a2, a3, a4).and_then(|args| clone(frame, &args)),
        Sysno::Clone3 => clone3(frame, a0, a1),
        Sysno::Execve => execve(frame, a1, a2, a0),
        Sysno::Wait4 => wait4(a0 as i32, a1, a2, a3),
        Sysno::Waitid => waitid(a0 as u32, a1 as i32, a2, a3 as u32, a4),
        Sysno::RtSigaction => rt_sigaction(a0, a1, a2, a3),
        Sysno::RtSigprocmask => rt_sigprocmask(a0, a1, a2, a3),
        Sysno::RtSigpending => rt_sigpending(a0, a1),
        Sysno::RtSigsuspend => rt_sigsuspend(a0, a1),
        Sysno::RtSigtimedwait => rt_sigtimedwait(a0, a1, a2, a3),
        Sysno::RtSigqueueinfo => rt_sigqueueinfo(a0 as i32, a1, a2),
        Sysno::RtSigreturn => Ok(signal::sigreturn(frame)),
        Sysno::Sigaltstack => sigaltstack(a0, a1, frame.sp_el0),
        Sysno::Kill => signal::kill(a0 as i32, a1).map(|()| 0),
        Sysno::Tkill => signal::tgkill(None, a0 as i32, a1).map(|()| 0),
        Sysno::Tgkill => signal::tgkill(Some(a0 as i32), a1 as i32, a2).map(|()| 0),
        Sysno::Setpgid => process::setpgid(a0 as i32, a1 as i32).map(|()| 0),
        Sysno::Getpgid => process::getpgid(a0 as i32).map(u64::from),
        Sysno::Getsid => process::getsid(a0 as i32).map(u64::from),
        Sysno::Setsid => process::setsid().map(u64::from),
        Sysno::Getpid => Ok(u64::from(thread::with_current(|t| t.process.pid))),
        Sysno::Gettid => Ok(u64::from(thread::with_current(Thread::tid))),
        Sysno::SetTidAddress => Ok(u64::from(thread::with_current(|t| {
            t.set_clear_child_tid(a0);
            t.tid()
        }))),
        Sysno::Futex => futex(a0, a1 as u32, a2 as u32, a3, a4, a5 as u32),
        Sysno::SetRobustList => policy::set_robust_list(a0, a1),
        Sysno::GetRobustList => policy::get_robust_list(a0 as i32, a1, a2),
        Sysno::SchedSetscheduler => policy::set_scheduler(a0 as i32, a1 as i32, a2),
        Sysno::SchedSetparam => policy::set_param(a0 as i32, a1),
        Sysno::SchedGetscheduler => policy::get_scheduler(a0 as i32),
        Sysno::SchedGetparam => policy::get_param(a0 as i32, a1),
        Sysno::SchedGetPriorityMax => policy::priority_limit(a0 as i32, true),
        Sysno::SchedGetPriorityMin => policy::priority_limit(a0 as i32, false),
        Sysno::SchedRrGetInterval => policy::rr_interval(a0 as i32, a1),
        Sysno::SchedSetaffinity => policy::set_affinity(a0 as i32, a1 as u32, a2),
        Sysno::SchedGetaffinity => policy::get_affinity(a0 as i32, a1 as u32, a2),
        Sysno::Getppid => Ok(u64::from(process::current_process().ppid())),
        Sysno::Getuid => creds::get(creds::Id::RealUser),
        Sysno::Geteuid => creds::get(creds::Id::EffectiveUser),
        Sysno::Getgid => creds::get(creds::Id::RealGroup),
        Sysno::Getegid => creds::get(creds::Id::EffectiveGroup),
        Sysno::Setresuid => creds::setresuid(a0, a1, a2),
        Sysno::Setresgid => creds::setresgid(a0, a1, a2),
        Sysno::Setuid => creds::setuid(a0),
        Sysno::Setgid => creds::setgid(a0),
        Sysno::Setreuid => creds::setreuid(a0, a1),
        Sysno::Setregid => creds::setregid(a0, a1),
        Sysno::Getresuid => creds::getres(a0, a1, a2, false),
        Sysno::Getresgid => creds::getres(a0, a1, a2, true),
        Sysno::Getgroups => creds::getgroups(a0, a1),
        Sysno::Setgroups => creds::setgroups(a0, a1),
        Sysno::SchedYield => {
            sched::yield_now();
            Ok(0)
        }
        Sysno::Nanosleep => time::nanosleep(a0, a1),
        Sysno::ClockNanosleep => time::clock_nanosleep(a0, a1, a2, a3),
        Sysno::ClockGettime => time::clock_gettime(a0, a1),
        Sysno::ClockGetres => time::clock_getres(a0, a1),
        Sysno::Gettimeofday => time::gettimeofday(a0, a1),
        Sysno::Setitimer => time::setitimer(a0, a1, a2),
        Sysno::Getitimer => time::getitimer(a0, a1),
        Sysno::Getcpu => time::getcpu(a0, a1),
        Sysno::TimerCreate => time::timer_create(a0, a1, a2),
        Sysno::TimerSettime => time::timer_settime(a0, a1, a2, a3),
        Sysno::TimerGettime => time::timer_gettime(a0, a1),
        Sysno::TimerGetoverrun => time::timer_getoverrun(a0),
        Sysno::TimerDelete => time::timer_delete(a0),
        Sysno::Prlimit64 => limits::prlimit64(a0, a1, a2, a3),
        Sysno::Getrlimit => limits::getrlimit(a0, a1),
        Sysno::Setrlimit => limits::setrlimit(a0, a1),
        Sysno::Getrandom => limits::getrandom(a0, a1, a2),
        // Libraries cope without it; a single CPU would need no more than
        // the barrier every system call already is.
        Sysno::Membarrier => Err(Errno::ENOSYS),
        Sysno::Uname => uname(a0),
        Sysno::Sysinfo => copy_out_at(a0, &procfs::sysinfo().to_bytes()).map(|()| 0),
        // A break that cannot move stays where it is, as Linux reports it.
        Sysno::Brk => thread::with_current(|t| {
            t.process.with_mm(|mm| match crate::heap::preload(mm.change_heap_bound()) {
                Ok(_preload) => mm.brk(VirtAddr::new(a0)).as_u64(),
                Err(_) => mm.brk(VirtAddr::new(0)).as_u64(),
            })
        }),
        Sysno::Mmap => mmap(a0, a1, Prot::from_register(a2), MapFlags::from_register(a3), a4, a5),
        Sysno::Munmap => munmap(VirtAddr::new(a0), a1).map(|()| 0),
        Sysno::Mprotect => mm(|mm| mm.mprotect(VirtAddr::new(a0), a1, Prot::from_register(a2))).map(|()| 0),
        Sysno::Msync => mm_unchanged(|mm| mm.msync(VirtAddr::new(a0), a1, MsyncFlags::from_register(a2))).map(|()| 0),
        Sysno::Mlock => {
            let limit = creds::memlock_limit();
            mm(|mm| mm.mlock(VirtAddr::new(a0), a1, limit)).map(|()| 0)
        }
        Sysno::Munlock => mm(|mm| mm.munlock(VirtAddr::new(a0), a1)).map(|()| 0),
        Sysno::Mlockall => {
            let limit = creds::memlock_limit();
            mm(|mm| mm.mlockall(MlockallFlags::from_register(a0), limit)).map(|()| 0)
        }
        Sysno::Munlockall => mm(|mm| {
            mm.munlockall();
            Ok(0)
        }),
        Sysno::Mremap => {
            mm(|mm| mm.mremap(VirtAddr::new(a0), a1, a2, MremapFlags::from_register(a3), VirtAddr::new(a4)))
                .map(|va| va.as_u64())
        }
        Sysno::Mincore => mincore(a0, a1, a2),
        Sysno::Madvise => {
            let advice = Advice::from_register(a2);
            advice.and_then(|advice| mm(|mm| mm.madvise(VirtAddr::new(a0), a1, advice))).map(|()| 0)
        }
        Sysno::Reboot => reboot(a0, a1, a2),
        Sysno::Mount => paths::mount(a0, a1, a2, a3, a4),
        Sysno::Umount2 => paths::umount2(a0, a1),
    };
    drop(preload);
    frame.x[0] = match result {
        Ok(value) => value,
        Err(e) => {
            // An interrupted call: the way back to user space restarts it
            // or fails it with EINTR, and needs the x0 it started with.
            // (rt_sigreturn, whose x0 is whatever it restored, never fails.)
            if Restart::from_result(e.as_neg() as u64).is_some() {
                thread::with_current(|t| t.note_restart(a0));
            }
            e.as_neg() as u64
        }
    };
    if TRACE.load(core::sync::atomic::Ordering::Relaxed) {
        log::info!(
            "pid {}: {}({:#x}, {:#x}, {:#x}, {:#x}) = {:#x}",
            process::current_process().pid,
            call.name(),
            a0,
            a1,
            a2,
            a3,
            frame.x[0] as i64
        );
    }
}

/// [`heap_bound`] of a call on the file tree: see there.
const TREE_CALL_HEAP: usize = 4 * PATH_MAX + 2 * 13 * 2048 + 8 * 1024;

/// Heap a system call on the file tree or the descriptor table may take,
/// at most ([`TREE_CALL_HEAP`]): its paths (two, and the absolute forms made of them), a node
/// and a directory entry made (a B-tree insert: a node of up to 2 KiB per
/// level, twelve levels at most), an open file and its description.
/// `None` for calls that preload nothing: they allocate fallibly, or
/// preload what they change themselves (the memory calls, truncate and
/// execve), or may sleep (a section's reserve is not kept across a sleep).
/// A file's last reference allocates nothing as it goes (close, dup3 and
/// the unlink or rename that drops it: a pager no one else holds is not
/// written back).
fn heap_bound(call: Sysno) -> Option<usize> {
    match call {
        Sysno::Openat
        | Sysno::Pipe2
        | Sysno::Lseek
        | Sysno::Getdents64
        | Sysno::Getcwd
        | Sysno::Chdir
        | Sysno::Fchdir
        | Sysno::Mkdirat
        | Sysno::Linkat
        | Sysno::Symlinkat
        | Sysno::Faccessat
        | Sysno::Faccessat2
        | Sysno::Fchmodat
        | Sysno::Fchmod
        | Sysno::Fchownat
        | Sysno::Fchown
        | Sysno::Statfs
        | Sysno::Fstatfs
        | Sysno::Readlinkat
        | Sysno::Utimensat
        | Sysno::Statx
        | Sysno::Fstat
        | Sysno::Newfstatat
        | Sysno::Unlinkat
        | Sysno::Renameat
        | Sysno::Renameat2 => Some(TREE_CALL_HEAP),
        // A copy of the process's table of actions when it is shared
        // (after fork: copied on write).
        Sysno::RtSigaction => Some(8 * 1024),
        _ => None,
    }
}

static TRACE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether `aspen.strace` is on.
pub fn tracing() -> bool {
    TRACE.load(core::sync::atomic::Ordering::Relaxed)
}

/// Logs every system call with its arguments and result, and every page
/// fault (`aspen.strace`).
pub fn enable_trace() {
    TRACE.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// The resolver the copy routines use: demand paging for the current
/// process.
fn resolver() -> impl FnMut(u64, Access) -> bool {
    |addr, access| {
        let kind = match access {
            Access::Read => FaultKind::Read,
            Access::Write => FaultKind::Write,
        };
        sched::in_user_copy_fault(|| process::resolve_fault(addr, kind)).is_ok()
    }
}

/// The current process's user memory.
pub(crate) fn user() -> impl UserMemory {
    ActiveSpace::new(resolver())
}

/// Copies the bytes of `src` in.
fn copy_in(src: UserSlice) -> Result<Vec<u8>, Errno> {
    user().read_bytes(src)
}

/// Copies `data` out to the start of `dst`.
fn copy_out(dst: UserSlice, data: &[u8]) -> Result<(), Errno> {
    user().write(dst, data)
}

/// Copies `data` out to user address `addr`.
pub(crate) fn copy_out_at(addr: u64, data: &[u8]) -> Result<(), Errno> {
    copy_out(UserSlice::new(addr, data.len() as u64)?, data)
}

/// Reads a NUL-terminated string of at most `max` bytes.
fn read_string(addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    user().read_cstr(addr, max)
}

/// Runs `f` on the current process's address space, in a section that
/// preloads what a change of its varea map may allocate: `ENOMEM` before
/// anything changed when the heap cannot provide that.
fn mm<R>(f: impl FnOnce(&mut process::UserSpace) -> Result<R, Errno>) -> Result<R, Errno> {
    thread::with_current(|t| t.process.with_mm(|space| preloaded(space, f)))?
}

/// Runs `f` on `space` with the kernel heap preloaded for what a change of
/// its varea map may allocate ([`aspen_mm::aspace::AddressSpace::change_heap_bound`]).
fn preloaded<R>(
    space: &mut process::UserSpace,
    f: impl FnOnce(&mut process::UserSpace) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let _preload = crate::heap::preload(space.change_heap_bound())?;
    f(space)
}

/// Runs `f` on the current process's address space, for a call that
/// leaves its varea map as it is and allocates only fallibly (mincore's
/// vector, msync's write-back): no preload, whose bound would have to
/// cover those allocations too.
fn mm_unchanged<R>(f: impl FnOnce(&mut process::UserSpace) -> Result<R, Errno>) -> Result<R, Errno> {
    thread::with_current(|t| t.process.with_mm(f))?
}

/// Runs `f` on the current process's descriptor table (which a running
/// thread's process always has).
fn with_files<R>(f: impl FnOnce(&mut process::fd::FdTable) -> Result<R, Errno>) -> Result<R, Errno> {
    thread::with_current(|t| t.process.with_files(f))?
}

/// Largest single transfer of read/write; longer requests are done up to
/// here (as Linux's MAX_RW_COUNT bounds them).
const MAX_IO: u64 = 0x7fff_f000;
/// Bytes moved per step between a file and user memory.
const IO_CHUNK: usize = 64 * 1024;

/// A zeroed kernel buffer of `len` bytes for a transfer; `ENOMEM` rather
/// than an allocation-failure panic.
fn io_buffer(len: usize) -> Result<Vec<u8>, Errno> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    buffer.resize(len, 0);
    Ok(buffer)
}

/// Bytes of a regular file read or written per step (about 6,000
/// instructions through the page cache), between which the call may pause.
const FILE_CHUNK: usize = 4 * 1024;

/// A transfer that stopped at `error` after `done` bytes: as Linux, the
/// bytes that were moved, or the error if there were none.
fn partial(done: usize, error: Errno) -> SysResult {
    if done > 0 {
        Ok(done as u64)
    } else {
        Err(error)
    }
}

/// What a system call that copied `len` bytes with `outcome` reports.
fn reported(outcome: Result<(), CopyFault>, len: usize) -> SysResult {
    match outcome {
        Ok(()) => Ok(len as u64),
        Err(fault) => partial(fault.copied, fault.errno),
    }
}

fn read(fd: u64, buf: u64, count: u64) -> SysResult {
    let description = with_files(|f| f.get(fd))?;
    read_from(&description, UserSlice::new(buf, count)?, true)
}

/// Reads from `description` into `buf`. A fault part-way through `buf`
/// ends the read with the bytes before it, and the position moves by
/// exactly those: no byte is skipped that the reader did not get. Without
/// `may_wait` a pipe or the console with nothing to read is `EAGAIN`, as
/// with `O_NONBLOCK` (readv after its first `iovec`: one read of a pipe
/// returns what is there).
fn read_from(description: &Arc<OpenDescription>, buf: UserSlice, may_wait: bool) -> SysResult {
    let count = buf.len().min(MAX_IO) as usize;
    if !description.flags().readable() {
        return Err(Errno::EBADF);
    }
    let nonblocking = description.nonblocking() || !may_wait;
    match &description.kind {
        Description::Console(node) => {
            let data = tty::read(count, nonblocking, *node)?;
            reported(user().write_partial(buf, &data), data.len())
        }
        Description::PipeRead(reader) => reader.read(buf.sub(0, count as u64), nonblocking).map(|n| n as u64),
        Description::PipeWrite(_) => Err(Errno::EBADF),
        Description::File(file) => {
            let mut done = 0;
            // Between chunks a better task may run, when nobody else can
            // see the position move (a big read was one stretch of a
            // millisecond or more).
            let may_pause = count > FILE_CHUNK && process::owns_description_alone(description);
            while done < count {
                if done > 0 && may_pause {
                    crate::task::sched::pause_point();
                }
                let want = (count - done).min(FILE_CHUNK);
                let dst = buf.sub(done as u64, want as u64);
                match file.read_into(want, |data| user().write_partial(dst, data)) {
                    Ok(n) => {
                        done += n;
                        if n < want {
                            break;
                        }
                    }
                    Err(ReadIntoError::Delivery(fault)) => return partial(done + fault.copied, fault.errno),
                    Err(ReadIntoError::File(errno)) => return partial(done, errno),
                }
            }
            Ok(done as u64)
        }
        Description::Device(device, _) => {
            let mut done = 0;
            while done < count {
                let mut chunk = match io_buffer((count - done).min(IO_CHUNK)) {
                    Ok(chunk) => chunk,
                    Err(errno) => return partial(done, errno),
                };
                let n = device.read(&mut chunk);
                if n == 0 {
                    break;
                }
                if let Err(fault) = user().write_partial(buf.sub(done as u64, n as u64), &chunk[..n]) {
                    return partial(done + fault.copied, fault.errno);
                }
                done += n;
            }
            Ok(done as u64)
        }
        Description::Snapshot(snapshot) => {
            let mut position = snapshot.position.lock();
            let rest = snapshot.data.get(*position..).unwrap_or_default();
            let n = rest.len().min(count);
            let outcome = user().write_partial(buf, &rest[..n]);
            *position += outcome.map_or_else(|fault| fault.copied, |()| n);
            reported(outcome, n)
        }
    }
}

/// What a write or writev returns: a write that found a pipe's read end
/// closed sends `SIGPIPE` to the writing thread (which its default action
/// turns into the end of the process on the way out) and returns the bytes
/// written before, or `EPIPE`, as Linux.
fn signal_broken_pipe(result: Result<u64, WriteError>) -> SysResult {
    match result {
        Ok(n) => Ok(n),
        Err(WriteError::Errno(errno)) => Err(errno),
        Err(WriteError::BrokenPipe { written }) => {
            thread::with_current(|me| {
                let info = SigInfo::sent(Signal::Pipe, aspen_abi::signal::SI_USER, me.process.pid, 0);
                me.send(Signal::Pipe.into(), info)
            })?;
            partial(written, Errno::EPIPE)
        }
    }
}

fn write(fd: u64, buf: u64, count: u64) -> Result<u64, WriteError> {
    let description = with_files(|f| f.get(fd))?;
    write_to(&description, UserSlice::new(buf, count).map_err(Errno::from)?)
}

/// Writes `buf` to `description`. Where `buf` stops being readable the
/// write stops: the readable part is written and reported (`EFAULT` if
/// there is none), as Linux does.
fn write_to(description: &Arc<OpenDescription>, buf: UserSlice) -> Result<u64, WriteError> {
    if !description.flags().writable() {
        return Err(Errno::EBADF.into());
    }
    // None: the console.
    let file = match &description.kind {
        Description::Console(node) => {
            tty::check_write(*node)?;
            None
        }
        Description::File(file) => Some(file),
        Description::PipeWrite(writer) => {
            let buf = buf.sub(0, MAX_IO);
            let copy = |at: usize, piece: &mut [u8]| user().read_partial(buf.sub(at as u64, piece.len() as u64), piece);
            return writer.write(buf.len() as usize, description.nonblocking(), copy).map(|n| n as u64);
        }
        Description::Device(device, _) => return Ok(device.write(buf.len().min(MAX_IO) as usize)? as u64),
        Description::Snapshot(snapshot) => {
            let target = snapshot.writes_to.as_ref().ok_or(Errno::EBADF)?;
            // Linux reads at most 23 bytes of a number (`kstrtouint_from_user`).
            let mut text = [0u8; 23];
            let text = text.get_mut(..buf.len() as usize).ok_or(Errno::EINVAL)?;
            user().read(buf, text)?;
            return Ok(procfs::write(target, text)? as u64);
        }
        Description::PipeRead(_) => return Err(Errno::EBADF.into()),
    };
    let append = description.flags().contains(OpenFlags::APPEND);
    let count = buf.len().min(MAX_IO) as usize;
    // As a read: pauses between chunks when nobody else sees the position.
    let may_pause = file.is_some() && count > FILE_CHUNK && process::owns_description_alone(description);
    let step = if may_pause { FILE_CHUNK } else { IO_CHUNK };
    let mut done = 0;
    while done < count {
        if done > 0 && may_pause {
            crate::task::sched::pause_point();
        }
        let mut chunk = match io_buffer((count - done).min(step)) {
            Ok(chunk) => chunk,
            Err(errno) => return Ok(partial(done, errno)?),
        };
        let fault = user().read_partial(buf.sub(done as u64, chunk.len() as u64), &mut chunk).err();
        let readable = &chunk[..fault.map_or(chunk.len(), |fault| fault.copied)];
        let n = match file {
            _ if readable.is_empty() => 0,
            None => match tty::write(readable) {
                Ok(()) => readable.len(),
                Err(errno) => return Ok(partial(done, errno)?),
            },
            Some(file) => match file.write(readable, append) {
                Ok(n) => n,
                Err(errno) => return Ok(partial(done, errno)?),
            },
        };
        done += n;
        if let Some(fault) = fault {
            return Ok(partial(done, fault.errno)?);
        }
        if n < readable.len() {
            break;
        }
    }
    Ok(done as u64)
}

/// readv/writev: the `iovec`s (16 bytes: base, length) in order, as one
/// read or write each, until one moves fewer bytes than it asked for or
/// faults: then the bytes moved so far (the error if none). Every `iovec`
/// is checked before any is used (a negative length is `EINVAL`, a range
/// outside user space `EFAULT`), so a bad one has no partial effect; the
/// lengths are cut so that the total stays within one transfer's limit.
fn vectored(fd: u64, iov: u64, count: u64, writing: bool) -> Result<u64, WriteError> {
    const IOV_MAX: u64 = 1024;
    if count > IOV_MAX {
        return Err(Errno::EINVAL.into());
    }
    let description = with_files(|f| f.get(fd))?;
    let raw = copy_in(UserSlice::new(iov, count * 16).map_err(Errno::from)?)?;
    let field = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap_or_default());
    let entries: Vec<(u64, u64)> = raw.chunks_exact(16).map(|e| (field(&e[..8]), field(&e[8..]))).collect();
    if entries.iter().any(|&(_, len)| (len as i64) < 0) {
        return Err(Errno::EINVAL.into());
    }
    let mut budget = MAX_IO;
    let mut slices = Vec::new();
    for (base, len) in entries {
        let slice = UserSlice::new(base, len).map_err(Errno::from)?.sub(0, budget);
        budget -= slice.len();
        slices.push(slice);
    }
    if writing {
        if let Description::PipeWrite(writer) = &description.kind {
            if slices.iter().map(|s| s.len()).sum::<u64>() <= PIPE_BUF as u64 {
                return atomic_pipe_writev(writer, description.nonblocking(), &slices);
            }
        }
    }
    let mut total = 0usize;
    for slice in slices {
        let moved = if writing {
            write_to(&description, slice)
        } else {
            read_from(&description, slice, total == 0).map_err(WriteError::Errno)
        };
        match moved {
            Ok(n) => {
                total += n as usize;
                if n < slice.len() {
                    break;
                }
            }
            Err(WriteError::BrokenPipe { written }) => return Err(WriteError::BrokenPipe { written: total + written }),
            Err(WriteError::Errno(errno)) => return Ok(partial(total, errno)?),
        }
    }
    Ok(total as u64)
}

/// writev of at most `PIPE_BUF` bytes to a pipe: one atomic write, as
/// Linux makes it (the iovecs gathered first; a fault ends the gathering,
/// and what came before it is written).
fn atomic_pipe_writev(writer: &pipe::PipeWriter, nonblocking: bool, slices: &[UserSlice]) -> Result<u64, WriteError> {
    let mut data = Vec::new();
    let mut fault = None;
    for &slice in slices {
        let at = data.len();
        data.resize(at + slice.len() as usize, 0);
        if let Err(stop) = user().read_partial(slice, &mut data[at..]) {
            data.truncate(at + stop.copied);
            fault = Some(stop.errno);
            break;
        }
    }
    if let (true, Some(errno)) = (data.is_empty(), fault) {
        return Err(errno.into());
    }
    let copy = |at: usize, piece: &mut [u8]| {
        piece.copy_from_slice(&data[at..at + piece.len()]);
        Ok(())
    };
    writer.write(data.len(), nonblocking, copy).map(|n| n as u64)
}

const PATH_MAX: usize = aspen_fs::PATH_MAX;

fn openat(dirfd: i64, path: u64, flags: OpenFlags, mode: u64) -> SysResult {
    let path = paths::at_path(dirfd, path)?;
    let kind = if let Some(node) = tty::Node::at(&path) {
        Description::Console(node)
    } else if let Some(snapshot) = procfs::open(&path)? {
        Description::Snapshot(Arc::new(snapshot))
    } else if let Some(snapshot) = crate::process::sysfs::open(&path)? {
        Description::Snapshot(Arc::new(snapshot))
    } else {
        paths::check_open(&path, flags)?;
        let file = files::vfs().open(&path, flags, paths::masked(mode), paths::new_owner())?;
        if let (Some(object), true) = (file.object(), flags.contains(OpenFlags::TRUNC) && flags.writable()) {
            paths::shrunk_mappings(object.id(), object.size());
        }
        match file.node().kind {
            aspen_fs::NodeKind::CharDevice { major, minor } => match CharDevice::from_numbers(major, minor)? {
                CharDevice::Console => Description::Console(tty::Node::of_minor(minor)),
                CharDevice::Mem(device) => Description::Device(device, Arc::new(file)),
            },
            _ => Description::File(Arc::new(file)),
        }
    };
    let description = OpenDescription::new(kind, flags.description_flags());
    with_files(|f| f.insert(description, flags.contains(OpenFlags::CLOEXEC))).map(|fd| fd as u64)
}

/// `dup3(old, new, flags)`: only `O_CLOEXEC` is a valid flag.
fn dup3(old: u64, new: u64, flags: u64) -> SysResult {
    let flags = OpenFlags::from_register(flags);
    if !OpenFlags::CLOEXEC.contains(flags) {
        return Err(Errno::EINVAL);
    }
    // What `new` named is closed after the table's lock is let go.
    let closed = with_files(|f| f.duplicate_to(old, new, flags.contains(OpenFlags::CLOEXEC)))?;
    drop(closed);
    Ok(new)
}

/// `fcntl(fd, cmd, arg)`: a descriptor that is not open is `EBADF` before
/// an unknown command is `EINVAL`, as in Linux.
fn fcntl(fd: u64, cmd: u64, arg: u64) -> SysResult {
    let description = with_files(|f| f.get(fd))?;
    match FcntlCmd::from_register(cmd)? {
        // The lowest descriptor is an `unsigned int`.
        cmd @ (FcntlCmd::DupFd | FcntlCmd::DupFdCloexec) => {
            with_files(|f| f.duplicate(fd, u64::from(arg as u32), cmd == FcntlCmd::DupFdCloexec)).map(|fd| fd as u64)
        }
        FcntlCmd::GetFd => with_files(|f| f.close_on_exec_of(fd)).map(|on| if on { FD_CLOEXEC } else { 0 }),
        FcntlCmd::SetFd => with_files(|f| f.set_close_on_exec(fd, arg & FD_CLOEXEC != 0)).map(|()| 0),
        FcntlCmd::GetFl => Ok(u64::from(description.flags().bits())),
        FcntlCmd::SetFl => description.set_status(OpenFlags::from_register(arg)).map(|()| 0),
    }
}

/// `pipe2(fds, flags)`: the read end's descriptor, then the write end's,
/// as two `int`s at `fds`. When they cannot be written (`EFAULT`) both
/// descriptors are closed again, so nothing is left behind.
fn pipe2(fds: u64, flags: u64) -> SysResult {
    let flags = Pipe2Flags::from_register(flags)?;
    let out = UserSlice::new(fds, 8)?;
    let (reader, writer) = pipe::new();
    let read_end = OpenDescription::new(Description::PipeRead(reader), OpenFlags::RDONLY | flags.status);
    let write_end = OpenDescription::new(Description::PipeWrite(writer), OpenFlags::WRONLY | flags.status);
    let cloexec = flags.close_on_exec;
    let read_fd = with_files(|f| f.insert(read_end, cloexec))?;
    let write_fd = match with_files(|f| f.insert(write_end, cloexec)) {
        Ok(fd) => fd,
        Err(errno) => {
            let _ = with_files(|f| f.close(read_fd as u64));
            return Err(errno);
        }
    };
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&(read_fd as i32).to_le_bytes());
    bytes[4..].copy_from_slice(&(write_fd as i32).to_le_bytes());
    if let Err(errno) = copy_out(out, &bytes) {
        let _ = with_files(|f| f.close(read_fd as u64));
        let _ = with_files(|f| f.close(write_fd as u64));
        return Err(errno);
    }
    Ok(0)
}

/// `ppoll(fds, nfds, timeout, sigmask, sigsetsize)`. The timeout (NULL:
/// none) is checked first, then the mask, then `nfds` against the
/// descriptor limit, then the entries are read, as in Linux. The remaining
/// time is written back to `timeout`, as Linux does (not an error when it
/// cannot be). A signal mask (8 bytes) is in force while it waits.
fn ppoll(fds: u64, nfds: u64, timeout: u64, sigmask: u64, sigsetsize: u64) -> SysResult {
    let deadline = poll_deadline(timeout)?;
    let mask = read_sigmask(sigmask, sigsetsize)?;
    let limit = with_files(|f| Ok(f.limit()))?;
    if nfds > limit as u64 {
        return Err(Errno::EINVAL);
    }
    let raw = copy_in(UserSlice::new(fds, nfds * PollFd::SIZE as u64)?)?;
    let mut entries = Vec::new();
    entries.try_reserve_exact(raw.len() / PollFd::SIZE).map_err(|_| Errno::ENOMEM)?;
    entries.extend(raw.chunks_exact(PollFd::SIZE).map(|e| PollFd::from_bytes(e.try_into().unwrap_or_default())));
    let (revents, outcome) = with_temporary_mask(mask, || poll::poll(&entries, deadline));
    for (i, events) in revents.iter().enumerate() {
        copy_out_at(fds + (i * PollFd::SIZE + PollFd::REVENTS_OFFSET) as u64, &events.bits().to_le_bytes())?;
    }
    write_time_left(timeout, deadline);
    outcome.map(|count| count as u64)
}

/// The deadline (counter ticks) of a `ppoll`/`pselect6` timeout at
/// `timeout` (NULL: none); `EINVAL` for an invalid `timespec`.
fn poll_deadline(timeout: u64) -> Result<Option<u64>, Errno> {
    match timeout {
        0 => Ok(None),
        addr => Ok(Some(timer::ticks().saturating_add(read_timespec(addr)?.to_ticks(frequency())?))),
    }
}

/// Reads a `ppoll`/`pselect6` signal mask: none (NULL), or 8 bytes.
fn read_sigmask(sigmask: u64, sigsetsize: u64) -> Result<Option<SigSet>, Errno> {
    if sigmask == 0 {
        return Ok(None);
    }
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    read_sigset(sigmask).map(Some)
}

/// Runs a wait with `mask` (if any) in force in place of the thread's own.
fn with_temporary_mask<T>(
    mask: Option<SigSet>,
    wait: impl FnOnce() -> (T, Result<usize, Errno>),
) -> (T, Result<usize, Errno>) {
    let Some(mask) = mask else { return wait() };
    signal::set_temporary_mask(mask);
    let (values, outcome) = wait();
    signal::restore_temporary_mask(outcome.is_err_and(|e| Restart::from_result(e.as_neg() as u64).is_some()));
    (values, outcome)
}

/// Writes the time left before `deadline` back to the `timespec` at
/// `timeout`, as Linux's ppoll and pselect6 do; a timespec that cannot be
/// written is not an error (the call's work is done).
fn write_time_left(timeout: u64, deadline: Option<u64>) {
    if let Some(deadline) = deadline {
        let left = Timespec::from_ticks(deadline.saturating_sub(timer::ticks()), frequency());
        let _ = copy_out_at(timeout, &left.to_bytes());
    }
}

/// `pselect6(n, readfds, writefds, exceptfds, timeout, sig)`, where `sig`
/// points to `{ const sigset_t *mask; size_t size; }` (NULL: no mask).
/// As Linux: the mask pair is read first, then the timeout, then the mask
/// checked; `n` < 0 is `EINVAL` and is cut to the descriptor limit; a
/// descriptor in a set that is not open is `EBADF`; the sets are read and
/// written in whole 64-bit words, each rewritten with only its ready
/// descriptors; the result counts set bits. Interrupted: `EINTR`, sets
/// untouched.
fn pselect6(n: u64, sets: [u64; 3], timeout: u64, sig: u64) -> SysResult {
    let (sigmask, sigsetsize) = match sig {
        0 => (0, 0),
        addr => {
            let pair = copy_in(UserSlice::new(addr, 16)?)?;
            let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap_or_default());
            (word(&pair[..8]), word(&pair[8..]))
        }
    };
    let deadline = poll_deadline(timeout)?;
    let mask = read_sigmask(sigmask, sigsetsize)?;
    let n = usize::try_from(n as i32).map_err(|_| Errno::EINVAL)?;
    let n = n.min(with_files(|f| Ok(f.limit()))?);
    let bytes = fd_set_bytes(n);
    // Every buffer is allocated fallibly: no room is ENOMEM, nothing done.
    let zeroed = || poll::filled(0u8, bytes).map_err(|_| Errno::ENOMEM);
    let mut wanted = [Vec::new(), Vec::new(), Vec::new()];
    for (&set, out) in sets.iter().zip(&mut wanted) {
        *out = if set == 0 { zeroed()? } else { copy_in(UserSlice::new(set, bytes as u64)?)? };
    }
    let bit = |set: &[u8], fd: usize| set[fd / 8] & (1 << (fd % 8)) != 0;
    let mut entries = Vec::new();
    entries.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
    for fd in 0..n {
        let [read, write, except] = [0, 1, 2].map(|s| bit(&wanted[s], fd));
        if read || write || except {
            with_files(|f| f.get(fd as u64))?;
            entries.push(PollFd { fd: fd as i32, events: SelectReady::requested(read, write, except) });
        }
    }
    let (revents, outcome) = with_temporary_mask(mask, || poll::select(&entries, deadline));
    let count = outcome?;
    let mut ready = [zeroed()?, zeroed()?, zeroed()?];
    for (entry, events) in entries.iter().zip(revents) {
        let hits = SelectReady::from_events(entry.events, events);
        let fd = entry.fd as usize;
        for (set, hit) in ready.iter_mut().zip([hits.read, hits.write, hits.except]) {
            if hit {
                set[fd / 8] |= 1 << (fd % 8);
            }
        }
    }
    for (&addr, set) in sets.iter().zip(&ready) {
        if addr != 0 {
            copy_out(UserSlice::new(addr, bytes as u64)?, set)?;
        }
    }
    write_time_left(timeout, deadline);
    Ok(count as u64)
}

fn lseek(fd: u64, offset: i64, whence: u64) -> SysResult {
    let whence = match whence {
        0 => Whence::Set,
        1 => Whence::Current,
        2 => Whence::End,
        _ => return Err(Errno::EINVAL),
    };
    match &with_files(|f| f.get(fd))?.kind {
        Description::File(file) => file.lseek(offset, whence),
        Description::Snapshot(snapshot) => {
            let mut position = snapshot.position.lock();
            let base = match whence {
                Whence::Set => 0,
                Whence::Current => *position as i64,
                Whence::End => snapshot.data.len() as i64,
            };
            let new = base.checked_add(offset).filter(|n| *n >= 0).ok_or(Errno::EINVAL)?;
            *position = new as usize;
            Ok(new as u64)
        }
        // As Linux's null_lseek (and noop_llseek for the random devices).
        Description::Device(..) => Ok(0),
        Description::Console(_) | Description::PipeRead(_) | Description::PipeWrite(_) => Err(Errno::ESPIPE),
    }
}

fn getdents64(fd: u64, buf: u64, count: u64) -> SysResult {
    let capacity = count.min(MAX_IO) as usize;
    let (bytes, taken, offered) = match &with_files(|f| f.get(fd))?.kind {
        Description::File(file) => {
            let list = file.read_dir(usize::MAX)?;
            let (bytes, taken) = encode(list.iter().map(|e| (e.name.as_str(), e.ino, e.kind)), capacity)?;
            file.unread_dir(list.len() - taken);
            (bytes, taken, list.len())
        }
        Description::Snapshot(snapshot) if !snapshot.entries.is_empty() => {
            let mut position = snapshot.position.lock();
            let rest = snapshot.entries.get(*position..).unwrap_or_default();
            let (bytes, taken) = encode(rest.iter().map(|(n, i, k)| (n.as_str(), *i, *k)), capacity)?;
            *position += taken;
            (bytes, taken, rest.len())
        }
        _ => return Err(Errno::ENOTDIR),
    };
    if taken == 0 && offered > 0 {
        return Err(Errno::EINVAL);
    }
    copy_out_at(buf, &bytes)?;
    Ok(bytes.len() as u64)
}

/// The `linux_dirent64` records of `(name, inode, DT_ type)` entries that
/// fit in `capacity` bytes, and how many entries they hold.
fn encode<'a>(entries: impl Iterator<Item = (&'a str, u64, u8)>, capacity: usize) -> Result<(Vec<u8>, usize), Errno> {
    let records = entries.enumerate().map(|(i, (name, ino, kind))| Dirent64 {
        ino,
        next_offset: i as i64 + 1,
        file_type: match kind {
            4 => FileType::Directory,
            2 => FileType::CharDevice,
            10 => FileType::Symlink,
            _ => FileType::Regular,
        },
        name: name.as_bytes(),
    });
    match aspen_abi::syscall::encode_dirents(records, capacity) {
        Ok(result) => Ok(result),
        Err(aspen_abi::syscall::DirentError::BufferTooSmall) => Ok((Vec::new(), 0)),
        Err(e) => Err(e.errno()),
    }
}

fn stat_of(description: &Description) -> aspen_fs::Stat {
    match description {
        Description::PipeRead(end) => pipe_stat(end.ino()),
        Description::PipeWrite(end) => pipe_stat(end.ino()),
        Description::File(file) | Description::Device(_, file) => file.node().stat(),
        Description::Console(node) => aspen_fs::Stat {
            dev: (0, 6),
            ino: 2,
            mode: 0o020600,
            size: 0,
            rdev: (5, node.minor()),
            uid: 0,
            gid: 0,
            nlink: 1,
            ..Default::default()
        },
        Description::Snapshot(s) => aspen_fs::Stat {
            dev: (0, 4),
            ino: if s.ino == 0 { 3 } else { s.ino },
            mode: if s.entries.is_empty() { 0o100444 } else { 0o040555 },
            size: 0,
            rdev: (0, 0),
            uid: s.owner.0,
            gid: s.owner.1,
            nlink: 1,
            ..Default::default()
        },
    }
}

/// A pipe's `stat`: a FIFO (mode 0o10600) of the pipe file system, with
/// its own inode number.
fn pipe_stat(ino: u64) -> aspen_fs::Stat {
    aspen_fs::Stat {
        dev: (0, 12),
        ino,
        mode: 0o010600,
        size: 0,
        rdev: (0, 0),
        uid: 0,
        gid: 0,
        nlink: 1,
        ..Default::default()
    }
}

fn write_stat(addr: u64, stat: aspen_fs::Stat) -> SysResult {
    let bytes = Stat {
        dev: make_dev(stat.dev),
        ino: stat.ino,
        mode: stat.mode,
        nlink: stat.nlink,
        uid: stat.uid,
        gid: stat.gid,
        rdev: make_dev(stat.rdev),
        size: stat.size as i64,
        blksize: 4096,
        blocks: stat.size.div_ceil(512) as i64,
        atime: stat.atime,
        mtime: stat.mtime,
        ctime: stat.ctime,
        ..Default::default()
    }
    .to_bytes();
    copy_out_at(addr, &bytes)?;
    Ok(0)
}

/// Linux's `new_encode_dev`.
fn make_dev((major, minor): (u32, u32)) -> u64 {
    u64::from(minor & 0xff) | (u64::from(major & 0xfff) << 8) | (u64::from(minor & !0xff) << 12)
}

fn fstat(fd: u64, addr: u64) -> SysResult {
    let description = with_files(|f| f.get(fd))?;
    write_stat(addr, stat_of(&description.kind))
}

fn newfstatat(dirfd: i64, path: u64, addr: u64, flags: AtFlags) -> SysResult {
    if !(AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW).contains(flags) {
        return Err(Errno::EINVAL);
    }
    if flags.contains(AtFlags::EMPTY_PATH) && read_string(path, PATH_MAX - 1)?.is_empty() {
        return fstat(dirfd as u64, addr);
    }
    let follow = !flags.contains(AtFlags::SYMLINK_NOFOLLOW);
    write_stat(addr, paths::stat_path(&paths::at_path(dirfd, path)?, follow)?)
}

/// `ioctl(fd, cmd, arg)`: the commands every descriptor takes (Linux's
/// `do_vfs_ioctl`): `FIONBIO` sets or clears `O_NONBLOCK` from the `int`
/// at `arg`, `FIOCLEX`/`FIONCLEX` the close-on-exec flag; the console
/// takes the terminal ones ([`tty::ioctl`]); anything else is `ENOTTY`.
fn ioctl(fd: u64, cmd: u32, arg: u64) -> SysResult {
    const FIONBIO: u32 = 0x5421;
    const FIOCLEX: u32 = 0x5451;
    const FIONCLEX: u32 = 0x5450;
    let description = with_files(|f| f.get(fd))?;
    match cmd {
        FIONBIO => {
            let on = user().read_u32(UserPtr::new(arg)?)? != 0;
            let mut status = description.flags();
            status.set(OpenFlags::NONBLOCK, on);
            description.set_status(status)?;
            Ok(0)
        }
        FIOCLEX | FIONCLEX => with_files(|f| f.set_close_on_exec(fd, cmd == FIOCLEX)).map(|()| 0),
        _ if matches!(description.kind, Description::Console(_)) => tty::ioctl(cmd, arg),
        _ => Err(Errno::ENOTTY),
    }
}

fn clone(frame: &TrapFrame, args: &CloneArgs) -> SysResult {
    process::clone(frame, args).map(u64::from)
}

/// `clone3(args, size)`: the `struct clone_args` is read whole first (at
/// most a page: `E2BIG` beyond).
fn clone3(frame: &TrapFrame, args: u64, size: u64) -> SysResult {
    if size > aspen_abi::clone::CLONE_ARGS_SIZE_MAX as u64 {
        return Err(Errno::E2BIG);
    }
    let raw = copy_in(UserSlice::new(args, size)?)?;
    clone(frame, &CloneArgs::from_clone3(&raw)?)
}

/// `futex(uaddr, op, val, timeout, uaddr2, val3)`: as Linux, the timeout
/// of a command that takes one is read and checked first (relative for
/// `FUTEX_WAIT`, an absolute deadline otherwise: every clock counts from
/// reset), then the operation decoded; for the requeues and
/// `FUTEX_WAKE_OP` the fourth argument is the count `val2`.
fn futex(addr: u64, op: u32, val: u32, timeout: u64, addr2: u64, val3: u32) -> SysResult {
    use aspen_abi::futex::{FutexOp, TimeoutKind};
    let deadline = match FutexOp::timeout_kind(op) {
        TimeoutKind::None => None,
        _ if timeout == 0 => None,
        kind => {
            let ticks = read_timespec(timeout)?.to_ticks(frequency()).map_err(|_| Errno::EINVAL)?;
            Some(if kind == TimeoutKind::Relative { timer::ticks().saturating_add(ticks) } else { ticks })
        }
    };
    let op = FutexOp::decode(op)?;
    crate::futex::futex(&crate::futex::Call { op, addr, val, deadline, val2: timeout as u32, addr2, val3 })
}

/// Compare-and-swap of the user word at `addr` (atomic against other
/// cores): stores `new` if it holds `expected`; the value it held.
pub(crate) fn cmpxchg_user_u32(addr: u64, expected: u32, new: u32) -> Result<u32, Errno> {
    ActiveSpace::new(resolver()).cmpxchg_u32(UserPtr::new(addr)?, expected, new)
}

/// Reads and checks a `struct timespec`.
fn read_timespec(addr: u64) -> Result<Timespec, Errno> {
    let mut raw = [0; Timespec::SIZE];
    user().read(UserPtr::<Timespec>::new(addr)?.as_slice(), &mut raw)?;
    Timespec::from_bytes(raw).validated().map_err(|_| Errno::EINVAL)
}

/// execve's argument and environment strings, read into one buffer (one
/// allocation however many strings there are, and a failure to get it is
/// `ENOMEM`, not a panic).
#[derive(Default)]
struct ExecStrings {
    bytes: Vec<u8>,
    /// Where each string ends in `bytes`.
    ends: Vec<usize>,
}

impl ExecStrings {
    /// The strings from `first` on.
    fn slices(&self, first: usize) -> Result<Vec<&[u8]>, Errno> {
        let mut slices = Vec::new();
        slices.try_reserve_exact(self.ends.len().saturating_sub(first)).map_err(|_| Errno::ENOMEM)?;
        let starts = core::iter::once(0).chain(self.ends.iter().copied());
        slices.extend(starts.zip(&self.ends).skip(first).map(|(start, &end)| &self.bytes[start..end]));
        Ok(slices)
    }

    /// Appends the NULL-terminated array of string pointers at `addr`
    /// (argv or envp); returns how many strings it had. Each string with its
    /// NUL and its pointer is taken from `budget` (Linux's rule:
    /// [`aspen_abi::stack::arg_limit`]), and none may be longer than
    /// `MAX_ARG_STRLEN`: past either, `E2BIG`.
    fn read_array(&mut self, addr: u64, budget: &mut usize) -> Result<usize, Errno> {
        use aspen_abi::stack::MAX_ARG_STRLEN;
        if addr == 0 {
            return Ok(0);
        }
        let array = UserPtr::<u64>::new(addr)?;
        let mut count = 0;
        loop {
            let pointer = user().read_u64(array.offset(count as u64)?)?;
            if pointer == 0 {
                return Ok(count);
            }
            let max = (*budget).min(MAX_ARG_STRLEN).saturating_sub(1);
            let string =
                read_string(pointer, max).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::E2BIG } else { e })?;
            *budget = budget.checked_sub(string.len() + 1 + 8).ok_or(Errno::E2BIG)?;
            self.bytes.try_reserve(string.len()).map_err(|_| Errno::ENOMEM)?;
            self.ends.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            self.bytes.extend_from_slice(&string);
            self.ends.push(self.bytes.len());
            count += 1;
            // Up to Linux's limits a call reads many thousands of strings.
            if count % EXEC_STRINGS_PER_PAUSE == 0 {
                crate::task::sched::pause_point();
            }
        }
    }
}

/// execve's strings read between two pause points (a few thousand
/// instructions for short ones).
const EXEC_STRINGS_PER_PAUSE: usize = 16;

fn execve(frame: &mut TrapFrame, argv: u64, envp: u64, path: u64) -> SysResult {
    match exec_strings(frame, argv, envp, path)? {
        // The new program starts with x0 = 0, as the frame now says.
        Ok(()) => Ok(frame.x[0]),
        Err(ExecError::Refused(errno)) => Err(errno),
        // Every string is dropped by now: the kill does not return.
        Err(ExecError::Unloadable(why)) => process::kill_current(Signal::Segv, format_args!("execve: {why}")),
        Err(ExecError::OutOfMemoryPastNoReturn) => process::kill_current(
            Signal::Segv,
            format_args!("execve: out of kernel memory past the point of no return"),
        ),
    }
}

/// Reads execve's strings and runs it; the outer error is a failure to
/// read them.
fn exec_strings(frame: &mut TrapFrame, argv: u64, envp: u64, path: u64) -> Result<Result<(), ExecError>, Errno> {
    // The path and its lookup in a section; the strings are read fallibly,
    // and the load preloads in proportion to them (`process::exec`).
    let path = {
        let _preload = crate::heap::preload(TREE_CALL_HEAP)?;
        let path = paths::resolve(i64::from(AT_FDCWD), &read_string(path, PATH_MAX - 1)?)?;
        paths::check_exec(&path)?;
        path
    };
    let stack_limit = process::current_process().limits.lock().get(aspen_abi::resource::Resource::Stack).cur;
    let limit = aspen_abi::stack::arg_limit(stack_limit);
    let mut budget = limit;
    let mut strings = ExecStrings::default();
    let argc = strings.read_array(argv, &mut budget)?;
    strings.read_array(envp, &mut budget)?;
    let all = strings.slices(0)?;
    let (argv, envp) = all.split_at(argc);
    Ok(process::exec::execve(frame, &path, argv, envp, limit))
}

fn wait4(pid: i32, status: u64, options: u64, rusage: u64) -> SysResult {
    let options = WaitOptions::from_bits(options as u32)?;
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    match process::wait(pid, &options)? {
        None => Ok(0),
        Some(report) => {
            if status != 0 {
                let code = match report.state {
                    ChildState::Ended(status) => status,
                    ChildState::Job(job) => job.status(),
                };
                copy_out_at(status, &code.0.to_le_bytes())?;
            }
            zero_rusage(rusage)?;
            Ok(u64::from(report.pid))
        }
    }
}

/// Writes a `struct rusage` of zeros at `addr` (if not null): no
/// accounting yet.
fn zero_rusage(addr: u64) -> Result<(), Errno> {
    if addr == 0 {
        return Ok(());
    }
    copy_out_at(addr, &[0u8; 144])
}

/// `waitid(idtype, id, infop, options, rusage)`: as `wait4`, with the
/// child's state in `*infop` (`si_signo` SIGCHLD, `si_code` `CLD_*`,
/// `si_pid`, `si_uid`, `si_status`; all zero when `WNOHANG` finds none).
fn waitid(idtype: u32, id: i32, infop: u64, options: u32, rusage: u64) -> SysResult {
    let options = WaitOptions::from_waitid_bits(options)?;
    let pid = match WaitId::new(idtype, id)? {
        WaitId::All => -1,
        WaitId::Pid(pid) => pid as i32,
        WaitId::Pgid(pgid) => -(pgid as i32),
    };
    let info = process::wait(pid, &options)?.map_or(
        SigInfo { signo: 0, errno: 0, code: 0, pad: 0, fields: [0; 14] },
        |report| {
            let (code, status) = match report.state {
                ChildState::Ended(status) => match status.term_signal() {
                    Some(signo) => (CLD_KILLED, i32::from(signo)),
                    None => (CLD_EXITED, i32::from(status.exit_code().unwrap_or(0))),
                },
                ChildState::Job(job) => job.code_and_status(),
            };
            SigInfo::child(code, report.pid, report.uid, status)
        },
    );
    if infop != 0 {
        // As Linux: si_signo, si_errno, si_code, si_pid, si_uid, si_status.
        copy_out_at(infop, &info.to_bytes()[..28])?;
    }
    zero_rusage(rusage)?;
    Ok(0)
}

fn frequency() -> core::num::NonZeroU64 {
    core::num::NonZeroU64::new(timer::frequency()).unwrap_or(core::num::NonZeroU64::MIN)
}

/// Reads a `sigset_t` argument (`sigsetsize` must be 8).
fn read_sigset(addr: u64) -> Result<SigSet, Errno> {
    Ok(SigSet(user().read_u64(UserPtr::new(addr)?)?))
}

/// `rt_sigaction(sig, act, oact, sigsetsize)`.
fn rt_sigaction(sig: u64, act: u64, oact: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new = match act {
        0 => None,
        addr => {
            let mut raw = [0; SigAction::SIZE];
            user().read(UserSlice::new(addr, raw.len() as u64)?, &mut raw)?;
            Some(SigAction::from_bytes(raw))
        }
    };
    let old = signal::sigaction(sig, new)?;
    if oact != 0 {
        copy_out_at(oact, &old.to_bytes())?;
    }
    Ok(0)
}

/// `rt_sigprocmask(how, set, oldset, sigsetsize)`: `how` is only looked at
/// with a set, as Linux.
fn rt_sigprocmask(how: u64, set: u64, old: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new = match set {
        0 => None,
        addr => Some((MaskHow::from_register(how)?, read_sigset(addr)?)),
    };
    let previous = match new {
        Some((how, set)) => signal::sigprocmask(how, Some(set)),
        None => signal::sigprocmask(MaskHow::Block, None),
    };
    if old != 0 {
        copy_out_at(old, &previous.0.to_le_bytes())?;
    }
    Ok(0)
}

fn rt_sigpending(set: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    copy_out_at(set, &signal::sigpending().0.to_le_bytes())?;
    Ok(0)
}

fn rt_sigsuspend(set: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    Err(signal::sigsuspend(read_sigset(set)?))
}

/// `rt_sigtimedwait(set, info, timeout, sigsetsize)`: the signal number.
fn rt_sigtimedwait(set: u64, info: u64, timeout: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let set = read_sigset(set)?;
    let deadline = match timeout {
        0 => None,
        addr => {
            let ticks = read_timespec(addr)?.to_ticks(frequency()).map_err(|_| Errno::EINVAL)?;
            Some(timer::ticks().saturating_add(ticks))
        }
    };
    let (signo, taken) = signal::sigtimedwait(set, deadline)?;
    if info != 0 {
        copy_out_at(info, &taken.to_bytes())?;
    }
    Ok(u64::from(signo.number()))
}

fn rt_sigqueueinfo(pid: i32, sig: u64, info: u64) -> SysResult {
    let mut raw = [0; SigInfo::SIZE];
    user().read(UserSlice::new(info, raw.len() as u64)?, &mut raw)?;
    signal::sigqueueinfo(pid, sig, SigInfo::from_bytes(&raw)).map(|()| 0)
}

/// `sigaltstack(ss, old_ss)` for a thread whose stack pointer is `sp`.
fn sigaltstack(new: u64, old: u64, sp: u64) -> SysResult {
    let new = match new {
        0 => None,
        addr => {
            let mut raw = [0; StackT::SIZE];
            user().read(UserSlice::new(addr, raw.len() as u64)?, &mut raw)?;
            Some(StackT::from_bytes(&raw))
        }
    };
    let previous = signal::sigaltstack(new, sp)?;
    if old != 0 {
        copy_out_at(old, &previous.to_bytes())?;
    }
    Ok(0)
}

/// The release `uname` and `/proc/version` report: a Linux version first,
/// which C libraries compare against their minimum kernel version.
pub const KERNEL_RELEASE: &str = concat!("6.1.0-aspen-", env!("CARGO_PKG_VERSION"));

fn uname(out: u64) -> SysResult {
    let name = UtsName {
        // Not "Linux": Aspen is not Linux, and tests tell the two apart by
        // it. The release keeps a Linux version first, which C libraries
        // compare against their minimum kernel version.
        sysname: b"Aspen",
        nodename: b"aspen",
        release: KERNEL_RELEASE.as_bytes(),
        version: b"Aspen",
        machine: b"aarch64",
        domainname: b"(none)",
    };
    let bytes = name.to_bytes()?;
    copy_out_at(out, &bytes)?;
    Ok(0)
}

fn mmap(addr: u64, len: u64, prot: Prot, flags: MapFlags, fd: u64, offset: u64) -> SysResult {
    use aspen_mm::aspace::MappedFile;
    let file = if flags.contains(MapFlags::ANONYMOUS) {
        None
    } else {
        let description = with_files(|f| f.get(fd))?;
        let (readable, writable) = (description.flags().readable(), description.flags().writable());
        match &description.kind {
            Description::File(file) => {
                let object = file.object().ok_or(Errno::ENODEV)?.clone();
                Some(MappedFile { object, readable: file.flags().readable(), writable: file.flags().writable() })
            }
            Description::Device(MemDevice::Zero, _) => {
                return map_zero(addr, len, prot, flags, offset, readable, writable)
            }
            _ => return Err(Errno::ENODEV),
        }
    };
    map_beside_faults(VirtAddr::new(addr), len, prot, flags, file, offset).map(|va| va.as_u64())
}

/// mmap(2) on the current process's space. A mapping that changes only the
/// varea map (no populate, nothing replaced) is made in a short stretch
/// while the space's faults go on on other cores (they wait for the
/// stretch, not for the call); anything else holds the space exclusively.
fn map_beside_faults(
    addr: VirtAddr,
    len: u64,
    prot: Prot,
    flags: MapFlags,
    file: Option<aspen_mm::aspace::MappedFile<'static, crate::memory::user_env::KernelMm>>,
    offset: u64,
) -> Result<VirtAddr, Errno> {
    thread::with_current(|t| {
        t.process.with_space(|space| {
            let mut edit = space.lock_for_edit();
            let mut file = Some(file);
            let mapped = edit.alone(|mm| {
                preloaded(mm, |mm| {
                    let map_only = mm.mmap_changes_map_only(flags);
                    Ok(map_only.then(|| mm.mmap(addr, len, prot, flags, file.take().flatten(), offset)))
                })
            })?;
            match mapped {
                Some(result) => result,
                None => edit
                    .exclusive(|mm| preloaded(mm, |mm| mm.mmap(addr, len, prot, flags, file.take().flatten(), offset))),
            }
        })
    })?
}

/// munmap(2) on the current process's space. Private memory (a few pages
/// of it, or any length when the process has other threads) is unmapped
/// while the space's faults go on on other cores: only the two changes of
/// the varea map are short stretches alone (`aspen_mm::aspace::shared`);
/// anything else holds the space exclusively.
fn munmap(addr: VirtAddr, len: u64) -> Result<(), Errno> {
    use aspen_mm::aspace::{Beside, MunmapShared};
    thread::with_current(|t| {
        // Only a choice of the cheaper way for a long range: the exclusive
        // one is right too (a thread made meanwhile waits for the lock at
        // its first fault).
        let long = len > aspen_mm::aspace::SHARED_UNMAP_PAGES * aspen_mm::PAGE_SIZE;
        let beside = if long && t.process.thread_count() == 1 { Beside::Nobody } else { Beside::Threads };
        t.process.with_space(|space| {
            let mut edit = space.lock_for_edit();
            let begun = edit.alone(|mm| preloaded(mm, |mm| mm.begin_munmap_shared(addr, len, beside)))?;
            match begun {
                MunmapShared::Done => Ok(()),
                MunmapShared::Exclusive => edit.exclusive(|mm| preloaded(mm, |mm| mm.munmap(addr, len))),
                MunmapShared::Zap(zap) => {
                    edit.zap_shared(&zap);
                    edit.alone(|mm| mm.end_munmap_shared(zap));
                    Ok(())
                }
            }
        })
    })?
}

/// `mmap` of `/dev/zero`, as Linux: `MAP_SHARED` is shared anonymous
/// memory, with the access checks of a file mapping (a descriptor not
/// open for writing gives no writable shared mapping, now or after
/// `mprotect`); `MAP_PRIVATE` is private anonymous memory of a readable
/// descriptor. The offset only has to be page-aligned.
fn map_zero(
    addr: u64,
    len: u64,
    prot: Prot,
    flags: MapFlags,
    offset: u64,
    readable: bool,
    writable: bool,
) -> SysResult {
    use aspen_mm::aspace::MappedFile;
    if !offset.is_multiple_of(aspen_mm::PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if matches!(flags.map_type(), Some(aspen_abi::mman::MapType::Private)) {
        if !readable {
            return Err(Errno::EACCES);
        }
        let flags = flags | MapFlags::ANONYMOUS;
        return map_beside_faults(VirtAddr::new(addr), len, prot, flags, None, 0).map(|va| va.as_u64());
    }
    let object = aspen_mm::object::FileObject::anonymous(crate::memory::user_env::get(), len);
    let file = MappedFile { object, readable, writable };
    map_beside_faults(VirtAddr::new(addr), len, prot, flags, Some(file), 0).map(|va| va.as_u64())
}

/// `mincore(addr, len, vec)`: the residency of each page, found under the
/// address space's lock and copied out after it.
fn mincore(addr: u64, len: u64, vec: u64) -> SysResult {
    let residency = mm_unchanged(|mm| mm.mincore(VirtAddr::new(addr), len))?;
    copy_out_at(vec, &residency)?;
    Ok(0)
}

fn reboot(magic1: u64, magic2: u64, cmd: u64) -> SysResult {
    use aspen_abi::syscall::RebootCmd;
    match aspen_abi::syscall::decode_reboot(magic1 as u32, magic2 as u32, cmd as u32)? {
        RebootCmd::PowerOff | RebootCmd::Halt => {
            log::info!("reboot: power off requested by pid {}", process::current_process().pid);
            process::report_memory();
            power::power_off()
        }
        RebootCmd::CtrlAltDelOn | RebootCmd::CtrlAltDelOff => Ok(0),
        // No reset without firmware help yet.
        RebootCmd::Restart => Err(Errno::EINVAL),
    }
}
