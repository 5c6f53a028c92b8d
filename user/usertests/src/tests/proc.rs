//! `/proc`'s figures checked against what the test does: resident memory
//! (`status`, `statm`) follows the pages touched and unmapped, `Threads`
//! and `num_threads` follow thread creation, `utime` grows while the
//! process computes and `stime` while it makes system calls, the load
//! average rises while tasks spin, `/proc/self` names the caller,
//! `/proc/stat` counts switches, `/proc/uptime` follows `CLOCK_BOOTTIME`,
//! `sysinfo` agrees with `/proc/meminfo`, a reaped child's faults and
//! time reach its parent's `cminflt` and `cutime`, and every file that
//! lists CPUs lists the same online ones.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU32, Ordering::SeqCst};

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::mem::{MapFlags, Prot, PAGE_SIZE};
use aspen_sys::raw::{syscall1, syscall4, Sysno};
use aspen_sys::thread::{self as th, spawn_thread};
use aspen_sys::time::{clock_gettime, ClockId, NANOS_PER_SECOND};
use aspen_sys::{process, Errno};

use crate::ensure;
use crate::harness::{join, spawn, Context, Ctx, Region, TestResult};
use crate::procfs::{field, read_text, self_stat, stat_fields};

const RW: Prot = Prot::READ.union(Prot::WRITE);

/// (VmRSS in kB, RssAnon in kB, statm's resident pages).
fn resident() -> Result<(u64, u64, u64), String> {
    let status = read_text(c"/proc/self/status")?;
    let statm = read_text(c"/proc/self/statm")?;
    let statm_rss = statm.split_whitespace().nth(1).and_then(|f| f.parse().ok());
    let statm_rss = statm_rss.ok_or_else(|| format!("/proc/self/statm: {statm:?}"))?;
    Ok((field(&status, "VmRSS")?, field(&status, "RssAnon")?, statm_rss))
}

/// Touching 64 pages adds 64 pages (256 kB) to VmRSS, RssAnon and statm's
/// resident count, and VmSize by the mapping; munmap takes them away, and
/// VmHWM and VmPeak keep the highest figures.
pub fn memory_follows_pages(_: &Context) -> TestResult {
    const PAGES: usize = 64;
    // Warm up the paths the reads take, so that they add no pages later.
    resident()?;
    let region = Region::anon(PAGES, RW, MapFlags::PRIVATE)?;
    let size_before = field(&read_text(c"/proc/self/status")?, "VmSize")?;
    let before = resident()?;
    region.fill(0, PAGES * PAGE_SIZE, 7);
    let touched = resident()?;
    let kb = (PAGES * PAGE_SIZE / 1024) as u64;
    let grew = (touched.0 - before.0, touched.1 - before.1, touched.2 - before.2);
    // A read may fault in a stack or heap page of its own: up to 4 more.
    ensure!(
        (kb..=kb + 16).contains(&grew.0) && (kb..=kb + 16).contains(&grew.1) && (64..=68).contains(&grew.2),
        "touching {PAGES} pages grew (VmRSS kB, RssAnon kB, statm pages) by {grew:?}"
    );
    // SAFETY: nothing touches the region after this.
    unsafe { aspen_sys::mem::munmap(region.addr, region.len) }.ctx("munmap")?;
    let after = resident()?;
    ensure!(
        touched.0 - after.0 >= kb && touched.2 - after.2 >= PAGES as u64,
        "munmap of {PAGES} touched pages: {touched:?} -> {after:?}"
    );
    let status = read_text(c"/proc/self/status")?;
    let size_after = field(&status, "VmSize")?;
    ensure!(size_before - size_after == kb, "VmSize {size_before} kB -> {size_after} kB after unmapping {kb} kB");
    let (peak, peak_size) = (field(&status, "VmHWM")?, field(&status, "VmPeak")?);
    ensure!(peak >= touched.0, "VmHWM {peak} kB after munmap, VmRSS was {} kB", touched.0);
    ensure!(peak_size >= size_before, "VmPeak {peak_size} kB after munmap, VmSize was {size_before} kB");
    Ok(())
}

