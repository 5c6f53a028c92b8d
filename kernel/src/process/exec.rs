//! Loading a program: an ELF executable (ET_EXEC, or ET_DYN: PIE or
//! static-pie) from the file tree, with the dynamic linker it names in
//! `PT_INTERP` beside it, mapped as private file mappings (demand paged),
//! with a stack holding argc, argv, envp and the auxiliary vector; or a `#!`
//! script, by loading its interpreter with the script's path among its
//! arguments.

use alloc::sync::Arc;
use alloc::vec::Vec;

use core::ops::Range;

use aspen_abi::cred::Credentials;
use aspen_abi::elf::{self, ElfError, ElfImage, ElfKind, ELF_ET_DYN_BASE};
use aspen_abi::hwcap;
use aspen_abi::mman::{MapFlags, Prot};
use aspen_abi::resource::Resource;
use aspen_abi::script::{self, BINPRM_BUF_SIZE, MAX_INTERPRETER_HOPS};
use aspen_abi::signal::SIGNAL_FRAME_MAX;
use aspen_abi::stack::{build_initial_stack, AuxValues, ExecArgs};
use aspen_abi::uaccess::{UserMemory, UserSlice};
use aspen_fs::OpenFlags;
use aspen_mm::aspace::{AddressSpace, MappedFile};
use aspen_mm::errno::Errno;
use aspen_mm::object::FileObject;
use aspen_mm::VirtAddr;

use super::UserSpace;
use crate::arch::context::{FpState, ThreadPointers};
use crate::arch::exception::TrapFrame;
use crate::files;
use crate::memory::user_env::{self, KernelMm};
use crate::task::sched;

/// The top of a new program's stack: the last page below the end of user
/// space stays unmapped.
const STACK_TOP: u64 = aspen_abi::USER_ADDR_END - aspen_abi::PAGE_SIZE;
/// The least stack reserved for a program, whatever `RLIMIT_STACK` says.
const STACK_MIN: u64 = 128 << 10;
/// The most: the stack stays above the mmap area, which starts 256 MiB
/// below the end of user space, with a 1 MiB gap.
const STACK_MAX: u64 = (256 << 20) - (1 << 20) - aspen_abi::PAGE_SIZE;

/// The stack reserved (and faulted in as used) for a program whose process
/// has `RLIMIT_STACK` soft limit `limit`.
pub fn stack_size(limit: u64) -> u64 {
    limit.clamp(STACK_MIN, STACK_MAX) & !(aspen_abi::PAGE_SIZE - 1)
}
/// Where the signal-return trampoline page goes when free: a guard page
/// below the largest stack, above the mmap base (so no mmap search walks
/// past it).
pub const TRAMPOLINE_HINT: u64 = STACK_TOP - STACK_MAX - 2 * aspen_abi::PAGE_SIZE;
/// The mode bits that make a file executable by someone.
const EXECUTE_BITS: u32 = 0o111;

/// Why a program is not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecError {
    /// `execve` fails with this error; the caller's program goes on.
    Refused(Errno),
    /// Linux finds this past its point of no return: the caller's program
    /// is gone and the task is killed with SIGSEGV.
    Unloadable(ElfError),
    /// The kernel heap could not give what the change of image needs,
    /// past the point of no return: the task is killed with SIGSEGV (as
    /// Linux's errors past that point).
    OutOfMemoryPastNoReturn,
}

impl ExecError {
    /// The error number, where there is no caller to kill (the first
    /// process).
    pub const fn errno(self) -> Errno {
        match self {
            ExecError::Refused(errno) => errno,
            ExecError::Unloadable(error) => error.errno(),
            ExecError::OutOfMemoryPastNoReturn => Errno::ENOMEM,
        }
    }
}

impl From<Errno> for ExecError {
    fn from(errno: Errno) -> ExecError {
        ExecError::Refused(errno)
    }
}

impl From<ElfError> for ExecError {
    fn from(error: ElfError) -> ExecError {
        if error.kills_task() {
            ExecError::Unloadable(error)
        } else {
            ExecError::Refused(error.errno())
        }
    }
}

