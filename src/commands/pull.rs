//! `berth pull [IMAGE...]`: pull images now, with berth's credentials, showing progress.
//!
//! With no images named, the configured ones (the `images` option and `BERTH_IMAGES`, and
//! with `discover` the workspace's) are pulled. Credentials come from the registry secrets
//! (as `berth inject` reads them, ECR tokens included), else from the user's Docker config.
//! In a terminal each image gets a live progress bar; otherwise plain lines, at a calm pace.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::docker_config::{self, Location};
use crate::ecr::{EcrClient, EndpointVars};
use crate::engine::{self, DockerHost, EngineTarget};
use crate::image::ImageRef;
use crate::inject::{Login, obtain_login};
use crate::pull::{self, PullConfig, PullEvent, PullSpec};
use crate::secrets::{self, Discovery};
use crate::settings::Settings;

/// How often a plain progress line is printed per image.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Runs the command.
pub async fn run(images: Vec<String>, settings: Settings) -> anyhow::Result<ExitCode> {
    let logins = logins_from_secrets(&settings).await;
    let location = Location::of_environment();
    let daemon = crate::state::StateDir::of_daemon(settings.state_dir.as_deref()).socket();
    let credentialed = |i: &ImageRef| {
        logins.contains_key(i.server().config_key())
            || docker_config::lookup(&location, i.server().config_key(), &daemon).is_some()
    };
    let wanted = pull::wanted_by_command(images, &settings, &credentialed);
    for n in wanted.invalid.iter().chain(&wanted.notes) {
        eprintln!("berth: {n}");
    }
    if wanted.images.is_empty() {
        eprintln!("berth: no images to pull (name some, or set the images option / BERTH_IMAGES)");
        return Ok(if wanted.invalid.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let invalid = wanted.invalid.len();
    let specs: Vec<PullSpec> = wanted
        .images
        .into_iter()
        .map(|image| {
            let key = image.server().config_key().to_string();
            let (id, login) = match logins.get(&key) {
                Some((id, l)) => (Some(id.clone()), Some(l.clone())),
                None => (
                    None,
                    docker_config::lookup(&location, &key, &daemon).map(|(user, password)| Login {
                        user,
                        password,
                        expires_at: None,
                    }),
                ),
            };
            let mirrors = crate::mirror::for_image(&image, &settings.mirrors, &|key| {
                logins.get(key).cloned().or_else(|| {
                    docker_config::lookup(&location, key, &daemon).map(|(user, password)| {
                        (
                            String::new(),
                            Login {
                                user,
                                password,
                                expires_at: None,
                            },
                        )
                    })
                })
            });
            PullSpec {
                image,
                login,
                id,
                mirrors,
            }
        })
        .collect();

    let host = EngineTarget::own(DockerHost::from_env()?);
    let cancel = CancellationToken::new();
    let engine = match engine::ping(&host, Duration::from_secs(2)).await {
        Ok(e) => e,
        Err(_) => {
            eprintln!(
                "berth: waiting up to {} s for the Docker engine at {host}",
                settings.docker_timeout.as_secs()
            );
            engine::wait_ready(&host, settings.docker_timeout, &cancel).await?
        }
    };
    let cfg = PullConfig {
        platform: settings.platform.clone(),
        deadline: settings.pull_timeout,
        mirrors_unverified: settings.mirrors_unverified,
        ..PullConfig::default()
    };
    let bars = std::io::stderr().is_terminal().then(MultiProgress::new);
    let started = Instant::now();
    let puller = pull::Puller::new(engine.docker.clone()).await;
    let results: Vec<bool> = futures_util::stream::iter(specs)
        .map(|spec| {
            let (puller, cfg, cancel, bars) = (&puller, &cfg, &cancel, &bars);
            async move { pull_one(puller, &spec, cfg, cancel, bars.as_ref()).await }
        })
        .buffer_unordered(settings.pull_concurrency)
        .collect()
        .await;
    let failed = results.iter().filter(|ok| !**ok).count() + invalid;
    eprintln!(
        "berth: {} pulled, {failed} failed, in {:.1} s",
        results.len() + invalid - failed,
        started.elapsed().as_secs_f64()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The logins of the registries whose secrets are in the environment, a secrets file or
/// Codespaces' files, by registry key, with their identifiers.
async fn logins_from_secrets(settings: &Settings) -> HashMap<String, (String, Login)> {
    let Ok((layers, _)) = secrets::gather(
        secrets::from_environment(),
        settings.secrets_file.as_deref(),
        Some(&settings.codespaces_dir),
    ) else {
        return HashMap::new();
    };
    let mut discovery = Discovery::from_layers(&layers);
    discovery.add_github(&layers, &settings.github);
    let client = EcrClient::new();
    let endpoints = EndpointVars::from_env();
    let mut out = HashMap::new();
    for r in &discovery.registries {
        match obtain_login(&client, &endpoints, r).await {
            Ok(l) => {
                out.insert(r.server.config_key().to_string(), (r.id.clone(), l));
            }
            Err(e) => eprintln!("berth: registry {}: {e}", r.id),
        }
    }
    out
}

/// Pulls one image, drawing a bar or printing lines; `true` if it worked.
async fn pull_one(
    puller: &pull::Puller,
    spec: &PullSpec,
    cfg: &PullConfig,
    cancel: &CancellationToken,
    bars: Option<&MultiProgress>,
) -> bool {
    let image = spec.image.to_string();
    let bar = bars.map(|m| {
        let b = m.add(ProgressBar::new(0));
        let template = if crate::logging::colour_on_stderr() {
            "{prefix:.bold} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} {msg}"
        } else {
            "{prefix} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} {msg}"
        };
        b.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        b.set_prefix(image.clone());
        b
    });
    let mut last_line = Instant::now();
    let mut on = |ev: PullEvent<'_>| match (&bar, ev) {
        (Some(b), PullEvent::Progress(p)) => {
            b.set_length(p.total);
            b.set_position(p.bytes);
            b.set_message(format!("{}/{} layers", p.layers_done, p.layers));
        }
        (None, PullEvent::Progress(p)) if last_line.elapsed() >= LINE_EVERY => {
            last_line = Instant::now();
            println!("pulling {image}: {}", p.describe());
        }
        (
            _,
            PullEvent::Retrying {
                attempt,
                delay,
                reason,
            },
        ) => {
            let line = format!(
                "{image}: attempt {attempt} failed ({reason}); retrying in {:.1} s",
                delay.as_secs_f64()
            );
            match &bar {
                Some(b) => b.println(line),
                None => println!("{line}"),
            }
        }
        (_, PullEvent::Cache { cache, skipped }) => {
            let line = match skipped {
                None => format!("{image}: pulling through the cache {cache}"),
                Some(why) => format!("{image}: cache {cache} passed over: {why}"),
            };
            match &bar {
                Some(b) => b.println(line),
                None => println!("{line}"),
            }
        }
        (None, PullEvent::Attempt(1)) => println!("pulling {image}"),
        _ => {}
    };
    let result = pull::pull(puller, spec, cfg, cancel, &mut on).await;
    let line = match &result {
        Ok(p) => {
            let words = crate::status::pulled_words(
                p.platform.as_ref().map(|p| p.to_string()).as_deref(),
                p.bytes,
                p.seconds,
                p.via.as_deref(),
                p.unverified,
            );
            let attempts = if p.attempts > 1 {
                format!(", {} attempts)", p.attempts)
            } else {
                ")".to_string()
            };
            format!(
                "pulled {image} {} {}{attempts}",
                p.digest.as_deref().unwrap_or("?"),
                words.strip_suffix(')').unwrap_or(&words)
            )
        }
        Err(e) => format!("berth: {e}"),
    };
    match &bar {
        Some(b) => b.finish_with_message(line),
        None => println!("{line}"),
    }
    result.is_ok()
}
