//! The other cores: bringing them up, per-CPU data, inter-processor
//! interrupts.
//!
//! The boot core starts the secondaries once the frame pool, the kernel's
//! table and the interrupt controller are ready ([`start_secondaries`]):
//! PSCI `CPU_ON` or the board's spin table sends each to `boot.s`, which
//! brings it to EL1 with the kernel's table, its own stack and its per-CPU
//! block in `TPIDR_EL1`; [`secondary_main`] installs the vectors, sets up
//! its GIC CPU interface and timer, says it is online, takes the big
//! kernel lock and becomes a core of the scheduler with an idle task of
//! its own: tasks run on every core. Inter-processor interrupts (SGIs:
//! [`Ipi`]) are handled without the big kernel lock (they touch only
//! atomics of the target's block and its timer), so a core that holds it
//! can always reach one that waits for it with IRQs masked.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use aspen_mm::asid::MAX_CPUS;
use aspen_mm::board::CpuStart;
use spin::{Mutex, Once};

use crate::arch::firmware::{self, PsciError};
use crate::arch::{cpu, exception, mmu, smp as arch_smp, timer};
use crate::board::BOARD;
use crate::driver::gic::{Gic, SgiTarget, SGI_COUNT, URGENT_ONLY, URGENT_PRIORITY};
use crate::memory::phys_to_virt;
use crate::task::stack::{KernelStack, StackError};
use crate::task::{bkl, cputime, sched, Task};

/// How long the boot core waits for a started core to say it is online.
const START_TIMEOUT_MS: u64 = 1000;
/// How long [`call_on`] waits for the target to run the function.
const CALL_TIMEOUT_MS: u64 = 1000;

/// The inter-processor interrupts, each an SGI of its own number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Ipi {
    /// Counted in the target's [`PerCpu::pings`]: proof that it answers.
    Ping = 0,
    /// Runs the function [`call_on`] left in the target's block.
    Call = 1,
    /// Stops the target for good, in its interrupt handler (power-off on
    /// boards without firmware to do it, a fatal error).
    Stop = 2,
    /// Wakes the target to look at its reschedule flag (set by the
    /// scheduler) as it leaves the interrupt, and arms its slice's end if
    /// another core asked.
    Reschedule = 3,
    /// Wakes the target from [`sleep_until_turn`] (the big kernel lock's
    /// turn has come); of a higher priority than the others, so that it
    /// alone does.
    Turn = 4,
}

impl Ipi {
    /// Every SGI the kernel uses, to enable on each core.
    pub const ALL: [Ipi; 5] = [Ipi::Ping, Ipi::Call, Ipi::Stop, Ipi::Reschedule, Ipi::Turn];
}

/// A core's own data, reached through `TPIDR_EL1` ([`this_cpu`]). What
/// every trap from EL0 touches lives here rather than in arrays indexed by
/// [`this_cpu_id`], which cost a load of the id and a bounds check each.
pub struct PerCpu {
    /// The core's number (MPIDR affinity 0).
    pub id: usize,
    /// Up and answering interrupts.
    online: AtomicBool,
    /// The task running here (`task::sched` keeps it; null until the core
    /// has its idle task).
    pub running: AtomicPtr<Task>,
    /// A reschedule is pending here (set by any core, under the
    /// scheduler's lock; cleared by the core itself as it schedules).
    pub need_resched: AtomicBool,
    /// How many levels of the big kernel lock this core holds (written
    /// only by this core; `task::bkl`).
    pub bkl_depth: AtomicU32,
    /// Where its CPU time goes (`task::cputime`).
    pub cputime: cputime::Core,
    /// Its `MIDR_EL1` (implementer, part, revision), for `/proc/cpuinfo`.
    midr: AtomicU64,
    /// Its GIC CPU interface as a target mask.
    gic_mask: AtomicU8,
    /// [`Ipi::Ping`]s taken.
    pings: AtomicU64,
    /// Its timer's interrupts taken.
    local_timer_irqs: AtomicU64,
    /// Times it woke in [`sleep_until_turn`].
    turn_wakeups: AtomicU64,
    /// Senders of [`call_on`] to this core, one at a time.
    call_lock: Mutex<()>,
    call_fn: AtomicUsize,
    call_arg: AtomicUsize,
    /// Calls asked (`call_requested`) and run (`call_done`): the target
    /// runs one when they differ.
    call_requested: AtomicU64,
    call_done: AtomicU64,
}

