//! `bench [name ...]`: Aspen's memory benchmarks, one line each:
//!
//! ```text
//! bench <name> n=<ops> ticks_per_op=<t> tlbi_per_op=<page>/<asid>/<all> freq=<hz>
//! ```
//!
//! Ticks are the generic timer's (under QEMU `-icount shift=0`, one tick is
//! 16 guest instructions). TLB invalidations come from Aspen's `/proc/vmstat`
//! (per-page, whole-ASID, everything): `-` where the kernel does not report
//! them (Linux). The definitions follow the Linux peer harness's `mmbench`,
//! so the numbers compare directly. `bench --sweep [case ...]` runs the size
//! sweep instead, all of it or the named cases ([`sweep`]); `bench --scale
//! [case ...]` the multi-thread scaling cases ([`scale`]).
#![no_std]
#![no_main]

extern crate alloc;

mod scale;
mod sweep;

use core::sync::atomic::{AtomicU64, Ordering};

use aspen_sys::mem::{self, PAGE_SIZE};
use aspen_sys::mem::{Advice, MapFlags, Prot};
use aspen_sys::process::{self, Fork};
use aspen_sys::{fs, println, thread, time, Args};

aspen_sys::entry!(main);

/// TLB invalidation counters (per page, whole ASID, all), if the kernel has them.
fn tlbi() -> Option<[u64; 3]> {
    let mut buf = [0u8; 1024];
    let n = fs::read_file(c"/proc/vmstat", &mut buf).ok()?;
    let text = core::str::from_utf8(&buf[..n]).ok()?;
    let value =
        |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<u64>().ok());
    let page = value("tlbi_page")?;
    Some([
        page + value("tlbi_kernel_page").unwrap_or(0),
        value("tlbi_asid")?,
        value("tlbi_all")? + value("tlbi_all_local")?,
    ])
}

struct Sample {
    ticks: u64,
    ops: u64,
    tlbi: Option<[u64; 3]>,
}

fn report(name: &str, sample: Sample) {
    let per_op = |v: u64| v as f64 / sample.ops as f64;
    let ticks = per_op(sample.ticks);
    let whole = ticks as u64;
    let frac = ((ticks - whole as f64) * 1000.0) as u64;
    match sample.tlbi {
        Some([p, a, all]) => {
            let f = |v: u64| {
                let x = per_op(v);
                let w = x as u64;
                alloc::format!("{}.{:02}", w, ((x - w as f64) * 100.0) as u64)
            };
            println!(
                "bench {name} n={} ticks_per_op={whole}.{frac:03} tlbi_per_op={}/{}/{} freq={}",
                sample.ops,
                f(p),
                f(a),
                f(all),
                time::counter_frequency()
            );
        }
        None => println!(
            "bench {name} n={} ticks_per_op={whole}.{frac:03} tlbi_per_op=- freq={}",
            sample.ops,
            time::counter_frequency()
        ),
    }
}

fn diff(before: Option<[u64; 3]>, after: Option<[u64; 3]>) -> Option<[u64; 3]> {
    let (b, a) = (before?, after?);
    Some([a[0] - b[0], a[1] - b[1], a[2] - b[2]])
}

/// A private anonymous mapping on 4 KiB pages, not yet touched.
fn anon(len: usize) -> usize {
    // SAFETY: no MAP_FIXED: the kernel picks a free range.
    let addr = unsafe { mem::mmap(0, len, Prot::READ | Prot::WRITE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0) }
        .unwrap_or_else(|e| fail("mmap", e));
    // SAFETY: advice only; the result does not matter (Aspen: a no-op).
    let _ = unsafe { mem::madvise(addr, len, Advice::NoHugePage) };
    addr
}

fn shared_page() -> &'static [AtomicU64; 8] {
    // SAFETY: no MAP_FIXED; the page is never unmapped, so the reference lives.
    let addr =
        unsafe { mem::mmap(0, PAGE_SIZE, Prot::READ | Prot::WRITE, MapFlags::SHARED | MapFlags::ANONYMOUS, -1, 0) }
            .unwrap_or_else(|e| fail("mmap shared", e));
    // SAFETY: a fresh zeroed page, aligned, shared with children by fork.
    unsafe { &*(addr as *const [AtomicU64; 8]) }
}

