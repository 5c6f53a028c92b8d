//! The `log` backend: one line per record on the console, stamped with the
//! time since reset.

use log::{LevelFilter, Log, Metadata, Record};

use crate::arch::timer;

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let t = timer::uptime();
        crate::println!("[{:>4}.{:06}] {:<5} {}", t.as_secs(), t.subsec_micros(), record.level(), record.args());
    }

    fn flush(&self) {}
}

pub fn init(level: LevelFilter) {
    // The logger is set once, at boot; a second call changes only the level.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
