//! ELF64 executables for aarch64 Linux, turned into a load plan.
//!
//! [`ElfImage::parse`] takes a whole executable file (untrusted bytes: any
//! file of the initramfs), [`ElfImage::parse_headers`] only its file header
//! and program header table (a loader reads no more of it); each checks it
//! the way Linux's `load_elf_binary` does, returning a typed [`ElfError`]
//! that names the error number `execve` reports (`ENOEXEC` for "not an
//! executable we run", `EINVAL` for a broken segment), or, for what Linux
//! finds only after the caller's program is gone
//! ([`ElfError::kills_task`]), that the task is killed with SIGSEGV
//! instead. What it accepts is a plan: the loadable segments sorted by
//! address, the entry point, where the program headers are in memory (for
//! `AT_PHDR`) and whether the stack is executable.
//!
//! Two kinds of file are run: `ET_EXEC` (linked at fixed addresses) and
//! `ET_DYN` (position independent: a PIE, a static-pie, or a dynamic
//! linker such as glibc's `ld.so`), which is placed at a load bias chosen by
//! [`ElfImage::load_bias`] (or [`ElfImage::bias_for_first_page`]) and moved
//! there by [`ElfImage::relocated`]. A file that names an interpreter
//! (`PT_INTERP`, dynamic linking) says where its path lies in the file
//! ([`ElfImage::interpreter`]); [`interpreter_path`] checks the bytes read
//! from there, and [`ElfError::interpreter_errno`] says what a broken
//! interpreter means for `execve`.
//!
//! [`ElfImage::page_plan`] then says, for each segment, which pages to map
//! from the file, which bytes after the file data to zero, and which pages
//! to fill with zeros; [`ElfImage::initial_brk`] gives the program break.
//!
//! Aspen's rules beyond Linux's, all of which well-formed linker output
//! meets: at most [`MAX_PROGRAM_HEADERS`] program headers; a segment's file
//! bytes must lie inside the file; loadable segments may not share a page;
//! nothing is mapped in the first page ([`USER_ADDR_MIN`]), so that null
//! pointers always fault.

use alloc::vec::Vec;
use core::fmt;

use crate::{Errno, PAGE_SIZE, USER_ADDR_END};

/// `e_machine` of AArch64.
pub const EM_AARCH64: u16 = 183;
/// `e_type` of an executable linked at fixed addresses.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a position-independent file (static-pie when it has no
/// interpreter).
pub const ET_DYN: u16 = 3;

/// Program header type: a loadable segment.
pub const PT_LOAD: u32 = 1;
/// Program header type: the path of the dynamic linker.
pub const PT_INTERP: u32 = 3;
/// Program header type: the program header table itself.
pub const PT_PHDR: u32 = 6;
/// Program header type: the stack's permissions (its `PF_X` flag).
pub const PT_GNU_STACK: u32 = 0x6474_e551;

/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;
/// Segment flag: readable.
pub const PF_R: u32 = 4;

/// Size of the ELF64 file header.
pub const FILE_HEADER_SIZE: usize = 64;
/// Size of one ELF64 program header (`e_phentsize`, and `AT_PHENT`).
pub const PROGRAM_HEADER_SIZE: u16 = 56;
/// The most program headers Aspen reads (Linux allows up to 1170; linkers
/// emit about ten).
pub const MAX_PROGRAM_HEADERS: u16 = 64;

/// The longest interpreter path `PT_INTERP` may hold, its NUL included
/// (Linux's `PATH_MAX`).
pub const INTERPRETER_PATH_MAX: u64 = 4096;

/// The lowest address a segment may occupy: the first page stays unmapped.
pub const USER_ADDR_MIN: u64 = PAGE_SIZE;

/// A base for a static-pie's lowest segment: two thirds of the user address
/// space, page aligned, Linux's arm64 `ELF_ET_DYN_BASE` (`0xaaaa_aaaa_a000`,
/// lowered further to the file's alignment). Linux puts dynamically linked
/// PIEs there; it puts a static-pie (no interpreter) in the mmap area
/// instead (6.1 with `norandmaps`: at `0xffff_f7fd_0000` for a two-segment
/// file), which a caller gets by passing `mmap_base - mapping_size()` to
/// [`ElfImage::load_bias`]. Programs work at either.
pub const ELF_ET_DYN_BASE: u64 = align_down(USER_ADDR_END / 3 * 2, PAGE_SIZE);

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;

