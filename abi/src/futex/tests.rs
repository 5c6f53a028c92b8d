//! Host tests of the futex ABI: operation decoding, `FUTEX_WAKE_OP`, the PI
//! word protocol and the robust-list walk over a fake user memory.

use alloc::vec::Vec;

use super::*;
use crate::uaccess::{CopyFault, UserSlice};

#[test]
fn operations_decode_with_linux_errnos() {
    let op = FutexOp::decode(9 | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME).unwrap();
    assert_eq!(op, FutexOp { command: FutexCommand::WaitBitset, private: true, realtime: true });
    assert_eq!(FutexOp::decode(13 | FUTEX_CLOCK_REALTIME).unwrap().command, FutexCommand::LockPi2);
    // CLOCK_REALTIME only with the absolute-timeout waits.
    for raw in [0, 1, 3, 4, 5, 6, 7, 8, 10] {
        assert_eq!(FutexOp::decode(raw | FUTEX_CLOCK_REALTIME), Err(Errno::ENOSYS), "op {raw}");
        assert!(FutexOp::decode(raw).is_ok(), "op {raw}");
    }
    for raw in [2, 11, 12, 14, 15, 127, 0x200] {
        assert_eq!(FutexOp::decode(raw), Err(Errno::ENOSYS), "op {raw}");
    }
    assert_eq!(FutexOp::timeout_kind(FUTEX_PRIVATE_FLAG), TimeoutKind::Relative);
    assert_eq!(FutexOp::timeout_kind(6), TimeoutKind::Absolute);
    assert_eq!(FutexOp::timeout_kind(9 | FUTEX_CLOCK_REALTIME), TimeoutKind::Absolute);
    for raw in [1, 3, 4, 5, 7, 8, 10] {
        assert_eq!(FutexOp::timeout_kind(raw), TimeoutKind::None);
    }
}

/// `FUTEX_OP(op, oparg, cmp, cmparg)` of `<linux/futex.h>`.
fn futex_op(op: u32, oparg: u32, cmp: u32, cmparg: u32) -> u32 {
    ((op & 0xf) << 28) | ((cmp & 0xf) << 24) | ((oparg & 0xfff) << 12) | (cmparg & 0xfff)
}

#[test]
fn wake_op_decodes_and_applies_as_linux() {
    let op = WakeOp::decode(futex_op(1, 5, 4, 0xfff));
    assert_eq!(op, WakeOp { op: 1, cmp: 4, oparg: 5, cmparg: -1 });
    assert_eq!(op.apply(10), Ok(15));
    assert_eq!(op.compare(0), Ok(true), "0 > -1");
    assert_eq!(op.compare(u32::MAX), Ok(false), "-1 > -1");
    // Negative operands are sign-extended 12-bit values.
    assert_eq!(WakeOp::decode(futex_op(1, 0x800, 0, 0)).oparg, -2048);
    assert_eq!(WakeOp::decode(futex_op(1, 0xfff, 0, 0)).apply(0), Ok(u32::MAX));
    // FUTEX_OP_OPARG_SHIFT (8): the operand is 1 << oparg, taken mod 32.
    assert_eq!(WakeOp::decode(futex_op(8 | 2, 4, 0, 0)).apply(1), Ok(0x11));
    assert_eq!(WakeOp::decode(futex_op(8, 33, 0, 0)).oparg, 2);
    assert_eq!(WakeOp::decode(futex_op(8, 0xfff, 0, 0)).oparg, i32::MIN, "-1 & 31 = 31");
    let [set, or, andn, xor] = [0, 2, 3, 4].map(|o| WakeOp::decode(futex_op(o, 6, 0, 0)));
    assert_eq!((set.apply(9), or.apply(9), andn.apply(7), xor.apply(5)), (Ok(6), Ok(15), Ok(1), Ok(3)));
    assert_eq!(WakeOp::decode(futex_op(5, 0, 0, 0)).apply(0), Err(Errno::ENOSYS));
    assert_eq!(WakeOp::decode(futex_op(7, 0, 0, 0)).apply(0), Err(Errno::ENOSYS));
    let cmp = |c, old| WakeOp::decode(futex_op(0, 0, c, 3)).compare(old);
    let results: Vec<_> = (0..6).map(|c| [cmp(c, 2), cmp(c, 3), cmp(c, 4)]).collect();
    let t = Ok(true);
    let f = Ok(false);
    assert_eq!(results, [[f, t, f], [t, f, t], [t, f, f], [t, t, f], [f, f, t], [f, t, t]], "EQ NE LT LE GT GE");
    assert_eq!(cmp(6, 0), Err(Errno::ENOSYS));
    assert_eq!(cmp(15, 0), Err(Errno::ENOSYS));
}

#[test]
fn pi_words_follow_the_protocol() {
    assert_eq!(lock_pi_word(0, 7), Ok(PiLock::Take(7)));
    assert_eq!(lock_pi_word(FUTEX_OWNER_DIED, 7), Ok(PiLock::Take(FUTEX_OWNER_DIED | 7)));
    assert_eq!(lock_pi_word(FUTEX_WAITERS, 7), Ok(PiLock::Take(7)), "a stale waiters bit goes");
    assert_eq!(lock_pi_word(9, 7), Ok(PiLock::Wait { word: FUTEX_WAITERS | 9, owner: 9 }));
    assert_eq!(lock_pi_word(FUTEX_WAITERS | 9, 7), Ok(PiLock::Wait { word: FUTEX_WAITERS | 9, owner: 9 }));
    assert_eq!(lock_pi_word(7, 7), Err(Errno::EDEADLK));
    assert_eq!(lock_pi_word(FUTEX_WAITERS | FUTEX_OWNER_DIED | 7, 7), Err(Errno::EDEADLK));
    assert_eq!(handoff_word(FUTEX_OWNER_DIED | FUTEX_WAITERS, 12, true), FUTEX_OWNER_DIED | FUTEX_WAITERS | 12);
    assert_eq!(handoff_word(FUTEX_OWNER_DIED | 3, 12, false), FUTEX_WAITERS | 12);
}

