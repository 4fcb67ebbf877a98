//! Where phases are tracked: berth's state folder and its durable record of events.
//!
//! The state folder (`/var/lib/berth` by default) holds the daemon's socket and lock, the
//! log, and `events.jsonl`: one JSON line per thing that happened (a phase's hook, a daemon
//! start, an injection, a renewal, a pull). Lines are only ever appended, each in one write
//! followed by a flush to disk, by the daemon or by a hook working without it; so a daemon
//! that is killed or a container that restarts finds the whole history and knows what was
//! already done. No line holds a secret.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::atomic::{self, Ownership};
use crate::docker_config::Change;
use crate::phase::Phase;

/// The state folder and the names of what it holds.
#[derive(Clone, Debug)]
pub struct StateDir {
    /// The folder.
    pub path: PathBuf,
}

impl StateDir {
    /// A state folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.path.join("berth.sock")
    }

    /// The daemon's single-instance lock (holds its pid).
    pub fn lock(&self) -> PathBuf {
        self.path.join("daemon.lock")
    }

    /// The event record.
    pub fn events(&self) -> EventLog {
        EventLog {
            path: self.path.join("events.jsonl"),
        }
    }

    /// The JSON log.
    pub fn log(&self) -> PathBuf {
        self.path.join(crate::logging::LOG_FILE)
    }

    /// Creates the folder (0700, given owner) if it is missing.
    pub fn prepare(&self, owner: Ownership) -> io::Result<()> {
        atomic::ensure_dir(
            &self.path,
            Ownership {
                mode: 0o700,
                ..owner
            },
        )
    }
}

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
    /// A registry's login could not be obtained or written.
    InjectFailed {
        /// The secret identifier (or `*` when the config itself failed).
        id: String,
        /// Why.
        error: String,
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
    },
    /// A pre-pull failed for good.
    PullFailed {
        /// The image.
        image: String,
        /// Why.
        error: String,
        /// Attempts made.
        attempts: u32,
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

/// The append-only event record.
#[derive(Clone, Debug)]
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    /// The record's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event, now. The line is written in one call and flushed to disk.
    pub fn append(&self, event: Event, owner: Ownership) -> io::Result<Record> {
        let record = Record {
            at: millis(SystemTime::now()),
            event,
        };
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(owner.mode)
            .open(&self.path)?;
        if let Some((uid, gid)) = owner.owner {
            let _ = nix::unistd::fchown(&f, Some(uid), Some(gid));
        }
        // A line torn by a crash must not swallow the next one.
        let len = f.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            f.seek(SeekFrom::Start(len - 1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                line.insert(0, b'\n');
            }
        }
        f.write_all(&line)?;
        f.sync_data()?;
        Ok(record)
    }

    /// Every readable record; a line that does not parse (torn by a crash, or from a newer
    /// berth) is skipped.
    pub fn read_all(&self) -> Vec<Record> {
        self.read_from(0).0
    }

    /// Records from byte `offset` on, and the offset after the last complete line.
    pub fn read_from(&self, offset: u64) -> (Vec<Record>, u64) {
        let Ok(mut f) = fs::File::open(&self.path) else {
            return (Vec::new(), offset);
        };
        if f.seek(SeekFrom::Start(offset)).is_err() {
            return (Vec::new(), offset);
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return (Vec::new(), offset);
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_survive_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = StateDir::new(dir.path()).events();
        let own = Ownership::private(None);
        log.append(
            Event::DaemonStarted {
                pid: 1,
                version: "x".into(),
            },
            own,
        )
        .unwrap();
        // A crash in the middle of a write.
        let mut f = OpenOptions::new().append(true).open(log.path()).unwrap();
        f.write_all(b"{\"at\":5,\"event\":\"pha").unwrap();
        log.append(Event::DaemonStopped { pid: 1 }, own).unwrap();
        let all = log.read_all();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].event, Event::DaemonStopped { pid: 1 });
    }

    #[test]
    fn read_from_returns_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = StateDir::new(dir.path()).events();
        let own = Ownership::private(None);
        log.append(Event::DaemonStopped { pid: 1 }, own).unwrap();
        let (first, off) = log.read_from(0);
        assert_eq!(first.len(), 1);
        log.append(Event::DaemonStopped { pid: 2 }, own).unwrap();
        let (next, off2) = log.read_from(off);
        assert_eq!(next.len(), 1);
        assert!(off2 > off);
        assert_eq!(log.read_from(off2).0.len(), 0);
    }
}
