//! Signals as aarch64 Linux numbers and lays them out: [`Signal`] (the
//! standard ones) and [`SigNo`] (any of the 64, real-time included), their
//! default actions ([`DefaultAction`]), signal sets ([`SigSet`]), the
//! `rt_sigaction` structure ([`SigAction`]), `siginfo_t` ([`SigInfo`]), the
//! alternate stack rules of `sigaltstack` ([`AltStack`]), the restart
//! numbers a blocked system call returns inside the kernel ([`Restart`]),
//! and what a handler finds on its stack, the `rt_sigframe` ([`RtSigFrame`]:
//! `siginfo`, then a [`UContext`] holding the [`SigContext`] whose
//! `__reserved` area carries [`FpsimdContext`] and [`EsrContext`] records
//! ended by a zero [`ContextHeader`]; [`frame`] writes and reads it).

use core::fmt;

use bitflags::bitflags;

use crate::Errno;

pub mod frame;

macro_rules! signals {
    ($($variant:ident = $number:literal => $name:literal,)*) => {
        /// A standard signal, numbered as on Linux (1 to 31).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Signal {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant = $number,
            )*
        }

        impl Signal {
            /// Every standard signal, by number.
            pub const ALL: [Signal; 31] = [$(Signal::$variant,)*];

            /// Its name, as in `<signal.h>`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Signal::$variant => $name,)*
                }
            }
        }
    };
}

signals! {
    Hup = 1 => "SIGHUP",
    Int = 2 => "SIGINT",
    Quit = 3 => "SIGQUIT",
    Ill = 4 => "SIGILL",
    Trap = 5 => "SIGTRAP",
    Abrt = 6 => "SIGABRT",
    Bus = 7 => "SIGBUS",
    Fpe = 8 => "SIGFPE",
    Kill = 9 => "SIGKILL",
    Usr1 = 10 => "SIGUSR1",
    Segv = 11 => "SIGSEGV",
    Usr2 = 12 => "SIGUSR2",
    Pipe = 13 => "SIGPIPE",
    Alrm = 14 => "SIGALRM",
    Term = 15 => "SIGTERM",
    Stkflt = 16 => "SIGSTKFLT",
    Chld = 17 => "SIGCHLD",
    Cont = 18 => "SIGCONT",
    Stop = 19 => "SIGSTOP",
    Tstp = 20 => "SIGTSTP",
    Ttin = 21 => "SIGTTIN",
    Ttou = 22 => "SIGTTOU",
    Urg = 23 => "SIGURG",
    Xcpu = 24 => "SIGXCPU",
    Xfsz = 25 => "SIGXFSZ",
    Vtalrm = 26 => "SIGVTALRM",
    Prof = 27 => "SIGPROF",
    Winch = 28 => "SIGWINCH",
    Io = 29 => "SIGIO",
    Pwr = 30 => "SIGPWR",
    Sys = 31 => "SIGSYS",
}

/// The first real-time signal number the kernel knows (`SIGRTMIN`).
pub const SIGRTMIN: u32 = 32;
/// The highest signal number (`_NSIG`): signals are 1 to 64.
pub const NSIG: u32 = 64;

