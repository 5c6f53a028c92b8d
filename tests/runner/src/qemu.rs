//! The QEMU mode: builds QEMU's command line for a board, runs the kernel with the console
//! on QEMU's stdout (and, to type a session, its keyboard on QEMU's stdin), and makes sure
//! QEMU never outlives the runner's interest in it.

use std::env;
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::{Machine, QemuOptions};
use crate::console::{Console, Received};
use crate::error::StartError;
use crate::report::Report;
use crate::session::{Session, SilenceFrom, Stop};
use crate::typing::{self, Limits};

const DEFAULT_QEMU: &str = "qemu-system-aarch64";

/// After TEST-FINISHED the kernel powers off through semihosting; this is how long QEMU
/// gets to do so before it is killed. raspi4b may have no semihosting (no DTB passed the
/// command line), so being killed here still counts as a completed run.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// When QEMU closes its console early, how long to wait for its exit status.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How long to wait for QEMU's stderr to close once QEMU is gone.
const STDERR_GRACE: Duration = Duration::from_secs(1);

const EXIT_POLL: Duration = Duration::from_millis(20);

/// QEMU's arguments for `options`, without the program name.
pub fn qemu_args(options: &QemuOptions) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    match &options.machine {
        // Four cores, as the Pi 4 has (a later `--qemu -smp --qemu N` overrides it).
        Machine::Virt { memory } => {
            args.extend(["-M", "virt", "-cpu", "cortex-a72", "-smp", "4", "-m", memory].map(String::from))
        }
        Machine::Raspi4b => args.extend(["-M", "raspi4b"].map(String::from)),
    }
    args.extend(["-nographic", "-no-reboot", "-semihosting-config", "enable=on,target=native"].map(String::from));
    args.extend(["-kernel".to_string(), path_arg(&options.kernel)]);
    if let Some(initrd) = &options.initrd {
        args.extend(["-initrd".to_string(), path_arg(initrd)]);
    }
    if let Some(dtb) = &options.dtb {
        args.extend(["-dtb".to_string(), path_arg(dtb)]);
    }
    // virt always gets a command line, empty or not, so the kernel finds /chosen/bootargs;
    // raspi4b only passes one on when asked.
    let append = match (&options.machine, &options.append) {
        (Machine::Virt { .. }, append) => Some(append.clone().unwrap_or_default()),
        (Machine::Raspi4b, append) => append.clone(),
    };
    if let Some(append) = append {
        args.extend(["-append".to_string(), append]);
    }
    args.extend(options.extra_args.iter().cloned());
    args
}

/// Paths on the command line came from UTF-8 arguments, so this loses nothing.
fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Boots the kernel under QEMU and follows its console to the end of the run, or types
/// the sessions given into it.
pub fn run(options: &QemuOptions) -> Result<Report, StartError> {
    let program = env::var_os("QEMU").unwrap_or_else(|| OsString::from(DEFAULT_QEMU));
    if !options.run.sessions.is_empty() {
        return type_session(&program, options);
    }
    let mut session = Session::start(&options.run)?;
    let (mut qemu, stdout, stderr, _) = QemuProcess::spawn(&program, &qemu_args(options), Keyboard::None)?;
    let console = Console::spawn(stdout);
    // Read all along, so QEMU never blocks on a full stderr pipe.
    let stderr = Console::spawn(stderr);

    let stop = session.stream(&console, SilenceFrom::Start);
    let mut exit_after_finish = None;
    if let Stop::Finished = stop {
        let deadline = Instant::now() + EXIT_GRACE;
        session.drain_until(&console, deadline);
        exit_after_finish = qemu.wait_until(deadline);
    }
    let end = session.end_reason(stop, |read_error| describe_close(&mut qemu, read_error));
    qemu.stop();
    let stderr = collect_stderr(&stderr);

    let mut report = session.conclude(end, Some(stderr));
    if let Some(status) = exit_after_finish.filter(|status| !status.success()) {
        report.summary.problems.push(format!("{} after the run finished", describe_exit(status)));
    }
    Ok(report)
}

/// Boots the kernel with QEMU's stdin as the console's keyboard and types the session
/// whose prompt shows up first.
fn type_session(program: &OsString, options: &QemuOptions) -> Result<Report, StartError> {
    let scripts = typing::load(&options.run.sessions)?;
    let mut session = Session::start_recording(&options.run)?;
    let (mut qemu, stdout, stderr, keyboard) = QemuProcess::spawn(program, &qemu_args(options), Keyboard::Pipe)?;
    let Some(mut keyboard) = keyboard else {
        return Err(StartError::StartQemu {
            program: program.to_string_lossy().into_owned(),
            source: io::Error::other("QEMU's input pipe is missing"),
        });
    };
    let console = Console::spawn(stdout);
    let stderr = Console::spawn(stderr);
    let limits =
        Limits { timeout: options.run.timeout, silence: options.run.silence, silence_from: SilenceFrom::Start };
    let summary = typing::run(&console, &mut keyboard, &mut session, &scripts, &limits, &mut |read_error| {
        describe_close(&mut qemu, read_error)
    });
    drop(keyboard);
    qemu.stop();
    let stderr = collect_stderr(&stderr);
    Ok(session.conclude_with(summary, Some(stderr)))
}

