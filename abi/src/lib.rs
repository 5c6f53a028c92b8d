//! Aspen's Linux ABI: everything that must match what Linux gives an aarch64
//! user program, bit for bit, and that needs no privileged instruction.
//!
//! - [`clone`]: the flags and arguments of `clone` and `clone3`, checked.
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
//! - [`futex`]: `futex` operations, `FUTEX_WAKE_OP`, the PI word protocol and
//!   robust lists.
//! - [`sched`]: scheduling policies and the checks of the `sched_*` calls.
//! - [`timer`]: POSIX timers' `struct sigevent` and `struct itimerspec`.
//! - [`fcntl`]: the flags of `openat` and the `*at` calls, the commands of
//!   `fcntl` and the flags of `pipe2`.
//! - [`poll`]: `struct pollfd` and its events, `PIPE_BUF`.
//! - [`resource`]: resource limits, their defaults and the rules for
//!   changing them.
//! - [`mman`]: the flags and values of the memory system calls.
//! - [`tty`]: `struct termios`, `struct winsize`, the terminal `ioctl`s and
//!   the n_tty line discipline (canonical editing, echo, signal keys).
//! - [`uaccess`]: user pointers checked once, and the interface every
//!   copy to or from user memory goes through.
//! - [`cred`]: user and group ids, the rules for changing them and the
//!   permission check of mode bits.
//! - [`sysinfo`]: load averages as Linux computes them, `struct sysinfo`.
//! - [`errno`]: the Linux error numbers these return.
//!
//! Nothing here panics on bad input: every parser returns a typed error that
//! names the Linux error number a system call reports for it.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

/// `from_register` for a flags type: the flags a system call's argument
/// register holds, unknown bits kept (so a call can refuse them as Linux
/// does): the low 32 bits for an argument Linux declares `int`, all 64 for
/// an `unsigned long`.
macro_rules! flags_from_register {
    ($flags:ident: int) => {
        impl $flags {
            /// The flags a system call's register holds: its low 32 bits
            /// (an `int`), unknown bits kept.
            pub const fn from_register(raw: u64) -> $flags {
                $flags::from_bits_retain(raw as u32)
            }
        }
    };
    ($flags:ident: long) => {
        impl $flags {
            /// The flags a system call's register holds (an `unsigned
            /// long`), unknown bits kept.
            pub const fn from_register(raw: u64) -> $flags {
                $flags::from_bits_retain(raw)
            }
        }
    };
}

pub mod clone;
pub mod cred;
pub mod elf;
pub mod errno;
pub mod fcntl;
pub mod futex;
pub mod hwcap;
pub mod mman;
pub mod poll;
pub mod resource;
pub mod sched;
pub mod script;
pub mod signal;
pub mod stack;
pub mod syscall;
pub mod sysinfo;
pub mod timer;
pub mod tty;
pub mod uaccess;
pub mod wait;

pub use errno::Errno;

/// The page size of the user ABI (4 KiB granule), as in `AT_PAGESZ`.
pub const PAGE_SIZE: u64 = 4096;

/// One past the highest user address: 48-bit virtual addresses (`TASK_SIZE`).
pub const USER_ADDR_END: u64 = 1 << 48;
