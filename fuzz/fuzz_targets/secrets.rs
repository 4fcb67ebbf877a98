//! Secrets from every outside source: a secrets file, Codespaces' `.env-secrets` and
//! `.user-secrets.json` (the input, split in three at NUL bytes). Nothing panics, and no
//! finding or note quotes a secret's value.
#![no_main]

use std::path::Path;

use berth::secrets::{self, Discovery, codespaces};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let (file, env, json) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut layers = Vec::new();
    let mut notes = Vec::new();
    let mut from_codespaces = Vec::new();
    codespaces::read_env_secrets(
        Path::new(".env-secrets"),
        &String::from_utf8_lossy(env),
        &mut from_codespaces,
        &mut notes,
    );
    codespaces::read_user_secrets_json(
        Path::new(".user-secrets.json"),
        &String::from_utf8_lossy(json),
        &mut from_codespaces,
        &mut notes,
    );
    layers.push(from_codespaces);
    match secrets::parse_secrets_file(Path::new("secrets.json"), file) {
        Ok(found) => layers.push(found),
        Err(e) => notes.push(e.to_string()),
    }
    // Passwords that could only appear in a finding by being quoted: long, with a
    // character berth's messages never use, and not also within a name (names are said,
    // values never).
    let names: Vec<String> = layers.iter().flatten().map(|s| s.name.clone()).collect();
    let unusual =
        |c: char| !c.is_ascii() || (c.is_ascii_control() && c != '\n') || "~^|`".contains(c);
    let values: Vec<String> = layers
        .iter()
        .flatten()
        .filter(|s| s.name.to_ascii_uppercase().ends_with("_PASSWORD"))
        .map(|s| s.value.expose().to_string())
        .filter(|v| v.len() >= 16 && v.chars().any(unusual))
        .filter(|v| !names.iter().any(|n| n.contains(v.as_str())))
        .collect();
    let discovery = Discovery::from_layers(&layers);
    for finding in &discovery.findings {
        let line = finding.to_string();
        for v in &values {
            assert!(!line.contains(v.as_str()), "a password in: {line}");
        }
    }
    for r in &discovery.registries {
        let shown = format!("{r:?}");
        for v in &values {
            assert!(
                !shown.contains(v.as_str()),
                "a password in a registry's Debug"
            );
        }
    }
    drop(notes);
});
