//! Job control: stop signals stop a whole process (every thread, also one
//! blocked in a wait) and `SIGCONT` continues it; the parent learns of both through `wait4`/`waitid` (once each) and
//! `SIGCHLD` (`CLD_STOPPED`, `CLD_CONTINUED`, unless `SA_NOCLDSTOP`);
//! `SIGKILL` ends a stopped process; interrupted calls go on after a stop;
//! the terminal's stop signals do nothing to an orphaned group, and a group
//! orphaned with a stopped member gets `SIGHUP`; a background group that
//! reads the terminal gets `SIGTTIN` (or `EIO`), one that changes it
//! `SIGTTOU`.
//!
//! The suite runs in init's process group, which is orphaned (its members'
//! parents are init or in the group), so the processes stopped here lead
//! groups of their own, tied to the session by their parent.

use alloc::string::String;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use aspen_sys::fs::{self, OpenFlags, STDIN};
use aspen_sys::mem::{MapFlags, Prot};
use aspen_sys::process::{
    self, Fork, WaitStatus, P_PGID, P_PID, SIGCHLD, SIGKILL, WCONTINUED, WEXITED, WNOHANG, WNOWAIT, WUNTRACED,
};
use aspen_sys::signal::{self, SaFlags, SigInfo, SigSet, CLD_CONTINUED, CLD_STOPPED, SIG_DFL, SIG_IGN};
use aspen_sys::time::{self, Timespec, CLOCK_MONOTONIC};
use aspen_sys::tty::{self, abi, Termios};
use aspen_sys::Errno;

use crate::ensure;
use crate::harness::{expect_errno, in_child, Context, Ctx, Region, Stage, TestResult};

const SIGHUP: i32 = 1;
const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;
const SIGTSTP: i32 = 20;
const SIGTTIN: i32 = 21;
const SIGTTOU: i32 = 22;

/// Milliseconds a stopped process gets to show it does not run.
const STILL_MS: u64 = 50;

/// A shared page: a counter a child advances while it runs, and flags.
fn shared_page() -> Result<Region, String> {
    Region::anon(1, Prot::READ | Prot::WRITE, MapFlags::SHARED)
}

/// Forks a child that leads a group of its own and counts up at `counter`
/// (stage 1 once it runs) until killed; returns its pid.
fn counting_child(page: &Region) -> Result<i32, String> {
    match process::fork().ctx("fork")? {
        Fork::Child => {
            let _ = signal::setpgid(0, 0);
            let counter = Stage::at(page, 0);
            loop {
                counter.set(counter.get() + 1);
                let _ = time::sleep_ms(1);
            }
        }
        Fork::Parent(pid) => {
            // Its group before anything is sent to it (either may run first).
            let _ = signal::setpgid(pid, pid);
            Stage::at(page, 0).wait_for(1, Some(pid))?;
            Ok(pid)
        }
    }
}

/// How long a wait for a child to stop or continue may take.
const WAIT_LIMIT_MS: u32 = 5000;

/// `wait4(pid, options)`, giving up with `ETIMEDOUT` after
/// [`WAIT_LIMIT_MS`]: a child that never stops or continues fails the test
/// instead of hanging the suite.
fn wait4_bounded(pid: i32, options: u32) -> Result<(i32, WaitStatus), Errno> {
    for _ in 0..WAIT_LIMIT_MS {
        match process::wait4(pid, options | WNOHANG)? {
            (0, _) => time::sleep_ms(1)?,
            found => return Ok(found),
        }
    }
    Err(Errno::ETIMEDOUT)
}

/// `waitid(idtype, id, options)`, bounded as [`wait4_bounded`].
fn waitid_bounded(idtype: u32, id: i32, options: u32) -> Result<SigInfo, Errno> {
    for _ in 0..WAIT_LIMIT_MS {
        let info = process::waitid(idtype, id, options | WNOHANG)?;
        if info.fields[0] as u32 != 0 {
            return Ok(info);
        }
        time::sleep_ms(1)?;
    }
    Err(Errno::ETIMEDOUT)
}

/// Requires the counter at the start of `page` to stand still (`moving`
/// false) or to move (true) over [`STILL_MS`].
fn expect_counting(page: &Region, moving: bool, what: &str) -> TestResult {
    let counter = Stage::at(page, 0);
    let before = counter.get();
    time::sleep_ms(STILL_MS).ctx("sleep")?;
    let after = counter.get();
    ensure!((after != before) == moving, "{what}: the counter went from {before} to {after}");
    Ok(())
}

