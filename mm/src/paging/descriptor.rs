//! VMSAv8-64 stage-1 descriptors for the 4 KiB granule (ARM ARM D8.3), the
//! memory types Aspen programs into `MAIR_EL1`, the high-level page
//! attributes, and the rules for changing a live descriptor (D8.17).
//!
//! Descriptor layout used here (bits not listed are always written as 0:
//! NS, DBM, the contiguous hint, software bits, and the table descriptors'
//! APTable/XNTable/PXNTable/NSTable):
//!
//! | bits    | table (L0-L2)      | block (L1, L2) / page (L3)              |
//! |---------|--------------------|-----------------------------------------|
//! | 0       | valid              | valid                                   |
//! | 1       | 1 = table          | 0 = block (L1/L2), 1 = page (L3)        |
//! | 4:2     |                    | AttrIndx (MAIR index)                   |
//! | 7:6     |                    | AP[2:1]                                 |
//! | 9:8     |                    | SH                                      |
//! | 10      |                    | AF                                      |
//! | 11      |                    | nG                                      |
//! | 47:12   | next-level table   | output address (47:30 L1, 47:21 L2)     |
//! | 53      |                    | PXN                                     |
//! | 54      |                    | UXN                                     |

use bitflags::bitflags;

use super::{Level, PageSize};
use crate::addr::PhysAddr;

bitflags! {
    /// Single bits and fields of a descriptor.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct DescFlags: u64 {
        /// Valid: clear, the entry is a translation fault at its level.
        const VALID = 1 << 0;
        /// Table descriptor at L0-L2, page descriptor at L3; clear for a block.
        const TABLE_OR_PAGE = 1 << 1;
        /// AttrIndx[2:0], the `MAIR_EL1` attribute index.
        const ATTR_INDX = 0b111 << 2;
        /// NS: output address in the Non-secure space. Only meaningful in
        /// Secure state; Aspen runs Non-secure and writes it as 0.
        const NS = 1 << 5;
        /// AP[1]: EL0 may access.
        const AP_EL0 = 1 << 6;
        /// AP[2]: read-only at every exception level.
        const AP_RO = 1 << 7;
        /// SH[1:0]; `SH_INNER` is the whole field set.
        const SH = 0b11 << 8;
        /// SH = 0b11: Inner Shareable, as Normal memory is written.
        const SH_INNER = 0b11 << 8;
        /// Access flag. Cortex-A72 cannot set it in hardware, so every
        /// mapping is written with it set to avoid an access-flag fault.
        const AF = 1 << 10;
        /// Not global: the entry is cached tagged with the current ASID.
        const NG = 1 << 11;
        /// Dirty Bit Modifier (FEAT_HAFDBS): lets hardware clear AP[2] on
        /// the first write. Not on Cortex-A72; always written as 0.
        const DBM = 1 << 51;
        /// Contiguous hint: one of 16 adjacent entries mapping one aligned
        /// range, cacheable as a single TLB entry. Always written as 0.
        const CONTIGUOUS = 1 << 52;
        /// PXN: EL1 may not fetch instructions from the page.
        const PXN = 1 << 53;
        /// UXN: EL0 may not fetch instructions from the page.
        const UXN = 1 << 54;
    }
}

/// Bits 47:12: output address of a page, or address of the next table.
pub const OUTPUT_ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// Bits that may change on a live leaf without break-before-make: the
/// access permissions and execute-never bits.
const PERMISSION_BITS: DescFlags =
    DescFlags::AP_EL0.union(DescFlags::AP_RO).union(DescFlags::PXN).union(DescFlags::UXN);

/// The memory types Aspen uses; the discriminant is the `MAIR_EL1` index
/// written into AttrIndx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MemoryType {
    /// Normal, inner and outer write-back, read- and write-allocate,
    /// inner shareable: RAM.
    Normal = 0,
    /// Device-nGnRE: MMIO windows. Never executable.
    Device = 1,
    /// Normal, inner and outer non-cacheable: buffers shared with
    /// non-coherent DMA masters.
    NormalNonCacheable = 2,
}

impl MemoryType {
    /// The type an AttrIndx value selects under [`MAIR_EL1`]. Indices 3-7
    /// hold attribute 0x00 (Device-nGnRnE) and Aspen never writes them, so
    /// they read back as `Device`, the closest and most restrictive type.
    pub const fn from_attr_index(index: u8) -> Self {
        match index {
            0 => Self::Normal,
            2 => Self::NormalNonCacheable,
            _ => Self::Device,
        }
    }

