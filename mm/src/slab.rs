//! Size-class slabs: the kernel heap's allocator for small blocks.
//!
//! A block of at most [`LARGEST`] bytes comes from a slab of its size class
//! (16 to 2,048 bytes, powers of two): a run of memory, aligned to its own
//! size, that holds a header and objects of that one class. Allocation and
//! free are a few loads and stores whatever the heap holds, where a
//! first-fit list allocator walks its holes (a B-tree node freed in a
//! fragmented heap cost about 8,500 instructions with interrupts masked: a
//! real-time task waited that long). The slab of an object is found by
//! rounding its address down; no table is searched.
//!
//! Slabs come from a [`SlabSource`] (the kernel heap's regions) and go back
//! to it when they empty. The source says which of its memory is lasting
//! (the boot region, never given back) and which it wants back once a burst
//! of work is over (grown regions): slabs in lasting memory are allocated
//! from first, and one empty lasting slab per class is kept, so that a class
//! used in bursts of one does not take and give back a slab each time; the
//! others go back as soon as they empty, so that their region can too.

use core::ptr::{self, NonNull};

/// The largest block, in bytes (size or alignment), that slabs serve.
pub const LARGEST: usize = 2048;
/// The smallest class, in bytes.
const SMALLEST: usize = 16;
/// Size classes: 16, 32, ..., 2,048 bytes.
const CLASS_COUNT: usize = (LARGEST / SMALLEST).trailing_zeros() as usize + 1;
/// Classes above this size use larger slabs, so that each holds several.
const SMALL_SLAB_LIMIT: usize = 256;

/// Where slabs come from.
pub trait SlabSource {
    /// A block of `bytes`, aligned to `bytes`, or `None` when there is no
    /// memory.
    fn take(&mut self, bytes: usize) -> Option<NonNull<u8>>;

    /// Whether `block`, from [`take`](SlabSource::take), lies in memory the
    /// source keeps for good (a slab there is allocated from first, and
    /// may be kept empty).
    fn is_lasting(&self, block: NonNull<u8>) -> bool;

    /// Gives back a block that [`take`](SlabSource::take) returned.
    ///
    /// # Safety
    /// `block` came from `take(bytes)` on this source and is no longer used.
    unsafe fn give_back(&mut self, block: NonNull<u8>, bytes: usize);
}

/// The start of every slab.
#[repr(C)]
struct Header {
    /// Freed objects, linked through their first word.
    free: *mut FreeObject,
    /// The class's list of slabs with room (doubly linked).
    next: *mut Header,
    prev: *mut Header,
    /// Objects handed out and not freed.
    in_use: u16,
    /// Whether the slab is in the source's lasting memory.
    lasting: bool,
    /// Objects at this index and above have never been handed out: a new
    /// slab needs no pass to build its free list.
    fresh: u16,
}

/// A freed object's first word.
struct FreeObject {
    next: *mut FreeObject,
}

/// One size class.
struct Class {
    /// Slabs in lasting memory with at least one free object, the first
    /// one allocated from first.
    lasting: *mut Header,
    /// The other slabs with at least one free object, used when no lasting
    /// one has room.
    passing: *mut Header,
    /// The empty slab kept, if any (on `lasting`).
    kept: *mut Header,
    /// Slabs of this class in all.
    slabs: usize,
    /// Objects handed out.
    objects: usize,
}

/// The size classes and their slabs.
pub struct Slabs {
    classes: [Class; CLASS_COUNT],
}

// SAFETY: the slabs' memory belongs to this structure alone (it came from
// its source and is reached only through it); moving it to another CPU
// moves that ownership with it.
unsafe impl Send for Slabs {}

impl Default for Slabs {
    fn default() -> Self {
        Self::new()
    }
}

/// A class's geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    object: usize,
    slab: usize,
    /// Offset of the first object (past the header, aligned to the object).
    first: usize,
    capacity: u16,
}

impl Geometry {
    const fn of(class: usize) -> Self {
        let object = SMALLEST << class;
        let slab = if object <= SMALL_SLAB_LIMIT { 4096 } else { 16384 };
        let first = size_of::<Header>().div_ceil(object) * object;
        Self { object, slab, first, capacity: ((slab - first) / object) as u16 }
    }
}

/// The class that serves a block of `size` bytes aligned to `align`.
fn class_of(size: usize, align: usize) -> Option<usize> {
    let bytes = size.max(align).max(SMALLEST);
    (bytes <= LARGEST).then(|| (bytes.next_power_of_two() / SMALLEST).trailing_zeros() as usize)
}

/// Whether slabs serve blocks of `size` bytes aligned to `align`.
pub fn serves(size: usize, align: usize) -> bool {
    class_of(size, align).is_some()
}

impl Slabs {
    /// No slabs yet: each class takes its first when first used.
    pub const fn new() -> Self {
        const NONE: Class =
            Class { lasting: ptr::null_mut(), passing: ptr::null_mut(), kept: ptr::null_mut(), slabs: 0, objects: 0 };
        Self { classes: [NONE; CLASS_COUNT] }
    }

