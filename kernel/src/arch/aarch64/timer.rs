//! The ARM generic timer: a monotonic clock and busy-wait delays.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0};
use core::time::Duration;
use tock_registers::interfaces::Readable;

/// Counter frequency in Hz, as the firmware (or QEMU) programmed it.
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get().max(1)
}

/// The physical counter, ordered after earlier instructions.
pub fn ticks() -> u64 {
    barrier::isb(barrier::SY);
    CNTPCT_EL0.get()
}

/// The physical counter without the barrier: the read may happen a few
/// instructions early, which CPU time accounting can afford on the
/// system-call path (an ISB drains the pipeline).
#[inline]
pub fn ticks_unordered() -> u64 {
    CNTPCT_EL0.get()
}

/// Time since the counter started (at reset).
pub fn uptime() -> Duration {
    let (t, f) = (ticks(), frequency());
    Duration::new(t / f, ((t % f) * 1_000_000_000 / f) as u32)
}

/// Busy-wait delays on the generic timer, for drivers written against
/// embedded-hal.
pub struct TimerDelay;

impl embedded_hal::delay::DelayNs for TimerDelay {
    fn delay_ns(&mut self, ns: u32) {
        let f = frequency();
        let wait = (u64::from(ns) * f).div_ceil(1_000_000_000);
        let start = ticks();
        while ticks().wrapping_sub(start) < wait {
            core::hint::spin_loop();
        }
    }
}

/// Fires the EL1 physical timer's interrupt once, `ticks` from now.
pub fn arm_oneshot(ticks: u64) {
    use aarch64_cpu::registers::{CNTP_CTL_EL0, CNTP_TVAL_EL0};
    use tock_registers::interfaces::Writeable;
    CNTP_TVAL_EL0.set(ticks.min(u64::from(u32::MAX >> 1)));
    CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::SET + CNTP_CTL_EL0::IMASK::CLEAR);
}

/// Stops the timer: no interrupt until it is armed again.
pub fn disarm() {
    use aarch64_cpu::registers::CNTP_CTL_EL0;
    use tock_registers::interfaces::Writeable;
    CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::CLEAR + CNTP_CTL_EL0::IMASK::SET);
}

/// Makes the timer fire at counter value `deadline` at the latest: brings
/// an armed one-shot forward when it would fire later (an interrupt due
/// sooner than `deadline` stays as it is).
pub fn fire_by(deadline: u64) {
    use aarch64_cpu::registers::{CNTP_CTL_EL0, CNTP_CVAL_EL0};
    use tock_registers::interfaces::Writeable;
    if !CNTP_CTL_EL0.is_set(CNTP_CTL_EL0::ENABLE) || CNTP_CVAL_EL0.get() > deadline {
        CNTP_CVAL_EL0.set(deadline);
        CNTP_CTL_EL0.write(CNTP_CTL_EL0::ENABLE::SET + CNTP_CTL_EL0::IMASK::CLEAR);
    }
}

/// Lets EL0 read the virtual counter and its frequency (CNTVCT_EL0,
/// CNTFRQ_EL0), as Linux does: programs time themselves without a
/// system call.
pub fn allow_user_counter() {
    use aarch64_cpu::registers::CNTKCTL_EL1;
    use tock_registers::interfaces::ReadWriteable;
    CNTKCTL_EL1.modify(CNTKCTL_EL1::EL0VCTEN::SET);
}
