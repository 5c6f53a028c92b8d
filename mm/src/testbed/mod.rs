//! The simulated machine for host tests: physical-memory arena and TLB model.
//!
//! - [`Arena`]: simulated RAM at a chosen physical base, the host's
//!   [`PhysMemory`](crate::paging::PhysMemory).
//! - [`RecordingTlb`]: a [`TlbOps`](crate::tlb::TlbOps) that records every
//!   operation and checks the `begin` / invalidate / `sync` protocol.
//! - [`Machine`]: one or more CPUs whose TLBs behave like hardware: each
//!   keeps leaf and walk-cache entries, tagged by ASID, across address-space
//!   switches until a matching invalidation reaches it, walks the tables
//!   speculatively around every table write, and every access fails the
//!   test at once if the translation it used differs from a fresh table
//!   walk; a write that skips break-before-make, or a free of a frame a TLB
//!   still leads to, fails too.

mod arena;
mod machine;
mod recording;

#[cfg(test)]
mod tests;

pub use arena::Arena;
pub use machine::{AccessKind, El, Fault, Machine, TlbStats};
pub use recording::{NoTlb, RecordingTlb, TlbEvent};

/// Checks the bracket every TLB backend expects: `begin`, invalidations,
/// `sync`, on one CPU, never nested.
#[derive(Debug, Default)]
struct Protocol {
    open: bool,
}

impl Protocol {
    fn begin(&mut self) {
        assert!(!self.open, "TLB protocol: begin() while a batch is open (missing sync())");
        self.open = true;
    }

    fn invalidate(&self, what: &str) {
        assert!(self.open, "TLB protocol: {what} outside begin()..sync()");
    }

    fn sync(&mut self) {
        assert!(self.open, "TLB protocol: sync() without begin()");
        self.open = false;
    }
}
