//! Tests of interrupts: the timer's interrupt reaches the kernel through
//! the GIC.

use crate::arch::timer;
use crate::{check, kernel_test};

kernel_test!(
    fn timer_interrupts_arrive_through_the_gic_and_end_sleeps() -> TestResult {
        let start = crate::irq::ticks();
        let begun = timer::ticks();
        let millisecond = timer::frequency() / 1000;
        for _ in 0..5 {
            // Nothing else is due: each sleep arms the timer for itself.
            crate::task::sched::sleep_ticks(millisecond);
        }
        let seen = crate::irq::ticks() - start;
        let slept = timer::ticks() - begun;
        check!(seen >= 5, "only {seen} timer interrupts for 5 sleeps");
        check!(slept >= 5 * millisecond, "5 sleeps of 1 ms took {slept} counter ticks");
        Ok(())
    }
);

kernel_test!(
    fn embedded_hal_delays_wait_on_the_generic_timer() -> TestResult {
        use embedded_hal::delay::DelayNs;
        let start = timer::ticks();
        timer::TimerDelay.delay_ms(3);
        let waited = timer::ticks() - start;
        let asked = timer::frequency() * 3 / 1000;
        check!(waited >= asked, "waited {waited} ticks for {asked}");
        Ok(())
    }
);
