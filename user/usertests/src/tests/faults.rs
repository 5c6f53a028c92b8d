//! MAP_POPULATE, mlock and mlockall leave no page faults for later, counted
//! with minflt + majflt of /proc/self/stat.
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
pub fn mlock(_: &Context) -> TestResult {
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
    Ok(())
}
