//! The command line: what the user typed, before it is validated into settings.
//!
//! One subcommand per file under `commands/`; this module only declares them
//! ([`crate::commands::main`] parses and runs them). `berth --help` lists every option with its variable and default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// berth: private registry credentials and pre-pulled images in every dev container.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None, after_help = crate::settings::help_table())]
pub struct Cli {
    /// Log level for this command (overrides logLevel / BERTH_LOG_LEVEL).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write registry credentials from the secrets into a user's Docker config, once.
    Inject(InjectArgs),
    /// Report a lifecycle phase to the daemon (the feature's lifecycle commands run this).
    Hook {
        /// onCreate, updateContent, postCreate, postStart or postAttach.
        phase: crate::phase::Phase,
    },
    /// Write the options file from the feature's declaration and the options the Dev
    /// Containers CLI passed (the feature's install.sh runs this).
    #[command(hide = true)]
    FeatureOptions {
        /// The feature's devcontainer-feature.json.
        declaration: PathBuf,
        /// The options file to write.
        output: PathBuf,
    },
    /// Run the lifecycle daemon (the feature's entrypoint starts it with --background).
    Daemon {
        /// Start detached and return once it listens.
        #[arg(long)]
        background: bool,
    },
    /// Show the lifecycle timeline, the registries and the pulls.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// First wait until no pre-pull is queued or running (saying each result), then
        /// show the status. Exits 0 when every pull is done, 1 when one failed, 3 when
        /// some are still running at the timeout.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits at most, in seconds (default: pullTimeout).
        #[arg(long, value_name = "SECONDS", requires = "wait")]
        timeout: Option<u64>,
    },
    /// Pull images now with berth's credentials (default: the configured images).
    Pull {
        /// Images to pull.
        images: Vec<String>,
    },
    /// Say exactly why a pull would be refused: every registry berth knows and every
    /// image, step by step (secrets, server, login, image, Docker side). Exits 0 when
    /// nothing stands in the way, 1 when something does.
    Doctor {
        /// Images to check (default: the configured images).
        images: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The user whose Docker config and engine access are judged (default:
        /// BERTH_REMOTE_USER, else you).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// Show berth's log.
    Logs {
        /// Keep printing as the log grows.
        #[arg(short, long)]
        follow: bool,
    },
    /// Carry a hook's request (on stdin) to the daemon once it runs (a hook starts this
    /// when the daemon is not running yet).
    #[command(hide = true)]
    Courier {
        /// The daemon's state folder.
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
    },
    /// Docker credential helper protocol; also run as `docker-credential-berth`.
    #[command(hide = true)]
    CredentialHelper {
        /// get, store, erase, list or version.
        action: String,
    },
}

/// `berth inject`.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The user whose Docker config is written (default: BERTH_REMOTE_USER, else you).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Read secrets from this JSON file too (the Dev Containers CLI's --secrets-file form).
    #[arg(long, value_name = "PATH")]
    pub secrets_file: Option<PathBuf>,
    /// The Docker config folder (default: DOCKER_CONFIG for yourself, else ~/.docker).
    #[arg(long, value_name = "DIR")]
    pub docker_config: Option<PathBuf>,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also remove berth's entries for registries whose secrets are gone.
    #[arg(long)]
    pub prune: bool,
}
