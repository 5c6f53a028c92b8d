//! Stress on every core: threads pinned to each online core read and write
//! a shared range while the test's own thread, round after round, makes it
//! read-only, unmaps it and maps a fresh range at the same address, zaps it
//! with `MADV_DONTNEED` and forks; and ASID rollover while every core runs
//! threads that check their own memory.
//!
//! Each check is made so that a TLB entry another core kept after the call
//! that changed the translation returned shows: a read of the range's old
//! contents (every content generation is larger than the ones before, and
//! the readers compare against the generation published after the call
//! returned), a write that lands although it started after `mprotect`
//! returned (its value names the phase it started in), a parent's write
//! after `fork` that the child sees, a child's write the parent sees.
//!
//! The workers take their faults in a `SIGSEGV` handler that sends the
//! faulting access to a fix-up (the accesses are single instructions of the
//! assembly below), so a write refused by the new permission is counted
//! instead of ending the process. Thread bodies use neither the heap nor
//! stdout (see `aspen_sys::thread`): they report through the atomics here.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};

use aspen_sys::mem::{self, Advice, MapFlags, Prot, PAGE_SIZE};
use aspen_sys::process::{self, Fork, SIGSEGV, WNOHANG};
use aspen_sys::signal::{self, SaFlags, SigInfo, SigSet, UContext, SIG_DFL};
use aspen_sys::thread::{spawn_thread, Thread};
use aspen_sys::time::{self, sleep_ms};

use super::smp::{cores_of, getcpu, online_cores, pin, MAX_CORES};
use crate::ensure;
use crate::harness::{self, Context, Ctx, Region, Stage, TestResult, CHILD_FAILED};
use crate::procfs::{memfree, read_text};

core::arch::global_asm!(
    // One access each, at a known address, so the SIGSEGV handler can tell
    // the probes' faults from any other and resume at the fix-up, which
    // returns 0 to the caller (lr is untouched by the fault).
    ".global usertests_stress_try_load",
    "usertests_stress_try_load:",
    ".global usertests_stress_load_insn",
    "usertests_stress_load_insn:",
    "ldr x2, [x0]",
    "str x2, [x1]",
    "mov x0, #1",
    "ret",
    ".global usertests_stress_try_store",
    "usertests_stress_try_store:",
    ".global usertests_stress_store_insn",
    "usertests_stress_store_insn:",
    "str x1, [x0]",
    "mov x0, #1",
    "ret",
    ".global usertests_stress_fixup",
    "usertests_stress_fixup:",
    "mov x0, #0",
    "ret",
);

extern "C" {
    /// Loads the word at `addr` into `*out`: 1, or 0 when the load faulted.
    fn usertests_stress_try_load(addr: usize, out: *mut u64) -> u64;
    /// Stores `value` at `addr`: 1, or 0 when the store faulted.
    fn usertests_stress_try_store(addr: usize, value: u64) -> u64;
    static usertests_stress_load_insn: u8;
    static usertests_stress_store_insn: u8;
    static usertests_stress_fixup: u8;
}

/// Faults the probes took (any thread).
static PROBE_FAULTS: AtomicU64 = AtomicU64::new(0);

/// The SIGSEGV handler: a fault of a probe's access resumes at the fix-up;
/// any other fault restores the default action and returns, so the access
/// faults again and ends the process as it would have.
extern "C" fn probe_fault(_signo: i32, _info: *const SigInfo, uc: *mut u8) {
    let uc = uc as *mut UContext;
    let load = &raw const usertests_stress_load_insn as u64;
    let store = &raw const usertests_stress_store_insn as u64;
    // SAFETY: the kernel passes the `ucontext` of the interrupted thread;
    // the handler is its only user until it returns.
    let pc = unsafe { &mut (*uc).mcontext.pc };
    if *pc == load || *pc == store {
        *pc = &raw const usertests_stress_fixup as u64;
        PROBE_FAULTS.fetch_add(1, Ordering::Relaxed);
    } else {
        let _ = signal::sigaction_raw(SIGSEGV, SIG_DFL, SaFlags::empty(), SigSet(0));
    }
}

