//! What the kernel does about a trap: the one place that turns the reason
//! the CPU entered the kernel (`arch`'s [`Trap`]) into a system call, an
//! interrupt, a page fault resolved, or the signal Linux would send (with
//! its `si_code` and `si_addr`), and that switches tasks before user space
//! resumes, where the signal is delivered.

use aspen_abi::signal::{Signal, BUS_ADRALN, BUS_ADRERR, ILL_ILLOPC, SEGV_ACCERR, SEGV_MAPERR, TRAP_BRKPT};
use aspen_mm::aspace::{FaultError, FaultKind};

use crate::arch::exception::{Abort, FaultStatus, Misaligned, Trap, TrapFrame, Unexpected};
use crate::process::{signal, SharedFault};
use crate::task::{bkl, cputime, sched};
use crate::{console, irq, process, syscall};

/// Handles `trap`, taken with the interrupted context saved in `frame`
/// (which the return restores, so changes to it take effect).
pub fn handle(trap: Trap, frame: &mut TrapFrame) {
    if let Trap::Irq { from_user: false } = trap {
        return irq::handle();
    }
    // Everything else comes from EL0: user time ends here.
    cputime::entered_kernel();
    if let Trap::Irq { .. } = trap {
        // The handlers take the big kernel lock if they need it (SGIs do
        // not); the return needs it only for a switch or pending work
        // (whoever makes work for a thread running on another core sends
        // that core an SGI after, so none is missed).
        irq::handle();
        if !sched::reschedule_pending() && !process::work_pending() {
            cputime::leaving_kernel();
            return;
        }
    }
    // A first touch of anonymous memory or of a file's cached page, or a
    // write to a page of private memory shared copy-on-write or to a shared
    // mapping's read-only page, resolves with the address space shared, on
    // as many cores at once as fault, without the big kernel lock; IRQs
    // stay masked meanwhile. The return needs the lock only for pending
    // work, as after an interrupt.
    let resolved = match trap {
        Trap::Abort(abort) if abort.is_translation() => {
            process::resolve_fault_shared(abort.addr, abort.access, SharedFault::FirstTouch)
        }
        Trap::Abort(abort) if abort.is_permission() && abort.access == FaultKind::Write => {
            process::resolve_fault_shared(abort.addr, abort.access, SharedFault::CopyOnWrite)
        }
        _ => false,
    };
    if resolved && !sched::reschedule_pending() && !process::work_pending() {
        cputime::leaving_kernel();
        return;
    }
    // The core enters the kernel (the time it waits for the lock is
    // system time).
    bkl::acquire_from_user();
    match trap {
        Trap::Irq { .. } => {}
        Trap::Abort(_) if resolved => {}
        Trap::SystemCall => syscall::handle(frame),
        Trap::Abort(abort) => resolve_or_signal(abort, frame.pc()),
        Trap::Misaligned(what) => {
            let addr = if what == Misaligned::Pc { frame.pc() } else { frame.sp_el0 };
            raise(Signal::Bus, BUS_ADRALN, addr, format_args!("{what} at {:#x}", frame.pc()))
        }
        Trap::Breakpoint => raise(Signal::Trap, TRAP_BRKPT, frame.pc(), format_args!("BRK at {:#x}", frame.pc())),
        Trap::Undefined(what) => {
            raise(Signal::Ill, ILL_ILLOPC, frame.pc(), format_args!("{what} at {:#x}", frame.pc()))
        }
        Trap::Unexpected(exception) => unexpected(&exception, frame),
    }
    // Back to user space: the moment to let a waiting task have the CPU,
    // and for the thread to do what is pending for it.
    sched::preempt_if_needed();
    process::return_to_user(frame);
    cputime::leaving_kernel();
    bkl::release_to_user();
}

/// A user-space abort: resolved by the address space (demand paging,
/// copy-on-write), or SIGSEGV (`SEGV_MAPERR` where nothing is mapped,
/// `SEGV_ACCERR` where the mapping forbids the access) or SIGBUS; out of
/// memory, the OOM killer frees some and the access is retried.
fn resolve_or_signal(abort: Abort, pc: u64) {
    if !abort.is_translation_or_permission() {
        let code = if abort.status() == FaultStatus::Alignment { BUS_ADRALN } else { BUS_ADRERR };
        return abort_signal(Signal::Bus, code, abort, pc);
    }
    match process::resolve_fault(abort.addr, abort.access) {
        Ok(()) => {}
        Err(FaultError::Segv) => {
            let code = if process::is_mapped(abort.addr) { SEGV_ACCERR } else { SEGV_MAPERR };
            abort_signal(Signal::Segv, code, abort, pc)
        }
        Err(FaultError::OutOfMemory) => match process::oom::out_of_memory() {
            process::oom::Outcome::Retry => {}
            process::oom::Outcome::Unresolved => abort_signal(Signal::Bus, BUS_ADRERR, abort, pc),
        },
        Err(FaultError::Bus) => abort_signal(Signal::Bus, BUS_ADRERR, abort, pc),
    }
}

// The paths below are out of line and cold, so that the paths every system
// call and page fault take keep a small stack frame (no formatting state).

/// Raises the signal for an abort the address space could not resolve.
#[cold]
#[inline(never)]
fn abort_signal(signal: Signal, code: i32, abort: Abort, pc: u64) {
    let why = format_args!("{:?} access to {:#x} at pc {:#x} ({})", abort.access, abort.addr, pc, abort.status());
    raise(signal, code, abort.addr, why)
}

/// Raises the fault signal Linux sends for `why` on the current thread
/// (delivered on the way back to user space).
#[cold]
#[inline(never)]
fn raise(signal: Signal, code: i32, addr: u64, why: core::fmt::Arguments<'_>) {
    if syscall::tracing() {
        log::info!("pid {}: {signal}: {why}", process::current_process().pid);
    }
    signal::force_fault(signal, code, addr);
}

/// An exception the kernel does not expect: report it and stop.
#[cold]
#[inline(never)]
fn unexpected(exception: &Unexpected, frame: &TrapFrame) -> ! {
    console::emergency_print(format_args!("\nUNEXPECTED EXCEPTION: {}", exception.report(frame)));
    panic!("unexpected {exception}");
}