fn touch(addr: usize, len: usize) {
    for page in (0..len).step_by(PAGE_SIZE) {
        // SAFETY: inside a read-write mapping this program made.
        unsafe { ((addr + page) as *mut u8).write_volatile(1) };
    }
}

fn fail(what: &str, e: aspen_sys::Errno) -> ! {
    println!("bench error {what}={}", e.as_i32());
    process::exit_group(1)
}

fn pf_anon() -> Sample {
    const PAGES: usize = 8192;
    let addr = anon(PAGES * PAGE_SIZE);
    let before = tlbi();
    let start = time::counter();
    touch(addr, PAGES * PAGE_SIZE);
    let ticks = time::counter() - start;
    let sample = Sample { ticks, ops: PAGES as u64, tlbi: diff(before, tlbi()) };
    // SAFETY: the mapping is ours and no reference into it lives on.
    let _ = unsafe { mem::munmap(addr, PAGES * PAGE_SIZE) };
    sample
}

const SIXTEEN_MIB: usize = 16 << 20;

fn fork_16m() -> Sample {
    const CYCLES: u64 = 20;
    let addr = anon(SIXTEEN_MIB);
    touch(addr, SIXTEEN_MIB);
    let cycle = || match process::fork() {
        Ok(Fork::Child) => process::exit_group(0),
        Ok(Fork::Parent(pid)) => {
            let _ = process::wait4(pid, 0);
        }
        Err(e) => fail("fork", e),
    };
    cycle(); // warm-up, untimed
    let before = tlbi();
    let start = time::counter();
    for _ in 0..CYCLES {
        cycle();
    }
    let ticks = time::counter() - start;
    let sample = Sample { ticks, ops: CYCLES, tlbi: diff(before, tlbi()) };
    // SAFETY: ours, unused from here on.
    let _ = unsafe { mem::munmap(addr, SIXTEEN_MIB) };
    sample
}

fn cow_16m() -> Sample {
    const ROUNDS: u64 = 5;
    let pages = (SIXTEEN_MIB / PAGE_SIZE) as u64;
    let addr = anon(SIXTEEN_MIB);
    touch(addr, SIXTEEN_MIB);
    let shared = shared_page();
    let mut total = Sample { ticks: 0, ops: 0, tlbi: Some([0; 3]) };
    for _ in 0..ROUNDS {
        match process::fork() {
            Ok(Fork::Child) => {
                let before = tlbi();
                let start = time::counter();
                touch(addr, SIXTEEN_MIB);
                let ticks = time::counter() - start;
                let counts = diff(before, tlbi());
                shared[0].store(ticks, Ordering::Release);
                match counts {
                    Some(c) => (0..3).for_each(|i| shared[1 + i].store(c[i], Ordering::Release)),
                    None => shared[4].store(1, Ordering::Release),
                }
                process::exit_group(0)
            }
            Ok(Fork::Parent(pid)) => {
                let _ = process::wait4(pid, 0);
            }
            Err(e) => fail("fork", e),
        }
        total.ticks += shared[0].load(Ordering::Acquire);
        total.ops += pages;
        if shared[4].load(Ordering::Acquire) != 0 {
            total.tlbi = None;
        }
        if let Some(t) = total.tlbi.as_mut() {
            (0..3).for_each(|i| t[i] += shared[1 + i].load(Ordering::Acquire));
        }
    }
    // SAFETY: ours, unused from here on.
    let _ = unsafe { mem::munmap(addr, SIXTEEN_MIB) };
    total
}

fn mmap_cycle() -> Sample {
    const CYCLES: u64 = 2000;
    const LEN: usize = 64 << 10;
    let before = tlbi();
    let start = time::counter();
    for _ in 0..CYCLES {
        // SAFETY: no MAP_FIXED.
        let addr =
            unsafe { mem::mmap(0, LEN, Prot::READ | Prot::WRITE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0) }
                .unwrap_or_else(|e| fail("mmap", e));
        touch(addr, LEN);
        // SAFETY: ours, unused from here on.
        unsafe { mem::munmap(addr, LEN) }.unwrap_or_else(|e| fail("munmap", e));
    }
    Sample { ticks: time::counter() - start, ops: CYCLES, tlbi: diff(before, tlbi()) }
}

