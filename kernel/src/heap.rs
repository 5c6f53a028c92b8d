//! The kernel heap: linked-list allocators over 4 MiB regions from the
//! frame pool. It starts with one region and takes another from the pool
//! when an allocation does not fit, up to `MAX_REGIONS`, so kernel
//! bookkeeping (vareas, open files, processes) grows with the work instead
//! of stopping at a fixed size. Blocks of at most 2 KiB (B-tree nodes,
//! vareas, wait entries: nearly all of them) come from size-class slabs
//! carved out of the regions (`aspen_mm::slab`), so that their allocation
//! and free take constant time with interrupts masked; blocks over 2 MiB
//! are runs of frames of their own.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use aspen_mm::frame::{FrameAllocator, MAX_ORDER};

use aspen_mm::slab::{self, SlabSource, Slabs};
use aspen_mm::PAGE_SIZE;
use linked_list_allocator::Heap;
use spin::Mutex;

use crate::memory::{frames, phys_to_virt};

/// The most regions the heap grows to (256 MiB).
const MAX_REGIONS: usize = 64;
/// Bytes per region: the largest run the frame pool hands out.
const REGION_BYTES: usize = (PAGE_SIZE as usize) << MAX_ORDER;

struct Regions {
    heaps: [Heap; MAX_REGIONS],
    /// Per region, a bound on its largest free block: below the size of a
    /// request it last refused, raised by what is freed into it since
    /// (a freed block may merge with a free block on either side). Spares
    /// `allocate` a walk of a full region's free list.
    hole_bounds: [usize; MAX_REGIONS],
    count: usize,
}

// SAFETY: the heaps' memory belongs to the kernel heap alone; every access
// goes through the lock.
unsafe impl Send for Regions {}

/// The regions, and the slabs carved out of them.
struct Heaps {
    regions: Regions,
    slabs: Slabs,
}

struct GrowingHeap(Mutex<Heaps>);

#[global_allocator]
static HEAP: GrowingHeap = GrowingHeap(Mutex::new(Heaps {
    regions: Regions {
        heaps: [const { Heap::empty() }; MAX_REGIONS],
        hole_bounds: [usize::MAX; MAX_REGIONS],
        count: 0,
    },
    slabs: Slabs::new(),
}));

impl Regions {
    /// Adds `[start, start + size)` as a region; false when all are in use.
    ///
    /// # Safety
    /// As for [`init`].
    unsafe fn add(&mut self, start: *mut u8, size: usize) -> bool {
        let Some(heap) = self.heaps.get_mut(self.count) else { return false };
        // SAFETY: guaranteed by the caller.
        unsafe { heap.init(start, size) };
        self.hole_bounds[self.count] = usize::MAX;
        self.count += 1;
        self.publish_free();
        true
    }

    /// Makes the free bytes of all regions readable without the lock
    /// ([`FREE_BYTES`]); after every change of the regions.
    fn publish_free(&self) {
        FREE_BYTES.store(self.free_bytes(), Ordering::Relaxed);
    }

    /// Takes one more region from the frame pool.
    fn grow(&mut self) -> bool {
        if self.count >= MAX_REGIONS {
            return false;
        }
        let Some(pool) = frames::try_pool() else { return false };
        // From the reserve: user memory running out must not starve the
        // kernel's bookkeeping.
        let Ok(run) = pool.alloc_frames_reserved(MAX_ORDER) else { return false };
        // SAFETY: the run was just allocated for the heap and is never
        // freed; the linear map covers it read-write.
        unsafe { self.add(phys_to_virt(run).as_u64() as *mut u8, REGION_BYTES) }
    }

    /// First fit over the regions in the order they were added: the boot
    /// region first, then the oldest grown one. Why: the newest regions
    /// then hold only what did not fit below, so once a burst of work ends
    /// they empty and go back to the pool; taking from the newest first
    /// puts whatever a burst leaves behind (a shrunk table, a new tree
    /// node) in the newest region and pins it. With `use_bounds`, regions
    /// known to have no block large enough are skipped.
    fn allocate(&mut self, layout: Layout, use_bounds: bool) -> Option<NonNull<u8>> {
        let size = layout.size();
        for (heap, bound) in self.heaps[..self.count].iter_mut().zip(&mut self.hole_bounds) {
            if use_bounds && size > *bound {
                continue;
            }
            match heap.allocate_first_fit(layout) {
                Ok(block) => return Some(block),
                Err(()) => *bound = (*bound).min(size.saturating_sub(1)),
            }
        }
        None
    }