impl PerCpu {
    const fn new(id: usize) -> Self {
        Self {
            id,
            online: AtomicBool::new(false),
            running: AtomicPtr::new(core::ptr::null_mut()),
            need_resched: AtomicBool::new(false),
            bkl_depth: AtomicU32::new(0),
            cputime: cputime::Core::new(),
            midr: AtomicU64::new(0),
            gic_mask: AtomicU8::new(0),
            pings: AtomicU64::new(0),
            local_timer_irqs: AtomicU64::new(0),
            turn_wakeups: AtomicU64::new(0),
            call_lock: Mutex::new(()),
            call_fn: AtomicUsize::new(0),
            call_arg: AtomicUsize::new(0),
            call_requested: AtomicU64::new(0),
            call_done: AtomicU64::new(0),
        }
    }

    /// [`Ipi::Ping`]s this core has taken.
    pub fn pings(&self) -> u64 {
        self.pings.load(Ordering::Acquire)
    }

    /// Interrupts of this core's own timer it has taken.
    pub fn local_timer_irqs(&self) -> u64 {
        self.local_timer_irqs.load(Ordering::Acquire)
    }

    /// How often it woke while it waited for its turn
    /// ([`sleep_until_turn`]): once per turn, not once per interrupt
    /// pending meanwhile.
    pub fn turn_wakeups(&self) -> u64 {
        self.turn_wakeups.load(Ordering::Acquire)
    }

    /// Whether the core is up.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Its `MIDR_EL1`, as it read it when it came up.
    pub fn midr(&self) -> u64 {
        self.midr.load(Ordering::Relaxed)
    }

    /// Marks the calling core (this block's) online from now.
    fn come_online(&self) {
        self.midr.store(cpu::midr(), Ordering::Relaxed);
        self.online.store(true, Ordering::Release);
        ONLINE.fetch_or(1 << self.id, Ordering::AcqRel);
    }
}

static PER_CPU: [PerCpu; MAX_CPUS] = [PerCpu::new(0), PerCpu::new(1), PerCpu::new(2), PerCpu::new(3)];
/// Each secondary's boot and idle stack, made before it starts; it lives
/// as long as the kernel.
static STACKS: [Once<KernelStack>; MAX_CPUS] = [const { Once::new() }; MAX_CPUS];
/// Cores the board has (bit n: core n), found by [`start_secondaries`].
static PRESENT: AtomicU64 = AtomicU64::new(1);
/// Cores up and answering (each block's `online`, as one mask: the
/// scheduler reads it at every wake-up).
static ONLINE: AtomicU64 = AtomicU64::new(0);
/// Cores the kernel tried to start, the boot core included.
static STARTED: AtomicU64 = AtomicU64::new(1);
/// The interrupt controller, as `irq::init` made it.
static GIC: Once<&'static Gic> = Once::new();

/// The per-CPU block of core `cpu`.
pub fn cpu(cpu: usize) -> &'static PerCpu {
    &PER_CPU[cpu]
}

/// The calling core's per-CPU block.
#[inline]
pub fn this_cpu() -> &'static PerCpu {
    let block = arch_smp::per_cpu() as *const PerCpu;
    debug_assert!(!block.is_null(), "per-CPU block used before init_boot_cpu");
    // SAFETY: TPIDR_EL1 holds the address of an element of `PER_CPU`
    // (set by `init_boot_cpu` on the boot core, by `boot.s` from the boot
    // record on the others), a static.
    unsafe { &*block }
}

/// The calling core's number.
#[inline]
pub fn this_cpu_id() -> usize {
    this_cpu().id
}

