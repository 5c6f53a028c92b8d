//! What the boot loader tells the kernel through the flattened device tree:
//! RAM, reserved ranges, the command line, the initrd, the PSCI conduit.
//!
//! The kernel reads the device tree before it has a heap or a console, from
//! a blob whatever loader started it put in memory, so this crate
//!
//! - never panics, whatever the bytes: every offset and length read from the
//!   blob is bounds-checked and every sum overflow-checked, and malformed
//!   input ends in a [`DtError`];
//! - never allocates: ranges go into fixed-capacity [`RangeList`]s and
//!   strings borrow from the blob;
//! - reads the blob in one pass, skipping `FDT_NOP` tokens wherever they are
//!   (firmware that edits a tree in place, like the Raspberry Pi's or QEMU's
//!   `raspi4b`, leaves them between properties).
//!
//! It has its own small reader rather than using the `fdt` crate: `fdt` 0.1.5
//! asserts on `FDT_NOP` tokens between properties, and the fallible mode of
//! 0.2.0-alpha3 still panics on header values (overflowing offset + size
//! sums, a structure block shorter than two tokens).

#![cfg_attr(not(test), no_std)]
// unsafe_op_in_unsafe_fn and missing_docs: set for every crate in the
// workspace manifest's [workspace.lints].

mod blob;
mod ranges;
mod scan;
#[cfg(test)]
mod tests;

use core::fmt;

pub use ranges::{Range, RangeList};

/// Why a device tree could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtError {
    /// [`parse_raw`] was given a null pointer.
    NullPointer,
    /// The header does not start with the magic number `0xd00dfeed`.
    BadMagic,
    /// The header says the blob is longer than the bytes given to [`parse`],
    /// or fewer bytes than a header were given.
    Truncated,
    /// The header says the blob is longer than [`parse_raw`] may read.
    TooLarge,
    /// The blob is older than format version 17, or requires a newer reader.
    UnsupportedVersion,
    /// `#address-cells` or `#size-cells` for `reg` is not 1 or 2.
    BadCells,
    /// The blob's structure is inconsistent: a block or value outside the
    /// blob, an unknown token, unbalanced nodes, a property of the wrong
    /// size, a string that is not UTF-8, a range past the end of the address
    /// space...
    Malformed,
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NullPointer => "device tree pointer is null",
            Self::BadMagic => "not a device tree (bad magic number)",
            Self::Truncated => "device tree is truncated",
            Self::TooLarge => "device tree is larger than the memory it may occupy",
            Self::UnsupportedVersion => "unsupported device tree version",
            Self::BadCells => "#address-cells or #size-cells is not 1 or 2",
            Self::Malformed => "malformed device tree",
        })
    }
}

impl core::error::Error for DtError {}

/// How to call PSCI firmware (`/psci` `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PsciMethod {
    /// `hvc`: firmware runs at EL2 (a hypervisor, or QEMU without EL3).
    Hvc,
    /// `smc`: firmware runs at EL3.
    Smc,
}

/// What boot needs from a device tree. Strings borrow from the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceTreeInfo<'a> {
    /// The root's `model` (`""` if none).
    pub model: &'a str,
    /// The first entry of the root's `compatible` (`""` if none).
    pub compatible: &'a str,
    /// Every `reg` entry of every enabled top-level node with
    /// `device_type = "memory"`, addresses and sizes as wide as the root's
    /// `#address-cells` / `#size-cells` say (1 or 2 cells; 2 and 1 if absent).
    pub ram: RangeList,
    /// The memory reservation block (`/memreserve/`) entries, then the `reg`
    /// entries of the enabled children of `/reserved-memory` (with that
    /// node's cell counts, or the root's). Children with only a `size` (to be
    /// allocated by the OS) are not reserved yet, so not listed. If this list
    /// is truncated, memory outside it may still be in use by firmware.
    pub reserved: RangeList,
    /// `/chosen` `bootargs`, up to its NUL (`""` if none).
    pub bootargs: &'a str,
    /// `/chosen` `linux,initrd-start` and `linux,initrd-end` (each a 32- or
    /// 64-bit number): start and end (exclusive) of the initrd. `None` unless
    /// both are present and `start < end`.
    pub initrd: Option<(u64, u64)>,
    /// `/chosen` `rng-seed`: random bytes from the boot loader (empty if none).
    pub rng_seed: &'a [u8],
    /// `/chosen` `kaslr-seed`: a random 64-bit number from the boot loader.
    pub kaslr_seed: Option<u64>,
    /// `/psci` `method`, if it is `"hvc"` or `"smc"`.
    pub psci_method: Option<PsciMethod>,
    /// `/chosen` `stdout-path` (`""` if none): a path or an alias, possibly
    /// followed by `:` and options (`"serial0:115200n8"`).
    pub stdout_path: &'a str,
    /// The header's `totalsize`: how many bytes the blob occupies.
    pub total_size: u32,
}

/// Reads a device tree blob. `blob` may extend past the blob's `totalsize`.
pub fn parse(blob: &[u8]) -> Result<DeviceTreeInfo<'_>, DtError> {
    let header = blob::Header::read(blob)?;
    scan::scan(&blob::Blob::new(blob, &header)?, header.total_size)
}

/// Reads the device tree blob at `ptr`, which may occupy at most `max_len`
/// bytes: reads the header, checks the magic number and that `totalsize` is
/// at most `max_len`, then reads `totalsize` bytes.
///
/// # Safety
///
/// Unless `ptr` is null, it must be valid for reads of `max_len` bytes (one
/// allocated object, or mapped memory), and those bytes must not be written
/// for as long as the returned strings are used (they borrow from them).
pub unsafe fn parse_raw(ptr: *const u8, max_len: usize) -> Result<DeviceTreeInfo<'static>, DtError> {
    if ptr.is_null() {
        return Err(DtError::NullPointer);
    }
    if max_len < blob::HEADER_LEN {
        return Err(DtError::Truncated);
    }
    // SAFETY: the caller guarantees `max_len` readable bytes at `ptr`, and
    // `max_len >= HEADER_LEN`; `u8` has no alignment requirement.
    let header = blob::Header::read(unsafe { core::slice::from_raw_parts(ptr, blob::HEADER_LEN) })?;
    let total = usize::try_from(header.total_size).map_err(|_| DtError::TooLarge)?;
    if total > max_len {
        return Err(DtError::TooLarge);
    }
    // SAFETY: `total <= max_len`, so the caller's guarantee covers these
    // bytes, and it keeps them unchanged while the result is in use.
    parse(unsafe { core::slice::from_raw_parts(ptr, total) })
}
