//! Processes: fork (clone with SIGCHLD), execve, wait4, exit_group, ids,
//! sched_yield, uname and power-off.

use core::ffi::{c_char, CStr};
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr;

use crate::raw::{syscall0, syscall1, syscall2, syscall3, syscall4, syscall5, Sysno};
use crate::{io, Errno};

pub use aspen_abi::signal::Signal;

/// Signal numbers as wait statuses and `clone` carry them.
pub const SIGILL: i32 = Signal::Ill as i32;
/// `SIGTRAP`: a breakpoint.
pub const SIGTRAP: i32 = Signal::Trap as i32;
/// `SIGKILL`: cannot be caught.
pub const SIGKILL: i32 = Signal::Kill as i32;
/// `SIGBUS`: a bad access to a mapped object.
pub const SIGBUS: i32 = Signal::Bus as i32;
/// `SIGSEGV`: an access outside a mapping or against its protection.
pub const SIGSEGV: i32 = Signal::Segv as i32;
/// `SIGPIPE`: a write to a pipe without reader.
pub const SIGPIPE: i32 = Signal::Pipe as i32;
/// `SIGCHLD`: a child ended; also the exit signal `fork` asks for.
pub const SIGCHLD: i32 = Signal::Chld as i32;

/// `wait4` option: return 0 instead of blocking when no child has ended.
pub use aspen_abi::wait::{P_PGID, P_PID, WCONTINUED, WEXITED, WNOHANG, WNOWAIT, WUNTRACED};

/// Most arguments (argv or envp entries) [`execve`] passes.
const MAX_EXEC_ARGS: usize = 63;

/// Ends the process (all its threads) with `code`.
pub fn exit_group(code: i32) -> ! {
    loop {
        // SAFETY: the process ends; no memory of ours is touched.
        unsafe { syscall1(Sysno::ExitGroup.number(), code as usize) };
    }
}

/// Which side of a fork this is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fork {
    /// In the child.
    Child,
    /// In the parent, with the child's pid.
    Parent(i32),
}

/// `fork()`: `clone(SIGCHLD, 0, 0, 0, 0)`. stdout is flushed first so the
/// child does not inherit (and repeat) a pending partial line.
pub fn fork() -> Result<Fork, Errno> {
    io::flush();
    // SAFETY: a fork-style clone gives the child a copy of the address space;
    // the parent's memory is untouched.
    let ret = unsafe { syscall5(Sysno::Clone.number(), SIGCHLD as usize, 0, 0, 0, 0) };
    Errno::result(ret).map(|pid| if pid == 0 { Fork::Child } else { Fork::Parent(pid as i32) })
}

/// Fills `slots` with the pointers of `strs` and a terminating NULL.
fn pointer_array<'a>(strs: &[&CStr], slots: &'a mut [*const c_char; MAX_EXEC_ARGS + 1]) -> Option<&'a [*const c_char]> {
    if strs.len() > MAX_EXEC_ARGS {
        return None;
    }
    for (slot, s) in slots.iter_mut().zip(strs) {
        *slot = s.as_ptr();
    }
    slots[strs.len()] = ptr::null();
    Some(&slots[..=strs.len()])
}

/// Replaces the program with `path`; returns only on failure.
pub fn execve(path: &CStr, argv: &[&CStr], envp: &[&CStr]) -> Errno {
    let mut argv_slots = [ptr::null(); MAX_EXEC_ARGS + 1];
    let mut envp_slots = [ptr::null(); MAX_EXEC_ARGS + 1];
    let (Some(argv), Some(envp)) = (pointer_array(argv, &mut argv_slots), pointer_array(envp, &mut envp_slots)) else {
        return Errno::E2BIG;
    };
    io::flush();
    // SAFETY: path and every string are NUL-terminated; both arrays end with NULL.
    let ret = unsafe {
        syscall3(Sysno::Execve.number(), path.as_ptr() as usize, argv.as_ptr() as usize, envp.as_ptr() as usize)
    };
    match Errno::result(ret) {
        Err(e) => e,
        Ok(_) => Errno::EINVAL,
    }
}

/// A wait status, as `wait4` reports it (Linux encoding).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WaitStatus(pub u32);

impl WaitStatus {
    /// The exit code, if the process exited (status = code << 8).
    pub fn exit_code(self) -> Option<i32> {
        (self.0 & 0x7f == 0).then_some(((self.0 >> 8) & 0xff) as i32)
    }

    /// The signal that killed the process, if one did (bits 0-6).
    pub fn signal(self) -> Option<i32> {
        let sig = self.0 & 0x7f;
        (sig != 0 && sig != 0x7f).then_some(sig as i32)
    }

    /// The signal that stopped the process, if it is stopped (`WIFSTOPPED`).
    pub fn stop_signal(self) -> Option<i32> {
        (self.0 & 0xff == 0x7f).then_some(((self.0 >> 8) & 0xff) as i32)
    }

    /// Whether it reports a continued process (`WIFCONTINUED`).
    pub fn continued(self) -> bool {
        self.0 == 0xffff
    }

    /// Whether the process exited with code 0.
    pub fn success(self) -> bool {
        self.0 == 0
    }
}

/// `exit=N`, `signal=N`, or the raw status.
impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.exit_code(), self.signal()) {
            (Some(code), _) => write!(f, "exit={code}"),
            (None, Some(sig)) => write!(f, "signal={sig}"),
            (None, None) => write!(f, "status={:#x}", self.0),
        }
    }
}

