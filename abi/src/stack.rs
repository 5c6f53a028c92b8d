//! The initial user stack of `execve`, laid out as Linux lays it out on
//! aarch64 (`fs/exec.c` and `create_elf_tables` in `fs/binfmt_elf.c`,
//! without address randomisation).
//!
//! From the top of the stack down:
//!
//! ```text
//! stack_top      8 zero bytes
//!                AT_EXECFN string, NUL-terminated
//!                envp strings, then below them argv strings (argv[0] lowest)
//!                padding down to a multiple of 16
//!                AT_PLATFORM string "aarch64\0"
//!                the 16 AT_RANDOM bytes
//!                padding (0 to 15 bytes)
//!                auxv pairs (AT_MINSIGSTKSZ first), AT_NULL last
//!                NULL, envp pointers, NULL, argv pointers
//! initial_sp     argc                                   (16-byte aligned)
//! ```
//!
//! [`build_initial_stack`] returns these bytes; the kernel copies them to
//! `[initial_sp, stack_top)` in the new address space and starts the program
//! with `sp = initial_sp`.

use alloc::vec::Vec;
use core::fmt;

use crate::{Errno, PAGE_SIZE};

/// End of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// Address of the program headers.
pub const AT_PHDR: u64 = 3;
/// Size of one program header.
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// Page size.
pub const AT_PAGESZ: u64 = 6;
/// Load address of the interpreter (0: none).
pub const AT_BASE: u64 = 7;
/// Flags (0).
pub const AT_FLAGS: u64 = 8;
/// Entry point of the program.
pub const AT_ENTRY: u64 = 9;
/// Real user id.
pub const AT_UID: u64 = 11;
/// Effective user id.
pub const AT_EUID: u64 = 12;
/// Real group id.
pub const AT_GID: u64 = 13;
/// Effective group id.
pub const AT_EGID: u64 = 14;
/// Address of the platform string.
pub const AT_PLATFORM: u64 = 15;
/// CPU capabilities (`HWCAP_*`).
pub const AT_HWCAP: u64 = 16;
/// Frequency of `times()`.
pub const AT_CLKTCK: u64 = 17;
/// Whether the program runs with elevated privileges.
pub const AT_SECURE: u64 = 23;
/// Address of 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// More CPU capabilities (`HWCAP2_*`).
pub const AT_HWCAP2: u64 = 26;
/// Address of the file name given to `execve`.
pub const AT_EXECFN: u64 = 31;
/// The stack a signal handler needs at least (arm64's `ARCH_DLINFO`).
pub const AT_MINSIGSTKSZ: u64 = 51;

/// The platform string of aarch64 Linux (`AT_PLATFORM`).
pub const PLATFORM: &[u8] = b"aarch64";

/// Linux's `ARG_MAX`, 32 pages: the least room the strings and pointers
/// of `execve` get, whatever `RLIMIT_STACK` says ([`arg_limit`]).
pub const ARG_MAX: usize = 128 * 1024;
/// The longest single argument or environment string, its NUL included
/// (Linux's `MAX_ARG_STRLEN`, 32 pages): longer is `E2BIG`.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// The most room the strings and pointers get, whatever `RLIMIT_STACK`
/// says (Linux: three quarters of its default 8 MiB stack limit).
const ARG_LIMIT_MAX: usize = 6 << 20;

/// The most bytes the strings of `execve` (argv, envp and the file name,
/// each with its NUL) and one 8-byte pointer per argv and envp string may
/// take under a stack limit of `stack_rlimit` bytes, as Linux 6.1's
/// `bprm_stack_limits`: a quarter of the stack limit, at most 6 MiB and at
/// least [`ARG_MAX`]. More is [`StackError::ArgumentsTooLong`] (`E2BIG`).
pub const fn arg_limit(stack_rlimit: u64) -> usize {
    let quarter = stack_rlimit / 4;
    let limit = if quarter < ARG_LIMIT_MAX as u64 { quarter as usize } else { ARG_LIMIT_MAX };
    if limit < ARG_MAX {
        ARG_MAX
    } else {
        limit
    }
}

const WORD: u64 = 8;
const STACK_ALIGN: u64 = 16;

/// Why an initial stack cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// The strings and pointers take more than the limit ([`arg_limit`]).
    ArgumentsTooLong,
    /// The kernel has no memory for the image.
    OutOfMemory,
    /// A string holds a NUL byte, which would cut it short.
    StringContainsNul,
    /// The image would extend below address 0.
    DoesNotFit,
}

