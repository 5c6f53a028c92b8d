//! Random map / unmap / protect / address-space switch / access sequences
//! on several tables with different ASIDs, run through the TLB model and
//! compared with a reference model (a map from page to frame and
//! attributes): no stale translation, `query` agrees, accesses fault
//! exactly when the model says, and tearing down returns every frame.

use std::collections::BTreeMap;
use std::vec::Vec;

use proptest::prelude::*;

use super::{pages, Fixture, FreeWhenForgotten};
use crate::addr::{PhysAddr, VirtAddr, PAGE_SIZE};
use crate::frame::FrameAllocator;
use crate::paging::{Access, Mapping, PageAttrs, PageSize, PageTable, PagingError, Privilege, VaHalf};
use crate::testbed::{AccessKind, Arena, El, Fault, Machine};
use crate::tlb::{Asid, TlbScope};

const SPACES: usize = 3;
const PAGES: u64 = 64;
/// Windows of `PAGES` pages: two sharing an L3 table, then ones crossing a
/// 2 MiB, a 1 GiB and a 512 GiB boundary, so tables are shared, created
/// and freed at every level.
const REGIONS: [u64; 4] = [0x40_0000, 0x5f_0000, 0x3fff_0000, 0x7f_ffff_0000];

fn perms() -> [PageAttrs; 5] {
    [
        PageAttrs::USER_RW,
        PageAttrs::USER_RO,
        PageAttrs::USER_RX,
        PageAttrs::KERNEL_RW.non_global(),
        PageAttrs::KERNEL_RX.non_global(),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Map {
        space: usize,
        region: usize,
        first: u64,
        count: u64,
        perm: usize,
    },
    Unmap {
        space: usize,
        region: usize,
        first: u64,
        count: u64,
    },
    Protect {
        space: usize,
        region: usize,
        first: u64,
        count: u64,
        perm: usize,
    },
    Switch {
        space: usize,
    },
    Access {
        region: usize,
        page: u64,
        el0: bool,
        kind: u8,
    },
    /// Reads every page the current space maps, filling the TLB.
    TouchAll,
}

fn op() -> impl Strategy<Value = Op> {
    let span = (0..SPACES, 0..REGIONS.len(), 0..PAGES, 1..=PAGES);
    prop_oneof![
        3 => (span.clone(), 0..5usize).prop_map(|((space, region, first, count), perm)| Op::Map { space, region, first, count, perm }),
        2 => span.clone().prop_map(|(space, region, first, count)| Op::Unmap { space, region, first, count }),
        2 => (span, 0..5usize).prop_map(|((space, region, first, count), perm)| Op::Protect { space, region, first, count, perm }),
        1 => (0..SPACES).prop_map(|space| Op::Switch { space }),
        4 => (0..REGIONS.len(), 0..PAGES, any::<bool>(), 0..3u8).prop_map(|(region, page, el0, kind)| Op::Access { region, page, el0, kind }),
        1 => Just(Op::TouchAll),
    ]
}

/// What the reference model knows of one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    pa: PhysAddr,
    attrs: PageAttrs,
    /// The first word of the frame.
    tag: u64,
}

/// Whether `attrs` allow the access (the architecture's rules, restated).
fn allowed(attrs: PageAttrs, el: El, kind: AccessKind) -> bool {
    let user = attrs.privilege() == Privilege::User;
    let write = attrs.access().contains(Access::WRITE);
    let exec = attrs.access().contains(Access::EXECUTE);
    match (el, kind) {
        (El::El0, AccessKind::Read) => user,
        (El::El0, AccessKind::Write) => user && write,
        (El::El0, AccessKind::Execute) => user && exec,
        (El::El1, AccessKind::Read) => true,
        (El::El1, AccessKind::Write) => write,
        (El::El1, AccessKind::Execute) => !user && exec,
    }
}

struct World<'f> {
    fx: &'f Fixture,
    cpu: &'f Machine<'f>,
    /// Table pages are freed through a check that the TLB forgot them.
    tables: Vec<PageTable<'f, Arena, FreeWhenForgotten<'f>>>,
    model: BTreeMap<(usize, u64), Page>,
    current: usize,
    next_tag: u64,
}

fn asid(space: usize) -> Asid {
    Asid(space as u16 + 1)
}

fn va_of(region: usize, page: u64) -> u64 {
    REGIONS[region] + page * PAGE_SIZE
}

impl<'f> World<'f> {
    fn new(fx: &'f Fixture, cpu: &'f Machine<'f>, frames: &'f FreeWhenForgotten<'f>) -> Self {
        let tables: Vec<_> = (0..SPACES).map(|_| PageTable::new(&fx.arena, frames, VaHalf::Lower).unwrap()).collect();
        cpu.switch(tables[0].root(), asid(0));
        Self { fx, cpu, tables, model: BTreeMap::new(), current: 0, next_tag: 1 }
    }

