//! Tests of boot: the device tree, the command line, exception reports.

use crate::arch::probe::probe;
use crate::{check, check_eq, kernel_test};

kernel_test!(
    fn command_line_ignores_unknown_words() -> TestResult {
        let line = crate::cmdline::CommandLine::parse("console=ttyAMA0 quiet panic=-1 init=/bin/sh semihosting");
        check_eq!(line.init, "/bin/sh");
        check!(line.semihosting);
        check_eq!(line.log_level, log::LevelFilter::Warn);
        check!(line.init_args().next().is_none());
        check_eq!(line.wx_policy, aspen_mm::aspace::WxPolicy::Flip);
        check_eq!(crate::cmdline::CommandLine::parse("aspen.wx=strict").wx_policy, aspen_mm::aspace::WxPolicy::Strict);
        check_eq!(crate::cmdline::CommandLine::parse("aspen.wx=on").wx_policy, aspen_mm::aspace::WxPolicy::Flip);
        check!(!line.asid_bits_8);
        check!(crate::cmdline::CommandLine::parse("aspen.asid_bits=8").asid_bits_8);
        check!(!crate::cmdline::CommandLine::parse("aspen.asid_bits=16").asid_bits_8);
        // Words after `--` belong to init, even ones the kernel would know.
        let line = crate::cmdline::CommandLine::parse("loglevel=7 -- --run-tests semihosting");
        check_eq!(line.log_level, log::LevelFilter::Debug);
        check!(!line.semihosting);
        check_eq!(line.init_args().collect::<alloc::vec::Vec<_>>(), alloc::vec!["--run-tests", "semihosting"]);
        Ok(())
    }
);

kernel_test!(
    fn data_abort_is_reported_decoded() -> TestResult {
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
    }
);

/// The value of `key=` on the command line the test harness booted with.
fn test_arg(key: &str) -> Option<&'static str> {
    crate::boot_info().bootargs.split_ascii_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

kernel_test!(
    fn device_tree_describes_the_machine() -> TestResult {
        let info = crate::boot_info();
        match info.source {
            crate::dtb::Source::DeviceTree => {
                // The runner says how much RAM it gave the machine.
                let expected_mib: u64 = test_arg("test.ram_mib")
                    .ok_or("booted with a device tree but no test.ram_mib= on the command line")?
                    .parse()
                    .map_err(|_| "test.ram_mib= is not a number")?;
                check_eq!(info.ram.total_size() >> 20, expected_mib);
                let dtb = info.dtb.ok_or("no DTB range recorded")?;
                check!(dtb.size() >= 40, "DTB range {dtb:?}");
                check!(info.bootargs.contains("semihosting"));
            }
            source => {
                // No usable DTB: the board's defaults and the built-in command line.
                check_eq!(info.ram.as_slice(), crate::board::BOARD.default_ram);
                check_eq!(info.bootargs, option_env!("ASPEN_DEFAULT_CMDLINE").unwrap_or(""));
                check!(info.dtb.is_none(), "{source:?} but a DTB range is recorded");
            }
        }
        Ok(())
    }
);
