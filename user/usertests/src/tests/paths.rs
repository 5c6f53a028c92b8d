//! Names in the file tree: directories made and removed, renames, hard
//! links, the
//! working directory and directory descriptors as the start of relative
//! paths, access checks, modes, truncation and `/proc/self/exe`, with
//! Linux's errnos. Everything is made under `/tmp/usertests-paths` and
//! removed again.

use alloc::format;

use aspen_sys::fs::{self, OpenFlags, AT_FDCWD};
use aspen_sys::path::{self, AT_REMOVEDIR, RENAME_NOREPLACE};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, Context, TestResult};

const TOP: &core::ffi::CStr = c"/tmp/usertests-paths";

/// mkdirat, unlinkat and renameat2 and their errnos.
pub fn directories(ctx: &Context) -> TestResult {
    let _ = path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/d/f", 0);
    let _ = path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/d", AT_REMOVEDIR);
    let _ = path::unlinkat(AT_FDCWD, TOP, AT_REMOVEDIR);
    path::mkdirat(AT_FDCWD, TOP, 0o755).map_err(|e| format!("mkdirat: {e}"))?;
    expect_errno("mkdirat again", path::mkdirat(AT_FDCWD, TOP, 0o755), Errno::EEXIST)?;
    expect_errno("mkdirat no parent", path::mkdirat(AT_FDCWD, c"/tmp/usertests-nothing/x", 0o755), Errno::ENOENT)?;
    path::mkdirat(AT_FDCWD, c"/tmp/usertests-paths/d", 0o700).map_err(|e| format!("mkdirat d: {e}"))?;
    let fd = fs::open(c"/tmp/usertests-paths/d/f", OpenFlags::CREAT | OpenFlags::RDWR, 0o644)
        .map_err(|e| format!("create f: {e}"))?;
    fs::close(fd).map_err(|e| format!("close: {e}"))?;
    expect_errno(
        "mkdirat under a file",
        path::mkdirat(AT_FDCWD, c"/tmp/usertests-paths/d/f/x", 0o755),
        Errno::ENOTDIR,
    )?;
    expect_errno(
        "rmdir non-empty",
        path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/d", AT_REMOVEDIR),
        Errno::ENOTEMPTY,
    )?;
    expect_errno("unlink a directory", path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/d", 0), Errno::EISDIR)?;
    expect_errno("rmdir a file", path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/d/f", AT_REMOVEDIR), Errno::ENOTDIR)?;
    expect_errno("unlinkat bad flags", path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/d/f", 1), Errno::EINVAL)?;
    let rename = |old, new, flags| path::renameat2(AT_FDCWD, old, AT_FDCWD, new, flags);
    rename(c"/tmp/usertests-paths/d/f", c"/tmp/usertests-paths/g", 0).map_err(|e| format!("rename: {e}"))?;
    expect_errno("old name after rename", fs::open(c"/tmp/usertests-paths/d/f", OpenFlags::RDONLY, 0), Errno::ENOENT)?;
    expect_errno(
        "rename over a directory",
        rename(c"/tmp/usertests-paths/g", c"/tmp/usertests-paths/d", 0),
        Errno::EISDIR,
    )?;
    expect_errno(
        "rename into itself",
        rename(c"/tmp/usertests-paths/d", c"/tmp/usertests-paths/d/e", 0),
        Errno::EINVAL,
    )?;
    let fd = fs::open(c"/tmp/usertests-paths/h", OpenFlags::CREAT | OpenFlags::RDWR, 0o644)
        .map_err(|e| format!("create h: {e}"))?;
    fs::close(fd).map_err(|e| format!("close: {e}"))?;
    expect_errno(
        "RENAME_NOREPLACE",
        rename(c"/tmp/usertests-paths/g", c"/tmp/usertests-paths/h", RENAME_NOREPLACE),
        Errno::EEXIST,
    )?;
    rename(c"/tmp/usertests-paths/g", c"/tmp/usertests-paths/h", 0).map_err(|e| format!("rename over: {e}"))?;
    let link = |old, new| path::linkat(AT_FDCWD, old, AT_FDCWD, new, 0);
    link(c"/tmp/usertests-paths/h", c"/tmp/usertests-paths/h2").map_err(|e| format!("linkat: {e}"))?;
    expect_errno("linkat over a name", link(c"/tmp/usertests-paths/h", c"/tmp/usertests-paths/h2"), Errno::EEXIST)?;
    expect_errno("linkat of a directory", link(c"/tmp/usertests-paths/d", c"/tmp/usertests-paths/d2"), Errno::EPERM)?;
    let fd = fs::open(c"/tmp/usertests-paths/h2", OpenFlags::RDONLY, 0).map_err(|e| format!("open h2: {e}"))?;
    let nlink = fs::fstat(fd).map(|st| st.nlink);
    fs::close(fd).map_err(|e| format!("close: {e}"))?;
    ensure!(nlink == Ok(2), "nlink of a file with two names: {nlink:?}");
    path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/h2", 0).map_err(|e| format!("unlink h2: {e}"))?;
    let h = c"/tmp/usertests-paths/h";
    path::utimensat(AT_FDCWD, h, [(1000, 5), (2000, 6)]).map_err(|e| format!("utimensat: {e}"))?;
    path::utimensat(AT_FDCWD, h, [(3000, path::UTIME_OMIT), (4000, 7)]).map_err(|e| format!("utimensat: {e}"))?;
    expect_errno("utimensat bad nsec", path::utimensat(AT_FDCWD, h, [(0, 1_000_000_000), (0, 0)]), Errno::EINVAL)?;
    let fd = fs::open(h, OpenFlags::RDONLY, 0).map_err(|e| format!("open h: {e}"))?;
    let st = fs::fstat(fd);
    fs::close(fd).map_err(|e| format!("close: {e}"))?;
    let st = st.map_err(|e| format!("fstat: {e}"))?;
    ensure!(
        (st.atime.tv_sec, st.atime.tv_nsec, st.mtime.tv_sec, st.mtime.tv_nsec) == (1000, 5, 4000, 7),
        "times after utimensat: {:?} {:?}",
        st.atime,
        st.mtime
    );
    if !ctx.linux {
        // Aspen's initramfs is read-only; Linux's rootfs is writable.
        expect_errno("mkdirat on the initramfs", path::mkdirat(AT_FDCWD, c"/usertests-x", 0o755), Errno::EROFS)?;
    }
    path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/h", 0).map_err(|e| format!("unlink h: {e}"))?;
    path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/d", AT_REMOVEDIR).map_err(|e| format!("rmdir d: {e}"))?;
    path::unlinkat(AT_FDCWD, TOP, AT_REMOVEDIR).map_err(|e| format!("rmdir top: {e}"))?;
    expect_errno("rmdir again", path::unlinkat(AT_FDCWD, TOP, AT_REMOVEDIR), Errno::ENOENT)
}

/// getcwd, chdir, fchdir, directory descriptors as `dirfd`, umask,
/// faccessat, fchmodat, ftruncate, statfs and readlinkat.
pub fn working_directory(_: &Context) -> TestResult {
    let _ = path::unlinkat(AT_FDCWD, c"/tmp/usertests-paths/f", 0);
    let _ = path::unlinkat(AT_FDCWD, TOP, AT_REMOVEDIR);
    path::mkdirat(AT_FDCWD, TOP, 0o777).map_err(|e| format!("mkdirat: {e}"))?;
    let mut buf = [0u8; 64];
    path::chdir(TOP).map_err(|e| format!("chdir: {e}"))?;
    let n = path::getcwd(&mut buf).map_err(|e| format!("getcwd: {e}"))?;
    ensure!(&buf[..n] == TOP.to_bytes(), "getcwd after chdir: {:?}", core::str::from_utf8(&buf[..n]));
    expect_errno("getcwd small", path::getcwd(&mut buf[..3]), Errno::ERANGE)?;
    let old = path::umask(0o077);
    let fd = fs::open(c"f", OpenFlags::CREAT | OpenFlags::RDWR, 0o666).map_err(|e| format!("create f: {e}"))?;
    path::umask(old);
    let st = fs::fstat(fd).map_err(|e| format!("fstat: {e}"))?;
    ensure!(st.mode & 0o777 == 0o600, "mode under umask 077: {:o}", st.mode);
    path::ftruncate(fd, 10000).map_err(|e| format!("ftruncate: {e}"))?;
    let st = fs::fstat(fd).map_err(|e| format!("fstat: {e}"))?;
    ensure!(st.size == 10000, "size after ftruncate: {}", st.size);
    expect_errno("ftruncate negative", path::ftruncate(fd, -1), Errno::EINVAL)?;
    fs::close(fd).map_err(|e| format!("close: {e}"))?;
    let ro = fs::open(c"f", OpenFlags::RDONLY, 0).map_err(|e| format!("open f: {e}"))?;
    expect_errno("ftruncate read-only", path::ftruncate(ro, 0), Errno::EINVAL)?;
    fs::close(ro).map_err(|e| format!("close: {e}"))?;
    path::chdir(c"..").map_err(|e| format!("chdir ..: {e}"))?;
    let n = path::getcwd(&mut buf).map_err(|e| format!("getcwd: {e}"))?;
    ensure!(&buf[..n] == b"/tmp", "getcwd after chdir ..: {:?}", core::str::from_utf8(&buf[..n]));
    expect_errno("chdir to a file", path::chdir(c"usertests-paths/f"), Errno::ENOTDIR)?;
    let dir = fs::open(TOP, OpenFlags::RDONLY | OpenFlags::DIRECTORY, 0).map_err(|e| format!("open dir: {e}"))?;
    path::faccessat(dir, c"f", 6).map_err(|e| format!("faccessat R|W: {e}"))?;
    expect_errno("faccessat X of 0600", path::faccessat(dir, c"f", 1), Errno::EACCES)?;
    expect_errno("faccessat bad mode", path::faccessat(dir, c"f", 8), Errno::EINVAL)?;
    expect_errno("faccessat missing", path::faccessat(dir, c"nothing", 0), Errno::ENOENT)?;
    path::fchmodat(dir, c"f", 0o755).map_err(|e| format!("fchmodat: {e}"))?;
    path::faccessat(dir, c"f", 1).map_err(|e| format!("faccessat X of 0755: {e}"))?;
    let file = fs::openat(dir, c"f", OpenFlags::RDONLY, 0).map_err(|e| format!("openat dirfd: {e}"))?;
    expect_errno("a file as dirfd", path::faccessat(file, c"f", 0), Errno::ENOTDIR)?;
    fs::close(file).map_err(|e| format!("close: {e}"))?;
    path::fchdir(dir).map_err(|e| format!("fchdir: {e}"))?;
    let n = path::getcwd(&mut buf).map_err(|e| format!("getcwd: {e}"))?;
    ensure!(&buf[..n] == TOP.to_bytes(), "getcwd after fchdir: {:?}", core::str::from_utf8(&buf[..n]));
    fs::close(dir).map_err(|e| format!("close: {e}"))?;
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    let kind = path::statfs_type(c".").map_err(|e| format!("statfs: {e}"))?;
    ensure!(kind == TMPFS_MAGIC, "statfs of /tmp: {kind:#x}");
    let n = path::readlinkat(AT_FDCWD, c"/proc/self/exe", &mut buf).map_err(|e| format!("readlink: {e}"))?;
    ensure!(buf[..n].ends_with(b"usertests"), "/proc/self/exe: {:?}", core::str::from_utf8(&buf[..n]));
    expect_errno("readlink of a file", path::readlinkat(AT_FDCWD, c"f", &mut buf), Errno::EINVAL)?;
    path::unlinkat(AT_FDCWD, c"f", 0).map_err(|e| format!("unlink f: {e}"))?;
    path::chdir(c"/").map_err(|e| format!("chdir /: {e}"))?;
    path::unlinkat(AT_FDCWD, TOP, AT_REMOVEDIR).map_err(|e| format!("rmdir: {e}"))
}

/// The memory devices: `/dev/null` reads nothing and takes every write,
/// `/dev/zero` reads zeros and maps as anonymous memory (shared across
/// fork with `MAP_SHARED`; not writable shared through a read-only
/// descriptor), `/dev/full` refuses writes with `ENOSPC`, `/dev/urandom`
/// reads random bytes.
pub fn devices(_: &Context) -> TestResult {
    use aspen_sys::mem::{self, MapFlags, Prot, PAGE_SIZE};
    let open = |path, flags| fs::open(path, flags, 0).map_err(|e| format!("open {path:?}: {e}"));
    let mut buf = [0xaau8; 64];
    let null = open(c"/dev/null", OpenFlags::RDWR)?;
    ensure!(fs::read(null, &mut buf) == Ok(0), "read of /dev/null");
    ensure!(fs::write(null, &buf) == Ok(64), "write to /dev/null");
    fs::close(null).map_err(|e| format!("close: {e}"))?;
    let full = open(c"/dev/full", OpenFlags::RDWR)?;
    expect_errno("write to /dev/full", fs::write(full, &buf), Errno::ENOSPC)?;
    ensure!(fs::read(full, &mut buf) == Ok(64) && buf.iter().all(|&b| b == 0), "read of /dev/full");
    fs::close(full).map_err(|e| format!("close: {e}"))?;
    let random = open(c"/dev/urandom", OpenFlags::RDONLY)?;
    ensure!(fs::read(random, &mut buf) == Ok(64) && buf.iter().any(|&b| b != 0), "read of /dev/urandom");
    fs::close(random).map_err(|e| format!("close: {e}"))?;
    buf.fill(0xaa);
    let zero = open(c"/dev/zero", OpenFlags::RDWR)?;
    ensure!(fs::read(zero, &mut buf) == Ok(64) && buf.iter().all(|&b| b == 0), "read of /dev/zero");
    let rw = Prot::READ.union(Prot::WRITE);
    // SAFETY: a new mapping at an address the kernel picks.
    let shared = unsafe { mem::mmap(0, PAGE_SIZE, rw, MapFlags::SHARED, zero, 0) }
        .map_err(|e| format!("mmap shared /dev/zero: {e}"))?;
    fs::close(zero).map_err(|e| format!("close: {e}"))?;
    // SAFETY: the page was just mapped readable and writable.
    unsafe { (shared as *mut u8).write_volatile(0) };
    let child = crate::harness::in_child("write the shared page", || {
        // SAFETY: the child inherited the shared mapping.
        unsafe { (shared as *mut u8).write_volatile(42) };
        Ok(())
    });
    child?;
    // SAFETY: still mapped.
    let seen = unsafe { (shared as *mut u8).read_volatile() };
    ensure!(seen == 42, "the child's store in MAP_SHARED /dev/zero: parent sees {seen}");
    // SAFETY: the mapping is ours and nothing refers to it any more.
    unsafe { mem::munmap(shared, PAGE_SIZE) }.map_err(|e| format!("munmap: {e}"))?;
    let ro = open(c"/dev/zero", OpenFlags::RDONLY)?;
    // SAFETY: a new mapping at an address the kernel picks (refused).
    let refused = unsafe { mem::mmap(0, PAGE_SIZE, rw, MapFlags::SHARED, ro, 0) };
    expect_errno("writable MAP_SHARED of read-only /dev/zero", refused, Errno::EACCES)?;
    // SAFETY: a new mapping at an address the kernel picks.
    let private = unsafe { mem::mmap(0, PAGE_SIZE, rw, MapFlags::PRIVATE, ro, 0) }
        .map_err(|e| format!("mmap private /dev/zero: {e}"))?;
    fs::close(ro).map_err(|e| format!("close: {e}"))?;
    // SAFETY: mapped readable and writable just above.
    unsafe { (private as *mut u8).write_volatile(7) };
    // SAFETY: the mapping is ours and nothing refers to it any more.
    unsafe { mem::munmap(private, PAGE_SIZE) }.map_err(|e| format!("munmap: {e}"))
}

/// Credentials: root gives up its effective id (`nobody`) and takes it
/// back through the saved one; as `nobody` mode bits decide what it may
/// open, `faccessat` checks the real ids, `setgroups` is `EPERM`, and
/// `mlock` is bound by `RLIMIT_MEMLOCK` (0: `EPERM`).
pub fn credentials(_: &Context) -> TestResult {
    use aspen_sys::mem::{self, PAGE_SIZE};
    use aspen_sys::process;
    const NOBODY: u32 = 65534;
    const KEEP: u32 = u32::MAX;
    const RLIMIT_MEMLOCK: u32 = 8;
    const FILE: &core::ffi::CStr = c"/tmp/usertests-root-only";
    ensure!(process::ids() == (0, 0, 0, 0), "the suite runs as root: {:?}", process::ids());
    let fd = fs::open(FILE, OpenFlags::CREAT | OpenFlags::RDWR | OpenFlags::TRUNC, 0o600)
        .map_err(|e| format!("create: {e}"))?;
    fs::close(fd).map_err(|e| format!("close: {e}"))?;
    path::fchmodat(AT_FDCWD, FILE, 0o700).map_err(|e| format!("chmod 0700: {e}"))?;
    process::setresuid(KEEP, NOBODY, KEEP).map_err(|e| format!("setresuid: {e}"))?;
    let ids = process::ids();
    let result = (|| {
        ensure!(ids == (0, NOBODY, 0, 0), "ids as nobody: {ids:?}");
        expect_errno("open a 0700 root file", fs::open(FILE, OpenFlags::RDONLY, 0), Errno::EACCES)?;
        path::faccessat(AT_FDCWD, FILE, 4).map_err(|e| format!("faccessat with the real (root) id: {e}"))?;
        expect_errno("chmod of root's file", path::fchmodat(AT_FDCWD, FILE, 0o644), Errno::EPERM)?;
        let exec = process::execve(FILE, &[FILE], &[]);
        ensure!(exec == Errno::EACCES, "execve of root's 0700 file: {exec}");
        expect_errno("setgroups", process::setgroups(&[]), Errno::EPERM)?;
        expect_errno("setresuid to another id", process::setresuid(KEEP, 1, KEEP), Errno::EPERM)?;
        let page = [0u8; 2 * PAGE_SIZE];
        let aligned = (page.as_ptr() as usize).next_multiple_of(PAGE_SIZE);
        mem::mlock(aligned, PAGE_SIZE).map_err(|e| format!("mlock within RLIMIT_MEMLOCK: {e}"))?;
        mem::munlock(aligned, PAGE_SIZE).map_err(|e| format!("munlock: {e}"))?;
        process::setrlimit(RLIMIT_MEMLOCK, 0, 8 << 20).map_err(|e| format!("setrlimit: {e}"))?;
        expect_errno("mlock with RLIMIT_MEMLOCK 0", mem::mlock(aligned, PAGE_SIZE), Errno::EPERM)?;
        expect_errno("raising the hard limit", process::setrlimit(RLIMIT_MEMLOCK, 0, 16 << 20), Errno::EPERM)
    })();
    process::setresuid(KEEP, 0, KEEP).map_err(|e| format!("back to root: {e}"))?;
    path::unlinkat(AT_FDCWD, FILE, 0).map_err(|e| format!("unlink: {e}"))?;
    result
}

/// mount and umount2: a tmpfs over a directory hides what is there until
/// it is unmounted, and its files go with it; an unknown type is `ENODEV`,
/// a directory with nothing mounted `EINVAL`. On Aspen `/sys` has the CPU
/// lists glibc reads.
pub fn mounts(ctx: &Context) -> TestResult {
    const DIR: &core::ffi::CStr = c"/tmp/usertests-mnt";
    let _ = path::unlinkat(AT_FDCWD, c"/tmp/usertests-mnt/under", 0);
    let _ = path::unlinkat(AT_FDCWD, DIR, AT_REMOVEDIR);
    path::mkdirat(AT_FDCWD, DIR, 0o755).map_err(|e| format!("mkdirat: {e}"))?;
    let fd = fs::open(c"/tmp/usertests-mnt/under", OpenFlags::CREAT | OpenFlags::RDWR, 0o644)
        .map_err(|e| format!("create: {e}"))?;
    fs::close(fd).map_err(|e| format!("close: {e}"))?;
    expect_errno("mount of an unknown type", fs::mount(c"none", DIR, c"usertests-nofs"), Errno::ENODEV)?;
    expect_errno("umount2 of a plain directory", path::umount2(DIR, 0), Errno::EINVAL)?;
    fs::mount(c"tmpfs", DIR, c"tmpfs").map_err(|e| format!("mount tmpfs: {e}"))?;
    let result = (|| {
        expect_errno("the covered file", fs::open(c"/tmp/usertests-mnt/under", OpenFlags::RDONLY, 0), Errno::ENOENT)?;
        let fd = fs::open(c"/tmp/usertests-mnt/on-top", OpenFlags::CREAT | OpenFlags::RDWR, 0o644)
            .map_err(|e| format!("create on the tmpfs: {e}"))?;
        fs::write(fd, &[1u8; 5000]).map_err(|e| format!("write: {e}"))?;
        fs::close(fd).map_err(|e| format!("close: {e}"))?;
        expect_errno("rmdir of a mount point", path::unlinkat(AT_FDCWD, DIR, AT_REMOVEDIR), Errno::EBUSY)
    })();
    path::umount2(DIR, 0).map_err(|e| format!("umount2: {e}"))?;
    result?;
    expect_errno("the tmpfs's file", fs::open(c"/tmp/usertests-mnt/on-top", OpenFlags::RDONLY, 0), Errno::ENOENT)?;
    let fd = fs::open(c"/tmp/usertests-mnt/under", OpenFlags::RDONLY, 0).map_err(|e| format!("uncovered: {e}"))?;
    fs::close(fd).map_err(|e| format!("close: {e}"))?;
    path::unlinkat(AT_FDCWD, c"/tmp/usertests-mnt/under", 0).map_err(|e| format!("unlink: {e}"))?;
    path::unlinkat(AT_FDCWD, DIR, AT_REMOVEDIR).map_err(|e| format!("rmdir: {e}"))?;
    if !ctx.linux {
        let mut buf = [0u8; 8];
        let n = fs::read_file(c"/sys/devices/system/cpu/online", &mut buf).map_err(|e| format!("cpu/online: {e}"))?;
        ensure!(buf[..n].starts_with(b"0") && buf[..n].ends_with(b"\n"), "cpu/online: {:?}", &buf[..n]);
    }
    Ok(())
}

/// A file mapped `MAP_SHARED` and then shrunk by `ftruncate`: the pages
/// past the new end are gone from the mapping (an access is SIGBUS), the
/// page before it stays, as Linux.
pub fn truncate_mapped(_: &Context) -> TestResult {
    use aspen_sys::mem::{self, MapFlags, Prot, PAGE_SIZE};
    const FILE: &core::ffi::CStr = c"/tmp/usertests-shrink";
    let fd = fs::open(FILE, OpenFlags::CREAT | OpenFlags::RDWR | OpenFlags::TRUNC, 0o600)
        .map_err(|e| format!("create: {e}"))?;
    let result = (|| {
        path::ftruncate(fd, 2 * PAGE_SIZE as i64).map_err(|e| format!("ftruncate up: {e}"))?;
        let rw = Prot::READ.union(Prot::WRITE);
        // SAFETY: a new mapping at an address the kernel picks.
        let map =
            unsafe { mem::mmap(0, 2 * PAGE_SIZE, rw, MapFlags::SHARED, fd, 0) }.map_err(|e| format!("mmap: {e}"))?;
        let second = (map + PAGE_SIZE) as *mut u8;
        // SAFETY: both pages are mapped and inside the file.
        unsafe {
            (map as *mut u8).write_volatile(1);
            second.write_volatile(2);
        }
        path::ftruncate(fd, PAGE_SIZE as i64).map_err(|e| format!("ftruncate down: {e}"))?;
        // SAFETY: the first page is still inside the file.
        let first = unsafe { (map as *const u8).read_volatile() };
        ensure!(first == 1, "the page before the end: {first}");
        let status = crate::harness::child_status(|| {
            // SAFETY: mapped, but past the end of the file now: SIGBUS.
            let _ = unsafe { second.read_volatile() };
            Ok(())
        })?;
        const SIGBUS: i32 = 7;
        ensure!(status.signal() == Some(SIGBUS), "access past the new end: {status}");
        // SAFETY: the mapping is ours and nothing refers to it any more.
        unsafe { mem::munmap(map, 2 * PAGE_SIZE) }.map_err(|e| format!("munmap: {e}"))
    })();
    fs::close(fd).map_err(|e| format!("close: {e}"))?;
    path::unlinkat(AT_FDCWD, FILE, 0).map_err(|e| format!("unlink: {e}"))?;
    result
}

/// A tmpfs mounted with `size=8k`: 8 KiB of files fit, a byte more is
/// `ENOSPC`, and removing a file gives its space back.
pub fn tmpfs_size(_: &Context) -> TestResult {
    const DIR: &core::ffi::CStr = c"/tmp/usertests-small";
    let _ = path::unlinkat(AT_FDCWD, DIR, AT_REMOVEDIR);
    path::mkdirat(AT_FDCWD, DIR, 0o755).map_err(|e| format!("mkdirat: {e}"))?;
    path::mount_with(c"tmpfs", DIR, c"tmpfs", c"mode=755,size=8k").map_err(|e| format!("mount: {e}"))?;
    let result = (|| {
        let create = OpenFlags::CREAT | OpenFlags::RDWR;
        let fd = fs::open(c"/tmp/usertests-small/a", create, 0o644).map_err(|e| format!("create a: {e}"))?;
        let wrote = fs::write(fd, &[1u8; 8192]);
        fs::close(fd).map_err(|e| format!("close: {e}"))?;
        ensure!(wrote == Ok(8192), "8 KiB into an 8 KiB tmpfs: {wrote:?}");
        let fd = fs::open(c"/tmp/usertests-small/b", create, 0o644).map_err(|e| format!("create b: {e}"))?;
        let full = fs::write(fd, &[2u8; 1]);
        let again = (|| {
            expect_errno("a byte more", full, Errno::ENOSPC)?;
            path::unlinkat(AT_FDCWD, c"/tmp/usertests-small/a", 0).map_err(|e| format!("unlink a: {e}"))?;
            ensure!(fs::write(fd, &[2u8; 100]) == Ok(100), "a write after the space came back");
            Ok(())
        })();
        fs::close(fd).map_err(|e| format!("close: {e}"))?;
        again
    })();
    path::umount2(DIR, 0).map_err(|e| format!("umount2: {e}"))?;
    path::unlinkat(AT_FDCWD, DIR, AT_REMOVEDIR).map_err(|e| format!("rmdir: {e}"))?;
    result
}
