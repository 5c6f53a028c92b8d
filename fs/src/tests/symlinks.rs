//! Symbolic links: the initramfs's, `symlink`, the walk that follows
//! them (relative and absolute targets, ".." after a link, loops,
//! dangling links, mount points) and the calls that act on a link itself.

use super::*;
use crate::cpio::S_IFLNK;
use crate::{MountKind, MAX_SYMLINKS, NAME_MAX, PATH_MAX};

const CREATE: OpenFlags = OpenFlags::CREAT.union(OpenFlags::RDWR);

/// An initramfs like the one Aspen boots: applets linked to one program,
/// and a loader link into a subdirectory.
fn linked_tree() -> Vfs<TestEnv> {
    let a = archive(&[
        ("bin/busybox", S_IFREG | 0o755, b"the program"),
        ("bin/ls", S_IFLNK | 0o777, b"busybox"),
        ("lib/aarch64-linux-gnu/ld.so.1", S_IFREG | 0o755, b"loader"),
        ("lib/ld.so.1", S_IFLNK | 0o777, b"aarch64-linux-gnu/ld.so.1"),
        ("usr/lib", S_IFLNK | 0o777, b"/lib"),
        ("empty", S_IFLNK | 0o777, b""),
        ("tmp", S_IFDIR | 0o1777, b""),
    ]);
    let vfs = Vfs::new(env());
    vfs.load_initramfs(Box::leak(a.into_boxed_slice())).unwrap();
    vfs.mount_tmpfs("/tmp").unwrap();
    vfs
}

fn contents(vfs: &Vfs<TestEnv>, path: &[u8]) -> Vec<u8> {
    read_all(&vfs.open(path, RDONLY, 0, (0, 0)).unwrap())
}

#[test]
fn initramfs_links_lead_to_their_targets() {
    let vfs = linked_tree();
    assert_eq!(contents(&vfs, b"/bin/ls"), b"the program");
    assert_eq!(contents(&vfs, b"/lib/ld.so.1"), b"loader");
    assert_eq!(contents(&vfs, b"/usr/lib/ld.so.1"), b"loader", "an absolute link, then a relative one");
    let link = vfs.resolve(b"/bin/ls", false).unwrap().0;
    let stat = link.stat();
    assert_eq!((stat.mode, stat.size), (S_IFLNK | 0o777, 7));
    assert_eq!(vfs.readlink(b"/lib/ld.so.1").unwrap(), b"aarch64-linux-gnu/ld.so.1");
    assert_eq!(vfs.readlink(b"/bin/busybox"), Err(Errno::EINVAL));
    assert_eq!(vfs.lookup(b"/empty").err(), Some(Errno::ENOENT), "a link without a target is not loaded");
    // The file is opened where it is, not by the link's name.
    assert_eq!(vfs.open(b"/usr/lib/ld.so.1", RDONLY, 0, (0, 0)).unwrap().path(), b"/lib/aarch64-linux-gnu/ld.so.1");
    let listing = vfs.open(b"/bin", RDONLY, 0, (0, 0)).unwrap().read_dir(10).unwrap();
    let ls = listing.iter().find(|d| d.name == "ls").unwrap();
    assert_eq!(ls.kind, 10, "DT_LNK");
    assert_eq!(vfs.lookup(b"/bin/ls/").err(), Some(Errno::ENOTDIR));
    assert_eq!(vfs.unlink(b"/bin/ls", false), Err(Errno::EROFS));
}

#[test]
fn dot_dot_after_a_link_is_the_parent_of_its_target() {
    let vfs = linked_tree();
    vfs.mkdir(b"/tmp/a", 0o755, (0, 0)).unwrap();
    vfs.mkdir(b"/tmp/a/b", 0o755, (0, 0)).unwrap();
    vfs.open(b"/tmp/a/in-a", CREATE, 0o644, (0, 0)).unwrap();
    vfs.symlink(b"a/b", b"/tmp/to-b", (0, 0)).unwrap();
    // "to-b/.." is /tmp/a (where b is), not /tmp (where the link is).
    assert!(vfs.lookup(b"/tmp/to-b/../in-a").is_ok());
    assert_eq!(vfs.resolve(b"/tmp/to-b/..", true).unwrap().1, b"/tmp/a");
    assert_eq!(vfs.resolve(b"/tmp/to-b", true).unwrap().1, b"/tmp/a/b");
    assert_eq!(vfs.resolve(b"/tmp/to-b", false).unwrap().1, b"/tmp/to-b");
    // A ".." inside a target starts from the link's directory.
    vfs.symlink(b"../in-a", b"/tmp/a/b/up", (0, 0)).unwrap();
    assert!(vfs.lookup(b"/tmp/to-b/up").is_ok());
    assert_eq!(vfs.resolve(b"/../..", true).unwrap().1, b"/", "not past the root");
}

