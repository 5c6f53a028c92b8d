//! What `wait4` and `waitid` report: Linux's wait-status encoding, and the
//! options and id types the two calls accept.
//!
//! A status is an `int`: exit code in bits 8..16 with the low 7 bits zero
//! (`WIFEXITED`), the terminating signal in the low 7 bits (`WIFSIGNALED`;
//! Aspen never sets the core-dump bit 0x80), `0x7f` with the stop signal in
//! bits 8..16 (`WIFSTOPPED`), or `0xffff` (`WIFCONTINUED`).

/// The signals, defined in [`crate::signal`].
pub use crate::signal::Signal;
use crate::Errno;

/// A wait status as `wait4` stores it in `*wstatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WaitStatus(pub i32);

impl WaitStatus {
    /// A process that called `exit(code)` / `exit_group(code)`: only the low
    /// 8 bits of the code survive.
    pub const fn exited(code: i32) -> WaitStatus {
        WaitStatus((code & 0xff) << 8)
    }

    /// A process killed by `signal`.
    pub const fn signaled(signal: Signal) -> WaitStatus {
        WaitStatus(signal.number() as i32 & 0x7f)
    }

    /// A process killed by signal `signo` (any of the 64: the low 7 bits
    /// hold it; no core-dump bit, as no core is written).
    pub const fn killed_by(signo: crate::signal::SigNo) -> WaitStatus {
        WaitStatus(signo.number() as i32 & 0x7f)
    }

    /// A child stopped by signal `signo` (`WUNTRACED` reports it).
    pub const fn stopped(signo: crate::signal::SigNo) -> WaitStatus {
        WaitStatus(0x7f | (signo.number() as i32) << 8)
    }

    /// A stopped child that continued (`WCONTINUED` reports it).
    pub const CONTINUED: WaitStatus = WaitStatus(0xffff);

    /// `WIFSTOPPED`: the stop signal (`WSTOPSIG`).
    pub const fn stop_signal(self) -> Option<u8> {
        if self.0 & 0xff == 0x7f {
            Some(((self.0 >> 8) & 0xff) as u8)
        } else {
            None
        }
    }

    /// `WIFEXITED`.
    pub const fn is_exited(self) -> bool {
        self.0 & 0x7f == 0
    }

    /// `WEXITSTATUS`, when `WIFEXITED`.
    pub const fn exit_code(self) -> Option<u8> {
        if self.is_exited() {
            Some(((self.0 >> 8) & 0xff) as u8)
        } else {
            None
        }
    }

    /// `WIFSIGNALED`: low 7 bits neither 0 (exited) nor 0x7f (stopped).
    pub const fn is_signaled(self) -> bool {
        let low = self.0 & 0x7f;
        low != 0 && low != 0x7f
    }

    /// `WTERMSIG`, when `WIFSIGNALED`: the raw signal number.
    pub const fn term_signal(self) -> Option<u8> {
        if self.is_signaled() {
            Some((self.0 & 0x7f) as u8)
        } else {
            None
        }
    }
}

/// `WNOHANG`: return 0 at once when no child has changed state.
pub const WNOHANG: u32 = 0x1;
/// `WUNTRACED` (`waitid`'s `WSTOPPED`): also report stopped children.
pub const WUNTRACED: u32 = 0x2;
/// `WEXITED` (`waitid` only): report children that ended.
pub const WEXITED: u32 = 0x4;
/// `WCONTINUED`: also report continued children.
pub const WCONTINUED: u32 = 0x8;
/// `WNOWAIT` (`waitid` only): leave the child waitable.
pub const WNOWAIT: u32 = 0x0100_0000;
/// `__WNOTHREAD`: only children of the calling thread.
pub const WNOTHREAD: u32 = 0x2000_0000;
/// `__WALL`: children of any exit signal.
pub const WALL: u32 = 0x4000_0000;
/// `__WCLONE`: only children whose exit signal is not `SIGCHLD`.
pub const WCLONE: u32 = 0x8000_0000;

/// The `wait4` and `waitid` options, decoded.
///
/// Aspen accepts exactly the bits Linux accepts (any other bit is `EINVAL`;
/// `WEXITED` and `WNOWAIT` belong to `waitid` only, `wait4` always reports
/// children that ended). `__WNOTHREAD` changes nothing (the children of a
/// process are its threads' children, as Linux without the flag).
/// `__WCLONE` and `__WALL` choose children by exit signal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitOptions {
    /// `WNOHANG`.
    pub no_hang: bool,
    /// `WEXITED`: children that ended (always, for `wait4`).
    pub exited: bool,
    /// `WUNTRACED` / `WSTOPPED`.
    pub untraced: bool,
    /// `WCONTINUED`.
    pub continued: bool,
    /// `WNOWAIT`: report without reaping or consuming the report.
    pub no_wait: bool,
    /// `__WNOTHREAD`.
    pub no_thread: bool,
    /// `__WALL`: wait for every child.
    pub all_children: bool,
    /// `__WCLONE`: wait only for "clone" children (exit signal not
    /// `SIGCHLD`); ignored when `all_children`.
    pub clone_children: bool,
}

