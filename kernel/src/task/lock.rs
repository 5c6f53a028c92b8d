//! Sleeping locks: a lock whose holder may be switched out while it holds
//! it (an address space's, held across the pause points of a long memory
//! pass), so a task that finds it taken blocks instead of spinning (on
//! one CPU a spinning waiter would never let the holder run again).
//!
//! Waiters queue in arrival order; the holder hands the lock to the best
//! of them (by effective level, the first among equals) when it unlocks,
//! so no waiter is overtaken by a later task of its level. The holder runs
//! at the level of its best waiter meanwhile (`sched::set_lock_boost`,
//! kept apart from what PI futexes lend): a real-time thread waiting for
//! its space's lock does not wait behind every task better than the
//! holder. A task holds at most one sleeping lock at a time (the level
//! lent is one value per task).
//!
//! The lock's own state sits behind a spin lock that is never held across
//! a switch. Interrupt handlers never take a sleeping lock; nothing may
//! take one while holding a spin lock (see ARCHITECTURE, "Concurrency
//! today"). On one CPU nothing runs between a waiter's check and its
//! block (the kernel switches only where a task blocks or yields, and
//! interrupt handlers never unlock), so no hand-over is missed.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

use super::{sched, Task};

/// A lock that blocks its waiters and lends its holder their priority.
pub struct SleepLock<T: ?Sized> {
    state: spin::Mutex<State>,
    value: UnsafeCell<T>,
}

struct State {
    owner: Option<Arc<Task>>,
    /// Blocked tasks waiting for the lock, in arrival order.
    waiters: VecDeque<Arc<Task>>,
    /// The level lent to the owner (`u8::MAX`: none).
    lent: u8,
}

impl State {
    /// The best level among the waiters (`u8::MAX`: none).
    fn best_waiter(&self) -> u8 {
        self.waiters.iter().map(|w| w.priority()).min().unwrap_or(u8::MAX)
    }
}

// SAFETY: the value is reached only through a guard, and one task at a
// time holds one (the owner, recorded under `state`'s spin lock).
unsafe impl<T: ?Sized + Send> Send for SleepLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for SleepLock<T> {}

impl<T> SleepLock<T> {
    pub const fn new(value: T) -> Self {
        Self {
            state: spin::Mutex::new(State { owner: None, waiters: VecDeque::new(), lent: u8::MAX }),
            value: UnsafeCell::new(value),
        }
    }
}

impl<T: ?Sized> SleepLock<T> {
    /// Takes the lock, blocking until the holder hands it over.
    pub fn lock(&self) -> SleepLockGuard<'_, T> {
        let me = sched::current();
        let mut state = self.state.lock();
        let Some(owner) = state.owner.as_ref() else {
            state.owner = Some(me);
            return SleepLockGuard { lock: self };
        };
        assert!(!Arc::ptr_eq(owner, &me), "task {} takes a sleeping lock it holds", me.pid);
        state.waiters.push_back(me.clone());
        loop {
            let best = state.best_waiter();
            let lend = (best < state.lent).then(|| state.owner.clone()).flatten();
            if lend.is_some() {
                state.lent = best;
            }
            drop(state);
            if let Some(owner) = lend {
                sched::set_lock_boost(&owner, best);
            }
            sched::block(None);
            state = self.state.lock();
            if state.owner.as_ref().is_some_and(|owner| Arc::ptr_eq(owner, &me)) {
                return SleepLockGuard { lock: self };
            }
            // Woken for another reason (a signal): still queued.
        }
    }

    /// Whether some task holds it (for tests and assertions).
    pub fn is_locked(&self) -> bool {
        self.state.lock().owner.is_some()
    }

    /// Gives the lock to the best waiter, or frees it; takes back the
    /// level lent to the holder.
    fn unlock(&self) {
        let mut state = self.state.lock();
        let previous = state.owner.take();
        let lent = core::mem::replace(&mut state.lent, u8::MAX);
        let best = state.best_waiter();
        let next = state.waiters.iter().position(|w| w.priority() == best).and_then(|at| state.waiters.remove(at));
        if let Some(next) = &next {
            state.owner = Some(next.clone());
            state.lent = state.best_waiter();
        }
        let next_lent = state.lent;
        drop(state);
        if let (Some(previous), true) = (previous, lent != u8::MAX) {
            sched::set_lock_boost(&previous, u8::MAX);
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

/// Access to a [`SleepLock`]'s value; unlocks when dropped.
pub struct SleepLockGuard<'l, T: ?Sized> {
    lock: &'l SleepLock<T>,
}

impl<T: ?Sized> Deref for SleepLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard's task owns the lock: no other reference to
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
