//! Write-xor-execute: flips counted per varea, the switch to writable and
//! executable pages past the bound (so that code storing into its own page
//! makes progress), mprotect ending it, splits and merges, fork; and the
//! strict policy refusing `Prot::WRITE|Prot::EXEC` with nothing changed.

use super::{
    assert_tlb_forgot_free_frames, exec, faults_during, layout, map_anon, read, va, with_env, with_env_policy, write,
    Space, PS,
};
use crate::asid::AsidBits;
use crate::aspace::{AddressSpace, FaultError, MmEnv, WxPolicy, WX_FLIP_BOUND};
use crate::errno::Errno;
use crate::paging::{Access, PageAttrs};
use aspen_abi::mman::{MapFlags, Prot};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const RWX: Prot = RW.union(Prot::EXEC);

/// The attributes of the leaf mapping `at`.
fn attrs(space: &Space<'_, '_>, at: u64) -> PageAttrs {
    space.table.query(va(at)).expect("page mapped").attrs
}

/// One run of a routine at `at` that stores into its own page: fetch, then
/// store to the data word 64 bytes on.
fn run_self_modifying(space: &mut Space<'_, '_>, at: u64, value: u8) {
    exec(space, at).unwrap();
    write(space, at + 64, value).unwrap();
}

#[test]
fn pages_flip_under_w_xor_x_up_to_the_bound() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 1, RWX, MapFlags::PRIVATE);
        write(&mut space, p, 1).unwrap();
        assert_eq!(space.wx_flips(), 0, "the first write fills the page: no flip");
        for flip in 1..=u64::from(WX_FLIP_BOUND) {
            if flip % 2 == 1 {
                exec(&mut space, p).unwrap();
                assert_eq!(attrs(&space, p), PageAttrs::USER_RX);
            } else {
                write(&mut space, p, flip as u8).unwrap();
                assert_eq!(attrs(&space, p), PageAttrs::USER_RW);
            }
            assert_eq!(space.wx_flips(), flip);
            assert_eq!(space.wx_vareas(), 0, "still W^X after {flip} flips");
        }
        // Reads never flip.
        assert_eq!(read(&mut space, p), Ok(WX_FLIP_BOUND as u8));
        assert_eq!(space.wx_flips(), u64::from(WX_FLIP_BOUND));
    });
}

#[test]
fn a_page_storing_into_itself_becomes_writable_and_executable_past_the_bound() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 2, RWX, MapFlags::PRIVATE);
        write(&mut space, p, 0xc0).unwrap();
        // Each run flips twice until the bound is passed ...
        let mut runs = 0;
        while space.wx_vareas() == 0 {
            run_self_modifying(&mut space, p, runs);
            runs += 1;
            assert!(runs <= WX_FLIP_BOUND as u8, "no switch after {runs} runs");
        }
        assert_eq!(space.wx_flips(), u64::from(WX_FLIP_BOUND) + 1);
        // ... then the page is mapped writable and executable: no more faults.
        assert_eq!(attrs(&space, p), PageAttrs::USER_RWX);
        let faults = faults_during(env, || {
            for i in 0..100 {
                run_self_modifying(&mut space, p, i);
            }
        });
        assert_eq!(faults, 0);
        assert_eq!(read(&mut space, p + 64), Ok(99));
        assert_eq!(read(&mut space, p), Ok(0xc0));
        // The other page of the varea is mapped both ways at its first write.
        write(&mut space, p + PS, 7).unwrap();
        assert_eq!(attrs(&space, p + PS), PageAttrs::USER_RWX);
        assert_eq!(space.wx_vareas(), 1);
        assert_eq!(space.wx_flips(), u64::from(WX_FLIP_BOUND) + 1);
    });
}

/// Makes the varea at `p` flip past the bound.
fn flip_past_bound(space: &mut Space<'_, '_>, p: u64) {
    let before = space.wx_vareas();
    for i in 0..=WX_FLIP_BOUND as u8 {
        run_self_modifying(space, p, i);
    }
    assert_eq!(space.wx_vareas(), before + 1);
}

