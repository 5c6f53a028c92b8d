//! Board support for the Raspberry Pi 4 (BCM2711, Cortex-A72).
//!
//! Describes the board for the kernel (RAM when there is no device tree, the
//! low-peripheral window, the PL011 and GIC-400) and drives the GPIO block:
//! the console UART needs GPIO 14/15 in alternate function 0.

#![no_std]

pub mod gpio;

use aspen_mm::{PhysAddr, PhysRange};

pub use aspen_mm::board::{BoardInfo, CpuStart, MmioWindow, PowerOff};

/// Start of the BCM2711 "low peripheral" window (ARM physical address).
pub const PERIPHERAL_BASE: u64 = 0xFE00_0000;
/// GPIO controller registers.
pub const GPIO_BASE: PhysAddr = PhysAddr::new(PERIPHERAL_BASE + 0x20_0000);

/// The Raspberry Pi 4 Model B.
pub const BOARD: BoardInfo = BoardInfo {
    name: "rpi4",
    compatible: "raspberrypi,4-model-b",
    // The first gigabyte less the VideoCore's share, as the firmware reports
    // for every model with its default gpu_mem; the device tree gives the rest.
    default_ram: &[PhysRange::new(PhysAddr::new(0), PhysAddr::new(0x3b40_0000))],
    kernel_load: PhysAddr::new(0x8_0000),
    uart_base: PhysAddr::new(PERIPHERAL_BASE + 0x20_1000),
    // SPI 121 (bcm2711.dtsi: uart0's `interrupts = <GIC_SPI 121 ...>`).
    uart_intid: 153,
    uart_clock_hz: 48_000_000,
    gicd_base: PhysAddr::new(0xFF84_1000),
    gicc_base: PhysAddr::new(0xFF84_2000),
    mmio: &[
        // Low peripherals (UART, GPIO, mailboxes, ...) and the ARM local block with the GIC-400.
        MmioWindow {
            name: "peripherals",
            range: PhysRange::new(PhysAddr::new(0xFC00_0000), PhysAddr::new(0x1_0000_0000)),
        },
    ],
    // The armstub and the spin table the parked cores poll (0xd8..0xf8).
    reserved: &[PhysRange::new(PhysAddr::new(0), PhysAddr::new(0x1000))],
    power_off: PowerOff::HaltCores,
    // The firmware's armstub (and QEMU raspi4b's boot stub) park cores 1-3
    // polling these words (the device tree's `cpu-release-addr`).
    cpu_start: CpuStart::SpinTable { release: &[0xd8, 0xe0, 0xe8, 0xf0] },
    init_early: Some(route_console),
};

/// Routes the console PL011 to GPIO 14/15. The GPIO block shares the
/// UART's 2 MiB block, which the kernel maps first.
///
/// # Safety
///
/// The GPIO block is mapped as device memory at `mmio_offset` +
/// [`GPIO_BASE`] for good, and nothing else drives pins 14 and 15.
unsafe fn route_console(mmio_offset: u64) {
    // SAFETY: the caller's promise.
    let gpio = unsafe { gpio::Gpio::new((mmio_offset + GPIO_BASE.as_u64()) as usize) };
    gpio.route_uart0();
}
