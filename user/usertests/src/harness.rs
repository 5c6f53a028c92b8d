//! The test harness: running tests in forked children, the shared report
//! page, synchronisation between processes, memory regions and fault probes.
//!
//! Every test but the last runs in a child of the suite process, so a test
//! that crashes (or a kernel that kills it) cannot take the suite with it. The
//! child exits 0 when the test passed; when it failed it writes its message
//! into the report page (a `MAP_SHARED` page the suite maps once, inherited by
//! every descendant) and exits with [`CHILD_FAILED`]. The suite process itself
//! never allocates, so its memory use stays flat for the free-memory checks.

use alloc::format;
use alloc::string::{String, ToString};
use core::arch::asm;
use core::ffi::CStr;
use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::mem::{self, PAGE_SIZE};
use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::process::{self, Fork, WaitStatus, SIGSEGV};
use aspen_sys::{time, Errno};

use crate::procfs::MeminfoError;

/// The result of a test body.
pub type TestResult = Result<(), String>;

/// Exit code of a test process that failed and left its message in the report page.
pub const CHILD_FAILED: i32 = 1;

/// How long a process waits for another to reach a stage before giving up.
const STAGE_TIMEOUT_SECS: u64 = 30;

/// What the tests know about the run.
pub struct Context {
    /// This program's path, for tests that execve it again.
    pub exe: &'static CStr,
    /// Free memory (bytes) when the suite started, after its own set-up.
    pub baseline: Result<u64, MeminfoError>,
    /// How far free memory may be from a baseline once every test process is gone.
    pub memfree_slack: u64,
    /// The kernel says it is Linux (`uname`): for the documented differences.
    pub linux: bool,
}

/// A test's body: in a child process, or in the suite process itself.
pub enum Body {
    Child(fn(&Context) -> TestResult),
    Suite(fn(&Context) -> Result<(), SuiteFailure>),
}

pub struct Test {
    pub name: &'static str,
    pub body: Body,
}

/// Why a test run in the suite process failed (formatted without allocating).
pub enum SuiteFailure {
    Meminfo(MeminfoError),
    MemFreeDrift { baseline: u64, now: u64, slack: u64 },
}

impl fmt::Display for SuiteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuiteFailure::Meminfo(e) => write!(f, "{e}"),
            SuiteFailure::MemFreeDrift { baseline, now, slack } => write!(
                f,
                "free memory {now} bytes after all test processes ended, {baseline} at the start: \
                 {} bytes apart, more than the slack of {slack}",
                baseline.abs_diff(*now)
            ),
        }
    }
}

/// How a test ended, as the suite process saw it.
pub enum Outcome {
    Passed,
    /// The test process failed and reported why.
    Failed,
    /// The test process ended some other way (killed, odd exit code).
    Ended(WaitStatus),
    ForkFailed(Errno),
    WaitFailed(Errno),
    Suite(SuiteFailure),
}

// ---- the report page -------------------------------------------------------

/// Address of the report page (0 until `init_report` ran).
static REPORT_PAGE: AtomicUsize = AtomicUsize::new(0);
/// Bytes of the report page that hold the message (after the length word).
const REPORT_CAPACITY: usize = PAGE_SIZE - 4;

/// Maps the report page and faults it in; called once by the suite process.
pub fn init_report() -> Result<(), Errno> {
    // SAFETY: a new shared anonymous mapping (no MAP_FIXED) disturbs nothing.
    let page =
        unsafe { mem::mmap(0, PAGE_SIZE, Prot::READ | Prot::WRITE, MapFlags::SHARED | MapFlags::ANONYMOUS, -1, 0)? };
    REPORT_PAGE.store(page, Ordering::Relaxed);
    report_len().store(0, Ordering::Relaxed);
    Ok(())
}

fn report_len() -> &'static AtomicU32 {
    let page = REPORT_PAGE.load(Ordering::Relaxed);
    assert!(page != 0, "report page not mapped");
    // SAFETY: the report page is mapped read-write for the life of the process
    // (never unmapped) and its first word is only accessed atomically.
    unsafe { &*(page as *const AtomicU32) }
}