/// The word at `addr`, or `None` when reading it faulted.
fn try_load(addr: usize) -> Option<u64> {
    let mut value = 0u64;
    // SAFETY: the probe reads one word, or faults into the handler, which
    // resumes at the fix-up; it writes only `value`.
    (unsafe { usertests_stress_try_load(addr, &mut value) } == 1).then_some(value)
}

/// Writes `value` at `addr`; false when the write faulted.
fn try_store(addr: usize, value: u64) -> bool {
    // SAFETY: as in `try_load`; `addr` is in the test's own range, which no
    // Rust object owns.
    unsafe { usertests_stress_try_store(addr, value) == 1 }
}

/// Per core: the worker pinned there could not pin itself, or ran elsewhere.
static UNPINNED: AtomicU64 = AtomicU64::new(0);

/// Pins the calling worker to core `n` and checks it runs there.
fn pin_worker(n: usize) -> bool {
    if pin(1 << n).is_ok() && getcpu() == Ok(n) {
        return true;
    }
    UNPINNED.fetch_or(1 << n, Ordering::SeqCst);
    false
}

/// Waits (sleeping 1 ms at a time) until `done()`, at most `secs` seconds.
fn wait_until(what: &str, secs: u64, done: impl Fn() -> bool) -> TestResult {
    let (freq, start) = (time::counter_frequency().max(1), time::counter());
    while !done() {
        if (time::counter() - start) / freq > secs {
            return Err(format!("timed out after {secs} s waiting for {what}"));
        }
        sleep_ms(1).ctx("nanosleep")?;
    }
    Ok(())
}

// ---- the shared range --------------------------------------------------------

/// Pages of the shared range.
const RANGE_PAGES: usize = 4;
/// Rounds of the shared-range stress (each: read-only, remap, zap, fork).
const RANGE_ROUNDS: u64 = 25;
/// The workers write their slots in the pages from this one on; the pages
/// before it only the controlling thread writes, so a child forked to hold
/// them keeps sharing their frames (see [`hold_frames`]).
const FIRST_WRITTEN_PAGE: usize = 2;
/// Word offsets in each page: the content generation (written only by the
/// controlling thread), the workers' slots, the word only a fork child writes.
const HEADER: usize = 0;
const SLOT: usize = 8;
const CHILD_WORD: usize = PAGE_SIZE / 8 - 1;
/// What a fork child writes into its copy's child words.
const CHILD_MARK: u64 = 0xc41d_0000_0000_0000;

/// What the range allows now, as published by the controlling thread after
/// the call that made it so returned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A call is under way: faults and old contents are allowed.
    Changing = 0,
    /// Mapped readable and writable: no access may fault.
    Writable = 1,
    /// `mprotect(PROT_READ)` has returned: every write must fault.
    ReadOnly = 2,
}

/// The published state: `epoch << 40 | mode << 32 | floor`. The epoch
/// grows with every publication; `floor` is the content generation every
/// read of a header must reach (or be 0: a fresh page not yet written).
static STATE: AtomicU64 = AtomicU64::new(0);
static RANGE: AtomicUsize = AtomicUsize::new(0);
static RANGE_DONE: AtomicBool = AtomicBool::new(false);
/// Per worker: the last epoch in which it finished a whole pass.
static PASSED: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
/// Violations the workers saw: reads of a generation below the floor,
/// writes that went through in a read-only epoch, faults in a writable one.
static STALE_READS: AtomicU64 = AtomicU64::new(0);
static LATE_WRITES: AtomicU64 = AtomicU64::new(0);
static SPURIOUS_FAULTS: AtomicU64 = AtomicU64::new(0);
static PASSES: AtomicU64 = AtomicU64::new(0);

fn unpack(state: u64) -> (u64, Mode, u64) {
    let mode = match (state >> 32) & 0xff {
        1 => Mode::Writable,
        2 => Mode::ReadOnly,
        _ => Mode::Changing,
    };
    (state >> 40, mode, state & 0xffff_ffff)
}

