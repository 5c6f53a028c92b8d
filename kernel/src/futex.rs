//! Futexes (Linux 6.1's `kernel/futex/`): threads waiting on a 32-bit word
//! of user memory until another thread wakes that word, requeues between
//! words, priority-inheriting (PI) locks, and robust lists.
//!
//! **Keys.** A word is named by the address space's [`FutexKey`]: the
//! space and address for a private futex, the memory object and offset for
//! a shared mapping (so processes sharing memory meet on one key). As on
//! Linux, a word of private memory named without `FUTEX_PRIVATE_FLAG` has
//! a key of its own (so `CLONE_CHILD_CLEARTID`'s shared wake meets shared
//! waiters only, as C libraries wait).
//!
//! **Atomicity.** A waiter queues itself after checking the word holds
//! what it expects; the big kernel lock keeps other cores' kernel code out
//! meanwhile, but not their user code. So every read-modify-write of a
//! word (`FUTEX_WAKE_OP`'s operation, the PI protocol, the robust-list walk)
//! is a compare-and-swap loop as Linux's: the word is read, the change
//! decided on that value, and stored only if the word still holds it
//! (`LDXR`/`STLXR`, [`crate::syscall::cmpxchg_user_u32`]); a word another
//! core changed meanwhile is decided on again.
//!
//! **Waiters.** Each queue is ordered as Linux's: real-time waiters by
//! priority, then the others, first come first served. Whoever wakes or
//! requeues a waiter moves its entry, so a waiter that returns (woken,
//! timed out, interrupted because its thread is ending) finds out by
//! looking for it, and removes it itself: no entry outlives its wait, and
//! an entry holds its task, so no other task can be woken by mistake.
//!
//! **Priority inheritance.** A PI futex with waiters has an owner task;
//! the owner runs at the best level of the waiters of all the PI futexes it
//! owns (`sched::set_boost`), passed on along a chain of owners that
//! themselves wait on PI futexes (at most [`MAX_LOCK_DEPTH`] links).
//! `FUTEX_UNLOCK_PI` hands the lock to the best waiter by effective
//! priority; an owner that ends hands its PI futexes on the same way (the
//! new owner fixes the word up itself, as in Linux's `fixup_pi_owner`).
//!
//! **Allocation.** Queueing allocates (a queue, a waiter's entry) inside a
//! preloaded section; nothing else does. A hand-off allocates nothing, by
//! construction, since an ending thread's cannot fail: the owner of a PI
//! futex is a field of its queue (the futexes a task owns are found by
//! looking through the queues), and the grant replaces the waiter's own
//! entry in `waiting_on`, made when it queued.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;

use aspen_abi::futex::{
    self as abi, Death, FutexCommand, FutexOp, PiLock, WakeOp, FUTEX_BITSET_MATCH_ANY, FUTEX_TID_MASK,
};
use aspen_abi::signal::Restart;
use aspen_abi::uaccess::{UserMemory, UserPtr};
use aspen_mm::aspace::FutexKey;
use aspen_mm::errno::Errno;
use aspen_mm::VirtAddr;
use spin::Mutex;

use crate::arch::timer;
use crate::process::thread::{self, Thread};
use crate::task::{sched, Pid, Task};

/// What a queue is for: the word's key, and whether a shared-mode
/// operation named a word of private memory (Linux's `FUT_OFF_MMSHARED`:
/// such a key is not the one `FUTEX_PRIVATE_FLAG` gives the same word, so
/// a private waiter is not woken by a shared wake, as on Linux).
type Key = (FutexKey, bool);

/// Longest chain of PI owners a priority change is passed along (Linux's
/// `max_lock_depth`).
pub const MAX_LOCK_DEPTH: usize = 1024;
/// The queue order of every waiter that is not real-time (Linux's
/// `MAX_RT_PRIO`): they are served in arrival order.
const NORMAL_QUEUE_LEVEL: u8 = 100;

