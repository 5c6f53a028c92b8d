//! The kernel's console test protocol, as a pure state machine.
//!
//! The kernel announces its tests with marker lines on the console:
//!
//! ```text
//! TEST-SUITE <suite> <count>
//! TEST-RUN <name>
//! TEST-OK <name>
//! TEST-FAIL <name>: <message>
//! TEST-DONE <passed> <failed>
//! TEST-FINISHED
//! ```
//!
//! and reports crashes with lines containing `KERNEL PANIC` or `UNEXPECTED EXCEPTION`.
//! [`Parser`] is fed console lines one at a time and knows nothing about processes or
//! clocks: the driver tells it, through [`Parser::end`], when and why the console stopped
//! before the run finished.

use std::fmt;
use std::time::Duration;

/// What became of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
}

/// A test's result, reported as soon as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub suite: String,
    pub test: String,
    pub outcome: Outcome,
}

/// Why the driver stopped reading the console before `TEST-FINISHED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The console stream ended; `cause` says how, e.g. "QEMU exited with status 3".
    ConsoleClosed { cause: String },
    /// No console byte arrived for this long.
    Silence(Duration),
    /// The whole run took longer than this.
    Timeout(Duration),
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::ConsoleClosed { cause } => write!(f, "{cause} before the run finished"),
            EndReason::Silence(quiet) => write!(f, "silence for {} s", quiet.as_secs()),
            EndReason::Timeout(limit) => write!(f, "timed out after {} s", limit.as_secs()),
        }
    }
}

/// The run as a whole, once the console has stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    /// Tests that failed, or started and never reported a result.
    pub failed: usize,
    /// Tests a suite announced but never started.
    pub not_run: usize,
    /// Failures that belong to no single test: broken protocol, count mismatches.
    pub problems: Vec<String>,
    /// Why the run did not complete; empty when it did.
    pub incomplete: Vec<String>,
}

impl Summary {
    pub fn is_complete(&self) -> bool {
        self.incomplete.is_empty()
    }

    pub fn succeeded(&self) -> bool {
        self.is_complete() && self.problems.is_empty() && self.failed == 0 && self.not_run == 0
    }

    /// The "failed" figure of the closing line: never 0 for a run that did not succeed,
    /// so the closing line alone tells whether the run was good.
    pub fn failure_count(&self) -> usize {
        let failed = self.failed + self.not_run;
        if failed == 0 && !self.succeeded() {
            1
        } else {
            failed
        }
    }
}

/// Follows the protocol line by line.
#[derive(Debug, Default)]
pub struct Parser {
    suite: Option<OpenSuite>,
    passed: usize,
    failed: usize,
    not_run: usize,
    problems: Vec<String>,
    incomplete: Vec<String>,
    crashed: bool,
    finished: bool,
    ended: bool,
}

#[derive(Debug)]
struct OpenSuite {
    name: String,
    announced: usize,
    ran: usize,
    passed: usize,
    failed: usize,
    running: Option<String>,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// True once `TEST-FINISHED` has been seen: the kernel has nothing more to report.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Takes one console line (with or without its `\r`), and returns the test result it
    /// settled, if any.
    pub fn feed_line(&mut self, raw: &str) -> Option<TestResult> {
        let line = strip_line_noise(raw);
        if let Some(crash) = Crash::find_in(line) {
            return self.on_crash(crash, line);
        }
        match parse_marker(line) {
            Ok(None) => None,
            Ok(Some(_)) if self.finished => {
                self.problems.push(format!("`{line}` after TEST-FINISHED"));
                None
            }
            Ok(Some(marker)) => self.on_marker(marker),
            Err(MalformedMarker) => {
                self.problems.push(format!("malformed protocol line `{line}`"));
                None
            }
        }
    }

    /// The console stopped before `TEST-FINISHED`: the run is incomplete, the running test
    /// fails with the reason, and the open suite's remaining tests count as not run.
    /// Does nothing once the run has finished.
    pub fn end(&mut self, reason: EndReason) -> Option<TestResult> {
        if self.finished || self.ended {
            return None;
        }
        self.ended = true;
        let reason = reason.to_string();
        let result = self.close_suite(None, &reason);
        self.incomplete.push(reason);
        result
    }

    pub fn summary(&self) -> Summary {
        let mut problems = self.problems.clone();
        let mut incomplete = self.incomplete.clone();
        if !self.finished && !self.ended {
            incomplete.push("no TEST-FINISHED".to_string());
        }
        if incomplete.is_empty() && self.passed + self.failed + self.not_run == 0 {
            problems.push("no tests ran".to_string());
        }
        Summary { passed: self.passed, failed: self.failed, not_run: self.not_run, problems, incomplete }
    }

