//! File mappings: private ones read the file and copy on write; shared
//! ones write into the page cache at once and reach the pager exactly on
//! msync, munmap and teardown, only for dirty pages.

use std::sync::Arc;

use super::{exec, faults_during, read, va, with_env, write, Space, TestEnv, PS};
use crate::aspace::{AddressSpace, FaultError, MappedFile, MmEnv, VareaKind};
use crate::errno::Errno;
use crate::object::tests::{pattern, PagerEvent, RecordingPager};
use crate::object::{FileIdentity, FileObject};
use aspen_abi::mman::{Advice, MapFlags, MsyncFlags, Prot};

const RW: Prot = Prot::READ.union(Prot::WRITE);

type File<'e, 'a> = Arc<FileObject<'e, TestEnv<'a>>>;

fn open<'e, 'a>(env: &'e TestEnv<'a>, data: &[u8]) -> (Arc<RecordingPager>, File<'e, 'a>) {
    let pager = RecordingPager::with_bytes(data);
    let identity = FileIdentity { major: 0, minor: 0x12, inode: 7, path: "/tmp/f".into() };
    let file = FileObject::new(env, pager.clone(), identity);
    (pager, file)
}

fn map_file<'e, 'a>(
    space: &mut Space<'e, 'a>,
    file: &File<'e, 'a>,
    pages: u64,
    prot: Prot,
    flags: MapFlags,
    offset: u64,
) -> u64 {
    space.mmap(va(0), pages * PS, prot, flags, Some(MappedFile::read_write(Arc::clone(file))), offset).unwrap().as_u64()
}

fn file_byte(file: &File<'_, '_>, offset: u64) -> u8 {
    let mut b = [0];
    assert_eq!(file.read(offset, &mut b), Ok(1));
    b[0]
}

#[test]
fn private_file_mappings_read_the_file_and_copy_on_write() {
    with_env(128, |env| {
        let data = pattern(3 * PS as usize + 100, 1);
        let (pager, file) = open(env, &data);
        let mut a = AddressSpace::new(env).unwrap();
        let mut b = AddressSpace::new(env).unwrap();
        let p = map_file(&mut a, &file, 5, RW, MapFlags::PRIVATE, 0);
        let q = map_file(&mut b, &file, 2, Prot::READ, MapFlags::PRIVATE, PS);
        assert_eq!(read(&mut a, p + 10), Ok(data[10]));
        assert_eq!(read(&mut a, p + 3 * PS + 99), Ok(data[3 * PS as usize + 99]));
        assert_eq!(read(&mut a, p + 3 * PS + 100), Ok(0), "the tail of the last page reads zero");
        assert_eq!(read(&mut a, p + 4 * PS), Err(FaultError::Bus), "a page past the end of file");
        assert_eq!(read(&mut b, q + 5), Ok(data[PS as usize + 5]), "offset mapping");
        // A write copies: the file and the other mapping keep the data.
        write(&mut a, p + PS + 5, 0xee).unwrap();
        assert_eq!(read(&mut a, p + PS + 5), Ok(0xee));
        assert_eq!(file_byte(&file, PS + 5), data[PS as usize + 5]);
        assert_eq!(read(&mut b, q + 5), Ok(data[PS as usize + 5]));
        // A write to a page never read copies straight away.
        write(&mut a, p + 2 * PS, 0xdd).unwrap();
        assert_eq!(file_byte(&file, 2 * PS), data[2 * PS as usize]);
        // Until it is copied, a private mapping sees writes to the file.
        file.write(10, &[0x42]).unwrap();
        assert_eq!(read(&mut a, p + 10), Ok(0x42));
        // MADV_DONTNEED drops the copy: the file's data comes back.
        a.madvise(va(p + PS), PS, Advice::DontNeed).unwrap();
        assert_eq!(read(&mut a, p + PS + 5), Ok(data[PS as usize + 5]));
        let info = a.vareas().next().unwrap();
        assert!(matches!(info.kind, VareaKind::File { offset: 0, shared: false, .. }));
        assert!(info.maps_line().to_string().ends_with(" /tmp/f"));
        drop(a);
        drop(b);
        assert!(pager.take_writes().is_empty(), "private mappings never write back");
        drop(file);
        assert_eq!(pager.take_writes(), [0], "the write(2) was written back on release");
    });
}

