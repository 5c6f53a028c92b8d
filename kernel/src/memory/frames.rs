//! The frame pool (the buddy allocator over all free RAM) and the kernel
//! heap carved from it.

use aspen_mm::frame::{BuddyAllocator, FrameAllocator, FrameMeta, InitError};
use aspen_mm::region::RangeSet;
use aspen_mm::{PhysAddr, PAGE_SIZE};
use spin::Once;

use super::phys_to_virt;

static POOL: Once<BuddyAllocator<'static>> = Once::new();

/// The heap: the largest run the pool hands out (4 MiB), enough for the
/// kernel's bookkeeping; address spaces take frames from the pool.
const HEAP_ORDER: u32 = aspen_mm::frame::MAX_ORDER;

/// Why the frame pool or the heap could not be set up.
#[derive(Debug)]
pub enum FramesError {
    Pool(InitError),
    NoHeap,
}

impl core::fmt::Display for FramesError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Pool(e) => write!(f, "frame pool: {e:?}"),
            Self::NoHeap => f.write_str("no contiguous run left for the kernel heap"),
        }
    }
}

/// The frame pool. Panics if called before [`init`] (boot order bug).
pub fn pool() -> &'static BuddyAllocator<'static> {
    POOL.get().expect("frame pool used before boot set it up")
}

/// The frame pool, if boot has set it up.
pub fn try_pool() -> Option<&'static BuddyAllocator<'static>> {
    POOL.get()
}

/// Sets up the frame pool over `free` (its metadata placed in the highest
/// range with room) and the kernel heap. The linear map must cover `free`.
pub fn init(free: &RangeSet<32>) -> Result<(), FramesError> {
    let ranges = free.as_slice();
    let meta_range = BuddyAllocator::plan_metadata(ranges, PhysAddr::new(1 << 48)).map_err(FramesError::Pool)?;
    let meta_ptr = phys_to_virt(meta_range.start).as_u64() as *mut FrameMeta;
    // SAFETY: `meta_range` is free RAM (from `free`), page aligned, mapped
    // read-write by the linear map, and nothing else uses it: the pool
    // leaves it out of what it hands out.
    let mut pool = unsafe { BuddyAllocator::new_in_place(ranges, meta_range, meta_ptr) }.map_err(FramesError::Pool)?;
    pool.set_cpu_index(crate::arch::cpu::cpu_id);
    let pool = POOL.call_once(|| pool);
    // Kept back from user memory for the kernel heap's growth: 1/64 of
    // RAM, between 4 and 64 MiB.
    let reserve = (pool.total_frame_count() / 64).clamp(1024, 16 * 1024);
    pool.set_reserve(reserve);

    let heap = pool.alloc_frames(HEAP_ORDER).map_err(|_| FramesError::NoHeap)?;
    let heap_bytes = (PAGE_SIZE << HEAP_ORDER) as usize;
    // SAFETY: the run was just allocated for the heap and is never freed;
    // the linear map covers it read-write.
    unsafe { crate::heap::init(phys_to_virt(heap).as_u64() as *mut u8, heap_bytes) };
    log::info!(
        "frame pool: {} frames ({} MiB) free of {}, metadata {:?}; heap {} MiB at {:?}",
        pool.free_frame_count(),
        (pool.free_frame_count() as u64 * PAGE_SIZE) >> 20,
        pool.total_frame_count(),
        meta_range,
        heap_bytes >> 20,
        heap
    );
    Ok(())
}
