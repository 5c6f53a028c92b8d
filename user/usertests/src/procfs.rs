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

use aspen_sys::fs;

pub use aspen_sys::meminfo::{kernel_heap, leading_number, memfree, MeminfoError};

use crate::harness::Ctx;

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
    Some(Area { start: usize::from_str_radix(start, 16).ok()?, end: usize::from_str_radix(end, 16).ok()?, perms })
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

/// The whole text of a `/proc` file.
pub fn read_text(path: &core::ffi::CStr) -> Result<String, String> {
    let mut buf = alloc::vec![0u8; 16 * 1024];
    let n = fs::read_file(path, &mut buf).ctx(&format!("read {path:?}"))?;
    String::from_utf8(buf[..n].to_vec()).map_err(|_| format!("{path:?} is not UTF-8"))
}

/// The number at the start of the value of the line `name:` of `text`
/// (a `status` or `meminfo` line such as "VmRSS:\t  1234 kB").
pub fn field(text: &str, name: &str) -> Result<u64, String> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no number in line {name:?} of {text:?}"))
}

/// The fields of a `/proc/<pid>/stat` from field 3 (state) on: index 0
/// is field 3, so field n is at n - 3.
pub fn stat_fields(path: &core::ffi::CStr) -> Result<Vec<String>, String> {
    let text = read_text(path)?;
    let after = text.rfind(')').ok_or_else(|| format!("{path:?}: no command name in {text:?}"))?;
    let fields: Vec<String> = text[after + 1..].split_whitespace().map(String::from).collect();
    if fields.len() != 50 {
        return Err(format!("{path:?} has {} fields, not 52: {text:?}", fields.len() + 2));
    }
    Ok(fields)
}

/// Field `n` (1-based, as proc(5) numbers them) of `/proc/self/stat`.
pub fn self_stat(n: usize) -> Result<u64, String> {
    let fields = stat_fields(c"/proc/self/stat")?;
    fields[n - 3].parse().map_err(|_| format!("field {n} of /proc/self/stat is {:?}", fields[n - 3]))
}

/// The counter `name` of /proc/vmstat.
pub fn vmstat(name: &str) -> Result<u64, String> {
    let text = read_text(c"/proc/vmstat")?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .ok_or_else(|| format!("no {name} in /proc/vmstat: {text:?}"))
}
