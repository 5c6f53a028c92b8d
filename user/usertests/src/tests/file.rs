//! File mappings: MAP_SHARED (writes reach the file by msync, munmap and
//! exit; shared across fork) and MAP_PRIVATE (file contents visible, writes
//! private), on files in /tmp.

use alloc::vec;
use alloc::vec::Vec;
use core::ffi::CStr;
use core::fmt;

use aspen_sys::fs::{self, OpenFlags, SEEK_SET};
use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, MsyncFlags, Prot};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, expect_sigsegv, in_child, Context, Ctx, Region, TestResult};

/// The file the shared-mapping test maps.
pub const SHARED_FILE: &CStr = c"/tmp/usertests-shared";
/// The file the private-mapping and madvise tests map.
pub const PRIVATE_FILE: &CStr = c"/tmp/usertests-private";
/// The file the bad-pointer tests read and write.
pub const SCRATCH_FILE: &CStr = c"/tmp/usertests-scratch";
/// Pages in each test file.
pub const FILE_PAGES: usize = 2;
const FILE_LEN: usize = FILE_PAGES * P;
const RW: Prot = Prot::READ.union(Prot::WRITE);

/// The byte at `offset` of a freshly written test file (never 0, period 251
/// so that pages differ).
pub fn pattern(offset: usize) -> u8 {
    (offset % 251) as u8 + 1
}

/// A file the set-up could not create.
pub struct FileSetupError {
    path: &'static CStr,
    what: &'static str,
    errno: Errno,
}

impl fmt::Display for FileSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.what, self.path, self.errno)
    }
}

/// Writes the pattern over the whole file from offset 0 (no allocation: the
/// suite process calls this).
fn write_pattern(fd: i32) -> Result<(), Errno> {
    fs::lseek(fd, 0, SEEK_SET)?;
    let mut chunk = [0u8; 256];
    for start in (0..FILE_LEN).step_by(chunk.len()) {
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = pattern(start + i);
        }
        let mut done = 0;
        while done < chunk.len() {
            done += fs::write(fd, &chunk[done..])?;
        }
    }
    Ok(())
}

/// Creates (or rewrites) a test file: open O_CREAT | O_RDWR, write, close.
fn create(path: &'static CStr) -> Result<(), FileSetupError> {
    let fail = |what, errno| FileSetupError { path, what, errno };
    let fd = fs::open(path, OpenFlags::CREAT | OpenFlags::RDWR, 0o644).map_err(|e| fail("create", e))?;
    let written = write_pattern(fd).map_err(|e| fail("write", e));
    fs::close(fd).map_err(|e| fail("close", e))?;
    written
}

/// Creates the test files; the suite's set-up calls it before the memory
/// baseline, since the files keep their pages.
pub fn create_files() -> Result<(), FileSetupError> {
    [SHARED_FILE, PRIVATE_FILE, SCRATCH_FILE].into_iter().try_for_each(create)
}

/// The file's contents through read() on a new descriptor (one byte more than
/// the expected length is asked for, to see growth).
fn read_back(path: &CStr) -> Result<Vec<u8>, alloc::string::String> {
    let fd = fs::open(path, OpenFlags::RDONLY, 0).ctx("open for read")?;
    let mut buf = vec![0u8; FILE_LEN + 1];
    let n = fs::read_full(fd, &mut buf).ctx("read");
    fs::close(fd).ctx("close")?;
    buf.truncate(n?);
    Ok(buf)
}

/// Checks that `bytes` is the pattern except at the `changed` (offset, value) places.
fn check_contents(what: &str, bytes: &[u8], changed: &[(usize, u8)]) -> TestResult {
    ensure!(bytes.len() == FILE_LEN, "{what}: {} bytes, expected {FILE_LEN}", bytes.len());
    for (off, &b) in bytes.iter().enumerate() {
        let want = changed.iter().find(|(o, _)| *o == off).map_or(pattern(off), |&(_, v)| v);
        ensure!(b == want, "{what}: byte {off} is {b:#x}, expected {want:#x}");
    }
    Ok(())
}

/// Checks a mapping's bytes the same way.
fn check_mapping(what: &str, m: &Region, changed: &[(usize, u8)]) -> TestResult {
    let bytes: Vec<u8> = (0..m.len).map(|off| m.read(off)).collect();
    check_contents(what, &bytes, changed)
}

