//! mremap, mincore, futex keys and the locked-memory limit: Linux 6.1's
//! errnos, moves that keep frames and offsets, exact TLB invalidation
//! (the TLB model panics on a stale translation), no change on failure.

use std::sync::Arc;
use std::vec::Vec;

use super::{layout, map_anon, read, va, with_env, write, Space, TestEnv, PS};
use crate::addr::PhysAddr;
use crate::aspace::{AddressSpace, FaultError, FutexKey, MappedFile, MmEnv};
use crate::errno::Errno;
use crate::frame::FrameAllocator;
use crate::object::tests::{pattern, RecordingPager};
use crate::object::{FileIdentity, FileObject};
use aspen_abi::mman::{MapFlags, MlockallFlags, MremapFlags, Prot};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const MOVE: MremapFlags = MremapFlags::MAYMOVE;
const FIXED: MremapFlags = MremapFlags::MAYMOVE.union(MremapFlags::FIXED);

type File<'e, 'a> = Arc<FileObject<'e, TestEnv<'a>>>;

fn open<'e, 'a>(env: &'e TestEnv<'a>, data: &[u8]) -> File<'e, 'a> {
    let identity = FileIdentity { major: 0, minor: 0x12, inode: 9, path: "/tmp/r".into() };
    FileObject::new(env, RecordingPager::with_bytes(data), identity)
}

fn map_file<'e, 'a>(space: &mut Space<'e, 'a>, file: &File<'e, 'a>, pages: u64, flags: MapFlags, offset: u64) -> u64 {
    let mapped = MappedFile::read_write(Arc::clone(file));
    space.mmap(va(0), pages * PS, RW, flags, Some(mapped), offset).unwrap().as_u64()
}

/// The frame mapped at `at`, if any.
fn frame_at(space: &Space<'_, '_>, at: u64) -> Option<PhysAddr> {
    space.table.query(va(at)).map(|m| m.pa)
}

fn remap(
    space: &mut Space<'_, '_>,
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: MremapFlags,
    new: u64,
) -> Result<u64, Errno> {
    space.mremap(va(old), old_len, new_len, flags, va(new)).map(|a| a.as_u64())
}

#[test]
fn mremap_refuses_as_linux_and_changes_nothing() {
    with_env(64, |env| {
        let mut s = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut s, 4, RW, MapFlags::PRIVATE);
        let q = map_anon(&mut s, 2, Prot::READ, MapFlags::PRIVATE);
        write(&mut s, p, 1).unwrap();
        let before = layout(&s);
        let unknown = MremapFlags::from_register(8 | 1);
        assert_eq!(remap(&mut s, p, PS, 2 * PS, unknown, 0), Err(Errno::EINVAL));
        assert_eq!(remap(&mut s, p, PS, 2 * PS, MremapFlags::FIXED, q), Err(Errno::EINVAL));
        assert_eq!(remap(&mut s, p, PS, PS, MremapFlags::DONTUNMAP, 0), Err(Errno::EINVAL));
        let dontunmap = MOVE | MremapFlags::DONTUNMAP;
        assert_eq!(remap(&mut s, p, PS, 2 * PS, dontunmap, 0), Err(Errno::EINVAL), "DONTUNMAP resizes nothing");
        assert_eq!(remap(&mut s, p + 1, PS, 2 * PS, MOVE, 0), Err(Errno::EINVAL));
        assert_eq!(remap(&mut s, p, PS, 0, MOVE, 0), Err(Errno::EINVAL));
        assert_eq!(remap(&mut s, 0x7000_0000, PS, 2 * PS, MOVE, 0), Err(Errno::EFAULT));
        assert_eq!(remap(&mut s, p, 0, PS, MOVE, 0), Err(Errno::EINVAL), "no duplicate of a private mapping");
        assert_eq!(remap(&mut s, p, 5 * PS, 8 * PS, MOVE, 0), Err(Errno::EFAULT), "growing across vareas");
        assert_eq!(remap(&mut s, p, 2 * PS, 2 * PS, FIXED, p + PS), Err(Errno::EINVAL), "overlapping");
        assert_eq!(remap(&mut s, p, PS, PS, FIXED, p + 1), Err(Errno::EINVAL));
        assert_eq!(remap(&mut s, p, PS, PS, FIXED, 0x1000), Err(Errno::EPERM));
        // q sits right below p (top-down): p's varea cannot grow over q if
        // q is above; make sure one of them is blocked.
        let (low, high) = if p < q { (p, q) } else { (q, p) };
        let low_len = if low == p { 4 * PS } else { 2 * PS };
        if low + low_len == high {
            assert_eq!(remap(&mut s, low, low_len, low_len + PS, MremapFlags::empty(), 0), Err(Errno::ENOMEM));
        }
        assert_eq!(layout(&s), before, "nothing changed");
        assert_eq!(read(&mut s, p), Ok(1));
        drop(s);
    });
}

