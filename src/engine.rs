//! The Docker engine: where it is, waiting for it to answer, and talking to it right.
//!
//! In a dev container the engine is usually Docker-in-Docker, started by another feature's
//! entrypoint at the same moment as berth, and it can take tens of seconds to answer. berth
//! finds it through `DOCKER_HOST` or `/var/run/docker.sock`; if the socket does not exist
//! yet it watches the folder for it (no polling), then pings with backoff until the API
//! answers, within a bound, and negotiates the API version (Docker 20.10 speaks 1.41, which
//! rejects bollard's default). Every client made here also re-encodes `X-Registry-Auth` in
//! the base64url alphabet the engine decodes, so that passwords with any characters reach
//! the registry.
//!
//! The engine is judged as the remote user will meet it: a socket that answers berth (often
//! root) but that the remote user cannot open is reported with the fix
//! ([`user_access`]); and a socket named by the remote user's own `DOCKER_HOST` is opened
//! with the remote user's privileges, connection by connection ([`EngineTarget`]), so
//! that naming a path never lets a user reach a socket they could not open themselves.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bollard::Docker;
use notify::Watcher as _;
use tokio_util::sync::CancellationToken;

use crate::account::Account;

/// The engine's default socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Where the engine listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerHost {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address (`tcp://host:port`), without TLS.
    Tcp(String),
}

impl DockerHost {
    /// From a `DOCKER_HOST` value, or the default socket.
    pub fn from_value(value: Option<&str>) -> Result<DockerHost, EngineError> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(DockerHost::Unix(PathBuf::from(DEFAULT_SOCKET)));
        };
        if let Some(path) = v.strip_prefix("unix://") {
            return Ok(DockerHost::Unix(PathBuf::from(path)));
        }
        if v.starts_with("tcp://") || v.starts_with("http://") {
            return Ok(DockerHost::Tcp(v.to_string()));
        }
        if v.starts_with('/') {
            return Ok(DockerHost::Unix(PathBuf::from(v)));
        }
        Err(EngineError::UnsupportedHost(v.to_string()))
    }

    /// From the process's `DOCKER_HOST`.
    pub fn from_env() -> Result<DockerHost, EngineError> {
        Self::from_value(docker_host_var().as_deref())
    }
}

/// The process's `DOCKER_HOST`, if set and not empty.
pub fn docker_host_var() -> Option<String> {
    std::env::var("DOCKER_HOST").ok().filter(|v| !v.is_empty())
}

/// Whether an executable `program` is on `PATH`, or in the folders programs are installed
/// to (`/usr/bin`, `/usr/sbin`, `/usr/local/bin`) when `PATH` is narrower.
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |d: &std::path::Path| {
        std::fs::metadata(d.join(program))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| executable(&d)))
        || ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
            .iter()
            .any(|d| executable(std::path::Path::new(d)))
}

impl std::fmt::Display for DockerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DockerHost::Unix(p) => write!(f, "unix://{}", p.display()),
            DockerHost::Tcp(a) => f.write_str(a),
        }
    }
}

/// An engine, and whose privileges open its socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineTarget {
    /// Where it listens.
    pub host: DockerHost,
    /// The user whose privileges open each connection (a socket the remote user named);
    /// `None`: berth's own.
    pub user: Option<Account>,
}

impl EngineTarget {
    /// An engine berth found itself (its own `DOCKER_HOST`, the default socket).
    pub fn own(host: DockerHost) -> EngineTarget {
        EngineTarget { host, user: None }
    }

    /// An engine named by a caller of uid `caller_uid`: a socket named by anyone but root
    /// or berth's own user, other than berth's own engine (its `DOCKER_HOST`, else the
    /// default socket), is opened as the remote user.
    pub fn named_by(host: DockerHost, caller_uid: u32, remote: &Account) -> EngineTarget {
        let trusted = caller_uid == 0
            || caller_uid == nix::unistd::Uid::effective().as_raw()
            || DockerHost::from_env().is_ok_and(|own| own == host);
        let user = match &host {
            DockerHost::Unix(_) if !trusted && !remote.is_current() => Some(remote.clone()),
            _ => None,
        };
        EngineTarget { host, user }
    }
}

