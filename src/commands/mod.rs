//! The subcommands, one file each, and what they share: settings, logging, the runtime,
//! and turning a result into an exit code.

pub mod credential_helper;
pub mod daemon;
pub mod hook;
pub mod inject;
pub mod logs;
pub mod pull;
pub mod status;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::settings::Settings;

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
            runtime().block_on(inject::run(args, settings))
        }
        Command::Hook { phase } => {
            init_file_logging(&settings);
            report_setting_warnings(&warnings);
            return hook::run(phase, settings);
        }
        Command::Daemon { background } => {
            if !background {
                report_setting_warnings_stderr(&warnings);
            }
            daemon::run(background, settings)
        }
        Command::Status { json } => status::run(json, settings),
        Command::Logs { follow } => logs::run(follow, settings),
        Command::Pull { images } => {
            init_stderr_logging(&settings);
            report_setting_warnings(&warnings);
            runtime().block_on(pull::run(images, settings))
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

/// A one-thread runtime: a command's work is a little I/O.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

fn init_stderr_logging(settings: &Settings) {
    crate::logging::init(&crate::logging::LogTarget {
        level: settings.log_level.clone(),
        stderr: true,
        file: None,
    });
}

/// Hooks log to the state folder's file only: their stdout is the creation log.
fn init_file_logging(settings: &Settings) {
    let state = crate::state::StateDir::new(settings.state_dir.clone());
    let file = state.path.is_dir().then(|| {
        (
            state.log(),
            crate::atomic::Ownership {
                mode: 0o640,
                owner: None,
            },
        )
    });
    crate::logging::init(&crate::logging::LogTarget {
        level: settings.log_level.clone(),
        stderr: false,
        file,
    });
}

fn report_setting_warnings_stderr(warnings: &[String]) {
    for w in warnings {
        eprintln!("berth: {w}");
    }
}

fn report_setting_warnings(warnings: &[String]) {
    for w in warnings {
        tracing::warn!(problem = %w, "setting ignored");
    }
}
