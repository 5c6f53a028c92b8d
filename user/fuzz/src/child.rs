//! The fuzz child: sets up a few regions of its own, then makes the batch's
//! calls, logging each to the shared ring before it makes it, and exits 0.
//! Around each read, write, readv and writev of a descriptor that has a
//! file offset it checks that the offset moved by exactly the call's result
//! (not at all if it failed), as Linux promises even when the buffer faults
//! part-way; around each sendfile, the same for both descriptors when it
//! has no offset pointer, and with one that the input's file offset stays
//! put and the offset behind the pointer (when the fuzzer wrote it) moved
//! by the result. Otherwise it exits with [`OFFSET_MOVED`].
//!
//! Everything here assumes the worst of the calls it makes: any of them may
//! unmap or write over memory the child uses, after which the child may die
//! of a signal. The fuzz loop's own state (its locals) lives above the stack
//! pointer of [`run`]; the fuzzer only aims at the stack below it.

use core::arch::asm;
use core::ffi::CStr;
use core::fmt::Write;

use aspen_sys::io::FdWriter;
use aspen_sys::mem::{self, MapFlags, Prot};
use aspen_sys::raw::{syscall1, Sysno};
use aspen_sys::{fs, process, time, Errno};

use crate::gen::{self, Call};
use crate::ring::{
    self, Logged, Ring, H_ENV, H_OFFSET_AFTER, H_OFFSET_BEFORE, H_OFFSET_WHICH, H_SETUP, TOUCH_READ, TOUCH_WRITE,
};
use crate::rng::{batch_seed, Rng};
use crate::Options;

const PAGE: u64 = 4096;
/// Exit code of a child whose set-up failed (its errno is in the ring header).
pub const SETUP_FAILED: i32 = 3;
/// Exit code of a child whose last read, write or sendfile moved an offset
/// by other than its result (the offsets are in the ring header).
pub const OFFSET_MOVED: i32 = 4;

/// A region: start and length in bytes.
#[derive(Clone, Copy, Default)]
pub struct Region {
    pub addr: u64,
    pub len: u64,
}

/// A mapping the child made: where, how long, with what protection.
#[derive(Clone, Copy, Default)]
pub struct Mapping {
    pub addr: u64,
    pub len: u64,
    pub prot: u64,
}

/// What the generator knows about the child.
pub struct Env {
    pub linux: bool,
    pub trace: bool,
    /// `--avoid` bits (see `gen::AVOID_*`).
    pub avoid: u64,
    pub exe: &'static CStr,
    pub pid: u64,
    /// Private anonymous read-write memory.
    pub scratch: Region,
    /// Shared anonymous read-write memory.
    pub shared: Region,
    /// A private read-only mapping of the program file.
    pub filemap: Region,
    /// The heap above the initial program break.
    pub heap: Region,
    /// The stack pointer of the fuzz loop: the stack below it is unused.
    pub stack: u64,
    pub text: Region,
    pub data: Region,
    /// The argument buffer (paths, iovecs, argv arrays, the timespec);
    /// `gen::ARG_PAGES` pages, then an unmapped page.
    pub argbuf: u64,
    /// scratch, shared, filemap and heap, with their protection as far
    /// as the fuzzer knows.
    pub regions: [Mapping; 4],
    /// Mappings made so far (the last few).
    pub maps: [Mapping; 8],
    pub next_map: usize,
    /// Descriptors opened so far (the last few).
    pub fds: [u64; 8],
    pub next_fd: usize,
}

extern "C" {
    // Bounds of the program's segments, from user/link.ld.
    static __aspen_text_start: u8;
    static __aspen_text_end: u8;
    static __aspen_data_start: u8;
    static __aspen_data_end: u8;
}

fn anon(pages: u64, flags: MapFlags) -> Result<Region, Errno> {
    let len = pages * PAGE;
    // SAFETY: a new anonymous mapping (no MAP_FIXED) disturbs nothing.
    let addr = unsafe { mem::mmap(0, len as usize, Prot::READ | Prot::WRITE, flags | MapFlags::ANONYMOUS, -1, 0)? };
    Ok(Region { addr: addr as u64, len })
}

