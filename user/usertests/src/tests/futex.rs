//! Futexes between threads of one process (and across fork through shared
//! memory): wait/wake counts, bitsets, requeues, `FUTEX_WAKE_OP`,
//! timeouts, PI locks and their priority inheritance, robust lists.
//!
//! Thread bodies use neither the heap nor stdout (see `aspen_sys::thread`):
//! they report through the atomics below, which the test checks.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};

use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::thread::{self as th, futex, futex_op, futex_waiters, futex_wake, spawn_thread, Thread};
use aspen_sys::time::{self, Timespec, CLOCK_MONOTONIC};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, join, spawn, Context, Ctx, Region, TestResult};

const PRIVATE: u32 = th::FUTEX_PRIVATE_FLAG;

static WORD: AtomicU32 = AtomicU32::new(0);
static WORD2: AtomicU32 = AtomicU32::new(0);
/// Bit i: thread i has returned from its wait (or got its lock).
static DONE: AtomicU32 = AtomicU32::new(0);
/// What the threads saw that they should not have (0: nothing).
static BAD: AtomicU32 = AtomicU32::new(0);

fn addr(word: &AtomicU32) -> usize {
    word as *const AtomicU32 as usize
}

fn ms(n: u64) -> Timespec {
    Timespec::from_nanos(n * 1_000_000)
}

/// Polls `cond` every millisecond for up to five seconds.
fn wait_until(what: &str, cond: impl Fn() -> bool) -> TestResult {
    for _ in 0..5000 {
        if cond() {
            return Ok(());
        }
        time::sleep_ms(1).ctx("nanosleep")?;
    }
    Err(alloc::format!("timed out waiting until {what}"))
}

/// Polls until `count` threads wait on `word`.
fn waiters_reach(word: &AtomicU32, count: usize) -> TestResult {
    wait_until("the threads wait", || futex_waiters(word) == Ok(count))
}

fn join_all(threads: impl IntoIterator<Item = Thread>) -> TestResult {
    for thread in threads {
        thread.join().ctx("join")?;
    }
    Ok(())
}

/// Thread `i`: waits on WORD (value 0) with bitset `1 << i`.
extern "C" fn wait_bitset(i: usize) {
    let r = futex(&WORD, th::FUTEX_WAIT_BITSET | PRIVATE, 0, 0, 0, 1 << i);
    if r.is_err() {
        BAD.store(1, SeqCst);
    }
    DONE.fetch_or(1 << i, SeqCst);
}

/// Thread `i`: waits on WORD (value 0) with FUTEX_WAIT.
extern "C" fn wait_word(i: usize) {
    if futex(&WORD, th::FUTEX_WAIT | PRIVATE, 0, 0, 0, 0).is_err() {
        BAD.store(1, SeqCst);
    }
    DONE.fetch_or(1 << i, SeqCst);
}

/// Thread `i`: waits on WORD2 (value 5) with FUTEX_WAIT.
extern "C" fn wait_word2(i: usize) {
    if futex(&WORD2, th::FUTEX_WAIT | PRIVATE, 5, 0, 0, 0).is_err() {
        BAD.store(1, SeqCst);
    }
    DONE.fetch_or(1 << i, SeqCst);
}

