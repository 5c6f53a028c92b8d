//! Tests of the system call numbers and structures against the values and
//! layouts of aarch64 Linux.

use super::*;
use alloc::vec;
use proptest::prelude::*;

const QEMU_VIRT_HZ: NonZeroU64 = NonZeroU64::new(62_500_000).unwrap();
const PI4_HZ: NonZeroU64 = NonZeroU64::new(54_000_000).unwrap();

fn hz(frequency: u64) -> NonZeroU64 {
    NonZeroU64::new(frequency).unwrap()
}

#[test]
fn system_call_numbers_are_aarch64_linux_ones() {
    let expected = [
        ("getcwd", 17),
        ("dup", 23),
        ("dup3", 24),
        ("fcntl", 25),
        ("ioctl", 29),
        ("mkdirat", 34),
        ("unlinkat", 35),
        ("symlinkat", 36),
        ("linkat", 37),
        ("renameat", 38),
        ("umount2", 39),
        ("mount", 40),
        ("statfs", 43),
        ("fstatfs", 44),
        ("truncate", 45),
        ("ftruncate", 46),
        ("faccessat", 48),
        ("chdir", 49),
        ("fchdir", 50),
        ("fchmod", 52),
        ("fchmodat", 53),
        ("fchownat", 54),
        ("fchown", 55),
        ("openat", 56),
        ("close", 57),
        ("pipe2", 59),
        ("getdents64", 61),
        ("lseek", 62),
        ("read", 63),
        ("write", 64),
        ("readv", 65),
        ("writev", 66),
        ("sendfile", 71),
        ("pselect6", 72),
        ("ppoll", 73),
        ("readlinkat", 78),
        ("newfstatat", 79),
        ("fstat", 80),
        ("fsync", 82),
        ("fdatasync", 83),
        ("utimensat", 88),
        ("exit", 93),
        ("exit_group", 94),
        ("waitid", 95),
        ("set_tid_address", 96),
        ("futex", 98),
        ("set_robust_list", 99),
        ("get_robust_list", 100),
        ("nanosleep", 101),
        ("getitimer", 102),
        ("setitimer", 103),
        ("timer_create", 107),
        ("timer_gettime", 108),
        ("timer_getoverrun", 109),
        ("timer_settime", 110),
        ("timer_delete", 111),
        ("clock_gettime", 113),
        ("clock_getres", 114),
        ("clock_nanosleep", 115),
        ("sched_setparam", 118),
        ("sched_setscheduler", 119),
        ("sched_getscheduler", 120),
        ("sched_getparam", 121),
        ("sched_setaffinity", 122),
        ("sched_getaffinity", 123),
        ("sched_yield", 124),
        ("sched_get_priority_max", 125),
        ("sched_get_priority_min", 126),
        ("sched_rr_get_interval", 127),
        ("kill", 129),
        ("tkill", 130),
        ("tgkill", 131),
        ("sigaltstack", 132),
        ("rt_sigsuspend", 133),
        ("rt_sigaction", 134),
        ("rt_sigprocmask", 135),
        ("rt_sigpending", 136),
        ("rt_sigtimedwait", 137),
        ("rt_sigqueueinfo", 138),
        ("rt_sigreturn", 139),
        ("reboot", 142),
        ("setregid", 143),
        ("setgid", 144),
        ("setreuid", 145),
        ("setuid", 146),
        ("setresuid", 147),
        ("getresuid", 148),
        ("setresgid", 149),
        ("getresgid", 150),
        ("setpgid", 154),
        ("getpgid", 155),
        ("getsid", 156),
        ("setsid", 157),
        ("getgroups", 158),
        ("setgroups", 159),
        ("uname", 160),
        ("getrlimit", 163),
        ("setrlimit", 164),
        ("umask", 166),
        ("getcpu", 168),
        ("gettimeofday", 169),
        ("getpid", 172),
        ("getppid", 173),
        ("getuid", 174),
        ("geteuid", 175),
        ("getgid", 176),
        ("getegid", 177),
        ("gettid", 178),
        ("sysinfo", 179),
        ("brk", 214),
        ("munmap", 215),
        ("mremap", 216),
        ("clone", 220),
        ("execve", 221),
        ("mmap", 222),
        ("mprotect", 226),
        ("msync", 227),
        ("mlock", 228),
        ("munlock", 229),
        ("mlockall", 230),
        ("munlockall", 231),
        ("mincore", 232),
        ("madvise", 233),
        ("wait4", 260),
        ("prlimit64", 261),
        ("renameat2", 276),
        ("getrandom", 278),
        ("membarrier", 283),
        ("statx", 291),
        ("clone3", 435),
        ("faccessat2", 439),
    ];
    assert_eq!(Sysno::ALL.len(), expected.len());
    for (sysno, (name, number)) in Sysno::ALL.iter().zip(expected) {
        assert_eq!((sysno.name(), sysno.number()), (name, number));
        assert_eq!(Sysno::from_number(number), Some(*sysno));
        assert_eq!(super::name(number), name);
    }
    assert_eq!(Sysno::Wait4 as usize, 260);
    assert_eq!(Sysno::ExitGroup.to_string(), "exit_group");
    // The argument counts of Linux's SYSCALL_DEFINEn.
    let counts = [(Sysno::Mmap, 6), (Sysno::Clone, 5), (Sysno::Openat, 4), (Sysno::Read, 3), (Sysno::Munmap, 2)];
    for (sysno, count) in counts.into_iter().chain([(Sysno::Brk, 1), (Sysno::Getpid, 0)]) {
        assert_eq!(sysno.arg_count(), count, "{sysno}");
    }
    for unknown in [0, 63 + 1000, 293, 436, usize::MAX] {
        assert_eq!(Sysno::from_number(unknown), None);
        assert_eq!(super::name(unknown), "unknown");
    }
}

