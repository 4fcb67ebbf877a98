//! `berth hook <phase>`: the thin client the feature's lifecycle commands run.
//!
//! It sends the phase and the registry secrets of its own environment to the daemon over
//! the socket, prints the daemon's lines for the creation log, and returns when the daemon
//! says the phase's work is done. Every wait is bounded. If the daemon cannot be reached it
//! starts one and asks again; if that fails too it does the phase's work itself. It never
//! fails the lifecycle unless `failOnError` is set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::engine;
use crate::lifecycle::{HookInput, Lifecycle, say};
use crate::phase::Phase;
use crate::protocol::{
    FORWARDED_VARS, HookRequest, Level, MAX_LINE, Request, Response, WireSecret,
};
use crate::secrets;
use crate::settings::Settings;
use crate::state::{Handler, StateDir};

/// How asking the daemon went.
enum Asked {
    /// It finished, well or not.
    Done(bool),
    /// It refused this user.
    Refused(String),
    /// It did not finish in time.
    TimedOut,
    /// It could not be reached, or went away before finishing.
    Unreachable(String),
}

/// Runs a hook.
pub fn run(phase: Phase, settings: Settings) -> ExitCode {
    let started = Instant::now();
    let state = StateDir::new(settings.state_dir.clone());
    let bound = deadline(phase, &settings);
    let request = || Request::Hook(build_request(phase));
    let mut asked = ask(&state.socket(), &request(), bound);
    if let Asked::Unreachable(why) = &asked {
        tracing::debug!(reason = %why, "daemon unreachable; starting one");
        if start_daemon() {
            asked = ask(
                &state.socket(),
                &request(),
                bound.saturating_sub(started.elapsed()),
            );
        }
    }
    let ok = match asked {
        Asked::Done(ok) => ok,
        Asked::Refused(reason) => {
            println!("berth: {phase}: the daemon refused this hook: {reason}");
            false
        }
        Asked::TimedOut => {
            println!(
                "berth: {phase}: the daemon did not finish within {} s; carrying on",
                bound.as_secs()
            );
            false
        }
        Asked::Unreachable(why) => {
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

/// The phase, the registry secrets and the forwarded variables of this process.
fn build_request(phase: Phase) -> HookRequest {
    HookRequest {
        phase,
        secrets: secrets::from_environment()
            .into_iter()
            .map(|s| WireSecret {
                name: s.name,
                value: s.value,
            })
            .collect(),
        env: forwarded_env(),
        cwd: std::env::current_dir().ok(),
    }
}

fn forwarded_env() -> BTreeMap<String, String> {
    FORWARDED_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// Sends one request and prints the answer's lines until it is done or `bound` passes.
fn ask(socket: &Path, request: &Request, bound: Duration) -> Asked {
    let deadline = Instant::now() + bound;
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => return Asked::Unreachable(format!("{}: {e}", socket.display())),
    };
    let mut line = match serde_json::to_vec(request) {
        Ok(l) => l,
        Err(e) => return Asked::Unreachable(e.to_string()),
    };
    line.push(b'\n');
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    // A daemon that refuses this user answers before reading: the write may then fail,
    // and the answer is still there to read.
    let written = stream.write_all(&line);
    let mut reader = BufReader::new(stream);
    let mut buf = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Asked::TimedOut;
        }
        let _ = reader.get_ref().set_read_timeout(Some(left));
        buf.clear();
        match (&mut reader).take(MAX_LINE as u64).read_line(&mut buf) {
            Ok(0) => {
                return Asked::Unreachable(match &written {
                    Err(e) => e.to_string(),
                    Ok(()) => "the daemon closed the connection before finishing".into(),
                });
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Asked::TimedOut;
            }
            Err(e) => return Asked::Unreachable(written.err().unwrap_or(e).to_string()),
        }
        match serde_json::from_str::<Response>(&buf) {
            Ok(Response::Line { text, .. }) => println!("{text}"),
            Ok(Response::Done { ok }) => return Asked::Done(ok),
            Ok(Response::Refused { reason }) => return Asked::Refused(reason),
            Ok(Response::Status(_)) => return Asked::Done(true),
            Err(e) => return Asked::Unreachable(format!("a malformed answer: {e}")),
        }
    }
}

/// Starts a daemon in the background (it waits until the daemon listens).
fn start_daemon() -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    Command::new(exe)
        .args(["daemon", "--background"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The phase's work without a daemon: record it, write credentials or explain the delay,
/// and wait for the engine when asked.
fn work_alone(phase: Phase, settings: Settings) -> bool {
    let life = match Lifecycle::new(settings, Handler::Hook) {
        Ok(l) => l,
        Err(e) => {
            println!("berth: {phase}: {e:#}");
            return false;
        }
    };
    if let Err(e) = life.state.prepare(life.owner) {
        println!(
            "berth: {phase}: cannot create {}: {e}; nothing will be recorded",
            life.state.path.display()
        );
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            println!("berth: {phase}: {e}");
            return false;
        }
    };
    let input = HookInput {
        phase: Some(phase),
        uid: nix::unistd::Uid::effective().as_raw(),
        secrets: secrets::from_environment(),
        env: forwarded_env(),
        cwd: std::env::current_dir().ok(),
    };
    let mut sink = |_: Level, text: String| println!("{text}");
    runtime.block_on(async {
        let discovery = life.discover(&input, &mut sink);
        life.begin(&input, &discovery, &mut sink);
        let mut ok = discovery.findings.iter().all(|f| !f.is_fatal_for_set());
        if life.injects(phase) {
            ok &= life
                .inject(&input, &discovery, &|_| None, &mut sink)
                .await
                .is_some_and(|i| !i.report.has_errors());
        } else {
            life.defer(phase, &mut sink);
        }
        if phase.waits_for_docker()
            && life.settings.wait_for_docker
            && let Some(host) = life.expected_engine(&input.env)
        {
            let bound = life.settings.docker_timeout;
            say(
                &mut sink,
                Level::Info,
                format!(
                    "berth: {phase}: waiting up to {} s for the Docker engine at {host}",
                    bound.as_secs()
                ),
            );
            match engine::wait_ready(&host, bound, &Default::default()).await {
                Ok(e) => say(
                    &mut sink,
                    Level::Info,
                    format!(
                        "berth: {phase}: Docker engine answers (API {})",
                        e.api_version
                    ),
                ),
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
        if phase == Phase::PostCreate && life.settings.wait_for_pulls {
            say(
                &mut sink,
                Level::Warn,
                format!("berth: {phase}: pre-pulls need the daemon, which is not running; skipped"),
            );
        }
        ok
    })
}
