//! Changes to live entries over a range: unmap, protect, the checked
//! update, and break-before-make splitting of a block. (One leaf at a time,
//! a fault's changes go through a [`Cursor`](super::Cursor).)
//!
//! An [`Editor`] holds the table for the duration of a batch, collects the
//! TLB invalidations the changes need, and keeps what it took out of the
//! tree (leaf frames, emptied table pages) until those invalidations have
//! completed: unhook, invalidate, sync, and only then free. Nothing it
//! takes out can reach the caller or the allocator earlier.
//!
//! An editor given a [`Pause`] ([`Editor::pausing`]) asks it every
//! [`EDIT_SPACING`] entries of an unmap or an update, and every
//! [`RELEASE_SPACING`] leaves it releases, whether to let other
//! tasks run; before it does, it completes its batch and releases what the
//! batch held, so that nothing it changed is stale in any TLB meanwhile.

use alloc::vec::Vec;
use core::mem::MaybeUninit;
use core::sync::atomic::{fence, Ordering};

use super::bulk::{Entries, Leaf, Rewrite};
use super::descriptor::{Change, DescKind, Descriptor};
use super::pause::{Pause, Spacing, RELEASE_SPACING};
use super::phys::PhysMemory;
use super::table::{slots, FramePool, PageTable, Slot};
use super::{Level, Mapping, PageAttrs, PageSize, PagingError, ENTRIES, PHYS_ADDR_LIMIT};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::FrameAllocator;
use crate::tlb::{TlbBatch, TlbOps, TlbScope};

/// Leaves an editor holds inline. Past them it keeps leaves on the heap, up
/// to [`MAX_DEFERRED_LEAVES`] more, so that one unmap issues one batch of
/// invalidations with one `DSB`; when the heap says no, or past that bound,
/// it flushes early instead (a large unmap then pays one extra batch). An
/// editor that may pause keeps none on the heap: it flushes every
/// `GATHER_LEAVES` leaves.
pub const GATHER_LEAVES: usize = 64;
/// Leaves an editor defers on the heap beyond [`GATHER_LEAVES`] (64 MiB of
/// 4 KiB pages; about 640 KiB of kernel heap at most).
pub const MAX_DEFERRED_LEAVES: usize = 16 * 1024;
/// Empty last-level entries an unmap reads per step towards its next
/// pause point (a leaf it removes is one step).
const EMPTY_PER_STEP: usize = 16;
/// Entries an editor's pass handles between two questions to its pause:
/// half of [`PAUSE_SPACING`](super::PAUSE_SPACING), since an unmap's step
/// (unhooking a leaf, about 140 instructions, and later its release) is
/// the dearest of the passes (32 of them made a 9,600-instruction stretch
/// under a memory storm).
pub const EDIT_SPACING: usize = 16;
/// Last-level entries an unmap tests together for a run of empty ones
/// (a divisor of [`EMPTY_PER_STEP`]).
const EMPTY_GROUP: usize = 8;
const _: () = assert!(EMPTY_PER_STEP.is_multiple_of(EMPTY_GROUP));
/// Emptied table pages an editor holds before it flushes early.
pub const GATHER_TABLES: usize = 16;

/// A batch of changes to one table's live entries (see
/// [`PageTable::edit`]). Dropping it (or [`Editor::finish`]) issues the
/// pending TLB maintenance, then frees the emptied table pages and hands
/// each removed leaf to the release function.
pub struct Editor<'e, 'a, M, A, T, F>
where
    M: PhysMemory + ?Sized,
    A: FrameAllocator + ?Sized,
    T: TlbOps + ?Sized,
    F: FnMut(Mapping),
{
    table: &'e mut PageTable<'a, M, A>,
    /// The table's allocator, which the batch's release frees to: kept
    /// apart so that [`Self::finish_after`] need not touch the table.
    frames: &'a A,
    tlb: &'e T,
    scope: TlbScope,
    held: Held<F>,
    /// Where long passes may let other tasks run (none: never).
    pause: Option<&'e mut dyn Pause>,
    /// Entries visited since the pause was last asked.
    spacing: Spacing<EDIT_SPACING>,
    /// What the unmap under way empties: nothing outside its range is
    /// mapped here ([`Editor::unmap_vacating`]).
    vacated: VirtRange,
}

