//! Address spaces made of vareas, with Linux semantics.
//!
//! An [`AddressSpace`] is a TTBR0 translation table, an ASID context and an
//! ordered set of vareas (ranges with one protection and one backing:
//! private or shared anonymous memory, a private or shared mapping of a
//! [`FileObject`](crate::object::FileObject), or device frames). Pages are faulted in on demand; the
//! system calls (mmap, munmap, mremap, mprotect, madvise, msync, mincore,
//! mlock, mlockall, brk) follow Linux, errnos included; fork copies on
//! write. [`AddressSpace::futex_key`] names futex words as Linux does.
//!
//! Threads share one space (and its ASID): the kernel keeps it behind one
//! lock (a sleeping one: the long passes may yield holding it, see
//! [`MmEnv::should_yield`]) and activates it on each CPU a thread of it
//! runs on through its [`Activation`], without that lock. Every change
//! to a live entry is invalidated with broadcast (inner-shareable) TLB
//! maintenance, so it reaches the CPUs running the other threads too.
//!
//! The machine comes in through [`MmEnv`]: the kernel passes its linear
//! map, frame pool, `TLBI` backend and ASID allocator, host tests the
//! simulated machine. Addresses spaces borrow it for their whole life.
//!
//! Choices, where Linux leaves room or Aspen differs:
//! - Private anonymous read faults allocate a zeroed page (no shared zero
//!   page), mapped writable when the varea is: a read-then-write costs one
//!   fault, and no page is ever shared with another task unless by fork.
//! - Copy-on-write: a per-frame reference count. A write fault on a
//!   read-only private page reuses the frame when this mapping holds the
//!   only reference and the frame is not in a page cache, and copies it
//!   otherwise (break-before-make: copy, clear, TLBI, DSB, write, drop).
//! - W^X ([`WxPolicy`], from the environment). By default a
//!   `PROT_WRITE|PROT_EXEC` varea is accepted (as Linux does) and its
//!   pages are mapped read-write after a write fault and read-execute
//!   after an execute fault, flipping on demand (each flip is one fault,
//!   and the execute side gets an instruction-cache sync). Flipping alone
//!   would livelock an instruction that stores into its own page (the
//!   store flips the page away from the fetch that retries it), so flips
//!   are counted per varea: past [`WX_FLIP_BOUND`] the varea's writable
//!   pages are mapped read-write-execute until an mprotect takes write or
//!   execute away. With [`WxPolicy::Strict`], mmap and mprotect refuse
//!   `PROT_WRITE|PROT_EXEC` with EACCES and no user page is ever writable
//!   and executable. Kernel pages never are ([`crate::paging::PageAttrs`]).
//! - `PROT_NONE` pages that hold data stay mapped, EL1-only and read-only,
//!   so user access faults; the kernel must access user memory with
//!   unprivileged loads and stores (`LDTR`/`STTR`) or check first with
//!   [`AddressSpace::check_user_range`].
//! - Shared file mappings are mapped read-only until written, so that
//!   writes mark the cached page dirty ([`crate::object`]); shared
//!   anonymous memory is mapped writable at once. Dirty pages reach the
//!   pager on msync (MS_SYNC or MS_ASYNC), munmap, MAP_FIXED replacement
//!   and address-space teardown.
//! - mprotect, mlock and munlock over a range with a hole fail with ENOMEM
//!   and change nothing (Linux changes the part before the hole).
//! - MAP_POPULATE, MAP_LOCKED and mappings made under `mlockall
//!   (MCL_FUTURE)` that run out of memory while populating are undone and
//!   fail with ENOMEM (Linux returns the mapping, unpopulated); populating
//!   skips pages past the end of a file (they raise SIGBUS when touched).
//!   A populated writable private page is already copied, so no access in
//!   a locked or populated range faults, with two exceptions: the first
//!   write to a shared *file* page (dirty tracking, as Linux does for
//!   file systems that write back) and execute/write flips in W+X vareas.
//! - Fork gives the child copies of the parent's *locked* writable private
//!   pages at once (so the parent's locked pages never fault after a
//!   fork); everything else is shared copy-on-write. The child inherits no
//!   locks (as in Linux).
//! - The free-area search goes top-down from the mmap base (below the
//!   stack) to [`MMAP_MIN_ADDR`], then bottom-up above the base, as Linux's
//!   top-down layout does; hints are used when the range is free.

