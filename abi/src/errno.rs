//! Linux error numbers (the generic values, which aarch64 uses), as a newtype
//! so that this crate stays independent of the kernel's other crates.

use core::fmt;

/// A positive Linux error number; a system call returns it negated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// Argument list too long.
    pub const E2BIG: Errno = Errno(7);
    /// Exec format error.
    pub const ENOEXEC: Errno = Errno(8);
    /// Out of memory (or of address space).
    pub const ENOMEM: Errno = Errno(12);
    /// Bad address.
    pub const EFAULT: Errno = Errno(14);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// File name too long.
    pub const ENAMETOOLONG: Errno = Errno(36);

    /// The value a system call returns in `x0`: the number negated.
    pub const fn as_neg(self) -> i64 {
        -(self.0 as i64)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Errno::E2BIG => "E2BIG",
            Errno::ENOEXEC => "ENOEXEC",
            Errno::ENOMEM => "ENOMEM",
            Errno::EFAULT => "EFAULT",
            Errno::EINVAL => "EINVAL",
            Errno::ENAMETOOLONG => "ENAMETOOLONG",
            _ => return write!(f, "errno {}", self.0),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn negated_for_the_syscall_return() {
        assert_eq!(Errno::ENOEXEC.as_neg(), -8);
        assert_eq!(Errno::EINVAL.as_neg(), -22);
    }

    #[test]
    fn displays_names_and_unknown_numbers() {
        assert_eq!(Errno::E2BIG.to_string(), "E2BIG");
        assert_eq!(Errno(99).to_string(), "errno 99");
    }
}
