//! `aspen-image-check IMAGE --expect NAME=PATH ... [--config-line LINE ...] [--cmdline TEXT]`:
//! checks an SD card image made by scripts/mk-sdcard.sh, prints one line per
//! check (`ok   ...` or `FAIL ...`) and ends with `N passed, M failed`. Exits 0
//! when every check passed, 1 when one failed, 2 on a usage error.

use std::process::ExitCode;

use aspen_image_check::{check_image, Expected, Spec};

const USAGE: &str = "usage: aspen-image-check IMAGE --expect NAME=PATH ... [--config-line LINE ...] [--cmdline TEXT]

Checks a Raspberry Pi 4 SD card image: an MBR with one W95 FAT32 (LBA)
partition at LBA 2048; a FAT32 file system whose root directory holds exactly
the --expect files, each equal to PATH byte for byte; config.txt containing
every --config-line; cmdline.txt being TEXT (one line).";

fn parse_args(args: &[String]) -> Result<(String, Spec), String> {
    let mut image = None;
    let mut spec = Spec::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--expect" => {
                let v = value("--expect")?;
                let (name, path) = v.split_once('=').ok_or_else(|| format!("--expect {v}: not NAME=PATH"))?;
                if name.is_empty() || path.is_empty() {
                    return Err(format!("--expect {v}: not NAME=PATH"));
                }
                if spec.expect.iter().any(|e| e.name.eq_ignore_ascii_case(name)) {
                    return Err(format!("--expect {name} given twice"));
                }
                let contents = std::fs::read(path).map_err(|e| format!("--expect {v}: cannot read {path}: {e}"))?;
                spec.expect.push(Expected { name: name.into(), source: path.into(), contents });
            }
            "--config-line" => spec.config_lines.push(value("--config-line")?),
            "--cmdline" => spec.cmdline = Some(value("--cmdline")?),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => {
                if image.replace(s.to_string()).is_some() {
                    return Err("more than one IMAGE".into());
                }
            }
        }
    }
    let image = image.ok_or("no IMAGE given")?;
    if spec.expect.is_empty() {
        return Err("no --expect NAME=PATH given".into());
    }
    Ok((image, spec))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, spec) = match parse_args(&args) {
        Ok(x) => x,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("aspen-image-check: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let image = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("aspen-image-check: cannot read {path}: {e}");
            println!("FAIL {path}: cannot read: {e}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    println!("checking {path} ({} bytes)", image.len());
    let report = check_image(&image, &spec);
    for c in &report.checks {
        println!("{c}");
    }
    println!("{}", report.summary());
    if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("k");
        std::fs::write(&k, b"kernel").unwrap();
        let ka = format!("kernel8.img={}", k.display());
        let (img, spec) =
            parse_args(&args(&["sd.img", "--expect", &ka, "--config-line", "arm_64bit=1", "--cmdline", "a b"]))
                .unwrap();
        assert_eq!(img, "sd.img");
        assert_eq!(spec.expect[0].name, "kernel8.img");
        assert_eq!(spec.expect[0].contents, b"kernel");
        assert_eq!(spec.config_lines, vec!["arm_64bit=1"]);
        assert_eq!(spec.cmdline.as_deref(), Some("a b"));
    }

    #[test]
    fn rejects_bad_command_lines() {
        assert_eq!(parse_args(&args(&[])).unwrap_err(), "no IMAGE given");
        assert_eq!(parse_args(&args(&["x"])).unwrap_err(), "no --expect NAME=PATH given");
        assert!(parse_args(&args(&["x", "--expect", "noequals"])).unwrap_err().contains("not NAME=PATH"));
        assert!(parse_args(&args(&["x", "--expect", "a=/nonexistent/file"])).unwrap_err().contains("cannot read"));
        assert_eq!(parse_args(&args(&["x", "--cmdline"])).unwrap_err(), "--cmdline needs a value");
        assert_eq!(parse_args(&args(&["x", "--bogus"])).unwrap_err(), "unknown option --bogus");
        assert_eq!(parse_args(&args(&["x", "y"])).unwrap_err(), "more than one IMAGE");
        assert_eq!(parse_args(&args(&["--help"])).unwrap_err(), "");
    }
}