/// Publishes a new epoch with `mode` and `floor`; returns the epoch.
fn publish(mode: Mode, floor: u64) -> u64 {
    let epoch = (STATE.load(Ordering::SeqCst) >> 40) + 1;
    STATE.store(epoch << 40 | (mode as u64) << 32 | floor, Ordering::SeqCst);
    epoch
}

/// What worker `w` writes into its slots in its pass `pass` during `epoch`
/// (the pass makes every write differ from the one before, so a parent's
/// write after a fork shows in a child that sees it).
fn slot_value(epoch: u64, pass: u64, w: usize) -> u64 {
    epoch << 40 | (pass & 0xffff_ffff) << 8 | w as u64
}

/// The epoch and worker a slot's value names.
fn slot_writer(value: u64) -> (u64, usize) {
    (value >> 40, (value & 0xff) as usize)
}

fn word(page: usize, index: usize) -> usize {
    RANGE.load(Ordering::Relaxed) + page * PAGE_SIZE + index * 8
}

/// A worker pinned to core `w`: reads each page's header and writes its own
/// slot, checking each outcome against the state published before it began.
extern "C" fn range_worker(w: usize) {
    if !pin_worker(w) {
        return;
    }
    let mut pass = 0u64;
    while !RANGE_DONE.load(Ordering::Acquire) {
        pass += 1;
        let state = STATE.load(Ordering::SeqCst);
        let (epoch, mode, floor) = unpack(state);
        // A fault counts only if the state did not move meanwhile (no call
        // was under way when it happened).
        let unmoved = || STATE.load(Ordering::SeqCst) == state;
        for page in 0..RANGE_PAGES {
            match try_load(word(page, HEADER)) {
                Some(header) if header != 0 && header < floor => {
                    STALE_READS.fetch_add(1, Ordering::SeqCst);
                }
                Some(_) => {}
                None if mode != Mode::Changing && unmoved() => {
                    SPURIOUS_FAULTS.fetch_add(1, Ordering::SeqCst);
                }
                None => {}
            }
            if page < FIRST_WRITTEN_PAGE {
                continue;
            }
            let wrote = try_store(word(page, SLOT + w), slot_value(epoch, pass, w));
            // The write is performed before the state is read again: a
            // write that went through while the state still says read-only
            // went through after mprotect(PROT_READ) returned and before
            // mprotect gave write back (published as `Changing` first).
            fence(Ordering::SeqCst);
            if wrote && mode == Mode::ReadOnly && unmoved() {
                LATE_WRITES.fetch_add(1, Ordering::SeqCst);
            } else if !wrote && mode == Mode::Writable && unmoved() {
                SPURIOUS_FAULTS.fetch_add(1, Ordering::SeqCst);
            }
        }
        PASSED[w].store(epoch, Ordering::Release);
        PASSES.fetch_add(1, Ordering::Release);
    }
}

/// Waits until every worker of `workers` finished a pass in `epoch` or later.
fn wait_passes(workers: u64, epoch: u64) -> TestResult {
    wait_until("the workers' passes", 20, || cores_of(workers).all(|w| PASSED[w].load(Ordering::Acquire) >= epoch))
}

/// Writes `generation` into every page's header.
fn fill(generation: u64) {
    for page in 0..RANGE_PAGES {
        // SAFETY: the range is mapped writable while the controller fills.
        unsafe { (word(page, HEADER) as *mut u64).write_volatile(generation) };
    }
}

/// Maps the range: fresh, readable and writable, at `addr` (0: anywhere).
fn map_range(addr: usize) -> Result<usize, String> {
    let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | if addr != 0 { MapFlags::FIXED } else { MapFlags::empty() };
    // SAFETY: the test's own range (or a new one); no Rust object lives there.
    unsafe { mem::mmap(addr, RANGE_PAGES * PAGE_SIZE, Prot::READ | Prot::WRITE, flags, -1, 0) }.ctx("mmap")
}

