//! The node tree, path lookup and open files.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use aspen_abi::fcntl::OpenFlags;
use aspen_abi::syscall::Timespec;
use aspen_abi::uaccess::CopyFault;
use aspen_mm::aspace::MmEnv;
use aspen_mm::errno::Errno;
use aspen_mm::object::{FileIdentity, FileObject, MemoryPager, ReadOnlyPager};
use spin::Mutex;

use crate::cpio::{self, CpioError, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

/// Longest path accepted, NUL included (Linux's PATH_MAX).
pub const PATH_MAX: usize = 4096;
/// Longest name of one path component (Linux's NAME_MAX).
pub const NAME_MAX: usize = 255;

/// Device numbers shown in `stat` and `/proc/<pid>/maps`.
const INITRAMFS_DEV: (u32, u32) = (0, 1);
/// The first minor device number of a mounted file system (the kernel's
/// `/proc`, console and pipes use lower ones).
const FIRST_MOUNT_MINOR: u32 = 16;

/// `statfs`'s `f_type` of the initramfs (Linux's rootfs is a ramfs).
pub const RAMFS_MAGIC: u64 = 0x8584_58f6;
/// `statfs`'s `f_type` of a tmpfs.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;

/// A tmpfs's size limit (`size=`) and what its files take: their sizes,
/// each rounded up to whole pages (a sparse file counts in full).
pub struct Quota {
    /// The limit in bytes, a multiple of the page size.
    limit: u64,
    /// What the files take, in bytes.
    used: AtomicU64,
}

impl Quota {
    /// A limit of `limit` bytes (rounded up to whole pages).
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self { limit: limit.div_ceil(PAGE) * PAGE, used: AtomicU64::new(0) })
    }

    /// Accounts a file's change of size from `old` to `new` bytes:
    /// `ENOSPC`, with nothing changed, when growing would pass the limit.
    fn resize(&self, old: u64, new: u64) -> Result<(), Errno> {
        let (old, new) = (old.div_ceil(PAGE) * PAGE, new.div_ceil(PAGE) * PAGE);
        if new <= old {
            self.used.fetch_sub(old - new, Ordering::Relaxed);
            return Ok(());
        }
        let grow = new - old;
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(grow).filter(|&total| total <= self.limit)
            })
            .map(drop)
            .map_err(|_| Errno::ENOSPC)
    }

    /// The limit and what is used, in bytes (for `statfs`).
    pub fn usage(&self) -> (u64, u64) {
        (self.limit, self.used.load(Ordering::Relaxed))
    }
}

/// The clock file times come from (the kernel's `CLOCK_REALTIME`); none
/// (the host tests) reads 0.
static CLOCK: spin::Once<fn() -> Timespec> = spin::Once::new();

/// Sets the clock file times come from (once, at boot).
pub fn set_clock(now: fn() -> Timespec) {
    CLOCK.call_once(|| now);
}

fn now() -> Timespec {
    CLOCK.get().map_or(Timespec::default(), |clock| clock())
}

/// The page size file sizes are counted in.
const PAGE: u64 = 4096;

/// A directory's entries, by name.
type DirEntries<E> = Mutex<BTreeMap<String, Arc<Node<E>>>>;

/// What a node is.
pub enum NodeKind<E: MmEnv + 'static> {
    /// A directory: its entries, without "." and "..".
    Dir(DirEntries<E>),
    /// A regular file: its page cache, which holds the data.
    File(Arc<FileObject<'static, E>>),
    /// A symbolic link: the path it points to (never empty).
    Symlink(Vec<u8>),
    /// A character device; the kernel decides what its major/minor mean.
    CharDevice {
        /// The device's major number (`st_rdev`).
        major: u32,
        /// The device's minor number (`st_rdev`).
        minor: u32,
    },
}

/// A file, directory or device.
pub struct Node<E: MmEnv + 'static> {
    /// Inode number, unique in the whole tree (the root is 1).
    pub ino: u64,
    /// File type and permission bits, as in `st_mode` (`chmod` changes
    /// the permission bits).
    mode: AtomicU32,
    /// The owner's user id (`chown` changes it).
    uid: AtomicU32,
    /// The owner's group id (`chown` changes it).
    gid: AtomicU32,
    /// On a writable file system (tmpfs): files can be created and written.
    pub writable: bool,
    /// The (major, minor) device of the file system holding the node, as
    /// in `st_dev`: (0, 1) for the initramfs, (0, 2) for a tmpfs.
    pub dev: (u32, u32),
    /// What the node is, with its contents.
    pub kind: NodeKind<E>,
    /// The size limit of the tmpfs holding it, if it has one.
    quota: Option<Arc<Quota>>,
    /// Last access, last change of the data, last change of the node
    /// (`st_atime`, `st_mtime`, `st_ctime`).
    times: Mutex<[Timespec; 3]>,
    /// The names a file or device has (`link` adds one, `unlink` takes
    /// one away); a directory's count is made from its entries instead.
    links: AtomicU32,
}

impl<E: MmEnv + 'static> Drop for Node<E> {
    /// A file's space goes back to its tmpfs with its last reference (the
    /// last link and the last open, as Linux).
    fn drop(&mut self) {
        if let (NodeKind::File(object), Some(quota)) = (&self.kind, &self.quota) {
            let _ = quota.resize(object.size(), 0);
        }
    }
}

