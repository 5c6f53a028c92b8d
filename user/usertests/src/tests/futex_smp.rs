//! The kernel's read-modify-writes of futex words are atomic against user
//! code running on other cores at the same time: `FUTEX_WAKE_OP`'s
//! operation on a counter that threads on the other cores increment with
//! atomics loses no increment, and a PI lock taken and released the way C
//! libraries do (a compare-and-swap in user space, the kernel only when
//! contended) by threads on two cores keeps its word and its exclusion.
//!
//! The same compare-and-swap resolves faults as a user store would.
//!
//! Thread bodies use neither the heap nor stdout (see `aspen_sys::thread`):
//! they report through the atomics here.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use aspen_sys::mem::{self, MapFlags, Prot};
use aspen_sys::thread::{self as th, futex, futex_op, gettid, spawn_thread, Thread};
use aspen_sys::time::{clock_gettime, ClockId, Timespec, CLOCK_MONOTONIC};
use aspen_sys::Errno;

use super::smp::{cores_of, online_cores, pin, MAX_CORES};
use crate::ensure;
use crate::harness::{expect_errno, join, spawn, Context, Ctx, Region, TestResult};

const PRIVATE: u32 = th::FUTEX_PRIVATE_FLAG;

fn join_all(threads: impl IntoIterator<Item = Thread>) -> TestResult {
    for thread in threads {
        thread.join().ctx("join")?;
    }
    Ok(())
}

/// `FUTEX_WAKE_OP` calls the counter test makes.
const WAKE_OPS: u32 = 4000;

/// The word `FUTEX_WAKE_OP` adds to while the other cores increment it.
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// The word `FUTEX_WAKE_OP` wakes (nobody waits on it).
static NOBODY: AtomicU32 = AtomicU32::new(0);
/// The incrementers run until this is set.
static STOP: AtomicBool = AtomicBool::new(false);
/// Per core: the increments its thread made (`u64::MAX`: it could not pin
/// itself there).
static INCREMENTS: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
/// How many incrementers have started counting.
static COUNTING: AtomicUsize = AtomicUsize::new(0);

/// Pins itself to core `n`, then increments `COUNTER` with atomics
/// (counting them) until told to stop.
extern "C" fn incrementer(n: usize) {
    if pin(1 << n).is_err() {
        INCREMENTS[n].store(u64::MAX, SeqCst);
        COUNTING.fetch_add(1, SeqCst);
        return;
    }
    COUNTING.fetch_add(1, SeqCst);
    let mut made = 0;
    while !STOP.load(SeqCst) {
        COUNTER.fetch_add(1, SeqCst);
        made += 1;
    }
    INCREMENTS[n].store(made, SeqCst);
}

/// `FUTEX_WAKE_OP` with `FUTEX_OP_ADD` on a counter that threads on every
/// other core increment with atomics all the while: the final count is
/// every increment and every addition (a read of the word and a separate
/// store would lose the increments made in between).
pub fn wake_op_add_across_cores(_: &Context) -> TestResult {
    let online = online_cores()?;
    ensure!(online.count_ones() >= 2, "this test wants several cores; online {online:#x}");
    let mine = cores_of(online).next().ok_or("no core")?;
    pin(1 << mine).ctx("sched_setaffinity")?;
    COUNTER.store(0, SeqCst);
    STOP.store(false, SeqCst);
    COUNTING.store(0, SeqCst);
    let others: alloc::vec::Vec<usize> = cores_of(online).filter(|&n| n != mine).collect();
    let mut threads = alloc::vec::Vec::new();
    for &n in &others {
        INCREMENTS[n].store(0, SeqCst);
        threads.push(spawn_thread(incrementer, n).ctx("clone")?);
    }
    while COUNTING.load(SeqCst) < others.len() {
        core::hint::spin_loop();
    }
    let add_one = futex_op(1, 1, 0, 0);
    let mut failed = None;
    for _ in 0..WAKE_OPS {
        if let Err(e) =
            futex(&NOBODY, th::FUTEX_WAKE_OP | PRIVATE, 1, 1, &COUNTER as *const AtomicU32 as usize, add_one)
        {
            failed = Some(e);
            break;
        }
    }
    STOP.store(true, SeqCst);
    join_all(threads)?;
    pin(online).ctx("sched_setaffinity back to every core")?;
    ensure!(failed.is_none(), "FUTEX_WAKE_OP failed: {failed:?}");
    let mut increments = 0u64;
    for &n in &others {
        let made = INCREMENTS[n].load(SeqCst);
        ensure!(made != u64::MAX, "the incrementer could not pin itself to core {n}");
        increments += made;
    }
    let expected = (increments + u64::from(WAKE_OPS)) as u32;
    let counted = COUNTER.load(SeqCst);
    ensure!(
        counted == expected,
        "{increments} atomic increments and {WAKE_OPS} FUTEX_OP_ADDs left {counted}, not {expected} ({} lost)",
        expected.wrapping_sub(counted)
    );
    Ok(())
}

