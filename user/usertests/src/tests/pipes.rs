//! Pipes, descriptor duplication and `ppoll`, as Linux does them: a round
//! trip (and readv/writev, fstat, lseek), end of file once the writer is
//! gone, `SIGPIPE` death of a writer without reader, `O_NONBLOCK` both
//! ways, atomic `PIPE_BUF` writes from two writers, a blocked reader woken
//! by a writer process, `dup`/`dup3`/`fcntl` errors and flags,
//! close-on-exec across `execve`, `ppoll` (timeouts, `POLLIN`, `POLLHUP`,
//! `POLLERR`, `POLLNVAL`), `pselect6` and free memory back after full pipes
//! close.

use alloc::vec;
use alloc::vec::Vec;
use core::ffi::CStr;

use aspen_sys::fd::{self, PollEvents, PollFd, FD_CLOEXEC, PIPE_BUF};
use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::process::{self, Fork};
use aspen_sys::raw::{syscall2, syscall3, syscall5, syscall6, Sysno};
use aspen_sys::{time, Errno};

use crate::ensure;
use crate::harness::{child_status, expect_errno, join, spawn, Context, Ctx, TestResult};
use crate::procfs::memfree;

const F_DUPFD: u32 = 0;
const F_GETFD: u32 = 1;
const F_SETFD: u32 = 2;
const F_GETFL: u32 = 3;
const F_SETFL: u32 = 4;
const F_DUPFD_CLOEXEC: u32 = 1030;
/// No descriptor limit reaches this (Linux's `nr_open` is at most 2^20).
const BEYOND_ANY_LIMIT: usize = 0x7fff_ffff;
/// `SIGPIPE`.
const SIGPIPE: i32 = 13;
/// `S_IFMT` and `S_IFIFO`.
const S_IFMT: u32 = 0o170000;
const S_IFIFO: u32 = 0o010000;
/// The flags `F_GETFL` reports that these tests look at.
const INTERESTING: usize = (OpenFlags::ACCESS_MODE | OpenFlags::APPEND.bits() | OpenFlags::NONBLOCK.bits()) as usize;

/// A pipe, both ends.
fn pipe(flags: OpenFlags) -> Result<(i32, i32), alloc::string::String> {
    fd::pipe2(flags).ctx("pipe2")
}

/// Closes every descriptor in `fds`.
fn close_all(fds: &[i32]) -> TestResult {
    for &fd in fds {
        fs::close(fd).ctx("close")?;
    }
    Ok(())
}

/// Reads exactly `len` bytes (or until end of file).
fn read_exactly(fd: i32, len: usize) -> Result<Vec<u8>, alloc::string::String> {
    let mut data = vec![0u8; len];
    let n = fs::read_full(fd, &mut data).ctx("read")?;
    data.truncate(n);
    Ok(data)
}

/// readv or writev over `segments` (base, length).
fn vectored(call: Sysno, fd: i32, segments: &[(usize, usize)]) -> Result<usize, Errno> {
    let iov: Vec<[usize; 2]> = segments.iter().map(|&(base, len)| [base, len]).collect();
    // SAFETY: `iov` is a live array of iovecs naming the test's own buffers.
    Errno::result(unsafe { syscall3(call.number(), fd as usize, iov.as_ptr() as usize, iov.len()) })
}

/// The lowest free descriptor, found by duplicating stdin and closing the copy.
fn lowest_free() -> Result<i32, alloc::string::String> {
    let fd = fd::dup(0).ctx("dup(0)")?;
    fs::close(fd).ctx("close")?;
    Ok(fd)
}

