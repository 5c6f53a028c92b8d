//! Job control: stopping and continuing a whole process (Linux's group
//! stop), and what its parent learns of it.
//!
//! A stop signal whose action is the default one, taken by any thread,
//! starts a stop of the whole process ([`Process::begin_stop`]): every
//! thread gets the `WORK_STOP` bit and is interrupted, so that it leaves
//! whatever it waits for (its call restarts later, as after any signal)
//! and parks on its way back to user space ([`Process::park`], from
//! `signal::deliver`). When the last thread parks the process is stopped:
//! its parent gets `SIGCHLD` (`CLD_STOPPED`, unless `SA_NOCLDSTOP`) and a
//! report for `WUNTRACED`. `SIGCONT`, as it is sent and whatever its
//! action or mask, ends the stop ([`Process::resume`]): the threads leave
//! their park, the parent gets `CLD_CONTINUED` and a report for
//! `WCONTINUED`. `SIGKILL` (and anything else that ends the process)
//! ends parked threads like any waiting one. Timed sleeps park where they
//! wait instead ([`Thread::park_for_stop`]) and go on to their deadline.
//!
//! Lock order: a process's `job` before its `threads`.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use aspen_abi::signal::{SaFlags, SigInfo, SigNo, Signal, CLD_CONTINUED, CLD_STOPPED, SIG_IGN, SI_KERNEL};
use aspen_abi::wait::WaitStatus;

use super::signal::WORK_STOP;
use super::thread::Thread;
use super::Process;
use crate::task::{sched, Pid};

/// A process's job-control state.
#[derive(Default)]
pub(super) struct JobState {
    /// The signal of the stop in progress or in force.
    stop: Option<SigNo>,
    /// Counts the stops begun, so that a thread parked for an earlier one
    /// (continued, but not yet running) joins the next one anew.
    generation: u64,
    /// The threads parked for the current stop.
    parked: usize,
    /// Whether every thread is parked: the process is stopped.
    stopped: bool,
    /// What its parent's `wait` has yet to be told.
    report: Option<JobReport>,
}

/// A change of a child's state that a wait with `WUNTRACED` or
/// `WCONTINUED` reports once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobReport {
    /// Stopped by this signal.
    Stopped(SigNo),
    /// Continued after a stop.
    Continued,
}

impl JobReport {
    /// The wait status that tells it.
    pub fn status(self) -> WaitStatus {
        match self {
            JobReport::Stopped(signo) => WaitStatus::stopped(signo),
            JobReport::Continued => WaitStatus::CONTINUED,
        }
    }

    /// `waitid`'s `si_code` and `si_status` for it.
    pub fn code_and_status(self) -> (i32, i32) {
        match self {
            JobReport::Stopped(signo) => (CLD_STOPPED, signo.number() as i32),
            JobReport::Continued => (CLD_CONTINUED, i32::from(Signal::Cont.number())),
        }
    }
}

impl Process {
    /// Whether the process is stopped (`T` in `/proc/PID/stat` and
    /// "T (stopped)" in `/proc/PID/status`).
    pub fn is_stopped(&self) -> bool {
        self.job.lock().stopped
    }

    /// Starts a stop of every thread by `signo` (a thread of the process
    /// took it); a stop in progress goes on as it is.
    pub(super) fn begin_stop(&self, signo: SigNo) {
        {
            let mut job = self.job.lock();
            if job.stop.is_some() {
                return;
            }
            job.stop = Some(signo);
            job.generation += 1;
            job.parked = 0;
            job.stopped = false;
        }
        for thread in self.threads.lock().values() {
            thread.work.fetch_or(WORK_STOP, Ordering::Relaxed);
            thread.interrupt();
        }
    }

    /// A new thread joins a stop in progress.
    pub(super) fn join_stop(&self, thread: &Thread) {
        if self.job.lock().stop.is_some() {
            thread.work.fetch_or(WORK_STOP, Ordering::Relaxed);
        }
    }

    /// Parks the current thread `me` for the stop in progress until the
    /// stop ends (`SIGCONT`) or the process must end; the last thread to
    /// park makes the process stopped.
    pub(super) fn park(&self, me: &Thread) {
        me.work.fetch_and(!WORK_STOP, Ordering::Relaxed);
        let (generation, stopped_by) = {
            let mut job = self.job.lock();
            if job.stop.is_none() {
                return;
            }
            job.parked += 1;
            (job.generation, self.complete_stop(&mut job))
        };
        if let Some(signo) = stopped_by {
            self.notify_parent_of_job(JobReport::Stopped(signo).code_and_status());
        }
        let parked_still = || {
            let job = self.job.lock();
            job.stop.is_some() && job.generation == generation
        };
        while parked_still() && !self.must_end(me) {
            sched::block(None);
        }
        let mut job = self.job.lock();
        if job.stop.is_some() && job.generation == generation {
            // Leaving to end: no longer counts as parked.
            job.parked -= 1;
        }
    }