impl Signal {
    /// The Linux signal number.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The standard signal numbered `number`, if it is one (1 to 31).
    pub fn from_number(number: u32) -> Option<Signal> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        Signal::ALL.get(index).copied()
    }

    /// Its bit in a [`SigSet`].
    pub const fn mask(self) -> SigSet {
        SigSet(1 << (self as u8 - 1))
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Any signal number Linux knows: 1 to 64 (real-time ones from 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SigNo(u8);

/// What a signal does when its action is `SIG_DFL` (Linux's
/// `SIG_KERNEL_*_MASK` classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// End the process.
    Terminate,
    /// End the process and dump core (Aspen writes no core: the wait
    /// status is that of [`DefaultAction::Terminate`]).
    CoreDump,
    /// Nothing happens.
    Ignore,
    /// Stop the process (job control).
    Stop,
    /// Continue a stopped process; nothing for a running one.
    Continue,
}

impl SigNo {
    /// The number `number`, if it names a signal (1 to 64).
    pub const fn new(number: u64) -> Option<SigNo> {
        if number >= 1 && number <= NSIG as u64 {
            Some(SigNo(number as u8))
        } else {
            None
        }
    }

    /// The Linux signal number.
    pub const fn number(self) -> u32 {
        self.0 as u32
    }

    /// The standard signal it is, if it is one.
    pub fn standard(self) -> Option<Signal> {
        Signal::from_number(self.number())
    }

    /// Whether it is a real-time signal (32 to 64): queued, each instance
    /// with its own `siginfo`, where standard signals coalesce.
    pub const fn is_realtime(self) -> bool {
        self.0 as u32 >= SIGRTMIN
    }

    /// Its bit in a [`SigSet`].
    pub const fn mask(self) -> SigSet {
        SigSet(1 << (self.0 - 1))
    }

    /// `SIGKILL` and `SIGSTOP`: never blocked, caught or ignored.
    pub const fn is_kernel_only(self) -> bool {
        SigSet::UNBLOCKABLE.0 & self.mask().0 != 0
    }

    /// What `SIG_DFL` does with it.
    pub const fn default_action(self) -> DefaultAction {
        const fn bit(signal: Signal) -> u64 {
            1 << (signal as u8 - 1)
        }
        let me = self.mask().0;
        let ignore = bit(Signal::Chld) | bit(Signal::Urg) | bit(Signal::Winch);
        let stop = bit(Signal::Stop) | bit(Signal::Tstp) | bit(Signal::Ttin) | bit(Signal::Ttou);
        let core = bit(Signal::Quit)
            | bit(Signal::Ill)
            | bit(Signal::Trap)
            | bit(Signal::Abrt)
            | bit(Signal::Bus)
            | bit(Signal::Fpe)
            | bit(Signal::Segv)
            | bit(Signal::Xcpu)
            | bit(Signal::Xfsz)
            | bit(Signal::Sys);
        if me & ignore != 0 {
            DefaultAction::Ignore
        } else if me & stop != 0 {
            DefaultAction::Stop
        } else if me & core != 0 {
            DefaultAction::CoreDump
        } else if me == bit(Signal::Cont) {
            DefaultAction::Continue
        } else {
            DefaultAction::Terminate
        }
    }
}

impl From<Signal> for SigNo {
    fn from(signal: Signal) -> SigNo {
        SigNo(signal.number())
    }
}

impl fmt::Display for SigNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.standard() {
            Some(signal) => f.write_str(signal.name()),
            None => write!(f, "SIGRT{}", self.0 as u32 - SIGRTMIN),
        }
    }
}

/// The kernel's `sigset_t`: bit `n - 1` for signal `n` (64 signals, 8
/// bytes, the size `rt_sigaction` and `rt_sigprocmask` take).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SigSet(pub u64);

/// The only `sigsetsize` the `rt_sig*` calls accept.
pub const SIGSET_SIZE: u64 = 8;

impl SigSet {
    /// No signal.
    pub const EMPTY: SigSet = SigSet(0);
    /// `SIGKILL` and `SIGSTOP`, which no mask holds.
    pub const UNBLOCKABLE: SigSet = SigSet(1 << (Signal::Kill as u8 - 1) | 1 << (Signal::Stop as u8 - 1));
    /// The signals faults raise, delivered before others (Linux's
    /// `SYNCHRONOUS_MASK`).
    pub const SYNCHRONOUS: SigSet = SigSet(
        1 << (Signal::Segv as u8 - 1)
            | 1 << (Signal::Bus as u8 - 1)
            | 1 << (Signal::Ill as u8 - 1)
            | 1 << (Signal::Trap as u8 - 1)
            | 1 << (Signal::Fpe as u8 - 1)
            | 1 << (Signal::Sys as u8 - 1),
    );

    /// Whether `signo` is in the set.
    pub const fn contains(self, signo: SigNo) -> bool {
        self.0 & signo.mask().0 != 0
    }

    /// The set with `signo` added.
    pub const fn with(self, signo: SigNo) -> SigSet {
        SigSet(self.0 | signo.mask().0)
    }

    /// The set with `signo` taken out.
    pub const fn without(self, signo: SigNo) -> SigSet {
        SigSet(self.0 & !signo.mask().0)
    }

