//! MMU control: replacing the kernel's table, the empty user table, and
//! the ASID width.

use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, SCTLR_EL1, TCR_EL1, TTBR0_EL1};
use aspen_mm::PhysAddr;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use crate::memory::virt_to_phys;

/// An all-invalid table: TTBR0 points here while no user address space is
/// active, and TTBR1 while the kernel's table is replaced.
#[repr(C, align(4096))]
struct EmptyTable([u64; 512]);

static EMPTY_TABLE: EmptyTable = EmptyTable([0; 512]);

fn empty_table_pa() -> PhysAddr {
    virt_to_phys(aspen_mm::VirtAddr::new(core::ptr::addr_of!(EMPTY_TABLE) as u64))
}

extern "C" {
    /// `mmu.s`: switches TTBR1 through an empty table; must run from its
    /// identity-mapped address.
    fn aspen_replace_ttbr1(new_root: u64, empty_root: u64);
}

core::arch::global_asm!(
    ".section .text.mmu, \"ax\"",
    ".global aspen_replace_ttbr1",
    "aspen_replace_ttbr1:",
    // Break: no translation through TTBR1 at all, and none cached ...
    "    msr ttbr1_el1, x1",
    "    isb",
    "    tlbi vmalle1",
    "    dsb nsh",
    "    isb",
    // ... before make: the new table.
    "    msr ttbr1_el1, x0",
    "    isb",
    "    ret",
);

/// Makes `root` the kernel's table (TTBR1), then drops the boot identity
/// map from TTBR0.
///
/// The old and the new table map the kernel's own addresses with different
/// block sizes, so the change is break-before-make: the switch runs from
/// the identity map (TTBR0) while TTBR1 is empty and its TLB entries gone.
pub fn replace_kernel_table(root: PhysAddr) {
    let switch_identity = virt_to_phys(aspen_mm::VirtAddr::new(aspen_replace_ttbr1 as *const () as u64)).as_u64();
    // SAFETY: the boot identity map in TTBR0 still covers the kernel image,
    // so the routine runs at its physical address; it touches no memory and
    // returns to our high-half return address once the new TTBR1 is live,
    // and `root` maps all of the kernel (the caller built it so).
    unsafe {
        let switch: extern "C" fn(u64, u64) = core::mem::transmute(switch_identity as usize);
        switch(root.as_u64(), empty_table_pa().as_u64());
    }
    set_user_table(empty_table_pa(), 0);
    // The identity map may be cached under ASID 0 and as global entries.
    // SAFETY: barriers and a local invalidation of every EL1&0 entry.
    unsafe { core::arch::asm!("dsb nshst", "tlbi vmalle1", "dsb nsh", "isb", options(nostack)) };
}

/// On a secondary core just started through the boot identity map:
/// points TTBR0 at the empty table and drops every entry the identity map
/// left in this core's TLB (global ones included).
pub fn drop_boot_identity_map() {
    set_user_table(empty_table_pa(), 0);
    // SAFETY: barriers and a local invalidation of every EL1&0 entry.
    unsafe { core::arch::asm!("dsb nshst", "tlbi vmalle1", "dsb nsh", "isb", options(nostack)) };
}

/// Makes table entries just written where there was none visible to this
/// CPU's table walker: entries that were invalid need no TLB invalidation,
/// only the barriers.
pub fn publish_new_entries() {
    // SAFETY: barriers only.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack)) };
}

/// Points TTBR0 at the empty table (ASID 0): no user address space.
pub fn set_empty_user_table() {
    set_user_table(empty_table_pa(), 0);
}

/// Writes TTBR0 with a table and an ASID in one register write.
pub fn set_user_table(root: PhysAddr, asid: u16) {
    TTBR0_EL1.set(root.as_u64() | (u64::from(asid) << 48));
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// The ASID width this CPU supports (8 or 16 bits).
pub fn asid_bits() -> u8 {
    match ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::ASIDBits) {
        0b0010 => 16,
        _ => 8,
    }
}

/// Turns on 16-bit ASIDs (TCR_EL1.AS) when `bits` is 16, then drops TLB
/// entries that may have cached the old setting.
///
/// SCTLR_EL1.WXN stays off: it would make every page EL0 can write
/// execute-never, and user pages that flipped past the bound are mapped
/// writable and executable on purpose (`aspen_mm::aspace::WX_FLIP_BOUND`).
/// The kernel's own W^X rests on its attributes instead: no kernel
/// `PageAttrs` can be writable and executable, and a kernel test walks the
/// kernel's table for such an entry.
pub fn configure(bits: u8) {
    if bits == 16 {
        TCR_EL1.modify(TCR_EL1::AS::ASID16Bits);
    } else {
        TCR_EL1.modify(TCR_EL1::AS::ASID8Bits);
    }
    SCTLR_EL1.modify(SCTLR_EL1::WXN::Disable);
    // SAFETY: barriers and a local invalidation of every EL1&0 entry.
    unsafe { core::arch::asm!("isb", "tlbi vmalle1", "dsb nsh", "isb", options(nostack)) };
}

/// Whether TCR_EL1.AS selects 16-bit ASIDs.
pub fn asid16_enabled() -> bool {
    TCR_EL1.is_set(TCR_EL1::AS)
}
