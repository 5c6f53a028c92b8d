//! Aspen: a memory subsystem and small real-time kernel for aarch64
//! Raspberry Pi-class boards.
//!
//! `boot.s` brings the boot CPU to EL1 with a temporary mapping and calls
//! [`kernel_init`] in the high half.

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod board;
mod cmdline;
mod console;
mod device;
mod driver;
mod dtb;
mod failslab;
mod files;
mod futex;
mod heap;
mod irq;
mod kbench;
mod ktest;
mod logger;
mod memory;
mod panic;
mod pipe;
mod poll;
mod power;
mod process;
mod random;
mod smp;
mod syscall;
mod task;
mod trap;
mod tty;

mod tests;

use crate::arch::exception;
use crate::arch::firmware;
use crate::board::BOARD;
use crate::cmdline::CommandLine;
use crate::dtb::BootInfo;

static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

/// What the boot loader told the kernel. Set once, early in boot.
pub fn boot_info() -> &'static BootInfo {
    BOOT_INFO.get().expect("boot info read before boot set it")
}

/// The boot CPU's entry into Rust, from `boot.s`, with the MMU on and the
/// DTB's physical address (0 if none).
#[no_mangle]
extern "C" fn kernel_init(dtb_phys: u64) -> ! {
    smp::init_boot_cpu();
    exception::install_vectors();
    board::init_early();
    // SAFETY: the early map covers the board's console UART at its linear
    // address, and the final tables keep it there.
    unsafe {
        console::init(memory::phys_to_virt(BOARD.uart_base).as_usize(), BOARD.uart_clock_hz, true);
    }

    let info = BOOT_INFO.call_once(|| BootInfo::from_boot(dtb_phys));
    let cmdline = CommandLine::parse(info.bootargs);
    logger::init(cmdline.log_level);
    if cmdline.semihosting {
        firmware::enable_semihosting();
    }
    if cmdline.trace_syscalls {
        syscall::enable_trace();
    }
    if cmdline.run_tests || cmdline.fail_nth_allocation.is_some() {
        failslab::check_preloads();
    }
    firmware::set_psci_conduit(info.psci);

    println!();
    println!("Aspen {} on {} ({})", env!("CARGO_PKG_VERSION"), BOARD.name, info.model);
    log::info!("command line: {:?}", info.bootargs);
    let free = memory::usable_ram(info);
    memory::print_map(info, &free);
    if let Err(e) = memory::kernel_map::build_and_switch(&info.ram) {
        panic!("cannot build the kernel's translation tables: {e:?}");
    }
    // `aspen.asid_bits=8` narrows the width; it never widens it.
    let asid_bits = if cmdline.asid_bits_8 { 8 } else { arch::mmu::asid_bits() };
    arch::mmu::configure(asid_bits);
    if let Err(e) = memory::frames::init(&free) {
        panic!("cannot set up the frame pool: {e}");
    }
    memory::user_env::init(asid_bits, cmdline.wx_policy);
    random::init(info.rng_seed, info.kaslr_seed);
    files::init(info.initrd);

    // The boot core is the kernel's alone until the others start; it
    // holds the big kernel lock from here (its idle loop gives it up).
    task::bkl::acquire();
    task::sched::init_idle();
    irq::init();
    smp::start_secondaries(cmdline.max_cpus);

    if cmdline.run_benchmarks {
        spawn_or_panic("kbench", |_| {
            kbench::run();
            power::power_off()
        });
    } else if cmdline.run_tests {
        spawn_or_panic("ktest", run_kernel_tests);
    } else {
        start_init();
    }
    task::sched::idle_loop()
}

/// Starts the first program: `init=` (default `/init`), with the words
/// after `--` on the command line as its arguments, as Linux does.
fn start_init() {
    let bootargs = boot_info().bootargs;
    let cmdline = CommandLine::parse(bootargs);
    let path = cmdline.init.as_bytes();
    let mut argv: alloc::vec::Vec<&[u8]> = alloc::vec![path];
    argv.extend(cmdline.init_args().map(str::as_bytes));
    match process::spawn_init(path, &argv) {
        Ok(init) => {
            log::info!("started {} as pid {}", cmdline.init, init.pid);
            // After init, which takes the first pid; before injection starts.
            task::timer::init();
            // Boot is over: its own allocations cannot fail softly (a
            // kernel without the memory to start fails to start).
            if let Some(n) = cmdline.fail_nth_allocation {
                failslab::fail_boot_nth(n);
            }
            // After init, which takes the first pid.
            tty::init();
        }
        Err(e) => panic!("cannot start {}: {e}", cmdline.init),
    }
}

/// Starts the kernel-test or benchmark thread, kept on the boot core: the
/// tests of the other cores are written from its side.
fn spawn_or_panic(name: &str, entry: fn(usize)) {
    match task::Task::new_kernel(task::sched::DEFAULT_PRIORITY, entry, 0) {
        Ok(task) => {
            task::sched::set_affinity(&task, 1 << smp::this_cpu_id());
            task::sched::make_ready(task)
        }
        Err(e) => panic!("cannot start the {name} thread: {e:?}"),
    }
}

/// With `aspen.ktest` on the command line, the first thread: runs every
/// kernel test; then, if init has arguments (`-- --run-tests`), starts init
/// to run the user tests, else ends the run and powers off.
fn run_kernel_tests(_: usize) {
    let all_passed = ktest::run_all();
    let init_has_work = CommandLine::parse(boot_info().bootargs).init_args().next().is_some();
    if all_passed && init_has_work {
        start_init();
        return;
    }
    println!("TEST-FINISHED");
    if !all_passed {
        power::fail_stop();
    }
    power::power_off()
}
