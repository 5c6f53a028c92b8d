//! A translation-table tree: creation, mapping (invalid to valid, which needs
//! no TLB maintenance) and lookup. Changes to live entries go through an
//! [`Editor`], which owns the TLB batch, or, one leaf at a time, through a
//! [`Cursor`](super::Cursor).
//!
//! Invariants of a [`PageTable`]:
//! - every table page in the tree came from its frame allocator (one frame)
//!   and belongs to the tree alone;
//! - every table page but the root holds at least one valid entry, so a
//!   table is freed as soon as it becomes empty;
//! - every valid entry was written by this module, so it decodes exactly.

use core::sync::atomic::{fence, Ordering};

use super::descriptor::{DescKind, Descriptor};
use super::edit::Editor;
use super::phys::{zero_frame, PhysMemory};
use super::{Level, Mapping, PageAttrs, PageSize, PagingError, VaHalf, ENTRIES, PHYS_ADDR_LIMIT};
use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::frame::{AllocError, FrameAllocator};
use crate::tlb::{TlbOps, TlbScope};

/// The root of a translation-table tree for one half of the address space,
/// with the memory view and frame allocator its table pages live in.
pub struct PageTable<'a, M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> {
    pub(super) mem: &'a M,
    pub(super) frames: &'a A,
    root: PhysAddr,
    half: VaHalf,
    /// Table pages in the tree, the root included.
    pub(super) table_pages: usize,
}

/// The parts of `range` inside each entry of `level`, in address order.
pub(super) fn slots(level: Level, range: VirtRange) -> impl Iterator<Item = VirtRange> {
    let size = level.entry_size();
    let mut cursor = range.start;
    core::iter::from_fn(move || {
        if cursor >= range.end_exclusive {
            return None;
        }
        let entry_end = cursor.align_down(size).checked_add(size).unwrap_or(range.end_exclusive);
        let sub = VirtRange::new(cursor, core::cmp::min(entry_end, range.end_exclusive));
        cursor = sub.end_exclusive;
        Some(sub)
    })
}

/// The physical address of `va` in a run that maps `range.start` at `pa`.
fn pa_at(range: VirtRange, pa: PhysAddr, va: VirtAddr) -> PhysAddr {
    PhysAddr::new(pa.as_u64() + (va - range.start))
}

/// Table pages taken from the allocator before a map touches the tree, so
/// that running out of frames leaves the tree as it was. Free frames are
/// chained through their first word: nothing else can see them yet.
pub(super) struct FramePool<'p, M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> {
    mem: &'p M,
    frames: &'p A,
    head: Option<PhysAddr>,
    len: usize,
}

impl<'p, M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> FramePool<'p, M, A> {
    /// Stands for "no next frame" in a link (never page aligned).
    const END: u64 = u64::MAX;

    pub(super) fn fill(mem: &'p M, frames: &'p A, count: usize) -> Result<Self, AllocError> {
        let mut pool = Self { mem, frames, head: None, len: 0 };
        for _ in 0..count {
            // On error `pool` drops and gives back what it holds.
            let frame = frames.alloc_frame()?;
            let next = pool.head.map_or(Self::END, PhysAddr::as_u64);
            // SAFETY: the frame was just allocated, so it is ours and covered
            // by `mem`'s contract; no table points at it.
            unsafe { mem.write_u64(frame, next) };
            pool.head = Some(frame);
            pool.len += 1;
        }
        Ok(pool)
    }

    /// Frames left in the pool.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// A zeroed frame.
    pub(super) fn take(&mut self) -> Option<PhysAddr> {
        let frame = self.head?;
        // SAFETY: pool frames are ours and unreachable from any table.
        let next = unsafe { self.mem.read_u64(frame) };
        self.head = (next != Self::END).then_some(PhysAddr::new(next));
        self.len -= 1;
        // SAFETY: as above.
        unsafe { zero_frame(self.mem, frame) };
        Some(frame)
    }
}

impl<M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> Drop for FramePool<'_, M, A> {
    fn drop(&mut self) {
        while let Some(frame) = self.head {
            // SAFETY: as in `take`.
            let next = unsafe { self.mem.read_u64(frame) };
            self.head = (next != Self::END).then_some(PhysAddr::new(next));
            self.frames.free_frame(frame);
        }
    }
}

/// Table pages set aside for a batch of [`Cursor::map_reserved`](super::Cursor::map_reserved)
/// calls (see [`PageTable::reserve_tables`]), so that the maps cannot run
/// out of frames once the caller has started changing things. What is
/// left goes back to the allocator when it drops.
pub struct TableReserve<'p, M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> {
    pub(super) pool: FramePool<'p, M, A>,
}