/// Why a file is not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The file is shorter than an ELF header.
    TooShort,
    /// The file does not start with `\x7fELF`.
    BadMagic,
    /// Not a 64-bit ELF file (`EI_CLASS`).
    NotElf64,
    /// Not little-endian (`EI_DATA`).
    NotLittleEndian,
    /// `EI_VERSION` or `e_version` is not 1.
    BadVersion,
    /// Neither `ET_EXEC` nor `ET_DYN`: the value found.
    NotExecutable(u16),
    /// Not built for AArch64: the `e_machine` found.
    WrongMachine(u16),
    /// `e_phentsize` is not 56: the value found.
    BadProgramHeaderSize(u16),
    /// No program headers, or more than [`MAX_PROGRAM_HEADERS`].
    BadProgramHeaderCount(u16),
    /// The program header table does not lie inside the file.
    ProgramHeadersOutOfFile,
    /// `PT_INTERP` holds fewer than 2 or more than
    /// [`INTERPRETER_PATH_MAX`] bytes, or bytes that do not end in a NUL.
    BadInterpreterPath,
    /// `PT_INTERP`'s bytes run past the end of the file (Linux's short
    /// read).
    InterpreterPathOutOfFile,
    /// No `PT_LOAD` segment occupies any memory.
    NoLoadableSegment,
    /// The segment (program header index) has more file bytes than memory.
    FileSizeExceedsMemSize(usize),
    /// The segment's file bytes run past the end of the file.
    SegmentOutOfFile(usize),
    /// The segment's address and file offset differ within a page, so it
    /// cannot be mapped from the file.
    MisalignedSegment(usize),
    /// The segment's address range wraps around the 64-bit address space.
    AddressOverflow(usize),
    /// The segment lies outside the user address range.
    SegmentOutOfRange(usize),
    /// Two segments (program header indices) occupy a common page.
    OverlappingSegments(usize, usize),
    /// The entry point is not a user address.
    EntryOutOfRange,
    /// The chosen load bias puts the image outside the user address range.
    LoadBaseOutOfRange,
}

impl ElfError {
    /// The error number `execve` returns for this.
    pub const fn errno(self) -> Errno {
        match self {
            ElfError::TooShort
            | ElfError::BadMagic
            | ElfError::NotElf64
            | ElfError::NotLittleEndian
            | ElfError::BadVersion
            | ElfError::NotExecutable(_)
            | ElfError::WrongMachine(_)
            | ElfError::BadProgramHeaderSize(_)
            | ElfError::BadProgramHeaderCount(_)
            | ElfError::ProgramHeadersOutOfFile
            | ElfError::BadInterpreterPath
            | ElfError::NoLoadableSegment
            | ElfError::SegmentOutOfFile(_) => Errno::ENOEXEC,
            ElfError::FileSizeExceedsMemSize(_)
            | ElfError::MisalignedSegment(_)
            | ElfError::AddressOverflow(_)
            | ElfError::SegmentOutOfRange(_)
            | ElfError::OverlappingSegments(_, _)
            | ElfError::EntryOutOfRange => Errno::EINVAL,
            ElfError::LoadBaseOutOfRange => Errno::ENOMEM,
            ElfError::InterpreterPathOutOfFile => Errno::EIO,
        }
    }

