//! mmap's choice of a free area with the top-down search hint: after any
//! sequence of mmaps, munmaps and mprotects, `mmap(NULL)` picks the highest
//! gap below the mmap base that holds it, as a search of every gap does.

use proptest::prelude::*;

use super::{with_env, PS};
use crate::addr::VirtAddr;
use crate::aspace::{AddressSpace, MmEnv, DEFAULT_MMAP_BASE, MMAP_MIN_ADDR};
use aspen_abi::mman::{MapFlags, Prot};

/// The highest gap of `len` bytes below `base`, from the vareas alone.
fn highest_gap<E: MmEnv>(space: &AddressSpace<'_, E>, len: u64, base: VirtAddr) -> Option<u64> {
    let mut high = base.as_u64();
    let ranges: Vec<_> = space.vareas().map(|v| v.range).filter(|r| r.start < base).collect();
    for range in ranges.iter().rev() {
        if range.end_exclusive.as_u64() < high && high - range.end_exclusive.as_u64() >= len {
            return Some(high - len);
        }
        high = high.min(range.start.as_u64());
    }
    (high >= MMAP_MIN_ADDR.as_u64() && high - MMAP_MIN_ADDR.as_u64() >= len).then(|| high - len)
}

#[derive(Clone, Debug)]
enum Op {
    /// mmap(NULL) of this many pages; read-only or read-write so that
    /// neighbours do not always merge.
    Map { pages: u64, writable: bool },
    /// munmap of part of the `which`th varea (counted from the top).
    Unmap { which: usize, skip: u64, pages: u64 },
    /// mprotect of part of one (may split it).
    Protect { which: usize, skip: u64, pages: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..6, any::<bool>()).prop_map(|(pages, writable)| Op::Map { pages, writable }),
        2 => (0usize..8, 0u64..4, 1u64..4).prop_map(|(which, skip, pages)| Op::Unmap { which, skip, pages }),
        1 => (0usize..8, 0u64..4, 1u64..4).prop_map(|(which, skip, pages)| Op::Protect { which, skip, pages }),
    ]
}

proptest! {
    #[test]
    fn mmap_takes_the_highest_gap_that_fits(ops in prop::collection::vec(op(), 1..80)) {
        with_env(64, |env| {
            let mut space = AddressSpace::new(env).unwrap();
            let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS;
            for op in ops {
                let nth = |space: &AddressSpace<'_, _>, which: usize| {
                    let ranges: Vec<_> = space.vareas().map(|v| v.range).collect();
                    (!ranges.is_empty()).then(|| ranges[ranges.len() - 1 - which % ranges.len()])
                };
                match op {
                    Op::Map { pages, writable } => {
                        let prot = if writable { Prot::READ | Prot::WRITE } else { Prot::READ };
                        let want = highest_gap(&space, pages * PS, DEFAULT_MMAP_BASE);
                        let got = space.mmap(VirtAddr::new(0), pages * PS, prot, flags, None, 0).unwrap();
                        prop_assert_eq!(Some(got.as_u64()), want);
                    }
                    Op::Unmap { which, skip, pages } => {
                        if let Some(range) = nth(&space, which) {
                            space.munmap(range.start + skip * PS, pages * PS).unwrap();
                        }
                    }
                    Op::Protect { which, skip, pages } => {
                        if let Some(range) = nth(&space, which) {
                            // Past the varea's end it may be ENOMEM (a hole).
                            let _ = space.mprotect(range.start + skip * PS, pages * PS, Prot::NONE);
                        }
                    }
                }
            }
            Ok(())
        })?;
    }
}

/// Thousands of one-page mappings that do not merge: each search starts
/// where the last one ended (with the hint off this took time quadratic in
/// the count; the test counts the vareas each search looks at indirectly,
/// through the total time staying small, so it asserts the addresses only).
#[test]
fn one_page_mappings_pack_downwards() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS;
        let mut expected = DEFAULT_MMAP_BASE.as_u64();
        for i in 0..4000u64 {
            let prot = if i % 2 == 0 { Prot::READ } else { Prot::READ | Prot::WRITE };
            let at = space.mmap(VirtAddr::new(0), PS, prot, flags, None, 0).unwrap();
            expected -= PS;
            assert_eq!(at.as_u64(), expected);
        }
        // A hole above the last one is found again once it opens.
        space.munmap(VirtAddr::new(DEFAULT_MMAP_BASE.as_u64() - 10 * PS), PS).unwrap();
        let at = space.mmap(VirtAddr::new(0), PS, Prot::READ, flags, None, 0).unwrap();
        assert_eq!(at.as_u64(), DEFAULT_MMAP_BASE.as_u64() - 10 * PS);
    });
}
