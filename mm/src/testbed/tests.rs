//! Tests of the test bed itself: the arena, the recording TLB's protocol
//! checks, and the TLB model's caching and invalidation rules.

use super::{Arena, El, Machine, RecordingTlb, TlbEvent};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::{BuddyAllocator, FrameAllocator};
use crate::paging::{PageAttrs, PageTable, VaHalf};
use crate::tlb::{Asid, TlbOps};

const BASE: PhysAddr = PhysAddr::new(0x4000_0000);
const X: VirtAddr = VirtAddr::new(0x40_0000);

fn page(va: VirtAddr) -> VirtRange {
    VirtRange::from_start_size(va, PAGE_SIZE).unwrap()
}

#[test]
fn arena_reads_back_what_was_written() {
    let arena = Arena::new(BASE, 4 * PAGE_SIZE);
    assert_eq!(arena.range().end_exclusive, BASE + 4 * PAGE_SIZE);
    arena.write_bytes(BASE + 0xffe, &[1, 2, 3, 4]);
    let mut buf = [0; 4];
    arena.read_bytes(BASE + 0xffe, &mut buf);
    assert_eq!(buf, [1, 2, 3, 4]);
    assert_eq!(arena.read_word(BASE + 0x1000), u64::from_ne_bytes([3, 4, 0, 0, 0, 0, 0, 0]));
    assert!(arena.contains(BASE + 0x3fff));
    assert!(!arena.contains(BASE + 0x4000));
}

#[test]
#[should_panic(expected = "outside the arena")]
fn arena_refuses_access_outside() {
    let arena = Arena::new(BASE, PAGE_SIZE);
    arena.write_bytes(BASE + PAGE_SIZE - 1, &[0, 0]);
}

#[test]
fn recording_tlb_records_in_order() {
    let tlb = RecordingTlb::new();
    tlb.invalidate_all_local();
    tlb.begin();
    tlb.invalidate_page(Asid(3), X, true);
    tlb.invalidate_kernel_page(X, false);
    tlb.invalidate_asid(Asid(4));
    tlb.invalidate_all();
    tlb.sync();
    assert_eq!(
        tlb.take(),
        [
            TlbEvent::AllLocal,
            TlbEvent::Begin,
            TlbEvent::Page { asid: Asid(3), va: X, leaf_only: true },
            TlbEvent::KernelPage { va: X, leaf_only: false },
            TlbEvent::Asid(Asid(4)),
            TlbEvent::All,
            TlbEvent::Sync,
        ]
    );
    assert!(tlb.events().is_empty());
}

#[test]
#[should_panic(expected = "begin() while a batch is open")]
fn recording_tlb_refuses_nested_begin() {
    let tlb = RecordingTlb::new();
    tlb.begin();
    tlb.begin();
}

#[test]
#[should_panic(expected = "sync() without begin()")]
fn recording_tlb_refuses_sync_without_begin() {
    RecordingTlb::new().sync();
}

/// The arena, its allocator and two user tables mapping `X` under ASIDs
/// 1 and 2, plus one global kernel page at `X + PAGE_SIZE` in both (global
/// entries match every ASID, so every table must map them alike).
struct Setup {
    arena: Arena,
    frames: BuddyAllocator<'static>,
}

impl Setup {
    fn new() -> Self {
        let arena = Arena::new(BASE, 64 * PAGE_SIZE);
        let frames = BuddyAllocator::new_owned(&[arena.range()]).unwrap();
        Self { arena, frames }
    }

    /// A user table with nothing mapped.
    fn empty_table(&self) -> PageTable<'_, Arena, BuddyAllocator<'static>> {
        PageTable::new(&self.arena, &self.frames, VaHalf::Lower).unwrap()
    }

    fn tables(&self) -> [PageTable<'_, Arena, BuddyAllocator<'static>>; 2] {
        let mut a = PageTable::new(&self.arena, &self.frames, VaHalf::Lower).unwrap();
        let mut b = PageTable::new(&self.arena, &self.frames, VaHalf::Lower).unwrap();
        a.map(page(X), self.frames.alloc_frame().unwrap(), PageAttrs::USER_RW).unwrap();
        let shared = self.frames.alloc_frame().unwrap();
        a.map(page(X + PAGE_SIZE), shared, PageAttrs::KERNEL_RW).unwrap();
        b.map(page(X), self.frames.alloc_frame().unwrap(), PageAttrs::USER_RW).unwrap();
        b.map(page(X + PAGE_SIZE), shared, PageAttrs::KERNEL_RW).unwrap();
        [a, b]
    }
}

fn in_bracket(cpu: &Machine<'_>, f: impl FnOnce()) {
    cpu.begin();
    f();
    cpu.sync();
}

#[test]
fn leaf_invalidation_keeps_the_walk_cache() {
    let s = Setup::new();
    let [a, _] = s.tables();
    let cpu = Machine::new(&s.arena);
    cpu.watch_frees(&s.frames);
    cpu.switch(a.root(), Asid(1));
    cpu.read(El::El0, X).unwrap();
    // L0, L1 and L2 table entries.
    assert_eq!((cpu.cached_leaves(), cpu.cached_walks()), (1, 3));
    // While ASID 1 runs, the CPU would walk X again at once.
    let idle = s.empty_table();
    cpu.switch(idle.root(), Asid(9));
    in_bracket(&cpu, || cpu.invalidate_page(Asid(1), X, true));
    assert_eq!((cpu.cached_leaves(), cpu.cached_walks()), (0, 3));
    cpu.switch(a.root(), Asid(1));
    cpu.read(El::El0, X).unwrap();
    assert_eq!(cpu.stats().walk_hits, 1, "the second walk started from the walk cache");
    cpu.switch(idle.root(), Asid(9));
    in_bracket(&cpu, || cpu.invalidate_page(Asid(1), X, false));
    assert_eq!((cpu.cached_leaves(), cpu.cached_walks()), (0, 0));
}

