//! Kernel access to user memory.
//!
//! On the current address space the kernel reads and writes user
//! addresses directly, with exception fixup: it checks the range with
//! [`AddressSpace::check_user_range`], and a fault during the copy goes to
//! [`AddressSpace::handle_fault`] before the access is retried (`EFAULT`
//! when that fails). For a space that is not current (writing argv onto a
//! new process's stack during exec), and in host tests,
//! [`AddressSpace::read_user`] and friends translate page by page through
//! the tables and copy through the physical memory view, faulting pages in
//! as a user access would.

use alloc::vec::Vec;

use super::fault::{prot_allows, Mode};
use super::varea::Backing;
use super::{AddressSpace, FaultError, FaultKind, MmEnv, USER_END};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::errno::Errno;
use crate::object::{read_frame, write_frame};

impl<'e, E: MmEnv> AddressSpace<'e, E> {
    /// Checks that user code could make an access of `kind` to every byte
    /// of `va .. va + len`: `EFAULT` for a range that wraps, leaves user
    /// space, or touches a page no varea allows that access to. An empty
    /// range is fine anywhere in user space.
    pub fn check_user_range(&self, va: VirtAddr, len: u64, kind: FaultKind) -> Result<(), Errno> {
        let end = va.checked_add(len).ok_or(Errno::EFAULT)?;
        if end > USER_END {
            return Err(Errno::EFAULT);
        }
        if len == 0 {
            return Ok(());
        }
        let range = VirtRange::new(va.align_down(PAGE_SIZE), end.align_up(PAGE_SIZE));
        if !self.vareas.covers(range) || self.vareas.overlapping(range).any(|(_, v)| !prot_allows(v.prot, kind)) {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    /// The frame behind the user page holding `va`, faulted in for an
    /// access of `kind` if needed. Device mappings are refused: their
    /// frames are not in the kernel's view of RAM.
    fn user_frame(&mut self, va: VirtAddr, kind: FaultKind) -> Result<PhysAddr, Errno> {
        if va >= USER_END {
            return Err(Errno::EFAULT);
        }
        let (_, varea) = self.vareas.find(va).ok_or(Errno::EFAULT)?;
        if !prot_allows(varea.prot, kind) || matches!(varea.backing, Backing::Device { .. }) {
            return Err(Errno::EFAULT);
        }
        let page = va.align_down(PAGE_SIZE);
        if let Some(leaf) = self.table.query(page).filter(|l| Mode::of(l.attrs).allows(kind)) {
            return Ok(leaf.pa);
        }
        self.fault_in(va, kind).map_err(|e| match e {
            FaultError::OutOfMemory => Errno::ENOMEM,
            FaultError::Segv | FaultError::Bus => Errno::EFAULT,
        })?;
        match self.table.query(page) {
            Some(leaf) if Mode::of(leaf.attrs).allows(kind) => Ok(leaf.pa),
            _ => Err(Errno::EFAULT),
        }
    }

    /// Calls `f` for each page-sized piece of `va .. va + len` with the
    /// frame, the offset in it and the piece's range in the buffer.
    fn for_each_user_page(
        &mut self,
        va: VirtAddr,
        len: usize,
        kind: FaultKind,
        mut f: impl FnMut(&E::Mem, PhysAddr, usize, core::ops::Range<usize>),
    ) -> Result<(), Errno> {
        va.checked_add(len as u64).filter(|end| *end <= USER_END).ok_or(Errno::EFAULT)?;
        let mut done = 0;
        while done < len {
            let at = va + done as u64;
            let n = (len - done).min((PAGE_SIZE - at.page_offset()) as usize);
            let frame = self.user_frame(at, kind)?;
            f(self.env.mem(), frame, at.page_offset() as usize, done..done + n);
            done += n;
        }
        Ok(())
    }

    /// Copies user memory at `va` into `buf`, as a user read would see it.
    /// `EFAULT` (with `buf` partly filled) where the user could not read;
    /// `ENOMEM` if faulting a page in ran out of memory.
    pub fn read_user(&mut self, va: VirtAddr, buf: &mut [u8]) -> Result<(), Errno> {
        self.for_each_user_page(va, buf.len(), FaultKind::Read, |mem, frame, offset, range| {
            read_frame(mem, frame, offset, &mut buf[range]);
        })
    }

    /// Copies `data` to user memory at `va`, as a user write would (breaking
    /// copy-on-write, marking shared file pages dirty). Errors as for
    /// [`Self::read_user`].
    pub fn write_user(&mut self, va: VirtAddr, data: &[u8]) -> Result<(), Errno> {
        self.for_each_user_page(va, data.len(), FaultKind::Write, |mem, frame, offset, range| {
            write_frame(mem, frame, offset, &data[range]);
        })
    }

    /// Reads a NUL-terminated string at `va` of at most `max` bytes before
    /// the NUL; returns it without the NUL. `ENAMETOOLONG` when no NUL comes
    /// within `max` bytes, `EFAULT` when the string runs into memory the
    /// user cannot read.
    pub fn read_user_cstr(&mut self, va: VirtAddr, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut at = va;
        loop {
            let chunk = (PAGE_SIZE - at.page_offset()) as usize;
            let frame = self.user_frame(at, FaultKind::Read)?;
            let mut buf = [0u8; 64];
            let mut offset = at.page_offset() as usize;
            let page_end = offset + chunk;
            while offset < page_end {
                let n = (page_end - offset).min(buf.len());
                read_frame(self.env.mem(), frame, offset, &mut buf[..n]);
                let piece = &buf[..n];
                let (text, found) = match piece.iter().position(|&b| b == 0) {
                    Some(nul) => (&piece[..nul], true),
                    None => (piece, false),
                };
                if out.len() + text.len() > max {
                    return Err(Errno::ENAMETOOLONG);
                }
                out.try_reserve(text.len()).map_err(|_| Errno::ENOMEM)?;
                out.extend_from_slice(text);
                if found {
                    return Ok(out);
                }
                offset += n;
            }
            at = at.checked_add(chunk as u64).filter(|a| *a < USER_END).ok_or(Errno::EFAULT)?;
        }
    }
}