#[test]
fn shared_file_writes_reach_the_pager_exactly_on_msync_munmap_and_teardown() {
    with_env(128, |env| {
        let data = pattern(4 * PS as usize, 2);
        let (pager, file) = open(env, &data);
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_file(&mut space, &file, 4, RW, MapFlags::SHARED, 0);
        assert_eq!(read(&mut space, p), Ok(data[0]));
        write(&mut space, p + PS + 1, 0x11).unwrap();
        assert_eq!(file_byte(&file, PS + 1), 0x11, "visible to read(2) at once");
        assert_eq!(pager.take(), [PagerEvent::Read(0), PagerEvent::Read(1)], "nothing written yet");
        // write(2) shows through the mapping.
        file.write(3, &[0x33]).unwrap();
        assert_eq!(read(&mut space, p + 3), Ok(0x33));

        assert_eq!(space.msync(va(p), 4 * PS, MsyncFlags::SYNC), Ok(()));
        let mut writes = pager.take_writes();
        writes.sort();
        assert_eq!(writes, [0, 1], "the dirty pages, and only them");
        assert_eq!(pager.stored(PS + 1, 1), [0x11]);
        assert_eq!(space.msync(va(p), 4 * PS, MsyncFlags::SYNC), Ok(()));
        assert!(pager.take_writes().is_empty(), "clean pages are not written again");

        // After msync the next write faults again to mark the page dirty.
        let faults = faults_during(env, || write(&mut space, p + PS + 2, 0x12).unwrap());
        assert_eq!(faults, 1);
        assert!(pager.take_writes().is_empty());
        space.munmap(va(p + PS), PS).unwrap();
        assert_eq!(pager.take_writes(), [1], "munmap writes back");
        assert_eq!(pager.stored(PS + 2, 1), [0x12]);

        write(&mut space, p + 2 * PS, 0x22).unwrap();
        assert_eq!(space.msync(va(p + 2 * PS), PS, MsyncFlags::ASYNC), Ok(()));
        assert_eq!(pager.take_writes(), [2]);
        write(&mut space, p + 3 * PS, 0x44).unwrap();
        assert_eq!(space.msync(va(p), PS, MsyncFlags::INVALIDATE), Ok(()));
        assert!(pager.take_writes().is_empty(), "MS_INVALIDATE alone writes nothing");
        drop(space);
        assert_eq!(pager.take_writes(), [3], "teardown writes back");
        assert_eq!(pager.stored(3 * PS, 1), [0x44]);
        drop(file);
        assert!(pager.take_writes().is_empty());
    });
}

#[test]
fn a_page_stays_dirty_while_another_space_maps_it_writable() {
    with_env(128, |env| {
        let (pager, file) = open(env, &pattern(2 * PS as usize, 3));
        let mut parent = AddressSpace::new(env).unwrap();
        let p = map_file(&mut parent, &file, 2, RW, MapFlags::SHARED, 0);
        write(&mut parent, p, 1).unwrap();
        let mut child = parent.fork().unwrap();
        write(&mut child, p, 2).unwrap();
        assert_eq!(read(&mut parent, p), Ok(2), "shared across fork");
        parent.msync(va(p), 2 * PS, MsyncFlags::SYNC).unwrap();
        assert_eq!(pager.take_writes(), [0]);
        // The child still maps it writable and writes without faulting.
        let faults = faults_during(env, || write(&mut child, p + 1, 3).unwrap());
        assert_eq!(faults, 0);
        parent.msync(va(p), 2 * PS, MsyncFlags::SYNC).unwrap();
        assert_eq!(pager.take_writes(), [0], "still dirty: the child may have written");
        assert_eq!(pager.stored(1, 1), [3]);
        drop(child);
        assert_eq!(pager.take_writes(), [0], "the child's teardown writes back");
        parent.msync(va(p), 2 * PS, MsyncFlags::SYNC).unwrap();
        assert!(pager.take_writes().is_empty(), "clean now");
        // A page first written in a child reaches the pager on the child's exit.
        let mut child = parent.fork().unwrap();
        write(&mut child, p + PS, 9).unwrap();
        drop(child);
        assert_eq!(pager.take_writes(), [1]);
        assert_eq!(read(&mut parent, p + PS), Ok(9));
    });
}

#[test]
fn pager_errors_are_sigbus_and_eio() {
    with_env(64, |env| {
        let (pager, file) = open(env, &pattern(2 * PS as usize, 4));
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_file(&mut space, &file, 2, RW, MapFlags::SHARED, 0);
        write(&mut space, p, 1).unwrap();
        pager.set_failing(true);
        assert_eq!(read(&mut space, p + PS), Err(FaultError::Bus));
        assert_eq!(space.msync(va(p), PS, MsyncFlags::SYNC), Err(Errno::EIO));
        assert_eq!(file.dirty_pages(), 1);
        pager.set_failing(false);
        assert_eq!(space.msync(va(p), PS, MsyncFlags::SYNC), Ok(()));
        assert_eq!(file.dirty_pages(), 0);
    });
}

