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
pub use listener::{MAX_PER_USER, MAX_TOTAL};

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

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

/// The one error a worker returns: something without which the daemon cannot go on, so it
/// stops (cleanly, through the one shutdown path). Everything else a worker meets is
/// survivable: it says so with [`survived`] and goes on.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// The daemon cannot hear a stop signal, so it could never stop cleanly.
    #[error("cannot listen for {signal}")]
    Signal {
        /// SIGTERM or SIGINT.
        signal: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The daemon cannot learn of the phases that hooks record without it.
    #[error("cannot watch the state folder {path}")]
    WatchState {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
}

/// Why the daemon did not run, or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Its remote user or its state folder.
    #[error(transparent)]
    Lifecycle(#[from] crate::lifecycle::LifecycleError),
    /// Its lock cannot be taken.
    #[error("cannot lock {path}")]
    Lock {
        /// The lock file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its socket cannot be bound.
    #[error("cannot listen on {path}")]
    Listen {
        /// The socket.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its runtime cannot be started.
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    /// A worker met a fatal error.
    #[error("worker {worker} failed")]
    Worker {
        /// Its name.
        worker: &'static str,
        /// Why.
        #[source]
        source: Fatal,
    },
    /// A worker panicked.
    #[error("worker {worker} panicked")]
    Panicked {
        /// Its name.
        worker: &'static str,
    },
}

/// Says that a worker met a survivable error (with its causes) and goes on.
pub fn survived(worker: &'static str, what: &str, error: &dyn std::error::Error) {
    tracing::warn!(worker, error = %crate::error::chain(error), "{what}");
}

type WorkerFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Fatal>> + Send>>;

/// Runs the daemon until it is stopped; `warnings` are the settings it could not
/// understand, for the log.
pub fn run(settings: Settings, warnings: &[String]) -> Result<(), DaemonError> {
    let ready = ReadyPipe::from_env();
    // The daemon holds every registry secret in memory: no core dump of it, and no other
    // process of its user may read its memory through ptrace or /proc/PID/mem.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("berth: cannot make the daemon undumpable: {e}");
    }
    let locked = lock_memory();
    let life = Lifecycle::for_daemon(settings)?;
    let state = life
        .state
        .as_ref()
        .expect("the daemon holds its state folder");
    let lock = state.lock().map_err(|source| DaemonError::Lock {
        path: state.dir().lock(),
        source,
    })?;
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
    match locked {
        Ok(()) => tracing::debug!("memory locked: no secret is swapped out"),
        Err(why) => {
            tracing::info!(reason = %why, "memory not locked: the kernel may swap secrets out")
        }
    }
    let runtime = crate::runtime().map_err(DaemonError::Runtime)?;
    let result = runtime.block_on(supervise(life, ready));
    drop(lock);
    result
}

async fn supervise(life: Lifecycle, ready: ReadyPipe) -> Result<(), DaemonError> {
    let state = life
        .state
        .as_ref()
        .expect("the daemon holds its state folder");
    let listener = state.bind_socket().map_err(|source| DaemonError::Listen {
        path: state.dir().socket(),
        source,
    })?;
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

    let mut workers = Workers::default();
    workers.spawn("listener", Box::pin(listener::run(core.clone(), listener)));
    workers.spawn("signals", Box::pin(signals::run(cancel.clone())));
    workers.spawn("watcher", Box::pin(watcher::run(core.clone())));
    workers.spawn("engine", Box::pin(engine_worker::run(core.clone())));
    workers.spawn("keeper", Box::pin(keeper::run(core.clone())));
    workers.spawn(
        "renewer",
        Box::pin(renewer::run(core.clone(), channels.renew)),
    );
    workers.spawn(
        "puller",
        Box::pin(puller::run(core.clone(), channels.pulls)),
    );
    if !ready.is_set() {
        // Run in the foreground (by hand): this process's own environment is the
        // container's. In the background the entrypoint hands its secrets over the socket.
        core.start(WireSecret::from_environment(), Caller::this_process())
            .await;
    }

    // The first worker to end (a signal, or a fatal error) stops them all.
    let mut failure = workers.next().await.flatten();
    cancel.cancel();
    let drain = async {
        while let Some(ended) = workers.next().await {
            if let Some(e) = ended {
                failure.get_or_insert(e);
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("workers did not stop within 10 s; stopping anyway");
        workers.set.abort_all();
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

/// The daemon's workers, by name.
#[derive(Default)]
struct Workers {
    set: JoinSet<Result<(), Fatal>>,
    names: std::collections::HashMap<tokio::task::Id, &'static str>,
}

impl Workers {
    fn spawn(&mut self, name: &'static str, work: WorkerFuture) {
        let id = self.set.spawn(work).id();
        self.names.insert(id, name);
    }

    /// Waits for the next worker to end: `None` when none is left, `Some(None)` when it
    /// finished, `Some(Some(error))` when it failed or panicked (logged here).
    async fn next(&mut self) -> Option<Option<DaemonError>> {
        let joined = self.set.join_next_with_id().await?;
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let worker = self.names.remove(&id).unwrap_or("unknown");
        Some(match joined {
            Ok((_, Ok(()))) => {
                tracing::debug!(worker, "worker finished");
                None
            }
            Ok((_, Err(source))) => {
                tracing::error!(worker, error = %crate::error::chain(&source), "worker failed; the daemon stops");
                Some(DaemonError::Worker { worker, source })
            }
            Err(e) if e.is_cancelled() => None,
            Err(e) => {
                tracing::error!(worker, error = %e, "worker panicked; the daemon stops");
                Some(DaemonError::Panicked { worker })
            }
        })
    }
}

/// Keeps the daemon's memory, and so the secrets in it, out of swap (`mlockall`, pages
/// locked as they are first touched), where the kernel lets it lock as much as it needs:
/// with `CAP_IPC_LOCK`, or no limit on locked memory. Under a limit, locking all future
/// memory would make allocations fail once it is reached; then nothing is locked, and the
/// reason is given.
fn lock_memory() -> Result<(), String> {
    use nix::libc;
    const CAP_IPC_LOCK: u32 = 14;
    let capable = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let unlimited = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0
        && limit.rlim_cur == libc::RLIM_INFINITY;
    if !capable && !unlimited {
        return Err(format!(
            "locked memory is limited to {} KB here (RLIMIT_MEMLOCK, and no CAP_IPC_LOCK); run the container with --cap-add=IPC_LOCK or --ulimit memlock=-1 to keep secrets out of swap",
            limit.rlim_cur / 1024
        ));
    }
    // SAFETY: mlockall takes flags only.
    let r = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) };
    if r == 0 {
        Ok(())
    } else {
        Err(format!("mlockall: {}", std::io::Error::last_os_error()))
    }
}

/// The pid of the running daemon: for its own user, from its lock file if it holds the
/// lock; for others (the lock is the daemon's alone), the last daemon the record names,
/// if that process is alive.
pub fn running_pid(state: &StateDir) -> Option<u32> {
    let file = match std::fs::File::open(state.lock()) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return recorded_pid_alive(state);
        }
        Err(_) => return None,
    };
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock) {
        Ok(_) => None, // nobody holds it
        Err((_, _)) => std::fs::read_to_string(state.lock())
            .ok()?
            .trim()
            .parse()
            .ok(),
    }
}

/// The pid of the last daemon started and not stopped in the record, if it is alive.
fn recorded_pid_alive(state: &StateDir) -> Option<u32> {
    let pid = state.read_all().iter().rev().find_map(|r| match r.event {
        Event::DaemonStarted { pid, .. } => Some(Some(pid)),
        Event::DaemonStopped { .. } => Some(None),
        _ => None,
    })??;
    // Signal 0 checks that the process exists (EPERM: as another user's); one that has
    // exited but not been reaped yet (a zombie) no longer runs.
    let exists = matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None),
        Ok(()) | Err(nix::errno::Errno::EPERM)
    );
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(false);
    (exists && !zombie).then_some(pid)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        crate::runtime().unwrap()
    }

    #[test]
    fn a_fatal_error_names_its_worker_and_its_cause() {
        runtime().block_on(async {
            let mut workers = Workers::default();
            workers.spawn(
                "signals",
                Box::pin(async {
                    Err(Fatal::Signal {
                        signal: "SIGTERM",
                        source: std::io::Error::other("no signal driver"),
                    })
                }),
            );
            let ended = workers.next().await.expect("one worker");
            let e = ended.expect("a fatal error stops the daemon");
            assert_eq!(
                crate::error::chain(&e),
                "worker signals failed: cannot listen for SIGTERM: no signal driver"
            );
            assert!(workers.next().await.is_none());
        });
    }

    #[test]
    fn a_worker_that_finishes_is_no_failure_and_a_panic_is_named() {
        runtime().block_on(async {
            let mut workers = Workers::default();
            workers.spawn("listener", Box::pin(async { Ok(()) }));
            assert!(matches!(workers.next().await, Some(None)));
            workers.spawn("keeper", Box::pin(async { panic!("a bug") }));
            let ended = workers.next().await.expect("one worker");
            assert!(
                matches!(ended, Some(DaemonError::Panicked { worker: "keeper" })),
                "{ended:?}"
            );
        });
    }
}
