//! Page faults: pages populated from their backing, copy-on-write, dirty
//! tracking of shared file pages, W^X flips (counted per varea; past the
//! bound, writable and executable pages); and populating whole ranges
//! (MAP_POPULATE, mlock).

use super::env::{EnvPause, SpaceTlb};
use super::varea::{Backing, Prot, Varea};
use super::{log_edit, object_index, space_tlb, AddressSpace, FaultError, FaultKind, MmEnv, USER_END};
use crate::addr::{PhysAddr, VirtAddr, VirtRange, PAGE_SIZE};
use crate::frame::{BuddyAllocator, FrameAllocator, FrameFlags};
use crate::object::{put_frame, PageError};
use crate::paging::Pause;
use crate::paging::{
    copy_frame, zero_frame, Access, Cursor, DescFlags, Descriptor, Leaf, MemoryType, PageAttrs, PageSize, PagingError,
    Privilege,
};
use crate::tlb::TlbBatch;

/// What a leaf lets user code do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Mapped for EL1 only (PROT_NONE with data): every user access faults.
    None,
    Read,
    ReadWrite,
    ReadExec,
    /// Only in a varea that flipped past the bound (`Varea::wx_together`).
    ReadWriteExec,
}

/// Pages populate faults in between two questions whether to yield (a
/// populated page costs about a thousand instructions: zeroing or copying
/// 4 KiB and the allocation).
pub const POPULATE_SPACING: usize = 4;

/// The most pages of private anonymous memory populate maps from one
/// allocation of frames, between two questions whether to yield (a page
/// of such a run costs about 190 instructions, most of them zeroing: a run
/// about 6,000, below the longest stretches between pause points).
pub const POPULATE_RUN: usize = 32;

/// `PROT_NONE` pages of RAM: kernel-only, read-only, tagged with the ASID.
const NORMAL_NONE: PageAttrs = PageAttrs::KERNEL_RO.non_global();
const DEVICE_RW: PageAttrs = device_attrs(Privilege::User, Access::READ.union(Access::WRITE));
const DEVICE_RO: PageAttrs = device_attrs(Privilege::User, Access::READ);
const DEVICE_NONE: PageAttrs = device_attrs(Privilege::Kernel, Access::READ).non_global();

/// Device attributes, checked when the constants above are evaluated (at
/// compile time).
const fn device_attrs(privilege: Privilege, access: Access) -> PageAttrs {
    match PageAttrs::new(privilege, access, MemoryType::Device) {
        Ok(attrs) => attrs,
        Err(_) => panic!("invalid device page attributes"),
    }
}

impl Mode {
    /// Every mode, in declaration order (`ALL[m as usize] == m`).
    pub(crate) const ALL: [Self; 5] = [Self::None, Self::Read, Self::ReadWrite, Self::ReadExec, Self::ReadWriteExec];

    /// Whether user code may write.
    pub(crate) fn is_writable(self) -> bool {
        matches!(self, Self::ReadWrite | Self::ReadWriteExec)
    }

    /// Whether user code may fetch instructions.
    pub(crate) fn is_executable(self) -> bool {
        matches!(self, Self::ReadExec | Self::ReadWriteExec)
    }

    /// Whether a fault of `kind` on a leaf in this mode trades write for
    /// execute or back (counted against the varea's flip bound).
    fn flips_on(self, kind: FaultKind) -> bool {
        matches!((self, kind), (Self::ReadWrite, FaultKind::Exec) | (Self::ReadExec, FaultKind::Write))
    }

    /// The mode of a leaf with `attrs`.
    pub(crate) fn of(attrs: PageAttrs) -> Self {
        if attrs.privilege() != Privilege::User {
            return Self::None;
        }
        let access = attrs.access();
        if access.contains(Access::WRITE | Access::EXECUTE) {
            Self::ReadWriteExec
        } else if access.contains(Access::WRITE) {
            Self::ReadWrite
        } else if access.contains(Access::EXECUTE) {
            Self::ReadExec
        } else {
            Self::Read
        }
    }