fn mprotect_toggle() -> Sample {
    const CALLS: u64 = 2000;
    const LEN: usize = 1 << 20;
    let addr = anon(LEN);
    touch(addr, LEN);
    let before = tlbi();
    let start = time::counter();
    for i in 0..CALLS {
        let prot = if i % 2 == 0 { Prot::READ } else { Prot::READ | Prot::WRITE };
        // SAFETY: nothing writes the range while it is read-only.
        unsafe { mem::mprotect(addr, LEN, prot) }.unwrap_or_else(|e| fail("mprotect", e));
    }
    let sample = Sample { ticks: time::counter() - start, ops: CALLS, tlbi: diff(before, tlbi()) };
    // SAFETY: ours, unused from here on.
    let _ = unsafe { mem::munmap(addr, LEN) };
    sample
}

fn yield_pingpong() -> Sample {
    const TURNS: u64 = 10_000;
    let shared = shared_page();
    let turn = &shared[0];
    let take_turns = |me: u64| {
        for _ in 0..TURNS {
            while turn.load(Ordering::Acquire) % 2 != me {
                let _ = process::sched_yield();
            }
            turn.fetch_add(1, Ordering::AcqRel);
        }
    };
    let before = tlbi();
    let start = time::counter();
    let child = match process::fork() {
        Ok(Fork::Child) => {
            take_turns(1);
            process::exit_group(0)
        }
        Ok(Fork::Parent(pid)) => pid,
        Err(e) => fail("fork", e),
    };
    take_turns(0);
    let ticks = time::counter() - start;
    let _ = process::wait4(child, 0);
    Sample { ticks, ops: 2 * TURNS, tlbi: diff(before, tlbi()) }
}

static THREAD_TURN: AtomicU64 = AtomicU64::new(0);
const THREAD_TURNS: u64 = 10_000;

/// Thread `me` (0 or 1) of the thread ping-pong: THREAD_TURNS turns.
extern "C" fn thread_take_turns(me: usize) {
    for _ in 0..THREAD_TURNS {
        while THREAD_TURN.load(Ordering::Acquire) % 2 != me as u64 {
            let _ = process::sched_yield();
        }
        THREAD_TURN.fetch_add(1, Ordering::AcqRel);
    }
}

/// `yield_pingpong` between two threads of one process: a switch without
/// a change of address space (no TTBR0 write). The Linux peer's `mmbench`
/// has no such benchmark.
fn thread_yield_pingpong() -> Sample {
    let before = tlbi();
    let start = time::counter();
    let other = match thread::spawn_thread(thread_take_turns, 1) {
        Ok(other) => other,
        Err(e) => fail("clone", e),
    };
    thread_take_turns(0);
    let ticks = time::counter() - start;
    if let Err(e) = other.join() {
        fail("join", e);
    }
    Sample { ticks, ops: 2 * THREAD_TURNS, tlbi: diff(before, tlbi()) }
}

/// A benchmark: its name on the command line and in the report, and its run.
type Bench = (&'static str, fn() -> Sample);

const BENCHES: [Bench; 7] = [
    ("pf_anon", pf_anon),
    ("fork_16m", fork_16m),
    ("cow_16m", cow_16m),
    ("mmap_cycle", mmap_cycle),
    ("mprotect_toggle", mprotect_toggle),
    ("yield_pingpong", yield_pingpong),
    ("thread_pingpong", thread_yield_pingpong),
];

fn main(args: Args) -> i32 {
    let wanted: alloc::vec::Vec<&[u8]> = args.iter().skip(1).map(|a| a.to_bytes()).collect();
    if wanted.first() == Some(&&b"--sweep"[..]) {
        sweep::run(&wanted[1..]);
        return 0;
    }
    if wanted.first() == Some(&&b"--scale"[..]) {
        scale::run(&wanted[1..]);
        return 0;
    }
    for (name, run) in BENCHES {
        if wanted.is_empty() || wanted.contains(&name.as_bytes()) {
            report(name, run());
        }
    }
    0
}
