//! The daemon's shared state and its handling of hooks.
//!
//! [`Core`] is what the workers share: the [`Lifecycle`], what the daemon remembers (phases
//! seen, when each ECR token was obtained: replayed from the event record at start, so a
//! restarted daemon does not redo work), the engine's state, and the channels to the
//! renewer. A hook's request is handled here from start to end, with bounded waits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::docker_config::DockerConfig;
use crate::engine::{DockerHost, Engine, EngineTarget};
use crate::inject::{Login, Target};
use crate::lifecycle::{Caller, HookInput, Lifecycle, Sink, now_ms, say};
use crate::phase::Phase;
use crate::protocol::Level;
use crate::pull::PullSpec;
use crate::registry::RegistryKind;
use crate::secrets::{Discovery, Registry};
use crate::state::{Event, Record, time_of};
use crate::status::{DaemonInfo, PullStatus, Status};

/// Where the engine stands.
#[derive(Clone, Debug)]
pub enum EngineState {
    /// Not answering yet; why.
    Waiting(String),
    /// Answering berth; with why the remote user cannot open it, if they cannot.
    Ready(Engine, Option<String>),
}

/// A token to keep fresh.
#[derive(Clone, Debug)]
pub struct RenewJob {
    /// The registry.
    pub registry: Registry,
    /// Whose config to rewrite.
    pub target: Target,
    /// ECR endpoints in force.
    pub endpoints: crate::ecr::EndpointVars,
    /// When the current token was obtained.
    pub obtained_at: SystemTime,
    /// When it expires.
    pub expires_at: Option<SystemTime>,
}

/// Receivers handed to the workers.
pub struct Channels {
    /// Renewal jobs.
    pub renew: mpsc::Receiver<RenewJob>,
    /// Images to pull.
    pub pulls: mpsc::Receiver<Vec<PullSpec>>,
}

/// Every pull this daemon knows of, by image.
pub type Board = BTreeMap<String, PullStatus>;

/// When a token was obtained and expires (ms since the epoch).
#[derive(Clone, Copy, Debug)]
struct TokenMemo {
    obtained_at: u64,
    expires_at: Option<u64>,
    /// A keyed hash of the access keys it came from, when known in this process.
    keys: Option<u64>,
}

/// What the daemon remembers.
#[derive(Default)]
pub(super) struct Memory {
    /// Bytes of the event record already read.
    offset: u64,
    /// Phases seen since the container was created.
    phases: BTreeSet<Phase>,
    /// ECR tokens, by registry key.
    tokens: HashMap<String, TokenMemo>,
    /// Digests of images pulled, by image.
    pub(super) pulled: HashMap<String, String>,
    /// Images whose pull was refused for good, with their registry's stamp then and why.
    pub(super) failed_for_good: HashMap<String, (u64, String)>,
    /// ECR tokens obtained for early pulls, not written yet, by registry key: the
    /// injection reuses them.
    pub(super) early: HashMap<String, Login>,
    /// The login of every entry berth wrote and keeps in place, by registry key, with its
    /// identifier: the keeper puts an entry back when another writer drops it, and pulls
    /// use the current ECR token (which the renewer keeps fresh). An entry the user
    /// pruned, or whose secrets a later hook no longer has, is forgotten.
    pub(super) written: HashMap<String, crate::inject::KeptEntry>,
    /// The logins checked with their registries since the daemon started, as keyed
    /// hashes, by registry key: a login is checked once, when it is new.
    checked: HashMap<String, u64>,
    /// Login checks under way.
    checks_running: usize,
    /// What registries answered to login checks, not yet said by a hook: the next hook
    /// says it.
    untold: Vec<LoginChecked>,
}

/// How long a login check may take (a registry that does not answer).
const CHECK_BOUND: Duration = Duration::from_secs(30);

/// What a registry said of a login.
#[derive(Clone, Debug)]
pub struct LoginChecked {
    /// The secret identifier.
    pub id: String,
    /// The registry key.
    pub server: String,
    /// Whether it accepted the login.
    pub accepted: bool,
    /// What the check found.
    pub found: String,
    /// What to do, for a refusal.
    pub fix: Option<String>,
}