/// What a batch holds until its invalidations completed: the batch
/// itself, the removed leaves and the emptied table pages. The inline
/// arrays are set up to their lengths only (the rest never read), so that
/// making an editor, which every mprotect and unmap does, writes neither.
struct Held<F: FnMut(Mapping)> {
    batch: TlbBatch,
    leaves: [MaybeUninit<Mapping>; GATHER_LEAVES],
    leaves_len: usize,
    /// Leaves gathered past the inline ones, released with them.
    deferred: Vec<Mapping>,
    tables: [MaybeUninit<PhysAddr>; GATHER_TABLES],
    tables_len: usize,
    release: F,
}

impl<F: FnMut(Mapping)> Held<F> {
    /// Issues the pending invalidations and waits for them, then frees the
    /// emptied table pages to `frames` and releases the removed leaves,
    /// letting other tasks run between releases when `pause` says so
    /// (what is not released yet is still held, and no TLB reaches it).
    fn flush<T: TlbOps + ?Sized, A: FrameAllocator + ?Sized, P: Pause + ?Sized>(
        &mut self,
        tlb: &T,
        frames: &A,
        mut pause: Option<&mut P>,
    ) {
        self.batch.finish(tlb);
        for table in &self.tables[..self.tables_len] {
            // SAFETY: the first `tables_len` were written (`gather_table`).
            frames.free_frame(unsafe { table.assume_init() });
        }
        self.tables_len = 0;
        let mut spacing = Spacing::<RELEASE_SPACING>::default();
        let mut released = |leaf: Mapping, release: &mut F| {
            release(leaf);
            if spacing.step() {
                if let Some(p) = pause.as_deref_mut() {
                    if p.due() {
                        p.pause();
                    }
                }
            }
        };
        // Zeroed first: a leaf is released once, even should a release
        // not return.
        let gathered = core::mem::replace(&mut self.leaves_len, 0);
        for slot in &self.leaves[..gathered] {
            // SAFETY: the first `leaves_len` were written (`gather_leaf`),
            // and `Mapping` is `Copy`.
            released(unsafe { slot.assume_init() }, &mut self.release);
        }
        for leaf in self.deferred.drain(..) {
            released(leaf, &mut self.release);
        }
    }
}

/// [`Editor::update`]'s pass over the leaves: `f` gives each its new
/// descriptor; the changed ones join the batch.
struct UpdatePass<'p, 'e, T: TlbOps + ?Sized, A: FrameAllocator + ?Sized, R: FnMut(Mapping), F> {
    f: F,
    held: &'p mut Held<R>,
    tlb: &'p T,
    frames: &'p A,
    scope: TlbScope,
    pause: &'p mut Option<&'e mut dyn Pause>,
    /// The first leaf `f` wanted changed in more than its permissions.
    refused: Option<VirtAddr>,
}

impl<T, A, R, F> Rewrite for UpdatePass<'_, '_, T, A, R, F>
where
    T: TlbOps + ?Sized,
    A: FrameAllocator + ?Sized,
    R: FnMut(Mapping),
    F: FnMut(Leaf) -> Descriptor,
{
    #[inline(always)]
    fn leaf(&mut self, leaf: Leaf) -> Descriptor {
        let new = (self.f)(leaf);
        super::bulk::permission_change(leaf, new, self.scope, &mut self.held.batch, &mut self.refused)
    }

    fn checkpoint(&mut self) {
        let Some(pause) = self.pause.as_deref_mut() else { return };
        if pause.due() {
            self.held.flush(self.tlb, self.frames, Some(&mut *pause));
            pause.pause();
        }
    }
}

