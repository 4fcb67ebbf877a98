//! Where phases are tracked: berth's state folder and its durable record of events.
//!
//! The state folder ([`StateDir`]) holds the daemon's socket and lock, the log, and
//! `events.jsonl`: one JSON line per thing that happened (a phase's hook, a daemon start,
//! an injection, a renewal, a pull). Lines are only ever appended, each in one write
//! followed by a flush to disk, by the daemon (or a hook working without it, when it runs
//! as the daemon's user); so a daemon that is killed or a container that restarts finds
//! the whole history and knows what was already done. No line holds a secret.

mod folder;

pub use folder::{EVENTS, LOCK, LOG, OwnedState, SOCKET, SYSTEM_DIR, StateDir, StateError};

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::docker_config::Change;
use crate::phase::Phase;

/// Milliseconds since the Unix epoch.
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The time of a millisecond timestamp.
pub fn time_of(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// Who handled a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Handler {
    /// The daemon, asked by the hook.
    Daemon,
    /// The hook itself, without a daemon.
    Hook,
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A daemon started.
    DaemonStarted {
        /// Its pid.
        pid: u32,
        /// berth's version.
        version: String,
        /// The user it runs as.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        /// The container it runs in ([`crate::container::id`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// A daemon stopped cleanly.
    DaemonStopped {
        /// Its pid.
        pid: u32,
    },
    /// A lifecycle hook ran.
    Phase {
        /// Which.
        phase: Phase,
        /// The user it ran as.
        uid: u32,
        /// Who handled it.
        handler: Handler,
        /// Registry identifiers in its environment.
        #[serde(default)]
        ids: Vec<String>,
        /// When the hook ran, for a phase handed to the daemon after its hook returned (the
        /// daemon was not running yet); ms since the epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ran_at: Option<u64>,
    },
    /// Writing credentials was put off.
    Deferred {
        /// In which phase.
        phase: Phase,
        /// Until when, in words.
        until: String,
    },
    /// A registry's login was written (or found already in place).
    Injected {
        /// The secret identifier.
        id: String,
        /// The registry key.
        server: String,
        /// Its kind.
        kind: String,
        /// What changed in the config.
        change: Change,
        /// The config file.
        config: PathBuf,
        /// When its token expires (ms since the epoch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
    /// berth put back entries another writer had dropped or changed.
    Restored {
        /// The secret identifiers.
        ids: Vec<String>,
        /// The config file.
        config: PathBuf,
    },
    /// A registry's login could not be obtained or written.
    InjectFailed {
        /// The secret identifier.
        id: String,
        /// Why.
        error: String,
    },
    /// The config itself could not be read or written, for every registry.
    ConfigFailed {
        /// Why.
        error: String,
    },
    /// The registry was asked whether it accepts a login berth wrote (or holds for its
    /// helper), as `docker login` would ask.
    LoginChecked {
        /// The secret identifier.
        id: String,
        /// The registry key.
        server: String,
        /// Whether the registry accepted it.
        accepted: bool,
        /// What the check found, in words (doctor's).
        found: String,
        /// What to do, for a refusal.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fix: Option<String>,
    },
    /// An ECR token was renewed.
    Renewed {
        /// The secret identifier.
        id: String,
        /// The registry key.
        server: String,
        /// The new expiry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
    /// An ECR token renewal failed; the last token stays.
    RenewFailed {
        /// The secret identifier.
        id: String,
        /// Why.
        error: String,
    },
    /// The Docker engine answered.
    EngineReady {
        /// Where.
        host: String,
        /// Its API version.
        api_version: String,
        /// Why the remote user cannot open it, if they cannot.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_access: Option<String>,
    },
    /// A pre-pull started.
    PullStarted {
        /// The image.
        image: String,
    },
    /// A pre-pull finished.
    PullDone {
        /// The image.
        image: String,
        /// Its digest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        /// Bytes downloaded.
        bytes: u64,
        /// Seconds it took.
        seconds: f64,
        /// Whether the image was already there.
        #[serde(default)]
        already_present: bool,
        /// The pull-through cache it came from, if not its registry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
        /// It came from the cache without its registry's word for its digest
        /// (`mirrorsUnverified`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unverified: bool,
        /// The platform of the image the engine holds (`linux/arm64`), when it said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        platform: Option<String>,
    },
    /// A pre-pull failed for good.
    PullFailed {
        /// The image.
        image: String,
        /// Why.
        error: String,
        /// Attempts made.
        attempts: u32,
        /// A refusal no retry mends (unauthorized, denied, unknown image).
        #[serde(default)]
        permanent: bool,
        /// The stamp of the registry's entry when it failed (0 without credentials):
        /// berth tries again when it changes, that is, when the secrets do.
        #[serde(default)]
        stamp: u64,
    },
}

/// An event with its time.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// When (ms since the epoch).
    pub at: u64,
    /// What.
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    /// The record's JSON line (without its newline).
    pub fn to_line(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record serialises")
    }
}

/// The records of complete lines in `buf`, which starts at byte `offset` of the record,
/// and the offset after the last complete line. A line that does not parse (torn by a
/// crash, or from a newer berth) is skipped.
pub fn parse_records(buf: &[u8], offset: u64) -> (Vec<Record>, u64) {
    let complete = buf
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let records = buf[..complete]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    (records, offset + complete as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_lines_are_read_and_the_offset_follows_them() {
        let line = Record {
            at: 1,
            event: Event::DaemonStopped { pid: 1 },
        }
        .to_line();
        let mut buf = line.clone();
        buf.push(b'\n');
        buf.extend_from_slice(b"not json\n");
        let whole = buf.len() as u64;
        buf.extend_from_slice(&line[..5]);
        let (records, off) = parse_records(&buf, 10);
        assert_eq!(records.len(), 1);
        assert_eq!(off, 10 + whole);
    }
}
