//! Tests of the ELF loader's checks and plans, on small files that a builder
//! here writes byte by byte (the real toolchain output is checked by
//! `tests/peer_binaries.rs`).

use super::*;
use alloc::vec;
use proptest::prelude::*;

/// One program header to write.
#[derive(Clone, Copy, Debug)]
struct Ph {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

impl Ph {
    fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
        Ph { kind: PT_LOAD, flags, offset, vaddr, filesz, memsz, align: 0x1000 }
    }

    fn other(kind: u32, flags: u32, offset: u64, vaddr: u64, size: u64) -> Ph {
        Ph { kind, flags, offset, vaddr, filesz: size, memsz: size, align: 8 }
    }
}

const RX: u32 = PF_R | PF_X;
const RW: u32 = PF_R | PF_W;

/// An ELF file of at least `len` bytes: the header, the program headers
/// right after it (at offset 64), zeros elsewhere.
fn elf_file(e_type: u16, entry: u64, phdrs: &[Ph], len: usize) -> Vec<u8> {
    let table_end = FILE_HEADER_SIZE + phdrs.len() * usize::from(PROGRAM_HEADER_SIZE);
    let mut file = vec![0u8; len.max(table_end)];
    put(&mut file, 0, &ELF_MAGIC);
    put(&mut file, 4, &[ELFCLASS64, ELFDATA2LSB, EV_CURRENT]);
    put(&mut file, 16, &e_type.to_le_bytes());
    put(&mut file, 18, &EM_AARCH64.to_le_bytes());
    put(&mut file, 20, &1u32.to_le_bytes());
    put(&mut file, 24, &entry.to_le_bytes());
    put(&mut file, 32, &(FILE_HEADER_SIZE as u64).to_le_bytes());
    put(&mut file, 52, &(FILE_HEADER_SIZE as u16).to_le_bytes());
    put(&mut file, 54, &PROGRAM_HEADER_SIZE.to_le_bytes());
    put(&mut file, 56, &(phdrs.len() as u16).to_le_bytes());
    for (index, ph) in phdrs.iter().enumerate() {
        let at = FILE_HEADER_SIZE + index * usize::from(PROGRAM_HEADER_SIZE);
        put(&mut file, at, &ph.kind.to_le_bytes());
        put(&mut file, at + 4, &ph.flags.to_le_bytes());
        put(&mut file, at + 8, &ph.offset.to_le_bytes());
        put(&mut file, at + 16, &ph.vaddr.to_le_bytes());
        put(&mut file, at + 24, &ph.vaddr.to_le_bytes());
        put(&mut file, at + 32, &ph.filesz.to_le_bytes());
        put(&mut file, at + 40, &ph.memsz.to_le_bytes());
        put(&mut file, at + 48, &ph.align.to_le_bytes());
    }
    file
}