/// How long the kernel locker goes on (the race is between a few kernel
/// instructions and user code on another core: under an emulator, whose
/// cores share few host cores, it is hit only now and then).
const PI_RACE_NANOS: u64 = 1_500_000_000;
/// Of the kernel locker's rounds, one in this many waits (`FUTEX_LOCK_PI`);
/// the others try (`FUTEX_TRYLOCK_PI`) until they get the lock.
const PI_WAITING_ROUND: u64 = 4;

/// The PI lock word.
static PI_WORD: AtomicU32 = AtomicU32::new(0);
/// Set inside the critical section.
static INSIDE: AtomicBool = AtomicBool::new(false);
/// Per thread (the user-space locker, the kernel locker): its core.
static PI_CORE: [AtomicUsize; 2] = [const { AtomicUsize::new(0) }; 2];
/// How many threads are pinned and ready: both start together.
static PI_READY: AtomicUsize = AtomicUsize::new(0);
/// Set when the kernel locker has made its rounds.
static PI_DONE: AtomicBool = AtomicBool::new(false);
/// When the kernel locker stops (`CLOCK_MONOTONIC`, nanoseconds).
static PI_UNTIL: AtomicU64 = AtomicU64::new(0);
/// The kernel locker's rounds, and its `FUTEX_TRYLOCK_PI` calls.
static PI_KERNEL_ROUNDS: AtomicU64 = AtomicU64::new(0);
static PI_TRYLOCKS: AtomicU64 = AtomicU64::new(0);
/// What went wrong first (0: nothing): 1 could not pin, 2 two threads
/// inside at once, 3 a LOCK_PI error, 4 an UNLOCK_PI error (its errno in
/// `PI_ERRNO`, the thread in `PI_WHO`).
static PI_BAD: AtomicU32 = AtomicU32::new(0);
static PI_ERRNO: AtomicU32 = AtomicU32::new(0);
static PI_WHO: AtomicUsize = AtomicUsize::new(0);
/// The rounds the user-space locker made, and how many of its locks went
/// to the kernel.
static PI_USER_ROUNDS: AtomicU64 = AtomicU64::new(0);
static PI_USER_CONTENDED: AtomicU64 = AtomicU64::new(0);
/// The absolute `CLOCK_REALTIME` deadline of every `FUTEX_LOCK_PI` (a lost
/// hand-off ends in `ETIMEDOUT`, not a hang): seconds, nanoseconds.
static PI_DEADLINE: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

fn pi_fail(who: usize, what: u32, errno: Option<Errno>) {
    if PI_BAD.compare_exchange(0, what, SeqCst, SeqCst).is_ok() {
        PI_ERRNO.store(errno.map_or(0, |e| e.as_i32() as u32), SeqCst);
        PI_WHO.store(who, SeqCst);
    }
}

