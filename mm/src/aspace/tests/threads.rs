//! Threads: several tasks sharing one address space and its ASID. Thread
//! A faults pages in and leaves translations in the TLB; thread B changes
//! the space (munmap, mprotect, mremap, fork); A's next access must see
//! the change, never a stale entry (the TLB model panics on one).
//!
//! On one CPU the two threads share the CPU's TLB. On two CPUs each has
//! its own TLB model; the space's invalidations reach both, as the
//! kernel's inner-shareable `TLBI ...IS` instructions broadcast them
//! (`kernel/src/arch/aarch64/tlb.rs`), except the local flush the ASID
//! allocator asks for at a rollover, which stays on its CPU.

use core::sync::atomic::{AtomicUsize, Ordering};

use aspen_abi::mman::{MapFlags, MremapFlags, Prot};

use super::{assert_tlb_forgot_free_frames, map_anon, read, va, with_env, write, PS, RAM_BASE};
use crate::addr::{PhysAddr, VirtAddr};
use crate::asid::{AsidAllocator, AsidBits};
use crate::aspace::{AddressSpace, Env, FaultError, FaultKind, MmEnv};
use crate::frame::BuddyAllocator;
use crate::testbed::{Arena, El, Fault, Machine};
use crate::tlb::{Asid, TlbOps};

const RW: Prot = Prot::READ.union(Prot::WRITE);

#[test]
fn activating_the_same_space_again_keeps_its_asid() {
    with_env(32, |env| {
        let s = AddressSpace::new(env).unwrap();
        let (root, first) = s.activate(0);
        let other = AddressSpace::new(env).unwrap();
        let (_, other_asid) = other.activate(0);
        assert_ne!(other_asid, first);
        // Thread A, thread B of the same space: nothing to write to TTBR0.
        assert_eq!(s.activate(0), (root, first));
        assert_eq!(s.activate(0), (root, first));
        assert_eq!(s.activate(1), (root, first), "another CPU uses the same ASID");
        drop(other);
        drop(s);
    });
}

#[test]
fn thread_b_changes_what_thread_a_cached_on_one_cpu() {
    with_env(128, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 8, RW, MapFlags::PRIVATE);
        // Thread A: faults in and caches every page.
        for i in 0..8 {
            write(&mut space, p + i * PS, i as u8 + 1).unwrap();
            read(&mut space, p + i * PS).unwrap();
        }
        assert!(env.tlb().cached_leaves() >= 8);
        // Thread B (same space, same ASID, no switch): munmap.
        space.munmap(va(p), PS).unwrap();
        assert_tlb_forgot_free_frames(env, 128);
        assert_eq!(read(&mut space, p), Err(FaultError::Segv));
        // mprotect: A's cached writable entries must not let it write.
        space.mprotect(va(p + PS), PS, Prot::READ).unwrap();
        assert_eq!(write(&mut space, p + PS, 9), Err(FaultError::Segv));
        assert_eq!(read(&mut space, p + PS), Ok(2));
        // mremap: the old place forgets its pages, the new has them.
        let n =
            space.mremap(va(p + 2 * PS), 2 * PS, 2 * PS, MremapFlags::MAYMOVE | MremapFlags::FIXED, va(0x4000_0000));
        assert_eq!(n, Ok(va(0x4000_0000)));
        assert_eq!(read(&mut space, p + 2 * PS), Err(FaultError::Segv));
        assert_eq!(read(&mut space, 0x4000_0000 + PS), Ok(4));
        // fork: A's writable entries become copy-on-write.
        let mut child = space.fork().unwrap();
        let copies = env.stats().cow_copies() + env.stats().cow_reuses();
        write(&mut space, p + 4 * PS, 0x55).unwrap();
        assert_eq!(env.stats().cow_copies() + env.stats().cow_reuses(), copies + 1, "A's write faulted");
        assert_eq!(read(&mut child, p + 4 * PS), Ok(5));
        drop(child);
        drop(space);
    });
}

/// Two CPUs of the model: one TLB each. With `broadcast`, invalidations
/// reach both (`TLBI ...IS`); without, only the CPU that issues them (as
/// non-shareable `TLBI`s would), to show what the test catches. The local
/// flush always stays on the CPU that asks.
struct TwoCpus<'a> {
    cpus: [Machine<'a>; 2],
    current: AtomicUsize,
    broadcast: bool,
}

impl<'a> TwoCpus<'a> {
    fn new(arena: &'a Arena, broadcast: bool) -> Self {
        Self { cpus: [Machine::new(arena), Machine::new(arena)], current: AtomicUsize::new(0), broadcast }
    }

    fn on(&self, cpu: usize) -> &Machine<'_> {
        self.current.store(cpu, Ordering::Relaxed);
        &self.cpus[cpu]
    }

    /// The CPUs an invalidation reaches.
    fn targets(&self) -> impl Iterator<Item = &Machine<'a>> {
        let current = self.current.load(Ordering::Relaxed);
        self.cpus.iter().enumerate().filter(move |(i, _)| self.broadcast || *i == current).map(|(_, c)| c)
    }
}

impl TlbOps for TwoCpus<'_> {
    fn begin(&self) {
        self.targets().for_each(|c| c.begin());
    }
    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool) {
        self.targets().for_each(|c| c.invalidate_page(asid, va, leaf_only));
    }
    fn invalidate_asid(&self, asid: Asid) {
        self.targets().for_each(|c| c.invalidate_asid(asid));
    }
    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool) {
        self.targets().for_each(|c| c.invalidate_kernel_page(va, leaf_only));
    }
    fn invalidate_all(&self) {
        self.targets().for_each(|c| c.invalidate_all());
    }
    fn invalidate_all_local(&self) {
        self.cpus[self.current.load(Ordering::Relaxed)].invalidate_all_local();
    }
    fn sync(&self) {
        self.targets().for_each(|c| c.sync());
    }
}