pub fn round_trip(_ctx: &Context) -> TestResult {
    let (r, w) = pipe(OpenFlags::empty())?;
    ensure!(fs::write(w, b"hello, pipe").ctx("write")? == 11, "short write");
    let mut buf = [0u8; 64];
    let n = fs::read(r, &mut buf).ctx("read")?;
    ensure!(&buf[..n] == b"hello, pipe", "read back {:?}", &buf[..n]);

    // writev in, readv out, across iovec boundaries.
    let (a, b) = (*b"abc", *b"defgh");
    let n = vectored(Sysno::Writev, w, &[(a.as_ptr() as usize, 3), (b.as_ptr() as usize, 5)]).ctx("writev")?;
    ensure!(n == 8, "writev wrote {n}");
    let (mut x, mut y) = ([0u8; 2], [0u8; 10]);
    let n = vectored(Sysno::Readv, r, &[(x.as_mut_ptr() as usize, 2), (y.as_mut_ptr() as usize, 10)]).ctx("readv")?;
    ensure!(n == 8 && &x == b"ab" && &y[..6] == b"cdefgh", "readv: {n} bytes, {x:?} {y:?}");

    let st = fs::fstat(r).ctx("fstat")?;
    ensure!(st.mode & S_IFMT == S_IFIFO, "fstat of a pipe: mode {:o}", st.mode);
    ensure!(fs::fstat(w).ctx("fstat")?.ino == st.ino, "the two ends have different inodes");
    expect_errno("lseek on a pipe", fs::lseek(r, 0, fs::SEEK_CUR), Errno::ESPIPE)?;
    expect_errno("write to the read end", fs::write(r, b"x"), Errno::EBADF)?;
    expect_errno("read from the write end", fs::read(w, &mut buf), Errno::EBADF)?;
    ensure!(fd::fcntl(r, F_GETFL, 0).ctx("F_GETFL")? == 0, "F_GETFL of the read end is not O_RDONLY");
    ensure!(fd::fcntl(w, F_GETFL, 0).ctx("F_GETFL")? == 1, "F_GETFL of the write end is not O_WRONLY");
    ensure!(fs::write(w, b"").ctx("empty write")? == 0, "an empty write wrote");
    ensure!(fs::read(r, &mut buf[..0]).ctx("empty read")? == 0, "an empty read read");

    // End of file once the only writer is gone, after the data.
    fs::write(w, b"last").ctx("write")?;
    fs::close(w).ctx("close")?;
    ensure!(read_exactly(r, 10)? == b"last", "data written before the close was lost");
    ensure!(fs::read(r, &mut buf).ctx("read at EOF")? == 0, "no end of file after the writer closed");
    fs::close(r).ctx("close")?;

    // Bad flags and a bad pointer leave no descriptor behind.
    let free = lowest_free()?;
    expect_errno("pipe2(O_APPEND)", fd::pipe2(OpenFlags::APPEND), Errno::EINVAL)?;
    // SAFETY: the kernel must refuse the unmapped address; nothing is written.
    let ret = unsafe { syscall2(Sysno::Pipe2.number(), 8, 0) };
    expect_errno("pipe2 to an unmapped address", Errno::result(ret), Errno::EFAULT)?;
    ensure!(lowest_free()? == free, "a failed pipe2 left descriptors open");
    Ok(())
}

pub fn sigpipe(_ctx: &Context) -> TestResult {
    let status = child_status(|| {
        let (r, w) = pipe(OpenFlags::empty())?;
        fs::close(r).ctx("close")?;
        let result = fs::write(w, b"nobody reads this");
        Err(alloc::format!("the write without reader returned {result:?} instead of killing"))
    })?;
    ensure!(status.signal() == Some(SIGPIPE), "a writer without reader ended with {status}, expected signal=13");

    // The write end reports POLLERR once the reader is gone.
    let (r, w) = pipe(OpenFlags::empty())?;
    fs::close(r).ctx("close")?;
    let mut entries = [PollFd::new(w, PollEvents::OUT)];
    let n = fd::ppoll(&mut entries, Some(0)).ctx("ppoll")?;
    ensure!(n == 1 && entries[0].revents().contains(PollEvents::ERR), "no POLLERR: {:?}", entries[0].revents());
    fs::close(w).ctx("close")
}

