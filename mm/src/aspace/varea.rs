//! Vareas: ranges of an address space with one protection and one backing,
//! kept in an ordered map by start address, split and merged as calls
//! change parts of them.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::ops::ControlFlow;

use super::{MmEnv, USER_END, WX_FLIP_BOUND};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::object::FileObject;
use crate::paging::Pause;

/// What user code may do in a varea: the access bits of `PROT_*`.
pub use aspen_abi::mman::Prot;

/// The open file an mmap maps: its memory object and the access the
/// descriptor was opened with, which bounds what the mapping may ever
/// allow (a shared mapping of a file opened read-only stays read-only).
pub struct MappedFile<'e, E: MmEnv> {
    /// The file's page cache.
    pub object: Arc<FileObject<'e, E>>,
    /// Opened for reading (`O_RDONLY` or `O_RDWR`).
    pub readable: bool,
    /// Opened for writing (`O_WRONLY` or `O_RDWR`).
    pub writable: bool,
}

impl<'e, E: MmEnv> MappedFile<'e, E> {
    /// A file opened for reading only.
    pub fn read_only(object: Arc<FileObject<'e, E>>) -> Self {
        Self { object, readable: true, writable: false }
    }

    /// A file opened for reading and writing.
    pub fn read_write(object: Arc<FileObject<'e, E>>) -> Self {
        Self { object, readable: true, writable: true }
    }
}

/// What a varea's pages are.
pub(crate) enum Backing<'e, E: MmEnv> {
    /// Private anonymous memory: zero-filled on demand, copied on write
    /// after fork (heap, stack, bss, MAP_PRIVATE|MAP_ANONYMOUS).
    Anon,
    /// Pages of a memory object from page `first_page` on. Private: the
    /// object's pages are mapped read-only and copied on write. Shared:
    /// its pages are mapped as they are (shared anonymous memory is an
    /// anonymous object, shared across fork).
    Object { object: Arc<FileObject<'e, E>>, first_page: u64, shared: bool },
    /// Physical frames from `pa` on, not reference counted (drivers).
    Device { pa: PhysAddr },
}

impl<E: MmEnv> Clone for Backing<'_, E> {
    fn clone(&self) -> Self {
        match self {
            Self::Anon => Self::Anon,
            Self::Object { object, first_page, shared } => {
                Self::Object { object: Arc::clone(object), first_page: *first_page, shared: *shared }
            }
            Self::Device { pa } => Self::Device { pa: *pa },
        }
    }
}

/// One varea; its start is the key it is stored under.
pub(crate) struct Varea<'e, E: MmEnv> {
    pub end_exclusive: VirtAddr,
    pub prot: Prot,
    /// The most `prot` may ever become (Linux's `VM_MAYREAD`/`MAYWRITE`/
    /// `MAYEXEC`), fixed when the varea is made: a shared mapping of a file
    /// opened read-only never becomes writable, device memory never
    /// executable.
    pub max_prot: Prot,
    pub backing: Backing<'e, E>,
    /// mlock: populated, and kept so (no MADV_DONTNEED).
    pub locked: bool,
    /// Write/execute flips its pages took under its current protection.
    pub wx_flips: u32,
    /// Flipped past [`WX_FLIP_BOUND`]: writable pages are mapped
    /// executable too. Only while `prot` has both write and execute.
    pub wx_together: bool,
}

impl<E: MmEnv> Clone for Varea<'_, E> {
    fn clone(&self) -> Self {
        Self {
            end_exclusive: self.end_exclusive,
            prot: self.prot,
            max_prot: self.max_prot,
            backing: self.backing.clone(),
            locked: self.locked,
            wx_flips: self.wx_flips,
            wx_together: self.wx_together,
        }
    }
}

impl<'e, E: MmEnv> Varea<'e, E> {
    /// A varea over up to `end_exclusive` that never flipped.
    pub fn new(end_exclusive: VirtAddr, prot: Prot, max_prot: Prot, backing: Backing<'e, E>, locked: bool) -> Self {
        Self { end_exclusive, prot, max_prot, backing, locked, wx_flips: 0, wx_together: false }
    }

    /// Counts a write/execute flip of one of its pages; past
    /// [`WX_FLIP_BOUND`] its pages stay writable and executable.
    pub fn count_wx_flip(&mut self) {
        self.wx_flips = self.wx_flips.saturating_add(1);
        self.wx_together |= self.wx_flips > WX_FLIP_BOUND;
    }

