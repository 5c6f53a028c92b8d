//! fork: the child gets the parent's vareas and, leaf by leaf, its pages:
//! private pages shared read-only (copy-on-write) with their reference
//! counts raised, shared pages as they are, device pages as they are. The
//! parent's writable private pages then become read-only, and its TLB
//! forgets the old permissions with one whole-ASID invalidation.
//!
//! The walk follows the parent's table pages, so its cost grows with what
//! is mapped, never with the size of sparse vareas; nothing is allocated
//! per page but the child's table pages (and copies of locked pages).

use super::env::SpaceTlb;
use super::fault::Mode;
use super::varea::{Backing, Prot};
use super::{log_edit, walk, AddressSpace, MmEnv};
use crate::addr::{VirtRange, PAGE_SIZE};
use crate::errno::Errno;
use crate::frame::FrameAllocator;
use crate::object::put_frame;
use crate::paging::{copy_frame, Mapping};
use crate::tlb::{TlbOps, TlbScope};

impl<'e, E: MmEnv> AddressSpace<'e, E> {
    /// fork(2) for memory: a new address space (with a fresh ASID context)
    /// that sees what this one sees now, copy-on-write.
    ///
    /// Locked (mlock) writable private pages are copied into the child at
    /// once, so the parent's locked pages stay writable and never fault;
    /// the child inherits no locks. On ENOMEM everything allocated for the
    /// child is freed and the parent is untouched.
    pub fn fork(&mut self) -> Result<Self, Errno> {
        let mut child = Self::new(self.env)?;
        child.vareas = self.vareas.clone_for_fork();
        child.mmap_base = self.mmap_base;
        child.brk = self.brk;
        child.stack_start = self.stack_start;
        if let Err(e) = self.copy_leaves_into(&mut child) {
            child.discard();
            return Err(e);
        }
        self.write_protect_private();
        Ok(child)
    }

    /// Maps every leaf of the parent into `child` (whose vareas are the
    /// parent's), taking references; stops at the first failure.
    fn copy_leaves_into(&self, child: &mut Self) -> Result<(), Errno> {
        let env = self.env;
        let frames = env.frames();
        let root = self.table.root();
        let mut result = Ok(());
        for (start, varea) in self.vareas.iter() {
            let range = VirtRange::new(start, varea.end_exclusive);
            let device = matches!(varea.backing, Backing::Device { .. });
            let copy_locked = varea.locked && !varea.is_shared();
            walk::for_each_leaf(env.mem(), root, range, &mut |leaf: Mapping| {
                if result.is_err() {
                    return;
                }
                let current = Mode::of(leaf.attrs);
                let page = VirtRange::new(leaf.va, leaf.va + PAGE_SIZE);
                if device {
                    result = child.table.map(page, leaf.pa, leaf.attrs).map_err(|_| Errno::ENOMEM);
                    return;
                }
                let (frame, mode) = if copy_locked && current == Mode::ReadWrite {
                    match frames.alloc_frame() {
                        Ok(copy) => {
                            // SAFETY: `copy` is a fresh frame, ours alone;
                            // the parent's frame is a distinct pool frame
                            // that no one writes during the fork (the
                            // space is locked).
                            unsafe { copy_frame(env.mem(), copy, leaf.pa) };
                            (copy, current)
                        }
                        Err(_) => {
                            result = Err(Errno::ENOMEM);
                            return;
                        }
                    }
                } else {
                    if frames.inc_ref(leaf.pa).is_err() {
                        result = Err(Errno::ENOMEM);
                        return;
                    }
                    (leaf.pa, Self::child_mode(&varea.backing, current))
                };
                if child.table.map(page, frame, mode.attrs(false)).is_err() {
                    put_frame(frames, frame);
                    result = Err(Errno::ENOMEM);
                }
            });
            result?;
        }
        Ok(())
    }

    /// The child's mode for a leaf of the parent in `current` mode that
    /// both share: private pages lose write (copy-on-write), shared file
    /// pages too (the child's first write marks them dirty), shared
    /// anonymous pages keep it. Write-protected pages are mapped read-only
    /// even in W+X vareas; an execute fault flips them.
    fn child_mode(backing: &Backing<'e, E>, current: Mode) -> Mode {
        let keeps_write = matches!(backing, Backing::Object { object, shared: true, .. } if object.is_anonymous());
        if current == Mode::ReadWrite && !keeps_write {
            Mode::Read
        } else {
            current
        }
    }

    /// Makes the parent's writable private pages read-only (outside locked
    /// vareas, whose pages the child got copies of), then invalidates the
    /// parent's whole ASID once.
    fn write_protect_private(&mut self) {
        let env = self.env;
        let root = self.table.root();
        let vareas = &self.vareas;
        let mut changed = false;
        {
            // Entries change in place; the one invalidation below covers them.
            let skip = SpaceTlb::<E::Tlb>::Skip;
            let mut editor = self.table.edit(&skip, TlbScope::AllAsids, |l| log::error!("mm: fork released {l:?}"));
            for (start, varea) in vareas.iter() {
                if varea.is_shared() || varea.locked || !varea.prot.contains(Prot::WRITE) {
                    continue;
                }
                walk::for_each_leaf(env.mem(), root, VirtRange::new(start, varea.end_exclusive), &mut |leaf: Mapping| {
                    if Mode::of(leaf.attrs) == Mode::ReadWrite {
                        let attrs = Mode::Read.attrs(false);
                        log_edit("fork write-protect", editor.set(Mapping { attrs, ..leaf }).map(drop));
                        changed = true;
                    }
                });
            }
        }
        if let (true, Some(asid)) = (changed, self.asid.asid()) {
            let tlb = env.tlb();
            tlb.begin();
            tlb.invalidate_asid(asid);
            tlb.sync();
        }
    }

    /// Throws away a space that never ran (a failed fork's child): unmaps
    /// and releases everything without writing anything back.
    fn discard(mut self) {
        self.zap(crate::paging::VaHalf::Lower.range());
        drop(self.vareas.clear());
        drop(self);
    }
}
