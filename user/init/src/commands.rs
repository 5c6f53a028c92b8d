//! The shell's commands.
//!
//! | command | what |
//! | --- | --- |
//! | `help` | lists the commands |
//! | `echo WORDS` | prints the words |
//! | `ls [DIR]` | lists a directory (getdents64), `/` after directories |
//! | `cat FILE` | prints a file |
//! | `mem` | prints `/proc/meminfo` |
//! | `maps PID` | prints `/proc/PID/maps` (`self` works too) |
//! | `ps` | lists the processes in `/proc` with parent, state and command line |
//! | `run PATH [ARGS]`, `PATH [ARGS]` | runs a program (a bare name is looked up in `/bin`) and prints how it ended |
//! | `poweroff` | powers the machine off |

use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use aspen_sys::fs::{self, DirEntries, OpenFlags, DT_DIR, DT_LNK, STDOUT};
use aspen_sys::{io, println, process, Errno};

use crate::spawn;

const HELP: &str = "\
commands:
  help                 this list
  echo WORDS           print the words
  ls [DIR]             list a directory
  cat FILE             print a file
  mem                  print /proc/meminfo
  maps PID             print /proc/PID/maps
  ps                   list processes
  run PATH [ARGS]      run a program (also just: PATH [ARGS]; bare names are looked up in /bin)
  poweroff             power the machine off";

/// Prints who we are and how to get help.
pub fn banner() {
    let kernel = process::uname()
        .map(|u| {
            format!(
                "{} {} {}",
                String::from_utf8_lossy(u.sysname()),
                String::from_utf8_lossy(u.release()),
                String::from_utf8_lossy(u.machine())
            )
        })
        .unwrap_or_else(|e| format!("a kernel without uname ({e})"));
    println!("Aspen init (pid {}) on {kernel}; type 'help'", process::getpid());
}

/// Splits a line into words at spaces and tabs; `#` starts a comment.
pub fn split_words(line: &str) -> Vec<&str> {
    let line = line.split('#').next().unwrap_or("");
    line.split([' ', '\t']).filter(|w| !w.is_empty()).collect()
}

/// Runs one command line.
pub fn execute(line: &str) {
    let words = split_words(line);
    let Some((&command, rest)) = words.split_first() else { return };
    let result = match (command, rest) {
        ("help", _) => {
            println!("{HELP}");
            Ok(())
        }
        ("echo", words) => {
            println!("{}", words.join(" "));
            Ok(())
        }
        ("ls", []) => list(c"."),
        ("ls", [dir]) => c_path(dir).and_then(|d| list(&d)),
        ("cat", [file]) => c_path(file).and_then(|f| cat(&f)),
        ("mem", []) => cat(c"/proc/meminfo"),
        ("maps", [pid]) => c_path(&format!("/proc/{pid}/maps")).and_then(|f| cat(&f)),
        ("ps", []) => ps(),
        ("poweroff", []) => Err(process::power_off()),
        ("run", []) => Err(Errno::EINVAL),
        ("run", words) => run(words),
        ("ls" | "cat" | "mem" | "maps" | "ps" | "poweroff", _) => {
            println!("{command}: wrong arguments; see 'help'");
            Ok(())
        }
        _ => run(&words),
    };
    if let Err(e) = result {
        println!("{command}: {e}");
    }
}

fn c_path(path: &str) -> Result<CString, Errno> {
    CString::new(path).map_err(|_| Errno::EINVAL)
}

/// Runs a program and prints how it ended.
fn run(words: &[&str]) -> Result<(), Errno> {
    let status = spawn::run(words)?;
    println!("[{}: {status}]", words[0]);
    Ok(())
}

/// Prints a file's contents as they are.
fn cat(path: &core::ffi::CStr) -> Result<(), Errno> {
    let fd = fs::open(path, OpenFlags::RDONLY | OpenFlags::CLOEXEC, 0)?;
    io::flush();
    let mut buf = [0u8; 1024];
    let result = loop {
        match fs::read(fd, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => io::write_all(STDOUT, &buf[..n]),
            Err(e) => break Err(e),
        }
    };
    let _ = fs::close(fd);
    result
}

/// Reads every entry of a directory: (name, d_type).
fn read_dir(path: &core::ffi::CStr) -> Result<Vec<(String, u8)>, Errno> {
    let fd = fs::open(path, OpenFlags::RDONLY | OpenFlags::DIRECTORY | OpenFlags::CLOEXEC, 0)?;
    let mut entries = Vec::new();
    let mut buf = [0u8; 2048];
    let result = loop {
        match fs::getdents64(fd, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => entries
                .extend(DirEntries::new(&buf[..n]).map(|e| (String::from_utf8_lossy(e.name).into_owned(), e.kind))),
            Err(e) => break Err(e),
        }
    };
    let _ = fs::close(fd);
    result.map(|()| entries)
}

/// Lists a directory, sorted, one entry a line; `/` marks directories, `@` links.
fn list(path: &core::ffi::CStr) -> Result<(), Errno> {
    let mut entries = read_dir(path)?;
    entries.sort();
    for (name, kind) in entries.iter().filter(|(n, _)| n != "." && n != "..") {
        let mark = match *kind {
            DT_DIR => "/",
            DT_LNK => "@",
            _ => "",
        };
        println!("{name}{mark}");
    }
    Ok(())
}

/// Reads a small /proc file as text.
fn proc_text(path: &str) -> Option<String> {
    let path = c_path(path).ok()?;
    let mut buf = [0u8; 512];
    let n = fs::read_file(&path, &mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Lists processes: pid, parent, state (from `/proc/PID/stat` when the kernel
/// has it) and command line (`/proc/PID/cmdline`, else the stat's name).
fn ps() -> Result<(), Errno> {
    let mut pids: Vec<u32> = read_dir(c"/proc")?.iter().filter_map(|(name, _)| name.parse().ok()).collect();
    pids.sort_unstable();
    println!("  PID  PPID S COMMAND");
    for pid in pids {
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let stat = proc_text(&format!("/proc/{pid}/stat"));
        let (comm, state, ppid) = match stat.as_deref().and_then(|s| s.rsplit_once(')')) {
            Some((head, tail)) => {
                let comm = head.split_once('(').map_or("", |(_, c)| c);
                let mut fields = tail.split_whitespace();
                (comm.into(), fields.next().unwrap_or("?").into(), fields.next().unwrap_or("?").into())
            }
            None => (String::new(), String::from("?"), String::from("?")),
        };
        let cmdline = proc_text(&format!("/proc/{pid}/cmdline"))
            .map(|c| c.trim_end_matches('\0').replace('\0', " "))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| format!("[{comm}]"));
        println!("{pid:>5} {ppid:>5} {state} {cmdline}");
    }
    Ok(())
}