/// The daemon's shared state.
pub struct Core {
    /// What every phase needs.
    pub life: Lifecycle,
    /// The daemon's stop.
    pub cancel: CancellationToken,
    pub(super) inject_lock: tokio::sync::Mutex<()>,
    /// The engine's state.
    pub engine: watch::Sender<EngineState>,
    /// The engine to wait for (a hook may name another one).
    pub engine_host: watch::Sender<Option<EngineTarget>>,
    renew_tx: mpsc::Sender<RenewJob>,
    pub(super) pull_tx: mpsc::Sender<Vec<PullSpec>>,
    /// The pulls, for status and waiting.
    pub pulls: watch::Sender<Board>,
    /// What every pull into the engine shares (its registry client, whose per-registry
    /// answers are kept), made at the first pull into it.
    pub(super) puller: tokio::sync::Mutex<Option<(DockerHost, String, crate::pull::Puller)>>,
    /// The config whose entries the keeper keeps in place, once berth wrote one.
    pub guard: watch::Sender<Option<Target>>,
    pub(super) memory: Mutex<Memory>,
    hasher: std::collections::hash_map::RandomState,
    checker: std::sync::OnceLock<reqwest::Client>,
}

impl Core {
    /// A core that knows what the event record tells.
    pub fn new(life: Lifecycle, cancel: CancellationToken) -> (Core, Channels) {
        let (renew_tx, renew) = mpsc::channel(64);
        let (pull_tx, pulls) = mpsc::channel(64);
        let host = life.expected_engine(None);
        let core = Core {
            life,
            cancel,
            inject_lock: tokio::sync::Mutex::new(()),
            engine: watch::channel(EngineState::Waiting("not checked yet".into())).0,
            engine_host: watch::channel(host).0,
            renew_tx,
            pull_tx,
            pulls: watch::channel(Board::new()).0,
            puller: tokio::sync::Mutex::new(None),
            guard: watch::channel(None).0,
            memory: Mutex::new(Memory::default()),
            hasher: Default::default(),
            checker: std::sync::OnceLock::new(),
        };
        core.catch_up();
        (core, Channels { renew, pulls })
    }

    /// Reads events appended since the last call (by this daemon, a hook working alone, or
    /// an earlier daemon) into memory.
    pub fn catch_up(&self) {
        let Some(state) = &self.life.state else {
            return;
        };
        let mut mem = self.memory.lock().expect("memory lock");
        let (records, offset) = state.read_from(mem.offset);
        if offset < mem.offset {
            *mem = Memory::default();
        }
        mem.offset = offset;
        for r in &records {
            apply(&mut mem, r);
        }
    }

    /// Work at container start (the entrypoint's request, with the secrets of the
    /// container's environment): with `injectAt=start`, or once the container was created,
    /// write credentials if those secrets or Codespaces' files name registries.
    pub async fn start(
        self: &Arc<Self>,
        secrets: Vec<crate::protocol::WireSecret>,
        caller: Caller,
    ) -> bool {
        let phases = self.memory.lock().expect("memory lock").phases.clone();
        if !phases.is_empty() {
            tracing::info!(phases = ?phases, "restored the lifecycle so far");
        }
        let after_creation = phases.contains(&Phase::PostCreate);
        if !(self.life.injects_at_start() || after_creation) {
            return true;
        }
        let (input, _) = HookInput::checked(
            None,
            secrets,
            Default::default(),
            None,
            caller,
            &self.life.remote,
        );
        let mut log_only = |_: Level, _: String| {};
        let discovery = self.life.discover(&input, &mut log_only).await;
        if discovery.registries.is_empty() {
            return true;
        }
        let ecr_wait = self.life.plan(&input).ecr_wait;
        self.inject(&input, &discovery, ecr_wait, &mut log_only)
            .await
    }