/// A program loaded into a new address space, ready to enter.
pub struct LoadedImage {
    pub mm: UserSpace,
    entry: u64,
    sp: u64,
    /// argv joined with NULs.
    pub cmdline: Vec<u8>,
    /// The path of the ELF file (`/proc/<pid>/exe`).
    pub exe: Vec<u8>,
}

impl LoadedImage {
    /// The user context the program starts in: at its entry point, on its
    /// stack, every register zero, EL0 with interrupts unmasked.
    pub fn initial_frame(&self) -> TrapFrame {
        TrapFrame { x: [0; 31], sp_el0: self.sp, elr: self.entry, spsr: 0 }
    }
}

/// 16 bytes for AT_RANDOM (the seed of the C library's stack protector
/// and pointer guard).
fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    crate::random::fill(&mut out);
    out
}

fn prot_of(readable: bool, writable: bool, executable: bool) -> Prot {
    let mut prot = Prot::NONE;
    prot.set(Prot::READ, readable);
    prot.set(Prot::WRITE, writable);
    prot.set(Prot::EXEC, executable);
    prot
}

/// Opens the program file at `path` for execution: a regular file with an
/// execute bit, and its page-cache object.
fn open_executable(path: &[u8]) -> Result<(Arc<FileObject<'static, KernelMm>>, u64), Errno> {
    let file = files::vfs().open(path, OpenFlags::RDONLY, 0, (0, 0))?;
    let stat = file.node().stat();
    if file.node().is_dir() {
        return Err(Errno::EACCES);
    }
    let object = file.object().ok_or(Errno::EACCES)?.clone();
    if stat.mode & EXECUTE_BITS == 0 {
        return Err(Errno::EACCES);
    }
    Ok((object, stat.size))
}

/// Loads the program at `path` into a new address space: an ELF
/// executable, or a `#!` script run by its interpreter (which may itself be
/// a script, [`MAX_INTERPRETER_HOPS`] times at most).
/// `creds` are the ids the auxiliary vector reports.
pub fn load(
    path: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    stack: StackRoom,
    creds: &Credentials,
) -> Result<LoadedImage, ExecError> {
    let mut program = path.to_vec();
    // The argument list once a script has rewritten it.
    let mut rewritten: Option<Vec<Vec<u8>>> = None;
    for _ in 0..=MAX_INTERPRETER_HOPS {
        let (object, size) = open_executable(&program)?;
        let mut head = [0u8; BINPRM_BUF_SIZE];
        let read = object.read(0, &mut head)?;
        let head = &head[..read];
        let args: Vec<&[u8]> = match &rewritten {
            Some(owned) => owned.iter().map(Vec::as_slice).collect(),
            None => argv.to_vec(),
        };
        let Some(shebang) = script::parse(head).map_err(Errno::from)? else {
            let start = ProgramStart { execfn: path, argv: &args, envp, stack, creds };
            return load_elf(&object, size, head, &start);
        };
        let next: Vec<Vec<u8>> =
            script::interpreter_argv(&shebang, &program, &args).into_iter().map(<[u8]>::to_vec).collect();
        program = shebang.interpreter.to_vec();
        rewritten = Some(next);
    }
    // One script too many. Linux opens its interpreter before it counts,
    // so a missing one is still ENOENT.
    open_executable(&program)?;
    Err(Errno::ELOOP.into())
}

/// The new program's stack: its size, and the most bytes its argument
/// and environment strings with their pointers may take
/// (`aspen_abi::stack::arg_limit`).
#[derive(Clone, Copy, Debug)]
pub struct StackRoom {
    pub size: u64,
    pub arg_limit: usize,
}

/// What a new program starts with besides its file.
#[derive(Clone, Copy)]
struct ProgramStart<'a> {
    /// The path given to `execve` (`AT_EXECFN`).
    execfn: &'a [u8],
    argv: &'a [&'a [u8]],
    envp: &'a [&'a [u8]],
    /// The stack to reserve, and the room its strings get.
    stack: StackRoom,
    /// The ids the auxiliary vector reports.
    creds: &'a Credentials,
}

