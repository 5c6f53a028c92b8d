//! Anonymous memory: the peer tests' semantics (zero fill, copy-on-write
//! across fork and fork of fork, shared anonymous memory across fork),
//! mprotect splitting and merging, faults that must kill, MADV_DONTNEED,
//! W^X flips, fork's TLB maintenance and failure, kernel access to user
//! memory, and /proc/<pid>/maps.

use std::string::String;
use std::vec::Vec;

use super::{
    access, exec, faults_during, layout, map_anon, read, read_user, switch, va, with_env, with_env_bits, write,
    write_user, Space, PS,
};
use aspen_abi::uaccess::{CopyFault, UserMemory, UserSlice};

use crate::addr::PhysAddr;
use crate::asid::{AsidAllocator, AsidBits};
use crate::aspace::walk::for_each_leaf;
use crate::aspace::{AddressSpace, Env, FaultError, FaultKind, MmEnv, VareaKind, USER_END};
use crate::errno::Errno;
use crate::frame::FrameAllocator;
use crate::paging::VaHalf;
use crate::testbed::{Arena, RecordingTlb, TlbEvent};
use aspen_abi::mman::{Advice, MapFlags, MsyncFlags, Prot};

const RW: Prot = Prot::READ.union(Prot::WRITE);

#[test]
fn fresh_pages_read_zero_even_after_remapping_garbage() {
    with_env(128, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 16, RW, MapFlags::PRIVATE);
        for page in 0..16 {
            assert_eq!(read(&mut space, p + page * PS + 8), Ok(0));
            write(&mut space, p + page * PS + 8, 0xde).unwrap();
        }
        space.munmap(va(p), 16 * PS).unwrap();
        let q =
            space.mmap(va(p), 16 * PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED, None, 0).unwrap();
        assert_eq!(q, va(p));
        for page in 0..16 {
            assert_eq!(read(&mut space, p + page * PS + 8), Ok(0), "page {page} after munmap + mmap");
        }
        // Read first, then write one byte: no leak into other zero pages.
        let z = map_anon(&mut space, 2, RW, MapFlags::PRIVATE);
        assert_eq!(read(&mut space, z), Ok(0));
        assert_eq!(read(&mut space, z + PS), Ok(0));
        write(&mut space, z + 40, 7).unwrap();
        assert_eq!(read(&mut space, z + 40), Ok(7));
        let z2 = map_anon(&mut space, 1, Prot::READ, MapFlags::PRIVATE);
        let mut page = std::vec![0xffu8; PS as usize];
        read_user(&mut space, z2, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0));
        read_user(&mut space, z + PS, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0));
        let s = map_anon(&mut space, 4, RW, MapFlags::SHARED);
        for page in 0..4 {
            assert_eq!(read(&mut space, s + page * PS + 100), Ok(0));
        }
    });
}

#[test]
fn private_memory_is_copied_on_write_across_fork_and_fork_of_fork() {
    with_env(256, |env| {
        let mut parent = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut parent, 4, RW, MapFlags::PRIVATE);
        write(&mut parent, p, 0xa0).unwrap();
        write(&mut parent, p + PS, 0xa1).unwrap();
        assert_eq!(read(&mut parent, p + 2 * PS), Ok(0)); // only read
                                                          // page 3 never touched

        let mut child = parent.fork().unwrap();
        assert_eq!(read(&mut child, p), Ok(0xa0));
        assert_eq!(read(&mut child, p + PS), Ok(0xa1));
        assert_eq!(read(&mut child, p + 2 * PS), Ok(0));
        assert_eq!(read(&mut child, p + 3 * PS), Ok(0));
        write(&mut child, p, 0xc0).unwrap();
        write(&mut child, p + 2 * PS, 0xc2).unwrap();
        write(&mut child, p + 3 * PS, 0xc3).unwrap();
        assert_eq!(read(&mut child, p), Ok(0xc0));

        assert_eq!(read(&mut parent, p), Ok(0xa0), "child's write to a written page");
        assert_eq!(read(&mut parent, p + 2 * PS), Ok(0), "child's write to a read-only-touched page");
        assert_eq!(read(&mut parent, p + 3 * PS), Ok(0), "child's write to an untouched page");
        write(&mut parent, p + PS, 0xb1).unwrap();
        assert_eq!(read(&mut child, p + PS), Ok(0xa1), "parent's post-fork write");

        // Fork of the fork.
        let mut grandchild = child.fork().unwrap();
        assert_eq!(read(&mut grandchild, p), Ok(0xc0));
        write(&mut grandchild, p, 0xd0).unwrap();
        write(&mut grandchild, p + PS, 0xd1).unwrap();
        assert_eq!(read(&mut child, p), Ok(0xc0));
        assert_eq!(read(&mut child, p + PS), Ok(0xa1));
        assert_eq!(read(&mut parent, p), Ok(0xa0));
        write(&mut child, p + 3 * PS, 0xe3).unwrap();
        assert_eq!(read(&mut grandchild, p + 3 * PS), Ok(0xc3));
        drop(child);
        assert_eq!(read(&mut grandchild, p + 2 * PS), Ok(0xc2));
        drop(grandchild);
        assert_eq!(read(&mut parent, p + PS), Ok(0xb1));
        assert_eq!(read(&mut parent, p), Ok(0xa0), "parent page 0 after the children exited");
        // The children are gone: the parent's next write copies nothing
        // (its frame is its own; the write fault on page 1 already made it
        // writable, write fault-around).
        let copies = env.stats().cow_copies();
        write(&mut parent, p, 0xa2).unwrap();
        assert_eq!(env.stats().cow_copies(), copies);
        assert_eq!(read(&mut parent, p), Ok(0xa2));
    });
}

