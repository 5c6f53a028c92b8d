//! The heap bound a memory call preloads (`AddressSpace::change_heap_bound`)
//! covers what the call allocates: measured by a counting global allocator
//! (this test binary's own) around mmap, mprotect, munmap and fork on
//! spaces of a few to a few thousand vareas. A bound too small would let a
//! call allocate past its reserve in the kernel, where the allocation could
//! then fail with nothing left to undo it. And the release paths of a file
//! (truncate, its last reference) allocate nothing at all.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use aspen_abi::mman::{MapFlags, Prot};
use aspen_mm::addr::{PhysAddr, VirtAddr, PAGE_SIZE};
use aspen_mm::asid::{AsidAllocator, AsidBits};
use aspen_mm::aspace::{AddressSpace, Env};
use aspen_mm::frame::BuddyAllocator;
use aspen_mm::testbed::{Arena, NoTlb};

/// The system allocator, counting this thread's bytes in use and their
/// peak while a measurement runs.
struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static NET: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(bytes: isize) {
    // `try_with`: the thread's locals may be gone while it exits.
    let _ = MEASURING.try_with(|measuring| {
        if measuring.get() {
            NET.with(|net| {
                net.set(net.get() + bytes);
                PEAK.with(|peak| peak.set(peak.get().max(net.get())));
            });
        }
    });
}

// SAFETY: every call goes to the system allocator unchanged; counting
// touches only thread-locals, which do not allocate once set up.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes `f` had in use at once (allocated less freed).
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    NET.with(|net| net.set(0));
    PEAK.with(|peak| peak.set(0));
    MEASURING.with(|m| m.set(true));
    let result = f();
    MEASURING.with(|m| m.set(false));
    (result, PEAK.with(Cell::get).max(0) as usize)
}

const BASE: u64 = 0x1000_0000;

fn va(raw: u64) -> VirtAddr {
    VirtAddr::new(raw)
}

/// `vareas` one-page mappings from `BASE` on, alternately read-only and
/// read-write (so that none merges).
fn populate(space: &mut AddressSpace<'_, Env<'_, Arena, NoTlb>>, vareas: u64) {
    for i in 0..vareas {
        let prot = if i % 2 == 0 { Prot::READ } else { Prot::READ | Prot::WRITE };
        let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
        space.mmap(va(BASE + i * PAGE_SIZE), PAGE_SIZE, prot, flags, None, 0).unwrap();
    }
}

/// Runs `call` on a fresh space of `vareas` vareas and requires its peak
/// heap use to be within the bound the space gave before it.
fn check(vareas: u64, what: &str, call: impl FnOnce(&mut AddressSpace<'_, Env<'_, Arena, NoTlb>>)) {
    let arena = Arena::new(PhysAddr::new(0x4000_0000), 32 << 20);
    let frames = BuddyAllocator::new_owned(&[arena.range()]).unwrap();
    let tlb = NoTlb;
    let asids = AsidAllocator::new(AsidBits::Sixteen);
    let env = Env::new(&arena, &frames, &tlb, &asids);
    let mut space = AddressSpace::new(&env).unwrap();
    populate(&mut space, vareas);
    let bound = space.change_heap_bound();
    let ((), used) = peak_of(|| call(&mut space));
    assert!(used <= bound, "{what} with {vareas} vareas: {used} bytes allocated at once, bound {bound}");
}

const SIZES: [u64; 5] = [1, 12, 100, 1000, 5000];

#[test]
fn mmap_into_a_hole_and_over_many_vareas() {
    for n in SIZES {
        check(n, "mmap of a page after the last", |space| {
            let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
            space.mmap(va(BASE + (n + 1) * PAGE_SIZE), PAGE_SIZE, Prot::READ, flags, None, 0).unwrap();
        });
        check(n, "mmap MAP_FIXED over every varea", |space| {
            let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
            space.mmap(va(BASE), n * PAGE_SIZE, Prot::READ, flags, None, 0).unwrap();
        });
        check(n, "mmap anywhere", |space| {
            space.mmap(va(0), 4 * PAGE_SIZE, Prot::READ, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).unwrap();
        });
    }
}

