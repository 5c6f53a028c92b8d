//! One run's console session, shared by the QEMU and serial modes: it streams the console
//! under the overall and silence limits, logs and echoes it, keeps its last lines for the
//! report, and feeds the protocol parser (a typed session only records the console).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cli::RunOptions;
use crate::console::{Console, LineSplitter, Received};
use crate::error::StartError;
use crate::protocol::{EndReason, Parser, Summary};
use crate::report::{self, Report};

/// How many console lines the failure report shows.
const TAIL_LINES: usize = 40;

/// Why [`Session::stream`] returned.
#[derive(Debug)]
pub enum Stop {
    /// The kernel printed TEST-FINISHED.
    Finished,
    /// End of file (`None`) or a read error.
    Closed(Option<io::Error>),
    Silence,
    Timeout,
}

/// When the silence limit starts to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceFrom {
    /// From the start: QEMU prints as soon as it boots.
    Start,
    /// From the first console byte: a real board prints nothing until someone resets it.
    FirstByte,
}

pub struct Session {
    /// `None` while a session is typed: its console is a shell's, not the test protocol.
    parser: Option<Parser>,
    lines: LineSplitter,
    tail: VecDeque<String>,
    log: Option<ConsoleLog>,
    log_failure: Option<String>,
    echo: bool,
    timeout: Duration,
    silence: Duration,
    started: Instant,
}

struct ConsoleLog {
    path: PathBuf,
    file: File,
}

impl Session {
    /// Starts the clock of the overall timeout, and creates the log file if asked for.
    pub fn start(options: &RunOptions) -> Result<Session, StartError> {
        Session::with_parser(options, Some(Parser::new()))
    }

    /// A session that only records the console (log, echo, last lines) for a typed session.
    pub fn start_recording(options: &RunOptions) -> Result<Session, StartError> {
        Session::with_parser(options, None)
    }

    fn with_parser(options: &RunOptions, parser: Option<Parser>) -> Result<Session, StartError> {
        let log = match &options.log {
            Some(path) => Some(ConsoleLog {
                file: File::create(path).map_err(|source| StartError::CreateLog { path: path.clone(), source })?,
                path: path.clone(),
            }),
            None => None,
        };
        Ok(Session {
            parser,
            lines: LineSplitter::default(),
            tail: VecDeque::with_capacity(TAIL_LINES),
            log,
            log_failure: None,
            echo: options.echo,
            timeout: options.timeout,
            silence: options.silence,
            started: Instant::now(),
        })
    }

    /// Reads the console until the kernel finishes, the console closes or a limit is hit.
    pub fn stream(&mut self, console: &Console, silence_from: SilenceFrom) -> Stop {
        let overall_deadline = self.started + self.timeout;
        let mut last_byte = (silence_from == SilenceFrom::Start).then(Instant::now);
        loop {
            let deadline = match last_byte {
                Some(last) => overall_deadline.min(last + self.silence),
                None => overall_deadline,
            };
            match console.receive_until(deadline) {
                Received::Bytes(bytes) => {
                    last_byte = Some(Instant::now());
                    self.take_bytes(&bytes);
                    if self.parser.as_ref().is_some_and(Parser::is_finished) {
                        return Stop::Finished;
                    }
                }
                Received::Closed(error) => return Stop::Closed(error),
                Received::TimedOut if Instant::now() >= overall_deadline => return Stop::Timeout,
                Received::TimedOut => return Stop::Silence,
            }
        }
    }

    /// After TEST-FINISHED: keeps recording what the console still prints until it closes
    /// or `deadline` passes.
    pub fn drain_until(&mut self, console: &Console, deadline: Instant) {
        while let Received::Bytes(bytes) = console.receive_until(deadline) {
            self.take_bytes(&bytes);
        }
    }

    /// The reason to hand the parser when the console stopped before TEST-FINISHED.
    /// Only the mode can say why its console closed, so it describes that.
    pub fn end_reason(
        &self,
        stop: Stop,
        describe_close: impl FnOnce(Option<io::Error>) -> String,
    ) -> Option<EndReason> {
        match stop {
            Stop::Finished => None,
            Stop::Closed(error) => Some(EndReason::ConsoleClosed { cause: describe_close(error) }),
            Stop::Silence => Some(EndReason::Silence(self.silence)),
            Stop::Timeout => Some(EndReason::Timeout(self.timeout)),
        }
    }

    /// Ends the session: settles the unterminated last line, tells the parser why the
    /// console stopped (when it stopped early), and builds the report.
    pub fn conclude(mut self, end: Option<EndReason>, qemu_stderr: Option<String>) -> Report {
        if let Some(line) = self.lines.flush() {
            self.take_line(line);
        }
        let mut parser = self.parser.take().unwrap_or_default();
        if let Some(reason) = end {
            if let Some(result) = parser.end(reason) {
                report::print_result(&result);
            }
        }
        let summary = parser.summary();
        self.report(summary, qemu_stderr)
    }

    /// Ends a typed session with the summary of its checks.
    pub fn conclude_with(mut self, summary: Summary, qemu_stderr: Option<String>) -> Report {
        if let Some(line) = self.lines.flush() {
            self.take_line(line);
        }
        self.report(summary, qemu_stderr)
    }

    fn report(self, mut summary: Summary, qemu_stderr: Option<String>) -> Report {
        summary.problems.extend(self.log_failure);
        Report { summary, console_tail: self.tail.into(), qemu_stderr }
    }

    /// Records console bytes: the log, the echo and the last lines.
    pub fn record(&mut self, bytes: &[u8]) {
        self.take_bytes(bytes);
    }

    fn take_bytes(&mut self, bytes: &[u8]) {
        self.write_log(bytes);
        for line in self.lines.push(bytes) {
            self.take_line(line);
        }
    }

    fn take_line(&mut self, line: String) {
        if self.echo {
            report::say(line.trim_end_matches('\r'));
        }
        if let Some(result) = self.parser.as_mut().and_then(|parser| parser.feed_line(&line)) {
            report::print_result(&result);
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.trim_end_matches('\r').to_string());
    }

    /// A log that cannot be written fails the run at the end rather than cutting it short:
    /// the results on stdout are still worth having.
    fn write_log(&mut self, bytes: &[u8]) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        if let Err(error) = log.file.write_all(bytes) {
            self.log_failure = Some(format!("cannot write the log {}: {error}", log.path.display()));
            self.log = None;
        }
    }
}
