//! The system calls Aspen implements and the structures they exchange with
//! user programs, in the aarch64 (generic) Linux layout.
//!
//! - [`Sysno`]: the system call numbers (`x8`), with names for logs.
//! - [`Timespec`]: `struct timespec`, checked as Linux checks it, and
//!   converted to and from counter ticks without overflow.
//! - [`ClockId`]: the clocks `clock_gettime` accepts.
//! - [`decode_reboot`]: the magic numbers and commands of `reboot`.
//! - [`Stat`], [`Dirent64`], [`UtsName`]: `struct stat`, `linux_dirent64`
//!   and `struct utsname` as bytes to copy out.

use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroU64;

use crate::Errno;

macro_rules! system_calls {
    ($($variant:ident = $number:literal => $name:literal, $args:literal,)*) => {
        /// A Linux aarch64 system call that Aspen or its programs name, by its
        /// number in `x8`: the one list of numbers in the tree.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(usize)]
        pub enum Sysno {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant = $number,
            )*
        }

        impl Sysno {
            /// Every system call listed here, by number.
            pub const ALL: &'static [Sysno] = &[$(Sysno::$variant,)*];

            /// The system call numbered `number`, if it is listed here.
            pub const fn from_number(number: usize) -> Option<Sysno> {
                match number {
                    $($number => Some(Sysno::$variant),)*
                    _ => None,
                }
            }

            /// Its name, as in `<asm/unistd.h>` without `__NR_`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Sysno::$variant => $name,)*
                }
            }

            /// How many arguments (`x0` on) it takes, as Linux declares it.
            pub const fn arg_count(self) -> usize {
                match self {
                    $(Sysno::$variant => $args,)*
                }
            }
        }
    };
}