/// Errors, timeouts, then three waiters woken by bitset and by count.
pub fn wait_wake(_: &Context) -> TestResult {
    expect_errno("FUTEX_WAIT on a changed word", th::futex_wait(&WORD, 1, None), Errno::EAGAIN)?;
    let start = time::counter();
    expect_errno("FUTEX_WAIT 20 ms", th::futex_wait(&WORD, 0, Some(&ms(20))), Errno::ETIMEDOUT)?;
    let elapsed_ms = (time::counter() - start) * 1000 / time::counter_frequency();
    ensure!(elapsed_ms >= 20, "a 20 ms FUTEX_WAIT returned after {elapsed_ms} ms");
    let now = time::clock_gettime(CLOCK_MONOTONIC).ctx("clock_gettime")?;
    let deadline = Timespec::from_nanos(now.as_nanos() + 10_000_000);
    let absolute = futex(&WORD, th::FUTEX_WAIT_BITSET | PRIVATE, 0, &deadline as *const Timespec as usize, 0, !0);
    expect_errno("FUTEX_WAIT_BITSET to an absolute deadline", absolute, Errno::ETIMEDOUT)?;
    let bad_time = Timespec { tv_sec: 0, tv_nsec: 1_000_000_000 };
    let bad = futex(&WORD, th::FUTEX_WAIT | PRIVATE, 0, &bad_time as *const Timespec as usize, 0, 0);
    expect_errno("FUTEX_WAIT with tv_nsec of a second", bad, Errno::EINVAL)?;
    expect_errno(
        "a misaligned word",
        futex((addr(&WORD) + 1) as *const AtomicU32, PRIVATE, 0, 0, 0, 0),
        Errno::EINVAL,
    )?;
    expect_errno("WAIT_BITSET of no bit", futex(&WORD, th::FUTEX_WAIT_BITSET, 0, 0, 0, 0), Errno::EINVAL)?;
    expect_errno("WAKE_BITSET of no bit", futex(&WORD, th::FUTEX_WAKE_BITSET, 1, 0, 0, 0), Errno::EINVAL)?;
    let realtime = futex(&WORD, th::FUTEX_WAIT | th::FUTEX_CLOCK_REALTIME, 1, 0, 0, 0);
    expect_errno("FUTEX_WAIT with FUTEX_CLOCK_REALTIME", realtime, Errno::ENOSYS)?;
    expect_errno("FUTEX_FD", futex(&WORD, 2, 0, 0, 0, 0), Errno::ENOSYS)?;
    expect_errno("an unknown command", futex(&WORD, 14, 0, 0, 0, 0), Errno::ENOSYS)?;
    ensure!(futex_wake(&WORD, 1) == Ok(0), "a wake with no waiter woke someone");

    let threads = [spawn_thread(wait_bitset, 0), spawn_thread(wait_bitset, 1), spawn_thread(wait_bitset, 2)];
    let threads: alloc::vec::Vec<Thread> = threads.into_iter().collect::<Result<_, _>>().ctx("clone")?;
    waiters_reach(&WORD, 3)?;
    // A shared wake of private memory has a key of its own (Linux's
    // FUT_OFF_MMSHARED): it does not meet private waiters.
    ensure!(futex(&WORD, th::FUTEX_WAKE, 10, 0, 0, 0) == Ok(0), "a shared wake woke private waiters");
    let woken = futex(&WORD, th::FUTEX_WAKE_BITSET | PRIVATE, 10, 0, 0, 0b010);
    ensure!(woken == Ok(1), "WAKE_BITSET of bit 1 woke {woken:?}, not the one thread waiting for it");
    wait_until("thread 1 returns", || DONE.load(SeqCst) == 0b010)?;
    ensure!(futex_waiters(&WORD) == Ok(2), "two threads should still wait");
    ensure!(futex_wake(&WORD, 10) == Ok(2), "FUTEX_WAKE did not wake the other two");
    join_all(threads)?;
    ensure!(DONE.load(SeqCst) == 0b111 && BAD.load(SeqCst) == 0, "a waiter returned an error");
    Ok(())
}

/// `FUTEX_REQUEUE` and `FUTEX_CMP_REQUEUE`: counts, EAGAIN, EINVAL.
pub fn requeue(_: &Context) -> TestResult {
    let threads: alloc::vec::Vec<Thread> =
        (0..3).map(|i| spawn_thread(wait_word, i)).collect::<Result<_, _>>().ctx("clone")?;
    waiters_reach(&WORD, 3)?;
    let w2 = addr(&WORD2);
    expect_errno(
        "CMP_REQUEUE of a changed word",
        futex(&WORD, th::FUTEX_CMP_REQUEUE | PRIVATE, 1, 10, w2, 1),
        Errno::EAGAIN,
    )?;
    expect_errno(
        "REQUEUE of -1 waiters",
        futex(&WORD, th::FUTEX_REQUEUE | PRIVATE, 0, u32::MAX as usize, w2, 0),
        Errno::EINVAL,
    )?;
    expect_errno("REQUEUE waking -1", futex(&WORD, th::FUTEX_REQUEUE | PRIVATE, u32::MAX, 1, w2, 0), Errno::EINVAL)?;
    ensure!(DONE.load(SeqCst) == 0, "a failed requeue woke someone");
    let moved = futex(&WORD, th::FUTEX_CMP_REQUEUE | PRIVATE, 1, 1, w2, 0);
    ensure!(moved == Ok(2), "CMP_REQUEUE(wake 1, requeue 1) returned {moved:?}, not 2");
    wait_until("one waiter returns", || DONE.load(SeqCst).count_ones() == 1)?;
    ensure!(futex_waiters(&WORD) == Ok(1) && futex_waiters(&WORD2) == Ok(1), "one waiter should be on each word");
    let moved = futex(&WORD, th::FUTEX_REQUEUE | PRIVATE, 0, 5, w2, 0);
    ensure!(moved == Ok(1), "REQUEUE of the last waiter returned {moved:?}");
    ensure!(futex_wake(&WORD, 10) == Ok(0), "a requeued waiter was still on the first word");
    ensure!(futex_wake(&WORD2, 10) == Ok(2), "the requeued waiters were not on the second word");
    join_all(threads)?;
    ensure!(DONE.load(SeqCst) == 0b111 && BAD.load(SeqCst) == 0, "a waiter returned an error");
    Ok(())
}

