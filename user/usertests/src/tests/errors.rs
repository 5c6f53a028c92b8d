//! Argument errors: mmap, munmap and mprotect give Linux's errnos; unknown
//! system calls give ENOSYS; thread-style clone flags give EINVAL.

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::raw::{syscall0, syscall5, Sysno};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, Context, Ctx, Region, TestResult};
use crate::tests::file::SCRATCH_FILE;

const RW: Prot = Prot::READ.union(Prot::WRITE);
const ANON: MapFlags = MapFlags::PRIVATE.union(MapFlags::ANONYMOUS);
/// A protection bit Linux does not define (arm64 knows READ, WRITE, EXEC, SEM, and MTE 0x20).
const BAD_PROT: Prot = Prot::from_bits_retain(0x100);
/// A lowest-half kernel address (TTBR1 space).
const KERNEL_ADDRESS: usize = 0xffff_0000_0000_0000;

/// mmap that is expected to fail: no MAP_FIXED lands on memory in use.
fn try_mmap(addr: usize, len: usize, prot: Prot, flags: MapFlags, fd: i32, offset: u64) -> Result<usize, Errno> {
    // SAFETY: every MAP_FIXED call here targets an unaligned address, the
    // kernel half or a region only this test uses.
    unsafe { mem::mmap(addr, len, prot, flags, fd, offset) }
}

pub fn mmap_errors(_: &Context) -> TestResult {
    expect_errno("mmap of length 0", try_mmap(0, 0, RW, ANON, -1, 0), Errno::EINVAL)?;
    expect_errno(
        "MAP_FIXED at an unaligned address",
        try_mmap(0x1000_0001, P, RW, ANON | MapFlags::FIXED, -1, 0),
        Errno::EINVAL,
    )?;
    expect_errno(
        "mmap without MAP_SHARED or MAP_PRIVATE",
        try_mmap(0, P, RW, MapFlags::ANONYMOUS, -1, 0),
        Errno::EINVAL,
    )?;
    expect_errno("file mmap of fd -1", try_mmap(0, P, RW, MapFlags::PRIVATE, -1, 0), Errno::EBADF)?;
    let fd = fs::open(SCRATCH_FILE, OpenFlags::RDONLY, 0).ctx("open the scratch file")?;
    let unaligned_offset = try_mmap(0, P, Prot::READ, MapFlags::PRIVATE, fd, 100);
    fs::close(fd).ctx("close")?;
    expect_errno("file mmap at an unaligned offset", unaligned_offset, Errno::EINVAL)?;
    expect_errno("mmap of a length near 2^64", try_mmap(0, usize::MAX - P + 2, RW, ANON, -1, 0), Errno::ENOMEM)?;
    expect_errno(
        "MAP_FIXED in the kernel half",
        try_mmap(KERNEL_ADDRESS, P, RW, ANON | MapFlags::FIXED, -1, 0),
        Errno::ENOMEM,
    )?;

    let r = Region::anon(2, RW, MapFlags::PRIVATE)?;
    r.write(0, 0x42);
    let noreplace = try_mmap(r.addr, P, RW, ANON | MapFlags::FIXED_NOREPLACE, -1, 0);
    expect_errno("MAP_FIXED_NOREPLACE over a mapping", noreplace, Errno::EEXIST)?;
    ensure!(r.read(0) == 0x42, "a refused MAP_FIXED_NOREPLACE changed the mapping");
    let shared_over = try_mmap(r.addr, P, RW, MapFlags::SHARED | MapFlags::ANONYMOUS | MapFlags::FIXED, -1, 0)
        .ctx("MAP_FIXED over a mapping")?;
    ensure!(shared_over == r.addr, "MAP_FIXED mapped at {shared_over:#x}, not {:#x}", r.addr);
    ensure!(r.read(0) == 0, "MAP_FIXED did not replace the old page");

    // SAFETY: these munmap calls are refused (or, for the hole, unmap nothing).
    unsafe {
        expect_errno("munmap at an unaligned address", mem::munmap(r.addr + 1, P), Errno::EINVAL)?;
        expect_errno("munmap of length 0", mem::munmap(r.addr, 0), Errno::EINVAL)?;
        expect_errno("mprotect at an unaligned address", mem::mprotect(r.addr + 1, P, Prot::READ), Errno::EINVAL)?;
        expect_errno(
            "mprotect with undefined PROT bits",
            mem::mprotect(r.addr, P, Prot::READ | BAD_PROT),
            Errno::EINVAL,
        )?;
    }
    ensure!(
        r.read(0) == 0 && {
            r.write(P, 1);
            r.read(P) == 1
        },
        "refused calls changed the mapping"
    );
    let hole = Region::anon(1, RW, MapFlags::PRIVATE)?;
    // SAFETY: `hole` is never accessed after this.
    unsafe {
        mem::munmap(hole.addr, P).ctx("munmap")?;
        mem::munmap(hole.addr, P).ctx("munmap of a range with nothing mapped (Linux: success)")?;
    }
    Ok(())
}

pub fn syscall_errors(_: &Context) -> TestResult {
    for unknown in [999, 1000, 4096] {
        // SAFETY: an unknown system call does nothing.
        let ret = Errno::result(unsafe { syscall0(unknown) });
        expect_errno(&alloc::format!("system call {unknown}"), ret, Errno::ENOSYS)?;
    }
    const CLONE_VM: usize = 0x100;
    const CLONE_SIGHAND: usize = 0x800;
    const CLONE_THREAD: usize = 0x1_0000;
    for (what, flags) in [
        ("clone(CLONE_VM | CLONE_THREAD)", CLONE_VM | CLONE_THREAD),
        ("clone(CLONE_THREAD)", CLONE_THREAD),
        ("clone(CLONE_SIGHAND)", CLONE_SIGHAND),
    ] {
        // SAFETY: these flag combinations are invalid: no process or thread is created.
        let ret = Errno::result(unsafe { syscall5(Sysno::Clone.number(), flags, 0, 0, 0, 0) });
        expect_errno(what, ret, Errno::EINVAL)?;
    }
    Ok(())
}