mod env;
mod fault;
mod fork;
mod futex;
mod maps;
mod mincore;
mod remap;
mod shared;
mod syscalls;
mod user;
mod varea;
mod walk;

#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub use env::{Env, HeapExhausted, MmEnv, MmStats, WxPolicy, YieldHook};
pub use futex::FutexKey;
pub use maps::{MapsLine, VareaInfo, VareaKind};
pub use shared::{Beside, MunmapShared, NeedsExclusive, SharedZap, SHARED_UNMAP_PAGES};
pub use varea::{MappedFile, Prot};

use self::env::{EnvPause, SpaceTlb};
use self::shared::TableCell;
use self::varea::{Backing, Varea, VareaMap};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::asid::AsidContext;
use crate::errno::Errno;
use crate::frame::{BuddyAllocator, RefCursor};
use crate::paging::{Access, PageTable, PagingError, VaHalf};
use crate::tlb::{Asid, TlbScope};

/// The end of user space (the ABI's, 256 TiB).
pub const USER_END: VirtAddr = VirtAddr::new(aspen_abi::USER_ADDR_END);
// User space is exactly the TTBR0 half the translation tables cover.
const _: () = assert!(USER_END.as_u64() == VaHalf::Lower.range().end_exclusive.as_u64());
/// The lowest address mmap hands out or accepts with MAP_FIXED (EPERM
/// below), so that null-pointer accesses always fault (Linux's
/// `mmap_min_addr`).
pub const MMAP_MIN_ADDR: VirtAddr = VirtAddr::new(0x1_0000);
/// Where the top-down free-area search starts unless the kernel sets
/// another base: 256 MiB below the top, leaving room for the stack.
pub const DEFAULT_MMAP_BASE: VirtAddr = VirtAddr::new(USER_END.as_u64() - (256 << 20));
/// The most vareas a space may have (Linux's `vm.max_map_count`); calls
/// that would need more fail with ENOMEM.
pub const MAX_VAREAS: usize = 65530;

/// How many write/execute flips a varea's pages may take before they are
/// mapped writable and executable at once: a few flips are W^X working as
/// meant (a JIT writes, then runs), more are code that writes where it
/// runs.
pub const WX_FLIP_BOUND: u32 = 4;

/// What a faulting access tried to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Exec,
}

/// Why a fault could not be resolved: the signal for the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultError {
    /// No varea at the address, or the varea forbids the access: SIGSEGV.
    Segv,
    /// A file page past the end of file, or the pager failed: SIGBUS.
    Bus,
    /// No memory for the page or its table pages: the kernel kills the
    /// task (which signal it reports is the kernel's choice; Linux's OOM
    /// killer uses SIGKILL). Other tasks and the kernel go on.
    OutOfMemory,
}

/// How locked mappings are populated (mlockall flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LockMode {
    /// Fault every page in at once (MCL_CURRENT / MCL_FUTURE).
    Populate,
    /// Lock pages as they are faulted in (MCL_ONFAULT).
    OnFault,
}

/// The program break: `start` as the ELF loader left it, `current` as
/// brk(2) last set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Brk {
    start: VirtAddr,
    current: VirtAddr,
}

/// The next [`AddressSpace::id`]; starts at 1 and is never reused.
static NEXT_SPACE_ID: AtomicU64 = AtomicU64::new(1);

type Table<'e, E> = PageTable<'e, <E as MmEnv>::Mem, BuddyAllocator<'static>>;