#[test]
fn timespec_bytes_are_two_little_endian_words() {
    let time = Timespec { tv_sec: 0x0102_0304_0506_0708, tv_nsec: -2 };
    let bytes = time.to_bytes();
    assert_eq!(&bytes[..8], &0x0102_0304_0506_0708i64.to_le_bytes());
    assert_eq!(&bytes[8..], &(-2i64).to_le_bytes());
    assert_eq!(Timespec::from_bytes(bytes), time);
}

#[test]
fn timespec_validation_matches_nanosleep() {
    let valid = |tv_sec, tv_nsec| Timespec { tv_sec, tv_nsec }.validated().is_ok();
    assert!(valid(0, 0));
    assert!(valid(0, 999_999_999));
    assert!(valid(i64::MAX, 999_999_999));
    assert!(!valid(0, 1_000_000_000));
    assert!(!valid(0, -1));
    assert!(!valid(-1, 0));
    assert!(!valid(i64::MIN, 0));
    assert_eq!(Timespec { tv_sec: -1, tv_nsec: 0 }.to_ticks(PI4_HZ), Err(Errno::EINVAL));
}

#[test]
fn ticks_from_timespec_round_up_and_saturate() {
    let ticks = |tv_sec, tv_nsec, frequency| Timespec { tv_sec, tv_nsec }.to_ticks(frequency);
    assert_eq!(ticks(1, 0, QEMU_VIRT_HZ), Ok(62_500_000));
    assert_eq!(ticks(0, 16, QEMU_VIRT_HZ), Ok(1), "exactly one 16 ns tick");
    assert_eq!(ticks(0, 17, QEMU_VIRT_HZ), Ok(2), "never shorter than asked");
    assert_eq!(ticks(0, 1, PI4_HZ), Ok(1));
    assert_eq!(ticks(0, 0, PI4_HZ), Ok(0));
    assert_eq!(ticks(2, 500_000_000, PI4_HZ), Ok(135_000_000));
    assert_eq!(ticks(i64::MAX, 999_999_999, PI4_HZ), Ok(u64::MAX));
    assert_eq!(ticks(i64::MAX, 999_999_999, hz(u64::MAX)), Ok(u64::MAX));
    assert_eq!(ticks(5, 5, hz(1)), Ok(6));
}

#[test]
fn timespec_from_ticks_rounds_down() {
    assert_eq!(Timespec::from_ticks(62_500_001, QEMU_VIRT_HZ), Timespec { tv_sec: 1, tv_nsec: 16 });
    assert_eq!(Timespec::from_ticks(1, PI4_HZ), Timespec { tv_sec: 0, tv_nsec: 18 });
    assert_eq!(Timespec::from_ticks(u64::MAX, hz(1)), Timespec { tv_sec: i64::MAX, tv_nsec: 0 });
    let max = Timespec::from_ticks(u64::MAX, hz(u64::MAX));
    assert_eq!(max, Timespec { tv_sec: 1, tv_nsec: 0 });
}

