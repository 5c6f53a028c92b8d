//! Credentials: a process's real, effective and saved user and group ids
//! and its supplementary groups, Linux's rules for changing them
//! (`setresuid` and the calls built on it) and the permission check of a
//! file's mode bits.
//!
//! Privilege is an effective user id of 0 (root has every capability; no
//! other id has any), as Linux without file capabilities or
//! `SECBIT_NO_SETUID_FIXUP`. The file-system ids are the effective ones.

use alloc::vec::Vec;

use crate::Errno;

/// Linux's `NGROUPS_MAX`: the most supplementary groups.
pub const NGROUPS_MAX: usize = 65536;

/// What is being asked of a file: bits of `R_OK` 4, `W_OK` 2, `X_OK` 1.
pub type AccessMask = u32;

/// A process's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The real user id.
    pub ruid: u32,
    /// The effective user id: what permission checks use.
    pub euid: u32,
    /// The saved set-user-id.
    pub suid: u32,
    /// The real group id.
    pub rgid: u32,
    /// The effective group id.
    pub egid: u32,
    /// The saved set-group-id.
    pub sgid: u32,
    /// The supplementary groups.
    pub groups: Vec<u32>,
}

/// An id argument of the `set*id` calls: -1 (`None`) keeps the id.
fn keep(raw: u32) -> Option<u32> {
    Some(raw).filter(|&id| id != u32::MAX)
}

impl Credentials {
    /// Root's: every id 0, no supplementary group.
    pub const fn root() -> Self {
        Self { ruid: 0, euid: 0, suid: 0, rgid: 0, egid: 0, sgid: 0, groups: Vec::new() }
    }

    /// Whether the effective user is root (has every capability).
    pub fn privileged(&self) -> bool {
        self.euid == 0
    }

    /// Whether `gid` is the effective group or a supplementary one.
    pub fn in_group(&self, gid: u32) -> bool {
        self.egid == gid || self.groups.contains(&gid)
    }

    /// `setresuid(r, e, s)` (-1 keeps an id): without privilege each new id
    /// must be one of the current real, effective and saved ids (`EPERM`).
    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> Result<(), Errno> {
        let (r, e, s) = (keep(r), keep(e), keep(s));
        let current = [self.ruid, self.euid, self.suid];
        if !self.privileged() && [r, e, s].into_iter().flatten().any(|id| !current.contains(&id)) {
            return Err(Errno::EPERM);
        }
        self.ruid = r.unwrap_or(self.ruid);
        self.euid = e.unwrap_or(self.euid);
        self.suid = s.unwrap_or(self.suid);
        Ok(())
    }

    /// `setresgid(r, e, s)`: as [`Self::setresuid`] for the group ids
    /// (privilege is still the effective user's).
    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> Result<(), Errno> {
        let (r, e, s) = (keep(r), keep(e), keep(s));
        let current = [self.rgid, self.egid, self.sgid];
        if !self.privileged() && [r, e, s].into_iter().flatten().any(|id| !current.contains(&id)) {
            return Err(Errno::EPERM);
        }
        self.rgid = r.unwrap_or(self.rgid);
        self.egid = e.unwrap_or(self.egid);
        self.sgid = s.unwrap_or(self.sgid);
        Ok(())
    }

