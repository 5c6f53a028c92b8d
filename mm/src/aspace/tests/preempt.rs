//! Yielding in long passes: munmap, mprotect, madvise, populate, fork's
//! copy and the teardown ask the environment every few dozen entries
//! whether to yield; when told to, they first complete their TLB batch and
//! release what it held. At every forced yield a sibling thread (the
//! simulated CPU at EL0, in the same space) touches every page of the range
//! through the TLB model, which panics on a stale translation, and no free
//! frame may still be reachable through the TLB. A run with a yield at
//! every question ends exactly as a run without any.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::string::String;
use std::sync::Mutex;
use std::vec::Vec;

use aspen_abi::mman::{Advice, MapFlags, Prot};

use super::{read, write, Space, TestEnv, PS, RAM_BASE};
use crate::addr::VirtAddr;
use crate::asid::{AsidAllocator, AsidBits};
use crate::aspace::{AddressSpace, Env, YieldHook};
use crate::frame::buddy::RUN_MAX;
use crate::frame::BuddyAllocator;
use crate::paging::{EDIT_SPACING, PAUSE_SPACING, RELEASE_SPACING};
use crate::testbed::{AccessKind, Arena, El, Machine};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const ARENA_PAGES: u64 = 4096;
/// Pages of the region the passes work on: several last-level tables.
const PAGES: u64 = 1100;

/// Counts the questions, yields when told to, and plays a sibling thread
/// at every yield.
struct Yields<'a> {
    machine: &'a Machine<'a>,
    frames: &'a BuddyAllocator<'static>,
    /// Yield at every question.
    force: bool,
    questions: AtomicUsize,
    yields: AtomicUsize,
    /// The free frames at each question.
    free_at_question: Mutex<Vec<usize>>,
    /// The pages (start, count) the sibling touches at each yield.
    sibling: Mutex<Option<(u64, u64)>>,
}

impl YieldHook for Yields<'_> {
    fn should_yield(&self) -> bool {
        self.questions.fetch_add(1, Ordering::Relaxed);
        self.free_at_question.lock().unwrap().push(self.frames.free_frame_count());
        self.force
    }

    fn yield_now(&self) {
        self.yields.fetch_add(1, Ordering::Relaxed);
        let sibling = *self.sibling.lock().unwrap();
        if let Some((start, pages)) = sibling {
            // The sibling thread runs at EL0 meanwhile. Faults would make
            // it wait for the space's lock: only the translations matter.
            for i in 0..pages {
                let at = VirtAddr::new(start + i * PS);
                let _ = self.machine.translate(El::El0, at, AccessKind::Read);
                let _ = self.machine.translate(El::El0, at, AccessKind::Write);
            }
        }
        for i in 0..ARENA_PAGES {
            let pa = RAM_BASE + i * PS;
            if self.frames.meta(pa).is_some_and(|m| m.is_free()) {
                assert!(!self.machine.holds_frame(pa), "{pa:?} freed before the TLB forgot it");
            }
        }
    }
}

impl Yields<'_> {
    /// Questions since the last call.
    fn take_questions(&self) -> usize {
        self.free_at_question.lock().unwrap().clear();
        self.questions.swap(0, Ordering::Relaxed)
    }
}

/// Runs `f` on a machine whose environment asks a [`Yields`] (yielding at
/// every question when `force`), then checks every frame came back.
fn with_yields<R>(force: bool, f: impl FnOnce(&TestEnv<'_>, &Yields<'_>) -> R) -> R {
    let arena = Arena::new(RAM_BASE, ARENA_PAGES * PS);
    let frames = BuddyAllocator::new_owned(&[arena.range()]).expect("buddy over the arena");
    let machine = Machine::new(&arena);
    let asids = AsidAllocator::new(AsidBits::Sixteen);
    let yields = Yields {
        machine: &machine,
        frames: &frames,
        force,
        questions: AtomicUsize::new(0),
        yields: AtomicUsize::new(0),
        free_at_question: Mutex::new(Vec::new()),
        sibling: Mutex::new(None),
    };
    let env = Env::new(&arena, &frames, &machine, &asids).with_yield_hook(&yields);
    let baseline = frames.free_frame_count();
    let result = f(&env, &yields);
    assert_eq!(frames.free_frame_count(), baseline, "frames leaked");
    result
}

