//! Slab tests against a source backed by the host's allocator, which
//! counts the slabs it has handed out.

use std::alloc::{alloc, dealloc, Layout};
use std::collections::BTreeMap;
use std::ptr::NonNull;

use proptest::prelude::*;

use super::*;

/// Slabs from the host's allocator; `limit` slabs at most at once, the
/// first `lasting` of them lasting.
struct HostSource {
    out: BTreeMap<usize, usize>,
    limit: usize,
    lasting: Vec<usize>,
    lasting_count: usize,
}

impl HostSource {
    fn new(limit: usize) -> Self {
        Self::with_lasting(limit, usize::MAX)
    }

    fn with_lasting(limit: usize, lasting_count: usize) -> Self {
        Self { out: BTreeMap::new(), limit, lasting: Vec::new(), lasting_count }
    }
}

impl SlabSource for HostSource {
    fn take(&mut self, bytes: usize) -> Option<NonNull<u8>> {
        if self.out.len() >= self.limit {
            return None;
        }
        // SAFETY: a non-zero size and a power-of-two alignment.
        let block = NonNull::new(unsafe { alloc(Layout::from_size_align(bytes, bytes).unwrap()) })?;
        self.out.insert(block.as_ptr() as usize, bytes);
        if self.lasting.len() < self.lasting_count {
            self.lasting.push(block.as_ptr() as usize);
        }
        Some(block)
    }

    fn is_lasting(&self, block: NonNull<u8>) -> bool {
        self.lasting.contains(&(block.as_ptr() as usize))
    }

    unsafe fn give_back(&mut self, block: NonNull<u8>, bytes: usize) {
        assert_eq!(self.out.remove(&(block.as_ptr() as usize)), Some(bytes), "a slab given back that was not taken");
        self.lasting.retain(|&b| b != block.as_ptr() as usize);
        // SAFETY: allocated above with this layout.
        unsafe { dealloc(block.as_ptr(), Layout::from_size_align(bytes, bytes).unwrap()) };
    }
}

impl Drop for HostSource {
    fn drop(&mut self) {
        for (&address, &bytes) in &self.out {
            // SAFETY: allocated in `take` with this layout.
            unsafe { dealloc(address as *mut u8, Layout::from_size_align(bytes, bytes).unwrap()) };
        }
    }
}

#[test]
fn geometry_fits_every_class() {
    for class in 0..CLASS_COUNT {
        let g = Geometry::of(class);
        assert!(g.first >= size_of::<Header>() && g.first.is_multiple_of(g.object));
        assert!(g.capacity >= 7, "class {} holds {}", g.object, g.capacity);
        assert!(g.first + usize::from(g.capacity) * g.object <= g.slab);
    }
    assert_eq!(class_of(1, 1), Some(0));
    assert_eq!(class_of(17, 8), Some(1));
    assert_eq!(class_of(8, 64), Some(2));
    assert_eq!(class_of(2048, 8), Some(CLASS_COUNT - 1));
    assert_eq!(class_of(2049, 8), None);
    assert!(!serves(16, 4096));
}

#[test]
fn objects_are_aligned_distinct_and_slabs_go_back() {
    let mut source = HostSource::new(usize::MAX);
    let mut slabs = Slabs::new();
    for class in 0..CLASS_COUNT {
        let size = SMALLEST << class;
        let count = 3 * usize::from(Geometry::of(class).capacity) + 1;
        let mut blocks: Vec<NonNull<u8>> =
            (0..count).map(|_| slabs.allocate(size, size, &mut source).expect("memory")).collect();
        for (i, block) in blocks.iter().enumerate() {
            assert!((block.as_ptr() as usize).is_multiple_of(size));
            // SAFETY: each block is `size` bytes and ours.
            unsafe { block.as_ptr().write_bytes(i as u8, size) };
        }
        for (i, block) in blocks.iter().enumerate() {
            // SAFETY: as above.
            let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), size) };
            assert!(bytes.iter().all(|&b| b == i as u8), "object {i} of class {size} overwritten");
        }
        assert_eq!(source.out.len(), 4);
        assert_eq!(slabs.usage(), (4 * Geometry::of(class).slab, count * size));
        for block in blocks.drain(..) {
            // SAFETY: allocated above with this size and alignment.
            unsafe { slabs.free(block, size, size, &mut source) };
        }
        // One empty slab stays; the others went back.
        assert_eq!(source.out.len(), 1, "class {size}");
        assert_eq!(slabs.usage(), (Geometry::of(class).slab, 0));
        source = HostSource::new(usize::MAX);
        slabs = Slabs::new();
    }
}

