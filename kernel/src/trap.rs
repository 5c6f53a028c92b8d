//! What the kernel does about a trap: the one place that turns the reason
//! the CPU entered the kernel (`arch`'s [`Trap`]) into a system call, an
//! interrupt, a page fault resolved, or the signal Linux would send, and
//! that switches tasks before user space resumes.

use aspen_abi::wait::Signal;
use aspen_mm::aspace::FaultError;

use crate::arch::exception::{Abort, FaultStatus, Trap, TrapFrame};
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
        fatal => end_for(fatal, frame),
    }
    // Back to user space: the moment to let a waiting task have the CPU.
    sched::preempt_if_needed();
}

/// A user-space abort: resolved by the address space (demand paging,
/// copy-on-write), or the end of the process with SIGSEGV or SIGBUS.
fn resolve_or_kill(abort: Abort, pc: u64) {
    let signal = match abort.status {
        FaultStatus::Translation { .. } | FaultStatus::Permission { .. } | FaultStatus::AccessFlag { .. } => {
            match process::resolve_fault(abort.addr, abort.access) {
                Ok(()) => return,
                Err(FaultError::Segv) => Signal::Segv,
                Err(FaultError::Bus) | Err(FaultError::OutOfMemory) => Signal::Bus,
            }
        }
        _ => Signal::Bus,
    };
    kill_for_abort(signal, abort, pc)
}

// The ends below are out of line and cold, so that the paths every system
// call and page fault take keep a small stack frame (no formatting state).

/// Ends the process for an abort the address space could not resolve.
#[cold]
#[inline(never)]
fn kill_for_abort(signal: Signal, abort: Abort, pc: u64) -> ! {
    process::kill_current(
        signal,
        format_args!("{:?} access to {:#x} at pc {:#x} ({})", abort.access, abort.addr, pc, abort.status),
    )
}

/// Ends the process (with the signal Linux sends) or, for an exception
/// the kernel does not expect, the kernel.
#[cold]
#[inline(never)]
fn end_for(trap: Trap, frame: &TrapFrame) -> ! {
    match trap {
        Trap::Misaligned(what) => process::kill_current(Signal::Bus, format_args!("{what} at {:#x}", frame.pc())),
        Trap::Breakpoint => process::kill_current(Signal::Trap, format_args!("BRK at {:#x}", frame.pc())),
        Trap::Undefined(what) => process::kill_current(Signal::Ill, format_args!("{what} at {:#x}", frame.pc())),
        Trap::Unexpected(exception) => {
            console::emergency_print(format_args!("\nUNEXPECTED EXCEPTION: {}", exception.report(frame)));
            panic!("unexpected {exception}");
        }
        Trap::Irq { .. } | Trap::SystemCall | Trap::Abort(_) => unreachable!("handled by trap::handle"),
    }
}
