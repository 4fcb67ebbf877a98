//! The daemon's socket protocol: JSON lines over a unix socket.
//!
//! A client sends one [`Request`] line; the daemon answers with any number of
//! [`Response::Line`]s (what it is doing, for the creation log) and one final
//! [`Response::Done`], [`Response::Status`] or [`Response::Refused`]. A hook's request
//! carries the registry secrets of the hook's own environment: this socket, readable only
//! by root and the remote user, is the one way secrets travel from a lifecycle command to
//! the daemon (never arguments, never files).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::phase::Phase;
use crate::secret::Secret;
use crate::status::Status;

/// The longest line either side accepts.
pub const MAX_LINE: usize = 1 << 20;

/// What a client asks.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Request {
    /// A lifecycle hook ran.
    Hook(HookRequest),
    /// The current status.
    Status,
}

/// A hook's report.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct HookRequest {
    /// The phase.
    pub phase: Phase,
    /// The registry secrets in the hook's environment.
    pub secrets: Vec<WireSecret>,
    /// Settings-like variables of the hook's environment that the daemon lacks
    /// (`DOCKER_CONFIG`, `AWS_ENDPOINT_URL_ECR`, ...).
    pub env: BTreeMap<String, String>,
    /// The hook's working folder (the workspace, for image discovery).
    pub cwd: Option<PathBuf>,
}

/// One secret on the wire.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WireSecret {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: Secret,
}

/// How a line should be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Progress and results.
    Info,
    /// Something the user should fix; work went on.
    Warn,
    /// Something failed.
    Error,
}

/// What the daemon answers.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Response {
    /// A line for the hook to print.
    Line {
        /// Its level.
        level: Level,
        /// The text (no secrets).
        text: String,
    },
    /// The hook's work is finished.
    Done {
        /// Whether everything berth tried succeeded.
        ok: bool,
    },
    /// The status.
    Status(Box<Status>),
    /// The connection is not allowed.
    Refused {
        /// Why.
        reason: String,
    },
}

/// The variables a hook forwards to the daemon.
pub const FORWARDED_VARS: &[&str] = &[
    "DOCKER_CONFIG",
    "DOCKER_HOST",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "BERTH_IMAGES",
];