impl<E: MmEnv + 'static> Node<E> {
    /// Whether the node is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir(_))
    }

    /// The target of a symbolic link; `None` for any other node.
    pub fn link_target(&self) -> Option<&[u8]> {
        match &self.kind {
            NodeKind::Symlink(target) => Some(target),
            _ => None,
        }
    }

    fn dir(&self) -> Result<&DirEntries<E>, Errno> {
        match &self.kind {
            NodeKind::Dir(entries) => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// A node owned by root.
    fn new(ino: u64, mode: u32, writable: bool, dev: (u32, u32), kind: NodeKind<E>) -> Arc<Self> {
        Self::new_in(ino, mode, writable, dev, kind, None)
    }

    /// A node owned by root in a tmpfs with `quota`.
    fn new_in(
        ino: u64,
        mode: u32,
        writable: bool,
        dev: (u32, u32),
        kind: NodeKind<E>,
        quota: Option<Arc<Quota>>,
    ) -> Arc<Self> {
        Arc::new(Node {
            ino,
            mode: AtomicU32::new(mode),
            uid: AtomicU32::new(0),
            gid: AtomicU32::new(0),
            writable,
            dev,
            kind,
            quota,
            times: Mutex::new([now(); 3]),
            links: AtomicU32::new(1),
        })
    }

    /// The data changed (a write, a truncate, an entry of a directory):
    /// the modification and change times are now.
    fn modified(&self) {
        let t = now();
        let mut times = self.times.lock();
        times[1] = t;
        times[2] = t;
    }

    /// The node changed (mode, owner, links): the change time is now.
    fn changed(&self) {
        self.times.lock()[2] = now();
    }

    /// `utimensat`: sets the access and modification times (`None` keeps
    /// one); the change time becomes now. `EROFS` on the initramfs.
    pub fn set_times(&self, atime: Option<Timespec>, mtime: Option<Timespec>) -> Result<(), Errno> {
        if !self.writable {
            return Err(Errno::EROFS);
        }
        let mut times = self.times.lock();
        times[0] = atime.unwrap_or(times[0]);
        times[1] = mtime.unwrap_or(times[1]);
        times[2] = now();
        Ok(())
    }

    /// The size limit of the tmpfs holding the node, if it has one.
    pub fn quota(&self) -> Option<&Arc<Quota>> {
        self.quota.as_ref()
    }

    /// Accounts a change of the file's size from `old` to `new` bytes with
    /// its tmpfs's limit (`ENOSPC` when it would pass it).
    fn resize(&self, old: u64, new: u64) -> Result<(), Errno> {
        self.quota.as_ref().map_or(Ok(()), |quota| quota.resize(old, new))
    }

    /// File type and permission bits, as in `st_mode`.
    pub fn mode(&self) -> u32 {
        self.mode.load(Ordering::Relaxed)
    }

    /// The owner's user and group ids.
    pub fn owner(&self) -> (u32, u32) {
        (self.uid.load(Ordering::Relaxed), self.gid.load(Ordering::Relaxed))
    }

    /// `chmod`: sets the permission bits (`0o7777` of `mode`); `EROFS` on
    /// the read-only initramfs.
    pub fn chmod(&self, mode: u32) -> Result<(), Errno> {
        if !self.writable {
            return Err(Errno::EROFS);
        }
        let kind = self.mode() & S_IFMT;
        self.mode.store(kind | (mode & 0o7777), Ordering::Relaxed);
        self.changed();
        Ok(())
    }

    /// `chown`: sets the owner and group (`None`: unchanged); a change of
    /// owner clears set-user-id and set-group-id, as Linux does for a
    /// regular file. `EROFS` on the read-only initramfs.
    pub fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        if !self.writable {
            return Err(Errno::EROFS);
        }
        if let Some(uid) = uid {
            self.uid.store(uid, Ordering::Relaxed);
        }
        if let Some(gid) = gid {
            self.gid.store(gid, Ordering::Relaxed);
        }
        if (uid.is_some() || gid.is_some()) && matches!(self.kind, NodeKind::File(_)) {
            self.mode.fetch_and(!0o6000, Ordering::Relaxed);
        }
        self.changed();
        Ok(())
    }

    /// `truncate`: sets a regular file's length. `EISDIR` for a directory,
    /// `EINVAL` for other nodes, `EROFS` on the initramfs.
    pub fn truncate(&self, size: u64) -> Result<(), Errno> {
        match &self.kind {
            NodeKind::Dir(_) => Err(Errno::EISDIR),
            NodeKind::CharDevice { .. } | NodeKind::Symlink(_) => Err(Errno::EINVAL),
            NodeKind::File(_) if !self.writable => Err(Errno::EROFS),
            NodeKind::File(object) => {
                let old = object.size();
                self.resize(old, size)?;
                object.truncate(size).inspect_err(|_| {
                    let _ = self.resize(size, old);
                })?;
                self.modified();
                Ok(())
            }
        }
    }

    /// What `stat` reports for the node.
    pub fn stat(&self) -> Stat {
        let size = match &self.kind {
            NodeKind::File(object) => object.size(),
            NodeKind::Symlink(target) => target.len() as u64,
            _ => 0,
        };
        let rdev = match self.kind {
            NodeKind::CharDevice { major, minor } => (major, minor),
            _ => (0, 0),
        };
        let (uid, gid) = self.owner();
        let nlink = match &self.kind {
            NodeKind::Dir(entries) => 2 + entries.lock().values().filter(|n| n.is_dir()).count() as u32,
            _ => self.links.load(Ordering::Relaxed),
        };
        let [atime, mtime, ctime] = *self.times.lock();
        Stat { dev: self.dev, ino: self.ino, mode: self.mode(), size, rdev, uid, gid, nlink, atime, mtime, ctime }
    }
}

/// What `fstat`/`newfstatat` report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// `st_dev`: the (major, minor) device of the node's file system.
    pub dev: (u32, u32),
    /// `st_ino`: the inode number.
    pub ino: u64,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
    /// `st_size`: a regular file's length in bytes, a symbolic link's
    /// target's; 0 for other nodes.
    pub size: u64,
    /// `st_rdev`: a device node's (major, minor); (0, 0) for other nodes.
    pub rdev: (u32, u32),
    /// `st_uid`: the owner.
    pub uid: u32,
    /// `st_gid`: the group.
    pub gid: u32,
    /// `st_nlink`: 1 for a file; 2 and one per subdirectory for a
    /// directory.
    pub nlink: u32,
    /// `st_atime`: the last access (set at creation and by `utimensat`;
    /// reads do not move it).
    pub atime: Timespec,
    /// `st_mtime`: the last change of the data.
    pub mtime: Timespec,
    /// `st_ctime`: the last change of the node.
    pub ctime: Timespec,
}