#[test]
fn asid_invalidation_spares_other_asids_and_global_entries() {
    let s = Setup::new();
    let [a, b] = s.tables();
    let cpu = Machine::new(&s.arena);
    cpu.watch_frees(&s.frames);
    cpu.switch(a.root(), Asid(1));
    cpu.read(El::El0, X).unwrap();
    cpu.read(El::El1, X + PAGE_SIZE).unwrap();
    cpu.switch(b.root(), Asid(2));
    cpu.read(El::El0, X).unwrap();
    // The global page cached through table `a` is hit under ASID 2 too.
    assert!(cpu.read(El::El1, X + PAGE_SIZE).is_ok());
    assert_eq!(cpu.stats().leaf_hits, 1);
    assert_eq!(cpu.cached_leaves(), 3);
    // Nothing runs that would walk the pages again.
    let idle = s.empty_table();
    cpu.switch(idle.root(), Asid(9));
    in_bracket(&cpu, || cpu.invalidate_asid(Asid(1)));
    assert_eq!(cpu.cached_leaves(), 2, "ASID 1's page went; ASID 2's and the global one stay");
    in_bracket(&cpu, || cpu.invalidate_page(Asid(2), X + PAGE_SIZE, true));
    assert_eq!(cpu.cached_leaves(), 1, "a page invalidation for any ASID hits a global entry");
    in_bracket(&cpu, || cpu.invalidate_kernel_page(X, true));
    assert_eq!(cpu.cached_leaves(), 0);
    cpu.invalidate_all_local();
    assert_eq!(cpu.cached_walks(), 0);
}

#[test]
#[should_panic(expected = "stale translation")]
fn machine_catches_a_table_changed_under_a_cached_entry() {
    let s = Setup::new();
    let [a, b] = s.tables();
    let cpu = Machine::new(&s.arena);
    cpu.watch_frees(&s.frames);
    cpu.switch(a.root(), Asid(1));
    cpu.read(El::El0, X).unwrap();
    // Another table under the same ASID without invalidating: what the TLB
    // holds for ASID 1 is no longer what TTBR0 translates to.
    cpu.switch(b.root(), Asid(1));
    let _ = cpu.read(El::El0, X);
}

#[test]
fn broadcast_invalidations_reach_every_cpu_and_local_ones_only_their_own() {
    let s = Setup::new();
    let [a, _] = s.tables();
    let idle = s.empty_table();
    let cpus = Machine::with_cpus(&s.arena, 2);
    cpus.watch_frees(&s.frames);
    for cpu in 0..2 {
        cpus.on(cpu).switch(a.root(), Asid(1));
        cpus.read(El::El0, X).unwrap();
        assert_eq!(cpus.cached_leaves(), 1);
        // Nothing runs that would walk X again after the invalidations.
        cpus.switch(idle.root(), Asid(9));
    }
    cpus.on(1).invalidate_all_local();
    assert_eq!((cpus.cached_leaves(), cpus.on(0).cached_leaves()), (0, 1), "the local flush stayed on CPU 1");
    cpus.on(1).switch(a.root(), Asid(1));
    cpus.read(El::El0, X).unwrap();
    cpus.switch(idle.root(), Asid(9));
    in_bracket(&cpus, || cpus.invalidate_page(Asid(1), X, true));
    assert_eq!((cpus.on(0).cached_leaves(), cpus.on(1).cached_leaves()), (0, 0), "both CPUs heard the TLBI");
}

#[test]
fn an_invalidated_page_still_mapped_is_walked_again_where_it_runs() {
    let s = Setup::new();
    let [a, _] = s.tables();
    let cpus = Machine::with_cpus(&s.arena, 2);
    cpus.on(0).switch(a.root(), Asid(1));
    cpus.on(1).switch(a.root(), Asid(1));
    cpus.on(0).read(El::El0, X).unwrap();
    assert_eq!(cpus.on(1).cached_leaves(), 0);
    in_bracket(&cpus, || cpus.invalidate_page(Asid(1), X, true));
    // CPU 0 lost X and walked it again at once; CPU 1 held nothing.
    assert_eq!((cpus.on(0).cached_leaves(), cpus.on(1).cached_leaves()), (1, 0));
}

#[test]
#[should_panic(expected = "freed while CPU 1's TLB still leads to it")]
fn freeing_a_frame_another_cpu_still_maps_fails() {
    let s = Setup::new();
    let [a, _] = s.tables();
    let cpus = Machine::with_cpus(&s.arena, 2);
    cpus.watch_frees(&s.frames);
    cpus.on(1).switch(a.root(), Asid(1));
    let frame = cpus.translate(El::El0, X, super::AccessKind::Read).unwrap();
    s.frames.free_frame(frame);
}
