//! Long memory calls are preemptible: a SCHED_FIFO process woken by its
//! timer while another process unmaps a large region runs before that
//! munmap returns. The unmap frees its frames a few dozen at a time, so
//! what the woken process sees of free memory (MemFree, read without the
//! other process's address-space lock) lies part way between the values
//! before and after the unmap. A kernel that finishes the call before
//! switching shows only those two.

use aspen_sys::mem::{self, MapFlags, Prot, PAGE_SIZE};
use aspen_sys::thread as th;
use aspen_sys::time::{self, Timespec};

use crate::ensure;
use crate::harness::{join, spawn, Context, Ctx, Region, Stage, TestResult};
use crate::procfs::memfree;

/// The region the other process unmaps (16,384 pages).
const REGION: usize = 64 << 20;
/// The woken process's period: many wake-ups fall inside the unmap.
const PERIOD_NS: i64 = 100_000;
/// Stages of the unmapping process.
const TOUCHED: u32 = 1;
const UNMAPPED: u32 = 2;

/// Free memory in KiB (fits the shared words).
fn free_kib() -> Result<u32, alloc::string::String> {
    memfree().map(|bytes| (bytes / 1024) as u32).map_err(|e| alloc::format!("{e}"))
}

/// The unmapping process: fills the region, notes free memory, unmaps it
/// in one call, notes free memory again.
fn unmap_large(shared: &Region) -> TestResult {
    let (stage, before, after) = (Stage::at(shared, 0), Stage::at(shared, 4), Stage::at(shared, 8));
    // SAFETY: no MAP_FIXED: fresh private memory at an address the kernel picks.
    let at = unsafe { mem::mmap(0, REGION, Prot::READ | Prot::WRITE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0) }
        .ctx("mmap")?;
    for page in (at..at + REGION).step_by(PAGE_SIZE) {
        // SAFETY: the page belongs to the fresh private mapping.
        unsafe { (page as *mut u8).write_volatile(1) };
    }
    before.set(free_kib()?);
    stage.set(TOUCHED);
    // SAFETY: nothing uses the region any more.
    unsafe { mem::munmap(at, REGION) }.ctx("munmap")?;
    after.set(free_kib()?);
    stage.set(UNMAPPED);
    Ok(())
}

/// A SCHED_FIFO process sampling free memory every 100 µs sees the other
/// process's munmap of 64 MiB part done.
pub fn fifo_wakeup_preempts_munmap(_: &Context) -> TestResult {
    let shared = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::SHARED)?;
    let pid = spawn(|| unmap_large(&shared))?;
    th::sched_setscheduler(0, th::SCHED_FIFO, 10).ctx("sched_setscheduler(SCHED_FIFO)")?;
    let stage = Stage::at(&shared, 0);
    let period = Timespec { tv_sec: 0, tv_nsec: PERIOD_NS };
    let mut samples = alloc::vec::Vec::new();
    let start = time::counter();
    while stage.get() < UNMAPPED {
        if (time::counter() - start) / time::counter_frequency().max(1) > 60 {
            return Err("the unmapping process did not finish within a minute".into());
        }
        time::nanosleep(&period).ctx("nanosleep")?;
        if stage.get() == TOUCHED {
            samples.push(free_kib()?);
        }
    }
    th::sched_setscheduler(0, th::SCHED_OTHER, 0).ctx("sched_setscheduler(SCHED_OTHER)")?;
    join(pid, "the unmapping process")?;
    let (before, after) = (Stage::at(&shared, 4).get(), Stage::at(&shared, 8).get());
    let margin = (REGION / 1024 / 16) as u32;
    ensure!(
        after >= before + 3 * margin,
        "the unmap freed {} KiB of {} KiB",
        after.saturating_sub(before),
        REGION / 1024
    );
    let part_way = samples.iter().any(|&kib| kib > before + margin && kib + margin < after);
    ensure!(
        part_way,
        "no wake-up ran while munmap was under way: free KiB before {before}, after {after}, seen {:?}",
        &samples[..samples.len().min(24)]
    );
    Ok(())
}