/// `FUTEX_WAKE_OP`: the operation on the second word, the comparison of
/// its old value, the counts, and its errors.
pub fn wake_op(_: &Context) -> TestResult {
    WORD2.store(5, SeqCst);
    let mut threads = alloc::vec::Vec::new();
    for i in 0..2 {
        threads.push(spawn_thread(wait_word, i).ctx("clone")?);
        threads.push(spawn_thread(wait_word2, i + 2).ctx("clone")?);
    }
    waiters_reach(&WORD, 2)?;
    waiters_reach(&WORD2, 2)?;
    let w2 = addr(&WORD2);
    let add3_if_5 = futex_op(1, 3, 0, 5);
    let woken = futex(&WORD, th::FUTEX_WAKE_OP | PRIVATE, 1, 1, w2, add3_if_5);
    ensure!(woken == Ok(2), "WAKE_OP(+3, old == 5) woke {woken:?}, not one of each");
    ensure!(WORD2.load(SeqCst) == 8, "WAKE_OP did not add 3: {}", WORD2.load(SeqCst));
    let woken = futex(&WORD, th::FUTEX_WAKE_OP | PRIVATE, 1, 1, w2, futex_op(0, 0, 0, 5));
    ensure!(woken == Ok(1), "WAKE_OP(set 0, old == 5) with old 8 woke {woken:?}, not only the first word's");
    ensure!(WORD2.load(SeqCst) == 0, "WAKE_OP did not set 0");
    expect_errno(
        "an unknown WAKE_OP operation",
        futex(&WORD, th::FUTEX_WAKE_OP | PRIVATE, 1, 1, w2, futex_op(7, 1, 0, 0)),
        Errno::ENOSYS,
    )?;
    ensure!(WORD2.load(SeqCst) == 0, "an unknown operation changed the word");
    let bad_cmp = futex(&WORD, th::FUTEX_WAKE_OP | PRIVATE, 1, 1, w2, futex_op(0, 9, 6, 0));
    expect_errno("an unknown WAKE_OP comparison", bad_cmp, Errno::ENOSYS)?;
    ensure!(WORD2.load(SeqCst) == 9, "Linux stores before it finds the comparison unknown");
    expect_errno(
        "WAKE_OP on an unmapped word",
        futex(&WORD, th::FUTEX_WAKE_OP | PRIVATE, 1, 1, 8, futex_op(1, 1, 0, 0)),
        Errno::EFAULT,
    )?;
    ensure!(futex_wake(&WORD2, 10) == Ok(1), "the last waiter of the second word was not there");
    join_all(threads)?;
    ensure!(DONE.load(SeqCst) == 0b1111 && BAD.load(SeqCst) == 0, "a waiter returned an error");
    Ok(())
}

