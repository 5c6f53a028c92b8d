//! Map, query, unmap, protect, blocks, splits and the error paths: the
//! tree's contents and the frame accounting.

use core::cell::Cell;
use std::vec::Vec;

use super::{pages, Fixture, FreeWhenForgotten, Limited, RAM_BASE};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::{AllocError, FrameAllocator};
use crate::paging::{
    Access, Change, Mapping, MemoryType, PageAttrs, PageSize, PageTable, PagingError, Privilege, VaHalf,
};
use crate::testbed::{El, RecordingTlb, TlbEvent};
use crate::tlb::{Asid, TlbScope};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const SCOPE: TlbScope = TlbScope::Asid(Asid(1));
/// The kernel's linear map base (TTBR1, T1SZ = 16).
const LINEAR: u64 = 0xffff_0000_0000_0000;

#[test]
fn map_query_unmap() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    assert_eq!(fx.in_use(), 1);
    fx.map_pages(&mut pt, 0x40_0000, 3, PageAttrs::USER_RW);
    // Root, L1, L2, L3.
    assert_eq!(pt.table_pages(), 4);
    assert_eq!(fx.in_use(), 4 + 3);

    let m = pt.query(VirtAddr::new(0x40_1234)).expect("mapped");
    assert_eq!(m.va, VirtAddr::new(0x40_1000));
    assert_eq!(m.size, PageSize::Size4K);
    assert_eq!(m.attrs, PageAttrs::USER_RW);
    assert!(fx.arena.range().contains(m.pa));
    assert_eq!(m.translate(VirtAddr::new(0x40_1234)), Some(m.pa + 0x234));
    assert_eq!(pt.query(VirtAddr::new(0x40_3000)), None);
    assert_eq!(pt.query(VirtAddr::new(0x3f_f000)), None);
    // The other half and non-canonical addresses map nothing.
    assert_eq!(pt.query(VirtAddr::new(LINEAR + 0x40_0000)), None);
    assert_eq!(pt.query(VirtAddr::new(0x1_0000_0000_0000)), None);

    let mut released = Vec::new();
    pt.edit(&tlb, SCOPE, |leaf| {
        released.push(leaf.va);
        fx.frames.free_frame(leaf.pa);
    })
    .unmap(pages(0x40_0000, 3))
    .unwrap();
    assert_eq!(released, [0x40_0000, 0x40_1000, 0x40_2000].map(VirtAddr::new));
    assert_eq!(pt.query(VirtAddr::new(0x40_1000)), None);
    assert_eq!(pt.table_pages(), 1);
    assert_eq!(fx.in_use(), 1);
    pt.destroy(&tlb, SCOPE, fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn map_refuses_mapped_pages_and_changes_nothing() {
    let fx = Fixture::new(4 * MIB);
    let mut pt = fx.table(VaHalf::Lower);
    let pa = fx.data_frame(0);
    pt.map(pages(0x40_1000, 1), pa, PageAttrs::USER_RO).unwrap();
    let used = fx.in_use();
    // The first page is free, the second is not: nothing is mapped.
    let err = pt.map(pages(0x40_0000, 3), RAM_BASE + 0x10_0000, PageAttrs::USER_RW);
    assert_eq!(err, Err(PagingError::AlreadyMapped(VirtAddr::new(0x40_1000))));
    assert_eq!(pt.query(VirtAddr::new(0x40_0000)), None);
    assert_eq!(pt.query(VirtAddr::new(0x40_1000)).unwrap().attrs, PageAttrs::USER_RO);
    // A range that would need new tables elsewhere allocates none either.
    let err = pt.map(pages(0x3f_f000, 3), RAM_BASE, PageAttrs::USER_RW);
    assert_eq!(err, Err(PagingError::AlreadyMapped(VirtAddr::new(0x40_1000))));
    assert_eq!(pt.query(VirtAddr::new(0x3f_f000)), None);
    assert_eq!(fx.in_use(), used);
}

#[test]
fn bad_arguments_are_errors() {
    let fx = Fixture::new(4 * MIB);
    let mut pt = fx.table(VaHalf::Lower);
    let attrs = PageAttrs::USER_RW;
    let va = |v| VirtAddr::new(v);
    assert_eq!(
        pt.map(VirtRange::new(va(0x1001), va(0x3000)), RAM_BASE, attrs),
        Err(PagingError::MisalignedVirt(va(0x1001)))
    );
    assert_eq!(pt.map(pages(0x1000, 1), RAM_BASE + 8, attrs), Err(PagingError::MisalignedPhys(RAM_BASE + 8)));
    let high = pages(LINEAR, 1);
    assert_eq!(pt.map(high, RAM_BASE, attrs), Err(PagingError::OutsideHalf(high)));
    let straddle = VirtRange::new(va((1 << 48) - PAGE_SIZE), va((1 << 48) + PAGE_SIZE));
    assert_eq!(pt.map(straddle, RAM_BASE, attrs), Err(PagingError::OutsideHalf(straddle)));
    let top = PhysAddr::new((1 << 48) - PAGE_SIZE);
    assert_eq!(pt.map(pages(0x1000, 2), top, attrs), Err(PagingError::PhysOutOfRange(top)));
    assert_eq!(pt.map(pages(0x1000, 0), RAM_BASE, attrs), Ok(()));
    assert_eq!(fx.in_use(), 1);

    let tlb = RecordingTlb::new();
    let mut ed = pt.edit(&tlb, SCOPE, |_| {});
    assert_eq!(ed.unmap(high), Err(PagingError::OutsideHalf(high)));
    assert_eq!(ed.split(va(0x1000), PageSize::Size4K), Err(PagingError::NotMapped(va(0x1000))));
    let misaligned = Mapping { va: va(0x20_0000), pa: RAM_BASE + 0x1000, size: PageSize::Size2M, attrs };
    assert_eq!(ed.set(misaligned), Err(PagingError::MisalignedPhys(RAM_BASE + 0x1000)));
    ed.finish();
    assert!(tlb.events().is_empty());
}

#[test]
fn empty_tables_are_freed_one_by_one() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    // Two L3 tables under one L2 table, and one under another L1 entry.
    fx.map_pages(&mut pt, 0x40_0000, 2, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, 0x60_0000, 1, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, 0x80_0000_0000, 1, PageAttrs::USER_RW);
    // Root; L1, L2, 2 x L3; L1, L2, L3.
    assert_eq!(pt.table_pages(), 1 + 4 + 3);

    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(0x40_1000, 1)).unwrap();
    assert_eq!(pt.table_pages(), 8, "the L3 still maps 0x40_0000");
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(0x40_0000, 1)).unwrap();
    assert_eq!(pt.table_pages(), 7, "that L3 is empty now");
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(0x60_0000, 1)).unwrap();
    assert_eq!(pt.table_pages(), 4, "L3, L2 and L1 emptied together");
    // Unmapping holes changes nothing.
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(0, 0x1000)).unwrap();
    assert_eq!(pt.table_pages(), 4);
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(VaHalf::Lower.range()).unwrap();
    assert_eq!(pt.table_pages(), 1);
    assert_eq!(fx.in_use(), 1);
}