/// One round of the controlling thread: read-only, remap, zap, fork.
/// `generation` is the range's content generation (every header holds it);
/// returns the one it holds after the round.
fn range_round(workers: u64, generation: u64, shared: &Region) -> Result<u64, String> {
    let addr = RANGE.load(Ordering::Relaxed);
    let len = RANGE_PAGES * PAGE_SIZE;

    // Read-only: once mprotect has returned no write may go through; then
    // no slot may hold a value of the read-only epoch.
    publish(Mode::Changing, generation);
    // SAFETY: the test's own range; the workers' writes fault into the handler.
    unsafe { mem::mprotect(addr, len, Prot::READ) }.ctx("mprotect(PROT_READ)")?;
    let read_only = publish(Mode::ReadOnly, generation);
    wait_passes(workers, read_only)?;
    for page in FIRST_WRITTEN_PAGE..RANGE_PAGES {
        for w in cores_of(workers) {
            // SAFETY: the range is mapped readable.
            let value = unsafe { (word(page, SLOT + w) as *const u64).read_volatile() };
            ensure!(
                slot_writer(value) != (read_only, w),
                "worker {w}'s write of the read-only epoch landed in page {page} after mprotect returned"
            );
        }
    }
    publish(Mode::Changing, generation);
    // SAFETY: as above.
    unsafe { mem::mprotect(addr, len, Prot::READ | Prot::WRITE) }.ctx("mprotect(PROT_READ|PROT_WRITE)")?;
    wait_passes(workers, publish(Mode::Writable, generation))?;

    // Unmapped, then mapped again at the same address: once munmap has
    // returned nobody reads the old pages (the floor is the next generation,
    // and the fresh pages read 0 until the controller fills them).
    let holder = hold_frames(shared)?;
    publish(Mode::Changing, generation);
    // SAFETY: the test's own range; the workers' accesses fault meanwhile.
    unsafe { mem::munmap(addr, len) }.ctx("munmap")?;
    let remapped = generation + 1;
    publish(Mode::Changing, remapped);
    ensure!(map_range(addr)? == addr, "the range came back elsewhere");
    publish(Mode::Writable, remapped);
    fill(remapped);
    wait_passes(workers, publish(Mode::Writable, remapped))?;
    release_frames(shared, holder)?;

    // Zapped: once madvise has returned, the pages read 0 until filled again.
    let zapped = remapped + 1;
    let holder = hold_frames(shared)?;
    publish(Mode::Changing, remapped);
    // SAFETY: the test's own range.
    unsafe { mem::madvise(addr, len, Advice::DontNeed) }.ctx("madvise(MADV_DONTNEED)")?;
    publish(Mode::Writable, zapped);
    fill(zapped);
    wait_passes(workers, publish(Mode::Writable, zapped))?;
    release_frames(shared, holder)?;

    // Forked while the workers write: the child's copy is the range at the
    // fork and stays so while the parent's workers go on writing; what the
    // child writes stays in its copy.
    let progress = Stage::at(shared, 0);
    progress.set(0);
    let passes_at_fork = PASSES.load(Ordering::Acquire);
    let child = harness::spawn(|| fork_child(workers, zapped, &progress))?;
    // Tells the child how many passes the workers made since the fork.
    loop {
        match process::wait4(child, WNOHANG).ctx("wait4")? {
            (0, _) => {}
            (_, status) if status.success() => break,
            (_, status) if status.exit_code() == Some(CHILD_FAILED) => {
                return Err(format!("fork child: {}", harness::report_message()));
            }
            (_, status) => return Err(format!("fork child ended with {status}")),
        }
        progress.set(PASSES.load(Ordering::Acquire).wrapping_sub(passes_at_fork) as u32);
        sleep_ms(1).ctx("nanosleep")?;
    }
    for page in 0..RANGE_PAGES {
        // SAFETY: the range is mapped readable.
        let (header, child_word) = unsafe {
            ((word(page, HEADER) as *const u64).read_volatile(), (word(page, CHILD_WORD) as *const u64).read_volatile())
        };
        ensure!(header == zapped, "page {page}'s header is {header:#x} after the fork, not {zapped:#x}");
        ensure!(child_word == 0, "the child's write {child_word:#x} shows in the parent's page {page}");
    }
    Ok(zapped)
}

