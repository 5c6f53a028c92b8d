//! Device trees built by [`DtbBuilder`], one feature at a time.

use super::builder::{reg_cells, DtbBuilder};
use crate::{parse, DtError, PsciMethod, Range, RangeList};

/// Ranges as `(start, size)` pairs, for comparing.
fn pairs(list: &RangeList) -> Vec<(u64, u64)> {
    list.iter().map(|r| (r.start, r.size)).collect()
}

/// A root node with the given cell counts and nothing else yet.
fn root(address_cells: u32, size_cells: u32) -> DtbBuilder {
    let mut b = DtbBuilder::new();
    b.begin_node("").prop_cells("#address-cells", &[address_cells]).prop_cells("#size-cells", &[size_cells]);
    b
}

/// A top-level memory node.
fn memory_node(b: &mut DtbBuilder, name: &str, cells: (u32, u32), entries: &[(u64, u64)]) {
    b.begin_node(name)
        .prop_str("device_type", "memory")
        .prop_cells("reg", &reg_cells(cells.0, cells.1, entries))
        .end_node();
}

/// A tree using every feature the parser looks at; with `nops`, an
/// `FDT_NOP` follows every token.
pub(super) fn rich_tree(nops: bool) -> Vec<u8> {
    let mut b = DtbBuilder::new();
    let n = |b: &mut DtbBuilder| {
        if nops {
            b.nop();
        }
    };
    b.memreserve(0x1000, 0x2000).memreserve(0x8000_0000, 0x10_0000);
    n(&mut b);
    b.begin_node("");
    n(&mut b);
    b.prop_str("model", "Aspen Test Board");
    n(&mut b);
    b.prop("compatible", b"aspen,test\0aspen,generic\0");
    n(&mut b);
    b.prop_cells("#address-cells", &[2]).prop_cells("#size-cells", &[2]);
    n(&mut b);
    b.begin_node("cpus").prop_cells("#address-cells", &[1]).prop_cells("#size-cells", &[0]);
    n(&mut b);
    b.begin_node("cpu@0").prop_str("device_type", "cpu").prop_cells("reg", &[0]).end_node();
    n(&mut b);
    b.end_node();
    n(&mut b);
    b.begin_node("psci").prop("compatible", b"arm,psci-1.0\0arm,psci-0.2\0");
    n(&mut b);
    b.prop_str("method", "smc").end_node();
    n(&mut b);
    // reg before device_type, as QEMU writes it.
    b.begin_node("memory@40000000")
        .prop_cells("reg", &reg_cells(2, 2, &[(0x4000_0000, 0x4000_0000), (0x1_0000_0000, 0x8000_0000)]));
    n(&mut b);
    b.prop_str("device_type", "memory").end_node();
    n(&mut b);
    b.begin_node("memory@200000000").prop_str("device_type", "memory");
    n(&mut b);
    b.prop_cells("reg", &reg_cells(2, 2, &[(0x2_0000_0000, 0x1000_0000)]));
    n(&mut b);
    b.end_node();
    n(&mut b);
    b.begin_node("reserved-memory")
        .prop_cells("#address-cells", &[2])
        .prop_cells("#size-cells", &[2])
        .prop("ranges", &[]);
    n(&mut b);
    b.begin_node("secmon@3e000000").prop_cells("reg", &reg_cells(2, 2, &[(0x3e00_0000, 0x20_0000)]));
    n(&mut b);
    b.prop("no-map", &[]).end_node();
    n(&mut b);
    b.begin_node("linux,cma").prop_cells("size", &[0, 0x400_0000]).prop("reusable", &[]).end_node();
    n(&mut b);
    b.begin_node("nvram@0").prop_cells("reg", &reg_cells(2, 2, &[(0, 0x1000)]));
    n(&mut b);
    b.prop_str("status", "disabled").end_node();
    n(&mut b);
    b.end_node();
    n(&mut b);
    b.begin_node("chosen").prop_str("bootargs", "console=ttyAMA0 root=/dev/vda");
    n(&mut b);
    b.prop_cells("linux,initrd-start", &[0x0, 0x4800_0000])
        .prop_cells("linux,initrd-end", &[0x0, 0x4810_0000])
        .prop_str("stdout-path", "serial0:115200n8");
    n(&mut b);
    b.end_node();
    n(&mut b);
    b.end_node();
    n(&mut b);
    b.build()
}

