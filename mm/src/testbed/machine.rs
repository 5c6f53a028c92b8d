//! One simulated CPU with a TLB that behaves like hardware, for catching
//! missing or misdirected TLB maintenance.
//!
//! The TLB holds two kinds of entries, never evicted:
//! - leaves (page or block translations), tagged with the ASID current when
//!   they were walked, or global (nG clear), which match every ASID;
//! - walk-cache entries (table descriptors from L0-L2), tagged with the ASID.
//!
//! Switching TTBR0 keeps them all. Only invalidations drop them, as the
//! ARM ARM describes: `VALE1` drops the leaves translating that address for
//! that ASID (and global ones) but no walk-cache entry; `VAE1` drops both;
//! `ASIDE1` drops the non-global leaves and walk entries of the ASID;
//! `VAALE1`/`VAAE1` act for every ASID; `VMALLE1` drops everything.
//! An invalidation takes effect when called (the model cannot show the race
//! a missing `DSB` opens; [`RecordingTlb`](super::RecordingTlb) checks the
//! ordering instead).
//!
//! Every access translates through the TLB (a miss walks the tables,
//! starting from the deepest walk-cache entry that matches) and also does a
//! fresh walk of the tables; if the two differ, the access panics: a stale
//! translation was used.
//!
//! The model decodes descriptors itself, from the bit layout, rather than
//! through `paging`, so a decoding bug there is not mirrored here.

use std::sync::{Mutex, MutexGuard};
use std::vec::Vec;

use super::{Arena, Protocol};
use crate::addr::{PhysAddr, VirtAddr, PAGE_SIZE};
use crate::paging::{DescFlags, Level, PageSize, VaHalf, OUTPUT_ADDR_MASK};
use crate::tlb::{Asid, TlbOps};

/// The exception level an access is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum El {
    /// User mode: only entries with AP[1] set are reachable.
    El0,
    /// Kernel mode.
    El1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// What an access does, as the permission checks see it.
pub enum AccessKind {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
}

/// Why an access did not complete, as the fault syndrome would say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Bits [63:48] neither all 0 nor all 1.
    NonCanonical(VirtAddr),
    /// No valid entry at `level` (or no table in the TTBR).
    Translation {
        /// The address that faulted.
        va: VirtAddr,
        /// The level of the walk that found no entry.
        level: u8,
    },
    /// The entry had AF clear (Aspen always sets it, so this is a bug).
    AccessFlag {
        /// The address that faulted.
        va: VirtAddr,
        /// The level of the entry.
        level: u8,
    },
    /// The entry forbids the access at this exception level.
    Permission {
        /// The address that faulted.
        va: VirtAddr,
        /// The level of the entry.
        level: u8,
    },
    /// The walk or the access reached a physical address with no memory.
    External {
        /// The physical address reached.
        pa: PhysAddr,
    },
}

/// Counters for tests that check the TLB was really used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbStats {
    /// Accesses a TLB leaf entry translated.
    pub leaf_hits: u64,
    /// Accesses that needed a walk.
    pub leaf_misses: u64,
    /// Misses whose walk started from a walk-cache entry.
    pub walk_hits: u64,
}

/// A translation as the TLB holds it and as accesses use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Leaf {
    va: VirtAddr,
    size: PageSize,
    /// The raw descriptor: output address and every attribute bit, so a
    /// permission change without invalidation shows up as stale too.
    desc: u64,
}

impl Leaf {
    fn contains(&self, va: VirtAddr) -> bool {
        self.va <= va && va.as_u64() - self.va.as_u64() < self.size.bytes()
    }

    fn pa(&self, va: VirtAddr) -> PhysAddr {
        let base = self.desc & OUTPUT_ADDR_MASK & !(self.size.bytes() - 1);
        PhysAddr::new(base + (va.as_u64() - self.va.as_u64()))
    }

    fn level(&self) -> u8 {
        self.size.level().get()
    }
}

#[derive(Clone, Copy, Debug)]
struct CachedLeaf {
    /// `None`: global.
    asid: Option<Asid>,
    leaf: Leaf,
}

/// A table descriptor the walker read at `level` for the region at `va`.
#[derive(Clone, Copy, Debug)]
struct CachedWalk {
    asid: Asid,
    half: VaHalf,
    level: Level,
    /// Start of the region the entry covers (aligned to its size).
    va: VirtAddr,
    next: PhysAddr,
}

