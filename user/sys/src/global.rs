//! Process-global mutable state (the stdout buffer, the heap) without locks.
//!
//! Programs built on this crate never create threads, so a global is only ever
//! touched by one thread; a busy flag turns re-entry (a `Display` impl that
//! prints, a panic while printing) into a refusal instead of aliasing `&mut`.

use core::cell::{Cell, UnsafeCell};

/// A value owned by the (single) thread of the process.
pub(crate) struct ProcessLocal<T> {
    busy: Cell<bool>,
    value: UnsafeCell<T>,
}

// SAFETY: the processes that link this crate have exactly one thread (the crate
// offers no way to create another: clone is used fork-style only, which gives the
// child its own copy), so there is never concurrent access; `with` rules out
// re-entrant access on that one thread.
unsafe impl<T> Sync for ProcessLocal<T> {}

impl<T> ProcessLocal<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self { busy: Cell::new(false), value: UnsafeCell::new(value) }
    }

    /// Runs `f` on the value, or returns `None` if the value is already in use
    /// further up this thread's stack.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self.busy.replace(true) {
            return None;
        }
        // SAFETY: the busy flag was clear, so no other reference to the value
        // exists (single thread, see the Sync impl); it stays set while `f` runs.
        let result = f(unsafe { &mut *self.value.get() });
        self.busy.set(false);
        Some(result)
    }
}