#[test]
fn shared_anonymous_memory_is_shared_both_ways_across_fork() {
    with_env(128, |env| {
        let mut parent = AddressSpace::new(env).unwrap();
        let sh = map_anon(&mut parent, 3, RW, MapFlags::SHARED);
        write(&mut parent, sh + PS, 0x11).unwrap();
        let mut child = parent.fork().unwrap();
        assert_eq!(read(&mut child, sh + PS), Ok(0x11));
        assert_eq!(read(&mut child, sh + 2 * PS), Ok(0));
        write(&mut child, sh + PS + 8, 0x22).unwrap();
        write(&mut child, sh + 2 * PS, 0x33).unwrap(); // first touched in the child
        assert_eq!(read(&mut parent, sh + PS + 8), Ok(0x22));
        assert_eq!(read(&mut parent, sh + 2 * PS), Ok(0x33));
        write(&mut parent, sh + PS + 16, 0x44).unwrap();
        write(&mut parent, sh + 2 * PS + 8, 0x55).unwrap();
        assert_eq!(read(&mut child, sh + PS + 16), Ok(0x44));
        assert_eq!(read(&mut child, sh + 2 * PS + 8), Ok(0x55));
        drop(child);
        assert_eq!(read(&mut parent, sh + PS), Ok(0x11));
        assert_eq!(read(&mut parent, sh + 2 * PS), Ok(0x33));
        assert_eq!(parent.msync(va(sh), 3 * PS, MsyncFlags::SYNC), Ok(()));
        assert_eq!(env.stats().page_cache_pages(), 2);
    });
}

#[test]
fn mprotect_splits_and_merges_vareas() {
    with_env(128, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 4, RW, MapFlags::PRIVATE);
        for page in 0..4 {
            write(&mut space, p + page * PS, page as u8 + 1).unwrap();
        }
        assert_eq!(space.varea_count(), 1);
        space.mprotect(va(p + PS), PS, Prot::READ).unwrap();
        assert_eq!(layout(&space), [(p, p + PS, 3), (p + PS, p + 2 * PS, 1), (p + 2 * PS, p + 4 * PS, 3)]);
        assert_eq!(write(&mut space, p + PS, 9), Err(FaultError::Segv));
        write(&mut space, p + 2 * PS, 9).unwrap();
        space.mprotect(va(p + 2 * PS), PS, Prot::NONE).unwrap();
        assert_eq!(space.varea_count(), 4);
        assert_eq!(read(&mut space, p + 2 * PS), Err(FaultError::Segv));
        space.mprotect(va(p), 4 * PS, RW).unwrap();
        assert_eq!(layout(&space), [(p, p + 4 * PS, 3)], "merged back");
        assert_eq!(read(&mut space, p + 2 * PS), Ok(9), "PROT_NONE kept the data");
        let faults = faults_during(env, || write(&mut space, p + 3 * PS, 5).unwrap());
        assert_eq!(faults, 0, "exclusive pages are writable again at once");
        // Over a hole: ENOMEM, and nothing changed (not even the part before the hole).
        space.munmap(va(p + 3 * PS), PS).unwrap();
        assert_eq!(space.mprotect(va(p), 4 * PS, Prot::READ), Err(Errno::ENOMEM));
        assert_eq!(layout(&space), [(p, p + 3 * PS, 3)]);
        write(&mut space, p, 1).unwrap();
        // Merging with neighbouring mappings made separately.
        let q = space
            .mmap(va(p + 3 * PS), PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED, None, 0)
            .unwrap();
        assert_eq!(q, va(p + 3 * PS));
        assert_eq!(space.varea_count(), 1);
    });
}

