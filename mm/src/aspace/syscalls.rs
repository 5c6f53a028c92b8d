//! The memory system calls: mmap, munmap, mprotect, madvise, msync, mlock,
//! munlock, mlockall, munlockall, brk; and device mappings for drivers.
//! Argument checks follow Linux 6.1 (`mm/mmap.c`, `mm/mprotect.c`,
//! `mm/madvise.c`, `mm/msync.c`, `mm/mlock.c`), in its order, with its
//! errnos.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::ControlFlow;

use aspen_abi::mman::{Advice, MapFlags, MapType, MlockallFlags, MsyncFlags, Prot};

use super::env::EnvPause;
use super::fault::{exclusive, leaf_write_ok, write_around, Mode};
use super::varea::{Backing, MappedFile, TopDownHint, Varea};
use super::{
    log_edit, object_index, page_align, space_tlb, AddressSpace, Brk, LockMode, MmEnv, Table, WxPolicy, MAX_VAREAS,
    MMAP_MIN_ADDR, USER_END,
};
use crate::addr::{PhysRange, VirtAddr, VirtRange, PAGE_SHIFT, PAGE_SIZE};
use crate::asid::AsidContext;
use crate::errno::Errno;
use crate::frame::BuddyAllocator;
use crate::object::FileObject;
use crate::paging::Leaf;

/// The most pages an mprotect giving write back upgrades at once; larger
/// ranges are left to write faults, each of which upgrades the pages of
/// its last-level table ([`write_around`]). Up to here the pass costs less
/// than the fault it saves (about 1,500 instructions: the exception, the
/// lookup, the walk) and its invalidations go page by page; above, a
/// program that never writes after giving write back (`mprotect_toggle`)
/// would pay a pass over every page and a whole-ASID invalidation.
const EAGER_UPGRADE_PAGES: u64 = crate::tlb::PER_PAGE_LIMIT as u64;

/// The largest file offset a mapping may reach (Linux's MAX_LFS_FILESIZE).
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

impl<'e, E: MmEnv> AddressSpace<'e, E> {
    /// A free, page-aligned range of `len` bytes: at `hint` (page aligned
    /// up) when that is free and at or above [`MMAP_MIN_ADDR`]; else the
    /// highest gap below the mmap base; else the lowest above it.
    pub(super) fn free_area(&self, len: u64, hint: VirtAddr) -> Option<VirtAddr> {
        self.free_area_with_hint(len, hint).map(|(at, _)| at)
    }

    /// [`Self::free_area`], with the [`TopDownHint`] to record once a
    /// mapping is added there (none when it was not found top-down).
    fn free_area_with_hint(&self, len: u64, hint: VirtAddr) -> Option<(VirtAddr, Option<TopDownHint>)> {
        if hint.as_u64() != 0 {
            if let Some(at) = hint.checked_align_up(PAGE_SIZE) {
                let fits = at >= MMAP_MIN_ADDR && at.as_u64() <= USER_END.as_u64() - len;
                if fits && !self.vareas.any_in(VirtRange::new(at, at + len)) {
                    return Some((at, None));
                }
            }
        }
        match self.free_area_top_down(len) {
            Some((at, recorded)) => Some((at, Some(recorded))),
            None => self.free_area_bottom_up(len).map(|at| (at, None)),
        }
    }

    /// Where `mmap(NULL, len, ...)` would put a new mapping now: what a
    /// program loader uses to place an image of `len` bytes (rounded up to
    /// pages) as Linux places an ELF interpreter. `None` when `len` is 0 or
    /// no gap holds it (mmap's ENOMEM).
    pub fn unmapped_area(&self, len: u64) -> Option<VirtAddr> {
        let len = page_align(len).filter(|&len| len != 0 && len <= USER_END - MMAP_MIN_ADDR)?;
        self.free_area(len, VirtAddr::new(0))
    }

    /// The highest gap of `len` bytes below `mmap_base`, searched from the
    /// last search's place when no gap above it can hold `len` bytes.
    fn free_area_top_down(&self, len: u64) -> Option<(VirtAddr, TopDownHint)> {
        let base = self.mmap_base;
        let (mut high, mut largest_skipped) = match self.vareas.top_down_hint() {
            Some(h) if h.base == base && len > h.largest_skipped => (h.from, h.largest_skipped),
            _ => (base, 0),
        };
        let found = |high: VirtAddr, largest_skipped| {
            let at = high - len;
            Some((at, TopDownHint { base, from: at, largest_skipped }))
        };
        for (start, varea) in self.vareas.starting_below(high).rev() {
            if varea.end_exclusive < high {
                let gap = high - varea.end_exclusive;
                if gap >= len {
                    return found(high, largest_skipped);
                }
                largest_skipped = largest_skipped.max(gap);
            }
            high = high.min(start);
        }
        if high >= MMAP_MIN_ADDR && high - MMAP_MIN_ADDR >= len {
            return found(high, largest_skipped);
        }
        None
    }

