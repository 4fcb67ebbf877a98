//! `docker-credential-berth`: the Docker credential helper protocol, answered from the
//! `auths` entries berth wrote or, in credential store `helper`, by berth's daemon.
//!
//! berth names itself in `credHelpers` for its registries so that the Docker CLI uses its
//! credentials even when a default `credsStore` is set. The Docker CLI then runs this
//! program with `get` and the server on stdin, and expects JSON with `Username` and
//! `Secret` on stdout. With `credentialStore: helper`, `config.json` holds no login: this
//! program asks the daemon over its socket, as the user who runs it (the daemon answers
//! that user's own registries only, from memory), and gives up after
//! [`protocol::HELPER_BOUND`] all told, saying "credentials not found" (the Docker CLI
//! then goes on without): a Docker command never hangs on berth. When the daemon knows the
//! registry but has not received its secrets since it started, it says so, and the Docker
//! CLI shows that.
//! `store` is refused (the secrets are the source of truth), `erase` succeeds so that
//! `docker logout` works, and `list` shows berth's registries.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::docker_config::{DockerConfig, HELPER_PROGRAM, Location, Managed};
use crate::inject::CredentialStore;
use crate::protocol;
use crate::registry::Server;
use crate::secret::Secret;
use crate::settings::Settings;

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
    let (settings, _) = Settings::from_env();
    let from_file = || {
        let config = DockerConfig::load(location).ok()?;
        let key = if config.login(server).is_some() {
            server.to_string()
        } else {
            Server::parse(server).ok()?.config_key().to_string()
        };
        config.login(&key)
    };
    let from_daemon = || {
        let state = crate::state::StateDir::of_daemon(settings.state_dir.as_deref());
        protocol::credentials(&state.socket(), server, protocol::HELPER_BOUND)
    };
    // The store in force answers first; the other is asked too, so that a switch of
    // store, or another writer's login, still works.
    let found = match settings.credential_store {
        CredentialStore::File => from_file().ok_or(()).or_else(|()| from_daemon()),
        CredentialStore::Helper => from_daemon().or_else(|why| from_file().ok_or(why)),
    };
    match found {
        Ok((user, secret)) => answer(server, &user, &secret),
        Err(why) if why == protocol::NOT_FOUND => not_found(),
        // The Docker CLI shows what a helper prints when it fails: the user reads why.
        Err(why) => fail(&why),
    }
}

fn answer(server: &str, user: &Secret, secret: &Secret) -> ExitCode {
    let answer = zeroize::Zeroizing::new(
        serde_json::json!({
            "ServerURL": server,
            "Username": user.expose(),
            "Secret": secret.expose(),
        })
        .to_string(),
    );
    let mut out = std::io::stdout().lock();
    if out.write_all(answer.as_bytes()).is_err() || out.write_all(b"\n").is_err() {
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
    println!("{}", protocol::NOT_FOUND);
    ExitCode::FAILURE
}

fn fail(msg: &str) -> ExitCode {
    println!("{msg}");
    ExitCode::FAILURE
}
