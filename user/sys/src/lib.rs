//! `aspen-sys`: the runtime of Aspen's own user programs (`/init`, `usertests`, ...).
//!
//! The programs are static aarch64 ELF files that speak the Linux aarch64
//! system-call ABI, so they run unchanged on Aspen and on Linux. This crate
//! gives them what a libc would:
//!
//! - `_start` ([`start`]): reads argc/argv from the initial stack and calls the
//!   program's `main(Args) -> i32` (declared with [`entry!`]), then `exit_group`;
//! - raw `svc #0` calls ([`raw`]) and typed wrappers returning
//!   `Result<_, Errno>` ([`fs`], [`path`], [`links`], [`sendfile`], [`fd`], [`process`], [`mem`], [`time`], [`signal`],
//!   [`thread`], [`tty`]);
//! - a line-buffered stdout ([`print!`], [`println!`]: one `write` per line, so
//!   lines of parent and child never mix) and [`eprintln!`] on fd 2;
//! - a panic handler (prints the message on fd 2, exits with 101);
//! - a global allocator on `mmap` ([`heap`]), so `alloc`'s `Vec` and `String` work.
//!
//! The process-global state (heap, stdout) has no locks: programs may start
//! threads ([`thread`]) whose bodies use neither.
#![no_std]

mod global;
mod heap;
mod panic;

pub mod fd;
pub mod fs;
pub mod io;
pub mod links;
pub mod mem;
pub mod meminfo;
pub mod path;
pub mod process;
pub mod raw;
pub mod sendfile;
pub mod signal;
pub mod start;
pub mod thread;
pub mod time;
pub mod tty;

pub use aspen_abi::errno::{self, Errno};
/// The auxiliary vector's `AT_*` keys (for [`Args::auxv`]).
pub use aspen_abi::stack as aux;
pub use start::Args;

/// Declares the program's entry point: `aspen_sys::entry!(main);` with
/// `fn main(args: aspen_sys::Args) -> i32`. The returned value is the exit code.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        fn __aspen_main(args: $crate::Args) -> i32 {
            let main: fn($crate::Args) -> i32 = $main;
            main(args)
        }
    };
}
