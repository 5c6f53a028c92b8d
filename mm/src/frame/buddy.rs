//! The buddy allocator over physical memory with per-frame metadata.
//!
//! The pool is a set of zones: the usable RAM ranges, shrunk to whole pages,
//! sorted, with overlapping or touching ranges merged. Blocks are runs of
//! `2^order` frames aligned to their size in *physical* address (so they
//! suit DMA), and never cross a zone boundary: a zone that starts or ends
//! unaligned is covered by smaller blocks, and buddies merge only inside
//! their zone, so holes between zones are never handed out.
//!
//! All bookkeeping lives in the `FrameMeta` array (flags, order, free-list
//! links as frame indices); the allocator never writes into free frames,
//! which keeps it usable before memory is mapped and testable on the host.
//!
//! # Placing the metadata
//! The array needs `metadata_bytes(ranges)` bytes (16 per frame, 0.4 % of
//! RAM). At boot there is no heap that large, so the kernel takes it from
//! the RAM being managed:
//!
//! ```text
//! let meta = BuddyAllocator::plan_metadata(&usable, linear_map_end)?;
//! let ptr = phys_to_virt(meta.start).as_mut_ptr::<FrameMeta>();
//! // SAFETY: `meta` is usable RAM, mapped at `ptr`, used for nothing else.
//! let frames = unsafe { BuddyAllocator::new_in_place(&usable, meta, ptr) }?;
//! ```
//!
//! `new_in_place` leaves `meta` out of the pool. `new` takes any storage the
//! caller already has; `new_owned` (host tests) puts it on the heap.

use core::mem::{size_of, MaybeUninit};
use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

use super::meta::{FrameFlags, FrameMeta, RefError, NO_FRAME};
use super::{AllocError, FrameAllocator};
use crate::addr::{PhysAddr, PhysRange, PAGE_SIZE};

/// The largest order: blocks of up to `2^10` frames (4 MiB).
pub const MAX_ORDER: u32 = 10;
/// Number of orders, `0..=MAX_ORDER`.
pub const ORDER_COUNT: usize = MAX_ORDER as usize + 1;
/// The most zones (disjoint RAM ranges after merging) the allocator keeps.
pub const MAX_ZONES: usize = 32;

/// Why the allocator could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// More than `MAX_ZONES` disjoint ranges after merging.
    TooManyZones,
    /// More frames than 32-bit frame indices can number.
    TooManyFrames,
    /// The metadata storage holds fewer entries than there are frames.
    MetadataTooSmall {
        /// Entries needed: one per frame of the pool.
        needed: usize,
        /// Entries the storage has.
        provided: usize,
    },
    /// No range has room for the metadata (below the requested limit).
    NoRoomForMetadata,
}

/// One zone: frames `start_pfn .. end_pfn_exclusive`, whose metadata starts at
/// `first_index` in the array.
#[derive(Clone, Copy, Debug, Default)]
struct Zone {
    start_pfn: u64,
    end_pfn_exclusive: u64,
    first_index: u32,
}

impl Zone {
    fn frames(&self) -> u64 {
        self.end_pfn_exclusive - self.start_pfn
    }

    fn index(&self, pfn: u64) -> u32 {
        self.first_index + (pfn - self.start_pfn) as u32
    }

    fn pfn(&self, index: u32) -> u64 {
        self.start_pfn + u64::from(index - self.first_index)
    }

    /// Whether the whole block `pfn .. pfn + 2^order` is inside the zone.
    fn holds(&self, pfn: u64, order: u32) -> bool {
        pfn >= self.start_pfn && pfn + (1 << order) <= self.end_pfn_exclusive
    }

    fn range(&self) -> PhysRange {
        PhysRange::new(PhysAddr::from_page_number(self.start_pfn), PhysAddr::from_page_number(self.end_pfn_exclusive))
    }
}

/// The zones, sorted by address, disjoint and not touching.
#[derive(Clone, Copy)]
struct Zones {
    zones: [Zone; MAX_ZONES],
    len: usize,
}

impl Zones {
    /// Page-aligned parts of `ranges`, minus the pages `exclude` touches.
    fn build(ranges: &[PhysRange], exclude: Option<PhysRange>) -> Result<Self, InitError> {
        let mut zones = Self { zones: [Zone::default(); MAX_ZONES], len: 0 };
        let (ex_start, ex_end) = match exclude.filter(|r| !r.is_empty()) {
            Some(r) => {
                let r = r.expand_to_pages();
                (r.start.page_number(), r.end_exclusive.page_number())
            }
            None => (u64::MAX, u64::MAX),
        };
        for range in ranges {
            let r = range.shrink_to_pages();
            let (start, end) = (r.start.page_number(), r.end_exclusive.page_number());
            zones.insert(start, end.min(ex_start))?;
            zones.insert(start.max(ex_end), end)?;
        }
        let mut next_index: u64 = 0;
        for zone in &mut zones.zones[..zones.len] {
            // NO_FRAME must stay out of the index space.
            if next_index + zone.frames() >= u64::from(NO_FRAME) {
                return Err(InitError::TooManyFrames);
            }
            zone.first_index = next_index as u32;
            next_index += zone.frames();
        }
        Ok(zones)
    }

    /// Adds frames `start .. end_exclusive`, merging with every zone they
    /// overlap or touch.
    fn insert(&mut self, mut start: u64, mut end_exclusive: u64) -> Result<(), InitError> {
        if start >= end_exclusive {
            return Ok(());
        }
        let mut i = 0;
        while i < self.len {
            let z = self.zones[i];
            if z.start_pfn <= end_exclusive && start <= z.end_pfn_exclusive {
                start = start.min(z.start_pfn);
                end_exclusive = end_exclusive.max(z.end_pfn_exclusive);
                self.zones.copy_within(i + 1..self.len, i);
                self.len -= 1;
            } else {
                i += 1;
            }
        }
        if self.len == MAX_ZONES {
            return Err(InitError::TooManyZones);
        }
        let pos = self.as_slice().partition_point(|z| z.start_pfn < start);
        self.zones.copy_within(pos..self.len, pos + 1);
        self.zones[pos] = Zone { start_pfn: start, end_pfn_exclusive: end_exclusive, first_index: 0 };
        self.len += 1;
        Ok(())
    }

    fn as_slice(&self) -> &[Zone] {
        &self.zones[..self.len]
    }

    fn total_frames(&self) -> usize {
        self.as_slice().iter().map(|z| z.frames() as usize).sum()
    }

    /// The zone holding frame `pfn`, with its position.
    fn find(&self, pfn: u64) -> Option<(usize, &Zone)> {
        let pos = self.as_slice().partition_point(|z| z.start_pfn <= pfn).checked_sub(1)?;
        let zone = &self.zones[pos];
        (pfn < zone.end_pfn_exclusive).then_some((pos, zone))
    }
}

/// Where the metadata array lives.
enum Storage<'a> {
    Borrowed(&'a [FrameMeta]),
    #[cfg(any(test, feature = "std"))]
    Owned(alloc::boxed::Box<[FrameMeta]>),
}

impl Storage<'_> {
    fn as_slice(&self) -> &[FrameMeta] {
        match self {
            Storage::Borrowed(s) => s,
            #[cfg(any(test, feature = "std"))]
            Storage::Owned(b) => b,
        }
    }
}

/// Single frames each CPU keeps out of the free lists, the last it freed,
/// to hand out again first (as Linux's per-CPU page lists): a fault that
/// takes a frame and an unmap that gives it back skip the buddy split and
/// merge and the shared lists' lock, and the frame is likely still in the
/// CPU's caches.
const HOT_FRAMES: usize = 32;

/// Frames a CPU's empty hot list takes from the lists under one lock.
const HOT_BATCH: usize = 16;

/// CPUs with a hot list of their own; a higher CPU index shares one.
pub const HOT_CPUS: usize = crate::asid::MAX_CPUS;

/// The free lists (per zone and order, heads are frame indices) and counts.
struct FreeLists {
    heads: [[u32; ORDER_COUNT]; MAX_ZONES],
    free_blocks: [usize; ORDER_COUNT],
    /// Free frames in the lists (the hot lists' are not counted here).
    free_frames: usize,
}

/// One CPU's hot frames, as (zone, frame index), the last freed at the
/// top: free (`FREE`, no `HEAD`: a buddy never merges with one), in no
/// list. Its lock is in a cache line of its own: only its CPU takes it,
/// but when a drain gathers every CPU's frames for a larger block or the
/// last free memory.
#[repr(align(64))]
struct HotList(Mutex<HotFrames>);

struct HotFrames {
    frames: [(u32, u32); HOT_FRAMES],
    len: usize,
}

impl HotFrames {
    /// Adds a frame; the caller checked there is room.
    fn push(&mut self, zi: u32, index: u32) {
        self.frames[self.len] = (zi, index);
        self.len += 1;
    }