/// A thread waiting on a word.
struct Waiter {
    task: Arc<Task>,
    /// Its thread's id (what a PI handoff writes into the word).
    tid: Pid,
    bitset: u32,
    /// Waiting for a PI lock (`FUTEX_LOCK_PI`).
    pi: bool,
}

impl Waiter {
    /// Its place in the queue: real-time priority first.
    fn queue_level(&self) -> u8 {
        self.task.base_priority().min(NORMAL_QUEUE_LEVEL)
    }
}

/// The owner of a PI futex that has waiters.
struct Owner {
    task: Arc<Task>,
    tid: Pid,
}

/// The waiters of one word.
#[derive(Default)]
struct Queue {
    waiters: VecDeque<Waiter>,
    /// For a PI futex: who holds it.
    owner: Option<Owner>,
}

impl Queue {
    /// The PI waiter to hand the lock to: the best by effective level,
    /// the first among equals.
    fn best_pi_waiter(&self) -> Option<usize> {
        let pi = self.waiters.iter().enumerate().filter(|(_, w)| w.pi);
        pi.min_by_key(|(at, w)| (w.task.priority(), *at)).map(|(at, _)| at)
    }

    /// Inserts `waiter` behind every waiter of its level or better.
    fn insert(&mut self, waiter: Waiter) {
        let level = waiter.queue_level();
        let at = self.waiters.iter().position(|w| w.queue_level() > level).unwrap_or(self.waiters.len());
        self.waiters.insert(at, waiter);
    }
}

/// Where a waiting task stands.
#[derive(Clone, Copy)]
enum Wait {
    /// Queued under this key.
    Queued(Key),
    /// A PI waiter handed its lock, not yet back from its wait: whether it
    /// is to write its id into the word itself (the owner ended).
    Granted { fix_word: bool },
}

/// Every futex with waiters.
struct Futexes {
    queues: BTreeMap<Key, Queue>,
    /// Each waiting task (by task id): where it stands. The entry is made
    /// when it queues and goes when its wait returns (or when it is woken,
    /// but for a PI grant, which rewrites it).
    waiting_on: BTreeMap<Pid, Wait>,
}

static FUTEXES: Mutex<Futexes> = Mutex::new(Futexes { queues: BTreeMap::new(), waiting_on: BTreeMap::new() });

/// Heap one B-tree insert into a map of `K` to `V` may take: a node per
/// level (eleven entries, twelve edges, a header; rounded up to the heap's
/// size class) for as many levels as 2^32 entries need, and a root.
const fn tree_insert_bytes<K, V>() -> usize {
    13 * (32 + 11 * (core::mem::size_of::<K>() + core::mem::size_of::<V>()) + 12 * 8).next_power_of_two()
}

impl Futexes {
    /// A bound on what [`Futexes::enqueue`] allocates under `key`: an
    /// insert into each of two maps, and the queue's growth (a deque
    /// doubles its capacity).
    fn enqueue_bound(&self, key: &Key) -> usize {
        let queued = self.queues.get(key).map_or(0, |q| q.waiters.capacity());
        tree_insert_bytes::<Key, Queue>()
            + tree_insert_bytes::<Pid, Wait>()
            + 2 * (queued + 1) * core::mem::size_of::<Waiter>()
    }

    /// A bound on what moving `moved` waiters onto `key`'s queue
    /// allocates: the queue's entry and its growth (the waiters' own
    /// entries in `waiting_on` are only rewritten).
    fn requeue_bound(&self, key: &Key, moved: usize) -> usize {
        let queued = self.queues.get(key).map_or(0, |q| q.waiters.capacity());
        tree_insert_bytes::<Key, Queue>() + 2 * (queued + moved + 1) * core::mem::size_of::<Waiter>()
    }

    fn enqueue(&mut self, key: Key, waiter: Waiter) {
        self.waiting_on.insert(waiter.task.pid, Wait::Queued(key));
        self.queues.entry(key).or_default().insert(waiter);
    }

