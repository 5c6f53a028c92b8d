//! Loads real static aarch64 binaries, when `ASPEN_PEER_BIN` names a
//! directory of them (the Linux peer harness's `build/bin`), and checks
//! their load plans against the files. Without the variable it checks
//! nothing. Run with `--nocapture` to see each plan.

use std::{env, fs, path::Path};

use aspen_abi::elf::{ElfImage, ElfKind, ELF_ET_DYN_BASE, PROGRAM_HEADER_SIZE};
use aspen_abi::stack::{build_initial_stack, AuxValues, ExecArgs};

#[test]
fn peer_binaries_load() {
    let Some(dir) = env::var_os("ASPEN_PEER_BIN") else {
        println!("ASPEN_PEER_BIN not set: no peer binaries checked");
        return;
    };
    let mut paths: Vec<_> = fs::read_dir(&dir)
        .expect("ASPEN_PEER_BIN is a directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no files in {}", Path::new(&dir).display());
    for path in paths {
        let file = fs::read(&path).unwrap();
        let image = ElfImage::parse(&file).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let bias = image.load_bias(ELF_ET_DYN_BASE).unwrap();
        let placed = image.relocated(bias).unwrap();
        println!(
            "{}: {:?} entry {:#x} bias {:#x} phdr {:x?} phnum {} stack_exec {} brk {:#x}",
            path.file_name().unwrap().to_string_lossy(),
            placed.kind,
            placed.entry,
            bias,
            placed.phdr,
            placed.phnum,
            placed.stack_exec,
            placed.initial_brk()
        );
        for pages in placed.page_plan() {
            let s = pages.segment;
            println!(
                "  {:#x}+{:#x} file {:#x}+{:#x} {}{}{}  map {:x?} zero {:x?} anon {:x?}",
                s.vaddr,
                s.memsz,
                s.file_offset,
                s.filesz,
                if s.readable { 'r' } else { '-' },
                if s.writable { 'w' } else { '-' },
                if s.executable { 'x' } else { '-' },
                pages.file.map(|f| (f.pages.start, f.pages.end, f.file_offset)),
                pages.zero_tail.map(|z| (z.start, z.end)),
                pages.anonymous.map(|a| (a.start, a.end)),
            );
        }
        assert_eq!(bias == 0, placed.kind == ElfKind::Exec);
        assert!(
            placed.segments.iter().any(|s| s.executable && s.vaddr <= placed.entry && placed.entry < s.vaddr + s.memsz),
            "the entry point is in an executable segment"
        );

        // AT_PHDR points at a copy of the program header table.
        let phdr = placed.phdr.expect("the program headers are loaded");
        let holder = placed.segments.iter().find(|s| s.vaddr <= phdr && phdr < s.vaddr + s.filesz).unwrap();
        let at = (holder.file_offset + (phdr - holder.vaddr)) as usize;
        let phoff = u64::from_le_bytes(file[32..40].try_into().unwrap()) as usize;
        let table_len = usize::from(placed.phnum) * usize::from(PROGRAM_HEADER_SIZE);
        assert_eq!(&file[at..at + table_len], &file[phoff..phoff + table_len]);

        let aux = AuxValues {
            phdr,
            phent: u64::from(placed.phent),
            phnum: u64::from(placed.phnum),
            entry: placed.entry,
            clock_ticks: 100,
            ..AuxValues::default()
        };
        let name = path.to_string_lossy().into_owned();
        let args = ExecArgs {
            argv: &[name.as_bytes()],
            envp: &[b"HOME=/"],
            execfn: name.as_bytes(),
            random: [0x5a; 16],
            limit: aspen_abi::stack::ARG_MAX,
        };
        let stack = build_initial_stack(0xffff_ffff_f000, &args, &aux).unwrap();
        assert_eq!(stack.initial_sp % 16, 0);
    }
}
