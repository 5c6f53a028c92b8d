//! What the runner prints: a line per test as results arrive, and the closing report whose
//! last line is always `<N> passed, <M> failed`.

use std::io::Write;
use std::process::ExitCode;

use crate::error::StartError;
use crate::protocol::{Outcome, Summary, TestResult};

/// How many lines of QEMU's stderr the failure report shows.
const STDERR_LINES: usize = 40;

/// Everything the closing report needs once the console has stopped.
#[derive(Debug)]
pub struct Report {
    pub summary: Summary,
    /// The console's last lines, oldest first.
    pub console_tail: Vec<String>,
    /// What QEMU printed on stderr; `None` for a serial run.
    pub qemu_stderr: Option<String>,
}

/// Prints one line on stdout.
pub fn say(line: &str) {
    // A closed stdout (piped into `head`, say) must not end the runner before it has
    // stopped QEMU, so write errors are dropped instead of panicking like `println!`.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

pub fn print_result(result: &TestResult) {
    say(&result_line(result));
}

/// Prints the closing report and turns the verdict into the exit status.
pub fn print_closing(report: &Report) -> ExitCode {
    for line in closing_lines(report) {
        say(&line);
    }
    if report.summary.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn print_start_failure(error: &StartError) -> ExitCode {
    say(&format!("aspen-runner: {error}"));
    say("0 passed, 1 failed");
    ExitCode::FAILURE
}

fn result_line(result: &TestResult) -> String {
    let TestResult { suite, test, outcome } = result;
    match outcome {
        Outcome::Passed => format!("test {suite}::{test} ... ok"),
        Outcome::Failed(message) => format!("test {suite}::{test} ... FAILED: {message}"),
    }
}

fn closing_lines(report: &Report) -> Vec<String> {
    let summary = &report.summary;
    let mut lines: Vec<String> = summary.problems.iter().map(|problem| format!("aspen-runner: {problem}")).collect();
    lines.extend(summary.incomplete.iter().map(|reason| format!("aspen-runner: run incomplete: {reason}")));
    if !summary.is_complete() {
        if report.console_tail.is_empty() {
            lines.push("aspen-runner: the console printed nothing".to_string());
        } else {
            lines.push(format!("aspen-runner: last {} console lines:", report.console_tail.len()));
            lines.extend(report.console_tail.iter().cloned());
            lines.push("aspen-runner: end of console".to_string());
        }
    }
    if !summary.succeeded() {
        if let Some(stderr) = report.qemu_stderr.as_deref().map(str::trim_end) {
            if !stderr.is_empty() {
                let stderr_lines: Vec<&str> = stderr.lines().collect();
                let shown = &stderr_lines[stderr_lines.len().saturating_sub(STDERR_LINES)..];
                lines.push("aspen-runner: QEMU stderr:".to_string());
                lines.extend(shown.iter().map(|line| line.to_string()));
            }
        }
    }
    lines.push(format!("{} passed, {} failed", summary.passed, summary.failure_count()));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(summary: Summary, qemu_stderr: Option<&str>) -> Report {
        Report {
            summary,
            console_tail: vec!["TEST-RUN a".to_string(), "KERNEL PANIC: x at y:1".to_string()],
            qemu_stderr: qemu_stderr.map(str::to_string),
        }
    }

    #[test]
    fn result_lines() {
        let mut result =
            TestResult { suite: "kernel".to_string(), test: "mm::map".to_string(), outcome: Outcome::Passed };
        assert_eq!(result_line(&result), "test kernel::mm::map ... ok");
        result.outcome = Outcome::Failed("boom".to_string());
        assert_eq!(result_line(&result), "test kernel::mm::map ... FAILED: boom");
    }

    #[test]
    fn success_prints_only_the_count() {
        let summary = Summary { passed: 3, ..Summary::default() };
        assert_eq!(closing_lines(&report(summary, Some("qemu: warning"))), ["3 passed, 0 failed"]);
    }

    #[test]
    fn incomplete_run_shows_why_the_console_and_stderr() {
        let summary = Summary {
            passed: 1,
            failed: 1,
            not_run: 2,
            problems: vec!["suite kernel: announced 4 tests, ran 2".to_string()],
            incomplete: vec!["kernel panic".to_string()],
        };
        assert_eq!(
            closing_lines(&report(summary, Some("qemu: terminating\n"))),
            [
                "aspen-runner: suite kernel: announced 4 tests, ran 2",
                "aspen-runner: run incomplete: kernel panic",
                "aspen-runner: last 2 console lines:",
                "TEST-RUN a",
                "KERNEL PANIC: x at y:1",
                "aspen-runner: end of console",
                "aspen-runner: QEMU stderr:",
                "qemu: terminating",
                "1 passed, 3 failed",
            ]
        );
    }

    #[test]
    fn complete_but_failed_run_skips_the_console() {
        let summary = Summary { problems: vec!["no tests ran".to_string()], ..Summary::default() };
        assert_eq!(closing_lines(&report(summary, None)), ["aspen-runner: no tests ran", "0 passed, 1 failed"]);
    }

    #[test]
    fn silent_console_is_said_so() {
        let summary = Summary { incomplete: vec!["silence for 120 s".to_string()], ..Summary::default() };
        let mut report = report(summary, Some(""));
        report.console_tail.clear();
        assert_eq!(
            closing_lines(&report),
            [
                "aspen-runner: run incomplete: silence for 120 s",
                "aspen-runner: the console printed nothing",
                "0 passed, 1 failed",
            ]
        );
    }
}