pub fn nonblocking(_ctx: &Context) -> TestResult {
    let (r, w) = pipe(OpenFlags::NONBLOCK)?;
    ensure!(fd::fcntl(r, F_GETFL, 0).ctx("F_GETFL")? & INTERESTING == OpenFlags::NONBLOCK.bits() as usize, "F_GETFL");
    let mut buf = vec![0u8; 100_000];
    expect_errno("read of an empty O_NONBLOCK pipe", fs::read(r, &mut buf), Errno::EAGAIN)?;
    // A large write takes what fits: 64 KiB.
    let n = fs::write(w, &buf).ctx("large write")?;
    ensure!(n == 65536, "a write into an empty pipe took {n} bytes, expected 65536");
    expect_errno("write to a full pipe", fs::write(w, b"x"), Errno::EAGAIN)?;
    expect_errno("PIPE_BUF write to a full pipe", fs::write(w, &buf[..PIPE_BUF]), Errno::EAGAIN)?;
    let mut entries = [PollFd::new(w, PollEvents::OUT)];
    ensure!(fd::ppoll(&mut entries, Some(0)).ctx("ppoll")? == 0, "a full pipe polls writable");
    ensure!(read_exactly(r, PIPE_BUF)?.len() == PIPE_BUF, "short read");
    ensure!(fd::ppoll(&mut entries, Some(0)).ctx("ppoll")? == 1, "a pipe with a page of room is not writable");
    ensure!(fs::write(w, &buf[..PIPE_BUF]).ctx("write")? == PIPE_BUF, "short write");
    // Drain it; then blocking again through F_SETFL on the read end only.
    let mut total = 0;
    while total < 65536 {
        total += fs::read(r, &mut buf).ctx("read")?;
    }
    expect_errno("read of the drained pipe", fs::read(r, &mut buf), Errno::EAGAIN)?;
    fd::fcntl(r, F_SETFL, 0).ctx("F_SETFL")?;
    ensure!(fd::fcntl(r, F_GETFL, 0).ctx("F_GETFL")? & INTERESTING == 0, "F_SETFL did not clear O_NONBLOCK");
    ensure!(fd::fcntl(w, F_GETFL, 0).ctx("F_GETFL")? & INTERESTING == 1 | 0o4000, "the other end changed too");
    close_all(&[r, w])
}

/// A writer child writes after a pause; the parent, blocked in read,
/// wakes with the data.
pub fn blocking_read_woken(_ctx: &Context) -> TestResult {
    let (r, w) = pipe(OpenFlags::empty())?;
    let writer = spawn(|| {
        fs::close(r).ctx("close")?;
        time::sleep_ms(50).ctx("sleep")?;
        ensure!(fs::write(w, b"wake up").ctx("write")? == 7, "short write");
        Ok(())
    })?;
    fs::close(w).ctx("close")?;
    let start = time::counter();
    let mut buf = [0u8; 16];
    let n = fs::read(r, &mut buf).ctx("blocking read")?;
    let waited_ms = (time::counter() - start) * 1000 / time::counter_frequency().max(1);
    ensure!(&buf[..n] == b"wake up", "read {:?}", &buf[..n]);
    ensure!(waited_ms >= 20, "the read returned after {waited_ms} ms: it did not wait for the writer");
    join(writer, "writer")?;
    ensure!(fs::read(r, &mut buf).ctx("read at EOF")? == 0, "no EOF after the writer exited");
    fs::close(r).ctx("close")
}

