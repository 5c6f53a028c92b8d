//! Argument checking of every call, table-driven, with Linux's errnos; a
//! failed call must leave the vareas as they were.

use std::sync::Arc;
use std::vec::Vec;

use aspen_abi::uaccess::UserSlice;

use super::{layout, read_user, va, with_env, write, Space, TestEnv, PS};
use crate::addr::{PhysAddr, PhysRange};
use crate::aspace::{AddressSpace, FaultKind, MappedFile, MMAP_MIN_ADDR, USER_END};
use crate::errno::Errno;
use crate::object::{FileIdentity, FileObject, MemoryPager};
use aspen_abi::mman::{Advice, MapFlags, MlockallFlags, MsyncFlags, Prot};

/// The layout every case starts from.
const A: u64 = 0x1000_0000; // 4 pages, RW private
const HOLE: u64 = A + 4 * PS; // 1 page
const B: u64 = A + 5 * PS; // 2 pages, R private
const C: u64 = 0x2000_0000; // 1 page, RW, locked
const RW: Prot = Prot::READ.union(Prot::WRITE);
const ANON_PRIVATE: MapFlags = MapFlags::PRIVATE.union(MapFlags::ANONYMOUS);

#[derive(Clone, Copy, Debug)]
enum Call {
    Mmap { addr: u64, len: u64, prot: Prot, flags: MapFlags, file: bool, offset: u64 },
    Munmap { addr: u64, len: u64 },
    Mprotect { addr: u64, len: u64, prot: Prot },
    Madvise { addr: u64, len: u64, advice: Advice },
    Msync { addr: u64, len: u64, flags: MsyncFlags },
    Mlock { addr: u64, len: u64 },
    Munlock { addr: u64, len: u64 },
    Mlockall { flags: MlockallFlags },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    At(u64),
    Err(Errno),
}

use Call::*;
use Expect::{At, Err as E, Ok as Fine};

fn anon(addr: u64, len: u64, flags: MapFlags) -> Call {
    Mmap { addr, len, prot: RW, flags: flags | MapFlags::ANONYMOUS, file: false, offset: 0 }
}

fn file(addr: u64, len: u64, flags: MapFlags, offset: u64) -> Call {
    Mmap { addr, len, prot: Prot::READ, flags, file: true, offset }
}