#[test]
fn text_pages_are_shared_with_the_page_cache_and_executable() {
    with_env(64, |env| {
        let (_, file) = open(env, &pattern(2 * PS as usize, 5));
        let mut space = AddressSpace::new(env).unwrap();
        let text = map_file(&mut space, &file, 2, Prot::READ | Prot::EXEC, MapFlags::PRIVATE, 0);
        exec(&mut space, text + 8).unwrap();
        let leaf = space.table.query(va(text)).unwrap();
        assert_eq!(env.frames().refcount(leaf.pa), Ok(2), "one for the cache, one for the mapping");
        let mut child = space.fork().unwrap();
        exec(&mut child, text + 8).unwrap();
        assert_eq!(env.frames().refcount(leaf.pa), Ok(3));
        assert_eq!(write(&mut child, text, 1), Err(FaultError::Segv));
        drop(child);
        drop(space);
        assert_eq!(env.frames().refcount(leaf.pa), Ok(1));
        assert_eq!(file.cached_pages(), 1);
    });
}

#[test]
fn a_file_opened_read_only_never_becomes_writable_through_a_shared_mapping() {
    with_env(64, |env| {
        let data = pattern(2 * PS as usize, 5);
        let (pager, file) = open(env, &data);
        let mut space = AddressSpace::new(env).unwrap();
        let read_only = || Some(MappedFile::read_only(Arc::clone(&file)));
        assert_eq!(space.mmap(va(0), PS, RW, MapFlags::SHARED, read_only(), 0), Err(Errno::EACCES));
        assert_eq!(space.mmap(va(0), PS, RW, MapFlags::SHARED_VALIDATE, read_only(), 0), Err(Errno::EACCES));
        let shared = space.mmap(va(0), 2 * PS, Prot::READ, MapFlags::SHARED, read_only(), 0).unwrap().as_u64();
        let before = space.vareas().count();
        assert_eq!(space.mprotect(va(shared), 2 * PS, RW), Err(Errno::EACCES));
        assert_eq!(space.mprotect(va(shared + PS), PS, Prot::WRITE), Err(Errno::EACCES), "part of it, too");
        assert_eq!(space.vareas().count(), before, "a refused mprotect splits nothing");
        assert_eq!(write(&mut space, shared, 0xee), Err(FaultError::Segv));
        assert_eq!(file_byte(&file, 0), data[0], "the page cache keeps the file's data");
        // Executable and read-only stay allowed, as Linux.
        space.mprotect(va(shared), 2 * PS, Prot::READ | Prot::EXEC).unwrap();
        space.mprotect(va(shared), 2 * PS, Prot::NONE).unwrap();
        space.mprotect(va(shared), 2 * PS, Prot::READ).unwrap();
        assert_eq!(read(&mut space, shared + 1), Ok(data[1]));

        // A private mapping of the same descriptor copies on write: it may.
        let private = space.mmap(va(0), PS, Prot::READ, MapFlags::PRIVATE, read_only(), 0).unwrap().as_u64();
        space.mprotect(va(private), PS, RW).unwrap();
        write(&mut space, private, 0xdd).unwrap();
        assert_eq!(file_byte(&file, 0), data[0]);

        // Varea by varea up to the first hole, as Linux: EACCES at a
        // read-only shared varea before the hole, ENOMEM at a hole first.
        let hole =
            space.mmap(va(0), 3 * PS, Prot::READ, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).unwrap().as_u64();
        space.munmap(va(hole + PS), PS).unwrap();
        let at = va(hole + 2 * PS);
        space.munmap(at, PS).unwrap();
        space.mmap(at, PS, Prot::READ, MapFlags::SHARED | MapFlags::FIXED, read_only(), 0).unwrap();
        assert_eq!(space.mprotect(va(hole), 3 * PS, RW), Err(Errno::ENOMEM), "the hole comes first");
        assert_eq!(space.mprotect(at, 2 * PS, RW), Err(Errno::EACCES), "the varea comes before the hole");
        assert_eq!(read(&mut space, hole), Ok(0));
        assert_eq!(write(&mut space, hole, 1), Err(FaultError::Segv), "the refused call changed nothing");
        drop(space);
        drop(file);
        assert!(pager.take_writes().is_empty(), "nothing to write back");
    });
}

