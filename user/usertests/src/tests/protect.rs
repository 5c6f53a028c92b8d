//! mprotect: splitting an area, faults on the protected part, merging back,
//! holes (ENOMEM), as seen in /proc/self/maps.

use alloc::format;
use alloc::vec::Vec;

use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, expect_sigsegv, in_child, probe_write, Context, Ctx, Region, TestResult};
use crate::procfs::{areas_in, Area};

const RW: Prot = Prot::READ.union(Prot::WRITE);

/// Requires the areas of /proc/self/maps within `[from, to)` to be exactly `want`.
fn expect_areas(when: &str, from: usize, to: usize, want: &[(usize, usize, &[u8; 4])]) -> TestResult {
    let got = areas_in(from, to)?;
    let want: Vec<Area> = want.iter().map(|&(start, end, perms)| Area { start, end, perms: *perms }).collect();
    ensure!(got == want, "{when}: /proc/self/maps has {got:?}, expected {want:?}");
    Ok(())
}

/// Four RW pages (between PROT_NONE guard pages); mprotect of the middle
/// two to PROT_READ gives three areas, writes to the outer pages work, writes
/// to the middle ones kill with SIGSEGV; mprotect back to RW gives one area
/// again, contents kept. mprotect over a hole is ENOMEM; munmap of a page
/// splits the area.
pub fn split_merge(_: &Context) -> TestResult {
    // Six pages; the outer two become PROT_NONE guards, so the four in between
    // cannot merge with a neighbouring mapping.
    let whole = Region::anon(6, RW, MapFlags::PRIVATE)?;
    // SAFETY: the first and last pages of `whole` are never accessed; the
    // region `r` below covers the four pages in between.
    unsafe {
        mem::mprotect(whole.page(0), P, Prot::NONE).ctx("mprotect the lower guard")?;
        mem::mprotect(whole.page(5), P, Prot::NONE).ctx("mprotect the upper guard")?;
    }
    let r = Region { addr: whole.page(1), len: 4 * P };
    let (lo, hi) = (whole.addr, whole.addr + whole.len);
    let guard_lo = (lo, r.addr, b"---p");
    let guard_hi = (r.addr + 4 * P, hi, b"---p");
    for i in 0..4 {
        r.write(i * P, 0x10 + i as u8);
    }
    expect_areas("after mmap", lo, hi, &[guard_lo, (r.addr, r.addr + 4 * P, b"rw-p"), guard_hi])?;

    // SAFETY: pages 1-2 are only read until they are made writable again.
    unsafe { mem::mprotect(r.page(1), 2 * P, Prot::READ) }.ctx("mprotect middle to PROT_READ")?;
    expect_areas(
        "after mprotect of the middle pages",
        lo,
        hi,
        &[
            guard_lo,
            (r.addr, r.page(1), b"rw-p"),
            (r.page(1), r.page(3), b"r--p"),
            (r.page(3), r.addr + 4 * P, b"rw-p"),
            guard_hi,
        ],
    )?;
    r.write(0, 0x20);
    r.write(3 * P + 8, 0x23);
    ensure!(r.read(P) == 0x11 && r.read(2 * P) == 0x12, "read-only pages lost their contents");
    for page in [1, 2] {
        expect_sigsegv(&format!("write to read-only page {page}"), || {
            probe_write(r.page(page) + 100, 0xFF);
            Ok(())
        })?;
    }
    in_child("child writing the outer pages", || {
        r.write(8, 0x30);
        r.write(3 * P, 0x33);
        Ok(())
    })?;

    // SAFETY: making pages writable again invalidates nothing.
    unsafe { mem::mprotect(r.page(1), 2 * P, RW) }.ctx("mprotect middle back to RW")?;
    expect_areas("after mprotect back to RW", lo, hi, &[guard_lo, (r.addr, r.addr + 4 * P, b"rw-p"), guard_hi])?;
    r.write(P + 1, 0x41);
    r.write(2 * P + 1, 0x42);
    ensure!(
        r.read(0) == 0x20 && r.read(P) == 0x11 && r.read(2 * P) == 0x12 && r.read(3 * P + 8) == 0x23,
        "contents changed by the mprotect round trip"
    );

    // A hole: two pages of which the first is unmapped again (right before
    // use, so that no other mapping can take its place meanwhile).
    let holed = Region::anon(2, RW, MapFlags::PRIVATE)?;
    // SAFETY: page 0 of `holed` is never accessed.
    unsafe { mem::munmap(holed.page(0), P) }.ctx("munmap")?;
    // SAFETY: mprotect over a hole is refused; at worst it makes the second
    // page of `holed`, which the test never accesses, read-only.
    let starts_in_hole = unsafe { mem::mprotect(holed.page(0), 2 * P, Prot::READ) };
    expect_errno("mprotect of a range starting in a hole", starts_in_hole, Errno::ENOMEM)?;
    // SAFETY: a fully unmapped page holds nothing.
    let all_hole = unsafe { mem::mprotect(holed.page(0), P, Prot::READ) };
    expect_errno("mprotect of an unmapped page", all_hole, Errno::ENOMEM)?;

    // SAFETY: page 1 of `r` is not used after this.
    unsafe { mem::munmap(r.page(1), P) }.ctx("munmap page 1")?;
    expect_areas(
        "after munmap of page 1",
        lo,
        hi,
        &[guard_lo, (r.addr, r.page(1), b"rw-p"), (r.page(2), r.addr + 4 * P, b"rw-p"), guard_hi],
    )?;
    expect_sigsegv("touch of the unmapped page 1", || {
        probe_write(r.page(1), 1);
        Ok(())
    })?;
    ensure!(r.read(0) == 0x20 && r.read(2 * P) == 0x12, "munmap of page 1 changed its neighbours");
    Ok(())
}