/// Forks a child that holds the range's frames until [`release_frames`]:
/// the unmapped or zapped pages the workers do not write then stay where
/// they were with the old contents, instead of going back to the pool and
/// straight into the range again (where a stale translation would read the
/// new contents and hide).
fn hold_frames(shared: &Region) -> Result<i32, String> {
    let release = Stage::at(shared, 4);
    release.set(0);
    harness::spawn(|| Stage::at(shared, 4).wait_for(1, None))
}

/// Lets the holder of [`hold_frames`] exit and reaps it.
fn release_frames(shared: &Region, holder: i32) -> TestResult {
    Stage::at(shared, 4).set(1);
    harness::join(holder, "the child holding the frames")
}

/// Parent passes the fork child waits for between its two looks.
const CHILD_WAITS_FOR_PASSES: u32 = 8;

/// The fork child: its copy holds `generation` in every header, does not
/// change while the parent's workers write `CHILD_WAITS_FOR_PASSES` passes,
/// and keeps what the child itself writes.
fn fork_child(workers: u64, generation: u64, progress: &Stage) -> TestResult {
    let mut first = [[0u64; MAX_CORES + 1]; RANGE_PAGES];
    for (page, words) in first.iter_mut().enumerate() {
        // SAFETY: the child's copy of the range is mapped readable.
        words[0] = unsafe { (word(page, HEADER) as *const u64).read_volatile() };
        for w in cores_of(workers) {
            // SAFETY: as above.
            words[1 + w] = unsafe { (word(page, SLOT + w) as *const u64).read_volatile() };
        }
        ensure!(
            words[0] == generation,
            "the child's page {page} holds generation {:#x}, not {generation:#x}",
            words[0]
        );
    }
    let (freq, start) = (time::counter_frequency().max(1), time::counter());
    while progress.get() < CHILD_WAITS_FOR_PASSES {
        ensure!((time::counter() - start) / freq < 20, "the parent's workers made no progress");
        process::sched_yield().ctx("sched_yield")?;
    }
    for (page, words) in first.iter().enumerate() {
        for w in cores_of(workers) {
            // SAFETY: as above.
            let now = unsafe { (word(page, SLOT + w) as *const u64).read_volatile() };
            ensure!(
                now == words[1 + w],
                "the parent's worker {w} wrote {now:#x} into the child's page {page} after the fork (was {:#x})",
                words[1 + w]
            );
        }
        // SAFETY: the child's copy is mapped writable (copy on write).
        unsafe { (word(page, CHILD_WORD) as *mut u64).write_volatile(CHILD_MARK | page as u64) };
    }
    for page in 0..RANGE_PAGES {
        // SAFETY: as above.
        let mine = unsafe { (word(page, CHILD_WORD) as *const u64).read_volatile() };
        ensure!(mine == CHILD_MARK | page as u64, "the child's own write to page {page} reads back {mine:#x}");
    }
    Ok(())
}

