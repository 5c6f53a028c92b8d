//! A copy to or from user memory that faults part-way has exactly the
//! effect the call reports, as on Linux: `read` into a buffer that faults at
//! its first byte is EFAULT and leaves the file offset alone; one that
//! faults later returns the bytes before the fault and moves the offset by
//! exactly those (readv too); `write` from a partly readable buffer writes
//! and reports the readable part (writev too); a /proc file read into a bad
//! buffer loses nothing.

use alloc::vec;

use aspen_sys::fs::{self, OpenFlags, SEEK_CUR, SEEK_SET};
use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::raw::{syscall3, Sysno};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, Context, Ctx, Region, TestResult};
use crate::tests::file::{pattern, FILE_PAGES, SCRATCH_FILE};

/// `read(fd, addr, len)` on a raw address.
fn read_raw(fd: i32, addr: usize, len: usize) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `len` bytes at `addr`, which the
    // test owns (mapped, or not on purpose).
    Errno::result(unsafe { syscall3(Sysno::Read.number(), fd as usize, addr, len) })
}

/// `write(fd, addr, len)` from a raw address.
fn write_raw(fd: i32, addr: usize, len: usize) -> Result<usize, Errno> {
    // SAFETY: the kernel only reads at `addr`.
    Errno::result(unsafe { syscall3(Sysno::Write.number(), fd as usize, addr, len) })
}

/// readv or writev of the (base, length) pairs.
fn vectored(call: Sysno, fd: i32, segments: &[(usize, usize)]) -> Result<usize, Errno> {
    let iov: vec::Vec<[usize; 2]> = segments.iter().map(|&(base, len)| [base, len]).collect();
    // SAFETY: `iov` is a live array of iovecs; the kernel reads or writes
    // only the test's own buffers they name.
    Errno::result(unsafe { syscall3(call.number(), fd as usize, iov.as_ptr() as usize, iov.len()) })
}

/// The file offset of `fd`.
fn offset(fd: i32) -> Result<u64, alloc::string::String> {
    fs::lseek(fd, 0, SEEK_CUR).ctx("lseek(SEEK_CUR)")
}

/// Checks that `len` bytes of `region` from `at` are the scratch file's
/// bytes from `file_offset`.
fn check_pattern(what: &str, region: &Region, at: usize, len: usize, file_offset: usize) -> TestResult {
    for i in 0..len {
        let (got, want) = (region.read(at + i), pattern(file_offset + i));
        ensure!(got == want, "{what}: byte {i} is {got:#x}, expected {want:#x}");
    }
    Ok(())
}

/// A count of a copy that faulted after `exact` bytes: exactly those on
/// Aspen; on Linux at least one and at most those (its copy routines may
/// stop a little short of the fault, which the user-copy contract allows).
fn expect_short(ctx: &Context, what: &str, n: usize, exact: usize) -> TestResult {
    let fits = if ctx.linux { n > 0 && n <= exact } else { n == exact };
    ensure!(fits, "{what} returned {n}, expected the {exact} bytes before the fault");
    Ok(())
}

