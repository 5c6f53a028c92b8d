//! The flattened device tree format, read with bounds checks on every access.
//!
//! A blob is a header, a memory reservation block (pairs of big-endian `u64`
//! address and size, ended by a zero size), a structure block (a stream of
//! 4-byte-aligned tokens) and a strings block (NUL-terminated property names
//! the structure block refers to by offset). Nothing here trusts a length or
//! an offset read from the blob: every slice is taken with `get` and every
//! sum is checked, so malformed input ends in [`DtError`] rather than a panic.

use crate::DtError;

/// `magic` in the header.
pub(crate) const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of a version 17 header.
pub(crate) const HEADER_LEN: usize = 40;
/// The format version this reader understands (and that it is compatible back to).
const VERSION: u32 = 17;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Reads the big-endian `u32` at `at`, if it lies within `bytes`.
pub(crate) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    Some(u32::from_be_bytes(bytes.get(at..end)?.try_into().ok()?))
}

/// Reads the big-endian `u64` at `at`, if it lies within `bytes`.
fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    let high = be32(bytes, at)?;
    let low = be32(bytes, at.checked_add(4)?)?;
    Some((u64::from(high) << 32) | u64::from(low))
}

/// The bytes of `bytes` before its first NUL, or `None` if it has none.
fn until_nul(bytes: &[u8]) -> Option<&[u8]> {
    let len = bytes.iter().position(|&b| b == 0)?;
    bytes.get(..len)
}

/// Rounds `n` up to the next multiple of 4.
fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// The header fields the reader needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) total_size: u32,
    off_struct: u32,
    off_strings: u32,
    off_rsvmap: u32,
    size_strings: u32,
    size_struct: u32,
}

impl Header {
    /// Reads the header at the start of `bytes` and checks its magic number,
    /// version and `totalsize` (at least a header). Only the first
    /// [`HEADER_LEN`] bytes are looked at.
    pub(crate) fn read(bytes: &[u8]) -> Result<Self, DtError> {
        let bytes = bytes.get(..HEADER_LEN).ok_or(DtError::Truncated)?;
        let field = |index: usize| be32(bytes, index * 4).ok_or(DtError::Truncated);
        if field(0)? != FDT_MAGIC {
            return Err(DtError::BadMagic);
        }
        let header = Self {
            total_size: field(1)?,
            off_struct: field(2)?,
            off_strings: field(3)?,
            off_rsvmap: field(4)?,
            size_strings: field(8)?,
            size_struct: field(9)?,
        };
        let (version, last_compatible) = (field(5)?, field(6)?);
        if version < VERSION || last_compatible > VERSION {
            return Err(DtError::UnsupportedVersion);
        }
        if usize::try_from(header.total_size).is_ok_and(|total| total < HEADER_LEN) {
            return Err(DtError::Malformed);
        }
        Ok(header)
    }
}

