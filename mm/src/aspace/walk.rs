//! A read-only walk over the leaves of a translation table inside a range,
//! skipping whole empty subtrees: its cost follows the table pages, not the
//! size of the range. The statistics and the tests use it (fork, mprotect,
//! msync and teardown use the faster passes of [`crate::paging`]).

use crate::addr::{PhysAddr, VirtRange};
use crate::paging::{DescKind, Descriptor, Level, Mapping, PhysMemory, ENTRIES};

/// Calls `f` with every valid leaf of the tree at `root` that starts inside
/// `range`, in address order.
///
/// `root` must be the root of a live tree whose table pages `mem` covers,
/// and the tree must not lose table pages during the walk (`f` may change
/// leaf entries in place).
pub(crate) fn for_each_leaf<M: PhysMemory + ?Sized>(
    mem: &M,
    root: PhysAddr,
    range: VirtRange,
    f: &mut impl FnMut(Mapping),
) {
    walk(mem, root, Level::ROOT, range, f);
}

fn walk<M: PhysMemory + ?Sized>(mem: &M, table: PhysAddr, level: Level, range: VirtRange, f: &mut impl FnMut(Mapping)) {
    let size = level.entry_size();
    let mut va = range.start;
    while va < range.end_exclusive {
        let entry_start = va.align_down(size);
        let next = entry_start.checked_add(size).unwrap_or(range.end_exclusive).min(range.end_exclusive);
        let index = level.index(va);
        debug_assert!(index < ENTRIES);
        // SAFETY: `table` is a table page of the live tree (the caller's
        // promise for the root; table descriptors of that tree for the
        // others), so `mem` covers it; `index` is inside the page. Table
        // pages hold no Rust objects.
        let desc = Descriptor::from_bits(unsafe { mem.read_u64(table + index as u64 * 8) });
        match desc.kind(level) {
            DescKind::Invalid => {}
            DescKind::Table(child) => {
                if let Some(below) = level.next() {
                    walk(mem, child, below, VirtRange::new(va, next), f);
                }
            }
            DescKind::Leaf { pa, size: leaf_size, attrs } => {
                if entry_start >= range.start {
                    f(Mapping { va: entry_start, pa, size: leaf_size, attrs });
                }
            }
        }
        va = next;
    }
}

/// Leaves of the tree at `root` inside `range`.
pub(crate) fn count_leaves<M: PhysMemory + ?Sized>(mem: &M, root: PhysAddr, range: VirtRange) -> usize {
    let mut n = 0;
    for_each_leaf(mem, root, range, &mut |_| n += 1);
    n
}
