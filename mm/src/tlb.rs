//! TLB maintenance: the operations `mm` asks for, as a trait. The kernel
//! implements it with `TLBI` instructions; host tests implement it with a
//! recorder and a TLB model.

use core::mem::MaybeUninit;

use crate::addr::VirtAddr;

/// A hardware address-space identifier as written to TTBR0[63:48] and TLBI
/// operands. With 8-bit ASIDs, bits [15:8] are always zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Asid(pub u16);

/// TLB maintenance operations, broadcast to the inner-shareable domain unless
/// the name says `local`.
///
/// The protocol for one operation (an unmap, a protect, a fork):
/// `begin()` (orders earlier table writes, `DSB ISHST`), any number of
/// `invalidate_*` calls, then `sync()` (`DSB ISH`, plus `ISB`) on the same CPU.
pub trait TlbOps {
    /// Makes earlier translation-table writes visible to the table walkers
    /// before the invalidations that follow.
    fn begin(&self);
    /// Invalidates one page of `asid` (`TLBI VALE1IS` when `leaf_only`,
    /// `TLBI VAE1IS` when table pages above it were freed too).
    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool);
    /// [`Self::invalidate_page`] of each of `vas`, all of `asid` and
    /// `leaf_only` alike (a batch's pages of one kind): an implementation
    /// that decides something per call decides it once here.
    fn invalidate_pages(&self, asid: Asid, vas: &[VirtAddr], leaf_only: bool) {
        for &va in vas {
            self.invalidate_page(asid, va, leaf_only);
        }
    }
    /// Invalidates every non-global entry of `asid` (`TLBI ASIDE1IS`).
    fn invalidate_asid(&self, asid: Asid);
    /// Invalidates one page of the kernel's global mappings (`TLBI VAAE1IS`).
    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool);
    /// Invalidates everything at EL1&0 on every CPU (`TLBI VMALLE1IS`).
    fn invalidate_all(&self);
    /// Invalidates everything at EL1&0 on this CPU only (`TLBI VMALLE1`),
    /// as the ASID allocator does before using a new generation. Completes
    /// on its own (includes its barriers).
    fn invalidate_all_local(&self);
    /// Waits for the invalidations issued since `begin()` to complete.
    fn sync(&self);
    /// Tells the implementation that `pages` calls of
    /// [`Self::invalidate_page`] were just made, for its statistics (the
    /// kernel's `/proc/vmstat`): a batch says it once for all its pages
    /// rather than paying an atomic add per page. Does nothing by default.
    fn count_page_invalidations(&self, _pages: usize) {}
}

/// Which TLB entries an edit of a table may have left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlbScope {
    /// Non-global entries of a TTBR0 table run under this ASID.
    Asid(Asid),
    /// Global entries (the kernel's TTBR1 table), or a table whose ASID is
    /// not known: invalidate for every ASID.
    AllAsids,
}

/// Invalidates one page and waits for it: `begin`, one invalidation,
/// `sync` (a batch of one, for changes made one at a time such as a
/// fault's). `leaf_only` as for [`TlbOps::invalidate_page`].
pub fn invalidate_page_now<T: TlbOps + ?Sized>(tlb: &T, scope: TlbScope, va: VirtAddr, leaf_only: bool) {
    let va = va.align_down(crate::addr::PAGE_SIZE);
    tlb.begin();
    match scope {
        TlbScope::Asid(asid) => {
            tlb.invalidate_page(asid, va, leaf_only);
            tlb.count_page_invalidations(1);
        }
        TlbScope::AllAsids => tlb.invalidate_kernel_page(va, leaf_only),
    }
    tlb.sync();
}

/// How many pages a [`TlbBatch`] invalidates one by one before it falls
/// back to one invalidation of the whole ASID (`TLBI ASIDE1IS`), or of
/// everything (`TLBI VMALLE1IS`) when global entries are involved.
///
/// Peers pick 16 (Zircon), 32 (Asterinas) and 512 (Linux). 32 is a
/// placeholder until the crossover (per-page TLBI cost times pages against
/// the refill cost of losing the whole ASID) is measured on a Cortex-A72.
pub const PER_PAGE_LIMIT: usize = 32;