    /// The mode of a leaf descriptor: [`Self::of`] its attributes, read
    /// from the bits without decoding them.
    pub(crate) fn of_desc(desc: Descriptor) -> Self {
        let bits = DescFlags::from_bits_retain(desc.bits());
        if !bits.contains(DescFlags::AP_EL0) {
            Self::None
        } else if !bits.contains(DescFlags::AP_RO) {
            if bits.contains(DescFlags::UXN) {
                Self::ReadWrite
            } else {
                Self::ReadWriteExec
            }
        } else if !bits.contains(DescFlags::UXN) {
            Self::ReadExec
        } else {
            Self::Read
        }
    }

    /// The state of a leaf's permission bits that its mode follows from
    /// (AP[1], AP[2], UXN), as a number below [`Self::KEYS`], for passes
    /// that decide once per state rather than once per leaf.
    #[inline(always)]
    pub(crate) fn key(desc: Descriptor) -> usize {
        let bits = desc.bits();
        let bit = |flag: DescFlags, at: u32| usize::from(bits & flag.bits() != 0) << at;
        bit(DescFlags::AP_EL0, 0) | bit(DescFlags::AP_RO, 1) | bit(DescFlags::UXN, 2)
    }

    /// How many values [`Self::key`] takes.
    pub(crate) const KEYS: usize = 8;

    /// The mode of the leaves whose [`Self::key`] is `key`.
    pub(crate) fn of_key(key: usize) -> Self {
        let flag = |flag: DescFlags, at: u32| if key & (1 << at) != 0 { flag.bits() } else { 0 };
        let bits = flag(DescFlags::AP_EL0, 0) | flag(DescFlags::AP_RO, 1) | flag(DescFlags::UXN, 2);
        Self::of_desc(Descriptor::from_bits(bits))
    }

    /// A page descriptor with the permission bits of the mode, for
    /// [`Descriptor::with_permissions_of`] (its address means nothing).
    pub(crate) fn model(self, device: bool) -> Descriptor {
        Descriptor::leaf(PhysAddr::new(0), PageSize::Size4K, self.attrs(device))
    }

    /// Whether a varea with `prot` still permits everything this mode
    /// lets user code do (so a leaf in it may stay as it is).
    pub(crate) fn within(self, prot: Prot) -> bool {
        match self {
            Self::None => !prot.is_accessible(),
            Self::Read => prot.is_accessible(),
            Self::ReadWrite => prot.contains(Prot::WRITE),
            Self::ReadExec => prot.contains(Prot::EXEC),
            Self::ReadWriteExec => prot.contains(Prot::WRITE | Prot::EXEC),
        }
    }

    pub(crate) fn allows(self, kind: FaultKind) -> bool {
        matches!(
            (self, kind),
            (Self::Read | Self::ReadWrite | Self::ReadExec | Self::ReadWriteExec, FaultKind::Read)
                | (Self::ReadWrite | Self::ReadWriteExec, FaultKind::Write)
                | (Self::ReadExec | Self::ReadWriteExec, FaultKind::Exec)
        )
    }

    /// The page attributes of the mode, for RAM or for device memory
    /// (never executable: execute is refused on device vareas).
    pub(crate) fn attrs(self, device: bool) -> PageAttrs {
        match (self, device) {
            (Self::None, false) => NORMAL_NONE,
            (Self::Read, false) => PageAttrs::USER_RO,
            (Self::ReadWrite, false) => PageAttrs::USER_RW,
            (Self::ReadExec, false) => PageAttrs::USER_RX,
            (Self::ReadWriteExec, false) => PageAttrs::USER_RWX,
            (Self::None, true) => DEVICE_NONE,
            (Self::Read | Self::ReadExec, true) => DEVICE_RO,
            (Self::ReadWrite | Self::ReadWriteExec, true) => DEVICE_RW,
        }
    }

