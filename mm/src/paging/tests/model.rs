//! The table code driven against the TLB model: accesses see every change,
//! and the model catches deliberately wrong maintenance.

use super::{pages, Fixture, RAM_BASE};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::FrameAllocator;
use crate::paging::{Mapping, PageAttrs, PageSize, PagingError, VaHalf};
use crate::testbed::NoTlb;
use crate::testbed::{AccessKind, El, Fault, Machine, RecordingTlb};
use crate::tlb::{Asid, TlbOps, TlbScope};

const MIB: u64 = 1 << 20;
const LINEAR: u64 = 0xffff_0000_0000_0000;
const X: VirtAddr = VirtAddr::new(0x40_0000);

fn read_tag(cpu: &Machine<'_>, el: El, va: VirtAddr) -> Result<u64, Fault> {
    let mut bytes = [0; 8];
    cpu.read_bytes(el, va, &mut bytes)?;
    Ok(u64::from_ne_bytes(bytes))
}

#[test]
fn address_spaces_keep_their_entries_across_switches() {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut a = fx.table(VaHalf::Lower);
    let mut b = fx.table(VaHalf::Lower);
    a.map(pages(X.as_u64(), 1), fx.data_frame(0xa), PageAttrs::USER_RW).unwrap();
    b.map(pages(X.as_u64(), 1), fx.data_frame(0xb), PageAttrs::USER_RW).unwrap();
    for round in 0..3 {
        cpu.switch(a.root(), Asid(1));
        assert_eq!(read_tag(&cpu, El::El0, X), Ok(0xa), "round {round}");
        cpu.switch(b.root(), Asid(2));
        assert_eq!(read_tag(&cpu, El::El0, X), Ok(0xb), "round {round}");
    }
    // Two misses, then hits only: switching dropped nothing.
    assert_eq!(cpu.stats().leaf_misses, 2);
    assert_eq!(cpu.stats().leaf_hits, 4);
    assert_eq!(cpu.cached_leaves(), 2);
    cpu.write_bytes(El::El0, X + 8, b"written").unwrap();
    let mut back = [0; 7];
    cpu.read_bytes(El::El1, X + 8, &mut back).unwrap();
    assert_eq!(&back, b"written");

    a.destroy(&cpu, TlbScope::Asid(Asid(1)), fx.free_leaf());
    b.destroy(&cpu, TlbScope::Asid(Asid(2)), fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn changes_are_seen_after_their_maintenance() {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, X.as_u64(), 2, PageAttrs::USER_RW);
    cpu.switch(pt.root(), Asid(3));
    let scope = TlbScope::Asid(Asid(3));
    cpu.write(El::El0, X, 1).unwrap();
    cpu.write(El::El0, X + PAGE_SIZE, 1).unwrap();

    pt.edit(&cpu, scope, |_| {}).protect(pages(X.as_u64(), 1), PageAttrs::USER_RO).unwrap();
    assert_eq!(cpu.write(El::El0, X, 2), Err(Fault::Permission { va: X, level: 3 }));
    assert_eq!(cpu.write(El::El1, X, 2), Err(Fault::Permission { va: X, level: 3 }));
    assert_eq!(cpu.read(El::El0, X), Ok(1));

    pt.edit(&cpu, scope, fx.free_leaf()).unmap(pages(X.as_u64(), 1)).unwrap();
    assert_eq!(cpu.read(El::El0, X), Err(Fault::Translation { va: X, level: 3 }));
    assert_eq!(cpu.read(El::El0, X + PAGE_SIZE), Ok(1));
    pt.edit(&cpu, scope, fx.free_leaf()).unmap(pages(X.as_u64(), 2)).unwrap();
    // Every table went with the last page: the root's entry faults.
    assert_eq!(cpu.read(El::El0, X + PAGE_SIZE), Err(Fault::Translation { va: X + PAGE_SIZE, level: 0 }));

    // Mapped again (new tables, new frame): no maintenance needed.
    fx.map_pages(&mut pt, X.as_u64(), 1, PageAttrs::USER_RX);
    assert_eq!(read_tag(&cpu, El::El0, X), Ok(0));
    pt.destroy(&cpu, scope, fx.free_leaf());
    assert_eq!(fx.in_use(), 0);
}

#[test]
fn permissions_follow_the_attributes() {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut pt = fx.table(VaHalf::Lower);
    let va = |i: u64| X + i * PAGE_SIZE;
    for (i, attrs) in [PageAttrs::USER_RW, PageAttrs::USER_RX, PageAttrs::KERNEL_RX.non_global(), PageAttrs::KERNEL_RW]
        .into_iter()
        .enumerate()
    {
        fx.map_pages(&mut pt, va(i as u64).as_u64(), 1, attrs);
    }
    cpu.switch(pt.root(), Asid(1));
    fn perm<T>(va: VirtAddr) -> Result<T, Fault> {
        Err(Fault::Permission { va, level: 3 })
    }
    // User RW: EL1 may read and write it, nobody executes it.
    assert!(cpu.write(El::El0, va(0), 1).is_ok());
    assert!(cpu.write(El::El1, va(0), 1).is_ok());
    assert_eq!(cpu.exec(El::El0, va(0)), perm(va(0)));
    assert_eq!(cpu.exec(El::El1, va(0)), perm(va(0)));
    // User RX: EL0 executes, EL1 never (PXN).
    assert!(cpu.exec(El::El0, va(1)).is_ok());
    assert_eq!(cpu.exec(El::El1, va(1)), perm(va(1)));
    assert_eq!(cpu.write(El::El0, va(1), 1), perm(va(1)));
    // Kernel RX: EL1 executes; EL0 has no access at all (UXN too).
    assert!(cpu.exec(El::El1, va(2)).is_ok());
    assert_eq!(cpu.read(El::El0, va(2)), perm(va(2)));
    assert_eq!(cpu.exec(El::El0, va(2)), perm(va(2)));
    // Kernel RW (global).
    assert!(cpu.write(El::El1, va(3), 1).is_ok());
    assert_eq!(cpu.exec(El::El1, va(3)), perm(va(3)));
    assert_eq!(cpu.read(El::El0, va(3)), perm(va(3)));
    // Unmapped and non-canonical addresses.
    assert_eq!(cpu.read(El::El1, va(4)), Err(Fault::Translation { va: va(4), level: 3 }));
    let bad = VirtAddr::new(0x8000_0000_0000_0000);
    assert_eq!(cpu.read(El::El1, bad), Err(Fault::NonCanonical(bad)));
    assert_eq!(
        cpu.read(El::El1, VirtAddr::new(LINEAR)),
        Err(Fault::Translation { va: VirtAddr::new(LINEAR), level: 0 }),
        "no TTBR1 table yet"
    );
}

#[test]
fn kernel_linear_map_split_and_protect() {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut kernel = fx.table(VaHalf::Upper);
    let ram = fx.arena.range();
    let linear = VirtRange::from_start_size(VirtAddr::new(LINEAR + ram.start.as_u64()), ram.size()).unwrap();
    kernel.map_linear(linear, ram.start, PageAttrs::KERNEL_RW).unwrap();
    assert_eq!(kernel.query(linear.start).unwrap().size, PageSize::Size2M);
    cpu.set_ttbr1(kernel.root());
    let data = fx.data_frame(0x1234);
    let data_va = VirtAddr::new(LINEAR + data.as_u64());
    assert_eq!(read_tag(&cpu, El::El1, data_va), Ok(0x1234));
    // Kernel pages stay hit under any ASID: they are global.
    cpu.switch(PhysAddr::new(0), Asid(9));
    assert_eq!(read_tag(&cpu, El::El1, data_va), Ok(0x1234));
    assert_eq!(cpu.stats().leaf_hits, 1);

    let mut ed = kernel.edit(&cpu, TlbScope::AllAsids, |_| {});
    ed.split(data_va, PageSize::Size4K).unwrap();
    ed.protect(VirtRange::from_start_size(data_va, PAGE_SIZE).unwrap(), PageAttrs::KERNEL_RO).unwrap();
    ed.finish();
    assert_eq!(cpu.write(El::El1, data_va, 0), Err(Fault::Permission { va: data_va, level: 3 }));
    for neighbour in [data - PAGE_SIZE, data + PAGE_SIZE] {
        if ram.contains(neighbour) {
            // Translate only: the neighbour may be a table page.
            let va = VirtAddr::new(LINEAR + neighbour.as_u64());
            assert_eq!(cpu.translate(El::El1, va, AccessKind::Write), Ok(neighbour));
        }
    }
    assert_eq!(read_tag(&cpu, El::El1, data_va), Ok(0x1234));
    // A device window: Device memory, never executable.
    let uart = VirtRange::from_start_size(VirtAddr::new(LINEAR + 0x0900_0000), PAGE_SIZE).unwrap();
    kernel.map_linear(uart, PhysAddr::new(0x0900_0000), PageAttrs::KERNEL_DEVICE).unwrap();
    assert_eq!(cpu.exec(El::El1, uart.start), Err(Fault::Permission { va: uart.start, level: 3 }));
    assert_eq!(cpu.read(El::El1, uart.start), Err(Fault::External { pa: PhysAddr::new(0x0900_0000) }));
}

/// Forwards to the model, possibly mangling each invalidation.
struct Mangled<'m, 'a> {
    cpu: &'m Machine<'a>,
    /// Turns every invalidation leaf-only.
    leaf_only: bool,
    /// Invalidates ASIDs with the lowest bit flipped.
    wrong_asid: bool,
}

impl TlbOps for Mangled<'_, '_> {
    fn begin(&self) {
        self.cpu.begin();
    }
    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool) {
        let asid = if self.wrong_asid { Asid(asid.0 ^ 1) } else { asid };
        self.cpu.invalidate_page(asid, va, leaf_only || self.leaf_only);
    }
    fn invalidate_asid(&self, asid: Asid) {
        self.cpu.invalidate_asid(if self.wrong_asid { Asid(asid.0 ^ 1) } else { asid });
    }
    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool) {
        self.cpu.invalidate_kernel_page(va, leaf_only || self.leaf_only);
    }
    fn invalidate_all(&self) {
        self.cpu.invalidate_all();
    }
    fn invalidate_all_local(&self) {
        self.cpu.invalidate_all_local();
    }
    fn sync(&self) {
        self.cpu.sync();
    }
}

