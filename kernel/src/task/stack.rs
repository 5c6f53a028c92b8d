//! Kernel stacks: 16 KiB each, mapped in their own area of the high half
//! with an unmapped guard page range below, so an overflow faults instead
//! of overwriting a neighbour.

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
pub(crate) const AREA_BASE: u64 = 0xFFFF_8000_0000_0000;
/// Slots in the area (2 GiB of addresses).
const MAX_SLOTS: u32 = 1 << 16;

/// Slots `0..next_unused` have been handed out; `free` marks those among
/// them that are free again (a bit per slot: no heap, so that a stack's
/// return, on the way out of a task, never needs memory). The lowest free
/// slot is reused first and free slots at the top are forgotten, so after
/// a burst of tasks the handed-out range shrinks back.
pub(crate) struct Slots {
    next_unused: u32,
    /// Free slots below `next_unused`.
    free_count: u32,
    free: [u64; MAX_SLOTS as usize / 64],
}

impl Slots {
    /// No slot handed out yet.
    pub(crate) const fn new() -> Self {
        Self { next_unused: 0, free_count: 0, free: [0; MAX_SLOTS as usize / 64] }
    }

    fn is_free(&self, slot: u32) -> bool {
        self.free[slot as usize / 64] & (1 << (slot % 64)) != 0
    }

    fn set_free(&mut self, slot: u32, free: bool) {
        let (word, bit) = (&mut self.free[slot as usize / 64], 1u64 << (slot % 64));
        *word = if free { *word | bit } else { *word & !bit };
    }

    pub(crate) fn take(&mut self) -> Result<u32, StackError> {
        if self.free_count > 0 {
            let words = self.next_unused.div_ceil(64) as usize;
            if let Some((index, word)) = self.free[..words].iter().enumerate().find(|(_, w)| **w != 0) {
                let slot = (index * 64) as u32 + word.trailing_zeros();
                self.set_free(slot, false);
                self.free_count -= 1;
                return Ok(slot);
            }
        }
        if self.next_unused >= MAX_SLOTS {
            return Err(StackError::OutOfSlots);
        }
        self.next_unused += 1;
        Ok(self.next_unused - 1)
    }

    pub(crate) fn give_back(&mut self, slot: u32) {
        self.set_free(slot, true);
        self.free_count += 1;
        while self.next_unused > 0 && self.is_free(self.next_unused - 1) {
            self.next_unused -= 1;
            self.set_free(self.next_unused, false);
            self.free_count -= 1;
        }
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
