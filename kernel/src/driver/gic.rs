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
        (0xd00 => @END),
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

pub struct Gic {
    dist: &'static DistributorRegs,
    cpu: &'static CpuInterfaceRegs,
}

// SAFETY: the GIC is built for concurrent use: enables are write-one-to-set
// and write-one-to-clear registers, and the CPU interface is banked per CPU.
// Only `init`, called once at boot before interrupts are unmasked, writes
// shared registers with read-modify-write.
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

    /// Disables and clears every interrupt, routes shared ones to CPU 0,
    /// puts everything in group 0 and enables the distributor and this
    /// CPU's interface with no priority masking.
    pub fn init(&self) {
        self.dist.ctlr.set(0);
        let lines = self.lines().min(1020);
        for n in 0..(lines / 32) as usize {
            self.dist.icenabler[n].set(u32::MAX);
            self.dist.icpendr[n].set(u32::MAX);
            self.dist.igroupr[n].set(0);
        }
        for n in 0..(lines / 4) as usize {
            self.dist.ipriorityr[n].set(DEFAULT_PRIORITY * 0x0101_0101);
            if n >= 8 {
                self.dist.itargetsr[n].set(0x0101_0101);
            }
        }
        self.dist.ctlr.set(1);
        self.cpu.pmr.set(0xff);
        self.cpu.bpr.set(0);
        self.cpu.ctlr.set(1);
    }

    pub fn enable(&self, intid: u32) {
        self.dist.isenabler[(intid / 32) as usize].set(1 << (intid % 32));
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
