//! The machine an address space runs on: physical memory, the frame pool,
//! TLB maintenance, the ASID allocator and counters. The kernel passes its
//! real backends; host tests pass the simulated machine.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::addr::{PhysAddr, VirtAddr};
use crate::asid::AsidAllocator;
use crate::frame::BuddyAllocator;
use crate::paging::{Pause, PhysMemory};
use crate::tlb::{Asid, TlbOps};

/// Everything address spaces and memory objects need from the machine.
///
/// One value serves every address space and object of a kernel (a static
/// in the kernel, a local in tests); they borrow it for their whole life.
pub trait MmEnv {
    /// Physical memory as the CPU reaches it (the kernel's linear map).
    type Mem: PhysMemory;
    /// TLB maintenance (the `TLBI` instructions).
    type Tlb: TlbOps;

    /// What [`MmEnv::preload_heap`] returns: the reservation lasts while
    /// it lives.
    type HeapPreload;

    /// Reserves `bytes` of kernel heap for a change whose allocations
    /// cannot fail softly (a B-tree insert), before anything is changed:
    /// `Err` when the heap cannot provide them, and the caller gives up
    /// with no side effect. While the returned value lives, allocations up
    /// to `bytes` succeed (the kernel's `heap::Preload`).
    fn preload_heap(&self, bytes: usize) -> Result<Self::HeapPreload, HeapExhausted>;

    /// The view of physical memory that table pages and frames are
    /// reached through.
    fn mem(&self) -> &Self::Mem;
    /// The frame pool: table pages, anonymous pages, page-cache pages.
    fn frames(&self) -> &BuddyAllocator<'static>;
    /// TLB maintenance for every address space.
    fn tlb(&self) -> &Self::Tlb;
    /// The ASID allocator shared by every address space.
    fn asids(&self) -> &AsidAllocator;
    /// The counters address spaces and memory objects update.
    fn stats(&self) -> &MmStats;

    /// Called before `frame` is mapped executable at EL0 (a fault or an
    /// mprotect that adds execute): the kernel cleans the data cache to the
    /// point of unification and invalidates the instruction cache for it
    /// (`DC CVAU` + `IC IVAU` over the frame through the linear map, then
    /// `DSB ISH; ISB`), as code may have been written through the data
    /// side (page-in, copy-on-write, user writes before the mprotect).
    /// The default does nothing (host tests: no caches).
    fn sync_icache(&self, frame: PhysAddr) {
        let _ = frame;
    }

    /// How address spaces treat memory that is to be writable and
    /// executable (`PROT_WRITE|PROT_EXEC`). The default flips.
    fn wx_policy(&self) -> WxPolicy {
        WxPolicy::Flip
    }

    /// Asked by long passes over a space (unmap, mprotect, madvise,
    /// msync, populate, fork's copy, teardown) every
    /// [`PAUSE_SPACING`](crate::paging::PAUSE_SPACING) entries: whether
    /// another task should run now. The kernel takes pending interrupts
    /// (the timer's) and answers whether a reschedule is pending. The
    /// default never yields.
    fn should_yield(&self) -> bool {
        false
    }

    /// Called by a pass that was told to yield, once nothing it changed is
    /// stale in any TLB and what it took out is released: the kernel
    /// switches to the better task. The space's lock stays held (the
    /// kernel's is a sleeping lock: a thread of the space that faults
    /// meanwhile waits for it).
    fn yield_now(&self) {}
}

/// A pass's pause points as the environment answers them.
pub(crate) struct EnvPause<'e, E: MmEnv>(pub(crate) &'e E);

impl<E: MmEnv> Pause for EnvPause<'_, E> {
    #[inline]
    fn due(&mut self) -> bool {
        self.0.should_yield()
    }

    fn pause(&mut self) {
        self.0.yield_now();
    }
}

/// What an [`Env`] asks about yielding (host tests count the questions and
/// force yields to check what another task would see at each).
pub trait YieldHook: Sync {
    /// [`MmEnv::should_yield`].
    fn should_yield(&self) -> bool;
    /// [`MmEnv::yield_now`].
    fn yield_now(&self);
}

/// The write-xor-execute policy for user memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WxPolicy {
    /// `PROT_WRITE|PROT_EXEC` is accepted. Its pages are mapped writable
    /// or executable, never both, flipping at each write or instruction
    /// fetch that needs the other; a varea whose pages flipped more than
    /// [`WX_FLIP_BOUND`](super::WX_FLIP_BOUND) times is mapped writable
    /// and executable from then on, so that code storing into its own
    /// page makes progress.
    #[default]
    Flip,
    /// mmap and mprotect refuse `PROT_WRITE|PROT_EXEC` with EACCES (as
    /// PaX MPROTECT and SELinux `execmem` do): no page is ever writable
    /// and executable, and none flips.
    Strict,
}