system_calls! {
    Getcwd = 17 => "getcwd", 2,
    Dup = 23 => "dup", 1,
    Dup3 = 24 => "dup3", 3,
    Fcntl = 25 => "fcntl", 3,
    Ioctl = 29 => "ioctl", 3,
    Mkdirat = 34 => "mkdirat", 3,
    Unlinkat = 35 => "unlinkat", 3,
    Symlinkat = 36 => "symlinkat", 3,
    Linkat = 37 => "linkat", 5,
    Renameat = 38 => "renameat", 4,
    Umount2 = 39 => "umount2", 2,
    Mount = 40 => "mount", 5,
    Statfs = 43 => "statfs", 2,
    Fstatfs = 44 => "fstatfs", 2,
    Truncate = 45 => "truncate", 2,
    Ftruncate = 46 => "ftruncate", 2,
    Faccessat = 48 => "faccessat", 3,
    Chdir = 49 => "chdir", 1,
    Fchdir = 50 => "fchdir", 1,
    Fchmod = 52 => "fchmod", 2,
    Fchmodat = 53 => "fchmodat", 3,
    Fchownat = 54 => "fchownat", 5,
    Fchown = 55 => "fchown", 3,
    Openat = 56 => "openat", 4,
    Close = 57 => "close", 1,
    Pipe2 = 59 => "pipe2", 2,
    Getdents64 = 61 => "getdents64", 3,
    Lseek = 62 => "lseek", 3,
    Read = 63 => "read", 3,
    Write = 64 => "write", 3,
    Readv = 65 => "readv", 3,
    Writev = 66 => "writev", 3,
    Sendfile = 71 => "sendfile", 4,
    Pselect6 = 72 => "pselect6", 6,
    Ppoll = 73 => "ppoll", 5,
    Readlinkat = 78 => "readlinkat", 4,
    Newfstatat = 79 => "newfstatat", 4,
    Fstat = 80 => "fstat", 2,
    Fsync = 82 => "fsync", 1,
    Fdatasync = 83 => "fdatasync", 1,
    Utimensat = 88 => "utimensat", 4,
    Exit = 93 => "exit", 1,
    ExitGroup = 94 => "exit_group", 1,
    Waitid = 95 => "waitid", 5,
    SetTidAddress = 96 => "set_tid_address", 1,
    Futex = 98 => "futex", 6,
    SetRobustList = 99 => "set_robust_list", 2,
    GetRobustList = 100 => "get_robust_list", 3,
    Nanosleep = 101 => "nanosleep", 2,
    Getitimer = 102 => "getitimer", 2,
    Setitimer = 103 => "setitimer", 3,
    TimerCreate = 107 => "timer_create", 3,
    TimerGettime = 108 => "timer_gettime", 2,
    TimerGetoverrun = 109 => "timer_getoverrun", 1,
    TimerSettime = 110 => "timer_settime", 4,
    TimerDelete = 111 => "timer_delete", 1,
    ClockGettime = 113 => "clock_gettime", 2,
    ClockGetres = 114 => "clock_getres", 2,
    ClockNanosleep = 115 => "clock_nanosleep", 4,
    SchedSetparam = 118 => "sched_setparam", 2,
    SchedSetscheduler = 119 => "sched_setscheduler", 3,
    SchedGetscheduler = 120 => "sched_getscheduler", 1,
    SchedGetparam = 121 => "sched_getparam", 2,
    SchedSetaffinity = 122 => "sched_setaffinity", 3,
    SchedGetaffinity = 123 => "sched_getaffinity", 3,
    SchedYield = 124 => "sched_yield", 0,
    SchedGetPriorityMax = 125 => "sched_get_priority_max", 1,
    SchedGetPriorityMin = 126 => "sched_get_priority_min", 1,
    SchedRrGetInterval = 127 => "sched_rr_get_interval", 2,
    Kill = 129 => "kill", 2,
    Tkill = 130 => "tkill", 2,
    Tgkill = 131 => "tgkill", 3,
    Sigaltstack = 132 => "sigaltstack", 2,
    RtSigsuspend = 133 => "rt_sigsuspend", 2,
    RtSigaction = 134 => "rt_sigaction", 4,
    RtSigprocmask = 135 => "rt_sigprocmask", 4,
    RtSigpending = 136 => "rt_sigpending", 2,
    RtSigtimedwait = 137 => "rt_sigtimedwait", 4,
    RtSigqueueinfo = 138 => "rt_sigqueueinfo", 3,
    RtSigreturn = 139 => "rt_sigreturn", 0,
    Reboot = 142 => "reboot", 4,
    Setregid = 143 => "setregid", 2,
    Setgid = 144 => "setgid", 1,
    Setreuid = 145 => "setreuid", 2,
    Setuid = 146 => "setuid", 1,
    Setresuid = 147 => "setresuid", 3,
    Getresuid = 148 => "getresuid", 3,
    Setresgid = 149 => "setresgid", 3,
    Getresgid = 150 => "getresgid", 3,
    Setpgid = 154 => "setpgid", 2,
    Getpgid = 155 => "getpgid", 1,
    Getsid = 156 => "getsid", 1,
    Setsid = 157 => "setsid", 0,
    Getgroups = 158 => "getgroups", 2,
    Setgroups = 159 => "setgroups", 2,
    Uname = 160 => "uname", 1,
    Getrlimit = 163 => "getrlimit", 2,
    Setrlimit = 164 => "setrlimit", 2,
    Umask = 166 => "umask", 1,
    Getcpu = 168 => "getcpu", 3,
    Gettimeofday = 169 => "gettimeofday", 2,
    Getpid = 172 => "getpid", 0,
    Getppid = 173 => "getppid", 0,
    Getuid = 174 => "getuid", 0,
    Geteuid = 175 => "geteuid", 0,
    Getgid = 176 => "getgid", 0,
    Getegid = 177 => "getegid", 0,
    Gettid = 178 => "gettid", 0,
    Sysinfo = 179 => "sysinfo", 1,
    Brk = 214 => "brk", 1,
    Munmap = 215 => "munmap", 2,
    Mremap = 216 => "mremap", 5,
    Clone = 220 => "clone", 5,
    Execve = 221 => "execve", 3,
    Mmap = 222 => "mmap", 6,
    Mprotect = 226 => "mprotect", 3,
    Msync = 227 => "msync", 3,
    Mlock = 228 => "mlock", 2,
    Munlock = 229 => "munlock", 2,
    Mlockall = 230 => "mlockall", 1,
    Munlockall = 231 => "munlockall", 0,
    Mincore = 232 => "mincore", 3,
    Madvise = 233 => "madvise", 3,
    Wait4 = 260 => "wait4", 4,
    Prlimit64 = 261 => "prlimit64", 4,
    Renameat2 = 276 => "renameat2", 5,
    Getrandom = 278 => "getrandom", 3,
    Membarrier = 283 => "membarrier", 3,
    Statx = 291 => "statx", 5,
    Clone3 = 435 => "clone3", 2,
    Faccessat2 = 439 => "faccessat2", 4,
}

