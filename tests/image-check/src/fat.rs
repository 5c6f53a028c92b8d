//! The boot partition's FAT file system, read with the `fatfs` crate through a
//! read-only view of the partition's bytes: the root directory's files and
//! their contents.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

use fatfs::{FatType, FileSystem, FsOptions};

/// At most this many root directory entries are read (a damaged cluster chain
/// must not make the listing endless).
const MAX_ROOT_ENTRIES: usize = 4096;

/// A read-only `Read + Write + Seek` view of a byte slice: every write fails,
/// so the file system library cannot change the image under test.
pub struct ReadOnlySlice<'a> {
    data: &'a [u8],
    pos: u64,
}

impl<'a> ReadOnlySlice<'a> {
    /// A reader of `data`, positioned at its start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
}

impl Read for ReadOnlySlice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.data.len() as u64;
        let start = self.pos.min(len) as usize;
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for ReadOnlySlice<'_> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::PermissionDenied, "the image is read-only"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for ReadOnlySlice<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => (self.data.len() as u64).checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start")),
        }
    }
}

/// What the root directory of a FAT volume holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootListing {
    /// "FAT12", "FAT16" or "FAT32".
    pub fat_type: &'static str,
    /// Data clusters of the volume.
    pub clusters: u32,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Files by name (long name where there is one), with their contents.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Names of subdirectories.
    pub dirs: Vec<String>,
}

fn fat_name(t: FatType) -> &'static str {
    match t {
        FatType::Fat12 => "FAT12",
        FatType::Fat16 => "FAT16",
        FatType::Fat32 => "FAT32",
    }
}

/// Opens the FAT volume in `partition` and reads its root directory.
pub fn read_root(partition: &[u8]) -> Result<RootListing, String> {
    let fs = FileSystem::new(ReadOnlySlice::new(partition), FsOptions::new())
        .map_err(|e| format!("not a FAT file system: {e}"))?;
    let stats = fs.stats().map_err(|e| format!("cannot read the FAT: {e}"))?;
    let mut listing = RootListing {
        fat_type: fat_name(fs.fat_type()),
        clusters: stats.total_clusters(),
        cluster_size: stats.cluster_size(),
        files: BTreeMap::new(),
        dirs: Vec::new(),
    };
    let root = fs.root_dir();
    for (i, entry) in root.iter().enumerate() {
        if i >= MAX_ROOT_ENTRIES {
            return Err(format!("root directory has more than {MAX_ROOT_ENTRIES} entries"));
        }
        let entry = entry.map_err(|e| format!("cannot read the root directory: {e}"))?;
        let name = entry.file_name();
        if name == "." || name == ".." {
            continue;
        }
        if entry.is_dir() {
            listing.dirs.push(name);
            continue;
        }
        let expected_len = entry.len();
        let mut data = Vec::with_capacity(expected_len.min(partition.len() as u64) as usize);
        entry.to_file().read_to_end(&mut data).map_err(|e| format!("cannot read {name}: {e}"))?;
        if data.len() as u64 != expected_len {
            return Err(format!("{name}: read {} bytes, its entry says {expected_len}", data.len()));
        }
        listing.files.insert(name, data);
    }
    Ok(listing)
}

/// Synthetic FAT32 volumes for tests, made with `fatfs` itself.
#[cfg(test)]
pub(crate) mod synth {
    use std::io::{Cursor, Write};

    use fatfs::{FatType, FileSystem, FormatVolumeOptions, FsOptions};

    /// Sectors of a synthetic FAT32 volume: 34 MiB, 512-byte clusters, enough
    /// clusters (over 65525) to be FAT32.
    pub const SECTORS: u32 = 34 * 2048;

    /// A FAT32 volume of `SECTORS` sectors holding `files` in its root.
    pub fn volume(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut disk = Cursor::new(vec![0u8; SECTORS as usize * 512]);
        fatfs::format_volume(
            &mut disk,
            FormatVolumeOptions::new()
                .fat_type(FatType::Fat32)
                .bytes_per_cluster(512)
                .total_sectors(SECTORS)
                .volume_label(*b"ASPEN-BOOT "),
        )
        .unwrap();
        disk.set_position(0);
        {
            let fs = FileSystem::new(&mut disk, FsOptions::new()).unwrap();
            for (name, data) in files {
                fs.root_dir().create_file(name).unwrap().write_all(data).unwrap();
            }
            fs.unmount().unwrap();
        }
        disk.into_inner()
    }

    /// A whole disk image: MBR with one partition (type `kind`) at 1 MiB
    /// holding `volume`.
    pub fn disk(volume: &[u8], kind: u8) -> Vec<u8> {
        let sectors = (volume.len() / 512) as u32;
        let s0 = crate::mbr::synth::sector0(&[(0, kind, 2048, sectors)]);
        let mut img = crate::mbr::synth::image(&s0, 2048 + sectors as usize);
        img[1 << 20..].copy_from_slice(volume);
        img
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_slice_reads_seeks_and_refuses_writes() {
        let data = [1u8, 2, 3, 4, 5];
        let mut s = ReadOnlySlice::new(&data);
        let mut buf = [0u8; 3];
        assert_eq!(s.read(&mut buf).unwrap(), 3);
        assert_eq!(buf, [1, 2, 3]);
        assert_eq!(s.seek(SeekFrom::End(-1)).unwrap(), 4);
        assert_eq!(s.read(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], 5);
        assert_eq!(s.read(&mut buf).unwrap(), 0);
        assert_eq!(s.seek(SeekFrom::Start(100)).unwrap(), 100);
        assert_eq!(s.read(&mut buf).unwrap(), 0);
        assert!(s.seek(SeekFrom::Current(-1000)).is_err());
        assert_eq!(s.write(&[0]).unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn lists_a_synthetic_fat32_root() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let vol = synth::volume(&[("kernel8.img", &big), ("config.txt", b"arm_64bit=1\n"), ("EMPTY", b"")]);
        let root = read_root(&vol).unwrap();
        assert_eq!(root.fat_type, "FAT32");
        assert!(root.clusters >= 65525, "{} clusters", root.clusters);
        assert_eq!(root.cluster_size, 512);
        assert_eq!(root.files.len(), 3);
        assert_eq!(root.files["kernel8.img"], big);
        assert_eq!(root.files["config.txt"], b"arm_64bit=1\n");
        assert_eq!(root.files["EMPTY"], b"");
        assert!(root.dirs.is_empty());
    }

    #[test]
    fn rejects_what_is_not_fat() {
        let zeros = vec![0u8; 1 << 20];
        assert!(read_root(&zeros).unwrap_err().starts_with("not a FAT file system"));
        assert!(read_root(&[]).is_err());
    }
}
