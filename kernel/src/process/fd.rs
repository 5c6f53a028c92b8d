//! File descriptors: what a process has open.
//!
//! A descriptor names an open file description ([`OpenDescription`]):
//! what was opened and its status flags (`O_APPEND`, `O_NONBLOCK`, ...),
//! shared by every descriptor `dup`, `fcntl(F_DUPFD)` or `fork` made from
//! the same open. The close-on-exec flag belongs to the descriptor itself.
//! The table refuses descriptors at or above its limit (`RLIMIT_NOFILE`).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use aspen_abi::fcntl::OpenFlags;
use aspen_fs::OpenFile;
use aspen_mm::errno::Errno;

use crate::device::MemDevice;
use crate::memory::user_env::KernelMm;
use crate::pipe::{PipeReader, PipeWriter};

/// The most descriptors a process may have open (Linux's default
/// `RLIMIT_NOFILE`).
pub const MAX_FDS: usize = 1024;

/// What an open file description refers to.
pub enum Description {
    /// The serial console (`/dev/console`, and fds 0-2 of init; or
    /// `/dev/tty`), and which of the two nodes opened it.
    Console(crate::tty::Node),
    /// A file or directory of the file tree.
    File(Arc<OpenFile<KernelMm>>),
    /// A memory device (`/dev/null`, `/dev/zero`, ...) and its open node.
    Device(MemDevice, Arc<OpenFile<KernelMm>>),
    /// A `/proc` file: its text, made at open, and the read position.
    Snapshot(Arc<Snapshot>),
    /// The read end of a pipe.
    PipeRead(PipeReader),
    /// The write end of a pipe.
    PipeWrite(PipeWriter),
}

/// An open file description: what was opened, its access mode and its
/// status flags (what `F_GETFL` reports, `F_SETFL` changes).
pub struct OpenDescription {
    /// What it refers to.
    pub kind: Description,
    flags: AtomicU32,
}

impl OpenDescription {
    /// A description of `kind` with `flags` (access mode and status flags).
    pub fn new(kind: Description, flags: OpenFlags) -> Arc<Self> {
        Arc::new(Self { kind, flags: AtomicU32::new(flags.bits()) })
    }

    /// Its access mode and status flags.
    pub fn flags(&self) -> OpenFlags {
        OpenFlags::from_bits_retain(self.flags.load(Ordering::Relaxed))
    }

    /// Whether calls that would wait fail with `EAGAIN` instead.
    pub fn nonblocking(&self) -> bool {
        self.flags().contains(OpenFlags::NONBLOCK)
    }

    /// `F_SETFL`: takes the changeable status flags from `requested`.
    /// `O_DIRECT` is `EINVAL`: no description here can do direct I/O
    /// (Linux 6.1 says the same for tmpfs and the console; on a pipe it
    /// would switch packet mode, which Aspen's pipes do not have).
    pub fn set_status(&self, requested: OpenFlags) -> Result<(), Errno> {
        if requested.contains(OpenFlags::DIRECT) {
            return Err(Errno::EINVAL);
        }
        let new = self.flags().with_status(requested);
        self.flags.store(new.bits(), Ordering::Relaxed);
        Ok(())
    }
}

/// The contents of a synthesized file, fixed when it was opened.
pub struct Snapshot {
    pub data: Vec<u8>,
    pub position: spin::Mutex<usize>,
    /// Directory entries (name, inode, DT_ type) for a `/proc` directory.
    pub entries: Vec<(alloc::string::String, u64, u8)>,
    /// Its inode number, 0 for one `stat` makes up.
    pub ino: u64,
    /// Its owner and group (a `/proc/<pid>` file's are its process's).
    pub owner: (u32, u32),
    /// What a write to it changes (`None`: it cannot be written).
    pub writes_to: Option<SnapshotTarget>,
}

/// What a write to a `/proc` file changes.
pub enum SnapshotTarget {
    /// A task's `fail-nth` (`crate::failslab`).
    FailNth(Arc<crate::task::Task>),
    /// `/proc/sys/vm/drop_caches`: frees the clean, unused page cache.
    DropCaches,
}

impl Snapshot {
    /// A file holding `data`, owned by root.
    pub fn file(data: Vec<u8>) -> Self {
        Self { data, position: spin::Mutex::new(0), entries: Vec::new(), ino: 0, owner: (0, 0), writes_to: None }
    }

    /// A directory of `entries`, owned by root.
    pub fn directory(entries: Vec<(alloc::string::String, u64, u8)>) -> Self {
        Self { data: Vec::new(), position: spin::Mutex::new(0), entries, ino: 0, owner: (0, 0), writes_to: None }
    }

    /// The same, with inode number `ino` and owned by `owner`.
    pub fn with_identity(self, ino: u64, owner: (u32, u32)) -> Self {
        Self { ino, owner, ..self }
    }

    /// The same, written through to `target`.
    pub fn writing_to(self, target: SnapshotTarget) -> Self {
        Self { writes_to: Some(target), ..self }
    }
}

#[derive(Clone)]
struct Slot {
    description: Arc<OpenDescription>,
    close_on_exec: bool,
}

/// A process's descriptor table.
#[derive(Clone)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
    /// Descriptors are below this (`RLIMIT_NOFILE`).
    limit: usize,
}

impl Default for FdTable {
    fn default() -> Self {
        Self::new(MAX_FDS)
    }
}

