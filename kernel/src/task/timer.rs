//! Kernel timers: things to do at a time (a counter value), kept by
//! deadline. The timer interrupt runs what is due ([`expire`]) and the
//! one-shot timer is armed for the earliest of them, the scheduler's
//! sleepers and the end of the time slice; arming a timer earlier than
//! what the hardware timer waits for brings the interrupt forward.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use crate::arch::timer;

/// What a timer does when it expires: runs from the timer interrupt, with
/// no timer lock held (it may arm timers and wake tasks).
pub trait Expiry: Send + Sync {
    /// The timer armed with `id` expired at `now`.
    fn expired(&self, id: TimerId, now: u64);
}

/// A timer armed with [`arm`], to [`cancel`] it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerId(u64);

static TIMERS: Mutex<BTreeMap<(u64, TimerId), Weak<dyn Expiry>>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Runs `target.expired` at counter value `deadline` (at once if that has
/// passed) unless cancelled first or `target` is gone by then.
pub fn arm(deadline: u64, target: &Arc<dyn Expiry>) -> TimerId {
    let id = TimerId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
    TIMERS.lock().insert((deadline, id), Arc::downgrade(target));
    timer::fire_by(deadline);
    id
}

/// Disarms the timer `id` armed for `deadline`; whether it was still armed.
pub fn cancel(deadline: u64, id: TimerId) -> bool {
    TIMERS.lock().remove(&(deadline, id)).is_some()
}

/// Runs every timer due at `now`; returns the next deadline, if any.
pub fn expire(now: u64) -> Option<u64> {
    let due: Vec<(TimerId, Weak<dyn Expiry>)> = {
        let mut timers = TIMERS.lock();
        let later = timers.split_off(&(now.saturating_add(1), TimerId(0)));
        let due = core::mem::replace(&mut *timers, later);
        due.into_iter().map(|((_, id), target)| (id, target)).collect()
    };
    for (id, target) in due {
        if let Some(target) = target.upgrade() {
            target.expired(id, now);
        }
    }
    TIMERS.lock().first_key_value().map(|((deadline, _), _)| *deadline)
}
