//! Tests of the kernel's memory set-up: its own tables (high half, W^X
//! checked entry by entry, blocks for the linear map), and the frame pool's
//! accounting.

use aspen_mm::frame::FrameAllocator;
use aspen_mm::paging::{Access, DescFlags, MemoryType, PageAttrs, PageSize};
use aspen_mm::{PhysAddr, PAGE_SIZE};

use crate::arch::exception::FaultStatus;
use crate::arch::probe::probe;
use crate::board::BOARD;
use crate::memory::kernel_map::query;
use crate::memory::{frames, KernelImage};
use crate::{check, check_eq, kernel_test};

kernel_test!(
    fn kernel_sections_are_mapped_w_xor_x() -> TestResult {
        let image = KernelImage::get();
        let text = query(image.text.start).ok_or("kernel text is not mapped")?;
        check_eq!(text.attrs, PageAttrs::KERNEL_RX);
        let rodata = query(image.rodata.start).ok_or("rodata is not mapped")?;
        check_eq!(rodata.attrs, PageAttrs::KERNEL_RO);
        let data = query(image.data.start).ok_or("data is not mapped")?;
        check_eq!(data.attrs, PageAttrs::KERNEL_RW);
        for m in [text, rodata, data] {
            check!(!m.attrs.access().contains(Access::WRITE | Access::EXECUTE), "{m:?} is writable and executable");
            check!(m.attrs.is_global());
        }
        Ok(())
    }
);

kernel_test!(
    fn no_kernel_table_entry_is_writable_and_executable() -> TestResult {
        // SCTLR_EL1.WXN is off (user pages may be RWX), so the kernel's W^X
        // is its table's: no leaf may be writable and executable at any
        // level, by EL1 (PXN clear) or by EL0 (UXN clear).
        let (mut leaves, mut offenders) = (0usize, alloc::vec::Vec::new());
        crate::memory::kernel_map::for_each_leaf(|leaf| {
            leaves += 1;
            let bits = DescFlags::from_bits_retain(leaf.desc.bits());
            let writable = !bits.contains(DescFlags::AP_RO);
            let executable = !bits.contains(DescFlags::PXN) || !bits.contains(DescFlags::UXN);
            if writable && executable {
                offenders.push(leaf);
            }
        });
        check!(leaves > 0, "the walk found no leaf");
        check!(offenders.is_empty(), "writable and executable kernel entries: {offenders:?}");
        Ok(())
    }
);

kernel_test!(
    fn linear_map_uses_blocks_and_device_memory() -> TestResult {
        let pool = frames::pool();
        // The pool's zones are plain RAM: mapped RW, never executable.
        for zone in pool.zones() {
            let m = query(zone.start).ok_or(alloc::format!("RAM at {:?} is not mapped", zone.start))?;
            check_eq!(m.attrs, PageAttrs::KERNEL_RW);
        }
        // A 2 MiB-aligned stretch inside the largest zone is one block.
        const BLOCK: u64 = 2 << 20;
        let largest = pool.zones().max_by_key(|z| z.size()).ok_or("the pool has no zones")?;
        let aligned = largest.start.align_up(BLOCK);
        check!(aligned + BLOCK <= largest.end_exclusive, "zone {largest:?} holds no whole 2 MiB block");
        let m = query(aligned).ok_or("RAM block not mapped")?;
        check!(m.size != PageSize::Size4K, "{aligned:?} is mapped with 4 KiB pages: {m:?}");
        let uart = query(BOARD.uart_base).ok_or("the console UART is not mapped")?;
        check_eq!(uart.attrs.memory_type(), MemoryType::Device);
        check!(!uart.attrs.access().contains(Access::EXECUTE));
        Ok(())
    }
);

kernel_test!(
    fn the_user_half_is_empty_while_no_task_runs() -> TestResult {
        // TTBR0 holds the empty table: even a low address that is RAM faults.
        let low = BOARD.kernel_load.as_u64() as *const u64;
        // SAFETY: the read faults; the probe turns the fault into a value.
        match probe(|| unsafe { low.read_volatile() }) {
            Ok(_) => Err(alloc::format!("a TTBR0 address ({low:p}) is still mapped")),
            Err(fault) => {
                check!(matches!(fault.syndrome.fault_status(), FaultStatus::Translation { .. }), "{:?}", fault);
                Ok(())
            }
        }
    }
);

kernel_test!(
    fn writing_kernel_text_faults_with_a_decoded_report() -> TestResult {
        let target = kernel_text_probe as *const () as *mut u32;
        // SAFETY: the write faults (text is read-only); the probe turns the
        // fault into a value, so the text is never changed.
        let fault = match probe(|| unsafe { target.write_volatile(0xd503_201f) }) {
            Ok(()) => return Err("a write to kernel text succeeded".into()),
            Err(fault) => fault,
        };
        let report = alloc::format!("{}", fault.syndrome);
        crate::println!("expected exception (write to kernel text):\n{report}");
        check_eq!(fault.syndrome.far, target as u64);
        check!(fault.syndrome.is_write());
        check!(matches!(fault.syndrome.fault_status(), FaultStatus::Permission { .. }), "{report}");
        check!(report.contains("write: permission fault"), "{report}");
        Ok(())
    }
);

