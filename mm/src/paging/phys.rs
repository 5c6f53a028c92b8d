//! How table code reaches physical memory: on the kernel through the linear
//! map (PA + a constant), on the host through a simulated arena.

use crate::addr::{PhysAddr, PAGE_SIZE};

/// A view of physical frames as CPU-addressable memory.
///
/// # Safety
/// For every page-aligned `frame` that the table code is handed (table pages
/// from the frame allocator, and frames passed to [`zero_frame`] and
/// [`copy_frame`]), `frame_ptr` returns a pointer that is 8-byte aligned and
/// valid for reads and writes of [`PAGE_SIZE`] bytes for as long as the
/// implementor lives, reaching exactly that frame, so that distinct frames
/// never overlap. Writes through it are seen by the translation table
/// walker (the memory is mapped Normal write-back, or the MMU is off).
pub unsafe trait PhysMemory {
    /// Where `frame` (page aligned) can be read and written.
    fn frame_ptr(&self, frame: PhysAddr) -> *mut u8;

    /// Reads the 64-bit word at `pa` (8-byte aligned) with one load.
    ///
    /// # Safety
    /// The frame holding `pa` must be one the implementor's contract covers,
    /// and no Rust reference may alias that word.
    unsafe fn read_u64(&self, pa: PhysAddr) -> u64 {
        let ptr = self.frame_ptr(pa.align_down(PAGE_SIZE)).wrapping_add(pa.page_offset() as usize);
        // SAFETY: the caller guarantees the frame is covered, so `ptr` is
        // valid and aligned; volatile keeps it one single-copy-atomic load,
        // as the walker may be reading the same word.
        unsafe { ptr.cast::<u64>().read_volatile() }
    }

    /// Fills `frame` with zeroes. The kernel overrides this with `DC ZVA`.
    ///
    /// # Safety
    /// As for [`zero_frame`].
    unsafe fn zero_frame(&self, frame: PhysAddr) {
        // SAFETY: the caller owns the frame and `frame_ptr` gives PAGE_SIZE
        // writable bytes.
        unsafe { core::ptr::write_bytes(self.frame_ptr(frame), 0, PAGE_SIZE as usize) }
    }

    /// Copies frame `src` into frame `dst`. The kernel overrides this with
    /// a paired load/store loop.
    ///
    /// # Safety
    /// As for [`copy_frame`].
    unsafe fn copy_frame(&self, dst: PhysAddr, src: PhysAddr) {
        // SAFETY: both pointers are valid for PAGE_SIZE bytes and distinct
        // frames never overlap (the trait's contract).
        unsafe { core::ptr::copy_nonoverlapping(self.frame_ptr(src), self.frame_ptr(dst), PAGE_SIZE as usize) }
    }

    /// Whether every write of a table entry must go through
    /// [`Self::write_u64`], one by one: true for the host's simulated
    /// memory when a machine model watches table writes (to check
    /// break-before-make and walk speculatively); hardware needs nothing.
    #[inline(always)]
    fn watches_table_writes(&self) -> bool {
        false
    }

    /// Writes the 64-bit word at `pa` (8-byte aligned) with one store.
    ///
    /// # Safety
    /// As for [`Self::read_u64`]; and the word must not be memory that Rust
    /// code uses through other means.
    unsafe fn write_u64(&self, pa: PhysAddr, value: u64) {
        let ptr = self.frame_ptr(pa.align_down(PAGE_SIZE)).wrapping_add(pa.page_offset() as usize);
        // SAFETY: as in `read_u64`; one store so a concurrent walker sees
        // either the old or the new descriptor, never a mix.
        unsafe { ptr.cast::<u64>().write_volatile(value) }
    }
}

/// Fills `frame` with zeroes (through [`PhysMemory::zero_frame`]).
///
/// # Safety
/// `frame` must be covered by `mem`'s contract and owned by the caller: no
/// Rust object lives in it and nobody else reads or writes it meanwhile.
pub unsafe fn zero_frame<M: PhysMemory + ?Sized>(mem: &M, frame: PhysAddr) {
    // SAFETY: the caller's guarantees are the method's.
    unsafe { mem.zero_frame(frame) }
}

/// Copies the frame `src` into the frame `dst` (a copy-on-write fault),
/// through [`PhysMemory::copy_frame`].
///
/// # Safety
/// Both frames must be covered by `mem`'s contract and be distinct; the
/// caller owns `dst` as for [`zero_frame`], and nobody writes `src`
/// meanwhile.
pub unsafe fn copy_frame<M: PhysMemory + ?Sized>(mem: &M, dst: PhysAddr, src: PhysAddr) {
    // SAFETY: the caller's guarantees are the method's.
    unsafe { mem.copy_frame(dst, src) }
}

/// Physical memory seen at a constant offset: the kernel's linear map
/// (`offset` = linear-map base, e.g. `0xFFFF_0000_0000_0000`), or `0`
/// before the MMU is on.
#[derive(Clone, Copy, Debug)]
pub struct LinearMap {
    offset: u64,
}

impl LinearMap {
    /// # Safety
    /// Every frame the table code will be handed must be RAM that is
    /// readable and writable at `frame + offset`, as Normal write-back
    /// memory (or with the MMU off when `offset` is 0), for the value's
    /// whole life.
    pub const unsafe fn new(offset: u64) -> Self {
        Self { offset }
    }

    /// What is added to a physical address to reach it: the linear-map
    /// base, or 0 with the MMU off.
    pub const fn offset(&self) -> u64 {
        self.offset
    }
}

// SAFETY: `new`'s caller promised that every frame handed to the table code
// is mapped at `frame + offset`; distinct frames give distinct, page-sized,
// page-aligned windows.
unsafe impl PhysMemory for LinearMap {
    fn frame_ptr(&self, frame: PhysAddr) -> *mut u8 {
        core::ptr::with_exposed_provenance_mut(frame.as_u64().wrapping_add(self.offset) as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::boxed::Box;

    use super::*;

    /// Two frames of host memory, page aligned.
    #[repr(C, align(4096))]
    struct Frames([u8; 2 * PAGE_SIZE as usize]);

    #[test]
    fn linear_map_reaches_frames_at_an_offset() {
        let mut host = Box::new(Frames([0xaa; 2 * PAGE_SIZE as usize]));
        let base = PhysAddr::new(0x4000_0000);
        let offset = (host.0.as_mut_ptr() as u64).wrapping_sub(base.as_u64());
        // SAFETY: the two frames at `base` are `host`, which outlives `mem`
        // and is only reached through it meanwhile.
        let mem = unsafe { LinearMap::new(offset) };
        let (a, b) = (base, base + PAGE_SIZE);
        // SAFETY: both frames are `host`'s, 8-byte aligned words.
        unsafe {
            zero_frame(&mem, a);
            mem.write_u64(a + 8, 0x0123_4567_89ab_cdef);
            assert_eq!(mem.read_u64(a + 8), 0x0123_4567_89ab_cdef);
            assert_eq!(mem.read_u64(b), 0xaaaa_aaaa_aaaa_aaaa);
            copy_frame(&mem, b, a);
        }
        assert!(host.0[..8].iter().all(|&x| x == 0));
        assert_eq!(host.0[..PAGE_SIZE as usize], host.0[PAGE_SIZE as usize..]);
        assert_eq!(u64::from_ne_bytes(host.0[8..16].try_into().unwrap()), 0x0123_4567_89ab_cdef);
    }
}
