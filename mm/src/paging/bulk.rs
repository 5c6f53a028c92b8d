//! Passes over every leaf of a range, for address spaces: fork's copy of
//! one tree into another, the rewrite of leaves in place (permission
//! changes), and the teardown of a whole tree under one invalidation.
//!
//! Each pass reads every entry of the tables it crosses once, in address
//! order, on raw descriptors: at L3 a plain loop over the table's entries,
//! no walk from the root per page and no decoding of attributes unless
//! the caller asks ([`Leaf::mapping`]). Their cost follows the table
//! pages, not the size of the range.
//!
//! The long ones take a [`Pause`] and ask it every
//! [`PAUSE_SPACING`] entries of a last-level table (every
//! [`RELEASE_SPACING`] where each entry's frame is released, and as many
//! table pages freed) whether to let other tasks run.

use core::sync::atomic::{fence, Ordering};

use super::descriptor::Descriptor;
use super::pause::{Pause, Spacing, PAUSE_SPACING, RELEASE_SPACING};
use super::phys::{zero_frame, PhysMemory};
use super::table::{slots, PageTable};
use super::{Level, Mapping, PageAttrs, PageSize, PagingError, VaHalf, ENTRIES};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::{AllocError, FrameAllocator};
use crate::tlb::{TlbBatch, TlbOps, TlbScope};

/// A leaf as a pass finds it: where it starts, its level and its raw
/// descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Start of the leaf, aligned to its size.
    pub va: VirtAddr,
    /// Level of the entry: L3 for a page, L1 or L2 for a block.
    pub level: Level,
    /// The entry as the pass read it, undecoded.
    pub desc: Descriptor,
}

impl Leaf {
    /// The page or block size its level maps.
    pub fn size(&self) -> PageSize {
        match self.level.leaf_size() {
            Some(size) => size,
            // Passes report leaves at L1-L3 only.
            None => PageSize::Size1G,
        }
    }

    /// The output address (aligned to the leaf's size).
    #[inline]
    pub fn pa(&self) -> PhysAddr {
        self.desc.address().align_down(self.level.entry_size())
    }

    /// The leaf, decoded.
    pub fn mapping(&self) -> Mapping {
        let size = self.size();
        Mapping { va: self.va, pa: self.pa(), size, attrs: PageAttrs::from_descriptor(self.desc) }
    }
}

/// The 512 entries of one table page, reached through the memory view
/// once per page rather than once per entry. Only made for table pages of
/// a tree, and used while the page stays in it.
pub(super) struct Entries<'m, M: PhysMemory + ?Sized> {
    words: *mut u64,
    mem: &'m M,
    table: PhysAddr,
}

impl<M: PhysMemory + ?Sized> Clone for Entries<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: PhysMemory + ?Sized> core::marker::Copy for Entries<'_, M> {}

impl<'m, M: PhysMemory + ?Sized> Entries<'m, M> {
    pub(super) fn of<A: FrameAllocator + ?Sized>(tree: &PageTable<'m, M, A>, table: PhysAddr) -> Self {
        Self { words: tree.mem.frame_ptr(table).cast(), mem: tree.mem, table }
    }

    #[inline(always)]
    pub(super) fn get(self, index: usize) -> Descriptor {
        assert!(index < ENTRIES);
        // SAFETY: the page is a table page of a live tree (how `Entries`
        // are made), so `frame_ptr` gave PAGE_SIZE bytes, 8-byte aligned,
        // holding no Rust object; `index` is inside. Volatile: the walker
        // may read the word meanwhile, as for `PhysMemory::read_u64`.
        Descriptor::from_bits(unsafe { self.words.add(index).read_volatile() })
    }

    /// Whether the `GROUP` entries from `first` are all zero (empty).
    #[inline(always)]
    pub(super) fn group_is_zero<const GROUP: usize>(self, first: usize) -> bool {
        assert!(first + GROUP <= ENTRIES);
        let mut any = 0;
        for index in first..first + GROUP {
            // SAFETY: as in `get`, for every index of the group.
            any |= unsafe { self.words.add(index).read_volatile() };
        }
        any == 0
    }

