//! Where registry secrets are read, and how they become registries.
//!
//! GitHub Codespaces' convention is three secrets per registry,
//! `<ID>_CONTAINER_REGISTRY_SERVER`, `_USER` and `_PASSWORD` (plus, for ECR with temporary
//! keys, `_AWS_SESSION_TOKEN`), with any identifier `<ID>` made of letters, digits and
//! underscores, names compared without regard to case. This module collects such secrets
//! from every source ([`Source`]): the process environment, a Dev Containers CLI
//! `--secrets-file`, and the files Codespaces keeps in the container; it looks at no other
//! secret's value. It then groups them by identifier into [`Registry`] values and reports
//! every problem as a [`Finding`] that names the identifiers and what to fix, so that one
//! broken set never stops the others.

pub mod codespaces;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::registry::{RegistryKind, Server, ServerError};
use crate::secret::Secret;

/// The suffixes of the convention, upper-case, each with the field it fills.
const SUFFIXES: &[(&str, Field)] = &[
    ("_CONTAINER_REGISTRY_SERVER", Field::Server),
    ("_CONTAINER_REGISTRY_USER", Field::User),
    ("_CONTAINER_REGISTRY_PASSWORD", Field::Password),
    ("_CONTAINER_REGISTRY_AWS_SESSION_TOKEN", Field::SessionToken),
];

/// One of the secrets of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `_CONTAINER_REGISTRY_SERVER`.
    Server,
    /// `_CONTAINER_REGISTRY_USER`.
    User,
    /// `_CONTAINER_REGISTRY_PASSWORD`.
    Password,
    /// `_CONTAINER_REGISTRY_AWS_SESSION_TOKEN` (optional, ECR only).
    SessionToken,
}

impl Field {
    /// The secret's full name for an identifier.
    pub fn secret_name(self, id: &str) -> String {
        let suffix = SUFFIXES.iter().find(|(_, f)| *f == self).map(|(s, _)| *s);
        format!("{id}{}", suffix.unwrap_or_default())
    }
}

/// Where a secret was read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum Source {
    /// The environment of the process that read it (a lifecycle hook's, usually).
    Environment,
    /// A JSON secrets file (the Dev Containers CLI's `--secrets-file` form).
    SecretsFile(PathBuf),
    /// A file GitHub Codespaces keeps in the container.
    Codespaces(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment => f.write_str("environment"),
            Source::SecretsFile(p) => write!(f, "secrets file {}", p.display()),
            Source::Codespaces(p) => write!(f, "Codespaces file {}", p.display()),
        }
    }
}

/// One secret of the convention, as read.
#[derive(Clone, Debug)]
pub struct NamedSecret {
    /// Its name as the source spelled it.
    pub name: String,
    /// Its value.
    pub value: Secret,
    /// Where it was read.
    pub source: Source,
}

/// The variables GitHub sets in a codespace's (and an Actions job's) environment that log in
/// to its container registry: the user, and a token.
pub const GITHUB_USER: &str = "GITHUB_USER";
/// See [`GITHUB_USER`].
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";

/// The identifier of the registry berth makes from [`GITHUB_USER`] and [`GITHUB_TOKEN`].
pub const GITHUB_ID: &str = "GITHUB_TOKEN";

/// Whether a name belongs to the convention (any case), without looking at its value.
pub fn is_registry_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SUFFIXES.iter().any(|(s, _)| upper.ends_with(s))
}

/// The registry secrets in a list of variables (the process environment, a hook's).
pub fn from_vars<I, K, V>(vars: I, source: Source) -> Vec<NamedSecret>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    vars.into_iter()
        .map(|(k, v)| (k.into(), v))
        .filter(|(k, _)| is_registry_secret_name(k) || k == GITHUB_USER || k == GITHUB_TOKEN)
        .map(|(name, v)| NamedSecret {
            name,
            value: Secret::new(v),
            source: source.clone(),
        })
        .collect()
}

/// The registry secrets in the process environment (variables that are not UTF-8 are not
/// secrets of the convention and are skipped).
pub fn from_environment() -> Vec<NamedSecret> {
    from_vars(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        Source::Environment,
    )
}

