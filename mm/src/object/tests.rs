//! Tests of memory objects and pagers, and the recording pager the address
//! space tests use.

use std::sync::{Arc, Mutex};
use std::vec::Vec;

use super::{FileIdentity, FileObject, MemoryPager, PageError, Pager, ReadOnlyPager};
use crate::addr::{PhysAddr, PAGE_SIZE};
use crate::asid::{AsidAllocator, AsidBits};
use crate::aspace::{Env, MmEnv};
use crate::errno::Errno;
use crate::frame::{BuddyAllocator, FrameFlags};
use crate::testbed::{Arena, RecordingTlb};

const PS: usize = PAGE_SIZE as usize;

/// One call a [`RecordingPager`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PagerEvent {
    Read(u64),
    Write(u64),
    SetSize(u64),
}

/// A [`MemoryPager`] that records every call, and can be told to fail.
#[derive(Default)]
pub(crate) struct RecordingPager {
    pub inner: MemoryPager,
    events: Mutex<Vec<PagerEvent>>,
    fail_io: Mutex<bool>,
}

impl RecordingPager {
    pub fn with_bytes(data: &[u8]) -> Arc<Self> {
        Arc::new(Self { inner: MemoryPager::from_bytes(data).unwrap(), ..Self::default() })
    }

    /// Every call so far, forgetting them.
    pub fn take(&self) -> Vec<PagerEvent> {
        core::mem::take(&mut self.events.lock().unwrap())
    }

