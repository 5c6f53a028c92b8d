//! Host tests of the file tree over the simulated machine.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use aspen_mm::asid::{AsidAllocator, AsidBits};
use aspen_mm::aspace::{Env, MmEnv};
use aspen_mm::errno::Errno;
use aspen_mm::frame::BuddyAllocator;
use aspen_mm::testbed::{Arena, RecordingTlb};
use aspen_mm::PhysAddr;

use crate::cpio::tests::{archive, push};
use crate::cpio::{S_IFCHR, S_IFDIR, S_IFREG};
use aspen_abi::uaccess::CopyFault;

use crate::{NodeKind, OpenFlags, ReadIntoError, Vfs, Whence};

mod symlinks;

type TestEnv = Env<'static, Arena, RecordingTlb>;

/// A machine that lives for the rest of the test process.
fn env() -> &'static TestEnv {
    let arena: &'static Arena = Box::leak(Box::new(Arena::new(PhysAddr::new(0x4000_0000), 8 << 20)));
    let frames = Box::leak(Box::new(BuddyAllocator::new_owned(&[arena.range()]).unwrap()));
    let tlb = Box::leak(Box::new(RecordingTlb::new()));
    let asids = Box::leak(Box::new(AsidAllocator::new(AsidBits::Sixteen)));
    Box::leak(Box::new(Env::new(arena, frames, tlb, asids)))
}

fn initramfs() -> &'static [u8] {
    let mut a = archive(&[
        (".", S_IFDIR | 0o755, b""),
        ("bin", S_IFDIR | 0o755, b""),
        ("bin/hello", S_IFREG | 0o755, b"hello, world\n"),
        ("etc/motd", S_IFREG | 0o644, b"welcome"),
        ("tmp", S_IFDIR | 0o1777, b""),
    ]);
    let trailer_len = 124;
    a.truncate(a.len() - trailer_len);
    push(&mut a, "dev/console", S_IFCHR | 0o600, b"", (5, 1));
    push(&mut a, "TRAILER!!!", 0, b"", (0, 0));
    Box::leak(a.into_boxed_slice())
}

fn tree() -> Vfs<TestEnv> {
    tree_on(env())
}

/// The test tree on the machine `env`.
fn tree_on(env: &'static TestEnv) -> Vfs<TestEnv> {
    let vfs = Vfs::new(env);
    // "." is not a member of its own tree.
    assert_eq!(vfs.load_initramfs(initramfs()).unwrap(), 5);
    vfs.mount_tmpfs("/tmp").unwrap();
    vfs
}

const RDONLY: OpenFlags = OpenFlags::RDONLY;
const RDWR: OpenFlags = OpenFlags::RDWR;

fn read_all(file: &crate::OpenFile<TestEnv>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 5];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn initramfs_files_read_back_and_are_read_only() {
    let vfs = tree();
    let f = vfs.open(b"/bin/hello", RDONLY, 0, (0, 0)).unwrap();
    assert_eq!(read_all(&f), b"hello, world\n");
    assert_eq!(f.lseek(-6, Whence::End).unwrap(), 7);
    assert_eq!(read_all(&f), b"world\n");
    assert_eq!(vfs.open(b"/bin/hello", RDWR, 0, (0, 0)).err(), Some(Errno::EROFS));
    assert_eq!(vfs.open(b"/bin/new", OpenFlags::CREAT | OpenFlags::RDWR, 0o644, (0, 0)).err(), Some(Errno::EROFS));
    // A directory implied by a member's path exists.
    assert!(vfs.lookup(b"/etc").unwrap().is_dir());
}

