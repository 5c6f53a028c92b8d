//! `fuzz`: a deterministic system-call fuzzer. No system-call argument,
//! however wrong, may crash the kernel: a call gets a result or a negative
//! errno, a task that faults is killed with the right signal, the kernel goes
//! on, and no memory leaks.
//!
//! Usage: `fuzz [--seed N] [--iterations N] [--per-child K] [--batch B |
//! --from B] [--avoid BITS] [--trace] [--verbose] [--timeout SECS]
//! [--finish]` (numbers decimal or 0x hex); `fuzz --run CALL ARG... [/ CALL
//! ARG...]` (see [`script`]).
//!
//! The program forks a child per batch; the child makes K random calls (see
//! [`gen`] for what it calls and with what; default 200), checking that each
//! read, write or sendfile moved the offsets by exactly its result (a
//! failed one not at all), and exits 0. The
//! parent only forks, waits and prints; a child that stops itself (it may
//! send itself SIGSTOP) is continued, or on every other batch killed while
//! stopped (SIGKILL must end it). A child may die of SIGSEGV, SIGBUS,
//! SIGILL or SIGTRAP (it may have unmapped its own stack or code), of
//! SIGKILL from the OOM killer (it may lock all memory: /proc/vmstat's
//! `oom_kill` must have moved), or of SIGPIPE (it may write to a pipe whose
//! read end it closed); any other end (an exit code but 0,
//! another signal, no end within `--timeout`, default 120 s) fails the run,
//! and the parent prints the child's last calls from a shared log ([`ring`])
//! and the command line that repeats the batch. Runs until the children
//! have made `--iterations` system calls (default 20,000) from the seed
//! (default 0x5eed): the same seed makes the same calls.
//!
//! Free memory (`MemFree`, see [`free_memory`]) is read after a warm-up, after
//! every batch and at the end: on Aspen, whose accounting is exact, it must
//! not move at all (the children create no files: openat is read-only, no
//! O_CREAT). On Linux (`uname` says "Linux") the check is informational.
//!
//! Reports in Aspen's test protocol:
//!
//! ```text
//! TEST-SUITE fuzz 2
//! TEST-RUN syscalls_never_crash_the_kernel
//! TEST-OK syscalls_never_crash_the_kernel      or TEST-FAIL ...: <batch, status, how to repeat>
//! TEST-RUN free_memory_back_at_baseline
//! TEST-OK free_memory_back_at_baseline         or TEST-FAIL ...: <batches after which it moved>
//! TEST-DONE <passed> <failed>
//! TEST-FINISHED                                only with --finish
//! ```
//!
//! To chase a failure: `--batch B` runs only batch B and prints its last
//! calls; `--from B` starts at batch B; `--per-child K` cuts batches after K
//! operations (the calls do not depend on K, so bisecting K finds the
//! culprit); `--trace` makes the child print every call on the console before
//! it makes it (for calls that take the kernel down); `--verbose` prints how
//! each batch ended, its last call and its slowest call. `--avoid BITS`
//! steers clear of known kernel bugs (`gen::AVOID_*`) to look for others.
#![no_std]
#![no_main]

mod child;
mod gen;
mod ring;
mod rng;
mod script;

use core::ffi::CStr;

use aspen_sys::mem::PAGE_SIZE;
use aspen_sys::process::{
    self, Fork, WaitStatus, SIGBUS, SIGILL, SIGKILL, SIGPIPE, SIGSEGV, SIGTRAP, WNOHANG, WUNTRACED,
};
use aspen_sys::signal::{self, Signal};
use aspen_sys::{fs, links, path, println, time, Args, Errno};

use ring::Ring;

aspen_sys::entry!(main);

/// Exit code of a process started by an execve the fuzzer meant to fail.
pub const EXEC_MARKER_EXIT: i32 = 99;
/// Exit code of a Rust panic in the fuzz child (aspen-sys's panic handler).
const PANIC_EXIT: i32 = 101;

