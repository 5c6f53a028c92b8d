//! Kernel stacks: 16 KiB each, mapped in their own area of the high half
//! with an unmapped guard page range below, so an overflow faults instead
//! of overwriting a neighbour.

use alloc::collections::BTreeSet;

use aspen_mm::frame::FrameAllocator;
use aspen_mm::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use spin::Mutex;

use crate::memory::{frames, kernel_map};

/// Pages of stack (2^STACK_ORDER).
const STACK_ORDER: u32 = 2;
pub const STACK_SIZE: u64 = PAGE_SIZE << STACK_ORDER;
/// Each stack owns a slot twice its size: the lower half stays unmapped.
const SLOT_SIZE: u64 = 2 * STACK_SIZE;
/// Where the stack slots start: above the linear map (which covers at most
/// 2^47 bytes of physical address space from 0xFFFF_0000_0000_0000).
const AREA_BASE: u64 = 0xFFFF_8000_0000_0000;
/// Slots in the area (2 GiB of addresses).
const MAX_SLOTS: u32 = 1 << 16;

/// Slots `0..next_unused` have been handed out; `free` holds those among
/// them that are free again. The lowest free slot is reused first and free
/// slots at the top are forgotten, so after a burst of tasks the set shrinks
/// back instead of keeping one entry per slot the burst used; once empty it
/// holds no heap at all (see [`super::release_if_empty`]).
pub(crate) struct Slots {
    next_unused: u32,
    free: BTreeSet<u32>,
}

impl Slots {
    /// No slot handed out yet.
    pub(crate) const fn new() -> Self {
        Self { next_unused: 0, free: BTreeSet::new() }
    }

    pub(crate) fn take(&mut self) -> Result<u32, StackError> {
        if let Some(slot) = self.free.pop_first() {
            super::release_if_empty(&mut self.free);
            return Ok(slot);
        }
        if self.next_unused >= MAX_SLOTS {
            return Err(StackError::OutOfSlots);
        }
        self.next_unused += 1;
        Ok(self.next_unused - 1)
    }

    pub(crate) fn give_back(&mut self, slot: u32) {
        self.free.insert(slot);
        while self.next_unused > 0 && self.free.remove(&(self.next_unused - 1)) {
            self.next_unused -= 1;
        }
        super::release_if_empty(&mut self.free);
    }
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots::new());

/// Why a stack could not be made.
#[derive(Debug)]
pub enum StackError {
    OutOfMemory,
    OutOfSlots,
}

/// A mapped kernel stack; unmapped and freed on drop.
pub struct KernelStack {
    slot: u32,
    frames: PhysAddr,
}

impl KernelStack {
    pub fn new() -> Result<Self, StackError> {
        let slot = SLOTS.lock().take()?;
        let frames = match frames::pool().alloc_frames(STACK_ORDER) {
            Ok(frames) => frames,
            Err(_) => {
                SLOTS.lock().give_back(slot);
                return Err(StackError::OutOfMemory);
            }
        };
        let range = Self::slot_range(slot);
        if kernel_map::map_kernel_pages(range, frames).is_err() {
            // Nothing was mapped (a refused map changes nothing).
            frames::pool().free_frames(frames, STACK_ORDER);
            SLOTS.lock().give_back(slot);
            return Err(StackError::OutOfMemory);
        }
        Ok(Self { slot, frames })
    }

    fn slot_range(slot: u32) -> VirtRange {
        let top = AREA_BASE + u64::from(slot + 1) * SLOT_SIZE;
        VirtRange::new(VirtAddr::new(top - STACK_SIZE), VirtAddr::new(top))
    }

    /// The mapped stack pages.
    pub fn range(&self) -> VirtRange {
        Self::slot_range(self.slot)
    }

    /// The initial stack pointer (the stack grows down from here).
    pub fn top(&self) -> VirtAddr {
        self.range().end_exclusive
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        // Unmapping completes its TLB maintenance before the frames go back.
        if let Err(e) = kernel_map::unmap_kernel_pages(self.range(), |_| {}) {
            log::error!("kernel stack {}: unmap failed ({e:?}); leaking it", self.slot);
            return;
        }
        frames::pool().free_frames(self.frames, STACK_ORDER);
        SLOTS.lock().give_back(self.slot);
    }
}