#[test]
fn rich_tree_reads_everything() {
    let blob = rich_tree(false);
    let info = parse(&blob).unwrap();
    assert_eq!(info.model, "Aspen Test Board");
    assert_eq!(info.compatible, "aspen,test");
    assert_eq!(
        pairs(&info.ram),
        [(0x4000_0000, 0x4000_0000), (0x1_0000_0000, 0x8000_0000), (0x2_0000_0000, 0x1000_0000)]
    );
    assert_eq!(pairs(&info.reserved), [(0x1000, 0x2000), (0x8000_0000, 0x10_0000), (0x3e00_0000, 0x20_0000)]);
    assert!(!info.ram.is_truncated() && !info.reserved.is_truncated());
    assert_eq!(info.bootargs, "console=ttyAMA0 root=/dev/vda");
    assert_eq!(info.initrd, Some((0x4800_0000, 0x4810_0000)));
    assert_eq!(info.psci_method, Some(PsciMethod::Smc));
    assert_eq!(info.stdout_path, "serial0:115200n8");
    assert_eq!(info.total_size as usize, blob.len());
}

#[test]
fn nops_everywhere_change_nothing() {
    let plain = rich_tree(false);
    let with_nops = rich_tree(true);
    assert!(with_nops.len() > plain.len());
    let (a, b) = (parse(&plain).unwrap(), parse(&with_nops).unwrap());
    assert_eq!(a.ram, b.ram);
    assert_eq!(a.reserved, b.reserved);
    assert_eq!((a.model, a.bootargs, a.initrd, a.psci_method), (b.model, b.bootargs, b.initrd, b.psci_method));
}

#[test]
fn nop_before_root_and_before_end() {
    let mut b = DtbBuilder::new();
    b.nop().nop().begin_node("").nop().prop_str("model", "m").nop().end_node().nop();
    assert_eq!(parse(&b.build()).unwrap().model, "m");
}

#[test]
fn one_and_two_cell_addresses_and_sizes() {
    for (ac, sc) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
        let mut b = root(ac, sc);
        let big_size = if sc == 2 { 0x1_0000_0000 } else { 0x1000_0000 };
        let high_address = if ac == 2 { 0x8_0000_0000 } else { 0x8000_0000 };
        memory_node(&mut b, "memory@0", (ac, sc), &[(0, 0x1000), (high_address, big_size)]);
        b.end_node();
        let blob = b.build();
        let info = parse(&blob).unwrap();
        assert_eq!(pairs(&info.ram), [(0, 0x1000), (high_address, big_size)], "cells {ac}/{sc}");
    }
}

#[test]
fn cells_default_to_two_and_one() {
    let mut b = DtbBuilder::new();
    b.begin_node("");
    memory_node(&mut b, "memory", (2, 1), &[(0x8_0000_0000, 0x4000_0000)]);
    b.end_node();
    assert_eq!(pairs(&parse(&b.build()).unwrap().ram), [(0x8_0000_0000, 0x4000_0000)]);
}

#[test]
fn unsupported_cells_are_an_error_only_when_used() {
    let mut b = root(3, 1);
    b.begin_node("memory@0").prop_str("device_type", "memory").prop_cells("reg", &[0, 0, 0, 0x1000]).end_node();
    b.end_node();
    assert_eq!(parse(&b.build()), Err(DtError::BadCells));

    let mut b = root(3, 1);
    b.begin_node("chosen").prop_str("bootargs", "x").end_node();
    b.end_node();
    assert_eq!(parse(&b.build()).unwrap().bootargs, "x");

    let mut b = root(2, 0);
    memory_node(&mut b, "memory@0", (2, 1), &[(0, 0x1000)]);
    b.end_node();
    assert_eq!(parse(&b.build()), Err(DtError::BadCells));
}

