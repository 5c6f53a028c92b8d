//! `/proc`: text made at open from the live state, in Linux 6.1's formats:
//! the system's `cpuinfo`, `uptime`, `loadavg`, `stat`, `meminfo`,
//! `vmstat`, `mounts`, `version` and `filesystems`; per process (and per
//! thread under `task/`) `stat`, `status`, `statm`, `cmdline`, `comm`,
//! `maps` and the link `exe`; the links `self` and `thread-self`; and
//! `sys/vm/drop_caches`, which takes writes.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use aspen_abi::hwcap;
use aspen_abi::signal::{SigNo, SigSet, NSIG, SIG_DFL, SIG_IGN};
use aspen_abi::sysinfo::{clock_ticks, LoadAverages, Sysinfo};
use aspen_mm::aspace::{MmEnv, VareaKind};
use aspen_mm::errno::Errno;
use aspen_mm::PAGE_SIZE;

use super::fd::{Snapshot, SnapshotTarget};
use super::thread::Thread;
use super::Process;
use crate::arch::{cpu, timer};
use crate::memory::{frames, user_env};
use crate::task::cputime;
use crate::task::{self, sched, TaskState};

const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;

/// The files of `/proc` itself, with their inode numbers.
const ROOT_FILES: &[(&str, u64)] = &[
    ("cpuinfo", 2),
    ("filesystems", 3),
    ("loadavg", 4),
    ("meminfo", 5),
    ("mounts", 6),
    ("stat", 7),
    ("uptime", 8),
    ("version", 9),
    ("vmstat", 10),
];
/// The files of a `/proc/<pid>` or `/proc/<pid>/task/<tid>` directory.
const PID_FILES: &[(&str, u8)] = &[
    ("cmdline", DT_REG),
    ("comm", DT_REG),
    ("exe", DT_LNK),
    ("maps", DT_REG),
    ("stat", DT_REG),
    ("statm", DT_REG),
    ("status", DT_REG),
    ("fail-nth", DT_REG),
];

/// A `/proc/<pid>` inode: the pid above the bits that name its file.
fn pid_ino(pid: u32, file: u64) -> u64 {
    (u64::from(pid) << 8) | file
}

fn entry(name: &str, ino: u64, kind: u8) -> (String, u64, u8) {
    (String::from(name), ino, kind)
}

fn split(path: &[u8]) -> Option<Vec<&str>> {
    let text = core::str::from_utf8(path).ok()?;
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    (parts.first() == Some(&"proc")).then_some(parts)
}

/// The process a `/proc/<who>` component names ("self" or a pid), live
/// or a zombie not yet reaped.
fn process_named(who: &str) -> Result<Arc<Process>, Errno> {
    if who == "self" {
        return super::current().ok_or(Errno::ENOENT);
    }
    let pid = who.parse().map_err(|_| Errno::ENOENT)?;
    Process::get(pid).ok_or(Errno::ENOENT)
}

/// The `/proc` file at `path`; `Ok(None)` when `path` is not under `/proc`.
pub fn open(path: &[u8]) -> Result<Option<Snapshot>, Errno> {
    let Some(parts) = split(path) else { return Ok(None) };
    let text = |s: String| Snapshot::file(s.into_bytes());
    let file = match parts[1..] {
        [] => root_directory()?,
        ["cpuinfo"] => text(cpuinfo()),
        ["filesystems"] => text(String::from("nodev\tsysfs\nnodev\ttmpfs\nnodev\tdevtmpfs\nnodev\tproc\n")),
        ["loadavg"] => text(loadavg()),
        ["meminfo"] => text(meminfo()),
        ["mounts"] => text(mounts()),
        ["stat"] => text(stat()),
        ["uptime"] => text(uptime()),
        ["version"] => text(version()),
        ["vmstat"] => text(vmstat()),
        ["sys"] => sys_directory(SYS_INO, "vm", VM_INO, DT_DIR),
        ["sys", "vm"] => sys_directory(VM_INO, "drop_caches", DROP_CACHES_INO, DT_REG),
        ["sys", "vm", "drop_caches"] => Snapshot::file(format!("{}\n", LAST_DROP.load(Ordering::Relaxed)).into_bytes())
            .with_identity(DROP_CACHES_INO, (0, 0))
            .writing_to(SnapshotTarget::DropCaches),
        ["thread-self", ref rest @ ..] => {
            let thread = super::thread::current().ok_or(Errno::ENOENT)?;
            thread_file(&thread.process, Some(&thread), rest)?
        }
        [who, "task"] => {
            let process = process_named(who)?;
            let _preload = crate::heap::preload(listing_bound(process.thread_count()))?;
            let mut entries = alloc::vec![entry(".", 1, DT_DIR), entry("..", 1, DT_DIR)];
            for thread in process.threads() {
                entries.push(entry(&format!("{}", thread.tid()), pid_ino(thread.tid(), 0), DT_DIR));
            }
            Snapshot::directory(entries).with_identity(pid_ino(process.pid, 1), owner(&process))
        }
        [who, "task", tid, ref rest @ ..] => {
            let process = process_named(who)?;
            let tid: u32 = tid.parse().map_err(|_| Errno::ENOENT)?;
            let thread = process.threads().into_iter().find(|t| t.tid() == tid).ok_or(Errno::ENOENT)?;
            thread_file(&process, Some(&thread), rest)?
        }
        [who, ref rest @ ..] => thread_file(&process_named(who)?, None, rest)?,
    };
    Ok(Some(file))
}

