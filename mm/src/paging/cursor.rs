//! A cursor over one range of a translation table: it walks from the root
//! once, keeps the tables on the way, and queries, maps, re-protects or
//! replaces the leaf at its position; moving on re-reads only the tables
//! the new position does not share with the old one.
//!
//! The fault path makes one for the faulting page (the query and the write
//! that follows share one walk), and populate one per varea, walking its
//! range page by page.
//!
//! A cursor changes one leaf at a time, each with its own TLB maintenance
//! (an [`Editor`](super::Editor) batch costs more than the one invalidation
//! a fault needs):
//! - an invalid entry becomes valid with no maintenance (the TLB never
//!   holds a translation fault);
//! - a permission change (AP, PXN, UXN) is written in place, then the page
//!   is invalidated and waited for (`begin`, one page, `sync`);
//! - any other change to a live leaf is break-before-make (ARM ARM D8.17):
//!   the entry is made invalid, the page invalidated and waited for, and
//!   only then the new entry written. The old leaf reaches the caller after
//!   that, so its frame cannot be given back while a TLB may still use it.
//!
//! A cursor never removes table pages, so the tables it keeps stay in the
//! tree for its whole life.

use core::sync::atomic::{fence, Ordering};

use super::bulk::{Entries, Leaf};
use super::descriptor::{Change, Descriptor};
use super::phys::PhysMemory;
use super::table::{FramePool, PageTable, TableReserve};
use super::{Level, PageAttrs, PageSize, PagingError, VaHalf, ENTRIES, PHYS_ADDR_LIMIT};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::{AllocError, FrameAllocator};
use crate::tlb::{invalidate_page_now, TlbOps, TlbScope};

/// A position inside a range of one table, with the tables on the walk to
/// it (see [`PageTable::cursor`]). It holds the table exclusively: nothing
/// else changes the tree while it lives.
pub struct Cursor<'c, 'a, M, A, T>
where
    M: PhysMemory + ?Sized,
    A: FrameAllocator + ?Sized,
    T: TlbOps + ?Sized,
{
    table: &'c mut PageTable<'a, M, A>,
    tlb: &'c T,
    scope: TlbScope,
    range: VirtRange,
    va: VirtAddr,
    /// `path[l]`: the table page at level `l` on the walk to `va`, known
    /// for every level up to `depth` (the root always).
    path: [PhysAddr; 4],
    depth: Level,
}

impl<'a, M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> PageTable<'a, M, A> {
    /// A cursor over `range` (page aligned, inside the table's half, not
    /// empty), at `range.start`. `scope` names the ASID the table runs
    /// under, as for [`Self::edit`]; upper-half tables are always
    /// invalidated for every ASID.
    pub fn cursor<'c, T: TlbOps + ?Sized>(
        &'c mut self,
        tlb: &'c T,
        scope: TlbScope,
        range: VirtRange,
    ) -> Result<Cursor<'c, 'a, M, A, T>, PagingError> {
        self.check_range(range)?;
        if range.is_empty() {
            return Err(PagingError::OutsideCursor(range.start));
        }
        let scope = match self.half() {
            VaHalf::Upper => TlbScope::AllAsids,
            VaHalf::Lower => scope,
        };
        let root = self.root();
        Ok(Cursor { table: self, tlb, scope, range, va: range.start, path: [root; 4], depth: Level::ROOT })
    }
}

