//! What `berth status` shows: the phase timeline, the registries and the pulls, derived
//! from the event record (so it works without a daemon), with the daemon's live progress
//! laid over it when the daemon answers.

use std::fmt::Write as _;

use crate::docker_config::Change;
use crate::phase::Phase;
use crate::state::{Event, Handler, Record, time_of};

/// Everything `berth status` knows.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// The running daemon, if one answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<DaemonInfo>,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// Each registry's latest state.
    pub registries: Vec<RegistryStatus>,
    /// Each image's latest state.
    pub pulls: Vec<PullStatus>,
    /// The Docker engine, once it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineStatus>,
    /// berth's entries in the config whose secrets the last hook no longer had.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_secrets: Vec<Orphan>,
    /// Registries whose credentials the daemon answers for (credential store `helper`)
    /// but has not received since it started: the helper has nothing for them until a
    /// lifecycle hook brings their secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting_secrets: Vec<Orphan>,
    /// The container of the latest daemon start, to tell a new one made from a snapshot.
    #[serde(skip)]
    container: Option<String>,
}

/// An entry berth wrote whose secret set is gone.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Orphan {
    /// The secret identifier it came from.
    pub id: String,
    /// The registry key.
    pub server: String,
}

/// The daemon that answered.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DaemonInfo {
    /// Its pid.
    pub pid: u32,
    /// Its version.
    pub version: String,
    /// The user it runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// The Docker engine as berth and the remote user meet it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EngineStatus {
    /// Where it answered.
    pub host: String,
    /// Its API version.
    pub api_version: String,
    /// Why the remote user cannot open it, if they cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_access: Option<String>,
}

/// One line of the timeline.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TimelineEntry {
    /// When (ms since the epoch).
    pub at: u64,
    /// The phase, for phase entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// What happened, in words.
    pub what: String,
    /// The write this line tells of, for the registries of one write to share it.
    #[serde(skip)]
    batch: Option<Batch>,
}

/// One write of logins to a config.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Batch {
    config: std::path::PathBuf,
    unchanged: bool,
}

/// How close together the logins of one write are recorded, at most.
const BATCH_WINDOW_MS: u64 = 2_000;

/// A registry's state.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RegistryStatus {
    /// The secret identifier.
    pub id: String,
    /// The registry key.
    pub server: String,
    /// Its kind.
    pub kind: String,
    /// When its login was last written or confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected_at: Option<u64>,
    /// When its token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When its token was last renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<u64>,
    /// When berth last put its entry back after another writer dropped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<u64>,
    /// The last error, if the latest attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the registry said of the login when berth last checked it: `accepted`, or
    /// why it refused and what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

/// Where a pull stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullState {
    /// Waiting for credentials, the engine, or a free slot.
    Queued,
    /// Downloading.
    Pulling,
    /// Waiting before a retry.
    Retrying,
    /// Finished.
    Done,
    /// Failed for good.
    Failed,
}

/// An image's pull.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PullStatus {
    /// The image.
    pub image: String,
    /// Its state.
    pub state: PullState,
    /// Its digest, when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Bytes downloaded so far.
    #[serde(default)]
    pub bytes: u64,
    /// Bytes to download, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Layers done and in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<(u32, u32)>,
    /// Seconds taken, when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Attempts made.
    #[serde(default)]
    pub attempts: u32,
    /// Why it failed (last attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The pull-through cache it came from, if not its registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Done without a pull: the engine was found to hold it already (checked after a
    /// restart, say). No size, time or origin was measured.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checked: bool,
    /// It came from the cache without its registry's word for its digest
    /// (`mirrorsUnverified`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unverified: bool,
    /// The platform of the image the engine holds (`linux/arm64`), when done and known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// What a finished pull's line says after the image: `(linux/arm64, 1.2 kB in 0.5 s,
/// through the cache C)`, the platform when known.
pub fn pulled_words(
    platform: Option<&str>,
    bytes: u64,
    seconds: f64,
    via: Option<&str>,
    unverified: bool,
) -> String {
    let platform = platform.map(|p| format!("{p}, ")).unwrap_or_default();
    format!(
        "({platform}{} in {seconds:.1} s{})",
        human_bytes(bytes),
        through(via, unverified)
    )
}

/// What the line of an image found held says after the image: `already present
/// (checked)`, with the platform when known: `already present (checked, linux/arm64)`.
pub fn present_words(platform: Option<&str>) -> String {
    match platform {
        Some(p) => format!("already present (checked, {p})"),
        None => "already present (checked)".to_string(),
    }
}

/// Where a pulled image came from, as the end of a line says it: nothing for its registry,
/// `, through the cache C`, and `, unverified` when its registry did not vouch for it.
pub fn through(via: Option<&str>, unverified: bool) -> String {
    match via {
        None => String::new(),
        Some(c) if unverified => format!(
            ", through the cache {c}, unverified (its registry gave no digest to check it against)"
        ),
        Some(c) => format!(", through the cache {c}"),
    }
}

