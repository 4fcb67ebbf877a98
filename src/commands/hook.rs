//! `berth hook <phase>`: the thin client the feature's lifecycle commands run.
//!
//! It sends the phase, the registry secrets of its own environment and the few settings
//! the daemon may take to the daemon over the socket, prints the daemon's lines for the
//! creation log, and returns when the daemon says the phase's work is done. Every wait is
//! bounded.
//!
//! When no daemon answers, what it does depends on who it runs as, never on luck: a hook
//! that runs as the daemon's user (the container's, usually root) starts the daemon, with
//! a clean environment, and asks again. A hook of another user (the remote user) cannot
//! start a daemon of the right user, and never waits for the container's entrypoint to
//! start one (another feature's entrypoint may hold the chain for half a minute): it hands
//! its request to a courier ([`super::courier`]), which gives it to the daemon when it
//! runs, and does at once, with its own privileges, what the user's next command needs:
//! the credentials when this phase writes them, the engine when `waitForDocker` asks, and
//! (only with `waitForPulls`) the pre-pulls, which need the daemon. A daemon that already
//! ran in this container's life and stopped gets no courier: the hook does the phase's
//! work itself. It never fails the lifecycle unless `failOnError` is set.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use notify::Watcher as _;

use crate::daemon::start;
use crate::engine;
use crate::lifecycle::{Caller, HookInput, Lifecycle, daemon_user, say};
use crate::phase::Phase;
use crate::protocol::{
    self, Answer, CallError, HookRequest, HookSettings, Level, Request, WireSecret,
};
use crate::settings::Settings;
use crate::state::{Event, StateDir};

/// Runs a hook.
pub fn run(phase: Phase, settings: Settings) -> ExitCode {
    let started = Instant::now();
    let state = StateDir::of_daemon(settings.state_dir.as_deref());
    let bound = deadline(phase, &settings);
    let ask = |left: Duration| {
        protocol::call(
            &state.socket(),
            &Request::Hook(build_request(phase)),
            left,
            &mut |_, text| println!("{}", crate::status::printable(&text)),
        )
    };
    let mut asked = ask(bound);
    if let Err(CallError::Unreachable(why)) = &asked {
        tracing::debug!(reason = %why, "daemon unreachable");
        asked = match reach_daemon(&state) {
            Reach::Started => ask(bound.saturating_sub(started.elapsed())),
            Reach::Failed(why) => Err(CallError::Unreachable(why)),
            Reach::NotYet if phase == Phase::PostCreate && settings.wait_for_pulls => {
                // The user asked to wait for the pre-pulls, which need the daemon: wait for it.
                let left = bound.saturating_sub(started.elapsed());
                println!(
                    "berth: {phase}: berth's daemon is not running yet; waiting up to {} s for it, for the pre-pulls (waitForPulls)",
                    settings.pull_timeout.as_secs()
                );
                if wait_for_daemon(&state, settings.pull_timeout.min(left)) {
                    ask(bound.saturating_sub(started.elapsed()))
                } else {
                    Err(CallError::Unreachable(format!(
                        "no daemon listened at {} within {} s",
                        state.socket().display(),
                        settings.pull_timeout.as_secs()
                    )))
                }
            }
            Reach::NotYet => {
                let ok = hand_over(phase, &state, settings.clone());
                return finish(phase, ok, started, &settings);
            }
        };
    }
    let ok = match asked {
        Ok(Answer::Done(ok)) => ok,
        Ok(Answer::Status(_) | Answer::Credentials(..) | Answer::Missing(_)) => true,
        Ok(Answer::Refused(reason)) => {
            println!("berth: {phase}: the daemon refused this hook: {reason}");
            false
        }
        Err(CallError::TimedOut) => {
            println!(
                "berth: {phase}: the daemon did not finish within {} s; carrying on",
                bound.as_secs()
            );
            false
        }
        Err(CallError::Unreachable(why) | CallError::Denied(why)) => {
            println!(
                "berth: {phase}: the daemon cannot be reached ({why}); doing this phase's work here"
            );
            work_alone(phase, settings.clone())
        }
    };
    finish(phase, ok, started, &settings)
}

