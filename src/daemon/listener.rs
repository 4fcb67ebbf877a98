//! The `listener` worker: the daemon's socket.
//!
//! Each connection is checked by its peer credentials (root, the remote user and the
//! daemon's own user only; the socket's mode already keeps others out), then carries one
//! request, turned here, once, into a typed and checked [`HookInput`] with the caller's
//! identity. A hook's request is answered with lines as the work proceeds and a final
//! verdict; the entrypoint's with a verdict; a status request with the status; a wait
//! (`berth status --wait`) with the pulls' results as they come, then a verdict. A failed
//! `accept` (too many open files, say) is reported and survived.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Core, Fatal};
use crate::lifecycle::{Caller, HookInput};
use crate::protocol::{Level, MAX_LINE, Request, Response};

/// Accepts connections until the daemon stops.
pub async fn run(core: Arc<Core>, listener: UnixListener) -> Result<(), Fatal> {
    let mut connections = JoinSet::new();
    let mut pause = Duration::from_millis(5);
    loop {
        tokio::select! {
            _ = core.cancel.cancelled() => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => {
                        pause = Duration::from_millis(5);
                        stream
                    }
                    Err(e) => {
                        // Such as running out of descriptors: back off as Go's servers do,
                        // and go on.
                        tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "cannot accept a connection");
                        tokio::select! {
                            _ = core.cancel.cancelled() => break,
                            _ = tokio::time::sleep(pause) => {}
                        }
                        pause = (pause * 2).min(Duration::from_secs(1));
                        continue;
                    }
                };
                let core = core.clone();
                connections.spawn(async move {
                    if let Err(e) = serve(core, stream).await {
                        super::survived("listener", "connection dropped", &e);
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // In-flight hooks see the connection close and carry on by themselves.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Why one connection was dropped; the daemon survives it.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    /// Its peer's credentials cannot be read.
    #[error("cannot read the peer's credentials")]
    PeerCredentials(#[source] std::io::Error),
    /// It sent no request in time.
    #[error("no request within {0:?}")]
    Silent(Duration),
    /// It sent a line that is not a request.
    #[error("a malformed request")]
    Malformed(#[source] serde_json::Error),
    /// Reading or writing it failed (the peer went away, say).
    #[error("the connection failed")]
    Io(#[from] std::io::Error),
}

async fn serve(core: Arc<Core>, stream: UnixStream) -> Result<(), ConnectionError> {
    let cred = stream
        .peer_cred()
        .map_err(ConnectionError::PeerCredentials)?;
    let uid = cred.uid();
    let (read, mut write) = stream.into_split();
    if !allowed(&core, uid) {
        tracing::warn!(uid, pid = ?cred.pid(), "refused a connection from a user that is neither root nor the remote user");
        let reason = format!(
            "uid {uid} may not use berth's daemon: only root and the remote user {} may",
            core.life.remote.name
        );
        send(&mut write, &Response::Refused { reason }).await?;
        return Ok(());
    }
    let mut reader = BufReader::new(read).take(MAX_LINE as u64);
    let mut line = String::new();
    let bound = Duration::from_secs(10);
    tokio::time::timeout(bound, reader.read_line(&mut line))
        .await
        .map_err(|_| ConnectionError::Silent(bound))??;
    if line.is_empty() {
        return Ok(()); // a client that only checked the daemon listens
    }
    let request: Request = serde_json::from_str(&line).map_err(ConnectionError::Malformed)?;
    let caller = Caller {
        uid,
        pid: cred.pid(),
    };
    let answered = match request {
        Request::Status => send(&mut write, &Response::Status(Box::new(core.status()))).await,
        Request::Start(start) => {
            // The entrypoint must not hold the container up: acknowledge, then work.
            let worker = core.clone();
            tokio::spawn(async move { worker.start(start.secrets, caller).await });
            send(&mut write, &Response::Done { ok: true }).await
        }
        Request::Hook(hook) => {
            let (input, notes) = HookInput::checked(
                Some(hook.phase),
                hook.secrets,
                hook.settings,
                hook.cwd,
                caller,
                &core.life.remote,
            );
            tracing::debug!(
                uid,
                pid = ?caller.pid,
                phase = %input.label(),
                secrets = input.secrets.len(),
                docker_config = ?input.docker_config,
                engine = ?input.engine.as_ref().map(|e| e.to_string()),
                images = ?input.images,
                "hook request"
            );
            for note in &notes {
                tracing::info!(uid, note = %note, "hook setting set aside");
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let work = async move { core.handle_hook(input, &mut to(tx)).await };
            streamed(write, rx, work).await
        }
        Request::Wait { seconds } => {
            let bound = Duration::from_secs(seconds);
            let (tx, rx) = mpsc::unbounded_channel();
            let work = async move { core.wait_pulls("status", bound, &mut to(tx)).await };
            streamed(write, rx, work).await
        }
    };
    Ok(answered?)
}

/// A sink that sends each line to `tx`.
fn to(tx: mpsc::UnboundedSender<(Level, String)>) -> impl FnMut(Level, String) + Send {
    move |level, text| {
        let _ = tx.send((level, text));
    }
}

/// Runs `work`, sending each line it says (into `lines`) as it says it, then `Done` with
/// its result.
async fn streamed<W: AsyncWriteExt + Unpin>(
    mut write: W,
    mut lines: mpsc::UnboundedReceiver<(Level, String)>,
    work: impl Future<Output = bool>,
) -> std::io::Result<()> {
    let forward = async {
        while let Some((level, text)) = lines.recv().await {
            send(&mut write, &Response::Line { level, text }).await?;
        }
        std::io::Result::Ok(write)
    };
    let (ok, write) = tokio::join!(work, forward);
    let mut write = write?;
    send(&mut write, &Response::Done { ok }).await
}

fn allowed(core: &Core, uid: u32) -> bool {
    uid == 0
        || uid == core.life.remote.uid.as_raw()
        || uid == nix::unistd::Uid::effective().as_raw()
}

async fn send<W: AsyncWriteExt + Unpin>(w: &mut W, response: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await?;
    Ok(())
}
