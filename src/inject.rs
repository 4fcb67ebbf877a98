//! Putting registry logins into a user's Docker config: the core of `berth inject`, used by
//! the command, by the daemon and by the hooks alike.
//!
//! Three steps, kept apart so that each caller uses what it needs: [`obtain_login`] turns a
//! registry's secrets into a login (for ECR with access keys, by asking ECR for a token);
//! [`write_entries`] puts logins into the config under a lock, with the record of what
//! berth manages; and [`inject`] does both for every registry found and reports what it
//! did, by identifier and server only.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::account::{Account, AccountError};
use crate::atomic;
use crate::docker_config::{
    self, Change, ConfigError, ConfigLock, DockerConfig, Location, Managed, ManagedEntry,
};
use crate::ecr::client::TokenRequest;
use crate::ecr::{EcrClient, EcrError, EcrHost, EndpointVars};
use crate::privilege::{self, PrivilegeError};
use crate::registry::RegistryKind;
use crate::secret::Secret;
use crate::secrets::{Discovery, Registry};

/// A registry login, ready to be written.
#[derive(Clone, Debug)]
pub struct Login {
    /// The user.
    pub user: Secret,
    /// The password or token.
    pub password: Secret,
    /// When it stops working, if known.
    pub expires_at: Option<SystemTime>,
}

/// A login ECR would not give, after some attempts.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}{}", attempts_note(*.attempts))]
pub struct LoginError {
    /// The last failure.
    pub error: EcrError,
    /// Attempts made.
    pub attempts: u32,
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (gave up after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// Gets the login of one registry: the secrets themselves, or for ECR with access keys a
/// token from ECR (transient errors are retried a few times with backoff).
pub async fn obtain_login(
    client: &EcrClient,
    endpoints: &EndpointVars,
    registry: &Registry,
) -> Result<Login, LoginError> {
    let RegistryKind::EcrAccessKeys(host) = &registry.kind else {
        return Ok(login_at_hand(registry).expect("not ECR access keys"));
    };
    let endpoint = endpoints.endpoint_for(host);
    let request = token_request(registry, host, &endpoint);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match client.get_authorization_token(&request).await {
            Ok(token) => {
                return Ok(Login {
                    user: token.user,
                    password: token.password,
                    expires_at: token.expires_at,
                });
            }
            Err(e) if e.is_transient() && attempt < 3 => {
                let delay =
                    Duration::from_millis(500 << attempt).mul_f64(0.8 + 0.4 * fastrand::f64());
                tracing::warn!(id = %registry.id, error = %e, attempt, retry_in_ms = delay.as_millis() as u64, "ECR token request failed; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(error) => {
                return Err(LoginError {
                    error,
                    attempts: attempt,
                });
            }
        }
    }
}

/// The GetAuthorizationToken request of an ECR registry with access keys.
pub fn token_request<'a>(
    registry: &'a Registry,
    host: &'a EcrHost,
    endpoint: &'a str,
) -> TokenRequest<'a> {
    TokenRequest {
        host,
        endpoint,
        access_key_id: &registry.user,
        secret_access_key: &registry.password,
        session_token: registry.session_token.as_ref(),
    }
}

/// Whether berth names itself as the credential helper of its registries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HelperMode {
    /// When `docker-credential-berth` is installed.
    #[default]
    Auto,
    /// Always (the caller knows the helper will be on the user's PATH).
    Always,
    /// Never: `auths` entries only.
    Never,
}

/// Where the credentials berth writes live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialStore {
    /// In the user's `config.json` (`auths`), as Codespaces writes them.
    #[default]
    File,
    /// Only in the daemon's memory: `config.json` names berth's credential helper for the
    /// registry (`credHelpers`) and holds nothing secret.
    Helper,
}

impl CredentialStore {
    /// Its name, as the option spells it.
    pub fn name(self) -> &'static str {
        match self {
            CredentialStore::File => "file",
            CredentialStore::Helper => "helper",
        }
    }
}

impl HelperMode {
    /// The `credHelpers` value to set for berth's registries: `berth` when its helper is
    /// (or will be) installed, else the empty string (the Docker CLI then reads `auths`
    /// for that host, whatever `credsStore` says); `None` with `Never`.
    pub fn value(self) -> Option<&'static str> {
        match self {
            HelperMode::Auto if docker_config::helper_installed() => {
                Some(docker_config::HELPER_NAME)
            }
            HelperMode::Auto => Some(""),
            HelperMode::Always => Some(docker_config::HELPER_NAME),
            HelperMode::Never => None,
        }
    }
}

