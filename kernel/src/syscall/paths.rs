//! The path system calls: the working directory (`getcwd`, `chdir`,
//! `fchdir`, `umask`), making and removing names (`mkdirat`, `unlinkat`,
//! `renameat2`, `linkat`, `symlinkat`), attributes (`faccessat2`,
//! `fchmodat`, `fchownat`, `truncate`, `statfs`, `statx`, `readlinkat`,
//! `utimensat`), `fsync`, and `mount` and `umount2`.
//!
//! A relative path starts at the process's working directory, or at the
//! directory a descriptor names (where it was opened): both are kept as
//! absolute paths without links, "." or ".." ([`resolve`] puts the
//! relative path after one; `fs::Vfs` walks the result, following links).
//! Permissions are the mode bits against the caller's credentials
//! (`aspen_abi::cred`): root may read and write
//! anything and execute what has an execute bit (or is a directory), as
//! Linux's `CAP_DAC_OVERRIDE`; another user needs the bits of its class
//! on the file, and write and search permission on a directory whose
//! entries it changes (and, in a sticky directory, to own the entry or
//! the directory). Searching the directories along a path is not checked.

use alloc::sync::Arc;
use alloc::vec::Vec;

use aspen_abi::fcntl::{AtFlags, AT_FDCWD};
use aspen_mm::errno::Errno;

use super::{copy_out_at, read_string, stat_of, with_files, SysResult, PATH_MAX};
use crate::files;
use crate::process::fd::Description;
use crate::process::{self, procfs};

/// `AT_EACCESS`: `faccessat2` checks with the effective ids.
const AT_EACCESS: u32 = 0x200;
/// `AT_STATX_SYNC_TYPE`: `statx`'s synchronisation bits (nothing to do
/// for a file system in memory).
const AT_STATX_SYNC_TYPE: u32 = 0x6000;
/// `STATX__RESERVED`: a bit of `statx`'s mask no kernel may be asked for.
const STATX_RESERVED: u32 = 0x8000_0000;
/// `STATX_BASIC_STATS`: the fields `statx` fills.
const STATX_BASIC_STATS: u32 = 0x7ff;
/// `RENAME_NOREPLACE`.
const RENAME_NOREPLACE: u64 = 1;
/// `PROC_SUPER_MAGIC`: `statfs`'s type of `/proc`.
const PROC_MAGIC: u64 = 0x9fa0;
/// `PIPEFS_MAGIC`: `statfs`'s type of a pipe.
const PIPEFS_MAGIC: u64 = 0x5049_5045;

/// `R_OK`, `W_OK`, `X_OK`.
const MAY_READ: u32 = 4;
const MAY_WRITE: u32 = 2;
const MAY_EXEC: u32 = 1;

type KernelNode = aspen_fs::Node<crate::memory::user_env::KernelMm>;

