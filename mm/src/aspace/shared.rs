//! Faults resolved with the address space shared: the threads of one space
//! fault on several CPUs at once, each holding the space only as a shared
//! reference, while everything that changes the space's layout holds it
//! exclusively (`&mut`, the kernel's space lock).
//!
//! What a shared fault may do is narrow, so that the few pieces it writes
//! can be guarded apart: where a page has no entry (a first touch) it maps
//! a zeroed frame in private anonymous memory, and in a file mapping (or
//! shared anonymous memory) the cached page: read-only, with its cached
//! neighbours as the exclusive path's read fault-around, or on a write
//! writable (a shared mapping, its writer counted) or a copy of it (a
//! private one); on a write to a read-only page of private memory it copies
//! the shared frame (copy-on-write after a fork, or of a file's page:
//! [`AddressSpace::cow_shared`]), and of a shared mapping it makes the
//! entry writable, the page's writer counted; or it finds the page already allows the
//! access (another CPU resolved it meanwhile, or the fault was spurious).
//! Everything else (a page not cached yet, which the pager must read in or
//! the object make; upgrades of private memory and their write
//! fault-around, W^X flips, errors) is
//! answered [`NeedsExclusive`], and the caller takes the space exclusively
//! and resolves it as before.
//!
//! What guards what while faults share the space:
//! - the varea map, the brk and every other field: read only (changing
//!   them needs `&mut`, which waits for shared faults to end);
//! - the translation table: [`AddressSpace::table_lock`], taken only to
//!   walk to the page, look and install (the frame is zeroed or copied
//!   before, with no lock held, so faults of different pages overlap their
//!   longest part);
//! - the resident count: an atomic;
//! - frames: the allocator's own lock, and each frame's atomic reference
//!   count;
//! - a file's page cache: its object's own lock, taken for the look-up
//!   (the page and a reference to it) and, for read fault-around, under
//!   the table lock.
//!
//! Two CPUs faulting on the same page both zero a frame; the one that takes
//! the table lock second finds the entry made and gives its frame back
//! (counted in `MmStats::shared_fault_races`): one frame is mapped, none
//! leaks.
//!
//! munmap(2) of private memory (anonymous, or a file's copy-on-write
//! pages) empties its range beside shared faults too
//! ([`AddressSpace::begin_munmap_shared`]): the
//! varea map is changed in two short exclusive stretches (the vareas split
//! and the range marked `unmapping`, whose shared faults are refused; then
//! the vareas dropped), and the table work between them runs with the
//! space shared, a short stretch at a time under the table lock, so that
//! faults elsewhere in the space go on. A fault that found its varea before the first stretch has
//! ended before it (the stretch waits for shared faults), so its page is
//! in the table the unmap empties.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::Ordering;

use super::fault::{exclusive, prot_allows, read_around_window, FaultCursor, FilePage, Mode, SpaceCursor};
use super::varea::{Backing, Varea};
use super::{log_edit, object_index, release_leaf, space_tlb, AddressSpace, FaultKind, MmEnv, VareaCursor, USER_END};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::errno::Errno;
use crate::frame::{FrameAllocator, RefCursor};
use crate::object::{put_frame, FileObject};
use crate::paging::{copy_frame, zero_frame, Access};

/// A shared fault cannot resolve this one: take the space exclusively and
/// call [`AddressSpace::handle_fault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeedsExclusive;

/// The space's translation table, which shared faults edit under
/// [`AddressSpace::table_lock`] while the rest of the space is shared.
///
/// Reached like the table itself (`Deref`, `DerefMut`): the space's own
/// methods, which hold `&mut` or a `&` no shared fault runs beside
/// ([`AddressSpace::fault_shared`]'s contract), use it as before.
pub(super) struct TableCell<T>(UnsafeCell<T>);

impl<T> TableCell<T> {
    pub(super) const fn new(table: T) -> Self {
        Self(UnsafeCell::new(table))
    }

    /// The table, for a shared call holding the table lock.
    ///
    /// # Safety
    /// The caller holds [`AddressSpace::table_lock`], and every other user
    /// of the table meanwhile is a shared call, which takes the lock too.
    #[allow(clippy::mut_from_ref)]
    unsafe fn locked(&self) -> &mut T {
        // SAFETY: the caller's contract: nobody else reaches the table
        // while it holds the lock.
        unsafe { &mut *self.0.get() }
    }
}

