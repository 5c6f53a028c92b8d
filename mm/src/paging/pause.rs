//! Where long passes over a tree let other tasks run.
//!
//! A pass over many entries (an unmap, a permission change, fork's copy,
//! a teardown) asks its [`Pause`] every [`PAUSE_SPACING`] entries whether
//! to stop for a moment. When the answer is yes, the pass first brings the
//! machine to a state another task may see: the TLB invalidations it has
//! gathered issued and waited for, what they held back released. Then it
//! calls [`Pause::pause`] and goes on where it was. Whoever owns the tree
//! keeps it locked meanwhile: a task that runs in between may see the
//! tables half changed (a thread of the same space at EL0), never a stale
//! TLB entry or a freed frame still reachable.

/// Entries a pass handles between two questions to its [`Pause`]: at most
/// a few thousand instructions of work (fork copies a page in about 45,
/// an unmap about 100 with the release of its frame).
pub const PAUSE_SPACING: usize = 32;

/// Leaves released, or table pages freed, between two questions: giving
/// a frame back costs up to several hundred instructions (the buddy
/// allocator merges it with its free buddies).
pub const RELEASE_SPACING: usize = 8;

/// The pause points of a long pass (the kernel: take pending interrupts,
/// switch tasks if a better one is ready).
pub trait Pause {
    /// Whether the pass should stop at this point, make what it changed so
    /// far safe for others to see, and call [`Pause::pause`].
    fn due(&mut self) -> bool;
    /// Lets other tasks run; the pass is at a safe point.
    fn pause(&mut self);
}

/// Never pauses: for passes that must run in one go (a tree no task can
/// reach yet, host tests of the pass itself).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPause;

impl Pause for NoPause {
    #[inline(always)]
    fn due(&mut self) -> bool {
        false
    }

    fn pause(&mut self) {}
}

/// Counts entries and says when to ask the pause: every [`PAUSE_SPACING`]
/// of them, or every `N`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Spacing<const N: usize = PAUSE_SPACING>(usize);

impl<const N: usize> Spacing<N> {
    /// One more entry: whether the pass should ask its [`Pause`] now.
    #[inline(always)]
    pub(crate) fn step(&mut self) -> bool {
        self.0 += 1;
        if self.0 < N {
            return false;
        }
        self.0 = 0;
        true
    }
}
