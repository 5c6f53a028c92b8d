//! `/proc`: text made at open from the live state, in Linux's formats:
//! `meminfo`, and per process `maps`, `stat`, `status` and `cmdline`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use aspen_mm::aspace::MmEnv;
use aspen_mm::errno::Errno;
use aspen_mm::PAGE_SIZE;

use super::fd::Snapshot;
use super::Process;
use crate::memory::{frames, user_env};

fn snapshot(data: Vec<u8>) -> Snapshot {
    Snapshot { data, position: spin::Mutex::new(0), entries: Vec::new() }
}

fn directory(entries: Vec<(String, u64, u8)>) -> Snapshot {
    Snapshot { data: Vec::new(), position: spin::Mutex::new(0), entries }
}

const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;

/// The `/proc` file at `path`; `Ok(None)` when `path` is not under `/proc`.
pub fn open(path: &[u8]) -> Result<Option<Snapshot>, Errno> {
    let Ok(text) = core::str::from_utf8(path) else { return Ok(None) };
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.first() != Some(&"proc") {
        return Ok(None);
    }
    let file = match parts[1..] {
        [] => {
            let mut entries = alloc::vec![
                (String::from("."), 1, DT_DIR),
                (String::from(".."), 1, DT_DIR),
                (String::from("meminfo"), 2, DT_REG),
                (String::from("vmstat"), 7, DT_REG),
                (String::from("self"), 3, DT_DIR),
            ];
            for p in Process::all().iter().filter(|p| !p.is_zombie()) {
                entries.push((format!("{}", p.pid), 100 + u64::from(p.pid), DT_DIR));
            }
            directory(entries)
        }
        ["meminfo"] => snapshot(meminfo().into_bytes()),
        ["vmstat"] => snapshot(vmstat().into_bytes()),
        [who, ref rest @ ..] => {
            let process = if who == "self" {
                super::current().ok_or(Errno::ENOENT)?
            } else {
                let pid = who.parse().map_err(|_| Errno::ENOENT)?;
                Process::get(pid).ok_or(Errno::ENOENT)?
            };
            match rest {
                [] => directory(alloc::vec![
                    (String::from("."), 1, DT_DIR),
                    (String::from(".."), 1, DT_DIR),
                    (String::from("cmdline"), 4, DT_REG),
                    (String::from("maps"), 5, DT_REG),
                    (String::from("stat"), 6, DT_REG),
                    (String::from("status"), 8, DT_REG),
                ]),
                ["maps"] => snapshot(maps(&process).into_bytes()),
                ["stat"] => snapshot(stat(&process).into_bytes()),
                ["status"] => snapshot(status(&process).into_bytes()),
                ["cmdline"] => snapshot(process.cmdline.lock().clone()),
                _ => return Err(Errno::ENOENT),
            }
        }
    };
    Ok(Some(file))
}

/// The target of `path` when it is the link `/proc/<pid>/exe` (or
/// `/proc/self/exe`): the program's path, `ENOENT` for a process that does
/// not exist; `None` for any other path.
pub fn exe_link(path: &[u8]) -> Option<Result<Vec<u8>, Errno>> {
    let text = core::str::from_utf8(path).ok()?;
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let ["proc", who, "exe"] = parts[..] else { return None };
    let process = if who == "self" { super::current() } else { who.parse().ok().and_then(Process::get) };
    Some(process.filter(|p| !p.is_zombie()).map(|p| p.exe.lock().clone()).ok_or(Errno::ENOENT))
}

fn kib(pages: u64) -> u64 {
    pages * PAGE_SIZE / 1024
}