#[test]
fn mprotect_and_munmap_split_and_merge() {
    for n in SIZES {
        let middle = BASE + n / 2 * PAGE_SIZE;
        check(n, "mprotect of one varea", |space| {
            space.mprotect(va(middle), PAGE_SIZE, Prot::READ | Prot::WRITE).unwrap();
        });
        check(n, "mprotect over every varea", |space| {
            space.mprotect(va(BASE), n * PAGE_SIZE, Prot::READ | Prot::WRITE).unwrap();
        });
        check(n, "munmap of the middle half", |space| {
            space.munmap(va(BASE + n / 4 * PAGE_SIZE), (n / 2).max(1) * PAGE_SIZE).unwrap();
        });
        check(n, "munmap of one page", |space| {
            space.munmap(va(middle), PAGE_SIZE).unwrap();
        });
    }
}

#[test]
fn fork_copies_within_the_bound() {
    for n in SIZES {
        let mut child = None;
        check(n, "fork", |space| {
            // The child is freed inside the measurement: frees only lower
            // the peak, which its copy already set.
            let forked = space.fork().unwrap();
            child = Some(forked.varea_count());
            drop(forked);
        });
        assert_eq!(child, Some(n as usize));
    }
}

/// What a file's release allocates: nothing. Truncating a file with dirty
/// cached pages mapped shared (its pages past the end leave the cache and
/// the mapping), and its last reference with dirty pages and a pager no one
/// else holds (close, dup3, the unlink or munmap that drops it) must not
/// fail, so they must not allocate.
#[test]
fn truncate_and_a_files_last_reference_allocate_nothing() {
    use std::sync::Arc;

    use aspen_mm::aspace::{FaultKind, MappedFile};
    use aspen_mm::object::{FileIdentity, FileObject, MemoryPager};

    const PAGES: u64 = 64;
    let arena = Arena::new(PhysAddr::new(0x4000_0000), 32 << 20);
    let frames = BuddyAllocator::new_owned(&[arena.range()]).unwrap();
    let tlb = NoTlb;
    let asids = AsidAllocator::new(AsidBits::Sixteen);
    let env = Env::new(&arena, &frames, &tlb, &asids);
    let object = FileObject::new(&env, Arc::new(MemoryPager::new()), FileIdentity::default());
    object.truncate(PAGES * PAGE_SIZE).unwrap();
    object.write(0, &vec![7u8; (PAGES * PAGE_SIZE) as usize]).unwrap();
    let mut space = AddressSpace::new(&env).unwrap();
    let flags = MapFlags::SHARED | MapFlags::FIXED;
    let file = Some(MappedFile::read_write(object.clone()));
    space.mmap(va(BASE), PAGES * PAGE_SIZE, Prot::READ | Prot::WRITE, flags, file, 0).unwrap();
    for page in 0..PAGES {
        space.handle_fault(va(BASE + page * PAGE_SIZE), FaultKind::Write).unwrap();
    }

    let size = 3 * PAGE_SIZE + 5;
    let (result, used) = peak_of(|| {
        object.truncate(size)?;
        space.file_shrunk(object.id(), size);
        Ok::<(), aspen_mm::errno::Errno>(())
    });
    result.unwrap();
    assert_eq!(used, 0, "truncate of a mapped file allocated {used} bytes");
    assert_eq!(object.cached_pages(), 4);

    space.munmap(va(BASE), PAGES * PAGE_SIZE).unwrap();
    assert_eq!(Arc::strong_count(&object), 1);
    let ((), used) = peak_of(|| drop(object));
    assert_eq!(used, 0, "the last reference of a dirty file allocated {used} bytes");
}
