//! The memory character devices (Linux's major 1): `/dev/null`,
//! `/dev/zero`, `/dev/full`, `/dev/random` and `/dev/urandom`. A device
//! node of the tree names one by its (major, minor); opening it gives a
//! [`Description::Device`](crate::process::fd::Description) whose reads
//! and writes are decided here. `/dev/console` and `/dev/tty` (major 5)
//! are the console.

use aspen_mm::errno::Errno;

/// A memory device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemDevice {
    /// `/dev/null` (1, 3): reads end at once, writes are dropped.
    Null,
    /// `/dev/zero` (1, 5): reads give zeros, writes are dropped; a mapping
    /// is anonymous memory (shared or private as asked).
    Zero,
    /// `/dev/full` (1, 7): reads give zeros, writes fail with `ENOSPC`.
    Full,
    /// `/dev/random` (1, 8) and `/dev/urandom` (1, 9): the kernel's
    /// generator (`crate::random`), never blocking; writes are accepted
    /// (Linux mixes them in; Aspen's generator takes no input).
    Random,
}

/// What a character device node of (`major`, `minor`) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharDevice {
    /// The console (5, 1), and `/dev/tty` (5, 0): there is one terminal.
    Console,
    /// A memory device.
    Mem(MemDevice),
}

impl CharDevice {
    /// The device numbered (`major`, `minor`); `ENXIO` for one that does
    /// not exist, as Linux opening a node without a driver.
    pub fn from_numbers(major: u32, minor: u32) -> Result<Self, Errno> {
        match (major, minor) {
            (5, 0 | 1) => Ok(CharDevice::Console),
            (1, 3) => Ok(CharDevice::Mem(MemDevice::Null)),
            (1, 5) => Ok(CharDevice::Mem(MemDevice::Zero)),
            (1, 7) => Ok(CharDevice::Mem(MemDevice::Full)),
            (1, 8 | 9) => Ok(CharDevice::Mem(MemDevice::Random)),
            _ => Err(Errno::ENXIO),
        }
    }
}

impl MemDevice {
    /// Fills `buf` with what a read gives; the byte count (0: end of file).
    pub fn read(self, buf: &mut [u8]) -> usize {
        match self {
            MemDevice::Null => 0,
            MemDevice::Zero | MemDevice::Full => {
                buf.fill(0);
                buf.len()
            }
            MemDevice::Random => {
                crate::random::fill(buf);
                buf.len()
            }
        }
    }

    /// What a write of `len` bytes returns.
    pub fn write(self, len: usize) -> Result<usize, Errno> {
        match self {
            MemDevice::Full => Err(Errno::ENOSPC),
            _ => Ok(len),
        }
    }
}
