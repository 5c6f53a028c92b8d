//! The tests, in the order they run.
//!
//! Linux is the reference: every test passes on Linux (QEMU virt, Debian's
//! arm64 kernel). Where Linux and Aspen's promises differ, the difference is
//! named here and nowhere weakened silently:
//!
//! - MAP_POPULATE of shared memory: Linux populates it as if read (clean
//!   page-table entries), so on a CPU without hardware dirty-bit management
//!   (Cortex-A72) the first write to each page faults. Aspen promises no
//!   faults after MAP_POPULATE; the write check is skipped on Linux only.
//! - Free-memory accounting. Aspen promises exact accounting: once every
//!   process of a test is gone, its free-frame count (MemFree) is back where
//!   it was. Linux's MemFree leaves out the free pages parked on per-CPU lists
//!   (up to 27 MiB here); [`crate::procfs::memfree`] adds them from
//!   /proc/zoneinfo. What remains on Linux is kernel caching that Aspen does
//!   not promise to avoid: slab caches keep freed objects, task structures and
//!   page tables are freed after an RCU grace period, and an OOM kill makes
//!   the kernel reclaim caches (free memory then ends up higher than before).
//!   Under QEMU virt with 1 GiB the drift was at most 1.3 MiB. The slack is
//!   therefore [`MEMFREE_SLACK_ASPEN`] unless `uname` says the kernel is
//!   Linux, then [`MEMFREE_SLACK_LINUX`].
//! - Copies to and from user memory that fault part-way: Aspen moves every
//!   byte before the faulting one; Linux's arm64 copy routines may stop a
//!   little short of it (the user-copy contract allows that). On Linux the
//!   partial tests check that the count is short of the fault and that the
//!   file offset moved by exactly the count.

pub mod accounting;
pub mod args;
pub mod brk;
pub mod cow;
pub mod dynlink;
pub mod efault;
pub mod elf;
pub mod errors;
pub mod failslab;
pub mod faults;
pub mod file;
pub mod forkbomb;
pub mod futex;
pub mod futex_smp;
pub mod jobctl;
pub mod links;
pub mod madvise;
pub mod partial;
pub mod paths;
pub mod pipes;
pub mod preempt;
pub mod proc;
pub mod process;
pub mod programs;
pub mod protect;
pub mod sched;
pub mod script;
pub mod segv;
pub mod sendfile;
pub mod shared;
pub mod signals;
pub mod smp;
pub mod smp_stress;
pub mod time;
pub mod traps;
pub mod tty;
pub mod wx;

use crate::harness::{Body, Test};

/// How far free memory may be from its baseline on Aspen once every test process
/// is gone. Aspen's accounting is exact; the slack (16 pages) covers what the
/// suite process and the kernel may legitimately still hold that the set-up
/// could not fault in ahead: a stack or page-table page of the suite process
/// on a path it took for the first time, and kernel bookkeeping that grows in
/// whole pages (a table of tasks or open files gaining a page).
pub const MEMFREE_SLACK_ASPEN: u64 = 64 * 1024;
/// The slack on Linux (see the module doc): about three times the largest
/// drift seen.
pub const MEMFREE_SLACK_LINUX: u64 = 4 * 1024 * 1024;

/// A test run in a child process.
const fn child(name: &'static str, body: fn(&crate::harness::Context) -> crate::harness::TestResult) -> Test {
    Test { name, body: Body::Child(body) }
}