    /// Gives back a block `alloc` handed out, and the region it was in
    /// when that leaves it empty (a grown one).
    fn release(&mut self, ptr: *mut u8, layout: Layout) {
        self.release_block(ptr, layout);
        self.publish_free();
    }

    fn release_block(&mut self, ptr: *mut u8, layout: Layout) {
        let count = self.count;
        let address = ptr as usize;
        let Some(index) =
            self.heaps[..count].iter().position(|h| (h.bottom() as usize..h.top() as usize).contains(&address))
        else {
            return;
        };
        let heap = &mut self.heaps[index];
        // SAFETY: `ptr` came from this region's `allocate_first_fit` with
        // `layout` (the caller's contract), and is in its range.
        unsafe { heap.deallocate(NonNull::new_unchecked(ptr), layout) };
        let bound = &mut self.hole_bounds[index];
        // The allocator rounds a block up to its own granule (at most 16).
        *bound = bound.saturating_mul(2).saturating_add(layout.size() + 16);
        let heap = &self.heaps[index];
        // A grown region that is empty again goes back to the frame pool,
        // so that the heap shrinks once the work that grew it is over. The
        // others keep their order (see `allocate`).
        if index > 0 && heap.used() == 0 {
            let start = crate::memory::virt_to_phys(aspen_mm::VirtAddr::new(heap.bottom() as u64));
            self.heaps[index..count].rotate_left(1);
            self.hole_bounds[index..count].rotate_left(1);
            self.heaps[count - 1] = Heap::empty();
            self.count -= 1;
            if let Some(pool) = frames::try_pool() {
                pool.free_frames(start, MAX_ORDER);
            }
        }
    }
}

impl Regions {
    /// Free bytes in all regions (in blocks of any size).
    fn free_bytes(&self) -> usize {
        self.heaps[..self.count].iter().map(Heap::free).sum()
    }

    /// Gives back the newest regions while they are empty (a preload grew
    /// them and nothing was allocated there) and the others keep `keep`
    /// bytes free: a run of preloads of one size does not take and give
    /// back a region each time.
    fn shrink_empty(&mut self, keep: usize) {
        while self.count > 1
            && self.heaps[self.count - 1].used() == 0
            && self.free_bytes() - self.heaps[self.count - 1].free() >= keep
        {
            let heap = &mut self.heaps[self.count - 1];
            let start = crate::memory::virt_to_phys(aspen_mm::VirtAddr::new(heap.bottom() as u64));
            *heap = Heap::empty();
            self.hole_bounds[self.count - 1] = usize::MAX;
            self.count -= 1;
            if let Some(pool) = frames::try_pool() {
                pool.free_frames(start, MAX_ORDER);
            }
        }
        self.publish_free();
    }

    /// A block for `layout` from the regions, grown by one when none has
    /// room.
    fn allocate_growing(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        let block = self.allocate_or_grow(layout);
        self.publish_free();
        block
    }

    fn allocate_or_grow(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        match self.allocate(layout, true) {
            Some(block) => Some(block),
            // The bounds are estimates (alignment and the allocator's split
            // rules can refuse a block that is large enough): before failing,
            // every region is walked.
            None if self.grow() => self.allocate(layout, true),
            None => self.allocate(layout, false),
        }
    }
}

/// Slabs are blocks of the regions, aligned to their size.
impl SlabSource for Regions {
    fn take(&mut self, bytes: usize) -> Option<NonNull<u8>> {
        self.allocate_growing(Layout::from_size_align(bytes, bytes).ok()?)
    }

    /// The boot region is never given back; grown regions are, once empty.
    fn is_lasting(&self, block: NonNull<u8>) -> bool {
        let boot = &self.heaps[0];
        (boot.bottom() as usize..boot.top() as usize).contains(&(block.as_ptr() as usize))
    }

