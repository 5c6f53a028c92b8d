//! `bench --scale [case ...]`: how the memory calls scale with threads of
//! one process on several cores (issue 13), one line per case and thread
//! count T = 1, 2, 4:
//!
//! ```text
//! scale <case> threads=<T> ops=<total> ticks=<elapsed> ticks_per_op=<t> thread_ticks_per_op=<t> pinned=<yes|no> cpus=<n> freq=<hz>
//! ```
//!
//! Cases: `compute` (the control: each thread runs the same arithmetic,
//! no kernel entry; its figures are what the host gives, on a host with
//! fewer cores than the guest's the floor for every kernel), `fault` (each thread writes the first byte of every page of a
//! fresh private anonymous mapping of its own, 4 MiB in its own 2 MiB-aligned
//! tables: first-touch page faults) and `mmap` (each thread maps 64 KiB,
//! touches its 16 pages and unmaps it, over and over: disjoint regions of one
//! address space). Every thread does the same work; thread i is pinned to
//! CPU i when the machine has T CPUs online (`pinned=no` otherwise). The
//! threads wait at a start line; `ticks` runs from the start to the last
//! thread's end, best of [`ROUNDS`].
//!
//! Two figures per line, because there are two clocks. Under QEMU
//! `-icount`, the vCPUs take turns and virtual time counts the instructions
//! of all of them, so `ticks_per_op` (elapsed / all operations) is the work
//! one operation costs the machine: it stays flat when threads scale (no
//! lock spinning, no cache-line ping-pong in the kernel's instructions) and
//! grows with contention. Without `-icount` (MTTCG, real parallelism),
//! `thread_ticks_per_op` (elapsed / one thread's operations) is the time a
//! thread waits for each of its operations: flat when the kernel lets the
//! threads run in parallel, T times one thread's when it serialises them.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aspen_sys::mem::{self, MapFlags, Prot, PAGE_SIZE};
use aspen_sys::raw::{syscall3, Sysno};
use aspen_sys::{println, process, thread, time};

use crate::{anon, fail, touch};

/// Thread counts measured.
const THREADS: [usize; 3] = [1, 2, 4];
/// The most threads a round has.
const MAX_THREADS: usize = 4;
/// Rounds per case and thread count; the best is reported.
const ROUNDS: usize = 3;
/// Pages each thread faults in per round in `fault`.
const FAULT_PAGES: usize = 1024;
/// What one last-level table maps: each thread's `fault` region starts one
/// and takes whole ones.
const TABLE_SPAN: usize = 2 << 20;
/// From one thread's `fault` region to the next.
const FAULT_STRIDE: usize = (FAULT_PAGES * PAGE_SIZE).next_multiple_of(TABLE_SPAN);
/// Blocks of arithmetic each thread runs per round in `compute`, and the
/// multiply-adds of a block (about as long as a first-touch fault takes
/// under icount).
const COMPUTE_BLOCKS: usize = 1024;
const COMPUTE_STEPS: u64 = 300;
/// Cycles each thread runs per round in `mmap`.
const MMAP_CYCLES: usize = 200;
/// The `mmap` case's mapping.
const MMAP_LEN: usize = 64 << 10;

/// What a round's threads do.
#[derive(Clone, Copy)]
enum Case {
    /// The control: user-space arithmetic, no kernel entry. What it shows
    /// at T threads is what the host gives, the floor for every kernel.
    Compute,
    Fault,
    Mmap,
}

/// Every case, in the order they run.
const CASES: [Case; 3] = [Case::Compute, Case::Fault, Case::Mmap];

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Fault => "fault",
            Case::Mmap => "mmap",
            Case::Compute => "compute",
        }
    }

    /// Operations one thread makes in a round.
    fn ops_per_thread(self) -> u64 {
        match self {
            Case::Fault => FAULT_PAGES as u64,
            Case::Mmap => MMAP_CYCLES as u64,
            Case::Compute => COMPUTE_BLOCKS as u64,
        }
    }
}

