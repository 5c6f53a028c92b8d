//! Faults resolved with the space shared (`fault_shared`): host threads
//! fault the pages of one space at once, as the kernel's cores do without
//! the space's lock. Every page is mapped once (one frame, the losers'
//! frames back in the pool), the resident count is exact, and what a
//! shared fault may not do it refuses without changing anything.

use aspen_abi::mman::{MapFlags, Prot};
use std::vec::Vec;

use super::{read, va, with_env, write, Space, PS};
use crate::addr::VirtAddr;
use crate::aspace::{Beside, FaultKind, MmEnv, MunmapShared, NeedsExclusive};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const THREADS: u64 = 4;
const PAGES: u64 = 64;

/// Runs `body(t)` on [`THREADS`] host threads `t`, started together.
fn on_threads_at_once(body: impl Fn(u64) + Sync) {
    let barrier = std::sync::Barrier::new(THREADS as usize);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (barrier, body) = (&barrier, &body);
            s.spawn(move || {
                barrier.wait();
                body(t);
            });
        }
    });
}

/// Calls `shared_call` on every page of `pages` at `base` on [`THREADS`]
/// host threads at once (at word `t` of the page for thread `t`), each
/// starting at its own page and wrapping around, so that every page is
/// reached by every thread and most pages by two at nearly the same
/// moment; each call must resolve its page.
fn everywhere_at_once(base: u64, pages: u64, shared_call: impl Fn(VirtAddr) -> Result<(), NeedsExclusive> + Sync) {
    on_threads_at_once(|t| {
        for i in 0..pages {
            let page = (t * pages / THREADS + i) % pages;
            assert_eq!(shared_call(va(base + page * PS + 8 * t)), Ok(()), "thread {t}, page {page}");
        }
    });
}

/// [`everywhere_at_once`] with faults of `kind`.
fn fault_everywhere_at_once(space: &Space<'_, '_>, base: u64, pages: u64, kind: FaultKind) {
    // SAFETY: every thread only calls `fault_shared` until they end.
    everywhere_at_once(base, pages, |at| unsafe { space.fault_shared(at, kind) });
}

#[test]
fn threads_faulting_the_same_pages_map_each_once() {
    with_env(512, |env| {
        let mut space = Space::new(env).unwrap();
        let p = super::map_anon(&mut space, PAGES, RW, MapFlags::PRIVATE);
        let free = env.frames().free_frame_count();
        let (faults, races) = (env.stats().shared_faults(), env.stats().shared_fault_races());
        fault_everywhere_at_once(&space, p, PAGES, FaultKind::Write);
        assert_eq!(env.stats().shared_faults() - faults, THREADS * PAGES);
        assert_eq!(env.stats().shared_fault_races() - races, (THREADS - 1) * PAGES, "one fault per page maps it");
        assert_eq!(space.resident_count(), PAGES as usize);
        assert_eq!(space.resident_pages(), PAGES as usize, "the count and the table agree");
        // One frame per page plus the tables: the losers' frames came back.
        let tables = space.table_pages();
        assert!(tables <= 4, "{tables} table pages for one last-level table's worth");
        assert!(free - env.frames().free_frame_count() <= PAGES as usize + tables);
        // Each page is one frame, zeroed, writable by the exclusive path.
        for i in 0..PAGES {
            assert_eq!(read(&mut space, p + i * PS), Ok(0));
            write(&mut space, p + i * PS, i as u8).unwrap();
        }
        for i in 0..PAGES {
            assert_eq!(read(&mut space, p + i * PS), Ok(i as u8));
        }
        space.munmap(va(p), PAGES * PS).unwrap();
        assert_eq!(space.resident_count(), 0);
    });
}

#[test]
fn threads_faulting_disjoint_pages_race_nowhere() {
    with_env(1024, |env| {
        let mut space = Space::new(env).unwrap();
        let p = super::map_anon(&mut space, 4 * PAGES, RW, MapFlags::PRIVATE);
        let races = env.stats().shared_fault_races();
        let shared = &space;
        on_threads_at_once(|t| {
            for i in 0..PAGES {
                let at = p + (t * PAGES + i) * PS;
                // SAFETY: only `fault_shared` runs until the threads end.
                assert_eq!(unsafe { shared.fault_shared(va(at), FaultKind::Read) }, Ok(()));
            }
        });
        assert_eq!(env.stats().shared_fault_races(), races);
        assert_eq!(space.resident_pages(), (THREADS * PAGES) as usize);
        assert_eq!(space.resident_count(), (THREADS * PAGES) as usize);
        drop(space);
    });
}

