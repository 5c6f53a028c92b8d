//! The kernel's access to user memory: copies that use the unprivileged
//! load/store instructions (`LDTR`/`STTR`, checked against EL0's
//! permissions, so a user pointer can never make the kernel read or write
//! what the task itself could not) and turn faults into values through the
//! fault probe.
//!
//! The ranges come checked ([`UserSlice`]: within user space, no wrap). A
//! copy goes page by page. A page whose access faults is handed to the
//! caller's fault handler (demand paging, copy-on-write) and the page's copy
//! is retried; when the handler cannot resolve it, the copy stops with
//! `EFAULT`, saying how many bytes went before the faulting one (the copy
//! loops go in address order, 64 bytes a step, so that is the fault address
//! minus the start, rounded down to a step). This is the kernel's
//! implementation of [`UserMemory`].
//!
//! A futex word's compare-and-swap ([`ActiveSpace::cmpxchg_u32`]) is atomic
//! against user code on other cores: exclusive loads and stores (`LDXR`,
//! `STLXR`) on the user address, as Linux's
//! `futex_atomic_cmpxchg_inatomic`. There are no unprivileged exclusives, so
//! they run with EL1's permissions, which equal EL0's for every user mapping
//! but the `PROT_NONE` pages that keep their data (EL1-only, read-only): an
//! unprivileged load (`LDTR`) first makes those fault as a user load would.
//! No store can reach a page the task could not write: EL0's read-only pages
//! are read-only at EL1 too (the Cortex-A72 has no PAN to lift).

use aspen_abi::uaccess::{CopyFault, UserMemory, UserPtr, UserSlice};
use aspen_abi::{Errno, PAGE_SIZE, USER_ADDR_END};

use super::probe::probe;

/// Which access a user fault was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

extern "C" {
    fn aspen_copy_from_user(dst: *mut u8, src: u64, len: u64);
    fn aspen_copy_to_user(dst: u64, src: *const u8, len: u64);
    fn aspen_cmpxchg_user_u32(word: u64, expected: u32, new: u32) -> u32;
}

/// Bytes the copy loops move per step of their main loop: a fault inside
/// a step may come after some of its loads (or stores) were done.
const COPY_STEP: u64 = 64;

core::arch::global_asm!(
    ".section .text.uaccess, \"ax\"",
    // x0 = kernel dst, x1 = user src, x2 = len (may be 0). 64 bytes a step
    // (eight unprivileged loads, then the stores), then 8, then 1. Every
    // access stays inside [src, src + len): the caller's chunk is one page.
    ".global aspen_copy_from_user",
    "aspen_copy_from_user:",
    "    subs    x2, x2, #64",
    "    b.lo    3f",
    "1:  ldtr    x3, [x1]",
    "    ldtr    x4, [x1, #8]",
    "    ldtr    x5, [x1, #16]",
    "    ldtr    x6, [x1, #24]",
    "    ldtr    x7, [x1, #32]",
    "    ldtr    x8, [x1, #40]",
    "    ldtr    x9, [x1, #48]",
    "    ldtr    x10, [x1, #56]",
    "    stp     x3, x4, [x0]",
    "    stp     x5, x6, [x0, #16]",
    "    stp     x7, x8, [x0, #32]",
    "    stp     x9, x10, [x0, #48]",
    "    add     x0, x0, #64",
    "    add     x1, x1, #64",
    "    subs    x2, x2, #64",
    "    b.hs    1b",
    "3:  adds    x2, x2, #56",
    "    b.lo    5f",
    "4:  ldtr    x3, [x1]",
    "    str     x3, [x0], #8",
    "    add     x1, x1, #8",
    "    subs    x2, x2, #8",
    "    b.hs    4b",
    "5:  adds    x2, x2, #8",
    "    b.eq    2f",
    "6:  ldtrb   w3, [x1]",
    "    strb    w3, [x0], #1",
    "    add     x1, x1, #1",
    "    subs    x2, x2, #1",
    "    b.ne    6b",
    "2:  ret",
    // x0 = user dst, x1 = kernel src, x2 = len (may be 0): the same steps
    // with unprivileged stores.
    ".global aspen_copy_to_user",
    "aspen_copy_to_user:",
    "    subs    x2, x2, #64",
    "    b.lo    3f",
    "1:  ldp     x3, x4, [x1]",
    "    ldp     x5, x6, [x1, #16]",
    "    ldp     x7, x8, [x1, #32]",
    "    ldp     x9, x10, [x1, #48]",
    "    sttr    x3, [x0]",
    "    sttr    x4, [x0, #8]",
    "    sttr    x5, [x0, #16]",
    "    sttr    x6, [x0, #24]",
    "    sttr    x7, [x0, #32]",
    "    sttr    x8, [x0, #40]",
    "    sttr    x9, [x0, #48]",
    "    sttr    x10, [x0, #56]",
    "    add     x0, x0, #64",
    "    add     x1, x1, #64",
    "    subs    x2, x2, #64",
    "    b.hs    1b",
    "3:  adds    x2, x2, #56",
    "    b.lo    5f",
    "4:  ldr     x3, [x1], #8",
    "    sttr    x3, [x0]",
    "    add     x0, x0, #8",
    "    subs    x2, x2, #8",
    "    b.hs    4b",
    "5:  adds    x2, x2, #8",
    "    b.eq    2f",
    "6:  ldrb    w3, [x1], #1",
    "    sttrb   w3, [x0]",
    "    add     x0, x0, #1",
    "    subs    x2, x2, #1",
    "    b.ne    6b",
    "2:  ret",
    // x0 = user word (4-byte aligned), w1 = expected, w2 = new: stores w2
    // if the word holds w1, atomically; returns the value it held. The
    // LDTR faults where a user load would (its value is not used); a store
    // exclusive that fails (the word was written meanwhile, or the monitor
    // was lost) retries from the load, as Linux's does. The barrier after a
    // store orders it before what the caller does next (a wake-up).
    ".global aspen_cmpxchg_user_u32",
    "aspen_cmpxchg_user_u32:",
    "    ldtr    w3, [x0]",
    "1:  ldxr    w3, [x0]",
    "    cmp     w3, w1",
    "    b.ne    2f",
    "    stlxr   w4, w2, [x0]",
    "    cbnz    w4, 1b",
    "    dmb     ish",
    "2:  mov     w0, w3",
    "    ret",
);

