//! TLB maintenance: the operations `mm` asks for, as a trait. The kernel
//! implements it with `TLBI` instructions; host tests implement it with a
//! recorder and a TLB model.

use crate::addr::VirtAddr;

/// A hardware address-space identifier as written to TTBR0[63:48] and TLBI
/// operands. With 8-bit ASIDs, bits [15:8] are always zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Asid(pub u16);

/// TLB maintenance operations, broadcast to the inner-shareable domain unless
/// the name says `local`.
///
/// The protocol for one operation (an unmap, a protect, a fork):
/// `begin()` (orders earlier table writes, `DSB ISHST`), any number of
/// `invalidate_*` calls, then `sync()` (`DSB ISH`, plus `ISB`) on the same CPU.
pub trait TlbOps {
    /// Makes earlier translation-table writes visible to the table walkers
    /// before the invalidations that follow.
    fn begin(&self);
    /// Invalidates one page of `asid` (`TLBI VALE1IS` when `leaf_only`,
    /// `TLBI VAE1IS` when table pages above it were freed too).
    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool);
    /// Invalidates every non-global entry of `asid` (`TLBI ASIDE1IS`).
    fn invalidate_asid(&self, asid: Asid);
    /// Invalidates one page of the kernel's global mappings (`TLBI VAAE1IS`).
    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool);
    /// Invalidates everything at EL1&0 on every CPU (`TLBI VMALLE1IS`).
    fn invalidate_all(&self);
    /// Invalidates everything at EL1&0 on this CPU only (`TLBI VMALLE1`),
    /// as the ASID allocator does before using a new generation. Completes
    /// on its own (includes its barriers).
    fn invalidate_all_local(&self);
    /// Waits for the invalidations issued since `begin()` to complete.
    fn sync(&self);
}
