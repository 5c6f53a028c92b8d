//! `futex(2)` as Linux 6.1 decodes it (`kernel/futex/syscalls.c`,
//! `waitwake.c`, `pi.c`, `core.c`), as pure logic:
//!
//! - [`FutexOp`]: the operation word (command, `FUTEX_PRIVATE_FLAG`,
//!   `FUTEX_CLOCK_REALTIME`) checked with Linux's errnos, and how the
//!   timeout argument is read for it.
//! - [`WakeOp`]: `FUTEX_WAKE_OP`'s encoded operation and comparison.
//! - The PI word protocol: [`lock_pi_word`] and the bits [`FUTEX_WAITERS`],
//!   [`FUTEX_OWNER_DIED`], [`FUTEX_TID_MASK`].
//! - Robust lists: [`walk_robust_list`] (Linux's `exit_robust_list`) and
//!   [`owner_death`] (`handle_futex_death`'s change of a word).

use crate::uaccess::{UserMemory, UserPtr};
use crate::Errno;

/// Set in a PI (or robust) futex word while threads wait in the kernel.
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
/// Set in a robust futex word whose owner ended without unlocking it.
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// The owner's thread id in a PI or robust futex word.
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// The bitset that matches every waiter (`FUTEX_WAIT` and `FUTEX_WAKE`).
pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;
/// `FUTEX_PRIVATE_FLAG`: the word is private to the address space.
pub const FUTEX_PRIVATE_FLAG: u32 = 128;
/// `FUTEX_CLOCK_REALTIME`: an absolute timeout on `CLOCK_REALTIME`.
pub const FUTEX_CLOCK_REALTIME: u32 = 256;
/// `sizeof(struct robust_list_head)` on arm64: the only length
/// `set_robust_list` accepts.
pub const ROBUST_LIST_HEAD_SIZE: u64 = 24;
/// Most entries of a robust list walked at thread exit.
pub const ROBUST_LIST_LIMIT: usize = 2048;

/// A futex command (the operation without its flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FutexCommand {
    /// `FUTEX_WAIT` (0).
    Wait,
    /// `FUTEX_WAKE` (1).
    Wake,
    /// `FUTEX_REQUEUE` (3).
    Requeue,
    /// `FUTEX_CMP_REQUEUE` (4).
    CmpRequeue,
    /// `FUTEX_WAKE_OP` (5).
    WakeOp,
    /// `FUTEX_LOCK_PI` (6).
    LockPi,
    /// `FUTEX_UNLOCK_PI` (7).
    UnlockPi,
    /// `FUTEX_TRYLOCK_PI` (8).
    TrylockPi,
    /// `FUTEX_WAIT_BITSET` (9).
    WaitBitset,
    /// `FUTEX_WAKE_BITSET` (10).
    WakeBitset,
    /// `FUTEX_LOCK_PI2` (13): `FUTEX_LOCK_PI` on `CLOCK_MONOTONIC` unless
    /// `FUTEX_CLOCK_REALTIME` says otherwise.
    LockPi2,
}

/// How a command reads its fourth argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutKind {
    /// No timeout: the argument is `val2` (a count) or unused.
    None,
    /// A `struct timespec` relative to now (`FUTEX_WAIT`).
    Relative,
    /// A `struct timespec` deadline.
    Absolute,
}

/// A decoded futex operation word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FutexOp {
    /// What to do.
    pub command: FutexCommand,
    /// `FUTEX_PRIVATE_FLAG`: the key is the address space and address.
    pub private: bool,
    /// `FUTEX_CLOCK_REALTIME`.
    pub realtime: bool,
}

