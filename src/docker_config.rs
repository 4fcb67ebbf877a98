//! Where `config.json` is written: the target user's Docker config, edited safely.
//!
//! berth adds one entry per registry and touches nothing else: every other key, entry and
//! unknown field is kept, in order. The Docker CLI looks a registry up in
//! `credHelpers[host]` first, then in a default `credsStore`, and only then in `auths`; so
//! besides the `auths` entry (which every tool reads) berth sets `credHelpers[host]`, which
//! keeps its entries in force under a default store such as the one IDEs install in dev
//! containers: to `berth` when `docker-credential-berth` is installed (the helper answers
//! from the same `auths` entry, so the credentials live in one place), else to the empty
//! string, which makes the Docker CLI read `auths` for that host (Docker CLI 20.10 to 28).
//!
//! Which entries berth manages is recorded beside the config (`berth-managed.json`, no
//! secrets in it), so that it later updates or removes only its own. A malformed existing
//! config is never overwritten: loading it fails with the line and column at fault.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::account::Account;
use crate::atomic;
use crate::bounded::{self, Limit, Links};
use crate::secret::Secret;

/// The name berth's credential helper is registered under (`docker-credential-berth`).
pub const HELPER_NAME: &str = "berth";
/// The file name of the credential helper program.
pub const HELPER_PROGRAM: &str = "docker-credential-berth";
/// The record of managed entries, beside `config.json`.
pub const MANAGED_FILE: &str = "berth-managed.json";

/// Where a user's Docker config lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The folder (`~/.docker` or `DOCKER_CONFIG`).
    pub dir: PathBuf,
}

/// This process's `DOCKER_CONFIG`, when it is set and not empty: the one place berth reads
/// it (an empty value means the default folder, as for the Docker CLI).
pub fn env_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

impl Location {
    /// The config folder of an account: `docker_config` (the `DOCKER_CONFIG` variable)
    /// when set, else `~/.docker`.
    pub fn for_account(account: &Account, docker_config: Option<PathBuf>) -> Location {
        let dir = docker_config
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| account.home.join(".docker"));
        Location { dir }
    }

    /// The config folder of whoever runs this process, as the Docker CLI finds it:
    /// `DOCKER_CONFIG`, else `$HOME/.docker` (the password database's home without `HOME`).
    pub fn of_environment() -> Location {
        let dir = env_dir().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .or_else(|| Account::current().ok().map(|a| a.home))
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".docker")
        });
        Location { dir }
    }

    /// The config file.
    pub fn file(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// berth's record of the entries it manages.
    pub fn managed_file(&self) -> PathBuf {
        self.dir.join(MANAGED_FILE)
    }

    fn lock_file(&self) -> PathBuf {
        self.dir.join(".berth.lock")
    }

    /// The folder's device and inode, following links (as the caller sees it): which
    /// folder the config lives in now. An error when there is none.
    pub fn identity(&self) -> io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(&self.dir)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a folder", self.dir.display()),
            ));
        }
        Ok((meta.dev(), meta.ino()))
    }
}

/// A config that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON.
    #[error(
        "{path} is not valid JSON ({kind} at line {line}, column {column}); berth left it \
         as it is: fix it or move it away, then run berth again"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The kind of error, without any text of the file.
        kind: &'static str,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
    },
    /// JSON, but not of Docker's shape.
    #[error("{path}: {what}; berth left it as it is: fix it or move it away, then run berth again")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Reading failed, or the file is not one berth reads (a FIFO, a device, too large).
    #[error(transparent)]
    Read(#[from] crate::bounded::FileError),
    /// Writing failed; the old file is untouched.
    #[error("cannot write {path}: {cause}; the file was left as it was")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
}

/// A loaded Docker config.
#[derive(Debug)]
pub struct DockerConfig {
    path: PathBuf,
    /// The file's bytes as read (empty when there was none).
    read: Vec<u8>,
    loaded: Map<String, Value>,
    doc: Map<String, Value>,
}

/// A loaded config holds every login in it (as base64 in `auths`): its bytes and every
/// string of its documents are wiped when it is dropped, as [`Secret`]s are.
impl Drop for DockerConfig {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.read.zeroize();
        wipe_strings(&mut self.loaded);
        wipe_strings(&mut self.doc);
    }
}

