//! Memory accounting: a task that exhausts memory is contained, and free
//! memory (/proc/meminfo MemFree, see [`crate::procfs::memfree`]) returns to
//! its baseline.

use alloc::string::String;
use core::sync::atomic::{AtomicU32, Ordering};

use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::process::{self, Fork, SIGBUS, SIGKILL, SIGSEGV};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{Context, Ctx, SuiteFailure, TestResult};
use crate::procfs::memfree;
use crate::tests::process::exec_self;

/// The hog maps memory in chunks of this size.
const HOG_CHUNK: usize = 4 * 1024 * 1024;
/// The hog gives up (a failure: memory never ran out) after this much.
const HOG_LIMIT: usize = 1 << 40;
/// Hog exit codes.
const HOG_GOT_ENOMEM: i32 = 3;
const HOG_OTHER_ERROR: i32 = 4;
const HOG_NEVER_RAN_OUT: i32 = 5;

/// Maps and touches memory until something gives: exits [`HOG_GOT_ENOMEM`]
/// when mmap says ENOMEM; the kernel may instead kill it at a fault.
fn hog() -> ! {
    let mut total = 0;
    while total < HOG_LIMIT {
        // SAFETY: no MAP_FIXED: new memory at an address the kernel picks.
        let chunk = match unsafe {
            mem::mmap(0, HOG_CHUNK, Prot::READ | Prot::WRITE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0)
        } {
            Ok(addr) => addr,
            Err(Errno::ENOMEM) => process::exit_group(HOG_GOT_ENOMEM),
            Err(_) => process::exit_group(HOG_OTHER_ERROR),
        };
        for page in (chunk..chunk + HOG_CHUNK).step_by(P) {
            // SAFETY: the page belongs to the fresh private mapping.
            unsafe { (page as *mut u8).write_volatile(1) };
        }
        total += HOG_CHUNK;
    }
    process::exit_group(HOG_NEVER_RAN_OUT)
}

/// A child exhausts memory. Acceptable ends: exit [`HOG_GOT_ENOMEM`] (mmap
/// refused), or killed by SIGBUS, SIGSEGV (the kernel could not back a fault)
/// or SIGKILL (an OOM killer, Linux's way). Afterwards fork + exec works and
/// free memory is back within the slack of what it was before the child.
pub fn oom_contained(ctx: &Context) -> TestResult {
    let before = memfree().map_err(|e| alloc::format!("{e}"))?;
    let status = match process::fork().ctx("fork")? {
        Fork::Child => hog(),
        Fork::Parent(pid) => process::wait4(pid, 0).ctx("wait4")?.1,
    };
    let contained =
        status.exit_code() == Some(HOG_GOT_ENOMEM) || matches!(status.signal(), Some(SIGBUS | SIGSEGV | SIGKILL));
    ensure!(
        contained,
        "the memory hog ended with {status}; expected exit={HOG_GOT_ENOMEM} (mmap ENOMEM) or signal 7, 9 or 11 \
         (exit {HOG_OTHER_ERROR}: another mmap error; exit {HOG_NEVER_RAN_OUT}: memory never ran out)"
    );
    let exec = exec_self(ctx, c"7")?;
    ensure!(exec.exit_code() == Some(7), "fork + exec after the hog: {exec}, expected exit=7");
    free_memory_back(ctx, before)
}

/// Free memory is back within the slack of `before`, the hog reaped.
fn free_memory_back(ctx: &Context, before: u64) -> TestResult {
    let after = memfree().map_err(|e| alloc::format!("{e}"))?;
    ensure!(
        before.abs_diff(after) <= ctx.memfree_slack,
        "free memory {after} bytes after the hog was reaped, {before} before: {} apart, slack {}",
        before.abs_diff(after),
        ctx.memfree_slack
    );
    Ok(())
}

/// What the locking hog maps: more than the machine has (it locks what it
/// can get).
const LOCKED_HOG_MAP: usize = 16 << 30;
/// What the bystander faults in once memory is gone.
const BYSTANDER_TOUCH: usize = 64 << 20;

/// Locks as much memory as it can get (mlock of a mapping larger than the
/// machine: populated until frames run out, then EAGAIN, the pages staying
/// locked), says so in `ready` (a shared page: with no memory left a pipe
/// could not take the byte), and waits to be killed.
fn lock_everything(ready: &AtomicU32) -> ! {
    let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::NORESERVE;
    // SAFETY: no MAP_FIXED: new memory at an address the kernel picks.
    let Ok(addr) = (unsafe { mem::mmap(0, LOCKED_HOG_MAP, Prot::READ | Prot::WRITE, flags, -1, 0) }) else {
        process::exit_group(HOG_OTHER_ERROR)
    };
    match mem::mlock(addr, LOCKED_HOG_MAP) {
        Ok(()) => process::exit_group(HOG_NEVER_RAN_OUT),
        Err(Errno::EAGAIN | Errno::ENOMEM) => {}
        Err(_) => process::exit_group(HOG_OTHER_ERROR),
    }
    ready.store(1, Ordering::Release);
    loop {
        let _ = aspen_sys::time::sleep_ms(1000);
    }
}

