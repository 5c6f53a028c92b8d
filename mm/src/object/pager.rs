//! Pagers that keep file data in kernel memory: [`MemoryPager`] (writable,
//! the tmpfs backing store) and [`ReadOnlyPager`] (a byte slice that lives
//! for ever, such as a file inside the initramfs image).

use alloc::boxed::Box;
use alloc::vec::Vec;

use spin::Mutex;

use super::{pages_for, Pager, PAGE};
use crate::addr::PAGE_SIZE;
use crate::errno::Errno;

/// The data of a tmpfs file: a vector of pages, allocated on first write
/// (pages never written read as zeros).
#[derive(Default)]
pub struct MemoryPager {
    state: Mutex<MemoryFile>,
}

#[derive(Default)]
struct MemoryFile {
    size: u64,
    /// One slot per page of `size`; `None` is a page of zeros.
    pages: Vec<Option<Box<[u8]>>>,
}

/// A zeroed page on the heap; `ENOMEM` instead of an abort.
fn heap_page() -> Result<Box<[u8]>, Errno> {
    let mut page = Vec::new();
    page.try_reserve_exact(PAGE).map_err(|_| Errno::ENOMEM)?;
    page.resize(PAGE, 0);
    Ok(page.into_boxed_slice())
}

impl MemoryFile {
    fn resize(&mut self, size: u64) -> Result<(), Errno> {
        let count = usize::try_from(pages_for(size)).map_err(|_| Errno::EFBIG)?;
        if count > self.pages.len() {
            self.pages.try_reserve(count - self.pages.len()).map_err(|_| Errno::ENOMEM)?;
        }
        self.pages.resize_with(count, || None);
        // Bytes past the new end must read as zeros if the file grows again.
        if !size.is_multiple_of(PAGE_SIZE) {
            if let Some(Some(last)) = self.pages.last_mut() {
                last[(size % PAGE_SIZE) as usize..].fill(0);
            }
        }
        self.size = size;
        Ok(())
    }
}

impl MemoryPager {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// A file holding `data`.
    pub fn from_bytes(data: &[u8]) -> Result<Self, Errno> {
        let mut file = MemoryFile::default();
        file.resize(data.len() as u64)?;
        for (slot, chunk) in file.pages.iter_mut().zip(data.chunks(PAGE)) {
            let mut page = heap_page()?;
            page[..chunk.len()].copy_from_slice(chunk);
            *slot = Some(page);
        }
        Ok(Self { state: Mutex::new(file) })
    }

    /// Copies the stored bytes at `offset` into `buf`; returns how many
    /// (fewer at the end of file). For tests and debugging: this is what
    /// reached the backing store, not what the page cache holds.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let file = self.state.lock();
        let end = offset.saturating_add(buf.len() as u64).min(file.size);
        let mut at = offset;
        while at < end {
            let n = (PAGE_SIZE - at % PAGE_SIZE).min(end - at) as usize;
            let done = (at - offset) as usize;
            let from = (at % PAGE_SIZE) as usize;
            match file.pages.get((at / PAGE_SIZE) as usize) {
                Some(Some(page)) => buf[done..done + n].copy_from_slice(&page[from..from + n]),
                _ => buf[done..done + n].fill(0),
            }
            at += n as u64;
        }
        end.saturating_sub(offset) as usize
    }
}

impl Pager for MemoryPager {
    fn size(&self) -> u64 {
        self.state.lock().size
    }

    fn read_page(&self, index: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let file = self.state.lock();
        if let Some(Some(page)) = usize::try_from(index).ok().and_then(|i| file.pages.get(i)) {
            let n = buf.len().min(PAGE);
            buf[..n].copy_from_slice(&page[..n]);
        }
        Ok(())
    }

    fn write_page(&self, index: u64, buf: &[u8]) -> Result<(), Errno> {
        let mut file = self.state.lock();
        let size = file.size;
        let Some(slot) = usize::try_from(index).ok().and_then(|i| file.pages.get_mut(i)) else {
            // Wholly past the end of file (truncated meanwhile): nothing to keep.
            return Ok(());
        };
        let page = match slot {
            Some(page) => page,
            None => slot.insert(heap_page()?),
        };
        let valid = (size - index * PAGE_SIZE).min(PAGE_SIZE) as usize;
        let n = valid.min(buf.len());
        page[..n].copy_from_slice(&buf[..n]);
        Ok(())
    }

    fn set_size(&self, size: u64) -> Result<(), Errno> {
        self.state.lock().resize(size)
    }
}

/// A read-only file whose bytes are in memory for the kernel's whole life
/// (a file of the initramfs): pages in by copying, refuses every change
/// with `EROFS`.
#[derive(Clone, Copy, Debug)]
pub struct ReadOnlyPager {
    data: &'static [u8],
}

impl ReadOnlyPager {
    /// A file whose contents are `data`.
    pub const fn new(data: &'static [u8]) -> Self {
        Self { data }
    }
}

impl Pager for ReadOnlyPager {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_page(&self, index: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let start = usize::try_from(index).ok().and_then(|i| i.checked_mul(PAGE)).unwrap_or(usize::MAX);
        if let Some(rest) = self.data.get(start..) {
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
        }
        Ok(())
    }

    fn write_page(&self, _index: u64, _buf: &[u8]) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn set_size(&self, _size: u64) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
}
