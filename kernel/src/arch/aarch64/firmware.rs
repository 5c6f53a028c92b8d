//! Calls into firmware and the emulator: PSCI and Arm semihosting.

use core::sync::atomic::{AtomicU8, Ordering};

/// How PSCI calls reach the firmware, from the device tree's `/psci` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PsciConduit {
    None = 0,
    Hvc = 1,
    Smc = 2,
}

static PSCI_CONDUIT: AtomicU8 = AtomicU8::new(PsciConduit::None as u8);
static SEMIHOSTING: AtomicU8 = AtomicU8::new(0);

const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

pub fn set_psci_conduit(conduit: PsciConduit) {
    PSCI_CONDUIT.store(conduit as u8, Ordering::Relaxed);
}

pub fn psci_conduit() -> PsciConduit {
    match PSCI_CONDUIT.load(Ordering::Relaxed) {
        1 => PsciConduit::Hvc,
        2 => PsciConduit::Smc,
        _ => PsciConduit::None,
    }
}

/// Asks PSCI to power the system off. Returns only if there is no PSCI or
/// the firmware refused.
pub fn psci_system_off() {
    let function = PSCI_SYSTEM_OFF;
    match psci_conduit() {
        // SAFETY: SYSTEM_OFF takes no arguments and does not return on
        // success; on failure it only writes x0, which is declared clobbered.
        PsciConduit::Hvc => unsafe {
            core::arch::asm!("hvc #0", inout("x0") function => _, options(nostack));
        },
        // SAFETY: as above, through the secure monitor.
        PsciConduit::Smc => unsafe {
            core::arch::asm!("smc #0", inout("x0") function => _, options(nostack));
        },
        PsciConduit::None => {}
    }
}

/// Semihosting is used only when the kernel command line asks for it
/// (`semihosting`), because on real hardware `HLT` would stop the CPU.
pub fn enable_semihosting() {
    SEMIHOSTING.store(1, Ordering::Relaxed);
}

pub fn semihosting_enabled() -> bool {
    SEMIHOSTING.load(Ordering::Relaxed) != 0
}

/// Ends the emulator with `code` as its exit status (SYS_EXIT with
/// ADP_Stopped_ApplicationExit). Returns if semihosting is not enabled, or
/// if the command line asked for it but nothing answers (the `HLT` then
/// traps as an undefined instruction, which the probe catches).
pub fn semihosting_exit(code: u32) {
    if !semihosting_enabled() {
        return;
    }
    const SYS_EXIT: u64 = 0x18;
    const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, u64::from(code)];
    let result = super::probe::probe(|| {
        // SAFETY: the semihosting call reads the two-word parameter block,
        // which lives on this stack for the duration of the call.
        unsafe {
            core::arch::asm!("hlt #0xf000", inout("x0") SYS_EXIT => _, in("x1") block.as_ptr(), options(nostack));
        }
    });
    if result.is_err() {
        crate::console::emergency_print(format_args!("aspen: semihosting asked for, but not available\n"));
    }
}
