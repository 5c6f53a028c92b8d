//! The call log: a `MAP_SHARED` region the parent maps once and every fuzz
//! child inherits. The child records each call before making it (and its
//! result after), so when a child dies of a signal (and cannot print) the
//! parent still sees the last calls it made.
//!
//! Only raw volatile accesses touch the region: the child may have unmapped
//! or remapped its own view of it (then it dies or its log stops), and the
//! parent reads it only after the child is gone.

use core::fmt;

use aspen_sys::mem::{self, MapFlags, Prot, PAGE_SIZE};
use aspen_sys::raw::Sysno;
use aspen_sys::Errno;

/// Calls kept (the most recent ones).
pub const ENTRIES: usize = 64;
/// Bytes of the region: the header, then the entries.
pub const SIZE: usize = 3 * PAGE_SIZE;
/// Reserved, inaccessible bytes on either side of the region.
const GUARD: usize = 4 << 20;

const HEADER_WORDS: usize = 32;
const ENTRY_WORDS: usize = 10;
/// An entry's `ret` before the call returned.
pub const PENDING: u64 = 0x7e57_0000_dead_beef;

/// Header words.
pub const H_MAGIC: usize = 0;
pub const H_BATCH: usize = 1;
/// Operations started (system calls and memory touches).
pub const H_STARTED: usize = 2;
/// System calls started.
pub const H_SYSCALLS: usize = 3;
/// The child's set-up finished (1) or failed (errno + 2).
pub const H_SETUP: usize = 4;
/// The offset before and after the read, write or sendfile that moved it
/// by other than its result (words 5, 6; see `child::OFFSET_MOVED`), and
/// which offset: a descriptor, or the address of sendfile's (word 7).
pub const H_OFFSET_BEFORE: usize = 5;
/// See [`H_OFFSET_BEFORE`].
pub const H_OFFSET_AFTER: usize = 6;
/// See [`H_OFFSET_BEFORE`].
pub const H_OFFSET_WHICH: usize = 7;
/// Where the child's regions are (for the report): words 8.. (see `child::Env`).
pub const H_ENV: usize = 8;
pub const H_ENV_WORDS: usize = 16;
/// The slowest call of the batch: counter ticks it took (word 24), then
/// its number, then its six arguments (words 25-31).
pub const H_SLOWEST: usize = 24;

const MAGIC: u64 = 0xa5be_f022_0000_0001;

/// Pseudo call numbers of the child's own memory accesses (not system
/// calls): a one-byte load, a one-byte store.
pub const TOUCH_READ: u64 = 1 << 62;
/// See [`TOUCH_READ`].
pub const TOUCH_WRITE: u64 = (1 << 62) + 1;
/// Pseudo calls of a script (memory writes by the child itself): fill a
/// range with a byte, store one 64-bit word, call an address.
pub const FILL: u64 = (1 << 62) + 16;
/// See [`FILL`].
pub const PUT: u64 = (1 << 62) + 17;
/// See [`FILL`].
pub const JUMP: u64 = (1 << 62) + 18;

/// The shared log region.
#[derive(Clone, Copy)]
pub struct Ring {
    base: usize,
}

impl Ring {
    /// Maps the region (parent, once), in the middle of a reserved
    /// `PROT_NONE` area of [`GUARD`] bytes either side, so that the regions a
    /// child maps for itself (and the addresses around them it aims at) are
    /// never next to it.
    pub fn map() -> Result<Ring, Errno> {
        let total = 2 * GUARD + SIZE;
        // SAFETY: a new anonymous mapping, no MAP_FIXED: nothing else moves.
        let area = unsafe { mem::mmap(0, total, Prot::NONE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, -1, 0)? };
        // SAFETY: MAP_FIXED inside the reservation just made, which nothing uses.
        let base = unsafe {
            mem::mmap(
                area + GUARD,
                SIZE,
                Prot::READ | Prot::WRITE,
                MapFlags::SHARED | MapFlags::ANONYMOUS | MapFlags::FIXED,
                -1,
                0,
            )?
        };
        let ring = Ring { base };
        for page in (0..SIZE).step_by(PAGE_SIZE) {
            ring.set(page / 8, 0);
        }
        Ok(ring)
    }

    fn word(&self, index: usize) -> *mut u64 {
        (self.base + 8 * index) as *mut u64
    }

    pub fn get(&self, index: usize) -> u64 {
        // SAFETY: `index` stays inside the mapping (callers use the constants
        // above); a volatile read of memory that only raw accesses use.
        unsafe { self.word(index).read_volatile() }
    }

    pub fn set(&self, index: usize, value: u64) {
        // SAFETY: as in `get`; the child may have unmapped its view of the
        // region, then this faults and the (disposable) child dies.
        unsafe { self.word(index).write_volatile(value) }
    }