    fn pop(&mut self) -> Option<(u32, u32)> {
        self.len = self.len.checked_sub(1)?;
        Some(self.frames[self.len])
    }
}

impl FreeLists {
    fn push(&mut self, meta: &[FrameMeta], zone: usize, order: u32, index: u32) {
        let head = self.heads[zone][order as usize];
        let m = &meta[index as usize];
        m.set_next(head);
        m.set_prev(NO_FRAME);
        if head != NO_FRAME {
            meta[head as usize].set_prev(index);
        }
        self.heads[zone][order as usize] = index;
        self.free_blocks[order as usize] += 1;
        self.free_frames += 1 << order;
    }

    fn remove(&mut self, meta: &[FrameMeta], zone: usize, order: u32, index: u32) {
        let m = &meta[index as usize];
        let (prev, next) = (m.prev(), m.next());
        if prev == NO_FRAME {
            self.heads[zone][order as usize] = next;
        } else {
            meta[prev as usize].set_next(next);
        }
        if next != NO_FRAME {
            meta[next as usize].set_prev(prev);
        }
        m.set_next(NO_FRAME);
        m.set_prev(NO_FRAME);
        self.free_blocks[order as usize] -= 1;
        self.free_frames -= 1 << order;
    }
}

/// A buddy allocator over several physical ranges. Allocation and free of
/// single frames take the calling CPU's hot list's lock (and the free
/// lists' when it is empty or full), of blocks the free lists' lock;
/// `meta` and the reference counts need no lock.
pub struct BuddyAllocator<'a> {
    zones: Zones,
    /// The zone [`Self::meta`] found last, tried before the search: most
    /// lookups land in the zone of the one before (the largest zone holds
    /// most frames). Only a hint, so Relaxed.
    zone_hint: AtomicUsize,
    meta: Storage<'a>,
    total_frames: usize,
    lists: Mutex<FreeLists>,
    hot: [HotList; HOT_CPUS],
    /// The calling CPU's index ([`Self::set_cpu_index`]): which hot list
    /// is its own. Only a hint: every hot list has its lock, so a caller
    /// that moved to another CPU meanwhile is still right, only slower.
    cpu_index: fn() -> usize,
    /// Frames that ordinary allocations leave free, for the kernel's own
    /// needs ([`Self::alloc_frames_reserved`]) when user memory has taken
    /// the rest (as Linux's `min_free_kbytes`).
    reserve: AtomicUsize,
    /// Host tests: checks run at every free (the machine model's "no TLB
    /// still leads here").
    #[cfg(feature = "testbed")]
    free_watchers: std::sync::Mutex<std::vec::Vec<FreeWatcher>>,
}

/// A check a host test runs at every free: the block's first frame and its
/// order. Dropped with its owner (a weak reference).
#[cfg(feature = "testbed")]
pub type FreeWatcher = std::sync::Weak<dyn Fn(PhysAddr, u32) + Send + Sync>;

impl<'a> BuddyAllocator<'a> {
    /// Bytes of `FrameMeta` storage needed to manage `ranges` (after
    /// shrinking them to pages and merging).
    pub fn metadata_bytes(ranges: &[PhysRange]) -> Result<usize, InitError> {
        Ok(Zones::build(ranges, None)?.total_frames() * size_of::<FrameMeta>())
    }

    /// A page-aligned range for the metadata, taken from the end of the
    /// highest range that has room for it below `limit_exclusive` (keeps low
    /// memory for DMA-limited devices; the limit is what the kernel has
    /// mapped). Sized for all of `ranges`, so it is enough for the rest.
    pub fn plan_metadata(ranges: &[PhysRange], limit_exclusive: PhysAddr) -> Result<PhysRange, InitError> {
        let zones = Zones::build(ranges, None)?;
        let bytes = (zones.total_frames() * size_of::<FrameMeta>()) as u64;
        let pages = bytes.div_ceil(PAGE_SIZE);
        let limit_pfn = limit_exclusive.page_number();
        zones
            .as_slice()
            .iter()
            .rev()
            .find_map(|z| {
                let end = z.end_pfn_exclusive.min(limit_pfn);
                (end >= z.start_pfn + pages)
                    .then(|| PhysRange::new(PhysAddr::from_page_number(end - pages), PhysAddr::from_page_number(end)))
            })
            .ok_or(InitError::NoRoomForMetadata)
    }

    /// Manages `ranges` (any alignment; shrunk to pages), with metadata in
    /// `storage`, which needs `metadata_bytes(ranges)` bytes.
    pub fn new(ranges: &[PhysRange], storage: &'a mut [MaybeUninit<FrameMeta>]) -> Result<Self, InitError> {
        let zones = Zones::build(ranges, None)?;
        Self::with_storage(zones, storage)
    }

    /// Manages `ranges` minus `meta_range`, and keeps the metadata in
    /// `meta_range` (typically from `plan_metadata`), seen at `meta_ptr`.
    ///
    /// # Safety
    /// `meta_ptr` must be aligned for `FrameMeta`, valid for reads and writes
    /// of `meta_range.size()` bytes for `'a`, and used by nothing else during
    /// `'a`. If `meta_range` is RAM in `ranges`, it must be the memory behind
    /// `meta_ptr` (it is left out of the pool either way).
    pub unsafe fn new_in_place(
        ranges: &[PhysRange],
        meta_range: PhysRange,
        meta_ptr: *mut FrameMeta,
    ) -> Result<Self, InitError> {
        let zones = Zones::build(ranges, Some(meta_range))?;
        let len = meta_range.size() as usize / size_of::<FrameMeta>();
        // SAFETY: the caller guarantees the pointer is aligned, valid and
        // exclusively ours for `'a` over `meta_range.size()` bytes; the
        // entries are treated as uninitialised until written.
        let storage = unsafe { core::slice::from_raw_parts_mut(meta_ptr.cast::<MaybeUninit<FrameMeta>>(), len) };
        Self::with_storage(zones, storage)
    }

    fn with_storage(zones: Zones, storage: &'a mut [MaybeUninit<FrameMeta>]) -> Result<Self, InitError> {
        let needed = zones.total_frames();
        if storage.len() < needed {
            return Err(InitError::MetadataTooSmall { needed, provided: storage.len() });
        }
        let storage = &mut storage[..needed];
        for slot in storage.iter_mut() {
            slot.write(FrameMeta::new());
        }
        // SAFETY: every entry was just initialised; `MaybeUninit<T>` has the
        // layout of `T`; the `&'a mut` is consumed, so this is the only view.
        let meta = unsafe { core::slice::from_raw_parts(storage.as_ptr().cast::<FrameMeta>(), needed) };
        Ok(Self::from_parts(zones, Storage::Borrowed(meta)))
    }

    /// Builds the free lists: each zone is covered by the largest aligned
    /// blocks that fit, lowest address first.
    fn from_parts(zones: Zones, meta: Storage<'a>) -> Self {
        let mut lists =
            FreeLists { heads: [[NO_FRAME; ORDER_COUNT]; MAX_ZONES], free_blocks: [0; ORDER_COUNT], free_frames: 0 };
        let slice = meta.as_slice();
        for (zi, zone) in zones.as_slice().iter().enumerate() {
            let mut pfn = zone.start_pfn;
            while pfn < zone.end_pfn_exclusive {
                let align_order = if pfn == 0 { MAX_ORDER } else { pfn.trailing_zeros().min(MAX_ORDER) };
                let order = (0..=align_order).rev().find(|&o| zone.holds(pfn, o)).unwrap_or(0);
                let index = zone.index(pfn);
                slice[index as usize].set_block(FrameFlags::FREE | FrameFlags::HEAD, order);
                lists.push(slice, zi, order, index);
                pfn += 1 << order;
            }
        }
        let total_frames = zones.total_frames();
        Self {
            zones,
            zone_hint: AtomicUsize::new(0),
            meta,
            total_frames,
            lists: Mutex::new(lists),
            hot: [const { HotList(Mutex::new(HotFrames { frames: [(0, 0); HOT_FRAMES], len: 0 })) }; HOT_CPUS],
            cpu_index: || 0,
            reserve: AtomicUsize::new(0),
            #[cfg(feature = "testbed")]
            free_watchers: std::sync::Mutex::new(std::vec::Vec::new()),
        }
    }

    /// Tells the allocator how to find the calling CPU's index (the
    /// kernel's `MPIDR_EL1` affinity); until then every CPU uses the first
    /// hot list.
    pub fn set_cpu_index(&mut self, cpu_index: fn() -> usize) {
        self.cpu_index = cpu_index;
    }

    /// The calling CPU's hot list.
    #[inline(always)]
    fn hot_list(&self) -> &Mutex<HotFrames> {
        &self.hot[(self.cpu_index)() % HOT_CPUS].0
    }

