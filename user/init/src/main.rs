//! `/init`: PID 1 of Aspen's user space.
//!
//! - Makes sure fds 0, 1 and 2 are the console (opens `/dev/console` when fd 1
//!   is not open), makes it its session's controlling terminal (the kernel
//!   opens `/dev/console` without making it one: `TIOCSCTTY`, after `setsid`
//!   where init does not lead a session yet, as on Linux), and mounts
//!   procfs on /proc
//!   (needed on Linux; Aspen's /proc needs no mount, so a failure is
//!   ignored).
//! - Autorun: when started with `--run-tests` (words after `--` on the kernel
//!   command line become init's arguments, as on Linux) or when
//!   `/etc/aspen-autorun` exists, runs each line of that file (`PATH [ARGS]`,
//!   `#` starts a comment; without the file: `/bin/usertests`, then
//!   `/bin/fuzz --finish`), prints
//!   `RUN <path> exit=<n>` or `RUN <path> signal=<n>` for each, then powers off.
//! - Otherwise: Debian's busybox `sh` as a login shell on the console, in a
//!   session of its own with the console as its controlling terminal,
//!   started again whenever it ends ([`spawn::login_shell`]). Without
//!   busybox (the initramfs was made offline): Aspen's own interactive shell
//!   on the serial console (see [`commands`]);
//!   lines come edited and echoed by the terminal ([`line`]). Ctrl-C and
//!   Ctrl-\\ signal the foreground group, init's: init ignores `SIGINT` and
//!   `SIGQUIT` (as Linux's init is immune to them) and the programs it
//!   starts get them back at their default action.
//!
//! As PID 1 it never exits, and it reaps orphans: every wait it does is
//! `wait4(-1)` until the awaited child is among the reaped, and the shell reaps
//! with `WNOHANG` before each prompt.
#![no_std]
#![no_main]

extern crate alloc;

mod commands;
mod line;
mod spawn;

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::signal::{self, SaFlags, SigSet, Signal, SIG_IGN};
use aspen_sys::{println, process, time, tty, Args};

use line::LineReader;

aspen_sys::entry!(main);

/// The autorun script.
const AUTORUN: &core::ffi::CStr = c"/etc/aspen-autorun";
/// What autorun runs when `--run-tests` is given and there is no script.
const DEFAULT_AUTORUN: &str = "/bin/usertests\n/bin/fuzz --finish\n";
/// Longest autorun script read.
const AUTORUN_MAX: usize = 8192;

fn main(args: Args) -> i32 {
    ensure_console();
    take_terminal();
    mount_proc();
    let run_tests = args.iter().skip(1).any(|a| a.to_bytes() == b"--run-tests");
    let mut script = [0u8; AUTORUN_MAX];
    let script = match fs::read_file(AUTORUN, &mut script) {
        Ok(n) => Some(&script[..n]),
        Err(_) if run_tests => Some(DEFAULT_AUTORUN.as_bytes()),
        Err(_) => None,
    };
    match script {
        Some(script) => {
            autorun(script);
            power_off()
        }
        None => {
            let why = spawn::login_shell();
            println!("init: no busybox shell ({why}: `make run` fetches Debian's busybox-static); Aspen's own shell");
            shell()
        }
    }
}

/// Opens `/dev/console` as fds 0, 1 and 2 if fd 1 is not open (Linux opens it
/// for init itself when the initramfs has it; a kernel need not).
fn ensure_console() {
    if fs::write(fs::STDOUT, &[]).is_ok() {
        return;
    }
    for _ in 0..3 {
        let _ = fs::open(c"/dev/console", OpenFlags::RDWR, 0);
    }
}

/// Makes the console the controlling terminal of a session init leads
/// (without one, `^C` signals nobody and `tcgetpgrp` fails). A failure
/// leaves init without a controlling terminal, as a Linux init may be.
fn take_terminal() {
    if signal::getsid(0) != Ok(process::getpid()) {
        let _ = signal::setsid();
    }
    let _ = tty::set_controlling(fs::STDIN, false);
}

/// Mounts procfs on /proc. Linux needs this (like any Linux init); Aspen
/// provides /proc without mounting, so there the call fails and is ignored.
fn mount_proc() {
    let _ = fs::mount(c"proc", c"/proc", c"proc");
}

/// Runs each command of the script, printing one `RUN` line per command.
fn autorun(script: &[u8]) {
    let Ok(script) = core::str::from_utf8(script) else {
        println!("init: {} is not UTF-8", AUTORUN.to_str().unwrap_or("autorun"));
        return;
    };
    for line in script.lines() {
        let words = commands::split_words(line);
        let Some(&path) = words.first() else { continue };
        match spawn::run(&words) {
            Ok(status) => println!("RUN {path} {status}"),
            Err(e) => println!("RUN {path} error={e}"),
        }
    }
}

/// Powers off; if that fails, stays alive (PID 1 must not exit).
fn power_off() -> ! {
    let e = process::power_off();
    println!("init: power off failed: {e}; halting");
    loop {
        spawn::reap_orphans();
        let _ = time::sleep_ms(1000);
    }
}

/// The interactive shell: prompt, read a line, run it; forever.
fn shell() -> ! {
    for key in [Signal::Int, Signal::Quit] {
        let _ = signal::sigaction_raw(key.number().into(), SIG_IGN, SaFlags::empty(), SigSet(0));
    }
    commands::banner();
    let mut editor = LineReader::new();
    loop {
        spawn::reap_orphans();
        let line = editor.read_line("aspen# ");
        commands::execute(line);
    }
}