    /// The mode for a page of a varea with `prot`. `write_ok`: the page
    /// may be writable without a fault (not copy-on-write, not clean
    /// shared file data). W^X: with both write and execute possible,
    /// both when the varea flipped past the bound (`together`), else
    /// `prefer_exec` picks.
    pub(crate) fn choose(prot: Prot, write_ok: bool, prefer_exec: bool, together: bool) -> Self {
        if !prot.is_accessible() {
            return Self::None;
        }
        let write = prot.contains(Prot::WRITE) && write_ok;
        let exec = prot.contains(Prot::EXEC);
        match (write, exec) {
            (true, true) if together => Self::ReadWriteExec,
            (true, true) if prefer_exec => Self::ReadExec,
            (true, _) => Self::ReadWrite,
            (false, true) => Self::ReadExec,
            (false, false) => Self::Read,
        }
    }

    /// The mode a fault of `kind` installs in `varea` (which allows the
    /// access).
    pub(super) fn for_fault<E: MmEnv>(varea: &Varea<'_, E>, kind: FaultKind, write_ok: bool) -> Self {
        match kind {
            FaultKind::Write => Self::writable_in(varea),
            FaultKind::Exec if varea.wx_together && write_ok => Self::ReadWriteExec,
            FaultKind::Exec => Self::ReadExec,
            FaultKind::Read => Self::choose(varea.prot, write_ok, false, varea.wx_together),
        }
    }

    /// The mode of a page of `varea` made writable.
    pub(super) fn writable_in<E: MmEnv>(varea: &Varea<'_, E>) -> Self {
        if varea.wx_together {
            Self::ReadWriteExec
        } else {
            Self::ReadWrite
        }
    }
}

/// Pages one write fault may give write permission to: an aligned group
/// ([`write_around`]), the pages of one last-level table.
const WRITE_AROUND_PAGES: u64 = 512;

/// Write fault-around: gives write permission to the pages of `window`
/// that are present, read-only (not executable) and the process's alone,
/// so that writes after an upgrade (mprotect giving write back, a fork
/// child gone) fault once per window, not once per page; the faulting
/// page, writable already, stays as it is. Pages shared copy-on-write,
/// page cache frames and missing pages stay as they are. One pass over
/// the window's last-level entries; the upgrades are invalidated together
/// (one batch, one `DSB`) before this returns, or before it pauses.
pub(super) fn write_around<M, T>(
    table: &mut crate::paging::PageTable<'_, M, BuddyAllocator<'static>>,
    frames: &BuddyAllocator<'static>,
    window: VirtRange,
    tlb: &T,
    scope: crate::tlb::TlbScope,
    pause: &mut impl Pause,
) where
    M: crate::paging::PhysMemory + ?Sized,
    T: crate::tlb::TlbOps + ?Sized,
{
    let writable = Mode::ReadWrite.model(false);
    let mut batch = TlbBatch::new();
    let result = table.reprotect_pages(window, scope, &mut batch, tlb, pause, |leaf| {
        if Mode::of_desc(leaf.desc) == Mode::Read && exclusive(frames, leaf.pa()) {
            leaf.desc.with_permissions_of(writable)
        } else {
            leaf.desc
        }
    });
    batch.finish(tlb);
    log_edit("write fault-around", result);
}

/// The window of a write fault at `page` for [`FaultCursor::write_around`]:
/// the aligned group of [`WRITE_AROUND_PAGES`] holding it, inside the varea
/// (which starts at `start`). Only writes to private read-write memory
/// (anonymous, or private file copies) get one: there write permission
/// needs no bookkeeping (shared file pages count their writers, and
/// execute permission has the W^X flips).
fn write_around_window<E: MmEnv>(
    page: VirtAddr,
    start: VirtAddr,
    varea: &Varea<'_, E>,
    kind: FaultKind,
) -> Option<VirtRange> {
    let private = matches!(varea.backing, Backing::Anon | Backing::Object { shared: false, .. });
    if kind != FaultKind::Write || !private || varea.prot.access() != Prot::READ | Prot::WRITE {
        return None;
    }
    Some(aligned_window(page, WRITE_AROUND_PAGES, VirtRange::new(start, varea.end_exclusive)))
}

/// Pages a read fault on a file mapping may map: the aligned group around
/// it ([`read_around_window`]), 64 KiB as Linux's `fault_around_bytes`.
const READ_AROUND_PAGES: u64 = 16;