    /// Host tests: runs `watcher` at every free from now on (before the
    /// block goes back to the lists), while it lives.
    #[cfg(feature = "testbed")]
    pub fn watch_frees(&self, watcher: FreeWatcher) {
        self.free_watchers.lock().unwrap_or_else(|p| p.into_inner()).push(watcher);
    }

    /// Runs the host tests' checks on the block `start, order` about to
    /// be freed.
    #[cfg(feature = "testbed")]
    fn watch_free(&self, start: PhysAddr, order: u32) {
        let watchers: std::vec::Vec<_> = {
            let mut list = self.free_watchers.lock().unwrap_or_else(|p| p.into_inner());
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(std::sync::Weak::upgrade).collect()
        };
        for watcher in watchers {
            watcher(start, order);
        }
    }

    #[inline]
    fn metas(&self) -> &[FrameMeta] {
        self.meta.as_slice()
    }

    /// The metadata of the frame holding `pa`; `None` outside the pool.
    #[inline]
    pub fn meta(&self, pa: PhysAddr) -> Option<&FrameMeta> {
        let pfn = pa.page_number();
        let zones = self.zones.as_slice();
        let zone = match zones.get(self.zone_hint.load(Ordering::Relaxed)) {
            Some(zone) if zone.start_pfn <= pfn && pfn < zone.end_pfn_exclusive => zone,
            _ => {
                let (pos, zone) = self.zones.find(pfn)?;
                self.zone_hint.store(pos, Ordering::Relaxed);
                zone
            }
        };
        self.metas().get(zone.index(pfn) as usize)
    }

    /// The reference count of the frame holding `pa`.
    pub fn refcount(&self, pa: PhysAddr) -> Result<u32, RefError> {
        Ok(self.meta(pa).ok_or(RefError::NotManaged)?.refcount())
    }

    /// Takes a reference to the frame holding `pa`; returns the new count.
    pub fn inc_ref(&self, pa: PhysAddr) -> Result<u32, RefError> {
        self.meta(pa).ok_or(RefError::NotManaged)?.inc_ref()
    }

    /// Takes one more reference to the frame holding `pa` for a holder of
    /// one ([`FrameMeta::dup_ref`]).
    #[inline]
    pub fn dup_ref(&self, pa: PhysAddr) -> Result<(), RefError> {
        self.meta(pa).ok_or(RefError::NotManaged)?.dup_ref()
    }

    /// Drops a reference to the frame holding `pa`; returns the new count
    /// (at 0 the caller frees the frame).
    #[inline]
    pub fn dec_ref(&self, pa: PhysAddr) -> Result<u32, RefError> {
        self.meta(pa).ok_or(RefError::NotManaged)?.dec_ref()
    }

    /// Frames in the pool.
    pub fn total_frame_count(&self) -> usize {
        self.total_frames
    }

    /// Frames currently free, in the lists and the hot lists.
    pub fn free_frame_count(&self) -> usize {
        let hot: usize = self.hot.iter().map(|list| list.0.lock().len).sum();
        hot + self.lists.lock().free_frames
    }

    /// Number of free blocks of each order. The hot single frames are
    /// merged back into the lists first, so the figures say what larger
    /// blocks the pool can hand out.
    pub fn free_blocks_per_order(&self) -> [usize; ORDER_COUNT] {
        self.drain_hot();
        self.lists.lock().free_blocks
    }

