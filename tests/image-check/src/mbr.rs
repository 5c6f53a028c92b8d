//! The MBR (dos) partition table: the four primary entries of sector 0 and the
//! rules the Raspberry Pi 4 boot image follows (one FAT32 LBA partition at
//! 1 MiB).

use core::fmt;
use core::ops::Range;

/// Bytes per sector of the image.
pub const SECTOR: u64 = 512;
/// Partition type of the boot partition: W95 FAT32 (LBA).
pub const BOOT_PARTITION_TYPE: u8 = 0x0c;
/// First sector of the boot partition: 1 MiB.
pub const BOOT_PARTITION_START: u32 = 2048;

/// Offset of the first of the four 16-byte partition entries in sector 0.
const TABLE_OFFSET: usize = 446;
/// Offset of the boot signature 0x55 0xAA.
const SIGNATURE_OFFSET: usize = 510;

/// One used entry of the partition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// Entry number, 1 to 4.
    pub number: usize,
    /// Status byte: 0x80 active (bootable), 0x00 inactive.
    pub status: u8,
    /// Partition type.
    pub kind: u8,
    /// First sector.
    pub start_lba: u32,
    /// Length in sectors.
    pub sectors: u32,
}

impl Partition {
    /// The partition's bytes in the image, end exclusive.
    pub fn byte_range(&self) -> Range<u64> {
        let start = u64::from(self.start_lba) * SECTOR;
        start..start + u64::from(self.sectors) * SECTOR
    }
}

/// Why an image's partition table is not that of an Aspen boot image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MbrError {
    /// The image is shorter than one sector.
    TooShort(usize),
    /// Bytes 510 and 511 are not 0x55 0xAA.
    BadSignature([u8; 2]),
    /// An entry has a status byte other than 0x00 or 0x80.
    BadStatus {
        /// Entry number, 1 to 4.
        number: usize,
        /// The status byte found.
        status: u8,
    },
    /// No entry is used.
    NoPartition,
    /// More than one entry is used.
    TooManyPartitions(usize),
    /// The partition's type is not 0x0c.
    WrongType(u8),
    /// The partition does not start at sector 2048.
    WrongStart(u32),
    /// The partition has no sectors.
    Empty,
    /// The partition ends past the end of the image.
    DoesNotFit {
        /// Byte offset where the partition ends (exclusive).
        end: u64,
        /// The image's length in bytes.
        image: u64,
    },
}

impl fmt::Display for MbrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort(n) => write!(f, "image is {n} bytes, shorter than one sector"),
            Self::BadSignature([a, b]) => {
                write!(f, "boot signature is 0x{a:02X}{b:02X}, not 0x55AA")
            }
            Self::BadStatus { number, status } => {
                write!(f, "partition {number} has status 0x{status:02x}, not 0x00 or 0x80")
            }
            Self::NoPartition => write!(f, "no partition"),
            Self::TooManyPartitions(n) => write!(f, "{n} partitions, not one"),
            Self::WrongType(t) => {
                write!(f, "partition type 0x{t:02x}, not 0x{BOOT_PARTITION_TYPE:02x} (W95 FAT32 LBA)")
            }
            Self::WrongStart(s) => {
                write!(f, "partition starts at LBA {s}, not {BOOT_PARTITION_START}")
            }
            Self::Empty => write!(f, "partition has no sectors"),
            Self::DoesNotFit { end, image } => {
                write!(f, "partition ends at byte {end}, past the image's {image} bytes")
            }
        }
    }
}

impl std::error::Error for MbrError {}

/// Checks the boot signature and returns the used entries (type not 0).
pub fn partitions(image: &[u8]) -> Result<Vec<Partition>, MbrError> {
    if image.len() < SECTOR as usize {
        return Err(MbrError::TooShort(image.len()));
    }
    let sig = [image[SIGNATURE_OFFSET], image[SIGNATURE_OFFSET + 1]];
    if sig != [0x55, 0xAA] {
        return Err(MbrError::BadSignature(sig));
    }
    let mut used = Vec::new();
    for i in 0..4 {
        let e = &image[TABLE_OFFSET + 16 * i..TABLE_OFFSET + 16 * (i + 1)];
        let le32 = |o: usize| u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]);
        let p = Partition { number: i + 1, status: e[0], kind: e[4], start_lba: le32(8), sectors: le32(12) };
        if p.kind == 0 {
            continue;
        }
        if p.status != 0 && p.status != 0x80 {
            return Err(MbrError::BadStatus { number: p.number, status: p.status });
        }
        used.push(p);
    }
    Ok(used)
}

/// Exactly one used entry, or why not.
pub fn single(parts: &[Partition]) -> Result<Partition, MbrError> {
    match parts {
        [] => Err(MbrError::NoPartition),
        [p] => Ok(*p),
        more => Err(MbrError::TooManyPartitions(more.len())),
    }
}

/// The partition's type is W95 FAT32 (LBA).
pub fn check_type(p: &Partition) -> Result<(), MbrError> {
    if p.kind == BOOT_PARTITION_TYPE {
        Ok(())
    } else {
        Err(MbrError::WrongType(p.kind))
    }
}

/// The partition starts at 1 MiB.
pub fn check_start(p: &Partition) -> Result<(), MbrError> {
    if p.start_lba == BOOT_PARTITION_START {
        Ok(())
    } else {
        Err(MbrError::WrongStart(p.start_lba))
    }
}

