//! The board this kernel was built for, chosen by a cargo feature. What
//! differs between boards comes from its `bsp` crate as data ([`BOARD`]).

#[cfg(all(feature = "board-qemu-virt", feature = "board-rpi4"))]
compile_error!("choose one board: features `board-qemu-virt` and `board-rpi4` are exclusive");
#[cfg(not(any(feature = "board-qemu-virt", feature = "board-rpi4")))]
compile_error!("choose a board with feature `board-qemu-virt` or `board-rpi4`");

#[cfg(feature = "board-qemu-virt")]
pub use aspen_bsp_qemu_virt as bsp;
#[cfg(feature = "board-rpi4")]
pub use aspen_bsp_rpi4 as bsp;

pub use bsp::BOARD;

use crate::memory::LINEAR_MAP_OFFSET;

/// Board set-up that must happen before the console is used: the board's
/// own hook, if it has one.
pub fn init_early() {
    if let Some(init) = BOARD.init_early {
        // SAFETY: this runs once, on the boot CPU, before the console is
        // used; boot.s maps the console UART's 2 MiB block as device memory
        // at its linear address, the kernel's table keeps all device
        // windows there, and the hook touches nothing outside that block.
        unsafe { init(LINEAR_MAP_OFFSET) }
    }
}
