//! Starting secondary cores and reaching them: the boot record each one
//! reads with its MMU off (`boot.s`, `aspen_secondary_entry`), the release
//! of a spin-table core, and the per-CPU pointer in `TPIDR_EL1`.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{MAIR_EL1, SCTLR_EL1, TCR_EL1, TTBR1_EL1};
use aspen_mm::asid::MAX_CPUS;
use aspen_mm::VirtAddr;
use tock_registers::interfaces::Readable;

use crate::memory::virt_to_phys;

/// One core's boot record; layout shared with `boot.s` (64 bytes each).
#[repr(C, align(64))]
pub struct BootRecord {
    mair: AtomicU64,
    tcr: AtomicU64,
    ttbr1: AtomicU64,
    sctlr: AtomicU64,
    stack_top: AtomicU64,
    per_cpu: AtomicU64,
    entry: AtomicU64,
    _unused: AtomicU64,
}

/// Read by `aspen_secondary_entry` at its physical address, MMU off.
#[export_name = "aspen_secondary_boot"]
static SECONDARY_BOOT: [BootRecord; MAX_CPUS] = [const {
    BootRecord {
        mair: AtomicU64::new(0),
        tcr: AtomicU64::new(0),
        ttbr1: AtomicU64::new(0),
        sctlr: AtomicU64::new(0),
        stack_top: AtomicU64::new(0),
        per_cpu: AtomicU64::new(0),
        entry: AtomicU64::new(0),
        _unused: AtomicU64::new(0),
    }
}; MAX_CPUS];

extern "C" {
    fn aspen_secondary_entry();
}

/// The physical address a secondary core must start at.
pub fn entry_phys() -> u64 {
    virt_to_phys(VirtAddr::new(aspen_secondary_entry as *const () as u64)).as_u64()
}

/// Fills core `cpu`'s boot record: it will run with this core's MMU
/// settings and kernel table, on `stack_top`, with `per_cpu` in TPIDR_EL1,
/// and call `entry(cpu)`. The record is cleaned to the point of coherency,
/// where the core reads it with its caches off.
pub fn prepare(cpu: usize, stack_top: u64, per_cpu: u64, entry: extern "C" fn(usize) -> !) {
    let record = &SECONDARY_BOOT[cpu];
    record.mair.store(MAIR_EL1.get(), Ordering::Relaxed);
    record.tcr.store(TCR_EL1.get(), Ordering::Relaxed);
    record.ttbr1.store(TTBR1_EL1.get(), Ordering::Relaxed);
    record.sctlr.store(SCTLR_EL1.get(), Ordering::Relaxed);
    record.stack_top.store(stack_top, Ordering::Relaxed);
    record.per_cpu.store(per_cpu, Ordering::Relaxed);
    record.entry.store(entry as *const () as u64, Ordering::Relaxed);
    clean_to_poc(record as *const BootRecord as u64, core::mem::size_of::<BootRecord>() as u64);
}

/// Cleans and invalidates the data cache lines over `[start, start+len)`
/// to the point of coherency, then waits for it.
fn clean_to_poc(start: u64, len: u64) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: cache maintenance by address on mapped kernel memory
        // changes no data.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Releases a spin-table core: writes `entry` at its release word
/// (`release`, mapped at the word's linear address), cleans it to the
/// point of coherency (the core polls with its caches off) and wakes the
/// cores waiting in `WFE`.
///
/// # Safety
/// `release` must be the linear-map address of the core's release word,
/// which nothing else uses.
pub unsafe fn release_spin_table(release: *mut u64, entry: u64) {
    // SAFETY: the caller's promise.
    unsafe { release.write_volatile(entry) };
    clean_to_poc(release as u64, 8);
    // SAFETY: an event, after the barrier `clean_to_poc` ends with.
    unsafe { core::arch::asm!("sev", options(nomem, nostack, preserves_flags)) };
}

/// Points TPIDR_EL1 at this core's per-CPU block.
pub fn set_per_cpu(block: u64) {
    // SAFETY: TPIDR_EL1 is a software register only the kernel reads.
    unsafe { core::arch::asm!("msr tpidr_el1, {}", in(reg) block, options(nomem, nostack, preserves_flags)) };
}

/// This core's per-CPU block, as `set_per_cpu` (or `boot.s`) set it.
#[inline(always)]
pub fn per_cpu() -> u64 {
    let block: u64;
    // SAFETY: reading TPIDR_EL1 has no side effect.
    unsafe { core::arch::asm!("mrs {}, tpidr_el1", out(reg) block, options(nomem, nostack, preserves_flags)) };
    block
}
