//! berth: private registry credentials and pre-pulled images in every dev container.
//!
//! berth reads registry secrets of the GitHub Codespaces convention
//! (`<ID>_CONTAINER_REGISTRY_SERVER`, `_USER`, `_PASSWORD`), swaps AWS access keys for ECR
//! tokens and keeps them fresh, writes the remote user's Docker config at the moment
//! Codespaces would, and pre-pulls private images through Docker-in-Docker. Where things
//! live:
//!
//! - secrets are read in [`secrets`], servers normalised in [`registry`];
//! - ECR hosts, tokens and renewal are in [`ecr`];
//! - `config.json` is edited in [`docker_config`], written by [`atomic`], for an
//!   [`account`], always with that user's own privileges ([`privilege`]); [`inject`] ties
//!   these together;
//! - phases are in [`phase`], tracked in [`state`], handled in [`lifecycle`] by the
//!   [`daemon`] or, without one, by the hook itself ([`commands::hook`]); the daemon speaks [`protocol`];
//! - the Docker engine is found and awaited in [`engine`]; images are pulled in [`pull`], for
//!   the [`platform`] asked; [`status`] tells what happened;
//! - what berth knows of its container (who runs it, since when) is in [`container`];
//! - every option is in [`settings`]; the command line in [`cli`] and [`commands`];
//!   shell-quoted values are read by [`shell`].

pub mod account;
pub mod atomic;
pub mod bounded;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod container;
pub mod daemon;
pub mod discover;
pub mod docker_config;
pub mod doctor;
pub mod ecr;
pub mod engine;
pub mod error;
pub mod image;
pub mod inject;
pub mod lifecycle;
pub mod logging;
pub mod mirror;
pub mod phase;
pub mod platform;
pub mod privilege;
pub mod protocol;
pub mod pull;
pub mod registry;
pub mod secret;
pub mod secrets;
pub mod settings;
pub mod shell;
pub mod state;
pub mod status;
pub mod tls;

/// The one place berth builds its runtime: one thread, since a command's work and the
/// daemon's are I/O.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