/// A region of `PAGES` private pages, each written with its number.
fn filled(space: &mut Space<'_, '_>) -> u64 {
    let p = space.mmap(VirtAddr::new(0), PAGES * PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).unwrap();
    for i in 0..PAGES {
        write(space, p.as_u64() + i * PS, i as u8).unwrap();
    }
    p.as_u64()
}

/// Asks at least once per `spacing` entries of `pages` pages, and not once
/// per entry.
fn assert_spacing_of(spacing: usize, questions: usize, pages: u64, what: &str) {
    let pages = pages as usize;
    assert!(questions >= pages / spacing, "{what}: {questions} questions for {pages} pages");
    assert!(questions <= pages, "{what}: {questions} questions for {pages} pages");
}

/// Asks at least once per `PAUSE_SPACING` entries of `pages` pages, and
/// not once per entry.
fn assert_spacing(questions: usize, pages: u64, what: &str) {
    assert_spacing_of(PAUSE_SPACING, questions, pages, what)
}

#[test]
fn long_passes_ask_whether_to_yield_every_few_dozen_entries() {
    with_yields(false, |env, yields| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = filled(&mut space);
        yields.take_questions();
        space.mprotect(VirtAddr::new(p), PAGES * PS, Prot::READ).unwrap();
        assert_spacing(yields.take_questions(), PAGES, "mprotect");
        // Write given back: the first write upgrades its whole last-level
        // table (write fault-around), asking on the way.
        space.mprotect(VirtAddr::new(p), PAGES * PS, RW).unwrap();
        yields.take_questions();
        let table = 512 * PS;
        let first_in_table = p.div_ceil(table) * table;
        write(&mut space, first_in_table, 1).unwrap();
        assert_spacing(yields.take_questions(), 512, "write fault-around");
        space.mprotect(VirtAddr::new(p), PAGES * PS, Prot::READ).unwrap();
        yields.take_questions();
        let child = space.fork().unwrap();
        assert_spacing(yields.take_questions(), PAGES, "fork");
        drop(child);
        assert_spacing(yields.take_questions(), PAGES, "teardown");
        space.madvise(VirtAddr::new(p), PAGES / 2 * PS, Advice::DontNeed).unwrap();
        assert_spacing_of(EDIT_SPACING, yields.take_questions(), PAGES / 2, "madvise");
        space.munmap(VirtAddr::new(p), PAGES * PS).unwrap();
        assert_spacing_of(EDIT_SPACING, yields.take_questions(), PAGES / 2, "munmap");
        let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::POPULATE;
        space.mmap(VirtAddr::new(0), PAGES * PS, RW, flags, None, 0).unwrap();
        assert_spacing(yields.take_questions(), PAGES / 4, "populate");
        assert_eq!(yields.yields.load(Ordering::Relaxed), 0, "nothing asked for a yield");
        drop(space);
    });
}

#[test]
fn an_unmap_that_yields_frees_a_few_pages_between_questions() {
    with_yields(true, |env, yields| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = filled(&mut space);
        yields.take_questions();
        space.munmap(VirtAddr::new(p), PAGES * PS).unwrap();
        let free = yields.free_at_question.lock().unwrap().clone();
        assert!(free.len() >= PAGES as usize / PAUSE_SPACING);
        for pair in free.windows(2) {
            // A run of released leaves, and the table pages emptied on the
            // way (one per level below the root at most); frames given
            // back together as one run (`RefCursor`) count as one.
            assert!(
                pair[1] - pair[0] <= RELEASE_SPACING + 3 + RUN_MAX,
                "{} frames freed between two questions",
                pair[1] - pair[0]
            );
        }
    });
}

