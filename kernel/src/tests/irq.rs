//! Tests of interrupts: the timer tick reaches the kernel through the GIC.

use crate::arch::{cpu, timer};
use crate::{check, kernel_test};

kernel_test!(
    fn timer_ticks_arrive_through_the_gic() -> TestResult {
        let start = crate::irq::ticks();
        let deadline = timer::ticks() + timer::frequency(); // one second
        cpu::enable_irqs();
        while crate::irq::ticks() < start + 5 && timer::ticks() < deadline {
            cpu::wait_for_interrupt();
        }
        cpu::disable_irqs();
        let seen = crate::irq::ticks() - start;
        check!(
            seen >= 5,
            "only {seen} timer interrupts in one second with {} ms slices",
            crate::task::sched::TIME_SLICE_MS
        );
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