    /// The set without `SIGKILL` and `SIGSTOP`: what a mask may hold.
    pub const fn blockable(self) -> SigSet {
        SigSet(self.0 & !Self::UNBLOCKABLE.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The signal to take first: the lowest-numbered synchronous one, else
    /// the lowest-numbered (Linux's `next_signal`).
    pub const fn next(self) -> Option<SigNo> {
        let synchronous = self.0 & Self::SYNCHRONOUS.0;
        let pick = if synchronous != 0 { synchronous } else { self.0 };
        if pick == 0 {
            None
        } else {
            Some(SigNo(pick.trailing_zeros() as u8 + 1))
        }
    }
}

impl core::ops::BitOr for SigSet {
    type Output = SigSet;
    fn bitor(self, other: SigSet) -> SigSet {
        SigSet(self.0 | other.0)
    }
}

impl core::ops::BitAnd for SigSet {
    type Output = SigSet;
    fn bitand(self, other: SigSet) -> SigSet {
        SigSet(self.0 & other.0)
    }
}

impl core::ops::Not for SigSet {
    type Output = SigSet;
    fn not(self) -> SigSet {
        SigSet(!self.0)
    }
}

/// `how` of `rt_sigprocmask`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskHow {
    /// `SIG_BLOCK` (0): add the set.
    Block,
    /// `SIG_UNBLOCK` (1): take the set out.
    Unblock,
    /// `SIG_SETMASK` (2): the set is the mask.
    SetMask,
}

impl MaskHow {
    /// Decodes `how` (an `int`); `EINVAL` for another value.
    pub const fn from_register(raw: u64) -> Result<MaskHow, Errno> {
        match raw as u32 {
            0 => Ok(MaskHow::Block),
            1 => Ok(MaskHow::Unblock),
            2 => Ok(MaskHow::SetMask),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The mask after applying `set` to `old`; `SIGKILL` and `SIGSTOP`
    /// never end up in it.
    pub const fn apply(self, old: SigSet, set: SigSet) -> SigSet {
        let new = match self {
            MaskHow::Block => old.0 | set.0,
            MaskHow::Unblock => old.0 & !set.0,
            MaskHow::SetMask => set.0,
        };
        SigSet(new).blockable()
    }
}

bitflags! {
    /// `SA_*`: the flags of a [`SigAction`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct SaFlags: u64 {
        /// `SA_NOCLDSTOP`: no `SIGCHLD` when a child stops or continues.
        const NOCLDSTOP = 0x1;
        /// `SA_NOCLDWAIT`: children leave no zombie.
        const NOCLDWAIT = 0x2;
        /// `SA_SIGINFO`: the handler takes `(signo, siginfo *, ucontext *)`.
        const SIGINFO = 0x4;
        /// `SA_UNSUPPORTED`: never supported, so a kernel that clears it says it checks flags.
        const UNSUPPORTED = 0x400;
        /// `SA_EXPOSE_TAGBITS`: `si_addr` keeps the address tag bits.
        const EXPOSE_TAGBITS = 0x800;
        /// `SA_RESTORER`: `sa_restorer` holds the return trampoline.
        const RESTORER = 0x0400_0000;
        /// `SA_ONSTACK`: run the handler on the alternate signal stack.
        const ONSTACK = 0x0800_0000;
        /// `SA_RESTART`: interrupted system calls restart instead of failing with `EINTR`.
        const RESTART = 0x1000_0000;
        /// `SA_NODEFER`: the signal is not blocked while its handler runs.
        const NODEFER = 0x4000_0000;
        /// `SA_RESETHAND`: the action goes back to the default when delivered.
        const RESETHAND = 0x8000_0000;
    }
}

impl SaFlags {
    /// The flags Linux keeps (`UAPI_SA_FLAGS`): any other bit is cleared,
    /// so a caller can tell which it supports.
    pub const UAPI: SaFlags = SaFlags::NOCLDSTOP
        .union(SaFlags::NOCLDWAIT)
        .union(SaFlags::SIGINFO)
        .union(SaFlags::ONSTACK)
        .union(SaFlags::RESTART)
        .union(SaFlags::NODEFER)
        .union(SaFlags::RESETHAND)
        .union(SaFlags::EXPOSE_TAGBITS)
        .union(SaFlags::RESTORER);
}

/// `sa_handler` meaning the default action (`SIG_DFL`).
pub const SIG_DFL: u64 = 0;
/// `sa_handler` meaning "ignore" (`SIG_IGN`).
pub const SIG_IGN: u64 = 1;

/// The kernel's `struct sigaction` as `rt_sigaction` reads and writes it
/// on arm64 (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// `sa_handler` (or `sa_sigaction` with `SA_SIGINFO`), [`SIG_DFL`] or
    /// [`SIG_IGN`].
    pub handler: u64,
    /// `sa_flags`.
    pub flags: SaFlags,
    /// `sa_restorer`: where the handler returns (calls `rt_sigreturn`).
    pub restorer: u64,
    /// `sa_mask`: signals blocked while the handler runs.
    pub mask: SigSet,
}

impl SigAction {
    /// Its size in user memory.
    pub const SIZE: usize = 32;

