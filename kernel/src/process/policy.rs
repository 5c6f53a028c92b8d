//! The scheduling calls (`sched_setscheduler` and relatives,
//! `sched_setaffinity`/`getaffinity`, `sched_rr_get_interval`) on the
//! threads of any process, as Linux 6.1 checks them. Root (effective uid
//! 0, which holds `CAP_SYS_NICE`) may do anything; another caller only to
//! threads whose process it owns (its effective uid is the target's real or
//! effective one) and within the target's `RLIMIT_RTPRIO` and `RLIMIT_NICE`
//! (`abi::sched::unprivileged_change`); else `EPERM`.

use alloc::sync::Arc;

use aspen_abi::resource::Resource;
use aspen_abi::sched::{self as abi, Policy, SchedParams, CPU_MASK_SIZE};
use aspen_abi::syscall::Timespec;
use aspen_abi::uaccess::{UserMemory, UserPtr, UserSlice};
use aspen_mm::errno::Errno;

use super::thread::{self, Thread};
use crate::task::{sched, Pid, Task};

/// The thread `pid` names: the caller for 0 (`ESRCH` if none).
fn thread_of(pid: i32) -> Result<Arc<Thread>, Errno> {
    if pid == 0 {
        return thread::current().ok_or(Errno::ESRCH);
    }
    let tid = Pid::try_from(pid).map_err(|_| Errno::ESRCH)?;
    super::thread_by_tid(tid).ok_or(Errno::ESRCH)
}

/// The task of the thread `pid` names, for a call that refuses a negative
/// pid with `EINVAL`.
fn task_of(pid: i32) -> Result<Arc<Task>, Errno> {
    target_of(pid).map(|(_, task)| task)
}

/// The thread `pid` names and its task, for a call that refuses a
/// negative pid with `EINVAL`.
fn target_of(pid: i32) -> Result<(Arc<Thread>, Arc<Task>), Errno> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let thread = thread_of(pid)?;
    let task = thread.task().ok_or(Errno::ESRCH)?;
    Ok((thread, task))
}

/// Reads a `struct sched_param` (one `int`).
fn read_param(param: u64) -> Result<i32, Errno> {
    if param == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(crate::syscall::user().read_u32(UserPtr::new(param)?)? as i32)
}

/// Linux's `check_same_owner` (or `CAP_SYS_NICE`): whether the caller
/// may change `target`'s scheduling at all (`EPERM`); `Ok(true)` when the
/// caller is privileged, so that no limit applies either.
fn may_change(target: &Thread) -> Result<bool, Errno> {
    let euid = {
        let me = super::current_process();
        let creds = me.creds.lock();
        if creds.privileged() {
            return Ok(true);
        }
        creds.euid
    };
    let theirs = target.process.creds.lock();
    if euid == theirs.euid || euid == theirs.ruid {
        Ok(false)
    } else {
        Err(Errno::EPERM)
    }
}

/// Checks a change of `target`'s scheduling to `new` as Linux does for
/// the caller: ownership, then the target's real-time and nice limits.
fn check_change(target: &Thread, task: &Task, new: SchedParams) -> Result<(), Errno> {
    if may_change(target)? {
        return Ok(());
    }
    let limits = *target.process.limits.lock();
    let rtprio = limits.get(Resource::Rtprio).cur;
    let nice = limits.get(Resource::Nice).cur;
    abi::unprivileged_change(task.sched_params(), new, rtprio, nice)
}

fn apply(task: &Arc<Task>, params: SchedParams) {
    sched::set_params(task, params);
    crate::futex::priority_changed(task);
}

/// `sched_setscheduler(pid, policy, param)`.
pub fn set_scheduler(pid: i32, policy: i32, param: u64) -> Result<u64, Errno> {
    if policy < 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let priority = read_param(param)?;
    let (thread, task) = target_of(pid)?;
    let new = SchedParams::new(policy as u32, priority)?;
    check_change(&thread, &task, new)?;
    apply(&task, new);
    Ok(0)
}

