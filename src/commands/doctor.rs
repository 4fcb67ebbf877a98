//! `berth doctor [IMAGE...] [--json] [--user NAME]`: why a pull would be refused, for every
//! registry berth knows and every image (those named, else the configured ones), step by
//! step. Prints each registry's checks, the first problem with what to change; exits 0
//! when nothing stands in the way, 1 when something does.

use std::process::ExitCode;
use std::time::Duration;

use crate::docker_config::Location;
use crate::doctor::{self, Check, Diagnosis, Inputs, Verdict};
use crate::engine::{self, DockerHost, EngineTarget};
use crate::registry::client::{EngineRegistryConfig, insecure};
use crate::secrets::{self, Discovery};
use crate::settings::Settings;

/// Runs the command.
pub async fn run(
    images: Vec<String>,
    json: bool,
    user: Option<String>,
    settings: Settings,
) -> anyhow::Result<ExitCode> {
    let (layers, notes) = secrets::gather(
        secrets::from_environment(),
        settings.secrets_file.as_deref(),
        Some(&settings.codespaces_dir),
    )?;
    let mut discovery = Discovery::from_layers(&layers);
    discovery.add_github(&layers, &settings.github);
    let location_now = Location::of_environment();
    let daemon = crate::state::StateDir::of_daemon(settings.state_dir.as_deref()).socket();
    let credentialed = |i: &crate::image::ImageRef| {
        let key = i.server().config_key().to_string();
        discovery
            .registries
            .iter()
            .any(|r| r.server.config_key() == key)
            || crate::docker_config::lookup(&location_now, &key, &daemon).is_some()
    };
    let wanted = crate::pull::wanted_by_command(images, &settings, &credentialed);
    let target =
        crate::inject::Target::resolve(user.as_deref().or(settings.remote_user.as_deref()), None)?;
    // The Docker CLI of the user who runs doctor reads DOCKER_CONFIG; another user's, their own.
    let location = if target.account.is_current() {
        Location::of_environment()
    } else {
        target.location.clone()
    };
    // The engine, asked once: whether it answers, and which registries it treats as insecure.
    let engine = match DockerHost::from_env().ok().map(EngineTarget::own) {
        Some(target) => {
            let pinged = engine::ping(&target, Duration::from_secs(3)).await;
            Some((target, pinged))
        }
        None => None,
    };
    let registries = match &engine {
        Some((_, Ok(found))) => EngineRegistryConfig::of(&found.docker).await,
        _ => EngineRegistryConfig::loopback(),
    };
    let insecure = |s: &crate::registry::Server| insecure(s, &registries);
    let diagnosis = doctor::diagnose(&Inputs {
        discovery: &discovery,
        images: wanted.images,
        user: &target.account,
        location: &location,
        engine: engine.as_ref().map(|(t, p)| (t, p)),
        insecure: &insecure,
        github_host: &settings.github.host,
        mirrors: &settings.mirrors,
        platform: settings.platform.as_ref(),
    })
    .await;
    let invalid = wanted.invalid.len();
    if json {
        let mut value = serde_json::to_value(&diagnosis)?;
        value["invalid_images"] = serde_json::json!(wanted.invalid);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for n in notes.iter().chain(&wanted.notes) {
            println!("note: {n}");
        }
        for i in &wanted.invalid {
            println!("problem: {i}");
        }
        print_human(&diagnosis);
    }
    Ok(if diagnosis.problems + invalid == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_human(d: &Diagnosis) {
    for c in &d.secrets {
        print_check(c, "");
    }
    if d.registries.is_empty() && d.secrets.is_empty() {
        println!(
            "berth knows no registry: no <ID>_CONTAINER_REGISTRY_* secrets, and no images named"
        );
    }
    for r in &d.registries {
        println!();
        match &r.id {
            Some(id) => println!("{id}  {}", r.server),
            None => println!("{}", r.server),
        }
        for c in &r.checks {
            print_check(c, "  ");
        }
        for i in &r.images {
            println!("  {}", i.image);
            if i.checks.is_empty() {
                println!("    not checked: a step above failed");
            }
            for c in &i.checks {
                print_check(c, "    ");
            }
        }
    }
    println!();
    match d.problems {
        0 => println!("doctor: no problem found"),
        1 => println!("doctor: 1 problem"),
        n => println!("doctor: {n} problems"),
    }
}

fn print_check(c: &Check, indent: &str) {
    let mark = match c.verdict {
        Verdict::Ok => "ok     ",
        Verdict::Note => "note   ",
        Verdict::Problem => "PROBLEM",
    };
    println!("{indent}{mark} {:<10} {}", c.step.name(), c.found);
    if let Some(fix) = &c.fix {
        println!("{indent}        {:<10} -> {fix}", "");
    }
}
