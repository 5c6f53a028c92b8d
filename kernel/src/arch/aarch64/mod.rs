//! aarch64 (ARMv8-A) specifics: boot, exception vectors, task switching, CPU
//! control, page operations, the generic timer, firmware calls.

pub mod context;
pub mod cpu;
pub mod exception;
pub mod firmware;
pub mod mmu;
pub mod page;
pub mod probe;
pub mod smp;
pub mod timer;
pub mod tlb;
pub mod uaccess;

core::arch::global_asm!(
    include_str!("boot.s"),
    MAIR_EL1 = const aspen_mm::paging::MAIR_EL1,
    MAX_CPUS = const aspen_mm::asid::MAX_CPUS
);
core::arch::global_asm!(include_str!("exception.s"));
core::arch::global_asm!(include_str!("mem.s"));
