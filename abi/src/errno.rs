//! Linux error numbers: every value of `<asm-generic/errno-base.h>` and
//! `<asm-generic/errno.h>` (which aarch64 uses), defined once here for the
//! kernel, the memory subsystem, the file systems and user programs.
//!
//! A system call returns one negated in `x0`: `-ENOMEM` is `-12`; a raw
//! result in `-4095..=-1` is an error ([`Errno::result`]).

use core::fmt;

/// A Linux error number: a value in `1..=4095`. The named constants cover
/// Linux's whole list (1 to 133); other values in the range can only come
/// from a kernel that returns numbers Linux does not define.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(u16);

macro_rules! errnos {
    ($($name:ident = $value:literal,)*) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($value), ").")]
                pub const $name: Errno = Errno($value);
            )*

            /// Every named error number, in increasing order.
            pub const ALL: &'static [Errno] = &[$(Errno::$name,)*];

            /// The symbolic name, as in `<errno.h>`, if Linux defines the number.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    E2BIG = 7,
    ENOEXEC = 8,
    EBADF = 9,
    ECHILD = 10,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    ENOTBLK = 15,
    EBUSY = 16,
    EEXIST = 17,
    EXDEV = 18,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    ENFILE = 23,
    EMFILE = 24,
    ENOTTY = 25,
    ETXTBSY = 26,
    EFBIG = 27,
    ENOSPC = 28,
    ESPIPE = 29,
    EROFS = 30,
    EMLINK = 31,
    EPIPE = 32,
    EDOM = 33,
    ERANGE = 34,
    EDEADLK = 35,
    ENAMETOOLONG = 36,
    ENOLCK = 37,
    ENOSYS = 38,
    ENOTEMPTY = 39,
    ELOOP = 40,
    ENOMSG = 42,
    EIDRM = 43,
    ECHRNG = 44,
    EL2NSYNC = 45,
    EL3HLT = 46,
    EL3RST = 47,
    ELNRNG = 48,
    EUNATCH = 49,
    ENOCSI = 50,
    EL2HLT = 51,
    EBADE = 52,
    EBADR = 53,
    EXFULL = 54,
    ENOANO = 55,
    EBADRQC = 56,
    EBADSLT = 57,
    EBFONT = 59,
    ENOSTR = 60,
    ENODATA = 61,
    ETIME = 62,
    ENOSR = 63,
    ENONET = 64,
    ENOPKG = 65,
    EREMOTE = 66,
    ENOLINK = 67,
    EADV = 68,
    ESRMNT = 69,
    ECOMM = 70,
    EPROTO = 71,
    EMULTIHOP = 72,
    EDOTDOT = 73,
    EBADMSG = 74,
    EOVERFLOW = 75,
    ENOTUNIQ = 76,
    EBADFD = 77,
    EREMCHG = 78,
    ELIBACC = 79,
    ELIBBAD = 80,
    ELIBSCN = 81,
    ELIBMAX = 82,
    ELIBEXEC = 83,
    EILSEQ = 84,
    ERESTART = 85,
    ESTRPIPE = 86,
    EUSERS = 87,
    ENOTSOCK = 88,
    EDESTADDRREQ = 89,
    EMSGSIZE = 90,
    EPROTOTYPE = 91,
    ENOPROTOOPT = 92,
    EPROTONOSUPPORT = 93,
    ESOCKTNOSUPPORT = 94,
    EOPNOTSUPP = 95,
    EPFNOSUPPORT = 96,
    EAFNOSUPPORT = 97,
    EADDRINUSE = 98,
    EADDRNOTAVAIL = 99,
    ENETDOWN = 100,
    ENETUNREACH = 101,
    ENETRESET = 102,
    ECONNABORTED = 103,
    ECONNRESET = 104,
    ENOBUFS = 105,
    EISCONN = 106,
    ENOTCONN = 107,
    ESHUTDOWN = 108,
    ETOOMANYREFS = 109,
    ETIMEDOUT = 110,
    ECONNREFUSED = 111,
    EHOSTDOWN = 112,
    EHOSTUNREACH = 113,
    EALREADY = 114,
    EINPROGRESS = 115,
    ESTALE = 116,
    EUCLEAN = 117,
    ENOTNAM = 118,
    ENAVAIL = 119,
    EISNAM = 120,
    EREMOTEIO = 121,
    EDQUOT = 122,
    ENOMEDIUM = 123,
    EMEDIUMTYPE = 124,
    ECANCELED = 125,
    ENOKEY = 126,
    EKEYEXPIRED = 127,
    EKEYREVOKED = 128,
    EKEYREJECTED = 129,
    EOWNERDEAD = 130,
    ENOTRECOVERABLE = 131,
    ERFKILL = 132,
    EHWPOISON = 133,
}

