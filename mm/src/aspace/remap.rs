//! mremap(2), as Linux 6.1's `mm/mremap.c`: shrinking unmaps the tail,
//! growing extends the varea in place when the pages after it are free,
//! and otherwise (with MREMAP_MAYMOVE) the mapping moves: its page-table
//! entries and its varea go to the new place, frames keeping their
//! identity and reference counts, file offsets and mlock state kept.
//!
//! Every check is made before anything changes, and the table pages the
//! destination may need are taken from the allocator first, so a failure
//! leaves the space as it was. (Linux unmaps the MREMAP_FIXED destination
//! and the shrunk tail before checks that can still fail.)
//!
//! Choices, where Aspen differs from Linux:
//! - A zero `old_len` duplicates a shared mapping (as Linux: a second
//!   mapping of the same object and offset, `new_len` long); for a
//!   private one it is EINVAL (as Linux).
//! - Device vareas (Linux's `VM_PFNMAP`) never move (EINVAL); growing
//!   them is EFAULT and MREMAP_DONTUNMAP EINVAL, as in Linux.
//! - MREMAP_DONTUNMAP moves any varea but a device one (Linux since 5.13):
//!   the old range keeps its varea, empty and unlocked, and faults in
//!   again from its backing (zero pages for private anonymous memory).

use alloc::vec::Vec;

use aspen_abi::mman::MremapFlags;

use super::varea::Backing;
use super::{page_align, space_tlb, AddressSpace, MmEnv, MAX_VAREAS, MMAP_MIN_ADDR, USER_END};
use crate::addr::{VirtAddr, VirtRange, PAGE_SHIFT, PAGE_SIZE};
use crate::errno::Errno;
use crate::paging::Mapping;

/// How many table pages mapping 4 KiB pages at `pages` (ascending) may
/// need at most: one L3 table per 2 MiB, one L2 per 1 GiB, one L1 per
/// 512 GiB touched, as if none existed yet.
fn tables_needed(pages: impl Iterator<Item = VirtAddr>) -> usize {
    let mut last: Option<u64> = None;
    let mut count = 0;
    for va in pages {
        let va = va.as_u64();
        if let Some(prev) = last {
            count += [21, 30, 39].iter().filter(|&&shift| prev >> shift != va >> shift).count();
        } else {
            count += 3;
        }
        last = Some(va);
    }
    count
}

