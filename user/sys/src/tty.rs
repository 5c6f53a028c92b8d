//! Terminals: `struct termios` get and set, the window size, the
//! foreground process group and the controlling terminal (`ioctl`s).

use aspen_abi::tty::{FIONREAD, TCGETS, TIOCGPGRP, TIOCGSID, TIOCGWINSZ, TIOCNOTTY, TIOCSCTTY, TIOCSPGRP, TIOCSWINSZ};

use crate::raw::{syscall3, Sysno};
use crate::Errno;

/// The structures and their flags, from the ABI crate.
pub use aspen_abi::tty::{self as abi, Termios, Winsize};

/// `ioctl(fd, cmd, arg)` with `arg` a plain value.
fn ioctl_value(fd: i32, cmd: u32, arg: usize) -> Result<(), Errno> {
    // SAFETY: the commands this is used with take no pointer.
    Errno::result(unsafe { syscall3(Sysno::Ioctl.number(), fd as usize, cmd as usize, arg) }).map(drop)
}

/// `ioctl(fd, cmd, buf)` with `buf` the command's structure, read or written.
fn ioctl_buf(fd: i32, cmd: u32, buf: &mut [u8]) -> Result<(), Errno> {
    // SAFETY: `buf` is writable memory of the size the command reads or
    // writes (the callers pass the structure's size).
    Errno::result(unsafe { syscall3(Sysno::Ioctl.number(), fd as usize, cmd as usize, buf.as_mut_ptr() as usize) })
        .map(drop)
}

/// `tcgetattr`: the terminal's settings (`TCGETS`).
pub fn get_termios(fd: i32) -> Result<Termios, Errno> {
    let mut bytes = [0; Termios::SIZE];
    ioctl_buf(fd, TCGETS, &mut bytes)?;
    Ok(Termios::from_bytes(&bytes))
}

/// Sets the terminal's settings with `cmd` (`TCSETS`, `TCSETSW`, `TCSETSF`).
pub fn set_termios(fd: i32, cmd: u32, termios: &Termios) -> Result<(), Errno> {
    ioctl_buf(fd, cmd, &mut termios.to_bytes())
}

/// Whether `fd` is a terminal (`isatty`: `TCGETS` succeeds).
pub fn is_terminal(fd: i32) -> bool {
    get_termios(fd).is_ok()
}

/// The window size (`TIOCGWINSZ`).
pub fn get_winsize(fd: i32) -> Result<Winsize, Errno> {
    let mut bytes = [0; Winsize::SIZE];
    ioctl_buf(fd, TIOCGWINSZ, &mut bytes)?;
    Ok(Winsize::from_bytes(&bytes))
}

/// Sets the window size (`TIOCSWINSZ`).
pub fn set_winsize(fd: i32, winsize: &Winsize) -> Result<(), Errno> {
    ioctl_buf(fd, TIOCSWINSZ, &mut winsize.to_bytes())
}

/// Reads the `int` a command writes.
fn get_int(fd: i32, cmd: u32) -> Result<i32, Errno> {
    let mut bytes = [0; 4];
    ioctl_buf(fd, cmd, &mut bytes)?;
    Ok(i32::from_le_bytes(bytes))
}

/// `tcgetpgrp`: the foreground process group (`TIOCGPGRP`).
pub fn get_foreground(fd: i32) -> Result<i32, Errno> {
    get_int(fd, TIOCGPGRP)
}

/// `tcsetpgrp`: sets the foreground process group (`TIOCSPGRP`).
pub fn set_foreground(fd: i32, pgrp: i32) -> Result<(), Errno> {
    ioctl_buf(fd, TIOCSPGRP, &mut pgrp.to_le_bytes())
}

/// `tcgetsid`: the session the terminal controls (`TIOCGSID`).
pub fn get_session(fd: i32) -> Result<i32, Errno> {
    get_int(fd, TIOCGSID)
}

/// Bytes a read could take now (`FIONREAD`).
pub fn pending_input(fd: i32) -> Result<i32, Errno> {
    get_int(fd, FIONREAD)
}

/// Gives up the controlling terminal (`TIOCNOTTY`).
pub fn give_up_controlling(fd: i32) -> Result<(), Errno> {
    ioctl_value(fd, TIOCNOTTY, 0)
}

/// Makes the terminal the calling session leader's controlling terminal
/// (`TIOCSCTTY`; `steal`: from another session).
pub fn set_controlling(fd: i32, steal: bool) -> Result<(), Errno> {
    ioctl_value(fd, TIOCSCTTY, usize::from(steal))
}
