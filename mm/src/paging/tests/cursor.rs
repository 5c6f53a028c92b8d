//! The cursor: query, map, protect and replace at a position, moves across
//! table boundaries, exactly which TLB maintenance each change issues, and
//! the TLB model catching a change made without it.

use core::cell::Cell;
use std::vec::Vec;

use super::{pages, Fixture, Limited, RAM_BASE};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::{BuddyAllocator, FrameAllocator};
use crate::paging::{
    Access, Change, Mapping, MemoryType, PageAttrs, PageSize, PageTable, PagingError, Privilege, VaHalf,
};
use crate::testbed::{Arena, El, Fault, Machine, NoTlb, RecordingTlb, TlbEvent};
use crate::tlb::{Asid, TlbScope};

const MIB: u64 = 1 << 20;
const ASID: Asid = Asid(4);
const SCOPE: TlbScope = TlbScope::Asid(ASID);
const LOW: u64 = 0x40_0000;
/// The start of the second L0 entry: the walks on either side share only
/// the root.
const L0_EDGE: u64 = 0x80_0000_0000;
/// The kernel's linear map base (TTBR1, T1SZ = 16).
const LINEAR: u64 = 0xffff_0000_0000_0000;

fn bracket(invalidations: impl IntoIterator<Item = TlbEvent>) -> Vec<TlbEvent> {
    let mut v = std::vec![TlbEvent::Begin];
    v.extend(invalidations);
    v.push(TlbEvent::Sync);
    v
}

fn page_4k(va: VirtAddr, pa: PhysAddr, attrs: PageAttrs) -> Mapping {
    Mapping { va, pa, size: PageSize::Size4K, attrs }
}

fn read_tag(cpu: &Machine<'_>, va: VirtAddr) -> Result<u64, Fault> {
    let mut bytes = [0; 8];
    cpu.read_bytes(El::El0, va, &mut bytes)?;
    Ok(u64::from_ne_bytes(bytes))
}

#[test]
fn a_cursor_needs_a_page_aligned_range_inside_the_half() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    let start = VirtAddr::new(LOW);
    assert!(matches!(pt.cursor(&tlb, SCOPE, pages(LOW, 0)), Err(PagingError::OutsideCursor(va)) if va == start));
    let unaligned = VirtRange::new(start + 1, start + PAGE_SIZE);
    assert!(matches!(pt.cursor(&tlb, SCOPE, unaligned), Err(PagingError::MisalignedVirt(_))));
    let kernel = VirtRange::from_start_size(VirtAddr::new(LINEAR), PAGE_SIZE).unwrap();
    assert!(matches!(pt.cursor(&tlb, SCOPE, kernel), Err(PagingError::OutsideHalf(_))));

    let mut cursor = pt.cursor(&tlb, SCOPE, pages(LOW, 2)).unwrap();
    assert_eq!((cursor.va(), cursor.range()), (start, pages(LOW, 2)));
    assert_eq!(cursor.jump(start + 1), Err(PagingError::MisalignedVirt(start + 1)));
    assert_eq!(cursor.jump(start + 2 * PAGE_SIZE), Err(PagingError::OutsideCursor(start + 2 * PAGE_SIZE)));
    assert!(cursor.next_page());
    assert!(!cursor.next_page(), "the end of the range");
    assert_eq!(cursor.va(), start + PAGE_SIZE);
    cursor.jump(start).unwrap();
    assert_eq!(cursor.va(), start);
}