impl FutexOp {
    /// Whether the raw command (`op` without its flags) takes a timeout,
    /// and of which kind: Linux reads and checks the timeout before it
    /// looks at anything else (`futex_cmd_has_timeout`).
    pub const fn timeout_kind(op: u32) -> TimeoutKind {
        match op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME) {
            0 => TimeoutKind::Relative,
            // LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2.
            6 | 9 | 11 | 13 => TimeoutKind::Absolute,
            _ => TimeoutKind::None,
        }
    }

    /// Decodes `op`: `ENOSYS` for `FUTEX_CLOCK_REALTIME` with a command
    /// other than `FUTEX_WAIT_BITSET`, `FUTEX_WAIT_REQUEUE_PI` or
    /// `FUTEX_LOCK_PI2`, and for commands Aspen does not have (`FUTEX_FD`,
    /// long gone from Linux, the requeue-PI pair, unknown numbers).
    pub const fn decode(op: u32) -> Result<FutexOp, Errno> {
        let private = op & FUTEX_PRIVATE_FLAG != 0;
        let realtime = op & FUTEX_CLOCK_REALTIME != 0;
        let raw = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
        if realtime && !matches!(raw, 9 | 11 | 13) {
            return Err(Errno::ENOSYS);
        }
        let command = match raw {
            0 => FutexCommand::Wait,
            1 => FutexCommand::Wake,
            3 => FutexCommand::Requeue,
            4 => FutexCommand::CmpRequeue,
            5 => FutexCommand::WakeOp,
            6 => FutexCommand::LockPi,
            7 => FutexCommand::UnlockPi,
            8 => FutexCommand::TrylockPi,
            9 => FutexCommand::WaitBitset,
            10 => FutexCommand::WakeBitset,
            13 => FutexCommand::LockPi2,
            _ => return Err(Errno::ENOSYS),
        };
        Ok(FutexOp { command, private, realtime })
    }
}

/// `FUTEX_WAKE_OP`'s operation word: `op` (3 bits, with bit 31 making the
/// argument a shift), `cmp` (4 bits), `oparg` and `cmparg` (12-bit signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeOp {
    /// `FUTEX_OP_SET` 0, `ADD` 1, `OR` 2, `ANDN` 3, `XOR` 4.
    pub op: u32,
    /// `FUTEX_OP_CMP_EQ` 0, `NE` 1, `LT` 2, `LE` 3, `GT` 4, `GE` 5.
    pub cmp: u32,
    /// The operand (already `1 << oparg` with `FUTEX_OP_OPARG_SHIFT`).
    pub oparg: i32,
    /// What the old value is compared with.
    pub cmparg: i32,
}

/// Sign-extends the low 12 bits.
const fn sign_extend12(value: u32) -> i32 {
    ((value << 20) as i32) >> 20
}

impl WakeOp {
    /// Decodes `encoded` as Linux's `futex_atomic_op_inuser`: with
    /// `FUTEX_OP_OPARG_SHIFT` an out-of-range shift is taken modulo 32 (as
    /// Linux does, with a warning in its log).
    pub const fn decode(encoded: u32) -> WakeOp {
        let op = (encoded & 0x7000_0000) >> 28;
        let cmp = (encoded & 0x0f00_0000) >> 24;
        let mut oparg = sign_extend12((encoded & 0x00ff_f000) >> 12);
        let cmparg = sign_extend12(encoded & 0xfff);
        if encoded & 0x8000_0000 != 0 {
            oparg = 1 << (oparg & 31);
        }
        WakeOp { op, cmp, oparg, cmparg }
    }

    /// The new value of a word that holds `old`; `ENOSYS` for an unknown
    /// operation (nothing is written then).
    pub const fn apply(self, old: u32) -> Result<u32, Errno> {
        let arg = self.oparg as u32;
        Ok(match self.op {
            0 => arg,
            1 => old.wrapping_add(arg),
            2 => old | arg,
            3 => old & !arg,
            4 => old ^ arg,
            _ => return Err(Errno::ENOSYS),
        })
    }

    /// Whether the old value `old` (as a signed int) passes the comparison;
    /// `ENOSYS` for an unknown one (Linux has written the word by then).
    pub const fn compare(self, old: u32) -> Result<bool, Errno> {
        let (old, arg) = (old as i32, self.cmparg);
        Ok(match self.cmp {
            0 => old == arg,
            1 => old != arg,
            2 => old < arg,
            3 => old <= arg,
            4 => old > arg,
            5 => old >= arg,
            _ => return Err(Errno::ENOSYS),
        })
    }
}

/// What `FUTEX_LOCK_PI` finds in the word, given no thread waits for it in
/// the kernel (Linux's `futex_lock_pi_atomic`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PiLock {
    /// Free (no owner): store this word; the caller owns the lock
    /// (`FUTEX_OWNER_DIED` is kept).
    Take(u32),
    /// Owned by the thread in the low bits: store this word (with
    /// `FUTEX_WAITERS`) and wait for that owner.
    Wait {
        /// The word to store.
        word: u32,
        /// The owner's thread id.
        owner: u32,
    },
}