    /// The default action, which every signal starts with.
    pub const DEFAULT: SigAction =
        SigAction { handler: SIG_DFL, flags: SaFlags::empty(), restorer: 0, mask: SigSet(0) };

    /// Reads one from `rt_sigaction`'s argument, as Linux keeps it: unknown
    /// flags cleared, `SIGKILL` and `SIGSTOP` out of the mask.
    pub fn from_bytes(bytes: [u8; Self::SIZE]) -> SigAction {
        let word = |i: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        SigAction {
            handler: word(0),
            flags: SaFlags::from_bits_truncate(word(1)) & SaFlags::UAPI,
            restorer: word(2),
            mask: SigSet(word(3)).blockable(),
        }
    }

    /// Its bytes, for `rt_sigaction`'s old action.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut out = [0; Self::SIZE];
        for (i, w) in [self.handler, self.flags.bits(), self.restorer, self.mask.0].into_iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Whether `signo` with this action is thrown away when sent (Linux's
    /// `sig_handler_ignored`): `SIG_IGN`, or `SIG_DFL` of a signal whose
    /// default is to be ignored or to continue (`SIGCONT` continues as it is
    /// sent, and has nothing left to do after).
    pub fn ignores(&self, signo: SigNo) -> bool {
        self.handler == SIG_IGN
            || (self.handler == SIG_DFL
                && matches!(signo.default_action(), DefaultAction::Ignore | DefaultAction::Continue))
    }

    /// Whether a handler runs.
    pub fn is_handler(&self) -> bool {
        self.handler != SIG_DFL && self.handler != SIG_IGN
    }
}

/// `si_code` values for signals sent by a process (`kill`).
pub const SI_USER: i32 = 0;
/// `si_code` of a signal the kernel raised.
pub const SI_KERNEL: i32 = 0x80;
/// `si_code` of `sigqueue` / `rt_sigqueueinfo`.
pub const SI_QUEUE: i32 = -1;
/// `si_code` of `tkill` and `tgkill`.
pub const SI_TKILL: i32 = -6;
/// `si_code` of SIGILL: illegal opcode.
pub const ILL_ILLOPC: i32 = 1;
/// `si_code` of SIGTRAP: a breakpoint.
pub const TRAP_BRKPT: i32 = 1;
/// `si_code` of SIGSEGV: no mapping at the address.
pub const SEGV_MAPERR: i32 = 1;
/// `si_code` of SIGSEGV: a mapping that forbids the access.
pub const SEGV_ACCERR: i32 = 2;
/// `si_code` of SIGBUS: misaligned address.
pub const BUS_ADRALN: i32 = 1;
/// `si_code` of SIGBUS: no backing for the address (past the end of a file).
pub const BUS_ADRERR: i32 = 2;
/// `si_code` of SIGCHLD: the child exited.
pub const CLD_EXITED: i32 = 1;
/// `si_code` of SIGCHLD: the child was killed.
pub const CLD_KILLED: i32 = 2;
/// `si_code` of SIGCHLD: the child stopped (job control).
pub const CLD_STOPPED: i32 = 5;
/// `si_code` of SIGCHLD: the stopped child continued.
pub const CLD_CONTINUED: i32 = 6;

/// `siginfo_t` (128 bytes): the signal, an error number, a code and the
/// union of per-kind fields, which starts at byte 16 on 64-bit targets.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    /// `si_signo`.
    pub signo: i32,
    /// `si_errno`.
    pub errno: i32,
    /// `si_code`.
    pub code: i32,
    /// Padding before the union (8-byte aligned).
    pub pad: i32,
    /// The union `_sifields`, as 64-bit words.
    pub fields: [u64; 14],
}

impl SigInfo {
    /// Its size in user memory.
    pub const SIZE: usize = 128;