/// A FUTEX_WAIT between processes on shared anonymous memory: the shared
/// key meets across fork, a private wake of the other space does not.
pub fn shared_across_fork(_: &Context) -> TestResult {
    let sh = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::SHARED)?;
    // SAFETY: the region is mapped, aligned and used only atomically.
    let word = unsafe { &*(sh.addr as *const AtomicU32) };
    let pid = spawn(|| {
        let r = futex(word, th::FUTEX_WAIT, 0, 0, 0, 0);
        ensure!(r == Ok(0), "the shared wait returned {r:?}");
        Ok(())
    })?;
    // The child's wait cannot be counted from here (a requeue is of this
    // process's key only if private): wake until the shared wake finds it.
    let mut woken = 0;
    for _ in 0..5000 {
        ensure!(futex(word, th::FUTEX_WAKE | PRIVATE, 1, 0, 0, 0) == Ok(0), "a private wake crossed processes");
        woken = futex(word, th::FUTEX_WAKE, 1, 0, 0, 0).ctx("FUTEX_WAKE")?;
        if woken == 1 {
            break;
        }
        time::sleep_ms(1).ctx("nanosleep")?;
    }
    ensure!(woken == 1, "the child's shared wait was never woken");
    join(pid, "waiting child")
}

fn lock_pi(word: &AtomicU32, timeout: usize) -> Result<usize, Errno> {
    futex(word, th::FUTEX_LOCK_PI | PRIVATE, 0, timeout, 0, 0)
}

fn unlock_pi(word: &AtomicU32) -> Result<usize, Errno> {
    futex(word, th::FUTEX_UNLOCK_PI | PRIVATE, 0, 0, 0, 0)
}

fn trylock_pi(word: &AtomicU32) -> Result<usize, Errno> {
    futex(word, th::FUTEX_TRYLOCK_PI | PRIVATE, 0, 0, 0, 0)
}

/// Thread: takes the PI lock WORD, says so in DONE, holds it until WORD2
/// is set, unlocks.
extern "C" fn hold_pi(_: usize) {
    if lock_pi(&WORD, 0).is_err() {
        BAD.store(1, SeqCst);
    }
    DONE.store(1, SeqCst);
    while WORD2.load(SeqCst) == 0 {
        let _ = futex(&WORD2, th::FUTEX_WAIT | PRIVATE, 0, 0, 0, 0);
    }
    if unlock_pi(&WORD).is_err() {
        BAD.store(2, SeqCst);
    }
}

/// The PI word protocol: lock, EDEADLK, EPERM, ESRCH, trylock, a timeout,
/// and a handoff from another thread.
pub fn pi_lock(_: &Context) -> TestResult {
    let me = th::gettid() as u32;
    ensure!(lock_pi(&WORD, 0) == Ok(0), "LOCK_PI of a free word failed");
    ensure!(WORD.load(SeqCst) == me, "LOCK_PI did not store the tid: {:#x}", WORD.load(SeqCst));
    expect_errno("LOCK_PI of a lock held", lock_pi(&WORD, 0), Errno::EDEADLK)?;
    expect_errno("TRYLOCK_PI of a lock held", trylock_pi(&WORD), Errno::EDEADLK)?;
    ensure!(unlock_pi(&WORD) == Ok(0) && WORD.load(SeqCst) == 0, "UNLOCK_PI did not clear the word");
    expect_errno("UNLOCK_PI of a free word", unlock_pi(&WORD), Errno::EPERM)?;
    ensure!(trylock_pi(&WORD) == Ok(0) && WORD.load(SeqCst) == me, "TRYLOCK_PI of a free word failed");
    unlock_pi(&WORD).ctx("UNLOCK_PI")?;
    // An owner that does not exist.
    WORD.store(0x3fff_fff0, SeqCst);
    expect_errno("LOCK_PI of a dead owner's word", lock_pi(&WORD, 0), Errno::ESRCH)?;
    expect_errno("UNLOCK_PI of another's word", unlock_pi(&WORD), Errno::EPERM)?;
    WORD.store(th::FUTEX_OWNER_DIED, SeqCst);
    ensure!(lock_pi(&WORD, 0) == Ok(0), "LOCK_PI of an owner-died word failed");
    ensure!(WORD.load(SeqCst) == th::FUTEX_OWNER_DIED | me, "LOCK_PI must keep FUTEX_OWNER_DIED");
    unlock_pi(&WORD).ctx("UNLOCK_PI")?;

    let holder = spawn_thread(hold_pi, 0).ctx("clone")?;
    wait_until("the other thread holds the lock", || DONE.load(SeqCst) == 1)?;
    let other = holder.tid() as u32;
    ensure!(WORD.load(SeqCst) == other, "the holder's tid is not in the word");
    expect_errno("TRYLOCK_PI of a lock another holds", trylock_pi(&WORD), Errno::EAGAIN)?;
    // LOCK_PI's deadline is on CLOCK_REALTIME: one in 1970 has passed.
    let past = Timespec { tv_sec: 1, tv_nsec: 0 };
    let timed = lock_pi(&WORD, &past as *const Timespec as usize);
    expect_errno("LOCK_PI with a deadline passed", timed, Errno::ETIMEDOUT)?;
    ensure!(WORD.load(SeqCst) == th::FUTEX_WAITERS | other, "a waiter must set FUTEX_WAITERS");
    WORD2.store(1, SeqCst);
    futex_wake(&WORD2, 1).ctx("FUTEX_WAKE")?;
    ensure!(lock_pi(&WORD, 0) == Ok(0), "LOCK_PI behind the holder failed");
    let word = WORD.load(SeqCst);
    ensure!(word & th::FUTEX_TID_MASK == me, "the lock was not handed over: {word:#x}");
    unlock_pi(&WORD).ctx("UNLOCK_PI")?;
    ensure!(WORD.load(SeqCst) == 0, "the last unlock must leave 0");
    holder.join().ctx("join")?;
    ensure!(BAD.load(SeqCst) == 0, "the holder's lock or unlock failed ({})", BAD.load(SeqCst));
    Ok(())
}

