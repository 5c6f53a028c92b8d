//! Physical frames: the allocator interface the rest of `mm` is written
//! against, and the buddy allocator that implements it.

use crate::addr::PhysAddr;

/// Why a frame allocation failed. Never a panic: callers turn this into
/// `-ENOMEM`, SIGBUS or a failed boot step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// No free run of the requested order.
    OutOfMemory,
    /// The order is above the allocator's largest.
    OrderTooLarge,
}

/// A source of physically contiguous, naturally aligned runs of `2^order`
/// frames. Implementations lock internally, so callers share it by `&`.
pub trait FrameAllocator {
    /// Allocates `2^order` contiguous frames, aligned to their size. The
    /// contents are unspecified; the caller zeroes what it exposes.
    fn alloc_frames(&self, order: u32) -> Result<PhysAddr, AllocError>;

    /// Returns a run that `alloc_frames(order)` handed out.
    fn free_frames(&self, start: PhysAddr, order: u32);

    /// One frame.
    fn alloc_frame(&self) -> Result<PhysAddr, AllocError> {
        self.alloc_frames(0)
    }

    /// Returns a frame that `alloc_frame` handed out.
    fn free_frame(&self, frame: PhysAddr) {
        self.free_frames(frame, 0)
    }
}

pub mod buddy;
pub mod meta;

pub use buddy::{BuddyAllocator, InitError, RefCursor, MAX_ORDER};
pub use meta::{FrameFlags, FrameMeta, RefError};