/// Points the boot core's `TPIDR_EL1` at its block; first thing at boot.
pub fn init_boot_cpu() {
    let id = cpu::cpu_id();
    assert!(id < MAX_CPUS, "boot core {id} has no per-CPU block");
    arch_smp::set_per_cpu(&PER_CPU[id] as *const PerCpu as u64);
    PER_CPU[id].come_online();
}

/// Records the GIC for IPIs, and the boot core's interface.
pub fn init_interrupts(gic: &'static Gic) {
    GIC.call_once(|| gic);
    gic.set_private_priority(Ipi::Turn as u32, URGENT_PRIORITY);
    this_cpu().gic_mask.store(gic.own_interface_mask(), Ordering::Release);
}

/// Sleeps until `done()` holds, with IRQs masked: in `WFI`, with the core's
/// priority mask letting only [`Ipi::Turn`] through, which whoever makes
/// `done()` hold sends after it does. Other interrupts pending meanwhile
/// (the core's timer, a reschedule SGI) neither wake it nor keep it
/// spinning (a spinning guest core takes the host's time from the core it
/// waits for when the emulator has fewer host cores than guest ones, and a
/// busy fork bomb's timers and SGIs kept the waiters of the big kernel lock
/// spinning nearly always); they are taken once the mask is back. Spins
/// before the GIC is up.
pub fn sleep_until_turn(done: impl Fn() -> bool) {
    let Some(gic) = GIC.get() else {
        while !done() {
            core::hint::spin_loop();
        }
        return;
    };
    let mask = gic.set_priority_mask(URGENT_ONLY);
    let wakeups = &this_cpu().turn_wakeups;
    while !done() {
        cpu::wait_for_interrupt();
        wakeups.fetch_add(1, Ordering::Relaxed);
        // What woke it: a Turn SGI, taken here so that it does not end
        // the next `WFI` at once (stale, it was for an earlier wait).
        while let Some(iar) = gic.acknowledge() {
            gic.end_of_interrupt(iar);
            let intid = iar & 0x3ff;
            if intid < SGI_COUNT && intid != Ipi::Turn as u32 {
                // Only if the mask was not yet in force: an SGI is an
                // edge, handled now or never.
                on_ipi(intid);
            }
        }
    }
    gic.set_priority_mask(mask);
}

/// How many cores the interrupt controller serves (0 before `irq::init`).
pub fn gic_cpu_interfaces() -> u32 {
    GIC.get().map_or(0, |gic| gic.cpu_interfaces())
}

/// Mask of the cores the board has (bit n: core n).
pub fn present_mask() -> u64 {
    PRESENT.load(Ordering::Acquire)
}

/// Mask of the cores up and answering.
pub fn online_mask() -> u64 {
    ONLINE.load(Ordering::Acquire)
}

/// How many secondary stacks exist (made at boot, kept for good), for the
/// kernel-stack figures of `/proc/meminfo` and the memory balance.
pub fn stack_count() -> u64 {
    STACKS.iter().filter(|stack| stack.is_completed()).count() as u64
}

/// Mask of the cores the kernel tried to start (`maxcpus=` limits it).
pub fn started_mask() -> u64 {
    STARTED.load(Ordering::Acquire)
}

/// Why a core did not start.
#[derive(Debug)]
pub enum StartError {
    Stack(StackError),
    Psci(PsciError),
    /// It was released but did not say it is online in time.
    Timeout,
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Stack(e) => write!(f, "no stack ({e:?})"),
            Self::Psci(e) => write!(f, "PSCI CPU_ON failed ({e:?})"),
            Self::Timeout => write!(f, "not online after {START_TIMEOUT_MS} ms"),
        }
    }
}