/// Takes the pending `SIGCHLD` (blocked by the caller) within a second.
fn take_sigchld() -> Result<SigInfo, String> {
    let timeout = Timespec { tv_sec: 1, tv_nsec: 0 };
    let (_, info) = signal::sigtimedwait(signal::set_of(&[SIGCHLD]), Some(&timeout)).ctx("sigtimedwait SIGCHLD")?;
    Ok(info)
}

/// Requires `info` to be a `SIGCHLD` of `pid` with `code` and `status`.
fn expect_chld(info: &SigInfo, pid: i32, code: i32, status: i32) -> TestResult {
    let (got_pid, got_status) = (info.fields[0] as u32 as i32, info.fields[1] as u32 as i32);
    ensure!(
        info.signo == SIGCHLD && info.code == code && got_pid == pid && got_status == status,
        "SIGCHLD: signo {} code {} pid {got_pid} status {got_status}, wanted code {code} pid {pid} status {status}",
        info.signo,
        info.code
    );
    Ok(())
}

/// SIGSTOP and SIGTSTP stop the child, SIGCONT continues it; `wait4` and
/// `waitid` report each change once, SIGCHLD tells each; SIGKILL ends it
/// while stopped.
pub fn stop_continue_wait(_: &Context) -> TestResult {
    signal::sigprocmask(signal::SIG_BLOCK, Some(signal::set_of(&[SIGCHLD]))).ctx("block SIGCHLD")?;
    let page = shared_page()?;
    let child = counting_child(&page)?;
    let outcome = stop_continue_steps(&page, child);
    let _ = signal::kill(child, SIGKILL);
    let (_, status) = process::wait4(child, 0).ctx("wait4 after SIGKILL")?;
    outcome?;
    ensure!(status.signal() == Some(SIGKILL), "the stopped child did not end by SIGKILL: {status}");
    Ok(())
}

fn stop_continue_steps(page: &Region, child: i32) -> TestResult {
    expect_counting(page, true, "running")?;
    ensure!(process::wait4(child, WUNTRACED | WNOHANG).ctx("wait4")?.0 == 0, "a running child reported");

    signal::kill(child, SIGSTOP).ctx("kill SIGSTOP")?;
    let (pid, status) = wait4_bounded(child, WUNTRACED).ctx("wait4 WUNTRACED")?;
    ensure!(pid == child && status.0 == 0x137f, "wait4 after SIGSTOP: pid {pid}, {status}");
    ensure!(status.stop_signal() == Some(SIGSTOP), "WSTOPSIG of {status}");
    expect_chld(&take_sigchld()?, child, CLD_STOPPED, SIGSTOP)?;
    expect_counting(page, false, "stopped")?;
    ensure!(process::wait4(child, WUNTRACED | WNOHANG).ctx("wait4")?.0 == 0, "the stop was reported twice");
    ensure!(process::wait4(child, WNOHANG).ctx("wait4")?.0 == 0, "a plain wait4 reported a stop");

    signal::kill(child, SIGCONT).ctx("kill SIGCONT")?;
    let (pid, status) = wait4_bounded(child, WCONTINUED).ctx("wait4 WCONTINUED")?;
    ensure!(pid == child && status.continued(), "wait4 after SIGCONT: pid {pid}, {status}");
    expect_chld(&take_sigchld()?, child, CLD_CONTINUED, SIGCONT)?;
    expect_counting(page, true, "continued")?;
    ensure!(process::wait4(child, WCONTINUED | WNOHANG).ctx("wait4")?.0 == 0, "the continue was reported twice");

    // SIGTSTP stops too (the child's group is not orphaned); waitid with
    // WNOWAIT leaves the report for the next wait.
    signal::kill(-child, SIGTSTP).ctx("kill the group SIGTSTP")?;
    let info = waitid_bounded(P_PID, child, WUNTRACED | WNOWAIT).ctx("waitid WSTOPPED|WNOWAIT")?;
    expect_chld(&info, child, CLD_STOPPED, SIGTSTP)?;
    let info = waitid_bounded(P_PGID, child, WUNTRACED | WEXITED).ctx("waitid WSTOPPED")?;
    expect_chld(&info, child, CLD_STOPPED, SIGTSTP)?;
    let info = process::waitid(P_PID, child, WUNTRACED | WNOHANG).ctx("waitid WNOHANG")?;
    ensure!(info.fields[0] as u32 == 0, "waitid reported the stop twice");
    expect_chld(&take_sigchld()?, child, CLD_STOPPED, SIGTSTP)?;
    expect_counting(page, false, "stopped by SIGTSTP")?;
    expect_errno("waitid with nothing to wait for", process::waitid(P_PID, child, WNOHANG), Errno::EINVAL)?;

    // A second stop signal while stopped changes nothing; SIGCONT ends it.
    signal::kill(child, SIGSTOP).ctx("kill SIGSTOP")?;
    signal::kill(child, SIGCONT).ctx("kill SIGCONT")?;
    let info = waitid_bounded(P_PID, child, WCONTINUED).ctx("waitid WCONTINUED")?;
    expect_chld(&info, child, CLD_CONTINUED, SIGCONT)?;
    expect_counting(page, true, "continued again")?;
    signal::kill(child, SIGSTOP).ctx("kill SIGSTOP")?;
    wait4_bounded(child, WUNTRACED).ctx("wait4 WUNTRACED")?;
    Ok(())
}

