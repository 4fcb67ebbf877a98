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
//!
//! A phase on its way is known by a shared `flock` on the state folder, taken by the hook
//! before it returns and held by its courier until the daemon has done the phase's work
//! (the lock's open file is inherited). `berth status --wait` takes the lock exclusively
//! ([`wait_delivered`]) before it asks the daemon about the pulls, so that it waits for
//! pulls a handed-over phase starts rather than saying none is under way.

use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd as _, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, Flock, FlockArg, OFlag};

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
    // Taken here, so that it is held when the hook returns; the courier inherits it.
    let on_its_way = on_its_way(state);
    let inherited = on_its_way.as_ref().map(|f| f.as_raw_fd());
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
    // SAFETY: setsid and fcntl are async-signal-safe; the courier leaves the hook's
    // session, so that the end of the lifecycle command's session does not end it, and
    // keeps the lock's file open across exec (it is the same file number as here).
    unsafe {
        courier.pre_exec(move || {
            if let Some(fd) = inherited {
                let fd = BorrowedFd::borrow_raw(fd);
                nix::fcntl::fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            }
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = courier.spawn()?;
    // Never unlocked here: unlocking would release the courier's lock too (one open file).
    // This process's copy of the file closes when it exits; the courier's holds the lock.
    std::mem::forget(on_its_way);
    let mut line =
        zeroize::Zeroizing::new(serde_json::to_vec(request).map_err(std::io::Error::other)?);
    line.push(b'\n');
    let mut stdin = child.stdin.take().expect("a piped stdin");
    stdin.write_all(&line)?;
    // The courier is not waited for: it outlives this hook, adopted by the container's init.
    Ok(())
}

/// The state folder, open to be locked (read-only, never through a link).
fn open_folder(state: &StateDir) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits())
        .open(&state.path)
}

/// `flock` with `arg` on `file`, retried when a signal interrupts it.
fn flock(file: File, arg: FlockArg) -> Result<Flock<File>, Errno> {
    let mut file = file;
    loop {
        match Flock::lock(file, arg) {
            Ok(lock) => return Ok(lock),
            Err((back, Errno::EINTR)) => file = back,
            Err((_, e)) => return Err(e),
        }
    }
}

/// A shared lock on the state folder, marking a phase on its way; `None` when it cannot
/// be taken at once (the phase still goes; only `berth status --wait` will not know).
fn on_its_way(state: &StateDir) -> Option<Flock<File>> {
    flock(open_folder(state).ok()?, FlockArg::LockSharedNonblock).ok()
}

/// What [`wait_delivered`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// No phase was on its way to the daemon.
    NoneOnItsWay,
    /// Phases were on their way, and have all reached the daemon.
    Delivered,
    /// Some were still on their way when the bound passed.
    StillOnItsWay,
}

/// Waits, within `bound`, until no courier holds a phase for the daemon (without polling:
/// a blocking exclusive lock, in a thread of its own).
pub fn wait_delivered(state: &StateDir, bound: Duration) -> Delivery {
    let Ok(folder) = open_folder(state) else {
        return Delivery::NoneOnItsWay;
    };
    let Err(Errno::EWOULDBLOCK) = flock(folder, FlockArg::LockExclusiveNonblock) else {
        return Delivery::NoneOnItsWay;
    };
    let Ok(folder) = open_folder(state) else {
        return Delivery::NoneOnItsWay;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    // A thread still blocked when the bound passes ends with the process.
    std::thread::spawn(move || {
        let _ = tx.send(flock(folder, FlockArg::LockExclusive).is_ok());
    });
    match rx.recv_timeout(bound) {
        Ok(_) => Delivery::Delivered,
        Err(_) => Delivery::StillOnItsWay,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_on_its_way_is_waited_for_until_its_courier_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        assert_eq!(
            wait_delivered(&state, Duration::from_secs(5)),
            Delivery::NoneOnItsWay
        );
        // Two couriers share it; the waiter is woken when the last one lets go (not by a
        // clock: its bound is a minute).
        let (one, two) = (on_its_way(&state).unwrap(), on_its_way(&state).unwrap());
        let waiter = {
            let state = state.clone();
            std::thread::spawn(move || wait_delivered(&state, Duration::from_secs(60)))
        };
        drop(one);
        drop(two);
        let found = waiter.join().unwrap();
        // NoneOnItsWay when both had let go before the waiter looked.
        assert!(
            matches!(found, Delivery::Delivered | Delivery::NoneOnItsWay),
            "{found:?}"
        );
        assert_eq!(
            wait_delivered(&state, Duration::from_secs(5)),
            Delivery::NoneOnItsWay
        );
        // One that does not let go: the wait ends at its bound, saying so.
        let _held = on_its_way(&state).unwrap();
        assert_eq!(
            wait_delivered(&state, Duration::from_millis(50)),
            Delivery::StillOnItsWay
        );
    }

    #[test]
    fn a_missing_state_folder_has_nothing_on_its_way() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("absent"));
        assert!(on_its_way(&state).is_none());
        assert_eq!(
            wait_delivered(&state, Duration::from_secs(5)),
            Delivery::NoneOnItsWay
        );
    }
}
