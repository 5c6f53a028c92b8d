//! The kernel's view of physical memory: where things are, what is free.
//!
//! All RAM and every device window are reached through one linear mapping
//! in the high half, VA = `LINEAR_MAP_OFFSET` + PA; the kernel image is part
//! of it, linked at its own linear address.

mod boot_pool;
pub mod frames;
pub mod kernel_map;
mod layout;
pub mod user_env;

use aspen_mm::region::RangeSet;
use aspen_mm::{PhysAddr, PhysRange, VirtAddr};

use crate::board::BOARD;
use crate::dtb::BootInfo;

pub use self::layout::LINEAR_MAP_OFFSET;

/// The linear-map address of a physical address.
pub const fn phys_to_virt(pa: PhysAddr) -> VirtAddr {
    VirtAddr::new(pa.as_u64() + LINEAR_MAP_OFFSET)
}

/// The physical address behind a linear-map address.
pub const fn virt_to_phys(va: VirtAddr) -> PhysAddr {
    PhysAddr::new(va.as_u64() - LINEAR_MAP_OFFSET)
}

extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
}

/// The kernel image's parts, as linked.
#[derive(Clone, Copy, Debug)]
pub struct KernelImage {
    pub text: PhysRange,
    pub rodata: PhysRange,
    /// data, bss and the boot stack.
    pub data: PhysRange,
}

impl KernelImage {
    pub fn get() -> Self {
        fn pa(sym: &u8) -> PhysAddr {
            virt_to_phys(VirtAddr::new(sym as *const u8 as u64))
        }
        // SAFETY: the linker script defines these symbols; only their
        // addresses are used.
        let (start, text_end, rodata_end, end) =
            unsafe { (pa(&__kernel_start), pa(&__text_end), pa(&__rodata_end), pa(&__kernel_end)) };
        Self {
            text: PhysRange::new(start, text_end),
            rodata: PhysRange::new(text_end, rodata_end),
            data: PhysRange::new(rodata_end, end),
        }
    }

    pub fn whole(&self) -> PhysRange {
        PhysRange::new(self.text.start, self.data.end_exclusive)
    }
}

/// RAM the frame pool may hand out: RAM minus the kernel image, the DTB,
/// the initrd and reserved ranges (the board's and the device tree's).
pub fn usable_ram(info: &BootInfo) -> RangeSet<32> {
    let mut free = RangeSet::<32>::new();
    for r in info.ram.as_slice() {
        // Capacity 32 holds every board's RAM description (at most 16 ranges).
        let _ = free.insert(r.shrink_to_pages());
    }
    let image = KernelImage::get().whole();
    let taken = [Some(image), info.dtb, info.initrd];
    for r in taken.iter().flatten().chain(info.reserved.as_slice()).chain(BOARD.reserved) {
        let hole = r.expand_to_pages();
        if free.remove(hole).is_err() {
            // Too fragmented to track: leave out every free range the hole
            // touches rather than risk handing out something reserved.
            let touched = free;
            for t in touched.as_slice().iter().filter(|t| t.overlaps(&hole)) {
                let _ = free.remove(*t);
            }
        }
    }
    free
}

/// Prints the memory map: RAM, what is taken out of it, and what is free.
pub fn print_map(info: &BootInfo, free: &RangeSet<32>) {
    let image = KernelImage::get();
    log::info!("memory map ({:?}):", info.source);
    for r in info.ram.as_slice() {
        log::info!("  ram        {:?}  {:>6} MiB", r, r.size() >> 20);
    }
    log::info!("  total RAM  {} MiB", info.ram.total_size() >> 20);
    log::info!(
        "  kernel     {:?}  (text {:?}, rodata {:?}, data {:?})",
        image.whole(),
        image.text,
        image.rodata,
        image.data
    );
    if let Some(dtb) = info.dtb {
        log::info!("  dtb        {:?}", dtb);
    }
    if let Some(initrd) = info.initrd {
        log::info!("  initrd     {:?}", initrd);
    }
    let mut reserved = info.reserved;
    for r in BOARD.reserved {
        // The DTB's list plus a few board ranges stays within capacity; a
        // range that does not fit is only missing from this printout.
        let _ = reserved.insert(*r);
    }
    for r in reserved.as_slice() {
        log::info!("  reserved   {:?}", r);
    }
    for w in BOARD.mmio {
        log::info!("  mmio       {:?}  {}", w.range, w.name);
    }
    for r in free.as_slice() {
        log::info!("  free       {:?}  {:>6} MiB", r, r.size() >> 20);
    }
    log::info!("  free total {} KiB", free.total_size() >> 10);
}
