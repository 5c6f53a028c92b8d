//! Futexes: threads waiting on a 32-bit word of user memory until another
//! thread wakes that word.
//!
//! A waiter queues itself under the word's key after checking the word
//! holds what it expects; nothing can change the word and wake in between,
//! since the kernel is not preempted and runs with interrupts masked.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;

use aspen_abi::uaccess::{UserMemory, UserPtr};
use aspen_mm::errno::Errno;
use spin::Mutex;

use crate::arch::timer;
use crate::process::thread::{self, Thread};
use crate::task::{sched, Task};

/// Which word: the address space and the address in it.
type Key = (usize, u64);

struct Waiter {
    task: Arc<Task>,
    bitset: u32,
}

static QUEUES: Mutex<BTreeMap<Key, VecDeque<Waiter>>> = Mutex::new(BTreeMap::new());

/// The key of the current process's word at `addr`.
fn key_of(me: &Thread, addr: u64) -> Result<Key, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let space = me.process.space_identity().ok_or(Errno::EFAULT)?;
    Ok((space, addr))
}

/// `FUTEX_WAIT_BITSET`: blocks while the word at `addr` holds `expected`,
/// until woken with a bitset that meets `bitset`, or until `deadline`
/// (counter ticks).
pub fn wait(addr: u64, expected: u32, bitset: u32, deadline: Option<u64>) -> Result<(), Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let me = thread::current().expect("futex from a kernel thread");
    let key = key_of(&me, addr)?;
    let value = crate::syscall::user().read_u32(UserPtr::new(addr)?)?;
    if value != expected {
        return Err(Errno::EAGAIN);
    }
    let task = sched::current();
    QUEUES.lock().entry(key).or_default().push_back(Waiter { task: task.clone(), bitset });
    loop {
        sched::block(deadline);
        let queued = remove(key, &task);
        if !queued {
            return Ok(());
        }
        if me.interrupted() {
            // Restarted under SA_RESTART when untimed, as Linux.
            return Err(if deadline.is_none() { aspen_abi::signal::Restart::Sys.errno() } else { Errno::EINTR });
        }
        if deadline.is_some_and(|d| timer::ticks() >= d) {
            return Err(Errno::ETIMEDOUT);
        }
        // Woken for nothing: wait on.
        QUEUES.lock().entry(key).or_default().push_back(Waiter { task: task.clone(), bitset });
    }
}

/// Takes `task` off `key`'s queue; whether it was still there (not woken).
fn remove(key: Key, task: &Arc<Task>) -> bool {
    let mut queues = QUEUES.lock();
    let Some(queue) = queues.get_mut(&key) else { return false };
    let before = queue.len();
    queue.retain(|waiter| !Arc::ptr_eq(&waiter.task, task));
    let removed = queue.len() != before;
    if queue.is_empty() {
        queues.remove(&key);
    }
    removed
}

/// `FUTEX_WAKE_BITSET`: wakes up to `count` waiters of the current
/// process's word at `addr` whose bitset meets `bitset`; how many.
pub fn wake(addr: u64, count: u32, bitset: u32) -> Result<u32, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let me = thread::current().expect("futex from a kernel thread");
    let key = key_of(&me, addr)?;
    Ok(wake_key(key, count, bitset))
}

fn wake_key(key: Key, count: u32, bitset: u32) -> u32 {
    let mut woken = 0;
    let mut queues = QUEUES.lock();
    let Some(queue) = queues.get_mut(&key) else { return 0 };
    queue.retain(|waiter| {
        if woken < count && waiter.bitset & bitset != 0 {
            woken += 1;
            sched::wake(&waiter.task);
            false
        } else {
            true
        }
    });
    if queue.is_empty() {
        queues.remove(&key);
    }
    woken
}

/// Wakes up to `count` waiters of the word at `addr` of the current
/// process, for the kernel's own use (a thread's `CLONE_CHILD_CLEARTID`).
pub fn wake_at(addr: u64, count: u32) {
    let _ = wake(addr, count, u32::MAX);
}