/// `FUTEX_LOCK_PI`'s step on the word `word` for thread `tid`: `EDEADLK`
/// when `tid` owns it already.
pub const fn lock_pi_word(word: u32, tid: u32) -> Result<PiLock, Errno> {
    let owner = word & FUTEX_TID_MASK;
    if owner == tid {
        return Err(Errno::EDEADLK);
    }
    if owner == 0 {
        return Ok(PiLock::Take((word & FUTEX_OWNER_DIED) | tid));
    }
    Ok(PiLock::Wait { word: word | FUTEX_WAITERS, owner })
}

/// The word `FUTEX_UNLOCK_PI` (or an owner's exit) leaves when it hands the
/// lock to thread `tid`: Linux always sets `FUTEX_WAITERS` then, so that the
/// new owner's unlock comes to the kernel; `keep_died` keeps
/// `FUTEX_OWNER_DIED` from `word` (an owner that died).
pub const fn handoff_word(word: u32, tid: u32, keep_died: bool) -> u32 {
    let died = if keep_died { word & FUTEX_OWNER_DIED } else { 0 };
    died | FUTEX_WAITERS | (tid & FUTEX_TID_MASK)
}

/// What an exiting thread does to one futex word of its robust list
/// (Linux's `handle_futex_death`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Death {
    /// Leave it alone (another thread owns it).
    Nothing,
    /// A non-PI lock the thread was taking or releasing (the pending entry)
    /// with a word of 0: wake one waiter, in case it was left behind.
    WakeOne,
    /// Store `word` (`FUTEX_OWNER_DIED`, the TID cleared), then wake one
    /// waiter if `wake`.
    Store {
        /// The new word.
        word: u32,
        /// Whether to wake a waiter (a non-PI word with `FUTEX_WAITERS`;
        /// a PI one is handed on by the kernel's own PI state).
        wake: bool,
    },
}

/// `handle_futex_death`'s decision for a word holding `word`, for the
/// exiting thread `tid`; `pi` is the entry's PI bit, `pending` whether it is
/// the list's `list_op_pending`.
pub const fn owner_death(word: u32, tid: u32, pi: bool, pending: bool) -> Death {
    if pending && !pi && word == 0 {
        return Death::WakeOne;
    }
    if word & FUTEX_TID_MASK != tid {
        return Death::Nothing;
    }
    Death::Store { word: (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED, wake: !pi && word & FUTEX_WAITERS != 0 }
}

/// One futex word named by a robust list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RobustEntry {
    /// The word's address (entry plus `futex_offset`).
    pub addr: u64,
    /// The entry's low bit: a PI futex.
    pub pi: bool,
    /// Whether it is the `list_op_pending` entry.
    pub pending: bool,
}

/// Reads the pointer at `addr`: the entry (low bit cleared) and its PI bit.
fn fetch_entry(memory: &mut impl UserMemory, addr: u64) -> Result<(u64, bool), Errno> {
    let raw = memory.read_u64(UserPtr::new(addr)?)?;
    Ok((raw & !1, raw & 1 != 0))
}

/// Walks the robust list at `head` as Linux's `exit_robust_list`: each
/// entry up to [`ROBUST_LIST_LIMIT`] (not the pending one), then the
/// `list_op_pending` entry, each handed to `visit` with its word's
/// address. A pointer that cannot be read ends the walk, as does a
/// misaligned word or `visit` returning an error (a word it could not
/// reach).
pub fn walk_robust_list<M: UserMemory>(
    memory: &mut M,
    head: u64,
    mut visit: impl FnMut(&mut M, RobustEntry) -> Result<(), Errno>,
) {
    let Ok((mut entry, mut pi)) = fetch_entry(memory, head) else { return };
    let Ok(offset) = UserPtr::new(head.wrapping_add(8)).map_err(Errno::from).and_then(|p| memory.read_u64(p)) else {
        return;
    };
    let Ok((pending, pending_pi)) = fetch_entry(memory, head.wrapping_add(16)) else { return };
    let word = |entry: u64| entry.wrapping_add(offset);
    let mut limit = ROBUST_LIST_LIMIT;
    while entry != head {
        let next = fetch_entry(memory, entry);
        if entry != pending {
            let addr = word(entry);
            if addr % 4 != 0 || visit(memory, RobustEntry { addr, pi, pending: false }).is_err() {
                return;
            }
        }
        let Ok((next, next_pi)) = next else { return };
        entry = next;
        pi = next_pi;
        limit -= 1;
        if limit == 0 {
            break;
        }
    }
    if pending != 0 && word(pending) % 4 == 0 {
        let _ = visit(memory, RobustEntry { addr: word(pending), pi: pending_pi, pending: true });
    }
}

#[cfg(test)]
mod tests;