const DEFAULT_SEED: u64 = 0x5eed;
const DEFAULT_ITERATIONS: u64 = 20_000;
const DEFAULT_PER_CHILD: u64 = 200;
const DEFAULT_TIMEOUT_SECS: u64 = 120;
/// Batches run before the free-memory baseline (with another seed).
const WARMUP_BATCHES: u64 = 4;
const WARMUP_SALT: u64 = 0x3a3a_3a3a_0000_0000;
/// Unexpected ends and leaks reported in detail.
const MAX_REPORTED: usize = 5;
/// Calls of the log printed for an unexpected end.
const LOG_LINES: u64 = 16;
/// Bytes of stack the parent faults in before its baseline.
const STACK_PRETOUCH: usize = 64 * 1024;
/// How long (10 ms steps) the parent waits for free memory to settle (orphans
/// of a dead child are reaped by init, not by the parent).
const SETTLE_STEPS: u32 = 50;

/// The run's settings.
#[derive(Clone, Copy)]
pub struct Options {
    /// The generator's seed (`--seed`).
    pub seed: u64,
    /// System calls in all (`--iterations`).
    pub iterations: u64,
    /// System calls per forked child (`--per-child`).
    pub per_child: u64,
    /// Run only this batch (`--batch`), to reproduce a finding.
    pub only_batch: Option<u64>,
    /// The first batch (`--from`).
    pub first_batch: u64,
    /// Known kernel bugs to steer clear of (`gen::AVOID_*` bits).
    pub avoid: u64,
    /// Log every call (`--trace`).
    pub trace: bool,
    /// Print every batch's end and last call.
    pub verbose: bool,
    /// Print `TEST-FINISHED` at the end, as the last suite of a test run (`--finish`).
    pub finish: bool,
    /// Seconds a batch may take before it counts as hung (`--timeout`).
    pub timeout_secs: u64,
    /// Running on Linux (from `uname`): its answers are the reference.
    pub linux: bool,
    /// This program's own path, which the generator may pass to `execve`.
    pub exe: &'static CStr,
}

fn usage() -> i32 {
    println!(
        "usage: fuzz [--seed N] [--iterations N] [--per-child K] [--batch B | --from B] [--avoid BITS] [--trace] [--verbose] [--timeout SECS] [--finish]"
    );
    2
}

