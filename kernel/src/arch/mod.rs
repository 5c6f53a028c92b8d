//! Architecture-specific code. Aspen runs on aarch64 only; everything that
//! needs an aarch64 instruction or system register lives beneath here.

mod aarch64;

pub use aarch64::*;