    /// Handles one hook from start to end, as [`Lifecycle::plan`] decides for its phase;
    /// `false` if anything berth tried failed.
    pub async fn handle_hook(self: &Arc<Self>, input: HookInput, sink: Sink<'_>) -> bool {
        let phase = input.phase.unwrap_or(Phase::PostStart);
        let plan = self.life.plan(&input);
        if let Some(target) = &input.engine {
            self.engine_host.send_if_modified(|cur| {
                let changed = cur.as_ref() != Some(target);
                *cur = Some(target.clone());
                changed
            });
        }
        let discovery = self.life.discover(&input, sink).await;
        self.life.begin(&input, &discovery, sink);
        // A phase handed over may reach a new daemon after a later one (its courier and the
        // later hook came together): the credentials that one wrote are not deferred.
        let overtaken = {
            let mut mem = self.memory.lock().expect("memory lock");
            let later = mem
                .phases
                .iter()
                .any(|p| *p > phase && self.life.injects(*p));
            mem.phases.insert(phase);
            later
        };
        let mut ok = discovery.findings.iter().all(|f| !f.is_fatal_for_set());
        if plan.write {
            ok &= self.inject(&input, &discovery, plan.ecr_wait, sink).await;
        } else {
            if !overtaken {
                self.life.defer(phase, sink);
            }
            if plan.pull_early {
                self.pull_early(&input, &discovery, plan.ecr_wait, sink)
                    .await;
            }
            self.say_engine(&input, sink).await;
        }
        if plan.wait_engine.is_some() {
            ok &= self.wait_engine(&input, sink).await;
        }
        if let Some(bound) = plan.wait_pulls {
            if plan.wait_engine.is_none() || matches!(*self.engine.borrow(), EngineState::Ready(..))
            {
                ok &= self.wait_pulls(input.label(), bound, sink).await;
            } else {
                say(
                    sink,
                    Level::Warn,
                    format!(
                        "berth: {}: the pre-pulls wait for the Docker engine, which did not answer; not waiting for them (berth status shows them)",
                        input.label()
                    ),
                );
                ok = false;
            }
        }
        ok &= self.say_checks(input.label(), sink);
        ok
    }

    /// Starts the checks of the logins just written (or handed to the helper): each one
    /// this daemon has not checked yet, as it is now, is asked of its registry as `docker
    /// login` would ask ([`crate::doctor::check_login`]), all in parallel, each within
    /// [`CHECK_BOUND`], beside the hook's own work (which never waits for them); ECR access
    /// keys need no check (ECR's swap proved them). Each result is recorded and logged,
    /// and said by the first hook that ends after it ([`Core::say_checks`]).
    /// Nothing is checked with `checkLogins: false`.
    fn check_logins(self: &Arc<Self>, logins: &[(Registry, Login)]) {
        if !self.life.settings.check_logins {
            return;
        }
        for (registry, login) in logins {
            let key = registry.server.config_key().to_string();
            let print =
                self.keyed_hash(&[Some(login.user.expose()), Some(login.password.expose())]);
            {
                let mut mem = self.memory.lock().expect("memory lock");
                if mem.checked.get(&key) == Some(&print) {
                    continue;
                }
                mem.checked.insert(key.clone(), print);
                mem.checks_running += 1;
            }
            let (core, registry, login) = (self.clone(), registry.clone(), login.clone());
            tokio::spawn(async move {
                let checked = if matches!(registry.kind, RegistryKind::EcrAccessKeys(_)) {
                    LoginChecked {
                        id: registry.id.clone(),
                        server: key,
                        accepted: true,
                        found: "ECR swapped its access keys for a registry token".into(),
                        fix: None,
                    }
                } else {
                    let answer = tokio::time::timeout(
                        CHECK_BOUND,
                        crate::doctor::check_login(core.checker(), &registry, &login),
                    )
                    .await;
                    let (accepted, found, fix) = match answer {
                        Ok(Ok(check)) => (true, check.found, None),
                        Ok(Err(check)) => (false, check.found, check.fix),
                        Err(_) => (
                            false,
                            format!(
                                "the registry did not answer within {} s",
                                CHECK_BOUND.as_secs()
                            ),
                            Some(
                                "check that it is up and reachable from this container; berth doctor tells more"
                                    .into(),
                            ),
                        ),
                    };
                    LoginChecked {
                        id: registry.id.clone(),
                        server: key,
                        accepted,
                        found,
                        fix,
                    }
                };
                if checked.accepted {
                    tracing::info!(id = %checked.id, server = %checked.server, found = %checked.found, "login accepted");
                } else {
                    tracing::warn!(id = %checked.id, server = %checked.server, found = %checked.found, fix = ?checked.fix, "login refused");
                }
                core.life.record(Event::LoginChecked {
                    id: checked.id.clone(),
                    server: checked.server.clone(),
                    accepted: checked.accepted,
                    found: checked.found.clone(),
                    fix: checked.fix.clone(),
                });
                let mut mem = core.memory.lock().expect("memory lock");
                mem.checks_running -= 1;
                mem.untold.push(checked);
            });
        }
    }