extern "C" fn count_up(counter: usize) {
    // SAFETY: the caller passes a word of a shared page that outlives the
    // process.
    let counter = unsafe { &*(counter as *const AtomicU32) };
    loop {
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = time::nanosleep(&Timespec { tv_sec: 0, tv_nsec: 1_000_000 });
    }
}

extern "C" fn wait_forever(word: usize) {
    // SAFETY: as for `count_up`; nobody changes the word from 0.
    let word = unsafe { &*(word as *const AtomicU32) };
    loop {
        let _ = aspen_sys::thread::futex_wait(word, 0, None);
    }
}

/// A stop stops every thread: one counting, one blocked in an untimed
/// futex wait (interrupted to park; its wait restarts after); the
/// process counts as stopped only once all are parked.
pub fn threads_stop_together(_: &Context) -> TestResult {
    let page = shared_page()?;
    let child = match process::fork().ctx("fork")? {
        Fork::Child => {
            let _ = signal::setpgid(0, 0);
            let main = Stage::at(&page, 0);
            let started = aspen_sys::thread::spawn_thread(count_up, page.addr + 4)
                .and_then(|_| aspen_sys::thread::spawn_thread(wait_forever, page.addr + 8));
            if started.is_err() {
                process::exit_group(2);
            }
            loop {
                main.set(main.get() + 1);
                let _ = time::sleep_ms(1);
            }
        }
        Fork::Parent(pid) => pid,
    };
    let _ = signal::setpgid(child, child);
    let both = |what: &str, moving: bool| -> TestResult {
        let (main, thread) = (Stage::at(&page, 0), Stage::at(&page, 4));
        let before = (main.get(), thread.get());
        time::sleep_ms(STILL_MS).ctx("sleep")?;
        let after = (main.get(), thread.get());
        let moved = (after.0 != before.0, after.1 != before.1);
        ensure!(moved == (moving, moving), "{what}: (main, thread) went from {before:?} to {after:?}");
        Ok(())
    };
    let outcome = (|| {
        Stage::at(&page, 4).wait_for(1, Some(child))?;
        both("running", true)?;
        signal::kill(child, SIGSTOP).ctx("kill SIGSTOP")?;
        let (_, status) = wait4_bounded(child, WUNTRACED).ctx("wait4 WUNTRACED")?;
        ensure!(status.stop_signal() == Some(SIGSTOP), "wait4: {status}");
        both("stopped", false)?;
        signal::kill(child, SIGCONT).ctx("kill SIGCONT")?;
        both("continued", true)
    })();
    let _ = signal::kill(child, SIGKILL);
    let (_, status) = process::wait4(child, 0).ctx("wait4")?;
    outcome?;
    ensure!(status.signal() == Some(SIGKILL), "the child ended with {status}");
    Ok(())
}

static CONTINUED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_cont(_: i32) {
    CONTINUED.fetch_add(1, Ordering::SeqCst);
}

