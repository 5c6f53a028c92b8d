//! The TLBI check of a kernel ELF (`aspen-tlbi-check`): every TLB
//! invalidation in the kernel's code must be a broadcast one (`...IS`,
//! reaching every CPU), because a page-table change must leave no stale
//! entry on any CPU. The exceptions are whole-TLB local flushes
//! (`TLBI VMALLE1`) where only this CPU can hold what is flushed: the ASID
//! allocator's deferred flush after a rollover (which each CPU performs for
//! itself), and the boot CPU's MMU bring-up. Any other local form (`VAE1`,
//! `VALE1`, `ASIDE1`, `VAAE1`, `VAALE1`, range and EL2 forms) anywhere
//! fails. The instructions are decoded with `aspen_mm::tlbi`, the same
//! definitions the host tests check against the ARM ARM.

use aspen_mm::tlbi::{decode, Domain, Target};

use crate::check::Report;
use crate::elf::Elf;

/// Where a local `TLBI VMALLE1` may be: a symbol name (exact for assembly
/// labels and unmangled functions, a part of the mangled name for Rust
/// methods) and why.
pub const LOCAL_FLUSH_ALLOWED: &[(&str, &str)] = &[
    (
        "HardwareTlb$u20$as$u20$aspen_mm..tlb..TlbOps$GT$20invalidate_all_local",
        "the ASID rollover's deferred local flush (kept out of line for this check)",
    ),
    ("at_el1", "boot.s: the boot CPU turns its MMU on"),
    ("aspen_replace_ttbr1", "mmu.rs: the boot CPU's switch to the kernel's own table"),
    ("kernel_init", "mmu::replace_kernel_table and mmu::configure, inlined: the boot CPU alone"),
    (
        "6memory10kernel_map16build_and_switch",
        "mmu::replace_kernel_table inlined there without LTO: the boot CPU alone",
    ),
    ("aspen_secondary_entry", "boot.s: a secondary core turns its MMU on (its own TLB, before it runs anything)"),
    (
        "3smp14secondary_main",
        "mmu::drop_boot_identity_map inlined: a starting secondary forgets the boot identity map, its TLB alone",
    ),
];

/// The allowed place of the rollover's flush, which must exist.
const ROLLOVER_FLUSH: &str = LOCAL_FLUSH_ALLOWED[0].0;

fn allowed(symbol: &str) -> Option<&'static str> {
    LOCAL_FLUSH_ALLOWED
        .iter()
        .find(|(name, _)| symbol == *name || symbol.starts_with("_ZN") && symbol.contains(name))
        .map(|(_, why)| *why)
}