/// `/proc/meminfo`: totals of the frame pool, the page cache and the
/// translation tables of every process.
pub fn meminfo() -> String {
    let pool = frames::pool();
    let total = pool.total_frame_count() as u64;
    let free = pool.free_frame_count() as u64;
    let cached = user_env::get().stats().page_cache_pages() as u64;
    let tables: u64 = Process::all().iter().filter_map(|p| p.with_mm(|mm| mm.table_pages() as u64).ok()).sum();
    let mut out = String::new();
    let _ = writeln!(out, "MemTotal:       {:>8} kB", kib(total));
    let _ = writeln!(out, "MemFree:        {:>8} kB", kib(free));
    let _ = writeln!(out, "MemAvailable:   {:>8} kB", kib(free));
    let _ = writeln!(out, "Cached:         {:>8} kB", kib(cached));
    let _ = writeln!(out, "PageTables:     {:>8} kB", kib(tables));
    let (heap_used, heap_size) = crate::heap::usage();
    let _ = writeln!(out, "KernelHeap:     {:>8} kB", heap_used / 1024);
    let _ = writeln!(out, "KernelHeapSize: {:>8} kB", heap_size / 1024);
    out
}

/// `/proc/vmstat`: event counters since boot, `name value` per line:
/// Linux's `pgfault`, and Aspen's copy-on-write and TLB invalidation counts.
pub fn vmstat() -> String {
    use crate::arch::tlb::COUNTERS;
    let stats = user_env::get().stats();
    let get = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    for (name, value) in [
        ("pgfault", stats.faults()),
        ("cow_copy", stats.cow_copies()),
        ("cow_reuse", stats.cow_reuses()),
        ("tlbi_page", get(&COUNTERS.page)),
        ("tlbi_asid", get(&COUNTERS.asid)),
        ("tlbi_kernel_page", get(&COUNTERS.kernel_page)),
        ("tlbi_all", get(&COUNTERS.all)),
        ("tlbi_all_local", get(&COUNTERS.all_local)),
    ] {
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

/// `/proc/<pid>/maps`, one line per varea.
fn maps(process: &Process) -> String {
    let mut out = String::new();
    let _ = process.with_mm(|mm| mm.write_maps(&mut out));
    out
}

/// `/proc/<pid>/status`: Linux's `Name`, `State`, `Tgid`, `Pid` and
/// `PPid` lines, then Aspen's own: `WxFlips` (write/execute flips of the
/// process's pages) and `WxVareas` (mappings past the flip bound, mapped
/// writable and executable).
fn status(process: &Process) -> String {
    let name = super::name(process);
    let comm = name.rsplit('/').next().unwrap_or_default();
    let state = if process.is_zombie() { "Z (zombie)" } else { "R (running)" };
    let (wx_flips, wx_vareas) = process.with_mm(|mm| (mm.wx_flips(), mm.wx_vareas())).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "Name:\t{comm}");
    let _ = writeln!(out, "State:\t{state}");
    let _ = writeln!(out, "Tgid:\t{}", process.pid);
    let _ = writeln!(out, "Pid:\t{}", process.pid);
    let _ = writeln!(out, "PPid:\t{}", process.ppid());
    let _ = writeln!(out, "Threads:\t{}", process.thread_count());
    let _ = writeln!(out, "WxFlips:\t{wx_flips}");
    let _ = writeln!(out, "WxVareas:\t{wx_vareas}");
    let _ = writeln!(out, "SpaceSwitches:\t{}", process.space_switches.load(Ordering::Relaxed));
    out
}

/// `/proc/<pid>/stat`: Linux's 52 fields; Aspen fills pid, comm, state,
/// ppid, minflt (10th) and the resident size, and reports 0 for the rest.
fn stat(process: &Process) -> String {
    let state = if process.is_zombie() { 'Z' } else { 'R' };
    let name = super::name(process);
    let comm = name.rsplit('/').next().unwrap_or_default();
    let minflt = process.faults.load(Ordering::Relaxed);
    let rss = process.with_mm(|mm| mm.resident_pages()).unwrap_or(0);
    let mut out = format!("{} ({}) {} {} 0 0 0 -1 0 {} 0 0 0", process.pid, comm, state, process.ppid(), minflt);
    // utime .. rss: fields 14 to 24.
    for field in 14..=24 {
        let value = if field == 24 { rss as u64 } else { 0 };
        let _ = write!(out, " {value}");
    }
    for _ in 25..=52 {
        out.push_str(" 0");
    }
    out.push('\n');
    out
}
