//! Tasks on every core: a thread pinned to a core runs there (`getcpu`)
//! and never elsewhere, threads on every core make progress at once (the
//! process's CPU time in `/proc/self/stat` grows faster than the wall
//! clock), and threads on
//! every core reading a page while another replaces or zaps it never read
//! the old page after the call that changed it has returned.
//!
//! Thread bodies use neither the heap nor stdout (see `aspen_sys::thread`):
//! they report through the atomics here.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::mem::{self, Advice, MapFlags, Prot, PAGE_SIZE};
use aspen_sys::process::{self, Fork};
use aspen_sys::raw::{syscall0, syscall3, Sysno};
use aspen_sys::thread::{futex_wait, futex_waiters, futex_wake, spawn_thread, Thread};
use aspen_sys::time::{clock_gettime, sleep_ms, ClockId, NANOS_PER_SECOND};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{Context, Ctx, TestResult};
use crate::procfs::{read_text, self_stat, vmstat};

/// Most cores a test uses (the kernels' limit).
pub(super) const MAX_CORES: usize = 4;

/// The core the caller runs on (`getcpu`).
pub(super) fn getcpu() -> Result<usize, Errno> {
    let mut cpu = u32::MAX;
    // SAFETY: the kernel writes one u32 at `cpu`; node and cache are NULL.
    Errno::result(unsafe { syscall3(Sysno::Getcpu.number(), &mut cpu as *mut u32 as usize, 0, 0) })?;
    Ok(cpu as usize)
}

/// Pins the calling thread to the cores of `mask`.
pub(super) fn pin(mask: u64) -> Result<(), Errno> {
    // SAFETY: the kernel reads 8 bytes at `mask`.
    Errno::result(unsafe { syscall3(Sysno::SchedSetaffinity.number(), 0, 8, &mask as *const u64 as usize) }).map(drop)
}

/// The cores the calling thread may run on, all online ones at the start
/// of a test (those the tests' arrays have room for).
pub(super) fn online_cores() -> Result<u64, String> {
    let mut mask = 0u64;
    // SAFETY: the kernel writes at most 8 bytes at `mask`.
    let got = unsafe { syscall3(Sysno::SchedGetaffinity.number(), 0, 8, &mut mask as *mut u64 as usize) };
    Errno::result(got).ctx("sched_getaffinity")?;
    Ok(mask & ((1 << MAX_CORES) - 1))
}

pub(super) fn cores_of(mask: u64) -> impl Iterator<Item = usize> {
    (0..MAX_CORES).filter(move |n| mask & (1 << n) != 0)
}

fn sched_yield() {
    // SAFETY: no memory is involved.
    unsafe { syscall0(Sysno::SchedYield.number()) };
}

/// How many times a pinned thread looks where it runs.
const PINNED_LOOKS: usize = 300;
/// Per core: the looks of the thread pinned there that found it elsewhere,
/// and the looks it made.
static ELSEWHERE: [AtomicUsize; MAX_CORES] = [const { AtomicUsize::new(0) }; MAX_CORES];
static LOOKS: [AtomicUsize; MAX_CORES] = [const { AtomicUsize::new(0) }; MAX_CORES];

/// A thread that pins itself to core `n`, then yields, sleeps and looks
/// where it runs, again and again.
extern "C" fn pinned_looker(n: usize) {
    if pin(1 << n).is_err() {
        ELSEWHERE[n].fetch_add(PINNED_LOOKS, Ordering::SeqCst);
        return;
    }
    for i in 0..PINNED_LOOKS {
        match getcpu() {
            Ok(cpu) if cpu == n => {}
            _ => {
                ELSEWHERE[n].fetch_add(1, Ordering::SeqCst);
            }
        }
        LOOKS[n].fetch_add(1, Ordering::SeqCst);
        if i % 10 == 0 {
            let _ = sleep_ms(1);
        } else {
            sched_yield();
        }
    }
}

/// `sched_setaffinity` moves the caller to the one core of its mask before
/// it returns, on every core; a thread pinned to each core runs only there
/// across yields and sleeps, while the others compete.
pub fn getcpu_follows_affinity(_: &Context) -> TestResult {
    let online = online_cores()?;
    ensure!(online.count_ones() >= 2, "this test wants several cores; online {online:#x}");
    for n in cores_of(online) {
        pin(1 << n).ctx("sched_setaffinity")?;
        for _ in 0..20 {
            ensure!(getcpu().ctx("getcpu")? == n, "pinned to core {n}, getcpu says another");
            sched_yield();
        }
    }
    pin(online).ctx("sched_setaffinity back to every core")?;
    for n in 0..MAX_CORES {
        ELSEWHERE[n].store(0, Ordering::SeqCst);
        LOOKS[n].store(0, Ordering::SeqCst);
    }
    let mut threads: [Option<Thread>; MAX_CORES] = [const { None }; MAX_CORES];
    for n in cores_of(online) {
        threads[n] = Some(spawn_thread(pinned_looker, n).ctx("clone")?);
    }
    for thread in threads.into_iter().flatten() {
        thread.join().ctx("join")?;
    }
    for n in cores_of(online) {
        let (elsewhere, looks) = (ELSEWHERE[n].load(Ordering::SeqCst), LOOKS[n].load(Ordering::SeqCst));
        ensure!(looks == PINNED_LOOKS, "the thread pinned to core {n} looked {looks} times");
        ensure!(elsewhere == 0, "the thread pinned to core {n} ran elsewhere {elsewhere} times of {looks}");
    }
    Ok(())
}

