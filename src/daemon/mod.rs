//! `berth daemon`: one per container, a set of named workers under one supervisor.
//!
//! The feature's entrypoint starts the daemon in the background at container start
//! ([`start`]), as the container's own user and with a clean environment: it holds no
//! secret until a hook or the entrypoint hands it some over the socket. It looks the remote
//! user up by name, opens its state folder (its own, see [`crate::state`]), takes a lock
//! so that it is alone, binds its socket (open to root and the remote user only), replays
//! the event record to learn what already happened, and runs its workers: `listener` (hooks and status requests), `signals` (SIGTERM/SIGINT), `watcher`
//! (the state folder, through notify), `engine` (waits for Docker to answer), `keeper`
//! (berth's entries stay in the config), `renewer` (ECR tokens) and `puller` (pre-pulls). A stop, from a signal or a fatal error, cancels
//! one token; every worker finishes or abandons its work at a point where no file is half
//! written, and the supervisor drains them all before the daemon records its stop.

mod core;
mod engine_worker;
mod keeper;
mod listener;
mod puller;
mod renewer;
mod signals;
pub mod start;
mod watcher;

pub use core::Core;

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::{Caller, Lifecycle};
use crate::protocol::WireSecret;
use crate::settings::Settings;
use crate::state::{Event, StateDir};

/// The variable through which `berth daemon --background` hands the child the pipe it
/// reports readiness on.
pub const READY_FD_VAR: &str = "BERTH_READY_FD";

/// What the daemon tells the process that started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// It is listening.
    Ready,
    /// Another daemon holds the lock.
    AlreadyRunning,
}

type WorkerFuture = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

/// Runs the daemon until it is stopped; `warnings` are the settings it could not
/// understand, for the log.
pub fn run(settings: Settings, warnings: &[String]) -> anyhow::Result<()> {
    let ready = ReadyPipe::from_env();
    let life = Lifecycle::for_daemon(settings)?;
    let state = life
        .state
        .as_ref()
        .expect("the daemon holds its state folder");
    let lock = state
        .lock()
        .with_context(|| format!("cannot lock {}", state.dir().lock().display()))?;
    let Some(lock) = lock else {
        ready.tell(Started::AlreadyRunning);
        return Ok(());
    };
    let log = state.open_log();
    if let (Err(e), false) = (&log, ready.is_set()) {
        eprintln!(
            "berth: cannot open the log file {}: {e}",
            state.dir().log().display()
        );
    }
    crate::logging::init(crate::logging::LogTarget {
        level: life.settings.log_level.clone(),
        stderr: !ready.is_set(),
        file: log.ok(),
    });
    for w in warnings {
        tracing::warn!(problem = %w, "setting ignored");
    }
    let runtime = crate::commands::runtime()?;
    let result = runtime.block_on(supervise(life, ready));
    drop(lock);
    result
}

async fn supervise(life: Lifecycle, ready: ReadyPipe) -> anyhow::Result<()> {
    let state = life
        .state
        .as_ref()
        .expect("the daemon holds its state folder");
    let listener = state
        .bind_socket()
        .with_context(|| format!("cannot listen on {}", state.dir().socket().display()))?;
    let cancel = CancellationToken::new();
    let pid = std::process::id();
    let uid = nix::unistd::Uid::effective().as_raw();
    life.record(Event::DaemonStarted {
        pid,
        version: env!("CARGO_PKG_VERSION").to_string(),
        uid: Some(uid),
        container: crate::container::id(),
    });
    tracing::info!(pid, uid, remote_user = %life.remote.name, state = %state.path().display(), "daemon started");
    let (core, channels) = Core::new(life, cancel.clone());
    let core = Arc::new(core);
    ready.tell(Started::Ready);

    let mut workers: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();
    let named = |name: &'static str, f: WorkerFuture| async move { (name, f.await) };
    workers.spawn(named(
        "listener",
        Box::pin(listener::run(core.clone(), listener)),
    ));
    workers.spawn(named("signals", Box::pin(signals::run(cancel.clone()))));
    workers.spawn(named("watcher", Box::pin(watcher::run(core.clone()))));
    workers.spawn(named("engine", Box::pin(engine_worker::run(core.clone()))));
    workers.spawn(named("keeper", Box::pin(keeper::run(core.clone()))));
    workers.spawn(named(
        "renewer",
        Box::pin(renewer::run(core.clone(), channels.renew)),
    ));
    workers.spawn(named(
        "puller",
        Box::pin(puller::run(core.clone(), channels.pulls)),
    ));
    if !ready.is_set() {
        // Run in the foreground (by hand): this process's own environment is the
        // container's. In the background the entrypoint hands its secrets over the socket.
        core.start(WireSecret::from_environment(), Caller::this_process())
            .await;
    }

    // The first worker to end (a signal, or a fatal error) stops them all.
    let mut failure = None;
    if let Some(joined) = workers.join_next().await {
        failure = report_worker(joined);
    }
    cancel.cancel();
    let drain = async {
        while let Some(joined) = workers.join_next().await {
            if let Some(e) = report_worker(joined) {
                failure.get_or_insert(e);
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("workers did not stop within 10 s; stopping anyway");
        workers.abort_all();
    }
    if let Some(state) = &core.life.state {
        state.remove_socket();
    }
    core.life.record(Event::DaemonStopped { pid });
    tracing::info!(pid, "daemon stopped");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn report_worker(
    joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
) -> Option<anyhow::Error> {
    match joined {
        Ok((name, Ok(()))) => {
            tracing::debug!(worker = name, "worker finished");
            None
        }
        Ok((name, Err(e))) => {
            tracing::error!(worker = name, error = %format!("{e:#}"), "worker failed");
            Some(e.context(format!("worker {name} failed")))
        }
        Err(e) => {
            tracing::error!(error = %e, "worker panicked");
            Some(anyhow::anyhow!("a worker panicked: {e}"))
        }
    }
}

/// The pid of the running daemon, from its lock file, if it holds the lock (read as the
/// caller).
pub fn running_pid(state: &StateDir) -> Option<u32> {
    let file = std::fs::File::open(state.lock()).ok()?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock) {
        Ok(_) => None, // nobody holds it
        Err((_, _)) => std::fs::read_to_string(state.lock())
            .ok()?
            .trim()
            .parse()
            .ok(),
    }
}

/// The write end of the readiness pipe, if this daemon was started in the background.
struct ReadyPipe {
    fd: std::sync::Mutex<Option<OwnedFd>>,
    set: bool,
}

impl ReadyPipe {
    fn from_env() -> Self {
        let fd = std::env::var(READY_FD_VAR)
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|fd| *fd > 2)
            // SAFETY: the parent passed this descriptor for our sole use; nothing else owns it.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
        ReadyPipe {
            set: fd.is_some(),
            fd: std::sync::Mutex::new(fd),
        }
    }

    fn is_set(&self) -> bool {
        self.set
    }

    /// Tells the starter, once, and closes the pipe.
    fn tell(&self, started: Started) {
        if let Some(fd) = self.fd.lock().ok().and_then(|mut f| f.take()) {
            let msg: &[u8] = match started {
                Started::Ready => b"ready\n",
                Started::AlreadyRunning => b"already\n",
            };
            let _ = nix::unistd::write(&fd, msg);
        }
    }
}
