//! Simulated CPUs with TLBs that behave like hardware, for catching
//! missing, misdirected or misordered TLB maintenance.
//!
//! A [`Machine`] has one or more CPUs over one [`Arena`]. Each CPU has its
//! own TTBR0 (with its ASID), TTBR1, and TLB, which holds two kinds of
//! entries, never evicted:
//! - leaves (page or block translations), tagged with the ASID current when
//!   they were walked, or global (nG clear), which match every ASID;
//! - walk-cache entries (table descriptors from L0-L2), tagged with the ASID.
//!
//! Switching TTBR0 keeps them all. Only invalidations drop them, as the
//! ARM ARM describes: `VALE1` drops the leaves translating that address for
//! that ASID (and global ones) but no walk-cache entry; `VAE1` drops both;
//! `ASIDE1` drops the non-global leaves and walk entries of the ASID;
//! `VAALE1`/`VAAE1` act for every ASID; `VMALLE1` drops everything. The
//! [`TlbOps`] of a machine are issued by its current CPU ([`Machine::on`]):
//! the broadcast forms reach every CPU's TLB, the local flush only the
//! issuer's. An invalidation takes effect when called (the model cannot
//! show the race a missing `DSB` opens;
//! [`RecordingTlb`](super::RecordingTlb) checks the ordering instead).
//!
//! Every access translates through the current CPU's TLB (a miss walks the
//! tables, starting from the deepest walk-cache entry that matches) and
//! also does a fresh walk of the tables; if the two differ, the access
//! panics: a stale translation was used.
//!
//! Hardware may walk the tables at any moment, not only for an access, and
//! keep what it read. The model does so deterministically: it watches every
//! table write in the arena, and each CPU that runs a table (TTBR0 or TTBR1)
//! walks every page of interest (one any CPU accessed through that table
//! since a CPU last started running it)
//! whose walk reads the written entry, just before the write and just
//! after it, and re-walks a page right after an invalidation of it removed
//! entries. So an entry the
//! code changes is in the TLBs of the CPUs that may hold it, and
//! - a valid entry overwritten by a valid one with another output address,
//!   memory type, size or kind (block, table) while a TLB still holds a
//!   translation read from it panics: break-before-make was skipped
//!   (`ARM ARM D8.16`);
//! - a stale entry left by an invalidation issued too early, too narrow or
//!   on one CPU only shows at the next access, as a conflict of two entries
//!   or a stale translation;
//! - once [`Machine::watch_frees`] is set up, freeing a frame that some
//!   CPU's TLB still leads to (a leaf mapping it, a walk-cache entry naming
//!   it as a table) panics.
//!
//! The model decodes descriptors itself, from the bit layout, rather than
//! through `paging`, so a decoding bug there is not mirrored here.

use core::hash::{BuildHasherDefault, Hasher};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::vec::Vec;

use super::arena::TableWatch;
use super::{Arena, Protocol};
use crate::addr::{PhysAddr, VirtAddr, PAGE_SIZE};
use crate::frame::BuddyAllocator;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CachedLeaf {
    /// `None`: global.
    asid: Option<Asid>,
    leaf: Leaf,
    /// Where the descriptor was read: which table write makes it stale.
    slot: PhysAddr,
}

/// A table descriptor the walker read at `level` for the region at `va`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CachedWalk {
    asid: Asid,
    half: VaHalf,
    level: Level,
    /// Start of the region the entry covers (aligned to its size).
    va: VirtAddr,
    next: PhysAddr,
    /// Where the descriptor was read.
    slot: PhysAddr,
}

impl CachedWalk {
    fn covers(&self, va: VirtAddr) -> bool {
        va.align_down(self.level.entry_size()) == self.va
    }
}

/// What one walk of the tables found.
struct Walk {
    result: Result<Leaf, Fault>,
    /// The slot of the leaf descriptor, when one was found.
    leaf_slot: Option<PhysAddr>,
    /// The table descriptors read (for the walk cache; ASID 0 until tagged).
    tables: Vec<CachedWalk>,
    /// Every entry read, in order: a write to one of them may change what
    /// the walk finds.
    path: Vec<PhysAddr>,
}

/// The sizes a leaf can have.
const LEAF_SIZES: [PageSize; 3] = [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G];

/// Hashes addresses fast (FxHash's multiply): the model looks them up at
/// every table write and access.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;
type Set<K> = HashSet<K, BuildHasherDefault<AddrHasher>>;