impl Sysno {
    /// Its number.
    pub const fn number(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Sysno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name of system call `number` for logs: `"unknown"` when it is not
/// listed here.
pub const fn name(number: usize) -> &'static str {
    match Sysno::from_number(number) {
        Some(sysno) => sysno.name(),
        None => "unknown",
    }
}

/// Nanoseconds in a second: the bound of `tv_nsec`.
pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// `struct timespec` (16 bytes: `tv_sec`, `tv_nsec`, both 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespec {
    /// Seconds.
    pub tv_sec: i64,
    /// Nanoseconds; valid in `0..1_000_000_000`.
    pub tv_nsec: i64,
}

impl Timespec {
    /// Its size in user memory.
    pub const SIZE: usize = 16;

    /// The duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Timespec {
        Timespec { tv_sec: (nanos / NANOS_PER_SECOND) as i64, tv_nsec: (nanos % NANOS_PER_SECOND) as i64 }
    }

    /// In nanoseconds, with negative fields counted as 0 and saturating
    /// at `u64::MAX`.
    pub const fn as_nanos(self) -> u64 {
        let seconds = if self.tv_sec > 0 { self.tv_sec as u64 } else { 0 };
        let nanos = if self.tv_nsec > 0 { self.tv_nsec as u64 } else { 0 };
        seconds.saturating_mul(NANOS_PER_SECOND).saturating_add(nanos)
    }

    /// Reads one as user memory holds it (not yet checked).
    pub const fn from_bytes(bytes: [u8; Self::SIZE]) -> Timespec {
        let value = u128::from_le_bytes(bytes);
        Timespec { tv_sec: value as u64 as i64, tv_nsec: (value >> 64) as u64 as i64 }
    }

    /// Its bytes in user memory.
    pub const fn to_bytes(self) -> [u8; Self::SIZE] {
        let value = ((self.tv_nsec as u64 as u128) << 64) | self.tv_sec as u64 as u128;
        value.to_le_bytes()
    }

    /// Itself when it is a valid duration or time (`tv_sec >= 0`,
    /// `0 <= tv_nsec < 10^9`), else `EINVAL`, as `nanosleep` checks.
    pub const fn validated(self) -> Result<Timespec, Errno> {
        if self.tv_sec >= 0 && self.tv_nsec >= 0 && self.tv_nsec < NANOS_PER_SECOND as i64 {
            Ok(self)
        } else {
            Err(Errno::EINVAL)
        }
    }

    /// The number of ticks of a counter running at `frequency` Hz that
    /// covers this duration, rounded up (a sleep never ends early) and
    /// saturating at `u64::MAX` (an "endless" sleep). `EINVAL` when invalid.
    pub fn to_ticks(self, frequency: NonZeroU64) -> Result<u64, Errno> {
        let valid = self.validated()?;
        let frequency = u128::from(frequency.get());
        let whole = valid.tv_sec as u128 * frequency;
        let part = (valid.tv_nsec as u128 * frequency).div_ceil(u128::from(NANOS_PER_SECOND));
        Ok(u64::try_from(whole + part).unwrap_or(u64::MAX))
    }

    /// The time `ticks` of a counter running at `frequency` Hz stand for,
    /// rounded down to a nanosecond; seconds saturate at `i64::MAX`.
    pub fn from_ticks(ticks: u64, frequency: NonZeroU64) -> Timespec {
        let frequency = frequency.get();
        let seconds = ticks / frequency;
        let remainder = u128::from(ticks % frequency);
        let nanos = remainder * u128::from(NANOS_PER_SECOND) / u128::from(frequency);
        Timespec { tv_sec: i64::try_from(seconds).unwrap_or(i64::MAX), tv_nsec: nanos as i64 }
    }
}

/// Microseconds in a second: the bound of `tv_usec`.
pub const MICROS_PER_SECOND: u64 = 1_000_000;

/// `struct timeval` (16 bytes: `tv_sec`, `tv_usec`, both 64-bit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeval {
    /// Seconds.
    pub tv_sec: i64,
    /// Microseconds; valid in `0..1_000_000`.
    pub tv_usec: i64,
}

impl Timeval {
    /// Its size in user memory.
    pub const SIZE: usize = 16;

    /// The duration of `nanos` nanoseconds, cut to a microsecond.
    pub const fn from_nanos(nanos: u64) -> Timeval {
        Timeval { tv_sec: (nanos / NANOS_PER_SECOND) as i64, tv_usec: (nanos % NANOS_PER_SECOND / 1000) as i64 }
    }

