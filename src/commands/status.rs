//! `berth status [--json]`: the phase timeline, the registries and the pulls.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use crate::protocol::{Request, Response};
use crate::settings::Settings;
use crate::state::StateDir;
use crate::status::Status;

/// Runs the command.
pub fn run(json: bool, settings: Settings) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(settings.state_dir.clone());
    let status =
        ask_daemon(&state).unwrap_or_else(|| Status::from_records(&state.events().read_all()));
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", status.render());
        if status.daemon.is_none()
            && let Some(pid) = crate::daemon::running_pid(&state)
        {
            println!("\n(a daemon holds the lock, pid {pid}, but did not answer)");
        }
        println!(
            "\nstate folder: {}  (log: berth logs)",
            state.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The daemon's live status, if it answers within a second.
pub fn ask_daemon(state: &StateDir) -> Option<Status> {
    let mut stream = UnixStream::connect(state.socket()).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut line = serde_json::to_vec(&Request::Status).ok()?;
    line.push(b'\n');
    stream.write_all(&line).ok()?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).ok()?;
    match serde_json::from_str(&answer).ok()? {
        Response::Status(s) => Some(*s),
        _ => None,
    }
}
