//! MAP_POPULATE, mlock and mlockall: afterwards no access in the range
//! faults; and running out of memory is contained.

use std::sync::Arc;
use std::vec::Vec;

use super::{exec, faults_during, map_anon, read, va, with_env, write, Space, PS};
use crate::aspace::{AddressSpace, FaultError, MappedFile, MmEnv};
use crate::errno::Errno;
use crate::object::tests::{pattern, RecordingPager};
use crate::object::{FileIdentity, FileObject};
use aspen_abi::mman::{Advice, MapFlags, MlockallFlags, Prot};

const RW: Prot = Prot::READ.union(Prot::WRITE);

/// Reads and writes every page of `pages` pages at `at`.
fn touch_all(space: &mut Space<'_, '_>, at: u64, pages: u64, writable: bool) {
    for page in 0..pages {
        read(space, at + page * PS).unwrap();
        if writable {
            write(space, at + page * PS + 1, 0x5a).unwrap();
        }
    }
}

#[test]
fn populated_mappings_never_fault() {
    with_env(256, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let data = pattern(4 * PS as usize, 6);
        let pager = RecordingPager::with_bytes(&data);
        let file = FileObject::new(env, pager.clone(), FileIdentity::default());
        let anon = map_anon(&mut space, 8, RW, MapFlags::PRIVATE | MapFlags::POPULATE);
        let shared = map_anon(&mut space, 2, RW, MapFlags::SHARED | MapFlags::POPULATE);
        let private_file = space
            .mmap(
                va(0),
                4 * PS,
                RW,
                MapFlags::PRIVATE | MapFlags::POPULATE,
                Some(MappedFile::read_write(Arc::clone(&file))),
                0,
            )
            .unwrap()
            .as_u64();
        let text = space
            .mmap(
                va(0),
                2 * PS,
                Prot::READ | Prot::EXEC,
                MapFlags::PRIVATE | MapFlags::POPULATE,
                Some(MappedFile::read_write(Arc::clone(&file))),
                0,
            )
            .unwrap()
            .as_u64();
        assert_eq!(space.resident_pages(), 16);
        let faults = faults_during(env, || {
            touch_all(&mut space, anon, 8, true);
            touch_all(&mut space, shared, 2, true);
            touch_all(&mut space, private_file, 4, true);
            exec(&mut space, text).unwrap();
            exec(&mut space, text + PS).unwrap();
        });
        assert_eq!(faults, 0);
        assert_eq!(read(&mut space, private_file + 7), Ok(data[7]), "populated copies hold the file's data");
        assert_eq!(file.dirty_pages(), 0, "private copies leave the file clean");
        // MAP_NONBLOCK turns MAP_POPULATE off, as in Linux.
        let lazy = map_anon(&mut space, 2, RW, MapFlags::PRIVATE | MapFlags::POPULATE | MapFlags::NONBLOCK);
        assert_eq!(faults_during(env, || touch_all(&mut space, lazy, 2, true)), 2);
    });
}

