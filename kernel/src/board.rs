//! The board this kernel was built for, chosen by a cargo feature.

#[cfg(all(feature = "board-qemu-virt", feature = "board-rpi4"))]
compile_error!("choose one board: features `board-qemu-virt` and `board-rpi4` are exclusive");
#[cfg(not(any(feature = "board-qemu-virt", feature = "board-rpi4")))]
compile_error!("choose a board with feature `board-qemu-virt` or `board-rpi4`");

#[cfg(feature = "board-qemu-virt")]
pub use aspen_bsp_qemu_virt as bsp;
#[cfg(feature = "board-rpi4")]
pub use aspen_bsp_rpi4 as bsp;

pub use bsp::BOARD;

/// Board set-up that must happen before the console is used.
pub fn init_early() {
    #[cfg(feature = "board-rpi4")]
    {
        // SAFETY: the GPIO block sits in the peripheral window, which is
        // mapped as device memory from early boot on; nothing else drives
        // pins 14 and 15.
        let gpio = unsafe { bsp::gpio::Gpio::new(crate::memory::phys_to_virt(bsp::GPIO_BASE).as_usize()) };
        gpio.route_uart0();
    }
}