/// `/proc`: its files, the links `self` and `thread-self`, a directory per
/// process.
fn root_directory() -> Result<Snapshot, Errno> {
    let _preload = crate::heap::preload(listing_bound(task::task_count() as usize + ROOT_FILES.len()))?;
    let mut entries = alloc::vec![entry(".", 1, DT_DIR), entry("..", 1, DT_DIR)];
    entries.extend(ROOT_FILES.iter().map(|&(name, ino)| entry(name, ino, DT_REG)));
    entries.push(entry("self", 11, DT_LNK));
    entries.push(entry("thread-self", 12, DT_LNK));
    entries.push(entry("sys", SYS_INO, DT_DIR));
    for p in Process::all() {
        entries.push(entry(&format!("{}", p.pid), pid_ino(p.pid, 0), DT_DIR));
    }
    Ok(Snapshot::directory(entries).with_identity(1, (0, 0)))
}

/// Heap a listing of `count` entries (and a few more) takes while it is
/// made, for a section of its own (it grows with the processes or
/// threads, not within the open's bound): per entry its slot (twice,
/// as the vector doubles), its name, and the reference it was made from
/// (twice too).
fn listing_bound(count: usize) -> usize {
    const PER_ENTRY: usize = 2 * core::mem::size_of::<(String, u64, u8)>() + 32 + 2 * 8;
    (count + 8).saturating_mul(PER_ENTRY)
}

/// Inode numbers of `/proc/sys`, `/proc/sys/vm` and its `drop_caches`.
const SYS_INO: u64 = 13;
const VM_INO: u64 = 14;
const DROP_CACHES_INO: u64 = 15;
/// What `drop_caches` was last given (what reading it shows, as Linux's).
static LAST_DROP: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// A directory of `/proc/sys` holding one entry.
fn sys_directory(ino: u64, name: &str, child: u64, kind: u8) -> Snapshot {
    let entries = alloc::vec![entry(".", ino, DT_DIR), entry("..", 1, DT_DIR), entry(name, child, kind)];
    Snapshot::directory(entries).with_identity(ino, (0, 0))
}

/// The process's effective user and group: the owner of its files.
fn owner(process: &Process) -> (u32, u32) {
    let creds = process.creds.lock();
    (creds.euid, creds.egid)
}

/// A file of a process's directory (`thread` `None`) or of one of its
/// threads' (`task/<tid>`).
fn thread_file(process: &Arc<Process>, thread: Option<&Arc<Thread>>, rest: &[&str]) -> Result<Snapshot, Errno> {
    let id = thread.map_or(process.pid, |t| t.tid());
    let text = |s: String, n: u64| Snapshot::file(s.into_bytes()).with_identity(pid_ino(id, n), owner(process));
    Ok(match rest {
        [] => {
            let mut entries = alloc::vec![entry(".", pid_ino(id, 0), DT_DIR), entry("..", 1, DT_DIR)];
            for (i, &(name, kind)) in PID_FILES.iter().enumerate() {
                entries.push(entry(name, pid_ino(id, 2 + i as u64), kind));
            }
            if thread.is_none() {
                entries.push(entry("task", pid_ino(id, 1), DT_DIR));
            }
            Snapshot::directory(entries).with_identity(pid_ino(id, 0), owner(process))
        }
        ["cmdline"] => Snapshot::file(process.cmdline.lock().clone()).with_identity(pid_ino(id, 2), owner(process)),
        ["comm"] => text(format!("{}\n", comm(process)), 3),
        ["maps"] => text(maps(process)?, 5),
        ["stat"] => text(pid_stat(process, thread), 6),
        ["statm"] => text(statm(process), 7),
        ["status"] => text(status(process, thread), 8),
        ["fail-nth"] => {
            // `/proc/<pid>/fail-nth` is the thread group leader's, as on Linux.
            let task = match thread {
                Some(thread) => thread.task(),
                None => process.threads().into_iter().find(|t| t.tid() == process.pid).and_then(|t| t.task()),
            }
            .ok_or(Errno::ENOENT)?;
            text(format!("{}\n", crate::failslab::task_nth(&task)), 9).writing_to(SnapshotTarget::FailNth(task))
        }
        _ => return Err(Errno::ENOENT),
    })
}

/// A write of `text` to a `/proc` file that takes writes: as Linux's,
/// one whole number (decimal, `0x` hexadecimal or `0` octal, a newline
/// after it allowed) or `EINVAL`. Returns the bytes taken (all of them).
pub fn write(target: &SnapshotTarget, text: &[u8]) -> Result<usize, Errno> {
    let value = parse_unsigned(text).ok_or(Errno::EINVAL)?;
    match target {
        SnapshotTarget::FailNth(task) => crate::failslab::set_task_nth(task, value),
        SnapshotTarget::DropCaches => drop_caches(value)?,
    }
    Ok(text.len())
}

