//! `AT_HWCAP` and `AT_HWCAP2`: the CPU features a program may use, from the
//! CPU's ID registers, as arm64 Linux derives them (`arm64_elf_hwcaps` in
//! `arch/arm64/kernel/cpufeature.c`), for the features that are
//! instructions alone. Features that need the kernel's help are left out:
//! `EVTSTRM` (Aspen does not run the timer's event stream), `CPUID` (Aspen
//! does not emulate EL0 reads of the ID registers), SVE and SME (no vector
//! state is switched), pointer authentication and BTI (no keys, no guarded
//! pages), MTE, `DIT` and `SSBS` (PSTATE bits a task switch would have to
//! keep), `USCAT`.

/// The ID registers the capabilities come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdRegisters {
    /// `ID_AA64PFR0_EL1`.
    pub pfr0: u64,
    /// `ID_AA64ISAR0_EL1`.
    pub isar0: u64,
    /// `ID_AA64ISAR1_EL1`.
    pub isar1: u64,
}

/// `HWCAP_FP`.
pub const HWCAP_FP: u64 = 1 << 0;
/// `HWCAP_ASIMD`.
pub const HWCAP_ASIMD: u64 = 1 << 1;
/// `HWCAP_AES`.
pub const HWCAP_AES: u64 = 1 << 3;
/// `HWCAP_PMULL`.
pub const HWCAP_PMULL: u64 = 1 << 4;
/// `HWCAP_SHA1`.
pub const HWCAP_SHA1: u64 = 1 << 5;
/// `HWCAP_SHA2`.
pub const HWCAP_SHA2: u64 = 1 << 6;
/// `HWCAP_CRC32`.
pub const HWCAP_CRC32: u64 = 1 << 7;
/// `HWCAP_ATOMICS` (LSE).
pub const HWCAP_ATOMICS: u64 = 1 << 8;
/// `HWCAP_FPHP`.
pub const HWCAP_FPHP: u64 = 1 << 9;
/// `HWCAP_ASIMDHP`.
pub const HWCAP_ASIMDHP: u64 = 1 << 10;
/// `HWCAP_ASIMDRDM`.
pub const HWCAP_ASIMDRDM: u64 = 1 << 12;
/// `HWCAP_JSCVT`.
pub const HWCAP_JSCVT: u64 = 1 << 13;
/// `HWCAP_FCMA`.
pub const HWCAP_FCMA: u64 = 1 << 14;
/// `HWCAP_LRCPC`.
pub const HWCAP_LRCPC: u64 = 1 << 15;
/// `HWCAP_DCPOP`.
pub const HWCAP_DCPOP: u64 = 1 << 16;
/// `HWCAP_SHA3`.
pub const HWCAP_SHA3: u64 = 1 << 17;
/// `HWCAP_SM3`.
pub const HWCAP_SM3: u64 = 1 << 18;
/// `HWCAP_SM4`.
pub const HWCAP_SM4: u64 = 1 << 19;
/// `HWCAP_ASIMDDP`.
pub const HWCAP_ASIMDDP: u64 = 1 << 20;
/// `HWCAP_SHA512`.
pub const HWCAP_SHA512: u64 = 1 << 21;
/// `HWCAP_ASIMDFHM`.
pub const HWCAP_ASIMDFHM: u64 = 1 << 23;
/// `HWCAP_ILRCPC`.
pub const HWCAP_ILRCPC: u64 = 1 << 26;
/// `HWCAP_FLAGM`.
pub const HWCAP_FLAGM: u64 = 1 << 27;
/// `HWCAP_SB`.
pub const HWCAP_SB: u64 = 1 << 29;

/// `HWCAP2_DCPODP`.
pub const HWCAP2_DCPODP: u64 = 1 << 0;
/// `HWCAP2_FLAGM2`.
pub const HWCAP2_FLAGM2: u64 = 1 << 7;
/// `HWCAP2_FRINT`.
pub const HWCAP2_FRINT: u64 = 1 << 8;
/// `HWCAP2_I8MM`.
pub const HWCAP2_I8MM: u64 = 1 << 13;
/// `HWCAP2_BF16`.
pub const HWCAP2_BF16: u64 = 1 << 14;
/// `HWCAP2_DGH`.
pub const HWCAP2_DGH: u64 = 1 << 15;
/// `HWCAP2_RNG`.
pub const HWCAP2_RNG: u64 = 1 << 16;

/// The 4-bit field of `register` at bit `shift`, as a signed value (the
/// ID registers' FP and AdvSIMD fields say "absent" with 0xf).
const fn signed_field(register: u64, shift: u32) -> i8 {
    (((register >> shift) & 0xf) as i8) << 4 >> 4
}

/// The 4-bit field of `register` at bit `shift`.
const fn field(register: u64, shift: u32) -> u64 {
    (register >> shift) & 0xf
}

