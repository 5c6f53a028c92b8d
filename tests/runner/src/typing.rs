//! Typing a session into a console as a person would: waits for the first shell prompt,
//! picks the session whose prompt it is, types each check's keys a key at a time and
//! matches what comes back (see [`crate::script`] for the session files).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::console::{Console, Received};
use crate::error::StartError;
use crate::protocol::Summary;
use crate::report;
use crate::script::{self, Action, Check, Script, ScriptError};
use crate::session::{Session, SilenceFrom};

/// The pause after each typed key, as a person types (and to stay under a UART's FIFO).
const KEY_PAUSE: Duration = Duration::from_millis(20);

/// How much of the console a failed check shows: its last bytes.
const SHOWN_BYTES: usize = 2048;

/// A console that prints this much within one check without a match is cut at the front,
/// so it cannot make the runner hold an unbounded transcript.
const MAX_TRANSCRIPT_BYTES: usize = 1 << 20;

/// A session file, loaded and parsed.
#[derive(Debug)]
pub struct NamedScript {
    /// The file's name without its extension: `busybox` for tests/console/busybox.session.
    pub name: String,
    pub script: Script,
}

/// Why a session file cannot be used.
#[derive(Debug)]
pub enum LoadError {
    Read(io::Error),
    Parse(ScriptError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read(error) => write!(f, "{error}"),
            LoadError::Parse(error) => write!(f, "{error}"),
        }
    }
}

/// Reads and parses the session files.
pub fn load(paths: &[PathBuf]) -> Result<Vec<NamedScript>, StartError> {
    paths
        .iter()
        .map(|path| {
            let fail = |error| StartError::LoadSession { path: path.clone(), error };
            let text = fs::read_to_string(path).map_err(|error| fail(LoadError::Read(error)))?;
            let script = script::parse(&text).map_err(|error| fail(LoadError::Parse(error)))?;
            Ok(NamedScript { name: session_name(path), script })
        })
        .collect()
}

fn session_name(path: &Path) -> String {
    path.file_stem().unwrap_or(path.as_os_str()).to_string_lossy().into_owned()
}

/// What the console showed since a check began, and where the next match starts.
#[derive(Debug, Default)]
pub struct Transcript {
    bytes: Vec<u8>,
    /// Matches are looked for from here: after the last typed key or the last match.
    cursor: usize,
}

impl Transcript {
    pub fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        if self.bytes.len() > MAX_TRANSCRIPT_BYTES {
            let cut = self.bytes.len() - MAX_TRANSCRIPT_BYTES / 2;
            self.bytes.drain(..cut);
            self.cursor = self.cursor.saturating_sub(cut);
        }
    }

    /// A new check: what came before is no longer shown, and matches start from here.
    pub fn begin_check(&mut self) {
        self.bytes.drain(..self.cursor);
        self.cursor = 0;
    }

    /// Keys are being typed: what the console shows from now on answers them.
    pub fn mark_typed(&mut self) {
        self.cursor = self.bytes.len();
    }

    /// Whether `text` shows up after the cursor; if so the cursor moves past it.
    pub fn take(&mut self, text: &[u8]) -> bool {
        match find(&self.bytes[self.cursor..], text) {
            Some(at) => {
                self.cursor += at + text.len();
                true
            }
            None => false,
        }
    }

    /// Which of `texts` shows up first after the cursor; the cursor moves past it.
    pub fn take_first(&mut self, texts: &[&[u8]]) -> Option<usize> {
        let unread = &self.bytes[self.cursor..];
        let (at, index, len) = texts
            .iter()
            .enumerate()
            .filter_map(|(index, text)| find(unread, text).map(|at| (at, index, text.len())))
            .min()?;
        self.cursor += at + len;
        Some(index)
    }

    /// The last bytes shown since the check began, escaped so that `\r`, `\n` and control
    /// keys can be read.
    pub fn shown(&self) -> String {
        let start = self.bytes.len().saturating_sub(SHOWN_BYTES);
        let cut = if start > 0 { "..." } else { "" };
        format!("\"{cut}{}\"", self.bytes[start..].escape_ascii())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Why a wait, or the whole session, ended without what it waited for.
#[derive(Debug)]
enum Interruption {
    /// The step's own limit.
    StepTimeout(Duration),
    /// The console stopped; the rest of the session cannot run.
    Closed(Option<io::Error>),
    Silence,
    Timeout,
    /// Typing failed; the rest of the session cannot run either.
    Write(io::Error),
}

impl Interruption {
    fn ends_session(&self) -> bool {
        !matches!(self, Interruption::StepTimeout(_))
    }
}

/// Limits of the whole session, from the run's options.
pub struct Limits {
    pub timeout: Duration,
    pub silence: Duration,
    pub silence_from: SilenceFrom,
}

/// The console being typed into.
struct Typist<'a> {
    console: &'a Console,
    keyboard: &'a mut dyn Write,
    session: &'a mut Session,
    transcript: Transcript,
    overall_deadline: Instant,
}