    /// The zones, in address order.
    pub fn zones(&self) -> impl Iterator<Item = PhysRange> + '_ {
        self.zones.as_slice().iter().map(Zone::range)
    }

    /// Like `alloc_frames`, but the whole run lies below `limit_exclusive`
    /// (for devices that reach only low memory). Slower when the run must
    /// come from a zone that straddles the limit (its free lists are
    /// searched).
    pub fn alloc_frames_below(&self, order: u32, limit_exclusive: PhysAddr) -> Result<PhysAddr, AllocError> {
        self.alloc_limited(order, limit_exclusive.page_number())
    }

    /// Takes a block of `order` whose frames all lie below `limit_pfn`,
    /// preferring the highest zones.
    #[inline]
    fn alloc_limited(&self, order: u32, limit_pfn: u64) -> Result<PhysAddr, AllocError> {
        self.alloc_from(order, limit_pfn, self.reserve.load(Ordering::Relaxed))
    }

    /// Keeps `frames` frames free in the lists for
    /// [`Self::alloc_frames_reserved`]: other allocations fail with
    /// `OutOfMemory` rather than take them (the hot lists' few frames are
    /// over and above the reserve).
    pub fn set_reserve(&self, frames: usize) {
        self.reserve.store(frames, Ordering::Relaxed);
    }

    /// Frames kept back for [`Self::alloc_frames_reserved`].
    pub fn reserved_frame_count(&self) -> usize {
        self.reserve.load(Ordering::Relaxed)
    }

    /// Allocates like `alloc_frames`, but may use the reserve: for the
    /// kernel's own memory (its heap), so that user memory running out does
    /// not leave the kernel without.
    pub fn alloc_frames_reserved(&self, order: u32) -> Result<PhysAddr, AllocError> {
        self.alloc_from(order, u64::MAX, 0)
    }

    /// Allocates `2^order` contiguous frames that are each a block of
    /// their own (reference count 1, order 0), as if by `2^order` calls of
    /// `alloc_frame`: each is given back alone, by `free_frame` or a
    /// reference drop. For populating many pages with one allocation.
    pub fn alloc_run(&self, order: u32) -> Result<PhysAddr, AllocError> {
        let start = self.alloc_limited(order, u64::MAX)?;
        let pfn = start.page_number();
        // A block handed out lies in a zone. Ours alone: no lock needed to
        // split it (a buddy merges only with a free head).
        if let Some((_, zone)) = self.zones.find(pfn) {
            let first = zone.index(pfn) as usize;
            for m in &self.metas()[first..first + (1 << order)] {
                m.set_block(FrameFlags::HEAD, 0);
            }
        }
        Ok(start)
    }

    /// Frees `count` contiguous single frames from `start`, each handed out
    /// alone (`alloc_frame`, `alloc_run`) and unreferenced now, under one
    /// lock: the run is put into the lists as the largest aligned blocks it
    /// holds, merged with their buddies, instead of frame by frame. A run
    /// that fails `free_frame`'s checks anywhere (a double free, a frame
    /// still referenced, outside one zone) is freed frame by frame, so
    /// that each bad frame is logged and skipped as there.
    pub fn free_run(&self, start: PhysAddr, count: usize) {
        let pfn = start.page_number();
        let zone = self.zones.find(pfn).filter(|(_, z)| {
            start.is_page_aligned() && count > 0 && z.holds(pfn, 0) && pfn + count as u64 <= z.end_pfn_exclusive
        });
        let Some((zi, zone)) = zone.map(|(zi, z)| (zi, *z)) else {
            return self.free_one_by_one(start, count);
        };
        let meta = self.metas();
        let first = zone.index(pfn) as usize;
        let mut lists = self.lists.lock();
        // Checked under the lock, as a block's free is; single frames are
        // freed with no lock, and claimed below.
        let sound = meta[first..first + count].iter().all(|m| {
            let flags = m.flags();
            !flags.contains(FrameFlags::FREE)
                && flags.contains(FrameFlags::HEAD)
                && m.raw_order() == 0
                && m.refcount() <= 1
        });
        if !sound {
            drop(lists);
            return self.free_one_by_one(start, count);
        }
        // Claimed frame by frame: a single frame's free takes no lock, so
        // a racing (double) free of one of them shows only here. Those
        // before it go back alone, those after it through `free_frame`.
        if let Some(lost) = meta[first..first + count].iter().position(|m| !m.claim_free()) {
            for (i, m) in meta[first..first + lost].iter().enumerate() {
                m.set_refcount(0);
                self.merge_in(&mut lists, zi, &zone, pfn + i as u64, 0);
            }
            drop(lists);
            log::error!("frame free: double free of {:?}", start + lost as u64 * PAGE_SIZE);
            return self.free_one_by_one(start + (lost as u64 + 1) * PAGE_SIZE, count - lost - 1);
        }
        for m in &meta[first..first + count] {
            m.set_refcount(0);
        }
        let (mut at, end) = (pfn, pfn + count as u64);
        while at < end {
            // The largest block aligned at `at` that fits in the rest.
            let order = at.trailing_zeros().min((end - at).ilog2()).min(MAX_ORDER);
            #[cfg(feature = "testbed")]
            self.watch_free(PhysAddr::from_page_number(at), order);
            self.merge_in(&mut lists, zi, &zone, at, order);
            at += 1 << order;
        }
    }

    /// `free_run`'s way out for a run that failed its checks.
    #[cold]
    fn free_one_by_one(&self, start: PhysAddr, count: usize) {
        for i in 0..count as u64 {
            self.free_frame(start + i * PAGE_SIZE);
        }
    }

    #[inline]
    fn alloc_from(&self, order: u32, limit_pfn: u64, keep_free: usize) -> Result<PhysAddr, AllocError> {
        if order > MAX_ORDER {
            return Err(AllocError::OrderTooLarge);
        }
        let found = if order == 0 && limit_pfn == u64::MAX {
            self.alloc_single(keep_free)
        } else {
            self.alloc_listed(order, limit_pfn, keep_free)
        };
        match found {
            Some(block) => Ok(block),
            None => self.alloc_drained(order, limit_pfn, keep_free),
        }
    }

    /// `alloc_from` once the lists and the CPU's hot list lack the block:
    /// every CPU's hot frames may be what a larger block, or the last free
    /// memory, lacks. Back into the lists with them, and once more.
    #[cold]
    #[inline(never)]
    fn alloc_drained(&self, order: u32, limit_pfn: u64, keep_free: usize) -> Result<PhysAddr, AllocError> {
        self.drain_hot();
        self.alloc_listed(order, limit_pfn, keep_free).ok_or(AllocError::OutOfMemory)
    }

    /// A block from the lists, leaving `keep_free` frames in them.
    fn alloc_listed(&self, order: u32, limit_pfn: u64, keep_free: usize) -> Option<PhysAddr> {
        let mut lists = self.lists.lock();
        if lists.free_frames < keep_free.saturating_add(1 << order) {
            return None;
        }
        let (zi, index) = self.take_block(&mut lists, order, limit_pfn)?;
        drop(lists);
        Some(self.hand_out(zi, index, order))
    }

    /// A single frame from the calling CPU's hot list, refilled from the
    /// lists when empty.
    #[inline(always)]
    fn alloc_single(&self, keep_free: usize) -> Option<PhysAddr> {
        let mut hot = self.hot_list().lock();
        if hot.len == 0 {
            self.refill(&mut hot, keep_free);
        }
        let (zi, index) = hot.pop()?;
        let frame = self.hand_out(zi as usize, index, 0);
        drop(hot);
        Some(frame)
    }

    /// Fills an empty hot list from the lists (as far as they hold more
    /// than `keep_free`): one block of [`HOT_BATCH`] frames where there is
    /// one, split so that they come out in address order (a fault's
    /// neighbours get neighbouring frames, which an unmap gives back as
    /// one run); else single frames.
    #[inline(never)]
    fn refill(&self, hot: &mut HotFrames, keep_free: usize) {
        let meta = self.metas();
        let mut lists = self.lists.lock();
        let room = lists.free_frames.saturating_sub(keep_free);
        if room >= HOT_BATCH {
            if let Some((zi, first)) = self.take_block(&mut lists, HOT_BATCH.ilog2(), u64::MAX) {
                drop(lists);
                for index in (first..first + HOT_BATCH as u32).rev() {
                    meta[index as usize].set_block(FrameFlags::FREE, 0);
                    hot.push(zi as u32, index);
                }
                return;
            }
        }
        for _ in 0..room.min(HOT_BATCH) {
            let Some((zi, index)) = self.take_block(&mut lists, 0, u64::MAX) else { break };
            meta[index as usize].set_block(FrameFlags::FREE, 0);
            hot.push(zi as u32, index);
        }
    }

    /// Marks the free block `index` of zone `zi`, out of every list now,
    /// as handed out: referenced once, its head the only `HEAD`.
    #[inline(always)]
    fn hand_out(&self, zi: usize, index: u32, order: u32) -> PhysAddr {
        let meta = self.metas();
        for m in &meta[index as usize..(index + (1 << order)) as usize] {
            m.set_refcount(1);
            m.set_flags(FrameFlags::empty());
        }
        meta[index as usize].set_block(FrameFlags::HEAD, order);
        PhysAddr::from_page_number(self.zones.as_slice()[zi].pfn(index))
    }

    /// Takes a block of `order` below `limit_pfn` from the lists (split
    /// from a larger one if need be): its zone and first frame's index,
    /// its metadata still saying free.
    #[inline(always)]
    fn take_block(&self, lists: &mut FreeLists, order: u32, limit_pfn: u64) -> Option<(usize, u32)> {
        let meta = self.metas();
        for (zi, zone) in self.zones.as_slice().iter().enumerate().rev() {
            if zone.start_pfn + (1 << order) > limit_pfn {
                continue;
            }
            for j in order..=MAX_ORDER {
                // Unlimited, the head fits; only a zone straddling the
                // limit needs the walk.
                let mut index = lists.heads[zi][j as usize];
                while index != NO_FRAME && zone.pfn(index) + (1 << order) > limit_pfn {
                    index = meta[index as usize].next();
                }
                if index == NO_FRAME {
                    continue;
                }
                lists.remove(meta, zi, j, index);
                // Keep the low half, free the high halves.
                for half in (order..j).rev() {
                    let upper = index + (1 << half);
                    meta[upper as usize].set_block(FrameFlags::FREE | FrameFlags::HEAD, half);
                    lists.push(meta, zi, half, upper);
                }
                return Some((zi, index));
            }
        }
        None
    }

    /// Puts every CPU's hot frames back into the lists, merged with their
    /// buddies (each hot list's lock before the lists', as everywhere).
    fn drain_hot(&self) {
        for list in &self.hot {
            let mut hot = list.0.lock();
            if hot.len == 0 {
                continue;
            }
            let mut lists = self.lists.lock();
            while let Some((zi, index)) = hot.pop() {
                let zone = self.zones.as_slice()[zi as usize];
                self.merge_in(&mut lists, zi as usize, &zone, zone.pfn(index), 0);
            }
        }
    }

    /// Puts the free block `pfn, order` of zone `zi` into the lists,
    /// merged with its free buddies.
    #[inline(always)]
    fn merge_in(&self, lists: &mut FreeLists, zi: usize, zone: &Zone, mut pfn: u64, mut order: u32) {
        let meta = self.metas();
        while order < MAX_ORDER {
            let buddy = pfn ^ (1 << order);
            if !zone.holds(buddy, order) {
                break;
            }
            let bm = &meta[zone.index(buddy) as usize];
            if !bm.flags().contains(FrameFlags::FREE | FrameFlags::HEAD) || bm.raw_order() != order {
                break;
            }
            lists.remove(meta, zi, order, zone.index(buddy));
            meta[zone.index(pfn.max(buddy)) as usize].set_flags(FrameFlags::FREE);
            pfn = pfn.min(buddy);
            order += 1;
        }
        meta[zone.index(pfn) as usize].set_block(FrameFlags::FREE | FrameFlags::HEAD, order);
        lists.push(meta, zi, order, zone.index(pfn));
    }

    /// Checks that `start, order` names a block `alloc_frames` handed out and
    /// nobody else references; logs and returns `None` otherwise.
    fn check_free(&self, start: PhysAddr, order: u32) -> Option<(usize, Zone)> {
        if order > MAX_ORDER || !start.is_page_aligned() {
            log::error!("frame free: bad block {start:?} order {order}");
            return None;
        }
        let pfn = start.page_number();
        let Some((zi, zone)) = self.zones.find(pfn).filter(|(_, z)| z.holds(pfn, order)) else {
            log::error!("frame free: {start:?} order {order} is not in the pool");
            return None;
        };
        let first = zone.index(pfn) as usize;
        let head = &self.metas()[first];
        let flags = head.flags();
        if flags.contains(FrameFlags::FREE) {
            log::error!("frame free: double free of {start:?}");
            return None;
        }
        if !flags.contains(FrameFlags::HEAD) || head.raw_order() != order {
            log::error!("frame free: {start:?} is not an allocated block of order {order} ({head:?})");
            return None;
        }
        if let Some(busy) = self.metas()[first..first + (1 << order)].iter().find(|m| m.refcount() > 1) {
            log::error!("frame free: block {start:?} still referenced ({busy:?}); leaked");
            return None;
        }
        Some((zi, *zone))
    }
}

#[cfg(any(test, feature = "std"))]
impl BuddyAllocator<'static> {
    /// Manages `ranges` with the metadata on the heap (host tests).
    pub fn new_owned(ranges: &[PhysRange]) -> Result<Self, InitError> {
        let zones = Zones::build(ranges, None)?;
        let meta: alloc::boxed::Box<[FrameMeta]> = (0..zones.total_frames()).map(|_| FrameMeta::new()).collect();
        let mut frames = Self::from_parts(zones, Storage::Owned(meta));
        frames.set_cpu_index(host_cpu_index);
        Ok(frames)
    }
}

/// Host tests: each thread is a CPU of its own (by turns over the hot
/// lists), so that threads that free and allocate at once use several.
#[cfg(any(test, feature = "std"))]
fn host_cpu_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local! {
        static CPU: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    CPU.with(|cpu| *cpu)
}