/// Runs `copy(chunk_addr, offset, chunk_len)` over `slice` in page-sized
/// chunks; a chunk that faults goes to `resolve(fault_addr, access)`, and
/// is retried if it returns true. A fault that stays ends the copy with the
/// bytes before the fault address counted as copied.
fn by_pages(
    slice: UserSlice,
    access: Access,
    resolve: &mut dyn FnMut(u64, Access) -> bool,
    mut copy: impl FnMut(u64, usize, u64),
) -> Result<(), CopyFault> {
    let mut done = 0u64;
    while done < slice.len() {
        let at = slice.addr() + done;
        let chunk = (PAGE_SIZE - at % PAGE_SIZE).min(slice.len() - done);
        let mut attempts = 0;
        loop {
            match probe(|| copy(at, done as usize, chunk)) {
                Ok(()) => break,
                Err(fault) => {
                    let far = fault.syndrome.far;
                    // A fault the handler cannot explain, or one that keeps
                    // coming back, ends the copy.
                    attempts += 1;
                    if attempts > 2 || far >= USER_ADDR_END || !resolve(far, access) {
                        // The loops copy in address order, a step at a
                        // time: every byte of the chunk below the faulting
                        // step was copied. (A chunk is one page, so the
                        // first access faults unless the page changed
                        // meanwhile; then fewer bytes are reported than
                        // may have been moved, never more.)
                        let in_chunk = far.saturating_sub(at).min(chunk) / COPY_STEP * COPY_STEP;
                        return Err(CopyFault { copied: (done + in_chunk) as usize, errno: Errno::EFAULT });
                    }
                }
            }
        }
        done += chunk;
    }
    Ok(())
}

/// After all of `slice` was copied: a fault after its bytes if `len`
/// asked for more.
fn short_of(slice: UserSlice, len: usize) -> Result<(), CopyFault> {
    if (slice.len() as usize) < len {
        return Err(CopyFault { copied: slice.len() as usize, errno: Errno::EFAULT });
    }
    Ok(())
}

/// The running task's user memory, reached with unprivileged loads and
/// stores; `resolve(fault_addr, access)` handles a fault (demand paging,
/// copy-on-write) and says whether the access may be retried.
pub struct ActiveSpace<R: FnMut(u64, Access) -> bool> {
    resolve: R,
}

impl<R: FnMut(u64, Access) -> bool> ActiveSpace<R> {
    pub fn new(resolve: R) -> Self {
        ActiveSpace { resolve }
    }
}

impl<R: FnMut(u64, Access) -> bool> ActiveSpace<R> {
    /// Compare-and-swap of the 4-byte aligned user word `word`: stores
    /// `new` if it holds `expected`, atomically against every other core;
    /// the value it held (`new` was stored if that is `expected`). `EINVAL`
    /// if misaligned; `EFAULT` where the task could not read it, or could
    /// not write it when the values matched. A fault is resolved as for a
    /// write (demand paging, copy-on-write), as Linux's
    /// `fault_in_user_writeable`, and the whole step retried.
    pub fn cmpxchg_u32(&mut self, word: UserPtr<u32>, expected: u32, new: u32) -> Result<u32, Errno> {
        if !word.addr().is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let mut held = 0;
        by_pages(word.as_slice(), Access::Write, &mut self.resolve, |at, _, _| {
            // SAFETY: an aligned user address below the end of user space
            // (the four bytes are in one page), reached by an unprivileged
            // load first and then exclusives that can write only what EL0
            // may (see the module doc); a fault is caught by the probe.
            held = unsafe { aspen_cmpxchg_user_u32(at, expected, new) };
        })
        .map_err(Errno::from)?;
        Ok(held)
    }
}

impl<R: FnMut(u64, Access) -> bool> UserMemory for ActiveSpace<R> {
    fn read_partial(&mut self, src: UserSlice, buf: &mut [u8]) -> Result<(), CopyFault> {
        // Past the end of `src` is a fault after its bytes.
        let src = src.sub(0, buf.len() as u64);
        let base = buf.as_mut_ptr();
        by_pages(src, Access::Read, &mut self.resolve, |at, offset, chunk| {
            // SAFETY: `offset + chunk <= buf.len()`, so the kernel side stays
            // in `buf`; the user side uses unprivileged loads and any fault
            // is caught by the probe around this call.
            unsafe { aspen_copy_from_user(base.add(offset), at, chunk) }
        })?;
        short_of(src, buf.len())
    }

    fn write_partial(&mut self, dst: UserSlice, data: &[u8]) -> Result<(), CopyFault> {
        let dst = dst.sub(0, data.len() as u64);
        let base = data.as_ptr();
        by_pages(dst, Access::Write, &mut self.resolve, |at, offset, chunk| {
            // SAFETY: as in `read_partial`, with unprivileged stores.
            unsafe { aspen_copy_to_user(at, base.add(offset), chunk) }
        })?;
        short_of(dst, data.len())
    }
}
