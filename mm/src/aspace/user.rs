//! User memory of a space seen from outside it: which ranges a user access
//! could reach ([`AddressSpace::check_user_range`]), and the
//! [`UserMemory`] copies for a space that is not running. On the running
//! space the kernel copies with unprivileged loads and stores instead (the
//! same interface); there a fault goes to [`AddressSpace::handle_fault`].

use aspen_abi::uaccess::{CopyFault, UserMemory, UserSlice};

use super::fault::{prot_allows, Mode};
use super::varea::Backing;
use super::{AddressSpace, FaultError, FaultKind, MmEnv, USER_END};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::errno::Errno;
use crate::object::{read_frame, write_frame};

impl<'e, E: MmEnv> AddressSpace<'e, E> {
    /// Checks that user code could make an access of `kind` to every byte
    /// of `slice`: `EFAULT` where no varea allows that access. An empty
    /// slice is fine anywhere.
    pub fn check_user_range(&self, slice: UserSlice, kind: FaultKind) -> Result<(), Errno> {
        if slice.is_empty() {
            return Ok(());
        }
        let start = VirtAddr::new(slice.addr()).align_down(PAGE_SIZE);
        let end = VirtAddr::new(slice.addr() + slice.len()).align_up(PAGE_SIZE);
        let range = VirtRange::new(start, end);
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

    /// Calls `f` for each page-sized piece of the first `len` bytes of
    /// `slice` with the frame, the offset in it and the piece's range in
    /// the buffer, in order; stops at the first page user code could not
    /// access, saying how many bytes went before it.
    fn for_each_user_page(
        &mut self,
        slice: UserSlice,
        len: usize,
        kind: FaultKind,
        mut f: impl FnMut(&E::Mem, PhysAddr, usize, core::ops::Range<usize>),
    ) -> Result<(), CopyFault> {
        let reachable = len.min(slice.len() as usize);
        let mut done = 0;
        while done < reachable {
            let at = VirtAddr::new(slice.addr() + done as u64);
            let n = (reachable - done).min((PAGE_SIZE - at.page_offset()) as usize);
            let frame = self.user_frame(at, kind).map_err(|errno| CopyFault { copied: done, errno })?;
            f(self.env.mem(), frame, at.page_offset() as usize, done..done + n);
            done += n;
        }
        if reachable < len {
            return Err(CopyFault { copied: done, errno: Errno::EFAULT });
        }
        Ok(())
    }
}

/// A space reached through its tables and the physical memory view, as a
/// user access would see it: for a space that is not running (exec writes
/// the new program's stack) and for host tests on the simulated machine.
/// `ENOMEM` if faulting a page in ran out of memory.
impl<E: MmEnv> UserMemory for AddressSpace<'_, E> {
    fn read_partial(&mut self, src: UserSlice, buf: &mut [u8]) -> Result<(), CopyFault> {
        self.for_each_user_page(src, buf.len(), FaultKind::Read, |mem, frame, offset, range| {
            read_frame(mem, frame, offset, &mut buf[range]);
        })
    }

    /// Breaks copy-on-write and marks shared file pages dirty, as a user
    /// store would.
    fn write_partial(&mut self, dst: UserSlice, data: &[u8]) -> Result<(), CopyFault> {
        self.for_each_user_page(dst, data.len(), FaultKind::Write, |mem, frame, offset, range| {
            write_frame(mem, frame, offset, &data[range]);
        })
    }
}
