//! The arguments of the memory system calls (`<asm-generic/mman-common.h>`
//! values, which aarch64 uses) as types: [`Prot`], [`MapFlags`] with its
//! [`MapType`], [`MremapFlags`], [`Advice`], [`MsyncFlags`] and
//! [`MlockallFlags`].
//!
//! The kernel decodes a raw register into these once, keeping unknown bits
//! (`from_bits_retain`) where Linux tells them apart: `mprotect` refuses
//! unknown `PROT_` bits (EINVAL) while `mmap` ignores them; `MAP_SHARED`
//! ignores unknown flags while `MAP_SHARED_VALIDATE` refuses them
//! (EOPNOTSUPP). The memory subsystem applies those rules.

use bitflags::bitflags;

use crate::Errno;

bitflags! {
    /// `PROT_*`: the protection of `mmap` and `mprotect` (an `unsigned
    /// long` in both).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Prot: u64 {
        /// `PROT_READ`: may be read.
        const READ = 0x1;
        /// `PROT_WRITE`: may be written.
        const WRITE = 0x2;
        /// `PROT_EXEC`: may be executed.
        const EXEC = 0x4;
        /// Accepted and ignored (System V semaphores on the page).
        const SEM = 0x8;
        /// `mprotect` only: extend the change down to the start of a
        /// grows-down mapping.
        const GROWSDOWN = 0x0100_0000;
        /// `mprotect` only: extend the change up to the end of a grows-up
        /// mapping.
        const GROWSUP = 0x0200_0000;
    }
}

flags_from_register!(Prot: long);

impl Prot {
    /// `PROT_NONE`: no access.
    pub const NONE: Prot = Prot::empty();
    /// The bits that say what user code may do: read, write, execute.
    pub const ACCESS: Prot = Prot::READ.union(Prot::WRITE).union(Prot::EXEC);

    /// The access bits alone ([`Prot::ACCESS`]), as a mapping keeps them.
    pub const fn access(self) -> Prot {
        self.intersection(Prot::ACCESS)
    }

    /// Whether any access is allowed. Every mapped page is readable when
    /// any access bit is set (aarch64 has no write-only pages, and
    /// execute-only needs EPAN).
    pub const fn is_accessible(self) -> bool {
        self.intersects(Prot::ACCESS)
    }
}

bitflags! {
    /// `MAP_*`: the flags of `mmap` (an `unsigned long`). The low four bits
    /// are the mapping type ([`MapFlags::map_type`]), not independent flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MapFlags: u64 {
        /// `MAP_SHARED`: stores reach the object and every other mapping of it.
        const SHARED = 0x01;
        /// `MAP_PRIVATE`: stores are copied on write, private to this mapping.
        const PRIVATE = 0x02;
        /// `MAP_SHARED_VALIDATE`: shared, and unknown flags are refused (`EOPNOTSUPP`).
        const SHARED_VALIDATE = 0x03;
        /// `MAP_FIXED`: exactly at the address, replacing what is there.
        const FIXED = 0x10;
        /// `MAP_ANONYMOUS`: zero-filled memory, no file.
        const ANONYMOUS = 0x20;
        /// `MAP_GROWSDOWN`: a stack that grows down (not kept by Aspen).
        const GROWSDOWN = 0x0100;
        /// `MAP_DENYWRITE`: ignored, as by Linux.
        const DENYWRITE = 0x0800;
        /// `MAP_EXECUTABLE`: ignored, as by Linux.
        const EXECUTABLE = 0x1000;
        /// `MAP_LOCKED`: populated and locked, as after `mlock`.
        const LOCKED = 0x2000;
        /// `MAP_NORESERVE`: no swap reserved (nothing to reserve on Aspen).
        const NORESERVE = 0x4000;
        /// `MAP_POPULATE`: fault every page in before returning.
        const POPULATE = 0x8000;
        /// `MAP_NONBLOCK`: with `MAP_POPULATE`, populate nothing.
        const NONBLOCK = 0x1_0000;
        /// `MAP_STACK`: a thread stack (a hint).
        const STACK = 0x2_0000;
        /// `MAP_HUGETLB`: from the huge-page pool.
        const HUGETLB = 0x4_0000;
        /// `MAP_SYNC`: synchronous page faults for persistent memory (with `MAP_SHARED_VALIDATE`).
        const SYNC = 0x8_0000;
        /// `MAP_FIXED_NOREPLACE`: exactly at the address, `EEXIST` if anything is there.
        const FIXED_NOREPLACE = 0x10_0000;
        /// `MAP_UNINITIALIZED`: ignored (pages are always zeroed).
        const UNINITIALIZED = 0x400_0000;
    }
}

