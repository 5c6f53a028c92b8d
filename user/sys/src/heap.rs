//! The global allocator: power-of-two size classes carved from `mmap`ed chunks,
//! each class with a free list; large blocks get a mapping of their own.
//!
//! Small blocks (up to one page) never go back to the kernel but are reused, so
//! a long-running program (the shell) stays bounded; large blocks are unmapped
//! on free. It sits on `mmap`, not `brk`, so programs may move the break
//! themselves (usertests does).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

use crate::global::ProcessLocal;
use crate::mem::{self, PAGE_SIZE};

/// Smallest block: 16 bytes (2^4).
const MIN_SHIFT: u32 = 4;
/// Largest small block: one page (2^12).
const MAX_SHIFT: u32 = 12;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// Small blocks are carved from chunks of this size.
const CHUNK_SIZE: usize = 64 * 1024;

/// A free small block: the link to the next free block of its class.
struct FreeBlock {
    next: *mut FreeBlock,
}

struct Heap {
    free: [*mut FreeBlock; CLASSES],
    /// Unused part of the current chunk.
    chunk_next: usize,
    chunk_end: usize,
}

static HEAP: ProcessLocal<Heap> =
    ProcessLocal::new(Heap { free: [ptr::null_mut(); CLASSES], chunk_next: 0, chunk_end: 0 });

/// The size class of a layout, or `None` for a large block.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT).next_power_of_two();
    let shift = size.trailing_zeros();
    (shift <= MAX_SHIFT).then(|| (shift - MIN_SHIFT) as usize)
}

fn class_size(class: usize) -> usize {
    1 << (class as u32 + MIN_SHIFT)
}

/// Bytes of a large block's own mapping.
fn large_len(layout: Layout) -> usize {
    layout.size().div_ceil(PAGE_SIZE) * PAGE_SIZE
}

fn map_anonymous(len: usize) -> *mut u8 {
    // SAFETY: a new private anonymous mapping at an address the kernel picks
    // (no MAP_FIXED) cannot disturb existing memory.
    match unsafe {
        mem::mmap(0, len, mem::Prot::READ | mem::Prot::WRITE, mem::MapFlags::PRIVATE | mem::MapFlags::ANONYMOUS, -1, 0)
    } {
        Ok(addr) => addr as *mut u8,
        Err(_) => ptr::null_mut(),
    }
}

impl Heap {
    fn alloc_small(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: blocks on a free list are ours, unused, and hold a FreeBlock.
            self.free[class] = unsafe { (*head).next };
            return head.cast();
        }
        let size = class_size(class);
        let mut start = self.chunk_next.next_multiple_of(size);
        if self.chunk_end == 0 || start + size > self.chunk_end {
            let chunk = map_anonymous(CHUNK_SIZE);
            if chunk.is_null() {
                return chunk;
            }
            start = chunk as usize;
            self.chunk_end = start + CHUNK_SIZE;
        }
        self.chunk_next = start + size;
        start as *mut u8
    }

    fn free_small(&mut self, block: *mut u8, class: usize) {
        let block = block.cast::<FreeBlock>();
        // SAFETY: the block came from `alloc_small` for this class (at least 16
        // bytes, aligned to its size) and its owner gave it back.
        unsafe { block.write(FreeBlock { next: self.free[class] }) };
        self.free[class] = block;
    }
}

/// The allocator behind `alloc` (Vec, String, Box) in every program.
struct AspenAlloc;

// SAFETY: blocks are disjoint (free lists hold each free block once, chunks are
// carved linearly, large blocks have their own mapping), at least as large and
// as aligned as requested (classes are powers of two >= size and align, carved
// at multiples of their size; mappings are page-aligned and large blocks with
// alignment above a page are refused).
unsafe impl GlobalAlloc for AspenAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => HEAP.with(|heap| heap.alloc_small(class)).unwrap_or(ptr::null_mut()),
            None if layout.align() <= PAGE_SIZE => map_anonymous(large_len(layout)),
            None => ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(class) => {
                HEAP.with(|heap| heap.free_small(block, class));
            }
            None => {
                // SAFETY: a large block is a whole mapping of `large_len` bytes
                // that nobody uses any more.
                let _ = unsafe { mem::munmap(block as usize, large_len(layout)) };
            }
        }
    }
}

#[global_allocator]
static ALLOCATOR: AspenAlloc = AspenAlloc;