fn parse_number(s: Option<&CStr>) -> Option<u64> {
    let s = s?.to_str().ok()?;
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse(args: &Args, exe: &'static CStr) -> Option<Options> {
    let mut o = Options {
        seed: DEFAULT_SEED,
        iterations: DEFAULT_ITERATIONS,
        per_child: DEFAULT_PER_CHILD,
        only_batch: None,
        first_batch: 0,
        avoid: 0,
        trace: false,
        verbose: false,
        finish: false,
        timeout_secs: DEFAULT_TIMEOUT_SECS,
        linux: process::uname().is_ok_and(|u| u.sysname() == b"Linux"),
        exe,
    };
    let mut i = 1;
    while let Some(arg) = args.get(i) {
        let value = || parse_number(args.get(i + 1));
        match arg.to_bytes() {
            b"--seed" => o.seed = value()?,
            b"--iterations" => o.iterations = value()?,
            b"--per-child" => o.per_child = value()?.max(1),
            b"--batch" => o.only_batch = Some(value()?),
            b"--avoid" => o.avoid = value()?,
            b"--from" => o.first_batch = value()?,
            b"--timeout" => o.timeout_secs = value()?.max(1),
            b"--trace" => {
                o.trace = true;
                i += 1;
                continue;
            }
            b"--verbose" => {
                o.verbose = true;
                i += 1;
                continue;
            }
            b"--finish" => {
                o.finish = true;
                i += 1;
                continue;
            }
            _ => return None,
        }
        i += 2;
    }
    Some(o)
}

fn main(args: Args) -> i32 {
    let argv0 = args.get(0).unwrap_or(c"");
    if !argv0.to_bytes().ends_with(b"fuzz") {
        // Started by an execve of a fuzz child that should have failed (its
        // argv[0] is the marker, or garbage): end at once, visibly.
        child::exit_now(EXEC_MARKER_EXIT);
    }
    let exe = if argv0.to_bytes().contains(&b'/') { argv0 } else { c"/bin/fuzz" };
    if args.get(1).map(CStr::to_bytes) == Some(b"--run") {
        let linux = process::uname().is_ok_and(|u| u.sysname() == b"Linux");
        let code = script::run(args.iter().skip(2).filter(|a| a.to_bytes() != b"--finish"), linux);
        if args.iter().any(|a| a.to_bytes() == b"--finish") {
            println!("TEST-FINISHED");
        }
        return code;
    }
    let Some(opts) = parse(&args, exe) else { return usage() };
    let ring = match Ring::map() {
        Ok(ring) => ring,
        Err(e) => {
            println!("fuzz: cannot map the call log: {e}");
            return 1;
        }
    };
    set_up(&opts, ring);

    let baseline = stable_memfree();
    println!("TEST-SUITE fuzz 2");
    println!("TEST-RUN syscalls_never_crash_the_kernel");
    let run = fuzz(&opts, ring, baseline.ok());
    let mut failed = 0;
    match run.failure {
        None => println!("TEST-OK syscalls_never_crash_the_kernel"),
        Some(ref f) => {
            failed += 1;
            println!("TEST-FAIL syscalls_never_crash_the_kernel: {f}");
        }
    }
    println!("TEST-RUN free_memory_back_at_baseline");
    match memory_verdict(&opts, &run, baseline) {
        Ok(()) => println!("TEST-OK free_memory_back_at_baseline"),
        Err(why) => {
            failed += 1;
            println!("TEST-FAIL free_memory_back_at_baseline: {why}");
        }
    }
    println!("TEST-DONE {} {failed}", 2 - failed);
    if opts.finish {
        println!("TEST-FINISHED");
    }
    i32::from(failed != 0)
}

extern "C" {
    // Bounds of the program's segments, from user/link.ld.
    static __aspen_text_start: u8;
    static __aspen_text_end: u8;
    static __aspen_data_start: u8;
    static __aspen_data_end: u8;
}

/// Makes the parent's memory use flat from the baseline on: faults in its
/// image and stack, fills the page caches of the files the children can
/// read, and runs a few warm-up batches (the kernel's first-use allocations).
fn set_up(opts: &Options, ring: Ring) {
    let text = (&raw const __aspen_text_start as usize)..(&raw const __aspen_text_end as usize);
    let data = (&raw const __aspen_data_start as usize)..(&raw const __aspen_data_end as usize);
    for page in text.step_by(PAGE_SIZE) {
        // SAFETY: a read of the program's own mapped text.
        unsafe { core::ptr::read_volatile(page as *const u8) };
    }
    for page in data.step_by(PAGE_SIZE) {
        // SAFETY: the program's own data segment; the same byte is written
        // back (one thread), so no Rust object changes.
        unsafe {
            let p = page as *mut u8;
            p.write_volatile(p.read_volatile());
        }
    }
    touch_stack();
    if let Err(e) = make_links() {
        println!("fuzz: cannot make the links in {LINK_DIR:?}: {e}");
    }
    let mut buf = [0u8; 4096];
    for path in gen::FILES.iter().copied().chain([opts.exe]) {
        if let Ok(fd) = fs::open(path, fs::OpenFlags::RDONLY, 0) {
            while matches!(fs::read(fd, &mut buf), Ok(n) if n > 0) {}
            let _ = fs::close(fd);
        }
    }
    println!(
        "fuzz: seed {:#x}, {} system calls, {} operations per child{}{}{}",
        opts.seed,
        opts.iterations,
        opts.per_child,
        if opts.avoid != 0 { ", avoiding known bugs" } else { "" },
        if opts.linux { ", on Linux" } else { "" },
        match opts.only_batch {
            Some(_) => ", one batch",
            None => "",
        }
    );
    let warmup = Options { seed: opts.seed ^ WARMUP_SALT, trace: false, ..*opts };
    for batch in 0..WARMUP_BATCHES {
        let end = run_batch(&warmup, ring, batch, opts.per_child);
        if !end.acceptable() {
            println!("fuzz: warm-up batch {batch} (seed {:#x}) ended with {end}", warmup.seed);
        }
    }
    let _ = free_memory();
}

/// The directory of the symbolic links the children's paths go through.
const LINK_DIR: &CStr = c"/tmp/fuzz-links";
/// Those links (name, target): loops, a dangling one, ".." and the root
/// through links, the program itself, `/proc/self`, and a chain of them.
const LINKS: &[(&CStr, &CStr)] = &[
    (c"loop", c"loop"),
    (c"ping", c"pong"),
    (c"pong", c"ping"),
    (c"dangling", c"/nonexistent/x"),
    (c"up", c".."),
    (c"root", c"/"),
    (c"fuzz", c"/bin/fuzz"),
    (c"self", c"/proc/self"),
    (c"deep", c"up/fuzz-links/up/fuzz-links/fuzz"),
];

/// Makes [`LINKS`] in [`LINK_DIR`] (again, if an earlier run left them):
/// before the baseline, as they hold kernel memory.
fn make_links() -> Result<(), Errno> {
    match path::mkdirat(fs::AT_FDCWD, LINK_DIR, 0o755) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    let dir = fs::open(LINK_DIR, fs::OpenFlags::RDONLY | fs::OpenFlags::DIRECTORY, 0)?;
    let made = LINKS.iter().try_for_each(|&(name, target)| {
        let _ = path::unlinkat(dir, name, 0);
        links::symlinkat(target, dir, name)
    });
    fs::close(dir)?;
    made
}

/// Touches the stack down to its deepest use, so that later faults there do not count against the free-memory baseline.
#[inline(never)]
pub fn touch_stack() {
    let mut stack = [0u8; STACK_PRETOUCH];
    for i in (0..STACK_PRETOUCH).step_by(PAGE_SIZE) {
        // SAFETY: a local array.
        unsafe { core::ptr::write_volatile(&mut stack[i], 1) };
    }
    core::hint::black_box(&stack);
}

/// How a batch ended.
#[derive(Clone, Copy)]
enum End {
    Status(WaitStatus),
    /// The child stopped itself and was killed while stopped.
    KilledWhileStopped(WaitStatus),
    /// SIGKILL from the kernel's OOM killer (/proc/vmstat's `oom_kill`
    /// moved meanwhile): a child may lock or populate all memory.
    OomKilled(WaitStatus),
    Hung,
    ForkFailed(Errno),
    WaitFailed(Errno),
    /// Continuing or killing the stopped child failed.
    SignalFailed(Errno),
}

impl End {
    fn acceptable(self) -> bool {
        match self {
            End::Status(s) => s.success() || matches!(s.signal(), Some(SIGSEGV | SIGBUS | SIGILL | SIGTRAP | SIGPIPE)),
            End::KilledWhileStopped(s) | End::OomKilled(s) => s.signal() == Some(SIGKILL),
            _ => false,
        }
    }
}

impl core::fmt::Display for End {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            End::Status(s) => {
                write!(f, "{s}")?;
                match s.exit_code() {
                    Some(PANIC_EXIT) => write!(f, " (the fuzz child's own code panicked)"),
                    Some(EXEC_MARKER_EXIT) => write!(f, " (an execve that must fail started a program)"),
                    Some(child::SETUP_FAILED) => write!(f, " (the child's set-up failed)"),
                    Some(child::OFFSET_MOVED) => {
                        write!(f, " (the last read, write or sendfile moved an offset by other than its result)")
                    }
                    _ => Ok(()),
                }
            }
            End::KilledWhileStopped(s) => write!(f, "{s} after SIGKILL while stopped"),
            End::OomKilled(s) => write!(f, "{s} by the OOM killer"),
            End::Hung => write!(f, "no end (still running at the timeout)"),
            End::ForkFailed(e) => write!(f, "fork failed: {e}"),
            End::WaitFailed(e) => write!(f, "wait4 failed: {e}"),
            End::SignalFailed(e) => write!(f, "kill of the stopped child failed: {e}"),
        }
    }
}