    #[inline(always)]
    pub(super) fn set(self, index: usize, desc: Descriptor) {
        assert!(index < ENTRIES);
        if self.mem.watches_table_writes() {
            // SAFETY: as below; `write_u64` stores the same word, through
            // the memory view so that the host's machine model sees it.
            unsafe { self.mem.write_u64(self.table + (index as u64) * 8, desc.bits()) }
            return;
        }
        // SAFETY: as in `get`; one store, so the walker sees the old or the
        // new descriptor.
        unsafe { self.words.add(index).write_volatile(desc.bits()) }
    }
}

/// A pass that rewrites leaves in place ([`PageTable::rewrite_level`]).
pub(super) trait Rewrite {
    /// The new descriptor of `leaf` (its old one: no change).
    fn leaf(&mut self, leaf: Leaf) -> Descriptor;
    /// Called between two runs of [`PAUSE_SPACING`] last-level entries:
    /// where the pass may let other tasks run.
    fn checkpoint(&mut self);
}

/// What a permission pass writes for `leaf` when its function wants `new`:
/// `new` when it differs in permission bits only (the page then joins
/// `batch`, for every ASID when it is global), else the old descriptor,
/// the first such page kept in `refused`.
#[inline(always)]
pub(super) fn permission_change(
    leaf: Leaf,
    new: Descriptor,
    scope: TlbScope,
    batch: &mut TlbBatch,
    refused: &mut Option<VirtAddr>,
) -> Descriptor {
    if new == leaf.desc {
        return new;
    }
    if !leaf.desc.differs_in_permissions_only(new) {
        refused.get_or_insert(leaf.va);
        return leaf.desc;
    }
    let target = if leaf.desc.is_global() { TlbScope::AllAsids } else { scope };
    batch.add_page(target, leaf.va, true);
    new
}

/// [`PageTable::reprotect_pages`]'s pass: `f` gives each page its new
/// descriptor; changed pages join `batch`, which is completed through
/// `tlb` before the pass lets other tasks run at a pause.
struct PagePermissions<'b, F, T: TlbOps + ?Sized, P: Pause> {
    f: F,
    batch: &'b mut TlbBatch,
    tlb: &'b T,
    pause: &'b mut P,
    scope: TlbScope,
    /// The first page `f` wanted changed in more than its permissions.
    refused: Option<VirtAddr>,
}

impl<F: FnMut(Leaf) -> Descriptor, T: TlbOps + ?Sized, P: Pause> Rewrite for PagePermissions<'_, F, T, P> {
    #[inline(always)]
    fn leaf(&mut self, leaf: Leaf) -> Descriptor {
        if leaf.level.has_tables() {
            return leaf.desc;
        }
        let new = (self.f)(leaf);
        permission_change(leaf, new, self.scope, self.batch, &mut self.refused)
    }

    fn checkpoint(&mut self) {
        if self.pause.due() {
            self.batch.finish(self.tlb);
            self.pause.pause();
        }
    }
}

/// Last-level entries a visit hands over between two questions to its
/// pause: more than [`RELEASE_SPACING`], since a teardown's visit mostly
/// drops references (a frame is freed with its last one only), and asking
/// every 8 made `fork_16m` (whose child's teardown it is) 2 % slower.
const VISIT_SPACING: usize = 16;

/// Entries of a table scanned by a teardown that count as one step of its
/// [`RELEASE_SPACING`] (as much work as a table page freed).
const SCAN_STEP: usize = 64;

/// The end of the run of last-level entries that starts at `index`
/// (before `end`): at most [`PAUSE_SPACING`] of them, after which a pass
/// may pause.
#[inline(always)]
fn run_end(index: usize, end: usize) -> usize {
    (index + PAUSE_SPACING).min(end)
}

/// The state of one [`PageTable::copy_into`].
struct Copy {
    /// Write-protect the parent's writable leaves.
    protect: bool,
    /// Some parent leaf was write-protected.
    protected: bool,
    /// Some entry of the child's table being filled was written.
    wrote: bool,
}