/// What one pending page needs: its scope, and whether only its leaf entry
/// changed (table pages above it are still in use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kind {
    scope: TlbScope,
    leaf_only: bool,
}

impl Kind {
    /// The kind as one number, for [`TlbBatch::add_page`]'s one compare:
    /// the ASID in bits 15:0, bit 16 for every ASID, bit 17 for leaf only.
    #[inline(always)]
    const fn key(self) -> u32 {
        let scope = match self.scope {
            TlbScope::Asid(asid) => asid.0 as u32,
            TlbScope::AllAsids => 1 << 16,
        };
        scope | (self.leaf_only as u32) << 17
    }
}

/// A [`Kind::key`] no kind has.
const NO_KEY: u32 = u32::MAX;

/// What a batch falls back to past [`PER_PAGE_LIMIT`] pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wide {
    Asid(Asid),
    All,
}

impl Wide {
    fn of(scope: TlbScope) -> Self {
        match scope {
            TlbScope::Asid(asid) => Self::Asid(asid),
            TlbScope::AllAsids => Self::All,
        }
    }

    /// Whether this invalidation already covers `scope` (merging it
    /// changes nothing).
    #[inline(always)]
    fn covers(self, scope: TlbScope) -> bool {
        match (self, scope) {
            (Self::All, _) => true,
            (Self::Asid(a), TlbScope::Asid(b)) => a == b,
            (Self::Asid(_), TlbScope::AllAsids) => false,
        }
    }

    fn merge(self, scope: TlbScope) -> Self {
        match (self, Self::of(scope)) {
            (Self::Asid(a), Self::Asid(b)) if a == b => self,
            _ => Self::All,
        }
    }
}

/// The invalidations one operation (an unmap, a protect) needs, issued
/// together by [`TlbBatch::finish`]: one `begin`, the invalidations, one
/// `sync`, so one operation pays for one `DSB ISH`.
///
/// Changes from invalid to valid need no entry: the TLB never caches a
/// translation fault.
///
/// The pages of one pass nearly always share one scope and leafness (a
/// protect's, an upgrade's): the batch then keeps that [`Kind`] once and
/// only the addresses per page, and [`Self::finish`] issues them with the
/// kind decided once for the batch rather than per page. The first page
/// of another kind makes the batch keep a kind per page (`mixed`).
#[derive(Clone, Debug)]
pub struct TlbBatch {
    /// The pending pages' addresses (page aligned): the first `len` are
    /// set; the rest are never read, and left unwritten so that making a
    /// batch (every unmap, protect and write fault makes one) writes no
    /// array.
    vas: [MaybeUninit<VirtAddr>; PER_PAGE_LIMIT],
    /// With `mixed`, the kind of each pending page (the first `len` set);
    /// unused otherwise.
    kinds: [MaybeUninit<Kind>; PER_PAGE_LIMIT],
    len: usize,
    /// The kind of every pending page while not `mixed`.
    kind: Kind,
    /// `kind`'s key while the batch holds pages, all of that kind, and
    /// has not gone wide; [`NO_KEY`] otherwise. A page of this key above
    /// every pending one joins in [`Self::add_page`] without a call.
    accept: u32,
    /// Pending pages differ in kind: each has its own in `kinds`.
    mixed: bool,
    /// The highest page added since the batch was last empty: a page
    /// above it cannot be a duplicate (passes add in address order).
    highest: VirtAddr,
    wide: Option<Wide>,
}