#[test]
fn a_table_is_kept_while_an_entry_below_or_above_stays() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    // Entries 0, 100 and 511 of one L3 table: the emptiness check reads
    // from the entry after the unmapped one up, then from the start.
    for index in [0, 100, 511] {
        fx.map_pages(&mut pt, 0x40_0000 + index * PAGE_SIZE, 1, PageAttrs::USER_RW);
    }
    let tables = pt.table_pages();
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(0x40_0000 + 100 * PAGE_SIZE, 1)).unwrap();
    assert_eq!(pt.table_pages(), tables, "entries below and above stay");
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(0x40_0000 + 511 * PAGE_SIZE, 1)).unwrap();
    assert_eq!(pt.table_pages(), tables, "entry 0 stays, found after the wrap");
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(0x40_0000, 1)).unwrap();
    assert_eq!(pt.table_pages(), 1, "all emptied");
}

#[test]
fn vacated_tables_go_and_the_rest_are_read() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, 0x40_0000, 2, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, 0x60_0000, 1, PageAttrs::USER_RW);
    // The L3 of 0x40_0000's 2 MiB lies inside the vacated range: it goes
    // (the host build checks it is really empty); the L2 above it, whose
    // span is not vacated, is read and kept for 0x60_0000.
    let vacated = VirtRange::new(VirtAddr::new(0x20_0000), VirtAddr::new(0x60_0000));
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap_vacating(pages(0x40_0000, 2), vacated).unwrap();
    assert_eq!(pt.table_pages(), 4);
    assert_eq!(pt.query(VirtAddr::new(0x60_0000)).map(|m| m.va), Some(VirtAddr::new(0x60_0000)));
    // A vacated range that does not hold the unmapped one is ignored.
    let elsewhere = VirtRange::new(VirtAddr::new(0), VirtAddr::new(0x20_0000));
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap_vacating(pages(0x60_0000, 1), elsewhere).unwrap();
    assert_eq!(pt.table_pages(), 1);
}