impl Copy {
    /// Copies the leaf at `index` of the parent's table `mine` into the
    /// child's `theirs` (inlined: this is fork's per-page work).
    #[inline(always)]
    fn leaf<M: PhysMemory + ?Sized>(
        &mut self,
        mine: Entries<'_, M>,
        theirs: Entries<'_, M>,
        index: usize,
        leaf: Leaf,
        f: &mut impl FnMut(Leaf) -> Option<Descriptor>,
    ) -> Result<(), PagingError> {
        if theirs.get(index).is_valid() {
            return Err(PagingError::AlreadyMapped(leaf.va));
        }
        let copy = f(leaf).ok_or(PagingError::OutOfMemory(AllocError::OutOfMemory))?;
        if self.protect && leaf.desc.is_writable() {
            mine.set(index, leaf.desc.write_protected());
            self.protected = true;
        }
        theirs.set(index, copy);
        self.wrote = true;
        Ok(())
    }
}

impl<'a, M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> PageTable<'a, M, A> {
    /// Gives `pass` every leaf of the subtree `table` at `level` that
    /// starts inside `range` (within the table's span), and writes back
    /// the descriptor it returns when that differs; calls its checkpoint
    /// every [`PAUSE_SPACING`] last-level entries.
    pub(super) fn rewrite_level(&mut self, table: PhysAddr, level: Level, range: VirtRange, pass: &mut impl Rewrite) {
        let Some(next) = level.next() else {
            let entries = Entries::of(self, table);
            let first = level.index(range.start);
            let count = (range.size() / PAGE_SIZE) as usize;
            let (mut index, end) = (first, first + count);
            // `range` lies inside this table (`slots` cut it so): said once
            // here, the entry accesses below need no check of their own,
            // and no address computed from an index can overflow.
            assert!(end <= ENTRIES);
            while index < end {
                for index in index..run_end(index, end) {
                    let desc = entries.get(index);
                    if desc.is_leaf(level) {
                        let va = VirtAddr::new(range.start.as_u64() + (index - first) as u64 * PAGE_SIZE);
                        let new = pass.leaf(Leaf { va, level, desc });
                        if new != desc {
                            entries.set(index, new);
                        }
                    }
                }
                index = run_end(index, end);
                pass.checkpoint();
            }
            return;
        };
        for sub in slots(level, range) {
            let index = level.index(sub.start);
            let desc = self.read(table, index);
            if desc.is_table(level) {
                self.rewrite_level(desc.address(), next, sub, pass);
            } else if desc.is_leaf(level) && sub.start.is_aligned(level.entry_size()) {
                let new = pass.leaf(Leaf { va: sub.start, level, desc });
                if new != desc {
                    self.write(table, index, new);
                }
            }
        }
    }

    /// Gives each page (4 KiB leaf) in `range` the descriptor `f` returns
    /// for it, which may differ in its permission bits (AP, PXN, UXN)
    /// only; blocks stay as they are. The pages that change are added to
    /// `batch` (for `scope`, every ASID for global ones) rather than
    /// invalidated: the caller finishes the batch before the change is
    /// relied on. Every [`PAUSE_SPACING`] entries it asks `pause`, and
    /// before pausing finishes the batch through `tlb` (a fault's upgrade
    /// of a whole last-level table was 33,000 instructions in one piece).
    /// A descriptor from `f` that changes more than permissions is not
    /// written: [`PagingError::NeedsBreakBeforeMake`] for the first.
    pub fn reprotect_pages<T: TlbOps + ?Sized, P: Pause>(
        &mut self,
        range: VirtRange,
        scope: TlbScope,
        batch: &mut TlbBatch,
        tlb: &T,
        pause: &mut P,
        f: impl FnMut(Leaf) -> Descriptor,
    ) -> Result<(), PagingError> {
        self.check_range(range)?;
        if range.is_empty() {
            return Ok(());
        }
        let scope = match self.half() {
            VaHalf::Upper => TlbScope::AllAsids,
            VaHalf::Lower => scope,
        };
        let mut pass = PagePermissions { f, batch, tlb, pause, scope, refused: None };
        self.rewrite_level(self.root(), Level::ROOT, range, &mut pass);
        match pass.refused {
            Some(va) => Err(PagingError::NeedsBreakBeforeMake(va)),
            None => Ok(()),
        }
    }

