//! Terminals: `struct termios` and `struct winsize` as arm64 Linux lays them
//! out (include/uapi/asm-generic/termbits.h), the terminal `ioctl`s, and the
//! line discipline of Linux's n_tty (drivers/tty/n_tty.c, 6.1) as pure
//! logic: bytes in from the line, what a reader gets, what is echoed, which
//! signal a key raises, and output processing.
//!
//! What the discipline does: input processing (`ISTRIP`, `IGNCR`, `ICRNL`,
//! `INLCR`); signal keys under `ISIG` (`VINTR`, `VQUIT`, `VSUSP`; the input
//! is flushed unless `NOFLSH`); canonical mode (`ICANON`): lines edited by
//! `VERASE`, `VKILL`, `VWERASE`, `VLNEXT` and `VREPRINT` (the last three
//! under `IEXTEN`), ended by `\n`, `VEOL`, `VEOL2` or `VEOF` (a read of a
//! line that `VEOF` ends at its start returns 0: end of file); echo (`ECHO`,
//! `ECHOE`, `ECHOK`, `ECHOKE`, `ECHONL`, `ECHOCTL`: control characters as
//! `^X`), erasing on screen with `\b \b`, tabs by their columns, and
//! `IUTF8` characters whole; non-canonical reads with `VMIN`/`VTIME`; output
//! processing under `OPOST` (`ONLCR`, `OCRNL`, `ONOCR`, `ONLRET`).
//!
//! Allocation: once [`LineDiscipline::reserve`] made room for its buffers,
//! taking input allocates nothing (the kernel's terminal thread cannot fail
//! softly): the input kept is bounded (`INPUT_BUFFER` bytes, as many
//! complete lines), and echo goes to a [`Sink`] the caller provides, which
//! may be a fixed buffer that it drains when full.
//!
//! Not implemented: flow control (`IXON` is kept but `VSTART`/`VSTOP` are
//! ordinary characters), `PARMRK`, `IUCLC`, `OLCUC`, `XCASE`, `ECHOPRT`,
//! `FLUSHO`, `PENDIN`, tab expansion and output delays.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::signal::Signal;

/// `TCGETS`: the terminal's `struct termios`.
pub const TCGETS: u32 = 0x5401;
/// `TCSETS`: sets the `struct termios` now.
pub const TCSETS: u32 = 0x5402;
/// `TCSETSW`: sets it once output is drained.
pub const TCSETSW: u32 = 0x5403;
/// `TCSETSF`: sets it once output is drained, discarding pending input.
pub const TCSETSF: u32 = 0x5404;
/// `TCFLSH`: discards pending input, output or both.
pub const TCFLSH: u32 = 0x540B;
/// `TIOCSCTTY`: makes the terminal the caller's session's controlling one.
pub const TIOCSCTTY: u32 = 0x540E;
/// `TIOCGPGRP`: the foreground process group.
pub const TIOCGPGRP: u32 = 0x540F;
/// `TIOCSPGRP`: sets the foreground process group.
pub const TIOCSPGRP: u32 = 0x5410;
/// `TIOCOUTQ`: bytes waiting to be sent.
pub const TIOCOUTQ: u32 = 0x5411;
/// `TIOCGWINSZ`: the window size.
pub const TIOCGWINSZ: u32 = 0x5413;
/// `TIOCSWINSZ`: sets the window size.
pub const TIOCSWINSZ: u32 = 0x5414;
/// `TIOCNOTTY`: gives up the controlling terminal.
pub const TIOCNOTTY: u32 = 0x5422;
/// `FIONREAD` (`TIOCINQ`): bytes a read could return.
pub const FIONREAD: u32 = 0x541B;
/// `TIOCGSID`: the session the terminal controls.
pub const TIOCGSID: u32 = 0x5429;

/// `TCFLSH` argument: discard input.
pub const TCIFLUSH: u64 = 0;
/// `TCFLSH` argument: discard output.
pub const TCOFLUSH: u64 = 1;
/// `TCFLSH` argument: discard both.
pub const TCIOFLUSH: u64 = 2;

/// Number of control characters (`NCCS`).
pub const NCCS: usize = 19;
/// Index of `VINTR` (signal `SIGINT`).
pub const VINTR: usize = 0;
/// Index of `VQUIT` (signal `SIGQUIT`).
pub const VQUIT: usize = 1;
/// Index of `VERASE` (erase a character).
pub const VERASE: usize = 2;
/// Index of `VKILL` (erase the line).
pub const VKILL: usize = 3;
/// Index of `VEOF` (end of file).
pub const VEOF: usize = 4;
/// Index of `VTIME` (non-canonical timeout, in tenths of a second).
pub const VTIME: usize = 5;
/// Index of `VMIN` (non-canonical minimum count).
pub const VMIN: usize = 6;
/// Index of `VSTART` (resume output).
pub const VSTART: usize = 8;
/// Index of `VSTOP` (stop output).
pub const VSTOP: usize = 9;
/// Index of `VSUSP` (signal `SIGTSTP`).
pub const VSUSP: usize = 10;
/// Index of `VEOL` (extra end of line).
pub const VEOL: usize = 11;
/// Index of `VREPRINT` (show the line again).
pub const VREPRINT: usize = 12;
/// Index of `VDISCARD`.
pub const VDISCARD: usize = 13;
/// Index of `VWERASE` (erase a word).
pub const VWERASE: usize = 14;
/// Index of `VLNEXT` (take the next character literally).
pub const VLNEXT: usize = 15;
/// Index of `VEOL2` (second extra end of line).
pub const VEOL2: usize = 16;