fn wipe_strings(map: &mut Map<String, Value>) {
    use zeroize::Zeroize as _;
    fn wipe(v: &mut Value) {
        match v {
            Value::String(s) => s.zeroize(),
            Value::Array(items) => items.iter_mut().for_each(wipe),
            Value::Object(map) => wipe_strings(map),
            _ => {}
        }
    }
    map.values_mut().for_each(wipe);
}

/// What happened to one registry's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// There was no entry; berth added one.
    Added,
    /// berth replaced an entry with different credentials.
    Updated,
    /// The entry already held these credentials.
    Unchanged,
    /// berth removed its entry.
    Removed,
}

impl Change {
    /// The change in one word, as the record and `berth inject` write it.
    pub fn word(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
            Change::Removed => "removed",
        }
    }
}

impl DockerConfig {
    /// Loads the config; a missing or empty file is an empty config.
    pub fn load(location: &Location) -> Result<DockerConfig, ConfigError> {
        let path = location.file();
        let real = atomic::resolve_symlinks(&path).unwrap_or_else(|_| path.clone());
        // Read as the config's user (the caller runs as them): a link they made is theirs
        // to follow, but whatever it leads to must be a regular file of sensible size.
        let text =
            bounded::read_if_exists(&real, Limit::CONFIG, Links::Follow)?.unwrap_or_default();
        let doc = parse(&path, &text)?;
        Ok(DockerConfig {
            path,
            read: text,
            loaded: doc.clone(),
            doc,
        })
    }

    /// A config to change from `base` (another writer's file, which a write displaced)
    /// while the file holds `on_disk` (what berth just wrote): saving it merges berth's
    /// change into theirs.
    pub fn load_onto(
        location: &Location,
        base: &[u8],
        on_disk: Vec<u8>,
    ) -> Result<DockerConfig, ConfigError> {
        let path = location.file();
        let doc = parse(&path, base)?;
        let loaded = parse(&path, &on_disk)?;
        Ok(DockerConfig {
            path,
            read: on_disk,
            loaded,
            doc,
        })
    }

    /// Whether there was a config file, with anything in it, when it was loaded.
    pub fn was_there(&self) -> bool {
        !self.read.is_empty()
    }

