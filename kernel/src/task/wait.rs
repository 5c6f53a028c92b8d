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
pub fn wait_any(queues: &[&WaitQueue], deadline: Option<u64>) {
    let task = sched::current();
    for queue in queues {
        queue.waiters.lock().push_back(task.clone());
    }
    sched::block(deadline);
    for queue in queues {
        queue.waiters.lock().retain(|waiter| !Arc::ptr_eq(waiter, &task));
    }
}