/// A child locks all the memory it can get; then this process, holding
/// little, faults in fresh pages. Its faults must succeed: the kernel
/// frees memory by killing the largest process, the child, with SIGKILL
/// (Linux may already kill it during its mlock). Before the OOM killer,
/// the thread that faulted got SIGBUS, whoever held the memory.
pub fn oom_kills_the_largest(ctx: &Context) -> TestResult {
    let before = memfree().map_err(|e| alloc::format!("{e}"))?;
    let shared = MapFlags::SHARED | MapFlags::ANONYMOUS;
    // SAFETY: no MAP_FIXED: a fresh shared page.
    let page = unsafe { mem::mmap(0, P, Prot::READ | Prot::WRITE, shared, -1, 0) }.ctx("mmap shared")?;
    // SAFETY: the page is mapped, aligned and lives until the munmap below;
    // both processes use it only through atomics.
    let ready = unsafe { &*(page as *const AtomicU32) };
    ready.store(0, Ordering::Release);
    let hog = match process::fork().ctx("fork")? {
        Fork::Child => lock_everything(ready),
        Fork::Parent(pid) => pid,
    };
    // Until the child has locked what it could, or died trying (Linux).
    let mut hog_status = None;
    while ready.load(Ordering::Acquire) == 0 && hog_status.is_none() {
        let _ = aspen_sys::time::sleep_ms(20);
        let (pid, status) = process::wait4(hog, process::WNOHANG).ctx("wait4")?;
        hog_status = (pid == hog).then_some(status);
    }
    // SAFETY: no MAP_FIXED: new memory at an address the kernel picks.
    let addr = unsafe {
        mem::mmap(0, BYSTANDER_TOUCH, Prot::READ | Prot::WRITE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0)
    }
    .ctx("mmap")?;
    for page in (addr..addr + BYSTANDER_TOUCH).step_by(P) {
        // SAFETY: the page belongs to the fresh private mapping.
        unsafe { (page as *mut u8).write_volatile(1) };
    }
    // SAFETY: ours, unused from here on.
    unsafe { mem::munmap(addr, BYSTANDER_TOUCH) }.ctx("munmap")?;
    // SAFETY: the child is gone or killed; nothing else uses the page.
    unsafe { mem::munmap(page, P) }.ctx("munmap shared")?;
    let status = match hog_status {
        Some(status) => status,
        None => process::wait4(hog, 0).ctx("wait4")?.1,
    };
    ensure!(status.signal() == Some(SIGKILL), "the locking hog ended with {status}, expected signal 9");
    free_memory_back(ctx, before)
}

/// The `Cached:` line of /proc/meminfo, in kB.
fn cached_kb() -> Result<u64, String> {
    let mut buf = [0u8; 4096];
    let n = aspen_sys::fs::read_file(c"/proc/meminfo", &mut buf).ctx("read /proc/meminfo")?;
    buf[..n]
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"Cached:"))
        .and_then(aspen_sys::meminfo::leading_number)
        .ok_or_else(|| String::from("/proc/meminfo has no Cached: line"))
}

/// `echo 1 > /proc/sys/vm/drop_caches` frees the clean page cache of a file
/// just read (Cached falls by at least its size), the file reads back the
/// same, and values other than 1 to 4 are EINVAL, as Linux's.
pub fn drop_caches_frees_clean_page_cache(_: &Context) -> TestResult {
    let mut first = alloc::vec![0u8; 64 * 1024];
    aspen_sys::meminfo::write_drop_caches(b"1").ctx("drop_caches 1")?;
    let before = cached_kb()?;
    let n = aspen_sys::fs::read_file(c"/bin/busybox", &mut first).ctx("read /bin/busybox")?;
    let filled = cached_kb()?;
    ensure!(filled >= before + (n as u64) / 1024, "Cached {filled} kB after reading {n} bytes, {before} kB before");
    ensure!(aspen_sys::meminfo::write_drop_caches(b"1\n") == Ok(2), "drop_caches did not take \"1\\n\"");
    let dropped = cached_kb()?;
    ensure!(dropped + (n as u64) / 1024 <= filled, "Cached {dropped} kB after the drop, {filled} kB before it");
    let mut again = alloc::vec![0u8; 64 * 1024];
    let m = aspen_sys::fs::read_file(c"/bin/busybox", &mut again).ctx("read /bin/busybox again")?;
    ensure!(m == n && first == again, "the file reads back differently after the drop");
    for bad in [&b"0"[..], b"5", b"x"] {
        ensure!(
            aspen_sys::meminfo::write_drop_caches(bad) == Err(Errno::EINVAL),
            "drop_caches took {:?}, expected EINVAL",
            core::str::from_utf8(bad)
        );
    }
    Ok(())
}

/// Runs in the suite process after every other test: free memory is back at
/// the suite's baseline, within the slack.
pub fn memfree_baseline(ctx: &Context) -> Result<(), SuiteFailure> {
    let baseline = ctx.baseline.map_err(SuiteFailure::Meminfo)?;
    let now = memfree().map_err(SuiteFailure::Meminfo)?;
    if baseline.abs_diff(now) <= ctx.memfree_slack {
        Ok(())
    } else {
        Err(SuiteFailure::MemFreeDrift { baseline, now, slack: ctx.memfree_slack })
    }
}
