//! Address-space calls: mmap, munmap, mprotect, msync, mlock, munlock,
//! mlockall, madvise and brk, with Linux's constants.
//!
//! The calls that can unmap, remap or change the contents of memory are
//! `unsafe`: the caller promises that no Rust reference into the range lives on.

use crate::raw::{syscall1, syscall2, syscall3, syscall6, Sysno};
use crate::Errno;

/// The page size (4 KiB granule).
pub const PAGE_SIZE: usize = 4096;

/// The flags and values of these calls, from the ABI crate.
pub use aspen_abi::mman::{Advice, MapFlags, MlockallFlags, MsyncFlags, Prot};
/// One past the highest user address.
pub use aspen_abi::USER_ADDR_END;

/// Maps memory; returns its address.
///
/// # Safety
/// With `MAP_FIXED` the range must not hold memory that Rust code still uses.
pub unsafe fn mmap(addr: usize, len: usize, prot: Prot, flags: MapFlags, fd: i32, offset: u64) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for MAP_FIXED; otherwise the kernel picks a free range.
    Errno::result(unsafe {
        syscall6(
            Sysno::Mmap.number(),
            addr,
            len,
            prot.bits() as usize,
            flags.bits() as usize,
            fd as isize as usize,
            offset as usize,
        )
    })
}

/// # Safety
/// Nothing may use the range afterwards.
pub unsafe fn munmap(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller guarantees nothing uses the range.
    Errno::result(unsafe { syscall2(Sysno::Munmap.number(), addr, len) }).map(drop)
}

/// # Safety
/// Rust code must not access the range in ways the new protection forbids.
pub unsafe fn mprotect(addr: usize, len: usize, prot: Prot) -> Result<(), Errno> {
    // SAFETY: the caller vouches for later accesses.
    Errno::result(unsafe { syscall3(Sysno::Mprotect.number(), addr, len, prot.bits() as usize) }).map(drop)
}

/// # Safety
/// `MADV_DONTNEED` discards contents: nothing may rely on them afterwards.
pub unsafe fn madvise(addr: usize, len: usize, advice: Advice) -> Result<(), Errno> {
    // SAFETY: the caller vouches for the contents.
    Errno::result(unsafe { syscall3(Sysno::Madvise.number(), addr, len, advice as usize) }).map(drop)
}

/// Writes shared file mappings in the range back to their files.
pub fn msync(addr: usize, len: usize, flags: MsyncFlags) -> Result<(), Errno> {
    // SAFETY: msync does not change what the range maps or holds.
    Errno::result(unsafe { syscall3(Sysno::Msync.number(), addr, len, flags.bits() as usize) }).map(drop)
}

/// Makes the range resident now and keeps it so (no faults later).
pub fn mlock(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: mlock does not change what the range maps or holds.
    Errno::result(unsafe { syscall2(Sysno::Mlock.number(), addr, len) }).map(drop)
}

/// munlock(2): the range may be paged again.
pub fn munlock(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: munlock does not change what the range maps or holds.
    Errno::result(unsafe { syscall2(Sysno::Munlock.number(), addr, len) }).map(drop)
}

/// Locks all current (`MCL_CURRENT`) and/or future (`MCL_FUTURE`) mappings.
pub fn mlockall(flags: MlockallFlags) -> Result<(), Errno> {
    // SAFETY: mlockall does not change what any range maps or holds.
    Errno::result(unsafe { syscall1(Sysno::Mlockall.number(), flags.bits() as usize) }).map(drop)
}

/// `brk(addr)`: asks for the program break to move to `addr`; returns the
/// break afterwards (the old one if the move failed, the current one for 0).
///
/// # Safety
/// Shrinking unmaps the memory above the new break: nothing may use it.
pub unsafe fn brk(addr: usize) -> usize {
    // SAFETY: the caller vouches for memory above a lowered break.
    unsafe { syscall1(Sysno::Brk.number(), addr) as usize }
}