/// The user and config berth writes for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The user.
    pub account: Account,
    /// Their Docker config.
    pub location: Location,
}

impl Target {
    /// The target for a user name (or the current user), with `DOCKER_CONFIG` if given.
    pub fn resolve(
        user: Option<&str>,
        docker_config: Option<PathBuf>,
    ) -> Result<Target, AccountError> {
        let account = match user {
            Some(name) => {
                let current = Account::current()?;
                if current.name == name {
                    current
                } else {
                    Account::by_name(name)?
                }
            }
            None => Account::current()?,
        };
        let location = Location::for_account(&account, docker_config);
        Ok(Target { account, location })
    }
}

/// Why nothing (more) could be written.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// The target user.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// berth cannot act as the target user.
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    /// The config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The config folder is a file.
    #[error(
        "{path} is a file, not a folder: DOCKER_CONFIG (or --docker-config) names the folder that holds config.json"
    )]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// Another writer kept replacing the config.
    #[error(
        "{path} changed under berth ten times in a row (another program keeps rewriting it); berth left it as it was"
    )]
    Busy {
        /// The file.
        path: PathBuf,
    },
    /// The config folder.
    #[error("cannot prepare {path}: {cause}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// berth's lock in the config folder: held by someone else past its bound, or not a
    /// lock file berth can use.
    #[error(transparent)]
    Lock(#[from] crate::bounded::LockError),
}

impl InjectError {
    /// Whether the config's lock was held by someone else (the write may succeed later).
    pub fn is_lock_held(&self) -> bool {
        matches!(self, InjectError::Lock(crate::bounded::LockError::Held(_)))
    }
}

/// One login to write (owned: it crosses into the thread that acts as the user).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The secret identifier it came from.
    pub id: String,
    /// The registry's key in the config.
    pub key: String,
    /// The login.
    pub login: Login,
}

/// The longest berth waits for one piece of work on a user's Docker config, beyond the time
/// it may try for its lock ([`WriteOptions::lock_bound`]): a few small reads and writes.
/// Past it, the work is given up ([`PrivilegeError::TimedOut`]) and the caller goes on.
pub const WORK_BOUND: Duration = Duration::from_secs(10);

/// How to write.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions {
    /// Compute everything, write nothing.
    pub dry_run: bool,
    /// Credential helper use.
    pub helper: HelperMode,
    /// Remove berth's entries for registries not in this write.
    pub prune: bool,
    /// Where the credentials live.
    pub store: CredentialStore,
    /// How long to try for berth's lock in the config folder (the user can hold it).
    pub lock_bound: Duration,
}

impl WriteOptions {
    /// The `credHelpers` value berth sets: its own helper in helper mode (it is the only
    /// way the credentials are found), else as the credentialHelper option says.
    pub fn helper_value(self) -> Option<&'static str> {
        match self.store {
            CredentialStore::Helper => Some(docker_config::HELPER_NAME),
            CredentialStore::File => self.helper.value(),
        }
    }
}

/// What a write did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WriteReport {
    /// The config file.
    pub path: PathBuf,
    /// Whether the file was (or, in a dry run, would be) rewritten.
    pub written: bool,
    /// Each entry's change, by key.
    pub changes: Vec<(String, Change)>,
    /// Keys of berth's entries that were removed (with `prune`).
    pub removed: Vec<String>,
    /// Whether berth is the credential helper of its entries.
    pub helper: bool,
    /// Warnings about the config.
    pub notes: Vec<String>,
    /// The stamp of each entry written, by key.
    pub stamps: Vec<(String, u64)>,
}

/// Writes logins into the target's config, under berth's lock, keeping everything else.
/// Everything is read and written with the target user's own privileges
/// ([`privilege::as_user`]): the kernel refuses whatever that user could not do.
///
/// When nothing would change, nothing is created (no lock, no folder). Otherwise, under
/// the lock, temporary files that writers killed earlier left behind are removed, the
/// change is made again on what the file holds now, and the config is written before the
/// record of berth's entries, so that a failed write never leaves the record claiming an
/// entry the config does not have.
pub async fn write_entries(
    target: &Target,
    entries: Vec<Entry>,
    opts: WriteOptions,
) -> Result<WriteReport, InjectError> {
    // Whether the helper is installed is berth's own question, asked before the switch.
    let helper = opts.helper_value();
    let t = target.clone();
    privilege::as_user_bounded(&target.account, opts.lock_bound + WORK_BOUND, move || {
        write_entries_as_user(&t, &entries, opts, helper)
    })
    .await?
}

