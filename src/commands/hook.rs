//! `berth hook <phase>`: the thin client the feature's lifecycle commands run.
//!
//! It sends the phase, the registry secrets of its own environment and the few settings
//! the daemon may take to the daemon over the socket, prints the daemon's lines for the
//! creation log, and returns when the daemon says the phase's work is done. Every wait is
//! bounded.
//!
//! When no daemon answers, what it does depends on who it runs as, never on luck: a hook
//! that runs as the daemon's user (the container's, usually root) starts the daemon, with
//! a clean environment, and asks again; a hook of another user (the remote user) cannot
//! start a daemon of the right user, so it waits for the container's entrypoint to start
//! it (as happens when another feature's entrypoint holds the chain), unless the record
//! shows the daemon already ran in this container's life and stopped. If that fails too it
//! does the phase's work itself, with its own privileges. It never fails the lifecycle
//! unless `failOnError` is set.

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
        asked = match reach_daemon(phase, &state, &settings) {
            Ok(()) => ask(bound.saturating_sub(started.elapsed())),
            Err(why) => Err(CallError::Unreachable(why)),
        };
    }
    let ok = match asked {
        Ok(Answer::Done(ok)) => ok,
        Ok(Answer::Status(_)) => true,
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
    tracing::debug!(phase = %phase, ok, ms = started.elapsed().as_millis() as u64, "hook finished");
    if !ok && settings.fail_on_error {
        println!("berth: {phase}: failing this lifecycle command because failOnError is set");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
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
    }
}

/// Gets a daemon listening: starts one when this hook runs as the daemon's user, else
/// waits for the entrypoint's. `Err` says why there will be none.
fn reach_daemon(phase: Phase, state: &StateDir, settings: &Settings) -> Result<(), String> {
    if nix::unistd::Uid::effective() == daemon_user() {
        return start::start_background()
            .map(drop)
            .map_err(|e| format!("{}; see {}", crate::error::chain(&e), state.log().display()));
    }
    if let Some(pid) = stopped_in_this_container(state) {
        return Err(format!(
            "berth's daemon (pid {pid}) stopped; see `berth logs`"
        ));
    }
    let bound = settings.hook_timeout;
    println!(
        "berth: {phase}: waiting up to {} s for berth's daemon, which the container's entrypoint starts",
        bound.as_secs()
    );
    if wait_for_daemon(state, bound) {
        Ok(())
    } else {
        Err(format!(
            "no daemon listened at {} within {} s",
            state.socket().display(),
            bound.as_secs()
        ))
    }
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
fn wait_for_daemon(state: &StateDir, bound: Duration) -> bool {
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
