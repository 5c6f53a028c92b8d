//! User memory as system calls reach it: [`UserSlice`] and [`UserPtr`], user
//! address ranges checked once when they are made (no wrap, nothing at or
//! past [`USER_ADDR_END`], so no kernel address; alignment where asked),
//! and [`UserMemory`], the one interface for copying to and from a user
//! address space. The kernel implements it with unprivileged loads and
//! stores on the running task's space; the memory subsystem implements it
//! for a space that is not running (exec, host tests on the simulated
//! machine).

use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};

use crate::{Errno, PAGE_SIZE, USER_ADDR_END};

/// Why an address cannot name user memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAddrError {
    /// The range wraps past the top of the address space.
    Wraps,
    /// The range reaches past the end of user space (kernel addresses are
    /// there).
    OutsideUserSpace,
    /// The address is not aligned as the type needs.
    Misaligned,
}

impl UserAddrError {
    /// The errno a system call reports: `EFAULT`, or `EINVAL` for a
    /// misaligned address.
    pub const fn errno(self) -> Errno {
        match self {
            UserAddrError::Wraps | UserAddrError::OutsideUserSpace => Errno::EFAULT,
            UserAddrError::Misaligned => Errno::EINVAL,
        }
    }
}

impl From<UserAddrError> for Errno {
    fn from(e: UserAddrError) -> Errno {
        e.errno()
    }
}

impl fmt::Display for UserAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserAddrError::Wraps => "user range wraps",
            UserAddrError::OutsideUserSpace => "outside user space",
            UserAddrError::Misaligned => "misaligned user address",
        })
    }
}

/// `len` bytes of user memory at `addr`, within user space. Whether they
/// are mapped is only known when they are copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserSlice {
    addr: u64,
    len: u64,
}

impl UserSlice {
    /// The range `addr .. addr + len`, if it lies in user space.
    pub const fn new(addr: u64, len: u64) -> Result<UserSlice, UserAddrError> {
        match addr.checked_add(len) {
            None => Err(UserAddrError::Wraps),
            Some(end) if end > USER_ADDR_END => Err(UserAddrError::OutsideUserSpace),
            Some(_) => Ok(UserSlice { addr, len }),
        }
    }

    /// Its first address.
    pub const fn addr(self) -> u64 {
        self.addr
    }

    /// Its length in bytes.
    pub const fn len(self) -> u64 {
        self.len
    }

    /// Whether it holds no byte.
    pub const fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The bytes from `offset` on, at most `len` of them (empty past its end).
    pub const fn sub(self, offset: u64, len: u64) -> UserSlice {
        let offset = if offset < self.len { offset } else { self.len };
        let rest = self.len - offset;
        UserSlice { addr: self.addr + offset, len: if len < rest { len } else { rest } }
    }

    /// Its first `len` bytes, if it has that many.
    pub const fn prefix(self, len: u64) -> Option<UserSlice> {
        if len <= self.len {
            Some(UserSlice { addr: self.addr, len })
        } else {
            None
        }
    }
}

/// A user address holding a `T`, all of whose bytes lie in user space.
pub struct UserPtr<T> {
    addr: u64,
    _points_to: PhantomData<fn() -> T>,
}

impl<T> Clone for UserPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for UserPtr<T> {}

impl<T> PartialEq for UserPtr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
    }
}

impl<T> Eq for UserPtr<T> {}

impl<T> fmt::Debug for UserPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserPtr({:#x})", self.addr)
    }
}

impl<T> UserPtr<T> {
    /// A `T` at `addr`, any alignment (user copies need none).
    pub const fn new(addr: u64) -> Result<UserPtr<T>, UserAddrError> {
        match UserSlice::new(addr, size_of::<T>() as u64) {
            Ok(_) => Ok(UserPtr { addr, _points_to: PhantomData }),
            Err(e) => Err(e),
        }
    }

    /// A `T` at `addr`, which must be aligned as `T` (for atomic access).
    pub const fn new_aligned(addr: u64) -> Result<UserPtr<T>, UserAddrError> {
        if !addr.is_multiple_of(align_of::<T>() as u64) {
            return Err(UserAddrError::Misaligned);
        }
        UserPtr::new(addr)
    }

    /// Its address.
    pub const fn addr(self) -> u64 {
        self.addr
    }

    /// The bytes of the `T`.
    pub const fn as_slice(self) -> UserSlice {
        UserSlice { addr: self.addr, len: size_of::<T>() as u64 }
    }