/// `SA_NOCLDSTOP` keeps SIGCHLD from telling stops and continues (a wait
/// still reports them); SIGCONT continues a process that blocks or
/// ignores it, and runs its handler once unblocked.
pub fn nocldstop_and_blocked_cont(_: &Context) -> TestResult {
    signal::sigprocmask(signal::SIG_BLOCK, Some(signal::set_of(&[SIGCHLD]))).ctx("block SIGCHLD")?;
    signal::sigaction_raw(SIGCHLD, SIG_DFL, SaFlags::NOCLDSTOP, SigSet(0)).ctx("SA_NOCLDSTOP")?;
    let page = shared_page()?;
    let child = match process::fork().ctx("fork")? {
        Fork::Child => {
            let _ = signal::setpgid(0, 0);
            let flag = Stage::at(&page, 4);
            let _ = signal::handle(SIGCONT, on_cont, SaFlags::RESTART);
            let _ = signal::sigprocmask(signal::SIG_BLOCK, Some(signal::set_of(&[SIGCONT])));
            let counter = Stage::at(&page, 0);
            loop {
                counter.set(counter.get() + 1);
                if counter.get() > 1 && flag.get() == 1 {
                    // Told to unblock: the pending SIGCONT's handler runs.
                    let _ = signal::sigprocmask(signal::SIG_UNBLOCK, Some(signal::set_of(&[SIGCONT])));
                    flag.set(2 + CONTINUED.load(Ordering::SeqCst) as u32);
                }
                let _ = time::sleep_ms(1);
            }
        }
        Fork::Parent(pid) => pid,
    };
    let _ = signal::setpgid(child, child);
    let outcome = (|| {
        Stage::at(&page, 0).wait_for(1, Some(child))?;
        signal::kill(child, SIGSTOP).ctx("kill SIGSTOP")?;
        let (_, status) = wait4_bounded(child, WUNTRACED).ctx("wait4 WUNTRACED")?;
        ensure!(status.stop_signal() == Some(SIGSTOP), "wait4: {status}");
        expect_counting(&page, false, "stopped")?;
        signal::kill(child, SIGCONT).ctx("kill SIGCONT")?;
        let (_, status) = wait4_bounded(child, WCONTINUED).ctx("wait4 WCONTINUED")?;
        ensure!(status.continued(), "wait4: {status}");
        expect_counting(&page, true, "continued with SIGCONT blocked")?;
        let pending = signal::sigpending().ctx("sigpending")?;
        ensure!(pending.0 & 1 << (SIGCHLD - 1) == 0, "SIGCHLD came despite SA_NOCLDSTOP");
        Stage::at(&page, 4).set(1);
        Stage::at(&page, 4).wait_for(2, Some(child))?;
        ensure!(Stage::at(&page, 4).get() == 3, "the SIGCONT handler ran {} times", Stage::at(&page, 4).get() - 2);
        Ok(())
    })();
    let _ = signal::kill(child, SIGKILL);
    process::wait4(child, 0).ctx("wait4")?;
    outcome?;

    // Ignored, SIGCONT still continues.
    in_child("SIGCONT ignored", || {
        signal::sigaction_raw(SIGCONT, SIG_IGN, SaFlags::empty(), SigSet(0)).ctx("SIG_IGN")?;
        let page = shared_page()?;
        let child = counting_child(&page)?;
        let outcome = (|| {
            signal::kill(child, SIGSTOP).ctx("kill SIGSTOP")?;
            wait4_bounded(child, WUNTRACED).ctx("wait4 WUNTRACED")?;
            expect_counting(&page, false, "stopped")?;
            signal::kill(child, SIGCONT).ctx("kill SIGCONT")?;
            expect_counting(&page, true, "continued with SIGCONT ignored")
        })();
        let _ = signal::kill(child, SIGKILL);
        process::wait4(child, 0).ctx("wait4")?;
        outcome
    })
}