#[test]
fn several_memory_nodes_with_several_entries() {
    let mut b = root(2, 1);
    memory_node(&mut b, "memory@0", (2, 1), &[(0, 0x3b40_0000), (0x4000_0000, 0xbc00_0000)]);
    memory_node(&mut b, "memory@100000000", (2, 1), &[(0x1_0000_0000, 0x8000_0000), (0x1_8000_0000, 0x8000_0000)]);
    memory_node(&mut b, "memory@200000000", (2, 1), &[(0x2_0000_0000, 0x1000)]);
    b.end_node();
    let blob = b.build();
    let info = parse(&blob).unwrap();
    assert_eq!(
        pairs(&info.ram),
        [
            (0, 0x3b40_0000),
            (0x4000_0000, 0xbc00_0000),
            (0x1_0000_0000, 0x8000_0000),
            (0x1_8000_0000, 0x8000_0000),
            (0x2_0000_0000, 0x1000)
        ]
    );
    assert_eq!(info.ram.len(), 5);
    assert_eq!(info.ram.as_slice()[1], Range { start: 0x4000_0000, size: 0xbc00_0000 });
    assert_eq!(info.ram.as_slice()[1].end(), 0xfc00_0000);
}

#[test]
fn only_enabled_top_level_nodes_with_device_type_memory_are_ram() {
    let mut b = root(1, 1);
    // Named like memory but no device_type.
    b.begin_node("memory@1000").prop_cells("reg", &[0x1000, 0x1000]).end_node();
    // device_type memory under any name.
    b.begin_node("dram@2000").prop_str("device_type", "memory").prop_cells("reg", &[0x2000, 0x1000]).end_node();
    // Disabled.
    b.begin_node("memory@3000")
        .prop_str("device_type", "memory")
        .prop_cells("reg", &[0x3000, 0x1000])
        .prop_str("status", "disabled")
        .end_node();
    // Explicitly okay.
    b.begin_node("memory@4000")
        .prop_str("status", "okay")
        .prop_str("device_type", "memory")
        .prop_cells("reg", &[0x4000, 0x1000])
        .end_node();
    // Not a direct child of the root.
    b.begin_node("soc")
        .prop_cells("#address-cells", &[1])
        .prop_cells("#size-cells", &[1])
        .begin_node("sram@5000")
        .prop_str("device_type", "memory")
        .prop_cells("reg", &[0x5000, 0x1000])
        .end_node()
        .end_node();
    // Another device type.
    b.begin_node("cpu@0").prop_str("device_type", "cpu").prop_cells("reg", &[0x6000, 0x1000]).end_node();
    b.end_node();
    assert_eq!(pairs(&parse(&b.build()).unwrap().ram), [(0x2000, 0x1000), (0x4000, 0x1000)]);
}

#[test]
fn empty_entries_are_skipped_and_overflowing_ones_rejected() {
    let mut b = root(2, 2);
    memory_node(&mut b, "memory@0", (2, 2), &[(0x1000, 0), (0x2000, 0x1000)]);
    b.end_node();
    assert_eq!(pairs(&parse(&b.build()).unwrap().ram), [(0x2000, 0x1000)]);

    let mut b = root(2, 2);
    memory_node(&mut b, "memory@0", (2, 2), &[(u64::MAX - 0xfff, 0x1000)]);
    b.end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));

    let mut b = root(2, 2);
    memory_node(&mut b, "memory@0", (2, 2), &[(u64::MAX - 0xfff, 0xfff)]);
    b.end_node();
    assert_eq!(pairs(&parse(&b.build()).unwrap().ram), [(u64::MAX - 0xfff, 0xfff)]);
}

#[test]
fn reg_of_the_wrong_length_is_malformed() {
    let mut b = root(2, 1);
    b.begin_node("memory@0").prop_str("device_type", "memory").prop_cells("reg", &[0, 0x1000]).end_node();
    b.end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));
}

#[test]
fn reserved_memory_children_use_its_cells() {
    let mut b = root(2, 2);
    b.begin_node("reserved-memory")
        .prop_cells("#address-cells", &[1])
        .prop_cells("#size-cells", &[1])
        .prop("ranges", &[]);
    b.begin_node("a@1000").prop_cells("reg", &[0x1000, 0x1000, 0x8000, 0x100]).end_node();
    b.begin_node("b@2000").prop_str("status", "okay").prop_cells("reg", &[0x2000, 0x10]).end_node();
    // Grandchildren are not reservations.
    b.begin_node("c").begin_node("d@3000").prop_cells("reg", &[0x3000, 0x10]).end_node().end_node();
    b.end_node();
    b.end_node();
    assert_eq!(pairs(&parse(&b.build()).unwrap().reserved), [(0x1000, 0x1000), (0x8000, 0x100), (0x2000, 0x10)]);
}