#[test]
fn mprotect_taking_write_or_exec_away_ends_write_and_execute() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 1, RWX, MapFlags::PRIVATE);
        flip_past_bound(&mut space, p);
        // Keeping both keeps the state.
        space.mprotect(va(p), PS, RWX).unwrap();
        assert_eq!((space.wx_vareas(), attrs(&space, p)), (1, PageAttrs::USER_RWX));

        space.mprotect(va(p), PS, Prot::READ | Prot::EXEC).unwrap();
        assert_eq!(space.wx_vareas(), 0);
        assert_eq!(attrs(&space, p), PageAttrs::USER_RX);
        assert_eq!(write(&mut space, p, 1), Err(FaultError::Segv));
        exec(&mut space, p).unwrap();

        // Back to RWX: W^X again, counting from zero.
        space.mprotect(va(p), PS, RWX).unwrap();
        let flips = space.wx_flips();
        write(&mut space, p, 2).unwrap();
        assert_eq!(attrs(&space, p), PageAttrs::USER_RW);
        assert_eq!(space.wx_flips(), flips + 1);
        flip_past_bound(&mut space, p);

        // Taking execute away: read-write, never executable.
        space.mprotect(va(p), PS, RW).unwrap();
        assert_eq!(space.wx_vareas(), 0);
        assert_eq!(attrs(&space, p), PageAttrs::USER_RW);
        assert_eq!(exec(&mut space, p), Err(FaultError::Segv));
        assert_eq!(read(&mut space, p + 64), Ok(WX_FLIP_BOUND as u8));
        assert_tlb_forgot_free_frames(env, 64);
    });
}

#[test]
fn splits_keep_the_state_and_merges_need_it_equal() {
    with_env(64, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 3, RWX, MapFlags::PRIVATE);
        flip_past_bound(&mut space, p);
        // A hole splits the varea; both parts stay writable and executable.
        space.munmap(va(p + PS), PS).unwrap();
        assert_eq!(space.wx_vareas(), 2);
        write(&mut space, p + 2 * PS, 1).unwrap();
        assert_eq!(attrs(&space, p + 2 * PS), PageAttrs::USER_RWX);
        // A fresh RWX mapping in the hole is W^X: it does not merge.
        let fixed = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED;
        space.mmap(va(p + PS), PS, RWX, fixed, None, 0).unwrap();
        assert_eq!(space.varea_count(), 3);
        write(&mut space, p + PS, 1).unwrap();
        assert_eq!(attrs(&space, p + PS), PageAttrs::USER_RW);
        // Taking execute from the upper part ends its state: given back,
        // it is W^X like the middle one, and the two merge.
        space.mprotect(va(p + 2 * PS), PS, RW).unwrap();
        assert_eq!(space.wx_vareas(), 1);
        space.mprotect(va(p + 2 * PS), PS, RWX).unwrap();
        assert_eq!((space.varea_count(), space.wx_vareas()), (2, 1));

        // A split that only mlock makes, undone, gives the state back.
        let q = map_anon(&mut space, 3, RWX, MapFlags::PRIVATE);
        flip_past_bound(&mut space, q);
        let count = space.varea_count();
        space.mlock(va(q + PS), PS, None).unwrap();
        assert_eq!((space.varea_count(), space.wx_vareas()), (count + 2, 4));
        space.munlock(va(q + PS), PS).unwrap();
        assert_eq!((space.varea_count(), space.wx_vareas()), (count, 2));
        let (_, varea) = space.vareas.find(va(q)).unwrap();
        assert_eq!(varea.wx_flips, WX_FLIP_BOUND + 1, "split copies the count, merge takes the larger");
    });
}

