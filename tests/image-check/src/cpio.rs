//! A reader of cpio archives in the "newc" format (magic 070701), the format
//! of a Linux-style initramfs, as scripts/mk-initramfs.sh writes it.

/// File type bits of `mode`.
pub const S_IFMT: u32 = 0o170000;
/// `S_IFMT` value of a directory.
pub const S_IFDIR: u32 = 0o040000;
/// `S_IFMT` value of a regular file.
pub const S_IFREG: u32 = 0o100000;
/// `S_IFMT` value of a character device.
pub const S_IFCHR: u32 = 0o020000;
/// `S_IFMT` value of a symbolic link.
pub const S_IFLNK: u32 = 0o120000;

const HEADER: usize = 110;
const TRAILER: &str = "TRAILER!!!";

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path within the archive, without the name's terminating NUL.
    pub name: String,
    /// Inode number.
    pub ino: u32,
    /// File type and permission bits.
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Number of links.
    pub nlink: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
    /// Major number of the device a device node stands for.
    pub rdev_major: u32,
    /// Minor number of the device a device node stands for.
    pub rdev_minor: u32,
    /// The file's contents (a symbolic link's: its target).
    pub data: Vec<u8>,
}

impl Entry {
    /// Whether the entry is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    /// Whether the entry is the character device `major`:`minor`.
    pub fn is_char_device(&self, major: u32, minor: u32) -> bool {
        self.mode & S_IFMT == S_IFCHR && self.rdev_major == major && self.rdev_minor == minor
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses a whole archive up to its trailer; what follows the trailer must be
/// zero padding.
pub fn parse(archive: &[u8]) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut off = 0usize;
    loop {
        let hdr =
            archive.get(off..off + HEADER).ok_or_else(|| format!("truncated header at byte {off} (no {TRAILER})"))?;
        if &hdr[..6] != b"070701" {
            return Err(format!("bad magic {:?} at byte {off}, not 070701 (newc)", String::from_utf8_lossy(&hdr[..6])));
        }
        let at = off;
        let field = move |i: usize| -> Result<u32, String> {
            let s = std::str::from_utf8(&hdr[6 + 8 * i..14 + 8 * i]).map_err(|_| format!("bad header at byte {at}"))?;
            u32::from_str_radix(s, 16).map_err(|_| format!("bad header field {s:?} at byte {at}"))
        };
        let namesize = field(11)? as usize;
        let filesize = field(6)? as usize;
        if namesize == 0 {
            return Err(format!("empty name at byte {off}"));
        }
        let name_bytes = archive
            .get(off + HEADER..off + HEADER + namesize)
            .ok_or_else(|| format!("truncated name at byte {off}"))?;
        if name_bytes[namesize - 1] != 0 {
            return Err(format!("name at byte {off} is not NUL-terminated"));
        }
        let name = String::from_utf8_lossy(&name_bytes[..namesize - 1]).into_owned();
        let data_start = align4(off + HEADER + namesize);
        let data =
            archive.get(data_start..data_start + filesize).ok_or_else(|| format!("truncated data of {name}"))?.to_vec();
        off = align4(data_start + filesize);
        if name == TRAILER {
            break;
        }
        entries.push(Entry {
            name,
            ino: field(0)?,
            mode: field(1)?,
            uid: field(2)?,
            gid: field(3)?,
            nlink: field(4)?,
            mtime: field(5)?,
            rdev_major: field(9)?,
            rdev_minor: field(10)?,
            data,
        });
    }
    if archive.get(off..).is_some_and(|rest| rest.iter().any(|&b| b != 0)) {
        return Err(format!("data after the trailer at byte {off}"));
    }
    Ok(entries)
}

/// Checks what every Aspen initramfs holds: the directories dev, tmp and proc
/// and the console device dev/console (character 5:1). Returns a summary.
pub fn check_initramfs(archive: &[u8]) -> Result<String, String> {
    let entries = parse(archive)?;
    let find = |n: &str| entries.iter().find(|e| e.name == n || e.name.strip_prefix("./") == Some(n));
    let mut missing = Vec::new();
    for d in ["dev", "tmp", "proc"] {
        if !find(d).is_some_and(Entry::is_dir) {
            missing.push(format!("directory {d}"));
        }
    }
    if !find("dev/console").is_some_and(|e| e.is_char_device(5, 1)) {
        missing.push("character device dev/console 5:1".to_string());
    }
    if missing.is_empty() {
        Ok(format!("newc archive of {} entries with dev, tmp, proc and dev/console (5:1)", entries.len()))
    } else {
        Err(format!("newc archive of {} entries without {}", entries.len(), missing.join(", ")))
    }
}

/// Archives written entry by entry, for tests.
#[cfg(test)]
pub(crate) mod synth {
    /// One newc record.
    pub fn record(name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> Vec<u8> {
        let namez = format!("{name}\0");
        let fields = [1, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, namez.len() as u32, 0];
        let mut r = b"070701".to_vec();
        for f in fields {
            r.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        r.extend_from_slice(namez.as_bytes());
        r.resize(r.len().next_multiple_of(4), 0);
        r.extend_from_slice(data);
        r.resize(r.len().next_multiple_of(4), 0);
        r
    }

    pub fn trailer() -> Vec<u8> {
        record("TRAILER!!!", 0, (0, 0), b"")
    }
}

#[cfg(test)]
mod tests {
    use super::synth::{record, trailer};
    use super::*;

    fn good() -> Vec<u8> {
        let mut a = Vec::new();
        a.extend(record("dev", S_IFDIR | 0o755, (0, 0), b""));
        a.extend(record("dev/console", S_IFCHR | 0o600, (5, 1), b""));
        a.extend(record("etc/aspen-release", S_IFREG | 0o644, (0, 0), b"Aspen\n"));
        a.extend(record("proc", S_IFDIR | 0o555, (0, 0), b""));
        a.extend(record("tmp", S_IFDIR | 0o1777, (0, 0), b""));
        a.extend(trailer());
        a.resize(a.len().next_multiple_of(512), 0);
        a
    }

    #[test]
    fn parses_records_and_checks_the_essentials() {
        let entries = parse(&good()).unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[2].name, "etc/aspen-release");
        assert_eq!(entries[2].data, b"Aspen\n");
        assert!(entries[1].is_char_device(5, 1));
        assert!(check_initramfs(&good()).is_ok());
    }

    #[test]
    fn reports_a_missing_console() {
        let mut a = record("dev", S_IFDIR | 0o755, (0, 0), b"");
        a.extend(record("dev/console", S_IFREG | 0o600, (0, 0), b""));
        a.extend(trailer());
        let e = check_initramfs(&a).unwrap_err();
        assert!(e.contains("directory tmp") && e.contains("directory proc") && e.contains("dev/console"), "{e}");
    }

    #[test]
    fn rejects_bad_archives() {
        let a = good();
        assert!(parse(&a[..200]).unwrap_err().contains("truncated"));
        let mut b = a.clone();
        b[5] = b'2'; // 070702: the crc variant
        assert!(parse(&b).unwrap_err().contains("bad magic"));
        let mut c = a.clone();
        let last = c.len() - 1;
        c[last] = 1;
        assert!(parse(&c).unwrap_err().contains("after the trailer"));
        assert!(parse(&[]).is_err());
    }
}
