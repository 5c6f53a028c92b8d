//! The passes for address spaces (fork's copy, in-place permission
//! updates, teardown under one invalidation): what they write, and exactly
//! which TLB maintenance they issue.

use std::vec::Vec;

use super::{pages, Fixture};
use crate::addr::{PhysAddr, VirtAddr, PAGE_SIZE};
use crate::frame::FrameAllocator;
use crate::paging::{Descriptor, Leaf, Mapping, NoPause, PageAttrs, PageSize, PageTable, PagingError, VaHalf};
use crate::testbed::{RecordingTlb, TlbEvent};
use crate::tlb::{Asid, TlbScope, PER_PAGE_LIMIT};

const MIB: u64 = 1 << 20;
const ASID: Asid = Asid(9);
const SCOPE: TlbScope = TlbScope::Asid(ASID);
/// Two regions in different L1 entries, so the trees have several tables.
const LOW: u64 = 0x40_0000;
const HIGH: u64 = 0x80_0000_0000;

fn bracket(invalidations: impl IntoIterator<Item = TlbEvent>) -> Vec<TlbEvent> {
    let mut v = std::vec![TlbEvent::Begin];
    v.extend(invalidations);
    v.push(TlbEvent::Sync);
    v
}

fn leaves<M, A>(pt: &PageTable<'_, M, A>) -> Vec<Mapping>
where
    M: crate::paging::PhysMemory + ?Sized,
    A: FrameAllocator + ?Sized,
{
    let mut all = Vec::new();
    pt.visit_leaves(VaHalf::Lower.range(), |leaf: Leaf| all.push(leaf.mapping()));
    all
}

#[test]
fn copy_into_mirrors_the_tree_and_write_protects_the_parent() {
    let fx = Fixture::new(8 * MIB);
    let mut parent = fx.table(VaHalf::Lower);
    let mut child = fx.table(VaHalf::Lower);
    fx.map_pages(&mut parent, LOW, 3, PageAttrs::USER_RW);
    fx.map_pages(&mut parent, LOW + 3 * PAGE_SIZE, 1, PageAttrs::USER_RX);
    fx.map_pages(&mut parent, HIGH, 2, PageAttrs::USER_RW);
    let mut seen = Vec::new();
    let protected = parent
        .copy_into(&mut child, pages(LOW, 512), true, &mut NoPause, |leaf: Leaf| {
            seen.push(leaf.va);
            Some(leaf.desc.write_protected())
        })
        .unwrap();
    assert!(protected);
    assert_eq!(seen, (0..4).map(|i| VirtAddr::new(LOW + i * PAGE_SIZE)).collect::<Vec<_>>());
    // Only the range was copied; the child has the tables it needs.
    assert_eq!(child.table_pages(), 4);
    let (mine, theirs) = (leaves(&parent), leaves(&child));
    assert_eq!(theirs.len(), 4);
    for (m, t) in mine.iter().zip(&theirs) {
        assert_eq!((m.va, m.pa), (t.va, t.pa));
        let want = if m.attrs == PageAttrs::USER_RX { PageAttrs::USER_RX } else { PageAttrs::USER_RO };
        assert_eq!((m.attrs, t.attrs), (want, want), "{m:?}");
    }
    assert_eq!(parent.query(VirtAddr::new(HIGH)).unwrap().attrs, PageAttrs::USER_RW, "outside the range");
    // Copying again over what the child has is refused.
    let again = parent.copy_into(&mut child, pages(LOW, 1), false, &mut NoPause, |leaf: Leaf| Some(leaf.desc));
    assert_eq!(again, Err(PagingError::AlreadyMapped(VirtAddr::new(LOW))));
    // A refusal stops the copy; what was copied stays, no empty table.
    let copied = core::cell::Cell::new(0);
    let failed = parent.copy_into(&mut child, pages(HIGH, 2), false, &mut NoPause, |leaf: Leaf| {
        copied.set(copied.get() + 1);
        (copied.get() < 2).then_some(leaf.desc)
    });
    assert!(matches!(failed, Err(PagingError::OutOfMemory(_))));
    assert_eq!(leaves(&child).len(), 5);
    assert_eq!(child.table_pages(), 7);
    let tlb = RecordingTlb::new();
    child.destroy_at_once(&tlb, SCOPE, &mut NoPause, |_, _| {});
    parent.destroy(&tlb, SCOPE, fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn update_rewrites_permissions_in_one_batch() {
    for n in [2, PER_PAGE_LIMIT as u64 + 1] {
        let fx = Fixture::new(4 * MIB);
        let tlb = RecordingTlb::new();
        let mut pt = fx.table(VaHalf::Lower);
        fx.map_pages(&mut pt, LOW, n, PageAttrs::USER_RW);
        let ro = |leaf: Leaf| leaf.desc.write_protected();
        pt.edit(&tlb, SCOPE, |_| {}).update(pages(LOW, n + 8), ro).unwrap();
        let expected = if n > PER_PAGE_LIMIT as u64 {
            bracket([TlbEvent::Asid(ASID)])
        } else {
            bracket((0..n).map(|i| TlbEvent::Page {
                asid: ASID,
                va: VirtAddr::new(LOW + i * PAGE_SIZE),
                leaf_only: true,
            }))
        };
        assert_eq!(tlb.take(), expected, "{n} pages");
        assert!(leaves(&pt).iter().all(|l| l.attrs == PageAttrs::USER_RO));
        // Nothing to change: nothing issued.
        pt.edit(&tlb, SCOPE, |_| {}).update(pages(LOW, n), ro).unwrap();
        assert!(tlb.take().is_empty());
        // Only permission bits may change.
        let moved = |leaf: Leaf| {
            Descriptor::leaf(PhysAddr::new(0x4000_0000), PageSize::Size4K, PageAttrs::USER_RO)
                .with_permissions_of(leaf.desc)
        };
        let refused = pt.edit(&tlb, SCOPE, |_| {}).update(pages(LOW, 1), moved);
        assert_eq!(refused, Err(PagingError::NeedsBreakBeforeMake(VirtAddr::new(LOW))));
        assert!(tlb.take().is_empty());
        pt.destroy(&tlb, SCOPE, fx.free_leaf());
        assert_eq!(fx.in_use(), 0);
    }
}

#[test]
fn destroy_at_once_invalidates_the_asid_once_before_freeing() {
    let fx = Fixture::new(4 * MIB);
    let tlb = RecordingTlb::new();
    // An empty tree: nothing to forget, nothing issued.
    fx.table(VaHalf::Lower).destroy_at_once(&tlb, SCOPE, &mut NoPause, |_, _| panic!("no leaves"));
    assert!(tlb.take().is_empty());
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, LOW, 40, PageAttrs::USER_RW);
    fx.map_pages(&mut pt, HIGH, 1, PageAttrs::USER_RO);
    let mut released = Vec::new();
    pt.destroy_at_once(&tlb, SCOPE, &mut NoPause, |pt, _| {
        // Invalidated already, and nothing freed yet.
        assert_eq!(tlb.events(), bracket([TlbEvent::Asid(ASID)]));
        pt.visit_leaves(VaHalf::Lower.range(), |leaf: Leaf| released.push(leaf.pa()));
    });
    assert_eq!(released.len(), 41);
    assert_eq!(tlb.take(), bracket([TlbEvent::Asid(ASID)]));
    for pa in released {
        fx.frames.free_frame(pa);
    }
    assert_eq!(fx.in_use(), 0);
}