impl<'e, 'a, M, A, T, F> Editor<'e, 'a, M, A, T, F>
where
    M: PhysMemory + ?Sized,
    A: FrameAllocator + ?Sized,
    T: TlbOps + ?Sized,
    F: FnMut(Mapping),
{
    #[inline(always)]
    pub(super) fn new(table: &'e mut PageTable<'a, M, A>, tlb: &'e T, scope: TlbScope, release: F) -> Self {
        Self {
            frames: table.frames,
            table,
            tlb,
            scope,
            held: Held {
                batch: TlbBatch::new(),
                leaves: [const { MaybeUninit::uninit() }; GATHER_LEAVES],
                leaves_len: 0,
                deferred: Vec::new(),
                tables: [const { MaybeUninit::uninit() }; GATHER_TABLES],
                tables_len: 0,
                release,
            },
            pause: None,
            spacing: Spacing::default(),
            vacated: VirtRange::new(VirtAddr::new(0), VirtAddr::new(0)),
        }
    }

    /// The same editor, letting other tasks run when `pause` says so
    /// during its unmaps and updates (see the module's documentation).
    #[inline(always)]
    pub fn pausing(mut self, pause: &'e mut dyn Pause) -> Self {
        self.pause = Some(pause);
        self
    }

    /// One more entry visited: every so many, asks the pause.
    #[inline(always)]
    fn step(&mut self) {
        if self.pause.is_some() && self.spacing.step() {
            self.pause_point();
        }
    }

    /// Completes the batch and lets other tasks run, if the pause says so.
    #[inline(never)]
    fn pause_point(&mut self) {
        if self.pause.as_deref_mut().is_some_and(|p| p.due()) {
            self.flush();
            if let Some(p) = self.pause.as_deref_mut() {
                p.pause();
            }
        }
    }

    /// The table being edited, for lookups.
    pub fn table(&self) -> &PageTable<'a, M, A> {
        self.table
    }

    /// What invalidating a leaf with `attrs` must cover: global entries
    /// are cached for every ASID.
    fn target(&self, attrs: &PageAttrs) -> TlbScope {
        if attrs.is_global() {
            TlbScope::AllAsids
        } else {
            self.scope
        }
    }

    /// Removes every leaf inside `range` (page aligned); holes are skipped.
    /// A block only partly inside `range` is refused
    /// ([`PagingError::PartialBlock`]) before anything changes. Table pages
    /// left empty are unhooked and freed after the flush.
    pub fn unmap(&mut self, range: VirtRange) -> Result<(), PagingError> {
        self.check_whole_blocks(range)?;
        if range.is_empty() {
            return Ok(());
        }
        let root = self.table.root();
        self.unmap_level(root, Level::ROOT, range);
        Ok(())
    }

    /// [`Self::unmap`], told that nothing in `vacated` (which holds
    /// `range`) outside `range` is mapped, as an address space knows from
    /// the mappings around an unmapped one: a table whose span lies inside
    /// `vacated` is empty once `range` is unmapped, and is freed without
    /// reading its 512 entries to find out (most of a one-page unmap's
    /// cost, as Linux's `free_pgtables` frees what lies between the
    /// neighbouring mappings without looking).
    pub fn unmap_vacating(&mut self, range: VirtRange, vacated: VirtRange) -> Result<(), PagingError> {
        let holds = vacated.start <= range.start && range.end_exclusive <= vacated.end_exclusive;
        if holds {
            self.vacated = vacated;
        }
        let result = self.unmap(range);
        self.vacated = VirtRange::new(VirtAddr::new(0), VirtAddr::new(0));
        result
    }

    /// Whether `table`, the table at `level` whose entries in `range` were
    /// just unmapped, is empty now: known from [`Self::vacated`] when its
    /// span lies inside, else by reading it from the entry after `range`.
    fn emptied(&self, table: PhysAddr, level: Level, range: VirtRange) -> bool {
        let span = level.entry_size() * ENTRIES as u64;
        let start = range.start.align_down(span);
        let known =
            self.vacated.start <= start && start.checked_add(span).is_some_and(|end| end <= self.vacated.end_exclusive);
        let after = level.index(range.end_exclusive - PAGE_SIZE) + 1;
        // The host tests hold the address space to its word.
        #[cfg(test)]
        assert!(!known || self.table.is_empty_table(table, after), "a vacated table at {start:?} still maps something");
        known || self.table.is_empty_table(table, after)
    }

    /// Checks that `range` is page aligned, inside the half, and cuts no
    /// block ([`PagingError::PartialBlock`]).
    fn check_whole_blocks(&self, range: VirtRange) -> Result<(), PagingError> {
        self.table.check_range(range)?;
        if range.is_empty() {
            return Ok(());
        }
        // Blocks are aligned to their size, so only the two ends can be cut;
        // and both ends inside one smallest block's span would be inside
        // the same block if any: one walk decides (a small range's mprotect).
        let last = range.end_exclusive - PAGE_SIZE;
        let one_span = range.start.align_down(PageSize::Size2M.bytes()) == last.align_down(PageSize::Size2M.bytes());
        let ends = if one_span { &[range.start][..] } else { &[range.start, last][..] };
        for &va in ends {
            if let Some(leaf) = self.table.query(va) {
                let covered = leaf.va_range();
                if covered.start < range.start || covered.end_exclusive > range.end_exclusive {
                    return Err(PagingError::PartialBlock(va));
                }
            }
        }
        Ok(())
    }

    /// Removes everything the table maps.
    pub(super) fn unmap_all(&mut self) {
        let root = self.table.root();
        self.unmap_level(root, Level::ROOT, self.table.half().range());
    }

    /// Removes the leaves of `table` inside `range`; returns whether the
    /// table is now empty (only possible when something was removed).
    fn unmap_level(&mut self, table: PhysAddr, level: Level, range: VirtRange) -> bool {
        if level.next().is_none() {
            return self.unmap_last_level(table, level, range);
        }
        let mut removed = false;
        // A table entry inside the range that still holds something.
        let mut kept = false;
        for sub in slots(level, range) {
            self.step();
            let index = level.index(sub.start);
            match self.table.read(table, index).kind(level) {
                DescKind::Invalid => {}
                DescKind::Leaf { pa, size, attrs } => {
                    debug_assert_eq!(sub.size(), size.bytes(), "partial block reached unmap");
                    self.table.write(table, index, Descriptor::INVALID);
                    removed = true;
                    self.held.batch.add_page(self.target(&attrs), sub.start, true);
                    self.gather_leaf(Mapping { va: sub.start, pa, size, attrs });
                }
                DescKind::Table(child) => {
                    let Some(next) = level.next() else { continue };
                    if self.unmap_level(child, next, sub) {
                        self.table.write(table, index, Descriptor::INVALID);
                        removed = true;
                        // Walk caches may still hold the entry that pointed
                        // at `child`: a non-leaf invalidation drops it.
                        self.held.batch.add_page(self.scope, sub.start, false);
                        self.gather_table(child);
                    } else {
                        kept = true;
                    }
                }
            }
        }
        // Over the whole table every entry was just seen: it is empty when
        // nothing stayed, without reading its 512 entries again.
        let span = level.entry_size() * ENTRIES as u64;
        let whole = range.start.as_u64().is_multiple_of(span) && range.size() == span;
        removed && !kept && (whole || self.emptied(table, level, range))
    }

    /// [`Self::unmap_level`] for a last-level table: only pages, and in a
    /// sparse range mostly empty entries, each a read and a test (counted
    /// towards the next pause point one in [`EMPTY_PER_STEP`]).
    fn unmap_last_level(&mut self, table: PhysAddr, level: Level, range: VirtRange) -> bool {
        let first = level.index(range.start);
        let count = (range.size() / PAGE_SIZE) as usize;
        // The table stays in the tree throughout: a pause lets no one else
        // edit it (the caller holds the space), and only emptied tables go.
        let entries = Entries::of(self.table, table);
        let mut removed = false;
        let end = first + count;
        let mut index = first;
        while index < end {
            // A sparse range is mostly runs of empty entries: an aligned
            // group of them is skipped with one test of all its words
            // (steps counted as entry by entry: its first is the only one
            // that can be a multiple of EMPTY_PER_STEP).
            // Only tried where the first is empty: a dense range pays one
            // test per group.
            let desc = entries.get(index);
            if desc.bits() == 0
                && index.is_multiple_of(EMPTY_GROUP)
                && index + EMPTY_GROUP <= end
                && entries.group_is_zero::<EMPTY_GROUP>(index)
            {
                if index.is_multiple_of(EMPTY_PER_STEP) {
                    self.step();
                }
                index += EMPTY_GROUP;
                continue;
            }
            // An empty entry costs a few instructions: one step per 16.
            if desc.is_valid() || index.is_multiple_of(EMPTY_PER_STEP) {
                self.step();
            }
            if desc.is_valid() {
                if let DescKind::Leaf { pa, size, attrs } = desc.kind(level) {
                    let va = range.start + ((index - first) as u64) * PAGE_SIZE;
                    entries.set(index, Descriptor::INVALID);
                    removed = true;
                    self.held.batch.add_page(self.target(&attrs), va, true);
                    self.gather_leaf(Mapping { va, pa, size, attrs });
                }
            }
            index += 1;
        }
        // Every entry of a whole table was just seen and removed.
        removed && (count == ENTRIES || self.emptied(table, level, range))
    }

    fn gather_leaf(&mut self, leaf: Mapping) {
        let held = &mut self.held;
        if held.leaves_len < GATHER_LEAVES {
            held.leaves[held.leaves_len].write(leaf);
            held.leaves_len += 1;
            return;
        }
        // An editor that may pause keeps its leaves inline only: growing a
        // list of thousands of them on the heap took tens of microseconds
        // between two pause points (copies, the kernel heap's search).
        let room =
            self.pause.is_none() && held.deferred.len() < MAX_DEFERRED_LEAVES && held.deferred.try_reserve(1).is_ok();
        if room {
            held.deferred.push(leaf);
            return;
        }
        // Out of room: complete what is gathered, then start again.
        self.flush();
        self.held.leaves[0].write(leaf);
        self.held.leaves_len = 1;
    }

    fn gather_table(&mut self, table: PhysAddr) {
        let held = &mut self.held;
        held.tables[held.tables_len].write(table);
        held.tables_len += 1;
        self.table.table_pages -= 1;
        if self.held.tables_len == GATHER_TABLES {
            self.flush();
        }
    }

    /// Gives every leaf inside `range` the attributes `attrs` (same output
    /// address and size). Only permission changes (AP, PXN, UXN) are done
    /// here: a change of memory type or globalness is refused with
    /// [`PagingError::NeedsBreakBeforeMake`], a block only partly inside
    /// `range` with [`PagingError::PartialBlock`], both before anything
    /// changes. Holes are skipped.
    pub fn protect(&mut self, range: VirtRange, attrs: PageAttrs) -> Result<(), PagingError> {
        self.table.check_range(range)?;
        let root = self.table.root();
        self.protect_level(root, Level::ROOT, range, attrs, false)?;
        self.protect_level(root, Level::ROOT, range, attrs, true)
    }

    /// Checks (`apply` false) or carries out (`apply` true) a protect.
    fn protect_level(
        &mut self,
        table: PhysAddr,
        level: Level,
        range: VirtRange,
        attrs: PageAttrs,
        apply: bool,
    ) -> Result<(), PagingError> {
        for sub in slots(level, range) {
            let index = level.index(sub.start);
            let old = self.table.read(table, index);
            match old.kind(level) {
                DescKind::Invalid => {}
                DescKind::Table(child) => {
                    if let Some(next) = level.next() {
                        self.protect_level(child, next, sub, attrs, apply)?;
                    }
                }
                DescKind::Leaf { pa, size, attrs: old_attrs } => {
                    if sub.size() != size.bytes() {
                        return Err(PagingError::PartialBlock(sub.start));
                    }
                    let new = Descriptor::leaf(pa, size, attrs);
                    match Change::classify(old, new, level) {
                        Change::Unchanged => {}
                        Change::InPlace => {
                            if apply {
                                self.table.write(table, index, new);
                                self.held.batch.add_page(self.target(&old_attrs), sub.start, true);
                            }
                        }
                        _ => return Err(PagingError::NeedsBreakBeforeMake(sub.start)),
                    }
                }
            }
        }
        Ok(())
    }

    /// The checked live update: makes the leaf at `leaf.va` of `leaf.size`
    /// be `leaf`, when that is safe without break-before-make. Installs
    /// into an invalid entry (no TLB maintenance), changes permissions in
    /// place (then invalidates), and refuses everything else with
    /// [`PagingError::NeedsBreakBeforeMake`]: another output address,
    /// memory type or globalness, or another block size.
    pub fn set(&mut self, leaf: Mapping) -> Result<Change, PagingError> {
        let (change, old) = self.table.set_entry(leaf)?;
        if let Some(attrs) = old {
            self.held.batch.add_page(self.target(&attrs), leaf.va, true);
        }
        Ok(change)
    }

    /// Gives the leaves in `range` new permissions, as `f` says: `f` gets
    /// each leaf that starts inside `range` and returns its new
    /// descriptor, which may differ from the old one in the permission
    /// bits only (AP, PXN, UXN); the changed ones are written in place and
    /// invalidated in the batch. A block only partly inside `range` is
    /// refused with [`PagingError::PartialBlock`] before anything changes;
    /// a descriptor that differs in other bits is not written, and the
    /// call reports it with [`PagingError::NeedsBreakBeforeMake`] after
    /// changing the others. Holes are skipped.
    pub fn update(&mut self, range: VirtRange, f: impl FnMut(Leaf) -> Descriptor) -> Result<(), PagingError> {
        self.check_whole_blocks(range)?;
        if range.is_empty() {
            return Ok(());
        }
        let root = self.table.root();
        let Self { table, held, scope, tlb, pause, .. } = self;
        let frames = table.frames;
        let mut pass = UpdatePass { f, held, tlb: *tlb, frames, scope: *scope, pause, refused: None };
        table.rewrite_level(root, Level::ROOT, range, &mut pass);
        match pass.refused {
            Some(va) => Err(PagingError::NeedsBreakBeforeMake(va)),
            None => Ok(()),
        }
    }

    /// Splits the block that maps `va` until the leaf holding `va` is no
    /// larger than `size`, keeping the translation of every address (so a
    /// later protect or unmap can cover part of it). The rest of the block
    /// becomes leaves one level smaller at each step. Break-before-make:
    /// the block entry is made invalid, invalidated and waited for before
    /// the new table is hooked in, so the block's addresses fault for that
    /// moment: never split the block holding the code or stack doing it.
    ///
    /// Nothing to do when the leaf is already small enough. Running out of
    /// frames leaves the tree unchanged.
    pub fn split(&mut self, va: VirtAddr, size: PageSize) -> Result<(), PagingError> {
        let block = self.table.query(va).ok_or(PagingError::NotMapped(va))?;
        if block.size <= size {
            return Ok(());
        }
        let Slot::Entry { table, index, .. } = self.table.slot(va, block.size.level()) else {
            return Err(PagingError::NotMapped(va));
        };
        let tables = usize::from(size.level().get() - block.size.level().get());
        let mut pool = FramePool::fill(self.table.mem, self.table.frames, tables)?;
        let new_table = self.table.build_split(&mut pool, block, va, size)?;
        self.table.write(table, index, Descriptor::INVALID);
        self.held.batch.add_page(self.target(&block.attrs), block.va, true);
        self.flush();
        // The new table's entries must reach memory before it is hooked in.
        fence(Ordering::Release);
        self.table.write(table, index, Descriptor::table(new_table));
        Ok(())
    }

    /// Issues the pending invalidations and waits for them, then frees the
    /// emptied table pages and releases the removed leaves.
    fn flush(&mut self) {
        self.held.flush(self.tlb, self.frames, self.pause.as_deref_mut());
    }

    /// Ends the batch: the same as dropping the editor.
    pub fn finish(self) {}

    /// Ends the batch with `lock`, which guards the table, released
    /// between the changes and their invalidations: other cores may edit
    /// the table elsewhere while this core's invalidations complete; only
    /// then are the removed leaves and table pages released. For a caller
    /// that knows nobody maps anything where the batch removed entries
    /// until this returns (another core's walker may still reach what it
    /// removed meanwhile, which is why nothing of it is freed before).
    /// (By reference, since moving an editor copies its inline arrays:
    /// the caller drops it after, which then finds nothing to flush, and
    /// uses it for nothing else.)
    #[inline(always)]
    pub fn finish_after<L>(&mut self, lock: L) {
        drop(lock);
        // The table is not touched from here on: the batch needs only the
        // TLB and the allocator.
        self.flush();
    }
}