/// Maps `X` to a frame tagged 1, reads it (caching it) under ASID 2,
/// unmaps it with maintenance mangled as told (`None`: none at all), maps
/// `X` to a frame tagged 2 with fresh tables, and reads it again.
fn remap_with(mangle: Option<(bool, bool)>) {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut pt = fx.table(VaHalf::Lower);
    pt.map(pages(X.as_u64(), 1), fx.data_frame(1), PageAttrs::USER_RW).unwrap();
    cpu.switch(pt.root(), Asid(2));
    assert_eq!(read_tag(&cpu, El::El0, X), Ok(1));
    let scope = TlbScope::Asid(Asid(2));
    match mangle {
        Some((leaf_only, wrong_asid)) => {
            let tlb = Mangled { cpu: &cpu, leaf_only, wrong_asid };
            pt.edit(&tlb, scope, fx.free_leaf()).unmap(pages(X.as_u64(), 1)).unwrap();
        }
        None => pt.edit(&NoTlb, scope, fx.free_leaf()).unmap(pages(X.as_u64(), 1)).unwrap(),
    }
    // Keep the freed table pages (and frame) out of the new mapping, so a
    // stale walk-cache entry leads to an old, empty table.
    let held: std::vec::Vec<_> = (0..4).map(|_| fx.data_frame(0)).collect();
    pt.map(pages(X.as_u64(), 1), fx.data_frame(2), PageAttrs::USER_RW).unwrap();
    assert_eq!(read_tag(&cpu, El::El0, X), Ok(2));
    drop(held);
}

