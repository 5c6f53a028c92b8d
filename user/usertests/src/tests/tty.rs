//! The console is a terminal: `isatty` on fd 0, `struct termios` get and
//! set, the window size, reads as the line discipline gives them (no line
//! typed: `EAGAIN` without waiting, `VMIN`/`VTIME` timeouts in raw mode),
//! and the controlling-terminal rules: init's session controls the console
//! with init's group (ours) in the foreground; another session gets
//! `ENOTTY` and `EPERM` as on Linux. Nothing is typed during the suite, so
//! no input is pending.

use aspen_sys::fd::{self, PollEvents, PollFd};
use aspen_sys::fs::{self, OpenFlags, STDIN};
use aspen_sys::process::{self, Fork};
use aspen_sys::time::{self, CLOCK_MONOTONIC};
use aspen_sys::tty::{self, abi, Termios, Winsize};
use aspen_sys::{signal, Errno};

use crate::ensure;
use crate::harness::{expect_errno, in_child, Context, Ctx, TestResult};

/// A process group number no process has (above Linux's `pid_max`).
const NO_SUCH_GROUP: i32 = 0x3fff_ffff;

pub fn console_is_a_terminal(_: &Context) -> TestResult {
    ensure!(tty::is_terminal(STDIN), "isatty(0) is false");
    let original = tty::get_termios(STDIN).ctx("TCGETS")?;
    ensure!(
        original.lflag & (abi::ICANON | abi::ECHO | abi::ISIG) == abi::ICANON | abi::ECHO | abi::ISIG,
        "the console is not canonical with echo and signal keys: lflag {:#o}",
        original.lflag
    );
    ensure!(original.oflag & (abi::OPOST | abi::ONLCR) == abi::OPOST | abi::ONLCR, "oflag {:#o}", original.oflag);
    ensure!(original.cc[abi::VINTR] == 0x03 && original.cc[abi::VERASE] == 0x7f, "c_cc {:?}", original.cc);
    let outcome = settings_round_trip(&original).and_then(|()| reads(&original));
    tty::set_termios(STDIN, abi::TCSETS, &original).ctx("TCSETS (restoring)")?;
    outcome?;
    ensure!(tty::get_termios(STDIN).ctx("TCGETS")? == original, "the settings were not restored");
    ensure!(tty::pending_input(STDIN).ctx("FIONREAD")? == 0, "input pending with nothing typed");

    let size = tty::get_winsize(STDIN).ctx("TIOCGWINSZ")?;
    let wanted = Winsize { rows: 50, cols: 132, xpixel: 0, ypixel: 0 };
    tty::set_winsize(STDIN, &wanted).ctx("TIOCSWINSZ")?;
    let got = tty::get_winsize(STDIN).ctx("TIOCGWINSZ")?;
    tty::set_winsize(STDIN, &size).ctx("TIOCSWINSZ (restoring)")?;
    ensure!(got == wanted, "TIOCGWINSZ gave {got:?} after setting {wanted:?}");
    Ok(())
}

/// Settings set are the settings got (flags the serial driver may adjust,
/// `c_cflag`, are left alone).
fn settings_round_trip(original: &Termios) -> TestResult {
    for cmd in [abi::TCSETS, abi::TCSETSW, abi::TCSETSF] {
        let mut changed = *original;
        changed.lflag &= !(abi::ECHO | abi::ECHOCTL);
        changed.iflag &= !abi::ICRNL;
        changed.cc[abi::VERASE] = 0x08;
        tty::set_termios(STDIN, cmd, &changed).ctx("TCSETS")?;
        let got = tty::get_termios(STDIN).ctx("TCGETS")?;
        ensure!(
            (got.iflag, got.oflag, got.lflag, got.cc) == (changed.iflag, changed.oflag, changed.lflag, changed.cc),
            "{cmd:#x}: set {changed:?}, got {got:?}"
        );
    }
    Ok(())
}

