//! Scheduling policies as `sched_setscheduler(2)` and its relatives name
//! and check them (Linux 6.1, `kernel/sched/core.c`).

use crate::Errno;

/// `SCHED_RESET_ON_FORK`: or-ed into a policy, children start with the
/// default policy.
pub const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;
/// The best real-time priority (`sched_get_priority_max` of FIFO and RR).
pub const MAX_RT_PRIORITY: u32 = 99;
/// The size in bytes of the CPU masks `sched_getaffinity` writes: up to
/// 64 CPUs, a whole `unsigned long` (the kernel's `nr_cpu_ids` rounded up).
pub const CPU_MASK_SIZE: usize = 8;

/// A scheduling policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// `SCHED_OTHER` (0): time sharing.
    Other,
    /// `SCHED_FIFO` (1): real time, no time slice.
    Fifo,
    /// `SCHED_RR` (2): real time, round robin with a time slice.
    RoundRobin,
    /// `SCHED_BATCH` (3): time sharing, for batch work.
    Batch,
    /// `SCHED_IDLE` (5): below every other policy.
    Idle,
}

impl Policy {
    /// The policy numbered `raw`; `EINVAL` for others (`SCHED_DEADLINE`
    /// cannot be set through `sched_setscheduler`'s parameters either).
    pub const fn from_raw(raw: u32) -> Result<Policy, Errno> {
        Ok(match raw {
            0 => Policy::Other,
            1 => Policy::Fifo,
            2 => Policy::RoundRobin,
            3 => Policy::Batch,
            5 => Policy::Idle,
            _ => return Err(Errno::EINVAL),
        })
    }

    /// Its number.
    pub const fn number(self) -> u32 {
        match self {
            Policy::Other => 0,
            Policy::Fifo => 1,
            Policy::RoundRobin => 2,
            Policy::Batch => 3,
            Policy::Idle => 5,
        }
    }

    /// Whether it is a real-time policy (priorities 1-99).
    pub const fn is_realtime(self) -> bool {
        matches!(self, Policy::Fifo | Policy::RoundRobin)
    }

    /// `sched_get_priority_min` and `_max` of it.
    pub const fn priority_range(self) -> (u32, u32) {
        if self.is_realtime() {
            (1, MAX_RT_PRIORITY)
        } else {
            (0, 0)
        }
    }
}

/// `sched_get_priority_min`/`_max` of the raw policy `raw`: `EINVAL` for
/// an unknown one (`SCHED_DEADLINE`, 6, has 0/0).
pub const fn priority_range(raw: u32) -> Result<(u32, u32), Errno> {
    if raw == 6 {
        return Ok((0, 0));
    }
    match Policy::from_raw(raw) {
        Ok(policy) => Ok(policy.priority_range()),
        Err(e) => Err(e),
    }
}

/// A thread's scheduling: its policy, real-time priority and reset flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedParams {
    /// The policy.
    pub policy: Policy,
    /// 1-99 for FIFO and RR, 0 otherwise.
    pub priority: u32,
    /// `SCHED_RESET_ON_FORK`.
    pub reset_on_fork: bool,
}

impl SchedParams {
    /// What threads get unless they ask for another: `SCHED_OTHER`.
    pub const DEFAULT: SchedParams = SchedParams { policy: Policy::Other, priority: 0, reset_on_fork: false };

    /// `sched_setscheduler(policy, priority)` checked as Linux's
    /// `__sched_setscheduler`: `policy` may carry `SCHED_RESET_ON_FORK`; a
    /// real-time policy needs a priority in 1-99, the others 0 (`EINVAL`).
    pub const fn new(policy: u32, priority: i32) -> Result<SchedParams, Errno> {
        let reset_on_fork = policy & SCHED_RESET_ON_FORK != 0;
        let policy = match Policy::from_raw(policy & !SCHED_RESET_ON_FORK) {
            Ok(policy) => policy,
            Err(e) => return Err(e),
        };
        // Linux keeps the priority unsigned: a negative one is too big.
        let priority = priority as u32;
        if priority > MAX_RT_PRIORITY || policy.is_realtime() != (priority != 0) {
            return Err(Errno::EINVAL);
        }
        Ok(SchedParams { policy, priority, reset_on_fork })
    }

    /// `sched_setparam(priority)`: the same policy with another priority.
    pub const fn with_priority(self, priority: i32) -> Result<SchedParams, Errno> {
        let mut policy = self.policy.number();
        if self.reset_on_fork {
            policy |= SCHED_RESET_ON_FORK;
        }
        SchedParams::new(policy, priority)
    }

