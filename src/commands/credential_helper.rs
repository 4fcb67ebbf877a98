//! `docker-credential-berth`: the Docker credential helper protocol, answered from the
//! `auths` entries berth wrote.
//!
//! berth names itself in `credHelpers` for its registries so that the Docker CLI uses its
//! credentials even when a default `credsStore` is set. The Docker CLI then runs this
//! program with `get` and the server on stdin, and expects JSON with `Username` and
//! `Secret` on stdout. `store` is refused (the secrets are the source of truth), `erase`
//! succeeds so that `docker logout` works, and `list` shows berth's registries.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::docker_config::{DockerConfig, HELPER_PROGRAM, Location, Managed};
use crate::registry::Server;

/// The action, when this program was started as `docker-credential-berth ACTION`.
pub fn invoked_as_helper() -> Option<String> {
    let mut args = std::env::args_os();
    let argv0 = PathBuf::from(args.next()?);
    if argv0.file_name()? != HELPER_PROGRAM {
        return None;
    }
    Some(
        args.next()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// Runs one helper action.
pub fn run(action: &str) -> ExitCode {
    let mut input = String::new();
    let location = location();
    match action {
        "get" => {
            if std::io::stdin().read_to_string(&mut input).is_err() {
                return fail("cannot read the server from standard input");
            }
            get(&location, input.trim())
        }
        "store" => {
            let _ = std::io::stdin().read_to_string(&mut input);
            fail(
                "berth writes this registry's credentials from its <ID>_CONTAINER_REGISTRY_* secrets; \
                 change the secrets instead of using docker login",
            )
        }
        "erase" => {
            let _ = std::io::stdin().read_to_string(&mut input);
            ExitCode::SUCCESS
        }
        "list" => list(&location),
        "version" => {
            println!("{HELPER_PROGRAM} (berth) {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => fail("usage: docker-credential-berth get|store|erase|list|version"),
    }
}

/// The config of whoever runs the Docker CLI: `DOCKER_CONFIG`, else `$HOME/.docker`.
fn location() -> Location {
    Location::of_environment()
}

fn get(location: &Location, server: &str) -> ExitCode {
    let config = match DockerConfig::load(location) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let key = if config.login(server).is_some() {
        Some(server.to_string())
    } else {
        Server::parse(server)
            .ok()
            .map(|s| s.config_key().to_string())
    };
    let Some((user, secret)) = key.as_deref().and_then(|k| config.login(k)) else {
        return not_found();
    };
    let answer = serde_json::json!({
        "ServerURL": server,
        "Username": user.expose(),
        "Secret": secret.expose(),
    });
    let mut out = std::io::stdout().lock();
    if serde_json::to_writer(&mut out, &answer).is_err() || out.write_all(b"\n").is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn list(location: &Location) -> ExitCode {
    let managed = Managed::load(location);
    let config = DockerConfig::load(location).ok();
    let mut map = serde_json::Map::new();
    for key in managed.entries.keys() {
        if let Some((user, _)) = config.as_ref().and_then(|c| c.login(key)) {
            map.insert(
                key.clone(),
                serde_json::Value::String(user.expose().to_string()),
            );
        }
    }
    println!("{}", serde_json::Value::Object(map));
    ExitCode::SUCCESS
}

/// The message the Docker CLI recognises as "no credentials here".
fn not_found() -> ExitCode {
    println!("credentials not found in native keychain");
    ExitCode::FAILURE
}

fn fail(msg: &str) -> ExitCode {
    println!("{msg}");
    ExitCode::FAILURE
}