impl StackError {
    /// The error number `execve` returns for this.
    pub const fn errno(self) -> Errno {
        match self {
            StackError::ArgumentsTooLong => Errno::E2BIG,
            StackError::StringContainsNul => Errno::EINVAL,
            StackError::DoesNotFit => Errno::EFAULT,
            StackError::OutOfMemory => Errno::ENOMEM,
        }
    }
}

impl From<StackError> for Errno {
    fn from(error: StackError) -> Errno {
        error.errno()
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StackError::ArgumentsTooLong => "argument list too long",
            StackError::StringContainsNul => "string contains a NUL byte",
            StackError::DoesNotFit => "stack image does not fit below the stack top",
            StackError::OutOfMemory => "no memory for the stack image",
        })
    }
}

/// The values of the auxiliary vector that the caller knows; the builder
/// adds `AT_PAGESZ`, `AT_RANDOM`, `AT_EXECFN`, `AT_PLATFORM` and `AT_NULL`.
/// Linux's `AT_SYSINFO_EHDR` is not given: Aspen has no vDSO, and C
/// libraries then make system calls for the time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuxValues {
    /// `AT_PHDR`: address of the program headers (0 when not loaded).
    pub phdr: u64,
    /// `AT_PHENT`: size of one program header (56).
    pub phent: u64,
    /// `AT_PHNUM`: number of program headers.
    pub phnum: u64,
    /// `AT_BASE`: interpreter load address (0 for static programs).
    pub base: u64,
    /// `AT_FLAGS`.
    pub flags: u64,
    /// `AT_ENTRY`: the program's entry point (after relocation).
    pub entry: u64,
    /// `AT_UID`.
    pub uid: u64,
    /// `AT_EUID`.
    pub euid: u64,
    /// `AT_GID`.
    pub gid: u64,
    /// `AT_EGID`.
    pub egid: u64,
    /// `AT_HWCAP`.
    pub hwcap: u64,
    /// `AT_HWCAP2`.
    pub hwcap2: u64,
    /// `AT_CLKTCK`: clock ticks per second of `times()` (Linux: 100).
    pub clock_ticks: u64,
    /// `AT_SECURE`.
    pub secure: bool,
    /// `AT_MINSIGSTKSZ`: the stack a signal delivery takes
    /// ([`crate::signal::SIGNAL_FRAME_MAX`]).
    pub min_signal_stack: u64,
}

/// What `execve` passes to the new program.
#[derive(Clone, Copy, Debug)]
pub struct ExecArgs<'a> {
    /// The arguments, without their NULs. An empty list becomes one empty
    /// string, as Linux does since 5.18, so that `argv[0]` always exists.
    pub argv: &'a [&'a [u8]],
    /// The environment, without NULs.
    pub envp: &'a [&'a [u8]],
    /// The path given to `execve` (`AT_EXECFN`), without its NUL.
    pub execfn: &'a [u8],
    /// The 16 bytes `AT_RANDOM` points at (libc seeds its stack canary and
    /// pointer guard from them).
    pub random: [u8; 16],
    /// The most bytes the strings and pointers may take ([`arg_limit`]).
    pub limit: usize,
}

/// The initial stack: `bytes` go to `[initial_sp, initial_sp + bytes.len())`,
/// which ends at the stack top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialStack {
    /// The stack's contents from `initial_sp` up.
    pub bytes: Vec<u8>,
    /// The program's `sp`: 16-byte aligned, pointing at `argc`.
    pub initial_sp: u64,
}