/// One CPU: its translation registers and its TLB.
#[derive(Debug, Default)]
struct Cpu {
    ttbr0: Option<PhysAddr>,
    asid: Option<Asid>,
    ttbr1: Option<PhysAddr>,
    /// By the first address each translates.
    leaves: Map<VirtAddr, Vec<CachedLeaf>>,
    walks: Vec<CachedWalk>,
    stats: TlbStats,
    protocol: Protocol,
}

impl Cpu {
    /// The root this CPU walks for `half`, and the ASID its entries get.
    fn root(&self, half: VaHalf) -> Option<PhysAddr> {
        match half {
            VaHalf::Lower => self.ttbr0,
            VaHalf::Upper => self.ttbr1,
        }
    }

    /// Before the first switch the ASID field reads 0.
    fn asid(&self) -> Asid {
        self.asid.unwrap_or(Asid(0))
    }

    /// The leaves that translate `va` (of every ASID).
    fn leaves_at(&self, va: VirtAddr) -> impl Iterator<Item = &CachedLeaf> {
        LEAF_SIZES
            .iter()
            .filter_map(move |size| self.leaves.get(&va.align_down(size.bytes())))
            .flatten()
            .filter(move |c| c.leaf.contains(va))
    }

    /// Drops the leaves that translate `va` and match `drop`.
    fn drop_leaves_at(&mut self, va: VirtAddr, drop: impl Fn(&CachedLeaf) -> bool) {
        for size in LEAF_SIZES {
            let start = va.align_down(size.bytes());
            if let Some(list) = self.leaves.get_mut(&start) {
                list.retain(|c| !(c.leaf.contains(va) && drop(c)));
                if list.is_empty() {
                    self.leaves.remove(&start);
                }
            }
        }
    }

    fn leaf_count(&self) -> usize {
        self.leaves.values().map(Vec::len).sum()
    }

    /// An entry that leads to `frame`: a leaf mapping it, a walk-cache
    /// entry naming it as a table.
    fn holds_frame(&self, frame: PhysAddr) -> Option<std::string::String> {
        let frame = frame.align_down(PAGE_SIZE);
        if let Some(c) = self.leaves.values().flatten().find(|c| {
            let start = c.leaf.pa(c.leaf.va);
            start <= frame && frame.as_u64() - start.as_u64() < c.leaf.size.bytes()
        }) {
            return Some(std::format!("{c:x?}"));
        }
        self.walks.iter().find(|w| w.next == frame).map(|w| std::format!("{w:x?}"))
    }

    /// An entry read from a table in `frame`: once the frame is free, a
    /// write to it (its next use) would hit that entry.
    fn read_from(&self, frame: PhysAddr) -> Option<std::string::String> {
        let frame = frame.align_down(PAGE_SIZE);
        if let Some(c) = self.leaves.values().flatten().find(|c| c.slot.align_down(PAGE_SIZE) == frame) {
            return Some(std::format!("{c:x?}"));
        }
        self.walks.iter().find(|w| w.slot.align_down(PAGE_SIZE) == frame).map(|w| std::format!("{w:x?}"))
    }

    /// Adds what a walk of `va` under this CPU's context found: its table
    /// entries and, when the access flag is set, its leaf. Identical
    /// entries are kept once; a different one for the same address is kept
    /// beside the old (a later access then reports the conflict).
    fn fill(&mut self, walk: &Walk) {
        let asid = self.asid();
        for w in &walk.tables {
            let w = CachedWalk { asid, ..*w };
            if !self.walks.contains(&w) {
                self.walks.push(w);
            }
        }
        if let (Ok(leaf), Some(slot)) = (walk.result, walk.leaf_slot) {
            if leaf.desc & DescFlags::AF.bits() != 0 {
                let global = leaf.desc & DescFlags::NG.bits() == 0;
                let cached = CachedLeaf { asid: (!global).then_some(asid), leaf, slot };
                let same_start = self.leaves.entry(leaf.va).or_default();
                if !same_start.contains(&cached) {
                    same_start.push(cached);
                }
            }
        }
    }
}

/// The descriptor bits that must not change in a live entry without
/// break-before-make: the kind (bits 1:0), AttrIndx, NS, SH, nG, the
/// contiguous hint and the output address. AP, AF, DBM, PXN, UXN and the
/// software bits may change in place (ARM ARM D8.16.1).
const BBM_BITS: u64 = 0b11 | 0b111 << 2 | 1 << 5 | 0b11 << 8 | 1 << 11 | 1 << 52 | OUTPUT_ADDR_MASK;