impl std::fmt::Display for EngineTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.host.fmt(f)
    }
}

/// Why the engine cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// A `DOCKER_HOST` berth does not speak.
    #[error(
        "DOCKER_HOST {0:?} is not supported; use unix:///path/to/docker.sock or tcp://host:port"
    )]
    UnsupportedHost(String),
    /// The engine did not answer within the bound.
    #[error(
        "the Docker engine at {host} did not answer within {seconds} s ({last}); is Docker-in-Docker installed and starting?"
    )]
    NotReady {
        /// Where.
        host: String,
        /// The bound.
        seconds: u64,
        /// The last thing that went wrong.
        last: String,
    },
    /// Waiting was cancelled (the daemon is stopping).
    #[error("stopped while waiting for the Docker engine")]
    Cancelled,
}

/// An engine that answered.
#[derive(Clone, Debug)]
pub struct Engine {
    /// The client, with the negotiated API version.
    pub docker: Docker,
    /// Where it is.
    pub host: DockerHost,
    /// The API version in use.
    pub api_version: String,
}

/// A client for `target` (no request is made). Requests time out after `timeout_secs`
/// waiting for response headers.
pub fn client(target: &EngineTarget, timeout_secs: u64) -> Result<Docker, bollard::errors::Error> {
    let docker = match (&target.host, &target.user) {
        (DockerHost::Unix(p), Some(user)) => Docker::connect_with_custom_transport(
            {
                let (path, user) = (p.clone(), user.clone());
                move |req: bollard::BollardRequest| request_as_user(path.clone(), user.clone(), req)
            },
            Some("http://localhost"),
            timeout_secs,
            bollard::API_DEFAULT_VERSION,
        )?,
        (DockerHost::Unix(p), None) => Docker::connect_with_unix(
            &p.to_string_lossy(),
            timeout_secs,
            bollard::API_DEFAULT_VERSION,
        )?,
        (DockerHost::Tcp(a), _) => {
            Docker::connect_with_http(a, timeout_secs, bollard::API_DEFAULT_VERSION)?
        }
    };
    Ok(docker.with_request_modifier(fix_registry_auth))
}

/// One request over a new connection to the socket at `path`, opened with `user`'s
/// privileges: the transport of an engine socket the remote user named.
async fn request_as_user(
    path: PathBuf,
    user: Account,
    req: bollard::BollardRequest,
) -> Result<http::Response<hyper::body::Incoming>, bollard::errors::Error> {
    let stream = crate::privilege::as_user_bounded(&user, CONNECT_BOUND, move || {
        std::os::unix::net::UnixStream::connect(&path)
    })
    .await
    .map_err(std::io::Error::other)??;
    stream.set_nonblocking(true)?;
    let io = hyper_util::rt::TokioIo::new(tokio::net::UnixStream::from_std(stream)?);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    // The connection lives until the response's body has been read.
    tokio::spawn(connection);
    let (mut parts, body) = req.into_parts();
    parts.uri = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .parse()?;
    parts.headers.insert(
        http::header::HOST,
        http::HeaderValue::from_static("localhost"),
    );
    Ok(sender
        .send_request(http::Request::from_parts(parts, body))
        .await?)
}

/// The longest berth waits to connect to an engine's socket as a user (a socket whose
/// listener never accepts makes a connect wait once its backlog is full).
const CONNECT_BOUND: Duration = Duration::from_secs(5);

