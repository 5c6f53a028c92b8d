//! The console as a terminal (Linux's tty layer for one serial line): the
//! UART's receive interrupt queues bytes and wakes the `tty` kernel thread,
//! which passes them through the n_tty line discipline
//! ([`aspen_abi::tty::LineDiscipline`]): echo goes out, signal keys signal
//! the foreground process group, and readers waiting on [`readers`] wake.
//! Writes go out through the discipline's output processing.
//!
//! The `tty` thread allocates nothing (it has nobody to return `ENOMEM`
//! to): the discipline's buffers are reserved when the thread starts, echo
//! goes through a fixed buffer written to the console whenever it fills,
//! and a signal key's group is found by walking the process table, not a
//! copy of it. What a full input buffer cannot take is dropped, as n_tty
//! drops it.
//!
//! The terminal controls at most one session: `TIOCSCTTY` lets a session
//! leader without one take it (Aspen's `/init` does, as a Linux init must),
//! its group then in the foreground, and it is free again when that leader
//! ends or gives it up with `TIOCNOTTY` (its foreground group gets
//! `SIGHUP` and `SIGCONT`, as Linux's `disassociate_ctty`); another process
//! of the session gives up only its own use of it. As Linux's
//! `/dev/console`, opening the console never makes it a controlling
//! terminal.
//!
//! Job control ([`check_job_control`], Linux's `__tty_check_change`): a
//! process of a background group of the controlling session that reads
//! gets `SIGTTIN` for its group, one that changes the settings, the
//! foreground group or flushes (or writes under `TOSTOP`) `SIGTTOU`; the
//! call restarts once the group is continued. As Linux, reads and writes
//! through `/dev/console` (rather than `/dev/tty`) are exempt ([`Node`]). A background reader that
//! ignores or blocks `SIGTTIN`, or whose group is orphaned, gets `EIO`; a
//! changer that ignores or blocks `SIGTTOU` goes on.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use aspen_abi::signal::{Restart, SigInfo, SigNo, Signal, SIG_IGN, SI_KERNEL};
use aspen_abi::tty::{self as abi, LineDiscipline, Sink, Termios, Winsize};
use aspen_abi::uaccess::{UserMemory, UserPtr, UserSlice};
use aspen_mm::errno::Errno;
use spin::{Mutex, Once};

use crate::arch::{cpu, timer};
use crate::console;
use crate::process::{thread, Process};
use crate::syscall::{copy_out_at, user};
use crate::task::wait::WaitQueue;
use crate::task::{sched, Pid, Task};

/// Which node a description of the console was opened by. As Linux's
/// `/dev/console` (a redirection to the console's terminal), reads and
/// writes through it are free of job control; through `/dev/tty` they are
/// not. Terminal `ioctl`s are checked either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// `/dev/console` (5, 1), and init's descriptors.
    Console,
    /// `/dev/tty` (5, 0).
    Tty,
}

impl Node {
    /// The node the absolute `path` names, if one of the two.
    pub fn at(path: &[u8]) -> Option<Node> {
        match path {
            b"/dev/console" => Some(Node::Console),
            b"/dev/tty" => Some(Node::Tty),
            _ => None,
        }
    }

    /// The node of a character device of major 5 with `minor` (0 or 1).
    pub fn of_minor(minor: u32) -> Node {
        if minor == 0 {
            Node::Tty
        } else {
            Node::Console
        }
    }

    /// Its minor device number.
    pub fn minor(self) -> u32 {
        match self {
            Node::Tty => 0,
            Node::Console => 1,
        }
    }
}

/// Received bytes kept for the `tty` thread; more are lost (an overrun).
const RECEIVED_MAX: usize = 4096;

/// The terminal's state.
struct Terminal {
    ldisc: LineDiscipline,
    winsize: Winsize,
    /// The session it controls.
    session: Option<Pid>,
    /// The foreground process group.
    pgrp: Option<Pid>,
}

static TERMINAL: Mutex<Terminal> = Mutex::new(Terminal {
    ldisc: LineDiscipline::new(Termios::console()),
    winsize: Winsize::DEFAULT,
    session: None,
    pgrp: None,
});
/// Bytes the receive interrupt took, not yet through the discipline: a
/// ring of fixed size, so that the interrupt never allocates (a byte that
/// finds it full is dropped, as a UART overrun drops it). Shared with the
/// interrupt: taken elsewhere only with interrupts masked.
static RECEIVED: Mutex<Received> = Mutex::new(Received { bytes: [0; RECEIVED_MAX], start: 0, len: 0 });