#[test]
fn reserved_memory_without_cells_uses_the_roots() {
    let mut b = root(2, 1);
    b.begin_node("reserved-memory@0");
    b.begin_node("fw@1000").prop_cells("reg", &reg_cells(2, 1, &[(0x1_0000_1000, 0x1000)])).end_node();
    b.end_node();
    b.end_node();
    assert_eq!(pairs(&parse(&b.build()).unwrap().reserved), [(0x1_0000_1000, 0x1000)]);
}

#[test]
fn memreserve_entries() {
    let mut b = DtbBuilder::new();
    b.memreserve(0, 0x1000).memreserve(0x1_0000_0000, 0x20_0000).memreserve(0x5000, 0);
    b.begin_node("").end_node();
    // A zero size ends the block: the entry after it is not read.
    assert_eq!(pairs(&parse(&b.build()).unwrap().reserved), [(0, 0x1000), (0x1_0000_0000, 0x20_0000)]);
}

/// `linux,initrd-start` cells, `linux,initrd-end` cells, the initrd expected.
type InitrdCase = (&'static [u32], &'static [u32], Option<(u64, u64)>);

#[test]
fn initrd_as_32_and_64_bit_numbers() {
    let cases: [InitrdCase; 6] = [
        (&[0x4800_0000], &[0x4810_0000], Some((0x4800_0000, 0x4810_0000))),
        (&[0x1, 0x0], &[0x1, 0x10_0000], Some((0x1_0000_0000, 0x1_0010_0000))),
        (&[0x4800_0000], &[0x0, 0x4810_0000], Some((0x4800_0000, 0x4810_0000))),
        (&[0x4810_0000], &[0x4800_0000], None),
        (&[0x4800_0000], &[0x4800_0000], None),
        (&[0, 0], &[0, 0], None),
    ];
    for (start, end, expected) in cases {
        let mut b = DtbBuilder::new();
        b.begin_node("")
            .begin_node("chosen")
            .prop_cells("linux,initrd-start", start)
            .prop_cells("linux,initrd-end", end)
            .end_node()
            .end_node();
        assert_eq!(parse(&b.build()).unwrap().initrd, expected, "{start:x?} {end:x?}");
    }
}

#[test]
fn initrd_needs_both_ends_of_a_valid_size() {
    let mut b = DtbBuilder::new();
    b.begin_node("").begin_node("chosen").prop_cells("linux,initrd-start", &[0x4800_0000]).end_node().end_node();
    assert_eq!(parse(&b.build()).unwrap().initrd, None);

    let mut b = DtbBuilder::new();
    b.begin_node("")
        .begin_node("chosen")
        .prop("linux,initrd-start", &[0, 0, 1])
        .prop_cells("linux,initrd-end", &[0x4800_0000])
        .end_node()
        .end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));
}

#[test]
fn missing_chosen() {
    let mut b = root(2, 2);
    memory_node(&mut b, "memory@0", (2, 2), &[(0x4000_0000, 0x1000_0000)]);
    b.end_node();
    let blob = b.build();
    let info = parse(&blob).unwrap();
    assert_eq!((info.bootargs, info.stdout_path, info.initrd), ("", "", None));
    assert_eq!((info.model, info.compatible, info.psci_method), ("", "", None));
    assert_eq!(info.ram.len(), 1);
}

#[test]
fn missing_memory() {
    let mut b = root(2, 2);
    b.begin_node("chosen").prop_str("bootargs", "quiet").end_node();
    b.end_node();
    let blob = b.build();
    let info = parse(&blob).unwrap();
    assert!(info.ram.is_empty() && !info.ram.is_truncated());
    assert_eq!(info.bootargs, "quiet");
}

#[test]
fn strings_stop_at_the_first_nul() {
    let mut b = DtbBuilder::new();
    b.begin_node("")
        .prop("model", b"board")
        .begin_node("chosen")
        .prop("bootargs", b"console=ttyS0\0\0\0")
        .prop("stdout-path", b"")
        .end_node()
        .end_node();
    let blob = b.build();
    let info = parse(&blob).unwrap();
    assert_eq!((info.model, info.bootargs, info.stdout_path), ("board", "console=ttyS0", ""));
}