/// Whether `account` may open the engine's socket: `None` when it may (or the engine is
/// not a socket, or is opened as that user anyway), else what stops it and what to do, in
/// plain words.
pub async fn user_access(target: &EngineTarget, account: &Account) -> Option<String> {
    let DockerHost::Unix(path) = &target.host else {
        return None;
    };
    if target.user.is_some() || account.is_current() || account.uid.is_root() {
        return None;
    }
    let socket = path.clone();
    let opened = crate::privilege::as_user_bounded(account, CONNECT_BOUND, move || {
        std::os::unix::net::UnixStream::connect(&socket).map(drop)
    })
    .await;
    let err = match opened {
        Ok(Ok(())) => return None,
        Ok(Err(e)) => e,
        Err(e) => return Some(e.to_string()),
    };
    let name = &account.name;
    if err.kind() != std::io::ErrorKind::PermissionDenied {
        return Some(format!(
            "user {name} cannot open the Docker engine's socket {}: {err}",
            path.display()
        ));
    }
    let about = std::fs::metadata(path).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        let gid = nix::unistd::Gid::from_raw(m.gid());
        let owner = Account::by_uid(nix::unistd::Uid::from_raw(m.uid()))
            .map(|a| a.name)
            .unwrap_or_else(|| m.uid().to_string());
        (owner, gid, Account::group_name(gid), m.mode() & 0o777)
    });
    let fix_group = |group: &str| {
        format!(
            "add {name} to group {group} in the image (for example `usermod -aG {group} {name}`), or use the docker-outside-of-docker feature, whose socket proxy opens the socket to the remote user"
        )
    };
    Some(match about {
        Some((owner, gid, group, mode)) if gid.as_raw() != 0 => format!(
            "user {name} cannot open the Docker engine's socket {} (owner {owner}, group {group}, mode {mode:o}; {name} is not in group {group}), so docker commands run by {name} fail with 'permission denied': {}",
            path.display(),
            fix_group(&group)
        ),
        Some((owner, _, group, mode)) => format!(
            "user {name} cannot open the Docker engine's socket {} (owner {owner}, group {group}, mode {mode:o}), so docker commands run by {name} fail with 'permission denied': give the socket a group {name} is in, or use the docker-outside-of-docker feature, whose socket proxy opens the socket to the remote user",
            path.display()
        ),
        None => format!(
            "user {name} cannot open the Docker engine's socket {} (permission denied): {}",
            path.display(),
            fix_group("docker")
        ),
    })
}

/// Re-encodes `X-Registry-Auth` from bollard's standard base64 to the base64url the engine
/// decodes; without this, passwords whose encoding has `+` or `/` silently pull anonymously.
fn fix_registry_auth(mut req: bollard::BollardRequest) -> bollard::BollardRequest {
    let headers = req.headers_mut();
    if let Some(value) = headers.get("X-Registry-Auth") {
        let fixed = value
            .to_str()
            .ok()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .map(|json| base64::engine::general_purpose::URL_SAFE.encode(json))
            .and_then(|v| http::HeaderValue::from_str(&v).ok());
        if let Some(v) = fixed {
            headers.insert("X-Registry-Auth", v);
        }
    }
    req
}

/// One ping with version negotiation, or why not.
pub async fn ping(target: &EngineTarget, timeout: Duration) -> Result<Engine, String> {
    if let DockerHost::Unix(p) = &target.host
        && target.user.is_none()
        && !p.exists()
    {
        return Err(format!("{} does not exist", p.display()));
    }
    let docker = client(target, timeout.as_secs().max(1)).map_err(|e| e.to_string())?;
    // Negotiating asks the engine for its version: an answer is the ping.
    let attempt = async { docker.negotiate_version().await.map_err(|e| e.to_string()) };
    let docker = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| "no answer".to_string())??;
    let api_version = docker.client_version().to_string();
    Ok(Engine {
        docker,
        host: target.host.clone(),
        api_version,
    })
}