#[test]
fn loops_and_long_chains_end_in_eloop() {
    let vfs = linked_tree();
    vfs.symlink(b"loop", b"/tmp/loop", (0, 0)).unwrap();
    assert_eq!(vfs.lookup(b"/tmp/loop").err(), Some(Errno::ELOOP));
    assert_eq!(vfs.lookup(b"/tmp/loop/x").err(), Some(Errno::ELOOP));
    vfs.symlink(b"/tmp/pong", b"/tmp/ping", (0, 0)).unwrap();
    vfs.symlink(b"ping", b"/tmp/pong", (0, 0)).unwrap();
    assert_eq!(vfs.open(b"/tmp/ping", RDONLY, 0, (0, 0)).err(), Some(Errno::ELOOP));
    // The link itself can still be seen and removed.
    assert!(vfs.resolve(b"/tmp/loop", false).is_ok());
    vfs.unlink(b"/tmp/loop", false).unwrap();
    // A chain of exactly MAX_SYMLINKS links resolves; one more does not.
    vfs.open(b"/tmp/end", CREATE, 0o644, (0, 0)).unwrap();
    let mut previous = alloc::string::String::from("end");
    for i in 0..=MAX_SYMLINKS {
        let name = alloc::format!("l{i}");
        vfs.symlink(previous.as_bytes(), alloc::format!("/tmp/{name}").as_bytes(), (0, 0)).unwrap();
        previous = name;
    }
    let last_ok = alloc::format!("/tmp/l{}", MAX_SYMLINKS - 1);
    assert!(vfs.lookup(last_ok.as_bytes()).is_ok());
    let too_many = alloc::format!("/tmp/l{MAX_SYMLINKS}");
    assert_eq!(vfs.lookup(too_many.as_bytes()).err(), Some(Errno::ELOOP));
}

#[test]
fn dangling_links_and_the_open_flags() {
    let vfs = linked_tree();
    vfs.symlink(b"/tmp/target", b"/tmp/dangling", (0, 0)).unwrap();
    assert_eq!(vfs.lookup(b"/tmp/dangling").err(), Some(Errno::ENOENT));
    assert_eq!(vfs.open(b"/tmp/dangling", RDONLY, 0, (0, 0)).err(), Some(Errno::ENOENT));
    assert_eq!(
        vfs.open(b"/tmp/dangling", CREATE | OpenFlags::EXCL, 0o644, (0, 0)).err(),
        Some(Errno::EEXIST),
        "O_EXCL does not follow the link"
    );
    assert_eq!(vfs.open(b"/tmp/dangling", CREATE | OpenFlags::NOFOLLOW, 0o644, (0, 0)).err(), Some(Errno::ELOOP));
    // O_CREAT through the link creates its target.
    let f = vfs.open(b"/tmp/dangling", CREATE, 0o600, (3, 4)).unwrap();
    f.write(b"made", false).unwrap();
    assert_eq!(f.path(), b"/tmp/target");
    assert_eq!(contents(&vfs, b"/tmp/target"), b"made");
    assert_eq!(vfs.lookup(b"/tmp/target").unwrap().owner(), (3, 4));
    assert_eq!(vfs.open(b"/tmp/dangling", RDONLY | OpenFlags::NOFOLLOW, 0, (0, 0)).err(), Some(Errno::ELOOP));
    let not_followed_dir = RDONLY | OpenFlags::NOFOLLOW | OpenFlags::DIRECTORY;
    assert_eq!(vfs.open(b"/tmp/dangling", not_followed_dir, 0, (0, 0)).err(), Some(Errno::ENOTDIR));
    // A link into a missing directory creates nothing.
    vfs.symlink(b"/tmp/nodir/f", b"/tmp/deep", (0, 0)).unwrap();
    assert_eq!(vfs.open(b"/tmp/deep", CREATE, 0o644, (0, 0)).err(), Some(Errno::ENOENT));
}

