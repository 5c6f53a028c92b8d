//! Tests of the initial stack: every image is parsed back the way a libc
//! start routine reads it, and checked word by word.

use super::*;
use alloc::vec;
use proptest::prelude::*;

/// The stack as a program sees it.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    auxv: Vec<(u64, u64)>,
    /// Address of argv[0]'s string (Linux's `mm->arg_start`).
    arg_start: u64,
}

/// Reads an image back, checking the layout rules as it goes.
fn parse(stack: &InitialStack, top: u64) -> Parsed {
    let sp = stack.initial_sp;
    let bytes = &stack.bytes;
    assert_eq!(sp % 16, 0, "sp is 16-byte aligned");
    assert_eq!(sp + bytes.len() as u64, top, "the image ends at the stack top");
    assert_eq!(&bytes[bytes.len() - 8..], &[0; 8], "8 zero bytes at the top");
    let word = |addr: u64| {
        let at = (addr - sp) as usize;
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    };
    let string = |addr: u64| {
        let at = (addr - sp) as usize;
        let len = bytes[at..].iter().position(|&b| b == 0).expect("NUL-terminated");
        bytes[at..at + len].to_vec()
    };
    let mut cursor = sp;
    let mut next_word = || {
        let value = word(cursor);
        cursor += 8;
        value
    };
    let argc = next_word();
    let argv_ptrs: Vec<u64> = (0..argc).map(|_| next_word()).collect();
    assert_eq!(next_word(), 0, "argv ends with NULL");
    let mut envp_ptrs = Vec::new();
    loop {
        match next_word() {
            0 => break,
            ptr => envp_ptrs.push(ptr),
        }
    }
    let mut auxv = Vec::new();
    loop {
        let key = next_word();
        let value = next_word();
        auxv.push((key, value));
        if key == AT_NULL {
            assert_eq!(value, 0);
            break;
        }
    }
    let auxv_end = cursor;

    // Strings lie back to back: argv, envp, the file name, 8 zero bytes.
    let mut expected_ptr = argv_ptrs[0];
    for ptr in argv_ptrs.iter().chain(&envp_ptrs) {
        assert_eq!(*ptr, expected_ptr, "strings are contiguous");
        expected_ptr += string(*ptr).len() as u64 + 1;
    }
    let value_of = |key: u64| auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).unwrap();
    let execfn = value_of(AT_EXECFN);
    assert_eq!(execfn, expected_ptr, "the file name follows the environment");
    assert_eq!(execfn + string(execfn).len() as u64 + 1 + 8, top);

    // Below the strings: alignment, platform string, random bytes, a gap.
    let arg_start = argv_ptrs[0];
    let platform = value_of(AT_PLATFORM);
    assert_eq!(platform, (arg_start & !15) - 8);
    assert_eq!(string(platform), PLATFORM);
    let random = value_of(AT_RANDOM);
    assert_eq!(random, platform - 16);
    assert!(auxv_end <= random && random - auxv_end < 16, "at most 15 bytes of padding");

    Parsed {
        argv: argv_ptrs.iter().map(|&p| string(p)).collect(),
        envp: envp_ptrs.iter().map(|&p| string(p)).collect(),
        auxv,
        arg_start,
    }
}

fn random_bytes(stack: &InitialStack, parsed: &Parsed) -> [u8; 16] {
    let random = parsed.auxv.iter().find(|(k, _)| *k == AT_RANDOM).unwrap().1;
    let at = (random - stack.initial_sp) as usize;
    stack.bytes[at..at + 16].try_into().unwrap()
}

fn sample_aux() -> AuxValues {
    AuxValues {
        phdr: 0x40_0040,
        phent: 56,
        phnum: 3,
        base: 0,
        flags: 0,
        entry: 0x40_04d4,
        uid: 1,
        euid: 2,
        gid: 3,
        egid: 4,
        hwcap: 0xff,
        hwcap2: 0x2,
        clock_ticks: 100,
        secure: false,
        min_signal_stack: 4720,
    }
}

const TOP: u64 = 0x0000_ffff_ffff_f000;

