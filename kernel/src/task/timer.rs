//! Kernel timers: things to do at a time (a counter value), kept by
//! deadline. The timer interrupt only looks at the earliest: when it is
//! due, it wakes the `timer` thread, which runs what is due ([`worker`])
//! in task context (an expiry queues a signal, whose information takes
//! heap: never in an interrupt handler). The one-shot timer is armed for
//! the earliest of the timers, the scheduler's sleepers and the end of
//! the time slice; arming a timer earlier than what the hardware timer
//! waits for brings the interrupt forward.
//!
//! Arming never allocates: every timer is a [`Slot`], made (fallibly)
//! when its owner is (`timer_create`, a first `setitimer`), and the
//! queue's capacity covers every slot, each of which holds at most one
//! entry.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::{Mutex, Once};

use super::{sched, Task};
use crate::arch::{cpu, timer};
use crate::heap::OutOfMemory;

/// What a timer does when it expires: runs in the `timer` thread, with
/// no timer lock held and interrupts masked (it may arm timers and wake
/// tasks).
pub trait Expiry: Send + Sync {
    /// The timer armed with `id` expired at `now`.
    fn expired(&self, id: TimerId, now: u64);
}

/// An armed timer's entry, to tell which of its owner's timers expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerId(u64);

struct Entry {
    deadline: u64,
    id: TimerId,
    target: Weak<dyn Expiry>,
}

/// The armed timers, latest first (the earliest is popped from the end),
/// and how many slots exist: the entries' capacity is at least that.
struct Queue {
    entries: Vec<Entry>,
    slots: usize,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue { entries: Vec::new(), slots: 0 });
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// The `timer` thread, which the interrupt wakes.
static WORKER: Once<Arc<Task>> = Once::new();

/// Runs `f` on the queue with interrupts masked (the interrupt reads it).
fn with_queue<R>(f: impl FnOnce(&mut Queue) -> R) -> R {
    let irq = cpu::disable_irqs();
    let result = f(&mut QUEUE.lock());
    cpu::restore_irqs(irq);
    result
}

impl Queue {
    /// Where an entry for `(deadline, id)` goes (latest first).
    fn position(&self, deadline: u64, id: TimerId) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| (deadline, id).cmp(&(e.deadline, e.id)))
    }
}

/// One timer: at most one entry on the queue at a time, whose room the
/// slot reserved when it was made.
pub struct Slot {
    armed: Option<(u64, TimerId)>,
}

impl Slot {
    /// A new timer, disarmed; fails (nothing changed) when the queue
    /// cannot grow to hold one more.
    pub fn new() -> Result<Self, OutOfMemory> {
        with_queue(|queue| {
            let wanted = queue.slots + 1;
            queue.entries.try_reserve(wanted - queue.entries.len()).map_err(|_| OutOfMemory)?;
            queue.slots = wanted;
            Ok(Self { armed: None })
        })
    }

    /// Arms it (instead of any earlier setting) to run `target.expired`
    /// at counter value `deadline` (at once if that has passed) unless
    /// disarmed first or `target` is gone by then. Never allocates.
    pub fn arm(&mut self, deadline: u64, target: &Arc<dyn Expiry>) -> TimerId {
        self.disarm();
        let id = TimerId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
        with_queue(|queue| {
            let at = queue.position(deadline, id).unwrap_or_else(|at| at);
            // Within capacity: this slot's entry is gone, and the room is its.
            debug_assert!(queue.entries.len() < queue.entries.capacity());
            queue.entries.insert(at, Entry { deadline, id, target: Arc::downgrade(target) });
        });
        self.armed = Some((deadline, id));
        timer::fire_by(deadline);
        id
    }

    /// Disarms it; whether it was still armed (not yet expired).
    pub fn disarm(&mut self) -> bool {
        let Some((deadline, id)) = self.armed.take() else { return false };
        with_queue(|queue| match queue.position(deadline, id) {
            Ok(at) => {
                queue.entries.remove(at);
                true
            }
            Err(_) => false,
        })
    }

    /// When it expires next, and its entry's id, while armed.
    pub fn armed(&self) -> Option<(u64, TimerId)> {
        self.armed
    }

    /// The entry `id` expired: if it is this slot's, the slot is
    /// disarmed and its deadline returned.
    pub fn take_expired(&mut self, id: TimerId) -> Option<u64> {
        let (deadline, armed) = self.armed?;
        (armed == id).then(|| {
            self.armed = None;
            deadline
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.disarm();
        with_queue(|queue| {
            queue.slots -= 1;
            // The capacity stays for the slots left (shrinking could
            // allocate); with none left it goes.
            if queue.slots == 0 {
                queue.entries = Vec::new();
            }
        });
    }
}

/// Starts the `timer` thread (after init, so that init has the first
/// pid). At the best level: an expiry is as urgent as the interrupt that
/// found it due.
pub fn init() {
    match Task::new_kernel(0, worker, 0) {
        Ok(task) => {
            WORKER.call_once(|| task.clone());
            sched::make_ready(task);
        }
        Err(e) => panic!("cannot start the timer thread: {e:?}"),
    }
}

/// From the timer interrupt: wakes the `timer` thread when a timer is
/// due at `now` (it arms the timer for the next one when done); otherwise
/// returns the earliest deadline. Allocates nothing.
pub fn on_interrupt(now: u64) -> Option<u64> {
    let earliest = QUEUE.lock().entries.last().map(|e| e.deadline)?;
    if earliest > now {
        return Some(earliest);
    }
    if let Some(worker) = WORKER.get() {
        sched::wake(worker);
    }
    None
}

/// The `timer` thread: runs what is due, one entry at a time; sleeps
/// with the timer armed for the next one when none is due.
fn worker(_: usize) {
    loop {
        // Masked: the interrupt cannot come between the look and the block.
        let irq = cpu::disable_irqs();
        let now = timer::ticks();
        let due = {
            let mut queue = QUEUE.lock();
            match queue.entries.last() {
                Some(entry) if entry.deadline <= now => queue.entries.pop(),
                Some(entry) => {
                    timer::fire_by(entry.deadline);
                    None
                }
                None => None,
            }
        };
        match due {
            // Masked while it runs too, as the interrupt handler ran it.
            Some(entry) => {
                if let Some(target) = entry.target.upgrade() {
                    target.expired(entry.id, now);
                }
            }
            None => sched::block(None),
        }
        cpu::restore_irqs(irq);
    }
}
