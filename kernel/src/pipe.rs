//! Pipes (`pipe2`): a [`PipeBuffer`] between one read end and one write
//! end, each an open file description ([`PipeReader`], [`PipeWriter`]),
//! with Linux's semantics (fs/pipe.c):
//!
//! - a read waits for data, or returns 0 (end of file) once the write end
//!   is closed; it returns what is there, up to its count;
//! - a write of at most [`PIPE_BUF`] bytes is atomic: it waits until all of
//!   it fits and goes in at once; a larger one goes in as room appears and
//!   may interleave with other writers;
//! - with `O_NONBLOCK`, what would wait fails with `EAGAIN` instead (or
//!   returns what was already moved);
//! - a write with the read end closed fails with `EPIPE` and the writing
//!   thread gets `SIGPIPE` ([`WriteError::BrokenPipe`]);
//! - a wait interrupted (the process ending, a signal) is restarted or
//!   ends with `EINTR` as Linux's (`ERESTARTSYS`), or
//!   the bytes already moved.
//!
//! Bytes move straight between user memory and the buffer's frames; a
//! fault part-way moves exactly the bytes the return value reports. The
//! buffer's frames go back to the pool when both ends are closed (the last
//! `Arc<Pipe>` goes).

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use aspen_abi::poll::{PollEvents, PIPE_BUF};
use aspen_abi::signal::Restart;
use aspen_abi::uaccess::{CopyFault, UserMemory, UserSlice};
use aspen_fs::PipeBuffer;
use aspen_mm::errno::Errno;
use spin::Mutex;

use crate::memory::user_env::{self, KernelMm};
use crate::process::thread;
use crate::syscall::user;
use crate::task::wait::WaitQueue;

/// What the two ends share.
pub struct Pipe {
    /// Its inode number in `fstat`.
    ino: u64,
    state: Mutex<State>,
    /// Woken whenever data arrives or leaves or an end closes.
    events: WaitQueue,
}

struct State {
    buffer: PipeBuffer<KernelMm>,
    /// Whether the read end is still open.
    reader: bool,
    /// Whether the write end is still open.
    writer: bool,
}

/// The read end of a pipe; dropping it closes the end.
pub struct PipeReader(Arc<Pipe>);

/// The write end of a pipe; dropping it closes the end.
pub struct PipeWriter(Arc<Pipe>);

/// Why a pipe write stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The read end is closed: `EPIPE`, and `SIGPIPE` for the writer,
    /// after `written` bytes went in.
    BrokenPipe {
        /// Bytes written before the read end was found closed.
        written: usize,
    },
    /// Nothing was written, for this reason.
    Errno(Errno),
}

impl From<Errno> for WriteError {
    fn from(errno: Errno) -> Self {
        Self::Errno(errno)
    }
}

/// The next pipe's inode number.
static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// A new pipe's two ends.
pub fn new() -> (PipeReader, PipeWriter) {
    let pipe = Arc::new(Pipe {
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        state: Mutex::new(State { buffer: PipeBuffer::new(user_env::get()), reader: true, writer: true }),
        events: WaitQueue::new(),
    });
    (PipeReader(pipe.clone()), PipeWriter(pipe))
}

/// Whether the running thread must stop waiting (its process is ending, or
/// a signal is to be handled).
fn interrupted() -> bool {
    thread::with_current(|t| t.interrupted())
}

/// The bytes moved, or `error` when there were none.
fn moved_or(done: usize, error: Errno) -> Result<usize, Errno> {
    if done > 0 {
        Ok(done)
    } else {
        Err(error)
    }
}

impl Pipe {
    /// Blocks until the state changes (or the thread is woken for another
    /// reason).
    fn wait(&self) {
        self.events.wait(None);
    }
}

impl PipeReader {
    /// `read` into `buf` (at most its length): the bytes read, 0 at end of
    /// file (write end closed, nothing left).
    pub fn read(&self, buf: UserSlice, nonblocking: bool) -> Result<usize, Errno> {
        let count = buf.len() as usize;
        if count == 0 {
            return Ok(0);
        }
        let pipe = &self.0;
        loop {
            {
                let mut state = pipe.state.lock();
                if !state.buffer.is_empty() {
                    let mut done = 0usize;
                    let outcome = state.buffer.read(count, |piece| {
                        let dst = buf.sub(done as u64, piece.len() as u64);
                        let copied = user().write_partial(dst, piece);
                        done += copied.map_or_else(|fault| fault.copied, |()| piece.len());
                        copied
                    });
                    drop(state);
                    pipe.events.wake_all();
                    return outcome.or_else(|fault| moved_or(fault.copied, fault.errno));
                }
                if !state.writer {
                    return Ok(0);
                }
            }
            if nonblocking {
                return Err(Errno::EAGAIN);
            }
            if interrupted() {
                return Err(Restart::Sys.errno());
            }
            pipe.wait();
        }
    }

