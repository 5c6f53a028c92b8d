//! ARMv8-A translation tables: descriptors and map/unmap/protect/query.
//!
//! One [`PageTable`] is a four-level VMSAv8-64 stage-1 tree for the 4 KiB
//! granule and 48-bit virtual addresses, for either half of the address
//! space (TTBR0 for user address spaces, TTBR1 for the kernel). Table memory
//! comes from a [`FrameAllocator`](crate::frame::FrameAllocator) and is
//! reached through [`PhysMemory`]; TLB maintenance goes through
//! [`TlbOps`](crate::tlb::TlbOps), batched by an [`Editor`].
//!
//! - [`PageTable::map`] / [`PageTable::map_linear`] only fill invalid
//!   entries, which needs no TLB maintenance, and [`PageTable::query`]
//!   reads; they work on the table directly.
//! - Everything that changes or removes live entries over a range goes
//!   through an [`Editor`] ([`PageTable::edit`]): unmap, protect, the
//!   checked update [`Editor::set`], the permission pass [`Editor::update`]
//!   and break-before-make [`Editor::split`]. The editor issues one TLB
//!   batch and hands removed frames back only after it completed.
//! - One leaf at a time (a fault, populate) goes through a [`Cursor`]
//!   ([`PageTable::cursor`]): it walks from the root once, then queries,
//!   maps, re-protects or replaces (break-before-make) the leaf at its
//!   position with that leaf's own one-page invalidation, and moves along
//!   its range keeping the tables the walks share.
//! - Address spaces also use whole-range passes ([`PageTable::copy_into`]
//!   for fork, [`PageTable::destroy_at_once`] for teardown,
//!   [`PageTable::visit_leaves`]), which read each entry once on raw
//!   descriptors ([`Leaf`]).
//! - Long passes (an editor's unmap and update, fork's copy, the teardown)
//!   ask a [`Pause`] every [`PAUSE_SPACING`] entries whether to let other
//!   tasks run, and complete their TLB batch before they do.
//!
//! How the kernel uses it (a sketch; names outside `mm` are the kernel's):
//!
//! ```ignore
//! // Boot, MMU off: physical memory is reached at its own address.
//! let phys = unsafe { LinearMap::new(0) };
//! let mut kernel = PageTable::new(&phys, &FRAMES, VaHalf::Upper)?;
//! let lin = |r: PhysRange| VirtRange::new(LINEAR + r.start, LINEAR + r.end_exclusive);
//! kernel.map_linear(lin(text), text.start, PageAttrs::KERNEL_RX)?;
//! kernel.map_linear(lin(rodata), rodata.start, PageAttrs::KERNEL_RO)?;
//! kernel.map_linear(lin(data_bss), data_bss.start, PageAttrs::KERNEL_RW)?;
//! for piece in ram_without_image { // 1 GiB / 2 MiB blocks where aligned
//!     kernel.map_linear(lin(piece), piece.start, PageAttrs::KERNEL_RW)?;
//! }
//! for w in board.mmio {
//!     let r = w.range.expand_to_pages();
//!     kernel.map_linear(lin(r), r.start, PageAttrs::KERNEL_DEVICE)?;
//! }
//! // MAIR_EL1 = paging::MAIR_EL1; TTBR1 = kernel.root(); TTBR0 = an identity
//! // map of the image (a Lower table, destroyed once running high).
//! // Once running in the high half, edit through the linear map:
//! let kernel = unsafe { kernel.rebind_memory(&LINEAR_VIEW) };
//!
//! // A user address space: TTBR0 = root | ASID << 48.
//! let mut user = PageTable::new(&LINEAR_VIEW, &FRAMES, VaHalf::Lower)?;
//! user.cursor(&TLB, TlbScope::Asid(asid), pages)?.map(frame, PageAttrs::USER_RW)?; // a fault: no TLBI
//! user.edit(&TLB, TlbScope::Asid(asid), |m| drop_ref(m.pa)).unmap(range)?;
//! user.destroy(&TLB, TlbScope::Asid(asid), |m| drop_ref(m.pa)); // exit
//! ```

mod bulk;
mod cursor;
mod descriptor;
mod edit;
mod pause;
mod phys;
mod table;

#[cfg(test)]
mod tests;

pub use bulk::Leaf;
pub use cursor::Cursor;
pub use descriptor::{
    Access, AttrError, Change, DescFlags, DescKind, Descriptor, MemoryType, PageAttrs, Privilege, MAIR_EL1,
    OUTPUT_ADDR_MASK,
};
pub use edit::{Editor, EDIT_SPACING, GATHER_LEAVES, GATHER_TABLES};
pub use pause::{NoPause, Pause, PAUSE_SPACING, RELEASE_SPACING};
pub use phys::{copy_frame, zero_frame, LinearMap, PhysMemory};
pub use table::{PageTable, TableReserve};

use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SHIFT};
use crate::frame::AllocError;

/// Entries per table (4 KiB of 8-byte descriptors).
pub const ENTRIES: usize = 512;

/// Output addresses are 48 bits wide.
pub const PHYS_ADDR_LIMIT: u64 = 1 << 48;

/// A level of the walk: 0 (512 GiB per entry) to 3 (4 KiB pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(u8);

impl Level {
    /// L0, the root table that TTBR0 or TTBR1 points at.
    pub const ROOT: Self = Self(0);