#[test]
fn clock_ids() {
    for id in 0..8 {
        let clock = ClockId::from_raw(id).unwrap();
        assert_eq!(clock as i32, id);
        assert_eq!(clock.is_cpu_time(), id == 2 || id == 3);
    }
    for id in [-1, -6, 8, 9, 10, 11, i32::MAX, i32::MIN] {
        assert_eq!(ClockId::from_raw(id), Err(Errno::EINVAL));
    }
}

#[test]
fn reboot_decoding() {
    for magic2 in [672_274_793, 85_072_278, 369_367_448, 537_993_216] {
        assert_eq!(decode_reboot(0xfee1_dead, magic2, 0x4321_fedc), Ok(RebootCmd::PowerOff));
    }
    let decode = |cmd| decode_reboot(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, cmd);
    assert_eq!(decode(0x0123_4567), Ok(RebootCmd::Restart));
    assert_eq!(decode(0xcdef_0123), Ok(RebootCmd::Halt));
    assert_eq!(decode(0x89ab_cdef), Ok(RebootCmd::CtrlAltDelOn));
    assert_eq!(decode(0), Ok(RebootCmd::CtrlAltDelOff));
    for unsupported in [0xa1b2_c3d4, 0xd000_fce2, 0x4558_4543, 1] {
        assert_eq!(decode(unsupported), Err(Errno::EINVAL));
    }
    assert_eq!(decode_reboot(0xfee1_deae, LINUX_REBOOT_MAGIC2, 0x4321_fedc), Err(Errno::EINVAL));
    assert_eq!(decode_reboot(LINUX_REBOOT_MAGIC1, 0, 0x4321_fedc), Err(Errno::EINVAL));
}

#[test]
fn file_types_encode_as_linux() {
    let expected = [
        (FileType::Fifo, 0o010_000, 1),
        (FileType::CharDevice, 0o020_000, 2),
        (FileType::Directory, 0o040_000, 4),
        (FileType::BlockDevice, 0o060_000, 6),
        (FileType::Regular, 0o100_000, 8),
        (FileType::Symlink, 0o120_000, 10),
        (FileType::Socket, 0o140_000, 12),
    ];
    for (file_type, mode, dirent) in expected {
        assert_eq!(file_type.mode_bits(), mode);
        assert_eq!(file_type.dirent_type(), dirent);
        assert_eq!(FileType::from_mode(mode | 0o755), Some(file_type));
    }
    assert_eq!(FileType::from_mode(0o644), None);
    assert_eq!(FileType::from_mode(0o170_000), None);
}

#[test]
fn stat_layout_is_the_generic_one() {
    let stat = Stat {
        dev: 0x1111_1111_1111_1111,
        ino: 0x2222_2222_2222_2222,
        mode: 0x3333_3333,
        nlink: 0x4444_4444,
        uid: 0x5555_5555,
        gid: 0x6666_6666,
        rdev: 0x7777_7777_7777_7777,
        size: 0x0888_8888_8888_8888,
        blksize: 0x0999_9999,
        blocks: 0x0aaa_aaaa_aaaa_aaaa,
        atime: Timespec { tv_sec: 0x0b0b, tv_nsec: 0x0c0c },
        mtime: Timespec { tv_sec: 0x0d0d, tv_nsec: 0x0e0e },
        ctime: Timespec { tv_sec: 0x0f0f, tv_nsec: 0x1010 },
        ..Stat::default()
    };
    let bytes = stat.to_bytes();
    assert_eq!(bytes.len(), 128);
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let half = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(word(0), 0x1111_1111_1111_1111);
    assert_eq!(word(8), 0x2222_2222_2222_2222);
    assert_eq!(half(16), 0x3333_3333);
    assert_eq!(half(20), 0x4444_4444);
    assert_eq!(half(24), 0x5555_5555);
    assert_eq!(half(28), 0x6666_6666);
    assert_eq!(word(32), 0x7777_7777_7777_7777);
    assert_eq!(word(40), 0, "__pad1");
    assert_eq!(word(48), 0x0888_8888_8888_8888);
    assert_eq!(half(56), 0x0999_9999);
    assert_eq!(half(60), 0, "__pad2");
    assert_eq!(word(64), 0x0aaa_aaaa_aaaa_aaaa);
    assert_eq!([word(72), word(80)], [0x0b0b, 0x0c0c]);
    assert_eq!([word(88), word(96)], [0x0d0d, 0x0e0e]);
    assert_eq!([word(104), word(112)], [0x0f0f, 0x1010]);
    assert_eq!(word(120), 0, "__unused");
    assert_eq!(Stat::default().to_bytes(), [0; 128]);
}

