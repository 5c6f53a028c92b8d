//! brk: the program break grows, shrinks (the memory above it goes away) and
//! grows again with fresh pages; a failed move leaves the old break.

use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, Prot};

use crate::ensure;
use crate::harness::{expect_sigsegv, probe_read, probe_write, Context, Ctx, TestResult};

/// How far the test moves the break.
const GROWTH: usize = 64 * 1024;
/// Where a mapping is put above the break to block its growth.
const BLOCKER_DISTANCE: usize = 1024 * 1024;
/// A lowest-half kernel address (TTBR1 space).
const KERNEL_ADDRESS: usize = 0xffff_0000_0000_0000;

fn brk(addr: usize) -> usize {
    // SAFETY: the memory between the test's base break and any break it sets
    // is used only by this test (the allocator sits on mmap, not brk).
    unsafe { mem::brk(addr) }
}

pub fn brk_moves(_: &Context) -> TestResult {
    let base = brk(0);
    ensure!(base != 0, "brk(0) returned 0");
    let top = base + GROWTH;
    ensure!(brk(top) == top, "brk({top:#x}) did not grow the break from {base:#x}");
    ensure!(brk(0) == top, "brk(0) after growing returned {:#x}", brk(0));
    for addr in (base..top).step_by(P / 4) {
        probe_write(addr, 0xB5);
    }
    ensure!((base..top).step_by(P / 4).all(|a| probe_read(a) == 0xB5), "heap memory lost its contents");

    ensure!(brk(base) == base, "brk({base:#x}) did not shrink the break");
    expect_sigsegv("read above a lowered break", || {
        probe_read(base + GROWTH / 2);
        Ok(())
    })?;
    ensure!(brk(top) == top, "brk could not grow again");
    ensure!(probe_read(base + GROWTH / 2) == 0, "memory above a lowered break kept its contents after regrowth");

    // Failures return the old break.
    ensure!(brk(KERNEL_ADDRESS) == top, "brk(kernel address) did not fail");
    ensure!(brk(1) == top, "brk(1), below the heap's start, did not fail");
    let blocker_at = (top + BLOCKER_DISTANCE).next_multiple_of(P);
    // SAFETY: MAP_FIXED_NOREPLACE never replaces existing memory.
    let blocker = unsafe {
        mem::mmap(blocker_at, P, Prot::READ, MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED_NOREPLACE, -1, 0)
    }
    .ctx("mmap a blocker above the break")?;
    ensure!(blocker == blocker_at, "blocker mapped at {blocker:#x}, not {blocker_at:#x}");
    ensure!(brk(blocker_at + 2 * P) == top, "brk grew over an existing mapping");
    ensure!(brk(0) == top, "the break moved after failed calls");
    ensure!(brk(base) == base, "brk could not shrink back");
    Ok(())
}