fn finish(phase: Phase, ok: bool, started: Instant, settings: &Settings) -> ExitCode {
    tracing::debug!(phase = %phase, ok, ms = started.elapsed().as_millis() as u64, "hook finished");
    if !ok && settings.fail_on_error {
        println!("berth: {phase}: failing this lifecycle command because failOnError is set");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The daemon is not running yet: hands this phase to a courier for it, and does at once
/// what the user's next command needs (see the module's description).
fn hand_over(phase: Phase, state: &StateDir, settings: Settings) -> bool {
    let mut request = build_request(phase);
    request.ran_at = Some(crate::lifecycle::now_ms());
    match super::courier::hand_over(state, &request) {
        Ok(()) => println!(
            "berth: {phase}: berth's daemon is not running yet (the container's entrypoint starts it once the features' entrypoints before berth's go on: Docker-in-Docker's waits for its engine); this phase is handed to it, and it starts the pre-pulls as soon as it runs"
        ),
        Err(e) => println!(
            "berth: {phase}: berth's daemon is not running yet, and this phase could not be handed to it ({e}); the next phase tells it"
        ),
    }
    drop(request);
    work_alone(phase, settings)
}

/// The longest a hook may take: its own bound, plus the waits this phase may do.
fn deadline(phase: Phase, s: &Settings) -> Duration {
    let mut d = s.hook_timeout;
    if phase.waits_for_docker() && s.wait_for_docker {
        d += s.docker_timeout;
    }
    if phase == Phase::PostCreate && s.wait_for_pulls {
        d += s.pull_timeout;
    }
    d
}

/// The phase, the registry secrets and the settings of this process.
fn build_request(phase: Phase) -> HookRequest {
    HookRequest {
        phase,
        secrets: WireSecret::from_environment(),
        settings: HookSettings::from_env(),
        cwd: std::env::current_dir().ok(),
        ran_at: None,
    }
}

/// What a hook can do about a daemon that does not answer.
enum Reach {
    /// This hook started it (it runs as the daemon's user).
    Started,
    /// There will be none (why).
    Failed(String),
    /// The container's entrypoint has not started it yet.
    NotYet,
}

/// Gets a daemon listening: starts one when this hook runs as the daemon's user; else the
/// entrypoint's is yet to come, unless one already ran in this container and stopped.
fn reach_daemon(state: &StateDir) -> Reach {
    if nix::unistd::Uid::effective() == daemon_user() {
        return match start::start_background() {
            Ok(_) => Reach::Started,
            Err(e) => Reach::Failed(format!(
                "{}; see {}",
                crate::error::chain(&e),
                state.log().display()
            )),
        };
    }
    if let Some(pid) = stopped_in_this_container(state) {
        return Reach::Failed(format!(
            "berth's daemon (pid {pid}) stopped; see `berth logs`"
        ));
    }
    Reach::NotYet
}

/// The pid of a daemon that started after the container did and no longer runs.
fn stopped_in_this_container(state: &StateDir) -> Option<u32> {
    if crate::daemon::running_pid(state).is_some() {
        return None;
    }
    let since = crate::state::millis(crate::container::started_at()?);
    state.read_all().iter().rev().find_map(|r| match r.event {
        Event::DaemonStarted { pid, .. } if r.at >= since => Some(pid),
        _ => None,
    })
}

/// Waits, within `bound`, until a daemon accepts connections on the state folder's
/// socket, watching the folder (or, while it is missing, its nearest ancestor) for
/// changes rather than polling.
pub(super) fn wait_for_daemon(state: &StateDir, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    let (tx, rx) = std::sync::mpsc::channel();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.as_ref().map_or(true, engine::is_change) {
            let _ = tx.send(());
        }
    });
    let Ok(mut watcher) = watcher else {
        return false;
    };
    let mut watched: Option<PathBuf> = None;
    loop {
        let dir = nearest_folder(&state.path);
        if watched.as_ref() != Some(&dir) {
            if let Some(old) = watched.take() {
                let _ = watcher.unwatch(&old);
            }
            if watcher
                .watch(&dir, notify::RecursiveMode::NonRecursive)
                .is_err()
            {
                return false;
            }
            watched = Some(dir);
        }
        // Checked after the watch is in place, so that no change is missed.
        if UnixStream::connect(state.socket()).is_ok() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || rx.recv_timeout(left).is_err() {
            return false;
        }
        while rx.try_recv().is_ok() {}
    }
}

fn nearest_folder(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|a| a.is_dir())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// The phase's work without a daemon, with this process's privileges: record it (when
/// this is the daemon's user), write credentials or explain the delay, and wait for the
/// engine when asked.
fn work_alone(phase: Phase, settings: Settings) -> bool {
    let life = match Lifecycle::for_hook(settings) {
        Ok(l) => l,
        Err(e) => {
            println!("berth: {phase}: {e:#}");
            return false;
        }
    };
    crate::logging::init(crate::logging::LogTarget {
        level: life.settings.log_level.clone(),
        stderr: false,
        file: life.state.as_ref().and_then(|s| s.open_log().ok()),
    });
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(e) => {
            println!("berth: {phase}: {e}");
            return false;
        }
    };
    let (input, _) = HookInput::checked(
        Some(phase),
        WireSecret::from_environment(),
        HookSettings::from_env(),
        std::env::current_dir().ok(),
        Caller::this_process(),
        &life.remote,
    );
    let mut sink = |_: Level, text: String| println!("{}", crate::status::printable(&text));
    let plan = life.plan(&input);
    runtime.block_on(async {
        let discovery = life.discover(&input, &mut sink).await;
        life.begin(&input, &discovery, &mut sink);
        let mut ok = discovery.findings.iter().all(|f| !f.is_fatal_for_set());
        if plan.write {
            ok &= life
                .inject(
                    &input,
                    &discovery,
                    &crate::inject::Reusable::new(),
                    None,
                    &mut sink,
                )
                .await
                .is_some_and(|i| !i.report.has_errors());
        } else {
            life.defer(phase, &mut sink);
        }
        if plan.wait_engine.is_some()
            && let Some(target) = life.expected_engine(Some(&input))
        {
            let bound = life.settings.docker_timeout;
            say(
                &mut sink,
                Level::Info,
                format!(
                    "berth: {phase}: waiting up to {} s for the Docker engine at {target}",
                    bound.as_secs()
                ),
            );
            match engine::wait_ready(&target, bound, &Default::default()).await {
                Ok(e) => {
                    say(
                        &mut sink,
                        Level::Info,
                        format!(
                            "berth: {phase}: Docker engine answers (API {})",
                            e.api_version
                        ),
                    );
                    if let Some(why) = engine::user_access(&target, &life.remote).await {
                        say(&mut sink, Level::Warn, format!("berth: {phase}: {why}"));
                        ok = false;
                    }
                }
                Err(e) => {
                    say(
                        &mut sink,
                        Level::Warn,
                        format!("berth: {phase}: {e}; carrying on"),
                    );
                    ok = false;
                }
            }
        }
        if plan.wait_pulls.is_some() {
            say(
                &mut sink,
                Level::Warn,
                format!("berth: {phase}: pre-pulls need the daemon, which is not running; skipped"),
            );
        }
        ok
    })
}