    /// The pages `first .. first + count` of a region, clipped to it.
    fn span(region: usize, first: u64, count: u64) -> impl Iterator<Item = u64> {
        (first..core::cmp::min(first + count, PAGES)).map(move |p| va_of(region, p))
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Map { space, region, first, count, perm } => {
                let attrs = perms()[perm];
                let vas: Vec<u64> = Self::span(region, first, count).collect();
                if let Some(&taken) = vas.iter().find(|va| self.model.contains_key(&(space, **va))) {
                    let range = pages(vas[0], vas.len() as u64);
                    let err = self.tables[space].map(range, self.fx.arena.range().start, attrs);
                    assert_eq!(err, Err(PagingError::AlreadyMapped(VirtAddr::new(taken))));
                    return;
                }
                for va in vas {
                    let tag = self.next_tag;
                    self.next_tag += 1;
                    let pa = self.fx.data_frame(tag);
                    self.tables[space].map(pages(va, 1), pa, attrs).unwrap();
                    self.model.insert((space, va), Page { pa, attrs, tag });
                }
            }
            Op::Unmap { space, region, first, count } => {
                let n = Self::span(region, first, count).count() as u64;
                let mut released = Vec::new();
                let cpu = self.cpu;
                self.tables[space]
                    .edit(cpu, TlbScope::Asid(asid(space)), |leaf| {
                        assert!(!cpu.holds_frame(leaf.pa), "{leaf:?} released while the TLB maps it");
                        released.push(leaf);
                    })
                    .unmap(pages(va_of(region, first), n))
                    .unwrap();
                let mut expected = Vec::new();
                for va in Self::span(region, first, count) {
                    if let Some(page) = self.model.remove(&(space, va)) {
                        expected.push(Mapping {
                            va: VirtAddr::new(va),
                            pa: page.pa,
                            size: PageSize::Size4K,
                            attrs: page.attrs,
                        });
                    }
                }
                assert_eq!(released, expected);
                for leaf in released {
                    self.fx.frames.free_frame(leaf.pa);
                }
            }
            Op::Protect { space, region, first, count, perm } => {
                let attrs = perms()[perm];
                let n = Self::span(region, first, count).count() as u64;
                self.tables[space]
                    .edit(self.cpu, TlbScope::Asid(asid(space)), |leaf| panic!("protect released {leaf:?}"))
                    .protect(pages(va_of(region, first), n), attrs)
                    .unwrap();
                for va in Self::span(region, first, count) {
                    if let Some(page) = self.model.get_mut(&(space, va)) {
                        page.attrs = attrs;
                    }
                }
            }
            Op::Switch { space } => {
                self.cpu.switch(self.tables[space].root(), asid(space));
                self.current = space;
            }
            Op::Access { region, page, el0, kind } => {
                let el = if el0 { El::El0 } else { El::El1 };
                let kind = [AccessKind::Read, AccessKind::Write, AccessKind::Execute][kind as usize];
                let va = VirtAddr::new(va_of(region, page) + 16);
                let got = self.cpu.translate(el, va, kind);
                match self.model.get(&(self.current, va.align_down(PAGE_SIZE).as_u64())) {
                    None => assert!(matches!(got, Err(Fault::Translation { .. })), "{va:?}: {got:?}"),
                    Some(p) if allowed(p.attrs, el, kind) => {
                        assert_eq!(got, Ok(p.pa + 16));
                        if kind == AccessKind::Write {
                            self.cpu.write(el, va, 0x5a).unwrap();
                        }
                    }
                    Some(_) => assert_eq!(got, Err(Fault::Permission { va, level: 3 })),
                }
            }
            Op::TouchAll => {
                let current = self.current;
                for (&(_, va), page) in self.model.range((current, 0)..(current + 1, 0)) {
                    let mut word = [0; 8];
                    self.cpu.read_bytes(El::El1, VirtAddr::new(va), &mut word).unwrap();
                    assert_eq!(u64::from_ne_bytes(word), page.tag, "{va:#x}");
                }
            }
        }
    }

    /// `query` agrees with the model on every page of every region.
    fn check_queries(&self) {
        for (space, table) in self.tables.iter().enumerate() {
            for region in 0..REGIONS.len() {
                for va in Self::span(region, 0, PAGES) {
                    let got = table.query(VirtAddr::new(va)).map(|m| (m.pa, m.attrs, m.size));
                    let want = self.model.get(&(space, va)).map(|p| (p.pa, p.attrs, PageSize::Size4K));
                    assert_eq!(got, want, "space {space} {va:#x}");
                }
            }
        }
    }

    /// Unmaps everything and frees the tables.
    fn tear_down(self) {
        let Self { fx, cpu, tables, .. } = self;
        for (space, table) in tables.into_iter().enumerate() {
            table.destroy(cpu, TlbScope::Asid(asid(space)), |leaf| {
                assert!(!cpu.holds_frame(leaf.pa), "{leaf:?} released while the TLB maps it");
                fx.frames.free_frame(leaf.pa);
            });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_match_the_model(ops in proptest::collection::vec(op(), 1..150)) {
        let fx = Fixture::new(8 << 20);
        let cpu = fx.machine();
        let frames = FreeWhenForgotten { fx: &fx, cpu: &cpu };
        let mut world = World::new(&fx, &cpu, &frames);
        for op in ops {
            world.run(op);
            world.check_queries();
        }
        // Everything still mapped reads back its tag through the TLB.
        for space in 0..SPACES {
            world.run(Op::Switch { space });
            world.run(Op::TouchAll);
        }
        world.tear_down();
        prop_assert_eq!(fx.in_use(), 0);
    }
}
