//! `berth logs [-f]`: the daemon's and hooks' log, as readable lines.
//!
//! The log file holds JSON lines; this prints each as `time LEVEL message key=value ...`.
//! With `-f` it follows the file as it grows (watching its folder, so a rotation is seen).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::ExitCode;

use notify::Watcher as _;

use crate::settings::Settings;
use crate::state::StateDir;

/// Runs the command.
pub fn run(follow: bool, settings: Settings) -> anyhow::Result<ExitCode> {
    let path = StateDir::of_daemon(settings.state_dir.as_deref()).log();
    let mut offset = print_from(&path, 0);
    if !follow {
        if offset == 0 && !path.exists() {
            eprintln!("berth: no log yet at {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Our own reads of the log raise access events: only changes matter.
        if res.as_ref().map_or(true, crate::engine::is_change) {
            let _ = tx.send(());
        }
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
    while rx.recv().is_ok() {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0; // rotated
        }
        offset = print_from(&path, offset);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints complete lines from `offset`; returns the offset after them.
fn print_from(path: &Path, offset: u64) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return offset;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return offset;
    }
    let complete = buf
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    for line in buf[..complete]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
    {
        println!("{}", render(line));
    }
    offset + complete as u64
}

/// One JSON log line as `time LEVEL message key=value ...`, its control characters shown
/// escaped: values in the log came partly from outside (a user's `DOCKER_HOST`, a
/// registry's error message) and must not reach the terminal as escape sequences.
pub fn render(line: &[u8]) -> String {
    crate::status::printable(&render_text(line))
}

fn render_text(line: &[u8]) -> String {
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(line)
    else {
        return String::from_utf8_lossy(line).into_owned();
    };
    let text = |v: Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s,
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let time = text(map.remove("timestamp"));
    let time = time.split('.').next().unwrap_or(&time).to_string();
    let level = text(map.remove("level"));
    let message = text(map.remove("message"));
    let mut out = format!("{time} {level:5} {message}");
    for (k, v) in map {
        out.push_str(&format!(" {k}={}", text(Some(v))));
    }
    out
}