    /// Clears the header for a new batch (parent).
    pub fn reset(&self, batch: u64) {
        for i in 0..HEADER_WORDS {
            self.set(i, 0);
        }
        self.set(H_MAGIC, MAGIC);
        self.set(H_BATCH, batch);
    }

    fn entry(seq: u64) -> usize {
        HEADER_WORDS + (seq as usize % ENTRIES) * ENTRY_WORDS
    }

    /// Records call `seq` before it is made.
    pub fn start(&self, seq: u64, nr: u64, args: &[u64; 6]) {
        let e = Self::entry(seq);
        self.set(e + 9, PENDING);
        self.set(e, seq);
        self.set(e + 1, nr);
        for (i, a) in args.iter().enumerate() {
            self.set(e + 2 + i, *a);
        }
        self.set(H_STARTED, seq + 1);
        if nr < TOUCH_READ {
            self.set(H_SYSCALLS, self.get(H_SYSCALLS) + 1);
        }
    }

    /// Notes how long call `seq` took, if it is the slowest so far.
    pub fn timed(&self, nr: u64, args: &[u64; 6], ticks: u64) {
        if ticks > self.get(H_SLOWEST) {
            self.set(H_SLOWEST, ticks);
            self.set(H_SLOWEST + 1, nr);
            for (i, a) in args.iter().enumerate() {
                self.set(H_SLOWEST + 2 + i, *a);
            }
        }
    }

    /// The slowest call: ticks, and the call (result unknown).
    pub fn slowest(&self) -> (u64, Logged) {
        let mut args = [0u64; 6];
        for (i, a) in args.iter_mut().enumerate() {
            *a = self.get(H_SLOWEST + 2 + i);
        }
        (self.get(H_SLOWEST), Logged { seq: 0, nr: self.get(H_SLOWEST + 1), args, ret: PENDING })
    }

    /// Records the result of call `seq`.
    pub fn finish(&self, seq: u64, ret: u64) {
        self.set(Self::entry(seq) + 9, ret);
    }

    /// Operations the child started.
    pub fn started(&self) -> u64 {
        self.get(H_STARTED)
    }

    /// System calls the child started.
    pub fn syscalls(&self) -> u64 {
        self.get(H_SYSCALLS)
    }

    /// The logged call `seq` (if still in the ring): number, arguments, result.
    pub fn logged(&self, seq: u64) -> Option<Logged> {
        let e = Self::entry(seq);
        if self.get(H_MAGIC) != MAGIC || self.get(e) != seq || seq >= self.started() {
            return None;
        }
        let mut args = [0u64; 6];
        for (i, a) in args.iter_mut().enumerate() {
            *a = self.get(e + 2 + i);
        }
        Some(Logged { seq, nr: self.get(e + 1), args, ret: self.get(e + 9) })
    }
}

/// One logged call.
pub struct Logged {
    pub seq: u64,
    pub nr: u64,
    pub args: [u64; 6],
    pub ret: u64,
}

/// The name of a system call (or pseudo call), for logs.
pub fn name(nr: u64) -> &'static str {
    match nr {
        TOUCH_READ => "<load byte>",
        TOUCH_WRITE => "<store byte>",
        FILL => "<fill>",
        PUT => "<put u64>",
        JUMP => "<jump>",
        _ => Sysno::from_number(nr as usize).map_or("syscall", Sysno::name),
    }
}

/// Arguments each call takes (how many to print).
fn arity(nr: u64) -> usize {
    match nr {
        TOUCH_READ | JUMP => 1,
        TOUCH_WRITE | PUT => 2,
        FILL => 3,
        _ => Sysno::from_number(nr as usize).map_or(6, Sysno::arg_count),
    }
}

/// A call as C would write it: `mmap(0x1000, 0x2000, 0x3, 0x22, -1, 0) = 0x...`.
pub struct Display<'a>(pub &'a Logged);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        let name = name(c.nr);
        if name == "syscall" {
            write!(f, "syscall({:#x}", c.nr)?;
        } else {
            write!(f, "{name}(")?;
        }
        for (i, a) in c.args.iter().take(arity(c.nr)).enumerate() {
            let sep = if i == 0 && name != "syscall" { "" } else { ", " };
            if (*a as i64) < 0 && (*a as i64) > -4096 {
                write!(f, "{sep}{}", *a as i64)?;
            } else {
                write!(f, "{sep}{a:#x}")?;
            }
        }
        write!(f, ")")?;
        if c.ret == PENDING {
            write!(f, " -> did not return")
        } else if let Err(e) = Errno::result(c.ret as i64 as isize) {
            write!(f, " = -{}", e.name().unwrap_or("?")).and_then(|()| write!(f, " ({})", c.ret as i64))
        } else {
            write!(f, " = {:#x}", c.ret)
        }
    }
}