/// `c_iflag`: strip the eighth bit.
pub const ISTRIP: u32 = 0o40;
/// `c_iflag`: NL to CR.
pub const INLCR: u32 = 0o100;
/// `c_iflag`: drop CR.
pub const IGNCR: u32 = 0o200;
/// `c_iflag`: CR to NL.
pub const ICRNL: u32 = 0o400;
/// `c_iflag`: XON/XOFF output flow control.
pub const IXON: u32 = 0o2000;
/// `c_iflag`: input is UTF-8 (erase removes whole characters).
pub const IUTF8: u32 = 0o40000;

/// `c_oflag`: output processing.
pub const OPOST: u32 = 0o1;
/// `c_oflag`: NL to CR NL.
pub const ONLCR: u32 = 0o4;
/// `c_oflag`: CR to NL.
pub const OCRNL: u32 = 0o10;
/// `c_oflag`: no CR at column 0.
pub const ONOCR: u32 = 0o20;
/// `c_oflag`: NL does the CR function.
pub const ONLRET: u32 = 0o40;

/// `c_cflag`: 115200 baud.
pub const B115200: u32 = 0o010002;
/// `c_cflag`: 8 bits a character.
pub const CS8: u32 = 0o60;
/// `c_cflag`: receiver on.
pub const CREAD: u32 = 0o200;
/// `c_cflag`: hang up on last close.
pub const HUPCL: u32 = 0o2000;
/// `c_cflag`: no modem control lines.
pub const CLOCAL: u32 = 0o4000;

/// `c_lflag`: signal keys.
pub const ISIG: u32 = 0o1;
/// `c_lflag`: canonical (line) input.
pub const ICANON: u32 = 0o2;
/// `c_lflag`: echo input.
pub const ECHO: u32 = 0o10;
/// `c_lflag`: erase echoes as `\b \b`.
pub const ECHOE: u32 = 0o20;
/// `c_lflag`: NL after the kill character.
pub const ECHOK: u32 = 0o40;
/// `c_lflag`: echo NL even without `ECHO`.
pub const ECHONL: u32 = 0o100;
/// `c_lflag`: no flush after a signal key.
pub const NOFLSH: u32 = 0o200;
/// `c_lflag`: a background process group's write gets `SIGTTOU`.
pub const TOSTOP: u32 = 0o400;
/// `c_lflag`: control characters echo as `^X`.
pub const ECHOCTL: u32 = 0o1000;
/// `c_lflag`: kill erases the line on screen.
pub const ECHOKE: u32 = 0o4000;
/// `c_lflag`: extended keys (`VWERASE`, `VLNEXT`, `VREPRINT`, `VEOL2`).
pub const IEXTEN: u32 = 0o100000;

/// Linux's `N_TTY_BUF_SIZE`: input kept is one byte less.
pub const INPUT_BUFFER: usize = 4096;

/// The `struct termios` of `TCGETS`/`TCSETS` (36 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    /// Input modes.
    pub iflag: u32,
    /// Output modes.
    pub oflag: u32,
    /// Control modes.
    pub cflag: u32,
    /// Local modes.
    pub lflag: u32,
    /// Line discipline number (0: n_tty).
    pub line: u8,
    /// Control characters.
    pub cc: [u8; NCCS],
}

impl Termios {
    /// Its size in user memory.
    pub const SIZE: usize = 36;

