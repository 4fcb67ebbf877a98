//! What berth does when a lifecycle phase's hook runs, whoever does it.
//!
//! The daemon normally handles a hook; when it cannot be reached, the hook does the same
//! work itself. Both go through [`Lifecycle`]: record the phase, write credentials if this
//! phase is the one (`injectAt`), or explain why they are deferred, and say plainly what
//! happened in lines fit for a creation log. Waiting for the engine and for pulls, and
//! renewing tokens, are the daemon's additions on top.
//!
//! A hook's request is untrusted input from another user's process. It becomes a
//! [`HookInput`] once, where it enters berth: the phase, the secrets, the few settings a
//! hook may pass (each checked against who is calling), and the caller's identity from the
//! socket's peer credentials; nothing else of the hook's environment reaches a decision.
//! Every file of the remote user's (their Docker config, the workspace, the secrets files
//! in their folders) is read and written with the remote user's own privileges.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use nix::unistd::{Gid, Uid};

use crate::account::Account;
use crate::ecr::{EcrClient, EndpointVars};
use crate::engine::{DockerHost, EngineTarget};
use crate::inject::{self, Login, PendingLogin, Report, Target};
use crate::phase::Phase;
use crate::protocol::{HookSettings, Level, WireSecret};
use crate::secrets::{self, Discovery, NamedSecret, Registry, Source};
use crate::settings::{InjectAt, Settings};
use crate::state::{Event, Handler, OwnedState, Record, StateDir, millis};

/// Where a hook's lines go: to the hook's output, and to the log.
pub type Sink<'a> = &'a mut (dyn FnMut(Level, String) + Send);

/// Who is calling: the peer credentials of the socket, or this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Its user id.
    pub uid: u32,
    /// Its process id, when known.
    pub pid: Option<i32>,
}

impl Caller {
    /// This process.
    pub fn this_process() -> Caller {
        Caller {
            uid: Uid::effective().as_raw(),
            pid: Some(std::process::id() as i32),
        }
    }
}

/// A phase's request, typed and checked once where it entered berth.
#[derive(Clone, Debug)]
pub struct HookInput {
    /// The phase; `None` for the work at container start (the entrypoint's request).
    pub phase: Option<Phase>,
    /// Who asked.
    pub caller: Caller,
    /// Registry secrets of the caller's environment.
    pub secrets: Vec<NamedSecret>,
    /// The remote user's own `DOCKER_CONFIG` (only when the remote user called).
    pub docker_config: Option<PathBuf>,
    /// The engine the caller's commands use, when it named one.
    pub engine: Option<EngineTarget>,
    /// ECR endpoints of the caller's environment.
    pub endpoints: EndpointVars,
    /// More images to pre-pull.
    pub images: Vec<String>,
    /// The caller's working folder (the workspace, for discovery).
    pub workspace: Option<PathBuf>,
    /// When the hook ran, for a phase handed over after its hook returned (nobody waits).
    pub ran_at: Option<u64>,
}

impl HookInput {
    /// The phase's name, or `start`.
    pub fn label(&self) -> &'static str {
        self.phase.map(Phase::name).unwrap_or("start")
    }

    /// Checks a request against its caller: `DOCKER_CONFIG` only from the remote user
    /// (berth writes there with the remote user's privileges); an engine socket named by
    /// anyone but root is connected to as the remote user. Returns the input and notes
    /// on what was set aside.
    pub fn checked(
        phase: Option<Phase>,
        secrets: Vec<WireSecret>,
        settings: HookSettings,
        cwd: Option<PathBuf>,
        caller: Caller,
        remote: &Account,
    ) -> (HookInput, Vec<String>) {
        let mut notes = Vec::new();
        let from_remote = caller.uid == remote.uid.as_raw();
        let docker_config = match settings.docker_config {
            Some(dir) if from_remote => Some(dir),
            Some(dir) => {
                notes.push(format!(
                    "DOCKER_CONFIG={} of uid {} is not the remote user's ({}); berth writes {}'s own config",
                    dir.display(),
                    caller.uid,
                    remote.name,
                    remote.name
                ));
                None
            }
            None => None,
        };
        let engine = match DockerHost::from_value(settings.docker_host.as_deref()) {
            _ if settings.docker_host.is_none() => None,
            Ok(host) => Some(EngineTarget::named_by(host, caller.uid, remote)),
            Err(e) => {
                notes.push(e.to_string());
                None
            }
        };
        let input = HookInput {
            phase,
            caller,
            secrets: secrets
                .into_iter()
                .map(|s| NamedSecret {
                    name: s.name,
                    value: s.value,
                    source: Source::Environment,
                })
                .collect(),
            docker_config,
            engine,
            endpoints: settings.endpoints,
            images: crate::settings::split_list(settings.images.as_deref().unwrap_or_default()),
            workspace: cwd,
            ran_at: None,
        };
        (input, notes)
    }
}

