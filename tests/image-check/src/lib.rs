//! Host check of Aspen's Raspberry Pi 4 SD card image (scripts/mk-sdcard.sh):
//! the MBR partition table (one W95 FAT32 LBA partition at 1 MiB), the FAT32
//! boot partition's root directory (exactly the expected files, each equal to
//! its build output), config.txt's required lines, cmdline.txt's text and the
//! initramfs's essentials. [`check::check_image`] runs every check and
//! reports each as one line. [`tlbi::check_kernel`] checks the kernel's
//! ELF: no TLB invalidation that reaches only one CPU, apart from the
//! allowed whole local flushes.

pub mod check;
pub mod cpio;
pub mod elf;
pub mod fat;
pub mod mbr;
pub mod tlbi;

pub use check::{check_image, Check, Expected, Report, Spec};
