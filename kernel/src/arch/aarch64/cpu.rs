//! CPU control: halting, interrupt masking, identification.

use aarch64_cpu::asm;
use aarch64_cpu::registers::{DAIF, ID_AA64ISAR0_EL1, ID_AA64ISAR1_EL1, ID_AA64PFR0_EL1, MPIDR_EL1};
use aspen_abi::hwcap::IdRegisters;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

/// Stops this CPU for good, in a low-power wait.
pub fn halt() -> ! {
    loop {
        DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Masked + DAIF::F::Masked);
        asm::wfe();
    }
}

/// This CPU's number (MPIDR affinity level 0).
pub fn cpu_id() -> usize {
    (MPIDR_EL1.get() & 0xff) as usize
}

/// The ID registers that say which instructions EL0 may use
/// (`AT_HWCAP`, and the features `/proc/cpuinfo` lists).
pub fn id_registers() -> IdRegisters {
    IdRegisters { pfr0: ID_AA64PFR0_EL1.get(), isar0: ID_AA64ISAR0_EL1.get(), isar1: ID_AA64ISAR1_EL1.get() }
}

/// Unmasks IRQs on this CPU.
pub fn enable_irqs() {
    DAIF.modify(DAIF::I::Unmasked);
}

/// Masks IRQs on this CPU and says whether they were unmasked before.
pub fn disable_irqs() -> bool {
    let was_enabled = !DAIF.is_set(DAIF::I);
    DAIF.modify(DAIF::I::Masked);
    was_enabled
}

/// Waits for an interrupt. With IRQs masked it still wakes when one is
/// pending, without taking it.
pub fn wait_for_interrupt() {
    asm::wfi();
}

/// Unmasks IRQs long enough to take every pending one, then masks them
/// again.
pub fn take_pending_irqs() {
    enable_irqs();
    // The unmasking takes effect, and a pending interrupt is taken, here.
    asm::barrier::isb(asm::barrier::SY);
    disable_irqs();
}

/// Whether an IRQ is pending at this CPU, masked or not (ISR_EL1.I): one
/// register read, for the pause points of long kernel passes.
#[inline(always)]
pub fn irq_pending() -> bool {
    let isr: u64;
    // SAFETY: reading ISR_EL1 has no side effect.
    unsafe { core::arch::asm!("mrs {}, isr_el1", out(reg) isr, options(nomem, nostack, preserves_flags)) };
    isr & (1 << 7) != 0
}

/// Puts the IRQ mask back as `disable_irqs` found it.
pub fn restore_irqs(were_enabled: bool) {
    if were_enabled {
        enable_irqs();
    }
}

/// This CPU's identification (`MIDR_EL1`: implementer, variant, part,
/// revision), for `/proc/cpuinfo`.
pub fn midr() -> u64 {
    aarch64_cpu::registers::MIDR_EL1.get()
}
