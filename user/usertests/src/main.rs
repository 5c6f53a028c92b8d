//! `usertests`: the end-to-end test suite of Aspen's address-space semantics,
//! run as an ordinary user program (Linux semantics are the reference: the
//! suite passes on Linux, see `tests/mod.rs` for the few documented
//! differences).
//!
//! Usage: `usertests [--finish] [NAME...]` runs every test (or the named
//! ones; the long tests, `tests::LONG_TESTS`, only when named) and reports
//! in Aspen's test protocol on stdout:
//!
//! ```text
//! TEST-SUITE user <count>
//! TEST-RUN <name>
//! TEST-OK <name>            or   TEST-FAIL <name>: <message>
//! TEST-DONE <passed> <failed>
//! TEST-FINISHED             only with --finish: the run is over
//! ```
//!
//! `--finish` is for the last program of an autorun script (`/init` runs
//! `/bin/usertests --finish` by default), since the serial-console runner waits
//! for `TEST-FINISHED`. The exit code is 0 when every test passed, else 1 (2 for
//! an unknown test name). `usertests --child-exit N` only exits with N: the tests
//! execve the program itself that way. `usertests --child-argv ...` (a test
//! script's interpreter) exits 0 when its argv equals its environment.
//! `usertests --child-argc N ...` exits 0 when N arguments follow (the
//! argument-limit test). `usertests --child-fds A B ...` exits with bit i set when descriptor
//! argument i is open (close-on-exec tests).
//! `usertests --child-auxv` (the interpreter of a test PIE) exits 0 when its
//! auxiliary vector describes that PIE.
//! `usertests --child-signals` exits 0 when its signal actions and mask are
//! what `execve` leaves (the `signal_exec_resets_handlers` test).
//! `usertests --failslab-exec ...` and `--failslab-tail ...` are the programs
//! a run of `release_and_exec_failures_end_cleanly` execs.
#![no_std]
#![no_main]

extern crate alloc;

mod harness;
mod procfs;
mod tests;

use core::ffi::CStr;
use core::fmt;

use aspen_sys::mem::PAGE_SIZE;
use aspen_sys::process::{self, Fork};
use aspen_sys::{println, Args};

use harness::{Context, Outcome};

aspen_sys::entry!(main);

/// Path used to execve this program when argv[0] is not a path.
const DEFAULT_EXE: &CStr = c"/bin/usertests";
/// Bytes of stack the suite process faults in before its baseline; its
/// deepest path (printing, reading /proc/meminfo) stays well inside.
const STACK_PRETOUCH: usize = 48 * 1024;

fn main(args: Args) -> i32 {
    if args.get(1).map(CStr::to_bytes) == Some(b"--child-exit") {
        return args.get(2).and_then(|a| a.to_str().ok()?.parse().ok()).unwrap_or(-1);
    }
    if args.get(1) == Some(tests::signals::CHILD_SIGNALS) {
        return tests::signals::child_signals();
    }
    if args.get(1) == Some(tests::elf::CHILD_AUXV) {
        return tests::elf::child_auxv(&args);
    }
    if args.get(1) == Some(tests::args::CHILD_ARGC) {
        return tests::args::child_argc(&args);
    }
    if args.get(1) == Some(tests::script::CHILD_ARGV) {
        return argv_matches_env(&args);
    }
    if args.get(1) == Some(tests::failslab::EXEC_STAGE) {
        return tests::failslab::exec_stage(&args);
    }
    if args.get(1) == Some(tests::failslab::EXEC_TAIL) {
        return tests::failslab::exec_tail(&args);
    }
    if args.get(1) == Some(tests::pipes::CHILD_FDS) {
        let fds = args.iter().skip(2).map(|a| a.to_str().ok().and_then(|a| a.parse().ok()).unwrap_or(-1));
        return tests::pipes::open_fds_mask(fds);
    }
    let finish = args.iter().skip(1).any(|a| a.to_bytes() == b"--finish");
    let names = || args.iter().skip(1).filter(|a| !a.to_bytes().starts_with(b"--"));
    let named = |name: &str| names().any(|n| n.to_bytes() == name.as_bytes());
    // The long tests run only when named.
    let selected = |test: &&harness::Test| {
        named(test.name) || (names().next().is_none() && tests::TESTS.iter().any(|t| t.name == test.name))
    };
    let all = || tests::TESTS.iter().chain(tests::LONG_TESTS);
    if let Some(unknown) = names().find(|n| all().all(|t| t.name.as_bytes() != n.to_bytes())) {
        println!("usertests: no test named {unknown:?}");
        return 2;
    }

    let exe = args.get(0).filter(|a| a.to_bytes().contains(&b'/')).unwrap_or(DEFAULT_EXE);
    let ctx = set_up(exe);

    let count = all().filter(selected).count();
    println!("TEST-SUITE user {count}");
    let (mut passed, mut failed) = (0, 0);
    for test in all().filter(selected) {
        println!("TEST-RUN {}", test.name);
        match harness::run(test, &ctx) {
            Outcome::Passed => {
                passed += 1;
                println!("TEST-OK {}", test.name);
            }
            outcome => {
                failed += 1;
                println!("TEST-FAIL {}: {}", test.name, Why(&outcome));
            }
        }
    }
    println!("TEST-DONE {passed} {failed}");
    if finish {
        println!("TEST-FINISHED");
    }
    i32::from(failed != 0)
}