#[test]
fn correct_maintenance_passes_the_model() {
    remap_with(Some((false, false)));
}

#[test]
#[should_panic(expected = "freed while CPU 0's TLB still leads to it")]
fn model_catches_a_missing_invalidation() {
    remap_with(None);
}

#[test]
#[should_panic(expected = "freed while CPU 0's TLB still leads to it")]
fn model_catches_an_invalidation_of_the_wrong_asid() {
    remap_with(Some((false, true)));
}

#[test]
#[should_panic(expected = "freed while CPU 0's TLB still leads to it")]
fn model_catches_leaf_only_invalidation_of_freed_tables() {
    remap_with(Some((true, false)));
}

#[test]
#[should_panic(expected = "stale translation")]
fn model_catches_a_permission_change_without_invalidation() {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut pt = fx.table(VaHalf::Lower);
    fx.map_pages(&mut pt, X.as_u64(), 1, PageAttrs::USER_RW);
    cpu.switch(pt.root(), Asid(1));
    cpu.write(El::El0, X, 1).unwrap();
    pt.edit(&NoTlb, TlbScope::Asid(Asid(1)), |_| {}).protect(pages(X.as_u64(), 1), PageAttrs::USER_RO).unwrap();
    // The TLB still says writable; the tables say read-only.
    let _ = cpu.write(El::El0, X, 2);
}