    /// The events the read end is ready for: readable with data, hung up
    /// with the write end closed.
    pub fn poll(&self) -> PollEvents {
        let state = self.0.state.lock();
        let mut ready = PollEvents::empty();
        if !state.buffer.is_empty() {
            ready |= PollEvents::READABLE;
        }
        if !state.writer {
            ready |= PollEvents::HUP;
        }
        ready
    }

    /// The queue woken when [`Self::poll`] may change.
    pub fn events(&self) -> &WaitQueue {
        &self.0.events
    }

    /// The pipe's inode number.
    pub fn ino(&self) -> u64 {
        self.0.ino
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.0.state.lock().reader = false;
        self.0.events.wake_all();
    }
}

impl PipeWriter {
    /// `write` of `count` bytes that `source` copies, from byte `at` of
    /// the data, into each piece of the buffer it is given (stopping
    /// part-way at a fault, with the bytes it did copy): the bytes written.
    /// A write of at most [`PIPE_BUF`] bytes goes in whole or not at all.
    pub fn write(
        &self,
        count: usize,
        nonblocking: bool,
        source: impl FnMut(usize, &mut [u8]) -> Result<(), CopyFault>,
    ) -> Result<usize, WriteError> {
        self.transfer(count, nonblocking, true, source)
    }

    /// What `sendfile` (Linux's splice into a pipe) writes: waits (unless
    /// `nonblocking`) for room, then writes what fits of `count` bytes and
    /// returns, neither atomic nor waiting for the rest.
    pub fn write_some(
        &self,
        count: usize,
        nonblocking: bool,
        source: impl FnMut(usize, &mut [u8]) -> Result<(), CopyFault>,
    ) -> Result<usize, WriteError> {
        self.transfer(count, nonblocking, false, source)
    }

    /// A write of `count` bytes: all of them (`whole`, as `write`), or up
    /// to the first time some went in.
    fn transfer(
        &self,
        count: usize,
        nonblocking: bool,
        whole: bool,
        mut source: impl FnMut(usize, &mut [u8]) -> Result<(), CopyFault>,
    ) -> Result<usize, WriteError> {
        if count == 0 {
            return Ok(0);
        }
        let pipe = &self.0;
        let atomic = whole && count <= PIPE_BUF;
        let mut done = 0usize;
        loop {
            {
                let mut state = pipe.state.lock();
                if !state.reader {
                    return Err(WriteError::BrokenPipe { written: done });
                }
                let room = state.buffer.room();
                if room > 0 && (!atomic || room >= count) {
                    let start = done;
                    let outcome = state.buffer.write(count - done, |piece| {
                        let copied = source(done, piece);
                        done += copied.map_or_else(|fault| fault.copied, |()| piece.len());
                        copied
                    });
                    drop(state);
                    if done > start {
                        pipe.events.wake_all();
                    }
                    if let Err(fault) = outcome {
                        return moved_or(done, fault.errno).map_err(WriteError::Errno);
                    }
                    if done == count || (!whole && done > start) {
                        return Ok(done);
                    }
                }
            }
            if nonblocking {
                return moved_or(done, Errno::EAGAIN).map_err(WriteError::Errno);
            }
            if interrupted() {
                return moved_or(done, Restart::Sys.errno()).map_err(WriteError::Errno);
            }
            pipe.wait();
        }
    }

    /// The events the write end is ready for: writable while an atomic
    /// write fits, an error with the read end closed.
    pub fn poll(&self) -> PollEvents {
        let state = self.0.state.lock();
        let mut ready = PollEvents::empty();
        if state.buffer.room() >= PIPE_BUF {
            ready |= PollEvents::WRITABLE;
        }
        if !state.reader {
            ready |= PollEvents::ERR;
        }
        ready
    }

    /// The queue woken when [`Self::poll`] may change.
    pub fn events(&self) -> &WaitQueue {
        &self.0.events
    }

    /// The pipe's inode number.
    pub fn ino(&self) -> u64 {
        self.0.ino
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.state.lock().writer = false;
        self.0.events.wake_all();
    }
}
