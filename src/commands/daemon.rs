//! `berth daemon [--background]`: run the daemon, or start it detached and return once it
//! listens (what the feature's entrypoint does, so that the container's start is never
//! blocked).

use std::io::Read as _;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::daemon::{self, READY_FD_VAR};
use crate::settings::Settings;
use crate::state::StateDir;

/// Runs the command.
pub fn run(background: bool, settings: Settings) -> anyhow::Result<ExitCode> {
    if !background {
        daemon::run(settings)?;
        return Ok(ExitCode::SUCCESS);
    }
    let state = StateDir::new(settings.state_dir.clone());
    let (read, write) = nix::unistd::pipe()?;
    fcntl(read.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("daemon")
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
        PollTimeout::try_from(Duration::from_secs(10)).unwrap_or(PollTimeout::MAX),
    )?;
    let mut answer = [0u8; 16];
    let n = if waited > 0 {
        std::fs::File::from(read).read(&mut answer).unwrap_or(0)
    } else {
        0
    };
    match String::from_utf8_lossy(&answer[..n]).trim() {
        "ready" => println!("berth: daemon started (pid {})", child.id()),
        "already" => println!(
            "berth: daemon already running (pid {})",
            daemon::running_pid(&state)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        ),
        _ => {
            eprintln!(
                "berth: the daemon did not start; see {} (or run `berth daemon` to see why)",
                state.log().display()
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
