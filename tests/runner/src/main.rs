//! `aspen-runner`: boots the Aspen kernel under QEMU, or listens to a real board's serial
//! console, follows the kernel's console test protocol and reports every test. The last
//! line of its output is always `<N> passed, <M> failed`; the exit status is 0 only when
//! every test passed and the run completed, 1 otherwise, and 2 for a bad command line.
//! With `--session FILE`, it types a session into the shell on the console instead and
//! reports each of its checks the same way.

mod cli;
mod console;
mod error;
mod protocol;
mod qemu;
mod report;
mod script;
mod serial;
mod session;
mod typing;

use std::env;
use std::process::ExitCode;

use cli::{Command, UsageError, USAGE};

const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let command = match arguments().and_then(cli::parse) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("aspen-runner: {error}\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let report = match command {
        Command::Help => {
            report::say(USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Qemu(options) => qemu::run(&options),
        Command::Serial(options) => serial::run(&options),
    };
    match report {
        Ok(report) => report::print_closing(&report),
        Err(error) => report::print_start_failure(&error),
    }
}

/// The arguments after the program name, which must all be UTF-8.
fn arguments() -> Result<Vec<String>, UsageError> {
    env::args_os()
        .skip(1)
        .map(|argument| {
            argument.into_string().map_err(|argument| UsageError::new(format!("argument {argument:?} is not UTF-8")))
        })
        .collect()
}
