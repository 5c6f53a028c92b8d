//! Host benchmarks of the page-table operations, from 1 to 262,144 pages
//! (1 GiB of 4 KiB pages), to show how their cost grows with size:
//!
//! - `map`: [`PageTable::map`] of N pages into a fresh table (its root only);
//! - `unmap`: [`Editor::unmap`] of N mapped pages, the emptied table pages
//!   freed, until the tree is back to its root;
//! - `protect`: [`Editor::protect`] of N mapped pages, read-write to
//!   read-only;
//! - `fork-copy`: [`AddressSpace::fork`] of a space with N touched private
//!   anonymous pages (the child's tables, reference counts, the parent's
//!   write protection).
//!
//! Each case reports the time per operation and, through
//! `Throughput::Elements(N)`, per page. Everything an operation needs is
//! built before the clock starts and torn down after it stops: a fresh
//! table (or parent) for every timed operation, so each one does the same
//! work. Small cases time a batch of operations on separate inputs, so the
//! clock's own cost stays out of the result.
//!
//! The machine is the host testbed: table memory is an [`Arena`], frames come
//! from the [`BuddyAllocator`], and TLB maintenance is a no-op (the cost of
//! `TLBI`/`DSB` on hardware is not modelled here). The table benchmarks map
//! a physical range outside the arena: the table code never touches the
//! frames it maps, so only table pages need memory. `fork-copy` needs real
//! frames: its arena holds 1 GiB plus room for tables.
//!
//! Run with `scripts/host-bench.sh` (a table of the results) or
//! `cargo bench -p aspen-mm --bench paging [-- FILTER]`.

use aspen_mm::testbed::NoTlb;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};

use aspen_abi::mman::{MapFlags, Prot};
use aspen_mm::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use aspen_mm::asid::{AsidAllocator, AsidBits};
use aspen_mm::aspace::{AddressSpace, Env};
use aspen_mm::frame::{BuddyAllocator, FrameAllocator};
use aspen_mm::paging::{Editor, Mapping, PageAttrs, PageTable, VaHalf};
use aspen_mm::testbed::Arena;
use aspen_mm::tlb::{Asid, TlbScope};

/// Pages per operation: 1 page up to 1 GiB, by factors of 8.
const SIZES: [u64; 7] = [1, 8, 64, 512, 4096, 32_768, 262_144];

/// Where the simulated RAM starts.
const RAM_BASE: PhysAddr = PhysAddr::new(0x4000_0000);
/// Where the table benchmarks map: 1 GiB aligned, so N pages need exactly
/// one L1 and one L2 table and ceil(N / 512) L3 tables.
const VA_BASE: u64 = 0x40_0000_0000;
/// What the table benchmarks map to: 1 TiB, far outside the arena.
const FAKE_PA: PhysAddr = PhysAddr::new(0x100_0000_0000);
/// Operations timed together at most (small cases), and the pages they may
/// cover together before the batch shrinks to fewer operations.
const MAX_BATCH: u64 = 64;
const BATCH_PAGES: u64 = 4096;

const SCOPE: TlbScope = TlbScope::Asid(Asid(1));

/// Simulated RAM and its frame allocator.
struct Ram {
    arena: Arena,
    frames: BuddyAllocator<'static>,
}

impl Ram {
    /// `pages` frames, every one already backed by host memory, so that no
    /// timed operation pays for the host's first touch of a page.
    fn new(pages: u64) -> Self {
        let arena = Arena::new(RAM_BASE, pages * PAGE_SIZE);
        let frames = BuddyAllocator::new_owned(&[arena.range()]).expect("buddy over the arena");
        let mut taken = Vec::with_capacity(pages as usize);
        while let Ok(frame) = frames.alloc_frame() {
            arena.write_bytes(frame, &[0]);
            taken.push(frame);
        }
        for frame in taken {
            frames.free_frame(frame);
        }
        Self { arena, frames }
    }

    fn free(&self) -> usize {
        self.frames.free_frame_count()
    }
}

type Table<'a> = PageTable<'a, Arena, BuddyAllocator<'static>>;

fn pages(n: u64) -> VirtRange {
    VirtRange::from_start_size(VirtAddr::new(VA_BASE), n * PAGE_SIZE).expect("range")
}

/// Operations timed together for a case of `n` pages.
fn batch_for(n: u64) -> u64 {
    (BATCH_PAGES / n).clamp(1, MAX_BATCH)
}

/// Times `iters` runs of `routine`, each on its own input from `setup`,
/// `batch` at a time; `teardown` gets the inputs back after the clock
/// stopped. Only the routine is timed.
fn timed<S>(
    iters: u64,
    batch: u64,
    mut setup: impl FnMut() -> S,
    mut routine: impl FnMut(&mut S),
    mut teardown: impl FnMut(S),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    let mut inputs = Vec::with_capacity(batch as usize);
    while done < iters {
        let k = batch.min(iters - done);
        inputs.extend((0..k).map(|_| setup()));
        let start = Instant::now();
        for input in inputs.iter_mut() {
            routine(black_box(input));
        }
        total += start.elapsed();
        inputs.drain(..).for_each(&mut teardown);
        done += k;
    }
    total
}

fn new_table(ram: &Ram) -> Table<'_> {
    PageTable::new(&ram.arena, &ram.frames, VaHalf::Lower).expect("root table")
}

