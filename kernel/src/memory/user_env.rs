//! The machine as user address spaces see it: `mm`'s [`MmEnv`] over the
//! kernel's linear map, the frame pool, the TLBI instructions and the ASID
//! allocator.

use aspen_mm::asid::{AsidAllocator, AsidBits};
use aspen_mm::aspace::{MmEnv, MmStats};
use aspen_mm::frame::BuddyAllocator;
use aspen_mm::paging::PhysMemory;
use aspen_mm::PhysAddr;
use spin::Once;

use super::{frames, phys_to_virt, LINEAR_MAP_OFFSET};
use crate::arch::tlb::HardwareTlb;

/// The kernel's [`MmEnv`].
pub struct KernelMm {
    asids: AsidAllocator,
    stats: MmStats,
}

/// RAM as the kernel reaches it: through the linear map, with page
/// zeroing by `DC ZVA` and page copies by paired loads and stores.
pub struct KernelPhys;

core::arch::global_asm!(
    ".section .text.pages, \"ax\"",
    // x0 = page (linear-map address), x1 = DC ZVA block size in bytes.
    ".global aspen_zero_page",
    "aspen_zero_page:",
    "    add     x2, x0, #4096",
    "1:  dc      zva, x0",
    "    add     x0, x0, x1",
    "    cmp     x0, x2",
    "    b.lo    1b",
    "    ret",
    // x0 = destination page, x1 = source page: 64 bytes per iteration.
    ".global aspen_copy_page",
    "aspen_copy_page:",
    "    add     x2, x1, #4096",
    "1:  ldp     x3, x4, [x1]",
    "    ldp     x5, x6, [x1, #16]",
    "    ldp     x7, x8, [x1, #32]",
    "    ldp     x9, x10, [x1, #48]",
    "    add     x1, x1, #64",
    "    stp     x3, x4, [x0]",
    "    stp     x5, x6, [x0, #16]",
    "    stp     x7, x8, [x0, #32]",
    "    stp     x9, x10, [x0, #48]",
    "    add     x0, x0, #64",
    "    cmp     x1, x2",
    "    b.lo    1b",
    "    ret",
);

extern "C" {
    fn aspen_zero_page(page: *mut u8, block: u64);
    fn aspen_copy_page(dst: *mut u8, src: *const u8);
}

/// The `DC ZVA` block size, or `None` when `DC ZVA` is prohibited.
fn zva_block() -> Option<u64> {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    (dczid & 0x10 == 0).then(|| 4 << (dczid & 0xf))
}

// SAFETY: every frame `mm` is handed comes from the frame pool, i.e. RAM
// the linear map covers read-write as Normal write-back memory.
unsafe impl PhysMemory for KernelPhys {
    fn frame_ptr(&self, frame: PhysAddr) -> *mut u8 {
        core::ptr::with_exposed_provenance_mut(frame.as_u64().wrapping_add(LINEAR_MAP_OFFSET) as usize)
    }

    unsafe fn zero_frame(&self, frame: PhysAddr) {
        match zva_block() {
            // SAFETY: the caller owns the frame; its linear address is
            // mapped read-write and page aligned, and the block size divides
            // the page.
            Some(block) if block <= 4096 => unsafe { aspen_zero_page(self.frame_ptr(frame), block) },
            // SAFETY: as above, byte by byte.
            _ => unsafe { core::ptr::write_bytes(self.frame_ptr(frame), 0, 4096) },
        }
    }

    unsafe fn copy_frame(&self, dst: PhysAddr, src: PhysAddr) {
        // SAFETY: the caller owns `dst` and keeps `src` unchanged; both are
        // distinct mapped frames of 4096 bytes.
        unsafe { aspen_copy_page(self.frame_ptr(dst), self.frame_ptr(src)) }
    }
}

static PHYS: KernelPhys = KernelPhys;
static TLB: HardwareTlb = HardwareTlb;
static KERNEL_MM: Once<KernelMm> = Once::new();

/// Sets up the environment once the frame pool exists; `asid_bits` is the
/// width every CPU supports.
pub fn init(asid_bits: u8) {
    let bits = if asid_bits == 16 { AsidBits::Sixteen } else { AsidBits::Eight };
    KERNEL_MM.call_once(|| KernelMm { asids: AsidAllocator::new(bits), stats: MmStats::new() });
}

/// The environment. Panics before [`init`] (a boot order bug).
pub fn get() -> &'static KernelMm {
    KERNEL_MM.get().expect("user memory used before boot set it up")
}

/// Bytes per data/instruction cache line, from CTR_EL0.
fn cache_lines() -> (u64, u64) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    let dline = 4 << ((ctr >> 16) & 0xf);
    let iline = 4 << (ctr & 0xf);
    (dline, iline)
}

impl MmEnv for KernelMm {
    type Mem = KernelPhys;
    type Tlb = HardwareTlb;

    fn mem(&self) -> &KernelPhys {
        &PHYS
    }

    fn frames(&self) -> &BuddyAllocator<'static> {
        frames::pool()
    }

    fn tlb(&self) -> &HardwareTlb {
        &TLB
    }

    fn asids(&self) -> &AsidAllocator {
        &self.asids
    }

    fn stats(&self) -> &MmStats {
        &self.stats
    }

    fn sync_icache(&self, frame: PhysAddr) {
        let start = phys_to_virt(frame).as_u64();
        let (dline, iline) = cache_lines();
        // SAFETY: cache maintenance by address over one frame of the linear
        // map, which is mapped; it changes no data.
        unsafe {
            let mut at = start;
            while at < start + 4096 {
                core::arch::asm!("dc cvau, {}", in(reg) at, options(nostack, preserves_flags));
                at += dline;
            }
            core::arch::asm!("dsb ish", options(nostack, preserves_flags));
            let mut at = start;
            while at < start + 4096 {
                core::arch::asm!("ic ivau, {}", in(reg) at, options(nostack, preserves_flags));
                at += iline;
            }
            core::arch::asm!("dsb ish", "isb", options(nostack, preserves_flags));
        }
    }
}