#[test]
fn drop_clean_caches_drops_unused_clean_pages_only() {
    let env = env();
    let vfs = tree_on(env);
    let stats = || env.stats().page_cache_pages();
    let before = stats();
    let f = vfs.open(b"/bin/hello", RDONLY, 0, (0, 0)).unwrap();
    assert_eq!(read_all(&f), b"hello, world\n");
    let t = vfs.open(b"/tmp/t", OpenFlags::CREAT | RDWR, 0o644, (0, 0)).unwrap();
    assert_eq!(t.write(b"dirty", false), Ok(5));
    assert_eq!(stats(), before + 2);
    assert_eq!(vfs.drop_clean_caches(), 1, "the tmpfs page is dirty");
    assert_eq!(stats(), before + 1);
    assert_eq!(f.lseek(0, Whence::Set).unwrap(), 0);
    assert_eq!(read_all(&f), b"hello, world\n", "paged in again");
    assert_eq!(vfs.drop_clean_caches(), 1);
    assert_eq!(stats(), before + 1);
}

#[test]
fn lookups_follow_linux_rules() {
    let vfs = tree();
    assert!(vfs.lookup(b"//bin/./hello").is_ok());
    assert!(vfs.lookup(b"/bin/../etc/motd").is_ok());
    assert!(vfs.lookup(b"/../../bin/hello").is_ok());
    assert_eq!(vfs.lookup(b"/bin/nothing").err(), Some(Errno::ENOENT));
    assert_eq!(vfs.lookup(b"/bin/hello/x").err(), Some(Errno::ENOTDIR));
    assert_eq!(vfs.lookup(b"/bin/hello/").err(), Some(Errno::ENOTDIR));
    assert_eq!(vfs.open(b"/bin/hello/", RDONLY, 0, (0, 0)).err(), Some(Errno::ENOTDIR));
    assert!(vfs.lookup(b"/bin/").unwrap().is_dir());
    assert_eq!(vfs.lookup(b"").err(), Some(Errno::ENOENT));
    let long = alloc::vec![b'a'; 300];
    assert_eq!(vfs.lookup(&long).err(), Some(Errno::ENAMETOOLONG));
    let huge = alloc::vec![b'/'; 5000];
    assert_eq!(vfs.lookup(&huge).err(), Some(Errno::ENAMETOOLONG));
    assert_eq!(vfs.open(b"/bin/hello", OpenFlags::DIRECTORY, 0, (0, 0)).err(), Some(Errno::ENOTDIR));
    assert_eq!(vfs.open(b"/bin", RDWR, 0, (0, 0)).err(), Some(Errno::EISDIR));
    match vfs.lookup(b"/dev/console").unwrap().kind {
        NodeKind::CharDevice { major, minor } => assert_eq!((major, minor), (5, 1)),
        _ => panic!("/dev/console is not a character device"),
    }
}

#[test]
fn tmpfs_files_are_created_written_appended_and_truncated() {
    let vfs = tree();
    let create = OpenFlags::CREAT | OpenFlags::RDWR;
    let f = vfs.open(b"/tmp/log", create, 0o644, (0, 0)).unwrap();
    assert_eq!(f.write(b"one ", false).unwrap(), 4);
    let g = vfs.open(b"/tmp/log", OpenFlags::RDWR | OpenFlags::APPEND, 0, (0, 0)).unwrap();
    assert_eq!(g.write(b"two", true).unwrap(), 3);
    let r = vfs.open(b"/tmp/log", RDONLY, 0, (0, 0)).unwrap();
    assert_eq!(read_all(&r), b"one two");
    assert_eq!(r.node().stat().size, 7);
    assert_eq!(vfs.open(b"/tmp/log", create | OpenFlags::EXCL, 0, (0, 0)).err(), Some(Errno::EEXIST));
    let t = vfs.open(b"/tmp/log", OpenFlags::RDWR | OpenFlags::TRUNC, 0, (0, 0)).unwrap();
    assert_eq!(t.node().stat().size, 0);
    assert_eq!(r.write(b"x", false).err(), Some(Errno::EBADF));
    // Sparse write: the hole reads as zeros.
    t.lseek(8192, Whence::Set).unwrap();
    t.write(b"end", false).unwrap();
    let mut buf = [1u8; 16];
    let s = vfs.open(b"/tmp/log", RDONLY, 0, (0, 0)).unwrap();
    s.lseek(4096, Whence::Set).unwrap();
    assert_eq!(s.read(&mut buf).unwrap(), 16);
    assert_eq!(buf, [0; 16]);
    assert_eq!(s.lseek(-1, Whence::Set).err(), Some(Errno::EINVAL));
}