impl<M, A, T, F> Drop for Editor<'_, '_, M, A, T, F>
where
    M: PhysMemory + ?Sized,
    A: FrameAllocator + ?Sized,
    T: TlbOps + ?Sized,
    F: FnMut(Mapping),
{
    fn drop(&mut self) {
        self.flush();
    }
}

/// The checks and the entry update behind [`Editor::set`].
impl<M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> PageTable<'_, M, A> {
    /// Checks that `leaf` is aligned and inside the table's half.
    fn check_leaf(&self, leaf: &Mapping) -> Result<(), PagingError> {
        let bytes = leaf.size.bytes();
        if !leaf.va.is_aligned(bytes) {
            return Err(PagingError::MisalignedVirt(leaf.va));
        }
        if !leaf.pa.is_aligned(bytes) {
            return Err(PagingError::MisalignedPhys(leaf.pa));
        }
        if leaf.pa.as_u64() + bytes > PHYS_ADDR_LIMIT {
            return Err(PagingError::PhysOutOfRange(leaf.pa));
        }
        let range = VirtRange::from_start_size(leaf.va, bytes).ok_or(PagingError::MisalignedVirt(leaf.va))?;
        self.check_range(range)
    }

    /// [`Editor::set`] without the invalidation: returns the change made
    /// and, when a live leaf changed in place, its old attributes (what
    /// the invalidation must cover).
    fn set_entry(&mut self, leaf: Mapping) -> Result<(Change, Option<PageAttrs>), PagingError> {
        self.check_leaf(&leaf)?;
        let level = leaf.size.level();
        match self.slot(leaf.va, level) {
            Slot::Covered => Err(PagingError::NeedsBreakBeforeMake(leaf.va)),
            Slot::Missing => {
                self.map_leaf(leaf)?;
                Ok((Change::Install, None))
            }
            Slot::Entry { table, index, desc } => {
                let new = Descriptor::leaf(leaf.pa, leaf.size, leaf.attrs);
                let change = Change::classify(desc, new, level);
                match (change, desc.kind(level)) {
                    (Change::Unchanged, _) => Ok((change, None)),
                    (Change::Install, _) => {
                        self.write(table, index, new);
                        Ok((change, None))
                    }
                    (Change::InPlace, DescKind::Leaf { attrs, .. }) => {
                        self.write(table, index, new);
                        Ok((change, Some(attrs)))
                    }
                    _ => Err(PagingError::NeedsBreakBeforeMake(leaf.va)),
                }
            }
        }
    }
}