/// `lseek`'s origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    /// `SEEK_SET`: from the start of the file.
    Set,
    /// `SEEK_CUR`: from the current position.
    Current,
    /// `SEEK_END`: from the end of the file.
    End,
}

/// A file system `mount` can put on a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountKind {
    /// An empty tmpfs (mode 1777).
    Tmpfs,
    /// A tmpfs (mode 755) holding the device nodes Aspen has: `console`,
    /// `tty`, `null`, `zero`, `full`, `random`, `urandom`.
    Devtmpfs,
}

/// The device nodes of a devtmpfs: name, mode, (major, minor).
const DEVICES: &[(&str, u32, (u32, u32))] = &[
    ("console", 0o600, (5, 1)),
    ("tty", 0o666, (5, 0)),
    ("null", 0o666, (1, 3)),
    ("zero", 0o666, (1, 5)),
    ("full", 0o666, (1, 7)),
    ("random", 0o666, (1, 8)),
    ("urandom", 0o666, (1, 9)),
];

/// A file system mounted over a directory entry.
struct Mount<E: MmEnv + 'static> {
    /// The directory holding the entry.
    parent: Arc<Node<E>>,
    /// The entry's name.
    name: String,
    /// The mounted file system's root.
    root: Arc<Node<E>>,
    /// What the entry named before (back at unmount).
    covered: Arc<Node<E>>,
    /// Where it is mounted and what, for `/proc/mounts`.
    point: MountPoint,
}

/// A mount as `/proc/mounts` lists it: from what, where, what, and its
/// size limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPoint {
    /// The source `mount` was given (`none` without one): for tmpfs and
    /// devtmpfs only a name.
    pub source: Vec<u8>,
    /// The absolute path it is mounted at.
    pub path: Vec<u8>,
    /// The file system mounted there.
    pub kind: MountKind,
    /// A tmpfs's `size=` in bytes.
    pub limit: Option<u64>,
}

/// The file tree.
pub struct Vfs<E: MmEnv + 'static> {
    env: &'static E,
    root: Arc<Node<E>>,
    next_ino: AtomicU64,
    /// The minor device number of the next mount (major 0).
    next_minor: AtomicU32,
    /// What is mounted, in mount order.
    mounts: Mutex<Vec<Mount<E>>>,
}

fn new_dir<E: MmEnv>(ino: u64, mode: u32, writable: bool, dev: (u32, u32)) -> Arc<Node<E>> {
    Node::new(ino, S_IFDIR | (mode & 0o7777), writable, dev, NodeKind::Dir(Mutex::new(BTreeMap::new())))
}

/// Most symbolic links one path walk follows (Linux's `MAXSYMLINKS`):
/// one more is `ELOOP`.
pub const MAX_SYMLINKS: usize = 40;

/// The checks every path gets before its walk: empty is `ENOENT`, as long
/// as `PATH_MAX` (NUL included) `ENAMETOOLONG`; a path that is not UTF-8
/// names nothing here.
fn check_path(path: &[u8]) -> Result<&str, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    core::str::from_utf8(path).map_err(|_| Errno::ENOENT)
}

/// Where a path walk ends ([`Vfs::walk`]).
pub enum Walked<E: MmEnv + 'static> {
    /// The path names `node`; `path` is where it is, absolute and without
    /// links, "." or "..".
    Found {
        /// What the path names.
        node: Arc<Node<E>>,
        /// Its absolute physical path.
        path: Vec<u8>,
    },
    /// Everything up to the last component exists, and that component
    /// (after the links that led to it) does not: what `O_CREAT`
    /// creates, in `parent` at `parent_path`.
    Missing {
        /// The directory the name would go in.
        parent: Arc<Node<E>>,
        /// That directory's absolute physical path.
        parent_path: Vec<u8>,
        /// The missing name.
        name: String,
        /// Whether the path asked for a directory (it ended in '/').
        trailing_slash: bool,
    },
}

/// The directory holding a path's last component, found by
/// [`Vfs::parent_of`].
struct Parent<E: MmEnv + 'static> {
    /// The directory.
    dir: Arc<Node<E>>,
    /// Its absolute physical path.
    path: Vec<u8>,
    /// The last component.
    name: String,
}

/// One path walk: the directories from the root to where it is, each
/// with the name it was reached by, so ".." goes back physically (to
/// the parent of a link's target, not of the link) and the walk knows
/// the path it is at.
struct Walk<E: MmEnv + 'static> {
    root: Arc<Node<E>>,
    stack: Vec<(String, Arc<Node<E>>)>,
}

impl<E: MmEnv + 'static> Walk<E> {
    fn here(&self) -> &Arc<Node<E>> {
        self.stack.last().map_or(&self.root, |(_, node)| node)
    }

    fn path(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, _) in &self.stack {
            out.push(b'/');
            out.extend_from_slice(name.as_bytes());
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }
}

/// Pushes the components of `path` onto `pending` so that the first is
/// taken first ("." kept: it checks that what is before is a directory).
/// A component longer than `NAME_MAX` (in a link's target too) is
/// `ENAMETOOLONG`.
fn push_components(pending: &mut Vec<String>, path: &str) -> Result<(), Errno> {
    if path.split('/').any(|part| part.len() > NAME_MAX) {
        return Err(Errno::ENAMETOOLONG);
    }
    pending.extend(path.split('/').filter(|p| !p.is_empty()).rev().map(String::from));
    Ok(())
}

