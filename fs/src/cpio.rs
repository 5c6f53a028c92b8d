//! The cpio "newc" archive format (`070701`), as Linux initramfs images use
//! it: a 110-byte ASCII-hex header, the NUL-terminated name padded to 4
//! bytes, the data padded to 4 bytes, until the entry `TRAILER!!!`.

use aspen_abi::syscall::FileType;

/// One archive member, borrowing the archive's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The path inside the archive, without a leading `./` or `/`.
    pub name: &'a str,
    /// `c_ino`: the inode number the archive gives (the VFS numbers its
    /// nodes itself).
    pub ino: u32,
    /// `c_mode`: file type and permission bits, as in `st_mode`.
    pub mode: u32,
    /// `c_rdevmajor`: a device node's major number.
    pub rdev_major: u32,
    /// `c_rdevminor`: a device node's minor number.
    pub rdev_minor: u32,
    /// The member's data: a file's contents, a symbolic link's target;
    /// empty for directories and devices.
    pub data: &'a [u8],
}

/// Why an archive could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpioError {
    /// A header does not start with `070701` (offset of the header).
    BadMagic(usize),
    /// A header field is not hexadecimal.
    BadField(usize),
    /// The archive ends inside an entry.
    Truncated(usize),
    /// A name is not UTF-8 or has no terminating NUL.
    BadName(usize),
}

const HEADER_LEN: usize = 110;
const MAGIC: &[u8] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// The file-type bits of a mode, from the ABI crate.
pub use aspen_abi::syscall::S_IFMT;
/// File type: directory.
pub const S_IFDIR: u32 = FileType::Directory.mode_bits();
/// File type: regular file.
pub const S_IFREG: u32 = FileType::Regular.mode_bits();
/// File type: character device.
pub const S_IFCHR: u32 = FileType::CharDevice.mode_bits();
/// File type: symbolic link.
pub const S_IFLNK: u32 = FileType::Symlink.mode_bits();

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn hex_field(header: &[u8], index: usize, at: usize) -> Result<u32, CpioError> {
    let field = &header[6 + index * 8..6 + index * 8 + 8];
    let text = core::str::from_utf8(field).map_err(|_| CpioError::BadField(at))?;
    u32::from_str_radix(text, 16).map_err(|_| CpioError::BadField(at))
}

/// Iterates over the members of a newc archive up to its trailer. Several
/// archives may follow each other (as the kernel allows); zero padding
/// between them is skipped.
pub struct Reader<'a> {
    archive: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Reader<'a> {
    /// Reads `archive` from its first byte.
    pub fn new(archive: &'a [u8]) -> Self {
        Self { archive, at: 0, done: false }
    }

    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, CpioError> {
        loop {
            // Padding between concatenated archives.
            while self.at < self.archive.len() && self.archive[self.at] == 0 {
                self.at += 1;
            }
            let at = self.at;
            if at >= self.archive.len() {
                return Ok(None);
            }
            let header = self.archive.get(at..at + HEADER_LEN).ok_or(CpioError::Truncated(at))?;
            if &header[..6] != MAGIC {
                return Err(CpioError::BadMagic(at));
            }
            let ino = hex_field(header, 0, at)?;
            let mode = hex_field(header, 1, at)?;
            let file_size = hex_field(header, 6, at)? as usize;
            let rdev_major = hex_field(header, 9, at)?;
            let rdev_minor = hex_field(header, 10, at)?;
            let name_size = hex_field(header, 11, at)? as usize;
            let name_start = at + HEADER_LEN;
            let name_end = name_start.checked_add(name_size).ok_or(CpioError::Truncated(at))?;
            let name_bytes = self.archive.get(name_start..name_end).ok_or(CpioError::Truncated(at))?;
            let (&nul, name) = name_bytes.split_last().ok_or(CpioError::BadName(at))?;
            if nul != 0 {
                return Err(CpioError::BadName(at));
            }
            let name = core::str::from_utf8(name).map_err(|_| CpioError::BadName(at))?;
            let data_start = align4(name_end);
            let data_end = data_start.checked_add(file_size).ok_or(CpioError::Truncated(at))?;
            let data = self.archive.get(data_start..data_end).ok_or(CpioError::Truncated(at))?;
            self.at = align4(data_end);
            if name == TRAILER {
                continue;
            }
            let name = name.trim_start_matches("./").trim_start_matches('/');
            if name.is_empty() || name == "." {
                continue;
            }
            return Ok(Some(Entry { name, ino, mode, rdev_major, rdev_minor, data }));
        }
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_entry().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Appends one newc member to `out`.
    pub(crate) fn push(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let fields = [1, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
        out.extend_from_slice(MAGIC);
        for f in fields {
            out.extend_from_slice(alloc::format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }

    pub(crate) fn archive(members: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, mode, data) in members {
            push(&mut out, name, *mode, data, (0, 0));
        }
        push(&mut out, TRAILER, 0, &[], (0, 0));
        out
    }

    #[test]
    fn reads_members_until_the_trailer() {
        let a = archive(&[
            (".", S_IFDIR | 0o755, b""),
            ("bin", S_IFDIR | 0o755, b""),
            ("bin/x", S_IFREG | 0o755, b"hello"),
        ]);
        let names: Vec<_> = Reader::new(&a).map(|e| e.unwrap().name).collect();
        assert_eq!(names, ["bin", "bin/x"]);
        let x = Reader::new(&a).map(Result::unwrap).find(|e| e.name == "bin/x").unwrap();
        assert_eq!(x.data, b"hello");
        assert_eq!(x.mode & S_IFMT, S_IFREG);
    }

    #[test]
    fn concatenated_archives_and_device_nodes() {
        let mut a = archive(&[("a", S_IFREG | 0o644, b"1")]);
        a.extend_from_slice(&[0; 512]);
        push(&mut a, "dev/console", S_IFCHR | 0o600, b"", (5, 1));
        push(&mut a, TRAILER, 0, &[], (0, 0));
        let entries: Vec<_> = Reader::new(&a).map(Result::unwrap).collect();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[1].rdev_major, entries[1].rdev_minor), (5, 1));
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let a = archive(&[("file", S_IFREG | 0o644, b"data data")]);
        assert_eq!(Reader::new(&a[..50]).next(), Some(Err(CpioError::Truncated(0))));
        let mut bad = a.clone();
        bad[0] = b'1';
        assert_eq!(Reader::new(&bad).next(), Some(Err(CpioError::BadMagic(0))));
        let mut bad = a.clone();
        bad[60] = b'z';
        assert!(matches!(Reader::new(&bad).next(), Some(Err(CpioError::BadField(0)))));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), cut in 0usize..600) {
            let mut a = archive(&[("f", S_IFREG, b"abc"), ("d", S_IFDIR, b"")]);
            let at = cut % a.len();
            a.truncate(at);
            a.extend_from_slice(&bytes);
            for _ in Reader::new(&a) {}
        }
    }
}