/// Finds the cores the board has and starts up to `max_cpus` of them
/// (the boot core included). The boot core must be core 0.
pub fn start_secondaries(max_cpus: Option<usize>) {
    let limit = max_cpus.unwrap_or(MAX_CPUS).min(MAX_CPUS);
    let started_at = timer::ticks();
    let present = (1..MAX_CPUS).filter(|&n| core_exists(n)).fold(1u64, |mask, n| mask | 1 << n);
    PRESENT.store(present, Ordering::Release);
    // Release them all, then wait: they come up side by side.
    let mut started = 1u64;
    for n in (1..MAX_CPUS).filter(|n| present & (1 << n) != 0).take(limit.saturating_sub(1)) {
        started |= 1 << n;
        STARTED.store(started, Ordering::Release);
        if let Err(e) = release(n) {
            log::error!("smp: core {n} did not start: {e}");
        }
    }
    let deadline = timer::ticks() + timer::frequency() * START_TIMEOUT_MS / 1000;
    for n in (1..MAX_CPUS).filter(|n| started & (1 << n) != 0) {
        let ms_left = deadline.saturating_sub(timer::ticks()) * 1000 / timer::frequency();
        if !wait_until(ms_left, || PER_CPU[n].is_online()) {
            log::error!("smp: core {n} did not start: {}", StartError::Timeout);
        }
    }
    let online = online_mask();
    let elapsed_us = (timer::ticks() - started_at) * 1_000_000 / timer::frequency();
    log::info!(
        "smp: {} of {} cores online ({}){}; {} us; tasks run on every core",
        online.count_ones(),
        present.count_ones(),
        match BOARD.cpu_start {
            CpuStart::Psci => "PSCI CPU_ON",
            CpuStart::SpinTable { .. } => "spin table",
        },
        match max_cpus {
            Some(n) => alloc::format!(", maxcpus={n}"),
            None => alloc::string::String::new(),
        },
        elapsed_us
    );
}

/// Whether the board has core `n`.
fn core_exists(n: usize) -> bool {
    match BOARD.cpu_start {
        CpuStart::Psci => firmware::psci_core_exists(n as u64).is_ok(),
        CpuStart::SpinTable { release } => release.len() > n,
    }
}

/// Sends core `n` to `aspen_secondary_entry` with its stack and block.
fn release(n: usize) -> Result<(), StartError> {
    let stack = STACKS[n].try_call_once(KernelStack::new).map_err(StartError::Stack)?;
    arch_smp::prepare(n, stack.top().as_u64(), &PER_CPU[n] as *const PerCpu as u64, secondary_main);
    let entry = arch_smp::entry_phys();
    match BOARD.cpu_start {
        CpuStart::Psci => firmware::psci_cpu_on(n as u64, entry, 0).map_err(StartError::Psci)?,
        CpuStart::SpinTable { release } => {
            let word = phys_to_virt(aspen_mm::PhysAddr::new(release[n])).as_u64() as *mut u64;
            // SAFETY: the release words lie in the page the board reserves
            // for its firmware's spin table, mapped in the linear map, and
            // only this code writes them.
            unsafe { arch_smp::release_spin_table(word, entry) };
        }
    }
    Ok(())
}