fn lock_pi() -> Result<usize, Errno> {
    let deadline = Timespec { tv_sec: PI_DEADLINE[0].load(SeqCst) as i64, tv_nsec: PI_DEADLINE[1].load(SeqCst) as i64 };
    futex(&PI_WORD, th::FUTEX_LOCK_PI | PRIVATE, 0, &deadline as *const Timespec as usize, 0, 0)
}

/// `FUTEX_TRYLOCK_PI` until it takes the lock.
fn trylock_pi() -> Result<(), Errno> {
    loop {
        PI_TRYLOCKS.fetch_add(1, SeqCst);
        match futex(&PI_WORD, th::FUTEX_TRYLOCK_PI | PRIVATE, 0, 0, 0, 0) {
            Err(Errno::EAGAIN) => continue,
            r => return r.map(drop),
        }
    }
}

fn monotonic_nanos() -> u64 {
    clock_gettime(CLOCK_MONOTONIC).map_or(u64::MAX, |t| t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64)
}

fn unlock_pi() -> Result<usize, Errno> {
    futex(&PI_WORD, th::FUTEX_UNLOCK_PI | PRIVATE, 0, 0, 0, 0)
}

/// Pins thread `who` to its core and waits until the other is ready too.
fn pi_start(who: usize) -> bool {
    let pinned = pin(1 << PI_CORE[who].load(SeqCst));
    PI_READY.fetch_add(1, SeqCst);
    if pinned.is_err() {
        pi_fail(who, 1, None);
        return false;
    }
    while PI_READY.load(SeqCst) < 2 {
        core::hint::spin_loop();
    }
    true
}

/// The critical section: no other thread may be inside.
fn pi_inside(who: usize) {
    if INSIDE.swap(true, SeqCst) {
        pi_fail(who, 2, None);
    }
    INSIDE.store(false, SeqCst);
}

/// Thread 0: takes and releases `PI_WORD` as glibc's PI mutexes do, as
/// fast as it can: a compare-and-swap 0 -> tid to lock, tid -> 0 to
/// unlock, `FUTEX_LOCK_PI`/`FUTEX_UNLOCK_PI` only when that fails.
extern "C" fn pi_user_locker(who: usize) {
    if !pi_start(who) {
        return;
    }
    let tid = gettid() as u32;
    while !PI_DONE.load(SeqCst) && PI_BAD.load(SeqCst) == 0 {
        PI_USER_ROUNDS.fetch_add(1, SeqCst);
        if PI_WORD.compare_exchange(0, tid, SeqCst, SeqCst).is_err() {
            PI_USER_CONTENDED.fetch_add(1, SeqCst);
            if let Err(e) = lock_pi() {
                pi_fail(who, 3, Some(e));
                // EDEADLK: the word names this thread (a kernel store
                // overwrote its unlock): hand it to the waiting thread,
                // so that it ends too.
                if e == Errno::EDEADLK {
                    let _ = unlock_pi();
                }
                return;
            }
        }
        pi_inside(who);
        if PI_WORD.compare_exchange(tid, 0, SeqCst, SeqCst).is_err() {
            if let Err(e) = unlock_pi() {
                pi_fail(who, 4, Some(e));
                return;
            }
        }
    }
}

/// Thread 1: takes and releases `PI_WORD` with the kernel alone
/// (`FUTEX_TRYLOCK_PI` until it gets it, or `FUTEX_LOCK_PI`, then an
/// unconditional `FUTEX_UNLOCK_PI`), so that the kernel's updates of the
/// word race thread 0's compare-and-swaps, until `PI_UNTIL`.
extern "C" fn pi_kernel_locker(who: usize) {
    if pi_start(who) {
        let until = PI_UNTIL.load(SeqCst);
        let mut round = 0u64;
        while PI_BAD.load(SeqCst) == 0 && (!round.is_multiple_of(16) || monotonic_nanos() < until) {
            round += 1;
            PI_KERNEL_ROUNDS.store(round, SeqCst);
            let locked = if round.is_multiple_of(PI_WAITING_ROUND) { lock_pi().map(drop) } else { trylock_pi() };
            if let Err(e) = locked {
                pi_fail(who, 3, Some(e));
                break;
            }
            pi_inside(who);
            if let Err(e) = unlock_pi() {
                pi_fail(who, 4, Some(e));
                break;
            }
        }
    }
    PI_DONE.store(true, SeqCst);
}