#[test]
#[should_panic(expected = "break-before-make violated")]
fn model_catches_a_split_without_break_before_make() {
    let fx = Fixture::new(4 * MIB);
    let cpu = fx.machine();
    let mut kernel = fx.table(VaHalf::Upper);
    let block = VirtRange::from_start_size(VirtAddr::new(LINEAR + RAM_BASE.as_u64()), 2 * MIB).unwrap();
    kernel.map_linear(block, RAM_BASE, PageAttrs::KERNEL_RW).unwrap();
    cpu.set_ttbr1(kernel.root());
    let _ = cpu.read(El::El1, block.start + PAGE_SIZE);
    kernel.edit(&NoTlb, TlbScope::AllAsids, |_| {}).split(block.start, PageSize::Size4K).unwrap();
    let _ = cpu.read(El::El1, block.start + PAGE_SIZE);
}

#[test]
#[should_panic(expected = "outside begin()..sync()")]
fn recording_tlb_catches_an_invalidation_outside_the_bracket() {
    RecordingTlb::new().invalidate_asid(Asid(1));
}

/// `Editor::set` over a leaf two CPUs hold: another output address needs
/// break-before-make, so it is refused and never reaches the table (the
/// model would fail the write while the TLBs hold the old leaf).
#[test]
fn set_never_moves_a_live_entry_under_the_tlbs() {
    let fx = Fixture::new(4 * MIB);
    let cpus = Machine::with_cpus(&fx.arena, 2);
    cpus.watch_frees(&fx.frames);
    let mut pt = fx.table(VaHalf::Lower);
    let (a, b) = (fx.data_frame(0xa), fx.data_frame(0xb));
    let scope = TlbScope::Asid(Asid(3));
    let leaf = |pa| Mapping { va: X, pa, size: PageSize::Size4K, attrs: PageAttrs::USER_RW };
    pt.edit(&cpus, scope, |_| {}).set(leaf(a)).unwrap();
    for cpu in 0..2 {
        cpus.on(cpu).switch(pt.root(), Asid(3));
        assert_eq!(read_tag(&cpus, El::El0, X), Ok(0xa));
    }
    let refused = pt.edit(&cpus, scope, |_| {}).set(leaf(b));
    assert_eq!(refused, Err(PagingError::NeedsBreakBeforeMake(X)));
    for cpu in 0..2 {
        assert_eq!(read_tag(cpus.on(cpu), El::El0, X), Ok(0xa));
    }
    pt.destroy(&cpus, scope, fx.free_leaf());
    fx.frames.free_frame(b);
    assert_eq!(fx.in_use(), 0);
}