impl TlbBatch {
    /// An empty batch.
    pub const fn new() -> Self {
        // SAFETY: arrays of `MaybeUninit` need no initialisation.
        let (vas, kinds) = unsafe {
            (
                MaybeUninit::<[MaybeUninit<VirtAddr>; PER_PAGE_LIMIT]>::uninit().assume_init(),
                MaybeUninit::<[MaybeUninit<Kind>; PER_PAGE_LIMIT]>::uninit().assume_init(),
            )
        };
        let kind = Kind { scope: TlbScope::AllAsids, leaf_only: true };
        Self { vas, kinds, len: 0, kind, accept: NO_KEY, mixed: false, highest: VirtAddr::new(0), wide: None }
    }

    /// The addresses of the pages added so far.
    #[inline(always)]
    fn pending(&self) -> &[VirtAddr] {
        let len = self.len.min(PER_PAGE_LIMIT);
        // SAFETY: the first `len` elements were written (a page's address
        // is written before it is counted), and `MaybeUninit<T>` has `T`'s
        // layout.
        unsafe { core::slice::from_raw_parts(self.vas.as_ptr().cast::<VirtAddr>(), len) }
    }

    /// The addresses and kinds of the pages added so far, once `mixed`.
    #[inline(always)]
    fn mixed_entries(&mut self) -> (&[VirtAddr], &mut [Kind]) {
        debug_assert!(self.mixed);
        let len = self.len.min(PER_PAGE_LIMIT);
        // SAFETY: as in `pending`; in a mixed batch the first `len` kinds
        // were written too (`make_mixed` writes those of the pages before
        // it, and each page added after it gets its kind before it is
        // counted). The two arrays do not overlap.
        unsafe {
            (
                core::slice::from_raw_parts(self.vas.as_ptr().cast::<VirtAddr>(), len),
                core::slice::from_raw_parts_mut(self.kinds.as_mut_ptr().cast::<Kind>(), len),
            )
        }
    }

    /// Adds the page holding `va`. `leaf_only` is false when a table page
    /// on the walk to `va` was unhooked too, so walk caches must forget it.
    /// Adding a page twice keeps one entry (non-leaf if either was).
    #[inline(always)]
    pub fn add_page(&mut self, scope: TlbScope, va: VirtAddr, leaf_only: bool) {
        // Once the batch covers the scope, a page adds nothing: long passes
        // stop here, without a call.
        if self.wide.is_some_and(|wide| wide.covers(scope)) {
            return;
        }
        // A pass adds pages in address order and of one kind: one above
        // every page pending joins the batch here, without a call or a
        // search for a duplicate, as its address alone.
        let va = va.align_down(crate::addr::PAGE_SIZE);
        let kind = Kind { scope, leaf_only };
        let len = self.len;
        if kind.key() == self.accept && len < PER_PAGE_LIMIT && va > self.highest {
            self.vas[len].write(va);
            self.highest = va;
            self.len = len + 1;
            return;
        }
        self.add_uncovered_page(kind, va);
    }

    /// Gives every pending page its own kind (the batch's), so that pages
    /// of another kind can join.
    fn make_mixed(&mut self) {
        for slot in &mut self.kinds[..self.len] {
            slot.write(self.kind);
        }
        self.mixed = true;
    }

    /// [`Self::add_page`] of a page the batch does not cover yet, of
    /// `kind`, at the page-aligned `va`, when it cannot simply join.
    fn add_uncovered_page(&mut self, kind: Kind, va: VirtAddr) {
        self.join(kind, va);
        self.accept = if self.len > 0 && !self.mixed && self.wide.is_none() { self.kind.key() } else { NO_KEY };
    }