    /// A fault: `si_addr` is the faulting address.
    pub const fn fault(signal: Signal, code: i32, addr: u64) -> SigInfo {
        let mut fields = [0; 14];
        fields[0] = addr;
        SigInfo { signo: signal as i32, errno: 0, code, pad: 0, fields }
    }

    /// A signal a process sent: `si_pid` and `si_uid`.
    pub const fn sent(signal: Signal, code: i32, pid: u32, uid: u32) -> SigInfo {
        let mut fields = [0; 14];
        fields[0] = pid as u64 | (uid as u64) << 32;
        SigInfo { signo: signal as i32, errno: 0, code, pad: 0, fields }
    }

    /// SIGCHLD for a child that ended: `si_pid`, `si_uid`, `si_status`.
    pub const fn child(code: i32, pid: u32, uid: u32, status: i32) -> SigInfo {
        let mut info = SigInfo::sent(Signal::Chld, code, pid, uid);
        info.fields[1] = status as u32 as u64;
        info
    }

    /// A signal of any number sent by process `pid` (`kill`, `tgkill`)
    /// with `code`.
    pub const fn from_process(signo: SigNo, code: i32, pid: u32) -> SigInfo {
        let mut fields = [0; 14];
        fields[0] = pid as u64;
        SigInfo { signo: signo.0 as i32, errno: 0, code, pad: 0, fields }
    }

    /// A POSIX timer's signal (`SI_TIMER`): the timer's id, the
    /// expirations it missed, and its `sigev_value`.
    pub const fn timer(signo: SigNo, timer: i32, overrun: i32, value: u64) -> SigInfo {
        let mut fields = [0; 14];
        fields[0] = timer as u32 as u64 | (overrun as u32 as u64) << 32;
        fields[1] = value;
        SigInfo { signo: signo.0 as i32, errno: 0, code: crate::timer::SI_TIMER, pad: 0, fields }
    }

    /// Its signal number, if it names one.
    pub const fn signo(&self) -> Option<SigNo> {
        if self.signo < 0 {
            None
        } else {
            SigNo::new(self.signo as u64)
        }
    }

    /// Reads one from user memory.
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> SigInfo {
        let word = |i: usize| {
            let mut w = [0; 4];
            w.copy_from_slice(&bytes[i * 4..i * 4 + 4]);
            i32::from_le_bytes(w)
        };
        let mut fields = [0; 14];
        for (i, field) in fields.iter_mut().enumerate() {
            let mut w = [0; 8];
            w.copy_from_slice(&bytes[16 + i * 8..24 + i * 8]);
            *field = u64::from_le_bytes(w);
        }
        SigInfo { signo: word(0), errno: word(1), code: word(2), pad: word(3), fields }
    }

    /// Its bytes in user memory.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut out = [0; Self::SIZE];
        for (i, w) in [self.signo, self.errno, self.code, self.pad].into_iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        for (i, field) in self.fields.iter().enumerate() {
            out[16 + i * 8..24 + i * 8].copy_from_slice(&field.to_le_bytes());
        }
        out
    }
}

/// What a system call that a signal interrupted returns inside the kernel
/// (Linux's `ERESTART*` numbers, 512 to 516): never seen by user space,
/// where the return path turns it into a restart of the call or `EINTR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// `ERESTARTSYS`: restart when no handler runs or the handler has
    /// `SA_RESTART`, else `EINTR`.
    Sys,
    /// `ERESTARTNOINTR`: always restart.
    NoIntr,
    /// `ERESTARTNOHAND`: restart when no handler runs, else `EINTR`.
    NoHand,
}

impl Restart {
    /// The errno value a system call returns for it.
    pub const fn errno(self) -> Errno {
        match self {
            Restart::Sys => Errno::ERESTARTSYS,
            Restart::NoIntr => Errno::ERESTARTNOINTR,
            Restart::NoHand => Errno::ERESTARTNOHAND,
        }
    }

