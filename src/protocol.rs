//! The daemon's socket protocol: JSON lines over a unix socket, and its one client.
//!
//! A client sends one [`Request`] line; the daemon answers with any number of
//! [`Response::Line`]s (what it is doing, for the creation log) and one final
//! [`Response::Done`], [`Response::Status`] or [`Response::Refused`]. A hook's request
//! carries the registry secrets of the hook's own environment and the few settings of that
//! environment the daemon may take ([`HookSettings`]); this socket, open only to root and
//! the remote user, is the one way secrets travel to the daemon (never arguments, never
//! files, never the daemon's environment). [`call`] is the client every command uses: one
//! request, lines as they come, every wait bounded, no line longer than [`MAX_LINE`].

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ecr::EndpointVars;
use crate::phase::Phase;
use crate::secret::Secret;
use crate::status::Status;

/// The longest line either side accepts.
pub const MAX_LINE: usize = 1 << 20;

/// How long a client may take to send its request.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a client asks.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Request {
    /// A lifecycle hook ran.
    Hook(HookRequest),
    /// The container started: the entrypoint hands over the registry secrets of the
    /// container's environment (the daemon's own environment has none).
    Start(StartRequest),
    /// The current status.
    Status,
    /// Wait, at most this many seconds, until no pre-pull is queued or running; the
    /// daemon says each result as a line, then `Done`.
    Wait {
        /// The bound, in seconds.
        seconds: u64,
    },
    /// The credentials of a registry, for `docker-credential-berth get` (credential store
    /// `helper`): answered only to the user they were written for.
    Credentials {
        /// The server, as the Docker CLI names it.
        server: String,
    },
}

/// A hook's report.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct HookRequest {
    /// The phase.
    pub phase: Phase,
    /// The registry secrets in the hook's environment.
    pub secrets: Vec<WireSecret>,
    /// The settings of the hook's environment the daemon may take.
    #[serde(default)]
    pub settings: HookSettings,
    /// The hook's working folder (the workspace, for image discovery).
    pub cwd: Option<PathBuf>,
    /// When the hook ran (ms since the epoch), when this request reaches the daemon after
    /// the hook returned: handed over by a courier ([`crate::commands::courier`]) because
    /// the daemon was not running yet. Nobody waits for its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_at: Option<u64>,
}

/// The entrypoint's report.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StartRequest {
    /// The registry secrets in the container's environment.
    pub secrets: Vec<WireSecret>,
}

/// The few variables of a hook's environment that the daemon, which lacks them, may
/// take. Each is checked at the socket against who is calling.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HookSettings {
    /// `DOCKER_CONFIG`: honoured only for a hook run by the remote user (whose files are
    /// then written with the remote user's privileges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_config: Option<PathBuf>,
    /// `DOCKER_HOST`: the engine the user's commands will use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_host: Option<String>,
    /// `AWS_ENDPOINT_URL_ECR` and friends.
    #[serde(default)]
    pub endpoints: EndpointVars,
    /// `BERTH_IMAGES`: more images to pre-pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<String>,
}

impl HookSettings {
    /// The settings of this process's environment.
    pub fn from_env() -> HookSettings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        HookSettings {
            docker_config: crate::docker_config::env_dir(),
            docker_host: var("DOCKER_HOST"),
            endpoints: EndpointVars::from_env(),
            images: var("BERTH_IMAGES"),
        }
    }
}

/// One secret on the wire.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WireSecret {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: Secret,
}

impl WireSecret {
    /// The registry secrets of this process's environment.
    pub fn from_environment() -> Vec<WireSecret> {
        crate::secrets::from_environment()
            .into_iter()
            .map(|s| WireSecret {
                name: s.name,
                value: s.value,
            })
            .collect()
    }
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
    /// A registry's credentials (the answer to [`Request::Credentials`]).
    Credentials {
        /// The user name.
        username: Secret,
        /// The password or token.
        secret: Secret,
    },
    /// No credentials for that server, and why (berth has none for it, or has not received
    /// them yet since its daemon started).
    Missing {
        /// Why, in plain words.
        reason: String,
    },
}

/// The daemon's final answer.
#[derive(Debug)]
pub enum Answer {
    /// The work is finished, well or not.
    Done(bool),
    /// The status.
    Status(Box<Status>),
    /// The daemon refused this caller.
    Refused(String),
    /// A registry's credentials.
    Credentials(Secret, Secret),
    /// No credentials, and why.
    Missing(String),
}

/// Why a call did not get a final answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The daemon could not be reached, or went away before answering.
    #[error("{0}")]
    Unreachable(String),
    /// This user may not open the daemon's socket.
    #[error("{0}")]
    Denied(String),
    /// No final answer within the bound.
    #[error("no answer in time")]
    TimedOut,
}

