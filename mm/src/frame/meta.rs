//! Per-frame metadata: one `FrameMeta` for every frame the buddy allocator
//! manages, holding a reference count, flags and the allocator's free-list
//! links.
//!
//! Everything is atomic so the kernel can read and update reference counts
//! and usage flags without the allocator's lock; the links and the
//! allocator-owned flags (`FREE`, `HEAD`) and the order change only under
//! that lock.

use core::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU8, Ordering};

use bitflags::bitflags;

bitflags! {
    /// What a frame is and what it is used for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct FrameFlags: u16 {
        /// Part of a free block (set on every frame of the block). Owned by
        /// the allocator.
        const FREE = 1 << 0;
        /// First frame of a block, free or allocated; the block's order is
        /// recorded in this frame. Owned by the allocator.
        const HEAD = 1 << 1;
        /// Holds a translation table.
        const PAGE_TABLE = 1 << 2;
        /// Belongs to the page cache.
        const PAGE_CACHE = 1 << 3;
        /// Page-cache contents are newer than the backing file.
        const DIRTY = 1 << 4;
        /// Under I/O or being changed; others wait or back off.
        const LOCKED = 1 << 5;
        /// Must stay resident and in place (mlock, DMA).
        const PINNED = 1 << 6;

        /// The flags the allocator owns; users cannot set or clear them.
        const ALLOCATOR = Self::FREE.bits() | Self::HEAD.bits();
        /// The flags users of allocated frames may set and clear.
        const USER = Self::PAGE_TABLE.bits()
            | Self::PAGE_CACHE.bits()
            | Self::DIRTY.bits()
            | Self::LOCKED.bits()
            | Self::PINNED.bits();
    }
}

/// Why a reference-count update was refused. The count is left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefError {
    /// The address is not a frame of the allocator (a hole, a device).
    NotManaged,
    /// The count is 0: the frame is free or being freed, so no new
    /// reference may be taken and none can be dropped.
    NotReferenced,
    /// The count would overflow.
    Overflow,
}

/// "No frame" in a free-list link.
pub(super) const NO_FRAME: u32 = u32::MAX;

/// Metadata of one physical frame (16 bytes).
#[repr(C)]
pub struct FrameMeta {
    refcount: AtomicU32,
    flags: AtomicU16,
    /// Order of the block this frame heads (meaningful with `HEAD`).
    order: AtomicU8,
    /// Free-list links: global frame indices, `NO_FRAME` at the ends.
    next: AtomicU32,
    prev: AtomicU32,
}

impl FrameMeta {
    /// A free non-head frame with no links.
    pub(super) const fn new() -> Self {
        Self {
            refcount: AtomicU32::new(0),
            flags: AtomicU16::new(FrameFlags::FREE.bits()),
            order: AtomicU8::new(0),
            next: AtomicU32::new(NO_FRAME),
            prev: AtomicU32::new(NO_FRAME),
        }
    }

    /// The current reference count (0 for a free frame; an allocated frame
    /// starts at 1).
    pub fn refcount(&self) -> u32 {
        self.refcount.load(Ordering::Acquire)
    }