struct Received {
    bytes: [u8; RECEIVED_MAX],
    start: usize,
    len: usize,
}

impl Received {
    fn push(&mut self, byte: u8) {
        if self.len < RECEIVED_MAX {
            self.bytes[(self.start + self.len) % RECEIVED_MAX] = byte;
            self.len += 1;
        }
    }

    /// Moves the oldest bytes into `out`; how many.
    fn take(&mut self, out: &mut [u8]) -> usize {
        let n = self.len.min(out.len());
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = self.bytes[(self.start + i) % RECEIVED_MAX];
        }
        self.start = (self.start + n) % RECEIVED_MAX;
        self.len -= n;
        n
    }
}

/// Bytes the `tty` thread passes through the discipline at a time.
const INPUT_CHUNK: usize = 256;
/// The `tty` thread, which the interrupt wakes.
static WORKER: Once<Arc<Task>> = Once::new();
/// Woken when input may have become readable.
static READERS: WaitQueue = WaitQueue::new();

/// Starts the `tty` thread and the UART's receive interrupt (after init,
/// so that init has the first pid).
pub fn init() {
    // At boot, so that the thread finds its room made (`input` makes it
    // otherwise).
    let _ = TERMINAL.lock().ldisc.reserve();
    match Task::new_kernel(sched::DEFAULT_PRIORITY, worker, 0) {
        Ok(task) => {
            WORKER.call_once(|| task.clone());
            sched::make_ready(task);
        }
        Err(e) => panic!("cannot start the tty thread: {e:?}"),
    }
    console::enable_receive_interrupts();
}

/// The UART's receive interrupt: queues what arrived and wakes the `tty`
/// thread.
pub fn on_interrupt() {
    {
        let mut received = RECEIVED.lock();
        console::receive(|byte| received.push(byte));
    }
    if let Some(worker) = WORKER.get() {
        sched::wake(worker);
    }
}

/// The `tty` thread: passes received bytes through the discipline.
fn worker(_: usize) {
    loop {
        let irq = cpu::disable_irqs();
        let mut bytes = [0u8; INPUT_CHUNK];
        let n = RECEIVED.lock().take(&mut bytes);
        if n == 0 {
            // Masked: the interrupt cannot come between the look and the block.
            sched::block(None);
            cpu::restore_irqs(irq);
            continue;
        }
        // Masked while it runs the discipline too: it takes locks (the
        // terminal, the process table, processes' signals) that the
        // `timer` thread's expiries take with interrupts masked.
        input(&bytes[..n]);
        cpu::restore_irqs(irq);
    }
}

/// Typed bytes dropped because the discipline had no room for its buffers
/// (`tty_input_dropped` in /proc/vmstat).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Typed bytes dropped for want of memory since boot.
pub fn input_dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Echo on its way to the console: a fixed buffer, written out when full
/// (and by [`Echo::flush`]), so that echoing never allocates.
struct Echo {
    bytes: [u8; 128],
    len: usize,
}

impl Echo {
    const fn new() -> Self {
        Self { bytes: [0; 128], len: 0 }
    }

    fn flush(&mut self) {
        console::write_raw(&self.bytes[..self.len]);
        self.len = 0;
    }
}

impl Sink for Echo {
    fn put(&mut self, byte: u8) {
        if self.len == self.bytes.len() {
            self.flush();
        }
        self.bytes[self.len] = byte;
        self.len += 1;
    }
}

/// Passes `bytes` through the line discipline as if typed: echoes, sends
/// the signals of signal keys (after the echo before them), wakes readers.
/// The discipline and the echo allocate nothing (counted under checks);
/// a signal's queued information is refused as a full queue when the
/// heap has no room, as for any sender.
pub fn input(bytes: &[u8]) {
    // Nothing to do when the room was made already; without room (the
    // heap refused it) the bytes are dropped, as an overrun drops them.
    if TERMINAL.lock().ldisc.reserve().is_err() {
        DROPPED.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        return;
    }
    let mut echo = Echo::new();
    for &byte in bytes {
        let (signal, pgrp) = {
            let _no_alloc = crate::failslab::NoAllocSection::enter();
            let mut terminal = TERMINAL.lock();
            (terminal.ldisc.receive(byte, &mut echo), terminal.pgrp)
        };
        if let (Some(signal), Some(pgrp)) = (signal, pgrp) {
            echo.flush();
            signal_group(pgrp, signal);
        }
    }
    echo.flush();
    READERS.wake_all();
}