    fn on_crash(&mut self, crash: Crash, line: &str) -> Option<TestResult> {
        if self.finished {
            self.problems.push(format!("{} after TEST-FINISHED: {line}", crash.describe()));
            return None;
        }
        // The first crash explains the run; later ones (an exception report inside the
        // panic handler, say) only fail whatever test is still marked running.
        if !self.crashed {
            self.crashed = true;
            self.incomplete.push(crash.describe().to_string());
        }
        self.conclude_running(Outcome::Failed(line.to_string()))
    }

    fn on_marker(&mut self, marker: Marker<'_>) -> Option<TestResult> {
        match marker {
            Marker::Suite { name, announced } => {
                let result = self.close_unfinished_suite("TEST-SUITE");
                self.suite =
                    Some(OpenSuite { name: name.to_string(), announced, ran: 0, passed: 0, failed: 0, running: None });
                result
            }
            Marker::Run { test } => {
                if self.suite.is_none() {
                    self.problems.push(format!("TEST-RUN {test} outside a suite"));
                    return None;
                }
                let interrupted = self.conclude_running(Outcome::Failed(format!("no result before TEST-RUN {test}")));
                if let Some(suite) = self.suite.as_mut() {
                    suite.ran += 1;
                    suite.running = Some(test.to_string());
                }
                interrupted
            }
            Marker::Ok { test } => self.on_result(test, "TEST-OK", Outcome::Passed),
            Marker::Fail { test, message } => self.on_result(test, "TEST-FAIL", Outcome::Failed(message.to_string())),
            Marker::Done { passed, failed } => {
                if self.suite.is_none() {
                    self.problems.push("TEST-DONE outside a suite".to_string());
                    return None;
                }
                self.close_suite(Some((passed, failed)), "no result before TEST-DONE")
            }
            Marker::Finished => {
                let result = self.close_unfinished_suite("TEST-FINISHED");
                self.finished = true;
                result
            }
        }
    }

    /// A TEST-OK or TEST-FAIL: it must name the running test.
    fn on_result(&mut self, test: &str, keyword: &str, outcome: Outcome) -> Option<TestResult> {
        let running = self.suite.as_ref().and_then(|suite| suite.running.as_deref());
        match running {
            Some(name) if name == test => self.conclude_running(outcome),
            Some(_) => self.conclude_running(Outcome::Failed(format!("no result; got {keyword} {test} instead"))),
            None => {
                self.problems.push(format!("{keyword} {test} with no test running"));
                None
            }
        }
    }

    /// `next` (a TEST-SUITE or TEST-FINISHED) arrived while a suite had no TEST-DONE yet.
    fn close_unfinished_suite(&mut self, next: &str) -> Option<TestResult> {
        let name = self.suite.as_ref()?.name.clone();
        self.problems.push(format!("suite {name}: no TEST-DONE before {next}"));
        if next == "TEST-FINISHED" {
            self.incomplete.push(format!("TEST-FINISHED while suite {name} was still open"));
        }
        self.close_suite(None, &format!("no result before {next}"))
    }

    /// Ends the open suite, failing its running test with `interruption`, and checks its
    /// counts against the announcement and, when given, the kernel's own TEST-DONE tally.
    fn close_suite(&mut self, reported: Option<(usize, usize)>, interruption: &str) -> Option<TestResult> {
        let result = self.conclude_running(Outcome::Failed(interruption.to_string()));
        let suite = self.suite.take()?;
        if let Some((passed, failed)) = reported {
            if (passed, failed) != (suite.passed, suite.failed) {
                self.problems.push(format!(
                    "suite {}: kernel counted {passed} passed, {failed} failed; \
                     the runner saw {} passed, {} failed",
                    suite.name, suite.passed, suite.failed
                ));
            }
        }
        if suite.ran != suite.announced {
            self.problems.push(format!("suite {}: announced {} tests, ran {}", suite.name, suite.announced, suite.ran));
            self.not_run += suite.announced.saturating_sub(suite.ran);
        }
        result
    }

    fn conclude_running(&mut self, outcome: Outcome) -> Option<TestResult> {
        let suite = self.suite.as_mut()?;
        let test = suite.running.take()?;
        match outcome {
            Outcome::Passed => {
                suite.passed += 1;
                self.passed += 1;
            }
            Outcome::Failed(_) => {
                suite.failed += 1;
                self.failed += 1;
            }
        }
        Some(TestResult { suite: suite.name.clone(), test, outcome })
    }
}

