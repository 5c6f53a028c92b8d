//! The serial mode: follows a real board's console on a serial device, from whenever the
//! board is reset until it prints TEST-FINISHED, or types a session into its shell.

use std::time::Duration;

use serialport::{DataBits, FlowControl, Parity, StopBits};

use crate::cli::SerialOptions;
use crate::console::Console;
use crate::error::StartError;
use crate::report::{self, Report};
use crate::session::{Session, SilenceFrom};
use crate::typing::{self, Limits};

/// How long one read waits on the device before trying again; the runner's own limits are
/// timed separately, so this only bounds how long the reader thread sits in one call.
const READ_POLL: Duration = Duration::from_millis(500);

pub fn run(options: &SerialOptions) -> Result<Report, StartError> {
    let typed = !options.run.sessions.is_empty();
    let scripts = typing::load(&options.run.sessions)?;
    let mut session = if typed { Session::start_recording(&options.run)? } else { Session::start(&options.run)? };
    // serialport opens the device raw (cfmakeraw) and exclusively.
    let port = serialport::new(&options.device, options.baud)
        .data_bits(DataBits::Eight)
        .parity(Parity::None)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        .timeout(READ_POLL)
        .open()
        .map_err(|source| StartError::OpenSerial { device: options.device.clone(), source })?;
    report::say(&format!(
        "aspen-runner: waiting for the board on {} at {} baud; reset or power on the board now",
        options.device, options.baud
    ));
    let describe_close = |read_error: Option<std::io::Error>| match read_error {
        Some(error) => format!("reading {} failed ({error})", options.device),
        None => format!("{} closed", options.device),
    };
    if typed {
        let mut keyboard =
            port.try_clone().map_err(|source| StartError::CloneSerial { device: options.device.clone(), source })?;
        let console = Console::spawn(port);
        let limits =
            Limits { timeout: options.run.timeout, silence: options.run.silence, silence_from: SilenceFrom::FirstByte };
        let summary =
            typing::run(&console, &mut keyboard, &mut session, &scripts, &limits, &mut |error| describe_close(error));
        return Ok(session.conclude_with(summary, None));
    }
    let console = Console::spawn(port);
    let stop = session.stream(&console, SilenceFrom::FirstByte);
    let end = session.end_reason(stop, describe_close);
    Ok(session.conclude(end, None))
}