/// Reference counting over many frames in a row (fork, teardown, unmap):
/// keeps the zone of the last frame, so that the next one in the same zone
/// is found with one comparison instead of a lookup, and gathers the
/// frames whose last reference it drops into runs of consecutive frames,
/// given back with one [`BuddyAllocator::free_run`] each (a populated
/// range's frames come in runs). Dropping it frees what it still gathers.
pub struct RefCursor<'b, 'a> {
    frames: &'b BuddyAllocator<'a>,
    zone: Zone,
    /// The gathered run: `run_len` frames from `run_start`, unreferenced.
    run_start: PhysAddr,
    run_len: usize,
}

/// The longest run a [`RefCursor`] gathers. Freeing a run costs a few
/// stores per frame and a merge per aligned block in it (64 frames about
/// 1,500 instructions, as much as freeing 5 frames one by one), so a pass
/// that pauses every [`RELEASE_SPACING`](crate::paging::RELEASE_SPACING)
/// releases may free one such run between two pauses.
pub const RUN_MAX: usize = 64;

/// Runs shorter than this are freed frame by frame, into the allocator's
/// hot frames (the next faults take them back without a split).
const RUN_MIN: usize = 8;

impl<'b, 'a> RefCursor<'b, 'a> {
    /// A cursor over `frames`, with no zone remembered yet.
    pub fn new(frames: &'b BuddyAllocator<'a>) -> Self {
        Self { frames, zone: Zone::default(), run_start: PhysAddr::new(0), run_len: 0 }
    }

    #[inline(always)]
    fn meta(&mut self, pa: PhysAddr) -> Option<&'b FrameMeta> {
        let pfn = pa.page_number();
        if pfn.wrapping_sub(self.zone.start_pfn) >= self.zone.frames() {
            self.zone = *self.frames.zones.find(pfn)?.1;
        }
        self.frames.metas().get(self.zone.index(pfn) as usize)
    }

    /// [`BuddyAllocator::dup_ref`].
    #[inline(always)]
    pub fn dup_ref(&mut self, pa: PhysAddr) -> Result<(), RefError> {
        self.meta(pa).ok_or(RefError::NotManaged)?.dup_ref()
    }

    /// Drops a reference to the frame holding `pa` and frees the frame
    /// with the last one, as `put_frame` does (at the latest when the
    /// cursor is dropped); logs a refused drop.
    #[inline(always)]
    pub fn put(&mut self, pa: PhysAddr) {
        match self.meta(pa).ok_or(RefError::NotManaged).and_then(FrameMeta::put_ref) {
            Ok(true) => self.gather(pa),
            Ok(false) => {}
            Err(e) => refused_put(pa, e),
        }
    }

    /// Adds the unreferenced frame `frame` to the run, or frees the run
    /// and starts another with it.
    #[inline(always)]
    fn gather(&mut self, frame: PhysAddr) {
        let next = self.run_start.as_u64() + (self.run_len as u64) * PAGE_SIZE;
        if self.run_len > 0 && frame.as_u64() == next && self.run_len < RUN_MAX {
            self.run_len += 1;
            return;
        }
        self.free_gathered();
        self.run_start = frame;
        self.run_len = 1;
    }

    /// Frees the gathered run.
    fn free_gathered(&mut self) {
        match self.run_len {
            0 => {}
            n if n < RUN_MIN => {
                for i in 0..n as u64 {
                    self.frames.free_frame(self.run_start + i * PAGE_SIZE);
                }
            }
            n => self.frames.free_run(self.run_start, n),
        }
        self.run_len = 0;
    }
}

impl Drop for RefCursor<'_, '_> {
    fn drop(&mut self) {
        self.free_gathered();
    }
}

/// Logs a reference drop that was refused (out of line: it never happens
/// unless something is broken).
#[cold]
#[inline(never)]
fn refused_put(pa: PhysAddr, e: RefError) {
    log::error!("mm: dropping a reference to {pa:?}: {e:?}");
}

impl FrameAllocator for BuddyAllocator<'_> {
    #[inline]
    fn alloc_frames(&self, order: u32) -> Result<PhysAddr, AllocError> {
        self.alloc_limited(order, u64::MAX)
    }

    /// Frees a block. A double free, a block not handed out with this order,
    /// an address outside the pool, or a frame still referenced by someone
    /// else (count above 1) is logged and ignored (at worst a leak). Free a
    /// shared frame only after `dec_ref` returned 0; free at count 1 only a
    /// frame nobody else can reach (a table page), as an `inc_ref` racing
    /// with the free would not be seen.
    fn free_frames(&self, start: PhysAddr, order: u32) {
        #[cfg(feature = "testbed")]
        self.watch_free(start, order);
        if order == 0 {
            return self.free_single(start);
        }
        let meta = self.metas();
        let mut lists = self.lists.lock();
        // Checked under the lock so two racing frees of one block cannot
        // both pass.
        let Some((zi, zone)) = self.check_free(start, order) else {
            return;
        };
        let pfn = start.page_number();
        let first = zone.index(pfn) as usize;
        for m in &meta[first..first + (1 << order)] {
            m.set_refcount(0);
            m.set_flags(FrameFlags::FREE);
        }
        self.merge_in(&mut lists, zi, &zone, pfn, order);
    }
}

impl BuddyAllocator<'_> {
    /// `free_frames` of one frame: into the calling CPU's hot list, or
    /// the lists when that is full. The frame is claimed free by one
    /// compare-and-swap of its flags, so that two racing frees of it
    /// cannot both pass with no lock held.
    #[inline(always)]
    fn free_single(&self, start: PhysAddr) {
        let pfn = start.page_number();
        let found = self.zones.find(pfn).filter(|_| start.is_page_aligned());
        let Some((zi, zone)) = found.map(|(zi, zone)| (zi, *zone)) else {
            return self.refuse_free(start);
        };
        let index = zone.index(pfn);
        let m = &self.metas()[index as usize];
        if m.refcount() > 1 || m.raw_order() != 0 || !m.claim_free() {
            return self.refuse_free(start);
        }
        m.set_refcount(0);
        let mut hot = self.hot_list().lock();
        if hot.len < HOT_FRAMES {
            hot.push(zi as u32, index);
            return;
        }
        drop(hot);
        self.merge_in(&mut self.lists.lock(), zi, &zone, pfn, 0);
    }

    /// A single frame's free that failed its checks: `check_free` logs why
    /// (a frame a racing free claimed first is a double free).
    #[cold]
    #[inline(never)]
    fn refuse_free(&self, start: PhysAddr) {
        if self.check_free(start, 0).is_some() {
            log::error!("frame free: double free of {start:?}");
        }
    }
}

impl core::fmt::Debug for Zones {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice().iter().map(Zone::range)).finish()
    }
}