impl<E: MmEnv> AddressSpace<'_, E> {
    /// mremap(2): resizes the mapping at `old_addr` (page aligned) from
    /// `old_len` to `new_len` bytes (both rounded up to pages) and returns
    /// where it is now. `flags`: MREMAP_MAYMOVE lets it move when it cannot
    /// grow in place; MREMAP_FIXED moves it to `new_addr` exactly,
    /// replacing what is there; MREMAP_DONTUNMAP moves it (same length)
    /// and leaves the old range mapped and empty. A zero `old_len` makes a
    /// second mapping of a shared mapping's pages.
    ///
    /// Errnos as Linux 6.1: EINVAL for bad flags, alignment, a zero
    /// `new_len`, a zero `old_len` on a private mapping, overlapping FIXED
    /// ranges; EFAULT when `old_addr` is unmapped or a growing or moving
    /// range leaves its varea; ENOMEM when it cannot grow in place and may
    /// not move, or there is no room; EPERM for a FIXED destination below
    /// [`MMAP_MIN_ADDR`]; EAGAIN past the locked-memory limit of
    /// mlockall(MCL_FUTURE). On any error nothing has changed.
    pub fn mremap(
        &mut self,
        old_addr: VirtAddr,
        old_len: u64,
        new_len: u64,
        flags: MremapFlags,
        new_addr: VirtAddr,
    ) -> Result<VirtAddr, Errno> {
        if !MremapFlags::all().contains(flags) {
            return Err(Errno::EINVAL);
        }
        let may_move = flags.contains(MremapFlags::MAYMOVE);
        if flags.contains(MremapFlags::FIXED) && !may_move {
            return Err(Errno::EINVAL);
        }
        if flags.contains(MremapFlags::DONTUNMAP) && (!may_move || old_len != new_len) {
            return Err(Errno::EINVAL);
        }
        if !old_addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        // PAGE_ALIGN wraps to zero in Linux.
        let old_len = page_align(old_len).unwrap_or(0);
        let new_len = page_align(new_len).unwrap_or(0);
        if new_len == 0 {
            return Err(Errno::EINVAL);
        }
        if self.vareas.find(old_addr).is_none() {
            return Err(Errno::EFAULT);
        }
        if flags.intersects(MremapFlags::FIXED | MremapFlags::DONTUNMAP) {
            return self.mremap_to(old_addr, old_len, new_len, flags, new_addr);
        }
        if old_len >= new_len {
            if old_len > new_len {
                let tail = old_addr.checked_add(new_len).ok_or(Errno::EINVAL)?;
                self.munmap(tail, old_len - new_len)?;
            }
            return Ok(old_addr);
        }
        self.check_resize(old_addr, old_len, new_len, flags)?;
        let (start, varea) = self.vareas.find(old_addr).ok_or(Errno::EFAULT)?;
        let old_end = old_addr + old_len;
        if old_end == varea.end_exclusive {
            let grown = old_addr
                .checked_add(new_len)
                .filter(|end| *end <= USER_END && !self.vareas.any_in(VirtRange::new(old_end, *end)));
            if let Some(new_end) = grown {
                let locked = varea.locked;
                self.vareas.grow(start, new_end);
                self.note_size();
                self.vareas.merge_in(VirtRange::new(start, new_end), &mut crate::paging::NoPause);
                if locked {
                    // As Linux: a failure leaves the pages to later faults.
                    let _ = self.populate(VirtRange::new(old_end, new_end));
                }
                return Ok(old_addr);
            }
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        if self.vareas.len() >= MAX_VAREAS - 3 {
            return Err(Errno::ENOMEM);
        }
        let dest = self.free_area(new_len, VirtAddr::new(0)).ok_or(Errno::ENOMEM)?;
        self.move_mapping(old_addr, old_len, new_len, dest, false, false)
    }

    /// The MREMAP_FIXED and MREMAP_DONTUNMAP path (Linux's `mremap_to`).
    fn mremap_to(
        &mut self,
        old_addr: VirtAddr,
        old_len: u64,
        new_len: u64,
        flags: MremapFlags,
        new_addr: VirtAddr,
    ) -> Result<VirtAddr, Errno> {
        if !new_addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        if new_len > USER_END.as_u64() || new_addr.as_u64() > USER_END.as_u64() - new_len {
            return Err(Errno::EINVAL);
        }
        let old_end = old_addr.as_u64().saturating_add(old_len);
        if old_end > new_addr.as_u64() && new_addr.as_u64() + new_len > old_addr.as_u64() {
            return Err(Errno::EINVAL);
        }
        if self.vareas.len() + 2 >= MAX_VAREAS - 3 {
            return Err(Errno::ENOMEM);
        }
        let fixed = flags.contains(MremapFlags::FIXED);
        // Linux shrinks first, then checks the rest with the new length.
        let moved = old_len.min(new_len);
        self.check_resize(old_addr, moved, new_len, flags)?;
        let dest = if fixed {
            if new_addr < MMAP_MIN_ADDR {
                return Err(Errno::EPERM);
            }
            new_addr
        } else {
            self.free_area(new_len, new_addr).ok_or(Errno::ENOMEM)?
        };
        self.move_mapping(old_addr, old_len, new_len, dest, fixed, flags.contains(MremapFlags::DONTUNMAP))
    }

    /// The checks of Linux's `vma_to_resize` for the `old_len` bytes at
    /// `old_addr` growing to `new_len`.
    fn check_resize(&self, old_addr: VirtAddr, old_len: u64, new_len: u64, flags: MremapFlags) -> Result<(), Errno> {
        let (start, varea) = self.vareas.find(old_addr).ok_or(Errno::EFAULT)?;
        if old_len == 0 && !varea.is_shared() {
            return Err(Errno::EINVAL);
        }
        let device = matches!(varea.backing, Backing::Device { .. });
        if flags.contains(MremapFlags::DONTUNMAP) && device {
            return Err(Errno::EINVAL);
        }
        if old_len > varea.end_exclusive - old_addr {
            return Err(Errno::EFAULT);
        }
        if new_len == old_len {
            return Ok(());
        }
        if let Backing::Object { first_page, .. } = &varea.backing {
            let pgoff = first_page + (old_addr - start) / PAGE_SIZE;
            if pgoff.checked_add(new_len >> PAGE_SHIFT).is_none() {
                return Err(Errno::EINVAL);
            }
        }
        if device {
            return Err(Errno::EFAULT);
        }
        if varea.locked && !self.may_lock_more(new_len - old_len) {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    /// Moves the mapping at `old_addr` (its first `min(old_len, new_len)`
    /// bytes, inside one varea: checked) to `dest`, `new_len` long; the
    /// rest of the old range is unmapped. With `replace`, whatever is at
    /// the destination goes first; with `keep_old`, the old range stays
    /// mapped, empty and unlocked. All checks are made: only running out
    /// of memory for the leaf list or table pages can refuse it (ENOMEM),
    /// before anything changes.
    fn move_mapping(
        &mut self,
        old_addr: VirtAddr,
        old_len: u64,
        new_len: u64,
        dest: VirtAddr,
        replace: bool,
        keep_old: bool,
    ) -> Result<VirtAddr, Errno> {
        let moved = old_len.min(new_len);
        let src = VirtRange::new(old_addr, old_addr + moved);
        let dest_range = VirtRange::new(dest, dest + new_len);
        let (start, varea) = self.vareas.find(old_addr).ok_or(Errno::EFAULT)?;
        if matches!(varea.backing, Backing::Device { .. }) {
            return Err(Errno::EINVAL);
        }
        let locked = varea.locked;
        let mut piece = varea.clone();
        if let Backing::Object { first_page, .. } = &mut piece.backing {
            *first_page += (old_addr - start) / PAGE_SIZE;
        }
        piece.end_exclusive = dest_range.end_exclusive;

        // The source's leaves, and the table pages their new places need.
        let mut count = 0;
        self.table.visit_leaves(src, |_| count += 1);
        let mut leaves: Vec<Mapping> = Vec::new();
        leaves.try_reserve_exact(count).map_err(|_| Errno::ENOMEM)?;
        self.table.visit_leaves(src, |leaf| leaves.push(leaf.mapping()));
        let pages = leaves.iter().flat_map(|leaf| {
            let first = dest + (leaf.va - src.start);
            (0..leaf.size.bytes() / PAGE_SIZE).map(move |i| first + i * PAGE_SIZE)
        });
        let mut reserve = self.table.reserve_tables(tables_needed(pages)).map_err(|_| Errno::ENOMEM)?;

        // From here on nothing fails.
        if old_len > new_len {
            let tail_end = old_addr.as_u64().saturating_add(old_len).min(USER_END.as_u64());
            self.unmap_range(VirtRange::new(src.end_exclusive, VirtAddr::new(tail_end)));
        }
        if replace {
            self.unmap_range(dest_range);
        }
        {
            let (tlb, scope) = space_tlb(self.env, &self.asid);
            if !leaves.is_empty() {
                match self.table.cursor(&tlb, scope, dest_range) {
                    Ok(mut cursor) => {
                        for leaf in &leaves {
                            let first = dest + (leaf.va - src.start);
                            for i in 0..leaf.size.bytes() / PAGE_SIZE {
                                let mapped = cursor.jump(first + i * PAGE_SIZE).and_then(|()| {
                                    cursor.map_reserved(leaf.pa + i * PAGE_SIZE, leaf.attrs, &mut reserve)
                                });
                                if let Err(e) = mapped {
                                    log::error!("mm: mremap could not map {leaf:?} at its new place: {e:?}");
                                }
                            }
                        }
                    }
                    Err(e) => log::error!("mm: mremap destination {dest_range:?} refused: {e:?}"),
                }
            }
            // The frames now belong to the new entries: the old ones go
            // without releasing anything, once the TLB forgot them.
            let mut editor = self.table.edit(&tlb, scope, |_| {});
            if let Err(e) = editor.unmap(src) {
                log::error!("mm: mremap could not unmap {src:?}: {e:?}");
            }
        }
        drop(reserve);
        if src.is_empty() {
            // A duplicate (zero `old_len`): the old mapping stays whole.
        } else if keep_old {
            self.vareas.split_at(src.start);
            self.vareas.split_at(src.end_exclusive);
            if let Some((_, old)) = self.vareas.find_mut(src.start) {
                old.locked = false;
            }
            self.vareas.merge_in(src, &mut crate::paging::NoPause);
        } else {
            self.vareas.isolate(src);
            self.vareas.remove_range(src, |_, _| {});
        }
        self.add_varea(dest_range, piece);
        if locked && new_len > moved {
            // As Linux: a failure leaves the pages to later faults.
            let _ = self.populate(VirtRange::new(dest + moved, dest_range.end_exclusive));
        }
        Ok(dest)
    }
}
