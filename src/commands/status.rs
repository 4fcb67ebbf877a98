//! `berth status [--json] [--wait [--timeout SECONDS]]`: the phase timeline, the
//! registries and the pulls; with `--wait`, once no pre-pull is queued or running (as
//! `cloud-init status --wait` waits for cloud-init), so that a user's script can wait for
//! the images without polling.

use std::process::ExitCode;
use std::time::Duration;

use crate::commands::inject::EXIT_INCOMPLETE;
use crate::protocol::{self, Answer, CallError, Level, Request};
use crate::settings::Settings;
use crate::state::StateDir;
use crate::status::{PullState, Status};

/// Runs the command; `wait` is `Some(timeout)` with `--wait`.
pub fn run(json: bool, wait: Option<Option<u64>>, settings: Settings) -> anyhow::Result<ExitCode> {
    let state = StateDir::of_daemon(settings.state_dir.as_deref());
    if let Some(timeout) = wait {
        let bound = timeout.map_or(settings.pull_timeout, Duration::from_secs);
        wait_for_pulls(&state, bound, json);
    }
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
    Ok(if wait.is_some() {
        exit_after_wait(&status)
    } else {
        ExitCode::SUCCESS
    })
}

/// Asks the daemon to wait for the pulls, printing each line it says (on stderr when
/// stdout carries JSON).
fn wait_for_pulls(state: &StateDir, bound: Duration, json: bool) {
    let mut print = |_: Level, text: String| {
        let text = crate::status::printable(&text);
        if json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };
    // The daemon stops waiting at the bound; the margin is for its last answer.
    let request = Request::Wait {
        seconds: bound.as_secs(),
    };
    match protocol::call(
        &state.socket(),
        &request,
        bound + Duration::from_secs(5),
        &mut print,
    ) {
        Ok(_) => {}
        Err(CallError::TimedOut) => print(
            Level::Warn,
            format!(
                "berth: status: the daemon did not answer within {} s",
                bound.as_secs()
            ),
        ),
        Err(e) => print(
            Level::Info,
            format!("berth: status: no daemon answers ({e}), so no pre-pull is under way"),
        ),
    }
}

/// 0 when every pull is done, 1 when one failed, [`EXIT_INCOMPLETE`] when some are
/// still queued or running.
fn exit_after_wait(status: &Status) -> ExitCode {
    let any = |states: &[PullState]| status.pulls.iter().any(|p| states.contains(&p.state));
    if any(&[PullState::Failed]) {
        ExitCode::FAILURE
    } else if any(&[PullState::Queued, PullState::Pulling, PullState::Retrying]) {
        ExitCode::from(EXIT_INCOMPLETE)
    } else {
        ExitCode::SUCCESS
    }
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