    /// Whether task `pid` is queued (not woken, not granted its lock).
    fn is_queued(&self, pid: Pid) -> bool {
        matches!(self.waiting_on.get(&pid), Some(Wait::Queued(_)))
    }

    /// The key task `pid` is queued under.
    fn queued_on(&self, pid: Pid) -> Option<&Key> {
        match self.waiting_on.get(&pid) {
            Some(Wait::Queued(key)) => Some(key),
            _ => None,
        }
    }

    /// Takes `task`'s entry out of its queue, if it is still queued;
    /// returns the PI owner whose priority may now drop.
    fn leave(&mut self, task: &Arc<Task>) -> Option<Arc<Task>> {
        let Wait::Queued(key) = self.waiting_on.remove(&task.pid)? else { return None };
        let queue = self.queues.get_mut(&key)?;
        queue.waiters.retain(|w| !Arc::ptr_eq(&w.task, task));
        let owner = queue.owner.as_ref().map(|o| o.task.clone());
        if queue.waiters.is_empty() {
            self.queues.remove(&key);
        } else if !queue.waiters.iter().any(|w| w.pi) {
            // Plain waiters of a PI word lend its owner nothing.
            queue.owner = None;
        }
        owner
    }

    /// A PI futex with waiters that task `pid` owns.
    fn owned_by(&self, pid: Pid) -> Option<Key> {
        self.queues.iter().find(|(_, q)| q.owner.as_ref().is_some_and(|o| o.task.pid == pid)).map(|(key, _)| *key)
    }

    /// Wakes up to `count` waiters of `key` whose bitset meets `bitset`
    /// (at least one, as Linux counts); `EINVAL` on meeting a PI waiter.
    fn wake(&mut self, key: Key, count: i32, bitset: u32) -> Result<u32, Errno> {
        let Some(queue) = self.queues.get_mut(&key) else { return Ok(0) };
        let mut woken = 0u32;
        let mut result = Ok(());
        let mut at = 0;
        while at < queue.waiters.len() {
            let waiter = &queue.waiters[at];
            if waiter.pi {
                result = Err(Errno::EINVAL);
                break;
            }
            if waiter.bitset & bitset == 0 {
                at += 1;
                continue;
            }
            let waiter = queue.waiters.remove(at).expect("a waiter at an index just checked");
            self.waiting_on.remove(&waiter.task.pid);
            sched::wake(&waiter.task);
            woken += 1;
            if woken as i64 >= i64::from(count) {
                break;
            }
        }
        if queue.waiters.is_empty() {
            self.queues.remove(&key);
        }
        result.map(|()| woken)
    }

    /// The best level among the waiters of the PI futexes `pid` owns.
    fn inherited(&self, pid: Pid) -> u8 {
        self.queues
            .values()
            .filter(|queue| queue.owner.as_ref().is_some_and(|o| o.task.pid == pid))
            .flat_map(|queue| queue.waiters.iter().filter(|w| w.pi).map(|w| w.task.priority()))
            .min()
            .unwrap_or(u8::MAX)
    }

    /// Recomputes what `task` inherits, and passes a change on to the
    /// owner of the PI futex it waits on, and so on up the chain.
    fn propagate(&self, task: &Arc<Task>) {
        let mut task = task.clone();
        for _ in 0..MAX_LOCK_DEPTH {
            let before = task.priority();
            sched::set_boost(&task, self.inherited(task.pid));
            if task.priority() == before {
                return;
            }
            let next = self.queued_on(task.pid).and_then(|key| self.queues.get(key)).and_then(|q| q.owner.as_ref());
            match next {
                Some(owner) if !Arc::ptr_eq(&owner.task, &task) => task = owner.task.clone(),
                _ => return,
            }
        }
    }
}

