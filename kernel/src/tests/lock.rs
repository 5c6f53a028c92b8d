//! Tests of the sleeping lock (`task::lock::SleepLock`): mutual exclusion
//! across switches, the level lent to the holder, hand-over in order, and
//! no lost hand-over when a waiter is woken for another reason.

use alloc::vec::Vec;

use super::sched::{join, spawn};
use crate::task::lock::SleepLock;
use crate::task::sched::{self, DEFAULT_PRIORITY};
use crate::task::TaskState;
use crate::{check, check_eq, kernel_test};

static COUNTER: SleepLock<usize> = SleepLock::new(0);
const INCREMENTS: usize = 200;

/// Increments COUNTER, switching away between the read and the write.
fn increment_slowly(_: usize) {
    for _ in 0..INCREMENTS {
        let mut value = COUNTER.lock();
        let seen = *value;
        sched::yield_now();
        *value = seen + 1;
    }
}

kernel_test!(
    fn a_sleeping_lock_excludes_across_switches() -> TestResult {
        *COUNTER.lock() = 0;
        let tasks = [
            spawn(DEFAULT_PRIORITY, increment_slowly, 0)?,
            spawn(DEFAULT_PRIORITY, increment_slowly, 1)?,
            spawn(DEFAULT_PRIORITY, increment_slowly, 2)?,
        ];
        for task in &tasks {
            join(task)?;
        }
        check_eq!(*COUNTER.lock(), 3 * INCREMENTS);
        check!(!COUNTER.is_locked());
        Ok(())
    }
);

static SHARED: SleepLock<()> = SleepLock::new(());
static ORDER: spin::Mutex<Vec<usize>> = spin::Mutex::new(Vec::new());

/// Takes SHARED, then records `tag`.
fn lock_and_record(tag: usize) {
    let guard = SHARED.lock();
    ORDER.lock().push(tag);
    drop(guard);
}

fn record(tag: usize) {
    ORDER.lock().push(tag);
}

kernel_test!(
    fn the_holder_runs_at_its_best_waiters_level_until_it_unlocks() -> TestResult {
        ORDER.lock().clear();
        let me = sched::current();
        let base = me.priority();
        let guard = SHARED.lock();
        let high = spawn(base - 4, lock_and_record, 1)?;
        sched::yield_now();
        check_eq!(high.state(), TaskState::Blocked);
        check!(me.priority() == base - 4, "the holder runs at {}, not at its waiter's level", me.priority());
        // A task between the two must not run while the waiter waits.
        let middle = spawn(base - 2, record, 2)?;
        sched::yield_now();
        check!(ORDER.lock().is_empty(), "the middle task ran before the holder unlocked: {:?}", *ORDER.lock());
        drop(guard);
        check!(me.priority() == base, "the holder still runs at {} after unlocking", me.priority());
        join(&high)?;
        join(&middle)?;
        check_eq!(*ORDER.lock(), alloc::vec![1, 2]);
        check!(!SHARED.is_locked());
        Ok(())
    }
);

kernel_test!(
    fn waiters_get_the_lock_in_order_even_when_woken_for_another_reason() -> TestResult {
        ORDER.lock().clear();
        let base = sched::current().priority();
        let guard = SHARED.lock();
        let first = spawn(base, lock_and_record, 1)?;
        let second = spawn(base, lock_and_record, 2)?;
        sched::yield_now();
        check_eq!(first.state(), TaskState::Blocked);
        check_eq!(second.state(), TaskState::Blocked);
        // A wake-up that is no hand-over (a signal's): it waits again.
        sched::wake(&second);
        sched::yield_now();
        check!(ORDER.lock().is_empty(), "a waiter went on without the lock: {:?}", *ORDER.lock());
        check_eq!(second.state(), TaskState::Blocked);
        drop(guard);
        join(&first)?;
        join(&second)?;
        check_eq!(*ORDER.lock(), alloc::vec![1, 2]);
        check!(!SHARED.is_locked());
        Ok(())
    }
);
