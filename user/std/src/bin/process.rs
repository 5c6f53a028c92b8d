//! process: `std::process::Command` running this program again in a helper
//! mode (argv, environment, exit status, captured stdout and stderr through
//! pipes, stdin fed through a pipe, a missing program reported as NotFound),
//! and a thread whose stack overflows: run as a child, it must die of a
//! signal (SIGSEGV or SIGABRT) after printing "has overflowed its stack"
//! (std's handler on the thread's guard page).

use std::env;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};
use std::thread;

use aspen_std_programs::Checks;

const SIGSEGV: i32 = 11;
const SIGABRT: i32 = 6;

/// Recurses without end (on purpose: the stack must overflow); the array
/// keeps each frame large.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    std::hint::black_box(&frame);
    recurse(depth + 1) + std::hint::black_box(frame[3])
}

/// The helper modes: `--exit N`, `--echo ARGS...`, `--stdin`, `--overflow`.
fn helper(mode: &str, rest: &[String]) -> ExitCode {
    match mode {
        "--exit" => ExitCode::from(rest.first().and_then(|n| n.parse().ok()).unwrap_or(255)),
        "--echo" => {
            println!("{}", rest.join("|"));
            eprintln!("to stderr: {}", env::var("ASPEN_TEST_VAR").unwrap_or_default());
            ExitCode::SUCCESS
        }
        "--stdin" => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).unwrap();
            print!("{}", input.to_uppercase());
            ExitCode::SUCCESS
        }
        "--overflow" => {
            let t = thread::Builder::new().name("deep".into()).stack_size(256 * 1024).spawn(|| recurse(0));
            let _ = t.map(|t| t.join());
            ExitCode::from(3) // not reached: the overflow kills the process
        }
        _ => ExitCode::from(254),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    if args.len() > 1 {
        return helper(&args[1], &args[2..]);
    }
    let me = env::current_exe().ok().filter(|p| p.is_file()).unwrap_or_else(|| args[0].clone().into());
    let mut c = Checks::new("std-process");

    let status = Command::new(&me).args(["--exit", "7"]).status();
    c.check(
        matches!(&status, Ok(s) if s.code() == Some(7)),
        "Command::status: the child's exit code",
        format!("{status:?}"),
    );

    // output() would give the child /dev/null as stdin unless told otherwise;
    // the initramfs has no /dev/null.
    let out =
        Command::new(&me).args(["--echo", "a b", "c"]).env("ASPEN_TEST_VAR", "xyz").stdin(Stdio::inherit()).output();
    match out {
        Ok(out) => c.check(
            out.status.success() && out.stdout == b"a b|c\n" && out.stderr == b"to stderr: xyz\n",
            "Command::output: argv and environment reach the child, stdout and stderr come back",
            format!("{:?}, stdout {:?}, stderr {:?}", out.status, out.stdout, out.stderr),
        ),
        Err(e) => c.check(false, "Command::output", e),
    }

    let child = Command::new(&me).arg("--stdin").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn();
    match child {
        Ok(mut child) => {
            child.stdin.take().unwrap().write_all(b"hello, pipe\n").unwrap();
            let out = child.wait_with_output();
            c.check(
                matches!(&out, Ok(o) if o.status.success() && o.stdout == b"HELLO, PIPE\n"),
                "a pipe to the child's stdin and one from its stdout",
                format!("{out:?}"),
            );
        }
        Err(e) => c.check(false, "Command::spawn with piped stdin and stdout", e),
    }

    let missing = Command::new("/nonexistent/program").status();
    c.check(
        matches!(&missing, Err(e) if e.kind() == std::io::ErrorKind::NotFound),
        "a missing program: NotFound",
        format!("{missing:?}"),
    );

    let out = Command::new(&me).arg("--overflow").stdin(Stdio::inherit()).output();
    match out {
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            c.check(
                matches!(out.status.signal(), Some(SIGSEGV | SIGABRT)) && stderr.contains("has overflowed its stack"),
                "a thread overflowing its stack hits the guard page: \"has overflowed its stack\", killed by a signal",
                format!("{:?}, stderr {stderr:?}", out.status),
            );
        }
        Err(e) => c.check(false, "Command::output of the overflowing child", e),
    }
    c.done()
}
