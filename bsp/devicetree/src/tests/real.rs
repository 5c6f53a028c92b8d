//! Device trees as real firmware writes them.

use super::QEMU_VIRT_1G;
use crate::{parse, parse_raw, DeviceTreeInfo, DtError, PsciMethod, Range};

fn check_qemu_virt(info: &DeviceTreeInfo<'_>) {
    assert_eq!(info.model, "linux,dummy-virt");
    assert_eq!(info.compatible, "linux,dummy-virt");
    assert_eq!(info.ram.as_slice(), [Range { start: 0x4000_0000, size: 1 << 30 }]);
    assert!(info.reserved.is_empty());
    assert!(!info.ram.is_truncated() && !info.reserved.is_truncated());
    assert_eq!(info.bootargs, "semihosting console=ttyAMA0");
    // QEMU loads the initrd (here /etc/hostname) 128 MiB into RAM.
    assert_eq!(info.initrd, Some((0x4800_0000, 0x4800_0003)));
    assert_eq!(info.psci_method, Some(PsciMethod::Hvc));
    assert_eq!(info.stdout_path, "/pl011@9000000");
}

#[test]
fn qemu_virt() {
    let info = parse(QEMU_VIRT_1G).unwrap();
    check_qemu_virt(&info);
    assert_eq!(info.total_size as usize, QEMU_VIRT_1G.len());
}

#[test]
fn blob_longer_than_totalsize() {
    let mut padded = QEMU_VIRT_1G.to_vec();
    padded.extend_from_slice(&[0xa5; 4096]);
    let info = parse(&padded).unwrap();
    check_qemu_virt(&info);
    assert_eq!(info.total_size as usize, QEMU_VIRT_1G.len());
}

#[test]
fn qemu_virt_through_a_pointer() {
    let blob = QEMU_VIRT_1G;
    // SAFETY: `blob` is valid for reads of `blob.len()` bytes (or fewer) and never written.
    let info = unsafe { parse_raw(blob.as_ptr(), blob.len()) }.unwrap();
    check_qemu_virt(&info);
    assert_eq!(info, parse(blob).unwrap());
    let mut window = blob.to_vec();
    window.resize(blob.len() + 8192, 0);
    // SAFETY: `window` is valid for reads of `window.len()` bytes and not written.
    assert_eq!(unsafe { parse_raw(window.as_ptr(), window.len()) }.unwrap(), parse(blob).unwrap());
    // SAFETY: as above; fewer bytes than the blob's totalsize.
    assert_eq!(unsafe { parse_raw(blob.as_ptr(), blob.len() - 1) }, Err(DtError::TooLarge));
    // SAFETY: as above; fewer bytes than a header, which is not read.
    assert_eq!(unsafe { parse_raw(blob.as_ptr(), 39) }, Err(DtError::Truncated));
    // SAFETY: a null pointer is rejected before any read.
    assert_eq!(unsafe { parse_raw(core::ptr::null(), 4096) }, Err(DtError::NullPointer));
    let zeros = [0u8; 64];
    // SAFETY: `zeros` is valid for reads of 64 bytes.
    assert_eq!(unsafe { parse_raw(zeros.as_ptr(), zeros.len()) }, Err(DtError::BadMagic));
}

/// Reads the DTB named by `$ASPEN_DTB`, if set, and prints what it yields:
/// a manual check for blobs that cannot be committed (firmware-modified
/// Raspberry Pi trees, for instance):
/// `ASPEN_DTB=/path/to.dtb cargo test -p aspen-devicetree dtb_from_env -- --nocapture`.
#[test]
fn dtb_from_env() {
    let Some(path) = std::env::var_os("ASPEN_DTB") else {
        return;
    };
    let blob = std::fs::read(&path).unwrap();
    let info = parse(&blob);
    println!("{}: {info:#x?}", path.to_string_lossy());
    let info = info.unwrap();
    // SAFETY: `blob` is valid for reads of `blob.len()` bytes and never written.
    assert_eq!(unsafe { parse_raw(blob.as_ptr(), blob.len()) }, Ok(info));
}
