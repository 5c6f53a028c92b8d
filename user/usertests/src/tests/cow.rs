//! Private memory across fork: copy-on-write isolation (fork, and fork of a
//! fork whose middle process exits first), fresh pages that are zero, and
//! the FP/SIMD registers across the kernel's page copy.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::process::{self, Fork};

use crate::ensure;
use crate::harness::{self, in_child, join, report, spawn, vread, vwrite, Context, Ctx, Region, Stage, TestResult};

const RW: Prot = Prot::READ.union(Prot::WRITE);

/// A word in the program's .data (non-zero initial value).
static DATA: AtomicU64 = AtomicU64::new(0x1111);
/// A word in the program's .bss.
static BSS: AtomicU64 = AtomicU64::new(0);

fn data() -> u64 {
    DATA.load(Ordering::Relaxed)
}

fn bss() -> u64 {
    BSS.load(Ordering::Relaxed)
}

/// Parent and child each write private memory after fork; neither sees the
/// other's writes: to a page written before fork, a page only read before
/// fork (the zero page), a page never touched, .data, .bss and the stack.
pub fn isolation(_: &Context) -> TestResult {
    let p = Region::anon(5, RW, MapFlags::PRIVATE)?;
    let sync = Region::anon(1, RW, MapFlags::SHARED)?;
    let stage = Stage::at(&sync, 0);
    p.write(0, 0xA0); // page 0: written before fork
    p.write(P, 0xA1); // page 1: written before fork, by the parent after it
    let _ = p.read(2 * P); // page 2: only read before fork
                           // page 3: never touched
    p.write(4 * P, 0xA4); // page 4: written before fork, by the parent after it
    DATA.store(0x2222, Ordering::Relaxed);
    BSS.store(5, Ordering::Relaxed);
    let mut stack = [0u8; 64];
    vwrite(&mut stack[7], 0x5A);

    let pid = spawn(|| {
        ensure!(p.read(0) == 0xA0 && p.read(P) == 0xA1 && p.read(4 * P) == 0xA4, "child does not see pre-fork writes");
        ensure!(p.read(2 * P) == 0 && p.read(3 * P) == 0, "child: read-only-touched or untouched page not zero");
        ensure!(data() == 0x2222 && bss() == 5, "child does not see pre-fork .data/.bss: {:#x} {}", data(), bss());
        ensure!(vread(&stack[7]) == 0x5A, "child does not see the pre-fork stack");
        p.write(0, 0xC0);
        p.write(2 * P, 0xC2);
        p.write(3 * P, 0xC3);
        DATA.store(0xC0DE, Ordering::Relaxed);
        BSS.store(0xC, Ordering::Relaxed);
        vwrite(&mut stack[7], 0xC5); // the child's copy of the parent's frame
        ensure!(p.read(0) == 0xC0 && p.read(2 * P) == 0xC2 && p.read(3 * P) == 0xC3, "child lost its own writes");
        stage.set(1);
        stage.wait_for(2, None)?;
        ensure!(p.read(P) == 0xA1 && p.read(4 * P) == 0xA4, "parent's post-fork writes visible in the child");
        ensure!(data() == 0xC0DE && bss() == 0xC, "child's .data/.bss changed under it: {:#x} {}", data(), bss());
        ensure!(vread(&stack[7]) == 0xC5, "child's stack changed under it");
        ensure!(p.read(0) == 0xC0 && p.read(3 * P) == 0xC3, "child's pages changed under it");
        Ok(())
    })?;

    stage.wait_for(1, Some(pid))?;
    ensure!(p.read(0) == 0xA0, "child's write to a written page visible in the parent");
    ensure!(p.read(2 * P) == 0, "child's write to a read-only-touched page visible in the parent");
    ensure!(p.read(3 * P) == 0, "child's write to an untouched page visible in the parent");
    ensure!(data() == 0x2222 && bss() == 5, "child's .data/.bss writes visible in the parent: {:#x} {}", data(), bss());
    ensure!(vread(&stack[7]) == 0x5A, "child's stack write visible in the parent");
    p.write(P, 0xB1);
    p.write(4 * P, 0xB4);
    DATA.store(0x3333, Ordering::Relaxed);
    vwrite(&mut stack[7], 0x3A);
    stage.set(2);
    join(pid, "child")?;
    ensure!(p.read(P) == 0xB1 && p.read(4 * P) == 0xB4, "parent lost its post-fork writes");
    ensure!(data() == 0x3333 && vread(&stack[7]) == 0x3A, "parent lost its post-fork .data/stack writes");
    ensure!(p.read(0) == 0xA0 && p.read(3 * P) == 0, "parent's pages changed after the child exited");
    Ok(())
}

