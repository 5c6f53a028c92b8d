//! Names in the file tree: the working directory (`getcwd`, `chdir`,
//! `fchdir`, `umask`), making and removing names (`mkdirat`, `unlinkat`,
//! `renameat2`, `linkat`) and attributes (`faccessat`, `fchmodat`, `ftruncate`,
//! `statfs`, `readlinkat`, `utimensat`), `mount` with options and `umount2`.

use core::ffi::CStr;

use crate::raw::{syscall1, syscall2, syscall3, syscall4, syscall5, Sysno};
use crate::Errno;

/// `AT_REMOVEDIR`: `unlinkat` removes a directory.
pub const AT_REMOVEDIR: u32 = 0x200;
/// `RENAME_NOREPLACE`: `renameat2` fails with `EEXIST` rather than replace.
pub const RENAME_NOREPLACE: u32 = 1;

/// getcwd(2): the working directory into `buf`; its length without the NUL.
pub fn getcwd(buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    let n = Errno::result(unsafe { syscall2(Sysno::Getcwd.number(), buf.as_mut_ptr() as usize, buf.len()) })?;
    Ok(n.saturating_sub(1))
}

/// chdir(2).
pub fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated and only read.
    Errno::result(unsafe { syscall1(Sysno::Chdir.number(), path.as_ptr() as usize) }).map(drop)
}

/// fchdir(2).
pub fn fchdir(fd: i32) -> Result<(), Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall1(Sysno::Fchdir.number(), fd as usize) }).map(drop)
}

/// umask(2): sets the mask, returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: no memory is involved; umask cannot fail.
    unsafe { syscall1(Sysno::Umask.number(), mask as usize) as u32 }
}

/// mkdirat(2).
pub fn mkdirat(dirfd: i32, path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated and only read.
    let ret = unsafe { syscall3(Sysno::Mkdirat.number(), dirfd as usize, path.as_ptr() as usize, mode as usize) };
    Errno::result(ret).map(drop)
}

/// unlinkat(2).
pub fn unlinkat(dirfd: i32, path: &CStr, flags: u32) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated and only read.
    let ret = unsafe { syscall3(Sysno::Unlinkat.number(), dirfd as usize, path.as_ptr() as usize, flags as usize) };
    Errno::result(ret).map(drop)
}

/// renameat2(2).
pub fn renameat2(old_dirfd: i32, old: &CStr, new_dirfd: i32, new: &CStr, flags: u32) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated and only read.
    let ret = unsafe {
        syscall5(
            Sysno::Renameat2.number(),
            old_dirfd as usize,
            old.as_ptr() as usize,
            new_dirfd as usize,
            new.as_ptr() as usize,
            flags as usize,
        )
    };
    Errno::result(ret).map(drop)
}

/// faccessat(2) (no flags): `mode` is `F_OK` 0 or `R_OK` 4 | `W_OK` 2 | `X_OK` 1.
pub fn faccessat(dirfd: i32, path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated and only read.
    let ret = unsafe { syscall3(Sysno::Faccessat.number(), dirfd as usize, path.as_ptr() as usize, mode as usize) };
    Errno::result(ret).map(drop)
}

/// fchmodat(2).
pub fn fchmodat(dirfd: i32, path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated and only read.
    let ret = unsafe { syscall3(Sysno::Fchmodat.number(), dirfd as usize, path.as_ptr() as usize, mode as usize) };
    Errno::result(ret).map(drop)
}

/// ftruncate(2).
pub fn ftruncate(fd: i32, length: i64) -> Result<(), Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall2(Sysno::Ftruncate.number(), fd as usize, length as usize) }).map(drop)
}

/// statfs(2): the file system's type (`f_type`).
pub fn statfs_type(path: &CStr) -> Result<u64, Errno> {
    let mut buf = [0u64; 15];
    // SAFETY: the kernel writes the 120-byte struct statfs into buf.
    let ret = unsafe { syscall2(Sysno::Statfs.number(), path.as_ptr() as usize, buf.as_mut_ptr() as usize) };
    Errno::result(ret)?;
    Ok(buf[0])
}

/// readlinkat(2): the link's text into `buf`; its length.
pub fn readlinkat(dirfd: i32, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: path is NUL-terminated and only read; the kernel writes at
    // most buf.len() bytes into buf.
    let ret = unsafe {
        syscall4(
            Sysno::Readlinkat.number(),
            dirfd as usize,
            path.as_ptr() as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
        )
    };
    Errno::result(ret)
}

/// umount2(2).
pub fn umount2(target: &CStr, flags: u32) -> Result<(), Errno> {
    // SAFETY: target is NUL-terminated and only read.
    Errno::result(unsafe { syscall2(Sysno::Umount2.number(), target.as_ptr() as usize, flags as usize) }).map(drop)
}

/// mount(2) with `data` (the file system's options).
pub fn mount_with(source: &CStr, target: &CStr, fstype: &CStr, data: &CStr) -> Result<(), Errno> {
    crate::fs::mount_data(source, target, fstype, Some(data))
}

/// linkat(2).
pub fn linkat(old_dirfd: i32, old: &CStr, new_dirfd: i32, new: &CStr, flags: u32) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated and only read.
    let ret = unsafe {
        syscall5(
            Sysno::Linkat.number(),
            old_dirfd as usize,
            old.as_ptr() as usize,
            new_dirfd as usize,
            new.as_ptr() as usize,
            flags as usize,
        )
    };
    Errno::result(ret).map(drop)
}

/// `UTIME_OMIT`: a `tv_nsec` that leaves that time as it is.
pub const UTIME_OMIT: i64 = (1 << 30) - 2;

/// utimensat(2) with (access, modification) times as (seconds, nanoseconds).
pub fn utimensat(dirfd: i32, path: &CStr, times: [(i64, i64); 2]) -> Result<(), Errno> {
    let raw = [times[0].0, times[0].1, times[1].0, times[1].1];
    // SAFETY: path is NUL-terminated and only read; the kernel reads the
    // two 16-byte timespecs of raw.
    let ret = unsafe {
        syscall4(Sysno::Utimensat.number(), dirfd as usize, path.as_ptr() as usize, raw.as_ptr() as usize, 0)
    };
    Errno::result(ret).map(drop)
}

/// truncate(2).
pub fn truncate(path: &CStr, length: i64) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated and only read.
    Errno::result(unsafe { syscall2(Sysno::Truncate.number(), path.as_ptr() as usize, length as usize) }).map(drop)
}
