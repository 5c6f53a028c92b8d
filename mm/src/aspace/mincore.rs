//! mincore(2): which pages of a range are resident, as Linux 6.1's
//! `mm/mincore.c` reports them, from a read-only walk (nothing is
//! allocated or faulted in).

use alloc::vec::Vec;

use super::varea::Backing;
use super::{object_index, page_align, AddressSpace, MmEnv, USER_END};
use crate::addr::{VirtAddr, VirtRange, PAGE_SIZE};
use crate::errno::Errno;

impl<E: MmEnv> AddressSpace<'_, E> {
    /// mincore(2): one byte per page of `addr .. addr + len` (`len`
    /// rounded up to pages), bit 0 set when the page is resident: mapped
    /// in the table, or (file and shared anonymous mappings) in its
    /// object's page cache. EINVAL when `addr` is not page aligned; ENOMEM
    /// when the range leaves user space or any page of it is in no varea.
    /// A zero `len` gives no bytes. The kernel copies the vector out.
    pub fn mincore(&self, addr: VirtAddr, len: u64) -> Result<Vec<u8>, Errno> {
        if !addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        let len = page_align(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > USER_END {
            return Err(Errno::ENOMEM);
        }
        let range = VirtRange::new(addr, end);
        if !self.vareas.covers(range) {
            return Err(Errno::ENOMEM);
        }
        let pages = (len / PAGE_SIZE) as usize;
        let mut vec = Vec::new();
        vec.try_reserve_exact(pages).map_err(|_| Errno::EAGAIN)?;
        vec.resize(pages, 0);
        // Mapped pages: one pass over the tables, skipping what is empty.
        self.table.visit_leaves(range, |leaf| {
            let mapping = leaf.mapping();
            for i in 0..mapping.size.bytes() / PAGE_SIZE {
                let va = mapping.va + i * PAGE_SIZE;
                if range.contains(va) {
                    vec[((va - addr) / PAGE_SIZE) as usize] = 1;
                }
            }
        });
        // Pages of objects: those in the page cache too.
        for (start, varea) in self.vareas.overlapping(range) {
            let Backing::Object { object, first_page, .. } = &varea.backing else { continue };
            let sub = VirtRange::new(start.max(range.start), varea.end_exclusive.min(range.end_exclusive));
            let mut va = sub.start;
            while va < sub.end_exclusive {
                if object.has_page(object_index(*first_page, start, va)) {
                    vec[((va - addr) / PAGE_SIZE) as usize] = 1;
                }
                va = va + PAGE_SIZE;
            }
        }
        Ok(vec)
    }
}
