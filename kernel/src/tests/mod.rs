//! In-kernel tests, run at boot by the `ktest` build.

mod boot;
mod memory;
mod irq;
mod sched;
mod uaccess;
