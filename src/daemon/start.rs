//! Starting the daemon in the background, the same way whoever starts it.
//!
//! The entrypoint starts it at container start; a hook starts it when none answers and the
//! hook runs as the daemon's user (the container's). Either way the daemon is a detached
//! child in its own session with a clean environment: only the variables that configure
//! berth, reach the engine and the ECR API, and find programs are passed ([`KEPT`] and
//! every `BERTH_*` option); registry secrets, AWS keys and anything else of the starter's
//! environment stay out of the daemon's `/proc/PID/environ`. The starter returns once the
//! daemon listens (or says another one already does), within ten seconds.

use std::ffi::OsString;
use std::io::Read as _;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{READY_FD_VAR, Started};

/// The variables a daemon keeps from its starter's environment, besides the `BERTH_*`
/// options. None holds a registry secret.
pub const KEPT: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "DOCKER_HOST",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "RUST_BACKTRACE",
];

/// Whether a variable of the starter's environment is passed to the daemon.
pub fn is_kept(name: &str) -> bool {
    KEPT.contains(&name) || crate::settings::OPTIONS.iter().any(|o| o.env == name)
}

/// The daemon's environment, from this process's.
pub fn daemon_environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| k.to_str().is_some_and(is_kept))
        .collect()
}

/// What starting gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Ready, or already running.
    pub started: Started,
    /// The child's pid.
    pub pid: u32,
}

/// Why the daemon could not be started in the background.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The readiness pipe, or the wait on it.
    #[error("cannot set up the daemon's readiness pipe")]
    Pipe(#[from] nix::Error),
    /// berth's own program, or starting it.
    #[error("cannot start berth daemon")]
    Spawn(#[from] std::io::Error),
    /// It said neither that it listens nor that another daemon runs, within the bound.
    #[error("the daemon did not start: it did not say it listens within {0:?}")]
    Silent(Duration),
}

/// How long the starter waits for the daemon to say it listens.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Starts `berth daemon` detached, with a clean environment, and waits (up to ten
/// seconds) until it listens or says another daemon runs.
pub fn start_background() -> Result<Outcome, StartError> {
    let (read, write) = nix::unistd::pipe()?;
    fcntl(read.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("daemon")
        .env_clear()
        .envs(daemon_environment())
        .env(READY_FD_VAR, write.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the child only detaches from our session.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(write);
    let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
    let waited = poll(
        &mut fds,
        PollTimeout::try_from(READY_WITHIN).unwrap_or(PollTimeout::MAX),
    )?;
    let mut answer = [0u8; 16];
    let n = if waited > 0 {
        std::fs::File::from(read).read(&mut answer).unwrap_or(0)
    } else {
        0
    };
    let started = match String::from_utf8_lossy(&answer[..n]).trim() {
        "ready" => Started::Ready,
        "already" => Started::AlreadyRunning,
        _ => return Err(StartError::Silent(READY_WITHIN)),
    };
    Ok(Outcome {
        started,
        pid: child.id(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_kept_and_settings_are() {
        for secret in [
            "GHCR_CONTAINER_REGISTRY_PASSWORD",
            "ECR_CONTAINER_REGISTRY_USER",
            "ECR_CONTAINER_REGISTRY_AWS_SESSION_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SESSION_TOKEN",
            "GITHUB_TOKEN",
        ] {
            assert!(!is_kept(secret), "{secret}");
        }
        for setting in ["BERTH_STATE_DIR", "BERTH_IMAGES", "DOCKER_HOST", "PATH"] {
            assert!(is_kept(setting), "{setting}");
        }
    }
}