/// Whether writing `new` over the entry a cached leaf was read from keeps
/// that leaf a valid translation (same kind at its level, same output
/// address, size and memory attributes).
fn leaf_survives(cached: &Leaf, new: u64) -> bool {
    let kind = if cached.level() == 3 { 0b11 } else { 0b01 };
    new & 0b11 == kind && (cached.desc ^ new) & BBM_BITS == 0
}

#[derive(Debug, Default)]
struct State {
    cpus: Vec<Cpu>,
    /// The CPU that accesses memory and issues TLB maintenance.
    current: usize,
    /// For each table root and page accessed through it (by any CPU): the
    /// entries its walk reads. What speculative walks cover.
    paths: Map<(PhysAddr, VirtAddr), Vec<PhysAddr>>,
    /// The pages of interest of each root.
    interest: Map<PhysAddr, Set<VirtAddr>>,
    /// The other way round: the walks that read an entry.
    by_slot: Map<PhysAddr, Set<(PhysAddr, VirtAddr)>>,
}

impl State {
    fn cpu(&mut self) -> &mut Cpu {
        let current = self.current;
        &mut self.cpus[current]
    }

    /// Records the path of the walk of `va` from `root`.
    fn index_path(&mut self, mem: &Arena, root: PhysAddr, va: VirtAddr) {
        self.unindex_path(root, va);
        let Some(half) = VaHalf::of(va) else { return };
        let path = walk(mem, half, root, va, None).path;
        for slot in &path {
            self.by_slot.entry(*slot).or_default().insert((root, va));
        }
        self.paths.insert((root, va), path);
    }

    fn unindex_path(&mut self, root: PhysAddr, va: VirtAddr) {
        if let Some(old) = self.paths.remove(&(root, va)) {
            for slot in old {
                if let Some(set) = self.by_slot.get_mut(&slot) {
                    set.remove(&(root, va));
                    if set.is_empty() {
                        self.by_slot.remove(&slot);
                    }
                }
            }
        }
    }

    /// Forgets the pages of interest of `root` once no CPU runs it: only
    /// tables a CPU runs are walked speculatively (and a freed root may be
    /// reused for anything).
    fn forget_if_unrun(&mut self, root: Option<PhysAddr>) {
        let Some(root) = root else { return };
        let runs = |c: &Cpu| c.ttbr0 == Some(root) || c.ttbr1 == Some(root);
        if !self.cpus.iter().any(runs) {
            self.forget_root(root);
        }
    }

    /// Forgets the pages of interest of `root`.
    fn forget_root(&mut self, root: PhysAddr) {
        for va in self.interest.remove(&root).unwrap_or_default() {
            self.unindex_path(root, va);
        }
    }

    /// Makes the page holding `va` one that speculative walks from `root`
    /// cover.
    fn add_interest(&mut self, mem: &Arena, root: PhysAddr, va: VirtAddr) {
        let va = va.align_down(PAGE_SIZE);
        if self.interest.entry(root).or_default().insert(va) {
            self.index_path(mem, root, va);
        }
    }

    /// Every CPU that runs `root` walks `va` and keeps what it finds.
    fn speculate(&mut self, mem: &Arena, root: PhysAddr, va: VirtAddr) {
        let Some(half) = VaHalf::of(va) else { return };
        let mut found = None;
        for cpu in self.cpus.iter_mut().filter(|c| c.root(half) == Some(root)) {
            let walk = found.get_or_insert_with(|| walk(mem, half, root, va, None));
            cpu.fill(walk);
        }
    }

    /// `cpu` walks `va` again if it runs a table for it (after an
    /// invalidation dropped what it had).
    fn rewalk(&mut self, mem: &Arena, cpu: usize, va: VirtAddr) {
        let Some(half) = VaHalf::of(va) else { return };
        let Some(root) = self.cpus[cpu].root(half) else { return };
        let walk = walk(mem, half, root, va, None);
        self.cpus[cpu].fill(&walk);
    }