    /// In nanoseconds (valid values only: see [`Timeval::validated`]),
    /// saturating at `u64::MAX`.
    pub const fn as_nanos(self) -> u64 {
        (self.tv_sec as u64).saturating_mul(NANOS_PER_SECOND).saturating_add(self.tv_usec as u64 * 1000)
    }

    /// Reads one as user memory holds it (not yet checked).
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Timeval {
        let half = |i: usize| i64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
        Timeval { tv_sec: half(0), tv_usec: half(8) }
    }

    /// Its bytes in user memory.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        bytes[..8].copy_from_slice(&self.tv_sec.to_le_bytes());
        bytes[8..].copy_from_slice(&self.tv_usec.to_le_bytes());
        bytes
    }

    /// Itself when valid (`tv_sec >= 0`, `0 <= tv_usec < 10^6`), else
    /// `EINVAL`, as `setitimer` checks.
    pub const fn validated(self) -> Result<Timeval, Errno> {
        if self.tv_sec >= 0 && self.tv_usec >= 0 && self.tv_usec < MICROS_PER_SECOND as i64 {
            Ok(self)
        } else {
            Err(Errno::EINVAL)
        }
    }
}

/// `struct itimerval`: the reload interval and the time to the next expiry
/// (zero: disarmed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Itimerval {
    /// What the timer is reloaded with when it expires (zero: once).
    pub interval: Timeval,
    /// Time until it expires.
    pub value: Timeval,
}

impl Itimerval {
    /// Its size in user memory.
    pub const SIZE: usize = 32;

    /// Reads one as user memory holds it, checked as `setitimer` checks it.
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Result<Itimerval, Errno> {
        let half = |i: usize| -> [u8; Timeval::SIZE] { bytes[i..i + Timeval::SIZE].try_into().unwrap_or_default() };
        Ok(Itimerval {
            interval: Timeval::from_bytes(&half(0)).validated()?,
            value: Timeval::from_bytes(&half(Timeval::SIZE)).validated()?,
        })
    }

    /// Its bytes in user memory.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        bytes[..Timeval::SIZE].copy_from_slice(&self.interval.to_bytes());
        bytes[Timeval::SIZE..].copy_from_slice(&self.value.to_bytes());
        bytes
    }
}

/// `ITIMER_REAL`: counts real time, `SIGALRM` on expiry.
pub const ITIMER_REAL: u64 = 0;
/// `ITIMER_VIRTUAL`: counts the process's user CPU time, `SIGVTALRM`.
pub const ITIMER_VIRTUAL: u64 = 1;
/// `ITIMER_PROF`: counts the process's CPU time, `SIGPROF`.
pub const ITIMER_PROF: u64 = 2;

/// A clock `clock_gettime` (and `nanosleep`'s timebase) accepts.
///
/// All eight fixed Linux clocks are accepted; the kernel decides how to
/// serve each (the CPU-time clocks from per-process accounting, the others
/// from the system counter). Negative ids (per-process CPU-time and
/// file-descriptor clocks), the alarm clocks and `CLOCK_TAI` are `EINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ClockId {
    /// `CLOCK_REALTIME`: wall-clock time.
    Realtime = 0,
    /// `CLOCK_MONOTONIC`: time since boot, not counting suspend.
    Monotonic = 1,
    /// `CLOCK_PROCESS_CPUTIME_ID`: CPU time of the process.
    ProcessCputime = 2,
    /// `CLOCK_THREAD_CPUTIME_ID`: CPU time of the thread.
    ThreadCputime = 3,
    /// `CLOCK_MONOTONIC_RAW`: monotonic, never adjusted.
    MonotonicRaw = 4,
    /// `CLOCK_REALTIME_COARSE`: wall-clock time, coarse.
    RealtimeCoarse = 5,
    /// `CLOCK_MONOTONIC_COARSE`: monotonic, coarse.
    MonotonicCoarse = 6,
    /// `CLOCK_BOOTTIME`: time since boot, counting suspend.
    Boottime = 7,
}