impl<T> Deref for TableCell<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a shared reference to the space exists beside a shared
        // call only inside other shared calls (`fault_shared`'s contract),
        // which reach the table through `locked`, never this.
        unsafe { &*self.0.get() }
    }
}

impl<T> DerefMut for TableCell<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

// SAFETY: the table is written through a shared reference only under the
// table lock (`locked`); `Deref` is for callers no shared fault runs
// beside.
unsafe impl<T: Send> Sync for TableCell<T> {}

impl<'e, E: MmEnv> AddressSpace<'e, E> {
    /// The page holding `va`, and the varea holding it with its start,
    /// where a shared fault of `kind` may resolve it ([`resolves_shared`]):
    /// a varea that allows the access, outside the range an unmap is
    /// emptying.
    fn shared_varea(
        &self,
        va: VirtAddr,
        kind: FaultKind,
    ) -> Result<(VirtAddr, VirtAddr, &Varea<'e, E>), NeedsExclusive> {
        if va >= USER_END {
            return Err(NeedsExclusive);
        }
        let page = va.align_down(PAGE_SIZE);
        if self.unmapping.is_some_and(|range| range.contains(page)) {
            return Err(NeedsExclusive);
        }
        match self.vareas.find(va) {
            Some((start, varea)) if resolves_shared(&varea.backing) && prot_allows(varea.prot, kind) => {
                Ok((page, start, varea))
            }
            _ => Err(NeedsExclusive),
        }
    }

    /// Resolves a fault of `kind` at `va` holding the space only as a
    /// shared reference, so that faults of the space's threads on several
    /// CPUs run at once: maps a missing page of private anonymous memory
    /// (a zeroed frame) or of a file mapping or shared anonymous memory
    /// (its cached page, or a copy for a write to a private mapping), or
    /// returns `Ok` when the page's
    /// entry already allows the access. Anything else is
    /// [`NeedsExclusive`]: nothing was changed, and the caller resolves
    /// the fault with [`Self::handle_fault`]. Counted as `handle_fault`
    /// counts.
    ///
    /// # Safety
    /// While this runs, every other access to the space is another shared
    /// call (`fault_shared`, [`Self::cow_shared`], [`Self::zap_shared`]):
    /// whoever uses the space otherwise (with `&mut`, or with `&` for any
    /// other method) first waits for the shared calls running to end and
    /// keeps new ones out until it is done.
    pub unsafe fn fault_shared(&self, va: VirtAddr, kind: FaultKind) -> Result<(), NeedsExclusive> {
        let (page, start, varea) = self.shared_varea(va, kind)?;
        match &varea.backing {
            Backing::Object { object, first_page, shared } => {
                let index = object_index(*first_page, start, page);
                // SAFETY: our caller's contract.
                unsafe { self.map_cached_shared(page, start, varea, object, index, *shared, kind) }
            }
            // SAFETY: our caller's contract.
            _ => unsafe { self.map_zeroed_shared(page, varea, kind) },
        }
    }

    /// Runs `edit` on a cursor over `range` of the table (with the
    /// space's TLB maintenance) under the table lock; a range the cursor
    /// cannot take is [`NeedsExclusive`].
    ///
    /// # Safety
    /// As [`Self::fault_shared`]: every other user of the table meanwhile
    /// is a shared call, which takes the lock too.
    #[inline(always)]
    unsafe fn with_cursor<R>(
        &self,
        range: VirtRange,
        edit: impl FnOnce(SpaceCursor<'_, 'e, E>) -> Result<R, NeedsExclusive>,
    ) -> Result<R, NeedsExclusive> {
        let (tlb, scope) = space_tlb(self.env, &self.asid);
        let _guard = self.table_lock.lock();
        // SAFETY: the table lock is held, and the caller's contract keeps
        // every other user of the table a shared call, which takes it too.
        let table = unsafe { self.table.locked() };
        edit(table.cursor(&tlb, scope, range).map_err(|_| NeedsExclusive)?)
    }