/// Stores `msg` (truncated to the page) as the failure message.
pub fn report(msg: &str) {
    let len = msg.len().min(REPORT_CAPACITY);
    let page = REPORT_PAGE.load(Ordering::Relaxed);
    // SAFETY: the message area is the rest of the mapped report page; only the
    // one failing process writes it, before it exits.
    unsafe { core::ptr::copy_nonoverlapping(msg.as_ptr(), (page + 4) as *mut u8, len) };
    report_len().store(len as u32, Ordering::Release);
}

pub fn clear_report() {
    report_len().store(0, Ordering::Release);
}

/// The message a failed process left (valid UTF-8 prefix).
pub fn report_message() -> &'static str {
    let len = (report_len().load(Ordering::Acquire) as usize).min(REPORT_CAPACITY);
    let page = REPORT_PAGE.load(Ordering::Relaxed);
    // SAFETY: the bytes lie inside the mapped report page; the writer finished
    // (it exited or published the length with Release).
    let bytes = unsafe { core::slice::from_raw_parts((page + 4) as *const u8, len) };
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

// ---- running tests ---------------------------------------------------------

/// Runs one test and returns how it ended.
pub fn run(test: &Test, ctx: &Context) -> Outcome {
    match test.body {
        Body::Suite(body) => match body(ctx) {
            Ok(()) => Outcome::Passed,
            Err(e) => Outcome::Suite(e),
        },
        Body::Child(body) => {
            clear_report();
            let pid = match process::fork() {
                Ok(Fork::Child) => finish_child(body(ctx)),
                Ok(Fork::Parent(pid)) => pid,
                Err(e) => return Outcome::ForkFailed(e),
            };
            match process::wait4(pid, 0) {
                Ok((_, status)) if status.success() => Outcome::Passed,
                Ok((_, status)) if status.exit_code() == Some(CHILD_FAILED) => Outcome::Failed,
                Ok((_, status)) => Outcome::Ended(status),
                Err(e) => Outcome::WaitFailed(e),
            }
        }
    }
}

/// Ends a test process: exit 0 on success, else report and exit [`CHILD_FAILED`].
fn finish_child(result: TestResult) -> ! {
    if let Err(msg) = result {
        report(&msg);
        process::exit_group(CHILD_FAILED)
    }
    process::exit_group(0)
}

/// Runs `body` in a child process; returns its pid. The child exits 0 when
/// `body` succeeds, else it reports and exits [`CHILD_FAILED`].
pub fn spawn(body: impl FnOnce() -> TestResult) -> Result<i32, String> {
    match process::fork().ctx("fork")? {
        Fork::Child => finish_child(body()),
        Fork::Parent(pid) => Ok(pid),
    }
}

/// Describes how a child that did not exit 0 ended.
fn describe(status: WaitStatus) -> String {
    if status.exit_code() == Some(CHILD_FAILED) {
        report_message().to_string()
    } else {
        format!("ended with {status}")
    }
}

/// Waits for child `pid` and requires it to have exited 0.
pub fn join(pid: i32, who: &str) -> TestResult {
    let (_, status) = process::wait4(pid, 0).ctx("wait4")?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{who}: {}", describe(status)))
    }
}

/// Runs `body` in a child and returns how the child ended.
pub fn child_status(body: impl FnOnce() -> TestResult) -> Result<WaitStatus, String> {
    let pid = spawn(body)?;
    process::wait4(pid, 0).map(|(_, status)| status).ctx("wait4")
}

/// Runs `body` (which should fault) in a child; requires the child to be killed
/// by SIGSEGV.
pub fn expect_sigsegv(what: &str, body: impl FnOnce() -> TestResult) -> TestResult {
    let status = child_status(body)?;
    if status.signal() == Some(SIGSEGV) {
        Ok(())
    } else if status.success() {
        Err(format!("{what}: not killed, exited 0"))
    } else {
        Err(format!("{what}: expected signal=11, got {status}: {}", describe(status)))
    }
}

