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
const PSCI_CPU_ON: u64 = 0xC400_0003;
const PSCI_AFFINITY_INFO: u64 = 0xC400_0004;

/// A PSCI call's failure: its negative return code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    /// The board has no PSCI (no `/psci` node).
    NoConduit,
    NotSupported,
    InvalidParameters,
    Denied,
    AlreadyOn,
    OnPending,
    InternalFailure,
    /// Any other negative code.
    Other(i64),
}

impl PsciError {
    fn from_code(code: i64) -> Self {
        match code {
            -1 => Self::NotSupported,
            -2 => Self::InvalidParameters,
            -3 => Self::Denied,
            -4 => Self::AlreadyOn,
            -5 => Self::OnPending,
            -6 => Self::InternalFailure,
            other => Self::Other(other),
        }
    }
}

/// Calls PSCI function `function` with three arguments; its result, or
/// the error its negative result names.
fn psci_call(function: u64, a1: u64, a2: u64, a3: u64) -> Result<u64, PsciError> {
    let result: u64;
    match psci_conduit() {
        // SAFETY: the SMC calling convention: the firmware reads x0-x3,
        // returns in x0 and may clobber x1-x17, which are declared so.
        PsciConduit::Hvc => unsafe {
            core::arch::asm!("hvc #0", inout("x0") function => result, inout("x1") a1 => _, inout("x2") a2 => _,
                inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _, options(nostack));
        },
        // SAFETY: as above, through the secure monitor.
        PsciConduit::Smc => unsafe {
            core::arch::asm!("smc #0", inout("x0") function => result, inout("x1") a1 => _, inout("x2") a2 => _,
                inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _, options(nostack));
        },
        PsciConduit::None => return Err(PsciError::NoConduit),
    }
    match result as i64 {
        code if code < 0 => Err(PsciError::from_code(code)),
        _ => Ok(result),
    }
}

/// PSCI `CPU_ON`: powers up the core `mpidr`, which starts at physical
/// address `entry` with `context` in x0.
pub fn psci_cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    psci_call(PSCI_CPU_ON, mpidr, entry, context).map(|_| ())
}

/// PSCI `AFFINITY_INFO` for the core `mpidr`: whether the firmware knows
/// it (on, off or on the way); `InvalidParameters` for a core that is not
/// there.
pub fn psci_core_exists(mpidr: u64) -> Result<(), PsciError> {
    psci_call(PSCI_AFFINITY_INFO, mpidr, 0, 0).map(|_| ())
}

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
