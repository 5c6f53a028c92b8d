//! The panic handler: print the message on stderr, exit with 101 (as Rust's
//! std does for a panicking main thread). panic = abort: nothing unwinds.

use core::fmt::Write;
use core::panic::PanicInfo;

use crate::fs::STDERR;
use crate::io::{self, FdWriter};
use crate::process;

/// Exit code of a process that panicked.
const PANIC_EXIT_CODE: i32 = 101;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // `flush` does nothing if the panic came from inside stdout itself.
    io::flush();
    let mut w = FdWriter::<256>::new(STDERR);
    let _ = writeln!(w, "{info}");
    w.flush();
    process::exit_group(PANIC_EXIT_CODE)
}
