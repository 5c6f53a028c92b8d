//! The checks of a Raspberry Pi 4 SD card image, each reported as one line.

use std::fmt;

use crate::{cpio, fat, mbr};

/// A file the boot partition must hold, with the build output it must equal.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Name in the root directory (compared without regard to case, as FAT does).
    pub name: String,
    /// Where the expected contents came from, for messages.
    pub source: String,
    /// The bytes the file must hold.
    pub contents: Vec<u8>,
}

/// What the image must be.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Exactly these files in the root directory, byte for byte.
    pub expect: Vec<Expected>,
    /// Lines config.txt must contain (compared with surrounding blanks trimmed).
    pub config_lines: Vec<String>,
    /// The text cmdline.txt must hold: one line, a final newline allowed.
    pub cmdline: Option<String>,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Whether the check passed.
    pub ok: bool,
    /// What was checked and, on failure, what was wrong.
    pub text: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", if self.ok { "ok  " } else { "FAIL" }, self.text)
    }
}

/// Every check of one image, in order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    pub(crate) fn add(&mut self, ok: bool, text: impl Into<String>) -> bool {
        self.checks.push(Check { ok, text: text.into() });
        ok
    }
    fn result<E: fmt::Display>(&mut self, what: &str, r: Result<(), E>) -> bool {
        match r {
            Ok(()) => self.add(true, what),
            Err(e) => self.add(false, format!("{what}: {e}")),
        }
    }
    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.ok).count()
    }
    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.checks.len() - self.passed()
    }
    /// Whether at least one check ran and none failed.
    pub fn all_passed(&self) -> bool {
        self.failed() == 0 && !self.checks.is_empty()
    }
    /// The failed checks' lines.
    pub fn failures(&self) -> Vec<String> {
        self.checks.iter().filter(|c| !c.ok).map(|c| c.text.clone()).collect()
    }
    /// `N passed, M failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Where two byte strings first differ, for a mismatch message.
pub fn describe_difference(actual: &[u8], expected: &[u8]) -> Option<String> {
    if actual == expected {
        return None;
    }
    let first = actual.iter().zip(expected).position(|(a, b)| a != b).unwrap_or(actual.len().min(expected.len()));
    let mut s = format!("{} bytes, expected {}", actual.len(), expected.len());
    if first < actual.len().min(expected.len()) {
        s += &format!(
            "; first difference at byte {first} (0x{first:x}): 0x{:02x}, expected 0x{:02x}",
            actual[first], expected[first]
        );
    } else {
        s += &format!("; equal for the first {first} bytes");
    }
    Some(s)
}

fn find<'a>(files: &'a std::collections::BTreeMap<String, Vec<u8>>, name: &str) -> Option<&'a Vec<u8>> {
    files.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// Runs every check on `image`.