    /// What this error means when the file is the interpreter a program
    /// names (Linux's `load_elf_binary`, which checks less of an
    /// interpreter than of a program): `Some(errno)` when `execve` fails
    /// with that error (a file too short for its header `EIO`; not ELF, not
    /// AArch64 or an unreadable program header table `ELIBBAD`); `None` when
    /// Linux finds it only past its point of no return, in
    /// `load_elf_interp`, and the task is killed with SIGSEGV (a type other
    /// than `ET_EXEC`/`ET_DYN`, a segment it cannot map). Aspen's stricter
    /// checks of the identification bytes, which Linux does not make for an
    /// interpreter, are `ELIBBAD` too. An interpreter's own `PT_INTERP` is
    /// no error: Linux ignores it.
    pub const fn interpreter_errno(self) -> Option<Errno> {
        match self {
            ElfError::TooShort => Some(Errno::EIO),
            ElfError::BadMagic
            | ElfError::NotElf64
            | ElfError::NotLittleEndian
            | ElfError::BadVersion
            | ElfError::WrongMachine(_)
            | ElfError::BadProgramHeaderSize(_)
            | ElfError::BadProgramHeaderCount(_)
            | ElfError::ProgramHeadersOutOfFile => Some(Errno::ELIBBAD),
            ElfError::NotExecutable(_)
            | ElfError::BadInterpreterPath
            | ElfError::InterpreterPathOutOfFile
            | ElfError::NoLoadableSegment
            | ElfError::FileSizeExceedsMemSize(_)
            | ElfError::SegmentOutOfFile(_)
            | ElfError::MisalignedSegment(_)
            | ElfError::AddressOverflow(_)
            | ElfError::SegmentOutOfRange(_)
            | ElfError::OverlappingSegments(_, _)
            | ElfError::EntryOutOfRange
            | ElfError::LoadBaseOutOfRange => None,
        }
    }

    /// Whether Linux finds this only past `execve`'s point of no return
    /// (the caller's program already gone): a segment `load_elf_binary`
    /// refuses or cannot map, or an entry point outside user space. There
    /// `execve` does not fail; the task is killed with SIGSEGV.
    pub const fn kills_task(self) -> bool {
        matches!(
            self,
            ElfError::FileSizeExceedsMemSize(_)
                | ElfError::MisalignedSegment(_)
                | ElfError::AddressOverflow(_)
                | ElfError::SegmentOutOfRange(_)
                | ElfError::EntryOutOfRange
                | ElfError::LoadBaseOutOfRange
        )
    }
}

impl From<ElfError> for Errno {
    fn from(error: ElfError) -> Errno {
        error.errno()
    }
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ElfError::TooShort => f.write_str("file shorter than an ELF header"),
            ElfError::BadMagic => f.write_str("not an ELF file"),
            ElfError::NotElf64 => f.write_str("not a 64-bit ELF file"),
            ElfError::NotLittleEndian => f.write_str("not a little-endian ELF file"),
            ElfError::BadVersion => f.write_str("unknown ELF version"),
            ElfError::NotExecutable(t) => write!(f, "ELF type {t} is not an executable"),
            ElfError::WrongMachine(m) => write!(f, "ELF machine {m} is not AArch64"),
            ElfError::BadProgramHeaderSize(s) => write!(f, "program header size {s}, not 56"),
            ElfError::BadProgramHeaderCount(n) => write!(f, "{n} program headers"),
            ElfError::ProgramHeadersOutOfFile => f.write_str("program headers outside the file"),
            ElfError::BadInterpreterPath => f.write_str("PT_INTERP is not a NUL-terminated path of 2 to 4096 bytes"),
            ElfError::InterpreterPathOutOfFile => f.write_str("PT_INTERP past the end of the file"),
            ElfError::NoLoadableSegment => f.write_str("no loadable segment"),
            ElfError::FileSizeExceedsMemSize(i) => {
                write!(f, "segment {i}: file size exceeds memory size")
            }
            ElfError::SegmentOutOfFile(i) => write!(f, "segment {i}: past the end of the file"),
            ElfError::MisalignedSegment(i) => {
                write!(f, "segment {i}: address and offset differ within a page")
            }
            ElfError::AddressOverflow(i) => write!(f, "segment {i}: address range overflows"),
            ElfError::SegmentOutOfRange(i) => write!(f, "segment {i}: outside user memory"),
            ElfError::OverlappingSegments(a, b) => {
                write!(f, "segments {a} and {b} share a page")
            }
            ElfError::EntryOutOfRange => f.write_str("entry point outside user memory"),
            ElfError::LoadBaseOutOfRange => f.write_str("load base puts the image out of range"),
        }
    }
}

