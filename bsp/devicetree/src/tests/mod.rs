//! Host tests: real device trees, synthetic ones built by [`builder`], and
//! corrupted ones that must be rejected without panicking.

mod builder;
mod real;
mod robustness;
mod synthetic;

/// `tests/assets/qemu-virt-1g.dtb`: QEMU `virt` with `-m 1G -initrd ... -append ...`.
const QEMU_VIRT_1G: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/assets/qemu-virt-1g.dtb"));