pub fn check_image(image: &[u8], spec: &Spec) -> Report {
    let mut r = Report::default();

    // The partition table.
    let parts = match mbr::partitions(image) {
        Ok(p) => {
            r.add(true, "MBR boot signature 0x55AA");
            p
        }
        Err(e) => {
            r.add(false, format!("MBR: {e}"));
            r.add(false, "boot partition: not checked (no partition table)");
            return r;
        }
    };
    let part = match mbr::single(&parts) {
        Ok(p) => {
            r.add(true, format!("MBR has one partition (number {})", p.number));
            p
        }
        Err(e) => {
            let list: Vec<String> =
                parts.iter().map(|p| format!("{}: type 0x{:02x} at LBA {}", p.number, p.kind, p.start_lba)).collect();
            r.add(false, format!("MBR: {e} [{}]", list.join("; ")));
            r.add(false, "boot partition: not checked (no single partition)");
            return r;
        }
    };
    let type_ok = r.result("partition type 0x0c (W95 FAT32 LBA)", mbr::check_type(&part));
    let start_ok = r.result("partition starts at LBA 2048 (1 MiB)", mbr::check_start(&part));
    let range = part.byte_range();
    let fits = r.result(
        &format!(
            "partition of {} sectors (LBA {}..{}) lies within the image",
            part.sectors,
            part.start_lba,
            u64::from(part.start_lba) + u64::from(part.sectors)
        ),
        mbr::check_fits(&part, image.len() as u64),
    );
    let _ = (type_ok, start_ok);
    if !fits {
        r.add(false, "boot partition: not checked (past the end of the image)");
        return r;
    }

    // The file system.
    let partition = &image[range.start as usize..range.end as usize];
    let root = match fat::read_root(partition) {
        Ok(root) => root,
        Err(e) => {
            r.add(false, format!("FAT32 file system: {e}"));
            return r;
        }
    };
    r.add(
        root.fat_type == "FAT32",
        format!("{} file system: {} clusters of {} bytes", root.fat_type, root.clusters, root.cluster_size)
            + if root.fat_type == "FAT32" { "" } else { " (expected FAT32)" },
    );

    // Exactly the expected files.
    let mut unexpected: Vec<String> =
        root.files.keys().filter(|n| !spec.expect.iter().any(|e| e.name.eq_ignore_ascii_case(n))).cloned().collect();
    unexpected.extend(root.dirs.iter().map(|d| format!("{d}/")));
    let missing: Vec<&str> =
        spec.expect.iter().filter(|e| find(&root.files, &e.name).is_none()).map(|e| e.name.as_str()).collect();
    let names: Vec<&str> = spec.expect.iter().map(|e| e.name.as_str()).collect();
    if unexpected.is_empty() && missing.is_empty() {
        r.add(true, format!("root directory holds exactly {} files: {}", names.len(), names.join(", ")));
    } else {
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("missing {}", missing.join(", ")));
        }
        if !unexpected.is_empty() {
            why.push(format!("unexpected {}", unexpected.join(", ")));
        }
        r.add(false, format!("root directory: {}", why.join("; ")));
    }

    // Each file byte for byte.
    for e in &spec.expect {
        match find(&root.files, &e.name) {
            None => r.add(false, format!("{}: not in the image", e.name)),
            Some(actual) => match describe_difference(actual, &e.contents) {
                None => r.add(true, format!("{} equals {} ({} bytes)", e.name, e.source, actual.len())),
                Some(d) => r.add(false, format!("{} differs from {}: {d}", e.name, e.source)),
            },
        };
    }

    // config.txt and cmdline.txt.
    if !spec.config_lines.is_empty() {
        match find(&root.files, "config.txt") {
            None => {
                r.add(false, format!("config.txt: not in the image ({} lines not checked)", spec.config_lines.len()));
            }
            Some(text) => {
                let text = String::from_utf8_lossy(text);
                for want in &spec.config_lines {
                    let ok = text.lines().any(|l| l.trim() == want.trim());
                    r.add(ok, format!("config.txt has the line `{want}`"));
                }
            }
        }
    }
    if let Some(want) = &spec.cmdline {
        match find(&root.files, "cmdline.txt") {
            None => r.add(false, "cmdline.txt: not in the image"),
            Some(text) => {
                let text = String::from_utf8_lossy(text);
                let body = text.strip_suffix('\n').unwrap_or(&text);
                let body = body.strip_suffix('\r').unwrap_or(body);
                if body == want && !body.contains('\n') {
                    r.add(true, format!("cmdline.txt is `{want}`"))
                } else {
                    r.add(false, format!("cmdline.txt is {body:?}, expected {want:?}"))
                }
            }
        };
    }

    // The initramfs, where there is one.
    if let Some(archive) = find(&root.files, "initramfs.cpio") {
        match cpio::check_initramfs(archive) {
            Ok(s) => r.add(true, format!("initramfs.cpio: {s}")),
            Err(e) => r.add(false, format!("initramfs.cpio: {e}")),
        };
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fat::synth::{disk, volume};

    fn expected(name: &str, contents: &[u8]) -> Expected {
        Expected { name: name.into(), source: format!("build/{name}"), contents: contents.to_vec() }
    }

    const CONFIG: &[u8] = b"# comment\narm_64bit=1\nkernel_address=0x80000\ninitramfs initramfs.cpio followkernel\n";

    /// 70000 bytes without repeats: a 32-bit xorshift stream.
    fn kernel() -> Vec<u8> {
        let mut x = 0x2545_f491u32;
        (0..70_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    fn spec() -> Spec {
        Spec {
            expect: vec![
                expected("kernel8.img", &kernel()),
                expected("config.txt", CONFIG),
                expected("cmdline.txt", b"console=ttyAMA0,115200\n"),
            ],
            config_lines: vec!["arm_64bit=1".into(), "initramfs initramfs.cpio followkernel".into()],
            cmdline: Some("console=ttyAMA0,115200".into()),
        }
    }

    fn good_disk() -> Vec<u8> {
        disk(
            &volume(&[
                ("kernel8.img", &kernel()),
                ("config.txt", CONFIG),
                ("cmdline.txt", b"console=ttyAMA0,115200\n"),
            ]),
            0x0c,
        )
    }

    #[test]
    fn a_good_image_passes_every_check() {
        let r = check_image(&good_disk(), &spec());
        assert!(r.all_passed(), "{:#?}", r.failures());
        // signature, one partition, type, start, fits, FAT32, root set,
        // 3 files, 2 config lines, cmdline.
        assert_eq!(r.passed(), 13);
        assert_eq!(r.summary(), "13 passed, 0 failed");
        assert!(
            r.checks.iter().any(|c| c.to_string() == "ok   FAT32 file system: 68552 clusters of 512 bytes"),
            "{:#?}",
            r.checks
        );
    }

    #[test]
    fn a_byte_changed_in_the_image_is_a_mismatch() {
        let mut img = good_disk();
        let k = kernel();
        let at = img.windows(64).position(|w| w == &k[1000..1064]).unwrap();
        img[at + 10] ^= 0xff;
        let r = check_image(&img, &spec());
        assert_eq!(r.failed(), 1, "{:#?}", r.checks);
        let f = &r.failures()[0];
        assert!(f.starts_with("kernel8.img differs from build/kernel8.img: 70000 bytes, expected 70000; first difference at byte 1010"), "{f}");
    }

    #[test]
    fn a_byte_changed_in_the_build_output_is_a_mismatch() {
        let mut s = spec();
        s.expect[1].contents[3] = b'X';
        let r = check_image(&good_disk(), &s);
        assert_eq!(r.failures(), vec!["config.txt differs from build/config.txt: 83 bytes, expected 83; first difference at byte 3 (0x3): 0x6f, expected 0x58".to_string()]);
    }

    #[test]
    fn missing_and_unexpected_files_fail() {
        let img = disk(
            &volume(&[("kernel8.img", &kernel()), ("extra.bin", b"x"), ("cmdline.txt", b"console=ttyAMA0,115200\n")]),
            0x0c,
        );
        let r = check_image(&img, &spec());
        let f = r.failures();
        assert!(f.contains(&"root directory: missing config.txt; unexpected extra.bin".to_string()), "{f:#?}");
        assert!(f.contains(&"config.txt: not in the image".to_string()), "{f:#?}");
        assert!(f.iter().any(|l| l.starts_with("config.txt: not in the image (2 lines")), "{f:#?}");
        assert_eq!(r.failed(), 3);
    }

    #[test]
    fn config_lines_and_cmdline_are_checked() {
        let mut s = spec();
        s.config_lines.push("enable_uart=1".into());
        s.cmdline = Some("console=ttyAMA0,115200 loglevel=6".into());
        let r = check_image(&good_disk(), &s);
        assert_eq!(
            r.failures(),
            vec![
                "config.txt has the line `enable_uart=1`".to_string(),
                "cmdline.txt is \"console=ttyAMA0,115200\", expected \"console=ttyAMA0,115200 loglevel=6\"".to_string(),
            ]
        );
    }

    #[test]
    fn a_wrong_partition_type_fails_but_the_files_are_still_checked() {
        let img = disk(
            &volume(&[
                ("kernel8.img", &kernel()),
                ("config.txt", CONFIG),
                ("cmdline.txt", b"console=ttyAMA0,115200\n"),
            ]),
            0x83,
        );
        let r = check_image(&img, &spec());
        assert_eq!(
            r.failures(),
            vec!["partition type 0x0c (W95 FAT32 LBA): partition type 0x83, not 0x0c (W95 FAT32 LBA)".to_string()]
        );
    }

    #[test]
    fn a_broken_partition_table_stops_early() {
        let mut img = good_disk();
        img[510] = 0;
        let r = check_image(&img, &spec());
        assert_eq!(r.passed(), 0);
        assert_eq!(r.failed(), 2);
        assert!(r.failures()[0].starts_with("MBR: boot signature is 0x00AA"));

        let mut img = good_disk();
        img[446 + 16 + 4] = 0x83; // a second partition
        img[446 + 16 + 8] = 1;
        img[446 + 16 + 12] = 1;
        let r = check_image(&img, &spec());
        assert_eq!(r.failures()[0], "MBR: 2 partitions, not one [1: type 0x0c at LBA 2048; 2: type 0x83 at LBA 1]");
        assert_eq!(r.failed(), 2);
    }

    #[test]
    fn a_partition_without_a_file_system_fails() {
        let s0 = crate::mbr::synth::sector0(&[(0, 0x0c, 2048, 4096)]);
        let img = crate::mbr::synth::image(&s0, 2048 + 4096);
        let r = check_image(&img, &spec());
        assert_eq!(r.passed(), 5);
        assert_eq!(r.failed(), 1);
        assert!(r.failures()[0].starts_with("FAT32 file system: not a FAT file system"));
    }

    #[test]
    fn a_bad_initramfs_is_reported() {
        let mut s = spec();
        s.expect.push(expected("initramfs.cpio", b"not cpio"));
        let img = disk(
            &volume(&[
                ("kernel8.img", &kernel()),
                ("config.txt", CONFIG),
                ("cmdline.txt", b"console=ttyAMA0,115200\n"),
                ("initramfs.cpio", b"not cpio"),
            ]),
            0x0c,
        );
        let r = check_image(&img, &s);
        assert_eq!(r.failed(), 1);
        assert!(r.failures()[0].starts_with("initramfs.cpio: truncated header"), "{:?}", r.failures());
    }

    #[test]
    fn differences_are_described() {
        assert_eq!(describe_difference(b"abc", b"abc"), None);
        assert_eq!(describe_difference(b"ab", b"abc").unwrap(), "2 bytes, expected 3; equal for the first 2 bytes");
        assert_eq!(
            describe_difference(b"abd", b"abc").unwrap(),
            "3 bytes, expected 3; first difference at byte 2 (0x2): 0x64, expected 0x63"
        );
    }
}