/// The config and the record with the entries applied, and what that changed.
struct Applied {
    config: DockerConfig,
    managed: Managed,
    managed_changed: bool,
    changes: Vec<(String, Change)>,
    removed: Vec<String>,
    notes: Vec<String>,
}

impl Applied {
    fn needs_write(&self) -> bool {
        self.config.is_changed() || self.managed_changed
    }
}

fn write_entries_as_user(
    target: &Target,
    entries: &[Entry],
    opts: WriteOptions,
    helper: Option<&str>,
) -> Result<WriteReport, InjectError> {
    let dir = &target.location.dir;
    if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(InjectError::NotAFolder { path: dir.clone() });
    }
    let folder_err = |cause| InjectError::Folder {
        path: dir.clone(),
        cause,
    };
    let mut applied = apply(target, entries, opts, helper, None)?;
    if !opts.dry_run && applied.needs_write() {
        atomic::ensure_dir(dir, 0o700).map_err(folder_err)?;
        let _lock = ConfigLock::acquire(&target.location, opts.lock_bound)?;
        applied = write_locked(target, entries, opts, helper, true)?
            .expect("a write that may create the config always writes");
    } else if !opts.dry_run {
        // Nothing to write; an existing file is still made private and the user's.
        applied.config.save()?;
    }
    let stamps = applied
        .changes
        .iter()
        .filter_map(|(key, _)| Some((key.clone(), applied.managed.entries.get(key)?.stamp)))
        .collect();
    Ok(WriteReport {
        path: applied.config.path().to_path_buf(),
        written: applied.config.is_changed(),
        changes: applied.changes,
        removed: applied.removed,
        helper: helper == Some(docker_config::HELPER_NAME),
        notes: applied.notes,
        stamps,
    })
}

/// With berth's lock held: removes what killed writers left, then applies the entries to
/// what the files hold now and writes the config, then the record. The Docker CLI, which
/// takes no lock, may replace the config during the write: then apply again. Unless
/// `create`, a config that is not there (removed meanwhile, with its folder perhaps) is
/// left so: `None`.
fn write_locked(
    target: &Target,
    entries: &[Entry],
    opts: WriteOptions,
    helper: Option<&str>,
    create: bool,
) -> Result<Option<Applied>, InjectError> {
    for name in ["config.json", crate::docker_config::MANAGED_FILE] {
        atomic::remove_stale_temps(&target.location.dir, name);
    }
    let mut onto: Option<(Vec<u8>, Vec<u8>)> = None;
    for _ in 0..10 {
        if !create && onto.is_none() && !target.location.file().exists() {
            return Ok(None);
        }
        let applied = apply(target, entries, opts, helper, onto.take())?;
        match applied.config.save()? {
            atomic::Outcome::Changed => continue,
            atomic::Outcome::Displaced(theirs) => {
                // Our file is in place; theirs came in between: merge into theirs.
                onto = Some((theirs, applied.config.to_bytes()));
                continue;
            }
            atomic::Outcome::Written | atomic::Outcome::Unchanged => {}
        }
        if applied.managed_changed {
            applied.managed.save(&target.location)?;
        }
        return Ok(Some(applied));
    }
    Err(InjectError::Busy {
        path: target.location.file(),
    })
}

/// An entry berth wrote and keeps in place.
#[derive(Clone, Debug)]
pub struct KeptEntry {
    /// The registry key.
    pub key: String,
    /// The secret identifier.
    pub id: String,
    /// The login written.
    pub login: Login,
    /// Its stamp in berth's record.
    pub stamp: u64,
    /// Not written yet (the config's lock was held when berth tried): the keeper writes
    /// it as soon as it can, whatever berth's record says.
    pub pending: bool,
}

/// What keeping berth's entries in place did.
#[derive(Debug, Default)]
pub struct Kept {
    /// Identifiers whose entries were put back.
    pub restored: Vec<String>,
    /// The new stamps of the entries put back, by key.
    pub stamps: Vec<(String, u64)>,
    /// Registry keys berth stopped keeping: the user pruned them from berth's record.
    pub forgotten: Vec<String>,
    /// Entries another berth process (`berth inject`) changed since: theirs is kept and
    /// kept in place from now on.
    pub adopted: Vec<KeptEntry>,
    /// The config file.
    pub path: PathBuf,
    /// The config folder is not the one berth watches any more (removed, or replaced):
    /// nothing was done.
    pub folder_gone: bool,
}

