//! Tests of kernel threads and the scheduler: round robin, priorities,
//! sleeping, stack guards, and stacks freed at exit.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::probe::probe;
use crate::arch::timer;
use crate::memory::frames;
use crate::task::sched::{self, DEFAULT_PRIORITY};
use crate::task::{Task, TaskState};
use crate::{check, check_eq, kernel_test};

/// Runs `entry(arg)` in a new kernel thread of `priority` and returns it.
pub(super) fn spawn(priority: u8, entry: fn(usize), arg: usize) -> Result<Arc<Task>, alloc::string::String> {
    let task = Task::new_kernel(priority, entry, arg).map_err(|e| alloc::format!("{e:?}"))?;
    sched::make_ready(task.clone());
    Ok(task)
}

/// Sleeps until `task` has exited, for at most one second.
pub(super) fn join(task: &Arc<Task>) -> Result<(), alloc::string::String> {
    let deadline = timer::ticks() + timer::frequency();
    while !matches!(task.state(), TaskState::Exited(_)) {
        if timer::ticks() > deadline {
            return Err(alloc::format!("thread {} did not finish: {:?}", task.pid, task.state()));
        }
        sched::sleep_ticks(timer::frequency() / 1000);
    }
    Ok(())
}

static TURN: AtomicUsize = AtomicUsize::new(0);
static ROUNDS: usize = 100;

/// Takes strict turns with its partner: thread `me` (0 or 1) waits until
/// TURN is even (0) or odd (1), then increments it.
fn ping_pong(me: usize) {
    for _ in 0..ROUNDS {
        while TURN.load(Ordering::Acquire) % 2 != me {
            sched::yield_now();
        }
        TURN.fetch_add(1, Ordering::AcqRel);
    }
}

kernel_test!(
    fn threads_alternate_through_yield() -> TestResult {
        TURN.store(0, Ordering::Release);
        let a = spawn(DEFAULT_PRIORITY, ping_pong, 0)?;
        let b = spawn(DEFAULT_PRIORITY, ping_pong, 1)?;
        join(&a)?;
        join(&b)?;
        check_eq!(TURN.load(Ordering::Acquire), 2 * ROUNDS);
        Ok(())
    }
);

kernel_test!(
    fn sleep_lasts_at_least_as_asked_and_not_much_longer() -> TestResult {
        let ask = timer::frequency() / 50; // 20 ms
        let start = timer::ticks();
        sched::sleep_ticks(ask);
        let slept = timer::ticks() - start;
        check!(slept >= ask, "slept {slept} ticks, asked {ask}");
        check!(slept < ask + timer::frequency() / 50, "slept {slept} ticks for {ask}: over 20 ms late");
        Ok(())
    }
);

static ORDER: spin::Mutex<alloc::vec::Vec<usize>> = spin::Mutex::new(alloc::vec::Vec::new());

fn record(tag: usize) {
    ORDER.lock().push(tag);
}

kernel_test!(
    fn better_priority_runs_first() -> TestResult {
        ORDER.lock().clear();
        // Queued low first, high second; both ready when this thread yields
        // by sleeping. High priority must run first.
        let low = spawn(DEFAULT_PRIORITY + 2, record, 2)?;
        let high = spawn(DEFAULT_PRIORITY - 2, record, 1)?;
        join(&high)?;
        join(&low)?;
        check_eq!(*ORDER.lock(), alloc::vec![1, 2]);
        Ok(())
    }
);

kernel_test!(
    fn a_boosted_ready_task_moves_to_its_new_level() -> TestResult {
        ORDER.lock().clear();
        // Both queued at the same level, the first ahead; lending the
        // second a better level moves it ahead, taking it back restores
        // its base level.
        let first = spawn(DEFAULT_PRIORITY + 2, record, 2)?;
        let second = spawn(DEFAULT_PRIORITY + 2, record, 1)?;
        sched::set_boost(&second, DEFAULT_PRIORITY - 2);
        check_eq!(second.priority(), DEFAULT_PRIORITY - 2);
        check_eq!(second.base_priority(), DEFAULT_PRIORITY + 2);
        join(&second)?;
        join(&first)?;
        check_eq!(*ORDER.lock(), alloc::vec![1, 2]);
        sched::set_boost(&second, u8::MAX);
        check_eq!(second.priority(), DEFAULT_PRIORITY + 2);
        Ok(())
    }
);

kernel_test!(
    fn policies_map_to_levels() -> TestResult {
        use aspen_abi::sched::SchedParams;
        let level = |policy, priority| SchedParams::new(policy, priority).map(sched::level_of);
        check_eq!(level(1, 99), Ok(0));
        check_eq!(level(2, 1), Ok(98));
        check_eq!(level(0, 0), Ok(DEFAULT_PRIORITY));
        check_eq!(level(3, 0), Ok(DEFAULT_PRIORITY));
        check_eq!(level(5, 0), Ok((sched::PRIORITIES - 1) as u8));
        Ok(())
    }
);

fn nothing(_: usize) {}

kernel_test!(
    fn stacks_have_guards_and_are_freed_at_exit() -> TestResult {
        let pool = frames::pool();
        // Warm up: the first stacks may allocate the stack area's table pages.
        join(&spawn(DEFAULT_PRIORITY, nothing, 0)?)?;
        let baseline = pool.free_frame_count();
        let mut tasks = alloc::vec::Vec::new();
        for _ in 0..20 {
            tasks.push(spawn(DEFAULT_PRIORITY, nothing, 0)?);
        }
        let guard_probe = {
            let range = crate::task::stack::KernelStack::new().map_err(|e| alloc::format!("{e:?}"))?;
            let below = range.range().start.as_u64() - 8;
            // SAFETY: the read faults (guard page); the probe returns the fault.
            let result = probe(|| unsafe { (below as *const u64).read_volatile() });
            (below, result.is_err())
        };
        check!(guard_probe.1, "the page below a kernel stack ({:#x}) is mapped", guard_probe.0);
        for task in &tasks {
            join(task)?;
        }
        drop(tasks);
        // The last thread's stack is released by the next switch.
        sched::yield_now();
        check_eq!(pool.free_frame_count(), baseline);
        Ok(())
    }
);

kernel_test!(
    fn stack_slots_reuse_the_lowest_and_forget_the_top() -> TestResult {
        use crate::task::stack::Slots;
        // A set of its own (static: it is 8 KiB), not the kernel's.
        static SLOTS: spin::Mutex<Slots> = spin::Mutex::new(Slots::new());
        let mut slots = SLOTS.lock();
        let taken = [slots.take(), slots.take(), slots.take()];
        check!(matches!(taken, [Ok(0), Ok(1), Ok(2)]), "a fresh set of slots handed out {taken:?}");
        // A slot given back is the next one taken.
        slots.give_back(0);
        let reused = slots.take();
        check!(matches!(reused, Ok(0)), "the freed lowest slot was not reused: {reused:?}");
        // The two top slots given back, the higher one last: both are
        // forgotten, so the next slot taken is 1 again.
        slots.give_back(1);
        slots.give_back(2);
        let next = slots.take();
        check!(matches!(next, Ok(1)), "after the top slots came back, took {next:?}");
        // A slot given back below one in use stays free until taken.
        slots.give_back(0);
        let lowest = slots.take();
        check!(matches!(lowest, Ok(0)), "took {lowest:?} with slot 0 free");
        slots.give_back(1);
        slots.give_back(0);
        Ok(())
    }
);