/// Two children write 4096-byte blocks of their own letter through one pipe
/// that is smaller than what they write, one with write, the other with a
/// writev of two halves: every block arrives whole.
pub fn atomic_writes(_ctx: &Context) -> TestResult {
    const BLOCKS: usize = 32;
    let (r, w) = pipe(OpenFlags::empty())?;
    let writer = |letter: u8| {
        move || {
            fs::close(r).ctx("close")?;
            let block = [letter; PIPE_BUF];
            let halves =
                [(block.as_ptr() as usize, PIPE_BUF / 2), (block.as_ptr() as usize + PIPE_BUF / 2, PIPE_BUF / 2)];
            for _ in 0..BLOCKS {
                let n = if letter == b'a' {
                    fs::write(w, &block).ctx("write")?
                } else {
                    vectored(Sysno::Writev, w, &halves).ctx("writev")?
                };
                ensure!(n == PIPE_BUF, "a PIPE_BUF write was split");
            }
            Ok(())
        }
    };
    let a = spawn(writer(b'a'))?;
    let b = spawn(writer(b'b'))?;
    fs::close(w).ctx("close")?;
    let mut data = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        match fs::read(r, &mut buf).ctx("read")? {
            0 => break,
            n => data.extend_from_slice(&buf[..n]),
        }
    }
    join(a, "writer a")?;
    join(b, "writer b")?;
    ensure!(data.len() == 2 * BLOCKS * PIPE_BUF, "read {} bytes, expected {}", data.len(), 2 * BLOCKS * PIPE_BUF);
    for (i, block) in data.chunks(PIPE_BUF).enumerate() {
        ensure!(block.iter().all(|&c| c == block[0]), "block {i} mixes the writers' bytes");
    }
    let count_a = data.chunks(PIPE_BUF).filter(|b| b[0] == b'a').count();
    ensure!(count_a == BLOCKS, "{count_a} blocks of a, expected {BLOCKS}");
    fs::close(r).ctx("close")
}