/// Counters for `/proc/meminfo`, `/proc/vmstat` and tests.
#[derive(Debug, Default)]
pub struct MmStats {
    page_cache_pages: AtomicUsize,
    anonymous_object_pages: AtomicUsize,
    faults: AtomicU64,
    cow_copies: AtomicU64,
    cow_reuses: AtomicU64,
    shared_faults: AtomicU64,
    shared_fault_races: AtomicU64,
    shared_unmaps: AtomicU64,
}

impl MmStats {
    /// All counters at zero; usable in a `static`.
    pub const fn new() -> Self {
        Self {
            page_cache_pages: AtomicUsize::new(0),
            anonymous_object_pages: AtomicUsize::new(0),
            faults: AtomicU64::new(0),
            cow_copies: AtomicU64::new(0),
            cow_reuses: AtomicU64::new(0),
            shared_faults: AtomicU64::new(0),
            shared_fault_races: AtomicU64::new(0),
            shared_unmaps: AtomicU64::new(0),
        }
    }

    /// Pages held by the page caches of every memory object (file pages
    /// and shared anonymous pages): `Cached` + `Shmem` in `/proc/meminfo`.
    pub fn page_cache_pages(&self) -> usize {
        self.page_cache_pages.load(Ordering::Relaxed)
    }

    /// Of those, the pages of anonymous objects (shared anonymous memory):
    /// part of `Shmem` in `/proc/meminfo`.
    pub fn anonymous_object_pages(&self) -> usize {
        self.anonymous_object_pages.load(Ordering::Relaxed)
    }