/// Two threads on two cores share a PI lock: one locks and unlocks in
/// user space as fast as it can (as C libraries do, the kernel only when
/// contended), the other only through the kernel. The kernel's updates of
/// the word (`FUTEX_WAITERS` set by a waiter, a free lock taken, the
/// hand-off, the release) never overwrite a compare-and-swap made
/// meanwhile on the other core: that would leave a waiter behind an owner
/// that has unlocked (`EDEADLK` when it locks again), two owners, or an
/// unlock of a lock the kernel gave another (`EPERM`).
pub fn pi_lock_across_cores(_: &Context) -> TestResult {
    let online = online_cores()?;
    ensure!(online.count_ones() >= 2, "this test wants several cores; online {online:#x}");
    let mut cores = cores_of(online);
    let first = cores.next().ok_or("no core")?;
    let second = cores.next().ok_or("no second core")?;
    PI_CORE[0].store(first, SeqCst);
    PI_CORE[1].store(second, SeqCst);
    PI_WORD.store(0, SeqCst);
    INSIDE.store(false, SeqCst);
    PI_DONE.store(false, SeqCst);
    PI_BAD.store(0, SeqCst);
    PI_ERRNO.store(0, SeqCst);
    PI_READY.store(0, SeqCst);
    PI_USER_ROUNDS.store(0, SeqCst);
    PI_USER_CONTENDED.store(0, SeqCst);
    PI_KERNEL_ROUNDS.store(0, SeqCst);
    PI_TRYLOCKS.store(0, SeqCst);
    PI_UNTIL.store(monotonic_nanos() + PI_RACE_NANOS, SeqCst);
    let now = clock_gettime(ClockId::Realtime as i32).ctx("clock_gettime")?;
    PI_DEADLINE[0].store(now.tv_sec as u64 + 30, SeqCst);
    PI_DEADLINE[1].store(now.tv_nsec as u64, SeqCst);
    let threads = [spawn_thread(pi_user_locker, 0).ctx("clone")?, spawn_thread(pi_kernel_locker, 1).ctx("clone")?];
    join_all(threads)?;
    let (bad, errno, who) = (PI_BAD.load(SeqCst), PI_ERRNO.load(SeqCst), PI_WHO.load(SeqCst));
    let (rounds, contended) = (PI_USER_ROUNDS.load(SeqCst), PI_USER_CONTENDED.load(SeqCst));
    let word = PI_WORD.load(SeqCst);
    let thread = ["the user-space locker", "the kernel locker"][who.min(1)];
    let (kernel_rounds, trylocks) = (PI_KERNEL_ROUNDS.load(SeqCst), PI_TRYLOCKS.load(SeqCst));
    let seen = alloc::format!(
        "word {word:#x}; user-space rounds {rounds}, {contended} of them contended; kernel rounds {kernel_rounds}, \
         {trylocks} TRYLOCK_PI calls"
    );
    ensure!(bad != 1, "{thread} could not pin itself to its core");
    ensure!(bad != 2, "two threads held the PI lock at once ({seen})");
    ensure!(bad != 3, "FUTEX_LOCK_PI of {thread} failed with errno {errno} ({seen})");
    ensure!(bad != 4, "FUTEX_UNLOCK_PI of {thread} failed with errno {errno} ({seen})");
    ensure!(word == 0, "the lock was left {word:#x} after every thread unlocked it");
    ensure!(contended > 0 && rounds > contended && kernel_rounds > 0, "the threads never raced ({seen})");
    Ok(())
}