    /// The config file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The default credential store, if one is set.
    pub fn creds_store(&self) -> Option<&str> {
        self.doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The credential helper set for one registry, if any.
    pub fn cred_helper(&self, key: &str) -> Option<&str> {
        self.doc
            .get("credHelpers")
            .and_then(|h| h.get(key))
            .and_then(Value::as_str)
    }

    /// Sets a registry's credentials: its `auths` entry, and, with `helper`, its
    /// `credHelpers` value (`berth`, or `""` for "use auths"). Other fields of an existing
    /// entry are kept; tokens that would take
    /// precedence over a password are dropped.
    pub fn set_login(
        &mut self,
        key: &str,
        user: &Secret,
        password: &Secret,
        helper: Option<&str>,
    ) -> Change {
        let auth = encode_auth(user, password);
        let auths = object_at(&mut self.doc, "auths");
        let change = match auths.get(key) {
            None => Change::Added,
            Some(old) if old.get("auth").and_then(Value::as_str) == Some(auth.as_str()) => {
                Change::Unchanged
            }
            Some(_) => Change::Updated,
        };
        let entry = auths
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let obj = entry.as_object_mut().expect("an object");
        for stale in ["username", "password", "identitytoken", "registrytoken"] {
            obj.remove(stale);
        }
        obj.insert("auth".into(), Value::String(auth));
        let mut helper_changed = false;
        if let Some(helper) = helper {
            let helpers = object_at(&mut self.doc, "credHelpers");
            if helpers.get(key).and_then(Value::as_str) != Some(helper) {
                helpers.insert(key.to_string(), Value::String(helper.into()));
                helper_changed = true;
            }
        }
        match change {
            Change::Unchanged if helper_changed => Change::Updated,
            c => c,
        }
    }

    /// Names `helper` as the registry's credential helper and keeps no login for it here
    /// (credential store `helper`): berth's own `auths` entry, when `ours` says there is one,
    /// is removed; another writer's is left (the helper comes first for the Docker CLI).
    pub fn set_helper_only(&mut self, key: &str, helper: &str, ours: bool) -> Change {
        let had = self.cred_helper(key) == Some(helper);
        let removed = ours
            && self
                .doc
                .get_mut("auths")
                .and_then(Value::as_object_mut)
                .is_some_and(|auths| auths.remove(key).is_some());
        if !had {
            object_at(&mut self.doc, "credHelpers").insert(key.to_string(), helper.into());
        }
        match (had, removed) {
            (true, false) => Change::Unchanged,
            (false, false) => Change::Added,
            _ => Change::Updated,
        }
    }

    /// Removes berth's entry for a registry: its `auths` entry, and the `credHelpers`
    /// value berth set (`ours`), restoring the one it replaced.
    pub fn remove_login(
        &mut self,
        key: &str,
        ours: Option<&str>,
        previous_helper: Option<&str>,
    ) -> bool {
        let mut removed = false;
        if let Some(Value::Object(auths)) = self.doc.get_mut("auths") {
            removed |= auths.shift_remove(key).is_some();
        }
        if let Some(Value::Object(helpers)) = self.doc.get_mut("credHelpers")
            && ours.is_some()
            && helpers.get(key).and_then(Value::as_str) == ours
        {
            match previous_helper {
                Some(prev) => {
                    helpers.insert(key.to_string(), Value::String(prev.to_string()));
                }
                None => {
                    helpers.shift_remove(key);
                }
            }
            removed = true;
        }
        removed
    }

    /// The user and password stored in `auths` for a registry (the `auth` field, or the
    /// older `username`/`password` fields).
    pub fn login(&self, key: &str) -> Option<(Secret, Secret)> {
        let entry = self.doc.get("auths")?.get(key)?;
        if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()?;
            let text = String::from_utf8(bytes).ok()?;
            let (user, pass) = text.split_once(':')?;
            return Some((Secret::new(user), Secret::new(pass)));
        }
        let user = entry.get("username")?.as_str()?;
        let pass = entry.get("password")?.as_str()?;
        Some((Secret::new(user), Secret::new(pass)))
    }

    /// The registries that have an `auths` entry.
    pub fn auth_keys(&self) -> Vec<String> {
        self.doc
            .get("auths")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether anything differs from the file as loaded.
    pub fn is_changed(&self) -> bool {
        self.doc != self.loaded
    }

    /// The file's new content: tab-indented like the Docker CLI writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        serde::Serialize::serialize(&self.doc, &mut ser).expect("a JSON map serialises");
        out.push(b'\n');
        out
    }

    /// Writes the config if anything changed (atomically, mode 0600), unless another
    /// writer replaced the file since it was loaded ([`atomic::Outcome::Changed`]: load
    /// and apply again). Run it as the config's user: the file is theirs.
    pub fn save(&self) -> Result<atomic::Outcome, ConfigError> {
        let write_err = |cause| ConfigError::Write {
            path: self.path.clone(),
            cause,
        };
        if !self.is_changed() {
            // Nothing to write; still make sure an existing file is private and the user's.
            if self.path.exists() {
                let real = atomic::resolve_symlinks(&self.path).unwrap_or(self.path.clone());
                if !atomic::fix_metadata(&real, 0o600).map_err(write_err)? {
                    return atomic::write_over(
                        &self.path,
                        &self.to_bytes(),
                        0o600,
                        Some(&self.read),
                    )
                    .map_err(write_err);
                }
            }
            return Ok(atomic::Outcome::Unchanged);
        }
        atomic::write_over(&self.path, &self.to_bytes(), 0o600, Some(&self.read)).map_err(write_err)
    }
}

