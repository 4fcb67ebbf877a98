//! `berth status [--json] [--wait [--timeout SECONDS]]`: the phase timeline, the
//! registries and the pulls; with `--wait`, once no pre-pull is queued or running (as
//! `cloud-init status --wait` waits for cloud-init), so that a user's script can wait for
//! the images without polling. A phase a hook handed over to a daemon that was not running
//! yet is waited for first: it may start pulls.

use std::process::ExitCode;
use std::time::{Duration, Instant};

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
        let waited = wait_for_handed_over(&state, bound, json);
        wait_for_pulls(&state, bound.saturating_sub(waited), json);
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

/// Prints a line of the wait (on stderr when stdout carries JSON).
fn say(json: bool, text: &str) {
    let text = crate::status::printable(text);
    if json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// Waits, within `bound`, for the phases hooks handed over to a daemon that was not
/// running yet to reach it (see [`super::courier`]); how long it waited (nothing when no
/// phase was on its way).
fn wait_for_handed_over(state: &StateDir, bound: Duration, json: bool) -> Duration {
    let started = Instant::now();
    match super::courier::wait_delivered(state, bound) {
        super::courier::Delivery::NoneOnItsWay => return Duration::ZERO,
        super::courier::Delivery::Delivered => say(
            json,
            &format!(
                "berth: status: the phases handed to berth's daemon before it ran reached it after a wait of {:.1} s",
                started.elapsed().as_secs_f64()
            ),
        ),
        super::courier::Delivery::StillOnItsWay => say(
            json,
            &format!(
                "berth: status: phases handed to berth's daemon have not reached it within {} s (it is not running yet: the container's entrypoint starts it)",
                bound.as_secs()
            ),
        ),
    }
    started.elapsed()
}

/// Asks the daemon to wait for the pulls, printing each line it says (on stderr when
/// stdout carries JSON).
fn wait_for_pulls(state: &StateDir, bound: Duration, json: bool) {
    let mut print = |_: Level, text: String| say(json, &text);
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