/// The result of writing credentials.
#[derive(Debug)]
pub struct Injection {
    /// What was done, per registry.
    pub report: Report,
    /// The registries used and their logins.
    pub logins: Vec<(Registry, Login)>,
    /// ECR swaps not finished in time; each goes on, for the caller to finish.
    pub pending: Vec<PendingLogin>,
    /// Logins not written because the config's lock was held: the caller writes them
    /// later (the daemon's keeper), or says that it cannot.
    pub unwritten: Vec<(Registry, Login)>,
    /// Whom it was written for.
    pub target: Target,
    /// The ECR endpoints in force.
    pub endpoints: EndpointVars,
}

/// What a phase does, decided in one place ([`Lifecycle::plan`]) from the phase and the
/// settings; whoever handles the hook (the daemon, or the hook itself) carries it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Write the credentials now (`injectAt`); else say why they wait.
    pub write: bool,
    /// Start the pre-pulls before the credentials are written (`pullAt=early`).
    pub pull_early: bool,
    /// Wait, within this bound, for the Docker engine to answer (`waitForDocker`).
    pub wait_engine: Option<Duration>,
    /// Wait, within this bound, for the pre-pulls to finish (`waitForPulls`, postCreate).
    pub wait_pulls: Option<Duration>,
    /// How long to wait for ECR to swap access keys for a token before going on without
    /// it (the swap goes on; its token is written, or used, when ECR answers): only a phase
    /// that writes the credentials its user's command needs waits at all.
    pub ecr_wait: Duration,
}

/// What berth needs at every phase.
pub struct Lifecycle {
    /// The settings.
    pub settings: Settings,
    /// The state folder, held open, when this process is its owner (the daemon, or a hook
    /// that runs as the daemon's user); else nothing is recorded.
    pub state: Option<OwnedState>,
    /// Where the state folder is.
    pub state_dir: StateDir,
    /// The user whose Docker config is written, looked up by name now.
    pub remote: Account,
    /// Who is handling hooks.
    pub handler: Handler,
    ecr: OnceLock<EcrClient>,
}

