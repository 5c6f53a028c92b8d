//! Process entry: `_start` and the program's arguments.
//!
//! At entry (Linux aarch64 ELF ABI) `sp` points at `argc`, then `argv[0..argc]`,
//! NULL, `envp[...]`, NULL, then the auxiliary vector ([`Args::auxv`]). `_start`
//! clears the frame chain, passes `sp` to Rust, which builds [`Args`], calls the
//! program's `main` (see [`crate::entry!`]), flushes stdout and exits the
//! process with `main`'s result.

use core::ffi::{c_char, CStr};

use crate::{io, process};

core::arch::global_asm!(
    ".pushsection .text.aspen_start, \"ax\"",
    ".globl _start",
    ".type _start, %function",
    "_start:",
    "    mov x29, xzr",
    "    mov x30, xzr",
    "    mov x0, sp",
    "    and x1, x0, #-16",
    "    mov sp, x1",
    "    bl {entry}",
    "    brk #0",
    ".size _start, . - _start",
    ".popsection",
    entry = sym start_rust,
);

extern "Rust" {
    /// The program's `main`, defined by [`crate::entry!`].
    fn __aspen_main(args: Args) -> i32;
}

/// Called by `_start` with the initial stack pointer.
///
/// # Safety
/// `sp` must be the initial stack pointer the kernel gave the process.
unsafe extern "C" fn start_rust(sp: *const usize) -> ! {
    // SAFETY: `_start` passes the kernel's initial sp, which holds argc and the
    // argv pointer array (Linux process-start ABI).
    let args = unsafe { Args::from_initial_stack(sp) };
    // SAFETY: `entry!` defines `__aspen_main` with exactly this signature.
    let code = unsafe { __aspen_main(args) };
    io::flush();
    process::exit_group(code)
}

/// The program's arguments (`argv`), as the kernel passed them.
#[derive(Clone, Copy)]
pub struct Args {
    argc: usize,
    argv: *const *const c_char,
}

impl Args {
    /// # Safety
    /// `sp` must point at argc followed by argc valid C-string pointers.
    unsafe fn from_initial_stack(sp: *const usize) -> Self {
        // SAFETY: per the caller, sp points at argc; argv follows it.
        unsafe { Self { argc: *sp, argv: sp.add(1).cast() } }
    }

    /// Argument `i`.
    pub fn get(&self, i: usize) -> Option<&'static CStr> {
        if i >= self.argc {
            return None;
        }
        // SAFETY: i < argc, and the kernel put argc valid, NUL-terminated
        // strings there; the initial stack lives as long as the process.
        unsafe { Some(CStr::from_ptr(*self.argv.add(i))) }
    }

    /// All arguments, `argv[0]` first.
    pub fn iter(&self) -> impl Iterator<Item = &'static CStr> + '_ {
        (0..self.argc).filter_map(|i| self.get(i))
    }

    /// The environment (`envp`), which follows argv's NULL on the stack.
    pub fn env(&self) -> impl Iterator<Item = &'static CStr> + '_ {
        (self.argc + 1..)
            .map(|i| {
                // SAFETY: the kernel's pointer array runs from argv[0] through
                // argv's NULL and the envp pointers to envp's NULL; the walk
                // stops at that NULL, so every slot read is inside it.
                unsafe { *self.argv.add(i) }
            })
            .take_while(|p| !p.is_null())
            .map(|p| {
                // SAFETY: a non-NULL envp entry points at a NUL-terminated
                // string of the initial stack, which lives as long as the
                // process.
                unsafe { CStr::from_ptr(p) }
            })
    }

    /// The auxiliary vector: its `(type, value)` pairs up to `AT_NULL`, which
    /// follow envp's NULL on the stack.
    pub fn auxv(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let envc = self.env().count();
        // SAFETY: the pointer array ends with envp's NULL at index
        // argc + 1 + envc; the auxiliary vector's pairs of words follow it.
        let vector = unsafe { self.argv.add(self.argc + envc + 2).cast::<u64>() };
        (0..)
            .map(move |i| {
                // SAFETY: the kernel ends the vector with an AT_NULL pair and
                // the walk stops there, so every pair read is inside it.
                unsafe { (*vector.add(2 * i), *vector.add(2 * i + 1)) }
            })
            .take_while(|&(key, _)| key != 0)
    }

    /// The value of auxiliary vector entry `key` (an `AT_*` number).
    pub fn aux(&self, key: u64) -> Option<u64> {
        self.auxv().find(|&(k, _)| k == key).map(|(_, value)| value)
    }
}
