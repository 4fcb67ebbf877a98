//! What berth does when a lifecycle phase's hook runs, whoever does it.
//!
//! The daemon normally handles a hook; when it cannot be reached, the hook does the same
//! work itself. Both go through [`Lifecycle`]: record the phase, write credentials if this
//! phase is the one (`injectAt`), or explain why they are deferred, and say plainly what
//! happened in lines fit for a creation log. Waiting for the engine and for pulls, and
//! renewing tokens, are the daemon's additions on top.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::account::Account;
use crate::atomic::Ownership;
use crate::ecr::{EcrClient, EndpointVars};
use crate::engine::DockerHost;
use crate::inject::{self, Login, Report, Target, WriteOptions};
use crate::phase::Phase;
use crate::protocol::Level;
use crate::secrets::{self, Discovery, NamedSecret, Registry};
use crate::settings::{InjectAt, Settings};
use crate::state::{Event, Handler, StateDir, millis};

/// Where a hook's lines go: to the hook's output, and to the log.
pub type Sink<'a> = &'a mut (dyn FnMut(Level, String) + Send);

/// A hook's report of a phase.
#[derive(Clone, Debug)]
pub struct HookInput {
    /// The phase; `None` for work at daemon start (`injectAt=start`).
    pub phase: Option<Phase>,
    /// The hook's user id.
    pub uid: u32,
    /// Registry secrets of the hook's environment.
    pub secrets: Vec<NamedSecret>,
    /// Forwarded variables of the hook's environment.
    pub env: BTreeMap<String, String>,
    /// The hook's working folder.
    pub cwd: Option<PathBuf>,
}

impl HookInput {
    /// The phase's name, or `start`.
    pub fn label(&self) -> &'static str {
        self.phase.map(Phase::name).unwrap_or("start")
    }
}

/// The result of writing credentials.
#[derive(Clone, Debug)]
pub struct Injection {
    /// What was done, per registry.
    pub report: Report,
    /// The registries used and their logins, by registry key.
    pub logins: Vec<(Registry, Login)>,
    /// Whom it was written for.
    pub target: Target,
    /// The ECR endpoints in force.
    pub endpoints: EndpointVars,
}

/// What berth needs at every phase.
pub struct Lifecycle {
    /// The settings.
    pub settings: Settings,
    /// The state folder.
    pub state: StateDir,
    /// Owner of state files (the remote user, when running as root).
    pub owner: Ownership,
    /// The user whose Docker config is written.
    pub remote: Account,
    /// Who is handling hooks.
    pub handler: Handler,
    ecr: OnceLock<EcrClient>,
}

impl Lifecycle {
    /// Resolves the remote user (settings, else the user berth runs as).
    pub fn new(settings: Settings, handler: Handler) -> anyhow::Result<Lifecycle> {
        let remote = match &settings.remote_user {
            Some(name) => Account::by_name(name)?,
            None => Account::current()?,
        };
        let owner = Ownership::private(remote.file_owner().unwrap_or(None));
        Ok(Lifecycle {
            state: StateDir::new(settings.state_dir.clone()),
            settings,
            owner,
            remote,
            handler,
            ecr: OnceLock::new(),
        })
    }

    /// Appends an event; a failure to record is logged, never fatal.
    pub fn record(&self, event: Event) {
        if let Err(e) = self.state.events().append(event, self.owner) {
            tracing::warn!(path = %self.state.events().path().display(), error = %e, "cannot record an event");
        }
    }

    /// The user and config to write: the remote user's, at the hook's `DOCKER_CONFIG`
    /// when the hook runs as that user.
    pub fn target_for(&self, input: &HookInput) -> Target {
        let docker_config = (input.uid == self.remote.uid.as_raw())
            .then(|| input.env.get("DOCKER_CONFIG").map(PathBuf::from))
            .flatten();
        Target {
            location: crate::docker_config::Location::for_account(&self.remote, docker_config),
            account: self.remote.clone(),
        }
    }

    /// The registries in the hook's environment, Codespaces' files and the secrets file.
    pub fn discover(&self, input: &HookInput, sink: Sink<'_>) -> Discovery {
        let (layers, notes) = match secrets::gather(
            input.secrets.clone(),
            self.settings.secrets_file.as_deref(),
            Some(&self.settings.codespaces_dir),
        ) {
            Ok(x) => x,
            Err(e) => {
                say(sink, Level::Warn, format!("berth: {e}"));
                (vec![input.secrets.clone()], Vec::new())
            }
        };
        for n in notes {
            say(sink, Level::Warn, format!("berth: {n}"));
        }
        Discovery::from_layers(&layers)
    }