/// Why a lifecycle cannot be set up: its remote user is unknown, or (for the daemon) its
/// state folder cannot be held.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The remote user cannot be looked up.
    #[error(transparent)]
    Account(#[from] crate::account::AccountError),
    /// The state folder cannot be opened as berth's own.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

impl Lifecycle {
    /// The daemon's: the remote user looked up by name, and the state folder of the
    /// daemon's user, held open (an error if it cannot be).
    pub fn for_daemon(settings: Settings) -> Result<Lifecycle, LifecycleError> {
        let remote = remote_user(&settings)?;
        let state_dir = StateDir::of_user(settings.state_dir.as_deref(), Uid::effective());
        let state = state_dir.open_owned(state_group(&remote))?;
        Ok(Lifecycle {
            state: Some(state),
            state_dir,
            settings,
            remote,
            handler: Handler::Daemon,
            ecr: OnceLock::new(),
        })
    }

    /// A hook's, working without the daemon: it records only when it runs as the daemon's
    /// user (another user may not write the daemon's folder).
    pub fn for_hook(settings: Settings) -> Result<Lifecycle, LifecycleError> {
        let remote = remote_user(&settings)?;
        let state_dir = StateDir::of_daemon(settings.state_dir.as_deref());
        let state = (Uid::effective() == daemon_user())
            .then(|| state_dir.open_owned(state_group(&remote)).ok())
            .flatten();
        Ok(Lifecycle {
            state,
            state_dir,
            settings,
            remote,
            handler: Handler::Hook,
            ecr: OnceLock::new(),
        })
    }

    /// Appends an event; a failure to record is logged, never fatal.
    pub fn record(&self, event: Event) {
        let Some(state) = &self.state else { return };
        let record = Record {
            at: millis(SystemTime::now()),
            event,
        };
        if let Err(e) = state.append_line(&record.to_line()) {
            tracing::warn!(path = %state.path().display(), error = %e, "cannot record an event");
        }
    }

    /// The records so far.
    pub fn records(&self) -> Vec<Record> {
        match &self.state {
            Some(s) => s.read_all(),
            None => self.state_dir.read_all(),
        }
    }

    /// The user and config to write: the remote user's, at their own `DOCKER_CONFIG` when
    /// they ran the hook.
    pub fn target_for(&self, input: &HookInput) -> Target {
        Target {
            location: crate::docker_config::Location::for_account(
                &self.remote,
                input.docker_config.clone(),
            ),
            account: self.remote.clone(),
        }
    }

    /// What a phase does: the one place that decides it. A phase handed over after its
    /// hook returned does the same work, and waits for nothing, since nobody waits for it.
    pub fn plan(&self, input: &HookInput) -> Plan {
        let phase = input.phase.unwrap_or(Phase::PostStart);
        let settings = &self.settings;
        let write = input.phase.is_none_or(|p| self.injects(p));
        let waited_for = input.ran_at.is_none();
        Plan {
            write,
            pull_early: !write && settings.pull_at == crate::settings::PullAt::Early,
            wait_engine: (waited_for
                && input.phase.is_some()
                && phase.waits_for_docker()
                && settings.wait_for_docker)
                .then_some(settings.docker_timeout),
            wait_pulls: (waited_for && phase == Phase::PostCreate && settings.wait_for_pulls)
                .then_some(settings.pull_timeout),
            ecr_wait: if write && waited_for {
                (settings.hook_timeout / 3).min(Duration::from_secs(20))
            } else {
                Duration::ZERO
            },
        }
    }

    /// The registries in the hook's environment, Codespaces' files and the secrets file
    /// (the files read as the remote user, off the caller's runtime, within a bound).
    pub async fn discover(&self, input: &HookInput, sink: Sink<'_>) -> Discovery {
        let vars = input.secrets.clone();
        let secrets_file = self.settings.secrets_file.clone();
        let codespaces = self.settings.codespaces_dir.clone();
        let gathered =
            crate::privilege::as_user_bounded(&self.remote, inject::WORK_BOUND, move || {
                secrets::gather(vars, secrets_file.as_deref(), Some(&codespaces))
            })
            .await;
        let (layers, notes) = match gathered {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                say(sink, Level::Warn, format!("berth: {e}"));
                (vec![input.secrets.clone()], Vec::new())
            }
            Err(e) => {
                say(sink, Level::Warn, format!("berth: {e}"));
                (vec![input.secrets.clone()], Vec::new())
            }
        };
        for n in notes {
            say(sink, Level::Warn, format!("berth: {n}"));
        }
        let mut discovery = Discovery::from_layers(&layers);
        discovery.add_github(&layers, &self.settings.github);
        discovery
    }

    /// Records the phase, and says what was found.
    pub fn begin(&self, input: &HookInput, discovery: &Discovery, sink: Sink<'_>) {
        let ids: Vec<String> = discovery.registries.iter().map(|r| r.id.clone()).collect();
        if let Some(phase) = input.phase {
            self.record(Event::Phase {
                phase,
                uid: input.caller.uid,
                handler: self.handler,
                ids: ids.clone(),
                ran_at: input.ran_at,
            });
        }
        tracing::info!(phase = %input.label(), uid = input.caller.uid, registries = ?ids, "hook");
        let found = if discovery.registries.is_empty() {
            if input.phase.is_some_and(Phase::in_prebuild) {
                "no registry secrets here (<ID>_CONTAINER_REGISTRY_SERVER, _USER, _PASSWORD; a Codespaces prebuild gets none)"
                    .to_string()
            } else {
                "no registry secrets found (<ID>_CONTAINER_REGISTRY_SERVER, _USER, _PASSWORD)"
                    .to_string()
            }
        } else {
            let list: Vec<String> = discovery
                .registries
                .iter()
                .map(|r| format!("{} ({})", r.id, r.server))
                .collect();
            format!("registry secrets found: {}", list.join(", "))
        };
        say(
            sink,
            Level::Info,
            format!("berth: {}: {found}", input.label()),
        );
        for f in &discovery.findings {
            say(sink, Level::Warn, format!("berth: {f}"));
        }
    }

    /// Whether this phase writes credentials.
    pub fn injects(&self, phase: Phase) -> bool {
        phase.injects(self.settings.inject_at)
    }

    /// Explains why credentials are not written now.
    pub fn defer(&self, phase: Phase, sink: Sink<'_>) {
        let until = "to postCreate (injectAt=postCreate)";
        self.record(Event::Deferred {
            phase,
            until: until.to_string(),
        });
        say(
            sink,
            Level::Info,
            format!(
                "berth: {phase}: credentials deferred {until}: as in Codespaces, they are written after \
                 onCreate and updateContent, so a prebuild stores none and postCreateCommand can pull"
            ),
        );
    }

    /// Writes credentials for every registry found, reusing logins `reuse` still trusts;
    /// ECR swaps not answered within `bound` are handed back as pending.
    pub async fn inject(
        &self,
        input: &HookInput,
        discovery: &Discovery,
        reuse: &inject::Reusable,
        bound: Option<Duration>,
        sink: Sink<'_>,
    ) -> Option<Injection> {
        let target = self.target_for(input);
        let endpoints = input.endpoints.clone().or(&EndpointVars::from_env());
        let client = self.ecr_client();
        let opts = self.settings.write_options();
        let result =
            inject::inject_with(discovery, &target, client, &endpoints, opts, reuse, bound).await;
        let inject::Injected {
            report,
            logins,
            pending,
            unwritten,
        } = match result {
            Ok(x) => x,
            Err(e) => {
                self.record(Event::ConfigFailed {
                    error: e.to_string(),
                });
                say(sink, Level::Error, format!("berth: {}: {e}", input.label()));
                return None;
            }
        };
        for w in &report.warnings {
            // The secrets' findings were said when the secrets were read.
            if !matches!(w, inject::Warning::Secrets(_)) {
                say(sink, Level::Warn, format!("berth: {w}"));
            }
        }
        for r in &report.registries {
            let expires_at = logins
                .iter()
                .find(|(id, _)| id == &r.id)
                .and_then(|(_, l)| l.expires_at);
            self.record_outcome(r, &report.config, expires_at, sink);
        }
        let ok: Vec<String> = report
            .registries
            .iter()
            .filter(|r| r.error.is_none() && !report.pending.contains(&r.id))
            .map(|r| format!("{} ({})", r.id, r.server))
            .collect();
        if !ok.is_empty() {
            let verb = if report.written {
                "written to"
            } else {
                "already in"
            };
            say(
                sink,
                Level::Info,
                format!(
                    "berth: {}: credentials for {} {verb} {}",
                    input.label(),
                    ok.join(", "),
                    report.config.display()
                ),
            );
        }
        if !ok.is_empty() && input.phase.is_some_and(Phase::in_prebuild) {
            say(
                sink,
                Level::Warn,
                format!(
                    "berth: {}: injectAt={} writes these credentials into the container now: in a Codespaces prebuild they become part of the prebuild's snapshot (the secrets stored in an image); with injectAt=postCreate and pullAt=early, images are pulled as early without writing any secret",
                    input.label(),
                    self.settings.inject_at.name()
                ),
            );
        }
        for p in &pending {
            say(
                sink,
                Level::Warn,
                format!(
                    "berth: {}: ECR has not answered yet for {} ({}); berth writes its token when it does (berth status shows it)",
                    input.label(),
                    p.registry.id,
                    p.registry.server
                ),
            );
        }
        let with_registry = |logins: Vec<(String, Login)>| -> Vec<(Registry, Login)> {
            logins
                .into_iter()
                .filter_map(|(id, login)| {
                    discovery
                        .registries
                        .iter()
                        .find(|r| r.id == id)
                        .map(|r| (r.clone(), login))
                })
                .collect()
        };
        Some(Injection {
            report,
            logins: with_registry(logins),
            pending,
            unwritten: with_registry(unwritten),
            target,
            endpoints,
        })
    }

    /// Records what happened to one registry's entry, and says a failure.
    pub fn record_outcome(
        &self,
        r: &inject::RegistryReport,
        config: &std::path::Path,
        expires_at: Option<SystemTime>,
        sink: Sink<'_>,
    ) {
        match (&r.error, r.change) {
            (Some(e), _) => {
                self.record(Event::InjectFailed {
                    id: r.id.clone(),
                    error: e.clone(),
                });
                say(sink, Level::Error, format!("berth: {e}"));
            }
            (None, Some(change)) => self.record(Event::Injected {
                id: r.id.clone(),
                server: r.server.clone(),
                kind: r.kind.to_string(),
                change,
                config: config.to_path_buf(),
                expires_at: expires_at.map(millis),
            }),
            (None, None) => {}
        }
    }

    /// The ECR client (its HTTPS client is made on first use).
    pub fn ecr_client(&self) -> &EcrClient {
        self.ecr.get_or_init(EcrClient::new)
    }

    /// The engine to wait for, if this container seems to have one: the one the caller
    /// named, else `DOCKER_HOST` of berth's own environment, an existing socket, or an
    /// installed `dockerd`.
    pub fn expected_engine(&self, input: Option<&HookInput>) -> Option<EngineTarget> {
        if let Some(named) = input.and_then(|i| i.engine.clone()) {
            return Some(named);
        }
        let value = crate::engine::docker_host_var();
        let host = DockerHost::from_value(value.as_deref()).ok()?;
        let expected = value.is_some()
            || matches!(&host, DockerHost::Unix(p) if p.exists())
            || crate::engine::on_path("dockerd");
        expected.then(|| EngineTarget::own(host))
    }

    /// Whether `injectAt` says to write credentials as soon as secrets are known.
    pub fn injects_at_start(&self) -> bool {
        self.settings.inject_at == InjectAt::Start
    }
}

