//! ARM PrimeCell PL011 UART: the console on both boards.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {
    u32,
    FR [
        TXFF OFFSET(5) NUMBITS(1) [],
        RXFE OFFSET(4) NUMBITS(1) [],
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    LCR_H [
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        FEN OFFSET(4) NUMBITS(1) []
    ],
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// The interrupt bits of IMSC (mask set/clear) and ICR (clear).
    INT [
        /// Receive timeout: bytes wait in the FIFO and none came for 32 bit times.
        RT OFFSET(6) NUMBITS(1) [],
        /// Receive: the FIFO reached its trigger level.
        RX OFFSET(4) NUMBITS(1) []
    ]
}

register_structs! {
    RegisterBlock {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => ibrd: WriteOnly<u32>),
        (0x28 => fbrd: WriteOnly<u32>),
        (0x2c => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x30 => cr: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x38 => imsc: ReadWrite<u32, INT::Register>),
        (0x3c => _reserved3),
        (0x44 => icr: WriteOnly<u32, INT::Register>),
        (0x48 => @END),
    }
}

/// The console line speed.
pub const BAUD: u32 = 115_200;

/// One PL011's registers.
pub struct Pl011 {
    regs: &'static RegisterBlock,
}

/// Integer and fractional baud-rate divisors for `clock_hz` / (16 * baud),
/// the fraction in 1/64ths, rounded to nearest.
pub const fn divisors(clock_hz: u32, baud: u32) -> (u32, u32) {
    let scaled = (clock_hz as u64 * 4 + baud as u64 / 2) / baud as u64; // 64 * clock / (16 * baud)
    ((scaled >> 6) as u32, (scaled & 0x3f) as u32)
}

// SAFETY: the registers are only reached through this value, and whoever
// owns it (the console behind its lock) is the only user of the device.
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// # Safety
    /// `base` must be the virtual address of a PL011's registers, mapped as
    /// device memory for as long as this value is used.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` maps a PL011.
        Self { regs: unsafe { &*(base as *const RegisterBlock) } }
    }

    /// Programs 8N1 at `BAUD` from a `clock_hz` reference clock, FIFOs on.
    pub fn init(&mut self, clock_hz: u32) {
        self.flush();
        self.regs.cr.set(0);
        self.regs.icr.set(0x7ff);
        let (integer, fraction) = divisors(clock_hz, BAUD);
        self.regs.ibrd.set(integer);
        self.regs.fbrd.set(fraction);
        self.regs.lcr_h.write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        self.regs.cr.modify(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Raises the UART's interrupt line when bytes arrive: at the receive
    /// FIFO's trigger level, or when fewer wait and the line went quiet.
    pub fn enable_receive_interrupts(&mut self) {
        self.regs.icr.write(INT::RX::SET + INT::RT::SET);
        self.regs.imsc.modify(INT::RX::SET + INT::RT::SET);
    }

    /// Clears the receive interrupts (after the FIFO has been drained).
    pub fn clear_receive_interrupts(&mut self) {
        self.regs.icr.write(INT::RX::SET + INT::RT::SET);
    }

    /// Writes one byte, waiting for room in the transmit FIFO.
    pub fn write_byte(&mut self, byte: u8) {
        while self.regs.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.regs.dr.set(u32::from(byte));
    }

    /// Waits until every queued byte has left the shift register.
    pub fn flush(&self) {
        while self.regs.fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }

    /// Takes one received byte, if one is waiting.
    pub fn read_byte(&mut self) -> Option<u8> {
        if self.regs.fr.is_set(FR::RXFE) {
            None
        } else {
            Some(self.regs.dr.get() as u8)
        }
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}
