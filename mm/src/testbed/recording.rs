//! A TLB backend that records every operation, so tests can assert exactly
//! which invalidations an operation issued and in which order.

use std::sync::Mutex;
use std::vec::Vec;

use super::Protocol;
use crate::addr::VirtAddr;
use crate::tlb::{Asid, TlbOps};

/// One call on a [`RecordingTlb`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbEvent {
    /// `DSB ISHST`: a batch of invalidations begins.
    Begin,
    /// `TLBI VALE1IS` (`leaf_only`) or `TLBI VAE1IS`.
    Page {
        /// The ASID named.
        asid: Asid,
        /// The page invalidated.
        va: VirtAddr,
        /// Only the last-level entry (no walk-cache entries).
        leaf_only: bool,
    },
    /// `TLBI ASIDE1IS`.
    Asid(Asid),
    /// `TLBI VAALE1IS` (`leaf_only`) or `TLBI VAAE1IS`.
    KernelPage {
        /// The page invalidated.
        va: VirtAddr,
        /// Only the last-level entry (no walk-cache entries).
        leaf_only: bool,
    },
    /// `TLBI VMALLE1IS`.
    All,
    /// `TLBI VMALLE1`.
    AllLocal,
    /// `DSB ISH; ISB`: the batch is complete.
    Sync,
}

/// Records [`TlbEvent`]s and panics on a protocol error (an invalidation
/// outside `begin`..`sync`, a nested `begin`, a `sync` without `begin`).
#[derive(Debug, Default)]
pub struct RecordingTlb {
    state: Mutex<(Vec<TlbEvent>, Protocol)>,
    /// What each [`TlbOps::count_page_invalidations`] call said.
    counted: Mutex<Vec<usize>>,
}

impl RecordingTlb {
    /// A recorder with no events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<TlbEvent> {
        self.state.lock().unwrap().0.clone()
    }

    /// Every event so far, forgetting them.
    pub fn take(&self) -> Vec<TlbEvent> {
        core::mem::take(&mut self.state.lock().unwrap().0)
    }

    /// What [`TlbOps::count_page_invalidations`] was told, call by call.
    pub fn counted_pages(&self) -> Vec<usize> {
        self.counted.lock().unwrap().clone()
    }

    fn record(&self, event: TlbEvent) {
        let mut state = self.state.lock().unwrap();
        match event {
            TlbEvent::Begin => state.1.begin(),
            TlbEvent::Sync => state.1.sync(),
            TlbEvent::AllLocal => {}
            other => state.1.invalidate(&std::format!("{other:?}")),
        }
        state.0.push(event);
    }
}

impl TlbOps for RecordingTlb {
    fn begin(&self) {
        self.record(TlbEvent::Begin);
    }

    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool) {
        self.record(TlbEvent::Page { asid, va, leaf_only });
    }

    fn invalidate_asid(&self, asid: Asid) {
        self.record(TlbEvent::Asid(asid));
    }

    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool) {
        self.record(TlbEvent::KernelPage { va, leaf_only });
    }

    fn invalidate_all(&self) {
        self.record(TlbEvent::All);
    }

    fn invalidate_all_local(&self) {
        self.record(TlbEvent::AllLocal);
    }

    fn sync(&self) {
        self.record(TlbEvent::Sync);
    }

    fn count_page_invalidations(&self, pages: usize) {
        self.counted.lock().unwrap().push(pages);
    }
}

/// TLB maintenance that does nothing: for tables no TLB can hold entries
/// of (never active), and for benchmarks that must not measure a
/// recorder's bookkeeping.
pub struct NoTlb;

impl TlbOps for NoTlb {
    fn begin(&self) {}
    fn invalidate_page(&self, _: Asid, _: VirtAddr, _: bool) {}
    fn invalidate_asid(&self, _: Asid) {}
    fn invalidate_kernel_page(&self, _: VirtAddr, _: bool) {}
    fn invalidate_all(&self) {}
    fn invalidate_all_local(&self) {}
    fn sync(&self) {}
}
