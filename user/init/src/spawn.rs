//! Starting programs: fork + execve + wait4, the console's login shell,
//! and reaping orphans.

use alloc::ffi::CString;
use alloc::format;
use alloc::vec::Vec;
use core::ffi::CStr;

use aspen_sys::process::{self, Fork, WaitStatus, WNOHANG};
use aspen_sys::signal::{self, SaFlags, SigSet, Signal, SIG_DFL};
use aspen_sys::{eprintln, time, Errno};
use aspen_sys::{fs, path, tty};

/// The environment every program gets.
const ENV: &[&CStr] = &[c"PATH=/bin", c"HOME=/", c"TERM=vt100"];

/// faccessat's "may execute" mode.
const X_OK: u32 = 1;

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

/// Debian's busybox shell, when the initramfs has it (`make run` puts it
/// there: scripts/userland.sh).
const LOGIN_SHELL: &CStr = c"/bin/sh";
/// Its `argv[0]`: a leading `-` makes it a login shell (it reads
/// /etc/profile).
const LOGIN_SHELL_ARGV0: &CStr = c"-sh";
/// The login shell's environment (busybox reads `PS1` from /etc/profile).
const LOGIN_ENV: &[&CStr] = &[c"PATH=/bin:/sbin:/usr/bin:/usr/sbin", c"HOME=/", c"TERM=vt100", c"SHELL=/bin/sh"];

/// A shell that ends within this many seconds of its start ended "at once".
const QUICK_END_SECS: u64 = 2;
/// After this many shells in a row ended at once, init stops starting them.
const QUICK_ENDS_MAX: u32 = 5;

/// Runs the login shell on the console in a session of its own, which
/// has the console as its controlling terminal (so the shell's job control
/// works and `^C` reaches its foreground job, not init); starts a new one
/// whenever it ends, reaping orphans meanwhile. Returns only when the shell
/// cannot run: there is none, its start failed to execute, or it ended at
/// once [`QUICK_ENDS_MAX`] times in a row (as a respawning init gives up on
/// a program that keeps dying).
pub fn login_shell() -> Errno {
    if let Err(e) = path::faccessat(fs::AT_FDCWD, LOGIN_SHELL, X_OK) {
        return e;
    }
    let mut quick_ends = 0;
    loop {
        let started = time::counter();
        let pid = match process::fork() {
            Ok(Fork::Child) => {
                let _ = signal::setsid();
                // The console belongs to init's session: take it over.
                let _ = tty::set_controlling(fs::STDIN, true);
                for key in [Signal::Int, Signal::Quit] {
                    let _ = signal::sigaction_raw(key.number().into(), SIG_DFL, SaFlags::empty(), SigSet(0));
                }
                let e = process::execve(LOGIN_SHELL, &[LOGIN_SHELL_ARGV0], LOGIN_ENV);
                eprintln!("init: execve {LOGIN_SHELL:?}: {e}");
                process::exit_group(EXEC_FAILED)
            }
            Ok(Fork::Parent(pid)) => pid,
            Err(e) => return e,
        };
        let status = loop {
            match process::wait4(-1, 0) {
                Ok((reaped, status)) if reaped == pid => break status,
                Ok(_) => {}
                Err(e) => return e,
            }
        };
        if status.exit_code() == Some(EXEC_FAILED) {
            return Errno::ENOEXEC;
        }
        let lived_secs = (time::counter() - started) / time::counter_frequency().max(1);
        quick_ends = if lived_secs < QUICK_END_SECS { quick_ends + 1 } else { 0 };
        if quick_ends >= QUICK_ENDS_MAX {
            eprintln!("init: the shell ended {quick_ends} times in a row at once (last: {status})");
            return Errno::EIO;
        }
        eprintln!("init: the shell ended ({status}); starting a new one");
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