#[test]
fn mprotect_inside_one_varea_merges_each_way() {
    with_env(128, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 6, RW, MapFlags::PRIVATE);
        for page in 0..6 {
            write(&mut space, p + page * PS, page as u8 + 1).unwrap();
        }
        let (r, n) = (Prot::READ.bits(), 0);
        let protect = |space: &mut Space<'_, '_>, page: u64, pages: u64, prot: Prot| {
            space.mprotect(va(p + page * PS), pages * PS, prot).unwrap()
        };
        // Split at both ends; then whole vareas merged with the one below,
        // then with the one above.
        protect(&mut space, 2, 2, Prot::READ);
        protect(&mut space, 4, 2, Prot::READ);
        protect(&mut space, 0, 2, Prot::READ);
        // With both neighbours at once, after a change that changes
        // nothing (PROT_NONE again) left the pieces as they were.
        protect(&mut space, 1, 1, Prot::NONE);
        protect(&mut space, 1, 1, Prot::NONE);
        assert_eq!(layout(&space), [(p, p + PS, r), (p + PS, p + 2 * PS, n), (p + 2 * PS, p + 6 * PS, r)]);
        protect(&mut space, 1, 1, Prot::READ);
        assert_eq!(layout(&space), [(p, p + 6 * PS, r)]);
        // Split at one end, the other end the varea's own: pieces that the
        // change left continuing their varea are joined back.
        protect(&mut space, 3, 3, Prot::NONE);
        protect(&mut space, 3, 1, Prot::NONE);
        protect(&mut space, 4, 1, Prot::NONE);
        assert_eq!(layout(&space), [(p, p + 3 * PS, r), (p + 3 * PS, p + 6 * PS, n)]);
        // Split at the end, merged with the varea below at the start.
        protect(&mut space, 3, 1, Prot::READ);
        assert_eq!(layout(&space), [(p, p + 4 * PS, r), (p + 4 * PS, p + 6 * PS, n)]);
        // Split at the start, merged with the varea above at the end.
        protect(&mut space, 2, 2, Prot::NONE);
        assert_eq!(layout(&space), [(p, p + 2 * PS, r), (p + 2 * PS, p + 6 * PS, n)]);
        protect(&mut space, 0, 6, RW);
        assert_eq!(layout(&space), [(p, p + 6 * PS, RW.bits())]);
        for page in 0..6 {
            assert_eq!(read(&mut space, p + page * PS), Ok(page as u8 + 1));
        }
    });
}