/// `EACCES` unless the caller may `want` (`R_OK` | `W_OK` | `X_OK`) on
/// `node`, with its effective ids.
pub(super) fn check(node: &KernelNode, want: u32) -> Result<(), Errno> {
    let creds = super::creds::current();
    if creds.may_access(node.mode(), node.owner(), want, node.is_dir(), false) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// What changing the entry `path` names (removing or renaming it, or
/// making it) takes: write and search permission on its directory, and in
/// a sticky directory owning the entry or the directory (`EPERM`), unless
/// root. A missing directory is left to the call to report.
fn check_entry_change(path: &[u8]) -> Result<(), Errno> {
    let creds = super::creds::current();
    if creds.privileged() {
        return Ok(());
    }
    let Ok(dir) = files::vfs().parent_dir(path) else { return Ok(()) };
    check(&dir, MAY_WRITE | MAY_EXEC)?;
    if dir.mode() & 0o1000 != 0 && dir.owner().0 != creds.euid {
        if let Ok((node, _)) = files::vfs().resolve(path, false) {
            if node.owner().0 != creds.euid {
                return Err(Errno::EPERM);
            }
        }
    }
    Ok(())
}

/// The checks of `openat` for a caller without privilege: read or write
/// permission on an existing node as `flags` ask (`O_TRUNC` writes), or
/// write and search permission on the directory a new file goes in.
pub(super) fn check_open(path: &[u8], flags: aspen_abi::fcntl::OpenFlags) -> Result<(), Errno> {
    use aspen_abi::fcntl::OpenFlags;
    if super::creds::current().privileged() {
        return Ok(());
    }
    // What the open itself will look at: a link in the last place is
    // not followed with O_NOFOLLOW or O_CREAT|O_EXCL (open refuses it).
    let follow = !flags.contains(OpenFlags::NOFOLLOW) && !flags.contains(OpenFlags::CREAT | OpenFlags::EXCL);
    match files::vfs().walk(path, follow) {
        Ok(aspen_fs::Walked::Found { node, .. }) if node.link_target().is_some() => Ok(()),
        Ok(aspen_fs::Walked::Found { node, .. }) => {
            let mut want = 0;
            if flags.readable() {
                want |= MAY_READ;
            }
            if flags.writable() || flags.contains(OpenFlags::TRUNC) {
                want |= MAY_WRITE;
            }
            check(&node, want)
        }
        // The directory the new file goes in, which a dangling link may
        // name rather than the link's own.
        Ok(aspen_fs::Walked::Missing { parent, .. }) if flags.contains(OpenFlags::CREAT) => {
            check(&parent, MAY_WRITE | MAY_EXEC)
        }
        Ok(aspen_fs::Walked::Missing { .. }) | Err(_) => Ok(()),
    }
}

/// `execve`'s check for a caller without privilege, before the program
/// is opened (as Linux's `do_open_execat`): execute permission on the
/// file by its mode bits (`EACCES`). Root's rule (some execute bit) and
/// what does not exist are left to the loader.
pub(super) fn check_exec(path: &[u8]) -> Result<(), Errno> {
    if super::creds::current().privileged() {
        return Ok(());
    }
    match files::vfs().lookup(path) {
        Ok(node) => check(&node, MAY_EXEC),
        Err(_) => Ok(()),
    }
}

/// The owner of a new file or directory: the caller's effective ids.
pub(super) fn new_owner() -> (u32, u32) {
    let creds = super::creds::current();
    (creds.euid, creds.egid)
}

/// The directory relative paths start at for `dirfd`: the working
/// directory for `AT_FDCWD`, else the directory the descriptor names
/// (`ENOTDIR` when it names something else).
fn base_of(dirfd: i64) -> Result<Vec<u8>, Errno> {
    if dirfd == i64::from(AT_FDCWD) {
        return Ok(process::current_process().with_fs(|fs| fs.cwd.clone()));
    }
    let description = with_files(|f| f.get(dirfd as u64))?;
    match &description.kind {
        Description::File(file) if file.node().is_dir() => Ok(file.path().to_vec()),
        _ => Err(Errno::ENOTDIR),
    }
}

/// The absolute path `path` names from `dirfd`: an absolute path as it is,
/// a relative one after the directory's path. Empty is `ENOENT`.
pub(super) fn resolve(dirfd: i64, path: &[u8]) -> Result<Vec<u8>, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.first() == Some(&b'/') {
        return Ok(path.to_vec());
    }
    let mut full = base_of(dirfd)?;
    if full.last() != Some(&b'/') {
        full.push(b'/');
    }
    full.extend_from_slice(path);
    if full.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(full)
}

/// Reads the path at `addr` and makes it absolute from `dirfd`.
pub(super) fn at_path(dirfd: i64, addr: u64) -> Result<Vec<u8>, Errno> {
    resolve(dirfd, &read_string(addr, PATH_MAX - 1)?)
}

/// What `stat` says of the absolute `path` (of a symbolic link in the last
/// place itself unless `follow`): the console, a `/proc` file or a node of
/// the tree.
pub(super) fn stat_path(path: &[u8], follow: bool) -> Result<aspen_fs::Stat, Errno> {
    if let Some(node) = crate::tty::Node::at(path) {
        return Ok(stat_of(&Description::Console(node)));
    }
    // `/proc`'s links are links to `lstat`.
    if let (false, Some(link)) = (follow, procfs::link_stat(path)) {
        return link;
    }
    if let Some(snapshot) = procfs::open(path)? {
        return Ok(stat_of(&Description::Snapshot(Arc::new(snapshot))));
    }
    if let Some(snapshot) = crate::process::sysfs::open(path)? {
        return Ok(stat_of(&Description::Snapshot(Arc::new(snapshot))));
    }
    Ok(files::vfs().resolve(path, follow)?.0.stat())
}