/// An ELF file's checked headers, read from its page cache.
struct ElfFile {
    object: Arc<FileObject<'static, KernelMm>>,
    image: ElfImage,
}

/// Why an ELF file's headers are not usable.
enum HeaderError {
    /// Reading the file failed.
    Io(Errno),
    /// The headers are broken.
    Elf(ElfError),
}

/// Reads and checks the program header table of the ELF file `object` (of
/// `size` bytes), of which `head` holds the first bytes. Only the headers
/// are read: the segments are private mappings of the file's page cache, so
/// the file's size is not bounded by any buffer.
fn read_headers(object: &Arc<FileObject<'static, KernelMm>>, size: u64, head: &[u8]) -> Result<ElfImage, HeaderError> {
    let table = ElfImage::program_header_table(head).map_err(HeaderError::Elf)?;
    // At most MAX_PROGRAM_HEADERS entries: a few KiB.
    let mut program_headers = alloc::vec![0u8; (table.end - table.start) as usize];
    let read = object.read(table.start, &mut program_headers).map_err(HeaderError::Io)?;
    program_headers.truncate(read);
    ElfImage::parse_headers(head, &program_headers, size).map_err(HeaderError::Elf)
}

/// Opens and checks the interpreter a program names in `PT_INTERP`
/// (`range` of its file), as Linux's `load_elf_binary` does before its
/// point of no return: a path not ending in NUL is ENOEXEC, the open's
/// errors are the open's (ENOENT, EACCES), and a file that is not an
/// AArch64 ELF is ELIBBAD (EIO when shorter than its header). What Linux
/// finds only while loading it ([`ElfError::interpreter_errno`] `None`)
/// kills the task.
fn open_interpreter(program: &Arc<FileObject<'static, KernelMm>>, range: Range<u64>) -> Result<ElfFile, ExecError> {
    // At most INTERPRETER_PATH_MAX bytes, and inside the file.
    let mut raw = alloc::vec![0u8; (range.end - range.start) as usize];
    let read = program.read(range.start, &mut raw)?;
    if read != raw.len() {
        return Err(Errno::EIO.into());
    }
    let path = elf::interpreter_path(&raw)?;
    let (object, size) = open_executable(path)?;
    let mut head = [0u8; BINPRM_BUF_SIZE];
    let read = object.read(0, &mut head)?;
    let image = read_headers(&object, size, &head[..read]).map_err(|error| match error {
        HeaderError::Io(errno) => ExecError::Refused(errno),
        HeaderError::Elf(error) => match error.interpreter_errno() {
            Some(errno) => ExecError::Refused(errno),
            None => ExecError::Unloadable(error),
        },
    })?;
    Ok(ElfFile { object, image })
}

/// Maps the segments of `image` (already placed at its load bias) from
/// `object` into `mm`: file pages as private mappings, the bss tail of the
/// last file page zeroed, the rest of the bss anonymous.
fn map_segments(
    mm: &mut UserSpace,
    object: &Arc<FileObject<'static, KernelMm>>,
    image: &ElfImage,
) -> Result<(), Errno> {
    for plan in image.page_plan() {
        let s = plan.segment;
        let prot = prot_of(s.readable, s.writable, s.executable);
        if let Some(mapping) = plan.file {
            // The tail of the last file page is zeroed below, through a
            // writable mapping; the final protection follows.
            let first_prot = if plan.zero_tail.is_some() { prot | Prot::WRITE } else { prot };
            mm.mmap(
                VirtAddr::new(mapping.pages.start),
                mapping.pages.len(),
                first_prot,
                MapFlags::PRIVATE | MapFlags::FIXED,
                Some(MappedFile::read_only(object.clone())),
                mapping.file_offset,
            )?;
        }
        if let Some(tail) = plan.zero_tail {
            let zeros = alloc::vec![0u8; tail.len() as usize];
            mm.write(UserSlice::new(tail.start, tail.len()).map_err(Errno::from)?, &zeros)?;
            if !s.writable {
                let page = tail.start & !(aspen_abi::PAGE_SIZE - 1);
                mm.mprotect(VirtAddr::new(page), aspen_abi::PAGE_SIZE, prot)?;
            }
        }
        if let Some(anonymous) = plan.anonymous {
            mm.mmap(
                VirtAddr::new(anonymous.start),
                anonymous.len(),
                prot,
                MapFlags::PRIVATE | MapFlags::FIXED | MapFlags::ANONYMOUS,
                None,
                0,
            )?;
        }
    }
    Ok(())
}

