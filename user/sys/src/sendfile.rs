//! `sendfile`: bytes from a file to another descriptor inside the kernel.

use crate::raw::{syscall4, Sysno};
use crate::Errno;

/// sendfile(2): up to `count` bytes of `in_fd` to `out_fd`, read at
/// `*offset` (which advances; the file's own position stays) or, with
/// `None`, at `in_fd`'s position; the bytes moved.
pub fn sendfile(out_fd: i32, in_fd: i32, offset: Option<&mut i64>, count: usize) -> Result<usize, Errno> {
    let offset = offset.map_or(0, |at| at as *mut i64 as usize);
    // SAFETY: the kernel reads and writes the 8-byte offset, if given, and
    // touches no other memory of ours.
    Errno::result(unsafe { syscall4(Sysno::Sendfile.number(), out_fd as usize, in_fd as usize, offset, count) })
}