/// Runs `body` in a child and requires it to exit 0.
pub fn in_child(what: &str, body: impl FnOnce() -> TestResult) -> TestResult {
    let pid = spawn(body)?;
    join(pid, what)
}

// ---- errors ----------------------------------------------------------------

/// Turns a system-call error into a test failure naming the call.
pub trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T> Ctx<T> for Result<T, Errno> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Requires `result` to be the error `want`.
pub fn expect_errno<T: fmt::Debug>(what: &str, result: Result<T, Errno>, want: Errno) -> TestResult {
    match result {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!("{what}: got {e}, expected {want}")),
        Ok(v) => Err(format!("{what}: succeeded ({v:?}), expected {want}")),
    }
}

/// Fails the test with a formatted message (and the source line) unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(alloc::format!("{} [{}:{}]", format_args!($($fmt)+), file!(), line!()));
        }
    };
}

// ---- synchronisation -------------------------------------------------------

/// A word in shared memory that processes use to hand over turns.
pub struct Stage<'a>(&'a AtomicU32);

impl<'a> Stage<'a> {
    /// The word at byte `offset` of `region` (which must be shared to be seen
    /// by other processes).
    pub fn at(region: &'a Region, offset: usize) -> Self {
        assert!(offset.is_multiple_of(4) && offset + 4 <= region.len, "stage outside its region");
        // SAFETY: the word is inside the mapped region, aligned, and only used atomically.
        Self(unsafe { &*((region.addr + offset) as *const AtomicU32) })
    }

    pub fn set(&self, value: u32) {
        self.0.store(value, Ordering::Release);
    }

    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }

    /// Yields until the stage is at least `want`. If `partner` (a child pid)
    /// ends first, or the wait exceeds [`STAGE_TIMEOUT_SECS`], fails.
    pub fn wait_for(&self, want: u32, partner: Option<i32>) -> TestResult {
        let freq = time::counter_frequency().max(1);
        let start = time::counter();
        while self.get() < want {
            if let Some(pid) = partner {
                if let Ok((ended, status)) = process::wait4(pid, process::WNOHANG) {
                    if ended == pid {
                        return Err(format!("the other process ended before stage {want}: {}", describe(status)));
                    }
                }
            }
            if (time::counter() - start) / freq > STAGE_TIMEOUT_SECS {
                return Err(format!("timed out waiting for stage {want} (at {})", self.get()));
            }
            process::sched_yield().ctx("sched_yield")?;
        }
        Ok(())
    }
}

// ---- memory ----------------------------------------------------------------

/// A mapping made by a test. It is never unmapped implicitly: a test process
/// keeps its mappings until it exits, and whoever unmaps or protects part of
/// one (unsafe calls) vouches that the part is not accessed wrongly afterwards.
pub struct Region {
    pub addr: usize,
    pub len: usize,
}

impl Region {
    /// `pages` of anonymous memory (`flags` adds MAP_PRIVATE or MAP_SHARED, ...).
    pub fn anon(pages: usize, prot: Prot, flags: MapFlags) -> Result<Region, String> {
        Self::map(pages, prot, flags | MapFlags::ANONYMOUS, -1)
    }

    /// `pages` of the file `fd` from offset 0.
    pub fn file(pages: usize, prot: Prot, flags: MapFlags, fd: i32) -> Result<Region, String> {
        Self::map(pages, prot, flags, fd)
    }

    fn map(pages: usize, prot: Prot, flags: MapFlags, fd: i32) -> Result<Region, String> {
        assert!(!flags.intersects(MapFlags::FIXED | MapFlags::FIXED_NOREPLACE), "Region::map picks no address");
        let len = pages * PAGE_SIZE;
        // SAFETY: without MAP_FIXED the kernel picks a free range.
        let addr = unsafe { mem::mmap(0, len, prot, flags, fd, 0) }.ctx("mmap")?;
        Ok(Region { addr, len })
    }

    /// Address of page `i`.
    pub fn page(&self, i: usize) -> usize {
        assert!(i * PAGE_SIZE < self.len, "page {i} outside the region");
        self.addr + i * PAGE_SIZE
    }