    /// The restart a system call's raw result asks for, if any.
    pub const fn from_result(x0: u64) -> Option<Restart> {
        match x0 as i64 {
            -512 => Some(Restart::Sys),
            -513 => Some(Restart::NoIntr),
            -514 => Some(Restart::NoHand),
            _ => None,
        }
    }

    /// Whether the call restarts: with no handler, always; with one, only
    /// [`Restart::NoIntr`] and [`Restart::Sys`] under `SA_RESTART`.
    pub const fn restarts(self, handler: Option<SaFlags>) -> bool {
        match (self, handler) {
            (_, None) | (Restart::NoIntr, Some(_)) => true,
            (Restart::Sys, Some(flags)) => flags.contains(SaFlags::RESTART),
            (Restart::NoHand, Some(_)) => false,
        }
    }
}

/// `ss_flags`: the thread runs on its alternate stack.
pub const SS_ONSTACK: i32 = 1;
/// `ss_flags`: no alternate stack.
pub const SS_DISABLE: i32 = 2;
/// `ss_flags`: the stack is disabled while a handler runs on it.
pub const SS_AUTODISARM: i32 = 1 << 31;
/// The smallest alternate stack arm64 Linux accepts (`MINSIGSTKSZ`).
pub const MINSIGSTKSZ: u64 = 5120;
/// The stack a signal delivery takes at most, which `AT_MINSIGSTKSZ` tells
/// a program: the `rt_sigframe`, the frame record (16-byte aligned) and 16
/// bytes of alignment padding, as arm64 Linux computes `signal_minsigstksz`
/// (4720 on a CPU without SVE).
pub const SIGNAL_FRAME_MAX: u64 =
    frame::FRAME_SIZE + core::mem::size_of::<FrameRecord>().next_multiple_of(16) as u64 + 16;

impl StackT {
    /// Its size in user memory.
    pub const SIZE: usize = 24;

    /// Reads one from user memory.
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> StackT {
        let mut sp = [0; 8];
        let mut flags = [0; 4];
        let mut size = [0; 8];
        sp.copy_from_slice(&bytes[..8]);
        flags.copy_from_slice(&bytes[8..12]);
        size.copy_from_slice(&bytes[16..]);
        StackT { sp: u64::from_le_bytes(sp), flags: i32::from_le_bytes(flags), size: u64::from_le_bytes(size) }
    }

    /// Its bytes in user memory.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut out = [0; Self::SIZE];
        out[..8].copy_from_slice(&self.sp.to_le_bytes());
        out[8..12].copy_from_slice(&self.flags.to_le_bytes());
        out[16..].copy_from_slice(&self.size.to_le_bytes());
        out
    }
}

/// A thread's alternate signal stack and Linux's rules about it
/// (`do_sigaltstack`, `sas_ss_flags`, `on_sig_stack`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AltStack {
    /// `ss_sp` (0 when disabled).
    pub sp: u64,
    /// `ss_size` (0 when disabled).
    pub size: u64,
    /// The flags last set (`SS_AUTODISARM` kept).
    pub flags: i32,
}

impl AltStack {
    /// Whether the user stack pointer `sp` is on the stack.
    pub const fn on_stack(&self, sp: u64) -> bool {
        if self.flags & SS_AUTODISARM != 0 {
            return false;
        }
        sp > self.sp && sp - self.sp <= self.size
    }

    /// `sas_ss_flags`: `SS_DISABLE` without a stack, `SS_ONSTACK` when
    /// `sp` is on it, else 0.
    pub const fn flags_at(&self, sp: u64) -> i32 {
        if self.size == 0 {
            SS_DISABLE
        } else if self.on_stack(sp) {
            SS_ONSTACK
        } else {
            0
        }
    }

    /// What `sigaltstack` reports (and a frame's `uc_stack` holds) when
    /// the thread's stack pointer is `sp`.
    pub const fn report(&self, sp: u64) -> StackT {
        StackT { sp: self.sp, flags: self.flags_at(sp) | (self.flags & SS_AUTODISARM), size: self.size }
    }

