//! The load averages without a periodic tick: the count of runnable tasks
//! changes only under the scheduler's lock, which calls
//! [`LoadTracker::catch_up`] before each change (and a reader before it
//! reads). Every sample time passed since the last call saw the count that
//! held since then, so the samples slept through are taken at once, with
//! that count, exactly as Linux's periodic samples would have been.

use aspen_abi::sysinfo::{LoadAverages, LOAD_FREQ_MS};

use crate::arch::timer;

pub struct LoadTracker {
    pub averages: LoadAverages,
    /// The counter value of the next sample (0: not started).
    next_sample: u64,
    /// Counter ticks between samples (0: not started).
    period: u64,
}

impl LoadTracker {
    pub const fn new() -> Self {
        Self { averages: LoadAverages([0; 3]), next_sample: 0, period: 0 }
    }

    /// Takes the samples due by `now`, with `active` tasks runnable since
    /// the last call.
    pub fn catch_up(&mut self, now: u64, active: u64) {
        if now < self.next_sample {
            return;
        }
        if self.period == 0 {
            self.period = (timer::frequency() * LOAD_FREQ_MS / 1000).max(1);
            self.next_sample = now + self.period;
            return;
        }
        let samples = 1 + (now - self.next_sample) / self.period;
        self.averages.sample(active, samples);
        self.next_sample += samples * self.period;
    }
}
