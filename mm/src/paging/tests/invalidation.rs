//! Exactly which TLB maintenance each operation issues, recorded.

use std::vec::Vec;

use super::{pages, Fixture};
use crate::addr::{VirtAddr, PAGE_SIZE};
use crate::paging::{PageAttrs, VaHalf};
use crate::testbed::{RecordingTlb, TlbEvent};
use crate::tlb::{Asid, TlbScope, PER_PAGE_LIMIT};

const MIB: u64 = 1 << 20;
const ASID: Asid = Asid(7);
const SCOPE: TlbScope = TlbScope::Asid(ASID);
/// A page kept mapped so the table under the test range never empties.
const ANCHOR: u64 = 0x5f_f000;
const BASE: u64 = 0x40_0000;

fn leaf(va: u64) -> TlbEvent {
    TlbEvent::Page { asid: ASID, va: VirtAddr::new(va), leaf_only: true }
}

/// `Begin`, the given invalidations, `Sync`.
fn bracket(invalidations: impl IntoIterator<Item = TlbEvent>) -> Vec<TlbEvent> {
    let mut v = std::vec![TlbEvent::Begin];
    v.extend(invalidations);
    v.push(TlbEvent::Sync);
    v
}

#[test]
fn mapping_issues_nothing() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, BASE, 40, PageAttrs::USER_RW);
    // Installing into invalid entries through a cursor issues nothing either,
    // be it a map or a replace of nothing.
    let mut cursor = pt.cursor(&tlb, SCOPE, pages(0x100_0000, 2)).unwrap();
    cursor.map(fx.data_frame(0), PageAttrs::USER_RO).unwrap();
    assert!(cursor.next_page());
    assert_eq!(cursor.replace(fx.data_frame(1), PageAttrs::USER_RO), Ok(None));
    assert!(tlb.events().is_empty(), "{:?}", tlb.events());
}

#[test]
fn unmap_up_to_the_limit_invalidates_each_leaf() {
    for n in [1, 2, PER_PAGE_LIMIT as u64] {
        let fx = Fixture::new(4 * MIB);
        let tlb = RecordingTlb::new();
        let mut pt = fx.table(VaHalf::Lower);
        fx.map_pages(&mut pt, ANCHOR, 1, PageAttrs::USER_RW);
        fx.map_pages(&mut pt, BASE, n, PageAttrs::USER_RW);
        pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(BASE, n)).unwrap();
        assert_eq!(tlb.take(), bracket((0..n).map(|i| leaf(BASE + i * PAGE_SIZE))), "{n} pages");
    }
}

#[test]
fn unmap_past_the_limit_invalidates_the_asid_once() {
    let n = PER_PAGE_LIMIT as u64 + 1;
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, ANCHOR, 1, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, BASE, n, PageAttrs::USER_RW);
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(BASE, n)).unwrap();
    assert_eq!(tlb.take(), bracket([TlbEvent::Asid(ASID)]));
}

#[test]
fn holes_cost_nothing() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, ANCHOR, 1, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, BASE + 0x10_0000, 1, PageAttrs::USER_RW);
    // 1000 pages of range, one of them mapped.
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(BASE, 0x1f0)).unwrap();
    assert_eq!(tlb.take(), bracket([leaf(BASE + 0x10_0000)]));
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(BASE, 0x1f0)).unwrap();
    assert!(tlb.take().is_empty(), "nothing left to unmap, nothing to invalidate");
}

#[test]
fn freed_tables_get_non_leaf_invalidation() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, BASE, 2, PageAttrs::USER_RW);
    // The L3, L2 and L1 tables above the two pages all empty: the walk
    // caches must drop them, through a non-leaf invalidation in their
    // range (here merged with the first page's).
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(BASE, 2)).unwrap();
    assert_eq!(
        tlb.take(),
        bracket([TlbEvent::Page { asid: ASID, va: VirtAddr::new(BASE), leaf_only: false }, leaf(BASE + PAGE_SIZE)])
    );
    assert_eq!(pt.table_pages(), 1);

    // Only the L3 of a second 2 MiB region empties: its own non-leaf
    // invalidation, with the pages of the region that stays leaf-only.
    fx.map_pages(&mut pt, BASE, 1, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, BASE + 0x20_0000, 1, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, BASE + 0x20_0000 + PAGE_SIZE, 1, PageAttrs::USER_RW);
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(BASE + 0x1f_f000, 2)).unwrap();
    assert_eq!(tlb.take(), bracket([leaf(BASE + 0x20_0000)]));
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(BASE + 0x20_1000, 1)).unwrap();
    assert_eq!(
        tlb.take(),
        bracket([TlbEvent::Page { asid: ASID, va: VirtAddr::new(BASE + 0x20_1000), leaf_only: false }])
    );
    assert_eq!(pt.table_pages(), 4);
}