/// Where an unmap may stop for a moment: the end of a stretch of a range
/// that an editor unmaps in a bounded number of steps.
impl<M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> PageTable<'_, M, A> {
    /// The end of the longest start of `range` (page aligned, inside the
    /// half) that [`Editor::unmap`] takes at most `steps` steps over, as it
    /// counts them towards its pause points (a leaf is one, [`EMPTY_PER_STEP`]
    /// empty last-level entries are one, an empty entry above the last
    /// level is none); at least one page, or one block when the range
    /// starts with one, so that an unmap done stretch by stretch always
    /// goes on. `range`'s end when all of it takes fewer.
    pub fn unmap_stretch_end(&self, range: VirtRange, steps: usize) -> VirtAddr {
        if self.check_range(range).is_err() || range.is_empty() {
            return range.end_exclusive;
        }
        let mut left = steps.max(1);
        self.stretch_level(self.root(), Level::ROOT, range, &mut left).unwrap_or(range.end_exclusive)
    }

    /// [`Self::unmap_stretch_end`] below `table` at `level`: the end when
    /// the steps ran out inside `range`.
    fn stretch_level(&self, table: PhysAddr, level: Level, range: VirtRange, left: &mut usize) -> Option<VirtAddr> {
        let entries = Entries::of(self, table);
        let Some(next) = level.next() else {
            let first = level.index(range.start);
            for i in 0..(range.size() / PAGE_SIZE) as usize {
                let index = first + i;
                if entries.get(index).is_valid() || index.is_multiple_of(EMPTY_PER_STEP) {
                    *left -= 1;
                    if *left == 0 {
                        return Some(range.start + (i as u64 + 1) * PAGE_SIZE);
                    }
                }
            }
            return None;
        };
        for sub in slots(level, range) {
            let desc = entries.get(level.index(sub.start));
            if desc.is_table(level) {
                if let Some(end) = self.stretch_level(desc.address(), next, sub, left) {
                    return Some(end);
                }
            } else if desc.is_valid() {
                // A block goes whole.
                *left -= 1;
                if *left == 0 {
                    return Some(sub.end_exclusive);
                }
            }
        }
        None
    }
}