/// When each thread of the boost test finished (a sequence number).
static ORDER: AtomicU32 = AtomicU32::new(0);
static LOW_DONE: AtomicU32 = AtomicU32::new(0);
static MEDIUM_DONE: AtomicU32 = AtomicU32::new(0);
static HIGH_DONE: AtomicU32 = AtomicU32::new(0);
/// The counter value until which the medium thread spins.
static SPIN_UNTIL: AtomicU64 = AtomicU64::new(0);
/// Set once every thread of a priority-inheritance test is in place: the
/// owner's timed work starts only then.
static CHAIN_COMPLETE: AtomicBool = AtomicBool::new(false);

fn spin_until(counter: u64) {
    while time::counter() < counter {
        core::hint::spin_loop();
    }
}

/// SCHED_FIFO 10: takes the lock, works 20 ms, unlocks.
extern "C" fn low(_: usize) {
    if th::sched_setscheduler(0, th::SCHED_FIFO, 10).is_err() || lock_pi(&WORD, 0).is_err() {
        BAD.store(1, SeqCst);
    }
    DONE.store(1, SeqCst);
    // Its 20 ms of work start once the waiter is about to come, however
    // slowly the machine got there (QEMU's counter follows the host's clock).
    while !CHAIN_COMPLETE.load(SeqCst) {
        core::hint::spin_loop();
    }
    spin_until(time::counter() + time::counter_frequency() / 50);
    LOW_DONE.store(ORDER.fetch_add(1, SeqCst) + 1, SeqCst);
    if unlock_pi(&WORD).is_err() {
        BAD.store(2, SeqCst);
    }
}

/// SCHED_FIFO 20: says it runs (DONE bit 2), spins without the lock until
/// SPIN_UNTIL.
extern "C" fn medium(_: usize) {
    if th::sched_setscheduler(0, th::SCHED_FIFO, 20).is_err() {
        BAD.store(3, SeqCst);
    }
    DONE.fetch_or(4, SeqCst);
    spin_until(SPIN_UNTIL.load(SeqCst));
    MEDIUM_DONE.store(ORDER.fetch_add(1, SeqCst) + 1, SeqCst);
}

/// SCHED_FIFO 30: takes the lock.
extern "C" fn high(_: usize) {
    if th::sched_setscheduler(0, th::SCHED_FIFO, 30).is_err() || lock_pi(&WORD, 0).is_err() {
        BAD.store(4, SeqCst);
    }
    HIGH_DONE.store(ORDER.fetch_add(1, SeqCst) + 1, SeqCst);
    if unlock_pi(&WORD).is_err() {
        BAD.store(5, SeqCst);
    }
}