fn cases() -> Vec<(&'static str, Call, Expect)> {
    let top = USER_END.as_u64();
    std::vec![
        // mmap
        ("mmap len 0", anon(0, 0, MapFlags::PRIVATE), E(Errno::EINVAL)),
        (
            "mmap offset unaligned",
            Mmap { addr: 0, len: PS, prot: RW, flags: ANON_PRIVATE, file: false, offset: 1 },
            E(Errno::EINVAL)
        ),
        ("mmap len overflows when aligned", anon(0, u64::MAX, MapFlags::PRIVATE), E(Errno::ENOMEM)),
        ("mmap len beyond user space", anon(0, top, MapFlags::PRIVATE), E(Errno::ENOMEM)),
        ("mmap neither shared nor private", anon(0, PS, MapFlags::empty()), E(Errno::EINVAL)),
        ("mmap anonymous shared-validate", anon(0, PS, MapFlags::SHARED_VALIDATE), E(Errno::EINVAL)),
        ("mmap type 0xf", anon(0, PS, MapFlags::from_bits_retain(0xf)), E(Errno::EINVAL)),
        ("mmap fixed unaligned", anon(0x3000_0100, PS, MapFlags::PRIVATE | MapFlags::FIXED), E(Errno::EINVAL)),
        ("mmap fixed below mmap_min_addr", anon(0x1000, PS, MapFlags::PRIVATE | MapFlags::FIXED), E(Errno::EPERM)),
        ("mmap fixed at 0", anon(0, PS, MapFlags::PRIVATE | MapFlags::FIXED), E(Errno::EPERM)),
        ("mmap fixed past the top", anon(top - PS, 2 * PS, MapFlags::PRIVATE | MapFlags::FIXED), E(Errno::ENOMEM)),
        (
            "mmap fixed-noreplace over a mapping",
            anon(A + PS, PS, MapFlags::PRIVATE | MapFlags::FIXED_NOREPLACE),
            E(Errno::EEXIST)
        ),
        ("mmap fixed-noreplace into the hole", anon(HOLE, PS, MapFlags::PRIVATE | MapFlags::FIXED_NOREPLACE), At(HOLE)),
        ("mmap fixed replaces", anon(A + PS, PS, MapFlags::PRIVATE | MapFlags::FIXED), At(A + PS)),
        (
            "mmap no file without MAP_ANONYMOUS",
            Mmap { addr: 0, len: PS, prot: RW, flags: MapFlags::PRIVATE, file: false, offset: 0 },
            E(Errno::EBADF)
        ),
        ("mmap anonymous huge pages", anon(0, PS, MapFlags::PRIVATE | MapFlags::HUGETLB), E(Errno::ENOMEM)),
        ("mmap file huge pages", file(0, PS, MapFlags::PRIVATE | MapFlags::HUGETLB, 0), E(Errno::EINVAL)),
        (
            "mmap file shared-validate unknown flag",
            file(0, PS, MapFlags::SHARED_VALIDATE | MapFlags::SYNC, 0),
            E(Errno::EOPNOTSUPP)
        ),
        ("mmap file shared ignores unknown flag", file(0, PS, MapFlags::SHARED | MapFlags::SYNC, 0), Fine),
        (
            "mmap file shared-validate legacy flags",
            file(0, PS, MapFlags::SHARED_VALIDATE | MapFlags::POPULATE | MapFlags::NORESERVE, 0),
            Fine
        ),
        ("mmap file offset unaligned", file(0, PS, MapFlags::PRIVATE, 100), E(Errno::EINVAL)),
        ("mmap file offset too large", file(0, PS, MapFlags::PRIVATE, 1 << 63), E(Errno::EOVERFLOW)),
        ("mmap file growsdown", file(0, PS, MapFlags::PRIVATE | MapFlags::GROWSDOWN, 0), E(Errno::EINVAL)),
        ("mmap file type 0", file(0, PS, MapFlags::empty(), 0), E(Errno::EINVAL)),
        ("mmap shared anonymous growsdown", anon(0, PS, MapFlags::SHARED | MapFlags::GROWSDOWN), E(Errno::EINVAL)),
        ("mmap hint rounded up", anon(0x3000_0123, PS, MapFlags::PRIVATE), At(0x3000_1000)),
        ("mmap hint below mmap_min_addr", anon(0x1000, PS, MapFlags::PRIVATE), At(MMAP_MIN_ADDR.as_u64())),
        ("mmap taken hint is only a hint", anon(A, PS, MapFlags::PRIVATE), Fine),
        (
            "mmap unknown flag bits ignored",
            anon(
                0,
                PS,
                MapFlags::PRIVATE | MapFlags::from_bits_retain(0x4000_0000) | MapFlags::STACK | MapFlags::NORESERVE
            ),
            Fine
        ),
        (
            "mmap unknown prot bits ignored",
            Mmap {
                addr: 0,
                len: PS,
                prot: Prot::from_bits_retain(0xf0) | RW,
                flags: ANON_PRIVATE,
                file: false,
                offset: 0
            },
            Fine
        ),
        ("mmap private growsdown accepted", anon(0, PS, MapFlags::PRIVATE | MapFlags::GROWSDOWN), Fine),
        // munmap
        ("munmap unaligned", Munmap { addr: A + 1, len: PS }, E(Errno::EINVAL)),
        ("munmap len 0", Munmap { addr: A, len: 0 }, E(Errno::EINVAL)),
        ("munmap past the top", Munmap { addr: top, len: PS }, E(Errno::EINVAL)),
        ("munmap len past the top", Munmap { addr: A, len: top }, E(Errno::EINVAL)),
        ("munmap a hole", Munmap { addr: HOLE, len: PS }, Fine),
        ("munmap unaligned len", Munmap { addr: A, len: 1 }, Fine),
        // mprotect
        ("mprotect unaligned", Mprotect { addr: A + 8, len: PS, prot: Prot::READ }, E(Errno::EINVAL)),
        ("mprotect len 0 anywhere", Mprotect { addr: 0x7000_0000, len: 0, prot: Prot::READ }, Fine),
        (
            "mprotect grows both ways",
            Mprotect { addr: A, len: PS, prot: Prot::GROWSDOWN | Prot::GROWSUP },
            E(Errno::EINVAL)
        ),
        (
            "mprotect unknown prot bit",
            Mprotect { addr: A, len: PS, prot: Prot::from_bits_retain(0x10) },
            E(Errno::EINVAL)
        ),
        ("mprotect PROT_SEM accepted", Mprotect { addr: A, len: PS, prot: Prot::READ | Prot::SEM }, Fine),
        ("mprotect over a hole", Mprotect { addr: A, len: 7 * PS, prot: Prot::READ }, E(Errno::ENOMEM)),
        ("mprotect starting in a hole", Mprotect { addr: HOLE, len: 2 * PS, prot: Prot::READ }, E(Errno::ENOMEM)),
        ("mprotect unmapped", Mprotect { addr: 0x7000_0000, len: PS, prot: Prot::READ }, E(Errno::ENOMEM)),
        ("mprotect length overflows", Mprotect { addr: A, len: u64::MAX - 10, prot: Prot::READ }, E(Errno::ENOMEM)),
        ("mprotect past the top", Mprotect { addr: top - PS, len: 2 * PS, prot: Prot::READ }, E(Errno::ENOMEM)),
        (
            "mprotect growsdown on a mapping",
            Mprotect { addr: A, len: PS, prot: Prot::READ | Prot::GROWSDOWN },
            E(Errno::EINVAL)
        ),
        (
            "mprotect growsdown on a hole",
            Mprotect { addr: HOLE, len: PS, prot: Prot::READ | Prot::GROWSDOWN },
            E(Errno::ENOMEM)
        ),
        ("mprotect write+exec accepted", Mprotect { addr: A, len: PS, prot: RW | Prot::EXEC }, Fine),
        ("mprotect unaligned len", Mprotect { addr: B, len: 1, prot: Prot::NONE }, Fine),
        // madvise
        ("madvise MADV_FREE unsupported", Madvise { addr: A, len: PS, advice: Advice::Free }, E(Errno::EINVAL)),
        ("madvise unaligned", Madvise { addr: A + 1, len: PS, advice: Advice::Normal }, E(Errno::EINVAL)),
        ("madvise len 0", Madvise { addr: 0x7000_0000, len: 0, advice: Advice::DontNeed }, Fine),
        ("madvise len overflows", Madvise { addr: A, len: u64::MAX, advice: Advice::Normal }, E(Errno::EINVAL)),
        ("madvise end wraps", Madvise { addr: A, len: u64::MAX - A - 10, advice: Advice::Normal }, E(Errno::EINVAL)),
        ("madvise over a hole", Madvise { addr: A, len: 7 * PS, advice: Advice::WillNeed }, E(Errno::ENOMEM)),
        ("madvise nohugepage", Madvise { addr: A, len: 4 * PS, advice: Advice::NoHugePage }, Fine),
        ("madvise hugepage", Madvise { addr: B, len: 2 * PS, advice: Advice::HugePage }, Fine),
        ("madvise dontneed locked", Madvise { addr: C, len: PS, advice: Advice::DontNeed }, E(Errno::EINVAL)),
        ("madvise dontneed over a hole", Madvise { addr: A, len: 6 * PS, advice: Advice::DontNeed }, E(Errno::ENOMEM)),
        ("madvise dontneed", Madvise { addr: A, len: 4 * PS, advice: Advice::DontNeed }, Fine),
        // msync
        ("msync unknown flag", Msync { addr: A, len: PS, flags: MsyncFlags::from_bits_retain(8) }, E(Errno::EINVAL)),
        (
            "msync async and sync",
            Msync { addr: A, len: PS, flags: MsyncFlags::ASYNC | MsyncFlags::SYNC },
            E(Errno::EINVAL)
        ),
        ("msync unaligned", Msync { addr: A + 1, len: PS, flags: MsyncFlags::SYNC }, E(Errno::EINVAL)),
        ("msync len 0", Msync { addr: 0x7000_0000, len: 0, flags: MsyncFlags::SYNC }, Fine),
        ("msync len overflows", Msync { addr: A, len: u64::MAX, flags: MsyncFlags::SYNC }, E(Errno::ENOMEM)),
        ("msync over a hole", Msync { addr: A, len: 6 * PS, flags: MsyncFlags::SYNC }, E(Errno::ENOMEM)),
        ("msync invalidate locked", Msync { addr: C, len: PS, flags: MsyncFlags::INVALIDATE }, E(Errno::EBUSY)),
        ("msync no flags", Msync { addr: A, len: PS, flags: MsyncFlags::empty() }, Fine),
        ("msync anonymous", Msync { addr: A, len: 4 * PS, flags: MsyncFlags::SYNC | MsyncFlags::INVALIDATE }, Fine),
        // mlock, munlock, mlockall
        ("mlock unaligned start rounds", Mlock { addr: A + 5, len: PS }, Fine),
        ("mlock len 0", Mlock { addr: 0x7000_0000, len: 0 }, Fine),
        ("mlock over a hole", Mlock { addr: A, len: 6 * PS }, E(Errno::ENOMEM)),
        ("mlock unmapped", Mlock { addr: 0x7000_0000, len: PS }, E(Errno::ENOMEM)),
        ("mlock len overflows", Mlock { addr: A, len: u64::MAX }, E(Errno::EINVAL)),
        ("munlock over a hole", Munlock { addr: B, len: 3 * PS }, E(Errno::ENOMEM)),
        ("munlock", Munlock { addr: C, len: PS }, Fine),
        ("mlockall 0", Mlockall { flags: MlockallFlags::empty() }, E(Errno::EINVAL)),
        ("mlockall onfault alone", Mlockall { flags: MlockallFlags::ONFAULT }, E(Errno::EINVAL)),
        (
            "mlockall unknown flag",
            Mlockall { flags: MlockallFlags::CURRENT | MlockallFlags::from_bits_retain(8) },
            E(Errno::EINVAL)
        ),
        ("mlockall future", Mlockall { flags: MlockallFlags::FUTURE }, Fine),
        ("mlockall current onfault", Mlockall { flags: MlockallFlags::CURRENT | MlockallFlags::ONFAULT }, Fine),
    ]
}