#[derive(Debug, Clone, Copy)]
enum Crash {
    Panic,
    Exception,
}

impl Crash {
    fn find_in(line: &str) -> Option<Crash> {
        if line.contains("KERNEL PANIC") {
            Some(Crash::Panic)
        } else if line.contains("UNEXPECTED EXCEPTION") {
            Some(Crash::Exception)
        } else {
            None
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Crash::Panic => "kernel panic",
            Crash::Exception => "unexpected exception",
        }
    }
}

/// Drops the `\r` of CRLF line ends, and the bytes a serial line picks up while the board
/// resets: anything before the line that is not printable ASCII.
fn strip_line_noise(raw: &str) -> &str {
    raw.trim_end_matches('\r').trim_start_matches(|c: char| !(c == ' ' || c.is_ascii_graphic()))
}

#[derive(Debug, PartialEq, Eq)]
enum Marker<'a> {
    Suite { name: &'a str, announced: usize },
    Run { test: &'a str },
    Ok { test: &'a str },
    Fail { test: &'a str, message: &'a str },
    Done { passed: usize, failed: usize },
    Finished,
}

/// A line that starts with a protocol keyword but whose arguments do not fit it.
#[derive(Debug, PartialEq, Eq)]
struct MalformedMarker;

/// Reads a marker line; `Ok(None)` for any other line.
fn parse_marker(line: &str) -> Result<Option<Marker<'_>>, MalformedMarker> {
    let (keyword, rest) =
        line.split_once(char::is_whitespace).map_or((line, ""), |(keyword, rest)| (keyword, rest.trim()));
    let args: Vec<&str> = rest.split_whitespace().collect();
    let marker = match (keyword, args.as_slice()) {
        ("TEST-SUITE", [name, count]) => Marker::Suite { name, announced: count.parse().map_err(|_| MalformedMarker)? },
        ("TEST-RUN", [test]) => Marker::Run { test },
        ("TEST-OK", [test]) => Marker::Ok { test },
        ("TEST-FAIL", [_, ..]) => {
            // Test names hold no whitespace but may hold colons (`mm::frames`), so the
            // name ends at the first space, less the colon that introduces the message.
            let (name, message) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let test = name.strip_suffix(':').unwrap_or(name);
            if test.is_empty() {
                return Err(MalformedMarker);
            }
            Marker::Fail { test, message: message.trim() }
        }
        ("TEST-DONE", [passed, failed]) => Marker::Done {
            passed: passed.parse().map_err(|_| MalformedMarker)?,
            failed: failed.parse().map_err(|_| MalformedMarker)?,
        },
        ("TEST-FINISHED", []) => Marker::Finished,
        ("TEST-SUITE" | "TEST-RUN" | "TEST-OK" | "TEST-FAIL" | "TEST-DONE" | "TEST-FINISHED", _) => {
            return Err(MalformedMarker)
        }
        _ => return Ok(None),
    };
    Ok(Some(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds every line and collects the results in order.
    fn feed(parser: &mut Parser, console: &str) -> Vec<TestResult> {
        console.split('\n').filter_map(|line| parser.feed_line(line)).collect()
    }

    fn passed(suite: &str, test: &str) -> TestResult {
        TestResult { suite: suite.to_string(), test: test.to_string(), outcome: Outcome::Passed }
    }

    fn failed(suite: &str, test: &str, message: &str) -> TestResult {
        TestResult { suite: suite.to_string(), test: test.to_string(), outcome: Outcome::Failed(message.to_string()) }
    }

    const TWO_PASSING: &str = "\
Aspen booting
TEST-SUITE kernel 2
TEST-RUN mm::frames
TEST-OK mm::frames
TEST-RUN sched::yield
[ 0.01] some log line
TEST-OK sched::yield
TEST-DONE 2 0
TEST-FINISHED";

    #[test]
    fn all_passing_run_succeeds() {
        let mut parser = Parser::new();
        let results = feed(&mut parser, TWO_PASSING);
        assert_eq!(results, [passed("kernel", "mm::frames"), passed("kernel", "sched::yield")]);
        assert!(parser.is_finished());
        let summary = parser.summary();
        assert!(summary.succeeded(), "{summary:?}");
        assert_eq!((summary.passed, summary.failure_count()), (2, 0));
    }

    #[test]
    fn failing_test_keeps_its_message_with_colons() {
        let mut parser = Parser::new();
        let results = feed(
            &mut parser,
            "TEST-SUITE kernel 2\n\
             TEST-RUN mm::map\n\
             TEST-FAIL mm::map: assertion failed: left == right\n\
             TEST-RUN mm::unmap\n\
             TEST-OK mm::unmap\n\
             TEST-DONE 1 1\n\
             TEST-FINISHED",
        );
        assert_eq!(
            results,
            [failed("kernel", "mm::map", "assertion failed: left == right"), passed("kernel", "mm::unmap"),]
        );
        let summary = parser.summary();
        assert!(summary.is_complete());
        assert!(summary.problems.is_empty(), "{summary:?}");
        assert!(!summary.succeeded());
        assert_eq!((summary.passed, summary.failure_count()), (1, 1));
    }

    #[test]
    fn panic_in_a_test_fails_it_and_leaves_the_run_incomplete() {
        let mut parser = Parser::new();
        let results = feed(
            &mut parser,
            "TEST-SUITE kernel 3\n\
             TEST-RUN a\n\
             TEST-OK a\n\
             TEST-RUN b\n\
             KERNEL PANIC: index out of bounds at kernel/src/mm.rs:42",
        );
        assert_eq!(
            results,
            [passed("kernel", "a"), failed("kernel", "b", "KERNEL PANIC: index out of bounds at kernel/src/mm.rs:42"),]
        );
        let late = parser.end(EndReason::ConsoleClosed { cause: "QEMU exited with status 1".to_string() });
        assert_eq!(late, None, "b already failed with the panic");
        let summary = parser.summary();
        assert_eq!(summary.incomplete, ["kernel panic", "QEMU exited with status 1 before the run finished"]);
        assert_eq!(summary.problems, ["suite kernel: announced 3 tests, ran 2"]);
        assert_eq!((summary.passed, summary.failed, summary.not_run), (1, 1, 1));
        assert_eq!(summary.failure_count(), 2);
    }

    #[test]
    fn exception_report_anywhere_in_a_line_is_a_crash() {
        let mut parser = Parser::new();
        let results = feed(
            &mut parser,
            "TEST-SUITE user 1\n\
             TEST-RUN fork\n\
             [cpu0] UNEXPECTED EXCEPTION: data abort at EL1\n\
             ESR_EL1 = 0x96000045",
        );
        assert_eq!(results, [failed("user", "fork", "[cpu0] UNEXPECTED EXCEPTION: data abort at EL1")]);
        assert_eq!(parser.end(EndReason::Silence(Duration::from_secs(5))), None);
        assert_eq!(parser.summary().incomplete, ["unexpected exception", "silence for 5 s"]);
    }

    #[test]
    fn silence_fails_the_running_test() {
        let mut parser = Parser::new();
        feed(&mut parser, "TEST-SUITE kernel 1\nTEST-RUN spin");
        let result = parser.end(EndReason::Silence(Duration::from_secs(120)));
        assert_eq!(result, Some(failed("kernel", "spin", "silence for 120 s")));
        let summary = parser.summary();
        assert_eq!(summary.incomplete, ["silence for 120 s"]);
        assert!(summary.problems.is_empty(), "every announced test ran");
        assert_eq!(summary.failure_count(), 1);
    }

    #[test]
    fn timeout_reads_as_such() {
        let mut parser = Parser::new();
        feed(&mut parser, "TEST-SUITE kernel 4\nTEST-RUN slow");
        parser.end(EndReason::Timeout(Duration::from_secs(600)));
        let summary = parser.summary();
        assert_eq!(summary.incomplete, ["timed out after 600 s"]);
        assert_eq!((summary.failed, summary.not_run), (1, 3));
    }

    #[test]
    fn early_exit_after_passing_tests_still_fails_the_run() {
        let mut parser = Parser::new();
        let results = feed(&mut parser, "TEST-SUITE kernel 1\nTEST-RUN a\nTEST-OK a\nTEST-DONE 1 0");
        assert_eq!(results, [passed("kernel", "a")]);
        assert!(!parser.is_finished());
        parser.end(EndReason::ConsoleClosed { cause: "QEMU exited with status 0".to_string() });
        let summary = parser.summary();
        assert_eq!(summary.incomplete, ["QEMU exited with status 0 before the run finished"]);
        assert_eq!((summary.passed, summary.failed), (1, 0));
        assert_eq!(summary.failure_count(), 1, "an incomplete run counts once");
    }

    #[test]
    fn summary_before_any_end_is_incomplete() {
        let mut parser = Parser::new();
        feed(&mut parser, "TEST-SUITE kernel 1\nTEST-RUN a\nTEST-OK a");
        assert_eq!(parser.summary().incomplete, ["no TEST-FINISHED"]);
    }

    #[test]
    fn end_after_finish_changes_nothing() {
        let mut parser = Parser::new();
        feed(&mut parser, TWO_PASSING);
        assert_eq!(parser.end(EndReason::Silence(Duration::from_secs(1))), None);
        assert!(parser.summary().succeeded());
    }

    #[test]
    fn crlf_and_reset_garbage_are_ignored() {
        let console = "\u{0}\u{fffd}\u{fffd}\u{1b}TEST-SUITE kernel 1\r\n\
                       TEST-RUN boot\r\n\
                       \u{7f}\u{0}TEST-OK boot\r\n\
                       TEST-DONE 1 0\r\r\n\
                       TEST-FINISHED\r";
        let mut parser = Parser::new();
        assert_eq!(feed(&mut parser, console), [passed("kernel", "boot")]);
        assert!(parser.summary().succeeded(), "{:?}", parser.summary());
    }

    #[test]
    fn printable_text_before_a_marker_hides_it() {
        let mut parser = Parser::new();
        feed(&mut parser, "log: TEST-FINISHED\n  TEST-FINISHED");
        assert!(!parser.is_finished());
    }

    #[test]
    fn multiple_suites_label_their_tests() {
        let mut parser = Parser::new();
        let results = feed(
            &mut parser,
            "TEST-SUITE kernel 1\n\
             TEST-RUN a\n\
             TEST-OK a\n\
             TEST-DONE 1 0\n\
             starting init\n\
             TEST-SUITE user 2\n\
             TEST-RUN a\n\
             TEST-OK a\n\
             TEST-RUN b\n\
             TEST-FAIL b: exit status 1\n\
             TEST-DONE 1 1\n\
             TEST-FINISHED",
        );
        assert_eq!(results, [passed("kernel", "a"), passed("user", "a"), failed("user", "b", "exit status 1"),]);
        let summary = parser.summary();
        assert!(summary.is_complete() && summary.problems.is_empty());
        assert_eq!((summary.passed, summary.failure_count()), (2, 1));
    }

    #[test]
    fn fewer_tests_than_announced_count_as_not_run() {
        let mut parser = Parser::new();
        feed(&mut parser, "TEST-SUITE kernel 3\nTEST-RUN a\nTEST-OK a\nTEST-DONE 1 0\nTEST-FINISHED");
        let summary = parser.summary();
        assert!(summary.is_complete());
        assert_eq!(summary.problems, ["suite kernel: announced 3 tests, ran 1"]);
        assert_eq!((summary.passed, summary.not_run, summary.failure_count()), (1, 2, 2));
    }

    #[test]
    fn more_tests_than_announced_fail_the_run() {
        let mut parser = Parser::new();
        feed(
            &mut parser,
            "TEST-SUITE kernel 1\nTEST-RUN a\nTEST-OK a\nTEST-RUN b\nTEST-OK b\n\
             TEST-DONE 2 0\nTEST-FINISHED",
        );
        let summary = parser.summary();
        assert_eq!(summary.problems, ["suite kernel: announced 1 tests, ran 2"]);
        assert_eq!((summary.passed, summary.not_run), (2, 0));
        assert!(!summary.succeeded());
        assert_eq!(summary.failure_count(), 1);
    }

    #[test]
    fn kernel_tally_must_match_what_the_runner_saw() {
        let mut parser = Parser::new();
        feed(&mut parser, "TEST-SUITE kernel 1\nTEST-RUN a\nTEST-OK a\nTEST-DONE 0 1\nTEST-FINISHED");
        assert_eq!(
            parser.summary().problems,
            ["suite kernel: kernel counted 0 passed, 1 failed; the runner saw 1 passed, 0 failed"]
        );
    }

    #[test]
    fn result_for_another_test_fails_the_running_one() {
        let mut parser = Parser::new();
        let results = feed(&mut parser, "TEST-SUITE kernel 1\nTEST-RUN a\nTEST-OK b");
        assert_eq!(results, [failed("kernel", "a", "no result; got TEST-OK b instead")]);
    }

    #[test]
    fn result_with_nothing_running_is_a_problem() {
        let mut parser = Parser::new();
        let results = feed(&mut parser, "TEST-SUITE kernel 0\nTEST-FAIL a: boom");
        assert!(results.is_empty());
        assert_eq!(parser.summary().problems, ["TEST-FAIL a with no test running"]);
    }

    #[test]
    fn next_test_starting_fails_the_silent_one() {
        let mut parser = Parser::new();
        let results =
            feed(&mut parser, "TEST-SUITE kernel 2\nTEST-RUN a\nTEST-RUN b\nTEST-OK b\nTEST-DONE 1 1\nTEST-FINISHED");
        assert_eq!(results, [failed("kernel", "a", "no result before TEST-RUN b"), passed("kernel", "b"),]);
        assert!(parser.summary().problems.is_empty());
    }

    #[test]
    fn new_suite_without_done_closes_the_old_one() {
        let mut parser = Parser::new();
        let results =
            feed(&mut parser, "TEST-SUITE kernel 2\nTEST-RUN a\nTEST-SUITE user 0\nTEST-DONE 0 0\nTEST-FINISHED");
        assert_eq!(results, [failed("kernel", "a", "no result before TEST-SUITE")]);
        let summary = parser.summary();
        assert!(summary.is_complete());
        assert_eq!(
            summary.problems,
            ["suite kernel: no TEST-DONE before TEST-SUITE", "suite kernel: announced 2 tests, ran 1",]
        );
        assert_eq!(summary.failure_count(), 2);
    }

    #[test]
    fn finishing_with_a_suite_open_is_incomplete() {
        let mut parser = Parser::new();
        feed(&mut parser, "TEST-SUITE kernel 1\nTEST-RUN a\nTEST-OK a\nTEST-FINISHED");
        assert!(parser.is_finished());
        let summary = parser.summary();
        assert_eq!(summary.incomplete, ["TEST-FINISHED while suite kernel was still open"]);
        assert_eq!(summary.failure_count(), 1);
    }

    #[test]
    fn run_without_tests_fails() {
        let mut parser = Parser::new();
        feed(&mut parser, "TEST-FINISHED");
        let summary = parser.summary();
        assert!(summary.is_complete());
        assert_eq!(summary.problems, ["no tests ran"]);
        assert_eq!((summary.passed, summary.failure_count()), (0, 1));

        let mut empty_suite = Parser::new();
        feed(&mut empty_suite, "TEST-SUITE kernel 0\nTEST-DONE 0 0\nTEST-FINISHED");
        assert_eq!(empty_suite.summary().problems, ["no tests ran"]);
    }

    #[test]
    fn markers_outside_a_suite_are_problems() {
        let mut parser = Parser::new();
        let results = feed(&mut parser, "TEST-RUN a\nTEST-OK a\nTEST-DONE 1 0");
        assert!(results.is_empty());
        assert_eq!(
            parser.summary().problems,
            ["TEST-RUN a outside a suite", "TEST-OK a with no test running", "TEST-DONE outside a suite",]
        );
    }

    #[test]
    fn malformed_markers_are_problems_and_lookalikes_are_log_text() {
        let mut parser = Parser::new();
        feed(&mut parser, "TEST-SUITE kernel many\nTEST-RUNNER started\nTEST-DONE 1\nTEST-FINISHED now");
        assert_eq!(
            parser.summary().problems,
            [
                "malformed protocol line `TEST-SUITE kernel many`",
                "malformed protocol line `TEST-DONE 1`",
                "malformed protocol line `TEST-FINISHED now`",
            ]
        );
    }

    #[test]
    fn fail_without_message_is_accepted() {
        assert_eq!(parse_marker("TEST-FAIL a"), Ok(Some(Marker::Fail { test: "a", message: "" })));
        assert_eq!(parse_marker("TEST-FAIL :"), Err(MalformedMarker));
    }

    #[test]
    fn output_after_finish_is_noted() {
        let mut parser = Parser::new();
        feed(&mut parser, TWO_PASSING);
        feed(&mut parser, "Powering off\nTEST-RUN late\nKERNEL PANIC: poweroff failed at psci.rs:9");
        let summary = parser.summary();
        assert!(summary.is_complete());
        assert_eq!(
            summary.problems,
            [
                "`TEST-RUN late` after TEST-FINISHED",
                "kernel panic after TEST-FINISHED: KERNEL PANIC: poweroff failed at psci.rs:9",
            ]
        );
        assert!(!summary.succeeded());
    }
}
