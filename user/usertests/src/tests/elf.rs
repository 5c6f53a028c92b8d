//! Malformed but loadable ELF files: as on Linux, execve goes past its point
//! of no return and the task is killed with SIGSEGV (entry point outside
//! user space or unmapped, a segment Linux cannot map); a file that is not
//! an executable for this machine still fails with ENOEXEC.

use core::ffi::CStr;

use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::process;
use aspen_sys::Errno;

use crate::harness::{expect_errno, expect_sigsegv, Context, TestResult};

/// Entry point in the kernel's half of the address space.
const KERNEL_ENTRY: &CStr = c"/tmp/usertests-elf-kernel-entry";
/// Entry point in user space where nothing is mapped.
const UNMAPPED_ENTRY: &CStr = c"/tmp/usertests-elf-unmapped-entry";
/// A segment with more file bytes than memory.
const SHORT_MEMORY: &CStr = c"/tmp/usertests-elf-short-memory";
/// A segment above the end of user space.
const HIGH_SEGMENT: &CStr = c"/tmp/usertests-elf-high-segment";
/// An executable for x86-64.
const WRONG_MACHINE: &CStr = c"/tmp/usertests-elf-wrong-machine";

/// Where the one segment of a test file is linked.
const BASE: u64 = 0x40_0000;
/// Bytes of a test file: the ELF header, then one program header.
const FILE_LEN: usize = 64 + 56;

/// The fields a test file varies.
struct Shape {
    machine: u16,
    entry: u64,
    vaddr: u64,
    memsz: u64,
}

const GOOD: Shape = Shape { machine: 183, entry: BASE, vaddr: BASE, memsz: FILE_LEN as u64 };

/// The bytes of a static `ET_EXEC` file with one read-execute `PT_LOAD`
/// that loads the whole file.
fn image(shape: &Shape) -> [u8; FILE_LEN] {
    let mut file = [0u8; FILE_LEN];
    let mut put = |at: usize, bytes: &[u8]| file[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"\x7fELF\x02\x01\x01");
    put(16, &2u16.to_le_bytes());
    put(18, &shape.machine.to_le_bytes());
    put(20, &1u32.to_le_bytes());
    put(24, &shape.entry.to_le_bytes());
    put(32, &64u64.to_le_bytes());
    put(52, &64u16.to_le_bytes());
    put(54, &56u16.to_le_bytes());
    put(56, &1u16.to_le_bytes());
    put(64, &1u32.to_le_bytes());
    put(68, &5u32.to_le_bytes());
    put(80, &shape.vaddr.to_le_bytes());
    put(88, &shape.vaddr.to_le_bytes());
    put(96, &(FILE_LEN as u64).to_le_bytes());
    put(104, &shape.memsz.to_le_bytes());
    put(112, &0x1000u64.to_le_bytes());
    file
}

fn create(path: &CStr, shape: &Shape) -> Result<(), Errno> {
    let fd = fs::open(path, OpenFlags::CREAT | OpenFlags::WRONLY | OpenFlags::TRUNC, 0o755)?;
    let bytes = image(shape);
    let written = fs::write(fd, &bytes);
    fs::close(fd)?;
    match written? {
        FILE_LEN => Ok(()),
        _ => Err(Errno::EIO),
    }
}

/// Creates the test files; the suite's set-up calls it before the memory
/// baseline, since files keep their pages.
pub fn create_files() -> Result<(), Errno> {
    create(KERNEL_ENTRY, &Shape { entry: 0xffff_0000_0000_1000, ..GOOD })?;
    create(UNMAPPED_ENTRY, &Shape { entry: 0x1000_0000, ..GOOD })?;
    create(SHORT_MEMORY, &Shape { memsz: 64, ..GOOD })?;
    create(HIGH_SEGMENT, &Shape { vaddr: 1 << 48, entry: 1 << 48, ..GOOD })?;
    create(WRONG_MACHINE, &Shape { machine: 62, ..GOOD })
}

/// Runs `path` in a child, which must be killed with SIGSEGV.
fn expect_killed(path: &'static CStr) -> TestResult {
    expect_sigsegv(path.to_str().unwrap_or("?"), || {
        let e = process::execve(path, &[path], &[]);
        Err(alloc::format!("execve {path:?} failed with {e}, expected it to go ahead and the task to get SIGSEGV"))
    })
}

pub fn malformed(_ctx: &Context) -> TestResult {
    expect_killed(KERNEL_ENTRY)?;
    expect_killed(UNMAPPED_ENTRY)?;
    expect_killed(SHORT_MEMORY)?;
    expect_killed(HIGH_SEGMENT)?;
    expect_errno(
        "execve of an x86-64 executable",
        Err::<(), _>(process::execve(WRONG_MACHINE, &[WRONG_MACHINE], &[])),
        Errno::ENOEXEC,
    )
}
