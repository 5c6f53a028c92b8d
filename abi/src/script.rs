//! `#!` scripts, as Linux's `binfmt_script` reads them.
//!
//! A file whose first two bytes are `#!` names its interpreter on its first
//! line: `#!` then optional spaces or tabs, the interpreter's path (up to a
//! space, tab or NUL), then optionally one argument (everything after the
//! following spaces and tabs up to the end of the line, trailing spaces and
//! tabs removed, inner spaces kept). Only the first [`BINPRM_BUF_SIZE`] bytes
//! are read; a line longer than that is cut at byte 255 as long as the
//! interpreter's path ends inside it, else the file is not run (`ENOEXEC`).
//!
//! `execve` then runs the interpreter with the argument list
//! [`interpreter_argv`] builds, and may do so again if the interpreter is
//! itself a script, [`MAX_INTERPRETER_HOPS`] times at most (`ELOOP` after).

use alloc::vec::Vec;
use core::fmt;

use crate::Errno;

/// Bytes of a file's start that `execve` reads to recognise it (Linux's
/// `BINPRM_BUF_SIZE`): a `#!` line is cut at one byte less.
pub const BINPRM_BUF_SIZE: usize = 256;

/// How many times one `execve` may replace a script by its interpreter
/// (Linux's `exec_binprm` allows handler depths 0 to 5); one more is
/// [`Errno::ELOOP`].
pub const MAX_INTERPRETER_HOPS: usize = 5;

/// The interpreter line of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shebang<'a> {
    /// The interpreter's path.
    pub interpreter: &'a [u8],
    /// The one optional argument, inner spaces kept.
    pub argument: Option<&'a [u8]>,
}

/// Why a `#!` file is not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptError {
    /// The first line names no interpreter.
    NoInterpreter,
    /// The interpreter's path does not end within [`BINPRM_BUF_SIZE`] bytes.
    InterpreterTruncated,
    /// The line names an empty path (blanks, then a NUL byte).
    EmptyInterpreter,
}

impl ScriptError {
    /// The error number `execve` returns for this.
    pub const fn errno(self) -> Errno {
        match self {
            ScriptError::NoInterpreter | ScriptError::InterpreterTruncated => Errno::ENOEXEC,
            ScriptError::EmptyInterpreter => Errno::ENOENT,
        }
    }
}

impl From<ScriptError> for Errno {
    fn from(error: ScriptError) -> Errno {
        error.errno()
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScriptError::NoInterpreter => "#! line names no interpreter",
            ScriptError::InterpreterTruncated => "#! line: interpreter path longer than the line",
            ScriptError::EmptyInterpreter => "#! line: empty interpreter path",
        })
    }
}

const fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Where the text of the `#!` line ends in the NUL-padded buffer `buf`, and
/// whether trailing blanks are trimmed there.
enum LineEnd {
    /// At a newline: trailing blanks are trimmed.
    Newline(usize),
    /// At a NUL (in the file, or the padding after a short file): the text
    /// stops there as a C string does, blanks before it kept (as Linux).
    Nul(usize),
    /// At the buffer's last byte, the line being longer: trailing blanks
    /// are trimmed.
    Cut,
}

/// Reads the interpreter line of a file from `head`, its first bytes (at
/// most [`BINPRM_BUF_SIZE`] are looked at). `Ok(None)`: not a script.
pub fn parse(head: &[u8]) -> Result<Option<Shebang<'_>>, ScriptError> {
    let head = &head[..head.len().min(BINPRM_BUF_SIZE)];
    if !head.starts_with(b"#!") {
        return Ok(None);
    }
    // Linux reads the file into a zeroed buffer; bytes past `head` are NULs.
    let byte = |i: usize| head.get(i).copied().unwrap_or(0);
    let last = BINPRM_BUF_SIZE - 1;
    let end = match (2..BINPRM_BUF_SIZE).find(|&i| byte(i) == b'\n' || byte(i) == 0) {
        Some(i) if byte(i) == b'\n' => LineEnd::Newline(i),
        Some(i) if i < last => LineEnd::Nul(i),
        _ => LineEnd::Cut,
    };
    if !matches!(end, LineEnd::Newline(_)) {
        // No newline: the interpreter's path must end (blank or NUL) before
        // the buffer's last byte, else it may have been cut.
        let name_start = (2..last).find(|&i| !is_blank(byte(i))).ok_or(ScriptError::NoInterpreter)?;
        if !(name_start..last).any(|i| is_blank(byte(i)) || byte(i) == 0) {
            return Err(ScriptError::InterpreterTruncated);
        }
    }
    let line = match end {
        LineEnd::Newline(i) => trim_end_blanks(&head[2..i]),
        LineEnd::Nul(i) => &head[2..i.min(head.len())],
        LineEnd::Cut => trim_end_blanks(&head[2..last]),
    };
    let Some(name_start) = line.iter().position(|&b| !is_blank(b)) else {
        // Blanks then a NUL name an empty path (which Linux then fails to
        // open); blanks then a newline name nothing.
        return Err(match end {
            LineEnd::Nul(_) => ScriptError::EmptyInterpreter,
            LineEnd::Newline(_) | LineEnd::Cut => ScriptError::NoInterpreter,
        });
    };
    let line = &line[name_start..];
    let name_end = line.iter().position(|&b| is_blank(b)).unwrap_or(line.len());
    let (interpreter, after) = line.split_at(name_end);
    let argument = after.iter().position(|&b| !is_blank(b)).map(|start| &after[start..]);
    Ok(Some(Shebang { interpreter, argument }))
}

fn trim_end_blanks(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., last] = bytes {
        if !is_blank(*last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// The arguments the interpreter gets: its path, the line's argument if
/// any, the script's path (as given to `execve`, or the previous
/// interpreter's), then `argv` without its first entry.
pub fn interpreter_argv<'a>(shebang: &Shebang<'a>, script: &'a [u8], argv: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(argv.len() + 2);
    out.push(shebang.interpreter);
    out.extend(shebang.argument);
    out.push(script);
    out.extend(argv.iter().skip(1));
    out
}

#[cfg(test)]
mod tests;