#[test]
fn a_read_moves_the_position_by_what_the_reader_took() {
    let vfs = tree();
    let f = vfs.open(b"/bin/hello", RDONLY, 0, (0, 0)).unwrap();
    let nothing_taken = f.read_into(5, |_| Err(CopyFault::at_start(Errno::EFAULT)));
    assert_eq!(nothing_taken, Err(ReadIntoError::Delivery(CopyFault::at_start(Errno::EFAULT))));
    assert_eq!(f.lseek(0, Whence::Current).unwrap(), 0);
    let mut got = Vec::new();
    let part = f.read_into(5, |data| {
        got.extend_from_slice(&data[..2]);
        Err(CopyFault { copied: 2, errno: Errno::EFAULT })
    });
    assert_eq!(part, Err(ReadIntoError::Delivery(CopyFault { copied: 2, errno: Errno::EFAULT })));
    assert_eq!(got, b"he");
    assert_eq!(f.lseek(0, Whence::Current).unwrap(), 2);
    assert_eq!(read_all(&f), b"llo, world\n");
    // At the end nothing is read and nothing is asked of the reader.
    assert_eq!(
        f.read_into(5, |data| if data.is_empty() { Ok(()) } else { Err(CopyFault::at_start(Errno::EIO)) }),
        Ok(0)
    );
    let dir = vfs.open(b"/bin", RDONLY, 0, (0, 0)).unwrap();
    assert_eq!(dir.read_into(5, |_| Ok(())), Err(ReadIntoError::File(Errno::EISDIR)));
}

#[test]
fn a_file_and_its_page_cache_are_one() {
    let vfs = tree();
    let f = vfs.open(b"/tmp/shared", OpenFlags::CREAT | OpenFlags::RDWR, 0o600, (0, 0)).unwrap();
    f.write(b"abc", false).unwrap();
    let g = vfs.open(b"/tmp/shared", RDONLY, 0, (0, 0)).unwrap();
    assert!(Arc::ptr_eq(f.object().unwrap(), g.object().unwrap()));
}

#[test]
fn directories_list_in_order_and_resume() {
    let vfs = tree();
    let d = vfs.open(b"/", OpenFlags::DIRECTORY, 0, (0, 0)).unwrap();
    let first = d.read_dir(3).unwrap();
    let names: Vec<_> = first.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [".", "..", "bin"]);
    d.unread_dir(1);
    let rest: Vec<_> = d.read_dir(10).unwrap().into_iter().map(|e| (e.name, e.kind)).collect();
    assert_eq!(rest, [("bin".into(), 4), ("dev".into(), 4), ("etc".into(), 4), ("tmp".into(), 4)]);
    assert!(d.read_dir(10).unwrap().is_empty());
    let f = vfs.open(b"/bin/hello", RDONLY, 0, (0, 0)).unwrap();
    assert_eq!(f.read_dir(1).err(), Some(Errno::ENOTDIR));
}

#[test]
fn a_damaged_initramfs_is_an_error() {
    let vfs = Vfs::new(env());
    let mut a = archive(&[("x", S_IFREG, b"data")]);
    a[3] = b'9';
    assert!(vfs.load_initramfs(Box::leak(a.into_boxed_slice())).is_err());
}

mod pipe {
    use super::*;
    use aspen_mm::aspace::MmEnv;

    use crate::{PipeBuffer, PIPE_CAPACITY};

