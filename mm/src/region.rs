//! A small fixed-capacity set of physical ranges, for boot-time memory
//! bookkeeping before any allocator exists: RAM from the device tree, minus
//! the kernel, the DTB, the initrd and reserved ranges.

use crate::addr::{PhysAddr, PhysRange};

/// The list is full: the board described more ranges than fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapacityExceeded;

/// Disjoint, sorted, non-empty ranges; at most `N` of them.
#[derive(Clone, Copy)]
pub struct RangeSet<const N: usize> {
    ranges: [PhysRange; N],
    len: usize,
}

impl<const N: usize> RangeSet<N> {
    /// An empty set.
    pub const fn new() -> Self {
        Self { ranges: [PhysRange::new(PhysAddr::new(0), PhysAddr::new(0)); N], len: 0 }
    }

    /// The ranges, sorted by start address.
    pub fn as_slice(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set holds no range.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total bytes covered.
    pub fn total_size(&self) -> u64 {
        self.as_slice().iter().map(PhysRange::size).sum()
    }

    /// Adds `range`, merging it with ranges it overlaps or touches.
    pub fn insert(&mut self, range: PhysRange) -> Result<(), CapacityExceeded> {
        if range.is_empty() {
            return Ok(());
        }
        let mut merged = range;
        let mut kept = Self::new();
        for r in self.as_slice() {
            if r.end_exclusive < merged.start || merged.end_exclusive < r.start {
                kept.push_unsorted(*r)?;
            } else {
                merged.start = merged.start.min(r.start);
                merged.end_exclusive = merged.end_exclusive.max(r.end_exclusive);
            }
        }
        kept.push_unsorted(merged)?;
        kept.ranges[..kept.len].sort_unstable_by_key(|r| r.start);
        *self = kept;
        Ok(())
    }

    /// Removes every address in `range`, splitting a range it cuts through.
    pub fn remove(&mut self, range: PhysRange) -> Result<(), CapacityExceeded> {
        if range.is_empty() {
            return Ok(());
        }
        let mut kept = Self::new();
        for r in self.as_slice() {
            if !r.overlaps(&range) {
                kept.push_unsorted(*r)?;
                continue;
            }
            let below = PhysRange::new(r.start, range.start.min(r.end_exclusive));
            let above = PhysRange::new(range.end_exclusive.max(r.start), r.end_exclusive);
            for piece in [below, above] {
                if !piece.is_empty() {
                    kept.push_unsorted(piece)?;
                }
            }
        }
        *self = kept;
        Ok(())
    }

    fn push_unsorted(&mut self, range: PhysRange) -> Result<(), CapacityExceeded> {
        let slot = self.ranges.get_mut(self.len).ok_or(CapacityExceeded)?;
        *slot = range;
        self.len += 1;
        Ok(())
    }
}

impl<const N: usize> Default for RangeSet<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Debug for RangeSet<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(a: u64, b: u64) -> PhysRange {
        PhysRange::new(PhysAddr::new(a), PhysAddr::new(b))
    }

    #[test]
    fn insert_merges_and_sorts() {
        let mut s = RangeSet::<4>::new();
        s.insert(r(0x5000, 0x6000)).unwrap();
        s.insert(r(0x1000, 0x2000)).unwrap();
        s.insert(r(0x2000, 0x3000)).unwrap();
        assert_eq!(s.as_slice(), &[r(0x1000, 0x3000), r(0x5000, 0x6000)]);
        s.insert(r(0x2800, 0x5800)).unwrap();
        assert_eq!(s.as_slice(), &[r(0x1000, 0x6000)]);
    }

    #[test]
    fn remove_splits() {
        let mut s = RangeSet::<4>::new();
        s.insert(r(0x0, 0x10000)).unwrap();
        s.remove(r(0x4000, 0x5000)).unwrap();
        s.remove(r(0x0, 0x1000)).unwrap();
        s.remove(r(0xf000, 0x20000)).unwrap();
        assert_eq!(s.as_slice(), &[r(0x1000, 0x4000), r(0x5000, 0xf000)]);
        assert_eq!(s.total_size(), 0xd000);
    }

    #[test]
    fn capacity_is_an_error() {
        let mut s = RangeSet::<1>::new();
        s.insert(r(0, 0x3000)).unwrap();
        assert_eq!(s.remove(r(0x1000, 0x2000)), Err(CapacityExceeded));
        assert_eq!(s.insert(r(0x8000, 0x9000)), Err(CapacityExceeded));
    }

    proptest! {
        #[test]
        fn matches_a_page_bitmap(ops in proptest::collection::vec((any::<bool>(), 0u64..64, 1u64..16), 1..40)) {
            let mut set = RangeSet::<64>::new();
            let mut pages = [false; 80];
            for (add, start, len) in ops {
                let range = r(start * 0x1000, (start + len) * 0x1000);
                if add { set.insert(range).unwrap() } else { set.remove(range).unwrap() }
                for p in start..start + len { pages[p as usize] = add; }
            }
            for (p, &present) in pages.iter().enumerate() {
                let inside = set.as_slice().iter().any(|r| r.contains(PhysAddr::new(p as u64 * 0x1000)));
                prop_assert_eq!(inside, present);
            }
            for w in set.as_slice().windows(2) {
                prop_assert!(w[0].end_exclusive < w[1].start);
            }
        }
    }
}
