//! The TLBI instructions, as data: the operands the kernel's `HardwareTlb`
//! writes (ARM ARM D8.17 "TLB maintenance instructions": ASID in bits
//! [63:48], VA[55:12] in bits [43:0]) and the instruction encodings
//! (C5.5, `SYS #op1, C8, Cm, #op2, Xt`), which the image check decodes to
//! find every invalidation in the kernel and tell broadcast from local.
//! Pure functions, so the host tests hold them to the layout.

use crate::addr::VirtAddr;
use crate::tlb::Asid;

/// VA[55:12] of a TLBI operand: 44 bits, at bit 0.
const VA_FIELD_BITS: u32 = 44;
/// Where the ASID goes in a TLBI operand.
const ASID_SHIFT: u32 = 48;

/// The operand of a by-address invalidation (`VAE1IS`, `VALE1IS`, and
/// with `asid` `None` the all-ASID `VAAE1IS`, `VAALE1IS`): the page of
/// `va` (VA[55:12], so the upper half's addresses keep their top byte) in
/// bits [43:0], bits [47:44] (TTL, no level hint) zero, `asid` in [63:48].
pub const fn page_operand(asid: Option<Asid>, va: VirtAddr) -> u64 {
    let page = (va.as_u64() >> 12) & ((1 << VA_FIELD_BITS) - 1);
    match asid {
        Some(asid) => page | asid_operand(asid),
        None => page,
    }
}

/// The operand of `ASIDE1IS`: the ASID in bits [63:48], the rest zero
/// (8-bit ASIDs leave bits [63:56] zero).
pub const fn asid_operand(asid: Asid) -> u64 {
    (asid.0 as u64) << ASID_SHIFT
}

/// Which TLB entries an invalidation at EL1 names (the instruction's
/// `op2` for the stage 1 EL1&0 forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `VMALLE1`: every entry of the EL1&0 regime.
    All,
    /// `VAE1`: one address of one ASID, walk-cache entries too.
    Va,
    /// `ASIDE1`: every non-global entry of one ASID.
    Asid,
    /// `VAAE1`: one address of every ASID.
    VaAllAsids,
    /// `VALE1`: the last-level entry of one address of one ASID.
    VaLeaf,
    /// `VAALE1`: the last-level entry of one address of every ASID.
    VaLeafAllAsids,
}

impl Target {
    const fn op2(self) -> u32 {
        match self {
            Target::All => 0,
            Target::Va => 1,
            Target::Asid => 2,
            Target::VaAllAsids => 3,
            Target::VaLeaf => 5,
            Target::VaLeafAllAsids => 7,
        }
    }

    const fn from_op2(op2: u32) -> Option<Self> {
        Some(match op2 {
            0 => Target::All,
            1 => Target::Va,
            2 => Target::Asid,
            3 => Target::VaAllAsids,
            5 => Target::VaLeaf,
            7 => Target::VaLeafAllAsids,
            _ => return None,
        })
    }

    /// The mnemonic without the domain suffix (`vale1`).
    pub const fn mnemonic(self) -> &'static str {
        match self {
            Target::All => "vmalle1",
            Target::Va => "vae1",
            Target::Asid => "aside1",
            Target::VaAllAsids => "vaae1",
            Target::VaLeaf => "vale1",
            Target::VaLeafAllAsids => "vaale1",
        }
    }
}

/// Which CPUs an invalidation reaches: the `CRm` of its encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// The inner-shareable domain, every CPU of the system (`...IS`,
    /// `CRm` = 3; the range forms 2).
    InnerShareable,
    /// The outer-shareable domain (`...OS`, FEAT_TLBIOS: `CRm` = 1; the
    /// range forms 5).
    OuterShareable,
    /// This CPU only (no suffix: `CRm` = 7; the range forms 6, the
    /// stage 2 forms 4).
    Local,
}

impl Domain {
    /// Whether the invalidation reaches every CPU.
    pub const fn is_broadcast(self) -> bool {
        !matches!(self, Domain::Local)
    }
}

/// `SYS #op1, C8 or C9, Cm, #op2, Xt` with `op1`, `CRn`, `CRm`, `op2` and
/// `Rt` cleared (L = 0, op0 = 0b01).
const SYS: u32 = 0xd508_0000;

/// Encodes `TLBI <target><domain>, X<rt>` at EL1 (`rt` 31 for the forms
/// without a register: XZR).
pub const fn encode(target: Target, domain: Domain, rt: u32) -> u32 {
    let crm = match domain {
        Domain::InnerShareable => 3,
        Domain::OuterShareable => 1,
        Domain::Local => 7,
    };
    SYS | 8 << 12 | crm << 8 | target.op2() << 5 | (rt & 31)
}

/// A TLBI instruction found in code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The exception level's regime it acts on: `op1` (0 for EL1&0,
    /// 4 for EL2, 6 for EL3).
    pub op1: u32,
    /// The stage 1 EL1 target, when `op1` is 0 and it is one of those.
    pub target: Option<Target>,
    /// Which CPUs it reaches.
    pub domain: Domain,
    /// The register operand.
    pub rt: u32,
}