/// The two kinds of executable file Aspen runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: linked at fixed addresses; loaded with bias 0.
    Exec,
    /// `ET_DYN` (PIE, static-pie or a dynamic linker): addresses are
    /// relative and the loader chooses a bias.
    Dyn,
}

/// Access permissions of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permissions {
    /// `PF_R` / `PROT_READ`.
    pub readable: bool,
    /// `PF_W` / `PROT_WRITE`.
    pub writable: bool,
    /// `PF_X` / `PROT_EXEC`.
    pub executable: bool,
}

/// One loadable segment (`PT_LOAD` with a non-zero memory size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of its first byte.
    pub vaddr: u64,
    /// Bytes it occupies in memory (file bytes, then zeros).
    pub memsz: u64,
    /// Offset in the file of its file bytes.
    pub file_offset: u64,
    /// Bytes taken from the file (at most `memsz`).
    pub filesz: u64,
    /// `PF_R`.
    pub readable: bool,
    /// `PF_W`.
    pub writable: bool,
    /// `PF_X`.
    pub executable: bool,
}

impl Segment {
    /// The segment's permissions.
    pub const fn permissions(&self) -> Permissions {
        Permissions { readable: self.readable, writable: self.writable, executable: self.executable }
    }

    /// One past its last byte in memory.
    pub const fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// A checked executable: what to load and where to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfImage {
    /// Fixed-address or position-independent.
    pub kind: ElfKind,
    /// The entry point (relative to the load bias for [`ElfKind::Dyn`]).
    pub entry: u64,
    /// The loadable segments, sorted by address, no two sharing a page.
    pub segments: Vec<Segment>,
    /// Address of the program header table in memory, for `AT_PHDR`:
    /// `PT_PHDR` when it lies in a segment, else computed from the segment
    /// whose file bytes contain it; `None` when no segment loads it.
    pub phdr: Option<u64>,
    /// Size of one program header, for `AT_PHENT` (always 56).
    pub phent: u16,
    /// Number of program headers, for `AT_PHNUM`.
    pub phnum: u16,
    /// Whether `PT_GNU_STACK` asks for an executable stack (without it the
    /// stack is not executable, as Linux decides on arm64).
    pub stack_exec: bool,
    /// The largest power-of-two `p_align` of the loadable segments, at least
    /// [`PAGE_SIZE`]: a static-pie's load bias is a multiple of it.
    pub max_align: u64,
    /// Where the first `PT_INTERP` keeps the interpreter's path in the file
    /// (file offsets, inside the file, 2 to [`INTERPRETER_PATH_MAX`]
    /// bytes); `None` for a file that names no interpreter.
    pub interpreter: Option<core::ops::Range<u64>>,
}

/// A range of user addresses, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRange {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

impl AddrRange {
    /// Its length in bytes.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether it holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// A private file mapping: the pages `pages` show the file from
/// `file_offset` on. Bytes of the last page past the end of the file read as
/// zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMapping {
    /// Page-aligned addresses to map.
    pub pages: AddrRange,
    /// Page-aligned file offset shown at `pages.start`.
    pub file_offset: u64,
}

/// How to build one segment out of pages, in this order: map `file`, zero
/// `zero_tail` (inside the last file page), map `anonymous` zero-filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentPages {
    /// The segment planned; its permissions apply to every part.
    pub segment: Segment,
    /// The pages holding file bytes; `None` when `filesz` is 0.
    pub file: Option<FileMapping>,
    /// The bytes from `vaddr + filesz` to the end of that page, when the
    /// segment has zero-filled memory (`memsz > filesz`) that starts inside a
    /// file page (the "bss in the last file page" case). Linux zeroes them
    /// whatever the file holds there; Aspen does so for read-only segments
    /// too, where Linux's attempt silently fails.
    pub zero_tail: Option<AddrRange>,
    /// The zero-filled pages after the file pages, up to the end of the
    /// segment's last page; `None` when there are none.
    pub anonymous: Option<AddrRange>,
}

