//! A bounded fork bomb, twice: the kernel gives back everything the
//! processes took. Free memory (MemFree) and, on Aspen, the kernel heap in
//! use (`KernelHeap` of /proc/meminfo) are back at their baseline after each
//! round, and the second round costs no more than the first.

use alloc::format;
use alloc::string::String;

use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::process::{self, Fork};
use aspen_sys::{time, Errno};

use crate::ensure;
use crate::harness::{Context, Region, Stage, TestResult};
use crate::procfs::{kernel_heap, memfree};

/// Most children per round. The kernel's own limit (memory for kernel
/// stacks and page tables: about 20,000 processes with 1 GiB) takes minutes
/// under QEMU; this many keeps the test at a few seconds and still grows
/// the kernel heap by several regions' worth of bookkeeping.
const BOMB_MAX: usize = 2500;
/// Fewer children than this means fork failed too early to test anything.
const BOMB_MIN: usize = 100;
/// How often a waiting child looks at the release word.
const CHILD_POLL_MS: u64 = 500;
/// How far the kernel heap in use may be from its baseline: the process
/// table (a B-tree) holds the same processes again but its nodes may split
/// differently after thousands of inserts and removals, and /proc/meminfo
/// shows whole kB.
const KERNEL_HEAP_SLACK: u64 = 8 * 1024;

/// What the test measures between rounds.
#[derive(Clone, Copy)]
struct Usage {
    memfree: u64,
    /// `None` on Linux (no KernelHeap line).
    kernel_heap: Option<u64>,
}

fn usage(ctx: &Context) -> Result<Usage, String> {
    let memfree = memfree().map_err(|e| format!("{e}"))?;
    let kernel_heap = if ctx.linux { None } else { Some(kernel_heap().map_err(|e| format!("{e}"))?) };
    Ok(Usage { memfree, kernel_heap })
}

/// Forks children that sleep until released (up to `max`, or until fork
/// says EAGAIN or ENOMEM), releases them and reaps every one. Returns how
/// many there were.
fn round(max: usize) -> Result<usize, String> {
    let shared = Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::SHARED)?;
    let release = Stage::at(&shared, 0);
    let mut forked = 0;
    let mut fork_error = None;
    while forked < max {
        match process::fork() {
            Ok(Fork::Child) => {
                while release.get() == 0 {
                    let _ = time::sleep_ms(CHILD_POLL_MS);
                }
                process::exit_group(0)
            }
            Ok(Fork::Parent(_)) => forked += 1,
            Err(e @ (Errno::EAGAIN | Errno::ENOMEM)) => {
                fork_error = Some(e);
                break;
            }
            Err(e) => return Err(format!("fork {}: {e}", forked + 1)),
        }
    }
    release.set(1);
    let mut reaped = 0;
    loop {
        match process::wait4(-1, 0) {
            Ok((_, status)) if status.success() => reaped += 1,
            Ok((pid, status)) => return Err(format!("child {pid} ended with {status}")),
            Err(Errno::ECHILD) => break,
            Err(e) => return Err(format!("wait4: {e}")),
        }
    }
    ensure!(reaped == forked, "forked {forked} children, reaped {reaped}");
    ensure!(
        forked >= BOMB_MIN.min(max),
        "fork failed after {forked} children ({fork_error:?}); at least {BOMB_MIN} expected"
    );
    Ok(forked)
}

/// Requires `now` to be within the slacks of `baseline`; a failure shows
/// both figures.
fn check(ctx: &Context, what: &str, baseline: Usage, now: Usage) -> TestResult {
    let memfree_ok = baseline.memfree.abs_diff(now.memfree) <= ctx.memfree_slack;
    let heap_ok = match (baseline.kernel_heap, now.kernel_heap) {
        (Some(base), Some(heap)) => base.abs_diff(heap) <= KERNEL_HEAP_SLACK,
        _ => true,
    };
    ensure!(
        memfree_ok && heap_ok,
        "{what}: free memory {} bytes ({} at the baseline, slack {}), kernel heap in use {:?} bytes ({:?} at the \
         baseline, slack {KERNEL_HEAP_SLACK})",
        now.memfree,
        baseline.memfree,
        ctx.memfree_slack,
        now.kernel_heap,
        baseline.kernel_heap
    );
    Ok(())
}

/// Two bounded fork bombs in a row; after each, free memory and the kernel
/// heap in use are back at the baseline taken before the first.
pub fn fork_bomb_gives_back(ctx: &Context) -> TestResult {
    // A small round first, so that this process's own first-use costs (its
    // stack, its allocator, the shared page's tables) come before the
    // baseline.
    round(BOMB_MIN)?;
    let baseline = usage(ctx)?;
    for which in ["first", "second"] {
        let forked = round(BOMB_MAX)?;
        check(ctx, &format!("after the {which} fork bomb of {forked} processes"), baseline, usage(ctx)?)?;
    }
    Ok(())
}

/// Children killed by `SIGKILL` before they first ran.
const KILLED_UNSTARTED: usize = 200;

/// Children killed before they ever ran give everything back: a task that
/// ends on its way to user space for the first time must not keep its
/// thread and process (about 1.4 kB of kernel heap each).
pub fn killed_before_running_gives_back(ctx: &Context) -> TestResult {
    let kill_some = |count: usize| -> TestResult {
        for _ in 0..count {
            match process::fork() {
                // The parent runs on after fork; the child is killed
                // before its first turn (or at once, wherever it is).
                Ok(Fork::Child) => process::exit_group(0),
                Ok(Fork::Parent(pid)) => {
                    aspen_sys::signal::kill(pid, process::SIGKILL).map_err(|e| format!("kill: {e}"))?;
                    let (_, status) = process::wait4(pid, 0).map_err(|e| format!("wait4: {e}"))?;
                    ensure!(
                        status.signal() == Some(process::SIGKILL) || status.success(),
                        "child {pid} ended with {status}"
                    );
                }
                Err(e) => return Err(format!("fork: {e}")),
            }
        }
        Ok(())
    };
    // First-use costs (this process's tables, the process table's nodes)
    // before the baseline.
    kill_some(10)?;
    let baseline = usage(ctx)?;
    kill_some(KILLED_UNSTARTED)?;
    check(ctx, &format!("after {KILLED_UNSTARTED} children killed before they ran"), baseline, usage(ctx)?)
}
