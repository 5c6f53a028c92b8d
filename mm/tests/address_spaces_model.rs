//! Address spaces end to end: the real ASID allocator (generations,
//! rollover, deferred local flush), real translation tables and the buddy
//! allocator, run on simulated CPUs whose TLBs behave like hardware.
//!
//! A [`System`] holds up to four CPUs (one [`Machine`] each), the kernel's
//! empty TTBR0 table (run with ASID 0 when no user address space is
//! installed) and a set of live address spaces. Each space has its own
//! lower-half [`PageTable`], an [`AsidContext`], and a reference model of
//! what it maps. Operations are what the kernel does:
//!
//! - switch: `asids.switch_to(cpu, ctx, cpu's TLB)` (which may flush that
//!   CPU's TLB locally after a rollover), then TTBR0 = root | ASID;
//! - unmap / protect: an editor with `TlbScope::Asid(ctx.asid())` -- the
//!   space's *current* ASID, which a rollover may have changed -- whose
//!   invalidations are broadcast to every CPU;
//! - destroy: every CPU running the space switches to the empty table with
//!   ASID 0, then the table is destroyed under the space's ASID, then the
//!   ASID is released.
//!
//! Checked at every step: each access behaves exactly as the reference
//! model says (the tag a mapped page holds; a fault for an unmapped page or
//! a write to a read-only one), and the TLB model panics on any stale
//! translation. No frame or table page is freed while a TLB that can still
//! use it leads to it. Alongside runs a model of the allocator's
//! bookkeeping (which context takes a number in which generation, what each
//! rollover reserves), which predicts exactly when rollovers happen and
//! when a switch must flush, and checks that no number is handed out twice
//! in one generation and that 8-bit ASIDs never have bits [15:8] set.
//! At the end everything is destroyed and every frame is back.

use aspen_mm::testbed::NoTlb;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use aspen_mm::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use aspen_mm::asid::{AsidAllocator, AsidBits, AsidContext, MAX_CPUS};
use aspen_mm::frame::{AllocError, BuddyAllocator, FrameAllocator};
use aspen_mm::paging::{Mapping, PageAttrs, PageSize, PageTable, VaHalf};
use aspen_mm::testbed::{Arena, El, Fault, Machine};
use aspen_mm::tlb::{Asid, TlbOps, TlbScope};
use proptest::prelude::*;

/// Where the simulated RAM starts (QEMU virt's RAM base).
const RAM_BASE: PhysAddr = PhysAddr::new(0x4000_0000);

/// Windows of `REGION_PAGES` pages each space may map: two sharing an L3
/// table, then ones crossing a 2 MiB, a 1 GiB and a 512 GiB boundary, so
/// table pages are shared, created and freed at every level.
const REGIONS: [u64; 4] = [0x40_0000, 0x5f_0000, 0x3fff_0000, 0x7f_ffff_0000];
/// More than `PER_PAGE_LIMIT`, so unmaps and protects of a whole region
/// take the whole-ASID invalidation path.
const REGION_PAGES: u64 = 64;

fn va_of(region: usize, page: u64) -> u64 {
    REGIONS[region % REGIONS.len()] + (page % REGION_PAGES) * PAGE_SIZE
}

/// The pages `first .. first + count` of a region, clipped to it.
fn span(region: usize, first: u64, count: u64) -> VirtRange {
    let first = first % REGION_PAGES;
    let count = count.clamp(1, REGION_PAGES - first);
    VirtRange::from_start_size(VirtAddr::new(va_of(region, first)), count * PAGE_SIZE).unwrap()
}

fn page_range(va: u64) -> VirtRange {
    VirtRange::from_start_size(VirtAddr::new(va), PAGE_SIZE).unwrap()
}

fn attrs(writable: bool) -> PageAttrs {
    if writable {
        PageAttrs::USER_RW
    } else {
        PageAttrs::USER_RO
    }
}

/// Simulated RAM and the buddy allocator over all of it.
struct Fixture {
    arena: Arena,
    buddy: BuddyAllocator<'static>,
    /// Free frames right after setup.
    baseline: usize,
}

impl Fixture {
    fn new(bytes: u64) -> Self {
        let arena = Arena::new(RAM_BASE, bytes);
        let buddy = BuddyAllocator::new_owned(&[arena.range()]).expect("buddy over the arena");
        let baseline = buddy.free_frame_count();
        Self { arena, buddy, baseline }
    }
}

/// The simulated CPUs. As a [`TlbOps`] it broadcasts (the `...IS`
/// operations table edits issue) to every CPU's TLB.
struct Cpus<'a> {
    machines: Vec<Machine<'a>>,
    /// Per CPU: a rollover happened since its last `switch_to`, so the
    /// allocator owes it a local flush (from the allocator model). Until
    /// then its TLB may hold entries of ASID numbers of an older
    /// generation; they cannot be used before the flush.
    flush_owed: [Cell<bool>; MAX_CPUS],
}