impl PullStatus {
    /// A pull not started yet.
    pub fn queued(image: &str) -> Self {
        PullStatus {
            image: image.to_string(),
            state: PullState::Queued,
            digest: None,
            bytes: 0,
            total: None,
            layers: None,
            seconds: None,
            attempts: 0,
            error: None,
            via: None,
            checked: false,
            unverified: false,
            platform: None,
        }
    }
}

/// One change to a pull: the durable ones the event record keeps (started, done, failed)
/// and the live ones only the daemon sees (an attempt, progress, a retry, a cache
/// passed over). `berth status` from the record and the daemon's live board both apply
/// them with [`PullStatus::apply`], so a pull's state is derived in one place.
#[derive(Clone, Debug, PartialEq)]
pub enum PullChange {
    /// An attempt started (the record's `pull-started`).
    Started,
    /// Attempt number `n` is under way.
    Attempt(u32),
    /// Bytes and layers so far.
    Progress {
        /// Bytes downloaded.
        bytes: u64,
        /// Bytes in all.
        total: u64,
        /// Layers done.
        layers_done: u32,
        /// Layers in all.
        layers: u32,
    },
    /// Waiting before a retry, and why.
    Retrying(String),
    /// A pull-through cache was passed over, and why.
    CachePassed {
        /// The cache.
        cache: String,
        /// Why.
        why: String,
    },
    /// Finished.
    Done {
        /// The digest.
        digest: Option<String>,
        /// Bytes downloaded.
        bytes: u64,
        /// Seconds taken.
        seconds: f64,
        /// The cache it came from, if not its registry.
        via: Option<String>,
        /// The engine held it already: nothing was pulled, nothing measured.
        already_present: bool,
        /// It came from the cache unverified.
        unverified: bool,
        /// The platform of the image the engine holds, when known.
        platform: Option<String>,
    },
    /// Failed for good.
    Failed {
        /// Why.
        error: String,
        /// Attempts made, when known.
        attempts: Option<u32>,
    },
}

impl PullStatus {
    /// Applies one change.
    pub fn apply(&mut self, change: &PullChange) {
        match change {
            PullChange::Started => {
                self.state = PullState::Pulling;
                self.attempts += 1;
            }
            PullChange::Attempt(n) => {
                self.state = PullState::Pulling;
                self.attempts = *n;
            }
            PullChange::Progress {
                bytes,
                total,
                layers_done,
                layers,
            } => {
                self.bytes = *bytes;
                self.total = Some(*total);
                self.layers = Some((*layers_done, *layers));
            }
            PullChange::Retrying(why) => {
                self.state = PullState::Retrying;
                self.error = Some(why.clone());
            }
            PullChange::CachePassed { cache, why } => {
                self.error = Some(format!("cache {cache} passed over: {why}"));
            }
            PullChange::Done {
                digest,
                bytes,
                seconds,
                via,
                already_present,
                unverified,
                platform,
            } => {
                self.state = PullState::Done;
                self.platform.clone_from(platform);
                self.digest.clone_from(digest);
                self.checked = *already_present;
                self.bytes = if *already_present { 0 } else { *bytes };
                self.seconds = (!*already_present).then_some(*seconds);
                self.error = None;
                self.via = if *already_present { None } else { via.clone() };
                self.unverified = *unverified && !*already_present;
            }
            PullChange::Failed { error, attempts } => {
                self.state = PullState::Failed;
                self.error = Some(error.clone());
                if let Some(n) = attempts {
                    self.attempts = *n;
                }
            }
        }
    }
}

impl Status {
    /// The status the event record tells: every record applied in order.
    pub fn from_records(records: &[Record]) -> Status {
        let mut status = Status::default();
        for r in records {
            status.apply(r);
        }
        status
    }

