//! Exactly which TLB maintenance mapping and unmapping issue when the ASID
//! comes from the real allocator: including an ASID renewed or changed at
//! a rollover, and 8-bit ASIDs, whose TLBI operands must have bits [15:8]
//! clear. (The batching rules themselves, with a fixed ASID, are tested in
//! `paging::tests::invalidation`.)

use aspen_mm::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use aspen_mm::asid::{AsidAllocator, AsidBits, AsidContext};
use aspen_mm::frame::{BuddyAllocator, FrameAllocator};
use aspen_mm::paging::{Mapping, PageAttrs, PageTable, VaHalf, GATHER_LEAVES};
use aspen_mm::testbed::{Arena, RecordingTlb, TlbEvent};
use aspen_mm::tlb::{Asid, TlbScope, PER_PAGE_LIMIT};

const RAM_BASE: PhysAddr = PhysAddr::new(0x4000_0000);
/// 2 MiB aligned: 512 pages from here fill one L3 table exactly.
const BASE: u64 = 0x4000_0000;

struct Fixture {
    arena: Arena,
    frames: BuddyAllocator<'static>,
    baseline: usize,
}

impl Fixture {
    fn new() -> Self {
        let arena = Arena::new(RAM_BASE, 8 << 20);
        let frames = BuddyAllocator::new_owned(&[arena.range()]).unwrap();
        let baseline = frames.free_frame_count();
        Self { arena, frames, baseline }
    }

    fn table(&self) -> PageTable<'_, Arena, BuddyAllocator<'static>> {
        PageTable::new(&self.arena, &self.frames, VaHalf::Lower).unwrap()
    }

    fn in_use(&self) -> usize {
        self.baseline - self.frames.free_frame_count()
    }

    /// Maps `n` pages from `va`, each to a fresh frame.
    fn map(&self, pt: &mut PageTable<'_, Arena, BuddyAllocator<'static>>, va: u64, n: u64) {
        for i in 0..n {
            let pa = self.frames.alloc_frame().unwrap();
            pt.map(pages(va + i * PAGE_SIZE, 1), pa, PageAttrs::USER_RW).unwrap();
        }
    }

    fn free_leaf(&self) -> impl FnMut(Mapping) + '_ {
        move |leaf| self.frames.free_frame(leaf.pa)
    }
}

fn pages(va: u64, n: u64) -> VirtRange {
    VirtRange::from_start_size(VirtAddr::new(va), n * PAGE_SIZE).unwrap()
}

fn page(asid: Asid, va: u64, leaf_only: bool) -> TlbEvent {
    TlbEvent::Page { asid, va: VirtAddr::new(va), leaf_only }
}

fn bracket(invalidations: impl IntoIterator<Item = TlbEvent>) -> Vec<TlbEvent> {
    let mut v = vec![TlbEvent::Begin];
    v.extend(invalidations);
    v.push(TlbEvent::Sync);
    v
}

/// Every ASID operand in `events` is `asid`, non-zero, and fits `bits`.
fn check_operands(events: &[TlbEvent], asid: Asid, bits: AsidBits) {
    for e in events {
        let operand = match *e {
            TlbEvent::Page { asid, .. } | TlbEvent::Asid(asid) => asid,
            TlbEvent::Begin | TlbEvent::Sync => continue,
            other => panic!("unexpected {other:?} for a user table"),
        };
        assert_eq!(operand, asid, "invalidation under another ASID than the allocator's: {e:?}");
        assert_ne!(operand.0, 0);
        if bits == AsidBits::Eight {
            assert_eq!(operand.0 & 0xff00, 0, "8-bit ASID operand with bits [15:8] set: {e:?}");
        }
    }
}

/// Where the page that keeps tables alive goes: the last page of the L3
/// table under `BASE`, or (when `n` fills that table) the first page of
/// the next one, under the same L2 table.
fn anchor(n: u64) -> u64 {
    if n < 512 {
        BASE + 511 * PAGE_SIZE
    } else {
        BASE + 512 * PAGE_SIZE
    }
}

