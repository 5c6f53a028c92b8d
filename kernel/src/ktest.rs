//! The in-kernel test harness.
//!
//! Tests are registered with [`kernel_test!`] into the `.kernel_tests` link
//! section and run at boot when the command line says `aspen.ktest`: every
//! image carries its self-tests, so the image on an SD card can be tested on
//! the board it boots. Results go to
//! the console in the protocol the host runner (`tests/runner`) parses:
//!
//! ```text
//! TEST-SUITE kernel <count>
//! TEST-RUN <name>
//! TEST-OK <name>            or   TEST-FAIL <name>: <message>
//! TEST-DONE <passed> <failed>
//! TEST-FINISHED
//! ```
//!
//! A test returns `Err(message)` to fail. A panic inside a test is reported
//! as that test's failure by the panic handler, and ends the run.

use alloc::string::String;
use core::sync::atomic::{AtomicPtr, Ordering};

/// What a test returns: `Err` carries the failure message.
pub type TestResult = Result<(), String>;

/// One registered test.
#[repr(C)]
pub struct KernelTest {
    pub name: &'static str,
    pub run: fn() -> TestResult,
}

/// Defines a test function and registers it.
///
/// ```ignore
/// kernel_test!(fn frame_pool_counts() -> TestResult { check!(1 + 1 == 2); Ok(()) });
/// ```
#[macro_export]
macro_rules! kernel_test {
    (fn $name:ident() -> TestResult $body:block) => {
        fn $name() -> $crate::ktest::TestResult $body
        const _: () = {
            #[used]
            #[link_section = ".kernel_tests"]
            static TEST: $crate::ktest::KernelTest = $crate::ktest::KernelTest {
                name: $crate::ktest::short_name(concat!(module_path!(), "::", stringify!($name))),
                run: $name,
            };
        };
    };
}

/// Fails the test with the condition's text and location unless it holds.
#[macro_export]
macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err(alloc::format!("check failed: {} at {}:{}", stringify!($cond), file!(), line!()));
        }
    };
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(alloc::format!("{} ({} at {}:{})", format_args!($($msg)+), stringify!($cond), file!(), line!()));
        }
    };
}

/// Fails the test unless both sides are equal, showing both.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err(alloc::format!(
                "{} == {} failed: {:?} != {:?} at {}:{}",
                stringify!($left),
                stringify!($right),
                l,
                r,
                file!(),
                line!()
            ));
        }
    }};
}

/// A test's name without the crate and `tests` module prefix:
/// `memory::frame_pool_accounting_returns_to_baseline`.
pub const fn short_name(path: &'static str) -> &'static str {
    const PREFIX: &[u8] = b"aspen::tests::";
    let bytes = path.as_bytes();
    if bytes.len() <= PREFIX.len() {
        return path;
    }
    let mut i = 0;
    while i < PREFIX.len() {
        if bytes[i] != PREFIX[i] {
            return path;
        }
        i += 1;
    }
    let (_, rest) = bytes.split_at(PREFIX.len());
    match core::str::from_utf8(rest) {
        Ok(rest) => rest,
        Err(_) => path,
    }
}

extern "C" {
    static __kernel_tests_start: u8;
    static __kernel_tests_end: u8;
}

fn registered() -> &'static [KernelTest] {
    // SAFETY: the linker script places every `KernelTest` static between
    // these two symbols, contiguously and aligned, in read-only data.
    unsafe {
        let start = core::ptr::addr_of!(__kernel_tests_start) as *const KernelTest;
        let end = core::ptr::addr_of!(__kernel_tests_end) as *const KernelTest;
        let count = (end as usize - start as usize) / core::mem::size_of::<KernelTest>();
        core::slice::from_raw_parts(start, count)
    }
}

/// The name of the test running now, for the panic handler.
static RUNNING: AtomicPtr<KernelTest> = AtomicPtr::new(core::ptr::null_mut());

/// The test that is running, if any.
pub fn running() -> Option<&'static str> {
    let test = RUNNING.load(Ordering::Acquire);
    // SAFETY: RUNNING only ever holds null or a pointer into `registered()`.
    (!test.is_null()).then(|| unsafe { (*test).name })
}

/// Runs every registered test and reports; returns true if all passed.
pub fn run_all() -> bool {
    let tests = registered();
    crate::println!("TEST-SUITE kernel {}", tests.len());
    let (mut passed, mut failed) = (0, 0);
    for test in tests {
        crate::println!("TEST-RUN {}", test.name);
        RUNNING.store(test as *const KernelTest as *mut KernelTest, Ordering::Release);
        let result = (test.run)();
        RUNNING.store(core::ptr::null_mut(), Ordering::Release);
        match result {
            Ok(()) => {
                passed += 1;
                crate::println!("TEST-OK {}", test.name);
            }
            Err(message) => {
                failed += 1;
                crate::println!("TEST-FAIL {}: {}", test.name, message);
            }
        }
    }
    crate::println!("TEST-DONE {} {}", passed, failed);
    failed == 0
}