/// Sends `request` to the daemon at `socket` and passes each line to `on_line` until the
/// final answer, or until `bound` has passed.
pub fn call(
    socket: &Path,
    request: &Request,
    bound: Duration,
    on_line: &mut dyn FnMut(Level, String),
) -> Result<Answer, CallError> {
    let deadline = Instant::now() + bound;
    let stream = UnixStream::connect(socket).map_err(|e| {
        let why = format!("{}: {e}", socket.display());
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => CallError::Denied(why),
            _ => CallError::Unreachable(why),
        }
    })?;
    let mut line =
        serde_json::to_vec(request).map_err(|e| CallError::Unreachable(e.to_string()))?;
    line.push(b'\n');
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    // A daemon that refuses this user answers before reading: the write may then fail,
    // and the answer is still there to read.
    let written = (&stream).write_all(&line);
    let mut reader = BufReader::new(stream);
    // Answers may hold secrets (credentials): the buffer is wiped when dropped.
    let mut buf = zeroize::Zeroizing::new(String::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CallError::TimedOut);
        }
        let _ = reader.get_ref().set_read_timeout(Some(left));
        buf.clear();
        match (&mut reader).take(MAX_LINE as u64).read_line(&mut buf) {
            Ok(0) => {
                return Err(CallError::Unreachable(match &written {
                    Err(e) => e.to_string(),
                    Ok(()) => "the daemon closed the connection before finishing".into(),
                }));
            }
            Ok(_) if !buf.ends_with('\n') => {
                return Err(CallError::Unreachable(format!(
                    "an answer longer than {MAX_LINE} bytes"
                )));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(CallError::TimedOut);
            }
            Err(e) => {
                return Err(CallError::Unreachable(
                    written.err().unwrap_or(e).to_string(),
                ));
            }
        }
        match serde_json::from_str::<Response>(&buf) {
            Ok(Response::Line { level, text }) => on_line(level, text),
            Ok(Response::Done { ok }) => return Ok(Answer::Done(ok)),
            Ok(Response::Refused { reason }) => return Ok(Answer::Refused(reason)),
            Ok(Response::Status(s)) => return Ok(Answer::Status(s)),
            Ok(Response::Credentials { username, secret }) => {
                return Ok(Answer::Credentials(username, secret));
            }
            Ok(Response::Missing { reason }) => return Ok(Answer::Missing(reason)),
            Err(e) => {
                return Err(CallError::Unreachable(format!("a malformed answer: {e}")));
            }
        }
    }
}

/// How long a credential helper waits for the daemon, all told: a Docker command never
/// waits longer on berth.
pub const HELPER_BOUND: Duration = Duration::from_secs(3);

/// What a credential helper prints when it has no credentials for a server: the Docker CLI
/// takes exactly this for "none" (and pulls anonymously), anything else for an error.
pub const NOT_FOUND: &str = "credentials not found in native keychain";

/// Asks the daemon for a registry's credentials (credential store `helper`), within
/// `bound` all told, connecting included: the call runs in a thread of its own, left
/// behind at the bound, so that a daemon that never accepts or answers cannot hold the
/// Docker command that asked. `Err` says why not: [`NOT_FOUND`] when berth has nothing
/// for that registry or does not answer, else in plain words.
pub fn credentials(
    socket: &Path,
    server: &str,
    bound: Duration,
) -> Result<(Secret, Secret), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (socket, server) = (socket.to_path_buf(), server.to_string());
    std::thread::spawn(move || {
        let answer = call(
            &socket,
            &Request::Credentials { server },
            bound,
            &mut |_, _| {},
        );
        let _ = tx.send(answer);
    });
    match rx.recv_timeout(bound) {
        Ok(Ok(Answer::Credentials(user, secret))) => Ok((user, secret)),
        Ok(Ok(Answer::Missing(reason) | Answer::Refused(reason))) => Err(reason),
        _ => Err(NOT_FOUND.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn serve(answer: &'static [u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            s.write_all(answer).unwrap();
        });
        (dir, path)
    }

    #[test]
    fn lines_then_the_final_answer() {
        let (_d, path) = serve(
            b"{\"type\":\"line\",\"level\":\"info\",\"text\":\"hi\"}\n{\"type\":\"done\",\"ok\":true}\n",
        );
        let mut lines = Vec::new();
        let answer = call(
            &path,
            &Request::Status,
            Duration::from_secs(5),
            &mut |_, t| lines.push(t),
        )
        .unwrap();
        assert!(matches!(answer, Answer::Done(true)));
        assert_eq!(lines, ["hi"]);
    }

    #[test]
    fn a_closed_connection_and_a_malformed_answer_are_unreachable() {
        let (_d, path) = serve(b"");
        let r = call(
            &path,
            &Request::Status,
            Duration::from_secs(5),
            &mut |_, _| {},
        );
        assert!(matches!(r, Err(CallError::Unreachable(_))), "{r:?}");
        let (_d, path) = serve(b"not json\n");
        let r = call(
            &path,
            &Request::Status,
            Duration::from_secs(5),
            &mut |_, _| {},
        );
        assert!(matches!(r, Err(CallError::Unreachable(m)) if m.contains("malformed")));
    }

    #[test]
    fn no_socket_is_unreachable() {
        let r = call(
            Path::new("/nonexistent/berth.sock"),
            &Request::Status,
            Duration::from_secs(1),
            &mut |_, _| {},
        );
        assert!(matches!(r, Err(CallError::Unreachable(_))));
    }
}
