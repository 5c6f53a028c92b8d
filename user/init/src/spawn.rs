//! Starting programs: fork + execve + wait4, and reaping orphans.

use alloc::ffi::CString;
use alloc::format;
use alloc::vec::Vec;
use core::ffi::CStr;

use aspen_sys::process::{self, Fork, WaitStatus, WNOHANG};
use aspen_sys::signal::{self, SaFlags, SigSet, Signal, SIG_DFL};
use aspen_sys::{eprintln, Errno};

/// The environment every program gets.
const ENV: &[&CStr] = &[c"PATH=/bin", c"HOME=/", c"TERM=vt100"];

/// Exit code of a child whose execve failed (as in shells).
const EXEC_FAILED: i32 = 127;

/// Where a command's program is: as given when it has a `/`, else in `/bin`.
fn program_path(name: &str) -> Result<CString, Errno> {
    let path = if name.contains('/') { name.into() } else { format!("/bin/{name}") };
    CString::new(path).map_err(|_| Errno::EINVAL)
}

/// Runs `words[0]` with arguments `words` and waits for it; returns its
/// status. Orphans reaped along the way are dropped silently.
pub fn run(words: &[&str]) -> Result<WaitStatus, Errno> {
    let path = program_path(words.first().ok_or(Errno::EINVAL)?)?;
    let argv = words.iter().map(|w| CString::new(*w).map_err(|_| Errno::EINVAL)).collect::<Result<Vec<_>, _>>()?;
    let argv: Vec<&CStr> = argv.iter().map(CString::as_c_str).collect();
    match process::fork()? {
        Fork::Child => {
            // The shell ignores the signal keys; the program must not.
            for key in [Signal::Int, Signal::Quit] {
                let _ = signal::sigaction_raw(key.number().into(), SIG_DFL, SaFlags::empty(), SigSet(0));
            }
            let e = process::execve(&path, &argv, ENV);
            eprintln!("{}: {e}", words[0]);
            process::exit_group(EXEC_FAILED)
        }
        Fork::Parent(pid) => loop {
            let (reaped, status) = process::wait4(-1, 0)?;
            if reaped == pid {
                return Ok(status);
            }
        },
    }
}

/// Reaps every child that has ended (orphans re-parented to init included).
pub fn reap_orphans() {
    while let Ok((pid, _)) = process::wait4(-1, WNOHANG) {
        if pid <= 0 {
            break;
        }
    }
}