#[test]
fn one_batch_for_several_ranges() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, ANCHOR, 1, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, BASE, 4, PageAttrs::USER_RW);
    let mut ed = pt.edit(&tlb, SCOPE, fx.free_leaf());
    ed.unmap(pages(BASE, 1)).unwrap();
    ed.unmap(pages(BASE + 2 * PAGE_SIZE, 2)).unwrap();
    ed.protect(pages(BASE + PAGE_SIZE, 1), PageAttrs::USER_RO).unwrap();
    // Nothing issued until the batch ends.
    assert!(tlb.events().is_empty());
    ed.finish();
    assert_eq!(
        tlb.take(),
        bracket([leaf(BASE), leaf(BASE + 2 * PAGE_SIZE), leaf(BASE + 3 * PAGE_SIZE), leaf(BASE + PAGE_SIZE)])
    );
}

#[test]
fn protect_invalidates_changed_leaves_only() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, BASE, 2, PageAttrs::USER_RO);
    fx.map_pages(&mut pt, BASE + 2 * PAGE_SIZE, 2, PageAttrs::USER_RW);
    pt.edit(&tlb, SCOPE, |_| {}).protect(pages(BASE, 4), PageAttrs::USER_RO).unwrap();
    assert_eq!(tlb.take(), bracket([leaf(BASE + 2 * PAGE_SIZE), leaf(BASE + 3 * PAGE_SIZE)]));
    pt.edit(&tlb, SCOPE, |_| {}).protect(pages(BASE, 4), PageAttrs::USER_RO).unwrap();
    assert!(tlb.take().is_empty());
}

#[test]
fn global_entries_are_invalidated_for_every_asid() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    // A lower-half table holding a global kernel page (a boot identity
    // map) next to user pages.
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, BASE, 1, PageAttrs::KERNEL_RW);
    fx.map_pages(&mut pt, BASE + PAGE_SIZE, 1, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, ANCHOR, 1, PageAttrs::USER_RW);
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(BASE, 2)).unwrap();
    assert_eq!(
        tlb.take(),
        bracket([TlbEvent::KernelPage { va: VirtAddr::new(BASE), leaf_only: true }, leaf(BASE + PAGE_SIZE)])
    );
}

#[test]
fn kernel_tables_use_all_asid_operations() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    let base = 0xffff_0000_0040_0000;
    let mut pt = fx.table(VaHalf::Upper);
    fx.map_pages(&mut pt, base - PAGE_SIZE, 1, PageAttrs::KERNEL_RW);
    fx.map_pages(&mut pt, base, 40, PageAttrs::KERNEL_RW);
    // The ASID given is ignored for an upper-half table.
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(base, 2)).unwrap();
    assert_eq!(
        tlb.take(),
        bracket([0, 1].map(|i| TlbEvent::KernelPage { va: VirtAddr::new(base + i * PAGE_SIZE), leaf_only: true }))
    );
    pt.edit(&tlb, TlbScope::AllAsids, fx.free_leaf()).unmap(pages(base, 40)).unwrap();
    assert_eq!(tlb.take(), bracket([TlbEvent::All]));
    // The last page empties the tables: non-leaf, every ASID.
    pt.edit(&tlb, TlbScope::AllAsids, fx.free_leaf()).unmap(pages(base - PAGE_SIZE, 1)).unwrap();
    assert_eq!(tlb.take(), bracket([TlbEvent::KernelPage { va: VirtAddr::new(base - PAGE_SIZE), leaf_only: false }]));
    assert_eq!(fx.in_use(), 1);
}

#[test]
fn a_large_unmap_is_one_batch() {
    let fx = Fixture::new(8 * MIB);
    let tlb = RecordingTlb::new();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, ANCHOR, 1, PageAttrs::USER_RW);
    // More leaves than the editor holds inline: the rest wait on the heap.
    let n = 2 * crate::paging::GATHER_LEAVES as u64 + 10;
    fx.map_pages(&mut pt, BASE, n, PageAttrs::USER_RW);
    pt.edit(&tlb, SCOPE, fx.free_leaf()).unmap(pages(BASE, n)).unwrap();
    // One ASID invalidation, one barrier pair, then every frame freed.
    assert_eq!(tlb.take(), bracket([TlbEvent::Asid(ASID)]));
    assert_eq!(fx.in_use(), 1 + 3 + 1);
}
