//! The machine as user address spaces see it: `mm`'s [`MmEnv`] over the
//! kernel's linear map, the frame pool, the TLBI instructions and the ASID
//! allocator.

use aspen_mm::asid::{AsidAllocator, AsidBits};
use aspen_mm::aspace::{MmEnv, MmStats};
use aspen_mm::frame::BuddyAllocator;
use aspen_mm::paging::LinearMap;
use aspen_mm::PhysAddr;
use spin::Once;

use super::{frames, phys_to_virt, LINEAR_MAP_OFFSET};
use crate::arch::tlb::HardwareTlb;

/// The kernel's [`MmEnv`].
pub struct KernelMm {
    asids: AsidAllocator,
    stats: MmStats,
}

// SAFETY: every frame `mm` is handed comes from the frame pool, i.e. RAM
// the linear map covers read-write as Normal write-back memory.
static LINEAR: LinearMap = unsafe { LinearMap::new(LINEAR_MAP_OFFSET) };
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
    type Mem = LinearMap;
    type Tlb = HardwareTlb;

    fn mem(&self) -> &LinearMap {
        &LINEAR
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
