//! ARMv8-A translation tables: descriptors and map/unmap/protect/query.