/// The key of the current process's word at `addr`. A private key needs
/// no mapping (Linux's `get_futex_key` does not look one up either: a wake
/// of an unmapped private word wakes nobody rather than failing).
fn key_of(me: &Thread, addr: u64, private: bool) -> Result<Key, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    UserPtr::<u32>::new(addr)?;
    me.process.with_mm(|mm| {
        if private {
            Ok((FutexKey::Private { space: mm.id(), addr }, false))
        } else {
            let key = mm.futex_key(VirtAddr::new(addr), false)?;
            Ok((key, matches!(key, FutexKey::Private { .. })))
        }
    })?
}

fn read_word(addr: u64) -> Result<u32, Errno> {
    crate::syscall::user().read_u32(UserPtr::new(addr)?)
}

/// Stores `new` at `addr` if the word holds `expected` (atomically against
/// user code on other cores); the value it held.
fn cmpxchg_word(addr: u64, expected: u32, new: u32) -> Result<u32, Errno> {
    crate::syscall::cmpxchg_user_u32(addr, expected, new)
}

/// Changes the word at `addr` to `change(old)`, atomically: a compare-and-
/// swap loop that decides again on the value another core stored meanwhile
/// (an error of `change` ends it, nothing stored); the old value changed.
fn update_word(addr: u64, mut change: impl FnMut(u32) -> Result<u32, Errno>) -> Result<u32, Errno> {
    let mut old = read_word(addr)?;
    loop {
        let held = cmpxchg_word(addr, old, change(old)?)?;
        if held == old {
            return Ok(old);
        }
        old = held;
    }
}

fn current_thread() -> Arc<Thread> {
    thread::current().expect("futex from a kernel thread")
}

/// The arguments of one `futex` call, decoded.
pub struct Call {
    /// The operation.
    pub op: FutexOp,
    /// `uaddr`.
    pub addr: u64,
    /// `val`.
    pub val: u32,
    /// The deadline in counter ticks, for the commands with a timeout.
    pub deadline: Option<u64>,
    /// `val2` (the timeout argument as a count) for the requeues and
    /// `FUTEX_WAKE_OP`.
    pub val2: u32,
    /// `uaddr2`.
    pub addr2: u64,
    /// `val3`.
    pub val3: u32,
}

/// Runs a `futex` call: what it returns to user space.
pub fn futex(call: &Call) -> Result<u64, Errno> {
    let private = call.op.private;
    match call.op.command {
        FutexCommand::Wait => wait(call.addr, private, call.val, FUTEX_BITSET_MATCH_ANY, call.deadline).map(|()| 0),
        FutexCommand::WaitBitset => wait(call.addr, private, call.val, call.val3, call.deadline).map(|()| 0),
        FutexCommand::Wake => wake(call.addr, private, call.val as i32, FUTEX_BITSET_MATCH_ANY).map(u64::from),
        FutexCommand::WakeBitset => wake(call.addr, private, call.val as i32, call.val3).map(u64::from),
        FutexCommand::Requeue => requeue(call, None).map(u64::from),
        FutexCommand::CmpRequeue => requeue(call, Some(call.val3)).map(u64::from),
        FutexCommand::WakeOp => wake_op(call).map(u64::from),
        FutexCommand::LockPi | FutexCommand::LockPi2 => lock_pi(call.addr, private, call.deadline, false).map(|()| 0),
        FutexCommand::TrylockPi => lock_pi(call.addr, private, None, true).map(|()| 0),
        FutexCommand::UnlockPi => unlock_pi(call.addr, private).map(|()| 0),
    }
}

/// How a wait ended without its wake-up: `interrupted` when the thread
/// must stop waiting, `ETIMEDOUT` past the deadline.
fn wait_failure(me: &Thread, deadline: Option<u64>, interrupted: Errno) -> Option<Errno> {
    if me.interrupted() {
        return Some(interrupted);
    }
    deadline.filter(|d| timer::ticks() >= *d).map(|_| Errno::ETIMEDOUT)
}

