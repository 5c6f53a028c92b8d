//! `aspen-tlbi-check KERNEL.elf`: checks that every TLB invalidation in the
//! kernel's code is a broadcast one, apart from the allowed whole local
//! flushes (see `aspen_image_check::tlbi`). Prints one line per check and
//! `N passed, M failed`; exits 0 when all passed, 1 when one failed, 2 on a
//! usage error.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("usage: aspen-tlbi-check KERNEL.elf");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            println!("FAIL {path}: cannot read: {e}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    println!("checking the TLB invalidations of {path}");
    let report = aspen_image_check::tlbi::check_kernel(&bytes);
    for c in &report.checks {
        println!("{c}");
    }
    println!("{}", report.summary());
    if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