impl Typist<'_> {
    /// Reads the console until `done` says yes, the deadline passes or the console stops.
    fn wait<T>(
        &mut self,
        deadline: Instant,
        on_deadline: Interruption,
        mut done: impl FnMut(&mut Transcript) -> Option<T>,
    ) -> Result<T, Interruption> {
        loop {
            if let Some(found) = done(&mut self.transcript) {
                return Ok(found);
            }
            match self.console.receive_until(deadline.min(self.overall_deadline)) {
                Received::Bytes(bytes) => self.take_bytes(&bytes),
                Received::Closed(error) => return Err(Interruption::Closed(error)),
                Received::TimedOut if Instant::now() >= self.overall_deadline => return Err(Interruption::Timeout),
                Received::TimedOut => return Err(on_deadline),
            }
        }
    }

    /// Waits for the first of the sessions' prompts, within the silence limit.
    fn first_prompt(&mut self, prompts: &[&[u8]], limits: &Limits) -> Result<usize, Interruption> {
        let mut last_byte = (limits.silence_from == SilenceFrom::Start).then(Instant::now);
        loop {
            if let Some(index) = self.transcript.take_first(prompts) {
                return Ok(index);
            }
            let deadline = match last_byte {
                Some(last) => self.overall_deadline.min(last + limits.silence),
                None => self.overall_deadline,
            };
            match self.console.receive_until(deadline) {
                Received::Bytes(bytes) => {
                    last_byte = Some(Instant::now());
                    self.take_bytes(&bytes);
                }
                Received::Closed(error) => return Err(Interruption::Closed(error)),
                Received::TimedOut if Instant::now() >= self.overall_deadline => return Err(Interruption::Timeout),
                Received::TimedOut => return Err(Interruption::Silence),
            }
        }
    }

    fn take_bytes(&mut self, bytes: &[u8]) {
        self.session.record(bytes);
        self.transcript.push(bytes);
    }

    /// Types `keys` a key at a time; the console's answer is matched from the first key on.
    fn type_keys(&mut self, keys: &[u8]) -> Result<(), Interruption> {
        self.transcript.mark_typed();
        for key in keys {
            self.keyboard.write_all(&[*key]).and_then(|()| self.keyboard.flush()).map_err(Interruption::Write)?;
            thread::sleep(KEY_PAUSE);
        }
        Ok(())
    }

    /// Waits `pause` while still recording the console.
    fn sleep(&mut self, pause: Duration) -> Result<(), Interruption> {
        let until = Instant::now() + pause;
        match self.wait(until, Interruption::StepTimeout(pause), |_| None::<()>) {
            Err(Interruption::StepTimeout(_)) => Ok(()),
            other => other,
        }
    }

    /// Runs a check's steps; the error names the failing step's line and what it waited for.
    fn run_check(&mut self, check: &Check, prompt: &[u8]) -> Result<(), (String, Interruption)> {
        self.transcript.begin_check();
        for step in &check.steps {
            let what = |waited: &str| format!("line {}: {waited}", step.line);
            match &step.action {
                Action::Type(keys) => self.type_keys(keys).map_err(|error| (what("typing"), error))?,
                Action::Sleep(pause) => self.sleep(*pause).map_err(|error| (what("sleeping"), error))?,
                Action::Expect { text, timeout } => {
                    let deadline = Instant::now() + *timeout;
                    self.wait(deadline, Interruption::StepTimeout(*timeout), |seen| seen.take(text).then_some(()))
                        .map_err(|error| (what(&format!("expected \"{}\"", text.escape_ascii())), error))?
                }
                Action::Prompt { timeout } => {
                    let deadline = Instant::now() + *timeout;
                    self.wait(deadline, Interruption::StepTimeout(*timeout), |seen| seen.take(prompt).then_some(()))
                        .map_err(|error| (what(&format!("expected the prompt \"{}\"", prompt.escape_ascii())), error))?
                }
            }
        }
        Ok(())
    }
}