/// read and readv into buffers that fault at their start or part-way.
pub fn reads(ctx: &Context) -> TestResult {
    let ro = Region::anon(1, Prot::READ, MapFlags::PRIVATE)?;
    // Two pages, the second inaccessible.
    let half = Region::anon(2, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    // SAFETY: page 1 of `half` is only passed to the kernel after this.
    unsafe { mem::mprotect(half.page(1), P, Prot::NONE) }.ctx("mprotect(PROT_NONE)")?;
    let fd = fs::open(SCRATCH_FILE, OpenFlags::RDONLY, 0).ctx("open the scratch file")?;

    expect_errno("read into a read-only page", read_raw(fd, ro.addr, 8), Errno::EFAULT)?;
    ensure!(offset(fd)? == 0, "read that faulted at once moved the offset to {}", offset(fd)?);
    fs::lseek(fd, 100, SEEK_SET).ctx("lseek")?;
    expect_errno("read into an inaccessible page", read_raw(fd, half.page(1), 8), Errno::EFAULT)?;
    ensure!(offset(fd)? == 100, "read that faulted at once moved the offset from 100 to {}", offset(fd)?);

    // From offset 10 so that the fault is not at a file page boundary.
    fs::lseek(fd, 10, SEEK_SET).ctx("lseek")?;
    let n = read_raw(fd, half.addr, 2 * P).ctx("read into a half-accessible buffer")?;
    expect_short(ctx, "read into a buffer whose second page faults", n, P)?;
    ensure!(offset(fd)? == (10 + n) as u64, "offset {} after reading {n} bytes from 10", offset(fd)?);
    check_pattern("bytes read before the fault", &half, 0, n, 10)?;
    let m = read_raw(fd, half.addr, 16).ctx("read after the short read")?;
    ensure!(m == 16, "read after the short read returned {m}");
    check_pattern("the read after the short one", &half, 0, 16, 10 + n)?;

    fs::lseek(fd, 0, SEEK_SET).ctx("lseek")?;
    let crossing = [(half.addr, 100), (half.page(1) - 50, 100), (half.addr, 100)];
    let n = vectored(Sysno::Readv, fd, &crossing).ctx("readv with an iovec crossing into a bad page")?;
    expect_short(ctx, "readv whose second iovec faults after 50 bytes", n, 150)?;
    ensure!(offset(fd)? == n as u64, "offset {} after readv returned {n}", offset(fd)?);
    let at = offset(fd)?;
    let m = vectored(Sysno::Readv, fd, &[(half.addr, 8), (ro.addr, 8)]).ctx("readv, second iovec read-only")?;
    ensure!(m == 8, "readv with a read-only second iovec returned {m}, expected 8");
    ensure!(offset(fd)? == at + 8, "offset {} after readv of 8 bytes from {at}", offset(fd)?);
    expect_errno("readv whose first iovec is read-only", vectored(Sysno::Readv, fd, &[(ro.addr, 8)]), Errno::EFAULT)?;
    ensure!(offset(fd)? == at + 8, "readv that faulted at once moved the offset to {}", offset(fd)?);
    fs::close(fd).ctx("close")
}

/// write and writev from buffers that stop being readable part-way. The
/// scratch file's contents are written back over themselves, so it ends as
/// it began.
pub fn writes(ctx: &Context) -> TestResult {
    let half = Region::anon(2, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    for i in 0..P {
        half.write(i, pattern(i));
    }
    // SAFETY: page 1 of `half` is only passed to the kernel after this.
    unsafe { mem::mprotect(half.page(1), P, Prot::NONE) }.ctx("mprotect(PROT_NONE)")?;
    let fd = fs::open(SCRATCH_FILE, OpenFlags::RDWR, 0).ctx("open the scratch file")?;

    let n = write_raw(fd, half.addr, 2 * P).ctx("write from a half-readable buffer")?;
    expect_short(ctx, "write from a buffer whose second page faults", n, P)?;
    ensure!(offset(fd)? == n as u64, "offset {} after writing {n} bytes", offset(fd)?);
    let at = offset(fd)?;
    expect_errno("write from an inaccessible page", write_raw(fd, half.page(1), 8), Errno::EFAULT)?;
    ensure!(offset(fd)? == at, "write that faulted at once moved the offset from {at} to {}", offset(fd)?);

    fs::lseek(fd, 0, SEEK_SET).ctx("lseek")?;
    let n = vectored(Sysno::Writev, fd, &[(half.addr, 100), (half.addr + 100, P)]).ctx("writev crossing")?;
    expect_short(ctx, "writev whose second iovec faults after its first bytes", n, P)?;
    ensure!(offset(fd)? == n as u64, "offset {} after writev returned {n}", offset(fd)?);
    let at = offset(fd)?;
    expect_errno("writev from an inaccessible page", vectored(Sysno::Writev, fd, &[(half.page(1), 8)]), Errno::EFAULT)?;
    ensure!(offset(fd)? == at, "writev that faulted at once moved the offset from {at} to {}", offset(fd)?);

    let size = fs::fstat(fd).ctx("fstat")?.size;
    ensure!(size == (FILE_PAGES * P) as i64, "the file is {size} bytes after the writes");
    let back = Region::anon(FILE_PAGES, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    fs::lseek(fd, 0, SEEK_SET).ctx("lseek")?;
    let n = read_raw(fd, back.addr, back.len).ctx("read back")?;
    ensure!(n == back.len, "read back {n} bytes");
    check_pattern("the file after the writes", &back, 0, back.len, 0)?;
    fs::close(fd).ctx("close")
}

/// A /proc file read into a bad buffer: EFAULT, and the next read gets the
/// text from its start.
pub fn proc_read(_: &Context) -> TestResult {
    let ro = Region::anon(1, Prot::READ, MapFlags::PRIVATE)?;
    let good = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    let fd = fs::open(c"/proc/self/maps", OpenFlags::RDONLY, 0).ctx("open /proc/self/maps")?;
    expect_errno("read of /proc/self/maps into a read-only page", read_raw(fd, ro.addr, 64), Errno::EFAULT)?;
    ensure!(offset(fd)? == 0, "the failed read moved the offset to {}", offset(fd)?);
    let n = read_raw(fd, good.addr, 64).ctx("read /proc/self/maps")?;
    let first = (0..n).map(|i| good.read(i));
    // The text starts with the first mapping's address: hex digits, '-'.
    let digits = first.clone().take_while(u8::is_ascii_hexdigit).count();
    ensure!(n > digits && digits > 0 && good.read(digits) == b'-', "/proc/self/maps does not start with a range");
    ensure!(offset(fd)? == n as u64, "offset {} after reading {n} bytes", offset(fd)?);
    fs::close(fd).ctx("close")
}