impl CachedWalk {
    fn covers(&self, va: VirtAddr) -> bool {
        va.align_down(self.level.entry_size()) == self.va
    }
}

#[derive(Debug, Default)]
struct State {
    ttbr0: Option<PhysAddr>,
    asid: Option<Asid>,
    ttbr1: Option<PhysAddr>,
    leaves: Vec<CachedLeaf>,
    walks: Vec<CachedWalk>,
    stats: TlbStats,
    protocol: Protocol,
}

/// One CPU: TTBR0 (with its ASID), TTBR1, and the TLB model, over an
/// [`Arena`]. Implements [`TlbOps`] so table code invalidates its TLB.
#[derive(Debug)]
pub struct Machine<'a> {
    mem: &'a Arena,
    state: Mutex<State>,
}

impl<'a> Machine<'a> {
    /// MMU on, both TTBRs empty (every access faults), TLB empty.
    pub fn new(mem: &'a Arena) -> Self {
        Self { mem, state: Mutex::new(State::default()) }
    }

    /// Writes TTBR0 with `root` and `asid` (one MSR). The TLB keeps every
    /// entry: entries of other ASIDs stop matching, entries of `asid` (and
    /// global ones) match again.
    pub fn switch(&self, root: PhysAddr, asid: Asid) {
        let mut s = self.state();
        s.ttbr0 = Some(root);
        s.asid = Some(asid);
    }

    /// Writes TTBR1 (the kernel's table).
    pub fn set_ttbr1(&self, root: PhysAddr) {
        self.state().ttbr1 = Some(root);
    }

    /// The TLB counters so far.
    pub fn stats(&self) -> TlbStats {
        self.state().stats
    }

    /// Leaf entries the TLB holds (of every ASID).
    pub fn cached_leaves(&self) -> usize {
        self.state().leaves.len()
    }

    /// Walk-cache entries the TLB holds (of every ASID).
    pub fn cached_walks(&self) -> usize {
        self.state().walks.len()
    }

    /// Whether any TLB entry still leads to `frame`: a cached leaf mapping
    /// it, or a walk-cache entry naming it as a table. A frame must not be
    /// freed while this holds.
    pub fn holds_frame(&self, frame: PhysAddr) -> bool {
        let s = self.state();
        let frame = frame.align_down(PAGE_SIZE);
        s.leaves.iter().any(|c| {
            let start = c.leaf.pa(c.leaf.va);
            start <= frame && frame.as_u64() - start.as_u64() < c.leaf.size.bytes()
        }) || s.walks.iter().any(|w| w.next == frame)
    }

    /// Translates `va` for an access of `kind` from `el`, through the TLB,
    /// checking the result against a fresh walk.
    ///
    /// # Panics
    /// When the TLB gave a translation (or fault) that the tables no longer
    /// hold: missing or wrong TLB maintenance in the code under test.
    pub fn translate(&self, el: El, va: VirtAddr, kind: AccessKind) -> Result<PhysAddr, Fault> {
        let mut s = self.state();
        let half = VaHalf::of(va).ok_or(Fault::NonCanonical(va))?;
        let root = match half {
            VaHalf::Lower => s.ttbr0,
            VaHalf::Upper => s.ttbr1,
        }
        .ok_or(Fault::Translation { va, level: 0 })?;
        // Before the first switch the ASID field reads 0.
        let asid = s.asid.unwrap_or(Asid(0));
        let fresh = self.walk(half, root, va, None).0;

        let hits: Vec<Leaf> = s
            .leaves
            .iter()
            .filter(|c| c.leaf.contains(va) && c.asid.is_none_or(|a| a == asid))
            .map(|c| c.leaf)
            .collect();
        let used = if let Some(first) = hits.first() {
            assert!(
                hits.iter().all(|h| h == first),
                "TLB conflict at {va:?} (ASID {asid:?}): several entries match: {hits:x?} \
                 (a live entry was changed without break-before-make)"
            );
            s.stats.leaf_hits += 1;
            Ok(*first)
        } else {
            s.stats.leaf_misses += 1;
            let start = s
                .walks
                .iter()
                .filter(|w| w.asid == asid && w.half == half && w.covers(va))
                .max_by_key(|w| w.level)
                .copied();
            if start.is_some() {
                s.stats.walk_hits += 1;
            }
            let (result, walked) = self.walk(half, root, va, start);
            for w in walked {
                if !s.walks.iter().any(|c| c.asid == asid && c.half == half && c.level == w.level && c.va == w.va) {
                    s.walks.push(CachedWalk { asid, ..w });
                }
            }
            if let Ok(leaf) = result {
                if leaf.desc & DescFlags::AF.bits() != 0 {
                    let global = leaf.desc & DescFlags::NG.bits() == 0;
                    s.leaves.push(CachedLeaf { asid: (!global).then_some(asid), leaf });
                }
            }
            result
        };
        assert!(
            used == fresh,
            "stale translation for {va:?} (ASID {asid:?}): the TLB gave {used:x?}, the tables hold {fresh:x?}"
        );
        let leaf = used?;
        check_permission(&leaf, el, va, kind)?;
        Ok(leaf.pa(va))
    }