pub fn dup_fcntl(_ctx: &Context) -> TestResult {
    let (r, w) = pipe(OpenFlags::empty())?;
    let free = lowest_free()?;
    let d = fd::dup(w).ctx("dup")?;
    ensure!(d == free, "dup gave {d}, the lowest free descriptor is {free}");
    expect_errno("dup of a closed descriptor", fd::dup(BEYOND_ANY_LIMIT as i32), Errno::EBADF)?;
    expect_errno("dup3 onto itself", fd::dup3(w, w, OpenFlags::empty()), Errno::EINVAL)?;
    expect_errno("dup3 with O_NONBLOCK", fd::dup3(w, d, OpenFlags::NONBLOCK), Errno::EINVAL)?;
    expect_errno("dup3 beyond the limit", fd::dup3(w, BEYOND_ANY_LIMIT as i32, OpenFlags::empty()), Errno::EBADF)?;
    expect_errno(
        "dup3 of a closed descriptor",
        fd::dup3(BEYOND_ANY_LIMIT as i32, d, OpenFlags::empty()),
        Errno::EBADF,
    )?;
    expect_errno("F_DUPFD beyond the limit", fd::fcntl(w, F_DUPFD, BEYOND_ANY_LIMIT), Errno::EINVAL)?;
    expect_errno("unknown fcntl command", fd::fcntl(w, 9999, 0), Errno::EINVAL)?;
    expect_errno("unknown command, closed descriptor", fd::fcntl(BEYOND_ANY_LIMIT as i32, 9999, 0), Errno::EBADF)?;

    // F_DUPFD: the lowest free at or above the argument.
    let high = fd::fcntl(w, F_DUPFD, 40).ctx("F_DUPFD")? as i32;
    ensure!(high == 40, "F_DUPFD(40) gave {high}");
    let next = fd::fcntl(w, F_DUPFD, 40).ctx("F_DUPFD")? as i32;
    ensure!(next == 41, "F_DUPFD(40) with 40 taken gave {next}");
    // Close-on-exec is per descriptor.
    let cloexec = fd::fcntl(w, F_DUPFD_CLOEXEC, 0).ctx("F_DUPFD_CLOEXEC")? as i32;
    ensure!(fd::fcntl(cloexec, F_GETFD, 0).ctx("F_GETFD")? == FD_CLOEXEC as usize, "F_DUPFD_CLOEXEC not cloexec");
    ensure!(fd::fcntl(w, F_GETFD, 0).ctx("F_GETFD")? == 0, "the original became cloexec");
    fd::fcntl(cloexec, F_SETFD, 0).ctx("F_SETFD")?;
    ensure!(fd::fcntl(cloexec, F_GETFD, 0).ctx("F_GETFD")? == 0, "F_SETFD(0) did not clear it");
    ensure!(fd::dup3(w, 50, OpenFlags::CLOEXEC).ctx("dup3")? == 50, "dup3 returned another descriptor");
    ensure!(fd::fcntl(50, F_GETFD, 0).ctx("F_GETFD")? == FD_CLOEXEC as usize, "dup3(O_CLOEXEC) not cloexec");
    let plain = fd::dup(50).ctx("dup")?;
    ensure!(fd::fcntl(plain, F_GETFD, 0).ctx("F_GETFD")? == 0, "dup copied close-on-exec");

    // Status flags belong to the description: every duplicate sees them;
    // the access mode does not change.
    fd::fcntl(d, F_SETFL, (OpenFlags::NONBLOCK | OpenFlags::RDWR).bits() as usize).ctx("F_SETFL")?;
    for fd in [w, d, high, 50] {
        let flags = fd::fcntl(fd, F_GETFL, 0).ctx("F_GETFL")?;
        ensure!(flags & INTERESTING == 1 | 0o4000, "fd {fd}: F_GETFL {flags:#o} after F_SETFL(O_NONBLOCK|O_RDWR)");
    }
    ensure!(fd::fcntl(r, F_GETFL, 0).ctx("F_GETFL")? & INTERESTING == 0, "the read end changed too");

    // dup3 onto an open descriptor closes what it named.
    let (r2, w2) = pipe(OpenFlags::empty())?;
    ensure!(fd::dup3(w, r2, OpenFlags::empty()).ctx("dup3")? == r2, "dup3 returned another descriptor");
    ensure!(fs::write(r2, b"via r2").ctx("write through the replaced descriptor")? == 6, "short write");
    ensure!(read_exactly(r, 6)? == b"via r2", "the data did not reach the first pipe");
    // The second pipe's read end is gone: its write end polls POLLERR.
    let mut entries = [PollFd::new(w2, PollEvents::OUT)];
    fd::ppoll(&mut entries, Some(0)).ctx("ppoll")?;
    ensure!(entries[0].revents().contains(PollEvents::ERR), "the replaced read end is still open");
    close_all(&[r, w, d, high, next, cloexec, 50, plain, r2, w2])
}

/// `usertests --child-fds A B ...`: exits with bit i set when descriptor
/// argument i is open.
pub const CHILD_FDS: &CStr = c"--child-fds";

/// The exit code of `--child-fds`.
pub fn open_fds_mask(fds: impl Iterator<Item = i32>) -> i32 {
    fds.enumerate().filter(|&(_, fd)| fd::fcntl(fd, F_GETFD, 0).is_ok()).fold(0, |mask, (i, _)| mask | 1 << i)
}

/// `n` in decimal in `buf`, as a C string (no heap: for a child).
pub fn decimal(mut n: u32, buf: &mut [u8; 12]) -> &CStr {
    let mut digits = [0u8; 11];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[i] = digits[len - 1 - i];
    }
    buf[len] = 0;
    CStr::from_bytes_until_nul(&buf[..=len]).unwrap_or(c"")
}

