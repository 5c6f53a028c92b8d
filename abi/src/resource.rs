//! Resource limits (`getrlimit`, `setrlimit`, `prlimit64`): the resources,
//! `struct rlimit`, the limits a first process starts with (Linux 6.1's)
//! and the rules for changing them.

use crate::Errno;

/// `RLIM_INFINITY`: no limit.
pub const RLIM_INFINITY: u64 = u64::MAX;

macro_rules! resources {
    ($($variant:ident = $number:literal, $doc:literal;)*) => {
        /// A resource with a limit (`RLIMIT_*`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum Resource {
            $(#[doc = $doc] $variant = $number,)*
        }

        impl Resource {
            /// The resource numbered `number`; `EINVAL` for any other.
            pub const fn from_raw(number: u64) -> Result<Resource, Errno> {
                match number {
                    $($number => Ok(Resource::$variant),)*
                    _ => Err(Errno::EINVAL),
                }
            }
        }
    };
}

resources! {
    Cpu = 0, "`RLIMIT_CPU`: CPU time, seconds.";
    Fsize = 1, "`RLIMIT_FSIZE`: largest file, bytes.";
    Data = 2, "`RLIMIT_DATA`: data segment and private mappings, bytes.";
    Stack = 3, "`RLIMIT_STACK`: the main thread's stack, bytes.";
    Core = 4, "`RLIMIT_CORE`: largest core dump, bytes.";
    Rss = 5, "`RLIMIT_RSS`: not enforced by Linux.";
    Nproc = 6, "`RLIMIT_NPROC`: processes of the user.";
    Nofile = 7, "`RLIMIT_NOFILE`: one more than the largest descriptor.";
    Memlock = 8, "`RLIMIT_MEMLOCK`: locked memory, bytes.";
    As = 9, "`RLIMIT_AS`: address space, bytes.";
    Locks = 10, "`RLIMIT_LOCKS`: file locks.";
    Sigpending = 11, "`RLIMIT_SIGPENDING`: queued signals.";
    Msgqueue = 12, "`RLIMIT_MSGQUEUE`: POSIX message queue bytes.";
    Nice = 13, "`RLIMIT_NICE`: ceiling of the nice value.";
    Rtprio = 14, "`RLIMIT_RTPRIO`: ceiling of the real-time priority.";
    Rttime = 15, "`RLIMIT_RTTIME`: real-time CPU time without a block, µs.";
}

/// How many resources there are (`RLIM_NLIMITS`).
pub const RLIM_NLIMITS: usize = 16;

/// `sysctl fs.nr_open`: the ceiling of `RLIMIT_NOFILE`.
pub const NR_OPEN: u64 = 1 << 20;

/// `struct rlimit` (and `struct rlimit64`): the soft and the hard limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    /// The soft limit, what is enforced.
    pub cur: u64,
    /// The hard limit, the ceiling of the soft one.
    pub max: u64,
}

impl Rlimit {
    /// Its size in user memory.
    pub const SIZE: usize = 16;

    /// Reads `struct rlimit` from its bytes.
    pub fn from_bytes(bytes: [u8; Self::SIZE]) -> Rlimit {
        let half = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
        Rlimit { cur: half(0), max: half(8) }
    }

    /// Its bytes in user memory.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        bytes[..8].copy_from_slice(&self.cur.to_le_bytes());
        bytes[8..].copy_from_slice(&self.max.to_le_bytes());
        bytes
    }
}

/// A process's limits, indexed by [`Resource`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits([Rlimit; RLIM_NLIMITS]);