/// One user address space. The kernel keeps it inside its task behind a
/// lock: every method assumes it is the only one working on the space.
pub struct AddressSpace<'e, E: MmEnv> {
    env: &'e E,
    /// Taken out only by `drop`; edited through a shared reference only by
    /// [`Self::fault_shared`], under `table_lock`.
    table: TableCell<ManuallyDrop<Table<'e, E>>>,
    /// Serialises the table edits of faults that share the space
    /// ([`Self::fault_shared`]); whoever holds the space as `&mut` needs
    /// it not.
    table_lock: spin::Mutex<()>,
    /// The range an unmap whose table work runs beside shared faults
    /// empties ([`Self::begin_munmap_shared`]): its vareas are still in
    /// the map, and shared faults there are refused.
    unmapping: Option<VirtRange>,
    /// Shared with the space's [`Activation`].
    asid: Arc<AsidContext>,
    vareas: VareaMap<'e, E>,
    mmap_base: VirtAddr,
    brk: Option<Brk>,
    stack_start: Option<VirtAddr>,
    /// Unique among every space ever made ([`AddressSpace::id`]).
    id: u64,
    /// mlockall(MCL_FUTURE): how new mappings are locked.
    lock_future: Option<LockMode>,
    /// The locked-memory limit (bytes) mlockall(MCL_FUTURE) was given:
    /// what later locked mappings are checked against.
    lock_limit: Option<u64>,
    /// Write/execute flips taken in this space since it was made.
    wx_flips: u64,
    /// The most bytes its vareas ever covered (Linux's `hiwater_vm`).
    peak_bytes: u64,
    /// Pages of memory mapped (device frames aside), kept as leaves come
    /// and go (Linux's RSS counters); atomic for shared faults.
    resident: AtomicUsize,
    /// The most `resident` was before it last fell (Linux's
    /// `hiwater_rss`, also updated just before unmapping).
    peak_resident: usize,
}

/// [`AddressSpace::activation`]: the root table (fixed for the space's
/// life) and the ASID context (which the allocator switches without a
/// lock).
pub struct Activation<'e, E: MmEnv> {
    env: &'e E,
    root: PhysAddr,
    asid: Arc<AsidContext>,
}

impl<E: MmEnv> Activation<'_, E> {
    /// [`AddressSpace::activate`], without the space.
    pub fn activate(&self, cpu: usize) -> (PhysAddr, Asid) {
        activate(self.env, self.root, &self.asid, cpu)
    }
}

impl<E: MmEnv> core::fmt::Debug for Activation<'_, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Activation").field("root", &self.root).field("asid", &self.asid.asid()).finish()
    }
}

fn activate<E: MmEnv>(env: &E, root: PhysAddr, asid: &AsidContext, cpu: usize) -> (PhysAddr, Asid) {
    (root, env.asids().switch_to(cpu, asid, env.tlb()))
}

/// `len` rounded up to whole pages; `None` on overflow.
fn page_align(len: u64) -> Option<u64> {
    len.checked_add(PAGE_SIZE - 1).map(|l| l & !(PAGE_SIZE - 1))
}

/// The TLB maintenance an edit of a space's table needs, and its scope.
fn space_tlb<'t, E: MmEnv>(env: &'t E, asid: &AsidContext) -> (SpaceTlb<'t, E::Tlb>, TlbScope) {
    match asid.asid() {
        Some(a) => (SpaceTlb::Real(env.tlb()), TlbScope::Asid(a)),
        None => (SpaceTlb::Skip, TlbScope::Asid(Asid(0))),
    }
}

/// Page index in its object of the page at `va` of a varea at `start`.
fn object_index(first_page: u64, start: VirtAddr, va: VirtAddr) -> u64 {
    first_page + (va - start) / PAGE_SIZE
}