#[test]
fn psci_methods() {
    for (method, expected) in [("hvc", Some(PsciMethod::Hvc)), ("smc", Some(PsciMethod::Smc)), ("spin-table", None)] {
        let mut b = DtbBuilder::new();
        b.begin_node("").begin_node("psci").prop_str("method", method).end_node().end_node();
        assert_eq!(parse(&b.build()).unwrap().psci_method, expected, "{method}");
    }
}

#[test]
fn more_ranges_than_capacity() {
    let entries: Vec<(u64, u64)> = (0..40u64).map(|i| (i << 20, 0x1000)).collect();
    let mut b = root(1, 1);
    memory_node(&mut b, "memory@0", (1, 1), &entries[..20]);
    memory_node(&mut b, "memory@1400000", (1, 1), &entries[20..]);
    for &(address, size) in &entries {
        b.memreserve(address, size);
    }
    b.end_node();
    let blob = b.build();
    let info = parse(&blob).unwrap();
    for list in [&info.ram, &info.reserved] {
        assert_eq!(list.len(), RangeList::CAPACITY);
        assert!(list.is_truncated());
        assert_eq!(pairs(list), entries[..RangeList::CAPACITY]);
    }
    let debug = format!("{:?}", info.ram);
    assert!(debug.starts_with("[0x0..0x1000, 0x100000..0x101000") && debug.ends_with("(truncated)]"), "{debug}");

    let mut b = root(1, 1);
    memory_node(&mut b, "memory@0", (1, 1), &entries[..RangeList::CAPACITY]);
    b.end_node();
    let blob = b.build();
    let info = parse(&blob).unwrap();
    assert_eq!(info.ram.len(), RangeList::CAPACITY);
    assert!(!info.ram.is_truncated());
}

#[test]
fn structural_errors_are_malformed() {
    // Root never closed.
    let mut b = DtbBuilder::new();
    b.begin_node("").begin_node("chosen").end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));
    // One END_NODE too many.
    let mut b = DtbBuilder::new();
    b.begin_node("").end_node().end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));
    // Two roots.
    let mut b = DtbBuilder::new();
    b.begin_node("").end_node().begin_node("").end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));
    // A property after a child node.
    let mut b = DtbBuilder::new();
    b.begin_node("").begin_node("chosen").end_node().prop_str("model", "late").end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));
    // A property outside the root.
    let mut b = DtbBuilder::new();
    b.prop_str("model", "outside").begin_node("").end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));
    // No node at all.
    assert_eq!(parse(&DtbBuilder::new().build()), Err(DtError::Malformed));
    // Non-UTF-8 bootargs.
    let mut b = DtbBuilder::new();
    b.begin_node("").begin_node("chosen").prop("bootargs", b"\xff\xfe\0").end_node().end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));
    // A cell count that is not one cell.
    let mut b = DtbBuilder::new();
    b.begin_node("").prop("#address-cells", &[0, 2]).end_node();
    assert_eq!(parse(&b.build()), Err(DtError::Malformed));
}

/// Overwrites header field `index` (a big-endian `u32`) of `blob`.
pub(super) fn set_header_field(blob: &mut [u8], index: usize, value: u32) {
    blob[index * 4..index * 4 + 4].copy_from_slice(&value.to_be_bytes());
}