/// Loads an ELF executable, of which `head` holds the first bytes, into a
/// new address space, with its interpreter (`PT_INTERP`) if it names one,
/// as Linux's `load_elf_binary` does without address randomisation: an
/// `ET_DYN` program at [`ELF_ET_DYN_BASE`] (lowered to its alignment), the
/// interpreter where `mmap(NULL)` would put its whole image, the program
/// break after the program, the entry point the interpreter's.
fn load_elf(
    object: &Arc<FileObject<'static, KernelMm>>,
    size: u64,
    head: &[u8],
    start: &ProgramStart<'_>,
) -> Result<LoadedImage, ExecError> {
    let ProgramStart { execfn, argv, envp, stack, creds } = *start;
    let stack_size = stack.size;
    let parsed = read_headers(object, size, head).map_err(|error| match error {
        HeaderError::Io(errno) => ExecError::Refused(errno),
        HeaderError::Elf(error) => ExecError::from(error),
    })?;
    let interpreter = match parsed.interpreter.clone() {
        Some(range) => Some(open_interpreter(object, range)?),
        None => None,
    };
    let bias = parsed.load_bias(ELF_ET_DYN_BASE)?;
    let image = parsed.relocated(bias)?;
    // Between the steps of a load, a better task may run: nothing is
    // locked, and the new space is this thread's alone until it returns.
    sched::pause_point();

    let mut mm = AddressSpace::new(user_env::get())?;
    map_segments(&mut mm, object, &image)?;
    mm.set_brk_base(VirtAddr::new(image.initial_brk()));
    sched::pause_point();

    // The interpreter's load address (AT_BASE) and the entry point.
    let (base, entry) = match interpreter {
        Some(interpreter) => {
            // An ET_EXEC interpreter stays at its link addresses.
            let interp_bias = match interpreter.image.kind {
                ElfKind::Exec => 0,
                ElfKind::Dyn => {
                    let first_page = mm.unmapped_area(interpreter.image.mapping_size()).ok_or(Errno::ENOMEM)?;
                    interpreter.image.bias_for_first_page(first_page.as_u64())
                }
            };
            let placed = interpreter.image.relocated(interp_bias).map_err(ExecError::Unloadable)?;
            map_segments(&mut mm, &interpreter.object, &placed)?;
            sched::pause_point();
            (interp_bias, placed.entry)
        }
        None => (0, image.entry),
    };

    mm.mmap(
        VirtAddr::new(STACK_TOP - stack_size),
        stack_size,
        Prot::READ | Prot::WRITE,
        MapFlags::PRIVATE | MapFlags::FIXED | MapFlags::ANONYMOUS,
        None,
        0,
    )?;
    let args = ExecArgs { argv, envp, execfn, random: random_bytes(), limit: stack.arg_limit };
    let id_registers = crate::arch::cpu::id_registers();
    let aux = AuxValues {
        phdr: image.phdr.unwrap_or(0),
        phent: u64::from(image.phent),
        phnum: u64::from(image.phnum),
        base,
        entry: image.entry,
        uid: u64::from(creds.ruid),
        euid: u64::from(creds.euid),
        gid: u64::from(creds.rgid),
        egid: u64::from(creds.egid),
        hwcap: hwcap::hwcap(&id_registers),
        hwcap2: hwcap::hwcap2(&id_registers),
        clock_ticks: 100,
        min_signal_stack: SIGNAL_FRAME_MAX,
        ..AuxValues::default()
    };
    sched::pause_point();
    let stack = build_initial_stack(STACK_TOP, &args, &aux).map_err(|e| e.errno())?;
    sched::pause_point();
    mm.write(UserSlice::new(stack.initial_sp, stack.bytes.len() as u64).map_err(Errno::from)?, &stack.bytes)?;
    mm.set_stack_start(VirtAddr::new(stack.initial_sp));

    let mut cmdline = Vec::new();
    cmdline.try_reserve_exact(argv.iter().map(|arg| arg.len() + 1).sum()).map_err(|_| Errno::ENOMEM)?;
    for arg in argv {
        cmdline.extend_from_slice(arg);
        cmdline.push(0);
    }
    let exe = object.identity().path.clone().into_bytes();
    Ok(LoadedImage { mm, entry, sp: stack.initial_sp, cmdline, exe })
}

