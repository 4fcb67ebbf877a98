//! The secrets files GitHub Codespaces keeps inside a codespace.
//!
//! Codespaces passes user, repository and organisation secrets to the container as
//! environment variables, and also keeps them in `/workspaces/.codespaces/shared/`:
//! `.env-secrets` holds `NAME=<base64 of the value>` lines (so that values may span lines),
//! and some versions keep a `.user-secrets.json`. Neither format is documented, so both
//! are read defensively: a line or entry that does not fit is skipped with a note that
//! names the file and line, never the value, and only names of the registry convention are
//! kept.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{NamedSecret, Source, is_registry_secret_name};
use crate::secret::Secret;

/// The folder Codespaces keeps its shared files in.
pub const DEFAULT_SHARED_DIR: &str = "/workspaces/.codespaces/shared";

/// Registry secrets from the Codespaces files in `dir`, and notes about what was skipped.
/// Missing files are not an error: outside Codespaces there are none.
pub fn read(dir: &Path) -> (Vec<NamedSecret>, Vec<String>) {
    let mut secrets = Vec::new();
    let mut notes = Vec::new();
    let env_secrets = dir.join(".env-secrets");
    if let Some(text) = read_text(&env_secrets, &mut notes) {
        read_env_secrets(&env_secrets, &text, &mut secrets, &mut notes);
    }
    let json = dir.join(".user-secrets.json");
    if let Some(text) = read_text(&json, &mut notes) {
        read_user_secrets_json(&json, &text, &mut secrets, &mut notes);
    }
    (secrets, notes)
}

/// A Codespaces file's text, read with bounds (a regular file of sensible size, read
/// without blocking); a missing file is nothing, any other failure a note.
fn read_text(path: &Path, notes: &mut Vec<String>) -> Option<String> {
    use crate::bounded::{self, Limit, Links};
    match bounded::read_if_exists(path, Limit::CONFIG, Links::Follow) {
        Ok(bytes) => bytes.map(|b| String::from_utf8_lossy(&b).into_owned()),
        Err(e) => {
            notes.push(format!("{e}; its secrets are not read"));
            None
        }
    }
}

/// The registry secrets of an `.env-secrets` text (`path` names it in notes).
pub fn read_env_secrets(
    path: &Path,
    text: &str,
    out: &mut Vec<NamedSecret>,
    notes: &mut Vec<String>,
) {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if !is_registry_secret_name(name) {
            continue;
        }
        let value = crate::shell::unquote(value.trim());
        match decode_base64(&value) {
            Some(decoded) => out.push(secret(name, decoded, path)),
            None => notes.push(format!(
                "{}: line {} ({name}) is not base64 as expected; skipped",
                path.display(),
                n + 1
            )),
        }
    }
}

/// The registry secrets of a `.user-secrets.json` text (`path` names it in notes).
pub fn read_user_secrets_json(
    path: &Path,
    text: &str,
    out: &mut Vec<NamedSecret>,
    notes: &mut Vec<String>,
) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        notes.push(format!("{}: not JSON; skipped", path.display()));
        return;
    };
    let mut take = |name: &str, v: Option<&serde_json::Value>| {
        if is_registry_secret_name(name) {
            match v.and_then(|v| v.as_str()) {
                Some(s) => out.push(secret(name, s.to_string(), path)),
                None => notes.push(format!(
                    "{}: {name} has no string value; skipped",
                    path.display()
                )),
            }
        }
    };
    match &value {
        // {"NAME": "value", ...}
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                take(k, Some(v));
            }
        }
        // [{"Name": "NAME", "Value": "value"}, ...] in any case
        serde_json::Value::Array(items) => {
            for item in items {
                let Some(obj) = item.as_object() else {
                    continue;
                };
                let field = |want: &str| {
                    obj.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(want))
                        .map(|(_, v)| v)
                };
                if let Some(name) = field("name").and_then(|v| v.as_str()) {
                    take(name, field("value"));
                }
            }
        }
        _ => notes.push(format!(
            "{}: not an object or a list; skipped",
            path.display()
        )),
    }
}

fn secret(name: &str, value: String, path: &Path) -> NamedSecret {
    NamedSecret {
        name: name.to_string(),
        value: Secret::new(value),
        source: Source::Codespaces(PathBuf::from(path)),
    }
}

fn decode_base64(v: &str) -> Option<String> {
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = engines.iter().find_map(|e| e.decode(v).ok())?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_secrets_lines_are_base64_and_others_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env-secrets"),
            "GITHUB_TOKEN=Z2hwX3h4eA==\n\
             ACR_CONTAINER_REGISTRY_SERVER=bXlyZWcuYXp1cmVjci5pbw==\n\
             ACR_CONTAINER_REGISTRY_PASSWORD='cGFzcw=='\n\
             ACR_CONTAINER_REGISTRY_USER=not base64!\n\
             garbage line\n",
        )
        .unwrap();
        let (secrets, notes) = read(dir.path());
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets[0].value.expose(), "myreg.azurecr.io");
        assert_eq!(secrets[1].value.expose(), "pass");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("line 4"));
        assert!(!notes[0].contains("not base64!"));
    }

    #[test]
    fn user_secrets_json_in_either_shape() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".user-secrets.json"),
            r#"[{"Name":"X_CONTAINER_REGISTRY_USER","Value":"u"},{"name":"OTHER","value":"v"},3]"#,
        )
        .unwrap();
        let (secrets, notes) = read(dir.path());
        assert_eq!(secrets.len(), 1);
        assert!(notes.is_empty());
        std::fs::write(
            dir.path().join(".user-secrets.json"),
            r#"{"X_CONTAINER_REGISTRY_USER": 5}"#,
        )
        .unwrap();
        let (secrets, notes) = read(dir.path());
        assert!(secrets.is_empty());
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn no_files_no_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let (secrets, notes) = read(dir.path());
        assert!(secrets.is_empty() && notes.is_empty());
    }
}