/// The round the threads are released into (0: none yet).
static GO: AtomicU64 = AtomicU64::new(0);
/// Threads waiting at the start line of the next round.
static READY: AtomicUsize = AtomicUsize::new(0);
/// Threads done with the current round.
static DONE: AtomicUsize = AtomicUsize::new(0);
/// Which case the round runs (`Case as usize`).
static CASE: AtomicUsize = AtomicUsize::new(0);
/// Each thread's `fault` region for the current round.
static REGION: [AtomicUsize; MAX_THREADS] = [const { AtomicUsize::new(0) }; MAX_THREADS];
/// Each thread's end of the current round (counter ticks).
static END: [AtomicU64; MAX_THREADS] = [const { AtomicU64::new(0) }; MAX_THREADS];
/// Set by a thread whose pinning failed.
static UNPINNED: AtomicUsize = AtomicUsize::new(0);
/// Threads to pin (0: none).
static PIN: AtomicUsize = AtomicUsize::new(0);
/// Rounds the helper threads run before they end.
static LAST_ROUND: AtomicU64 = AtomicU64::new(0);

/// CPUs this process may run on.
fn cpus_allowed() -> usize {
    let mut mask = [0u64; 16];
    // SAFETY: the kernel writes at most `size_of_val(&mask)` bytes into it.
    let n = unsafe {
        syscall3(Sysno::SchedGetaffinity.number(), 0, core::mem::size_of_val(&mask), mask.as_mut_ptr() as usize)
    };
    if n <= 0 {
        return 1;
    }
    mask.iter().map(|w| w.count_ones() as usize).sum()
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> bool {
    let mask: u64 = 1 << cpu;
    // SAFETY: the kernel only reads the 8-byte mask.
    let r = unsafe { syscall3(Sysno::SchedSetaffinity.number(), 0, 8, &mask as *const u64 as usize) };
    r == 0
}

/// One thread's work in one round.
fn work(case: Case, me: usize) {
    match case {
        Case::Compute => {
            let mut x = me as u64 + 1;
            for step in 0..COMPUTE_BLOCKS as u64 * COMPUTE_STEPS {
                x = core::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(step));
            }
        }
        Case::Fault => touch(REGION[me].load(Ordering::Acquire), FAULT_PAGES * PAGE_SIZE),
        Case::Mmap => {
            for _ in 0..MMAP_CYCLES {
                // SAFETY: no MAP_FIXED: the kernel picks a free range.
                let addr = unsafe {
                    mem::mmap(0, MMAP_LEN, Prot::READ | Prot::WRITE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0)
                }
                .unwrap_or_else(|e| fail("mmap", e));
                touch(addr, MMAP_LEN);
                // SAFETY: ours, unused from here on.
                unsafe { mem::munmap(addr, MMAP_LEN) }.unwrap_or_else(|e| fail("munmap", e));
            }
        }
    }
}

fn case_of(value: usize) -> Case {
    CASES.into_iter().find(|&c| c as usize == value).unwrap_or(Case::Mmap)
}

/// Waits (yielding the CPU) until `done` says so.
fn wait_until(done: impl Fn() -> bool) {
    while !done() {
        let _ = process::sched_yield();
    }
}

/// A helper thread (1 .. T-1): rounds until [`LAST_ROUND`].
extern "C" fn helper(me: usize) {
    if PIN.load(Ordering::Acquire) != 0 && !pin_to(me) {
        UNPINNED.store(1, Ordering::Release);
    }
    let mut round = 0;
    loop {
        READY.fetch_add(1, Ordering::AcqRel);
        wait_until(|| GO.load(Ordering::Acquire) > round);
        round += 1;
        if round > LAST_ROUND.load(Ordering::Acquire) {
            return;
        }
        work(case_of(CASE.load(Ordering::Acquire)), me);
        END[me].store(time::counter(), Ordering::Release);
        DONE.fetch_add(1, Ordering::AcqRel);
    }
}

