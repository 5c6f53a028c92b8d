//! Exceptions taken to EL1: the trap frame the vectors save, the syndrome
//! (ESR) decoded into a [`Trap`] that says why the CPU left what it ran, and
//! the entry the vectors call, which hands the trap to the generic kernel
//! (`crate::trap`). What happens next (a system call, a page fault resolved,
//! a signal, a task switch) is decided there, not here.

use aarch64_cpu::registers::{ESR_EL1, FAR_EL1, VBAR_EL1};
use aspen_mm::aspace::FaultKind;
use core::fmt;
use tock_registers::interfaces::{Readable, Writeable};

use super::probe;

/// The interrupted context, as `exception.s` saves it.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub sp_el0: u64,
    pub elr: u64,
    pub spsr: u64,
}

impl TrapFrame {
    /// The address the interrupted code resumes at: for a synchronous
    /// exception, the instruction that took it (after it, for `SVC`).
    pub fn pc(&self) -> u64 {
        self.elr
    }
}

/// Which of the 16 vectors was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VectorKind(pub u64);

impl VectorKind {
    pub const CURRENT_SPX_SYNC: VectorKind = VectorKind(4);
    pub const CURRENT_SPX_IRQ: VectorKind = VectorKind(5);
    pub const LOWER_A64_SYNC: VectorKind = VectorKind(8);
    pub const LOWER_A64_IRQ: VectorKind = VectorKind(9);

    fn source(self) -> &'static str {
        match self.0 >> 2 {
            0 => "current EL with SP_EL0",
            1 => "current EL with SP_ELx",
            2 => "lower EL (AArch64)",
            _ => "lower EL (AArch32)",
        }
    }

    fn kind(self) -> &'static str {
        ["synchronous", "IRQ", "FIQ", "SError"][(self.0 & 3) as usize]
    }
}

/// A syndrome: ESR_EL1 with the fault address, decoded for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syndrome {
    pub esr: u64,
    pub far: u64,
}

impl Syndrome {
    pub fn read() -> Self {
        Self { esr: ESR_EL1.get(), far: FAR_EL1.get() }
    }

    pub fn exception_class(&self) -> u8 {
        ((self.esr >> 26) & 0x3f) as u8
    }

    pub fn iss(&self) -> u32 {
        (self.esr & 0x1ff_ffff) as u32
    }

    pub fn class_name(&self) -> &'static str {
        match self.exception_class() {
            0x00 => "Unknown reason",
            0x01 => "Trapped WFI/WFE",
            0x07 => "FP/SIMD access trapped",
            0x0e => "Illegal execution state",
            0x15 => "SVC from AArch64",
            0x18 => "Trapped MSR/MRS/system instruction",
            0x20 => "Instruction Abort from a lower EL",
            0x21 => "Instruction Abort from the same EL",
            0x22 => "PC alignment fault",
            0x24 => "Data Abort from a lower EL",
            0x25 => "Data Abort from the same EL",
            0x26 => "SP alignment fault",
            0x2c => "Trapped floating-point exception",
            0x2f => "SError",
            0x30 | 0x31 => "Breakpoint",
            0x32 | 0x33 => "Software step",
            0x34 | 0x35 => "Watchpoint",
            0x3c => "BRK instruction",
            _ => "Unrecognised exception class",
        }
    }

    /// For instruction and data aborts: true for those two classes.
    pub fn is_abort(&self) -> bool {
        matches!(self.exception_class(), 0x20 | 0x21 | 0x24 | 0x25)
    }

    /// For data aborts: the access was a write.
    pub fn is_write(&self) -> bool {
        matches!(self.exception_class(), 0x24 | 0x25) && self.iss() & (1 << 6) != 0
    }

    /// For aborts: the fault status code (DFSC/IFSC) decoded.
    pub fn fault_status(&self) -> FaultStatus {
        FaultStatus::from_code((self.iss() & 0x3f) as u8)
    }
}