    /// Faults handled by [`AddressSpace::handle_fault`](super::AddressSpace::handle_fault).
    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::Relaxed)
    }

    /// Copy-on-write faults that copied a page.
    pub fn cow_copies(&self) -> u64 {
        self.cow_copies.load(Ordering::Relaxed)
    }

    /// Copy-on-write faults that reused the only reference instead.
    pub fn cow_reuses(&self) -> u64 {
        self.cow_reuses.load(Ordering::Relaxed)
    }

    /// Faults resolved with the space shared
    /// ([`AddressSpace::fault_shared`](super::AddressSpace::fault_shared)),
    /// races included.
    pub fn shared_faults(&self) -> u64 {
        self.shared_faults.load(Ordering::Relaxed)
    }

    /// Of those, faults that found their page mapped by another CPU
    /// meanwhile (or spurious): their frame went back.
    pub fn shared_fault_races(&self) -> u64 {
        self.shared_fault_races.load(Ordering::Relaxed)
    }

    /// Unmaps whose table work ran while faults shared the space
    /// ([`AddressSpace::zap_shared`](super::AddressSpace::zap_shared)).
    pub fn shared_unmaps(&self) -> u64 {
        self.shared_unmaps.load(Ordering::Relaxed)
    }

    pub(crate) fn shared_unmap(&self) {
        self.shared_unmaps.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn shared_fault(&self, raced: bool) {
        self.shared_faults.fetch_add(1, Ordering::Relaxed);
        if raced {
            self.shared_fault_races.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn cache_page_added(&self, anonymous: bool) {
        self.page_cache_pages.fetch_add(1, Ordering::Relaxed);
        if anonymous {
            self.anonymous_object_pages.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn cache_page_removed(&self, anonymous: bool) {
        self.page_cache_pages.fetch_sub(1, Ordering::Relaxed);
        if anonymous {
            self.anonymous_object_pages.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn fault(&self) {
        self.faults.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn cow_copy(&self) {
        self.cow_copies.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn cow_reuse(&self) {
        self.cow_reuses.fetch_add(1, Ordering::Relaxed);
    }
}

/// The kernel heap cannot reserve what a change needs
/// ([`MmEnv::preload_heap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapExhausted;

/// An [`MmEnv`] made of references to backends that live elsewhere, plus
/// its own counters. The kernel builds one once the frame pool exists
/// (`Env::new(&LINEAR, FRAMES.get(), &HW_TLB, &ASIDS)`) and keeps it in a
/// static; tests build one on the stack.
pub struct Env<'a, M: PhysMemory, T: TlbOps> {
    mem: &'a M,
    frames: &'a BuddyAllocator<'static>,
    tlb: &'a T,
    asids: &'a AsidAllocator,
    stats: MmStats,
    wx_policy: WxPolicy,
    yield_hook: Option<&'a dyn YieldHook>,
    /// Heap preloads still to refuse (tests of the failure paths).
    heap_refusals: AtomicUsize,
}

impl<'a, M: PhysMemory, T: TlbOps> Env<'a, M, T> {
    /// An environment over the given backends, with fresh counters.
    pub const fn new(mem: &'a M, frames: &'a BuddyAllocator<'static>, tlb: &'a T, asids: &'a AsidAllocator) -> Self {
        Self {
            mem,
            frames,
            tlb,
            asids,
            stats: MmStats::new(),
            wx_policy: WxPolicy::Flip,
            yield_hook: None,
            heap_refusals: AtomicUsize::new(0),
        }
    }

    /// The same environment with write-xor-execute policy `policy`.
    pub const fn with_wx_policy(self, policy: WxPolicy) -> Self {
        Self { wx_policy: policy, ..self }
    }

    /// Makes the next `count` heap preloads fail, as a kernel heap that
    /// has no more would ([`MmEnv::preload_heap`]; the host's own heap
    /// never refuses).
    pub fn refuse_heap_preloads(&self, count: usize) {
        self.heap_refusals.store(count, Ordering::Relaxed);
    }

    /// The same environment, asking `hook` whether to yield (without one,
    /// passes never yield).
    pub const fn with_yield_hook(self, hook: &'a dyn YieldHook) -> Self {
        Self { yield_hook: Some(hook), ..self }
    }
}

impl<M: PhysMemory, T: TlbOps> MmEnv for Env<'_, M, T> {
    type Mem = M;
    type Tlb = T;
    type HeapPreload = ();

    fn preload_heap(&self, _bytes: usize) -> Result<(), HeapExhausted> {
        let refuse = self.heap_refusals.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if refuse.is_ok() {
            Err(HeapExhausted)
        } else {
            Ok(())
        }
    }

    fn mem(&self) -> &M {
        self.mem
    }

    fn frames(&self) -> &BuddyAllocator<'static> {
        self.frames
    }

    fn tlb(&self) -> &T {
        self.tlb
    }

    fn asids(&self) -> &AsidAllocator {
        self.asids
    }

    fn stats(&self) -> &MmStats {
        &self.stats
    }

    fn wx_policy(&self) -> WxPolicy {
        self.wx_policy
    }

    fn should_yield(&self) -> bool {
        self.yield_hook.is_some_and(|hook| hook.should_yield())
    }

    fn yield_now(&self) {
        if let Some(hook) = self.yield_hook {
            hook.yield_now();
        }
    }
}

/// The TLB maintenance for an edit of an address space's table: the
/// machine's, or none at all, when the space never had an ASID (then no
/// TLB holds any of its entries) or the caller invalidates the whole ASID
/// itself afterwards (fork).
pub(crate) enum SpaceTlb<'t, T: TlbOps> {
    Real(&'t T),
    Skip,
}

impl<T: TlbOps> TlbOps for SpaceTlb<'_, T> {
    fn begin(&self) {
        if let Self::Real(t) = self {
            t.begin();
        }
    }

    fn invalidate_page(&self, asid: Asid, va: VirtAddr, leaf_only: bool) {
        if let Self::Real(t) = self {
            t.invalidate_page(asid, va, leaf_only);
        }
    }

    fn invalidate_pages(&self, asid: Asid, vas: &[VirtAddr], leaf_only: bool) {
        if let Self::Real(t) = self {
            t.invalidate_pages(asid, vas, leaf_only);
        }
    }

    fn invalidate_asid(&self, asid: Asid) {
        if let Self::Real(t) = self {
            t.invalidate_asid(asid);
        }
    }

    fn count_page_invalidations(&self, pages: usize) {
        if let Self::Real(t) = self {
            t.count_page_invalidations(pages);
        }
    }

    fn invalidate_kernel_page(&self, va: VirtAddr, leaf_only: bool) {
        if let Self::Real(t) = self {
            t.invalidate_kernel_page(va, leaf_only);
        }
    }

    fn invalidate_all(&self) {
        if let Self::Real(t) = self {
            t.invalidate_all();
        }
    }

    fn invalidate_all_local(&self) {
        if let Self::Real(t) = self {
            t.invalidate_all_local();
        }
    }

    fn sync(&self) {
        if let Self::Real(t) = self {
            t.sync();
        }
    }
}
