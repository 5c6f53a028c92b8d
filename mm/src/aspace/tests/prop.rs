//! Random mmap / munmap / mprotect / mremap / madvise(DONTNEED) / mlock /
//! fork / exit / read / write / exec sequences over several address spaces,
//! compared with a reference model (per space: page -> protection and
//! contents; shared anonymous objects and one file as shared buffers;
//! private file pages read the file until written). Every access
//! goes through the TLB model, switching the current space through the
//! real ASID allocator. After every step: no free frame is reachable
//! through the TLB, and every frame's reference count equals the number
//! of entries mapping it (plus one while a page cache holds it). At the
//! end every space exits, the file's pager holds what the model says, and
//! every frame is back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::vec::Vec;

use proptest::prelude::*;

use super::{access, assert_tlb_forgot_free_frames, faults_during, va, with_env, Space, TestEnv, PS};
use crate::aspace::walk::for_each_leaf;
use crate::aspace::{AddressSpace, FaultError, FaultKind, MappedFile, MmEnv};
use crate::errno::Errno;
use crate::frame::FrameFlags;
use crate::object::tests::RecordingPager;
use crate::object::{FileIdentity, FileObject};
use crate::paging::VaHalf;
use aspen_abi::mman::{Advice, MapFlags, MremapFlags, Prot};

const ARENA_PAGES: u64 = 384;
const MAX_SPACES: usize = 4;
/// The window the operations work in: 24 pages across a 2 MiB boundary,
/// so table pages are created and freed.
const BASE: u64 = 0x1ff_4000;
const PAGES: u64 = 24;
/// Bytes modelled per page, at offsets `slot * 512`.
const SLOTS: usize = 8;
const PROTS: [Prot; 5] =
    [Prot::NONE, Prot::READ, Prot::READ.union(Prot::WRITE), Prot::READ.union(Prot::EXEC), Prot::ACCESS];

/// What a mapping maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    PrivateAnon,
    SharedAnon,
    /// The file, page `p` of the window at file page `p`.
    PrivateFile,
    SharedFile,
}