/// Types the session whose prompt shows up first and reports each check as it ends.
/// `describe_close` says why the console closed (only the mode knows).
pub fn run(
    console: &Console,
    keyboard: &mut dyn Write,
    session: &mut Session,
    scripts: &[NamedScript],
    limits: &Limits,
    describe_close: &mut dyn FnMut(Option<io::Error>) -> String,
) -> Summary {
    let mut typist = Typist {
        console,
        keyboard,
        session,
        transcript: Transcript::default(),
        overall_deadline: Instant::now() + limits.timeout,
    };
    let mut summary = Summary::default();
    let prompts: Vec<&[u8]> = scripts.iter().map(|named| named.script.prompt.as_slice()).collect();
    let chosen = match typist.first_prompt(&prompts, limits) {
        Ok(index) => &scripts[index],
        Err(interruption) => {
            let waited = prompts.iter().map(|prompt| format!("\"{}\"", prompt.escape_ascii())).collect::<Vec<_>>();
            summary.incomplete.push(format!(
                "no shell prompt ({}): {}",
                waited.join(" or "),
                describe(interruption, limits, describe_close)
            ));
            return summary;
        }
    };
    report::say(&format!(
        "aspen-runner: the prompt \"{}\" came first: session {}",
        chosen.script.prompt.escape_ascii(),
        chosen.name
    ));
    for (index, check) in chosen.script.checks.iter().enumerate() {
        let label = format!("session {}::{}", chosen.name, check.name);
        match typist.run_check(check, &chosen.script.prompt) {
            Ok(()) => {
                summary.passed += 1;
                report::say(&format!("{label} ... ok"));
            }
            Err((step, interruption)) => {
                summary.failed += 1;
                let ends_session = interruption.ends_session();
                let why = describe(interruption, limits, describe_close);
                report::say(&format!(
                    "{label} ... FAILED: {step}: {why}; the console showed {}",
                    typist.transcript.shown()
                ));
                if ends_session {
                    summary.not_run = chosen.script.checks.len() - index - 1;
                    summary.incomplete.push(format!("session {}: {why}", chosen.name));
                    break;
                }
            }
        }
    }
    summary
}