/// Keeps the entries berth wrote (`written`: registry key, identifier, login) in the
/// target's config, as the target user and under berth's lock (so that a berth write half
/// done, config written and record not yet, is never mistaken for another writer's): an
/// entry another writer dropped or changed (its login, or its `credHelpers` value) is put
/// back; one the user removed from berth's record (`berth inject --prune`) is forgotten.
///
/// It never fights a removal: unless an entry is still pending (never written), nothing is
/// done where the config, berth's record or its lock file is missing (a folder being
/// removed, a config the user deleted: berth writes again at the next hook), nothing is
/// created, and a folder that is no longer the one at `watched` (a device and inode, as
/// [`Location::identity`] gives) is reported gone.
pub async fn keep_entries(
    target: &Target,
    written: Vec<KeptEntry>,
    opts: WriteOptions,
    watched: Option<(u64, u64)>,
) -> Result<Kept, InjectError> {
    let helper = opts.helper_value();
    let t = target.clone();
    privilege::as_user_bounded(&target.account, opts.lock_bound + WORK_BOUND, move || {
        keep_as_user(&t, &written, opts, helper, watched)
    })
    .await?
}

fn keep_as_user(
    target: &Target,
    written: &[KeptEntry],
    opts: WriteOptions,
    helper: Option<&str>,
    watched: Option<(u64, u64)>,
) -> Result<Kept, InjectError> {
    let mut kept = Kept {
        path: target.location.file(),
        ..Kept::default()
    };
    let identity = target.location.identity().ok();
    if identity.is_none() || (watched.is_some() && identity != watched) {
        kept.folder_gone = true;
        return Ok(kept);
    }
    let pending = written.iter().any(|w| w.pending);
    let lock = if pending {
        Some(ConfigLock::acquire(&target.location, opts.lock_bound)?)
    } else if target.location.file().exists() && target.location.managed_file().exists() {
        ConfigLock::acquire_existing(&target.location, opts.lock_bound)?
    } else {
        None
    };
    let Some(_lock) = lock else {
        return Ok(kept);
    };
    // Read once each, under the lock: what is compared below is what was there. A config or
    // record gone meanwhile (the user is removing the folder: `rm -rf` fails if anything is
    // made in it while it runs) is left gone, as before the lock.
    let config = DockerConfig::load(&target.location)?;
    let loaded = Managed::load_existing(&target.location);
    if !pending && (!config.was_there() || loaded.is_none()) {
        return Ok(kept);
    }
    let managed_exists = loaded.is_some();
    let managed = loaded.unwrap_or_default();
    let mut restore = Vec::new();
    for w in written {
        let recorded = managed.entries.get(&w.key);
        if managed_exists && recorded.is_none() && !w.pending {
            kept.forgotten.push(w.key.clone());
            continue;
        }
        if let Some(r) = recorded.filter(|r| r.stamp != w.stamp && r.stamp != 0 && !w.pending) {
            // Another berth process wrote this entry since: what it wrote is kept.
            match config.login(&w.key) {
                Some((user, password)) => kept.adopted.push(KeptEntry {
                    key: w.key.clone(),
                    id: r.id.clone(),
                    login: Login {
                        user,
                        password,
                        expires_at: None,
                    },
                    stamp: r.stamp,
                    pending: false,
                }),
                None => kept.forgotten.push(w.key.clone()),
            }
            continue;
        }
        // In helper mode the login is not in the file: only the helper's name is.
        let login_there = opts.store == CredentialStore::Helper
            || config.login(&w.key).is_some_and(|(u, p)| {
                docker_config::encode_auth(&u, &p)
                    == docker_config::encode_auth(&w.login.user, &w.login.password)
            });
        let helper_there = helper.is_none_or(|h| config.cred_helper(&w.key) == Some(h));
        if !(login_there && helper_there && managed_exists) || w.pending {
            restore.push(Entry {
                id: w.id.clone(),
                key: w.key.clone(),
                login: w.login.clone(),
            });
        }
    }
    if !restore.is_empty() {
        let opts = WriteOptions {
            dry_run: false,
            prune: false,
            ..opts
        };
        let Some(applied) = write_locked(target, &restore, opts, helper, pending)? else {
            return Ok(kept);
        };
        kept.restored = restore.iter().map(|e| e.id.clone()).collect();
        kept.restored.sort();
        kept.stamps = restore
            .iter()
            .filter_map(|e| Some((e.key.clone(), applied.managed.entries.get(&e.key)?.stamp)))
            .collect();
    }
    Ok(kept)
}