impl ClockId {
    /// Decodes a `clockid_t`.
    pub const fn from_raw(id: i32) -> Result<ClockId, Errno> {
        Ok(match id {
            0 => ClockId::Realtime,
            1 => ClockId::Monotonic,
            2 => ClockId::ProcessCputime,
            3 => ClockId::ThreadCputime,
            4 => ClockId::MonotonicRaw,
            5 => ClockId::RealtimeCoarse,
            6 => ClockId::MonotonicCoarse,
            7 => ClockId::Boottime,
            _ => return Err(Errno::EINVAL),
        })
    }

    /// Whether it counts CPU time rather than elapsed time.
    pub const fn is_cpu_time(self) -> bool {
        matches!(self, ClockId::ProcessCputime | ClockId::ThreadCputime)
    }
}

/// `reboot`'s first magic number.
pub const LINUX_REBOOT_MAGIC1: u32 = 0xfee1_dead;
/// `reboot`'s second magic number (Torvalds' birthday).
pub const LINUX_REBOOT_MAGIC2: u32 = 672_274_793;
/// An accepted alternative second magic number.
pub const LINUX_REBOOT_MAGIC2A: u32 = 85_072_278;
/// An accepted alternative second magic number.
pub const LINUX_REBOOT_MAGIC2B: u32 = 369_367_448;
/// An accepted alternative second magic number.
pub const LINUX_REBOOT_MAGIC2C: u32 = 537_993_216;
/// Restart the machine.
pub const LINUX_REBOOT_CMD_RESTART: u32 = 0x0123_4567;
/// Halt the machine.
pub const LINUX_REBOOT_CMD_HALT: u32 = 0xcdef_0123;
/// Power the machine off.
pub const LINUX_REBOOT_CMD_POWER_OFF: u32 = 0x4321_fedc;
/// Let Ctrl-Alt-Del restart at once.
pub const LINUX_REBOOT_CMD_CAD_ON: u32 = 0x89ab_cdef;
/// Let Ctrl-Alt-Del signal init instead.
pub const LINUX_REBOOT_CMD_CAD_OFF: u32 = 0;

/// A `reboot` command Aspen carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebootCmd {
    /// `LINUX_REBOOT_CMD_RESTART`.
    Restart,
    /// `LINUX_REBOOT_CMD_HALT`.
    Halt,
    /// `LINUX_REBOOT_CMD_POWER_OFF`.
    PowerOff,
    /// `LINUX_REBOOT_CMD_CAD_ON`: succeeds and changes nothing (there is no
    /// keyboard); init programs issue it at start.
    CtrlAltDelOn,
    /// `LINUX_REBOOT_CMD_CAD_OFF`: likewise.
    CtrlAltDelOff,
}

/// Decodes `reboot(magic1, magic2, cmd, arg)` (the low 32 bits of each
/// register). Wrong magic numbers are `EINVAL`, as are the commands Aspen
/// does not carry out (`RESTART2`, `SW_SUSPEND`, `KEXEC`) and unknown ones.
pub const fn decode_reboot(magic1: u32, magic2: u32, cmd: u32) -> Result<RebootCmd, Errno> {
    if magic1 != LINUX_REBOOT_MAGIC1 {
        return Err(Errno::EINVAL);
    }
    match magic2 {
        LINUX_REBOOT_MAGIC2 | LINUX_REBOOT_MAGIC2A | LINUX_REBOOT_MAGIC2B | LINUX_REBOOT_MAGIC2C => {}
        _ => return Err(Errno::EINVAL),
    }
    match cmd {
        LINUX_REBOOT_CMD_RESTART => Ok(RebootCmd::Restart),
        LINUX_REBOOT_CMD_HALT => Ok(RebootCmd::Halt),
        LINUX_REBOOT_CMD_POWER_OFF => Ok(RebootCmd::PowerOff),
        LINUX_REBOOT_CMD_CAD_ON => Ok(RebootCmd::CtrlAltDelOn),
        LINUX_REBOOT_CMD_CAD_OFF => Ok(RebootCmd::CtrlAltDelOff),
        _ => Err(Errno::EINVAL),
    }
}

/// The kind of a file, as `st_mode`'s type bits and `d_type` encode it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A directory.
    Directory,
    /// A block device.
    BlockDevice,
    /// A regular file.
    Regular,
    /// A symbolic link.
    Symlink,
    /// A socket.
    Socket,
}

/// The type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170_000;

impl FileType {
    /// Every file type.
    pub const ALL: [FileType; 7] = [
        FileType::Fifo,
        FileType::CharDevice,
        FileType::Directory,
        FileType::BlockDevice,
        FileType::Regular,
        FileType::Symlink,
        FileType::Socket,
    ];