impl Env {
    fn set_up(opts: &Options) -> Result<Env, Errno> {
        // No console descriptors (a read of the console blocks; a write of
        // random bytes would garble the report), except fd 2 for --trace.
        let _ = fs::close(0);
        let _ = fs::close(1);
        if !opts.trace {
            let _ = fs::close(2);
        }
        let mut fds = [u64::MAX; 8];
        let exe_fd = fs::open(opts.exe, fs::OpenFlags::RDONLY, 0)?;
        fds[0] = exe_fd as u64;
        for (slot, path) in fds[1..].iter_mut().zip([c"/", c"/proc/meminfo", c"/proc/self/maps", c"/etc"]) {
            if let Ok(fd) = fs::open(path, fs::OpenFlags::RDONLY, 0) {
                *slot = fd as u64;
            }
        }
        let scratch = anon(16, MapFlags::PRIVATE)?;
        let shared = anon(4, MapFlags::SHARED)?;
        // SAFETY: a new private file mapping (no MAP_FIXED).
        let filemap = unsafe { mem::mmap(0, 4 * PAGE as usize, Prot::READ, MapFlags::PRIVATE, exe_fd, 0)? } as u64;
        let argbuf = anon(gen::ARG_PAGES + 1, MapFlags::PRIVATE)?;
        // SAFETY: the last page of the new buffer: nothing uses it.
        unsafe { mem::munmap((argbuf.addr + gen::ARG_PAGES * PAGE) as usize, PAGE as usize)? };
        // SAFETY: brk(0) only asks; growing the break maps fresh memory.
        let heap_start = unsafe { mem::brk(0) } as u64;
        // SAFETY: as above.
        let heap_end = unsafe { mem::brk((heap_start + 16 * PAGE) as usize) } as u64;
        // Half the scratch and shared pages present, half not yet faulted in.
        for page in (0..scratch.len).step_by(2 * PAGE as usize) {
            // SAFETY: the fresh mapping is ours; no Rust object lives there.
            unsafe { ((scratch.addr + page) as *mut u8).write_volatile(1) };
        }
        // SAFETY: as above.
        unsafe { (shared.addr as *mut u8).write_volatile(1) };
        // Only the symbols' addresses are taken.
        let text = (&raw const __aspen_text_start as u64, &raw const __aspen_text_end as u64);
        let data = (&raw const __aspen_data_start as u64, &raw const __aspen_data_end as u64);
        Ok(Env {
            linux: opts.linux,
            trace: opts.trace,
            avoid: opts.avoid,
            exe: opts.exe,
            pid: process::getpid() as u64,
            scratch,
            shared,
            filemap: Region { addr: filemap, len: 4 * PAGE },
            heap: Region { addr: heap_start, len: heap_end.saturating_sub(heap_start) },
            stack: 0,
            text: Region { addr: text.0, len: text.1 - text.0 },
            data: Region { addr: data.0, len: data.1 - data.0 },
            argbuf: argbuf.addr,
            regions: [
                Mapping { addr: scratch.addr, len: scratch.len, prot: 3 },
                Mapping { addr: shared.addr, len: shared.len, prot: 3 },
                Mapping { addr: filemap, len: 4 * PAGE, prot: 1 },
                Mapping { addr: heap_start, len: heap_end.saturating_sub(heap_start), prot: 3 },
            ],
            maps: [
                Mapping { addr: scratch.addr, len: scratch.len, prot: 3 },
                Mapping { addr: shared.addr, len: shared.len, prot: 3 },
                Mapping { addr: filemap, len: 4 * PAGE, prot: 1 },
                Mapping { addr: heap_start, len: 16 * PAGE, prot: 3 },
                Mapping { addr: scratch.addr + 8 * PAGE, len: 8 * PAGE, prot: 3 },
                Mapping { addr: argbuf.addr - 16 * PAGE, len: 16 * PAGE, prot: 0 },
                Mapping { addr: scratch.addr + 12 * PAGE, len: 4 * PAGE, prot: 3 },
                Mapping { addr: heap_start + 8 * PAGE, len: 8 * PAGE, prot: 3 },
            ],
            next_map: 0,
            fds,
            next_fd: 5,
        })
    }

    /// Words for the ring header (the report prints them).
    fn describe(&self) -> [u64; ring::H_ENV_WORDS] {
        let mut w = [0u64; ring::H_ENV_WORDS];
        let values = [
            self.scratch.addr,
            self.shared.addr,
            self.filemap.addr,
            self.heap.addr,
            self.stack,
            self.argbuf,
            self.text.addr,
            self.data.addr,
        ];
        w[..values.len()].copy_from_slice(&values);
        w
    }
}