    /// Panics if some TLB holds a translation read from `slot` (which the
    /// walks of `readers` read) that `new` would change without
    /// break-before-make.
    fn check_break_before_make(&self, slot: PhysAddr, readers: &[(PhysAddr, VirtAddr)], old: u64, new: u64) {
        // Invalid: the break. Valid with the same output, kind and
        // attributes as a valid `old`: whatever was cached from `old`
        // stays right (and anything older was checked when `old` came).
        if new & 1 == 0 || old & 1 != 0 && (old ^ new) & BBM_BITS == 0 {
            return;
        }
        // Only entries the CPU may use now count: those of another ASID
        // (one a rollover retired, say) are dropped before it runs that
        // ASID again, or invalidated with the rest of their space.
        for (i, cpu) in self.cpus.iter().enumerate() {
            let usable = |asid: Option<Asid>| asid.is_none_or(|a| a == cpu.asid());
            for (_, va) in readers {
                if let Some(c) =
                    cpu.leaves_at(*va).find(|c| c.slot == slot && usable(c.asid) && !leaf_survives(&c.leaf, new))
                {
                    panic!(
                        "break-before-make violated: entry {slot:?} rewritten {old:#x} -> {new:#x} while CPU {i}'s \
                         TLB holds {c:x?} (write an invalid entry and invalidate it first)"
                    );
                }
            }
            let survives = |w: &CachedWalk| new & 0b11 == 0b11 && new & OUTPUT_ADDR_MASK == w.next.as_u64();
            if let Some(w) = cpu.walks.iter().find(|w| w.slot == slot && usable(Some(w.asid)) && !survives(w)) {
                panic!(
                    "break-before-make violated: table entry {slot:?} rewritten {old:#x} -> {new:#x} while CPU {i}'s \
                     walk cache holds {w:x?}"
                );
            }
        }
    }

    /// The walks that read `slot`.
    fn readers(&self, slot: PhysAddr) -> Vec<(PhysAddr, VirtAddr)> {
        self.by_slot.get(&slot).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }
}

/// What the arena calls on every table write.
struct Watch {
    state: Mutex<State>,
}

impl Watch {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TableWatch for Watch {
    fn before_write(&self, mem: &Arena, slot: PhysAddr, new: u64) {
        let mut s = self.state();
        let readers = s.readers(slot);
        for &(root, va) in &readers {
            s.speculate(mem, root, va);
        }
        s.check_break_before_make(slot, &readers, mem.read_word(slot), new);
    }

    fn after_write(&self, mem: &Arena, slot: PhysAddr, _old: u64, _new: u64) {
        let mut s = self.state();
        for (root, va) in s.readers(slot) {
            s.index_path(mem, root, va);
            s.speculate(mem, root, va);
        }
    }
}

/// What runs at every free of a watched allocator: the block's first frame
/// and its order.
type FreeCheck = dyn Fn(PhysAddr, u32) + Send + Sync;

/// CPUs with TTBR0 (with its ASID), TTBR1, and the TLB model, over an
/// [`Arena`]. Implements [`TlbOps`] as issued by the current CPU, so table
/// code invalidates the TLBs.
pub struct Machine<'a> {
    mem: &'a Arena,
    watch: Arc<Watch>,
    /// The checks run at every free of a watched allocator.
    free_check: Mutex<Vec<Arc<FreeCheck>>>,
}

impl core::fmt::Debug for Machine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Machine").field("mem", self.mem).field("state", &*self.state()).finish()
    }
}

impl<'a> Machine<'a> {
    /// One CPU, MMU on, both TTBRs empty (every access faults), TLB empty.
    pub fn new(mem: &'a Arena) -> Self {
        Self::with_cpus(mem, 1)
    }

    /// `cpus` CPUs, each as [`Self::new`] makes one; CPU 0 is current.
    pub fn with_cpus(mem: &'a Arena, cpus: usize) -> Self {
        assert!(cpus > 0);
        let state = State { cpus: (0..cpus).map(|_| Cpu::default()).collect(), ..State::default() };
        let watch = Arc::new(Watch { state: Mutex::new(state) });
        let weak: std::sync::Weak<Watch> = Arc::downgrade(&watch);
        mem.watch(weak);
        Self { mem, watch, free_check: Mutex::new(Vec::new()) }
    }

    /// How many CPUs the machine has.
    pub fn cpus(&self) -> usize {
        self.state().cpus.len()
    }

    /// Makes `cpu` the current CPU: the one that accesses memory, switches
    /// and issues TLB maintenance from now on.
    pub fn on(&self, cpu: usize) -> &Self {
        let mut s = self.state();
        assert!(cpu < s.cpus.len(), "no CPU {cpu}");
        s.current = cpu;
        drop(s);
        self
    }

    /// The current CPU.
    pub fn current(&self) -> usize {
        self.state().current
    }