    /// fork's copy: gives `child` every leaf of `self` that starts inside
    /// `range`, at the same address and level, creating the child's table
    /// pages as needed (the child's tree comes out shaped like the
    /// parent's). `f` makes the child's descriptor from each leaf, or
    /// returns `None` when it cannot (no frame, a reference count
    /// refused). With `protect`, the parent's writable leaves become
    /// read-only, in place and with no TLB maintenance: the caller
    /// invalidates the parent's whole ASID afterwards. Returns whether any
    /// was.
    ///
    /// `child` must map nothing in `range` ([`PagingError::AlreadyMapped`]
    /// otherwise). On an error (`f` refused: [`PagingError::OutOfMemory`],
    /// or no frame for a table page) the copy stops there; what was copied
    /// stays in both trees, each of which keeps its invariants.
    ///
    /// `pause` is asked every [`PAUSE_SPACING`] last-level entries; with
    /// `protect`, its `pause` must first invalidate what the pass
    /// write-protected so far (the parent's whole ASID), since a thread of
    /// the parent may run meanwhile.
    pub fn copy_into(
        &mut self,
        child: &mut Self,
        range: VirtRange,
        protect: bool,
        pause: &mut impl Pause,
        mut f: impl FnMut(Leaf) -> Option<Descriptor>,
    ) -> Result<bool, PagingError> {
        self.check_range(range)?;
        child.check_range(range)?;
        let mut copy = Copy { protect, protected: false, wrote: false };
        if !range.is_empty() {
            let (root, child_root) = (self.root(), child.root());
            self.copy_level(child, root, child_root, Level::ROOT, range, &mut copy, pause, &mut f)?;
        }
        Ok(copy.protected)
    }

    /// Copies the part `range` of the subtree `table` at `level` into the
    /// child's subtree `into`, noting in `copy.wrote` whether it wrote any
    /// entry of `into` (also when it fails).
    #[allow(clippy::too_many_arguments)]
    fn copy_level(
        &mut self,
        child: &mut Self,
        table: PhysAddr,
        into: PhysAddr,
        level: Level,
        range: VirtRange,
        copy: &mut Copy,
        pause: &mut impl Pause,
        f: &mut impl FnMut(Leaf) -> Option<Descriptor>,
    ) -> Result<(), PagingError> {
        let (mine, theirs) = (Entries::of(self, table), Entries::of(child, into));
        let Some(next) = level.next() else {
            let first = level.index(range.start);
            let (mut index, end) = (first, first + (range.size() / PAGE_SIZE) as usize);
            while index < end {
                for index in index..run_end(index, end) {
                    let desc = mine.get(index);
                    if desc.is_leaf(level) {
                        let va = range.start + (index - first) as u64 * PAGE_SIZE;
                        copy.leaf(mine, theirs, index, Leaf { va, level, desc }, f)?;
                    }
                }
                index = run_end(index, end);
                if pause.due() {
                    pause.pause();
                }
            }
            return Ok(());
        };
        for sub in slots(level, range) {
            let index = level.index(sub.start);
            let desc = mine.get(index);
            let existing = theirs.get(index);
            if desc.is_table(level) {
                if existing.is_table(level) {
                    self.copy_level(child, desc.address(), existing.address(), next, sub, copy, pause, f)?;
                    continue;
                }
                if existing.is_valid() {
                    return Err(PagingError::AlreadyMapped(sub.start));
                }
                let new = child.frames.alloc_frame()?;
                // SAFETY: a fresh frame from the tree's allocator, ours alone.
                unsafe { zero_frame(child.mem, new) };
                let wrote = core::mem::replace(&mut copy.wrote, false);
                let result = self.copy_level(child, desc.address(), new, next, sub, copy, pause, f);
                if copy.wrote {
                    // The new table's entries must reach memory before the
                    // entry that makes the walker read them.
                    fence(Ordering::Release);
                    theirs.set(index, Descriptor::table(new));
                    child.table_pages += 1;
                } else {
                    child.frames.free_frame(new);
                }
                copy.wrote |= wrote;
                result?;
            } else if desc.is_leaf(level) && sub.start.is_aligned(level.entry_size()) {
                copy.leaf(mine, theirs, index, Leaf { va: sub.start, level, desc }, f)?;
            }
        }
        Ok(())
    }