/// A secrets file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsFileError {
    /// The file cannot be read.
    #[error("cannot read the secrets file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is not a flat JSON object of names to strings.
    #[error(
        "the secrets file {path} is not a JSON object of names to string values ({detail}); \
         write it as {{\"NAME\": \"value\", ...}}"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, without any value from the file.
        detail: String,
    },
}

/// Reads a Dev Containers CLI `--secrets-file`: a flat JSON object of names to values.
/// Values of other secrets are never kept; a registry secret whose value is not a string
/// is a format error.
pub fn from_secrets_file(path: &Path) -> Result<Vec<NamedSecret>, SecretsFileError> {
    use crate::bounded::{self, FileError, Limit, Links};
    let bytes =
        bounded::read(path, Limit::CONFIG, Links::Follow).map_err(|e| SecretsFileError::Read {
            path: path.to_path_buf(),
            cause: match e {
                FileError::Io { cause, .. } => cause,
                FileError::Missing { .. } => std::io::ErrorKind::NotFound.into(),
                other => std::io::Error::other(other.to_string()),
            },
        })?;
    parse_secrets_file(path, &bytes)
}

/// The registry secrets of a secrets file's content (`path` names it in errors).
pub fn parse_secrets_file(path: &Path, bytes: &[u8]) -> Result<Vec<NamedSecret>, SecretsFileError> {
    let format = |detail: String| SecretsFileError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        format(format!(
            "{} at line {}, column {}",
            json_error_kind(&e),
            e.line(),
            e.column()
        ))
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(format("the top level is not an object".into()));
    };
    let mut out = Vec::new();
    for (name, value) in map {
        if !is_registry_secret_name(&name) {
            continue;
        }
        match value {
            serde_json::Value::String(s) => out.push(NamedSecret {
                name,
                value: Secret::new(s),
                source: Source::SecretsFile(path.to_path_buf()),
            }),
            _ => return Err(format(format!("the value of {name} is not a string"))),
        }
    }
    Ok(out)
}

/// A description of a JSON syntax error that never quotes the input.
pub fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "the text ends too early",
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Data => "a value of the wrong type",
        serde_json::error::Category::Io => "a read error",
    }
}

/// Secrets from every source, lowest precedence first: Codespaces' files, then the given
/// variables (a hook's or the process's environment), then a secrets file. Notes say what
/// was skipped in Codespaces' files.
pub fn gather(
    vars: Vec<NamedSecret>,
    secrets_file: Option<&Path>,
    codespaces_dir: Option<&Path>,
) -> Result<(Vec<Vec<NamedSecret>>, Vec<String>), SecretsFileError> {
    let mut layers = Vec::new();
    let mut notes = Vec::new();
    if let Some(dir) = codespaces_dir {
        let (found, n) = codespaces::read(dir);
        layers.push(found);
        notes.extend(n);
    }
    layers.push(vars);
    if let Some(path) = secrets_file {
        layers.push(from_secrets_file(path)?);
    }
    Ok((layers, notes))
}

/// A registry, ready for login: one complete, valid secret set.
#[derive(Clone, Debug)]
pub struct Registry {
    /// The identifier, upper-case (`ACR`, `MY_TEAM`).
    pub id: String,
    /// The server, normalised.
    pub server: Server,
    /// How berth logs in to it.
    pub kind: RegistryKind,
    /// `_USER`: a user name, an AWS access key id, or `AWS`.
    pub user: Secret,
    /// `_PASSWORD`: a password, a token, or an AWS secret access key.
    pub password: Secret,
    /// `_AWS_SESSION_TOKEN`, for ECR with temporary access keys.
    pub session_token: Option<Secret>,
    /// Where its SERVER secret was read.
    pub source: Source,
    /// Where each of its secrets was read.
    pub sources: Vec<(Field, Source)>,
}