/// The names of the words `Env::describe` gives.
pub const ENV_NAMES: [&str; 8] = ["scratch", "shared", "filemap", "heap", "stack", "argbuf", "text", "data"];

/// Runs batch `batch` in this (child) process: `calls` operations, then exit 0.
#[inline(never)]
pub fn run(ring: Ring, opts: &Options, batch: u64, calls: u64) -> ! {
    let mut env = match Env::set_up(opts) {
        Ok(env) => env,
        Err(e) => {
            ring.set(H_SETUP, 2 + e.as_i32() as u64);
            process::exit_group(SETUP_FAILED)
        }
    };
    let sp: u64;
    // SAFETY: reads the stack pointer.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    env.stack = sp;
    for (i, w) in env.describe().iter().enumerate() {
        ring.set(H_ENV + i, *w);
    }
    ring.set(H_SETUP, 1);
    let mut rng = Rng::new(batch_seed(opts.seed, batch));
    for seq in 0..calls {
        let call = gen::generate(&mut rng, &mut env);
        ring.start(seq, call.nr, &call.args);
        if opts.trace {
            trace(&Logged { seq, nr: call.nr, args: call.args, ret: ring::PENDING }, false);
        }
        // SAFETY (of `execute` below): none: this is the point of the
        // program. The call may break anything in this process; the kernel
        // must survive it, and this disposable child may die (the parent
        // judges how).
        let offsets = Offsets::before(&call, &env);
        let t0 = time::counter();
        // SAFETY: as above.
        let ret = unsafe { execute(&call) };
        let t1 = time::counter();
        ring.finish(seq, ret);
        offsets.check(ring, ret);
        ring.timed(call.nr, &call.args, t1.wrapping_sub(t0));
        if opts.trace {
            trace(&Logged { seq, nr: call.nr, args: call.args, ret }, true);
        }
        gen::observe(&mut env, &call, ret);
    }
    reap();
    process::exit_group(0)
}

/// How a call must move an offset: by its result when it succeeds (not
/// at all when it fails), or never.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    ByResult,
    Unchanged,
}

/// Where an offset lives: a descriptor's file offset, or a sendfile
/// offset the fuzzer wrote into the argument buffer.
#[derive(Clone, Copy)]
enum Offset {
    File(i32),
    Argument(u64),
}

impl Offset {
    /// Its value now; None if it has none (a descriptor that is not open
    /// or has no offset).
    fn read(self) -> Option<u64> {
        match self {
            Offset::File(fd) => fs::lseek(fd, 0, fs::SEEK_CUR).ok(),
            // SAFETY: the child's own argument buffer, which no Rust
            // object uses; if a call unmapped it this faults and the
            // (disposable) child dies of SIGSEGV, which the parent accepts.
            Offset::Argument(addr) => Some(unsafe { (addr as *const u64).read_volatile() }),
        }
    }

    /// How the ring header names it: the descriptor, or the address.
    fn id(self) -> u64 {
        match self {
            Offset::File(fd) => fd as u64,
            Offset::Argument(addr) => addr,
        }
    }
}

/// The offsets a call may move, read before it.
struct Offsets {
    taken: [Option<(Offset, Rule, u64)>; 3],
}

impl Offsets {
    /// Reads the offsets `call` may move: the descriptor of a read, write,
    /// readv or writev; sendfile's two descriptors (its input's only when
    /// it has no offset pointer: with one the file offset stays put) and
    /// the offset behind its pointer when the fuzzer wrote it. A
    /// descriptor must fit the kernel's `int`, or it is left unchecked.
    fn before(call: &Call, env: &Env) -> Offsets {
        let fd = |arg: u64| i32::try_from(arg).ok().map(Offset::File);
        let [a0, a1, a2, ..] = call.args;
        let wanted: [Option<(Offset, Rule)>; 3] = match Sysno::from_number(call.nr as usize) {
            Some(Sysno::Read | Sysno::Write | Sysno::Readv | Sysno::Writev) => {
                [fd(a0).map(|o| (o, Rule::ByResult)), None, None]
            }
            Some(Sysno::Sendfile) => {
                let input = if a2 == 0 { Rule::ByResult } else { Rule::Unchanged };
                // The same descriptor twice moves one offset twice over:
                // only the input is checked then.
                let output = if a0 == a1 { None } else { fd(a0).map(|o| (o, Rule::ByResult)) };
                let pointer = (a2 == gen::sendfile_offset(env)).then_some((Offset::Argument(a2), Rule::ByResult));
                [fd(a1).map(|o| (o, input)), output, pointer]
            }
            _ => [None, None, None],
        };
        let taken = wanted.map(|w| w.and_then(|(offset, rule)| Some((offset, rule, offset.read()?))));
        Offsets { taken }
    }

