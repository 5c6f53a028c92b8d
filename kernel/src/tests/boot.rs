//! Tests of boot: the device tree, the command line, exception reports.

use crate::arch::probe::probe;
use crate::ktest::TestResult;
use crate::{check, check_eq, kernel_test};

kernel_test!(fn command_line_ignores_unknown_words() -> TestResult {
    let line = crate::cmdline::CommandLine::parse("console=ttyAMA0 quiet panic=-1 init=/bin/sh semihosting");
    check_eq!(line.init, "/bin/sh");
    check!(line.semihosting);
    check_eq!(line.log_level, log::LevelFilter::Warn);
    Ok(())
});

kernel_test!(fn data_abort_is_reported_decoded() -> TestResult {
    // An address in the high half that nothing maps.
    let unmapped = 0xFFFF_8000_0000_0000u64 as *const u64;
    // SAFETY: the read faults; the probe turns the fault into a value.
    let fault = match probe(|| unsafe { unmapped.read_volatile() }) {
        Ok(v) => return Err(alloc::format!("read of an unmapped address returned {v:#x}")),
        Err(fault) => fault,
    };
    let report = alloc::format!("{}", fault.syndrome);
    crate::println!("expected exception (deliberate):\n{}", report);
    check_eq!(fault.syndrome.far, unmapped as u64);
    check!(report.contains("Data Abort from the same EL"), "report: {report}");
    check!(report.contains("read: translation fault"), "report: {report}");
    Ok(())
});
