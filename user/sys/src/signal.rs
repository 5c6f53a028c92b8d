//! Signals: actions (with the `rt_sigreturn` trampoline as restorer, as a
//! C library passes it), masks, waiting, sending, the alternate stack, and
//! process groups and sessions.

use crate::raw::{syscall0, syscall1, syscall2, syscall3, syscall4, Sysno};
use crate::time::Timespec;
use crate::Errno;

pub use aspen_abi::signal::{
    SaFlags, SigAction, SigContext, SigInfo, SigSet, Signal, StackT, UContext, CLD_CONTINUED, CLD_EXITED, CLD_KILLED,
    CLD_STOPPED, MINSIGSTKSZ, SEGV_ACCERR, SEGV_MAPERR, SIG_DFL, SIG_IGN, SI_QUEUE, SI_TKILL, SI_USER, SS_DISABLE,
    SS_ONSTACK,
};

core::arch::global_asm!(
    ".global aspen_sys_sigreturn",
    ".type aspen_sys_sigreturn, %function",
    "aspen_sys_sigreturn:",
    "mov x8, #139",
    "svc #0",
);

extern "C" {
    fn aspen_sys_sigreturn();
}

/// A plain handler: `fn(signo)`.
pub type Handler = extern "C" fn(i32);
/// A `SA_SIGINFO` handler: `fn(signo, info, ucontext)`.
pub type InfoHandler = extern "C" fn(i32, *const SigInfo, *mut u8);

/// The set holding `signal`.
pub fn set_of(signals: &[i32]) -> SigSet {
    SigSet(signals.iter().fold(0, |set, &s| set | 1u64 << (s - 1)))
}

/// `rt_sigaction(signo, action, old)` with the restorer set: the old action.
pub fn sigaction_raw(signo: i32, handler: u64, flags: SaFlags, mask: SigSet) -> Result<SigAction, Errno> {
    let action = SigAction {
        handler,
        flags: flags | SaFlags::RESTORER,
        restorer: aspen_sys_sigreturn as *const () as u64,
        mask,
    };
    let mut old = [0u8; 32];
    let new = action.to_bytes();
    // SAFETY: both buffers are 32 bytes, the kernel's struct sigaction.
    let ret = unsafe {
        syscall4(Sysno::RtSigaction.number(), signo as usize, new.as_ptr() as usize, old.as_mut_ptr() as usize, 8)
    };
    Errno::result(ret).map(|_| SigAction::from_bytes(old))
}

/// Installs `handler` for `signo`.
pub fn handle(signo: i32, handler: Handler, flags: SaFlags) -> Result<SigAction, Errno> {
    sigaction_raw(signo, handler as usize as u64, flags, SigSet(0))
}

/// Installs a `SA_SIGINFO` `handler` for `signo`.
pub fn handle_info(signo: i32, handler: InfoHandler, flags: SaFlags) -> Result<SigAction, Errno> {
    sigaction_raw(signo, handler as usize as u64, flags | SaFlags::SIGINFO, SigSet(0))
}

/// The action of `signo`, unchanged.
pub fn action_of(signo: i32) -> Result<SigAction, Errno> {
    let mut old = [0u8; 32];
    // SAFETY: the kernel writes 32 bytes into `old`.
    let ret = unsafe { syscall4(Sysno::RtSigaction.number(), signo as usize, 0, old.as_mut_ptr() as usize, 8) };
    Errno::result(ret).map(|_| SigAction::from_bytes(old))
}

/// `SIG_BLOCK`.
pub const SIG_BLOCK: i32 = 0;
/// `SIG_UNBLOCK`.
pub const SIG_UNBLOCK: i32 = 1;
/// `SIG_SETMASK`.
pub const SIG_SETMASK: i32 = 2;

/// `rt_sigprocmask(how, set)`: the old mask (`set` `None`: only read it).
pub fn sigprocmask(how: i32, set: Option<SigSet>) -> Result<SigSet, Errno> {
    let mut old = 0u64;
    let new = set.map(|s| s.0);
    let new_ptr = new.as_ref().map_or(0, |s| s as *const u64 as usize);
    // SAFETY: `new` and `old` are 8-byte sets.
    let ret =
        unsafe { syscall4(Sysno::RtSigprocmask.number(), how as usize, new_ptr, &mut old as *mut u64 as usize, 8) };
    Errno::result(ret).map(|_| SigSet(old))
}