/// A problem with the secrets, reported by identifier and never with a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A name that ends like the convention but whose identifier is not letters, digits
    /// and underscores.
    InvalidName {
        /// The name as given (names are not secret).
        name: String,
    },
    /// A set without all three secrets.
    Incomplete {
        /// The identifier.
        id: String,
        /// The secrets that are missing.
        missing: Vec<Field>,
    },
    /// A secret whose value is empty.
    Empty {
        /// The identifier.
        id: String,
        /// Which secret.
        field: Field,
    },
    /// A value that ended in a newline: trimmed, and the set still used.
    TrailingNewline {
        /// The identifier.
        id: String,
        /// Which secret.
        field: Field,
    },
    /// A SERVER that is not a registry host.
    BadServer {
        /// The identifier.
        id: String,
        /// What is wrong with it.
        reason: ServerError,
    },
    /// A user name with a colon cannot be written to Docker's config.
    ColonInUser {
        /// The identifier.
        id: String,
    },
    /// Two or more identifiers name the same server: the first (in order) is used.
    DuplicateServer {
        /// The server.
        server: String,
        /// The identifier used.
        kept: String,
        /// The identifiers ignored.
        ignored: Vec<String>,
    },
    /// A session token on a registry that is not ECR with access keys.
    SessionTokenIgnored {
        /// The identifier.
        id: String,
    },
    /// The same secret given twice in different cases with different values.
    CaseConflict {
        /// The identifier.
        id: String,
        /// Which secret.
        field: Field,
    },
}

impl Finding {
    /// Whether the set it is about is still used.
    pub fn is_fatal_for_set(&self) -> bool {
        !matches!(
            self,
            Finding::TrailingNewline { .. }
                | Finding::SessionTokenIgnored { .. }
                | Finding::CaseConflict { .. }
                | Finding::DuplicateServer { .. }
        )
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::InvalidName { name } => write!(
                f,
                "secret {name} is ignored: its identifier must be letters, digits and \
                 underscores (like MY_REGISTRY_CONTAINER_REGISTRY_SERVER); rename it"
            ),
            Finding::Incomplete { id, missing } => {
                let names: Vec<String> = missing.iter().map(|m| m.secret_name(id)).collect();
                write!(
                    f,
                    "registry {id} is skipped: {} missing; add {}, or remove the other \
                     {id}_CONTAINER_REGISTRY_* secrets",
                    if names.len() == 1 {
                        "a secret is"
                    } else {
                        "secrets are"
                    },
                    names.join(" and ")
                )
            }
            Finding::Empty { id, field } => write!(
                f,
                "registry {id} is skipped: {} is empty; give it a value",
                field.secret_name(id)
            ),
            Finding::TrailingNewline { id, field } => write!(
                f,
                "registry {id}: {} ends with a newline, which berth removed; \
                 remove it from the secret to silence this warning",
                field.secret_name(id)
            ),
            Finding::BadServer { id, reason } => write!(
                f,
                "registry {id} is skipped: {} is not a registry host ({reason}); \
                 set it to a host such as ghcr.io, myregistry.azurecr.io or \
                 https://index.docker.io/v1/",
                Field::Server.secret_name(id)
            ),
            Finding::ColonInUser { id } => write!(
                f,
                "registry {id} is skipped: {} contains ':', which Docker's config cannot \
                 store; use a user name without ':'",
                Field::User.secret_name(id)
            ),
            Finding::DuplicateServer {
                server,
                kept,
                ignored,
            } => write!(
                f,
                "registries {kept} and {} all name {server}; berth uses {kept}; \
                 remove or change the others' _CONTAINER_REGISTRY_SERVER secrets",
                ignored.join(", ")
            ),
            Finding::SessionTokenIgnored { id } => write!(
                f,
                "registry {id}: {} is ignored because {id} is not an ECR registry with \
                 access keys; remove it",
                Field::SessionToken.secret_name(id)
            ),
            Finding::CaseConflict { id, field } => write!(
                f,
                "registry {id}: {} is given twice, in different cases, with different \
                 values; berth uses the upper-case one; remove the other",
                field.secret_name(id)
            ),
        }
    }
}

/// What the secrets amount to.
#[derive(Debug, Default)]
pub struct Discovery {
    /// The usable registries, sorted by identifier.
    pub registries: Vec<Registry>,
    /// Every problem, in a stable order.
    pub findings: Vec<Finding>,
}

