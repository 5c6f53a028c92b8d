//! Table pages for the kernel's own translation tables, taken from a pool
//! inside the kernel image: the tables must be built before the linear map
//! of RAM (and so the frame allocator's metadata) is reachable.

use aspen_mm::frame::{AllocError, FrameAllocator};
use aspen_mm::{PhysAddr, VirtAddr, PAGE_SIZE};
use spin::Mutex;

use super::virt_to_phys;

/// Pages for: the root, a level-1 table per 512 GiB, level-2 tables for
/// the unaligned edges of RAM and device windows, and level-3 tables for
/// the kernel image's sections. The boards need about a dozen.
const POOL_PAGES: usize = 64;

#[repr(C, align(4096))]
struct Pages([[u8; PAGE_SIZE as usize]; POOL_PAGES]);

static mut POOL: Pages = Pages([[0; PAGE_SIZE as usize]; POOL_PAGES]);

/// A frame allocator over [`POOL`]: one bit per page.
pub struct BootTablePool {
    used: Mutex<u64>,
}

const _: () = assert!(POOL_PAGES <= u64::BITS as usize);

impl BootTablePool {
    pub const fn new() -> Self {
        Self { used: Mutex::new(0) }
    }

    fn base() -> PhysAddr {
        virt_to_phys(VirtAddr::new(core::ptr::addr_of!(POOL) as u64))
    }

    /// Whether `frame` is one of the pool's pages.
    pub fn owns(&self, frame: PhysAddr) -> bool {
        let offset = frame.as_u64().wrapping_sub(Self::base().as_u64());
        offset < (POOL_PAGES as u64) * PAGE_SIZE
    }

    /// Pages handed out and not returned.
    pub fn pages_in_use(&self) -> u32 {
        self.used.lock().count_ones()
    }
}

impl FrameAllocator for BootTablePool {
    fn alloc_frames(&self, order: u32) -> Result<PhysAddr, AllocError> {
        if order != 0 {
            return Err(AllocError::OrderTooLarge);
        }
        let mut used = self.used.lock();
        let index = used.trailing_ones() as usize;
        if index >= POOL_PAGES {
            return Err(AllocError::OutOfMemory);
        }
        *used |= 1 << index;
        Ok(Self::base() + index as u64 * PAGE_SIZE)
    }

    fn free_frames(&self, start: PhysAddr, order: u32) {
        let offset = start.as_u64().wrapping_sub(Self::base().as_u64());
        let index = offset / PAGE_SIZE;
        if order != 0 || !offset.is_multiple_of(PAGE_SIZE) || index >= POOL_PAGES as u64 {
            log::error!("boot table pool: free of {start:?} (order {order}) that it never handed out");
            return;
        }
        *self.used.lock() &= !(1 << index);
    }
}