/// Gives back what a removed leaf at `va` held: a reference to its frame
/// `pa` (none for device frames) and, for a writable shared file page, its
/// writer count. `varea` is the varea holding `va`, with its start.
/// Whether the leaf was a page of memory (counted as resident).
#[inline(always)]
fn release_leaf<E: MmEnv>(
    refs: &mut RefCursor<'_, 'static>,
    varea: Option<(VirtAddr, &Varea<'_, E>)>,
    va: VirtAddr,
    pa: PhysAddr,
    writable: bool,
) -> bool {
    let Some((start, varea)) = varea else {
        log::error!("mm: a leaf at {va:?} removed outside every varea; frame {pa:?} leaked");
        return false;
    };
    match &varea.backing {
        Backing::Device { .. } => return false,
        Backing::Anon => refs.put(pa),
        Backing::Object { object, first_page, shared } => {
            if *shared && writable {
                object.end_writer(object_index(*first_page, start, va));
            }
            refs.put(pa);
        }
    }
    true
}

/// Resident pages of an address space by kind ([`AddressSpace::rss`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rss {
    /// Private anonymous pages (heap, stack, bss, `MAP_PRIVATE|MAP_ANONYMOUS`).
    pub anon: usize,
    /// Pages of mapped files.
    pub file: usize,
    /// Pages of shared anonymous memory.
    pub shmem: usize,
}

impl Rss {
    /// All of them (`VmRSS`).
    pub fn total(&self) -> usize {
        self.anon + self.file + self.shmem
    }
}

/// The varea of each leaf a pass hands over in address order, found by
/// moving along the vareas in order rather than by a lookup per leaf.
struct VareaCursor<'v, 'e: 'v, E: MmEnv + 'e, I: Iterator<Item = (VirtAddr, &'v Varea<'e, E>)>> {
    vareas: I,
    current: Option<(VirtAddr, &'v Varea<'e, E>)>,
}

impl<'v, 'e: 'v, E: MmEnv + 'e, I: Iterator<Item = (VirtAddr, &'v Varea<'e, E>)>> VareaCursor<'v, 'e, E, I> {
    fn new(mut vareas: I) -> Self {
        let current = vareas.next();
        Self { vareas, current }
    }

    /// The varea holding `va` (not below the last one asked for).
    #[inline]
    fn at(&mut self, va: VirtAddr) -> Option<(VirtAddr, &'v Varea<'e, E>)> {
        while let Some((_, v)) = self.current {
            if v.end_exclusive > va {
                break;
            }
            self.current = self.vareas.next();
        }
        self.current.filter(|(start, _)| *start <= va)
    }
}

/// Logs a table edit that failed though its arguments were checked.
fn log_edit(what: &str, result: Result<(), PagingError>) {
    if let Err(e) = result {
        log::error!("mm: {what} refused: {e:?}");
    }
}

/// Writes back the dirty pages of the shared file vareas in `removed`.
fn write_back<'v, 'e: 'v, E: MmEnv + 'e>(removed: impl Iterator<Item = (VirtAddr, &'v Varea<'e, E>)>) {
    for (start, varea) in removed {
        if let Backing::Object { object, first_page, shared: true } = &varea.backing {
            let pages = (varea.end_exclusive - start) / PAGE_SIZE;
            if let Err(e) = object.sync_range(*first_page, first_page + pages) {
                log::warn!("mm: write-back of {:?} failed: {e}", object.identity().path);
            }
        }
    }
}

impl<'e, E: MmEnv> AddressSpace<'e, E> {
    /// An empty address space (one zeroed root table).
    pub fn new(env: &'e E) -> Result<Self, Errno> {
        let table = PageTable::new(env.mem(), env.frames(), VaHalf::Lower).map_err(|_| Errno::ENOMEM)?;
        Ok(Self {
            env,
            table: TableCell::new(ManuallyDrop::new(table)),
            table_lock: spin::Mutex::new(()),
            unmapping: None,
            asid: Arc::new(AsidContext::new()),
            vareas: VareaMap::new(),
            mmap_base: DEFAULT_MMAP_BASE,
            brk: None,
            stack_start: None,
            id: NEXT_SPACE_ID.fetch_add(1, Ordering::Relaxed),
            lock_future: None,
            lock_limit: None,
            wx_flips: 0,
            peak_bytes: 0,
            resident: AtomicUsize::new(0),
            peak_resident: 0,
        })
    }