    /// Level `level`, `None` above 3.
    pub const fn new(level: u8) -> Option<Self> {
        if level <= 3 {
            Some(Self(level))
        } else {
            None
        }
    }

    /// The level number, 0 to 3.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The level as an index into four per-level slots (masked, so the
    /// compiler sees it in bounds).
    #[inline]
    pub(crate) const fn slot(self) -> usize {
        (self.0 & 3) as usize
    }

    /// The level below, `None` at L3.
    pub const fn next(self) -> Option<Self> {
        Self::new(self.0 + 1)
    }

    /// Whether entries here may point at tables (L0-L2).
    pub const fn has_tables(self) -> bool {
        self.0 < 3
    }

    /// The leaf an entry at this level maps, `None` at L0 (no 512 GiB
    /// blocks with the 4 KiB granule).
    pub const fn leaf_size(self) -> Option<PageSize> {
        match self.0 {
            1 => Some(PageSize::Size1G),
            2 => Some(PageSize::Size2M),
            3 => Some(PageSize::Size4K),
            _ => None,
        }
    }

    /// log2 of the bytes one entry covers.
    pub const fn shift(self) -> u32 {
        PAGE_SHIFT + 9 * (3 - self.0 as u32)
    }

    /// Bytes one entry covers.
    pub const fn entry_size(self) -> u64 {
        1 << self.shift()
    }

    /// The entry translating `va` (VA bits 47:12, nine per level; the
    /// half-select bits 63:48 are not part of any index).
    pub const fn index(self, va: VirtAddr) -> usize {
        ((va.as_u64() >> self.shift()) & (ENTRIES as u64 - 1)) as usize
    }
}

/// The size of a leaf: a page or a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB page, mapped by an L3 entry.
    Size4K,
    /// 2 MiB block, mapped by an L2 entry.
    Size2M,
    /// 1 GiB block, mapped by an L1 entry.
    Size1G,
}

impl PageSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.level().entry_size()
    }

    /// The level whose entries map a leaf of this size.
    pub const fn level(self) -> Level {
        match self {
            Self::Size4K => Level(3),
            Self::Size2M => Level(2),
            Self::Size1G => Level(1),
        }
    }
}

/// Which half of the 64-bit address space a table translates (T0SZ =
/// T1SZ = 16: 256 TiB each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VaHalf {
    /// `0 .. 2^48`, through TTBR0: user address spaces, the boot identity map.
    Lower,
    /// `0xFFFF_0000_0000_0000 ..`, through TTBR1: the kernel.
    Upper,
}

impl VaHalf {
    /// The addresses a table of this half can map. The upper half's last
    /// page is left out: a half-open range cannot end at 2^64.
    pub const fn range(self) -> VirtRange {
        match self {
            Self::Lower => VirtRange::new(VirtAddr::new(0), VirtAddr::new(1 << 48)),
            Self::Upper => VirtRange::new(VirtAddr::new(0xffff_0000_0000_0000), VirtAddr::new(0xffff_ffff_ffff_f000)),
        }
    }

    /// The half `va` is in, `None` for a non-canonical address.
    pub const fn of(va: VirtAddr) -> Option<Self> {
        match va.as_u64() >> 48 {
            0 => Some(Self::Lower),
            0xffff => Some(Self::Upper),
            _ => None,
        }
    }
}

/// One leaf: `size` bytes at `va` translated to `pa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// Start of the leaf, aligned to `size`.
    pub va: VirtAddr,
    /// Output address of the leaf, aligned to `size`.
    pub pa: PhysAddr,
    /// Page or block size.
    pub size: PageSize,
    /// The leaf's attributes, decoded from its descriptor.
    pub attrs: PageAttrs,
}

impl Mapping {
    /// The virtual addresses the leaf covers: `va .. va + size`.
    pub const fn va_range(&self) -> VirtRange {
        VirtRange::new(self.va, VirtAddr::new(self.va.as_u64() + self.size.bytes()))
    }

    /// The physical address `va` maps to, if the leaf covers it.
    pub const fn translate(&self, va: VirtAddr) -> Option<PhysAddr> {
        if self.va_range().contains(va) {
            Some(PhysAddr::new(self.pa.as_u64() + (va.as_u64() - self.va.as_u64())))
        } else {
            None
        }
    }
}

/// Why a table operation was refused. A refused operation changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    /// A virtual address is not aligned to the page or block size needed.
    MisalignedVirt(VirtAddr),
    /// A physical address is not aligned to the page or block size needed.
    MisalignedPhys(PhysAddr),
    /// The virtual range is not inside the table's half.
    OutsideHalf(VirtRange),
    /// The physical range goes beyond 48 bits.
    PhysOutOfRange(PhysAddr),
    /// A valid entry already maps this address.
    AlreadyMapped(VirtAddr),
    /// Nothing maps this address.
    NotMapped(VirtAddr),
    /// The range covers only part of the block mapping this address; split
    /// the block first ([`Editor::split`]).
    PartialBlock(VirtAddr),
    /// The change needs break-before-make, which the checked path refuses.
    NeedsBreakBeforeMake(VirtAddr),
    /// The address is outside the range a [`Cursor`] was made for (or that
    /// range is empty).
    OutsideCursor(VirtAddr),
    /// No frame for a table page.
    OutOfMemory(AllocError),
}

impl From<AllocError> for PagingError {
    fn from(e: AllocError) -> Self {
        Self::OutOfMemory(e)
    }
}
