//! Every configurable value, with one source of truth.
//!
//! Each option has a default, may be set by the feature's options file (written by the
//! feature's `install.sh` from `devcontainer.json`), then by a `BERTH_*` variable, then by a
//! command-line flag. [`OPTIONS`] lists them all: `berth --help` prints it, and the feature's
//! options map onto it one to one. A value that cannot be understood is reported and the
//! default is used, so that a typo never fails a container's lifecycle.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::inject::{CredentialStore, HelperMode};

/// The options file the feature writes.
pub const DEFAULT_OPTIONS_FILE: &str = "/usr/local/share/berth/options.env";

/// One option.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    /// The feature option (`devcontainer.json`), if it is one.
    pub feature: Option<&'static str>,
    /// The variable (and options file key).
    pub env: &'static str,
    /// The default, as text.
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
}

const fn opt(
    feature: &'static str,
    env: &'static str,
    default: &'static str,
    help: &'static str,
) -> OptionSpec {
    OptionSpec {
        feature: if feature.is_empty() {
            None
        } else {
            Some(feature)
        },
        env,
        default,
        help,
    }
}

/// Every option.
pub const OPTIONS: &[OptionSpec] = &[
    opt(
        "images",
        "BERTH_IMAGES",
        "",
        "images to pre-pull, separated by commas or blanks (the option's and the variable's are both pulled)",
    ),
    opt(
        "injectAt",
        "BERTH_INJECT_AT",
        "postCreate",
        "when credentials are written: postCreate (as Codespaces does), onCreate, or start (as soon as secrets are known)",
    ),
    opt(
        "pullAt",
        "BERTH_PULL_AT",
        "early",
        "when the pre-pulls start: early (as soon as secrets are known and the engine answers, from onCreate, each registry's credentials going to the engine with the pull, config.json untouched until injectAt), or postCreate (once credentials are written)",
    ),
    opt(
        "waitForDocker",
        "BERTH_WAIT_FOR_DOCKER",
        "true",
        "the postCreate hook waits until the Docker engine answers (up to dockerTimeout)",
    ),
    opt(
        "dockerTimeout",
        "BERTH_DOCKER_TIMEOUT",
        "90",
        "seconds to wait for the Docker engine to answer",
    ),
    opt(
        "waitForPulls",
        "BERTH_WAIT_FOR_PULLS",
        "false",
        "the postCreate hook waits until the pre-pulls finish (up to pullTimeout)",
    ),
    opt(
        "pullTimeout",
        "BERTH_PULL_TIMEOUT",
        "900",
        "seconds one image's pull may take, retries included; also the longest the postCreate hook waits for pulls",
    ),
    opt(
        "pullConcurrency",
        "BERTH_PULL_CONCURRENCY",
        "4",
        "images pulled at the same time (1 to 32)",
    ),
    opt(
        "platform",
        "BERTH_PLATFORM",
        "",
        "platform to pull, such as linux/arm64: an image without one for it is refused, plainly (default: the engine's own)",
    ),
    opt(
        "discover",
        "BERTH_DISCOVER",
        "false",
        "also pre-pull the images named by compose files (image:) and Dockerfiles (FROM) in the workspace",
    ),
    opt(
        "discoverPublic",
        "BERTH_DISCOVER_PUBLIC",
        "false",
        "with discover, also pull discovered images whose registry has no berth credentials",
    ),
    opt(
        "logLevel",
        "BERTH_LOG_LEVEL",
        "info",
        "log detail: error, warn, info, debug or trace",
    ),
    opt(
        "failOnError",
        "BERTH_FAIL_ON_ERROR",
        "false",
        "a hook fails the lifecycle command when berth fails (default: report and carry on)",
    ),
    opt(
        "credentialHelper",
        "BERTH_CREDENTIAL_HELPER",
        "auto",
        "name berth as the credential helper of its registries: auto (when docker-credential-berth is installed), always, never",
    ),
    opt(
        "credentialStore",
        "BERTH_CREDENTIAL_STORE",
        "file",
        "where the remote user's Docker commands get berth's credentials: file (in config.json, as Codespaces writes them) or helper (nothing secret on disk: config.json names docker-credential-berth, which asks berth's daemon, and the daemon answers from memory)",
    ),
    opt(
        "checkLogins",
        "BERTH_CHECK_LOGINS",
        "true",
        "ask each registry whether it accepts a login as soon as berth writes it (as docker login would), and say its answer; false asks nothing until a pull",
    ),
    opt(
        "mirrors",
        "BERTH_MIRRORS",
        "",
        "pull-through caches per registry, tried in order before it: REGISTRY=CACHE[,CACHE] pairs, or a JSON object {\"REGISTRY\": [\"CACHE\"]}; a cache may have a path (cache.internal:5000/ecr)",
    ),
    opt(
        "mirrorsUnverified",
        "BERTH_MIRRORS_UNVERIFIED",
        "false",
        "use a cache's image when its registry cannot give the tag's digest (down, refusing, no digest); such pulls are marked unverified (a registry that says the tag does not exist is never overridden)",
    ),
    opt(
        "githubRegistry",
        "BERTH_GITHUB_REGISTRY",
        "auto",
        "log in to GitHub's container registry with GITHUB_USER and GITHUB_TOKEN when no secret set names it: auto, never",
    ),
    opt(
        "githubRegistryHost",
        "BERTH_GITHUB_REGISTRY_HOST",
        "ghcr.io",
        "GitHub's container registry (GitHub Enterprise Server: containers.HOSTNAME)",
    ),
    opt(
        "",
        "BERTH_REMOTE_USER",
        "",
        "the user whose Docker config is written (the feature sets the dev container's remote user; default: the user berth runs as)",
    ),
    opt(
        "",
        "BERTH_STATE_DIR",
        "",
        "state folder: socket, phase record, log (default: /var/lib/berth when the daemon runs as root, else ~/.local/state/berth of its user)",
    ),
    opt(
        "",
        "BERTH_HOOK_TIMEOUT",
        "60",
        "seconds a hook waits for the daemon to finish its work (a third of it, 20 s at most, for ECR's answers)",
    ),
    opt(
        "",
        "BERTH_SECRETS_FILE",
        "",
        "a JSON secrets file (the Dev Containers CLI's --secrets-file form) read besides the environment",
    ),
    opt(
        "",
        "BERTH_CODESPACES_DIR",
        "/workspaces/.codespaces/shared",
        "where Codespaces keeps its secrets files",
    ),
    opt(
        "",
        "BERTH_WORKSPACE",
        "",
        "workspace folder searched by discover (default: the hook's working folder)",
    ),
    opt(
        "",
        "BERTH_OPTIONS_FILE",
        DEFAULT_OPTIONS_FILE,
        "the options file written by the feature",
    ),
];