impl ElfImage {
    /// Checks a whole executable file and returns its load plan.
    pub fn parse(file: &[u8]) -> Result<ElfImage, ElfError> {
        let table = ElfImage::program_header_table(file)?;
        let bytes = usize::try_from(table.start)
            .ok()
            .zip(usize::try_from(table.end).ok())
            .and_then(|(start, end)| file.get(start..end))
            .ok_or(ElfError::ProgramHeadersOutOfFile)?;
        ElfImage::parse_headers(file, bytes, file.len() as u64)
    }

    /// Where the program header table lies in the file (file offsets), from
    /// the file's first bytes (at least [`FILE_HEADER_SIZE`]), so that a
    /// loader reads the headers only, not the whole file.
    pub fn program_header_table(head: &[u8]) -> Result<core::ops::Range<u64>, ElfError> {
        let header = FileHeader::parse(head)?;
        let table_len = u64::from(header.phnum) * u64::from(PROGRAM_HEADER_SIZE);
        let end = header.phoff.checked_add(table_len).ok_or(ElfError::ProgramHeadersOutOfFile)?;
        Ok(header.phoff..end)
    }

    /// Checks an executable from its first bytes `head` (at least
    /// [`FILE_HEADER_SIZE`]), its program header table `table` (the bytes
    /// [`ElfImage::program_header_table`] names) and its length, and returns
    /// its load plan.
    pub fn parse_headers(head: &[u8], table: &[u8], file_len: u64) -> Result<ElfImage, ElfError> {
        let header = FileHeader::parse(head)?;
        let table_len = u64::from(header.phnum) * u64::from(PROGRAM_HEADER_SIZE);
        if table.len() as u64 != table_len || header.phoff.checked_add(table_len).is_none_or(|end| end > file_len) {
            return Err(ElfError::ProgramHeadersOutOfFile);
        }

        let mut loads: Vec<(usize, Segment)> = Vec::new();
        let mut pt_phdr = None;
        let mut stack_exec = false;
        let mut max_align = PAGE_SIZE;
        let mut interpreter = None;
        for (index, raw) in table.chunks_exact(usize::from(PROGRAM_HEADER_SIZE)).enumerate() {
            let header_fields = ProgramHeader::parse(raw).ok_or(ElfError::ProgramHeadersOutOfFile)?;
            match header_fields.kind {
                // Linux takes the first and ignores the others.
                PT_INTERP if interpreter.is_none() => {
                    interpreter = Some(check_interpreter(&header_fields, file_len)?);
                }
                PT_PHDR => pt_phdr = Some(header_fields.vaddr),
                PT_GNU_STACK => stack_exec = header_fields.flags & PF_X != 0,
                PT_LOAD => {
                    let segment = check_load(&header_fields, index, file_len, header.kind)?;
                    if segment.memsz != 0 {
                        if header_fields.align.is_power_of_two() {
                            max_align = max_align.max(header_fields.align);
                        }
                        loads.push((index, segment));
                    }
                }
                _ => {}
            }
        }
        if loads.is_empty() {
            return Err(ElfError::NoLoadableSegment);
        }
        loads.sort_by_key(|(_, segment)| segment.vaddr);
        for pair in loads.windows(2) {
            if let [(first_index, first), (second_index, second)] = pair {
                if align_up(first.end()) > align_down(second.vaddr, PAGE_SIZE) {
                    return Err(ElfError::OverlappingSegments(*first_index, *second_index));
                }
            }
        }
        if header.entry >= USER_ADDR_END {
            return Err(ElfError::EntryOutOfRange);
        }
        let segments: Vec<Segment> = loads.into_iter().map(|(_, segment)| segment).collect();
        let phdr = phdr_address(pt_phdr, &header, &segments);
        Ok(ElfImage {
            kind: header.kind,
            entry: header.entry,
            segments,
            phdr,
            phent: PROGRAM_HEADER_SIZE,
            phnum: header.phnum,
            stack_exec,
            max_align,
            interpreter,
        })
    }