impl<'a> Cpus<'a> {
    fn new(arena: &'a Arena, n: usize) -> Self {
        assert!((1..=MAX_CPUS).contains(&n));
        Self { machines: (0..n).map(|_| Machine::new(arena)).collect(), flush_owed: Default::default() }
    }

    fn count(&self) -> usize {
        self.machines.len()
    }

    /// Fails the test if a TLB that may still use its entries leads to
    /// `frame` (a cached leaf mapping it, or a walk-cache entry naming it as
    /// a table). A CPU still owed a flush may hold entries of dead
    /// generations: they cannot be used before that flush.
    fn assert_forgotten(&self, frame: PhysAddr, what: &str) {
        if std::thread::panicking() {
            // An editor dropped while unwinding from a failed check frees
            // the rest of its batch: a second panic would abort the run.
            return;
        }
        for (cpu, m) in self.machines.iter().enumerate() {
            assert!(
                !m.holds_frame(frame) || self.flush_owed[cpu].get(),
                "{what} {frame:?}: cpu {cpu}'s TLB still leads to it, and no flush is owed"
            );
        }
    }
}

impl TlbOps for Cpus<'_> {
    fn begin(&self) {
        self.machines.iter().for_each(|m| m.begin());
    }
    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool) {
        self.machines.iter().for_each(|m| m.invalidate_page(asid, va, leaf_only));
    }
    fn invalidate_asid(&self, asid: Asid) {
        self.machines.iter().for_each(|m| m.invalidate_asid(asid));
    }
    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool) {
        self.machines.iter().for_each(|m| m.invalidate_kernel_page(va, leaf_only));
    }
    fn invalidate_all(&self) {
        self.machines.iter().for_each(|m| m.invalidate_all());
    }
    fn invalidate_all_local(&self) {
        panic!("a table edit issued a local flush");
    }
    fn sync(&self) {
        self.machines.iter().for_each(|m| m.sync());
    }
}

/// What `switch_to` gets as its TLB: one CPU's, counting local flushes.
/// Anything else from a switch is an error (no TLBI on context switch).
struct LocalTlb<'m, 'a> {
    machine: &'m Machine<'a>,
    flushes: Cell<u32>,
}

impl TlbOps for LocalTlb<'_, '_> {
    fn begin(&self) {
        panic!("switch_to issued begin()");
    }
    fn invalidate_page(&self, _: Asid, _: VirtAddr, _: bool) {
        panic!("switch_to issued a page invalidation");
    }
    fn invalidate_asid(&self, _: Asid) {
        panic!("switch_to issued an ASID invalidation");
    }
    fn invalidate_kernel_page(&self, _: VirtAddr, _: bool) {
        panic!("switch_to issued a kernel page invalidation");
    }
    fn invalidate_all(&self) {
        panic!("switch_to issued a broadcast invalidation");
    }
    fn invalidate_all_local(&self) {
        self.flushes.set(self.flushes.get() + 1);
        self.machine.invalidate_all_local();
    }
    fn sync(&self) {
        panic!("switch_to issued sync()");
    }
}

/// The buddy allocator, checking on every free that no TLB still leads to
/// the frame (unhook, invalidate, sync, then free).
struct Frames<'a> {
    buddy: &'a BuddyAllocator<'static>,
    cpus: &'a Cpus<'a>,
}

impl FrameAllocator for Frames<'_> {
    fn alloc_frames(&self, order: u32) -> Result<PhysAddr, AllocError> {
        self.buddy.alloc_frames(order)
    }

    fn free_frames(&self, start: PhysAddr, order: u32) {
        assert_eq!(order, 0);
        self.cpus.assert_forgotten(start, "frame freed");
        self.buddy.free_frames(start, order)
    }
}

/// What the reference model knows of one mapped page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    pa: PhysAddr,
    writable: bool,
    /// The first word of the frame.
    tag: u64,
}

type Table<'a> = PageTable<'a, Arena, Frames<'a>>;

struct Space<'a> {
    key: u64,
    table: Table<'a>,
    ctx: AsidContext,
    /// The reference model: page address -> page.
    pages: BTreeMap<u64, Page>,
    /// Allocator model: the generation of the context's id (`None`: never
    /// switched to) and its ASID then.
    generation: Option<u64>,
    number: u16,
}