pub fn cloexec_exec(ctx: &Context) -> TestResult {
    // Which descriptors survive execve.
    let status = child_status(|| {
        let (r, w) = pipe(OpenFlags::empty())?;
        fd::fcntl(w, F_SETFD, FD_CLOEXEC as usize).ctx("F_SETFD")?;
        let d = fd::fcntl(r, F_DUPFD_CLOEXEC, 20).ctx("F_DUPFD_CLOEXEC")? as i32;
        let (c, _) = pipe(OpenFlags::CLOEXEC)?;
        let mut bufs = [[0u8; 12]; 4];
        let [b0, b1, b2, b3] = &mut bufs;
        let args = [
            ctx.exe,
            CHILD_FDS,
            decimal(r as u32, b0),
            decimal(w as u32, b1),
            decimal(d as u32, b2),
            decimal(c as u32, b3),
        ];
        let e = process::execve(ctx.exe, &args, &[]);
        Err(alloc::format!("execve: {e}"))
    })?;
    ensure!(status.exit_code() == Some(0b0001), "after execve the open set is {status}, expected exit=1 (fd r only)");

    // posix_spawn's report channel: a close-on-exec pipe reads end of file
    // once the child has exec'd, and the errno when its exec failed.
    let (r, w) = pipe(OpenFlags::CLOEXEC)?;
    let pid = match process::fork().ctx("fork")? {
        Fork::Child => {
            let _ = fs::close(r);
            let e = process::execve(ctx.exe, &[ctx.exe, c"--child-exit", c"0"], &[]);
            let _ = fs::write(w, &e.as_i32().to_le_bytes());
            process::exit_group(127)
        }
        Fork::Parent(pid) => pid,
    };
    fs::close(w).ctx("close")?;
    ensure!(read_exactly(r, 4)?.is_empty(), "the exec'd child still held the close-on-exec write end");
    fs::close(r).ctx("close")?;
    join(pid, "exec'd child")?;

    let (r, w) = pipe(OpenFlags::CLOEXEC)?;
    let pid = spawn(|| {
        fs::close(r).ctx("close")?;
        let e = process::execve(c"/nonexistent/program", &[c"program"], &[]);
        fs::write(w, &e.as_i32().to_le_bytes()).ctx("write")?;
        Ok(())
    })?;
    fs::close(w).ctx("close")?;
    let report = read_exactly(r, 4)?;
    ensure!(report == Errno::ENOENT.as_i32().to_le_bytes(), "the failed exec reported {report:?}");
    fs::close(r).ctx("close")?;
    join(pid, "child")
}

