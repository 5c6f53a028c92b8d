//! Aspen's Linux ABI: everything that must match what Linux gives an aarch64
//! user program, bit for bit, and that needs no privileged instruction.
//!
//! - [`elf`]: an executable file (untrusted bytes) checked and turned into a
//!   load plan: segments, pages to map, bytes to zero, the program break.
//! - [`stack`]: the initial user stack of `execve` (argc, argv, envp, auxv and
//!   the strings), laid out as Linux lays it out.
//! - [`wait`]: wait statuses and `wait4` options.
//! - [`signal`]: signal numbers, `sigaction`, `siginfo` and the `rt_sigframe`
//!   a handler finds on its stack.
//! - [`syscall`]: system call numbers and the structures they exchange
//!   (`timespec`, `stat`, `linux_dirent64`, `utsname`), clock ids and
//!   `reboot` commands.
//! - [`fcntl`]: the flags of `openat` and the `*at` calls.
//! - [`mman`]: the flags and values of the memory system calls.
//! - [`uaccess`]: user pointers checked once, and the interface every
//!   copy to or from user memory goes through.
//! - [`errno`]: the Linux error numbers these return.
//!
//! Nothing here panics on bad input: every parser returns a typed error that
//! names the Linux error number a system call reports for it.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod elf;
pub mod errno;
pub mod fcntl;
pub mod mman;
pub mod signal;
pub mod stack;
pub mod syscall;
pub mod uaccess;
pub mod wait;

pub use errno::Errno;

/// The page size of the user ABI (4 KiB granule), as in `AT_PAGESZ`.
pub const PAGE_SIZE: u64 = 4096;

/// One past the highest user address: 48-bit virtual addresses (`TASK_SIZE`).
pub const USER_ADDR_END: u64 = 1 << 48;