/// Whether berth logs in to GitHub's container registry with `GITHUB_USER` and
/// `GITHUB_TOKEN` (as Codespaces and GitHub Actions set them) when no secret set names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GithubMode {
    /// When both variables are there and no secret set names the registry.
    #[default]
    Auto,
    /// Never.
    Never,
}

/// GitHub's container registry, as berth reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GithubRegistry {
    /// Whether to log in to it.
    pub mode: GithubMode,
    /// Its host (`ghcr.io`; GitHub Enterprise Server: `containers.HOSTNAME`).
    pub host: String,
}

impl Default for GithubRegistry {
    fn default() -> Self {
        GithubRegistry {
            mode: GithubMode::Auto,
            host: "ghcr.io".into(),
        }
    }
}

/// When credentials are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InjectAt {
    /// When the postCreate hook runs: after onCreate and updateContent, as Codespaces.
    #[default]
    PostCreate,
    /// When the onCreate hook runs, so that the user's onCreateCommand can pull.
    OnCreate,
    /// As soon as any secrets are known.
    Start,
}

impl InjectAt {
    fn parse(v: &str) -> Option<Self> {
        match v.trim().to_ascii_lowercase().as_str() {
            "postcreate" | "postcreatecommand" => Some(InjectAt::PostCreate),
            "oncreate" | "oncreatecommand" => Some(InjectAt::OnCreate),
            "start" | "asap" => Some(InjectAt::Start),
            _ => None,
        }
    }

    /// Its name as in `devcontainer.json`.
    pub fn name(self) -> &'static str {
        match self {
            InjectAt::PostCreate => "postCreate",
            InjectAt::OnCreate => "onCreate",
            InjectAt::Start => "start",
        }
    }
}