/// A model of the allocator's bookkeeping in terms of contexts (not
/// numbers), enough to predict rollovers and flushes exactly.
struct AsidModel {
    /// ASID values, 0 included.
    count: usize,
    generation: u64,
    /// Numbers taken in this generation (0 included).
    taken: usize,
    /// Numbers handed out (or reserved) in this generation, and to whom.
    numbers: BTreeMap<u16, u64>,
    /// Per CPU: the context its active slot names (cleared by a rollover or
    /// by releasing that context).
    active: [Option<u64>; MAX_CPUS],
    /// Per CPU: the context reserved for it at the last rollover.
    reserved: [Option<u64>; MAX_CPUS],
    rollovers: u64,
}

impl AsidModel {
    fn new(bits: AsidBits) -> Self {
        Self {
            count: bits.count(),
            generation: 1,
            taken: 1,
            numbers: BTreeMap::new(),
            active: [None; MAX_CPUS],
            reserved: [None; MAX_CPUS],
            rollovers: 0,
        }
    }
}

/// Counters for the summary of a run.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    created: u64,
    switches: u64,
    local_flushes: u64,
    accesses: u64,
    edits_under_old_generation: u64,
    asid_changes: u64,
}

struct System<'a> {
    fx: &'a Fixture,
    cpus: &'a Cpus<'a>,
    frames: &'a Frames<'a>,
    bits: AsidBits,
    asids: AsidAllocator,
    /// The kernel's TTBR0 when no user address space runs: an empty table,
    /// with ASID 0.
    empty: Option<Table<'a>>,
    spaces: Vec<Space<'a>>,
    /// Per CPU: the space in its TTBR0 (`None`: the empty table).
    installed: Vec<Option<u64>>,
    model: AsidModel,
    next_key: u64,
    next_tag: u64,
    stats: Stats,
}

impl<'a> System<'a> {
    fn new(fx: &'a Fixture, cpus: &'a Cpus<'a>, frames: &'a Frames<'a>, bits: AsidBits) -> Self {
        let empty = PageTable::new(&fx.arena, frames, VaHalf::Lower).expect("empty table");
        for m in &cpus.machines {
            m.switch(empty.root(), Asid(0));
        }
        Self {
            fx,
            cpus,
            frames,
            bits,
            asids: AsidAllocator::new(bits),
            empty: Some(empty),
            spaces: Vec::new(),
            installed: vec![None; cpus.count()],
            model: AsidModel::new(bits),
            next_key: 1,
            next_tag: 1,
            stats: Stats::default(),
        }
    }

    fn index_of(&self, key: u64) -> usize {
        self.spaces.iter().position(|s| s.key == key).expect("live space")
    }

    /// A new address space (no ASID until it is switched to). Returns its
    /// index.
    fn create(&mut self) -> usize {
        let table = PageTable::new(&self.fx.arena, self.frames, VaHalf::Lower).expect("root table");
        let key = self.next_key;
        self.next_key += 1;
        self.stats.created += 1;
        self.spaces.push(Space {
            key,
            table,
            ctx: AsidContext::new(),
            pages: BTreeMap::new(),
            generation: None,
            number: 0,
        });
        self.spaces.len() - 1
    }

    /// What the kernel does on a context switch to space `i` on `cpu`.
    fn switch(&mut self, cpu: usize, i: usize) -> Asid {
        let key = self.spaces[i].key;
        let machine = &self.cpus.machines[cpu];
        let local = LocalTlb { machine, flushes: Cell::new(0) };

        // The model's prediction.
        let model = &mut self.model;
        let space = &self.spaces[i];
        let same_generation = space.generation == Some(model.generation);
        let renewed_reservation = !same_generation && model.reserved.contains(&Some(key));
        let mut rolled = false;
        if !same_generation && !renewed_reservation {
            if model.taken == model.count {
                rolled = true;
                model.generation += 1;
                model.rollovers += 1;
                model.numbers.clear();
                for c in 0..MAX_CPUS {
                    let k = model.active[c].take().or(model.reserved[c]);
                    model.reserved[c] = k;
                }
                let reserved: BTreeSet<u64> = model.reserved.iter().flatten().copied().collect();
                for &k in &reserved {
                    let s = self.spaces.iter().find(|s| s.key == k).expect("a reserved context is live");
                    let clash = model.numbers.insert(s.number, k);
                    assert_eq!(clash, None, "two reserved contexts share ASID {}", s.number);
                }
                model.taken = 1 + reserved.len();
                for owed in &self.cpus.flush_owed {
                    owed.set(true);
                }
            }
            model.taken += 1;
        }
        let flush_expected = self.cpus.flush_owed[cpu].get();

        let asid = self.asids.switch_to(cpu, &space.ctx, &local);
        machine.switch(space.table.root(), asid);

        // Checks.
        self.stats.switches += 1;
        self.stats.local_flushes += u64::from(local.flushes.get());
        assert_ne!(asid.0, 0, "ASID 0 is the kernel's");
        assert!((asid.0 as usize) < model.count, "{asid:?} wider than {:?}", self.bits);
        if self.bits == AsidBits::Eight {
            assert_eq!(asid.0 >> 8, 0, "8-bit ASID with bits [15:8] set: {asid:?}");
        }
        assert_eq!(space.ctx.asid(), Some(asid));
        assert_eq!(
            self.asids.rollovers(),
            model.rollovers,
            "rollover count differs from the model (model rolled over now: {rolled})"
        );
        assert_eq!(
            local.flushes.get(),
            u32::from(flush_expected),
            "cpu {cpu}: a local flush is due exactly once after each rollover, before the first new ASID"
        );
        self.cpus.flush_owed[cpu].set(false);
        if same_generation || renewed_reservation {
            assert_eq!(asid.0, space.number, "an ASID changed within its generation");
        } else {
            if let Some(owner) = model.numbers.get(&asid.0) {
                panic!("ASID {} handed out twice in one generation (to {owner} and {key})", asid.0);
            }
            model.numbers.insert(asid.0, key);
        }
        if space.generation.is_some() && space.number != asid.0 {
            self.stats.asid_changes += 1;
        }
        model.active[cpu] = Some(key);
        let space = &mut self.spaces[i];
        space.generation = Some(model.generation);
        space.number = asid.0;
        self.installed[cpu] = Some(key);

        // Spaces running on different CPUs have different ASIDs.
        let mut running = BTreeMap::new();
        for k in self.installed.iter().flatten() {
            let number = self.spaces[self.index_of(*k)].number;
            if let Some(other) = running.insert(number, *k) {
                assert_eq!(other, *k, "two running address spaces share ASID {number}");
            }
        }
        asid
    }

