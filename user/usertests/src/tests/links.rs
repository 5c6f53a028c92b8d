//! Symbolic links end to end: `symlinkat`, `readlinkat`, `lstat` and
//! `stat`, the open flags (`O_NOFOLLOW`, `O_CREAT` through a dangling
//! link, `O_CREAT|O_EXCL`), loops (`ELOOP`), ".." after a link, the
//! working directory through a link, hard links of links, `execve`
//! through links. Everything is made under `/tmp` and removed again.

use alloc::vec::Vec;
use core::ffi::CStr;

use aspen_sys::fs::{self, OpenFlags, AT_FDCWD, DT_LNK};
use aspen_sys::links::{self, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW};
use aspen_sys::path::{self, AT_REMOVEDIR};
use aspen_sys::process::{self, Fork};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, make_file, Context, Ctx, TestResult};

const TOP: &CStr = c"/tmp/usertests-links";
const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;

/// Removes what a test made under [`TOP`] (names from `names`, deepest
/// first), ignoring what is not there.
fn clean(names: &[&CStr]) {
    for name in names {
        if path::unlinkat(AT_FDCWD, name, 0) == Err(Errno::EISDIR) {
            let _ = path::unlinkat(AT_FDCWD, name, AT_REMOVEDIR);
        }
    }
    let _ = path::unlinkat(AT_FDCWD, TOP, AT_REMOVEDIR);
}

fn readlink(name: &CStr) -> Result<Vec<u8>, Errno> {
    let mut buf = [0u8; 256];
    let n = path::readlinkat(AT_FDCWD, name, &mut buf)?;
    Ok(buf[..n].to_vec())
}

fn kind(st: &fs::Stat) -> u32 {
    st.mode & S_IFMT
}

const BASIC_NAMES: &[&CStr] = &[
    c"/tmp/usertests-links/f",
    c"/tmp/usertests-links/l",
    c"/tmp/usertests-links/long",
    c"/tmp/usertests-links/dangling",
    c"/tmp/usertests-links/new",
    c"/tmp/usertests-links/loop",
    c"/tmp/usertests-links/hard-link",
    c"/tmp/usertests-links/hard-file",
    c"/tmp/usertests-links/a/x",
    c"/tmp/usertests-links/a/b",
    c"/tmp/usertests-links/a",
    c"/tmp/usertests-links/to-b",
    c"/tmp/usertests-links/locked/new",
    c"/tmp/usertests-links/locked",
    INTO_LOCKED,
];

/// A link in sticky, world-writable /tmp into a directory only root may
/// write.
const INTO_LOCKED: &CStr = c"/tmp/usertests-into-locked";

