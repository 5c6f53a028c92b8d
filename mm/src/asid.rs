//! Address-space identifiers: a generation-based allocator (Linux style).