/// The window of a read fault at `page` for [`FaultCursor::map_cached_around`]:
/// the aligned group of [`READ_AROUND_PAGES`] holding it, inside the varea
/// (which starts at `start`). Only read faults on file mappings whose
/// pages map read-only (not executable: no instruction cache to keep
/// coherent, no W^X flips) get one.
pub(super) fn read_around_window<E: MmEnv>(
    page: VirtAddr,
    start: VirtAddr,
    varea: &Varea<'_, E>,
    kind: FaultKind,
) -> Option<VirtRange> {
    let file = matches!(&varea.backing, Backing::Object { object, .. } if !object.is_anonymous());
    if kind != FaultKind::Read || !file || Mode::for_fault(varea, kind, false) != Mode::Read {
        return None;
    }
    Some(aligned_window(page, READ_AROUND_PAGES, VirtRange::new(start, varea.end_exclusive)))
}

/// How a fault maps a file page (`cached`, which it holds a reference to)
/// at its first touch, on both paths (`fault_missing`, and
/// `AddressSpace::map_cached_shared` with the space shared).
pub(super) struct FilePage {
    /// What to map: `cached`, or a private copy of it.
    pub(super) frame: PhysAddr,
    pub(super) mode: Mode,
    /// Mapped writable in a shared mapping: dirty from then on, so its
    /// writer is counted (`FileObject::start_writer`) before the entry is
    /// written, and uncounted if the map fails.
    pub(super) writer: bool,
}

impl FilePage {
    /// A write to a private mapping maps a copy at once (rather than the
    /// cache page first, copied at once after), and `cached`'s reference
    /// goes back; anything else maps `cached`: read-only in a private
    /// mapping (copied at its first write), and in a shared one but on a
    /// write or in shared anonymous memory, which has no file to keep
    /// clean. Out of memory for the copy: `cached`'s reference goes back.
    pub(super) fn choose<E: MmEnv>(
        env: &E,
        varea: &Varea<'_, E>,
        anonymous: bool,
        shared: bool,
        kind: FaultKind,
        cached: PhysAddr,
    ) -> Result<Self, FaultError> {
        let frames = env.frames();
        if !shared && kind == FaultKind::Write {
            let copy = frames.alloc_frame();
            if let Ok(copy) = copy {
                // SAFETY: `copy` is fresh and ours; `cached` is a cache page
                // (a pool frame) we hold a reference to, distinct from it.
                unsafe { copy_frame(env.mem(), copy, cached) };
            }
            put_frame(frames, cached);
            let frame = copy.map_err(|_| FaultError::OutOfMemory)?;
            return Ok(Self { frame, mode: Mode::writable_in(varea), writer: false });
        }
        let mode = Mode::for_fault(varea, kind, shared && anonymous);
        Ok(Self { frame: cached, mode, writer: shared && mode.is_writable() })
    }
}

/// The aligned group of `pages` pages holding `page`, cut to `varea`.
fn aligned_window(page: VirtAddr, pages: u64, varea: VirtRange) -> VirtRange {
    let group = page.align_down(pages * PAGE_SIZE);
    let end = group.checked_add(pages * PAGE_SIZE).map_or(varea.end_exclusive, |e| e.min(varea.end_exclusive));
    VirtRange::new(group.max(varea.start), end)
}

/// Whether a varea with `prot` allows an access of `kind`.
pub(crate) fn prot_allows(prot: Prot, kind: FaultKind) -> bool {
    match kind {
        FaultKind::Read => prot.is_accessible(),
        FaultKind::Write => prot.contains(Prot::WRITE),
        FaultKind::Exec => prot.contains(Prot::EXEC),
    }
}

/// Whether a private page's frame may be written in place: the mapping
/// holds the only reference and no page cache has the frame.
#[inline]
pub(crate) fn exclusive(frames: &BuddyAllocator<'static>, pa: PhysAddr) -> bool {
    frames.meta(pa).is_some_and(|m| m.refcount() == 1 && !m.flags().contains(FrameFlags::PAGE_CACHE))
}

