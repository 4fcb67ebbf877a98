//! What `berth status` shows: the phase timeline, the registries and the pulls, derived
//! from the event record (so it works without a daemon), with the daemon's live progress
//! laid over it when the daemon answers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

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
}

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
        }
    }
}

impl Status {
    /// The status the event record tells.
    pub fn from_records(records: &[Record]) -> Status {
        let mut status = Status::default();
        let mut regs: BTreeMap<String, RegistryStatus> = BTreeMap::new();
        let mut pulls: BTreeMap<String, PullStatus> = BTreeMap::new();
        let mut last_container: Option<String> = None;
        for r in records {
            let at = r.at;
            match &r.event {
                Event::DaemonStarted {
                    pid,
                    version,
                    uid,
                    container,
                } => {
                    // What the engine held belonged to before this start: the daemon checks
                    // again, and until then no pull is shown as done.
                    pulls.clear();
                    status.engine = None;
                    let moved = match (&last_container, container) {
                        (Some(before), Some(now)) if before != now => format!(
                            "; a new container, {now}, made from the snapshot of {before} (a prebuild's, say): what follows is its own"
                        ),
                        _ => String::new(),
                    };
                    if container.is_some() {
                        last_container.clone_from(container);
                    }
                    push(
                        &mut status.timeline,
                        at,
                        None,
                        format!(
                            "daemon started (pid {pid}, berth {version}{}{})",
                            uid.map(|u| format!(", as {}", user_name(u)))
                                .unwrap_or_default(),
                            container
                                .as_ref()
                                .map(|c| format!(", container {c}"))
                                .unwrap_or_default(),
                        ) + &moved,
                    )
                }
                Event::DaemonStopped { pid } => push(
                    &mut status.timeline,
                    at,
                    None,
                    format!("daemon stopped (pid {pid})"),
                ),
                Event::Phase {
                    phase,
                    uid,
                    handler,
                    ids,
                } => {
                    let by = match handler {
                        Handler::Daemon => "",
                        Handler::Hook => ", handled without the daemon",
                    };
                    let found = if ids.is_empty() {
                        "no registry secrets".to_string()
                    } else {
                        format!("secrets for {}", ids.join(", "))
                    };
                    push(
                        &mut status.timeline,
                        at,
                        Some(phase.name()),
                        format!("{phase} hook ran (uid {uid}{by}); {found}"),
                    )
                }
                Event::Deferred { phase, until } => push(
                    &mut status.timeline,
                    at,
                    Some(phase.name()),
                    format!("credentials deferred {until}"),
                ),
                Event::Injected {
                    id,
                    server,
                    kind,
                    change,
                    config,
                    expires_at,
                } => {
                    let e = regs.entry(id.clone()).or_default();
                    e.id = id.clone();
                    e.server = server.clone();
                    e.kind = kind.clone();
                    let unchanged = *change == crate::docker_config::Change::Unchanged;
                    if !unchanged || e.injected_at.is_none() {
                        e.injected_at = Some(r.at);
                    }
                    e.expires_at = *expires_at;
                    e.error = None;
                    // One line per hook: the registries of one write share it.
                    let head = if unchanged {
                        format!("credentials already in {}:", config.display())
                    } else {
                        format!("credentials written to {}:", config.display())
                    };
                    let item = if unchanged {
                        format!(" {id} ({server})")
                    } else {
                        let change = serde_json::to_value(change)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        format!(" {id} ({server}, {change})")
                    };
                    match status.timeline.last_mut() {
                        Some(last)
                            if last.what.starts_with(&head)
                                && r.at.saturating_sub(last.at) < 2_000 =>
                        {
                            last.what.push(',');
                            last.what.push_str(&item);
                        }
                        _ => push(&mut status.timeline, at, None, format!("{head}{item}")),
                    }
                }
                Event::InjectFailed { id, error } => {
                    if let Some(e) = regs.get_mut(id) {
                        e.error = Some(error.clone());
                    } else if id != "*" {
                        regs.insert(
                            id.clone(),
                            RegistryStatus {
                                id: id.clone(),
                                error: Some(error.clone()),
                                ..Default::default()
                            },
                        );
                    }
                    push(&mut status.timeline, at, None, format!("failed: {error}"))
                }
                Event::Restored { ids, config } => {
                    for id in ids {
                        if let Some(e) = regs.get_mut(id) {
                            e.restored_at = Some(at);
                        }
                    }
                    push(
                        &mut status.timeline,
                        at,
                        None,
                        format!(
                            "restored {} in {} (another program had dropped or changed them)",
                            ids.join(", "),
                            config.display()
                        ),
                    )
                }
                Event::Renewed {
                    id,
                    server,
                    expires_at,
                } => {
                    let e = regs.entry(id.clone()).or_default();
                    e.id = id.clone();
                    e.server = server.clone();
                    e.renewed_at = Some(r.at);
                    e.expires_at = *expires_at;
                    e.error = None;
                    push(
                        &mut status.timeline,
                        at,
                        None,
                        format!("{id} ({server}) token renewed"),
                    )
                }
                Event::RenewFailed { id, error } => {
                    if let Some(e) = regs.get_mut(id) {
                        e.error = Some(error.clone());
                    }
                    push(
                        &mut status.timeline,
                        at,
                        None,
                        format!("{id}: renewal failed: {error}"),
                    )
                }
                Event::EngineReady {
                    host,
                    api_version,
                    user_access,
                } => {
                    status.engine = Some(EngineStatus {
                        host: host.clone(),
                        api_version: api_version.clone(),
                        user_access: user_access.clone(),
                    });
                    push(
                        &mut status.timeline,
                        at,
                        None,
                        format!("Docker engine answered at {host} (API {api_version})"),
                    )
                }
                Event::PullStarted { image } => {
                    let p = pulls
                        .entry(image.clone())
                        .or_insert_with(|| PullStatus::queued(image));
                    p.state = PullState::Pulling;
                    p.attempts += 1;
                }
                Event::PullDone {
                    image,
                    digest,
                    bytes,
                    seconds,
                    already_present,
                    via,
                } => {
                    let p = pulls
                        .entry(image.clone())
                        .or_insert_with(|| PullStatus::queued(image));
                    p.state = PullState::Done;
                    p.digest = digest.clone();
                    p.bytes = *bytes;
                    p.seconds = Some(*seconds);
                    p.error = None;
                    p.via = via.clone();
                    let through = via
                        .as_deref()
                        .map(|c| format!(", through the cache {c}"))
                        .unwrap_or_default();
                    let what = if *already_present {
                        format!("{image} already present")
                    } else {
                        format!(
                            "pulled {image} ({} in {seconds:.1} s{through})",
                            human_bytes(*bytes)
                        )
                    };
                    push(&mut status.timeline, at, None, what)
                }
                Event::PullFailed {
                    image,
                    error,
                    attempts,
                    ..
                } => {
                    let p = pulls
                        .entry(image.clone())
                        .or_insert_with(|| PullStatus::queued(image));
                    p.state = PullState::Failed;
                    p.error = Some(error.clone());
                    p.attempts = *attempts;
                    push(
                        &mut status.timeline,
                        at,
                        None,
                        format!("pull of {image} failed after {attempts} attempt(s): {error}"),
                    )
                }
            }
        }
        status.registries = regs.into_values().collect();
        status.pulls = pulls.into_values().collect();
        status
    }

    /// The human form of `berth status`.
    pub fn render(&self) -> String {
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
                PullState::Done => {
                    if let Some(d) = &p.digest {
                        let _ = write!(what, "  {}", short_digest(d));
                    }
                    if let Some(s) = p.seconds {
                        let _ = write!(what, "  {} in {s:.1} s", human_bytes(p.bytes));
                    }
                    let _ = write!(
                        what,
                        "  from {}",
                        p.via
                            .as_deref()
                            .map_or("its registry".to_string(), |c| { format!("the cache {c}") })
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

/// Adds a line to the timeline.
fn push(timeline: &mut Vec<TimelineEntry>, at: u64, phase: Option<&str>, what: String) {
    timeline.push(TimelineEntry {
        at,
        phase: phase.map(str::to_string),
        what,
    });
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
        let rec = |at, event| Record { at, event };
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
    }

    #[test]
    fn bytes_read_like_docker() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(104_857_600), "104.9 MB");
    }
}