/// The starting layout, and a 4-page file.
fn setup<'e, 'a>(env: &'e TestEnv<'a>) -> (Space<'e, 'a>, Arc<FileObject<'e, TestEnv<'a>>>) {
    let mut space = AddressSpace::new(env).unwrap();
    let fixed = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
    assert_eq!(space.mmap(va(A), 4 * PS, RW, fixed, None, 0), Ok(va(A)));
    assert_eq!(space.mmap(va(B), 2 * PS, Prot::READ, fixed, None, 0), Ok(va(B)));
    assert_eq!(space.mmap(va(C), PS, RW, fixed | MapFlags::LOCKED, None, 0), Ok(va(C)));
    let pager = Arc::new(MemoryPager::from_bytes(&[1; 4 * PS as usize]).unwrap());
    let file = FileObject::new(env, pager, FileIdentity::default());
    (space, file)
}

fn run<'e, 'a>(
    space: &mut Space<'e, 'a>,
    file: &Arc<FileObject<'e, TestEnv<'a>>>,
    call: Call,
) -> Result<Option<u64>, Errno> {
    match call {
        Mmap { addr, len, prot, flags, file: with_file, offset } => {
            let object = with_file.then(|| MappedFile::read_write(Arc::clone(file)));
            space.mmap(va(addr), len, prot, flags, object, offset).map(|a| Some(a.as_u64()))
        }
        Munmap { addr, len } => space.munmap(va(addr), len).map(|()| None),
        Mprotect { addr, len, prot } => space.mprotect(va(addr), len, prot).map(|()| None),
        Madvise { addr, len, advice } => space.madvise(va(addr), len, advice).map(|()| None),
        Msync { addr, len, flags } => space.msync(va(addr), len, flags).map(|()| None),
        Mlock { addr, len } => space.mlock(va(addr), len, None).map(|()| None),
        Munlock { addr, len } => space.munlock(va(addr), len).map(|()| None),
        Mlockall { flags } => space.mlockall(flags, None).map(|()| None),
    }
}

