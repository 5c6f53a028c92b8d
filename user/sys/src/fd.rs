//! Descriptors: pipe2, dup, dup3, fcntl and ppoll.

use core::ptr;

use crate::raw::{syscall1, syscall2, syscall3, syscall5, Sysno};
use crate::Errno;

use aspen_abi::fcntl::OpenFlags;
pub use aspen_abi::fcntl::{FcntlCmd, FD_CLOEXEC};
pub use aspen_abi::poll::{PollEvents, PIPE_BUF};

/// `pipe2(flags)`: the read end and the write end.
pub fn pipe2(flags: OpenFlags) -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: the kernel writes two ints into `fds`.
    Errno::result(unsafe { syscall2(Sysno::Pipe2.number(), fds.as_mut_ptr() as usize, flags.bits() as usize) })?;
    Ok((fds[0], fds[1]))
}

/// dup(2).
pub fn dup(fd: i32) -> Result<i32, Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall1(Sysno::Dup.number(), fd as usize) }).map(|fd| fd as i32)
}

/// dup3(2).
pub fn dup3(old: i32, new: i32, flags: OpenFlags) -> Result<i32, Errno> {
    // SAFETY: no memory is involved.
    let ret = unsafe { syscall3(Sysno::Dup3.number(), old as usize, new as usize, flags.bits() as usize) };
    Errno::result(ret).map(|fd| fd as i32)
}

/// fcntl(2) with a raw command number and an integer argument.
pub fn fcntl(fd: i32, cmd: u32, arg: usize) -> Result<usize, Errno> {
    // SAFETY: the commands used with this wrapper take integers, no memory.
    Errno::result(unsafe { syscall3(Sysno::Fcntl.number(), fd as usize, cmd as usize, arg) })
}

/// `struct pollfd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PollFd {
    /// The descriptor (negative: skipped).
    pub fd: i32,
    /// The events asked for (`POLL*` bits).
    pub events: i16,
    /// The events that happened, filled by the kernel.
    pub revents: i16,
}

impl PollFd {
    /// An entry for `fd` asking for `events`.
    pub fn new(fd: i32, events: PollEvents) -> Self {
        Self { fd, events: events.bits() as i16, revents: 0 }
    }

    /// What the kernel reported.
    pub fn revents(&self) -> PollEvents {
        PollEvents::from_bits_retain(self.revents as u16)
    }
}

/// `ppoll(fds, timeout, NULL, 0)`: the number of entries with events;
/// `timeout` in nanoseconds, `None` to wait without limit.
pub fn ppoll(fds: &mut [PollFd], timeout_ns: Option<u64>) -> Result<usize, Errno> {
    let mut spec = timeout_ns.map(|ns| [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64]);
    let spec_ptr = spec.as_mut().map_or(ptr::null_mut(), |s| s.as_mut_ptr());
    // SAFETY: the kernel reads the entries and writes their revents; the
    // timespec (16 bytes) lives until the call returns and may be written.
    let ret = unsafe { syscall5(Sysno::Ppoll.number(), fds.as_mut_ptr() as usize, fds.len(), spec_ptr as usize, 0, 0) };
    Errno::result(ret)
}