fn describe(
    interruption: Interruption,
    limits: &Limits,
    describe_close: &mut dyn FnMut(Option<io::Error>) -> String,
) -> String {
    match interruption {
        Interruption::StepTimeout(limit) => format!("not within {} s", limit.as_secs_f64()),
        Interruption::Closed(error) => describe_close(error),
        Interruption::Silence => format!("silence for {} s", limits.silence.as_secs()),
        Interruption::Timeout => format!("timed out after {} s", limits.timeout.as_secs()),
        Interruption::Write(error) => format!("typing into the console failed ({error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_follow_one_another() {
        let mut transcript = Transcript::default();
        transcript.push(b"boot\r\naspen:~# ");
        assert!(transcript.take(b"aspen:~# "));
        transcript.mark_typed();
        transcript.push(b"ps\r\n  1 /init\r\n  2 -sh\r\naspen:");
        assert!(transcript.take(b"-sh\r\n"));
        // What came before the last match is behind the cursor.
        assert!(!transcript.take(b"/init"));
        assert!(!transcript.take(b"aspen:~# "));
        // A text split across chunks matches once it is whole.
        transcript.push(b"~# ");
        assert!(transcript.take(b"aspen:~# "));
        assert!(!transcript.take(b"aspen:~# "));
    }

    #[test]
    fn typing_moves_the_cursor_past_earlier_output() {
        let mut transcript = Transcript::default();
        transcript.push(b"status=130\r\n");
        transcript.mark_typed();
        assert!(!transcript.take(b"status=130"));
        transcript.push(b"status=0\r\n");
        assert!(transcript.take(b"status=0"));
    }

    #[test]
    fn the_first_prompt_to_show_wins() {
        let mut transcript = Transcript::default();
        transcript.push(b"init: no /bin/sh\r\naspen# later aspen:~# ");
        assert_eq!(transcript.take_first(&[b"aspen:~# ", b"aspen# "]), Some(1));
        assert_eq!(transcript.take_first(&[b"aspen:~# ", b"aspen# "]), Some(0));
        assert_eq!(transcript.take_first(&[b"aspen:~# ", b"aspen# "]), None);
    }

    #[test]
    fn a_failure_shows_the_check_s_last_2_kb_escaped() {
        let mut transcript = Transcript::default();
        transcript.push(b"before the check");
        transcript.mark_typed();
        transcript.begin_check();
        transcript.push(b"echo x\r\n\x1b[K");
        assert_eq!(transcript.shown(), "\"echo x\\r\\n\\x1b[K\"");
        transcript.push(&[b'y'; SHOWN_BYTES]);
        let shown = transcript.shown();
        assert!(shown.starts_with("\"...yyy"));
        assert_eq!(shown.len(), SHOWN_BYTES + 5);
    }

    #[test]
    fn a_runaway_console_is_cut_at_the_front() {
        let mut transcript = Transcript::default();
        transcript.push(b"marker");
        transcript.push(&vec![b'z'; MAX_TRANSCRIPT_BYTES]);
        assert!(transcript.bytes.len() <= MAX_TRANSCRIPT_BYTES);
        assert!(!transcript.take(b"marker"));
        transcript.push(b"end");
        assert!(transcript.take(b"zzend"));
    }

    /// A shell on the other end of a socket: it echoes what is typed, answers `echo hi`
    /// and hangs up on `exit`.
    fn fake_shell(mut line: std::os::unix::net::UnixStream) {
        use std::io::Read;
        line.write_all(b"booting\r\n$ ").expect("prompt");
        let mut typed = Vec::new();
        let mut key = [0u8];
        while line.read(&mut key).is_ok_and(|count| count == 1) {
            if key[0] != b'\r' {
                typed.push(key[0]);
                line.write_all(&key).expect("echo");
                continue;
            }
            match typed.as_slice() {
                b"exit" => return,
                b"echo hi" => line.write_all(b"\r\nhi\r\n$ ").expect("answer"),
                _ => line.write_all(b"\r\nsh: not found\r\n$ ").expect("answer"),
            }
            typed.clear();
        }
    }

    /// The run limits of the whole-session tests: far from what they need.
    fn test_limits() -> Limits {
        Limits { timeout: Duration::from_secs(30), silence: Duration::from_secs(5), silence_from: SilenceFrom::Start }
    }

    #[test]
    fn checks_pass_fail_and_stop_when_the_console_closes() {
        let (runner_end, shell_end) = std::os::unix::net::UnixStream::pair().expect("socket pair");
        let shell = thread::spawn(move || fake_shell(shell_end));
        let mut keyboard = runner_end.try_clone().expect("clone");
        let console = Console::spawn(runner_end);
        let script = script::parse(
            "prompt $\\x20\ntimeout 0.5\n\
             check echo\ntype echo hi\\r\nexpect \\r\\nhi\\r\\n\nprompt\n\
             check wrong answer\ntype echo ho\\r\nexpect \\r\\nho\\r\\n\n\
             check exit\ntype exit\\r\nexpect bye\n\
             check never typed\ntype echo hi\\r\n",
        )
        .expect("parses");
        let scripts = [NamedScript { name: "fake".to_string(), script }];
        let mut session = Session::start_recording(&crate::cli::RunOptions::default()).expect("session");
        let limits = test_limits();
        let summary =
            run(&console, &mut keyboard, &mut session, &scripts, &limits, &mut |error| format!("hung up ({error:?})"));
        shell.join().expect("shell");
        assert_eq!((summary.passed, summary.failed, summary.not_run), (1, 2, 1));
        assert_eq!(summary.incomplete, ["session fake: hung up (None)"]);
        assert!(!summary.succeeded());
    }

    #[test]
    fn no_prompt_is_a_failure_that_names_the_prompts() {
        let console = Console::spawn(&b"Kernel panic\r\n"[..]);
        let script = script::parse("prompt aspen#\\x20\ncheck c\nprompt\n").expect("parses");
        let scripts = [NamedScript { name: "s".to_string(), script }];
        let mut session = Session::start_recording(&crate::cli::RunOptions::default()).expect("session");
        let limits = test_limits();
        let summary =
            run(&console, &mut io::sink(), &mut session, &scripts, &limits, &mut |_| "QEMU exited".to_string());
        assert_eq!((summary.passed, summary.failed, summary.not_run), (0, 0, 0));
        assert_eq!(summary.incomplete, ["no shell prompt (\"aspen# \"): QEMU exited"]);
        assert_eq!(summary.failure_count(), 1);
    }

    #[test]
    fn session_names_are_file_stems() {
        assert_eq!(session_name(Path::new("tests/console/busybox.session")), "busybox");
        assert_eq!(session_name(Path::new("init-shell")), "init-shell");
    }

    #[test]
    fn loading_names_the_file_and_the_line() {
        let dir = std::env::temp_dir().join(format!("aspen-runner-typing-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temporary directory");
        let good = dir.join("good.session");
        let bad = dir.join("bad.session");
        fs::write(&good, "prompt $\\x20\ncheck echo\ntype echo\\r\nprompt\n").expect("write");
        fs::write(&bad, "prompt $\\x20\ncheck c\npress x\n").expect("write");
        let loaded = load(std::slice::from_ref(&good)).expect("good loads");
        assert_eq!((loaded[0].name.as_str(), loaded[0].script.prompt.as_slice()), ("good", &b"$ "[..]));
        let Err(StartError::LoadSession { path, error }) = load(&[good, bad.clone()]) else {
            panic!("bad must not load")
        };
        assert_eq!(path, bad);
        assert!(error.to_string().starts_with("line 3: unknown statement `press`"));
        let missing = dir.join("missing.session");
        assert!(matches!(load(&[missing]), Err(StartError::LoadSession { error: LoadError::Read(_), .. })));
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
