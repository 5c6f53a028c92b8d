//! The scheduling calls and their errnos, what threads and forks inherit,
//! and switches between threads of one process (no TTBR0 write).

use core::sync::atomic::{AtomicU32, Ordering::SeqCst};

use aspen_sys::raw::{syscall2, syscall3, Sysno};
use aspen_sys::thread::{self as th, spawn_thread};
use aspen_sys::time::Timespec;
use aspen_sys::{fs, process, Errno};

use crate::ensure;
use crate::harness::{expect_errno, in_child, Context, Ctx, TestResult};

fn priority_limit(max: bool, policy: i32) -> Result<usize, Errno> {
    let call = if max { Sysno::SchedGetPriorityMax } else { Sysno::SchedGetPriorityMin };
    // SAFETY: no memory is involved.
    Errno::result(unsafe { syscall2(call.number(), policy as usize, 0) })
}

fn rr_interval(pid: i32) -> Result<Timespec, Errno> {
    let mut ts = Timespec { tv_sec: -1, tv_nsec: -1 };
    // SAFETY: the kernel writes one struct timespec.
    Errno::result(unsafe {
        syscall2(Sysno::SchedRrGetInterval.number(), pid as usize, &mut ts as *mut Timespec as usize)
    })?;
    Ok(ts)
}

fn affinity(set: bool, pid: i32, len: usize, mask: &mut [u8; 16]) -> Result<usize, Errno> {
    let call = if set { Sysno::SchedSetaffinity } else { Sysno::SchedGetaffinity };
    // SAFETY: the kernel reads or writes at most `len` <= 16 bytes of `mask`.
    Errno::result(unsafe { syscall3(call.number(), pid as usize, len.min(16), mask.as_mut_ptr() as usize) })
}

static POLICY_SEEN: AtomicU32 = AtomicU32::new(u32::MAX);
static PARAM_SEEN: AtomicU32 = AtomicU32::new(u32::MAX);
static RELEASE: AtomicU32 = AtomicU32::new(0);

/// Thread: records the policy and priority it started with, then waits
/// for RELEASE.
extern "C" fn report_policy(_: usize) {
    POLICY_SEEN.store(th::sched_getscheduler(0).unwrap_or(-1) as u32, SeqCst);
    PARAM_SEEN.store(th::sched_getparam(0).unwrap_or(-1) as u32, SeqCst);
    while RELEASE.load(SeqCst) == 0 {
        let _ = th::futex_wait(&RELEASE, 0, None);
    }
}