    unsafe fn give_back(&mut self, block: NonNull<u8>, bytes: usize) {
        // SAFETY: `take` made this layout; it cannot fail a second time.
        let layout = unsafe { Layout::from_size_align_unchecked(bytes, bytes) };
        self.release(block.as_ptr(), layout);
    }
}

/// Blocks above this size come straight from the frame pool.
const LARGE: usize = REGION_BYTES / 2;

/// The frame-pool order that holds `layout`, if any does.
fn large_order(layout: Layout) -> Option<u32> {
    let pages = layout.size().div_ceil(PAGE_SIZE as usize).next_power_of_two();
    let order = pages.trailing_zeros();
    (order <= MAX_ORDER && layout.align() <= PAGE_SIZE as usize).then_some(order)
}

// SAFETY: allocations come from disjoint regions that only this allocator
// hands out, or from frame runs of their own; `dealloc` returns a block to
// the region (or the frame pool) it came from.
unsafe impl GlobalAlloc for GrowingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if crate::failslab::should_fail() {
            return core::ptr::null_mut();
        }
        crate::failslab::note_preloaded_use(layout.size() as isize);
        if layout.size() > LARGE {
            // A run of frames of its own (an executable being loaded).
            let Some(order) = large_order(layout) else { return core::ptr::null_mut() };
            return match frames::try_pool().map(|pool| pool.alloc_frames(order)) {
                Some(Ok(run)) => phys_to_virt(run).as_u64() as *mut u8,
                _ => core::ptr::null_mut(),
            };
        }
        // Interrupt handlers free (a sleeper's B-tree node) though they
        // never allocate, and kernel threads run with IRQs unmasked: none
        // may come while the lock is held, or it would spin on it forever.
        let irq = crate::arch::cpu::disable_irqs();
        let mut heaps = self.0.lock();
        let Heaps { regions, slabs } = &mut *heaps;
        let block = if slab::serves(layout.size(), layout.align()) {
            slabs.allocate(layout.size(), layout.align(), regions)
        } else {
            regions.allocate_growing(layout)
        };
        drop(heaps);
        crate::arch::cpu::restore_irqs(irq);
        block.map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        crate::failslab::note_preloaded_use(-(layout.size() as isize));
        if layout.size() > LARGE {
            if let (Some(order), Some(pool)) = (large_order(layout), frames::try_pool()) {
                pool.free_frames(crate::memory::virt_to_phys(aspen_mm::VirtAddr::new(ptr as u64)), order);
            }
            return;
        }
        let irq = crate::arch::cpu::disable_irqs();
        let mut heaps = self.0.lock();
        let Heaps { regions, slabs } = &mut *heaps;
        match NonNull::new(ptr) {
            // SAFETY: `alloc` gave this block out of the slabs for the
            // same layout (the caller's contract).
            Some(block) if slab::serves(layout.size(), layout.align()) => unsafe {
                slabs.free(block, layout.size(), layout.align(), regions)
            },
            _ => regions.release(ptr, layout),
        }
        drop(heaps);
        crate::arch::cpu::restore_irqs(irq);
    }
}

/// Hands `[start, start + size)` to the heap as its first region.
///
/// # Safety
/// The range must be mapped read-write, unused by anything else, and live
/// for the rest of the kernel's life. Called once.
pub unsafe fn init(start: *mut u8, size: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { HEAP.0.lock().regions.add(start, size) };
}

/// Bytes of heap in use (blocks handed out, slabs' free objects not
/// counted) and in all regions.
pub fn usage() -> (usize, usize) {
    let irq = crate::arch::cpu::disable_irqs();
    let heaps = HEAP.0.lock();
    let regions = &heaps.regions.heaps[..heaps.regions.count];
    let (slabs_held, slab_objects) = heaps.slabs.usage();
    let used = regions.iter().map(Heap::used).sum::<usize>().saturating_sub(slabs_held) + slab_objects;
    let size = regions.iter().map(Heap::size).sum();
    drop(heaps);
    crate::arch::cpu::restore_irqs(irq);
    (used, size)
}

