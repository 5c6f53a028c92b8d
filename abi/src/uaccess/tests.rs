//! The checks of user addresses, and the string reader on a fake space.

use super::*;
use alloc::vec;

const KERNEL: u64 = 0xffff_0000_4000_0000;

#[test]
fn slices_stay_in_user_space() {
    assert_eq!(UserSlice::new(0x1000, 16).map(|s| (s.addr(), s.len())), Ok((0x1000, 16)));
    assert!(UserSlice::new(USER_ADDR_END - 8, 8).is_ok());
    assert!(UserSlice::new(USER_ADDR_END, 0).is_ok());
    assert_eq!(UserSlice::new(USER_ADDR_END - 8, 9), Err(UserAddrError::OutsideUserSpace));
    assert_eq!(UserSlice::new(USER_ADDR_END, 1), Err(UserAddrError::OutsideUserSpace));
    assert_eq!(UserSlice::new(KERNEL, 8), Err(UserAddrError::OutsideUserSpace));
    assert_eq!(UserSlice::new(KERNEL, 0), Err(UserAddrError::OutsideUserSpace));
    assert_eq!(UserSlice::new(u64::MAX - 7, 16), Err(UserAddrError::Wraps));
    assert_eq!(UserSlice::new(0x1000, u64::MAX), Err(UserAddrError::Wraps));
    assert_eq!(UserAddrError::Wraps.errno(), Errno::EFAULT);
    assert_eq!(Errno::from(UserAddrError::OutsideUserSpace), Errno::EFAULT);
}

#[test]
fn sub_slices_never_leave_the_slice() {
    let slice = UserSlice::new(0x1000, 100).unwrap();
    assert_eq!(slice.sub(10, 20), UserSlice::new(0x100a, 20).unwrap());
    assert_eq!(slice.sub(90, 20), UserSlice::new(0x105a, 10).unwrap());
    assert!(slice.sub(200, 1).is_empty());
    assert_eq!(slice.prefix(100), Some(slice));
    assert_eq!(slice.prefix(101), None);
}

#[test]
fn pointers_check_the_whole_value_and_alignment_when_asked() {
    assert!(UserPtr::<u64>::new(0x1001).is_ok());
    assert_eq!(UserPtr::<u64>::new_aligned(0x1001), Err(UserAddrError::Misaligned));
    assert_eq!(UserAddrError::Misaligned.errno(), Errno::EINVAL);
    assert!(UserPtr::<u32>::new_aligned(0x1004).is_ok());
    assert!(UserPtr::<u64>::new(USER_ADDR_END - 8).is_ok());
    assert_eq!(UserPtr::<u64>::new(USER_ADDR_END - 4), Err(UserAddrError::OutsideUserSpace));
    assert_eq!(UserPtr::<u64>::new(KERNEL), Err(UserAddrError::OutsideUserSpace));
    assert_eq!(UserPtr::<u64>::new(u64::MAX - 3), Err(UserAddrError::Wraps));
    let base = UserPtr::<u64>::new(0x2000).unwrap();
    assert_eq!(base.offset(3).map(UserPtr::addr), Ok(0x2018));
    assert_eq!(base.offset(u64::MAX), Err(UserAddrError::Wraps));
    assert_eq!(base.as_slice().len(), 8);
}

/// User memory as a byte array from `base`; the rest faults.
struct Fake {
    base: u64,
    bytes: alloc::vec::Vec<u8>,
}

impl Fake {
    /// The bytes of `slice` that are there: from its start up to the end of
    /// the array (none if it starts outside).
    fn reachable(&self, slice: UserSlice) -> core::ops::Range<usize> {
        let start = slice.addr().checked_sub(self.base).map_or(self.bytes.len(), |s| s as usize);
        let start = start.min(self.bytes.len());
        start..(start + slice.len() as usize).min(self.bytes.len())
    }
}