    /// A serial console's settings on Linux (`tty_std_termios` at 115200
    /// baud with `CLOCAL`): canonical, echoing, signal keys on, CR read as
    /// NL, NL written as CR NL.
    pub const fn console() -> Termios {
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B115200 | CS8 | CREAD | HUPCL | CLOCAL,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            // Linux's INIT_C_CC.
            cc: *b"\x03\x1c\x7f\x15\x04\x00\x01\x00\x11\x13\x1a\x00\x12\x0f\x17\x16\x00\x00\x00",
        }
    }

    /// Reads it from its bytes in user memory.
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Termios {
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let mut cc = [0; NCCS];
        cc.copy_from_slice(&bytes[17..17 + NCCS]);
        Termios { iflag: word(0), oflag: word(4), cflag: word(8), lflag: word(12), line: bytes[16], cc }
    }

    /// Its bytes in user memory.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        for (at, word) in [self.iflag, self.oflag, self.cflag, self.lflag].into_iter().enumerate() {
            bytes[at * 4..at * 4 + 4].copy_from_slice(&word.to_le_bytes());
        }
        bytes[16] = self.line;
        bytes[17..].copy_from_slice(&self.cc);
        bytes
    }

    const fn local(&self, flag: u32) -> bool {
        self.lflag & flag != 0
    }

    const fn input(&self, flag: u32) -> bool {
        self.iflag & flag != 0
    }

    const fn output(&self, flag: u32) -> bool {
        self.oflag & flag != 0
    }
}

/// The `struct winsize` of `TIOCGWINSZ`/`TIOCSWINSZ` (8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Winsize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
    /// Width in pixels (unused by the kernel).
    pub xpixel: u16,
    /// Height in pixels (unused by the kernel).
    pub ypixel: u16,
}

impl Winsize {
    /// Its size in user memory.
    pub const SIZE: usize = 8;
    /// What a terminal reports until told otherwise: 80 columns, 24 rows.
    pub const DEFAULT: Winsize = Winsize { rows: 24, cols: 80, xpixel: 0, ypixel: 0 };

    /// Reads it from its bytes in user memory.
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Winsize {
        let half = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        Winsize { rows: half(0), cols: half(2), xpixel: half(4), ypixel: half(6) }
    }

    /// Its bytes in user memory.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        for (at, half) in [self.rows, self.cols, self.xpixel, self.ypixel].into_iter().enumerate() {
            bytes[at * 2..at * 2 + 2].copy_from_slice(&half.to_le_bytes());
        }
        bytes
    }
}

/// Where processed output and echo go, a byte at a time.
pub trait Sink {
    /// Takes one byte.
    fn put(&mut self, byte: u8);
}

impl Sink for Vec<u8> {
    fn put(&mut self, byte: u8) {
        self.push(byte);
    }
}

/// How long a read waits, from `VMIN` and `VTIME` (n_tty_read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadTimes {
    /// The read returns once it has this many bytes (0: after the first
    /// look that finds input, as a canonical read returns one line).
    pub minimum: usize,
    /// After each byte taken, the wait for the next is this many tenths of
    /// a second (`VMIN` > 0 with `VTIME` > 0: an inter-byte timer).
    pub inter_byte: Option<u8>,
    /// The first wait's limit in tenths of a second; `None`: none.
    pub timeout: Option<u8>,
}

/// The n_tty line discipline of one terminal.
#[derive(Clone, Debug)]
pub struct LineDiscipline {
    termios: Termios,
    /// Bytes a reader may take (canonical: complete lines only).
    ready: VecDeque<u8>,
    /// Canonical mode: the lengths of the complete lines at the front of
    /// `ready` (0 for a line `VEOF` ends at its start).
    lines: VecDeque<usize>,
    /// Canonical mode: the line being edited.
    edit: Vec<u8>,
    /// The output column (n_tty's `column`).
    column: usize,
    /// The column the line being edited started at (`canon_column`).
    canon_column: usize,
    /// The next byte is taken literally (after `VLNEXT`).
    literal_next: bool,
}

impl Default for LineDiscipline {
    fn default() -> Self {
        Self::new(Termios::console())
    }
}

/// Whether Linux's `iscntrl` holds.
const fn is_control(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7f
}

impl LineDiscipline {
    /// A discipline with `termios` and no input.
    pub const fn new(termios: Termios) -> Self {
        Self {
            termios,
            ready: VecDeque::new(),
            lines: VecDeque::new(),
            edit: Vec::new(),
            column: 0,
            canon_column: 0,
            literal_next: false,
        }
    }

    /// Makes room for everything the discipline may keep (`INPUT_BUFFER`
    /// bytes, ready or being edited, and as many line ends), so that taking
    /// input never allocates.
    pub fn reserve(&mut self) -> Result<(), alloc::collections::TryReserveError> {
        self.ready.try_reserve_exact(INPUT_BUFFER.saturating_sub(self.ready.len()))?;
        self.lines.try_reserve_exact(INPUT_BUFFER.saturating_sub(self.lines.len()))?;
        self.edit.try_reserve_exact(INPUT_BUFFER.saturating_sub(self.edit.len()))
    }

    /// The settings.
    pub fn termios(&self) -> Termios {
        self.termios
    }

    /// Changes the settings. Leaving canonical mode makes everything typed
    /// readable; entering it makes what is pending one line (n_tty's
    /// `set_termios`).
    pub fn set_termios(&mut self, termios: Termios) {
        let was_canonical = self.canonical();
        self.termios = termios;
        if was_canonical != self.canonical() {
            self.ready.extend(self.edit.drain(..));
            self.lines.clear();
            if self.canonical() && !self.ready.is_empty() {
                self.lines.push_back(self.ready.len());
            }
            self.literal_next = false;
        }
    }

