//! Line input on a raw console: the kernel's `read(0)` returns bytes as typed
//! (Aspen has no line discipline; on Linux init switches the tty to raw input),
//! so the shell echoes and edits itself: printable ASCII is echoed and kept,
//! backspace (0x7f or 0x08) erases, Ctrl-U erases the line, Ctrl-C drops it,
//! CR, LF or CR LF ends it, and escape sequences (arrow keys) are ignored.

use aspen_sys::fs::{self, STDIN, STDOUT};
use aspen_sys::{io, print, time};

/// Longest line kept; further characters are refused with a bell.
const MAX_LINE: usize = 256;
/// Pause after a failed or empty read before trying again (no busy loop).
const READ_RETRY_MS: u64 = 100;

const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;
const CTRL_C: u8 = 0x03;
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;
const BELL: u8 = 0x07;

/// Where the editor is within an escape sequence or a CR LF pair.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    /// After ESC.
    Escape,
    /// Inside `ESC [` or `ESC O`, until the final byte (0x40..=0x7e).
    Sequence,
    /// After CR: a following LF belongs to the same Enter.
    AfterCr,
}

/// What a key did to the line.
enum Key {
    Edit,
    Enter,
}

pub struct LineEditor {
    line: [u8; MAX_LINE],
    len: usize,
    state: State,
    input: [u8; 64],
    input_pos: usize,
    input_len: usize,
}

fn echo(bytes: &[u8]) {
    io::write_all(STDOUT, bytes);
}

impl LineEditor {
    pub fn new() -> Self {
        Self { line: [0; MAX_LINE], len: 0, state: State::Normal, input: [0; 64], input_pos: 0, input_len: 0 }
    }

    /// Shows `prompt` and returns the next line typed (without its end).
    pub fn read_line(&mut self, prompt: &str) -> &str {
        print!("{prompt}");
        io::flush();
        self.len = 0;
        loop {
            let byte = self.next_byte();
            if let Key::Enter = self.key(byte) {
                break;
            }
        }
        // Only printable ASCII is ever stored.
        core::str::from_utf8(&self.line[..self.len]).unwrap_or("")
    }

    fn next_byte(&mut self) -> u8 {
        while self.input_pos == self.input_len {
            match fs::read(STDIN, &mut self.input) {
                Ok(n) if n > 0 => {
                    self.input_pos = 0;
                    self.input_len = n;
                }
                _ => {
                    let _ = time::sleep_ms(READ_RETRY_MS);
                }
            }
        }
        self.input_pos += 1;
        self.input[self.input_pos - 1]
    }

    fn key(&mut self, byte: u8) -> Key {
        let state = self.state;
        self.state = State::Normal;
        match (state, byte) {
            (State::Escape, b'[' | b'O') => self.state = State::Sequence,
            (State::Escape, _) => {}
            (State::Sequence, 0x40..=0x7e) => {}
            (State::Sequence, _) => self.state = State::Sequence,
            (State::AfterCr, b'\n') => {}
            (_, b'\r') => {
                self.state = State::AfterCr;
                echo(b"\r\n");
                return Key::Enter;
            }
            (_, b'\n') => {
                echo(b"\r\n");
                return Key::Enter;
            }
            (_, ESC) => self.state = State::Escape,
            (_, DELETE | BACKSPACE) if self.len > 0 => {
                self.len -= 1;
                echo(b"\x08 \x08");
            }
            (_, CTRL_U) => {
                while self.len > 0 {
                    self.len -= 1;
                    echo(b"\x08 \x08");
                }
            }
            (_, CTRL_C) => {
                self.len = 0;
                echo(b"^C\r\n");
                return Key::Enter;
            }
            (_, 0x20..=0x7e) if self.len < MAX_LINE => {
                self.line[self.len] = byte;
                self.len += 1;
                echo(&[byte]);
            }
            (_, 0x20..=0x7e) => echo(&[BELL]),
            _ => {}
        }
        Key::Edit
    }
}
