//! Host tests of address spaces on the simulated machine: every user
//! access goes through the TLB model (which panics on a stale
//! translation), faults go to `handle_fault` as the kernel's abort handler
//! would send them, and every test ends by checking that each frame came
//! back to the pool.

mod args;
mod file;
mod free_area;
mod lock;
mod memory;
mod preempt;
mod prop;
mod remap;
mod shared;
mod smp;
mod threads;
mod wx;

use aspen_abi::mman::{MapFlags, Prot};
use aspen_abi::uaccess::{UserMemory, UserSlice};
use std::vec::Vec;

use crate::errno::Errno;

use super::{AddressSpace, Env, FaultError, FaultKind, MmEnv, WxPolicy};
use crate::addr::{PhysAddr, VirtAddr, PAGE_SIZE};
use crate::asid::{AsidAllocator, AsidBits};
use crate::frame::BuddyAllocator;
use crate::testbed::{Arena, El, Fault, Machine};

pub(super) const PS: u64 = PAGE_SIZE;
pub(super) const RAM_BASE: PhysAddr = PhysAddr::new(0x4000_0000);

pub(super) type TestEnv<'a> = Env<'a, Arena, Machine<'a>>;
pub(super) type Space<'e, 'a> = AddressSpace<'e, TestEnv<'a>>;

/// CPUs of the machine every test runs on: the test's accesses run on
/// CPU 0, and its space runs on all of them ([`switch`]), so the others'
/// TLBs walk it speculatively and keep what they found until an
/// invalidation reaches them.
pub(super) const CPUS: usize = 2;

/// Runs `f` on a machine with `pages` frames of RAM and [`CPUS`] CPUs,
/// then checks that every frame is back and no page is cached any more.
pub(super) fn with_env<R>(pages: u64, f: impl FnOnce(&TestEnv<'_>) -> R) -> R {
    with_env_bits(pages, AsidBits::Sixteen, f)
}

/// As [`with_env`], with ASIDs of `bits` bits.
pub(super) fn with_env_bits<R>(pages: u64, bits: AsidBits, f: impl FnOnce(&TestEnv<'_>) -> R) -> R {
    with_env_policy(pages, bits, WxPolicy::Flip, f)
}

/// As [`with_env`], with ASIDs of `bits` bits and W^X policy `policy`.
pub(super) fn with_env_policy<R>(pages: u64, bits: AsidBits, policy: WxPolicy, f: impl FnOnce(&TestEnv<'_>) -> R) -> R {
    with_env_cpus(pages, bits, policy, CPUS, f)
}

/// As [`with_env_policy`], on a machine of `cpus` CPUs.
pub(super) fn with_env_cpus<R>(
    pages: u64,
    bits: AsidBits,
    policy: WxPolicy,
    cpus: usize,
    f: impl FnOnce(&TestEnv<'_>) -> R,
) -> R {
    let arena = Arena::new(RAM_BASE, pages * PS);
    let frames = BuddyAllocator::new_owned(&[arena.range()]).expect("buddy over the arena");
    let machine = Machine::with_cpus(&arena, cpus);
    machine.watch_frees(&frames);
    let asids = AsidAllocator::new(bits);
    let env = Env::new(&arena, &frames, &machine, &asids).with_wx_policy(policy);
    let baseline = frames.free_frame_count();
    let result = f(&env);
    assert_eq!(frames.free_frame_count(), baseline, "frames leaked");
    assert_eq!(env.stats().page_cache_pages(), 0, "page-cache pages leaked");
    result
}

pub(super) fn va(raw: u64) -> VirtAddr {
    VirtAddr::new(raw)
}

/// Makes `space` current on every simulated CPU (its threads run on all
/// of them); CPU 0 stays the one that accesses memory.
pub(super) fn switch(space: &Space<'_, '_>) {
    let machine = space.env().tlb();
    for cpu in (0..machine.cpus()).rev() {
        machine.on(cpu);
        let (root, asid) = space.activate(cpu);
        machine.switch(root, asid);
    }
}

/// One user access at EL0 through the TLB model; a translation or
/// permission fault goes to `handle_fault`, then the access is retried.
/// Returns the byte read (or written), or the fault's verdict.
pub(super) fn access(space: &mut Space<'_, '_>, at: u64, kind: FaultKind, value: u8) -> Result<u8, FaultError> {
    switch(space);
    let at = va(at);
    for _ in 0..3 {
        let cpu = space.env().tlb();
        let result = match kind {
            FaultKind::Read => cpu.read(El::El0, at),
            FaultKind::Write => cpu.write(El::El0, at, value).map(|()| value),
            FaultKind::Exec => cpu.exec(El::El0, at).map(|_| 0),
        };
        match result {
            Ok(byte) => return Ok(byte),
            Err(Fault::Translation { .. } | Fault::Permission { .. }) => space.handle_fault(at, kind)?,
            Err(other) => panic!("unexpected fault {other:?}"),
        }
    }
    panic!("{at:?}: the fault handler does not make progress");
}

pub(super) fn read(space: &mut Space<'_, '_>, at: u64) -> Result<u8, FaultError> {
    access(space, at, FaultKind::Read, 0)
}

pub(super) fn write(space: &mut Space<'_, '_>, at: u64, value: u8) -> Result<(), FaultError> {
    access(space, at, FaultKind::Write, value).map(drop)
}

pub(super) fn exec(space: &mut Space<'_, '_>, at: u64) -> Result<(), FaultError> {
    access(space, at, FaultKind::Exec, 0).map(drop)
}

/// How many faults `f` took.
pub(super) fn faults_during(env: &TestEnv<'_>, f: impl FnOnce()) -> u64 {
    let before = env.stats().faults();
    f();
    env.stats().faults() - before
}

/// Anonymous mapping helper: mmap(0, pages, prot, flags | MAP_ANONYMOUS).
/// Copies the user memory at `at` into `buf`, the range checked as a system
/// call checks it.
pub(super) fn read_user(space: &mut impl UserMemory, at: u64, buf: &mut [u8]) -> Result<(), Errno> {
    space.read(UserSlice::new(at, buf.len() as u64)?, buf)
}

/// Copies `data` to the user memory at `at`, as [`read_user`] reads.
pub(super) fn write_user(space: &mut impl UserMemory, at: u64, data: &[u8]) -> Result<(), Errno> {
    space.write(UserSlice::new(at, data.len() as u64)?, data)
}

pub(super) fn map_anon(space: &mut Space<'_, '_>, pages: u64, prot: Prot, flags: MapFlags) -> u64 {
    space.mmap(va(0), pages * PS, prot, flags | MapFlags::ANONYMOUS, None, 0).expect("mmap").as_u64()
}

/// The vareas as (start, end, prot bits).
pub(super) fn layout(space: &Space<'_, '_>) -> Vec<(u64, u64, u64)> {
    space.vareas().map(|v| (v.range.start.as_u64(), v.range.end_exclusive.as_u64(), v.prot.bits())).collect()
}

/// Checks that no free frame is still reachable through the TLB model.
pub(super) fn assert_tlb_forgot_free_frames(env: &TestEnv<'_>, arena_pages: u64) {
    let frames = env.frames();
    for i in 0..arena_pages {
        let pa = RAM_BASE + i * PS;
        if frames.meta(pa).is_some_and(|m| m.is_free()) {
            assert!(!env.tlb().holds_frame(pa), "{pa:?} is free but the TLB still leads to it");
        }
    }
}
