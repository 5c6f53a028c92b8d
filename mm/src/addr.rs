//! Typed physical and virtual addresses, page numbers and address ranges.
//!
//! Ranges are half-open: `start .. end_exclusive`.

use core::fmt;
use core::ops::{Add, Sub};

/// log2 of the translation granule (4 KiB).
pub const PAGE_SHIFT: u32 = 12;
/// The translation granule, in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident, $range:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// The address `raw`, taken as it is.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }
            /// The address as a number.
            pub const fn as_u64(self) -> u64 {
                self.0
            }
            /// The address as a `usize` (the same value on 64-bit targets).
            pub const fn as_usize(self) -> usize {
                self.0 as usize
            }
            /// Rounds down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                debug_assert!(align.is_power_of_two());
                Self(self.0 & !(align - 1))
            }
            /// Rounds up to a multiple of `align` (a power of two); `None` on overflow.
            pub const fn checked_align_up(self, align: u64) -> Option<Self> {
                debug_assert!(align.is_power_of_two());
                match self.0.checked_add(align - 1) {
                    Some(v) => Some(Self(v & !(align - 1))),
                    None => None,
                }
            }
            /// Rounds up to a multiple of `align`; panics on overflow (use for
            /// addresses the kernel itself chose).
            pub const fn align_up(self, align: u64) -> Self {
                match self.checked_align_up(align) {
                    Some(v) => v,
                    None => panic!("address overflow while aligning up"),
                }
            }
            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
            /// Whether the address is the first byte of a page.
            pub const fn is_page_aligned(self) -> bool {
                self.is_aligned(PAGE_SIZE)
            }
            /// Page (frame) number: the address shifted right by the granule.
            pub const fn page_number(self) -> u64 {
                self.0 >> PAGE_SHIFT
            }
            /// The first byte of page (frame) number `pn`.
            pub const fn from_page_number(pn: u64) -> Self {
                Self(pn << PAGE_SHIFT)
            }
            /// Offset inside the page.
            pub const fn page_offset(self) -> u64 {
                self.0 & (PAGE_SIZE - 1)
            }
            /// The address `bytes` further on; `None` on overflow.
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
        }

        impl Add<u64> for $name {
            type Output = Self;
            fn add(self, rhs: u64) -> Self {
                Self(self.0.checked_add(rhs).expect("address overflow"))
            }
        }

        impl Sub<u64> for $name {
            type Output = Self;
            fn sub(self, rhs: u64) -> Self {
                Self(self.0.checked_sub(rhs).expect("address underflow"))
            }
        }

        impl Sub<$name> for $name {
            type Output = u64;
            fn sub(self, rhs: $name) -> u64 {
                self.0.checked_sub(rhs.0).expect("address underflow")
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#018x}", self.0)
            }
        }

        /// A half-open range of addresses, `start .. end_exclusive`.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $range {
            /// The first address in the range.
            pub start: $name,
            /// The first address past the range.
            pub end_exclusive: $name,
        }

        impl $range {
            /// `start .. end_exclusive`; empty when `end_exclusive <= start`.
            pub const fn new(start: $name, end_exclusive: $name) -> Self {
                Self { start, end_exclusive }
            }
            /// `None` when `start + size` overflows.
            pub const fn from_start_size(start: $name, size: u64) -> Option<Self> {
                match start.checked_add(size) {
                    Some(end_exclusive) => Some(Self { start, end_exclusive }),
                    None => None,
                }
            }
            /// Length in bytes; 0 when empty.
            pub const fn size(&self) -> u64 {
                self.end_exclusive.0.saturating_sub(self.start.0)
            }
            /// Whether the range holds no address (`end_exclusive <= start`).
            pub const fn is_empty(&self) -> bool {
                self.end_exclusive.0 <= self.start.0
            }
            /// Whether `addr` is inside the range.
            pub const fn contains(&self, addr: $name) -> bool {
                self.start.0 <= addr.0 && addr.0 < self.end_exclusive.0
            }
            /// Whether the two ranges have at least one address in common.
            pub const fn overlaps(&self, other: &Self) -> bool {
                self.start.0 < other.end_exclusive.0 && other.start.0 < self.end_exclusive.0
            }
            /// The part of `self` inside `other`, if any.
            pub fn intersection(&self, other: &Self) -> Option<Self> {
                let start = core::cmp::max(self.start, other.start);
                let end_exclusive = core::cmp::min(self.end_exclusive, other.end_exclusive);
                (start < end_exclusive).then_some(Self { start, end_exclusive })
            }
            /// The largest page-aligned range inside `self`.
            pub fn shrink_to_pages(&self) -> Self {
                let start = self.start.checked_align_up(PAGE_SIZE).unwrap_or(self.end_exclusive);
                let end_exclusive = self.end_exclusive.align_down(PAGE_SIZE);
                if start >= end_exclusive {
                    Self { start, end_exclusive: start }
                } else {
                    Self { start, end_exclusive }
                }
            }
            /// The smallest page-aligned range that covers `self`.
            pub fn expand_to_pages(&self) -> Self {
                Self {
                    start: self.start.align_down(PAGE_SIZE),
                    end_exclusive: self.end_exclusive.align_up(PAGE_SIZE),
                }
            }
        }

        impl fmt::Debug for $range {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}..{:#x}", self.start.0, self.end_exclusive.0)
            }
        }
    };
}

address_type!(
    /// A physical (output) address.
    PhysAddr, PhysRange, "PA"
);
address_type!(
    /// A virtual (input) address.
    VirtAddr, VirtRange, "VA"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment() {
        let a = PhysAddr::new(0x1234);
        assert_eq!(a.align_down(PAGE_SIZE), PhysAddr::new(0x1000));
        assert_eq!(a.align_up(PAGE_SIZE), PhysAddr::new(0x2000));
        assert_eq!(VirtAddr::new(u64::MAX).checked_align_up(PAGE_SIZE), None);
        assert_eq!(a.page_number(), 1);
        assert_eq!(a.page_offset(), 0x234);
    }

    #[test]
    fn ranges() {
        let r = PhysRange::new(PhysAddr::new(0x1001), PhysAddr::new(0x3fff));
        assert_eq!(r.shrink_to_pages(), PhysRange::new(PhysAddr::new(0x2000), PhysAddr::new(0x3000)));
        assert_eq!(r.expand_to_pages(), PhysRange::new(PhysAddr::new(0x1000), PhysAddr::new(0x4000)));
        let tiny = PhysRange::new(PhysAddr::new(0x1001), PhysAddr::new(0x1fff));
        assert!(tiny.shrink_to_pages().is_empty());
        let o = PhysRange::new(PhysAddr::new(0x3000), PhysAddr::new(0x5000));
        assert!(r.overlaps(&o));
        assert_eq!(r.intersection(&o), Some(PhysRange::new(PhysAddr::new(0x3000), PhysAddr::new(0x3fff))));
        assert_eq!(VirtRange::from_start_size(VirtAddr::new(u64::MAX), 2), None);
    }
}
