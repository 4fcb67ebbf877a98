//! `berth daemon [--background]`: run the daemon, or start it detached and return once it
//! listens (what the feature's entrypoint does, so that the container's start is never
//! blocked), handing it the registry secrets of the container's environment over its
//! socket (the daemon's own environment is kept clean of them).

use std::process::ExitCode;

use crate::daemon::{self, Started, start};
use crate::protocol::{self, Request, StartRequest, WireSecret};
use crate::settings::Settings;
use crate::state::StateDir;

/// Runs the command.
pub fn run(background: bool, settings: Settings, warnings: &[String]) -> anyhow::Result<ExitCode> {
    if !background {
        daemon::run(settings, warnings)?;
        return Ok(ExitCode::SUCCESS);
    }
    let state = StateDir::of_user(settings.state_dir.as_deref(), nix::unistd::Uid::effective());
    match start::start_background() {
        Ok(start::Outcome {
            started: Started::Ready,
            pid,
        }) => println!("berth: daemon started (pid {pid})"),
        Ok(start::Outcome {
            started: Started::AlreadyRunning,
            ..
        }) => println!(
            "berth: daemon already running (pid {})",
            daemon::running_pid(&state)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        ),
        Err(e) => {
            eprintln!(
                "berth: {}; see {} (or run `berth daemon` to see why)",
                crate::error::chain(&e),
                state.log().display()
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let request = Request::Start(StartRequest {
        secrets: WireSecret::from_environment(),
    });
    if let Err(e) = protocol::call(
        &state.socket(),
        &request,
        settings.hook_timeout,
        &mut |_, _| {},
    ) {
        eprintln!("berth: could not hand the container's secrets to the daemon: {e}");
    }
    Ok(ExitCode::SUCCESS)
}