/// A function whose text the W^X test tries to write.
#[inline(never)]
fn kernel_text_probe() -> u32 {
    7
}

kernel_test!(
    fn executing_kernel_data_faults_with_a_decoded_report() -> TestResult {
        // `ret` in a writable static: data is never executable.
        static mut CODE: [u32; 1] = [0xd65f_03c0];
        let entry = core::ptr::addr_of_mut!(CODE) as usize;
        // SAFETY: the branch faults on the instruction fetch; the probe turns the
        // fault into a value. Were data executable, the code is a plain `ret`.
        let fault = match probe(|| unsafe {
            let f: extern "C" fn() = core::mem::transmute(entry);
            f()
        }) {
            Ok(()) => return Err("kernel data was executable".into()),
            Err(fault) => fault,
        };
        let report = alloc::format!("{}", fault.syndrome);
        crate::println!("expected exception (execute kernel data):\n{report}");
        check_eq!(fault.syndrome.exception_class(), 0x21);
        check_eq!(fault.elr, entry as u64);
        check!(matches!(fault.syndrome.fault_status(), FaultStatus::Permission { .. }), "{report}");
        check!(report.contains("instruction fetch: permission fault"), "{report}");
        Ok(())
    }
);

kernel_test!(
    fn frame_pool_accounting_returns_to_baseline() -> TestResult {
        let pool = frames::pool();
        let baseline = pool.free_frame_count();
        let per_order = pool.free_blocks_per_order();
        let mut runs = alloc::vec::Vec::new();
        for order in [0u32, 0, 1, 3, 9, 0, 4] {
            let run = pool.alloc_frames(order).map_err(|e| alloc::format!("order {order}: {e:?}"))?;
            check!(run.is_aligned(PAGE_SIZE << order), "{run:?} is not aligned for order {order}");
            check_eq!(pool.refcount(run).map_err(|e| alloc::format!("{e:?}"))?, 1);
            runs.push((run, order));
        }
        let taken: usize = runs.iter().map(|(_, o)| 1usize << o).sum();
        check_eq!(pool.free_frame_count(), baseline - taken);
        // The runs are RAM the kernel can write through its linear map.
        for (run, order) in &runs {
            let va = crate::memory::phys_to_virt(*run).as_u64() as *mut u8;
            // SAFETY: the run is ours, mapped read-write, PAGE_SIZE << order long.
            unsafe { core::ptr::write_bytes(va, 0xa5, (PAGE_SIZE << order) as usize) };
        }
        for (run, order) in runs {
            pool.free_frames(run, order);
        }
        check_eq!(pool.free_frame_count(), baseline);
        check_eq!(pool.free_blocks_per_order(), per_order);
        Ok(())
    }
);

kernel_test!(
    fn frame_pool_never_hands_out_the_kernel_or_the_dtb() -> TestResult {
        let image = KernelImage::get().whole();
        let pool = frames::pool();
        for zone in pool.zones() {
            check!(!zone.overlaps(&image), "zone {zone:?} overlaps the kernel {image:?}");
            if let Some(dtb) = crate::boot_info().dtb {
                check!(!zone.overlaps(&dtb), "zone {zone:?} overlaps the DTB {dtb:?}");
            }
        }
        check!(pool.meta(PhysAddr::new(image.start.as_u64())).is_none(), "the kernel's first frame has pool metadata");
        Ok(())
    }
);

kernel_test!(
    fn asid_width_follows_the_cpu() -> TestResult {
        use aspen_mm::aspace::MmEnv;
        let bits = crate::arch::mmu::asid_bits();
        check!(bits == 8 || bits == 16, "ASID width {bits}");
        // TCR_EL1.AS selects 16-bit ASIDs exactly when every CPU has them
        // and `aspen.asid_bits=8` did not narrow the allocator's width.
        let allocator_16 = crate::memory::user_env::get().asids().bits() == aspen_mm::asid::AsidBits::Sixteen;
        check!(!allocator_16 || bits == 16, "16-bit ASIDs allocated on a CPU with {bits}");
        check_eq!(crate::arch::mmu::asid16_enabled(), allocator_16);
        Ok(())
    }
);

