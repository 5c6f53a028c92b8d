//! What the kernel does about a trap: the one place that turns the reason
//! the CPU entered the kernel (`arch`'s [`Trap`]) into a system call, an
//! interrupt, a page fault resolved, or the signal Linux would send, and
//! that switches tasks before user space resumes.

use aspen_abi::wait::Signal;
use aspen_mm::aspace::FaultError;

use crate::arch::exception::{Abort, Trap, TrapFrame, Unexpected};
use crate::task::sched;
use crate::{console, irq, process, syscall};

/// Handles `trap`, taken with the interrupted context saved in `frame`
/// (which the return restores, so changes to it take effect).
pub fn handle(trap: Trap, frame: &mut TrapFrame) {
    match trap {
        Trap::Irq { from_user: false } => return irq::handle(),
        Trap::Irq { from_user: true } => irq::handle(),
        Trap::SystemCall => syscall::handle(frame),
        Trap::Abort(abort) => resolve_or_kill(abort, frame.pc()),
        Trap::Misaligned(what) => kill(Signal::Bus, format_args!("{what} at {:#x}", frame.pc())),
        Trap::Breakpoint => kill(Signal::Trap, format_args!("BRK at {:#x}", frame.pc())),
        Trap::Undefined(what) => kill(Signal::Ill, format_args!("{what} at {:#x}", frame.pc())),
        Trap::Unexpected(exception) => unexpected(&exception, frame),
    }
    // Back to user space: the moment to let a waiting task have the CPU,
    // and for the thread to do what is pending for it.
    sched::preempt_if_needed();
    process::return_to_user(frame);
}

/// A user-space abort: resolved by the address space (demand paging,
/// copy-on-write), or the end of the process with SIGSEGV or SIGBUS.
fn resolve_or_kill(abort: Abort, pc: u64) {
    if !abort.is_translation_or_permission() {
        kill_for_abort(Signal::Bus, abort, pc)
    }
    let signal = match process::resolve_fault(abort.addr, abort.access) {
        Ok(()) => return,
        Err(FaultError::Segv) => Signal::Segv,
        Err(FaultError::Bus) | Err(FaultError::OutOfMemory) => Signal::Bus,
    };
    kill_for_abort(signal, abort, pc)
}

// The ends below are out of line and cold, so that the paths every system
// call and page fault take keep a small stack frame (no formatting state).

/// Ends the process for an abort the address space could not resolve.
#[cold]
#[inline(never)]
fn kill_for_abort(signal: Signal, abort: Abort, pc: u64) -> ! {
    kill(signal, format_args!("{:?} access to {:#x} at pc {:#x} ({})", abort.access, abort.addr, pc, abort.status()))
}

/// Ends the process with the signal Linux sends for `why`.
#[cold]
#[inline(never)]
fn kill(signal: Signal, why: core::fmt::Arguments<'_>) -> ! {
    process::kill_current(signal, why)
}

/// An exception the kernel does not expect: report it and stop.
#[cold]
#[inline(never)]
fn unexpected(exception: &Unexpected, frame: &TrapFrame) -> ! {
    console::emergency_print(format_args!("\nUNEXPECTED EXCEPTION: {}", exception.report(frame)));
    panic!("unexpected {exception}");
}