    /// Applies one record: the timeline gets its line (if it has one) and the registry,
    /// engine or pull it concerns its new state.
    pub fn apply(&mut self, r: &Record) {
        let at = r.at;
        match &r.event {
            Event::DaemonStarted {
                pid,
                version,
                uid,
                container,
            } => self.daemon_started(at, *pid, version, *uid, container.as_deref()),
            Event::DaemonStopped { pid } => {
                self.say(at, None, format!("daemon stopped (pid {pid})"));
            }
            Event::Phase {
                phase,
                uid,
                handler,
                ids,
                ran_at,
            } => self.phase(at, *phase, *uid, *handler, ids, *ran_at),
            Event::Deferred { phase, until } => {
                self.say(
                    at,
                    Some(phase.name()),
                    format!("credentials deferred {until}"),
                );
            }
            Event::Injected {
                id,
                server,
                kind,
                change,
                config,
                expires_at,
            } => self.injected(at, id, server, kind, *change, config, *expires_at),
            Event::InjectFailed { id, error } => {
                self.registry(id).error = Some(error.clone());
                self.say(at, None, format!("failed: {error}"));
            }
            Event::ConfigFailed { error } => {
                self.say(at, None, format!("failed: {error}"));
            }
            Event::Restored { ids, config } => {
                for id in ids {
                    if let Some(e) = self.registries.iter_mut().find(|e| &e.id == id) {
                        e.restored_at = Some(at);
                    }
                }
                self.say(
                    at,
                    None,
                    format!(
                        "restored {} in {} (another program had dropped or changed them)",
                        ids.join(", "),
                        config.display()
                    ),
                );
            }
            Event::LoginChecked {
                id,
                server,
                accepted,
                found,
                fix,
            } => {
                let verdict = login_verdict(*accepted, found, fix.as_deref());
                let e = self.registry(id);
                e.server.clone_from(server);
                e.login = Some(verdict.clone());
                self.say(at, None, format!("{id} ({server}): login {verdict}"));
            }
            Event::Renewed {
                id,
                server,
                expires_at,
            } => {
                let e = self.registry(id);
                e.server.clone_from(server);
                e.renewed_at = Some(at);
                e.expires_at = *expires_at;
                e.error = None;
                self.say(at, None, format!("{id} ({server}) token renewed"));
            }
            Event::RenewFailed { id, error } => {
                if let Some(e) = self.registries.iter_mut().find(|e| &e.id == id) {
                    e.error = Some(error.clone());
                }
                self.say(at, None, format!("{id}: renewal failed: {error}"));
            }
            Event::EngineReady {
                host,
                api_version,
                user_access,
            } => {
                self.engine = Some(EngineStatus {
                    host: host.clone(),
                    api_version: api_version.clone(),
                    user_access: user_access.clone(),
                });
                self.say(
                    at,
                    None,
                    format!("Docker engine answered at {host} (API {api_version})"),
                );
            }
            Event::PullStarted { image } => self.pull(image).apply(&PullChange::Started),
            Event::PullDone {
                image,
                digest,
                bytes,
                seconds,
                already_present,
                via,
                unverified,
                platform,
            } => self.pull_done(
                at,
                image,
                PullChange::Done {
                    digest: digest.clone(),
                    bytes: *bytes,
                    seconds: *seconds,
                    via: via.clone(),
                    already_present: *already_present,
                    unverified: *unverified,
                    platform: platform.clone(),
                },
            ),
            Event::PullFailed {
                image,
                error,
                attempts,
                ..
            } => {
                self.pull(image).apply(&PullChange::Failed {
                    error: error.clone(),
                    attempts: Some(*attempts),
                });
                self.say(
                    at,
                    None,
                    format!("pull of {image} failed after {attempts} attempt(s): {error}"),
                );
            }
        }
    }

    /// A daemon started: what the engine held belonged to before it.
    fn daemon_started(
        &mut self,
        at: u64,
        pid: u32,
        version: &str,
        uid: Option<u32>,
        container: Option<&str>,
    ) {
        // What the engine held belonged to before this start: the daemon checks
        // again, and until then no pull is shown as done.
        self.pulls.clear();
        self.engine = None;
        let moved = match (self.container.as_deref(), container) {
            (Some(before), Some(now)) if before != now => format!(
                "; a new container, {now}, made from the snapshot of {before} (a prebuild's, say): what follows is its own"
            ),
            _ => String::new(),
        };
        if container.is_some() {
            self.container = container.map(str::to_string);
        }
        let who = uid
            .map(|u| format!(", as {}", user_name(u)))
            .unwrap_or_default();
        let within = container
            .map(|c| format!(", container {c}"))
            .unwrap_or_default();
        self.say(
            at,
            None,
            format!("daemon started (pid {pid}, berth {version}{who}{within}){moved}"),
        );
    }

    /// A lifecycle hook ran.
    fn phase(
        &mut self,
        at: u64,
        phase: Phase,
        uid: u32,
        handler: Handler,
        ids: &[String],
        ran_at: Option<u64>,
    ) {
        let by = match (handler, ran_at) {
            (_, Some(ran)) => format!(
                ", at {}; handed to the daemon, which was not running yet",
                when(ran)
            ),
            (Handler::Daemon, None) => String::new(),
            (Handler::Hook, None) => ", handled without the daemon".into(),
        };
        let found = if ids.is_empty() {
            "no registry secrets".to_string()
        } else {
            format!("secrets for {}", ids.join(", "))
        };
        self.say(
            at,
            Some(phase.name()),
            format!("{phase} hook ran (uid {uid}{by}); {found}"),
        );
    }

    /// A registry's login was written, or found in place.
    #[allow(clippy::too_many_arguments)]
    fn injected(
        &mut self,
        at: u64,
        id: &str,
        server: &str,
        kind: &str,
        change: Change,
        config: &std::path::Path,
        expires_at: Option<u64>,
    ) {
        let unchanged = change == Change::Unchanged;
        let e = self.registry(id);
        e.server = server.to_string();
        e.kind = kind.to_string();
        if !unchanged || e.injected_at.is_none() {
            e.injected_at = Some(at);
        }
        e.expires_at = expires_at;
        e.error = None;
        let item = if unchanged {
            format!("{id} ({server})")
        } else {
            format!("{id} ({server}, {})", change.word())
        };
        self.written(at, config, unchanged, item);
    }