/// The word of `region` at `offset`.
fn word_at(region: &Region, offset: usize) -> &AtomicU32 {
    // SAFETY: the offset is aligned and inside the mapping, which stays
    // mapped for the test (see `Region`); the word is used only atomically.
    unsafe { &*((region.addr + offset) as *const AtomicU32) }
}

/// `FUTEX_WAKE_OP`'s `FUTEX_OP_ADD` of 1 on `word` (waking nobody).
fn add_one(word: &AtomicU32) -> Result<usize, Errno> {
    futex(&NOBODY, th::FUTEX_WAKE_OP | PRIVATE, 1, 1, word as *const AtomicU32 as usize, futex_op(1, 1, 0, 0))
}

/// The kernel's compare-and-swap on a user word resolves faults as a user
/// store would: a page never touched is demand-paged (for writing), a page
/// shared copy-on-write after `fork` is copied for the writer alone; a word
/// the task may not write (`PROT_READ`) or not even read (`PROT_NONE` over
/// data) is `EFAULT`, unchanged.
pub fn rmw_faults(_: &Context) -> TestResult {
    let fresh = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    ensure!(add_one(word_at(&fresh, 64)) == Ok(0), "WAKE_OP on a page never touched failed");
    ensure!(word_at(&fresh, 64).load(SeqCst) == 1, "WAKE_OP on a page never touched did not add");
    let cow = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    word_at(&cow, 0).store(5, SeqCst);
    let child = spawn(|| {
        ensure!(add_one(word_at(&cow, 0)) == Ok(0), "WAKE_OP on a copy-on-write page failed");
        ensure!(word_at(&cow, 0).load(SeqCst) == 6, "WAKE_OP on a copy-on-write page did not add");
        Ok(())
    })?;
    join(child, "the child's WAKE_OP")?;
    ensure!(word_at(&cow, 0).load(SeqCst) == 5, "the child's WAKE_OP changed the parent's copy");

    let read_only = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    word_at(&read_only, 0).store(7, SeqCst);
    // SAFETY: the region is only read below (by the kernel's failing calls
    // and a load).
    unsafe { mem::mprotect(read_only.addr, read_only.len, Prot::READ) }.ctx("mprotect(PROT_READ)")?;
    expect_errno("WAKE_OP on a read-only word", add_one(word_at(&read_only, 0)), Errno::EFAULT)?;
    ensure!(word_at(&read_only, 0).load(SeqCst) == 7, "a failed WAKE_OP changed a read-only word");
    let lock = futex(word_at(&read_only, 8), th::FUTEX_LOCK_PI | PRIVATE, 0, 0, 0, 0);
    expect_errno("LOCK_PI of a free read-only word", lock, Errno::EFAULT)?;
    ensure!(word_at(&read_only, 8).load(SeqCst) == 0, "a failed LOCK_PI changed a read-only word");
    let untouched = Region::anon(1, Prot::READ, MapFlags::PRIVATE)?;
    expect_errno("WAKE_OP on a read-only page never touched", add_one(word_at(&untouched, 0)), Errno::EFAULT)?;

    let none = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    word_at(&none, 0).store(9, SeqCst);
    // SAFETY: the region is not touched by this process while inaccessible.
    unsafe { mem::mprotect(none.addr, none.len, Prot::empty()) }.ctx("mprotect(PROT_NONE)")?;
    expect_errno("WAKE_OP on a PROT_NONE word", add_one(word_at(&none, 0)), Errno::EFAULT)?;
    let lock = futex(word_at(&none, 0), th::FUTEX_TRYLOCK_PI | PRIVATE, 0, 0, 0, 0);
    expect_errno("TRYLOCK_PI of a PROT_NONE word", lock, Errno::EFAULT)?;
    // SAFETY: back to readable and writable, read once below.
    unsafe { mem::mprotect(none.addr, none.len, Prot::READ | Prot::WRITE) }.ctx("mprotect back")?;
    ensure!(word_at(&none, 0).load(SeqCst) == 9, "a failed call changed a PROT_NONE word");
    Ok(())
}