/// A capability of register `register`'s field at `shift` when it is at least
/// `min`: (register, shift, min, capability).
type Rule = (fn(&IdRegisters) -> u64, u32, u64, u64);

const HWCAP_RULES: [Rule; 20] = [
    (|r| r.isar0, 4, 1, HWCAP_AES),
    (|r| r.isar0, 4, 2, HWCAP_PMULL),
    (|r| r.isar0, 8, 1, HWCAP_SHA1),
    (|r| r.isar0, 12, 1, HWCAP_SHA2),
    (|r| r.isar0, 12, 2, HWCAP_SHA512),
    (|r| r.isar0, 16, 1, HWCAP_CRC32),
    (|r| r.isar0, 20, 2, HWCAP_ATOMICS),
    (|r| r.isar0, 28, 1, HWCAP_ASIMDRDM),
    (|r| r.isar0, 32, 1, HWCAP_SHA3),
    (|r| r.isar0, 36, 1, HWCAP_SM3),
    (|r| r.isar0, 40, 1, HWCAP_SM4),
    (|r| r.isar0, 44, 1, HWCAP_ASIMDDP),
    (|r| r.isar0, 48, 1, HWCAP_ASIMDFHM),
    (|r| r.isar0, 52, 1, HWCAP_FLAGM),
    (|r| r.isar1, 0, 1, HWCAP_DCPOP),
    (|r| r.isar1, 12, 1, HWCAP_JSCVT),
    (|r| r.isar1, 16, 1, HWCAP_FCMA),
    (|r| r.isar1, 20, 1, HWCAP_LRCPC),
    (|r| r.isar1, 20, 2, HWCAP_ILRCPC),
    (|r| r.isar1, 36, 1, HWCAP_SB),
];

const HWCAP2_RULES: [Rule; 7] = [
    (|r| r.isar1, 0, 2, HWCAP2_DCPODP),
    (|r| r.isar0, 52, 2, HWCAP2_FLAGM2),
    (|r| r.isar1, 32, 1, HWCAP2_FRINT),
    (|r| r.isar1, 52, 1, HWCAP2_I8MM),
    (|r| r.isar1, 44, 1, HWCAP2_BF16),
    (|r| r.isar1, 48, 1, HWCAP2_DGH),
    (|r| r.isar0, 60, 1, HWCAP2_RNG),
];

fn apply(registers: &IdRegisters, rules: &[Rule]) -> u64 {
    rules
        .iter()
        .filter(|(register, shift, min, _)| field(register(registers), *shift) >= *min)
        .fold(0, |caps, (_, _, _, cap)| caps | cap)
}

/// `AT_HWCAP` for a CPU with these ID registers.
pub fn hwcap(registers: &IdRegisters) -> u64 {
    let fp = signed_field(registers.pfr0, 16);
    let simd = signed_field(registers.pfr0, 20);
    let mut caps = apply(registers, &HWCAP_RULES);
    if fp >= 0 {
        caps |= HWCAP_FP;
    }
    if fp >= 1 {
        caps |= HWCAP_FPHP;
    }
    if simd >= 0 {
        caps |= HWCAP_ASIMD;
    }
    if simd >= 1 {
        caps |= HWCAP_ASIMDHP;
    }
    caps
}

/// `AT_HWCAP2` for a CPU with these ID registers.
pub fn hwcap2(registers: &IdRegisters) -> u64 {
    apply(registers, &HWCAP2_RULES)
}

/// Linux's names of the `AT_HWCAP` bits, by bit (`hwcap_str` in
/// `arch/arm64/kernel/cpuinfo.c`), as `/proc/cpuinfo` lists them.
const HWCAP_NAMES: [&str; 32] = [
    "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp", "cpuid",
    "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512", "sve", "asimdfhm", "dit",
    "uscat", "ilrcpc", "flagm", "ssbs", "sb", "paca", "pacg",
];

/// Linux's names of the `AT_HWCAP2` bits, by bit.
const HWCAP2_NAMES: [&str; 17] = [
    "dcpodp",
    "sve2",
    "sveaes",
    "svepmull",
    "svebitperm",
    "svesha3",
    "svesm4",
    "flagm2",
    "frint",
    "svei8mm",
    "svef32mm",
    "svef64mm",
    "svebf16",
    "i8mm",
    "bf16",
    "dgh",
    "rng",
];

/// The `Features` line of `/proc/cpuinfo`: the name of each capability
/// set in `hwcap`, then in `hwcap2`, in bit order (as Linux prints them).
pub fn feature_names(hwcap: u64, hwcap2: u64) -> impl Iterator<Item = &'static str> {
    let set = |caps: u64, names: &'static [&'static str]| {
        names.iter().enumerate().filter(move |(bit, _)| caps & (1 << bit) != 0).map(|(_, name)| *name)
    };
    set(hwcap, &HWCAP_NAMES).chain(set(hwcap2, &HWCAP2_NAMES))
}

#[cfg(test)]
mod tests;
