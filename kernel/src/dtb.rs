//! What the boot loader tells the kernel through the device tree: RAM,
//! reserved ranges, the command line, the initrd and the PSCI conduit. With
//! no (or an unreadable) device tree, the board's defaults stand in.

use aspen_devicetree::PsciMethod;
use aspen_mm::region::RangeSet;
use aspen_mm::{PhysAddr, PhysRange};

use crate::arch::firmware::PsciConduit;
use crate::board::BOARD;
use crate::memory::phys_to_virt;

/// Everything boot needs from the device tree.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// Where the information came from.
    pub source: Source,
    pub ram: RangeSet<16>,
    /// `/memreserve/` entries and `/reserved-memory` children.
    pub reserved: RangeSet<32>,
    pub bootargs: &'static str,
    pub initrd: Option<PhysRange>,
    pub dtb: Option<PhysRange>,
    pub psci: PsciConduit,
    pub model: &'static str,
    /// `/chosen/rng-seed`: random bytes from the boot loader (empty if none).
    pub rng_seed: &'static [u8],
    /// `/chosen/kaslr-seed`, if the boot loader gave one.
    pub kaslr_seed: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    DeviceTree,
    /// No DTB was passed (x0 = 0).
    BoardDefaults,
    /// A DTB pointer was passed but it is not usable.
    BoardDefaultsBadDtb,
}

/// The command line when the boot loader passes none: set at build time
/// with `ASPEN_DEFAULT_CMDLINE`, as Linux's CONFIG_CMDLINE.
const DEFAULT_BOOTARGS: &str = match option_env!("ASPEN_DEFAULT_CMDLINE") {
    Some(args) => args,
    None => "",
};

/// The largest DTB the early map covers (two 2 MiB blocks from its start).
const MAX_DTB_SIZE: u64 = 2 << 20;
/// The early map reaches the first 4 GiB only.
const EARLY_MAP_LIMIT: u64 = 1 << 32;

impl BootInfo {
    fn board_defaults(source: Source) -> Self {
        let mut ram = RangeSet::new();
        for r in BOARD.default_ram {
            // The defaults are a handful of ranges, well inside the capacity.
            let _ = ram.insert(*r);
        }
        Self {
            source,
            ram,
            reserved: RangeSet::new(),
            bootargs: DEFAULT_BOOTARGS,
            initrd: None,
            dtb: None,
            rng_seed: &[],
            kaslr_seed: None,
            psci: match BOARD.power_off {
                aspen_mm::board::PowerOff::Psci => PsciConduit::Hvc,
                aspen_mm::board::PowerOff::HaltCores => PsciConduit::None,
            },
            model: BOARD.name,
        }
    }

    /// Reads the DTB at `dtb_phys` (0 when the loader passed none).
    pub fn from_boot(dtb_phys: u64) -> Self {
        if dtb_phys == 0 {
            return Self::board_defaults(Source::BoardDefaults);
        }
        Self::parse(dtb_phys).unwrap_or_else(|| Self::board_defaults(Source::BoardDefaultsBadDtb))
    }

    fn parse(dtb_phys: u64) -> Option<Self> {
        if !dtb_phys.is_multiple_of(8) || dtb_phys.checked_add(MAX_DTB_SIZE)? > EARLY_MAP_LIMIT {
            return None;
        }
        let ptr = phys_to_virt(PhysAddr::new(dtb_phys)).as_u64() as *const u8;
        // SAFETY: the early map covers MAX_DTB_SIZE bytes from the DTB's
        // start, and the blob stays reserved (never handed to the frame
        // pool), so what the parser borrows from it lives for 'static.
        let tree = match unsafe { aspen_devicetree::parse_raw(ptr, MAX_DTB_SIZE as usize) } {
            Ok(tree) => tree,
            Err(e) => {
                log::warn!("device tree at {dtb_phys:#x} unusable ({e}); using board defaults");
                return None;
            }
        };
        let mut info = Self::board_defaults(Source::DeviceTree);
        info.dtb = PhysRange::from_start_size(PhysAddr::new(dtb_phys), u64::from(tree.total_size));
        info.model = tree.model;
        if tree.ram.is_truncated() || tree.reserved.is_truncated() {
            // A partial reserved list could hand out firmware memory.
            log::warn!("device tree lists more memory ranges than Aspen tracks; using board defaults");
            return None;
        }
        let mut ram = RangeSet::new();
        for r in tree.ram.iter() {
            ram.insert(PhysRange::from_start_size(PhysAddr::new(r.start), r.size)?).ok()?;
        }
        if !ram.is_empty() {
            info.ram = ram;
        }
        for r in tree.reserved.iter() {
            info.reserved.insert(PhysRange::from_start_size(PhysAddr::new(r.start), r.size)?).ok()?;
        }
        if !tree.bootargs.is_empty() {
            info.bootargs = tree.bootargs;
        }
        info.initrd = tree.initrd.map(|(start, end)| PhysRange::new(PhysAddr::new(start), PhysAddr::new(end)));
        info.rng_seed = tree.rng_seed;
        info.kaslr_seed = tree.kaslr_seed;
        info.psci = match tree.psci_method {
            Some(PsciMethod::Hvc) => PsciConduit::Hvc,
            Some(PsciMethod::Smc) => PsciConduit::Smc,
            None => PsciConduit::None,
        };
        Some(info)
    }
}