pub fn ppoll_pipes(_ctx: &Context) -> TestResult {
    let (r, w) = pipe(OpenFlags::empty())?;
    let mut entries = [PollFd::new(r, PollEvents::IN)];
    ensure!(fd::ppoll(&mut entries, Some(0)).ctx("ppoll")? == 0, "an empty pipe polls readable");
    ensure!(entries[0].revents == 0, "revents {:?}", entries[0].revents());
    let start = time::counter();
    ensure!(fd::ppoll(&mut entries, Some(30_000_000)).ctx("ppoll")? == 0, "an empty pipe became readable");
    let waited_ms = (time::counter() - start) * 1000 / time::counter_frequency().max(1);
    ensure!(waited_ms >= 30, "a 30 ms ppoll returned after {waited_ms} ms");

    fs::write(w, b"x").ctx("write")?;
    let mut entries = [
        PollFd::new(r, PollEvents::IN | PollEvents::OUT),
        PollFd::new(w, PollEvents::IN | PollEvents::OUT),
        PollFd::new(-1, PollEvents::IN),
        PollFd::new(BEYOND_ANY_LIMIT as i32, PollEvents::IN),
        PollFd::new(1, PollEvents::OUT),
    ];
    let n = fd::ppoll(&mut entries, None).ctx("ppoll")?;
    let got: Vec<PollEvents> = entries.iter().map(PollFd::revents).collect();
    ensure!(n == 4, "{n} ready, expected 4: {got:?}");
    ensure!(got[0] == PollEvents::IN, "read end: {:?}", got[0]);
    ensure!(got[1] == PollEvents::OUT, "write end: {:?}", got[1]);
    ensure!(got[2].is_empty(), "a negative fd reported {:?}", got[2]);
    ensure!(got[3] == PollEvents::NVAL, "a closed fd reported {:?}", got[3]);
    ensure!(got[4] == PollEvents::OUT, "stdout: {:?}", got[4]);

    // Hang-up: with data left, readable and hung up; then only hung up.
    fs::close(w).ctx("close")?;
    let mut entries = [PollFd::new(r, PollEvents::IN)];
    fd::ppoll(&mut entries, None).ctx("ppoll")?;
    ensure!(entries[0].revents() == PollEvents::IN | PollEvents::HUP, "revents {:?}", entries[0].revents());
    read_exactly(r, 1)?;
    fd::ppoll(&mut entries, None).ctx("ppoll")?;
    ensure!(entries[0].revents() == PollEvents::HUP, "revents {:?}", entries[0].revents());
    fs::close(r).ctx("close")?;

    // A blocking ppoll wakes when a writer process writes.
    let (r, w) = pipe(OpenFlags::empty())?;
    let writer = spawn(|| {
        time::sleep_ms(50).ctx("sleep")?;
        fs::write(w, b"!").ctx("write").map(drop)
    })?;
    let mut entries = [PollFd::new(r, PollEvents::IN)];
    let n = fd::ppoll(&mut entries, None).ctx("blocking ppoll")?;
    ensure!(n == 1 && entries[0].revents() == PollEvents::IN, "woke with {n}: {:?}", entries[0].revents());
    join(writer, "writer")?;

    // Errors.
    // SAFETY: the kernel must refuse before touching the (null) entries.
    let ret = unsafe { syscall5(Sysno::Ppoll.number(), 0, (1 << 20) + 1, 0, 0, 0) };
    expect_errno("ppoll with nfds over the limit", Errno::result(ret), Errno::EINVAL)?;
    // SAFETY: the kernel reads at the unmapped address 8 and fails.
    let ret = unsafe { syscall5(Sysno::Ppoll.number(), 8, 1, 0, 0, 0) };
    expect_errno("ppoll of unmapped entries", Errno::result(ret), Errno::EFAULT)?;
    let bad_time = [0i64, 1_000_000_000];
    // SAFETY: the kernel reads the timespec and refuses it.
    let ret =
        unsafe { syscall5(Sysno::Ppoll.number(), entries.as_mut_ptr() as usize, 1, bad_time.as_ptr() as usize, 0, 0) };
    expect_errno("ppoll with tv_nsec = 10^9", Errno::result(ret), Errno::EINVAL)?;
    let mask = 0u64;
    // SAFETY: the kernel refuses a signal set size other than 8.
    let ret = unsafe {
        syscall5(Sysno::Ppoll.number(), entries.as_mut_ptr() as usize, 1, 0, &mask as *const u64 as usize, 4)
    };
    expect_errno("ppoll with sigsetsize 4", Errno::result(ret), Errno::EINVAL)?;
    close_all(&[r, w])
}

/// `pselect6(n, sets, timeout ns, no mask)` over 1024-descriptor sets.
pub(super) fn pselect(n: i32, sets: &mut [[u64; 16]; 3], timeout_ns: u64) -> Result<usize, Errno> {
    let mut spec = [(timeout_ns / 1_000_000_000) as i64, (timeout_ns % 1_000_000_000) as i64];
    let [read, write, except] = sets;
    // SAFETY: the three sets (128 bytes each) and the timespec are the
    // test's own and live through the call, which writes them.
    let ret = unsafe {
        syscall6(
            Sysno::Pselect6.number(),
            n as usize,
            read.as_mut_ptr() as usize,
            write.as_mut_ptr() as usize,
            except.as_mut_ptr() as usize,
            spec.as_mut_ptr() as usize,
            0,
        )
    };
    Errno::result(ret)
}

fn set_bit(set: &mut [u64; 16], fd: i32) {
    set[fd as usize / 64] |= 1 << (fd % 64);
}

