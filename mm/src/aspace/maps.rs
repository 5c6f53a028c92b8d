//! Introspection: the vareas as `/proc/<pid>/maps` lists them.

use core::fmt;

use super::varea::{Backing, Prot, Varea};
use super::{AddressSpace, MmEnv};
use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::object::FileIdentity;

/// What a varea maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VareaKind<'a> {
    /// Private anonymous memory (heap, stack, bss, MAP_ANONYMOUS).
    Anonymous,
    /// Shared anonymous memory.
    SharedAnonymous,
    /// A file, from byte `offset` on.
    File {
        /// Which file: device, inode and path.
        identity: &'a FileIdentity,
        /// Where in the file the varea's first page is, in bytes.
        offset: u64,
        /// `MAP_SHARED` rather than `MAP_PRIVATE`.
        shared: bool,
    },
    /// Device frames from `pa` on.
    Device {
        /// The physical address of the varea's first page.
        pa: PhysAddr,
    },
}

/// One varea, as introspection sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VareaInfo<'a> {
    /// The addresses the varea covers, page-aligned.
    pub range: VirtRange,
    /// What user code may do there now.
    pub prot: Prot,
    /// Locked by mlock: populated, and kept so.
    pub locked: bool,
    /// What the varea maps.
    pub kind: VareaKind<'a>,
    /// `[heap]` or `[stack]` when the varea holds the program break area or
    /// the initial stack pointer.
    pub label: Option<&'static str>,
}

impl<'a> VareaInfo<'a> {
    fn new<E: MmEnv>(start: VirtAddr, varea: &'a Varea<'_, E>, label: Option<&'static str>) -> Self {
        let kind = match &varea.backing {
            Backing::Anon => VareaKind::Anonymous,
            Backing::Object { object, shared: true, .. } if object.is_anonymous() => VareaKind::SharedAnonymous,
            Backing::Object { object, first_page, shared } => VareaKind::File {
                identity: object.identity(),
                offset: first_page << crate::addr::PAGE_SHIFT,
                shared: *shared,
            },
            Backing::Device { pa } => VareaKind::Device { pa: *pa },
        };
        Self { range: VirtRange::new(start, varea.end_exclusive), prot: varea.prot, locked: varea.locked, kind, label }
    }

    /// Whether the mapping is shared (`s` in maps) rather than private (`p`).
    pub fn is_shared(&self) -> bool {
        match self.kind {
            VareaKind::Anonymous => false,
            VareaKind::SharedAnonymous | VareaKind::Device { .. } => true,
            VareaKind::File { shared, .. } => shared,
        }
    }

    /// The line for `/proc/<pid>/maps`, formatted as Linux does.
    pub fn maps_line(&self) -> MapsLine<'_, 'a> {
        MapsLine(self)
    }
}

/// Displays a [`VareaInfo`] as one `/proc/<pid>/maps` line (without the
/// newline): `start-end perms offset major:minor inode`, then the name
/// padded to column 74, as Linux's `show_map_vma`.
pub struct MapsLine<'i, 'a>(&'i VareaInfo<'a>);

/// Counts what is written, to pad to a column.
struct Counter<'w, 'f> {
    out: &'w mut fmt::Formatter<'f>,
    written: usize,
}

impl fmt::Write for Counter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.written += s.len();
        self.out.write_str(s)
    }
}

impl fmt::Display for MapsLine<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        let info = self.0;
        let flag = |p: Prot, c: char| if info.prot.contains(p) { c } else { '-' };
        let (offset, major, minor, inode, path) = match info.kind {
            VareaKind::Anonymous => (0, 0, 0, 0, None),
            VareaKind::SharedAnonymous => (0, 0, 1, 0, Some("/dev/zero (deleted)")),
            VareaKind::File { identity, offset, .. } => {
                (offset, identity.major, identity.minor, identity.inode, Some(identity.path.as_str()))
            }
            VareaKind::Device { pa } => (pa.as_u64(), 0, 0, 0, None),
        };
        let mut out = Counter { out: f, written: 0 };
        write!(
            out,
            "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
            info.range.start.as_u64(),
            info.range.end_exclusive.as_u64(),
            flag(Prot::READ, 'r'),
            flag(Prot::WRITE, 'w'),
            flag(Prot::EXEC, 'x'),
            if info.is_shared() { 's' } else { 'p' },
            offset,
            major,
            minor,
            inode,
        )?;
        if let Some(name) = info.label.or(path) {
            // Linux pads to 25 + 6 * sizeof(void *) - 1 columns, then a space.
            const COLUMN: usize = 25 + 6 * 8 - 1;
            for _ in out.written..COLUMN {
                out.write_char(' ')?;
            }
            out.write_char(' ')?;
            out.write_str(name)?;
        }
        Ok(())
    }
}

impl<'e, E: MmEnv> AddressSpace<'e, E> {
    /// The vareas in address order, for `/proc/<pid>/maps`.
    pub fn vareas(&self) -> impl Iterator<Item = VareaInfo<'_>> + '_ {
        let brk = self.brk;
        let stack = self.stack_start;
        self.vareas.iter().map(move |(start, varea)| {
            // Linux's rules: the varea overlapping start_brk..brk is the
            // heap, the one holding start_stack the stack.
            let heap = brk.is_some_and(|b| start < b.current && varea.end_exclusive > b.start);
            let label = if heap {
                Some("[heap]")
            } else if stack.is_some_and(|sp| start <= sp && varea.end_exclusive >= sp) {
                Some("[stack]")
            } else {
                None
            };
            VareaInfo::new(start, varea, label)
        })
    }

    /// Writes `/proc/<pid>/maps`: one line per varea.
    pub fn write_maps(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        for info in self.vareas() {
            writeln!(out, "{}", info.maps_line())?;
        }
        Ok(())
    }
}
