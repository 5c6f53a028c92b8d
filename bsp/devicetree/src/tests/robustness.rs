//! Corrupted, truncated and random blobs: `parse` must return, never panic.

use proptest::prelude::*;

use super::builder::{reg_cells, DtbBuilder};
use super::synthetic::{rich_tree, set_header_field};
use super::QEMU_VIRT_1G;
use crate::{parse, parse_raw, DtError, RangeList};

/// The valid blobs the corruptions start from.
fn seeds() -> Vec<Vec<u8>> {
    vec![QEMU_VIRT_1G.to_vec(), rich_tree(false), rich_tree(true)]
}

/// `parse` and `parse_raw` over the whole buffer agree (the latter says
/// `TooLarge` where the former says `Truncated`).
fn parse_both_ways(blob: &[u8]) -> Result<(), TestCaseError> {
    let by_slice = parse(blob);
    // SAFETY: `blob` is valid for reads of `blob.len()` bytes and not written.
    let by_pointer = unsafe { parse_raw(blob.as_ptr(), blob.len()) };
    let expected = match by_slice {
        Err(DtError::Truncated) if blob.len() >= 40 => Err(DtError::TooLarge),
        other => other,
    };
    prop_assert_eq!(by_pointer, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn corrupted_bytes_never_panic(
        seed in 0..3usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let mut blob = seeds().swap_remove(seed);
        for (at, byte) in edits {
            let at = at.index(blob.len());
            blob[at] = byte;
        }
        parse_both_ways(&blob)?;
    }

    #[test]
    fn corrupted_words_never_panic(
        seed in 0..3usize,
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![Just(0u32), 1u32..=9, Just(u32::MAX), any::<u32>()]),
            1..8,
        ),
    ) {
        // Token-aligned words: tokens, lengths and offsets.
        let mut blob = seeds().swap_remove(seed);
        for (at, word) in edits {
            let at = at.index(blob.len() / 4) * 4;
            blob[at..at + 4].copy_from_slice(&word.to_be_bytes());
        }
        parse_both_ways(&blob)?;
    }

    #[test]
    fn corrupted_header_fields_never_panic(
        seed in 0..3usize,
        edits in proptest::collection::vec((1..10usize, any::<u32>(), any::<bool>()), 1..4),
    ) {
        let mut blob = seeds().swap_remove(seed);
        let len = blob.len() as u32;
        for (field, value, small) in edits {
            // Half the time a value near the blob's size, to get past the bounds checks.
            set_header_field(&mut blob, field, if small { value % (len + 64) } else { value });
        }
        parse_both_ways(&blob)?;
    }

    #[test]
    fn truncated_blobs_are_rejected(seed in 0..3usize, cut in any::<prop::sample::Index>()) {
        let blob = seeds().swap_remove(seed);
        let cut = cut.index(blob.len());
        prop_assert_eq!(parse(&blob[..cut]), Err(DtError::Truncated));
        parse_both_ways(&blob[..cut])?;
    }

    #[test]
    fn shrunk_blocks_never_panic(seed in 0..3usize, struct_size in 0..64u32, strings_size in 0..64u32) {
        let mut blob = seeds().swap_remove(seed);
        set_header_field(&mut blob, 9, struct_size);
        set_header_field(&mut blob, 8, strings_size);
        parse_both_ways(&blob)?;
    }

    #[test]
    fn random_garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_both_ways(&blob)?;
    }

    #[test]
    fn garbage_behind_a_plausible_header_never_panics(
        body in proptest::collection::vec(prop_oneof![Just(0u8), 1u8..=9, any::<u8>()], 0..512),
        offsets in (40..600u32, 40..600u32, 40..600u32, 0..600u32, 0..600u32),
    ) {
        let (off_struct, off_strings, off_rsvmap, size_strings, size_struct) = offsets;
        let total = (40 + body.len()) as u32;
        let header = [0xd00d_feed, total, off_struct, off_strings, off_rsvmap, 17, 16, 0, size_strings, size_struct];
        let mut blob: Vec<u8> = header.iter().flat_map(|f| u32::to_be_bytes(*f)).collect();
        blob.extend_from_slice(&body);
        parse_both_ways(&blob)?;
    }

    #[test]
    fn random_token_streams_never_panic(
        tokens in proptest::collection::vec(
            prop_oneof![
                Just(0u8), Just(1), Just(2), Just(3), Just(4), Just(5), Just(6)
            ],
            0..64,
        ),
    ) {
        // Well-formed tokens in random order: unbalanced nodes, properties
        // in the wrong places, NOPs anywhere.
        let mut b = DtbBuilder::new();
        for token in tokens {
            match token {
                0 => { b.begin_node("memory@0"); }
                1 => { b.end_node(); }
                2 => { b.prop_str("device_type", "memory"); }
                3 => { b.prop_cells("reg", &[0, 0x1000, 0, 0x1000]); }
                4 => { b.nop(); }
                5 => { b.begin_node("reserved-memory"); }
                _ => { b.prop_cells("#address-cells", &[1]); }
            }
        }
        parse_both_ways(&b.build())?;
    }

    #[test]
    fn memory_nodes_read_back(
        cells in (1..=2u32, 1..=2u32),
        nodes in proptest::collection::vec(
            proptest::collection::vec((any::<u64>(), any::<u64>()), 0..6),
            0..10,
        ),
        nops in any::<bool>(),
    ) {
        let (ac, sc) = cells;
        let fit = |value: u64, cells: u32| if cells == 1 { value & 0xffff_ffff } else { value >> 2 };
        let nodes: Vec<Vec<(u64, u64)>> = nodes
            .into_iter()
            .map(|node| node.into_iter().map(|(a, s)| (fit(a, ac), if s % 5 == 0 { 0 } else { fit(s, sc) })).collect())
            .collect();
        let mut b = DtbBuilder::new();
        b.begin_node("").prop_cells("#address-cells", &[ac]).prop_cells("#size-cells", &[sc]);
        for (i, node) in nodes.iter().enumerate() {
            if nops {
                b.nop();
            }
            b.begin_node(&format!("memory@{i}")).prop_str("device_type", "memory");
            if nops {
                b.nop();
            }
            b.prop_cells("reg", &reg_cells(ac, sc, node)).end_node();
        }
        b.end_node();
        let blob = b.build();
        let info = parse(&blob).unwrap();
        let expected: Vec<(u64, u64)> = nodes.iter().flatten().copied().filter(|&(_, size)| size != 0).collect();
        let got: Vec<(u64, u64)> = info.ram.iter().map(|r| (r.start, r.size)).collect();
        prop_assert_eq!(&got[..], &expected[..expected.len().min(RangeList::CAPACITY)]);
        prop_assert_eq!(info.ram.is_truncated(), expected.len() > RangeList::CAPACITY);
    }
}