/// The fault status code of an abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStatus {
    AddressSize { level: u8 },
    Translation { level: u8 },
    AccessFlag { level: u8 },
    Permission { level: u8 },
    SyncExternal,
    Alignment,
    TlbConflict,
    Other(u8),
}

impl FaultStatus {
    fn from_code(code: u8) -> Self {
        let level = code & 3;
        match code >> 2 {
            0b0000 => Self::AddressSize { level },
            0b0001 => Self::Translation { level },
            0b0010 => Self::AccessFlag { level },
            0b0011 => Self::Permission { level },
            _ => match code {
                0b01_0000 => Self::SyncExternal,
                0b10_0001 => Self::Alignment,
                0b11_0000 => Self::TlbConflict,
                other => Self::Other(other),
            },
        }
    }
}

impl fmt::Display for FaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddressSize { level } => write!(f, "address size fault, level {level}"),
            Self::Translation { level } => write!(f, "translation fault, level {level}"),
            Self::AccessFlag { level } => write!(f, "access flag fault, level {level}"),
            Self::Permission { level } => write!(f, "permission fault, level {level}"),
            Self::SyncExternal => f.write_str("synchronous external abort"),
            Self::Alignment => f.write_str("alignment fault"),
            Self::TlbConflict => f.write_str("TLB conflict abort"),
            Self::Other(code) => write!(f, "fault status {code:#04x}"),
        }
    }
}

impl fmt::Display for Syndrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  ESR_EL1 {:#010x}: EC {:#04x} {}, IL {}, ISS {:#09x}",
            self.esr,
            self.exception_class(),
            self.class_name(),
            (self.esr >> 25) & 1,
            self.iss()
        )?;
        if self.is_abort() {
            let access = match self.exception_class() {
                0x20 | 0x21 => "instruction fetch",
                _ if self.is_write() => "write",
                _ => "read",
            };
            writeln!(f, "  {access}: {}", self.fault_status())?;
        }
        writeln!(f, "  FAR_EL1 {:#018x}", self.far)
    }
}

/// A full report: what was taken, the syndrome, and the saved registers.
pub struct Report<'a> {
    pub kind: VectorKind,
    pub syndrome: Syndrome,
    pub frame: &'a TrapFrame,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} exception from {}", self.kind.kind(), self.kind.source())?;
        write!(f, "{}", self.syndrome)?;
        writeln!(
            f,
            "  ELR_EL1 {:#018x}  SPSR_EL1 {:#010x}  SP_EL0 {:#018x}",
            self.frame.elr, self.frame.spsr, self.frame.sp_el0
        )?;
        for (i, pair) in self.frame.x.chunks(2).enumerate() {
            let r = i * 2;
            match pair {
                [a, b] => writeln!(f, "  x{:<2} {:#018x}  x{:<2} {:#018x}", r, a, r + 1, b)?,
                [a] => writeln!(f, "  x{:<2} {:#018x}", r, a)?,
                _ => {}
            }
        }
        Ok(())
    }
}

extern "C" {
    static aspen_vectors: u8;
}

/// Why the CPU entered the kernel. Everything but [`Trap::Irq`] and
/// [`Trap::Unexpected`] comes from user space (EL0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// An interrupt, taken from EL0 (`from_user`) or from the kernel.
    Irq { from_user: bool },
    /// A system call (`SVC`): number and arguments are in the trap frame.
    SystemCall,
    /// A data or instruction abort.
    Abort(Abort),
    /// A misaligned PC or stack pointer.
    Misaligned(Misaligned),
    /// A `BRK` instruction.
    Breakpoint,
    /// An undefined or trapped instruction, or another exception user
    /// space has no business taking; the exception class names it.
    Undefined(&'static str),
    /// An exception the kernel does not expect: a fault in kernel code that
    /// no fault probe covers, an FIQ, an SError.
    Unexpected(Unexpected),
}

