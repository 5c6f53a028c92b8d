//! Faults resolved with the address space shared: the threads of one space
//! fault on several CPUs at once, each holding the space only as a shared
//! reference, while everything that changes the space's layout holds it
//! exclusively (`&mut`, the kernel's space lock).
//!
//! What a shared fault may do is narrow, so that the few pieces it writes
//! can be guarded apart: it maps a zeroed frame where a page of private
//! anonymous memory has no entry (a first touch), or finds the page already
//! allows the access (another CPU resolved it meanwhile, or the fault was
//! spurious). Everything else (copy-on-write, file pages, permission
//! changes, write fault-around, W^X flips, errors) is answered
//! [`NeedsExclusive`], and the caller takes the space exclusively and
//! resolves it as before.
//!
//! What guards what while faults share the space:
//! - the varea map, the brk and every other field: read only (changing
//!   them needs `&mut`, which waits for shared faults to end);
//! - the translation table: [`AddressSpace::table_lock`], taken only to
//!   walk to the page, look and install (the frame is zeroed before, with
//!   no lock held, so faults of different pages overlap their zeroing);
//! - the resident count: an atomic;
//! - frames: the allocator's own lock, and each frame's atomic reference
//!   count.
//!
//! Two CPUs faulting on the same page both zero a frame; the one that takes
//! the table lock second finds the entry made and gives its frame back
//! (counted in `MmStats::shared_fault_races`): one frame is mapped, none
//! leaks.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::Ordering;

use super::fault::{prot_allows, Mode};
use super::varea::Backing;
use super::{space_tlb, AddressSpace, FaultKind, MmEnv, USER_END};
use crate::addr::{VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::FrameAllocator;
use crate::paging::zero_frame;

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

    /// The table, for a shared fault holding the table lock.
    ///
    /// # Safety
    /// The caller holds [`AddressSpace::table_lock`], and every other user
    /// of the table meanwhile is a shared fault, which takes the lock too.
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
        // fault only inside other shared faults (`fault_shared`'s
        // contract), which reach the table through `locked`, never this.
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

impl<E: MmEnv> AddressSpace<'_, E> {
    /// Resolves a fault of `kind` at `va` holding the space only as a
    /// shared reference, so that faults of the space's threads on several
    /// CPUs run at once: maps a zeroed frame at a missing page of private
    /// anonymous memory, or returns `Ok` when the page's entry already
    /// allows the access. Anything else is [`NeedsExclusive`]: nothing was
    /// changed, and the caller resolves the fault with
    /// [`Self::handle_fault`]. Counted as `handle_fault` counts.
    ///
    /// # Safety
    /// While this runs, every other access to the space is another call of
    /// `fault_shared`: whoever uses the space otherwise (with `&mut`, or
    /// with `&` for any other method) first waits for the shared faults
    /// running to end and keeps new ones out until it is done.
    pub unsafe fn fault_shared(&self, va: VirtAddr, kind: FaultKind) -> Result<(), NeedsExclusive> {
        if va >= USER_END {
            return Err(NeedsExclusive);
        }
        let Some((_, varea)) = self.vareas.find(va) else { return Err(NeedsExclusive) };
        if !matches!(varea.backing, Backing::Anon) || !prot_allows(varea.prot, kind) {
            return Err(NeedsExclusive);
        }
        let mode = Mode::for_fault(varea, kind, true);
        let page = va.align_down(PAGE_SIZE);
        let frames = self.env.frames();
        // Zeroed before the lock: other faults' walks do not wait for it.
        let frame = frames.alloc_frame().map_err(|_| NeedsExclusive)?;
        // SAFETY: a fresh frame from the pool, ours alone.
        unsafe { zero_frame(self.env.mem(), frame) };
        if mode.is_executable() {
            self.env.sync_icache(frame);
        }
        let (tlb, scope) = space_tlb(self.env, &self.asid);
        let outcome = {
            let _guard = self.table_lock.lock();
            // SAFETY: the table lock is held, and the caller's contract
            // keeps every other user of the table a shared fault.
            let table = unsafe { self.table.locked() };
            match table.cursor(&tlb, scope, VirtRange::new(page, page + PAGE_SIZE)) {
                Err(_) => Err(NeedsExclusive),
                Ok(mut cursor) => match cursor.query() {
                    // Out of table pages: the exclusive path runs out too,
                    // and asks the OOM killer.
                    None => cursor.map(frame, mode.attrs(false)).map(|()| true).map_err(|_| NeedsExclusive),
                    // Another CPU mapped it meanwhile, or the fault was
                    // spurious.
                    Some(leaf) if Mode::of_desc(leaf.desc).allows(kind) => Ok(false),
                    Some(_) => Err(NeedsExclusive),
                },
            }
        };
        let stats = self.env.stats();
        match outcome {
            Ok(true) => {
                self.resident.fetch_add(1, Ordering::Relaxed);
                stats.fault();
                stats.shared_fault(false);
                Ok(())
            }
            Ok(false) => {
                frames.free_frame(frame);
                stats.fault();
                stats.shared_fault(true);
                Ok(())
            }
            Err(e) => {
                frames.free_frame(frame);
                Err(e)
            }
        }
    }
}
