//! Tests of the kernel's access to user memory with real page tables: a
//! TTBR0 address space is activated and reached through the fallible copy
//! routines, which must give a fault (-EFAULT) rather than a crash.

use aspen_abi::mman::{MapFlags, Prot};
use aspen_mm::aspace::{AddressSpace, FaultKind};
use aspen_mm::VirtAddr;

use crate::arch::cpu;
use crate::arch::mmu;
use crate::arch::uaccess::{self, Access};
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
        mm.write_user(VirtAddr::new(none), b"secret").map_err(|e| alloc::format!("{e}"))?;
        mm.mprotect(VirtAddr::new(none), 4096, Prot::NONE).map_err(|e| alloc::format!("{e}"))?;

        let (root, asid) = mm.activate(cpu::cpu_id());
        mmu::set_user_table(root, asid.0);
        let result = (|| -> crate::ktest::TestResult {
            let mut resolve = |addr: u64, access: Access| {
                let kind = if access == Access::Write { FaultKind::Write } else { FaultKind::Read };
                mm.handle_fault(VirtAddr::new(addr), kind).is_ok()
            };
            // Demand paging through the resolver, then read back.
            uaccess::copy_to_user(rw + 100, b"hello, user", &mut resolve).map_err(|f| alloc::format!("{f:?}"))?;
            let mut back = [0u8; 11];
            uaccess::copy_from_user(&mut back, rw + 100, &mut resolve).map_err(|f| alloc::format!("{f:?}"))?;
            check_eq!(&back, b"hello, user");
            // A string read stops at its NUL; an unterminated one is reported.
            uaccess::copy_to_user(rw, b"path\0", &mut resolve).map_err(|f| alloc::format!("{f:?}"))?;
            check_eq!(
                uaccess::read_cstr(rw, 64, &mut resolve).map_err(|f| alloc::format!("{f:?}"))?,
                Some(b"path".to_vec())
            );
            check_eq!(uaccess::read_cstr(rw + 100, 5, &mut resolve).map_err(|f| alloc::format!("{f:?}"))?, None);
            // Faults: read-only, PROT_NONE (mapped for EL1, not for EL0),
            // unmapped, kernel addresses, wrapping ranges, a copy running off
            // the end of the mapping.
            check!(uaccess::copy_to_user(ro, b"x", &mut resolve).is_err(), "wrote a read-only page");
            check!(uaccess::copy_from_user(&mut back, ro, &mut resolve).is_ok(), "could not read a read-only page");
            check!(uaccess::copy_from_user(&mut back, none, &mut resolve).is_err(), "read a PROT_NONE page");
            check!(uaccess::copy_from_user(&mut back, 0x10, &mut resolve).is_err(), "read address 0x10");
            check!(
                uaccess::copy_from_user(&mut back, 0xffff_0000_4000_0000, &mut resolve).is_err(),
                "read kernel memory"
            );
            check!(uaccess::copy_to_user(u64::MAX - 4, b"wrap!", &mut resolve).is_err(), "a wrapping range");
            let mut big = alloc::vec![0u8; 8192];
            check!(uaccess::copy_from_user(&mut big, edge, &mut resolve).is_err(), "read past the mapping into a hole");
            Ok(())
        })();
        mmu::set_empty_user_table();
        drop(mm);
        result?;
        check_eq!(pool.free_frame_count(), baseline);
        Ok(())
    }
);