#[test]
fn owner_death_marks_only_the_owners_words() {
    assert_eq!(owner_death(5, 5, false, false), Death::Store { word: FUTEX_OWNER_DIED, wake: false });
    assert_eq!(
        owner_death(FUTEX_WAITERS | 5, 5, false, false),
        Death::Store { word: FUTEX_WAITERS | FUTEX_OWNER_DIED, wake: true }
    );
    assert_eq!(
        owner_death(FUTEX_WAITERS | 5, 5, true, false),
        Death::Store { word: FUTEX_WAITERS | FUTEX_OWNER_DIED, wake: false },
        "PI words are handed on by the kernel's PI state"
    );
    assert_eq!(owner_death(6, 5, false, false), Death::Nothing);
    assert_eq!(owner_death(0, 5, false, false), Death::Nothing);
    assert_eq!(owner_death(0, 5, false, true), Death::WakeOne);
    assert_eq!(owner_death(0, 5, true, true), Death::Nothing);
}

/// User memory: little-endian bytes from `base`, nothing elsewhere.
struct Fake {
    base: u64,
    bytes: Vec<u8>,
}

impl Fake {
    fn range(&self, slice: UserSlice) -> Option<core::ops::Range<usize>> {
        let start = slice.addr().checked_sub(self.base)? as usize;
        let end = start + slice.len() as usize;
        (end <= self.bytes.len()).then_some(start..end)
    }

    fn put(&mut self, addr: u64, value: u64) {
        let at = (addr - self.base) as usize;
        self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
}

impl UserMemory for Fake {
    fn read_partial(&mut self, src: UserSlice, buf: &mut [u8]) -> Result<(), CopyFault> {
        let range = self.range(src.sub(0, buf.len() as u64)).ok_or(CopyFault::at_start(Errno::EFAULT))?;
        buf.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write_partial(&mut self, dst: UserSlice, data: &[u8]) -> Result<(), CopyFault> {
        let range = self.range(dst.sub(0, data.len() as u64)).ok_or(CopyFault::at_start(Errno::EFAULT))?;
        self.bytes[range].copy_from_slice(data);
        Ok(())
    }
}

const BASE: u64 = 0x1000;

/// A head at BASE with `futex_offset` 8 and entries at BASE + 0x100 * (i + 1).
fn list(entries: &[u64], pending: u64) -> Fake {
    let mut fake = Fake { base: BASE, bytes: alloc::vec![0; 0x1000] };
    let mut previous = BASE;
    for &entry in entries {
        fake.put(previous, entry);
        previous = entry & !1;
    }
    fake.put(previous, BASE);
    fake.put(BASE + 8, 8);
    fake.put(BASE + 16, pending);
    fake
}

fn walk(fake: &mut Fake) -> Vec<RobustEntry> {
    let mut seen = Vec::new();
    walk_robust_list(fake, BASE, |_, entry| {
        seen.push(entry);
        Ok(())
    });
    seen
}

fn entry(addr: u64, pi: bool, pending: bool) -> RobustEntry {
    RobustEntry { addr: addr + 8, pi, pending }
}

#[test]
fn robust_lists_are_walked_as_linux_walks_them() {
    let (a, b, c) = (BASE + 0x100, BASE + 0x200, BASE + 0x300);
    assert_eq!(walk(&mut list(&[a, b | 1], 0)), [entry(a, false, false), entry(b, true, false)]);
    // The pending entry is skipped in the list and visited last.
    assert_eq!(
        walk(&mut list(&[a, b, c], b | 1)),
        [entry(a, false, false), entry(c, false, false), entry(b, true, true)]
    );
    assert_eq!(walk(&mut list(&[], c)), [entry(c, false, true)]);
    // An unreadable next pointer ends the walk after its entry (then the
    // pending one is not visited either).
    let mut broken = list(&[a], c);
    broken.put(a, 0x10);
    assert_eq!(walk(&mut broken), [entry(a, false, false), entry(0x10, false, false)]);
    // A misaligned word ends it.
    let mut odd = list(&[a, b], 0);
    odd.put(BASE + 8, 2);
    assert!(walk(&mut odd).is_empty());
    // An unreadable head: nothing.
    let mut none = Vec::new();
    walk_robust_list(&mut list(&[], 0), 0x10, |_, e| {
        none.push(e);
        Ok(())
    });
    assert!(none.is_empty());
}

#[test]
fn robust_walks_are_bounded_and_stop_at_errors() {
    let a = BASE + 0x100;
    // A cycle that never reaches the head: ROBUST_LIST_LIMIT entries.
    let mut cycle = list(&[a], 0);
    cycle.put(a, a);
    assert_eq!(walk(&mut cycle).len(), ROBUST_LIST_LIMIT);
    let mut count = 0;
    walk_robust_list(&mut list(&[a, a + 0x100], 0), BASE, |_, _| {
        count += 1;
        Err(Errno::EFAULT)
    });
    assert_eq!(count, 1, "a word that cannot be reached ends the walk");
}