    /// Its `S_IF*` bits of `st_mode`.
    pub const fn mode_bits(self) -> u32 {
        match self {
            FileType::Fifo => 0o010_000,
            FileType::CharDevice => 0o020_000,
            FileType::Directory => 0o040_000,
            FileType::BlockDevice => 0o060_000,
            FileType::Regular => 0o100_000,
            FileType::Symlink => 0o120_000,
            FileType::Socket => 0o140_000,
        }
    }

    /// Its `DT_*` value for `d_type`.
    pub const fn dirent_type(self) -> u8 {
        match self {
            FileType::Fifo => 1,
            FileType::CharDevice => 2,
            FileType::Directory => 4,
            FileType::BlockDevice => 6,
            FileType::Regular => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }

    /// The type that `mode`'s `S_IFMT` bits name, if any (cpio headers
    /// carry modes in this encoding).
    pub fn from_mode(mode: u32) -> Option<FileType> {
        FileType::ALL.into_iter().find(|file_type| file_type.mode_bits() == mode & S_IFMT)
    }
}

/// `struct stat` of aarch64 (the generic layout, 128 bytes), as `fstat` and
/// `newfstatat` fill it: the kernel writes [`Stat::to_bytes`], a user
/// program reads the structure in place (`repr(C)`, the same layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_mode`: type bits ([`FileType::mode_bits`]) and permissions.
    pub mode: u32,
    /// `st_nlink`.
    pub nlink: u32,
    /// `st_uid`.
    pub uid: u32,
    /// `st_gid`.
    pub gid: u32,
    /// `st_rdev`.
    pub rdev: u64,
    /// `__pad1`: zero.
    pub pad1: u64,
    /// `st_size`.
    pub size: i64,
    /// `st_blksize`.
    pub blksize: i32,
    /// `__pad2`: zero.
    pub pad2: i32,
    /// `st_blocks` (512-byte units).
    pub blocks: i64,
    /// `st_atime` and `st_atime_nsec`.
    pub atime: Timespec,
    /// `st_mtime` and `st_mtime_nsec`.
    pub mtime: Timespec,
    /// `st_ctime` and `st_ctime_nsec`.
    pub ctime: Timespec,
    /// `__unused4`, `__unused5`: zero.
    pub unused: [u32; 2],
}

impl Stat {
    /// Its size in user memory.
    pub const SIZE: usize = 128;

    /// Its bytes in user memory; padding and `__unused` are zero whatever
    /// the fields say.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        put(&mut bytes, 0, &self.dev.to_le_bytes());
        put(&mut bytes, 8, &self.ino.to_le_bytes());
        put(&mut bytes, 16, &self.mode.to_le_bytes());
        put(&mut bytes, 20, &self.nlink.to_le_bytes());
        put(&mut bytes, 24, &self.uid.to_le_bytes());
        put(&mut bytes, 28, &self.gid.to_le_bytes());
        put(&mut bytes, 32, &self.rdev.to_le_bytes());
        put(&mut bytes, 48, &self.size.to_le_bytes());
        put(&mut bytes, 56, &self.blksize.to_le_bytes());
        put(&mut bytes, 64, &self.blocks.to_le_bytes());
        put(&mut bytes, 72, &self.atime.to_bytes());
        put(&mut bytes, 88, &self.mtime.to_bytes());
        put(&mut bytes, 104, &self.ctime.to_bytes());
        bytes
    }
}

/// The longest file name a directory entry carries (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Why a directory entry cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirentError {
    /// The name is longer than [`NAME_MAX`].
    NameTooLong,
    /// The name is empty or holds a NUL or a `/`.
    InvalidName,
    /// The record does not fit in the space left.
    BufferTooSmall,
}

impl DirentError {
    /// The error number `getdents64` returns for this (for
    /// [`DirentError::BufferTooSmall`]: when not even one entry fits).
    pub const fn errno(self) -> Errno {
        match self {
            DirentError::NameTooLong => Errno::ENAMETOOLONG,
            DirentError::InvalidName | DirentError::BufferTooSmall => Errno::EINVAL,
        }
    }
}

impl From<DirentError> for Errno {
    fn from(error: DirentError) -> Errno {
        error.errno()
    }
}

