//! Faults that kill: each access runs in a child that must end with SIGSEGV
//! (wait status & 0x7f == 11).

use core::arch::asm;

use aspen_sys::mem::{self, PAGE_SIZE as P};
use aspen_sys::mem::{MapFlags, Prot};

use crate::ensure;
use crate::harness::{expect_sigsegv, in_child, probe_call, probe_read, probe_write, Context, Ctx, Region, TestResult};

/// A lowest-half kernel address (TTBR1 space): never user-accessible.
const KERNEL_ADDRESS: usize = 0xffff_0000_0000_0000;
/// The A64 `ret` instruction.
const RET: u32 = 0xd65f_03c0;

/// Constant data in .rodata (R+X segment).
static RODATA: [u8; 16] = *b"read-only bytes!";

/// Reads of a page unmapped from a mapping, of address 0 and of a kernel
/// address.
pub fn unmapped(_: &Context) -> TestResult {
    let r = Region::anon(2, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    r.write(P, 1);
    // SAFETY: page 1 of `r` is only probed (in children) after this.
    unsafe { mem::munmap(r.page(1), P) }.ctx("munmap")?;
    expect_sigsegv("read of an unmapped page", || {
        probe_read(r.page(1));
        Ok(())
    })?;
    expect_sigsegv("write to an unmapped page", || {
        probe_write(r.page(1), 1);
        Ok(())
    })?;
    expect_sigsegv("read of address 0", || {
        probe_read(0);
        Ok(())
    })?;
    expect_sigsegv("read of a kernel address", || {
        probe_read(KERNEL_ADDRESS);
        Ok(())
    })
}

/// Writes to a PROT_READ mapping, to a page made read-only after it was
/// written, to .rodata and to the program's own code.
pub fn write_readonly(_: &Context) -> TestResult {
    let ro = Region::anon(1, Prot::READ, MapFlags::PRIVATE)?;
    expect_sigsegv("write to a PROT_READ page", || {
        probe_write(ro.addr, 1);
        Ok(())
    })?;
    let was_rw = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    was_rw.write(0, 0x5A);
    // SAFETY: the page is only read (or probed in children) after this.
    unsafe { mem::mprotect(was_rw.addr, P, Prot::READ) }.ctx("mprotect PROT_READ")?;
    expect_sigsegv("write to a page made read-only", || {
        probe_write(was_rw.addr, 1);
        Ok(())
    })?;
    ensure!(was_rw.read(0) == 0x5A, "a page made read-only lost its contents");
    expect_sigsegv("write to .rodata", || {
        probe_write(RODATA.as_ptr() as usize + 3, 0);
        Ok(())
    })?;
    expect_sigsegv("write to the program's code", || {
        probe_write(write_readonly as *const () as usize, 0);
        Ok(())
    })
}

/// Reads and writes of a PROT_NONE mapping, and of a page made PROT_NONE
/// after it was written.
pub fn read_prot_none(_: &Context) -> TestResult {
    let none = Region::anon(1, Prot::NONE, MapFlags::PRIVATE)?;
    expect_sigsegv("read of a PROT_NONE page", || {
        probe_read(none.addr);
        Ok(())
    })?;
    expect_sigsegv("write to a PROT_NONE page", || {
        probe_write(none.addr, 1);
        Ok(())
    })?;
    let was_rw = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    was_rw.write(0, 0x77);
    // SAFETY: the page is only probed in children after this.
    unsafe { mem::mprotect(was_rw.addr, P, Prot::NONE) }.ctx("mprotect PROT_NONE")?;
    expect_sigsegv("read of a page made PROT_NONE", || {
        probe_read(was_rw.addr);
        Ok(())
    })
}

/// Cleans the data cache line of `addr` and invalidates its instruction cache
/// line, so that code written there can run (EL0 cache maintenance, which
/// Linux allows with SCTLR_EL1.UCI).
pub(crate) fn sync_icache(addr: usize) {
    // SAFETY: cache maintenance by address changes no memory contents.
    unsafe {
        asm!(
            "dc cvau, {a}", "dsb ish", "ic ivau, {a}", "dsb ish", "isb",
            a = in(reg) addr, options(nostack, preserves_flags)
        )
    };
}

/// Executing a RW page and a PROT_READ page kills with SIGSEGV; the same
/// `ret` runs in a PROT_READ | PROT_EXEC page (the positive control).
pub fn exec_noexec(_: &Context) -> TestResult {
    let code = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::PRIVATE)?;
    for (i, byte) in RET.to_le_bytes().into_iter().enumerate() {
        code.write(i, byte);
    }
    sync_icache(code.addr);
    expect_sigsegv("call into a RW (non-exec) page", || {
        probe_call(code.addr);
        Ok(())
    })?;
    // SAFETY: the page is only read or executed after this.
    unsafe { mem::mprotect(code.addr, P, Prot::READ | Prot::EXEC) }.ctx("mprotect R+X")?;
    in_child("call into an R+X page (positive control)", || {
        probe_call(code.addr);
        Ok(())
    })?;
    // SAFETY: the page is only read (and probed in children) after this.
    unsafe { mem::mprotect(code.addr, P, Prot::READ) }.ctx("mprotect PROT_READ")?;
    expect_sigsegv("call into a PROT_READ page", || {
        probe_call(code.addr);
        Ok(())
    })
}