fn mapped_table(ram: &Ram, n: u64) -> Table<'_> {
    let mut table = new_table(ram);
    table.map(pages(n), FAKE_PA, PageAttrs::USER_RW).expect("map");
    table
}

fn destroy(table: Table<'_>) {
    table.destroy(&NoTlb, SCOPE, drop);
}

/// An editor of `table` that drops what it removes (the frames are fake).
fn editor<'e, 'a>(table: &'e mut Table<'a>) -> Editor<'e, 'a, Arena, BuddyAllocator<'static>, NoTlb, fn(Mapping)> {
    table.edit(&NoTlb, SCOPE, drop)
}

/// Large cases take milliseconds an operation: a linear ramp of iterations
/// (1, 2, .. 10 per sample) would not fit in the measurement time, so they
/// run the same iterations in every sample.
fn sampling(n: u64) -> SamplingMode {
    if n >= 32_768 {
        SamplingMode::Flat
    } else {
        SamplingMode::Linear
    }
}

fn configure<'c>(c: &'c mut Criterion, name: &str) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    // Ten samples in about a second per case keep the suite near a minute.
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    group
}

fn bench_tables(c: &mut Criterion) {
    // The largest case needs 515 table pages; the batches of small ones
    // fewer. Leaf frames are fake.
    let ram = Ram::new(4096);
    let baseline = ram.free();

    // Check once that the tables hold what the benchmarks think they do.
    for &n in &SIZES {
        let mut table = mapped_table(&ram, n);
        assert_eq!(table.table_pages() as u64, 3 + n.div_ceil(512), "{n} pages");
        editor(&mut table).protect(pages(n), PageAttrs::USER_RO).expect("protect");
        let last = VirtAddr::new(VA_BASE + (n - 1) * PAGE_SIZE);
        assert_eq!(table.query(last).expect("mapped").attrs, PageAttrs::USER_RO);
        editor(&mut table).unmap(pages(n)).expect("unmap");
        assert_eq!(table.table_pages(), 1, "{n} pages: unmap left table pages");
        destroy(table);
        assert_eq!(ram.free(), baseline, "{n} pages: frames leaked");
    }

    let mut group = configure(c, "map");
    for &n in &SIZES {
        group.throughput(Throughput::Elements(n)).sampling_mode(sampling(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    batch_for(n),
                    || new_table(&ram),
                    |t| t.map(pages(n), FAKE_PA, PageAttrs::USER_RW).expect("map"),
                    destroy,
                )
            })
        });
    }
    group.finish();

    let mut group = configure(c, "unmap");
    for &n in &SIZES {
        group.throughput(Throughput::Elements(n)).sampling_mode(sampling(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    batch_for(n),
                    || mapped_table(&ram, n),
                    |t| editor(t).unmap(pages(n)).expect("unmap"),
                    destroy,
                )
            })
        });
    }
    group.finish();

    let mut group = configure(c, "protect");
    for &n in &SIZES {
        group.throughput(Throughput::Elements(n)).sampling_mode(sampling(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    batch_for(n),
                    || mapped_table(&ram, n),
                    |t| editor(t).protect(pages(n), PageAttrs::USER_RO).expect("protect"),
                    destroy,
                )
            })
        });
    }
    group.finish();

    assert_eq!(ram.free(), baseline, "frames leaked");
}

type BenchEnv<'a> = Env<'a, Arena, NoTlb>;
type Space<'e, 'a> = AddressSpace<'e, BenchEnv<'a>>;

/// A running address space with `n` private anonymous pages, all written
/// (populated writable), as a process that touched them before fork.
fn touched_space<'e, 'a>(env: &'e BenchEnv<'a>, n: u64) -> Space<'e, 'a> {
    let mut space = AddressSpace::new(env).expect("address space");
    space.activate(0);
    space
        .mmap(
            VirtAddr::new(0),
            n * PAGE_SIZE,
            Prot::READ | Prot::WRITE,
            MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::POPULATE,
            None,
            0,
        )
        .expect("mmap");
    space
}

fn bench_fork(c: &mut Criterion) {
    let largest = SIZES[SIZES.len() - 1];
    // The parent's pages and tables, the child's tables, and room for the
    // batches of small cases.
    let ram = Ram::new(largest + 8192);
    let tlb = NoTlb;
    let asids = AsidAllocator::new(AsidBits::Sixteen);
    let env = Env::new(&ram.arena, &ram.frames, &tlb, &asids);
    let baseline = ram.free();

    for &n in &SIZES {
        let mut parent = touched_space(&env, n);
        assert_eq!(parent.resident_pages() as u64, n);
        let child = parent.fork().expect("fork");
        assert_eq!(child.resident_pages() as u64, n);
        assert_eq!(child.table_pages(), parent.table_pages());
        drop(child);
        drop(parent);
        assert_eq!(ram.free(), baseline, "{n} pages: frames leaked");
    }

    let mut group = configure(c, "fork-copy");
    for &n in &SIZES {
        group.throughput(Throughput::Elements(n)).sampling_mode(sampling(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    batch_for(n),
                    || (touched_space(&env, n), None),
                    |(parent, child): &mut (Space<'_, '_>, Option<Space<'_, '_>>)| {
                        *child = Some(parent.fork().expect("fork"));
                    },
                    |(parent, child)| {
                        drop(child);
                        drop(parent);
                    },
                )
            })
        });
    }
    group.finish();

    assert_eq!(ram.free(), baseline, "frames leaked");
}

criterion_group!(benches, bench_tables, bench_fork);
criterion_main!(benches);
