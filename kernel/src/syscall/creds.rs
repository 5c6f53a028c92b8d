//! User and group ids: `getuid` and the others that read them,
//! `setresuid`, `setuid`, `setreuid` and their group twins, `getgroups`
//! and `setgroups` (the rules are `aspen_abi::cred`'s), and the limit
//! `mlock` and `mlockall` are bound by: `RLIMIT_MEMLOCK` for a caller
//! without privilege, none for root (`CAP_IPC_LOCK`).

use alloc::vec::Vec;

use aspen_abi::cred::{Credentials, NGROUPS_MAX};
use aspen_abi::resource::Resource;
use aspen_abi::uaccess::UserSlice;
use aspen_mm::errno::Errno;

use super::{copy_in, copy_out_at, SysResult};
use crate::process;

/// The current process's credentials (a copy).
pub(crate) fn current() -> Credentials {
    process::current_process().creds.lock().clone()
}

/// Changes the current process's credentials with `change`.
fn change(change: impl FnOnce(&mut Credentials) -> Result<(), Errno>) -> SysResult {
    change(&mut process::current_process().creds.lock()).map(|()| 0)
}

/// Which id `getuid` and the others read.
#[derive(Clone, Copy)]
pub(super) enum Id {
    /// `getuid`.
    RealUser,
    /// `geteuid`.
    EffectiveUser,
    /// `getgid`.
    RealGroup,
    /// `getegid`.
    EffectiveGroup,
}

/// `getuid`, `geteuid`, `getgid`, `getegid`.
pub(super) fn get(id: Id) -> SysResult {
    let c = current();
    Ok(u64::from(match id {
        Id::RealUser => c.ruid,
        Id::EffectiveUser => c.euid,
        Id::RealGroup => c.rgid,
        Id::EffectiveGroup => c.egid,
    }))
}

/// `setresuid(r, e, s)`.
pub(super) fn setresuid(r: u64, e: u64, s: u64) -> SysResult {
    change(|c| c.setresuid(r as u32, e as u32, s as u32))
}

/// `setresgid(r, e, s)`.
pub(super) fn setresgid(r: u64, e: u64, s: u64) -> SysResult {
    change(|c| c.setresgid(r as u32, e as u32, s as u32))
}

/// `setuid(uid)`.
pub(super) fn setuid(uid: u64) -> SysResult {
    change(|c| c.setuid(uid as u32))
}

/// `setgid(gid)`.
pub(super) fn setgid(gid: u64) -> SysResult {
    change(|c| c.setgid(gid as u32))
}

/// `setreuid(r, e)`.
pub(super) fn setreuid(r: u64, e: u64) -> SysResult {
    change(|c| c.setreuid(r as u32, e as u32))
}

/// `setregid(r, e)`.
pub(super) fn setregid(r: u64, e: u64) -> SysResult {
    change(|c| c.setregid(r as u32, e as u32))
}

/// `getresuid(r, e, s)` (`group`: `getresgid`): each id to its pointer.
pub(super) fn getres(r: u64, e: u64, s: u64, group: bool) -> SysResult {
    let c = current();
    let ids = if group { [c.rgid, c.egid, c.sgid] } else { [c.ruid, c.euid, c.suid] };
    for (addr, id) in [r, e, s].into_iter().zip(ids) {
        copy_out_at(addr, &id.to_le_bytes())?;
    }
    Ok(0)
}

/// `getgroups(size, list)`: the number of supplementary groups, written to
/// `list` unless `size` is 0; a smaller `size` is `EINVAL`.
pub(super) fn getgroups(size: u64, list: u64) -> SysResult {
    let size = size as i32;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    let groups = current().groups;
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    copy_out_at(list, &bytes)?;
    Ok(groups.len() as u64)
}

/// `setgroups(size, list)`: as Linux, privilege first (`EPERM`), then the
/// count (`EINVAL` above `NGROUPS_MAX`), then the list is read.
pub(super) fn setgroups(size: u64, list: u64) -> SysResult {
    if !current().privileged() {
        return Err(Errno::EPERM);
    }
    let count = usize::try_from(size as i32).ok().filter(|&n| n <= NGROUPS_MAX).ok_or(Errno::EINVAL)?;
    let bytes = copy_in(UserSlice::new(list, count as u64 * 4)?)?;
    let groups = bytes.chunks_exact(4).map(|g| u32::from_le_bytes([g[0], g[1], g[2], g[3]])).collect();
    change(|c| c.setgroups(groups))
}

/// What binds `mlock` and `mlockall` for the caller: `None` with privilege
/// (`CAP_IPC_LOCK`) or an infinite `RLIMIT_MEMLOCK`, else the limit in
/// bytes.
pub(super) fn memlock_limit() -> Option<u64> {
    let me = process::current_process();
    if me.creds.lock().privileged() {
        return None;
    }
    let limit = me.limits.lock().get(Resource::Memlock).cur;
    Some(limit).filter(|&l| l != u64::MAX)
}