/// The node the path at `addr` names from `dirfd` (with `AT_EMPTY_PATH`
/// an empty path is the file `dirfd` names), following a symbolic link in
/// the last place unless `AT_SYMLINK_NOFOLLOW`.
fn node_at(dirfd: i64, addr: u64, flags: AtFlags) -> Result<Arc<KernelNode>, Errno> {
    let raw = read_string(addr, PATH_MAX - 1)?;
    if raw.is_empty() && flags.contains(AtFlags::EMPTY_PATH) {
        return node_of(dirfd as u64);
    }
    let follow = !flags.contains(AtFlags::SYMLINK_NOFOLLOW);
    Ok(files::vfs().resolve(&resolve(dirfd, &raw)?, follow)?.0)
}

/// `getcwd(buf, size)`: the working directory and a NUL; its length with
/// the NUL. `ERANGE` when it does not fit.
pub(super) fn getcwd(buf: u64, size: u64) -> SysResult {
    let mut cwd = process::current_process().with_fs(|fs| fs.cwd.clone());
    cwd.push(0);
    if (cwd.len() as u64) > size {
        return Err(Errno::ERANGE);
    }
    copy_out_at(buf, &cwd)?;
    Ok(cwd.len() as u64)
}

/// Makes the directory at absolute `path` the working directory (kept as
/// where it is: links resolved, as `getcwd` reports it).
fn change_dir(path: &[u8]) -> SysResult {
    let (node, physical) = files::vfs().resolve(path, true)?;
    if !node.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    check(&node, MAY_EXEC)?;
    process::current_process().with_fs(|fs| fs.cwd = physical);
    Ok(0)
}

/// `chdir(path)`.
pub(super) fn chdir(path: u64) -> SysResult {
    change_dir(&at_path(i64::from(AT_FDCWD), path)?)
}

/// `fchdir(fd)`: the directory `fd` names becomes the working directory.
pub(super) fn fchdir(fd: u64) -> SysResult {
    let description = with_files(|f| f.get(fd))?;
    match &description.kind {
        Description::File(file) if file.node().is_dir() => {
            let path = file.path().to_vec();
            process::current_process().with_fs(|fs| fs.cwd = path);
            Ok(0)
        }
        _ => Err(Errno::ENOTDIR),
    }
}

/// `umask(mask)`: sets the mask (its permission bits) and returns the old.
pub(super) fn umask(mask: u64) -> SysResult {
    let old = process::current_process().with_fs(|fs| core::mem::replace(&mut fs.umask, mask as u32 & 0o777));
    Ok(u64::from(old))
}

/// The permission bits of a new file or directory made with `mode`.
pub(super) fn masked(mode: u64) -> u32 {
    let umask = process::current_process().with_fs(|fs| fs.umask);
    mode as u32 & 0o7777 & !umask
}

/// `mkdirat(dirfd, path, mode)`.
pub(super) fn mkdirat(dirfd: i64, path: u64, mode: u64) -> SysResult {
    let path = at_path(dirfd, path)?;
    if files::vfs().resolve(&path, false).is_err() {
        check_entry_change(&path)?;
    }
    // The sticky bit is kept; set-id bits are not given to a directory.
    files::vfs().mkdir(&path, masked(mode) & 0o1777, new_owner()).map(|()| 0)
}

/// `unlinkat(dirfd, path, flags)`: `AT_REMOVEDIR` is the only flag.
pub(super) fn unlinkat(dirfd: i64, path: u64, flags: u64) -> SysResult {
    let flags = AtFlags::from_register(flags);
    if !AtFlags::REMOVEDIR.contains(flags) {
        return Err(Errno::EINVAL);
    }
    let path = at_path(dirfd, path)?;
    check_entry_change(&path)?;
    files::vfs().unlink(&path, flags.contains(AtFlags::REMOVEDIR)).map(|()| 0)
}

/// `renameat2(olddirfd, old, newdirfd, new, flags)`: flags 0 or
/// `RENAME_NOREPLACE` (`RENAME_EXCHANGE` and `RENAME_WHITEOUT` are
/// `EINVAL`).
pub(super) fn renameat2(old_dirfd: i64, old: u64, new_dirfd: i64, new: u64, flags: u64) -> SysResult {
    if flags & !RENAME_NOREPLACE != 0 {
        return Err(Errno::EINVAL);
    }
    let old = at_path(old_dirfd, old)?;
    let new = at_path(new_dirfd, new)?;
    check_entry_change(&old)?;
    check_entry_change(&new)?;
    files::vfs().rename(&old, &new, flags == RENAME_NOREPLACE).map(|()| 0)
}