    /// `sigaltstack(new)` with the thread at `sp`: `EPERM` while on the
    /// stack, `EINVAL` for an unknown mode, `ENOMEM` below
    /// [`MINSIGSTKSZ`].
    pub fn set(&mut self, new: StackT, sp: u64) -> Result<(), Errno> {
        if self.on_stack(sp) {
            return Err(Errno::EPERM);
        }
        let mode = new.flags & !SS_AUTODISARM;
        if mode != SS_DISABLE && mode != SS_ONSTACK && mode != 0 {
            return Err(Errno::EINVAL);
        }
        *self = if mode == SS_DISABLE {
            AltStack { sp: 0, size: 0, flags: new.flags }
        } else if new.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        } else {
            AltStack { sp: new.sp, size: new.size, flags: new.flags }
        };
        Ok(())
    }

    /// Where a handler's frame goes down from: the top of the alternate
    /// stack when the action asks for it (`SA_ONSTACK`) and the thread is
    /// not on it already, else `sp` (Linux's `sigsp`).
    pub const fn frame_top(&self, sp: u64, flags: SaFlags) -> u64 {
        if flags.contains(SaFlags::ONSTACK) && self.flags_at(sp) == 0 {
            self.sp.wrapping_add(self.size)
        } else {
            sp
        }
    }
}

/// `stack_t`: an alternate signal stack (`sigaltstack`), 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackT {
    /// `ss_sp`.
    pub sp: u64,
    /// `ss_flags` (`SS_ONSTACK`, `SS_DISABLE`).
    pub flags: i32,
    /// `ss_size`.
    pub size: u64,
}

/// The head of each record in [`SigContext::reserved`]: `struct
/// _aarch64_ctx`. A zero head ends the list.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextHeader {
    /// What the record is (`FPSIMD_MAGIC`, ...).
    pub magic: u32,
    /// The record's size in bytes, head included.
    pub size: u32,
}

/// `struct sigcontext` of arm64: the interrupted registers and a
/// 4096-byte, 16-byte aligned area of records (`__reserved`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigContext {
    /// `fault_address`: the FAR of a fault, else 0.
    pub fault_address: u64,
    /// `regs`: x0 to x30.
    pub regs: [u64; 31],
    /// `sp`.
    pub sp: u64,
    /// `pc`.
    pub pc: u64,
    /// `pstate`.
    pub pstate: u64,
    /// `__reserved`: [`FpsimdContext`], [`EsrContext`], ..., then a zero
    /// [`ContextHeader`].
    pub reserved: ReservedArea,
}

/// The `__reserved` area of a [`SigContext`].
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservedArea(pub [u8; 4096]);

/// `struct fpsimd_context`: the FP/SIMD registers (528 bytes).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpsimdContext {
    /// `{ FPSIMD_MAGIC, 528 }`.
    pub head: ContextHeader,
    /// `fpsr`.
    pub fpsr: u32,
    /// `fpcr`.
    pub fpcr: u32,
    /// `vregs`: v0 to v31.
    pub vregs: [u128; 32],
}

impl FpsimdContext {
    /// `FPSIMD_MAGIC`.
    pub const MAGIC: u32 = 0x4650_8001;
}

/// `struct esr_context`: the ESR of the fault that raised the signal.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EsrContext {
    /// `{ ESR_MAGIC, 16 }`.
    pub head: ContextHeader,
    /// `esr`.
    pub esr: u64,
}

impl EsrContext {
    /// `ESR_MAGIC`.
    pub const MAGIC: u32 = 0x4553_5201;
}

/// `struct ucontext` of arm64.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UContext {
    /// `uc_flags`.
    pub flags: u64,
    /// `uc_link`.
    pub link: u64,
    /// `uc_stack`.
    pub stack: StackT,
    /// `uc_sigmask`: the mask to restore on `rt_sigreturn`.
    pub sigmask: SigSet,
    /// `__unused`: room for a 1024-bit `sigset_t`.
    pub unused: [u8; 120],
    /// `uc_mcontext`.
    pub mcontext: SigContext,
}

/// `struct frame_record`: the frame pointer and link register pushed
/// above the frame, so backtraces pass through the handler.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameRecord {
    /// `fp` (x29).
    pub fp: u64,
    /// `lr` (x30).
    pub lr: u64,
}

/// `struct rt_sigframe`: what `sp` points at when a handler starts.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtSigFrame {
    /// `info`: the handler's second argument points here.
    pub info: SigInfo,
    /// `uc`: the third argument points here.
    pub uc: UContext,
}

#[cfg(test)]
mod tests;
