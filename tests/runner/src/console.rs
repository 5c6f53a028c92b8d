//! Reading a console: a reader thread that forwards bytes over a channel, so the runner can
//! wait on the console with a deadline, and a splitter that cuts the bytes into lines.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Instant;

/// A line longer than this is cut, so a console that never prints a newline cannot make
/// the runner hold an unbounded line.
const MAX_LINE_BYTES: usize = 4096;

/// What one wait on the console brought.
#[derive(Debug)]
pub enum Received {
    Bytes(Vec<u8>),
    /// End of file (`None`) or a read error.
    Closed(Option<io::Error>),
    /// The deadline passed with nothing new.
    TimedOut,
}

/// A console read on its own thread.
pub struct Console {
    incoming: Receiver<Received>,
}

impl Console {
    /// Starts a thread that reads `source` until end of file or an error. The thread ends by
    /// itself once the `Console` is dropped and the next read returns.
    pub fn spawn(mut source: impl Read + Send + 'static) -> Console {
        let (sender, incoming) = mpsc::channel();
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                let message = match source.read(&mut buffer) {
                    Ok(0) => Received::Closed(None),
                    Ok(count) => Received::Bytes(buffer[..count].to_vec()),
                    // A serial port reports "no byte within its poll interval" as TimedOut:
                    // that is just a quiet line, which the runner times on its own.
                    Err(error) if matches!(error.kind(), io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {
                        continue
                    }
                    Err(error) => Received::Closed(Some(error)),
                };
                let closed = matches!(message, Received::Closed(_));
                if sender.send(message).is_err() || closed {
                    return;
                }
            }
        });
        Console { incoming }
    }

    /// Waits for the next bytes until `deadline`.
    pub fn receive_until(&self, deadline: Instant) -> Received {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(wait) {
            Ok(received) => received,
            Err(RecvTimeoutError::Timeout) => Received::TimedOut,
            // The reader has already reported the close and gone.
            Err(RecvTimeoutError::Disconnected) => Received::Closed(None),
        }
    }
}

/// Cuts a byte stream into lines (without their `\n`), whatever the chunk boundaries.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds bytes and returns the lines they completed. Bytes that are not UTF-8 become
    /// U+FFFD, which the protocol parser treats as line noise.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in bytes {
            if byte == b'\n' {
                lines.push(self.take_pending());
            } else {
                self.pending.push(byte);
                if self.pending.len() == MAX_LINE_BYTES {
                    lines.push(self.take_pending());
                }
            }
        }
        lines
    }

    /// The unterminated last line, if any: what the console printed before it stopped.
    pub fn flush(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| self.take_pending())
    }

    fn take_pending(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_span_chunks() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"TEST-R"), Vec::<String>::new());
        assert_eq!(splitter.push(b"UN a\r\nTEST-OK a\n\nTE"), ["TEST-RUN a\r", "TEST-OK a", ""]);
        assert_eq!(splitter.flush().as_deref(), Some("TE"));
        assert_eq!(splitter.flush(), None);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"\xff\xfeTEST-FINISHED\n"), ["\u{fffd}\u{fffd}TEST-FINISHED"]);
    }

    #[test]
    fn endless_lines_are_cut() {
        let mut splitter = LineSplitter::default();
        let lines = splitter.push(&vec![b'x'; MAX_LINE_BYTES + 10]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
        assert_eq!(splitter.flush().map(|rest| rest.len()), Some(10));
    }

    #[test]
    fn console_delivers_bytes_then_close() {
        let console = Console::spawn(&b"hello\n"[..]);
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(matches!(console.receive_until(deadline), Received::Bytes(bytes) if bytes == b"hello\n"));
        assert!(matches!(console.receive_until(deadline), Received::Closed(None)));
        assert!(matches!(console.receive_until(deadline), Received::Closed(None)));
    }

    #[test]
    fn console_wait_times_out() {
        let (_writer, reader) = std::os::unix::net::UnixStream::pair().expect("socket pair");
        let console = Console::spawn(reader);
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(matches!(console.receive_until(deadline), Received::TimedOut));
    }
}