/// When the pre-pulls start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullAt {
    /// As soon as the secrets are known and the engine answers (from onCreate on).
    #[default]
    Early,
    /// Once the credentials are written (`injectAt`).
    PostCreate,
}

impl PullAt {
    fn parse(v: &str) -> Option<Self> {
        match v.trim().to_ascii_lowercase().as_str() {
            "early" | "" => Some(PullAt::Early),
            "postcreate" | "postcreatecommand" | "late" => Some(PullAt::PostCreate),
            _ => None,
        }
    }
}

/// The settings in force.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Images to pre-pull, as given.
    pub images: Vec<String>,
    /// When credentials are written.
    pub inject_at: InjectAt,
    /// When the pre-pulls start.
    pub pull_at: PullAt,
    /// The postCreate hook waits for the engine.
    pub wait_for_docker: bool,
    /// How long to wait for the engine.
    pub docker_timeout: Duration,
    /// The postCreate hook waits for the pulls.
    pub wait_for_pulls: bool,
    /// One pull's deadline, and the longest wait for pulls.
    pub pull_timeout: Duration,
    /// Images pulled at once.
    pub pull_concurrency: usize,
    /// Platform to pull; the engine's own when `None`.
    pub platform: Option<crate::platform::Platform>,
    /// Search the workspace for images.
    pub discover: bool,
    /// Keep discovered images of registries without credentials.
    pub discover_public: bool,
    /// Log level.
    pub log_level: String,
    /// Hooks fail on errors.
    pub fail_on_error: bool,
    /// Credential helper use.
    pub credential_helper: HelperMode,
    /// Where the credentials live: in `config.json`, or only in the daemon's memory.
    pub credential_store: CredentialStore,
    /// Ask each registry whether it accepts a login when it is written.
    pub check_logins: bool,
    /// Pull-through caches, per registry.
    pub mirrors: Vec<crate::mirror::Mirrors>,
    /// Use a cache's image when its registry cannot vouch for its digest.
    pub mirrors_unverified: bool,
    /// GitHub's container registry with the codespace's own token.
    pub github: GithubRegistry,
    /// The remote user.
    pub remote_user: Option<String>,
    /// The state folder, when set; else it follows from the daemon's user
    /// ([`crate::state::StateDir::of_user`]).
    pub state_dir: Option<PathBuf>,
    /// How long a hook waits for injection.
    pub hook_timeout: Duration,
    /// A secrets file.
    pub secrets_file: Option<PathBuf>,
    /// Codespaces' secrets folder.
    pub codespaces_dir: PathBuf,
    /// The workspace to search.
    pub workspace: Option<PathBuf>,
}