#[test]
fn writes_after_write_comes_back_fault_once_per_group() {
    with_env(256, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        // Pages from an aligned group (512 pages, one last-level table) on.
        let p = map_anon(&mut space, 512 + 64, RW, MapFlags::PRIVATE).next_multiple_of(512 * PS);
        for page in 0..64 {
            write(&mut space, p + page * PS, 1).unwrap();
        }
        space.mprotect(va(p), 64 * PS, Prot::READ).unwrap();
        // Read-only translations in the TLB, which the upgrades around the
        // fault must invalidate.
        for page in 0..64 {
            assert_eq!(read(&mut space, p + page * PS), Ok(1));
        }
        space.mprotect(va(p), 64 * PS, RW).unwrap();
        let faults = faults_during(env, || {
            for page in (0..64).rev() {
                write(&mut space, p + page * PS, page as u8 + 2).unwrap();
            }
        });
        assert_eq!(faults, 1, "one fault for the group");
        for page in 0..64 {
            assert_eq!(read(&mut space, p + page * PS), Ok(page as u8 + 2));
        }
        // Pages shared copy-on-write with a child are not made writable
        // around a fault: each write copies its own page.
        let mut child = space.fork().unwrap();
        let faults = faults_during(env, || {
            for page in 0..16 {
                write(&mut space, p + page * PS, 0x70).unwrap();
            }
        });
        assert_eq!(faults, 16);
        for page in 0..16 {
            assert_eq!(read(&mut child, p + page * PS), Ok(page as u8 + 2), "the child's copy of page {page}");
        }
        // Once the child is gone the pages are the parent's alone again.
        drop(child);
        let faults = faults_during(env, || {
            for page in 16..32 {
                write(&mut space, p + page * PS, 0x71).unwrap();
            }
        });
        assert_eq!(faults, 1);
        // A few pages (up to the batch's limit): mprotect gives write back
        // at once, invalidating the read-only translations one by one, so
        // the writes do not fault at all.
        space.mprotect(va(p + 8 * PS), 4 * PS, Prot::READ).unwrap();
        for page in 8..12 {
            assert_eq!(read(&mut space, p + page * PS), Ok(0x70));
        }
        space.mprotect(va(p + 8 * PS), 4 * PS, RW).unwrap();
        let faults = faults_during(env, || {
            for page in 8..12 {
                write(&mut space, p + page * PS, 0x72).unwrap();
            }
        });
        assert_eq!(faults, 0);
        // A page read-only by its varea's protection stays so: the group
        // ends at the varea.
        space.mprotect(va(p + 40 * PS), PS, Prot::READ).unwrap();
        space.mprotect(va(p + 32 * PS), 8 * PS, Prot::READ).unwrap();
        space.mprotect(va(p + 32 * PS), 8 * PS, RW).unwrap();
        write(&mut space, p + 32 * PS, 3).unwrap();
        assert_eq!(write(&mut space, p + 40 * PS, 3), Err(FaultError::Segv));
    });
}

#[test]
fn mprotect_keeps_copy_on_write_pages_read_only() {
    with_env(128, |env| {
        let mut parent = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut parent, 2, RW, MapFlags::PRIVATE);
        write(&mut parent, p, 1).unwrap();
        write(&mut parent, p + PS, 2).unwrap();
        let mut child = parent.fork().unwrap();
        parent.mprotect(va(p), 2 * PS, Prot::READ).unwrap();
        parent.mprotect(va(p), 2 * PS, RW).unwrap();
        child.mprotect(va(p), 2 * PS, RW | Prot::EXEC).unwrap();
        write(&mut parent, p, 3).unwrap();
        write(&mut child, p + PS, 4).unwrap();
        assert_eq!(read(&mut child, p), Ok(1));
        assert_eq!(read(&mut parent, p + PS), Ok(2));
        assert_eq!(env.stats().cow_copies(), 2);
    });
}

#[test]
fn bad_accesses_are_segv() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let ro = map_anon(&mut space, 1, Prot::READ, MapFlags::PRIVATE);
        let none = map_anon(&mut space, 1, Prot::NONE, MapFlags::PRIVATE);
        let rw = map_anon(&mut space, 1, RW, MapFlags::PRIVATE);
        assert_eq!(read(&mut space, 0x10), Err(FaultError::Segv), "null page");
        assert_eq!(read(&mut space, 0x7777_0000), Err(FaultError::Segv), "unmapped");
        assert_eq!(write(&mut space, ro, 1), Err(FaultError::Segv), "write to read-only");
        assert_eq!(read(&mut space, none), Err(FaultError::Segv), "read of PROT_NONE");
        assert_eq!(exec(&mut space, rw), Err(FaultError::Segv), "exec of non-exec");
        assert_eq!(space.handle_fault(USER_END, FaultKind::Read), Err(FaultError::Segv));
        assert_eq!(read(&mut space, ro), Ok(0));
    });
}

#[test]
fn dontneed_drops_private_pages_and_keeps_shared_contents() {
    with_env(128, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 2, RW, MapFlags::PRIVATE);
        let s = map_anon(&mut space, 2, RW, MapFlags::SHARED);
        write(&mut space, p, 1).unwrap();
        write(&mut space, p + PS, 2).unwrap();
        write(&mut space, s, 3).unwrap();
        let mut child = space.fork().unwrap();
        assert_eq!(space.madvise(va(p), 2 * PS, Advice::DontNeed), Ok(()));
        assert_eq!(space.madvise(va(s), 2 * PS, Advice::DontNeed), Ok(()));
        assert_eq!(space.resident_pages(), 0);
        assert_eq!(read(&mut space, p), Ok(0));
        assert_eq!(read(&mut space, s), Ok(3));
        assert_eq!(read(&mut child, p + PS), Ok(2), "the child keeps its copy");
        write(&mut child, s, 4).unwrap();
        assert_eq!(read(&mut space, s), Ok(4));
    });
}

