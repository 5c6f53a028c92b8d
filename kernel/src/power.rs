//! Ending a run: power off, or stop with a failure status.

use crate::arch::{cpu, firmware};
use crate::board::BOARD;
use aspen_mm::board::PowerOff;

/// Powers the machine off: semihosting exit 0 when the command line asked
/// for it, then PSCI SYSTEM_OFF where the board has it; otherwise every
/// core is halted.
pub fn power_off() -> ! {
    firmware::semihosting_exit(0);
    if BOARD.power_off == PowerOff::Psci {
        firmware::psci_system_off();
    }
    crate::smp::stop_others();
    crate::console::emergency_print(format_args!(
        "aspen: {}: no firmware power-off; all cores halted, safe to remove power\n",
        BOARD.name
    ));
    cpu::halt()
}

/// Stops after a fatal error: the emulator exits with status 1 when
/// semihosting is enabled; otherwise every core halts.
pub fn fail_stop() -> ! {
    firmware::semihosting_exit(1);
    crate::smp::stop_others();
    cpu::halt()
}