    /// The AttrIndx value (the `MAIR_EL1` attribute index) that selects
    /// this type.
    pub const fn attr_index(self) -> u8 {
        self as u8
    }

    /// Shareability written for the type: inner shareable for Normal memory.
    /// Device and non-cacheable memory are always outer shareable whatever
    /// SH says; Device entries are written with SH = 0.
    const fn shareability(self) -> DescFlags {
        match self {
            Self::Device => DescFlags::empty(),
            Self::Normal | Self::NormalNonCacheable => DescFlags::SH_INNER,
        }
    }
}

/// The value the kernel programs into `MAIR_EL1` so that [`MemoryType`]
/// indices mean what they say: Attr0 = 0xFF (Normal WB RA/WA, inner and
/// outer), Attr1 = 0x04 (Device-nGnRE), Attr2 = 0x44 (Normal non-cacheable),
/// Attr3-7 = 0x00 (Device-nGnRnE, unused). The kernel's boot code takes it
/// from here.
pub const MAIR_EL1: u64 = 0xff | (0x04 << 8) | (0x44 << 16);

bitflags! {
    /// What the owning exception level may do with a page.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Access: u8 {
        /// Loads. Every mapped page has it (see [`AttrError::NotReadable`]).
        const READ = 1 << 0;
        /// Stores: AP[2] clear.
        const WRITE = 1 << 1;
        /// Instruction fetch: PXN clear on a kernel page, UXN clear on a
        /// user page.
        const EXECUTE = 1 << 2;
    }
}

/// Which exception level owns a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Privilege {
    /// EL1 only. Always UXN; EL0 gets no access.
    Kernel,
    /// EL0 (and EL1, which may read and write it). Always PXN.
    User,
}

/// Attribute combinations the hardware cannot express or Aspen forbids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrError {
    /// W^X: a page is never writable and executable at once.
    WriteAndExecute,
    /// Every mapped page is readable: AP cannot express write-only, and an
    /// execute-only user page would leave it writable by EL1.
    NotReadable,
    /// Instruction fetch from Device memory is forbidden (speculative
    /// fetches could touch registers).
    ExecutableDevice,
    /// User pages are non-global so that they are tagged with their
    /// address space's ASID.
    GlobalUser,
}

/// The attributes of a mapping, independent of the descriptor encoding.
/// Only valid combinations can be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageAttrs {
    access: Access,
    privilege: Privilege,
    global: bool,
    memory: MemoryType,
}

impl PageAttrs {
    /// Kernel RAM, read-write, never executable (data, bss, heap, linear map).
    pub const KERNEL_RW: Self = Self::raw(Access::READ.union(Access::WRITE), Privilege::Kernel, MemoryType::Normal);
    /// Kernel RAM, read-only (rodata).
    pub const KERNEL_RO: Self = Self::raw(Access::READ, Privilege::Kernel, MemoryType::Normal);
    /// Kernel RAM, read and execute (text).
    pub const KERNEL_RX: Self = Self::raw(Access::READ.union(Access::EXECUTE), Privilege::Kernel, MemoryType::Normal);
    /// Kernel MMIO window.
    pub const KERNEL_DEVICE: Self = Self::raw(Access::READ.union(Access::WRITE), Privilege::Kernel, MemoryType::Device);
    /// User RAM, read-write.
    pub const USER_RW: Self = Self::raw(Access::READ.union(Access::WRITE), Privilege::User, MemoryType::Normal);
    /// User RAM, read-only.
    pub const USER_RO: Self = Self::raw(Access::READ, Privilege::User, MemoryType::Normal);
    /// User RAM, read and execute.
    pub const USER_RX: Self = Self::raw(Access::READ.union(Access::EXECUTE), Privilege::User, MemoryType::Normal);
    /// User RAM, read, write and execute: the one writable and executable
    /// combination, for user pages that flip between writes and
    /// instruction fetches too often to keep W^X (see `aspace`). It exists
    /// only as this constant: [`Self::new`] and [`Self::with_access`]
    /// refuse write with execute for every page, so no kernel page can be
    /// built writable and executable.
    pub const USER_RWX: Self = Self::raw(Access::all(), Privilege::User, MemoryType::Normal);

