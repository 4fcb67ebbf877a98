//! Logging: concise human lines on stderr, JSON lines in the state folder's log file.
//!
//! Messages are fixed strings and data goes in fields (`info!(id = %id, "injected")`), so
//! that the JSON log can be searched and no value is ever formatted into a message by
//! accident. Secrets are never logged: their type prints `***`.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

use crate::atomic::Ownership;

/// The log file's name in the state folder.
pub const LOG_FILE: &str = "berth.log";
/// A log file larger than this is rotated to `berth.log.1` when a process opens it.
const ROTATE_AT: u64 = 8 * 1024 * 1024;

/// Where logs go.
#[derive(Clone, Debug)]
pub struct LogTarget {
    /// Level for stderr (`info`, `debug`, ...).
    pub level: String,
    /// Whether to write to stderr at all.
    pub stderr: bool,
    /// The JSON log file and its owner, if any.
    pub file: Option<(PathBuf, Ownership)>,
}

/// Starts logging. A log file that cannot be opened is reported on stderr and skipped.
pub fn init(target: &LogTarget) {
    let stderr_filter = filter(&target.level);
    let stderr = target.stderr.then(|| {
        fmt::layer()
            .with_writer(io::stderr)
            .with_target(false)
            .without_time()
            .compact()
            .with_filter(stderr_filter)
    });
    let file = target
        .file
        .as_ref()
        .and_then(|(path, owner)| match open_log(path, *owner) {
            Ok(f) => Some(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_target(false)
                    .with_writer(Mutex::new(f))
                    .with_filter(filter(&file_level(&target.level))),
            ),
            Err(e) => {
                // A hook's output is the creation log: an unopenable log file is no news there.
                if target.stderr {
                    eprintln!("berth: cannot open the log file {}: {e}", path.display());
                }
                None
            }
        });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
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

/// Opens the log for appending (0640, owned as given), rotating a large one first.
pub fn open_log(path: &Path, owner: Ownership) -> io::Result<fs::File> {
    if fs::metadata(path)
        .map(|m| m.len() > ROTATE_AT)
        .unwrap_or(false)
    {
        let _ = fs::rename(path, path.with_extension("log.1"));
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)?;
    if let Some((uid, gid)) = owner.owner {
        let _ = nix::unistd::fchown(&f, Some(uid), Some(gid));
    }
    Ok(f)
}