/// What [`load`] may allocate, at most, for `argv` and `envp` and a
/// caller with `groups` supplementary groups: for each file it opens (the
/// program, each interpreter of a script, the ELF interpreter) a path, the
/// open file and headers, and the new space's map (the fixed part); in
/// proportion to the strings (`b` bytes, `c` of them), at most
/// `2b + 112c` while a script's arguments are rewritten (the list of
/// slices, 16 bytes a string, the old and the new owned lists, 24 bytes
/// and the string each, the interpreter's list) and `3b + 65c` after (the
/// lists, the stack image, the command line); the credentials' copy.
fn load_heap_bound(argv: &[&[u8]], envp: &[&[u8]], groups: usize) -> usize {
    const FIXED: usize = 256 * 1024;
    let count = argv.len() + envp.len();
    let bytes: usize = argv.iter().chain(envp).map(|s| s.len()).sum();
    FIXED + 4 * bytes + 128 * count + 4 * groups
}

/// What [`super::Process::replace_image`] allocates besides a copy of the
/// descriptor table: the new space's handle and a copy of the signal
/// actions, when another process shares them.
const REPLACE_HEAP: usize = 16 * 1024;

/// `execve`: replaces the current process's program. On success the
/// system call returns into the new program through `frame`; on
/// [`ExecError::Unloadable`] the caller is to kill the task with SIGSEGV
/// once it has dropped what it holds. The new program is loaded first, so
/// that a refusal leaves everything as it was; then the other threads of
/// the process end, and the calling thread goes on alone, with the
/// process's id, no thread pointer and clear FP/SIMD registers.
pub fn execve(
    frame: &mut TrapFrame,
    path: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    arg_limit: usize,
) -> Result<(), ExecError> {
    let me = super::thread::current().expect("execve from a kernel thread");
    let stack_limit = me.process.limits.lock().get(Resource::Stack).cur;
    let stack = StackRoom { size: stack_size(stack_limit), arg_limit };
    let groups = me.process.creds.lock().groups.len();
    let image = {
        let _preload = crate::heap::preload(load_heap_bound(argv, envp, groups)).map_err(Errno::from)?;
        let creds = me.process.creds.lock().clone();
        load(path, argv, envp, stack, &creds)?
    };
    sched::pause_point();
    me.process.end_other_threads(&me)?;
    super::release_user_words(&me);
    // Past the point of no return: what the change of image allocates is
    // preloaded (not across the wait for the other threads above).
    let preload = crate::heap::preload(REPLACE_HEAP + me.process.files_heap_size())
        .map_err(|_| ExecError::OutOfMemoryPastNoReturn)?;
    *frame = image.initial_frame();
    let old = me.process.replace_image(image.mm, image.cmdline, image.exe);
    drop(preload);
    // Outside the section: the old space writes its shared file pages
    // back, fallibly and in proportion to them.
    drop(old);
    ThreadPointers::default().make_current();
    FpState::new().make_current();
    Ok(())
}