    /// `setuid(uid)`: with privilege all three ids; without, the effective
    /// one, to the real or saved id only (`EPERM`). -1 is `EINVAL`.
    pub fn setuid(&mut self, uid: u32) -> Result<(), Errno> {
        let uid = keep(uid).ok_or(Errno::EINVAL)?;
        if self.privileged() {
            (self.ruid, self.euid, self.suid) = (uid, uid, uid);
        } else if uid == self.ruid || uid == self.suid {
            self.euid = uid;
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// `setgid(gid)`: as [`Self::setuid`] for the group ids.
    pub fn setgid(&mut self, gid: u32) -> Result<(), Errno> {
        let gid = keep(gid).ok_or(Errno::EINVAL)?;
        if self.privileged() {
            (self.rgid, self.egid, self.sgid) = (gid, gid, gid);
        } else if gid == self.rgid || gid == self.sgid {
            self.egid = gid;
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// `setreuid(r, e)`: without privilege the real id may become the real
    /// or effective one, the effective id any of the three. The saved id
    /// becomes the new effective id when the real id is set, or the
    /// effective one is set to other than the old real id.
    pub fn setreuid(&mut self, r: u32, e: u32) -> Result<(), Errno> {
        let (r, e) = (keep(r), keep(e));
        if !self.privileged() {
            let real_ok = r.is_none_or(|id| id == self.ruid || id == self.euid);
            let effective_ok = e.is_none_or(|id| id == self.ruid || id == self.euid || id == self.suid);
            if !real_ok || !effective_ok {
                return Err(Errno::EPERM);
            }
        }
        let old_ruid = self.ruid;
        self.ruid = r.unwrap_or(self.ruid);
        self.euid = e.unwrap_or(self.euid);
        if r.is_some() || e.is_some_and(|id| id != old_ruid) {
            self.suid = self.euid;
        }
        Ok(())
    }

    /// `setregid(r, e)`: as [`Self::setreuid`] for the group ids.
    pub fn setregid(&mut self, r: u32, e: u32) -> Result<(), Errno> {
        let (r, e) = (keep(r), keep(e));
        if !self.privileged() {
            let real_ok = r.is_none_or(|id| id == self.rgid || id == self.egid);
            let effective_ok = e.is_none_or(|id| id == self.rgid || id == self.egid || id == self.sgid);
            if !real_ok || !effective_ok {
                return Err(Errno::EPERM);
            }
        }
        let old_rgid = self.rgid;
        self.rgid = r.unwrap_or(self.rgid);
        self.egid = e.unwrap_or(self.egid);
        if r.is_some() || e.is_some_and(|id| id != old_rgid) {
            self.sgid = self.egid;
        }
        Ok(())
    }

    /// `setgroups`: privileged only (`EPERM`); more than
    /// [`NGROUPS_MAX`] is `EINVAL` (the caller checks the count before
    /// reading the list).
    pub fn setgroups(&mut self, groups: Vec<u32>) -> Result<(), Errno> {
        if !self.privileged() {
            return Err(Errno::EPERM);
        }
        if groups.len() > NGROUPS_MAX {
            return Err(Errno::EINVAL);
        }
        let mut groups = groups;
        groups.sort_unstable();
        groups.dedup();
        self.groups = groups;
        Ok(())
    }

    /// Whether a file of `mode` owned by (`uid`, `gid`) allows `want`
    /// (`R_OK` 4 | `W_OK` 2 | `X_OK` 1) to these credentials, with the
    /// real ids instead of the effective ones when `real` (`access`
    /// without `AT_EACCESS`). Root may read and write anything, and
    /// execute (or search) what has an execute bit or is a directory; for
    /// the others the owner's, group's or others' bits decide, the first
    /// class that matches (Linux's `generic_permission`).
    pub fn may_access(&self, mode: u32, (uid, gid): (u32, u32), want: AccessMask, is_dir: bool, real: bool) -> bool {
        let (me, my_group) = if real { (self.ruid, self.rgid) } else { (self.euid, self.egid) };
        if me == 0 {
            return want & 1 == 0 || is_dir || mode & 0o111 != 0;
        }
        let bits = if me == uid {
            (mode >> 6) & 7
        } else if my_group == gid || self.groups.contains(&gid) {
            (mode >> 3) & 7
        } else {
            mode & 7
        };
        want & !bits == 0
    }

    /// Whether these credentials may send a signal to a process with
    /// `target`'s (Linux's `kill_ok_by_cred`): privilege (`CAP_KILL`), or
    /// the sender's real or effective user id is the target's real or saved
    /// one.
    pub fn may_signal(&self, target: &Credentials) -> bool {
        self.privileged() || [self.euid, self.ruid].iter().any(|&sender| sender == target.ruid || sender == target.suid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOBODY: u32 = 65534;
    const KEEP: u32 = u32::MAX;

    #[test]
    fn signals_need_a_shared_real_or_saved_user() {
        let user = |r, e, s| Credentials { ruid: r, euid: e, suid: s, ..Credentials::root() };
        assert!(Credentials::root().may_signal(&user(5, 5, 5)));
        assert!(user(5, 5, 5).may_signal(&user(5, 7, 7)));
        assert!(user(5, 5, 5).may_signal(&user(7, 7, 5)));
        // The sender's real id counts too (a set-uid sender).
        assert!(user(5, 9, 9).may_signal(&user(5, 8, 8)));
        // The target's effective id does not.
        assert!(!user(5, 5, 5).may_signal(&user(7, 5, 7)));
        assert!(!user(5, 5, 5).may_signal(&Credentials::root()));
    }

    #[test]
    fn root_gives_up_the_effective_id_and_takes_it_back() {
        let mut c = Credentials::root();
        c.setresuid(KEEP, NOBODY, KEEP).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid), (0, NOBODY, 0));
        assert!(!c.privileged());
        assert_eq!(c.setresuid(KEEP, 5, KEEP), Err(Errno::EPERM));
        assert_eq!(c.setgroups(Vec::new()), Err(Errno::EPERM));
        c.setresuid(KEEP, 0, KEEP).unwrap();
        assert!(c.privileged());
        c.setuid(NOBODY).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid), (NOBODY, NOBODY, NOBODY));
        assert_eq!(c.setuid(0), Err(Errno::EPERM));
        assert_eq!(c.setuid(KEEP), Err(Errno::EINVAL));
    }

    #[test]
    fn setreuid_moves_the_saved_id_as_linux() {
        let mut c = Credentials::root();
        c.setreuid(1, 2).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid), (1, 2, 2));
        c.setreuid(KEEP, 1).unwrap();
        assert_eq!((c.ruid, c.euid, c.suid), (1, 1, 2), "e is the old real id: saved kept");
        assert_eq!(c.setreuid(2, KEEP), Err(Errno::EPERM));
        let mut g = Credentials::root();
        g.setregid(KEEP, 3).unwrap();
        assert_eq!((g.rgid, g.egid, g.sgid), (0, 3, 3));
    }

    #[test]
    fn mode_bits_decide_for_others_and_root_only_needs_an_x_bit() {
        let mut c = Credentials::root();
        assert!(c.may_access(0o000, (5, 5), 6, false, false));
        assert!(!c.may_access(0o644, (5, 5), 1, false, false));
        assert!(c.may_access(0o700, (5, 5), 1, true, false));
        c.setgroups(alloc::vec![7]).unwrap();
        c.setresuid(KEEP, NOBODY, KEEP).unwrap();
        assert!(!c.may_access(0o044, (NOBODY, 9), 4, false, false), "the owner class decides, not others");
        assert!(c.may_access(0o644, (1, 1), 4, false, false));
        assert!(!c.may_access(0o644, (1, 1), 2, false, false));
        assert!(c.may_access(0o070, (1, 7), 7, false, false), "a supplementary group");
        assert!(c.may_access(0o000, (1, 1), 6, false, true), "real ids: root");
    }
}
