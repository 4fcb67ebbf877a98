//! `berth status [--json]`: the phase timeline, the registries and the pulls.

use std::process::ExitCode;
use std::time::Duration;

use crate::protocol::{self, Answer, Request};
use crate::settings::Settings;
use crate::state::StateDir;
use crate::status::Status;

/// Runs the command.
pub fn run(json: bool, settings: Settings) -> anyhow::Result<ExitCode> {
    let state = StateDir::of_daemon(settings.state_dir.as_deref());
    let status = ask_daemon(&state).unwrap_or_else(|| {
        let records = state.read_all();
        let mut status = Status::from_records(&records);
        // This user's own config: the one berth writes when the remote user runs this.
        let location = crate::docker_config::Location::of_environment();
        let managed = crate::docker_config::Managed::load(&location);
        status.without_secrets = crate::status::without_secrets(&records, &managed);
        status
    });
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

/// The daemon's live status, if it answers within two seconds.
pub fn ask_daemon(state: &StateDir) -> Option<Status> {
    match protocol::call(
        &state.socket(),
        &Request::Status,
        Duration::from_secs(2),
        &mut |_, _| {},
    ) {
        Ok(Answer::Status(s)) => Some(*s),
        _ => None,
    }
}