/// Blocks the running task, queued already, until it is no longer queued
/// (woken, requeued and woken, handed a PI lock), its thread must stop
/// waiting (`interrupted`) or `deadline` passes (`ETIMEDOUT`); on an error
/// it has left its queue. A stop of its process pauses the wait.
fn block_queued(me: &Thread, task: &Arc<Task>, deadline: Option<u64>, interrupted: Errno) -> Result<(), Errno> {
    loop {
        // A stop parks the waiter, still queued (a wake meanwhile counts);
        // then the wait goes on, a timed one to its own deadline.
        if me.park_for_stop() {
            if !FUTEXES.lock().is_queued(task.pid) {
                return Ok(());
            }
            continue;
        }
        if let Some(errno) = wait_failure(me, deadline, interrupted) {
            let mut futexes = FUTEXES.lock();
            if !futexes.is_queued(task.pid) {
                // Woken just as it gave up: the wake counts.
                return Ok(());
            }
            if let Some(owner) = futexes.leave(task) {
                futexes.propagate(&owner);
            }
            return Err(errno);
        }
        sched::block(deadline);
        if !FUTEXES.lock().is_queued(task.pid) {
            return Ok(());
        }
    }
}

/// `FUTEX_WAIT_BITSET`: blocks while the word at `addr` holds `expected`,
/// until woken with a bitset that meets `bitset`, or until `deadline`.
fn wait(addr: u64, private: bool, expected: u32, bitset: u32, deadline: Option<u64>) -> Result<(), Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let me = current_thread();
    let key = key_of(&me, addr, private)?;
    if read_word(addr)? != expected {
        return Err(Errno::EAGAIN);
    }
    let task = sched::current();
    {
        let mut futexes = FUTEXES.lock();
        // The queue and the waiter's entry are made infallibly: reserved
        // first, ENOMEM before anything is queued.
        let _preload = crate::heap::preload(futexes.enqueue_bound(&key))?;
        futexes.enqueue(key, Waiter { task: task.clone(), tid: me.tid(), bitset, pi: false });
    }
    // An untimed wait restarts as Linux's (ERESTARTSYS); a timed one ends
    // with EINTR (Linux would restart it with the time left).
    let interrupted = if deadline.is_none() { Restart::Sys.errno() } else { Errno::EINTR };
    block_queued(&me, &task, deadline, interrupted)
}

/// `FUTEX_WAKE_BITSET`: wakes up to `count` waiters of the word at `addr`
/// whose bitset meets `bitset`; how many.
fn wake(addr: u64, private: bool, count: i32, bitset: u32) -> Result<u32, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let key = key_of(&current_thread(), addr, private)?;
    FUTEXES.lock().wake(key, count, bitset)
}

/// Wakes one waiter of the current process's word at `addr` (a shared key,
/// as Linux), for the kernel's own use: a thread's `CLONE_CHILD_CLEARTID`
/// and robust futexes of an ending thread.
pub fn wake_at(addr: u64, count: u32) {
    let _ = wake(addr, false, count as i32, FUTEX_BITSET_MATCH_ANY);
}