    /// Kernel pages are global, user pages not.
    const fn raw(access: Access, privilege: Privilege, memory: MemoryType) -> Self {
        Self { access, privilege, global: matches!(privilege, Privilege::Kernel), memory }
    }

    /// Checks the combination. Kernel pages come out global (use
    /// [`Self::non_global`] to change that); user pages never are.
    pub const fn new(privilege: Privilege, access: Access, memory: MemoryType) -> Result<Self, AttrError> {
        if access.contains(Access::WRITE.union(Access::EXECUTE)) {
            return Err(AttrError::WriteAndExecute);
        }
        if !access.contains(Access::READ) {
            return Err(AttrError::NotReadable);
        }
        if access.contains(Access::EXECUTE) && matches!(memory, MemoryType::Device) {
            return Err(AttrError::ExecutableDevice);
        }
        Ok(Self::raw(access, privilege, memory))
    }

    /// The same attributes with a different access, checked again (for
    /// mprotect).
    pub const fn with_access(self, access: Access) -> Result<Self, AttrError> {
        match Self::new(self.privilege, access, self.memory) {
            Ok(attrs) => Ok(Self { global: self.global, ..attrs }),
            Err(e) => Err(e),
        }
    }

    /// The same attributes, non-global: kernel pages tagged with the ASID
    /// (for example an identity map used by one address space only). User
    /// pages are non-global already.
    pub const fn non_global(self) -> Self {
        Self { global: false, ..self }
    }

    /// Global pages match every ASID. Refused for user pages.
    pub const fn global(self) -> Result<Self, AttrError> {
        match self.privilege {
            Privilege::User => Err(AttrError::GlobalUser),
            Privilege::Kernel => Ok(Self { global: true, ..self }),
        }
    }

    /// What the owning exception level may do with the page.
    pub const fn access(&self) -> Access {
        self.access
    }

    /// Which exception level owns the page.
    pub const fn privilege(&self) -> Privilege {
        self.privilege
    }

    /// Whether the page matches every ASID (nG clear).
    pub const fn is_global(&self) -> bool {
        self.global
    }

    /// The memory type, written as AttrIndx.
    pub const fn memory_type(&self) -> MemoryType {
        self.memory
    }

    /// Every descriptor bit these attributes decide (all but the type bits
    /// and the output address).
    pub const fn descriptor_bits(&self) -> DescFlags {
        let mut bits = DescFlags::AF.union(self.memory.shareability());
        bits = bits.union(DescFlags::from_bits_retain((self.memory.attr_index() as u64) << 2));
        if !self.access.contains(Access::WRITE) {
            bits = bits.union(DescFlags::AP_RO);
        }
        if !self.global {
            bits = bits.union(DescFlags::NG);
        }
        let executable = self.access.contains(Access::EXECUTE);
        match self.privilege {
            Privilege::Kernel => {
                bits = bits.union(DescFlags::UXN);
                if !executable {
                    bits = bits.union(DescFlags::PXN);
                }
            }
            Privilege::User => {
                bits = bits.union(DescFlags::AP_EL0).union(DescFlags::PXN);
                if !executable {
                    bits = bits.union(DescFlags::UXN);
                }
            }
        }
        bits
    }

    /// Reads the attributes back from a leaf descriptor. Exact for every
    /// descriptor [`Self::descriptor_bits`] produces.
    pub const fn from_descriptor(desc: Descriptor) -> Self {
        let flags = DescFlags::from_bits_retain(desc.0);
        let privilege = if flags.contains(DescFlags::AP_EL0) { Privilege::User } else { Privilege::Kernel };
        let mut access = Access::READ;
        if !flags.contains(DescFlags::AP_RO) {
            access = access.union(Access::WRITE);
        }
        let xn = match privilege {
            Privilege::Kernel => DescFlags::PXN,
            Privilege::User => DescFlags::UXN,
        };
        if !flags.contains(xn) {
            access = access.union(Access::EXECUTE);
        }
        Self {
            access,
            privilege,
            global: !flags.contains(DescFlags::NG),
            memory: MemoryType::from_attr_index(((desc.0 >> 2) & 0b111) as u8),
        }
    }
}