#[test]
fn every_call_checks_its_arguments_like_linux() {
    with_env(256, |env| {
        for (name, call, expect) in cases() {
            let (mut space, file) = setup(env);
            write(&mut space, A, 1).unwrap();
            let before = layout(&space);
            let got = run(&mut space, &file, call);
            match (expect, got) {
                (Fine, Ok(_)) => {}
                (At(want), Ok(Some(at))) => assert_eq!(at, want, "{name}: {call:?}"),
                (E(want), Err(e)) => {
                    assert_eq!(e, want, "{name}: {call:?}");
                    assert_eq!(layout(&space), before, "{name}: a failed call changed the vareas");
                }
                (want, got) => panic!("{name}: {call:?}: expected {want:?}, got {got:?}"),
            }
        }
    });
}

#[test]
fn brk_follows_linux() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        assert_eq!(space.brk(va(0x50_0000)), va(0), "no break before the loader sets one");
        let base = 0x40_2910;
        space.set_brk_base(va(base));
        assert_eq!(space.brk(va(0)), va(base), "brk(0) reports the break");
        assert_eq!(space.brk(va(base - 1)), va(base), "below the start: unchanged");
        // Inside the page the bss ends in: nothing to map.
        assert_eq!(space.brk(va(0x40_2fff)), va(0x40_2fff));
        assert_eq!(space.varea_count(), 0);
        assert_eq!(space.brk(va(0x40_5001)), va(0x40_5001));
        assert_eq!(layout(&space), [(0x40_3000, 0x40_6000, 3)]);
        write(&mut space, 0x40_5000, 9).unwrap();
        assert_eq!(space.brk(va(0x40_4000)), va(0x40_4000));
        assert_eq!(layout(&space), [(0x40_3000, 0x40_4000, 3)]);
        assert_eq!(space.brk(va(0x40_6000)), va(0x40_6000));
        assert_eq!(super::read(&mut space, 0x40_5000), Ok(0), "shrunk pages come back zeroed");
        // A mapping above blocks growth into it and into the page below it.
        let fixed = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
        space.mmap(va(0x40_8000), PS, RW, fixed, None, 0).unwrap();
        assert_eq!(space.brk(va(0x40_7000)), va(0x40_7000));
        assert_eq!(space.brk(va(0x40_7001)), va(0x40_7000), "guard page below the next mapping");
        assert_eq!(space.brk(va(USER_END.as_u64() + 1)), va(0x40_7000));
        assert_eq!(space.brk(va(u64::MAX)), va(0x40_7000));
        let maps: Vec<_> = space.vareas().map(|v| v.label).collect();
        assert_eq!(maps, [Some("[heap]"), None]);
    });
}