    /// The kernel's "no user address space" state on `cpu`: the empty table
    /// with ASID 0. The allocator is not involved.
    fn idle(&mut self, cpu: usize) {
        self.cpus.machines[cpu].switch(self.empty.as_ref().unwrap().root(), Asid(0));
        self.installed[cpu] = None;
    }

    /// The TLB backend and scope for editing space `i`: its current ASID,
    /// broadcast. A space that never ran has no ASID and no TLB entries.
    fn edit_target(&mut self, i: usize) -> (&'a dyn TlbOps, TlbScope) {
        let space = &self.spaces[i];
        match space.ctx.asid() {
            Some(asid) => {
                assert_eq!(asid.0, space.number);
                if space.generation != Some(self.model.generation) {
                    self.stats.edits_under_old_generation += 1;
                }
                (self.cpus as &dyn TlbOps, TlbScope::Asid(asid))
            }
            None => {
                assert!(space.generation.is_none());
                for page in space.pages.values() {
                    self.cpus.assert_forgotten(page.pa, "page of a space that never ran");
                }
                self.cpus.assert_forgotten(space.table.root(), "root of a space that never ran");
                (&NoTlb, TlbScope::Asid(Asid(0)))
            }
        }
    }

    /// Maps the pages of `range` that are not mapped yet, each to a fresh
    /// frame holding a unique tag. Mapping (invalid to valid) needs no TLB
    /// maintenance, so none is done.
    fn map(&mut self, i: usize, range: VirtRange, writable: bool) {
        let mut va = range.start.as_u64();
        while va < range.end_exclusive.as_u64() {
            if !self.spaces[i].pages.contains_key(&va) {
                let tag = self.next_tag;
                self.next_tag += 1;
                let pa = self.frames.alloc_frame().expect("data frame");
                self.fx.arena.write_bytes(pa, &tag.to_ne_bytes());
                self.fx.arena.write_bytes(pa + 16, &[0]);
                let space = &mut self.spaces[i];
                space.table.map(page_range(va), pa, attrs(writable)).expect("map");
                space.pages.insert(va, Page { pa, writable, tag });
            }
            va += PAGE_SIZE;
        }
    }

    fn unmap(&mut self, i: usize, range: VirtRange) {
        let (tlb, scope) = self.edit_target(i);
        let frames = self.frames;
        let cpus = self.cpus;
        let space = &mut self.spaces[i];
        let mut released = Vec::new();
        space
            .table
            .edit(tlb, scope, |leaf: Mapping| {
                cpus.assert_forgotten(leaf.pa, "page released");
                released.push(leaf);
                frames.free_frame(leaf.pa);
            })
            .unmap(range)
            .expect("unmap");
        let gone: Vec<(u64, Page)> =
            space.pages.range(range.start.as_u64()..range.end_exclusive.as_u64()).map(|(va, p)| (*va, *p)).collect();
        for (va, _) in &gone {
            space.pages.remove(va);
        }
        let want: Vec<Mapping> = gone
            .iter()
            .map(|(va, p)| Mapping {
                va: VirtAddr::new(*va),
                pa: p.pa,
                size: PageSize::Size4K,
                attrs: attrs(p.writable),
            })
            .collect();
        assert_eq!(released, want, "unmap released other leaves than the model holds");
    }

