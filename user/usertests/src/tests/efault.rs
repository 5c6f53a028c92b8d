//! Bad pointers passed to system calls give -EFAULT (the kernel's user
//! accesses are fallible), never a crash of the kernel or of the caller.

use aspen_sys::fs::{self, OpenFlags, AT_FDCWD, STDOUT};
use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::raw::{syscall2, syscall3, syscall4, Sysno};
use aspen_sys::time::CLOCK_MONOTONIC;
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, Context, Ctx, Region, TestResult};
use crate::tests::file::SCRATCH_FILE;

/// A lowest-half kernel address (TTBR1 space).
const KERNEL_ADDRESS: usize = 0xffff_0000_0000_0000;

/// A raw call with bad pointers, as a Result.
fn call3(n: usize, a0: usize, a1: usize, a2: usize) -> Result<usize, Errno> {
    // SAFETY: the pointers are bad on purpose; the kernel must refuse them
    // without touching any memory of ours.
    Errno::result(unsafe { syscall3(n, a0, a1, a2) })
}

fn openat_raw(path: usize) -> Result<usize, Errno> {
    // SAFETY: as in `call3`.
    Errno::result(unsafe {
        syscall4(Sysno::Openat.number(), AT_FDCWD as usize, path, OpenFlags::RDONLY.bits() as usize, 0)
    })
}

pub fn bad_pointers(_: &Context) -> TestResult {
    let ro = Region::anon(1, Prot::READ, MapFlags::PRIVATE)?;
    let edge = Region::anon(2, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    // An address that was mapped and is not any more (made last: a later mmap
    // could reuse the range).
    let gone = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    // SAFETY: `gone` is only passed to the kernel after this, never accessed.
    unsafe { mem::munmap(gone.addr, P) }.ctx("munmap")?;
    let file = fs::open(SCRATCH_FILE, OpenFlags::RDWR, 0).ctx("open the scratch file")?;
    let fd = file as usize;

    expect_errno("write(1, NULL, 10)", call3(Sysno::Write.number(), STDOUT as usize, 0, 10), Errno::EFAULT)?;
    expect_errno(
        "write(1, kernel address, 8)",
        call3(Sysno::Write.number(), STDOUT as usize, KERNEL_ADDRESS, 8),
        Errno::EFAULT,
    )?;
    expect_errno("write from an unmapped buffer", call3(Sysno::Write.number(), fd, gone.addr, 8), Errno::EFAULT)?;
    expect_errno("read into a read-only page", call3(Sysno::Read.number(), fd, ro.addr, 8), Errno::EFAULT)?;
    ensure!(ro.read(0) == 0, "read into a read-only page changed it");
    expect_errno("read into an unmapped buffer", call3(Sysno::Read.number(), fd, gone.addr, 8), Errno::EFAULT)?;
    expect_errno("read into a kernel address", call3(Sysno::Read.number(), fd, KERNEL_ADDRESS, 8), Errno::EFAULT)?;

    // Ranges that wrap around the top of the address space.
    expect_errno(
        "write from u64::MAX - 7, 16 bytes",
        call3(Sysno::Write.number(), fd, usize::MAX - 7, 16),
        Errno::EFAULT,
    )?;
    let wrapping_len = usize::MAX - ro.addr + 1 + P; // ro.addr + len wraps to P
    expect_errno(
        "write of a length that wraps",
        call3(Sysno::Write.number(), fd, ro.addr, wrapping_len),
        Errno::EFAULT,
    )?;
    expect_errno(
        "read into u64::MAX - 7, 16 bytes",
        call3(Sysno::Read.number(), fd, usize::MAX - 7, 16),
        Errno::EFAULT,
    )?;

    // Paths.
    expect_errno("openat(NULL path)", openat_raw(0), Errno::EFAULT)?;
    expect_errno("openat(unmapped path)", openat_raw(gone.addr), Errno::EFAULT)?;
    expect_errno("openat(kernel-address path)", openat_raw(KERNEL_ADDRESS), Errno::EFAULT)?;
    // SAFETY: page 1 of `edge` is only passed to the kernel after this.
    unsafe { mem::munmap(edge.page(1), P) }.ctx("munmap")?;
    let tail = b"/tmp/usertests-x"; // no NUL: the string runs into the unmapped page
    for (i, &b) in tail.iter().enumerate() {
        edge.write(P - tail.len() + i, b);
    }
    expect_errno("openat(path crossing into an unmapped page)", openat_raw(edge.page(1) - tail.len()), Errno::EFAULT)?;

    // Output structures.
    // SAFETY: as in `call3`.
    let clock = Errno::result(unsafe { syscall2(Sysno::ClockGettime.number(), CLOCK_MONOTONIC as usize, gone.addr) });
    expect_errno("clock_gettime into an unmapped buffer", clock, Errno::EFAULT)?;
    // SAFETY: as in `call3`.
    let clock = Errno::result(unsafe { syscall2(Sysno::ClockGettime.number(), CLOCK_MONOTONIC as usize, ro.addr) });
    expect_errno("clock_gettime into a read-only page", clock, Errno::EFAULT)?;
    // SAFETY: as in `call3`.
    let sleep = Errno::result(unsafe { syscall2(Sysno::Nanosleep.number(), gone.addr, 0) });
    expect_errno("nanosleep with an unmapped request", sleep, Errno::EFAULT)?;

    fs::close(file).ctx("close")?;
    Ok(())
}
