//! Malformed but loadable ELF files: as on Linux, execve goes past its point
//! of no return and the task is killed with SIGSEGV (entry point outside
//! user space or unmapped, a segment Linux cannot map); a file that is not
//! an executable for this machine still fails with ENOEXEC.
//!
//! Interpreters (`PT_INTERP`): a PIE naming this very program (a static
//! `ET_EXEC`) as its interpreter runs it, beside the PIE, with the auxiliary
//! vector describing the PIE ([`child_auxv`] checks it); and Linux's errors
//! for a missing, foreign, short or non-ELF interpreter or a broken path.

use core::ffi::CStr;

use aspen_sys::aux::{
    AT_BASE, AT_EGID, AT_ENTRY, AT_EUID, AT_EXECFN, AT_GID, AT_MINSIGSTKSZ, AT_PHDR, AT_PHENT, AT_PHNUM, AT_UID,
};
use aspen_sys::fs::{self, OpenFlags};
use aspen_sys::{println, process, Args, Errno};

use crate::harness::{expect_errno, expect_sigsegv, in_child, Context, TestResult};

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

/// An `ET_REL` file: not an executable.
const RELOCATABLE: &CStr = c"/tmp/usertests-elf-relocatable";
/// Text with execute permission, longer than an ELF header.
const TEXT: &CStr = c"/tmp/usertests-elf-text";
/// An executable file shorter than an ELF header.
const SHORT: &CStr = c"/tmp/usertests-elf-short";

/// A PIE whose interpreter is `/bin/usertests`.
const WITH_INTERPRETER: &CStr = c"/tmp/usertests-elf-interp";
/// PIEs naming an interpreter that is missing, not ELF, shorter than an ELF
/// header, for another machine, not an executable; and one whose
/// `PT_INTERP` does not end in a NUL.
const INTERP_MISSING: &CStr = c"/tmp/usertests-elf-interp-missing";
const INTERP_TEXT: &CStr = c"/tmp/usertests-elf-interp-text";
const INTERP_SHORT: &CStr = c"/tmp/usertests-elf-interp-short";
const INTERP_FOREIGN: &CStr = c"/tmp/usertests-elf-interp-foreign";
const INTERP_RELOCATABLE: &CStr = c"/tmp/usertests-elf-interp-relocatable";
const INTERP_UNTERMINATED: &CStr = c"/tmp/usertests-elf-interp-unterminated";

/// `usertests --child-auxv`: run as [`WITH_INTERPRETER`]'s interpreter.
pub const CHILD_AUXV: &CStr = c"--child-auxv";
/// The interpreter of [`WITH_INTERPRETER`]: this program, `ET_EXEC`.
const THIS_PROGRAM: &[u8] = b"/bin/usertests";

/// Where the one segment of a test file is linked.
const BASE: u64 = 0x40_0000;
/// Bytes of a test file: the ELF header, then one program header.
const FILE_LEN: usize = 64 + 56;

/// The fields a test file varies.
struct Shape {
    e_type: u16,
    machine: u16,
    entry: u64,
    vaddr: u64,
    memsz: u64,
}

const GOOD: Shape = Shape { e_type: 2, machine: 183, entry: BASE, vaddr: BASE, memsz: FILE_LEN as u64 };

/// The bytes of a static `ET_EXEC` file with one read-execute `PT_LOAD`
/// that loads the whole file.
fn image(shape: &Shape) -> [u8; FILE_LEN] {
    let mut file = [0u8; FILE_LEN];
    let mut put = |at: usize, bytes: &[u8]| file[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"\x7fELF\x02\x01\x01");
    put(16, &shape.e_type.to_le_bytes());
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
    create_with(path, &image(shape))
}

/// Writes an executable file (mode 0755) holding `bytes`.
fn create_with(path: &CStr, bytes: &[u8]) -> Result<(), Errno> {
    let fd = fs::open(path, OpenFlags::CREAT | OpenFlags::WRONLY | OpenFlags::TRUNC, 0o755)?;
    let written = fs::write(fd, bytes);
    fs::close(fd)?;
    if written? == bytes.len() {
        Ok(())
    } else {
        Err(Errno::EIO)
    }
}