/// Sends `signal` to process group `pgrp` from the kernel (Linux's
/// `kill_pgrp(.., 1)`: `SI_KERNEL`). The table is walked one process at
/// a time (no list is made), none of its locks held while sending.
fn signal_group(pgrp: Pid, signal: Signal) {
    let mut after = 0;
    while let Some(process) = Process::next_after(after, |p| p.pgid() == pgrp) {
        after = process.pid;
        if process.is_zombie() {
            continue;
        }
        // A full signal queue drops the signal, as for any sender.
        let _ = process.send(signal.into(), SigInfo::sent(signal, SI_KERNEL, 0, 0));
    }
}

/// Linux's `__tty_check_change`: whether the current process may go on
/// reading the terminal (`signal` `SIGTTIN`) or changing it or writing under
/// `TOSTOP` (`SIGTTOU`). Only a process of a background group of the
/// session the terminal controls is held back: its group gets `signal` and
/// the call is to restart (`ERESTARTSYS`) once the group continues; `EIO`
/// when nobody would continue it (an orphaned group) or, for `SIGTTIN`,
/// when the signal is ignored or blocked (which lets `SIGTTOU` go on).
fn check_job_control(signal: Signal) -> Result<(), Errno> {
    // Kernel threads (the self-tests) have no controlling terminal.
    let Some(me) = thread::current() else { return Ok(()) };
    let process = &me.process;
    let foreground = {
        let terminal = TERMINAL.lock();
        if !controls(&terminal, process) {
            return Ok(());
        }
        terminal.pgrp
    };
    let pgrp = process.pgid();
    if foreground.is_none_or(|foreground| foreground == pgrp) {
        return Ok(());
    }
    let signo = SigNo::from(signal);
    let ignored = me.signal_mask().contains(signo) || process.actions().lock().get(signo).handler == SIG_IGN;
    if ignored {
        return if signal == Signal::Ttin { Err(Errno::EIO) } else { Ok(()) };
    }
    if crate::process::jobctl::is_orphaned_pgrp(pgrp) {
        return Err(Errno::EIO);
    }
    signal_group(pgrp, signal);
    Err(Restart::Sys.errno())
}

/// Whether the terminal is `process`'s controlling terminal: it controls
/// its session and the process did not give it up (`TIOCNOTTY`).
fn controls(terminal: &Terminal, process: &Process) -> bool {
    terminal.session == Some(process.sid()) && !process.detached_from_tty()
}

/// A write by the current process through `node`: under `TOSTOP`, a
/// background group's is held back as [`check_job_control`] says (not
/// through `/dev/console`, as Linux).
pub fn check_write(node: Node) -> Result<(), Errno> {
    if node == Node::Console || TERMINAL.lock().ldisc.termios().lflag & abi::TOSTOP == 0 {
        return Ok(());
    }
    check_job_control(Signal::Ttou)
}

/// Writes `data` through the discipline's output processing, whose
/// buffer is reserved first (a byte becomes two at most: `\n` as
/// `\r\n`): `ENOMEM`, nothing written, when the heap has no room.
pub fn write(data: &[u8]) -> Result<(), Errno> {
    let mut out = Vec::new();
    out.try_reserve_exact(2 * data.len()).map_err(|_| Errno::ENOMEM)?;
    TERMINAL.lock().ldisc.output(data, &mut out);
    console::write_raw(&out);
    Ok(())
}

/// The queue woken when input may have become readable.
pub fn readers() -> &'static WaitQueue {
    &READERS
}

/// Whether a read would find input (`POLLIN`).
pub fn readable() -> bool {
    TERMINAL.lock().ldisc.readable()
}

