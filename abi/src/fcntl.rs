//! The flags of `openat` ([`OpenFlags`], arm64 values) and of the `*at`
//! calls ([`AtFlags`]), and [`AT_FDCWD`].

use bitflags::bitflags;

/// `dirfd` meaning "relative to the current directory".
pub const AT_FDCWD: i32 = -100;

bitflags! {
    /// `O_*`: the flags of `openat` (an `int`), with arm64's values where
    /// they differ from the generic ones (`O_DIRECTORY`, `O_NOFOLLOW`,
    /// `O_DIRECT`, `O_LARGEFILE`). The access mode is the low two bits
    /// ([`OpenFlags::readable`], [`OpenFlags::writable`]); `O_RDONLY` is 0.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct OpenFlags: u32 {
        const WRONLY = 0o1;
        const RDWR = 0o2;
        const CREAT = 0o100;
        const EXCL = 0o200;
        const NOCTTY = 0o400;
        const TRUNC = 0o1000;
        const APPEND = 0o2000;
        const NONBLOCK = 0o4000;
        const DSYNC = 0o10000;
        const ASYNC = 0o20000;
        const DIRECTORY = 0o40000;
        const NOFOLLOW = 0o100000;
        const DIRECT = 0o200000;
        const LARGEFILE = 0o400000;
        const NOATIME = 0o1000000;
        const CLOEXEC = 0o2000000;
        const SYNC = 0o4010000;
        const PATH = 0o10000000;
        const TMPFILE = 0o20040000;
    }
}

impl OpenFlags {
    /// `O_RDONLY`: the access mode 0.
    pub const RDONLY: OpenFlags = OpenFlags::empty();
    /// `O_ACCMODE`: the bits of the access mode.
    pub const ACCESS_MODE: u32 = 0o3;

    /// The flags a system call's register holds: its low 32 bits (an
    /// `int`), unknown bits kept.
    pub const fn from_register(raw: u64) -> OpenFlags {
        OpenFlags::from_bits_retain(raw as u32)
    }

    /// Whether the access mode allows reading (`O_RDONLY`, `O_RDWR`, and
    /// the undefined mode 3, as Linux).
    pub const fn readable(self) -> bool {
        self.bits() & Self::ACCESS_MODE != OpenFlags::WRONLY.bits()
    }

    /// Whether the access mode allows writing (`O_WRONLY`, `O_RDWR`).
    pub const fn writable(self) -> bool {
        let mode = self.bits() & Self::ACCESS_MODE;
        mode == OpenFlags::WRONLY.bits() || mode == OpenFlags::RDWR.bits()
    }
}

bitflags! {
    /// `AT_*`: the flags of the `*at` calls (an `int`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct AtFlags: u32 {
        const SYMLINK_NOFOLLOW = 0x100;
        const REMOVEDIR = 0x200;
        const SYMLINK_FOLLOW = 0x400;
        const NO_AUTOMOUNT = 0x800;
        const EMPTY_PATH = 0x1000;
    }
}

impl AtFlags {
    /// The flags a system call's register holds: its low 32 bits (an
    /// `int`), unknown bits kept.
    pub const fn from_register(raw: u64) -> AtFlags {
        AtFlags::from_bits_retain(raw as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm64_values() {
        assert_eq!(OpenFlags::DIRECTORY.bits(), 0x4000);
        assert_eq!(OpenFlags::NOFOLLOW.bits(), 0x8000);
        assert_eq!(OpenFlags::CLOEXEC.bits(), 0x80000);
        assert!(OpenFlags::TMPFILE.contains(OpenFlags::DIRECTORY));
        assert_eq!(AtFlags::EMPTY_PATH.bits(), 0x1000);
    }

    #[test]
    fn access_modes() {
        assert!(OpenFlags::RDONLY.readable() && !OpenFlags::RDONLY.writable());
        assert!(!OpenFlags::WRONLY.readable() && OpenFlags::WRONLY.writable());
        assert!(OpenFlags::RDWR.readable() && OpenFlags::RDWR.writable());
        let mode3 = OpenFlags::from_bits_retain(3);
        assert!(mode3.readable() && !mode3.writable());
        assert_eq!(OpenFlags::from_register(0x1_0000_0002), OpenFlags::RDWR);
    }
}
