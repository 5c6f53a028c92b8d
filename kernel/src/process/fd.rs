//! File descriptors: what a process has open.

use alloc::sync::Arc;
use alloc::vec::Vec;

use aspen_fs::OpenFile;
use aspen_mm::errno::Errno;

use crate::memory::user_env::KernelMm;

/// The most descriptors a process may have open (Linux's default
/// `RLIMIT_NOFILE`).
pub const MAX_FDS: usize = 1024;

/// What a descriptor refers to.
#[derive(Clone)]
pub enum Description {
    /// The serial console (`/dev/console`, and fds 0-2 of init).
    Console,
    /// A file or directory of the file tree.
    File(Arc<OpenFile<KernelMm>>),
    /// A `/proc` file: its text, made at open, and the read position.
    Snapshot(Arc<Snapshot>),
}

/// The contents of a synthesized file, fixed when it was opened.
pub struct Snapshot {
    pub data: Vec<u8>,
    pub position: spin::Mutex<usize>,
    /// Directory entries (name, inode, DT_ type) for a `/proc` directory.
    pub entries: Vec<(alloc::string::String, u64, u8)>,
}

#[derive(Clone)]
struct Slot {
    description: Description,
    close_on_exec: bool,
}

/// A process's descriptor table.
#[derive(Clone, Default)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
}

impl FdTable {
    /// Installs `description` at the lowest free descriptor.
    pub fn insert(&mut self, description: Description, close_on_exec: bool) -> Result<usize, Errno> {
        let slot = Some(Slot { description, close_on_exec });
        if let Some(fd) = self.slots.iter().position(Option::is_none) {
            self.slots[fd] = slot;
            return Ok(fd);
        }
        if self.slots.len() >= MAX_FDS {
            return Err(Errno::EMFILE);
        }
        self.slots.push(slot);
        Ok(self.slots.len() - 1)
    }

    pub fn get(&self, fd: u64) -> Result<Description, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|fd| self.slots.get(fd))
            .and_then(|s| s.as_ref())
            .map(|s| s.description.clone())
            .ok_or(Errno::EBADF)
    }

    pub fn close(&mut self, fd: u64) -> Result<(), Errno> {
        let slot = usize::try_from(fd).ok().and_then(|fd| self.slots.get_mut(fd)).ok_or(Errno::EBADF)?;
        slot.take().map(|_| ()).ok_or(Errno::EBADF)
    }

    /// Drops the descriptors marked close-on-exec.
    pub fn close_on_exec(&mut self) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|s| s.close_on_exec) {
                *slot = None;
            }
        }
    }
}