#[test]
fn mremap_shrinks_grows_in_place_and_moves() {
    with_env(128, |env| {
        let mut s = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut s, 4, RW, MapFlags::PRIVATE);
        for i in 0..4 {
            write(&mut s, p + i * PS, 10 + i as u8).unwrap();
        }
        // Shrink: the tail goes, and the TLB forgets it.
        assert_eq!(remap(&mut s, p, 4 * PS, 3 * PS, MremapFlags::empty(), 0), Ok(p));
        assert_eq!(read(&mut s, p + 3 * PS), Err(FaultError::Segv));
        // Grow in place: the range after it is free.
        assert_eq!(remap(&mut s, p, 3 * PS, 5 * PS, MremapFlags::empty(), 0), Ok(p));
        assert_eq!(s.varea_count(), 1);
        assert_eq!(read(&mut s, p + 4 * PS), Ok(0));
        assert_eq!(read(&mut s, p + 2 * PS), Ok(12));
        // Block the growth, then move: same frames, no copy.
        let blocker =
            s.mmap(va(p + 5 * PS), PS, Prot::READ, MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED, None, 0);
        assert_eq!(blocker.map(|a| a.as_u64()), Ok(p + 5 * PS));
        assert_eq!(remap(&mut s, p, 5 * PS, 8 * PS, MremapFlags::empty(), 0), Err(Errno::ENOMEM));
        let frames: Vec<_> = (0..5).map(|i| frame_at(&s, p + i * PS)).collect();
        let copies = env.stats().cow_copies();
        let n = remap(&mut s, p, 5 * PS, 8 * PS, MOVE, 0).unwrap();
        assert_ne!(n, p);
        let moved: Vec<_> = (0..5).map(|i| frame_at(&s, n + i * PS)).collect();
        assert_eq!(moved, frames, "the entries moved, frames kept");
        assert_eq!(env.stats().cow_copies(), copies);
        for i in 0..3 {
            assert_eq!(read(&mut s, n + i * PS), Ok(10 + i as u8));
        }
        assert_eq!(read(&mut s, n + 7 * PS), Ok(0), "the grown part demand-faults");
        assert_eq!(read(&mut s, p), Err(FaultError::Segv), "the old range is gone, TLB included");
        // FIXED over an existing mapping replaces it.
        let target = map_anon(&mut s, 2, RW, MapFlags::PRIVATE);
        write(&mut s, target, 99).unwrap();
        write(&mut s, target + PS, 98).unwrap();
        assert_eq!(remap(&mut s, n, PS, PS, FIXED, target), Ok(target));
        assert_eq!(read(&mut s, target), Ok(10));
        assert_eq!(read(&mut s, target + PS), Ok(98), "only the destination range is replaced");
        drop(s);
    });
}

#[test]
fn mremap_fixed_shrinks_while_moving() {
    with_env(64, |env| {
        let mut s = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut s, 4, RW, MapFlags::PRIVATE);
        for i in 0..4 {
            write(&mut s, p + i * PS, 1 + i as u8).unwrap();
        }
        let dest = 0x5000_0000;
        assert_eq!(remap(&mut s, p, 4 * PS, 2 * PS, FIXED, dest), Ok(dest));
        assert_eq!(read(&mut s, dest + PS), Ok(2));
        assert_eq!(read(&mut s, dest + 2 * PS), Err(FaultError::Segv));
        assert_eq!(read(&mut s, p + 3 * PS), Err(FaultError::Segv));
        assert_eq!(s.varea_count(), 1);
        drop(s);
    });
}

#[test]
fn mremap_dontunmap_leaves_the_old_range_empty() {
    with_env(64, |env| {
        let mut s = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut s, 2, RW, MapFlags::PRIVATE);
        write(&mut s, p, 7).unwrap();
        write(&mut s, p + PS, 8).unwrap();
        s.mlock(va(p), 2 * PS, None).unwrap();
        let n = remap(&mut s, p, 2 * PS, 2 * PS, MOVE | MremapFlags::DONTUNMAP, 0).unwrap();
        assert_eq!(read(&mut s, n + PS), Ok(8));
        assert_eq!(s.locked_bytes(), 2 * PS, "the new place keeps the lock, the old loses it");
        assert_eq!(read(&mut s, p), Ok(0), "the old range faults zero pages in");
        assert_eq!(s.varea_count(), 2);
        drop(s);
    });
}