/// Workers pinned to every online core read and write a shared range while
/// this thread makes it read-only, unmaps and remaps it, zaps it and forks,
/// round after round: after each call returns, no core reads the old
/// contents or writes through the old permission, no access faults while
/// the range is writable, and a fork's copy is a snapshot that neither side
/// changes for the other. Free memory comes back to where it was.
pub fn shared_range(ctx: &Context) -> TestResult {
    let online = online_cores()?;
    ensure!(online.count_ones() >= 2, "this test wants several cores; online {online:#x}");
    let shared = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::SHARED)?;
    let before = memfree().map_err(|e| format!("{e}"))?;
    signal::handle_info(SIGSEGV, probe_fault, SaFlags::empty()).ctx("sigaction")?;
    let addr = map_range(0)?;
    RANGE.store(addr, Ordering::SeqCst);
    fill(1);
    STATE.store(0, Ordering::SeqCst);
    publish(Mode::Writable, 1);
    RANGE_DONE.store(false, Ordering::SeqCst);
    for passed in &PASSED {
        passed.store(0, Ordering::SeqCst);
    }
    for counter in [&STALE_READS, &LATE_WRITES, &SPURIOUS_FAULTS, &PASSES, &PROBE_FAULTS, &UNPINNED] {
        counter.store(0, Ordering::SeqCst);
    }
    let mut workers: [Option<Thread>; MAX_CORES] = [const { None }; MAX_CORES];
    for n in cores_of(online) {
        workers[n] = Some(spawn_thread(range_worker, n).ctx("clone")?);
    }
    let mut result = Ok(());
    let mut generation = 1;
    for round in 0..RANGE_ROUNDS {
        match range_round(online, generation, &shared) {
            Ok(next) => generation = next,
            Err(e) => {
                result = Err(format!("round {round}: {e}"));
                break;
            }
        }
        if STALE_READS.load(Ordering::SeqCst) + LATE_WRITES.load(Ordering::SeqCst) != 0 {
            break;
        }
    }
    RANGE_DONE.store(true, Ordering::Release);
    for worker in workers.into_iter().flatten() {
        worker.join().ctx("join")?;
    }
    signal::sigaction_raw(SIGSEGV, SIG_DFL, SaFlags::empty(), SigSet(0)).ctx("sigaction")?;
    // SAFETY: the test's own range; the workers have ended.
    unsafe { mem::munmap(addr, RANGE_PAGES * PAGE_SIZE) }.ctx("munmap")?;
    result?;
    let unpinned = UNPINNED.load(Ordering::SeqCst);
    ensure!(unpinned == 0, "workers could not pin themselves to or ran outside cores {unpinned:#x}");
    let (stale, late) = (STALE_READS.load(Ordering::SeqCst), LATE_WRITES.load(Ordering::SeqCst));
    let spurious = SPURIOUS_FAULTS.load(Ordering::SeqCst);
    let (passes, faults) = (PASSES.load(Ordering::SeqCst), PROBE_FAULTS.load(Ordering::SeqCst));
    ensure!(
        stale == 0 && late == 0 && spurious == 0,
        "{stale} reads of old contents, {late} writes after mprotect(PROT_READ) returned, {spurious} faults \
         while writable ({passes} passes, {faults} faults)"
    );
    // The read-only epochs alone make every worker fault once per page.
    ensure!(faults >= RANGE_ROUNDS * RANGE_PAGES as u64, "only {faults} faults in {passes} passes");
    aspen_sys::println!("shared range: {RANGE_ROUNDS} rounds, {passes} worker passes, {faults} faults taken");
    let after = memfree().map_err(|e| format!("{e}"))?;
    ensure!(
        before.abs_diff(after) <= ctx.memfree_slack,
        "free memory {after} bytes after the stress, {before} before (slack {})",
        ctx.memfree_slack
    );
    Ok(())
}

// ---- ASID rollover -------------------------------------------------------------

/// Address spaces the long rollover test creates: more than 16-bit ASIDs
/// number (65,536), so at least one rollover happens whatever the width.
pub const ROLLOVER_SPACES_LONG: u64 = 70_000;
/// Address spaces the suite's rollover test creates: past 8-bit ASIDs'
/// 256 twice (with `aspen.asid_bits=8`, two rollovers at least).
const ROLLOVER_SPACES: u64 = 600;
/// ASID counts of 16-bit and 8-bit ASIDs (ASID 0 included, never handed
/// out): creating more spaces than that rolls over.
const ASIDS_16: u64 = 1 << 16;
const ASIDS_8: u64 = 1 << 8;
/// The rollover test says how far it got after this many spaces: about
/// every 30 s under QEMU, well inside the runner's silence limit (2
/// minutes; 10,000 spaces took longer).
const PROGRESS_EVERY: u64 = 2_000;
/// Fork children alive at once.
const FORK_BATCH: usize = 4;
/// Pages each worker checks, and words it checks per page.
const OWN_PAGES: usize = 8;
const OWN_WORDS: usize = 16;