    /// Makes the process stopped if every thread is parked: the signal
    /// that stopped it.
    fn complete_stop(&self, job: &mut JobState) -> Option<SigNo> {
        let signo = job.stop?;
        if job.stopped || job.parked < self.thread_count() {
            return None;
        }
        job.stopped = true;
        job.report = Some(JobReport::Stopped(signo));
        Some(signo)
    }

    /// A thread ended during a stop: the others may all be parked now.
    pub(super) fn thread_left_stop(&self) {
        let stopped_by = self.complete_stop(&mut self.job.lock());
        if let Some(signo) = stopped_by {
            self.notify_parent_of_job(JobReport::Stopped(signo).code_and_status());
        }
    }

    /// `SIGCONT` is being sent: a stop in progress or in force ends, and
    /// the parent learns that the process continued (`CLD_CONTINUED`; as
    /// Linux, `CLD_STOPPED` with status 0 when it had not fully stopped).
    pub(super) fn resume(&self) {
        let was_stopped = {
            let mut job = self.job.lock();
            if job.stop.take().is_none() {
                return;
            }
            job.parked = 0;
            job.report = Some(JobReport::Continued);
            core::mem::take(&mut job.stopped)
        };
        for thread in self.threads.lock().values() {
            thread.work.fetch_and(!WORK_STOP, Ordering::Relaxed);
            thread.interrupt();
        }
        let notice = if was_stopped { JobReport::Continued.code_and_status() } else { (CLD_STOPPED, 0) };
        self.notify_parent_of_job(notice);
    }

    /// Its report for a wait that asks for stopped (`untraced`) or
    /// continued children, taken unless `keep` (`WNOWAIT`).
    pub(super) fn job_report(&self, untraced: bool, continued: bool, keep: bool) -> Option<JobReport> {
        let mut job = self.job.lock();
        let report = job.report.filter(|report| match report {
            JobReport::Stopped(_) => untraced,
            JobReport::Continued => continued,
        })?;
        if !keep {
            job.report = None;
        }
        Some(report)
    }

    /// Tells the parent of a stop or continue: wakes its waits, and sends
    /// `SIGCHLD` with `si_code` and `si_status` as `notice` says unless it
    /// ignores `SIGCHLD` or set `SA_NOCLDSTOP` (Linux's
    /// `do_notify_parent_cldstop`).
    fn notify_parent_of_job(&self, (code, status): (i32, i32)) {
        let Some(parent) = self.parent.lock().upgrade() else { return };
        parent.child_events.wake_all();
        let chld = SigNo::from(Signal::Chld);
        let action = parent.actions().lock().get(chld);
        if action.handler == SIG_IGN || action.flags.contains(SaFlags::NOCLDSTOP) {
            return;
        }
        let uid = self.creds.lock().ruid;
        let info = SigInfo::child(code, self.pid, uid, status);
        // A full real-time queue of the parent loses the notice only.
        let _ = parent.send(chld, info);
    }
}

impl Thread {
    /// For a timed wait that goes on to its deadline after a stop (as
    /// Linux's `restart_syscall` for `nanosleep` and timed futex waits):
    /// when a stop of its process (or a stop signal with its default
    /// action, taken here) is all that interrupts the current thread,
    /// parks it here until the stop ends; whether it did.
    pub fn park_for_stop(&self) -> bool {
        if self.process.must_end(self) {
            return false;
        }
        super::signal::take_default_stops(self);
        if !self.stop_pending() || self.has_deliverable() {
            return false;
        }
        self.process.park(self);
        true
    }
}

/// A process group that an end has just left orphaned (a process that
/// tied it to its session ended) and that has a stopped member gets
/// `SIGHUP` and then `SIGCONT` (POSIX; Linux's `kill_orphaned_pgrp`):
/// nobody is left to continue it.
pub(super) fn hang_up_if_orphaned(pgid: Pid) {
    // Walked, not listed: an ending process's path cannot fail.
    let members = || Process::walk(|p| p.pgid() == pgid).filter(|p| !p.is_zombie());
    if !members().any(|p| p.is_stopped()) || !is_orphaned_pgrp(pgid) {
        return;
    }
    for signal in [Signal::Hup, Signal::Cont] {
        for member in members() {
            // A full queue loses the signal, as for any sender.
            let _ = member.send(signal.into(), SigInfo::sent(signal, SI_KERNEL, 0, 0));
        }
    }
}

/// Whether process group `pgid` is orphaned (POSIX): no member has a
/// parent in another group of its session, a parent that is init not
/// counting (Linux's `will_become_orphaned_pgrp`). `SIGTSTP`, `SIGTTIN` and
/// `SIGTTOU` do not stop such a group: nobody is left to continue it.
pub fn is_orphaned_pgrp(pgid: Pid) -> bool {
    let init = super::init_process();
    Process::walk(|p| p.pgid() == pgid).filter(|p| !p.is_zombie()).all(|member| {
        let Some(parent) = member.parent.lock().upgrade() else { return true };
        let parent_is_init = init.as_ref().is_some_and(|init| Arc::ptr_eq(init, &parent));
        parent_is_init || parent.pgid() == pgid || parent.sid() != member.sid()
    })
}