/// Bytes of a dynamically linked test file: header, two program headers,
/// then the interpreter's path.
const DYN_LEN: usize = 64 + 2 * 56 + 64;
/// Where `PT_INTERP`'s bytes are in it.
const INTERP_AT: usize = 64 + 2 * 56;
/// Its entry point, relative to its load bias.
const DYN_ENTRY: u64 = 0xb0;

/// A PIE (`ET_DYN` linked at 0) whose `PT_INTERP` holds `interpreter` (with
/// a NUL when `terminated`), and one read-execute `PT_LOAD` of the whole
/// file, program headers included.
fn dynamic_image(interpreter: &[u8], terminated: bool) -> [u8; DYN_LEN] {
    let mut file = [0u8; DYN_LEN];
    let mut put = |at: usize, bytes: &[u8]| file[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"\x7fELF\x02\x01\x01");
    put(16, &3u16.to_le_bytes());
    put(18, &183u16.to_le_bytes());
    put(20, &1u32.to_le_bytes());
    put(24, &DYN_ENTRY.to_le_bytes());
    put(32, &64u64.to_le_bytes());
    put(52, &64u16.to_le_bytes());
    put(54, &56u16.to_le_bytes());
    put(56, &2u16.to_le_bytes());
    let path_len = interpreter.len() + usize::from(terminated);
    // PT_INTERP, R.
    put(64, &3u32.to_le_bytes());
    put(68, &4u32.to_le_bytes());
    put(72, &(INTERP_AT as u64).to_le_bytes());
    put(80, &(INTERP_AT as u64).to_le_bytes());
    put(88, &(INTERP_AT as u64).to_le_bytes());
    put(96, &(path_len as u64).to_le_bytes());
    put(104, &(path_len as u64).to_le_bytes());
    put(112, &1u64.to_le_bytes());
    // PT_LOAD, R+X, the whole file at 0.
    put(120, &1u32.to_le_bytes());
    put(124, &5u32.to_le_bytes());
    put(144, &(DYN_LEN as u64).to_le_bytes());
    put(152, &(DYN_LEN as u64).to_le_bytes());
    put(160, &0x1000u64.to_le_bytes());
    put(INTERP_AT, interpreter);
    file
}

fn create_dynamic(path: &CStr, interpreter: &CStr) -> Result<(), Errno> {
    create_with(path, &dynamic_image(interpreter.to_bytes(), true))
}