/// Per worker: its own pages, and the passes it has checked.
static OWN: [AtomicUsize; MAX_CORES] = [const { AtomicUsize::new(0) }; MAX_CORES];
static OWN_CHECKS: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
static OWN_MISMATCHES: AtomicU64 = AtomicU64::new(0);
static ROLLOVER_DONE: AtomicBool = AtomicBool::new(false);
/// The word a fork child finds as its parent left it at the fork.
static SNAPSHOT: AtomicU64 = AtomicU64::new(0);

/// Worker `w`'s value at word `k` of page `page` in pass `pass`.
fn own_pattern(w: usize, pass: u64, page: usize, k: usize) -> u64 {
    (w as u64) << 60 | pass << 16 | (page as u64) << 8 | k as u64
}

/// A worker pinned to core `w`: pass after pass it checks that its own
/// pages still hold what it wrote in the pass before, writes the next
/// pattern and yields (so that the fork children get the core too, and the
/// core switches address spaces).
extern "C" fn own_memory_worker(w: usize) {
    if !pin_worker(w) {
        return;
    }
    let base = OWN[w].load(Ordering::Acquire);
    let mut pass = 0u64;
    while !ROLLOVER_DONE.load(Ordering::Acquire) {
        pass += 1;
        for page in 0..OWN_PAGES {
            for k in 0..OWN_WORDS {
                let at = (base + page * PAGE_SIZE + k * (PAGE_SIZE / OWN_WORDS)) as *mut u64;
                // SAFETY: the worker's own pages, mapped until it is joined.
                let found = unsafe { at.read_volatile() };
                let expected = if pass == 1 { 0 } else { own_pattern(w, pass - 1, page, k) };
                if found != expected {
                    OWN_MISMATCHES.fetch_add(1, Ordering::SeqCst);
                }
                // SAFETY: as above.
                unsafe { at.write_volatile(own_pattern(w, pass, page, k)) };
            }
        }
        OWN_CHECKS[w].fetch_add(1, Ordering::Release);
        let _ = process::sched_yield();
    }
}

/// `asid_rollover` of `/proc/vmstat`; `None` where the kernel has no such
/// line (Linux).
fn asid_rollovers() -> Result<Option<u64>, String> {
    let text = read_text(c"/proc/vmstat")?;
    Ok(text.lines().find_map(|line| line.strip_prefix("asid_rollover ")?.trim().parse().ok()))
}

/// The fork child of the rollover test: its copy of [`SNAPSHOT`] is the
/// parent's at the fork, and its own write to it reads back.
fn rollover_child(expected: u64) -> ! {
    if SNAPSHOT.load(Ordering::SeqCst) != expected {
        process::exit_group(3);
    }
    SNAPSHOT.store(!expected, Ordering::SeqCst);
    process::exit_group(if SNAPSHOT.load(Ordering::SeqCst) == !expected { 0 } else { 4 })
}

