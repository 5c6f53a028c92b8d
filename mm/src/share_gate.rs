//! The gate between the faults that resolve with an address space shared
//! ([`crate::aspace::AddressSpace::fault_shared`]) and the holder of the
//! space's lock, which closes it to change the space.
//!
//! One word: the count of sharers inside, and two flags the holder sets.
//! [`Hold::Exclusive`]: the holder may pause and switch with the gate
//! closed, so a sharer refuses at once (and takes the lock instead).
//! [`Hold::Editing`]: a short stretch with no pause point, so a sharer
//! waits a little for it to end, then refuses. Closing sets the flag,
//! then waits for the sharers inside to leave; a sharer never waits for
//! anything the holder has, so that wait is short.
//!
//! Orderings: a sharer enters with an acquiring compare-and-swap and
//! leaves with a releasing decrement; the holder closes with an acquiring
//! read-modify-write and watches the count with acquiring loads, and
//! opens with a releasing one. So whatever a sharer did inside happens
//! before the holder's changes, and those happen before the next
//! sharer's entry (model-checked with loom: `make loom`).

use sync::{spin_loop, AtomicU32, Ordering};

/// The atomics and the spin hint, from `core` in the kernel and from
/// `loom` when the unit tests are built to model-check the gate
/// (`RUSTFLAGS="--cfg loom"`).
mod sync {
    #[cfg(all(test, loom))]
    pub(super) use loom::sync::atomic::{AtomicU32, Ordering};
    #[cfg(all(test, loom))]
    pub(super) use loom::thread::yield_now as spin_loop;

    #[cfg(not(all(test, loom)))]
    pub(super) use core::hint::spin_loop;
    #[cfg(not(all(test, loom)))]
    pub(super) use core::sync::atomic::{AtomicU32, Ordering};
}

/// Set while the holder keeps the space for a change that may pause.
const EXCLUSIVE: u32 = 1 << 31;
/// Set while the holder changes the space in a short stretch.
const EDITING: u32 = 1 << 30;
/// The count of sharers inside.
const SHARERS: u32 = EDITING - 1;

/// How the holder of the space's lock keeps the sharers out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// For a change that may pause: sharers refuse at once.
    Exclusive,
    /// For a short stretch with no pause point: sharers wait a little.
    Editing,
}

impl Hold {
    fn flag(self) -> u32 {
        match self {
            Self::Exclusive => EXCLUSIVE,
            Self::Editing => EDITING,
        }
    }
}

/// The gate of one address space.
#[derive(Debug)]
pub struct ShareGate {
    word: AtomicU32,
}

/// A sharer inside the gate; it leaves when this drops.
#[derive(Debug)]
pub struct Shared<'g> {
    gate: &'g ShareGate,
}

impl Drop for Shared<'_> {
    fn drop(&mut self) {
        self.gate.word.fetch_sub(1, Ordering::Release);
    }
}

impl Default for ShareGate {
    fn default() -> Self {
        Self::new()
    }
}

impl ShareGate {
    /// An open gate with nobody inside.
    pub fn new() -> Self {
        Self { word: AtomicU32::new(0) }
    }

