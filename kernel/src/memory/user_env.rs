//! The machine as user address spaces see it: `mm`'s [`MmEnv`] over the
//! kernel's linear map, the frame pool, the TLBI instructions and the ASID
//! allocator.

use aspen_mm::asid::{AsidAllocator, AsidBits};
use aspen_mm::aspace::{HeapExhausted, MmEnv, MmStats, WxPolicy};
use aspen_mm::frame::BuddyAllocator;
use aspen_mm::paging::PhysMemory;
use aspen_mm::PhysAddr;
use spin::Once;

use super::{frames, LINEAR_MAP_OFFSET};
use crate::arch::page;
use crate::arch::tlb::HardwareTlb;
use crate::task::sched;

/// The kernel's [`MmEnv`].
pub struct KernelMm {
    asids: AsidAllocator,
    stats: MmStats,
    wx_policy: WxPolicy,
}

/// RAM as the kernel reaches it: through the linear map, with page
/// zeroing by `DC ZVA` and page copies through SIMD registers.
pub struct KernelPhys;

// SAFETY: every frame `mm` is handed comes from the frame pool, i.e. RAM
// the linear map covers read-write as Normal write-back memory.
unsafe impl PhysMemory for KernelPhys {
    fn frame_ptr(&self, frame: PhysAddr) -> *mut u8 {
        core::ptr::with_exposed_provenance_mut(frame.as_u64().wrapping_add(LINEAR_MAP_OFFSET) as usize)
    }

    unsafe fn zero_frame(&self, frame: PhysAddr) {
        // SAFETY: the caller owns the frame; its linear address is mapped
        // read-write as Normal memory and page aligned.
        unsafe { page::zero(self.frame_ptr(frame)) }
    }

    unsafe fn copy_frame(&self, dst: PhysAddr, src: PhysAddr) {
        // SAFETY: the caller owns `dst` and keeps `src` unchanged; both are
        // distinct mapped frames of 4096 bytes.
        unsafe { page::copy(self.frame_ptr(dst), self.frame_ptr(src)) }
    }
}

static PHYS: KernelPhys = KernelPhys;
static TLB: HardwareTlb = HardwareTlb;
static KERNEL_MM: Once<KernelMm> = Once::new();

/// Sets up the environment once the frame pool exists; `asid_bits` is the
/// width every CPU supports, `wx_policy` the command line's
/// (`aspen.wx=strict`).
pub fn init(asid_bits: u8, wx_policy: WxPolicy) {
    let bits = if asid_bits == 16 { AsidBits::Sixteen } else { AsidBits::Eight };
    KERNEL_MM.call_once(|| KernelMm { asids: AsidAllocator::new(bits), stats: MmStats::new(), wx_policy });
}

/// The environment. Panics before [`init`] (a boot order bug).
pub fn get() -> &'static KernelMm {
    KERNEL_MM.get().expect("user memory used before boot set it up")
}

impl MmEnv for KernelMm {
    type Mem = KernelPhys;
    type Tlb = HardwareTlb;
    type HeapPreload = crate::heap::Preload;

    fn preload_heap(&self, bytes: usize) -> Result<crate::heap::Preload, HeapExhausted> {
        crate::heap::preload(bytes).map_err(|_| HeapExhausted)
    }

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

    fn wx_policy(&self) -> WxPolicy {
        self.wx_policy
    }

    fn sync_icache(&self, frame: PhysAddr) {
        // SAFETY: the frame's linear address is mapped and page aligned.
        unsafe { page::sync_icache(PHYS.frame_ptr(frame)) }
    }

    fn should_yield(&self) -> bool {
        sched::preempt_point() && crate::process::may_pause_memory_pass()
    }

    fn yield_now(&self) {
        sched::pause_now();
    }
}