    /// A number naming this space alone, for as long as the kernel runs
    /// (a fork child gets a new one; numbers are never reused). Threads
    /// sharing the space share it: private futex keys are made of it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The environment this space was made in.
    pub fn env(&self) -> &'e E {
        self.env
    }

    /// Makes this space current on `cpu` (which must be the calling CPU,
    /// with preemption off): returns the root table and the ASID to write
    /// into TTBR0 together (`root | asid << 48`, one MSR, then ISB). No
    /// TLB maintenance is needed (the ASID allocator did any).
    pub fn activate(&self, cpu: usize) -> (PhysAddr, Asid) {
        activate(self.env, self.table.root(), &self.asid, cpu)
    }

    /// What activating this space needs, apart from the space: for a task
    /// switch, which must not wait for the space's lock (its holder may be
    /// paused in a long pass). It must go with the space: activating it
    /// after the space was dropped would point TTBR0 at a freed table.
    pub fn activation(&self) -> Activation<'e, E> {
        Activation { env: self.env, root: self.table.root(), asid: Arc::clone(&self.asid) }
    }

    /// The physical address of the root table.
    pub fn root(&self) -> PhysAddr {
        self.table.root()
    }

    /// Where the top-down free-area search starts (page aligned down; the
    /// kernel sets it below the stack).
    pub fn set_mmap_base(&mut self, base: VirtAddr) {
        self.mmap_base = base.align_down(PAGE_SIZE).min(USER_END);
    }

    /// Sets the initial program break (the end of the ELF's bss); brk(2)
    /// grows and shrinks the heap from there. Before this, brk fails.
    pub fn set_brk_base(&mut self, base: VirtAddr) {
        self.brk = Some(Brk { start: base, current: base });
    }

    /// The initial stack pointer, for `[stack]` in `/proc/<pid>/maps`.
    pub fn set_stack_start(&mut self, sp: VirtAddr) {
        self.stack_start = Some(sp);
    }

    /// The initial stack pointer, once set (`startstack` in `/proc/<pid>/stat`).
    pub fn stack_start(&self) -> Option<VirtAddr> {
        self.stack_start
    }

    /// Where the program break area starts, once set (`start_brk`).
    pub fn brk_start(&self) -> Option<VirtAddr> {
        self.brk.as_ref().map(|b| b.start)
    }

    /// Number of vareas.
    pub fn varea_count(&self) -> usize {
        self.vareas.len()
    }

    /// A bound on the kernel heap one memory system call (or a fork's
    /// copy of this space) may allocate for the varea map: what the kernel
    /// preloads before it changes anything.
    pub fn change_heap_bound(&self) -> usize {
        self.vareas.change_heap_bound()
    }

    /// Write/execute flips this space's pages took since it was made
    /// (not inherited across fork).
    pub fn wx_flips(&self) -> u64 {
        self.wx_flips
    }

    /// Vareas whose pages flipped past [`WX_FLIP_BOUND`] and are mapped
    /// writable and executable at once.
    pub fn wx_vareas(&self) -> usize {
        self.vareas.iter().filter(|(_, v)| v.wx_together).count()
    }

    /// Table pages, the root included.
    pub fn table_pages(&self) -> usize {
        self.table.table_pages()
    }

    /// Bytes in locked vareas (mlock, MAP_LOCKED, mlockall): what Linux
    /// counts in `locked_vm` and checks against `RLIMIT_MEMLOCK`.
    pub fn locked_bytes(&self) -> u64 {
        self.vareas.iter().filter(|(_, v)| v.locked).map(|(start, v)| v.end_exclusive - start).sum()
    }

    /// Bytes in every varea (Linux's `total_vm`).
    fn mapped_bytes(&self) -> u64 {
        self.vareas.bytes()
    }

    /// The most bytes its vareas ever covered (`VmPeak`); a fork child's
    /// starts at its size then.
    pub fn peak_bytes(&self) -> u64 {
        self.peak_bytes.max(self.mapped_bytes())
    }

    /// The most pages of memory it ever had mapped (`VmHWM`): the resident
    /// count only falls where leaves are unmapped, which notes it first.
    pub fn peak_resident_pages(&self) -> usize {
        self.peak_resident.max(self.resident_count())
    }

    /// Pages of memory mapped now, device frames aside, as counted when
    /// leaves come and go (equal to [`Self::rss`]'s total).
    pub fn resident_count(&self) -> usize {
        self.resident.load(Ordering::Relaxed)
    }

    /// Records the size as the peak if it is one (after a varea grew or
    /// came).
    fn note_size(&mut self) {
        self.peak_bytes = self.peak_bytes.max(self.vareas.bytes());
    }

    /// Pages mapped (resident set size, in pages).
    pub fn resident_pages(&self) -> usize {
        walk::count_leaves(self.env.mem(), self.table.root(), VaHalf::Lower.range())
    }

    /// Pages mapped, by kind (Linux's `RssAnon`, `RssFile`, `RssShmem`):
    /// those of private anonymous vareas, of file vareas (private copies
    /// of file pages included), and of shared anonymous memory. Device
    /// frames are not memory the space holds and are not counted.
    pub fn rss(&self) -> Rss {
        let mut rss = Rss::default();
        for (start, varea) in self.vareas.iter() {
            let count =
                || walk::count_leaves(self.env.mem(), self.table.root(), VirtRange::new(start, varea.end_exclusive));
            match &varea.backing {
                Backing::Anon => rss.anon += count(),
                Backing::Object { object, .. } if object.is_anonymous() => rss.shmem += count(),
                Backing::Object { .. } => rss.file += count(),
                Backing::Device { .. } => {}
            }
        }
        rss
    }

    /// Bytes in every varea (Linux's `total_vm`, `VmSize`).
    pub fn total_bytes(&self) -> u64 {
        self.mapped_bytes()
    }

    /// Unmaps every leaf in `range` (page aligned, inside user space),
    /// releasing what they held once the TLB forgot them; may yield
    /// ([`MmEnv::should_yield`]) every few dozen entries.
    fn zap(&mut self, range: VirtRange) {
        self.zap_vacating(range, range);
    }

    /// [`Self::zap`], where nothing in `vacated` outside `range` is mapped
    /// (the gap the unmapped vareas leave): the table pages inside it go
    /// without a scan ([`crate::paging::Editor::unmap_vacating`]).
    fn zap_vacating(&mut self, range: VirtRange, vacated: VirtRange) {
        self.peak_resident = self.peak_resident.max(*self.resident.get_mut());
        let (tlb, scope) = space_tlb(self.env, &self.asid);
        let mut refs = RefCursor::new(self.env.frames());
        let mut vareas = VareaCursor::new(self.vareas.overlapping(range));
        let mut released = 0;
        let mut pause = EnvPause(self.env);
        // Dropped where it is (a move would copy its inline arrays).
        {
            let mut editor = self
                .table
                .edit(&tlb, scope, |leaf| {
                    let writable = leaf.attrs.access().contains(Access::WRITE);
                    released += usize::from(release_leaf(&mut refs, vareas.at(leaf.va), leaf.va, leaf.pa, writable));
                })
                .pausing(&mut pause);
            log_edit("unmap", editor.unmap_vacating(range, vacated));
        }
        *self.resident.get_mut() -= released;
    }

    /// After the file `object_id` shrank to `size` bytes: unmaps every
    /// page of it at or past the new end, and private copies of those, in
    /// each varea that maps it, so that the next access faults and gets
    /// SIGBUS (Linux's `unmap_mapping_range` at truncate). The vareas stay.
    pub fn file_shrunk(&mut self, object_id: u64, size: u64) {
        let first_gone = size.div_ceil(PAGE_SIZE);
        // One varea at a time, from where the last ended: no list to
        // allocate on a path that must not fail (truncate).
        let mut from = VirtAddr::new(0);
        loop {
            let next =
                self.vareas.overlapping(VirtRange::new(from, USER_END)).find_map(|(start, v)| match &v.backing {
                    Backing::Object { object, first_page, .. } if object.id() == object_id => {
                        let pages = (v.end_exclusive - start) / PAGE_SIZE;
                        let skip = first_gone.saturating_sub(*first_page);
                        (skip < pages).then(|| VirtRange::new(start + skip * PAGE_SIZE, v.end_exclusive))
                    }
                    _ => None,
                });
            let Some(range) = next else { break };
            from = range.end_exclusive;
            self.zap(range);
        }
    }

    /// Removes everything in `range` (page aligned, inside user space):
    /// splits the vareas at its ends, unmaps, writes back shared file
    /// pages, and drops the vareas.
    fn unmap_range(&mut self, range: VirtRange) {
        if !self.vareas.isolate(range) {
            return;
        }
        // Leaves lie inside vareas only: between the neighbours of the
        // vareas going, nothing else is mapped.
        let vacated = self.vareas.gap_around(range);
        self.zap_vacating(range, vacated);
        self.vareas.remove_range(range, |start, varea| write_back(core::iter::once((start, &varea))));
    }

    /// Adds a varea over `range`, which must be free, and merges it with
    /// its neighbours.
    fn add_varea(&mut self, range: VirtRange, varea: Varea<'e, E>) {
        self.vareas.insert(range.start, varea);
        self.note_size();
        self.vareas.merge_in(range, &mut crate::paging::NoPause);
    }
}