    /// The `index`th `T` of an array starting here, if it is in user space.
    pub const fn offset(self, index: u64) -> Result<UserPtr<T>, UserAddrError> {
        match index.checked_mul(size_of::<T>() as u64) {
            Some(bytes) => match self.addr.checked_add(bytes) {
                Some(addr) => UserPtr::new(addr),
                None => Err(UserAddrError::Wraps),
            },
            None => Err(UserAddrError::Wraps),
        }
    }
}

/// A copy that stopped early: `copied` bytes (from the start) were moved
/// before the first byte that could not be, and `errno` says why that one
/// could not (`EFAULT`, or `ENOMEM` if faulting its page in ran out of
/// memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyFault {
    /// Bytes moved before the copy stopped.
    pub copied: usize,
    /// Why it stopped.
    pub errno: Errno,
}

impl CopyFault {
    /// A copy that stopped before its first byte.
    pub const fn at_start(errno: Errno) -> CopyFault {
        CopyFault { copied: 0, errno }
    }
}

impl From<CopyFault> for Errno {
    fn from(fault: CopyFault) -> Errno {
        fault.errno
    }
}

/// Copies to and from one user address space, as user code there would
/// access it: a byte the user may not read (write) is `EFAULT`, pages are
/// faulted in (copy-on-write broken) on the way. Copies go from the first
/// byte on and stop at the first one that faults, saying how far they got,
/// so a system call can report (and keep) exactly the part that was done.
pub trait UserMemory {
    /// Copies `buf.len()` bytes from the start of `src` into `buf`, in
    /// order; at the first byte that cannot be read (or past the end of
    /// `src`) it stops, with `buf[..copied]` filled.
    fn read_partial(&mut self, src: UserSlice, buf: &mut [u8]) -> Result<(), CopyFault>;

    /// Copies `data` to the start of `dst`, in order; at the first byte
    /// that cannot be written (or past the end of `dst`) it stops, with
    /// `data[..copied]` stored.
    fn write_partial(&mut self, dst: UserSlice, data: &[u8]) -> Result<(), CopyFault>;

    /// Copies `buf.len()` bytes from the start of `src` into `buf`; `EFAULT`
    /// (with `buf` partly filled) where they cannot be read or when `src`
    /// is shorter than `buf`.
    fn read(&mut self, src: UserSlice, buf: &mut [u8]) -> Result<(), Errno> {
        self.read_partial(src, buf).map_err(Errno::from)
    }

    /// Copies `data` to the start of `dst`; `EFAULT` where it cannot be
    /// written or when `dst` is shorter than `data`.
    fn write(&mut self, dst: UserSlice, data: &[u8]) -> Result<(), Errno> {
        self.write_partial(dst, data).map_err(Errno::from)
    }

    /// The bytes of `src`, copied in.
    fn read_bytes(&mut self, src: UserSlice) -> Result<Vec<u8>, Errno> {
        let len = usize::try_from(src.len()).map_err(|_| Errno::ENOMEM)?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
        buf.resize(len, 0);
        self.read(src, &mut buf)?;
        Ok(buf)
    }

    /// The little-endian `u32` at `src`.
    fn read_u32(&mut self, src: UserPtr<u32>) -> Result<u32, Errno> {
        let mut bytes = [0; 4];
        self.read(src.as_slice(), &mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    /// The little-endian `u64` at `src`.
    fn read_u64(&mut self, src: UserPtr<u64>) -> Result<u64, Errno> {
        let mut bytes = [0; 8];
        self.read(src.as_slice(), &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// The NUL-terminated string at `src`, without the NUL: at most `max`
    /// bytes before it (`ENAMETOOLONG` otherwise). It is read in chunks of
    /// 128 bytes, doubling, never across a page boundary, never past the
    /// NUL's page nor past `max + 1` bytes, so a string ending just before
    /// unmapped memory reads fine, and a short path costs a short copy
    /// (not the rest of its page).
    fn read_cstr(&mut self, src: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut at = src;
        let mut step = 128;
        while out.len() <= max {
            let len = (PAGE_SIZE - at % PAGE_SIZE).min((max + 1 - out.len()) as u64).min(step);
            let chunk = UserSlice::new(at, len)?;
            let bytes = self.read_bytes(chunk)?;
            let nul = bytes.iter().position(|&b| b == 0);
            let part = &bytes[..nul.unwrap_or(bytes.len())];
            out.try_reserve(part.len()).map_err(|_| Errno::ENOMEM)?;
            out.extend_from_slice(part);
            if nul.is_some() {
                return Ok(out);
            }
            // Within user space: the chunk ended there.
            at = chunk.addr() + chunk.len();
            step = (step * 2).min(PAGE_SIZE);
        }
        Err(Errno::ENAMETOOLONG)
    }
}

#[cfg(test)]
mod tests;