/// Priority inheritance: a low-priority owner, a medium spinner that would
/// starve it, a high-priority waiter. With the owner boosted, the high
/// thread gets the lock before the spinner finishes. (On one CPU, without
/// inheritance, the spinner's 300 ms would come first; with more CPUs the
/// order holds anyway.) The test thread runs at FIFO 90 to set the scene.
pub fn pi_boost(_: &Context) -> TestResult {
    th::sched_setscheduler(0, th::SCHED_FIFO, 90).ctx("sched_setscheduler(FIFO 90)")?;
    let low = spawn_thread(low, 0).ctx("clone")?;
    wait_until("the low thread holds the lock", || DONE.load(SeqCst) == 1)?;
    SPIN_UNTIL.store(time::counter() + time::counter_frequency() * 3 / 10, SeqCst);
    let medium = spawn_thread(medium, 0).ctx("clone")?;
    wait_until("the medium thread spins", || DONE.load(SeqCst) == 5)?;
    let high = spawn_thread(high, 0).ctx("clone")?;
    // The high thread blocks on the lock as soon as this one waits.
    CHAIN_COMPLETE.store(true, SeqCst);
    join_all([high, medium, low])?;
    ensure!(BAD.load(SeqCst) == 0, "a thread's call failed ({})", BAD.load(SeqCst));
    let (l, m, h) = (LOW_DONE.load(SeqCst), MEDIUM_DONE.load(SeqCst), HIGH_DONE.load(SeqCst));
    ensure!(l < h && h < m, "finish order low {l}, high {h}, medium {m}: the owner was not boosted");
    Ok(())
}

/// The robust list of the thread below: a head and one entry whose lock
/// word follows its `next` pointer.
#[repr(C)]
struct Robust {
    head_next: AtomicU64,
    futex_offset: AtomicU64,
    pending: AtomicU64,
    entry_next: AtomicU64,
    lock: AtomicU32,
}

static ROBUST: Robust = Robust {
    head_next: AtomicU64::new(0),
    futex_offset: AtomicU64::new(8),
    pending: AtomicU64::new(0),
    entry_next: AtomicU64::new(0),
    lock: AtomicU32::new(0),
};

/// Thread: takes the robust lock (its tid in the word), registers its
/// list, and ends without unlocking once a waiter has come.
extern "C" fn die_holding(_: usize) {
    let head = &ROBUST.head_next as *const AtomicU64 as u64;
    let entry = &ROBUST.entry_next as *const AtomicU64 as u64;
    ROBUST.head_next.store(entry, SeqCst);
    ROBUST.entry_next.store(head, SeqCst);
    ROBUST.lock.store(th::gettid() as u32, SeqCst);
    // SAFETY: the kernel only records the head.
    let r = unsafe { aspen_sys::raw::syscall2(aspen_sys::raw::Sysno::SetRobustList.number(), head as usize, 24) };
    if r != 0 {
        BAD.store(1, SeqCst);
    }
    DONE.store(1, SeqCst);
    while ROBUST.lock.load(SeqCst) & th::FUTEX_WAITERS == 0 {
        let _ = aspen_sys::process::sched_yield();
    }
}