/// Creates `spaces` address spaces (fork children that run, write a word
/// and exit) while a worker pinned to each online core keeps checking its
/// own pages; every child sees its snapshot, no worker finds its pages
/// changed, on Aspen `/proc/vmstat` counts the rollovers that many spaces
/// need, and free memory comes back.
fn rollover_under_load(ctx: &Context, spaces: u64) -> TestResult {
    let online = online_cores()?;
    ensure!(online.count_ones() >= 2, "this test wants several cores; online {online:#x}");
    let rollovers_before = asid_rollovers()?;
    ensure!(ctx.linux || rollovers_before.is_some(), "no asid_rollover line in /proc/vmstat");
    let before = memfree().map_err(|e| format!("{e}"))?;
    let own = Region::anon(MAX_CORES * OWN_PAGES, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    ROLLOVER_DONE.store(false, Ordering::SeqCst);
    OWN_MISMATCHES.store(0, Ordering::SeqCst);
    UNPINNED.store(0, Ordering::SeqCst);
    let mut workers: [Option<Thread>; MAX_CORES] = [const { None }; MAX_CORES];
    for n in cores_of(online) {
        OWN[n].store(own.page(n * OWN_PAGES), Ordering::Release);
        OWN_CHECKS[n].store(0, Ordering::SeqCst);
        workers[n] = Some(spawn_thread(own_memory_worker, n).ctx("clone")?);
    }
    let (freq, start) = (time::counter_frequency().max(1), time::counter());
    let mut result = Ok(());
    let mut alive = 0;
    for i in 0..spaces {
        if alive == FORK_BATCH {
            if let Err(e) = reap_one() {
                result = Err(format!("after {i} spaces: {e}"));
                break;
            }
            alive -= 1;
        }
        if i > 0 && i % PROGRESS_EVERY == 0 {
            aspen_sys::println!("asid rollover: {i} address spaces so far");
        }
        SNAPSHOT.store(i, Ordering::SeqCst);
        match process::fork() {
            Ok(Fork::Child) => rollover_child(i),
            Ok(Fork::Parent(_)) => alive += 1,
            Err(e) => {
                result = Err(format!("fork {i}: {e}"));
                break;
            }
        }
    }
    for _ in 0..alive {
        if let Err(e) = reap_one() {
            result = result.and(Err(e));
        }
    }
    let millis = (time::counter() - start) * 1000 / freq;
    ROLLOVER_DONE.store(true, Ordering::Release);
    for worker in workers.into_iter().flatten() {
        worker.join().ctx("join")?;
    }
    // SAFETY: the workers' pages; the workers have ended.
    unsafe { mem::munmap(own.addr, own.len) }.ctx("munmap")?;
    result?;
    let unpinned = UNPINNED.load(Ordering::SeqCst);
    ensure!(unpinned == 0, "workers could not pin themselves to or ran outside cores {unpinned:#x}");
    let mismatches = OWN_MISMATCHES.load(Ordering::SeqCst);
    ensure!(mismatches == 0, "the workers found {mismatches} words of their own pages changed");
    for n in cores_of(online) {
        let checks = OWN_CHECKS[n].load(Ordering::SeqCst);
        ensure!(checks >= 2, "the worker on core {n} checked its pages {checks} times only");
    }
    if let (Some(before), Some(after)) = (rollovers_before, asid_rollovers()?) {
        let rolled = after - before;
        aspen_sys::println!("asid rollover: {spaces} address spaces in {millis} ms, {rolled} ASID rollovers");
        ensure!(spaces < ASIDS_16 || rolled >= 1, "{spaces} address spaces but no ASID rollover");
        // A rollover below 16 bits' count means 8-bit ASIDs: a generation
        // then holds at most 255 spaces, so every 256 new ones roll over.
        let least = if rolled >= 1 && spaces < ASIDS_16 { spaces / ASIDS_8 } else { spaces / ASIDS_16 };
        ensure!(rolled >= least, "{spaces} address spaces but {rolled} ASID rollovers, fewer than {least}");
    }
    let after = memfree().map_err(|e| format!("{e}"))?;
    ensure!(
        before.abs_diff(after) <= ctx.memfree_slack,
        "free memory {after} bytes after the address spaces, {before} before (slack {})",
        ctx.memfree_slack
    );
    Ok(())
}

/// Waits for one fork child of the rollover test; it must have exited 0.
fn reap_one() -> TestResult {
    let (_, status) = process::wait4(-1, 0).ctx("wait4")?;
    ensure!(status.success(), "a fork child ended with {status} (3: wrong snapshot, 4: own write lost)");
    Ok(())
}

/// The suite's rollover test ([`ROLLOVER_SPACES`] address spaces).
pub fn asid_rollover(ctx: &Context) -> TestResult {
    rollover_under_load(ctx, ROLLOVER_SPACES)
}

/// The long rollover test ([`ROLLOVER_SPACES_LONG`] address spaces), run
/// only when named.
pub fn asid_rollover_long(ctx: &Context) -> TestResult {
    rollover_under_load(ctx, ROLLOVER_SPACES_LONG)
}
