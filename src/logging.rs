//! Logging: concise human lines on stderr, JSON lines in the state folder's log file.
//!
//! Messages are fixed strings and data goes in fields (`info!(id = %id, "injected")`), so
//! that the JSON log can be searched and no value is ever formatted into a message by
//! accident. Secrets are never logged: their type prints `***`.

use std::fs::File;
use std::io;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

/// Where logs go.
#[derive(Debug)]
pub struct LogTarget {
    /// Level for stderr (`info`, `debug`, ...).
    pub level: String,
    /// Whether to write to stderr at all.
    pub stderr: bool,
    /// The JSON log file, opened by the state folder's owner
    /// ([`crate::state::OwnedState::open_log`]).
    pub file: Option<File>,
}

/// Starts logging.
pub fn init(target: LogTarget) {
    let stderr_filter = filter(&target.level);
    let stderr = target.stderr.then(|| {
        fmt::layer()
            .with_writer(io::stderr)
            .with_ansi(colour_on_stderr())
            .with_target(false)
            .without_time()
            .compact()
            .with_filter(stderr_filter)
    });
    let file = target.file.map(|f| {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .with_writer(Mutex::new(f))
            .with_filter(filter(&file_level(&target.level)))
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
}

/// Whether stderr may carry colour: it is a terminal, and `NO_COLOR` is unset or empty.
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The file records at least `info`, whatever stderr shows.
fn file_level(level: &str) -> String {
    match level {
        "error" | "warn" => "info".into(),
        l => l.into(),
    }
}

fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(format!("berth={level},warn"))
        .unwrap_or_else(|_| EnvFilter::new("berth=info,warn"))
}