/// Fork of a fork: the grandchild sees the middle process's writes made before
/// it was forked; writes of any of the three stay private; the grandchild's
/// pages stay intact after the middle process exits (the grandchild is then an
/// orphan, re-parented to init, and reports through shared memory).
pub fn fork_of_fork(_: &Context) -> TestResult {
    let p = Region::anon(3, RW, MapFlags::PRIVATE)?;
    let sync = Region::anon(1, RW, MapFlags::SHARED)?;
    let stage = Stage::at(&sync, 0);
    let grandchild_result = Stage::at(&sync, 4);
    const GRANDCHILD_OK: u32 = 1;
    const GRANDCHILD_FAILED: u32 = 2;
    let (a, b, c) = (0, P, 2 * P); // a, b written before the first fork; c untouched
    p.write(a, 0xA0);
    p.write(b, 0xB0);
    DATA.store(0x4444, Ordering::Relaxed);

    let middle = spawn(|| {
        ensure!(p.read(a) == 0xA0 && p.read(b) == 0xB0 && p.read(c) == 0, "child does not see pre-fork memory");
        p.write(a, 0xCA);
        DATA.store(0xCCCC, Ordering::Relaxed);
        if let Fork::Child = process::fork().ctx("fork of the child")? {
            let result = grandchild(&p, &stage, (a, b, c));
            if let Err(msg) = &result {
                report(msg);
            }
            grandchild_result.set(if result.is_ok() { GRANDCHILD_OK } else { GRANDCHILD_FAILED });
            process::exit_group(0);
        }
        stage.wait_for(1, None)?;
        ensure!(p.read(a) == 0xCA && p.read(b) == 0xB0 && p.read(c) == 0, "grandchild's writes visible in the child");
        ensure!(data() == 0xCCCC, "grandchild's .data write visible in the child");
        Ok(()) // exits while the grandchild still runs
    })?;

    join(middle, "child")?;
    ensure!(p.read(a) == 0xA0 && p.read(b) == 0xB0 && p.read(c) == 0, "descendants' writes visible in the parent");
    ensure!(data() == 0x4444, "descendants' .data writes visible in the parent");
    p.write(b, 0xB1);
    stage.set(2);
    grandchild_result.wait_for(GRANDCHILD_OK, None)?;
    ensure!(grandchild_result.get() == GRANDCHILD_OK, "grandchild: {}", harness::report_message());
    ensure!(p.read(b) == 0xB1, "parent lost its write");
    Ok(())
}

fn grandchild(p: &Region, stage: &Stage<'_>, (a, b, c): (usize, usize, usize)) -> TestResult {
    ensure!(p.read(a) == 0xCA, "grandchild does not see the child's pre-fork write");
    ensure!(p.read(b) == 0xB0 && p.read(c) == 0, "grandchild does not see the original memory");
    ensure!(data() == 0xCCCC, "grandchild does not see the child's .data");
    p.write(a, 0x6A);
    p.write(b, 0x6B);
    p.write(c, 0x6C);
    DATA.store(0x6666, Ordering::Relaxed);
    stage.set(1);
    stage.wait_for(2, None)?; // the child has exited, the parent has written b
    ensure!(p.read(a) == 0x6A && p.read(b) == 0x6B && p.read(c) == 0x6C, "grandchild's pages changed under it");
    ensure!(data() == 0x6666, "grandchild's .data changed under it");
    Ok(())
}