    /// Walks from `root`, or from the table a walk-cache entry names. Also
    /// returns the table descriptors read (for the walk cache).
    fn walk(
        &self,
        half: VaHalf,
        root: PhysAddr,
        va: VirtAddr,
        start: Option<CachedWalk>,
    ) -> (Result<Leaf, Fault>, Vec<CachedWalk>) {
        let mut walked = Vec::new();
        let (mut table, mut level) = match start {
            Some(w) => (w.next, w.level.get() + 1),
            None => (root, 0),
        };
        loop {
            let lvl = Level::new(level).expect("walk below L3");
            let slot = table + (lvl.index(va) * 8) as u64;
            if !self.mem.contains(slot) {
                return (Err(Fault::External { pa: slot }), walked);
            }
            let desc = self.mem.read_word(slot);
            let addr = PhysAddr::new(desc & OUTPUT_ADDR_MASK);
            let leaf = |size: PageSize| Leaf { va: va.align_down(size.bytes()), size, desc };
            match (desc & 0b11, level) {
                (0b11, 0..=2) => {
                    walked.push(CachedWalk {
                        asid: Asid(0),
                        half,
                        level: lvl,
                        va: va.align_down(lvl.entry_size()),
                        next: addr,
                    });
                    table = addr;
                    level += 1;
                }
                (0b11, 3) => return (Ok(leaf(PageSize::Size4K)), walked),
                (0b01, 1) => return (Ok(leaf(PageSize::Size1G)), walked),
                (0b01, 2) => return (Ok(leaf(PageSize::Size2M)), walked),
                _ => return (Err(Fault::Translation { va, level }), walked),
            }
        }
    }

    /// Reads `buf.len()` bytes at `va`.
    pub fn read_bytes(&self, el: El, va: VirtAddr, buf: &mut [u8]) -> Result<(), Fault> {
        self.for_each_page(el, va, buf.len(), AccessKind::Read, |pa, range| self.mem.read_bytes(pa, &mut buf[range]))
    }

    /// Writes `data` at `va`.
    pub fn write_bytes(&self, el: El, va: VirtAddr, data: &[u8]) -> Result<(), Fault> {
        self.for_each_page(el, va, data.len(), AccessKind::Write, |pa, range| self.mem.write_bytes(pa, &data[range]))
    }

    /// A one-byte load of `va` at `el`, through the TLB.
    pub fn read(&self, el: El, va: VirtAddr) -> Result<u8, Fault> {
        let mut byte = [0];
        self.read_bytes(el, va, &mut byte)?;
        Ok(byte[0])
    }

    /// A one-byte store of `value` to `va` at `el`, through the TLB.
    pub fn write(&self, el: El, va: VirtAddr, value: u8) -> Result<(), Fault> {
        self.write_bytes(el, va, &[value])
    }

    /// An instruction fetch from `va`; returns where it fetched from.
    pub fn exec(&self, el: El, va: VirtAddr) -> Result<PhysAddr, Fault> {
        self.translate(el, va, AccessKind::Execute)
    }

