//! What the integration tests share: the test bed's addresses and credentials, the berth
//! binary run in a clean environment, and the real `docker` CLI pointed at the test bed.
//!
//! The test bed (`scripts/testbed up`) must be running: `scripts/test` starts it. Its
//! variables are read from the environment when `scripts/test` exported them, else from
//! `scripts/testbed env`. A test that needs the test bed fails, plainly, without it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;

/// The test bed's variables.
pub struct Testbed {
    vars: HashMap<String, String>,
}

impl Testbed {
    /// A variable, or a panic that says how to start the test bed.
    pub fn get(&self, name: &str) -> &str {
        self.vars.get(name).unwrap_or_else(|| {
            panic!("test bed variable {name} is missing: run scripts/testbed up")
        })
    }

    /// A base64 variable, decoded.
    pub fn decoded(&self, name: &str) -> String {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.get(name))
            .expect("base64");
        String::from_utf8(bytes).expect("utf-8")
    }

    /// A space-separated list.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// The test bed, read once.
pub fn testbed() -> &'static Testbed {
    static TB: OnceLock<Testbed> = OnceLock::new();
    TB.get_or_init(|| {
        if std::env::var_os("BERTH_TB_DOCKER_HOST").is_some() {
            return Testbed {
                vars: std::env::vars()
                    .filter(|(k, _)| k.starts_with("BERTH_T"))
                    .collect(),
            };
        }
        let out = Command::new(repo().join("scripts/testbed"))
            .arg("env")
            .output()
            .expect("scripts/testbed runs");
        assert!(
            out.status.success(),
            "scripts/testbed env failed: {}; run scripts/testbed up",
            String::from_utf8_lossy(&out.stderr)
        );
        Testbed {
            vars: parse_exports(&String::from_utf8_lossy(&out.stdout)),
        }
    })
}

/// `export NAME='value'` lines (single quotes, `'\''` for a quote) to a map.
fn parse_exports(text: &str) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("export ") else {
            continue;
        };
        let Some((name, raw)) = rest.split_once('=') else {
            continue;
        };
        let mut value = String::new();
        let mut quoted = false;
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('\'', _) => quoted = !quoted,
                ('\\', false) => {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                }
                (c, _) => value.push(c),
            }
        }
        vars.insert(name.to_string(), value);
    }
    vars
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The berth binary under test.
pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// A folder of programs for `PATH`: `docker-credential-berth` linked to the binary under
/// test, plus `extra` helper scripts (name, body).
pub fn bin_dir(root: &Path, with_helper: bool, extra: &[(&str, &str)]) -> PathBuf {
    let dir = root.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    if with_helper {
        let link = dir.join("docker-credential-berth");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(berth_bin(), link).unwrap();
    }
    for (name, body) in extra {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    dir
}

/// `PATH` with `first` ahead of the system's folders.
pub fn path_with(first: &Path) -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        first.display()
    )
}

/// berth, in an environment with nothing of the caller's: only `PATH`, `HOME` and what the
/// test adds. No options file, and the state folder under `root`.
pub fn berth(root: &Path) -> Command {
    let mut cmd = Command::new(berth_bin());
    cmd.env_clear()
        .env("PATH", path_with(&root.join("bin")))
        .env("HOME", root.join("home"))
        .env("BERTH_OPTIONS_FILE", "/nonexistent")
        .env("BERTH_STATE_DIR", root.join("state"))
        .env("BERTH_CODESPACES_DIR", root.join("codespaces"))
        .current_dir(root);
    cmd
}

/// The real docker CLI (the one on `PATH`), talking to the test bed's engine with the
/// config in `config_dir`.
pub fn docker(root: &Path, config_dir: &Path) -> Command {
    let mut cmd = Command::new("docker");
    cmd.env_clear()
        .env("PATH", path_with(&root.join("bin")))
        .env("HOME", root.join("home"))
        .env("DOCKER_HOST", testbed().get("BERTH_TB_DOCKER_HOST"))
        .env("DOCKER_CONFIG", config_dir);
    cmd
}

/// Runs a command, returning its output; panics if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// stdout and stderr as one text, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh scratch folder with `home/` inside.
pub fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-test-")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    dir
}

/// Registry secret variables for one identifier.
pub fn registry_env(id: &str, server: &str, user: &str, password: &str) -> Vec<(String, String)> {
    vec![
        (
            format!("{id}_CONTAINER_REGISTRY_SERVER"),
            server.to_string(),
        ),
        (format!("{id}_CONTAINER_REGISTRY_USER"), user.to_string()),
        (
            format!("{id}_CONTAINER_REGISTRY_PASSWORD"),
            password.to_string(),
        ),
    ]
}

/// Both test registries' secrets (REG1 and REG2), as a hook or a user would have them.
pub fn both_registries() -> Vec<(String, String)> {
    let tb = testbed();
    let mut v = registry_env(
        "REG1",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    );
    v.extend(registry_env(
        "REG2",
        tb.get("BERTH_TB_REG2"),
        tb.get("BERTH_TB_REG2_USER"),
        tb.get("BERTH_TB_REG2_PASSWORD"),
    ));
    v
}