/// Whether a present leaf of `varea`, mapping `pa` in mode `current`, may
/// be writable without a fault.
pub(crate) fn leaf_write_ok<E: MmEnv>(env: &E, varea: &Varea<'_, E>, pa: PhysAddr, current: Mode) -> bool {
    match &varea.backing {
        Backing::Anon | Backing::Object { shared: false, .. } => exclusive(env.frames(), pa),
        Backing::Object { object, shared: true, .. } => object.is_anonymous() || current.is_writable(),
        Backing::Device { .. } => true,
    }
}

fn fault_error(e: PagingError) -> FaultError {
    match e {
        PagingError::OutOfMemory(_) => FaultError::OutOfMemory,
        other => {
            log::error!("mm: fault: table update refused: {other:?}");
            FaultError::Segv
        }
    }
}

fn page_error(e: PageError) -> FaultError {
    match e {
        PageError::BeyondEof | PageError::Io(_) => FaultError::Bus,
        PageError::OutOfMemory => FaultError::OutOfMemory,
    }
}

/// The table cursor of an address space, with the space's TLB maintenance.
pub(super) type SpaceCursor<'c, 'e, E> =
    Cursor<'c, 'e, <E as MmEnv>::Mem, BuddyAllocator<'static>, SpaceTlb<'e, <E as MmEnv>::Tlb>>;

/// Resolves faults with a cursor on the table: the faulting page's, or a
/// varea's range for populate. Each page is walked to once: what the
/// query finds, the write that follows reuses.
pub(super) struct FaultCursor<'c, 'e, E: MmEnv> {
    pub(super) env: &'e E,
    pub(super) cursor: SpaceCursor<'c, 'e, E>,
    /// Pages of memory (not device frames) it mapped.
    pub(super) installed: usize,
}

