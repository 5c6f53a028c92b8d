//! Tests of the kernel's access to user memory with real page tables: a
//! TTBR0 address space is activated and reached through the fallible copy
//! routines, which must give a fault (-EFAULT) rather than a crash.

use aspen_abi::mman::{MapFlags, Prot};
use aspen_abi::uaccess::{UserMemory, UserSlice};
use aspen_abi::Errno;
use aspen_mm::aspace::{AddressSpace, FaultKind};
use aspen_mm::VirtAddr;

use crate::arch::cpu;
use crate::arch::mmu;
use crate::arch::uaccess::{Access, ActiveSpace};
use crate::memory::{frames, user_env};
use crate::{check, check_eq, kernel_test};

kernel_test!(
    fn user_copies_fault_instead_of_crashing() -> TestResult {
        let pool = frames::pool();
        let baseline = pool.free_frame_count();
        let mut mm = AddressSpace::new(user_env::get()).map_err(|e| alloc::format!("{e}"))?;
        let map = |mm: &mut AddressSpace<'static, _>, prot| {
            mm.mmap(VirtAddr::new(0), 4096, prot, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0)
                .map(|va| va.as_u64())
        };
        let rw = map(&mut mm, Prot::READ | Prot::WRITE).map_err(|e| alloc::format!("{e}"))?;
        let ro = map(&mut mm, Prot::READ).map_err(|e| alloc::format!("{e}"))?;
        let none = map(&mut mm, Prot::NONE).map_err(|e| alloc::format!("{e}"))?;
        // Two pages, the second unmapped again: a hole right after the first.
        let edge = mm
            .mmap(VirtAddr::new(0), 8192, Prot::READ | Prot::WRITE, MapFlags::PRIVATE | MapFlags::ANONYMOUS, None, 0)
            .map_err(|e| alloc::format!("{e}"))?
            .as_u64();
        mm.munmap(VirtAddr::new(edge + 4096), 4096).map_err(|e| alloc::format!("{e}"))?;
        // Give the PROT_NONE page data first, so it is mapped (EL1-only).
        mm.mprotect(VirtAddr::new(none), 4096, Prot::READ | Prot::WRITE).map_err(|e| alloc::format!("{e}"))?;
        let secret = UserSlice::new(none, 6).map_err(|e| alloc::format!("{e}"))?;
        mm.write(secret, b"secret").map_err(|e| alloc::format!("{e}"))?;
        mm.mprotect(VirtAddr::new(none), 4096, Prot::NONE).map_err(|e| alloc::format!("{e}"))?;

        let (root, asid) = mm.activate(cpu::cpu_id());
        mmu::set_user_table(root, asid.0);
        let result = (|| -> crate::ktest::TestResult {
            let mut user = ActiveSpace::new(|addr: u64, access: Access| {
                let kind = if access == Access::Write { FaultKind::Write } else { FaultKind::Read };
                mm.handle_fault(VirtAddr::new(addr), kind).is_ok()
            });
            let slice = |addr: u64, len: usize| UserSlice::new(addr, len as u64).map_err(|e| alloc::format!("{e}"));
            // Demand paging through the resolver, then read back.
            user.write(slice(rw + 100, 11)?, b"hello, user").map_err(|e| alloc::format!("{e}"))?;
            let mut back = [0u8; 11];
            user.read(slice(rw + 100, 11)?, &mut back).map_err(|e| alloc::format!("{e}"))?;
            check_eq!(&back, b"hello, user");
            // A string read stops at its NUL; an unterminated one is reported.
            user.write(slice(rw, 5)?, b"path\0").map_err(|e| alloc::format!("{e}"))?;
            check_eq!(user.read_cstr(rw, 64), Ok(b"path".to_vec()));
            check_eq!(user.read_cstr(rw + 100, 5), Err(Errno::ENAMETOOLONG));
            // Faults: read-only, PROT_NONE (mapped for EL1, not for EL0),
            // unmapped, a copy running off the end of the mapping; kernel
            // addresses and wrapping ranges are no user slices at all.
            check!(user.write(slice(ro, 1)?, b"x").is_err(), "wrote a read-only page");
            check!(user.read(slice(ro, 11)?, &mut back).is_ok(), "could not read a read-only page");
            check!(user.read(slice(none, 11)?, &mut back).is_err(), "read a PROT_NONE page");
            check!(user.read(slice(0x10, 11)?, &mut back).is_err(), "read address 0x10");
            check!(UserSlice::new(0xffff_0000_4000_0000, 11).is_err(), "a user slice of kernel memory");
            check!(UserSlice::new(u64::MAX - 4, 5).is_err(), "a wrapping user slice");
            let mut big = alloc::vec![0u8; 8192];
            check!(user.read(slice(edge, 8192)?, &mut big).is_err(), "read past the mapping into a hole");
            // A copy that runs into the hole reports the bytes before it.
            let fault = user.read_partial(slice(edge + 4096 - 100, 300)?, &mut big[..300]).err();
            check_eq!(fault.map(|f| f.copied), Some(100));
            let fault = user.write_partial(slice(edge + 4096 - 72, 200)?, &big[..200]).err();
            check_eq!(fault.map(|f| f.copied), Some(72));
            // Every length and alignment through the copy loops' steps (64,
            // 8 and 1 bytes): the bytes land where they should, no others.
            let pattern: alloc::vec::Vec<u8> = (0..256u32).map(|i| (i * 7 + 3) as u8).collect();
            let zeros = [0u8; 256];
            let window = |offset: u64| rw + 1024 + offset;
            for offset in 0..17u64 {
                for len in 0..=200usize {
                    user.write(slice(window(0) - 8, 240)?, &zeros[..240]).map_err(|e| alloc::format!("{e}"))?;
                    user.write(slice(window(offset), len)?, &pattern[..len]).map_err(|e| alloc::format!("{e}"))?;
                    let mut back = [0xffu8; 240];
                    user.read(slice(window(0) - 8, 240)?, &mut back).map_err(|e| alloc::format!("{e}"))?;
                    let at = 8 + offset as usize;
                    let right = back[..at].iter().all(|&b| b == 0)
                        && back[at..at + len] == pattern[..len]
                        && back[at + len..].iter().all(|&b| b == 0);
                    check!(right, "a copy of {len} bytes at offset {offset} came back as {:?}", &back[..]);
                }
            }
            Ok(())
        })();
        mmu::set_empty_user_table();
        drop(mm);
        result?;
        check_eq!(pool.free_frame_count(), baseline);
        Ok(())
    }
);
