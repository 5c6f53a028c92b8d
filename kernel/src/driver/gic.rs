//! ARM GICv2 (GIC-400 on the Pi 4, the `virt` machine's GICv2): the
//! distributor routes interrupts, the CPU interface acknowledges them.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    DistributorRegs {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => typer: ReadOnly<u32>),
        (0x008 => _reserved0),
        (0x080 => igroupr: [ReadWrite<u32>; 32]),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x280 => icpendr: [ReadWrite<u32>; 32]),
        (0x300 => _reserved2),
        (0x400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x7fc => _reserved3),
        (0x800 => itargetsr: [ReadWrite<u32>; 255]),
        (0xbfc => _reserved4),
        (0xc00 => icfgr: [ReadWrite<u32>; 64]),
        (0xd00 => _reserved5),
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => @END),
    }
}

register_structs! {
    CpuInterfaceRegs {
        (0x00 => ctlr: ReadWrite<u32>),
        (0x04 => pmr: ReadWrite<u32>),
        (0x08 => bpr: ReadWrite<u32>),
        (0x0c => iar: ReadOnly<u32>),
        (0x10 => eoir: WriteOnly<u32>),
        (0x14 => @END),
    }
}

/// Interrupt IDs at and above this are spurious (1022, 1023).
const SPURIOUS: u32 = 1020;
/// Lowest priority value that still passes a priority mask of 0xff.
const DEFAULT_PRIORITY: u32 = 0xa0;
/// A priority above the default one (lower is higher): an interrupt given
/// it still reaches a CPU whose priority mask is [`URGENT_ONLY`]. Two bits,
/// as every GICv2 implements at least those of a priority's eight.
pub const URGENT_PRIORITY: u8 = 0x40;
/// A priority mask that lets only [`URGENT_PRIORITY`] interrupts through.
pub const URGENT_ONLY: u8 = 0x80;
/// SGIs and PPIs: INTIDs 0-31, banked per CPU.
const PRIVATE_LINES: usize = 32;
/// The software-generated interrupts: INTIDs 0-15.
pub const SGI_COUNT: u32 = 16;

/// Where `send_sgi` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiTarget {
    /// The CPU interfaces in this mask (bit n: interface n).
    Interfaces(u8),
    /// Every CPU interface but the sender's.
    Others,
}

pub struct Gic {
    dist: &'static DistributorRegs,
    cpu: &'static CpuInterfaceRegs,
}

// SAFETY: the GIC is built for concurrent use: enables are write-one-to-set
// and write-one-to-clear registers, SGIR is a plain write, and the CPU
// interface and the private lines are banked per CPU. Only `init`, called
// once at boot before interrupts are unmasked and before other CPUs start,
// writes shared registers wholesale.
unsafe impl Send for Gic {}
// SAFETY: as above.
unsafe impl Sync for Gic {}

impl Gic {
    /// # Safety
    /// `gicd` and `gicc` must be the virtual addresses of a GICv2
    /// distributor and CPU interface, mapped as device memory for as long as
    /// this value is used.
    pub unsafe fn new(gicd: usize, gicc: usize) -> Self {
        // SAFETY: guaranteed by the caller.
        unsafe { Self { dist: &*(gicd as *const DistributorRegs), cpu: &*(gicc as *const CpuInterfaceRegs) } }
    }

    /// Number of interrupt lines the distributor implements.
    pub fn lines(&self) -> u32 {
        32 * ((self.dist.typer.get() & 0x1f) + 1)
    }

    /// How many CPU interfaces (cores) the GIC serves (GICD_TYPER.CPUNumber + 1).
    pub fn cpu_interfaces(&self) -> u32 {
        ((self.dist.typer.get() >> 5) & 0x7) + 1
    }