    /// Sets the protection; taking write or execute away ends flip
    /// counting and the write-and-execute mapping.
    pub fn set_prot(&mut self, prot: Prot) {
        if !prot.contains(Prot::WRITE | Prot::EXEC) {
            self.wx_flips = 0;
            self.wx_together = false;
        }
        self.prot = prot;
    }

    /// Whether writes go to memory others share (no copy-on-write).
    pub fn is_shared(&self) -> bool {
        match &self.backing {
            Backing::Anon => false,
            Backing::Object { shared, .. } => *shared,
            Backing::Device { .. } => true,
        }
    }

    /// The part `at ..` of a varea starting at `start` (its backing moved
    /// along); `self` keeps `start .. at`.
    fn split_off(&mut self, start: VirtAddr, at: VirtAddr) -> Self {
        let pages = (at - start) / PAGE_SIZE;
        let backing = match &self.backing {
            Backing::Anon => Backing::Anon,
            Backing::Object { object, first_page, shared } => {
                Backing::Object { object: Arc::clone(object), first_page: first_page + pages, shared: *shared }
            }
            Backing::Device { pa } => Backing::Device { pa: *pa + (at - start) },
        };
        let upper = Self {
            end_exclusive: self.end_exclusive,
            prot: self.prot,
            max_prot: self.max_prot,
            backing,
            locked: self.locked,
            // Either half may hold the page that flipped: both keep the
            // count, so neither loses the progress it earned.
            wx_flips: self.wx_flips,
            wx_together: self.wx_together,
        };
        self.end_exclusive = at;
        upper
    }

    /// Takes in `next`, which starts where `self` ends and continues it
    /// ([`Self::continues_into`]), if there is one.
    fn join(&mut self, next: Option<&Self>) {
        if let Some(next) = next {
            self.end_exclusive = next.end_exclusive;
            // As in `VareaMap::merge_at`: the larger count.
            self.wx_flips = self.wx_flips.max(next.wx_flips);
        }
    }

    /// Whether `next`, starting where `self` (starting at `start`) ends,
    /// continues it exactly, so the two can be one varea.
    fn continues_into(&self, start: VirtAddr, next: &Self) -> bool {
        if self.prot != next.prot
            || self.max_prot != next.max_prot
            || self.locked != next.locked
            || self.wx_together != next.wx_together
        {
            return false;
        }
        match (&self.backing, &next.backing) {
            (Backing::Anon, Backing::Anon) => true,
            (
                Backing::Object { object: a, first_page: fa, shared: sa },
                Backing::Object { object: b, first_page: fb, shared: sb },
            ) => Arc::ptr_eq(a, b) && sa == sb && fa + (self.end_exclusive - start) / PAGE_SIZE == *fb,
            (Backing::Device { pa: a }, Backing::Device { pa: b }) => *a + (self.end_exclusive - start) == *b,
            _ => false,
        }
    }
}

/// Where the last top-down search for a free area below `base` placed its
/// mapping (`from`), and the largest gap it and the searches before it
/// skipped: every free gap between `from` and `base` is at most
/// `largest_skipped` bytes, so a search for more may start at `from`
/// (as Linux's old `free_area_cache` and `cached_hole_size`). Without it,
/// one-page mmaps one after another searched past every earlier one: 65,528
/// of them took 38 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TopDownHint {
    pub base: VirtAddr,
    pub from: VirtAddr,
    pub largest_skipped: u64,
}

/// The vareas of an address space, by start address; never overlapping.
pub(crate) struct VareaMap<'e, E: MmEnv> {
    map: BTreeMap<VirtAddr, Varea<'e, E>>,
    /// Bytes the vareas cover, kept as they come and go.
    bytes: u64,
    /// Forgotten whenever a varea goes (a gap may open above `from`).
    top_down: Option<TopDownHint>,
}

impl<'e, E: MmEnv> VareaMap<'e, E> {
    pub fn new() -> Self {
        Self { map: BTreeMap::new(), bytes: 0, top_down: None }
    }

    /// Where a top-down search for a free area may start (see
    /// [`TopDownHint`]).
    pub fn top_down_hint(&self) -> Option<TopDownHint> {
        self.top_down
    }

    /// Records where a search placed the mapping just added.
    pub fn set_top_down_hint(&mut self, hint: TopDownHint) {
        self.top_down = Some(hint);
    }

