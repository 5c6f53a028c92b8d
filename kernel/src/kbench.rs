//! In-kernel benchmarks (`aspen.kbench` on the command line): measurements
//! that need the kernel's own instructions, printed as `kbench ...` lines.
//!
//! `tlb_crossover`: the choice between invalidating an unmap page by page
//! (`TLBI VALE1IS` each) and dropping the whole ASID (`TLBI ASIDE1IS`,
//! after which the address space's working set must be refilled by table
//! walks). For N unmapped pages and a working set of W live pages it times
//! both, including the refill of the working set, so the crossover N for a
//! given W can be read off. Run it on the hardware whose crossover you want:
//! under QEMU, TLB maintenance and refills cost what QEMU's software TLB
//! costs, not what a Cortex-A72's does.

use aspen_abi::mman::{MapFlags, Prot};
use aspen_mm::aspace::AddressSpace;
use aspen_mm::tlb::{Asid, TlbOps};
use aspen_mm::VirtAddr;

use crate::arch::tlb::HardwareTlb;
use crate::arch::{cpu, mmu, timer};
use crate::memory::user_env;
use crate::println;

const PAGE: u64 = 4096;
const ROUNDS: u64 = 64;

/// Reads one word of every page of `[base, base + pages * PAGE)` (user
/// memory, mapped and populated), through whatever the TLB holds.
fn touch(base: u64, pages: u64) {
    for i in 0..pages {
        // SAFETY: the pages are populated, readable user pages of the active
        // TTBR0 space, and EL1 may read them (PAN is off).
        unsafe { core::ptr::read_volatile((base + i * PAGE) as *const u64) };
    }
}

/// Ticks for: invalidate `n` pages one by one and sync, then refill `w`.
fn per_page(base: u64, n: u64, w: u64, asid: Asid) -> u64 {
    let tlb = HardwareTlb;
    touch(base, w);
    let start = timer::ticks();
    tlb.begin();
    for i in 0..n {
        tlb.invalidate_page(asid, VirtAddr::new(base + i * PAGE), true);
    }
    tlb.count_page_invalidations(n as usize);
    tlb.sync();
    touch(base, w);
    timer::ticks() - start
}

/// Ticks for: drop the whole ASID and sync, then refill `w`.
fn whole_asid(base: u64, w: u64, asid: Asid) -> u64 {
    let tlb = HardwareTlb;
    touch(base, w);
    let start = timer::ticks();
    tlb.begin();
    tlb.invalidate_asid(asid);
    tlb.sync();
    touch(base, w);
    timer::ticks() - start
}

/// Runs the benchmarks and prints their lines.
pub fn run() {
    const MAX: u64 = 512;
    let mut mm = match AddressSpace::new(user_env::get()) {
        Ok(mm) => mm,
        Err(e) => return println!("kbench error address space: {e}"),
    };
    let flags = MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::POPULATE;
    let base = match mm.mmap(VirtAddr::new(0), MAX * PAGE, Prot::READ | Prot::WRITE, flags, None, 0) {
        Ok(va) => va.as_u64(),
        Err(e) => return println!("kbench error mmap: {e}"),
    };
    let irqs = cpu::disable_irqs();
    let (root, asid) = mm.activate(cpu::cpu_id());
    mmu::set_user_table(root, asid.0);
    println!(
        "kbench tlb_crossover freq={} rounds={ROUNDS} (ticks per operation: per-page / whole-ASID)",
        timer::frequency()
    );
    for w in [16u64, 64, 256, 512] {
        let mut line = alloc::format!("kbench tlb_crossover working_set={w}");
        let mut crossover = None;
        for n in [1u64, 4, 16, 32, 64, 128, 256, 512] {
            let (mut a, mut b) = (0, 0);
            for _ in 0..ROUNDS {
                a += per_page(base, n, w, asid);
                b += whole_asid(base, w, asid);
            }
            line.push_str(&alloc::format!(" n{n}={}/{}", a / ROUNDS, b / ROUNDS));
            if crossover.is_none() && a > b {
                crossover = Some(n);
            }
        }
        match crossover {
            Some(n) => line.push_str(&alloc::format!(" crossover<={n}")),
            None => line.push_str(" crossover>512"),
        }
        println!("{line}");
    }
    mmu::set_empty_user_table();
    cpu::restore_irqs(irqs);
    drop(mm);
}
