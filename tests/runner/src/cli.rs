//! The command line: what `aspen-runner qemu …` and `aspen-runner serial …` accept, parsed
//! by hand into typed options.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: aspen-runner qemu --board qemu-virt|rpi4 --kernel PATH [--initrd PATH] [--dtb PATH]
                         [--append STR] [--memory SIZE] [--qemu ARG]...
                         [--timeout SECS] [--silence SECS] [--log PATH] [--echo]
                         [--session FILE]...
       aspen-runner serial --device PATH [--baud N]
                         [--timeout SECS] [--silence SECS] [--log PATH] [--echo]
                         [--session FILE]...

Boots the Aspen kernel under QEMU, or listens to a real board's serial console,
follows the kernel's TEST-* protocol and reports every test. With --session, types
a session into the shell on the console instead (the file whose prompt shows up
first; see tests/console/) and reports each of its checks.

  --board B        qemu-virt (QEMU -M virt -smp 4) or rpi4 (QEMU -M raspi4b, 4 cores)
  --kernel PATH    kernel image
  --initrd PATH    initial ramdisk
  --dtb PATH       device tree blob
  --append STR     kernel command line
  --memory SIZE    guest memory on qemu-virt (default 1G); raspi4b always has 2G
  --qemu ARG       one more argument for QEMU; repeat as needed
  --device PATH    serial device of the board, e.g. /dev/ttyUSB0
  --baud N         serial speed (default 115200)
  --timeout SECS   give up when the whole run takes longer (default 600)
  --silence SECS   give up when the console is quiet this long (default 120);
                   on a serial line, counted from the board's first byte
  --log PATH       write the raw console to PATH
  --echo           print every console line as it arrives
  --session FILE   a session to type; repeat to offer several (say, one per shell)

The QEMU environment variable names the QEMU binary (default qemu-system-aarch64).
Exit status: 0 when every test passed and the run completed, 1 otherwise, 2 for usage errors.";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_SILENCE: Duration = Duration::from_secs(120);
const DEFAULT_BAUD: u32 = 115_200;
const DEFAULT_VIRT_MEMORY: &str = "1G";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Qemu(QemuOptions),
    Serial(SerialOptions),
}

/// The emulated board, with what can be configured on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Machine {
    Virt {
        memory: String,
    },
    /// QEMU's raspi4b has a fixed 2 GiB of memory.
    Raspi4b,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuOptions {
    pub machine: Machine,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub dtb: Option<PathBuf>,
    pub append: Option<String>,
    pub extra_args: Vec<String>,
    pub run: RunOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialOptions {
    pub device: String,
    pub baud: u32,
    pub run: RunOptions,
}

/// What both modes share: limits and where the console goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    pub timeout: Duration,
    pub silence: Duration,
    pub log: Option<PathBuf>,
    pub echo: bool,
    /// Sessions to type; empty for a test run.
    pub sessions: Vec<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions { timeout: DEFAULT_TIMEOUT, silence: DEFAULT_SILENCE, log: None, echo: false, sessions: Vec::new() }
    }
}

/// A command line that cannot be run; the message says what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(String);

impl UsageError {
    pub fn new(message: String) -> UsageError {
        UsageError(message)
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<String>) -> Result<Command, UsageError> {
    let mut args = Arguments::new(args);
    match args.next_word().as_deref() {
        None => Err(UsageError("missing mode: qemu or serial".to_string())),
        Some("-h" | "--help") => Ok(Command::Help),
        Some("qemu") => parse_qemu(args),
        Some("serial") => parse_serial(args),
        Some(other) => Err(UsageError(format!("unknown mode `{other}`: expected qemu or serial"))),
    }
}

fn parse_qemu(mut args: Arguments) -> Result<Command, UsageError> {
    let mut board = None;
    let mut memory = None;
    let mut kernel = None;
    let mut initrd = None;
    let mut dtb = None;
    let mut append = None;
    let mut extra_args = Vec::new();
    let mut run = RunOptions::default();
    while let Some(option) = args.next_option()? {
        match option.name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--board" => board = Some(args.value(&option)?),
            "--memory" => memory = Some(args.value(&option)?),
            "--kernel" => kernel = Some(PathBuf::from(args.value(&option)?)),
            "--initrd" => initrd = Some(PathBuf::from(args.value(&option)?)),
            "--dtb" => dtb = Some(PathBuf::from(args.value(&option)?)),
            "--append" => append = Some(args.value(&option)?),
            "--qemu" => extra_args.push(args.value(&option)?),
            _ => run.take_option(&option, &mut args)?,
        }
    }
    let machine = match (board.as_deref(), memory) {
        (None, _) => return Err(missing("--board")),
        (Some("qemu-virt"), memory) => {
            Machine::Virt { memory: memory.unwrap_or_else(|| DEFAULT_VIRT_MEMORY.to_string()) }
        }
        (Some("rpi4"), None) => Machine::Raspi4b,
        (Some("rpi4"), Some(_)) => {
            return Err(UsageError("--memory does not apply to rpi4: QEMU's raspi4b has a fixed 2G".to_string()))
        }
        (Some(other), _) => return Err(UsageError(format!("unknown board `{other}`: expected qemu-virt or rpi4"))),
    };
    Ok(Command::Qemu(QemuOptions {
        machine,
        kernel: kernel.ok_or_else(|| missing("--kernel"))?,
        initrd,
        dtb,
        append,
        extra_args,
        run,
    }))
}

