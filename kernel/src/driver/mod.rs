//! Device drivers shared by the boards.

pub mod gic;
pub mod pl011;
