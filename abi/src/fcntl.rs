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
        /// `O_WRONLY`: open for writing only (`O_RDONLY` is no bit).
        const WRONLY = 0o1;
        /// `O_RDWR`: open for reading and writing.
        const RDWR = 0o2;
        /// `O_CREAT`: create a regular file when the path names nothing.
        const CREAT = 0o100;
        /// `O_EXCL`: with `O_CREAT`, fail with `EEXIST` when the path exists.
        const EXCL = 0o200;
        /// `O_NOCTTY`: a terminal opened does not become the controlling one.
        const NOCTTY = 0o400;
        /// `O_TRUNC`: empty a regular file opened for writing.
        const TRUNC = 0o1000;
        /// `O_APPEND`: every write goes to the end of the file.
        const APPEND = 0o2000;
        /// `O_NONBLOCK`: calls that would wait fail with `EAGAIN` instead.
        const NONBLOCK = 0o4000;
        /// `O_DSYNC`: writes complete with their data on storage.
        const DSYNC = 0o10000;
        /// `O_ASYNC`: signal-driven I/O (`SIGIO`).
        const ASYNC = 0o20000;
        /// `O_DIRECTORY`: fail with `ENOTDIR` unless the path is a directory (aarch64 value).
        const DIRECTORY = 0o40000;
        /// `O_NOFOLLOW`: fail with `ELOOP` when the last component is a symbolic link (aarch64 value).
        const NOFOLLOW = 0o100000;
        /// `O_DIRECT`: bypass the page cache (aarch64 value).
        const DIRECT = 0o200000;
        /// `O_LARGEFILE`: offsets beyond 2 GiB (always so on aarch64; aarch64 value).
        const LARGEFILE = 0o400000;
        /// `O_NOATIME`: reads do not update the access time.
        const NOATIME = 0o1000000;
        /// `O_CLOEXEC`: the descriptor is closed by `execve`.
        const CLOEXEC = 0o2000000;
        /// `O_SYNC`: writes complete with data and metadata on storage (includes `O_DSYNC`).
        const SYNC = 0o4010000;
        /// `O_PATH`: a descriptor that only names a place in the tree.
        const PATH = 0o10000000;
        /// `O_TMPFILE`: an unnamed file in the given directory (includes `O_DIRECTORY`).
        const TMPFILE = 0o20040000;
    }
}

flags_from_register!(OpenFlags: int);

impl OpenFlags {
    /// `O_RDONLY`: the access mode 0.
    pub const RDONLY: OpenFlags = OpenFlags::empty();
    /// `O_ACCMODE`: the bits of the access mode.
    pub const ACCESS_MODE: u32 = 0o3;

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
        /// `AT_SYMLINK_NOFOLLOW`: act on a symbolic link itself, not its target.
        const SYMLINK_NOFOLLOW = 0x100;
        /// `AT_REMOVEDIR`: `unlinkat` removes a directory.
        const REMOVEDIR = 0x200;
        /// `AT_SYMLINK_FOLLOW`: `linkat` follows a symbolic link.
        const SYMLINK_FOLLOW = 0x400;
        /// `AT_NO_AUTOMOUNT`: do not trigger an automount at the last component.
        const NO_AUTOMOUNT = 0x800;
        /// `AT_EMPTY_PATH`: an empty path means `dirfd` itself.
        const EMPTY_PATH = 0x1000;
    }
}

flags_from_register!(AtFlags: int);

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
