//! Long memory calls are preemptible: a SCHED_FIFO process woken by its
//! timer every 100 µs while another process unmaps a large region runs
//! again and again while that munmap is under way. A kernel that finishes
//! the call before switching lets it run only as the call returns (before
//! the caller reads the clock: at the very end of the call's time). Both
//! run on one core, so that the wake-up must preempt the call there (on
//! two cores it would only wait for the call's next pause point to let it
//! into the kernel, and a busy host that leaves the woken core's vCPU
//! unscheduled would then read as a late wake-up).

use aspen_sys::mem::{self, MapFlags, Prot, PAGE_SIZE};
use aspen_sys::thread as th;
use aspen_sys::time::{self, Timespec};

use crate::ensure;
use crate::harness::{join, spawn, Context, Ctx, Region, Stage, TestResult};

/// The region the other process unmaps (16,384 pages: milliseconds).
const REGION: usize = 64 << 20;
/// The woken process's period.
const PERIOD_NS: i64 = 100_000;
/// Stages of the unmapping process.
const TOUCHED: u32 = 1;
const UNMAPPED: u32 = 2;

/// Writes the counter at byte `offset` of `shared` (two words).
fn put_counter(shared: &Region, offset: usize, value: u64) {
    Stage::at(shared, offset).set(value as u32);
    Stage::at(shared, offset + 4).set((value >> 32) as u32);
}

fn get_counter(shared: &Region, offset: usize) -> u64 {
    u64::from(Stage::at(shared, offset).get()) | u64::from(Stage::at(shared, offset + 4).get()) << 32
}

/// The unmapping process: fills the region, then unmaps it in one call,
/// noting the counter just before and just after.
fn unmap_large(shared: &Region) -> TestResult {
    // SAFETY: no MAP_FIXED: fresh private memory at an address the kernel picks.
    let at = unsafe { mem::mmap(0, REGION, Prot::READ | Prot::WRITE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0) }
        .ctx("mmap")?;
    for page in (at..at + REGION).step_by(PAGE_SIZE) {
        // SAFETY: the page belongs to the fresh private mapping.
        unsafe { (page as *mut u8).write_volatile(1) };
    }
    Stage::at(shared, 0).set(TOUCHED);
    put_counter(shared, 8, time::counter());
    // SAFETY: nothing uses the region any more.
    unsafe { mem::munmap(at, REGION) }.ctx("munmap")?;
    put_counter(shared, 16, time::counter());
    Stage::at(shared, 0).set(UNMAPPED);
    Ok(())
}

/// A SCHED_FIFO process that sleeps 100 µs at a time wakes several times
/// while another process's munmap of 64 MiB is under way.
pub fn fifo_wakeup_preempts_munmap(_: &Context) -> TestResult {
    // The child inherits the mask (the test runs in a process of its own).
    super::smp::pin(1).ctx("sched_setaffinity(core 0)")?;
    let shared = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::SHARED)?;
    let pid = spawn(|| unmap_large(&shared))?;
    th::sched_setscheduler(0, th::SCHED_FIFO, 10).ctx("sched_setscheduler(SCHED_FIFO)")?;
    let stage = Stage::at(&shared, 0);
    let period = Timespec { tv_sec: 0, tv_nsec: PERIOD_NS };
    let mut wakes = alloc::vec::Vec::new();
    let start = time::counter();
    let frequency = time::counter_frequency().max(1);
    while stage.get() < UNMAPPED {
        if (time::counter() - start) / frequency > 60 {
            return Err("the unmapping process did not finish within a minute".into());
        }
        time::nanosleep(&period).ctx("nanosleep")?;
        if stage.get() == TOUCHED {
            wakes.push(time::counter());
        }
    }
    th::sched_setscheduler(0, th::SCHED_OTHER, 0).ctx("sched_setscheduler(SCHED_OTHER)")?;
    join(pid, "the unmapping process")?;
    let (began, ended) = (get_counter(&shared, 8), get_counter(&shared, 16));
    // The first three quarters of the call: a wake-up as it returns (or
    // one the host delayed a little past it) does not count.
    let early = began + (ended - began) * 3 / 4;
    let during = wakes.iter().filter(|&&t| t > began && t < early).count();
    let micros = (ended - began) * 1_000_000 / frequency;
    ensure!(
        micros >= 1000,
        "the munmap took {micros} µs: too short to tell (expected milliseconds for {} MiB)",
        REGION >> 20
    );
    ensure!(
        during >= 2,
        "woken {during} times in the first three quarters of a munmap of {micros} µs, every 100 µs asked"
    );
    Ok(())
}
