//! MAP_POPULATE, mlock and mlockall leave no page faults for later, counted
//! with minflt + majflt of /proc/self/stat: after mlockall(MCL_CURRENT |
//! MCL_FUTURE) not the stack, not the heap grown by brk, not a new mapping
//! (a real-time task's guarantee).
//!
//! Each test first touches a plain mapping of the same size with the same code
//! (a sanity check that the counter counts, and a warm-up: after fork a child
//! may fault on its own code and stack pages once), then expects exactly zero
//! new faults when touching the populated or locked mapping.

use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, MlockallFlags, Prot};

use alloc::string::String;

use crate::ensure;
use crate::harness::{Context, Ctx, Region, TestResult};
use crate::procfs::fault_count;

const PAGES: usize = 16;
const RW: Prot = Prot::READ.union(Prot::WRITE);

/// Faults counted while reading (`write` false) or writing one byte of every
/// page of `r`.
#[inline(never)]
fn faults_touching(r: &Region, write: bool) -> Result<u64, String> {
    let before = fault_count()?;
    for i in 0..r.len / P {
        if write {
            r.write(i * P + 8, i as u8 | 1);
        } else {
            r.read(i * P + 8);
        }
    }
    let after = fault_count()?;
    Ok(after.saturating_sub(before))
}

/// Reads one plain mapping and writes another: at least one fault per page
/// must be counted each time.
fn warm_up() -> TestResult {
    for write in [false, true] {
        let plain = Region::anon(PAGES, RW, MapFlags::PRIVATE)?;
        let faults = faults_touching(&plain, write)?;
        ensure!(
            faults >= PAGES as u64,
            "{} {PAGES} fresh pages counted {faults} faults: /proc/self/stat minflt+majflt must count page faults",
            if write { "writing" } else { "reading" }
        );
    }
    Ok(())
}

/// MAP_POPULATE: no faults writing a private mapping, reading a shared one,
/// and (on Aspen) writing a shared one.
pub fn populate(ctx: &Context) -> TestResult {
    warm_up()?;
    let private = Region::anon(PAGES, RW, MapFlags::PRIVATE | MapFlags::POPULATE)?;
    let faults = faults_touching(&private, true)?;
    ensure!(faults == 0, "{faults} faults writing a MAP_POPULATE private mapping");
    let shared = Region::anon(PAGES, RW, MapFlags::SHARED | MapFlags::POPULATE)?;
    let faults = faults_touching(&shared, false)?;
    ensure!(faults == 0, "{faults} faults reading a MAP_POPULATE shared mapping");
    let faults = faults_touching(&shared, true)?;
    // Linux populates shared memory as if read: clean PTEs, which a CPU without
    // hardware dirty-bit management (Cortex-A72) faults on at the first write.
    ensure!(faults == 0 || ctx.linux, "{faults} faults writing a MAP_POPULATE shared mapping");
    Ok(())
}

/// mlock and mlockall(MCL_CURRENT | MCL_FUTURE): no faults writing locked
/// private memory.
pub fn mlock(ctx: &Context) -> TestResult {
    warm_up()?;
    let locked = Region::anon(PAGES, RW, MapFlags::PRIVATE)?;
    mem::mlock(locked.addr, locked.len).ctx("mlock")?;
    let faults = faults_touching(&locked, true)?;
    ensure!(faults == 0, "{faults} faults writing an mlocked mapping");
    mem::munlock(locked.addr, locked.len).ctx("munlock")?;

    mem::mlockall(MlockallFlags::CURRENT | MlockallFlags::FUTURE).ctx("mlockall(MCL_CURRENT | MCL_FUTURE)")?;
    let future = Region::anon(PAGES, RW, MapFlags::PRIVATE)?;
    let faults = faults_touching(&future, true)?;
    ensure!(faults == 0, "{faults} faults writing a mapping made after mlockall(MCL_FUTURE)");

    let before = fault_count()?;
    let depth = core::hint::black_box(STACK_PAGES);
    core::hint::black_box(deep_stack(depth));
    let faults = fault_count()?.saturating_sub(before);
    // Linux locks the stack only as far as it reaches at the call (it grows
    // by faults); Aspen's stack is one area of RLIMIT_STACK, all locked.
    ensure!(faults == 0 || ctx.linux, "{faults} faults using {STACK_PAGES} pages of stack after mlockall");

    // SAFETY: brk(0) only asks where the break is.
    let start = unsafe { mem::brk(0) };
    // SAFETY: the heap grows into memory nothing else uses.
    let end = unsafe { mem::brk(start + PAGES * P) };
    ensure!(end == start + PAGES * P, "brk did not grow the heap ({start:#x} -> {end:#x})");
    let before = fault_count()?;
    for page in 0..PAGES {
        // SAFETY: inside the heap just grown, which nothing else uses.
        unsafe { ((start + page * P + 8) as *mut u8).write_volatile(1) };
    }
    let faults = fault_count()?.saturating_sub(before);
    // SAFETY: gives back what this test took.
    unsafe { mem::brk(start) };
    ensure!(faults == 0, "{faults} faults writing heap grown by brk after mlockall(MCL_FUTURE)");
    Ok(())
}

/// Stack pages [`deep_stack`] uses: 256 KiB, well inside the stack
/// mlockall locked (the whole `RLIMIT_STACK` area).
const STACK_PAGES: usize = 64;

/// Uses `pages` pages of stack, one frame of a page each, writing each.
#[inline(never)]
fn deep_stack(pages: usize) -> u8 {
    let mut frame = [0u8; P];
    frame[8] = pages as u8;
    let frame = core::hint::black_box(&mut frame);
    if pages <= 1 {
        return frame[8];
    }
    deep_stack(pages - 1).wrapping_add(frame[8])
}