    /// [`Self::fault_shared`] in private anonymous memory: maps a zeroed
    /// frame at `page`.
    ///
    /// # Safety
    /// As [`Self::fault_shared`].
    #[inline(always)]
    unsafe fn map_zeroed_shared(
        &self,
        page: VirtAddr,
        varea: &Varea<'e, E>,
        kind: FaultKind,
    ) -> Result<(), NeedsExclusive> {
        let mode = Mode::for_fault(varea, kind, true);
        let frames = self.env.frames();
        // Zeroed before the lock: other faults' walks do not wait for it.
        let frame = frames.alloc_frame().map_err(|_| NeedsExclusive)?;
        // SAFETY: a fresh frame from the pool, ours alone.
        unsafe { zero_frame(self.env.mem(), frame) };
        if mode.is_executable() {
            self.env.sync_icache(frame);
        }
        // SAFETY: our caller's contract.
        let outcome = unsafe {
            self.with_cursor(VirtRange::new(page, page + PAGE_SIZE), |mut cursor| match cursor.query() {
                // Out of table pages: the exclusive path runs out too, and
                // asks the OOM killer.
                None => cursor.map(frame, mode.attrs(false)).map(|()| 1).map_err(|_| NeedsExclusive),
                // Another CPU mapped it meanwhile, or the fault was spurious.
                Some(leaf) if Mode::of_desc(leaf.desc).allows(kind) => Ok(0),
                Some(_) => Err(NeedsExclusive),
            })
        };
        self.settle(outcome, frame)
    }

    /// [`Self::fault_shared`] in a file mapping: maps page `index` of
    /// `object` at `page` if it is cached: read-only with its cached
    /// neighbours, or on a write writable (a shared mapping, its writer
    /// counted) or a copy of it (a private one).
    ///
    /// # Safety
    /// As [`Self::fault_shared`].
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn map_cached_shared(
        &self,
        page: VirtAddr,
        start: VirtAddr,
        varea: &Varea<'e, E>,
        object: &FileObject<'e, E>,
        index: u64,
        shared: bool,
        kind: FaultKind,
    ) -> Result<(), NeedsExclusive> {
        let cached = object.cached_page(index).ok_or(NeedsExclusive)?;
        let FilePage { frame, mode, writer } =
            FilePage::choose(self.env, varea, object.is_anonymous(), shared, kind, cached)
                .map_err(|_| NeedsExclusive)?;
        let window = read_around_window(page, start, varea, kind);
        if mode.is_executable() {
            self.env.sync_icache(frame);
        }
        let range = window.unwrap_or(VirtRange::new(page, page + PAGE_SIZE));
        // SAFETY: our caller's contract.
        let outcome = unsafe {
            self.with_cursor(range, |cursor| {
                let mut faults = FaultCursor { env: self.env, cursor, installed: 0 };
                match faults.cursor.jump(page).map(|()| faults.cursor.query()) {
                    Ok(None) => {
                        if writer {
                            object.start_writer(index);
                        }
                        match faults.cursor.map(frame, mode.attrs(false)) {
                            Ok(()) => {
                                if let Some(window) = window {
                                    faults.map_cached_around(start, varea, window, page);
                                }
                                Ok(1 + faults.installed)
                            }
                            Err(_) => {
                                if writer {
                                    object.end_writer(index);
                                }
                                Err(NeedsExclusive)
                            }
                        }
                    }
                    Ok(Some(leaf)) if Mode::of_desc(leaf.desc).allows(kind) => Ok(0),
                    Ok(Some(_)) | Err(_) => Err(NeedsExclusive),
                }
            })
        };
        self.settle(outcome, frame)
    }

    /// Counts a shared fault's `outcome`: the pages it mapped (`frame`
    /// among them), or none (another CPU mapped the page meanwhile, or the
    /// fault was spurious), or a refusal; in the last two `frame`'s
    /// reference goes back.
    #[inline(always)]
    fn settle(&self, outcome: Result<usize, NeedsExclusive>, frame: PhysAddr) -> Result<(), NeedsExclusive> {
        let stats = self.env.stats();
        match outcome {
            Ok(0) => {
                put_frame(self.env.frames(), frame);
                stats.fault();
                stats.shared_fault(true);
                Ok(())
            }
            Ok(installed) => {
                self.resident.fetch_add(installed, Ordering::Relaxed);
                stats.fault();
                stats.shared_fault(false);
                Ok(())
            }
            Err(e) => {
                put_frame(self.env.frames(), frame);
                Err(e)
            }
        }
    }
}