/// The copy of `want` bytes of which `reached` could be done.
fn outcome(want: usize, reached: usize) -> Result<(), CopyFault> {
    if reached < want {
        Err(CopyFault { copied: reached, errno: Errno::EFAULT })
    } else {
        Ok(())
    }
}

impl UserMemory for Fake {
    fn read_partial(&mut self, src: UserSlice, buf: &mut [u8]) -> Result<(), CopyFault> {
        let range = self.reachable(src.sub(0, buf.len() as u64));
        let reached = range.len();
        buf[..reached].copy_from_slice(&self.bytes[range]);
        outcome(buf.len(), reached)
    }

    fn write_partial(&mut self, dst: UserSlice, data: &[u8]) -> Result<(), CopyFault> {
        let range = self.reachable(dst.sub(0, data.len() as u64));
        let reached = range.len();
        self.bytes[range].copy_from_slice(&data[..reached]);
        outcome(data.len(), reached)
    }
}

#[test]
fn copies_report_how_far_they_got() {
    let base = 0x10_0000;
    let mut fake = Fake { base, bytes: vec![b'x'; 16] };
    let mut buf = [0u8; 8];
    let ends_after_4 = UserSlice::new(base + 12, 8).unwrap();
    assert_eq!(fake.read_partial(ends_after_4, &mut buf), Err(CopyFault { copied: 4, errno: Errno::EFAULT }));
    assert_eq!(&buf[..4], b"xxxx");
    assert_eq!(fake.read(ends_after_4, &mut buf), Err(Errno::EFAULT));
    assert_eq!(fake.write_partial(ends_after_4, b"abcdefgh"), Err(CopyFault { copied: 4, errno: Errno::EFAULT }));
    assert_eq!(&fake.bytes[12..], b"abcd");
    // A destination shorter than the data ends the copy at its end.
    let short = UserSlice::new(base, 3).unwrap();
    assert_eq!(fake.write_partial(short, b"12345"), Err(CopyFault { copied: 3, errno: Errno::EFAULT }));
    assert_eq!(fake.read_partial(UserSlice::new(base - 1, 2).unwrap(), &mut buf[..2]).map_err(|f| f.copied), Err(0));
    assert_eq!(fake.read_partial(UserSlice::new(base, 8).unwrap(), &mut buf), Ok(()));
    assert_eq!(&buf, b"123xxxxx");
    assert_eq!(Errno::from(CopyFault::at_start(Errno::ENOMEM)), Errno::ENOMEM);
}

#[test]
fn strings_are_read_up_to_the_nul_and_no_further() {
    // Two pages; the string "hello" starts 3 bytes before the second.
    let base = 0x10_0000;
    let mut fake = Fake { base, bytes: vec![b'x'; 2 * PAGE_SIZE as usize] };
    let at = base + PAGE_SIZE - 3;
    fake.write(UserSlice::new(at, 6).unwrap(), b"hello\0").unwrap();
    assert_eq!(fake.read_cstr(at, 64), Ok(b"hello".to_vec()));
    assert_eq!(fake.read_cstr(at, 5), Ok(b"hello".to_vec()));
    assert_eq!(fake.read_cstr(at, 4), Err(Errno::ENAMETOOLONG));
    // No NUL before the end of the mapped bytes.
    assert_eq!(fake.read_cstr(base + 2 * PAGE_SIZE - 2, 64), Err(Errno::EFAULT));
    // ... but a bound that stops first is ENAMETOOLONG.
    assert_eq!(fake.read_cstr(base + 2 * PAGE_SIZE - 4, 1), Err(Errno::ENAMETOOLONG));
    assert_eq!(fake.read_cstr(KERNEL, 8), Err(Errno::EFAULT));
    assert_eq!(fake.read_u64(UserPtr::new(base).unwrap()), Ok(u64::from_le_bytes([b'x'; 8])));
    assert_eq!(fake.read_bytes(UserSlice::new(base - 1, 2).unwrap()), Err(Errno::EFAULT));
}
