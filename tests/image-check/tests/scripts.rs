//! The real scripts/mk-initramfs.sh and scripts/mk-sdcard.sh, run in a
//! temporary directory (with stand-in firmware files, so no download is
//! needed), and their output checked with this crate and its binary. Skipped,
//! with a note, where sfdisk, mtools or python3 are missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aspen_image_check::{check_image, cpio, Expected, Spec};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

/// Whether the tools are here; prints why a test is skipped when not.
fn tools(test: &str, needed: &[&str]) -> bool {
    let missing: Vec<&str> = needed.iter().copied().filter(|t| !have(t)).collect();
    if !missing.is_empty() {
        eprintln!("{test}: skipped, {} not installed (scripts/bootstrap.sh sdcard)", missing.join(", "));
    }
    missing.is_empty()
}

const SD_TOOLS: &[&str] = &["sfdisk", "mformat", "mcopy", "mdir"];

/// Bytes without repeats (xorshift), for a file found again inside the image.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// A stand-in kernel8.img: noise with the arm64 image header's magic.
fn fake_kernel(len: usize) -> Vec<u8> {
    let mut k = noise(len, 0x8000_0001);
    k[56..60].copy_from_slice(b"ARM\x64");
    k
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// Stand-in firmware in an ASPEN_CACHE of its own, a kernel and a root
    /// directory for the initramfs.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fw = dir.path().join("cache/rpi4");
        std::fs::create_dir_all(&fw).unwrap();
        std::fs::write(fw.join("start4.elf"), noise(300_000, 1)).unwrap();
        std::fs::write(fw.join("fixup4.dat"), noise(5_399, 2)).unwrap();
        std::fs::write(fw.join("bcm2711-rpi-4-b.dtb"), noise(27_386, 3)).unwrap();
        std::fs::write(dir.path().join("kernel8.img"), fake_kernel(69_648)).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/aspen-release"), "Aspen 0.1.0 (rpi4)\n").unwrap();
        Setup { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn script(&self, name: &str, args: &[&Path]) -> Output {
        let mut c = Command::new(repo().join("scripts").join(name));
        c.args(args).env("ASPEN_CACHE", self.path("cache")).env_remove("ASPEN_CMDLINE").env_remove("SDCARD_MIB");
        c.output().unwrap()
    }

    fn initramfs(&self) -> PathBuf {
        let out = self.path("initramfs.cpio");
        let o = self.script("mk-initramfs.sh", &[&self.path("root"), &out]);
        assert_success(&o, &out);
        out
    }

    /// Builds the SD card image at `out` (the initramfs from `initramfs`).
    fn sdcard(&self, initramfs: &Path, out: &Path) -> Output {
        self.script("mk-sdcard.sh", &[&self.path("kernel8.img"), initramfs, out])
    }

    /// Every file the image must hold, with its expected contents.
    fn spec(&self, initramfs: &Path) -> Spec {
        let boot = repo().join("bsp/rpi4/boot");
        let files = [
            ("start4.elf", self.path("cache/rpi4/start4.elf")),
            ("fixup4.dat", self.path("cache/rpi4/fixup4.dat")),
            ("bcm2711-rpi-4-b.dtb", self.path("cache/rpi4/bcm2711-rpi-4-b.dtb")),
            ("config.txt", boot.join("config.txt")),
            ("cmdline.txt", boot.join("cmdline.txt")),
            ("kernel8.img", self.path("kernel8.img")),
            ("initramfs.cpio", initramfs.to_path_buf()),
        ];
        Spec {
            expect: files
                .iter()
                .map(|(n, p)| Expected {
                    name: n.to_string(),
                    source: p.display().to_string(),
                    contents: std::fs::read(p).unwrap(),
                })
                .collect(),
            config_lines: CONFIG_LINES.iter().map(|s| s.to_string()).collect(),
            cmdline: Some(CMDLINE.into()),
        }
    }
}

const CONFIG_LINES: &[&str] = &[
    "arm_64bit=1",
    "enable_uart=1",
    "init_uart_clock=48000000",
    "kernel=kernel8.img",
    "kernel_address=0x80000",
    "initramfs initramfs.cpio followkernel",
    "device_tree=bcm2711-rpi-4-b.dtb",
];
const CMDLINE: &str = "console=ttyAMA0,115200 loglevel=6";

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The script succeeded and printed `out` as its last line.
fn assert_success(o: &Output, out: &Path) {
    assert!(o.status.success(), "{}", text(o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().last(), Some(out.to_str().unwrap()), "{}", text(o));
}

#[test]
fn mk_sdcard_builds_an_image_that_passes_every_check() {
    if !tools("mk_sdcard_builds_an_image_that_passes_every_check", &[SD_TOOLS, &["python3"]].concat()) {
        return;
    }
    let s = Setup::new();
    let initramfs = s.initramfs();
    let out = s.path("out/sd.img");
    let o = s.sdcard(&initramfs, &out);
    assert_success(&o, &out);
    let image = std::fs::read(&out).unwrap();
    assert_eq!(image.len(), 64 << 20);
    let r = check_image(&image, &s.spec(&initramfs));
    for c in &r.checks {
        println!("{c}");
    }
    assert!(r.all_passed(), "{:#?}", r.failures());
    // 5 partition table, FAT32, root set, 7 files, 7 config lines, cmdline, initramfs.
    assert_eq!(r.summary(), "23 passed, 0 failed");
    assert!(r.checks.iter().any(|c| c.text.starts_with("FAT32 file system: 12")), "{:#?}", r.checks);
    assert!(!s.path("out/sd.img.tmp").exists());
}

#[test]
fn one_changed_byte_of_the_kernel_in_the_image_is_a_mismatch() {
    if !tools("one_changed_byte_of_the_kernel_in_the_image_is_a_mismatch", &[SD_TOOLS, &["python3"]].concat()) {
        return;
    }
    let s = Setup::new();
    let initramfs = s.initramfs();
    let out = s.path("sd.img");
    assert_success(&s.sdcard(&initramfs, &out), &out);
    let mut image = std::fs::read(&out).unwrap();
    let kernel = std::fs::read(s.path("kernel8.img")).unwrap();
    let at = image.windows(64).position(|w| w == &kernel[40_000..40_064]).expect("kernel bytes in the image");
    image[at + 5] = image[at + 5].wrapping_add(1);
    let r = check_image(&image, &s.spec(&initramfs));
    assert_eq!(r.failed(), 1, "{:#?}", r.checks);
    let f = &r.failures()[0];
    assert!(f.starts_with("kernel8.img differs from "), "{f}");
    assert!(
        f.ends_with(&format!(
            "first difference at byte 40005 (0x9c45): 0x{:02x}, expected 0x{:02x}",
            kernel[40_005].wrapping_add(1),
            kernel[40_005]
        )),
        "{f}"
    );
}

#[test]
fn the_binary_reports_each_check_and_its_exit_status() {
    if !tools("the_binary_reports_each_check_and_its_exit_status", &[SD_TOOLS, &["python3"]].concat()) {
        return;
    }
    let s = Setup::new();
    let initramfs = s.initramfs();
    let out = s.path("sd.img");
    assert_success(&s.sdcard(&initramfs, &out), &out);
    let spec = s.spec(&initramfs);
    let mut args: Vec<String> = vec![out.display().to_string()];
    for e in &spec.expect {
        args.extend(["--expect".into(), format!("{}={}", e.name, e.source)]);
    }
    for l in CONFIG_LINES {
        args.extend(["--config-line".into(), l.to_string()]);
    }
    let bin = env!("CARGO_BIN_EXE_aspen-image-check");
    let run = |extra: &[&str]| Command::new(bin).args(&args).args(extra).output().unwrap();

    let o = run(&["--cmdline", CMDLINE]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout.lines().last(), Some("23 passed, 0 failed"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "ok   partition type 0x0c (W95 FAT32 LBA)"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "ok   config.txt has the line `kernel_address=0x80000`"), "{stdout}");

    let o = run(&["--cmdline", "console=ttyS0"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(stdout.lines().last(), Some("22 passed, 1 failed"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("FAIL cmdline.txt is ")), "{stdout}");

    let o = Command::new(bin).arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn mk_sdcard_is_reproducible_and_honours_aspen_cmdline() {
    if !tools("mk_sdcard_is_reproducible_and_honours_aspen_cmdline", &[SD_TOOLS, &["python3"]].concat()) {
        return;
    }
    let s = Setup::new();
    let initramfs = s.initramfs();
    let (a, b) = (s.path("a.img"), s.path("b.img"));
    assert_success(&s.sdcard(&initramfs, &a), &a);
    // FAT timestamps have a resolution of 2 s: a later build must not differ.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_success(&s.sdcard(&initramfs, &b), &b);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "two builds differ");

    let c = s.path("c.img");
    let o = Command::new(repo().join("scripts/mk-sdcard.sh"))
        .args([&s.path("kernel8.img"), &initramfs, &c])
        .env("ASPEN_CACHE", s.path("cache"))
        .env("ASPEN_CMDLINE", "console=ttyAMA0,115200 test.ram_mib=960")
        .env("SDCARD_MIB", "80")
        .output()
        .unwrap();
    assert_success(&o, &c);
    let image = std::fs::read(&c).unwrap();
    assert_eq!(image.len(), 80 << 20);
    let mut spec = s.spec(&initramfs);
    spec.expect.retain(|e| e.name != "cmdline.txt");
    spec.expect.push(Expected {
        name: "cmdline.txt".into(),
        source: "ASPEN_CMDLINE".into(),
        contents: b"console=ttyAMA0,115200 test.ram_mib=960\n".to_vec(),
    });
    spec.cmdline = Some("console=ttyAMA0,115200 test.ram_mib=960".into());
    let r = check_image(&image, &spec);
    assert!(r.all_passed(), "{:#?}", r.failures());
}

#[test]
fn mk_sdcard_fails_clearly_on_missing_or_wrong_inputs() {
    if !tools("mk_sdcard_fails_clearly_on_missing_or_wrong_inputs", SD_TOOLS) {
        return;
    }
    let s = Setup::new();
    let cpio = s.path("initramfs.cpio");
    std::fs::write(&cpio, b"").unwrap();
    let out = s.path("sd.img");

    std::fs::remove_file(s.path("cache/rpi4/fixup4.dat")).unwrap();
    let o = s.sdcard(&cpio, &out);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("fixup4.dat not found: run scripts/bootstrap.sh sdcard"), "{err}");
    assert!(!out.exists());

    std::fs::write(s.path("cache/rpi4/fixup4.dat"), b"x").unwrap();
    let o = s.script("mk-sdcard.sh", &[&s.path("nonexistent.img"), &cpio, &out]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found: run make image BOARD=rpi4"), "{}", text(&o));
    let o = s.script("mk-sdcard.sh", &[&s.path("kernel8.img"), &s.path("none.cpio"), &out]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("none.cpio not found"), "{}", text(&o));

    std::fs::write(s.path("kernel8.img"), noise(4096, 9)).unwrap();
    let o = s.sdcard(&cpio, &out);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no arm64 image header"), "{}", text(&o));

    let o = s.script("mk-sdcard.sh", &[&s.path("kernel8.img")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("usage:"), "{}", text(&o));
    assert!(!out.exists());
}

#[test]
fn mk_initramfs_packs_a_reproducible_newc_archive_with_a_console() {
    if !tools("mk_initramfs_packs_a_reproducible_newc_archive_with_a_console", &["python3"]) {
        return;
    }
    let s = Setup::new();
    let root = s.path("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::write(root.join("bin/init"), b"\x7fELF...").unwrap();
    std::os::unix::fs::symlink("init", root.join("bin/sh")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let a = s.path("a.cpio");
    let b = s.path("b.cpio");
    let o = s.script("mk-initramfs.sh", &[&root, &a]);
    assert_success(&o, &a);
    let o = s.script("mk-initramfs.sh", &[&root, &b]);
    assert_success(&o, &b);
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(ba, bb, "two runs differ");
    assert_eq!(ba.len() % 512, 0);

    let entries = cpio::parse(&ba).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let devices = ["dev/full", "dev/null", "dev/random", "dev/tty", "dev/urandom", "dev/zero"];
    let mut expected = vec!["bin", "bin/init", "bin/sh", "dev", "dev/console"];
    expected.extend(devices);
    expected.extend(["etc", "etc/aspen-release", "proc", "tmp"]);
    assert_eq!(names, expected);
    for e in &entries {
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0), "{}", e.name);
    }
    let console = &entries[4];
    assert_eq!(console.mode, cpio::S_IFCHR | 0o600);
    assert_eq!((console.rdev_major, console.rdev_minor), (5, 1));
    assert_eq!(entries[2].mode & cpio::S_IFMT, cpio::S_IFLNK);
    assert_eq!(entries[2].data, b"init");
    // The memory devices (major 1) and /dev/tty (5:0), readable and writable by all.
    let numbers = [(1, 7), (1, 3), (1, 8), (5, 0), (1, 9), (1, 5)];
    for (entry, (major, minor)) in entries[5..11].iter().zip(numbers) {
        assert_eq!(entry.mode, cpio::S_IFCHR | 0o666, "{}", entry.name);
        assert_eq!((entry.rdev_major, entry.rdev_minor), (major, minor), "{}", entry.name);
    }
    assert_eq!(entries[12].data, b"Aspen 0.1.0 (rpi4)\n");
    let inos: Vec<u32> = entries.iter().map(|e| e.ino).collect();
    assert_eq!(inos, (1..=15).collect::<Vec<_>>());
    assert!(cpio::check_initramfs(&ba).is_ok());

    // SOURCE_DATE_EPOCH sets every mtime.
    let c = s.path("c.cpio");
    let o = Command::new(repo().join("scripts/mk-initramfs.sh"))
        .args([&root, &c])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert_success(&o, &c);
    assert!(cpio::parse(&std::fs::read(&c).unwrap()).unwrap().iter().all(|e| e.mtime == 1_700_000_000));

    // GNU cpio, where installed, reads it too.
    if have("cpio") {
        let o = Command::new("sh").arg("-c").arg(format!("cpio -it < '{}'", a.display())).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().collect::<Vec<_>>(), names);
    }
}