/// Runs one batch in a child and waits for it (at most the timeout).
fn run_batch(opts: &Options, ring: Ring, batch: u64, calls: u64) -> End {
    ring.reset(batch);
    let oom_kills_before = oom_kills();
    let pid = match process::fork() {
        Ok(Fork::Child) => child::run(ring, opts, batch, calls),
        Ok(Fork::Parent(pid)) => pid,
        Err(e) => return End::ForkFailed(e),
    };
    let freq = time::counter_frequency().max(1);
    let start = time::counter();
    let mut polls = 0u32;
    let mut killed_while_stopped = false;
    let end = loop {
        match process::wait4(pid, WNOHANG | WUNTRACED) {
            Ok((0, _)) => {}
            Ok((_, status)) if status.stop_signal().is_some() => {
                // It stopped itself: continued, or (every other batch)
                // killed while stopped, which must end it.
                killed_while_stopped = batch % 2 == 1;
                let signo = if killed_while_stopped { SIGKILL } else { Signal::Cont as i32 };
                if let Err(e) = signal::kill(pid, signo) {
                    break End::SignalFailed(e);
                }
            }
            Ok((_, status)) if killed_while_stopped => break End::KilledWhileStopped(status),
            Ok((_, status)) if status.signal() == Some(SIGKILL) && oom_kills() > oom_kills_before => {
                break End::OomKilled(status)
            }
            Ok((_, status)) => break End::Status(status),
            Err(e) => break End::WaitFailed(e),
        }
        if (time::counter() - start) / freq >= opts.timeout_secs {
            break End::Hung;
        }
        polls += 1;
        if polls < 100 {
            let _ = process::sched_yield();
        } else {
            let _ = time::sleep_ms(1);
        }
    };
    reap_strays(opts.linux);
    end
}

