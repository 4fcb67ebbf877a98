//! The subcommands, one file each, and what they share: settings, logging, the runtime,
//! and turning a result into an exit code.

pub mod courier;
pub mod credential_helper;
pub mod daemon;
pub mod doctor;
pub mod feature_options;
pub mod hook;
pub mod inject;
pub mod logs;
pub mod pull;
pub mod status;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::settings::Settings;

/// The program: a credential helper when invoked as `docker-credential-berth`, else the
/// command line parsed and its command run.
pub fn main() -> ExitCode {
    if let Some(action) = credential_helper::invoked_as_helper() {
        return credential_helper::run(&action);
    }
    run(Cli::parse())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let (mut settings, warnings) = Settings::from_env();
    if let Some(level) = &cli.log_level {
        settings.log_level = level.clone();
    }
    let result = match cli.command {
        Command::Inject(args) => {
            init_stderr_logging(&settings);
            report_setting_warnings(&warnings);
            crate::runtime()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(inject::run(args, settings)))
        }
        Command::Hook { phase } => {
            // A hook's output is the creation log: a setting it cannot understand is news
            // there. It logs to the state folder only when it works alone as its owner.
            for w in &warnings {
                println!("berth: {w}");
            }
            return hook::run(phase, settings);
        }
        Command::Daemon { background } => daemon::run(background, settings, &warnings),
        Command::Courier { state_dir } => return courier::run(state_dir),
        Command::Status {
            json,
            wait,
            timeout,
        } => status::run(json, wait.then_some(timeout), settings),
        Command::Logs { follow } => logs::run(follow, settings),
        Command::FeatureOptions {
            declaration,
            output,
        } => feature_options::run(&declaration, &output),
        Command::Doctor { images, json, user } => {
            init_stderr_logging(&settings);
            report_setting_warnings(&warnings);
            crate::runtime()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(doctor::run(images, json, user, settings)))
        }
        Command::Pull { images } => {
            init_stderr_logging(&settings);
            report_setting_warnings(&warnings);
            crate::runtime()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(pull::run(images, settings)))
        }
        Command::CredentialHelper { action } => return credential_helper::run(&action),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_stderr_logging(settings: &Settings) {
    crate::logging::init(crate::logging::LogTarget {
        level: settings.log_level.clone(),
        stderr: true,
        file: None,
    });
}

fn report_setting_warnings(warnings: &[String]) {
    for w in warnings {
        tracing::warn!(problem = %w, "setting ignored");
    }
}