/// MAP_SHARED: the file's contents are visible; writes through the mapping
/// reach read() after msync(MS_SYNC), after munmap, and after the writing
/// process exits; a child's writes through its inherited mapping reach the
/// parent's. A writable shared mapping of a read-only descriptor is EACCES,
/// at mmap and at mprotect.
pub fn shared_mapping(_: &Context) -> TestResult {
    create(SHARED_FILE).map_err(|e| alloc::format!("{e}"))?;
    let fd = fs::open(SHARED_FILE, OpenFlags::RDWR, 0).ctx("open O_RDWR")?;
    let st = fs::fstat(fd).ctx("fstat")?;
    ensure!(st.size == FILE_LEN as i64, "fstat size {} after writing {FILE_LEN} bytes", st.size);
    let m = Region::file(FILE_PAGES, RW, MapFlags::SHARED, fd)?;
    check_mapping("shared mapping before writing", &m, &[])?;

    m.write(10, 0xE1);
    m.write(P + 20, 0xE2);
    mem::msync(m.addr, m.len, MsyncFlags::SYNC).ctx("msync(MS_SYNC)")?;
    let mut changed = vec![(10, 0xE1), (P + 20, 0xE2)];
    check_contents("read() after msync", &read_back(SHARED_FILE)?, &changed)?;

    in_child("child writing through the inherited mapping", || {
        m.write(30, 0xE3);
        mem::msync(m.addr, m.len, MsyncFlags::SYNC).ctx("msync in the child")
    })?;
    changed.push((30, 0xE3));
    check_mapping("parent's mapping after the child's write", &m, &changed)?;
    check_contents("read() after the child's msync", &read_back(SHARED_FILE)?, &changed)?;

    in_child("child writing and exiting without msync", || {
        let own = Region::file(FILE_PAGES, RW, MapFlags::SHARED, fd)?;
        own.write(50, 0xE5);
        Ok(())
    })?;
    changed.push((50, 0xE5));
    check_contents("read() after a writer exited", &read_back(SHARED_FILE)?, &changed)?;

    m.write(P + 40, 0xE4);
    // SAFETY: `m` is not used after this.
    unsafe { mem::munmap(m.addr, m.len) }.ctx("munmap")?;
    changed.push((P + 40, 0xE4));
    check_contents("read() after munmap", &read_back(SHARED_FILE)?, &changed)?;
    let again = Region::file(FILE_PAGES, Prot::READ, MapFlags::SHARED, fd)?;
    check_mapping("a new shared mapping", &again, &changed)?;
    fs::close(fd).ctx("close")?;

    let ro = fs::open(SHARED_FILE, OpenFlags::RDONLY, 0).ctx("open O_RDONLY")?;
    // SAFETY: no MAP_FIXED: the kernel picks the address (and should refuse).
    let denied = unsafe { mem::mmap(0, FILE_LEN, RW, MapFlags::SHARED, ro, 0) };
    expect_errno("writable MAP_SHARED of an O_RDONLY descriptor", denied, Errno::EACCES)?;
    // Nor can mprotect make a read-only shared mapping of it writable: the
    // store would reach the page cache every reader of the file sees.
    let readable = Region::file(FILE_PAGES, Prot::READ, MapFlags::SHARED, ro)?;
    // SAFETY: only the protection of our own mapping is asked to change.
    let upgrade = unsafe { mem::mprotect(readable.addr, readable.len, RW) };
    expect_errno("mprotect(PROT_WRITE) of a MAP_SHARED O_RDONLY mapping", upgrade, Errno::EACCES)?;
    expect_sigsegv("a store to it after the refused mprotect", || {
        readable.write(10, 0xEE);
        Ok(())
    })?;
    check_contents("read() after the refused store", &read_back(SHARED_FILE)?, &changed)?;
    fs::close(ro).ctx("close")?;
    Ok(())
}

/// MAP_PRIVATE (writable, of a read-only descriptor): the file's contents are
/// visible before writing; writes stay in the mapping (read() and other
/// mappings still see the file), are inherited by a child as copy-on-write,
/// and vanish with the mapping.
pub fn private_mapping(_: &Context) -> TestResult {
    create(PRIVATE_FILE).map_err(|e| alloc::format!("{e}"))?;
    let fd = fs::open(PRIVATE_FILE, OpenFlags::RDONLY, 0).ctx("open O_RDONLY")?;
    let m = Region::file(FILE_PAGES, RW, MapFlags::PRIVATE, fd)?;
    check_mapping("private mapping before writing", &m, &[])?;

    m.write(10, 0xD1);
    m.write(P + 5, 0xD2);
    let mine = [(10, 0xD1), (P + 5, 0xD2)];
    check_mapping("private mapping after writing", &m, &mine)?;
    check_contents("read() after writing a private mapping", &read_back(PRIVATE_FILE)?, &[])?;
    let other = Region::file(FILE_PAGES, Prot::READ, MapFlags::PRIVATE, fd)?;
    check_mapping("a second private mapping", &other, &[])?;

    in_child("child", || {
        check_mapping("child's inherited private mapping", &m, &mine)?;
        m.write(10, 0xD3);
        m.write(20, 0xD4);
        ensure!(m.read(10) == 0xD3, "child lost its own write");
        Ok(())
    })?;
    check_mapping("parent's private mapping after the child's writes", &m, &mine)?;

    // SAFETY: `m` is not used after this.
    unsafe { mem::munmap(m.addr, m.len) }.ctx("munmap")?;
    check_contents("read() after munmap of the private mapping", &read_back(PRIVATE_FILE)?, &[])?;
    let fresh = Region::file(FILE_PAGES, RW, MapFlags::PRIVATE, fd)?;
    check_mapping("a new private mapping", &fresh, &[])?;
    fs::close(fd).ctx("close")?;
    Ok(())
}