    fn take(buffer: &mut PipeBuffer<TestEnv>, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let n = buffer
            .read(max, |piece| {
                out.extend_from_slice(piece);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, out.len());
        out
    }

    fn put(buffer: &mut PipeBuffer<TestEnv>, data: &[u8]) -> usize {
        let mut at = 0;
        buffer
            .write(data.len(), |piece| {
                piece.copy_from_slice(&data[at..at + piece.len()]);
                at += piece.len();
                Ok(())
            })
            .unwrap()
    }

    #[test]
    fn bytes_come_out_in_order_across_the_wrap() {
        let env = env();
        let free = env.frames().free_frame_count();
        let mut buffer = PipeBuffer::new(env);
        assert_eq!(buffer.frames_held(), 0);
        let data: Vec<u8> = (0..PIPE_CAPACITY + 5000).map(|i| (i % 251) as u8).collect();
        assert_eq!(put(&mut buffer, &data), PIPE_CAPACITY);
        assert_eq!((buffer.room(), buffer.frames_held()), (0, 16));
        assert_eq!(put(&mut buffer, b"x"), 0);
        assert_eq!(take(&mut buffer, 6000), &data[..6000]);
        // The first page is read out and given back; the second still holds bytes.
        assert_eq!(buffer.frames_held(), 15);
        assert_eq!(put(&mut buffer, &data[PIPE_CAPACITY..]), 5000);
        assert_eq!(buffer.frames_held(), 16);
        let rest = take(&mut buffer, usize::MAX);
        assert_eq!(rest, &data[6000..]);
        assert!(buffer.is_empty());
        assert_eq!(buffer.frames_held(), 0);
        assert_eq!(env.frames().free_frame_count(), free);
        put(&mut buffer, b"left behind");
        drop(buffer);
        assert_eq!(env.frames().free_frame_count(), free, "a dropped buffer gives its frames back");
    }

    #[test]
    fn a_fault_moves_exactly_what_was_copied() {
        let env = env();
        let free = env.frames().free_frame_count();
        let mut buffer = PipeBuffer::new(env);
        let data: Vec<u8> = (0..10_000).map(|i| i as u8).collect();
        // The writer's source faults after 5000 bytes (inside the second page).
        let mut at = 0;
        let fault = buffer
            .write(data.len(), |piece| {
                let n = piece.len().min(5000 - at);
                piece[..n].copy_from_slice(&data[at..at + n]);
                at += n;
                if n < piece.len() {
                    Err(CopyFault { copied: n, errno: Errno::EFAULT })
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert_eq!(fault, CopyFault { copied: 5000, errno: Errno::EFAULT });
        assert_eq!((buffer.len(), buffer.frames_held()), (5000, 2));
        // The reader's destination faults after 100 bytes of the second piece.
        let mut out = Vec::new();
        let fault = buffer
            .read(usize::MAX, |piece| {
                if out.len() >= 4096 {
                    out.extend_from_slice(&piece[..100]);
                    return Err(CopyFault { copied: 100, errno: Errno::EFAULT });
                }
                out.extend_from_slice(piece);
                Ok(())
            })
            .unwrap_err();
        assert_eq!(fault.copied, 4196);
        assert_eq!(out, &data[..4196]);
        assert_eq!(buffer.len(), 5000 - 4196);
        assert_eq!(take(&mut buffer, usize::MAX), &data[4196..5000]);
        // A fill that takes nothing leaves no frame behind.
        let nothing = buffer.write(10, |_| Err(CopyFault::at_start(Errno::EFAULT))).unwrap_err();
        assert_eq!(nothing.copied, 0);
        assert_eq!(buffer.frames_held(), 0);
        assert_eq!(env.frames().free_frame_count(), free);
    }

    #[test]
    fn no_frame_is_enomem_after_what_fit() {
        let arena: &'static Arena = Box::leak(Box::new(Arena::new(PhysAddr::new(0x4000_0000), 2 * 4096)));
        let frames = Box::leak(Box::new(BuddyAllocator::new_owned(&[arena.range()]).unwrap()));
        let tlb = Box::leak(Box::new(RecordingTlb::new()));
        let asids = Box::leak(Box::new(AsidAllocator::new(AsidBits::Sixteen)));
        let small: &'static TestEnv = Box::leak(Box::new(Env::new(arena, frames, tlb, asids)));
        let mut buffer = PipeBuffer::new(small);
        let fault = buffer.write(3 * 4096, |piece| {
            piece.fill(7);
            Ok(())
        });
        assert_eq!(fault, Err(CopyFault { copied: 2 * 4096, errno: Errno::ENOMEM }));
        assert_eq!(buffer.len(), 2 * 4096);
    }
}

#[test]
fn directories_are_made_removed_and_renamed_as_linux() {
    let vfs = tree();
    let create = OpenFlags::CREAT | RDWR;
    assert_eq!(vfs.mkdir(b"/tmp/d", 0o755, (0, 0)), Ok(()));
    assert_eq!(vfs.mkdir(b"/tmp/d", 0o755, (0, 0)), Err(Errno::EEXIST));
    assert_eq!(vfs.mkdir(b"/bin", 0o755, (0, 0)), Err(Errno::EEXIST));
    assert_eq!(vfs.mkdir(b"/bin/new", 0o755, (0, 0)), Err(Errno::EROFS));
    assert_eq!(vfs.mkdir(b"/tmp/no/d", 0o755, (0, 0)), Err(Errno::ENOENT));
    assert_eq!(vfs.mkdir(b"/", 0o755, (0, 0)), Err(Errno::EEXIST));
    vfs.open(b"/tmp/d/f", create, 0o644, (7, 8)).unwrap();
    assert_eq!(vfs.lookup(b"/tmp/d/f").unwrap().owner(), (7, 8));
    assert_eq!(vfs.mkdir(b"/tmp/d/f/x", 0o755, (0, 0)), Err(Errno::ENOTDIR));
    assert_eq!(vfs.unlink(b"/tmp/d", true), Err(Errno::ENOTEMPTY));
    assert_eq!(vfs.unlink(b"/tmp/d", false), Err(Errno::EISDIR));
    assert_eq!(vfs.unlink(b"/tmp/d/f", true), Err(Errno::ENOTDIR));
    assert_eq!(vfs.unlink(b"/tmp", true), Err(Errno::EROFS));
    assert_eq!(vfs.unlink(b"/tmp/d/.", true), Err(Errno::EINVAL));
    assert_eq!(vfs.unlink(b"/bin/hello", false), Err(Errno::EROFS));
    assert_eq!(vfs.rename(b"/tmp/d/f", b"/tmp/g", false), Ok(()));
    assert_eq!(vfs.lookup(b"/tmp/d/f").err(), Some(Errno::ENOENT));
    vfs.open(b"/tmp/h", create, 0o644, (0, 0)).unwrap();
    assert_eq!(vfs.rename(b"/tmp/g", b"/tmp/h", true), Err(Errno::EEXIST));
    assert_eq!(vfs.rename(b"/tmp/g", b"/tmp/d", false), Err(Errno::EISDIR));
    assert_eq!(vfs.rename(b"/tmp/d", b"/tmp/h", false), Err(Errno::ENOTDIR));
    assert_eq!(vfs.rename(b"/tmp/d", b"/tmp/d/e", false), Err(Errno::EINVAL));
    assert_eq!(vfs.rename(b"/tmp/g", b"/bin/g", false), Err(Errno::EROFS));
    assert_eq!(vfs.rename(b"/tmp/g", b"/tmp/h", false), Ok(()));
    assert_eq!(vfs.unlink(b"/tmp/h", false), Ok(()));
    assert_eq!(vfs.unlink(b"/tmp/d", true), Ok(()));
    assert_eq!(vfs.unlink(b"/tmp/d", true), Err(Errno::ENOENT));
}

#[test]
fn modes_owners_and_sizes_change_on_tmpfs_only() {
    let vfs = tree();
    let f = vfs.open(b"/tmp/f", OpenFlags::CREAT | RDWR, 0o4755, (0, 0)).unwrap();
    let node = f.node();
    node.chown(Some(5), None).unwrap();
    assert_eq!(node.stat().mode, S_IFREG | 0o755);
    assert_eq!(node.owner(), (5, 0));
    node.chmod(0o600).unwrap();
    assert_eq!(node.stat().mode, S_IFREG | 0o600);
    node.truncate(10).unwrap();
    assert_eq!(node.stat().size, 10);
    assert_eq!(vfs.lookup(b"/bin/hello").unwrap().chmod(0o777), Err(Errno::EROFS));
    assert_eq!(vfs.lookup(b"/tmp").unwrap().truncate(0), Err(Errno::EISDIR));
    assert_eq!(vfs.lookup(b"/bin/hello").unwrap().truncate(0), Err(Errno::EROFS));
}

#[test]
fn mounts_cover_a_directory_until_unmounted() {
    use crate::MountKind;
    let vfs = tree();
    let create = OpenFlags::CREAT | RDWR;
    vfs.open(b"/tmp/before", create, 0o644, (0, 0)).unwrap();
    vfs.mkdir(b"/tmp/shm", 0o755, (0, 0)).unwrap();
    assert_eq!(vfs.mount(b"none", b"/tmp/before", MountKind::Tmpfs, None), Err(Errno::ENOTDIR));
    assert_eq!(vfs.mount(b"none", b"/tmp/nothing", MountKind::Tmpfs, None), Err(Errno::ENOENT));
    assert_eq!(vfs.mount(b"none", b"/", MountKind::Tmpfs, None), Err(Errno::EBUSY));
    vfs.mount(b"none", b"/tmp/shm", MountKind::Tmpfs, None).unwrap();
    assert_eq!(vfs.lookup(b"/tmp/shm").unwrap().stat().mode, S_IFDIR | 0o1777);
    vfs.open(b"/tmp/shm/f", create, 0o644, (0, 0)).unwrap();
    assert_eq!(vfs.unlink(b"/tmp/shm", true), Err(Errno::EBUSY));
    assert_eq!(vfs.rename(b"/tmp/shm/f", b"/tmp/f", false), Err(Errno::EXDEV));
    vfs.mount(b"none", b"/dev", MountKind::Devtmpfs, None).unwrap();
    match vfs.lookup(b"/dev/zero").unwrap().kind {
        NodeKind::CharDevice { major: 1, minor: 5 } => {}
        _ => panic!("/dev/zero is not (1, 5)"),
    }
    vfs.umount(b"/tmp/shm").unwrap();
    assert_eq!(vfs.lookup(b"/tmp/shm/f").err(), Some(Errno::ENOENT));
    assert_eq!(vfs.umount(b"/tmp/shm"), Err(Errno::EINVAL));
    vfs.umount(b"/dev").unwrap();
    assert_eq!(vfs.lookup(b"/dev/zero").err(), Some(Errno::ENOENT));
    assert!(vfs.lookup(b"/dev/console").is_ok());
    vfs.umount(b"/tmp").unwrap();
    assert_eq!(vfs.lookup(b"/tmp/before").err(), Some(Errno::ENOENT), "the initramfs's /tmp is back");
}

#[test]
fn a_size_limited_tmpfs_refuses_what_passes_its_limit() {
    use crate::MountKind;
    let vfs = tree();
    vfs.mkdir(b"/tmp/small", 0o755, (0, 0)).unwrap();
    vfs.mount(b"none", b"/tmp/small", MountKind::Tmpfs, Some(3 * 4096)).unwrap();
    let quota = vfs.lookup(b"/tmp/small").unwrap().quota().cloned().unwrap();
    let create = OpenFlags::CREAT | RDWR;
    let f = vfs.open(b"/tmp/small/f", create, 0o644, (0, 0)).unwrap();
    assert_eq!(f.write(&[1; 5000], false), Ok(5000));
    assert_eq!(quota.usage(), (3 * 4096, 2 * 4096));
    vfs.mkdir(b"/tmp/small/d", 0o755, (0, 0)).unwrap();
    let g = vfs.open(b"/tmp/small/d/g", create, 0o644, (0, 0)).unwrap();
    assert_eq!(g.write(&[2; 4097], false), Err(Errno::ENOSPC), "two more pages do not fit");
    assert_eq!(g.node().stat().size, 0, "nothing was written");
    assert_eq!(g.node().truncate(4096), Ok(()));
    assert_eq!(g.node().truncate(4097), Err(Errno::ENOSPC));
    assert_eq!(quota.usage().1, 3 * 4096);
    f.node().truncate(0).unwrap();
    assert_eq!(g.write(&[2; 4097], false), Ok(4097));
    drop(g);
    vfs.unlink(b"/tmp/small/d/g", false).unwrap();
    assert_eq!(quota.usage().1, 0, "a removed file's space goes back with its last reference");
}

#[test]
fn hard_links_name_one_file() {
    let vfs = tree();
    let f = vfs.open(b"/tmp/a", OpenFlags::CREAT | RDWR, 0o644, (0, 0)).unwrap();
    f.write(b"data", false).unwrap();
    let node = f.node().clone();
    vfs.link(&node, b"/tmp/b").unwrap();
    assert_eq!(node.stat().nlink, 2);
    assert_eq!(vfs.link(&node, b"/tmp/b"), Err(Errno::EEXIST));
    assert_eq!(vfs.link(&vfs.lookup(b"/tmp").unwrap(), b"/tmp/c"), Err(Errno::EPERM));
    assert_eq!(vfs.link(&vfs.lookup(b"/bin/hello").unwrap(), b"/tmp/c"), Err(Errno::EROFS));
    assert_eq!(vfs.rename(b"/tmp/a", b"/tmp/b", false), Ok(()));
    assert!(vfs.lookup(b"/tmp/a").is_ok(), "a rename between two names of one file does nothing");
    vfs.unlink(b"/tmp/a", false).unwrap();
    assert_eq!(vfs.lookup(b"/tmp/b").unwrap().stat().size, 4);
    assert_eq!(node.stat().nlink, 1);
}

#[test]
fn writes_and_renames_move_the_times() {
    use aspen_abi::syscall::Timespec;
    use core::sync::atomic::{AtomicI64, Ordering};
    static TICK: AtomicI64 = AtomicI64::new(100);
    crate::set_clock(|| Timespec { tv_sec: TICK.fetch_add(1, Ordering::Relaxed), tv_nsec: 0 });
    let vfs = tree();
    let f = vfs.open(b"/tmp/timed", OpenFlags::CREAT | RDWR, 0o644, (0, 0)).unwrap();
    let born = f.node().stat();
    assert!(born.mtime.tv_sec >= 100 && born.atime == born.mtime);
    f.write(b"x", false).unwrap();
    let written = f.node().stat();
    assert!(written.mtime > born.mtime && written.ctime == written.mtime && written.atime == born.atime);
    let dir = vfs.lookup(b"/tmp").unwrap().stat();
    vfs.rename(b"/tmp/timed", b"/tmp/renamed", false).unwrap();
    assert!(vfs.lookup(b"/tmp").unwrap().stat().mtime > dir.mtime, "the directory changed");
    let t = Timespec { tv_sec: 7, tv_nsec: 8 };
    f.node().set_times(Some(t), None).unwrap();
    let set = f.node().stat();
    assert_eq!((set.atime, set.mtime), (t, written.mtime));
    assert!(set.ctime > written.ctime);
    assert_eq!(vfs.lookup(b"/bin/hello").unwrap().set_times(None, None), Err(Errno::EROFS));
}

#[test]
fn mount_points_list_what_is_mounted_in_order() {
    use crate::{MountKind, MountPoint};
    let vfs = tree();
    vfs.mkdir(b"/tmp/small", 0o755, (0, 0)).unwrap();
    vfs.mount(b"scratch", b"/tmp/./small/", MountKind::Tmpfs, Some(5000)).unwrap();
    vfs.mount(b"none", b"/dev", MountKind::Devtmpfs, None).unwrap();
    let point = |source: &[u8], path: &[u8], kind, limit| MountPoint {
        source: source.to_vec(),
        path: path.to_vec(),
        kind,
        limit,
    };
    assert_eq!(
        vfs.mount_points(),
        [
            point(b"tmpfs", b"/tmp", MountKind::Tmpfs, None),
            point(b"scratch", b"/tmp/small", MountKind::Tmpfs, Some(8192)),
            point(b"none", b"/dev", MountKind::Devtmpfs, None)
        ]
    );
    vfs.umount(b"/tmp/small").unwrap();
    assert_eq!(vfs.mount_points().len(), 2);
}