#[test]
fn mlock_breaks_copy_on_write_and_stays_fault_free_across_fork() {
    with_env(256, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 4, RW, MapFlags::PRIVATE);
        write(&mut space, p, 1).unwrap();
        let child = space.fork().unwrap();
        let file =
            FileObject::new(env, RecordingPager::with_bytes(&pattern(2 * PS as usize, 1)), FileIdentity::default());
        let f =
            space.mmap(va(0), 2 * PS, RW, MapFlags::PRIVATE, Some(MappedFile::read_write(file)), 0).unwrap().as_u64();
        read(&mut space, f).unwrap();
        assert_eq!(space.mlock(va(p + 1), 4 * PS - 1, None), Ok(()));
        assert_eq!(space.mlock(va(f), 2 * PS, None), Ok(()));
        let faults = faults_during(env, || {
            touch_all(&mut space, p, 4, true);
            touch_all(&mut space, f, 2, true);
        });
        assert_eq!(faults, 0, "locked pages are populated writable");
        // A fork copies the locked pages for the child: the parent still never faults.
        let mut child2 = space.fork().unwrap();
        assert_eq!(faults_during(env, || touch_all(&mut space, p, 4, true)), 0);
        assert_eq!(read(&mut child2, p + 1), Ok(0x5a));
        write(&mut child2, p, 7).unwrap();
        assert_eq!(read(&mut space, p), Ok(1));
        // MADV_DONTNEED refuses locked pages; munlock lifts that.
        assert_eq!(space.madvise(va(p), PS, Advice::DontNeed), Err(Errno::EINVAL));
        space.munlock(va(p), 4 * PS).unwrap();
        assert_eq!(space.madvise(va(p), PS, Advice::DontNeed), Ok(()));
        // Making a locked read-only varea writable populates it again.
        let r = map_anon(&mut space, 2, Prot::READ, MapFlags::PRIVATE | MapFlags::LOCKED);
        space.mprotect(va(r), 2 * PS, RW).unwrap();
        assert_eq!(faults_during(env, || touch_all(&mut space, r, 2, true)), 0);
        drop(child);
    });
}

#[test]
fn populate_walks_across_table_boundaries_breaking_copy_on_write() {
    with_env(256, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        // Two pages below 2 MiB and two above: two L3 tables.
        let p = space
            .mmap(
                va(0x20_0000 - 2 * PS),
                4 * PS,
                RW,
                MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED,
                None,
                0,
            )
            .unwrap()
            .as_u64();
        write(&mut space, p, 1).unwrap();
        write(&mut space, p + 3 * PS, 4).unwrap();
        let mut child = space.fork().unwrap();
        // Populating copies the two shared pages and fills the two holes,
        // through the TLB model (which panics on a stale translation).
        let copies = env.stats().cow_copies();
        assert_eq!(space.mlock(va(p), 4 * PS, None), Ok(()));
        assert_eq!(env.stats().cow_copies() - copies, 2);
        assert_eq!(space.resident_pages(), 4);
        assert_eq!(faults_during(env, || touch_all(&mut space, p, 4, true)), 0);
        assert_eq!((read(&mut space, p), read(&mut space, p + 3 * PS)), (Ok(1), Ok(4)));
        assert_eq!((read(&mut child, p + 1), read(&mut child, p + 3 * PS + 1)), (Ok(0), Ok(0)));
        drop(child);
    });
}

#[test]
fn populate_maps_private_anonymous_memory_in_zeroed_runs_around_present_pages() {
    with_env(256, |env| {
        let frames = env.frames();
        let mut space = AddressSpace::new(env).unwrap();
        // Frames that held data before: populate must zero them.
        let dirty = map_anon(&mut space, 64, RW, MapFlags::PRIVATE);
        touch_all(&mut space, dirty, 64, true);
        assert_eq!(space.munmap(va(dirty), 64 * PS), Ok(()));
        let baseline = frames.free_frame_count();
        // 40 pages across a last-level table's end, one present already.
        let p = space
            .mmap(
                va(0x20_0000 - 8 * PS),
                40 * PS,
                RW,
                MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED,
                None,
                0,
            )
            .unwrap()
            .as_u64();
        write(&mut space, p + 20 * PS, 0x77).unwrap();
        let present = space.table.query(va(p + 20 * PS)).unwrap().pa;
        assert_eq!(space.mlock(va(p), 40 * PS, None), Ok(()));
        assert_eq!(space.resident_pages(), 40);
        assert_eq!(space.table.query(va(p + 20 * PS)).unwrap().pa, present, "the present page stays");
        assert_eq!(read(&mut space, p + 20 * PS), Ok(0x77));
        // Runs of frames in a row: the 8 pages below the table's end, the
        // 12 and the 19 on either side of the present page by powers of two.
        let pa = |space: &Space<'_, '_>, page: u64| space.table.query(va(p + page * PS)).unwrap().pa.as_u64();
        for (first, len) in [(0, 8), (8, 8), (16, 4), (21, 16), (37, 2)] {
            for i in 1..len {
                assert_eq!(pa(&space, first + i), pa(&space, first) + i * PS, "run from page {first}");
            }
        }
        let faults = faults_during(env, || {
            for page in (0..40).filter(|&page| page != 20) {
                assert_eq!(read(&mut space, p + page * PS + 9), Ok(0), "populated page {page} not zero");
                write(&mut space, p + page * PS, 1).unwrap();
            }
        });
        assert_eq!(faults, 0, "populated writable");
        assert_eq!(space.munmap(va(p), 40 * PS), Ok(()));
        assert_eq!(frames.free_frame_count(), baseline, "every frame of the runs given back");
    });
}