    fn protect(&mut self, i: usize, range: VirtRange, writable: bool) {
        let (tlb, scope) = self.edit_target(i);
        let space = &mut self.spaces[i];
        space
            .table
            .edit(tlb, scope, |leaf| panic!("protect released {leaf:?}"))
            .protect(range, attrs(writable))
            .expect("protect");
        for (_, page) in space.pages.range_mut(range.start.as_u64()..range.end_exclusive.as_u64()) {
            page.writable = writable;
        }
    }

    /// Destroys space `i`: every CPU running it switches to the empty
    /// table first, then the table goes under the space's ASID, then the
    /// ASID is released.
    fn destroy(&mut self, i: usize) {
        let key = self.spaces[i].key;
        for cpu in 0..self.cpus.count() {
            if self.installed[cpu] == Some(key) {
                self.idle(cpu);
            }
        }
        let (tlb, scope) = self.edit_target(i);
        // `remove`, not `swap_remove`: the order of `spaces` is the order of
        // creation, so index 0 is the oldest.
        let Space { table, ctx, pages, .. } = self.spaces.remove(i);
        let frames = self.frames;
        let cpus = self.cpus;
        let mut released = BTreeMap::new();
        table.destroy(tlb, scope, |leaf: Mapping| {
            cpus.assert_forgotten(leaf.pa, "page released");
            released.insert(leaf.va.as_u64(), leaf.pa);
            frames.free_frame(leaf.pa);
        });
        let want: BTreeMap<u64, PhysAddr> = pages.iter().map(|(va, p)| (*va, p.pa)).collect();
        assert_eq!(released, want, "destroy released other leaves than the model holds");

        self.asids.release(&ctx);
        assert_eq!(ctx.asid(), None, "a released context reads as unallocated");
        let model = &mut self.model;
        for c in 0..MAX_CPUS {
            let was_active = model.active[c] == Some(key);
            if was_active {
                model.active[c] = None;
            }
            if was_active || model.reserved[c] == Some(key) {
                model.reserved[c] = None;
            }
        }
    }

    /// Reads (and, with `write`, writes) the page at `va` from EL0 on `cpu`
    /// and checks the outcome against the model.
    fn access(&mut self, cpu: usize, va: u64, write: bool) {
        self.stats.accesses += 1;
        let machine = &self.cpus.machines[cpu];
        let page = self.installed[cpu].and_then(|k| self.spaces[self.index_of(k)].pages.get(&va).copied());
        let at = VirtAddr::new(va);
        let mut word = [0; 8];
        let read = machine.read_bytes(El::El0, at, &mut word);
        match page {
            None => assert!(matches!(read, Err(Fault::Translation { .. })), "cpu {cpu} read {va:#x}: {read:?}"),
            Some(p) => {
                assert_eq!(read, Ok(()), "cpu {cpu} read {va:#x}");
                assert_eq!(u64::from_ne_bytes(word), p.tag, "cpu {cpu} read {va:#x}: wrong frame");
            }
        }
        if write {
            let value = (self.stats.accesses as u8) | 1;
            let wrote = machine.write(El::El0, at + 16, value);
            match page {
                None => assert!(matches!(wrote, Err(Fault::Translation { .. })), "write {va:#x}: {wrote:?}"),
                Some(p) if p.writable => {
                    assert_eq!(wrote, Ok(()), "cpu {cpu} write {va:#x}");
                    let mut byte = [0];
                    self.fx.arena.read_bytes(p.pa + 16, &mut byte);
                    assert_eq!(byte[0], value, "the write went to another frame");
                }
                Some(_) => assert_eq!(wrote, Err(Fault::Permission { va: at + 16, level: 3 }), "write to RO {va:#x}"),
            }
        }
    }

    /// Reads every page the space running on `cpu` maps.
    fn touch_all(&mut self, cpu: usize) {
        let Some(key) = self.installed[cpu] else { return };
        let vas: Vec<u64> = self.spaces[self.index_of(key)].pages.keys().copied().collect();
        for va in vas {
            self.access(cpu, va, false);
        }
    }

    /// Destroys every space, then checks that every frame is back and that
    /// no TLB which owes no flush holds anything.
    fn finish(mut self) -> (Stats, u64) {
        while !self.spaces.is_empty() {
            self.destroy(self.spaces.len() - 1);
        }
        for (cpu, m) in self.cpus.machines.iter().enumerate() {
            if !self.cpus.flush_owed[cpu].get() {
                assert_eq!(
                    (m.cached_leaves(), m.cached_walks()),
                    (0, 0),
                    "cpu {cpu}: TLB entries outlived every address space"
                );
            }
        }
        self.empty.take().unwrap().destroy(&NoTlb, TlbScope::Asid(Asid(0)), |leaf| panic!("{leaf:?}"));
        assert_eq!(self.fx.buddy.free_frame_count(), self.fx.baseline, "frames leaked");
        (self.stats, self.asids.rollovers())
    }
}

