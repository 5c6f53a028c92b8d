//! The kernel's access to user memory: copies that use the unprivileged
//! load/store instructions (`LDTR`/`STTR`, checked against EL0's
//! permissions, so a user pointer can never make the kernel read or write
//! what the task itself could not) and turn faults into values through the
//! fault probe.
//!
//! A copy goes page by page. A page whose access faults is handed to the
//! caller's fault handler (demand paging, copy-on-write) and the page's copy
//! is retried; when the handler cannot resolve it, the copy stops with
//! `UserFault`.

use aspen_abi::USER_ADDR_END;

use super::probe::probe;

const PAGE: u64 = 4096;

/// The kernel touched user memory it may not: `-EFAULT` for a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserFault {
    pub addr: u64,
}

/// Which access a user fault was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

extern "C" {
    fn aspen_copy_from_user(dst: *mut u8, src: u64, len: u64);
    fn aspen_copy_to_user(dst: u64, src: *const u8, len: u64);
}

core::arch::global_asm!(
    ".section .text.uaccess, \"ax\"",
    // x0 = kernel dst, x1 = user src, x2 = len (may be 0).
    ".global aspen_copy_from_user",
    "aspen_copy_from_user:",
    "    cbz     x2, 2f",
    "1:  ldtrb   w3, [x1]",
    "    strb    w3, [x0], #1",
    "    add     x1, x1, #1",
    "    subs    x2, x2, #1",
    "    b.ne    1b",
    "2:  ret",
    // x0 = user dst, x1 = kernel src, x2 = len (may be 0).
    ".global aspen_copy_to_user",
    "aspen_copy_to_user:",
    "    cbz     x2, 2f",
    "1:  ldrb    w3, [x1], #1",
    "    sttrb   w3, [x0]",
    "    add     x0, x0, #1",
    "    subs    x2, x2, #1",
    "    b.ne    1b",
    "2:  ret",
);

/// Checks that `[addr, addr + len)` is a user range that does not wrap.
pub fn check_range(addr: u64, len: u64) -> Result<(), UserFault> {
    match addr.checked_add(len) {
        Some(end) if end <= USER_ADDR_END => Ok(()),
        _ => Err(UserFault { addr }),
    }
}

/// Runs `copy(chunk_addr, offset, chunk_len)` over `[addr, addr + len)` in
/// page-sized chunks; a chunk that faults goes to `resolve(fault_addr,
/// access)`, and is retried if it returns true.
fn by_pages(
    addr: u64,
    len: u64,
    access: Access,
    resolve: &mut dyn FnMut(u64, Access) -> bool,
    mut copy: impl FnMut(u64, usize, u64),
) -> Result<(), UserFault> {
    check_range(addr, len)?;
    let mut done = 0u64;
    while done < len {
        let at = addr + done;
        let chunk = (PAGE - at % PAGE).min(len - done);
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
                        return Err(UserFault { addr: far.max(at) });
                    }
                }
            }
        }
        done += chunk;
    }
    Ok(())
}

/// Copies `buf.len()` bytes from user address `src` into `buf`.
pub fn copy_from_user(buf: &mut [u8], src: u64, resolve: &mut dyn FnMut(u64, Access) -> bool) -> Result<(), UserFault> {
    let base = buf.as_mut_ptr();
    by_pages(src, buf.len() as u64, Access::Read, resolve, |at, offset, chunk| {
        // SAFETY: `offset + chunk <= buf.len()`, so the kernel side stays in
        // `buf`; the user side uses unprivileged loads and any fault is
        // caught by the probe around this call.
        unsafe { aspen_copy_from_user(base.add(offset), at, chunk) }
    })
}

/// Copies `data` to user address `dst`.
pub fn copy_to_user(dst: u64, data: &[u8], resolve: &mut dyn FnMut(u64, Access) -> bool) -> Result<(), UserFault> {
    let base = data.as_ptr();
    by_pages(dst, data.len() as u64, Access::Write, resolve, |at, offset, chunk| {
        // SAFETY: as in `copy_from_user`, with unprivileged stores.
        unsafe { aspen_copy_to_user(at, base.add(offset), chunk) }
    })
}

/// Reads a NUL-terminated string of at most `max` bytes (NUL excluded) at
/// `src`. `Ok(None)` when no NUL came within `max` bytes.
pub fn read_cstr(
    src: u64,
    max: usize,
    resolve: &mut dyn FnMut(u64, Access) -> bool,
) -> Result<Option<alloc::vec::Vec<u8>>, UserFault> {
    let mut out = alloc::vec::Vec::new();
    let mut at = src;
    while out.len() <= max {
        let chunk = ((PAGE - at % PAGE) as usize).min(max + 1 - out.len());
        let mut buf = alloc::vec![0u8; chunk];
        copy_from_user(&mut buf, at, resolve)?;
        if let Some(nul) = buf.iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..nul]);
            return Ok(Some(out));
        }
        out.extend_from_slice(&buf);
        at = at.checked_add(chunk as u64).ok_or(UserFault { addr: at })?;
    }
    Ok(None)
}