/// Loads the config and the record and applies the entries (and, with `prune`, removes
/// berth's others) in memory.
fn apply(
    target: &Target,
    entries: &[Entry],
    opts: WriteOptions,
    helper: Option<&str>,
    onto: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<Applied, InjectError> {
    let mut config = match onto {
        None => DockerConfig::load(&target.location)?,
        Some((base, on_disk)) => DockerConfig::load_onto(&target.location, &base, on_disk)?,
    };
    let mut managed = Managed::load(&target.location);
    let before = managed.clone();
    let mut notes = Vec::new();
    if let (Some(store), None) = (config.creds_store(), helper) {
        notes.push(format!(
            "{} sets a default credsStore ({store}), so the docker CLI ignores berth's auths entries; \
             set the credentialHelper option (BERTH_CREDENTIAL_HELPER) to auto and run berth again",
            config.path().display()
        ));
    }
    let mut changes = Vec::new();
    for entry in entries {
        let previous_helper = match config.cred_helper(&entry.key) {
            Some(h) if Some(h) != helper && h != docker_config::HELPER_NAME && !h.is_empty() => {
                Some(h.to_string())
            }
            _ => managed
                .entries
                .get(&entry.key)
                .and_then(|m| m.previous_helper.clone()),
        };
        if previous_helper.is_some() && helper.is_none() {
            notes.push(format!(
                "{} names credential helper {} for {}, which the docker CLI asks before berth's entry",
                config.path().display(),
                previous_helper.as_deref().unwrap_or_default(),
                entry.key
            ));
        }
        let change = match (opts.store, helper) {
            (CredentialStore::Helper, Some(h)) => {
                let ours = managed
                    .entries
                    .get(&entry.key)
                    .is_some_and(|m| m.store == CredentialStore::File);
                config.set_helper_only(&entry.key, h, ours)
            }
            _ => config.set_login(&entry.key, &entry.login.user, &entry.login.password, helper),
        };
        // A changed entry gets a new stamp; an unchanged one keeps its own.
        let stamp = match (change, managed.entries.get(&entry.key)) {
            (Change::Unchanged, Some(old)) if old.stamp != 0 => old.stamp,
            _ => fastrand::u64(1..),
        };
        managed.entries.insert(
            entry.key.to_string(),
            ManagedEntry {
                id: entry.id.to_string(),
                helper: helper.map(str::to_string),
                previous_helper,
                stamp,
                store: opts.store,
            },
        );
        changes.push((entry.key.to_string(), change));
    }
    let mut removed = Vec::new();
    if opts.prune {
        let keep: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        let stale: Vec<String> = managed
            .entries
            .keys()
            .filter(|k| !keep.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in stale {
            let entry = managed.entries.remove(&key).expect("a managed key");
            if config.remove_login(
                &key,
                entry.helper.as_deref(),
                entry.previous_helper.as_deref(),
            ) {
                removed.push(key);
            }
        }
    }
    let managed_changed = managed != before;
    Ok(Applied {
        config,
        managed,
        managed_changed,
        changes,
        removed,
        notes,
    })
}

/// What `berth inject` did for one registry.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RegistryReport {
    /// The secret identifier.
    pub id: String,
    /// The registry's key in the config.
    pub server: String,
    /// How berth logs in (`ecr-access-keys`, `ecr-token`, `docker-hub`, `other`).
    pub kind: &'static str,
    /// Where its secrets were read.
    pub source: String,
    /// What happened to its entry; absent when it failed or in a dry run that found no
    /// config change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// When its login expires, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The stamp its entry has in berth's record after the write.
    #[serde(skip)]
    pub stamp: u64,
}

/// What `berth inject` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// The user written for.
    pub user: String,
    /// The config file.
    pub config: PathBuf,
    /// Nothing was written.
    pub dry_run: bool,
    /// Whether the file was (or would be) rewritten.
    pub written: bool,
    /// Whether berth is the credential helper of its entries.
    pub credential_helper: bool,
    /// Every registry found.
    pub registries: Vec<RegistryReport>,
    /// Entries removed by `--prune`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Identifiers of registries whose ECR token was still on its way when the report was
    /// made; berth writes each when ECR answers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// Problems with the secrets or the config, each naming what to fix.
    pub warnings: Vec<Warning>,
}