/// The partition is not empty and lies within an image of `image_len` bytes.
pub fn check_fits(p: &Partition, image_len: u64) -> Result<(), MbrError> {
    if p.sectors == 0 {
        return Err(MbrError::Empty);
    }
    let end = p.byte_range().end;
    if end > image_len {
        return Err(MbrError::DoesNotFit { end, image: image_len });
    }
    Ok(())
}

/// The image's boot partition, checked against every rule above.
pub fn boot_partition(image: &[u8]) -> Result<Partition, MbrError> {
    let p = single(&partitions(image)?)?;
    check_type(&p)?;
    check_start(&p)?;
    check_fits(&p, image.len() as u64)?;
    Ok(p)
}

/// Synthetic partition tables for tests.
#[cfg(test)]
pub(crate) mod synth {
    /// Sector 0 with the signature and the given (status, type, start, sectors) entries.
    pub fn sector0(entries: &[(u8, u8, u32, u32)]) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        for (i, &(status, kind, start, sectors)) in entries.iter().enumerate() {
            let e = &mut s[446 + 16 * i..446 + 16 * (i + 1)];
            e[0] = status;
            e[4] = kind;
            e[8..12].copy_from_slice(&start.to_le_bytes());
            e[12..16].copy_from_slice(&sectors.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    /// An image of `sectors` sectors whose sector 0 is `sector0`.
    pub fn image(sector0: &[u8], sectors: usize) -> Vec<u8> {
        let mut img = vec![0u8; sectors * 512];
        img[..512].copy_from_slice(sector0);
        img
    }
}

#[cfg(test)]
mod tests {
    use super::synth::{image, sector0};
    use super::*;

    const SECTORS: usize = 4096;

    #[test]
    fn accepts_one_fat32_lba_partition_at_1mib() {
        let img = image(&sector0(&[(0, 0x0c, 2048, 2048)]), SECTORS);
        let p = boot_partition(&img).unwrap();
        assert_eq!(p, Partition { number: 1, status: 0, kind: 0x0c, start_lba: 2048, sectors: 2048 });
        assert_eq!(p.byte_range(), 1 << 20..2 << 20);
    }

    #[test]
    fn accepts_the_bootable_flag() {
        let img = image(&sector0(&[(0x80, 0x0c, 2048, 100)]), SECTORS);
        assert_eq!(boot_partition(&img).unwrap().status, 0x80);
    }

    #[test]
    fn rejects_a_bad_signature() {
        let mut s = sector0(&[(0, 0x0c, 2048, 2048)]);
        s[511] = 0xAB;
        assert_eq!(boot_partition(&image(&s, SECTORS)), Err(MbrError::BadSignature([0x55, 0xAB])));
        let zero = vec![0u8; 512];
        assert_eq!(partitions(&zero), Err(MbrError::BadSignature([0, 0])));
    }

    #[test]
    fn rejects_a_short_image() {
        assert_eq!(partitions(&[0u8; 100]), Err(MbrError::TooShort(100)));
        assert_eq!(partitions(&[]), Err(MbrError::TooShort(0)));
    }

    #[test]
    fn rejects_two_partitions() {
        let img = image(&sector0(&[(0, 0x0c, 2048, 1024), (0, 0x83, 3072, 1024)]), SECTORS);
        assert_eq!(partitions(&img).unwrap().len(), 2);
        assert_eq!(boot_partition(&img), Err(MbrError::TooManyPartitions(2)));
    }

    #[test]
    fn rejects_no_partition() {
        let img = image(&sector0(&[]), SECTORS);
        assert_eq!(boot_partition(&img), Err(MbrError::NoPartition));
    }

    #[test]
    fn finds_a_partition_in_a_later_slot() {
        let img = image(&sector0(&[(0, 0, 0, 0), (0, 0, 0, 0), (0, 0x0c, 2048, 8)]), SECTORS);
        assert_eq!(boot_partition(&img).unwrap().number, 3);
    }

    #[test]
    fn rejects_the_wrong_type() {
        for kind in [0x0b, 0x06, 0x83, 0xee] {
            let img = image(&sector0(&[(0, kind, 2048, 2048)]), SECTORS);
            assert_eq!(boot_partition(&img), Err(MbrError::WrongType(kind)));
        }
    }

    #[test]
    fn rejects_the_wrong_start() {
        let img = image(&sector0(&[(0, 0x0c, 63, 2048)]), SECTORS);
        assert_eq!(boot_partition(&img), Err(MbrError::WrongStart(63)));
    }

    #[test]
    fn rejects_a_partition_past_the_image() {
        let img = image(&sector0(&[(0, 0x0c, 2048, 2049)]), SECTORS);
        assert_eq!(boot_partition(&img), Err(MbrError::DoesNotFit { end: 4097 * 512, image: 4096 * 512 }));
        // Exactly to the end is fine.
        let img = image(&sector0(&[(0, 0x0c, 2048, 2048)]), SECTORS);
        assert!(boot_partition(&img).is_ok());
    }

    #[test]
    fn rejects_an_empty_partition_and_a_bad_status() {
        let img = image(&sector0(&[(0, 0x0c, 2048, 0)]), SECTORS);
        assert_eq!(boot_partition(&img), Err(MbrError::Empty));
        let img = image(&sector0(&[(0x81, 0x0c, 2048, 8)]), SECTORS);
        assert_eq!(boot_partition(&img), Err(MbrError::BadStatus { number: 1, status: 0x81 }));
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(MbrError::WrongType(0x83).to_string(), "partition type 0x83, not 0x0c (W95 FAT32 LBA)");
        assert_eq!(MbrError::BadSignature([0, 0]).to_string(), "boot signature is 0x0000, not 0x55AA");
    }
}
