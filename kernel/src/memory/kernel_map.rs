//! The kernel's own address space (TTBR1): a linear map of all RAM and of
//! every device window at `LINEAR_MAP_OFFSET` + PA, with the kernel image's
//! sections mapped W^X (text R-X, rodata R, data/bss R-W never executable)
//! and the rest of RAM read-write, never executable, in 2 MiB and 1 GiB
//! blocks where alignment allows.

use aspen_mm::paging::{LinearMap, PageAttrs, PageTable, PagingError, VaHalf};
use aspen_mm::region::RangeSet;
use aspen_mm::{PhysAddr, PhysRange, VirtRange};
use spin::Once;

use super::boot_pool::BootTablePool;
use super::{phys_to_virt, KernelImage, LINEAR_MAP_OFFSET};
use crate::arch::mmu;
use crate::board::BOARD;

static TABLE_POOL: BootTablePool = BootTablePool::new();
// SAFETY: table pages come from the boot pool inside the kernel image, which
// the early map and the final map both cover at LINEAR_MAP_OFFSET + PA.
static TABLE_MEMORY: LinearMap = unsafe { LinearMap::new(LINEAR_MAP_OFFSET) };

/// The kernel's table, once built.
static KERNEL_TABLE: Once<spin::Mutex<PageTable<'static, LinearMap, BootTablePool>>> = Once::new();

fn linear(range: PhysRange) -> VirtRange {
    VirtRange::new(phys_to_virt(range.start), phys_to_virt(range.end_exclusive))
}

fn map_linear(table: &mut PageTable<'static, LinearMap, BootTablePool>, range: PhysRange, attrs: PageAttrs) -> Result<(), PagingError> {
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
    let mut table = PageTable::new(&TABLE_MEMORY, &TABLE_POOL, VaHalf::Upper)?;
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
        TABLE_POOL.pages_in_use()
    );
    Ok(())
}

/// How the kernel's table maps `pa`'s linear address, for tests and reports.
pub fn query(pa: PhysAddr) -> Option<aspen_mm::paging::Mapping> {
    KERNEL_TABLE.get()?.lock().query(phys_to_virt(pa))
}