/// The three blocks of a device tree, each checked to lie within the blob.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Blob<'a> {
    /// From the reservation block to the end of the blob: the block has no
    /// size of its own, only its terminating entry.
    rsvmap: &'a [u8],
    structs: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Blob<'a> {
    /// Splits `bytes` (which starts with `header`) into its blocks. `bytes`
    /// may extend past the blob's `totalsize`; the excess is ignored.
    pub(crate) fn new(bytes: &'a [u8], header: &Header) -> Result<Self, DtError> {
        let total = usize::try_from(header.total_size).map_err(|_| DtError::Truncated)?;
        let bytes = bytes.get(..total).ok_or(DtError::Truncated)?;
        // Each block lies after the header and within the blob.
        let block = |offset: u32, size: Option<u32>| -> Result<&'a [u8], DtError> {
            let start = usize::try_from(offset).map_err(|_| DtError::Malformed)?;
            if start < HEADER_LEN {
                return Err(DtError::Malformed);
            }
            let block = match size {
                Some(size) => {
                    let size = usize::try_from(size).map_err(|_| DtError::Malformed)?;
                    bytes.get(start..start.checked_add(size).ok_or(DtError::Malformed)?)
                }
                None => bytes.get(start..),
            };
            block.ok_or(DtError::Malformed)
        };
        Ok(Self {
            rsvmap: block(header.off_rsvmap, None)?,
            structs: block(header.off_struct, Some(header.size_struct))?,
            strings: block(header.off_strings, Some(header.size_strings))?,
        })
    }

    /// Calls `f(address, size)` for each memory reservation entry.
    pub(crate) fn for_each_reservation(
        &self,
        mut f: impl FnMut(u64, u64) -> Result<(), DtError>,
    ) -> Result<(), DtError> {
        // Each entry is 16 bytes; the block must end with a zero-size entry
        // before the blob does.
        for entry in self.rsvmap.chunks(16) {
            let address = be64(entry, 0).ok_or(DtError::Malformed)?;
            let size = be64(entry, 8).ok_or(DtError::Malformed)?;
            if size == 0 {
                return Ok(());
            }
            f(address, size)?;
        }
        Err(DtError::Malformed)
    }

    /// The structure block's tokens, from the first.
    pub(crate) fn tokens(&self) -> Tokens<'a> {
        Tokens { structs: self.structs, strings: self.strings, pos: 0 }
    }
}

/// A structure block token, with its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// A node begins; its name (unit address included), without the NUL.
    BeginNode(&'a [u8]),
    /// The most recently begun node ends.
    EndNode,
    /// A property of the current node: its name (from the strings block) and value.
    Prop { name: &'a [u8], value: &'a [u8] },
    /// The structure block ends.
    End,
}

/// Reads the structure block one token at a time, skipping `FDT_NOP`s.
pub(crate) struct Tokens<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
    /// Offset of the next token in `structs`.
    pos: usize,
}

impl<'a> Tokens<'a> {
    /// The next token other than `FDT_NOP`. Running off the end of the block,
    /// an unknown token, a name without NUL or a property value or name
    /// outside its block are all [`DtError::Malformed`].
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, DtError> {
        loop {
            let token = be32(self.structs, self.pos).ok_or(DtError::Malformed)?;
            let payload = self.pos.checked_add(4).ok_or(DtError::Malformed)?;
            match token {
                FDT_NOP => self.pos = payload,
                FDT_BEGIN_NODE => {
                    let name = self.structs.get(payload..).and_then(until_nul).ok_or(DtError::Malformed)?;
                    self.advance(payload, name.len() + 1)?;
                    return Ok(Token::BeginNode(name));
                }
                FDT_END_NODE => {
                    self.pos = payload;
                    return Ok(Token::EndNode);
                }
                FDT_PROP => {
                    let len = be32(self.structs, payload).ok_or(DtError::Malformed)?;
                    let name_offset = be32(self.structs, payload + 4).ok_or(DtError::Malformed)?;
                    let len = usize::try_from(len).map_err(|_| DtError::Malformed)?;
                    let start = payload + 8;
                    let end = start.checked_add(len).ok_or(DtError::Malformed)?;
                    let value = self.structs.get(start..end).ok_or(DtError::Malformed)?;
                    let name_offset = usize::try_from(name_offset).map_err(|_| DtError::Malformed)?;
                    let name = self.strings.get(name_offset..).and_then(until_nul).ok_or(DtError::Malformed)?;
                    self.advance(start, len)?;
                    return Ok(Token::Prop { name, value });
                }
                FDT_END => {
                    self.pos = payload;
                    return Ok(Token::End);
                }
                _ => return Err(DtError::Malformed),
            }
        }
    }

    /// Moves past `len` payload bytes starting at `from`, to the next
    /// 4-byte boundary.
    fn advance(&mut self, from: usize, len: usize) -> Result<(), DtError> {
        self.pos = from.checked_add(len).and_then(align4).ok_or(DtError::Malformed)?;
        Ok(())
    }
}
