//! Wait queues: tasks blocked until an event, woken by whoever causes it.
//!
//! A waiter checks its condition, then waits; since the kernel is not
//! preempted and runs with interrupts masked, nothing can cause the event
//! between the check and the block. A waiter may also be woken for another
//! reason (a signal, a timeout, the end of its process): it leaves the
//! queue when it returns, so no stale entry wakes it later, and it checks
//! its condition again.

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use spin::Mutex;

use super::{sched, Task};

/// Tasks waiting for one event.
pub struct WaitQueue {
    waiters: Mutex<VecDeque<Arc<Task>>>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    pub const fn new() -> Self {
        Self { waiters: Mutex::new(VecDeque::new()) }
    }

    /// Blocks the running task until it is woken (by this queue or any
    /// other reason) or, with a deadline in counter ticks, until then.
    pub fn wait(&self, deadline: Option<u64>) {
        wait_any(&[self], deadline);
    }

    /// Wakes every waiting task.
    pub fn wake_all(&self) {
        let waiters = core::mem::take(&mut *self.waiters.lock());
        for task in waiters {
            sched::wake(&task);
        }
    }
}

/// Blocks the running task until any of `queues` wakes it (or any other
/// reason does) or, with a deadline in counter ticks, until then: `poll`
/// waits on every pipe it watches at once.
///
/// A queue that cannot take the task (no memory for its entry) makes
/// this a spurious wake-up after a yield: the caller checks its condition
/// again and waits again, as after any other wake-up.
pub fn wait_any(queues: &[&WaitQueue], deadline: Option<u64>) {
    let task = sched::current();
    let mut queued = 0;
    for queue in queues {
        let mut waiters = queue.waiters.lock();
        if waiters.try_reserve(1).is_err() {
            break;
        }
        waiters.push_back(task.clone());
        queued += 1;
    }
    if queued == queues.len() {
        sched::block(deadline);
    } else {
        sched::yield_now();
    }
    for queue in &queues[..queued] {
        queue.waiters.lock().retain(|waiter| !Arc::ptr_eq(waiter, &task));
    }
}