    /// Calls `f` with every leaf that starts inside `range` (page
    /// aligned, inside the half), in address order.
    pub fn visit_leaves(&self, range: VirtRange, f: impl FnMut(Leaf)) {
        self.visit_leaves_pausing(range, &mut super::NoPause, f);
    }

    /// [`Self::visit_leaves`], asking `pause` every [`VISIT_SPACING`]
    /// last-level entries (`f` releases what each leaf holds, and must
    /// leave nothing pending then).
    pub fn visit_leaves_pausing(&self, range: VirtRange, pause: &mut impl Pause, mut f: impl FnMut(Leaf)) {
        if self.check_range(range).is_ok() && !range.is_empty() {
            self.visit_level(self.root(), Level::ROOT, range, pause, &mut f);
        }
    }

    fn visit_level(
        &self,
        table: PhysAddr,
        level: Level,
        range: VirtRange,
        pause: &mut impl Pause,
        f: &mut impl FnMut(Leaf),
    ) {
        let entries = Entries::of(self, table);
        let Some(next) = level.next() else {
            let first = level.index(range.start);
            let (mut index, end) = (first, first + (range.size() / PAGE_SIZE) as usize);
            while index < end {
                let stop = (index + VISIT_SPACING).min(end);
                for index in index..stop {
                    let desc = entries.get(index);
                    if desc.is_leaf(level) {
                        f(Leaf { va: range.start + (index - first) as u64 * PAGE_SIZE, level, desc });
                    }
                }
                index = stop;
                if pause.due() {
                    pause.pause();
                }
            }
            return;
        };
        for sub in slots(level, range) {
            let desc = entries.get(level.index(sub.start));
            if desc.is_table(level) {
                self.visit_level(desc.address(), next, sub, pause, f);
            } else if desc.is_leaf(level) && sub.start.is_aligned(level.entry_size()) {
                f(Leaf { va: sub.start, level, desc });
            }
        }
    }

    /// Tears the tree down as [`Self::destroy`] does, but invalidates the
    /// whole `scope` once (`TLBI ASIDE1IS`, or `VMALLE1IS` for every ASID)
    /// before anything is freed, instead of page by page: for an address
    /// space's teardown, whose ASID dies with it. Then `release` gets the
    /// tree and `pause` to give back what its leaves hold (through
    /// [`Self::visit_leaves_pausing`]; nothing of it is freed yet), and
    /// every table page is freed, with no entry written, asking `pause`
    /// every [`RELEASE_SPACING`] of them. Issues no maintenance when the
    /// tree maps nothing.
    ///
    /// The table must not be in any TTBR, so no walker can reach it again
    /// (and pausing anywhere after the invalidation is safe).
    pub fn destroy_at_once<T: TlbOps + ?Sized, P: Pause>(
        mut self,
        tlb: &T,
        scope: TlbScope,
        pause: &mut P,
        release: impl FnOnce(&Self, &mut P),
    ) {
        let root = self.root();
        if self.table_pages > 1 {
            tlb.begin();
            match (self.half(), scope) {
                (VaHalf::Lower, TlbScope::Asid(asid)) => tlb.invalidate_asid(asid),
                _ => tlb.invalidate_all(),
            }
            tlb.sync();
            release(&self, pause);
            self.free_tables(root, Level::ROOT, pause, &mut Spacing::default());
        }
        self.frames.free_frame(root);
    }

    /// Frees the table pages below `table` at `level` (not `table`).
    fn free_tables(
        &mut self,
        table: PhysAddr,
        level: Level,
        pause: &mut impl Pause,
        spacing: &mut Spacing<RELEASE_SPACING>,
    ) {
        let Some(next) = level.next() else { return };
        let entries = Entries::of(self, table);
        for index in 0..ENTRIES {
            let desc = entries.get(index);
            let freed = desc.is_table(level);
            if freed {
                self.free_tables(desc.address(), next, pause, spacing);
                self.frames.free_frame(desc.address());
                self.table_pages -= 1;
            }
            // A table page freed, or a run of entries looked at (a sparse
            // table's scan alone took ~15,000 instructions), is a step.
            if (freed || index % SCAN_STEP == SCAN_STEP - 1) && spacing.step() && pause.due() {
                pause.pause();
            }
        }
    }
}