#[test]
fn a_yield_in_the_middle_of_a_pass_leaves_nothing_stale() {
    with_yields(true, |env, yields| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = filled(&mut space);
        *yields.sibling.lock().unwrap() = Some((p, PAGES));
        // Each pass with every page cached writable in the TLB first.
        let recache = |space: &mut Space<'_, '_>, pages: u64| {
            for i in 0..pages {
                read(space, p + i * PS).unwrap();
            }
        };
        let before = yields.yields.load(Ordering::Relaxed);
        let child = space.fork().unwrap();
        assert!(yields.yields.load(Ordering::Relaxed) > before, "fork yielded");
        recache(&mut space, PAGES);
        let before = yields.yields.load(Ordering::Relaxed);
        space.mprotect(VirtAddr::new(p), PAGES * PS, Prot::READ).unwrap();
        assert!(yields.yields.load(Ordering::Relaxed) > before, "mprotect yielded");
        space.mprotect(VirtAddr::new(p), PAGES * PS, RW).unwrap();
        for i in 0..PAGES {
            write(&mut space, p + i * PS, 0xa0 ^ i as u8).unwrap();
        }
        let before = yields.yields.load(Ordering::Relaxed);
        space.madvise(VirtAddr::new(p), PAGES / 2 * PS, Advice::DontNeed).unwrap();
        assert!(yields.yields.load(Ordering::Relaxed) > before, "madvise yielded");
        recache(&mut space, PAGES);
        let before = yields.yields.load(Ordering::Relaxed);
        space.munmap(VirtAddr::new(p), PAGES * PS).unwrap();
        assert!(yields.yields.load(Ordering::Relaxed) > before, "munmap yielded");
        *yields.sibling.lock().unwrap() = None;
        // The child kept what the parent had at the fork.
        let mut child = child;
        for i in (0..PAGES).step_by(97) {
            assert_eq!(read(&mut child, p + i * PS), Ok(i as u8));
        }
        drop(child);
        drop(space);
    });
}

/// A session of long calls; returns what user space can see afterwards.
fn session(env: &TestEnv<'_>) -> (Vec<u8>, String, usize, usize) {
    let mut space = AddressSpace::new(env).unwrap();
    let p = filled(&mut space);
    let mut child = space.fork().unwrap();
    for i in (0..PAGES).step_by(3) {
        write(&mut child, p + i * PS, 0x55).unwrap();
    }
    for i in (0..PAGES - 16).step_by(64) {
        space.mprotect(VirtAddr::new(p + i * PS), 16 * PS, Prot::READ).unwrap();
    }
    space.madvise(VirtAddr::new(p + 100 * PS), 300 * PS, Advice::DontNeed).unwrap();
    space.munmap(VirtAddr::new(p + 700 * PS), 200 * PS).unwrap();
    let mut seen = Vec::new();
    for i in 0..PAGES {
        let at = p + i * PS;
        seen.push(read(&mut space, at).unwrap_or(0xee));
        seen.push(read(&mut child, at).unwrap_or(0xee));
    }
    let mut maps = String::new();
    space.write_maps(&mut maps).unwrap();
    child.write_maps(&mut maps).unwrap();
    let shape = (space.resident_pages() + child.resident_pages(), space.table_pages() + child.table_pages());
    drop(child);
    drop(space);
    (seen, maps, shape.0, shape.1)
}

#[test]
fn a_run_that_yields_at_every_question_ends_as_one_that_never_does() {
    let (never, never_yields) = with_yields(false, |env, yields| (session(env), yields.yields.load(Ordering::Relaxed)));
    let (always, always_yields) =
        with_yields(true, |env, yields| (session(env), yields.yields.load(Ordering::Relaxed)));
    assert_eq!(never_yields, 0);
    assert!(always_yields > PAGES as usize / PAUSE_SPACING);
    assert_eq!(never, always);
}