    /// A pre-pull finished (`done` is a [`PullChange::Done`]).
    fn pull_done(&mut self, at: u64, image: &str, done: PullChange) {
        let p = self.pull(image);
        p.apply(&done);
        let what = if p.checked {
            format!("{image} {}", present_words(p.platform.as_deref()))
        } else {
            format!(
                "pulled {image} {}",
                pulled_words(
                    p.platform.as_deref(),
                    p.bytes,
                    p.seconds.unwrap_or_default(),
                    p.via.as_deref(),
                    p.unverified
                )
            )
        };
        self.say(at, None, what);
    }

    /// Lays the daemon's live board over the pulls the record tells.
    pub fn overlay(&mut self, live: &std::collections::BTreeMap<String, PullStatus>) {
        for (image, p) in live {
            *self.pull(image) = p.clone();
        }
    }

    /// A registry's state, made (in identifier order) if it is new.
    fn registry(&mut self, id: &str) -> &mut RegistryStatus {
        let i = match self.registries.binary_search_by(|e| e.id.as_str().cmp(id)) {
            Ok(i) => i,
            Err(i) => {
                let entry = RegistryStatus {
                    id: id.to_string(),
                    ..Default::default()
                };
                self.registries.insert(i, entry);
                i
            }
        };
        &mut self.registries[i]
    }

    /// An image's pull, made queued (in image order) if it is new.
    fn pull(&mut self, image: &str) -> &mut PullStatus {
        let i = match self.pulls.binary_search_by(|p| p.image.as_str().cmp(image)) {
            Ok(i) => i,
            Err(i) => {
                self.pulls.insert(i, PullStatus::queued(image));
                i
            }
        };
        &mut self.pulls[i]
    }

    /// Adds a line to the timeline.
    fn say(&mut self, at: u64, phase: Option<&str>, what: String) {
        self.timeline.push(TimelineEntry {
            at,
            phase: phase.map(str::to_string),
            what,
            batch: None,
        });
    }

    /// Says that a registry's login was written to (or found in) a config: the registries
    /// of one write (the same config and kind of change, within [`BATCH_WINDOW_MS`]) share
    /// one line.
    fn written(&mut self, at: u64, config: &std::path::Path, unchanged: bool, item: String) {
        let batch = Batch {
            config: config.to_path_buf(),
            unchanged,
        };
        if let Some(last) = self.timeline.last_mut()
            && last.batch.as_ref() == Some(&batch)
            && at.saturating_sub(last.at) < BATCH_WINDOW_MS
        {
            last.what.push_str(", ");
            last.what.push_str(&item);
            return;
        }
        let head = if unchanged {
            "credentials already in"
        } else {
            "credentials written to"
        };
        self.timeline.push(TimelineEntry {
            at,
            phase: None,
            what: format!("{head} {}: {item}", config.display()),
            batch: Some(batch),
        });
    }