/// Robust lists: set/get_robust_list and their errors; a thread that ends
/// holding a robust lock leaves FUTEX_OWNER_DIED and wakes its waiter.
pub fn robust_list(_: &Context) -> TestResult {
    use aspen_sys::raw::{syscall2, syscall3, Sysno};
    let mut head = 0u64;
    let mut len = 0u64;
    let get = |pid: usize, head: &mut u64, len: &mut u64| {
        // SAFETY: the kernel writes one u64 to each.
        Errno::result(unsafe {
            syscall3(Sysno::GetRobustList.number(), pid, head as *mut u64 as usize, len as *mut u64 as usize)
        })
    };
    // SAFETY: the kernel only checks the length.
    let bad_len = Errno::result(unsafe { syscall2(Sysno::SetRobustList.number(), 0x1000, 16) });
    expect_errno("set_robust_list of 16 bytes", bad_len, Errno::EINVAL)?;
    let theirs = get(i32::MAX as usize, &mut head, &mut len);
    expect_errno("get_robust_list of no thread", theirs, Errno::ESRCH)?;
    // SAFETY: an unused head: the list is empty when walked... it is only read.
    let set = Errno::result(unsafe { syscall2(Sysno::SetRobustList.number(), 0x1000, 24) });
    ensure!(set == Ok(0), "set_robust_list: {set:?}");
    get(0, &mut head, &mut len).ctx("get_robust_list")?;
    ensure!(head == 0x1000 && len == 24, "get_robust_list gave {head:#x}, {len}");
    // SAFETY: back to no list.
    unsafe { syscall2(Sysno::SetRobustList.number(), 0, 24) };

    let thread = spawn_thread(die_holding, 0).ctx("clone")?;
    wait_until("the thread holds the lock", || DONE.load(SeqCst) == 1)?;
    let tid = thread.tid() as u32;
    get(tid as usize, &mut head, &mut len).ctx("get_robust_list of the thread")?;
    ensure!(head == &ROBUST.head_next as *const AtomicU64 as u64, "the thread's list head is {head:#x}");
    ROBUST.lock.store(tid | th::FUTEX_WAITERS, SeqCst);
    // Shared: the kernel wakes a dead owner's waiter with a shared wake.
    let timeout = ms(5000);
    let r = futex(&ROBUST.lock, th::FUTEX_WAIT, tid | th::FUTEX_WAITERS, &timeout as *const Timespec as usize, 0, 0);
    ensure!(r.is_ok() || r == Err(Errno::EAGAIN), "the wait for the dead owner returned {r:?}");
    thread.join().ctx("join")?;
    let word = ROBUST.lock.load(SeqCst);
    ensure!(word == th::FUTEX_OWNER_DIED | th::FUTEX_WAITERS, "the word after the owner died: {word:#x}");
    ensure!(BAD.load(SeqCst) == 0, "set_robust_list failed in the thread");
    Ok(())
}

/// The shared word of the test below.
static SHARED_WORD: AtomicU64 = AtomicU64::new(0);

/// Thread: waits on the shared word (address in SHARED_WORD) for good.
extern "C" fn wait_shared_forever(_: usize) {
    // SAFETY: the address of a mapped, aligned word of shared memory.
    let word = unsafe { &*(SHARED_WORD.load(SeqCst) as *const AtomicU32) };
    DONE.fetch_or(1, SeqCst);
    loop {
        let _ = futex(word, th::FUTEX_WAIT, 0, 0, 0, 0);
    }
}

/// Thread: waits for the PI lock WORD, which the test thread holds.
extern "C" fn wait_pi_forever(_: usize) {
    DONE.fetch_or(2, SeqCst);
    let _ = lock_pi(&WORD, 0);
    BAD.store(1, SeqCst);
}

/// Threads blocked in futex waits (a shared word, a PI lock) end with
/// their process's exit_group, and leave nothing queued: a wake of the
/// shared word afterwards finds no waiter.
pub fn waiters_end_with_their_process(_: &Context) -> TestResult {
    let sh = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::SHARED)?;
    // SAFETY: the region is mapped, aligned and used only atomically.
    let word = unsafe { &*(sh.addr as *const AtomicU32) };
    SHARED_WORD.store(sh.addr as u64, SeqCst);
    let pid = spawn(|| {
        ensure!(lock_pi(&WORD, 0) == Ok(0), "LOCK_PI of a free word failed");
        let _shared = spawn_thread(wait_shared_forever, 0).ctx("clone")?;
        let _pi = spawn_thread(wait_pi_forever, 0).ctx("clone")?;
        wait_until("both threads wait", || DONE.load(SeqCst) == 3 && WORD.load(SeqCst) & th::FUTEX_WAITERS != 0)?;
        wait_until("the shared waiter is queued", || {
            futex(word, th::FUTEX_REQUEUE, 0, i32::MAX as usize, sh.addr, 0) == Ok(1)
        })?;
        time::sleep_ms(20).ctx("nanosleep")?;
        aspen_sys::process::exit_group(0)
    })?;
    join(pid, "the process with blocked threads")?;
    ensure!(futex(word, th::FUTEX_WAKE, 10, 0, 0, 0) == Ok(0), "a waiter of an ended process was still queued");
    Ok(())
}

/// The second lock of the chain test.
static LOCK2: AtomicU32 = AtomicU32::new(0);
static CHAIN_A_DONE: AtomicU32 = AtomicU32::new(0);
static CHAIN_B_DONE: AtomicU32 = AtomicU32::new(0);
static CHAIN_C_DONE: AtomicU32 = AtomicU32::new(0);