/// A variable of the process's environment: where options are read from it.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Settings {
    /// How the daemon and the hooks write the remote user's config.
    pub fn write_options(&self) -> crate::inject::WriteOptions {
        crate::inject::WriteOptions {
            dry_run: false,
            helper: self.credential_helper,
            prune: false,
            store: self.credential_store,
            lock_bound: crate::docker_config::LOCK_BOUND,
        }
    }

    /// Settings from the options file and the process environment.
    pub fn from_env() -> (Settings, Vec<String>) {
        Self::load(&env_var)
    }

    /// Settings from the options file and a variable lookup. Returns warnings for values
    /// that were not understood (their defaults are used).
    pub fn load(lookup: &dyn Fn(&str) -> Option<String>) -> (Settings, Vec<String>) {
        let file_path = lookup("BERTH_OPTIONS_FILE")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_OPTIONS_FILE.to_string());
        let file = std::fs::read_to_string(&file_path)
            .map(|text| parse_options_file(&text))
            .unwrap_or_default();
        let mut values = Values {
            raw: OPTIONS
                .iter()
                .map(|o| {
                    let found = lookup(o.env).map(|v| (v, o.env.to_string())).or_else(|| {
                        file.get(o.env)
                            .map(|v| (v.clone(), format!("{} in {file_path}", o.env)))
                    });
                    (o.env, found)
                })
                .collect(),
            warnings: Vec::new(),
        };
        let inject_at = values.parse(
            "BERTH_INJECT_AT",
            "postCreate, onCreate or start",
            InjectAt::parse,
        );
        let pull_at = values.parse("BERTH_PULL_AT", "early or postCreate", PullAt::parse);
        let credential_helper = values.parse(
            "BERTH_CREDENTIAL_HELPER",
            "auto, always or never",
            |v| match v.trim().to_ascii_lowercase().as_str() {
                "auto" | "" => Some(HelperMode::Auto),
                "always" | "true" => Some(HelperMode::Always),
                "never" | "false" => Some(HelperMode::Never),
                _ => None,
            },
        );
        let credential_store =
            values.parse("BERTH_CREDENTIAL_STORE", "file or helper", |v| {
                match v.trim().to_ascii_lowercase().as_str() {
                    "file" | "" => Some(CredentialStore::File),
                    "helper" => Some(CredentialStore::Helper),
                    _ => None,
                }
            });
        let github_mode = values.parse("BERTH_GITHUB_REGISTRY", "auto or never", |v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "auto" | "" | "true" => Some(GithubMode::Auto),
                "never" | "false" => Some(GithubMode::Never),
                _ => None,
            }
        });
        let github_host = values.parse(
            "BERTH_GITHUB_REGISTRY_HOST",
            "a registry host such as ghcr.io or containers.github.example.com",
            |v| {
                crate::registry::Server::parse(v.trim())
                    .ok()
                    .map(|_| v.trim().to_string())
            },
        );
        let mirrors = values.parse(
            "BERTH_MIRRORS",
            "REGISTRY=CACHE[,CACHE] pairs or a JSON object of registry to caches",
            |v| crate::mirror::parse(v).ok(),
        );
        let pull_concurrency =
            values.parse("BERTH_PULL_CONCURRENCY", "a number from 1 to 32", |v| {
                v.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=32).contains(n))
            });
        let platform = values.parse(
            "BERTH_PLATFORM",
            "OS/ARCHITECTURE or OS/ARCHITECTURE/VARIANT, like linux/arm64",
            |v| match v.trim() {
                "" => Some(None),
                v => crate::platform::Platform::parse(v).ok().map(Some),
            },
        );
        let log_level = values.parse(
            "BERTH_LOG_LEVEL",
            "error, warn, info, debug or trace",
            |v| {
                let v = v.trim().to_ascii_lowercase();
                ["error", "warn", "info", "debug", "trace"]
                    .contains(&v.as_str())
                    .then_some(v)
            },
        );
        let settings = Settings {
            images: {
                // Both lists are pulled: the feature's option and the variable.
                let mut images = split_list(
                    file.get("BERTH_IMAGES")
                        .map(String::as_str)
                        .unwrap_or_default(),
                );
                for i in split_list(&lookup("BERTH_IMAGES").unwrap_or_default()) {
                    if !images.contains(&i) {
                        images.push(i);
                    }
                }
                images
            },
            inject_at,
            pull_at,
            wait_for_docker: values.flag("BERTH_WAIT_FOR_DOCKER"),
            docker_timeout: values.seconds("BERTH_DOCKER_TIMEOUT"),
            wait_for_pulls: values.flag("BERTH_WAIT_FOR_PULLS"),
            pull_timeout: values.seconds("BERTH_PULL_TIMEOUT"),
            pull_concurrency,
            platform,
            discover: values.flag("BERTH_DISCOVER"),
            discover_public: values.flag("BERTH_DISCOVER_PUBLIC"),
            log_level,
            fail_on_error: values.flag("BERTH_FAIL_ON_ERROR"),
            credential_helper,
            credential_store,
            mirrors,
            mirrors_unverified: values.flag("BERTH_MIRRORS_UNVERIFIED"),
            check_logins: values.flag("BERTH_CHECK_LOGINS"),
            github: GithubRegistry {
                mode: github_mode,
                host: github_host,
            },
            remote_user: values.optional("BERTH_REMOTE_USER"),
            state_dir: values.optional("BERTH_STATE_DIR").map(PathBuf::from),
            hook_timeout: values.seconds("BERTH_HOOK_TIMEOUT"),
            secrets_file: values.optional("BERTH_SECRETS_FILE").map(PathBuf::from),
            codespaces_dir: PathBuf::from(values.text("BERTH_CODESPACES_DIR")),
            workspace: values.optional("BERTH_WORKSPACE").map(PathBuf::from),
        };
        (settings, values.warnings)
    }
}

