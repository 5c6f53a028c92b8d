//! `clone` and `clone3`: the flags, the `struct clone_args` of `clone3`, and
//! the checks Linux makes before it creates anything, so that a refused
//! combination gets Linux's errno and no side effect.

use bitflags::bitflags;

use crate::Errno;

bitflags! {
    /// The `CLONE_*` flags (without `CSIGNAL`, the exit signal of legacy
    /// `clone`'s low byte).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct CloneFlags: u64 {
        /// Share the address space.
        const VM = 0x100;
        /// Share the file-system information (root, working directory, umask).
        const FS = 0x200;
        /// Share the file descriptor table.
        const FILES = 0x400;
        /// Share the signal actions.
        const SIGHAND = 0x800;
        /// Return a pidfd.
        const PIDFD = 0x1000;
        /// Continue tracing.
        const PTRACE = 0x2000;
        /// The parent sleeps until the child execs or exits.
        const VFORK = 0x4000;
        /// The child's parent is the caller's parent.
        const PARENT = 0x8000;
        /// A thread of the caller's thread group.
        const THREAD = 0x1_0000;
        /// A new mount namespace.
        const NEWNS = 0x2_0000;
        /// Share System V semaphore undo lists.
        const SYSVSEM = 0x4_0000;
        /// Set the child's thread pointer (TPIDR_EL0) to `tls`.
        const SETTLS = 0x8_0000;
        /// Store the child's thread id at `parent_tid` in the parent.
        const PARENT_SETTID = 0x10_0000;
        /// Clear `child_tid` in the child at its exit and futex-wake it.
        const CHILD_CLEARTID = 0x20_0000;
        /// Ignored (historic).
        const DETACHED = 0x40_0000;
        /// A tracer cannot force `CLONE_PTRACE`.
        const UNTRACED = 0x80_0000;
        /// Store the child's thread id at `child_tid` in the child.
        const CHILD_SETTID = 0x100_0000;
        /// A new cgroup namespace.
        const NEWCGROUP = 0x200_0000;
        /// A new UTS namespace.
        const NEWUTS = 0x400_0000;
        /// A new IPC namespace.
        const NEWIPC = 0x800_0000;
        /// A new user namespace.
        const NEWUSER = 0x1000_0000;
        /// A new pid namespace.
        const NEWPID = 0x2000_0000;
        /// A new network namespace.
        const NEWNET = 0x4000_0000;
        /// Share the I/O context.
        const IO = 0x8000_0000;
        /// `clone3` only: reset every handled signal to its default action.
        const CLEAR_SIGHAND = 0x1_0000_0000;
        /// `clone3` only: start in the cgroup `cgroup` names.
        const INTO_CGROUP = 0x2_0000_0000;
    }
}

/// `CSIGNAL`: the exit-signal byte of legacy `clone`'s flags.
pub const CSIGNAL: u64 = 0xff;

/// The namespaces: Aspen has none to make.
const NAMESPACES: CloneFlags = CloneFlags::NEWNS
    .union(CloneFlags::NEWCGROUP)
    .union(CloneFlags::NEWUTS)
    .union(CloneFlags::NEWIPC)
    .union(CloneFlags::NEWUSER)
    .union(CloneFlags::NEWPID)
    .union(CloneFlags::NEWNET);

/// A `clone` or `clone3` request, decoded and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloneArgs {
    /// The flags.
    pub flags: CloneFlags,
    /// The signal the parent gets when the child ends (0: none); ignored
    /// for threads.
    pub exit_signal: u8,
    /// The child's stack pointer (0: the caller's).
    pub stack_pointer: u64,
    /// `CLONE_PARENT_SETTID`: where the parent gets the child's id.
    pub parent_tid: u64,
    /// `CLONE_CHILD_SETTID` / `CLONE_CHILD_CLEARTID`: the child's id word.
    pub child_tid: u64,
    /// `CLONE_SETTLS`: the child's thread pointer.
    pub tls: u64,
}

/// The size of `struct clone_args` as first published (`CLONE_ARGS_SIZE_VER0`).
pub const CLONE_ARGS_SIZE_VER0: usize = 64;
/// The size of `struct clone_args` Aspen knows (`CLONE_ARGS_SIZE_VER2`:
/// with `set_tid` and `cgroup`).
pub const CLONE_ARGS_SIZE: usize = 88;
/// The largest `struct clone_args` a caller may pass (a page).
pub const CLONE_ARGS_SIZE_MAX: usize = 4096;

