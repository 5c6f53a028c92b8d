//! Fixed-capacity lists of physical address ranges.
//!
//! The kernel reads the device tree before it has a heap, so the ranges found
//! there are kept in an inline array. When a device tree lists more ranges
//! than fit, the list keeps the first [`RangeList::CAPACITY`] ones and says so
//! through [`RangeList::is_truncated`]; what to do about it (ignore the extra
//! RAM, refuse to trust the reserved list) is the caller's decision.

use core::fmt;

/// A physical address range: `size` bytes starting at `start`.
///
/// Ranges built by this crate are never empty and `start + size` never
/// overflows, so [`Range::end`] is always defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    /// First byte of the range.
    pub start: u64,
    /// Length of the range in bytes.
    pub size: u64,
}

impl Range {
    /// One past the last byte of the range.
    ///
    /// Saturates at `u64::MAX` for a hand-built range whose end does not fit.
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start, self.end())
    }
}

/// Up to [`RangeList::CAPACITY`] ranges, in device-tree order, without a heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RangeList {
    entries: [Range; Self::CAPACITY],
    len: usize,
    truncated: bool,
}

impl RangeList {
    /// How many ranges a list holds.
    pub const CAPACITY: usize = 32;

    /// An empty list.
    pub const fn new() -> Self {
        Self { entries: [Range { start: 0, size: 0 }; Self::CAPACITY], len: 0, truncated: false }
    }

    /// Appends a range; when the list is full the range is dropped and the
    /// list marked truncated.
    pub(crate) fn push(&mut self, range: Range) {
        match self.entries.get_mut(self.len) {
            Some(slot) => {
                *slot = range;
                self.len += 1;
            }
            None => self.truncated = true,
        }
    }

    /// The ranges, in the order the device tree lists them.
    pub fn as_slice(&self) -> &[Range] {
        self.entries.get(..self.len).unwrap_or(&[])
    }

    /// Iterates over the ranges.
    pub fn iter(&self) -> core::slice::Iter<'_, Range> {
        self.as_slice().iter()
    }

    /// How many ranges the list holds.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the list holds no range.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the device tree listed more ranges than [`Self::CAPACITY`];
    /// the extra ones are missing from the list.
    pub const fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl Default for RangeList {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RangeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for range in self.iter() {
            list.entry(&format_args!("{range}"));
        }
        if self.truncated {
            list.entry(&format_args!("(truncated)"));
        }
        list.finish()
    }
}

impl<'l> IntoIterator for &'l RangeList {
    type Item = &'l Range;
    type IntoIter = core::slice::Iter<'l, Range>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