    /// Takes one more reference and returns the new count. Refused on a
    /// count of 0, so a lookup racing with the last `dec_ref` cannot revive
    /// a frame that is about to be freed.
    pub fn inc_ref(&self) -> Result<u32, RefError> {
        self.refcount
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| match n {
                0 => None,
                n => n.checked_add(1),
            })
            .map(|old| old + 1)
            .map_err(|old| if old == 0 { RefError::NotReferenced } else { RefError::Overflow })
    }

    /// Takes one more reference for a holder of one (the count is at
    /// least 1 and cannot reach 0 meanwhile, as fork's sharing of a mapped
    /// page): one atomic add rather than [`Self::inc_ref`]'s checked
    /// update. Refused, the count unchanged, only on overflow.
    #[inline]
    pub fn dup_ref(&self) -> Result<(), RefError> {
        // Relaxed as for `Arc::clone`: the holder's reference already
        // orders everything the new one may see.
        let old = self.refcount.fetch_add(1, Ordering::Relaxed);
        debug_assert_ne!(old, 0, "dup_ref of an unreferenced frame");
        if old == u32::MAX {
            self.refcount.fetch_sub(1, Ordering::Relaxed);
            return Err(RefError::Overflow);
        }
        Ok(())
    }

    /// Drops one reference and returns the new count; at 0 the caller owns
    /// the frame and frees it.
    #[inline]
    pub fn dec_ref(&self) -> Result<u32, RefError> {
        // Release publishes this holder's writes; Acquire lets the holder
        // that reaches 0 see every other holder's writes before freeing.
        self.refcount
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1))
            .map(|old| old - 1)
            .map_err(|_| RefError::NotReferenced)
    }

    /// [`Self::dec_ref`] for a holder of a reference: one atomic
    /// subtraction rather than a checked update. Returns whether that was
    /// the last reference (the caller owns the frame and frees it).
    #[inline(always)]
    pub fn put_ref(&self) -> Result<bool, RefError> {
        // Release and Acquire as in `dec_ref` (and `Arc`'s drop).
        let old = self.refcount.fetch_sub(1, Ordering::Release);
        match old {
            1 => {
                fence(Ordering::Acquire);
                Ok(true)
            }
            0 => {
                // Nobody held a reference: undo (a bug somewhere).
                self.refcount.fetch_add(1, Ordering::Relaxed);
                Err(RefError::NotReferenced)
            }
            _ => Ok(false),
        }
    }

    /// All flags, allocator-owned ones included.
    pub fn flags(&self) -> FrameFlags {
        FrameFlags::from_bits_truncate(self.flags.load(Ordering::Acquire))
    }

    /// Sets the `USER` part of `flags` and returns the flags before; a
    /// test-and-set (e.g. of `LOCKED`) checks the returned value.
    pub fn insert_flags(&self, flags: FrameFlags) -> FrameFlags {
        let old = self.flags.fetch_or((flags & FrameFlags::USER).bits(), Ordering::AcqRel);
        FrameFlags::from_bits_truncate(old)
    }

    /// Clears the `USER` part of `flags` and returns the flags before.
    pub fn remove_flags(&self, flags: FrameFlags) -> FrameFlags {
        let old = self.flags.fetch_and(!(flags & FrameFlags::USER).bits(), Ordering::AcqRel);
        FrameFlags::from_bits_truncate(old)
    }

    /// Whether the frame is part of a free block.
    pub fn is_free(&self) -> bool {
        self.flags().contains(FrameFlags::FREE)
    }

    /// The order of the block this frame heads, free or allocated; `None`
    /// for a frame inside a block.
    pub fn block_order(&self) -> Option<u32> {
        self.flags().contains(FrameFlags::HEAD).then(|| u32::from(self.order.load(Ordering::Relaxed)))
    }

    // Allocator-side accessors; called with the allocator's lock held, which
    // orders them, so Relaxed suffices except where users read concurrently.

    pub(super) fn set_block(&self, flags: FrameFlags, order: u32) {
        self.order.store(order as u8, Ordering::Relaxed);
        self.flags.store(flags.bits(), Ordering::Release);
    }

    /// Claims an allocated block's head as free (`FREE`, nothing else):
    /// false, and no change, when it is free already or no head. Of two
    /// racing claims one wins, with no lock held.
    pub(super) fn claim_free(&self) -> bool {
        self.flags
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                let flags = FrameFlags::from_bits_truncate(bits);
                (flags.contains(FrameFlags::HEAD) && !flags.contains(FrameFlags::FREE))
                    .then_some(FrameFlags::FREE.bits())
            })
            .is_ok()
    }

    pub(super) fn set_flags(&self, flags: FrameFlags) {
        self.flags.store(flags.bits(), Ordering::Release);
    }

    pub(super) fn set_refcount(&self, count: u32) {
        self.refcount.store(count, Ordering::Release);
    }

    pub(super) fn raw_order(&self) -> u32 {
        u32::from(self.order.load(Ordering::Relaxed))
    }

    pub(super) fn next(&self) -> u32 {
        self.next.load(Ordering::Relaxed)
    }

    pub(super) fn prev(&self) -> u32 {
        self.prev.load(Ordering::Relaxed)
    }

    pub(super) fn set_next(&self, index: u32) {
        self.next.store(index, Ordering::Relaxed);
    }

    pub(super) fn set_prev(&self, index: u32) {
        self.prev.store(index, Ordering::Relaxed);
    }
}

impl core::fmt::Debug for FrameMeta {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameMeta")
            .field("refcount", &self.refcount())
            .field("flags", &self.flags())
            .field("block_order", &self.block_order())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_16_bytes() {
        assert_eq!(core::mem::size_of::<FrameMeta>(), 16);
    }

    #[test]
    fn refcount_rules() {
        let m = FrameMeta::new();
        assert_eq!(m.inc_ref(), Err(RefError::NotReferenced));
        assert_eq!(m.dec_ref(), Err(RefError::NotReferenced));
        m.set_refcount(1);
        assert_eq!(m.inc_ref(), Ok(2));
        assert_eq!(m.dec_ref(), Ok(1));
        assert_eq!(m.dec_ref(), Ok(0));
        assert_eq!(m.refcount(), 0);
        m.set_refcount(u32::MAX);
        assert_eq!(m.inc_ref(), Err(RefError::Overflow));
        assert_eq!(m.refcount(), u32::MAX);
    }

    #[test]
    fn user_flags_cannot_touch_allocator_flags() {
        let m = FrameMeta::new();
        m.set_block(FrameFlags::HEAD, 3);
        let old = m.insert_flags(FrameFlags::LOCKED | FrameFlags::FREE);
        assert_eq!(old, FrameFlags::HEAD);
        assert_eq!(m.flags(), FrameFlags::HEAD | FrameFlags::LOCKED);
        assert!(m.insert_flags(FrameFlags::LOCKED).contains(FrameFlags::LOCKED));
        m.remove_flags(FrameFlags::all());
        assert_eq!(m.flags(), FrameFlags::HEAD);
        assert_eq!(m.block_order(), Some(3));
        assert!(!m.is_free());
    }
}