impl fmt::Debug for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Waits for child `pid` (-1: any child); returns its pid and status. With
/// [`WNOHANG`] and no child ended yet, the pid is 0.
pub fn wait4(pid: i32, options: u32) -> Result<(i32, WaitStatus), Errno> {
    let mut status = 0u32;
    // SAFETY: the kernel writes one int into status; rusage is NULL.
    let ret =
        unsafe { syscall4(Sysno::Wait4.number(), pid as usize, &mut status as *mut u32 as usize, options as usize, 0) };
    Errno::result(ret).map(|p| (p as i32, WaitStatus(status)))
}

/// `waitid(idtype, id, infop, options, NULL)`: the `siginfo` it fills
/// (`si_pid` 0 when [`WNOHANG`] found no child).
pub fn waitid(idtype: u32, id: i32, options: u32) -> Result<crate::signal::SigInfo, Errno> {
    let mut info = [0u8; crate::signal::SigInfo::SIZE];
    // SAFETY: the kernel writes at most a siginfo_t into info; rusage is NULL.
    let ret = unsafe {
        syscall5(Sysno::Waitid.number(), idtype as usize, id as usize, info.as_mut_ptr() as usize, options as usize, 0)
    };
    Errno::result(ret).map(|_| crate::signal::SigInfo::from_bytes(&info))
}

/// getpid(2).
pub fn getpid() -> i32 {
    // SAFETY: no memory is involved.
    unsafe { syscall0(Sysno::Getpid.number()) as i32 }
}

/// getppid(2).
pub fn getppid() -> i32 {
    // SAFETY: no memory is involved.
    unsafe { syscall0(Sysno::Getppid.number()) as i32 }
}

/// sched_yield(2).
pub fn sched_yield() -> Result<(), Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall0(Sysno::SchedYield.number()) }).map(drop)
}

/// `struct utsname`: six 65-byte NUL-terminated fields.
#[repr(C)]
pub struct Utsname {
    sysname: [u8; 65],
    nodename: [u8; 65],
    release: [u8; 65],
    version: [u8; 65],
    machine: [u8; 65],
    domainname: [u8; 65],
}

fn field(bytes: &[u8; 65]) -> &[u8] {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..len]
}

impl Utsname {
    /// The kernel's name ("Linux" on Linux).
    pub fn sysname(&self) -> &[u8] {
        field(&self.sysname)
    }

    /// The kernel release (`uname -r`), without its NUL.
    pub fn release(&self) -> &[u8] {
        field(&self.release)
    }

    /// The hardware name (`uname -m`), without its NUL.
    pub fn machine(&self) -> &[u8] {
        field(&self.machine)
    }
}

/// uname(2).
pub fn uname() -> Result<Utsname, Errno> {
    let mut u = MaybeUninit::<Utsname>::uninit();
    // SAFETY: the kernel fills the whole struct on success.
    Errno::result(unsafe { syscall1(Sysno::Uname.number(), u.as_mut_ptr() as usize) })?;
    // SAFETY: the call succeeded, so every field is initialised.
    Ok(unsafe { u.assume_init() })
}

/// Powers the machine off: `reboot(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
/// LINUX_REBOOT_CMD_POWER_OFF, 0)`. Returns only on failure.
pub fn power_off() -> Errno {
    const MAGIC1: usize = 0xfee1_dead;
    const MAGIC2: usize = 672_274_793;
    const CMD_POWER_OFF: usize = 0x4321_fedc;
    io::flush();
    // SAFETY: no memory of ours is involved.
    match Errno::result(unsafe { syscall4(Sysno::Reboot.number(), MAGIC1, MAGIC2, CMD_POWER_OFF, 0) }) {
        Err(e) => e,
        Ok(_) => Errno::EINVAL,
    }
}

/// getuid(2), geteuid(2), getgid(2), getegid(2): (real user, effective
/// user, real group, effective group).
pub fn ids() -> (u32, u32, u32, u32) {
    // SAFETY: these calls touch no memory and cannot fail.
    unsafe {
        (
            syscall0(Sysno::Getuid.number()) as u32,
            syscall0(Sysno::Geteuid.number()) as u32,
            syscall0(Sysno::Getgid.number()) as u32,
            syscall0(Sysno::Getegid.number()) as u32,
        )
    }
}

/// setresuid(2) (`u32::MAX` keeps an id).
pub fn setresuid(r: u32, e: u32, s: u32) -> Result<(), Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall3(Sysno::Setresuid.number(), r as usize, e as usize, s as usize) }).map(drop)
}

/// setgroups(2).
pub fn setgroups(groups: &[u32]) -> Result<(), Errno> {
    // SAFETY: the kernel reads groups.len() ids from groups.
    let ret = unsafe { syscall2(Sysno::Setgroups.number(), groups.len(), groups.as_ptr() as usize) };
    Errno::result(ret).map(drop)
}

/// setrlimit(2) of `resource` to (`cur`, `max`).
pub fn setrlimit(resource: u32, cur: u64, max: u64) -> Result<(), Errno> {
    let limit = [cur, max];
    // SAFETY: the kernel reads the 16-byte struct rlimit.
    let ret = unsafe { syscall2(Sysno::Setrlimit.number(), resource as usize, limit.as_ptr() as usize) };
    Errno::result(ret).map(drop)
}
