//! Output: a line-buffered stdout and unbuffered-per-call stderr.
//!
//! stdout collects bytes and hands each complete line to one `write(1, ...)`,
//! so the lines of a parent and its children never interleave mid-line (a line
//! longer than the buffer is written in buffer-sized pieces). `process::fork`
//! flushes it first, so a child never repeats its parent's pending output.

use core::fmt;

use crate::fs::{write, STDERR, STDOUT};
use crate::global::ProcessLocal;

/// Size of stdout's buffer: the longest line written in one piece.
const STDOUT_BUFFER: usize = 1024;

/// Writes all of `bytes` to `fd`, retrying after partial writes; stops at the
/// first error (output has nowhere else to go).
pub fn write_all(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Ok(n) if n > 0 => bytes = &bytes[n.min(bytes.len())..],
            _ => return,
        }
    }
}

/// A buffer in front of a file descriptor; `flush` writes what it holds.
pub struct FdWriter<const N: usize> {
    fd: i32,
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> FdWriter<N> {
    /// A writer to descriptor `fd`.
    pub const fn new(fd: i32) -> Self {
        Self { fd, len: 0, buf: [0; N] }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        write_all(self.fd, &self.buf[..self.len]);
        self.len = 0;
    }

    /// Buffers `bytes`, writing out each complete line and every full buffer.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == N {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
    }
}

impl<const N: usize> fmt::Write for FdWriter<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

static STDOUT_BUF: ProcessLocal<FdWriter<STDOUT_BUFFER>> = ProcessLocal::new(FdWriter::new(STDOUT));

/// Writes out stdout's pending partial line, if any.
pub fn flush() {
    STDOUT_BUF.with(|w| w.flush());
}

/// Backend of [`print!`]/[`println!`].
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let done = STDOUT_BUF.with(|w| fmt::write(w, args));
    if done.is_none() {
        // Re-entered while printing (a Display impl that prints): go unbuffered.
        let mut w = FdWriter::<256>::new(STDOUT);
        let _ = fmt::write(&mut w, args);
        w.flush();
    }
}

/// Backend of [`eprint!`]/[`eprintln!`]: one write per line (up to 256 bytes),
/// stdout flushed first so the two streams stay in order on a shared console.
pub fn eprint_fmt(args: fmt::Arguments<'_>) {
    flush();
    let mut w = FdWriter::<256>::new(STDERR);
    let _ = fmt::write(&mut w, args);
    w.flush();
}

/// Prints to stdout (line-buffered).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::io::print_fmt(format_args!($($arg)*)) };
}

/// Prints a line to stdout: one `write` per line.
#[macro_export]
macro_rules! println {
    () => { $crate::io::print_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints to stderr.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::io::eprint_fmt(format_args!($($arg)*)) };
}

/// Prints a line to stderr.
#[macro_export]
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::io::eprint_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