impl Errno {
    /// `EWOULDBLOCK`: another name of [`Errno::EAGAIN`].
    pub const EWOULDBLOCK: Errno = Errno::EAGAIN;
    /// `EDEADLOCK`: another name of [`Errno::EDEADLK`].
    pub const EDEADLOCK: Errno = Errno::EDEADLK;
    /// `ERESTARTSYS` (512): kernel-internal, see [`crate::signal::Restart`].
    pub const ERESTARTSYS: Errno = Errno(512);
    /// `ERESTARTNOINTR` (513): kernel-internal.
    pub const ERESTARTNOINTR: Errno = Errno(513);
    /// `ERESTARTNOHAND` (514): kernel-internal.
    pub const ERESTARTNOHAND: Errno = Errno(514);
    /// The largest value a system call can return negated as an error.
    pub const MAX: u16 = 4095;

    /// The error number `value`, if it is one (`1..=4095`).
    pub const fn new(value: u16) -> Option<Errno> {
        if value >= 1 && value <= Self::MAX {
            Some(Errno(value))
        } else {
            None
        }
    }

    /// The positive error number.
    pub const fn as_i32(self) -> i32 {
        self.0 as i32
    }

    /// The value a system call returns in `x0`: the number negated.
    pub const fn as_neg(self) -> i64 {
        -(self.0 as i64)
    }

    /// Splits a raw system-call result into a value or an error number.
    pub const fn result(ret: isize) -> Result<usize, Errno> {
        if ret < 0 && ret >= -(Self::MAX as isize) {
            Err(Errno(ret.unsigned_abs() as u16))
        } else {
            Ok(ret as usize)
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn values_match_linux() {
        let table = [
            (Errno::EPERM, 1),
            (Errno::ENOENT, 2),
            (Errno::EIO, 5),
            (Errno::EBADF, 9),
            (Errno::EAGAIN, 11),
            (Errno::ENOMEM, 12),
            (Errno::EFAULT, 14),
            (Errno::EINVAL, 22),
            (Errno::ENOSYS, 38),
            (Errno::ELOOP, 40),
            (Errno::ENOMSG, 42),
            (Errno::EBFONT, 59),
            (Errno::EOVERFLOW, 75),
            (Errno::EOPNOTSUPP, 95),
            (Errno::ETIMEDOUT, 110),
            (Errno::EHWPOISON, 133),
        ];
        for (e, v) in table {
            assert_eq!(e.as_i32(), v, "{e}");
            assert_eq!(e.as_neg(), -i64::from(v));
        }
        assert_eq!(Errno::EWOULDBLOCK, Errno::EAGAIN);
        assert_eq!(Errno::EDEADLOCK, Errno::EDEADLK);
    }

    #[test]
    fn the_whole_list_without_the_two_aliases() {
        // 41 and 58 are the old EWOULDBLOCK and EDEADLOCK slots, unused.
        let numbers: alloc::vec::Vec<i32> = Errno::ALL.iter().map(|e| e.as_i32()).collect();
        let expected: alloc::vec::Vec<i32> = (1..=133).filter(|n| *n != 41 && *n != 58).collect();
        assert_eq!(numbers, expected);
        assert!(Errno::ALL.iter().all(|e| e.name().is_some()));
    }

    #[test]
    fn raw_results_split_at_minus_4095() {
        assert_eq!(Errno::result(-12), Err(Errno::ENOMEM));
        assert_eq!(Errno::result(-4095), Err(Errno::new(4095).unwrap()));
        assert_eq!(Errno::result(-4096), Ok(-4096isize as usize));
        assert_eq!(Errno::result(0), Ok(0));
        assert_eq!(Errno::new(0), None);
        assert_eq!(Errno::new(4096), None);
    }

    #[test]
    fn displays_names_and_unknown_numbers() {
        assert_eq!(Errno::ENOMEM.to_string(), "ENOMEM (12)");
        assert_eq!(Errno::new(999).unwrap().to_string(), "errno 999");
        assert_eq!(Errno::E2BIG.name(), Some("E2BIG"));
    }
}
