//! `sendfile` end to end: from a file to a pipe and to a file, with and
//! without an offset, short at the end of the file, one pipe's worth per
//! call into a pipe, and its errors in Linux's order.

use alloc::vec::Vec;
use core::ffi::CStr;

use aspen_sys::fd;
use aspen_sys::fs::{self, OpenFlags, AT_FDCWD};
use aspen_sys::path;
use aspen_sys::sendfile::sendfile;
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, make_file, Context, Ctx, TestResult};

const SOURCE: &CStr = c"/tmp/usertests-sendfile-in";
const SINK: &CStr = c"/tmp/usertests-sendfile-out";
const SOURCE_LEN: usize = 100_000;

fn byte_at(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

fn read_exact(fd: i32, n: usize) -> Result<Vec<u8>, alloc::string::String> {
    let mut buf = alloc::vec![0u8; n];
    let got = fs::read_full(fd, &mut buf).ctx("read")?;
    buf.truncate(got);
    Ok(buf)
}

fn position(fd: i32) -> Result<u64, alloc::string::String> {
    fs::lseek(fd, 0, fs::SEEK_CUR).ctx("lseek")
}

/// sendfile from a file to a pipe and to a file, with and without an
/// offset, short at the end of the file, one pipe's worth at a time, and
/// its errors.
pub fn calls(_ctx: &Context) -> TestResult {
    let data: Vec<u8> = (0..SOURCE_LEN).map(byte_at).collect();
    make_file(SOURCE, &data)?;
    let result = sendfile_checks(&data);
    let _ = path::unlinkat(AT_FDCWD, SOURCE, 0);
    let _ = path::unlinkat(AT_FDCWD, SINK, 0);
    result
}

fn sendfile_checks(data: &[u8]) -> TestResult {
    let input = fs::open(SOURCE, OpenFlags::RDONLY, 0).ctx("open source")?;
    let (r, w) = fd::pipe2(OpenFlags::empty()).ctx("pipe2")?;
    // With an offset: it advances, the file's position stays.
    let mut offset = 10i64;
    ensure!(sendfile(w, input, Some(&mut offset), 100) == Ok(100), "sendfile with an offset");
    ensure!(offset == 110 && position(input)? == 0, "offset {offset}, position {}", position(input)?);
    ensure!(read_exact(r, 100)? == data[10..110], "the bytes at the offset");
    // Without: the position advances.
    ensure!(sendfile(w, input, None, 50) == Ok(50), "sendfile at the position");
    ensure!(position(input)? == 50, "position after sendfile: {}", position(input)?);
    ensure!(read_exact(r, 50)? == data[..50], "the bytes at the position");
    ensure!(sendfile(w, input, None, 0) == Ok(0), "a count of 0");
    // To a file, short at the end of the source.
    let out = fs::open(SINK, OpenFlags::CREAT | OpenFlags::RDWR | OpenFlags::TRUNC, 0o644).ctx("open sink")?;
    let mut offset = (SOURCE_LEN - 1000) as i64;
    let n = sendfile(out, input, Some(&mut offset), 5000);
    ensure!(n == Ok(1000) && offset == SOURCE_LEN as i64, "to a file, past the end: {n:?}, offset {offset}");
    ensure!(position(out)? == 1000, "the sink's position moved by what was written");
    fs::lseek(out, 0, fs::SEEK_SET).ctx("lseek")?;
    ensure!(read_exact(out, 2000)? == data[SOURCE_LEN - 1000..], "the sink holds the end of the source");
    ensure!(sendfile(out, input, Some(&mut offset), 10) == Ok(0), "at the end of the source");
    // To a device: /dev/null takes everything.
    let null = fs::open(c"/dev/null", OpenFlags::WRONLY, 0).ctx("open /dev/null")?;
    let mut offset = 0i64;
    let n = sendfile(null, input, Some(&mut offset), 5000);
    fs::close(null).ctx("close")?;
    ensure!(n == Ok(5000) && offset == 5000, "to /dev/null: {n:?}, offset {offset}");
    // Into an empty pipe: what fits (64 KiB), then a full non-blocking pipe is EAGAIN.
    fs::close(r).ctx("close")?;
    fs::close(w).ctx("close")?;
    let (r, w) = fd::pipe2(OpenFlags::NONBLOCK).ctx("pipe2")?;
    let mut offset = 0i64;
    let n = sendfile(w, input, Some(&mut offset), SOURCE_LEN);
    ensure!(n == Ok(65536) && offset == 65536, "into an empty pipe: {n:?}, offset {offset}");
    expect_errno("into a full non-blocking pipe", sendfile(w, input, Some(&mut offset), 10), Errno::EAGAIN)?;
    ensure!(offset == 65536, "a failed sendfile leaves the offset: {offset}");
    ensure!(read_exact(r, 65536)? == data[..65536], "the pipe's bytes");
    // Errors, as Linux orders them.
    let mut bad = -1i64;
    expect_errno("a negative offset", sendfile(w, input, Some(&mut bad), 10), Errno::EINVAL)?;
    expect_errno("offset on a pipe", sendfile(w, r, Some(&mut offset), 10), Errno::ESPIPE)?;
    expect_errno("out not writable", sendfile(r, input, None, 10), Errno::EBADF)?;
    let write_only = fs::open(SINK, OpenFlags::WRONLY, 0).ctx("open O_WRONLY")?;
    expect_errno("in not readable", sendfile(w, write_only, None, 10), Errno::EBADF)?;
    fs::close(write_only).ctx("close")?;
    expect_errno("in not open", sendfile(w, 999, None, 10), Errno::EBADF)?;
    let dir = fs::open(c"/tmp", OpenFlags::RDONLY | OpenFlags::DIRECTORY, 0).ctx("open /tmp")?;
    expect_errno("from a directory", sendfile(w, dir, None, 10), Errno::EINVAL)?;
    fs::close(dir).ctx("close")?;
    let append = fs::open(SINK, OpenFlags::WRONLY | OpenFlags::APPEND, 0).ctx("open O_APPEND")?;
    expect_errno("to an O_APPEND file", sendfile(append, input, None, 10), Errno::EINVAL)?;
    fs::close(append).ctx("close")?;
    for fd in [input, out, r, w] {
        fs::close(fd).ctx("close")?;
    }
    Ok(())
}
