//! Just enough of ELF64 (little endian) to find a kernel's code and name
//! the function an address lies in: section headers, the symbol table, and
//! the AArch64 mapping symbols (`$x` code, `$d` data) that mark literal
//! pools inside code sections.

/// A section's header fields the checks need.
#[derive(Clone, Debug)]
pub struct Section {
    /// Its name (`.text`).
    pub name: String,
    /// Its address when loaded.
    pub addr: u64,
    /// Where its bytes are in the file.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it holds instructions (`SHF_EXECINSTR`).
    pub exec: bool,
    /// Whether it takes room in the file (not `SHT_NOBITS`).
    pub has_bytes: bool,
}

/// A symbol of the symbol table.
#[derive(Clone, Debug)]
pub struct Symbol {
    /// Its (mangled) name.
    pub name: String,
    /// Its address.
    pub value: u64,
    /// Its size in bytes (0 for labels).
    pub size: u64,
    /// `STT_FUNC`.
    pub func: bool,
    /// The index of its section.
    pub section: u16,
}

/// A parsed ELF file.
#[derive(Clone, Debug)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    /// Every section, in header order.
    pub sections: Vec<Section>,
    /// Every symbol of `.symtab`, mapping symbols included.
    pub symbols: Vec<Symbol>,
}

fn field(bytes: &[u8], at: u64, len: usize) -> Result<u64, String> {
    let start = usize::try_from(at).map_err(|_| "offset out of range")?;
    let slice = bytes.get(start..start + len).ok_or_else(|| format!("truncated at {at:#x}"))?;
    Ok(slice.iter().rev().fold(0, |v, b| v << 8 | u64::from(*b)))
}

fn c_string(bytes: &[u8], at: u64) -> Result<String, String> {
    let start = usize::try_from(at).map_err(|_| "offset out of range")?;
    let tail = bytes.get(start..).ok_or_else(|| format!("string at {at:#x} outside the file"))?;
    let end = tail.iter().position(|b| *b == 0).ok_or("unterminated string")?;
    Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
}

impl<'a> Elf<'a> {
    /// Parses the section headers and the symbol table of `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.get(..4) != Some(b"\x7fELF") {
            return Err("not an ELF file".into());
        }
        if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
            return Err("not a 64-bit little-endian ELF file".into());
        }
        let shoff = field(bytes, 0x28, 8)?;
        let shentsize = field(bytes, 0x3a, 2)?;
        let shnum = field(bytes, 0x3c, 2)?;
        let shstrndx = field(bytes, 0x3e, 2)?;
        if shentsize != 64 {
            return Err(format!("section headers of {shentsize} bytes"));
        }
        struct Raw {
            name: u64,
            kind: u64,
            flags: u64,
            addr: u64,
            offset: u64,
            size: u64,
            link: u64,
        }
        let raw: Vec<Raw> = (0..shnum)
            .map(|i| {
                let h = shoff + i * 64;
                Ok(Raw {
                    name: field(bytes, h, 4)?,
                    kind: field(bytes, h + 4, 4)?,
                    flags: field(bytes, h + 8, 8)?,
                    addr: field(bytes, h + 16, 8)?,
                    offset: field(bytes, h + 24, 8)?,
                    size: field(bytes, h + 32, 8)?,
                    link: field(bytes, h + 40, 4)?,
                })
            })
            .collect::<Result<_, String>>()?;
        let names = raw.get(shstrndx as usize).ok_or("no section name table")?.offset;
        let sections = raw
            .iter()
            .map(|r| {
                Ok(Section {
                    name: c_string(bytes, names + r.name)?,
                    addr: r.addr,
                    offset: r.offset,
                    size: r.size,
                    exec: r.flags & 4 != 0,
                    has_bytes: r.kind != 8,
                })
            })
            .collect::<Result<_, String>>()?;
        let mut symbols = Vec::new();
        if let Some(symtab) = raw.iter().find(|r| r.kind == 2) {
            let strings = raw.get(symtab.link as usize).ok_or("symbol table without strings")?.offset;
            for i in 0..symtab.size / 24 {
                let s = symtab.offset + i * 24;
                let info = field(bytes, s + 4, 1)?;
                symbols.push(Symbol {
                    name: c_string(bytes, strings + field(bytes, s, 4)?)?,
                    value: field(bytes, s + 8, 8)?,
                    size: field(bytes, s + 16, 8)?,
                    func: info & 0xf == 2,
                    section: field(bytes, s + 6, 2)? as u16,
                });
            }
        }
        Ok(Self { bytes, sections, symbols })
    }

    /// The bytes of `section` (empty for `SHT_NOBITS`).
    pub fn section_bytes(&self, section: &Section) -> Result<&'a [u8], String> {
        if !section.has_bytes {
            return Ok(&[]);
        }
        let start = usize::try_from(section.offset).map_err(|_| "offset out of range")?;
        let end = start + usize::try_from(section.size).map_err(|_| "size out of range")?;
        self.bytes.get(start..end).ok_or_else(|| format!("section {} outside the file", section.name))
    }

    /// Every instruction word of the executable sections, with its address:
    /// the words of `$d` (data) regions left out.
    pub fn code_words(&self) -> Result<Vec<(u64, u32)>, String> {
        let mut words = Vec::new();
        for (index, section) in self.sections.iter().enumerate().filter(|(_, s)| s.exec) {
            let bytes = self.section_bytes(section)?;
            // Mapping symbols of this section, by address: `$x` starts code,
            // `$d` data. Before the first one, code.
            let mut marks: Vec<(u64, bool)> = self
                .symbols
                .iter()
                .filter(|s| usize::from(s.section) == index)
                .filter_map(|s| mapping_kind(&s.name).map(|code| (s.value, code)))
                .collect();
            marks.sort_by_key(|m| m.0);
            let mut mark = 0;
            let mut code = true;
            for (i, chunk) in bytes.chunks_exact(4).enumerate() {
                let addr = section.addr + i as u64 * 4;
                while mark < marks.len() && marks[mark].0 <= addr {
                    code = marks[mark].1;
                    mark += 1;
                }
                if code {
                    words.push((addr, u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])));
                }
            }
        }
        Ok(words)
    }

    /// The function (or, for assembly, the label) `addr` lies in: the
    /// function symbol that covers it, else the closest named symbol at or
    /// before it in the same executable section.
    pub fn symbol_at(&self, addr: u64) -> Option<&Symbol> {
        let named = |s: &&Symbol| !s.name.is_empty() && mapping_kind(&s.name).is_none();
        if let Some(f) =
            self.symbols.iter().filter(named).find(|s| s.func && s.value <= addr && addr - s.value < s.size)
        {
            return Some(f);
        }
        let section = self.sections.iter().position(|s| s.exec && s.addr <= addr && addr - s.addr < s.size)?;
        self.symbols
            .iter()
            .filter(named)
            .filter(|s| usize::from(s.section) == section && s.value <= addr)
            .max_by_key(|s| s.value)
    }
}

/// For an AArch64 mapping symbol (`$x`, `$d`, with an optional `.suffix`):
/// whether it starts code. `None` for any other name.
fn mapping_kind(name: &str) -> Option<bool> {
    let base = name.split('.').next().unwrap_or(name);
    match base {
        "$x" => Some(true),
        "$d" => Some(false),
        _ => None,
    }
}