/// `FUTEX_REQUEUE` and `FUTEX_CMP_REQUEUE` (with `expected`): wakes up to
/// `val` waiters of `addr` and moves up to `val2` others to `addr2`; the
/// number woken and moved.
fn requeue(call: &Call, expected: Option<u32>) -> Result<u32, Errno> {
    let (nr_wake, nr_requeue) = (call.val as i32, call.val2 as i32);
    if nr_wake < 0 || nr_requeue < 0 {
        return Err(Errno::EINVAL);
    }
    let me = current_thread();
    let key1 = key_of(&me, call.addr, call.op.private)?;
    let key2 = key_of(&me, call.addr2, call.op.private)?;
    if let Some(expected) = expected {
        if read_word(call.addr)? != expected {
            return Err(Errno::EAGAIN);
        }
    }
    let mut futexes = FUTEXES.lock();
    let Some(queue) = futexes.queues.get(&key1) else { return Ok(0) };
    if queue.waiters.iter().any(|w| w.pi) {
        return Err(Errno::EINVAL);
    }
    let woken = (nr_wake as usize).min(queue.waiters.len());
    let moved = (nr_requeue as usize).min(queue.waiters.len() - woken);
    // The second queue and its entries are made infallibly: reserved
    // first, ENOMEM before anyone is woken or moved.
    let _preload = crate::heap::preload(futexes.requeue_bound(&key2, moved))?;
    for _ in 0..woken {
        let Some(waiter) = futexes.queues.get_mut(&key1).and_then(|q| q.waiters.pop_front()) else { break };
        futexes.waiting_on.remove(&waiter.task.pid);
        sched::wake(&waiter.task);
    }
    // One at a time, from the front: onto the same word, each goes behind
    // the others of its priority, as Linux's.
    for _ in 0..moved {
        let Some(waiter) = futexes.queues.get_mut(&key1).and_then(|q| q.waiters.pop_front()) else { break };
        futexes.enqueue(key2, waiter);
    }
    if futexes.queues.get(&key1).is_some_and(|q| q.waiters.is_empty()) {
        futexes.queues.remove(&key1);
    }
    Ok((woken + moved) as u32)
}

/// `FUTEX_WAKE_OP`: changes the word at `addr2` as `val3` says, wakes up
/// to `val` waiters of `addr` and, if the word's old value passes the
/// comparison, up to `val2` waiters of `addr2`; how many were woken.
fn wake_op(call: &Call) -> Result<u32, Errno> {
    let me = current_thread();
    let key1 = key_of(&me, call.addr, call.op.private)?;
    let key2 = key_of(&me, call.addr2, call.op.private)?;
    let op = WakeOp::decode(call.val3);
    let old = update_word(call.addr2, |old| op.apply(old))?;
    let wake2 = op.compare(old)?;
    let mut futexes = FUTEXES.lock();
    let mut woken = futexes.wake(key1, call.val as i32, FUTEX_BITSET_MATCH_ANY)?;
    if wake2 {
        woken += futexes.wake(key2, call.val2 as i32, FUTEX_BITSET_MATCH_ANY)?;
    }
    Ok(woken)
}