/// Reads up to `max` bytes as n_tty does: a canonical read returns one
/// line (0 bytes: end of file); a raw one waits as `VMIN` and `VTIME` say.
/// `EAGAIN` instead of waiting when `nonblocking` and nothing was read; a
/// signal interrupts the wait (`ERESTARTSYS`, or the bytes read so far).
pub fn read(max: usize, nonblocking: bool, node: Node) -> Result<Vec<u8>, Errno> {
    // As Linux's n_tty: no job control through /dev/console.
    if node == Node::Tty {
        check_job_control(Signal::Ttin)?;
    }
    let mut data = Vec::new();
    if max == 0 {
        return Ok(data);
    }
    let times = TERMINAL.lock().ldisc.read_times();
    let after = |tenths: u8| timer::ticks().saturating_add(timer::frequency() * u64::from(tenths) / 10);
    let mut deadline = times.timeout.map(after);
    loop {
        let mut terminal = TERMINAL.lock();
        if !terminal.ldisc.can_read() {
            drop(terminal);
            if deadline.is_some_and(|d| timer::ticks() >= d) {
                break;
            }
            if nonblocking || thread::with_current(thread::Thread::interrupted) {
                if !data.is_empty() {
                    break;
                }
                return Err(if nonblocking { Errno::EAGAIN } else { Restart::Sys.errno() });
            }
            READERS.wait(deadline);
            continue;
        }
        // The read buffer grows fallibly, before anything is taken: no
        // room is ENOMEM (or the bytes read so far), the input kept.
        let wanted = terminal.ldisc.pending().min(max - data.len());
        if data.try_reserve(wanted).is_err() {
            drop(terminal);
            return if data.is_empty() { Err(Errno::ENOMEM) } else { Ok(data) };
        }
        terminal.ldisc.read(max - data.len(), &mut data);
        drop(terminal);
        if data.len() >= times.minimum || data.len() == max {
            break;
        }
        if let Some(tenths) = times.inter_byte {
            deadline = Some(after(tenths));
        }
    }
    Ok(data)
}

/// The session leader `pid` ended or gave up its terminal (`TIOCNOTTY`):
/// a terminal it controlled is free, and its foreground group gets `SIGHUP`
/// and `SIGCONT`.
pub fn session_leader_ended(pid: Pid) {
    let pgrp = {
        let mut terminal = TERMINAL.lock();
        if terminal.session != Some(pid) {
            return;
        }
        terminal.session = None;
        terminal.pgrp.take()
    };
    if let Some(pgrp) = pgrp {
        signal_group(pgrp, Signal::Hup);
        signal_group(pgrp, Signal::Cont);
    }
}

/// Reads the `int` at `arg`.
fn read_int(arg: u64) -> Result<i32, Errno> {
    Ok(user().read_u32(UserPtr::new(arg)?)? as i32)
}

/// Writes the `int` `value` at `arg`.
fn write_int(arg: u64, value: u32) -> Result<u64, Errno> {
    copy_out_at(arg, &value.to_le_bytes()).map(|()| 0)
}