/// Builds the initial stack that ends at `stack_top`.
pub fn build_initial_stack(stack_top: u64, args: &ExecArgs<'_>, aux: &AuxValues) -> Result<InitialStack, StackError> {
    let empty_argv: [&[u8]; 1] = [b""];
    let argv = if args.argv.is_empty() { &empty_argv[..] } else { args.argv };
    let strings = || argv.iter().chain(args.envp).chain(core::iter::once(&args.execfn));
    if strings().any(|string| string.contains(&0)) {
        return Err(StackError::StringContainsNul);
    }
    let string_bytes = strings().fold(0usize, |sum, string| sum.saturating_add(string.len() + 1));
    let pointer_bytes = (argv.len().saturating_add(args.envp.len())).saturating_mul(WORD as usize);
    if string_bytes.saturating_add(pointer_bytes) > args.limit {
        return Err(StackError::ArgumentsTooLong);
    }

    // Addresses, computed downwards from the top as Linux does.
    let below = |addr: u64, len: u64| addr.checked_sub(len).ok_or(StackError::DoesNotFit);
    let execfn_addr = below(stack_top, WORD + args.execfn.len() as u64 + 1)?;
    let envp_len: u64 = args.envp.iter().map(|s| s.len() as u64 + 1).sum();
    let env_start = below(execfn_addr, envp_len)?;
    let argv_len: u64 = argv.iter().map(|s| s.len() as u64 + 1).sum();
    let arg_start = below(env_start, argv_len)?;
    let strings_floor = align_down(arg_start, STACK_ALIGN);
    let platform_addr = below(strings_floor, PLATFORM.len() as u64 + 1)?;
    let random_addr = below(platform_addr, args.random.len() as u64)?;

    let auxv = auxv_entries(aux, random_addr, execfn_addr, platform_addr);
    let auxv_words = 2 * auxv.len() as u64;
    let vector_words = (argv.len() as u64 + 1) + (args.envp.len() as u64 + 1) + 1;
    let initial_sp = align_down(below(random_addr, (auxv_words + vector_words) * WORD)?, STACK_ALIGN);

    // Bytes, written upwards from the bottom.
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(stack_top.saturating_sub(initial_sp) as usize).map_err(|_| StackError::OutOfMemory)?;
    push_word(&mut bytes, argv.len() as u64);
    push_pointers(&mut bytes, arg_start, argv);
    push_word(&mut bytes, 0);
    push_pointers(&mut bytes, env_start, args.envp);
    push_word(&mut bytes, 0);
    for (key, value) in &auxv {
        push_word(&mut bytes, *key);
        push_word(&mut bytes, *value);
    }
    pad_to(&mut bytes, initial_sp, random_addr);
    bytes.extend_from_slice(&args.random);
    push_string(&mut bytes, PLATFORM);
    pad_to(&mut bytes, initial_sp, arg_start);
    for string in strings() {
        push_string(&mut bytes, string);
    }
    pad_to(&mut bytes, initial_sp, stack_top);
    Ok(InitialStack { bytes, initial_sp })
}

/// The auxiliary vector, in Linux's order, `AT_NULL` last.
fn auxv_entries(aux: &AuxValues, random: u64, execfn: u64, platform: u64) -> [(u64, u64); 20] {
    [
        (AT_MINSIGSTKSZ, aux.min_signal_stack),
        (AT_HWCAP, aux.hwcap),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, aux.clock_ticks),
        (AT_PHDR, aux.phdr),
        (AT_PHENT, aux.phent),
        (AT_PHNUM, aux.phnum),
        (AT_BASE, aux.base),
        (AT_FLAGS, aux.flags),
        (AT_ENTRY, aux.entry),
        (AT_UID, aux.uid),
        (AT_EUID, aux.euid),
        (AT_GID, aux.gid),
        (AT_EGID, aux.egid),
        (AT_SECURE, u64::from(aux.secure)),
        (AT_RANDOM, random),
        (AT_HWCAP2, aux.hwcap2),
        (AT_EXECFN, execfn),
        (AT_PLATFORM, platform),
        (AT_NULL, 0),
    ]
}

const fn align_down(addr: u64, align: u64) -> u64 {
    addr & !(align - 1)
}

fn push_word(bytes: &mut Vec<u8>, word: u64) {
    bytes.extend_from_slice(&word.to_le_bytes());
}

/// Pushes one pointer per string, the strings lying back to back from
/// `first`, each followed by its NUL.
fn push_pointers(bytes: &mut Vec<u8>, first: u64, strings: &[&[u8]]) {
    let mut addr = first;
    for string in strings {
        push_word(bytes, addr);
        addr += string.len() as u64 + 1;
    }
}

fn push_string(bytes: &mut Vec<u8>, string: &[u8]) {
    bytes.extend_from_slice(string);
    bytes.push(0);
}

/// Pads with zeros until the image (which starts at `base`) reaches `addr`.
fn pad_to(bytes: &mut Vec<u8>, base: u64, addr: u64) {
    let len = addr.saturating_sub(base) as usize;
    bytes.resize(len.max(bytes.len()), 0);
}

#[cfg(test)]
mod tests;