#[test]
fn header_errors() {
    let good = rich_tree(false);
    assert_eq!(parse(&[]), Err(DtError::Truncated));
    assert_eq!(parse(&good[..39]), Err(DtError::Truncated));

    let mut blob = good.clone();
    set_header_field(&mut blob, 0, 0xfeed_d00d);
    assert_eq!(parse(&blob), Err(DtError::BadMagic));

    // totalsize larger than the blob.
    let mut blob = good.clone();
    set_header_field(&mut blob, 1, good.len() as u32 + 1);
    assert_eq!(parse(&blob), Err(DtError::Truncated));
    blob.push(0);
    assert!(parse(&blob).is_ok());
    let mut blob = good.clone();
    set_header_field(&mut blob, 1, u32::MAX);
    assert_eq!(parse(&blob), Err(DtError::Truncated));
    // totalsize smaller than a header.
    let mut blob = good.clone();
    set_header_field(&mut blob, 1, 20);
    assert_eq!(parse(&blob), Err(DtError::Malformed));

    // Version 16 (no size_dt_struct), or a blob needing a reader newer than 17.
    let mut blob = good.clone();
    set_header_field(&mut blob, 5, 16);
    assert_eq!(parse(&blob), Err(DtError::UnsupportedVersion));
    let mut blob = good.clone();
    set_header_field(&mut blob, 6, 18);
    assert_eq!(parse(&blob), Err(DtError::UnsupportedVersion));
    let mut blob = good.clone();
    set_header_field(&mut blob, 5, 18);
    assert!(parse(&blob).is_ok(), "a version 18 blob compatible with 16 is readable");

    // Blocks that overflow, overlap the header, or leave the blob.
    for (field, value) in
        [(2, u32::MAX - 3), (2, 8), (3, u32::MAX), (4, 0), (4, u32::MAX), (8, u32::MAX), (9, u32::MAX)]
    {
        let mut blob = good.clone();
        set_header_field(&mut blob, field, value);
        assert_eq!(parse(&blob), Err(DtError::Malformed), "field {field} = {value:#x}");
    }
    // A structure block too short to hold the root.
    for size in [0, 4, 8] {
        let mut blob = good.clone();
        set_header_field(&mut blob, 9, size);
        assert_eq!(parse(&blob), Err(DtError::Malformed), "size_dt_struct = {size}");
    }
}

#[test]
fn reservation_block_without_terminator_is_malformed() {
    let mut b = DtbBuilder::new();
    b.begin_node("").end_node();
    let mut blob = b.build();
    // Point the reservation block at the last 16 bytes, which are not a
    // zero-size entry and are followed by the end of the blob.
    let total = blob.len() as u32;
    blob.extend_from_slice(&[0xff; 16]);
    set_header_field(&mut blob, 1, total + 16);
    set_header_field(&mut blob, 4, total);
    assert_eq!(parse(&blob), Err(DtError::Malformed));
    // Same with a partial entry at the end.
    set_header_field(&mut blob, 4, total + 8);
    assert_eq!(parse(&blob), Err(DtError::Malformed));
}

#[test]
fn unknown_token_is_malformed() {
    let mut b = DtbBuilder::new();
    b.begin_node("").end_node();
    let mut blob = b.build();
    // The structure block starts right after the (empty) reservation block.
    let off_struct = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
    // BEGIN_NODE, "" padded, then END_NODE: replace END_NODE by 5.
    blob[off_struct + 8..off_struct + 12].copy_from_slice(&5u32.to_be_bytes());
    assert_eq!(parse(&blob), Err(DtError::Malformed));
}

#[test]
fn error_messages() {
    assert_eq!(DtError::BadMagic.to_string(), "not a device tree (bad magic number)");
    assert_eq!(DtError::Malformed.to_string(), "malformed device tree");
    assert_eq!(Range { start: 0x1000, size: 0x1000 }.to_string(), "0x1000..0x2000");
}

#[test]
fn deep_nesting_costs_nothing() {
    let mut b = DtbBuilder::new();
    b.begin_node("");
    for _ in 0..100_000 {
        b.begin_node("n");
    }
    for _ in 0..100_000 {
        b.end_node();
    }
    b.begin_node("chosen").prop_str("bootargs", "deep").end_node().end_node();
    assert_eq!(parse(&b.build()).unwrap().bootargs, "deep");
}

#[test]
fn chosen_seeds_are_read_and_a_malformed_kaslr_seed_is_none() {
    let mut b = root(2, 2);
    b.begin_node("chosen").prop("rng-seed", &[1, 2, 3, 4, 5, 6, 7, 8, 9]).prop_cells("kaslr-seed", &[0x1234, 0x5678]);
    b.end_node().end_node();
    let blob = b.build();
    let info = parse(&blob).unwrap();
    assert_eq!(info.rng_seed, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(info.kaslr_seed, Some(0x1234_0000_5678));

    let mut b = root(2, 2);
    b.begin_node("chosen").prop("kaslr-seed", &[1, 2, 3]).end_node().end_node();
    let blob = b.build();
    let info = parse(&blob).unwrap();
    assert_eq!((info.rng_seed, info.kaslr_seed), (&[][..], None));
}