/// What a descriptor is, given its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescKind {
    /// Translation fault (includes the encodings reserved at L0 and L3).
    Invalid,
    /// Points at the next-level table.
    Table(PhysAddr),
    /// A block (L1, L2) or page (L3).
    Leaf {
        /// Output address, aligned down to `size`.
        pa: PhysAddr,
        /// Page or block size, given by the level.
        size: PageSize,
        /// The attributes decoded from the descriptor's bits.
        attrs: PageAttrs,
    },
}

/// One raw 64-bit translation-table entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Descriptor(u64);

impl Descriptor {
    /// All zeros: a translation fault, what a fresh table holds.
    pub const INVALID: Self = Self(0);

    /// The entry whose raw value is `bits`, as read from a table.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw value, as written into a table.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether the valid bit (bit 0) is set. A valid entry can still fault:
    /// `bits[1:0] = 0b01` is reserved at L0 and L3 (see [`Self::kind`]).
    pub const fn is_valid(self) -> bool {
        self.0 & DescFlags::VALID.bits() != 0
    }

    /// A table descriptor; `table` is page aligned (the table code only
    /// passes frames from the allocator).
    pub const fn table(table: PhysAddr) -> Self {
        Self((table.as_u64() & OUTPUT_ADDR_MASK) | DescFlags::VALID.bits() | DescFlags::TABLE_OR_PAGE.bits())
    }

    /// A page (4 KiB) or block (2 MiB, 1 GiB) descriptor. `pa` is aligned to
    /// `size` (checked by the table code).
    pub const fn leaf(pa: PhysAddr, size: PageSize, attrs: PageAttrs) -> Self {
        let kind = match size {
            PageSize::Size4K => DescFlags::VALID.union(DescFlags::TABLE_OR_PAGE),
            PageSize::Size2M | PageSize::Size1G => DescFlags::VALID,
        };
        Self((pa.as_u64() & OUTPUT_ADDR_MASK & !(size.bytes() - 1)) | kind.bits() | attrs.descriptor_bits().bits())
    }

    /// Whether the entry is a leaf at `level`: a page at L3, a block at
    /// L1 or L2 (the same test as [`Self::kind`], without decoding).
    #[inline]
    pub const fn is_leaf(self, level: Level) -> bool {
        match self.0 & 0b11 {
            0b11 => !level.has_tables(),
            0b01 => level.has_tables() && level.get() > 0,
            _ => false,
        }
    }

    /// Whether the entry points at a next-level table at `level`.
    #[inline]
    pub const fn is_table(self, level: Level) -> bool {
        self.0 & 0b11 == 0b11 && level.has_tables()
    }

    /// The address bits 47:12: the next table of a table entry, the
    /// output address of a page (of a block: the caller aligns it down).
    #[inline]
    pub const fn address(self) -> PhysAddr {
        PhysAddr::new(self.0 & OUTPUT_ADDR_MASK)
    }

    /// Whether a leaf matches every ASID (nG clear).
    #[inline]
    pub const fn is_global(self) -> bool {
        self.0 & DescFlags::NG.bits() == 0
    }

    /// Whether a leaf lets its owner write (`AP[2]` clear).
    #[inline]
    pub const fn is_writable(self) -> bool {
        self.0 & DescFlags::AP_RO.bits() == 0
    }

    /// The same leaf, read-only (`AP[2]` set): a permission-only change.
    #[inline]
    pub const fn write_protected(self) -> Self {
        Self(self.0 | DescFlags::AP_RO.bits())
    }

    /// The same leaf with the access permissions of `attrs` (AP, PXN,
    /// UXN); every other bit is kept, so this is a permission-only change
    /// when `attrs` has the leaf's memory type and globalness.
    #[inline]
    pub const fn with_permissions(self, attrs: PageAttrs) -> Self {
        let mask = PERMISSION_BITS.bits();
        Self((self.0 & !mask) | (attrs.descriptor_bits().bits() & mask))
    }

    /// The same leaf with the permission bits (AP, PXN, UXN) of `model`:
    /// [`Self::with_permissions`] with the attributes encoded once, for
    /// passes that give many leaves the same permissions.
    #[inline]
    pub const fn with_permissions_of(self, model: Self) -> Self {
        let mask = PERMISSION_BITS.bits();
        Self((self.0 & !mask) | (model.0 & mask))
    }

