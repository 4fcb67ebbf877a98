//! `berth courier`: carries a hook's request to a daemon that is not running yet.
//!
//! The features' entrypoints run one after the other when the container starts, and the
//! Dev Containers CLI starts the lifecycle commands meanwhile. When an entrypoint before
//! berth's holds the chain (Docker-in-Docker's `docker-init.sh` does, until its engine
//! answers: half a minute or more with a slow engine), the onCreate and updateContent hooks
//! run before berth's daemon exists. A hook never waits for it: it hands its request to a
//! courier and returns at once.
//!
//! The courier is a process of the hook's own user (the remote user), started by the hook
//! with an empty environment and the request, secrets included, on a pipe: the secrets are
//! in its memory only (it is not dumpable), never in its environment, its arguments or a
//! file. It waits, watching the state folder (no polling), for the daemon the container's
//! entrypoint starts, at most [`WITHIN`]; hands it the request, marked with the time the
//! hook ran (the daemon does the phase's work then, waiting for nothing, since nobody
//! waits for it); and exits. It never starts a daemon: the daemon's privileges stay those
//! of the container's entrypoint.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use crate::protocol::{self, HookRequest, MAX_LINE, Request};
use crate::state::StateDir;

/// How long a courier waits for the daemon.
pub const WITHIN: Duration = Duration::from_secs(600);

/// How long the daemon may take with a handed-over phase (it waits for nothing).
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// Starts a courier for `request` (see the module's description); returns once the
/// courier has the request.
pub fn hand_over(state: &StateDir, request: &HookRequest) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut courier = Command::new(exe);
    courier
        .arg("courier")
        .arg("--state-dir")
        .arg(&state.path)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the courier leaves the hook's session, so that
    // the end of the lifecycle command's session does not end it.
    unsafe {
        courier.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = courier.spawn()?;
    let mut line =
        zeroize::Zeroizing::new(serde_json::to_vec(request).map_err(std::io::Error::other)?);
    line.push(b'\n');
    let mut stdin = child.stdin.take().expect("a piped stdin");
    stdin.write_all(&line)?;
    // The courier is not waited for: it outlives this hook, adopted by the container's init.
    Ok(())
}

/// Runs a courier: reads the request from stdin, waits for the daemon, hands it over.
pub fn run(state_dir: PathBuf) -> ExitCode {
    // It holds secrets: no core dump, no reading of its memory by its user's other processes.
    let _ = nix::sys::prctl::set_dumpable(false);
    let mut line = zeroize::Zeroizing::new(String::new());
    let read = std::io::Read::take(std::io::stdin().lock(), MAX_LINE as u64).read_line(&mut line);
    if read.is_err() {
        return ExitCode::FAILURE;
    }
    let Ok(request) = serde_json::from_str::<HookRequest>(&line) else {
        return ExitCode::FAILURE;
    };
    drop(line);
    let state = StateDir::new(state_dir);
    if !super::hook::wait_for_daemon(&state, WITHIN) {
        return ExitCode::FAILURE;
    }
    match protocol::call(
        &state.socket(),
        &Request::Hook(request),
        ANSWER_WITHIN,
        &mut |_, _| {},
    ) {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