#[test]
fn what_a_shared_fault_cannot_resolve_it_leaves_alone() {
    with_env(256, |env| {
        let mut space = Space::new(env).unwrap();
        let private = super::map_anon(&mut space, 2, RW, MapFlags::PRIVATE);
        let read_only = super::map_anon(&mut space, 1, Prot::READ, MapFlags::PRIVATE);
        let shared_anon = super::map_anon(&mut space, 1, RW, MapFlags::SHARED);
        write(&mut space, private + PS, 1).unwrap();
        let mut child = space.fork().unwrap();
        let free = env.frames().free_frame_count();
        let resident = space.resident_count();
        let refused: Vec<(u64, FaultKind)> = std::vec![
            (read_only, FaultKind::Write),    // the varea forbids it
            (private, FaultKind::Exec),       // and this
            (shared_anon, FaultKind::Write),  // not in its object yet (the object makes it)
            (private + PS, FaultKind::Write), // copy-on-write after the fork
            (0x10, FaultKind::Read),          // nothing mapped
            (1 << 62, FaultKind::Read),       // not user space
        ];
        for (at, kind) in refused {
            // SAFETY: nothing else uses the space meanwhile.
            assert_eq!(unsafe { space.fault_shared(va(at), kind) }, Err(NeedsExclusive), "{kind:?} at {at:#x}");
        }
        assert_eq!(env.frames().free_frame_count(), free, "a refusal keeps no frame");
        assert_eq!(space.resident_count(), resident);
        // The exclusive path still resolves them as before.
        write(&mut space, private + PS, 2).unwrap();
        assert_eq!(read(&mut child, private + PS), Ok(1));
        drop(child);
        drop(space);
    });
}

/// Tells looping threads to stop when dropped, also by a failing assertion
/// (so that the failure ends the test instead of hanging it).
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The kernel's protocol, played with a host lock: shared faults and the
/// unmap's table work hold it shared, everything else exclusively.
struct Protocol<'s, 'e, 'a> {
    space: std::sync::RwLock<&'s mut Space<'e, 'a>>,
}

impl<'s, 'e, 'a> Protocol<'s, 'e, 'a> {
    fn fault(&self, at: u64, kind: FaultKind) -> Result<(), NeedsExclusive> {
        let space = self.space.read().unwrap();
        // SAFETY: under the read lock, only shared faults and shared
        // unmaps run.
        unsafe { space.fault_shared(va(at), kind) }
    }

    /// munmap(2) as the kernel runs it beside shared faults: whether its
    /// table work ran beside them.
    fn munmap(&self, at: u64, len: u64) -> bool {
        let begun = self.space.write().unwrap().begin_munmap_shared(va(at), len, Beside::Threads).unwrap();
        match begun {
            MunmapShared::Done => false,
            MunmapShared::Exclusive => {
                self.space.write().unwrap().munmap(va(at), len).unwrap();
                false
            }
            MunmapShared::Zap(zap) => {
                // SAFETY: under the read lock, only shared faults run beside.
                unsafe { self.space.read().unwrap().zap_shared(&zap) };
                self.space.write().unwrap().end_munmap_shared(zap);
                true
            }
        }
    }

    /// Starts [`THREADS`] threads in `scope` that wait at `start`, then
    /// fault their shares of the pages at `a` until `done`.
    fn spawn_faulters<'scope, 'env>(
        &'env self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        a: u64,
        done: &'env std::sync::atomic::AtomicBool,
        start: &'env std::sync::Barrier,
    ) {
        for t in 0..THREADS {
            scope.spawn(move || {
                start.wait();
                self.fault_own_pages_until(a, t, done);
            });
        }
    }