/// Processes the kernel's OOM killer has killed: `oom_kill` of
/// /proc/vmstat (Linux's and Aspen's), 0 where it cannot be read. Reads
/// into the stack: the parent allocates nothing.
fn oom_kills() -> u64 {
    let mut buf = [0u8; 16 * 1024];
    let Ok(n) = fs::read_file(c"/proc/vmstat", &mut buf) else { return 0 };
    buf[..n]
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"oom_kill "))
        .and_then(aspen_sys::meminfo::leading_number)
        .unwrap_or(0)
}

/// Reaps any other child (on Linux a clone with odd flags may make one).
fn reap_strays(linux: bool) {
    let options = if linux { WNOHANG | 0x4000_0000 } else { WNOHANG };
    while matches!(process::wait4(-1, options), Ok((pid, _)) if pid > 0) {}
}

/// A failure worth its own report.
#[derive(Clone, Copy)]
struct Unexpected {
    batch: u64,
    end: End,
}

#[derive(Clone, Copy)]
struct Leak {
    batch: u64,
    before: u64,
    after: u64,
}

/// What the run saw.
struct Run {
    failure: Option<Failure>,
    hung: bool,
    leaks: [Option<Leak>; MAX_REPORTED],
    leak_count: u64,
}

/// The first failure of the run, formatted on one line.
struct Failure {
    unexpected: Unexpected,
    count: u64,
    batches: u64,
    opts: Options,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let u = self.unexpected;
        write!(
            f,
            "{} of {} batches ended unexpectedly; first: batch {} ended with {}; repeat with: {} --seed {:#x} --per-child {} --avoid {} --batch {}",
            self.count,
            self.batches,
            u.batch,
            u.end,
            self.opts.exe.to_str().unwrap_or("fuzz"),
            self.opts.seed,
            self.opts.per_child,
            self.opts.avoid,
            u.batch
        )
    }
}

/// Free memory once it stopped moving: two readings 20 ms apart agree (an
/// orphan of a warm-up child may still be being reaped by init).
/// Free memory in bytes (see `aspen_sys::meminfo`), or why it could not
/// be read.
pub fn free_memory() -> Result<u64, &'static str> {
    aspen_sys::meminfo::memfree().map_err(|_| "cannot read free memory from /proc/meminfo")
}

