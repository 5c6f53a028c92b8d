//! What a board-support crate tells the kernel about its board.
//!
//! The device tree, when there is one, overrides RAM and adds reserved ranges;
//! these are the board's fixed facts and its defaults.

use crate::addr::{PhysAddr, PhysRange};

/// A window of device registers, mapped Device-nGnRE, never executable.
#[derive(Clone, Copy, Debug)]
pub struct MmioWindow {
    /// Short label for the boot log (`low-mmio`, `peripherals`).
    pub name: &'static str,
    /// The registers' physical range; the kernel maps it, widened to
    /// whole pages, in its linear map.
    pub range: PhysRange,
}

/// How the board turns itself off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerOff {
    /// PSCI SYSTEM_OFF through the conduit the device tree names.
    Psci,
    /// No firmware service: stop every core in a low-power wait.
    HaltCores,
}

/// How the boot CPU starts the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuStart {
    /// PSCI `CPU_ON` through the conduit the device tree names; a core the
    /// firmware does not know (`AFFINITY_INFO` refuses it) is not there.
    Psci,
    /// A spin table: core `n` waits (in `WFE`) for a nonzero entry address
    /// at `release[n]` (physical), with its caches and MMU off.
    SpinTable {
        /// The release address of each core, core 0's first (unused).
        release: &'static [u64],
    },
}

/// A board's fixed description.
#[derive(Clone, Copy, Debug)]
pub struct BoardInfo {
    /// Short board name (`rpi4`, `qemu-virt`) for the boot banner and
    /// messages; also the model when no device tree gives one.
    pub name: &'static str,
    /// The root node's `compatible` string the board's device tree carries.
    pub compatible: &'static str,
    /// RAM to assume when no device tree is passed.
    pub default_ram: &'static [PhysRange],
    /// Where the boot loader places the kernel image (RAM base + text_offset).
    pub kernel_load: PhysAddr,
    /// Registers of the console PL011.
    pub uart_base: PhysAddr,
    /// The console PL011's interrupt (GIC INTID: SPI number + 32).
    pub uart_intid: u32,
    /// The PL011's reference clock (UARTCLK) in Hz, from which the baud
    /// rate divisor is computed.
    pub uart_clock_hz: u32,
    /// GICv2 (GIC-400) distributor registers (GICD).
    pub gicd_base: PhysAddr,
    /// GICv2 (GIC-400) CPU interface registers (GICC).
    pub gicc_base: PhysAddr,
    /// Every device window the kernel maps.
    pub mmio: &'static [MmioWindow],
    /// RAM the board's firmware keeps for itself, whatever the DTB says.
    pub reserved: &'static [PhysRange],
    /// How the kernel turns the board off.
    pub power_off: PowerOff,
    /// How the secondary cores are started.
    pub cpu_start: CpuStart,
    /// Board set-up the console needs before its first use, if any; the
    /// kernel calls it once, on the boot CPU, with the offset at which it
    /// maps device windows (VA = offset + PA). That early, only the console
    /// UART's 2 MiB block of device memory is mapped, so the hook touches
    /// nothing outside it.
    pub init_early: Option<unsafe fn(mmio_offset: u64)>,
}