impl<M, A, T> Cursor<'_, '_, M, A, T>
where
    M: PhysMemory + ?Sized,
    A: FrameAllocator + ?Sized,
    T: TlbOps + ?Sized,
{
    /// The page the cursor is at.
    pub fn va(&self) -> VirtAddr {
        self.va
    }

    /// The range the cursor may move in and edit.
    pub fn range(&self) -> VirtRange {
        self.range
    }

    /// Moves to `va` (page aligned, inside the range), keeping the tables
    /// the walks to both positions share.
    pub fn jump(&mut self, va: VirtAddr) -> Result<(), PagingError> {
        if !va.is_page_aligned() {
            return Err(PagingError::MisalignedVirt(va));
        }
        if !self.range.contains(va) {
            return Err(PagingError::OutsideCursor(va));
        }
        // The table at level `l` serves the span of one entry of level
        // `l - 1`: 512 entries of its own.
        while self.depth > Level::ROOT && (self.va.as_u64() ^ va.as_u64()) >> (self.depth.shift() + 9) != 0 {
            self.depth = Level(self.depth.get() - 1);
        }
        self.va = va;
        Ok(())
    }

    /// Moves to the next page; `false` (and no move) at the end of the
    /// range.
    pub fn next_page(&mut self) -> bool {
        match self.va.checked_add(PAGE_SIZE) {
            Some(next) if next < self.range.end_exclusive => self.jump(next).is_ok(),
            _ => false,
        }
    }

    /// Walks from the deepest known table towards the position for as long
    /// as entries point at tables, keeping those; returns the entry where
    /// the walk stops (invalid, a leaf, or the L3 entry) and its level.
    #[inline]
    fn descend(&mut self) -> (Level, Descriptor) {
        let mut level = self.depth;
        let mut table = self.path[level.slot()];
        loop {
            let desc = self.table.read(table, level.index(self.va));
            match level.next() {
                Some(next) if desc.is_table(level) => {
                    table = desc.address();
                    self.path[next.slot()] = table;
                    level = next;
                }
                _ => {
                    self.depth = level;
                    return (level, desc);
                }
            }
        }
    }

    /// Writes `desc` into the entry at `level` on the walk to the position
    /// (a table the cursor holds).
    #[inline]
    fn write(&mut self, level: Level, desc: Descriptor) {
        let table = self.path[level.slot()];
        self.table.write(table, level.index(self.va), desc);
    }

    /// The leaf that translates the position, if any, as its raw
    /// descriptor ([`Leaf::mapping`] decodes it).
    #[inline]
    pub fn query(&mut self) -> Option<Leaf> {
        let (level, desc) = self.descend();
        desc.is_leaf(level).then(|| Leaf { va: self.va.align_down(level.entry_size()), level, desc })
    }

    /// Maps the page at the position to `pa` with `attrs`. The page must be
    /// unmapped ([`PagingError::AlreadyMapped`] otherwise); the missing
    /// tables on the way are added all together or not at all (running
    /// out of frames leaves the tree as it was). Needs no TLB maintenance.
    #[inline]
    pub fn map(&mut self, pa: PhysAddr, attrs: PageAttrs) -> Result<(), PagingError> {
        self.map_from(pa, attrs, None)
    }

    /// How many pages from the position on, up to `max`, have no entry:
    /// counted inside the range and the span of one last-level table (512
    /// pages), up to the first page that has one.
    pub fn unmapped_run(&mut self, max: usize) -> usize {
        let index = Level(3).index(self.va);
        let to_range_end = ((self.range.end_exclusive - self.va) / PAGE_SIZE) as usize;
        let limit = max.min(ENTRIES - index).min(to_range_end);
        let (level, desc) = self.descend();
        if desc.is_valid() && level.get() < 3 {
            return 0; // a block
        }
        if level.get() < 3 {
            return limit; // no last-level table yet: all of it is free
        }
        let entries = Entries::of(self.table, self.path[Level(3).slot()]);
        (index..index + limit).take_while(|&i| !entries.get(i).is_valid()).count()
    }

    /// Maps the `count` pages from the position on to the frames from `pa`
    /// on, with `attrs`: all or none, refused ([`PagingError::AlreadyMapped`])
    /// unless [`Self::unmapped_run`] counts them all. The missing tables are
    /// added as by [`Self::map`]; the cursor ends at the last page. Needs
    /// no TLB maintenance.
    pub fn map_run(&mut self, pa: PhysAddr, count: usize, attrs: PageAttrs) -> Result<(), PagingError> {
        let bytes = (count as u64).checked_mul(PAGE_SIZE).ok_or(PagingError::PhysOutOfRange(pa))?;
        if pa.as_u64().checked_add(bytes).is_none_or(|end| end > PHYS_ADDR_LIMIT) {
            return Err(PagingError::PhysOutOfRange(pa));
        }
        if count == 0 {
            return Ok(());
        }
        if self.unmapped_run(count) < count {
            return Err(PagingError::AlreadyMapped(self.va));
        }
        self.map(pa, attrs)?;
        let first = Descriptor::leaf(pa, PageSize::Size4K, attrs);
        let entries = Entries::of(self.table, self.path[Level(3).slot()]);
        let index = Level(3).index(self.va);
        for i in 1..count {
            // The same descriptor, one page further on.
            entries.set(index + i, Descriptor::from_bits(first.bits() + i as u64 * PAGE_SIZE));
        }
        self.va = self.va + (count as u64 - 1) * PAGE_SIZE;
        Ok(())
    }

    /// As [`Self::map`], taking the missing tables from `reserve` rather
    /// than from the allocator: when the reserve holds at least the three
    /// pages a map may need, only a mapped page or bad arguments refuse it.
    pub fn map_reserved(
        &mut self,
        pa: PhysAddr,
        attrs: PageAttrs,
        reserve: &mut TableReserve<'_, M, A>,
    ) -> Result<(), PagingError> {
        self.map_from(pa, attrs, Some(&mut reserve.pool))
    }

    /// [`Self::map`], with the tables from `reserve` when given.
    #[inline]
    fn map_from(
        &mut self,
        pa: PhysAddr,
        attrs: PageAttrs,
        reserve: Option<&mut FramePool<'_, M, A>>,
    ) -> Result<(), PagingError> {
        check_output(pa, PageSize::Size4K)?;
        let (level, desc) = self.descend();
        if desc.is_valid() {
            return Err(PagingError::AlreadyMapped(self.va));
        }
        let leaf = Descriptor::leaf(pa, PageSize::Size4K, attrs);
        match level.next() {
            None => {
                self.write(level, leaf);
                Ok(())
            }
            Some(first) => self.hook_tables(level, first, leaf, reserve),
        }
    }

    /// Builds the tables from `first` down to L3 for the position, with
    /// `leaf` in the L3 one, and hooks them into the (invalid) entry at
    /// `level`. Out of line: most maps find their tables there.
    #[cold]
    #[inline(never)]
    fn hook_tables(
        &mut self,
        level: Level,
        first: Level,
        leaf: Descriptor,
        reserve: Option<&mut FramePool<'_, M, A>>,
    ) -> Result<(), PagingError> {
        let count = usize::from(4 - first.get());
        match reserve {
            Some(pool) if pool.len() >= count => self.build_tables(level, first, leaf, pool),
            Some(_) => Err(PagingError::OutOfMemory(AllocError::OutOfMemory)),
            None => {
                let mut pool = FramePool::fill(self.table.mem, self.table.frames, count)?;
                self.build_tables(level, first, leaf, &mut pool)
            }
        }
    }

    /// The body of [`Self::hook_tables`], with `pool` holding the tables.
    #[inline(always)]
    fn build_tables(
        &mut self,
        level: Level,
        first: Level,
        leaf: Descriptor,
        pool: &mut FramePool<'_, M, A>,
    ) -> Result<(), PagingError> {
        let count = usize::from(4 - first.get());
        let mut below = leaf;
        for depth in (first.get()..=3).rev() {
            let new = pool.take().ok_or(PagingError::OutOfMemory(AllocError::OutOfMemory))?;
            self.table.write(new, Level(depth).index(self.va), below);
            self.path[Level(depth).slot()] = new;
            below = Descriptor::table(new);
        }
        self.table.table_pages += count;
        // The new tables' entries must reach memory before the entry that
        // makes the walker read them.
        fence(Ordering::Release);
        self.write(level, below);
        self.depth = Level(3);
        Ok(())
    }

    /// The live leaf at the position; refused when there is none
    /// ([`PagingError::NotMapped`]) or when it is a block reaching outside
    /// the cursor's range ([`PagingError::PartialBlock`]).
    #[inline]
    fn owned_leaf(&mut self) -> Result<Leaf, PagingError> {
        let leaf = self.query().ok_or(PagingError::NotMapped(self.va))?;
        let end = leaf.va.checked_add(leaf.level.entry_size());
        if leaf.va < self.range.start || end.is_none_or(|end| end > self.range.end_exclusive) {
            return Err(PagingError::PartialBlock(self.va));
        }
        Ok(leaf)
    }

    /// What invalidating `leaf` must cover: global entries are cached for
    /// every ASID.
    fn target(&self, leaf: &Leaf) -> TlbScope {
        if leaf.desc.is_global() {
            TlbScope::AllAsids
        } else {
            self.scope
        }
    }

    /// Gives the leaf at the position the permissions of `attrs`, in place,
    /// then invalidates it and waits. Only permission changes (AP, PXN,
    /// UXN) are done: another memory type or globalness is refused with
    /// [`PagingError::NeedsBreakBeforeMake`], no leaf with
    /// [`PagingError::NotMapped`], a block reaching outside the range with
    /// [`PagingError::PartialBlock`], all before anything changes.
    pub fn protect(&mut self, attrs: PageAttrs) -> Result<Change, PagingError> {
        let leaf = self.owned_leaf()?;
        let new = Descriptor::leaf(leaf.pa(), leaf.size(), attrs);
        // Both are leaves of the same level: no need to decode them to
        // classify the change.
        if new == leaf.desc {
            return Ok(Change::Unchanged);
        }
        if !leaf.desc.differs_in_permissions_only(new) {
            return Err(PagingError::NeedsBreakBeforeMake(leaf.va));
        }
        self.write(leaf.level, new);
        invalidate_page_now(self.tlb, self.target(&leaf), leaf.va, true);
        Ok(Change::InPlace)
    }

    /// Break-before-make: makes the leaf at the position map `pa` with
    /// `attrs`, whatever changes (output address, memory type, ...). The
    /// entry is written invalid, the page invalidated and waited for, then
    /// the new entry written. Returns the leaf that was there, raw (the new
    /// one has its size, so `pa` must be aligned to it): its frame is no
    /// longer reachable through any TLB and the caller may drop it at once.
    ///
    /// Where nothing is mapped, maps a page (as [`Self::map`]) and returns
    /// `None`. A block reaching outside the range is refused with
    /// [`PagingError::PartialBlock`].
    pub fn replace(&mut self, pa: PhysAddr, attrs: PageAttrs) -> Result<Option<Leaf>, PagingError> {
        let leaf = match self.owned_leaf() {
            Ok(leaf) => leaf,
            Err(PagingError::NotMapped(_)) => return self.map(pa, attrs).map(|()| None),
            Err(e) => return Err(e),
        };
        check_output(pa, leaf.size())?;
        let new = Descriptor::leaf(pa, leaf.size(), attrs);
        if new != leaf.desc {
            self.write(leaf.level, Descriptor::INVALID);
            invalidate_page_now(self.tlb, self.target(&leaf), leaf.va, true);
            self.write(leaf.level, new);
        }
        Ok(Some(leaf))
    }
}

/// Checks that a leaf of `size` can map `pa`: aligned, inside 48 bits.
fn check_output(pa: PhysAddr, size: PageSize) -> Result<(), PagingError> {
    if !pa.is_aligned(size.bytes()) {
        return Err(PagingError::MisalignedPhys(pa));
    }
    if pa.as_u64().checked_add(size.bytes()).is_none_or(|end| end > PHYS_ADDR_LIMIT) {
        return Err(PagingError::PhysOutOfRange(pa));
    }
    Ok(())
}