/// symlinkat, readlinkat, lstat/stat, the open flags, loops, mkdirat and
/// linkat on links, getdents64's DT_LNK.
pub fn basics(_ctx: &Context) -> TestResult {
    clean(BASIC_NAMES);
    path::mkdirat(AT_FDCWD, TOP, 0o755).ctx("mkdirat")?;
    make_file(c"/tmp/usertests-links/f", b"hello")?;
    links::symlinkat(c"f", AT_FDCWD, c"/tmp/usertests-links/l").ctx("symlinkat")?;
    ensure!(readlink(c"/tmp/usertests-links/l") == Ok(b"f".to_vec()), "readlink l");
    // Cut to the buffer, without a NUL.
    links::symlinkat(c"a-long-target", AT_FDCWD, c"/tmp/usertests-links/long").ctx("symlinkat long")?;
    let mut small = [b'#'; 6];
    let n = path::readlinkat(AT_FDCWD, c"/tmp/usertests-links/long", &mut small[..4]);
    ensure!(n == Ok(4) && &small == b"a-lo##", "readlink into 4 bytes: {n:?} {small:?}");
    expect_errno("readlink of a file", readlink(c"/tmp/usertests-links/f"), Errno::EINVAL)?;
    expect_errno("readlink of nothing", readlink(c"/tmp/usertests-links/none"), Errno::ENOENT)?;
    expect_errno(
        "readlink into 0 bytes",
        path::readlinkat(AT_FDCWD, c"/tmp/usertests-links/l", &mut []),
        Errno::EINVAL,
    )?;
    let lst = links::fstatat(AT_FDCWD, c"/tmp/usertests-links/l", AT_SYMLINK_NOFOLLOW).ctx("lstat")?;
    ensure!(lst.mode == S_IFLNK | 0o777 && lst.size == 1, "lstat of a link: mode {:o} size {}", lst.mode, lst.size);
    let st = links::fstatat(AT_FDCWD, c"/tmp/usertests-links/l", 0).ctx("stat")?;
    ensure!(kind(&st) == S_IFREG && st.size == 5, "stat through a link: mode {:o} size {}", st.mode, st.size);
    expect_errno("symlinkat over a name", links::symlinkat(c"x", AT_FDCWD, c"/tmp/usertests-links/f"), Errno::EEXIST)?;
    expect_errno("symlinkat, empty target", links::symlinkat(c"", AT_FDCWD, c"/tmp/usertests-links/e"), Errno::ENOENT)?;
    expect_errno("mkdirat over a link", path::mkdirat(AT_FDCWD, c"/tmp/usertests-links/l", 0o755), Errno::EEXIST)?;

    // Open flags.
    expect_errno(
        "O_NOFOLLOW on a link",
        fs::open(c"/tmp/usertests-links/l", OpenFlags::RDONLY | OpenFlags::NOFOLLOW, 0),
        Errno::ELOOP,
    )?;
    let fd = fs::open(c"/tmp/usertests-links/f", OpenFlags::RDONLY | OpenFlags::NOFOLLOW, 0).ctx("O_NOFOLLOW file")?;
    fs::close(fd).ctx("close")?;
    links::symlinkat(c"new", AT_FDCWD, c"/tmp/usertests-links/dangling").ctx("symlinkat dangling")?;
    expect_errno(
        "open a dangling link",
        fs::open(c"/tmp/usertests-links/dangling", OpenFlags::RDONLY, 0),
        Errno::ENOENT,
    )?;
    expect_errno(
        "faccessat of a dangling link",
        path::faccessat(AT_FDCWD, c"/tmp/usertests-links/dangling", 0),
        Errno::ENOENT,
    )?;
    expect_errno(
        "O_CREAT|O_EXCL on a dangling link",
        fs::open(c"/tmp/usertests-links/dangling", OpenFlags::CREAT | OpenFlags::EXCL | OpenFlags::RDWR, 0o600),
        Errno::EEXIST,
    )?;
    let fd = fs::open(c"/tmp/usertests-links/dangling", OpenFlags::CREAT | OpenFlags::RDWR, 0o600)
        .ctx("O_CREAT through a dangling link")?;
    fs::close(fd).ctx("close")?;
    let made = links::fstatat(AT_FDCWD, c"/tmp/usertests-links/new", AT_SYMLINK_NOFOLLOW).ctx("stat new")?;
    ensure!(made.mode == S_IFREG | 0o600, "the link's target was made: mode {:o}", made.mode);

    // Loops.
    links::symlinkat(c"loop", AT_FDCWD, c"/tmp/usertests-links/loop").ctx("symlinkat loop")?;
    expect_errno("open a loop", fs::open(c"/tmp/usertests-links/loop", OpenFlags::RDONLY, 0), Errno::ELOOP)?;
    expect_errno("stat a loop", links::fstatat(AT_FDCWD, c"/tmp/usertests-links/loop/x", 0), Errno::ELOOP)?;
    links::fstatat(AT_FDCWD, c"/tmp/usertests-links/loop", AT_SYMLINK_NOFOLLOW).ctx("lstat a loop")?;

    // Hard links: of the link itself, or with AT_SYMLINK_FOLLOW of its target.
    path::linkat(AT_FDCWD, c"/tmp/usertests-links/l", AT_FDCWD, c"/tmp/usertests-links/hard-link", 0).ctx("linkat")?;
    let hard = links::fstatat(AT_FDCWD, c"/tmp/usertests-links/hard-link", AT_SYMLINK_NOFOLLOW).ctx("lstat")?;
    ensure!(kind(&hard) == S_IFLNK && hard.ino == lst.ino, "linkat without AT_SYMLINK_FOLLOW links the link");
    let follow = AT_SYMLINK_FOLLOW;
    path::linkat(AT_FDCWD, c"/tmp/usertests-links/l", AT_FDCWD, c"/tmp/usertests-links/hard-file", follow)
        .ctx("linkat AT_SYMLINK_FOLLOW")?;
    let hard = links::fstatat(AT_FDCWD, c"/tmp/usertests-links/hard-file", AT_SYMLINK_NOFOLLOW).ctx("lstat")?;
    ensure!(kind(&hard) == S_IFREG && hard.nlink == 2, "AT_SYMLINK_FOLLOW links the file: nlink {}", hard.nlink);

    // getdents64 says DT_LNK.
    let dir = fs::open(TOP, OpenFlags::RDONLY | OpenFlags::DIRECTORY, 0).ctx("open dir")?;
    let mut buf = [0u8; 1024];
    let n = fs::getdents64(dir, &mut buf).ctx("getdents64")?;
    fs::close(dir).ctx("close")?;
    let entry = fs::DirEntries::new(&buf[..n]).find(|e| e.name == b"l").map(|e| e.kind);
    ensure!(entry == Some(DT_LNK), "d_type of a link: {entry:?}");

    // ".." after a link is the parent of its target.
    path::mkdirat(AT_FDCWD, c"/tmp/usertests-links/a", 0o755).ctx("mkdirat a")?;
    path::mkdirat(AT_FDCWD, c"/tmp/usertests-links/a/b", 0o755).ctx("mkdirat a/b")?;
    make_file(c"/tmp/usertests-links/a/x", b"x")?;
    links::symlinkat(c"a/b", AT_FDCWD, c"/tmp/usertests-links/to-b").ctx("symlinkat to-b")?;
    let fd = fs::open(c"/tmp/usertests-links/to-b/../x", OpenFlags::RDONLY, 0).ctx("open to-b/../x")?;
    fs::close(fd).ctx("close")?;
    let dir = links::fstatat(AT_FDCWD, c"/tmp/usertests-links/to-b/", AT_SYMLINK_NOFOLLOW).ctx("lstat to-b/")?;
    ensure!(kind(&dir) == S_IFDIR, "a trailing slash follows the link even for lstat");
    // The working directory is where the link leads.
    path::chdir(c"/tmp/usertests-links/to-b").ctx("chdir to-b")?;
    let mut cwd = [0u8; 128];
    let n = path::getcwd(&mut cwd).ctx("getcwd")?;
    let expected: &[u8] = b"/tmp/usertests-links/a/b";
    ensure!(&cwd[..n] == expected, "getcwd through a link: {:?}", core::str::from_utf8(&cwd[..n]));
    path::chdir(c"..").ctx("chdir ..")?;
    let n = path::getcwd(&mut cwd).ctx("getcwd")?;
    ensure!(&cwd[..n] == b"/tmp/usertests-links/a", "getcwd after ..: {:?}", core::str::from_utf8(&cwd[..n]));
    path::chdir(c"/").ctx("chdir /")?;

    // O_CREAT through a link needs write permission where the file goes,
    // not where the link is.
    path::mkdirat(AT_FDCWD, c"/tmp/usertests-links/locked", 0o755).ctx("mkdirat locked")?;
    links::symlinkat(c"/tmp/usertests-links/locked/new", AT_FDCWD, INTO_LOCKED).ctx("symlinkat into-locked")?;
    const KEEP: u32 = u32::MAX;
    process::setresuid(KEEP, 65534, KEEP).ctx("setresuid")?;
    let created = fs::open(INTO_LOCKED, OpenFlags::CREAT | OpenFlags::WRONLY, 0o644);
    process::setresuid(KEEP, 0, KEEP).ctx("back to root")?;
    expect_errno("O_CREAT through a link into a directory not writable", created, Errno::EACCES)?;
    expect_errno("nothing made there", links::fstatat(AT_FDCWD, c"/tmp/usertests-links/locked/new", 0), Errno::ENOENT)?;

    // unlink removes the link, not its target.
    path::unlinkat(AT_FDCWD, c"/tmp/usertests-links/l", 0).ctx("unlink l")?;
    links::fstatat(AT_FDCWD, c"/tmp/usertests-links/f", 0).ctx("stat f after unlink l")?;
    clean(BASIC_NAMES);
    Ok(())
}

