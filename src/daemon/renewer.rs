//! The `renewer` worker: keeps ECR tokens fresh.
//!
//! Each ECR registry with access keys gets one renewal loop ([`crate::ecr::renewal`]): a new
//! job for a registry replaces its loop. A renewed token is written to the config like any
//! login; a failed renewal is recorded and leaves the last good token in place.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::core::RenewJob;
use super::{Core, Fatal};
use crate::clock::SystemClock;
use crate::ecr::renewal::{self, Renewal, Schedule};
use crate::inject::{self, Entry, Login};
use crate::registry::RegistryKind;
use crate::state::{Event, millis};

/// Runs until the daemon stops.
pub async fn run(core: Arc<Core>, mut jobs: mpsc::Receiver<RenewJob>) -> Result<(), Fatal> {
    let mut loops: HashMap<String, CancellationToken> = HashMap::new();
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = core.cancel.cancelled() => break,
            job = jobs.recv() => {
                let Some(job) = job else { break };
                let id = job.registry.id.clone();
                if let Some(old) = loops.remove(&id) {
                    old.cancel();
                }
                let token = core.cancel.child_token();
                loops.insert(id, token.clone());
                tasks.spawn(renew(core.clone(), job, token));
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    for t in loops.values() {
        t.cancel();
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn renew(core: Arc<Core>, job: RenewJob, cancel: CancellationToken) {
    let RegistryKind::EcrAccessKeys(host) = &job.registry.kind else {
        return;
    };
    let schedule = Schedule::default();
    let client = core.life.ecr_client().clone();
    let endpoint = job.endpoints.endpoint_for(host);
    let since = std::time::SystemTime::now()
        .duration_since(job.obtained_at)
        .unwrap_or_default();
    let first = schedule
        .after_success(job.obtained_at, job.expires_at)
        .saturating_sub(since);
    tracing::info!(id = %job.registry.id, next_in = first.as_secs(), "token renewal scheduled");
    let registry = &job.registry;
    let key = registry.server.config_key().to_string();
    let fetch = || {
        let request = inject::token_request(registry, host, &endpoint);
        let client = client.clone();
        async move { client.get_authorization_token(&request).await }
    };
    // A renewed token is written off the renewal loop (the config's user may make the
    // write wait, up to its bound): the loop goes on with its schedule meanwhile.
    let apply = |r: Renewal<'_>| match r {
        Renewal::Renewed(token) => {
            let login = Login {
                user: token.user.clone(),
                password: token.password.clone(),
                expires_at: token.expires_at,
            };
            let (core, registry, target) = (core.clone(), registry.clone(), job.target.clone());
            let key = key.clone();
            tokio::spawn(async move { write_renewed(core, registry, target, key, login).await });
        }
        Renewal::Failed(e) => {
            core.life.record(Event::RenewFailed {
                id: registry.id.clone(),
                error: e.to_string(),
            });
            tracing::warn!(id = %registry.id, error = %e, "token renewal failed; the last token stays");
        }
    };
    renewal::run(&SystemClock, &schedule, &cancel, first, fetch, apply).await;
}

/// Writes a renewed token into the config. When the config's lock is held, the token is
/// remembered as pending and the keeper writes it as soon as it can; pulls use it at once.
async fn write_renewed(
    core: Arc<Core>,
    registry: crate::secrets::Registry,
    target: crate::inject::Target,
    key: String,
    login: Login,
) {
    let entry = Entry {
        id: registry.id.clone(),
        key: key.clone(),
        login: login.clone(),
    };
    let opts = core.life.settings.write_options();
    if opts.store == inject::CredentialStore::Helper {
        // Nothing on disk holds the token: the one in memory is replaced, and the helper
        // answers with it from now on.
        let stamp = core.stamp_of(&key);
        core.renewed(&registry, &login, stamp);
        core.life.record(Event::Renewed {
            id: registry.id.clone(),
            server: key,
            expires_at: login.expires_at.map(millis),
        });
        tracing::info!(id = %registry.id, "token renewed (in memory: credentialStore is helper)");
        return;
    }
    let written = {
        let _writer = core.inject_lock.lock().await;
        inject::write_entries(&target, vec![entry], opts).await
    };
    match written {
        Ok(written) => {
            let stamp = written
                .stamps
                .iter()
                .find(|(k, _)| k == &key)
                .map(|(_, s)| *s)
                .unwrap_or_default();
            core.renewed(&registry, &login, stamp);
            core.life.record(Event::Renewed {
                id: registry.id.clone(),
                server: key,
                expires_at: login.expires_at.map(millis),
            });
            tracing::info!(id = %registry.id, "token renewed");
        }
        Err(e) if e.is_lock_held() => {
            core.renewed(&registry, &login, 0);
            core.guard.send_replace(Some(target));
            core.life.record(Event::Renewed {
                id: registry.id.clone(),
                server: key,
                expires_at: login.expires_at.map(millis),
            });
            tracing::info!(id = %registry.id, error = %e, "token renewed; the config's lock is held, so the keeper writes it as soon as it is free");
        }
        Err(e) => {
            core.life.record(Event::RenewFailed {
                id: registry.id.clone(),
                error: e.to_string(),
            });
            tracing::warn!(id = %registry.id, error = %e, "renewed token not written");
        }
    }
}
