//! Host tests of `#!` line parsing against Linux's `binfmt_script` rules.

use alloc::vec;
use alloc::vec::Vec;

use super::*;

fn shebang<'a>(interpreter: &'a [u8], argument: Option<&'a [u8]>) -> Option<Shebang<'a>> {
    Some(Shebang { interpreter, argument })
}

#[test]
fn not_a_script() {
    assert_eq!(parse(b"\x7fELF\x02\x01\x01"), Ok(None));
    assert_eq!(parse(b"#"), Ok(None));
    assert_eq!(parse(b""), Ok(None));
    assert_eq!(parse(b" #!/bin/sh\n"), Ok(None));
}

#[test]
fn interpreter_alone() {
    assert_eq!(parse(b"#!/bin/sh\necho hi\n"), Ok(shebang(b"/bin/sh", None)));
    assert_eq!(parse(b"#! \t/bin/sh \t\n"), Ok(shebang(b"/bin/sh", None)));
    assert_eq!(parse(b"#!/bin/sh"), Ok(shebang(b"/bin/sh", None)));
}

#[test]
fn one_argument_with_inner_blanks_kept() {
    assert_eq!(parse(b"#!/usr/bin/env python3\n"), Ok(shebang(b"/usr/bin/env", Some(b"python3"))));
    assert_eq!(parse(b"#!/bin/awk  -f  x y \t\nrest"), Ok(shebang(b"/bin/awk", Some(b"-f  x y"))));
    assert_eq!(parse(b"#!/bin/x\t-a\n"), Ok(shebang(b"/bin/x", Some(b"-a"))));
}

#[test]
fn a_nul_ends_the_line_without_trimming() {
    assert_eq!(parse(b"#!/bin/x arg  "), Ok(shebang(b"/bin/x", Some(b"arg  "))));
    assert_eq!(parse(b"#!/bin/x arg\0more\n"), Ok(shebang(b"/bin/x", Some(b"arg"))));
    assert_eq!(parse(b"#!/bin/x\0 arg\n"), Ok(shebang(b"/bin/x", None)));
}

#[test]
fn no_interpreter() {
    assert_eq!(parse(b"#!\n"), Err(ScriptError::NoInterpreter));
    assert_eq!(parse(b"#!  \t \n/bin/sh\n"), Err(ScriptError::NoInterpreter));
    let mut blanks = b"#!".to_vec();
    blanks.resize(300, b' ');
    assert_eq!(parse(&blanks), Err(ScriptError::NoInterpreter));
    assert_eq!(parse(b"#!"), Err(ScriptError::EmptyInterpreter));
    assert_eq!(parse(b"#!   "), Err(ScriptError::EmptyInterpreter));
    assert_eq!(ScriptError::NoInterpreter.errno(), Errno::ENOEXEC);
    assert_eq!(ScriptError::EmptyInterpreter.errno(), Errno::ENOENT);
}

/// A `#!` line of `len` bytes before its newline: the interpreter path
/// `path_len` bytes long, then " arg" and filler up to `len`.
fn long_line(path_len: usize, len: usize) -> Vec<u8> {
    let mut line = b"#!/".to_vec();
    line.resize(2 + path_len, b'p');
    line.extend_from_slice(b" arg");
    line.resize(len, b'a');
    line.push(b'\n');
    line
}

#[test]
fn long_lines_are_cut_at_255_bytes() {
    // A newline within the 256 bytes: the whole line.
    let line = long_line(10, 255);
    let parsed = parse(&line).unwrap().unwrap();
    assert_eq!(parsed.argument.unwrap().len(), 255 - 2 - 10 - 1);
    // Longer: the argument is cut at byte 255.
    let line = long_line(10, 400);
    let parsed = parse(&line).unwrap().unwrap();
    assert_eq!(parsed.interpreter.len(), 10);
    assert_eq!(parsed.argument.unwrap().len(), 255 - 2 - 10 - 1);
    // The path itself cut: not run.
    assert_eq!(parse(&long_line(253, 400)), Err(ScriptError::InterpreterTruncated));
    assert_eq!(ScriptError::InterpreterTruncated.errno(), Errno::ENOEXEC);
    // The path ending just before the cut still runs, without argument.
    let line = long_line(252, 400);
    let parsed = parse(&line).unwrap().unwrap();
    assert_eq!((parsed.interpreter.len(), parsed.argument), (252, None));
}

#[test]
fn interpreter_argv_replaces_argv0() {
    let line = shebang(b"/bin/sh", Some(b"-e")).unwrap();
    let argv: [&[u8]; 3] = [b"name", b"a", b"b"];
    assert_eq!(interpreter_argv(&line, b"/tmp/s", &argv), vec![&b"/bin/sh"[..], b"-e", b"/tmp/s", b"a", b"b"]);
    let line = shebang(b"/bin/sh", None).unwrap();
    assert_eq!(interpreter_argv(&line, b"/tmp/s", &[]), vec![&b"/bin/sh"[..], b"/tmp/s"]);
}