#[test]
fn write_and_exec_flip_under_w_xor_x() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 1, RW | Prot::EXEC, MapFlags::PRIVATE);
        write(&mut space, p, 0xaa).unwrap();
        let entry = |s: &Space<'_, '_>| s.table.query(va(p)).unwrap().attrs.access();
        assert!(!entry(&space).contains(crate::paging::Access::EXECUTE));
        exec(&mut space, p).unwrap();
        assert!(!entry(&space).contains(crate::paging::Access::WRITE));
        assert_eq!(read(&mut space, p), Ok(0xaa));
        write(&mut space, p + 1, 0xbb).unwrap();
        assert!(!entry(&space).contains(crate::paging::Access::EXECUTE));
        assert_eq!(read(&mut space, p + 1), Ok(0xbb));
        // mprotect to R+X keeps the data and makes it executable.
        space.mprotect(va(p), PS, Prot::READ | Prot::EXEC).unwrap();
        exec(&mut space, p).unwrap();
        assert_eq!(write(&mut space, p, 1), Err(FaultError::Segv));
    });
}

#[test]
fn fork_invalidates_the_parent_once_for_the_whole_asid() {
    let arena = Arena::new(PhysAddr::new(0x4000_0000), 128 * PS);
    let frames = crate::frame::BuddyAllocator::new_owned(&[arena.range()]).unwrap();
    let tlb = RecordingTlb::new();
    let asids = AsidAllocator::new(AsidBits::Sixteen);
    let env = Env::new(&arena, &frames, &tlb, &asids);
    let baseline = frames.free_frame_count();
    {
        let mut parent = AddressSpace::new(&env).unwrap();
        let p = parent.mmap(va(0), 40 * PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).unwrap();
        let s = parent.mmap(va(0), PS, RW, MapFlags::SHARED | MapFlags::ANONYMOUS, None, 0).unwrap();
        for page in 0..3 {
            write_user(&mut parent, (p + page * PS).as_u64(), &[1]).unwrap();
        }
        write_user(&mut parent, s.as_u64(), &[1]).unwrap();
        let (_, asid) = parent.activate(0);
        tlb.take();
        let child = parent.fork().unwrap();
        assert_eq!(tlb.take(), [TlbEvent::Begin, TlbEvent::Asid(asid), TlbEvent::Sync]);
        assert_eq!(child.resident_pages(), 4);
        // Fork of a space that never ran issues no TLB maintenance at all.
        let mut child = child;
        let grandchild = child.fork().unwrap();
        assert!(tlb.take().is_empty());
        drop(grandchild);
        drop(child);
    }
    assert_eq!(frames.free_frame_count(), baseline);
}

#[test]
fn failed_fork_leaves_the_parent_intact_and_frees_everything() {
    with_env(64, |env| {
        let mut parent = AddressSpace::new(env).unwrap();
        // Two regions far apart: the child needs several table pages.
        let fixed = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
        parent.mmap(va(0x40_0000), 4 * PS, RW, fixed, None, 0).unwrap();
        parent.mmap(va(0x80_0000_0000), 4 * PS, RW, fixed, None, 0).unwrap();
        for page in 0..4 {
            write(&mut parent, 0x40_0000 + page * PS, 10 + page as u8).unwrap();
            write(&mut parent, 0x80_0000_0000 + page * PS, 20 + page as u8).unwrap();
        }
        let frames = env.frames();
        for budget in 0..8 {
            let mut hog = Vec::new();
            while frames.free_frame_count() > budget {
                hog.push(frames.alloc_frame().unwrap());
            }
            let before = frames.free_frame_count();
            let result = parent.fork();
            // Root, and L1, L2 and L3 tables for each region.
            assert_eq!(result.is_ok(), budget >= 7, "budget {budget}");
            match result {
                Err(e) => {
                    assert_eq!(e, Errno::ENOMEM);
                    assert_eq!(frames.free_frame_count(), before, "budget {budget}: child's frames freed");
                    let mut refs = Vec::new();
                    for_each_leaf(env.mem(), parent.root(), VaHalf::Lower.range(), &mut |leaf| {
                        refs.push(frames.refcount(leaf.pa).unwrap());
                    });
                    assert_eq!(refs, [1; 8], "budget {budget}: references dropped");
                    let faults = faults_during(env, || write(&mut parent, 0x40_0000, 10).unwrap());
                    assert_eq!(faults, 0, "budget {budget}: parent still writable");
                }
                Ok(child) => drop(child),
            }
            for frame in hog {
                frames.free_frame(frame);
            }
        }
        for page in 0..4 {
            assert_eq!(read(&mut parent, 0x80_0000_0000 + page * PS), Ok(20 + page as u8));
        }
    });
}

