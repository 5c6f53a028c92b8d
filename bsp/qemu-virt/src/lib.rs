//! Board support for QEMU's aarch64 `virt` machine.
//!
//! Describes the board: where RAM and devices are when no device tree says
//! otherwise, how the kernel is loaded, and how the machine powers off. The
//! device drivers themselves are shared with the other boards and live in the
//! kernel.

#![no_std]

use aspen_mm::{PhysAddr, PhysRange};

/// What the kernel needs to know about a board; each BSP crate exports one.
pub use aspen_mm::board::{BoardInfo, CpuStart, MmioWindow, PowerOff};

/// QEMU `virt` as Aspen runs it: `-M virt -cpu cortex-a72`.
pub const BOARD: BoardInfo = BoardInfo {
    name: "qemu-virt",
    compatible: "linux,dummy-virt",
    // QEMU's default when no -m is given; the device tree gives the real size.
    default_ram: &[PhysRange::new(PhysAddr::new(0x4000_0000), PhysAddr::new(0x4000_0000 + (128 << 20)))],
    kernel_load: PhysAddr::new(0x4008_0000),
    uart_base: PhysAddr::new(0x0900_0000),
    // SPI 1 (hw/arm/virt.c: VIRT_UART's irq).
    uart_intid: 33,
    uart_clock_hz: 24_000_000,
    gicd_base: PhysAddr::new(0x0800_0000),
    gicc_base: PhysAddr::new(0x0801_0000),
    mmio: &[
        // Flash, GIC, UART, RTC, GPIO, fw-cfg, virtio-mmio: everything below RAM.
        MmioWindow { name: "low-mmio", range: PhysRange::new(PhysAddr::new(0x0800_0000), PhysAddr::new(0x1000_0000)) },
        // PCIe ECAM and MMIO.
        MmioWindow { name: "pcie-mmio", range: PhysRange::new(PhysAddr::new(0x1000_0000), PhysAddr::new(0x3f00_0000)) },
    ],
    reserved: &[],
    power_off: PowerOff::Psci,
    // QEMU's own PSCI (`-smp N` cores, powered off until CPU_ON).
    cpu_start: CpuStart::Psci,
    // QEMU's PL011 needs no pin routing.
    init_early: None,
};