fn stable_memfree() -> Result<u64, &'static str> {
    let mut last = free_memory()?;
    for _ in 0..SETTLE_STEPS {
        let _ = time::sleep_ms(20);
        let now = free_memory()?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

/// Free memory after the batch, once it has settled (None if unreadable).
fn settled_memfree(expected: u64) -> Option<u64> {
    let mut now = free_memory().ok()?;
    for _ in 0..SETTLE_STEPS {
        if now == expected {
            break;
        }
        let _ = time::sleep_ms(10);
        now = free_memory().ok()?;
    }
    Some(now)
}

/// The fuzzing loop.
fn fuzz(opts: &Options, ring: Ring, baseline: Option<u64>) -> Run {
    let mut run = Run { failure: None, hung: false, leaks: [None; MAX_REPORTED], leak_count: 0 };
    let (first, last) = match opts.only_batch {
        Some(b) => (b, b + 1),
        // Batches that die early make fewer calls: bounded all the same.
        None => (opts.first_batch, opts.first_batch + opts.iterations.max(1)),
    };
    let freq = time::counter_frequency().max(1);
    let start = time::counter();
    let (mut syscalls, mut batches, mut exited_ok, mut unexpected) = (0u64, 0u64, 0u64, 0u64);
    let mut killed_while_stopped = 0u64;
    let mut signals = [0u64; 65];
    let mut expected_free = baseline;
    let mut next_progress = opts.iterations / 10;
    for batch in first..last {
        if opts.only_batch.is_none() && syscalls >= opts.iterations {
            break;
        }
        let end = run_batch(opts, ring, batch, opts.per_child);
        batches += 1;
        syscalls += ring.syscalls().min(opts.per_child);
        if opts.verbose {
            let started = ring.started().min(opts.per_child);
            match started.checked_sub(1).and_then(|seq| ring.logged(seq)) {
                Some(call) => {
                    println!("fuzz: batch {batch}: {end} after {started}: #{} {}", call.seq, ring::Display(&call))
                }
                None => println!("fuzz: batch {batch}: {end} after {started}"),
            }
            let (ticks, call) = ring.slowest();
            let ms = ticks * 1000 / freq;
            if ms >= 20 {
                println!("fuzz: batch {batch}: slowest call {} ms: {}", ms, ring::Display(&call));
            }
        }
        if let End::KilledWhileStopped(_) = end {
            killed_while_stopped += 1;
        }
        if let End::Status(s) = end {
            if s.success() {
                exited_ok += 1;
            } else if let Some(sig) = s.signal() {
                signals[sig as usize % signals.len()] += 1;
            }
        }
        let show_log = opts.only_batch.is_some() || !end.acceptable();
        if !end.acceptable() {
            unexpected += 1;
            println!("fuzz: batch {batch} ended with {end}");
            if run.failure.is_none() {
                run.failure =
                    Some(Failure { unexpected: Unexpected { batch, end }, count: 0, batches: 0, opts: *opts });
            }
        }
        if show_log && (unexpected <= MAX_REPORTED as u64 || opts.only_batch.is_some()) {
            print_log(ring, batch, opts, end);
        }
        if matches!(end, End::Hung) {
            run.hung = true;
            break;
        }
        if !opts.linux {
            if let Some(expected) = expected_free {
                if let Some(now) = settled_memfree(expected) {
                    if now != expected {
                        if (run.leak_count as usize) < MAX_REPORTED {
                            run.leaks[run.leak_count as usize] = Some(Leak { batch, before: expected, after: now });
                        }
                        run.leak_count += 1;
                        println!(
                            "fuzz: batch {batch}: free memory {now} bytes after it, {expected} before ({:+} bytes)",
                            now as i64 - expected as i64
                        );
                        expected_free = Some(now);
                    }
                }
            }
        }
        if opts.only_batch.is_none() && syscalls >= next_progress && syscalls < opts.iterations {
            println!(
                "fuzz: {syscalls}/{} system calls, {batches} batches, {} s",
                opts.iterations,
                (time::counter() - start) / freq
            );
            next_progress = syscalls + opts.iterations / 10;
        }
    }
    let ms = (time::counter() - start) * 1000 / freq;
    println!("fuzz: {syscalls} system calls in {batches} batches, {ms} ms; children: {exited_ok} exited 0");
    for (sig, n) in signals.iter().enumerate().filter(|(_, n)| **n > 0) {
        println!("fuzz:   {n} killed by signal {sig}");
    }
    if killed_while_stopped > 0 {
        println!("fuzz:   {killed_while_stopped} stopped themselves and were killed while stopped");
    }
    if let Some(f) = run.failure.as_mut() {
        f.count = unexpected;
        f.batches = batches;
    }
    run
}

/// Prints the child's regions and its last calls.
fn print_log(ring: Ring, batch: u64, opts: &Options, end: End) {
    let started = ring.started();
    println!(
        "fuzz: batch {batch} (seed {:#x}): {started} operations started, {} system calls; ended with {end}",
        opts.seed,
        ring.syscalls()
    );
    let setup = ring.get(ring::H_SETUP);
    if setup != 1 {
        println!("fuzz:   set-up {}", if setup == 0 { "did not finish" } else { "failed" });
        if setup > 1 {
            match u16::try_from(setup - 2).ok().and_then(Errno::new) {
                Some(e) => println!("fuzz:   set-up error: {e}"),
                None => println!("fuzz:   set-up error: {}", setup - 2),
            }
        }
        return;
    }
    for (i, name) in child::ENV_NAMES.iter().enumerate() {
        println!("fuzz:   {name} = {:#x}", ring.get(ring::H_ENV + i));
    }
    if matches!(end, End::Status(s) if s.exit_code() == Some(child::OFFSET_MOVED)) {
        let (before, after) = (ring.get(ring::H_OFFSET_BEFORE), ring.get(ring::H_OFFSET_AFTER));
        let which = ring.get(ring::H_OFFSET_WHICH);
        let which = if which < 1 << 32 { "the file offset of fd" } else { "sendfile's offset at" };
        println!(
            "fuzz:   {which} {:#x}: {before} before the last call, {after} after (u64::MAX: unreadable)",
            ring.get(ring::H_OFFSET_WHICH)
        );
    }
    let lines = if opts.only_batch.is_some() { ring::ENTRIES as u64 } else { LOG_LINES };
    for seq in started.saturating_sub(lines)..started {
        match ring.logged(seq) {
            Some(call) => println!("fuzz:   #{seq} {}", ring::Display(&call)),
            None => println!("fuzz:   #{seq} (not in the log)"),
        }
    }
}

/// The free-memory verdict.
fn memory_verdict<'a>(
    opts: &Options,
    run: &'a Run,
    baseline: Result<u64, &'static str>,
) -> Result<(), MemoryFailure<'a>> {
    if run.hung {
        return Err(MemoryFailure::NotMeasured);
    }
    let baseline = baseline.map_err(MemoryFailure::Unreadable)?;
    let now = if opts.linux { free_memory() } else { settled_memfree(baseline).ok_or("cannot read /proc/meminfo") }
        .map_err(MemoryFailure::Unreadable)?;
    let diff = now as i64 - baseline as i64;
    if opts.linux {
        println!(
            "fuzz: free memory {now} bytes after the run, {baseline} before ({diff:+} bytes; Linux: for information)"
        );
        return Ok(());
    }
    println!("fuzz: free memory {now} bytes after the run, {baseline} before ({diff:+} bytes)");
    if run.leak_count == 0 && now == baseline {
        Ok(())
    } else {
        Err(MemoryFailure::Drift { baseline, now, leaks: &run.leaks, leak_count: run.leak_count })
    }
}

enum MemoryFailure<'a> {
    NotMeasured,
    Unreadable(&'static str),
    Drift { baseline: u64, now: u64, leaks: &'a [Option<Leak>; MAX_REPORTED], leak_count: u64 },
}

impl core::fmt::Display for MemoryFailure<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MemoryFailure::NotMeasured => write!(f, "not measured: a fuzz child is still running"),
            MemoryFailure::Unreadable(why) => write!(f, "{why}"),
            MemoryFailure::Drift { baseline, now, leaks, leak_count } => {
                write!(
                    f,
                    "free memory {now} bytes after the run, {baseline} at the start ({:+} bytes); \
                     free memory moved after {leak_count} batches",
                    *now as i64 - *baseline as i64
                )?;
                for leak in leaks.iter().flatten() {
                    write!(f, "; batch {}: {:+} bytes", leak.batch, leak.after as i64 - leak.before as i64)?;
                }
                Ok(())
            }
        }
    }
}
