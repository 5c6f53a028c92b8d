//! Memory accounting: a task that exhausts memory is contained, and free
//! memory (/proc/meminfo MemFree, see [`crate::procfs::memfree`]) returns to
//! its baseline.

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
    let after = memfree().map_err(|e| alloc::format!("{e}"))?;
    ensure!(
        before.abs_diff(after) <= ctx.memfree_slack,
        "free memory {after} bytes after the hog was reaped, {before} before: {} apart, slack {}",
        before.abs_diff(after),
        ctx.memfree_slack
    );
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