type SmpSpace<'e, 'a> = AddressSpace<'e, Env<'a, Arena, TwoCpus<'a>>>;

/// One access of the thread running on `cpu`, faults handled.
fn access_on(space: &mut SmpSpace<'_, '_>, cpu: usize, at: u64, kind: FaultKind) -> Result<u8, FaultError> {
    for _ in 0..3 {
        let machine = space.env().tlb().on(cpu);
        let (root, asid) = space.activate(cpu);
        machine.switch(root, asid);
        let result = match kind {
            FaultKind::Read => machine.read(El::El0, va(at)),
            FaultKind::Write => machine.write(El::El0, va(at), 0x77).map(|()| 0x77),
            FaultKind::Exec => machine.exec(El::El0, va(at)).map(|_| 0),
        };
        match result {
            Ok(byte) => return Ok(byte),
            Err(Fault::Translation { .. } | Fault::Permission { .. }) => space.handle_fault(va(at), kind)?,
            Err(other) => panic!("unexpected fault {other:?}"),
        }
    }
    panic!("no progress at {at:#x}");
}

#[test]
fn thread_b_on_another_cpu_changes_what_thread_a_cached() {
    let pages = 256;
    let arena = Arena::new(RAM_BASE, pages * PS);
    let frames = BuddyAllocator::new_owned(&[arena.range()]).expect("buddy over the arena");
    let tlb = TwoCpus::new(&arena, true);
    let asids = AsidAllocator::new(AsidBits::Sixteen);
    let env = Env::new(&arena, &frames, &tlb, &asids);
    let baseline = frames.free_frame_count();
    {
        let mut space: SmpSpace<'_, '_> = AddressSpace::new(&env).unwrap();
        let p = space.mmap(va(0), 8 * PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).unwrap().as_u64();
        // A on CPU 0 and B on CPU 1 both touch every page: both TLBs hold them.
        for i in 0..8 {
            access_on(&mut space, 0, p + i * PS, FaultKind::Write).unwrap();
            access_on(&mut space, 1, p + i * PS, FaultKind::Read).unwrap();
        }
        assert!(tlb.cpus[0].cached_leaves() >= 8 && tlb.cpus[1].cached_leaves() >= 8);
        // B (CPU 1) unmaps, re-protects, moves; A (CPU 0) must see it all.
        space.munmap(va(p), PS).unwrap();
        assert_eq!(access_on(&mut space, 0, p, FaultKind::Read), Err(FaultError::Segv));
        space.mprotect(va(p + PS), PS, Prot::READ).unwrap();
        assert_eq!(access_on(&mut space, 0, p + PS, FaultKind::Write), Err(FaultError::Segv));
        let flags = MremapFlags::MAYMOVE | MremapFlags::FIXED;
        assert_eq!(space.mremap(va(p + 2 * PS), PS, PS, flags, va(0x4000_0000)), Ok(va(0x4000_0000)));
        assert_eq!(access_on(&mut space, 0, p + 2 * PS, FaultKind::Read), Err(FaultError::Segv));
        assert_eq!(access_on(&mut space, 0, 0x4000_0000, FaultKind::Read), Ok(0x77));
        let child = space.fork().unwrap();
        let before = env.stats().faults();
        access_on(&mut space, 0, p + 3 * PS, FaultKind::Write).unwrap();
        assert_eq!(env.stats().faults(), before + 1, "A's cached writable entry was invalidated on its CPU");
        drop(child);
        drop(space);
    }
    for i in 0..pages {
        let pa: PhysAddr = RAM_BASE + i * PS;
        if frames.meta(pa).is_some_and(|m| m.is_free()) {
            assert!(!tlb.cpus.iter().any(|c| c.holds_frame(pa)), "{pa:?} free but still in a TLB");
        }
    }
    assert_eq!(frames.free_frame_count(), baseline, "frames leaked");
}

#[test]
fn without_broadcast_invalidation_thread_a_would_use_a_stale_entry() {
    let arena = Arena::new(RAM_BASE, 64 * PS);
    let frames = BuddyAllocator::new_owned(&[arena.range()]).expect("buddy over the arena");
    let tlb = TwoCpus::new(&arena, false);
    let asids = AsidAllocator::new(AsidBits::Sixteen);
    let env = Env::new(&arena, &frames, &tlb, &asids);
    let baseline = frames.free_frame_count();
    {
        let mut space: SmpSpace<'_, '_> = AddressSpace::new(&env).unwrap();
        let p = space.mmap(va(0), PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).unwrap().as_u64();
        access_on(&mut space, 0, p, FaultKind::Write).unwrap();
        access_on(&mut space, 1, p, FaultKind::Read).unwrap();
        // B unmaps on CPU 1; only CPU 1's TLB hears of it.
        tlb.on(1);
        space.munmap(va(p), PS).unwrap();
        let stale = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tlb.cpus[0].read(El::El0, va(p))));
        let message = stale.expect_err("CPU 0 used the unmapped page unseen");
        let text = message.downcast_ref::<std::string::String>().map_or("", |m| m.as_str());
        assert!(text.contains("stale translation"), "{text}");
        drop(space);
    }
    assert_eq!(frames.free_frame_count(), baseline, "frames leaked");
}
