//! Processes: what a task runs in at EL0. For now, the translation table
//! each task runs with; kernel threads run with the empty user table.

use crate::arch::mmu;
use crate::task::Task;

/// Makes `task`'s user address space current on this CPU (TTBR0), or the
/// empty table for a kernel thread.
pub fn activate(_task: &Task) {
    mmu::set_empty_user_table();
}