/// Reads records back as a libc `readdir` does.
fn parse_dirents(bytes: &[u8]) -> Vec<(u64, i64, u8, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let record = &bytes[at..];
        let reclen = usize::from(u16::from_le_bytes([record[16], record[17]]));
        assert_eq!(reclen % 8, 0);
        let name_len = record[19..reclen].iter().position(|&b| b == 0).unwrap();
        assert!(record[19 + name_len..reclen].iter().all(|&b| b == 0), "zero padding");
        entries.push((
            u64::from_le_bytes(record[..8].try_into().unwrap()),
            i64::from_le_bytes(record[8..16].try_into().unwrap()),
            record[18],
            record[19..19 + name_len].to_vec(),
        ));
        at += reclen;
    }
    entries
}

#[test]
fn dirent_records() {
    let dot = Dirent64 { ino: 1, next_offset: 1, file_type: FileType::Directory, name: b"." };
    assert_eq!(dot.record_len(), Ok(24));
    let mut out = [0xff; 32];
    assert_eq!(dot.encode_into(&mut out), Ok(24));
    assert_eq!(&out[..24], &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 24, 0, 4, b'.', 0, 0, 0, 0]);
    assert_eq!(&out[24..], &[0xff; 8], "nothing written past the record");
    let named = |name: &'static [u8]| Dirent64 { ino: 7, next_offset: 2, file_type: FileType::Regular, name };
    assert_eq!(named(b"init\0").record_len(), Err(DirentError::InvalidName));
    assert_eq!(named(b"a/b").record_len(), Err(DirentError::InvalidName));
    assert_eq!(named(b"").record_len(), Err(DirentError::InvalidName));
    assert_eq!(named(b"hello").record_len(), Ok(32));
    assert_eq!(named(&[b'x'; 255]).record_len(), Ok(280));
    assert_eq!(named(&[b'x'; 256]).record_len(), Err(DirentError::NameTooLong));
    assert_eq!(named(b"hello").encode_into(&mut [0; 31]), Err(DirentError::BufferTooSmall));
    assert_eq!(DirentError::NameTooLong.errno(), Errno::ENAMETOOLONG);
    assert_eq!(Errno::from(DirentError::BufferTooSmall), Errno::EINVAL);
}

#[test]
fn getdents_fills_what_fits() {
    let entries = [
        Dirent64 { ino: 1, next_offset: 1, file_type: FileType::Directory, name: b"." },
        Dirent64 { ino: 2, next_offset: 2, file_type: FileType::Directory, name: b".." },
        Dirent64 { ino: 3, next_offset: 3, file_type: FileType::Regular, name: b"cow_isolation" },
    ];
    let (bytes, taken) = encode_dirents(entries, 4096).unwrap();
    assert_eq!(taken, 3);
    assert_eq!(bytes.len(), 24 + 24 + 40);
    assert_eq!(
        parse_dirents(&bytes),
        vec![(1, 1, 4, b".".to_vec()), (2, 2, 4, b"..".to_vec()), (3, 3, 8, b"cow_isolation".to_vec()),]
    );
    assert_eq!(encode_dirents(entries, 60).unwrap().1, 2);
    assert_eq!(encode_dirents(entries, 24).unwrap().1, 1);
    assert_eq!(encode_dirents(entries, 23), Err(DirentError::BufferTooSmall));
    assert_eq!(encode_dirents([], 0), Ok((vec![], 0)));
}

