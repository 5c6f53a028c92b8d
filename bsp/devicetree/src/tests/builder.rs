//! A tiny flattened-device-tree writer for building test inputs.

/// Builds a version 17 DTB token by token: header, memory reservation
/// block, structure block, strings block, in that order.
#[derive(Clone, Default)]
pub(super) struct DtbBuilder {
    reservations: Vec<(u64, u64)>,
    structs: Vec<u8>,
    strings: Vec<u8>,
}

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

impl DtbBuilder {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn token(&mut self, token: u32) -> &mut Self {
        self.structs.extend_from_slice(&token.to_be_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }

    pub(super) fn begin_node(&mut self, name: &str) -> &mut Self {
        self.token(BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }

    pub(super) fn end_node(&mut self) -> &mut Self {
        self.token(END_NODE)
    }

    pub(super) fn nop(&mut self) -> &mut Self {
        self.token(NOP)
    }

    /// A property with a raw value; its name is appended to the strings
    /// block unless already there.
    pub(super) fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let mut entry = name.as_bytes().to_vec();
        entry.push(0);
        let offset = self
            .strings
            .windows(entry.len())
            .enumerate()
            .find(|&(at, window)| window == entry && (at == 0 || self.strings[at - 1] == 0))
            .map(|(at, _)| at)
            .unwrap_or_else(|| {
                self.strings.extend_from_slice(&entry);
                self.strings.len() - entry.len()
            });
        self.token(PROP);
        self.structs.extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.structs.extend_from_slice(&(offset as u32).to_be_bytes());
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }

    /// A string property (NUL-terminated).
    pub(super) fn prop_str(&mut self, name: &str, value: &str) -> &mut Self {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.prop(name, &bytes)
    }

    /// A property of 32-bit cells.
    pub(super) fn prop_cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes)
    }

    /// A `/memreserve/` entry.
    pub(super) fn memreserve(&mut self, address: u64, size: u64) -> &mut Self {
        self.reservations.push((address, size));
        self
    }

    /// The blob, with `FDT_END` after the last token.
    pub(super) fn build(&self) -> Vec<u8> {
        const HEADER: usize = 40;
        let mut rsvmap = Vec::new();
        for &(address, size) in self.reservations.iter().chain([(0, 0)].iter()) {
            rsvmap.extend_from_slice(&address.to_be_bytes());
            rsvmap.extend_from_slice(&size.to_be_bytes());
        }
        let mut structs = self.structs.clone();
        structs.extend_from_slice(&END.to_be_bytes());
        let off_rsvmap = HEADER;
        let off_struct = off_rsvmap + rsvmap.len();
        let off_strings = off_struct + structs.len();
        let total = off_strings + self.strings.len();
        let header = [
            0xd00d_feed,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsvmap as u32,
            17,
            16,
            0,
            self.strings.len() as u32,
            structs.len() as u32,
        ];
        let mut blob: Vec<u8> = header.iter().flat_map(|f| u32::to_be_bytes(*f)).collect();
        blob.extend_from_slice(&rsvmap);
        blob.extend_from_slice(&structs);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

/// `reg` cells for `(address, size)` pairs with the given cell counts.
pub(super) fn reg_cells(address_cells: u32, size_cells: u32, entries: &[(u64, u64)]) -> Vec<u32> {
    let mut cells = Vec::new();
    for &(address, size) in entries {
        for (value, count) in [(address, address_cells), (size, size_cells)] {
            if count == 2 {
                cells.push((value >> 32) as u32);
            }
            cells.push(value as u32);
        }
    }
    cells
}
