//! Memory objects: the page cache of a file, in front of a [`Pager`] that
//! pages data in and writes it back (as in Asterinas' VMOs and Codezero's
//! pagers), and anonymous objects for shared anonymous memory.
//!
//! A [`FileObject`] maps page indices to frames. The cache holds one
//! reference to each of its frames (flagged `PAGE_CACHE`); every page-table
//! entry that maps one holds another. `read`/`write` (the kernel's read(2)
//! and write(2)) go through the same cache as mappings, so a write through
//! a shared mapping is visible to read(2) at once, and the other way round.
//!
//! Dirty tracking: a page is dirty after `write` or after a write fault
//! through a shared mapping. Such a fault maps the page writable and
//! counts it in the page's `writers`; the count drops when that entry
//! loses write permission or goes away. `sync_range` writes dirty pages
//! back and marks a page clean only when no writable mapping is left
//! (a writable entry elsewhere could still change it unseen).
//!
//! Sizes: the object knows the file size. Bytes past the end of file read
//! as zeros, also in the tail of the last page when mapped. `write` past
//! the end grows the file (tmpfs); `truncate` shrinks it and drops the
//! cached pages past the new end (mappings that still map such a page keep
//! their frame: unlike Linux, they are not unmapped).
//!
//! The cache does not evict by itself: pages stay until truncated, dropped
//! by [`FileObject::drop_clean_pages`] (`/proc/sys/vm/drop_caches`), or the
//! object is dropped. Dropping the object writes back what is still dirty and frees
//! the cache's frames. Pager calls run with the object's lock held, so
//! pagers must not block for long (the initramfs and tmpfs pagers copy
//! memory).

mod pager;

#[cfg(test)]
pub(crate) mod tests;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

pub use pager::{MemoryPager, ReadOnlyPager};

use crate::addr::{PhysAddr, PAGE_SIZE};
use crate::aspace::MmEnv;
use crate::errno::Errno;
use crate::frame::{BuddyAllocator, FrameAllocator, FrameFlags};
use crate::paging::{zero_frame, PhysMemory};

const PAGE: usize = PAGE_SIZE as usize;
/// Heap one insert into a cache's page map may take: a B-tree node per
/// level (eleven keys and pages, twelve edges, a header; rounded up to the
/// heap's size class), for as many levels as 2^32 pages need, and a root.
const PAGE_INSERT_HEAP: usize =
    13 * (32 + 11 * (core::mem::size_of::<u64>() + core::mem::size_of::<CachedPage>()) + 12 * 8).next_power_of_two();

/// Where a file's data lives: pages it in and writes it back.
///
/// Page `index` covers bytes `index * PAGE_SIZE ..` of the file.
pub trait Pager: Send + Sync {
    /// The file's size in bytes when the object is created.
    fn size(&self) -> u64;

    /// Fills `buf` (`PAGE_SIZE` bytes, zeroed) with page `index`. Only the
    /// bytes inside the file need to be written; the cache zeroes the rest.
    fn read_page(&self, index: u64, buf: &mut [u8]) -> Result<(), Errno>;

    /// Stores page `index` from `buf` (`PAGE_SIZE` bytes); bytes past the
    /// file's size are to be ignored. A read-only file returns `EROFS`.
    fn write_page(&self, index: u64, buf: &[u8]) -> Result<(), Errno>;

    /// The file now has `size` bytes (grown by a write, or truncated).
    /// Bytes added read as zeros. A read-only file returns `EROFS`.
    fn set_size(&self, size: u64) -> Result<(), Errno>;
}

/// What `/proc/<pid>/maps` shows for mappings of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileIdentity {
    /// Major number of the device holding the file.
    pub major: u32,
    /// Minor number of the device holding the file.
    pub minor: u32,
    /// Inode number on that device.
    pub inode: u64,
    /// The file's absolute path, the last column of the maps line.
    pub path: String,
}

/// Why a page of an object could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// The page starts at or past the end of the file (SIGBUS).
    BeyondEof,
    /// The pager failed (SIGBUS for a fault).
    Io(Errno),
    /// No frame for the page.
    OutOfMemory,
}

