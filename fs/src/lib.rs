//! Aspen's file systems.
//!
//! One tree of nodes: the initramfs (cpio newc, read-only) is its root, and
//! a tmpfs (writable, in memory) is mounted at `/tmp`. File data lives in
//! `mm`'s page cache ([`FileObject`]), so `read`/`write` and mappings of a
//! file see the same pages. Character devices (`/dev/console`) are nodes
//! the kernel gives meaning to. Symbolic links are nodes too; every path
//! lookup is one walk that follows them. A pipe's bytes live in a [`PipeBuffer`]
//! (the kernel adds the ends and the waiting).

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod cpio;
mod pipe;
mod vfs;

/// `openat`'s flags, from the ABI crate.
pub use aspen_abi::fcntl::OpenFlags;
pub use pipe::{PipeBuffer, PIPE_CAPACITY, PIPE_PAGES};
pub use vfs::{
    set_clock, Dirent, MountKind, MountPoint, Node, NodeKind, OpenFile, Quota, ReadIntoError, Stat, Vfs, Walked,
    Whence, MAX_SYMLINKS, NAME_MAX, PATH_MAX, RAMFS_MAGIC, TMPFS_MAGIC,
};

#[cfg(test)]
mod tests;