/// One case with `threads` threads: the best round's elapsed ticks, and
/// whether the threads were pinned.
fn measure(case: Case, threads: usize, cpus: usize) -> (u64, bool) {
    let pin = threads <= cpus;
    PIN.store(usize::from(pin), Ordering::Release);
    UNPINNED.store(0, Ordering::Release);
    if pin && !pin_to(0) {
        UNPINNED.store(1, Ordering::Release);
    }
    CASE.store(case as usize, Ordering::Release);
    GO.store(0, Ordering::Release);
    READY.store(0, Ordering::Release);
    LAST_ROUND.store(ROUNDS as u64, Ordering::Release);
    let mut helpers = alloc::vec::Vec::new();
    for me in 1..threads {
        helpers.push(thread::spawn_thread(helper, me).unwrap_or_else(|e| fail("clone", e)));
    }
    let mut best = u64::MAX;
    for round in 1..=ROUNDS as u64 {
        let regions = match case {
            Case::Fault => Some(fault_regions(threads)),
            Case::Mmap | Case::Compute => None,
        };
        DONE.store(0, Ordering::Release);
        wait_until(|| READY.load(Ordering::Acquire) == threads - 1);
        READY.store(0, Ordering::Release);
        let start = time::counter();
        GO.store(round, Ordering::Release);
        work(case, 0);
        END[0].store(time::counter(), Ordering::Release);
        wait_until(|| DONE.load(Ordering::Acquire) == threads - 1);
        let end = END[..threads].iter().map(|e| e.load(Ordering::Acquire)).max().unwrap_or(start);
        best = best.min(end - start);
        if let Some((base, len)) = regions {
            // SAFETY: the round's regions, unused from here on.
            unsafe { mem::munmap(base, len) }.unwrap_or_else(|e| fail("munmap", e));
        }
    }
    // Release the helpers past the last round: they end.
    wait_until(|| READY.load(Ordering::Acquire) == threads - 1);
    GO.store(ROUNDS as u64 + 1, Ordering::Release);
    for h in helpers {
        h.join().unwrap_or_else(|e| fail("join", e));
    }
    (best, pin && UNPINNED.load(Ordering::Acquire) == 0)
}

/// Maps one region per thread for `fault`, each starting a last-level table
/// of its own; returns the whole mapping to unmap after the round.
fn fault_regions(threads: usize) -> (usize, usize) {
    // One span more than the regions, so they fit after aligning the start.
    let len = threads * FAULT_STRIDE + TABLE_SPAN;
    let base = anon(len);
    let first = base.next_multiple_of(TABLE_SPAN);
    for (me, region) in REGION.iter().enumerate().take(threads) {
        region.store(first + me * FAULT_STRIDE, Ordering::Release);
    }
    (base, len)
}

fn ratio(v: u64, d: u64) -> alloc::string::String {
    let x = v as f64 / d as f64;
    let whole = x as u64;
    alloc::format!("{whole}.{:03}", ((x - whole as f64) * 1000.0) as u64)
}

/// Runs the named cases (all without names).
pub fn run(wanted: &[&[u8]]) {
    // Before any pinning narrows this process's own mask.
    let cpus = cpus_allowed();
    for case in CASES {
        if !wanted.is_empty() && !wanted.contains(&case.name().as_bytes()) {
            continue;
        }
        for threads in THREADS {
            let (ticks, pinned) = measure(case, threads, cpus);
            let per_thread = case.ops_per_thread();
            let total = per_thread * threads as u64;
            println!(
                "scale {} threads={threads} ops={total} ticks={ticks} ticks_per_op={} thread_ticks_per_op={} pinned={} cpus={cpus} freq={}",
                case.name(),
                ratio(ticks, total),
                ratio(ticks, per_thread),
                if pinned { "yes" } else { "no" },
                time::counter_frequency()
            );
        }
    }
}