#[test]
fn map_adds_its_tables_all_or_nothing() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let frame = fx.data_frame(1);
    // The root takes one frame; the page needs three tables more: with two
    // frames left the map fails and the tree stays as it was.
    let limited = Limited { inner: &fx.frames, budget: Cell::new(3) };
    let mut pt = PageTable::new(&fx.arena, &limited, VaHalf::Lower).unwrap();
    let before = fx.in_use();
    let va = VirtAddr::new(L0_EDGE);
    let mut cursor = pt.cursor(&tlb, SCOPE, pages(L0_EDGE, 2)).unwrap();
    assert!(matches!(cursor.map(frame, PageAttrs::USER_RW), Err(PagingError::OutOfMemory(_))));
    assert_eq!(cursor.query().map(|l| l.mapping()), None);
    assert_eq!((pt.table_pages(), fx.in_use()), (1, before));

    limited.budget.set(3);
    let mut cursor = pt.cursor(&tlb, SCOPE, pages(L0_EDGE, 2)).unwrap();
    cursor.map(frame, PageAttrs::USER_RW).unwrap();
    assert_eq!(cursor.query().map(|l| l.mapping()), Some(page_4k(va, frame, PageAttrs::USER_RW)));
    assert_eq!(cursor.map(frame, PageAttrs::USER_RO), Err(PagingError::AlreadyMapped(va)));
    // The next page shares the tables.
    assert!(cursor.next_page());
    assert_eq!(cursor.map(frame + 1, PageAttrs::USER_RO), Err(PagingError::MisalignedPhys(frame + 1)));
    let beyond = PhysAddr::new(1 << 48);
    assert_eq!(cursor.map(beyond, PageAttrs::USER_RO), Err(PagingError::PhysOutOfRange(beyond)));
    let second = fx.data_frame(2);
    cursor.map(second, PageAttrs::USER_RO).unwrap();
    assert_eq!(pt.table_pages(), 4);
    assert_eq!(pt.query(va + PAGE_SIZE), Some(page_4k(va + PAGE_SIZE, second, PageAttrs::USER_RO)));
    assert!(tlb.take().is_empty(), "installing needs no maintenance");
    pt.destroy(&tlb, SCOPE, fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn map_run_maps_a_run_of_unmapped_pages_in_one_table_all_or_nothing() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    // Ten pages, two below a last-level table's end and eight above it.
    let start = VirtAddr::new(LOW + 510 * PAGE_SIZE);
    let run = fx.frames.alloc_run(4).unwrap();
    let mut cursor = pt.cursor(&tlb, SCOPE, pages(start.as_u64(), 10)).unwrap();
    // No tables yet: free up to the table's end.
    assert_eq!(cursor.unmapped_run(16), 2);
    assert_eq!(cursor.unmapped_run(1), 1);
    assert_eq!(cursor.map_run(run, 3, PageAttrs::USER_RW), Err(PagingError::AlreadyMapped(start)), "past the table");
    assert_eq!(cursor.query().map(|l| l.mapping()), None, "refused: nothing mapped");
    cursor.map_run(run, 2, PageAttrs::USER_RW).unwrap();
    assert_eq!(cursor.va(), start + PAGE_SIZE, "at the last page mapped");
    assert_eq!(cursor.unmapped_run(16), 0);
    // In the next table, one page mapped on its own three pages on.
    assert!(cursor.next_page());
    let next = start + 2 * PAGE_SIZE;
    cursor.jump(next + 3 * PAGE_SIZE).unwrap();
    cursor.map(run + 2 * PAGE_SIZE, PageAttrs::USER_RO).unwrap();
    cursor.jump(next).unwrap();
    assert_eq!(cursor.unmapped_run(16), 3);
    assert_eq!(cursor.map_run(run + 3 * PAGE_SIZE, 4, PageAttrs::USER_RW), Err(PagingError::AlreadyMapped(next)));
    assert_eq!(cursor.query().map(|l| l.mapping()), None, "refused: nothing mapped");
    assert_eq!(cursor.map_run(run + 1, 2, PageAttrs::USER_RW), Err(PagingError::MisalignedPhys(run + 1)));
    let beyond = PhysAddr::new((1 << 48) - PAGE_SIZE);
    assert_eq!(cursor.map_run(beyond, 2, PageAttrs::USER_RW), Err(PagingError::PhysOutOfRange(beyond)));
    cursor.map_run(run + 3 * PAGE_SIZE, 3, PageAttrs::USER_RW).unwrap();
    // Past the mapped page: up to the range's end.
    cursor.jump(next + 4 * PAGE_SIZE).unwrap();
    assert_eq!(cursor.unmapped_run(16), 4);
    assert_eq!(cursor.map_run(run, 0, PageAttrs::USER_RW), Ok(()));
    // Every page maps the frame of its place in the run, with its attributes.
    let want = |i: u64, pa: PhysAddr, attrs| Some(page_4k(start + i * PAGE_SIZE, pa, attrs));
    assert_eq!(pt.query(start), want(0, run, PageAttrs::USER_RW));
    assert_eq!(pt.query(start + PAGE_SIZE), want(1, run + PAGE_SIZE, PageAttrs::USER_RW));
    for i in 0..3 {
        let pa = run + (3 + i) * PAGE_SIZE;
        assert_eq!(pt.query(next + i * PAGE_SIZE), want(2 + i, pa, PageAttrs::USER_RW));
    }
    assert_eq!(pt.query(next + 3 * PAGE_SIZE), want(5, run + 2 * PAGE_SIZE, PageAttrs::USER_RO));
    assert_eq!(pt.query(next + 4 * PAGE_SIZE), None);
    assert!(tlb.take().is_empty(), "installing needs no maintenance");
    pt.destroy(&tlb, SCOPE, fx.free_leaf());
    fx.frames.free_run(run + 6 * PAGE_SIZE, 10);
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn map_reserved_takes_its_tables_from_the_reserve_alone() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let limited = Limited { inner: &fx.frames, budget: Cell::new(1 + 2 + 3) };
    let mut pt = PageTable::new(&fx.arena, &limited, VaHalf::Lower).unwrap();
    let frame = fx.data_frame(1);
    let va = VirtAddr::new(L0_EDGE);
    // Two tables reserved, three needed: refused, nothing taken.
    let mut short = pt.reserve_tables(2).unwrap();
    let mut cursor = pt.cursor(&tlb, SCOPE, pages(L0_EDGE, 2)).unwrap();
    assert!(matches!(cursor.map_reserved(frame, PageAttrs::USER_RW, &mut short), Err(PagingError::OutOfMemory(_))));
    assert_eq!(cursor.query().map(|l| l.mapping()), None);
    drop(short);
    // The allocator is empty now (the budget is spent on the reserve), yet
    // maps from the reserve succeed; what is left goes back on drop.
    let mut reserve = pt.reserve_tables(3).unwrap();
    let mut cursor = pt.cursor(&tlb, SCOPE, pages(L0_EDGE, 2)).unwrap();
    assert!(matches!(cursor.map(frame, PageAttrs::USER_RW), Err(PagingError::OutOfMemory(_))));
    cursor.map_reserved(frame, PageAttrs::USER_RW, &mut reserve).unwrap();
    assert!(cursor.next_page());
    let second = fx.data_frame(2);
    cursor.map_reserved(second, PageAttrs::USER_RO, &mut reserve).unwrap();
    assert_eq!(pt.query(va), Some(page_4k(va, frame, PageAttrs::USER_RW)));
    assert_eq!(pt.table_pages(), 4);
    drop(reserve);
    assert!(tlb.take().is_empty(), "installing needs no maintenance");
    pt.destroy(&tlb, SCOPE, fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn protect_and_replace_invalidate_that_page_at_once() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, LOW, 1, PageAttrs::USER_RW);
    let mut cursor = pt.cursor(&tlb, SCOPE, pages(LOW, 2)).unwrap();
    let leaf = cursor.query().map(|l| l.mapping()).unwrap();
    let page = TlbEvent::Page { asid: ASID, va: leaf.va, leaf_only: true };
    assert_eq!(cursor.protect(PageAttrs::USER_RO), Ok(Change::InPlace));
    assert_eq!(tlb.take(), bracket([page]));
    assert_eq!(cursor.protect(PageAttrs::USER_RO), Ok(Change::Unchanged));
    let device = PageAttrs::new(Privilege::User, Access::READ, MemoryType::Device).unwrap();
    assert_eq!(cursor.protect(device), Err(PagingError::NeedsBreakBeforeMake(leaf.va)));
    assert!(tlb.take().is_empty());
    // Break-before-make: the old leaf comes back, one invalidation.
    let moved = fx.data_frame(7);
    let old = cursor.replace(moved, PageAttrs::USER_RW).unwrap().map(|l| l.mapping());
    assert_eq!(old, Some(Mapping { attrs: PageAttrs::USER_RO, ..leaf }));
    assert_eq!(tlb.take(), bracket([page]));
    assert_eq!(cursor.query().map(|l| l.mapping()), Some(Mapping { pa: moved, attrs: PageAttrs::USER_RW, ..leaf }));
    // Nothing mapped next door: protect refuses, replace maps.
    assert!(cursor.next_page());
    let next = cursor.va();
    assert_eq!(cursor.query().map(|l| l.mapping()), None);
    assert_eq!(cursor.protect(PageAttrs::USER_RO), Err(PagingError::NotMapped(next)));
    let frame = fx.data_frame(8);
    assert_eq!(cursor.replace(frame, PageAttrs::USER_RO), Ok(None));
    assert_eq!(cursor.query().map(|l| l.mapping()), Some(page_4k(next, frame, PageAttrs::USER_RO)));
    assert!(tlb.take().is_empty());
    fx.frames.free_frame(leaf.pa);
    pt.destroy(&tlb, SCOPE, fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn blocks_are_edited_whole_and_only_inside_the_range() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut kernel = fx.table(VaHalf::Upper);
    let block = VirtRange::from_start_size(VirtAddr::new(LINEAR + RAM_BASE.as_u64()), 2 * MIB).unwrap();
    kernel.map_linear(block, RAM_BASE, PageAttrs::KERNEL_RW).unwrap();
    let whole = Mapping { va: block.start, pa: RAM_BASE, size: PageSize::Size2M, attrs: PageAttrs::KERNEL_RW };

    // One page of the block: the cursor sees the block but may not change
    // what lies outside its range.
    let inside = VirtRange::from_start_size(block.start + 4 * PAGE_SIZE, PAGE_SIZE).unwrap();
    let mut cursor = kernel.cursor(&tlb, SCOPE, inside).unwrap();
    assert_eq!(cursor.query().map(|l| l.mapping()), Some(whole));
    assert_eq!(cursor.protect(PageAttrs::KERNEL_RO), Err(PagingError::PartialBlock(inside.start)));
    assert_eq!(cursor.replace(RAM_BASE, PageAttrs::KERNEL_RO), Err(PagingError::PartialBlock(inside.start)));
    assert_eq!(cursor.map(RAM_BASE, PageAttrs::KERNEL_RO), Err(PagingError::AlreadyMapped(inside.start)));

    // The whole block: changed as one leaf, invalidated for every ASID
    // (an upper-half table), whatever scope the cursor was given.
    let mut cursor = kernel.cursor(&tlb, SCOPE, block).unwrap();
    cursor.jump(block.start + 9 * PAGE_SIZE).unwrap();
    let kernel_page = TlbEvent::KernelPage { va: block.start, leaf_only: true };
    assert_eq!(cursor.protect(PageAttrs::KERNEL_RO), Ok(Change::InPlace));
    assert_eq!(tlb.take(), bracket([kernel_page]));
    let unaligned = RAM_BASE + PAGE_SIZE;
    assert_eq!(cursor.replace(unaligned, PageAttrs::KERNEL_RW), Err(PagingError::MisalignedPhys(unaligned)));
    assert!(tlb.take().is_empty());
    let other = RAM_BASE + 2 * MIB;
    let old = cursor.replace(other, PageAttrs::KERNEL_RW).unwrap().map(|l| l.mapping());
    assert_eq!(old, Some(Mapping { attrs: PageAttrs::KERNEL_RO, ..whole }));
    assert_eq!(tlb.take(), bracket([kernel_page]));
    assert_eq!(cursor.query().map(|l| l.mapping()), Some(Mapping { pa: other, ..whole }));
    kernel.destroy(&tlb, SCOPE, |_| {});
    assert_eq!(fx.in_use(), 0);
}

/// Maps every page of `range` through one cursor, each to a frame tagged
/// with its index, and checks through the TLB model and `query`.
fn map_across(range: VirtRange, tables: usize) {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut pt = fx.table(VaHalf::Lower);
    let mut cursor = pt.cursor(&cpu, SCOPE, range).unwrap();
    let mut frames = Vec::new();
    loop {
        let frame = fx.data_frame(frames.len() as u64);
        cursor.map(frame, PageAttrs::USER_RW).unwrap();
        frames.push(frame);
        if !cursor.next_page() {
            break;
        }
    }
    // Back and forth: each position finds its own page.
    for (i, &frame) in frames.iter().enumerate().rev().chain(frames.iter().enumerate()) {
        let va = range.start + i as u64 * PAGE_SIZE;
        cursor.jump(va).unwrap();
        assert_eq!(cursor.query().map(|l| l.mapping()), Some(page_4k(va, frame, PageAttrs::USER_RW)), "{va:?}");
    }
    assert_eq!(pt.table_pages(), tables);
    cpu.switch(pt.root(), ASID);
    for (i, &frame) in frames.iter().enumerate() {
        let va = range.start + i as u64 * PAGE_SIZE;
        assert_eq!(pt.query(va), Some(page_4k(va, frame, PageAttrs::USER_RW)));
        assert_eq!(read_tag(&cpu, va), Ok(i as u64));
    }
    pt.destroy(&cpu, SCOPE, fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn moves_across_an_l3_table_boundary() {
    // Root, L1, L2 and the two L3 tables on either side of 2 MiB.
    map_across(pages(LOW + 2 * MIB - 3 * PAGE_SIZE, 6), 5);
}

#[test]
fn moves_across_an_l0_entry_boundary() {
    // Every table but the root differs on either side: 1 + 2 * 3.
    map_across(pages(L0_EDGE - 3 * PAGE_SIZE, 6), 7);
}

#[test]
fn changes_pass_the_tlb_model_and_frames_leave_it_first() {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut pt = fx.table(VaHalf::Lower);
    cpu.switch(pt.root(), ASID);
    let va = VirtAddr::new(LOW);
    let first = fx.data_frame(1);
    let mut cursor = pt.cursor(&cpu, SCOPE, pages(LOW, 1)).unwrap();
    cursor.map(first, PageAttrs::USER_RW).unwrap();
    cpu.write(El::El0, va + 8, 1).unwrap();
    cursor.protect(PageAttrs::USER_RO).unwrap();
    assert_eq!(cpu.write(El::El0, va + 8, 2), Err(Fault::Permission { va: va + 8, level: 3 }));
    assert_eq!(read_tag(&cpu, va), Ok(1));
    // Copy-on-write's order: copy, replace, then the old frame may go.
    let copy = fx.data_frame(2);
    let old = cursor.replace(copy, PageAttrs::USER_RW).unwrap().unwrap().mapping();
    assert_eq!(old.pa, first);
    assert!(!cpu.holds_frame(first), "the TLB still leads to the replaced frame");
    fx.frames.free_frame(old.pa);
    assert_eq!(read_tag(&cpu, va), Ok(2));
    cpu.write(El::El0, va + 8, 3).unwrap();
    pt.destroy(&cpu, SCOPE, fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

/// A page mapped read-write and used through the TLB model, then changed
/// through a cursor that skips TLB maintenance.
fn change_without_maintenance(change: impl FnOnce(&Fixture, &mut PageTable<'_, Arena, BuddyAllocator<'static>>)) {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, LOW, 1, PageAttrs::USER_RW);
    cpu.switch(pt.root(), ASID);
    cpu.write(El::El0, VirtAddr::new(LOW) + 8, 1).unwrap();
    change(&fx, &mut pt);
    // The TLB still holds the old leaf; the tables hold the new one.
    let _ = cpu.write(El::El0, VirtAddr::new(LOW) + 8, 2);
}

#[test]
#[should_panic(expected = "stale translation")]
fn model_catches_a_protect_without_invalidation() {
    change_without_maintenance(|_, pt| {
        pt.cursor(&NoTlb, SCOPE, pages(LOW, 1)).unwrap().protect(PageAttrs::USER_RO).unwrap();
    });
}

#[test]
#[should_panic(expected = "break-before-make violated")]
fn model_catches_a_replace_without_invalidation() {
    change_without_maintenance(|fx, pt| {
        pt.cursor(&NoTlb, SCOPE, pages(LOW, 1)).unwrap().replace(fx.data_frame(2), PageAttrs::USER_RW).unwrap();
    });
}