    /// The load bias: 0 for [`ElfKind::Exec`]; for [`ElfKind::Dyn`], the
    /// bias that puts the lowest segment at `dyn_base` lowered to a multiple
    /// of [`ElfImage::max_align`] (plus the segment's own offset within that
    /// alignment). Pass [`ELF_ET_DYN_BASE`] for Linux's placement without
    /// randomisation, or a base of the caller's choosing. The bias is added
    /// modulo 2^64 (it may be "negative"); [`ElfImage::relocated`] accepts
    /// it.
    pub fn load_bias(&self, dyn_base: u64) -> Result<u64, ElfError> {
        match self.kind {
            ElfKind::Exec => Ok(0),
            ElfKind::Dyn => {
                let lowest = self.segments.first().map_or(0, |segment| segment.vaddr);
                let bias = align_down(dyn_base, self.max_align).wrapping_sub(align_down(lowest, self.max_align));
                self.check_placement(bias)?;
                Ok(bias)
            }
        }
    }

    /// The bias that puts the first page of the lowest segment at the page
    /// `first_page` (where `mmap` found room for [`ElfImage::mapping_size`]
    /// bytes): how Linux places an interpreter. 0 for [`ElfKind::Exec`],
    /// which stays at its link addresses. Modulo 2^64, as
    /// [`ElfImage::load_bias`]; [`ElfImage::relocated`] checks it.
    pub fn bias_for_first_page(&self, first_page: u64) -> u64 {
        match self.kind {
            ElfKind::Exec => 0,
            ElfKind::Dyn => {
                let lowest = self.segments.first().map_or(0, |segment| segment.vaddr);
                align_down(first_page, PAGE_SIZE).wrapping_sub(align_down(lowest, PAGE_SIZE))
            }
        }
    }

    /// The image moved by `bias` (from [`ElfImage::load_bias`]): segments,
    /// entry point and program header address all shifted, each checked to
    /// stay inside the user address range.
    pub fn relocated(&self, bias: u64) -> Result<ElfImage, ElfError> {
        self.check_placement(bias)?;
        let entry = self.entry.wrapping_add(bias);
        let segments = self
            .segments
            .iter()
            .map(|segment| Segment { vaddr: segment.vaddr.wrapping_add(bias), ..*segment })
            .collect();
        Ok(ElfImage {
            kind: self.kind,
            entry,
            segments,
            phdr: self.phdr.map(|phdr| phdr.wrapping_add(bias)),
            phent: self.phent,
            phnum: self.phnum,
            stack_exec: self.stack_exec,
            max_align: self.max_align,
            interpreter: self.interpreter.clone(),
        })
    }

    /// The page-level plan of every segment, in address order.
    pub fn page_plan(&self) -> Vec<SegmentPages> {
        self.segments.iter().map(plan_segment).collect()
    }

    /// Bytes from the first page of the lowest segment to the end of the
    /// last page of the highest: the address space the image takes.
    pub fn mapping_size(&self) -> u64 {
        let lowest = self.segments.first().map_or(0, |segment| segment.vaddr);
        self.initial_brk().saturating_sub(align_down(lowest, PAGE_SIZE))
    }

    /// The initial program break: the end of the highest segment, rounded
    /// up to a page (Linux's `start_brk` without randomisation).
    pub fn initial_brk(&self) -> u64 {
        self.segments.iter().map(|segment| align_up(segment.end())).max().unwrap_or(0)
    }

    /// Checks that every segment moved by `bias` (modulo 2^64) lies in
    /// `[USER_ADDR_MIN, USER_ADDR_END)` and the entry point below
    /// `USER_ADDR_END`.
    fn check_placement(&self, bias: u64) -> Result<(), ElfError> {
        if self.entry.wrapping_add(bias) >= USER_ADDR_END {
            return Err(ElfError::EntryOutOfRange);
        }
        let fits = self.segments.iter().all(|segment| {
            let start = segment.vaddr.wrapping_add(bias);
            align_down(start, PAGE_SIZE) >= USER_ADDR_MIN
                && start.checked_add(segment.memsz).is_some_and(|end| align_up(end) <= USER_ADDR_END)
        });
        if fits {
            Ok(())
        } else {
            Err(ElfError::LoadBaseOutOfRange)
        }
    }
}