/// sched_get_priority_min/max, set/getscheduler, set/getparam,
/// rr_get_interval, set/getaffinity: values and errnos; a thread inherits
/// its creator's policy and can be changed by tid; SCHED_RESET_ON_FORK.
pub fn calls(_: &Context) -> TestResult {
    for (policy, min, max) in [(0, 0, 0), (1, 1, 99), (2, 1, 99), (3, 0, 0), (5, 0, 0)] {
        let got = (priority_limit(false, policy), priority_limit(true, policy));
        ensure!(got == (Ok(min), Ok(max)), "priority range of policy {policy}: {got:?}");
    }
    expect_errno("priority max of policy 4", priority_limit(true, 4), Errno::EINVAL)?;
    expect_errno("priority min of policy -1", priority_limit(false, -1), Errno::EINVAL)?;

    ensure!(th::sched_getscheduler(0) == Ok(th::SCHED_OTHER), "the suite does not run SCHED_OTHER");
    ensure!(th::sched_getparam(0) == Ok(0), "SCHED_OTHER has priority 0");
    for (policy, priority) in
        [(th::SCHED_OTHER, 1), (th::SCHED_FIFO, 0), (th::SCHED_RR, 100), (th::SCHED_FIFO, -1), (4, 0)]
    {
        let r = th::sched_setscheduler(0, policy, priority);
        expect_errno(&alloc::format!("sched_setscheduler({policy}, {priority})"), r, Errno::EINVAL)?;
    }
    expect_errno("sched_setscheduler of policy -1", th::sched_setscheduler(0, -1, 0), Errno::EINVAL)?;
    expect_errno("sched_setscheduler of pid -1", th::sched_setscheduler(-1, th::SCHED_FIFO, 1), Errno::EINVAL)?;
    expect_errno("sched_setscheduler of no thread", th::sched_setscheduler(i32::MAX, th::SCHED_FIFO, 1), Errno::ESRCH)?;
    // SAFETY: a NULL parameter is refused before it is read.
    let null = Errno::result(unsafe { syscall3(Sysno::SchedSetscheduler.number(), 0, 1, 0) });
    expect_errno("sched_setscheduler with no parameter", null, Errno::EINVAL)?;
    expect_errno("sched_getscheduler of pid -1", th::sched_getscheduler(-1), Errno::EINVAL)?;
    expect_errno("sched_getparam of no thread", th::sched_getparam(i32::MAX), Errno::ESRCH)?;
    expect_errno("sched_rr_get_interval of pid -1", rr_interval(-1), Errno::EINVAL)?;

    for policy in [3, 5, th::SCHED_OTHER] {
        th::sched_setscheduler(0, policy, 0).ctx("sched_setscheduler of a time-sharing policy")?;
        ensure!(th::sched_getscheduler(0) == Ok(policy), "the policy did not become {policy}");
    }
    th::sched_setscheduler(0, th::SCHED_FIFO, 50).ctx("sched_setscheduler(FIFO 50)")?;
    ensure!(th::sched_getscheduler(0) == Ok(th::SCHED_FIFO), "the policy is not SCHED_FIFO");
    ensure!(th::sched_getparam(0) == Ok(50), "the priority is not 50");
    ensure!(rr_interval(0).map(|t| t.as_nanos()) == Ok(0), "SCHED_FIFO has no time slice");
    th::sched_setparam(0, 60).ctx("sched_setparam(60)")?;
    ensure!(th::sched_getparam(0) == Ok(60), "sched_setparam did not change the priority");
    expect_errno("sched_setparam(0) under SCHED_FIFO", th::sched_setparam(0, 0), Errno::EINVAL)?;

    let thread = spawn_thread(report_policy, 0).ctx("clone")?;
    let tid = thread.tid();
    for _ in 0..1000 {
        if PARAM_SEEN.load(SeqCst) != u32::MAX {
            break;
        }
        aspen_sys::time::sleep_ms(1).ctx("nanosleep")?;
    }
    let seen = (POLICY_SEEN.load(SeqCst), PARAM_SEEN.load(SeqCst));
    ensure!(seen == (1, 60), "a new thread started with policy {} priority {}, not FIFO 60", seen.0, seen.1);
    th::sched_setscheduler(tid, th::SCHED_RR, 5).ctx("sched_setscheduler of the thread")?;
    ensure!(th::sched_getscheduler(tid) == Ok(th::SCHED_RR), "the thread's policy did not change");
    ensure!(th::sched_getparam(0) == Ok(60), "changing the thread changed the caller");
    let slice = rr_interval(tid).ctx("sched_rr_get_interval")?;
    ensure!(slice.as_nanos() > 0, "SCHED_RR has a time slice");
    RELEASE.store(1, SeqCst);
    th::futex_wake(&RELEASE, 1).ctx("FUTEX_WAKE")?;
    thread.join().ctx("join")?;

    let mut mask = [0u8; 16];
    ensure!(affinity(false, 0, 8, &mut mask) == Ok(8), "sched_getaffinity(8 bytes) did not return 8");
    ensure!(mask[0] & 1 == 1, "CPU 0 is not in the affinity mask");
    expect_errno("sched_getaffinity of 4 bytes", affinity(false, 0, 4, &mut mask), Errno::EINVAL)?;
    expect_errno("sched_getaffinity of 12 bytes", affinity(false, 0, 12, &mut mask), Errno::EINVAL)?;
    expect_errno("sched_getaffinity of no thread", affinity(false, i32::MAX, 8, &mut mask), Errno::ESRCH)?;
    let mut only_cpu0 = [1u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    ensure!(affinity(true, 0, 8, &mut only_cpu0) == Ok(0), "sched_setaffinity(CPU 0) failed");
    let mut none = [0u8; 16];
    expect_errno("sched_setaffinity of no CPU", affinity(true, 0, 8, &mut none), Errno::EINVAL)?;

    th::sched_setscheduler(0, th::SCHED_RR | th::SCHED_RESET_ON_FORK, 10).ctx("SCHED_RR with RESET_ON_FORK")?;
    ensure!(
        th::sched_getscheduler(0) == Ok(th::SCHED_RR | th::SCHED_RESET_ON_FORK),
        "sched_getscheduler does not report SCHED_RESET_ON_FORK"
    );
    in_child("a child forked with SCHED_RESET_ON_FORK", || {
        let policy = th::sched_getscheduler(0);
        ensure!(policy == Ok(th::SCHED_OTHER), "the child runs policy {policy:?}, not SCHED_OTHER");
        ensure!(th::sched_getparam(0) == Ok(0), "the child kept a real-time priority");
        Ok(())
    })?;
    th::sched_setscheduler(0, th::SCHED_OTHER, 0).ctx("back to SCHED_OTHER")?;
    Ok(())
}

static TURN: AtomicU32 = AtomicU32::new(0);
const ROUNDS: u32 = 1000;

/// Thread `me` (0 or 1): takes ROUNDS turns, yielding while it is the
/// other's.
extern "C" fn ping_pong(me: usize) {
    for _ in 0..ROUNDS {
        while TURN.load(SeqCst) % 2 != me as u32 {
            let _ = process::sched_yield();
        }
        TURN.fetch_add(1, SeqCst);
    }
}

/// `SpaceSwitches:` of /proc/self/status (Aspen only).
fn space_switches() -> Result<u64, alloc::string::String> {
    let mut buf = [0u8; 2048];
    let n = fs::read_file(c"/proc/self/status", &mut buf).ctx("read /proc/self/status")?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| alloc::string::String::from("status is not UTF-8"))?;
    let line = text.lines().find_map(|l| l.strip_prefix("SpaceSwitches:"));
    line.and_then(|v| v.trim().parse().ok()).ok_or_else(|| alloc::string::String::from("no SpaceSwitches line"))
}

/// Two threads of one process ping-pong with sched_yield: on Aspen no
/// switch between them writes TTBR0 (the counter may move by a few for
/// other processes running meanwhile); Linux has no such counter.
pub fn thread_switches(ctx: &Context) -> TestResult {
    let before = if ctx.linux { 0 } else { space_switches()? };
    let a = spawn_thread(ping_pong, 0).ctx("clone")?;
    let b = spawn_thread(ping_pong, 1).ctx("clone")?;
    a.join().ctx("join")?;
    b.join().ctx("join")?;
    ensure!(TURN.load(SeqCst) == 2 * ROUNDS, "the threads took {} turns", TURN.load(SeqCst));
    if !ctx.linux {
        let writes = space_switches()? - before;
        ensure!(writes < 10, "{} turns between threads of one space wrote TTBR0 {writes} times", 2 * ROUNDS);
    }
    Ok(())
}
