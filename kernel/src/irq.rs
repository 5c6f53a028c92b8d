//! Interrupts: the board's GIC, each core's one-shot timer, armed for the
//! earliest of the kernel's timers, sleepers and the end of its time slice
//! (none while a task runs alone or the core idles), the console UART's
//! receive interrupt (device interrupts go to the boot core), and SGIs
//! between cores (`smp`). The timer and device handlers run under the big
//! kernel lock (taken one level deeper if the core holds it already); SGI
//! handlers without it.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Once;

use crate::arch::timer;
use crate::board::BOARD;
use crate::driver::gic::{Gic, SGI_COUNT};
use crate::memory::phys_to_virt;
use crate::smp::{self, Ipi};
use crate::task::bkl;

/// The EL1 physical timer's private interrupt (PPI 14 = INTID 30).
pub const TIMER_INTID: u32 = 30;

static GIC: Once<Gic> = Once::new();
static TICKS: AtomicU64 = AtomicU64::new(0);
/// Interrupts handled since boot, of every source.
static HANDLED: AtomicU64 = AtomicU64::new(0);

/// Starts the interrupt controller and the periodic tick. Interrupts stay
/// masked on this CPU until the caller unmasks them.
pub fn init() {
    // SAFETY: both GIC frames lie in the board's device window, which the
    // kernel's table maps as device memory for good.
    let gic = GIC.call_once(|| unsafe {
        Gic::new(phys_to_virt(BOARD.gicd_base).as_usize(), phys_to_virt(BOARD.gicc_base).as_usize())
    });
    gic.init();
    gic.enable(TIMER_INTID);
    gic.enable(BOARD.uart_intid);
    for ipi in Ipi::ALL {
        gic.enable(ipi as u32);
    }
    crate::smp::init_interrupts(gic);
    timer::allow_user_counter();
    timer::arm_oneshot(1);
    log::info!(
        "interrupts: GICv2 with {} lines; timer on demand, {} ms slices",
        gic.lines(),
        crate::task::sched::TIME_SLICE_MS
    );
}

/// Interrupts handled since boot (`intr` in `/proc/stat`).
pub fn count() -> u64 {
    HANDLED.load(Ordering::Relaxed)
}

/// Timer interrupts since `init`, of every core.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Handles every pending interrupt; called from the IRQ vector. Out of
/// line, so that system calls and faults do not pay for its stack frame.
#[inline(never)]
pub fn handle() {
    let Some(gic) = GIC.get() else { return };
    // What handlers allocate is not the interrupted task's to fail.
    let _section = crate::failslab::IrqSection::enter();
    while let Some(iar) = gic.acknowledge() {
        HANDLED.fetch_add(1, Ordering::Relaxed);
        let intid = iar & 0x3ff;
        if intid == TIMER_INTID {
            // It is armed again below; disarmed, it stops asking.
            timer::disarm();
        }
        // The end of the interrupt before the handler: a handler that waits
        // for the big kernel lock must let the SGI that says its turn has
        // come be signalled (an interrupt still active would mask it).
        gic.end_of_interrupt(iar);
        match intid {
            sgi if sgi < SGI_COUNT => smp::on_ipi(sgi),
            TIMER_INTID => {
                smp::count_timer_irq();
                TICKS.fetch_add(1, Ordering::Relaxed);
                bkl::acquire();
                let now = timer::ticks();
                let next_timer = crate::task::timer::on_interrupt(now);
                let next = crate::task::sched::earliest(next_timer, crate::task::sched::on_timer(now));
                match next {
                    Some(next) => timer::arm_oneshot(next.saturating_sub(now).max(1)),
                    // Nothing is due: no tick until something arms the timer.
                    None => timer::disarm(),
                }
                bkl::release();
            }
            intid if intid == BOARD.uart_intid => {
                bkl::acquire();
                crate::tty::on_interrupt();
                bkl::release();
            }
            other => log::warn!("unexpected interrupt {other}"),
        }
    }
}