/// The fields of the ELF file header that loading uses.
struct FileHeader {
    kind: ElfKind,
    entry: u64,
    phoff: u64,
    phnum: u16,
}

impl FileHeader {
    fn parse(file: &[u8]) -> Result<FileHeader, ElfError> {
        let header = file.get(..FILE_HEADER_SIZE).ok_or(ElfError::TooShort)?;
        let field16 = |at| read_u16(header, at).ok_or(ElfError::TooShort);
        if header.get(..4) != Some(&ELF_MAGIC[..]) {
            return Err(ElfError::BadMagic);
        }
        if header.get(4) != Some(&ELFCLASS64) {
            return Err(ElfError::NotElf64);
        }
        if header.get(5) != Some(&ELFDATA2LSB) {
            return Err(ElfError::NotLittleEndian);
        }
        if header.get(6) != Some(&EV_CURRENT) {
            return Err(ElfError::BadVersion);
        }
        let kind = match field16(16)? {
            ET_EXEC => ElfKind::Exec,
            ET_DYN => ElfKind::Dyn,
            other => return Err(ElfError::NotExecutable(other)),
        };
        let machine = field16(18)?;
        if machine != EM_AARCH64 {
            return Err(ElfError::WrongMachine(machine));
        }
        if read_u32(header, 20) != Some(u32::from(EV_CURRENT)) {
            return Err(ElfError::BadVersion);
        }
        let phentsize = field16(54)?;
        if phentsize != PROGRAM_HEADER_SIZE {
            return Err(ElfError::BadProgramHeaderSize(phentsize));
        }
        let phnum = field16(56)?;
        if phnum == 0 || phnum > MAX_PROGRAM_HEADERS {
            return Err(ElfError::BadProgramHeaderCount(phnum));
        }
        Ok(FileHeader {
            kind,
            entry: read_u64(header, 24).ok_or(ElfError::TooShort)?,
            phoff: read_u64(header, 32).ok_or(ElfError::TooShort)?,
            phnum,
        })
    }
}