fn has_bit(set: &[u64; 16], fd: i32) -> bool {
    set[fd as usize / 64] & (1 << (fd % 64)) != 0
}

pub fn pselect_pipes(_ctx: &Context) -> TestResult {
    let (r, w) = pipe(OpenFlags::empty())?;
    let n = r.max(w) + 1;
    // Nothing to read: the timeout passes and every set comes back empty.
    let mut sets = [[0u64; 16]; 3];
    set_bit(&mut sets[0], r);
    set_bit(&mut sets[2], r);
    let start = time::counter();
    ensure!(pselect(n, &mut sets, 30_000_000).ctx("pselect6")? == 0, "an empty pipe was ready");
    let waited_ms = (time::counter() - start) * 1000 / time::counter_frequency().max(1);
    ensure!(waited_ms >= 30, "a 30 ms pselect6 returned after {waited_ms} ms");
    ensure!(sets.iter().all(|s| s.iter().all(|&w| w == 0)), "the sets were not cleared: {sets:?}");

    fs::write(w, b"x").ctx("write")?;
    let mut sets = [[0u64; 16]; 3];
    for fd in [r, w] {
        set_bit(&mut sets[0], fd);
        set_bit(&mut sets[1], fd);
        set_bit(&mut sets[2], fd);
    }
    let count = pselect(n, &mut sets, 0).ctx("pselect6")?;
    ensure!(count == 2, "{count} bits set, expected 2 (r readable, w writable)");
    ensure!(has_bit(&sets[0], r) && !has_bit(&sets[0], w), "readfds {:#x}", sets[0][0]);
    ensure!(has_bit(&sets[1], w) && !has_bit(&sets[1], r), "writefds {:#x}", sets[1][0]);
    ensure!(sets[2].iter().all(|&w| w == 0), "exceptfds {:#x}", sets[2][0]);

    // A hung-up read end is readable.
    fs::close(w).ctx("close")?;
    read_exactly(r, 1)?;
    let mut sets = [[0u64; 16]; 3];
    set_bit(&mut sets[0], r);
    ensure!(pselect(r + 1, &mut sets, 0).ctx("pselect6")? == 1, "a hung-up pipe is not readable");

    // Below 64: Linux only looks at descriptors below its table's size.
    let mut sets = [[0u64; 16]; 3];
    set_bit(&mut sets[0], 60);
    expect_errno("pselect6 of a closed descriptor", pselect(61, &mut sets, 0), Errno::EBADF)?;
    expect_errno("pselect6 with n < 0", pselect(-1, &mut [[0u64; 16]; 3], 0), Errno::EINVAL)?;
    fs::close(r).ctx("close")
}

/// Many full pipes take memory; closed, it all comes back.
pub fn memory_back(ctx: &Context) -> TestResult {
    const PIPES: usize = 40;
    let block = vec![7u8; 65536];
    let mut fds = vec![0; 2 * PIPES];
    fds.clear();
    let before = memfree().map_err(|e| alloc::format!("{e}"))?;
    for _ in 0..PIPES {
        let (r, w) = pipe(OpenFlags::NONBLOCK)?;
        ensure!(fs::write(w, &block).ctx("write")? == 65536, "a pipe took less than 64 KiB");
        fds.extend([r, w]);
    }
    let full = memfree().map_err(|e| alloc::format!("{e}"))?;
    if !ctx.linux {
        let used = before.saturating_sub(full);
        ensure!(used >= (PIPES * 65536) as u64, "{PIPES} full pipes took only {used} bytes of free memory");
    }
    close_all(&fds)?;
    drop(fds);
    drop(block);
    let after = memfree().map_err(|e| alloc::format!("{e}"))?;
    ensure!(
        before.abs_diff(after) <= ctx.memfree_slack,
        "free memory {after} bytes after the pipes closed, {before} before: {} apart, slack {}",
        before.abs_diff(after),
        ctx.memfree_slack
    );
    Ok(())
}