/// `FUTEX_LOCK_PI` (`FUTEX_TRYLOCK_PI` with `try_only`): takes the PI lock
/// at `addr`, waiting (until `deadline`) while another thread holds it,
/// lending that thread the caller's priority meanwhile.
fn lock_pi(addr: u64, private: bool, deadline: Option<u64>, try_only: bool) -> Result<(), Errno> {
    let me = current_thread();
    let tid = me.tid();
    let key = key_of(&me, addr, private)?;
    let task = sched::current();
    // What queueing behind an owner allocates (its queue and the waiter's
    // entry, which a grant later rewrites in place) is reserved before the
    // word changes (ENOMEM, nothing done), and the section closed before
    // the wait (one CPU, no preemption: the queues do not change meanwhile).
    let preload = {
        let futexes = FUTEXES.lock();
        crate::heap::preload(futexes.enqueue_bound(&key))?
    };
    // Decided on the word as it is, again if user code on another core
    // changed it before the update (Linux's `futex_lock_pi_atomic`, retried
    // on `-EAGAIN`).
    let mut step = LockStep::Take;
    update_word(addr, |word| {
        let futexes = FUTEXES.lock();
        match futexes.queues.get(&key).and_then(|q| q.owner.as_ref()) {
            // Waiters already: wait behind them for their owner.
            Some(owner) => {
                let in_word = word & FUTEX_TID_MASK;
                if in_word == tid {
                    return Err(Errno::EDEADLK);
                }
                if in_word != owner.tid && in_word != 0 {
                    return Err(Errno::EINVAL);
                }
                step = LockStep::Behind(Owner { task: owner.task.clone(), tid: owner.tid });
                Ok(word | abi::FUTEX_WAITERS)
            }
            None => match abi::lock_pi_word(word, tid)? {
                PiLock::Take(new) => {
                    step = LockStep::Take;
                    Ok(new)
                }
                PiLock::Wait { word: new, owner } => {
                    step = LockStep::Attach(owner);
                    Ok(new)
                }
            },
        }
    })?;
    let owner = match step {
        LockStep::Take => return Ok(()),
        LockStep::Behind(owner) => owner,
        LockStep::Attach(owner) => {
            let thread = crate::process::thread_by_tid(owner).ok_or(Errno::ESRCH)?;
            let owner_task = thread.task().ok_or(Errno::ESRCH)?;
            Owner { task: owner_task, tid: owner }
        }
    };
    if try_only {
        return Err(Errno::EAGAIN);
    }
    if deadline.is_some_and(|d| timer::ticks() >= d) {
        return Err(Errno::ETIMEDOUT);
    }
    {
        let mut futexes = FUTEXES.lock();
        let owner_task = owner.task.clone();
        futexes.queues.entry(key).or_default().owner.get_or_insert(owner);
        futexes.enqueue(key, Waiter { task: task.clone(), tid, bitset: FUTEX_BITSET_MATCH_ANY, pi: true });
        futexes.propagate(&owner_task);
    }
    drop(preload);
    // Always restarted, as Linux's: the deadline is absolute, so the
    // restarted call waits for the same time.
    block_queued(&me, &task, deadline, Restart::NoIntr.errno())?;
    let grant = FUTEXES.lock().waiting_on.remove(&task.pid);
    let fix_word = matches!(grant, Some(Wait::Granted { fix_word: true }));
    if fix_word {
        // The owner ended: the word is ours to update (keeping
        // FUTEX_OWNER_DIED if its robust list set it).
        update_word(addr, |word| Ok(abi::handoff_word(word, tid, true)))?;
    }
    Ok(())
}

/// What `FUTEX_LOCK_PI` does after its update of the word.
enum LockStep {
    /// The lock was free: the caller holds it now.
    Take,
    /// Wait behind the waiters already queued for this owner.
    Behind(Owner),
    /// Wait for the thread whose id the word holds (the first waiter).
    Attach(Pid),
}

/// Hands the PI futex `key` (owned by `from`) to its best waiter, which
/// must then fix the word itself if `fix_word`; the new owner's thread id,
/// or `None` without PI waiters (the futex is then owned by nobody).
/// Allocates nothing: the new owner's claim is its queue's field, the
/// grant rewrites the waiter's own entry.
fn hand_off(futexes: &mut Futexes, key: Key, from: &Arc<Task>, fix_word: bool) -> Option<Pid> {
    let queue = futexes.queues.get_mut(&key)?;
    let Some(best) = queue.best_pi_waiter() else {
        queue.owner = None;
        return None;
    };
    let waiter = queue.waiters.remove(best)?;
    let more = queue.waiters.iter().any(|w| w.pi);
    queue.owner = more.then(|| Owner { task: waiter.task.clone(), tid: waiter.tid });
    if queue.waiters.is_empty() {
        futexes.queues.remove(&key);
    }
    if let Some(wait) = futexes.waiting_on.get_mut(&waiter.task.pid) {
        *wait = Wait::Granted { fix_word };
    }
    futexes.propagate(from);
    futexes.propagate(&waiter.task);
    sched::wake(&waiter.task);
    Some(waiter.tid)
}