/// The mapping type in the low bits of [`MapFlags`] (`MAP_TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapType {
    /// `MAP_SHARED`: unknown flags are ignored.
    Shared,
    /// `MAP_PRIVATE`.
    Private,
    /// `MAP_SHARED_VALIDATE`: shared, and unknown flags are refused.
    SharedValidate,
}

flags_from_register!(MapFlags: long);

impl MapFlags {
    /// `MAP_TYPE`: the bits that hold the mapping type.
    pub const TYPE_MASK: u64 = 0x0f;
    /// The flags `MAP_SHARED_VALIDATE` accepts (Linux's `LEGACY_MAP_MASK`).
    pub const LEGACY: MapFlags = MapFlags::SHARED
        .union(MapFlags::PRIVATE)
        .union(MapFlags::FIXED)
        .union(MapFlags::ANONYMOUS)
        .union(MapFlags::DENYWRITE)
        .union(MapFlags::EXECUTABLE)
        .union(MapFlags::UNINITIALIZED)
        .union(MapFlags::GROWSDOWN)
        .union(MapFlags::LOCKED)
        .union(MapFlags::NORESERVE)
        .union(MapFlags::POPULATE)
        .union(MapFlags::NONBLOCK)
        .union(MapFlags::STACK)
        .union(MapFlags::HUGETLB);

    /// The mapping type, or `None` for a value Linux rejects (EINVAL).
    pub const fn map_type(self) -> Option<MapType> {
        match self.bits() & Self::TYPE_MASK {
            0x01 => Some(MapType::Shared),
            0x02 => Some(MapType::Private),
            0x03 => Some(MapType::SharedValidate),
            _ => None,
        }
    }

    /// Whether the mapping shares its pages (`MAP_SHARED` or
    /// `MAP_SHARED_VALIDATE`).
    pub const fn is_shared(self) -> bool {
        matches!(self.map_type(), Some(MapType::Shared | MapType::SharedValidate))
    }
}

bitflags! {
    /// `MREMAP_*`: the flags of `mremap` (an `unsigned long`). Unknown
    /// bits are kept by [`MremapFlags::from_register`] and refused
    /// (EINVAL) by the memory subsystem, as Linux does.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MremapFlags: u64 {
        /// `MREMAP_MAYMOVE`: the mapping may move to grow.
        const MAYMOVE = 1;
        /// `MREMAP_FIXED`: move to exactly `new_address`, replacing what
        /// is there (needs `MREMAP_MAYMOVE`).
        const FIXED = 2;
        /// `MREMAP_DONTUNMAP`: move, and leave the old range mapped and
        /// empty (needs `MREMAP_MAYMOVE` and an unchanged length).
        const DONTUNMAP = 4;
    }
}

flags_from_register!(MremapFlags: long);