    /// The HTTP client of the login checks, made once (its roots are read once).
    fn checker(&self) -> &reqwest::Client {
        self.checker.get_or_init(|| {
            crate::tls::http_client(CHECK_BOUND, CHECK_BOUND)
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }

    /// Says what registries answered to the login checks no hook has told yet, and how many
    /// are still running; `false` when one refused.
    fn say_checks(&self, label: &str, sink: Sink<'_>) -> bool {
        let (told, running) = {
            let mut mem = self.memory.lock().expect("memory lock");
            (std::mem::take(&mut mem.untold), mem.checks_running)
        };
        let mut ok = true;
        for c in told {
            if c.accepted {
                say(
                    sink,
                    Level::Info,
                    format!(
                        "berth: {label}: {} ({}): the registry accepts this login",
                        c.id, c.server
                    ),
                );
                continue;
            }
            ok = false;
            let why = match &c.fix {
                Some(fix) => format!("{}; {fix}", c.found),
                None => c.found.clone(),
            };
            say(
                sink,
                Level::Error,
                format!(
                    "berth: {label}: {} ({}): the registry refused this login: {why}",
                    c.id, c.server
                ),
            );
        }
        if running > 0 {
            say(
                sink,
                Level::Info,
                format!(
                    "berth: {label}: {running} login check(s) under way (berth status, and the next phase, say what the registries answer)"
                ),
            );
        }
        ok
    }

    /// Writes credentials (one writer at a time), reusing fresh ECR tokens, and hands ECR
    /// registries to the renewer. Logins the config's lock kept out are handed to the
    /// keeper, which writes them as soon as the lock is free.
    pub async fn inject(
        self: &Arc<Self>,
        input: &HookInput,
        discovery: &Discovery,
        ecr_wait: Duration,
        sink: Sink<'_>,
    ) -> bool {
        let writer = self.inject_lock.lock().await;
        let target = self.life.target_for(input);
        let reuse = self.reusable(discovery, &target).await;
        let bound = ecr_wait;
        let Some(mut injection) = self
            .life
            .inject(input, discovery, &reuse, Some(bound), sink)
            .await
        else {
            return false;
        };
        drop(writer);
        self.remember(
            &injection.logins,
            &injection.report.registries,
            &injection.target,
            Some(discovery),
        );
        if !injection.unwritten.is_empty() {
            let ids: Vec<&str> = injection
                .unwritten
                .iter()
                .map(|(r, _)| r.id.as_str())
                .collect();
            say(
                sink,
                Level::Warn,
                format!(
                    "berth: {}: another process holds the lock of {}; berth writes the credentials of {} as soon as it is free (berth status and the log say when)",
                    input.label(),
                    injection.target.location.dir.display(),
                    ids.join(", ")
                ),
            );
            self.remember_unwritten(&injection.unwritten, &injection.target);
        }
        self.check_logins(&injection.logins);
        let pending = std::mem::take(&mut injection.pending);
        let mut usable = injection.logins.clone();
        usable.extend(injection.unwritten.iter().cloned());
        self.after_injection(&usable, &injection.target, &injection.endpoints)
            .await;
        self.request_pulls(input, &by_key(&usable), sink).await;
        if !pending.is_empty() {
            let (core, input) = (self.clone(), input.clone());
            let (target, endpoints) = (injection.target.clone(), injection.endpoints.clone());
            tokio::spawn(
                async move { core.finish_pending(input, target, endpoints, pending).await },
            );
        }
        !injection.report.has_errors()
    }

    /// Starts the pre-pulls before the credentials are written (`pullAt=early`): the logins
    /// are obtained (ECR tokens kept for the injection to reuse) and go to the engine with
    /// each pull; nothing is written.
    async fn pull_early(
        self: &Arc<Self>,
        input: &HookInput,
        discovery: &Discovery,
        ecr_wait: Duration,
        sink: Sink<'_>,
    ) {
        let target = self.life.target_for(input);
        let reuse = self.reusable(discovery, &target).await;
        let endpoints = input
            .endpoints
            .clone()
            .or(&crate::ecr::EndpointVars::from_env());
        let got = crate::inject::obtain_all(
            discovery,
            self.life.ecr_client(),
            &endpoints,
            &reuse,
            ecr_wait,
        )
        .await;
        for (id, error) in &got.failed {
            tracing::warn!(id = %id, error = %error, "no login for early pulls");
        }
        self.keep_early(&got.logins);
        self.request_pulls(input, &by_key(&got.logins), sink).await;
        if !got.pending.is_empty() {
            let (core, input) = (self.clone(), input.clone());
            tokio::spawn(async move {
                for p in got.pending {
                    let Ok(Ok(login)) = p.task.await else {
                        continue;
                    };
                    let logins = vec![(p.registry, login)];
                    core.keep_early(&logins);
                    let mut log_only = |_: Level, _: String| {};
                    core.request_pulls(&input, &by_key(&logins), &mut log_only)
                        .await;
                }
            });
        }
    }

    /// Keeps the ECR tokens of early pulls for the injection to reuse.
    fn keep_early(&self, logins: &[(Registry, Login)]) {
        for (registry, login) in logins {
            if !matches!(registry.kind, RegistryKind::EcrAccessKeys(_)) {
                continue;
            }
            let key = registry.server.config_key().to_string();
            self.note_token(registry, login);
            self.memory
                .lock()
                .expect("memory lock")
                .early
                .insert(key, login.clone());
        }
    }

    /// Writes each ECR token a hook did not wait for, when ECR answers, then renews it
    /// and pulls its images like any other.
    async fn finish_pending(
        self: Arc<Self>,
        input: HookInput,
        target: Target,
        endpoints: crate::ecr::EndpointVars,
        pending: Vec<crate::inject::PendingLogin>,
    ) {
        let mut log_only = |_: Level, _: String| {};
        let opts = self.life.settings.write_options();
        let answers = futures_util::future::join_all(pending.into_iter().map(|p| async move {
            let result = p
                .task
                .await
                .unwrap_or_else(|e| Err(crate::inject::join_failed(e)));
            (p.registry, result)
        }))
        .await;
        for (registry, result) in answers {
            let _writer = self.inject_lock.lock().await;
            match crate::inject::write_one(&target, &registry, result, opts).await {
                Ok((report, login)) => {
                    let reports = vec![report.clone()];
                    self.life.record_outcome(
                        &report,
                        &target.location.file(),
                        login.as_ref().and_then(|l| l.expires_at),
                        &mut log_only,
                    );
                    if let Some(login) = login {
                        tracing::info!(id = %registry.id, server = %registry.server, "ECR answered late; its token is written");
                        let logins = vec![(registry, login)];
                        self.remember(&logins, &reports, &target, None);
                        self.check_logins(&logins);
                        self.after_injection(&logins, &target, &endpoints).await;
                        self.request_pulls(&input, &by_key(&logins), &mut log_only)
                            .await;
                    }
                }
                Err(e) => {
                    self.life.record(Event::InjectFailed {
                        id: registry.id.clone(),
                        error: e.to_string(),
                    });
                    tracing::error!(id = %registry.id, error = %e, "cannot write a late ECR token");
                }
            }
        }
    }

    async fn after_injection(
        &self,
        logins: &[(Registry, Login)],
        target: &Target,
        endpoints: &crate::ecr::EndpointVars,
    ) {
        for (registry, login) in logins {
            if !matches!(registry.kind, RegistryKind::EcrAccessKeys(_)) {
                continue;
            }
            let key = registry.server.config_key().to_string();
            self.memory.lock().expect("memory lock").early.remove(&key);
            let memo = self.note_token(registry, login);
            let job = RenewJob {
                registry: registry.clone(),
                target: target.clone(),
                endpoints: endpoints.clone(),
                obtained_at: time_of(memo.obtained_at),
                expires_at: memo.expires_at.map(time_of),
            };
            let _ = self.renew_tx.send(job).await;
        }
    }

    /// Remembers when an ECR token was obtained and when it expires (a token seen again
    /// keeps its first time).
    fn note_token(&self, registry: &Registry, login: &Login) -> TokenMemo {
        let key = registry.server.config_key().to_string();
        let keys = Some(self.fingerprint(registry));
        let mut mem = self.memory.lock().expect("memory lock");
        let expires_at = login.expires_at.map(crate::state::millis);
        let memo = mem.tokens.entry(key).or_insert(TokenMemo {
            obtained_at: now_ms(),
            expires_at,
            keys,
        });
        if memo.expires_at != expires_at || memo.keys.is_some_and(|k| Some(k) != keys) {
            *memo = TokenMemo {
                obtained_at: now_ms(),
                expires_at,
                keys,
            };
        }
        memo.keys = keys;
        *memo
    }

    /// The ECR tokens of these registries that are not yet half-way to expiry (and came
    /// from the same keys, when this process knows them), by registry key: the ones in
    /// memory (obtained early, or written), else those in the config (read once, as its
    /// user, within a bound). Worked out before anything is written, and handed down.
    async fn reusable(&self, discovery: &Discovery, target: &Target) -> crate::inject::Reusable {
        let now = now_ms();
        let mut fresh: Vec<&Registry> = Vec::new();
        for registry in &discovery.registries {
            if !matches!(registry.kind, RegistryKind::EcrAccessKeys(_)) {
                continue;
            }
            let key = registry.server.config_key();
            let Some(memo) = self
                .memory
                .lock()
                .expect("memory lock")
                .tokens
                .get(key)
                .copied()
            else {
                continue;
            };
            if memo.keys.is_some_and(|k| k != self.fingerprint(registry)) {
                continue;
            }
            let Some(expires) = memo.expires_at else {
                continue;
            };
            let half_way = memo.obtained_at + expires.saturating_sub(memo.obtained_at) / 2;
            if now < half_way && now < expires {
                fresh.push(registry);
            }
        }
        let mut reuse = crate::inject::Reusable::new();
        let mut from_config = Vec::new();
        for registry in fresh {
            let key = registry.server.config_key().to_string();
            let in_memory = {
                let mem = self.memory.lock().expect("memory lock");
                mem.early
                    .get(&key)
                    .cloned()
                    .or_else(|| mem.written.get(&key).map(|w| w.login.clone()))
            };
            match in_memory {
                Some(login) => {
                    reuse.insert(key, login);
                }
                None => from_config.push(key),
            }
        }
        if !from_config.is_empty() {
            // The config is the remote user's: read it with their privileges.
            let location = target.location.clone();
            let keys = from_config.clone();
            let read = crate::privilege::as_user_bounded(
                &target.account,
                crate::inject::WORK_BOUND,
                move || {
                    let config = DockerConfig::load(&location).ok();
                    keys.into_iter()
                        .filter_map(|k| Some((k.clone(), config.as_ref()?.login(&k)?)))
                        .collect::<Vec<_>>()
                },
            )
            .await;
            match read {
                Ok(found) => {
                    for (key, (user, password)) in found {
                        reuse.insert(
                            key,
                            Login {
                                user,
                                password,
                                expires_at: None,
                            },
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the config for tokens to reuse; asking ECR again")
                }
            }
        }
        let mem = self.memory.lock().expect("memory lock");
        for (key, login) in &mut reuse {
            if let Some(expires) = mem.tokens.get(key).and_then(|m| m.expires_at) {
                login.expires_at = Some(time_of(expires));
                tracing::info!(server = %key, expires = %crate::status::when(expires), "reusing a fresh ECR token");
            }
        }
        reuse
    }

    /// Records a renewed token.
    pub fn renewed(&self, registry: &Registry, login: &Login, stamp: u64) {
        let key = registry.server.config_key().to_string();
        let keys = Some(self.fingerprint(registry));
        let expires_at = login.expires_at;
        let mut mem = self.memory.lock().expect("memory lock");
        keep_login(&mut mem, registry, login, stamp, stamp == 0);
        mem.tokens.insert(
            key,
            TokenMemo {
                obtained_at: now_ms(),
                expires_at: expires_at.map(crate::state::millis),
                keys,
            },
        );
    }

    /// A keyed hash of a registry's access keys, known only to this process.
    fn fingerprint(&self, registry: &Registry) -> u64 {
        self.keyed_hash(&[
            Some(registry.user.expose()),
            Some(registry.password.expose()),
            registry.session_token.as_ref().map(|t| t.expose()),
        ])
    }

    /// A hash of secret values with this process's own key: comparable within the
    /// process, meaningless outside it.
    fn keyed_hash(&self, parts: &[Option<&str>]) -> u64 {
        self.hasher.hash_one(parts)
    }

    /// What the daemon answers `docker-credential-berth get` with (credential store
    /// `helper`): the login berth holds for the registry `server` names, as it was written
    /// (an ECR token as renewed), and only to the user it was written for. Otherwise why
    /// not, in plain words; "credentials not found in native keychain" (what the Docker CLI
    /// takes for "none") when berth has nothing for that registry.
    pub fn credentials_for(&self, uid: u32, server: &str) -> Result<Login, String> {
        let account = self
            .guard
            .borrow()
            .as_ref()
            .map(|t| t.account.clone())
            .unwrap_or_else(|| self.life.remote.clone());
        if uid != account.uid.as_raw() {
            return Err(format!(
                "berth keeps registry credentials for {} only; uid {uid} gets none from it",
                account.name
            ));
        }
        let key = crate::registry::Server::parse(server)
            .map(|s| s.config_key().to_string())
            .unwrap_or_else(|_| server.to_string());
        if let Some(w) = self.memory.lock().expect("memory lock").written.get(&key) {
            return Ok(w.login.clone());
        }
        let written_before = self
            .life
            .records()
            .iter()
            .any(|r| matches!(&r.event, Event::Injected { server: s, .. } if *s == key));
        if written_before {
            return Err(format!(
                "berth has not received the secrets for {key} since its daemon started; the next lifecycle hook brings them (so do Codespaces' secret files and the secrets file, when there are)"
            ));
        }
        Err("credentials not found in native keychain".into())
    }

    /// The current login of a registry berth wrote (an ECR token, as renewed).
    pub fn current_login(&self, key: &str) -> Option<Login> {
        self.memory
            .lock()
            .expect("memory lock")
            .written
            .get(key)
            .map(|w| w.login.clone())
    }

    /// Remembers the logins just written, and the config to keep them in; with a hook's
    /// `discovery` that found registries, forgets the entries whose secrets it no longer
    /// has (a user who removed a secret set is not fought).
    fn remember(
        &self,
        logins: &[(Registry, Login)],
        reports: &[crate::inject::RegistryReport],
        target: &Target,
        discovery: Option<&Discovery>,
    ) {
        {
            let mut mem = self.memory.lock().expect("memory lock");
            if let Some(d) = discovery.filter(|d| !d.registries.is_empty()) {
                mem.written.retain(|key, w| {
                    d.registries
                        .iter()
                        .any(|r| r.id == w.id && r.server.config_key() == key)
                });
            }
            for (registry, login) in logins {
                let stamp = reports
                    .iter()
                    .find(|r| r.id == registry.id)
                    .map(|r| r.stamp)
                    .unwrap_or_default();
                keep_login(&mut mem, registry, login, stamp, false);
            }
        }
        // Always a change for the keeper: the folder is resolved again at each write (the
        // user may have replaced ~/.docker since, as Codespaces does with a link).
        self.guard.send_replace(Some(target.clone()));
    }

    /// Remembers logins the config's lock kept out: the keeper writes them when it can.
    fn remember_unwritten(&self, unwritten: &[(Registry, Login)], target: &Target) {
        {
            let mut mem = self.memory.lock().expect("memory lock");
            for (registry, login) in unwritten {
                keep_login(&mut mem, registry, login, 0, true);
            }
        }
        self.guard.send_replace(Some(target.clone()));
    }

    /// Says where the engine stands now, as the engine worker last found it: no wait, no
    /// request of its own.
    async fn say_engine(&self, input: &HookInput, sink: Sink<'_>) {
        let label = input.label();
        let state = self.engine.borrow().clone();
        if let EngineState::Ready(e, access) = &state {
            say(sink, Level::Info, answers(label, e));
            if let Some(why) = access {
                say(sink, Level::Warn, format!("berth: {label}: {why}"));
            }
            return;
        }
        let Some(target) = self.life.expected_engine(Some(input)) else {
            say(
                sink,
                Level::Info,
                format!("berth: {label}: no Docker engine in this container"),
            );
            return;
        };
        let why = match state {
            EngineState::Waiting(why) => why,
            EngineState::Ready(..) => unreachable!("handled above"),
        };
        say(
            sink,
            Level::Info,
            format!(
                "berth: {label}: the Docker engine at {target} is {why}; berth pre-pulls as soon as it answers"
            ),
        );
    }

    /// Waits, within `dockerTimeout`, until the engine answers; then says whether the
    /// remote user can use it.
    async fn wait_engine(&self, input: &HookInput, sink: Sink<'_>) -> bool {
        let label = input.label();
        let Some(target) = self.life.expected_engine(Some(input)) else {
            say(
                sink,
                Level::Info,
                format!("berth: {label}: no Docker engine in this container; not waiting for one"),
            );
            return true;
        };
        let mut rx = self.engine.subscribe();
        let ready_now = matches!(&*rx.borrow(), EngineState::Ready(..));
        let started = std::time::Instant::now();
        if !ready_now {
            let bound = self.life.settings.docker_timeout;
            say(
                sink,
                Level::Info,
                format!(
                    "berth: {label}: waiting up to {} s for the Docker engine at {target}",
                    bound.as_secs()
                ),
            );
            let ready =
                tokio::time::timeout(bound, rx.wait_for(|s| matches!(s, EngineState::Ready(..))))
                    .await;
            if !matches!(ready, Ok(Ok(_))) {
                let why = match &*self.engine.borrow() {
                    EngineState::Waiting(w) => w.clone(),
                    EngineState::Ready(..) => String::new(),
                };
                say(
                    sink,
                    Level::Warn,
                    format!(
                        "berth: {label}: the Docker engine did not answer within {} s ({why}); carrying on",
                        bound.as_secs()
                    ),
                );
                return false;
            }
        }
        let EngineState::Ready(e, access) = self.engine.borrow().clone() else {
            return false;
        };
        if ready_now {
            say(sink, Level::Info, answers(label, &e));
        } else {
            say(
                sink,
                Level::Info,
                format!(
                    "berth: {label}: Docker engine answered after {:.1} s (API {})",
                    started.elapsed().as_secs_f64(),
                    e.api_version
                ),
            );
        }
        match access {
            Some(why) => {
                say(sink, Level::Warn, format!("berth: {label}: {why}"));
                false
            }
            None => true,
        }
    }

    /// The status: the event record, with the daemon's own facts. berth's record beside
    /// the config is read as its user, within a short bound: a status never waits on a
    /// file of theirs.
    pub async fn status(&self) -> Status {
        let records = self.life.records();
        let mut status = Status::from_records(&records);
        status.overlay(&self.pulls.borrow());
        let target = self.guard.borrow().clone().unwrap_or_else(|| Target {
            location: crate::docker_config::Location::for_account(&self.life.remote, None),
            account: self.life.remote.clone(),
        });
        let location = target.location.clone();
        if let Ok(managed) = crate::privilege::as_user_bounded(
            &target.account,
            Duration::from_millis(500),
            move || crate::docker_config::Managed::load(&location),
        )
        .await
        {
            status.without_secrets = crate::status::without_secrets(&records, &managed);
        }
        if self.life.settings.credential_store == crate::inject::CredentialStore::Helper {
            let held: Vec<String> = self
                .memory
                .lock()
                .expect("memory lock")
                .written
                .keys()
                .cloned()
                .collect();
            status.awaiting_secrets = status
                .registries
                .iter()
                .filter(|r| r.injected_at.is_some() && !held.contains(&r.server))
                .map(|r| crate::status::Orphan {
                    id: r.id.clone(),
                    server: r.server.clone(),
                })
                .collect();
        }
        status.daemon = Some(DaemonInfo {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uid: Some(nix::unistd::Uid::effective().as_raw()),
        });
        status
    }
}

/// Puts a login among those berth keeps in the config (and answers its helper with).
fn keep_login(mem: &mut Memory, registry: &Registry, login: &Login, stamp: u64, pending: bool) {
    let key = registry.server.config_key().to_string();
    mem.written.insert(
        key.clone(),
        crate::inject::KeptEntry {
            key,
            id: registry.id.clone(),
            login: login.clone(),
            stamp,
            pending,
        },
    );
}

/// Logins by registry key, with their identifiers: what pulls need.
fn by_key(logins: &[(Registry, Login)]) -> HashMap<String, (String, Login)> {
    logins
        .iter()
        .map(|(r, l)| (r.server.config_key().to_string(), (r.id.clone(), l.clone())))
        .collect()
}

/// The line that says the engine answers.
fn answers(label: &str, e: &Engine) -> String {
    format!(
        "berth: {label}: Docker engine answers at {} (API {})",
        e.host, e.api_version
    )
}

/// Folds one recorded event into memory.
fn apply(mem: &mut Memory, r: &Record) {
    let (server, expires_at) = match &r.event {
        Event::Phase { phase, .. } => {
            mem.phases.insert(*phase);
            return;
        }
        Event::PullDone {
            image,
            digest: Some(d),
            ..
        } => {
            mem.pulled.insert(image.clone(), d.clone());
            mem.failed_for_good.remove(image);
            return;
        }
        Event::PullFailed {
            image,
            error,
            permanent,
            stamp,
            ..
        } => {
            if *permanent {
                mem.failed_for_good
                    .insert(image.clone(), (*stamp, error.clone()));
            } else {
                mem.failed_for_good.remove(image);
            }
            return;
        }
        Event::Injected {
            server,
            expires_at: Some(exp),
            ..
        } => (server, Some(*exp)),
        Event::Renewed {
            server, expires_at, ..
        } => (server, *expires_at),
        _ => return,
    };
    // The same token seen again (an unchanged write, or this daemon's own record) keeps
    // its first time and what this process knows of its keys.
    if mem
        .tokens
        .get(server)
        .is_some_and(|m| m.expires_at == expires_at)
    {
        return;
    }
    mem.tokens.insert(
        server.clone(),
        TokenMemo {
            obtained_at: r.at,
            expires_at,
            keys: None,
        },
    );
}