/// `FUTEX_UNLOCK_PI`: releases the PI lock at `addr`, which the caller
/// must hold (`EPERM`), to its best waiter (whose id goes into the word,
/// with `FUTEX_WAITERS`), or to nobody (the word becomes 0).
fn unlock_pi(addr: u64, private: bool) -> Result<(), Errno> {
    let me = current_thread();
    let mut word = read_word(addr)?;
    if word & FUTEX_TID_MASK != me.tid() {
        return Err(Errno::EPERM);
    }
    let key = key_of(&me, addr, private)?;
    let task = sched::current();
    // The hand-off allocates nothing: no section.
    let mut futexes = FUTEXES.lock();
    let best = futexes
        .queues
        .get(&key)
        .filter(|q| q.owner.is_some())
        .and_then(|queue| queue.best_pi_waiter().map(|at| queue.waiters[at].tid));
    if best.is_some()
        && futexes.queues.get(&key).and_then(|q| q.owner.as_ref()).is_some_and(|o| !Arc::ptr_eq(&o.task, &task))
    {
        return Err(Errno::EINVAL);
    }
    // The queues stay as they are (this core holds the big kernel lock);
    // only user code on another core can change the word meanwhile.
    loop {
        let new = best.map_or(0, |next| abi::handoff_word(word, next, false));
        let held = cmpxchg_word(addr, word, new)?;
        if held == word {
            break;
        }
        // As Linux's `futex_unlock_pi`: a release to nobody leaves a word
        // changed meanwhile to user space (`EAGAIN`); a hand-off fails with
        // `EINVAL` (`wake_futex_pi`) unless the word read was a bare id
        // that only gained flags, and then starts again on the new value.
        match best {
            None => return Err(Errno::EAGAIN),
            Some(_) if held & FUTEX_TID_MASK != word => return Err(Errno::EINVAL),
            Some(_) => {}
        }
        word = held;
        if word & FUTEX_TID_MASK != me.tid() {
            return Err(Errno::EPERM);
        }
    }
    if best.is_some() {
        hand_off(&mut futexes, key, &task, false);
    }
    Ok(())
}

/// What an ending thread (or one whose image `execve` replaces) leaves
/// for others: its robust list walked (each futex it holds marked
/// `FUTEX_OWNER_DIED` and a waiter woken), then the PI futexes it owns
/// handed to their waiters (Linux's `futex_cleanup`).
pub fn release(me: &Thread) {
    let head = me.take_robust_list();
    if head != 0 {
        let tid = me.tid();
        abi::walk_robust_list(&mut crate::syscall::user(), head, |memory, entry| {
            let mut word = memory.read_u32(UserPtr::new(entry.addr)?)?;
            // Decided again on a word another core changed meanwhile (Linux's
            // `handle_futex_death`).
            loop {
                match abi::owner_death(word, tid, entry.pi, entry.pending) {
                    Death::Nothing => {}
                    Death::WakeOne => wake_at(entry.addr, 1),
                    Death::Store { word: new, wake } => {
                        let held = cmpxchg_word(entry.addr, word, new)?;
                        if held != word {
                            word = held;
                            continue;
                        }
                        if wake {
                            wake_at(entry.addr, 1);
                        }
                    }
                }
                return Ok(());
            }
        });
    }
    let Some(task) = me.task() else { return };
    // An exit cannot fail: the hand-offs allocate nothing (counted under
    // checks). Each takes the futex from this task (to a waiter, or to
    // nobody), so the loop ends.
    let _no_alloc = crate::failslab::NoAllocSection::enter();
    let mut futexes = FUTEXES.lock();
    while let Some(key) = futexes.owned_by(task.pid) {
        hand_off(&mut futexes, key, &task, true);
    }
    sched::set_boost(&task, u8::MAX);
}

/// After `task`'s own priority changed (`sched_setscheduler`): the owner
/// of the PI futex it waits on, and the chain above, inherit the change.
pub fn priority_changed(task: &Arc<Task>) {
    let futexes = FUTEXES.lock();
    let owner = futexes.queued_on(task.pid).and_then(|key| futexes.queues.get(key)).and_then(|q| q.owner.as_ref());
    if let Some(owner) = owner {
        let owner = owner.task.clone();
        futexes.propagate(&owner);
    }
}
