//! Fault injection for kernel heap allocations, as Linux's failslab: the
//! proof that an allocation that fails ends in `ENOMEM` or a clean kill of
//! the task, never a panic.
//!
//! Two switches. `failslab=N` on the command line: the Nth heap allocation
//! after the first program was started fails (whoever makes it; boot's own
//! allocations are not counted: a kernel that cannot get the memory to
//! start fails to start). And per task,
//! `/proc/<pid>/task/<tid>/fail-nth` (or `/proc/self/fail-nth`): writing N
//! makes the task's Nth heap allocation from then on fail; reading gives
//! what is left of the count, 0 once it fired. Allocations an interrupt
//! handler makes while the task is current are not the task's and are not
//! counted (Linux counts only in task context too). The heap
//! (`crate::heap`) asks [`should_fail`] once per allocation: with neither
//! switch set that is two relaxed loads.

use core::sync::atomic::{AtomicBool, AtomicIsize, AtomicU32, AtomicU64, Ordering};

use aspen_mm::asid::MAX_CPUS;

use crate::task::Task;

/// `failslab=N`: allocations left until the one that fails (0: off).
static BOOT_COUNTDOWN: AtomicU64 = AtomicU64::new(0);
/// Set once any task's fail-nth was written: until then the heap does not
/// look at the running task at all (nor at the per-CPU block, which early
/// boot allocations come before).
static TASK_SWITCH_USED: AtomicBool = AtomicBool::new(false);
/// Per CPU: interrupt handlers running there now.
static IN_IRQ: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Failures injected since boot (`/proc/vmstat` `failslab_injected`).
static INJECTED: AtomicU64 = AtomicU64::new(0);

/// `failslab=N`: the Nth allocation from now fails (0: none).
pub fn fail_boot_nth(n: u64) {
    BOOT_COUNTDOWN.store(n, Ordering::Relaxed);
}

/// Writes `task`'s fail-nth: its Nth allocation from now fails (0: none).
pub fn set_task_nth(task: &Task, n: u32) {
    TASK_SWITCH_USED.store(true, Ordering::Relaxed);
    task.fail_nth.store(n, Ordering::Relaxed);
}

/// What is left of `task`'s fail-nth (0: fired, or never set).
pub fn task_nth(task: &Task) -> u32 {
    task.fail_nth.load(Ordering::Relaxed)
}

/// How many failures were injected since boot.
pub fn injected() -> u64 {
    INJECTED.load(Ordering::Relaxed)
}

/// A task's preloaded sections (`crate::heap::Preload`): how many are
/// open, and its heap bytes in use (allocated less freed) while one is,
/// with their peak, to check each section's bound. What a nested section
/// allocates counts against its own bound, not the one around it.
pub struct PreloadState {
    depth: AtomicU32,
    net: AtomicIsize,
    peak: AtomicIsize,
}

impl PreloadState {
    pub const fn new() -> Self {
        Self { depth: AtomicU32::new(0), net: AtomicIsize::new(0), peak: AtomicIsize::new(0) }
    }
}

/// Whether sections measure what they allocate (every allocation then
/// looks at the running task's section): on in test runs (`aspen.ktest`)
/// and with `failslab=`, off otherwise, where it would cost every
/// allocation and free a few loads and stores for a diagnostic.
static PRELOAD_CHECKS: AtomicBool = AtomicBool::new(false);

/// Makes every section check its bound from now on.
pub fn check_preloads() {
    PRELOAD_CHECKS.store(true, Ordering::Relaxed);
}
/// Sections that allocated more than they reserved.
static PRELOAD_OVERRUNS: AtomicU64 = AtomicU64::new(0);

/// Where a section began: the task's bytes in use then, and the peak of
/// the section around it.
pub struct SectionStart {
    net: isize,
    outer_peak: isize,
}

impl SectionStart {
    /// No section (what a closed guard keeps).
    pub const NONE: Self = Self { net: 0, outer_peak: 0 };
}

/// The running task's preload state, if a task runs.
fn running_preload() -> Option<&'static PreloadState> {
    let task = crate::smp::this_cpu().running.load(Ordering::Acquire);
    // SAFETY: `running` points at the task this CPU runs, which the
    // scheduler keeps alive while it runs; the state is only used by that
    // task, on its own behalf, before it could end.
    (!task.is_null()).then(|| unsafe { &(*task).preload })
}

