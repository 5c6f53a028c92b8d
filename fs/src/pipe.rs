//! A pipe's buffer: a ring of [`PIPE_CAPACITY`] bytes (16 pages, Linux's
//! default) over page frames of the frame pool. A frame is taken when data
//! first lands in its page and given back as soon as the reader has taken
//! every byte in it, so an empty pipe holds no memory, a full one 16
//! frames, and everything goes back to the pool when the buffer is dropped.
//!
//! The bytes move straight between the frames and whoever reads or writes
//! (user memory, for a system call) through callbacks that may stop
//! part-way (a fault): exactly the bytes they took leave the buffer, and
//! exactly the bytes they gave enter it.

use aspen_abi::uaccess::CopyFault;
use aspen_mm::aspace::MmEnv;
use aspen_mm::errno::Errno;
use aspen_mm::frame::FrameAllocator;
use aspen_mm::paging::PhysMemory;
use aspen_mm::{PhysAddr, PAGE_SIZE};

const PAGE: usize = PAGE_SIZE as usize;
/// Pages a pipe buffer spans.
pub const PIPE_PAGES: usize = 16;
/// Bytes a pipe holds (64 KiB).
pub const PIPE_CAPACITY: usize = PIPE_PAGES * PAGE;

/// The bytes written to a pipe and not read yet.
pub struct PipeBuffer<E: MmEnv + 'static> {
    env: &'static E,
    /// The frame behind each page of the ring, while it holds bytes.
    frames: [Option<PhysAddr>; PIPE_PAGES],
    /// Ring offset of the first byte.
    head: usize,
    /// Bytes held.
    len: usize,
}

impl<E: MmEnv + 'static> PipeBuffer<E> {
    /// An empty buffer taking its frames from `env`.
    pub fn new(env: &'static E) -> Self {
        Self { env, frames: [None; PIPE_PAGES], head: 0, len: 0 }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that can be written before the buffer is full.
    pub fn room(&self) -> usize {
        PIPE_CAPACITY - self.len
    }

    /// Frames held.
    pub fn frames_held(&self) -> usize {
        self.frames.iter().flatten().count()
    }

    /// Whether page `page` of the ring holds a byte not read yet.
    fn page_live(&self, page: usize) -> bool {
        let (start, end) = (page * PAGE, (page + 1) * PAGE);
        let first_end = (self.head + self.len).min(PIPE_CAPACITY);
        let wrapped_end = (self.head + self.len).saturating_sub(PIPE_CAPACITY);
        (self.len > 0 && start < first_end && self.head < end) || start < wrapped_end
    }

    /// Gives page `page`'s frame back if it holds no byte.
    fn release_if_unused(&mut self, page: usize) {
        if !self.page_live(page) {
            if let Some(frame) = self.frames[page].take() {
                self.env.frames().free_frame(frame);
            }
        }
    }

    /// Moves up to `max` bytes, oldest first, to `deliver`, in pieces that
    /// each lie in one frame. When `deliver` stops part-way it says how
    /// many bytes of the piece it took; those leave the buffer and the read
    /// ends with the fault, its `copied` counting every byte this call
    /// moved. Otherwise the bytes moved (0 when empty).
    pub fn read(
        &mut self,
        max: usize,
        mut deliver: impl FnMut(&[u8]) -> Result<(), CopyFault>,
    ) -> Result<usize, CopyFault> {
        let want = max.min(self.len);
        let mut done = 0;
        while done < want {
            let (page, offset) = (self.head / PAGE, self.head % PAGE);
            let n = (want - done).min(PAGE - offset);
            let Some(frame) = self.frames[page] else { break };
            // SAFETY: the frame came from the pool for this buffer alone, so
            // `frame_ptr` is valid for PAGE bytes and `offset + n` stays
            // inside; nothing else writes it while `self` is borrowed.
            let piece = unsafe { core::slice::from_raw_parts(self.env.mem().frame_ptr(frame).add(offset), n) };
            let outcome = deliver(piece);
            let taken = outcome.map_or_else(|fault| fault.copied.min(n), |()| n);
            self.head = (self.head + taken) % PIPE_CAPACITY;
            self.len -= taken;
            done += taken;
            self.release_if_unused(page);
            if self.len == 0 {
                self.head = 0;
            }
            if let Err(fault) = outcome {
                return Err(CopyFault { copied: done, errno: fault.errno });
            }
        }
        Ok(done)
    }

    /// Takes up to `max` bytes (no more than the room) from `fill`, which
    /// is given pieces of frames, each in one frame, to fill in order. When
    /// `fill` stops part-way it says how many bytes of the piece it filled;
    /// those enter the buffer and the write ends with the fault, its
    /// `copied` counting every byte this call took. A frame that cannot be
    /// had ends it the same way with `ENOMEM`. Otherwise the bytes taken.
    pub fn write(
        &mut self,
        max: usize,
        mut fill: impl FnMut(&mut [u8]) -> Result<(), CopyFault>,
    ) -> Result<usize, CopyFault> {
        let want = max.min(self.room());
        let mut done = 0;
        while done < want {
            let tail = (self.head + self.len) % PIPE_CAPACITY;
            let (page, offset) = (tail / PAGE, tail % PAGE);
            let n = (want - done).min(PAGE - offset);
            let frame = match self.frames[page] {
                Some(frame) => frame,
                None => {
                    let frame = self
                        .env
                        .frames()
                        .alloc_frame()
                        .map_err(|_| CopyFault { copied: done, errno: Errno::ENOMEM })?;
                    self.frames[page] = Some(frame);
                    frame
                }
            };
            // SAFETY: as in `read`; the piece lies past the last byte held,
            // so no byte a reader may still take is handed out.
            let piece = unsafe { core::slice::from_raw_parts_mut(self.env.mem().frame_ptr(frame).add(offset), n) };
            let outcome = fill(piece);
            let taken = outcome.map_or_else(|fault| fault.copied.min(n), |()| n);
            self.len += taken;
            done += taken;
            if let Err(fault) = outcome {
                self.release_if_unused(page);
                return Err(CopyFault { copied: done, errno: fault.errno });
            }
        }
        Ok(done)
    }
}

impl<E: MmEnv + 'static> Drop for PipeBuffer<E> {
    fn drop(&mut self) {
        for frame in self.frames.iter_mut().filter_map(Option::take) {
            self.env.frames().free_frame(frame);
        }
    }
}