fn parse_serial(mut args: Arguments) -> Result<Command, UsageError> {
    let mut device = None;
    let mut baud = DEFAULT_BAUD;
    let mut run = RunOptions::default();
    while let Some(option) = args.next_option()? {
        match option.name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--device" => device = Some(args.value(&option)?),
            "--baud" => baud = positive_number(&option, &args.value(&option)?)?,
            _ => run.take_option(&option, &mut args)?,
        }
    }
    Ok(Command::Serial(SerialOptions { device: device.ok_or_else(|| missing("--device"))?, baud, run }))
}

impl RunOptions {
    /// Takes one of the options both modes share; any other option is unknown.
    fn take_option(&mut self, option: &NamedOption, args: &mut Arguments) -> Result<(), UsageError> {
        match option.name.as_str() {
            "--timeout" => self.timeout = seconds(option, &args.value(option)?)?,
            "--silence" => self.silence = seconds(option, &args.value(option)?)?,
            "--log" => self.log = Some(PathBuf::from(args.value(option)?)),
            "--session" => self.sessions.push(PathBuf::from(args.value(option)?)),
            "--echo" => {
                option.refuse_inline_value()?;
                self.echo = true;
            }
            name => return Err(UsageError(format!("unknown option `{name}`"))),
        }
        Ok(())
    }
}

fn missing(option: &str) -> UsageError {
    UsageError(format!("{option} is required"))
}

fn seconds(option: &NamedOption, text: &str) -> Result<Duration, UsageError> {
    positive_number(option, text).map(Duration::from_secs)
}

fn positive_number<N: std::str::FromStr + PartialOrd + Default>(
    option: &NamedOption,
    text: &str,
) -> Result<N, UsageError> {
    match text.parse::<N>() {
        Ok(number) if number > N::default() => Ok(number),
        _ => Err(UsageError(format!("{} wants a positive whole number, not `{text}`", option.name))),
    }
}

/// An option as written: `--name`, and the value when written as `--name=value`.
#[derive(Debug)]
struct NamedOption {
    name: String,
    inline_value: Option<String>,
}

impl NamedOption {
    fn refuse_inline_value(&self) -> Result<(), UsageError> {
        match self.inline_value {
            Some(_) => Err(UsageError(format!("{} takes no value", self.name))),
            None => Ok(()),
        }
    }
}

/// The remaining arguments, read as options and their values.
struct Arguments {
    words: std::vec::IntoIter<String>,
}

impl Arguments {
    fn new(words: Vec<String>) -> Arguments {
        Arguments { words: words.into_iter() }
    }

    fn next_word(&mut self) -> Option<String> {
        self.words.next()
    }

