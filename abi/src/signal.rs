//! Signals as aarch64 Linux numbers and lays them out: [`Signal`], the
//! `rt_sigaction` structure ([`SigAction`]), `siginfo_t` ([`SigInfo`]), and
//! what a handler finds on its stack, the `rt_sigframe` ([`RtSigFrame`]:
//! `siginfo`, then a [`UContext`] holding the [`SigContext`] whose
//! `__reserved` area carries [`FpsimdContext`] and [`EsrContext`] records
//! ended by a zero [`ContextHeader`]).

use core::fmt;

use bitflags::bitflags;

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

/// The kernel's `sigset_t`: bit `n - 1` for signal `n` (64 signals, 8
/// bytes, the size `rt_sigaction` and `rt_sigprocmask` take).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SigSet(pub u64);

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

/// `si_code` values for signals sent by a process (`kill`, `tgkill`).
pub const SI_USER: i32 = 0;
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