// ---------------------------------------------------------------------------
// Property test: random operation sequences.

#[derive(Clone, Copy, Debug)]
enum Op {
    Create,
    Switch {
        cpu: usize,
        pick: usize,
    },
    /// Switch `cpu` to the empty table (a kernel thread runs).
    Idle {
        cpu: usize,
    },
    Destroy {
        pick: usize,
    },
    Map {
        pick: usize,
        region: usize,
        first: u64,
        count: u64,
        writable: bool,
    },
    Unmap {
        pick: usize,
        region: usize,
        first: u64,
        count: u64,
    },
    Protect {
        pick: usize,
        region: usize,
        first: u64,
        count: u64,
        writable: bool,
    },
    /// An EL0 access on `cpu`, to whatever space it runs.
    Access {
        cpu: usize,
        region: usize,
        page: u64,
        write: bool,
    },
    TouchAll {
        cpu: usize,
    },
    /// `n` short-lived processes on `cpu`, one after another: create,
    /// switch, map a page, read it, exit. Burns ASIDs towards rollovers.
    Churn {
        cpu: usize,
        n: usize,
    },
    /// `cpu` runs every live space in turn, reading all its pages: after
    /// a rollover, this renews (and may renumber) them, and fills the TLB
    /// under their new numbers.
    Tour {
        cpu: usize,
    },
}

/// Live spaces kept at most; a create beyond it destroys one first.
const MAX_LIVE: usize = 24;

fn op() -> impl Strategy<Value = Op> {
    let cpu = 0..MAX_CPUS;
    let span = (any::<usize>(), 0..REGIONS.len(), 0..REGION_PAGES, prop_oneof![3 => 1..=8u64, 1 => 1..=REGION_PAGES]);
    prop_oneof![
        2 => Just(Op::Create),
        5 => (cpu.clone(), any::<usize>()).prop_map(|(cpu, pick)| Op::Switch { cpu, pick }),
        1 => cpu.clone().prop_map(|cpu| Op::Idle { cpu }),
        2 => any::<usize>().prop_map(|pick| Op::Destroy { pick }),
        5 => (span.clone(), any::<bool>())
            .prop_map(|((pick, region, first, count), writable)| Op::Map { pick, region, first, count, writable }),
        2 => span.clone().prop_map(|(pick, region, first, count)| Op::Unmap { pick, region, first, count }),
        2 => (span, any::<bool>())
            .prop_map(|((pick, region, first, count), writable)| Op::Protect { pick, region, first, count, writable }),
        8 => (cpu.clone(), 0..REGIONS.len(), 0..REGION_PAGES, any::<bool>())
            .prop_map(|(cpu, region, page, write)| Op::Access { cpu, region, page, write }),
        2 => cpu.clone().prop_map(|cpu| Op::TouchAll { cpu }),
        2 => (cpu.clone(), 1..=200usize).prop_map(|(cpu, n)| Op::Churn { cpu, n }),
        1 => cpu.prop_map(|cpu| Op::Tour { cpu }),
    ]
}

impl System<'_> {
    fn pick(&self, pick: usize) -> Option<usize> {
        (!self.spaces.is_empty()).then(|| pick % self.spaces.len())
    }

    fn run(&mut self, op: Op) {
        let cpus = self.cpus.count();
        match op {
            Op::Create => {
                if self.spaces.len() >= MAX_LIVE {
                    self.destroy(0);
                }
                self.create();
            }
            Op::Switch { cpu, pick } => {
                if let Some(i) = self.pick(pick) {
                    self.switch(cpu % cpus, i);
                }
            }
            Op::Idle { cpu } => self.idle(cpu % cpus),
            Op::Destroy { pick } => {
                if let Some(i) = self.pick(pick) {
                    self.destroy(i);
                }
            }
            Op::Map { pick, region, first, count, writable } => {
                if let Some(i) = self.pick(pick) {
                    self.map(i, span(region, first, count), writable);
                }
            }
            Op::Unmap { pick, region, first, count } => {
                if let Some(i) = self.pick(pick) {
                    self.unmap(i, span(region, first, count));
                }
            }
            Op::Protect { pick, region, first, count, writable } => {
                if let Some(i) = self.pick(pick) {
                    self.protect(i, span(region, first, count), writable);
                }
            }
            Op::Access { cpu, region, page, write } => self.access(cpu % cpus, va_of(region, page), write),
            Op::TouchAll { cpu } => self.touch_all(cpu % cpus),
            Op::Churn { cpu, n } => {
                let cpu = cpu % cpus;
                let was = self.installed[cpu];
                let mut previous: Option<u64> = None;
                for j in 0..n {
                    let i = self.create();
                    let key = self.spaces[i].key;
                    self.switch(cpu, i);
                    let va = va_of(j, j as u64);
                    self.map(i, page_range(va), j % 2 == 0);
                    self.access(cpu, va, true);
                    if let Some(p) = previous.replace(key) {
                        let pi = self.index_of(p);
                        self.destroy(pi);
                    }
                }
                match was {
                    Some(k) => {
                        let i = self.index_of(k);
                        self.switch(cpu, i);
                    }
                    None => self.idle(cpu),
                }
                let last = self.index_of(previous.unwrap());
                self.destroy(last);
            }
            Op::Tour { cpu } => {
                let cpu = cpu % cpus;
                for i in 0..self.spaces.len() {
                    self.switch(cpu, i);
                    self.touch_all(cpu);
                }
            }
        }
    }
}