/// A problem an injection met that did not stop it, each naming what to fix. In JSON, its
/// text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// A problem with the secrets, found when they were read.
    Secrets(crate::secrets::Finding),
    /// A registry whose password is a ready ECR token, which berth cannot renew.
    ReadyEcrToken {
        /// The secret identifier.
        id: String,
    },
    /// Something about the config berth wrote (another tool's entry it left, say).
    Config(String),
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Secrets(finding) => finding.fmt(f),
            Warning::ReadyEcrToken { id } => write!(
                f,
                "registry {id}: the password is a ready ECR token, which expires within 12 hours \
                 and cannot be renewed; give an access key id and secret access key instead"
            ),
            Warning::Config(note) => f.write_str(note),
        }
    }
}

impl serde::Serialize for Warning {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Report {
    /// Whether any registry failed.
    pub fn has_errors(&self) -> bool {
        self.registries.iter().any(|r| r.error.is_some())
    }
}

/// An ECR token still on its way: the task asking ECR, which goes on by itself.
#[derive(Debug)]
pub struct PendingLogin {
    /// The registry.
    pub registry: Registry,
    /// The request to ECR.
    pub task: tokio::task::JoinHandle<Result<Login, LoginError>>,
}

/// The result of writing credentials.
#[derive(Debug)]
pub struct Injected {
    /// What was done, per registry.
    pub report: Report,
    /// The logins written, by identifier.
    pub logins: Vec<(String, Login)>,
    /// ECR swaps not finished within the bound.
    pub pending: Vec<PendingLogin>,
    /// Logins not written because the config's lock was held past its bound, by
    /// identifier (their registries' reports say so); the daemon writes them later.
    pub unwritten: Vec<(String, Login)>,
}

/// Logins berth may reuse instead of asking ECR again, by registry key.
pub type Reusable = std::collections::HashMap<String, Login>;

/// Discovered registries -> logins -> config: the whole of `berth inject`, which waits for
/// every ECR answer (each bounded by the ECR client's own limits).
pub async fn inject(
    discovery: &Discovery,
    target: &Target,
    client: &EcrClient,
    endpoints: &EndpointVars,
    opts: WriteOptions,
) -> Result<(Report, Vec<(String, Login)>), InjectError> {
    let done = inject_with(
        discovery,
        target,
        client,
        endpoints,
        opts,
        &Reusable::new(),
        None,
    )
    .await?;
    Ok((done.report, done.logins))
}

/// Writes every registry's login as soon as it is ready: the registries whose login is at
/// hand (secrets, ready tokens, a fresh ECR token in `reuse`) at once, in one write;
/// each ECR swap when ECR answers, all asked in parallel. With a `bound`, what ECR has not
/// answered by then is handed back as pending (its request goes on) and named in the
/// report, so that one slow endpoint never holds back the others. With `prune`, every
/// login is awaited and written at once (pruning needs the whole set). Logins that could
/// not be written because the config's lock was held are reported as failed and handed
/// back as unwritten.
pub async fn inject_with(
    discovery: &Discovery,
    target: &Target,
    client: &EcrClient,
    endpoints: &EndpointVars,
    opts: WriteOptions,
    reuse: &Reusable,
    bound: Option<Duration>,
) -> Result<Injected, InjectError> {
    use futures_util::StreamExt;
    let started = tokio::time::Instant::now();
    let mut warnings: Vec<Warning> = discovery
        .findings
        .iter()
        .cloned()
        .map(Warning::Secrets)
        .collect();
    let mut reports: Vec<RegistryReport> = discovery
        .registries
        .iter()
        .map(RegistryReport::new)
        .collect();
    let mut ready: Vec<(String, Login)> = Vec::new();
    let mut swaps = futures_util::stream::FuturesUnordered::new();
    for r in &discovery.registries {
        if let RegistryKind::EcrToken(_) = r.kind {
            warnings.push(Warning::ReadyEcrToken { id: r.id.clone() });
        }
        match reused(reuse, r).or_else(|| login_at_hand(r)) {
            Some(login) => settle(&mut reports, &mut ready, r, Ok(login)),
            None => {
                let (client, endpoints, registry) = (client.clone(), endpoints.clone(), r.clone());
                swaps.push(Swap {
                    registry: Some(r.clone()),
                    task: tokio::spawn(async move {
                        obtain_login(&client, &endpoints, &registry).await
                    }),
                });
            }
        }
    }
    // Prune only when the secrets were read in full: with none at all (a prebuild, a
    // missing secrets file), removing entries would undo earlier work.
    let opts = WriteOptions {
        prune: opts.prune && !discovery.registries.is_empty(),
        ..opts
    };
    let mut logins: Vec<(String, Login)> = Vec::new();
    let mut writes = Writes::default();
    if opts.prune {
        while let Some((registry, result)) = swaps.next().await {
            settle(&mut reports, &mut ready, &registry, result);
        }
        writes
            .write(target, &mut reports, &mut ready, &mut logins, opts)
            .await?;
    } else {
        writes
            .write(target, &mut reports, &mut ready, &mut logins, opts)
            .await?;
        let deadline = bound.map(|b| started + b);
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, swaps.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => swaps.next().await,
            };
            let Some((registry, result)) = next else {
                break;
            };
            let mut one = Vec::new();
            settle(&mut reports, &mut one, &registry, result);
            writes
                .write(target, &mut reports, &mut one, &mut logins, opts)
                .await?;
        }
    }
    let pending: Vec<PendingLogin> = swaps.into_iter().filter_map(Swap::pending).collect();
    warnings.extend(writes.notes.into_iter().map(Warning::Config));
    Ok(Injected {
        report: Report {
            user: target.account.name.clone(),
            config: writes.path.unwrap_or_else(|| target.location.file()),
            dry_run: opts.dry_run,
            written: writes.written,
            credential_helper: writes.helper,
            registries: reports,
            removed: writes.removed,
            pending: pending.iter().map(|p| p.registry.id.clone()).collect(),
            warnings,
        },
        logins,
        pending,
        unwritten: writes.unwritten,
    })
}

