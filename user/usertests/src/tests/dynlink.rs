//! A dynamically linked program: Debian's busybox (`/bin/busybox-dyn`, a PIE
//! naming `/lib/ld-linux-aarch64.so.1`), whose dynamic linker maps glibc's
//! `libc.so.6` and `libresolv.so.2` from `/lib` itself (openat, private file
//! mappings over its own reservations, mprotect, pread). It echoes, runs a
//! shell with a pipe of two more dynamic busyboxes (`ls / | wc -l`, whose
//! count the test takes itself with getdents64), and shows its own
//! `/proc/self/maps` with the libraries; free memory must come back.
//!
//! Without `/bin/busybox-dyn` in the initramfs the test fails, saying why
//! (as the other real programs' tests do): `make initramfs` puts it there
//! when Debian's packages can be fetched, and says so when they cannot.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;

use aspen_sys::fd;
use aspen_sys::fs::{self, DirEntries, OpenFlags};
use aspen_sys::process::{self, Fork};
use aspen_sys::{println, Errno};

use super::programs::cache;
use crate::ensure;
use crate::harness::{Context, Ctx, TestResult};
use crate::procfs::memfree;

/// The dynamically linked busybox.
const BUSYBOX: &CStr = c"/bin/busybox-dyn";
/// Every file its run maps: the program, the dynamic linker, the libraries.
const FILES: &[&CStr] = &[
    BUSYBOX,
    c"/lib/ld-linux-aarch64.so.1",
    c"/lib/aarch64-linux-gnu/libc.so.6",
    c"/lib/aarch64-linux-gnu/libresolv.so.2",
];
/// The environment of every run: the shell finds `busybox-dyn` in /bin.
const ENV: &[&CStr] = &[c"PATH=/bin"];

/// Caches the program and its libraries where they exist (the suite's
/// set-up, before its baseline).
pub fn cache_files() {
    for path in FILES {
        let _ = cache(path);
    }
}

/// Runs busybox with `argv` (after `argv[0]`), its stdout into a pipe;
/// returns what it wrote there once it exited 0.
fn run(argv: &[&CStr]) -> Result<String, String> {
    let (read_end, write_end) = fd::pipe2(OpenFlags::CLOEXEC).ctx("pipe2")?;
    let pid = match process::fork().ctx("fork")? {
        Fork::Child => {
            if fd::dup3(write_end, 1, OpenFlags::empty()).is_err() {
                process::exit_group(126);
            }
            let mut full = Vec::with_capacity(argv.len() + 1);
            full.push(BUSYBOX);
            full.extend_from_slice(argv);
            let e = process::execve(BUSYBOX, &full, ENV);
            println!("usertests: execve {BUSYBOX:?}: {e}");
            process::exit_group(127)
        }
        Fork::Parent(pid) => pid,
    };
    fs::close(write_end).ctx("close")?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = loop {
        match fs::read(read_end, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    fs::close(read_end).ctx("close")?;
    let (_, status) = process::wait4(pid, 0).ctx("wait4")?;
    read.ctx("read")?;
    let out = String::from_utf8(out).map_err(|_| format!("{argv:?}: output is not UTF-8"))?;
    ensure!(status.success(), "busybox-dyn {argv:?} ended with {status}; its output: {out:?}");
    Ok(out)
}

/// The names `ls /` lists: the entries of `/` but `.`, `..` and dot files.
fn visible_root_entries() -> Result<usize, String> {
    let dir = fs::open(c"/", OpenFlags::RDONLY | OpenFlags::DIRECTORY, 0).ctx("open /")?;
    let mut count = 0;
    let mut buf = [0u8; 4096];
    let result = loop {
        match fs::getdents64(dir, &mut buf) {
            Ok(0) => break Ok(count),
            Ok(n) => count += DirEntries::new(&buf[..n]).filter(|e| !e.name.starts_with(b".")).count(),
            Err(e) => break Err(e),
        }
    };
    fs::close(dir).ctx("close /")?;
    result.ctx("getdents64 /")
}

pub fn busybox(ctx: &Context) -> TestResult {
    match cache(BUSYBOX) {
        Ok(()) => {}
        Err(Errno::ENOENT) => {
            return Err(format!(
                "{BUSYBOX:?} is not in the initramfs (Debian's dynamically linked busybox, with libc6's \
                 /lib beside it: `scripts/bootstrap.sh busybox`, which `make initramfs` runs)"
            ))
        }
        Err(e) => return Err(format!("open {BUSYBOX:?}: {e}")),
    }
    for path in FILES {
        cache(path).map_err(|e| format!("{path:?}, which {BUSYBOX:?} needs: {e}"))?;
    }
    let before = memfree().map_err(|e| format!("{e}"))?;

    let echo = run(&[c"echo", c"hello,", c"dynamic", c"world"])?;
    ensure!(echo == "hello, dynamic world\n", "echo printed {echo:?}");

    let expected = visible_root_entries()?;
    let counted = run(&[c"sh", c"-c", c"busybox-dyn ls / | busybox-dyn wc -l"])?;
    ensure!(counted.trim() == format!("{expected}"), "ls / | wc -l printed {counted:?}; getdents64 finds {expected}");

    let piped = run(&[c"sh", c"-c", c"echo through a pipe | busybox-dyn cat"])?;
    ensure!(piped == "through a pipe\n", "the pipe gave {piped:?}");

    let maps = run(&[c"cat", c"/proc/self/maps"])?;
    for (file, perms) in [
        ("/bin/busybox-dyn", "r-xp"),
        // The file the link /lib/ld-linux-aarch64.so.1 leads to (Linux
        // names a mapping by its resolved path too).
        ("/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "r-xp"),
        ("/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "rw-p"),
        ("/lib/aarch64-linux-gnu/libc.so.6", "r-xp"),
        ("/lib/aarch64-linux-gnu/libc.so.6", "r--p"),
        ("/lib/aarch64-linux-gnu/libc.so.6", "rw-p"),
        ("/lib/aarch64-linux-gnu/libresolv.so.2", "r-xp"),
    ] {
        let found = maps.lines().any(|line| line.ends_with(file) && line.split_whitespace().nth(1) == Some(perms));
        ensure!(found, "no {perms} mapping of {file} in busybox-dyn's /proc/self/maps:\n{maps}");
    }

    let after = memfree().map_err(|e| format!("{e}"))?;
    ensure!(
        before.abs_diff(after) <= ctx.memfree_slack,
        "free memory is {after} bytes after the runs, {before} before: {} apart, slack {}",
        before.abs_diff(after),
        ctx.memfree_slack
    );
    Ok(())
}
