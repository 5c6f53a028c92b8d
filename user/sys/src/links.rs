//! Symbolic links: `symlinkat`, and `fstatat` with its flags (`lstat` is
//! `fstatat` with `AT_SYMLINK_NOFOLLOW`).

use core::ffi::CStr;
use core::mem::MaybeUninit;

use crate::fs::Stat;
use crate::raw::{syscall3, syscall4, Sysno};
use crate::Errno;

/// `AT_SYMLINK_NOFOLLOW`: act on a link in the last place, not its target.
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
/// `AT_SYMLINK_FOLLOW`: `linkat` links what a link points to.
pub const AT_SYMLINK_FOLLOW: u32 = 0x400;

/// symlinkat(2): a link at `path` (relative to `dirfd`) pointing to `target`.
pub fn symlinkat(target: &CStr, dirfd: i32, path: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated and only read.
    let ret = unsafe {
        syscall3(Sysno::Symlinkat.number(), target.as_ptr() as usize, dirfd as usize, path.as_ptr() as usize)
    };
    Errno::result(ret).map(drop)
}

/// newfstatat(2): the `struct stat` of `path` (relative to `dirfd`).
pub fn fstatat(dirfd: i32, path: &CStr, flags: u32) -> Result<Stat, Errno> {
    let mut st = MaybeUninit::<Stat>::uninit();
    // SAFETY: path is NUL-terminated and only read; the kernel fills the
    // whole 128-byte struct stat on success.
    let ret = unsafe {
        syscall4(
            Sysno::Newfstatat.number(),
            dirfd as usize,
            path.as_ptr() as usize,
            st.as_mut_ptr() as usize,
            flags as usize,
        )
    };
    Errno::result(ret)?;
    // SAFETY: the call succeeded, so the kernel initialised every field.
    Ok(unsafe { st.assume_init() })
}