/// A blocked call goes on after a stop: a nanosleep sleeps its whole time
/// and returns 0; a pipe read returns what is written after the continue.
pub fn restart_after_continue(_: &Context) -> TestResult {
    let page = shared_page()?;
    let (read_end, write_end) = aspen_sys::fd::pipe2(OpenFlags::empty()).ctx("pipe2")?;
    let child = match process::fork().ctx("fork")? {
        Fork::Child => {
            let _ = signal::setpgid(0, 0);
            let stage = Stage::at(&page, 0);
            let start = time::clock_gettime(CLOCK_MONOTONIC).map(|t| t.as_nanos()).unwrap_or(0);
            stage.set(1);
            let slept = time::nanosleep(&Timespec { tv_sec: 0, tv_nsec: 300_000_000 });
            let took = time::clock_gettime(CLOCK_MONOTONIC).map(|t| t.as_nanos()).unwrap_or(0) - start;
            let code = match slept {
                Ok(()) if took >= 300_000_000 => 0,
                Ok(()) => 10,
                Err(_) => 11,
            };
            if code != 0 {
                process::exit_group(code);
            }
            stage.set(2);
            let mut buf = [0u8; 4];
            let code = match fs::read(read_end, &mut buf) {
                Ok(4) if &buf == b"data" => 0,
                Ok(_) => 12,
                Err(_) => 13,
            };
            process::exit_group(code)
        }
        Fork::Parent(pid) => pid,
    };
    let _ = signal::setpgid(child, child);
    let outcome = (|| {
        let stage = Stage::at(&page, 0);
        stage.wait_for(1, Some(child))?;
        time::sleep_ms(50).ctx("sleep")?;
        signal::kill(child, SIGSTOP).ctx("kill SIGSTOP")?;
        wait4_bounded(child, WUNTRACED).ctx("wait4 WUNTRACED")?;
        time::sleep_ms(50).ctx("sleep")?;
        signal::kill(child, SIGCONT).ctx("kill SIGCONT")?;
        stage.wait_for(2, Some(child))?;
        time::sleep_ms(20).ctx("sleep")?;
        signal::kill(child, SIGTSTP).ctx("kill SIGTSTP")?;
        let (_, status) = wait4_bounded(child, WUNTRACED).ctx("wait4 WUNTRACED")?;
        ensure!(status.stop_signal() == Some(SIGTSTP), "wait4 during the read: {status}");
        signal::kill(child, SIGCONT).ctx("kill SIGCONT")?;
        time::sleep_ms(20).ctx("sleep")?;
        fs::write(write_end, b"data").ctx("write")?;
        Ok(())
    })();
    if outcome.is_err() {
        let _ = signal::kill(child, SIGKILL);
        let _ = process::wait4(child, 0);
    }
    outcome?;
    let (_, status) = process::wait4(child, 0).ctx("wait4")?;
    ensure!(status.success(), "the child (10/11: nanosleep short/failed, 12/13: read wrong/failed): {status}");
    Ok(())
}

static HANGUPS: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_hup(_: i32) {
    HANGUPS.fetch_add(1, Ordering::SeqCst);
}

/// In an orphaned group SIGTSTP, SIGTTIN and SIGTTOU do nothing, a read of
/// the terminal is `EIO`; when a group becomes
/// orphaned with a stopped member, it gets SIGHUP and SIGCONT.
pub fn orphaned_group(_: &Context) -> TestResult {
    let page = shared_page()?;
    let stage = Stage::at(&page, 0);
    // A child whose own child (in a group of its own) outlives it.
    let middle = match process::fork().ctx("fork")? {
        Fork::Child => {
            if let Ok(Fork::Child) = process::fork() {
                let _ = signal::setpgid(0, 0);
                let parent = process::getppid();
                stage.set(1);
                while process::getppid() == parent {
                    let _ = time::sleep_ms(1);
                }
                // Orphaned now (its parent is init).
                for signo in [SIGTSTP, SIGTTIN, SIGTTOU] {
                    let _ = signal::kill(0, signo);
                }
                let read = read_tty();
                stage.set(if read == Err(Errno::EIO) { 2 } else { 100 });
                process::exit_group(0)
            }
            let _ = stage.wait_for(1, None);
            process::exit_group(0)
        }
        Fork::Parent(pid) => pid,
    };
    process::wait4(middle, 0).ctx("wait4")?;
    stage.wait_for(2, None)?;
    ensure!(stage.get() == 2, "the orphaned group's read of the terminal was not EIO");

    // Stopped when its group becomes orphaned: SIGHUP (handled) then SIGCONT.
    stage.set(0);
    let middle = match process::fork().ctx("fork")? {
        Fork::Child => {
            if let Ok(Fork::Child) = process::fork() {
                let _ = signal::setpgid(0, 0);
                let _ = signal::handle(SIGHUP, on_hup, SaFlags::empty());
                stage.set(1);
                let _ = signal::kill(0, SIGSTOP);
                // Continued by the SIGCONT that follows the SIGHUP.
                stage.set(2 + HANGUPS.load(Ordering::SeqCst) as u32);
                process::exit_group(0)
            }
            let _ = stage.wait_for(1, None);
            // Until the grandchild has stopped (its state in /proc is
            // another test's), then end: that orphans the group.
            let _ = time::sleep_ms(50);
            process::exit_group(0)
        }
        Fork::Parent(pid) => pid,
    };
    process::wait4(middle, 0).ctx("wait4")?;
    stage.wait_for(2, None)?;
    ensure!(stage.get() == 3, "the stopped member of the orphaned group got {} SIGHUPs", stage.get() - 2);
    Ok(())
}

