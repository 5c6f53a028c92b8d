//! Line input from the terminal's line discipline: the console is in
//! canonical mode with echo (on Aspen and on Linux), so the kernel edits the
//! line (backspace, Ctrl-U, Ctrl-W), echoes it and turns Enter into `\n`; a
//! read returns one line. Ctrl-D on an empty line (end of file) gives an
//! empty line; Ctrl-C drops the line (the kernel flushes it and signals the
//! foreground group, whose `SIGINT` init ignores).

use aspen_sys::fs::{self, STDIN};
use aspen_sys::{io, print, println, time, Errno};

/// Longest line kept; the rest of a longer line is dropped.
const MAX_LINE: usize = 256;
/// Pause after a failed read before trying again (no busy loop).
const READ_RETRY_MS: u64 = 100;

/// Reads lines into a fixed buffer.
pub struct LineReader {
    line: [u8; MAX_LINE],
    len: usize,
}

impl LineReader {
    /// A reader with an empty line.
    pub fn new() -> Self {
        Self { line: [0; MAX_LINE], len: 0 }
    }

    /// Shows `prompt` and returns the next line typed (without its end), or
    /// "" if it is not UTF-8.
    pub fn read_line(&mut self, prompt: &str) -> &str {
        print!("{prompt}");
        io::flush();
        self.len = 0;
        let mut chunk = [0u8; MAX_LINE];
        loop {
            match fs::read(STDIN, &mut chunk) {
                // End of file (Ctrl-D on an empty line): an empty line.
                Ok(0) => {
                    println!();
                    break;
                }
                Ok(n) => {
                    let data = &chunk[..n];
                    let ended = data.last() == Some(&b'\n');
                    let data = if ended { &data[..n - 1] } else { data };
                    let room = MAX_LINE - self.len;
                    let take = data.len().min(room);
                    self.line[self.len..self.len + take].copy_from_slice(&data[..take]);
                    self.len += take;
                    if ended {
                        break;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => {
                    let _ = time::sleep_ms(READ_RETRY_MS);
                }
            }
        }
        core::str::from_utf8(&self.line[..self.len]).unwrap_or("")
    }
}
