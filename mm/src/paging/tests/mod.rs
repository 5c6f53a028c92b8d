//! Tests of the translation tables on the simulated machine, with the real
//! buddy allocator handing out table pages and data frames from the arena.

mod bulk;
mod cursor;
mod invalidation;
mod model;
mod prop;
mod table;

use core::cell::Cell;

use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::{AllocError, BuddyAllocator, FrameAllocator};
use crate::paging::{Mapping, PageAttrs, PageTable, VaHalf};
use crate::testbed::{Arena, Machine};

/// Where the simulated RAM starts (QEMU virt's RAM base).
const RAM_BASE: PhysAddr = PhysAddr::new(0x4000_0000);

/// Simulated RAM and the buddy allocator over all of it.
struct Fixture {
    arena: Arena,
    frames: BuddyAllocator<'static>,
    /// Free frames right after setup.
    baseline: usize,
}

impl Fixture {
    fn new(bytes: u64) -> Self {
        let arena = Arena::new(RAM_BASE, bytes);
        let frames = BuddyAllocator::new_owned(&[arena.range()]).expect("buddy over the arena");
        let baseline = frames.free_frame_count();
        Self { arena, frames, baseline }
    }

    /// A machine over the arena whose TLB model checks every free of the
    /// fixture's allocator.
    fn machine(&self) -> Machine<'_> {
        let machine = Machine::new(&self.arena);
        machine.watch_frees(&self.frames);
        machine
    }

    fn table(&self, half: VaHalf) -> PageTable<'_, Arena, BuddyAllocator<'static>> {
        PageTable::new(&self.arena, &self.frames, half).expect("root table")
    }

    /// Frames taken from the allocator and not given back.
    fn in_use(&self) -> usize {
        self.baseline - self.frames.free_frame_count()
    }

    /// A data frame whose first word is `tag`.
    fn data_frame(&self, tag: u64) -> PhysAddr {
        let pa = self.frames.alloc_frame().expect("data frame");
        self.arena.write_bytes(pa, &tag.to_ne_bytes());
        pa
    }

    /// `n` data frames tagged with their index, mapped from `va` on.
    fn map_pages<M, A>(&self, pt: &mut PageTable<'_, M, A>, va: u64, n: u64, attrs: PageAttrs)
    where
        M: crate::paging::PhysMemory + ?Sized,
        A: FrameAllocator + ?Sized,
    {
        for i in 0..n {
            let pa = self.data_frame(i);
            pt.map(pages(va + i * PAGE_SIZE, 1), pa, attrs).expect("map");
        }
    }

    /// A release function that gives 4 KiB data frames back.
    fn free_leaf(&self) -> impl FnMut(Mapping) + '_ {
        move |leaf| self.frames.free_frame(leaf.pa)
    }
}

/// `n` pages from `va`.
fn pages(va: u64, n: u64) -> VirtRange {
    VirtRange::from_start_size(VirtAddr::new(va), n * PAGE_SIZE).expect("range")
}

/// A frame allocator that fails after `budget` allocations.
struct Limited<'a> {
    inner: &'a BuddyAllocator<'static>,
    budget: Cell<usize>,
}

impl FrameAllocator for Limited<'_> {
    fn alloc_frames(&self, order: u32) -> Result<PhysAddr, AllocError> {
        let left = self.budget.get();
        if left == 0 {
            return Err(AllocError::OutOfMemory);
        }
        self.budget.set(left - 1);
        self.inner.alloc_frames(order)
    }

    fn free_frames(&self, start: PhysAddr, order: u32) {
        self.inner.free_frames(start, order)
    }
}

/// The fixture's allocator, checking on every free that no TLB entry of
/// `cpu` still leads to the frame (unhook, invalidate, sync, then free).
struct FreeWhenForgotten<'a> {
    fx: &'a Fixture,
    cpu: &'a Machine<'a>,
}

impl FrameAllocator for FreeWhenForgotten<'_> {
    fn alloc_frames(&self, order: u32) -> Result<PhysAddr, AllocError> {
        self.fx.frames.alloc_frames(order)
    }

    fn free_frames(&self, start: PhysAddr, order: u32) {
        assert!(!self.cpu.holds_frame(start), "{start:?} freed while the TLB still leads to it");
        self.fx.frames.free_frames(start, order)
    }
}
