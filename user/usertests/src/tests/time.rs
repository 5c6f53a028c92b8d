//! Time: nanosleep sleeps at least as long as asked, by CLOCK_MONOTONIC and
//! by the EL0-readable counter; sched_yield returns 0; bad arguments EINVAL.

use aspen_sys::time::{self, Timespec, CLOCK_MONOTONIC, NANOS_PER_SECOND};
use aspen_sys::{process, Errno};

use crate::ensure;
use crate::harness::{expect_errno, Context, Ctx, TestResult};

const SLEEP_NANOS: u64 = 20_000_000;
/// A clock id Linux does not have.
const BAD_CLOCK: i32 = 1000;

pub fn sleep_and_clocks(_: &Context) -> TestResult {
    let freq = time::counter_frequency();
    ensure!(freq > 0, "CNTFRQ_EL0 is 0");
    let t0 = time::clock_gettime(CLOCK_MONOTONIC).ctx("clock_gettime(CLOCK_MONOTONIC)")?;
    let c0 = time::counter();
    time::nanosleep(&Timespec::from_nanos(SLEEP_NANOS)).ctx("nanosleep")?;
    let c1 = time::counter();
    let t1 = time::clock_gettime(CLOCK_MONOTONIC).ctx("clock_gettime(CLOCK_MONOTONIC)")?;
    ensure!(t0.tv_nsec >= 0 && (t0.tv_nsec as u64) < NANOS_PER_SECOND, "tv_nsec out of range: {t0:?}");
    let slept = t1.as_nanos().saturating_sub(t0.as_nanos());
    ensure!(slept >= SLEEP_NANOS, "CLOCK_MONOTONIC advanced {slept} ns over a {SLEEP_NANOS} ns sleep");
    let ticks = c1.wrapping_sub(c0);
    let counter_nanos = u128::from(ticks) * u128::from(NANOS_PER_SECOND) / u128::from(freq);
    ensure!(
        counter_nanos >= u128::from(SLEEP_NANOS),
        "CNTVCT_EL0 advanced {ticks} ticks ({counter_nanos} ns at {freq} Hz) over a {SLEEP_NANOS} ns sleep"
    );
    let t2 = time::clock_gettime(CLOCK_MONOTONIC).ctx("clock_gettime")?;
    ensure!(t2.as_nanos() >= t1.as_nanos(), "CLOCK_MONOTONIC went back: {t1:?} then {t2:?}");

    process::sched_yield().ctx("sched_yield")?;
    time::nanosleep(&Timespec { tv_sec: 0, tv_nsec: 0 }).ctx("nanosleep(0)")?;
    expect_errno(
        "nanosleep with tv_nsec = 10^9",
        time::nanosleep(&Timespec { tv_sec: 0, tv_nsec: 1_000_000_000 }),
        Errno::EINVAL,
    )?;
    expect_errno("nanosleep with tv_sec = -1", time::nanosleep(&Timespec { tv_sec: -1, tv_nsec: 0 }), Errno::EINVAL)?;
    expect_errno("clock_gettime of an unknown clock", time::clock_gettime(BAD_CLOCK), Errno::EINVAL)?;
    Ok(())
}