/// What unmapping `n` pages from `BASE` issues, per the documented rules:
/// one batch per unmap (leaves past the editor's inline room wait on the
/// heap): per-page leaf invalidations up to `PER_PAGE_LIMIT` pages, one
/// whole-ASID invalidation beyond; emptied tables add a non-leaf
/// invalidation at the start of the range (`BASE`), merged into the page
/// there. `anchored`: a page at `anchor(n)` stays mapped, so tables are
/// emptied only when `n` fills the L3 table.
fn expected_unmap(asid: Asid, n: u64, anchored: bool) -> Vec<TlbEvent> {
    let tables_emptied = !anchored || n == 512;
    let mut all: Vec<TlbEvent> = (0..n).map(|i| page(asid, BASE + i * PAGE_SIZE, true)).collect();
    if tables_emptied {
        match all.first_mut() {
            Some(e) => *e = page(asid, BASE, false),
            None => all.push(page(asid, BASE, false)),
        }
    }
    if all.len() > PER_PAGE_LIMIT {
        all = vec![TlbEvent::Asid(asid)];
    }
    if all.is_empty() {
        return Vec::new();
    }
    bracket(all)
}

/// Maps `n` pages under an allocator-assigned ASID (issuing nothing), then
/// unmaps them and compares the recorded invalidations with the rules.
/// Table pages and frames go back to where they were.
fn unmap_n_pages(bits: AsidBits, n: u64, anchored: bool) {
    let fx = Fixture::new();
    let tlb = RecordingTlb::new();
    let asids = AsidAllocator::new(bits);
    // Other address spaces first, so this one gets the last number of the
    // 8-bit space: 0xff, all of bits [7:0] set and none above.
    for _ in 0..254 {
        let other = AsidContext::new();
        asids.switch_to(0, &other, &tlb);
        asids.release(&other);
    }
    let ctx = AsidContext::new();
    let asid = asids.switch_to(0, &ctx, &tlb);
    assert_eq!(asid, Asid(255));
    assert!(tlb.take().is_empty(), "switching issued TLB maintenance");

    let mut pt = fx.table();
    if anchored {
        fx.map(&mut pt, anchor(n), 1);
    }
    let tables_before = pt.table_pages();
    let in_use_before = fx.in_use();
    fx.map(&mut pt, BASE, n);
    assert!(tlb.events().is_empty(), "mapping {n} pages (invalid -> valid) issued {:?}", tlb.events());
    let scope = TlbScope::Asid(ctx.asid().unwrap());
    pt.edit(&tlb, scope, fx.free_leaf()).unmap(pages(BASE, n)).unwrap();
    let events = tlb.take();
    check_operands(&events, asid, bits);
    assert_eq!(events, expected_unmap(asid, n, anchored), "unmapping {n} pages (anchored: {anchored})");
    if n as usize > PER_PAGE_LIMIT {
        assert_eq!(events, bracket([TlbEvent::Asid(asid)]), "one ASIDE1 for {n} pages");
    }
    if n as usize <= PER_PAGE_LIMIT {
        let per_page = events.iter().filter(|e| matches!(e, TlbEvent::Page { leaf_only: true, .. })).count();
        let non_leaf = events.iter().filter(|e| matches!(e, TlbEvent::Page { leaf_only: false, .. })).count();
        assert_eq!(per_page + non_leaf, n as usize, "one invalidation per page");
        assert_eq!(non_leaf, usize::from(!anchored), "non-leaf where tables were freed");
        assert_eq!(events.iter().filter(|e| **e == TlbEvent::Begin).count(), 1);
        assert_eq!(events.iter().filter(|e| **e == TlbEvent::Sync).count(), 1);
    }
    assert_eq!(pt.table_pages(), tables_before, "table pages back to the baseline");
    assert_eq!(fx.in_use(), in_use_before, "frames and table pages back to the baseline");

    // Invalid -> valid again in the emptied range: still nothing.
    fx.map(&mut pt, BASE, n.min(40));
    assert!(tlb.events().is_empty());
    pt.destroy(&tlb, scope, fx.free_leaf());
    check_operands(&tlb.take(), asid, bits);
    asids.release(&ctx);
    assert_eq!(fx.in_use(), 0, "every frame back");
}

