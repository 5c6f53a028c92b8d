//! The simulated machine for host tests: physical-memory arena and TLB model.
