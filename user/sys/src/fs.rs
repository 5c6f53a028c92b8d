//! Files: open/read/write/close/lseek/fstat, directory entries (getdents64).

use core::ffi::CStr;
use core::mem::MaybeUninit;

use crate::raw::{syscall1, syscall3, syscall4, syscall5, Sysno};
use crate::Errno;

/// Standard input.
pub const STDIN: i32 = 0;
/// Standard output.
pub const STDOUT: i32 = 1;
/// Standard error.
pub const STDERR: i32 = 2;

/// `openat`'s flags and `AT_FDCWD`, from the ABI crate.
pub use aspen_abi::fcntl::{OpenFlags, AT_FDCWD};

/// `lseek` whence: from the start of the file.
pub const SEEK_SET: u32 = 0;
/// `lseek` whence: relative to the current offset.
pub const SEEK_CUR: u32 = 1;

/// `d_type` of a directory entry that is a directory.
pub const DT_DIR: u8 = 4;
/// `d_type` of a directory entry that is a symbolic link.
pub const DT_LNK: u8 = 10;

/// Reads up to `buf.len()` bytes.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    Errno::result(unsafe { syscall3(Sysno::Read.number(), fd as usize, buf.as_mut_ptr() as usize, buf.len()) })
}

/// Writes up to `buf.len()` bytes.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel only reads buf.
    Errno::result(unsafe { syscall3(Sysno::Write.number(), fd as usize, buf.as_ptr() as usize, buf.len()) })
}

/// Opens `path` (relative to `dirfd`); returns the new file descriptor.
pub fn openat(dirfd: i32, path: &CStr, flags: OpenFlags, mode: u32) -> Result<i32, Errno> {
    // SAFETY: path is NUL-terminated and only read.
    let ret = unsafe {
        syscall4(Sysno::Openat.number(), dirfd as usize, path.as_ptr() as usize, flags.bits() as usize, mode as usize)
    };
    Errno::result(ret).map(|fd| fd as i32)
}

/// Opens `path` relative to the current directory.
pub fn open(path: &CStr, flags: OpenFlags, mode: u32) -> Result<i32, Errno> {
    openat(AT_FDCWD, path, flags, mode)
}

/// close(2).
pub fn close(fd: i32) -> Result<(), Errno> {
    // SAFETY: closing a descriptor touches no memory of ours.
    Errno::result(unsafe { syscall1(Sysno::Close.number(), fd as usize) }).map(drop)
}

/// Moves the file offset; returns the new offset.
pub fn lseek(fd: i32, offset: i64, whence: u32) -> Result<u64, Errno> {
    // SAFETY: no memory is involved.
    let ret = unsafe { syscall3(Sysno::Lseek.number(), fd as usize, offset as usize, whence as usize) };
    Errno::result(ret).map(|off| off as u64)
}

/// Reads from `fd` until `buf` is full or end of file; returns the byte count.
pub fn read_full(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut n = 0;
    while n < buf.len() {
        match read(fd, &mut buf[n..])? {
            0 => break,
            got => n += got,
        }
    }
    Ok(n)
}

/// Reads the start of the file at `path` into `buf`; returns the byte count.
pub fn read_file(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = open(path, OpenFlags::RDONLY | OpenFlags::CLOEXEC, 0)?;
    let result = read_full(fd, buf);
    let _ = close(fd);
    result
}

/// Mounts a file system of type `fstype` from `source` on `target` (no flags,
/// no data).
pub fn mount(source: &CStr, target: &CStr, fstype: &CStr) -> Result<(), Errno> {
    mount_data(source, target, fstype, None)
}

/// mount(2) without flags, with the file system's options `data` if any
/// (NULL otherwise).
pub(crate) fn mount_data(source: &CStr, target: &CStr, fstype: &CStr, data: Option<&CStr>) -> Result<(), Errno> {
    // SAFETY: the strings are NUL-terminated and only read; data may be NULL.
    let ret = unsafe {
        syscall5(
            Sysno::Mount.number(),
            source.as_ptr() as usize,
            target.as_ptr() as usize,
            fstype.as_ptr() as usize,
            0,
            data.map_or(0, |d| d.as_ptr() as usize),
        )
    };
    Errno::result(ret).map(drop)
}

/// `struct stat`, from the ABI crate.
pub use aspen_abi::syscall::Stat;

/// fstat(2): the file's `struct stat`.
pub fn fstat(fd: i32) -> Result<Stat, Errno> {
    let mut st = MaybeUninit::<Stat>::uninit();
    // SAFETY: the kernel fills the whole 128-byte struct stat on success.
    let ret = unsafe { syscall3(Sysno::Fstat.number(), fd as usize, st.as_mut_ptr() as usize, 0) };
    Errno::result(ret)?;
    // SAFETY: the call succeeded, so the kernel initialised every field.
    Ok(unsafe { st.assume_init() })
}

/// Reads directory entries of the directory `fd` into `buf` (raw
/// `linux_dirent64` records); returns the bytes used, 0 at the end.
pub fn getdents64(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    Errno::result(unsafe { syscall3(Sysno::Getdents64.number(), fd as usize, buf.as_mut_ptr() as usize, buf.len()) })
}

/// One directory entry.
pub struct DirEntry<'a> {
    /// Inode number (`d_ino`).
    pub ino: u64,
    /// File type (`d_type`, a `DT_*` value).
    pub kind: u8,
    /// The name, without its NUL.
    pub name: &'a [u8],
}

/// The entries in a buffer filled by [`getdents64`].
pub struct DirEntries<'a> {
    buf: &'a [u8],
}

impl<'a> DirEntries<'a> {
    /// The entries in `buf`, as `getdents64` filled it.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
}

impl<'a> Iterator for DirEntries<'a> {
    type Item = DirEntry<'a>;

    /// `linux_dirent64`: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name
    /// (NUL-terminated), padded to d_reclen.
    fn next(&mut self) -> Option<DirEntry<'a>> {
        const NAME_OFFSET: usize = 19;
        let buf = self.buf;
        if buf.len() < NAME_OFFSET {
            return None;
        }
        let reclen = usize::from(u16::from_ne_bytes([buf[16], buf[17]]));
        if reclen < NAME_OFFSET || reclen > buf.len() {
            return None;
        }
        let ino = u64::from_ne_bytes(buf[0..8].try_into().ok()?);
        let name_field = &buf[NAME_OFFSET..reclen];
        let name_len = name_field.iter().position(|&b| b == 0).unwrap_or(name_field.len());
        self.buf = &buf[reclen..];
        Some(DirEntry { ino, kind: buf[18], name: &name_field[..name_len] })
    }
}