    fn free_area_bottom_up(&self, len: u64) -> Option<VirtAddr> {
        let mut low = self.mmap_base.max(MMAP_MIN_ADDR);
        for (start, varea) in self.vareas.overlapping(VirtRange::new(low, USER_END)) {
            if start > low && start - low >= len {
                return Some(low);
            }
            low = low.max(varea.end_exclusive);
        }
        (USER_END - low >= len).then_some(low)
    }

    /// Under [`WxPolicy::Strict`], `PROT_WRITE|PROT_EXEC` is EACCES.
    fn check_wx_policy(&self, prot: Prot) -> Result<(), Errno> {
        if self.env.wx_policy() == WxPolicy::Strict && prot.contains(Prot::WRITE | Prot::EXEC) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    /// Whether splitting at the ends of `range` would exceed [`MAX_VAREAS`].
    fn too_many_splits(&self, range: VirtRange) -> bool {
        self.vareas.len() + self.vareas.splits_needed(range) > MAX_VAREAS
    }

    /// mmap(2). `file` is the open file (ignored with MAP_ANONYMOUS;
    /// `None` without it is a bad descriptor), `offset` the byte offset
    /// into it. Unknown `prot` bits are ignored; unknown `flags` too, but
    /// with MAP_SHARED_VALIDATE on a file (EOPNOTSUPP). Returns the start
    /// of the mapping.
    pub fn mmap(
        &mut self,
        addr: VirtAddr,
        len: u64,
        prot: Prot,
        flags: MapFlags,
        file: Option<MappedFile<'e, E>>,
        offset: u64,
    ) -> Result<VirtAddr, Errno> {
        if !offset.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let file = if flags.contains(MapFlags::ANONYMOUS) {
            if flags.contains(MapFlags::HUGETLB) {
                // No huge-page pool, as Linux with none reserved.
                return Err(Errno::ENOMEM);
            }
            None
        } else {
            let file = file.ok_or(Errno::EBADF)?;
            if flags.contains(MapFlags::HUGETLB) {
                return Err(Errno::EINVAL);
            }
            Some(file)
        };
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let mut flags = flags;
        if flags.contains(MapFlags::FIXED_NOREPLACE) {
            flags |= MapFlags::FIXED;
        }
        let fixed = flags.contains(MapFlags::FIXED);
        let hint = if !fixed && addr.as_u64() != 0 && addr < MMAP_MIN_ADDR { MMAP_MIN_ADDR } else { addr };
        let len = page_align(len).ok_or(Errno::ENOMEM)?;
        let first_page = offset >> PAGE_SHIFT;
        if self.vareas.len() > MAX_VAREAS {
            return Err(Errno::ENOMEM);
        }
        if len > USER_END - MMAP_MIN_ADDR {
            return Err(Errno::ENOMEM);
        }
        let (start, top_down) =
            if fixed { (hint, None) } else { self.free_area_with_hint(len, hint).ok_or(Errno::ENOMEM)? };
        if start.as_u64() > USER_END.as_u64() - len {
            return Err(Errno::ENOMEM);
        }
        if !start.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        if start < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        let range = VirtRange::new(start, start + len);
        if flags.contains(MapFlags::FIXED_NOREPLACE) && self.vareas.any_in(range) {
            return Err(Errno::EEXIST);
        }
        let lock = if flags.contains(MapFlags::LOCKED) { Some(LockMode::Populate) } else { self.lock_future };
        if lock.is_some() && !self.may_lock_more(len) {
            return Err(Errno::EAGAIN);
        }
        let mut max_prot = Prot::ACCESS;
        let backing = match file {
            Some(file) => {
                if len > MAX_FILE_SIZE || first_page > (MAX_FILE_SIZE - len) >> PAGE_SHIFT {
                    return Err(Errno::EOVERFLOW);
                }
                let shared = match flags.map_type() {
                    Some(map_type @ (MapType::Shared | MapType::SharedValidate)) => {
                        // Plain MAP_SHARED ignores flags it does not know.
                        let checked = if map_type == MapType::Shared { flags & MapFlags::LEGACY } else { flags };
                        if !MapFlags::LEGACY.contains(checked) {
                            return Err(Errno::EOPNOTSUPP);
                        }
                        if !file.writable {
                            if prot.contains(Prot::WRITE) {
                                return Err(Errno::EACCES);
                            }
                            // Stores would reach the file: never, not even
                            // after mprotect.
                            max_prot.remove(Prot::WRITE);
                        }
                        true
                    }
                    Some(MapType::Private) => false,
                    None => return Err(Errno::EINVAL),
                };
                if !file.readable {
                    return Err(Errno::EACCES);
                }
                if flags.contains(MapFlags::GROWSDOWN) {
                    return Err(Errno::EINVAL);
                }
                Backing::Object { object: file.object, first_page, shared }
            }
            None => match flags.map_type() {
                Some(MapType::Shared) => {
                    if flags.contains(MapFlags::GROWSDOWN) {
                        return Err(Errno::EINVAL);
                    }
                    Backing::Object { object: FileObject::anonymous(self.env, len), first_page: 0, shared: true }
                }
                Some(MapType::Private) => Backing::Anon,
                Some(MapType::SharedValidate) | None => return Err(Errno::EINVAL),
            },
        };
        self.check_wx_policy(prot)?;
        if fixed && self.too_many_splits(range) {
            return Err(Errno::ENOMEM);
        }
        // A range the search found is free; a fixed one replaces what is there.
        if fixed {
            self.unmap_range(range);
        }
        let prot = prot.access();
        let varea = Varea::new(range.end_exclusive, prot, max_prot, backing, lock.is_some());
        self.add_varea(range, varea);
        let populate = lock == Some(LockMode::Populate)
            || (flags.contains(MapFlags::POPULATE) && !flags.contains(MapFlags::NONBLOCK));
        if populate && self.populate(range).is_err() {
            self.unmap_range(range);
            return Err(Errno::ENOMEM);
        }
        if let Some(recorded) = top_down {
            self.vareas.set_top_down_hint(recorded);
        }
        Ok(start)
    }

    /// munmap(2). Holes in the range are fine.
    pub fn munmap(&mut self, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        let range = self.munmap_range(addr, len)?;
        self.unmap_range(range);
        Ok(())
    }

    /// The range munmap(2) removes, or why it refuses.
    pub(super) fn munmap_range(&self, addr: VirtAddr, len: u64) -> Result<VirtRange, Errno> {
        if !addr.is_page_aligned() || addr > USER_END || len > USER_END - addr {
            return Err(Errno::EINVAL);
        }
        let len = page_align(len).ok_or(Errno::EINVAL)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let range = VirtRange::new(addr, addr + len);
        // Cutting a hole in one varea adds one (Linux's check).
        let inside_one = self
            .vareas
            .find(range.start)
            .is_some_and(|(start, v)| start < range.start && v.end_exclusive > range.end_exclusive);
        if inside_one && self.vareas.len() >= MAX_VAREAS {
            return Err(Errno::ENOMEM);
        }
        Ok(range)
    }

    /// Whether mmap(2) with `flags` changes only the varea map (no
    /// populate, no mapping replaced): then it may run while faults share
    /// the space, in a short exclusive stretch.
    pub fn mmap_changes_map_only(&self, flags: MapFlags) -> bool {
        !flags.intersects(MapFlags::FIXED | MapFlags::FIXED_NOREPLACE | MapFlags::POPULATE | MapFlags::LOCKED)
            && self.lock_future.is_none()
    }

    /// mprotect(2). The whole range must be mapped (else ENOMEM and
    /// nothing changes); unknown `prot` bits are EINVAL.
    pub fn mprotect(&mut self, addr: VirtAddr, len: u64, prot: Prot) -> Result<(), Errno> {
        let grows = prot & (Prot::GROWSDOWN | Prot::GROWSUP);
        if grows == Prot::GROWSDOWN | Prot::GROWSUP || !addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let len = page_align(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if !(Prot::ACCESS | Prot::SEM | grows).contains(prot) {
            return Err(Errno::EINVAL);
        }
        let range = VirtRange::new(addr, end);
        if end > USER_END {
            return Err(Errno::ENOMEM);
        }
        if !grows.is_empty() {
            // No varea grows (MAP_GROWSDOWN is not kept).
            return Err(if self.vareas.covers(range) { Errno::EINVAL } else { Errno::ENOMEM });
        }
        self.check_wx_policy(prot)?;
        let new = prot.access();
        // Inside one varea, the common case: one search decides, and an
        // unlocked varea changes there (`protect_inside_one`).
        match self.protect_inside_one(range, new) {
            Some(ControlFlow::Continue(())) => return Ok(()),
            Some(ControlFlow::Break(Some(result))) => return result,
            // Locked: the general way below (checks done).
            Some(ControlFlow::Break(None)) => {}
            None => self.check_protect_range(range, new)?,
        }
        self.vareas.isolate(range);
        let mut repopulate = Vec::new();
        // Only added permissions, nothing locked: no leaf needs to change.
        // Pages gain the new permissions at their next fault, as FreeBSD's
        // pmap_protect leaves upgrades to faults; no TLB maintenance either.
        let mut only_gains = true;
        let mut gained_write = false;
        for (start, varea) in self.vareas.inside_mut(range) {
            let gains_write = !varea.prot.contains(Prot::WRITE) && new.contains(Prot::WRITE);
            gained_write |= gains_write;
            if varea.locked && gains_write && !varea.is_shared() {
                repopulate.push(VirtRange::new(start, varea.end_exclusive));
            }
            only_gains &= !varea.locked && varea.prot.is_accessible() && new.contains(varea.prot);
            varea.set_prot(new);
        }
        if !only_gains {
            reprotect_leaves(&mut self.table, self.env, &self.asid, self.vareas.inside(range));
        } else if gained_write && upgrades_now(range, new) {
            upgrade_now(&mut self.table, self.env, &self.asid, self.vareas.inside(range));
        }
        self.vareas.merge_in(range, &mut EnvPause(self.env));
        // A locked private varea made writable gets its copy-on-write
        // broken now, so it stays fault-free (Linux does the same; errors
        // are ignored as there).
        for sub in repopulate {
            let _ = self.populate(sub);
        }
        Ok(())
    }

    /// mprotect of a range inside one varea: its checks (as Linux: a
    /// protection beyond the varea's maximum is EACCES, none when nothing
    /// would change, ENOMEM when the splits would make too many vareas),
    /// then, when the varea is not locked, the change: the varea is split
    /// and merged by [`VareaMap::change_inside_one`] (one search) and the
    /// leaves change as in the general case while the part is in hand.
    /// `Break(Some)` is mprotect's result after the checks, `Break(None)`
    /// leaves a locked varea to the general way; `None` when no one varea
    /// holds the range.
    fn protect_inside_one(&mut self, range: VirtRange, new: Prot) -> Option<ControlFlow<Option<Result<(), Errno>>>> {
        let vareas = self.vareas.len();
        let (table, env, asid) = (&mut self.table, self.env, &self.asid);
        let decide = |start: VirtAddr, varea: &Varea<'e, E>| {
            if !varea.max_prot.contains(new) {
                return ControlFlow::Break(Some(Err(Errno::EACCES)));
            }
            if varea.prot == new && varea.prot.is_accessible() && !varea.locked {
                // Nothing would change (Linux returns early too).
                return ControlFlow::Break(Some(Ok(())));
            }
            let splits = usize::from(start < range.start) + usize::from(varea.end_exclusive > range.end_exclusive);
            if vareas + splits > MAX_VAREAS {
                return ControlFlow::Break(Some(Err(Errno::ENOMEM)));
            }
            if varea.locked {
                return ControlFlow::Break(None);
            }
            ControlFlow::Continue(())
        };
        self.vareas.change_inside_one(range, &mut EnvPause(env), decide, |start, varea| {
            let old = varea.prot;
            varea.set_prot(new);
            if !(old.is_accessible() && new.contains(old)) {
                reprotect_leaves(table, env, asid, core::iter::once((start, &*varea)));
            } else if !old.contains(Prot::WRITE) && new.contains(Prot::WRITE) && upgrades_now(range, new) {
                upgrade_now(table, env, asid, core::iter::once((start, &*varea)));
            }
        })
    }

    /// mprotect's checks of a range over several vareas: as Linux, varea
    /// by varea up to the first hole, a protection beyond a varea's
    /// maximum is EACCES, a hole ENOMEM; then ENOMEM when the splits at
    /// its ends would make too many vareas.
    fn check_protect_range(&self, range: VirtRange, new: Prot) -> Result<(), Errno> {
        let mut next = range.start;
        for (start, varea) in self.vareas.overlapping(range) {
            if start > next {
                break;
            }
            if !varea.max_prot.contains(new) {
                return Err(Errno::EACCES);
            }
            next = varea.end_exclusive;
        }
        if next < range.end_exclusive || self.too_many_splits(range) {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// madvise(2): MADV_DONTNEED drops the pages (the next access
    /// zero-fills private anonymous memory, re-reads the file for private
    /// file mappings, and sees the shared contents for shared ones);
    /// NORMAL, RANDOM, SEQUENTIAL, WILLNEED, HUGEPAGE and NOHUGEPAGE are
    /// accepted and do nothing; other advice is EINVAL. Over holes the
    /// advice applies to the mapped parts, then ENOMEM (as Linux).
    pub fn madvise(&mut self, addr: VirtAddr, len: u64, advice: Advice) -> Result<(), Errno> {
        match advice {
            Advice::Normal
            | Advice::Random
            | Advice::Sequential
            | Advice::WillNeed
            | Advice::DontNeed
            | Advice::HugePage
            | Advice::NoHugePage => {}
            _ => return Err(Errno::EINVAL),
        }
        if !addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        let len = page_align(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        if end == addr {
            return Ok(());
        }
        let range = VirtRange::new(addr, end);
        let covered = end <= USER_END && self.vareas.covers(range);
        if advice == Advice::DontNeed {
            let refused =
                self.vareas.overlapping(range).any(|(_, v)| v.locked || matches!(v.backing, Backing::Device { .. }));
            if refused {
                return Err(Errno::EINVAL);
            }
            if addr < USER_END {
                self.zap(VirtRange::new(addr, end.min(USER_END)));
            }
        }
        if covered {
            Ok(())
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// msync(2): with MS_SYNC or MS_ASYNC, writes the dirty pages of the
    /// shared file mappings in the range back through their pagers (both
    /// synchronously). MS_INVALIDATE alone checks only (the page cache is
    /// the only copy), and fails with EBUSY over locked vareas. Unknown
    /// flags are EINVAL.
    pub fn msync(&mut self, addr: VirtAddr, len: u64, flags: MsyncFlags) -> Result<(), Errno> {
        if !MsyncFlags::all().contains(flags) || !addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        if flags.contains(MsyncFlags::ASYNC | MsyncFlags::SYNC) {
            return Err(Errno::EINVAL);
        }
        let len = page_align(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end == addr {
            return Ok(());
        }
        let range = VirtRange::new(addr, end);
        if flags.contains(MsyncFlags::INVALIDATE) && self.vareas.overlapping(range).any(|(_, v)| v.locked) {
            return Err(Errno::EBUSY);
        }
        let covered = end <= USER_END && self.vareas.covers(range);
        if flags.intersects(MsyncFlags::SYNC | MsyncFlags::ASYNC) && addr < USER_END {
            self.write_back_range(VirtRange::new(addr, end.min(USER_END)))?;
        }
        if covered {
            Ok(())
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// Writes back the dirty pages of the shared file vareas in `range`.
    /// This space's writable entries there become read-only first (and the
    /// TLB forgets them), so later writes mark the pages dirty again.
    fn write_back_range(&mut self, range: VirtRange) -> Result<(), Errno> {
        let job = |(start, varea): (VirtAddr, &Varea<'e, E>)| match &varea.backing {
            Backing::Object { object, first_page, shared: true } if !object.is_anonymous() => {
                let sub = VirtRange::new(start.max(range.start), varea.end_exclusive.min(range.end_exclusive));
                let first = object_index(*first_page, start, sub.start);
                Some((Arc::clone(object), first, first + sub.size() / PAGE_SIZE, sub))
            }
            _ => None,
        };
        // Counted first: ENOMEM before anything changed, not a panic.
        let mut jobs = Vec::new();
        let count = self.vareas.overlapping(range).filter_map(job).count();
        jobs.try_reserve_exact(count).map_err(|_| Errno::ENOMEM)?;
        jobs.extend(self.vareas.overlapping(range).filter_map(job));
        if jobs.is_empty() {
            return Ok(());
        }
        {
            let (tlb, scope) = space_tlb(self.env, &self.asid);
            let mut pause = EnvPause(self.env);
            let mut editor =
                self.table.edit(&tlb, scope, |l| log::error!("mm: msync released {l:?}")).pausing(&mut pause);
            for (object, first, _, sub) in &jobs {
                let result = editor.update(*sub, |leaf: Leaf| {
                    if !Mode::of_desc(leaf.desc).is_writable() {
                        return leaf.desc;
                    }
                    object.end_writer(first + (leaf.va - sub.start) / PAGE_SIZE);
                    leaf.desc.with_permissions(Mode::Read.attrs(false))
                });
                log_edit("msync", result);
            }
        }
        let mut result = Ok(());
        for (object, first, end, ..) in &jobs {
            if let Err(e) = object.sync_range(*first, *end) {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }

    /// The page range mlock(2) and munlock(2) work on: `addr` rounded down,
    /// the length rounded up; `None` for an empty one.
    fn lock_range(addr: VirtAddr, len: u64) -> Result<Option<VirtRange>, Errno> {
        let start = addr.align_down(PAGE_SIZE);
        let len = len.checked_add(addr.page_offset()).and_then(page_align).ok_or(Errno::EINVAL)?;
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        Ok((end > start).then(|| VirtRange::new(start, end)))
    }

    /// Sets or clears `locked` on every varea in `range` (all mapped).
    fn set_locked(&mut self, range: VirtRange, locked: bool) {
        self.vareas.isolate(range);
        for (_, varea) in self.vareas.inside_mut(range) {
            varea.locked = locked;
        }
        self.vareas.merge_in(range, &mut EnvPause(self.env));
    }

    /// mlock(2): locks and populates the range; afterwards no access in it
    /// faults (see the module notes for the exceptions). Running out of
    /// memory while populating gives EAGAIN (as Linux), the lock stays.
    ///
    /// `limit` is the caller's `RLIMIT_MEMLOCK` in bytes, `None` for no
    /// limit (unlimited, or `CAP_IPC_LOCK`): a zero limit is EPERM, and
    /// ENOMEM when the locked total ([`Self::locked_bytes`], pages
    /// already locked in the range counted once) would exceed it.
    pub fn mlock(&mut self, addr: VirtAddr, len: u64, limit: Option<u64>) -> Result<(), Errno> {
        if limit == Some(0) {
            return Err(Errno::EPERM);
        }
        let Some(range) = Self::lock_range(addr, len)? else {
            return Ok(());
        };
        if let Some(limit) = limit {
            let already: u64 = self
                .vareas
                .overlapping(range)
                .filter(|(_, v)| v.locked)
                .map(|(start, v)| v.end_exclusive.min(range.end_exclusive) - start.max(range.start))
                .sum();
            let locked = (self.locked_bytes() + range.size() - already) >> PAGE_SHIFT;
            if locked > limit >> PAGE_SHIFT {
                return Err(Errno::ENOMEM);
            }
        }
        if range.end_exclusive > USER_END || !self.vareas.covers(range) || self.too_many_splits(range) {
            return Err(Errno::ENOMEM);
        }
        self.set_locked(range, true);
        self.populate(range).map_err(|_| Errno::EAGAIN)
    }

    /// Whether `bytes` more locked memory stay within the limit
    /// mlockall(MCL_FUTURE) was given (Linux's `mlock_future_check`).
    pub(super) fn may_lock_more(&self, bytes: u64) -> bool {
        self.lock_limit.is_none_or(|limit| (self.locked_bytes() + bytes) >> PAGE_SHIFT <= limit >> PAGE_SHIFT)
    }

    /// munlock(2).
    pub fn munlock(&mut self, addr: VirtAddr, len: u64) -> Result<(), Errno> {
        let Some(range) = Self::lock_range(addr, len)? else {
            return Ok(());
        };
        if range.end_exclusive > USER_END || !self.vareas.covers(range) || self.too_many_splits(range) {
            return Err(Errno::ENOMEM);
        }
        self.set_locked(range, false);
        Ok(())
    }

    /// mlockall(2): MCL_CURRENT locks (and, without MCL_ONFAULT, populates)
    /// every varea; MCL_FUTURE does the same for every later mapping and
    /// heap growth. Running out of memory while populating gives EAGAIN
    /// (Linux ignores it and returns 0). Unknown flags are EINVAL.
    ///
    /// `limit` is `RLIMIT_MEMLOCK` in bytes, as for [`Self::mlock`]: zero
    /// is EPERM; with MCL_CURRENT, ENOMEM when everything mapped would
    /// exceed it (Linux compares `total_vm`); with MCL_FUTURE it is kept,
    /// and a later mapping, brk growth or mremap growth that would take
    /// the locked total past it fails (EAGAIN; brk returns the old break).
    pub fn mlockall(&mut self, flags: MlockallFlags, limit: Option<u64>) -> Result<(), Errno> {
        if flags.is_empty() || !MlockallFlags::all().contains(flags) || flags == MlockallFlags::ONFAULT {
            return Err(Errno::EINVAL);
        }
        if limit == Some(0) {
            return Err(Errno::EPERM);
        }
        let pages_limit = limit.map(|l| l >> PAGE_SHIFT);
        if flags.contains(MlockallFlags::CURRENT) && pages_limit.is_some_and(|l| self.mapped_bytes() >> PAGE_SHIFT > l)
        {
            return Err(Errno::ENOMEM);
        }
        let mode = if flags.contains(MlockallFlags::ONFAULT) { LockMode::OnFault } else { LockMode::Populate };
        self.lock_future = flags.contains(MlockallFlags::FUTURE).then_some(mode);
        self.lock_limit = if self.lock_future.is_some() { limit } else { None };
        if !flags.contains(MlockallFlags::CURRENT) {
            return Ok(());
        }
        let all = VirtRange::new(VirtAddr::new(0), USER_END);
        for (_, varea) in self.vareas.iter_mut() {
            varea.locked = true;
        }
        self.vareas.merge_in(all, &mut EnvPause(self.env));
        if mode == LockMode::Populate {
            self.populate(all).map_err(|_| Errno::EAGAIN)?;
        }
        Ok(())
    }

    /// munlockall(2).
    pub fn munlockall(&mut self) {
        self.lock_future = None;
        self.lock_limit = None;
        for (_, varea) in self.vareas.iter_mut() {
            varea.locked = false;
        }
        self.vareas.merge_in(VirtRange::new(VirtAddr::new(0), USER_END), &mut EnvPause(self.env));
    }

    /// brk(2): moves the program break to `new` and returns the new break,
    /// or the old one when it cannot (below the initial break, into
    /// another mapping or the page below it, past user space). The heap is
    /// a private anonymous varea from the page after the initial break.
    pub fn brk(&mut self, new: VirtAddr) -> VirtAddr {
        let Some(brk) = self.brk else {
            return VirtAddr::new(0);
        };
        if new < brk.start {
            return brk.current;
        }
        let (Some(new_end), Some(old_end)) = (new.checked_align_up(PAGE_SIZE), brk.current.checked_align_up(PAGE_SIZE))
        else {
            return brk.current;
        };
        if old_end > USER_END {
            return brk.current;
        }
        let moved = Brk { current: new, ..brk };
        if new_end == old_end {
            self.brk = Some(moved);
            return new;
        }
        if new <= brk.current {
            self.unmap_range(VirtRange::new(new_end, old_end));
            self.brk = Some(moved);
            return new;
        }
        if new_end > USER_END {
            return brk.current;
        }
        // Keep a guard page below the next mapping, as Linux does.
        let guard_end = new_end.checked_add(PAGE_SIZE).map_or(USER_END, |g| g.min(USER_END));
        if self.vareas.any_in(VirtRange::new(old_end, guard_end)) {
            return brk.current;
        }
        let range = VirtRange::new(old_end, new_end);
        let lock = self.lock_future;
        if lock.is_some() && !self.may_lock_more(range.size()) {
            return brk.current;
        }
        let heap = Varea::new(new_end, Prot::READ | Prot::WRITE, Prot::ACCESS, Backing::Anon, lock.is_some());
        self.add_varea(range, heap);
        if lock == Some(LockMode::Populate) {
            // As Linux: a failure leaves the pages to later faults.
            let _ = self.populate(range);
        }
        self.brk = Some(moved);
        new
    }

    /// Maps the device frames `pa` (page aligned) at a free address for a
    /// driver: not reference counted, never swapped for other frames,
    /// Device-nGnRE memory. `prot` takes PROT_READ and PROT_WRITE;
    /// PROT_EXEC is refused (EACCES): devices are never executable.
    pub fn map_device(&mut self, pa: PhysRange, prot: Prot) -> Result<VirtAddr, Errno> {
        if pa.is_empty() || !pa.start.is_page_aligned() || !pa.end_exclusive.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        if !Prot::ACCESS.contains(prot) {
            return Err(Errno::EINVAL);
        }
        if prot.contains(Prot::EXEC) {
            return Err(Errno::EACCES);
        }
        let len = pa.size();
        if self.vareas.len() > MAX_VAREAS || len > USER_END - MMAP_MIN_ADDR {
            return Err(Errno::ENOMEM);
        }
        let start = self.free_area(len, VirtAddr::new(0)).ok_or(Errno::ENOMEM)?;
        let range = VirtRange::new(start, start + len);
        let attrs = Mode::choose(prot, true, false, false).attrs(true);
        self.table.map(range, pa.start, attrs).map_err(|_| Errno::ENOMEM)?;
        let backing = Backing::Device { pa: pa.start };
        // Devices are never executable, not even after mprotect.
        let max_prot = Prot::READ | Prot::WRITE;
        let varea = Varea::new(range.end_exclusive, prot, max_prot, backing, false);
        self.add_varea(range, varea);
        Ok(start)
    }
}

/// The plans of [`private_plan`], for every input, made at the first
/// mprotect: computing one per call was about 300 instructions.
static PRIVATE_PLANS: spin::Once<[[PrivateRetarget; Mode::KEYS]; PRIVATE_PLAN_INPUTS]> = spin::Once::new();

/// How many inputs [`private_plan`] has: the three access bits of the
/// protection, whether leaves within it stay, whether write and execute
/// may be together.
const PRIVATE_PLAN_INPUTS: usize = 32;

/// What mprotect's pass does to a private leaf, per state of its
/// permission bits ([`Mode::key`]), in a varea becoming `prot`:
/// `keep_within`, a leaf whose permissions `prot` still allows stays (gains
/// come at the next fault); `together`, the varea's pages may be writable
/// and executable at once.
fn private_plan(prot: Prot, keep_within: bool, together: bool) -> &'static [PrivateRetarget; Mode::KEYS] {
    let index = |prot: Prot, keep_within: bool, together: bool| {
        prot.access().bits() as usize | usize::from(keep_within) << 3 | usize::from(together) << 4
    };
    let plans = PRIVATE_PLANS.call_once(|| {
        let mut plans = [[PrivateRetarget::Keep; Mode::KEYS]; PRIVATE_PLAN_INPUTS];
        for access in 0..8 {
            let prot = Prot::from_bits_retain(access);
            for (keep_within, together) in [(false, false), (false, true), (true, false), (true, true)] {
                plans[index(prot, keep_within, together)] =
                    core::array::from_fn(|key| private_retarget(Mode::of_key(key), prot, keep_within, together));
            }
        }
        plans
    });
    &plans[index(prot, keep_within, together)]
}

/// [`private_plan`] for a leaf in mode `current`.
fn private_retarget(current: Mode, prot: Prot, keep_within: bool, together: bool) -> PrivateRetarget {
    let to = |write_ok| {
        let target = Mode::choose(prot, write_ok, current == Mode::ReadExec, together);
        (target != current).then_some(target)
    };
    if keep_within && current.within(prot) {
        PrivateRetarget::Keep
    } else if prot.contains(Prot::WRITE) && to(true) != to(false) {
        PrivateRetarget::ByOwnership { alone: to(true), shared: to(false) }
    } else {
        to(false).map_or(PrivateRetarget::Keep, PrivateRetarget::To)
    }
}

/// What mprotect's pass does to a private leaf in one state of its
/// permission bits ([`Mode::key`]).
#[derive(Clone, Copy)]
enum PrivateRetarget {
    /// It stays as it is.
    Keep,
    /// It gets this mode.
    To(Mode),
    /// It gets `alone` when the process holds its frame alone, else
    /// `shared` (`None`: it stays).
    ByOwnership { alone: Option<Mode>, shared: Option<Mode> },
}

/// `alone` when the process holds `leaf`'s frame alone, else `shared`.
/// Out of line, so that the pass around it inlines its closure.
#[inline(never)]
fn by_ownership(
    frames: &BuddyAllocator<'static>,
    leaf: &Leaf,
    alone: Option<Mode>,
    shared: Option<Mode>,
) -> Option<Mode> {
    if exclusive(frames, leaf.pa()) {
        alone
    } else {
        shared
    }
}

/// Whether mprotect giving `new` to `range` upgrades its pages at once:
/// read-write given to at most [`EAGER_UPGRADE_PAGES`] pages.
fn upgrades_now(range: VirtRange, new: Prot) -> bool {
    range.size() <= EAGER_UPGRADE_PAGES * PAGE_SIZE && new == Prot::READ | Prot::WRITE
}

/// Gives write permission now to the pages of `vareas` (a few, just made
/// read-write) that write fault-around would give it to at the first
/// write: present, read-only and the process's alone, in private vareas.
fn upgrade_now<'v, 'e: 'v, E: MmEnv>(
    table: &mut Table<'e, E>,
    env: &'e E,
    asid: &AsidContext,
    vareas: impl Iterator<Item = (VirtAddr, &'v Varea<'e, E>)>,
) {
    let (tlb, scope) = space_tlb(env, asid);
    let frames = env.frames();
    let mut pause = EnvPause(env);
    for (start, varea) in vareas {
        if matches!(varea.backing, Backing::Anon | Backing::Object { shared: false, .. }) {
            let sub = VirtRange::new(start, varea.end_exclusive);
            write_around(table, frames, sub, &tlb, scope, &mut pause);
        }
    }
}

/// Gives every leaf of `vareas` (in address order) the mode its
/// varea's protection allows, in one pass over the tables per varea and
/// one TLB batch.
fn reprotect_leaves<'v, 'e: 'v, E: MmEnv>(
    table: &mut Table<'e, E>,
    env: &'e E,
    asid: &AsidContext,
    vareas: impl Iterator<Item = (VirtAddr, &'v Varea<'e, E>)>,
) {
    let (tlb, scope) = space_tlb(env, asid);
    let frames = env.frames();
    let mut pause = EnvPause(env);
    let mut editor = table.edit(&tlb, scope, |l| log::error!("mm: mprotect released {l:?}")).pausing(&mut pause);
    for (start, varea) in vareas {
        let sub = VirtRange::new(start, varea.end_exclusive);
        let device = matches!(varea.backing, Backing::Device { .. });
        let prot = varea.prot;
        let may_write = prot.contains(Prot::WRITE);
        let together = varea.wx_together;
        // Indexed by `Mode as usize`: the modes in declaration order.
        let models = Mode::ALL.map(|m| m.model(device));
        let retarget = |leaf: &Leaf, target: Mode| {
            if target.is_executable() {
                env.sync_icache(leaf.pa());
            }
            leaf.desc.with_permissions_of(models[target as usize])
        };
        // Outside locked vareas, a leaf whose permissions the new
        // protection still allows stays as it is: gains come at the
        // next fault. Locked vareas must not fault, so they change now.
        let keep_within = !varea.locked;
        let result = match &varea.backing {
            // Private memory, the common case: what becomes of a leaf
            // depends on its permission bits and, where write may be
            // granted, on whether the process holds its frame alone.
            // Decided once per state of the bits (a table made once
            // for every protection, not per call), so that the closure
            // stays small enough for the pass to inline.
            Backing::Anon | Backing::Object { shared: false, .. } => {
                let plan = private_plan(prot, keep_within, together);
                editor.update(sub, |leaf: Leaf| {
                    let target = match plan[Mode::key(leaf.desc)] {
                        PrivateRetarget::Keep => return leaf.desc,
                        PrivateRetarget::To(target) => Some(target),
                        PrivateRetarget::ByOwnership { alone, shared } => by_ownership(frames, &leaf, alone, shared),
                    };
                    target.map_or(leaf.desc, |target| retarget(&leaf, target))
                })
            }
            _ => editor.update(sub, |leaf: Leaf| {
                let current = Mode::of_desc(leaf.desc);
                if keep_within && current.within(prot) {
                    return leaf.desc;
                }
                let write_ok = may_write && leaf_write_ok(env, varea, leaf.pa(), current);
                let target = Mode::choose(prot, write_ok, current == Mode::ReadExec, together);
                if target == current {
                    return leaf.desc;
                }
                if let Backing::Object { object, first_page, shared: true } = &varea.backing {
                    if current.is_writable() && !target.is_writable() {
                        object.end_writer(object_index(*first_page, start, leaf.va));
                    }
                }
                retarget(&leaf, target)
            }),
        };
        log_edit("mprotect", result);
    }
}