    /// Page indices written back so far (forgetting every event).
    pub fn take_writes(&self) -> Vec<u64> {
        self.take()
            .into_iter()
            .filter_map(|e| match e {
                PagerEvent::Write(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    pub fn set_failing(&self, fail: bool) {
        *self.fail_io.lock().unwrap() = fail;
    }

    /// The stored bytes at `offset` (what reached the backing store).
    pub fn stored(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = std::vec![0; len];
        let n = self.inner.read_at(offset, &mut buf);
        buf.truncate(n);
        buf
    }

    fn record(&self, event: PagerEvent) -> Result<(), Errno> {
        self.events.lock().unwrap().push(event);
        if *self.fail_io.lock().unwrap() {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }
}

impl Pager for RecordingPager {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_page(&self, index: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.record(PagerEvent::Read(index))?;
        self.inner.read_page(index, buf)
    }

    fn write_page(&self, index: u64, buf: &[u8]) -> Result<(), Errno> {
        self.record(PagerEvent::Write(index))?;
        self.inner.write_page(index, buf)
    }

    fn set_size(&self, size: u64) -> Result<(), Errno> {
        self.record(PagerEvent::SetSize(size))?;
        self.inner.set_size(size)
    }
}

/// `len` bytes of a recognisable pattern.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed) | 1).collect()
}

fn identity(path: &str) -> FileIdentity {
    FileIdentity { major: 0, minor: 3, inode: 42, path: path.into() }
}

/// Runs `f` with an environment over a small arena, then checks that every
/// frame came back.
fn with_env(f: impl FnOnce(&Env<'_, Arena, RecordingTlb>)) {
    let arena = Arena::new(PhysAddr::new(0x4000_0000), 64 * PAGE_SIZE);
    let frames = BuddyAllocator::new_owned(&[arena.range()]).unwrap();
    let tlb = RecordingTlb::new();
    let asids = AsidAllocator::new(AsidBits::Sixteen);
    let env = Env::new(&arena, &frames, &tlb, &asids);
    let baseline = frames.free_frame_count();
    f(&env);
    assert_eq!(frames.free_frame_count(), baseline, "frames leaked");
    assert_eq!(env.stats().page_cache_pages(), 0);
    assert_eq!(env.stats().anonymous_object_pages(), 0);
}

#[test]
fn read_goes_through_the_cache_and_pages_in_once() {
    with_env(|env| {
        let data = pattern(2 * PS + 100, 3);
        let pager = RecordingPager::with_bytes(&data);
        let file = FileObject::new(env, pager.clone(), identity("/f"));
        assert_eq!(file.size(), data.len() as u64);
        let mut buf = std::vec![0; 300];
        assert_eq!(file.read(PS as u64 - 100, &mut buf), Ok(300));
        assert_eq!(buf, data[PS - 100..PS + 200]);
        assert_eq!(pager.take(), [PagerEvent::Read(0), PagerEvent::Read(1)]);
        assert_eq!(file.read(0, &mut buf), Ok(300));
        assert!(pager.take().is_empty(), "cached pages are not read again");
        // Short read at the end of file, nothing past it.
        assert_eq!(file.read(data.len() as u64 - 10, &mut buf), Ok(10));
        assert_eq!(file.read(data.len() as u64, &mut buf), Ok(0));
        assert_eq!(file.read(u64::MAX - 1, &mut buf), Ok(0));
        assert_eq!(file.cached_pages(), 3);
        assert_eq!(env.stats().page_cache_pages(), 3);
        assert_eq!(env.stats().anonymous_object_pages(), 0, "file pages are not anonymous");
        assert_eq!(file.dirty_pages(), 0);
    });
}

#[test]
fn writes_are_dirty_until_synced_and_grow_the_file() {
    with_env(|env| {
        let pager = RecordingPager::with_bytes(&pattern(PS, 1));
        let file = FileObject::new(env, pager.clone(), identity("/f"));
        assert_eq!(file.write(10, b"hello"), Ok(5));
        assert_eq!(file.dirty_pages(), 1);
        assert_eq!(pager.take(), [PagerEvent::Read(0)]);
        assert_eq!(pager.stored(10, 5), pattern(PS, 1)[10..15], "not written back yet");
        // Past the end: the file grows, the gap reads as zeros.
        assert_eq!(file.write(3 * PS as u64 + 5, b"tail"), Ok(4));
        assert_eq!(file.size(), 3 * PS as u64 + 9);
        assert_eq!(pager.take(), [PagerEvent::SetSize(3 * PS as u64 + 9), PagerEvent::Read(3)]);
        let mut buf = std::vec![0xff; 8];
        assert_eq!(file.read(2 * PS as u64, &mut buf), Ok(8));
        assert_eq!(buf, [0; 8]);
        assert_eq!(file.sync(), Ok(()));
        let mut writes = pager.take_writes();
        writes.sort();
        assert_eq!(writes, [0, 3], "only dirty pages are written back");
        assert_eq!(pager.stored(10, 5), b"hello");
        assert_eq!(pager.stored(3 * PS as u64 + 5, 4), b"tail");
        assert_eq!(file.dirty_pages(), 0);
        assert_eq!(file.sync(), Ok(()));
        assert!(pager.take().is_empty(), "clean pages are not written again");
    });
}

#[test]
fn sync_range_only_touches_its_pages_and_keeps_failed_pages_dirty() {
    with_env(|env| {
        let pager = RecordingPager::with_bytes(&pattern(4 * PS, 9));
        let file = FileObject::new(env, pager.clone(), identity("/f"));
        for page in 0..4 {
            file.write(page * PAGE_SIZE, &[page as u8]).unwrap();
        }
        pager.take();
        assert_eq!(file.sync_range(1, 3), Ok(()));
        assert_eq!(pager.take_writes(), [1, 2]);
        assert_eq!(file.dirty_pages(), 2);
        pager.set_failing(true);
        assert_eq!(file.sync_range(0, 4), Err(Errno::EIO));
        assert_eq!(file.dirty_pages(), 2, "failed write-backs stay dirty");
        pager.set_failing(false);
        assert_eq!(file.sync_range(0, 0), Ok(()));
        assert!(pager.take().len() == 2);
        drop(file);
        // Dropping the object wrote the rest back.
        assert_eq!(pager.take_writes(), [0, 3]);
        assert_eq!(pager.stored(3 * PAGE_SIZE, 1), [3]);
    });
}

#[test]
fn tail_of_last_page_reads_zero_and_truncate_drops_pages() {
    with_env(|env| {
        let data = pattern(PS + 10, 5);
        let pager = RecordingPager::with_bytes(&data);
        let file = FileObject::new(env, pager.clone(), identity("/f"));
        let frame = file.get_page(1).unwrap();
        let mut tail = std::vec![0xff; PS];
        super::read_frame(env.mem(), frame, 0, &mut tail);
        assert_eq!(tail[..10], data[PS..]);
        assert!(tail[10..].iter().all(|&b| b == 0));
        assert_eq!(file.get_page(2), Err(PageError::BeyondEof));
        // The page stays alive for the mapping that holds it.
        let frames = env.frames();
        assert_eq!(frames.refcount(frame), Ok(2));
        assert!(frames.meta(frame).unwrap().flags().contains(FrameFlags::PAGE_CACHE));
        assert_eq!(file.truncate(5), Ok(()));
        assert_eq!(file.size(), 5);
        assert_eq!(file.cached_pages(), 0);
        assert_eq!(frames.refcount(frame), Ok(1));
        assert!(!frames.meta(frame).unwrap().flags().contains(FrameFlags::PAGE_CACHE));
        super::put_frame(frames, frame);
        let mut buf = [0xffu8; 16];
        assert_eq!(file.read(0, &mut buf), Ok(5));
        assert_eq!(file.truncate(PS as u64), Ok(()));
        assert_eq!(file.read(0, &mut buf), Ok(16));
        assert_eq!(buf[..5], data[..5]);
        assert_eq!(buf[5..], [0; 11], "bytes cut by truncate come back as zeros");
    });
}

#[test]
fn drop_clean_pages_keeps_dirty_and_held_pages() {
    with_env(|env| {
        let data = pattern(3 * PS, 9);
        let pager = RecordingPager::with_bytes(&data);
        let file = FileObject::new(env, pager.clone(), identity("/f"));
        let mut buf = std::vec![0; 3 * PS];
        assert_eq!(file.read(0, &mut buf), Ok(3 * PS));
        assert_eq!(pager.take(), [PagerEvent::Read(0), PagerEvent::Read(1), PagerEvent::Read(2)]);
        let held = file.get_page(1).unwrap();
        assert_eq!(file.write(0, b"new"), Ok(3));
        assert_eq!(file.drop_clean_pages(), 1, "only page 2 is clean and unused");
        assert_eq!(file.cached_pages(), 2);
        assert_eq!(env.stats().page_cache_pages(), 2);
        assert_eq!(file.read(2 * PS as u64, &mut buf[..PS]), Ok(PS));
        assert_eq!(buf[..PS], data[2 * PS..], "a dropped page comes back from the pager");
        assert_eq!(pager.take(), [PagerEvent::Read(2)]);
        super::put_frame(env.frames(), held);
        assert_eq!(file.drop_clean_pages(), 2, "page 0 stays: dirty");
        assert_eq!(file.sync(), Ok(()));
        assert_eq!(file.drop_clean_pages(), 1);
        assert_eq!(file.cached_pages(), 0);
        assert_eq!(file.read(0, &mut buf[..3]), Ok(3));
        assert_eq!(&buf[..3], b"new", "written back before it was dropped");
        let anon = FileObject::anonymous(env, PS as u64);
        assert_eq!(anon.write(0, b"only copy"), Ok(9));
        assert_eq!(anon.sync(), Ok(()));
        assert_eq!(anon.drop_clean_pages(), 0, "anonymous pages have no other copy");
    });
}

#[test]
fn read_only_pager_refuses_changes() {
    static DATA: [u8; 5000] = [7; 5000];
    with_env(|env| {
        let file = FileObject::new(env, Arc::new(ReadOnlyPager::new(&DATA)), identity("/init"));
        let mut buf = [0u8; 8];
        assert_eq!(file.read(4996, &mut buf), Ok(4));
        assert_eq!(buf[..4], [7; 4]);
        assert_eq!(file.write(6000, b"x"), Err(Errno::EROFS));
        assert_eq!(file.truncate(0), Err(Errno::EROFS));
        assert_eq!(file.write(0, b"x"), Ok(1));
        assert_eq!(file.sync(), Err(Errno::EROFS));
        assert_eq!(file.dirty_pages(), 1);
    });
}

#[test]
fn anonymous_objects_are_zero_filled_and_never_written_back() {
    with_env(|env| {
        let obj = FileObject::<Env<'_, Arena, RecordingTlb>>::anonymous(env, 2 * PAGE_SIZE);
        assert!(obj.is_anonymous());
        let mut buf = [1u8; 16];
        assert_eq!(obj.read(PAGE_SIZE, &mut buf), Ok(16));
        assert_eq!(buf, [0; 16]);
        assert_eq!(obj.write(0, b"abc"), Ok(3));
        // Its pages count as cache pages and as anonymous-object pages.
        assert_eq!((env.stats().page_cache_pages(), env.stats().anonymous_object_pages()), (2, 2));
        assert_eq!(obj.write(2 * PAGE_SIZE, b"x"), Err(Errno::EFBIG));
        assert_eq!(obj.sync(), Ok(()));
        assert_eq!(obj.truncate(0), Err(Errno::EINVAL));
        assert_eq!(obj.identity().path, "/dev/zero (deleted)");
    });
}

#[test]
fn running_out_of_frames_is_an_error() {
    with_env(|env| {
        let pager = RecordingPager::with_bytes(&pattern(100 * PS, 2));
        let file = FileObject::new(env, pager, identity("/big"));
        let mut buf = std::vec![0; 100 * PS];
        let n = file.read(0, &mut buf).unwrap();
        assert!((60 * PS..100 * PS).contains(&n), "short read when memory runs out: {n}");
        assert_eq!(buf[..n], pattern(100 * PS, 2)[..n]);
        assert_eq!(file.read(n as u64, &mut buf[..1]), Err(Errno::ENOMEM));
    });
}

#[test]
fn memory_pager_stores_pages_and_sizes() {
    let pager = MemoryPager::from_bytes(&pattern(PS + 3, 4)).unwrap();
    assert_eq!(pager.size(), PS as u64 + 3);
    let mut page = std::vec![0; PS];
    pager.read_page(1, &mut page).unwrap();
    assert_eq!(page[..3], pattern(PS + 3, 4)[PS..]);
    assert_eq!(page[3..], std::vec![0; PS - 3][..]);
    pager.set_size(1).unwrap();
    pager.set_size(3 * PS as u64).unwrap();
    pager.read_page(0, &mut page).unwrap();
    assert_eq!(page[0], pattern(1, 4)[0]);
    assert!(page[1..].iter().all(|&b| b == 0), "bytes cut off read back as zeros");
    pager.write_page(2, &[9; PS]).unwrap();
    pager.write_page(7, &[9; PS]).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(pager.read_at(3 * PS as u64 - 2, &mut buf), 2);
    assert_eq!(buf[..2], [9, 9]);
    assert_eq!(pager.read_at(PS as u64, &mut buf), 4);
    assert_eq!(buf, [0; 4]);
    let empty = MemoryPager::new();
    assert_eq!(empty.size(), 0);
    empty.read_page(0, &mut page).unwrap();
}

#[test]
fn a_refused_heap_preload_fails_a_page_in_with_no_side_effect() {
    with_env(|env| {
        let data = pattern(2 * PS, 5);
        let pager = RecordingPager::with_bytes(&data);
        let file = FileObject::new(env, pager.clone(), identity("/f"));
        let free = env.frames().free_frame_count();
        // The heap cannot reserve the cache insert: nothing is read, no
        // frame taken, the cache unchanged.
        env.refuse_heap_preloads(1);
        let mut buf = std::vec![0; PS];
        assert_eq!(file.read(0, &mut buf), Err(Errno::ENOMEM));
        assert!(pager.take().is_empty(), "the pager was read for a page that could not be cached");
        assert_eq!(env.frames().free_frame_count(), free);
        assert_eq!(file.cached_pages(), 0);
        // A read across two pages whose second insert is refused stops
        // after the first, as a short read.
        env.refuse_heap_preloads(0);
        assert_eq!(file.read(0, &mut buf[..PS / 2]), Ok(PS / 2));
        env.refuse_heap_preloads(1);
        let mut both = std::vec![0; 2 * PS];
        assert_eq!(file.read(0, &mut both), Ok(PS));
        assert_eq!(both[..PS], data[..PS]);
        assert_eq!(file.cached_pages(), 1);
        // Once the heap has room again, the page comes in.
        assert_eq!(file.read(0, &mut both), Ok(2 * PS));
        assert_eq!(both, data);
        assert_eq!(file.cached_pages(), 2);
    });
}
