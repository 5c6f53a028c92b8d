//! The capabilities of known CPUs, against what Linux 6.1 reports for them.

use super::*;

/// HWCAP bits Linux sets that Aspen leaves out on purpose.
const HWCAP_EVTSTRM: u64 = 1 << 2;
const HWCAP_CPUID: u64 = 1 << 11;
const HWCAP_SSBS: u64 = 1 << 28;

#[test]
fn cortex_a72_as_linux_without_evtstrm_and_cpuid() {
    // QEMU's cortex-a72 (and the Pi 4's): Linux 6.1 reports 0x8ff.
    let a72 = IdRegisters { pfr0: 0x2222, isar0: 0x1_1120, isar1: 0 };
    assert_eq!(hwcap(&a72), 0x8ff & !(HWCAP_EVTSTRM | HWCAP_CPUID));
    assert_eq!(hwcap(&a72), 0xfb);
    assert_eq!(hwcap2(&a72), 0);
}

#[test]
fn cortex_a76_as_linux_without_kernel_assisted_features() {
    let a76 = IdRegisters { pfr0: 0x1100_0000_1011_1111, isar0: 0x0000_1000_1021_1120, isar1: 0x10_0001 };
    let linux = HWCAP_FP
        | HWCAP_ASIMD
        | HWCAP_EVTSTRM
        | HWCAP_AES
        | HWCAP_PMULL
        | HWCAP_SHA1
        | HWCAP_SHA2
        | HWCAP_CRC32
        | HWCAP_ATOMICS
        | HWCAP_FPHP
        | HWCAP_ASIMDHP
        | HWCAP_CPUID
        | HWCAP_ASIMDRDM
        | HWCAP_LRCPC
        | HWCAP_DCPOP
        | HWCAP_ASIMDDP
        | HWCAP_SSBS;
    assert_eq!(hwcap(&a76), linux & !(HWCAP_EVTSTRM | HWCAP_CPUID | HWCAP_SSBS));
    assert_eq!(hwcap2(&a76), 0);
}

#[test]
fn absent_fp_and_simd_are_minus_one() {
    let none = IdRegisters { pfr0: 0xff_0000, isar0: 0, isar1: 0 };
    assert_eq!(hwcap(&none), 0);
    let all = IdRegisters { pfr0: 0x11_0000, isar0: u64::MAX, isar1: u64::MAX };
    let rng_and_more = hwcap2(&all);
    assert_eq!(
        rng_and_more,
        HWCAP2_DCPODP | HWCAP2_FLAGM2 | HWCAP2_FRINT | HWCAP2_I8MM | HWCAP2_BF16 | HWCAP2_DGH | HWCAP2_RNG
    );
    assert_ne!(hwcap(&all) & HWCAP_SHA512, 0);
}

#[test]
fn feature_names_are_linuxs_cpuinfo_words() {
    let a72 = IdRegisters { pfr0: 0x2222, isar0: 0x1_1120, isar1: 0 };
    let names: alloc::vec::Vec<_> = feature_names(hwcap(&a72), hwcap2(&a72)).collect();
    // Linux 6.1 on QEMU's cortex-a72 prints these plus evtstrm and cpuid.
    assert_eq!(names, ["fp", "asimd", "aes", "pmull", "sha1", "sha2", "crc32"]);
    let names: alloc::vec::Vec<_> = feature_names(HWCAP_FLAGM | HWCAP_SB, HWCAP2_RNG | HWCAP2_DCPODP).collect();
    assert_eq!(names, ["flagm", "sb", "dcpodp", "rng"]);
    assert_eq!(feature_names(0, 0).count(), 0);
}
