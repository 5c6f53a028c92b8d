//! Typed console sessions: the text format of a session file, parsed into checks.
//!
//! A session is what a person types into a shell on the console and what must come back.
//! One statement a line; `#` starts a comment line; blank lines are ignored:
//!
//! ```text
//! prompt aspen:~#\x20      the shell's prompt (required, before the first check)
//! timeout 20               how long an `expect` or `prompt` waits, in seconds (default 20)
//! check an edited line     starts a named check; the steps below belong to it
//!   type echo abc\x7fd\r   types the keys, one every 20 ms; later matches start after them
//!   expect \r\nabd\r\n     waits for the text after the last match (or the typed keys)
//!   prompt                 waits for the prompt after that
//!   sleep 2                waits this many seconds (a fraction is fine: 0.5)
//! ```
//!
//! Texts run to the end of the line and take the escapes `\r`, `\n`, `\t`, `\\` and `\xHH`
//! (`\x03` is ^C, `\x1b[A` the up arrow); blanks between the keyword and the text are not
//! part of it. A line may not end in a blank, which an editor would strip unseen: write a
//! text's leading or trailing space as `\x20`. The session applies when its prompt
//! is the first of the given sessions' prompts to show up on the console.

use std::fmt;
use std::time::Duration;

/// How long an `expect` or `prompt` waits unless the session says otherwise.
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// A parsed session file.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// The prompt that selects this session and that `prompt` steps wait for.
    pub prompt: Vec<u8>,
    pub checks: Vec<Check>,
}

/// A named check: its steps run in order, and it fails at the first step that fails.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step's line in the session file, for reports.
    pub line: usize,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Type(Vec<u8>),
    Expect {
        text: Vec<u8>,
        timeout: Duration,
    },
    /// Waits for the session's prompt.
    Prompt {
        timeout: Duration,
    },
    Sleep(Duration),
}

/// What is wrong with a session file, and on which line (counted from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

/// Parses a session file's text.
pub fn parse(text: &str) -> Result<Script, ScriptError> {
    let mut prompt: Option<Vec<u8>> = None;
    let mut timeout = DEFAULT_STEP_TIMEOUT;
    let mut checks: Vec<Check> = Vec::new();
    let mut last_line = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        last_line = line;
        let error = |message: String| ScriptError { line, message };
        if raw.ends_with([' ', '\t']) {
            return Err(error("the line ends in a blank: write a trailing space as \\x20".to_string()));
        }
        let statement = raw.trim_start();
        if statement.is_empty() || statement.starts_with('#') {
            continue;
        }
        let (keyword, argument) = match statement.split_once([' ', '\t']) {
            Some((keyword, argument)) => (keyword, Some(argument.trim_start())),
            None => (statement, None),
        };
        let step = match (keyword, argument) {
            ("prompt", Some(text)) if checks.is_empty() => {
                if prompt.is_some() {
                    return Err(error("a second `prompt` line: a session has one prompt".to_string()));
                }
                prompt = Some(unescape(text).map_err(error)?);
                continue;
            }
            ("prompt", Some(_)) => {
                return Err(error("`prompt TEXT` belongs before the first check".to_string()));
            }
            ("timeout", Some(seconds)) if checks.is_empty() => {
                timeout = parse_seconds(seconds).map_err(error)?;
                continue;
            }
            ("timeout", Some(_)) => return Err(error("`timeout SECS` belongs before the first check".to_string())),
            ("check", Some(name)) => {
                if prompt.is_none() {
                    return Err(error("a check before the `prompt` line".to_string()));
                }
                if let Some(previous) = checks.iter().find(|check| check.name == name) {
                    return Err(error(format!("a second check named `{}`", previous.name)));
                }
                checks.push(Check { name: name.to_string(), steps: Vec::new() });
                continue;
            }
            ("type", Some(keys)) => Action::Type(unescape(keys).map_err(error)?),
            ("expect", Some(text)) => Action::Expect { text: unescape(text).map_err(error)?, timeout },
            ("prompt", None) => Action::Prompt { timeout },
            ("sleep", Some(seconds)) => Action::Sleep(parse_seconds(seconds).map_err(error)?),
            ("check" | "type" | "expect" | "sleep" | "timeout", None) => {
                return Err(error(format!("`{keyword}` needs an argument")));
            }
            (other, _) => {
                return Err(error(format!(
                    "unknown statement `{other}`: expected prompt, timeout, check, type, expect or sleep"
                )))
            }
        };
        if matches!(&step, Action::Type(keys) | Action::Expect { text: keys, .. } if keys.is_empty()) {
            return Err(error(format!("`{keyword}` needs a text")));
        }
        match checks.last_mut() {
            Some(check) => check.steps.push(Step { line, action: step }),
            None => return Err(error(format!("`{keyword}` outside a check: start one with `check NAME`"))),
        }
    }
    let end = |message: &str| ScriptError { line: last_line, message: message.to_string() };
    let prompt = prompt.ok_or_else(|| end("no `prompt` line"))?;
    if checks.is_empty() {
        return Err(end("no checks"));
    }
    if let Some(empty) = checks.iter().find(|check| check.steps.is_empty()) {
        return Err(end(&format!("check `{}` has no steps", empty.name)));
    }
    Ok(Script { prompt, checks })
}

/// A positive number of seconds, whole or with a fraction.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(Duration::from_secs_f64(seconds)),
        _ => Err(format!("`{text}` is not a positive number of seconds")),
    }
}