/// `rt_sigpending`.
pub fn sigpending() -> Result<SigSet, Errno> {
    let mut set = 0u64;
    // SAFETY: the kernel writes one 8-byte set.
    let ret = unsafe { syscall2(Sysno::RtSigpending.number(), &mut set as *mut u64 as usize, 8) };
    Errno::result(ret).map(|_| SigSet(set))
}

/// `rt_sigsuspend(mask)`: always an error (`EINTR` after a handler).
pub fn sigsuspend(mask: SigSet) -> Errno {
    // SAFETY: the kernel reads one 8-byte set.
    let ret = unsafe { syscall2(Sysno::RtSigsuspend.number(), &mask.0 as *const u64 as usize, 8) };
    Errno::result(ret).err().unwrap_or(Errno::EINVAL)
}

/// `rt_sigtimedwait(set, timeout)`: the signal taken and its info.
pub fn sigtimedwait(set: SigSet, timeout: Option<&Timespec>) -> Result<(i32, SigInfo), Errno> {
    let mut info = [0u8; SigInfo::SIZE];
    let timeout = timeout.map_or(0, |t| t as *const Timespec as usize);
    // SAFETY: the set is 8 bytes, `info` 128, the timeout a timespec.
    let ret = unsafe {
        syscall4(Sysno::RtSigtimedwait.number(), &set.0 as *const u64 as usize, info.as_mut_ptr() as usize, timeout, 8)
    };
    Errno::result(ret).map(|signo| (signo as i32, SigInfo::from_bytes(&info)))
}

/// `rt_sigqueueinfo(pid, signo, info)`.
pub fn sigqueueinfo(pid: i32, signo: i32, info: &SigInfo) -> Result<(), Errno> {
    let bytes = info.to_bytes();
    // SAFETY: the kernel reads 128 bytes.
    let ret =
        unsafe { syscall3(Sysno::RtSigqueueinfo.number(), pid as usize, signo as usize, bytes.as_ptr() as usize) };
    Errno::result(ret).map(drop)
}

/// `sigaltstack(new)`: the old stack.
pub fn sigaltstack(new: Option<&StackT>) -> Result<StackT, Errno> {
    let new = new.map(StackT::to_bytes);
    let new_ptr = new.as_ref().map_or(0, |b| b.as_ptr() as usize);
    let mut old = [0u8; StackT::SIZE];
    // SAFETY: both are 24-byte stack_t.
    let ret = unsafe { syscall2(Sysno::Sigaltstack.number(), new_ptr, old.as_mut_ptr() as usize) };
    Errno::result(ret).map(|_| StackT::from_bytes(&old))
}

/// `kill(pid, signo)`.
pub fn kill(pid: i32, signo: i32) -> Result<(), Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall2(Sysno::Kill.number(), pid as usize, signo as usize) }).map(drop)
}

/// `tgkill(tgid, tid, signo)`.
pub fn tgkill(tgid: i32, tid: i32, signo: i32) -> Result<(), Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall3(Sysno::Tgkill.number(), tgid as usize, tid as usize, signo as usize) }).map(drop)
}

/// `gettid()`.
pub fn gettid() -> i32 {
    // SAFETY: no memory is involved.
    unsafe { syscall0(Sysno::Gettid.number()) as i32 }
}

/// `setpgid(pid, pgid)`.
pub fn setpgid(pid: i32, pgid: i32) -> Result<(), Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall2(Sysno::Setpgid.number(), pid as usize, pgid as usize) }).map(drop)
}

/// `getpgid(pid)`.
pub fn getpgid(pid: i32) -> Result<i32, Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall1(Sysno::Getpgid.number(), pid as usize) }).map(|p| p as i32)
}

/// `getsid(pid)`.
pub fn getsid(pid: i32) -> Result<i32, Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall1(Sysno::Getsid.number(), pid as usize) }).map(|p| p as i32)
}

/// `setsid()`.
pub fn setsid() -> Result<i32, Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall0(Sysno::Setsid.number()) }).map(|p| p as i32)
}

/// A `siginfo` of all zeros, for tests to fill.
pub const fn empty_info() -> SigInfo {
    SigInfo { signo: 0, errno: 0, code: 0, pad: 0, fields: [0; 14] }
}