    fn canonical(&self) -> bool {
        self.termios.local(ICANON)
    }

    /// Drops every byte typed and not read (`TCIFLUSH`).
    pub fn flush_input(&mut self) {
        self.ready.clear();
        self.lines.clear();
        self.edit.clear();
        self.literal_next = false;
    }

    /// Bytes a read could take now (`FIONREAD`).
    pub fn pending(&self) -> usize {
        self.ready.len()
    }

    /// Whether a reader has something (`POLLIN`): a complete line in
    /// canonical mode, else a byte, or `VMIN` bytes when `VTIME` is 0
    /// (n_tty's `input_available_p` for poll).
    pub fn readable(&self) -> bool {
        if self.canonical() {
            return !self.lines.is_empty();
        }
        let (min, time) = (self.termios.cc[VMIN], self.termios.cc[VTIME]);
        let wanted = if time == 0 && min > 0 { usize::from(min) } else { 1 };
        self.ready.len() >= wanted
    }

    /// Whether a read would take something now (a canonical end-of-file
    /// line counts).
    pub fn can_read(&self) -> bool {
        if self.canonical() {
            !self.lines.is_empty()
        } else {
            !self.ready.is_empty()
        }
    }

    /// How a read waits under the current settings.
    pub fn read_times(&self) -> ReadTimes {
        if self.canonical() {
            return ReadTimes { minimum: 0, inter_byte: None, timeout: None };
        }
        match (self.termios.cc[VMIN], self.termios.cc[VTIME]) {
            (0, time) => ReadTimes { minimum: 1, inter_byte: None, timeout: Some(time) },
            (min, time) => {
                ReadTimes { minimum: usize::from(min), inter_byte: (time > 0).then_some(time), timeout: None }
            }
        }
    }

    /// Takes up to `max` bytes into `out`: in canonical mode at most the
    /// rest of one line (an end-of-file line is taken and gives nothing).
    /// Returns how many.
    pub fn read(&mut self, max: usize, out: &mut Vec<u8>) -> usize {
        let n = if self.canonical() {
            let Some(line) = self.lines.front_mut() else { return 0 };
            let n = (*line).min(max);
            *line -= n;
            if *line == 0 {
                self.lines.pop_front();
            }
            n
        } else {
            self.ready.len().min(max)
        };
        out.extend(self.ready.drain(..n));
        n
    }

    /// Processes `data` for output under `OPOST` into `out`, keeping the
    /// column (n_tty's `do_output_char`).
    pub fn output(&mut self, data: &[u8], out: &mut impl Sink) {
        if !self.termios.output(OPOST) {
            data.iter().for_each(|&byte| out.put(byte));
            return;
        }
        for &byte in data {
            self.output_byte(byte, out);
        }
    }

    fn output_byte(&mut self, byte: u8, out: &mut impl Sink) {
        let t = self.termios;
        match byte {
            b'\n' => {
                if t.output(ONLRET) {
                    self.column = 0;
                }
                if t.output(ONLCR) {
                    self.column = 0;
                    self.canon_column = 0;
                    out.put(b'\r');
                    out.put(b'\n');
                    return;
                }
                self.canon_column = self.column;
            }
            b'\r' => {
                if t.output(ONOCR) && self.column == 0 {
                    return;
                }
                if t.output(OCRNL) {
                    if t.output(ONLRET) {
                        self.column = 0;
                        self.canon_column = 0;
                    }
                    out.put(b'\n');
                    return;
                }
                self.column = 0;
                self.canon_column = 0;
            }
            b'\t' => self.column += 8 - (self.column & 7),
            0x08 => self.column = self.column.saturating_sub(1),
            _ if !is_control(byte) && !self.continuation(byte) => self.column += 1,
            _ => {}
        }
        out.put(byte);
    }

    /// Whether `byte` continues a UTF-8 character under `IUTF8`.
    fn continuation(&self, byte: u8) -> bool {
        self.termios.input(IUTF8) && byte & 0xc0 == 0x80
    }

    /// Echoes `byte` as n_tty's `echo_char`: a control character other
    /// than tab as `^X` under `ECHOCTL`.
    fn echo_char(&mut self, byte: u8, echo: &mut impl Sink) {
        if self.termios.local(ECHOCTL) && is_control(byte) && byte != b'\t' {
            self.output_byte(b'^', echo);
            self.output_byte(byte ^ 0o100, echo);
        } else {
            self.output_byte(byte, echo);
        }
    }

    /// Room for one more byte of input (one byte of the buffer stays free,
    /// as in n_tty).
    fn has_room(&self) -> bool {
        self.ready.len() + self.edit.len() < INPUT_BUFFER - 1
    }

