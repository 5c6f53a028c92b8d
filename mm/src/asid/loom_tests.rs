//! Model checks of the allocator's lock-free switch path against a
//! rollover on another CPU, with `loom` exploring every interleaving (and
//! every value a relaxed load may return). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p aspen-mm --release --lib asid::loom_tests`
//! (`make loom`).
//!
//! What each checks, in every interleaving: two address spaces that may be
//! running at once never share an ASID number within a generation; a CPU
//! never returns an ASID of a generation newer than its last local flush;
//! and a CPU flushes at most once per rollover.

use super::*;
use crate::addr::VirtAddr;
use alloc::sync::Arc;
use core::cell::Cell;
use loom::thread;

/// Counts the local flushes of one CPU; anything else is an error.
#[derive(Default)]
struct CpuTlb {
    local_flushes: Cell<u32>,
}

impl TlbOps for CpuTlb {
    fn begin(&self) {
        unreachable!("a switch issued a broadcast TLBI")
    }
    fn invalidate_page(&self, _: Asid, _: VirtAddr, _: bool) {
        unreachable!("a switch issued a broadcast TLBI")
    }
    fn invalidate_asid(&self, _: Asid) {
        unreachable!("a switch issued a broadcast TLBI")
    }
    fn invalidate_kernel_page(&self, _: VirtAddr, _: bool) {
        unreachable!("a switch issued a broadcast TLBI")
    }
    fn invalidate_all(&self) {
        unreachable!("a switch issued a broadcast TLBI")
    }
    fn invalidate_all_local(&self) {
        self.local_flushes.set(self.local_flushes.get() + 1);
    }
    fn sync(&self) {
        unreachable!("a switch issued a broadcast TLBI")
    }
}

fn generation_of(id: u64) -> u64 {
    id >> GENERATION_SHIFT
}

/// Takes every ASID but those in `free`, as if the generation had been
/// used up by contexts that are gone.
fn use_up(alloc: &AsidAllocator, free: &[usize]) {
    let mut inner = alloc.inner.lock();
    let count = alloc.bits.count();
    for asid in 0..count {
        if !free.contains(&asid) {
            inner.test_and_set(asid);
        }
    }
}

/// One CPU switches back to the context it runs (the fast path) while
/// another switches to a new context and so rolls over: whichever wins,
/// the running context keeps its number and the new one gets another.
fn fast_path_against_rollover(bits: AsidBits) {
    // How many explored executions ended each way (outside loom's model:
    // plain atomics), to show both orders were explored.
    let outcomes = Arc::new([std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)]);
    let seen = Arc::clone(&outcomes);
    loom::model(move || {
        let alloc = Arc::new(AsidAllocator::new(bits));
        let running = Arc::new(AsidContext::new());
        let fresh = Arc::new(AsidContext::new());
        let tlb0 = CpuTlb::default();
        let first = alloc.switch_to(0, &running, &tlb0);
        use_up(&alloc, &[]);

        let cpu1 = {
            let (alloc, fresh) = (Arc::clone(&alloc), Arc::clone(&fresh));
            thread::spawn(move || {
                let tlb = CpuTlb::default();
                let asid = alloc.switch_to(1, &fresh, &tlb);
                let id = fresh.id.load(Ordering::Relaxed);
                (asid, id, tlb.local_flushes.get())
            })
        };
        let again = alloc.switch_to(0, &running, &tlb0);
        let running_id = running.id.load(Ordering::Relaxed);
        let (asid1, id1, flushes1) = cpu1.join().unwrap();

        assert_eq!(alloc.rollovers(), 1);
        assert_eq!(again, first, "the running context kept its number");
        assert_ne!(asid1, again, "one number for two running contexts");
        assert_eq!(generation_of(id1), 2);
        assert_eq!(flushes1, 1, "CPU 1 flushed before using generation 2");
        // CPU 0 either won (still generation 1, its flush still owed) or
        // lost and renewed under the lock, flushing first.
        match generation_of(running_id) {
            1 => assert_eq!(tlb0.local_flushes.get(), 0),
            2 => assert_eq!(tlb0.local_flushes.get(), 1),
            g => panic!("generation {g}"),
        }
        seen[generation_of(running_id) as usize - 1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Its next switch completes whatever is owed: generation 2, one
        // flush, the same number.
        assert_eq!(alloc.switch_to(0, &running, &tlb0), first);
        assert_eq!(generation_of(running.id.load(Ordering::Relaxed)), 2);
        assert_eq!(tlb0.local_flushes.get(), 1);
    });
    let [won, lost] = [0, 1].map(|i| outcomes[i].load(std::sync::atomic::Ordering::Relaxed));
    assert!(won > 0 && lost > 0, "both orders explored: fast path won {won} times, lost {lost}");
}

#[test]
fn fast_path_against_rollover_8_bit() {
    fast_path_against_rollover(AsidBits::Eight);
}

#[test]
fn fast_path_against_rollover_16_bit() {
    fast_path_against_rollover(AsidBits::Sixteen);
}

/// Two CPUs switch to new contexts when one ASID is left: one takes it,
/// the other rolls over; neither fails, they get different numbers, and
/// each CPU that runs generation 2 flushed first.
fn last_asid_raced_by_two_cpus(bits: AsidBits) {
    loom::model(move || {
        let alloc = Arc::new(AsidAllocator::new(bits));
        let last = bits.count() - 1;
        use_up(&alloc, &[last]);
        let spawn = |cpu: usize| {
            let alloc = Arc::clone(&alloc);
            thread::spawn(move || {
                let ctx = AsidContext::new();
                let tlb = CpuTlb::default();
                let asid = alloc.switch_to(cpu, &ctx, &tlb);
                (asid, ctx.id.load(Ordering::Relaxed), tlb.local_flushes.get())
            })
        };
        let (a, b) = (spawn(0), spawn(1));
        let results = [a.join().unwrap(), b.join().unwrap()];
        assert_eq!(alloc.rollovers(), 1);
        let [(asid_a, id_a, flush_a), (asid_b, id_b, flush_b)] = results;
        assert_ne!(asid_a, asid_b, "two running contexts share an ASID");
        assert!(asid_a.0 != 0 && asid_b.0 != 0);
        for (id, flushes) in [(id_a, flush_a), (id_b, flush_b)] {
            assert!(usize::from((id & ASID_MASK) as u16) < bits.count());
            assert_eq!(u32::from(generation_of(id) == 2), flushes, "flushed exactly when it went to generation 2");
        }
        // The one that took the last number of generation 1 kept it; the
        // rollover reserved it, so the other did not get it again.
        assert!(results.iter().any(|r| generation_of(r.1) == 1 && usize::from(r.0 .0) == last));
    });
}

#[test]
fn last_asid_raced_by_two_cpus_8_bit() {
    last_asid_raced_by_two_cpus(AsidBits::Eight);
}

#[test]
fn last_asid_raced_by_two_cpus_16_bit() {
    last_asid_raced_by_two_cpus(AsidBits::Sixteen);
}