    /// Disables and clears every interrupt, routes shared ones to the
    /// calling CPU (the boot CPU: device interrupts stay there), puts
    /// everything in group 0, enables the distributor, then sets up the
    /// caller's own interface (`init_cpu`).
    pub fn init(&self) {
        self.dist.ctlr.set(0);
        let lines = self.lines().min(1020);
        let own = u32::from(self.own_interface_mask());
        for n in (PRIVATE_LINES / 32)..(lines / 32) as usize {
            self.dist.icenabler[n].set(u32::MAX);
            self.dist.icpendr[n].set(u32::MAX);
            self.dist.igroupr[n].set(0);
        }
        for n in (PRIVATE_LINES / 4)..(lines / 4) as usize {
            self.dist.ipriorityr[n].set(DEFAULT_PRIORITY * 0x0101_0101);
            self.dist.itargetsr[n].set(own * 0x0101_0101);
        }
        self.dist.ctlr.set(1);
        self.init_cpu();
    }

    /// Sets up the calling CPU's banked state: its SGIs and PPIs disabled,
    /// cleared, in group 0 at the default priority; its CPU interface on
    /// with no priority masking. Each CPU calls it once.
    pub fn init_cpu(&self) {
        self.dist.icenabler[0].set(u32::MAX);
        self.dist.icpendr[0].set(u32::MAX);
        self.dist.igroupr[0].set(0);
        for n in 0..PRIVATE_LINES / 4 {
            self.dist.ipriorityr[n].set(DEFAULT_PRIORITY * 0x0101_0101);
        }
        self.cpu.pmr.set(0xff);
        self.cpu.bpr.set(0);
        self.cpu.ctlr.set(1);
    }

    /// The calling CPU's interface as a target mask (bit n: interface n):
    /// GICD_ITARGETSR0-7 read back the reader's own interface, except on
    /// a GIC built for one CPU, where they read as zero (interface 0).
    pub fn own_interface_mask(&self) -> u8 {
        match (self.dist.itargetsr[0].get() & 0xff) as u8 {
            0 => 1,
            mask => mask,
        }
    }

    /// Sends SGI `intid` (0-15) to `target`. Stores to normal memory made
    /// before the call are visible to the targets when they take it.
    pub fn send_sgi(&self, intid: u32, target: SgiTarget) {
        let (filter, list) = match target {
            SgiTarget::Interfaces(mask) => (0u32, u32::from(mask)),
            SgiTarget::Others => (1, 0),
        };
        // SAFETY: a barrier: earlier stores complete before the write
        // that raises the interrupt.
        unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
        self.dist.sgir.set((filter << 24) | (list << 16) | (intid % SGI_COUNT));
    }

    pub fn enable(&self, intid: u32) {
        self.dist.isenabler[(intid / 32) as usize].set(1 << (intid % 32));
    }

    /// Gives the calling CPU's SGI or PPI `intid` (0-31, banked per CPU:
    /// only this CPU writes its word) the priority `priority`.
    pub fn set_private_priority(&self, intid: u32, priority: u8) {
        debug_assert!((intid as usize) < PRIVATE_LINES, "INTID {intid} is not private");
        let word = &self.dist.ipriorityr[(intid / 4) as usize];
        let shift = (intid % 4) * 8;
        word.set((word.get() & !(0xff << shift)) | (u32::from(priority) << shift));
    }

    /// Sets the calling CPU's priority mask (only interrupts of a higher
    /// priority, a lower value, are signalled to it, and wake it from
    /// `WFI`); returns the mask it replaces.
    pub fn set_priority_mask(&self, mask: u8) -> u8 {
        let old = self.cpu.pmr.get() as u8;
        self.cpu.pmr.set(u32::from(mask));
        // Read back: the write has reached the CPU interface (accesses to
        // one device stay in order) before the caller's `WFI`.
        let _ = self.cpu.pmr.get();
        old
    }

    /// Acknowledges the highest-priority pending interrupt, if any.
    pub fn acknowledge(&self) -> Option<u32> {
        let iar = self.cpu.iar.get();
        let intid = iar & 0x3ff;
        (intid < SPURIOUS).then_some(iar)
    }

    /// Signals the end of handling for a value `acknowledge` returned.
    pub fn end_of_interrupt(&self, iar: u32) {
        self.cpu.eoir.set(iar);
    }
}