/// Fresh pages read zero: after another process filled and freed memory,
/// in new private (also populated) and shared mappings, and after munmap +
/// MAP_FIXED remap.
pub fn fresh_pages_zero(_: &Context) -> TestResult {
    const PAGES: usize = 1024; // 4 MiB
    const GARBAGE: u64 = 0xdead_beef_cafe_f00d;
    in_child("filler", || {
        let private = Region::anon(PAGES, RW, MapFlags::PRIVATE)?;
        let shared = Region::anon(64, RW, MapFlags::SHARED)?;
        for r in [&private, &shared] {
            for off in (0..r.len).step_by(8) {
                r.write_u64(off, GARBAGE);
            }
        }
        Ok(())
    })?;
    let all_zero = |r: &Region| (0..r.len).step_by(8).find(|&off| r.read_u64(off) != 0);
    let private = Region::anon(PAGES, RW, MapFlags::PRIVATE)?;
    let shared = Region::anon(64, RW, MapFlags::SHARED)?;
    ensure!(all_zero(&private).is_none(), "fresh private memory not zero at {:?}", all_zero(&private));
    ensure!(all_zero(&shared).is_none(), "fresh shared memory not zero at {:?}", all_zero(&shared));
    in_child("filler", || {
        let garbage = Region::anon(PAGES, RW, MapFlags::PRIVATE)?;
        for off in (0..garbage.len).step_by(8) {
            garbage.write_u64(off, GARBAGE);
        }
        Ok(())
    })?;
    // Populated private memory comes in runs of frames, zeroed together.
    let populated = Region::anon(PAGES, RW, MapFlags::PRIVATE | MapFlags::POPULATE)?;
    ensure!(all_zero(&populated).is_none(), "populated private memory not zero at {:?}", all_zero(&populated));
    for off in (0..private.len).step_by(8) {
        private.write_u64(off, GARBAGE);
    }
    // SAFETY: the range is the region's own mapping, replaced as a whole; it
    // is only accessed through `private`, which stays valid (same range, RW).
    let again = unsafe {
        mem::mmap(private.addr, private.len, RW, MapFlags::PRIVATE | mem::MapFlags::ANONYMOUS | MapFlags::FIXED, -1, 0)
    }
    .ctx("mmap MAP_FIXED over the old range")?;
    ensure!(again == private.addr, "MAP_FIXED mapped at {again:#x}, not {:#x}", private.addr);
    ensure!(all_zero(&private).is_none(), "MAP_FIXED remap not zero at {:?}", all_zero(&private));
    Ok(())
}

/// The FP/SIMD registers survive a copy-on-write fault: the kernel copies
/// the page through v0-v7, which hold the user's values (all 128 bits each)
/// when the faulting store is made and after it.
pub fn fp_registers_survive_a_copy(_: &Context) -> TestResult {
    let p = Region::anon(1, RW, MapFlags::PRIVATE)?;
    for off in (0..P).step_by(8) {
        p.write_u64(off, 0x5555_5555_5555_5555 ^ off as u64);
    }
    in_child("copying child", || {
        let mut after = [0u128; 8];
        // SAFETY: the block sets v0-v7, stores one byte into the region's
        // page (shared with the parent since fork, so the store takes a
        // copy-on-write fault) and saves v0-v7 into `after`.
        unsafe {
            asm!(
                "mov x9, #0x0101", "dup v0.8h, w9", "mov x9, #0x0202", "dup v1.8h, w9",
                "mov x9, #0x0303", "dup v2.8h, w9", "mov x9, #0x0404", "dup v3.8h, w9",
                "mov x9, #0x0505", "dup v4.8h, w9", "mov x9, #0x0606", "dup v5.8h, w9",
                "mov x9, #0x0707", "dup v6.8h, w9", "mov x9, #0x0808", "dup v7.8h, w9",
                "strb w11, [x10]",
                "stp q0, q1, [x12]", "stp q2, q3, [x12, #32]", "stp q4, q5, [x12, #64]", "stp q6, q7, [x12, #96]",
                in("x10") p.addr,
                in("x11") 0xC0u64,
                in("x12") after.as_mut_ptr(),
                out("x9") _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _, out("v6") _,
                out("v7") _,
                options(nostack),
            )
        };
        for (i, &value) in after.iter().enumerate() {
            let want = u128::from_ne_bytes([i as u8 + 1; 16]);
            ensure!(value == want, "v{i} is {value:#x} after a copy-on-write fault, not {want:#x}");
        }
        ensure!(p.read(0) == 0xC0, "the faulting store was lost");
        ensure!(p.read_u64(8) == 0x5555_5555_5555_5555 ^ 8, "the copy lost the page's contents");
        Ok(())
    })?;
    ensure!(p.read_u64(0) == 0x5555_5555_5555_5555, "the child's store reached the parent's page");
    Ok(())
}