#[test]
fn kernel_access_to_user_memory() {
    with_env(128, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 2, RW, MapFlags::PRIVATE);
        let ro = map_anon(&mut space, 1, Prot::READ, MapFlags::PRIVATE);
        write_user(&mut space, p + PS - 3, b"hello\0world").unwrap();
        let mut buf = [0u8; 11];
        read_user(&mut space, p + PS - 3, &mut buf).unwrap();
        assert_eq!(&buf, b"hello\0world");
        assert_eq!(space.read_cstr(p + PS - 3, 64), Ok(b"hello".to_vec()));
        assert_eq!(space.read_cstr(p + PS - 3, 5), Ok(b"hello".to_vec()));
        assert_eq!(space.read_cstr(p + PS - 3, 4), Err(Errno::ENAMETOOLONG));
        assert_eq!(write_user(&mut space, ro, b"x"), Err(Errno::EFAULT));
        assert_eq!(read_user(&mut space, p + 2 * PS - 1, &mut [0; 2]), Err(Errno::EFAULT));
        assert_eq!(read_user(&mut space, u64::MAX, &mut [0; 2]), Err(Errno::EFAULT));
        // A string running off the end of the mapping.
        write_user(&mut space, p + 2 * PS - 2, b"ab").unwrap();
        assert_eq!(space.read_cstr(p + 2 * PS - 2, 64), Err(Errno::EFAULT));
        // A write breaks copy-on-write: the child keeps its view.
        let mut child = space.fork().unwrap();
        write_user(&mut space, p, b"parent").unwrap();
        let mut got = [0u8; 6];
        read_user(&mut child, p, &mut got).unwrap();
        assert_eq!(got, [0; 6]);
        assert_eq!(read(&mut space, p), Ok(b'p'));
        assert_eq!(access(&mut child, p, FaultKind::Read, 0), Ok(0));
    });
}

#[test]
fn user_copies_stop_at_the_first_page_they_cannot_reach() {
    with_env(128, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        // Two writable pages, the second made read-only.
        let p = map_anon(&mut space, 2, RW, MapFlags::PRIVATE);
        space.mprotect(va(p + PS), PS, Prot::READ).unwrap();
        let across = UserSlice::new(p + PS - 5, 10).unwrap();
        let fault = CopyFault { copied: 5, errno: Errno::EFAULT };
        assert_eq!(space.write_partial(across, b"0123456789"), Err(fault));
        let mut buf = [0u8; 10];
        assert_eq!(space.read_partial(across, &mut buf), Ok(()));
        assert_eq!(&buf, b"01234\0\0\0\0\0");
        // Reading off the end of the mapping stops where it ends.
        let off_the_end = UserSlice::new(p + 2 * PS - 3, 10).unwrap();
        assert_eq!(space.read_partial(off_the_end, &mut buf), Err(CopyFault { copied: 3, errno: Errno::EFAULT }));
        // A slice shorter than the buffer: its bytes, then EFAULT.
        let short = UserSlice::new(p, 4).unwrap();
        assert_eq!(space.read_partial(short, &mut buf), Err(CopyFault { copied: 4, errno: Errno::EFAULT }));
        assert_eq!(
            space.write_partial(UserSlice::new(p + PS, 1).unwrap(), b"x"),
            Err(CopyFault::at_start(Errno::EFAULT))
        );
    });
}

