//! Address spaces on several CPUs of the machine model: threads of one
//! space run on every CPU, each CPU's TLB caches what its thread touched
//! (and whatever it walks speculatively), and one CPU forks, breaks a
//! copy-on-write page, re-protects, discards or unmaps. Every other CPU's
//! next access must see the change: a stale entry left in any TLB fails
//! the access, a live entry rewritten without break-before-make fails the
//! write, and a frame freed while a TLB still leads to it fails the free.
//! Then random interleavings of such operations and accesses over the
//! CPUs, with a parent and a forked child running side by side, checked
//! against a reference model.

use aspen_abi::mman::{Advice, MapFlags, Prot};
use proptest::prelude::*;
use std::vec::Vec;

use super::{va, with_env_cpus, Space, TestEnv, PS};
use crate::asid::AsidBits;
use crate::aspace::{AddressSpace, FaultError, FaultKind, MmEnv, WxPolicy};
use crate::errno::Errno;
use crate::testbed::{El, Fault};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const CPUS: usize = 4;
const PAGES: u64 = 8;

/// Runs `f` on a machine of [`CPUS`] CPUs (frames and TLBs checked at the
/// end as by `with_env`).
fn on_cpus<R>(f: impl FnOnce(&TestEnv<'_>) -> R) -> R {
    with_env_cpus(256, AsidBits::Sixteen, WxPolicy::Flip, CPUS, f)
}

/// Makes `space` current on `cpu` alone (the others keep what they run).
fn run_on(space: &Space<'_, '_>, cpu: usize) {
    let machine = space.env().tlb();
    machine.on(cpu);
    let (root, asid) = space.activate(cpu);
    machine.switch(root, asid);
}

/// One access by the thread of `space` on `cpu`: a fault goes to the
/// fault handler, then the access is retried. Returns the byte read or
/// written.
fn access_on(space: &mut Space<'_, '_>, cpu: usize, at: u64, kind: FaultKind, value: u8) -> Result<u8, FaultError> {
    for _ in 0..3 {
        run_on(space, cpu);
        let machine = space.env().tlb();
        let result = match kind {
            FaultKind::Read => machine.read(El::El0, va(at)),
            FaultKind::Write => machine.write(El::El0, va(at), value).map(|()| value),
            FaultKind::Exec => machine.exec(El::El0, va(at)).map(|_| 0),
        };
        match result {
            Ok(byte) => return Ok(byte),
            Err(Fault::Translation { .. } | Fault::Permission { .. }) => space.handle_fault(va(at), kind)?,
            Err(other) => panic!("unexpected fault {other:?}"),
        }
    }
    panic!("cpu {cpu}: no progress at {at:#x}");
}

fn read_on(space: &mut Space<'_, '_>, cpu: usize, at: u64) -> Result<u8, FaultError> {
    access_on(space, cpu, at, FaultKind::Read, 0)
}

fn write_on(space: &mut Space<'_, '_>, cpu: usize, at: u64, value: u8) -> Result<(), FaultError> {
    access_on(space, cpu, at, FaultKind::Write, value).map(drop)
}

/// A space with [`PAGES`] private anonymous pages, written by every CPU
/// (page `i` holds `i + 1`) and read back, so every TLB holds them.
fn touched_everywhere<'e, 'a>(env: &'e TestEnv<'a>) -> (Space<'e, 'a>, u64) {
    let mut space = AddressSpace::new(env).unwrap();
    let p = space.mmap(va(0), PAGES * PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).unwrap().as_u64();
    for cpu in 0..CPUS {
        for i in 0..PAGES {
            write_on(&mut space, cpu, p + i * PS, i as u8 + 1).unwrap();
        }
    }
    for cpu in 0..CPUS {
        for i in 0..PAGES {
            assert_eq!(read_on(&mut space, cpu, p + i * PS), Ok(i as u8 + 1));
        }
    }
    (space, p)
}

/// Fork from one CPU while every CPU caches writable entries: each CPU's
/// next write must fault and copy, never reach the page the child shares.
#[test]
fn fork_write_protects_the_parent_on_every_cpu() {
    on_cpus(|env| {
        let (mut parent, p) = touched_everywhere(env);
        env.tlb().on(1);
        let mut child = parent.fork().unwrap();
        for cpu in 0..CPUS {
            let before = env.stats().cow_copies() + env.stats().cow_reuses();
            write_on(&mut parent, cpu, p + cpu as u64 * PS, 0x80 + cpu as u8).unwrap();
            assert_eq!(env.stats().cow_copies() + env.stats().cow_reuses(), before + 1, "cpu {cpu} wrote unseen");
        }
        for cpu in 0..CPUS {
            for i in 0..PAGES {
                assert_eq!(read_on(&mut child, cpu, p + i * PS), Ok(i as u8 + 1), "child page {i} on cpu {cpu}");
            }
        }
        drop(child);
        drop(parent);
    });
}

/// A copy-on-write break on one CPU while the others cache the shared
/// frame read-only: their next read finds the copy.
#[test]
fn cow_break_reaches_every_cpu() {
    on_cpus(|env| {
        let (mut parent, p) = touched_everywhere(env);
        let mut child = parent.fork().unwrap();
        for cpu in 0..CPUS {
            assert_eq!(read_on(&mut parent, cpu, p), Ok(1));
            assert_eq!(read_on(&mut child, cpu, p), Ok(1));
        }
        // The child breaks its copy on CPU 2, then the parent (now the only
        // holder of the frame: reused in place) on CPU 3.
        write_on(&mut child, 2, p, 0x42).unwrap();
        for cpu in 0..CPUS {
            assert_eq!(read_on(&mut child, cpu, p), Ok(0x42));
            assert_eq!(read_on(&mut parent, cpu, p), Ok(1));
        }
        write_on(&mut parent, 3, p, 0x43).unwrap();
        for cpu in 0..CPUS {
            assert_eq!(read_on(&mut parent, cpu, p), Ok(0x43));
        }
        drop(child);
        drop(parent);
    });
}

#[test]
fn mprotect_on_one_cpu_reaches_the_others() {
    on_cpus(|env| {
        let (mut space, p) = touched_everywhere(env);
        run_on(&space, 3);
        space.mprotect(va(p), PAGES * PS, Prot::READ).unwrap();
        for cpu in 0..CPUS {
            assert_eq!(write_on(&mut space, cpu, p + cpu as u64 * PS, 9), Err(FaultError::Segv));
            assert_eq!(read_on(&mut space, cpu, p + cpu as u64 * PS), Ok(cpu as u8 + 1));
        }
        run_on(&space, 0);
        space.mprotect(va(p), PAGES * PS, RW).unwrap();
        for cpu in 0..CPUS {
            write_on(&mut space, cpu, p + cpu as u64 * PS, 0x70).unwrap();
        }
        drop(space);
    });
}

#[test]
fn madvise_dontneed_on_one_cpu_reaches_the_others() {
    on_cpus(|env| {
        let (mut space, p) = touched_everywhere(env);
        let free = env.frames().free_frame_count();
        run_on(&space, 1);
        space.madvise(va(p), PAGES * PS, Advice::DontNeed).unwrap();
        assert!(env.frames().free_frame_count() >= free + PAGES as usize, "the frames went back at once");
        for cpu in 0..CPUS {
            for i in 0..PAGES {
                assert_eq!(read_on(&mut space, cpu, p + i * PS), Ok(0));
            }
        }
        drop(space);
    });
}

#[test]
fn munmap_on_one_cpu_reaches_the_others() {
    on_cpus(|env| {
        let (mut space, p) = touched_everywhere(env);
        run_on(&space, 2);
        space.munmap(va(p + PS), (PAGES - 2) * PS).unwrap();
        for cpu in 0..CPUS {
            assert_eq!(read_on(&mut space, cpu, p + PS * (1 + cpu as u64)), Err(FaultError::Segv));
            assert_eq!(read_on(&mut space, cpu, p), Ok(1));
            assert_eq!(read_on(&mut space, cpu, p + (PAGES - 1) * PS), Ok(PAGES as u8));
        }
        drop(space);
    });
}

/// One step of a random interleaving; `child` picks the forked space.
#[derive(Clone, Copy, Debug)]
enum Op {
    Read {
        cpu: usize,
        child: bool,
        page: u64,
    },
    Write {
        cpu: usize,
        child: bool,
        page: u64,
        value: u8,
    },
    Protect {
        cpu: usize,
        child: bool,
        first: u64,
        count: u64,
        writable: bool,
    },
    Unmap {
        cpu: usize,
        child: bool,
        first: u64,
        count: u64,
    },
    Map {
        cpu: usize,
        child: bool,
        first: u64,
        count: u64,
    },
    DontNeed {
        cpu: usize,
        child: bool,
        first: u64,
        count: u64,
    },
    /// Fork the parent (replacing the child, which exits first).
    Fork {
        cpu: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let cpu = 0..CPUS;
    let page = 0..PAGES;
    let span = (0..PAGES, 1..=PAGES);
    prop_oneof![
        4 => (cpu.clone(), any::<bool>(), page.clone()).prop_map(|(cpu, child, page)| Op::Read { cpu, child, page }),
        4 => (cpu.clone(), any::<bool>(), page, any::<u8>())
            .prop_map(|(cpu, child, page, value)| Op::Write { cpu, child, page, value }),
        1 => (cpu.clone(), any::<bool>(), span.clone(), any::<bool>())
            .prop_map(|(cpu, child, (first, count), writable)| Op::Protect { cpu, child, first, count, writable }),
        1 => (cpu.clone(), any::<bool>(), span.clone())
            .prop_map(|(cpu, child, (first, count))| Op::Unmap { cpu, child, first, count }),
        1 => (cpu.clone(), any::<bool>(), span.clone())
            .prop_map(|(cpu, child, (first, count))| Op::Map { cpu, child, first, count }),
        1 => (cpu.clone(), any::<bool>(), span)
            .prop_map(|(cpu, child, (first, count))| Op::DontNeed { cpu, child, first, count }),
        1 => cpu.prop_map(|cpu| Op::Fork { cpu }),
    ]
}

/// What the model expects of one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    mapped: bool,
    writable: bool,
    value: u8,
}

const BASE: u64 = 0x7000_0000;

fn addr(page: u64) -> u64 {
    BASE + page * PS
}

/// The pages `first..first + count`, clipped to the window.
fn clip(first: u64, count: u64) -> core::ops::Range<usize> {
    first as usize..core::cmp::min(first + count, PAGES) as usize
}

/// A call on a range of `pages`: Linux refuses mprotect and madvise over a
/// hole with ENOMEM. Whether it succeeded.
fn expect_ranged(result: Result<(), Errno>, pages: &[Page], range: core::ops::Range<usize>) -> bool {
    let whole = pages[range].iter().all(|p| p.mapped);
    match result {
        Ok(()) => {
            assert!(whole, "a call over a hole succeeded");
            true
        }
        Err(e) => {
            assert!(!whole && e == Errno::ENOMEM, "{e:?}");
            false
        }
    }
}

fn run_ops(ops: &[Op]) {
    on_cpus(|env| {
        let fixed = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
        let mut parent = AddressSpace::new(env).unwrap();
        parent.mmap(va(BASE), PAGES * PS, RW, fixed, None, 0).unwrap();
        let mut model = [vec![Page { mapped: true, writable: true, value: 0 }; PAGES as usize], Vec::new()];
        let mut child: Option<Space<'_, '_>> = None;
        for &op in ops {
            let forked = child.is_some();
            let (cpu, which) = match op {
                Op::Read { cpu, child, .. }
                | Op::Write { cpu, child, .. }
                | Op::Protect { cpu, child, .. }
                | Op::Unmap { cpu, child, .. }
                | Op::Map { cpu, child, .. }
                | Op::DontNeed { cpu, child, .. } => (cpu, usize::from(child && forked)),
                Op::Fork { cpu } => (cpu, 0),
            };
            let space = if which == 1 { child.as_mut().unwrap() } else { &mut parent };
            let pages = &mut model[which];
            // A system call runs on the CPU of the thread that makes it.
            run_on(space, cpu);
            match op {
                Op::Read { page, .. } => {
                    let p = pages[page as usize];
                    let expected = if p.mapped { Ok(p.value) } else { Err(FaultError::Segv) };
                    assert_eq!(read_on(space, cpu, addr(page)), expected, "{op:?}");
                }
                Op::Write { page, value, .. } => {
                    let p = &mut pages[page as usize];
                    let result = write_on(space, cpu, addr(page), value);
                    if p.mapped && p.writable {
                        assert_eq!(result, Ok(()), "{op:?}");
                        p.value = value;
                    } else {
                        assert_eq!(result, Err(FaultError::Segv), "{op:?}");
                    }
                }
                Op::Protect { first, count, writable, .. } => {
                    let prot = if writable { RW } else { Prot::READ };
                    let range = clip(first, count);
                    let result = space.mprotect(va(addr(first)), range.len() as u64 * PS, prot);
                    if expect_ranged(result, pages, range.clone()) {
                        pages[range].iter_mut().for_each(|p| p.writable = writable);
                    }
                }
                Op::Unmap { first, count, .. } => {
                    let range = clip(first, count);
                    space.munmap(va(addr(first)), range.len() as u64 * PS).unwrap();
                    pages[range].iter_mut().for_each(|p| p.mapped = false);
                }
                Op::Map { first, count, .. } => {
                    let range = clip(first, count);
                    space.mmap(va(addr(first)), range.len() as u64 * PS, RW, fixed, None, 0).unwrap();
                    pages[range].iter_mut().for_each(|p| *p = Page { mapped: true, writable: true, value: 0 });
                }
                Op::DontNeed { first, count, .. } => {
                    let range = clip(first, count);
                    // Over a hole Linux still discards the mapped pages, then
                    // says ENOMEM.
                    let result = space.madvise(va(addr(first)), range.len() as u64 * PS, Advice::DontNeed);
                    expect_ranged(result, pages, range.clone());
                    pages[range].iter_mut().filter(|p| p.mapped).for_each(|p| p.value = 0);
                }
                Op::Fork { .. } => {
                    // The old child exits: no CPU runs it any more.
                    if let Some(old) = child.take() {
                        for cpu in 0..CPUS {
                            run_on(&parent, cpu);
                        }
                        drop(old);
                    }
                    run_on(&parent, cpu);
                    child = Some(parent.fork().unwrap());
                    model[1] = model[0].clone();
                }
            }
        }
        // Every CPU ends in the parent, then everything exits.
        for cpu in 0..CPUS {
            run_on(&parent, cpu);
        }
        drop(child);
        drop(parent);
    });
}

#[test]
fn a_fixed_interleaving_passes() {
    run_ops(&[
        Op::Write { cpu: 0, child: false, page: 3, value: 7 },
        Op::Read { cpu: 1, child: false, page: 3 },
        Op::Fork { cpu: 2 },
        Op::Read { cpu: 3, child: true, page: 3 },
        Op::Write { cpu: 1, child: false, page: 3, value: 8 },
        Op::Read { cpu: 3, child: true, page: 3 },
        Op::Protect { cpu: 0, child: true, first: 0, count: 8, writable: false },
        Op::Write { cpu: 3, child: true, page: 3, value: 1 },
        Op::DontNeed { cpu: 2, child: false, first: 2, count: 3 },
        Op::Read { cpu: 1, child: false, page: 3 },
        Op::Unmap { cpu: 3, child: true, first: 1, count: 4 },
        Op::Read { cpu: 0, child: true, page: 3 },
        Op::Map { cpu: 1, child: true, first: 3, count: 1 },
        Op::Read { cpu: 2, child: true, page: 3 },
    ]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random interleavings of accesses and memory calls over four CPUs, a
    /// parent and its latest child.
    #[test]
    fn random_interleavings_match_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        run_ops(&ops);
    }
}