    /// Whether `other` differs from `self` in nothing but the permission
    /// bits (AP, PXN, UXN), so one may replace the other in place.
    #[inline]
    pub const fn differs_in_permissions_only(self, other: Self) -> bool {
        (self.0 ^ other.0) & !PERMISSION_BITS.bits() == 0
    }

    /// The entry's meaning at `level`.
    #[inline]
    pub const fn kind(self, level: Level) -> DescKind {
        let addr = PhysAddr::new(self.0 & OUTPUT_ADDR_MASK);
        match (self.0 & 0b11, level.leaf_size()) {
            (0b11, _) if level.has_tables() => DescKind::Table(addr),
            (0b11, Some(PageSize::Size4K)) => {
                DescKind::Leaf { pa: addr, size: PageSize::Size4K, attrs: PageAttrs::from_descriptor(self) }
            }
            // A block is a leaf only where blocks exist (L1, L2).
            (0b01, Some(size)) if level.has_tables() => DescKind::Leaf {
                pa: PhysAddr::new(addr.as_u64() & !(size.bytes() - 1)),
                size,
                attrs: PageAttrs::from_descriptor(self),
            },
            _ => DescKind::Invalid,
        }
    }
}

impl core::fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Descriptor({:#018x})", self.0)
    }
}

/// How a change to a live descriptor has to be carried out (ARM ARM D8.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing to write.
    Unchanged,
    /// Invalid to valid: write it; the TLB never caches a faulting entry,
    /// so no invalidation is needed.
    Install,
    /// Valid to invalid: write it, then invalidate.
    Remove,
    /// Only the permission bits (AP, PXN, UXN) of a leaf change: write in
    /// place, then invalidate.
    InPlace,
    /// Output address, memory type, shareability, nG, block size (leaf to
    /// table or back) or another bit changes: write invalid, invalidate and
    /// wait, then write the new entry.
    BreakBeforeMake,
}

