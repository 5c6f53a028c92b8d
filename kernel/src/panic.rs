//! The panic handler: says what and where, reports the running test as
//! failed, and stops (ending QEMU with a failure status in test runs).

use core::panic::PanicInfo;

use crate::console::emergency_print;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    emergency_print(format_args!("\nKERNEL PANIC: {} at {}:{}\n", info.message(), file, line));
    crate::failslab::report_callers(|address| {
        emergency_print(format_args!("  after an injected allocation failure; text on its stack: {address:#x}\n"))
    });
    if let Some(test) = crate::ktest::running() {
        emergency_print(format_args!("TEST-FAIL {}: panicked: {}\n", test, info.message()));
    }
    crate::power::fail_stop()
}
