//! fork: the child gets the parent's vareas and, leaf by leaf, its pages:
//! private pages shared read-only (copy-on-write) with their reference
//! counts raised, shared pages as they are, device pages as they are. The
//! parent's writable private pages then become read-only, and its TLB
//! forgets the old permissions with one whole-ASID invalidation.
//!
//! The walk follows the parent's table pages, so its cost grows with what
//! is mapped, never with the size of sparse vareas; nothing is allocated
//! per page but the child's table pages (and copies of locked pages).

use super::env::{EnvPause, SpaceTlb};
use super::fault::{exclusive, Mode};
use super::varea::{Backing, Prot, Varea};
use super::{log_edit, AddressSpace, MmEnv};
use crate::addr::VirtRange;
use crate::errno::Errno;
use crate::frame::{FrameAllocator, RefCursor};
use crate::paging::{copy_frame, Descriptor, Leaf, Pause};
use crate::tlb::{TlbOps, TlbScope};

/// What fork does with the leaves of one varea.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Share {
    /// Device frames: the same entry, no reference count.
    Device,
    /// Shared memory: one more reference; the child's entry loses write
    /// unless `keeps_write` (shared anonymous memory; a shared file page's
    /// first write in the child marks it dirty).
    Shared { keeps_write: bool },
    /// Private memory: one more reference, and writable pages become
    /// read-only in both (copy-on-write); in a locked varea the child gets
    /// copies of the writable pages instead, and the parent keeps them.
    Private { locked: bool },
}

impl Share {
    fn of<E: MmEnv>(varea: &Varea<'_, E>) -> Self {
        match &varea.backing {
            Backing::Device { .. } => Self::Device,
            Backing::Object { object, shared: true, .. } => Self::Shared { keeps_write: object.is_anonymous() },
            Backing::Anon | Backing::Object { shared: false, .. } => Self::Private { locked: varea.locked },
        }
    }
}

/// fork's pause points: before another task runs, the parent's TLB forgets
/// the write permission the copy took away so far (a thread of the parent
/// may run at EL0 meanwhile and must fault on those pages, then wait for
/// the space's lock).
struct ForkPause<'p, E: MmEnv> {
    env: &'p E,
    asid: &'p crate::asid::AsidContext,
}

impl<E: MmEnv> Pause for ForkPause<'_, E> {
    #[inline]
    fn due(&mut self) -> bool {
        self.env.should_yield()
    }

    fn pause(&mut self) {
        if let Some(asid) = self.asid.asid() {
            let tlb = self.env.tlb();
            tlb.begin();
            tlb.invalidate_asid(asid);
            tlb.sync();
        }
        EnvPause(self.env).pause();
    }
}

/// The child's copy of a locked writable private page: a new frame with
/// the same contents, mapped as the parent's.
#[inline(never)]
fn copy_page<E: MmEnv>(env: &E, leaf: Leaf) -> Option<Descriptor> {
    let copy = env.frames().alloc_frame().ok()?;
    // SAFETY: `copy` is a fresh frame, ours alone; the parent's frame is a
    // distinct pool frame that no one writes during the fork (the space is
    // locked).
    unsafe { copy_frame(env.mem(), copy, leaf.pa()) };
    let attrs = leaf.mapping().attrs;
    // A writable and executable page: the copy was written through the
    // data side, and the child may run it at once.
    if Mode::of(attrs).is_executable() {
        env.sync_icache(copy);
    }
    Some(Descriptor::leaf(copy, leaf.size(), attrs))
}

impl<'e, E: MmEnv> AddressSpace<'e, E> {
    /// fork(2) for memory: a new address space (with a fresh ASID context)
    /// that sees what this one sees now, copy-on-write.
    ///
    /// Locked (mlock) writable private pages are copied into the child at
    /// once, so the parent's locked pages stay writable and never fault;
    /// the child inherits no locks. On ENOMEM everything allocated for the
    /// child is freed and the parent's pages are writable again.
    pub fn fork(&mut self) -> Result<Self, Errno> {
        let mut child = Self::new(self.env)?;
        child.vareas = self.vareas.clone_for_fork();
        child.mmap_base = self.mmap_base;
        child.brk = self.brk;
        child.stack_start = self.stack_start;
        let mut protected = false;
        let result = self.copy_leaves_into(&mut child, &mut protected);
        let child = match result {
            Ok(()) => {
                // Every leaf is copied: the child has as many pages, and
                // that is its peak so far.
                let resident = *self.resident.get_mut();
                *child.resident.get_mut() = resident;
                child.peak_resident = resident;
                Ok(child)
            }
            Err(e) => {
                child.discard();
                Err(e)
            }
        };
        if child.is_err() && protected {
            self.restore_write();
        }
        if let (true, Some(asid)) = (protected, self.asid.asid()) {
            // One invalidation for every entry made read-only (or back).
            let tlb = self.env.tlb();
            tlb.begin();
            tlb.invalidate_asid(asid);
            tlb.sync();
        }
        child
    }