/// The fields of one program header.
struct ProgramHeader {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

impl ProgramHeader {
    fn parse(raw: &[u8]) -> Option<ProgramHeader> {
        Some(ProgramHeader {
            kind: read_u32(raw, 0)?,
            flags: read_u32(raw, 4)?,
            offset: read_u64(raw, 8)?,
            vaddr: read_u64(raw, 16)?,
            filesz: read_u64(raw, 32)?,
            memsz: read_u64(raw, 40)?,
            align: read_u64(raw, 48)?,
        })
    }
}

/// Checks one `PT_LOAD` (program header `index`) of a file of `file_len`
/// bytes, as Linux's loader and `mmap` would.
fn check_load(header: &ProgramHeader, index: usize, file_len: u64, kind: ElfKind) -> Result<Segment, ElfError> {
    if header.filesz > header.memsz {
        return Err(ElfError::FileSizeExceedsMemSize(index));
    }
    header.offset.checked_add(header.filesz).filter(|&end| end <= file_len).ok_or(ElfError::SegmentOutOfFile(index))?;
    if header.vaddr % PAGE_SIZE != header.offset % PAGE_SIZE {
        return Err(ElfError::MisalignedSegment(index));
    }
    let end = header
        .vaddr
        .checked_add(header.memsz)
        .filter(|end| *end <= u64::MAX - (PAGE_SIZE - 1))
        .ok_or(ElfError::AddressOverflow(index))?;
    let lowest = match kind {
        ElfKind::Exec => USER_ADDR_MIN,
        ElfKind::Dyn => 0,
    };
    if align_down(header.vaddr, PAGE_SIZE) < lowest || align_up(end) > USER_ADDR_END {
        return Err(ElfError::SegmentOutOfRange(index));
    }
    Ok(Segment {
        vaddr: header.vaddr,
        memsz: header.memsz,
        file_offset: header.offset,
        filesz: header.filesz,
        readable: header.flags & PF_R != 0,
        writable: header.flags & PF_W != 0,
        executable: header.flags & PF_X != 0,
    })
}

/// Checks a `PT_INTERP` header as Linux does: 2 to [`INTERPRETER_PATH_MAX`]
/// bytes, inside the file; returns their file range.
fn check_interpreter(header: &ProgramHeader, file_len: u64) -> Result<core::ops::Range<u64>, ElfError> {
    if !(2..=INTERPRETER_PATH_MAX).contains(&header.filesz) {
        return Err(ElfError::BadInterpreterPath);
    }
    let end = header
        .offset
        .checked_add(header.filesz)
        .filter(|&end| end <= file_len)
        .ok_or(ElfError::InterpreterPathOutOfFile)?;
    Ok(header.offset..end)
}

/// The interpreter's path from the bytes of `PT_INTERP`
/// ([`ElfImage::interpreter`]): they must end in a NUL, and the path is what
/// comes before the first NUL (Linux opens it as a C string).
pub fn interpreter_path(raw: &[u8]) -> Result<&[u8], ElfError> {
    if raw.len() < 2 || raw.last() != Some(&0) {
        return Err(ElfError::BadInterpreterPath);
    }
    Ok(raw.split(|&byte| byte == 0).next().unwrap_or_default())
}

/// Where the program header table is in memory: `PT_PHDR`'s address when
/// the table lies inside a segment there, else the address at which the
/// segment whose file bytes hold the table shows it.
fn phdr_address(pt_phdr: Option<u64>, header: &FileHeader, segments: &[Segment]) -> Option<u64> {
    let table_len = u64::from(header.phnum) * u64::from(PROGRAM_HEADER_SIZE);
    let declared = pt_phdr.filter(|&vaddr| {
        vaddr
            .checked_add(table_len)
            .is_some_and(|end| segments.iter().any(|segment| segment.vaddr <= vaddr && end <= segment.end()))
    });
    declared.or_else(|| {
        let table_end = header.phoff.checked_add(table_len)?;
        segments.iter().find_map(|segment| {
            let file_end = segment.file_offset.checked_add(segment.filesz)?;
            if segment.file_offset <= header.phoff && table_end <= file_end {
                segment.vaddr.checked_add(header.phoff - segment.file_offset)
            } else {
                None
            }
        })
    })
}

/// The page plan of one segment.
fn plan_segment(segment: &Segment) -> SegmentPages {
    let first_page = align_down(segment.vaddr, PAGE_SIZE);
    let file_data_end = segment.vaddr.saturating_add(segment.filesz);
    let mem_end = align_up(segment.end());
    let (file, zero_tail, anonymous_start) = if segment.filesz == 0 {
        (None, None, first_page)
    } else {
        let file_pages_end = align_up(file_data_end);
        let file = FileMapping {
            pages: AddrRange { start: first_page, end: file_pages_end },
            file_offset: align_down(segment.file_offset, PAGE_SIZE),
        };
        let zero_tail = (segment.memsz > segment.filesz && file_pages_end > file_data_end)
            .then_some(AddrRange { start: file_data_end, end: file_pages_end });
        (Some(file), zero_tail, file_pages_end)
    };
    let anonymous = (mem_end > anonymous_start).then_some(AddrRange { start: anonymous_start, end: mem_end });
    SegmentPages { segment: *segment, file, zero_tail, anonymous }
}

/// `addr` rounded down to a multiple of `align` (a power of two).
const fn align_down(addr: u64, align: u64) -> u64 {
    addr & !align.wrapping_sub(1)
}

/// `addr` rounded up to a page boundary, saturating at the last page.
const fn align_up(addr: u64) -> u64 {
    align_down(addr.saturating_add(PAGE_SIZE - 1), PAGE_SIZE)
}

fn read_array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    read_array(bytes, at).map(u16::from_le_bytes)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    read_array(bytes, at).map(u32::from_le_bytes)
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    read_array(bytes, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests;