impl<'e, E: MmEnv> FaultCursor<'_, 'e, E> {
    /// Maps `frame` at the cursor's page, whose entry is invalid: no TLB
    /// maintenance.
    #[inline]
    fn install(&mut self, frame: PhysAddr, mode: Mode, device: bool) -> Result<(), FaultError> {
        if mode.is_executable() {
            self.env.sync_icache(frame);
        }
        self.cursor.map(frame, mode.attrs(device)).map_err(fault_error)?;
        self.installed += usize::from(!device);
        Ok(())
    }

    /// Changes the permissions of the live leaf at the cursor in place
    /// (one TLBI).
    fn set_mode(&mut self, leaf: Leaf, mode: Mode, device: bool) {
        if mode.is_executable() && !Mode::of_desc(leaf.desc).is_executable() {
            self.env.sync_icache(leaf.pa());
        }
        log_edit("permission change", self.cursor.protect(mode.attrs(device)).map(drop));
    }

    /// A write to a read-only private page: reuse the frame when this
    /// mapping holds the only reference, else copy it (break-before-make:
    /// copy, clear the entry, TLBI, DSB, write the new entry, then drop
    /// the old frame's reference). `mode` is writable.
    fn break_cow(&mut self, leaf: Leaf, mode: Mode) -> Result<(), FaultError> {
        let frames = self.env.frames();
        if exclusive(frames, leaf.pa()) {
            self.env.stats().cow_reuse();
            self.set_mode(leaf, mode, false);
            return Ok(());
        }
        let copy = frames.alloc_frame().map_err(|_| FaultError::OutOfMemory)?;
        // SAFETY: `copy` is a fresh frame, ours alone; `leaf.pa()` is a pool
        // frame nobody may write (every mapping of it is read-only), and
        // the two differ.
        unsafe { copy_frame(self.env.mem(), copy, leaf.pa()) };
        if mode.is_executable() {
            self.env.sync_icache(copy);
        }
        match self.cursor.replace(copy, mode.attrs(false)) {
            Ok(old) => {
                // The TLB forgot the old leaf before `replace` returned.
                if let Some(old) = old {
                    put_frame(frames, old.pa());
                }
                self.env.stats().cow_copy();
                Ok(())
            }
            Err(e) => {
                frames.free_frame(copy);
                Err(fault_error(e))
            }
        }
    }

    /// A zeroed frame of our own.
    fn zeroed_frame(&self) -> Result<PhysAddr, FaultError> {
        let frame = self.env.frames().alloc_frame().map_err(|_| FaultError::OutOfMemory)?;
        // SAFETY: a fresh frame from the pool, ours alone.
        unsafe { zero_frame(self.env.mem(), frame) };
        Ok(frame)
    }

    /// Populate's way for private anonymous memory: maps the pages with no
    /// entry from the cursor's on (up to [`POPULATE_RUN`], a power of two
    /// of them) to zeroed frames allocated together, which an unmap gives
    /// back together too. Returns the pages mapped (the cursor is at the
    /// last), or 0 when fewer than two pages in a row are missing or no
    /// such run of frames is free: then the page is resolved on its own.
    fn map_zeroed_run(&mut self, mode: Mode) -> Result<usize, FaultError> {
        let missing = self.cursor.unmapped_run(POPULATE_RUN);
        if missing < 2 {
            return Ok(0);
        }
        let order = missing.ilog2();
        let count = 1usize << order;
        let frames = self.env.frames();
        let Ok(first) = frames.alloc_run(order) else { return Ok(0) };
        for i in 0..count as u64 {
            // SAFETY: fresh frames from the pool, ours alone.
            unsafe { zero_frame(self.env.mem(), first + i * PAGE_SIZE) };
        }
        if let Err(e) = self.cursor.map_run(first, count, mode.attrs(false)) {
            frames.free_run(first, count);
            return Err(fault_error(e));
        }
        self.installed += count;
        Ok(count)
    }

    /// Maps `frame` (a reference we own) or gives the reference back.
    #[inline]
    fn install_owned(&mut self, frame: PhysAddr, mode: Mode) -> Result<(), FaultError> {
        let result = self.install(frame, mode, false);
        if result.is_err() {
            put_frame(self.env.frames(), frame);
        }
        result
    }

    /// Resolves a fault of `kind` at the cursor's page, which `varea`
    /// (starting at `start`) holds and allows the access to. Inlined, so
    /// that the cursor lives in registers.
    #[inline]
    fn resolve(&mut self, start: VirtAddr, varea: &Varea<'e, E>, kind: FaultKind) -> Result<(), FaultError> {
        let leaf = self.cursor.query();
        self.resolve_queried(start, varea, kind, leaf)
    }

    /// [`Self::resolve`] once the page's leaf (if any) was looked up.
    #[inline]
    fn resolve_queried(
        &mut self,
        start: VirtAddr,
        varea: &Varea<'e, E>,
        kind: FaultKind,
        leaf: Option<Leaf>,
    ) -> Result<(), FaultError> {
        match leaf {
            None => self.fault_missing(start, varea, kind),
            Some(leaf) => self.fault_present(start, varea, leaf, kind),
        }
    }

    /// Read fault-around: maps, read-only, the pages of `window` (but
    /// `done`, the faulting one) that have no entry and whose file page is
    /// cached already (nothing is read in), so that reading through a
    /// file mapping faults once per window rather than once per page (as
    /// Linux's `filemap_map_pages`). No TLB maintenance: entries only go
    /// from invalid to valid.
    pub(super) fn map_cached_around(
        &mut self,
        start: VirtAddr,
        varea: &Varea<'e, E>,
        window: VirtRange,
        done: VirtAddr,
    ) {
        let Backing::Object { object, first_page, .. } = &varea.backing else { return };
        let first = object_index(*first_page, start, window.start);
        let count = window.size() / PAGE_SIZE;
        let mut cached = [(0, PhysAddr::new(0)); READ_AROUND_PAGES as usize];
        let taken = object.take_cached(first..first + count, &mut cached);
        for &(index, frame) in &cached[..taken] {
            let va = window.start + (index - first) * PAGE_SIZE;
            if va == done || self.cursor.jump(va).is_err() || self.cursor.query().is_some() {
                put_frame(self.env.frames(), frame);
                continue;
            }
            // Out of table pages: the neighbour stays unmapped, its
            // reference given back (the fault itself succeeded).
            let _ = self.install_owned(frame, Mode::Read);
        }
    }

    /// A fault on a page with no entry: populate it from the backing.
    fn fault_missing(&mut self, start: VirtAddr, varea: &Varea<'e, E>, kind: FaultKind) -> Result<(), FaultError> {
        let page = self.cursor.va();
        match &varea.backing {
            Backing::Anon => {
                let frame = self.zeroed_frame()?;
                self.install_owned(frame, Mode::for_fault(varea, kind, true))
            }
            Backing::Device { pa } => {
                let mode = Mode::for_fault(varea, kind, true);
                self.install(*pa + (page - start), mode, true)
            }
            Backing::Object { object, first_page, shared } => {
                let index = object_index(*first_page, start, page);
                let cached = object.get_page(index).map_err(page_error)?;
                let file_page = FilePage::choose(self.env, varea, object.is_anonymous(), *shared, kind, cached)?;
                if file_page.writer {
                    object.start_writer(index);
                }
                let result = self.install_owned(file_page.frame, file_page.mode);
                if result.is_err() && file_page.writer {
                    object.end_writer(index);
                }
                result
            }
        }
    }

    /// A fault on a page whose entry does not allow the access (or a
    /// spurious one, which does).
    fn fault_present(
        &mut self,
        start: VirtAddr,
        varea: &Varea<'e, E>,
        leaf: Leaf,
        kind: FaultKind,
    ) -> Result<(), FaultError> {
        let current = Mode::of_desc(leaf.desc);
        if current.allows(kind) {
            return Ok(());
        }
        let device = matches!(varea.backing, Backing::Device { .. });
        let writable = Mode::writable_in(varea);
        match kind {
            FaultKind::Read => {
                let write_ok = leaf_write_ok(self.env, varea, leaf.pa(), current);
                self.set_mode(leaf, Mode::choose(varea.prot, write_ok, false, varea.wx_together), device);
                Ok(())
            }
            FaultKind::Exec => {
                let write_ok = current.is_writable() && leaf_write_ok(self.env, varea, leaf.pa(), current);
                let mode = Mode::for_fault(varea, kind, write_ok);
                if let Backing::Object { object, first_page, shared: true } = &varea.backing {
                    if current.is_writable() && !mode.is_writable() {
                        object.end_writer(object_index(*first_page, start, leaf.va));
                    }
                }
                self.set_mode(leaf, mode, device);
                Ok(())
            }
            FaultKind::Write => match &varea.backing {
                Backing::Anon | Backing::Object { shared: false, .. } => self.break_cow(leaf, writable),
                Backing::Object { object, first_page, shared: true } => {
                    object.start_writer(object_index(*first_page, start, leaf.va));
                    self.set_mode(leaf, writable, false);
                    Ok(())
                }
                Backing::Device { .. } => {
                    self.set_mode(leaf, writable, true);
                    Ok(())
                }
            },
        }
    }
}