impl<E: MmEnv + 'static> Vfs<E> {
    /// An empty tree: a read-only root directory.
    pub fn new(env: &'static E) -> Self {
        Self {
            env,
            root: new_dir(1, 0o755, false, INITRAMFS_DEV),
            next_ino: AtomicU64::new(2),
            next_minor: AtomicU32::new(FIRST_MOUNT_MINOR),
            mounts: Mutex::new(Vec::new()),
        }
    }

    /// `/proc/sys/vm/drop_caches`: drops every file's clean, unused cached
    /// pages (files in the tree, mounted file systems and what mounts
    /// cover). Returns how many pages went.
    pub fn drop_clean_caches(&self) -> usize {
        let mut dirs: Vec<Arc<Node<E>>> = Vec::new();
        dirs.push(self.root.clone());
        dirs.extend(self.mounts.lock().iter().map(|m| m.covered.clone()));
        let mut dropped = 0;
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = dir.dir() else {
                if let NodeKind::File(object) = &dir.kind {
                    dropped += object.drop_clean_pages();
                }
                continue;
            };
            // Not under the directory's lock: a file's object lock is
            // taken below, and the entries may change meanwhile.
            let children: Vec<Arc<Node<E>>> = entries.lock().values().cloned().collect();
            dirs.extend(children);
        }
        dropped
    }

    fn ino(&self) -> u64 {
        self.next_ino.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds the members of a cpio newc archive (the initramfs), read-only.
    /// Missing parent directories are created. Returns how many members
    /// were added; members of unsupported types (sockets, FIFOs, block
    /// devices) and links without a target are skipped.
    pub fn load_initramfs(&self, archive: &'static [u8]) -> Result<usize, CpioError> {
        let mut added = 0;
        for entry in cpio::Reader::new(archive) {
            let entry = entry?;
            let (parent_path, name) = match entry.name.rsplit_once('/') {
                Some((parent, name)) => (parent, name),
                None => ("", entry.name),
            };
            let Ok(parent) = self.make_dirs(parent_path) else { continue };
            let Ok(entries) = parent.dir() else { continue };
            let ino = self.ino();
            let node = match entry.mode & S_IFMT {
                S_IFDIR => new_dir(ino, entry.mode, false, INITRAMFS_DEV),
                S_IFREG => {
                    let identity = FileIdentity {
                        major: INITRAMFS_DEV.0,
                        minor: INITRAMFS_DEV.1,
                        inode: ino,
                        path: alloc::format!("/{}", entry.name),
                    };
                    let object = FileObject::new(self.env, Arc::new(ReadOnlyPager::new(entry.data)), identity);
                    Node::new(ino, entry.mode, false, INITRAMFS_DEV, NodeKind::File(object))
                }
                S_IFCHR => Node::new(
                    ino,
                    entry.mode,
                    false,
                    INITRAMFS_DEV,
                    NodeKind::CharDevice { major: entry.rdev_major, minor: entry.rdev_minor },
                ),
                // A link's data is its target; Linux makes every link 0777.
                S_IFLNK if !entry.data.is_empty() => {
                    Node::new(ino, S_IFLNK | 0o777, false, INITRAMFS_DEV, NodeKind::Symlink(entry.data.to_vec()))
                }
                _ => continue,
            };
            let mut entries = entries.lock();
            // A directory listed after files inside it keeps those files.
            if !(node.is_dir() && entries.get(name).is_some_and(|n| n.is_dir())) {
                entries.insert(String::from(name), node);
            }
            added += 1;
        }
        Ok(added)
    }

    /// The directory at `path`, created (read-only) where missing.
    fn make_dirs(&self, path: &str) -> Result<Arc<Node<E>>, Errno> {
        let mut dir = self.root.clone();
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            let next = {
                let mut entries = dir.dir()?.lock();
                entries
                    .entry(String::from(part))
                    .or_insert_with(|| new_dir(self.ino(), 0o755, false, INITRAMFS_DEV))
                    .clone()
            };
            dir = next;
        }
        Ok(dir)
    }

    /// Mounts an empty tmpfs at absolute `path`, making the directory
    /// (read-only) first if it is missing: the boot's `/tmp`.
    pub fn mount_tmpfs(&self, path: &str) -> Result<(), Errno> {
        self.make_dirs(path)?;
        self.mount(b"tmpfs", path.as_bytes(), MountKind::Tmpfs, None)
    }

    /// `mount`: a new file system of `kind`, named `source`, over the directory at absolute
    /// `path` (`ENOENT`, `ENOTDIR`; the root is `EBUSY`), with its own
    /// device number and, if given, a size limit in bytes (its files'
    /// writes and truncates past it are `ENOSPC`). What was there comes
    /// back at [`Self::umount`].
    pub fn mount(&self, source: &[u8], path: &[u8], kind: MountKind, limit: Option<u64>) -> Result<(), Errno> {
        let (covered, at) = self.resolve(path, true)?;
        if !covered.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let Parent { dir: parent, name, .. } = self.parent_of(&at).map_err(|_| Errno::EBUSY)?;
        let dev = (0, self.next_minor.fetch_add(1, Ordering::Relaxed));
        let mode = if kind == MountKind::Tmpfs { 0o1777 } else { 0o755 };
        let quota = limit.map(Quota::new);
        let kind_dir = NodeKind::Dir(Mutex::new(BTreeMap::new()));
        let root = Node::new_in(self.ino(), S_IFDIR | mode, true, dev, kind_dir, quota);
        if kind == MountKind::Devtmpfs {
            let mut entries = root.dir()?.lock();
            for &(name, mode, (major, minor)) in DEVICES {
                let node = Node::new(self.ino(), S_IFCHR | mode, true, dev, NodeKind::CharDevice { major, minor });
                entries.insert(String::from(name), node);
            }
        }
        parent.dir()?.lock().insert(name.clone(), root.clone());
        let point = MountPoint { source: source.to_vec(), path: at.clone(), kind, limit: quota_limit(&root) };
        self.mounts.lock().push(Mount { parent, name, root, covered, point });
        Ok(())
    }

    /// `umount`: the file system mounted last at absolute `path` goes, and
    /// what it covered is back; `EINVAL` when nothing is mounted there.
    /// Its files live on while open.
    pub fn umount(&self, path: &[u8]) -> Result<(), Errno> {
        let node = self.lookup(path)?;
        let mount = {
            let mut mounts = self.mounts.lock();
            let at = mounts.iter().rposition(|m| Arc::ptr_eq(&m.root, &node)).ok_or(Errno::EINVAL)?;
            mounts.remove(at)
        };
        mount.parent.dir()?.lock().insert(mount.name, mount.covered);
        Ok(())
    }

    /// The one path walk every lookup goes through: absolute `path` from
    /// the root, component by component, following symbolic links (a
    /// relative target from the link's directory, an absolute one from
    /// the root; [`MAX_SYMLINKS`] of them, then `ELOOP`). A link in the
    /// last place is followed when `follow_last` or the path ends in '/'
    /// (which also asks for a directory: `ENOTDIR`). ".." is physical: the
    /// parent of the directory the walk is in, whatever link led there.
    pub fn walk(&self, path: &[u8], follow_last: bool) -> Result<Walked<E>, Errno> {
        let text = check_path(path)?;
        let mut walk = Walk { root: self.root.clone(), stack: Vec::new() };
        let mut pending = Vec::new();
        push_components(&mut pending, text)?;
        let mut trailing_slash = text.ends_with('/');
        let mut links = 0;
        while let Some(part) = pending.pop() {
            let here = walk.here().clone();
            // Only a directory has components after it.
            let entries = here.dir()?;
            match part.as_str() {
                "." => continue,
                ".." => {
                    walk.stack.pop();
                    continue;
                }
                _ => {}
            }
            let last = pending.is_empty();
            let Some(next) = entries.lock().get(&part).cloned() else {
                return if last {
                    Ok(Walked::Missing { parent: here, parent_path: walk.path(), name: part, trailing_slash })
                } else {
                    Err(Errno::ENOENT)
                };
            };
            if let (Some(target), true) = (next.link_target(), !last || follow_last || trailing_slash) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = core::str::from_utf8(target).map_err(|_| Errno::ENOENT)?;
                if target.starts_with('/') {
                    walk.stack.clear();
                }
                if last {
                    trailing_slash |= target.ends_with('/');
                }
                push_components(&mut pending, target)?;
                continue;
            }
            walk.stack.push((part, next));
        }
        let node = walk.here().clone();
        if trailing_slash && !node.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(Walked::Found { node, path: walk.path() })
    }

    /// The node at absolute `path` (the kernel makes a relative path
    /// absolute first), following every symbolic link.
    pub fn lookup(&self, path: &[u8]) -> Result<Arc<Node<E>>, Errno> {
        self.resolve(path, true).map(|(node, _)| node)
    }

    /// The node at absolute `path` and where it is (its absolute path
    /// without links, "." or ".."); a symbolic link in the last place is
    /// followed when `follow_last` (`stat`), else it is the node
    /// (`lstat`, `AT_SYMLINK_NOFOLLOW`).
    pub fn resolve(&self, path: &[u8], follow_last: bool) -> Result<(Arc<Node<E>>, Vec<u8>), Errno> {
        match self.walk(path, follow_last)? {
            Walked::Found { node, path } => Ok((node, path)),
            Walked::Missing { .. } => Err(Errno::ENOENT),
        }
    }

    /// `readlink`: the target of the symbolic link at absolute `path`;
    /// `EINVAL` for another node.
    pub fn readlink(&self, path: &[u8]) -> Result<Vec<u8>, Errno> {
        let (node, _) = self.resolve(path, false)?;
        node.link_target().map(<[u8]>::to_vec).ok_or(Errno::EINVAL)
    }

    /// Opens (or with `O_CREAT` creates, owned by `owner`) the file at
    /// absolute `path`. As Linux: `O_CREAT` through a dangling link
    /// creates its target; `O_CREAT|O_EXCL` does not follow a link in the
    /// last place, so any link there is `EEXIST`; with `O_NOFOLLOW` a
    /// link there is `ELOOP`.
    pub fn open(&self, path: &[u8], flags: OpenFlags, mode: u32, owner: (u32, u32)) -> Result<OpenFile<E>, Errno> {
        let creating = flags.contains(OpenFlags::CREAT);
        let exclusive = creating && flags.contains(OpenFlags::EXCL);
        let follow = !exclusive && !flags.contains(OpenFlags::NOFOLLOW);
        let (node, path) = match self.walk(path, follow)? {
            Walked::Found { .. } if exclusive => return Err(Errno::EEXIST),
            // O_DIRECTORY's check comes first in Linux (do_open, then may_open).
            Walked::Found { node, .. } if flags.contains(OpenFlags::DIRECTORY) && !node.is_dir() => {
                return Err(Errno::ENOTDIR)
            }
            Walked::Found { node, .. } if node.link_target().is_some() => return Err(Errno::ELOOP),
            Walked::Found { node, .. } if creating && node.is_dir() => return Err(Errno::EISDIR),
            Walked::Found { node, path } => (node, path),
            Walked::Missing { trailing_slash: true, .. } if creating => return Err(Errno::EISDIR),
            Walked::Missing { parent, parent_path, name, .. } if creating => {
                self.create(&parent, &parent_path, name, mode, owner)?
            }
            Walked::Missing { .. } => return Err(Errno::ENOENT),
        };
        if flags.contains(OpenFlags::DIRECTORY) && !node.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if flags.writable() {
            if node.is_dir() {
                return Err(Errno::EISDIR);
            }
            if !node.writable && matches!(node.kind, NodeKind::File(_)) {
                return Err(Errno::EROFS);
            }
        }
        if flags.contains(OpenFlags::TRUNC) && flags.writable() {
            if let NodeKind::File(object) = &node.kind {
                object.truncate(0)?;
            }
        }
        Ok(OpenFile { node, offset: Mutex::new(0), flags, path })
    }

    /// The directory that holds the last component of `path` (following
    /// links before it, not the last), where it is, and that component.
    /// `EBUSY` for the root (which has no parent entry), `EINVAL` when the
    /// path ends in "." and `ENOTEMPTY` in ".." (what `rmdir` reports; the
    /// calls that make a name say `EEXIST` for all three:
    /// [`Self::parent_for_new_name`]).
    fn parent_of(&self, path: &[u8]) -> Result<Parent<E>, Errno> {
        let text = check_path(path)?.trim_end_matches('/');
        let (dir, name) = text.rsplit_once('/').unwrap_or(("", text));
        match name {
            "" => return Err(Errno::EBUSY),
            "." => return Err(Errno::EINVAL),
            ".." => return Err(Errno::ENOTEMPTY),
            _ if name.len() > NAME_MAX => return Err(Errno::ENAMETOOLONG),
            _ => {}
        }
        let dir = if dir.is_empty() { "/" } else { dir };
        let (dir, path) = self.resolve(dir.as_bytes(), true)?;
        dir.dir()?;
        Ok(Parent { dir, path, name: String::from(name) })
    }

    /// The directory a call that makes a name (`mkdir`, `link`,
    /// `symlink`) puts it in, where it is, and the name: a path that
    /// names the root or ends in "." or ".." names something, `EEXIST`.
    fn parent_for_new_name(&self, path: &[u8]) -> Result<Parent<E>, Errno> {
        self.parent_of(path).map_err(|e| match e {
            Errno::EBUSY | Errno::EINVAL | Errno::ENOTEMPTY => Errno::EEXIST,
            e => e,
        })
    }

    /// The directory `path` would be in (following every link before its
    /// last component): what the kernel checks permissions of before it
    /// changes the entry.
    pub fn parent_dir(&self, path: &[u8]) -> Result<Arc<Node<E>>, Errno> {
        self.parent_of(path).map(|parent| parent.dir)
    }

    /// Adds the node `make` builds (in the directory it is given) under
    /// the new name `path`. As Linux: `EEXIST` when the name exists (a
    /// link there is not followed), then `ENOENT` for a trailing '/' on
    /// what is not a directory (`directory` false), then `EROFS`.
    fn add_entry(
        &self,
        path: &[u8],
        directory: bool,
        make: impl FnOnce(&Arc<Node<E>>) -> Result<Arc<Node<E>>, Errno>,
    ) -> Result<(), Errno> {
        let Parent { dir: parent, name, .. } = self.parent_for_new_name(path)?;
        let mut entries = parent.dir()?.lock();
        if entries.contains_key(&name) {
            return Err(Errno::EEXIST);
        }
        if !directory && path.ends_with(b"/") {
            return Err(Errno::ENOENT);
        }
        if !parent.writable {
            return Err(Errno::EROFS);
        }
        let node = make(&parent)?;
        entries.insert(name, node);
        parent.modified();
        Ok(())
    }

    /// A new node of `kind` in `parent`'s tmpfs, owned by `owner`.
    fn new_node_in(&self, parent: &Node<E>, mode: u32, kind: NodeKind<E>, owner: (u32, u32)) -> Arc<Node<E>> {
        self.node_with_ino(self.ino(), parent, mode, kind, owner)
    }

    fn node_with_ino(
        &self,
        ino: u64,
        parent: &Node<E>,
        mode: u32,
        kind: NodeKind<E>,
        owner: (u32, u32),
    ) -> Arc<Node<E>> {
        let node = Node::new_in(ino, mode, true, parent.dev, kind, parent.quota.clone());
        node.uid.store(owner.0, Ordering::Relaxed);
        node.gid.store(owner.1, Ordering::Relaxed);
        node
    }

    /// Creates an empty regular file `name` in `parent` (at
    /// `parent_path`), owned by `owner` (user, group); the node and its
    /// path.
    fn create(
        &self,
        parent: &Arc<Node<E>>,
        parent_path: &[u8],
        name: String,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<(Arc<Node<E>>, Vec<u8>), Errno> {
        let entries = parent.dir()?;
        if !parent.writable {
            return Err(Errno::EROFS);
        }
        let path = join(parent_path, &name);
        let ino = self.ino();
        let identity = FileIdentity {
            major: parent.dev.0,
            minor: parent.dev.1,
            inode: ino,
            path: String::from(core::str::from_utf8(&path).unwrap_or("?")),
        };
        let object = FileObject::new(self.env, Arc::new(MemoryPager::new()), identity);
        let node = self.node_with_ino(ino, parent, S_IFREG | (mode & 0o7777), NodeKind::File(object), owner);
        let mut entries = entries.lock();
        parent.modified();
        // Someone may have created it meanwhile: open what is there.
        Ok((entries.entry(name).or_insert(node).clone(), path))
    }

    /// `mkdir`: a new empty directory at `path` with permission bits
    /// `mode` (the caller has applied the umask), owned by `owner`. As
    /// Linux: `EEXIST` when the path names something, a symbolic link
    /// included (before `EROFS`), `ENOENT`/`ENOTDIR` for a missing or
    /// non-directory parent.
    pub fn mkdir(&self, path: &[u8], mode: u32, owner: (u32, u32)) -> Result<(), Errno> {
        self.add_entry(path, true, |parent| {
            let kind = NodeKind::Dir(Mutex::new(BTreeMap::new()));
            Ok(self.new_node_in(parent, S_IFDIR | (mode & 0o7777), kind, owner))
        })
    }

    /// `symlink`: a new symbolic link at `path` pointing to `target`,
    /// owned by `owner`. As Linux: an empty target is `ENOENT`, one of
    /// `PATH_MAX` bytes `ENAMETOOLONG`; then as `mkdir`.
    pub fn symlink(&self, target: &[u8], path: &[u8], owner: (u32, u32)) -> Result<(), Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        self.add_entry(path, false, |parent| {
            Ok(self.new_node_in(parent, S_IFLNK | 0o777, NodeKind::Symlink(target.to_vec()), owner))
        })
    }

    /// `unlink` (`directory` false) or `rmdir` (true) of `path` (a link
    /// there goes itself, not its target). As Linux: `unlink` of a
    /// directory is `EISDIR`, `rmdir` of anything else `ENOTDIR`, of a
    /// directory with entries `ENOTEMPTY`, of a mount point `EBUSY`;
    /// `unlink` of "name/" that is not a directory `ENOTDIR`; `EROFS` on
    /// the initramfs.
    pub fn unlink(&self, path: &[u8], directory: bool) -> Result<(), Errno> {
        let Parent { dir: parent, name, .. } = match self.parent_of(path) {
            Ok(found) => found,
            Err(Errno::EBUSY | Errno::EINVAL | Errno::ENOTEMPTY) if !directory => return Err(Errno::EISDIR),
            Err(e) => return Err(e),
        };
        let mut entries = parent.dir()?.lock();
        let node = entries.get(&name).ok_or(Errno::ENOENT)?;
        if !parent.writable {
            return Err(Errno::EROFS);
        }
        match (&node.kind, directory) {
            (NodeKind::Dir(_), false) => return Err(Errno::EISDIR),
            (NodeKind::Dir(children), true) => {
                if node.dev != parent.dev {
                    return Err(Errno::EBUSY);
                }
                if !children.lock().is_empty() {
                    return Err(Errno::ENOTEMPTY);
                }
            }
            (_, true) => return Err(Errno::ENOTDIR),
            (_, false) if path.ends_with(b"/") => return Err(Errno::ENOTDIR),
            (_, false) => {}
        }
        if let Some(gone) = entries.remove(&name) {
            gone.links.fetch_sub(1, Ordering::Relaxed);
            gone.changed();
        }
        parent.modified();
        Ok(())
    }

    /// `link`: a new name `new` (absolute) for the non-directory `node`.
    /// As Linux: an existing `new` (a link too) is `EEXIST`, the initramfs
    /// `EROFS`, another file system `EXDEV`, a directory `EPERM`.
    pub fn link(&self, node: &Arc<Node<E>>, new: &[u8]) -> Result<(), Errno> {
        self.add_entry(new, false, |parent| {
            if !node.writable {
                return Err(Errno::EROFS);
            }
            if node.dev != parent.dev {
                return Err(Errno::EXDEV);
            }
            if node.is_dir() {
                return Err(Errno::EPERM);
            }
            node.links.fetch_add(1, Ordering::Relaxed);
            node.changed();
            Ok(node.clone())
        })
    }

    /// `renameat2(old, new)`: moves the entry `old` to `new`, replacing
    /// what `new` names unless `noreplace` (then `EEXIST`); a link in
    /// either last place is the entry itself. As Linux: a directory
    /// replaces only an empty directory (`ENOTEMPTY`), a file only a
    /// non-directory (`EISDIR`; a directory over a file is `ENOTDIR`, as
    /// is a trailing '/' on a file); across file systems `EXDEV`; a
    /// directory into itself `EINVAL`; on the initramfs `EROFS`.
    pub fn rename(&self, old: &[u8], new: &[u8], noreplace: bool) -> Result<(), Errno> {
        let busy = |e| if e == Errno::ENOTEMPTY || e == Errno::EINVAL { Errno::EBUSY } else { e };
        let Parent { dir: from, path: from_path, name: old_name } = self.parent_of(old).map_err(busy)?;
        let Parent { dir: to, path: to_path, name: new_name } = self.parent_of(new).map_err(busy)?;
        let node = from.dir()?.lock().get(&old_name).cloned().ok_or(Errno::ENOENT)?;
        if !node.is_dir() && (old.ends_with(b"/") || new.ends_with(b"/")) {
            return Err(Errno::ENOTDIR);
        }
        if !from.writable || !to.writable {
            return Err(Errno::EROFS);
        }
        if from.dev != to.dev || node.dev != from.dev {
            return Err(Errno::EXDEV);
        }
        let (old_abs, new_abs) = (join(&from_path, &old_name), join(&to_path, &new_name));
        if node.is_dir()
            && new_abs.len() > old_abs.len()
            && new_abs.starts_with(&old_abs)
            && new_abs[old_abs.len()] == b'/'
        {
            return Err(Errno::EINVAL);
        }
        if Arc::ptr_eq(&from, &to) && old_name == new_name {
            return Ok(());
        }
        // One entry lock at a time: the kernel is not preempted between
        // these steps, so the checks still hold when the entries change.
        if let Some(existing) = to.dir()?.lock().get(&new_name).cloned() {
            if Arc::ptr_eq(&existing, &node) {
                // Two names of one file: nothing happens, as in Linux.
                return if noreplace { Err(Errno::EEXIST) } else { Ok(()) };
            }
            if noreplace {
                return Err(Errno::EEXIST);
            }
            match (node.is_dir(), &existing.kind) {
                (true, NodeKind::Dir(children)) => {
                    if existing.dev != to.dev {
                        return Err(Errno::EBUSY);
                    }
                    if !children.lock().is_empty() {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
                (true, _) => return Err(Errno::ENOTDIR),
                (false, NodeKind::Dir(_)) => return Err(Errno::EISDIR),
                (false, _) => {}
            }
        }
        from.dir()?.lock().remove(&old_name);
        node.changed();
        if let Some(replaced) = to.dir()?.lock().insert(new_name, node) {
            replaced.links.fetch_sub(1, Ordering::Relaxed);
            replaced.changed();
        }
        from.modified();
        to.modified();
        Ok(())
    }

    /// What is mounted, in mount order (the root's file system aside).
    pub fn mount_points(&self) -> Vec<MountPoint> {
        self.mounts.lock().iter().map(|m| m.point.clone()).collect()
    }
}

/// The size limit of the file system whose root is `root`.
fn quota_limit<E: MmEnv + 'static>(root: &Node<E>) -> Option<u64> {
    root.quota().map(|q| q.usage().0)
}