#[test]
fn the_kept_empty_slab_is_reused_not_taken_again() {
    let mut source = HostSource::new(1);
    let mut slabs = Slabs::new();
    for _ in 0..1000 {
        let block = slabs.allocate(40, 8, &mut source).expect("the kept slab");
        // SAFETY: allocated just above.
        unsafe { slabs.free(block, 40, 8, &mut source) };
    }
    assert_eq!(source.out.len(), 1);
}

#[test]
fn passing_slabs_go_back_when_empty_and_lasting_ones_fill_first() {
    // One lasting slab; the burst needs three more.
    let mut source = HostSource::with_lasting(usize::MAX, 1);
    let mut slabs = Slabs::new();
    let capacity = usize::from(Geometry::of(0).capacity);
    let mut burst: Vec<_> = (0..4 * capacity).map(|_| slabs.allocate(16, 8, &mut source).unwrap()).collect();
    assert_eq!(source.out.len(), 4);
    // Free one object in a passing slab and one in the lasting slab: the
    // next allocation goes to the lasting slab.
    let lasting_object = burst.swap_remove(0);
    let passing_object = burst.pop().unwrap();
    // SAFETY: both allocated above.
    unsafe {
        slabs.free(passing_object, 16, 8, &mut source);
        slabs.free(lasting_object, 16, 8, &mut source);
    }
    let again = slabs.allocate(16, 8, &mut source).unwrap();
    assert!(source.is_lasting(NonNull::new((again.as_ptr() as usize & !4095) as *mut u8).unwrap()));
    burst.push(again);
    for block in burst {
        // SAFETY: allocated above.
        unsafe { slabs.free(block, 16, 8, &mut source) };
    }
    // Only the lasting slab is held, kept empty.
    assert_eq!(source.out.len(), 1);
    assert!(source.is_lasting(NonNull::new(*source.out.keys().next().unwrap() as *mut u8).unwrap()));
}

#[test]
fn a_source_out_of_memory_refuses_without_harm() {
    let mut source = HostSource::new(1);
    let mut slabs = Slabs::new();
    let capacity = usize::from(Geometry::of(2).capacity);
    let blocks: Vec<_> = (0..capacity).map(|_| slabs.allocate(64, 8, &mut source).unwrap()).collect();
    assert!(slabs.allocate(64, 8, &mut source).is_none());
    assert!(slabs.allocate(16, 8, &mut source).is_none());
    for block in blocks {
        // SAFETY: allocated above.
        unsafe { slabs.free(block, 64, 8, &mut source) };
    }
    assert_eq!(slabs.usage().1, 0);
    assert!(slabs.allocate(64, 8, &mut source).is_some());
}

proptest! {
    /// Any sequence of allocations and frees keeps every live object's
    /// contents, and once all are freed at most one slab per class is held.
    #[test]
    fn random_sequences_keep_contents(ops in prop::collection::vec((any::<bool>(), 1usize..=2048, 0u32..=6, any::<prop::sample::Index>()), 1..600)) {
        let mut source = HostSource::new(usize::MAX);
        let mut slabs = Slabs::new();
        let mut live: Vec<(NonNull<u8>, usize, usize, u8)> = Vec::new();
        for (n, (allocate, size, align_shift, pick)) in ops.into_iter().enumerate() {
            let align = 1usize << align_shift;
            if allocate || live.is_empty() {
                let block = slabs.allocate(size, align, &mut source).unwrap();
                prop_assert!((block.as_ptr() as usize).is_multiple_of(align));
                // SAFETY: the block is `size` bytes and ours.
                unsafe { block.as_ptr().write_bytes(n as u8, size) };
                live.push((block, size, align, n as u8));
            } else {
                let (block, size, align, tag) = live.swap_remove(pick.index(live.len()));
                // SAFETY: as above.
                let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), size) };
                prop_assert!(bytes.iter().all(|&b| b == tag));
                // SAFETY: allocated with this size and alignment.
                unsafe { slabs.free(block, size, align, &mut source) };
            }
        }
        for (block, size, align, tag) in live {
            // SAFETY: as above.
            let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), size) };
            prop_assert!(bytes.iter().all(|&b| b == tag));
            // SAFETY: allocated with this size and alignment.
            unsafe { slabs.free(block, size, align, &mut source) };
        }
        prop_assert!(source.out.len() <= CLASS_COUNT);
        prop_assert_eq!(slabs.usage().1, 0);
    }
}