    /// [`Self::add_uncovered_page`]'s work, but for `accept`.
    fn join(&mut self, kind: Kind, va: VirtAddr) {
        if let Some(wide) = self.wide {
            self.wide = Some(wide.merge(kind.scope));
            return;
        }
        if self.len == 0 {
            self.mixed = false;
            self.kind = kind;
        } else if !self.mixed && kind != self.kind {
            self.make_mixed();
        }
        if self.len > 0 && va <= self.highest {
            if self.mixed {
                let (vas, kinds) = self.mixed_entries();
                if let Some(i) = (0..vas.len()).find(|&i| vas[i] == va && kinds[i].scope == kind.scope) {
                    kinds[i].leaf_only &= kind.leaf_only;
                    return;
                }
            } else if self.pending().contains(&va) {
                // Of the batch's kind (else it would be mixed now):
                // already there.
                return;
            }
        }
        if self.len < PER_PAGE_LIMIT {
            self.vas[self.len].write(va);
            if self.mixed {
                self.kinds[self.len].write(kind);
            }
            self.highest = if self.len == 0 { va } else { self.highest.max(va) };
            self.len += 1;
            return;
        }
        // Unless mixed, the page is of the batch's kind (else the batch
        // would be mixed now).
        let wide = if self.mixed {
            self.mixed_entries().1.iter().fold(Wide::of(kind.scope), |w, k| w.merge(k.scope))
        } else {
            Wide::of(self.kind.scope)
        };
        self.wide = Some(wide);
        self.len = 0;
        self.mixed = false;
    }

    /// Whether the batch would issue nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.wide.is_none()
    }

    /// Issues the batch and waits for it: `begin`, the invalidations,
    /// `sync`. Nothing at all for an empty batch. Leaves the batch empty.
    pub fn finish<T: TlbOps + ?Sized>(&mut self, tlb: &T) {
        if self.is_empty() {
            return;
        }
        tlb.begin();
        match self.wide {
            Some(Wide::Asid(asid)) => tlb.invalidate_asid(asid),
            Some(Wide::All) => tlb.invalidate_all(),
            None if self.mixed => {
                let mut pages = 0;
                let (vas, kinds) = self.mixed_entries();
                for (&va, kind) in vas.iter().zip(kinds.iter()) {
                    match kind.scope {
                        TlbScope::Asid(asid) => {
                            tlb.invalidate_page(asid, va, kind.leaf_only);
                            pages += 1;
                        }
                        TlbScope::AllAsids => tlb.invalidate_kernel_page(va, kind.leaf_only),
                    }
                }
                tlb.count_page_invalidations(pages);
            }
            // One kind: decided once, each page is its address alone.
            None => {
                let pages = self.pending();
                match (self.kind.scope, self.kind.leaf_only) {
                    (TlbScope::Asid(asid), true) => tlb.invalidate_pages(asid, pages, true),
                    (TlbScope::Asid(asid), false) => tlb.invalidate_pages(asid, pages, false),
                    (TlbScope::AllAsids, true) => pages.iter().for_each(|&va| tlb.invalidate_kernel_page(va, true)),
                    (TlbScope::AllAsids, false) => pages.iter().for_each(|&va| tlb.invalidate_kernel_page(va, false)),
                }
                if let TlbScope::Asid(_) = self.kind.scope {
                    tlb.count_page_invalidations(pages.len());
                }
            }
        }
        tlb.sync();
        self.len = 0;
        self.accept = NO_KEY;
        self.mixed = false;
        self.wide = None;
    }
}

impl Default for TlbBatch {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testbed::{RecordingTlb, TlbEvent};

    const A: Asid = Asid(5);

    fn va(page: u64) -> VirtAddr {
        VirtAddr::new(page << crate::addr::PAGE_SHIFT)
    }

    fn finish(batch: &mut TlbBatch) -> std::vec::Vec<TlbEvent> {
        let tlb = RecordingTlb::new();
        batch.finish(&tlb);
        assert!(batch.is_empty());
        tlb.take()
    }

    #[test]
    fn empty_batch_issues_nothing() {
        assert!(finish(&mut TlbBatch::new()).is_empty());
    }