fn run_sequence(bits: AsidBits, cpus: usize, ops: &[Op]) -> (Stats, u64) {
    let fx = Fixture::new(16 << 20);
    let cpus = Cpus::new(&fx.arena, cpus);
    let frames = Frames { buddy: &fx.buddy, cpus: &cpus };
    let mut sys = System::new(&fx, &cpus, &frames, bits);
    for &op in ops {
        sys.run(op);
    }
    // Everything still mapped reads back its tag, on every CPU.
    for cpu in 0..cpus.count() {
        sys.run(Op::Tour { cpu });
    }
    // With 8 bits, a rollover (at least) and every space runs again: some
    // get new numbers. Then their first region goes, under those numbers,
    // and everything else reads back again.
    sys.run(Op::Churn { cpu: 0, n: 300 });
    for cpu in 0..cpus.count() {
        sys.run(Op::Tour { cpu });
    }
    for i in 0..sys.spaces.len() {
        sys.unmap(i, span(0, 0, REGION_PAGES));
        sys.protect(i, span(1, 0, REGION_PAGES), false);
    }
    for cpu in 0..cpus.count() {
        sys.run(Op::Tour { cpu });
    }
    sys.finish()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        max_shrink_iters: 2000,
        // Failures print the minimal sequence; no regression file (an
        // integration test has no lib.rs for proptest to place it by).
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// 8-bit ASIDs (bits [15:8] always zero): with the churn, most
    /// sequences cross several rollovers.
    #[test]
    fn random_sequences_8_bit(cpus in 1..=MAX_CPUS, ops in proptest::collection::vec(op(), 1..400)) {
        run_sequence(AsidBits::Eight, cpus, &ops);
    }

    #[test]
    fn random_sequences_16_bit(cpus in 1..=MAX_CPUS, ops in proptest::collection::vec(op(), 1..400)) {
        run_sequence(AsidBits::Sixteen, cpus, &ops);
    }
}

/// The property test's sequences do reach rollovers, with every feature
/// exercised (a sanity check on the generator, on a fixed seed).
#[test]
fn generated_sequences_cross_rollovers() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner =
        TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(Config::default().rng_algorithm));
    let strategy = proptest::collection::vec(op(), 300..400);
    let mut total = Stats::default();
    let mut rollovers = 0;
    for _ in 0..8 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let (stats, r) = run_sequence(AsidBits::Eight, 2, &ops);
        rollovers += r;
        total.asid_changes += stats.asid_changes;
        total.edits_under_old_generation += stats.edits_under_old_generation;
        total.local_flushes += stats.local_flushes;
        total.created += stats.created;
        total.switches += stats.switches;
        total.accesses += stats.accesses;
    }
    eprintln!("8 generated sequences, 2 cpus: {rollovers} rollovers, {total:?}");
    assert!(rollovers >= 8 * 2, "{rollovers} rollovers in 8 sequences");
    assert!(total.asid_changes > 0, "no space changed ASID at a rollover: {total:?}");
    assert!(total.edits_under_old_generation > 0, "no edit under an old-generation ASID: {total:?}");
    assert!(total.local_flushes >= rollovers);
}

// ---------------------------------------------------------------------------
// Many address spaces.