/// The terminal `ioctl`s on the console, as Linux's `tty_ioctl` and
/// n_tty's; other requests are `ENOTTY`.
pub fn ioctl(cmd: u32, arg: u64) -> Result<u64, Errno> {
    let me = thread::with_current(|t| t.process.clone());
    let controls_mine = |terminal: &Terminal| controls(terminal, &me);
    if matches!(cmd, abi::TCSETS | abi::TCSETSW | abi::TCSETSF | abi::TCFLSH | abi::TIOCSPGRP) {
        match check_job_control(Signal::Ttou) {
            // As Linux's tiocspgrp: an orphaned background group is told
            // the terminal is not its own.
            Err(Errno::EIO) if cmd == abi::TIOCSPGRP => return Err(Errno::ENOTTY),
            result => result?,
        }
    }
    match cmd {
        abi::TCGETS => {
            let termios = TERMINAL.lock().ldisc.termios();
            copy_out_at(arg, &termios.to_bytes()).map(|()| 0)
        }
        abi::TCSETS | abi::TCSETSW | abi::TCSETSF => {
            let mut bytes = [0; Termios::SIZE];
            user().read(UserSlice::new(arg, Termios::SIZE as u64)?, &mut bytes)?;
            let mut terminal = TERMINAL.lock();
            if cmd == abi::TCSETSF {
                terminal.ldisc.flush_input();
            }
            terminal.ldisc.set_termios(Termios::from_bytes(&bytes));
            drop(terminal);
            READERS.wake_all();
            Ok(0)
        }
        abi::TCFLSH => match arg {
            abi::TCIFLUSH | abi::TCIOFLUSH => {
                TERMINAL.lock().ldisc.flush_input();
                Ok(0)
            }
            // Output leaves synchronously: nothing waits to be discarded.
            abi::TCOFLUSH => Ok(0),
            _ => Err(Errno::EINVAL),
        },
        abi::TIOCGWINSZ => {
            let winsize = TERMINAL.lock().winsize;
            copy_out_at(arg, &winsize.to_bytes()).map(|()| 0)
        }
        abi::TIOCSWINSZ => {
            let mut bytes = [0; Winsize::SIZE];
            user().read(UserSlice::new(arg, Winsize::SIZE as u64)?, &mut bytes)?;
            let winsize = Winsize::from_bytes(&bytes);
            let mut terminal = TERMINAL.lock();
            let changed = core::mem::replace(&mut terminal.winsize, winsize) != winsize;
            let pgrp = terminal.pgrp;
            drop(terminal);
            if let Some(pgrp) = pgrp.filter(|_| changed) {
                signal_group(pgrp, Signal::Winch);
            }
            Ok(0)
        }
        abi::FIONREAD => {
            let pending = TERMINAL.lock().ldisc.pending();
            write_int(arg, pending as u32)
        }
        abi::TIOCOUTQ => write_int(arg, 0),
        abi::TIOCGPGRP => {
            let terminal = TERMINAL.lock();
            if !controls_mine(&terminal) {
                return Err(Errno::ENOTTY);
            }
            let pgrp = terminal.pgrp.unwrap_or(0);
            drop(terminal);
            write_int(arg, pgrp)
        }
        abi::TIOCGSID => {
            let terminal = TERMINAL.lock();
            let session = terminal.session.filter(|_| controls_mine(&terminal)).ok_or(Errno::ENOTTY)?;
            drop(terminal);
            write_int(arg, session)
        }
        abi::TIOCSPGRP => {
            let pgrp = read_int(arg)?;
            if pgrp < 0 {
                return Err(Errno::EINVAL);
            }
            if !controls_mine(&TERMINAL.lock()) {
                return Err(Errno::ENOTTY);
            }
            // The group's session: a member's, or that of the process the
            // number names (Linux's `session_of_pgrp`).
            let all = Process::all();
            let named = all
                .iter()
                .find(|p| p.pgid() == pgrp as Pid && !p.is_zombie())
                .or_else(|| all.iter().find(|p| p.pid == pgrp as Pid))
                .ok_or(Errno::ESRCH)?;
            if named.sid() != me.sid() {
                return Err(Errno::EPERM);
            }
            TERMINAL.lock().pgrp = Some(pgrp as Pid);
            Ok(0)
        }
        abi::TIOCNOTTY => {
            if !controls_mine(&TERMINAL.lock()) {
                return Err(Errno::ENOTTY);
            }
            // A leader frees the terminal for the whole session; another
            // process gives up only its own use of it.
            if me.sid() == me.pid {
                session_leader_ended(me.pid);
            } else {
                me.detach_from_tty();
            }
            Ok(0)
        }
        abi::TIOCSCTTY => {
            let mut terminal = TERMINAL.lock();
            let leader = me.sid() == me.pid;
            if leader && controls_mine(&terminal) {
                return Ok(0);
            }
            if !leader {
                return Err(Errno::EPERM);
            }
            // Another session's terminal is taken only when asked to steal
            // it. Everyone has CAP_SYS_ADMIN here, so a descriptor not open
            // for reading may take it too, as on Linux for root.
            if terminal.session.is_some() && arg != 1 {
                return Err(Errno::EPERM);
            }
            terminal.session = Some(me.sid());
            terminal.pgrp = Some(me.pgid());
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// The foreground process group of the terminal when it is the
/// controlling terminal of session `sid` (`tpgid` in `/proc/<pid>/stat`).
pub fn controlling(sid: Pid) -> Option<Pid> {
    let irq = cpu::disable_irqs();
    let terminal = TERMINAL.lock();
    let pgrp = terminal.pgrp.filter(|_| terminal.session == Some(sid));
    drop(terminal);
    cpu::restore_irqs(irq);
    pgrp
}