#[test]
fn fork_copies_writable_and_executable_pages_on_write() {
    with_env(128, |env| {
        let mut parent = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut parent, 1, RWX, MapFlags::PRIVATE);
        flip_past_bound(&mut parent, p);
        let mut child = parent.fork().unwrap();
        assert_eq!((child.wx_vareas(), child.wx_flips()), (1, 0));
        // Both sides read-execute until written; the write copies and maps
        // the copy writable and executable.
        exec(&mut child, p).unwrap();
        write(&mut child, p + 64, 0xcc).unwrap();
        assert_eq!(attrs(&child, p), PageAttrs::USER_RWX);
        exec(&mut parent, p).unwrap();
        write(&mut parent, p + 64, 0xaa).unwrap();
        assert_eq!(attrs(&parent, p), PageAttrs::USER_RWX);
        assert_eq!(read(&mut child, p + 64), Ok(0xcc));
        assert_eq!(read(&mut parent, p + 64), Ok(0xaa));
        assert_eq!(env.stats().cow_copies(), 1);
        drop(child);
        assert_tlb_forgot_free_frames(env, 128);
    });
}

#[test]
fn fork_copies_locked_writable_and_executable_pages_at_once() {
    with_env(128, |env| {
        let mut parent = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut parent, 1, RWX, MapFlags::PRIVATE);
        flip_past_bound(&mut parent, p);
        parent.mlock(va(p), PS, None).unwrap();
        let mut child = parent.fork().unwrap();
        assert_eq!(attrs(&child, p), PageAttrs::USER_RWX);
        assert_eq!(faults_during(env, || run_self_modifying(&mut child, p, 0x99)), 0);
        assert_eq!(faults_during(env, || run_self_modifying(&mut parent, p, 0x55)), 0);
        assert_eq!(read(&mut child, p + 64), Ok(0x99));
        assert_eq!(read(&mut parent, p + 64), Ok(0x55));
    });
}

#[test]
fn strict_policy_refuses_write_with_execute_and_changes_nothing() {
    with_env_policy(64, AsidBits::Sixteen, WxPolicy::Strict, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let anon = MapFlags::PRIVATE | MapFlags::ANONYMOUS;
        assert_eq!(space.mmap(va(0), PS, RWX, anon, None, 0), Err(Errno::EACCES));
        assert_eq!(
            space.mmap(va(0), PS, Prot::WRITE | Prot::EXEC, MapFlags::SHARED | MapFlags::ANONYMOUS, None, 0),
            Err(Errno::EACCES)
        );
        assert_eq!(space.varea_count(), 0);

        let p = map_anon(&mut space, 2, RW, MapFlags::PRIVATE);
        write(&mut space, p, 0x11).unwrap();
        let before = layout(&space);
        // MapFlags::FIXED over live memory: refused before anything is unmapped.
        assert_eq!(space.mmap(va(p), PS, RWX, anon | MapFlags::FIXED, None, 0), Err(Errno::EACCES));
        assert_eq!(space.mprotect(va(p), PS, RWX), Err(Errno::EACCES));
        assert_eq!(space.mprotect(va(p), 2 * PS, Prot::WRITE | Prot::EXEC), Err(Errno::EACCES));
        assert_eq!(layout(&space), before);
        assert_eq!(attrs(&space, p), PageAttrs::USER_RW);
        assert_eq!(read(&mut space, p), Ok(0x11));
        assert_eq!(exec(&mut space, p), Err(FaultError::Segv));

        // Write, then execute: the W^X way, through mprotect.
        space.mprotect(va(p), 2 * PS, Prot::READ | Prot::EXEC).unwrap();
        exec(&mut space, p).unwrap();
        assert!(!attrs(&space, p).access().contains(Access::WRITE));
        assert_eq!(space.wx_flips(), 0);
        assert_eq!(space.wx_vareas(), 0);
    });
}

#[test]
fn flip_policy_accepts_write_with_execute() {
    with_env_policy(64, AsidBits::Eight, WxPolicy::Flip, |env| {
        let mut space = AddressSpace::new(env).unwrap();
        let p = map_anon(&mut space, 1, RWX, MapFlags::PRIVATE);
        let q = map_anon(&mut space, 1, RW, MapFlags::PRIVATE);
        assert_eq!(space.mprotect(va(q), PS, RWX), Ok(()));
        write(&mut space, p, 1).unwrap();
        exec(&mut space, p).unwrap();
        assert_eq!(space.wx_flips(), 1);
    });
}