#[test]
fn unmap_one_page() {
    for anchored in [true, false] {
        unmap_n_pages(AsidBits::Eight, 1, anchored);
        unmap_n_pages(AsidBits::Sixteen, 1, anchored);
    }
}

#[test]
fn unmap_up_to_the_per_page_limit() {
    for anchored in [true, false] {
        unmap_n_pages(AsidBits::Eight, PER_PAGE_LIMIT as u64, anchored);
        unmap_n_pages(AsidBits::Sixteen, PER_PAGE_LIMIT as u64, anchored);
    }
}

#[test]
fn unmap_one_past_the_per_page_limit() {
    for anchored in [true, false] {
        unmap_n_pages(AsidBits::Eight, PER_PAGE_LIMIT as u64 + 1, anchored);
        unmap_n_pages(AsidBits::Sixteen, PER_PAGE_LIMIT as u64 + 1, anchored);
    }
}

/// A whole L3 table: 512 pages, more than the editor holds inline
/// (`GATHER_LEAVES`): still one batch, one ASIDE1, one barrier pair.
#[test]
fn unmap_a_whole_l3_table() {
    const { assert!(GATHER_LEAVES < 512) };
    for anchored in [true, false] {
        unmap_n_pages(AsidBits::Eight, 512, anchored);
        unmap_n_pages(AsidBits::Sixteen, 512, anchored);
    }
    assert_eq!(expected_unmap(Asid(255), 512, true), bracket([TlbEvent::Asid(Asid(255))]));
}

/// The space's ASID changes at a rollover: before it runs again, edits
/// use the old number (still right: no TLB holds another space's entries
/// under it that this could miss); after, the new one. The deferred flush
/// is the only TLB maintenance a switch ever issues.
#[test]
fn unmap_after_a_rollover_uses_the_current_asid() {
    let fx = Fixture::new();
    let tlb = RecordingTlb::new();
    let asids = AsidAllocator::new(AsidBits::Eight);
    let ctx = AsidContext::new();
    let first = asids.switch_to(0, &ctx, &tlb);
    assert_eq!(first, Asid(1));
    let mut pt = fx.table();
    fx.map(&mut pt, anchor(4), 1);
    fx.map(&mut pt, BASE, 4);

    // Other address spaces run on cpu 0 (this one no longer does) until
    // the 8-bit space is used up and rolls over; the next one after the
    // rollover takes number 1 again.
    let mut contexts = Vec::new();
    while asids.rollovers() == 0 {
        let other = AsidContext::new();
        asids.switch_to(0, &other, &tlb);
        contexts.push(other);
    }
    assert_eq!(tlb.take(), [TlbEvent::AllLocal], "one local flush at the rollover, nothing else");
    assert_eq!(contexts.last().unwrap().asid(), Some(Asid(1)), "number 1 reused in the new generation");
    // Not yet switched: the old number.
    assert_eq!(ctx.asid(), Some(first));
    pt.edit(&tlb, TlbScope::Asid(ctx.asid().unwrap()), fx.free_leaf()).unmap(pages(BASE, 1)).unwrap();
    assert_eq!(tlb.take(), bracket([page(first, BASE, true)]));

    // Switched again: number 1 is taken in this generation, so a new one.
    let second = asids.switch_to(0, &ctx, &tlb);
    assert_eq!(second, Asid(2));
    assert!(tlb.take().is_empty(), "the flush was already done");
    let scope = TlbScope::Asid(ctx.asid().unwrap());
    pt.edit(&tlb, scope, fx.free_leaf()).unmap(pages(BASE + PAGE_SIZE, 2)).unwrap();
    assert_eq!(tlb.take(), bracket([page(second, BASE + PAGE_SIZE, true), page(second, BASE + 2 * PAGE_SIZE, true)]));
    fx.map(&mut pt, BASE + 0x1000 * 100, PER_PAGE_LIMIT as u64 + 1);
    assert!(tlb.events().is_empty());
    pt.edit(&tlb, scope, fx.free_leaf()).unmap(pages(BASE, 200)).unwrap();
    assert_eq!(tlb.take(), bracket([TlbEvent::Asid(second)]));
    pt.destroy(&tlb, scope, fx.free_leaf());
    check_operands(&tlb.take(), second, AsidBits::Eight);
    asids.release(&ctx);
    for c in &contexts {
        asids.release(c);
    }
    assert_eq!(fx.in_use(), 0);
}