impl<'e, E: MmEnv> AddressSpace<'e, E> {
    /// Resolves a fault of `kind` at `va` (the kernel calls this from its
    /// abort handler, for user accesses and for its own accesses to user
    /// memory, then retries the access). A fault on a page that already
    /// allows the access is spurious and returns `Ok`.
    pub fn handle_fault(&mut self, va: VirtAddr, kind: FaultKind) -> Result<(), FaultError> {
        self.env.stats().fault();
        self.fault_in(va, kind)
    }

    /// `handle_fault` without the counter (kernel accesses).
    pub(crate) fn fault_in(&mut self, va: VirtAddr, kind: FaultKind) -> Result<(), FaultError> {
        if va >= USER_END {
            return Err(FaultError::Segv);
        }
        let Some((start, varea)) = self.vareas.find_mut(va) else {
            return Err(FaultError::Segv);
        };
        if !prot_allows(varea.prot, kind) {
            return Err(FaultError::Segv);
        }
        let page = va.align_down(PAGE_SIZE);
        let around = write_around_window(page, start, varea, kind);
        let read_around = read_around_window(page, start, varea, kind);
        let (tlb, scope) = space_tlb(self.env, &self.asid);
        let range = around.or(read_around).unwrap_or(VirtRange::new(page, page + PAGE_SIZE));
        let cursor = self.table.cursor(&tlb, scope, range).map_err(fault_error)?;
        let mut faults = FaultCursor { env: self.env, cursor, installed: 0 };
        faults.cursor.jump(page).map_err(fault_error)?;
        let leaf = faults.cursor.query();
        // Counted before resolving: the flip past the bound already maps
        // the page writable and executable.
        if leaf.is_some_and(|l| Mode::of_desc(l.desc).flips_on(kind)) {
            self.wx_flips += 1;
            varea.count_wx_flip();
        }
        // A write to a present page that is the process's alone is a
        // permission upgrade: its neighbours get theirs now too. A first
        // touch maps one page, and a copy-on-write copy is not an upgrade
        // (its neighbours are most likely shared too), as before.
        let upgrade = around.filter(|_| leaf.is_some_and(|l| exclusive(self.env.frames(), l.pa())));
        let result = faults.resolve_queried(start, varea, kind, leaf);
        // A page read in from a file mapping: its cached neighbours too.
        if let (Ok(()), Some(window), None) = (&result, read_around, leaf) {
            faults.map_cached_around(start, varea, window, page);
        }
        *self.resident.get_mut() += faults.installed;
        if let (Ok(()), Some(window)) = (&result, upgrade) {
            write_around(&mut self.table, self.env.frames(), window, &tlb, scope, &mut EnvPause(self.env));
        }
        result
    }