#[test]
fn an_unmap_stretch_ends_after_its_steps() {
    let fx = Fixture::new(4 * MIB);
    let mut pt = fx.table(VaHalf::Lower);
    let at = |page: u64| VirtAddr::new(0x40_0000 + page * PAGE_SIZE);
    // Leaves at pages 0..4 and 40..60 of one table, then one 1 GiB away.
    fx.map_pages(&mut pt, 0x40_0000, 4, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, 0x40_0000 + 40 * PAGE_SIZE, 20, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, 0x4000_0000, 1, PageAttrs::USER_RW);
    let to = |end: u64| VirtRange::new(at(0), VirtAddr::new(end));
    let whole = to(0x4000_1000);
    // Page 0 is a leaf and an entry a multiple of 16: one step each; the
    // empty pages 16 and 32 a step each; pages 40.. one each.
    assert_eq!(pt.unmap_stretch_end(whole, 1), at(1));
    assert_eq!(pt.unmap_stretch_end(whole, 4), at(4));
    assert_eq!(pt.unmap_stretch_end(whole, 5), at(17));
    assert_eq!(pt.unmap_stretch_end(whole, 7), at(41));
    // The rest of the table and the empty gigabyte (its upper entries are
    // free) before the last leaf: 20 more leaves, the empty entries of the
    // table from 60 on (28 multiples of 16 from 64 to 496), then the leaf.
    assert_eq!(pt.unmap_stretch_end(whole, 6 + 20 + 28), at(497));
    assert_eq!(pt.unmap_stretch_end(whole, 6 + 20 + 28 + 1), VirtAddr::new(0x4000_1000));
    assert_eq!(pt.unmap_stretch_end(whole, 1000), whole.end_exclusive);
    // Never nothing: zero steps is one.
    assert_eq!(pt.unmap_stretch_end(whole, 0), at(1));
    // Stretch by stretch, vacating up to each stretch's end, the unmap
    // leaves nothing: no leaf, no table page.
    let tlb = RecordingTlb::new();
    let mut from = whole.start;
    while from < whole.end_exclusive {
        let end = pt.unmap_stretch_end(VirtRange::new(from, whole.end_exclusive), 3);
        let vacated = VirtRange::new(VirtAddr::new(0), end);
        pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap_vacating(VirtRange::new(from, end), vacated).unwrap();
        from = end;
    }
    assert_eq!(pt.table_pages(), 1);
    assert_eq!(fx.in_use(), 1);
}

#[test]
#[should_panic(expected = "still maps something")]
fn a_vacated_range_that_is_not_empty_is_caught_on_the_host() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, 0x40_0000, 2, PageAttrs::USER_RW);
    let wrong = VirtRange::new(VirtAddr::new(0x40_0000), VirtAddr::new(0x60_0000));
    let _ = pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap_vacating(pages(0x40_0000, 1), wrong);
}

#[test]
fn out_of_frames_leaves_the_tree_unchanged() {
    let fx = Fixture::new(4 * MIB);
    let limited = Limited { inner: &fx.frames, budget: Cell::new(1) };
    let mut pt = PageTable::new(&fx.arena, &limited, VaHalf::Lower).unwrap();
    assert_eq!(pt.table_pages(), 1);
    // Needs L1, L2 and L3; only two more frames are allowed.
    limited.budget.set(2);
    let err = pt.map(pages(0x40_0000, 1), RAM_BASE, PageAttrs::USER_RW);
    assert_eq!(err, Err(PagingError::OutOfMemory(AllocError::OutOfMemory)));
    assert_eq!(pt.table_pages(), 1);
    assert_eq!(fx.in_use(), 1, "the two frames taken were given back");
    assert_eq!(pt.query(VirtAddr::new(0x40_0000)), None);
    limited.budget.set(3);
    pt.map(pages(0x40_0000, 1), RAM_BASE, PageAttrs::USER_RW).unwrap();
    assert_eq!(pt.table_pages(), 4);

    // A split that cannot get its table keeps the block.
    let block = VirtRange::new(VirtAddr::new(0x4000_0000), VirtAddr::new(0x4020_0000));
    limited.budget.set(1);
    pt.map_linear(block, RAM_BASE, PageAttrs::USER_RW).unwrap();
    let before = pt.table_pages();
    let tlb = RecordingTlb::new();
    let mut ed = pt.edit(&tlb, SCOPE, |_| {});
    assert_eq!(
        ed.split(VirtAddr::new(0x4000_0000), PageSize::Size4K),
        Err(PagingError::OutOfMemory(AllocError::OutOfMemory))
    );
    assert_eq!(ed.table().query(VirtAddr::new(0x4000_0000)).unwrap().size, PageSize::Size2M);
    ed.finish();
    assert_eq!(pt.table_pages(), before);
    assert!(tlb.events().is_empty());
}

