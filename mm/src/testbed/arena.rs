//! Simulated physical memory: one zeroed region at a chosen base address.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::boxed::Box;
use std::sync::{Arc, Mutex, Weak};
use std::vec;
use std::vec::Vec;

use crate::addr::{PhysAddr, PhysRange, PAGE_SIZE};
use crate::paging::PhysMemory;

/// Simulated RAM covering `base .. base + size`. Access outside it is a bug
/// in the test or the code under test, and panics with the address.
pub struct Arena {
    range: PhysRange,
    /// Words rather than bytes so that every frame is 8-byte aligned;
    /// atomics because the table code writes through pointers derived from
    /// a shared reference.
    words: Box<[AtomicU64]>,
    /// The machine models that see every table write (`write_u64`).
    watchers: Mutex<Vec<Weak<dyn TableWatch>>>,
    /// Whether any model ever watched: until then, table code writes
    /// entries straight through its pointers (as fast as on hardware).
    watched: AtomicBool,
}

/// What watches the table writes of an [`Arena`]: the machine model, which
/// lets its CPUs walk speculatively around each write and checks
/// break-before-make. Both calls come from the thread that writes.
pub(super) trait TableWatch: Send + Sync {
    /// `new` is about to be stored at `slot`; memory still holds the old
    /// value.
    fn before_write(&self, mem: &Arena, slot: PhysAddr, new: u64);
    /// `old` at `slot` was replaced by `new`.
    fn after_write(&self, mem: &Arena, slot: PhysAddr, old: u64, new: u64);
}

// `AtomicU64` has the size and bit validity of `u64`; the alignment must
// match too for the cast in `Arena::new`.
const _: () = assert!(core::mem::align_of::<AtomicU64>() == core::mem::align_of::<u64>());

impl Arena {
    /// `size` bytes of zeroed memory at `base`; both page aligned.
    pub fn new(base: PhysAddr, size: u64) -> Self {
        assert!(
            base.is_page_aligned() && size.is_multiple_of(PAGE_SIZE),
            "arena {base:?} + {size:#x} not page aligned"
        );
        let range = PhysRange::from_start_size(base, size).expect("arena wraps around");
        let words: Box<[u64]> = vec![0; (size / 8) as usize].into_boxed_slice();
        // SAFETY: `AtomicU64` has the same size, alignment (checked above)
        // and bit validity as `u64`, so the slice reinterprets in place.
        let words = unsafe { Box::from_raw(Box::into_raw(words) as *mut [AtomicU64]) };
        Self { range, words, watchers: Mutex::new(Vec::new()), watched: AtomicBool::new(false) }
    }

    /// Makes `watcher` see every table write from now on, until it is
    /// dropped.
    pub(super) fn watch(&self, watcher: Weak<dyn TableWatch>) {
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).push(watcher);
        self.watched.store(true, Ordering::Relaxed);
    }

    /// The watchers still alive.
    fn live_watchers(&self) -> Vec<Arc<dyn TableWatch>> {
        let mut list = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    }

    /// The physical addresses the arena holds.
    pub fn range(&self) -> PhysRange {
        self.range
    }

    /// Whether `pa` lies in the arena.
    pub fn contains(&self, pa: PhysAddr) -> bool {
        self.range.contains(pa)
    }

    /// Pointer to `len` bytes at `pa`, after checking they are inside.
    fn ptr(&self, pa: PhysAddr, len: usize) -> *mut u8 {
        let inside = PhysRange::from_start_size(pa, len as u64)
            .is_some_and(|r| r.start >= self.range.start && r.end_exclusive <= self.range.end_exclusive);
        assert!(inside, "access to {pa:?} + {len:#x} outside the arena {:?}", self.range);
        self.words.as_ptr().cast::<u8>().cast_mut().wrapping_add((pa - self.range.start) as usize)
    }

    /// Copies the bytes at `pa` into `buf` (panics outside the arena).
    pub fn read_bytes(&self, pa: PhysAddr, buf: &mut [u8]) {
        let src = self.ptr(pa, buf.len());
        // SAFETY: `ptr` checked the bytes are inside the arena; the atomics
        // make writes through shared references legal, and `buf` is
        // separate host memory.
        unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) }
    }

    /// Writes `data` at `pa` (panics outside the arena).
    pub fn write_bytes(&self, pa: PhysAddr, data: &[u8]) {
        let dst = self.ptr(pa, data.len());
        // SAFETY: as in `read_bytes`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) }
    }

    /// The 64-bit word at `pa` (8-byte aligned), as a table walker reads it.
    pub fn read_word(&self, pa: PhysAddr) -> u64 {
        assert!(pa.is_aligned(8), "unaligned word read at {pa:?}");
        let mut bytes = [0; 8];
        self.read_bytes(pa, &mut bytes);
        u64::from_ne_bytes(bytes)
    }
}

// SAFETY: `frame_ptr` checks the frame lies inside the arena and returns a
// pointer into the word storage, which lives as long as the arena, is
// 8-byte aligned, and gives each frame its own bytes.
unsafe impl PhysMemory for Arena {
    fn frame_ptr(&self, frame: PhysAddr) -> *mut u8 {
        assert!(frame.is_page_aligned(), "frame {frame:?} not page aligned");
        self.ptr(frame, PAGE_SIZE as usize)
    }

    fn watches_table_writes(&self) -> bool {
        self.watched.load(Ordering::Relaxed)
    }

    unsafe fn write_u64(&self, pa: PhysAddr, value: u64) {
        assert!(pa.is_aligned(8), "unaligned word write at {pa:?}");
        self.ptr(pa, 8);
        let word = &self.words[((pa - self.range.start) / 8) as usize];
        if !self.watches_table_writes() {
            word.store(value, Ordering::Relaxed);
            return;
        }
        let watchers = self.live_watchers();
        for w in &watchers {
            w.before_write(self, pa, value);
        }
        let old = word.swap(value, Ordering::Relaxed);
        for w in &watchers {
            w.after_write(self, pa, old, value);
        }
    }
}

impl core::fmt::Debug for Arena {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Arena").field("range", &self.range).finish()
    }
}