impl From<PageError> for Errno {
    fn from(e: PageError) -> Self {
        match e {
            PageError::BeyondEof => Errno::EFAULT,
            PageError::Io(e) => e,
            PageError::OutOfMemory => Errno::ENOMEM,
        }
    }
}

/// One cached page.
#[derive(Clone, Copy, Debug)]
struct CachedPage {
    frame: PhysAddr,
    /// Newer than the pager's copy.
    dirty: bool,
    /// Page-table entries that map the page writable.
    writers: u32,
}

struct Inner {
    size: u64,
    pages: BTreeMap<u64, CachedPage>,
}

/// A file's (or a shared anonymous region's) pages, shared by every
/// mapping of it and by read(2)/write(2) through `Arc`.
pub struct FileObject<'e, E: MmEnv> {
    env: &'e E,
    /// `None`: an anonymous object, zero-filled, never written back.
    pager: Option<Arc<dyn Pager>>,
    identity: FileIdentity,
    /// Unique among every object ever made ([`FileObject::id`]).
    id: u64,
    inner: Mutex<Inner>,
}

/// The next [`FileObject::id`]; starts at 1 and is never reused.
static NEXT_OBJECT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh object id.
fn next_object_id() -> u64 {
    NEXT_OBJECT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Pages needed to hold `size` bytes.
fn pages_for(size: u64) -> u64 {
    size.div_ceil(PAGE_SIZE)
}

/// Drops one reference to a frame of the pool, freeing it with the last.
#[inline]
pub(crate) fn put_frame(frames: &BuddyAllocator<'static>, pa: PhysAddr) {
    match frames.dec_ref(pa) {
        Ok(0) => frames.free_frame(pa),
        Ok(_) => {}
        Err(e) => log::error!("mm: dropping a reference to {pa:?}: {e:?}"),
    }
}

/// Copies bytes `offset .. offset + buf.len()` of `frame` into `buf`
/// (clipped to the frame).
pub(crate) fn read_frame<M: PhysMemory + ?Sized>(mem: &M, frame: PhysAddr, offset: usize, buf: &mut [u8]) {
    let len = buf.len().min(PAGE.saturating_sub(offset));
    // SAFETY: `frame` came from the frame pool, so `mem` covers it and
    // `frame_ptr` is valid for PAGE_SIZE bytes; `offset + len` stays
    // inside. Only raw pointers touch the frame (user threads may write it
    // meanwhile through a mapping, as with Linux's copy routines), and
    // `buf` is separate kernel memory.
    unsafe { core::ptr::copy_nonoverlapping(mem.frame_ptr(frame).add(offset.min(PAGE)), buf.as_mut_ptr(), len) }
}

/// Zeroes `frame` from `offset` to its end.
pub(crate) fn zero_frame_tail<M: PhysMemory + ?Sized>(mem: &M, frame: PhysAddr, offset: usize) {
    let len = PAGE.saturating_sub(offset);
    // SAFETY: as in `read_frame`: inside the frame, raw pointers only.
    unsafe { core::ptr::write_bytes(mem.frame_ptr(frame).add(offset.min(PAGE)), 0, len) }
}

/// Copies `data` into `frame` at `offset` (clipped to the frame).
pub(crate) fn write_frame<M: PhysMemory + ?Sized>(mem: &M, frame: PhysAddr, offset: usize, data: &[u8]) {
    let len = data.len().min(PAGE.saturating_sub(offset));
    // SAFETY: as in `read_frame`, writing instead of reading.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), mem.frame_ptr(frame).add(offset.min(PAGE)), len) }
}

impl<'e, E: MmEnv> FileObject<'e, E> {
    /// The cache of a file whose data `pager` holds.
    pub fn new(env: &'e E, pager: Arc<dyn Pager>, identity: FileIdentity) -> Arc<Self> {
        let size = pager.size();
        let inner = Mutex::new(Inner { size, pages: BTreeMap::new() });
        Arc::new(Self { env, pager: Some(pager), identity, id: next_object_id(), inner })
    }

    /// An anonymous object of `size` bytes (MAP_SHARED|MAP_ANONYMOUS):
    /// zero-filled on demand, never written anywhere.
    pub fn anonymous(env: &'e E, size: u64) -> Arc<Self> {
        Arc::new(Self {
            env,
            pager: None,
            identity: FileIdentity { major: 0, minor: 1, inode: 0, path: String::from("/dev/zero (deleted)") },
            id: next_object_id(),
            inner: Mutex::new(Inner { size, pages: BTreeMap::new() }),
        })
    }

    /// Whether the object is anonymous: no pager, nothing written back.
    pub fn is_anonymous(&self) -> bool {
        self.pager.is_none()
    }

    /// What `/proc/<pid>/maps` shows for mappings of the object.
    pub fn identity(&self) -> &FileIdentity {
        &self.identity
    }

    /// A number naming this object alone, for as long as the kernel runs:
    /// two objects never share one, even after the first is dropped (a
    /// futex key made from it cannot meet a later object's).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether page `index` is in the cache (no page-in, no allocation).
    pub fn has_page(&self, index: u64) -> bool {
        self.inner.lock().pages.contains_key(&index)
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.lock().size
    }

    /// Pages in the cache.
    pub fn cached_pages(&self) -> usize {
        self.inner.lock().pages.len()
    }

    /// Cached pages newer than the pager's copy.
    pub fn dirty_pages(&self) -> usize {
        self.inner.lock().pages.values().filter(|p| p.dirty).count()
    }

    /// The frame caching page `index`, paged in if needed.
    fn lookup(&self, inner: &mut Inner, index: u64) -> Result<PhysAddr, PageError> {
        if let Some(page) = inner.pages.get(&index) {
            return Ok(page.frame);
        }
        if index >= pages_for(inner.size) {
            return Err(PageError::BeyondEof);
        }
        // The insert into the cache below cannot fail softly: its nodes are
        // reserved before anything is done.
        let _preload = self.env.preload_heap(PAGE_INSERT_HEAP).map_err(|_| PageError::OutOfMemory)?;
        let frames = self.env.frames();
        let mem = self.env.mem();
        let frame = frames.alloc_frame().map_err(|_| PageError::OutOfMemory)?;
        // SAFETY: a fresh frame from the pool: ours alone, covered by `mem`.
        unsafe { zero_frame(mem, frame) };
        if let Some(pager) = &self.pager {
            // SAFETY: the frame is ours alone until it enters the cache below;
            // `frame_ptr` gives PAGE_SIZE valid, writable bytes.
            let buf = unsafe { core::slice::from_raw_parts_mut(mem.frame_ptr(frame), PAGE) };
            let read = pager.read_page(index, buf);
            if let Err(e) = read {
                frames.free_frame(frame);
                return Err(PageError::Io(e));
            }
            // The tail past the end of file reads as zeros, whatever the
            // pager left there.
            let valid = inner.size - index * PAGE_SIZE;
            if valid < PAGE_SIZE {
                zero_frame_tail(mem, frame, valid as usize);
            }
        }
        if let Some(meta) = frames.meta(frame) {
            meta.insert_flags(FrameFlags::PAGE_CACHE);
        }
        inner.pages.insert(index, CachedPage { frame, dirty: false, writers: 0 });
        self.env.stats().cache_page_added(self.is_anonymous());
        Ok(frame)
    }

    /// Page `index` for a mapping: the frame, with one more reference that
    /// the caller owns (and drops with [`put_frame`]).
    pub(crate) fn get_page(&self, index: u64) -> Result<PhysAddr, PageError> {
        let mut inner = self.inner.lock();
        let frame = self.lookup(&mut inner, index)?;
        self.env.frames().inc_ref(frame).map_err(|_| PageError::OutOfMemory)?;
        Ok(frame)
    }

    /// Page `index` if it is in the cache already (nothing is read in),
    /// with one more reference that the caller owns (and drops with
    /// [`put_frame`]). For faults that must not wait for the pager.
    pub(crate) fn cached_page(&self, index: u64) -> Option<PhysAddr> {
        let inner = self.inner.lock();
        let frame = inner.pages.get(&index)?.frame;
        self.env.frames().inc_ref(frame).ok()?;
        Some(frame)
    }

    /// The pages among `indices` that are in the cache already (none is
    /// read in), at most `out.len()` of them in index order, each with one
    /// more reference that the caller owns (and drops with [`put_frame`]);
    /// returns how many were written to `out`. For fault-around: mapping
    /// neighbours that cost no I/O.
    pub(crate) fn take_cached(&self, indices: core::ops::Range<u64>, out: &mut [(u64, PhysAddr)]) -> usize {
        let inner = self.inner.lock();
        let frames = self.env.frames();
        let mut taken = 0;
        for (&index, page) in inner.pages.range(indices) {
            if taken == out.len() {
                break;
            }
            if frames.inc_ref(page.frame).is_ok() {
                out[taken] = (index, page.frame);
                taken += 1;
            }
        }
        taken
    }

    /// A shared mapping maps page `index` writable: the page is dirty from
    /// now on, until written back with no writable mapping left.
    pub(crate) fn start_writer(&self, index: u64) {
        if self.is_anonymous() {
            return;
        }
        if let Some(page) = self.inner.lock().pages.get_mut(&index) {
            page.dirty = true;
            page.writers += 1;
        }
    }

    /// A writable mapping of page `index` lost write permission or went away.
    pub(crate) fn end_writer(&self, index: u64) {
        if self.is_anonymous() {
            return;
        }
        if let Some(page) = self.inner.lock().pages.get_mut(&index) {
            page.writers = page.writers.saturating_sub(1);
        }
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many, fewer
    /// at the end of file (0 at or past it).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut inner = self.inner.lock();
        let end = offset.saturating_add(buf.len() as u64).min(inner.size);
        let mut done = 0usize;
        let mut at = offset;
        while at < end {
            let n = ((PAGE_SIZE - at % PAGE_SIZE).min(end - at)) as usize;
            match self.lookup(&mut inner, at / PAGE_SIZE) {
                Ok(frame) => read_frame(self.env.mem(), frame, (at % PAGE_SIZE) as usize, &mut buf[done..done + n]),
                Err(e) if done == 0 => return Err(e.into()),
                Err(_) => break,
            }
            done += n;
            at += n as u64;
        }
        Ok(done)
    }

    /// Writes `data` at `offset`, growing the file when it ends past the end
    /// of file; returns how many bytes were written (fewer only when
    /// memory ran out part way).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        let mut inner = self.inner.lock();
        if end > inner.size {
            match &self.pager {
                Some(pager) => pager.set_size(end)?,
                None => return Err(Errno::EFBIG),
            }
            inner.size = end;
        }
        let mut done = 0usize;
        let mut at = offset;
        while at < end {
            let n = ((PAGE_SIZE - at % PAGE_SIZE).min(end - at)) as usize;
            let index = at / PAGE_SIZE;
            match self.lookup(&mut inner, index) {
                Ok(frame) => write_frame(self.env.mem(), frame, (at % PAGE_SIZE) as usize, &data[done..done + n]),
                Err(e) if done == 0 => return Err(e.into()),
                Err(_) => break,
            }
            if let Some(page) = inner.pages.get_mut(&index) {
                page.dirty = true;
            }
            done += n;
            at += n as u64;
        }
        Ok(done)
    }

    /// Writes the dirty pages `start_page .. end_page_exclusive` back
    /// through the pager. A page becomes clean unless a writable mapping
    /// of it remains. On a pager error the page stays dirty, the others
    /// are still written, and the first error is returned.
    pub fn sync_range(&self, start_page: u64, end_page_exclusive: u64) -> Result<(), Errno> {
        let Some(pager) = &self.pager else {
            return Ok(());
        };
        if start_page >= end_page_exclusive {
            return Ok(());
        }
        let mut inner = self.inner.lock();
        if !inner.pages.range(start_page..end_page_exclusive).any(|(_, p)| p.dirty) {
            return Ok(());
        }
        // A bounce buffer, so the pager never sees memory that user
        // threads may be writing through a mapping.
        let mut bounce = Vec::new();
        bounce.try_reserve_exact(PAGE).map_err(|_| Errno::ENOMEM)?;
        bounce.resize(PAGE, 0);
        let mut result = Ok(());
        for (&index, page) in inner.pages.range_mut(start_page..end_page_exclusive) {
            if !page.dirty {
                continue;
            }
            read_frame(self.env.mem(), page.frame, 0, &mut bounce);
            match pager.write_page(index, &bounce) {
                Ok(()) => page.dirty = page.writers > 0,
                Err(e) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        result
    }

    /// Writes every dirty page back (fsync).
    pub fn sync(&self) -> Result<(), Errno> {
        self.sync_range(0, u64::MAX)
    }

    /// Sets the file's size. Growing adds zeros; shrinking drops the cached
    /// pages past the new end and zeroes the tail of the new last page.
    pub fn truncate(&self, size: u64) -> Result<(), Errno> {
        let Some(pager) = &self.pager else {
            return Err(Errno::EINVAL);
        };
        let mut inner = self.inner.lock();
        pager.set_size(size)?;
        let old = inner.size;
        inner.size = size;
        if size >= old {
            return Ok(());
        }
        // Taken from the end one by one: a B-tree removal allocates
        // nothing, where `split_off` may (truncate must not fail here).
        let first_gone = pages_for(size);
        while let Some(entry) = inner.pages.last_entry().filter(|e| *e.key() >= first_gone) {
            self.drop_page(entry.remove());
        }
        if !size.is_multiple_of(PAGE_SIZE) {
            if let Some(page) = inner.pages.get(&(size / PAGE_SIZE)) {
                zero_frame_tail(self.env.mem(), page.frame, (size % PAGE_SIZE) as usize);
            }
        }
        Ok(())
    }

    /// Drops the cached pages that nothing else holds and the pager holds
    /// as they are (clean, no writable mapping, no page-table entry or call
    /// with a reference): `/proc/sys/vm/drop_caches`. They are paged in
    /// again when next needed. Anonymous objects keep every page: the
    /// cache is their only copy. Returns how many pages were dropped.
    pub fn drop_clean_pages(&self) -> usize {
        if self.pager.is_none() {
            return 0;
        }
        let frames = self.env.frames();
        let mut dropped = 0;
        // References are taken under this lock (`get_page`, `take_cached`),
        // so a count of one cannot grow while the page is looked at.
        self.inner.lock().pages.retain(|_, page| {
            let unused = matches!(frames.refcount(page.frame), Ok(1));
            let droppable = unused && !page.dirty && page.writers == 0;
            if droppable {
                self.drop_page(*page);
                dropped += 1;
            }
            !droppable
        });
        dropped
    }

    /// Gives up the cache's reference to a page taken out of the cache.
    fn drop_page(&self, page: CachedPage) {
        let frames = self.env.frames();
        if let Some(meta) = frames.meta(page.frame) {
            meta.remove_flags(FrameFlags::PAGE_CACHE);
        }
        put_frame(frames, page.frame);
        self.env.stats().cache_page_removed(self.is_anonymous());
    }
}

impl<E: MmEnv> Drop for FileObject<'_, E> {
    fn drop(&mut self) {
        // A pager no one else holds goes with the object: what would be
        // written back could never be read, and a free path must not
        // allocate (the write-back's bounce buffer and pages).
        let shared_pager = self.pager.as_ref().is_some_and(|pager| Arc::strong_count(pager) > 1);
        if shared_pager {
            if let Err(e) = self.sync() {
                log::error!("mm: write-back of {:?} failed on release: {e}", self.identity.path);
            }
        }
        let pages = core::mem::take(&mut self.inner.get_mut().pages);
        for page in pages.into_values() {
            self.drop_page(page);
        }
    }
}

impl<E: MmEnv> core::fmt::Debug for FileObject<'_, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileObject")
            .field("identity", &self.identity)
            .field("anonymous", &self.is_anonymous())
            .field("size", &self.size())
            .field("cached_pages", &self.cached_pages())
            .finish()
    }
}