    /// Records the phase, and says what was found.
    pub fn begin(&self, input: &HookInput, discovery: &Discovery, sink: Sink<'_>) {
        let ids: Vec<String> = discovery.registries.iter().map(|r| r.id.clone()).collect();
        if let Some(phase) = input.phase {
            self.record(Event::Phase {
                phase,
                uid: input.uid,
                handler: self.handler,
                ids: ids.clone(),
            });
        }
        tracing::info!(phase = %input.label(), uid = input.uid, registries = ?ids, "hook");
        let found = if discovery.registries.is_empty() {
            if input.phase.is_some_and(Phase::in_prebuild) {
                "no registry secrets here (as in a prebuild, where user secrets are absent)"
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

    /// Writes credentials for every registry found, reusing logins `reuse` still trusts.
    pub async fn inject(
        &self,
        input: &HookInput,
        discovery: &Discovery,
        reuse: &(dyn Fn(&Registry) -> Option<Login> + Sync),
        sink: Sink<'_>,
    ) -> Option<Injection> {
        let target = self.target_for(input);
        let endpoints =
            EndpointVars::from_lookup(|n| input.env.get(n).cloned()).or(&EndpointVars::from_env());
        let client = self.ecr_client();
        let opts = WriteOptions {
            dry_run: false,
            helper: self.settings.credential_helper,
            prune: false,
        };
        let result = inject::inject_with(discovery, &target, client, &endpoints, opts, reuse).await;
        let (report, logins) = match result {
            Ok(x) => x,
            Err(e) => {
                self.record(Event::InjectFailed {
                    id: "*".into(),
                    error: e.to_string(),
                });
                say(sink, Level::Error, format!("berth: {}: {e}", input.label()));
                return None;
            }
        };
        for w in &report.warnings {
            if !discovery.findings.iter().any(|f| &f.to_string() == w) {
                say(sink, Level::Warn, format!("berth: {w}"));
            }
        }
        for r in &report.registries {
            match (&r.error, r.change) {
                (Some(e), _) => {
                    self.record(Event::InjectFailed {
                        id: r.id.clone(),
                        error: e.clone(),
                    });
                    say(sink, Level::Error, format!("berth: {e}"));
                }
                (None, Some(change)) => {
                    let expires_at = logins
                        .iter()
                        .find(|(id, _)| id == &r.id)
                        .and_then(|(_, l)| l.expires_at)
                        .map(millis);
                    self.record(Event::Injected {
                        id: r.id.clone(),
                        server: r.server.clone(),
                        kind: r.kind.to_string(),
                        change,
                        config: report.config.clone(),
                        expires_at,
                    });
                }
                (None, None) => {}
            }
        }
        let ok: Vec<String> = report
            .registries
            .iter()
            .filter(|r| r.error.is_none())
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
        let logins = logins
            .into_iter()
            .filter_map(|(id, login)| {
                discovery
                    .registries
                    .iter()
                    .find(|r| r.id == id)
                    .map(|r| (r.clone(), login))
            })
            .collect();
        Some(Injection {
            report,
            logins,
            target,
            endpoints,
        })
    }

    /// The ECR client (its HTTPS client is made on first use).
    pub fn ecr_client(&self) -> &EcrClient {
        self.ecr.get_or_init(EcrClient::new)
    }

    /// The engine to wait for, if this container seems to have one: `DOCKER_HOST` (the
    /// hook's, else the daemon's), an existing socket, or an installed `dockerd`.
    pub fn expected_engine(&self, env: &BTreeMap<String, String>) -> Option<DockerHost> {
        let value = env
            .get("DOCKER_HOST")
            .cloned()
            .or_else(|| std::env::var("DOCKER_HOST").ok());
        let host = DockerHost::from_value(value.as_deref()).ok()?;
        let expected = value.is_some()
            || matches!(&host, DockerHost::Unix(p) if p.exists())
            || on_path("dockerd");
        expected.then_some(host)
    }

    /// Whether `injectAt` says to write credentials as soon as secrets are known.
    pub fn injects_at_start(&self) -> bool {
        self.settings.inject_at == InjectAt::Start
    }
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

/// Whether a program is on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(program).is_file())
}

/// Now, in ms since the epoch.
pub fn now_ms() -> u64 {
    millis(SystemTime::now())
}
