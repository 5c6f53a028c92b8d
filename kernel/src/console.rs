//! The kernel console: the board's PL011, shared behind a lock, with an
//! emergency path for panics and exception reports that must print even if
//! the lock is held by the code that crashed.

use core::fmt::{self, Write};

use spin::Mutex;

use crate::driver::pl011::Pl011;

static CONSOLE: Mutex<Option<Pl011>> = Mutex::new(None);

/// Starts the console on the PL011 at virtual address `base`.
///
/// # Safety
/// `base` must map the board's console PL011 as device memory for the rest
/// of the kernel's life.
pub unsafe fn init(base: usize, clock_hz: u32, program_baud: bool) {
    // SAFETY: guaranteed by the caller.
    let mut uart = unsafe { Pl011::new(base) };
    if program_baud {
        uart.init(clock_hz);
    }
    *CONSOLE.lock() = Some(uart);
}

pub fn print(args: fmt::Arguments<'_>) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Writes raw bytes (a task's output), with `\n` sent as `\r\n`.
pub fn write_bytes(data: &[u8]) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        for &byte in data {
            if byte == b'\n' {
                uart.write_byte(b'\r');
            }
            uart.write_byte(byte);
        }
    }
}

/// Prints even if the console lock is held (by a CPU that crashed with it).
pub fn emergency_print(args: fmt::Arguments<'_>) {
    let mut guard = CONSOLE.try_lock();
    if guard.is_none() {
        // SAFETY: the holder is not making progress (we are on the crash
        // path of this CPU, and only one CPU runs); interleaved output is
        // acceptable there.
        unsafe { CONSOLE.force_unlock() };
        guard = CONSOLE.try_lock();
    }
    if let Some(uart) = guard.as_mut().and_then(|g| g.as_mut()) {
        let _ = uart.write_fmt(args);
        uart.flush();
    }
}

/// Reads one byte if one is waiting.
pub fn read_byte() -> Option<u8> {
    CONSOLE.lock().as_mut().and_then(Pl011::read_byte)
}

/// Whether a byte is waiting to be read (without taking it).
pub fn input_pending() -> bool {
    CONSOLE.lock().as_ref().is_some_and(Pl011::has_input)
}

/// Formats to the console, as `std::print!`.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Formats a line to the console, as `std::println!`.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