/// `drop_caches` (root only: Linux's file is mode 0200): 1 frees the
/// clean, unused page-cache pages, 2 the reclaimable kernel objects (Aspen
/// keeps none: its heap gives empty regions back by itself), 3 both, 4
/// only quiets the log line; anything else `EINVAL`.
fn drop_caches(value: u32) -> Result<(), Errno> {
    if super::current_process().creds.lock().euid != 0 {
        return Err(Errno::EACCES);
    }
    if !(1..=4).contains(&value) {
        return Err(Errno::EINVAL);
    }
    LAST_DROP.store(value, Ordering::Relaxed);
    if value & 1 != 0 {
        let pages = crate::files::vfs().drop_clean_caches();
        if value & 4 == 0 {
            log::debug!("drop_caches: {pages} page-cache pages freed");
        }
    }
    Ok(())
}

/// Linux's `kstrtouint` with base 0.
fn parse_unsigned(text: &[u8]) -> Option<u32> {
    let text = core::str::from_utf8(text).ok()?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_prefix('+').unwrap_or(text);
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None if text.len() > 1 && text.starts_with('0') => (&text[1..], 8),
        None => (text, 10),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// The target of `path` when it is one of `/proc`'s links: `self` (the
/// caller's pid), `thread-self` ("pid/task/tid"), `<pid>/exe` (the
/// program's path); `ENOENT` for a process that does not exist or has
/// ended; `None` for any other path.
pub fn link(path: &[u8]) -> Option<Result<Vec<u8>, Errno>> {
    let parts = split(path)?;
    let thread = || super::thread::current().ok_or(Errno::ENOENT);
    match parts[1..] {
        ["self"] => Some(thread().map(|t| format!("{}", t.process.pid).into_bytes())),
        ["thread-self"] => Some(thread().map(|t| format!("{}/task/{}", t.process.pid, t.tid()).into_bytes())),
        [who, "exe"] | [who, "task", _, "exe"] => {
            let process = if who == "thread-self" { super::current() } else { process_named(who).ok() };
            Some(process.filter(|p| !p.is_zombie()).map(|p| p.exe.lock().clone()).ok_or(Errno::ENOENT))
        }
        _ => None,
    }
}

/// What `lstat` says of one of `/proc`'s links: a link (mode 0777) owned
/// by the process it names; `None` when `path` is no such link.
pub fn link_stat(path: &[u8]) -> Option<Result<aspen_fs::Stat, Errno>> {
    // "self/" and "self/." name the directory the link leads to.
    if path.ends_with(b"/") || path.ends_with(b"/.") {
        return None;
    }
    let target = link(path)?;
    Some(target.map(|target| aspen_fs::Stat {
        dev: (0, 4),
        ino: 11,
        mode: 0o120777,
        size: target.len() as u64,
        nlink: 1,
        ..Default::default()
    }))
}

fn kib(pages: u64) -> u64 {
    pages * PAGE_SIZE / 1024
}

/// The command name: the program's file name, at most 15 bytes (Linux's
/// `TASK_COMM_LEN`).
fn comm(process: &Process) -> String {
    let name = super::name(process);
    let base = name.rsplit('/').next().unwrap_or_default();
    let mut end = base.len().min(15);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    String::from(&base[..end])
}

/// A thread's (or a process's main thread's) state letter and word.
fn state(process: &Process, thread: Option<&Arc<Thread>>) -> (char, &'static str) {
    if process.is_zombie() {
        return ('Z', "zombie");
    }
    if process.is_stopped() {
        return ('T', "stopped");
    }
    let main = thread.cloned().or_else(|| {
        let threads = process.threads();
        threads.iter().find(|t| t.tid() == process.pid).or(threads.first()).cloned()
    });
    match main.and_then(|t| t.task()).map(|t| t.state()) {
        Some(TaskState::Running | TaskState::Ready) => ('R', "running"),
        Some(TaskState::Blocked) => ('S', "sleeping"),
        _ => ('Z', "zombie"),
    }
}

/// What the address space holds, in pages, for `stat`, `statm`, `status`.
#[derive(Default)]
struct MemoryFigures {
    total: u64,
    peak: u64,
    peak_resident: u64,
    rss: aspen_mm::aspace::Rss,
    locked: u64,
    data: u64,
    stack: u64,
    exe: u64,
    lib: u64,
    shared_file: u64,
    tables: u64,
    code: (u64, u64),
    data_range: (u64, u64),
    stack_start: u64,
    brk_start: u64,
}

fn memory(process: &Process) -> MemoryFigures {
    let exe = String::from_utf8_lossy(&process.exe.lock()).into_owned();
    process
        .with_mm(|mm| {
            let mut m = MemoryFigures {
                total: mm.total_bytes() / PAGE_SIZE,
                peak: mm.peak_bytes() / PAGE_SIZE,
                peak_resident: mm.peak_resident_pages() as u64,
                rss: mm.rss(),
                locked: mm.locked_bytes() / PAGE_SIZE,
                tables: mm.table_pages() as u64,
                stack_start: mm.stack_start().map_or(0, |sp| sp.as_u64()),
                brk_start: mm.brk_start().map_or(0, |b| b.as_u64()),
                ..Default::default()
            };
            use aspen_mm::aspace::Prot;
            for info in mm.vareas() {
                let pages = (info.range.end_exclusive - info.range.start) / PAGE_SIZE;
                let (write, exec) = (info.prot.contains(Prot::WRITE), info.prot.contains(Prot::EXEC));
                let stack = info.label == Some("[stack]");
                // Linux's classes: stack_vm, data_vm (private writable),
                // exec_vm (executable, not writable), split into the
                // program's code and the libraries'.
                if stack {
                    m.stack += pages;
                } else if write && !info.is_shared() {
                    m.data += pages;
                    // The program's own data segment: its writable file mapping.
                    if let VareaKind::File { identity, .. } = info.kind {
                        if identity.path == exe && m.data_range.0 == 0 {
                            m.data_range = (info.range.start.as_u64(), info.range.end_exclusive.as_u64());
                        }
                    }
                } else if exec && !write {
                    match info.kind {
                        VareaKind::File { identity, .. } if identity.path == exe => {
                            m.exe += pages;
                            if m.code.0 == 0 {
                                m.code = (info.range.start.as_u64(), info.range.end_exclusive.as_u64());
                            }
                        }
                        _ => m.lib += pages,
                    }
                }
            }
            m.shared_file = m.rss.file as u64 + m.rss.shmem as u64;
            m
        })
        .unwrap_or_default()
}

/// A process's (or one thread's) CPU time and switches.
fn usage(process: &Process, thread: Option<&Arc<Thread>>) -> super::CpuUsage {
    match thread.and_then(|t| t.task()) {
        Some(task) => super::CpuUsage::of(&task),
        None => process.cpu_usage(),
    }
}

/// The pending, blocked, ignored and caught signals of a thread (the main
/// one for a process) and the process's shared pending ones.
struct Signals {
    pending: SigSet,
    shared: SigSet,
    blocked: SigSet,
    ignored: SigSet,
    caught: SigSet,
    queued: usize,
}

fn signals(process: &Process, thread: Option<&Arc<Thread>>) -> Signals {
    let threads = process.threads();
    let main = thread.or_else(|| threads.iter().find(|t| t.tid() == process.pid).or(threads.first()));
    let (pending, blocked) = main.map_or((SigSet::EMPTY, SigSet::EMPTY), |t| {
        let s = t.signals.lock();
        (s.pending.set(), s.mask)
    });
    // One lock at a time: the process's pending set, then each thread's.
    let (shared, shared_queued) = {
        let pending = process.pending.lock();
        (pending.set(), pending.queued())
    };
    let queued = shared_queued + threads.iter().map(|t| t.signals.lock().pending.queued()).sum::<usize>();
    let actions = process.actions();
    let actions = actions.lock();
    let (mut ignored, mut caught) = (SigSet::EMPTY, SigSet::EMPTY);
    for number in 1..=u64::from(NSIG) {
        let Some(signo) = SigNo::new(number) else { continue };
        match actions.get(signo).handler {
            SIG_DFL => {}
            SIG_IGN => ignored = ignored.with(signo),
            _ => caught = caught.with(signo),
        }
    }
    Signals { pending, shared, blocked, ignored, caught, queued }
}

/// `/proc/<pid>/stat` (and `task/<tid>/stat`): Linux's 52 fields.
fn pid_stat(process: &Process, thread: Option<&Arc<Thread>>) -> String {
    let freq = timer::frequency();
    let (state, _) = state(process, thread);
    let usage = usage(process, thread);
    let children = process.children_usage();
    let m = memory(process);
    let sig = signals(process, thread);
    let task = thread.and_then(|t| t.task()).or_else(|| process.threads().first().and_then(|t| t.task()));
    let params = task.as_ref().map(|t| t.sched_params()).unwrap_or(aspen_abi::sched::SchedParams::DEFAULT);
    let level = task.as_ref().map_or(sched::DEFAULT_PRIORITY, |t| t.base_priority());
    // Linux's `prio - MAX_RT_PRIO`: -2..-100 for real-time tasks, 20 + nice.
    let priority = i128::from(level.min(sched::DEFAULT_PRIORITY)) - 100;
    let (tty_nr, tpgid) = crate::tty::controlling(process.sid()).map_or((0, -1), |pgrp| (1281, i128::from(pgrp)));
    let rsslim = process.limits.lock().get(aspen_abi::resource::Resource::Rss).cur;
    let blocked = task.as_ref().is_some_and(|t| t.state() == TaskState::Blocked);
    let exit_code = if process.is_zombie() { process.exit_status.lock().unwrap_or(0) } else { 0 };
    let id = thread.map_or(process.pid, |t| t.tid());
    let mut out = format!(
        "{id} ({}) {state} {} {} {} {tty_nr} {tpgid} ",
        comm(process),
        process.ppid(),
        process.pgid(),
        process.sid()
    );
    let fields: [i128; 43] = [
        0x40_0000, // flags: PF_RANDOMIZE (the layout is randomized)
        i128::from(process.faults.load(Ordering::Relaxed)),
        i128::from(children.faults),
        0,
        0,
        clock_ticks(usage.user, freq) as i128,
        clock_ticks(usage.system, freq) as i128,
        clock_ticks(children.user, freq) as i128,
        clock_ticks(children.system, freq) as i128,
        priority,
        0, // nice
        process.thread_count() as i128,
        0, // itrealvalue
        clock_ticks(process.started, freq) as i128,
        (m.total * PAGE_SIZE) as i128,
        m.rss.total() as i128,
        rsslim as i128,
        m.code.0 as i128,
        m.code.1 as i128,
        m.stack_start as i128,
        0,
        0,
        (sig.pending | sig.shared).0 as i128,
        sig.blocked.0 as i128,
        sig.ignored.0 as i128,
        sig.caught.0 as i128,
        i128::from(blocked),
        0,
        0,
        i128::from(process.exit_signal.load(Ordering::Relaxed)),
        cpu::cpu_id() as i128,
        i128::from(params.priority),
        i128::from(params.policy.number()),
        0,
        0,
        0,
        i128::from(m.data_range.0),
        i128::from(m.data_range.1),
        m.brk_start as i128,
        0,
        0,
        0,
        0,
    ];
    let mut first = true;
    for value in fields {
        if !first {
            out.push(' ');
        }
        first = false;
        let _ = write!(out, "{value}");
    }
    let _ = writeln!(out, " {exit_code}");
    out
}

/// `/proc/<pid>/statm`: sizes in pages: total, resident, shared (file and
/// shared memory pages), text, 0, data + stack, 0.
fn statm(process: &Process) -> String {
    let m = memory(process);
    format!("{} {} {} {} 0 {} 0\n", m.total, m.rss.total(), m.shared_file, m.exe, m.data + m.stack)
}

/// `/proc/<pid>/status`: Linux's lines, then Aspen's own: `WxFlips`
/// (write/execute flips of the process's pages), `WxVareas` (mappings
/// past the flip bound, mapped writable and executable) and
/// `SpaceSwitches`.
fn status(process: &Process, thread: Option<&Arc<Thread>>) -> String {
    let (letter, word) = state(process, thread);
    let creds = process.creds.lock().clone();
    let umask = process.with_fs(|fs| fs.umask);
    let fd_size = process.with_files(|f| f.slot_count()).unwrap_or(0);
    let m = memory(process);
    let sig = signals(process, thread);
    let usage = usage(process, thread);
    let sigpending_limit = process.limits.lock().get(aspen_abi::resource::Resource::Sigpending).cur;
    let id = thread.map_or(process.pid, |t| t.tid());
    let mut out = String::new();
    let _ = writeln!(out, "Name:\t{}", comm(process));
    let _ = writeln!(out, "Umask:\t{umask:04o}");
    let _ = writeln!(out, "State:\t{letter} ({word})");
    let _ = writeln!(out, "Tgid:\t{}", process.pid);
    let _ = writeln!(out, "Ngid:\t0");
    let _ = writeln!(out, "Pid:\t{id}");
    let _ = writeln!(out, "PPid:\t{}", process.ppid());
    let _ = writeln!(out, "TracerPid:\t0");
    let _ = writeln!(out, "Uid:\t{}\t{}\t{}\t{}", creds.ruid, creds.euid, creds.suid, creds.euid);
    let _ = writeln!(out, "Gid:\t{}\t{}\t{}\t{}", creds.rgid, creds.egid, creds.sgid, creds.egid);
    let _ = writeln!(out, "FDSize:\t{fd_size}");
    let groups: Vec<String> = creds.groups.iter().map(|g| format!("{g}")).collect();
    // Linux ends the list with a space, even an empty one.
    let _ = writeln!(out, "Groups:\t{} ", groups.join(" "));
    let _ = writeln!(out, "NStgid:\t{}", process.pid);
    let _ = writeln!(out, "NSpid:\t{id}");
    let _ = writeln!(out, "NSpgid:\t{}", process.pgid());
    let _ = writeln!(out, "NSsid:\t{}", process.sid());
    if !process.is_zombie() {
        let rss = m.rss.total() as u64;
        for (name, pages) in [
            ("VmPeak", m.peak),
            ("VmSize", m.total),
            ("VmLck", m.locked),
            ("VmPin", 0),
            ("VmHWM", m.peak_resident.max(rss)),
            ("VmRSS", rss),
            ("RssAnon", m.rss.anon as u64),
            ("RssFile", m.rss.file as u64),
            ("RssShmem", m.rss.shmem as u64),
            ("VmData", m.data),
            ("VmStk", m.stack),
            ("VmExe", m.exe),
            ("VmLib", m.lib),
            ("VmPTE", m.tables),
            ("VmSwap", 0),
        ] {
            let _ = writeln!(out, "{name}:\t{:>8} kB", kib(pages));
        }
        let _ = writeln!(out, "HugetlbPages:\t{:>8} kB", 0);
    }
    let _ = writeln!(out, "CoreDumping:\t0");
    let _ = writeln!(out, "THP_enabled:\t0");
    let _ = writeln!(out, "Threads:\t{}", process.thread_count());
    let _ = writeln!(out, "SigQ:\t{}/{}", sig.queued, sigpending_limit);
    for (name, set) in [
        ("SigPnd", sig.pending),
        ("ShdPnd", sig.shared),
        ("SigBlk", sig.blocked),
        ("SigIgn", sig.ignored),
        ("SigCgt", sig.caught),
    ] {
        let _ = writeln!(out, "{name}:\t{:016x}", set.0);
    }
    // Root holds every capability of Linux 6.1 (0 ..= CAP_CHECKPOINT_RESTORE).
    let caps: u64 = if creds.euid == 0 { (1 << 41) - 1 } else { 0 };
    let _ = writeln!(out, "CapInh:\t{:016x}", 0);
    let _ = writeln!(out, "CapPrm:\t{caps:016x}");
    let _ = writeln!(out, "CapEff:\t{caps:016x}");
    let _ = writeln!(out, "CapBnd:\t{:016x}", (1u64 << 41) - 1);
    let _ = writeln!(out, "CapAmb:\t{:016x}", 0);
    let _ = writeln!(out, "NoNewPrivs:\t0");
    let _ = writeln!(out, "Seccomp:\t0");
    let _ = writeln!(out, "Seccomp_filters:\t0");
    // The thread's affinity (the process's: its main thread's, else any).
    let affinity = match thread {
        Some(thread) => thread.affinity(),
        None => {
            let threads = process.threads.lock();
            threads.get(&process.pid).or_else(|| threads.values().next()).map_or(1, |t| t.affinity())
        }
    };
    let _ = writeln!(out, "Cpus_allowed:\t{affinity:x}");
    let _ = write!(out, "Cpus_allowed_list:\t");
    let _ = aspen_abi::sched::write_cpu_list(affinity, &mut out);
    let _ = writeln!(out);
    let _ = writeln!(out, "voluntary_ctxt_switches:\t{}", usage.voluntary);
    let _ = writeln!(out, "nonvoluntary_ctxt_switches:\t{}", usage.involuntary);
    let (wx_flips, wx_vareas) = process.with_mm(|mm| (mm.wx_flips(), mm.wx_vareas())).unwrap_or_default();
    let _ = writeln!(out, "WxFlips:\t{wx_flips}");
    let _ = writeln!(out, "WxVareas:\t{wx_vareas}");
    let _ = writeln!(out, "SpaceSwitches:\t{}", process.space_switches.load(Ordering::Relaxed));
    out
}

/// `/proc/<pid>/maps`, one line per varea: text that grows with the
/// process (a line per mapping), so measured and made in a section of its
/// own ([`measured_text`]) rather than in the open's.
fn maps(process: &Process) -> Result<String, Errno> {
    measured_text(|out| process.with_mm(|mm| mm.write_maps(out)).unwrap_or(Ok(())))
}

/// Room a measured text keeps for counters that moved between the two
/// passes (a digit more here and there).
const MEASURED_SLACK: usize = 256;

/// Text that `render` writes, whose size depends on the system (a line
/// per mapping): a first pass measures it, then a preloaded section of
/// that size (`ENOMEM` when the heap cannot give it) holds the second,
/// which never grows the buffer (what a change between the passes adds
/// beyond the slack is cut).
fn measured_text(render: impl Fn(&mut dyn Write) -> core::fmt::Result) -> Result<String, Errno> {
    let mut length = Length(0);
    let _ = render(&mut length);
    let capacity = length.0 + MEASURED_SLACK;
    let _preload = crate::heap::preload(capacity)?;
    let mut out = Bounded(String::with_capacity(capacity));
    let _ = render(&mut out);
    Ok(out.0)
}

/// Counts the bytes written to it.
struct Length(usize);

impl Write for Length {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// A string that never grows past its capacity (the rest is cut, at a
/// character boundary).
struct Bounded(String);

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.0.capacity() - self.0.len();
        let mut end = s.len().min(room);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(&s[..end]);
        if end < s.len() {
            return Err(core::fmt::Error);
        }
        Ok(())
    }
}