/// The raw value of each option and where it came from, parsed one option at a time.
struct Values {
    raw: HashMap<&'static str, Option<(String, String)>>,
    warnings: Vec<String>,
}

impl Values {
    fn spec(env: &str) -> &'static OptionSpec {
        OPTIONS
            .iter()
            .find(|o| o.env == env)
            .expect("a known option")
    }

    fn text(&self, env: &str) -> String {
        match self.raw.get(env) {
            Some(Some((v, _))) => v.clone(),
            _ => Self::spec(env).default.to_string(),
        }
    }

    fn optional(&self, env: &str) -> Option<String> {
        Some(self.text(env).trim().to_string()).filter(|v| !v.is_empty())
    }

    fn parse<T>(&mut self, env: &str, expected: &str, f: impl Fn(&str) -> Option<T>) -> T {
        if let Some(v) = f(&self.text(env)) {
            return v;
        }
        let spec = Self::spec(env);
        let origin = match self.raw.get(env) {
            Some(Some((_, origin))) => origin.clone(),
            _ => env.to_string(),
        };
        let instead = match spec.default {
            "" => "leaving it unset".to_string(),
            default => format!("using the default {default}"),
        };
        self.warnings.push(format!(
            "{origin} is not understood (expected {expected}); {instead}"
        ));
        f(spec.default).expect("defaults parse")
    }

    fn flag(&mut self, env: &str) -> bool {
        self.parse(env, "true or false", parse_bool)
    }

    fn seconds(&mut self, env: &str) -> Duration {
        self.parse(env, "a number of seconds", |v| {
            v.trim().parse::<u64>().ok().map(Duration::from_secs)
        })
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Items separated by commas and/or blanks.
pub fn split_list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `KEY=value` lines, values bare, 'single-quoted' (with `'\''` for a quote) or
/// "double-quoted" (with backslash escapes), read by [`crate::shell::unquote`]; `#` comments
/// and `export ` are allowed.
pub fn parse_options_file(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        out.insert(k.trim().to_string(), crate::shell::unquote(v.trim()));
    }
    out
}

/// The options table, for `--help`.
pub fn help_table() -> String {
    let mut out = String::from(
        "Options (feature option / variable, default): set in devcontainer.json, the options file, or as BERTH_* variables\n",
    );
    for o in OPTIONS {
        let name = match o.feature {
            Some(f) => format!("{f} / {}", o.env),
            None => o.env.to_string(),
        };
        let default = if o.default.is_empty() {
            "(none)"
        } else {
            o.default
        };
        out.push_str(&format!("  {name} [{default}]\n      {}\n", o.help));
    }
    out
}

/// Why the options file cannot be written from the feature's declaration.
#[derive(Debug, thiserror::Error)]
pub enum FeatureOptionsError {
    /// `devcontainer-feature.json` is not the feature's declaration.
    #[error("{path}: not a feature declaration with an \"options\" object: {why}")]
    Declaration {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The package declares an option this binary does not know.
    #[error(
        "the feature declares the option {0:?}, which this berth binary does not know; the package and its binaries differ: build it again with scripts/package-feature"
    )]
    Unknown(String),
}

/// The variable through which the Dev Containers CLI hands a feature option to
/// `install.sh`, by the Dev Container spec's rule: every character outside `[A-Za-z0-9_]`
/// made `_`, a leading run of digits and `_` made one `_`, then upper-cased.
pub fn feature_option_var(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let rest = safe.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
    let lead = if rest.len() < safe.len() { "_" } else { "" };
    format!("{lead}{rest}").to_ascii_uppercase()
}