/// Whether a shared fault may resolve a page of memory backed so: memory
/// (anonymous, or a file's pages, private or shared), not a device's
/// registers.
fn resolves_shared<E: MmEnv>(backing: &Backing<'_, E>) -> bool {
    !matches!(backing, Backing::Device { .. })
}

impl<E: MmEnv> AddressSpace<'_, E> {
    /// Resolves a write fault on a present read-only page of private
    /// memory (anonymous, or a file's pages mapped `MAP_PRIVATE`) holding
    /// the space only as a shared reference, as
    /// [`Self::fault_shared`] resolves first touches: where the frame is
    /// shared (copy-on-write after a fork), copies it with no lock held (a
    /// reference taken keeps it) and puts the copy in place under the
    /// table lock, break-before-make, if the entry still maps the frame
    /// read-only; `Ok` also where the entry allows the write already
    /// (another CPU broke it). In a shared mapping, the page mapped
    /// read-only is made writable in place instead (`upgrade_shared`).
    /// Anything else, and a frame a private mapping holds alone (an
    /// upgrade, which the exclusive path makes for the whole write
    /// fault-around window), is [`NeedsExclusive`], unchanged.
    ///
    /// # Safety
    /// As [`Self::fault_shared`].
    pub unsafe fn cow_shared(&self, va: VirtAddr) -> Result<(), NeedsExclusive> {
        let (page, start, varea) = self.shared_varea(va, FaultKind::Write)?;
        // A shared mapping's page is written in place, never copied.
        if let Backing::Object { object, first_page, shared: true } = &varea.backing {
            // SAFETY: our caller's contract.
            return unsafe { self.upgrade_shared(page, varea, object, object_index(*first_page, start, page)) };
        }
        let mode = Mode::writable_in(varea);
        let frames = self.env.frames();
        let stats = self.env.stats();
        let range = VirtRange::new(page, page + PAGE_SIZE);
        // SAFETY: the caller's contract.
        let source = unsafe {
            self.with_cursor(range, |mut cursor| match cursor.query() {
                Some(leaf) if Mode::of_desc(leaf.desc).allows(FaultKind::Write) => Ok(None),
                Some(leaf) if Mode::of_desc(leaf.desc) == Mode::Read && !exclusive(frames, leaf.pa()) => {
                    // Kept until the copy is made, whatever happens to the
                    // entry meanwhile.
                    frames.inc_ref(leaf.pa()).map_err(|_| NeedsExclusive)?;
                    Ok(Some(leaf.pa()))
                }
                _ => Err(NeedsExclusive),
            })
        };
        // Writable already: another CPU broke it.
        let Some(source) = source? else {
            stats.fault();
            stats.shared_fault(true);
            return Ok(());
        };
        let copy = match frames.alloc_frame() {
            Ok(copy) => copy,
            Err(_) => {
                put_frame(frames, source);
                return Err(NeedsExclusive);
            }
        };
        // SAFETY: `copy` is fresh and ours; `source` is a pool frame we hold
        // a reference to, which nobody writes (every mapping of a shared
        // frame is read-only), distinct from `copy`.
        unsafe { copy_frame(self.env.mem(), copy, source) };
        if mode.is_executable() {
            self.env.sync_icache(copy);
        }
        // SAFETY: as above.
        let outcome = unsafe {
            self.with_cursor(range, |mut cursor| match cursor.query() {
                Some(leaf) if leaf.pa() == source && Mode::of_desc(leaf.desc) == Mode::Read => {
                    match cursor.replace(copy, mode.attrs(false)) {
                        // The TLBs forgot the old entry before `replace`
                        // returned: the mapping's reference goes.
                        Ok(Some(old)) => {
                            put_frame(frames, old.pa());
                            Ok(true)
                        }
                        Ok(None) | Err(_) => Err(NeedsExclusive),
                    }
                }
                Some(leaf) if Mode::of_desc(leaf.desc).allows(FaultKind::Write) => Ok(false),
                _ => Err(NeedsExclusive),
            })
        };
        put_frame(frames, source);
        match outcome {
            Ok(true) => {
                stats.fault();
                stats.cow_copy();
                stats.shared_fault(false);
                Ok(())
            }
            Ok(false) => {
                frames.free_frame(copy);
                stats.fault();
                stats.shared_fault(true);
                Ok(())
            }
            Err(e) => {
                frames.free_frame(copy);
                Err(e)
            }
        }
    }

    /// [`Self::cow_shared`] in a shared mapping (of a file, or shared
    /// anonymous memory): a write to page `index` of `object` mapped
    /// read-only at `page` (after a read, or a write-back that cleaned it)
    /// makes its entry writable in place, the page's writer counted (so
    /// dirty) first; `Ok` also where the entry allows the write already.
    /// Anything else (an executable entry: a W^X flip) is
    /// [`NeedsExclusive`], unchanged.
    ///
    /// # Safety
    /// As [`Self::fault_shared`].
    #[inline(never)]
    unsafe fn upgrade_shared(
        &self,
        page: VirtAddr,
        varea: &Varea<'_, E>,
        object: &FileObject<'_, E>,
        index: u64,
    ) -> Result<(), NeedsExclusive> {
        let mode = Mode::writable_in(varea);
        // SAFETY: our caller's contract.
        let raced = unsafe {
            self.with_cursor(VirtRange::new(page, page + PAGE_SIZE), |mut cursor| match cursor.query() {
                Some(leaf) if Mode::of_desc(leaf.desc).allows(FaultKind::Write) => Ok(true),
                Some(leaf) if Mode::of_desc(leaf.desc) == Mode::Read => {
                    if mode.is_executable() {
                        self.env.sync_icache(leaf.pa());
                    }
                    object.start_writer(index);
                    // Permissions only: in place, the TLBs told before
                    // this returns (a core that still sees the read-only
                    // entry meanwhile faults again and finds it writable).
                    match cursor.protect(mode.attrs(false)) {
                        Ok(_) => Ok(false),
                        Err(_) => {
                            object.end_writer(index);
                            Err(NeedsExclusive)
                        }
                    }
                }
                _ => Err(NeedsExclusive),
            })
        }?;
        let stats = self.env.stats();
        stats.fault();
        stats.shared_fault(raced);
        Ok(())
    }
}

