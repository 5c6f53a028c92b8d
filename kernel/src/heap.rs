//! The kernel heap: a linked-list allocator over memory from the frame pool.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hands `[start, start + size)` to the heap.
///
/// # Safety
/// The range must be mapped read-write, unused by anything else, and live
/// for the rest of the kernel's life. Called once.
pub unsafe fn init(start: *mut u8, size: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { HEAP.lock().init(start, size) };
}
