//! The file tree the kernel serves: the initramfs as its root (read-only),
//! a tmpfs at `/tmp` and one at `/dev/shm` (where glibc's `shm_open` and
//! `sem_open` make their files; a Linux system's init mounts it).

use aspen_fs::Vfs;
use aspen_mm::PhysRange;
use spin::Once;

use crate::memory::phys_to_virt;
use crate::memory::user_env::{self, KernelMm};

static VFS: Once<Vfs<KernelMm>> = Once::new();

/// Builds the tree from the initramfs at `initrd` (if any).
pub fn init(initrd: Option<PhysRange>) {
    aspen_fs::set_clock(|| {
        let frequency =
            core::num::NonZeroU64::new(crate::arch::timer::frequency()).unwrap_or(core::num::NonZeroU64::MIN);
        aspen_abi::syscall::Timespec::from_ticks(crate::arch::timer::ticks(), frequency)
    });
    let vfs = Vfs::new(user_env::get());
    if let Some(range) = initrd {
        let start = phys_to_virt(range.start).as_u64() as *const u8;
        // SAFETY: the initrd lies in RAM that the frame pool never hands
        // out and the linear map covers, for the kernel's whole life.
        let archive: &'static [u8] = unsafe { core::slice::from_raw_parts(start, range.size() as usize) };
        match vfs.load_initramfs(archive) {
            Ok(n) => log::info!("initramfs: {n} entries from {range:?}"),
            Err(e) => log::error!("initramfs at {range:?} is damaged ({e:?}); using what was read"),
        }
    } else {
        log::warn!("no initramfs: the file tree is empty");
    }
    for path in ["/tmp", "/dev/shm"] {
        if let Err(e) = vfs.mount_tmpfs(path) {
            log::error!("cannot mount tmpfs at {path}: {e:?}");
        }
    }
    VFS.call_once(|| vfs);
}

pub fn vfs() -> &'static Vfs<KernelMm> {
    VFS.get().expect("file tree used before boot set it up")
}