    fn next_option(&mut self) -> Result<Option<NamedOption>, UsageError> {
        let Some(word) = self.words.next() else {
            return Ok(None);
        };
        if !word.starts_with('-') {
            return Err(UsageError(format!("unexpected argument `{word}`")));
        }
        let option = match word.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                NamedOption { name: name.to_string(), inline_value: Some(value.to_string()) }
            }
            _ => NamedOption { name: word, inline_value: None },
        };
        Ok(Some(option))
    }

    /// The option's value: inline, or the next word whatever it looks like, so that
    /// `--qemu -s` passes `-s` on.
    fn value(&mut self, option: &NamedOption) -> Result<String, UsageError> {
        match &option.inline_value {
            Some(value) => Ok(value.clone()),
            None => self.words.next().ok_or_else(|| UsageError(format!("{} needs a value", option.name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, UsageError> {
        parse(line.split_whitespace().map(str::to_string).collect())
    }

    fn error_of(line: &str) -> String {
        parse_line(line).expect_err(line).to_string()
    }

    #[test]
    fn qemu_with_everything() {
        let command = parse_line(
            "qemu --board qemu-virt --kernel k.elf --initrd init.cpio --dtb virt.dtb \
             --append console=ttyAMA0 --memory 2G --qemu -smp --qemu=4 --timeout 30 \
             --silence=5 --log out.log --echo --session a.session --session=b.session",
        );
        assert_eq!(
            command,
            Ok(Command::Qemu(QemuOptions {
                machine: Machine::Virt { memory: "2G".to_string() },
                kernel: PathBuf::from("k.elf"),
                initrd: Some(PathBuf::from("init.cpio")),
                dtb: Some(PathBuf::from("virt.dtb")),
                append: Some("console=ttyAMA0".to_string()),
                extra_args: vec!["-smp".to_string(), "4".to_string()],
                run: RunOptions {
                    timeout: Duration::from_secs(30),
                    silence: Duration::from_secs(5),
                    log: Some(PathBuf::from("out.log")),
                    echo: true,
                    sessions: vec![PathBuf::from("a.session"), PathBuf::from("b.session")],
                },
            }))
        );
    }

    #[test]
    fn qemu_defaults() {
        let Ok(Command::Qemu(options)) = parse_line("qemu --board rpi4 --kernel k") else {
            panic!("rpi4 should parse");
        };
        assert_eq!(options.machine, Machine::Raspi4b);
        assert_eq!((options.initrd, options.dtb, options.append), (None, None, None));
        assert_eq!(options.run, RunOptions::default());
        assert_eq!(options.run.timeout, Duration::from_secs(600));
        assert_eq!(options.run.silence, Duration::from_secs(120));

        let Ok(Command::Qemu(virt)) = parse_line("qemu --kernel k --board qemu-virt") else {
            panic!("virt should parse");
        };
        assert_eq!(virt.machine, Machine::Virt { memory: "1G".to_string() });
    }

    #[test]
    fn later_value_wins() {
        let Ok(Command::Qemu(options)) = parse_line("qemu --board rpi4 --kernel a --kernel b") else {
            panic!("should parse");
        };
        assert_eq!(options.kernel, PathBuf::from("b"));
    }

    #[test]
    fn append_keeps_spaces() {
        let args = ["qemu", "--board", "qemu-virt", "--kernel", "k", "--append", "a=1 b=2"];
        let Ok(Command::Qemu(options)) = parse(args.map(str::to_string).to_vec()) else {
            panic!("should parse");
        };
        assert_eq!(options.append.as_deref(), Some("a=1 b=2"));
    }

    #[test]
    fn serial_defaults_and_options() {
        assert_eq!(
            parse_line("serial --device /dev/ttyUSB0"),
            Ok(Command::Serial(SerialOptions {
                device: "/dev/ttyUSB0".to_string(),
                baud: 115_200,
                run: RunOptions::default(),
            }))
        );
        let Ok(Command::Serial(options)) = parse_line("serial --baud 921600 --device=/dev/ttyACM0 --silence 9 --echo")
        else {
            panic!("should parse");
        };
        assert_eq!((options.baud, options.run.silence), (921_600, Duration::from_secs(9)));
        assert!(options.run.echo);
        assert!(options.run.sessions.is_empty());
        let Ok(Command::Serial(typed)) = parse_line("serial --device d --session tests/console/busybox.session") else {
            panic!("should parse");
        };
        assert_eq!(typed.run.sessions, [PathBuf::from("tests/console/busybox.session")]);
    }

    #[test]
    fn help_anywhere() {
        assert_eq!(parse_line("--help"), Ok(Command::Help));
        assert_eq!(parse_line("-h"), Ok(Command::Help));
        assert_eq!(parse_line("qemu --board rpi4 -h"), Ok(Command::Help));
        assert_eq!(parse_line("serial --help"), Ok(Command::Help));
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert_eq!(error_of(""), "missing mode: qemu or serial");
        assert_eq!(error_of("boot"), "unknown mode `boot`: expected qemu or serial");
        assert_eq!(error_of("qemu --kernel k"), "--board is required");
        assert_eq!(error_of("qemu --board qemu-virt"), "--kernel is required");
        assert_eq!(error_of("qemu --board pc --kernel k"), "unknown board `pc`: expected qemu-virt or rpi4");
        assert_eq!(
            error_of("qemu --board rpi4 --kernel k --memory 1G"),
            "--memory does not apply to rpi4: QEMU's raspi4b has a fixed 2G"
        );
        assert_eq!(error_of("qemu --board rpi4 --kernel"), "--kernel needs a value");
        assert_eq!(error_of("qemu --board rpi4 --kernel k --frob"), "unknown option `--frob`");
        assert_eq!(error_of("qemu --board rpi4 --baud 9600 --kernel k"), "unknown option `--baud`");
        assert_eq!(error_of("qemu --board rpi4 k.elf"), "unexpected argument `k.elf`");
        assert_eq!(error_of("serial"), "--device is required");
        assert_eq!(error_of("serial --device d --echo=yes"), "--echo takes no value");
        assert_eq!(error_of("serial --device d --session"), "--session needs a value");
    }

    #[test]
    fn numbers_must_be_positive_whole_numbers() {
        for bad in ["0", "-3", "1.5", "ten", ""] {
            assert_eq!(
                parse(["serial", "--device", "d", "--timeout", bad].map(str::to_string).to_vec()),
                Err(UsageError(format!("--timeout wants a positive whole number, not `{bad}`"))),
            );
        }
        assert_eq!(error_of("serial --device d --baud 0"), "--baud wants a positive whole number, not `0`");
    }
}
