//! Tests of the secondary cores: every core the board has came up (or as
//! many as `maxcpus=` allows), answers inter-processor interrupts, runs
//! code sent to it, takes its own timer's interrupt, and runs tasks.

use core::sync::atomic::{AtomicUsize, Ordering};

use aspen_mm::asid::MAX_CPUS;

use crate::arch::timer;
use crate::cmdline::CommandLine;
use crate::smp::{self, Ipi};
use crate::{check, check_eq, kernel_test};

/// Spins until `done`, for at most a second; whether it held. Without
/// the big kernel lock: the core waited for may need it (its timer's
/// handler) before it can take what it is sent.
fn within_a_second(done: impl Fn() -> bool) -> bool {
    let deadline = timer::ticks() + timer::frequency();
    crate::task::bkl::without(|| {
        while !done() {
            if timer::ticks() > deadline {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    })
}

/// The online cores other than the caller (core 0).
fn secondaries() -> impl Iterator<Item = usize> {
    (1..MAX_CPUS).filter(|&n| smp::online_mask() & (1 << n) != 0)
}

kernel_test!(
    fn every_core_the_board_has_is_started_and_online() -> TestResult {
        // The GIC counts the cores independently of how they were found.
        let cores = (smp::gic_cpu_interfaces() as usize).min(MAX_CPUS);
        check_eq!(smp::present_mask().count_ones() as usize, cores);
        let max_cpus = CommandLine::parse(crate::boot_info().bootargs).max_cpus.unwrap_or(MAX_CPUS);
        check_eq!(smp::started_mask().count_ones() as usize, cores.min(max_cpus));
        check_eq!(smp::online_mask(), smp::started_mask());
        check_eq!(smp::this_cpu_id(), 0);
        Ok(())
    }
);

kernel_test!(
    fn each_secondary_answers_a_ping_and_a_broadcast() -> TestResult {
        for n in secondaries() {
            let before = smp::cpu(n).pings();
            smp::send_ipi(n, Ipi::Ping);
            check!(within_a_second(|| smp::cpu(n).pings() > before), "core {n} did not take its ping");
        }
        let before: [u64; MAX_CPUS] = core::array::from_fn(|n| smp::cpu(n).pings());
        smp::send_ipi_others(Ipi::Ping);
        for n in secondaries() {
            check!(within_a_second(|| smp::cpu(n).pings() > before[n]), "core {n} missed the broadcast");
        }
        check_eq!(smp::cpu(0).pings(), before[0]);
        Ok(())
    }
);

/// Which core ran [`record_core`] last.
static RAN_ON: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The running task of the core that ran [`record_core`] last.
static HAD_TASK: AtomicUsize = AtomicUsize::new(0);

fn record_core(_: usize) {
    HAD_TASK.store(crate::task::sched::current_ptr() as usize, Ordering::Release);
    RAN_ON.store(smp::this_cpu_id(), Ordering::Release);
}

fn ping_core(target: usize) {
    smp::send_ipi(target, Ipi::Ping);
}

kernel_test!(
    fn a_call_runs_on_the_core_it_is_sent_to_which_can_interrupt_core_0() -> TestResult {
        for n in secondaries() {
            check_eq!(smp::call_on(n, record_core, 0), Ok(()));
            check_eq!(RAN_ON.load(Ordering::Acquire), n);
            // Each core has its own current task: its idle task here.
            let theirs = HAD_TASK.load(Ordering::Acquire);
            check!(theirs != 0, "core {n} has no running task");
            check!(theirs != crate::task::sched::current_ptr() as usize, "core {n} runs this thread");
            // This thread runs with IRQs unmasked: core 0 takes the SGI.
            let before = smp::cpu(0).pings();
            check_eq!(smp::call_on(n, ping_core, 0), Ok(()));
            check!(within_a_second(|| smp::cpu(0).pings() > before), "core 0 missed core {n}'s ping");
        }
        check_eq!(smp::call_on(0, record_core, 0), Ok(()));
        check_eq!(RAN_ON.load(Ordering::Acquire), 0);
        check_eq!(HAD_TASK.load(Ordering::Acquire), crate::task::sched::current_ptr() as usize);
        check_eq!(smp::call_on(MAX_CPUS, record_core, 0), Err(smp::CallError::Offline));
        Ok(())
    }
);

fn arm_timer(ticks: usize) {
    timer::arm_oneshot(ticks as u64);
}

kernel_test!(
    fn each_secondary_takes_its_own_timer_interrupt() -> TestResult {
        let millisecond = (timer::frequency() / 1000) as usize;
        for n in secondaries() {
            let before = smp::cpu(n).local_timer_irqs();
            check_eq!(smp::call_on(n, arm_timer, millisecond), Ok(()));
            check!(within_a_second(|| smp::cpu(n).local_timer_irqs() > before), "core {n}'s timer did not fire");
            // One-shot: it is stopped after firing.
            let after = smp::cpu(n).local_timer_irqs();
            let settle = timer::ticks() + 3 * millisecond as u64;
            while timer::ticks() < settle {
                core::hint::spin_loop();
            }
            check_eq!(smp::cpu(n).local_timer_irqs(), after);
        }
        Ok(())
    }
);

/// Spins for `ms` milliseconds, keeping whatever the caller holds.
fn spin_ms(ms: u64) {
    let until = timer::ticks() + timer::frequency() * ms / 1000;
    while timer::ticks() < until {
        core::hint::spin_loop();
    }
}

kernel_test!(
    fn a_core_waiting_for_the_big_kernel_lock_sleeps_through_other_interrupts() -> TestResult {
        let millisecond = (timer::frequency() / 1000) as usize;
        for n in secondaries() {
            // Its timer's handler will wait for the lock this thread holds.
            check_eq!(smp::call_on(n, arm_timer, 20 * millisecond), Ok(()));
            let deadline = timer::ticks() + timer::frequency();
            while !crate::task::bkl::waits(n) && timer::ticks() < deadline {
                core::hint::spin_loop();
            }
            check!(crate::task::bkl::waits(n), "core {n} does not wait for the big kernel lock");
            // An SGI that stays pending while it waits with IRQs masked: a
            // `WFI` does not sleep through it, so a wait that is woken by
            // any pending interrupt spins on it (a fork bomb's timers and
            // SGIs had three cores spin so, starving the holder's).
            let pings = smp::cpu(n).pings();
            smp::send_ipi(n, Ipi::Ping);
            let wakeups = smp::cpu(n).turn_wakeups();
            spin_ms(20);
            let woke = smp::cpu(n).turn_wakeups() - wakeups;
            check!(woke <= 1, "core {n} woke {woke} times in 20 ms waiting for the lock");
            check!(crate::task::bkl::waits(n), "core {n} stopped waiting for a lock it cannot have");
            // Its turn: it takes the lock, then the ping.
            check!(within_a_second(|| smp::cpu(n).pings() > pings), "core {n} missed its ping");
        }
        Ok(())
    }
);

kernel_test!(
    fn maxcpus_on_the_command_line_limits_the_cores() -> TestResult {
        check_eq!(CommandLine::parse("maxcpus=2").max_cpus, Some(2));
        check_eq!(CommandLine::parse("quiet maxcpus=0 -- x").max_cpus, Some(1));
        check_eq!(CommandLine::parse("maxcpus=two").max_cpus, None);
        check_eq!(CommandLine::parse("").max_cpus, None);
        Ok(())
    }
);