#[test]
fn golden_layout_of_a_small_stack() {
    let args = ExecArgs { argv: &[b"a"], envp: &[], execfn: b"/a", random: [7; 16], limit: ARG_MAX };
    let stack = build_initial_stack(0x1_0000, &args, &sample_aux()).unwrap();
    // execfn at 0xfff5, "a" at 0xfff3, aligned to 0xfff0, platform at
    // 0xffe8, random at 0xffd8; 20 auxv pairs (320 bytes) and 4 words below.
    assert_eq!(stack.initial_sp, 0xfe70);
    let parsed = parse(&stack, 0x1_0000);
    assert_eq!(parsed.arg_start, 0xfff3);
    assert_eq!(
        parsed.auxv,
        vec![
            (AT_MINSIGSTKSZ, 4720),
            (AT_HWCAP, 0xff),
            (AT_PAGESZ, 4096),
            (AT_CLKTCK, 100),
            (AT_PHDR, 0x40_0040),
            (AT_PHENT, 56),
            (AT_PHNUM, 3),
            (AT_BASE, 0),
            (AT_FLAGS, 0),
            (AT_ENTRY, 0x40_04d4),
            (AT_UID, 1),
            (AT_EUID, 2),
            (AT_GID, 3),
            (AT_EGID, 4),
            (AT_SECURE, 0),
            (AT_RANDOM, 0xffd8),
            (AT_HWCAP2, 2),
            (AT_EXECFN, 0xfff5),
            (AT_PLATFORM, 0xffe8),
            (AT_NULL, 0),
        ]
    );
    assert_eq!(random_bytes(&stack, &parsed), [7; 16]);
    // auxv ends at 0xfe90 + 320 = 0xffd0: 8 bytes of padding below random.
    assert_eq!(&stack.bytes[0xffd0 - 0xfe70..0xffd8 - 0xfe70], &[0; 8]);
}

#[test]
fn arguments_and_environment_round_trip() {
    let args = ExecArgs {
        argv: &[b"/bin/cow_isolation", b"-v", b""],
        envp: &[b"HOME=/", b"TERM=linux"],
        execfn: b"/bin/cow_isolation",
        random: *b"0123456789abcdef",
        limit: ARG_MAX,
    };
    let aux = AuxValues { secure: true, ..sample_aux() };
    let stack = build_initial_stack(TOP, &args, &aux).unwrap();
    let parsed = parse(&stack, TOP);
    assert_eq!(parsed.argv, vec![b"/bin/cow_isolation".to_vec(), b"-v".to_vec(), vec![]]);
    assert_eq!(parsed.envp, vec![b"HOME=/".to_vec(), b"TERM=linux".to_vec()]);
    assert!(parsed.auxv.contains(&(AT_SECURE, 1)));
    assert_eq!(random_bytes(&stack, &parsed), *b"0123456789abcdef");
}

#[test]
fn empty_argv_gets_an_empty_argv0() {
    let args = ExecArgs { argv: &[], envp: &[b"A=1"], execfn: b"/init", random: [0; 16], limit: ARG_MAX };
    let stack = build_initial_stack(TOP, &args, &sample_aux()).unwrap();
    let parsed = parse(&stack, TOP);
    assert_eq!(parsed.argv, vec![Vec::<u8>::new()]);
    assert_eq!(parsed.envp, vec![b"A=1".to_vec()]);
}

#[test]
fn unaligned_stack_top_still_gives_an_aligned_sp() {
    for top in [0x1_0001u64, 0x1_0007, 0x1_000f] {
        let args = ExecArgs { argv: &[b"x"], envp: &[], execfn: b"x", random: [0; 16], limit: ARG_MAX };
        let stack = build_initial_stack(top, &args, &sample_aux()).unwrap();
        parse(&stack, top);
    }
}