/// Free space a preload keeps above what it was asked for: a slab takes
/// an aligned block of the regions (up to 16 KiB), and a first-fit list
/// may not find a block as large as its free total.
const PRELOAD_MARGIN: usize = 64 * 1024;

/// A preloaded section (Linux's `radix_tree_preload`, for bytes): while it
/// lives, the task's heap allocations up to the bytes it reserved cannot
/// fail, and the fault injector leaves them alone (the preload itself was
/// counted). Code that cannot undo a change half-made (a B-tree insert
/// that splits nodes, a fork that copies a process) preloads a bound on
/// what it will allocate, fails with `ENOMEM` before it changes anything
/// when the preload fails, and then allocates freely. A section that
/// allocates more than it reserved is counted (`failslab_preload_overruns`
/// in /proc/vmstat): its bound is wrong.
pub struct Preload {
    reserved: usize,
    /// What it kept free.
    needed: usize,
    /// Who opened it (named when it overruns).
    caller: &'static core::panic::Location<'static>,
    start: crate::failslab::SectionStart,
    /// A section belongs to the task that opened it.
    _not_send: core::marker::PhantomData<*const ()>,
}

/// Reserves `bytes` of kernel heap for the section the returned guard
/// opens. Fails (no side effect) when the heap cannot grow that far.
#[track_caller]
pub fn preload(bytes: usize) -> Result<Preload, OutOfMemory> {
    if crate::failslab::should_fail() {
        return Err(OutOfMemory);
    }
    let needed = bytes.checked_add(PRELOAD_MARGIN).ok_or(OutOfMemory)?;
    if FREE_BYTES.load(Ordering::Relaxed) < needed && !grow_to(needed) {
        return Err(OutOfMemory);
    }
    let caller = core::panic::Location::caller();
    Ok(Preload {
        reserved: bytes,
        needed,
        caller,
        start: crate::failslab::open_preload(),
        _not_send: core::marker::PhantomData,
    })
}

/// Free bytes in the heap's regions, as of their last change.
static FREE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Grows the heap until its regions have `needed` bytes free; false (and
/// nothing kept) when the frame pool cannot give that much.
fn grow_to(needed: usize) -> bool {
    let irq = crate::arch::cpu::disable_irqs();
    let mut heaps = HEAP.0.lock();
    let mut enough = true;
    while heaps.regions.free_bytes() < needed {
        if !heaps.regions.grow() {
            enough = false;
            break;
        }
        SPARE_REGION.store(true, Ordering::Relaxed);
    }
    if !enough {
        heaps.regions.shrink_empty(0);
    }
    drop(heaps);
    crate::arch::cpu::restore_irqs(irq);
    enough
}

impl Drop for Preload {
    fn drop(&mut self) {
        let start = core::mem::replace(&mut self.start, crate::failslab::SectionStart::NONE);
        if let Some(used) = crate::failslab::close_preload(start, self.reserved) {
            log::warn!(
                "heap section preloaded at {} used {used} bytes of the {} it reserved",
                self.caller,
                self.reserved
            );
        }
        // Only after a preload grew the heap can an empty region be left.
        if SPARE_REGION.load(Ordering::Relaxed) {
            let irq = crate::arch::cpu::disable_irqs();
            let mut heaps = HEAP.0.lock();
            let regions = &mut heaps.regions;
            regions.shrink_empty(self.needed);
            let spare = regions.count > 1 && regions.heaps[regions.count - 1].used() == 0;
            SPARE_REGION.store(spare, Ordering::Relaxed);
            drop(heaps);
            crate::arch::cpu::restore_irqs(irq);
        }
    }
}

/// Set when a preload grew the heap and an empty region may be left at
/// its end (which the next section to end gives back, if it can).
static SPARE_REGION: AtomicBool = AtomicBool::new(false);

/// The kernel heap could not provide what a preload asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

impl From<OutOfMemory> for aspen_mm::errno::Errno {
    fn from(_: OutOfMemory) -> Self {
        aspen_mm::errno::Errno::ENOMEM
    }
}
