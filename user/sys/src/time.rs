//! Time: clock_gettime, nanosleep, and the generic timer's virtual counter,
//! which EL0 may read directly (Linux and Aspen set CNTKCTL_EL1.EL0VCTEN).

use core::arch::asm;
use core::mem::MaybeUninit;

use crate::raw::{syscall2, Sysno};
use crate::Errno;

pub use aspen_abi::syscall::{ClockId, Timespec, NANOS_PER_SECOND};

/// `CLOCK_MONOTONIC`: time since boot, never set back.
pub const CLOCK_MONOTONIC: i32 = ClockId::Monotonic as i32;

/// clock_gettime(2).
pub fn clock_gettime(clock: i32) -> Result<Timespec, Errno> {
    let mut ts = MaybeUninit::<Timespec>::uninit();
    // SAFETY: the kernel writes one struct timespec on success.
    Errno::result(unsafe { syscall2(Sysno::ClockGettime.number(), clock as usize, ts.as_mut_ptr() as usize) })?;
    // SAFETY: the call succeeded, so ts is initialised.
    Ok(unsafe { ts.assume_init() })
}

/// Sleeps for `duration` (no remaining time is reported).
pub fn nanosleep(duration: &Timespec) -> Result<(), Errno> {
    // SAFETY: the kernel only reads the request; rem is NULL.
    Errno::result(unsafe { syscall2(Sysno::Nanosleep.number(), duration as *const Timespec as usize, 0) }).map(drop)
}

/// Sleeps for `ms` milliseconds.
pub fn sleep_ms(ms: u64) -> Result<(), Errno> {
    nanosleep(&Timespec::from_nanos(ms * 1_000_000))
}

/// CNTVCT_EL0, the virtual counter (after an ISB, so it is not read early).
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading CNTVCT_EL0 has no side effects; EL0 access is enabled by the kernel.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// CNTFRQ_EL0, the counter's frequency in Hz.
pub fn counter_frequency() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects and is allowed at EL0.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}
