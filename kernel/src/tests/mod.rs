//! In-kernel tests, run at boot by the `ktest` build.

mod boot;
mod irq;
mod lock;
mod memory;
mod sched;
mod smp;
mod tty;
mod uaccess;
