//! One pass over the structure block, picking out what boot needs.
//!
//! Only the root, its direct children and the children of
//! `/reserved-memory` matter, so the walk keeps a depth counter and the state
//! of the node being read instead of a stack: nesting depth costs nothing and
//! cannot overflow anything.

use crate::blob::{be32, Blob, Token};
use crate::ranges::{Range, RangeList};
use crate::{DeviceTreeInfo, DtError, PsciMethod};

/// `#address-cells` when a node does not give it (devicetree spec 2.3.5).
const DEFAULT_ADDRESS_CELLS: u32 = 2;
/// `#size-cells` when a node does not give it (devicetree spec 2.3.5).
const DEFAULT_SIZE_CELLS: u32 = 1;

/// The direct children of the root whose contents matter, by name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TopLevel {
    Chosen,
    Psci,
    ReservedMemory,
    Other,
}

impl TopLevel {
    fn of(name: &[u8]) -> Self {
        let base = name.split(|&b| b == b'@').next().unwrap_or(name);
        match base {
            b"chosen" => Self::Chosen,
            b"psci" => Self::Psci,
            b"reserved-memory" => Self::ReservedMemory,
            _ => Self::Other,
        }
    }
}

/// `#address-cells` and `#size-cells` as a node gives them to its children.
#[derive(Clone, Copy, Default)]
struct Cells {
    address: Option<u32>,
    size: Option<u32>,
}

impl Cells {
    /// Records `name = value` if it is one of the two cell counts.
    fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), DtError> {
        let slot = match name {
            b"#address-cells" => &mut self.address,
            b"#size-cells" => &mut self.size,
            _ => return Ok(()),
        };
        *slot = Some(u32_value(value)?);
        Ok(())
    }

    /// These cell counts, or `parent`'s where these are missing.
    fn or(self, parent: Self) -> Self {
        Self { address: self.address.or(parent.address), size: self.size.or(parent.size) }
    }

    /// Appends the non-empty `(address, size)` entries of a `reg` value to `out`.
    fn read_reg(self, reg: &[u8], out: &mut RangeList) -> Result<(), DtError> {
        let address_bytes = cell_bytes(self.address.unwrap_or(DEFAULT_ADDRESS_CELLS))?;
        let size_bytes = cell_bytes(self.size.unwrap_or(DEFAULT_SIZE_CELLS))?;
        let entry = address_bytes + size_bytes;
        if !reg.len().is_multiple_of(entry) {
            return Err(DtError::Malformed);
        }
        for chunk in reg.chunks_exact(entry) {
            let (address, size) = chunk.split_at_checked(address_bytes).ok_or(DtError::Malformed)?;
            push_range(out, number(address)?, number(size)?)?;
        }
        Ok(())
    }
}

/// Bytes per number for a cell count, which must be 1 or 2 (a 32- or 64-bit number).
fn cell_bytes(cells: u32) -> Result<usize, DtError> {
    match cells {
        1 => Ok(4),
        2 => Ok(8),
        _ => Err(DtError::BadCells),
    }
}

/// A property value holding one 32-bit number.
fn u32_value(value: &[u8]) -> Result<u32, DtError> {
    match value.len() {
        4 => be32(value, 0).ok_or(DtError::Malformed),
        _ => Err(DtError::Malformed),
    }
}

/// A property value holding one 32- or 64-bit number.
fn number(value: &[u8]) -> Result<u64, DtError> {
    match value.len() {
        4 => u32_value(value).map(u64::from),
        8 => {
            let high = be32(value, 0).ok_or(DtError::Malformed)?;
            let low = be32(value, 4).ok_or(DtError::Malformed)?;
            Ok((u64::from(high) << 32) | u64::from(low))
        }
        _ => Err(DtError::Malformed),
    }
}

/// The bytes of a string property before its first NUL: the whole string,
/// or the first entry of a string list.
fn string_bytes(value: &[u8]) -> &[u8] {
    value.split(|&b| b == 0).next().unwrap_or(value)
}

/// A string property (the first entry of a string list) as UTF-8.
fn string(value: &[u8]) -> Result<&str, DtError> {
    core::str::from_utf8(string_bytes(value)).map_err(|_| DtError::Malformed)
}

/// Appends `size` bytes at `start` to `out`, skipping empty ranges; a range
/// running past the end of the address space is malformed.
fn push_range(out: &mut RangeList, start: u64, size: u64) -> Result<(), DtError> {
    if size != 0 {
        start.checked_add(size).ok_or(DtError::Malformed)?;
        out.push(Range { start, size });
    }
    Ok(())
}

/// Properties of the node being read that only mean something together, and
/// only once all of them have been seen.
#[derive(Clone, Copy, Default)]
struct Pending<'a> {
    reg: Option<&'a [u8]>,
    /// `device_type = "memory"`.
    memory: bool,
    /// A `status` other than `"okay"` (or the older `"ok"`).
    disabled: bool,
}