pub const TESTS: &[Test] = &[
    child("cow_isolation", cow::isolation),
    child("cow_fork_of_fork", cow::fork_of_fork),
    child("fresh_pages_zero", cow::fresh_pages_zero),
    child("cow_keeps_fp_registers", cow::fp_registers_survive_a_copy),
    child("shared_anon", shared::shared_anon),
    child("file_shared_mapping", file::shared_mapping),
    child("file_private_mapping", file::private_mapping),
    child("mprotect_split_merge", protect::split_merge),
    child("segv_unmapped", segv::unmapped),
    child("segv_write_readonly", segv::write_readonly),
    child("segv_read_prot_none", segv::read_prot_none),
    child("segv_exec_noexec", segv::exec_noexec),
    child("wx_self_modifying_page", wx::self_modifying_page),
    child("traps_kill_with_linux_signals", traps::kill_with_linux_signals),
    child("efault_bad_pointers", efault::bad_pointers),
    child("partial_reads", partial::reads),
    child("partial_writes", partial::writes),
    child("partial_proc_read", partial::proc_read),
    child("populate_no_faults", faults::populate),
    child("mlock_no_faults", faults::mlock),
    child("brk", brk::brk_moves),
    child("madvise_dontneed", madvise::dontneed_semantics),
    child("mmap_errors", errors::mmap_errors),
    child("syscall_errors", errors::syscall_errors),
    child("time_sleep_yield", time::sleep_and_clocks),
    child("proc_memory_follows_pages", proc::memory_follows_pages),
    child("proc_self_and_threads", proc::self_and_threads),
    child("proc_cpu_time_and_load", proc::cpu_time_and_load),
    child("proc_system_figures", proc::system_figures),
    child("proc_cpus_agree", proc::cpus_agree),
    child("proc_children_figures", proc::children_figures),
    child("fork_exec_wait", process::fork_exec_wait),
    child("tty_console_is_a_terminal", tty::console_is_a_terminal),
    child("tty_controlling_terminal", tty::controlling_terminal),
    child("futex_wait_wake", futex::wait_wake),
    child("futex_requeue", futex::requeue),
    child("futex_wake_op", futex::wake_op),
    child("futex_shared_across_fork", futex::shared_across_fork),
    child("futex_pi_lock", futex::pi_lock),
    child("futex_pi_boost", futex::pi_boost),
    child("futex_pi_chain", futex::pi_chain),
    child("futex_robust_list", futex::robust_list),
    child("futex_waiters_end_with_their_process", futex::waiters_end_with_their_process),
    child("futex_wake_op_add_across_cores", futex_smp::wake_op_add_across_cores),
    child("futex_pi_lock_across_cores", futex_smp::pi_lock_across_cores),
    child("futex_rmw_faults", futex_smp::rmw_faults),
    child("sched_calls", sched::calls),
    child("sched_thread_switches", sched::thread_switches),
    child("sched_fifo_wakeup_preempts_munmap", preempt::fifo_wakeup_preempts_munmap),
    child("smp_getcpu_follows_affinity", smp::getcpu_follows_affinity),
    child("smp_threads_run_in_parallel", smp::threads_run_in_parallel),
    child("smp_pinned_pair_share_a_core", smp::pinned_pair_share_a_core),
    child("smp_no_stale_reads_across_cores", smp::no_stale_reads_across_cores),
    child("smp_faults_share_the_space_across_cores", smp::faults_share_the_space_across_cores),
    child("smp_faults_go_on_beside_mmap_and_munmap", smp::faults_go_on_beside_mmap_and_munmap),
    child("smp_file_faults_share_the_space_across_cores", smp::file_faults_share_the_space_across_cores),
    child("smp_copy_on_write_across_cores", smp::copy_on_write_across_cores),
    child("smp_stress_shared_range", smp_stress::shared_range),
    child("smp_asid_rollover", smp_stress::asid_rollover),
    child("exec_scripts", script::interpreters),
    child("exec_many_arguments", args::many_arguments),
    child("exec_malformed_elf", elf::malformed),
    child("exec_interpreters", elf::interpreters),
    child("paths_directories", paths::directories),
    child("paths_working_directory", paths::working_directory),
    child("paths_memory_devices", paths::devices),
    child("credentials", paths::credentials),
    child("mount_tmpfs", paths::mounts),
    child("mount_tmpfs_size", paths::tmpfs_size),
    child("truncate_mapped_file", paths::truncate_mapped),
    child("symlink_paths", links::basics),
    child("symlink_exec", links::exec),
    child("sendfile", sendfile::calls),
    child("pipe_round_trip", pipes::round_trip),
    child("pipe_sigpipe", pipes::sigpipe),
    child("pipe_nonblocking", pipes::nonblocking),
    child("pipe_blocking_read_woken", pipes::blocking_read_woken),
    child("pipe_atomic_writes", pipes::atomic_writes),
    child("fd_dup_fcntl", pipes::dup_fcntl),
    child("fd_cloexec_exec", pipes::cloexec_exec),
    child("ppoll_pipes", pipes::ppoll_pipes),
    child("pselect_pipes", pipes::pselect_pipes),
    child("pipe_memory_back", pipes::memory_back),
    child("signal_handler_siginfo", signals::handler_siginfo),
    child("signal_segv_handler_retries", signals::segv_handler_retries),
    child("signal_altstack", signals::altstack),
    child("signal_restart_wait4", signals::restart_wait4),
    child("signal_resethand_nodefer", signals::resethand_nodefer),
    child("signal_mask_pending_suspend", signals::mask_pending_suspend),
    child("signal_sigtimedwait", signals::sigtimedwait),
    child("signal_sigchld", signals::sigchld),
    child("signal_process_groups", signals::process_groups),
    child("signal_default_actions", signals::default_actions),
    child("signal_exec_resets_handlers", signals::exec_resets_handlers),
    child("signal_fp_preserved", signals::fp_preserved),
    child("signal_frame_fault_kills", signals::frame_fault_kills),
    child("signal_thread_group", signals::thread_group),
    child("signal_no_restorer", signals::no_restorer),
    child("signal_nanosleep_eintr", signals::nanosleep_eintr),
    child("signal_blocked_fault_kills", signals::blocked_fault_kills),
    child("signal_restart_futex", signals::restart_futex),
    child("jobctl_stop_continue_wait", jobctl::stop_continue_wait),
    child("jobctl_threads_stop_together", jobctl::threads_stop_together),
    child("jobctl_nocldstop_blocked_cont", jobctl::nocldstop_and_blocked_cont),
    child("jobctl_restart_after_continue", jobctl::restart_after_continue),
    child("jobctl_orphaned_group", jobctl::orphaned_group),
    child("jobctl_terminal_background", jobctl::terminal_background),
    child("oom_contained", accounting::oom_contained),
    child("oom_kills_the_largest", accounting::oom_kills_the_largest),
    child("drop_caches_frees_clean_page_cache", accounting::drop_caches_frees_clean_page_cache),
    child("fork_bomb_gives_back", forkbomb::fork_bomb_gives_back),
    child("killed_before_running_gives_back", forkbomb::killed_before_running_gives_back),
    child("allocation_failures_end_cleanly", failslab::allocation_failures_end_cleanly),
    child("release_and_exec_failures_end_cleanly", failslab::release_and_exec_failures_end_cleanly),
    child(
        "allocation_failures_in_waits_and_proc_end_cleanly",
        failslab::allocation_failures_in_waits_and_proc_end_cleanly,
    ),
    // The real programs (user/libc, user/std), each exec'd from /bin.
    child("prog_c_threads", programs::c_threads),
    child("prog_c_futex", programs::c_futex),
    child("prog_c_pi", programs::c_pi),
    child("prog_c_robust", programs::c_robust),
    child("prog_c_pshared", programs::c_pshared),
    child("prog_c_signals", programs::c_signals),
    child("prog_c_process", programs::c_process),
    child("prog_c_timers", programs::c_timers),
    child("prog_c_sched", programs::c_sched),
    child("prog_c_limits", programs::c_limits),
    child("prog_c_mremap", programs::c_mremap),
    child("prog_std_threads", programs::std_threads),
    child("prog_std_process", programs::std_process),
    child("prog_std_panic", programs::std_panic),
    child("prog_sh_applets", programs::sh_applets),
    child("prog_sh_pipes", programs::sh_pipes),
    child("prog_sh_redirect", programs::sh_redirect),
    child("prog_sh_jobs", programs::sh_jobs),
    child("prog_sh_files", programs::sh_files),
    child("prog_sh_proc", programs::sh_proc),
    child("prog_sh_text", programs::sh_text),
    // Debian's dynamically linked busybox with glibc's ld.so and libraries.
    child("prog_dynlink_busybox", dynlink::busybox),
    // Last: after every other test process is gone.
    Test { name: "memfree_baseline", body: Body::Suite(accounting::memfree_baseline) },
];

/// Tests run only when named (`usertests smp_asid_rollover_long`): too long
/// for every run of the suite (README, "Test protocol").
pub const LONG_TESTS: &[Test] = &[child("smp_asid_rollover_long", smp_stress::asid_rollover_long)];
