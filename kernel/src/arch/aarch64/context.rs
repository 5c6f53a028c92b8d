//! A task's CPU state as a task switch sees it: the callee-saved registers
//! and SP ([`CpuContext`]), the FP/SIMD registers ([`FpState`]), and the
//! switch itself (`switch.s`).

use aarch64_cpu::registers::{TPIDRRO_EL0, TPIDR_EL0};
use tock_registers::interfaces::{Readable, Writeable};

core::arch::global_asm!(include_str!("switch.s"));

extern "C" {
    fn aspen_switch(prev: *mut CpuContext, next: *const CpuContext);
    fn aspen_fp_save(state: *mut FpState);
    fn aspen_fp_restore(state: *const FpState);
    fn aspen_task_entry_kernel();
    fn aspen_task_entry_user();
}

/// What `switch.s` saves across a switch: x19-x30, SP, and the user
/// thread pointers (each task has its own; libraries keep TLS and `errno`
/// behind TPIDR_EL0).
#[repr(C)]
#[derive(Default)]
pub struct CpuContext {
    regs: [u64; 12],
    sp: u64,
    tpidr_el0: u64,
    tpidrro_el0: u64,
}

/// A user task's thread pointers: TPIDR_EL0 (read-write at EL0) and
/// TPIDRRO_EL0 (read-only at EL0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadPointers {
    pub tpidr: u64,
    pub tpidrro: u64,
}

impl ThreadPointers {
    /// The running task's, live in the registers.
    pub fn current() -> Self {
        Self { tpidr: TPIDR_EL0.get(), tpidrro: TPIDRRO_EL0.get() }
    }

    /// Makes these the running task's (they are saved with it at its next
    /// switch).
    pub fn make_current(self) {
        TPIDR_EL0.set(self.tpidr);
        TPIDRRO_EL0.set(self.tpidrro);
    }
}

impl CpuContext {
    /// A context that starts at `entry` on `stack_top`, with `args` in
    /// x19, x20, ...
    fn starting_at(entry: u64, stack_top: u64, args: &[u64]) -> Self {
        let mut regs = [0; 12];
        regs[..args.len()].copy_from_slice(args);
        regs[11] = entry; // x30: where `aspen_switch` returns to
        Self { regs, sp: stack_top, ..Self::default() }
    }

    /// Sets the thread pointers the task starts with.
    pub fn set_thread_pointers(&mut self, pointers: ThreadPointers) {
        self.tpidr_el0 = pointers.tpidr;
        self.tpidrro_el0 = pointers.tpidrro;
    }

    /// A kernel thread's first context: its first switch-in calls
    /// `started`, then `entry(arg)` on `stack_top`, then `exit` when `entry`
    /// returns.
    pub fn kernel_thread(
        stack_top: u64,
        started: extern "C" fn(),
        entry: fn(usize),
        arg: usize,
        exit: extern "C" fn() -> !,
    ) -> Self {
        let args = [entry as usize as u64, arg as u64, started as usize as u64, exit as usize as u64];
        Self::starting_at(aspen_task_entry_kernel as *const () as u64, stack_top, &args)
    }

    /// A user task's first context: its first switch-in calls `started`,
    /// then returns to EL0 through the trap frame at `frame`, the top of its
    /// kernel stack, with interrupts masked until the `ERET`.
    pub fn user_task(frame: u64, started: extern "C" fn()) -> Self {
        Self::starting_at(aspen_task_entry_user as *const () as u64, frame, &[started as usize as u64])
    }
}

/// The FP/SIMD registers (q0-q31, FPCR, FPSR), saved at task switches only:
/// the kernel's compiled code never touches them (it is built soft-float),
/// and the page copy (`arch::page::copy`) gives back the ones it uses.
#[repr(C, align(16))]
pub struct FpState {
    q: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

impl FpState {
    pub const fn new() -> Self {
        Self { q: [0; 32], fpcr: 0, fpsr: 0 }
    }

    /// The registers as they are now: the running user task's, since the
    /// kernel never touches them.
    pub fn current() -> Self {
        let mut state = Self::new();
        // SAFETY: the routine only stores q0-q31, FPCR and FPSR into the
        // state, which is ours and large enough.
        unsafe { aspen_fp_save(&mut state) };
        state
    }

    /// The registers as a signal frame holds them: v0-v31, FPSR, FPCR.
    pub fn parts(&self) -> ([u128; 32], u32, u32) {
        (self.q, self.fpsr as u32, self.fpcr as u32)
    }

    /// The state a signal frame describes (`rt_sigreturn`).
    pub fn from_parts(q: [u128; 32], fpsr: u32, fpcr: u32) -> Self {
        Self { q, fpcr: u64::from(fpcr), fpsr: u64::from(fpsr) }
    }

    /// Loads these into the registers: the running task resumes with them.
    pub fn make_current(&self) {
        // SAFETY: the routine only loads from the state; the registers it
        // sets belong to the running user task (the kernel uses none).
        unsafe { aspen_fp_restore(self) };
    }
}

/// Saves the running task's registers in `prev` and `prev_fp` and resumes
/// the task saved in `next` and `next_fp`. Returns when something switches
/// back to `prev`.
///
/// # Safety
///
/// Interrupts are masked; nothing else touches the four states during the
/// switch; `next` is a complete context (saved by a switch, or made by
/// [`CpuContext::kernel_thread`] or [`CpuContext::user_task`]) whose stack
/// stays alive while it runs.
pub unsafe fn switch(prev: *mut CpuContext, prev_fp: *mut FpState, next: *const CpuContext, next_fp: *const FpState) {
    // SAFETY: the caller's promise; the routines only load and store the
    // registers through these pointers.
    unsafe {
        aspen_fp_save(prev_fp);
        aspen_fp_restore(next_fp);
        aspen_switch(prev, next);
    }
}
