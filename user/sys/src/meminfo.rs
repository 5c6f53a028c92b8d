//! Free memory as tests measure it: `MemFree` of /proc/meminfo once the
//! clean page cache is dropped (`/proc/sys/vm/drop_caches`, where the
//! caller may write it), plus, where the kernel has /proc/zoneinfo (Linux),
//! the free pages on per-CPU lists that Linux's MemFree leaves out.
//! Allocates nothing, so a caller can measure without disturbing what it
//! measures. Without the drop, a file read for the first time (or a cache
//! the kernel gave back when memory ran out) would move the figure.

use core::fmt;

use crate::mem::PAGE_SIZE;
use crate::{fs, Errno};

/// Why free memory could not be read.
#[derive(Clone, Copy)]
pub enum MeminfoError {
    /// `/proc/meminfo` could not be read.
    Read(Errno),
    /// It has no `MemFree:` line.
    NoMemFree,
    /// It has no `KernelHeap:` line (Aspen's own; Linux has none).
    NoKernelHeap,
    /// It did not fit the reader's buffer.
    ZoneinfoTooLarge,
}

impl fmt::Display for MeminfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeminfoError::Read(e) => write!(f, "cannot read /proc/meminfo: {e}"),
            MeminfoError::NoMemFree => write!(f, "/proc/meminfo has no 'MemFree: N kB' line"),
            MeminfoError::NoKernelHeap => write!(f, "/proc/meminfo has no 'KernelHeap: N kB' line"),
            MeminfoError::ZoneinfoTooLarge => write!(f, "/proc/zoneinfo is larger than {ZONEINFO_MAX} bytes"),
        }
    }
}

/// Parses the leading decimal number of `s` (after spaces).
pub fn leading_number(s: &[u8]) -> Option<u64> {
    let digits = s.iter().skip_while(|b| **b == b' ').take_while(|b| b.is_ascii_digit());
    let mut n: u64 = 0;
    let mut any = false;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

/// The lines of `text`, without leading spaces.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n').map(|l| &l[l.iter().take_while(|b| **b == b' ').count()..])
}

/// Largest /proc/zoneinfo read (Linux: about 4.5 KiB per CPU).
const ZONEINFO_MAX: usize = 16 * 1024;

/// Free memory in bytes: `MemFree` of /proc/meminfo after dropping the
/// clean page cache, plus, where the kernel has /proc/zoneinfo (Linux), the
/// free pages held on per-CPU lists (`count:` of each pageset), which
/// Linux's MemFree leaves out.
pub fn memfree() -> Result<u64, MeminfoError> {
    // Quietly nothing where it cannot be written (not root, no such file).
    let _ = write_drop_caches(b"1");
    let mut buf = [0u8; 4096];
    let n = fs::read_file(c"/proc/meminfo", &mut buf).map_err(MeminfoError::Read)?;
    let memfree = lines(&buf[..n])
        .find_map(|line| line.strip_prefix(b"MemFree:"))
        .and_then(leading_number)
        .ok_or(MeminfoError::NoMemFree)?;
    Ok(memfree * 1024 + percpu_free_pages()? * PAGE_SIZE as u64)
}

/// Writes `value` to /proc/sys/vm/drop_caches ("1": the kernel frees the
/// page cache's clean, unused pages); the bytes taken, or why not (not
/// root, no such file, a value the kernel refuses).
pub fn write_drop_caches(value: &[u8]) -> Result<usize, Errno> {
    let fd = fs::open(c"/proc/sys/vm/drop_caches", fs::OpenFlags::WRONLY, 0)?;
    let written = fs::write(fd, value);
    let _ = fs::close(fd);
    written
}

/// Bytes of kernel heap in use: Aspen's `KernelHeap` line of /proc/meminfo
/// (kB, so the value is a multiple of 1024).
pub fn kernel_heap() -> Result<u64, MeminfoError> {
    let mut buf = [0u8; 4096];
    let n = fs::read_file(c"/proc/meminfo", &mut buf).map_err(MeminfoError::Read)?;
    let kib = lines(&buf[..n])
        .find_map(|line| line.strip_prefix(b"KernelHeap:"))
        .and_then(leading_number)
        .ok_or(MeminfoError::NoKernelHeap)?;
    Ok(kib * 1024)
}

/// Free pages on Linux's per-CPU lists (0 without /proc/zoneinfo).
fn percpu_free_pages() -> Result<u64, MeminfoError> {
    let mut buf = [0u8; ZONEINFO_MAX];
    let n = match fs::read_file(c"/proc/zoneinfo", &mut buf) {
        Ok(n) if n == buf.len() => return Err(MeminfoError::ZoneinfoTooLarge),
        Ok(n) => n,
        Err(_) => return Ok(0),
    };
    Ok(lines(&buf[..n]).filter_map(|line| line.strip_prefix(b"count:")).filter_map(leading_number).sum())
}