    /// Thread `t`'s share of the [`PAGES`] pages at `a`, faulted over and
    /// over (each already mapped after the first pass: found, not mapped
    /// again) until `done`, at least once.
    fn fault_own_pages_until(&self, a: u64, t: u64, done: &std::sync::atomic::AtomicBool) {
        loop {
            for i in 0..PAGES / THREADS {
                let at = a + (t * PAGES / THREADS + i) * PS;
                assert_eq!(self.fault(at, FaultKind::Write), Ok(()), "page {at:#x}");
            }
            if done.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
        }
    }

    fn exclusive<R>(&self, f: impl FnOnce(&mut Space<'e, 'a>) -> R) -> R {
        f(&mut self.space.write().unwrap())
    }
}

#[test]
fn unmaps_beside_shared_faults_leave_the_other_pages_alone() {
    with_env(1024, |env| {
        let mut space = Space::new(env).unwrap();
        let a = super::map_anon(&mut space, PAGES, RW, MapFlags::PRIVATE);
        let protocol = Protocol { space: std::sync::RwLock::new(&mut space) };
        let done = std::sync::atomic::AtomicBool::new(false);
        let start = std::sync::Barrier::new(THREADS as usize + 1);
        std::thread::scope(|s| {
            protocol.spawn_faulters(s, a, &done, &start);
            start.wait();
            for round in 0..200u64 {
                let pages = 1 + round % crate::aspace::SHARED_UNMAP_PAGES;
                let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS;
                let b = protocol.exclusive(|s| s.mmap(va(0), pages * PS, RW, flags, None, 0)).unwrap().as_u64();
                for i in 0..pages {
                    assert_eq!(protocol.fault(b + i * PS, FaultKind::Write), Ok(()));
                }
                assert!(protocol.munmap(b, pages * PS));
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let space = protocol.space.into_inner().unwrap();
        assert_eq!(space.resident_count(), PAGES as usize, "A's pages, none of B's");
        assert_eq!(space.resident_pages(), PAGES as usize);
        for i in 0..PAGES {
            assert_eq!(read(space, a + i * PS), Ok(0));
        }
    });
}

#[test]
fn long_unmaps_of_anonymous_and_file_memory_go_beside_faults_stretch_by_stretch() {
    use crate::object::tests::{pattern, RecordingPager};
    use crate::object::{FileIdentity, FileObject};
    use std::sync::atomic::AtomicBool;
    with_env(2048, |env| {
        let data = pattern(300 * PS as usize, 3);
        let identity = FileIdentity { major: 0, minor: 0x12, inode: 9, path: "/tmp/g".into() };
        let file = FileObject::new(env, RecordingPager::with_bytes(&data), identity);
        let mut space = Space::new(env).unwrap();
        let a = super::map_anon(&mut space, PAGES, RW, MapFlags::PRIVATE);
        let protocol = Protocol { space: std::sync::RwLock::new(&mut space) };
        let done = AtomicBool::new(false);
        let start = std::sync::Barrier::new(THREADS as usize + 1);
        let unmaps_before = env.stats().shared_unmaps();
        std::thread::scope(|s| {
            protocol.spawn_faulters(s, a, &done, &start);
            start.wait();
            // The threads stop when the rounds end, or fail.
            let _stop = StopOnDrop(&done);
            // Ranges of 17 to 300 pages, some across a last-level table's
            // end, anonymous and a file's private pages by turns; every
            // other page touched (file pages read, or written: a copy).
            for round in 0..60u64 {
                let pages = 17 + round * 47 % 284;
                let b = if round % 2 == 0 {
                    let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS;
                    let b = protocol.exclusive(|s| s.mmap(va(0), pages * PS, RW, flags, None, 0)).unwrap().as_u64();
                    for i in (0..pages).step_by(2) {
                        assert_eq!(protocol.fault(b + i * PS, FaultKind::Write), Ok(()));
                    }
                    b
                } else {
                    let mapped = Some(crate::aspace::MappedFile::read_write(std::sync::Arc::clone(&file)));
                    let b = protocol.exclusive(|s| s.mmap(va(0), pages * PS, RW, MapFlags::PRIVATE, mapped, 0));
                    let b = b.unwrap().as_u64();
                    for i in (0..pages).step_by(2) {
                        protocol.exclusive(|s| {
                            let at = b + i * PS;
                            if i % 4 == 0 {
                                write(s, at, 7).unwrap();
                            } else {
                                assert_eq!(read(s, at), Ok(data[(i * PS) as usize]));
                            }
                        });
                    }
                    b
                };
                assert!(protocol.munmap(b, pages * PS), "round {round}: {pages} pages not unmapped beside the faults");
                let resident = protocol.exclusive(|s| (s.resident_count(), s.resident_pages()));
                assert_eq!(resident.0, resident.1);
            }
            // Alone in its 1 GiB, so that whole tables lie in the gap it
            // leaves: each goes with the stretch that empties it, not before.
            let (c, pages) = (0x40_0000_0000, 700);
            let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
            protocol.exclusive(|s| s.mmap(va(c), pages * PS, RW, flags, None, 0)).unwrap();
            for i in 0..pages {
                assert_eq!(protocol.fault(c + i * PS, FaultKind::Write), Ok(()));
            }
            assert!(protocol.munmap(c, pages * PS));
        });
        assert_eq!(env.stats().shared_unmaps() - unmaps_before, 61);
        let space = protocol.space.into_inner().unwrap();
        assert_eq!((space.resident_count(), space.resident_pages()), (PAGES as usize, PAGES as usize));
        // Only A's vareas and tables are left: unmapping A empties the tree.
        space.munmap(va(a), PAGES * PS).unwrap();
        assert_eq!(space.table_pages(), 1);
        drop(file);
    });
}

#[test]
fn an_unmap_of_shared_file_memory_or_a_long_one_alone_stays_exclusive() {
    use crate::object::tests::{pattern, RecordingPager};
    use crate::object::{FileIdentity, FileObject};
    with_env(256, |env| {
        let identity = FileIdentity { major: 0, minor: 0x12, inode: 10, path: "/tmp/h".into() };
        let file = FileObject::new(env, RecordingPager::with_bytes(&pattern(4 * PS as usize, 1)), identity);
        let mut space = Space::new(env).unwrap();
        let mapped = Some(crate::aspace::MappedFile::read_write(std::sync::Arc::clone(&file)));
        let shared = space.mmap(va(0), 4 * PS, RW, MapFlags::SHARED, mapped, 0).unwrap();
        let long = super::map_anon(&mut space, 40, RW, MapFlags::PRIVATE);
        let vareas = space.vareas().count();
        for (at, len, beside) in [(shared.as_u64(), PS, Beside::Threads), (long, 40 * PS, Beside::Nobody)] {
            assert!(matches!(space.begin_munmap_shared(va(at), len, beside), Ok(MunmapShared::Exclusive)));
            assert_eq!(space.vareas().count(), vareas, "nothing split");
        }
        assert!(matches!(space.begin_munmap_shared(va(long), 40 * PS, Beside::Threads), Ok(MunmapShared::Zap(_))));
        drop(space);
        drop(file);
    });
}

#[test]
fn an_unmap_beside_faults_on_its_own_pages_leaves_nothing_mapped() {
    const SMALL: u64 = crate::aspace::SHARED_UNMAP_PAGES;
    with_env(512, |env| {
        let mut space = Space::new(env).unwrap();
        let b = super::map_anon(&mut space, SMALL, RW, MapFlags::PRIVATE);
        let protocol = Protocol { space: std::sync::RwLock::new(&mut space) };
        let round = std::sync::atomic::AtomicU64::new(0);
        let (refused, resolved) = (std::sync::atomic::AtomicU64::new(0), std::sync::atomic::AtomicU64::new(0));
        let mut left = (0, 0);
        let start = std::sync::Barrier::new(THREADS as usize + 1);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (protocol, round, refused, resolved, start) = (&protocol, &round, &refused, &resolved, &start);
                s.spawn(move || {
                    use std::sync::atomic::Ordering::Relaxed;
                    start.wait();
                    while round.load(Relaxed) != u64::MAX {
                        for i in 0..SMALL {
                            match protocol.fault(b + ((t + i) % SMALL) * PS, FaultKind::Write) {
                                Ok(()) => resolved.fetch_add(1, Relaxed),
                                Err(NeedsExclusive) => refused.fetch_add(1, Relaxed),
                            };
                        }
                    }
                });
            }
            start.wait();
            let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
            // At least 300 rounds, and on until the faults both resolved
            // and were refused (the threads may start late on a busy host).
            let raced = || {
                resolved.load(std::sync::atomic::Ordering::Relaxed) > 0
                    && refused.load(std::sync::atomic::Ordering::Relaxed) > 0
            };
            for n in 0..1_000_000 {
                if n >= 300 && raced() {
                    break;
                }
                assert!(protocol.munmap(b, SMALL * PS));
                // Nothing the faults did in between survives the unmap.
                left = protocol.exclusive(|s| (s.resident_count(), s.resident_pages()));
                if left != (0, 0) {
                    break;
                }
                protocol.exclusive(|s| s.mmap(va(b), SMALL * PS, RW, flags, None, 0)).unwrap();
                round.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // The faulting threads stop (also after a failure).
            round.store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(left, (0, 0), "pages left mapped in an unmapped range");
        use std::sync::atomic::Ordering::Relaxed;
        assert!(resolved.load(Relaxed) > 0 && refused.load(Relaxed) > 0, "the faults raced no unmap");
        let space = protocol.space.into_inner().unwrap();
        assert_eq!(space.resident_count(), space.resident_pages());
        space.munmap(va(b), SMALL * PS).unwrap();
        assert_eq!((space.resident_count(), space.resident_pages()), (0, 0));
    });
}

#[test]
fn threads_break_copy_on_write_in_parent_and_child_at_once() {
    with_env(1024, |env| {
        let mut parent = Space::new(env).unwrap();
        let p = super::map_anon(&mut parent, PAGES, RW, MapFlags::PRIVATE);
        for i in 0..PAGES {
            write(&mut parent, p + i * PS, i as u8).unwrap();
        }
        let mut child = parent.fork().unwrap();
        let copies = env.stats().cow_copies();
        let (shared_parent, shared_child) = (&parent, &child);
        on_threads_at_once(|t| {
            // Two threads in each space, racing each other there and the
            // other space's threads for the shared frames.
            let space = if t % 2 == 0 { shared_parent } else { shared_child };
            for i in 0..PAGES {
                let at = p + ((t * 7 + i) % PAGES) * PS;
                // SAFETY: each space is only faulted shared until the
                // threads end. A refusal: the other space copied the page
                // first, and the frame is this mapping's alone (an upgrade,
                // the exclusive path's).
                let _ = unsafe { space.cow_shared(va(at)) };
            }
        });
        let copied = env.stats().cow_copies() - copies;
        assert!(copied >= PAGES, "{copied} copies: each page is copied in one of the spaces at least");
        assert!(copied <= 2 * PAGES, "{copied} copies for {PAGES} pages in two spaces");
        // Both still read the data of before the fork, and now write apart.
        for i in 0..PAGES {
            assert_eq!(read(&mut parent, p + i * PS), Ok(i as u8));
            assert_eq!(read(&mut child, p + i * PS), Ok(i as u8));
            write(&mut parent, p + i * PS, 0xa0).unwrap();
            write(&mut child, p + i * PS, 0x0c).unwrap();
        }
        for i in 0..PAGES {
            assert_eq!(read(&mut parent, p + i * PS), Ok(0xa0));
            assert_eq!(read(&mut child, p + i * PS), Ok(0x0c));
        }
        assert_eq!(parent.resident_count(), PAGES as usize);
        assert_eq!(child.resident_count(), PAGES as usize);
        drop(child);
        drop(parent);
    });
}

#[test]
fn copy_on_write_shared_leaves_alone_what_it_cannot_do() {
    with_env(256, |env| {
        let mut space = Space::new(env).unwrap();
        let p = super::map_anon(&mut space, 3, RW, MapFlags::PRIVATE);
        let read_only = super::map_anon(&mut space, 1, Prot::READ, MapFlags::PRIVATE);
        write(&mut space, p, 1).unwrap();
        // Copy-on-write after a fork, then the child gone: present
        // read-only, ours alone.
        write(&mut space, p + PS, 2).unwrap();
        drop(space.fork().unwrap());
        read(&mut space, read_only).unwrap();
        let free = env.frames().free_frame_count();
        for (at, why) in [
            (p + PS, "a page of this mapping alone (an upgrade)"),
            (p + 2 * PS, "a page not there"),
            (read_only, "a varea that forbids writes"),
            (0x10, "nothing mapped"),
        ] {
            // SAFETY: nothing else uses the space meanwhile.
            assert_eq!(unsafe { space.cow_shared(va(at)) }, Err(NeedsExclusive), "{why}");
        }
        // The exclusive path upgrades it (and its neighbours).
        write(&mut space, p, 3).unwrap();
        // SAFETY: as above. Writable already: resolved as a race.
        assert_eq!(unsafe { space.cow_shared(va(p)) }, Ok(()));
        assert_eq!(env.frames().free_frame_count(), free, "a refusal keeps no frame");
        drop(space);
    });
}

#[test]
fn threads_fault_a_files_cached_pages_at_once_and_copy_them_once() {
    use crate::object::tests::{pattern, RecordingPager};
    use crate::object::{FileIdentity, FileObject};
    with_env(1024, |env| {
        let data = pattern((PAGES * PS) as usize, 5);
        let identity = FileIdentity { major: 0, minor: 0x12, inode: 11, path: "/tmp/f".into() };
        let pager = RecordingPager::with_bytes(&data);
        let file = FileObject::new(env, pager.clone(), identity);
        let mut space = Space::new(env).unwrap();
        let mut map = |flags| {
            let mapped = Some(crate::aspace::MappedFile::read_write(std::sync::Arc::clone(&file)));
            space.mmap(va(0), PAGES * PS, RW, flags, mapped, 0).unwrap().as_u64()
        };
        let (read_private, write_private) = (map(MapFlags::PRIVATE), map(MapFlags::PRIVATE));
        let shared = map(MapFlags::SHARED);
        // Nothing cached yet: the pager's read is the exclusive path's.
        let free = env.frames().free_frame_count();
        for at in [read_private, write_private, shared] {
            // SAFETY: nothing else uses the space meanwhile.
            assert_eq!(unsafe { space.fault_shared(va(at), FaultKind::Read) }, Err(NeedsExclusive));
        }
        assert_eq!(env.frames().free_frame_count(), free, "a refusal keeps no frame");
        assert!(pager.take().is_empty(), "a shared fault reads nothing in");
        let mut buf = std::vec![0; data.len()];
        assert_eq!(file.read(0, &mut buf), Ok(data.len()));
        let cached = env.frames().free_frame_count();

        // Reads map the cached pages (with their neighbours), once each.
        let faults = env.stats().shared_faults();
        fault_everywhere_at_once(&space, read_private, PAGES, FaultKind::Read);
        assert_eq!(env.stats().shared_faults() - faults, THREADS * PAGES);
        assert_eq!((space.resident_count(), space.resident_pages()), (PAGES as usize, PAGES as usize));
        let tables = space.table_pages();
        assert!(cached - env.frames().free_frame_count() <= tables, "cache pages mapped, no frame of their own");
        // Writes to a private mapping copy each page once.
        let before = env.frames().free_frame_count();
        fault_everywhere_at_once(&space, write_private, PAGES, FaultKind::Write);
        assert_eq!(space.resident_count(), 2 * PAGES as usize);
        assert_eq!(before - env.frames().free_frame_count(), PAGES as usize, "one copy a page");
        // Writes to the read-only cache pages break copy-on-write, once a
        // page, the losers' copies back.
        let before = env.frames().free_frame_count();
        let shared_space = &space;
        // SAFETY: only shared calls until the threads end.
        everywhere_at_once(read_private, PAGES, |at| unsafe { shared_space.cow_shared(at) });
        assert_eq!(before - env.frames().free_frame_count(), PAGES as usize, "one copy a page");
        // A shared file's pages map read-only on a read, and writable on a
        // write to a page not mapped yet, its writer counted (dirty); a
        // write to one mapped read-only makes it writable in place, never
        // a copy, its writer counted too.
        let resident = space.resident_count();
        // SAFETY: nothing else uses the space meanwhile.
        assert_eq!(unsafe { space.fault_shared(va(shared), FaultKind::Read) }, Ok(()));
        assert_eq!(space.resident_count() - resident, 16, "the page and its 64 KiB around it");
        // SAFETY: as above.
        assert_eq!(unsafe { space.fault_shared(va(shared + PS), FaultKind::Write) }, Err(NeedsExclusive), "present");
        let free = env.frames().free_frame_count();
        // SAFETY: as above.
        assert_eq!(unsafe { space.cow_shared(va(shared + PS)) }, Ok(()));
        assert_eq!(env.frames().free_frame_count(), free, "made writable in place, not copied");
        assert_eq!(file.dirty_pages(), 1, "the page made writable");
        let last = shared + (PAGES - 1) * PS;
        // SAFETY: as above.
        assert_eq!(unsafe { space.fault_shared(va(last), FaultKind::Write) }, Ok(()));
        assert_eq!(space.resident_count() - resident, 17);
        assert_eq!(file.dirty_pages(), 2, "and the page first touched by a write");
        write(&mut space, shared + PS + 16, 0xdd).unwrap();
        write(&mut space, last + 16, 0xee).unwrap();
        assert_eq!(space.msync(va(shared), PAGES * PS, aspen_abi::mman::MsyncFlags::SYNC), Ok(()));
        assert_eq!(pager.take_writes(), [1, PAGES - 1], "written back");
        assert_eq!(
            (pager.stored(PS + 16, 1), pager.stored((PAGES - 1) * PS + 16, 1)),
            (std::vec![0xdd], std::vec![0xee])
        );
        assert_eq!(file.dirty_pages(), 0, "their mappings made read-only, their writers gone");
        // Every page holds the file's bytes; the copies are writable and
        // the file never sees what is written to them.
        for i in 0..PAGES {
            let offset = (i * PS + 8) as usize;
            for base in [read_private, write_private, shared] {
                assert_eq!(read(&mut space, base + i * PS + 8), Ok(data[offset]), "page {i} at {base:#x}");
            }
            let offset = (i * PS + 16) as usize;
            let expected = match i {
                1 => 0xdd,
                i if i == PAGES - 1 => 0xee,
                _ => data[offset],
            };
            assert_eq!(read(&mut space, shared + i * PS + 16), Ok(expected), "page {i} of the shared mapping");
            write(&mut space, read_private + i * PS + 8, 0).unwrap();
            write(&mut space, write_private + i * PS + 8, 0).unwrap();
        }
        assert_eq!(file.read(0, &mut buf), Ok(data.len()));
        for at in [PS + 16, (PAGES - 1) * PS + 16] {
            buf[at as usize] = data[at as usize];
        }
        assert!(buf == data, "the private copies' writes stayed private");
        // An executable page written is a W^X flip, the exclusive path's.
        let rwx = Prot::READ | Prot::WRITE | Prot::EXEC;
        let mapped = Some(crate::aspace::MappedFile::read_write(std::sync::Arc::clone(&file)));
        let code = space.mmap(va(0), PS, rwx, MapFlags::SHARED, mapped, 0).unwrap().as_u64();
        // SAFETY: nothing else uses the space meanwhile.
        assert_eq!(unsafe { space.fault_shared(va(code), FaultKind::Exec) }, Ok(()));
        // SAFETY: as above.
        assert_eq!(unsafe { space.cow_shared(va(code)) }, Err(NeedsExclusive), "a W^X flip");
        write(&mut space, code + 24, 0xcc).unwrap();
        assert_eq!(file.dirty_pages(), 1, "flipped by the exclusive path, its writer counted");
        space.munmap(va(code), PS).unwrap();
        assert_eq!((file.dirty_pages(), pager.stored(24, 1)), (0, std::vec![0xcc]), "written back as it went");
        // Read-only again after the write-back: the next write upgrades
        // it again, and counts it dirty again.
        // SAFETY: nothing else uses the space meanwhile.
        assert_eq!(unsafe { space.cow_shared(va(shared + PS)) }, Ok(()));
        assert_eq!(file.dirty_pages(), 1);
        drop(space);
        drop(file);
    });
}