#[test]
fn mlockall_locks_current_and_future_mappings() {
    with_env(256, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        space.set_brk_base(va(0x50_0000));
        let before = map_anon(&mut space, 3, RW, MapFlags::PRIVATE);
        assert_eq!(space.mlockall(MlockallFlags::CURRENT | MlockallFlags::FUTURE, None), Ok(()));
        let after = map_anon(&mut space, 3, RW, MapFlags::PRIVATE);
        assert_eq!(space.brk(va(0x50_3000)), va(0x50_3000));
        let faults = faults_during(env, || {
            touch_all(&mut space, before, 3, true);
            touch_all(&mut space, after, 3, true);
            touch_all(&mut space, 0x50_0000, 3, true);
        });
        assert_eq!(faults, 0);
        assert!(space.vareas().all(|v| v.locked));
        space.munlockall();
        let lazy = map_anon(&mut space, 1, RW, MapFlags::PRIVATE);
        assert_eq!(faults_during(env, || touch_all(&mut space, lazy, 1, true)), 1);
        assert!(space.vareas().all(|v| !v.locked));
        // MCL_ONFAULT locks without populating.
        assert_eq!(space.mlockall(MlockallFlags::CURRENT | MlockallFlags::ONFAULT, None), Ok(()));
        let onfault = map_anon(&mut space, 1, RW, MapFlags::PRIVATE);
        assert_eq!(faults_during(env, || touch_all(&mut space, onfault, 1, true)), 1);
    });
}

#[test]
fn running_out_of_memory_is_contained() {
    with_env(96, |env| {
        let frames = env.frames();
        let mut victim = AddressSpace::new(env).unwrap();
        let mut bystander = AddressSpace::new(env).unwrap();
        let keep = map_anon(&mut bystander, 1, RW, MapFlags::PRIVATE);
        write(&mut bystander, keep, 0x77).unwrap();
        // Populating mappings fails with ENOMEM once memory runs out, and
        // the failed mapping is gone.
        let mut mapped = Vec::new();
        let err = loop {
            match victim.mmap(va(0), 8 * PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::POPULATE, None, 0)
            {
                Ok(at) => mapped.push(at),
                Err(e) => break e,
            }
        };
        assert_eq!(err, Errno::ENOMEM);
        assert_eq!(victim.varea_count(), 1, "the populated mappings merged; the failed one is gone");
        // Demand faults end with OutOfMemory.
        let big = map_anon(&mut victim, 64, RW, MapFlags::PRIVATE);
        let mut verdict = Ok(());
        for page in 0..64 {
            verdict = write(&mut victim, big + page * PS, 1);
            if verdict.is_err() {
                break;
            }
        }
        assert_eq!(verdict, Err(FaultError::OutOfMemory));
        assert_eq!(victim.mlock(va(big), 64 * PS, None), Err(Errno::EAGAIN));
        assert_eq!(victim.fork().err(), Some(Errno::ENOMEM));
        // The kernel kills the task: its space goes, every frame comes back.
        drop(victim);
        assert_eq!(read(&mut bystander, keep), Ok(0x77));
        let free = frames.free_frame_count();
        drop(bystander);
        assert!(frames.free_frame_count() > free);
    });
}