/// A text with its escapes turned into bytes.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut utf8 = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            continue;
        }
        let byte = match chars.next() {
            Some('r') => b'\r',
            Some('n') => b'\n',
            Some('t') => b'\t',
            Some('\\') => b'\\',
            Some('x') => {
                let digits: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&digits, 16) {
                    Ok(byte) if digits.len() == 2 => byte,
                    _ => return Err(format!("`\\x{digits}` is not \\x and two hexadecimal digits")),
                }
            }
            Some(other) => return Err(format!("unknown escape `\\{other}`: expected \\r \\n \\t \\\\ or \\xHH")),
            None => return Err("a lone `\\` at the end of the text".to_string()),
        };
        bytes.push(byte);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    #[test]
    fn a_whole_session() {
        let script = parse(
            "# busybox sh\n\
             prompt aspen:~#\\x20\n\
             timeout 5\n\
             \n\
             check an edited line\n\
             \ttype echo abc\\x7fd\\r\n\
             \texpect \\r\\nabd\\r\\n\n\
             \tprompt\n\
             check ^C\n\
             \x20 sleep 0.5\n\
             \x20 type \\x03\\x1b[A\\\\\n",
        );
        let timeout = Duration::from_secs(5);
        let step = |line, action| Step { line, action };
        assert_eq!(
            script,
            Ok(Script {
                prompt: b"aspen:~# ".to_vec(),
                checks: vec![
                    Check {
                        name: "an edited line".to_string(),
                        steps: vec![
                            step(6, Action::Type(b"echo abc\x7fd\r".to_vec())),
                            step(7, Action::Expect { text: b"\r\nabd\r\n".to_vec(), timeout }),
                            step(8, Action::Prompt { timeout }),
                        ],
                    },
                    Check {
                        name: "^C".to_string(),
                        steps: vec![
                            step(10, Action::Sleep(Duration::from_millis(500))),
                            step(11, Action::Type(b"\x03\x1b[A\\".to_vec())),
                        ],
                    },
                ],
            })
        );
    }

    #[test]
    fn the_step_timeout_defaults_to_20_seconds() {
        let script = parse("prompt $\\x20\ncheck c\nprompt\n").expect("parses");
        assert_eq!(script.checks[0].steps[0].action, Action::Prompt { timeout: Duration::from_secs(20) });
    }

    #[test]
    fn texts_keep_utf8_and_inner_blanks() {
        let script = parse("prompt » \\x20\ncheck c\nexpect a  b\t\\tc\n").expect("parses");
        assert_eq!(script.prompt, "» \x20".as_bytes());
        assert_eq!(
            script.checks[0].steps[0].action,
            Action::Expect { text: b"a  b\t\tc".to_vec(), timeout: DEFAULT_STEP_TIMEOUT }
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(error_of("prompt $ "), "line 1: the line ends in a blank: write a trailing space as \\x20");
        assert_eq!(error_of("prompt $\ntype x"), "line 2: `type` outside a check: start one with `check NAME`");
        assert_eq!(error_of("check c\n"), "line 1: a check before the `prompt` line");
        assert_eq!(error_of("prompt $\nprompt #"), "line 2: a second `prompt` line: a session has one prompt");
        assert_eq!(error_of("prompt $\ncheck c\nprompt #"), "line 3: `prompt TEXT` belongs before the first check");
        assert_eq!(error_of("prompt $\ncheck c\ntimeout 3"), "line 3: `timeout SECS` belongs before the first check");
        assert_eq!(error_of("prompt $\ncheck c\nsleep\n"), "line 3: `sleep` needs an argument");
        assert_eq!(error_of("prompt $\ncheck c\nsleep 0"), "line 3: `0` is not a positive number of seconds");
        assert_eq!(error_of("prompt $\ncheck c\nsleep -1"), "line 3: `-1` is not a positive number of seconds");
        assert_eq!(error_of("prompt $\ncheck c\nsleep inf"), "line 3: `inf` is not a positive number of seconds");
        assert_eq!(error_of("prompt $\ncheck c\ntype \\"), "line 3: a lone `\\` at the end of the text");
        assert_eq!(
            error_of("prompt $\ncheck c\ntype \\q"),
            "line 3: unknown escape `\\q`: expected \\r \\n \\t \\\\ or \\xHH"
        );
        assert_eq!(error_of("prompt $\ncheck c\ntype \\x4"), "line 3: `\\x4` is not \\x and two hexadecimal digits");
        assert_eq!(error_of("prompt $\ncheck c\ntype \\xg0"), "line 3: `\\xg0` is not \\x and two hexadecimal digits");
        assert_eq!(
            error_of("prompt $\ncheck c\npress x"),
            "line 3: unknown statement `press`: expected prompt, timeout, check, type, expect or sleep"
        );
        assert_eq!(error_of("prompt $\ncheck c\nprompt\ncheck c\nprompt"), "line 4: a second check named `c`");
    }

    #[test]
    fn errors_of_the_whole_file_name_its_last_line() {
        assert_eq!(error_of("# nothing\n\n"), "line 2: no `prompt` line");
        assert_eq!(error_of("prompt $\n"), "line 1: no checks");
        assert_eq!(error_of("prompt $\ncheck a\nprompt\ncheck b\n"), "line 4: check `b` has no steps");
    }
}