#[test]
fn mremap_keeps_file_offsets_and_shared_pages() {
    with_env(128, |env| {
        let data = pattern(4 * PS as usize, 3);
        let file = open(env, &data);
        let mut s = AddressSpace::new(env).unwrap();
        let p = map_file(&mut s, &file, 3, MapFlags::SHARED, PS);
        write(&mut s, p + PS, 0xab).unwrap();
        let key = s.futex_key(va(p + PS + 8), false).unwrap();
        let n = remap(&mut s, p, 3 * PS, 3 * PS, FIXED, 0x6000_0000).unwrap();
        assert_eq!(read(&mut s, n + PS), Ok(0xab));
        assert_eq!(read(&mut s, n + 2 * PS + 1), Ok(data[3 * PS as usize + 1]), "offset kept");
        assert_eq!(s.futex_key(va(n + PS + 8), false), Ok(key), "the same futex");
        let mut b = [0];
        file.read(2 * PS, &mut b).unwrap();
        assert_eq!(b[0], 0xab, "still the page cache's page");
        drop(s);
        assert_eq!(file.dirty_pages(), 0, "written back at teardown");
    });
}

#[test]
fn mremap_after_fork_keeps_copy_on_write() {
    with_env(128, |env| {
        let mut parent = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut parent, 2, RW, MapFlags::PRIVATE);
        write(&mut parent, p, 5).unwrap();
        let mut child = parent.fork().unwrap();
        let n = remap(&mut parent, p, 2 * PS, 4 * PS, FIXED, 0x4000_0000).unwrap();
        write(&mut parent, n, 6).unwrap();
        assert_eq!(read(&mut child, p), Ok(5), "the child keeps its copy");
        assert_eq!(read(&mut parent, n), Ok(6));
        drop(child);
        drop(parent);
    });
}

#[test]
fn mremap_out_of_table_pages_changes_nothing() {
    with_env(64, |env| {
        let mut s = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut s, 2, RW, MapFlags::PRIVATE);
        write(&mut s, p, 4).unwrap();
        write(&mut s, p + PS, 5).unwrap();
        let target = 0x10_0000_0000; // another L1 entry: three new tables
        let other = s.mmap(va(target), PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED, None, 0);
        assert!(other.is_ok());
        let mut held = Vec::new();
        while let Ok(f) = env.frames().alloc_frame() {
            held.push(f);
        }
        let before = layout(&s);
        assert_eq!(remap(&mut s, p, 2 * PS, 2 * PS, FIXED, 0x20_0000_0000), Err(Errno::ENOMEM));
        assert_eq!(layout(&s), before);
        for f in held {
            env.frames().free_frame(f);
        }
        assert_eq!(read(&mut s, p + PS), Ok(5));
        assert_eq!(remap(&mut s, p, 2 * PS, 2 * PS, FIXED, target), Ok(target));
        assert_eq!(read(&mut s, target), Ok(4));
        drop(s);
    });
}

#[test]
fn mincore_reports_resident_pages() {
    with_env(128, |env| {
        let data = pattern(3 * PS as usize, 5);
        let file = open(env, &data);
        let mut s = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut s, 3, RW, MapFlags::PRIVATE);
        write(&mut s, p + PS, 1).unwrap();
        assert_eq!(s.mincore(va(p), 3 * PS), Ok(std::vec![0, 1, 0]));
        assert_eq!(s.mincore(va(p), PS + 1), Ok(std::vec![0, 1]), "len rounded up");
        assert_eq!(s.mincore(va(p), 0), Ok(std::vec![]));
        assert_eq!(s.mincore(va(p + 1), PS), Err(Errno::EINVAL));
        assert_eq!(s.mincore(va(p), 4 * PS), Err(Errno::ENOMEM), "past the varea");
        let q = map_file(&mut s, &file, 3, MapFlags::PRIVATE, 0);
        let mut b = [0];
        file.read(2 * PS, &mut b).unwrap();
        read(&mut s, q).unwrap();
        assert_eq!(s.mincore(va(q), 3 * PS), Ok(std::vec![1, 0, 1]), "cached or mapped");
        let table_pages = s.table_pages();
        let free = env.frames().free_frame_count();
        s.mincore(va(q), 3 * PS).unwrap();
        assert_eq!((s.table_pages(), env.frames().free_frame_count()), (table_pages, free));
        drop(s);
    });
}

