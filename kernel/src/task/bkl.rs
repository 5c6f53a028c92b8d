//! The big kernel lock: the interim exclusion that lets user tasks run on
//! every core while the kernel keeps its uniprocessor invariants.
//!
//! A core holds it whenever it runs kernel code on a task's behalf: it
//! takes it on every entry from EL0 (system call, fault, interrupt) and
//! gives it up on the return to EL0; it holds it across a task switch
//! (the task switched to continues under it), in kernel threads and in
//! the idle loop's checks, and gives it up only while it idles in `WFI`.
//! So exactly one core at a time runs the kernel, which stays what it was
//! on one CPU: nothing runs between a check and a block, spin locks are
//! never contended, a task switched out has finished switching before
//! another core can pick it. User code runs on all cores in parallel.
//!
//! It is held by a core, not a task, and nests: an interrupt taken by a
//! core that holds it (a kernel thread runs with IRQs unmasked, pause
//! points take pending interrupts) counts one level deeper instead of
//! waiting for itself. A ticket lock: cores get it in the order they
//! asked. A core waits for it with IRQs masked, so its holder must never
//! wait for another core to take an interrupt (SGIs are handled without
//! it; [`crate::smp::call_on`] gives it up while it waits).
//!
//! A waiting core sleeps in `WFI` rather than spinning, and the release
//! wakes the core whose turn it is with an SGI of its own (`Ipi::Turn`),
//! the one interrupt its priority mask lets through meanwhile
//! ([`smp::sleep_until_turn`]): spinning cores would take the host's time
//! from the holder under an emulator with fewer host cores than guest
//! ones, and a holder preempted on the host makes every other core wait a
//! host time slice. (It used to spin while another interrupt was pending,
//! which a `WFI` does not sleep through: with a fork bomb's timers and
//! reschedule SGIs pending nearly always, three spinning cores starved
//! the fourth, the holder, on a loaded host: minutes without progress.
//! An interrupt handler drops its interrupt's priority before it waits,
//! so the SGI is signalled.)

use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use aspen_mm::asid::MAX_CPUS;

use crate::arch::cpu;
use crate::smp;

/// No core holds the lock.
const NOBODY: usize = usize::MAX;

struct BigKernelLock {
    /// The next ticket to hand out.
    next: AtomicU32,
    /// The ticket that holds the lock.
    serving: AtomicU32,
    /// The core holding it ([`NOBODY`] when free): a core asks whether it
    /// holds it already (only it can make that true or false).
    owner: AtomicUsize,
    /// The ticket each core waits with ([`NO_TICKET`]: none), for the
    /// release to find whom to wake.
    waiting: [AtomicU64; MAX_CPUS],
}

/// A core waits for no ticket.
const NO_TICKET: u64 = u64::MAX;

static BKL: BigKernelLock = BigKernelLock {
    next: AtomicU32::new(0),
    serving: AtomicU32::new(0),
    owner: AtomicUsize::new(NOBODY),
    waiting: [const { AtomicU64::new(NO_TICKET) }; MAX_CPUS],
};