#[test]
fn linear_map_uses_blocks_where_aligned() {
    let fx = Fixture::new(4 * MIB);
    let mut pt = fx.table(VaHalf::Upper);
    // 2 MiB below a GiB boundary, one GiB, 2 MiB and a page above it.
    let pa = PhysAddr::new(GIB - 2 * MIB);
    let size = 2 * MIB + GIB + 2 * MIB + PAGE_SIZE;
    let range = VirtRange::from_start_size(VirtAddr::new(LINEAR + pa.as_u64()), size).unwrap();
    pt.map_linear(range, pa, PageAttrs::KERNEL_RW).unwrap();
    let at = |p: u64| pt.query(VirtAddr::new(LINEAR + p)).map(|m| (m.pa, m.size));
    assert_eq!(at(GIB - 2 * MIB), Some((PhysAddr::new(GIB - 2 * MIB), PageSize::Size2M)));
    assert_eq!(at(GIB), Some((PhysAddr::new(GIB), PageSize::Size1G)));
    assert_eq!(at(2 * GIB - 1), Some((PhysAddr::new(GIB), PageSize::Size1G)));
    assert_eq!(at(2 * GIB), Some((PhysAddr::new(2 * GIB), PageSize::Size2M)));
    assert_eq!(at(2 * GIB + 2 * MIB), Some((PhysAddr::new(2 * GIB + 2 * MIB), PageSize::Size4K)));
    assert_eq!(at(2 * GIB + 2 * MIB + PAGE_SIZE), None);
    assert_eq!(at(GIB - 2 * MIB - PAGE_SIZE), None);
    // Root, one L1, L2 for GiB 0 and for GiB 2, one L3.
    assert_eq!(pt.table_pages(), 5);
    let m = pt.query(VirtAddr::new(LINEAR + GIB + 0x1234_5678)).unwrap();
    assert_eq!(m.translate(VirtAddr::new(LINEAR + GIB + 0x1234_5678)), Some(PhysAddr::new(GIB + 0x1234_5678)));

    // Virtual and physical addresses of different alignment: pages only.
    let mut pt2 = fx.table(VaHalf::Upper);
    let range = VirtRange::from_start_size(VirtAddr::new(LINEAR + 4 * GIB), 2 * MIB).unwrap();
    pt2.map_linear(range, PhysAddr::new(4 * GIB + PAGE_SIZE), PageAttrs::KERNEL_RW).unwrap();
    assert_eq!(pt2.query(range.start).unwrap().size, PageSize::Size4K);
    // 4 KiB pages only through `map`.
    let range = VirtRange::from_start_size(VirtAddr::new(LINEAR + 8 * GIB), 2 * MIB).unwrap();
    pt2.map(range, PhysAddr::new(8 * GIB), PageAttrs::KERNEL_RW).unwrap();
    assert_eq!(pt2.query(range.start).unwrap().size, PageSize::Size4K);
}