#[test]
fn a_file_not_opened_for_reading_cannot_be_mapped() {
    with_env(64, |env| {
        let (_pager, file) = open(env, &pattern(PS as usize, 1));
        let mut space = AddressSpace::new(env).unwrap();
        let write_only = MappedFile { object: Arc::clone(&file), readable: false, writable: true };
        assert_eq!(space.mmap(va(0), PS, Prot::READ, MapFlags::PRIVATE, Some(write_only), 0), Err(Errno::EACCES));
        assert_eq!(space.vareas().count(), 0);
    });
}

#[test]
fn shared_file_pages_mapped_writable_and_executable_keep_dirty_tracking() {
    with_env(64, |env| {
        let data = pattern(PS as usize, 6);
        let (pager, file) = open(env, &data);
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_file(&mut space, &file, 1, RW | Prot::EXEC, MapFlags::SHARED, 0);
        // Code storing into its own page: flips until the bound, then the
        // page is writable and executable.
        for i in 0..=crate::aspace::WX_FLIP_BOUND as u8 {
            exec(&mut space, p).unwrap();
            write(&mut space, p + 64, i).unwrap();
        }
        assert_eq!(space.wx_vareas(), 1);
        assert_eq!(faults_during(env, || exec(&mut space, p).unwrap()), 0);
        pager.take();
        space.msync(va(p), PS, MsyncFlags::SYNC).unwrap();
        assert_eq!(pager.take_writes(), [0], "the page was dirty");
        assert_eq!(pager.stored(64, 1), [crate::aspace::WX_FLIP_BOUND as u8]);
        // Clean again: the next write faults to mark it dirty, and maps
        // the page writable and executable again.
        assert_eq!(faults_during(env, || write(&mut space, p + 65, 0x77).unwrap()), 1);
        assert_eq!(faults_during(env, || exec(&mut space, p).unwrap()), 0);
        space.msync(va(p), PS, MsyncFlags::SYNC).unwrap();
        assert_eq!(pager.take_writes(), [0]);
        assert_eq!(pager.stored(65, 1), [0x77]);
    });
}

#[test]
fn a_shrunk_file_loses_its_mapped_pages_past_the_end() {
    with_env(128, |env| {
        let data = pattern(3 * PS as usize, 4);
        let (_pager, file) = open(env, &data);
        let mut space = AddressSpace::new(env).unwrap();
        let shared = map_file(&mut space, &file, 3, RW, MapFlags::SHARED, 0);
        let private = map_file(&mut space, &file, 2, RW, MapFlags::PRIVATE, PS);
        for page in 0..3 {
            write(&mut space, shared + page * PS, 0xaa).unwrap();
        }
        write(&mut space, private + PS, 0xbb).unwrap();
        file.truncate(PS + 10).unwrap();
        space.file_shrunk(file.id(), PS + 10);
        assert_eq!(read(&mut space, shared), Ok(0xaa), "a page before the end stays");
        assert_eq!(read(&mut space, shared + PS + 9), Ok(data[PS as usize + 9]), "the last page, kept to its end");
        assert_eq!(read(&mut space, shared + 2 * PS), Err(FaultError::Bus), "a shared page past the end");
        assert_eq!(read(&mut space, private + PS), Err(FaultError::Bus), "a private copy past the end");
        assert_eq!(read(&mut space, private), Ok(0xaa), "the private mapping's page inside the file");
    });
}

#[test]
fn resident_pages_are_counted_by_kind() {
    use crate::aspace::Rss;
    with_env(128, |env| {
        let (_pager, file) = open(env, &pattern(4 * PS as usize, 2));
        let mut space = AddressSpace::new(env).unwrap();
        let anon = space.mmap(va(0), 4 * PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).unwrap();
        let shared = space.mmap(va(0), 2 * PS, RW, MapFlags::SHARED | MapFlags::ANONYMOUS, None, 0).unwrap();
        let mapped = map_file(&mut space, &file, 4, Prot::READ, MapFlags::PRIVATE, 0);
        assert_eq!(space.rss(), Rss::default());
        let total = space.total_bytes();
        assert_eq!(total, 10 * PS);
        for page in 0..3 {
            write(&mut space, anon.as_u64() + page * PS, 1).unwrap();
        }
        write(&mut space, shared.as_u64(), 1).unwrap();
        read(&mut space, mapped).unwrap();
        read(&mut space, mapped + 3 * PS).unwrap();
        assert_eq!(space.rss(), Rss { anon: 3, file: 2, shmem: 1 });
        assert_eq!(space.rss().total(), space.resident_pages());
        assert_eq!((space.resident_count(), space.peak_resident_pages()), (6, 6));
        space.munmap(anon, 2 * PS).unwrap();
        assert_eq!(space.rss(), Rss { anon: 1, file: 2, shmem: 1 });
        assert_eq!((space.resident_count(), space.peak_resident_pages()), (4, 6), "the peak stays");
        assert_eq!(space.total_bytes(), 8 * PS);
        assert_eq!(space.peak_bytes(), 10 * PS, "the peak stays");
        let child = space.fork().unwrap();
        assert_eq!((child.total_bytes(), child.peak_bytes()), (8 * PS, 8 * PS));
        drop(child);
        // Growing in place (mremap) counts towards the size and the peak.
        let rest = anon + 2 * PS;
        let grown = space.mremap(rest, 2 * PS, 6 * PS, aspen_abi::mman::MremapFlags::empty(), va(0));
        assert_eq!(grown, Ok(rest), "the top mapping grows in place");
        assert_eq!((space.total_bytes(), space.peak_bytes()), (12 * PS, 12 * PS));
    });
}