/// Checks the kernel ELF `bytes`: one line per local invalidation found
/// (allowed or not), one for the broadcast ones, one for the rollover's
/// flush being where the allowance expects it.
pub fn check_kernel(bytes: &[u8]) -> Report {
    let mut report = Report::default();
    let elf = match Elf::parse(bytes) {
        Ok(elf) => elf,
        Err(e) => {
            report.add(false, format!("kernel ELF: {e}"));
            return report;
        }
    };
    let words = match elf.code_words() {
        Ok(words) => words,
        Err(e) => {
            report.add(false, format!("kernel ELF: {e}"));
            return report;
        }
    };
    let mut broadcast = 0;
    let mut rollover_flush = false;
    for (addr, word) in words {
        let Some(tlbi) = decode(word) else { continue };
        if tlbi.domain.is_broadcast() {
            broadcast += 1;
            continue;
        }
        let symbol = elf.symbol_at(addr).map_or("?", |s| s.name.as_str());
        let name = tlbi.target.map_or_else(|| format!("{word:#010x} (op1 {})", tlbi.op1), |t| t.mnemonic().to_string());
        let whole_tlb = tlbi.op1 == 0 && tlbi.target == Some(Target::All) && tlbi.domain == Domain::Local;
        match allowed(symbol) {
            Some(why) if whole_tlb => {
                rollover_flush |= symbol.contains(ROLLOVER_FLUSH);
                report.add(true, format!("local tlbi {name} at {addr:#x} in {symbol}: {why}"));
            }
            _ => {
                report.add(
                    false,
                    format!(
                        "local tlbi {name} at {addr:#x} in {symbol}: a page-table change must reach every CPU \
                         (use the ...IS form); only a whole local flush in {} is allowed",
                        LOCAL_FLUSH_ALLOWED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
    }
    report.add(broadcast > 0, format!("{broadcast} broadcast TLB invalidations in the kernel's code"));
    report.add(
        rollover_flush,
        format!("the rollover's local flush is out of line in a symbol containing {ROLLOVER_FLUSH}"),
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with one executable section holding `code` at
    /// `0x1000` and the symbols given (name, address, size, function).
    fn elf(code: &[u32], symbols: &[(&str, u64, u64, bool)]) -> Vec<u8> {
        let text: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 24];
        for (name, value, size, func) in symbols {
            let at = strtab.len() as u32;
            strtab.extend_from_slice(name.as_bytes());
            strtab.push(0);
            let mut s = [0u8; 24];
            s[..4].copy_from_slice(&at.to_le_bytes());
            s[4] = if *func { 2 } else { 0 };
            s[6..8].copy_from_slice(&1u16.to_le_bytes());
            s[8..16].copy_from_slice(&value.to_le_bytes());
            s[16..24].copy_from_slice(&size.to_le_bytes());
            symtab.extend_from_slice(&s);
        }
        let shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0".to_vec();
        let mut out = vec![0u8; 64];
        let place = |out: &mut Vec<u8>, data: &[u8]| {
            let at = out.len() as u64;
            out.extend_from_slice(data);
            at
        };
        let text_at = place(&mut out, &text);
        let symtab_at = place(&mut out, &symtab);
        let strtab_at = place(&mut out, &strtab);
        let shstrtab_at = place(&mut out, &shstrtab);
        let shoff = out.len() as u64;
        // (name, type, flags, addr, offset, size, link)
        let headers = [
            (0u32, 0u32, 0u64, 0u64, 0u64, 0u64, 0u32),
            (1, 1, 6, 0x1000, text_at, text.len() as u64, 0),
            (7, 2, 0, 0, symtab_at, symtab.len() as u64, 3),
            (15, 3, 0, 0, strtab_at, strtab.len() as u64, 0),
            (23, 3, 0, 0, shstrtab_at, shstrtab.len() as u64, 0),
        ];
        for (name, kind, flags, addr, offset, size, link) in headers {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            h[16..24].copy_from_slice(&addr.to_le_bytes());
            h[24..32].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h[40..44].copy_from_slice(&link.to_le_bytes());
            out.extend_from_slice(&h);
        }
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&5u16.to_le_bytes());
        out[0x3e..0x40].copy_from_slice(&4u16.to_le_bytes());
        out
    }

    const NOP: u32 = 0xd503_201f;
    const VMALLE1: u32 = 0xd508_871f;
    const VMALLE1IS: u32 = 0xd508_831f;
    const VALE1IS_X8: u32 = 0xd508_83a8;
    const VALE1_X8: u32 = 0xd508_87a8;
    const ROLLOVER: &str =
        "_ZN75_$LT$aspen..arch..aarch64..tlb..HardwareTlb$u20$as$u20$aspen_mm..tlb..TlbOps$GT$20invalidate_all_local17h0123456789abcdefE";

    #[test]
    fn broadcast_code_with_the_rollover_flush_passes() {
        let image = elf(
            &[VALE1IS_X8, VMALLE1IS, NOP, VMALLE1, NOP],
            &[("_ZN4mm5flush17habcE", 0x1000, 12, true), (ROLLOVER, 0x100c, 8, true)],
        );
        let report = check_kernel(&image);
        assert!(report.all_passed(), "{:?}", report.failures());
        assert_eq!(report.checks.len(), 3);
    }

    #[test]
    fn a_local_page_invalidation_fails_wherever_it_is() {
        for at in [0x1000, 0x1008] {
            let code = if at == 0x1000 { [VALE1_X8, NOP, VMALLE1] } else { [NOP, NOP, VALE1_X8] };
            let image = elf(&code, &[("_ZN4mm5flush17habcE", 0x1000, 8, true), (ROLLOVER, 0x1008, 4, true)]);
            let failures = check_kernel(&image).failures();
            assert!(failures.iter().any(|f| f.contains("local tlbi vale1 at")), "{failures:?}");
        }
    }

    #[test]
    fn a_local_flush_outside_the_allowed_places_fails() {
        let image = elf(
            &[VMALLE1IS, VMALLE1, VMALLE1],
            &[("_ZN4mm4fork17habcE", 0x1000, 8, true), (ROLLOVER, 0x1008, 4, true)],
        );
        let failures = check_kernel(&image).failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("in _ZN4mm4fork17habcE"), "{failures:?}");
    }

    #[test]
    fn boot_labels_may_flush_locally_and_data_words_are_not_code() {
        // `at_el1` is an assembly label (no size); a literal pool (`$d`)
        // holding a VALE1 pattern is data.
        let image = elf(
            &[VMALLE1, NOP, VALE1_X8, VMALLE1IS, VMALLE1],
            &[
                ("at_el1", 0x1000, 0, false),
                ("$d", 0x1008, 0, false),
                ("$x", 0x100c, 0, false),
                (ROLLOVER, 0x1010, 4, true),
            ],
        );
        let report = check_kernel(&image);
        assert!(report.all_passed(), "{:?}", report.failures());
    }

    #[test]
    fn an_inlined_rollover_flush_is_reported() {
        let image = elf(&[VMALLE1IS], &[("_ZN4mm5flush17habcE", 0x1000, 4, true)]);
        let failures = check_kernel(&image).failures();
        assert!(failures.iter().any(|f| f.contains("rollover's local flush")), "{failures:?}");
    }

    #[test]
    fn not_an_elf_file_is_a_failure() {
        assert!(!check_kernel(b"MZ").all_passed());
    }
}
