//! Resource limits (`prlimit64`, `getrlimit`, `setrlimit`) and random
//! bytes (`getrandom`).
//!
//! Limits are per process, inherited by its children. Where Aspen enforces
//! them: `RLIMIT_STACK` sizes the stack of the next `execve`;
//! `RLIMIT_NOFILE` is the limit of the descriptor table;
//! `RLIMIT_MEMLOCK` binds `mlock` and `mlockall` of callers without
//! `CAP_IPC_LOCK`, as in Linux: those whose effective user is not root
//! (`creds::memlock_limit`). Raising a hard limit takes privilege
//! (`CAP_SYS_RESOURCE`: root).

use aspen_abi::resource::{Resource, Rlimit};
use aspen_abi::uaccess::{UserMemory, UserSlice};
use aspen_mm::errno::Errno;

use super::{copy_in, copy_out_at, partial, user, SysResult, MAX_IO};
use crate::process::{self, Process};
use crate::task::Pid;

/// `prlimit64(pid, resource, new, old)`: `pid` 0 is the caller.
pub(super) fn prlimit64(pid: u64, resource: u64, new: u64, old: u64) -> SysResult {
    let target = match pid as i32 {
        0 => process::current_process(),
        pid if pid > 0 => Process::get(pid as Pid).filter(|p| !p.is_zombie()).ok_or(Errno::ESRCH)?,
        _ => return Err(Errno::ESRCH),
    };
    let resource = Resource::from_raw(resource)?;
    let new = match new {
        0 => None,
        addr => Some(read_rlimit(addr)?),
    };
    let privileged = super::creds::current().privileged();
    let mut limits = target.limits.lock();
    let previous = limits.get(resource);
    if let Some(new) = new {
        limits.set(resource, new, privileged)?;
    }
    drop(limits);
    if let Some(new) = new.filter(|_| resource == Resource::Nofile) {
        // Within nr_open, which `set` checked.
        target.with_files(|files| files.set_limit(new.cur as usize))?;
    }
    if old != 0 {
        copy_out_at(old, &previous.to_bytes())?;
    }
    Ok(0)
}

pub(super) fn getrlimit(resource: u64, old: u64) -> SysResult {
    prlimit64(0, resource, 0, old)
}

pub(super) fn setrlimit(resource: u64, new: u64) -> SysResult {
    prlimit64(0, resource, new, 0)
}

fn read_rlimit(addr: u64) -> Result<Rlimit, Errno> {
    let bytes = copy_in(UserSlice::new(addr, Rlimit::SIZE as u64)?)?;
    Ok(Rlimit::from_bytes(bytes.try_into().map_err(|_| Errno::EFAULT)?))
}

/// `GRND_NONBLOCK`, `GRND_RANDOM`, `GRND_INSECURE`.
const GRND_KNOWN: u64 = 0x7;
const GRND_RANDOM: u64 = 0x2;
const GRND_INSECURE: u64 = 0x4;

/// `getrandom(buf, len, flags)`: never blocks (the generator is keyed from
/// boot). A fault part-way through `buf` returns the bytes written before
/// it.
pub(super) fn getrandom(buf: u64, len: u64, flags: u64) -> SysResult {
    if flags & !GRND_KNOWN != 0 || flags & (GRND_RANDOM | GRND_INSECURE) == GRND_RANDOM | GRND_INSECURE {
        return Err(Errno::EINVAL);
    }
    let buf = UserSlice::new(buf, len)?;
    let count = len.min(MAX_IO);
    let mut chunk = [0u8; 256];
    let mut done = 0;
    while done < count {
        let n = (count - done).min(chunk.len() as u64);
        let bytes = &mut chunk[..n as usize];
        crate::random::fill(bytes);
        if let Err(fault) = user().write_partial(buf.sub(done, n), bytes) {
            return partial(done as usize + fault.copied, fault.errno);
        }
        done += n;
    }
    Ok(done)
}