#[test]
fn maps_lists_vareas_like_linux() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let fixed = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
        space.mmap(va(0x40_0000), PS, Prot::READ | Prot::EXEC, fixed, None, 0).unwrap();
        space.set_brk_base(va(0x40_1800));
        space.brk(va(0x40_4000));
        space
            .mmap(va(0xffff_f000_0000), 2 * PS, RW, MapFlags::SHARED | MapFlags::ANONYMOUS | MapFlags::FIXED, None, 0)
            .unwrap();
        space.mmap(va(0xffff_fffd_e000), 0x21000, RW, fixed, None, 0).unwrap();
        space.set_stack_start(va(0xffff_ffff_e7a0));
        let mut out = String::new();
        space.write_maps(&mut out).unwrap();
        // Linux pads the header to 72 columns, then a space, then the name.
        let named = |header: &str, name: &str| std::format!("{header:<72} {name}");
        let expected = [
            String::from("00400000-00401000 r-xp 00000000 00:00 0 "),
            named("00402000-00404000 rw-p 00000000 00:00 0 ", "[heap]"),
            named("fffff0000000-fffff0002000 rw-s 00000000 00:01 0 ", "/dev/zero (deleted)"),
            named("fffffffde000-fffffffff000 rw-p 00000000 00:00 0 ", "[stack]"),
        ];
        assert_eq!(out.lines().collect::<Vec<_>>(), expected);
        let kinds: Vec<_> = space.vareas().map(|v| v.kind).collect();
        assert_eq!(kinds[0], VareaKind::Anonymous);
        assert_eq!(kinds[2], VareaKind::SharedAnonymous);
        assert_eq!(space.table_pages(), 1);
        assert_eq!(space.resident_pages(), 0);
        write(&mut space, 0x40_2000, 1).unwrap();
        assert_eq!(space.table_pages(), 4);
        assert_eq!(space.resident_pages(), 1);
    });
}

#[test]
fn spaces_keep_their_translations_across_asid_rollovers() {
    with_env_bits(256, AsidBits::Eight, |env| {
        let mut a = AddressSpace::new(env).unwrap();
        let pa = map_anon(&mut a, 1, RW, MapFlags::PRIVATE);
        write(&mut a, pa, 0xaa).unwrap();
        let mut b = a.fork().unwrap();
        write(&mut b, pa, 0xbb).unwrap();
        for round in 0..600u64 {
            let mut c = AddressSpace::new(env).unwrap();
            let pc = c
                .mmap(va(pa), PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED, None, 0)
                .unwrap()
                .as_u64();
            write(&mut c, pc, round as u8).unwrap();
            assert_eq!(read(&mut c, pc), Ok(round as u8));
            if round % 7 == 0 {
                // Change a long-lived space while it is not current.
                switch(&c);
                a.munmap(va(pa), PS).unwrap();
                a.mmap(va(pa), PS, RW, MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED, None, 0).unwrap();
                write(&mut a, pa, 0xaa).unwrap();
            }
            drop(c);
            assert_eq!(read(&mut a, pa), Ok(0xaa));
            assert_eq!(read(&mut b, pa), Ok(0xbb));
        }
        assert!(env.asids().rollovers() >= 2);
    });
}

#[test]
fn a_space_that_never_ran_needs_no_tlb_maintenance() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 3, RW, MapFlags::PRIVATE);
        write_user(&mut space, p, &[1, 2, 3]).unwrap();
        space.mprotect(va(p), PS, Prot::READ).unwrap();
        space.munmap(va(p), 3 * PS).unwrap();
        assert_eq!(env.tlb().cached_leaves(), 0);
    });
}

#[test]
fn unmapped_area_is_where_mmap_would_map() {
    with_env(256, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let base = crate::aspace::DEFAULT_MMAP_BASE.as_u64();
        assert_eq!(space.unmapped_area(0), None);
        assert_eq!(space.unmapped_area(u64::MAX), None);
        assert_eq!(space.unmapped_area(1), Some(va(base - PS)), "rounded up to a page");
        let found = space.unmapped_area(0x42000).unwrap();
        assert_eq!(found, va(base - 0x42000));
        // Asking changes nothing; an mmap of that size then lands there.
        assert_eq!(space.varea_count(), 0);
        let mapped = space.mmap(va(0), 0x42000, Prot::NONE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0).unwrap();
        assert_eq!(mapped, found);
        assert_eq!(space.unmapped_area(PS), Some(va(base - 0x42000 - PS)));
    });
}
