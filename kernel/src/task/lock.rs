//! Sleeping locks: a lock whose holder may be switched out while it holds
//! it (an address space's, held across the pause points of a long memory
//! pass), so a task that finds it taken blocks instead of spinning (a
//! spinning waiter would hold the big kernel lock and never let the holder
//! run again).
//!
//! Uncontended, taking and releasing it is one compare-and-swap each on a
//! word holding the holder's task. Waiters queue in arrival order; the
//! holder hands the lock to the best of them (by effective level, the
//! first among equals) when it unlocks, so no waiter is overtaken by a
//! later task of its level. The holder runs at the level of its best
//! waiter meanwhile (`sched::set_lock_boost`, kept apart from what PI
//! futexes lend): a real-time thread waiting for its space's lock does not
//! wait behind every task better than the holder. A task holds at most one
//! sleeping lock at a time (the level lent is one value per task).
//!
//! The queue sits behind a spin lock that is never held across a switch.
//! Interrupt handlers never take a sleeping lock; nothing may take one
//! while holding a spin lock (see ARCHITECTURE, "Concurrency today").
//! Nothing runs between a waiter's check and its block (the kernel
//! switches only where a task blocks or yields, interrupt handlers never
//! unlock, and the big kernel lock keeps other cores out), so no hand-over
//! is missed.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{sched, Task};

/// Set in [`SleepLock::word`] while tasks wait: the holder's unlock takes
/// the slow path and hands the lock over.
const WAITERS: usize = 1;

/// A lock that blocks its waiters and lends its holder their priority.
pub struct SleepLock<T: ?Sized> {
    /// The holder's task (`Arc::as_ptr`, aligned, so bit 0 is free) with
    /// [`WAITERS`]; 0 while free. The holder's task lives at least as long
    /// as it holds the lock (it is running or ready).
    word: AtomicUsize,
    queue: spin::Mutex<Queue>,
    value: UnsafeCell<T>,
}

struct Queue {
    /// Blocked tasks waiting for the lock, in arrival order.
    waiters: VecDeque<Arc<Task>>,
    /// The level lent to the holder (`u8::MAX`: none).
    lent: u8,
}

impl Queue {
    /// The best level among the waiters (`u8::MAX`: none).
    fn best(&self) -> u8 {
        self.waiters.iter().map(|w| w.priority()).min().unwrap_or(u8::MAX)
    }
}

// SAFETY: the value is reached only through a guard, and one task at a
// time holds one (the holder recorded in `word`).
unsafe impl<T: ?Sized + Send> Send for SleepLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for SleepLock<T> {}

impl<T> SleepLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            word: AtomicUsize::new(0),
            queue: spin::Mutex::new(Queue { waiters: VecDeque::new(), lent: u8::MAX }),
            value: UnsafeCell::new(value),
        }
    }
}

impl<T: ?Sized> SleepLock<T> {
    /// Takes the lock, blocking until the holder hands it over.
    #[inline]
    pub fn lock(&self) -> SleepLockGuard<'_, T> {
        let me = sched::current_ptr() as usize;
        debug_assert!(me != 0, "a sleeping lock taken before the scheduler runs");
        if self.word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_contended(me);
        }
        SleepLockGuard { lock: self, _task_bound: PhantomData }
    }

    #[inline(never)]
    fn lock_contended(&self, me: usize) {
        let task = sched::current();
        let mut queue = self.queue.lock();
        let holds = self.word.load(Ordering::Relaxed) & !WAITERS == me;
        assert!(!holds, "task {} takes a sleeping lock it holds", task.pid);
        let mut queued = false;
        loop {
            let word = self.word.load(Ordering::Acquire);
            let holder = word & !WAITERS;
            if holder == me {
                // Handed over by the last holder's unlock.
                return;
            }
            // Free, and nobody waits (an unlock hands over otherwise).
            if word == 0 && self.word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return;
            }
            self.word.fetch_or(WAITERS, Ordering::Relaxed);
            if !queued {
                queue.waiters.push_back(task.clone());
                queued = true;
            }
            let best = queue.best();
            let lend = best < queue.lent;
            if lend {
                queue.lent = best;
            }
            drop(queue);
            if lend {
                // SAFETY: `holder` is a task's `Arc::as_ptr`, and the task
                // lives while it holds the lock, which it does: it cannot
                // run before this task blocks. One more strong count makes
                // this reference.
                let holder = unsafe {
                    Arc::increment_strong_count(holder as *const Task);
                    Arc::from_raw(holder as *const Task)
                };
                sched::set_lock_boost(&holder, best);
            }
            sched::block(None);
            // Handed over, or woken for another reason (a signal): look.
            queue = self.queue.lock();
        }
    }

    /// The value, unguarded: for a protocol of the owner's that shares it
    /// while nobody holds the lock (`process::Space`'s shared faults).
    pub fn as_ptr(&self) -> *mut T {
        self.value.get()
    }

    /// Whether some task holds it (for tests and assertions).
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) != 0
    }

    #[inline]
    fn unlock(&self) {
        let me = sched::current_ptr() as usize;
        if self.word.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed).is_err() {
            self.unlock_contended(me);
        }
    }

    /// Hands the lock to the best waiter (there is one: [`WAITERS`] was
    /// set) and takes back the level lent to this holder.
    #[inline(never)]
    fn unlock_contended(&self, me: usize) {
        let mut queue = self.queue.lock();
        let lent = core::mem::replace(&mut queue.lent, u8::MAX);
        let best = queue.best();
        let next = queue.waiters.iter().position(|w| w.priority() == best).and_then(|at| queue.waiters.remove(at));
        let word = match &next {
            Some(next) => Arc::as_ptr(next) as usize | if queue.waiters.is_empty() { 0 } else { WAITERS },
            None => 0,
        };
        debug_assert_eq!(self.word.load(Ordering::Relaxed) & !WAITERS, me, "unlocked by a task not holding it");
        self.word.store(word, Ordering::Release);
        queue.lent = queue.best();
        let next_lent = queue.lent;
        drop(queue);
        if lent != u8::MAX {
            sched::set_lock_boost(&sched::current(), u8::MAX);
        }
        if let Some(next) = next {
            if next_lent != u8::MAX {
                sched::set_lock_boost(&next, next_lent);
            }
            sched::wake(&next);
        }
    }
}

impl<T: Default> Default for SleepLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

/// Access to a [`SleepLock`]'s value; unlocks when dropped (by the task
/// that took it: a guard never moves to another task).
pub struct SleepLockGuard<'l, T: ?Sized> {
    lock: &'l SleepLock<T>,
    /// Not `Send`: the unlock names the running task as the holder.
    _task_bound: PhantomData<*const ()>,
}

impl<T: ?Sized> Deref for SleepLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard's task holds the lock: no other reference to
        // the value exists until it drops the guard.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for SleepLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this one unique.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for SleepLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}