    /// Checks at every free of `frames` that no CPU's TLB still leads to
    /// the frames freed (unhook, invalidate, sync, and only then free). A
    /// CPU whose TTBR0 or TTBR1 names a freed frame stops running it (host
    /// tests drop spaces without switching away first).
    pub fn watch_frees(&self, frames: &BuddyAllocator<'_>) {
        let watch = Arc::clone(&self.watch);
        let check: Arc<FreeCheck> = Arc::new(move |start: PhysAddr, order: u32| {
            let mut s = watch.state();
            for i in 0..1u64 << order {
                let frame = start + i * PAGE_SIZE;
                for (n, cpu) in s.cpus.iter_mut().enumerate() {
                    if cpu.ttbr0 == Some(frame) {
                        cpu.ttbr0 = None;
                    }
                    if cpu.ttbr1 == Some(frame) {
                        cpu.ttbr1 = None;
                    }
                    if let Some(entry) = cpu.holds_frame(frame).or_else(|| cpu.read_from(frame)) {
                        panic!("{frame:?} freed while CPU {n}'s TLB still leads to it: {entry}");
                    }
                }
                s.forget_root(frame);
            }
        });
        frames.watch_frees(Arc::downgrade(&check));
        self.free_check.lock().unwrap_or_else(|p| p.into_inner()).push(check);
    }

    /// Writes TTBR0 of the current CPU with `root` and `asid` (one MSR).
    /// The TLB keeps every entry: entries of other ASIDs stop matching,
    /// entries of `asid` (and global ones) match again.
    pub fn switch(&self, root: PhysAddr, asid: Asid) {
        let mut s = self.state();
        let cpu = s.cpu();
        let old = cpu.ttbr0.replace(root);
        cpu.asid = Some(asid);
        s.forget_if_unrun(old);
    }

    /// Writes TTBR1 of the current CPU (the kernel's table).
    pub fn set_ttbr1(&self, root: PhysAddr) {
        let mut s = self.state();
        let old = s.cpu().ttbr1.replace(root);
        s.forget_if_unrun(old);
    }

    /// The current CPU's TLB counters so far.
    pub fn stats(&self) -> TlbStats {
        self.state().cpu().stats
    }

    /// Leaf entries the current CPU's TLB holds (of every ASID).
    pub fn cached_leaves(&self) -> usize {
        self.state().cpu().leaf_count()
    }

    /// Walk-cache entries the current CPU's TLB holds (of every ASID).
    pub fn cached_walks(&self) -> usize {
        self.state().cpu().walks.len()
    }

    /// Whether any CPU's TLB still leads to `frame`: a cached leaf mapping
    /// it, or a walk-cache entry naming it as a table. A frame must not be
    /// freed while this holds.
    pub fn holds_frame(&self, frame: PhysAddr) -> bool {
        self.state().cpus.iter().any(|c| c.holds_frame(frame).is_some())
    }

    /// Translates `va` for an access of `kind` from `el` on the current
    /// CPU, through its TLB, checking the result against a fresh walk.
    ///
    /// # Panics
    /// When the TLB gave a translation (or fault) that the tables no longer
    /// hold: missing or wrong TLB maintenance in the code under test.
    pub fn translate(&self, el: El, va: VirtAddr, kind: AccessKind) -> Result<PhysAddr, Fault> {
        let mut s = self.state();
        let half = VaHalf::of(va).ok_or(Fault::NonCanonical(va))?;
        let root = s.cpu().root(half).ok_or(Fault::Translation { va, level: 0 })?;
        s.add_interest(self.mem, root, va);
        let cpu = s.cpu();
        let asid = cpu.asid();
        let fresh = walk(self.mem, half, root, va, None).result;

        let hits: Vec<Leaf> = cpu.leaves_at(va).filter(|c| c.asid.is_none_or(|a| a == asid)).map(|c| c.leaf).collect();
        let used = if let Some(first) = hits.first() {
            assert!(
                hits.iter().all(|h| h == first),
                "stale translation for {va:?} (ASID {asid:?}): the TLB holds several entries {hits:x?}, the tables \
                 hold {fresh:x?} (a live entry changed without invalidation after it, or without break-before-make)"
            );
            cpu.stats.leaf_hits += 1;
            Ok(*first)
        } else {
            cpu.stats.leaf_misses += 1;
            let start = cpu
                .walks
                .iter()
                .filter(|w| w.asid == asid && w.half == half && w.covers(va))
                .max_by_key(|w| w.level)
                .copied();
            if start.is_some() {
                cpu.stats.walk_hits += 1;
            }
            let walked = walk(self.mem, half, root, va, start);
            cpu.fill(&walked);
            walked.result
        };
        assert!(
            used == fresh,
            "stale translation for {va:?} (ASID {asid:?}): the TLB gave {used:x?}, the tables hold {fresh:x?}"
        );
        let leaf = used?;
        check_permission(&leaf, el, va, kind)?;
        Ok(leaf.pa(va))
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
        self.watch.state()
    }
}