    /// Faults in every page of the accessible vareas in `range`: writable
    /// private and shared anonymous pages writable (copy-on-write broken),
    /// the others readable (executable when the varea is). Pages past the
    /// end of a file, or whose pager fails, are skipped. Each varea is
    /// found once and its part of `range` walked with one cursor. Yields
    /// ([`MmEnv::should_yield`]) every [`POPULATE_SPACING`] pages, or after
    /// each run of private anonymous pages: a fault leaves nothing for the
    /// TLB to forget.
    pub(crate) fn populate(&mut self, range: VirtRange) -> Result<(), FaultError> {
        let (tlb, scope) = space_tlb(self.env, &self.asid);
        let mut pause = super::env::EnvPause(self.env);
        let mut since_pause = 0;
        for (start, varea) in self.vareas.overlapping(range) {
            if !varea.prot.is_accessible() || matches!(varea.backing, Backing::Device { .. }) {
                continue;
            }
            let sub = VirtRange::new(start.max(range.start), varea.end_exclusive.min(range.end_exclusive));
            let shared_file =
                matches!(&varea.backing, Backing::Object { object, shared: true, .. } if !object.is_anonymous());
            let write = varea.prot.contains(Prot::WRITE) && !shared_file;
            let kind = if write { FaultKind::Write } else { FaultKind::Read };
            // Private anonymous memory that is not executable takes runs of
            // zeroed frames; the rest page by page, as faults.
            let run_mode = Mode::for_fault(varea, kind, true);
            let runs = matches!(varea.backing, Backing::Anon) && write && !run_mode.is_executable();
            let cursor = self.table.cursor(&tlb, scope, sub).map_err(fault_error)?;
            let mut faults = FaultCursor { env: self.env, cursor, installed: 0 };
            let outcome = loop {
                let run = if runs { faults.map_zeroed_run(run_mode) } else { Ok(0) };
                let done = match run {
                    Ok(0) => faults.resolve(start, varea, kind).map(|()| 1),
                    run => run,
                };
                match done {
                    Ok(mapped) => since_pause += mapped,
                    Err(FaultError::Segv) => since_pause += 1,
                    // Past the end of the file (or a pager error): the rest
                    // of this mapping cannot be had either; stop here, as
                    // Linux does, instead of walking a huge mapping page by
                    // page.
                    Err(FaultError::Bus) => break Ok(()),
                    Err(FaultError::OutOfMemory) => break Err(FaultError::OutOfMemory),
                }
                if since_pause >= POPULATE_SPACING {
                    since_pause = 0;
                    if pause.due() {
                        pause.pause();
                    }
                }
                if !faults.cursor.next_page() {
                    break Ok(());
                }
            };
            *self.resident.get_mut() += faults.installed;
            outcome?;
        }
        Ok(())
    }
}
