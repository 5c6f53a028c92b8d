//! Whole-page operations on memory the kernel maps: zeroing by `DC ZVA`,
//! copying through SIMD registers, and making a page's new contents
//! visible to instruction fetch.

/// The page size these operations work on.
const PAGE: usize = 4096;

core::arch::global_asm!(
    ".arch_extension fp",
    ".arch_extension simd",
    ".section .text.pages, \"ax\"",
    // x0 = page, x1 = DC ZVA block size in bytes, at most 512: eight
    // blocks per iteration (the loop's compare and branch were a third of
    // the instructions with one).
    ".global aspen_zero_page",
    "aspen_zero_page:",
    "    add     x2, x0, #4096",
    "1:  dc      zva, x0",
    "    add     x0, x0, x1",
    "    dc      zva, x0",
    "    add     x0, x0, x1",
    "    dc      zva, x0",
    "    add     x0, x0, x1",
    "    dc      zva, x0",
    "    add     x0, x0, x1",
    "    dc      zva, x0",
    "    add     x0, x0, x1",
    "    dc      zva, x0",
    "    add     x0, x0, x1",
    "    dc      zva, x0",
    "    add     x0, x0, x1",
    "    dc      zva, x0",
    "    add     x0, x0, x1",
    "    cmp     x0, x2",
    "    b.lo    1b",
    "    ret",
    // x0 = destination page, x1 = source page: 256 bytes per iteration
    // through v0-v7, four registers a load or store. The kernel is built
    // soft-float and the FP/SIMD registers hold the running user task's
    // state (saved only at a task switch), so v0-v7 are kept on the stack
    // and given back before returning.
    ".global aspen_copy_page",
    "aspen_copy_page:",
    "    sub     sp, sp, #128",
    "    mov     x3, sp",
    "    st1     {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x3], #64",
    "    st1     {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x3]",
    "    add     x2, x1, #4096",
    "1:  ld1     {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x1], #64",
    "    ld1     {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x1], #64",
    "    st1     {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x0], #64",
    "    st1     {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x0], #64",
    "    ld1     {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x1], #64",
    "    ld1     {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x1], #64",
    "    st1     {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x0], #64",
    "    st1     {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x0], #64",
    "    cmp     x1, x2",
    "    b.lo    1b",
    "    mov     x3, sp",
    "    ld1     {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x3], #64",
    "    ld1     {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x3]",
    "    add     sp, sp, #128",
    "    ret",
);

extern "C" {
    fn aspen_zero_page(page: *mut u8, block: u64);
    fn aspen_copy_page(dst: *mut u8, src: *const u8);
}

/// The `DC ZVA` block size, or `None` when `DC ZVA` is prohibited.
fn zva_block() -> Option<u64> {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    (dczid & 0x10 == 0).then(|| 4 << (dczid & 0xf))
}

/// Zeroes the page at `page`.
///
/// # Safety
///
/// `page` is page aligned, mapped read-write as Normal memory, and the
/// caller's to overwrite.
pub unsafe fn zero(page: *mut u8) {
    match zva_block() {
        // SAFETY: the caller's promise; eight blocks divide the page.
        Some(block) if block * 8 <= PAGE as u64 => unsafe { aspen_zero_page(page, block) },
        // SAFETY: as above, byte by byte.
        _ => unsafe { core::ptr::write_bytes(page, 0, PAGE) },
    }
}

/// Copies the page at `src` to the page at `dst`.
///
/// # Safety
///
/// Both are distinct, page aligned and mapped (`dst` read-write and the
/// caller's to overwrite, `src` readable and unchanged during the copy).
pub unsafe fn copy(dst: *mut u8, src: *const u8) {
    // SAFETY: the caller's promise.
    unsafe { aspen_copy_page(dst, src) }
}

/// Bytes per data/instruction cache line, from CTR_EL0.
fn cache_lines() -> (u64, u64) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    let dline = 4 << ((ctr >> 16) & 0xf);
    let iline = 4 << (ctr & 0xf);
    (dline, iline)
}

/// Makes what was written to the page at `page` visible to instruction
/// fetch through any mapping of it: cleans the data cache to the point of
/// unification and invalidates the instruction cache, by address.
///
/// # Safety
///
/// `page` is page aligned and mapped (cache maintenance by address faults
/// on an unmapped one); its data does not change.
pub unsafe fn sync_icache(page: *const u8) {
    let start = page as u64;
    let (dline, iline) = cache_lines();
    // SAFETY: cache maintenance by address over one mapped page (the
    // caller's promise); it changes no data.
    unsafe {
        let mut at = start;
        while at < start + PAGE as u64 {
            core::arch::asm!("dc cvau, {}", in(reg) at, options(nostack, preserves_flags));
            at += dline;
        }
        core::arch::asm!("dsb ish", options(nostack, preserves_flags));
        let mut at = start;
        while at < start + PAGE as u64 {
            core::arch::asm!("ic ivau, {}", in(reg) at, options(nostack, preserves_flags));
            at += iline;
        }
        core::arch::asm!("dsb ish", "isb", options(nostack, preserves_flags));
    }
}