#[test]
fn utsname_fields() {
    let uts = UtsName {
        sysname: b"Linux",
        nodename: b"aspen",
        release: b"6.1.0-aspen",
        version: b"#1",
        machine: b"aarch64",
        domainname: b"(none)",
    };
    let bytes = uts.to_bytes().unwrap();
    assert_eq!(bytes.len(), 390);
    let field = |index: usize| {
        let raw = &bytes[index * 65..(index + 1) * 65];
        let len = raw.iter().position(|&b| b == 0).unwrap();
        assert!(raw[len..].iter().all(|&b| b == 0));
        raw[..len].to_vec()
    };
    assert_eq!(field(0), b"Linux");
    assert_eq!(field(1), b"aspen");
    assert_eq!(field(2), b"6.1.0-aspen");
    assert_eq!(field(3), b"#1");
    assert_eq!(field(4), b"aarch64");
    assert_eq!(field(5), b"(none)");
    let long = [b'n'; 64];
    assert!(UtsName { nodename: &long, ..uts }.to_bytes().is_ok());
    assert_eq!(UtsName { nodename: &[b'n'; 65], ..uts }.to_bytes(), Err(Errno::EINVAL));
    assert_eq!(UtsName { machine: b"a\0b", ..uts }.to_bytes(), Err(Errno::EINVAL));
}

fn any_timespec() -> impl Strategy<Value = Timespec> {
    (0..=i64::MAX, 0..1_000_000_000i64).prop_map(|(tv_sec, tv_nsec)| Timespec { tv_sec, tv_nsec })
}

proptest! {
    #[test]
    fn ticks_round_trip_exactly(ticks in any::<u64>(), frequency in 1..=1_000_000_000u64) {
        let time = Timespec::from_ticks(ticks, hz(frequency));
        prop_assert!(time.validated().is_ok());
        prop_assert_eq!(time.to_ticks(hz(frequency)), Ok(ticks));
    }

    #[test]
    fn timespec_to_ticks_and_back_loses_under_a_tick(
        tv_sec in 0..1i64 << 33,
        tv_nsec in 0..1_000_000_000i64,
        frequency in 1..=1_000_000_000u64,
    ) {
        // Up to 2^33 s (272 years): never saturates below 1 GHz.
        let time = Timespec { tv_sec, tv_nsec };
        let ticks = time.to_ticks(hz(frequency)).unwrap();
        prop_assert!(ticks < u64::MAX);
        let back = Timespec::from_ticks(ticks, hz(frequency));
        let nanos = |t: Timespec| t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128;
        prop_assert!(nanos(back) >= nanos(time), "rounded up: never shorter");
        let tick_nanos = 1_000_000_000u64.div_ceil(frequency) as i128;
        prop_assert!(nanos(back) - nanos(time) < tick_nanos);
    }

    #[test]
    fn any_timespec_bytes_decode(bytes in any::<[u8; 16]>(), frequency in any::<u64>()) {
        let time = Timespec::from_bytes(bytes);
        prop_assert_eq!(time.to_bytes(), bytes);
        if let Some(frequency) = NonZeroU64::new(frequency) {
            prop_assert_eq!(time.to_ticks(frequency).is_ok(), time.validated().is_ok());
        }
    }

    #[test]
    fn ticks_are_monotonic(a in any_timespec(), b in any_timespec(), frequency in 1..u64::MAX) {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(low.to_ticks(hz(frequency)).unwrap() <= high.to_ticks(hz(frequency)).unwrap());
    }

    #[test]
    fn dirents_parse_back(
        names in prop::collection::vec(
            prop::collection::vec((1u8..=255).prop_map(|b| if b == b'/' { b'_' } else { b }), 1..=255),
            0..20,
        ),
        capacity in 0usize..8192,
    ) {
        let entries: Vec<Dirent64<'_>> = names
            .iter()
            .enumerate()
            .map(|(index, name)| Dirent64 {
                ino: index as u64 + 1,
                next_offset: index as i64 + 1,
                file_type: FileType::ALL[index % FileType::ALL.len()],
                name,
            })
            .collect();
        match encode_dirents(entries.iter().copied(), capacity) {
            Ok((bytes, taken)) => {
                prop_assert!(bytes.len() <= capacity);
                let parsed = parse_dirents(&bytes);
                prop_assert_eq!(parsed.len(), taken);
                for (entry, (ino, off, kind, name)) in entries.iter().zip(&parsed) {
                    prop_assert_eq!(
                        (entry.ino, entry.next_offset, entry.file_type.dirent_type(), entry.name),
                        (*ino, *off, *kind, name.as_slice())
                    );
                }
                if let Some(next) = entries.get(taken) {
                    prop_assert!(bytes.len() + next.record_len().unwrap() > capacity);
                }
            }
            Err(error) => {
                prop_assert_eq!(error, DirentError::BufferTooSmall);
                prop_assert!(entries[0].record_len().unwrap() > capacity);
            }
        }
    }
}