/// Decodes a TLBI instruction (any of them: EL1, EL2 and EL3 forms, range
/// forms, the `nXS` forms with `CRn` = 9); `None` for any other word.
pub const fn decode(insn: u32) -> Option<Decoded> {
    if insn & 0xfff8_0000 != SYS {
        return None;
    }
    let crn = (insn >> 12) & 0xf;
    if crn != 8 && crn != 9 {
        return None;
    }
    let op1 = (insn >> 16) & 7;
    let crm = (insn >> 8) & 0xf;
    let op2 = (insn >> 5) & 7;
    let domain = match crm {
        1 | 5 => Domain::OuterShareable,
        4 | 6 | 7 => Domain::Local,
        _ => Domain::InnerShareable,
    };
    let target = if op1 == 0 && (crm == 1 || crm == 3 || crm == 7) { Target::from_op2(op2) } else { None };
    Some(Decoded { op1, target, domain, rt: insn & 31 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGETS: [Target; 6] =
        [Target::All, Target::Va, Target::Asid, Target::VaAllAsids, Target::VaLeaf, Target::VaLeafAllAsids];

    #[test]
    fn page_operands_follow_the_arm_arm_layout() {
        let va = VirtAddr::new(0x0000_7fff_1234_5678);
        let op = page_operand(Some(Asid(0xabcd)), va);
        assert_eq!(op >> 48, 0xabcd, "ASID in bits [63:48]");
        assert_eq!((op >> 44) & 0xf, 0, "TTL (bits [47:44]) zero: no level hint");
        assert_eq!(op & ((1 << 44) - 1), 0x0007_fff1_2345, "VA[55:12] in bits [43:0]");
        // An 8-bit ASID leaves bits [63:56] zero.
        assert_eq!(page_operand(Some(Asid(0xff)), va) >> 56, 0);
        // The upper half: VA[55:48] are all ones and stay in bits [43:36];
        // VA[63:56] are not part of the operand.
        let kernel = VirtAddr::new(0xffff_0000_4008_1000);
        assert_eq!(page_operand(None, kernel), 0x0ff0_0004_0081);
        assert_eq!(page_operand(Some(Asid(1)), VirtAddr::new(0x1000)), 1 << 48 | 1);
        // Offsets inside the page do not matter.
        assert_eq!(page_operand(Some(Asid(3)), va), page_operand(Some(Asid(3)), VirtAddr::new(0x0000_7fff_1234_5000)));
    }

    #[test]
    fn asid_operands_hold_only_the_asid() {
        assert_eq!(asid_operand(Asid(0x1234)), 0x1234 << 48);
        assert_eq!(asid_operand(Asid(0x12)), 0x0012_0000_0000_0000);
        assert_eq!(asid_operand(Asid(0)), 0);
    }

    #[test]
    fn encodings_match_the_assembler() {
        // What GNU as emits for these (objdump of the kernel image).
        assert_eq!(encode(Target::All, Domain::InnerShareable, 31), 0xd508_831f, "tlbi vmalle1is");
        assert_eq!(encode(Target::All, Domain::Local, 31), 0xd508_871f, "tlbi vmalle1");
        assert_eq!(encode(Target::VaLeaf, Domain::InnerShareable, 12), 0xd508_83ac, "tlbi vale1is, x12");
        assert_eq!(encode(Target::VaLeaf, Domain::Local, 12), 0xd508_87ac, "tlbi vale1, x12");
        assert_eq!(encode(Target::Asid, Domain::InnerShareable, 8), 0xd508_8348, "tlbi aside1is, x8");
        assert_eq!(encode(Target::Va, Domain::InnerShareable, 13), 0xd508_832d, "tlbi vae1is, x13");
        assert_eq!(encode(Target::VaAllAsids, Domain::InnerShareable, 13), 0xd508_836d, "tlbi vaae1is, x13");
        assert_eq!(encode(Target::VaLeafAllAsids, Domain::InnerShareable, 13), 0xd508_83ed, "tlbi vaale1is, x13");
        assert_eq!(encode(Target::VaLeaf, Domain::OuterShareable, 0), 0xd508_81a0, "tlbi vale1os, x0");
    }

    #[test]
    fn decoding_inverts_encoding_and_tells_local_from_broadcast() {
        for target in TARGETS {
            for domain in [Domain::InnerShareable, Domain::OuterShareable, Domain::Local] {
                for rt in [0, 7, 30, 31] {
                    let d = decode(encode(target, domain, rt)).expect("a TLBI");
                    assert_eq!((d.op1, d.target, d.domain, d.rt), (0, Some(target), domain, rt));
                    assert_eq!(d.domain.is_broadcast(), domain != Domain::Local);
                }
            }
        }
        // Range forms (RVAE1IS, RVAE1): broadcast and local.
        assert_eq!(decode(0xd508_8220).unwrap().domain, Domain::InnerShareable);
        assert_eq!(decode(0xd508_8620).unwrap().domain, Domain::Local);
        // EL2: TLBI ALLE2 (op1 4, CRm 7) is local; ALLE2IS is not.
        assert_eq!(decode(0xd50c_871f).unwrap(), Decoded { op1: 4, target: None, domain: Domain::Local, rt: 31 });
        assert!(decode(0xd50c_831f).unwrap().domain.is_broadcast());
        // The nXS forms (CRn 9).
        assert_eq!(decode(0xd508_97ac).unwrap().domain, Domain::Local);
        // Not TLBIs: DC CIVAC (CRn 7), DSB ISH, NOP, a data word.
        for other in [0xd50b_7e20, 0xd503_3b9f, 0xd503_201f, 0x0000_0000] {
            assert_eq!(decode(other), None, "{other:#x}");
        }
    }

    #[test]
    fn mnemonics_name_the_targets() {
        assert_eq!(TARGETS.map(Target::mnemonic), ["vmalle1", "vae1", "aside1", "vaae1", "vale1", "vaale1"]);
    }
}
