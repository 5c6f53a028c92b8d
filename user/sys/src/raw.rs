//! Raw Linux aarch64 system calls: number in x8, arguments in x0..x5,
//! `svc #0`, result in x0; a result in [-4095, -1] is `-errno`.
//!
//! These are the building blocks of the typed wrappers. Tests use them
//! directly to pass arguments the typed wrappers cannot express (bad pointers,
//! unknown numbers).

use core::arch::asm;

/// System-call numbers, from the ABI crate.
pub use aspen_abi::syscall::Sysno;

/// System call `n` without arguments.
///
/// # Safety
/// The call must not break memory the program relies on (see [`syscall6`]).
#[inline(always)]
pub unsafe fn syscall0(n: usize) -> isize {
    let ret: isize;
    // SAFETY: `svc #0` enters the kernel, which preserves every register but x0;
    // the caller vouches for the call's effect on memory.
    unsafe { asm!("svc #0", in("x8") n, lateout("x0") ret, options(nostack)) };
    ret
}

/// System call `n` with one argument.
///
/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall1(n: usize, a0: usize) -> isize {
    let ret: isize;
    // SAFETY: as in `syscall0`.
    unsafe { asm!("svc #0", in("x8") n, inlateout("x0") a0 as isize => ret, options(nostack)) };
    ret
}

/// System call `n` with two arguments.
///
/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall2(n: usize, a0: usize, a1: usize) -> isize {
    let ret: isize;
    // SAFETY: as in `syscall0`.
    unsafe { asm!("svc #0", in("x8") n, inlateout("x0") a0 as isize => ret, in("x1") a1, options(nostack)) };
    ret
}

/// System call `n` with three arguments.
///
/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall3(n: usize, a0: usize, a1: usize, a2: usize) -> isize {
    let ret: isize;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("svc #0", in("x8") n, inlateout("x0") a0 as isize => ret, in("x1") a1, in("x2") a2,
             options(nostack))
    };
    ret
}

/// System call `n` with four arguments.
///
/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall4(n: usize, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret: isize;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("svc #0", in("x8") n, inlateout("x0") a0 as isize => ret, in("x1") a1, in("x2") a2,
             in("x3") a3, options(nostack))
    };
    ret
}

/// System call `n` with five arguments.
///
/// # Safety
/// See [`syscall6`].
#[inline(always)]
pub unsafe fn syscall5(n: usize, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret: isize;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("svc #0", in("x8") n, inlateout("x0") a0 as isize => ret, in("x1") a1, in("x2") a2,
             in("x3") a3, in("x4") a4, options(nostack))
    };
    ret
}

/// System call `n` with six arguments.
///
/// # Safety
/// Pointer arguments must be valid for what the call does with them, and the
/// call must not unmap, remap or change memory that Rust code still uses.
#[inline(always)]
pub unsafe fn syscall6(n: usize, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
    let ret: isize;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("svc #0", in("x8") n, inlateout("x0") a0 as isize => ret, in("x1") a1, in("x2") a2,
             in("x3") a3, in("x4") a4, in("x5") a5, options(nostack))
    };
    ret
}