    /// Gives `child` (whose vareas are the parent's) every leaf, taking
    /// references, in one pass over the parent's tables per varea that
    /// also write-protects the parent's private pages (`protected` tells
    /// whether any was). Stops at the first failure. May yield
    /// ([`MmEnv::should_yield`]): the parent's ASID is invalidated first.
    fn copy_leaves_into(&mut self, child: &mut Self, protected: &mut bool) -> Result<(), Errno> {
        let env = self.env;
        let mut refs = RefCursor::new(env.frames());
        let mut pause = ForkPause { env, asid: &self.asid };
        for (start, varea) in self.vareas.iter() {
            let (mine, theirs) = (&mut *self.table, &mut *child.table);
            let range = VirtRange::new(start, varea.end_exclusive);
            let pause = &mut pause;
            // One small closure per kind of varea, so that each pass inlines
            // its per-page work. The parent's mapping holds a reference to
            // every frame already: `dup_ref`.
            let result = match Share::of(varea) {
                Share::Device => mine.copy_into(theirs, range, false, pause, |leaf: Leaf| Some(leaf.desc)),
                Share::Shared { keeps_write } => mine.copy_into(theirs, range, false, pause, |leaf: Leaf| {
                    refs.dup_ref(leaf.pa()).ok()?;
                    Some(if keeps_write { leaf.desc } else { leaf.desc.write_protected() })
                }),
                Share::Private { locked: false } => mine.copy_into(theirs, range, true, pause, |leaf: Leaf| {
                    refs.dup_ref(leaf.pa()).ok()?;
                    Some(leaf.desc.write_protected())
                }),
                Share::Private { locked: true } => mine.copy_into(theirs, range, false, pause, |leaf: Leaf| {
                    // Mode::ReadWrite: every writable leaf is a user one.
                    if leaf.desc.is_writable() {
                        return copy_page(env, leaf);
                    }
                    refs.dup_ref(leaf.pa()).ok()?;
                    Some(leaf.desc)
                }),
            };
            *protected |= result.map_err(|_| Errno::ENOMEM)?;
        }
        Ok(())
    }

    /// After a failed fork (the child gone): makes writable again the
    /// read-only pages of private writable vareas that this space holds
    /// alone, which is what fork took away (a write fault would reuse
    /// them as they are). The caller invalidates the whole ASID.
    fn restore_write(&mut self) {
        let env = self.env;
        let skip = SpaceTlb::<E::Tlb>::Skip;
        let mut editor = self.table.edit(&skip, TlbScope::AllAsids, |l| log::error!("mm: fork undo released {l:?}"));
        for (start, varea) in self.vareas.iter() {
            if varea.is_shared() || varea.locked || !varea.prot.contains(Prot::WRITE) {
                continue;
            }
            let range = VirtRange::new(start, varea.end_exclusive);
            let result = editor.update(range, |leaf| {
                if Mode::of_desc(leaf.desc) == Mode::Read && exclusive(env.frames(), leaf.pa()) {
                    leaf.desc.with_permissions(Mode::ReadWrite.attrs(false))
                } else {
                    leaf.desc
                }
            });
            log_edit("fork undo", result);
        }
    }

    /// Throws away a space that never ran (a failed fork's child): unmaps
    /// and releases everything without writing anything back.
    fn discard(mut self) {
        // The copy stopped part way and counted nothing: what the unmap
        // takes off is what it holds.
        *self.resident.get_mut() = self.rss().total();
        self.zap(crate::paging::VaHalf::Lower.range());
        drop(self.vareas.clear());
        drop(self);
    }
}