#[test]
fn a_read_fault_maps_the_cached_neighbours_of_its_group_read_only() {
    with_env(256, |env| {
        let data = pattern(40 * PS as usize, 5);
        let (pager, file) = open(env, &data);
        // Pages 0..20 and 30 in the page cache; the rest not.
        let mut page = std::vec![0; PS as usize];
        for index in (0..20).chain([30]) {
            file.read(index * PS, &mut page).unwrap();
        }
        pager.take();
        let mut space = AddressSpace::new(env).unwrap();
        // Aligned to the group (16 pages) in both the address and the file.
        let p = map_file(&mut space, &file, 40 + 16, RW, MapFlags::PRIVATE, 0).next_multiple_of(16 * PS);
        space.munmap(va(p), 40 * PS).unwrap();
        let p = space
            .mmap(
                va(p),
                40 * PS,
                RW,
                MapFlags::PRIVATE | MapFlags::FIXED,
                Some(MappedFile::read_write(Arc::clone(&file))),
                0,
            )
            .unwrap()
            .as_u64();
        let at = |index: u64| p + index * PS + index;
        assert_eq!(faults_during(env, || assert_eq!(read(&mut space, at(5)), Ok(data[(5 * PS + 5) as usize]))), 1);
        let faults = faults_during(env, || {
            for index in 0..16 {
                assert_eq!(read(&mut space, at(index)), Ok(data[(index * PS + index) as usize]), "page {index}");
            }
        });
        assert_eq!(faults, 0, "the group's cached pages came with the first fault");
        // The next group: only its cached pages (16..20 and 30) come along.
        let faults = faults_during(env, || {
            for index in 16..20 {
                assert_eq!(read(&mut space, at(index)), Ok(data[(index * PS + index) as usize]));
            }
        });
        assert_eq!(faults, 1);
        assert_eq!(faults_during(env, || read(&mut space, at(21)).map(drop).unwrap()), 1);
        assert_eq!(faults_during(env, || read(&mut space, at(22)).map(drop).unwrap()), 1, "page 22 was not cached");
        assert_eq!(pager.take(), [PagerEvent::Read(21), PagerEvent::Read(22)], "fault-around reads nothing in");
        // Pages mapped around a fault are read-only cache pages: a write copies.
        write(&mut space, at(3), 0xee).unwrap();
        assert_eq!(file_byte(&file, 3 * PS + 3), data[(3 * PS + 3) as usize]);
        assert_eq!(read(&mut space, at(3)), Ok(0xee));
        assert_eq!(space.rss().file, 16 + 5 + 2);
        assert_eq!(faults_during(env, || read(&mut space, at(30)).map(drop).unwrap()), 0);
        drop(space);
        drop(file);
        assert!(pager.take_writes().is_empty());
    });
}

#[test]
fn pages_mapped_around_a_read_fault_keep_shared_dirty_tracking() {
    with_env(128, |env| {
        let data = pattern(16 * PS as usize, 6);
        let (pager, file) = open(env, &data);
        let mut page = std::vec![0; PS as usize];
        for index in 0..16 {
            file.read(index * PS, &mut page).unwrap();
        }
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_file(&mut space, &file, 16, RW, MapFlags::SHARED, 0);
        // Reads map the whole group (where the mapping is aligned), then
        // a write to a neighbour makes it dirty: msync writes exactly it.
        read(&mut space, p).unwrap();
        for index in 1..16 {
            read(&mut space, p + index * PS).unwrap();
        }
        write(&mut space, p + 7 * PS, 0x5a).unwrap();
        assert_eq!(file_byte(&file, 7 * PS), 0x5a);
        pager.take();
        space.msync(va(p), 16 * PS, MsyncFlags::SYNC).unwrap();
        assert_eq!(pager.take_writes(), [7]);
    });
}