impl FdTable {
    /// An empty table whose descriptors stay below `limit`.
    pub fn new(limit: usize) -> Self {
        Self { slots: Vec::new(), limit }
    }

    /// Descriptors are below this.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The table's size as Linux's `FDSize` reports it: room for 64
    /// descriptors, grown by 64 at a time to hold the highest one.
    pub fn slot_count(&self) -> usize {
        self.slots.len().div_ceil(64).max(1) * 64
    }

    /// New descriptors stay below `limit` (`RLIMIT_NOFILE` changed); those
    /// open above it stay open, as in Linux.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Installs `description` at the lowest free descriptor.
    pub fn insert(&mut self, description: Arc<OpenDescription>, close_on_exec: bool) -> Result<usize, Errno> {
        self.insert_from(0, description, close_on_exec)
    }

    /// Installs `description` at the lowest free descriptor at least
    /// `lowest`; `EMFILE` when every one from there to the limit is taken.
    fn insert_from(
        &mut self,
        lowest: usize,
        description: Arc<OpenDescription>,
        close_on_exec: bool,
    ) -> Result<usize, Errno> {
        let free = (lowest..self.limit).find(|&fd| self.slots.get(fd).is_none_or(Option::is_none));
        let fd = free.ok_or(Errno::EMFILE)?;
        if fd >= self.slots.len() {
            self.slots.try_reserve(fd + 1 - self.slots.len()).map_err(|_| Errno::ENOMEM)?;
            self.slots.resize(fd + 1, None);
        }
        self.slots[fd] = Some(Slot { description, close_on_exec });
        Ok(fd)
    }

    fn slot(&self, fd: u64) -> Result<&Slot, Errno> {
        usize::try_from(fd).ok().and_then(|fd| self.slots.get(fd)).and_then(Option::as_ref).ok_or(Errno::EBADF)
    }

    fn slot_mut(&mut self, fd: u64) -> Result<&mut Slot, Errno> {
        usize::try_from(fd).ok().and_then(|fd| self.slots.get_mut(fd)).and_then(Option::as_mut).ok_or(Errno::EBADF)
    }

    /// The description `fd` names; `EBADF` when it is not open.
    pub fn get(&self, fd: u64) -> Result<Arc<OpenDescription>, Errno> {
        self.slot(fd).map(|slot| slot.description.clone())
    }

    /// Closes `fd`, handing back its description (whose last reference the
    /// caller may drop outside the table's lock).
    pub fn close(&mut self, fd: u64) -> Result<Arc<OpenDescription>, Errno> {
        let slot = usize::try_from(fd).ok().and_then(|fd| self.slots.get_mut(fd)).ok_or(Errno::EBADF)?;
        let closed = slot.take().map(|slot| slot.description).ok_or(Errno::EBADF)?;
        // No capacity kept for descriptors above the highest open one.
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        Ok(closed)
    }

    /// `F_DUPFD`/`F_DUPFD_CLOEXEC` (and `dup`, from 0): a new descriptor
    /// for `fd`'s description, the lowest free one at least `lowest`.
    /// `EINVAL` when `lowest` is at or above the limit.
    pub fn duplicate(&mut self, fd: u64, lowest: u64, close_on_exec: bool) -> Result<usize, Errno> {
        let description = self.get(fd)?;
        let lowest = usize::try_from(lowest).ok().filter(|&l| l < self.limit).ok_or(Errno::EINVAL)?;
        self.insert_from(lowest, description, close_on_exec)
    }

    /// `dup3(old, new, flags)` once its flags are checked: `new` names
    /// `old`'s description, closing what it named (handed back for the
    /// caller to drop outside the lock). `EINVAL` when they are the same,
    /// `EBADF` when `new` is at or above the limit or `old` is not open.
    pub fn duplicate_to(
        &mut self,
        old: u64,
        new: u64,
        close_on_exec: bool,
    ) -> Result<Option<Arc<OpenDescription>>, Errno> {
        if old == new {
            return Err(Errno::EINVAL);
        }
        let new = usize::try_from(new).ok().filter(|&n| n < self.limit).ok_or(Errno::EBADF)?;
        let description = self.get(old)?;
        if new >= self.slots.len() {
            self.slots.try_reserve(new + 1 - self.slots.len()).map_err(|_| Errno::ENOMEM)?;
            self.slots.resize(new + 1, None);
        }
        let replaced = self.slots[new].replace(Slot { description, close_on_exec });
        Ok(replaced.map(|slot| slot.description))
    }

    /// Heap a copy of the table takes (with its shared handle).
    pub fn heap_size(&self) -> usize {
        self.slots.len() * core::mem::size_of::<Option<Slot>>() + core::mem::size_of::<Self>() + 64
    }

    /// Whether `fd` is closed by `execve` (`F_GETFD`).
    pub fn close_on_exec_of(&self, fd: u64) -> Result<bool, Errno> {
        self.slot(fd).map(|slot| slot.close_on_exec)
    }

    /// Sets whether `fd` is closed by `execve` (`F_SETFD`).
    pub fn set_close_on_exec(&mut self, fd: u64, on: bool) -> Result<(), Errno> {
        self.slot_mut(fd).map(|slot| slot.close_on_exec = on)
    }

    /// Drops the descriptors marked close-on-exec.
    pub fn close_on_exec(&mut self) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|s| s.close_on_exec) {
                *slot = None;
            }
        }
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
    }
}