impl CloneArgs {
    /// Legacy `clone(flags, stack, parent_tid, tls, child_tid)`: the flags
    /// are an `unsigned long` of which Linux keeps the low 32 bits, the
    /// low byte being the exit signal.
    pub fn from_clone(flags: u64, stack: u64, parent_tid: u64, tls: u64, child_tid: u64) -> Result<CloneArgs, Errno> {
        let flags = flags & 0xffff_ffff;
        let args = CloneArgs {
            flags: CloneFlags::from_bits_retain(flags & !CSIGNAL),
            exit_signal: (flags & CSIGNAL) as u8,
            stack_pointer: stack,
            parent_tid,
            child_tid,
            tls,
        };
        // CLONE_DETACHED means nothing to legacy clone.
        let args = CloneArgs { flags: args.flags - CloneFlags::DETACHED, ..args };
        args.checked()
    }

    /// `clone3(args, size)`: `raw` is the caller's `struct clone_args`, of
    /// the `size` it passed (at most [`CLONE_ARGS_SIZE_MAX`]).
    pub fn from_clone3(raw: &[u8]) -> Result<CloneArgs, Errno> {
        if raw.len() > CLONE_ARGS_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        if raw.len() < CLONE_ARGS_SIZE_VER0 {
            return Err(Errno::EINVAL);
        }
        // A newer caller's fields beyond ours must be zero.
        if raw.get(CLONE_ARGS_SIZE..).is_some_and(|extra| extra.iter().any(|&b| b != 0)) {
            return Err(Errno::E2BIG);
        }
        let field =
            |i: usize| raw.get(i * 8..i * 8 + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        let [flags, _pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup] =
            core::array::from_fn(field);
        let flags = CloneFlags::from_bits(flags).ok_or(Errno::EINVAL)?;
        if exit_signal & !CSIGNAL != 0 || exit_signal > 64 {
            return Err(Errno::EINVAL);
        }
        // Choosing the child's id, and cgroups, are not supported.
        if set_tid != 0 || set_tid_size != 0 || cgroup != 0 || flags.contains(CloneFlags::INTO_CGROUP) {
            return Err(Errno::EINVAL);
        }
        // clone3 names the stack by its lowest address and its size.
        let stack_pointer = match (stack, stack_size) {
            (0, 0) => 0,
            (0, _) | (_, 0) => return Err(Errno::EINVAL),
            (low, size) => low.checked_add(size).ok_or(Errno::EINVAL)?,
        };
        if flags.intersects(CloneFlags::THREAD | CloneFlags::PARENT) && exit_signal != 0 {
            return Err(Errno::EINVAL);
        }
        if flags.contains(CloneFlags::SIGHAND | CloneFlags::CLEAR_SIGHAND) {
            return Err(Errno::EINVAL);
        }
        CloneArgs { flags, exit_signal: exit_signal as u8, stack_pointer, parent_tid, child_tid, tls }.checked()
    }

    /// Linux's `copy_process` checks, and what Aspen does not support.
    fn checked(self) -> Result<CloneArgs, Errno> {
        let f = self.flags;
        let both = |a: CloneFlags, b: CloneFlags| f.contains(a) && f.contains(b);
        if both(CloneFlags::NEWNS, CloneFlags::FS) || both(CloneFlags::NEWUSER, CloneFlags::FS) {
            return Err(Errno::EINVAL);
        }
        // Threads share signal actions, and shared actions need a shared
        // address space (the handlers' addresses mean something only there).
        if f.contains(CloneFlags::THREAD) && !f.contains(CloneFlags::SIGHAND) {
            return Err(Errno::EINVAL);
        }
        if f.contains(CloneFlags::SIGHAND) && !f.contains(CloneFlags::VM) {
            return Err(Errno::EINVAL);
        }
        // What a kernel built without namespaces or pidfds answers.
        if f.intersects(NAMESPACES | CloneFlags::PIDFD) {
            return Err(Errno::EINVAL);
        }
        Ok(self)
    }

    /// Whether the child is a thread of the caller's process.
    pub fn is_thread(&self) -> bool {
        self.flags.contains(CloneFlags::THREAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const SIGCHLD: u64 = 17;
    /// What glibc's `pthread_create` asks for.
    const GLIBC_THREAD: u64 = 0x3d0f00;

    #[test]
    fn fork_and_thread_flag_sets_of_the_libraries_are_accepted() {
        let fork = CloneArgs::from_clone(0x1200000 | SIGCHLD, 0, 0, 0, 0x1234).unwrap();
        assert_eq!(fork.flags, CloneFlags::CHILD_SETTID | CloneFlags::CHILD_CLEARTID);
        assert_eq!(fork.exit_signal, 17);
        let thread = CloneArgs::from_clone(GLIBC_THREAD, 0x8000, 0x10, 0x20, 0x30).unwrap();
        assert!(thread.is_thread());
        assert_eq!((thread.stack_pointer, thread.parent_tid, thread.tls, thread.child_tid), (0x8000, 0x10, 0x20, 0x30));
        let vfork = CloneArgs::from_clone(0x4100 | SIGCHLD, 0, 0, 0, 0).unwrap();
        assert_eq!(vfork.flags, CloneFlags::VM | CloneFlags::VFORK);
    }

    #[test]
    fn linux_refuses_what_it_refuses() {
        let refused = |flags: u64| CloneArgs::from_clone(flags, 0, 0, 0, 0).unwrap_err();
        assert_eq!(refused(CloneFlags::THREAD.bits()), Errno::EINVAL);
        assert_eq!(refused((CloneFlags::THREAD | CloneFlags::VM).bits()), Errno::EINVAL);
        assert_eq!(refused(CloneFlags::SIGHAND.bits()), Errno::EINVAL);
        assert_eq!(refused((CloneFlags::NEWNS | CloneFlags::FS).bits()), Errno::EINVAL);
        assert_eq!(refused(CloneFlags::NEWPID.bits() | SIGCHLD), Errno::EINVAL);
        // The upper half of legacy clone's flags is not looked at.
        assert!(CloneArgs::from_clone(CloneFlags::CLEAR_SIGHAND.bits() | SIGCHLD, 0, 0, 0, 0).is_ok());
    }

    fn clone3_bytes(fields: &[(usize, u64)], size: usize) -> alloc::vec::Vec<u8> {
        let mut raw = vec![0u8; size];
        for &(i, value) in fields {
            raw[i * 8..i * 8 + 8].copy_from_slice(&value.to_le_bytes());
        }
        raw
    }

    #[test]
    fn clone3_reads_its_struct_as_linux_does() {
        let args = CloneArgs::from_clone3(&clone3_bytes(&[(0, 0x100), (4, SIGCHLD), (5, 0x1000), (6, 0x2000)], 88));
        let args = args.unwrap();
        assert_eq!((args.flags, args.exit_signal, args.stack_pointer), (CloneFlags::VM, 17, 0x3000));
        assert_eq!(CloneArgs::from_clone3(&[0; 63]), Err(Errno::EINVAL));
        assert_eq!(CloneArgs::from_clone3(&vec![0; 4097]), Err(Errno::E2BIG));
        assert!(CloneArgs::from_clone3(&vec![0; 4096]).is_ok());
        assert_eq!(CloneArgs::from_clone3(&clone3_bytes(&[(11, 1)], 96)), Err(Errno::E2BIG));
        assert_eq!(CloneArgs::from_clone3(&clone3_bytes(&[(5, 0x1000)], 64)), Err(Errno::EINVAL));
        assert_eq!(CloneArgs::from_clone3(&clone3_bytes(&[(4, 65)], 64)), Err(Errno::EINVAL));
        assert_eq!(CloneArgs::from_clone3(&clone3_bytes(&[(0, 1 << 40)], 64)), Err(Errno::EINVAL));
        let thread_with_signal = clone3_bytes(&[(0, GLIBC_THREAD), (4, SIGCHLD)], 88);
        assert_eq!(CloneArgs::from_clone3(&thread_with_signal), Err(Errno::EINVAL));
        let both = clone3_bytes(&[(0, (CloneFlags::SIGHAND | CloneFlags::VM | CloneFlags::CLEAR_SIGHAND).bits())], 88);
        assert_eq!(CloneArgs::from_clone3(&both), Err(Errno::EINVAL));
    }
}
