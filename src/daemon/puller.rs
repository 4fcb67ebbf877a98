//! The `puller` worker: pre-pulls images once credentials are in place.
//!
//! A request (after each injection) names images; each one not already on its way is put
//! on the board as queued and pulled by its own task, which waits for the engine to
//! answer, then for one of `pullConcurrency` slots, then pulls with the registry's current
//! login. An image this container pulled before (recorded) and that the engine still holds
//! with that digest is not asked of the registry again. Progress goes to the board (for
//! `berth status` and `waitForPulls`) and, at a calm pace, to the log. The board itself,
//! and the hooks' requests and waits on it, are here too.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::core::{Board, EngineState};
use super::{Core, Fatal};
use crate::inject::Login;
use crate::lifecycle::{HookInput, Sink, say};
use crate::protocol::Level;
use crate::pull::{self, PullConfig, PullEvent, PullSpec};
use crate::state::Event;
use crate::status::{PullChange, PullState, PullStatus, human_bytes};

/// How often a pull's progress is logged.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The longest berth searches a workspace for images (discover): past it, the images
/// listed in the options are pulled and the search is given up.
const DISCOVER_BOUND: Duration = Duration::from_secs(30);

/// Runs until the daemon stops.
pub async fn run(
    core: Arc<Core>,
    mut requests: mpsc::Receiver<Vec<PullSpec>>,
) -> Result<(), Fatal> {
    let slots = Arc::new(Semaphore::new(core.life.settings.pull_concurrency));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = core.cancel.cancelled() => break,
            specs = requests.recv() => {
                let Some(specs) = specs else { break };
                for spec in specs {
                    tasks.spawn(pull_one(core.clone(), spec, slots.clone()));
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn pull_one(core: Arc<Core>, mut spec: PullSpec, slots: Arc<Semaphore>) {
    let image = spec.image.to_string();
    let mut engine_rx = core.engine.subscribe();
    let engine = tokio::select! {
        _ = core.cancel.cancelled() => return,
        state = engine_rx.wait_for(|s| matches!(s, EngineState::Ready(..))) => match state.as_deref() {
            Ok(EngineState::Ready(e, _)) => e.clone(),
            _ => return,
        },
    };
    let _slot = tokio::select! {
        _ = core.cancel.cancelled() => return,
        slot = slots.acquire() => match slot { Ok(s) => s, Err(_) => return },
    };
    let platform = core.life.settings.platform.clone();
    if let Some(digest) = core.recorded_digest(&image)
        && let Some(held) =
            pull::holds(&engine.docker, &spec.image, &digest, platform.as_ref()).await
    {
        tracing::info!(image = %image, digest = %digest, "already pulled earlier; the engine still has it");
        let platform = held.platform.map(|p| p.to_string());
        core.update_pull(
            &image,
            &PullChange::Done {
                digest: Some(digest.clone()),
                bytes: 0,
                seconds: 0.0,
                via: None,
                already_present: true,
                unverified: false,
                platform: platform.clone(),
            },
        );
        core.life.record(Event::PullDone {
            image,
            digest: Some(digest),
            bytes: 0,
            seconds: 0.0,
            already_present: true,
            via: None,
            unverified: false,
            platform,
        });
        return;
    }
    // The login as it is now (an ECR token may have been renewed while this waited).
    if let Some(login) = core.current_login(spec.image.server().config_key()) {
        spec.login = Some(login);
    }
    // Each cache's own login only: never the origin's (mirror::for_image).
    for m in &mut spec.mirrors {
        if let Some(login) = core.current_login(m.image.server().config_key()) {
            m.login = Some(login);
        }
    }
    let cfg = PullConfig {
        platform,
        deadline: core.life.settings.pull_timeout,
        mirrors_unverified: core.life.settings.mirrors_unverified,
        ..PullConfig::default()
    };
    core.life.record(Event::PullStarted {
        image: image.clone(),
    });
    tracing::info!(image = %image, registry = %spec.image.server(), credentials = spec.login.is_some(), "pulling");
    let mut last_log = Instant::now();
    let mut on = |ev: PullEvent<'_>| match ev {
        PullEvent::Cache { cache, skipped } => match skipped {
            None => tracing::info!(image = %image, cache, "pulling through the cache"),
            Some(why) => {
                tracing::warn!(image = %image, cache, reason = why, "cache passed over");
                core.update_pull(
                    &image,
                    &PullChange::CachePassed {
                        cache: cache.to_string(),
                        why: why.to_string(),
                    },
                );
            }
        },
        PullEvent::Attempt(n) => core.update_pull(&image, &PullChange::Attempt(n)),
        PullEvent::Progress(pr) => {
            core.update_pull(
                &image,
                &PullChange::Progress {
                    bytes: pr.bytes,
                    total: pr.total,
                    layers_done: pr.layers_done,
                    layers: pr.layers,
                },
            );
            if last_log.elapsed() >= LOG_EVERY {
                last_log = Instant::now();
                tracing::info!(image = %image, progress = %pr.describe(), "pull progress");
            }
        }
        PullEvent::Retrying {
            attempt,
            delay,
            reason,
        } => {
            core.update_pull(&image, &PullChange::Retrying(reason.to_string()));
            tracing::warn!(image = %image, attempt, retry_in_ms = delay.as_millis() as u64, reason = %reason, "pull failed; retrying");
        }
    };
    let puller = core.puller_for(&engine).await;
    match pull::pull(&puller, &spec, &cfg, &core.cancel, &mut on).await {
        Ok(done) => {
            let platform = done.platform.as_ref().map(|p| p.to_string());
            tracing::info!(
                image = %image,
                digest = done.digest.as_deref().unwrap_or("?"),
                platform = platform.as_deref().unwrap_or("?"),
                downloaded = %human_bytes(done.bytes),
                seconds = %format!("{:.1}", done.seconds),
                attempts = done.attempts,
                via = done.via.as_deref().unwrap_or("its registry"),
                unverified = done.unverified,
                "pulled"
            );
            core.update_pull(
                &image,
                &PullChange::Done {
                    digest: done.digest.clone(),
                    bytes: done.bytes,
                    seconds: done.seconds,
                    via: done.via.clone(),
                    already_present: done.already_present,
                    unverified: done.unverified,
                    platform: platform.clone(),
                },
            );
            core.life.record(Event::PullDone {
                image,
                digest: done.digest,
                bytes: done.bytes,
                seconds: done.seconds,
                already_present: done.already_present,
                via: done.via.clone(),
                unverified: done.unverified,
                platform,
            });
        }
        Err(pull::PullError::Cancelled { .. }) => {}
        Err(e) => {
            tracing::error!(image = %image, error = %e, "pull failed");
            // What berth doctor would say of it, so that the creation log says why.
            let diagnosis = crate::doctor::explain_failed_pull(
                &spec.image,
                spec.login.as_ref(),
                spec.id.as_deref(),
                &core.life.remote,
                &core.life.settings.github.host,
            )
            .await;
            let said = match &diagnosis {
                Some(d) => format!("{e}; doctor: {d}"),
                None => e.to_string(),
            };
            core.update_pull(
                &image,
                &PullChange::Failed {
                    error: said.clone(),
                    attempts: Some(e.attempts()),
                },
            );
            let permanent = matches!(e, pull::PullError::Permanent { .. });
            let stamp = core.stamp_of(spec.image.server().config_key());
            core.life.record(Event::PullFailed {
                image,
                error: said,
                attempts: e.attempts(),
                permanent,
                stamp,
            });
        }
    }
}

/// The pull board: what the hooks ask for, and what they wait on.
impl Core {
    /// The stamp of berth's entry for a registry (0 when berth wrote none).
    pub fn stamp_of(&self, key: &str) -> u64 {
        self.memory
            .lock()
            .expect("memory lock")
            .written
            .get(key)
            .map(|w| w.stamp)
            .unwrap_or_default()
    }

    /// An image that failed for good, with the stamp of its registry then and why.
    pub fn failed_for_good(&self, image: &str) -> Option<(u64, String)> {
        self.memory
            .lock()
            .expect("memory lock")
            .failed_for_good
            .get(image)
            .cloned()
    }

    /// The digest this container recorded for an image it pulled.
    /// The puller of this engine: made once (one `info` request, one registry client),
    /// shared by every pull into it, made again only for another engine.
    pub(super) async fn puller_for(&self, engine: &crate::engine::Engine) -> pull::Puller {
        let mut cached = self.puller.lock().await;
        if let Some((host, version, p)) = &*cached
            && *host == engine.host
            && *version == engine.api_version
        {
            // This engine's own client (the same socket may be reached as another user).
            return pull::Puller {
                docker: engine.docker.clone(),
                ..p.clone()
            };
        }
        let p = pull::Puller::new(engine.docker.clone()).await;
        *cached = Some((engine.host.clone(), engine.api_version.clone(), p.clone()));
        p
    }

    pub fn recorded_digest(&self, image: &str) -> Option<String> {
        self.memory
            .lock()
            .expect("memory lock")
            .pulled
            .get(image)
            .cloned()
    }

    /// Applies one change to a pull on the board, as `berth status` applies the record's.
    pub fn update_pull(&self, image: &str, change: &PullChange) {
        self.pulls.send_modify(|board| {
            board
                .entry(image.to_string())
                .or_insert_with(|| PullStatus::queued(image))
                .apply(change);
        });
    }

    /// Puts the images this phase wants on the board and hands the new ones to the puller,
    /// each with the login of its registry (by registry key, with its identifier).
    pub(super) async fn request_pulls(
        &self,
        input: &HookInput,
        logins: &HashMap<String, (String, Login)>,
        sink: Sink<'_>,
    ) {
        let settings = &self.life.settings;
        let label = input.label();
        let mut listed = settings.images.clone();
        if !input.images.is_empty() {
            // A hook's own images go only into an engine its caller could open themselves:
            // berth's access to the engine is not theirs to use.
            match self.caller_may_use_engine(input).await {
                Ok(()) => listed.extend(input.images.iter().cloned()),
                Err(why) => say(
                    sink,
                    Level::Warn,
                    format!(
                        "berth: {label}: not pulling the images this hook named ({}): {why}; the feature's images option is pulled as usual",
                        input.images.join(", ")
                    ),
                ),
            }
        }
        let workspace = settings
            .discover
            .then(|| {
                settings
                    .workspace
                    .clone()
                    .or_else(|| input.workspace.clone())
            })
            .flatten();
        let credentialed: BTreeSet<String> = logins.keys().cloned().collect();
        // The workspace is the remote user's: search it with their privileges, off the
        // runtime and within a bound.
        let discover_public = settings.discover_public;
        let wanted =
            crate::privilege::as_user_bounded(&self.life.remote, DISCOVER_BOUND, move || {
                pull::wanted(&listed, workspace.as_deref(), discover_public, &|i| {
                    credentialed.contains(i.server().config_key())
                })
            })
            .await;
        let wanted = match wanted {
            Ok(w) => w,
            Err(e) => {
                say(
                    sink,
                    Level::Warn,
                    format!("berth: {}: {e}; no images pulled", input.label()),
                );
                return;
            }
        };
        for n in wanted.invalid.iter().chain(&wanted.notes) {
            say(sink, Level::Warn, format!("berth: {label}: {n}"));
        }
        let images = wanted.images;
        if images.is_empty() {
            return;
        }
        if self.life.expected_engine(Some(input)).is_none() {
            let failed = PullChange::Failed {
                error: "no Docker engine in this container".into(),
                attempts: None,
            };
            for i in &images {
                self.update_pull(&i.to_string(), &failed);
            }
            say(
                sink,
                Level::Warn,
                format!(
                    "berth: {label}: {} image(s) to pre-pull, but no Docker engine in this container; add Docker-in-Docker",
                    images.len()
                ),
            );
            return;
        }
        let mut claimed = Vec::new();
        let mut refused = Vec::new();
        self.pulls.send_modify(|board| {
            for image in images {
                let key = image.to_string();
                if let Some((stamp, error)) = self.failed_for_good(&key)
                    && stamp == self.stamp_of(image.server().config_key())
                {
                    board
                        .entry(key.clone())
                        .or_insert_with(|| PullStatus::queued(&key))
                        .apply(&PullChange::Failed {
                            error: error.clone(),
                            attempts: None,
                        });
                    refused.push((key, error));
                    continue;
                }
                let busy = board.get(&key).is_some_and(|p| {
                    matches!(
                        p.state,
                        PullState::Queued
                            | PullState::Pulling
                            | PullState::Retrying
                            | PullState::Done
                    )
                });
                if busy {
                    continue;
                }
                board.insert(key.clone(), PullStatus::queued(&key));
                let login = logins.get(image.server().config_key());
                let mirrors =
                    crate::mirror::for_image(&image, &self.life.settings.mirrors, &|key| {
                        logins.get(key).cloned()
                    });
                claimed.push(PullSpec {
                    login: login.map(|(_, l)| l.clone()),
                    id: login.map(|(id, _)| id.clone()),
                    image,
                    mirrors,
                });
            }
        });
        for (image, error) in refused {
            say(
                sink,
                Level::Warn,
                format!(
                    "berth: {label}: not pulling {image} again: {error}; berth tries again when its registry's secrets change (or run berth pull {image})"
                ),
            );
        }
        if claimed.is_empty() {
            return;
        }
        // Images this container pulled before are checked, not pulled, while the engine
        // still holds them (after a restart, say): the line says which is which.
        let (known, new): (Vec<String>, Vec<String>) = claimed
            .iter()
            .map(|s| s.image.to_string())
            .partition(|i| self.recorded_digest(i).is_some());
        let early = input.phase.is_some_and(|p| !self.life.injects(p));
        if !new.is_empty() {
            say(
                sink,
                Level::Info,
                format!(
                    "berth: {label}: pre-pulling {}{}",
                    new.join(", "),
                    if early {
                        " now (pullAt=early: each registry's credentials go to the engine with the pull; config.json is not written before postCreate)"
                    } else {
                        ""
                    }
                ),
            );
        }
        if !known.is_empty() {
            say(
                sink,
                Level::Info,
                format!(
                    "berth: {label}: checking that the engine still holds {} (pulled before: only what it lost is pulled again; berth status shows each as already present, or its pull)",
                    known.join(", ")
                ),
            );
        }
        let _ = self.pull_tx.send(claimed).await;
    }

    /// Whether the hook's caller may open the engine the images would go into: root may,
    /// and so may a user who can open its socket with their own rights.
    async fn caller_may_use_engine(&self, input: &HookInput) -> Result<(), String> {
        if input.caller.uid == 0 {
            return Ok(());
        }
        let caller = crate::account::Account::by_uid(nix::unistd::Uid::from_raw(input.caller.uid))
            .ok_or_else(|| format!("uid {} is not in /etc/passwd", input.caller.uid))?;
        let Some(target) = self.life.expected_engine(Some(input)) else {
            return Ok(());
        };
        match crate::engine::user_access(&target, &caller).await {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }

    /// Waits, within `bound`, until no pull is queued or running, saying each result
    /// (`label` begins each line). True when every pull is done.
    pub(super) async fn wait_pulls(
        &self,
        label: &str,
        bound: std::time::Duration,
        sink: Sink<'_>,
    ) -> bool {
        let active = |b: &Board| {
            b.values().any(|p| {
                matches!(
                    p.state,
                    PullState::Queued | PullState::Pulling | PullState::Retrying
                )
            })
        };
        let mut rx = self.pulls.subscribe();
        if rx.borrow().is_empty() {
            return true;
        }
        // Pulls that had finished before this wait began are told as such: the wait took
        // no time, the pulls did.
        let waiting = active(&rx.borrow());
        if waiting {
            say(
                sink,
                Level::Info,
                format!(
                    "berth: {label}: waiting up to {} s for the pre-pulls",
                    bound.as_secs()
                ),
            );
        }
        let started = std::time::Instant::now();
        let mut told: BTreeSet<String> = BTreeSet::new();
        // A bound from outside (`berth status --wait SECONDS`) may be any number.
        let deadline = tokio::time::Instant::now()
            .checked_add(bound)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
        loop {
            let board = rx.borrow_and_update().clone();
            for (image, p) in &board {
                if told.contains(image) {
                    continue;
                }
                match p.state {
                    PullState::Done if p.checked => say(
                        sink,
                        Level::Info,
                        format!(
                            "berth: {label}: {image} {}",
                            crate::status::present_words(p.platform.as_deref())
                        ),
                    ),
                    PullState::Done => say(
                        sink,
                        Level::Info,
                        format!(
                            "berth: {label}: pulled {image} {}",
                            crate::status::pulled_words(
                                p.platform.as_deref(),
                                p.bytes,
                                p.seconds.unwrap_or_default(),
                                p.via.as_deref(),
                                p.unverified
                            )
                        ),
                    ),
                    PullState::Failed => say(
                        sink,
                        Level::Error,
                        format!("berth: {label}: {}", p.error.clone().unwrap_or_default()),
                    ),
                    _ => continue,
                }
                told.insert(image.clone());
            }
            if !active(&board) {
                let count =
                    |f: &dyn Fn(&PullStatus) -> bool| board.values().filter(|p| f(p)).count();
                let failed = count(&|p| p.state == PullState::Failed);
                let present = count(&|p| p.state == PullState::Done && p.checked);
                let pulled = count(&|p| p.state == PullState::Done && !p.checked);
                let tally = format!("{pulled} pulled, {present} already present, {failed} failed");
                let line = if waiting {
                    format!(
                        "berth: {label}: the pre-pulls finished after a wait of {:.1} s ({tally})",
                        started.elapsed().as_secs_f64()
                    )
                } else {
                    format!("berth: {label}: the pre-pulls had finished already ({tally})")
                };
                say(sink, Level::Info, line);
                return failed == 0;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                say(
                    sink,
                    Level::Warn,
                    format!(
                        "berth: {label}: pre-pulls still running after {} s; carrying on (berth status shows them)",
                        bound.as_secs()
                    ),
                );
                return false;
            }
        }
    }
}