/// Creates the test files; the suite's set-up calls it before the memory
/// baseline, since files keep their pages.
pub fn create_files() -> Result<(), Errno> {
    create(KERNEL_ENTRY, &Shape { entry: 0xffff_0000_0000_1000, ..GOOD })?;
    create(UNMAPPED_ENTRY, &Shape { entry: 0x1000_0000, ..GOOD })?;
    create(SHORT_MEMORY, &Shape { memsz: 64, ..GOOD })?;
    create(HIGH_SEGMENT, &Shape { vaddr: 1 << 48, entry: 1 << 48, ..GOOD })?;
    create(WRONG_MACHINE, &Shape { machine: 62, ..GOOD })?;
    create(RELOCATABLE, &Shape { e_type: 1, ..GOOD })?;
    create_with(TEXT, b"This is text with an execute bit, longer than the 64 bytes of an ELF header.\n")?;
    create_with(SHORT, b"\x7fELF\x02\x01\x01\0")?;
    create_with(WITH_INTERPRETER, &dynamic_image(THIS_PROGRAM, true))?;
    create_dynamic(INTERP_MISSING, c"/nonexistent/ld.so")?;
    create_dynamic(INTERP_TEXT, TEXT)?;
    create_dynamic(INTERP_SHORT, SHORT)?;
    create_dynamic(INTERP_FOREIGN, WRONG_MACHINE)?;
    create_dynamic(INTERP_RELOCATABLE, RELOCATABLE)?;
    create_with(INTERP_UNTERMINATED, &dynamic_image(THIS_PROGRAM, false))
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

/// execve of `path`, which must fail with `want`.
fn expect_exec_errno(what: &str, path: &CStr, want: Errno) -> TestResult {
    expect_errno(what, Err::<(), _>(process::execve(path, &[path], &[])), want)
}

pub fn interpreters(_ctx: &Context) -> TestResult {
    in_child("a PIE whose interpreter is /bin/usertests", || {
        let e = process::execve(WITH_INTERPRETER, &[WITH_INTERPRETER, CHILD_AUXV], &[]);
        Err(alloc::format!("execve {WITH_INTERPRETER:?}: {e}"))
    })?;
    expect_exec_errno("a missing interpreter", INTERP_MISSING, Errno::ENOENT)?;
    expect_exec_errno("an interpreter that is text", INTERP_TEXT, Errno::ELIBBAD)?;
    expect_exec_errno("an interpreter for x86-64", INTERP_FOREIGN, Errno::ELIBBAD)?;
    expect_exec_errno("an interpreter shorter than an ELF header", INTERP_SHORT, Errno::EIO)?;
    expect_exec_errno("PT_INTERP without a NUL", INTERP_UNTERMINATED, Errno::ENOEXEC)?;
    // Linux finds an interpreter that is no executable only while loading
    // it, past the point of no return.
    expect_killed(INTERP_RELOCATABLE)
}

/// `usertests --child-auxv`, run as the interpreter of [`WITH_INTERPRETER`]:
/// exits 0 when argv is the PIE's and the auxiliary vector describes the
/// PIE (loaded at some bias) and no interpreter base (this program is
/// `ET_EXEC`), else prints what differs and exits 1.
pub fn child_auxv(args: &Args) -> i32 {
    let mut wrong = 0;
    let mut check = |ok: bool, what: core::fmt::Arguments<'_>| {
        if !ok {
            println!("usertests --child-auxv: {what}");
            wrong += 1;
        }
    };
    let aux = |key| args.aux(key);
    let phdr = aux(AT_PHDR).unwrap_or(0);
    let bias = phdr.wrapping_sub(64);
    check(args.get(0) == Some(WITH_INTERPRETER), format_args!("argv[0] is {:?}", args.get(0)));
    check(bias % 4096 == 0 && bias >= 0x1_0000, format_args!("AT_PHDR {phdr:#x}: not 64 bytes into a page"));
    check(aux(AT_ENTRY) == Some(bias + DYN_ENTRY), format_args!("AT_ENTRY {:x?}, bias {bias:#x}", aux(AT_ENTRY)));
    check(aux(AT_PHNUM) == Some(2) && aux(AT_PHENT) == Some(56), format_args!("AT_PHNUM/AT_PHENT"));
    check(aux(AT_BASE) == Some(0), format_args!("AT_BASE {:x?} for an ET_EXEC interpreter", aux(AT_BASE)));
    check(
        aux(AT_MINSIGSTKSZ).is_some_and(|size| size >= 4096),
        format_args!("AT_MINSIGSTKSZ {:?}", aux(AT_MINSIGSTKSZ)),
    );
    let (uid, euid, gid, egid) = process::ids();
    let ids = [AT_UID, AT_EUID, AT_GID, AT_EGID].map(aux);
    check(ids == [uid, euid, gid, egid].map(|id| Some(u64::from(id))), format_args!("ids {ids:?}"));
    // SAFETY: AT_EXECFN points at a NUL-terminated string of the initial
    // stack, which lives as long as the process.
    let execfn = aux(AT_EXECFN).map(|at| unsafe { CStr::from_ptr(at as *const core::ffi::c_char) });
    check(execfn == Some(WITH_INTERPRETER), format_args!("AT_EXECFN {execfn:?}"));
    if bias % 4096 == 0 && bias >= 0x1_0000 {
        // SAFETY: the PIE's one segment maps its whole file at its bias,
        // read-only: the ELF header is there.
        let magic = unsafe { core::ptr::read_volatile(bias as *const [u8; 4]) };
        check(magic == *b"\x7fELF", format_args!("the PIE's header is not at {bias:#x}: {magic:x?}"));
    }
    i32::from(wrong != 0)
}