/// Walks `va` from `root`, or from the table a walk-cache entry names.
fn walk(mem: &Arena, half: VaHalf, root: PhysAddr, va: VirtAddr, start: Option<CachedWalk>) -> Walk {
    let mut tables = Vec::new();
    let mut path = Vec::new();
    let (mut table, mut level) = match start {
        Some(w) => (w.next, w.level.get() + 1),
        None => (root, 0),
    };
    let result = loop {
        let lvl = Level::new(level).expect("walk below L3");
        let slot = table + (lvl.index(va) * 8) as u64;
        if !mem.contains(slot) {
            break Err(Fault::External { pa: slot });
        }
        path.push(slot);
        let desc = mem.read_word(slot);
        let addr = PhysAddr::new(desc & OUTPUT_ADDR_MASK);
        let leaf = |size: PageSize| Leaf { va: va.align_down(size.bytes()), size, desc };
        match (desc & 0b11, level) {
            (0b11, 0..=2) => {
                tables.push(CachedWalk {
                    asid: Asid(0),
                    half,
                    level: lvl,
                    va: va.align_down(lvl.entry_size()),
                    next: addr,
                    slot,
                });
                table = addr;
                level += 1;
            }
            (0b11, 3) => break Ok(leaf(PageSize::Size4K)),
            (0b01, 1) => break Ok(leaf(PageSize::Size1G)),
            (0b01, 2) => break Ok(leaf(PageSize::Size2M)),
            _ => break Err(Fault::Translation { va, level }),
        }
    };
    let leaf_slot = if result.is_ok() { path.last().copied() } else { None };
    Walk { result, leaf_slot, tables, path }
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
    /// Drops, on every CPU (`broadcast`) or the current one, the entries
    /// translating `va` for `asid` (`None`: every ASID); walk-cache entries
    /// too unless `leaf_only`. Each CPU that lost an entry walks `va` again
    /// at once, as hardware may.
    fn drop_va(&self, asid: Option<Asid>, va: VirtAddr, leaf_only: bool) {
        let mut s = self.state();
        s.cpu().protocol.invalidate("page invalidation");
        for i in 0..s.cpus.len() {
            let cpu = &mut s.cpus[i];
            let before = (cpu.leaf_count(), cpu.walks.len());
            cpu.drop_leaves_at(va, |c| asid_matches(c.asid, asid));
            if !leaf_only {
                cpu.walks.retain(|w| !(w.covers(va) && asid.is_none_or(|a| a == w.asid)));
            }
            let runs = asid.is_none_or(|a| cpu.asid() == a);
            if runs && before != (cpu.leaf_count(), cpu.walks.len()) {
                s.rewalk(self.mem, i, va);
            }
        }
    }

    /// Drops every entry matching `keep == false` on every CPU, or on the
    /// current one only (`local`).
    fn drop_where(
        &self,
        what: &str,
        local: bool,
        keep_leaf: impl Fn(&CachedLeaf) -> bool,
        keep_walk: impl Fn(&CachedWalk) -> bool,
    ) {
        let mut s = self.state();
        if !local {
            s.cpu().protocol.invalidate(what);
        }
        let current = s.current;
        for (i, cpu) in s.cpus.iter_mut().enumerate() {
            if local && i != current {
                continue;
            }
            cpu.leaves.retain(|_, list| {
                list.retain(&keep_leaf);
                !list.is_empty()
            });
            cpu.walks.retain(&keep_walk);
        }
    }
}

impl TlbOps for Machine<'_> {
    fn begin(&self) {
        self.state().cpu().protocol.begin();
    }

    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool) {
        self.drop_va(Some(asid), va, leaf_only);
    }

    fn invalidate_asid(&self, asid: Asid) {
        self.drop_where("ASID invalidation", false, |c| c.asid != Some(asid), |w| w.asid != asid);
    }

    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool) {
        self.drop_va(None, va, leaf_only);
    }

    fn invalidate_all(&self) {
        self.drop_where("invalidate_all", false, |_| false, |_| false);
    }

    fn invalidate_all_local(&self) {
        self.drop_where("invalidate_all_local", true, |_| false, |_| false);
    }

    fn sync(&self) {
        self.state().cpu().protocol.sync();
    }
}