#[test]
fn futex_keys_name_shared_memory_by_object_and_private_by_space() {
    with_env(128, |env| {
        let file = open(env, &pattern(4 * PS as usize, 1));
        let mut a = AddressSpace::new(env).unwrap();
        let mut b = AddressSpace::new(env).unwrap();
        assert_ne!(a.id(), b.id());
        let pa = map_file(&mut a, &file, 2, MapFlags::SHARED, PS);
        map_anon(&mut b, 5, RW, MapFlags::PRIVATE);
        let pb = map_file(&mut b, &file, 3, MapFlags::SHARED, 0);
        assert_ne!(pa, pb + PS, "another address");
        let ka = a.futex_key(va(pa + 16), false).unwrap();
        assert_eq!(b.futex_key(va(pb + PS + 16), false), Ok(ka), "two mmaps of one file");
        assert_eq!(ka, FutexKey::Shared { object: file.id(), offset: PS + 16 });
        let anon = map_anon(&mut a, 1, RW, MapFlags::SHARED);
        let private = map_anon(&mut a, 1, RW, MapFlags::PRIVATE);
        let child = a.fork().unwrap();
        assert_ne!(child.id(), a.id());
        assert_eq!(child.futex_key(va(anon + 4), false), a.futex_key(va(anon + 4), false), "shared across fork");
        assert_ne!(child.futex_key(va(private + 4), false), a.futex_key(va(private + 4), false));
        assert_eq!(a.futex_key(va(private + 4), false), Ok(FutexKey::Private { space: a.id(), addr: private + 4 }));
        assert_eq!(a.futex_key(va(pa + 16), true), Ok(FutexKey::Private { space: a.id(), addr: pa + 16 }));
        assert_eq!(a.futex_key(va(pa + 2), false), Err(Errno::EINVAL));
        assert_eq!(a.futex_key(va(0x7000_0000), false), Err(Errno::EFAULT));
        let other = open(env, &[1]);
        assert_ne!(other.id(), file.id());
        drop(child);
        drop(b);
        drop(a);
    });
}

#[test]
fn mlock_limits_follow_rlimit_memlock() {
    with_env(128, |env| {
        let mut s = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut s, 4, RW, MapFlags::PRIVATE);
        assert_eq!(s.mlock(va(p), PS, Some(0)), Err(Errno::EPERM));
        assert_eq!(s.mlock(va(p), 3 * PS, Some(2 * PS)), Err(Errno::ENOMEM));
        assert_eq!(s.locked_bytes(), 0);
        assert_eq!(s.mlock(va(p), 2 * PS, Some(2 * PS)), Ok(()));
        assert_eq!(s.locked_bytes(), 2 * PS);
        assert_eq!(s.mlock(va(p), 2 * PS, Some(2 * PS)), Ok(()), "already locked pages count once");
        assert_eq!(s.mlock(va(p + 2 * PS), PS, Some(2 * PS + PS - 1)), Err(Errno::ENOMEM));
        assert_eq!(s.mlockall(MlockallFlags::CURRENT, Some(0)), Err(Errno::EPERM));
        assert_eq!(s.mlockall(MlockallFlags::CURRENT, Some(3 * PS)), Err(Errno::ENOMEM), "total_vm counts");
        assert_eq!(s.mlockall(MlockallFlags::FUTURE, Some(4 * PS)), Ok(()));
        let more = s.mmap(va(0), 3 * PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0);
        assert_eq!(more, Err(Errno::EAGAIN));
        assert_eq!(remap(&mut s, p, 2 * PS, 5 * PS, MOVE, 0), Err(Errno::EAGAIN));
        assert!(s.mmap(va(0), 2 * PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).is_ok());
        assert_eq!(s.locked_bytes(), 4 * PS);
        s.munlockall();
        assert_eq!(s.locked_bytes(), 0);
        drop(s);
    });
}

#[test]
fn mremap_with_zero_old_len_duplicates_a_shared_mapping() {
    with_env(64, |env| {
        let mut s = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut s, 2, RW, MapFlags::SHARED);
        write(&mut s, p + PS, 3).unwrap();
        let d = remap(&mut s, p + PS, 0, PS, MOVE, 0).unwrap();
        assert_ne!(d, p + PS);
        assert_eq!(read(&mut s, d), Ok(3), "the same page");
        write(&mut s, d, 4).unwrap();
        assert_eq!(read(&mut s, p + PS), Ok(4));
        assert_eq!(s.futex_key(va(d), false), s.futex_key(va(p + PS), false));
        assert_eq!(s.varea_count(), 2);
        let q = map_anon(&mut s, 1, RW, MapFlags::PRIVATE);
        assert_eq!(remap(&mut s, q, 0, PS, MOVE, 0), Err(Errno::EINVAL));
        drop(s);
    });
}
