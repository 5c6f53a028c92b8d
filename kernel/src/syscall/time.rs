//! Clocks and sleeps: `clock_gettime`, `clock_getres`, `gettimeofday`,
//! `nanosleep` and `clock_nanosleep`, the interval timer (`setitimer`,
//! `getitimer`), POSIX timers (`timer_*`), and `getcpu`.
//!
//! Every clock counts from reset (there is no real-time clock to read, so
//! `CLOCK_REALTIME` is the monotonic time too). A sleep blocks until its
//! deadline in counter ticks; a thread interrupted before it ends the
//! sleep with `EINTR` and, for a relative sleep, the time that was left.

use aspen_abi::syscall::{ClockId, Itimerval, Timespec};
use aspen_abi::timer::{Itimerspec, SigEvent};
use aspen_abi::uaccess::UserSlice;
use aspen_mm::errno::Errno;

use super::{copy_in, copy_out_at, frequency, read_timespec, SysResult};
use crate::arch::timer;
use crate::process::{self, itimer, posix_timer, thread};
use crate::task::sched;

/// `TIMER_ABSTIME`: the request is a time on the clock, not a duration.
const TIMER_ABSTIME: u64 = 1;

pub(super) fn clock_gettime(clock: u64, out: u64) -> SysResult {
    ClockId::from_raw(clock as i32).map_err(|_| Errno::EINVAL)?;
    let now = Timespec::from_ticks(timer::ticks(), frequency());
    copy_out_at(out, &now.to_bytes())?;
    Ok(0)
}

/// The resolution of every clock: 1 ns, as Linux reports for its clocks
/// when high-resolution timers are on (programs such as cyclictest check
/// for it). Timers here expire at the counter tick their deadline names
/// (16 ns on QEMU virt), with no periodic tick in between.
pub(super) fn clock_getres(clock: u64, out: u64) -> SysResult {
    ClockId::from_raw(clock as i32).map_err(|_| Errno::EINVAL)?;
    if out != 0 {
        copy_out_at(out, &Timespec::from_nanos(1).to_bytes())?;
    }
    Ok(0)
}

/// `gettimeofday(tv, tz)`: the time as a `struct timeval`; the time zone,
/// if asked for, is UTC with no daylight saving.
pub(super) fn gettimeofday(tv: u64, tz: u64) -> SysResult {
    if tv != 0 {
        let now = Timespec::from_ticks(timer::ticks(), frequency());
        let micros = now.as_nanos() % aspen_abi::syscall::NANOS_PER_SECOND / 1000;
        let mut timeval = [0u8; 16];
        timeval[..8].copy_from_slice(&(now.as_nanos() / aspen_abi::syscall::NANOS_PER_SECOND).to_le_bytes());
        timeval[8..].copy_from_slice(&micros.to_le_bytes());
        copy_out_at(tv, &timeval)?;
    }
    if tz != 0 {
        copy_out_at(tz, &[0u8; 8])?;
    }
    Ok(0)
}

pub(super) fn nanosleep(request: u64, remain: u64) -> SysResult {
    let duration = read_timespec(request)?.to_ticks(frequency()).map_err(|_| Errno::EINVAL)?;
    sleep_for(duration, remain)
}

/// `clock_nanosleep(clock, flags, request, remain)`: the clocks a sleep can
/// follow are the real-time, monotonic and boot-time ones (the same time
/// here); the CPU-time clocks and the raw and coarse monotonic ones cannot
/// be slept on, as in Linux.
pub(super) fn clock_nanosleep(clock: u64, flags: u64, request: u64, remain: u64) -> SysResult {
    match ClockId::from_raw(clock as i32).map_err(|_| Errno::EINVAL)? {
        ClockId::Realtime | ClockId::Monotonic | ClockId::Boottime => {}
        ClockId::ThreadCputime => return Err(Errno::EINVAL),
        _ => return Err(Errno::EOPNOTSUPP),
    }
    let ticks = read_timespec(request)?.to_ticks(frequency()).map_err(|_| Errno::EINVAL)?;
    if flags & TIMER_ABSTIME != 0 {
        // An absolute sleep reports nothing left when interrupted.
        sleep_until(ticks).map(|()| 0)
    } else {
        sleep_for(ticks, remain)
    }
}