/// Why QEMU's console stopped before the run was over.
fn describe_close(qemu: &mut QemuProcess, read_error: Option<io::Error>) -> String {
    match read_error {
        Some(error) => format!("reading QEMU's console failed ({error})"),
        None => match qemu.wait_until(Instant::now() + CLOSE_GRACE) {
            Some(status) => describe_exit(status),
            None => "QEMU closed its console".to_string(),
        },
    }
}

fn describe_exit(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("QEMU exited with status {code}"),
        None => format!("QEMU ended abnormally ({status})"),
    }
}

/// What QEMU wrote on stderr, once it is gone. The wait for the pipe to close is bounded
/// because anything QEMU started may still hold it open.
fn collect_stderr(stderr: &Console) -> String {
    let deadline = Instant::now() + STDERR_GRACE;
    let mut bytes = Vec::new();
    while let Received::Bytes(chunk) = stderr.receive_until(deadline) {
        bytes.extend(chunk);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What QEMU's stdin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyboard {
    /// Nothing: a test run types nothing.
    None,
    /// A pipe the runner types into.
    Pipe,
}

/// The running QEMU. Dropping it kills QEMU, so no exit path of the runner leaves one behind.
struct QemuProcess {
    child: Child,
}

impl QemuProcess {
    /// Starts QEMU with its console (stdout) and stderr on pipes, returned alongside, and
    /// its stdin on a pipe too when asked for a keyboard.
    fn spawn(
        program: &OsString,
        args: &[String],
        keyboard: Keyboard,
    ) -> Result<(QemuProcess, ChildStdout, ChildStderr, Option<ChildStdin>), StartError> {
        let start_error =
            |source: io::Error| StartError::StartQemu { program: program.to_string_lossy().into_owned(), source };
        let stdin = match keyboard {
            Keyboard::None => Stdio::null(),
            Keyboard::Pipe => Stdio::piped(),
        };
        let child = Command::new(program)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(start_error)?;
        let mut qemu = QemuProcess { child };
        let pipes = qemu.child.stdout.take().zip(qemu.child.stderr.take());
        let stdin = qemu.child.stdin.take();
        match pipes {
            Some((stdout, stderr)) => Ok((qemu, stdout, stderr, stdin)),
            None => Err(start_error(io::Error::other("QEMU's output pipes are missing"))),
        }
    }

    /// QEMU's exit status if it exits by `deadline`.
    fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(EXIT_POLL);
        }
    }

    /// Kills QEMU unless it has already exited, and reaps it.
    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::RunOptions;
    use std::path::PathBuf;

    fn options(machine: Machine) -> QemuOptions {
        QemuOptions {
            machine,
            kernel: PathBuf::from("build/aspen.elf"),
            initrd: None,
            dtb: None,
            append: None,
            extra_args: Vec::new(),
            run: RunOptions::default(),
        }
    }

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn virt_minimal_passes_an_empty_command_line() {
        let mut expected = words(
            "-M virt -cpu cortex-a72 -smp 4 -m 1G -nographic -no-reboot \
             -semihosting-config enable=on,target=native -kernel build/aspen.elf -append",
        );
        expected.push(String::new());
        let virt = options(Machine::Virt { memory: "1G".to_string() });
        assert_eq!(qemu_args(&virt), expected);
    }

    #[test]
    fn virt_with_everything() {
        let mut virt = options(Machine::Virt { memory: "4G".to_string() });
        virt.initrd = Some(PathBuf::from("build/initrd.cpio"));
        virt.dtb = Some(PathBuf::from("virt.dtb"));
        virt.append = Some("console=ttyAMA0 test=all".to_string());
        virt.extra_args = words("-smp 4 -s");
        let mut expected = words(
            "-M virt -cpu cortex-a72 -smp 4 -m 4G -nographic -no-reboot \
             -semihosting-config enable=on,target=native -kernel build/aspen.elf \
             -initrd build/initrd.cpio -dtb virt.dtb -append",
        );
        expected.push("console=ttyAMA0 test=all".to_string());
        expected.extend(words("-smp 4 -s"));
        assert_eq!(qemu_args(&virt), expected);
    }

    #[test]
    fn raspi4b_has_no_memory_cpu_or_default_command_line() {
        assert_eq!(
            qemu_args(&options(Machine::Raspi4b)),
            words(
                "-M raspi4b -nographic -no-reboot -semihosting-config enable=on,target=native \
                 -kernel build/aspen.elf"
            )
        );
    }

    #[test]
    fn raspi4b_with_dtb_and_command_line() {
        let mut pi = options(Machine::Raspi4b);
        pi.dtb = Some(PathBuf::from("bcm2711-rpi-4-b.dtb"));
        pi.append = Some("quiet".to_string());
        pi.extra_args = words("-d guest_errors");
        assert_eq!(
            qemu_args(&pi),
            words(
                "-M raspi4b -nographic -no-reboot -semihosting-config enable=on,target=native \
                 -kernel build/aspen.elf -dtb bcm2711-rpi-4-b.dtb -append quiet -d guest_errors"
            )
        );
    }

    #[test]
    fn exit_descriptions() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe_exit(ExitStatus::from_raw(3 << 8)), "QEMU exited with status 3");
        assert!(describe_exit(ExitStatus::from_raw(9)).starts_with("QEMU ended abnormally ("));
    }
}