/// Waits until the engine answers, within `bound`: first for the socket to appear
/// (watching its folder), then pinging with backoff.
pub async fn wait_ready(
    target: &EngineTarget,
    bound: Duration,
    cancel: &CancellationToken,
) -> Result<Engine, EngineError> {
    let deadline = Instant::now() + bound;
    let not_ready = |last: String| EngineError::NotReady {
        host: target.host.to_string(),
        seconds: bound.as_secs(),
        last,
    };
    if let (DockerHost::Unix(path), None) = (&target.host, &target.user) {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = cancel.cancelled() => return Err(EngineError::Cancelled),
            r = tokio::time::timeout(left, wait_for_path(path)) => {
                if r.is_err() {
                    return Err(not_ready(format!("{} does not exist", path.display())));
                }
            }
        }
    }
    let mut delay = Duration::from_millis(50);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let last = match ping(
            target,
            left.min(Duration::from_secs(5))
                .max(Duration::from_millis(200)),
        )
        .await
        {
            Ok(engine) => return Ok(engine),
            Err(e) => e,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(not_ready(last));
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(EngineError::Cancelled),
            _ = tokio::time::sleep(delay.min(left)) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Completes when `path` exists, watching its folder (and, while that is missing, the
/// nearest existing ancestor) for changes instead of polling.
pub async fn wait_for_path(path: &Path) -> Result<(), notify::Error> {
    loop {
        if path.exists() {
            return Ok(());
        }
        let watch_dir = path
            .ancestors()
            .skip(1)
            .find(|a| a.is_dir())
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if res.as_ref().map_or(true, is_change) {
                    let _ = tx.try_send(());
                }
            })?;
        watcher.watch(&watch_dir, notify::RecursiveMode::NonRecursive)?;
        // The path may have appeared between the check and the watch.
        if path.exists() {
            return Ok(());
        }
        // Any change in the folder: check again (re-watching a deeper folder if one appeared).
        if rx.recv().await.is_none() {
            return Ok(());
        }
    }
}

/// Whether a notify event is a change (a file made, written, renamed or removed, or a
/// rescan), not a mere read: reading a watched folder's files must not wake its watcher.
pub fn is_change(ev: &notify::Event) -> bool {
    ev.need_rescan() || !matches!(ev.kind, notify::EventKind::Access(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_changes() {
        use notify::event::{AccessKind, CreateKind, EventKind, ModifyKind};
        let ev = |kind| notify::Event::new(kind);
        assert!(!is_change(&ev(EventKind::Access(AccessKind::Any))));
        assert!(is_change(&ev(EventKind::Modify(ModifyKind::Any))));
        assert!(is_change(&ev(EventKind::Create(CreateKind::File))));
        assert!(is_change(
            &ev(EventKind::Access(AccessKind::Any)).set_flag(notify::event::Flag::Rescan)
        ));
    }

    #[test]
    fn docker_host_values() {
        assert_eq!(
            DockerHost::from_value(None).unwrap(),
            DockerHost::Unix(DEFAULT_SOCKET.into())
        );
        assert_eq!(
            DockerHost::from_value(Some("unix:///tmp/d.sock")).unwrap(),
            DockerHost::Unix("/tmp/d.sock".into())
        );
        assert_eq!(
            DockerHost::from_value(Some("tcp://127.0.0.1:2375")).unwrap(),
            DockerHost::Tcp("tcp://127.0.0.1:2375".into())
        );
        assert!(DockerHost::from_value(Some("ssh://me@host")).is_err());
    }

    #[test]
    fn registry_auth_is_reencoded_as_base64url() {
        let json = r#"{"password":"???>>>~~~"}"#;
        let std = base64::engine::general_purpose::STANDARD.encode(json);
        assert!(std.contains('/') || std.contains('+'));
        let req = http::Request::builder()
            .header("X-Registry-Auth", std)
            .body(bollard::body_full(bytes_empty()))
            .unwrap();
        let fixed = fix_registry_auth(req);
        let v = fixed.headers()["X-Registry-Auth"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(!v.contains('/') && !v.contains('+'));
        let back = base64::engine::general_purpose::URL_SAFE.decode(v).unwrap();
        assert_eq!(back, json.as_bytes());
    }

    fn bytes_empty() -> bytes::Bytes {
        bytes::Bytes::new()
    }

    #[tokio::test]
    async fn waits_for_a_path_to_appear_without_polling() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub").join("docker.sock");
        let t2 = target.clone();
        let waiter = tokio::spawn(async move { wait_for_path(&t2).await });
        tokio::task::yield_now().await;
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(&target, b"").unwrap();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