/// Sleeps `duration` ticks; when interrupted, writes what was left to
/// `remain` (if not null) and fails with `EINTR`.
fn sleep_for(duration: u64, remain: u64) -> SysResult {
    let deadline = timer::ticks().saturating_add(duration);
    match sleep_until(deadline) {
        Err(Errno::EINTR) if remain != 0 => {
            let left = Timespec::from_ticks(deadline.saturating_sub(timer::ticks()), frequency());
            copy_out_at(remain, &left.to_bytes())?;
            Err(Errno::EINTR)
        }
        result => result.map(|()| 0),
    }
}

/// Blocks until the counter reaches `deadline`, or `EINTR` when the thread
/// is interrupted first (by a signal or its process ending; a stop only
/// pauses the sleep).
fn sleep_until(deadline: u64) -> Result<(), Errno> {
    let me = thread::current().expect("sleep from a kernel thread");
    while timer::ticks() < deadline {
        while me.interrupted() {
            // A stop parks the sleep, which then goes on to its deadline.
            if !me.park_for_stop() {
                return Err(Errno::EINTR);
            }
        }
        sched::block(Some(deadline));
    }
    Ok(())
}

/// `setitimer(which, new, old)`: a null `new` disarms (as Linux 6.1 takes
/// it, for old programs).
pub(super) fn setitimer(which: u64, new: u64, old: u64) -> SysResult {
    let new = match new {
        0 => Itimerval::default(),
        addr => {
            let raw = copy_in(UserSlice::new(addr, Itimerval::SIZE as u64)?)?;
            Itimerval::from_bytes(&raw.try_into().map_err(|_| Errno::EFAULT)?)?
        }
    };
    let previous = itimer::set(&process::current_process(), which, new)?;
    if old != 0 {
        copy_out_at(old, &previous.to_bytes())?;
    }
    Ok(0)
}

pub(super) fn getitimer(which: u64, out: u64) -> SysResult {
    let value = itimer::get(&process::current_process(), which)?;
    copy_out_at(out, &value.to_bytes())?;
    Ok(0)
}

/// `getcpu(cpu, node, cache)`: the core the caller runs on, one memory
/// node.
pub(super) fn getcpu(cpu: u64, node: u64) -> SysResult {
    let core = crate::smp::this_cpu_id() as u32;
    for (addr, value) in [(cpu, core), (node, 0)].into_iter().filter(|&(addr, _)| addr != 0) {
        copy_out_at(addr, &value.to_le_bytes())?;
    }
    Ok(0)
}

/// `timer_create(clock, sevp, timerid)`: a timer that cannot be reported
/// (its id not written) is deleted again: no side effect.
pub(super) fn timer_create(clock: u64, event: u64, out: u64) -> SysResult {
    let event = match event {
        0 => None,
        addr => {
            let raw = copy_in(UserSlice::new(addr, SigEvent::SIZE as u64)?)?;
            Some(SigEvent::from_bytes(&raw.try_into().map_err(|_| Errno::EFAULT)?)?)
        }
    };
    let process = process::current_process();
    let id = posix_timer::create(&process, clock as i32, event)?;
    if let Err(errno) = copy_out_at(out, &id.to_le_bytes()) {
        let _ = posix_timer::delete(&process, id);
        return Err(errno);
    }
    Ok(0)
}

/// `timer_settime(id, flags, new, old)`.
pub(super) fn timer_settime(id: u64, flags: u64, new: u64, old: u64) -> SysResult {
    let raw = copy_in(UserSlice::new(new, Itimerspec::SIZE as u64)?)?;
    let new = Itimerspec::from_bytes(&raw.try_into().map_err(|_| Errno::EFAULT)?)?;
    let previous = posix_timer::settime(&process::current_process(), id as i32, flags, new)?;
    if old != 0 {
        copy_out_at(old, &previous.to_bytes())?;
    }
    Ok(0)
}

pub(super) fn timer_gettime(id: u64, out: u64) -> SysResult {
    let setting = posix_timer::gettime(&process::current_process(), id as i32)?;
    copy_out_at(out, &setting.to_bytes())?;
    Ok(0)
}

pub(super) fn timer_getoverrun(id: u64) -> SysResult {
    posix_timer::getoverrun(&process::current_process(), id as i32).map(|n| n as u64)
}

pub(super) fn timer_delete(id: u64) -> SysResult {
    posix_timer::delete(&process::current_process(), id as i32).map(|()| 0)
}