/// `linkat(olddirfd, old, newdirfd, new, flags)`: a new name for a file
/// (a symbolic link `old` names itself, its target with
/// `AT_SYMLINK_FOLLOW`; with `AT_EMPTY_PATH` an empty `old` is the file
/// `olddirfd` names, for root only, else `ENOENT` as Linux). Other flags
/// `EINVAL`.
pub(super) fn linkat(old_dirfd: i64, old: u64, new_dirfd: i64, new: u64, flags: u64) -> SysResult {
    let flags = AtFlags::from_register(flags);
    if !(AtFlags::SYMLINK_FOLLOW | AtFlags::EMPTY_PATH).contains(flags) {
        return Err(Errno::EINVAL);
    }
    let raw = read_string(old, PATH_MAX - 1)?;
    let node = if raw.is_empty() && flags.contains(AtFlags::EMPTY_PATH) {
        if !super::creds::current().privileged() {
            return Err(Errno::ENOENT);
        }
        node_of(old_dirfd as u64)?
    } else {
        files::vfs().resolve(&resolve(old_dirfd, &raw)?, flags.contains(AtFlags::SYMLINK_FOLLOW))?.0
    };
    let new = at_path(new_dirfd, new)?;
    check_entry_change(&new)?;
    files::vfs().link(&node, &new).map(|()| 0)
}

/// `symlinkat(target, newdirfd, path)`: a symbolic link at `path` that
/// points to `target` (not looked at: it may dangle), owned by the
/// caller. As Linux: an empty target is `ENOENT`, an existing `path` (a
/// link too) `EEXIST`.
pub(super) fn symlinkat(target: u64, dirfd: i64, path: u64) -> SysResult {
    let target = read_string(target, PATH_MAX - 1)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = at_path(dirfd, path)?;
    if files::vfs().resolve(&path, false).is_err() {
        check_entry_change(&path)?;
    }
    files::vfs().symlink(&target, &path, new_owner()).map(|()| 0)
}