/// A background group that reads the terminal (through `/dev/tty`) gets
/// SIGTTIN (stopped; the read restarts after SIGCONT and stops again), `EIO`
/// when it ignores SIGTTIN; through `/dev/console` it is not held back; changing the settings gets SIGTTOU unless it is ignored or
/// blocked (then allowed), writing under `TOSTOP` too; `TIOCNOTTY` gives
/// the terminal up for one process.
pub fn terminal_background(_: &Context) -> TestResult {
    let foreground = tty::get_foreground(STDIN).ctx("TIOCGPGRP")?;
    let original = tty::get_termios(STDIN).ctx("TCGETS")?;
    let outcome = background_steps(&original);
    // Whatever happened, the terminal as it was.
    let _ = tty::set_termios(STDIN, abi::TCSETS, &original);
    let _ = tty::set_foreground(STDIN, foreground);
    outcome?;
    ensure!(tty::get_foreground(STDIN).ctx("TIOCGPGRP")? == foreground, "the foreground group changed");
    Ok(())
}

/// Reads a byte from the terminal through `/dev/tty` (Linux exempts reads
/// through `/dev/console` from job control).
fn read_tty() -> Result<usize, Errno> {
    let fd = fs::open(c"/dev/tty", OpenFlags::RDONLY, 0)?;
    let mut buf = [0u8; 1];
    let read = fs::read(fd, &mut buf);
    let _ = fs::close(fd);
    read
}

/// Forks a child in a background group of its own running `body`; when
/// it stops, continues it `continues` times (each time it must stop again
/// by the same signal), then kills it. `Err(signal)`: it stopped by that
/// signal; `Ok(code)`: it exited with `code` without stopping.
fn in_background(body: impl FnOnce() -> i32, continues: usize) -> Result<Result<i32, i32>, String> {
    let child = match process::fork().ctx("fork")? {
        Fork::Child => {
            let _ = signal::setpgid(0, 0);
            process::exit_group(body())
        }
        Fork::Parent(pid) => pid,
    };
    let _ = signal::setpgid(child, child);
    let mut first = None;
    for round in 0.. {
        let (_, status) = match wait4_bounded(child, WUNTRACED) {
            Ok(found) => found,
            Err(e) => {
                let _ = signal::kill(child, SIGKILL);
                let _ = process::wait4(child, 0);
                return Err(alloc::format!("wait4 WUNTRACED: {e}"));
            }
        };
        let Some(signo) = status.stop_signal() else { return Ok(Ok(status.exit_code().unwrap_or(-1))) };
        let first = *first.get_or_insert(signo);
        if signo != first || round == continues {
            signal::kill(child, SIGKILL).ctx("kill SIGKILL")?;
            process::wait4(child, 0).ctx("wait4")?;
            ensure!(signo == first, "stopped by {first}, then by {signo}");
            return Ok(Err(signo));
        }
        signal::kill(child, SIGCONT).ctx("kill SIGCONT")?;
    }
    unreachable!("the loop returns")
}

