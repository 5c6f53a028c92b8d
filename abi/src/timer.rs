//! POSIX per-process timers (`timer_create` and friends): `struct sigevent`
//! as the kernel reads it, `struct itimerspec`, and the checks Linux makes.

use crate::signal::{SigNo, NSIG};
use crate::syscall::Timespec;
use crate::Errno;

/// `SIGEV_SIGNAL`: a signal to the process.
pub const SIGEV_SIGNAL: i32 = 0;
/// `SIGEV_NONE`: nothing (the timer is only read).
pub const SIGEV_NONE: i32 = 1;
/// `SIGEV_THREAD`: the C library's; to the kernel, a signal to the process.
pub const SIGEV_THREAD: i32 = 2;
/// `SIGEV_THREAD_ID`: a signal to one thread (`sigev_notify_thread_id`).
pub const SIGEV_THREAD_ID: i32 = 4;
/// `si_code` of a timer's signal.
pub const SI_TIMER: i32 = -2;
/// `TIMER_ABSTIME`: `timer_settime`'s value is a time on the clock.
pub const TIMER_ABSTIME: u64 = 1;

/// How a timer tells its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// Nothing.
    None,
    /// `signo` to the process.
    Process(SigNo),
    /// `signo` to thread `tid` (of the caller's process: the kernel checks).
    Thread(SigNo, u32),
}

/// `struct sigevent` as the kernel reads it (64 bytes): the value the
/// signal carries, and how to notify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigEvent {
    /// `sigev_value`: given to the handler in `si_value`.
    pub value: u64,
    /// What to do at expiry.
    pub notify: Notify,
}

impl SigEvent {
    /// Its size in user memory.
    pub const SIZE: usize = 64;

    /// Reads and checks one, as Linux's `good_sigevent`: a signal number in
    /// 1..=64 unless `SIGEV_NONE`; any other `sigev_notify` is `EINVAL`.
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Result<SigEvent, Errno> {
        let int = |i: usize| i32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let value = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
        let (signo, notify, tid) = (int(8), int(12), int(16));
        let signal = || {
            u64::try_from(signo)
                .ok()
                .filter(|&s| s >= 1 && s <= u64::from(NSIG))
                .and_then(SigNo::new)
                .ok_or(Errno::EINVAL)
        };
        let notify = match notify {
            SIGEV_NONE => Notify::None,
            SIGEV_SIGNAL | SIGEV_THREAD => Notify::Process(signal()?),
            SIGEV_THREAD_ID => Notify::Thread(signal()?, u32::try_from(tid).map_err(|_| Errno::EINVAL)?),
            _ => return Err(Errno::EINVAL),
        };
        Ok(SigEvent { value, notify })
    }
}

/// `struct itimerspec`: the reload interval and the first expiry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Itimerspec {
    /// `it_interval` (zero: once).
    pub interval: Timespec,
    /// `it_value` (zero: disarmed).
    pub value: Timespec,
}

impl Itimerspec {
    /// Its size in user memory.
    pub const SIZE: usize = 32;

    /// Reads one, checked as `timer_settime` does (`EINVAL`).
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Result<Itimerspec, Errno> {
        let half = |i: usize| -> [u8; Timespec::SIZE] { bytes[i..i + Timespec::SIZE].try_into().unwrap_or_default() };
        Ok(Itimerspec {
            interval: Timespec::from_bytes(half(0)).validated()?,
            value: Timespec::from_bytes(half(Timespec::SIZE)).validated()?,
        })
    }

    /// Its bytes in user memory.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        bytes[..Timespec::SIZE].copy_from_slice(&self.interval.to_bytes());
        bytes[Timespec::SIZE..].copy_from_slice(&self.value.to_bytes());
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(value: u64, signo: i32, notify: i32, tid: i32) -> [u8; SigEvent::SIZE] {
        let mut raw = [0u8; SigEvent::SIZE];
        raw[..8].copy_from_slice(&value.to_le_bytes());
        raw[8..12].copy_from_slice(&signo.to_le_bytes());
        raw[12..16].copy_from_slice(&notify.to_le_bytes());
        raw[16..20].copy_from_slice(&tid.to_le_bytes());
        raw
    }

    #[test]
    fn sigevents_are_checked_as_linux_does() {
        let usr1 = SigNo::new(10).unwrap();
        assert_eq!(
            SigEvent::from_bytes(&event(7, 10, SIGEV_SIGNAL, 0)),
            Ok(SigEvent { value: 7, notify: Notify::Process(usr1) })
        );
        assert_eq!(SigEvent::from_bytes(&event(0, 10, SIGEV_THREAD, 0)).unwrap().notify, Notify::Process(usr1));
        assert_eq!(SigEvent::from_bytes(&event(0, 0, SIGEV_NONE, 0)).unwrap().notify, Notify::None);
        assert_eq!(
            SigEvent::from_bytes(&event(0, 34, SIGEV_THREAD_ID, 42)).unwrap().notify,
            Notify::Thread(SigNo::new(34).unwrap(), 42)
        );
        for (signo, notify) in [(0, SIGEV_SIGNAL), (65, SIGEV_SIGNAL), (-1, SIGEV_THREAD_ID), (10, 3), (10, 8)] {
            assert_eq!(SigEvent::from_bytes(&event(0, signo, notify, 1)), Err(Errno::EINVAL), "{signo} {notify}");
        }
    }

    #[test]
    fn itimerspecs_round_trip_and_refuse_bad_times() {
        let spec = Itimerspec { interval: Timespec::from_nanos(1_500_000), value: Timespec::from_nanos(2_000_000_000) };
        assert_eq!(Itimerspec::from_bytes(&spec.to_bytes()), Ok(spec));
        let mut bad = spec.to_bytes();
        bad[24..32].copy_from_slice(&1_000_000_000i64.to_le_bytes());
        assert_eq!(Itimerspec::from_bytes(&bad), Err(Errno::EINVAL));
    }
}