/// The most steps (a page unmapped is one, as the editor counts towards
/// its pause points) one stretch of an unmap beside shared faults holds
/// the table lock for: no longer than a long pass runs between two pause
/// points ([`crate::paging::EDIT_SPACING`]). An unmap of at most this many
/// pages is one stretch.
pub const SHARED_UNMAP_PAGES: u64 = crate::paging::EDIT_SPACING as u64;

/// Who may fault in the space while an unmap empties its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beside {
    /// No other thread runs in the space: a range longer than one stretch
    /// is cheaper unmapped exclusively, in one pass.
    Nobody,
    /// Other threads may fault: every range of private memory is emptied
    /// beside them, stretch by stretch.
    Threads,
}

/// How munmap(2) goes beside shared faults ([`AddressSpace::begin_munmap_shared`]).
#[derive(Debug)]
pub enum MunmapShared {
    /// Nothing was mapped in the range: done.
    Done,
    /// Shared file memory (whose pages go back to the file when its
    /// vareas go), or a long range with nobody beside: call
    /// [`AddressSpace::munmap`] with the space exclusively.
    Exclusive,
    /// Empty the range's table beside shared faults
    /// ([`AddressSpace::zap_shared`]), then [`AddressSpace::end_munmap_shared`].
    Zap(SharedZap),
}

/// An unmap half done: the range's vareas split from their neighbours and
/// marked, its table still to empty.
#[derive(Debug)]
pub struct SharedZap {
    range: VirtRange,
    /// The gap the range's vareas leave: nothing else is mapped in it.
    vacated: VirtRange,
}