const EXEC_DIR: &CStr = c"/tmp/usertests-links-exec";

/// Runs `path` with `argv` as its argv and its environment: usertests
/// `--child-argv` exits 0 when they are equal, so argv[0] is checked to
/// be the name it was started by.
fn run_via(path: &CStr, argv: &[&CStr]) -> TestResult {
    let pid = match process::fork().ctx("fork")? {
        Fork::Child => {
            let e = process::execve(path, argv, argv);
            aspen_sys::println!("usertests: execve {path:?}: {e}");
            process::exit_group(127)
        }
        Fork::Parent(pid) => pid,
    };
    let (_, status) = process::wait4(pid, 0).ctx("wait4")?;
    ensure!(status.success(), "execve {path:?} {argv:?}: {status}");
    Ok(())
}

/// execve through a link and a chain of links (argv[0] is the link's
/// name), and of a loop (`ELOOP`).
pub fn exec(ctx: &Context) -> TestResult {
    let names =
        [c"/tmp/usertests-links-exec/run", c"/tmp/usertests-links-exec/again", c"/tmp/usertests-links-exec/loop"];
    for name in names {
        let _ = path::unlinkat(AT_FDCWD, name, 0);
    }
    let _ = path::unlinkat(AT_FDCWD, EXEC_DIR, AT_REMOVEDIR);
    path::mkdirat(AT_FDCWD, EXEC_DIR, 0o755).ctx("mkdirat")?;
    links::symlinkat(ctx.exe, AT_FDCWD, names[0]).ctx("symlinkat run")?;
    links::symlinkat(c"run", AT_FDCWD, names[1]).ctx("symlinkat again")?;
    links::symlinkat(c"loop", AT_FDCWD, names[2]).ctx("symlinkat loop")?;
    let marker = crate::tests::script::CHILD_ARGV;
    let result = run_via(names[0], &[names[0], marker, c"x"])
        .and_then(|()| run_via(names[1], &[c"again", marker]))
        .and_then(|()| {
            expect_errno("execve of a loop", Err::<(), _>(process::execve(names[2], &[names[2]], &[])), Errno::ELOOP)
        });
    for name in names {
        let _ = path::unlinkat(AT_FDCWD, name, 0);
    }
    path::unlinkat(AT_FDCWD, EXEC_DIR, AT_REMOVEDIR).ctx("rmdir")?;
    result
}
