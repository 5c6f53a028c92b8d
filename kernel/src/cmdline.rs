//! The kernel command line (`/chosen/bootargs`): `key=value` and flag
//! words separated by spaces. Unknown words are ignored, so a command line
//! written for Linux boots Aspen too.

use aspen_mm::aspace::WxPolicy;

/// What Aspen understands of its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandLine<'a> {
    /// The words after ` -- `: the first program's arguments.
    init_args: &'a str,
    /// `init=PATH`: the first program (default `/init`).
    pub init: &'a str,
    /// `semihosting`: the emulator may be ended through semihosting.
    pub semihosting: bool,
    /// `loglevel=N` (Linux numbering, 0-7) or `quiet` (= 4).
    pub log_level: log::LevelFilter,
    /// `aspen.ktest`: run the in-kernel tests instead of the first program.
    pub run_tests: bool,
    /// `aspen.strace`: log every system call.
    pub trace_syscalls: bool,
    /// `aspen.kbench`: run the in-kernel benchmarks, then power off.
    pub run_benchmarks: bool,
    /// `aspen.wx=strict`: mmap and mprotect refuse `PROT_WRITE|PROT_EXEC`
    /// (EACCES); otherwise such pages flip ([`WxPolicy`]).
    pub wx_policy: WxPolicy,
    /// `maxcpus=N`: at most N cores are brought up, the boot core
    /// included (0 counts as 1, as Linux's `maxcpus=0` keeps only the boot
    /// CPU); `None`: every core there is.
    pub max_cpus: Option<usize>,
    /// `failslab=N`: the Nth kernel heap allocation after the first
    /// program was started fails (`crate::failslab`; Linux's `failslab=` takes
    /// interval, probability, space and times instead: such a value is
    /// ignored).
    pub fail_nth_allocation: Option<u64>,
    /// `aspen.asid_bits=8`: use 8-bit ASIDs even where the CPUs have 16
    /// (ASID rollovers 256 times as often, for tests); any other value
    /// leaves the CPUs' width.
    pub asid_bits_8: bool,
}

impl<'a> CommandLine<'a> {
    pub fn parse(text: &'a str) -> Self {
        let (kernel_words, init_args) = match text.split_once(" -- ") {
            Some((kernel, init)) => (kernel, init),
            None => (text.strip_suffix(" --").unwrap_or(text), ""),
        };
        let mut line = CommandLine {
            init_args,
            init: "/init",
            semihosting: false,
            log_level: log::LevelFilter::Info,
            run_tests: false,
            trace_syscalls: false,
            run_benchmarks: false,
            wx_policy: WxPolicy::Flip,
            max_cpus: None,
            fail_nth_allocation: None,
            asid_bits_8: false,
        };
        for word in kernel_words.split_ascii_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            match key {
                "init" if !value.is_empty() => line.init = value,
                "semihosting" => line.semihosting = true,
                "aspen.ktest" => line.run_tests = true,
                "aspen.strace" => line.trace_syscalls = true,
                "aspen.kbench" => line.run_benchmarks = true,
                "aspen.wx" if value == "strict" => line.wx_policy = WxPolicy::Strict,
                "maxcpus" => {
                    if let Ok(n) = value.parse::<usize>() {
                        line.max_cpus = Some(n.max(1));
                    }
                }
                "aspen.asid_bits" => line.asid_bits_8 = value == "8",
                "failslab" => line.fail_nth_allocation = value.parse::<u64>().ok().filter(|&n| n > 0),
                "quiet" => line.log_level = log::LevelFilter::Warn,
                "loglevel" => {
                    if let Ok(n) = value.parse::<u8>() {
                        line.log_level = linux_log_level(n);
                    }
                }
                _ => {}
            }
        }
        line
    }
}

impl<'a> CommandLine<'a> {
    /// The first program's arguments (after its path).
    pub fn init_args(&self) -> impl Iterator<Item = &'a str> {
        self.init_args.split_ascii_whitespace()
    }
}

/// Maps Linux console log levels (0 emergency .. 7 debug) onto `log`'s.
fn linux_log_level(n: u8) -> log::LevelFilter {
    match n {
        0..=3 => log::LevelFilter::Error,
        4 => log::LevelFilter::Warn,
        5 | 6 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    }
}