/// The remote user, looked up by name (settings), else the user berth runs as.
fn remote_user(settings: &Settings) -> Result<Account, crate::account::AccountError> {
    Ok(match &settings.remote_user {
        Some(name) => Account::by_name(name)?,
        None => Account::current()?,
    })
}

/// The group given to the state folder's files: the remote user's, so that they may read
/// the log and use the socket, when the daemon runs as root; else the daemon's own.
fn state_group(remote: &Account) -> Gid {
    if Uid::effective().is_root() {
        remote.gid
    } else {
        Gid::effective()
    }
}

/// The user this container's daemon runs as: the container's own user.
pub fn daemon_user() -> Uid {
    crate::container::user().unwrap_or(Uid::from_raw(0))
}

/// Says a line and logs it.
pub fn say(sink: Sink<'_>, level: Level, text: String) {
    match level {
        Level::Info => tracing::info!(line = %text, "said"),
        Level::Warn => tracing::warn!(line = %text, "said"),
        Level::Error => tracing::error!(line = %text, "said"),
    }
    sink(level, text);
}

/// Now, in ms since the epoch.
pub fn now_ms() -> u64 {
    millis(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Account {
        Account {
            name: "dev".into(),
            uid: Uid::from_raw(1000),
            gid: Gid::from_raw(1000),
            groups: vec![Gid::from_raw(1000)],
            home: "/home/dev".into(),
        }
    }

    fn settings(docker_config: &str, docker_host: &str) -> HookSettings {
        HookSettings {
            docker_config: Some(docker_config.into()),
            docker_host: Some(docker_host.into()),
            endpoints: EndpointVars::default(),
            images: Some("a.io/x:1 b.io/y:2".into()),
        }
    }

    #[test]
    fn docker_config_is_taken_from_the_remote_user_only() {
        let caller = |uid| Caller { uid, pid: None };
        let (input, notes) = HookInput::checked(
            Some(Phase::PostCreate),
            Vec::new(),
            settings("/somewhere", "tcp://127.0.0.1:2375"),
            None,
            caller(1000),
            &dev(),
        );
        assert_eq!(input.docker_config, Some(PathBuf::from("/somewhere")));
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(input.images, ["a.io/x:1", "b.io/y:2"]);
        let (input, notes) = HookInput::checked(
            Some(Phase::PostCreate),
            Vec::new(),
            settings("/root/.docker", "tcp://127.0.0.1:2375"),
            None,
            caller(0),
            &dev(),
        );
        assert_eq!(
            input.docker_config, None,
            "root's DOCKER_CONFIG is not dev's"
        );
        assert!(notes[0].contains("not the remote user's"), "{notes:?}");
    }

    #[test]
    fn an_engine_socket_named_by_the_remote_user_is_opened_as_the_remote_user() {
        let (input, _) = HookInput::checked(
            Some(Phase::PostCreate),
            Vec::new(),
            settings("/x", "unix:///run/user/1000/docker.sock"),
            None,
            Caller {
                uid: 1000,
                pid: None,
            },
            &dev(),
        );
        let engine = input.engine.unwrap();
        assert_eq!(engine.user.map(|a| a.name).as_deref(), Some("dev"));
        // berth's own engine, named by the hook too, is berth's to open.
        let own = DockerHost::from_env().unwrap().to_string();
        let (input, _) = HookInput::checked(
            Some(Phase::PostCreate),
            Vec::new(),
            settings("/x", &own),
            None,
            Caller {
                uid: 1000,
                pid: None,
            },
            &dev(),
        );
        assert_eq!(input.engine.unwrap().user, None);
        let (input, notes) = HookInput::checked(
            None,
            Vec::new(),
            settings("/x", "ssh://somewhere"),
            None,
            Caller { uid: 0, pid: None },
            &dev(),
        );
        assert!(input.engine.is_none());
        assert!(
            notes.iter().any(|n| n.contains("not supported")),
            "{notes:?}"
        );
    }
}
