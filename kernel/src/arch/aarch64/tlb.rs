//! TLB maintenance with the aarch64 TLBI instructions: the kernel's
//! implementation of `mm`'s [`TlbOps`].
//!
//! Broadcast forms (`...IS`) reach every CPU in the inner-shareable domain;
//! `sync` waits for them with `DSB ISH` and then `ISB`, so that this CPU's
//! next instruction fetch and table walk see the new state. The operands
//! come from `aspen_mm::tlbi` (host-tested against the ARM ARM layout);
//! `aspen-tlbi-check` rejects any local form in the built kernel but the
//! rollover's flush here and the boot CPU's MMU bring-up.

use aspen_mm::tlb::{Asid, TlbOps};
use aspen_mm::tlbi::{asid_operand, page_operand};
use aspen_mm::VirtAddr;
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

/// How many invalidations of each kind the kernel issued (`/proc/vmstat`).
pub struct TlbCounters {
    pub page: AtomicU64,
    pub asid: AtomicU64,
    pub kernel_page: AtomicU64,
    pub all: AtomicU64,
    pub all_local: AtomicU64,
}

pub static COUNTERS: TlbCounters = TlbCounters {
    page: AtomicU64::new(0),
    asid: AtomicU64::new(0),
    kernel_page: AtomicU64::new(0),
    all: AtomicU64::new(0),
    all_local: AtomicU64::new(0),
};

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The hardware TLB of this CPU and its inner-shareable peers.
pub struct HardwareTlb;

impl TlbOps for HardwareTlb {
    fn begin(&self) {
        // SAFETY: a barrier; it only orders memory accesses.
        unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
    }

    // Counted by the caller, once per batch (`count_page_invalidations`):
    // an atomic add per page is a load/store-exclusive loop per page here.
    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool) {
        let operand = page_operand(Some(asid), va);
        // SAFETY: TLB invalidation has no effect on memory or registers
        // beyond dropping cached translations.
        unsafe {
            if leaf_only {
                asm!("tlbi vale1is, {}", in(reg) operand, options(nostack, preserves_flags));
            } else {
                asm!("tlbi vae1is, {}", in(reg) operand, options(nostack, preserves_flags));
            }
        }
    }

    fn invalidate_asid(&self, asid: Asid) {
        count(&COUNTERS.asid);
        let operand = asid_operand(asid);
        // SAFETY: as above.
        unsafe { asm!("tlbi aside1is, {}", in(reg) operand, options(nostack, preserves_flags)) };
    }

    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool) {
        count(&COUNTERS.kernel_page);
        let operand = page_operand(None, va);
        // SAFETY: as above.
        unsafe {
            if leaf_only {
                asm!("tlbi vaale1is, {}", in(reg) operand, options(nostack, preserves_flags));
            } else {
                asm!("tlbi vaae1is, {}", in(reg) operand, options(nostack, preserves_flags));
            }
        }
    }

    fn invalidate_all(&self) {
        count(&COUNTERS.all);
        // SAFETY: as above.
        unsafe { asm!("tlbi vmalle1is", options(nostack, preserves_flags)) };
    }

    // Out of line: the image check finds the one local flush allowed after
    // boot by this function's symbol.
    #[inline(never)]
    fn invalidate_all_local(&self) {
        count(&COUNTERS.all_local);
        // SAFETY: barriers and a local invalidation of every EL1&0 entry.
        unsafe { asm!("dsb nshst", "tlbi vmalle1", "dsb nsh", "isb", options(nostack, preserves_flags)) };
    }

    fn count_page_invalidations(&self, pages: usize) {
        COUNTERS.page.fetch_add(pages as u64, Ordering::Relaxed);
    }

    fn sync(&self) {
        // SAFETY: barriers only.
        unsafe { asm!("dsb ish", "isb", options(nostack, preserves_flags)) };
    }
}
