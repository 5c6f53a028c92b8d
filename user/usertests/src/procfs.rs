//! What the tests read from `/proc`: free memory (`/proc/meminfo`, and on
//! Linux `/proc/zoneinfo`), this
//! process's page-fault count (`/proc/self/stat`) and its memory areas
//! (`/proc/self/maps`), all in Linux's formats.
//!
//! `memfree` and `fault_count` do not allocate on success: the suite process
//! must not grow, and fault counting must not fault.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use aspen_sys::mem::PAGE_SIZE;
use aspen_sys::{fs, Errno};

use crate::harness::Ctx;

/// Why free memory could not be read.
#[derive(Clone, Copy)]
pub enum MeminfoError {
    Read(Errno),
    NoMemFree,
    ZoneinfoTooLarge,
}

impl fmt::Display for MeminfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeminfoError::Read(e) => write!(f, "cannot read /proc/meminfo: {e}"),
            MeminfoError::NoMemFree => write!(f, "/proc/meminfo has no 'MemFree: N kB' line"),
            MeminfoError::ZoneinfoTooLarge => write!(f, "/proc/zoneinfo is larger than {ZONEINFO_MAX} bytes"),
        }
    }
}

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

/// Largest /proc/zoneinfo read (Linux: about 4.5 KiB per CPU).
const ZONEINFO_MAX: usize = 16 * 1024;

/// Free memory in bytes: `MemFree` of /proc/meminfo, plus, where the kernel
/// has /proc/zoneinfo (Linux), the free pages held on per-CPU lists
/// (`count:` of each pageset), which Linux's MemFree leaves out.
pub fn memfree() -> Result<u64, MeminfoError> {
    let mut buf = [0u8; 4096];
    let n = fs::read_file(c"/proc/meminfo", &mut buf).map_err(MeminfoError::Read)?;
    let memfree = lines(&buf[..n])
        .find_map(|line| line.strip_prefix(b"MemFree:"))
        .and_then(leading_number)
        .ok_or(MeminfoError::NoMemFree)?;
    Ok(memfree * 1024 + percpu_free_pages()? * PAGE_SIZE as u64)
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

/// Page faults of this process so far: minflt + majflt, fields 10 and 12 of
/// `/proc/self/stat` ("pid (comm) state ppid ... flags minflt cminflt majflt").
pub fn fault_count() -> Result<u64, String> {
    let mut buf = [0u8; 1024];
    let n = fs::read_file(c"/proc/self/stat", &mut buf).ctx("read /proc/self/stat")?;
    let stat = &buf[..n];
    // The command name may hold spaces and ')': the fields start after the last ')'.
    let after_comm = stat.iter().rposition(|&b| b == b')').map(|i| &stat[i + 1..]);
    let mut fields = after_comm.into_iter().flat_map(|s| s.split(|&b| b == b' ')).filter(|f| !f.is_empty());
    // Field 3 (state) is the first after the name: minflt is field 10, majflt 12.
    let minflt = fields.nth(10 - 3).and_then(leading_number);
    let majflt = fields.nth(12 - 10 - 1).and_then(leading_number);
    match (minflt, majflt) {
        (Some(min), Some(maj)) => Ok(min + maj),
        _ => Err(format!("/proc/self/stat: no minflt/majflt fields in {:?}", String::from_utf8_lossy(stat))),
    }
}

/// One line of `/proc/self/maps`: `[start, end)` and the permissions ("rw-p").
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub start: usize,
    pub end: usize,
    pub perms: [u8; 4],
}

impl fmt::Debug for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{:x} {}", self.start, self.end, String::from_utf8_lossy(&self.perms))
    }
}

fn parse_area(line: &str) -> Option<Area> {
    let mut words = line.split_whitespace();
    let (start, end) = words.next()?.split_once('-')?;
    let perms = words.next()?.as_bytes().try_into().ok()?;
    Some(Area {
        start: usize::from_str_radix(start, 16).ok()?,
        end: usize::from_str_radix(end, 16).ok()?,
        perms,
    })
}

/// The areas of `/proc/self/maps` that overlap `[start, end)`, clipped to it.
pub fn areas_in(start: usize, end: usize) -> Result<Vec<Area>, String> {
    let mut buf = alloc::vec![0u8; 64 * 1024];
    let n = fs::read_file(c"/proc/self/maps", &mut buf).ctx("read /proc/self/maps")?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| String::from("/proc/self/maps is not UTF-8"))?;
    let mut areas = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let area = parse_area(line).ok_or_else(|| format!("/proc/self/maps: cannot parse {line:?}"))?;
        if area.start < end && start < area.end {
            areas.push(Area { start: area.start.max(start), end: area.end.min(end), ..area });
        }
    }
    Ok(areas)
}