/// The options file `install.sh` writes (`berth feature-options`): every option the
/// feature's `devcontainer-feature.json` declares, under its `BERTH_*` name, with the value
/// the Dev Containers CLI passed (`lookup` of [`feature_option_var`]) or else the declared
/// default; and the remote user (`_REMOTE_USER`, else root). Values are single-quoted, as
/// [`parse_options_file`] reads them. So the options are listed only in the declaration and
/// in [`OPTIONS`], and a test checks that those two agree.
pub fn feature_options_file(
    declaration: &str,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, FeatureOptionsError> {
    let bad = |why: String| FeatureOptionsError::Declaration {
        path: path.to_string(),
        why,
    };
    let json: serde_json::Value =
        serde_json::from_str(declaration).map_err(|e| bad(e.to_string()))?;
    let declared = json
        .get("options")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| bad("no \"options\" object".into()))?;
    let mut out = String::from(
        "# Written by the berth feature's install.sh from devcontainer.json's options.\n\
         # BERTH_* variables in the container's environment override these.\n",
    );
    for (id, option) in declared {
        let spec = OPTIONS
            .iter()
            .find(|o| o.feature == Some(id.as_str()))
            .ok_or_else(|| FeatureOptionsError::Unknown(id.clone()))?;
        let value = lookup(&feature_option_var(id)).unwrap_or_else(|| match &option["default"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        });
        out.push_str(&format!("{}={}\n", spec.env, crate::shell::quote(&value)));
    }
    let user = lookup("_REMOTE_USER").filter(|u| !u.is_empty());
    out.push_str(&format!(
        "BERTH_REMOTE_USER={}\n",
        crate::shell::quote(user.as_deref().unwrap_or("root"))
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option is declared once here and must be the same in the feature's
    /// `devcontainer-feature.json` (name, default) and in the README's options table, and
    /// `install.sh` lists none (berth feature-options writes them from the JSON): a test that
    /// fails when an option is added in one place and not the others.
    #[test]
    fn the_feature_install_sh_and_readme_declare_the_same_options() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&read(
            "devcontainer-feature/src/berth/devcontainer-feature.json",
        ))
        .unwrap();
        let install = read("devcontainer-feature/src/berth/install.sh");
        let readme = read("README.md");
        let declared = json["options"].as_object().unwrap();
        let ours: Vec<&OptionSpec> = OPTIONS.iter().filter(|o| o.feature.is_some()).collect();
        let names: Vec<&str> = ours.iter().map(|o| o.feature.unwrap()).collect();
        for name in declared.keys() {
            assert!(
                names.contains(&name.as_str()),
                "{name} is in the feature, not in settings.rs"
            );
        }
        for o in ours {
            let name = o.feature.unwrap();
            let option = &declared
                .get(name)
                .unwrap_or_else(|| panic!("{name} is in settings.rs, not in the feature"));
            let default = match &option["default"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(default, o.default, "{name}'s default in the feature");
            let var = feature_option_var(name);
            assert!(
                !install.contains(&format!("${var}")) && !install.contains(o.env),
                "install.sh lists {var} or {} itself; berth feature-options writes every option",
                o.env
            );
            assert!(
                readme.contains(&format!("| `{name}` | `{}` |", o.env)),
                "the README's options table has {name}"
            );
        }
    }

    fn feature_json() -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(
            root.join("devcontainer-feature/src/berth/devcontainer-feature.json"),
        )
        .unwrap()
    }

    #[test]
    fn the_options_file_has_every_declared_option_with_the_passed_value_or_its_default() {
        let passed = |var: &str| match var {
            "IMAGES" => Some("a.io/x:1, b.io/it's:2".to_string()),
            "WAITFORPULLS" => Some("true".to_string()),
            "_REMOTE_USER" => Some("dev".to_string()),
            _ => None,
        };
        let file = feature_options_file(&feature_json(), "f.json", &passed).unwrap();
        let read = parse_options_file(&file);
        assert_eq!(read["BERTH_IMAGES"], "a.io/x:1, b.io/it's:2");
        assert_eq!(read["BERTH_WAIT_FOR_PULLS"], "true");
        assert_eq!(read["BERTH_REMOTE_USER"], "dev");
        for o in OPTIONS.iter().filter(|o| o.feature.is_some()) {
            assert!(read.contains_key(o.env), "{} is written", o.env);
        }
        assert_eq!(
            read["BERTH_INJECT_AT"], "postCreate",
            "the declared default"
        );
        assert_eq!(read["BERTH_PULL_CONCURRENCY"], "4", "a number's default");
        let (s, w) = Settings::load(&|k: &str| match k {
            "BERTH_OPTIONS_FILE" => None,
            _ => read.get(k).cloned(),
        });
        assert!(w.is_empty(), "{w:?}");
        assert!(s.wait_for_pulls);
        assert_eq!(s.remote_user.as_deref(), Some("dev"));
    }

    #[test]
    fn without_a_remote_user_the_options_file_names_root() {
        let file = feature_options_file(&feature_json(), "f.json", &|_| None).unwrap();
        assert_eq!(parse_options_file(&file)["BERTH_REMOTE_USER"], "root");
    }

    #[test]
    fn an_option_this_binary_does_not_know_is_refused_by_name() {
        let json = r#"{"id": "berth", "options": {"images": {"type": "string", "default": ""}, "newThing": {"type": "boolean", "default": true}}}"#;
        let e = feature_options_file(json, "f.json", &|_| None).unwrap_err();
        assert!(
            matches!(&e, FeatureOptionsError::Unknown(id) if id == "newThing"),
            "{e}"
        );
        let e = feature_options_file("{\"id\": 1}", "f.json", &|_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.json: not a feature declaration with an \"options\" object: no \"options\" object"
        );
    }

    #[test]
    fn option_ids_become_variables_as_the_dev_container_spec_says() {
        assert_eq!(feature_option_var("pullAt"), "PULLAT");
        assert_eq!(
            feature_option_var("github-registry.host"),
            "GITHUB_REGISTRY_HOST"
        );
        assert_eq!(feature_option_var("jdk-distro"), "JDK_DISTRO");
        assert_eq!(feature_option_var("2fa"), "_FA");
        assert_eq!(feature_option_var("__double"), "_DOUBLE");
        assert_eq!(feature_option_var("a b"), "A_B");
    }

    fn load(pairs: &[(&str, &str)]) -> (Settings, Vec<String>) {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load(&move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults() {
        let (s, w) = load(&[("BERTH_OPTIONS_FILE", "/nonexistent")]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.inject_at, InjectAt::PostCreate);
        assert!(s.wait_for_docker && !s.wait_for_pulls && !s.fail_on_error);
        assert_eq!(s.pull_concurrency, 4);
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("options.env");
        std::fs::write(
            &f,
            "# written by install.sh\nBERTH_IMAGES='a.io/x:1, b.io/y:2'\nBERTH_INJECT_AT=\"onCreate\"\nBERTH_WAIT_FOR_PULLS=true\nBERTH_REMOTE_USER='it'\\''s'\n",
        )
        .unwrap();
        let file = f.to_str().unwrap();
        let (s, w) = load(&[
            ("BERTH_OPTIONS_FILE", file),
            ("BERTH_WAIT_FOR_PULLS", "false"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.images, ["a.io/x:1", "b.io/y:2"]);
        assert_eq!(s.inject_at, InjectAt::OnCreate);
        assert!(!s.wait_for_pulls, "the variable wins over the file");
        assert_eq!(s.remote_user.as_deref(), Some("it's"));
    }

    #[test]
    fn bad_values_warn_and_fall_back() {
        let (s, w) = load(&[
            ("BERTH_OPTIONS_FILE", "/nonexistent"),
            ("BERTH_INJECT_AT", "later"),
            ("BERTH_PULL_CONCURRENCY", "0"),
            ("BERTH_WAIT_FOR_DOCKER", "maybe"),
        ]);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(
            w[0].contains("BERTH_INJECT_AT") || w.iter().any(|m| m.contains("BERTH_INJECT_AT"))
        );
        assert_eq!(s.inject_at, InjectAt::PostCreate);
        assert_eq!(s.pull_concurrency, 4);
        assert!(s.wait_for_docker);
    }

    #[test]
    fn a_platform_is_read_normalised_and_a_bad_one_named() {
        let (s, w) = load(&[
            ("BERTH_OPTIONS_FILE", "/nonexistent"),
            ("BERTH_PLATFORM", "linux/aarch64"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.platform.unwrap().to_string(), "linux/arm64");
        let (s, w) = load(&[
            ("BERTH_OPTIONS_FILE", "/nonexistent"),
            ("BERTH_PLATFORM", "arm64"),
        ]);
        assert_eq!(s.platform, None);
        assert_eq!(
            w,
            [
                "BERTH_PLATFORM is not understood (expected OS/ARCHITECTURE or OS/ARCHITECTURE/VARIANT, like linux/arm64); leaving it unset"
            ]
        );
    }
}