impl Default for Limits {
    /// What Linux 6.1 gives its first process (`INIT_RLIMITS`), with
    /// `RLIMIT_NPROC` and `RLIMIT_SIGPENDING` as a 1 GiB machine gets them.
    fn default() -> Self {
        let unlimited = Rlimit { cur: RLIM_INFINITY, max: RLIM_INFINITY };
        let mut limits = [unlimited; RLIM_NLIMITS];
        limits[Resource::Stack as usize] = Rlimit { cur: 8 << 20, max: RLIM_INFINITY };
        limits[Resource::Core as usize] = Rlimit { cur: 0, max: RLIM_INFINITY };
        limits[Resource::Nproc as usize] = Rlimit { cur: 3_900, max: 3_900 };
        limits[Resource::Nofile as usize] = Rlimit { cur: 1024, max: 4096 };
        limits[Resource::Memlock as usize] = Rlimit { cur: 8 << 20, max: 8 << 20 };
        limits[Resource::Sigpending as usize] = Rlimit { cur: 3_900, max: 3_900 };
        limits[Resource::Msgqueue as usize] = Rlimit { cur: 819_200, max: 819_200 };
        limits[Resource::Nice as usize] = Rlimit { cur: 0, max: 0 };
        limits[Resource::Rtprio as usize] = Rlimit { cur: 0, max: 0 };
        Limits(limits)
    }
}

impl Limits {
    /// The limit of `resource`.
    pub fn get(&self, resource: Resource) -> Rlimit {
        self.0[resource as usize]
    }

    /// Sets the limit of `resource` as `setrlimit` does, for a caller that
    /// may raise hard limits (`CAP_SYS_RESOURCE`) when `privileged`: the
    /// soft limit may not exceed the hard one (`EINVAL`), a hard limit may
    /// only go up with privilege (`EPERM`), `RLIMIT_NOFILE` not past
    /// `nr_open` (`EPERM`). Nothing changes when it fails.
    pub fn set(&mut self, resource: Resource, new: Rlimit, privileged: bool) -> Result<(), Errno> {
        if new.cur > new.max {
            return Err(Errno::EINVAL);
        }
        let old = self.get(resource);
        if new.max > old.max && !privileged {
            return Err(Errno::EPERM);
        }
        if resource == Resource::Nofile && new.max > NR_OPEN {
            return Err(Errno::EPERM);
        }
        self.0[resource as usize] = new;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_numbered_as_linux() {
        assert_eq!(Resource::from_raw(3), Ok(Resource::Stack));
        assert_eq!(Resource::from_raw(7), Ok(Resource::Nofile));
        assert_eq!(Resource::from_raw(8), Ok(Resource::Memlock));
        assert_eq!(Resource::from_raw(15), Ok(Resource::Rttime));
        assert_eq!(Resource::from_raw(16), Err(Errno::EINVAL));
        assert_eq!(Resource::from_raw(u64::MAX), Err(Errno::EINVAL));
    }

    #[test]
    fn the_first_process_starts_with_linux_limits() {
        let limits = Limits::default();
        assert_eq!(limits.get(Resource::Stack), Rlimit { cur: 8 << 20, max: RLIM_INFINITY });
        assert_eq!(limits.get(Resource::Nofile), Rlimit { cur: 1024, max: 4096 });
        assert_eq!(limits.get(Resource::Memlock), Rlimit { cur: 8 << 20, max: 8 << 20 });
        assert_eq!(limits.get(Resource::As).cur, RLIM_INFINITY);
    }

    #[test]
    fn setting_follows_the_setrlimit_rules() {
        let mut limits = Limits::default();
        let nofile = |cur, max| Rlimit { cur, max };
        assert_eq!(limits.set(Resource::Nofile, nofile(10, 5), true), Err(Errno::EINVAL));
        assert_eq!(limits.set(Resource::Nofile, nofile(10, 5000), false), Err(Errno::EPERM));
        assert_eq!(limits.set(Resource::Nofile, nofile(10, NR_OPEN + 1), true), Err(Errno::EPERM));
        assert_eq!(limits.get(Resource::Nofile), nofile(1024, 4096), "a refused change changes nothing");
        assert_eq!(limits.set(Resource::Nofile, nofile(10, 100), false), Ok(()));
        assert_eq!(limits.set(Resource::Nofile, nofile(10, 200), false), Err(Errno::EPERM));
        assert_eq!(limits.set(Resource::Nofile, nofile(10, 200), true), Ok(()));
        let bytes = nofile(3, 4).to_bytes();
        assert_eq!(Rlimit::from_bytes(bytes), nofile(3, 4));
    }
}