/// `usertests --child-argv ...`, run as a script's interpreter: exits 0 when
/// argv (the interpreter's, as execve rewrote it) equals the environment (the
/// argv the test expects), else prints both and exits 1.
fn argv_matches_env(args: &Args) -> i32 {
    if args.iter().eq(args.env()) {
        return 0;
    }
    println!("usertests --child-argv: argv {:?}", args.iter().collect::<alloc::vec::Vec<_>>());
    println!("usertests --child-argv: expected {:?}", args.env().collect::<alloc::vec::Vec<_>>());
    1
}

/// Prepares the suite process and takes the free-memory baseline.
///
/// Everything the suite process will touch later is touched first, so that its
/// own memory use is flat from the baseline on: its image (text pages read,
/// data and bss pages written), its stack, the report page, the test files
/// in /tmp (files keep their pages while they exist; the suite has no unlink,
/// so it creates them here at their final size), the real programs' files
/// (read whole into the page cache, where their execs would leave them), and
/// one fork/exit/wait cycle (the kernel's first-use allocations).
fn set_up(exe: &'static CStr) -> Context {
    touch_image();
    touch_stack();
    if let Err(e) = harness::init_report() {
        println!("usertests: cannot map the report page: {e}");
        process::exit_group(1);
    }
    if let Err(e) = tests::file::create_files() {
        println!("usertests: set-up: {e}");
    }
    if let Err(e) = tests::script::create_scripts(exe) {
        println!("usertests: set-up: scripts: {e}");
    }
    if let Err(e) = tests::elf::create_files() {
        println!("usertests: set-up: ELF files: {e}");
    }
    tests::programs::cache_programs();
    tests::dynlink::cache_files();
    match process::fork() {
        Ok(Fork::Child) => process::exit_group(0),
        Ok(Fork::Parent(pid)) => {
            let _ = process::wait4(pid, 0);
        }
        Err(e) => println!("usertests: set-up fork: {e}"),
    }
    let linux = process::uname().is_ok_and(|u| u.sysname() == b"Linux");
    let memfree_slack = if linux { tests::MEMFREE_SLACK_LINUX } else { tests::MEMFREE_SLACK_ASPEN };
    Context { exe, baseline: procfs::memfree(), memfree_slack, linux }
}

extern "C" {
    // Bounds of the program's segments, from user/link.ld.
    static __aspen_text_start: u8;
    static __aspen_text_end: u8;
    static __aspen_data_start: u8;
    static __aspen_data_end: u8;
}

/// Reads every page of the R+X segment and rewrites a byte of every page of
/// the R+W segment (the same value: nothing changes but residency).
fn touch_image() {
    // Only the symbols' addresses are taken (no access): no unsafe needed.
    let text = (&raw const __aspen_text_start as usize)..(&raw const __aspen_text_end as usize);
    let data = (&raw const __aspen_data_start as usize)..(&raw const __aspen_data_end as usize);
    for page in text.step_by(PAGE_SIZE) {
        harness::probe_read(page);
    }
    for page in data.step_by(PAGE_SIZE) {
        // One thread, and the same value written back: no Rust object changes.
        harness::probe_write(page, harness::probe_read(page));
    }
}

/// Faults in [`STACK_PRETOUCH`] bytes of stack.
#[inline(never)]
fn touch_stack() {
    let mut stack = [0u8; STACK_PRETOUCH];
    for i in (0..STACK_PRETOUCH).step_by(PAGE_SIZE) {
        harness::vwrite(&mut stack[i], 1);
    }
    core::hint::black_box(&stack);
}

/// The reason of a failed test, on one line.
struct Why<'a>(&'a Outcome);

impl fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Outcome::Passed => write!(f, "passed"),
            Outcome::Failed => {
                for c in harness::report_message().chars() {
                    fmt::Write::write_char(f, if c.is_control() { ' ' } else { c })?;
                }
                Ok(())
            }
            Outcome::Ended(status) => write!(f, "the test process ended with {status}"),
            Outcome::ForkFailed(e) => write!(f, "fork: {e}"),
            Outcome::WaitFailed(e) => write!(f, "wait4: {e}"),
            Outcome::Suite(failure) => write!(f, "{failure}"),
        }
    }
}
