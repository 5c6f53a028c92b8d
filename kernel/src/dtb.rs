//! What the boot loader tells the kernel through the device tree: RAM,
//! reserved ranges, the command line, the initrd and the PSCI conduit. With
//! no (or an unreadable) device tree, the board's defaults stand in.

use aspen_mm::region::RangeSet;
use aspen_mm::{PhysAddr, PhysRange};
use fdt::Fdt;

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    DeviceTree,
    /// No DTB was passed (x0 = 0).
    BoardDefaults,
    /// A DTB pointer was passed but it is not usable.
    BoardDefaultsBadDtb,
}

/// The largest DTB the early map covers (two 2 MiB blocks from its start).
const MAX_DTB_SIZE: u64 = 2 << 20;
/// The early map reaches the first 4 GiB only.
const EARLY_MAP_LIMIT: u64 = 1 << 32;
const FDT_MAGIC: u32 = 0xd00d_feed;

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
            bootargs: "",
            initrd: None,
            dtb: None,
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
        if dtb_phys % 8 != 0 || dtb_phys.checked_add(MAX_DTB_SIZE)? > EARLY_MAP_LIMIT {
            return None;
        }
        let ptr = phys_to_virt(PhysAddr::new(dtb_phys)).as_u64() as *const u8;
        // SAFETY: the early map covers 2 MiB from the DTB's start; the header
        // is read only after checking the magic number within that window.
        let header = unsafe { core::slice::from_raw_parts(ptr, 8) };
        let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let total = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as u64;
        if magic != FDT_MAGIC || total > MAX_DTB_SIZE {
            return None;
        }
        // SAFETY: the whole blob (total bytes) lies in the mapped window and
        // stays reserved, so the parsed strings may live for 'static.
        let fdt: Fdt<'static> = unsafe { Fdt::from_ptr(ptr) }.ok()?;

        let mut info = Self::board_defaults(Source::DeviceTree);
        info.dtb = PhysRange::from_start_size(PhysAddr::new(dtb_phys), total);
        info.model = fdt.root().model();

        let mut ram = RangeSet::new();
        for node in fdt.all_nodes().filter(|n| n.name == "memory" || n.name.starts_with("memory@")) {
            for region in node.reg().into_iter().flatten() {
                let start = region.starting_address as u64;
                let size = region.size.unwrap_or(0) as u64;
                if let Some(range) = PhysRange::from_start_size(PhysAddr::new(start), size) {
                    ram.insert(range).ok()?;
                }
            }
        }
        if !ram.is_empty() {
            info.ram = ram;
        }

        for entry in fdt.memory_reservations() {
            let start = entry.address() as u64;
            if let Some(range) = PhysRange::from_start_size(PhysAddr::new(start), entry.size() as u64) {
                info.reserved.insert(range).ok()?;
            }
        }
        if let Some(reserved) = fdt.find_node("/reserved-memory") {
            for child in reserved.children() {
                for region in child.reg().into_iter().flatten() {
                    let start = region.starting_address as u64;
                    let size = region.size.unwrap_or(0) as u64;
                    if let Some(range) = PhysRange::from_start_size(PhysAddr::new(start), size) {
                        info.reserved.insert(range).ok()?;
                    }
                }
            }
        }

        if let Some(chosen) = fdt.find_node("/chosen") {
            if let Some(args) = chosen.property("bootargs").and_then(|p| p.as_str()) {
                info.bootargs = args.trim_end_matches('\0');
            }
            let start = chosen.property("linux,initrd-start").and_then(|p| p.as_usize());
            let end = chosen.property("linux,initrd-end").and_then(|p| p.as_usize());
            if let (Some(start), Some(end)) = (start, end) {
                if start < end {
                    info.initrd = Some(PhysRange::new(PhysAddr::new(start as u64), PhysAddr::new(end as u64)));
                }
            }
        }

        info.psci = match fdt.find_node("/psci").and_then(|n| n.property("method")).and_then(|p| p.as_str()) {
            Some(m) if m.starts_with("hvc") => PsciConduit::Hvc,
            Some(m) if m.starts_with("smc") => PsciConduit::Smc,
            _ => PsciConduit::None,
        };
        Some(info)
    }
}