/// One `struct linux_dirent64`: `d_ino` u64, `d_off` i64, `d_reclen` u16,
/// `d_type` u8, the name and its NUL, zero-padded to a multiple of 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dirent64<'a> {
    /// `d_ino`.
    pub ino: u64,
    /// `d_off`: the directory offset of the next entry (what `lseek` on the
    /// directory takes to resume after this one).
    pub next_offset: i64,
    /// `d_type`.
    pub file_type: FileType,
    /// `d_name`, without its NUL.
    pub name: &'a [u8],
}

impl Dirent64<'_> {
    /// Bytes before the name.
    pub const HEADER_SIZE: usize = 19;

    /// `d_reclen`: the size of its record, a multiple of 8.
    pub fn record_len(&self) -> Result<usize, DirentError> {
        if self.name.len() > NAME_MAX {
            return Err(DirentError::NameTooLong);
        }
        if self.name.is_empty() || self.name.iter().any(|&b| b == 0 || b == b'/') {
            return Err(DirentError::InvalidName);
        }
        Ok((Self::HEADER_SIZE + self.name.len() + 1).next_multiple_of(8))
    }

    /// Writes its record at the start of `out` and returns its length.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, DirentError> {
        let len = self.record_len()?;
        let record = out.get_mut(..len).ok_or(DirentError::BufferTooSmall)?;
        record.fill(0);
        put(record, 0, &self.ino.to_le_bytes());
        put(record, 8, &self.next_offset.to_le_bytes());
        put(record, 16, &(len as u16).to_le_bytes());
        put(record, 18, &[self.file_type.dirent_type()]);
        put(record, Self::HEADER_SIZE, self.name);
        Ok(len)
    }
}

/// `struct utsname`: six NUL-terminated fields of 65 bytes, as `uname`
/// fills it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtsName<'a> {
    /// `sysname` (Linux programs expect "Linux").
    pub sysname: &'a [u8],
    /// `nodename`: the host name.
    pub nodename: &'a [u8],
    /// `release`.
    pub release: &'a [u8],
    /// `version`.
    pub version: &'a [u8],
    /// `machine` ("aarch64").
    pub machine: &'a [u8],
    /// `domainname`.
    pub domainname: &'a [u8],
}

/// Size of one `utsname` field, its NUL included.
pub const UTSNAME_FIELD_SIZE: usize = 65;
/// Size of `struct utsname` in user memory.
pub const UTSNAME_SIZE: usize = 6 * UTSNAME_FIELD_SIZE;

impl UtsName<'_> {
    /// Its bytes in user memory; `EINVAL` when a field is longer than 64
    /// bytes or holds a NUL (as `sethostname` refuses such names).
    pub fn to_bytes(&self) -> Result<[u8; UTSNAME_SIZE], Errno> {
        let fields = [self.sysname, self.nodename, self.release, self.version, self.machine, self.domainname];
        let mut bytes = [0; UTSNAME_SIZE];
        for (index, field) in fields.into_iter().enumerate() {
            if field.len() >= UTSNAME_FIELD_SIZE || field.contains(&0) {
                return Err(Errno::EINVAL);
            }
            put(&mut bytes, index * UTSNAME_FIELD_SIZE, field);
        }
        Ok(bytes)
    }
}

/// Copies `data` into `out` at `at`; the callers' offsets are constants
/// within their fixed-size records.
fn put(out: &mut [u8], at: usize, data: &[u8]) {
    if let Some(target) = at.checked_add(data.len()).and_then(|end| out.get_mut(at..end)) {
        target.copy_from_slice(data);
    }
}

/// The records of `entries` that fit in `capacity` bytes, back to back, as
/// one `getdents64` call returns them, and how many entries they hold (the
/// caller resumes after those). No entries: an empty buffer.
/// [`DirentError::BufferTooSmall`] when not even the first entry fits.
pub fn encode_dirents<'a>(
    entries: impl IntoIterator<Item = Dirent64<'a>>,
    capacity: usize,
) -> Result<(Vec<u8>, usize), DirentError> {
    let mut out = Vec::new();
    let mut taken = 0;
    for entry in entries {
        let start = out.len();
        let len = entry.record_len()?;
        if start.saturating_add(len) > capacity {
            if taken == 0 {
                return Err(DirentError::BufferTooSmall);
            }
            break;
        }
        out.resize(start + len, 0);
        if let Some(record) = out.get_mut(start..) {
            entry.encode_into(record)?;
        }
        taken += 1;
    }
    Ok((out, taken))
}

#[cfg(test)]
mod tests;
