//! Where the linear map starts. `build.rs` includes this file too and hands
//! the value to the linker script, so Rust and the linked image agree.

/// Start of the linear map (TTBR1, 48-bit): VA = `LINEAR_MAP_OFFSET` + PA.
pub const LINEAR_MAP_OFFSET: u64 = 0xFFFF_0000_0000_0000;