/// What the memory figures of `meminfo` and `sysinfo` come from, in pages.
struct MemoryTotals {
    total: u64,
    free: u64,
    /// The page cache, shared anonymous memory included.
    cache: u64,
    /// Shared anonymous memory.
    shmem: u64,
    tables: u64,
}

fn memory_totals() -> MemoryTotals {
    let pool = frames::pool();
    let stats = user_env::get().stats();
    MemoryTotals {
        total: pool.total_frame_count() as u64,
        free: pool.free_frame_count() as u64,
        cache: stats.page_cache_pages() as u64,
        shmem: stats.anonymous_object_pages() as u64,
        tables: Process::all().iter().filter_map(|p| p.with_mm(|mm| mm.table_pages() as u64).ok()).sum(),
    }
}

/// Where memory is, in kB: free, the page cache (with shared anonymous
/// memory and tmpfs files), what live processes hold privately (anonymous
/// pages and page tables), the kernel heap's regions and kernel stacks.
/// Between two moments with the same processes alive their sum stays the
/// same unless something leaked (a process's private copies of file pages
/// are the one thing it misses).
#[derive(Clone, Copy, Debug)]
pub struct MemoryBalance {
    pub free: u64,
    pub cache: u64,
    pub processes: u64,
    pub heap: u64,
    pub stacks: u64,
}