#[test]
fn blocks_refuse_partial_changes_until_split() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Upper);
    let base = LINEAR + GIB;
    let block = VirtRange::from_start_size(VirtAddr::new(base), GIB).unwrap();
    pt.map_linear(block, PhysAddr::new(GIB), PageAttrs::KERNEL_RW).unwrap();
    assert_eq!(pt.table_pages(), 2);
    // Mapping inside a block is refused.
    let inside = pages(base + 2 * MIB, 1);
    assert_eq!(pt.map(inside, PhysAddr::new(0), PageAttrs::KERNEL_RW), Err(PagingError::AlreadyMapped(inside.start)));

    let target = VirtAddr::new(base + 3 * MIB + 5 * PAGE_SIZE);
    // Linear-map leaves own no frames: nothing to release.
    let mut ed = pt.edit(&tlb, TlbScope::AllAsids, |_| {});
    assert_eq!(ed.unmap(pages(target.as_u64(), 1)), Err(PagingError::PartialBlock(target)));
    assert_eq!(ed.protect(pages(target.as_u64(), 1), PageAttrs::KERNEL_RO), Err(PagingError::PartialBlock(target)));
    assert!(tlb.take().is_empty());

    ed.split(target, PageSize::Size4K).unwrap();
    // One break-before-make of the 1 GiB block (global: every ASID).
    assert_eq!(
        tlb.take(),
        [TlbEvent::Begin, TlbEvent::KernelPage { va: VirtAddr::new(base), leaf_only: true }, TlbEvent::Sync]
    );
    let q = |va: u64| ed.table().query(VirtAddr::new(va)).map(|m| (m.pa, m.size, m.attrs));
    assert_eq!(
        q(target.as_u64()),
        Some((PhysAddr::new(GIB + 3 * MIB + 5 * PAGE_SIZE), PageSize::Size4K, PageAttrs::KERNEL_RW))
    );
    assert_eq!(q(base), Some((PhysAddr::new(GIB), PageSize::Size2M, PageAttrs::KERNEL_RW)));
    assert_eq!(q(base + GIB - 1), Some((PhysAddr::new(2 * GIB - 2 * MIB), PageSize::Size2M, PageAttrs::KERNEL_RW)));
    assert_eq!(q(base + 2 * MIB), Some((PhysAddr::new(GIB + 2 * MIB), PageSize::Size4K, PageAttrs::KERNEL_RW)));
    assert_eq!(ed.table().table_pages(), 4);
    // Splitting again to a size already reached does nothing.
    ed.split(target, PageSize::Size2M).unwrap();
    assert!(tlb.take().is_empty());

    ed.protect(pages(target.as_u64(), 1), PageAttrs::KERNEL_RO).unwrap();
    ed.unmap(pages(target.as_u64() + PAGE_SIZE, 1)).unwrap();
    ed.finish();
    assert_eq!(pt.query(target).unwrap().attrs, PageAttrs::KERNEL_RO);
    assert_eq!(pt.query(target + PAGE_SIZE), None);
    assert_eq!(pt.query(target + 2 * PAGE_SIZE).unwrap().attrs, PageAttrs::KERNEL_RW);
    // Unmapping whole blocks needs no split.
    pt.edit(&tlb, TlbScope::AllAsids, |_| {}).unmap(block).unwrap();
    assert_eq!(pt.table_pages(), 1);
    assert_eq!(fx.in_use(), 1);
}