/// Many address spaces over many 8-bit generations, each mapping and
/// unmapping a varying number of pages: every TLBI operand is the ASID the
/// allocator gave for the current generation (bits [15:8] clear), the
/// counts follow the rules, and every frame comes back.
#[test]
fn eight_bit_operands_over_many_rollovers() {
    let fx = Fixture::new();
    let tlb = RecordingTlb::new();
    let asids = AsidAllocator::new(AsidBits::Eight);
    let sizes = [1, 2, PER_PAGE_LIMIT as u64, PER_PAGE_LIMIT as u64 + 1, 50];
    let mut seen = std::collections::BTreeSet::new();
    let mut live: std::collections::VecDeque<(AsidContext, PageTable<'_, Arena, BuddyAllocator<'static>>)> =
        Default::default();
    let mut local_flushes = 0;
    for round in 0..3000u64 {
        let ctx = AsidContext::new();
        let mut pt = fx.table();
        let asid = asids.switch_to(0, &ctx, &tlb);
        local_flushes += tlb.take().iter().filter(|e| **e == TlbEvent::AllLocal).count();
        seen.insert(asid.0);
        let n = sizes[round as usize % sizes.len()];
        fx.map(&mut pt, anchor(n), 1);
        fx.map(&mut pt, BASE, n);
        assert!(tlb.events().is_empty());
        pt.edit(&tlb, TlbScope::Asid(ctx.asid().unwrap()), fx.free_leaf()).unmap(pages(BASE, n)).unwrap();
        let events = tlb.take();
        check_operands(&events, asid, AsidBits::Eight);
        assert_eq!(events, expected_unmap(asid, n, true), "round {round}: {n} pages under {asid:?}");
        live.push_back((ctx, pt));
        // A few stay alive a while and come back, possibly renumbered.
        if live.len() > 8 {
            let (old_ctx, old_pt) = live.pop_front().unwrap();
            let asid = asids.switch_to(0, &old_ctx, &tlb);
            local_flushes += tlb.take().iter().filter(|e| **e == TlbEvent::AllLocal).count();
            old_pt.destroy(&tlb, TlbScope::Asid(old_ctx.asid().unwrap()), fx.free_leaf());
            let events = tlb.take();
            check_operands(&events, asid, AsidBits::Eight);
            // The anchor page, and non-leaf ones for its tables.
            assert_eq!(events.iter().filter(|e| matches!(e, TlbEvent::Page { leaf_only: true, .. })).count(), 1);
            assert!(events.iter().any(|e| matches!(e, TlbEvent::Page { leaf_only: false, .. })));
            asids.release(&old_ctx);
        }
    }
    for (ctx, pt) in live {
        pt.destroy(&tlb, TlbScope::Asid(ctx.asid().unwrap()), fx.free_leaf());
        asids.release(&ctx);
    }
    let rollovers = asids.rollovers();
    // 3000 new spaces plus renewals, 255 numbers per generation.
    assert!(rollovers >= 3000 / 255, "{rollovers}");
    assert_eq!(local_flushes as u64, rollovers, "one local flush per rollover on the only CPU");
    assert_eq!(seen.len(), 255, "every number 1..=255 used, none wider");
    assert_eq!(fx.in_use(), 0);
}