impl WaitOptions {
    /// Decodes `wait4`'s `options` argument (an `int`: the low 32 bits of
    /// `x2`).
    pub const fn from_bits(options: u32) -> Result<WaitOptions, Errno> {
        let known = WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE;
        if options & !known != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(WaitOptions::decode(options | WEXITED))
    }

    /// Decodes `waitid`'s `options`: `EINVAL` for an unknown bit or when
    /// none of `WEXITED`, `WSTOPPED`, `WCONTINUED` asks for anything.
    pub const fn from_waitid_bits(options: u32) -> Result<WaitOptions, Errno> {
        let known = WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;
        if options & !known != 0 || options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
            return Err(Errno::EINVAL);
        }
        Ok(WaitOptions::decode(options))
    }

    const fn decode(options: u32) -> WaitOptions {
        WaitOptions {
            no_hang: options & WNOHANG != 0,
            exited: options & WEXITED != 0,
            untraced: options & WUNTRACED != 0,
            continued: options & WCONTINUED != 0,
            no_wait: options & WNOWAIT != 0,
            no_thread: options & WNOTHREAD != 0,
            all_children: options & WALL != 0,
            clone_children: options & WCLONE != 0,
        }
    }

    /// Whether a child whose exit signal is `exit_signal` (0 when none) is
    /// one this wait looks at: Linux's `eligible_child`.
    pub fn selects_child(&self, exit_signal: u32) -> bool {
        let is_clone_child = exit_signal != u32::from(Signal::Chld.number());
        self.all_children || is_clone_child == self.clone_children
    }
}

/// Which children `waitid` waits for (its `idtype` and `id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitId {
    /// `P_ALL`: any child.
    All,
    /// `P_PID`: the child with this pid.
    Pid(u32),
    /// `P_PGID`: a child in this process group (0: the caller's).
    Pgid(u32),
}

/// `P_ALL`.
pub const P_ALL: u32 = 0;
/// `P_PID`.
pub const P_PID: u32 = 1;
/// `P_PGID`.
pub const P_PGID: u32 = 2;
/// `P_PIDFD`: a pidfd names the child.
pub const P_PIDFD: u32 = 3;