static RELEASE: AtomicU32 = AtomicU32::new(0);

extern "C" fn wait_for_release(_: usize) {
    while RELEASE.load(SeqCst) == 0 {
        let _ = th::futex_wait(&RELEASE, 0, None);
    }
}

fn readlink(path: &core::ffi::CStr) -> Result<String, Errno> {
    let mut buf = [0u8; 64];
    // SAFETY: the kernel writes at most 64 bytes into `buf`.
    let n = Errno::result(unsafe {
        syscall4(Sysno::Readlinkat.number(), -100isize as usize, path.as_ptr() as usize, buf.as_mut_ptr() as usize, 64)
    })?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// `/proc/self` is a link to the caller's pid, `thread-self` to its
/// thread; `Threads` and `num_threads` count threads as they come and go,
/// and `task/` lists them.
pub fn self_and_threads(_: &Context) -> TestResult {
    let pid = process::getpid();
    ensure!(readlink(c"/proc/self") == Ok(format!("{pid}")), "readlink /proc/self: {:?}", readlink(c"/proc/self"));
    let thread_self = readlink(c"/proc/thread-self");
    ensure!(thread_self == Ok(format!("{pid}/task/{pid}")), "readlink /proc/thread-self: {thread_self:?}");
    let mine = read_text(&alloc::ffi::CString::new(format!("/proc/{pid}/stat")).unwrap())?;
    ensure!(mine.starts_with(&format!("{pid} (")), "/proc/{pid}/stat starts {mine:?}");
    ensure!(field(&read_text(c"/proc/self/status")?, "Threads")? == 1, "one thread to start with");
    RELEASE.store(0, SeqCst);
    let threads = [spawn_thread(wait_for_release, 0).ctx("spawn")?, spawn_thread(wait_for_release, 0).ctx("spawn")?];
    let status = read_text(c"/proc/self/status")?;
    let num_threads = self_stat(20)?;
    let tid = threads[1].tid();
    let task_dir = read_text(&alloc::ffi::CString::new(format!("/proc/self/task/{tid}/stat")).unwrap());
    RELEASE.store(1, SeqCst);
    let _ = th::futex_wake(&RELEASE, 2);
    for thread in threads {
        thread.join().ctx("join")?;
    }
    ensure!(
        field(&status, "Threads")? == 3 && num_threads == 3,
        "3 threads: Threads {status:?}, num_threads {num_threads}"
    );
    let task_stat = task_dir?;
    ensure!(task_stat.starts_with(&format!("{} (", tid)), "/proc/self/task/{tid}/stat: {task_stat:?}");
    // A joined thread may still be ending (Linux clears its tid word
    // before it is gone): give it up to a second.
    let mut threads_now = 0;
    for _ in 0..100 {
        threads_now = field(&read_text(c"/proc/self/status")?, "Threads")?;
        if threads_now == 1 {
            return Ok(());
        }
        aspen_sys::time::sleep_ms(10).ctx("sleep")?;
    }
    Err(format!("{threads_now} threads a second after the joins"))
}

fn boottime_ns() -> Result<u64, String> {
    let ts = clock_gettime(ClockId::Boottime as i32).ctx("clock_gettime(CLOCK_BOOTTIME)")?;
    Ok(ts.tv_sec as u64 * NANOS_PER_SECOND + ts.tv_nsec as u64)
}

/// The 1-minute load average in hundredths and the running count of
/// `/proc/loadavg`.
fn loadavg() -> Result<(u64, u64), String> {
    let text = read_text(c"/proc/loadavg")?;
    let mut words = text.split_whitespace();
    let one = words
        .next()
        .and_then(|w| w.split_once('.'))
        .and_then(|(i, f)| Some(i.parse::<u64>().ok()? * 100 + f.parse::<u64>().ok()?));
    let running = words.nth(2).and_then(|w| w.split_once('/')).and_then(|(r, _)| r.parse().ok());
    one.zip(running).ok_or_else(|| format!("/proc/loadavg: {text:?}"))
}

/// Spins at EL0 for `ns` nanoseconds of boot time.
fn spin_for(ns: u64) -> Result<(), String> {
    let end = boottime_ns()? + ns;
    let mut x = 1u64;
    while boottime_ns()? < end {
        for _ in 0..100_000 {
            x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    Ok(())
}

/// Two children and this process spin for 5.2 s (more than one 5-second
/// load sample): the 1-minute load average rises, `/proc/loadavg` and
/// `/proc/stat` count the runnable tasks, and this process's `utime`
/// (field 14) grows by most of the time. Then 300 ms of system calls grow
/// its `stime` (field 15).
pub fn cpu_time_and_load(_: &Context) -> TestResult {
    let (load_before, _) = loadavg()?;
    let children = [spawn(|| spin_for(5_400_000_000))?, spawn(|| spin_for(5_400_000_000))?];
    let utime_before = self_stat(14)?;
    spin_for(5_200_000_000)?;
    let utime = self_stat(14)? - utime_before;
    let (load_after, running) = loadavg()?;
    let procs_running = field(&read_text(c"/proc/stat")?.replace(' ', ":"), "procs_running")?;
    for child in children {
        join(child, "spinner")?;
    }
    // Three tasks share the CPU: a third of 520 ticks, less the switches.
    ensure!(utime >= 100, "utime grew by {utime} ticks in 5.2 s of spinning with 2 others");
    ensure!(load_after > load_before, "loadavg 1-min went from {load_before} to {load_after} hundredths");
    ensure!(running >= 3 && procs_running >= 3, "runnable: loadavg {running}, /proc/stat {procs_running}");

    let stime_before = self_stat(15)?;
    let end = boottime_ns()? + 300_000_000;
    while boottime_ns()? < end {
        for _ in 0..200 {
            // SAFETY: no memory is involved.
            let _ = unsafe { syscall1(Sysno::Getppid.number(), 0) };
        }
    }
    let stime = self_stat(15)? - stime_before;
    ensure!(stime >= 3, "stime grew by {stime} ticks in 300 ms of system calls");
    Ok(())
}

/// `/proc/stat`'s `ctxt` grows across sleeps; `/proc/uptime` is
/// `CLOCK_BOOTTIME` and its idle time grows while everything sleeps;
/// `sysinfo` says what `/proc/meminfo` and `/proc/uptime` say.
pub fn system_figures(_: &Context) -> TestResult {
    let ctxt = |text: &str| field(&text.replace(' ', ":"), "ctxt");
    let before = ctxt(&read_text(c"/proc/stat")?)?;
    let idle_before = uptime()?.1;
    for _ in 0..5 {
        aspen_sys::time::sleep_ms(20).ctx("sleep")?;
    }
    let after = ctxt(&read_text(c"/proc/stat")?)?;
    ensure!(after >= before + 10, "5 sleeps counted {} switches", after - before);
    let boot = boottime_ns()? / 10_000_000;
    let (up, idle) = uptime()?;
    ensure!(up.abs_diff(boot) <= 2, "/proc/uptime {up} hundredths, CLOCK_BOOTTIME {boot}");
    ensure!(idle >= idle_before + 8, "100 ms of sleep added {} hundredths of idle time", idle - idle_before);

    let mut info = [0u8; 112];
    // SAFETY: the kernel writes one struct sysinfo (112 bytes) into `info`.
    Errno::result(unsafe { syscall1(Sysno::Sysinfo.number(), info.as_mut_ptr() as usize) }).ctx("sysinfo")?;
    let word = |at: usize| u64::from_le_bytes(info[at..at + 8].try_into().unwrap());
    let mem_unit = u64::from(u32::from_le_bytes(info[104..108].try_into().unwrap()));
    let meminfo = read_text(c"/proc/meminfo")?;
    let (total, free) = (field(&meminfo, "MemTotal")? * 1024, field(&meminfo, "MemFree")? * 1024);
    ensure!(word(32) * mem_unit == total, "sysinfo totalram {} x {mem_unit}, MemTotal {total}", word(32));
    ensure!(
        (word(40) * mem_unit).abs_diff(free) <= 1 << 20,
        "sysinfo freeram {} x {mem_unit}, MemFree {free}",
        word(40)
    );
    let (up, _) = uptime()?;
    ensure!(word(0).abs_diff(up.div_ceil(100)) <= 1, "sysinfo uptime {} s, /proc/uptime {up} hundredths", word(0));
    let procs = u16::from_le_bytes([info[80], info[81]]);
    ensure!(procs >= 2, "sysinfo counts {procs} threads");
    let fields = stat_fields(c"/proc/self/stat")?;
    ensure!(fields[0] == "R", "the reader is running: state {}", fields[0]);
    Ok(())
}

/// `/proc/uptime`'s two figures in hundredths of a second.
fn uptime() -> Result<(u64, u64), String> {
    let text = read_text(c"/proc/uptime")?;
    let hundredths = |w: &str| w.replace('.', "").parse::<u64>().ok();
    let mut words = text.split_whitespace();
    words
        .next()
        .and_then(hundredths)
        .zip(words.next().and_then(hundredths))
        .ok_or_else(|| format!("/proc/uptime: {text:?}"))
}

/// A reaped child's faults and CPU time reach its parent's `cminflt`
/// (field 11) and `cutime` (field 16).
pub fn children_figures(_: &Context) -> TestResult {
    const PAGES: usize = 32;
    let (cminflt, cutime) = (self_stat(11)?, self_stat(16)?);
    let child = spawn(|| {
        let region = Region::anon(PAGES, RW, MapFlags::PRIVATE)?;
        region.fill(0, PAGES * PAGE_SIZE, 1);
        spin_for(200_000_000)
    })?;
    join(child, "child")?;
    let (faults, time) = (self_stat(11)? - cminflt, self_stat(16)? - cutime);
    ensure!(faults >= PAGES as u64, "cminflt grew by {faults} after a child touched {PAGES} pages");
    ensure!(time >= 10, "cutime grew by {time} ticks after a child spun 200 ms");
    Ok(())
}

/// A CPU list as `/sys/devices/system/cpu` writes it (`0-3`, `0,2`) as a
/// mask.
fn cpu_list(path: &core::ffi::CStr) -> Result<u64, String> {
    let text = read_text(path)?;
    parse_cpu_list(text.strip_suffix('\n').ok_or_else(|| format!("{path:?}: {text:?}"))?)
}

/// A CPU list (`0-3`, `0,2`) as a mask.
fn parse_cpu_list(text: &str) -> Result<u64, String> {
    let bad = || format!("not a CPU list: {text:?}");
    let mut mask = 0u64;
    for run in text.split(',') {
        let (first, last) = run.split_once('-').unwrap_or((run, run));
        let (first, last): (u32, u32) = (first.parse().map_err(|_| bad())?, last.parse().map_err(|_| bad())?);
        ensure!(first <= last && last < 64, "{}", bad());
        mask |= (u64::MAX >> (63 - last)) & (u64::MAX << first);
    }
    Ok(mask)
}

/// `sched_getaffinity` or `sched_setaffinity` of the caller with an
/// 8-byte mask.
fn affinity(set: bool, mask: &mut u64) -> Result<usize, Errno> {
    let call = if set { Sysno::SchedSetaffinity } else { Sysno::SchedGetaffinity };
    // SAFETY: the kernel reads or writes at most 8 bytes at `mask`.
    Errno::result(unsafe { syscall4(call.number(), 0, 8, mask as *mut u64 as usize, 0) })
}

/// The online CPUs are the same set in `/sys/devices/system/cpu/online`,
/// `/proc/cpuinfo`'s `processor` lines, `/proc/stat`'s `cpuN` lines and
/// the caller's affinity mask, within `present` and `possible`; the mask
/// set is read back, also in `/proc/self/status`; a mask with no online
/// CPU is `EINVAL`. On Aspen, which the suites boot with
/// every core, online is all of present.
pub fn cpus_agree(ctx: &Context) -> TestResult {
    if ctx.linux {
        // Aspen always has /sys; a Linux init mounts it (ours does not).
        match fs::open(c"/sys/devices", OpenFlags::RDONLY, 0) {
            Ok(fd) => fs::close(fd).ctx("close")?,
            Err(_) => {
                let _ = aspen_sys::path::mkdirat(fs::AT_FDCWD, c"/sys", 0o555);
                fs::mount(c"sysfs", c"/sys", c"sysfs").ctx("mount sysfs")?;
            }
        }
    }
    let online = cpu_list(c"/sys/devices/system/cpu/online")?;
    let present = cpu_list(c"/sys/devices/system/cpu/present")?;
    let possible = cpu_list(c"/sys/devices/system/cpu/possible")?;
    ensure!(online & 1 == 1, "CPU 0 is not online: {online:#x}");
    ensure!(
        online & !present == 0 && present & !possible == 0,
        "online {online:#x}, present {present:#x}, possible {possible:#x}"
    );

    let cpuinfo = read_text(c"/proc/cpuinfo")?;
    let mut listed = 0u64;
    for line in cpuinfo.lines().filter(|line| line.starts_with("processor")) {
        let n: u32 =
            line.rsplit(' ').next().and_then(|n| n.parse().ok()).ok_or_else(|| format!("cpuinfo: {line:?}"))?;
        listed |= 1 << n;
    }
    ensure!(listed == online, "/proc/cpuinfo lists {listed:#x}, online {online:#x}");
    let stat = read_text(c"/proc/stat")?;
    let mut counted = 0u64;
    for line in stat.lines() {
        let Some(n) = line.strip_prefix("cpu").and_then(|rest| rest.split(' ').next()?.parse::<u32>().ok()) else {
            continue;
        };
        counted |= 1 << n;
    }
    ensure!(counted == online, "/proc/stat has cpuN lines for {counted:#x}, online {online:#x}");

    let mut mask = 0u64;
    ensure!(affinity(false, &mut mask) == Ok(8), "sched_getaffinity");
    ensure!(mask == online, "sched_getaffinity {mask:#x}, online {online:#x}");
    let mut offline_only = !possible;
    crate::harness::expect_errno("a mask of no online CPU", affinity(true, &mut offline_only), Errno::EINVAL)?;
    let mut first_and_last = 1u64 | 1 << (63 - online.leading_zeros());
    ensure!(affinity(true, &mut first_and_last) == Ok(0), "sched_setaffinity({first_and_last:#x})");
    ensure!(affinity(false, &mut mask) == Ok(8) && mask == first_and_last, "read back {mask:#x}");
    let status = read_text(c"/proc/self/status")?;
    let allowed = status.lines().find_map(|line| line.strip_prefix("Cpus_allowed_list:"));
    let allowed = parse_cpu_list(allowed.ok_or("no Cpus_allowed_list in /proc/self/status")?.trim())?;
    ensure!(allowed == first_and_last, "Cpus_allowed_list {allowed:#x}, the mask set {first_and_last:#x}");
    if !ctx.linux {
        ensure!(online == present, "Aspen booted {online:#x} of {present:#x}");
    }
    let mut all = online;
    ensure!(affinity(true, &mut all) == Ok(0), "sched_setaffinity back to every CPU");
    Ok(())
}