/// `faccessat2(dirfd, path, mode, flags)` (`faccessat` with flags 0):
/// `F_OK`, or any of `R_OK` 4, `W_OK` 2, `X_OK` 1, checked with the real
/// ids (the effective ones with `AT_EACCESS`): root may read and write
/// (writing a file or directory of the read-only initramfs is `EROFS`)
/// and execute when some execute bit is set or the node is a directory;
/// other users need the bits of their class.
pub(super) fn faccessat2(dirfd: i64, path: u64, mode: u64, flags: u64) -> SysResult {
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let allowed = u64::from(AT_EACCESS | (AtFlags::SYMLINK_NOFOLLOW | AtFlags::EMPTY_PATH).bits());
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let raw = read_string(path, PATH_MAX - 1)?;
    let stat = if raw.is_empty() && flags & u64::from(AtFlags::EMPTY_PATH.bits()) != 0 {
        super::stat_of(&with_files(|f| f.get(dirfd as u64))?.kind)
    } else {
        stat_path(&resolve(dirfd, &raw)?, flags & u64::from(AtFlags::SYMLINK_NOFOLLOW.bits()) == 0)?
    };
    let kind = stat.mode & aspen_fs::cpio::S_IFMT;
    let is_dir = kind == aspen_fs::cpio::S_IFDIR;
    if mode & 2 != 0 && stat.dev == (0, 1) && (is_dir || kind == aspen_fs::cpio::S_IFREG) {
        return Err(Errno::EROFS);
    }
    let real = flags & u64::from(AT_EACCESS) == 0;
    if !super::creds::current().may_access(stat.mode, (stat.uid, stat.gid), mode as u32, is_dir, real) {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

/// `chmod` of `node`: its owner or root only (`EPERM`); without
/// privilege the set-group-id bit goes unless the caller is in the file's
/// group, as Linux.
fn chmod(node: &KernelNode, mode: u64) -> SysResult {
    let creds = super::creds::current();
    let mut mode = mode as u32;
    if !creds.privileged() {
        if node.owner().0 != creds.euid {
            return Err(Errno::EPERM);
        }
        if !creds.in_group(node.owner().1) {
            mode &= !0o2000;
        }
    }
    node.chmod(mode).map(|()| 0)
}

/// `chown` of `node`: root may give it to anyone; its owner only may
/// change its group to one of its own groups, leaving the owner (`EPERM`).
fn chown(node: &KernelNode, uid: Option<u32>, gid: Option<u32>) -> SysResult {
    let creds = super::creds::current();
    if !creds.privileged() {
        let (owner, _) = node.owner();
        let owner_ok = uid.is_none_or(|uid| uid == owner) && owner == creds.euid;
        if !owner_ok || gid.is_some_and(|gid| !creds.in_group(gid)) {
            return Err(Errno::EPERM);
        }
    }
    node.chown(uid, gid).map(|()| 0)
}

/// `fchmodat(dirfd, path, mode)`.
pub(super) fn fchmodat(dirfd: i64, path: u64, mode: u64) -> SysResult {
    let path = at_path(dirfd, path)?;
    chmod(&*files::vfs().lookup(&path)?, mode)
}

/// The node a descriptor names, for the calls that change one; a pipe or
/// the console has none here (`EOPNOTSUPP`), a `/proc` file is read-only
/// (`EPERM`, as Linux for most of them).
fn node_of(fd: u64) -> Result<Arc<KernelNode>, Errno> {
    let description = with_files(|f| f.get(fd))?;
    match &description.kind {
        Description::File(file) | Description::Device(_, file) => Ok(file.node().clone()),
        Description::Snapshot(_) => Err(Errno::EPERM),
        _ => Err(Errno::EOPNOTSUPP),
    }
}

/// `fchmod(fd, mode)`.
pub(super) fn fchmod(fd: u64, mode: u64) -> SysResult {
    chmod(&*node_of(fd)?, mode)
}

/// An id argument of `chown`: -1 leaves it as it is.
fn id(raw: u64) -> Option<u32> {
    Some(raw as u32).filter(|&id| id != u32::MAX)
}

/// `fchownat(dirfd, path, uid, gid, flags)`.
pub(super) fn fchownat(dirfd: i64, path: u64, uid: u64, gid: u64, flags: u64) -> SysResult {
    let flags = AtFlags::from_register(flags);
    if !(AtFlags::SYMLINK_NOFOLLOW | AtFlags::EMPTY_PATH).contains(flags) {
        return Err(Errno::EINVAL);
    }
    chown(&*node_at(dirfd, path, flags)?, id(uid), id(gid))
}

/// `fchown(fd, uid, gid)`.
pub(super) fn fchown(fd: u64, uid: u64, gid: u64) -> SysResult {
    chown(&*node_of(fd)?, id(uid), id(gid))
}

/// Sets `node`'s length; when a file shrank, its pages past the new end
/// are unmapped from every address space (`shrunk_mappings`).
/// Every step either fails before anything changed or cannot fail: the
/// processes that may map the file are listed first (the one allocation
/// not in proportion to the file), the file's pages then grow fallibly or
/// shrink without allocating, and unmapping allocates nothing.
fn truncate_node(node: &KernelNode, length: u64) -> SysResult {
    let processes = process::Process::try_all()?;
    let old = node.stat().size;
    node.truncate(length)?;
    if let (aspen_fs::NodeKind::File(object), true) = (&node.kind, length < old) {
        for process in processes {
            let _ = process.with_mm(|mm| mm.file_shrunk(object.id(), length));
        }
    }
    Ok(0)
}

/// After the file `object_id` shrank to `size` bytes: every process's
/// mappings of it lose the pages past the end (the next access there is
/// SIGBUS, as Linux).
pub(super) fn shrunk_mappings(object_id: u64, size: u64) {
    for process in process::Process::walk(|_| true) {
        let _ = process.with_mm(|mm| mm.file_shrunk(object_id, size));
    }
}

/// `truncate(path, length)`: a negative length is `EINVAL`.
pub(super) fn truncate(path: u64, length: u64) -> SysResult {
    if (length as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    // The lookup is a section (a path and a walk); the size change is not,
    // since what it allocates grows with the file, fallibly.
    let node = {
        let _preload = crate::heap::preload(super::TREE_CALL_HEAP)?;
        files::vfs().lookup(&at_path(i64::from(AT_FDCWD), path)?)?
    };
    if !node.is_dir() {
        check(&node, MAY_WRITE)?;
    }
    truncate_node(&node, length)
}

/// `ftruncate(fd, length)`: `EINVAL` for a negative length, a descriptor
/// not open for writing or one that is not a regular file.
pub(super) fn ftruncate(fd: u64, length: u64) -> SysResult {
    if (length as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let description = with_files(|f| f.get(fd))?;
    match &description.kind {
        Description::File(file) if description.flags().writable() && file.object().is_some() => {
            truncate_node(file.node(), length)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// `fsync(fd)`/`fdatasync(fd)`: writes a file's dirty pages back to its
/// pager (tmpfs keeps them in memory). A directory has nothing to write;
/// the console, a pipe or a `/proc` file cannot be synced (`EINVAL`).
pub(super) fn fsync(fd: u64) -> SysResult {
    let description = with_files(|f| f.get(fd))?;
    match &description.kind {
        Description::File(file) => match file.object() {
            Some(object) => object.sync().map(|()| 0),
            None => Ok(0),
        },
        _ => Err(Errno::EINVAL),
    }
}

/// `struct statfs` (120 bytes) for a file system of type `magic`.
/// A tmpfs with a size limit counts its blocks against it, one without
/// against the free frames.
fn statfs_bytes(magic: u64, quota: Option<&aspen_fs::Quota>) -> [u8; 120] {
    let pool = crate::memory::frames::pool();
    let (total, free) = match quota {
        Some(quota) => {
            let (limit, used) = quota.usage();
            (limit / 4096, (limit - used.min(limit)) / 4096)
        }
        None => (pool.total_frame_count() as u64, pool.free_frame_count() as u64),
    };
    let (blocks, bfree) = if magic == aspen_fs::TMPFS_MAGIC { (total, free) } else { (0, 0) };
    let fields: [u64; 15] =
        [magic, 4096, blocks, bfree, bfree, 0, 0, 0, aspen_fs::NAME_MAX as u64, 4096, 0, 0, 0, 0, 0];
    let mut out = [0u8; 120];
    for (chunk, field) in out.chunks_exact_mut(8).zip(fields) {
        chunk.copy_from_slice(&field.to_le_bytes());
    }
    out
}

/// The file system type of what `stat` describes.
fn magic_of(stat: &aspen_fs::Stat) -> u64 {
    match stat.dev {
        (0, 1) => aspen_fs::RAMFS_MAGIC,
        (0, 4) => PROC_MAGIC,
        (0, 12) => PIPEFS_MAGIC,
        _ => aspen_fs::TMPFS_MAGIC,
    }
}

/// `statfs(path, buf)`.
pub(super) fn statfs(path: u64, buf: u64) -> SysResult {
    let path = at_path(i64::from(AT_FDCWD), path)?;
    let stat = stat_path(&path, true)?;
    let node = files::vfs().lookup(&path).ok();
    copy_out_at(buf, &statfs_bytes(magic_of(&stat), node.as_ref().and_then(|n| n.quota()).map(|q| &**q)))?;
    Ok(0)
}

/// `fstatfs(fd, buf)`.
pub(super) fn fstatfs(fd: u64, buf: u64) -> SysResult {
    let description = with_files(|f| f.get(fd))?;
    let stat = stat_of(&description.kind);
    let quota = match &description.kind {
        Description::File(file) | Description::Device(_, file) => file.node().quota().cloned(),
        _ => None,
    };
    copy_out_at(buf, &statfs_bytes(magic_of(&stat), quota.as_deref()))?;
    Ok(0)
}

/// `readlinkat(dirfd, path, buf, size)`: the target of the symbolic
/// link `path` names (`/proc`'s links too: `self`, `thread-self`,
/// `<pid>/exe`), cut to `size` bytes, without a NUL; its length. As Linux:
/// a size of 0 or less is `EINVAL`, and so is anything that exists and is
/// not a link.
pub(super) fn readlinkat(dirfd: i64, path: u64, buf: u64, size: u64) -> SysResult {
    if (size as i64) <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = at_path(dirfd, path)?;
    let target = match procfs::link(&path) {
        Some(target) => target?,
        None => match files::vfs().readlink(&path) {
            Ok(target) => target,
            Err(Errno::EINVAL) => return Err(Errno::EINVAL),
            Err(errno) => {
                // Not in the tree: what is in /proc or /sys is no link.
                stat_path(&path, false).map_err(|_| errno)?;
                return Err(Errno::EINVAL);
            }
        },
    };
    let n = target.len().min(size.min(u64::from(u32::MAX)) as usize);
    copy_out_at(buf, &target[..n])?;
    Ok(n as u64)
}

/// `statx(dirfd, path, flags, mask, buf)`: the basic fields (Linux's
/// `STATX_BASIC_STATS`) whatever the mask asks; a reserved mask bit is
/// `EINVAL`.
pub(super) fn statx(dirfd: i64, path: u64, flags: u64, mask: u64, buf: u64) -> SysResult {
    let at = AtFlags::from_register(flags & !u64::from(AT_STATX_SYNC_TYPE));
    let known = AtFlags::SYMLINK_NOFOLLOW | AtFlags::EMPTY_PATH | AtFlags::NO_AUTOMOUNT;
    if !known.contains(at) || flags as u32 & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE || flags >> 32 != 0 {
        return Err(Errno::EINVAL);
    }
    if mask as u32 & STATX_RESERVED != 0 {
        return Err(Errno::EINVAL);
    }
    let raw = read_string(path, PATH_MAX - 1)?;
    let stat = if raw.is_empty() && at.contains(AtFlags::EMPTY_PATH) {
        stat_of(&with_files(|f| f.get(dirfd as u64))?.kind)
    } else {
        stat_path(&resolve(dirfd, &raw)?, !at.contains(AtFlags::SYMLINK_NOFOLLOW))?
    };
    copy_out_at(buf, &statx_bytes(&stat))?;
    Ok(0)
}

/// `struct statx` (256 bytes) of `stat`.
fn statx_bytes(stat: &aspen_fs::Stat) -> [u8; 256] {
    let mut out = [0u8; 256];
    let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &STATX_BASIC_STATS.to_le_bytes());
    put(4, &4096u32.to_le_bytes());
    put(16, &stat.nlink.to_le_bytes());
    put(20, &stat.uid.to_le_bytes());
    put(24, &stat.gid.to_le_bytes());
    put(28, &(stat.mode as u16).to_le_bytes());
    put(32, &stat.ino.to_le_bytes());
    put(40, &stat.size.to_le_bytes());
    put(48, &stat.size.div_ceil(512).to_le_bytes());
    for (at, time) in [(64, stat.atime), (96, stat.ctime), (112, stat.mtime)] {
        put(at, &time.tv_sec.to_le_bytes());
        put(at + 8, &(time.tv_nsec as u32).to_le_bytes());
    }
    put(128, &stat.rdev.0.to_le_bytes());
    put(132, &stat.rdev.1.to_le_bytes());
    put(136, &stat.dev.0.to_le_bytes());
    put(140, &stat.dev.1.to_le_bytes());
    out
}

/// `MS_REMOUNT`, `MS_BIND`, `MS_MOVE` and the propagation flags
/// (`MS_UNBINDABLE`, `MS_PRIVATE`, `MS_SLAVE`, `MS_SHARED`): what Aspen's
/// mounts cannot do (`EINVAL`).
const MS_UNSUPPORTED: u64 = 0x20 | 0x1000 | 0x2000 | (0xf << 17);
/// `umount2`'s flags: `MNT_FORCE`, `MNT_DETACH`, `MNT_EXPIRE`,
/// `UMOUNT_NOFOLLOW`.
const UMOUNT_FLAGS: u64 = 0xf;

/// `mount(source, target, fstype, flags, data)`, root only (`EPERM`):
/// `tmpfs` and `devtmpfs` over a directory (the source is only a name,
/// which `/proc/mounts` shows: `none` for NULL;
/// of the options in `data` a tmpfs takes `size=` in bytes, with a `k`,
/// `m`, `g` suffix or as `%` of RAM, 0 for none; the others are ignored). `proc` and
/// `sysfs` are always at `/proc` and `/sys`, so mounting them there
/// succeeds and changes nothing; elsewhere `EINVAL`. Another type is
/// `ENODEV`, as Linux for one it does not know.
pub(super) fn mount(source: u64, target: u64, fstype: u64, flags: u64, data: u64) -> SysResult {
    if !super::creds::current().privileged() {
        return Err(Errno::EPERM);
    }
    let target = at_path(i64::from(AT_FDCWD), target)?;
    let fstype = read_string(fstype, 4095)?;
    if flags & MS_UNSUPPORTED != 0 {
        return Err(Errno::EINVAL);
    }
    let kind = match fstype.as_slice() {
        b"tmpfs" => aspen_fs::MountKind::Tmpfs,
        b"devtmpfs" => aspen_fs::MountKind::Devtmpfs,
        b"proc" | b"sysfs" => {
            let home: &[u8] = if fstype == b"proc" { b"/proc" } else { b"/sys" };
            // Where the target is (links resolved); `/sys` is not in the
            // tree, so a path the tree does not have is taken as written.
            let at = files::vfs().resolve(&target, true).map_or(target, |(_, at)| at);
            let at = at.strip_suffix(b"/").unwrap_or(&at);
            return if at == home { Ok(0) } else { Err(Errno::EINVAL) };
        }
        _ => return Err(Errno::ENODEV),
    };
    let options = if data == 0 { Vec::new() } else { read_string(data, 4095)? };
    let limit = if kind == aspen_fs::MountKind::Tmpfs { size_option(&options)? } else { None };
    let source = if source == 0 { b"none".to_vec() } else { read_string(source, 4095)? };
    files::vfs().mount(&source, &target, kind, limit).map(|()| 0)
}

/// The `size=` of tmpfs options (comma-separated): bytes with an optional
/// `k`, `m` or `g`, or a percentage of RAM; none or 0 is no limit; a
/// value that does not parse is `EINVAL`.
fn size_option(options: &[u8]) -> Result<Option<u64>, Errno> {
    let Some(value) = options.split(|&b| b == b',').find_map(|o| o.strip_prefix(b"size=")) else { return Ok(None) };
    let (digits, unit) = match value.last() {
        Some(b'k' | b'K') => (&value[..value.len() - 1], 1 << 10),
        Some(b'm' | b'M') => (&value[..value.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&value[..value.len() - 1], 1 << 30),
        Some(b'%') => (&value[..value.len() - 1], 0),
        _ => (value, 1),
    };
    let number: u64 = core::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()).ok_or(Errno::EINVAL)?;
    let bytes = if unit == 0 {
        let ram = crate::memory::frames::pool().total_frame_count() as u64 * 4096;
        ram / 100 * number
    } else {
        number.checked_mul(unit).ok_or(Errno::EINVAL)?
    };
    Ok(Some(bytes).filter(|&b| b != 0))
}

/// `umount2(target, flags)`, root only (`EPERM`): the file system last
/// mounted there goes (`EINVAL` when none is; open files of it live on).
pub(super) fn umount2(target: u64, flags: u64) -> SysResult {
    if !super::creds::current().privileged() {
        return Err(Errno::EPERM);
    }
    if flags & !UMOUNT_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let target = at_path(i64::from(AT_FDCWD), target)?;
    files::vfs().umount(&target).map(|()| 0)
}

/// `UTIME_NOW`, `UTIME_OMIT`: `tv_nsec` values of `utimensat`.
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// `utimensat(dirfd, path, times, flags)`: sets a node's access and
/// modification times (`times` NULL: both now; a `tv_nsec` of
/// `UTIME_NOW` or `UTIME_OMIT` is now or unchanged; another outside
/// 0..1e9 `EINVAL`). A NULL `path` is the file `dirfd` names. As Linux:
/// setting them to now takes ownership or write permission (`EACCES`),
/// to other times ownership (`EPERM`), root either; `EROFS` on the
/// initramfs; flags other than `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH`
/// `EINVAL`.
pub(super) fn utimensat(dirfd: i64, path: u64, times: u64, flags: u64) -> SysResult {
    let flags = AtFlags::from_register(flags);
    if !(AtFlags::SYMLINK_NOFOLLOW | AtFlags::EMPTY_PATH).contains(flags) {
        return Err(Errno::EINVAL);
    }
    let requested = if times == 0 {
        [aspen_abi::syscall::Timespec { tv_sec: 0, tv_nsec: UTIME_NOW }; 2]
    } else {
        let raw = super::copy_in(aspen_abi::uaccess::UserSlice::new(times, 32)?)?;
        let field = |at: usize| i64::from_le_bytes(raw[at..at + 8].try_into().unwrap_or_default());
        [0, 16].map(|at| aspen_abi::syscall::Timespec { tv_sec: field(at), tv_nsec: field(at + 8) })
    };
    if requested.iter().any(|t| !matches!(t.tv_nsec, UTIME_NOW | UTIME_OMIT | 0..=999_999_999)) {
        return Err(Errno::EINVAL);
    }
    let node = if path == 0 { node_of(dirfd as u64)? } else { node_at(dirfd, path, flags)? };
    if requested.iter().all(|t| t.tv_nsec == UTIME_OMIT) {
        return Ok(0);
    }
    let creds = super::creds::current();
    if !creds.privileged() && node.owner().0 != creds.euid {
        let only_now = requested.iter().all(|t| matches!(t.tv_nsec, UTIME_NOW | UTIME_OMIT));
        if !only_now {
            return Err(Errno::EPERM);
        }
        check(&node, MAY_WRITE)?;
    }
    let now = aspen_abi::syscall::Timespec::from_ticks(crate::arch::timer::ticks(), super::frequency());
    let pick = |t: aspen_abi::syscall::Timespec| match t.tv_nsec {
        UTIME_OMIT => None,
        UTIME_NOW => Some(now),
        _ => Some(t),
    };
    node.set_times(pick(requested[0]), pick(requested[1])).map(|()| 0)
}