/// Parses a config's text, checking the keys berth touches have Docker's shapes.
fn parse(path: &Path, text: &[u8]) -> Result<Map<String, Value>, ConfigError> {
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(text).map_err(|e| ConfigError::Malformed {
        path: path.to_path_buf(),
        kind: crate::secrets::json_error_kind(&e),
        line: e.line(),
        column: e.column(),
    })?;
    let Value::Object(doc) = value else {
        return Err(ConfigError::Shape {
            path: path.to_path_buf(),
            what: "the top level is not a JSON object".into(),
        });
    };
    for key in ["auths", "credHelpers"] {
        if let Some(v) = doc.get(key)
            && !v.is_object()
        {
            return Err(ConfigError::Shape {
                path: path.to_path_buf(),
                what: format!("\"{key}\" is not a JSON object"),
            });
        }
    }
    if let Some(Value::Object(helpers)) = doc.get("credHelpers")
        && let Some((k, _)) = helpers.iter().find(|(_, v)| !v.is_string())
    {
        return Err(ConfigError::Shape {
            path: path.to_path_buf(),
            what: format!("credHelpers[\"{k}\"] is not a string"),
        });
    }
    if let Some(v) = doc.get("credsStore")
        && !v.is_string()
    {
        return Err(ConfigError::Shape {
            path: path.to_path_buf(),
            what: "\"credsStore\" is not a string".into(),
        });
    }
    Ok(doc)
}

fn object_at<'a>(doc: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = doc
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("an object")
}

/// `base64(user:password)`, as Docker stores it.
pub fn encode_auth(user: &Secret, password: &Secret) -> String {
    let mut plain = zeroize::Zeroizing::new(String::with_capacity(
        user.expose().len() + password.expose().len() + 1,
    ));
    plain.push_str(user.expose());
    plain.push(':');
    plain.push_str(password.expose());
    base64::engine::general_purpose::STANDARD.encode(plain.as_bytes())
}

/// The credentials the Docker CLI would use for a registry, looked up as it does:
/// `credHelpers[key]`, then the default `credsStore`, then `auths`. A helper is run as
/// `docker-credential-NAME get`; one that fails or knows nothing gives `None`. berth's own
/// helper is asked directly: its `auths` entry, else the daemon at `daemon` (its socket),
/// which holds the credentials in credential store `helper`.
pub fn lookup(location: &Location, key: &str, daemon: &Path) -> Option<(Secret, Secret)> {
    let config = DockerConfig::load(location).ok()?;
    let helper = config
        .cred_helper(key)
        .map(str::to_string)
        .or_else(|| config.creds_store().map(str::to_string));
    match helper {
        Some(h) if h == HELPER_NAME => config.login(key).or_else(|| {
            crate::protocol::credentials(daemon, key, crate::protocol::HELPER_BOUND).ok()
        }),
        Some(h) if !h.is_empty() => helper_get(&h, key).or_else(|| config.login(key)),
        _ => config.login(key),
    }
}

/// How long berth waits for another credential helper.
const HELPER_GET_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks a credential helper for a registry's credentials, within [`HELPER_GET_BOUND`]
/// (a helper that hangs is killed).
fn helper_get(helper: &str, key: &str) -> Option<(Secret, Secret)> {
    use std::io::{Read as _, Write as _};
    let mut child = std::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(key.as_bytes()).ok()?;
    let mut stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = zeroize::Zeroizing::new(Vec::new());
        let read = (&mut stdout)
            .take(crate::bounded::Limit::CONFIG.0)
            .read_to_end(&mut out);
        let _ = tx.send(read.map(|_| out));
    });
    let Ok(Ok(stdout)) = rx.recv_timeout(HELPER_GET_BOUND) else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    if !child.wait().ok()?.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&stdout).ok()?;
    let user = v.get("Username")?.as_str()?;
    let secret = v.get("Secret")?.as_str()?;
    // "<token>" marks an identity token, which the pull API cannot take as a password.
    (user != "<token>" && !secret.is_empty()).then(|| (Secret::new(user), Secret::new(secret)))
}

/// One entry berth manages.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManagedEntry {
    /// The secret identifier it came from.
    pub id: String,
    /// The `credHelpers` value berth set: `berth`, `""` (use `auths`), or none.
    #[serde(default, deserialize_with = "helper_set")]
    pub helper: Option<String>,
    /// The credential helper that was set before berth replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_helper: Option<String>,
    /// A number the berth process that last changed the entry chose: a daemon that finds
    /// its own number here knows a change of the entry came from a program other than berth.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stamp: u64,
    /// Where its credentials live: `config.json` (the default), or only berth's daemon.
    #[serde(default, skip_serializing_if = "is_file_store")]
    pub store: crate::inject::CredentialStore,
}