    /// Translates each page `len` bytes at `va` touch (all before touching
    /// memory), then calls `f` with each piece's address and its part of
    /// the buffer.
    fn for_each_page(
        &self,
        el: El,
        va: VirtAddr,
        len: usize,
        kind: AccessKind,
        mut f: impl FnMut(PhysAddr, core::ops::Range<usize>),
    ) -> Result<(), Fault> {
        let mut pieces = Vec::new();
        let mut done = 0;
        while done < len {
            let at = va.checked_add(done as u64).ok_or(Fault::NonCanonical(va))?;
            let n = core::cmp::min(len - done, (PAGE_SIZE - at.page_offset()) as usize);
            let pa = self.translate(el, at, kind)?;
            if !self.mem.contains(pa) || !self.mem.contains(pa + (n as u64 - 1)) {
                return Err(Fault::External { pa });
            }
            pieces.push((pa, done..done + n));
            done += n;
        }
        for (pa, range) in pieces {
            f(pa, range);
        }
        Ok(())
    }

    /// The state, even after a failed check panicked while holding it (a
    /// test that catches the panic may look further).
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_state(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state());
    }
}

/// The stage-1 permission check for a leaf (ARM ARM D8.4, without PAN or
/// WXN): AP[1] gives EL0 access, AP[2] makes read-only, UXN/PXN forbid
/// execution at EL0/EL1, and EL1 never executes what EL0 can write.
fn check_permission(leaf: &Leaf, el: El, va: VirtAddr, kind: AccessKind) -> Result<(), Fault> {
    let flags = DescFlags::from_bits_retain(leaf.desc);
    let level = leaf.level();
    if !flags.contains(DescFlags::AF) {
        return Err(Fault::AccessFlag { va, level });
    }
    let el0 = flags.contains(DescFlags::AP_EL0);
    let writable = !flags.contains(DescFlags::AP_RO);
    let allowed = match (el, kind) {
        (El::El0, AccessKind::Read) => el0,
        (El::El0, AccessKind::Write) => el0 && writable,
        (El::El0, AccessKind::Execute) => el0 && !flags.contains(DescFlags::UXN),
        (El::El1, AccessKind::Read) => true,
        (El::El1, AccessKind::Write) => writable,
        (El::El1, AccessKind::Execute) => !(flags.contains(DescFlags::PXN) || el0 && writable),
    };
    if allowed {
        Ok(())
    } else {
        Err(Fault::Permission { va, level })
    }
}

/// Whether a leaf tagged `entry` (`None`: global) is hit by an invalidation
/// for `target` (`None`: every ASID).
fn asid_matches(entry: Option<Asid>, target: Option<Asid>) -> bool {
    match (entry, target) {
        (Some(a), Some(t)) => a == t,
        _ => true,
    }
}

impl Machine<'_> {
    /// Drops the entries translating `va` for `asid` (`None`: every ASID);
    /// walk-cache entries too unless `leaf_only`.
    fn drop_va(&self, asid: Option<Asid>, va: VirtAddr, leaf_only: bool) {
        self.with_state(|s| {
            s.protocol.invalidate("page invalidation");
            s.leaves.retain(|c| !(c.leaf.contains(va) && asid_matches(c.asid, asid)));
            if !leaf_only {
                s.walks.retain(|w| !(w.covers(va) && asid.is_none_or(|a| a == w.asid)));
            }
        });
    }
}

impl TlbOps for Machine<'_> {
    fn begin(&self) {
        self.with_state(|s| s.protocol.begin());
    }

    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool) {
        self.drop_va(Some(asid), va, leaf_only);
    }

    fn invalidate_asid(&self, asid: Asid) {
        self.with_state(|s| {
            s.protocol.invalidate("ASID invalidation");
            s.leaves.retain(|c| c.asid != Some(asid));
            s.walks.retain(|w| w.asid != asid);
        });
    }

    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool) {
        self.drop_va(None, va, leaf_only);
    }

    fn invalidate_all(&self) {
        self.with_state(|s| {
            s.protocol.invalidate("invalidate_all");
            s.leaves.clear();
            s.walks.clear();
        });
    }

    fn invalidate_all_local(&self) {
        self.with_state(|s| {
            s.leaves.clear();
            s.walks.clear();
        });
    }

    fn sync(&self) {
        self.with_state(|s| s.protocol.sync());
    }
}