    /// Reads the byte at `offset` (volatile: the access really happens).
    pub fn read(&self, offset: usize) -> u8 {
        assert!(offset < self.len, "offset {offset} outside the region");
        // SAFETY: inside the mapping, which stays mapped (see the type's doc);
        // a protection fault kills the process, it cannot corrupt memory.
        unsafe { ((self.addr + offset) as *const u8).read_volatile() }
    }

    /// Writes the byte at `offset` (volatile).
    pub fn write(&self, offset: usize, value: u8) {
        assert!(offset < self.len, "offset {offset} outside the region");
        // SAFETY: as in `read`; the region is memory no Rust object owns.
        unsafe { ((self.addr + offset) as *mut u8).write_volatile(value) }
    }

    /// Reads the aligned word at `offset`.
    pub fn read_u64(&self, offset: usize) -> u64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len, "word {offset} outside the region");
        // SAFETY: as in `read`; the word is aligned and inside the mapping.
        unsafe { ((self.addr + offset) as *const u64).read_volatile() }
    }

    /// Writes the aligned word at `offset`.
    pub fn write_u64(&self, offset: usize, value: u64) {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len, "word {offset} outside the region");
        // SAFETY: as in `write`; the word is aligned and inside the mapping.
        unsafe { ((self.addr + offset) as *mut u64).write_volatile(value) }
    }

    /// Fills bytes `[from, to)` with `value`.
    pub fn fill(&self, from: usize, to: usize, value: u8) {
        for off in from..to {
            self.write(off, value);
        }
    }

    /// The first offset in `[from, to)` whose byte is not `value`, if any.
    pub fn find_not(&self, from: usize, to: usize, value: u8) -> Option<usize> {
        (from..to).find(|&off| self.read(off) != value)
    }
}

/// Reads a byte at any address with one `ldrb`: the probe of a test that
/// expects the access to fault (or to work) and runs in a disposable child.
pub fn probe_read(addr: usize) -> u8 {
    let value: u32;
    // SAFETY: a plain load outside Rust's memory model: it reads memory no Rust
    // object owns, or faults and the kernel kills this (child) process.
    unsafe { asm!("ldrb {v:w}, [{a}]", a = in(reg) addr, v = out(reg) value, options(nostack, readonly)) };
    value as u8
}

/// Writes a byte at any address with one `strb` (see [`probe_read`]).
pub fn probe_write(addr: usize, value: u8) {
    // SAFETY: as in `probe_read`; callers aim at memory no live Rust object
    // uses, in a process that is expected to die of the fault.
    unsafe { asm!("strb {v:w}, [{a}]", a = in(reg) addr, v = in(reg) u32::from(value), options(nostack)) };
}

/// Calls the code at `addr` (a branch with link, `blr`).
pub fn probe_call(addr: usize) {
    // SAFETY: the target is a single `ret` written by the test (so it returns
    // at once, clobbering nothing the C ABI does not allow), or the branch
    // faults and the kernel kills this (child) process.
    unsafe { asm!("blr {a}", a = in(reg) addr, clobber_abi("C")) };
}

/// Reads a byte of a local through a volatile load (so a copy in a register
/// cannot stand in for the memory the kernel copied at fork).
pub fn vread(cell: &u8) -> u8 {
    // SAFETY: a reference is valid for reads.
    unsafe { core::ptr::read_volatile(cell) }
}

/// Writes a byte of a local with a volatile store.
pub fn vwrite(cell: &mut u8, value: u8) {
    // SAFETY: a mutable reference is valid for writes.
    unsafe { core::ptr::write_volatile(cell, value) }
}

/// Creates (or truncates) the file `name` holding `data`.
pub fn make_file(name: &CStr, data: &[u8]) -> TestResult {
    let fd = fs::open(name, OpenFlags::CREAT | OpenFlags::WRONLY | OpenFlags::TRUNC, 0o644).ctx("create")?;
    let mut done = 0;
    while done < data.len() {
        done += fs::write(fd, &data[done..]).ctx("write")?;
    }
    fs::close(fd).ctx("close")
}
