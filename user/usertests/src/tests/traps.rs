//! Exceptions other than memory faults end the process with the signal
//! Linux sends: `BRK` SIGTRAP, an undefined instruction SIGILL, a
//! misaligned PC SIGBUS. (A misaligned SP would be SIGBUS too, but QEMU
//! does not check SP alignment.)

use core::arch::asm;

use aspen_sys::process::{SIGBUS, SIGILL, SIGTRAP};

use crate::harness::{child_status, Context, TestResult};

/// Runs `body` (which should trap) in a child; requires the child to be
/// killed by `signal`.
fn expect_signal(what: &str, signal: i32, body: impl FnOnce() -> TestResult) -> TestResult {
    let status = child_status(body)?;
    if status.signal() == Some(signal) {
        Ok(())
    } else {
        Err(alloc::format!("{what}: expected signal={signal}, got {status}"))
    }
}

pub fn kill_with_linux_signals(_: &Context) -> TestResult {
    expect_signal("BRK", SIGTRAP, || {
        // SAFETY: traps; the child ends there.
        unsafe { asm!("brk #0", options(nomem, nostack)) };
        Ok(())
    })?;
    expect_signal("UDF (permanently undefined)", SIGILL, || {
        // SAFETY: traps; the child ends there.
        unsafe { asm!("udf #0", options(nomem, nostack)) };
        Ok(())
    })?;
    expect_signal("branch to a misaligned PC", SIGBUS, || {
        // SAFETY: the branch target is 2 bytes into an instruction, so
        // fetching it traps before anything runs there.
        unsafe { asm!("adr {target}, 1f", "add {target}, {target}, #2", "br {target}", "1: nop", target = out(reg) _) };
        Ok(())
    })
}