    /// The human form of `berth status`. What the record holds came partly from outside
    /// (a registry's error message, a user's variables): its control characters are shown
    /// escaped ([`printable`]), never sent to the terminal.
    pub fn render(&self) -> String {
        let raw = self.render_text();
        raw.split('\n')
            .map(printable)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn render_text(&self) -> String {
        let mut out = String::new();
        match &self.daemon {
            Some(d) => {
                let who = d
                    .uid
                    .map(|u| format!(", as {}", user_name(u)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "daemon: running (pid {}, berth {}{who})",
                    d.pid, d.version
                );
            }
            None => out.push_str("daemon: not running\n"),
        }
        if let Some(e) = &self.engine {
            let _ = writeln!(out, "engine: answers at {} (API {})", e.host, e.api_version);
            if let Some(why) = &e.user_access {
                let _ = writeln!(out, "  but {why}");
            }
        }
        out.push_str("\ntimeline:\n");
        if self.timeline.is_empty() {
            out.push_str("  (nothing yet)\n");
        }
        for t in &self.timeline {
            let _ = writeln!(out, "  {}  {}", when(t.at), t.what);
        }
        out.push_str("\nregistries:\n");
        if self.registries.is_empty() {
            out.push_str("  (none)\n");
        }
        for r in &self.registries {
            let mut what = match r.injected_at {
                Some(at) => format!("written {}", when(at)),
                None => "not written".to_string(),
            };
            if let Some(at) = r.renewed_at {
                let _ = write!(what, ", renewed {}", when(at));
            }
            if let Some(at) = r.expires_at {
                let _ = write!(what, ", token expires {}", when(at));
            }
            if let Some(at) = r.restored_at {
                let _ = write!(what, ", restored {}", when(at));
            }
            if let Some(l) = &r.login {
                let _ = write!(what, "; login {l}");
            }
            if let Some(e) = &r.error {
                let _ = write!(what, "; last error: {e}");
            }
            let _ = writeln!(out, "  {}  {}  {}  {what}", r.id, r.server, r.kind);
        }
        if !self.without_secrets.is_empty() {
            out.push_str("\nentries whose secrets are gone (berth inject --prune removes them):\n");
            for o in &self.without_secrets {
                let _ = writeln!(out, "  {}  {}", o.id, o.server);
            }
        }
        if !self.awaiting_secrets.is_empty() {
            out.push_str(
                "\nwaiting for their secrets (the daemon restarted; the credential helper has \
                 none for them until the next lifecycle hook brings them):\n",
            );
            for o in &self.awaiting_secrets {
                let _ = writeln!(out, "  {}  {}", o.id, o.server);
            }
        }
        out.push_str("\npulls:\n");
        if self.pulls.is_empty() {
            out.push_str("  (none)\n");
        }
        for p in &self.pulls {
            let state = serde_json::to_value(p.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let mut what = state;
            match p.state {
                PullState::Done if p.checked => {
                    if let Some(d) = &p.digest {
                        let _ = write!(what, "  {}", short_digest(d));
                    }
                    if let Some(platform) = &p.platform {
                        let _ = write!(what, "  for {platform}");
                    }
                    let _ = write!(what, "  already present (checked)");
                }
                PullState::Done => {
                    if let Some(d) = &p.digest {
                        let _ = write!(what, "  {}", short_digest(d));
                    }
                    if let Some(platform) = &p.platform {
                        let _ = write!(what, "  for {platform}");
                    }
                    if let Some(s) = p.seconds {
                        let _ = write!(what, "  {} in {s:.1} s", human_bytes(p.bytes));
                    }
                    let _ = write!(
                        what,
                        "  from {}",
                        match (p.via.as_deref(), p.unverified) {
                            (None, _) => "its registry".to_string(),
                            (Some(c), false) => format!("the cache {c}"),
                            (Some(c), true) => format!(
                                "the cache {c}, UNVERIFIED: its registry gave no digest to check it against"
                            ),
                        }
                    );
                }
                PullState::Pulling | PullState::Retrying => {
                    let _ = write!(what, "  {}", human_bytes(p.bytes));
                    if let Some(t) = p.total.filter(|t| *t > 0) {
                        let _ = write!(what, " of {}", human_bytes(t));
                    }
                    if let Some((d, n)) = p.layers.filter(|(_, n)| *n > 0) {
                        let _ = write!(what, ", {d}/{n} layers");
                    }
                }
                _ => {}
            }
            if let Some(e) = &p.error {
                let _ = write!(what, "  ({e})");
            }
            let _ = writeln!(out, "  {}  {what}", p.image);
        }
        out
    }
}

/// berth's entries (from its record beside the config) whose identifier the latest hook
/// that found any secrets no longer had. Before any such hook (a prebuild, where secrets
/// are merely absent), none.
pub fn without_secrets(records: &[Record], managed: &crate::docker_config::Managed) -> Vec<Orphan> {
    let Some(ids) = records.iter().rev().find_map(|r| match &r.event {
        Event::Phase { ids, .. } if !ids.is_empty() => Some(ids),
        _ => None,
    }) else {
        return Vec::new();
    };
    managed
        .entries
        .iter()
        .filter(|(_, e)| !ids.contains(&e.id))
        .map(|(server, e)| Orphan {
            id: e.id.clone(),
            server: server.clone(),
        })
        .collect()
}

/// A user's name, or `uid N`.
fn user_name(uid: u32) -> String {
    crate::account::Account::by_uid(nix::unistd::Uid::from_raw(uid))
        .map(|a| a.name)
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// An RFC 3339 time, to the second, UTC.
pub fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(time_of(ms)).to_string()
}

/// `sha256:0123456789ab`.
fn short_digest(d: &str) -> &str {
    let end = d.find(':').map(|i| i + 13).unwrap_or(12).min(d.len());
    &d[..end]
}

/// Bytes in B, kB, MB or GB (decimal, as docker prints them).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker_config::Change;
    use crate::phase::Phase;

    #[test]
    fn timeline_and_latest_states() {
        let records = vec![
            rec(
                1,
                Event::DaemonStarted {
                    pid: 7,
                    version: "0.1.0".into(),
                    uid: Some(0),
                    container: Some("abc".into()),
                },
            ),
            rec(
                2,
                Event::Phase {
                    phase: Phase::OnCreate,
                    uid: 1000,
                    handler: Handler::Daemon,
                    ids: vec!["A".into()],
                    ran_at: None,
                },
            ),
            rec(
                3,
                Event::Deferred {
                    phase: Phase::OnCreate,
                    until: "to postCreate".into(),
                },
            ),
            rec(
                4,
                Event::Injected {
                    id: "A".into(),
                    server: "a.io".into(),
                    kind: "other".into(),
                    change: Change::Added,
                    config: "/c".into(),
                    expires_at: None,
                },
            ),
            rec(
                5,
                Event::PullDone {
                    image: "a.io/x:1".into(),
                    digest: Some("sha256:abc".into()),
                    bytes: 2_500_000,
                    seconds: 1.5,
                    already_present: false,
                    via: None,
                    unverified: false,
                    platform: Some("linux/arm64".into()),
                },
            ),
        ];
        let s = Status::from_records(&records);
        assert_eq!(s.timeline.len(), 5);
        assert_eq!(s.registries.len(), 1);
        assert_eq!(s.registries[0].injected_at, Some(4));
        assert_eq!(s.pulls[0].state, PullState::Done);
        let text = s.render();
        assert!(
            text.contains("onCreate hook ran (uid 1000); secrets for A"),
            "{text}"
        );
        assert!(text.contains("2.5 MB in 1.5 s"), "{text}");
        // The platform pulled is said, on the timeline and in the pull's line.
        assert!(
            text.contains("pulled a.io/x:1 (linux/arm64, 2.5 MB in 1.5 s)"),
            "{text}"
        );
        assert!(
            text.contains("a.io/x:1  done  sha256:abc  for linux/arm64  2.5 MB in 1.5 s"),
            "{text}"
        );
    }

    fn rec(at: u64, event: Event) -> Record {
        Record { at, event }
    }

    /// The status after these records, applied one by one.
    fn fold(events: Vec<Event>) -> Status {
        let mut s = Status::default();
        for (i, e) in events.into_iter().enumerate() {
            s.apply(&rec(1_000 * (i as u64 + 1), e));
        }
        s
    }

    fn whats(s: &Status) -> Vec<&str> {
        s.timeline.iter().map(|t| t.what.as_str()).collect()
    }

    fn injected(id: &str, change: Change, config: &str) -> Event {
        Event::Injected {
            id: id.into(),
            server: format!("{}.io", id.to_lowercase()),
            kind: "other".into(),
            change,
            config: config.into(),
            expires_at: None,
        }
    }

    fn done(image: &str, via: Option<&str>, already_present: bool) -> Event {
        Event::PullDone {
            image: image.into(),
            digest: Some("sha256:0123456789abcdef".into()),
            bytes: 1_200,
            seconds: 0.5,
            already_present,
            via: via.map(str::to_string),
            unverified: false,
            platform: None,
        }
    }

    #[test]
    fn daemon_started_forgets_pulls_and_engine_and_names_a_new_container() {
        let started = |c: &str| Event::DaemonStarted {
            pid: 7,
            version: "0.1.0".into(),
            uid: None,
            container: Some(c.into()),
        };
        let s = fold(vec![
            started("abc"),
            Event::EngineReady {
                host: "unix:///var/run/docker.sock".into(),
                api_version: "1.47".into(),
                user_access: None,
            },
            done("a.io/x:1", None, false),
            started("abc"),
            started("def"),
        ]);
        assert!(s.pulls.is_empty() && s.engine.is_none(), "{s:?}");
        assert_eq!(
            whats(&s)[3],
            "daemon started (pid 7, berth 0.1.0, container abc)"
        );
        assert_eq!(
            whats(&s)[4],
            "daemon started (pid 7, berth 0.1.0, container def); a new container, def, made from the snapshot of abc (a prebuild's, say): what follows is its own"
        );
    }

    #[test]
    fn daemon_stopped_is_a_line() {
        let s = fold(vec![Event::DaemonStopped { pid: 9 }]);
        assert_eq!(whats(&s), ["daemon stopped (pid 9)"]);
    }

    #[test]
    fn phase_says_who_handled_it_and_which_secrets_it_had() {
        let s = fold(vec![
            Event::Phase {
                phase: Phase::OnCreate,
                uid: 1000,
                handler: Handler::Hook,
                ids: vec![],
                ran_at: None,
            },
            Event::Phase {
                phase: Phase::PostCreate,
                uid: 1000,
                handler: Handler::Daemon,
                ids: vec!["A".into(), "B".into()],
                ran_at: None,
            },
            Event::Phase {
                phase: Phase::UpdateContent,
                uid: 1000,
                handler: Handler::Daemon,
                ids: vec!["A".into()],
                ran_at: Some(0),
            },
        ]);
        assert_eq!(
            whats(&s),
            [
                "onCreate hook ran (uid 1000, handled without the daemon); no registry secrets",
                "postCreate hook ran (uid 1000); secrets for A, B",
                "updateContent hook ran (uid 1000, at 1970-01-01T00:00:00Z; handed to the daemon, which was not running yet); secrets for A"
            ]
        );
        assert_eq!(s.timeline[1].phase.as_deref(), Some("postCreate"));
    }

    #[test]
    fn deferred_names_its_phase() {
        let s = fold(vec![Event::Deferred {
            phase: Phase::OnCreate,
            until: "until postCreate".into(),
        }]);
        assert_eq!(whats(&s), ["credentials deferred until postCreate"]);
        assert_eq!(s.timeline[0].phase.as_deref(), Some("onCreate"));
    }

    #[test]
    fn injected_registries_of_one_write_share_a_line_and_unchanged_keeps_the_first_time() {
        let s = fold(vec![
            injected("A", Change::Added, "/c"),
            injected("B", Change::Updated, "/c"),
            injected("C", Change::Added, "/other"),
            injected("A", Change::Unchanged, "/c"),
        ]);
        assert_eq!(
            whats(&s),
            [
                "credentials written to /c: A (a.io, added), B (b.io, updated)",
                "credentials written to /other: C (c.io, added)",
                "credentials already in /c: A (a.io)"
            ]
        );
        let ids: Vec<_> = s.registries.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["A", "B", "C"]);
        assert_eq!(s.registries[0].injected_at, Some(1_000));
        assert_eq!(s.registries[0].server, "a.io");
    }

    #[test]
    fn injections_far_apart_are_separate_lines() {
        let mut s = Status::default();
        s.apply(&rec(1_000, injected("A", Change::Added, "/c")));
        s.apply(&rec(
            1_000 + BATCH_WINDOW_MS,
            injected("B", Change::Added, "/c"),
        ));
        assert_eq!(s.timeline.len(), 2);
    }

    #[test]
    fn inject_failed_marks_its_registry_and_a_later_injection_clears_it() {
        let failed = fold(vec![Event::InjectFailed {
            id: "A".into(),
            error: "ECR refused".into(),
        }]);
        assert_eq!(failed.registries[0].error.as_deref(), Some("ECR refused"));
        assert_eq!(whats(&failed), ["failed: ECR refused"]);
        let mended = fold(vec![
            Event::InjectFailed {
                id: "A".into(),
                error: "ECR refused".into(),
            },
            injected("A", Change::Added, "/c"),
        ]);
        assert_eq!(mended.registries[0].error, None);
    }

    #[test]
    fn config_failed_is_a_line_and_no_registry() {
        let s = fold(vec![Event::ConfigFailed {
            error: "config.json is not JSON".into(),
        }]);
        assert!(s.registries.is_empty());
        assert_eq!(whats(&s), ["failed: config.json is not JSON"]);
    }

    #[test]
    fn restored_stamps_the_registries_it_names() {
        let s = fold(vec![
            injected("A", Change::Added, "/c"),
            Event::Restored {
                ids: vec!["A".into(), "Z".into()],
                config: "/c".into(),
            },
        ]);
        assert_eq!(
            s.registries.len(),
            1,
            "an unknown identifier makes no registry"
        );
        assert_eq!(s.registries[0].restored_at, Some(2_000));
        assert_eq!(
            whats(&s)[1],
            "restored A, Z in /c (another program had dropped or changed them)"
        );
    }

    #[test]
    fn renewed_sets_the_expiry_and_clears_an_error() {
        let s = fold(vec![
            Event::RenewFailed {
                id: "E".into(),
                error: "no network".into(),
            },
            injected("E", Change::Added, "/c"),
            Event::RenewFailed {
                id: "E".into(),
                error: "no network".into(),
            },
            Event::Renewed {
                id: "E".into(),
                server: "e.io".into(),
                expires_at: Some(99),
            },
        ]);
        let e = &s.registries[0];
        assert_eq!(
            (e.renewed_at, e.expires_at, e.error.as_deref()),
            (Some(4_000), Some(99), None)
        );
        assert_eq!(
            whats(&s),
            [
                "E: renewal failed: no network",
                "credentials written to /c: E (e.io, added)",
                "E: renewal failed: no network",
                "E (e.io) token renewed"
            ]
        );
    }

    #[test]
    fn renew_failed_marks_a_known_registry_only() {
        let s = fold(vec![
            injected("E", Change::Added, "/c"),
            Event::RenewFailed {
                id: "E".into(),
                error: "no network".into(),
            },
            Event::RenewFailed {
                id: "F".into(),
                error: "no network".into(),
            },
        ]);
        assert_eq!(s.registries.len(), 1);
        assert_eq!(s.registries[0].error.as_deref(), Some("no network"));
    }

    #[test]
    fn engine_ready_keeps_why_the_user_cannot_open_it() {
        let s = fold(vec![Event::EngineReady {
            host: "unix:///var/run/docker.sock".into(),
            api_version: "1.47".into(),
            user_access: Some("dev is not in group docker".into()),
        }]);
        let e = s.engine.as_ref().unwrap();
        assert_eq!(e.user_access.as_deref(), Some("dev is not in group docker"));
        assert_eq!(
            whats(&s),
            ["Docker engine answered at unix:///var/run/docker.sock (API 1.47)"]
        );
        assert!(s.render().contains("  but dev is not in group docker"));
    }

    #[test]
    fn pull_started_counts_attempts_and_says_nothing() {
        let started = || Event::PullStarted {
            image: "a.io/x:1".into(),
        };
        let s = fold(vec![started(), started()]);
        assert_eq!(s.pulls[0].state, PullState::Pulling);
        assert_eq!(s.pulls[0].attempts, 2);
        assert!(s.timeline.is_empty());
    }

    #[test]
    fn pull_done_says_where_the_image_came_from() {
        let s = fold(vec![
            done("b.io/y:1", Some("cache.local:5000"), false),
            done("a.io/x:1", None, true),
        ]);
        assert_eq!(
            whats(&s),
            [
                "pulled b.io/y:1 (1.2 kB in 0.5 s, through the cache cache.local:5000)",
                "a.io/x:1 already present (checked)"
            ]
        );
        // What was checked says no size, time or origin it did not measure.
        let checked = s.pulls.iter().find(|p| p.image == "a.io/x:1").unwrap();
        assert!(checked.checked && checked.seconds.is_none() && checked.via.is_none());
        let line = s
            .render()
            .lines()
            .find(|l| l.contains("a.io/x:1"))
            .unwrap()
            .to_string();
        assert!(line.contains("already present (checked)"), "{line}");
        assert!(!line.contains(" in ") && !line.contains("from "), "{line}");
        let images: Vec<_> = s.pulls.iter().map(|p| p.image.as_str()).collect();
        assert_eq!(images, ["a.io/x:1", "b.io/y:1"], "pulls in image order");
        let text = s.render();
        assert!(text.contains("from the cache cache.local:5000"), "{text}");
        assert!(text.contains("sha256:0123456789ab  "), "{text}");
    }

    #[test]
    fn a_pull_its_registry_did_not_vouch_for_is_marked_unverified() {
        let mut unverified = done("b.io/y:1", Some("cache.local:5000"), false);
        if let Event::PullDone { unverified: u, .. } = &mut unverified {
            *u = true;
        }
        let s = fold(vec![
            unverified,
            done("a.io/x:1", Some("cache.local:5000"), false),
        ]);
        assert_eq!(
            whats(&s)[0],
            "pulled b.io/y:1 (1.2 kB in 0.5 s, through the cache cache.local:5000, unverified (its registry gave no digest to check it against))"
        );
        let text = s.render();
        assert!(
            text.contains("from the cache cache.local:5000, UNVERIFIED"),
            "{text}"
        );
        let json = serde_json::to_value(&s.pulls).unwrap();
        assert_eq!(json[1]["unverified"], true, "{json}");
        assert!(json[0].get("unverified").is_none(), "{json}");
    }

    #[test]
    fn pull_failed_keeps_the_reason_and_attempts() {
        let s = fold(vec![
            Event::PullStarted {
                image: "a.io/x:1".into(),
            },
            Event::PullFailed {
                image: "a.io/x:1".into(),
                error: "denied".into(),
                attempts: 3,
                permanent: true,
                stamp: 0,
            },
        ]);
        let p = &s.pulls[0];
        assert_eq!(
            (p.state, p.attempts, p.error.as_deref()),
            (PullState::Failed, 3, Some("denied"))
        );
        assert_eq!(
            whats(&s),
            ["pull of a.io/x:1 failed after 3 attempt(s): denied"]
        );
    }

    #[test]
    fn live_changes_move_a_pull_through_its_states() {
        let mut p = PullStatus::queued("a.io/x:1");
        p.apply(&PullChange::Attempt(1));
        p.apply(&PullChange::Progress {
            bytes: 10,
            total: 100,
            layers_done: 1,
            layers: 3,
        });
        assert_eq!(
            (p.state, p.bytes, p.total, p.layers),
            (PullState::Pulling, 10, Some(100), Some((1, 3)))
        );
        p.apply(&PullChange::CachePassed {
            cache: "c.local".into(),
            why: "it lacks the image".into(),
        });
        assert_eq!(
            p.error.as_deref(),
            Some("cache c.local passed over: it lacks the image")
        );
        p.apply(&PullChange::Retrying("503".into()));
        assert_eq!(
            (p.state, p.error.as_deref()),
            (PullState::Retrying, Some("503"))
        );
        p.apply(&PullChange::Failed {
            error: "no engine".into(),
            attempts: None,
        });
        assert_eq!(
            (p.state, p.attempts),
            (PullState::Failed, 1),
            "attempts kept when not known"
        );
    }

    #[test]
    fn the_live_board_lies_over_the_record() {
        let mut s = fold(vec![done("b.io/y:1", None, false)]);
        let mut live = std::collections::BTreeMap::new();
        let mut a = PullStatus::queued("a.io/x:1");
        a.apply(&PullChange::Attempt(2));
        live.insert(a.image.clone(), a);
        live.insert("b.io/y:1".to_string(), PullStatus::queued("b.io/y:1"));
        s.overlay(&live);
        let states: Vec<_> = s
            .pulls
            .iter()
            .map(|p| (p.image.as_str(), p.state))
            .collect();
        assert_eq!(
            states,
            [
                ("a.io/x:1", PullState::Pulling),
                ("b.io/y:1", PullState::Queued)
            ]
        );
    }

    #[test]
    fn bytes_read_like_docker() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(104_857_600), "104.9 MB");
    }
}

/// A login check's result in words: `accepted`, or `refused: FOUND; FIX`.
pub fn login_verdict(accepted: bool, found: &str, fix: Option<&str>) -> String {
    if accepted {
        "accepted".to_string()
    } else {
        match fix {
            Some(fix) => format!("refused: {found}; {fix}"),
            None => format!("refused: {found}"),
        }
    }
}

/// `text` with its control characters (escape sequences a terminal would obey, carriage
/// returns, bells) and the Unicode marks that reorder text shown as escapes (`\u{1b}`):
/// for every line berth prints of what came from outside.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let reorders = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || reorders {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod printable_tests {
    use super::printable;

    #[test]
    fn escapes_reach_the_terminal_as_text() {
        assert_eq!(printable("plain text: ok"), "plain text: ok");
        assert_eq!(
            printable("a\u{1b}]0;owned\u{7}b\rc\u{202e}d"),
            "a\\u{1b}]0;owned\\u{7}b\\u{d}c\\u{202e}d"
        );
        assert_eq!(printable("pässwörd €"), "pässwörd €");
    }
}