impl WaitId {
    /// Decodes `idtype` and `id` as Linux's `kernel_waitid`: a pid must be
    /// positive and a group not negative (`EINVAL`); Aspen has no pidfds, so
    /// `P_PIDFD` names no pidfd (`EBADF`); other types are `EINVAL`.
    pub const fn new(idtype: u32, id: i32) -> Result<WaitId, Errno> {
        match idtype {
            P_ALL => Ok(WaitId::All),
            P_PID if id > 0 => Ok(WaitId::Pid(id as u32)),
            P_PGID if id >= 0 => Ok(WaitId::Pgid(id as u32)),
            P_PIDFD if id >= 0 => Err(Errno::EBADF),
            _ => Err(Errno::EINVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exit_statuses_match_linux() {
        assert_eq!(WaitStatus::exited(0).0, 0);
        assert_eq!(WaitStatus::exited(1).0, 0x100);
        assert_eq!(WaitStatus::exited(255).0, 0xff00);
        assert_eq!(WaitStatus::exited(256).0, 0, "only 8 bits survive");
        assert_eq!(WaitStatus::exited(-1).0, 0xff00);
        let status = WaitStatus::exited(42);
        assert!(status.is_exited() && !status.is_signaled());
        assert_eq!(status.exit_code(), Some(42));
        assert_eq!(status.term_signal(), None);
    }

    #[test]
    fn signal_statuses_match_linux() {
        assert_eq!(WaitStatus::signaled(Signal::Segv).0, 11);
        assert_eq!(WaitStatus::signaled(Signal::Kill).0, 9);
        for signal in Signal::ALL {
            let status = WaitStatus::signaled(signal);
            assert!(status.is_signaled() && !status.is_exited());
            assert_eq!(status.term_signal(), Some(signal.number()));
            assert_eq!(status.exit_code(), None);
            assert_eq!(Signal::from_number(u32::from(signal.number())), Some(signal));
        }
        let rt = crate::signal::SigNo::new(64).unwrap();
        assert_eq!(WaitStatus::killed_by(rt).term_signal(), Some(64));
        // A stopped status (0x7f low bits) is neither.
        let stopped = WaitStatus(0x137f);
        assert!(!stopped.is_exited() && !stopped.is_signaled());
        assert_eq!(stopped.stop_signal(), Some(19));
        assert_eq!(WaitStatus::exited(0x7f).stop_signal(), None);
        // The core-dump bit does not hide the signal.
        assert_eq!(WaitStatus(0x80 | 6).term_signal(), Some(6));
    }

    #[test]
    fn wait_options_accept_linux_bits_only() {
        assert_eq!(WaitOptions::from_bits(0), Ok(WaitOptions { exited: true, ..WaitOptions::default() }));
        let options = WaitOptions::from_bits(WNOHANG | WALL).unwrap();
        assert!(options.no_hang && options.all_children && !options.untraced);
        assert!(WaitOptions::from_bits(WUNTRACED | WCONTINUED | WNOTHREAD | WCLONE).is_ok());
        for bad in [0x4, 0x10, 0x0100_0000, 0x1000_0000, u32::MAX] {
            assert_eq!(WaitOptions::from_bits(bad), Err(Errno::EINVAL), "{bad:#x}");
        }
    }

    #[test]
    fn job_control_statuses_match_linux() {
        let stop = crate::signal::SigNo::from(Signal::Tstp);
        assert_eq!(WaitStatus::stopped(stop).0, 0x147f);
        assert_eq!(WaitStatus::stopped(stop).stop_signal(), Some(20));
        let continued = WaitStatus::CONTINUED;
        assert!(!continued.is_exited() && !continued.is_signaled() && continued.stop_signal().is_none());
    }

    #[test]
    fn waitid_options_need_a_state_to_wait_for() {
        assert_eq!(WaitOptions::from_waitid_bits(WNOHANG), Err(Errno::EINVAL));
        assert_eq!(WaitOptions::from_waitid_bits(0), Err(Errno::EINVAL));
        assert_eq!(WaitOptions::from_waitid_bits(WEXITED | 0x10), Err(Errno::EINVAL));
        let options = WaitOptions::from_waitid_bits(WUNTRACED | WNOWAIT).unwrap();
        assert!(options.untraced && options.no_wait && !options.exited);
        assert!(WaitOptions::from_bits(0).unwrap().exited, "wait4 always reports ended children");
        assert_eq!(WaitOptions::from_bits(WNOWAIT), Err(Errno::EINVAL));
        assert_eq!(WaitOptions::from_bits(WEXITED), Err(Errno::EINVAL));
    }

    #[test]
    fn waitid_id_types_match_linux() {
        assert_eq!(WaitId::new(P_ALL, -5), Ok(WaitId::All));
        assert_eq!(WaitId::new(P_PID, 7), Ok(WaitId::Pid(7)));
        assert_eq!(WaitId::new(P_PID, 0), Err(Errno::EINVAL));
        assert_eq!(WaitId::new(P_PGID, 0), Ok(WaitId::Pgid(0)));
        assert_eq!(WaitId::new(P_PGID, -1), Err(Errno::EINVAL));
        assert_eq!(WaitId::new(P_PIDFD, 3), Err(Errno::EBADF));
        assert_eq!(WaitId::new(4, 0), Err(Errno::EINVAL));
    }

    #[test]
    fn wait_options_choose_children_by_exit_signal() {
        let default = WaitOptions::default();
        assert!(default.selects_child(17));
        assert!(!default.selects_child(0));
        let clone = WaitOptions::from_bits(WCLONE).unwrap();
        assert!(clone.selects_child(0) && !clone.selects_child(17));
        let all = WaitOptions::from_bits(WALL | WCLONE).unwrap();
        assert!(all.selects_child(0) && all.selects_child(17));
    }

    proptest! {
        #[test]
        fn exit_code_round_trips(code in any::<i32>()) {
            let status = WaitStatus::exited(code);
            prop_assert_eq!(status.exit_code(), Some(code as u8));
            prop_assert!(!status.is_signaled());
        }

        #[test]
        fn decoders_never_disagree(raw in any::<i32>()) {
            let status = WaitStatus(raw);
            prop_assert!(!(status.is_exited() && status.is_signaled()));
            prop_assert_eq!(status.exit_code().is_some(), status.is_exited());
            prop_assert_eq!(status.term_signal().is_some(), status.is_signaled());
        }
    }
}
