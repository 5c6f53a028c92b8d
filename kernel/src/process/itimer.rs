//! `ITIMER_REAL`: a process's real-time interval timer (`setitimer`,
//! `getitimer`, and glibc's `alarm` on top), on the kernel's timer queue.
//! It sends `SIGALRM` (`SI_KERNEL`) to the process when it expires and
//! reloads itself with its interval, skipping whole intervals that passed
//! unseen (as Linux's `hrtimer_forward`).
//!
//! `ITIMER_VIRTUAL` and `ITIMER_PROF` count CPU time, which Aspen does not
//! account per process yet: they are `EINVAL`.

use alloc::sync::Arc;

use aspen_abi::signal::{SigInfo, Signal, SI_KERNEL};
use aspen_abi::syscall::{Itimerval, Timeval, ITIMER_REAL};
use aspen_mm::errno::Errno;

use super::Process;
use crate::arch::timer;
use crate::task::timer::{Expiry, Slot, TimerId};

/// The timer of one process.
#[derive(Default)]
pub struct RealTimer {
    /// Its place on the timer queue, made when it is first armed.
    slot: Option<Slot>,
    /// Its reload interval in counter ticks (0: once).
    interval: u64,
}

fn ticks_of(value: Timeval) -> u64 {
    let nanos = u128::from(value.as_nanos());
    let ticks = (nanos * u128::from(timer::frequency())).div_ceil(1_000_000_000);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

fn timeval_of(ticks: u64) -> Timeval {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(timer::frequency());
    Timeval::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl RealTimer {
    /// What `getitimer` reports at `now`: an armed timer never shows zero
    /// left (one microsecond at least, as Linux).
    fn value(&self, now: u64) -> Itimerval {
        let value = match self.slot.as_ref().and_then(Slot::armed) {
            None => Timeval::default(),
            Some((deadline, _)) => {
                let left = timeval_of(deadline.saturating_sub(now));
                if left == Timeval::default() {
                    Timeval { tv_sec: 0, tv_usec: 1 }
                } else {
                    left
                }
            }
        };
        Itimerval { interval: timeval_of(self.interval), value }
    }

    /// Takes it off the timer queue.
    fn disarm(&mut self) {
        if let Some(slot) = &mut self.slot {
            slot.disarm();
        }
    }
}

impl Expiry for Process {
    fn expired(&self, id: TimerId, now: u64) {
        let Some(me) = Process::get(self.pid).filter(|p| core::ptr::eq(p.as_ref(), self)) else { return };
        if !real_timer_expired(&me, id, now) {
            super::posix_timer::expired(&me, id, now);
        }
    }
}

/// The timer queue's entry `id` expired at `now`: whether it was the
/// process's `ITIMER_REAL` (then it has sent `SIGALRM` and been reloaded).
fn real_timer_expired(me: &Arc<Process>, id: TimerId, now: u64) -> bool {
    {
        let mut timer = me.real_timer.lock();
        let interval = timer.interval;
        let Some(slot) = &mut timer.slot else { return false };
        let Some(deadline) = slot.take_expired(id) else { return false };
        if let Some(missed) = now.saturating_sub(deadline).checked_div(interval) {
            let next = deadline.saturating_add((missed + 1).saturating_mul(interval));
            let target: Arc<dyn Expiry> = me.clone();
            slot.arm(next, &target);
        }
    }
    let info = SigInfo::sent(Signal::Alrm, SI_KERNEL, 0, 0);
    // A process that ended in the meantime takes no signal.
    let _ = me.send(Signal::Alrm.into(), info);
    true
}

/// `setitimer(which, new)`: the previous setting. `ENOMEM` (nothing
/// changed) when the timer is armed for the first time and the timer
/// queue cannot grow to hold it.
pub fn set(process: &Arc<Process>, which: u64, new: Itimerval) -> Result<Itimerval, Errno> {
    if which != ITIMER_REAL {
        return Err(Errno::EINVAL);
    }
    let now = timer::ticks();
    let mut timer = process.real_timer.lock();
    let arming = new.value != Timeval::default();
    if arming && timer.slot.is_none() {
        timer.slot = Some(Slot::new()?);
    }
    let old = timer.value(now);
    timer.disarm();
    timer.interval = ticks_of(new.interval);
    if let (true, Some(slot)) = (arming, &mut timer.slot) {
        let deadline = now.saturating_add(ticks_of(new.value).max(1));
        let target: Arc<dyn Expiry> = process.clone();
        slot.arm(deadline, &target);
    }
    Ok(old)
}

/// `getitimer(which)`.
pub fn get(process: &Process, which: u64) -> Result<Itimerval, Errno> {
    if which != ITIMER_REAL {
        return Err(Errno::EINVAL);
    }
    Ok(process.real_timer.lock().value(timer::ticks()))
}

/// Disarms the process's timer and gives its slot back when it ends.
pub fn release(process: &Process) {
    process.real_timer.lock().slot = None;
}