/// One step; `Remap` is mremap(MREMAP_MAYMOVE | MREMAP_FIXED, and
/// MREMAP_DONTUNMAP with `keep_old`), same length, to page `dest`.
#[derive(Clone, Copy, Debug)]
enum Op {
    Map { space: usize, first: u64, count: u64, prot: usize, backing: Kind },
    Unmap { space: usize, first: u64, count: u64 },
    Protect { space: usize, first: u64, count: u64, prot: usize },
    DontNeed { space: usize, first: u64, count: u64 },
    Lock { space: usize, first: u64, count: u64 },
    Remap { space: usize, first: u64, count: u64, dest: u64, keep_old: bool },
    Fork { space: usize },
    Exit { space: usize },
    Read { space: usize, page: u64, slot: usize },
    Write { space: usize, page: u64, slot: usize, value: u8 },
    Exec { space: usize, page: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let span = (0..MAX_SPACES, 0..PAGES, 1..=8u64);
    prop_oneof![
        4 => (span.clone(), 0..PROTS.len(), prop_oneof![
                Just(Kind::PrivateAnon),
                Just(Kind::SharedAnon),
                Just(Kind::PrivateFile),
                Just(Kind::SharedFile)
            ])
            .prop_map(|((space, first, count), prot, backing)| Op::Map { space, first, count, prot, backing }),
        1 => span.clone().prop_map(|(space, first, count)| Op::Unmap { space, first, count }),
        2 => (span.clone(), 0..PROTS.len()).prop_map(|((space, first, count), prot)| Op::Protect { space, first, count, prot }),
        1 => span.clone().prop_map(|(space, first, count)| Op::DontNeed { space, first, count }),
        1 => span.clone().prop_map(|(space, first, count)| Op::Lock { space, first, count }),
        2 => (span, 0..PAGES, any::<bool>())
            .prop_map(|((space, first, count), dest, keep_old)| Op::Remap { space, first, count, dest, keep_old }),
        1 => (0..MAX_SPACES).prop_map(|space| Op::Fork { space }),
        1 => (0..MAX_SPACES).prop_map(|space| Op::Exit { space }),
        4 => (0..MAX_SPACES, 0..PAGES, 0..SLOTS).prop_map(|(space, page, slot)| Op::Read { space, page, slot }),
        5 => (0..MAX_SPACES, 0..PAGES, 0..SLOTS, 1..=255u8)
            .prop_map(|(space, page, slot, value)| Op::Write { space, page, slot, value }),
        1 => (0..MAX_SPACES, 0..PAGES).prop_map(|(space, page)| Op::Exec { space, page }),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Data {
    Private([u8; SLOTS]),
    /// Page `index` of shared object `object` (object 0 is the file):
    /// shared mappings, and private file pages not written yet.
    Shared {
        object: usize,
        index: usize,
    },
}

#[derive(Clone, Copy, Debug)]
struct PageModel {
    prot: Prot,
    locked: bool,
    /// A private file page: MADV_DONTNEED brings the file's data back.
    private_file: bool,
    /// The file page a file mapping maps here (mremap keeps it).
    file_page: usize,
    data: Data,
}

struct World<'e, 'a> {
    env: &'e TestEnv<'a>,
    spaces: Vec<(Space<'e, 'a>, BTreeMap<u64, PageModel>)>,
    objects: Vec<Vec<[u8; SLOTS]>>,
    file: Arc<FileObject<'e, TestEnv<'a>>>,
}

/// The file's initial byte at `slot` of page `page`.
fn file_byte(page: usize, slot: usize) -> u8 {
    (page * SLOTS + slot) as u8 | 0x80
}

/// The file's initial contents: `PAGES` pages.
fn file_contents() -> Vec<u8> {
    let mut data = std::vec![0u8; (PAGES * PS) as usize];
    for page in 0..PAGES as usize {
        for slot in 0..SLOTS {
            data[page * PS as usize + slot * 512] = file_byte(page, slot);
        }
    }
    data
}

fn addr(page: u64) -> u64 {
    BASE + page * PS
}

fn pages(first: u64, count: u64) -> core::ops::Range<u64> {
    first..(first + count).min(PAGES)
}

impl<'e, 'a> World<'e, 'a> {
    fn value(&self, data: &Data, slot: usize) -> u8 {
        match *data {
            Data::Private(bytes) => bytes[slot],
            Data::Shared { object, index } => self.objects[object][index][slot],
        }
    }

    /// A private file page about to be copied gets the file's data now.
    fn snapshot(&self, data: &Data) -> Data {
        let mut bytes = [0; SLOTS];
        for (slot, b) in bytes.iter_mut().enumerate() {
            *b = self.value(data, slot);
        }
        Data::Private(bytes)
    }

    /// Locked writable private file pages are populated, so copied.
    fn copy_locked_file_pages(&mut self, space: usize, range: core::ops::Range<u64>) {
        for page in range {
            let m = self.spaces[space].1[&page];
            if m.locked && m.private_file && m.prot.contains(Prot::WRITE) && matches!(m.data, Data::Shared { .. }) {
                let data = self.snapshot(&m.data);
                self.spaces[space].1.get_mut(&page).unwrap().data = data;
            }
        }
    }

    fn run(&mut self, op: Op) {
        let live = self.spaces.len();
        match op {
            Op::Map { space, first, count, prot, backing } => {
                let range = pages(first, count);
                let len = (range.end - range.start) * PS;
                let (flags, file) = match backing {
                    Kind::PrivateAnon => (MapFlags::PRIVATE | MapFlags::ANONYMOUS, None),
                    Kind::SharedAnon => (MapFlags::SHARED | MapFlags::ANONYMOUS, None),
                    Kind::PrivateFile => (MapFlags::PRIVATE, Some(MappedFile::read_write(Arc::clone(&self.file)))),
                    Kind::SharedFile => (MapFlags::SHARED, Some(MappedFile::read_write(Arc::clone(&self.file)))),
                };
                let (s, model) = &mut self.spaces[space % live];
                let at = s.mmap(va(addr(first)), len, PROTS[prot], flags | MapFlags::FIXED, file, first * PS);
                assert_eq!(at, Ok(va(addr(first))));
                let object = self.objects.len();
                if backing == Kind::SharedAnon {
                    self.objects.push(std::vec![[0; SLOTS]; range.clone().count()]);
                }
                for (index, page) in range.enumerate() {
                    let data = match backing {
                        Kind::PrivateAnon => Data::Private([0; SLOTS]),
                        Kind::SharedAnon => Data::Shared { object, index },
                        Kind::PrivateFile | Kind::SharedFile => Data::Shared { object: 0, index: page as usize },
                    };
                    let private_file = backing == Kind::PrivateFile;
                    let file_page = page as usize;
                    model.insert(page, PageModel { prot: PROTS[prot], locked: false, private_file, file_page, data });
                }
            }
            Op::Unmap { space, first, count } => {
                let range = pages(first, count);
                let (s, model) = &mut self.spaces[space % live];
                assert_eq!(s.munmap(va(addr(first)), (range.end - range.start) * PS), Ok(()));
                for page in range {
                    model.remove(&page);
                }
            }
            Op::Protect { space, first, count, prot } => {
                let range = pages(first, count);
                let (s, model) = &mut self.spaces[space % live];
                let mapped = range.clone().all(|p| model.contains_key(&p));
                let got = s.mprotect(va(addr(first)), (range.end - range.start) * PS, PROTS[prot]);
                if mapped {
                    assert_eq!(got, Ok(()));
                    for page in range.clone() {
                        model.get_mut(&page).unwrap().prot = PROTS[prot];
                    }
                    self.copy_locked_file_pages(space % live, range);
                } else {
                    assert_eq!(got, Err(Errno::ENOMEM));
                }
            }
            Op::DontNeed { space, first, count } => {
                let range = pages(first, count);
                let (s, model) = &mut self.spaces[space % live];
                let got = s.madvise(va(addr(first)), (range.end - range.start) * PS, Advice::DontNeed);
                if range.clone().any(|p| model.get(&p).is_some_and(|m| m.locked)) {
                    assert_eq!(got, Err(Errno::EINVAL));
                    return;
                }
                let mapped = range.clone().all(|p| model.contains_key(&p));
                assert_eq!(got, if mapped { Ok(()) } else { Err(Errno::ENOMEM) });
                for page in range {
                    match model.get_mut(&page) {
                        Some(m) if m.private_file => m.data = Data::Shared { object: 0, index: m.file_page },
                        Some(PageModel { data: Data::Private(bytes), .. }) => *bytes = [0; SLOTS],
                        _ => {}
                    }
                }
            }
            Op::Lock { space, first, count } => {
                let range = pages(first, count);
                let env = self.env;
                let (s, model) = &mut self.spaces[space % live];
                let mapped = range.clone().all(|p| model.contains_key(&p));
                let got = s.mlock(va(addr(first)), (range.end - range.start) * PS, None);
                if !mapped {
                    assert_eq!(got, Err(Errno::ENOMEM));
                    return;
                }
                assert_eq!(got, Ok(()));
                for page in range.clone() {
                    model.get_mut(&page).unwrap().locked = true;
                }
                self.copy_locked_file_pages(space % live, range.clone());
                let (s, model) = &mut self.spaces[space % live];
                // Locked pages do not fault on reads, nor on writes where
                // writing cannot need an execute/write flip or dirty
                // tracking (shared file pages).
                for page in range {
                    let m = model[&page];
                    let prot = if !m.private_file && matches!(m.data, Data::Shared { object: 0, .. }) {
                        m.prot & !Prot::WRITE
                    } else {
                        m.prot
                    };
                    if prot == Prot::NONE {
                        continue;
                    }
                    let faults = faults_during(env, || {
                        access(s, addr(page), FaultKind::Read, 0).unwrap();
                        if prot == Prot::READ | Prot::WRITE {
                            let value = access(s, addr(page) + 512, FaultKind::Read, 0).unwrap();
                            access(s, addr(page) + 512, FaultKind::Write, value).unwrap();
                        }
                    });
                    assert_eq!(faults, 0, "locked page {page} faulted");
                }
            }
            Op::Remap { space, first, count, dest, keep_old } => {
                let count = count.min(PAGES - first).min(PAGES - dest);
                let (s, model) = &mut self.spaces[space % live];
                let mut flags = MremapFlags::MAYMOVE | MremapFlags::FIXED;
                if keep_old {
                    flags |= MremapFlags::DONTUNMAP;
                }
                let got = s.mremap(va(addr(first)), count * PS, count * PS, flags, va(addr(dest)));
                if first < dest + count && dest < first + count {
                    assert_eq!(got, if model.contains_key(&first) { Err(Errno::EINVAL) } else { Err(Errno::EFAULT) });
                    return;
                }
                if !(first..first + count).all(|p| model.contains_key(&p)) {
                    assert_eq!(got, Err(Errno::EFAULT));
                    return;
                }
                // The model does not know varea boundaries: a range over
                // two vareas is EFAULT.
                if got == Err(Errno::EFAULT) {
                    return;
                }
                assert_eq!(got, Ok(va(addr(dest))));
                let moved: Vec<PageModel> = (first..first + count).map(|p| model[&p]).collect();
                for page in dest..dest + count {
                    model.remove(&page);
                }
                for (i, m) in moved.into_iter().enumerate() {
                    let old = first + i as u64;
                    if keep_old {
                        // Left mapped, empty and unlocked: faults in from its backing again.
                        let data = match m.data {
                            _ if m.private_file => Data::Shared { object: 0, index: m.file_page },
                            Data::Private(_) => Data::Private([0; SLOTS]),
                            shared => shared,
                        };
                        model.insert(old, PageModel { locked: false, data, ..m });
                    } else {
                        model.remove(&old);
                    }
                    model.insert(dest + i as u64, m);
                }
            }
            Op::Fork { space } => {
                if live == MAX_SPACES {
                    return;
                }
                let (s, model) = &mut self.spaces[space % live];
                let child = s.fork().unwrap();
                let child_model = model.iter().map(|(p, m)| (*p, PageModel { locked: false, ..*m })).collect();
                self.spaces.push((child, child_model));
            }
            Op::Exit { space } => {
                if live > 1 {
                    self.spaces.remove(space % live);
                }
            }
            Op::Read { space, page, slot } => {
                let expected = self.spaces[space % live]
                    .1
                    .get(&page)
                    .filter(|m| m.prot != Prot::NONE)
                    .map(|m| self.value(&m.data, slot));
                let got = access(&mut self.spaces[space % live].0, addr(page) + slot as u64 * 512, FaultKind::Read, 0);
                assert_eq!(got, expected.ok_or(FaultError::Segv), "read {page}/{slot}");
            }
            Op::Write { space, page, slot, value } => {
                let space = space % live;
                let got = access(&mut self.spaces[space].0, addr(page) + slot as u64 * 512, FaultKind::Write, value);
                let Some(m) = self.spaces[space].1.get(&page).copied().filter(|m| m.prot.contains(Prot::WRITE)) else {
                    assert_eq!(got, Err(FaultError::Segv));
                    return;
                };
                assert_eq!(got, Ok(value));
                // A private file page is copied on its first write.
                let data = if m.private_file { self.snapshot(&m.data) } else { m.data };
                let data = match data {
                    Data::Private(mut bytes) => {
                        bytes[slot] = value;
                        Data::Private(bytes)
                    }
                    Data::Shared { object, index } => {
                        self.objects[object][index][slot] = value;
                        data
                    }
                };
                self.spaces[space].1.get_mut(&page).unwrap().data = data;
            }
            Op::Exec { space, page } => {
                let (s, model) = &mut self.spaces[space % live];
                let got = access(s, addr(page), FaultKind::Exec, 0).map(drop);
                let allowed = model.get(&page).is_some_and(|m| m.prot.contains(Prot::EXEC));
                assert_eq!(got, if allowed { Ok(()) } else { Err(FaultError::Segv) });
            }
        }
    }

    /// Every frame's count equals the entries mapping it, plus one for a
    /// page cache.
    fn audit(&self) {
        let frames = self.env.frames();
        let mut mapped: HashMap<u64, u32> = HashMap::new();
        for (space, _) in &self.spaces {
            for_each_leaf(self.env.mem(), space.root(), VaHalf::Lower.range(), &mut |leaf| {
                *mapped.entry(leaf.pa.as_u64()).or_default() += 1;
            });
        }
        for (pa, count) in mapped {
            let meta = frames.meta(crate::addr::PhysAddr::new(pa)).unwrap();
            let cached = u32::from(meta.flags().contains(FrameFlags::PAGE_CACHE));
            assert_eq!(meta.refcount(), count + cached, "frame {pa:#x}");
        }
        // The size kept as vareas come and go is their sum, under the peak.
        for (space, _) in &self.spaces {
            let sum: u64 = space.vareas().map(|v| v.range.end_exclusive - v.range.start).sum();
            assert_eq!(space.total_bytes(), sum);
            assert!(space.peak_bytes() >= sum);
            assert_eq!(space.resident_count(), space.rss().total(), "the resident count drifted");
            assert!(space.peak_resident_pages() >= space.resident_count());
        }
        assert_tlb_forgot_free_frames(self.env, ARENA_PAGES);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn address_spaces_match_the_model(ops in proptest::collection::vec(op(), 1..200)) {
        with_env(ARENA_PAGES, |env| {
            let first = AddressSpace::new(env).unwrap();
            let pager = RecordingPager::with_bytes(&file_contents());
            let file = FileObject::new(env, pager.clone(), FileIdentity::default());
            let initial = (0..PAGES as usize).map(|p| core::array::from_fn(|s| file_byte(p, s))).collect();
            let mut world = World { env, spaces: std::vec![(first, BTreeMap::new())], objects: std::vec![initial], file };
            for op in ops {
                world.run(op);
                world.audit();
            }
            // Everything must still read back as the model says.
            for i in 0..world.spaces.len() {
                let pages: Vec<(u64, PageModel)> = world.spaces[i].1.iter().map(|(p, m)| (*p, *m)).collect();
                for (page, m) in pages {
                    for slot in 0..SLOTS {
                        let got = access(&mut world.spaces[i].0, addr(page) + slot as u64 * 512, FaultKind::Read, 0);
                        let expected = if m.prot == Prot::NONE { Err(FaultError::Segv) } else { Ok(world.value(&m.data, slot)) };
                        assert_eq!(got, expected);
                    }
                }
            }
            // Every space exits (writing back), then the file is released:
            // the pager holds exactly what the model says.
            let World { spaces, objects, file, .. } = world;
            drop(spaces);
            // No writable mapping is left, so nothing may stay dirty.
            assert_eq!(file.sync(), Ok(()));
            assert_eq!(file.dirty_pages(), 0, "a writer count leaked");
            drop(file);
            for (page, bytes) in objects[0].iter().enumerate() {
                for (slot, &byte) in bytes.iter().enumerate() {
                    assert_eq!(pager.stored(page as u64 * PS + slot as u64 * 512, 1), [byte], "file page {page}/{slot}");
                }
            }
        });
    }
}