#[test]
fn argument_list_limit() {
    let aux = sample_aux();
    // One argument of `len` bytes, an empty file name: len + 1 + 1 string
    // bytes and one pointer.
    let build = |len: usize| {
        let long = vec![b'x'; len];
        let argv: [&[u8]; 1] = [&long];
        let args = ExecArgs { argv: &argv, envp: &[], execfn: b"", random: [0; 16], limit: ARG_MAX };
        build_initial_stack(TOP, &args, &aux)
    };
    let at_limit = ARG_MAX - 10;
    assert!(build(at_limit).is_ok());
    assert_eq!(build(at_limit + 1), Err(StackError::ArgumentsTooLong));
    assert_eq!(StackError::ArgumentsTooLong.errno(), Errno::E2BIG);
    // Many empty strings count their pointers too.
    let many = vec![&b""[..]; ARG_MAX / 9 + 1];
    let args = ExecArgs { argv: &many, envp: &[], execfn: b"", random: [0; 16], limit: ARG_MAX };
    assert_eq!(build_initial_stack(TOP, &args, &aux), Err(StackError::ArgumentsTooLong));
    // Under the default 8 MiB stack limit: 100,000 arguments fit.
    let many = vec![&b"x"[..]; 100_000];
    let args = ExecArgs { argv: &many, envp: &[], execfn: b"", random: [0; 16], limit: arg_limit(8 << 20) };
    let stack = build_initial_stack(1 << 40, &args, &aux).unwrap();
    assert_eq!(parse(&stack, 1 << 40).argv.len(), 100_000);
}

#[test]
fn the_limit_follows_the_stack_limit_as_linux() {
    assert_eq!(arg_limit(8 << 20), 2 << 20);
    assert_eq!(arg_limit(0), ARG_MAX);
    assert_eq!(arg_limit(256 << 10), ARG_MAX);
    assert_eq!(arg_limit(64 << 20), 6 << 20);
    assert_eq!(arg_limit(u64::MAX), 6 << 20);
}

#[test]
fn refusals() {
    let aux = sample_aux();
    let with = |argv: &[&[u8]], envp: &[&[u8]], execfn: &[u8], top: u64| {
        let args = ExecArgs { argv, envp, execfn, random: [0; 16], limit: ARG_MAX };
        build_initial_stack(top, &args, &aux)
    };
    assert_eq!(with(&[b"a\0b"], &[], b"a", TOP), Err(StackError::StringContainsNul));
    assert_eq!(with(&[b"a"], &[b"\0"], b"a", TOP), Err(StackError::StringContainsNul));
    assert_eq!(with(&[b"a"], &[], b"/a\0", TOP), Err(StackError::StringContainsNul));
    assert_eq!(StackError::StringContainsNul.errno(), Errno::EINVAL);
    for top in [0, 5, 100, 300] {
        assert_eq!(with(&[b"a"], &[], b"a", top), Err(StackError::DoesNotFit));
    }
    assert_eq!(Errno::from(StackError::DoesNotFit), Errno::EFAULT);
}

/// The initial stack Linux 6.1 (Debian's arm64 kernel under QEMU virt,
/// booted with `norandmaps`) gave a static `/init`, read from `sp` to the
/// top of user memory (2^48) by the program itself.
const LINUX_6_1_INIT_STACK: [&str; 15] = [
    "0100000000000000daffffffffff00000000000000000000e0ffffffffff0000",
    "e7ffffffffff00000000000000000000210000000000000000f0fff7ffff0000",
    "330000000000000070120000000000001000000000000000ff08000000000000",
    "0600000000000000001000000000000011000000000000006400000000000000",
    "0300000000000000400040000000000004000000000000003800000000000000",
    "0500000000000000030000000000000007000000000000000000000000000000",
    "080000000000000000000000000000000900000000000000f000400000000000",
    "0b0000000000000000000000000000000c000000000000000000000000000000",
    "0d0000000000000000000000000000000e000000000000000000000000000000",
    "170000000000000000000000000000001900000000000000b8ffffffffff0000",
    "1a0000000000000000000000000000001f00000000000000f2ffffffffff0000",
    "0f00000000000000c8ffffffffff000000000000000000000000000000000000",
    "0000000000000000a5f04b6ee48a58635b4f63c9f231794f6161726368363400",
    "000000000000000000002f696e697400484f4d453d2f005445524d3d6c696e75",
    "78002f696e6974000000000000000000",
];