macro_rules! advice {
    ($($variant:ident = $value:literal => $name:literal,)*) => {
        /// `MADV_*`: the advice of `madvise` (an `int`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum Advice {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant = $value,
            )*
        }

        impl Advice {
            /// The advice a system call's register holds: its low 32 bits
            /// (an `int`), `EINVAL` for advice Linux does not define.
            pub const fn from_register(raw: u64) -> Result<Advice, Errno> {
                match Advice::from_raw(raw as i32) {
                    Some(advice) => Ok(advice),
                    None => Err(Errno::EINVAL),
                }
            }

            /// The advice numbered `value`, if Linux defines it.
            pub const fn from_raw(value: i32) -> Option<Advice> {
                match value {
                    $($value => Some(Advice::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

advice! {
    Normal = 0 => "MADV_NORMAL",
    Random = 1 => "MADV_RANDOM",
    Sequential = 2 => "MADV_SEQUENTIAL",
    WillNeed = 3 => "MADV_WILLNEED",
    DontNeed = 4 => "MADV_DONTNEED",
    Free = 8 => "MADV_FREE",
    Remove = 9 => "MADV_REMOVE",
    DontFork = 10 => "MADV_DONTFORK",
    DoFork = 11 => "MADV_DOFORK",
    Mergeable = 12 => "MADV_MERGEABLE",
    Unmergeable = 13 => "MADV_UNMERGEABLE",
    HugePage = 14 => "MADV_HUGEPAGE",
    NoHugePage = 15 => "MADV_NOHUGEPAGE",
    DontDump = 16 => "MADV_DONTDUMP",
    DoDump = 17 => "MADV_DODUMP",
    WipeOnFork = 18 => "MADV_WIPEONFORK",
    KeepOnFork = 19 => "MADV_KEEPONFORK",
    Cold = 20 => "MADV_COLD",
    PageOut = 21 => "MADV_PAGEOUT",
    PopulateRead = 22 => "MADV_POPULATE_READ",
    PopulateWrite = 23 => "MADV_POPULATE_WRITE",
    DontNeedLocked = 24 => "MADV_DONTNEED_LOCKED",
    Collapse = 25 => "MADV_COLLAPSE",
    HwPoison = 100 => "MADV_HWPOISON",
    SoftOffline = 101 => "MADV_SOFT_OFFLINE",
}

bitflags! {
    /// `MS_*`: the flags of `msync` (an `int`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MsyncFlags: u32 {
        /// `MS_ASYNC`: schedule the write-back.
        const ASYNC = 1;
        /// `MS_INVALIDATE`: drop cached copies (checks only on Aspen).
        const INVALIDATE = 2;
        /// `MS_SYNC`: write back and wait for it.
        const SYNC = 4;
    }
}

flags_from_register!(MsyncFlags: int);

bitflags! {
    /// `MCL_*`: the flags of `mlockall` (an `int`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MlockallFlags: u32 {
        /// `MCL_CURRENT`: lock what is mapped now.
        const CURRENT = 1;
        /// `MCL_FUTURE`: lock what is mapped from now on.
        const FUTURE = 2;
        /// `MCL_ONFAULT`: lock pages as they fault in, not at once.
        const ONFAULT = 4;
    }
}

flags_from_register!(MlockallFlags: int);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_linux_ones() {
        assert_eq!(Prot::ACCESS.bits(), 7);
        assert_eq!((Prot::GROWSDOWN | Prot::GROWSUP).bits(), 0x0300_0000);
        assert_eq!(MapFlags::FIXED_NOREPLACE.bits(), 0x10_0000);
        assert_eq!(MapFlags::LEGACY.bits(), 0x0407_f933);
        assert_eq!(Advice::DontNeed as i32, 4);
        assert_eq!(Advice::from_raw(25), Some(Advice::Collapse));
        assert_eq!(Advice::from_raw(7), None);
        assert_eq!(Advice::from_register(99), Err(Errno::EINVAL));
        assert_eq!(Advice::from_register(0x1_0000_0004), Ok(Advice::DontNeed));
        assert_eq!(MsyncFlags::all().bits(), 7);
        assert_eq!(MlockallFlags::all().bits(), 7);
        assert_eq!(MremapFlags::all().bits(), 7);
    }

    #[test]
    fn the_mapping_type_is_a_value_not_flags() {
        let shared = MapFlags::SHARED | MapFlags::ANONYMOUS;
        assert_eq!(shared.map_type(), Some(MapType::Shared));
        assert_eq!(MapFlags::SHARED_VALIDATE.map_type(), Some(MapType::SharedValidate));
        assert!(MapFlags::SHARED_VALIDATE.is_shared());
        assert!(!MapFlags::PRIVATE.is_shared());
        assert_eq!(MapFlags::from_bits_retain(0xf).map_type(), None);
        assert_eq!(MapFlags::ANONYMOUS.map_type(), None);
    }

    #[test]
    fn unknown_bits_survive_a_retaining_decode() {
        let raw = 0x1_0000_0000 | MapFlags::PRIVATE.bits();
        assert_eq!(MapFlags::from_bits_retain(raw).bits(), raw);
        assert_eq!(MapFlags::from_bits(raw), None);
        assert_eq!(Prot::from_bits_retain(0xf0 | 3).access(), Prot::READ | Prot::WRITE);
        assert!(!Prot::SEM.is_accessible());
        assert_eq!(MsyncFlags::from_register(0x1_0000_0004), MsyncFlags::SYNC);
        assert_eq!(MlockallFlags::from_register(8).bits(), 8);
        let remap = MremapFlags::from_register(0x1_0000_0001);
        assert_eq!(remap.bits(), 0x1_0000_0001);
        assert!(!MremapFlags::all().contains(remap));
    }
}
