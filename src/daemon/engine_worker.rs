//! The `engine` worker: waits for the Docker engine and publishes its state.
//!
//! The engine usually starts beside berth (Docker-in-Docker), or never exists. The worker
//! waits for its socket to appear by watching the folder (no CPU while there is none), then
//! pings within `dockerTimeout`; an engine that exists but does not answer is retried with
//! a growing pause. Once it answers, the worker checks whether the remote user can open it
//! too (as that user), so that hooks and `berth status` can say so. Hooks and pulls wait
//! on the published state, never on their own.

use std::sync::Arc;
use std::time::Duration;

use super::core::EngineState;
use super::{Core, Fatal};
use crate::engine::{self, EngineError};
use crate::state::Event;

/// Runs until the daemon stops.
pub async fn run(core: Arc<Core>) -> Result<(), Fatal> {
    let mut host_rx = core.engine_host.subscribe();
    let mut pause = Duration::from_secs(5);
    loop {
        let target = host_rx.borrow_and_update().clone();
        let Some(target) = target else {
            core.engine.send_replace(EngineState::Waiting(
                "no Docker engine in this container".into(),
            ));
            tokio::select! {
                _ = core.cancel.cancelled() => return Ok(()),
                r = host_rx.changed() => { if r.is_err() { return Ok(()); } continue; }
            }
        };
        if let (engine::DockerHost::Unix(path), None) = (&target.host, &target.user) {
            if !path.exists() {
                core.engine.send_replace(EngineState::Waiting(format!(
                    "not started yet ({} does not exist)",
                    path.display()
                )));
            }
            let waited = tokio::select! {
                _ = core.cancel.cancelled() => return Ok(()),
                _ = host_rx.changed() => continue,
                r = engine::wait_for_path(path) => r,
            };
            if let Err(e) = waited {
                // The socket's folder cannot be watched: ask the engine anyway, below,
                // and retry as for an engine that does not answer.
                super::survived("engine", "cannot watch for the engine's socket", &e);
            }
        }
        core.engine.send_replace(EngineState::Waiting(
            if target.user.is_none() {
                "starting (its socket exists; it does not answer yet)"
            } else {
                "not answering yet"
            }
            .into(),
        ));
        let bound = core.life.settings.docker_timeout;
        let result = tokio::select! {
            _ = host_rx.changed() => continue,
            r = engine::wait_ready(&target, bound, &core.cancel) => r,
        };
        match result {
            Ok(engine) => {
                // A connect as the remote user, in a thread of its own: microseconds, and no
                // blocking pool left idling behind.
                let user_access = engine::user_access(&target, &core.life.remote).await;
                match &user_access {
                    None => {
                        tracing::info!(host = %engine.host, api = %engine.api_version, "docker engine answers")
                    }
                    Some(why) => {
                        tracing::warn!(host = %engine.host, api = %engine.api_version, problem = %why, "docker engine answers berth, not the remote user")
                    }
                }
                core.life.record(Event::EngineReady {
                    host: engine.host.to_string(),
                    api_version: engine.api_version.clone(),
                    user_access: user_access.clone(),
                });
                core.engine
                    .send_replace(EngineState::Ready(engine, user_access));
                // Until another engine is named, or the daemon stops.
                tokio::select! {
                    _ = core.cancel.cancelled() => return Ok(()),
                    r = host_rx.changed() => { if r.is_err() { return Ok(()); } }
                }
            }
            Err(EngineError::Cancelled) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = pause.as_secs(), "docker engine not ready");
                core.engine
                    .send_replace(EngineState::Waiting(format!("not answering ({e})")));
                tokio::select! {
                    _ = core.cancel.cancelled() => return Ok(()),
                    _ = host_rx.changed() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(120));
            }
        }
    }
}