#[test]
fn calls_on_the_link_itself() {
    let vfs = linked_tree();
    vfs.mkdir(b"/tmp/dir", 0o755, (0, 0)).unwrap();
    vfs.symlink(b"dir", b"/tmp/link", (5, 6)).unwrap();
    assert_eq!(vfs.symlink(b"x", b"/tmp/link", (0, 0)), Err(Errno::EEXIST));
    assert_eq!(vfs.symlink(b"", b"/tmp/new", (0, 0)), Err(Errno::ENOENT));
    assert_eq!(vfs.symlink(&[b'a'; PATH_MAX], b"/tmp/new", (0, 0)), Err(Errno::ENAMETOOLONG));
    assert_eq!(vfs.symlink(b"x", b"/tmp/new/", (0, 0)), Err(Errno::ENOENT));
    let long_name = [b'n'; NAME_MAX + 1];
    vfs.symlink(&long_name, b"/tmp/long-name", (0, 0)).unwrap();
    assert_eq!(vfs.lookup(b"/tmp/long-name").err(), Some(Errno::ENAMETOOLONG), "checked in a target too");
    let mut long_path = b"/tmp/".to_vec();
    long_path.extend_from_slice(&long_name);
    assert_eq!(vfs.symlink(b"x", &long_path, (0, 0)), Err(Errno::ENAMETOOLONG));
    assert_eq!(vfs.symlink(b"x", b"/bin/new", (0, 0)), Err(Errno::EROFS));
    assert_eq!(vfs.mkdir(b"/tmp/link", 0o755, (0, 0)), Err(Errno::EEXIST));
    assert_eq!(vfs.mkdir(b"/tmp/link/", 0o755, (0, 0)), Err(Errno::EEXIST));
    assert_eq!(vfs.resolve(b"/tmp/link", false).unwrap().0.owner(), (5, 6));
    // Through a trailing slash a link is followed, even by lstat.
    assert!(vfs.resolve(b"/tmp/link/", false).unwrap().0.is_dir());
    // A hard link to a link names the link.
    let link = vfs.resolve(b"/tmp/link", false).unwrap().0;
    vfs.link(&link, b"/tmp/link2").unwrap();
    assert_eq!(vfs.readlink(b"/tmp/link2").unwrap(), b"dir");
    assert_eq!(link.stat().nlink, 2);
    // rmdir and unlink do not follow it.
    assert_eq!(vfs.unlink(b"/tmp/link", true), Err(Errno::ENOTDIR));
    vfs.open(b"/tmp/link/f", CREATE, 0o644, (0, 0)).unwrap();
    assert_eq!(vfs.unlink(b"/tmp/link/f/", false), Err(Errno::ENOTDIR));
    vfs.rename(b"/tmp/link2", b"/tmp/moved", false).unwrap();
    assert_eq!(vfs.readlink(b"/tmp/moved").unwrap(), b"dir");
    vfs.unlink(b"/tmp/link", false).unwrap();
    assert!(vfs.lookup(b"/tmp/dir/f").is_ok(), "the target stays");
    // A directory cannot move into itself, even named through a link.
    vfs.symlink(b"/tmp/dir", b"/tmp/alias", (0, 0)).unwrap();
    vfs.mkdir(b"/tmp/dir/sub", 0o755, (0, 0)).unwrap();
    assert_eq!(vfs.rename(b"/tmp/dir", b"/tmp/alias/sub/inner", false), Err(Errno::EINVAL));
}

#[test]
fn links_cross_mount_points_both_ways() {
    let vfs = linked_tree();
    vfs.mkdir(b"/tmp/mnt", 0o755, (0, 0)).unwrap();
    vfs.symlink(b"/tmp/mnt", b"/tmp/to-mnt", (0, 0)).unwrap();
    vfs.mount(b"none", b"/tmp/to-mnt", MountKind::Tmpfs, None).unwrap();
    let (root, path) = vfs.resolve(b"/tmp/to-mnt", true).unwrap();
    assert_eq!(path, b"/tmp/mnt");
    assert_ne!(root.dev, vfs.lookup(b"/tmp").unwrap().dev, "mounted through the link, on its target");
    vfs.open(b"/tmp/to-mnt/f", CREATE, 0o644, (0, 0)).unwrap();
    // From inside the mount, a link back out and ".." past its root.
    vfs.symlink(b"../../bin/ls", b"/tmp/mnt/ls", (0, 0)).unwrap();
    assert_eq!(contents(&vfs, b"/tmp/mnt/ls"), b"the program");
    assert!(vfs.lookup(b"/tmp/mnt/../to-mnt/f").is_ok());
    vfs.umount(b"/tmp/to-mnt").unwrap();
    assert_eq!(vfs.lookup(b"/tmp/mnt/f").err(), Some(Errno::ENOENT));
}
