//! `berth inject`: read the secrets and write the Docker config, once, and say what was
//! done (identifiers and servers, never secrets).
//!
//! Exit codes: 0 when every secret set was usable and every registry written (or, with
//! `--dry-run`, would be); [`EXIT_INCOMPLETE`] when a secret set was rejected or a
//! registry failed, the others being written; 1 when nothing could be done (a malformed
//! config, an unknown user, a folder berth may not write); 2 for a command line clap
//! refused.

use std::process::ExitCode;

use crate::cli::InjectArgs;
use crate::ecr::{EcrClient, EndpointVars};
use crate::inject::{self, Report, Target, WriteOptions};
use crate::secrets::{self, Discovery};
use crate::settings::Settings;

/// The exit code when some secret set was rejected or some registry failed.
pub const EXIT_INCOMPLETE: u8 = 3;

/// Runs the command.
pub async fn run(args: InjectArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    let user = args.user.clone().or(settings.remote_user.clone());
    let mut target = Target::resolve(user.as_deref(), None)?;
    if let Some(dir) = args.docker_config.clone() {
        target.location.dir = dir;
    } else if target.account.is_current()
        && let Some(dir) = crate::docker_config::env_dir()
    {
        target.location.dir = dir;
    }
    let secrets_file = args.secrets_file.clone().or(settings.secrets_file.clone());
    // Secrets files are read with the privileges of the user they are for, as the daemon
    // reads them: a file that user could not read is no source of theirs.
    let codespaces = settings.codespaces_dir.clone();
    let (layers, notes) = crate::privilege::as_user(&target.account, move || {
        secrets::gather(
            secrets::from_environment(),
            secrets_file.as_deref(),
            Some(&codespaces),
        )
    })??;
    for note in &notes {
        tracing::warn!(problem = %note, "secrets file entry skipped");
    }
    let mut discovery = Discovery::from_layers(&layers);
    discovery.add_github(&layers, &settings.github);
    let client = EcrClient::new();
    if settings.credential_store == crate::inject::CredentialStore::Helper {
        anyhow::bail!(
            "credentialStore is helper here: berth's daemon holds the credentials and config.json names its credential helper; a lifecycle hook hands them to the daemon (berth hook postStart), or run berth inject with BERTH_CREDENTIAL_STORE=file to write them into config.json"
        );
    }
    let opts = WriteOptions {
        dry_run: args.dry_run,
        helper: settings.credential_helper,
        prune: args.prune,
        store: settings.credential_store,
        // A person's command, or a script's: it waits for other berth writers longer than
        // the daemon does (which tries again later).
        lock_bound: std::time::Duration::from_secs(30),
    };
    let (report, _) = inject::inject(
        &discovery,
        &target,
        &client,
        &EndpointVars::from_env(),
        opts,
    )
    .await?;
    let rejected = discovery.findings.iter().any(|f| f.is_fatal_for_set());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report, rejected);
    }
    Ok(if report.has_errors() || rejected {
        ExitCode::from(EXIT_INCOMPLETE)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_human(report: &Report, rejected: bool) {
    for w in &report.warnings {
        eprintln!("berth: warning: {w}");
    }
    if report.registries.is_empty() {
        if rejected {
            println!(
                "berth: no registry could be used: every secret set was rejected (see the warnings above); {} left as it was",
                report.config.display()
            );
        } else {
            println!(
                "berth: no registry secrets found (expected <ID>_CONTAINER_REGISTRY_SERVER, _USER and _PASSWORD); {} left as it was",
                report.config.display()
            );
        }
        return;
    }
    println!(
        "berth: {} {} for user {} in {}",
        report.registries.len(),
        if report.registries.len() == 1 {
            "registry"
        } else {
            "registries"
        },
        report.user,
        report.config.display()
    );
    let id_w = report
        .registries
        .iter()
        .map(|r| r.id.len())
        .max()
        .unwrap_or(0);
    let srv_w = report
        .registries
        .iter()
        .map(|r| r.server.len())
        .max()
        .unwrap_or(0);
    for r in &report.registries {
        let what = match (&r.error, r.change) {
            (Some(e), _) => format!("failed: {e}"),
            (None, Some(c)) => c.word().to_string(),
            (None, None) => String::new(),
        };
        let expiry = r
            .expires_at
            .as_ref()
            .map(|e| format!(" (token expires {e})"))
            .unwrap_or_default();
        println!(
            "  {:id_w$}  {:srv_w$}  {:15}  {what}{expiry}",
            r.id, r.server, r.kind
        );
    }
    if !report.removed.is_empty() {
        println!(
            "berth: removed stale entries: {}",
            report.removed.join(", ")
        );
    }
    let all_failed = report.registries.iter().all(|r| r.error.is_some());
    let verb = match (report.dry_run, report.written, all_failed) {
        (true, true, _) => "would be written",
        (true, false, _) => "would not change",
        (false, true, _) => "written",
        (false, false, true) => "left as it was",
        (false, false, false) => "already up to date; not rewritten",
    };
    println!(
        "berth: {} {verb}{}",
        report.config.display(),
        if report.credential_helper {
            " (credential helper: docker-credential-berth)"
        } else {
            ""
        }
    );
}