/// A fresh ECR token berth may reuse for an ECR registry with access keys.
fn reused(reuse: &Reusable, registry: &Registry) -> Option<Login> {
    matches!(registry.kind, RegistryKind::EcrAccessKeys(_))
        .then(|| reuse.get(registry.server.config_key()).cloned())
        .flatten()
}

/// Logins obtained without writing anything (for pulls before `injectAt`).
#[derive(Debug, Default)]
pub struct Obtained {
    /// The logins at hand or answered in time.
    pub logins: Vec<(Registry, Login)>,
    /// ECR swaps not answered within the bound; each goes on.
    pub pending: Vec<PendingLogin>,
    /// Registries whose login failed, with why.
    pub failed: Vec<(String, String)>,
}

/// Every registry's login, obtained as [`inject_with`] obtains them (at hand at once, ECR
/// swaps in parallel, pending after `bound`), and nothing written.
pub async fn obtain_all(
    discovery: &Discovery,
    client: &EcrClient,
    endpoints: &EndpointVars,
    reuse: &Reusable,
    bound: Duration,
) -> Obtained {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + bound.min(Duration::from_secs(3600));
    let mut out = Obtained::default();
    let mut swaps = futures_util::stream::FuturesUnordered::new();
    for r in &discovery.registries {
        match reused(reuse, r).or_else(|| login_at_hand(r)) {
            Some(login) => out.logins.push((r.clone(), login)),
            None => {
                let (client, endpoints, registry) = (client.clone(), endpoints.clone(), r.clone());
                swaps.push(Swap {
                    registry: Some(r.clone()),
                    task: tokio::spawn(async move {
                        obtain_login(&client, &endpoints, &registry).await
                    }),
                });
            }
        }
    }
    while let Ok(Some((registry, result))) = tokio::time::timeout_at(deadline, swaps.next()).await {
        match result {
            Ok(login) => out.logins.push((registry, login)),
            Err(e) => out.failed.push((registry.id.clone(), e.to_string())),
        }
    }
    out.pending = swaps.into_iter().filter_map(Swap::pending).collect();
    out
}

/// The login of a registry that needs no one's answer: everything but ECR access keys.
fn login_at_hand(registry: &Registry) -> Option<Login> {
    (!matches!(registry.kind, RegistryKind::EcrAccessKeys(_))).then(|| Login {
        user: registry.user.clone(),
        password: registry.password.clone(),
        expires_at: None,
    })
}

/// An ECR swap in flight, which gives its registry back with the answer (and, when not
/// answered in time, with the task itself).
struct Swap {
    registry: Option<Registry>,
    task: tokio::task::JoinHandle<Result<Login, LoginError>>,
}

impl Swap {
    fn pending(self) -> Option<PendingLogin> {
        Some(PendingLogin {
            registry: self.registry?,
            task: self.task,
        })
    }
}

impl std::future::Future for Swap {
    type Output = (Registry, Result<Login, LoginError>);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let joined = std::task::ready!(std::pin::Pin::new(&mut self.task).poll(cx));
        let registry = self.registry.take().expect("polled once after it is done");
        std::task::Poll::Ready((registry, joined.unwrap_or_else(|e| Err(join_failed(e)))))
    }
}