/// Reads with nothing typed: `EAGAIN` without waiting, `VMIN` 0 returns 0
/// at once or after `VTIME`; `poll` says writable, not readable.
fn reads(original: &Termios) -> TestResult {
    let fd = fs::open(c"/dev/console", OpenFlags::RDWR | OpenFlags::NONBLOCK | OpenFlags::NOCTTY, 0)
        .ctx("open /dev/console")?;
    let outcome = (|| {
        let mut buf = [0u8; 8];
        expect_errno("a non-blocking read of a line not typed", fs::read(fd, &mut buf), Errno::EAGAIN)?;
        let mut entries = [PollFd::new(fd, PollEvents::IN | PollEvents::OUT)];
        let ready = fd::ppoll(&mut entries, Some(0)).ctx("ppoll")?;
        ensure!(ready == 1 && entries[0].revents() == PollEvents::OUT, "ppoll: {ready}, {:?}", entries[0].revents());
        fs::close(fd).ctx("close")?;
        let mut raw = *original;
        raw.lflag &= !(abi::ICANON | abi::ECHO);
        raw.cc[abi::VMIN] = 0;
        raw.cc[abi::VTIME] = 0;
        tty::set_termios(STDIN, abi::TCSETS, &raw).ctx("TCSETS raw")?;
        ensure!(fs::read(STDIN, &mut buf).ctx("read, VMIN 0 VTIME 0")? == 0, "a raw read returned typed bytes");
        raw.cc[abi::VTIME] = 1;
        tty::set_termios(STDIN, abi::TCSETS, &raw).ctx("TCSETS raw, VTIME 1")?;
        let start = time::clock_gettime(CLOCK_MONOTONIC).ctx("clock_gettime")?.as_nanos();
        ensure!(fs::read(STDIN, &mut buf).ctx("read, VMIN 0 VTIME 1")? == 0, "a raw read returned typed bytes");
        let waited = time::clock_gettime(CLOCK_MONOTONIC).ctx("clock_gettime")?.as_nanos() - start;
        ensure!((90_000_000..2_000_000_000).contains(&waited), "VTIME 1 waited {waited} ns");
        Ok(())
    })();
    let _ = fs::close(fd);
    outcome
}

pub fn controlling_terminal(_: &Context) -> TestResult {
    let pgrp = signal::getpgid(0).ctx("getpgid")?;
    let foreground = tty::get_foreground(STDIN).ctx("TIOCGPGRP")?;
    ensure!(foreground == pgrp, "the foreground group is {foreground}, ours (init's) {pgrp}");
    let sid = signal::getsid(0).ctx("getsid")?;
    ensure!(tty::get_session(STDIN).ctx("TIOCGSID")? == sid, "TIOCGSID is not our session {sid}");
    tty::set_foreground(STDIN, pgrp).ctx("TIOCSPGRP to our own group")?;
    expect_errno("TIOCSPGRP -1", tty::set_foreground(STDIN, -1), Errno::EINVAL)?;
    expect_errno("TIOCSPGRP of no group", tty::set_foreground(STDIN, NO_SUCH_GROUP), Errno::ESRCH)?;
    expect_errno("TIOCSCTTY by a process that leads no session", tty::set_controlling(STDIN, false), Errno::EPERM)?;

    in_child("a new session", || {
        let me = signal::setsid().ctx("setsid")?;
        ensure!(tty::is_terminal(STDIN), "isatty(0) is false in a new session");
        expect_errno("TIOCGPGRP without a controlling terminal", tty::get_foreground(STDIN), Errno::ENOTTY)?;
        expect_errno("TIOCGSID without a controlling terminal", tty::get_session(STDIN), Errno::ENOTTY)?;
        expect_errno("TIOCSPGRP without a controlling terminal", tty::set_foreground(STDIN, me), Errno::ENOTTY)?;
        expect_errno("TIOCSCTTY of init's terminal", tty::set_controlling(STDIN, false), Errno::EPERM)?;
        Ok(())
    })?;

    // A group of another session cannot be made the foreground.
    let other = match process::fork().ctx("fork")? {
        Fork::Child => {
            let _ = signal::setsid();
            let _ = time::sleep_ms(10_000);
            process::exit_group(0)
        }
        Fork::Parent(pid) => pid,
    };
    let mut outcome = Err("the child did not start its session within 5 s".into());
    for _ in 0..1000 {
        if signal::getsid(other) == Ok(other) {
            outcome =
                expect_errno("TIOCSPGRP to another session's group", tty::set_foreground(STDIN, other), Errno::EPERM);
            break;
        }
        let _ = time::sleep_ms(5);
    }
    let _ = signal::kill(other, signal::Signal::Kill.number().into());
    process::wait4(other, 0).ctx("wait4")?;
    outcome
}