    /// Bytes every varea covers together (Linux's `total_vm`).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Moves the end of the varea starting at `start` up to `end` (the
    /// range between must be free).
    pub fn grow(&mut self, start: VirtAddr, end: VirtAddr) {
        if let Some(v) = self.map.get_mut(&start).filter(|v| v.end_exclusive < end) {
            self.bytes += end - v.end_exclusive;
            v.end_exclusive = end;
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The varea holding `va`, with its start.
    pub fn find(&self, va: VirtAddr) -> Option<(VirtAddr, &Varea<'e, E>)> {
        self.map.range(..=va).next_back().filter(|(_, v)| v.end_exclusive > va).map(|(s, v)| (*s, v))
    }

    /// As [`Self::find`], mutable.
    pub fn find_mut(&mut self, va: VirtAddr) -> Option<(VirtAddr, &mut Varea<'e, E>)> {
        self.map.range_mut(..=va).next_back().filter(|(_, v)| v.end_exclusive > va).map(|(s, v)| (*s, v))
    }

    /// The vareas overlapping `range`, in address order, with their starts.
    pub fn overlapping(&self, range: VirtRange) -> impl Iterator<Item = (VirtAddr, &Varea<'e, E>)> + '_ {
        let first = self.find(range.start).map_or(range.start, |(s, _)| s);
        self.map
            .range(first..)
            .take_while(move |(s, _)| **s < range.end_exclusive)
            .filter(move |(_, v)| v.end_exclusive > range.start)
            .map(|(s, v)| (*s, v))
    }

    /// The vareas inside `range`, whose ends are varea boundaries
    /// ([`Self::isolate`]), in address order: one search.
    pub fn inside(&self, range: VirtRange) -> impl Iterator<Item = (VirtAddr, &Varea<'e, E>)> + '_ {
        self.map.range(range.start..range.end_exclusive).map(|(s, v)| (*s, v))
    }

    /// As [`Self::inside`], mutable: changes stay inside `range`.
    pub fn inside_mut(&mut self, range: VirtRange) -> impl Iterator<Item = (VirtAddr, &mut Varea<'e, E>)> + '_ {
        self.map.range_mut(range.start..range.end_exclusive).map(|(s, v)| (*s, v))
    }

    /// Whether any varea overlaps `range`.
    pub fn any_in(&self, range: VirtRange) -> bool {
        self.overlapping(range).next().is_some()
    }

    /// Whether vareas cover every page of `range`.
    pub fn covers(&self, range: VirtRange) -> bool {
        let mut at = range.start;
        for (start, v) in self.overlapping(range) {
            if start > at {
                return false;
            }
            at = v.end_exclusive;
        }
        at >= range.end_exclusive
    }

    /// How many new vareas splitting at both ends of `range` would create.
    pub fn splits_needed(&self, range: VirtRange) -> usize {
        [range.start, range.end_exclusive].iter().filter(|&&va| self.find(va).is_some_and(|(s, _)| s != va)).count()
    }

    /// Makes `va` a varea boundary, splitting the varea holding it.
    pub fn split_at(&mut self, va: VirtAddr) {
        let Some((start, _)) = self.find(va) else { return };
        if start == va {
            return;
        }
        if let Some(v) = self.map.get_mut(&start) {
            let upper = v.split_off(start, va);
            self.map.insert(va, upper);
        }
    }

    /// Makes both ends of `range` varea boundaries, splitting the vareas
    /// holding them; whether any varea overlaps `range`. The varea holding
    /// the range's last page is found with one search, and when it holds
    /// the first page too (a call inside one mapping, the common case) both
    /// splits come from it without another.
    pub fn isolate(&mut self, range: VirtRange) -> bool {
        let Some((&start, last)) = self.map.range_mut(..range.end_exclusive).next_back() else { return false };
        if last.end_exclusive <= range.start {
            return false;
        }
        let upper = (last.end_exclusive > range.end_exclusive).then(|| last.split_off(start, range.end_exclusive));
        let middle = (start < range.start).then(|| last.split_off(start, range.start));
        if let Some(upper) = upper {
            self.map.insert(range.end_exclusive, upper);
        }
        match middle {
            Some(middle) => {
                self.map.insert(range.start, middle);
            }
            None if start > range.start => self.split_at(range.start),
            None => {}
        }
        true
    }

    pub fn insert(&mut self, start: VirtAddr, varea: Varea<'e, E>) {
        self.bytes += varea.end_exclusive - start;
        if let Some(old) = self.map.insert(start, varea) {
            self.bytes -= old.end_exclusive - start;
        }
    }

    /// The free gap around `range` (whose ends are varea boundaries) once
    /// the vareas inside it are gone: from the end of the varea below it
    /// to the start of the one above (user space's ends where there is
    /// none).
    pub fn gap_around(&self, range: VirtRange) -> VirtRange {
        let low = self.map.range(..range.start).next_back().map_or(VirtAddr::new(0), |(_, v)| v.end_exclusive);
        let high = self.map.range(range.end_exclusive..).next().map_or(USER_END, |(s, _)| *s);
        VirtRange::new(low.min(range.start), high.max(range.end_exclusive))
    }

    /// Takes out every varea inside `range` (whose ends are varea
    /// boundaries: [`Self::isolate`]) and hands each to `removed`, in
    /// address order. The varea starting at the range's start (all of it,
    /// for an unmap of one mapping) goes with one search and builds
    /// nothing.
    pub fn remove_range(&mut self, range: VirtRange, mut removed: impl FnMut(VirtAddr, Varea<'e, E>)) {
        let mut rest = range.start;
        if let Some(first) = self.map.remove(&range.start) {
            rest = first.end_exclusive;
            self.bytes -= first.end_exclusive - range.start;
            self.top_down = None;
            removed(range.start, first);
        }
        if rest < range.end_exclusive {
            for (start, varea) in self.map.extract_if(rest..range.end_exclusive, |_, _| true) {
                self.bytes -= varea.end_exclusive - start;
                self.top_down = None;
                removed(start, varea);
            }
        }
    }

    /// Merges the varea ending at `va` with the one starting there when
    /// the second continues the first (one search when they do not, and
    /// one removal more when they do). Returns the start and end of the
    /// varea that starts below `va` afterwards (the merged one if they
    /// merged), if there is one: merge_in's next boundary, without a
    /// search of its own.
    pub fn merge_at(&mut self, va: VirtAddr) -> Option<(VirtAddr, VirtAddr)> {
        let mut near = self.map.range_mut(..=va).rev();
        let (&nearest_start, nearest) = near.next()?;
        if nearest_start != va {
            return Some((nearest_start, nearest.end_exclusive));
        }
        let (&start, before) = near.next()?;
        if before.end_exclusive != va || !before.continues_into(start, nearest) {
            return Some((start, before.end_exclusive));
        }
        before.end_exclusive = nearest.end_exclusive;
        // The larger count, not the sum: a split copied it to both
        // halves, and merging them back must give it back unchanged.
        before.wx_flips = before.wx_flips.max(nearest.wx_flips);
        let end = before.end_exclusive;
        self.map.remove(&va);
        Some((start, end))
    }

    /// mprotect's change of the part `range` (not empty) of the one varea
    /// holding all of it: `decide` sees that varea (with its start) and
    /// may stop there with a result; else the varea is split at the
    /// range's ends where they fall inside it, `change` gets the part
    /// (with its start) before the part is stored, and the part is merged
    /// with the varea on each side where it continues it. What
    /// [`Self::isolate`], a change of [`Self::inside_mut`] and
    /// [`Self::merge_in`] do, with one search: one walk down from the
    /// range's end finds the varea above the range, the one holding it and
    /// the one below, and the merges happen in place; then one insert per
    /// new piece and one removal per varea merged away. A piece that still
    /// continues the rest of its varea after the change is joined back
    /// before it is stored. `None` when no one varea holds `range`.
    pub fn change_inside_one<R>(
        &mut self,
        range: VirtRange,
        pause: &mut impl Pause,
        decide: impl FnOnce(VirtAddr, &Varea<'e, E>) -> ControlFlow<R>,
        change: impl FnOnce(VirtAddr, &mut Varea<'e, E>),
    ) -> Option<ControlFlow<R>> {
        let (low, high) = (range.start, range.end_exclusive);
        let mut near = self.map.range_mut(..=high).rev();
        let (mut start, mut varea) = near.next()?;
        let mut above = None;
        if *start == high {
            above = Some(varea);
            (start, varea) = near.next()?;
        }
        let start = *start;
        if start > low || varea.end_exclusive < high {
            return None;
        }
        if let ControlFlow::Break(result) = decide(start, varea) {
            return Some(ControlFlow::Break(result));
        }
        let below = if start == low { near.next().filter(|(_, v)| v.end_exclusive == low) } else { None };
        let mut upper = (varea.end_exclusive > high).then(|| varea.split_off(start, high));
        let mut middle = (start < low).then(|| varea.split_off(start, low));
        match middle.as_mut() {
            Some(part) => change(low, part),
            None => change(low, varea),
        }
        // Pieces the change left continuing the rest of their varea go
        // back into it; so does the varea above or below when the part
        // now continues it (only where a boundary was there before: a new
        // piece's neighbour is the rest of the part's own varea).
        if middle.as_ref().is_some_and(|part| varea.continues_into(start, part)) {
            varea.join(middle.take().as_ref());
        }
        let (part_start, part) = match middle.as_mut() {
            Some(part) => (low, part),
            None => (start, &mut *varea),
        };
        if upper.as_ref().is_some_and(|rest| part.continues_into(part_start, rest)) {
            part.join(upper.take().as_ref());
        }
        let above_goes = above.filter(|next| part.continues_into(part_start, next)).map(|next| part.join(Some(next)));
        let part_goes = match below {
            Some((below_start, before)) if middle.is_none() && before.continues_into(*below_start, varea) => {
                before.join(Some(varea));
                true
            }
            _ => false,
        };
        // Pieces of a varea in the map, or vareas joined into their
        // neighbours: the bytes covered stay the same.
        for (va, goes) in [(high, above_goes.is_some()), (low, part_goes)] {
            if goes {
                self.map.remove(&va);
                if pause.due() {
                    pause.pause();
                }
            }
        }
        if let Some(part) = middle {
            self.map.insert(low, part);
        }
        if let Some(rest) = upper {
            self.map.insert(high, rest);
        }
        Some(ControlFlow::Continue(()))
    }

    /// Merges across every boundary in `range`, its ends included, asking
    /// `pause` after each (a merge frees a map node: each can cost a
    /// thousand instructions in the kernel's heap, and mprotect over a
    /// range of many vareas merges them all). From the top down, so that
    /// the boundary below is the start of the varea just before the last
    /// one tried: nothing is collected first.
    pub fn merge_in(&mut self, range: VirtRange, pause: &mut impl Pause) {
        let mut at = range.end_exclusive;
        loop {
            let below = self.merge_at(at);
            if pause.due() {
                pause.pause();
            }
            if at <= range.start {
                return;
            }
            match below {
                Some((start, end)) if end > range.start => at = start,
                _ => return,
            }
        }
    }

    /// The vareas starting below `va`, in address order (reversible).
    pub fn starting_below(&self, va: VirtAddr) -> impl DoubleEndedIterator<Item = (VirtAddr, &Varea<'e, E>)> + '_ {
        self.map.range(..va).map(|(s, v)| (*s, v))
    }

    pub fn iter(&self) -> impl Iterator<Item = (VirtAddr, &Varea<'e, E>)> + '_ {
        self.map.iter().map(|(s, v)| (*s, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (VirtAddr, &mut Varea<'e, E>)> + '_ {
        self.map.iter_mut().map(|(s, v)| (*s, v))
    }

    /// A copy for a child after fork: the same vareas, none locked (Linux
    /// does not inherit mlock).
    pub fn clone_for_fork(&self) -> Self {
        let map = self.map.iter().map(|(s, v)| (*s, Varea { locked: false, ..v.clone() })).collect();
        Self { map, bytes: self.bytes, top_down: self.top_down }
    }

    /// Heap bytes a B-tree node of the map may take: an internal node
    /// (eleven keys and vareas, twelve edges, a header), rounded up to the
    /// heap's size class.
    const NODE_BYTES: usize =
        (32 + 11 * (core::mem::size_of::<VirtAddr>() + core::mem::size_of::<Varea<'e, E>>()) + 12 * 8)
            .next_power_of_two();

    /// A bound on the heap bytes one system call's changes to the map may
    /// allocate: a few inserts and splits (a node per level each), a
    /// `split_off` and `append` pair (`append` rebuilds the tree: a node
    /// per five vareas or fewer, nodes on each level), lists of starts, or a
    /// copy of the whole map for fork. What a caller preloads before it
    /// changes the map, so that no allocation fails half-way.
    pub fn change_heap_bound(&self) -> usize {
        let n = self.map.len();
        let height = (usize::BITS - n.leading_zeros()) as usize / 2 + 2;
        Self::NODE_BYTES * (n / 4 + 8 * height) + 16 * (n + 8)
    }

    pub fn clear(&mut self) -> BTreeMap<VirtAddr, Varea<'e, E>> {
        self.bytes = 0;
        self.top_down = None;
        core::mem::take(&mut self.map)
    }
}