impl<'a> Pending<'a> {
    fn record(&mut self, name: &[u8], value: &'a [u8]) {
        match name {
            b"reg" => self.reg = Some(value),
            b"device_type" => self.memory = string_bytes(value) == b"memory",
            b"status" => self.disabled = !matches!(string_bytes(value), b"okay" | b"ok"),
            _ => {}
        }
    }
}

/// Everything the walk has learnt so far.
struct Scan<'a> {
    info: DeviceTreeInfo<'a>,
    /// Depth of the node being read: 1 for the root, 0 outside it.
    depth: usize,
    root_seen: bool,
    /// Which direct child of the root the walk is in (when `depth >= 2`).
    top: TopLevel,
    root_cells: Cells,
    reserved_cells: Cells,
    /// The node whose properties are being read, until its first child
    /// node or its end.
    pending: Option<Pending<'a>>,
    initrd_start: Option<u64>,
    initrd_end: Option<u64>,
}

impl<'a> Scan<'a> {
    fn begin_node(&mut self, name: &[u8]) -> Result<(), DtError> {
        self.finish_properties()?;
        if self.depth == 0 {
            if self.root_seen {
                return Err(DtError::Malformed);
            }
            self.root_seen = true;
        }
        self.depth += 1;
        if self.depth == 2 {
            self.top = TopLevel::of(name);
            if self.top == TopLevel::ReservedMemory {
                self.reserved_cells = Cells::default();
            }
        }
        self.pending = Some(Pending::default());
        Ok(())
    }

    fn end_node(&mut self) -> Result<(), DtError> {
        self.finish_properties()?;
        self.depth = self.depth.checked_sub(1).ok_or(DtError::Malformed)?;
        Ok(())
    }

    fn property(&mut self, name: &'a [u8], value: &'a [u8]) -> Result<(), DtError> {
        // Properties come before a node's children, and only inside a node.
        self.pending.as_mut().ok_or(DtError::Malformed)?.record(name, value);
        let info = &mut self.info;
        match (self.depth, self.top) {
            (1, _) => match name {
                b"model" => info.model = string(value)?,
                b"compatible" => info.compatible = string(value)?,
                _ => self.root_cells.set(name, value)?,
            },
            (2, TopLevel::Chosen) => match name {
                b"bootargs" => info.bootargs = string(value)?,
                b"stdout-path" => info.stdout_path = string(value)?,
                b"linux,initrd-start" => self.initrd_start = Some(number(value)?),
                b"linux,initrd-end" => self.initrd_end = Some(number(value)?),
                b"rng-seed" => info.rng_seed = value,
                b"kaslr-seed" => info.kaslr_seed = number(value).ok(),
                _ => {}
            },
            (2, TopLevel::Psci) if name == b"method" => {
                info.psci_method = match string_bytes(value) {
                    b"hvc" => Some(PsciMethod::Hvc),
                    b"smc" => Some(PsciMethod::Smc),
                    _ => None,
                };
            }
            (2, TopLevel::ReservedMemory) => self.reserved_cells.set(name, value)?,
            _ => {}
        }
        Ok(())
    }

    /// Acts on the properties of the node being read, now that all are known.
    fn finish_properties(&mut self) -> Result<(), DtError> {
        let Some(node) = self.pending.take() else {
            return Ok(());
        };
        let Some(reg) = node.reg.filter(|_| !node.disabled) else {
            return Ok(());
        };
        if self.depth == 2 && node.memory {
            self.root_cells.read_reg(reg, &mut self.info.ram)?;
        } else if self.depth == 3 && self.top == TopLevel::ReservedMemory {
            self.reserved_cells.or(self.root_cells).read_reg(reg, &mut self.info.reserved)?;
        }
        Ok(())
    }
}

/// Reads what boot needs from `blob`.
pub(crate) fn scan<'a>(blob: &Blob<'a>, total_size: u32) -> Result<DeviceTreeInfo<'a>, DtError> {
    let mut scan = Scan {
        info: DeviceTreeInfo {
            model: "",
            compatible: "",
            ram: RangeList::new(),
            reserved: RangeList::new(),
            bootargs: "",
            initrd: None,
            rng_seed: &[],
            kaslr_seed: None,
            psci_method: None,
            stdout_path: "",
            total_size,
        },
        depth: 0,
        root_seen: false,
        top: TopLevel::Other,
        root_cells: Cells::default(),
        reserved_cells: Cells::default(),
        pending: None,
        initrd_start: None,
        initrd_end: None,
    };
    blob.for_each_reservation(|address, size| push_range(&mut scan.info.reserved, address, size))?;

    let mut tokens = blob.tokens();
    loop {
        match tokens.next_token()? {
            Token::BeginNode(name) => scan.begin_node(name)?,
            Token::EndNode => scan.end_node()?,
            Token::Prop { name, value } => scan.property(name, value)?,
            Token::End if scan.depth == 0 && scan.root_seen => break,
            Token::End => return Err(DtError::Malformed),
        }
    }

    if let (Some(start), Some(end)) = (scan.initrd_start, scan.initrd_end) {
        if start < end {
            scan.info.initrd = Some((start, end));
        }
    }
    Ok(scan.info)
}