    /// Takes one byte from the line. What must be shown goes to `echo`
    /// (already processed for output); a signal key returns the signal for
    /// the foreground process group.
    pub fn receive(&mut self, byte: u8, echo: &mut impl Sink) -> Option<Signal> {
        let t = self.termios;
        let mut c = if t.input(ISTRIP) { byte & 0x7f } else { byte };
        if self.literal_next {
            self.literal_next = false;
            self.ordinary(c, echo);
            return None;
        }
        if t.local(ISIG) {
            let signal = match c {
                _ if c == t.cc[VINTR] => Some(Signal::Int),
                _ if c == t.cc[VQUIT] => Some(Signal::Quit),
                _ if c == t.cc[VSUSP] => Some(Signal::Tstp),
                _ => None,
            };
            if let Some(signal) = signal {
                if !t.local(NOFLSH) {
                    self.flush_input();
                }
                if t.local(ECHO) {
                    self.echo_char(c, echo);
                }
                return Some(signal);
            }
        }
        if c == b'\r' {
            if t.input(IGNCR) {
                return None;
            }
            if t.input(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.input(INLCR) {
            c = b'\r';
        }
        if self.canonical() {
            let extended = t.local(IEXTEN);
            if c == t.cc[VERASE] || c == t.cc[VKILL] || (c == t.cc[VWERASE] && extended) {
                self.erase(c, echo);
                return None;
            }
            if c == t.cc[VLNEXT] && extended {
                self.literal_next = true;
                if t.local(ECHO) && t.local(ECHOCTL) {
                    self.output_byte(b'^', echo);
                    self.output_byte(0x08, echo);
                }
                return None;
            }
            if c == t.cc[VREPRINT] && t.local(ECHO) && extended {
                self.echo_char(c, echo);
                self.output_byte(b'\n', echo);
                self.canon_column = self.column;
                // By index: the line stays where it is (and so its room).
                for at in 0..self.edit.len() {
                    self.echo_char(self.edit[at], echo);
                }
                return None;
            }
            if c == b'\n' {
                if t.local(ECHO) || t.local(ECHONL) {
                    self.output_byte(b'\n', echo);
                }
                self.end_line(Some(c));
                return None;
            }
            if c == t.cc[VEOF] {
                self.end_line(None);
                return None;
            }
            if c == t.cc[VEOL] || (c == t.cc[VEOL2] && extended) {
                if t.local(ECHO) {
                    if self.edit.is_empty() {
                        self.canon_column = self.column;
                    }
                    self.echo_char(c, echo);
                }
                self.end_line(Some(c));
                return None;
            }
        }
        self.ordinary(c, echo);
        None
    }

    /// Ends the line being edited with `end` (`None`: `VEOF`, which is not
    /// kept); it becomes readable. A buffer full of the line being edited
    /// still takes the end; one full otherwise, or holding `INPUT_BUFFER`
    /// lines (they may all be empty: `VEOF`s), drops it as n_tty's (whose
    /// buffer keeps a byte for each).
    fn end_line(&mut self, end: Option<u8>) {
        if self.ready.len() + self.edit.len() >= INPUT_BUFFER || self.lines.len() >= INPUT_BUFFER {
            return;
        }
        self.edit.extend(end);
        self.lines.push_back(self.edit.len());
        self.ready.extend(self.edit.drain(..));
    }

    /// An ordinary byte: echoed, kept (dropped when the buffer is full).
    fn ordinary(&mut self, c: u8, echo: &mut impl Sink) {
        if !self.has_room() {
            return;
        }
        if self.termios.local(ECHO) {
            if c == b'\n' {
                self.output_byte(b'\n', echo);
            } else {
                if self.edit.is_empty() {
                    self.canon_column = self.column;
                }
                self.echo_char(c, echo);
            }
        }
        if self.canonical() {
            self.edit.push(c);
        } else {
            self.ready.push_back(c);
        }
    }

    /// n_tty's `eraser`: `VERASE` takes one character, `VWERASE` a word
    /// (and the blanks after it), `VKILL` the line; shown as echo flags say.
    fn erase(&mut self, c: u8, echo: &mut impl Sink) {
        #[derive(PartialEq)]
        enum Kind {
            Erase,
            Word,
            Kill,
        }
        if self.edit.is_empty() {
            return;
        }
        let t = self.termios;
        let kind = if c == t.cc[VERASE] {
            Kind::Erase
        } else if c == t.cc[VWERASE] {
            Kind::Word
        } else {
            if !t.local(ECHO) {
                self.edit.clear();
                return;
            }
            if !t.local(ECHOK) || !t.local(ECHOKE) || !t.local(ECHOE) {
                self.edit.clear();
                self.echo_char(c, echo);
                if t.local(ECHOK) {
                    self.output_byte(b'\n', echo);
                }
                return;
            }
            Kind::Kill
        };
        let mut seen_word = false;
        while !self.edit.is_empty() {
            // A whole UTF-8 character goes at once.
            let mut start = self.edit.len() - 1;
            while start > 0 && self.continuation(self.edit[start]) {
                start -= 1;
            }
            if kind == Kind::Word {
                let word = self.edit[start].is_ascii_alphanumeric() || self.edit[start] == b'_';
                if word {
                    seen_word = true;
                } else if seen_word {
                    break;
                }
            }
            let erased = self.edit[start];
            self.edit.truncate(start);
            if t.local(ECHO) {
                if kind == Kind::Erase && !t.local(ECHOE) {
                    self.echo_char(c, echo);
                } else if erased == b'\t' {
                    self.erase_tab(echo);
                } else {
                    if is_control(erased) && t.local(ECHOCTL) {
                        for byte in *b"\x08 \x08" {
                            self.output_byte(byte, echo);
                        }
                    }
                    if !is_control(erased) || t.local(ECHOCTL) {
                        for byte in *b"\x08 \x08" {
                            self.output_byte(byte, echo);
                        }
                    }
                }
            }
            if kind == Kind::Erase {
                break;
            }
        }
    }

    /// Backs over an erased tab: the columns it took, found from the
    /// characters before it (n_tty's `echo_erase_tab`).
    fn erase_tab(&mut self, echo: &mut impl Sink) {
        let mut columns = 0;
        let mut after_tab = false;
        for &byte in self.edit.iter().rev() {
            if byte == b'\t' {
                after_tab = true;
                break;
            } else if is_control(byte) {
                if self.termios.local(ECHOCTL) {
                    columns += 2;
                }
            } else if !self.continuation(byte) {
                columns += 1;
            }
        }
        if !after_tab {
            columns += self.canon_column;
        }
        for _ in 0..8 - (columns & 7) {
            self.output_byte(0x08, echo);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` to `ld`; returns the echo and the signals raised.
    fn feed(ld: &mut LineDiscipline, input: &[u8]) -> (Vec<u8>, Vec<Signal>) {
        let mut echo = Vec::new();
        let signals = input.iter().filter_map(|&b| ld.receive(b, &mut echo)).collect();
        (echo, signals)
    }

    fn read(ld: &mut LineDiscipline, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        ld.read(max, &mut out);
        out
    }

    fn raw(min: u8, time: u8) -> LineDiscipline {
        let mut t = Termios::console();
        t.lflag &= !(ICANON | ECHO);
        t.cc[VMIN] = min;
        t.cc[VTIME] = time;
        LineDiscipline::new(t)
    }

    #[test]
    fn termios_is_laid_out_as_arm64_linux() {
        let t = Termios::console();
        let bytes = t.to_bytes();
        assert_eq!(&bytes[0..4], &(ICRNL | IXON).to_le_bytes());
        assert_eq!(&bytes[12..16], &0o105073u32.to_le_bytes());
        assert_eq!(bytes[16], 0);
        assert_eq!(bytes[17 + VINTR], 3);
        assert_eq!(bytes[17 + VERASE], 0x7f);
        assert_eq!(bytes[17 + VMIN], 1);
        assert_eq!(Termios::from_bytes(&bytes), t);
        let w = Winsize { rows: 24, cols: 80, xpixel: 1, ypixel: 2 };
        assert_eq!(w.to_bytes(), [24, 0, 80, 0, 1, 0, 2, 0]);
        assert_eq!(Winsize::from_bytes(&w.to_bytes()), w);
    }

    #[test]
    fn canonical_line_with_erase_and_cr() {
        let mut ld = LineDiscipline::default();
        let (echo, signals) = feed(&mut ld, b"abc\x7fd");
        assert!(signals.is_empty());
        assert_eq!(echo, b"abc\x08 \x08d");
        assert!(!ld.readable(), "no line before its end");
        assert_eq!(read(&mut ld, 100), b"");
        let (echo, _) = feed(&mut ld, b"\r");
        assert_eq!(echo, b"\r\n");
        assert!(ld.readable());
        assert_eq!(ld.pending(), 4);
        assert_eq!(read(&mut ld, 100), b"abd\n");
        assert!(!ld.readable());
    }

    #[test]
    fn a_read_takes_one_line_and_a_short_buffer_part_of_it() {
        let mut ld = LineDiscipline::default();
        feed(&mut ld, b"one\ntwo\n");
        assert_eq!(read(&mut ld, 2), b"on");
        assert_eq!(read(&mut ld, 100), b"e\n");
        assert_eq!(read(&mut ld, 100), b"two\n");
    }

    #[test]
    fn eof_at_line_start_is_end_of_file_and_elsewhere_ends_the_line() {
        let mut ld = LineDiscipline::default();
        let (echo, _) = feed(&mut ld, b"ab\x04\x04");
        assert_eq!(echo, b"ab", "EOF is not echoed");
        assert!(ld.can_read());
        assert_eq!(read(&mut ld, 100), b"ab");
        assert!(ld.can_read(), "the second EOF is an empty line");
        assert_eq!(read(&mut ld, 100), b"");
        assert!(!ld.can_read());
    }

    #[test]
    fn kill_erases_the_line_on_screen() {
        let mut ld = LineDiscipline::default();
        let (echo, _) = feed(&mut ld, b"ab\x15c\n");
        assert_eq!(echo, b"ab\x08 \x08\x08 \x08c\r\n");
        assert_eq!(read(&mut ld, 100), b"c\n");
        // Without ECHOKE: the kill character, then a newline (ECHOK).
        let mut t = Termios::console();
        t.lflag &= !ECHOKE;
        ld.set_termios(t);
        let (echo, _) = feed(&mut ld, b"xy\x15");
        assert_eq!(echo, b"xy^U\r\n");
    }

    #[test]
    fn erase_of_control_characters_and_tabs_covers_their_columns() {
        let mut ld = LineDiscipline::default();
        let mut out = Vec::new();
        ld.output(b"$ ", &mut out);
        let (echo, _) = feed(&mut ld, b"\x01\x7f");
        assert_eq!(echo, b"^A\x08 \x08\x08 \x08");
        // The prompt left the column at 2: the tab took 6 columns.
        let (echo, _) = feed(&mut ld, b"\t\x7f");
        assert_eq!(echo, b"\t\x08\x08\x08\x08\x08\x08");
        let (echo, _) = feed(&mut ld, b"abc\t\x7f");
        assert_eq!(echo, b"abc\t\x08\x08\x08");
        // Nothing to erase: nothing happens.
        ld.flush_input();
        assert_eq!(feed(&mut ld, b"\x7f").0, b"");
    }

    #[test]
    fn word_erase_takes_blanks_then_a_word() {
        let mut ld = LineDiscipline::default();
        feed(&mut ld, b"ls foo_1  \x17x\n");
        assert_eq!(read(&mut ld, 100), b"ls x\n");
    }

    #[test]
    fn utf8_characters_are_erased_whole() {
        let mut t = Termios::console();
        t.iflag |= IUTF8;
        let mut ld = LineDiscipline::new(t);
        let (echo, _) = feed(&mut ld, "é\x7f\n".as_bytes());
        assert_eq!(echo, "é\x08 \x08\r\n".as_bytes());
        assert_eq!(read(&mut ld, 100), b"\n");
    }

    #[test]
    fn signal_keys_flush_and_echo_as_control_characters() {
        let mut ld = LineDiscipline::default();
        let (echo, signals) = feed(&mut ld, b"abc\x03");
        assert_eq!(signals, [Signal::Int]);
        assert_eq!(echo, b"abc^C");
        assert_eq!(ld.pending(), 0);
        feed(&mut ld, b"x\n");
        assert_eq!(read(&mut ld, 100), b"x\n");
        let (echo, signals) = feed(&mut ld, b"\x1c\x1a");
        assert_eq!(signals, [Signal::Quit, Signal::Tstp]);
        assert_eq!(echo, b"^\\^Z");
        // NOFLSH keeps the input; without ISIG ^C is a character.
        let mut t = Termios::console();
        t.lflag |= NOFLSH;
        ld.set_termios(t);
        feed(&mut ld, b"k\x03\n");
        assert_eq!(read(&mut ld, 100), b"k\n");
        t.lflag &= !ISIG;
        ld.set_termios(t);
        let (echo, signals) = feed(&mut ld, b"\x03\n");
        assert!(signals.is_empty());
        assert_eq!(echo, b"^C\r\n");
        assert_eq!(read(&mut ld, 100), b"\x03\n");
    }

    #[test]
    fn literal_next_and_reprint() {
        let mut ld = LineDiscipline::default();
        let (echo, signals) = feed(&mut ld, b"\x16\x03\n");
        assert!(signals.is_empty());
        assert_eq!(echo, b"^\x08^C\r\n");
        assert_eq!(read(&mut ld, 100), b"\x03\n");
        let (echo, _) = feed(&mut ld, b"ab\x12");
        assert_eq!(echo, b"ab^R\r\nab");
    }

    #[test]
    fn input_and_output_translations() {
        let mut t = Termios::console();
        t.iflag = IGNCR;
        let mut ld = LineDiscipline::new(t);
        feed(&mut ld, b"a\rb\n");
        assert_eq!(read(&mut ld, 100), b"ab\n");
        t.iflag = INLCR;
        t.lflag &= !ICANON;
        ld.set_termios(t);
        feed(&mut ld, b"\n");
        assert_eq!(read(&mut ld, 100), b"\r");
        let mut out = Vec::new();
        ld.output(b"x\ny\r", &mut out);
        assert_eq!(out, b"x\r\ny\r");
        t.oflag = OPOST | OCRNL;
        ld.set_termios(t);
        out.clear();
        ld.output(b"x\ny\r", &mut out);
        assert_eq!(out, b"x\ny\n");
        t.oflag = OPOST | ONOCR;
        ld.set_termios(t);
        out.clear();
        ld.output(b"\rab\r\r", &mut out);
        assert_eq!(out, b"\rab\r", "a CR at column 0 is dropped");
        t.oflag = ONLCR;
        ld.set_termios(t);
        out.clear();
        ld.output(b"\n", &mut out);
        assert_eq!(out, b"\n", "no processing without OPOST");
    }

    #[test]
    fn echo_off_and_echonl() {
        let mut t = Termios::console();
        t.lflag &= !ECHO;
        let mut ld = LineDiscipline::new(t);
        assert_eq!(feed(&mut ld, b"pw\x7f\n").0, b"");
        assert_eq!(read(&mut ld, 100), b"p\n");
        t.lflag |= ECHONL;
        ld.set_termios(t);
        assert_eq!(feed(&mut ld, b"pw\n").0, b"\r\n");
    }

    #[test]
    fn raw_mode_gives_bytes_as_typed() {
        let mut ld = raw(1, 0);
        let (echo, _) = feed(&mut ld, b"a\x7f\r");
        assert_eq!(echo, b"");
        assert!(ld.readable());
        assert_eq!(read(&mut ld, 2), b"a\x7f");
        assert_eq!(read(&mut ld, 100), b"\n", "ICRNL still applies");
        let mut t = ld.termios();
        t.lflag |= ECHO;
        ld.set_termios(t);
        assert_eq!(feed(&mut ld, b"\x01\n").0, b"^A\r\n");
    }

    #[test]
    fn vmin_and_vtime_as_linux() {
        assert_eq!(raw(1, 0).read_times(), ReadTimes { minimum: 1, inter_byte: None, timeout: None });
        assert_eq!(raw(4, 2).read_times(), ReadTimes { minimum: 4, inter_byte: Some(2), timeout: None });
        assert_eq!(raw(0, 5).read_times(), ReadTimes { minimum: 1, inter_byte: None, timeout: Some(5) });
        assert_eq!(raw(0, 0).read_times(), ReadTimes { minimum: 1, inter_byte: None, timeout: Some(0) });
        assert_eq!(LineDiscipline::default().read_times(), ReadTimes { minimum: 0, inter_byte: None, timeout: None });
        // poll waits for VMIN bytes when VTIME is 0, for one otherwise.
        let mut ld = raw(3, 0);
        feed(&mut ld, b"ab");
        assert!(!ld.readable());
        assert!(ld.can_read());
        feed(&mut ld, b"c");
        assert!(ld.readable());
        let mut ld = raw(3, 1);
        feed(&mut ld, b"a");
        assert!(ld.readable());
    }

    #[test]
    fn mode_switches_keep_what_was_typed() {
        let mut ld = LineDiscipline::default();
        feed(&mut ld, b"par");
        let mut t = ld.termios();
        t.lflag &= !ICANON;
        ld.set_termios(t);
        assert_eq!(ld.pending(), 3);
        feed(&mut ld, b"t");
        t.lflag |= ICANON;
        ld.set_termios(t);
        assert!(ld.readable());
        assert_eq!(read(&mut ld, 100), b"part");
    }

    #[test]
    fn the_buffer_is_bounded_but_a_line_can_still_end() {
        let mut ld = LineDiscipline::default();
        feed(&mut ld, &[b'x'; 5000]);
        assert_eq!(ld.edit.len(), INPUT_BUFFER - 1);
        feed(&mut ld, b"\n");
        assert_eq!(ld.pending(), INPUT_BUFFER);
        let mut ld = raw(1, 0);
        feed(&mut ld, &[b'x'; 5000]);
        assert_eq!(ld.pending(), INPUT_BUFFER - 1);
    }

    proptest::proptest! {
        #[test]
        fn any_input_keeps_the_buffer_bounded(input in proptest::collection::vec(proptest::num::u8::ANY, 0..6000), canonical: bool) {
            let mut t = Termios::console();
            if !canonical {
                t.lflag &= !ICANON;
            }
            let mut ld = LineDiscipline::new(t);
            let (_, _) = feed(&mut ld, &input);
            proptest::prop_assert!(ld.pending() + ld.edit.len() <= INPUT_BUFFER);
            let mut total = 0;
            while ld.can_read() {
                let before = ld.pending();
                let n = ld.read(64, &mut Vec::new());
                total += n;
                proptest::prop_assert_eq!(ld.pending(), before - n);
            }
            proptest::prop_assert!(total <= INPUT_BUFFER);
        }
    }
}