fn put(file: &mut [u8], at: usize, bytes: &[u8]) {
    file[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A file shaped like the peer's `cow_isolation`: text with the headers at
/// 0x400000, data with 8 file bytes and bss in its last file page.
fn static_exec() -> Vec<u8> {
    elf_file(
        ET_EXEC,
        0x4004d4,
        &[
            Ph::load(RX, 0, 0x40_0000, 0x129f, 0x129f),
            Ph::load(RW, 0x12a0, 0x40_22a0, 8, 0x220),
            Ph::other(PT_GNU_STACK, RW, 0, 0, 0),
        ],
        0x12a8,
    )
}

/// A static-pie shaped like `gcc -static-pie` output: relative addresses
/// from 0, 64 KiB alignment, a `PT_PHDR`.
fn static_pie() -> Vec<u8> {
    elf_file(
        ET_DYN,
        0x1f0,
        &[
            Ph::other(PT_PHDR, PF_R, 64, 64, 4 * 56),
            Ph { align: 0x1_0000, ..Ph::load(RX, 0, 0, 0x300, 0x300) },
            Ph { align: 0x1_0000, ..Ph::load(RW, 0xfd8, 0x1_0fd8, 0x30, 0x48) },
            Ph::other(PT_GNU_STACK, RW, 0, 0, 0),
        ],
        0x1008,
    )
}

fn parse_err(file: &[u8]) -> ElfError {
    ElfImage::parse(file).expect_err("the file should be refused")
}

#[test]
fn static_executable_plan() {
    let image = ElfImage::parse(&static_exec()).unwrap();
    assert_eq!(image.kind, ElfKind::Exec);
    assert_eq!(image.entry, 0x4004d4);
    assert_eq!(image.phdr, Some(0x40_0040), "computed from the text segment");
    assert_eq!((image.phent, image.phnum), (56, 3));
    assert!(!image.stack_exec);
    assert_eq!(image.max_align, PAGE_SIZE);
    assert_eq!(
        image.segments,
        vec![
            Segment {
                vaddr: 0x40_0000,
                memsz: 0x129f,
                file_offset: 0,
                filesz: 0x129f,
                readable: true,
                writable: false,
                executable: true,
            },
            Segment {
                vaddr: 0x40_22a0,
                memsz: 0x220,
                file_offset: 0x12a0,
                filesz: 8,
                readable: true,
                writable: true,
                executable: false,
            },
        ]
    );
    assert_eq!(image.initial_brk(), 0x40_3000);
    assert_eq!(image.mapping_size(), 0x3000);
    assert_eq!(image.load_bias(ELF_ET_DYN_BASE), Ok(0));
    assert_eq!(image.relocated(0).as_ref(), Ok(&image));
}

#[test]
fn page_plan_of_text_and_data_with_bss_in_the_last_file_page() {
    let image = ElfImage::parse(&static_exec()).unwrap();
    let plan = image.page_plan();
    assert_eq!(plan.len(), 2);
    assert_eq!(
        plan[0].file,
        Some(FileMapping { pages: AddrRange { start: 0x40_0000, end: 0x40_2000 }, file_offset: 0 })
    );
    assert_eq!(plan[0].zero_tail, None, "no bss: the page keeps the file's bytes");
    assert_eq!(plan[0].anonymous, None);
    assert_eq!(plan[0].segment.permissions(), Permissions { readable: true, writable: false, executable: true });
    assert_eq!(
        plan[1].file,
        Some(FileMapping { pages: AddrRange { start: 0x40_2000, end: 0x40_3000 }, file_offset: 0x1000 })
    );
    assert_eq!(plan[1].zero_tail, Some(AddrRange { start: 0x40_22a8, end: 0x40_3000 }));
    assert_eq!(plan[1].anonymous, None, "the bss ends inside the file page");
}

#[test]
fn page_plan_of_bss_spanning_pages() {
    let file = elf_file(
        ET_EXEC,
        0x40_0000,
        &[Ph::load(RX, 0, 0x40_0000, 0x100, 0x100), Ph::load(RW, 0x1010, 0x41_1010, 0x20, 0x3000)],
        0x1030,
    );
    let plan = ElfImage::parse(&file).unwrap().page_plan();
    assert_eq!(
        plan[1].file,
        Some(FileMapping { pages: AddrRange { start: 0x41_1000, end: 0x41_2000 }, file_offset: 0x1000 })
    );
    assert_eq!(plan[1].zero_tail, Some(AddrRange { start: 0x41_1030, end: 0x41_2000 }));
    assert_eq!(plan[1].anonymous, Some(AddrRange { start: 0x41_2000, end: 0x41_5000 }));
}

#[test]
fn page_plan_of_bss_only_and_page_aligned_file_end() {
    let file = elf_file(
        ET_EXEC,
        0x40_0000,
        &[
            Ph::load(RX, 0, 0x40_0000, 0x2000, 0x2000),
            // Like mmbench: a data segment with no file bytes at all.
            Ph::load(RW, 0x910, 0x40_2910, 0, 0x220),
            // File bytes ending on a page boundary, then bss.
            Ph::load(RW, 0x1000, 0x50_0000, 0x1000, 0x1800),
        ],
        0x2000,
    );
    let plan = ElfImage::parse(&file).unwrap().page_plan();
    assert_eq!(plan[1].file, None);
    assert_eq!(plan[1].zero_tail, None);
    assert_eq!(plan[1].anonymous, Some(AddrRange { start: 0x40_2000, end: 0x40_3000 }));
    assert_eq!(plan[2].zero_tail, None, "the file data fills its last page");
    assert_eq!(plan[2].anonymous, Some(AddrRange { start: 0x50_1000, end: 0x50_2000 }));
}

#[test]
fn read_only_segment_with_bss_gets_its_tail_zeroed() {
    let file = elf_file(ET_EXEC, 0x40_0000, &[Ph::load(PF_R, 0, 0x40_0000, 0x100, 0x200)], 0x100);
    let plan = ElfImage::parse(&file).unwrap().page_plan();
    assert_eq!(plan[0].zero_tail, Some(AddrRange { start: 0x40_0100, end: 0x40_1000 }));
}

#[test]
fn static_pie_is_placed_at_the_dyn_base() {
    let image = ElfImage::parse(&static_pie()).unwrap();
    assert_eq!(image.kind, ElfKind::Dyn);
    assert_eq!(image.max_align, 0x1_0000);
    assert_eq!(image.phdr, Some(64), "from PT_PHDR");
    assert_eq!(image.initial_brk(), 0x1_2000);
    assert_eq!(image.mapping_size(), 0x1_2000);
    // Below an mmap base, as Linux places a static-pie.
    let mmap_base = 0xffff_f7ff_f000;
    let bias = image.load_bias(mmap_base - image.mapping_size()).unwrap();
    assert_eq!(bias, 0xffff_f7fe_0000, "lowered to the 64 KiB alignment");
    assert!(image.relocated(bias).unwrap().initial_brk() <= mmap_base);
    let bias = image.load_bias(ELF_ET_DYN_BASE).unwrap();
    assert_eq!(ELF_ET_DYN_BASE, 0xaaaa_aaaa_a000);
    assert_eq!(bias, 0xaaaa_aaaa_0000, "lowered to the 64 KiB alignment");
    let placed = image.relocated(bias).unwrap();
    assert_eq!(placed.entry, 0xaaaa_aaaa_01f0);
    assert_eq!(placed.phdr, Some(0xaaaa_aaaa_0040));
    assert_eq!(placed.segments[0].vaddr, 0xaaaa_aaaa_0000);
    assert_eq!(placed.segments[1].vaddr, 0xaaaa_aaab_0fd8);
    assert_eq!(placed.segments[1].file_offset, 0xfd8);
    assert_eq!(placed.initial_brk(), 0xaaaa_aaab_2000);
    let plan = placed.page_plan();
    assert_eq!(
        plan[1].file,
        Some(FileMapping { pages: AddrRange { start: 0xaaaa_aaab_0000, end: 0xaaaa_aaab_2000 }, file_offset: 0 })
    );
    assert_eq!(plan[1].zero_tail, Some(AddrRange { start: 0xaaaa_aaab_1008, end: 0xaaaa_aaab_2000 }));
}

#[test]
fn static_pie_placement_must_stay_in_user_memory() {
    let image = ElfImage::parse(&static_pie()).unwrap();
    assert_eq!(image.load_bias(0), Err(ElfError::LoadBaseOutOfRange), "page 0");
    assert_eq!(image.load_bias(USER_ADDR_END - 0x1_0000), Err(ElfError::LoadBaseOutOfRange));
    assert_eq!(image.load_bias(USER_ADDR_END - 0x2_0000), Ok(USER_ADDR_END - 0x2_0000));
    assert_eq!(image.relocated(u64::MAX), Err(ElfError::LoadBaseOutOfRange));
    assert_eq!(ElfError::LoadBaseOutOfRange.errno(), Errno::ENOMEM);
}

#[test]
fn static_pie_not_linked_at_zero_keeps_its_offset_within_the_alignment() {
    let file = elf_file(ET_DYN, 0x2_0000, &[Ph { align: 0x1_0000, ..Ph::load(RX, 0, 0x2_0000, 0x100, 0x100) }], 0x100);
    let image = ElfImage::parse(&file).unwrap();
    let bias = image.load_bias(0x10_0000).unwrap();
    let placed = image.relocated(bias).unwrap();
    assert_eq!(placed.segments[0].vaddr, 0x10_0000);
    assert_eq!(placed.entry, 0x10_0000);
    // A "negative" bias: linked above where it is placed.
    let file = elf_file(ET_DYN, 0x80_0000, &[Ph::load(RX, 0, 0x80_0000, 0x100, 0x100)], 0x100);
    let image = ElfImage::parse(&file).unwrap();
    let bias = image.load_bias(0x1_0000).unwrap();
    assert_eq!(image.relocated(bias).unwrap().segments[0].vaddr, 0x1_0000);
}

#[test]
fn relocated_entry_must_stay_in_user_memory() {
    let file = elf_file(ET_DYN, 0xffff_0000_0000, &[Ph::load(RX, 0, 0, 0x100, 0x100)], 0x100);
    let image = ElfImage::parse(&file).unwrap();
    assert_eq!(image.relocated(USER_ADDR_END - 0x1_0000), Err(ElfError::EntryOutOfRange));
    assert_eq!(image.load_bias(USER_ADDR_END - 0x1_0000), Err(ElfError::EntryOutOfRange));
}

#[test]
fn declared_phdr_outside_every_segment_falls_back_to_the_file_offset() {
    let file = elf_file(
        ET_EXEC,
        0x40_0000,
        &[Ph::other(PT_PHDR, PF_R, 64, 0x90_0000, 2 * 56), Ph::load(RX, 0, 0x40_0000, 0x200, 0x200)],
        0x200,
    );
    assert_eq!(ElfImage::parse(&file).unwrap().phdr, Some(0x40_0040));
}

#[test]
fn phdr_is_absent_when_no_segment_loads_the_table() {
    let file = elf_file(ET_EXEC, 0x40_1000, &[Ph::load(RX, 0x1000, 0x40_1000, 0x100, 0x100)], 0x1100);
    assert_eq!(ElfImage::parse(&file).unwrap().phdr, None);
}

#[test]
fn executable_stack_is_taken_from_gnu_stack() {
    let mut phdrs = vec![Ph::load(RX, 0, 0x40_0000, 0x100, 0x100), Ph::other(PT_GNU_STACK, RW | PF_X, 0, 0, 0)];
    assert!(ElfImage::parse(&elf_file(ET_EXEC, 0x40_0000, &phdrs, 0x100)).unwrap().stack_exec);
    phdrs.pop();
    assert!(!ElfImage::parse(&elf_file(ET_EXEC, 0x40_0000, &phdrs, 0x100)).unwrap().stack_exec);
}

#[test]
fn segments_are_sorted_and_empty_ones_ignored() {
    let file = elf_file(
        ET_EXEC,
        0x40_0000,
        &[
            Ph::load(RW, 0x100, 0x50_0100, 0x10, 0x10),
            Ph::load(RW, 0, 0x70_0000, 0, 0),
            Ph::load(RX, 0, 0x40_0000, 0x100, 0x100),
        ],
        0x110,
    );
    let image = ElfImage::parse(&file).unwrap();
    let addresses: Vec<u64> = image.segments.iter().map(|segment| segment.vaddr).collect();
    assert_eq!(addresses, vec![0x40_0000, 0x50_0100]);
}

#[test]
fn alignment_that_is_not_a_power_of_two_is_ignored() {
    let file = elf_file(
        ET_DYN,
        0,
        &[
            Ph { align: 0x3000, ..Ph::load(RX, 0, 0, 0x100, 0x100) },
            Ph { align: 0x20_0000, ..Ph::load(RW, 0, 0x20_0000, 0x100, 0x100) },
        ],
        0x100,
    );
    assert_eq!(ElfImage::parse(&file).unwrap().max_align, 0x20_0000);
}

#[test]
fn header_refusals() {
    let good = static_exec();
    let with = |at: usize, bytes: &[u8]| {
        let mut file = good.clone();
        put(&mut file, at, bytes);
        file
    };
    assert_eq!(parse_err(&good[..63]), ElfError::TooShort);
    assert_eq!(parse_err(&[]), ElfError::TooShort);
    assert_eq!(parse_err(&with(0, b"\x7fELG")), ElfError::BadMagic);
    assert_eq!(parse_err(&with(4, &[1])), ElfError::NotElf64);
    assert_eq!(parse_err(&with(5, &[2])), ElfError::NotLittleEndian);
    assert_eq!(parse_err(&with(6, &[0])), ElfError::BadVersion);
    assert_eq!(parse_err(&with(20, &2u32.to_le_bytes())), ElfError::BadVersion);
    assert_eq!(parse_err(&with(16, &1u16.to_le_bytes())), ElfError::NotExecutable(1));
    assert_eq!(parse_err(&with(16, &4u16.to_le_bytes())), ElfError::NotExecutable(4));
    assert_eq!(parse_err(&with(18, &62u16.to_le_bytes())), ElfError::WrongMachine(62));
    assert_eq!(parse_err(&with(54, &32u16.to_le_bytes())), ElfError::BadProgramHeaderSize(32));
    assert_eq!(parse_err(&with(56, &0u16.to_le_bytes())), ElfError::BadProgramHeaderCount(0));
    assert_eq!(parse_err(&with(56, &65u16.to_le_bytes())), ElfError::BadProgramHeaderCount(65));
    assert_eq!(parse_err(&good[..64 + 3 * 56 - 1]), ElfError::ProgramHeadersOutOfFile);
    assert_eq!(parse_err(&with(32, &u64::MAX.to_le_bytes())), ElfError::ProgramHeadersOutOfFile);
    assert_eq!(parse_err(&with(32, &0x12a0u64.to_le_bytes())), ElfError::ProgramHeadersOutOfFile);
    assert_eq!(parse_err(&with(24, &USER_ADDR_END.to_le_bytes())), ElfError::EntryOutOfRange);
    for error in [
        ElfError::TooShort,
        ElfError::BadMagic,
        ElfError::WrongMachine(62),
        ElfError::BadProgramHeaderCount(0),
        ElfError::ProgramHeadersOutOfFile,
    ] {
        assert_eq!(Errno::from(error), Errno::ENOEXEC);
    }
    assert_eq!(ElfError::EntryOutOfRange.errno(), Errno::EINVAL);
}

/// A PIE shaped like Debian's busybox: `PT_INTERP` at 0x238 naming
/// `/lib/ld-linux-aarch64.so.1`, text and data 64 KiB aligned.
fn dynamic_pie(interp_len: u64, file_len: usize) -> Vec<u8> {
    let mut file = elf_file(
        ET_DYN,
        0xd040,
        &[
            Ph::other(PT_PHDR, PF_R, 0x40, 0x40, 0x118),
            Ph::other(PT_INTERP, PF_R, 0x238, 0x238, interp_len),
            Ph { align: 0x1_0000, ..Ph::load(RX, 0, 0, 0xc5f7c, 0xc5f7c) },
            Ph { align: 0x1_0000, ..Ph::load(RW, 0xccb68, 0xdcb68, 0x3728, 0x3ea0) },
        ],
        file_len,
    );
    let path = b"/lib/ld-linux-aarch64.so.1\0";
    let end = (0x238 + path.len()).min(file.len());
    file[0x238..end].copy_from_slice(&path[..end - 0x238]);
    file
}

#[test]
fn a_dynamically_linked_pie_names_its_interpreter() {
    let file = dynamic_pie(0x1b, 0xd0290);
    let image = ElfImage::parse(&file).unwrap();
    assert_eq!(image.kind, ElfKind::Dyn);
    assert_eq!(image.interpreter, Some(0x238..0x253));
    let raw = &file[0x238..0x253];
    assert_eq!(interpreter_path(raw), Ok(&b"/lib/ld-linux-aarch64.so.1"[..]));
    // Placed as Linux places a PIE with an interpreter: at ELF_ET_DYN_BASE
    // lowered to its 64 KiB alignment.
    let bias = image.load_bias(ELF_ET_DYN_BASE).unwrap();
    assert_eq!(bias, 0xaaaa_aaaa_0000);
    let moved = image.relocated(bias).unwrap();
    assert_eq!(moved.entry, 0xaaaa_aaaa_d040);
    assert_eq!(moved.phdr, Some(0xaaaa_aaaa_0040));
    assert_eq!(moved.initial_brk(), 0xaaaa_aab8_1000);
    assert_eq!(moved.interpreter, image.interpreter, "file offsets do not move");
}

#[test]
fn interpreter_paths_are_checked_as_linux_does() {
    // 2..=PATH_MAX bytes, else ENOEXEC.
    for len in [0, 1, INTERPRETER_PATH_MAX + 1] {
        assert_eq!(ElfImage::parse(&dynamic_pie(len, 0xd0290 + 0x1000)), Err(ElfError::BadInterpreterPath), "{len}");
    }
    assert!(ElfImage::parse(&dynamic_pie(INTERPRETER_PATH_MAX, 0xd0290)).is_ok());
    assert_eq!(ElfError::BadInterpreterPath.errno(), Errno::ENOEXEC);
    // Bytes past the end of the file: Linux's short read, EIO.
    let headers_only = dynamic_pie(0x1b, 0x240);
    let table = ElfImage::program_header_table(&headers_only).unwrap();
    let bytes = &headers_only[table.start as usize..table.end as usize];
    assert_eq!(ElfImage::parse_headers(&headers_only, bytes, 0x240), Err(ElfError::InterpreterPathOutOfFile));
    assert_eq!(ElfError::InterpreterPathOutOfFile.errno(), Errno::EIO);
    // The path must end in a NUL; it is the C string before the first one.
    assert_eq!(interpreter_path(b"/lib/ld.so"), Err(ElfError::BadInterpreterPath));
    assert_eq!(interpreter_path(b"\0"), Err(ElfError::BadInterpreterPath));
    assert_eq!(interpreter_path(b"/a\0b\0"), Ok(&b"/a"[..]));
    assert_eq!(interpreter_path(b"\0\0"), Ok(&b""[..]));
}

#[test]
fn only_the_first_interpreter_counts() {
    let file = elf_file(
        ET_DYN,
        0,
        &[
            Ph::other(PT_INTERP, PF_R, 0x100, 0x100, 4),
            Ph::other(PT_INTERP, PF_R, 0x108, 0x108, 0),
            Ph::load(RX, 0, 0, 0x200, 0x200),
        ],
        0x200,
    );
    assert_eq!(ElfImage::parse(&file).unwrap().interpreter, Some(0x100..0x104));
}

#[test]
fn a_broken_interpreter_is_elibbad_or_kills_the_task() {
    assert_eq!(ElfError::TooShort.interpreter_errno(), Some(Errno::EIO));
    for error in [
        ElfError::BadMagic,
        ElfError::WrongMachine(62),
        ElfError::BadProgramHeaderSize(32),
        ElfError::BadProgramHeaderCount(0),
        ElfError::ProgramHeadersOutOfFile,
    ] {
        assert_eq!(error.interpreter_errno(), Some(Errno::ELIBBAD), "{error}");
    }
    // What Linux's load_elf_interp finds, past the point of no return.
    for error in [
        ElfError::NotExecutable(1),
        ElfError::NoLoadableSegment,
        ElfError::MisalignedSegment(0),
        ElfError::LoadBaseOutOfRange,
    ] {
        assert_eq!(error.interpreter_errno(), None, "{error}");
    }
}

#[test]
fn an_interpreter_is_placed_where_mmap_found_room() {
    let ld_so = elf_file(
        ET_DYN,
        0x1ae40,
        &[
            Ph { align: 0x1_0000, ..Ph::load(RX, 0, 0, 0x262e0, 0x262e0) },
            Ph { align: 0x1_0000, ..Ph::load(RW, 0x2ece8, 0x3ece8, 0x24e8, 0x2690) },
        ],
        0x31200,
    );
    let image = ElfImage::parse(&ld_so).unwrap();
    assert_eq!(image.interpreter, None);
    assert_eq!(image.mapping_size(), 0x42000);
    let bias = image.bias_for_first_page(0xffff_effb_e000);
    assert_eq!(bias, 0xffff_effb_e000);
    assert_eq!(image.relocated(bias).unwrap().entry, 0xffff_effd_8e40);
    // An ET_EXEC interpreter stays where it was linked.
    assert_eq!(ElfImage::parse(&static_exec()).unwrap().bias_for_first_page(0x7000_0000), 0);
}

fn one_load(e_type: u16, ph: Ph, len: usize) -> ElfError {
    parse_err(&elf_file(e_type, 0x40_0000, &[ph], len))
}

#[test]
fn segment_refusals() {
    assert_eq!(one_load(ET_EXEC, Ph::load(RW, 0, 0x40_0000, 0x200, 0x100), 0x200), ElfError::FileSizeExceedsMemSize(0));
    assert_eq!(one_load(ET_EXEC, Ph::load(RW, 0, 0x40_0000, 0x201, 0x300), 0x200), ElfError::SegmentOutOfFile(0));
    assert_eq!(one_load(ET_EXEC, Ph::load(RW, u64::MAX, 0x40_0fff, 1, 1), 0x200), ElfError::SegmentOutOfFile(0));
    assert_eq!(one_load(ET_EXEC, Ph::load(RW, 0x10, 0x40_0000, 0x10, 0x10), 0x200), ElfError::MisalignedSegment(0));
    assert_eq!(
        one_load(ET_EXEC, Ph::load(RW, 0, 0xffff_ffff_ffff_f000, 0, 0x2000), 0x200),
        ElfError::AddressOverflow(0)
    );
    assert_eq!(
        one_load(ET_EXEC, Ph::load(RW, 0, 0xffff_ffff_ffff_e000, 0, 0x1001), 0x200),
        ElfError::AddressOverflow(0)
    );
    assert_eq!(one_load(ET_EXEC, Ph::load(RW, 0, USER_ADDR_END, 0, 0x10), 0x200), ElfError::SegmentOutOfRange(0));
    assert_eq!(
        one_load(ET_EXEC, Ph::load(RW, 0, USER_ADDR_END - 0x1000, 0, 0x1001), 0x200),
        ElfError::SegmentOutOfRange(0)
    );
    assert_eq!(
        one_load(ET_EXEC, Ph::load(RW, 0x10, 0x10, 0, 0x10), 0x200),
        ElfError::SegmentOutOfRange(0),
        "page 0 stays unmapped"
    );
    assert_eq!(
        one_load(ET_DYN, Ph::load(RW, 0, USER_ADDR_END - 0x1000, 0, 0x1001), 0x200),
        ElfError::SegmentOutOfRange(0)
    );
    assert!(ElfImage::parse(&elf_file(
        ET_EXEC,
        0x40_0000,
        &[Ph::load(RW, 0, USER_ADDR_END - 0x1000, 0, 0x1000)],
        0x200
    ))
    .is_ok());
    assert_eq!(
        parse_err(&elf_file(ET_EXEC, 0, &[Ph::other(PT_GNU_STACK, RW, 0, 0, 0)], 0x200)),
        ElfError::NoLoadableSegment
    );
    assert_eq!(one_load(ET_EXEC, Ph::load(RW, 0, 0x40_0000, 0, 0), 0x200), ElfError::NoLoadableSegment);
    assert_eq!(ElfError::SegmentOutOfFile(0).errno(), Errno::ENOEXEC);
    assert_eq!(ElfError::MisalignedSegment(0).errno(), Errno::EINVAL);
    assert_eq!(ElfError::FileSizeExceedsMemSize(0).errno(), Errno::EINVAL);
}

#[test]
fn segments_sharing_a_page_are_refused() {
    let overlap = |second: Ph| {
        ElfImage::parse(&elf_file(ET_EXEC, 0x40_0000, &[Ph::load(RX, 0, 0x40_0000, 0x100, 0x1800), second], 0x2000))
    };
    // Overlapping bytes.
    assert_eq!(overlap(Ph::load(RW, 0x1000, 0x40_1000, 0x10, 0x10)), Err(ElfError::OverlappingSegments(0, 1)));
    // Disjoint bytes in a common page.
    assert_eq!(overlap(Ph::load(RW, 0x1900, 0x40_1900, 0x10, 0x10)), Err(ElfError::OverlappingSegments(0, 1)));
    // Listed first but higher up: still found.
    assert_eq!(
        ElfImage::parse(&elf_file(
            ET_EXEC,
            0x40_0000,
            &[Ph::load(RW, 0x1900, 0x40_1900, 0x10, 0x10), Ph::load(RX, 0, 0x40_0000, 0x100, 0x1800)],
            0x2000,
        )),
        Err(ElfError::OverlappingSegments(1, 0))
    );
    assert!(overlap(Ph::load(RW, 0x1000, 0x40_2000, 0x10, 0x10)).is_ok());
}

#[test]
fn errors_display_their_cause() {
    use alloc::string::ToString;
    assert_eq!(ElfError::OverlappingSegments(1, 2).to_string(), "segments 1 and 2 share a page");
    assert_eq!(ElfError::WrongMachine(62).to_string(), "ELF machine 62 is not AArch64");
}

/// Checks what every accepted image promises.
fn check_invariants(image: &ElfImage, file_len: usize) {
    assert!(!image.segments.is_empty());
    for segment in &image.segments {
        assert!(segment.filesz <= segment.memsz && segment.memsz > 0);
        assert!(segment.file_offset + segment.filesz <= file_len as u64);
        assert!(align_up(segment.end()) <= USER_ADDR_END);
        assert_eq!(segment.vaddr % PAGE_SIZE, segment.file_offset % PAGE_SIZE);
    }
    for pair in image.segments.windows(2) {
        assert!(align_up(pair[0].end()) <= align_down(pair[1].vaddr, PAGE_SIZE));
    }
    for pages in image.page_plan() {
        check_pages(&pages);
    }
    assert_eq!(image.initial_brk() % PAGE_SIZE, 0);
    assert!(image.initial_brk() >= image.segments.last().unwrap().end());
}

/// Checks that a segment's pages cover exactly its pages, in order.
fn check_pages(pages: &SegmentPages) {
    let segment = pages.segment;
    let mut next = align_down(segment.vaddr, PAGE_SIZE);
    if let Some(file) = pages.file {
        assert_eq!(file.pages.start, next);
        assert_eq!(file.pages.end, align_up(segment.vaddr + segment.filesz));
        assert_eq!(file.file_offset % PAGE_SIZE, 0);
        assert_eq!(file.file_offset, segment.file_offset - (segment.vaddr - next));
        next = file.pages.end;
    }
    if let Some(zero) = pages.zero_tail {
        assert!(pages.file.is_some());
        assert_eq!(zero.start, segment.vaddr + segment.filesz);
        assert_eq!(zero.end, next);
        assert!(!zero.is_empty() && zero.len() < PAGE_SIZE);
    }
    if let Some(anonymous) = pages.anonymous {
        assert_eq!(anonymous.start, next);
        assert!(!anonymous.is_empty());
        next = anonymous.end;
    }
    assert_eq!(next, align_up(segment.end()));
}

/// Program headers that a loader should accept: ascending, page-separated
/// segments whose file bytes fit in a file of `file_len` bytes.
fn valid_loads() -> impl Strategy<Value = (Vec<Ph>, usize)> {
    prop::collection::vec((0u64..4, 0u64..0x3000, 0u64..0x3000, 0u64..0x2000, 0u32..8), 1..6).prop_map(|parts| {
        let mut phdrs = Vec::new();
        let mut vaddr = 0x40_0000u64;
        let mut offset = 0u64;
        for (gap_pages, in_page, filesz, extra, flags) in parts {
            let page_offset = in_page % PAGE_SIZE;
            vaddr = align_up(vaddr) + gap_pages * PAGE_SIZE + page_offset;
            offset = align_up(offset) + page_offset;
            phdrs.push(Ph::load(flags, offset, vaddr, filesz, filesz + extra + 1));
            vaddr += filesz + extra + 1;
            offset += filesz;
        }
        (phdrs, offset as usize)
    })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(image) = ElfImage::parse(&bytes) {
            check_invariants(&image, bytes.len());
        }
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        phnum in 0u16..8,
        table in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut file = elf_file(ET_EXEC, 0x40_0000, &[], 0);
        put(&mut file, 56, &phnum.to_le_bytes());
        file.extend_from_slice(&table);
        if let Ok(image) = ElfImage::parse(&file) {
            check_invariants(&image, file.len());
            let _ = image.load_bias(ELF_ET_DYN_BASE);
        }
    }

    #[test]
    fn corrupted_valid_files_never_panic(
        flips in prop::collection::vec((0usize..400, any::<u8>()), 1..8),
        dyn_base in any::<u64>(),
    ) {
        for mut file in [static_exec(), static_pie()] {
            let len = file.len();
            for (at, value) in &flips {
                file[at % len] = *value;
            }
            if let Ok(image) = ElfImage::parse(&file) {
                check_invariants(&image, len);
                if let Ok(bias) = image.load_bias(dyn_base) {
                    let placed = image.relocated(bias).unwrap();
                    check_invariants(&placed, len);
                    prop_assert!(align_down(placed.segments[0].vaddr, PAGE_SIZE) >= USER_ADDR_MIN);
                }
            }
        }
    }

    #[test]
    fn well_formed_files_are_accepted_and_planned((phdrs, len) in valid_loads(), pie in any::<bool>()) {
        let e_type = if pie { ET_DYN } else { ET_EXEC };
        let file = elf_file(e_type, 0x40_0000, &phdrs, len);
        let image = ElfImage::parse(&file).unwrap();
        prop_assert_eq!(image.segments.len(), phdrs.len());
        check_invariants(&image, file.len());
        let bias = image.load_bias(ELF_ET_DYN_BASE).unwrap();
        prop_assert_eq!(bias == 0, !pie);
        let placed = image.relocated(bias).unwrap();
        check_invariants(&placed, file.len());
        prop_assert_eq!(placed.initial_brk(), image.initial_brk().wrapping_add(bias));
    }
}

#[test]
fn headers_alone_give_the_whole_file_plan() {
    let file = static_exec();
    let table = ElfImage::program_header_table(&file).unwrap();
    assert_eq!(table, 64..64 + 3 * 56);
    let head = &file[..FILE_HEADER_SIZE];
    let bytes = &file[table.start as usize..table.end as usize];
    assert_eq!(ElfImage::parse_headers(head, bytes, file.len() as u64), ElfImage::parse(&file));
    // A file far larger than any buffer: only its length is needed.
    let mut big = elf_file(ET_EXEC, 0x40_0000, &[Ph::load(RX, 0, 0x40_0000, 0x4000_0000, 0x4000_0000)], 0x1000);
    let table = ElfImage::program_header_table(&big).unwrap();
    let bytes = big[table.start as usize..table.end as usize].to_vec();
    big.truncate(FILE_HEADER_SIZE);
    let image = ElfImage::parse_headers(&big, &bytes, 0x4000_0000).unwrap();
    assert_eq!(image.segments[0].filesz, 0x4000_0000);
    assert_eq!(
        ElfImage::parse_headers(&big, &bytes, 0x3fff_ffff),
        Err(ElfError::SegmentOutOfFile(0)),
        "segment bytes past the file's length"
    );
    assert_eq!(
        ElfImage::parse_headers(&big, &bytes[..55], 0x4000_0000),
        Err(ElfError::ProgramHeadersOutOfFile),
        "a short table"
    );
    assert_eq!(ElfImage::parse_headers(&big, &bytes, 100), Err(ElfError::ProgramHeadersOutOfFile));
}

#[test]
fn what_linux_finds_past_the_point_of_no_return_kills_the_task() {
    let kills = [
        ElfError::FileSizeExceedsMemSize(0),
        ElfError::MisalignedSegment(0),
        ElfError::AddressOverflow(0),
        ElfError::SegmentOutOfRange(0),
        ElfError::EntryOutOfRange,
        ElfError::LoadBaseOutOfRange,
    ];
    assert!(kills.iter().all(|e| e.kills_task()));
    let refusals = [
        ElfError::TooShort,
        ElfError::BadMagic,
        ElfError::WrongMachine(62),
        ElfError::BadInterpreterPath,
        ElfError::SegmentOutOfFile(0),
        ElfError::OverlappingSegments(0, 1),
    ];
    assert!(refusals.iter().all(|e| !e.kills_task()));
    let kernel_entry = elf_file(ET_EXEC, 0xffff_0000_0000_1000, &[Ph::load(RX, 0, 0x40_0000, 0x100, 0x100)], 0x100);
    assert!(parse_err(&kernel_entry).kills_task());
}