/// The two passes of a map: `Plan` checks and counts the table pages
/// needed without writing; `Apply` writes, taking table pages from the pool.
/// Both run the same code, so the count and the use agree.
enum Pass<'r, 'p, M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> {
    Plan,
    Apply(&'r mut FramePool<'p, M, A>),
}

/// What a map writes: the run `range -> pa` with `attrs`, in leaves no
/// larger than `largest`.
#[derive(Clone, Copy)]
struct Run {
    range: VirtRange,
    pa: PhysAddr,
    attrs: PageAttrs,
    largest: PageSize,
}

impl Run {
    /// The leaf size for the part `sub` of the run at `level`, if one leaf
    /// can map all of it: the entry is wholly inside the run and the
    /// physical address is aligned to the leaf.
    fn leaf_for(&self, level: Level, sub: VirtRange) -> Option<PageSize> {
        let size = level.leaf_size()?;
        (size <= self.largest
            && sub.size() == size.bytes()
            && pa_at(self.range, self.pa, sub.start).is_aligned(size.bytes()))
        .then_some(size)
    }
}

impl<'a, M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> PageTable<'a, M, A> {
    /// Takes `count` table pages from the allocator, all or none, for
    /// later maps that must not fail ([`TableReserve`]).
    pub fn reserve_tables(&self, count: usize) -> Result<TableReserve<'a, M, A>, PagingError> {
        Ok(TableReserve { pool: FramePool::fill(self.mem, self.frames, count)? })
    }

    /// An empty tree for `half`: one zeroed root table.
    pub fn new(mem: &'a M, frames: &'a A, half: VaHalf) -> Result<Self, PagingError> {
        let root = frames.alloc_frame()?;
        // SAFETY: a fresh frame is ours and covered by `mem`'s contract.
        unsafe { zero_frame(mem, root) };
        Ok(Self { mem, frames, root, half, table_pages: 1 })
    }

    /// The root table's physical address, for TTBR0 (with the ASID) or TTBR1.
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The half of the address space the tree translates.
    pub fn half(&self) -> VaHalf {
        self.half
    }

    /// Table pages the tree holds, the root included.
    pub fn table_pages(&self) -> usize {
        self.table_pages
    }

    /// The same tree seen through another view of physical memory (the
    /// kernel builds its tables with the MMU off, then edits them through
    /// the linear map).
    ///
    /// # Safety
    /// `mem` must reach the same frames as the current view: every table
    /// page of the tree and every frame the allocator hands out.
    pub unsafe fn rebind_memory<'b, N: PhysMemory + ?Sized>(self, mem: &'b N) -> PageTable<'b, N, A>
    where
        'a: 'b,
    {
        PageTable { mem, frames: self.frames, root: self.root, half: self.half, table_pages: self.table_pages }
    }

    pub(super) fn read(&self, table: PhysAddr, index: usize) -> Descriptor {
        debug_assert!(index < ENTRIES);
        // SAFETY: `table` is a table page of this tree (invariant), so it is
        // covered by `mem`'s contract, and `index` is inside it.
        Descriptor::from_bits(unsafe { self.mem.read_u64(table + (index as u64) * 8) })
    }

    pub(super) fn write(&mut self, table: PhysAddr, index: usize, desc: Descriptor) {
        debug_assert!(index < ENTRIES);
        // SAFETY: as in `read`; table pages hold no Rust objects.
        unsafe { self.mem.write_u64(table + (index as u64) * 8, desc.bits()) }
    }

    /// Whether the table page has no valid entry, reading from entry
    /// `near` up, then from the start: an unmap asks this of the table it
    /// took pages from, and mappings lie next to each other (top-down ones
    /// above the last one made), so a table still in use usually shows it
    /// within a group or two.
    pub(super) fn is_empty_table(&self, table: PhysAddr, near: usize) -> bool {
        // Emptied entries are zero: eight at a time with one test, entry
        // by entry only where a word is not.
        const GROUP: usize = 8;
        let entries = super::bulk::Entries::of(self, table);
        let empty = |first: usize| {
            entries.group_is_zero::<GROUP>(first) || (first..first + GROUP).all(|i| !entries.get(i).is_valid())
        };
        let split = near.min(ENTRIES) / GROUP * GROUP;
        (split..ENTRIES).step_by(GROUP).all(empty) && (0..split).step_by(GROUP).all(empty)
    }

    /// Checks that `range` is page aligned and inside the table's half.
    pub(super) fn check_range(&self, range: VirtRange) -> Result<(), PagingError> {
        for va in [range.start, range.end_exclusive] {
            if !va.is_page_aligned() {
                return Err(PagingError::MisalignedVirt(va));
            }
        }
        let half = self.half.range();
        if !range.is_empty() && (range.start < half.start || range.end_exclusive > half.end_exclusive) {
            return Err(PagingError::OutsideHalf(range));
        }
        Ok(())
    }

    /// The leaf that translates `va`, if any.
    pub fn query(&self, va: VirtAddr) -> Option<Mapping> {
        if !self.half.range().contains(va) {
            return None;
        }
        let mut table = self.root;
        let mut level = Level::ROOT;
        loop {
            match self.read(table, level.index(va)).kind(level) {
                DescKind::Invalid => return None,
                DescKind::Table(next) => {
                    table = next;
                    level = level.next()?;
                }
                DescKind::Leaf { pa, size, attrs } => {
                    return Some(Mapping { va: va.align_down(size.bytes()), pa, size, attrs });
                }
            }
        }
    }

    /// Maps `range` (page aligned) to `pa..` with `attrs` in 4 KiB pages.
    /// Every page of `range` must be unmapped ([`PagingError::AlreadyMapped`]
    /// otherwise). Needs no TLB maintenance: the TLB never holds a fault.
    ///
    /// On error (including running out of frames for table pages) the tree
    /// is unchanged. Kernel mappings used at once from EL1 need a
    /// `DSB ISHST; ISB` first so this CPU's walker sees them.
    pub fn map(&mut self, range: VirtRange, pa: PhysAddr, attrs: PageAttrs) -> Result<(), PagingError> {
        self.map_run(Run { range, pa, attrs, largest: PageSize::Size4K })
    }

    /// As [`Self::map`], but with 1 GiB and 2 MiB blocks wherever both the
    /// virtual and the physical address allow: for the kernel's linear map
    /// of RAM and device windows.
    pub fn map_linear(&mut self, range: VirtRange, pa: PhysAddr, attrs: PageAttrs) -> Result<(), PagingError> {
        self.map_run(Run { range, pa, attrs, largest: PageSize::Size1G })
    }

    /// Maps one leaf, with the tables above it as needed.
    pub(super) fn map_leaf(&mut self, leaf: Mapping) -> Result<(), PagingError> {
        let range = leaf.va_range();
        self.map_run(Run { range, pa: leaf.pa, attrs: leaf.attrs, largest: leaf.size })
    }

    fn map_run(&mut self, run: Run) -> Result<(), PagingError> {
        self.check_range(run.range)?;
        if !run.pa.is_page_aligned() {
            return Err(PagingError::MisalignedPhys(run.pa));
        }
        if run.pa.as_u64().checked_add(run.range.size()).is_none_or(|end| end > PHYS_ADDR_LIMIT) {
            return Err(PagingError::PhysOutOfRange(run.pa));
        }
        if run.range.is_empty() {
            return Ok(());
        }
        let needed = self.map_level(Some(self.root), Level::ROOT, run.range, &run, &mut Pass::Plan)?;
        let mut pool = FramePool::fill(self.mem, self.frames, needed)?;
        self.map_level(Some(self.root), Level::ROOT, run.range, &run, &mut Pass::Apply(&mut pool))?;
        Ok(())
    }

    /// Maps the part `range` of `run` into `table` at `level` (`None`: a
    /// table the plan will have to allocate). Returns the table pages the
    /// plan needs below.
    fn map_level(
        &mut self,
        table: Option<PhysAddr>,
        level: Level,
        range: VirtRange,
        run: &Run,
        pass: &mut Pass<'_, 'a, M, A>,
    ) -> Result<usize, PagingError> {
        // A table still to be allocated needs no look at its pages.
        if table.is_none() && !level.has_tables() {
            return Ok(0);
        }
        let mut needed = 0;
        for sub in slots(level, range) {
            let index = level.index(sub.start);
            let old = table.map_or(Descriptor::INVALID, |t| self.read(t, index));
            let kind = old.kind(level);
            if let Some(size) = run.leaf_for(level, sub) {
                if kind != DescKind::Invalid {
                    // A table here is not empty (invariant), so part of the
                    // entry is mapped.
                    return Err(PagingError::AlreadyMapped(sub.start));
                }
                if let (Pass::Apply(_), Some(t)) = (&pass, table) {
                    let leaf = Descriptor::leaf(pa_at(run.range, run.pa, sub.start), size, run.attrs);
                    self.write(t, index, leaf);
                }
                continue;
            }
            // The entry is only partly inside the run, or misaligned: go down.
            let Some(next) = level.next() else {
                return Err(PagingError::MisalignedVirt(sub.start));
            };
            match kind {
                DescKind::Leaf { .. } => return Err(PagingError::AlreadyMapped(sub.start)),
                DescKind::Table(child) => needed += self.map_level(Some(child), next, sub, run, pass)?,
                DescKind::Invalid => match pass {
                    Pass::Plan => needed += 1 + self.map_level(None, next, sub, run, pass)?,
                    Pass::Apply(pool) => {
                        let child = pool.take().ok_or(PagingError::OutOfMemory(AllocError::OutOfMemory))?;
                        self.map_level(Some(child), next, sub, run, pass)?;
                        // The new table's entries must reach memory before
                        // the entry that makes the walker read them.
                        fence(Ordering::Release);
                        if let Some(t) = table {
                            self.write(t, index, Descriptor::table(child));
                        }
                        self.table_pages += 1;
                    }
                },
            }
        }
        Ok(needed)
    }

    /// The entry at `level` on the walk to `va`.
    pub(super) fn slot(&self, va: VirtAddr, level: Level) -> Slot {
        let mut table = self.root;
        let mut current = Level::ROOT;
        loop {
            let index = current.index(va);
            let desc = self.read(table, index);
            if current == level {
                return Slot::Entry { table, index, desc };
            }
            match desc.kind(current) {
                DescKind::Invalid => return Slot::Missing,
                DescKind::Leaf { .. } => return Slot::Covered,
                DescKind::Table(next) => match current.next() {
                    Some(l) => {
                        table = next;
                        current = l;
                    }
                    None => return Slot::Missing,
                },
            }
        }
    }

    /// A new table with the same translation as the block `block`, in
    /// leaves one level smaller, split further on the way to `va` until the
    /// leaf there is no larger than `size`. Not yet hooked into the tree.
    pub(super) fn build_split(
        &mut self,
        pool: &mut FramePool<'a, M, A>,
        block: Mapping,
        va: VirtAddr,
        size: PageSize,
    ) -> Result<PhysAddr, PagingError> {
        let level = block.size.level().next().ok_or(PagingError::MisalignedVirt(va))?;
        let child_size = level.leaf_size().ok_or(PagingError::MisalignedVirt(va))?;
        let table = pool.take().ok_or(PagingError::OutOfMemory(AllocError::OutOfMemory))?;
        for index in 0..ENTRIES {
            let offset = index as u64 * child_size.bytes();
            let child = Mapping { va: block.va + offset, pa: block.pa + offset, size: child_size, attrs: block.attrs };
            let desc = if child_size > size && child.va_range().contains(va) {
                Descriptor::table(self.build_split(pool, child, va, size)?)
            } else {
                Descriptor::leaf(child.pa, child.size, child.attrs)
            };
            self.write(table, index, desc);
        }
        self.table_pages += 1;
        Ok(table)
    }

    /// Starts a batch of changes to live entries; TLB maintenance for them
    /// is issued by the editor, and frames it takes out of the tree reach
    /// `release` only after that maintenance completed.
    ///
    /// `scope` names the ASID the table runs under. Upper-half tables are
    /// always invalidated for every ASID.
    #[inline(always)]
    pub fn edit<'e, T, F>(&'e mut self, tlb: &'e T, scope: TlbScope, release: F) -> Editor<'e, 'a, M, A, T, F>
    where
        T: TlbOps + ?Sized,
        F: FnMut(Mapping),
    {
        let scope = match self.half {
            VaHalf::Upper => TlbScope::AllAsids,
            VaHalf::Lower => scope,
        };
        Editor::new(self, tlb, scope, release)
    }

    /// Unmaps everything (handing each leaf to `release` after the TLB
    /// maintenance) and frees the root. The table must not be in any TTBR.
    pub fn destroy<T, F>(mut self, tlb: &T, scope: TlbScope, release: F)
    where
        T: TlbOps + ?Sized,
        F: FnMut(Mapping),
    {
        self.edit(tlb, scope, release).unmap_all();
        self.frames.free_frame(self.root);
    }
}

/// What the walk to an entry found.
pub(super) enum Slot {
    /// An invalid entry above the level asked for: tables are missing.
    Missing,
    /// A block above the level asked for covers the address.
    Covered,
    /// The entry at the level asked for.
    Entry { table: PhysAddr, index: usize, desc: Descriptor },
}

impl<M: PhysMemory + ?Sized, A: FrameAllocator + ?Sized> core::fmt::Debug for PageTable<'_, M, A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageTable")
            .field("root", &self.root)
            .field("half", &self.half)
            .field("table_pages", &self.table_pages)
            .finish()
    }
}
