//! BCM2711 GPIO: pin function select, pull resistors and pin I/O.
//!
//! Pins are handed out as [`Pin`] values that implement embedded-hal's
//! digital traits, so drivers written against embedded-hal work on the Pi.

use core::convert::Infallible;

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    /// The GPIO register block (BCM2711 ARM Peripherals, section 5.2).
    pub RegisterBlock {
        (0x00 => gpfsel: [ReadWrite<u32>; 6]),
        (0x18 => _reserved0),
        (0x1c => gpset: [WriteOnly<u32>; 2]),
        (0x24 => _reserved1),
        (0x28 => gpclr: [WriteOnly<u32>; 2]),
        (0x30 => _reserved2),
        (0x34 => gplev: [ReadOnly<u32>; 2]),
        (0x3c => _reserved3),
        (0xe4 => pup_pdn_cntrl: [ReadWrite<u32>; 4]),
        (0xf4 => @END),
    }
}

/// Number of GPIO lines on the BCM2711.
pub const PIN_COUNT: u8 = 58;

/// A pin's function (the 3-bit GPFSEL field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Function {
    /// A GPIO input, read through GPLEV.
    Input = 0b000,
    /// A GPIO output, driven through GPSET/GPCLR.
    Output = 0b001,
    /// Alternate function 0; what it is depends on the pin (BCM2711 ARM
    /// Peripherals, section 5.3), as for the five below.
    Alt0 = 0b100,
    /// Alternate function 1.
    Alt1 = 0b101,
    /// Alternate function 2.
    Alt2 = 0b110,
    /// Alternate function 3.
    Alt3 = 0b111,
    /// Alternate function 4.
    Alt4 = 0b011,
    /// Alternate function 5.
    Alt5 = 0b010,
}

/// A pin's pull resistor (the 2-bit GPIO_PUP_PDN_CNTRL field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Pull {
    /// No resistor: the pin floats unless driven.
    None = 0b00,
    /// A pull-up resistor: the pin reads high unless driven.
    Up = 0b01,
    /// A pull-down resistor: the pin reads low unless driven.
    Down = 0b10,
}

/// Replaces the `width`-bit field of pin `pin` in a register holding
/// `32 / width` pins, returning the new register value.
const fn with_field(reg: u32, pin: u8, width: u32, value: u32) -> u32 {
    let per_reg = 32 / width;
    let shift = (pin as u32 % per_reg) * width;
    let mask = ((1u32 << width) - 1) << shift;
    (reg & !mask) | ((value << shift) & mask)
}

/// The GPIO controller.
pub struct Gpio {
    regs: &'static RegisterBlock,
}

impl Gpio {
    /// # Safety
    /// `base` must be the virtual address of the BCM2711 GPIO block, mapped
    /// as device memory for the rest of the kernel's life, and no other
    /// `Gpio` may change the same pins concurrently.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` maps the GPIO registers.
        Self { regs: unsafe { &*(base as *const RegisterBlock) } }
    }

    /// Selects `pin`'s function in GPFSELn. Panics unless `pin` is below
    /// [`PIN_COUNT`].
    pub fn set_function(&self, pin: u8, function: Function) {
        assert!(pin < PIN_COUNT);
        let reg = &self.regs.gpfsel[pin as usize / 10];
        reg.set(with_field(reg.get(), pin, 3, function as u32));
    }

    /// Selects `pin`'s pull resistor in GPIO_PUP_PDN_CNTRL_REGn. Panics
    /// unless `pin` is below [`PIN_COUNT`].
    pub fn set_pull(&self, pin: u8, pull: Pull) {
        assert!(pin < PIN_COUNT);
        let reg = &self.regs.pup_pdn_cntrl[pin as usize / 16];
        reg.set(with_field(reg.get(), pin, 2, pull as u32));
    }

    /// Routes GPIO 14/15 to the PL011 (TXD0/RXD0, alternate function 0) with
    /// no pull resistors, as the console needs.
    pub fn route_uart0(&self) {
        for pin in [14, 15] {
            self.set_pull(pin, Pull::None);
            self.set_function(pin, Function::Alt0);
        }
    }

    /// Configures `pin` as an output and hands it out.
    pub fn output(&self, pin: u8) -> Pin<'_> {
        self.set_function(pin, Function::Output);
        Pin { gpio: self, pin }
    }

    /// Configures `pin` as an input with the given pull and hands it out.
    pub fn input(&self, pin: u8, pull: Pull) -> Pin<'_> {
        self.set_pull(pin, pull);
        self.set_function(pin, Function::Input);
        Pin { gpio: self, pin }
    }
}

/// One GPIO line, usable through embedded-hal.
pub struct Pin<'a> {
    gpio: &'a Gpio,
    pin: u8,
}

impl Pin<'_> {
    fn bank_bit(&self) -> (usize, u32) {
        (self.pin as usize / 32, 1 << (self.pin % 32))
    }
}

impl ErrorType for Pin<'_> {
    type Error = Infallible;
}

impl OutputPin for Pin<'_> {
    fn set_low(&mut self) -> Result<(), Infallible> {
        let (bank, bit) = self.bank_bit();
        self.gpio.regs.gpclr[bank].set(bit);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        let (bank, bit) = self.bank_bit();
        self.gpio.regs.gpset[bank].set(bit);
        Ok(())
    }
}

impl InputPin for Pin<'_> {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        let (bank, bit) = self.bank_bit();
        Ok(self.gpio.regs.gplev[bank].get() & bit != 0)
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|high| !high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_select_fields() {
        // GPIO 14 is bits 12..15 of GPFSEL1, GPIO 15 bits 15..18.
        let v = with_field(0xffff_ffff, 14, 3, Function::Alt0 as u32);
        assert_eq!((v >> 12) & 0b111, 0b100);
        assert_eq!(v | (0b111 << 12), 0xffff_ffff);
        let v = with_field(0, 15, 3, Function::Alt0 as u32);
        assert_eq!(v, 0b100 << 15);
    }

    #[test]
    fn pull_fields() {
        // GPIO 14 is bits 28..29 of GPIO_PUP_PDN_CNTRL_REG0; 15 is 30..31.
        assert_eq!(with_field(0, 14, 2, Pull::Up as u32), 0b01 << 28);
        assert_eq!(with_field(u32::MAX, 15, 2, Pull::None as u32), !(0b11 << 30));
    }

    #[test]
    fn register_offsets() {
        assert_eq!(core::mem::size_of::<RegisterBlock>(), 0xf4);
    }
}