    #[test]
    fn pages_are_deduplicated_and_non_leaf_wins() {
        let mut batch = TlbBatch::new();
        batch.add_page(TlbScope::Asid(A), va(1) + 0x123, true);
        batch.add_page(TlbScope::Asid(A), va(1), false);
        batch.add_page(TlbScope::Asid(A), va(1), true);
        batch.add_page(TlbScope::Asid(Asid(6)), va(1), true);
        batch.add_page(TlbScope::AllAsids, va(2), true);
        assert_eq!(
            finish(&mut batch),
            [
                TlbEvent::Begin,
                TlbEvent::Page { asid: A, va: va(1), leaf_only: false },
                TlbEvent::Page { asid: Asid(6), va: va(1), leaf_only: true },
                TlbEvent::KernelPage { va: va(2), leaf_only: true },
                TlbEvent::Sync,
            ]
        );
    }

    #[test]
    fn pages_of_another_kind_keep_their_own() {
        let mut batch = TlbBatch::new();
        for page in 1..=3 {
            batch.add_page(TlbScope::Asid(A), va(page), true);
        }
        // Another kind above, then below the highest (a duplicate that
        // turns non-leaf, and a new page), then the first kind again.
        batch.add_page(TlbScope::AllAsids, va(4), true);
        batch.add_page(TlbScope::Asid(A), va(2), false);
        batch.add_page(TlbScope::Asid(Asid(6)), va(1), true);
        batch.add_page(TlbScope::Asid(A), va(5), true);
        let page = |asid, p, leaf_only| TlbEvent::Page { asid, va: va(p), leaf_only };
        assert_eq!(
            finish(&mut batch),
            [
                TlbEvent::Begin,
                page(A, 1, true),
                page(A, 2, false),
                page(A, 3, true),
                TlbEvent::KernelPage { va: va(4), leaf_only: true },
                page(Asid(6), 1, true),
                page(A, 5, true),
                TlbEvent::Sync,
            ]
        );
        // Emptied, the batch takes one kind again: every page its own.
        batch.add_page(TlbScope::AllAsids, va(1), false);
        batch.add_page(TlbScope::AllAsids, va(1), false);
        batch.add_page(TlbScope::AllAsids, va(2), false);
        let kernel = |p| TlbEvent::KernelPage { va: va(p), leaf_only: false };
        assert_eq!(finish(&mut batch), [TlbEvent::Begin, kernel(1), kernel(2), TlbEvent::Sync]);
    }

    #[test]
    fn page_invalidations_are_counted_once_per_batch() {
        let tlb = RecordingTlb::new();
        let mut batch = TlbBatch::new();
        for page in 0..3 {
            batch.add_page(TlbScope::Asid(A), va(page), true);
        }
        batch.add_page(TlbScope::AllAsids, va(7), true);
        batch.finish(&tlb);
        invalidate_page_now(&tlb, TlbScope::Asid(A), va(9), true);
        invalidate_page_now(&tlb, TlbScope::AllAsids, va(9), true);
        let pages = tlb.events().iter().filter(|e| matches!(e, TlbEvent::Page { .. })).count();
        assert_eq!(pages, 4);
        assert_eq!(tlb.counted_pages(), [3, 1]);
    }

    #[test]
    fn past_the_limit_one_asid_collapses_to_that_asid() {
        let mut batch = TlbBatch::new();
        for page in 0..=PER_PAGE_LIMIT as u64 {
            batch.add_page(TlbScope::Asid(A), va(page), true);
        }
        assert_eq!(finish(&mut batch), [TlbEvent::Begin, TlbEvent::Asid(A), TlbEvent::Sync]);
    }

    #[test]
    fn past_the_limit_mixed_scopes_collapse_to_everything() {
        for other in [TlbScope::AllAsids, TlbScope::Asid(Asid(6))] {
            // The odd one out before the limit, as the page past it, or
            // after it.
            for at in [0, PER_PAGE_LIMIT as u64, PER_PAGE_LIMIT as u64 + 3] {
                let mut batch = TlbBatch::new();
                for page in 0..PER_PAGE_LIMIT as u64 + 5 {
                    let scope = if page == at { other } else { TlbScope::Asid(A) };
                    batch.add_page(scope, va(page), true);
                }
                assert_eq!(finish(&mut batch), [TlbEvent::Begin, TlbEvent::All, TlbEvent::Sync]);
            }
        }
    }
}