    /// Enters as a sharer: `None` while the holder keeps the space
    /// exclusively, or after `spins` looks at an editing stretch that has
    /// not ended (its core may not be running: the lock is the better
    /// wait then).
    #[inline]
    pub fn enter(&self, spins: u32) -> Option<Shared<'_>> {
        let mut word = self.word.load(Ordering::Relaxed);
        let mut looked = 0;
        loop {
            if word & EXCLUSIVE != 0 {
                return None;
            }
            if word & EDITING != 0 {
                looked += 1;
                if looked > spins {
                    return None;
                }
                spin_loop();
                word = self.word.load(Ordering::Relaxed);
                continue;
            }
            debug_assert!(word & SHARERS != SHARERS, "sharer count overflow");
            match self.word.compare_exchange_weak(word, word + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(Shared { gate: self }),
                Err(now) => word = now,
            }
        }
    }

    /// Closes the gate for the holder of the space's lock (the only one
    /// who closes it, and only while it is open), then waits for the
    /// sharers inside to leave.
    pub fn close(&self, hold: Hold) {
        let before = self.word.fetch_or(hold.flag(), Ordering::Acquire);
        debug_assert!(before & (EXCLUSIVE | EDITING) == 0, "the gate closed twice");
        if before & SHARERS != 0 {
            while self.word.load(Ordering::Acquire) & SHARERS != 0 {
                spin_loop();
            }
        }
    }

    /// Opens the gate the holder closed with `hold`.
    pub fn open(&self, hold: Hold) {
        self.word.fetch_and(!hold.flag(), Ordering::Release);
    }

    /// How many sharers are inside (for tests and assertions).
    pub fn sharers(&self) -> u32 {
        self.word.load(Ordering::Relaxed) & SHARERS
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn sharers_enter_an_open_gate_and_leave() {
        let gate = ShareGate::new();
        let (a, b) = (gate.enter(0), gate.enter(0));
        assert!(a.is_some() && b.is_some());
        assert_eq!(gate.sharers(), 2);
        drop((a, b));
        assert_eq!(gate.sharers(), 0);
    }

    #[test]
    fn a_closed_gate_refuses_sharers() {
        let gate = ShareGate::new();
        for hold in [Hold::Exclusive, Hold::Editing] {
            gate.close(hold);
            assert!(gate.enter(1000).is_none(), "{hold:?}");
            gate.open(hold);
            assert!(gate.enter(0).is_some(), "{hold:?} reopened");
        }
    }

    #[test]
    fn closing_waits_for_the_sharers_inside() {
        let gate = ShareGate::new();
        let left = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let inside = gate.enter(0).unwrap();
            s.spawn(|| {
                gate.close(Hold::Exclusive);
                assert!(left.load(std::sync::atomic::Ordering::SeqCst), "closed with a sharer inside");
                gate.open(Hold::Exclusive);
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            left.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(inside);
        });
    }

    #[test]
    fn a_sharer_waits_out_a_short_edit() {
        let gate = ShareGate::new();
        gate.close(Hold::Editing);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| gate.enter(u32::MAX).is_some());
            std::thread::sleep(std::time::Duration::from_millis(5));
            gate.open(Hold::Editing);
            assert!(waiter.join().unwrap(), "the sharer gave up on an edit that ended");
        });
    }
}

/// Every interleaving of sharers and the holder: the holder's changes
/// never overlap a sharer's use of the space (loom reports a race on the
/// cell otherwise), and each sharer either entered or was refused.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    /// The space: read by sharers, written by the holder.
    struct Space {
        gate: ShareGate,
        data: UnsafeCell<u64>,
    }

    // SAFETY: the gate orders every access (what loom checks).
    unsafe impl Sync for Space {}

    fn sharer(space: &Space) -> Option<u64> {
        let inside = space.gate.enter(1)?;
        // SAFETY: inside the gate: only reads, beside other sharers.
        let value = space.data.with(|p| unsafe { *p });
        drop(inside);
        Some(value)
    }

    fn holder(space: &Space, hold: Hold, value: u64) {
        space.gate.close(hold);
        // SAFETY: the gate is closed and empty: the holder alone.
        space.data.with_mut(|p| unsafe { *p = value });
        space.gate.open(hold);
    }

    #[test]
    fn a_holder_and_two_sharers() {
        for hold in [Hold::Exclusive, Hold::Editing] {
            loom::model(move || {
                let space = Arc::new(Space { gate: ShareGate::new(), data: UnsafeCell::new(0) });
                let sharers: std::vec::Vec<_> = (0..2)
                    .map(|_| {
                        let space = Arc::clone(&space);
                        thread::spawn(move || sharer(&space))
                    })
                    .collect();
                holder(&space, hold, 1);
                for s in sharers {
                    if let Some(value) = s.join().unwrap() {
                        assert!(value == 0 || value == 1);
                    }
                }
                assert_eq!(space.gate.sharers(), 0);
            });
        }
    }

    #[test]
    fn two_holders_in_turn_and_a_sharer() {
        loom::model(|| {
            let space = Arc::new(Space { gate: ShareGate::new(), data: UnsafeCell::new(0) });
            let s = {
                let space = Arc::clone(&space);
                thread::spawn(move || sharer(&space))
            };
            // The space's sleeping lock makes holders take turns.
            holder(&space, Hold::Editing, 1);
            holder(&space, Hold::Exclusive, 2);
            if let Some(value) = s.join().unwrap() {
                assert!(value <= 2);
            }
        });
    }
}
