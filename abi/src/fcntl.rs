//! The flags of `openat` ([`OpenFlags`], arm64 values) and of the `*at`
//! calls ([`AtFlags`]), [`AT_FDCWD`], the commands of `fcntl`
//! ([`FcntlCmd`]) and the flags of `pipe2` ([`Pipe2Flags`]).

use bitflags::bitflags;

use crate::Errno;

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

impl OpenFlags {
    /// The status flags `F_SETFL` may change: `O_APPEND`, `O_NONBLOCK`,
    /// `O_ASYNC`, `O_DIRECT`, `O_NOATIME` (Linux's `SETFL_MASK`).
    pub const SETFL_MASK: OpenFlags = OpenFlags::APPEND
        .union(OpenFlags::NONBLOCK)
        .union(OpenFlags::ASYNC)
        .union(OpenFlags::DIRECT)
        .union(OpenFlags::NOATIME);

    /// What an open file description made by `openat` with these flags
    /// keeps (and `F_GETFL` reports): without the flags that act only at
    /// open (`O_CREAT`, `O_EXCL`, `O_NOCTTY`, `O_TRUNC`, `O_CLOEXEC`),
    /// with `O_LARGEFILE` (always so on a 64-bit kernel).
    pub const fn description_flags(self) -> OpenFlags {
        self.difference(
            OpenFlags::CREAT
                .union(OpenFlags::EXCL)
                .union(OpenFlags::NOCTTY)
                .union(OpenFlags::TRUNC)
                .union(OpenFlags::CLOEXEC),
        )
        .union(OpenFlags::LARGEFILE)
    }

    /// `F_SETFL`: these description flags with the changeable ones
    /// ([`Self::SETFL_MASK`]) taken from `requested`; the rest of
    /// `requested` is ignored, as Linux ignores it.
    pub const fn with_status(self, requested: OpenFlags) -> OpenFlags {
        self.difference(OpenFlags::SETFL_MASK).union(requested.intersection(OpenFlags::SETFL_MASK))
    }
}

/// `FD_CLOEXEC`: the one descriptor flag of `F_GETFD`/`F_SETFD`.
pub const FD_CLOEXEC: u64 = 1;

/// A `fcntl` command Aspen implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FcntlCmd {
    /// `F_DUPFD` (0): a duplicate at the lowest free descriptor at least
    /// the argument.
    DupFd,
    /// `F_GETFD` (1): the descriptor flags ([`FD_CLOEXEC`]).
    GetFd,
    /// `F_SETFD` (2): sets the descriptor flags.
    SetFd,
    /// `F_GETFL` (3): the access mode and status flags of the description.
    GetFl,
    /// `F_SETFL` (4): sets the changeable status flags.
    SetFl,
    /// `F_DUPFD_CLOEXEC` (1030): `F_DUPFD` with close-on-exec set.
    DupFdCloexec,
}

impl FcntlCmd {
    /// The command numbered `raw` (an `unsigned int`); `EINVAL` for one
    /// Aspen does not implement, as Linux answers an unknown one.
    pub const fn from_register(raw: u64) -> Result<FcntlCmd, Errno> {
        match raw as u32 {
            0 => Ok(FcntlCmd::DupFd),
            1 => Ok(FcntlCmd::GetFd),
            2 => Ok(FcntlCmd::SetFd),
            3 => Ok(FcntlCmd::GetFl),
            4 => Ok(FcntlCmd::SetFl),
            1030 => Ok(FcntlCmd::DupFdCloexec),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// The flags of `pipe2`, checked.
///
/// Linux accepts `O_CLOEXEC`, `O_NONBLOCK` and `O_DIRECT` (packet mode,
/// where each write is one message). Aspen has no packet mode: `O_DIRECT`
/// is refused with `EINVAL`, as any other flag is, so a program that asks
/// for packets learns it does not get them instead of getting a byte
/// stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pipe2Flags {
    /// `O_CLOEXEC`: both descriptors are closed by `execve`.
    pub close_on_exec: bool,
    /// The status flags both ends start with (`O_NONBLOCK` or none).
    pub status: OpenFlags,
}

impl Pipe2Flags {
    /// Checks `pipe2`'s `flags` (an `int`).
    pub const fn from_register(raw: u64) -> Result<Pipe2Flags, Errno> {
        let flags = OpenFlags::from_register(raw);
        if !OpenFlags::CLOEXEC.union(OpenFlags::NONBLOCK).contains(flags) {
            return Err(Errno::EINVAL);
        }
        Ok(Pipe2Flags {
            close_on_exec: flags.contains(OpenFlags::CLOEXEC),
            status: flags.intersection(OpenFlags::NONBLOCK),
        })
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

    #[test]
    fn description_and_status_flags() {
        let opened = OpenFlags::RDWR | OpenFlags::CREAT | OpenFlags::TRUNC | OpenFlags::CLOEXEC | OpenFlags::APPEND;
        let kept = opened.description_flags();
        assert_eq!(kept, OpenFlags::RDWR | OpenFlags::APPEND | OpenFlags::LARGEFILE);
        // F_SETFL changes only the five status flags.
        let set = kept.with_status(OpenFlags::NONBLOCK | OpenFlags::WRONLY | OpenFlags::SYNC);
        assert_eq!(set, OpenFlags::RDWR | OpenFlags::NONBLOCK | OpenFlags::LARGEFILE);
        assert_eq!(OpenFlags::SETFL_MASK.bits(), 0o1_226_000);
    }

    #[test]
    fn fcntl_commands() {
        assert_eq!(FcntlCmd::from_register(0), Ok(FcntlCmd::DupFd));
        assert_eq!(FcntlCmd::from_register(1030), Ok(FcntlCmd::DupFdCloexec));
        assert_eq!(FcntlCmd::from_register(4), Ok(FcntlCmd::SetFl));
        // The command is an unsigned int: high bits are not looked at.
        assert_eq!(FcntlCmd::from_register(0x1_0000_0003), Ok(FcntlCmd::GetFl));
        assert_eq!(FcntlCmd::from_register(5), Err(Errno::EINVAL));
        assert_eq!(FcntlCmd::from_register(1031), Err(Errno::EINVAL));
    }

    #[test]
    fn pipe2_flags() {
        assert_eq!(Pipe2Flags::from_register(0), Ok(Pipe2Flags { close_on_exec: false, status: OpenFlags::empty() }));
        let both = (OpenFlags::CLOEXEC | OpenFlags::NONBLOCK).bits() as u64;
        assert_eq!(
            Pipe2Flags::from_register(both),
            Ok(Pipe2Flags { close_on_exec: true, status: OpenFlags::NONBLOCK })
        );
        assert_eq!(Pipe2Flags::from_register(OpenFlags::DIRECT.bits() as u64), Err(Errno::EINVAL));
        assert_eq!(Pipe2Flags::from_register(OpenFlags::APPEND.bits() as u64), Err(Errno::EINVAL));
        assert_eq!(Pipe2Flags::from_register(OpenFlags::RDWR.bits() as u64), Err(Errno::EINVAL));
    }
}