/// Spins until `done` or `timeout_ms` have passed; whether `done` held.
fn wait_until(timeout_ms: u64, done: impl Fn() -> bool) -> bool {
    let deadline = timer::ticks() + timer::frequency() * timeout_ms / 1000;
    while !done() {
        if timer::ticks() > deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// A secondary core's first Rust code, from `boot.s` with the MMU on, on
/// its own stack, with `TPIDR_EL1` set.
extern "C" fn secondary_main(id: usize) -> ! {
    exception::install_vectors();
    // Only the kernel's half stays: the boot identity map goes.
    mmu::drop_boot_identity_map();
    let me = this_cpu();
    debug_assert_eq!(me.id, id);
    if let Some(gic) = GIC.get() {
        gic.init_cpu();
        gic.enable(crate::irq::TIMER_INTID);
        for ipi in Ipi::ALL {
            gic.enable(ipi as u32);
        }
        gic.set_private_priority(Ipi::Turn as u32, URGENT_PRIORITY);
        me.gic_mask.store(gic.own_interface_mask(), Ordering::Release);
    }
    timer::disarm();
    timer::allow_user_counter();
    me.come_online();
    // Into the scheduler: the idle loop gives the lock up while it waits.
    bkl::acquire();
    sched::init_idle();
    sched::idle_loop()
}

/// Sends `ipi` to core `target`; nothing if it is not online.
pub fn send_ipi(target: usize, ipi: Ipi) {
    let (Some(gic), Some(block)) = (GIC.get(), PER_CPU.get(target)) else { return };
    if block.is_online() {
        gic.send_sgi(ipi as u32, SgiTarget::Interfaces(block.gic_mask.load(Ordering::Acquire)));
    }
}

/// Sends `ipi` to every core but the caller.
pub fn send_ipi_others(ipi: Ipi) {
    if let Some(gic) = GIC.get() {
        gic.send_sgi(ipi as u32, SgiTarget::Others);
    }
}

/// Why [`call_on`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No such core, or it is not online.
    Offline,
    /// The core did not run the function in time.
    Timeout,
}

/// Runs `f(arg)` on core `target`, in its interrupt handler (IRQs
/// masked, without the big kernel lock), and waits until it has, with the
/// big kernel lock given up (the target may be waiting for it with IRQs
/// masked): the caller holds no spin lock. On the calling core it runs at
/// once. After a timeout the target may still run it late, so `arg` must
/// not point at anything the caller owns.
pub fn call_on(target: usize, f: fn(usize), arg: usize) -> Result<(), CallError> {
    let block = PER_CPU.get(target).filter(|block| block.is_online()).ok_or(CallError::Offline)?;
    if target == this_cpu_id() {
        let irq = cpu::disable_irqs();
        f(arg);
        cpu::restore_irqs(irq);
        return Ok(());
    }
    // The whole call outside the big kernel lock: a sender waiting for
    // `call_lock` must not hold it either.
    let done = bkl::without(|| {
        let _one_at_a_time = block.call_lock.lock();
        block.call_fn.store(f as usize, Ordering::Relaxed);
        block.call_arg.store(arg, Ordering::Relaxed);
        let ticket = block.call_requested.fetch_add(1, Ordering::AcqRel) + 1;
        send_ipi(target, Ipi::Call);
        // Tickets only grow: a call that timed out and runs late cannot
        // pass for a later one.
        wait_until(CALL_TIMEOUT_MS, || block.call_done.load(Ordering::Acquire) >= ticket)
    });
    done.then_some(()).ok_or(CallError::Timeout)
}

/// Handles an SGI taken on this core; called by `irq::handle`.
pub fn on_ipi(intid: u32) {
    let me = this_cpu();
    match intid {
        n if n == Ipi::Ping as u32 => {
            me.pings.fetch_add(1, Ordering::AcqRel);
        }
        n if n == Ipi::Call as u32 => {
            let ticket = me.call_requested.load(Ordering::Acquire);
            if me.call_done.load(Ordering::Relaxed) < ticket {
                let f = me.call_fn.load(Ordering::Relaxed);
                let arg = me.call_arg.load(Ordering::Relaxed);
                // SAFETY: `call_on` stored a `fn(usize)` before publishing
                // the ticket this core read with Acquire.
                let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(f) };
                f(arg);
                me.call_done.store(ticket, Ordering::Release);
            }
        }
        n if n == Ipi::Stop as u32 => {
            // For good: nothing after.
            me.online.store(false, Ordering::Release);
            ONLINE.fetch_and(!(1 << me.id), Ordering::AcqRel);
            cpu::halt()
        }
        n if n == Ipi::Reschedule as u32 => sched::on_reschedule_ipi(),
        // Its work is to have woken the core (`sleep_until_turn`).
        n if n == Ipi::Turn as u32 => {}
        other => log::warn!("core {}: unexpected SGI {other}", me.id),
    }
}

/// Counts a timer interrupt of this core's (before the handler waits for
/// the big kernel lock).
pub fn count_timer_irq() {
    this_cpu().local_timer_irqs.fetch_add(1, Ordering::AcqRel);
}

/// Stops every other core (power-off without firmware, a fatal error).
pub fn stop_others() {
    send_ipi_others(Ipi::Stop);
}