    /// What `sched_getscheduler` returns.
    pub const fn policy_word(self) -> u32 {
        self.policy.number() | if self.reset_on_fork { SCHED_RESET_ON_FORK } else { 0 }
    }

    /// What a child made by `clone` gets: the same, or with
    /// `SCHED_RESET_ON_FORK` a real-time policy becomes `SCHED_OTHER` (and
    /// the flag is not inherited).
    pub const fn for_child(self) -> SchedParams {
        if !self.reset_on_fork {
            return self;
        }
        if self.policy.is_realtime() {
            SchedParams::DEFAULT
        } else {
            SchedParams { reset_on_fork: false, ..self }
        }
    }
}

/// Whether a caller without privilege (not root: no `CAP_SYS_NICE`) may
/// change a thread's scheduling from `current` to `new`, as Linux 6.1's
/// `__sched_setscheduler` decides, given the target's `RLIMIT_RTPRIO` and
/// `RLIMIT_NICE` (soft limits): `EPERM` when
/// - `new` is real time and the policy changes while `RLIMIT_RTPRIO` is 0;
/// - `new` raises the real-time priority above both the current one and
///   `RLIMIT_RTPRIO`;
/// - the thread leaves `SCHED_IDLE` and `RLIMIT_NICE` does not allow its
///   nice value (0: Aspen keeps no other) — `20 - nice` must not exceed it;
/// - `SCHED_RESET_ON_FORK` would be cleared.
///
/// Lowering a priority, or going from real time to time sharing, is
/// always allowed. Whether the caller owns the thread is checked apart.
pub const fn unprivileged_change(current: SchedParams, new: SchedParams, rtprio: u64, nice: u64) -> Result<(), Errno> {
    if new.policy.is_realtime() {
        if !matches!(
            (current.policy, new.policy),
            (Policy::Fifo, Policy::Fifo) | (Policy::RoundRobin, Policy::RoundRobin)
        ) && rtprio == 0
        {
            return Err(Errno::EPERM);
        }
        if new.priority > current.priority && new.priority as u64 > rtprio {
            return Err(Errno::EPERM);
        }
    }
    // can_nice(): the nice value as 1-40 (20 - nice, nice being 0).
    if matches!(current.policy, Policy::Idle) && !matches!(new.policy, Policy::Idle) && 20 > nice {
        return Err(Errno::EPERM);
    }
    if current.reset_on_fork && !new.reset_on_fork {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// `sched_getaffinity`'s check of the buffer length `len` (bytes): at
/// least one CPU's bit and a whole number of `unsigned long`s (`EINVAL`);
/// the bytes written (the mask size, or `len` if smaller).
pub const fn affinity_len(len: u32) -> Result<usize, Errno> {
    if len == 0 || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    Ok(if (len as usize) < CPU_MASK_SIZE { len as usize } else { CPU_MASK_SIZE })
}

/// Writes the CPUs of `mask` (bit n: CPU n) as Linux's CPU lists in
/// `/sys/devices/system/cpu` print them: runs as `first-last`, single CPUs
/// alone, separated by commas (`0-3`, `0,2-3`; nothing for no CPU).
pub fn write_cpu_list(mask: u64, out: &mut impl core::fmt::Write) -> core::fmt::Result {
    let mut rest = mask;
    let mut first_run = true;
    while rest != 0 {
        let start = rest.trailing_zeros();
        let run = (rest >> start).trailing_ones();
        let end = start + run - 1;
        if !first_run {
            out.write_char(',')?;
        }
        first_run = false;
        if run == 1 {
            write!(out, "{start}")?;
        } else {
            write!(out, "{start}-{end}")?;
        }
        rest &= !(u64::MAX >> (63 - end) & (u64::MAX << start));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_list(mask: u64) -> String {
        let mut out = String::new();
        write_cpu_list(mask, &mut out).unwrap();
        out
    }

    #[test]
    fn cpu_lists_are_printed_as_linux_prints_them() {
        assert_eq!(cpu_list(0b1), "0");
        assert_eq!(cpu_list(0b1111), "0-3");
        assert_eq!(cpu_list(0b1101), "0,2-3");
        assert_eq!(cpu_list(0b1010), "1,3");
        assert_eq!(cpu_list(0), "");
        assert_eq!(cpu_list(u64::MAX), "0-63");
        assert_eq!(cpu_list(1 << 63 | 1), "0,63");
    }

    #[test]
    fn policies_and_priorities_are_checked_as_linux() {
        assert_eq!(
            SchedParams::new(1, 50),
            Ok(SchedParams { policy: Policy::Fifo, priority: 50, reset_on_fork: false })
        );
        assert_eq!(
            SchedParams::new(2 | SCHED_RESET_ON_FORK, 99).map(SchedParams::policy_word),
            Ok(2 | SCHED_RESET_ON_FORK)
        );
        for (policy, priority) in [(1, 0), (2, 100), (1, -1), (0, 1), (3, 5), (5, -1), (4, 0), (6, 0), (7, 0)] {
            assert_eq!(SchedParams::new(policy, priority), Err(Errno::EINVAL), "{policy} {priority}");
        }
        for policy in [0, 3, 5] {
            assert!(SchedParams::new(policy, 0).is_ok());
        }
        let fifo = SchedParams::new(1, 10).unwrap();
        assert_eq!(fifo.with_priority(20).map(|p| p.priority), Ok(20));
        assert_eq!(fifo.with_priority(0), Err(Errno::EINVAL));
        assert_eq!(SchedParams::DEFAULT.with_priority(1), Err(Errno::EINVAL));
        assert_eq!(priority_range(1), Ok((1, 99)));
        assert_eq!(priority_range(2), Ok((1, 99)));
        for policy in [0, 3, 5, 6] {
            assert_eq!(priority_range(policy), Ok((0, 0)));
        }
        assert_eq!(priority_range(4), Err(Errno::EINVAL));
        assert_eq!(priority_range(u32::MAX), Err(Errno::EINVAL));
    }

    #[test]
    fn children_inherit_unless_reset_on_fork() {
        let rr = SchedParams::new(2, 7).unwrap();
        assert_eq!(rr.for_child(), rr);
        let reset = SchedParams::new(2 | SCHED_RESET_ON_FORK, 7).unwrap();
        assert_eq!(reset.for_child(), SchedParams::DEFAULT);
        let batch = SchedParams::new(3 | SCHED_RESET_ON_FORK, 0).unwrap();
        assert_eq!(batch.for_child(), SchedParams { policy: Policy::Batch, priority: 0, reset_on_fork: false });
    }

    #[test]
    fn unprivileged_callers_are_held_to_rlimit_rtprio() {
        let other = SchedParams::DEFAULT;
        let fifo = |p| SchedParams::new(1, p).unwrap();
        let rr = |p| SchedParams::new(2, p).unwrap();
        // RLIMIT_RTPRIO 0 (the default): no real time at all.
        assert_eq!(unprivileged_change(other, fifo(1), 0, 0), Err(Errno::EPERM));
        // Up to the limit, from time sharing or within real time.
        assert_eq!(unprivileged_change(other, fifo(10), 10, 0), Ok(()));
        assert_eq!(unprivileged_change(other, fifo(11), 10, 0), Err(Errno::EPERM));
        assert_eq!(unprivileged_change(fifo(5), rr(10), 10, 0), Ok(()));
        assert_eq!(unprivileged_change(fifo(5), fifo(11), 10, 0), Err(Errno::EPERM));
        // A thread above its limit (made so by root) may stay or go down,
        // but a change of real-time policy needs a limit above 0.
        assert_eq!(unprivileged_change(fifo(50), fifo(50), 0, 0), Ok(()));
        assert_eq!(unprivileged_change(fifo(50), fifo(20), 0, 0), Ok(()));
        assert_eq!(unprivileged_change(fifo(50), rr(20), 0, 0), Err(Errno::EPERM));
        assert_eq!(unprivileged_change(fifo(50), other, 0, 0), Ok(()));
        // Leaving SCHED_IDLE needs RLIMIT_NICE 20 (nice 0).
        let idle = SchedParams::new(5, 0).unwrap();
        assert_eq!(unprivileged_change(idle, other, 0, 19), Err(Errno::EPERM));
        assert_eq!(unprivileged_change(idle, other, 0, 20), Ok(()));
        assert_eq!(unprivileged_change(other, idle, 0, 0), Ok(()));
        // SCHED_RESET_ON_FORK can be set but not cleared.
        let reset = SchedParams::new(SCHED_RESET_ON_FORK, 0).unwrap();
        assert_eq!(unprivileged_change(other, reset, 0, 0), Ok(()));
        assert_eq!(unprivileged_change(reset, other, 0, 0), Err(Errno::EPERM));
    }

    #[test]
    fn affinity_lengths() {
        assert_eq!(affinity_len(8), Ok(8));
        assert_eq!(affinity_len(128), Ok(8));
        for len in [0, 4, 12, 7] {
            assert_eq!(affinity_len(len), Err(Errno::EINVAL));
        }
    }
}