/// Takes the lock for the calling core (once more if it holds it). IRQs
/// must be masked: an interrupt between taking it and recording the owner
/// would wait for itself.
#[inline]
pub fn acquire() {
    let cpu = smp::this_cpu();
    let (me, depth) = (cpu.id, &cpu.bkl_depth);
    if BKL.owner.load(Ordering::Relaxed) != me {
        take(me);
    }
    depth.store(depth.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// [`acquire`] on an entry from EL0, where the core holds no level (the
/// return to EL0 gave up its only one): it need not ask whether it holds
/// the lock already, nor read its depth.
#[inline]
pub fn acquire_from_user() {
    let cpu = smp::this_cpu();
    debug_assert!(cpu.bkl_depth.load(Ordering::Relaxed) == 0, "core {} enters from EL0 holding the lock", cpu.id);
    take(cpu.id);
    cpu.bkl_depth.store(1, Ordering::Relaxed);
}

/// Waits for the calling core's turn and records it as the owner.
#[inline(always)]
fn take(me: usize) {
    let ticket = BKL.next.fetch_add(1, Ordering::Relaxed);
    if BKL.serving.load(Ordering::Acquire) != ticket {
        wait_for_turn(me, ticket);
    }
    BKL.owner.store(me, Ordering::Relaxed);
}

/// Gives back one level of the calling core's hold; the last one frees
/// the lock for the next core in line.
#[inline]
pub fn release() {
    let cpu = smp::this_cpu();
    let (me, depth) = (cpu.id, &cpu.bkl_depth);
    let held = depth.load(Ordering::Relaxed);
    debug_assert!(held > 0 && BKL.owner.load(Ordering::Relaxed) == me, "core {me} releases a lock it does not hold");
    depth.store(held - 1, Ordering::Relaxed);
    if held == 1 {
        give_up();
    }
}

/// [`release`] on the return to EL0, where the core holds exactly one
/// level (a switch happens at depth 1, and nothing nested is left).
#[inline]
pub fn release_to_user() {
    let cpu = smp::this_cpu();
    debug_assert!(
        cpu.bkl_depth.load(Ordering::Relaxed) == 1 && BKL.owner.load(Ordering::Relaxed) == cpu.id,
        "core {} returns to EL0 without holding the lock once",
        cpu.id
    );
    cpu.bkl_depth.store(0, Ordering::Relaxed);
    give_up();
}

/// Frees the lock for the next core in line (the caller's last level).
#[inline(always)]
fn give_up() {
    BKL.owner.store(NOBODY, Ordering::Relaxed);
    let next = BKL.serving.load(Ordering::Relaxed).wrapping_add(1);
    BKL.serving.store(next, Ordering::Release);
    // Against `wait_for_turn`'s fence: either the waiter sees the new
    // turn, or this sees it waiting and wakes it.
    fence(Ordering::SeqCst);
    // Nobody took the next ticket yet: a core that takes it now finds its
    // turn come.
    if BKL.next.load(Ordering::Relaxed) != next {
        wake_next(next);
    }
}

/// Wakes the core waiting for ticket `next`, if it sleeps.
#[cold]
#[inline(never)]
fn wake_next(next: u32) {
    let waiter = (0..MAX_CPUS).find(|&n| BKL.waiting[n].load(Ordering::Relaxed) == u64::from(next));
    if let Some(n) = waiter {
        smp::send_ipi(n, smp::Ipi::Turn);
    }
}

/// Waits, with IRQs masked, until `ticket` is served: asleep in `WFI`,
/// woken by the release's Turn SGI alone (other interrupts stay pending
/// until the lock is had).
#[cold]
#[inline(never)]
fn wait_for_turn(me: usize, ticket: u32) {
    BKL.waiting[me].store(u64::from(ticket), Ordering::Relaxed);
    // Against `release`'s fence.
    fence(Ordering::SeqCst);
    smp::sleep_until_turn(|| BKL.serving.load(Ordering::Acquire) == ticket);
    BKL.waiting[me].store(NO_TICKET, Ordering::Relaxed);
}

/// Whether another core waits for the lock (the caller holds it).
#[inline]
pub fn contended() -> bool {
    BKL.next.load(Ordering::Relaxed) != BKL.serving.load(Ordering::Relaxed).wrapping_add(1)
}

/// Lets the cores waiting for the lock have it, then takes it back: at a
/// pause point of a long kernel pass, where a uniprocessor kernel could
/// switch to another task (nothing half done is visible, no spin lock is
/// held), so that the other cores' system calls and interrupts do not wait
/// for the whole pass.
pub fn let_others_in() {
    if held() && contended() {
        without(|| {});
    }
}

/// Whether core `n` waits for the lock (for tests).
pub fn waits(n: usize) -> bool {
    BKL.waiting[n].load(Ordering::Relaxed) != NO_TICKET
}

/// Whether the calling core holds the lock.
pub fn held() -> bool {
    BKL.owner.load(Ordering::Relaxed) == smp::this_cpu_id()
}

/// How many levels the calling core holds, for assertions (a switch
/// happens at depth 1: nothing nested switches).
pub fn depth() -> u32 {
    smp::this_cpu().bkl_depth.load(Ordering::Relaxed)
}

/// Runs `wait` with the calling core's whole hold given up (and taken back
/// after, as deep as before): for a wait on another core that may itself
/// be waiting for the lock with IRQs masked. The caller holds no spin lock
/// and expects other cores to run kernel code meanwhile, as at a pause
/// point. `wait` runs with the caller's IRQ mask.
pub fn without<R>(wait: impl FnOnce() -> R) -> R {
    let irq = cpu::disable_irqs();
    let levels = if held() { depth() } else { 0 };
    for _ in 0..levels {
        release();
    }
    cpu::restore_irqs(irq);
    let result = wait();
    let irq = cpu::disable_irqs();
    for _ in 0..levels {
        acquire();
    }
    cpu::restore_irqs(irq);
    result
}