impl<E: MmEnv> Drop for AddressSpace<'_, E> {
    /// Tears the space down: unmaps everything, writes back dirty shared
    /// file pages, frees every frame and table page, releases the ASID.
    /// The space must not be current on any CPU any more. May yield
    /// ([`MmEnv::should_yield`]) once its ASID is invalidated.
    fn drop(&mut self) {
        let env = self.env;
        let removed = self.vareas.clear();
        let (tlb, scope) = space_tlb(env, &self.asid);
        // SAFETY: the table is taken out exactly once, here, and `self` is
        // not used afterwards.
        let table = unsafe { ManuallyDrop::take(&mut *self.table) };
        // The ASID dies with the space: one invalidation of all of it, then
        // every leaf and table page goes without touching an entry.
        table.destroy_at_once(&tlb, scope, &mut EnvPause(env), |table, pause| {
            let mut refs = RefCursor::new(env.frames());
            for (&start, varea) in &removed {
                let range = VirtRange::new(start, varea.end_exclusive);
                // One small closure per backing, so the pass inlines it.
                match &varea.backing {
                    Backing::Device { .. } => {}
                    Backing::Anon | Backing::Object { shared: false, .. } => {
                        table.visit_leaves_pausing(range, pause, |leaf| refs.put(leaf.pa()));
                    }
                    Backing::Object { object, first_page, shared: true } => {
                        table.visit_leaves_pausing(range, pause, |leaf| {
                            if leaf.desc.is_writable() {
                                object.end_writer(object_index(*first_page, start, leaf.va));
                            }
                            refs.put(leaf.pa());
                        })
                    }
                }
            }
        });
        write_back(removed.iter().map(|(s, v)| (*s, v)));
        drop(removed);
        env.asids().release(&self.asid);
    }
}

impl<E: MmEnv> core::fmt::Debug for AddressSpace<'_, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AddressSpace")
            .field("root", &self.table.root())
            .field("asid", &self.asid.asid())
            .field("vareas", &self.vareas.len())
            .finish()
    }
}