/// `sched_setparam(pid, param)`: the same policy, another priority.
pub fn set_param(pid: i32, param: u64) -> Result<u64, Errno> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let priority = read_param(param)?;
    let (thread, task) = target_of(pid)?;
    let new = task.sched_params().with_priority(priority)?;
    check_change(&thread, &task, new)?;
    apply(&task, new);
    Ok(0)
}

/// `sched_getscheduler(pid)`: the policy, with `SCHED_RESET_ON_FORK`.
pub fn get_scheduler(pid: i32) -> Result<u64, Errno> {
    Ok(u64::from(task_of(pid)?.sched_params().policy_word()))
}

/// `sched_getparam(pid, param)`: the real-time priority (0 for the other
/// policies).
pub fn get_param(pid: i32, param: u64) -> Result<u64, Errno> {
    if param == 0 {
        return Err(Errno::EINVAL);
    }
    let priority = task_of(pid)?.sched_params().priority;
    crate::syscall::copy_out_at(param, &priority.to_le_bytes())?;
    Ok(0)
}

/// `sched_get_priority_max(policy)` (`max`) or `_min`.
pub fn priority_limit(policy: i32, max: bool) -> Result<u64, Errno> {
    let (low, high) = abi::priority_range(policy as u32)?;
    Ok(u64::from(if max { high } else { low }))
}

/// `sched_rr_get_interval(pid, tp)`: the time slice of a `SCHED_RR` or
/// time-sharing thread, 0 for `SCHED_FIFO`.
pub fn rr_interval(pid: i32, out: u64) -> Result<u64, Errno> {
    let params = task_of(pid)?.sched_params();
    let slice_ms = if params.policy == Policy::Fifo { 0 } else { sched::TIME_SLICE_MS };
    crate::syscall::copy_out_at(out, &Timespec::from_nanos(slice_ms * 1_000_000).to_bytes())?;
    Ok(0)
}

/// `sched_setaffinity(pid, len, mask)`: the mask (its first `len` bytes,
/// zero beyond), kept within the CPUs the board has. As Linux, a mask
/// without an online CPU is `EINVAL`. The thread never runs outside its
/// mask from the return on (the caller, if it runs elsewhere, has moved).
/// Another user's thread is `EPERM`.
pub fn set_affinity(pid: i32, len: u32, mask: u64) -> Result<u64, Errno> {
    let mut bytes = [0u8; CPU_MASK_SIZE];
    let take = (len as usize).min(CPU_MASK_SIZE);
    crate::syscall::user().read(UserSlice::new(mask, take as u64)?, &mut bytes[..take])?;
    let target = thread_of(pid)?;
    may_change(&target)?;
    let wanted = u64::from_le_bytes(bytes) & crate::smp::present_mask();
    if wanted & crate::smp::online_mask() == 0 {
        return Err(Errno::EINVAL);
    }
    target.set_affinity(wanted);
    Ok(0)
}

/// `sched_getaffinity(pid, len, mask)`: the thread's CPUs that are
/// online; the bytes written.
pub fn get_affinity(pid: i32, len: u32, mask: u64) -> Result<u64, Errno> {
    let size = abi::affinity_len(len)?;
    let cpus = thread_of(pid)?.affinity() & crate::smp::online_mask();
    crate::syscall::copy_out_at(mask, &cpus.to_le_bytes()[..size])?;
    Ok(size as u64)
}

/// `set_robust_list(head, len)`: `len` must be the size of the arm64
/// `struct robust_list_head` (`EINVAL`).
pub fn set_robust_list(head: u64, len: u64) -> Result<u64, Errno> {
    if len != aspen_abi::futex::ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    thread::with_current(|me| me.set_robust_list(head));
    Ok(0)
}

/// `get_robust_list(pid, head_ptr, len_ptr)`: the length, then the head.
pub fn get_robust_list(pid: i32, head_ptr: u64, len_ptr: u64) -> Result<u64, Errno> {
    let head = thread_of(pid)?.robust_list();
    crate::syscall::copy_out_at(len_ptr, &aspen_abi::futex::ROBUST_LIST_HEAD_SIZE.to_le_bytes())?;
    crate::syscall::copy_out_at(head_ptr, &head.to_le_bytes())?;
    Ok(0)
}
