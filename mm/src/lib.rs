//! Aspen's memory subsystem.
//!
//! Everything here is architecture-neutral logic or aarch64 descriptor
//! encoding that needs no privileged instruction, so it builds for the host
//! and runs its tests there against a simulated machine (`testbed`). The
//! kernel supplies the real backends: physical memory seen through its linear
//! map, and TLB maintenance instructions.

#![cfg_attr(not(any(test, feature = "std")), no_std)]

extern crate alloc;

pub mod addr;
pub mod asid;
pub mod aspace;
pub mod board;
pub mod frame;
pub mod object;
pub mod paging;
pub mod region;
pub mod share_gate;
pub mod slab;
pub mod tlb;
pub mod tlbi;

/// Linux error numbers, defined once in `aspen-abi`.
pub use aspen_abi::errno;

#[cfg(any(test, feature = "testbed"))]
pub mod testbed;

pub use addr::{PhysAddr, PhysRange, VirtAddr, VirtRange, PAGE_SHIFT, PAGE_SIZE};
