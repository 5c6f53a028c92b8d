//! The kernel's own address space (TTBR1): a linear map of all RAM and of
//! every device window at `LINEAR_MAP_OFFSET` + PA, with the kernel image's
//! sections mapped W^X (text R-X, rodata R, data/bss R-W never executable)
//! and the rest of RAM read-write, never executable, in 2 MiB and 1 GiB
//! blocks where alignment allows.

use aspen_mm::frame::{AllocError, FrameAllocator};
use aspen_mm::paging::{Leaf, LinearMap, Mapping, PageAttrs, PageTable, PagingError, VaHalf};
use aspen_mm::region::RangeSet;
use aspen_mm::tlb::TlbScope;
use aspen_mm::{PhysAddr, PhysRange, VirtRange};
use spin::Once;

use super::boot_pool::BootTablePool;
use super::{frames, phys_to_virt, KernelImage, LINEAR_MAP_OFFSET};
use crate::arch::mmu;
use crate::arch::tlb::HardwareTlb;
use crate::board::BOARD;

/// Table pages for the kernel's table: from the boot pool while the table
/// is built (before the frame pool exists), from the frame pool afterwards
/// (kernel stacks and other runtime mappings).
struct KernelTableFrames {
    boot: BootTablePool,
}

impl FrameAllocator for KernelTableFrames {
    fn alloc_frames(&self, order: u32) -> Result<PhysAddr, AllocError> {
        match frames::try_pool() {
            Some(pool) => pool.alloc_frames(order),
            None => self.boot.alloc_frames(order),
        }
    }

    fn free_frames(&self, start: PhysAddr, order: u32) {
        if self.boot.owns(start) {
            self.boot.free_frames(start, order);
        } else if let Some(pool) = frames::try_pool() {
            pool.free_frames(start, order);
        }
    }
}

static TABLE_FRAMES: KernelTableFrames = KernelTableFrames { boot: BootTablePool::new() };
// SAFETY: table pages come from the boot pool inside the kernel image, which
// the early map and the final map both cover at LINEAR_MAP_OFFSET + PA, and
// later from the frame pool, whose RAM the final map covers the same way.
static TABLE_MEMORY: LinearMap = unsafe { LinearMap::new(LINEAR_MAP_OFFSET) };

type KernelTable = PageTable<'static, LinearMap, KernelTableFrames>;

/// The kernel's table, once built.
static KERNEL_TABLE: Once<spin::Mutex<KernelTable>> = Once::new();

fn linear(range: PhysRange) -> VirtRange {
    VirtRange::new(phys_to_virt(range.start), phys_to_virt(range.end_exclusive))
}

fn map_linear(table: &mut KernelTable, range: PhysRange, attrs: PageAttrs) -> Result<(), PagingError> {
    let range = range.expand_to_pages();
    if range.is_empty() {
        return Ok(());
    }
    table.map_linear(linear(range), range.start, attrs)
}

/// Builds the kernel's translation table for `ram` and the board's device
/// windows, and switches TTBR1 to it. Afterwards TTBR0 holds an empty
/// table: no user address space is active.
pub fn build_and_switch(ram: &RangeSet<16>) -> Result<(), PagingError> {
    let mut table = PageTable::new(&TABLE_MEMORY, &TABLE_FRAMES, VaHalf::Upper)?;
    let image = KernelImage::get();

    let mut plain_ram = RangeSet::<32>::new();
    for r in ram.as_slice() {
        let _ = plain_ram.insert(*r);
    }
    // The image is mapped section by section below; 16 ranges cannot split
    // into more than 32 by one hole.
    let _ = plain_ram.remove(image.whole());
    for r in plain_ram.as_slice() {
        map_linear(&mut table, *r, PageAttrs::KERNEL_RW)?;
    }
    map_linear(&mut table, image.text, PageAttrs::KERNEL_RX)?;
    map_linear(&mut table, image.rodata, PageAttrs::KERNEL_RO)?;
    map_linear(&mut table, image.data, PageAttrs::KERNEL_RW)?;
    for window in BOARD.mmio {
        map_linear(&mut table, window.range, PageAttrs::KERNEL_DEVICE)?;
    }

    mmu::replace_kernel_table(table.root());
    KERNEL_TABLE.call_once(|| spin::Mutex::new(table));
    log::info!(
        "kernel map: {} table pages; text R-X, rodata R, data RW-XN, RAM RW-XN, devices nGnRE",
        TABLE_FRAMES.boot.pages_in_use()
    );
    Ok(())
}

/// How the kernel's table maps `pa`'s linear address, for tests and reports.
pub fn query(pa: PhysAddr) -> Option<aspen_mm::paging::Mapping> {
    KERNEL_TABLE.get()?.lock().query(phys_to_virt(pa))
}

/// Calls `f` with every leaf of the kernel's table (blocks and pages), in
/// address order, for tests.
pub fn for_each_leaf(f: impl FnMut(Leaf)) {
    if let Some(table) = KERNEL_TABLE.get() {
        table.lock().visit_leaves(VaHalf::Upper.range(), f);
    }
}

/// Maps `frames` (physically contiguous) at `va` read-write for the kernel,
/// with 4 KiB pages. Used for kernel stacks, whose guard pages are the
/// unmapped pages around them.
pub fn map_kernel_pages(va: VirtRange, pa: PhysAddr) -> Result<(), PagingError> {
    let table = KERNEL_TABLE.get().expect("kernel table used before boot built it");
    table.lock().map(va, pa, PageAttrs::KERNEL_RW)?;
    // The new entries were invalid before (no TLBI needed) but must be
    // visible to this CPU's walker before the kernel uses them.
    mmu::publish_new_entries();
    Ok(())
}

/// Unmaps `va` from the kernel's table; the TLB entries are gone (on every
/// CPU) when this returns. Returns the leaves that were mapped there.
pub fn unmap_kernel_pages(va: VirtRange, released: impl FnMut(Mapping)) -> Result<(), PagingError> {
    let table = KERNEL_TABLE.get().expect("kernel table used before boot built it");
    let mut table = table.lock();
    let mut editor = table.edit(&HardwareTlb, TlbScope::AllAsids, released);
    editor.unmap(va)?;
    editor.finish();
    Ok(())
}
