//! `#!` scripts: execve runs the interpreter named on the first line with
//! the script's path among its arguments, through nested scripts, and fails
//! as Linux does on loops, missing interpreters and empty lines.

use core::ffi::CStr;

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::process::{self, Fork};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, Context, Ctx, TestResult};

/// A script run by this program: `#!<exe>  --child-argv  ` (blanks around
/// the argument, which the kernel drops).
const SCRIPT: &CStr = c"/tmp/usertests-script";
/// A script whose interpreter is [`SCRIPT`], with an argument holding a
/// blank.
const NESTED: &CStr = c"/tmp/usertests-nested";
/// A script that names itself as its interpreter.
const LOOP: &CStr = c"/tmp/usertests-loop";
/// A script whose interpreter does not exist.
const MISSING: &CStr = c"/tmp/usertests-missing";
/// A `#!` line without an interpreter.
const EMPTY: &CStr = c"/tmp/usertests-empty";
/// The argument that makes usertests compare its argv with its environment.
pub const CHILD_ARGV: &CStr = c"--child-argv";

/// Writes an executable file holding `parts` back to back (no allocation:
/// the suite process calls this).
pub(super) fn write_script(path: &CStr, parts: &[&[u8]]) -> Result<(), Errno> {
    let fd = fs::open(path, OpenFlags::CREAT | OpenFlags::WRONLY | OpenFlags::TRUNC, 0o755)?;
    let written = parts.iter().try_for_each(|part| {
        let mut done = 0;
        while done < part.len() {
            done += fs::write(fd, &part[done..])?;
        }
        Ok(())
    });
    fs::close(fd)?;
    written
}

/// Creates the scripts; the suite's set-up calls it before the memory
/// baseline, since files keep their pages.
pub fn create_scripts(exe: &CStr) -> Result<(), Errno> {
    write_script(SCRIPT, &[b"#!", exe.to_bytes(), b" \t", CHILD_ARGV.to_bytes(), b" \t\n"])?;
    write_script(NESTED, &[b"#! ", SCRIPT.to_bytes(), b" two words\nignored\n"])?;
    write_script(LOOP, &[b"#!", LOOP.to_bytes(), b"\n"])?;
    write_script(MISSING, &[b"#!/nonexistent/interpreter\n"])?;
    write_script(EMPTY, &[b"#!  \n"])
}

/// Runs `path` with `argv` in a child whose environment is `expected`: the
/// interpreter (usertests `--child-argv`) exits 0 when its argv equals it.
fn run_expecting(path: &CStr, argv: &[&CStr], expected: &[&CStr]) -> TestResult {
    let pid = match process::fork().ctx("fork")? {
        Fork::Child => {
            let e = process::execve(path, argv, expected);
            aspen_sys::println!("usertests: execve {path:?}: {e}");
            process::exit_group(127)
        }
        Fork::Parent(pid) => pid,
    };
    let (_, status) = process::wait4(pid, 0).ctx("wait4")?;
    ensure!(status.success(), "{path:?} {argv:?}: the interpreter ended with {status}, expected argv {expected:?}");
    Ok(())
}

pub fn interpreters(ctx: &Context) -> TestResult {
    run_expecting(SCRIPT, &[c"name", c"x", c"y"], &[ctx.exe, CHILD_ARGV, SCRIPT, c"x", c"y"])?;
    run_expecting(SCRIPT, &[], &[ctx.exe, CHILD_ARGV, SCRIPT])?;
    run_expecting(NESTED, &[c"nested", c"z"], &[ctx.exe, CHILD_ARGV, SCRIPT, c"two words", NESTED, c"z"])?;
    expect_errno(
        "execve of a script that runs itself",
        Err::<(), _>(process::execve(LOOP, &[LOOP], &[])),
        Errno::ELOOP,
    )?;
    expect_errno(
        "execve of a script with a missing interpreter",
        Err::<(), _>(process::execve(MISSING, &[MISSING], &[])),
        Errno::ENOENT,
    )?;
    expect_errno(
        "execve of a script naming no interpreter",
        Err::<(), _>(process::execve(EMPTY, &[EMPTY], &[])),
        Errno::ENOEXEC,
    )?;
    Ok(())
}
