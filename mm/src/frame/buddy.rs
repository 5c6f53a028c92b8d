//! The buddy allocator over physical memory with per-frame metadata.