/// Chain A, SCHED_FIFO 10: holds WORD, works 20 ms, unlocks.
extern "C" fn chain_a(_: usize) {
    if th::sched_setscheduler(0, th::SCHED_FIFO, 10).is_err() || lock_pi(&WORD, 0).is_err() {
        BAD.store(1, SeqCst);
    }
    DONE.fetch_or(1, SeqCst);
    // Its 20 ms of work start once the whole chain is in place, however
    // slowly the machine got there (QEMU's counter follows the host's clock).
    while !CHAIN_COMPLETE.load(SeqCst) {
        core::hint::spin_loop();
    }
    spin_until(time::counter() + time::counter_frequency() / 50);
    CHAIN_A_DONE.store(ORDER.fetch_add(1, SeqCst) + 1, SeqCst);
    if unlock_pi(&WORD).is_err() {
        BAD.store(2, SeqCst);
    }
}

/// Chain B, SCHED_FIFO 15: holds LOCK2, then waits for WORD.
extern "C" fn chain_b(_: usize) {
    if th::sched_setscheduler(0, th::SCHED_FIFO, 15).is_err() || lock_pi(&LOCK2, 0).is_err() {
        BAD.store(8, SeqCst);
    }
    DONE.fetch_or(2, SeqCst);
    if lock_pi(&WORD, 0).is_err() || unlock_pi(&WORD).is_err() {
        BAD.store(9, SeqCst);
    }
    CHAIN_B_DONE.store(ORDER.fetch_add(1, SeqCst) + 1, SeqCst);
    if unlock_pi(&LOCK2).is_err() {
        BAD.store(10, SeqCst);
    }
}

/// Chain C, SCHED_FIFO 30: waits for LOCK2.
extern "C" fn chain_c(_: usize) {
    if th::sched_setscheduler(0, th::SCHED_FIFO, 30).is_err() || lock_pi(&LOCK2, 0).is_err() {
        BAD.store(6, SeqCst);
    }
    CHAIN_C_DONE.store(ORDER.fetch_add(1, SeqCst) + 1, SeqCst);
    if unlock_pi(&LOCK2).is_err() {
        BAD.store(7, SeqCst);
    }
}

/// Priority inheritance along a chain: C (30) waits for B's lock, B (15)
/// for A's (10), and a spinner at 20 would starve A; C's priority reaches
/// A through B, so A, then B, then C finish before the spinner.
pub fn pi_chain(_: &Context) -> TestResult {
    th::sched_setscheduler(0, th::SCHED_FIFO, 90).ctx("sched_setscheduler(FIFO 90)")?;
    let a = spawn_thread(chain_a, 0).ctx("clone")?;
    wait_until("A holds its lock", || DONE.load(SeqCst) == 1)?;
    let b = spawn_thread(chain_b, 0).ctx("clone")?;
    wait_until("B waits for A's lock", || DONE.load(SeqCst) == 3 && WORD.load(SeqCst) & th::FUTEX_WAITERS != 0)?;
    SPIN_UNTIL.store(time::counter() + time::counter_frequency() * 3 / 10, SeqCst);
    let spinner = spawn_thread(medium, 0).ctx("clone")?;
    wait_until("the spinner spins", || DONE.load(SeqCst) & 4 != 0)?;
    let c = spawn_thread(chain_c, 0).ctx("clone")?;
    // C blocks on B's lock as soon as this thread waits; from then on only
    // the boost C lends A through B lets A run before the spinner ends.
    CHAIN_COMPLETE.store(true, SeqCst);
    join_all([c, spinner, b, a])?;
    ensure!(BAD.load(SeqCst) == 0, "a thread's call failed ({})", BAD.load(SeqCst));
    let order = [CHAIN_A_DONE.load(SeqCst), CHAIN_B_DONE.load(SeqCst), CHAIN_C_DONE.load(SeqCst)];
    let m = MEDIUM_DONE.load(SeqCst);
    ensure!(order == [1, 2, 3] && m == 4, "finish order A, B, C {order:?}, spinner {m}: the chain was not boosted");
    Ok(())
}