/// Creates `total` address spaces one after another, each switched to,
/// given a few pages and read back, with at most `live` alive at a time
/// (the oldest exits); between creations, another CPU switches round robin
/// among the live spaces and reads theirs back. A few resident spaces live
/// through the whole run and run only now and then, so rollovers renumber
/// them; they are edited while still holding an old generation's ASID,
/// and again after running. Returns the rollover count.
fn many_address_spaces(bits: AsidBits, cpus: usize, total: u64, live: usize) -> u64 {
    const RESIDENTS: usize = 3;
    let start = Instant::now();
    let fx = Fixture::new(8 << 20);
    let cpus = Cpus::new(&fx.arena, cpus);
    let frames = Frames { buddy: &fx.buddy, cpus: &cpus };
    let mut sys = System::new(&fx, &cpus, &frames, bits);
    let n_cpus = cpus.count();
    let mut residents = Vec::new();
    for r in 0..RESIDENTS {
        let i = sys.create();
        residents.push(sys.spaces[i].key);
        sys.switch(r % n_cpus, i);
        sys.map(i, span(r, 0, 8), true);
        sys.touch_all(r % n_cpus);
    }
    let mut round_robin = 0usize;
    for n in 0..total {
        let cpu = (n as usize) % n_cpus;
        if sys.spaces.len() >= live + RESIDENTS {
            // The oldest exits (switching away from it where it runs).
            let oldest = sys.spaces.iter().position(|s| !residents.contains(&s.key)).unwrap();
            sys.destroy(oldest);
        }
        let i = sys.create();
        sys.switch(cpu, i);
        for k in 0..3u64 {
            let va = va_of((n as usize + k as usize) % REGIONS.len(), n + k * 7);
            sys.map(i, page_range(va), k != 1);
        }
        sys.touch_all(cpu);
        // Round robin over the live ones on another CPU (or the same).
        round_robin = (round_robin + 1) % sys.spaces.len();
        let other = (cpu + 1) % n_cpus;
        sys.switch(other, round_robin);
        sys.touch_all(other);
        // Now and then an unmap or protect of a running or resting space.
        if n % 5 == 0 {
            let j = (n as usize * 7) % sys.spaces.len();
            if let Some((&va, _)) = sys.spaces[j].pages.iter().next() {
                if n % 2 == 0 {
                    sys.unmap(j, page_range(va));
                } else {
                    sys.protect(j, page_range(va), n % 3 == 0);
                }
            }
            sys.touch_all(other);
            sys.touch_all(cpu);
        }
        // The residents' turn: edited before they run (old ASID), then run
        // (maybe renumbered), read back and edited again.
        if n % 331 == 0 {
            let r = (n / 331) as usize % RESIDENTS;
            let i = sys.index_of(residents[r]);
            let page = (n / 331) % 8;
            sys.unmap(i, span(r, page, 1));
            sys.protect(i, span(r, 0, 8), n % 2 == 0);
            sys.switch(cpu, i);
            sys.touch_all(cpu);
            sys.map(i, span(r, page, 1), true);
            sys.access(cpu, span(r, page, 1).start.as_u64(), true);
            sys.unmap(i, span(r, 0, 8));
            sys.touch_all(cpu);
            sys.map(i, span(r, 0, 8), n % 3 == 0);
            sys.touch_all(cpu);
            for p in 0..8 {
                sys.access(cpu, span(r, p, 1).start.as_u64(), true);
            }
        }
    }
    let (stats, rollovers) = sys.finish();
    assert_eq!(stats.created, total + RESIDENTS as u64);
    eprintln!(
        "{total} address spaces, {bits:?}, {n_cpus} cpus: {rollovers} rollovers, {stats:?}, {:?}",
        start.elapsed()
    );
    assert!(stats.asid_changes > 0, "no resident was renumbered at a rollover");
    rollovers
}

/// How many address spaces the long runs create: over 70,000 always.
const MANY: u64 = 70_500;

/// The fewest creations a generation can have seen before it rolled over:
/// all 255 numbers are taken, and besides new spaces they can only have
/// gone to renewed survivors of the previous generation (the `live` ones
/// and the residents) and to each CPU's reservation.
fn creations_per_generation(live: usize, cpus: usize) -> u64 {
    255 - (live + 3 + cpus) as u64
}

#[test]
fn over_70000_address_spaces_8_bit() {
    let live = 40;
    let rollovers = many_address_spaces(AsidBits::Eight, 1, MANY, live);
    // 255 numbers per generation: at least one rollover per 255 creations.
    assert!(rollovers >= MANY / 255, "{rollovers}");
    assert!(rollovers <= MANY / creations_per_generation(live, 1) + 1, "{rollovers}");
}

#[test]
fn over_70000_address_spaces_8_bit_four_cpus() {
    let live = 40;
    let rollovers = many_address_spaces(AsidBits::Eight, MAX_CPUS, MANY, live);
    assert!(rollovers >= MANY / 255, "{rollovers}");
    assert!(rollovers <= MANY / creations_per_generation(live, MAX_CPUS) + 1, "{rollovers}");
}

#[test]
fn over_70000_address_spaces_16_bit() {
    // 65,535 numbers per generation: exactly one rollover in 70,500.
    assert_eq!(many_address_spaces(AsidBits::Sixteen, 2, MANY, 40), 1);
}
