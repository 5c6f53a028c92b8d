//! The kernel console: the board's PL011, shared behind a lock, with an
//! emergency path for panics and exception reports that must print even if
//! the lock is held by the code that crashed. Its receive side is a second
//! handle that only the UART's interrupt uses (a kernel thread may hold the
//! console's lock when the interrupt comes); input goes to [`crate::tty`].

use core::fmt::{self, Write};

use spin::Mutex;

use crate::driver::pl011::Pl011;

static CONSOLE: Mutex<Option<Pl011>> = Mutex::new(None);
/// The receiving handle: taken only with interrupts masked (in the
/// interrupt handler, and at start-up).
static RECEIVER: Mutex<Option<Pl011>> = Mutex::new(None);

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
    // SAFETY: as above; this handle only receives and touches the receive
    // interrupt bits, the other only sends.
    *RECEIVER.lock() = Some(unsafe { Pl011::new(base) });
}

/// Lets the UART interrupt when bytes arrive.
pub fn enable_receive_interrupts() {
    let irq = crate::arch::cpu::disable_irqs();
    if let Some(uart) = RECEIVER.lock().as_mut() {
        uart.enable_receive_interrupts();
    }
    crate::arch::cpu::restore_irqs(irq);
}

/// Takes every received byte to `take`, then clears the receive
/// interrupt. Called from the UART's interrupt.
pub fn receive(mut take: impl FnMut(u8)) {
    if let Some(uart) = RECEIVER.lock().as_mut() {
        while let Some(byte) = uart.read_byte() {
            take(byte);
        }
        uart.clear_receive_interrupts();
    }
}

/// Formats to the console (`\n` sent as `\r\n`): the kernel's own output.
pub fn print(args: fmt::Arguments<'_>) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Sends bytes as they are (a terminal's processed output and echo).
pub fn write_raw(data: &[u8]) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        for &byte in data {
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