impl core::fmt::Debug for BuddyAllocator<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BuddyAllocator")
            .field("zones", &self.zones)
            .field("total_frames", &self.total_frames)
            .field("free_frames", &self.free_frame_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn pa(raw: u64) -> PhysAddr {
        PhysAddr::new(raw)
    }

    fn range(start: u64, end_exclusive: u64) -> PhysRange {
        PhysRange::new(pa(start), pa(end_exclusive))
    }

    const MIB: u64 = 1 << 20;

    /// Walks every free list and checks it against the metadata and the
    /// counters: links consistent, blocks aligned and inside their zone,
    /// flags set exactly on free frames, no two free buddies left unmerged.
    fn check_invariants(a: &BuddyAllocator<'_>) {
        let meta = a.metas();
        let hot: Vec<_> = a
            .hot
            .iter()
            .flat_map(|list| {
                let list = list.0.lock();
                list.frames[..list.len].to_vec()
            })
            .collect();
        let lists = a.lists.lock();
        let mut free_in_lists = 0;
        let mut blocks = [0usize; ORDER_COUNT];
        let mut free_mark = alloc::vec![false; meta.len()];
        for (zi, zone) in a.zones.as_slice().iter().enumerate() {
            for order in 0..=MAX_ORDER {
                let mut prev = NO_FRAME;
                let mut index = lists.heads[zi][order as usize];
                while index != NO_FRAME {
                    let m = &meta[index as usize];
                    assert_eq!(m.prev(), prev);
                    assert_eq!(m.flags(), FrameFlags::FREE | FrameFlags::HEAD);
                    assert_eq!(m.raw_order(), order);
                    let pfn = zone.pfn(index);
                    assert_eq!(pfn % (1 << order), 0, "block not aligned");
                    assert!(zone.holds(pfn, order), "block leaves its zone");
                    if order < MAX_ORDER {
                        let buddy = pfn ^ (1 << order);
                        if zone.holds(buddy, order) {
                            let bm = &meta[zone.index(buddy) as usize];
                            assert!(
                                !(bm.flags().contains(FrameFlags::HEAD | FrameFlags::FREE) && bm.raw_order() == order),
                                "free buddies not merged"
                            );
                        }
                    }
                    for i in index..index + (1 << order) {
                        assert!(!free_mark[i as usize], "frame in two free blocks");
                        free_mark[i as usize] = true;
                        assert_eq!(meta[i as usize].refcount(), 0);
                    }
                    free_in_lists += 1 << order;
                    blocks[order as usize] += 1;
                    prev = index;
                    index = m.next();
                }
            }
        }
        // Hot frames: free, in no list, not block heads (never merged).
        for &(zi, index) in &hot {
            let m = &meta[index as usize];
            assert!((zi as usize) < a.zones.as_slice().len());
            assert_eq!(m.flags(), FrameFlags::FREE, "hot frame {index}");
            assert_eq!(m.refcount(), 0);
            assert!(!free_mark[index as usize], "hot frame also in a free block");
            free_mark[index as usize] = true;
        }
        for (m, &free) in meta.iter().zip(&free_mark) {
            assert_eq!(m.is_free(), free, "FREE flag disagrees with the lists");
        }
        // Inside free blocks, only the listed heads carry HEAD.
        let listed_heads = meta.iter().filter(|m| m.flags() == FrameFlags::FREE | FrameFlags::HEAD).count();
        assert_eq!(listed_heads, blocks.iter().sum::<usize>(), "stale HEAD inside a free block");
        assert_eq!(free_in_lists, lists.free_frames);
        assert_eq!(blocks, lists.free_blocks);
    }

    fn pi4_ranges() -> [PhysRange; 3] {
        [range(0, 0x3b40_0000), range(0x4000_0000, 0xfc00_0000), range(0x1_0000_0000, 0x2_0000_0000)]
    }

    #[test]
    fn shrinks_unaligned_ranges_to_pages() {
        let a = BuddyAllocator::new_owned(&[range(0x1001, 0x9fff)]).unwrap();
        assert_eq!(a.total_frame_count(), 7);
        assert_eq!(a.zones().collect::<Vec<_>>(), [range(0x2000, 0x9000)][..].to_vec());
        // 0x2000 (order 1: 0x2000..0x4000), 0x4000 (order 2), 0x8000 (order 0).
        assert_eq!(a.free_blocks_per_order()[..3], [1, 1, 1]);
        check_invariants(&a);
    }

    #[test]
    fn merges_overlapping_and_touching_ranges_and_sorts() {
        let a = BuddyAllocator::new_owned(&[
            range(0x10_0000, 0x20_0000),
            range(0x0, 0x8000),
            range(0x8000, 0x1_0000),
            range(0x18_0000, 0x30_0000),
            range(0x40_0000, 0x40_0000),
        ])
        .unwrap();
        assert_eq!(a.zones().collect::<Vec<_>>(), [range(0, 0x1_0000), range(0x10_0000, 0x30_0000)][..].to_vec());
        check_invariants(&a);
    }

    #[test]
    fn too_many_zones() {
        let ranges: Vec<_> = (0..=MAX_ZONES as u64).map(|i| range(i * 0x10_0000, i * 0x10_0000 + 0x1000)).collect();
        assert_eq!(BuddyAllocator::metadata_bytes(&ranges), Err(InitError::TooManyZones));
        assert!(BuddyAllocator::new_owned(&ranges[..MAX_ZONES]).is_ok());
    }

    #[test]
    fn pi4_layout() {
        let ranges = pi4_ranges();
        let frames = (0x3b40_0000 + (0xfc00_0000 - 0x4000_0000) + 0x1_0000_0000) / PAGE_SIZE;
        assert_eq!(BuddyAllocator::metadata_bytes(&ranges), Ok(frames as usize * 16));
        let a = BuddyAllocator::new_owned(&ranges).unwrap();
        assert_eq!(a.total_frame_count() as u64, frames);
        assert_eq!(a.free_frame_count() as u64, frames);
        assert!(a.meta(pa(0x3b40_0000)).is_none());
        assert!(a.meta(pa(0xfc00_0000)).is_none());
        assert!(a.meta(pa(0x2_0000_0000)).is_none());
        assert!(a.meta(pa(0x3b3f_ffff)).is_some());
        // Highest zone first, so low (DMA-reachable) memory stays free.
        let p = a.alloc_frame().unwrap();
        assert!(p >= pa(0x1_0000_0000));
        let low = a.alloc_frames_below(MAX_ORDER, pa(0x4000_0000)).unwrap();
        assert!(low + (PAGE_SIZE << MAX_ORDER) <= pa(0x3b40_0000));
        a.free_frame(p);
        a.free_frames(low, MAX_ORDER);
        assert_eq!(a.free_frame_count() as u64, frames);
        check_invariants(&a);
    }

    #[test]
    fn exhaustion_and_order_too_large() {
        let a = BuddyAllocator::new_owned(&[range(0x8000_0000, 0x8000_0000 + 4 * MIB)]).unwrap();
        assert_eq!(a.alloc_frames(MAX_ORDER + 1), Err(AllocError::OrderTooLarge));
        let big = a.alloc_frames(MAX_ORDER).unwrap();
        assert_eq!(a.alloc_frame(), Err(AllocError::OutOfMemory));
        assert_eq!(a.free_frame_count(), 0);
        a.free_frames(big, MAX_ORDER);
        let frames: Vec<_> = core::iter::from_fn(|| a.alloc_frame().ok()).collect();
        assert_eq!(frames.len(), 1024);
        assert_eq!(a.alloc_frames(0), Err(AllocError::OutOfMemory));
        let mut sorted = frames.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 1024);
        for f in frames {
            a.free_frame(f);
        }
        assert_eq!(a.free_blocks_per_order()[MAX_ORDER as usize], 1);
        check_invariants(&a);
    }

    #[test]
    fn blocks_are_naturally_aligned_and_stay_inside_unaligned_zones() {
        // Starts 3 pages past a 4 MiB boundary, ends 5 pages before one.
        let z = range(0x4000_3000, 0x4080_0000 - 0x5000);
        let a = BuddyAllocator::new_owned(&[z]).unwrap();
        check_invariants(&a);
        for order in (0..=MAX_ORDER).rev() {
            while let Ok(p) = a.alloc_frames(order) {
                assert!(p.is_aligned(PAGE_SIZE << order));
                assert!(z.contains(p) && p + (PAGE_SIZE << order) <= z.end_exclusive);
            }
        }
        assert_eq!(a.free_frame_count(), 0);
    }

    #[test]
    fn holes_are_never_handed_out() {
        let ranges = [range(0x1000, 0x20_0000), range(0x30_0000, 0x31_3000), range(0x100_0000, 0x140_0000)];
        let a = BuddyAllocator::new_owned(&ranges).unwrap();
        let mut got = 0;
        while let Ok(p) = a.alloc_frame() {
            assert!(ranges.iter().any(|r| r.contains(p)), "{p:?} is in a hole");
            got += 1;
        }
        assert_eq!(got, a.total_frame_count());
    }

    #[test]
    fn bad_frees_are_ignored() {
        let a = BuddyAllocator::new_owned(&[range(0, 2 * MIB)]).unwrap();
        let before = a.free_blocks_per_order();
        let p = a.alloc_frames(2).unwrap();
        let q = a.alloc_frame().unwrap();
        let free = a.free_frame_count();
        a.free_frames(p, 1); // wrong order
        a.free_frame(p + PAGE_SIZE); // inside a block
        a.free_frame(pa(4 * MIB)); // outside the pool
        a.free_frame(p + 1); // unaligned
        a.free_frames(p, MAX_ORDER + 1);
        a.free_frame(p + 6 * PAGE_SIZE); // head of a free block
        a.free_frame(p + 7 * PAGE_SIZE); // inside a free block
        assert_eq!(a.free_frame_count(), free);
        check_invariants(&a);
        // Still referenced by someone else: leaked, not freed.
        assert_eq!(a.inc_ref(q), Ok(2));
        a.free_frame(q);
        assert_eq!(a.refcount(q), Ok(2));
        assert_eq!(a.free_frame_count(), free);
        assert_eq!(a.dec_ref(q), Ok(1));
        a.free_frame(q);
        a.free_frame(q); // double free
        assert_eq!(a.refcount(q), Ok(0));
        a.free_frames(p, 2);
        a.free_frames(p, 2); // double free after merging
                             // Double free of a block whose buddy is still out (not merged).
        let (x, y) = (a.alloc_frame().unwrap(), a.alloc_frame().unwrap());
        assert_eq!(x.as_u64() ^ y.as_u64(), PAGE_SIZE);
        a.free_frame(x);
        a.free_frame(x);
        assert_eq!(a.free_frame_count(), a.total_frame_count() - 1);
        a.free_frame(y);
        assert_eq!(a.free_frame_count(), a.total_frame_count());
        assert_eq!(a.free_blocks_per_order(), before);
        check_invariants(&a);
    }

    #[test]
    fn single_frames_freed_last_come_back_first_and_merge_when_a_block_needs_them() {
        // 1 MiB: one block of order 8.
        let a = BuddyAllocator::new_owned(&[range(0, MIB)]).unwrap();
        let frames: Vec<_> = core::iter::from_fn(|| a.alloc_frame().ok()).collect();
        assert_eq!(frames.len(), 256);
        for &f in &frames {
            a.free_frame(f);
        }
        check_invariants(&a);
        // The first HOT_FRAMES freed stayed hot (the others merged): the
        // last of them is the first handed out again.
        let last_hot = HOT_FRAMES - 1;
        assert_eq!(a.alloc_frame(), Ok(frames[last_hot]));
        assert_eq!(a.alloc_frame(), Ok(frames[last_hot - 1]));
        a.free_frame(frames[last_hot - 1]);
        a.free_frame(frames[last_hot]);
        // A hot frame freed twice is still a double free.
        a.free_frame(frames[last_hot]);
        assert_eq!(a.free_frame_count(), 256);
        // The whole pool as one block: the hot frames merge back for it.
        assert_eq!(a.alloc_frames(8), Ok(pa(0)));
        assert_eq!(a.free_frame_count(), 0);
        a.free_frames(pa(0), 8);
        assert_eq!(a.free_blocks_per_order()[8], 1);
        check_invariants(&a);
    }

    #[test]
    fn the_reserve_stays_in_the_lists_and_hot_frames_are_over_it() {
        // 1 MiB: 256 frames, 64 of them kept back.
        let a = BuddyAllocator::new_owned(&[range(0, MIB)]).unwrap();
        a.set_reserve(64);
        let frames: Vec<_> = core::iter::from_fn(|| a.alloc_frame().ok()).collect();
        assert_eq!(frames.len(), 192);
        assert_eq!(a.free_frame_count(), 64);
        // A frame freed into the hot list is over the reserve: ordinary
        // allocations take it again.
        a.free_frame(frames[7]);
        assert_eq!(a.alloc_frame(), Ok(frames[7]));
        assert_eq!(a.alloc_frame(), Err(AllocError::OutOfMemory));
        // The kernel's own allocations find the reserve whole (the
        // refills took the lowest frames, in order).
        assert_eq!(a.alloc_frames_reserved(6), Ok(pa(192 * PAGE_SIZE)));
        assert_eq!(a.free_frame_count(), 0);
        a.free_frames(pa(192 * PAGE_SIZE), 6);
        for f in frames {
            a.free_frame(f);
        }
        assert_eq!(a.free_frame_count(), 256);
        check_invariants(&a);
    }

    #[test]
    fn every_cpus_hot_frames_are_counted_free_and_drained_for_a_block() {
        let a = BuddyAllocator::new_owned(&[range(0, 4 * MIB)]).unwrap();
        let barrier = std::sync::Barrier::new(HOT_CPUS);
        // Each thread is another CPU: it takes frames and gives some back,
        // which its hot list keeps.
        std::thread::scope(|s| {
            for _ in 0..HOT_CPUS {
                s.spawn(|| {
                    barrier.wait();
                    let frames: Vec<_> = (0..100).map(|_| a.alloc_frame().unwrap()).collect();
                    for &f in &frames {
                        a.free_frame(f);
                    }
                });
            }
        });
        let hot: usize = a.hot.iter().map(|list| list.0.lock().len).sum();
        assert!(hot > HOT_FRAMES, "the threads used several hot lists ({hot} hot frames)");
        assert_eq!(a.free_frame_count(), 1024);
        check_invariants(&a);
        // The whole pool as one block: every hot list drains for it.
        assert_eq!(a.alloc_frames(MAX_ORDER), Ok(pa(0)));
        a.free_frames(pa(0), MAX_ORDER);
        check_invariants(&a);
    }

    #[test]
    fn racing_frees_of_one_frame_free_it_once() {
        const THREADS: u64 = 4;
        let a = BuddyAllocator::new_owned(&[range(0, MIB)]).unwrap();
        for _ in 0..100 {
            let single = a.alloc_frame().unwrap();
            let run = a.alloc_run(2).unwrap();
            let before = a.free_frame_count();
            let barrier = std::sync::Barrier::new(THREADS as usize);
            // Every thread frees `single`; thread 0 frees the run of four
            // while thread t frees its frame t alone.
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let (a, barrier) = (&a, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        match t {
                            0 => a.free_run(run, THREADS as usize),
                            _ => a.free_frame(run + t * PAGE_SIZE),
                        }
                        a.free_frame(single);
                    });
                }
            });
            assert_eq!(a.free_frame_count(), before + 1 + THREADS as usize);
            check_invariants(&a);
        }
        assert_eq!(a.free_frame_count(), 256);
    }

    #[test]
    fn cpus_allocating_and_freeing_at_once_lose_and_share_no_frame() {
        let a = BuddyAllocator::new_owned(&[range(0, 4 * MIB)]).unwrap();
        let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
        std::thread::scope(|s| {
            for t in 0..HOT_CPUS as u64 {
                let (a, seen) = (&a, &seen);
                s.spawn(move || {
                    let mut held = Vec::new();
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                    for _ in 0..20_000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        if x & 3 != 0 || held.is_empty() {
                            if let Ok(f) = a.alloc_frame() {
                                assert!(seen.lock().unwrap().insert(f), "{f:?} handed out twice");
                                held.push(f);
                            }
                        } else {
                            let f = held.swap_remove((x as usize >> 8) % held.len());
                            assert!(seen.lock().unwrap().remove(&f));
                            a.free_frame(f);
                        }
                    }
                    for f in held {
                        assert!(seen.lock().unwrap().remove(&f));
                        a.free_frame(f);
                    }
                });
            }
        });
        assert_eq!(a.free_frame_count(), 1024);
        check_invariants(&a);
        assert_eq!(a.free_blocks_per_order()[MAX_ORDER as usize], 1);
    }

    #[test]
    fn a_run_is_single_frames_and_comes_back_whole() {
        // 1 MiB: one block of order 8.
        let a = BuddyAllocator::new_owned(&[range(0, MIB)]).unwrap();
        let before = a.free_blocks_per_order();
        let run = a.alloc_run(4).unwrap();
        assert_eq!(run.as_u64() % (16 * PAGE_SIZE), 0, "a run is aligned to its size");
        for i in 0..16 {
            let frame = run + i * PAGE_SIZE;
            assert_eq!(a.refcount(frame), Ok(1));
            assert_eq!(a.meta(frame).unwrap().block_order(), Some(0), "each frame a block of its own");
        }
        // One frame goes back alone (freeing a run needs no block order);
        // the rest as runs: one of two frames, one of thirteen.
        a.free_frame(run + 5 * PAGE_SIZE);
        a.free_run(run, 2);
        a.free_run(run + 2 * PAGE_SIZE, 3);
        a.free_run(run + 6 * PAGE_SIZE, 10);
        check_invariants(&a);
        assert_eq!(a.free_frame_count(), 256);
        assert_eq!(a.free_blocks_per_order(), before, "all of it merged back into one block");
        check_invariants(&a);
    }

    #[test]
    fn a_bad_run_is_freed_frame_by_frame() {
        let a = BuddyAllocator::new_owned(&[range(0, MIB)]).unwrap();
        let run = a.alloc_run(3).unwrap();
        let block = a.alloc_frames(1).unwrap();
        // A frame still referenced elsewhere stays out; a double free and a
        // run reaching past the pool free nothing twice.
        assert_eq!(a.inc_ref(run + 2 * PAGE_SIZE), Ok(2));
        a.free_run(run, 8);
        assert_eq!(a.free_frame_count(), 256 - 1 - 2);
        assert_eq!(a.refcount(run + 2 * PAGE_SIZE), Ok(2));
        a.free_run(run, 2); // double free
        a.free_run(pa(MIB - PAGE_SIZE), 2); // leaves the pool
        a.free_run(block, 2); // a block of order 1 is not two single frames
        a.free_run(run + 1, 1); // unaligned
        assert_eq!(a.free_frame_count(), 256 - 1 - 2);
        check_invariants(&a);
        assert_eq!(a.dec_ref(run + 2 * PAGE_SIZE), Ok(1));
        a.free_run(run + 2 * PAGE_SIZE, 1);
        a.free_frames(block, 1);
        assert_eq!(a.free_frame_count(), 256);
        check_invariants(&a);
    }

    #[test]
    fn a_ref_cursor_frees_the_runs_it_gathers() {
        let a = BuddyAllocator::new_owned(&[range(0, MIB)]).unwrap();
        let before = a.free_blocks_per_order();
        let first = a.alloc_run(7).unwrap();
        let shared = first + 100 * PAGE_SIZE;
        assert_eq!(a.inc_ref(shared), Ok(2));
        {
            let mut refs = RefCursor::new(&a);
            // In order, with the frame still shared in the middle: runs of
            // at most RUN_MAX on both sides of it.
            for i in 0..128 {
                refs.put(first + i * PAGE_SIZE);
            }
            assert!(a.free_frame_count() >= 256 - 128, "runs freed on the way");
            assert!(a.free_frame_count() < 256 - 1, "the last run is freed with the cursor");
        }
        assert_eq!(a.free_frame_count(), 256 - 1);
        assert_eq!(a.refcount(shared), Ok(1));
        check_invariants(&a);
        RefCursor::new(&a).put(shared);
        assert_eq!(a.free_frame_count(), 256);
        assert_eq!(a.free_blocks_per_order(), before);
        check_invariants(&a);
    }

    #[test]
    fn refcounts_and_flags() {
        let a = BuddyAllocator::new_owned(&[range(0, MIB)]).unwrap();
        let p = a.alloc_frames(3).unwrap();
        for i in 0..8 {
            let m = a.meta(p + i * PAGE_SIZE + 0x10).unwrap();
            assert_eq!(m.refcount(), 1);
            assert!(!m.is_free());
            assert_eq!(m.block_order(), (i == 0).then_some(3));
        }
        let m = a.meta(p).unwrap();
        m.insert_flags(FrameFlags::PAGE_TABLE);
        assert_eq!(a.inc_ref(p), Ok(2));
        assert_eq!(a.dec_ref(p), Ok(1));
        assert_eq!(a.dec_ref(p), Ok(0));
        a.free_frames(p, 3);
        assert_eq!(m.flags() & FrameFlags::USER, FrameFlags::empty());
        assert!(m.is_free());
        assert_eq!(a.inc_ref(p), Err(RefError::NotReferenced));
        assert_eq!(a.inc_ref(pa(2 * MIB)), Err(RefError::NotManaged));
        assert_eq!(a.refcount(pa(2 * MIB)), Err(RefError::NotManaged));
        assert_eq!(a.dec_ref(pa(2 * MIB)), Err(RefError::NotManaged));
    }

    #[test]
    fn borrowed_storage() {
        let ranges = [range(0x4000_0000, 0x4000_0000 + MIB)];
        let n = BuddyAllocator::metadata_bytes(&ranges).unwrap() / size_of::<FrameMeta>();
        let mut small: Vec<MaybeUninit<FrameMeta>> = (0..n - 1).map(|_| MaybeUninit::uninit()).collect();
        assert_eq!(
            BuddyAllocator::new(&ranges, &mut small).err(),
            Some(InitError::MetadataTooSmall { needed: n, provided: n - 1 })
        );
        let mut storage: Vec<MaybeUninit<FrameMeta>> = (0..n + 5).map(|_| MaybeUninit::uninit()).collect();
        let a = BuddyAllocator::new(&ranges, &mut storage).unwrap();
        assert_eq!(a.total_frame_count(), 256);
        let p = a.alloc_frames(8).unwrap();
        a.free_frames(p, 8);
        check_invariants(&a);
    }

    #[test]
    fn metadata_carved_from_the_pool() {
        // Simulated RAM: 3 ranges mapped at `ram` (a "linear map").
        let base = 0x4000_0000u64;
        let ranges = [
            range(base, base + 2 * MIB),
            range(base + 3 * MIB, base + 4 * MIB + 0x800),
            range(base + 6 * MIB, base + 8 * MIB),
        ];
        let mut ram: Vec<u64> = alloc::vec![0; (8 * MIB / 8) as usize];
        let meta = BuddyAllocator::plan_metadata(&ranges, pa(u64::MAX)).unwrap();
        // 1280 frames * 16 bytes = 5 pages, at the end of the highest range.
        assert_eq!(meta, range(base + 8 * MIB - 5 * PAGE_SIZE, base + 8 * MIB));
        let low = BuddyAllocator::plan_metadata(&ranges, pa(base + 4 * MIB)).unwrap();
        assert_eq!(low, range(base + 4 * MIB - 5 * PAGE_SIZE, base + 4 * MIB));
        assert_eq!(BuddyAllocator::plan_metadata(&ranges, pa(base + 4 * PAGE_SIZE)), Err(InitError::NoRoomForMetadata));

        let ptr = ram.as_mut_ptr().cast::<u8>().wrapping_add((meta.start - pa(base)) as usize).cast::<FrameMeta>();
        // SAFETY: `ptr` points into `ram` (8-byte aligned, 5 pages inside it),
        // which nothing else touches while `a` lives.
        let a = unsafe { BuddyAllocator::new_in_place(&ranges, meta, ptr) }.unwrap();
        assert_eq!(a.total_frame_count(), 1280 - 5);
        assert!(a.meta(meta.start).is_none());
        let mut got = Vec::new();
        while let Ok(p) = a.alloc_frame() {
            assert!(!meta.contains(p));
            got.push(p);
        }
        assert_eq!(got.len(), 1275);
        for p in got {
            a.free_frame(p);
        }
        check_invariants(&a);
        drop(a);
        // The metadata really is in the simulated RAM.
        assert!(ram.iter().any(|&w| w != 0));
    }

    #[test]
    fn alloc_below_a_limit_inside_a_zone() {
        let a = BuddyAllocator::new_owned(&[range(0, 8 * MIB)]).unwrap();
        let limit = pa(3 * MIB + 0x3000);
        let mut n = 0;
        while let Ok(p) = a.alloc_frames_below(2, limit) {
            assert!(p + 4 * PAGE_SIZE <= limit);
            n += 1;
        }
        assert_eq!(n, (3 * MIB / PAGE_SIZE / 4) as usize);
        assert_eq!(a.alloc_frames_below(0, pa(0)), Err(AllocError::OutOfMemory));
        assert!(a.alloc_frames_below(0, limit).is_ok());
        check_invariants(&a);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc(u32),
        Free(usize),
        Share(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..=MAX_ORDER + 1).prop_map(Op::Alloc),
            3 => any::<usize>().prop_map(Op::Free),
            1 => any::<usize>().prop_map(Op::Share),
        ]
    }

    fn zones_strategy() -> impl Strategy<Value = Vec<PhysRange>> {
        // Up to 4 ranges of up to ~6 MiB with unaligned ends and gaps.
        proptest::collection::vec((0u64..0x40_0000, 0u64..0x60_0000), 1..5).prop_map(|parts| {
            let mut at = 0x1000_0000u64;
            parts
                .into_iter()
                .map(|(gap, size)| {
                    at += gap + 0x800;
                    let r = range(at, at + size);
                    at += size;
                    r
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_alloc_free_matches_model(ranges in zones_strategy(), ops in proptest::collection::vec(op(), 1..400)) {
            let a = BuddyAllocator::new_owned(&ranges).unwrap();
            let zones: Vec<_> = a.zones().collect();
            let baseline = a.free_blocks_per_order();
            let total = a.total_frame_count();
            prop_assert_eq!(a.free_frame_count(), total);
            // Live blocks: (start, order, references).
            let mut live: Vec<(PhysAddr, u32, u32)> = Vec::new();
            let mut used = 0usize;
            for op in ops {
                match op {
                    Op::Alloc(order) => match a.alloc_frames(order) {
                        Ok(p) => {
                            prop_assert!(order <= MAX_ORDER);
                            let size = PAGE_SIZE << order;
                            prop_assert!(p.is_aligned(size));
                            prop_assert!(zones.iter().any(|z| z.start <= p && p + size <= z.end_exclusive));
                            let new = PhysRange::new(p, p + size);
                            for &(q, o, _) in &live {
                                prop_assert!(!new.overlaps(&PhysRange::new(q, q + (PAGE_SIZE << o))));
                            }
                            live.push((p, order, 1));
                            used += 1 << order;
                        }
                        Err(AllocError::OrderTooLarge) => prop_assert!(order > MAX_ORDER),
                        Err(AllocError::OutOfMemory) => {
                            prop_assert!(order <= MAX_ORDER);
                            prop_assert_eq!(a.free_blocks_per_order()[order as usize..].iter().sum::<usize>(), 0);
                        }
                    },
                    Op::Free(i) if !live.is_empty() => {
                        let i = i % live.len();
                        let (p, order, refs) = live[i];
                        if refs > 1 {
                            prop_assert_eq!(a.dec_ref(p), Ok(refs - 1));
                            live[i].2 -= 1;
                        } else {
                            a.free_frames(p, order);
                            live.swap_remove(i);
                            used -= 1 << order;
                        }
                    }
                    Op::Share(i) if !live.is_empty() => {
                        let i = i % live.len();
                        prop_assert_eq!(a.inc_ref(live[i].0), Ok(live[i].2 + 1));
                        live[i].2 += 1;
                    }
                    Op::Free(_) | Op::Share(_) => {}
                }
                prop_assert_eq!(a.free_frame_count(), total - used);
            }
            check_invariants(&a);
            for (p, order, refs) in live {
                for _ in 1..refs {
                    a.dec_ref(p).unwrap();
                }
                a.free_frames(p, order);
            }
            prop_assert_eq!(a.free_frame_count(), total);
            prop_assert_eq!(a.free_blocks_per_order(), baseline);
            check_invariants(&a);
        }
    }
}
