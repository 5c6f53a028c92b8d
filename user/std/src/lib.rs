//! The reporting every program here shares: one line per check, `ok ...`
//! or `FAIL ...`, and an exit status that is 0 only when all passed.

use std::io::Write;

/// Counts the checks of one program and prints each.
pub struct Checks {
    program: &'static str,
    failed: usize,
}

impl Checks {
    /// Starts the report of `program`.
    pub fn new(program: &'static str) -> Self {
        Self { program, failed: 0 }
    }

    /// Records one check: `what` names it, `why` says what was seen when it failed.
    pub fn check(&mut self, ok: bool, what: &str, why: impl std::fmt::Display) {
        let line = if ok {
            format!("ok {}: {what}\n", self.program)
        } else {
            self.failed += 1;
            format!("FAIL {}: {what}: {why}\n", self.program)
        };
        // One write per line, so lines from several processes never mix.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }

    /// Prints the summary and returns the exit code.
    pub fn done(self) -> std::process::ExitCode {
        if self.failed == 0 {
            println!("ok {}: all checks passed", self.program);
            std::process::ExitCode::SUCCESS
        } else {
            println!("FAIL {}: {} check(s) failed", self.program, self.failed);
            std::process::ExitCode::FAILURE
        }
    }
}
