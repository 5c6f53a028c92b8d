//! Free memory, as usertests measures it: `MemFree` of /proc/meminfo, plus,
//! where the kernel has /proc/zoneinfo (Linux), the free pages on per-CPU
//! lists that Linux's MemFree leaves out. Allocates nothing.

use aspen_sys::mem::PAGE_SIZE;
use aspen_sys::{fs, Errno};

/// Parses the leading decimal number of `s` (after spaces).
fn leading_number(s: &[u8]) -> Option<u64> {
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

/// Largest /proc/zoneinfo read.
const ZONEINFO_MAX: usize = 16 * 1024;

/// Free memory in bytes, or why it could not be read.
pub fn memfree() -> Result<u64, &'static str> {
    let mut buf = [0u8; 4096];
    let n = fs::read_file(c"/proc/meminfo", &mut buf).map_err(|_: Errno| "cannot read /proc/meminfo")?;
    let kib = lines(&buf[..n])
        .find_map(|line| line.strip_prefix(b"MemFree:"))
        .and_then(leading_number)
        .ok_or("/proc/meminfo has no 'MemFree: N kB' line")?;
    Ok(kib * 1024 + percpu_free_pages()? * PAGE_SIZE as u64)
}

/// Free pages on Linux's per-CPU lists (0 without /proc/zoneinfo).
fn percpu_free_pages() -> Result<u64, &'static str> {
    let mut buf = [0u8; ZONEINFO_MAX];
    let n = match fs::read_file(c"/proc/zoneinfo", &mut buf) {
        Ok(n) if n == buf.len() => return Err("/proc/zoneinfo is too large"),
        Ok(n) => n,
        Err(_) => return Ok(0),
    };
    Ok(lines(&buf[..n]).filter_map(|line| line.strip_prefix(b"count:")).filter_map(leading_number).sum())
}