#[test]
fn matches_a_stack_built_by_linux() {
    let linux: Vec<u8> = LINUX_6_1_INIT_STACK
        .concat()
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect();
    let top = 1u64 << 48;
    let linux_sp = top - linux.len() as u64;
    assert_eq!(linux_sp, 0xffff_ffff_fe30);
    let random_at = (0xffff_ffff_ffb8 - linux_sp) as usize;
    let args = ExecArgs {
        argv: &[b"/init"],
        envp: &[b"HOME=/", b"TERM=linux"],
        execfn: b"/init",
        random: linux[random_at..random_at + 16].try_into().unwrap(),
        limit: ARG_MAX,
    };
    let aux = AuxValues {
        phdr: 0x40_0040,
        phent: 56,
        phnum: 3,
        entry: 0x40_00f0,
        hwcap: 0x8ff,
        clock_ticks: 100,
        min_signal_stack: crate::signal::SIGNAL_FRAME_MAX,
        ..AuxValues::default()
    };
    let ours = build_initial_stack(top, &args, &aux).unwrap();
    // Linux starts its auxv (after argc, 1 argv and 2 envp pointers and
    // their NULLs: 6 words) with AT_SYSINFO_EHDR (the vDSO), which Aspen
    // does not give: 16 bytes, so sp is 16 higher and every other byte is
    // the same (AT_MINSIGSTKSZ's 4720 too).
    let auxv_at = 6 * 8;
    assert_eq!(&linux[auxv_at..auxv_at + 8], &33u64.to_le_bytes());
    let mut linux_without = linux[..auxv_at].to_vec();
    linux_without.extend_from_slice(&linux[auxv_at + 16..]);
    assert_eq!(ours.initial_sp, linux_sp + 16);
    assert_eq!(ours.bytes, linux_without);
}

fn strings(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(1u8..=255, 0..40), 0..max)
}

proptest! {
    #[test]
    fn random_arguments_parse_back_exactly(
        argv in strings(12),
        envp in strings(12),
        execfn in prop::collection::vec(1u8..=255, 0..64),
        random in any::<[u8; 16]>(),
        top in 0x1_0000u64..crate::USER_ADDR_END,
        aux_words in any::<[u64; 12]>(),
        secure in any::<bool>(),
    ) {
        let argv_refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let envp_refs: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
        let args = ExecArgs { argv: &argv_refs, envp: &envp_refs, execfn: &execfn, random, limit: ARG_MAX };
        let [phdr, phent, phnum, base, flags, entry, uid, euid, gid, egid, hwcap, hwcap2] =
            aux_words;
        let aux = AuxValues {
            phdr, phent, phnum, base, flags, entry, uid, euid, gid, egid, hwcap, hwcap2,
            clock_ticks: 100,
            secure,
            min_signal_stack: 4720,
        };
        let stack = build_initial_stack(top, &args, &aux).unwrap();
        let parsed = parse(&stack, top);
        let expected_argv = if argv.is_empty() { vec![vec![]] } else { argv.clone() };
        prop_assert_eq!(&parsed.argv, &expected_argv);
        prop_assert_eq!(&parsed.envp, &envp);
        prop_assert_eq!(random_bytes(&stack, &parsed), random);
        let keys: Vec<u64> = parsed.auxv.iter().map(|(k, _)| *k).collect();
        prop_assert_eq!(keys, vec![
            AT_MINSIGSTKSZ, AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR, AT_PHENT, AT_PHNUM, AT_BASE, AT_FLAGS,
            AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_RANDOM, AT_HWCAP2,
            AT_EXECFN, AT_PLATFORM, AT_NULL,
        ]);
        let values: Vec<u64> = parsed.auxv.iter().map(|(_, v)| *v).collect();
        prop_assert_eq!(&values[4..15], &[
            phdr, phent, phnum, base, flags, entry, uid, euid, gid, egid, u64::from(secure),
        ]);
        prop_assert_eq!((values[0], values[1], values[16]), (4720, hwcap, hwcap2));
    }

    #[test]
    fn arbitrary_strings_and_tops_never_panic(
        argv in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..4),
        top in any::<u64>(),
    ) {
        let argv_refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let args = ExecArgs { argv: &argv_refs, envp: &argv_refs, execfn: b"x", random: [0; 16], limit: ARG_MAX };
        if let Ok(stack) = build_initial_stack(top, &args, &AuxValues::default()) {
            parse(&stack, top);
        }
    }
}