/// The path of `name` in the directory at absolute `dir`.
fn join(dir: &[u8], name: &str) -> Vec<u8> {
    let mut path = dir.to_vec();
    if path.last() != Some(&b'/') {
        path.push(b'/');
    }
    path.extend_from_slice(name.as_bytes());
    path
}

/// One directory entry as `getdents64` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    /// The inode number of the node the entry names.
    pub ino: u64,
    /// `DT_*` type: 4 directory, 8 regular file, 2 character device, 10
    /// symbolic link.
    pub kind: u8,
    /// The entry's name inside its directory (one path component).
    pub name: String,
}

/// Why [`OpenFile::read_into`] stopped short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadIntoError {
    /// The file could not be read; nothing was delivered and the position
    /// did not move.
    File(Errno),
    /// The reader took only the first `copied` bytes; the position moved by
    /// those.
    Delivery(CopyFault),
}

/// An open file description: a node, a position and the open flags.
pub struct OpenFile<E: MmEnv + 'static> {
    node: Arc<Node<E>>,
    offset: Mutex<u64>,
    flags: OpenFlags,
    path: Vec<u8>,
}

impl<E: MmEnv + 'static> OpenFile<E> {
    /// The node that was opened.
    pub fn node(&self) -> &Arc<Node<E>> {
        &self.node
    }

    /// Where it was opened: its absolute path without links, "." or ".."
    /// (what a directory descriptor makes relative paths start from).
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// The flags the file was opened with (its access mode; the kernel
    /// keeps the status flags `F_SETFL` changes with the description).
    pub fn flags(&self) -> OpenFlags {
        self.flags
    }

    /// The page cache behind a regular file (for `mmap`).
    pub fn object(&self) -> Option<&Arc<FileObject<'static, E>>> {
        match &self.node.kind {
            NodeKind::File(object) => Some(object),
            _ => None,
        }
    }

    /// Reads at the file position and advances it.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let read = self.read_into(buf.len(), |data| {
            buf[..data.len()].copy_from_slice(data);
            Ok(())
        });
        read.map_err(|e| match e {
            ReadIntoError::File(errno) => errno,
            ReadIntoError::Delivery(fault) => fault.errno,
        })
    }

    /// Reads up to `max` bytes at the file position and hands them to
    /// `deliver` (which copies them to a reader, user memory for a system
    /// call); the position advances by the bytes it delivered, all of them
    /// or, when it stops part-way, exactly the `copied` it reports, so no
    /// byte a reader did not get is skipped. The position stays locked
    /// meanwhile, as concurrent reads of one description must not
    /// interleave. The number of bytes read and delivered (0 at the end of
    /// the file).
    pub fn read_into(
        &self,
        max: usize,
        deliver: impl FnOnce(&[u8]) -> Result<(), CopyFault>,
    ) -> Result<usize, ReadIntoError> {
        if !self.flags.readable() {
            return Err(ReadIntoError::File(Errno::EBADF));
        }
        let object = match &self.node.kind {
            NodeKind::File(object) => object,
            NodeKind::Dir(_) => return Err(ReadIntoError::File(Errno::EISDIR)),
            NodeKind::CharDevice { .. } | NodeKind::Symlink(_) => return Err(ReadIntoError::File(Errno::EINVAL)),
        };
        let mut data = Vec::new();
        data.try_reserve_exact(max).map_err(|_| ReadIntoError::File(Errno::ENOMEM))?;
        data.resize(max, 0);
        let mut offset = self.offset.lock();
        let n = object.read(*offset, &mut data).map_err(ReadIntoError::File)?;
        let delivered = deliver(&data[..n]);
        let taken = delivered.map_or_else(|fault| fault.copied.min(n), |()| n);
        *offset += taken as u64;
        delivered.map(|()| n).map_err(ReadIntoError::Delivery)
    }

    /// Writes at the file position (at the end when `append`: the
    /// description's `O_APPEND`, which `F_SETFL` may change after open, so
    /// the caller says) and advances it.
    pub fn write(&self, data: &[u8], append: bool) -> Result<usize, Errno> {
        if !self.flags.writable() {
            return Err(Errno::EBADF);
        }
        let NodeKind::File(object) = &self.node.kind else { return Err(Errno::EINVAL) };
        let mut offset = self.offset.lock();
        let old = object.size();
        if append {
            *offset = old;
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        self.node.resize(old, end.max(old))?;
        let written = object.write(*offset, data);
        // What the file did not grow by goes back.
        let _ = self.node.resize(end.max(old), object.size());
        let n = written?;
        self.node.modified();
        *offset += n as u64;
        Ok(n)
    }

    /// Moves the file position; returns the new one.
    pub fn lseek(&self, offset: i64, whence: Whence) -> Result<u64, Errno> {
        let size = match &self.node.kind {
            NodeKind::File(object) => object.size(),
            NodeKind::Dir(_) => 0,
            NodeKind::CharDevice { .. } | NodeKind::Symlink(_) => return Err(Errno::ESPIPE),
        };
        let mut position = self.offset.lock();
        let base = match whence {
            Whence::Set => 0,
            Whence::Current => *position,
            Whence::End => size,
        };
        let new = i64::try_from(base).ok().and_then(|b| b.checked_add(offset)).ok_or(Errno::EOVERFLOW)?;
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        *position = new as u64;
        Ok(*position)
    }

    /// The next directory entries, at most `max` of them, advancing the
    /// position (an index into the directory, "." and ".." first).
    pub fn read_dir(&self, max: usize) -> Result<Vec<Dirent>, Errno> {
        let entries = self.node.dir()?.lock();
        let mut position = self.offset.lock();
        let all = [(".", self.node.ino, 4u8), ("..", self.node.ino, 4u8)]
            .into_iter()
            .map(|(n, i, k)| Dirent { ino: i, kind: k, name: String::from(n) })
            .chain(entries.iter().map(|(name, node)| Dirent {
                ino: node.ino,
                kind: match node.kind {
                    NodeKind::Dir(_) => 4,
                    NodeKind::File(_) => 8,
                    NodeKind::CharDevice { .. } => 2,
                    NodeKind::Symlink(_) => 10,
                },
                name: name.clone(),
            }));
        let out: Vec<Dirent> = all.skip(*position as usize).take(max).collect();
        *position += out.len() as u64;
        Ok(out)
    }

    /// Undoes the last `count` entries `read_dir` returned (those that did
    /// not fit the caller's buffer).
    pub fn unread_dir(&self, count: usize) {
        let mut position = self.offset.lock();
        *position = position.saturating_sub(count as u64);
    }
}
