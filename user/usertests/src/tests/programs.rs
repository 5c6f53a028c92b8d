//! Real programs: the static Linux programs of `user/libc` (C, glibc,
//! installed as `/bin/c/NAME`) and `user/std` (Rust std for musl,
//! `/bin/std/NAME`), each testing one theme of the ABI that libc and std
//! build on: threads, futexes, priority inheritance, robust mutexes, signals,
//! timers, scheduling, limits, mremap; and Debian's busybox running the
//! shell scripts of tests/shell (`/usr/share/aspen/shell/*.sh`: pipes,
//! redirection, jobs, files and links, /proc tools, text tools, the applet
//! links). Each test forks and execs its program
//! (in a process group of its own), waits for it with a timeout, and passes
//! when it exited 0 and free memory came back to where it was before it
//! started. The program's `ok ...`/`FAIL ...` lines go to the console.
//!
//! A program missing from the initramfs fails its test, saying so: the std
//! programs are only built where rustup provides `aarch64-unknown-linux-musl`
//! (`make std-programs` says when it skips them), and busybox only where
//! `scripts/bootstrap.sh busybox` could fetch it (`make initramfs` says).

use alloc::format;
use core::ffi::CStr;

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::process::{self, Fork, WaitStatus, SIGKILL, WNOHANG};
use aspen_sys::raw::{syscall2, Sysno};
use aspen_sys::{println, time, Errno};

use crate::harness::{Context, Ctx, TestResult};
use crate::procfs::memfree;

/// How long a program may run before it is killed and its test fails. The
/// slowest takes about 4 s on Linux under QEMU; well below the runner's 120 s
/// of silence, and short enough that several hung programs still leave the
/// rest of the run inside the runner's overall timeout.
const TIMEOUT_SECS: u64 = 30;
/// How often the test looks whether the program has ended.
const POLL_MS: u64 = 20;

/// kill(2): `pid` < 0 is a process group.
fn kill(pid: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall2(Sysno::Kill.number(), pid as usize, signal as usize) }).map(drop)
}

/// Every program of these tests.
const PROGRAMS: &[&CStr] = &[
    c"/bin/c/threads",
    c"/bin/c/futex",
    c"/bin/c/pi",
    c"/bin/c/robust",
    c"/bin/c/pshared",
    c"/bin/c/signals",
    c"/bin/c/process",
    c"/bin/c/timers",
    c"/bin/c/sched",
    c"/bin/c/limits",
    c"/bin/c/mremap",
    c"/bin/std/threads",
    c"/bin/std/process",
    c"/bin/std/panic",
    c"/bin/busybox",
];