impl Change {
    /// Classifies replacing `old` with `new` at `level`. A change of nG is
    /// treated as break-before-make (Linux allows only global to non-global
    /// in place; Aspen never needs either).
    pub const fn classify(old: Descriptor, new: Descriptor, level: Level) -> Self {
        if old.0 == new.0 {
            return Self::Unchanged;
        }
        match (old.kind(level), new.kind(level)) {
            (DescKind::Invalid, DescKind::Invalid) => Self::Unchanged,
            (DescKind::Invalid, _) => Self::Install,
            (_, DescKind::Invalid) => Self::Remove,
            (DescKind::Leaf { .. }, DescKind::Leaf { .. }) => {
                if (old.0 ^ new.0) & !PERMISSION_BITS.bits() == 0 {
                    Self::InPlace
                } else {
                    Self::BreakBeforeMake
                }
            }
            _ => Self::BreakBeforeMake,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PA: PhysAddr = PhysAddr::new(0x4012_3000);

    fn l3() -> Level {
        Level::new(3).unwrap()
    }

    #[test]
    fn mair_matches_memory_types() {
        assert_eq!(MAIR_EL1, 0x0000_0000_0044_04ff);
        for ty in [MemoryType::Normal, MemoryType::Device, MemoryType::NormalNonCacheable] {
            let attr = (MAIR_EL1 >> (8 * ty.attr_index())) & 0xff;
            let expected = match ty {
                MemoryType::Normal => 0xff,
                MemoryType::Device => 0x04,
                MemoryType::NormalNonCacheable => 0x44,
            };
            assert_eq!(attr, expected, "{ty:?}");
            assert_eq!(MemoryType::from_attr_index(ty.attr_index()), ty);
        }
    }

    #[test]
    fn user_rw_page_bits() {
        // valid | page | AttrIndx 0 | AP = 01 | SH = 11 | AF | nG | PXN | UXN
        let d = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::USER_RW);
        let expected = 0b11 | (0b01 << 6) | (0b11 << 8) | (1 << 10) | (1 << 11) | (1 << 53) | (1 << 54) | PA.as_u64();
        assert_eq!(d.bits(), expected);
        assert_eq!(d.bits(), 0x0060_0000_4012_3f43);
    }

    #[test]
    fn user_rx_and_ro_page_bits() {
        // AP = 11 (read-only at EL0 and EL1), executable at EL0 only.
        let rx = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::USER_RX);
        assert_eq!(rx.bits(), 0x0020_0000_4012_3fc3);
        let ro = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::USER_RO);
        assert_eq!(ro.bits(), 0x0060_0000_4012_3fc3);
    }

    #[test]
    fn kernel_page_bits() {
        // Text: AP = 10, global, UXN, PXN clear.
        let text = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::KERNEL_RX);
        assert_eq!(text.bits(), 0x0040_0000_4012_3783);
        // Data: AP = 00, PXN | UXN.
        let data = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::KERNEL_RW);
        assert_eq!(data.bits(), 0x0060_0000_4012_3703);
        let rodata = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::KERNEL_RO);
        assert_eq!(rodata.bits(), 0x0060_0000_4012_3783);
    }

    #[test]
    fn device_block_bits() {
        // 2 MiB block: bits[1:0] = 01, AttrIndx 1, SH 00, AF, PXN | UXN.
        let pa = PhysAddr::new(0xfe20_0000);
        let d = Descriptor::leaf(pa, PageSize::Size2M, PageAttrs::KERNEL_DEVICE);
        assert_eq!(d.bits(), 0x0060_0000_fe20_0405);
        let l2 = Level::new(2).unwrap();
        assert_eq!(d.kind(l2), DescKind::Leaf { pa, size: PageSize::Size2M, attrs: PageAttrs::KERNEL_DEVICE });
        // The same bits are reserved (a fault) at L3.
        assert_eq!(d.kind(l3()), DescKind::Invalid);
    }

    #[test]
    fn gib_block_and_table() {
        let l0 = Level::new(0).unwrap();
        let l1 = Level::new(1).unwrap();
        let pa = PhysAddr::new(0x4000_0000);
        let block = Descriptor::leaf(pa, PageSize::Size1G, PageAttrs::KERNEL_RW);
        assert_eq!(block.bits() & 0b11, 0b01);
        assert!(matches!(block.kind(l1), DescKind::Leaf { size: PageSize::Size1G, .. }));
        // No blocks at L0 with the 4 KiB granule.
        assert_eq!(block.kind(l0), DescKind::Invalid);
        let table = Descriptor::table(PA);
        assert_eq!(table.bits(), 0x4012_3003);
        assert_eq!(table.kind(l0), DescKind::Table(PA));
        // A table encoding at L3 is a page.
        assert!(matches!(table.kind(l3()), DescKind::Leaf { .. }));
    }

    #[test]
    fn attrs_round_trip() {
        let all = [
            PageAttrs::KERNEL_RW,
            PageAttrs::KERNEL_RO,
            PageAttrs::KERNEL_RX,
            PageAttrs::KERNEL_DEVICE,
            PageAttrs::KERNEL_RW.non_global(),
            PageAttrs::USER_RW,
            PageAttrs::USER_RO,
            PageAttrs::USER_RX,
            PageAttrs::USER_RWX,
            PageAttrs::new(Privilege::Kernel, Access::READ | Access::WRITE, MemoryType::NormalNonCacheable).unwrap(),
        ];
        for attrs in all {
            for size in [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G] {
                let d = Descriptor::leaf(PhysAddr::new(0x8000_0000), size, attrs);
                assert_eq!(d.kind(size.level()), DescKind::Leaf { pa: PhysAddr::new(0x8000_0000), size, attrs });
            }
        }
    }

    #[test]
    fn attribute_rules() {
        use AttrError::*;
        let rwx = Access::READ | Access::WRITE | Access::EXECUTE;
        assert_eq!(PageAttrs::new(Privilege::User, rwx, MemoryType::Normal), Err(WriteAndExecute));
        assert_eq!(PageAttrs::new(Privilege::Kernel, Access::WRITE, MemoryType::Normal), Err(NotReadable));
        assert_eq!(PageAttrs::new(Privilege::User, Access::EXECUTE, MemoryType::Normal), Err(NotReadable));
        assert_eq!(
            PageAttrs::new(Privilege::Kernel, Access::READ | Access::EXECUTE, MemoryType::Device),
            Err(ExecutableDevice)
        );
        assert_eq!(PageAttrs::USER_RW.global(), Err(GlobalUser));
        assert!(!PageAttrs::USER_RW.is_global());
        assert!(PageAttrs::KERNEL_RW.is_global());
        assert_eq!(PageAttrs::USER_RX.with_access(rwx), Err(WriteAndExecute));
        let nx = PageAttrs::KERNEL_RW.non_global().with_access(Access::READ).unwrap();
        assert!(!nx.is_global());
        // Kernel pages are always UXN, user pages always PXN.
        let k = PageAttrs::KERNEL_RX.descriptor_bits();
        assert!(k.contains(DescFlags::UXN) && !k.contains(DescFlags::PXN));
        let u = PageAttrs::USER_RX.descriptor_bits();
        assert!(u.contains(DescFlags::PXN) && !u.contains(DescFlags::UXN));
    }

    #[test]
    fn write_with_execute_exists_for_user_pages_only() {
        use AttrError::WriteAndExecute;
        let rwx = Access::READ | Access::WRITE | Access::EXECUTE;
        // The one writable and executable combination: EL0 may write and
        // fetch, EL1 may never fetch (PXN), tagged with the ASID.
        let bits = PageAttrs::USER_RWX.descriptor_bits();
        assert!(bits.contains(DescFlags::AP_EL0 | DescFlags::PXN | DescFlags::NG));
        assert!(!bits.intersects(DescFlags::AP_RO | DescFlags::UXN));
        assert_eq!(PageAttrs::USER_RWX.access(), rwx);
        // Nothing else reaches it: no kernel page, global or not, and no
        // path through the checked constructors.
        for memory in [MemoryType::Normal, MemoryType::NormalNonCacheable] {
            assert_eq!(PageAttrs::new(Privilege::Kernel, rwx, memory), Err(WriteAndExecute));
            assert_eq!(PageAttrs::new(Privilege::User, rwx, memory), Err(WriteAndExecute));
        }
        for attrs in [PageAttrs::KERNEL_RW, PageAttrs::KERNEL_RX, PageAttrs::KERNEL_RX.non_global()] {
            assert_eq!(attrs.with_access(rwx), Err(WriteAndExecute));
        }
        assert_eq!(PageAttrs::USER_RWX.with_access(rwx), Err(WriteAndExecute));
        assert_eq!(PageAttrs::USER_RWX.global(), Err(AttrError::GlobalUser));
    }

    #[test]
    fn classify_changes() {
        let rw = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::USER_RW);
        let ro = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::USER_RO);
        let rx = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::USER_RX);
        let moved = Descriptor::leaf(PA + 0x1000, PageSize::Size4K, PageAttrs::USER_RW);
        let nc = Descriptor::leaf(
            PA,
            PageSize::Size4K,
            PageAttrs::new(Privilege::User, Access::READ | Access::WRITE, MemoryType::NormalNonCacheable).unwrap(),
        );
        let kernel = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::KERNEL_RW.non_global());
        let global = Descriptor::leaf(PA, PageSize::Size4K, PageAttrs::KERNEL_RW);
        let l3 = l3();
        assert_eq!(Change::classify(rw, rw, l3), Change::Unchanged);
        assert_eq!(Change::classify(Descriptor::INVALID, rw, l3), Change::Install);
        assert_eq!(Change::classify(rw, Descriptor::INVALID, l3), Change::Remove);
        assert_eq!(Change::classify(rw, ro, l3), Change::InPlace);
        assert_eq!(Change::classify(ro, rx, l3), Change::InPlace);
        assert_eq!(Change::classify(rw, kernel, l3), Change::InPlace);
        assert_eq!(Change::classify(rw, moved, l3), Change::BreakBeforeMake);
        assert_eq!(Change::classify(rw, nc, l3), Change::BreakBeforeMake);
        assert_eq!(Change::classify(kernel, global, l3), Change::BreakBeforeMake);

        // Block size: a 2 MiB block replaced by a table is break-before-make.
        let l2 = Level::new(2).unwrap();
        let block = Descriptor::leaf(PhysAddr::new(0x4000_0000), PageSize::Size2M, PageAttrs::KERNEL_RW);
        let table = Descriptor::table(PA);
        assert_eq!(Change::classify(block, table, l2), Change::BreakBeforeMake);
        assert_eq!(Change::classify(table, Descriptor::table(PA + 0x1000), l2), Change::BreakBeforeMake);
        let block_ro = Descriptor::leaf(PhysAddr::new(0x4000_0000), PageSize::Size2M, PageAttrs::KERNEL_RO);
        assert_eq!(Change::classify(block, block_ro, l2), Change::InPlace);
    }
}