impl MemoryBalance {
    /// Everything it accounts for, in kB.
    pub fn total(&self) -> u64 {
        self.free + self.cache + self.processes + self.heap + self.stacks
    }
}

impl core::fmt::Display for MemoryBalance {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "free {} kB, page cache {} kB, processes {} kB, kernel heap {} kB, kernel stacks {} kB",
            self.free, self.cache, self.processes, self.heap, self.stacks
        )
    }
}

/// The memory balance now.
pub fn memory_balance() -> MemoryBalance {
    let t = memory_totals();
    let anon: u64 = Process::all().iter().filter_map(|p| p.with_mm(|mm| mm.rss().anon as u64).ok()).sum();
    MemoryBalance {
        free: kib(t.free),
        cache: kib(t.cache),
        processes: kib(anon + t.tables),
        heap: crate::heap::usage().1 as u64 / 1024,
        stacks: (u64::from(task::task_count()) + crate::smp::stack_count()) * (task::stack::STACK_SIZE / 1024),
    }
}

/// `/proc/meminfo`: the frame pool, the page cache (`Cached` counts
/// shared anonymous memory too, which is also `Shmem`, as Linux),
/// translation tables and the kernel heap. Nothing is swapped, nothing is
/// a buffer; the page cache is available memory, since clean file pages
/// can be dropped.
pub fn meminfo() -> String {
    let t = memory_totals();
    let available = t.free + t.cache - t.shmem;
    let (heap_used, heap_size) = crate::heap::usage();
    let stacks = (u64::from(task::task_count()) + crate::smp::stack_count()) * (task::stack::STACK_SIZE / 1024);
    let mut out = String::new();
    for (name, kb) in [
        ("MemTotal", kib(t.total)),
        ("MemFree", kib(t.free)),
        ("MemAvailable", kib(available)),
        ("Buffers", 0),
        ("Cached", kib(t.cache)),
        ("SwapCached", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Shmem", kib(t.shmem)),
        // The kernel heap is Aspen's slab; it keeps no cache to reclaim.
        ("KReclaimable", 0),
        ("Slab", heap_used as u64 / 1024),
        ("SReclaimable", 0),
        ("SUnreclaim", heap_used as u64 / 1024),
        ("KernelStack", stacks),
        ("PageTables", kib(t.tables)),
    ] {
        let _ = writeln!(out, "{:<16}{kb:>8} kB", format!("{name}:"));
    }
    let _ = writeln!(out, "KernelHeap:     {:>8} kB", heap_used / 1024);
    let _ = writeln!(out, "KernelHeapSize: {:>8} kB", heap_size / 1024);
    out
}

/// `sysinfo`: uptime, loads, memory in bytes, threads.
pub fn sysinfo() -> Sysinfo {
    let t = memory_totals();
    let (load, _) = sched::load();
    let freq = timer::frequency();
    let ticks = timer::ticks();
    Sysinfo {
        uptime: ticks.div_ceil(freq),
        loads: load.si_loads(),
        totalram: t.total,
        freeram: t.free,
        sharedram: t.shmem,
        procs: task::task_count().min(u32::from(u16::MAX)) as u16,
        mem_unit: PAGE_SIZE as u32,
        ..Sysinfo::default()
    }
    .in_bytes()
}

/// `/proc/vmstat`: event counters since boot, `name value` per line:
/// Linux's `pgfault`, and Aspen's copy-on-write, shared-fault and
/// shared-unmap, TLB invalidation and ASID rollover counts.
pub fn vmstat() -> String {
    use crate::arch::tlb::COUNTERS;
    let stats = user_env::get().stats();
    let get = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    for (name, value) in [
        ("pgfault", stats.faults()),
        ("cow_copy", stats.cow_copies()),
        ("cow_reuse", stats.cow_reuses()),
        ("pgfault_shared", stats.shared_faults()),
        ("pgfault_shared_race", stats.shared_fault_races()),
        ("munmap_shared", stats.shared_unmaps()),
        ("tlbi_page", get(&COUNTERS.page)),
        ("tlbi_asid", get(&COUNTERS.asid)),
        ("tlbi_kernel_page", get(&COUNTERS.kernel_page)),
        ("tlbi_all", get(&COUNTERS.all)),
        ("tlbi_all_local", get(&COUNTERS.all_local)),
        ("asid_rollover", user_env::get().asids().rollovers()),
        ("failslab_injected", crate::failslab::injected()),
        ("failslab_preload_overruns", crate::failslab::preload_overruns()),
        ("failslab_irq_allocations", crate::failslab::irq_allocations()),
        ("failslab_noalloc_allocations", crate::failslab::no_alloc_allocations()),
        ("tty_input_dropped", crate::tty::input_dropped()),
        ("oom_kill", super::oom::kills()),
    ] {
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

/// Seconds and hundredths, as `/proc/uptime` prints them.
fn seconds(ticks: u64, freq: u64) -> String {
    let hundredths = clock_ticks(ticks, freq);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// `/proc/uptime`: seconds since boot and seconds the CPU idled.
fn uptime() -> String {
    let freq = timer::frequency();
    // Idle time summed over the cores, as Linux's.
    let (_, _, idle, _) = cputime::totals();
    format!("{} {}\n", seconds(timer::ticks(), freq), seconds(idle, freq))
}

/// `/proc/loadavg`: the three averages, runnable/all tasks, the last pid.
fn loadavg() -> String {
    let (load, runnable): (LoadAverages, usize) = sched::load();
    format!("{} {}/{} {}\n", load.text(), runnable, task::task_count(), task::last_pid())
}

/// `/proc/stat`: the CPUs' time in clock ticks (user, nice, system, idle,
/// iowait, irq, softirq, steal, guest, guest_nice), summed, then per online
/// CPU, interrupts,
/// switches, boot time, forks and task counts.
fn stat() -> String {
    let freq = timer::frequency();
    let (_, _, _, switches) = cputime::totals();
    let online = crate::smp::online_mask();
    let rows: alloc::vec::Vec<(usize, u64, u64, u64)> = (0..aspen_mm::asid::MAX_CPUS)
        .filter(|n| online & (1 << n) != 0)
        .map(|n| {
            let (user, system, idle, _) = cputime::totals_of(n);
            (n, user, system, idle)
        })
        .collect();
    let (_, runnable) = sched::load();
    let mut out = String::new();
    let sum = |pick: fn(&(usize, u64, u64, u64)) -> u64| clock_ticks(rows.iter().map(pick).sum(), freq);
    let (user_all, system_all, idle_all) = (sum(|r| r.1), sum(|r| r.2), sum(|r| r.3));
    let _ = writeln!(out, "cpu  {user_all} 0 {system_all} {idle_all} 0 0 0 0 0 0");
    for (n, user, system, idle) in rows {
        let (user, system, idle) = (clock_ticks(user, freq), clock_ticks(system, freq), clock_ticks(idle, freq));
        let _ = writeln!(out, "cpu{n} {user} 0 {system} {idle} 0 0 0 0 0 0");
    }
    let interrupts = crate::irq::count();
    let _ = writeln!(out, "intr {interrupts}");
    let _ = writeln!(out, "ctxt {switches}");
    // The real-time clock starts at the epoch with the counter.
    let _ = writeln!(out, "btime 0");
    let _ = writeln!(out, "processes {}", task::last_pid());
    let _ = writeln!(out, "procs_running {runnable}");
    let _ = writeln!(out, "procs_blocked 0");
    let _ = writeln!(out, "softirq 0 0 0 0 0 0 0 0 0 0 0");
    out
}

/// `/proc/cpuinfo`: arm64's format, a block per online CPU; the features
/// are the names of the capabilities `AT_HWCAP` gives programs, as on
/// Linux (the boot CPU's: the cores of both boards are alike).
fn cpuinfo() -> String {
    let mut out = String::new();
    for n in 0..aspen_mm::asid::MAX_CPUS {
        let core = crate::smp::cpu(n);
        if core.is_online() {
            cpuinfo_block(&mut out, n, core.midr());
        }
    }
    out
}

/// One CPU's block of `/proc/cpuinfo`.
fn cpuinfo_block(out: &mut String, n: usize, midr: u64) {
    let registers = cpu::id_registers();
    let freq = timer::frequency();
    let _ = writeln!(out, "processor\t: {n}");
    // Linux's arm64 BogoMIPS: the timer's rate over 500 kHz.
    let _ = writeln!(out, "BogoMIPS\t: {}.{:02}", freq / 500_000, (freq / 5_000) % 100);
    let _ = write!(out, "Features\t:");
    for feature in hwcap::feature_names(hwcap::hwcap(&registers), hwcap::hwcap2(&registers)) {
        let _ = write!(out, " {feature}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "CPU implementer\t: 0x{:02x}", (midr >> 24) & 0xff);
    let _ = writeln!(out, "CPU architecture: 8");
    let _ = writeln!(out, "CPU variant\t: 0x{:x}", (midr >> 20) & 0xf);
    let _ = writeln!(out, "CPU part\t: 0x{:03x}", (midr >> 4) & 0xfff);
    let _ = writeln!(out, "CPU revision\t: {}", midr & 0xf);
    let _ = writeln!(out);
}

/// `/proc/version`: what `uname` reports, in Linux's sentence.
fn version() -> String {
    format!("Aspen version {} (aspen@aspen) (rustc) #1 Aspen\n", crate::syscall::KERNEL_RELEASE)
}

/// `/proc/mounts`: the initramfs at `/`, `proc` and `sysfs` (always there)
/// and the VFS's mounts in order, as Linux's `show_vfsmnt`.
fn mounts() -> String {
    let mut out = String::from("rootfs / rootfs ro 0 0\nproc /proc proc rw,relatime 0 0\n");
    out.push_str("sysfs /sys sysfs rw,relatime 0 0\n");
    for point in crate::files::vfs().mount_points() {
        let (name, mode) = match point.kind {
            aspen_fs::MountKind::Tmpfs => ("tmpfs", ""),
            aspen_fs::MountKind::Devtmpfs => ("devtmpfs", ",mode=755"),
        };
        let size = point.limit.map(|bytes| format!(",size={}k", bytes / 1024)).unwrap_or_default();
        let (source, path) = (String::from_utf8_lossy(&point.source), String::from_utf8_lossy(&point.path));
        let _ = writeln!(out, "{source} {path} {name} rw,relatime{size}{mode} 0 0");
    }
    out
}