kernel_test!(
    fn strict_wx_from_the_command_line_refuses_write_with_execute() -> TestResult {
        use aspen_abi::mman::{MapFlags, Prot};
        use aspen_mm::asid::{AsidAllocator, AsidBits};
        use aspen_mm::aspace::{AddressSpace, Env};
        use aspen_mm::errno::Errno;
        use aspen_mm::VirtAddr;

        // The kernel's own backends with the policy `aspen.wx=strict` gives
        // (the booted kernel runs the default, which the user tests cover).
        let policy = crate::cmdline::CommandLine::parse("aspen.wx=strict").wx_policy;
        let (phys, tlb, asids) =
            (crate::memory::user_env::KernelPhys, crate::arch::tlb::HardwareTlb, AsidAllocator::new(AsidBits::Eight));
        let env = Env::new(&phys, frames::pool(), &tlb, &asids).with_wx_policy(policy);
        let mut mm = AddressSpace::new(&env).map_err(|e| alloc::format!("{e}"))?;
        let (anon, rw) = (MapFlags::PRIVATE | MapFlags::ANONYMOUS, Prot::READ | Prot::WRITE);
        let at = VirtAddr::new(0);
        check_eq!(mm.mmap(at, PAGE_SIZE, rw | Prot::EXEC, anon, None, 0), Err(Errno::EACCES));
        check_eq!(mm.varea_count(), 0);
        let page = mm.mmap(at, PAGE_SIZE, rw, anon, None, 0).map_err(|e| alloc::format!("{e}"))?;
        check_eq!(mm.mprotect(page, PAGE_SIZE, rw | Prot::EXEC), Err(Errno::EACCES));
        check_eq!(mm.mprotect(page, PAGE_SIZE, Prot::READ | Prot::EXEC), Ok(()));
        check_eq!(mm.varea_count(), 1);
        Ok(())
    }
);

kernel_test!(
    fn memcpy_memmove_and_memset_move_exactly_their_bytes() -> TestResult {
        // Every length through the 64-, 8- and 1-byte steps, every source
        // and destination alignment, overlapping both ways, against a
        // byte-by-byte reference (volatile, so it stays a byte loop).
        let pattern: alloc::vec::Vec<u8> = (0..512u32).map(|i| (i * 13 + 7) as u8).collect();
        let mut buf = [0u8; 512];
        let mut want = [0u8; 512];
        for len in (0..=160).chain([255, 256, 300]) {
            for src in 0..9 {
                for dst in [0, 1, 3, 8, 9, 70, 140] {
                    buf.copy_from_slice(&pattern);
                    want.copy_from_slice(&pattern);
                    // A move inside one buffer, overlapping when close.
                    buf.copy_within(src..src + len, dst);
                    let copy: alloc::vec::Vec<u8> = (src..src + len).map(|i| pattern[i]).collect();
                    for (i, &b) in copy.iter().enumerate() {
                        // SAFETY: `dst + i < 512`, inside `want`.
                        unsafe { core::ptr::write_volatile(&mut want[dst + i], b) };
                    }
                    check!(buf == want, "memmove of {len} bytes from {src} to {dst}");
                    // A copy between two buffers.
                    let mut out = [0xa5u8; 512];
                    out[dst..dst + len].copy_from_slice(&pattern[src..src + len]);
                    check!(out[dst..dst + len] == pattern[src..src + len], "memcpy of {len} bytes");
                    check!(out[..dst].iter().chain(&out[dst + len..]).all(|&b| b == 0xa5), "memcpy past its bytes");
                    // A fill.
                    out.fill(0x5a);
                    out[dst..dst + len].fill(src as u8);
                    check!(out[dst..dst + len].iter().all(|&b| b == src as u8), "memset of {len} bytes");
                    check!(out[..dst].iter().chain(&out[dst + len..]).all(|&b| b == 0x5a), "memset past its bytes");
                }
            }
        }
        Ok(())
    }
);

kernel_test!(
    fn page_zero_and_copy_write_exactly_one_page() -> TestResult {
        // Three pages of a heap buffer, page aligned: the middle one is
        // zeroed, then the first is copied over it; the neighbours keep
        // their bytes, and the copy has every byte of its source.
        const P: usize = PAGE_SIZE as usize;
        let mut buf = alloc::vec![0u8; 4 * P];
        let offset = buf.as_ptr().align_offset(P);
        let pages = &mut buf[offset..offset + 3 * P];
        for (i, b) in pages.iter_mut().enumerate() {
            *b = (i * 7 + i / 4096 + 1) as u8 | 1;
        }
        let before = pages.to_vec();
        // SAFETY: the middle page is page aligned, ours, and mapped
        // read-write as Normal memory (the kernel heap).
        unsafe { crate::arch::page::zero(pages[P..].as_mut_ptr()) };
        check!(pages[P..2 * P].iter().all(|&b| b == 0), "zeroing left a byte");
        check!(pages[..P] == before[..P], "zeroing wrote below its page");
        check!(pages[2 * P..] == before[2 * P..], "zeroing wrote above its page");
        let (low, high) = pages.split_at_mut(P);
        // SAFETY: two distinct page-aligned pages of the buffer.
        unsafe { crate::arch::page::copy(high.as_mut_ptr(), low.as_ptr()) };
        check!(pages[P..2 * P] == before[..P], "the copy differs from its source");
        check!(pages[..P] == before[..P], "the copy changed its source");
        check!(pages[2 * P..] == before[2 * P..], "the copy wrote past its page");
        Ok(())
    }
);