impl<E: MmEnv> AddressSpace<'_, E> {
    /// munmap(2)'s first step where its table work may run beside shared
    /// faults (a range of private memory, anonymous or a file's, of at most
    /// [`SHARED_UNMAP_PAGES`] pages, or of any length with threads
    /// `beside`): checks the arguments as `munmap` does, splits the vareas
    /// at the range's ends and marks the range, so that shared faults there
    /// are refused from now on. Changes nothing when it answers
    /// [`MunmapShared::Exclusive`] or an error.
    pub fn begin_munmap_shared(&mut self, addr: VirtAddr, len: u64, beside: Beside) -> Result<MunmapShared, Errno> {
        let range = self.munmap_range(addr, len)?;
        let one_stretch = range.size() <= SHARED_UNMAP_PAGES * PAGE_SIZE;
        let private = |v: &Varea<'_, E>| matches!(v.backing, Backing::Anon | Backing::Object { shared: false, .. });
        if !(one_stretch || beside == Beside::Threads) || !self.vareas.overlapping(range).all(|(_, v)| private(v)) {
            return Ok(MunmapShared::Exclusive);
        }
        if !self.vareas.isolate(range) {
            return Ok(MunmapShared::Done);
        }
        self.peak_resident = self.peak_resident.max(*self.resident.get_mut());
        let vacated = self.vareas.gap_around(range);
        self.unmapping = Some(range);
        Ok(MunmapShared::Zap(SharedZap { range, vacated }))
    }

    /// munmap(2)'s second step: empties the range's table with the space
    /// shared, a stretch of at most [`SHARED_UNMAP_PAGES`] steps at a time
    /// under the table lock (the TLBs forget each stretch before its frames
    /// are freed), asking the environment between stretches whether to
    /// let other tasks run.
    ///
    /// # Safety
    /// As [`Self::fault_shared`]; and `zap` comes from this space's last
    /// `begin_munmap_shared`.
    pub unsafe fn zap_shared(&self, zap: &SharedZap) {
        let (tlb, scope) = space_tlb(self.env, &self.asid);
        let mut refs = RefCursor::new(self.env.frames());
        let mut from = zap.range.start;
        while from < zap.range.end_exclusive {
            let mut vareas = VareaCursor::new(self.vareas.overlapping(VirtRange::new(from, zap.range.end_exclusive)));
            let mut released = 0;
            {
                let guard = self.table_lock.lock();
                // SAFETY: the table lock is held until `finish_after` below
                // releases it, after the last use of `table`; the caller's
                // contract keeps every other user of the table a shared
                // call, which takes it too.
                let table = unsafe { self.table.locked() };
                let rest = VirtRange::new(from, zap.range.end_exclusive);
                // No more pages than steps: one stretch, without a walk.
                let end = if rest.size() <= SHARED_UNMAP_PAGES * PAGE_SIZE {
                    rest.end_exclusive
                } else {
                    table.unmap_stretch_end(rest, SHARED_UNMAP_PAGES as usize)
                };
                let stretch = VirtRange::new(from, end);
                // Empty once this stretch is: the gap before the range, and
                // the range up to here (faults elsewhere map nothing in it).
                let vacated = VirtRange::new(
                    zap.vacated.start,
                    if end == zap.range.end_exclusive { zap.vacated.end_exclusive } else { end },
                );
                let mut editor = table.edit(&tlb, scope, |leaf| {
                    let writable = leaf.attrs.access().contains(Access::WRITE);
                    released += usize::from(release_leaf(&mut refs, vareas.at(leaf.va), leaf.va, leaf.pa, writable));
                });
                log_edit("unmap", editor.unmap_vacating(stretch, vacated));
                from = end;
                // The stretch's invalidations, and the frees they allow,
                // after the table lock: faults elsewhere in the space go on
                // meanwhile. What the stretch emptied is the range being
                // unmapped (shared faults there refuse) and the gap beside
                // it (no varea), where nobody maps anything before this.
                editor.finish_after(guard);
            }
            self.resident.fetch_sub(released, Ordering::Relaxed);
            if from < zap.range.end_exclusive && self.env.should_yield() {
                self.env.yield_now();
            }
        }
        self.env.stats().shared_unmap();
    }

    /// munmap(2)'s last step: drops the range's vareas.
    pub fn end_munmap_shared(&mut self, zap: SharedZap) {
        // Private vareas: nothing to write back (a file's are dropped with
        // the reference the varea held).
        self.vareas.remove_range(zap.range, |_, varea| drop(varea));
        self.unmapping = None;
    }
}