/// Reads the program at `path` once whole, so that its pages are in the
/// page cache before a memory baseline: what its first exec caches is not
/// a leak.
pub fn cache(path: &CStr) -> Result<(), Errno> {
    let fd = fs::open(path, OpenFlags::RDONLY, 0)?;
    let mut buf = [0u8; 4096];
    let read = loop {
        match fs::read(fd, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    fs::close(fd)?;
    read
}

/// Caches every program there is (the suite's set-up, before its baseline).
pub fn cache_programs() {
    for path in PROGRAMS {
        let _ = cache(path);
    }
}

/// Runs `path` and requires it to exit 0 and give its memory back.
fn run(ctx: &Context, path: &CStr) -> TestResult {
    run_with(ctx, path, &[path])
}

/// Runs `path` with arguments `argv`, as [`run`].
fn run_with(ctx: &Context, path: &CStr, argv: &[&CStr]) -> TestResult {
    match cache(path) {
        Ok(()) => {}
        Err(Errno::ENOENT) => {
            return Err(format!(
                "{path:?} is not in the initramfs (the Rust std programs need rustup's \
                 aarch64-unknown-linux-musl target: see `make std-programs`; busybox needs \
                 `scripts/bootstrap.sh busybox`, which `make initramfs` runs)"
            ))
        }
        Err(e) => return Err(format!("open {path:?}: {e}")),
    }
    let before = memfree().map_err(|e| format!("{e}"))?;
    let pid = match process::fork().ctx("fork")? {
        Fork::Child => {
            // Its own process group, so that a timeout kills its children too
            // and its kill(0, ...) reaches no one else. Failure is harmless.
            // SAFETY: no memory is involved.
            unsafe { syscall2(Sysno::Setpgid.number(), 0, 0) };
            let e = process::execve(path, argv, &[c"PATH=/bin"]);
            println!("usertests: execve {path:?}: {e}");
            process::exit_group(127)
        }
        Fork::Parent(pid) => pid,
    };
    let status = wait_with_timeout(pid, path)?;
    if !status.success() {
        return Err(format!("{argv:?} ended with {status} (its FAIL lines are above)"));
    }
    let after = memfree().map_err(|e| format!("{e}"))?;
    if before.abs_diff(after) > ctx.memfree_slack {
        return Err(format!(
            "{path:?} passed, but free memory is {after} bytes after it, {before} before: {} apart, slack {}",
            before.abs_diff(after),
            ctx.memfree_slack
        ));
    }
    Ok(())
}

/// Waits for `pid`; after [`TIMEOUT_SECS`] kills its process group and fails.
fn wait_with_timeout(pid: i32, path: &CStr) -> Result<WaitStatus, alloc::string::String> {
    let freq = time::counter_frequency().max(1);
    let start = time::counter();
    loop {
        let (ended, status) = process::wait4(pid, WNOHANG).ctx("wait4")?;
        if ended == pid {
            return Ok(status);
        }
        if (time::counter() - start) / freq >= TIMEOUT_SECS {
            break;
        }
        time::sleep_ms(POLL_MS).ctx("nanosleep")?;
    }
    let killed = kill(-pid, SIGKILL).or_else(|_| kill(pid, SIGKILL));
    match killed {
        Ok(()) => {
            let (_, status) = process::wait4(pid, 0).ctx("wait4 after SIGKILL")?;
            Err(format!("{path:?} did not end within {TIMEOUT_SECS} s; killed ({status})"))
        }
        Err(e) => Err(format!("{path:?} did not end within {TIMEOUT_SECS} s and could not be killed: {e}")),
    }
}

pub fn c_threads(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/threads")
}

pub fn c_futex(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/futex")
}

pub fn c_pi(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/pi")
}

pub fn c_robust(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/robust")
}

pub fn c_pshared(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/pshared")
}

pub fn c_signals(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/signals")
}

pub fn c_process(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/process")
}

pub fn c_timers(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/timers")
}

pub fn c_sched(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/sched")
}

pub fn c_limits(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/limits")
}

pub fn c_mremap(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/c/mremap")
}

pub fn std_threads(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/std/threads")
}

pub fn std_process(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/std/process")
}

pub fn std_panic(ctx: &Context) -> TestResult {
    run(ctx, c"/bin/std/panic")
}

/// Runs the busybox shell script `script` of the repository's tests/shell
/// (in the initramfs at /usr/share/aspen/shell).
fn shell_script(ctx: &Context, script: &CStr) -> TestResult {
    cache(script).map_err(|e| format!("open {script:?}: {e}"))?;
    let lib = c"/usr/share/aspen/shell/lib.sh";
    cache(lib).map_err(|e| format!("open {lib:?}: {e}"))?;
    run_with(ctx, c"/bin/busybox", &[c"sh", script])
}

pub fn sh_applets(ctx: &Context) -> TestResult {
    shell_script(ctx, c"/usr/share/aspen/shell/applets.sh")
}

pub fn sh_pipes(ctx: &Context) -> TestResult {
    shell_script(ctx, c"/usr/share/aspen/shell/pipes.sh")
}

pub fn sh_redirect(ctx: &Context) -> TestResult {
    shell_script(ctx, c"/usr/share/aspen/shell/redirect.sh")
}

pub fn sh_jobs(ctx: &Context) -> TestResult {
    shell_script(ctx, c"/usr/share/aspen/shell/jobs.sh")
}

pub fn sh_files(ctx: &Context) -> TestResult {
    shell_script(ctx, c"/usr/share/aspen/shell/files.sh")
}

pub fn sh_proc(ctx: &Context) -> TestResult {
    shell_script(ctx, c"/usr/share/aspen/shell/proc.sh")
}

pub fn sh_text(ctx: &Context) -> TestResult {
    shell_script(ctx, c"/usr/share/aspen/shell/text.sh")
}