/// A swap whose task died (it panicked, or the runtime is stopping).
pub fn join_failed(e: tokio::task::JoinError) -> LoginError {
    LoginError {
        error: EcrError::Malformed {
            endpoint: String::new(),
            what: format!("the request stopped: {e}"),
        },
        attempts: 1,
    }
}

/// Writes one registry's login, or reports its failure: what a pending ECR swap becomes
/// when ECR answers.
pub async fn write_one(
    target: &Target,
    registry: &Registry,
    result: Result<Login, LoginError>,
    opts: WriteOptions,
) -> Result<(RegistryReport, Option<Login>), InjectError> {
    let mut reports = vec![RegistryReport::new(registry)];
    let mut ready = Vec::new();
    settle(&mut reports, &mut ready, registry, result);
    write_logins(target, &mut reports, &ready, opts).await?;
    let report = reports.pop().expect("one report");
    Ok((report, ready.pop().map(|(_, l)| l)))
}

/// Puts a login (or its failure) into the reports, and a login into `ready`.
fn settle(
    reports: &mut [RegistryReport],
    ready: &mut Vec<(String, Login)>,
    registry: &Registry,
    result: Result<Login, LoginError>,
) {
    let Some(report) = reports.iter_mut().find(|r| r.id == registry.id) else {
        return;
    };
    match result {
        Ok(login) => {
            report.expires_at = login
                .expires_at
                .map(|t| humantime::format_rfc3339_seconds(t).to_string());
            ready.push((registry.id.clone(), login));
        }
        Err(e) => report.error = Some(format!("registry {}: {e}", registry.id)),
    }
}

/// Writes these logins (one read-modify-write), noting each entry's change in `reports`.
async fn write_logins(
    target: &Target,
    reports: &mut [RegistryReport],
    logins: &[(String, Login)],
    opts: WriteOptions,
) -> Result<WriteReport, InjectError> {
    let entries: Vec<Entry> = logins
        .iter()
        .map(|(id, login)| Entry {
            id: id.clone(),
            key: reports
                .iter()
                .find(|r| &r.id == id)
                .map(|r| r.server.clone())
                .unwrap_or_default(),
            login: login.clone(),
        })
        .collect();
    let written = write_entries(target, entries, opts).await?;
    for (key, change) in &written.changes {
        if let Some(r) = reports.iter_mut().find(|r| &r.server == key) {
            r.change = Some(*change);
        }
    }
    for (key, stamp) in &written.stamps {
        if let Some(r) = reports.iter_mut().find(|r| &r.server == key) {
            r.stamp = *stamp;
        }
    }
    Ok(written)
}

/// What several writes did, together.
#[derive(Default)]
struct Writes {
    path: Option<PathBuf>,
    written: bool,
    helper: bool,
    removed: Vec<String>,
    notes: Vec<String>,
    unwritten: Vec<(String, Login)>,
}

impl Writes {
    /// Writes the logins in `ready` (moved to `logins` once written). A lock held past its
    /// bound fails their reports and keeps them as unwritten; any other error stops.
    async fn write(
        &mut self,
        target: &Target,
        reports: &mut [RegistryReport],
        ready: &mut Vec<(String, Login)>,
        logins: &mut Vec<(String, Login)>,
        opts: WriteOptions,
    ) -> Result<(), InjectError> {
        match write_logins(target, reports, ready, opts).await {
            Ok(w) => {
                self.add(w);
                logins.append(ready);
                Ok(())
            }
            Err(e) if e.is_lock_held() => {
                for (id, _) in ready.iter() {
                    if let Some(r) = reports.iter_mut().find(|r| &r.id == id) {
                        r.error = Some(format!("registry {id}: {e}"));
                    }
                }
                self.unwritten.append(ready);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn add(&mut self, w: WriteReport) {
        self.path = Some(w.path);
        self.written |= w.written;
        self.helper = w.helper;
        self.removed.extend(w.removed);
        for n in w.notes {
            if !self.notes.contains(&n) {
                self.notes.push(n);
            }
        }
    }
}

impl RegistryReport {
    fn new(registry: &Registry) -> Self {
        RegistryReport {
            id: registry.id.clone(),
            server: registry.server.config_key().to_string(),
            kind: registry.kind.name(),
            source: registry.source.to_string(),
            change: None,
            expires_at: None,
            error: None,
            stamp: 0,
        }
    }
}