fn background_steps(original: &Termios) -> TestResult {
    let got = in_background(|| i32::from(read_tty().is_ok()), 1)?;
    ensure!(got == Err(SIGTTIN), "a background read: {got:?} (Err: stopped by, Ok: exit)");
    let got = in_background(
        || {
            let Ok(fd) = fs::open(c"/dev/console", OpenFlags::RDONLY | OpenFlags::NONBLOCK, 0) else { return 2 };
            let mut buf = [0u8; 1];
            i32::from(fs::read(fd, &mut buf) != Err(Errno::EAGAIN))
        },
        0,
    )?;
    ensure!(got == Ok(0), "a background read through /dev/console: {got:?} (Ok(0): EAGAIN, no SIGTTIN)");

    let got = in_background(
        || {
            let _ = signal::sigaction_raw(SIGTTIN, SIG_IGN, SaFlags::empty(), SigSet(0));
            i32::from(read_tty() != Err(Errno::EIO))
        },
        0,
    )?;
    ensure!(got == Ok(0), "a background read ignoring SIGTTIN: {got:?} (Ok(0): EIO)");

    let settings = *original;
    let got = in_background(move || i32::from(tty::set_termios(STDIN, abi::TCSETS, &settings).is_err()), 0)?;
    ensure!(got == Err(SIGTTOU), "TCSETS from the background: {got:?}");
    let got = in_background(
        move || {
            let _ = signal::sigaction_raw(SIGTTOU, SIG_IGN, SaFlags::empty(), SigSet(0));
            i32::from(tty::set_termios(STDIN, abi::TCSETS, &settings).is_err())
        },
        0,
    )?;
    ensure!(got == Ok(0), "TCSETS from the background ignoring SIGTTOU: {got:?}");

    // tcsetpgrp from the background with SIGTTOU blocked, as a shell does
    // to take the terminal, then back.
    let foreground = tty::get_foreground(STDIN).ctx("TIOCGPGRP")?;
    let got = in_background(
        move || {
            let _ = signal::sigprocmask(signal::SIG_BLOCK, Some(signal::set_of(&[SIGTTOU])));
            let me = process::getpid();
            let took = tty::set_foreground(STDIN, me).is_ok() && tty::get_foreground(STDIN) == Ok(me);
            let gave_back = tty::set_foreground(STDIN, foreground).is_ok();
            i32::from(!took) | i32::from(!gave_back) << 1
        },
        0,
    )?;
    ensure!(got == Ok(0), "tcsetpgrp with SIGTTOU blocked: {got:?} (1: not taken, 2: not given back)");
    let got = in_background(move || i32::from(tty::set_foreground(STDIN, process::getpid()).is_err()), 0)?;
    ensure!(got == Err(SIGTTOU), "tcsetpgrp from the background: {got:?}");

    // Writes (through /dev/tty: Linux exempts writes through /dev/console
    // from TOSTOP): free without TOSTOP, SIGTTOU with it.
    let write_tty = || match fs::open(c"/dev/tty", OpenFlags::WRONLY, 0) {
        Ok(fd) => i32::from(fs::write(fd, b"").is_err()),
        Err(_) => 2,
    };
    let got = in_background(write_tty, 0)?;
    ensure!(got == Ok(0), "a background write without TOSTOP: {got:?} (2: no /dev/tty)");
    let mut tostop = *original;
    tostop.lflag |= abi::TOSTOP;
    tty::set_termios(STDIN, abi::TCSETS, &tostop).ctx("TCSETS TOSTOP")?;
    let got = in_background(write_tty, 0);
    tty::set_termios(STDIN, abi::TCSETS, original).ctx("TCSETS (restoring)")?;
    let got = got?;
    ensure!(got == Err(SIGTTOU), "a background write under TOSTOP: {got:?}");

    in_child("TIOCNOTTY", || {
        in_child("TIOCNOTTY in a new session", || {
            signal::setsid().ctx("setsid")?;
            expect_errno("TIOCNOTTY of another session's terminal", tty::give_up_controlling(STDIN), Errno::ENOTTY)
        })?;
        tty::give_up_controlling(STDIN).ctx("TIOCNOTTY")?;
        expect_errno("TIOCGPGRP after TIOCNOTTY", tty::get_foreground(STDIN), Errno::ENOTTY)?;
        expect_errno("a second TIOCNOTTY", tty::give_up_controlling(STDIN), Errno::ENOTTY)?;
        Ok(())
    })?;
    ensure!(tty::get_foreground(STDIN).is_ok(), "TIOCNOTTY in a child took the terminal from its parent");
    Ok(())
}