fn is_file_store(s: &crate::inject::CredentialStore) -> bool {
    *s == crate::inject::CredentialStore::File
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Reads the `helper` of a record: berth 0.1 wrote `true` for `berth` and `false` for none.
fn helper_set<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(
        match <Option<Value> as serde::Deserialize>::deserialize(d)? {
            Some(Value::Bool(true)) => Some(HELPER_NAME.to_string()),
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
    )
}

/// berth's record of the entries it manages in one config (no secrets).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Managed {
    /// Format version.
    pub version: u32,
    /// Registry key -> entry.
    pub entries: BTreeMap<String, ManagedEntry>,
}

impl Managed {
    /// Loads the record; a missing or unreadable one is empty (it only ever narrows what
    /// berth removes).
    pub fn load(location: &Location) -> Managed {
        Self::load_existing(location).unwrap_or_default()
    }

    /// Loads the record in one read: `None` when there is none (or it cannot be read), an
    /// empty record when it is there but not berth's format.
    pub fn load_existing(location: &Location) -> Option<Managed> {
        let bytes = bounded::read(&location.managed_file(), Limit::CONFIG, Links::Follow).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// Writes the record (atomically, 0600), as the config's user.
    pub fn save(&self, location: &Location) -> Result<atomic::Outcome, ConfigError> {
        let path = location.managed_file();
        let mut bytes = serde_json::to_vec_pretty(&Managed {
            version: 1,
            entries: self.entries.clone(),
        })
        .expect("the record serialises");
        bytes.push(b'\n');
        atomic::write(&path, &bytes, 0o600).map_err(|cause| ConfigError::Write { path, cause })
    }
}

/// An exclusive lock among berth processes editing one config folder (the Docker CLI does
/// not lock, so this only keeps berth's own writers in turn).
pub struct ConfigLock(#[allow(dead_code)] nix::fcntl::Flock<fs::File>);

/// How long the daemon and the hooks try for the config's lock before they give up for
/// now (the daemon tries again later). The lock file is in the user's folder, so the user
/// can hold it for ever; a berth writer holds it for some milliseconds.
pub const LOCK_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

impl ConfigLock {
    /// Takes the lock, waiting at most `bound` for another holder (see [`bounded::lock`]);
    /// creates the lock file if there is none, never through a link, and refuses one that
    /// is not a regular file. Run it as the config's user.
    pub fn acquire(
        location: &Location,
        bound: std::time::Duration,
    ) -> Result<ConfigLock, bounded::LockError> {
        Self::acquire_within(location, bound, true)
    }

    /// Takes the lock only if its file exists already (the keeper's way: it must not make
    /// files in a folder being removed), waiting at most `bound`; `Ok(None)` when there is
    /// no lock file.
    pub fn acquire_existing(
        location: &Location,
        bound: std::time::Duration,
    ) -> Result<Option<ConfigLock>, bounded::LockError> {
        match Self::acquire_within(location, bound, false) {
            Err(bounded::LockError::Io { cause, .. })
                if cause.kind() == io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    fn acquire_within(
        location: &Location,
        bound: std::time::Duration,
        create: bool,
    ) -> Result<ConfigLock, bounded::LockError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = location.lock_file();
        let io_err = |cause: io::Error| bounded::LockError::Io {
            path: path.clone(),
            cause: if cause.raw_os_error() == Some(nix::libc::ELOOP) {
                io::Error::other(
                    "it is a symbolic link, and berth takes its lock through no link: remove it",
                )
            } else {
                cause
            },
        };
        let file = fs::OpenOptions::new()
            .create(create)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY)
            .open(&path)
            .map_err(io_err)?;
        bounded::check_regular(&file, &path)
            .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        bounded::lock(file, &path, bound).map(ConfigLock)
    }
}

/// Whether `docker-credential-berth` can be found on `PATH` (or in the folders the feature
/// installs to), so that naming berth as a credential helper is safe.
pub fn helper_installed() -> bool {
    crate::engine::on_path(HELPER_PROGRAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<DockerConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location {
            dir: dir.path().to_path_buf(),
        };
        fs::write(loc.file(), text).unwrap();
        DockerConfig::load(&loc)
    }

    #[test]
    fn malformed_json_names_line_and_column_and_no_content() {
        let err =
            load_text("{\n  \"auths\": {\n    \"x\": {\"auth\": \"c2VjcmV0\"\n  }\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 5"), "{msg}");
        assert!(!msg.contains("c2VjcmV0"), "{msg}");
    }

    #[test]
    fn wrong_shapes_are_refused() {
        for (text, what) in [
            ("[]", "top level"),
            ("{\"auths\": []}", "\"auths\""),
            ("{\"credHelpers\": {\"x\": 1}}", "credHelpers[\"x\"]"),
            ("{\"credsStore\": 3}", "credsStore"),
        ] {
            let msg = load_text(text).unwrap_err().to_string();
            assert!(msg.contains(what), "{text}: {msg}");
        }
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        assert!(!load_text("  \n").unwrap().is_changed());
    }

    #[test]
    fn set_login_keeps_everything_else_in_order() {
        let mut c = load_text(
            "{\"zeta\": 1, \"auths\": {\"other.io\": {\"auth\": \"dTpw\", \"email\": \"e\"}, \
             \"mine.io\": {\"identitytoken\": \"t\", \"email\": \"e\"}}, \"credsStore\": \"desktop\", \"alpha\": {\"x\": [1]}}",
        )
        .unwrap();
        let (u, p) = (Secret::new("me"), Secret::new("pw"));
        assert_eq!(
            c.set_login("mine.io", &u, &p, Some(HELPER_NAME)),
            Change::Updated
        );
        assert_eq!(c.set_login("new.io", &u, &p, None), Change::Added);
        assert_eq!(c.set_login("new.io", &u, &p, None), Change::Unchanged);
        let text = String::from_utf8(c.to_bytes()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            ["zeta", "auths", "credsStore", "alpha", "credHelpers"]
        );
        assert_eq!(v["auths"]["other.io"]["auth"], "dTpw");
        assert_eq!(v["auths"]["mine.io"]["email"], "e");
        assert!(v["auths"]["mine.io"].get("identitytoken").is_none());
        assert_eq!(v["credHelpers"]["mine.io"], "berth");
        let (lu, lp) = c.login("mine.io").unwrap();
        assert_eq!((lu.expose(), lp.expose()), ("me", "pw"));
    }

    #[test]
    fn auth_round_trips_any_characters() {
        let mut c = load_text("{}").unwrap();
        let p = Secret::new("a:b\"c\\d€🔑 '\n");
        c.set_login("x.io", &Secret::new("u"), &p, None);
        assert_eq!(c.login("x.io").unwrap().1, p);
    }

    #[test]
    fn helper_only_names_berth_and_keeps_no_secret_of_berths() {
        let mut c = load_text(
            "{\"auths\": {\"x.io\": {\"auth\": \"dTpw\"}, \"y.io\": {\"auth\": \"dTpw\"}}}",
        )
        .unwrap();
        assert_eq!(
            c.set_helper_only("x.io", HELPER_NAME, true),
            Change::Updated
        );
        assert_eq!(
            c.set_helper_only("x.io", HELPER_NAME, true),
            Change::Unchanged
        );
        assert_eq!(c.set_helper_only("y.io", HELPER_NAME, false), Change::Added);
        assert_eq!(c.set_helper_only("z.io", HELPER_NAME, false), Change::Added);
        assert!(c.login("x.io").is_none(), "berth's own entry is gone");
        assert!(c.login("y.io").is_some(), "another writer's is kept");
        for key in ["x.io", "y.io", "z.io"] {
            assert_eq!(c.cred_helper(key), Some(HELPER_NAME));
        }
    }

    #[test]
    fn remove_login_restores_the_previous_helper() {
        let mut c =
            load_text("{\"credHelpers\": {\"x.io\": \"berth\"}, \"auths\": {\"x.io\": {}}}")
                .unwrap();
        assert!(c.remove_login("x.io", Some(HELPER_NAME), Some("ecr-login")));
        assert_eq!(c.cred_helper("x.io"), Some("ecr-login"));
        assert!(c.auth_keys().is_empty());
    }
}