    /// Checks each offset against the call's result `ret`; a mismatch
    /// records the offset, its values before and after, and ends the
    /// child with [`OFFSET_MOVED`].
    fn check(&self, ring: Ring, ret: u64) {
        let failed = (ret as i64) < 0 && (ret as i64) >= -4095;
        for (offset, rule, before) in self.taken.iter().flatten().copied() {
            let expected = if failed || rule == Rule::Unchanged { before } else { before.wrapping_add(ret) };
            let after = offset.read();
            if after != Some(expected) {
                ring.set(H_OFFSET_WHICH, offset.id());
                ring.set(H_OFFSET_BEFORE, before);
                ring.set(H_OFFSET_AFTER, after.unwrap_or(u64::MAX));
                process::exit_group(OFFSET_MOVED)
            }
        }
    }
}

/// Prints a call (before) or its result (after) on fd 2.
fn trace(call: &Logged, done: bool) {
    let mut w = FdWriter::<256>::new(2);
    if done {
        let _ = writeln!(w, "fuzz-trace #{} {}", call.seq, ring::Display(call));
    } else {
        let _ = writeln!(w, "fuzz-trace #{} calling {}", call.seq, ring::Display(call));
    }
    w.flush();
}

/// Waits for every process this child created (clone) before it exits.
fn reap() {
    // __WALL: clone children with another exit signal, or none, count too.
    let options = 0x4000_0000;
    for _ in 0..10_000 {
        // SAFETY: wait4 with NULL status and rusage touches no memory.
        let ret = unsafe { aspen_sys::raw::syscall4(Sysno::Wait4.number(), usize::MAX, 0, options, 0) };
        if ret < 0 {
            return;
        }
    }
}

/// Makes the call (or the load or store).
///
/// # Safety
/// None: the call may unmap or overwrite any memory of this process.
#[inline(always)]
pub unsafe fn execute(call: &Call) -> u64 {
    let [a0, a1, a2, a3, a4, a5] = call.args;
    match call.nr {
        TOUCH_READ => {
            let value: u64;
            // SAFETY: none (see above): a load that may fault.
            unsafe { asm!("ldrb {v:w}, [{a}]", a = in(reg) a0, v = out(reg) value, options(nostack, readonly)) };
            value
        }
        TOUCH_WRITE => {
            // SAFETY: none (see above): a store that may fault.
            unsafe { asm!("strb {v:w}, [{a}]", a = in(reg) a0, v = in(reg) a1, options(nostack)) };
            0
        }
        gen::CLONE => {
            let ret: u64;
            // A new process (or thread) sees 0 and exits at once, touching
            // no memory: it may share this one's address space and stack.
            // `exit`, not `exit_group`: a new thread ends alone.
            // SAFETY: none (see above).
            unsafe {
                asm!(
                    "svc #0",
                    "cbnz x0, 2f",
                    "mov x8, #93",
                    "svc #0",
                    "2:",
                    inlateout("x0") a0 => ret,
                    in("x1") a1, in("x2") a2, in("x3") a3, in("x4") a4, in("x5") a5,
                    inlateout("x8") call.nr => _,
                    options(nostack),
                )
            };
            ret
        }
        n => {
            let ret: u64;
            // SAFETY: none (see above).
            unsafe {
                asm!(
                    "svc #0",
                    inlateout("x0") a0 => ret,
                    in("x1") a1, in("x2") a2, in("x3") a3, in("x4") a4, in("x5") a5, in("x8") n,
                    options(nostack),
                )
            };
            ret
        }
    }
}

/// Exits at once with `code` (used by a process started by an unexpected
/// execve success).
pub fn exit_now(code: i32) -> ! {
    loop {
        // SAFETY: ends the process.
        unsafe { syscall1(Sysno::ExitGroup.number(), code as usize) };
    }
}