    /// A block of `size` bytes aligned to `align`, or `None` when the
    /// source has no memory for a new slab. Blocks slabs do not serve
    /// (see [`serves`]) are refused too.
    pub fn allocate(&mut self, size: usize, align: usize, source: &mut impl SlabSource) -> Option<NonNull<u8>> {
        let class = class_of(size, align)?;
        let geometry = Geometry::of(class);
        let state = &mut self.classes[class];
        if state.lasting.is_null() && state.passing.is_null() {
            let block = source.take(geometry.slab)?;
            let lasting = source.is_lasting(block);
            let header = block.as_ptr().cast::<Header>();
            // SAFETY: the block is `geometry.slab` bytes, aligned to that
            // (at least the header's alignment), and ours alone.
            unsafe {
                header.write(Header {
                    free: ptr::null_mut(),
                    next: ptr::null_mut(),
                    prev: ptr::null_mut(),
                    in_use: 0,
                    lasting,
                    fresh: 0,
                })
            };
            // SAFETY: the header was just written and is on no list.
            unsafe { push(state.list(lasting), header) };
            state.slabs += 1;
        }
        let header_ptr = if state.lasting.is_null() { state.passing } else { state.lasting };
        // SAFETY: slabs on the list are live slabs of this class, whose
        // headers only this structure touches.
        let header = unsafe { &mut *header_ptr };
        let object = if header.free.is_null() {
            let index = usize::from(header.fresh);
            header.fresh += 1;
            // SAFETY: `index < capacity` (a slab with room and no freed
            // object has fresh ones), so the object lies inside the slab.
            unsafe { header_ptr.cast::<u8>().add(geometry.first + index * geometry.object) }
        } else {
            let object = header.free;
            // SAFETY: a freed object holds the link written at its free.
            header.free = unsafe { (*object).next };
            object.cast::<u8>()
        };
        if header_ptr == state.kept {
            state.kept = ptr::null_mut();
        }
        header.in_use += 1;
        state.objects += 1;
        if header.in_use == geometry.capacity {
            // SAFETY: the header is on its list.
            unsafe { unlink(state.list(header.lasting), header_ptr) };
        }
        NonNull::new(object)
    }

    /// Frees a block [`allocate`](Slabs::allocate) returned for the same
    /// `size` and `align`, and gives its slab back to `source` when that
    /// leaves it empty (unless it is the one lasting empty slab kept).
    ///
    /// # Safety
    /// `block` came from `allocate(size, align, _)` on this structure and
    /// is not used after this call.
    pub unsafe fn free(&mut self, block: NonNull<u8>, size: usize, align: usize, source: &mut impl SlabSource) {
        let Some(class) = class_of(size, align) else { return };
        let geometry = Geometry::of(class);
        let state = &mut self.classes[class];
        let header_ptr = (block.as_ptr() as usize & !(geometry.slab - 1)) as *mut Header;
        // SAFETY: the block lies in a slab of this class (the caller's
        // contract), which starts at the slab-aligned address below it.
        let header = unsafe { &mut *header_ptr };
        let object = block.as_ptr().cast::<FreeObject>();
        // SAFETY: the object is at least a word, aligned, and no longer used.
        unsafe { object.write(FreeObject { next: header.free }) };
        header.free = object;
        if header.in_use == geometry.capacity {
            // SAFETY: a full slab is on no list.
            unsafe { push(state.list(header.lasting), header_ptr) };
        }
        header.in_use -= 1;
        state.objects -= 1;
        if header.in_use > 0 {
            return;
        }
        if header.lasting && state.kept.is_null() {
            state.kept = header_ptr;
            return;
        }
        // SAFETY: the header is on its list (it had room).
        unsafe { unlink(state.list(header.lasting), header_ptr) };
        state.slabs -= 1;
        // SAFETY: the slab came from `take(geometry.slab)` and holds no
        // object any more.
        unsafe { source.give_back(NonNull::new_unchecked(header_ptr.cast()), geometry.slab) };
    }

    /// Bytes of slabs held, and bytes of objects handed out in them.
    pub fn usage(&self) -> (usize, usize) {
        let sizes = (0..CLASS_COUNT).map(Geometry::of);
        self.classes
            .iter()
            .zip(sizes)
            .fold((0, 0), |(held, used), (c, g)| (held + c.slabs * g.slab, used + c.objects * g.object))
    }
}

impl Class {
    /// The list of slabs with room that a slab in lasting memory, or not,
    /// is on.
    fn list(&mut self, lasting: bool) -> &mut *mut Header {
        if lasting {
            &mut self.lasting
        } else {
            &mut self.passing
        }
    }
}

/// Puts `header` at the front of `list`.
///
/// # Safety
/// `header` is a live slab header on no list; `list` heads a list of live
/// headers.
unsafe fn push(list: &mut *mut Header, header: *mut Header) {
    // SAFETY: the caller's contract.
    unsafe {
        (*header).prev = ptr::null_mut();
        (*header).next = *list;
        if let Some(next) = (*list).as_mut() {
            next.prev = header;
        }
    }
    *list = header;
}

/// Takes `header` off `list`.
///
/// # Safety
/// `header` is on `list`, a list of live headers.
unsafe fn unlink(list: &mut *mut Header, header: *mut Header) {
    // SAFETY: the caller's contract: the neighbours are live headers.
    unsafe {
        let (prev, next) = ((*header).prev, (*header).next);
        match prev.as_mut() {
            Some(prev) => prev.next = next,
            None => *list = next,
        }
        if let Some(next) = next.as_mut() {
            next.prev = prev;
        }
        (*header).prev = ptr::null_mut();
        (*header).next = ptr::null_mut();
    }
}

#[cfg(test)]
mod tests;