impl Discovery {
    /// Adds GitHub's container registry, logged in to with [`GITHUB_USER`] and
    /// [`GITHUB_TOKEN`] (the last layer that has each wins), when `github` allows it, both
    /// are there and not empty, and no secret set names that registry already.
    pub fn add_github(
        &mut self,
        layers: &[Vec<NamedSecret>],
        github: &crate::settings::GithubRegistry,
    ) {
        if github.mode == crate::settings::GithubMode::Never {
            return;
        }
        let Ok(server) = Server::parse(&github.host) else {
            return;
        };
        if self
            .registries
            .iter()
            .any(|r| r.server.config_key() == server.config_key())
        {
            return;
        }
        let last = |name: &str| {
            layers
                .iter()
                .flatten()
                .rev()
                .find(|s| s.name == name && !s.value.expose().trim().is_empty())
        };
        let (Some(user), Some(token)) = (last(GITHUB_USER), last(GITHUB_TOKEN)) else {
            return;
        };
        let kind = RegistryKind::classify(&server, user.value.expose());
        self.registries.push(Registry {
            id: GITHUB_ID.to_string(),
            server,
            kind,
            user: Secret::new(user.value.expose().trim()),
            password: Secret::new(token.value.expose().trim()),
            session_token: None,
            source: token.source.clone(),
            sources: Vec::new(),
        });
        self.registries.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// Groups secrets into registries. `layers` go from lowest to highest precedence: a
    /// name found in a later layer replaces the same name from an earlier one.
    pub fn from_layers(layers: &[Vec<NamedSecret>]) -> Discovery {
        let mut findings = Vec::new();
        // id -> field -> (value, source, was upper-case)
        let mut sets: BTreeMap<String, BTreeMap<Field, (Secret, Source, bool)>> = BTreeMap::new();
        for layer in layers {
            let mut seen_in_layer: BTreeMap<(String, Field), bool> = BTreeMap::new();
            for secret in layer {
                let Some((id, field)) = split_name(&secret.name) else {
                    if is_registry_secret_name(&secret.name) {
                        findings.push(Finding::InvalidName {
                            name: secret.name.clone(),
                        });
                    }
                    continue;
                };
                let upper = secret.name == secret.name.to_ascii_uppercase();
                let slot = sets.entry(id.clone()).or_default();
                if let Some(prev_upper) = seen_in_layer.get(&(id.clone(), field)) {
                    // The same name twice in one source, in different cases.
                    let (prev_value, _, _) = &slot[&field];
                    if prev_value != &secret.value {
                        findings.push(Finding::CaseConflict {
                            id: id.clone(),
                            field,
                        });
                    }
                    if *prev_upper && !upper {
                        continue;
                    }
                }
                seen_in_layer.insert((id.clone(), field), upper);
                slot.insert(field, (secret.value.clone(), secret.source.clone(), upper));
            }
        }

        let mut registries: Vec<Registry> = Vec::new();
        for (id, fields) in sets {
            if let Some(r) = build_registry(&id, fields, &mut findings) {
                registries.push(r);
            }
        }

        // Two identifiers, one server: keep the first identifier.
        let mut by_server: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &registries {
            by_server
                .entry(r.server.config_key().to_string())
                .or_default()
                .push(r.id.clone());
        }
        for (server, ids) in by_server {
            if ids.len() > 1 {
                let kept = ids[0].clone();
                let ignored = ids[1..].to_vec();
                registries.retain(|r| !ignored.contains(&r.id));
                findings.push(Finding::DuplicateServer {
                    server,
                    kept,
                    ignored,
                });
            }
        }
        Discovery {
            registries,
            findings,
        }
    }
}

/// `acr_container_registry_server` -> (`ACR`, Server); `None` if it is not of the
/// convention or its identifier is not valid.
fn split_name(name: &str) -> Option<(String, Field)> {
    let upper = name.to_ascii_uppercase();
    // Longest suffix first: `_AWS_SESSION_TOKEN` must not be read as something shorter.
    let mut suffixes: Vec<&(&str, Field)> = SUFFIXES.iter().collect();
    suffixes.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    let (suffix, field) = suffixes.into_iter().find(|(s, _)| upper.ends_with(s))?;
    let id = &upper[..upper.len() - suffix.len()];
    let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then(|| (id.to_string(), *field))
}

/// One set to a registry, or findings.
fn build_registry(
    id: &str,
    mut fields: BTreeMap<Field, (Secret, Source, bool)>,
    findings: &mut Vec<Finding>,
) -> Option<Registry> {
    let missing: Vec<Field> = [Field::Server, Field::User, Field::Password]
        .into_iter()
        .filter(|f| !fields.contains_key(f))
        .collect();
    if !missing.is_empty() {
        findings.push(Finding::Incomplete {
            id: id.to_string(),
            missing,
        });
        return None;
    }
    let mut usable = true;
    let mut values: BTreeMap<Field, Secret> = BTreeMap::new();
    for (field, (value, _, _)) in &fields {
        let raw = value.expose();
        let trimmed = raw.trim_end_matches(['\n', '\r']);
        if trimmed.len() != raw.len() {
            findings.push(Finding::TrailingNewline {
                id: id.to_string(),
                field: *field,
            });
        }
        if trimmed.trim().is_empty() {
            if *field == Field::SessionToken {
                continue; // optional: an empty one is simply absent
            }
            findings.push(Finding::Empty {
                id: id.to_string(),
                field: *field,
            });
            usable = false;
        }
        values.insert(*field, Secret::new(trimmed));
    }
    if !usable {
        return None;
    }
    let server = match Server::parse(values[&Field::Server].expose()) {
        Ok(s) => s,
        Err(reason) => {
            findings.push(Finding::BadServer {
                id: id.to_string(),
                reason,
            });
            return None;
        }
    };
    let user = values.remove(&Field::User).unwrap_or_default();
    if user.expose().contains(':') {
        findings.push(Finding::ColonInUser { id: id.to_string() });
        return None;
    }
    let kind = RegistryKind::classify(&server, user.expose());
    let mut session_token = values.remove(&Field::SessionToken);
    if session_token.is_some() && !matches!(kind, RegistryKind::EcrAccessKeys(_)) {
        findings.push(Finding::SessionTokenIgnored { id: id.to_string() });
        session_token = None;
    }
    let sources = fields
        .iter()
        .filter(|(f, _)| **f != Field::SessionToken || session_token.is_some())
        .map(|(f, (_, s, _))| (*f, s.clone()))
        .collect();
    let source = fields.remove(&Field::Server).map(|(_, s, _)| s)?;
    Some(Registry {
        id: id.to_string(),
        server,
        kind,
        user,
        password: values.remove(&Field::Password).unwrap_or_default(),
        session_token,
        source,
        sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<NamedSecret> {
        from_vars(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            Source::Environment,
        )
    }

    fn discover(pairs: &[(&str, &str)]) -> Discovery {
        Discovery::from_layers(&[env(pairs)])
    }

    #[test]
    fn a_complete_set_is_a_registry() {
        let d = discover(&[
            ("ACR_CONTAINER_REGISTRY_SERVER", "MyReg.azurecr.io"),
            ("ACR_CONTAINER_REGISTRY_USER", "me"),
            ("ACR_CONTAINER_REGISTRY_PASSWORD", "pw"),
            ("UNRELATED", "x"),
        ]);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        assert_eq!(d.registries.len(), 1);
        let r = &d.registries[0];
        assert_eq!(r.id, "ACR");
        assert_eq!(r.server.config_key(), "myreg.azurecr.io");
        assert_eq!(r.user.expose(), "me");
        assert_eq!(r.password.expose(), "pw");
        assert_eq!(r.kind, RegistryKind::Other);
    }

    #[test]
    fn names_are_case_insensitive_and_ids_upper_cased() {
        let d = discover(&[
            ("my_team_container_registry_server", "ghcr.io"),
            ("My_Team_Container_Registry_User", "me"),
            ("MY_TEAM_CONTAINER_REGISTRY_PASSWORD", "pw"),
        ]);
        assert_eq!(d.registries.len(), 1);
        assert_eq!(d.registries[0].id, "MY_TEAM");
    }

    #[test]
    fn only_convention_names_are_kept_from_variables() {
        let v = env(&[("HOME", "/root"), ("X_CONTAINER_REGISTRY_USER", "u")]);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn incomplete_sets_name_what_is_missing() {
        let d = discover(&[
            ("A_CONTAINER_REGISTRY_SERVER", "a.io"),
            ("B_CONTAINER_REGISTRY_SERVER", "b.io"),
            ("B_CONTAINER_REGISTRY_USER", "u"),
            ("B_CONTAINER_REGISTRY_PASSWORD", "p"),
        ]);
        assert_eq!(d.registries.len(), 1);
        assert_eq!(d.registries[0].id, "B");
        assert_eq!(
            d.findings,
            vec![Finding::Incomplete {
                id: "A".into(),
                missing: vec![Field::User, Field::Password]
            }]
        );
        let msg = d.findings[0].to_string();
        assert!(
            msg.contains("A_CONTAINER_REGISTRY_USER and A_CONTAINER_REGISTRY_PASSWORD"),
            "{msg}"
        );
    }

    #[test]
    fn trailing_newline_is_trimmed_with_a_warning() {
        let d = discover(&[
            ("A_CONTAINER_REGISTRY_SERVER", "a.io\n"),
            ("A_CONTAINER_REGISTRY_USER", "u"),
            ("A_CONTAINER_REGISTRY_PASSWORD", "p w\r\n"),
        ]);
        assert_eq!(d.registries[0].password.expose(), "p w");
        assert_eq!(d.findings.len(), 2);
        assert!(d.findings.iter().all(|f| !f.is_fatal_for_set()));
    }

    #[test]
    fn duplicate_servers_keep_the_first_identifier() {
        let d = discover(&[
            ("B_CONTAINER_REGISTRY_SERVER", "https://GHCR.io"),
            ("B_CONTAINER_REGISTRY_USER", "u"),
            ("B_CONTAINER_REGISTRY_PASSWORD", "p"),
            ("A_CONTAINER_REGISTRY_SERVER", "ghcr.io"),
            ("A_CONTAINER_REGISTRY_USER", "u"),
            ("A_CONTAINER_REGISTRY_PASSWORD", "p"),
        ]);
        assert_eq!(d.registries.len(), 1);
        assert_eq!(d.registries[0].id, "A");
        assert!(d.findings[0].to_string().contains("A and B"));
    }

    #[test]
    fn later_layers_win() {
        let low = env(&[
            ("A_CONTAINER_REGISTRY_SERVER", "a.io"),
            ("A_CONTAINER_REGISTRY_USER", "old"),
            ("A_CONTAINER_REGISTRY_PASSWORD", "old"),
        ]);
        let high = from_vars(
            [("A_CONTAINER_REGISTRY_PASSWORD", "new")],
            Source::SecretsFile("f.json".into()),
        );
        let d = Discovery::from_layers(&[low, high]);
        assert_eq!(d.registries[0].password.expose(), "new");
        assert_eq!(d.registries[0].user.expose(), "old");
    }

    #[test]
    fn session_token_is_split_from_the_id() {
        let d = discover(&[
            (
                "ECR_CONTAINER_REGISTRY_SERVER",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            ),
            ("ECR_CONTAINER_REGISTRY_USER", "AKIA"),
            ("ECR_CONTAINER_REGISTRY_PASSWORD", "s"),
            ("ECR_CONTAINER_REGISTRY_AWS_SESSION_TOKEN", "t"),
        ]);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        assert_eq!(
            d.registries[0].session_token.as_ref().unwrap().expose(),
            "t"
        );
    }

    #[test]
    fn invalid_identifiers_are_reported_by_name() {
        let d = discover(&[
            ("MY-REG_CONTAINER_REGISTRY_SERVER", "a.io"),
            ("_CONTAINER_REGISTRY_USER", "u"),
        ]);
        assert_eq!(d.findings.len(), 2);
        assert!(matches!(d.findings[0], Finding::InvalidName { .. }));
    }
}