/// A memory access from EL0 that the translation tables did not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abort {
    /// The virtual address accessed.
    pub addr: u64,
    /// What the access tried to do.
    pub access: FaultKind,
    /// The fault status code (DFSC/IFSC), decoded by [`Abort::status`]
    /// only when asked: the raw byte keeps the fault path in registers.
    status_code: u8,
}

impl Abort {
    /// Why the access faulted.
    pub fn status(&self) -> FaultStatus {
        FaultStatus::from_code(self.status_code)
    }

    /// Whether the translation tables may resolve it: no entry, no access
    /// flag, or not the permission (demand paging, copy-on-write, W^X).
    pub fn is_translation_or_permission(&self) -> bool {
        matches!(self.status_code >> 2, 0b0001..=0b0011)
    }

    /// Whether no entry translated the address (a first touch, most
    /// often): the faults resolved without the kernel's locks.
    pub fn is_translation(&self) -> bool {
        self.status_code >> 2 == 0b0001
    }

    /// Whether an entry translated the address but does not allow the
    /// access (a write to a copy-on-write page, most often).
    pub fn is_permission(&self) -> bool {
        self.status_code >> 2 == 0b0011
    }
}

/// Which alignment check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misaligned {
    Pc,
    Sp,
}

impl fmt::Display for Misaligned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pc => "PC alignment fault",
            Self::Sp => "SP alignment fault",
        })
    }
}

/// An exception nobody expects: which vector, and the syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unexpected {
    kind: VectorKind,
    syndrome: Syndrome,
}

impl Unexpected {
    /// The full report: the exception, its syndrome and `frame`'s registers.
    pub fn report<'a>(&self, frame: &'a TrapFrame) -> Report<'a> {
        Report { kind: self.kind, syndrome: self.syndrome, frame }
    }
}

impl fmt::Display for Unexpected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} exception ({})", self.kind.kind(), self.syndrome.class_name())
    }
}

/// Decodes a synchronous exception from EL0.
fn decode_user_sync(syndrome: Syndrome) -> Trap {
    let access = match syndrome.exception_class() {
        0x15 => return Trap::SystemCall,
        0x24 if syndrome.is_write() => FaultKind::Write,
        0x24 => FaultKind::Read,
        0x20 => FaultKind::Exec,
        0x22 => return Trap::Misaligned(Misaligned::Pc),
        0x26 => return Trap::Misaligned(Misaligned::Sp),
        0x3c => return Trap::Breakpoint,
        _ => return Trap::Undefined(syndrome.class_name()),
    };
    Trap::Abort(Abort { addr: syndrome.far, access, status_code: (syndrome.iss() & 0x3f) as u8 })
}

/// Decodes the exception the vector `kind` took.
fn decode(kind: VectorKind) -> Trap {
    match kind {
        VectorKind::CURRENT_SPX_IRQ => Trap::Irq { from_user: false },
        VectorKind::LOWER_A64_IRQ => Trap::Irq { from_user: true },
        VectorKind::LOWER_A64_SYNC => decode_user_sync(Syndrome::read()),
        _ => Trap::Unexpected(Unexpected { kind, syndrome: Syndrome::read() }),
    }
}

/// Installs the exception vectors on this CPU.
pub fn install_vectors() {
    let base = core::ptr::addr_of!(aspen_vectors) as u64;
    VBAR_EL1.set(base);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Called by `exception.s` for every exception taken to EL1. A fault
/// inside a fault probe resumes at the probe's landing pad; everything else
/// goes to the kernel's trap handler. The return to the interrupted code
/// (`aspen_exception_return`) masks interrupts itself.
#[no_mangle]
extern "C" fn aspen_exception_dispatch(frame: &mut TrapFrame, kind: u64) {
    let kind = VectorKind(kind);
    if kind == VectorKind::CURRENT_SPX_SYNC && probe::recover(frame, Syndrome::read()) {
        return;
    }
    crate::trap::handle(decode(kind), frame);
}
