//! `/sys`: the few files C libraries read, made at open: the CPUs that
//! are online, possible and present (`/sys/devices/system/cpu/online`,
//! `possible`, `present`, CPU lists such as `0-3`), what glibc's
//! `sysconf(_SC_NPROCESSORS_ONLN)` and `get_nprocs_conf` read.

use alloc::string::String;
use alloc::vec::Vec;

use aspen_mm::errno::Errno;

use super::fd::Snapshot;

const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;

/// A directory of `names` (subdirectories or files as `kind` says).
fn directory(names: &[&str], kind: u8) -> Snapshot {
    let mut entries = alloc::vec![(String::from("."), 1, DT_DIR), (String::from(".."), 1, DT_DIR)];
    for (i, name) in names.iter().enumerate() {
        entries.push((String::from(*name), 2 + i as u64, kind));
    }
    Snapshot::directory(entries)
}

/// A file holding the CPU list of `mask` and a newline.
fn cpu_list(mask: u64) -> Snapshot {
    let mut text = String::new();
    let _ = aspen_abi::sched::write_cpu_list(mask, &mut text);
    text.push('\n');
    Snapshot::file(text.into_bytes())
}

/// The `/sys` file at `path`; `Ok(None)` when `path` is not under `/sys`.
pub fn open(path: &[u8]) -> Result<Option<Snapshot>, Errno> {
    let Ok(text) = core::str::from_utf8(path) else { return Ok(None) };
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.first() != Some(&"sys") {
        return Ok(None);
    }
    let file = match parts[1..] {
        [] => directory(&["devices"], DT_DIR),
        ["devices"] => directory(&["system"], DT_DIR),
        ["devices", "system"] => directory(&["cpu"], DT_DIR),
        ["devices", "system", "cpu"] => directory(&["online", "possible", "present"], DT_REG),
        ["devices", "system", "cpu", "online"] => cpu_list(crate::smp::online_mask()),
        // The cores the board has: the ones a later bring-up could start.
        ["devices", "system", "cpu", "possible" | "present"] => cpu_list(crate::smp::present_mask()),
        _ => return Err(Errno::ENOENT),
    };
    Ok(Some(file))
}