#[test]
fn stat_and_timespec_have_linux_layouts() {
    use core::mem::{offset_of, size_of};
    assert_eq!(size_of::<Timespec>(), Timespec::SIZE);
    assert_eq!(offset_of!(Timespec, tv_nsec), 8);
    assert_eq!(size_of::<Stat>(), Stat::SIZE);
    let offsets = [
        (offset_of!(Stat, dev), 0),
        (offset_of!(Stat, ino), 8),
        (offset_of!(Stat, mode), 16),
        (offset_of!(Stat, nlink), 20),
        (offset_of!(Stat, uid), 24),
        (offset_of!(Stat, gid), 28),
        (offset_of!(Stat, rdev), 32),
        (offset_of!(Stat, size), 48),
        (offset_of!(Stat, blksize), 56),
        (offset_of!(Stat, blocks), 64),
        (offset_of!(Stat, atime), 72),
        (offset_of!(Stat, mtime), 88),
        (offset_of!(Stat, ctime), 104),
        (offset_of!(Stat, unused), 120),
    ];
    for (got, want) in offsets {
        assert_eq!(got, want);
    }
}

#[test]
fn stat_bytes_are_the_structure_in_memory() {
    let stat = Stat {
        dev: 1,
        ino: 2,
        mode: 0o100644,
        nlink: 3,
        uid: 4,
        gid: 5,
        rdev: 6,
        size: 7,
        blksize: 4096,
        blocks: 8,
        atime: Timespec { tv_sec: 9, tv_nsec: 10 },
        mtime: Timespec { tv_sec: 11, tv_nsec: 12 },
        ctime: Timespec { tv_sec: 13, tv_nsec: 14 },
        ..Default::default()
    };
    let bytes = stat.to_bytes();
    // SAFETY: Stat is repr(C), 128 bytes, with no padding the compiler
    // adds (every gap is a named field), so all its bytes are initialised.
    let in_memory: [u8; Stat::SIZE] = unsafe { core::mem::transmute(stat) };
    assert_eq!(bytes, in_memory);
}

#[test]
fn timespec_nanoseconds() {
    let spec = Timespec::from_nanos(2_500_000_001);
    assert_eq!(spec, Timespec { tv_sec: 2, tv_nsec: 500_000_001 });
    assert_eq!(spec.as_nanos(), 2_500_000_001);
    assert_eq!(Timespec { tv_sec: -1, tv_nsec: 5 }.as_nanos(), 5);
    assert_eq!(Timespec { tv_sec: i64::MAX, tv_nsec: 0 }.as_nanos(), u64::MAX);
}

#[test]
fn itimerval_is_read_and_checked_as_setitimer_does() {
    let mut raw = [0u8; Itimerval::SIZE];
    raw[..8].copy_from_slice(&1i64.to_le_bytes());
    raw[8..16].copy_from_slice(&500_000i64.to_le_bytes());
    raw[16..24].copy_from_slice(&2i64.to_le_bytes());
    let value = Itimerval::from_bytes(&raw).unwrap();
    assert_eq!(value.interval, Timeval { tv_sec: 1, tv_usec: 500_000 });
    assert_eq!(value.value.as_nanos(), 2 * NANOS_PER_SECOND);
    assert_eq!(Itimerval::from_bytes(&value.to_bytes()), Ok(value));
    raw[24..].copy_from_slice(&1_000_000i64.to_le_bytes());
    assert_eq!(Itimerval::from_bytes(&raw), Err(Errno::EINVAL));
    raw[24..].copy_from_slice(&0i64.to_le_bytes());
    raw[16..24].copy_from_slice(&(-1i64).to_le_bytes());
    assert_eq!(Itimerval::from_bytes(&raw), Err(Errno::EINVAL));
    assert_eq!(Timeval::from_nanos(1_234_567_891), Timeval { tv_sec: 1, tv_usec: 234_567 });
}