/// Spinners run until this is set.
static STOP_SPINNING: AtomicBool = AtomicBool::new(false);
/// Spinners that have started (and where).
static SPINNING: AtomicUsize = AtomicUsize::new(0);
static SPUN_ON: AtomicU64 = AtomicU64::new(0);

/// A thread pinned to core `n` spinning without system calls until told.
extern "C" fn spinner(n: usize) {
    if pin(1 << n).is_err() {
        return;
    }
    if let Ok(cpu) = getcpu() {
        SPUN_ON.fetch_or(1 << cpu, Ordering::SeqCst);
    }
    SPINNING.fetch_add(1, Ordering::SeqCst);
    let mut x = 1u64;
    while !STOP_SPINNING.load(Ordering::Relaxed) {
        x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn nanos(clock: ClockId) -> Result<u64, String> {
    let t = clock_gettime(clock as i32).ctx("clock_gettime")?;
    Ok(t.tv_sec as u64 * NANOS_PER_SECOND + t.tv_nsec as u64)
}

/// The process's user and system time so far, in clock ticks (10 ms).
fn cpu_ticks() -> Result<u64, String> {
    Ok(self_stat(14)? + self_stat(15)?)
}

/// A thread pinned to every core spins while this one sleeps: the
/// process's CPU time grows by more than twice the wall time (about as
/// many times as there are cores; on one core it could not pass once).
pub fn threads_run_in_parallel(_: &Context) -> TestResult {
    let online = online_cores()?;
    let cores = online.count_ones() as u64;
    ensure!(cores >= 3, "this test wants at least three cores; online {online:#x}");
    STOP_SPINNING.store(false, Ordering::SeqCst);
    SPINNING.store(0, Ordering::SeqCst);
    SPUN_ON.store(0, Ordering::SeqCst);
    let mut threads: [Option<Thread>; MAX_CORES] = [const { None }; MAX_CORES];
    for n in cores_of(online) {
        threads[n] = Some(spawn_thread(spinner, n).ctx("clone")?);
    }
    while SPINNING.load(Ordering::SeqCst) < cores as usize {
        sleep_ms(1).ctx("nanosleep")?;
    }
    let (cpu_before, wall_before) = (cpu_ticks()?, nanos(ClockId::Monotonic)?);
    sleep_ms(500).ctx("nanosleep")?;
    let (cpu_after, wall_after) = (cpu_ticks()?, nanos(ClockId::Monotonic)?);
    STOP_SPINNING.store(true, Ordering::SeqCst);
    for thread in threads.into_iter().flatten() {
        thread.join().ctx("join")?;
    }
    let (cpu, wall) = ((cpu_after - cpu_before) * 10_000_000, wall_after - wall_before);
    ensure!(SPUN_ON.load(Ordering::SeqCst) == online, "spinners ran on {:#x}", SPUN_ON.load(Ordering::SeqCst));
    ensure!(cpu > 2 * wall, "{cores} spinners used {cpu} ns of CPU time in {wall} ns");
    Ok(())
}

/// The core the round-robin pair is pinned to.
static PAIR_CORE: AtomicUsize = AtomicUsize::new(0);
/// The pair waits on it (futex) until it is 1.
static PAIR_GATE: AtomicU32 = AtomicU32::new(0);
/// Per thread of the pair: spins counted, and whether it could not start.
static PAIR_SPINS: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static PAIR_FAILED: AtomicBool = AtomicBool::new(false);

/// One of the pair: pins itself to `PAIR_CORE`, waits at the gate, then
/// spins (counting) without system calls until told to stop.
extern "C" fn pair_spinner(i: usize) {
    if pin(1 << PAIR_CORE.load(Ordering::SeqCst)).is_err() {
        PAIR_FAILED.store(true, Ordering::SeqCst);
        return;
    }
    while PAIR_GATE.load(Ordering::SeqCst) == 0 {
        let _ = futex_wait(&PAIR_GATE, 0, None);
    }
    while !STOP_SPINNING.load(Ordering::Relaxed) {
        PAIR_SPINS[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Two spinning threads pinned to one idle core, made ready by one call
/// (a `FUTEX_WAKE` of both), share it in round-robin slices: the one the
/// core takes from idle has its slice end armed (when a task was switched
/// in from the idle task, the slice was judged by the idle task's, none,
/// and the other thread waited until the first one stopped).
pub fn pinned_pair_share_a_core(_: &Context) -> TestResult {
    let online = online_cores()?;
    ensure!(online.count_ones() >= 2, "this test wants several cores; online {online:#x}");
    let core = cores_of(online).last().ok_or("no core")?;
    let others = online & !(1 << core);
    // This thread stays off the pair's core: that core idles until the wake.
    pin(others).ctx("sched_setaffinity")?;
    PAIR_CORE.store(core, Ordering::SeqCst);
    PAIR_GATE.store(0, Ordering::SeqCst);
    PAIR_FAILED.store(false, Ordering::SeqCst);
    STOP_SPINNING.store(false, Ordering::SeqCst);
    for spins in &PAIR_SPINS {
        spins.store(0, Ordering::SeqCst);
    }
    let threads = [spawn_thread(pair_spinner, 0).ctx("clone")?, spawn_thread(pair_spinner, 1).ctx("clone")?];
    let mut waiting = 0;
    for _ in 0..1000 {
        waiting = futex_waiters(&PAIR_GATE).ctx("futex requeue")?;
        if waiting == 2 || PAIR_FAILED.load(Ordering::SeqCst) {
            break;
        }
        sleep_ms(1).ctx("nanosleep")?;
    }
    PAIR_GATE.store(1, Ordering::SeqCst);
    futex_wake(&PAIR_GATE, 2).ctx("futex wake")?;
    sleep_ms(200).ctx("nanosleep")?;
    let spins = [PAIR_SPINS[0].load(Ordering::SeqCst), PAIR_SPINS[1].load(Ordering::SeqCst)];
    STOP_SPINNING.store(true, Ordering::SeqCst);
    for thread in threads {
        thread.join().ctx("join")?;
    }
    pin(online).ctx("sched_setaffinity back to every core")?;
    ensure!(!PAIR_FAILED.load(Ordering::SeqCst), "a thread of the pair could not pin itself to core {core}");
    ensure!(waiting == 2, "{waiting} threads of the pair waited at the gate");
    ensure!(spins[0] > 0 && spins[1] > 0, "in 200 ms on core {core} the pair spun {spins:?} times");
    Ok(())
}

/// Rounds of the shared-page stress.
const STRESS_ROUNDS: u64 = 1500;
/// The page the readers read (its address), and the round whose value it
/// holds from the moment the round is published.
static STRESS_PAGE: AtomicUsize = AtomicUsize::new(0);
static STRESS_ROUND: AtomicU64 = AtomicU64::new(0);
static STRESS_DONE: AtomicBool = AtomicBool::new(false);
/// Reads that found an older round's value after the newer round was
/// published, and reads made.
static STALE_READS: AtomicU64 = AtomicU64::new(0);
static READS: AtomicU64 = AtomicU64::new(0);

/// A reader pinned to core `n`: reads the round published, then the page;
/// the page holds that round's value or a later one, or zero (a later
/// round's fresh page, not written yet), never an earlier one.
extern "C" fn stress_reader(n: usize) {
    if pin(1 << n).is_err() {
        STALE_READS.fetch_add(1 << 32, Ordering::SeqCst);
        return;
    }
    let page = STRESS_PAGE.load(Ordering::SeqCst) as *const u64;
    while !STRESS_DONE.load(Ordering::Acquire) {
        let round = STRESS_ROUND.load(Ordering::Acquire);
        // SAFETY: the page is always mapped readable: replaced in one call
        // (MAP_FIXED), or zapped (MADV_DONTNEED), never unmapped.
        let value = unsafe { core::ptr::read_volatile(page) };
        if value != 0 && value < round {
            STALE_READS.fetch_add(1, Ordering::SeqCst);
        }
        READS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Readers on every other core read a page while this thread replaces it
/// with a fresh page (`mmap(MAP_FIXED)`) or zaps it (`MADV_DONTNEED`),
/// writes the next round's value and publishes the round: once the call
/// has returned, no core reads the old page (a stale TLB entry would show
/// the old frame's older value).
pub fn no_stale_reads_across_cores(_: &Context) -> TestResult {
    let online = online_cores()?;
    ensure!(online.count_ones() >= 2, "this test wants several cores; online {online:#x}");
    let prot = Prot::READ | Prot::WRITE;
    let private = MapFlags::PRIVATE | MapFlags::ANONYMOUS;
    // SAFETY: a fresh mapping, unmapped at the end.
    let page = unsafe { mem::mmap(0, PAGE_SIZE, prot, private, -1, 0) }.ctx("mmap")?;
    let cell = page as *mut u64;
    // SAFETY: the page is mapped readable and writable.
    unsafe { core::ptr::write_volatile(cell, 1) };
    STRESS_PAGE.store(page, Ordering::SeqCst);
    STRESS_ROUND.store(1, Ordering::SeqCst);
    STRESS_DONE.store(false, Ordering::SeqCst);
    STALE_READS.store(0, Ordering::SeqCst);
    READS.store(0, Ordering::SeqCst);
    let me = cores_of(online).next().unwrap_or(0);
    pin(1 << me).ctx("sched_setaffinity")?;
    let mut readers: [Option<Thread>; MAX_CORES] = [const { None }; MAX_CORES];
    for n in cores_of(online).filter(|&n| n != me) {
        readers[n] = Some(spawn_thread(stress_reader, n).ctx("clone")?);
    }
    let mut result = Ok(());
    for round in 2..=STRESS_ROUNDS {
        let changed = if round % 2 == 0 {
            // SAFETY: replaces this test's own page with a fresh one.
            unsafe { mem::mmap(page, PAGE_SIZE, prot, private | MapFlags::FIXED, -1, 0) }.map(drop)
        } else {
            // SAFETY: zaps this test's own page.
            unsafe { mem::madvise(page, PAGE_SIZE, Advice::DontNeed) }
        };
        if let Err(e) = changed {
            result = Err(alloc::format!("round {round}: {e}"));
            break;
        }
        // SAFETY: the page is mapped readable and writable.
        unsafe { core::ptr::write_volatile(cell, round) };
        STRESS_ROUND.store(round, Ordering::Release);
    }
    STRESS_DONE.store(true, Ordering::Release);
    for reader in readers.into_iter().flatten() {
        reader.join().ctx("join")?;
    }
    pin(online).ctx("sched_setaffinity back to every core")?;
    // SAFETY: this test's own page.
    unsafe { mem::munmap(page, PAGE_SIZE) }.ctx("munmap")?;
    result?;
    let (stale, reads) = (STALE_READS.load(Ordering::SeqCst), READS.load(Ordering::SeqCst));
    ensure!(reads > 0, "the readers read nothing");
    ensure!(stale == 0, "{stale} stale reads of {reads} (a reader that could not pin itself counts 2^32)");
    Ok(())
}

/// Pages every core's thread faults at once.
const SHARED_FAULT_PAGES: usize = 512;
static FAULTERS: Crew = Crew::new();

/// Writes its own word (`n + 1` at word `n`) into every page of the
/// region, starting at a page of its own and wrapping around, so that
/// each page's first touch is raced by the threads of several cores.
extern "C" fn shared_faulter(arg: usize) {
    let n = arg & 0xff;
    let region = FAULTERS.report_for_work(n);
    let first = n * SHARED_FAULT_PAGES / MAX_CORES;
    for i in 0..SHARED_FAULT_PAGES {
        let page = (first + i) % SHARED_FAULT_PAGES;
        let word = (region + page * PAGE_SIZE) as *mut u64;
        // SAFETY: the region is mapped readable and writable until every
        // thread is done; word `n` of each page is this thread's alone.
        unsafe { core::ptr::write_volatile(word.add(n), n as u64 + 1) };
    }
    FAULTERS.finished();
}

/// The threads of one process on every core first-touch the same pages
/// at once: the faults resolve with the space shared, without the big
/// kernel lock (`pgfault_shared` in /proc/vmstat grows), and each page is
/// mapped once: every thread's word is in it (a second frame mapped over
/// the first would lose a word), and the resident count grows by exactly
/// the pages.
pub fn faults_share_the_space_across_cores(_: &Context) -> TestResult {
    let online = online_cores()?;
    let cores = online.count_ones() as usize;
    ensure!(cores >= 2, "this test wants several cores; online {online:#x}");
    // Warm up the reads below, so that their buffers add no pages later.
    statm_resident()?;
    vmstat("pgfault_shared")?;
    let prot = Prot::READ | Prot::WRITE;
    let private = MapFlags::PRIVATE | MapFlags::ANONYMOUS;
    // SAFETY: a fresh mapping, unmapped at the end.
    let region = unsafe { mem::mmap(0, SHARED_FAULT_PAGES * PAGE_SIZE, prot, private, -1, 0) }.ctx("mmap")?;
    let threads = FAULTERS.start(region, online, shared_faulter)?;
    let resident_before = statm_resident()?;
    let (shared_before, races_before) = (vmstat("pgfault_shared")?, vmstat("pgfault_shared_race")?);
    FAULTERS.go();
    FAULTERS.wait_finished(cores)?;
    let resident_after = statm_resident()?;
    let (shared, races) = (vmstat("pgfault_shared")? - shared_before, vmstat("pgfault_shared_race")? - races_before);
    for thread in threads.into_iter().flatten() {
        thread.join().ctx("join")?;
    }
    let mut lost = 0;
    for page in 0..SHARED_FAULT_PAGES {
        for n in cores_of(online) {
            // SAFETY: as above; word `n` of the page.
            let value = unsafe { core::ptr::read_volatile(((region + page * PAGE_SIZE) as *const u64).add(n)) };
            lost += usize::from(value != n as u64 + 1);
        }
    }
    // SAFETY: this test's own mapping.
    unsafe { mem::munmap(region, SHARED_FAULT_PAGES * PAGE_SIZE) }.ctx("munmap")?;
    FAULTERS.check_pinned()?;
    ensure!(lost == 0, "{lost} words lost: a page was mapped twice");
    let grown = resident_after - resident_before;
    ensure!(grown == SHARED_FAULT_PAGES as u64, "resident pages grew by {grown} for {SHARED_FAULT_PAGES} pages");
    ensure!(
        shared >= SHARED_FAULT_PAGES as u64,
        "{shared} faults resolved with the space shared ({races} raced) for {SHARED_FAULT_PAGES} first touches"
    );
    Ok(())
}

/// Pages of the file every core's thread faults in at once, through each
/// of its three mappings (two private, one shared).
const FILE_FAULT_PAGES: usize = 256;
const FAULTED_FILE: &core::ffi::CStr = c"/tmp/usertests-file-faults";
static FILE_FAULTERS: Crew = Crew::new();

/// Word `k` of page `page` of [`FAULTED_FILE`].
fn file_word(page: usize, k: usize) -> u64 {
    ((page as u64) << 32 | k as u64) ^ 0x5a5a_0000_0000_5a5a
}

/// What thread `n` writes to its own word (`n + 1`) of every page.
fn file_marker(n: usize) -> u64 {
    u64::MAX - n as u64
}

/// The word thread `n` writes through the shared mapping: the file's.
fn shared_word(n: usize) -> usize {
    8 + n
}

/// Over every page of the file (its first page its own, then wrapping
/// around): reads word 0 through the first mapping, writes its own word
/// through the second (a first touch that copies the cached page), reads
/// word 0 and writes its shared word through the third (a first touch
/// that maps the cached page read-only or writable, and a write that makes
/// it writable); then writes its own word through the first (a copy of
/// the page mapped read-only).
extern "C" fn file_faulter(arg: usize) {
    let n = arg & 0xff;
    let region = FILE_FAULTERS.report_for_work(n);
    let len = FILE_FAULT_PAGES * PAGE_SIZE;
    let (read_view, write_view, shared_view) = (region, region + len, region + 2 * len);
    let first = n * FILE_FAULT_PAGES / MAX_CORES;
    let pages = || (0..FILE_FAULT_PAGES).map(move |i| (first + i) % FILE_FAULT_PAGES);
    for page in pages() {
        // SAFETY: both views are mapped readable and writable until every
        // thread is done; word `n + 1` of each page is this thread's alone.
        unsafe {
            if core::ptr::read_volatile((read_view + page * PAGE_SIZE) as *const u64) != file_word(page, 0) {
                FILE_FAULTERS.found_wrong();
            }
            core::ptr::write_volatile(((write_view + page * PAGE_SIZE) as *mut u64).add(n + 1), file_marker(n));
            // Read first: the page and its neighbours map read-only, and
            // the threads' writes make them writable in place.
            let shared = (shared_view + page * PAGE_SIZE) as *mut u64;
            if core::ptr::read_volatile(shared) != file_word(page, 0) {
                FILE_FAULTERS.found_wrong();
            }
            core::ptr::write_volatile(shared.add(shared_word(n)), file_marker(n));
        }
    }
    for page in pages() {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(((read_view + page * PAGE_SIZE) as *mut u64).add(n + 1), file_marker(n)) };
    }
    FILE_FAULTERS.finished();
}

/// The threads of one process on every core fault in the same pages of a
/// cached file through two private mappings and a shared one at once:
/// reads map the cached pages, writes to a private mapping copy them (and
/// again where mapped read-only), writes to the shared one map them
/// writable or make them so, all with the space shared (`pgfault_shared` grows by a fault
/// a page and mapping at least). Each page is mapped once (every thread's
/// word is in it, the file's words around them), the resident count grows
/// by exactly the pages of the three mappings, and the file holds the
/// shared mapping's writes and none of the private ones'.
pub fn file_faults_share_the_space_across_cores(_: &Context) -> TestResult {
    let online = online_cores()?;
    let cores = online.count_ones() as usize;
    ensure!(cores >= 2, "this test wants several cores; online {online:#x}");
    let len = FILE_FAULT_PAGES * PAGE_SIZE;
    let fd = fs::open(FAULTED_FILE, OpenFlags::RDWR | OpenFlags::CREAT | OpenFlags::TRUNC, 0o600).ctx("create")?;
    let mut page_bytes = alloc::vec![0u8; PAGE_SIZE];
    for page in 0..FILE_FAULT_PAGES {
        for (k, word) in page_bytes.chunks_exact_mut(8).enumerate() {
            word.copy_from_slice(&file_word(page, k).to_ne_bytes());
        }
        ensure!(fs::write(fd, &page_bytes).ctx("write")? == PAGE_SIZE, "a short write");
    }
    statm_resident()?;
    vmstat("pgfault_shared")?;
    let prot = Prot::READ | Prot::WRITE;
    // SAFETY: a fresh reservation for the three views, unmapped at the end.
    let region = unsafe { mem::mmap(0, 3 * len, prot, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0) }.ctx("mmap")?;
    for (view, flags) in
        [(region, MapFlags::PRIVATE), (region + len, MapFlags::PRIVATE), (region + 2 * len, MapFlags::SHARED)]
    {
        // SAFETY: over this test's own reservation.
        unsafe { mem::mmap(view, len, prot, flags | MapFlags::FIXED, fd, 0) }.ctx("mmap the file")?;
    }
    let threads = FILE_FAULTERS.start(region, online, file_faulter)?;
    let resident_before = statm_resident()?;
    let shared_before = vmstat("pgfault_shared")?;
    FILE_FAULTERS.go();
    FILE_FAULTERS.wait_finished(cores)?;
    let resident_after = statm_resident()?;
    let shared = vmstat("pgfault_shared")? - shared_before;
    for thread in threads.into_iter().flatten() {
        thread.join().ctx("join")?;
    }
    let mut wrong = FILE_FAULTERS.wrong();
    for page in 0..FILE_FAULT_PAGES {
        for view in [region, region + len] {
            let words = (view + page * PAGE_SIZE) as *const u64;
            // SAFETY: the views are mapped until the munmap below.
            let word = |k: usize| unsafe { core::ptr::read_volatile(words.add(k)) };
            wrong += usize::from(word(0) != file_word(page, 0) || word(511) != file_word(page, 511));
            wrong += cores_of(online).filter(|&n| word(n + 1) != file_marker(n)).count();
        }
    }
    // SAFETY: this test's own mappings.
    unsafe { mem::munmap(region, 3 * len) }.ctx("munmap")?;
    fs::lseek(fd, 0, 0).ctx("lseek")?;
    for page in 0..FILE_FAULT_PAGES {
        ensure!(fs::read_full(fd, &mut page_bytes).ctx("read")? == PAGE_SIZE, "a short read");
        let word = |k: usize| u64::from_ne_bytes(page_bytes[8 * k..8 * k + 8].try_into().unwrap_or_default());
        wrong += (0..MAX_CORES + 1).filter(|&k| word(k) != file_word(page, k)).count();
        wrong += cores_of(online).filter(|&n| word(shared_word(n)) != file_marker(n)).count();
    }
    fs::close(fd).ctx("close")?;
    aspen_sys::path::unlinkat(fs::AT_FDCWD, FAULTED_FILE, 0).ctx("unlink")?;
    FILE_FAULTERS.check_pinned()?;
    ensure!(wrong == 0, "{wrong} words wrong: a page mapped twice, a private write in the file or a shared one not");
    let grown = resident_after - resident_before;
    ensure!(grown == 3 * FILE_FAULT_PAGES as u64, "resident pages grew by {grown} for 3 x {FILE_FAULT_PAGES} pages");
    ensure!(
        shared >= 3 * FILE_FAULT_PAGES as u64,
        "{shared} faults resolved with the space shared for {FILE_FAULT_PAGES} pages written through each view"
    );
    Ok(())
}

/// statm's resident pages of this process.
fn statm_resident() -> Result<u64, String> {
    let statm = read_text(c"/proc/self/statm")?;
    statm.split_whitespace().nth(1).and_then(|f| f.parse().ok()).ok_or_else(|| alloc::format!("statm: {statm:?}"))
}

/// Pages each faulting thread first-touches while the mapper works.
const BESIDE_PAGES: usize = 1024;
/// mmap/touch/munmap rounds of the mapping thread, and its mapping's pages
/// (one unmap stretch), in every fourth round many more (many stretches,
/// across a last-level table), in every eighth a private mapping of this
/// program's file.
const MAPPER_ROUNDS: usize = 200;
const MAPPER_PAGES: usize = 16;
const MAPPER_LONG_PAGES: usize = 600;
/// This program, mapped privately by the mapper.
const MAPPER_FILE: &core::ffi::CStr = c"/bin/usertests";
static BESIDE: Crew = Crew::new();
/// The mapper's rounds are over: the faulting threads end.
static MAPPER_DONE: AtomicBool = AtomicBool::new(false);

/// Thread `slot` (pinned to core `n`): first-touches its own
/// `BESIDE_PAGES` pages, writing each page's number, then reads them back.
extern "C" fn beside_faulter(arg: usize) {
    let (slot, n) = (arg >> 8, arg & 0xff);
    let base = BESIDE.report_for_work(n) + slot * BESIDE_PAGES * PAGE_SIZE;
    for page in 0..BESIDE_PAGES {
        // SAFETY: this thread's own pages of a mapping that outlives it.
        unsafe { core::ptr::write_volatile((base + page * PAGE_SIZE) as *mut usize, page + 1) };
    }
    for page in 0..BESIDE_PAGES {
        // SAFETY: as above.
        let value = unsafe { core::ptr::read_volatile((base + page * PAGE_SIZE) as *const usize) };
        if value != page + 1 {
            BESIDE.found_wrong();
        }
    }
    BESIDE.finished();
    // Alive until the mapper is done, so that its long unmaps, too, go
    // beside other threads.
    while !MAPPER_DONE.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
}

/// Threads on the other cores first-touch pages of their own while this
/// thread maps, touches and unmaps 64 KiB over and over (2.3 MiB in every
/// fourth round, this program's file in every eighth): the unmaps empty
/// their range while the faults go on (`munmap_shared` in /proc/vmstat
/// counts every one), every page keeps what was written to it, the
/// mapper's pages are gone after each munmap, and the resident count
/// ends exactly the faulted pages higher.
pub fn faults_go_on_beside_mmap_and_munmap(_: &Context) -> TestResult {
    let online = online_cores()?;
    ensure!(online.count_ones() >= 2, "this test wants several cores; online {online:#x}");
    statm_resident()?;
    vmstat("munmap_shared")?;
    let me = cores_of(online).next().unwrap_or(0);
    let others: usize = cores_of(online).filter(|&n| n != me).count();
    let prot = Prot::READ | Prot::WRITE;
    let private = MapFlags::PRIVATE | MapFlags::ANONYMOUS;
    let size = others * BESIDE_PAGES * PAGE_SIZE;
    // SAFETY: a fresh mapping, unmapped at the end.
    let region = unsafe { mem::mmap(0, size, prot, private, -1, 0) }.ctx("mmap")?;
    let file = fs::open(MAPPER_FILE, OpenFlags::RDONLY, 0).ctx("open this program")?;
    pin(1 << me).ctx("sched_setaffinity")?;
    MAPPER_DONE.store(false, Ordering::Release);
    let threads = BESIDE.start(region, online & !(1 << me), beside_faulter)?;
    let resident_before = statm_resident()?;
    let unmaps_before = vmstat("munmap_shared")?;
    BESIDE.go();
    let mut result = Ok(());
    for round in 0..MAPPER_ROUNDS {
        let pages = if round % 4 == 0 { MAPPER_LONG_PAGES } else { MAPPER_PAGES };
        let (flags, fd) = if round % 8 == 0 { (MapFlags::PRIVATE, file) } else { (private, -1) };
        // SAFETY: a fresh mapping of this thread's, unmapped below.
        let mapped = unsafe { mem::mmap(0, pages * PAGE_SIZE, prot, flags, fd, 0) };
        let Ok(at) = mapped else {
            result = Err(alloc::format!("round {round}: mmap: {mapped:?}"));
            break;
        };
        // The file is shorter than the long mapping: its first pages only.
        let touched = if fd < 0 { pages } else { MAPPER_PAGES };
        for page in 0..touched {
            // SAFETY: the mapping just made (a file page is copied).
            unsafe { core::ptr::write_volatile((at + page * PAGE_SIZE) as *mut usize, round) };
        }
        // SAFETY: as above.
        let back = unsafe { core::ptr::read_volatile((at + (round % touched) * PAGE_SIZE) as *const usize) };
        // SAFETY: this thread's own mapping.
        let unmapped = unsafe { mem::munmap(at, pages * PAGE_SIZE) };
        if back != round || unmapped.is_err() {
            result = Err(alloc::format!("round {round}: read {back}, munmap {unmapped:?}"));
            break;
        }
    }
    MAPPER_DONE.store(true, Ordering::Release);
    fs::close(file).ctx("close")?;
    if result.is_ok() {
        BESIDE.wait_finished(others)?;
    }
    let resident_after = statm_resident()?;
    let unmaps = vmstat("munmap_shared")? - unmaps_before;
    for thread in threads.into_iter().flatten() {
        thread.join().ctx("join")?;
    }
    pin(online).ctx("sched_setaffinity back to every core")?;
    // SAFETY: this test's own mapping.
    unsafe { mem::munmap(region, size) }.ctx("munmap")?;
    result?;
    BESIDE.check_pinned()?;
    let wrong = BESIDE.wrong();
    ensure!(wrong == 0, "{wrong} pages lost what was written to them");
    let grown = resident_after - resident_before;
    let faulted = (others * BESIDE_PAGES) as u64;
    ensure!(grown == faulted, "resident pages grew by {grown} for {faulted} pages faulted (the mapper's are gone)");
    ensure!(unmaps >= MAPPER_ROUNDS as u64, "{unmaps} unmaps beside the faults for {MAPPER_ROUNDS} munmaps");
    Ok(())
}

/// Pages each thread writes before and after the fork.
const COW_PAGES: usize = 256;
/// Its threads report for work once they wrote their pages the first
/// time (ready for the fork); the main thread says go after the fork.
static COW_WRITERS: Crew = Crew::new();

/// The value thread `slot` writes into page `page` in round `round`.
fn cow_value(slot: usize, page: usize, round: usize) -> usize {
    (round << 40 | slot << 20 | page) + 1
}

/// Thread `slot` on core `n`: writes its pages, waits for the fork, then
/// writes them again (each write a copy-on-write fault on its core) and
/// reads them back.
extern "C" fn cow_writer(arg: usize) {
    let (slot, n) = (arg >> 8, arg & 0xff);
    let base = COW_WRITERS.pin_to(n) + slot * COW_PAGES * PAGE_SIZE;
    let word = |page: usize| (base + page * PAGE_SIZE) as *mut usize;
    for page in 0..COW_PAGES {
        // SAFETY: this thread's own pages of a mapping that outlives it.
        unsafe { core::ptr::write_volatile(word(page), cow_value(slot, page, 1)) };
    }
    COW_WRITERS.ready_and_wait();
    for page in 0..COW_PAGES {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(word(page), cow_value(slot, page, 2)) };
    }
    for page in 0..COW_PAGES {
        // SAFETY: as above.
        if unsafe { core::ptr::read_volatile(word(page)) } != cow_value(slot, page, 2) {
            COW_WRITERS.found_wrong();
        }
    }
    COW_WRITERS.finished();
}

/// Threads on the other cores write their pages, this thread forks, and
/// the threads write every page again at once while the child reads: the
/// writes break copy-on-write on their own cores with the space shared
/// (`pgfault_shared` grows by at least half a fault a page), every thread reads
/// back its new values, and the child, reading at the same time, sees
/// only the values of before the fork.
pub fn copy_on_write_across_cores(_: &Context) -> TestResult {
    let online = online_cores()?;
    ensure!(online.count_ones() >= 2, "this test wants several cores; online {online:#x}");
    vmstat("pgfault_shared")?;
    let me = cores_of(online).next().unwrap_or(0);
    let others = cores_of(online).filter(|&n| n != me).count();
    let prot = Prot::READ | Prot::WRITE;
    let size = others * COW_PAGES * PAGE_SIZE;
    // SAFETY: a fresh mapping, unmapped at the end.
    let region = unsafe { mem::mmap(0, size, prot, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0) }.ctx("mmap")?;
    pin(1 << me).ctx("sched_setaffinity")?;
    let threads = COW_WRITERS.start(region, online & !(1 << me), cow_writer)?;
    // Set (shared with the child) once the threads are done: the child
    // reads until then, so that every write of theirs copies.
    let shared = MapFlags::SHARED | MapFlags::ANONYMOUS;
    // SAFETY: a fresh mapping, unmapped at the end.
    let flag = unsafe { mem::mmap(0, PAGE_SIZE, prot, shared, -1, 0) }.ctx("mmap shared")? as *mut u32;
    // SAFETY: the shared page just mapped.
    let threads_done = || unsafe { core::ptr::read_volatile(flag) } != 0;
    let shared_before = vmstat("pgfault_shared")?;
    let child = match process::fork().ctx("fork")? {
        Fork::Child => {
            // Reads every page while the parent's threads write theirs.
            let mut wrong = 0;
            let mut passes = 0;
            while passes == 0 || !threads_done() {
                passes += 1;
                for slot in 0..others {
                    for page in 0..COW_PAGES {
                        let at = region + (slot * COW_PAGES + page) * PAGE_SIZE;
                        // SAFETY: the child's copy of the mapping.
                        let value = unsafe { core::ptr::read_volatile(at as *const usize) };
                        wrong += usize::from(value != cow_value(slot, page, 1));
                    }
                }
            }
            process::exit_group(i32::from(wrong != 0))
        }
        Fork::Parent(pid) => pid,
    };
    COW_WRITERS.go();
    COW_WRITERS.wait_finished(others)?;
    let faults = vmstat("pgfault_shared")? - shared_before;
    // SAFETY: the shared page.
    unsafe { core::ptr::write_volatile(flag, 1) };
    let (_, status) = process::wait4(child, 0).ctx("wait4")?;
    for thread in threads.into_iter().flatten() {
        thread.join().ctx("join")?;
    }
    pin(online).ctx("sched_setaffinity back to every core")?;
    // SAFETY: this test's own mappings.
    unsafe { mem::munmap(region, size) }.ctx("munmap")?;
    // SAFETY: as above.
    unsafe { mem::munmap(flag as usize, PAGE_SIZE) }.ctx("munmap shared")?;
    COW_WRITERS.check_pinned()?;
    ensure!(status.exit_code() == Some(0), "the child saw writes made after the fork: {status}");
    let wrong = COW_WRITERS.wrong();
    ensure!(wrong == 0, "{wrong} pages lost a write made after the fork");
    let pages = (others * COW_PAGES) as u64;
    // Most: a write the exclusive path must take (to a page the child
    // copied first, on this thread's stack: an upgrade, with write
    // fault-around) closes the gate while it runs, and the other cores'
    // faults meanwhile take the locks too.
    ensure!(faults >= pages / 2, "{faults} faults resolved with the space shared for {pages} copy-on-write pages");
    Ok(())
}

/// The threads a test starts on other cores, and what they share with it
/// (thread bodies use neither the heap nor stdout: atomics only). A thread
/// pins itself, says it is ready and waits for the test's go, does its
/// work, counts what it found wrong and says it is done.
struct Crew {
    /// The test's region (0 until started).
    region: AtomicUsize,
    ready: AtomicUsize,
    go: AtomicBool,
    wrong: AtomicUsize,
    done: AtomicUsize,
    /// A thread could not pin itself.
    unpinned: AtomicBool,
}

impl Crew {
    const fn new() -> Self {
        Self {
            region: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            go: AtomicBool::new(false),
            wrong: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            unpinned: AtomicBool::new(false),
        }
    }

    /// Starts `body` on every core of `cores` (its argument: its slot
    /// among them `<< 8 |` the core), the test's region at `region`, then
    /// waits until each is ready.
    fn start(
        &self,
        region: usize,
        cores: u64,
        body: extern "C" fn(usize),
    ) -> Result<[Option<Thread>; MAX_CORES], String> {
        self.region.store(region, Ordering::SeqCst);
        for counter in [&self.ready, &self.wrong, &self.done] {
            counter.store(0, Ordering::SeqCst);
        }
        self.go.store(false, Ordering::SeqCst);
        self.unpinned.store(false, Ordering::SeqCst);
        let mut threads: [Option<Thread>; MAX_CORES] = [const { None }; MAX_CORES];
        let mut started = 0;
        for (slot, n) in cores_of(cores).enumerate() {
            threads[n] = Some(spawn_thread(body, slot << 8 | n).ctx("clone")?);
            started += 1;
        }
        while self.ready.load(Ordering::SeqCst) < started {
            sleep_ms(1).ctx("nanosleep")?;
        }
        Ok(threads)
    }

    /// A thread pins itself to core `n` (a failure is recorded); returns
    /// the test's region.
    fn pin_to(&self, n: usize) -> usize {
        if pin(1 << n).is_err() {
            self.unpinned.store(true, Ordering::SeqCst);
        }
        self.region.load(Ordering::SeqCst)
    }

    /// A thread says it is ready and waits for the test's go.
    fn ready_and_wait(&self) {
        self.ready.fetch_add(1, Ordering::SeqCst);
        while !self.go.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
    }

    /// [`Self::pin_to`], then [`Self::ready_and_wait`].
    fn report_for_work(&self, n: usize) -> usize {
        let region = self.pin_to(n);
        self.ready_and_wait();
        region
    }

    fn found_wrong(&self) {
        self.wrong.fetch_add(1, Ordering::SeqCst);
    }

    fn finished(&self) {
        self.done.fetch_add(1, Ordering::SeqCst);
    }

    fn go(&self) {
        self.go.store(true, Ordering::Release);
    }

    /// Waits until `count` threads are done.
    fn wait_finished(&self, count: usize) -> Result<(), String> {
        while self.done.load(Ordering::SeqCst) < count {
            sleep_ms(1).ctx("nanosleep")?;
        }
        Ok(())
    }

    fn wrong(&self) -> usize {
        self.wrong.load(Ordering::SeqCst)
    }

    fn check_pinned(&self) -> Result<(), String> {
        ensure!(!self.unpinned.load(Ordering::SeqCst), "a thread could not pin itself");
        Ok(())
    }
}