/// Opens a preloaded section for the running task.
pub fn open_preload() -> SectionStart {
    let Some(state) = running_preload() else { return SectionStart { net: 0, outer_peak: 0 } };
    state.depth.store(state.depth.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    let net = state.net.load(Ordering::Relaxed);
    let outer_peak = state.peak.load(Ordering::Relaxed);
    state.peak.store(net, Ordering::Relaxed);
    SectionStart { net, outer_peak }
}

/// Closes the section [`open_preload`] opened, which reserved `reserved`
/// bytes. Returns the most it had in use when that was more.
pub fn close_preload(start: SectionStart, reserved: usize) -> Option<usize> {
    let state = running_preload()?;
    let peak = state.peak.load(Ordering::Relaxed);
    let used = peak.saturating_sub(start.net).max(0) as usize;
    // What the section allocated was its own reserve's: the section
    // around it (if any) goes on as if it had not allocated.
    state.net.store(start.net, Ordering::Relaxed);
    state.peak.store(start.outer_peak.max(start.net), Ordering::Relaxed);
    state.depth.store(state.depth.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
    (used > reserved).then(|| {
        PRELOAD_OVERRUNS.fetch_add(1, Ordering::Relaxed);
        used
    })
}

/// Allocations made in interrupt handlers since boot, counted while
/// checks are on: interrupt handlers must allocate nothing (they may free).
static IRQ_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Allocations interrupt handlers made (`failslab_irq_allocations` in
/// /proc/vmstat): 0 unless a handler breaks the rule.
pub fn irq_allocations() -> u64 {
    IRQ_ALLOCATIONS.load(Ordering::Relaxed)
}

/// Counts `bytes` allocated (positive) or freed (negative) against the
/// running task's open section, if any, and an allocation in an
/// interrupt handler.
#[inline]
pub fn note_preloaded_use(bytes: isize) {
    if !PRELOAD_CHECKS.load(Ordering::Relaxed) {
        return;
    }
    if bytes > 0 {
        let cpu = crate::smp::this_cpu_id();
        if IN_IRQ[cpu].load(Ordering::Relaxed) != 0 {
            IRQ_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        if IN_NO_ALLOC[cpu].load(Ordering::Relaxed) != 0 {
            NO_ALLOC_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Some(state) = running_preload().filter(|s| s.depth.load(Ordering::Relaxed) != 0) {
        // Loads and stores, not read-modify-writes (a loop each on this
        // CPU): only the task itself counts here, and an interrupt handler
        // that allocated in between would only blur a diagnostic.
        let net = state.net.load(Ordering::Relaxed) + bytes;
        state.net.store(net, Ordering::Relaxed);
        if net > state.peak.load(Ordering::Relaxed) {
            state.peak.store(net, Ordering::Relaxed);
        }
    }
}

/// Sections that allocated more than they reserved since boot.
pub fn preload_overruns() -> u64 {
    PRELOAD_OVERRUNS.load(Ordering::Relaxed)
}

/// Counts the allocation about to be made: true when it is the one to
/// fail. Allocations in a preloaded section or an interrupt handler are
/// not counted.
#[inline]
pub fn should_fail() -> bool {
    if BOOT_COUNTDOWN.load(Ordering::Relaxed) == 0 && !TASK_SWITCH_USED.load(Ordering::Relaxed) {
        return false;
    }
    let fire =
        !exempt() && (counts_down(&BOOT_COUNTDOWN) || (TASK_SWITCH_USED.load(Ordering::Relaxed) && task_fires()));
    if fire {
        INJECTED.fetch_add(1, Ordering::Relaxed);
        record_callers();
    }
    fire
}

/// Kernel text addresses on the stack at the last injected failure (0:
/// none): return addresses of its callers, and possibly stale ones. The
/// kernel has no frame pointers; a scan of the stack is what there is.
static CALLERS: [AtomicU64; 24] = [const { AtomicU64::new(0) }; 24];

/// Fills [`CALLERS`] from the stack of the allocation that is failing.
#[cold]
fn record_callers() {
    let sp: u64;
    // SAFETY: reads the stack pointer; no side effect.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    // Kernel stacks are mapped up to a boundary of their size; the boot
    // stack is not scanned.
    if sp < crate::task::stack::AREA_BASE {
        return;
    }
    let top = (sp | (crate::task::stack::STACK_SIZE - 1)) + 1;
    let text = crate::memory::KernelImage::get().text;
    let start = crate::memory::phys_to_virt(text.start).as_u64();
    let end = crate::memory::phys_to_virt(text.end_exclusive).as_u64();
    let mut slots = CALLERS.iter();
    for word in (sp..top).step_by(8) {
        // SAFETY: `[sp, top)` is the current kernel stack, mapped.
        let value = unsafe { core::ptr::read_volatile(word as *const u64) };
        if (start..end).contains(&value) {
            match slots.next() {
                Some(slot) => slot.store(value, Ordering::Relaxed),
                None => break,
            }
        }
    }
    slots.for_each(|slot| slot.store(0, Ordering::Relaxed));
}

/// For the panic report: the addresses [`record_callers`] found, when a
/// failure was injected.
pub fn report_callers(mut out: impl FnMut(u64)) {
    if injected() > 0 {
        CALLERS.iter().map(|c| c.load(Ordering::Relaxed)).take_while(|&a| a != 0).for_each(&mut out);
    }
}

/// Decrements a non-zero `countdown`; true when that made it 0.
fn counts_down(countdown: &AtomicU64) -> bool {
    countdown.load(Ordering::Relaxed) != 0
        && countdown.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)) == Ok(1)
}

/// Whether this CPU is in an interrupt handler, or its task in a
/// preloaded section.
#[cold]
fn exempt() -> bool {
    IN_IRQ[crate::smp::this_cpu_id()].load(Ordering::Relaxed) != 0
        || running_preload().is_some_and(|s| s.depth.load(Ordering::Relaxed) != 0)
}

/// The running task's fail-nth, counted down.
#[cold]
fn task_fires() -> bool {
    let cpu = crate::smp::this_cpu();
    let task = cpu.running.load(Ordering::Acquire);
    if task.is_null() {
        return false;
    }
    // SAFETY: `running` points at the task this CPU runs, which the
    // scheduler keeps alive until it switches away, and it cannot switch
    // inside the allocator (IRQs are masked or no lock is held that would
    // let it block).
    let nth = unsafe { &(*task).fail_nth };
    nth.load(Ordering::Relaxed) != 0
        && nth.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)) == Ok(1)
}

/// Marks an interrupt handler running on this CPU while it lives: its
/// allocations are not the interrupted task's.
pub struct IrqSection(usize);

impl IrqSection {
    pub fn enter() -> Self {
        let cpu = crate::smp::this_cpu_id();
        IN_IRQ[cpu].fetch_add(1, Ordering::Relaxed);
        Self(cpu)
    }
}

impl Drop for IrqSection {
    fn drop(&mut self) {
        IN_IRQ[self.0].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Per CPU: sections that must allocate nothing running there now.
static IN_NO_ALLOC: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Allocations made inside such sections since boot, counted while checks
/// are on.
static NO_ALLOC_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Allocations made where none may be (`failslab_noalloc_allocations` in
/// /proc/vmstat): 0 unless such a path breaks its rule.
pub fn no_alloc_allocations() -> u64 {
    NO_ALLOC_ALLOCATIONS.load(Ordering::Relaxed)
}

/// Marks a path that must allocate nothing, by construction, while it
/// lives (an ending thread's PI hand-off, the terminal's line discipline):
/// under checks an allocation there is counted. The path must not switch
/// tasks (the mark is per CPU): it holds a spin lock throughout.
pub struct NoAllocSection(usize);

impl NoAllocSection {
    pub fn enter() -> Self {
        let cpu = crate::smp::this_cpu_id();
        IN_NO_ALLOC[cpu].fetch_add(1, Ordering::Relaxed);
        Self(cpu)
    }
}

impl Drop for NoAllocSection {
    fn drop(&mut self) {
        IN_NO_ALLOC[self.0].fetch_sub(1, Ordering::Relaxed);
    }
}