#[test]
fn protect_changes_permissions_only() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, 0x40_0000, 4, PageAttrs::USER_RW);
    let mut ed = pt.edit(&tlb, SCOPE, |_| {});
    // Holes inside the range are skipped.
    ed.protect(pages(0x3f_0000, 0x20), PageAttrs::USER_RX).unwrap();
    assert_eq!(ed.table().query(VirtAddr::new(0x40_3000)).unwrap().attrs, PageAttrs::USER_RX);
    let nc = PageAttrs::new(Privilege::User, Access::READ, MemoryType::NormalNonCacheable).unwrap();
    assert_eq!(ed.protect(pages(0x40_0000, 4), nc), Err(PagingError::NeedsBreakBeforeMake(VirtAddr::new(0x40_0000))));
    let kernel = PageAttrs::KERNEL_RW.non_global();
    ed.protect(pages(0x40_0000, 1), kernel).unwrap();
    ed.finish();
    assert_eq!(pt.query(VirtAddr::new(0x40_0000)).unwrap().attrs, kernel);
    assert_eq!(pt.query(VirtAddr::new(0x40_1000)).unwrap().attrs, PageAttrs::USER_RX);
    pt.destroy(&tlb, SCOPE, fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn checked_update_refuses_what_needs_break_before_make() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    let a = fx.data_frame(1);
    let b = fx.data_frame(2);
    let va = VirtAddr::new(0x40_0000);
    let leaf = |pa, attrs| Mapping { va, pa, size: PageSize::Size4K, attrs };
    let mut ed = pt.edit(&tlb, SCOPE, |_| panic!("set releases nothing"));
    assert_eq!(ed.set(leaf(a, PageAttrs::USER_RW)), Ok(Change::Install));
    assert_eq!(ed.set(leaf(a, PageAttrs::USER_RW)), Ok(Change::Unchanged));
    assert_eq!(ed.set(leaf(a, PageAttrs::USER_RO)), Ok(Change::InPlace));
    assert_eq!(ed.set(leaf(b, PageAttrs::USER_RO)), Err(PagingError::NeedsBreakBeforeMake(va)));
    let device = PageAttrs::new(Privilege::User, Access::READ, MemoryType::Device).unwrap();
    assert_eq!(ed.set(leaf(a, device)), Err(PagingError::NeedsBreakBeforeMake(va)));
    // A 2 MiB leaf where a table of pages is: a block-size change.
    let block = Mapping {
        va: VirtAddr::new(0x40_0000),
        pa: PhysAddr::new(0x4000_0000),
        size: PageSize::Size2M,
        attrs: PageAttrs::USER_RO,
    };
    assert_eq!(ed.set(block), Err(PagingError::NeedsBreakBeforeMake(va)));
    ed.finish();
    // Install needed nothing; the permission change one leaf invalidation.
    assert_eq!(tlb.take(), [TlbEvent::Begin, TlbEvent::Page { asid: Asid(1), va, leaf_only: true }, TlbEvent::Sync]);
    fx.frames.free_frame(a);
    fx.frames.free_frame(b);
    pt.destroy(&tlb, SCOPE, |_| {});
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn editor_releases_only_after_the_tlb_forgot() {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let watched = FreeWhenForgotten { fx: &fx, cpu: &cpu };
    let mut pt = PageTable::new(&fx.arena, &watched, VaHalf::Lower).unwrap();
    // Over many L3 tables, so table pages are freed by early flushes too.
    fx.map_pages(&mut pt, 0x40_0000, 200, PageAttrs::USER_RW);
    for i in 0..40 {
        fx.map_pages(&mut pt, 0x4000_0000 + i * 0x20_0000, 1, PageAttrs::USER_RW);
    }
    cpu.switch(pt.root(), Asid(1));
    // One page whose tables all empty: per-page maintenance.
    fx.map_pages(&mut pt, 0x80_0000_0000, 1, PageAttrs::USER_RW);
    cpu.read(El::El0, VirtAddr::new(0x80_0000_0000)).unwrap();
    pt.edit(&cpu, SCOPE, fx.free_leaf()).unmap(pages(0x80_0000_0000, 1)).unwrap();
    // Then everything: early flushes, one ASID invalidation each.
    let mut touched = 0;
    for va in (0..200).map(|i| 0x40_0000 + i * PAGE_SIZE).chain((0..40).map(|i| 0x4000_0000 + i * 0x20_0000)) {
        cpu.read(El::El0, VirtAddr::new(va)).unwrap();
        touched += 1;
    }
    assert_eq!(cpu.cached_leaves(), touched);
    let mut released = 0;
    pt.edit(&cpu, SCOPE, |leaf| {
        assert!(!cpu.holds_frame(leaf.pa), "{leaf:?} released while the TLB still maps it");
        fx.frames.free_frame(leaf.pa);
        released += 1;
    })
    .unmap(VaHalf::Lower.range())
    .unwrap();
    assert_eq!(released, 240);
    assert_eq!(pt.table_pages(), 1);
    assert_eq!(fx.in_use(), 1);
    assert_eq!((cpu.cached_leaves(), cpu.cached_walks()), (0, 0));
}

#[test]
fn rebinding_memory_keeps_the_tree() {
    let fx = Fixture::new(4 * MIB);
    let mut pt = fx.table(VaHalf::Upper);
    pt.map(pages(LINEAR, 1), RAM_BASE, PageAttrs::KERNEL_RO).unwrap();
    let root = pt.root();
    let view = &fx.arena;
    // SAFETY: the same arena reaches the same frames.
    let pt = unsafe { pt.rebind_memory(view) };
    assert_eq!(pt.root(), root);
    assert_eq!(pt.query(VirtAddr::new(LINEAR)).unwrap().pa, RAM_BASE);
}