#[test]
fn check_user_range_gives_efault() {
    with_env(64, |env| {
        let (mut space, _) = setup(env);
        space.mprotect(va(B), PS, Prot::NONE).unwrap();
        let cases: [(u64, u64, FaultKind, Result<(), Errno>); 12] = [
            (A, 4 * PS, FaultKind::Write, Ok(())),
            (A + 10, 3, FaultKind::Read, Ok(())),
            (A, 5 * PS, FaultKind::Read, Err(Errno::EFAULT)),
            (HOLE - 1, 2, FaultKind::Read, Err(Errno::EFAULT)),
            (B + PS, PS, FaultKind::Read, Ok(())),
            (B + PS, PS, FaultKind::Write, Err(Errno::EFAULT)),
            (B, 1, FaultKind::Read, Err(Errno::EFAULT)),
            (A, PS, FaultKind::Exec, Err(Errno::EFAULT)),
            (u64::MAX - 5, 10, FaultKind::Read, Err(Errno::EFAULT)),
            (USER_END.as_u64(), 1, FaultKind::Read, Err(Errno::EFAULT)),
            (USER_END.as_u64() - 1, 0, FaultKind::Read, Ok(())),
            (0xffff_0000_0000_0000, 0, FaultKind::Read, Err(Errno::EFAULT)),
        ];
        for (at, len, kind, want) in cases {
            let got =
                UserSlice::new(at, len).map_err(Errno::from).and_then(|slice| space.check_user_range(slice, kind));
            assert_eq!(got, want, "{at:#x}+{len:#x} {kind:?}");
        }
    });
}

#[test]
fn map_device_checks_and_maps_without_refcounts() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let regs = PhysRange::new(PhysAddr::new(0x900_0000), PhysAddr::new(0x900_2000));
        let bad = PhysRange::new(PhysAddr::new(0x900_0010), PhysAddr::new(0x900_2000));
        assert_eq!(space.map_device(bad, Prot::READ), Err(Errno::EINVAL));
        assert_eq!(space.map_device(PhysRange::new(regs.start, regs.start), Prot::READ), Err(Errno::EINVAL));
        assert_eq!(space.map_device(regs, Prot::READ | Prot::EXEC), Err(Errno::EACCES));
        assert_eq!(space.map_device(regs, Prot::from_bits_retain(0x40)), Err(Errno::EINVAL));
        let at = space.map_device(regs, RW).unwrap();
        assert_eq!(space.resident_pages(), 2);
        let info = space.vareas().next().unwrap();
        assert!(info.is_shared());
        assert_eq!(space.mprotect(at, PS, Prot::READ | Prot::EXEC), Err(Errno::EACCES));
        assert_eq!(space.mprotect(at, PS, Prot::READ), Ok(()));
        assert_eq!(space.mprotect(at, 2 * PS, Prot::NONE), Ok(()));
        assert_eq!(space.mprotect(at, 2 * PS, RW), Ok(()));
        assert_eq!(space.varea_count(), 1);
        assert_eq!(space.madvise(at, PS, Advice::DontNeed), Err(Errno::EINVAL));
        assert_eq!(read_user(&mut space, at.as_u64(), &mut [0; 4]), Err(Errno::EFAULT));
        let child = space.fork().unwrap();
        assert_eq!(child.resident_pages(), 2);
        drop(child);
        assert_eq!(space.munmap(at, 2 * PS), Ok(()));
        assert_eq!(space.resident_pages(), 0);
    });
}
