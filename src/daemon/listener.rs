//! The `listener` worker: the daemon's socket.
//!
//! Each connection is checked by its peer credentials (root, the remote user and the
//! daemon's own user only; the socket's mode already keeps others out), then carries one
//! request, turned here, once, into a typed and checked [`HookInput`] with the caller's
//! identity. A hook's request is answered with lines as the work proceeds and a final
//! verdict; the entrypoint's with a verdict; a status request with the status; a wait
//! (`berth status --wait`) with the pulls' results as they come, then a verdict. A failed
//! `accept` (too many open files, say) is reported and survived.
//!
//! Connections are bounded: at most [`MAX_PER_USER`] at once from one user and
//! [`MAX_TOTAL`] in all, each with [`MAX_LINE`] bytes of request read within 10 s; one
//! over a bound is told why and closed at once, so that a flood of slow clients cannot
//! take the descriptors and memory the rest of the daemon needs (config writes, ECR
//! calls, the engine). The request's buffer, which may hold secrets, is wiped.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Core, Fatal};
use crate::lifecycle::{Caller, HookInput};
use crate::protocol::{Level, MAX_LINE, Request, Response};

/// Connections served at once from one user.
pub const MAX_PER_USER: usize = 16;
/// Connections served at once in all.
pub const MAX_TOTAL: usize = 64;
/// The longest `berth status --wait` waits (a day: beyond that, the number is a mistake).
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// Connections being served, in all and by user.
#[derive(Default)]
struct Open {
    total: usize,
    by_uid: std::collections::HashMap<u32, usize>,
}

/// One connection counted in [`Open`], for as long as it lives.
struct Slot {
    open: Arc<std::sync::Mutex<Open>>,
    uid: u32,
}

impl Slot {
    /// Takes a slot for `uid`, or says which bound it would pass.
    fn take(open: &Arc<std::sync::Mutex<Open>>, uid: u32) -> Result<Slot, String> {
        let mut o = open.lock().expect("connections lock");
        let mine = o.by_uid.get(&uid).copied().unwrap_or(0);
        if mine >= MAX_PER_USER {
            return Err(format!(
                "uid {uid} already has {MAX_PER_USER} connections open to berth's daemon (the most one user may); close some and try again"
            ));
        }
        if o.total >= MAX_TOTAL {
            return Err(format!(
                "berth's daemon already serves {MAX_TOTAL} connections (the most it takes); try again in a moment"
            ));
        }
        o.total += 1;
        *o.by_uid.entry(uid).or_default() += 1;
        Ok(Slot {
            open: open.clone(),
            uid,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock().expect("connections lock");
        o.total -= 1;
        if let Some(n) = o.by_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                o.by_uid.remove(&self.uid);
            }
        }
    }
}

/// Accepts connections until the daemon stops.
pub async fn run(core: Arc<Core>, listener: UnixListener) -> Result<(), Fatal> {
    let mut connections = JoinSet::new();
    let open = Arc::new(std::sync::Mutex::new(Open::default()));
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
                let uid = match stream.peer_cred() {
                    Ok(cred) => cred.uid(),
                    Err(e) => {
                        super::survived("listener", "connection dropped", &ConnectionError::PeerCredentials(e));
                        continue;
                    }
                };
                let slot = match Slot::take(&open, uid) {
                    Ok(slot) => slot,
                    Err(reason) => {
                        tracing::warn!(uid, reason = %reason, "refused a connection over the daemon's bounds");
                        refuse_now(&stream, reason);
                        continue;
                    }
                };
                let core = core.clone();
                connections.spawn(async move {
                    let _slot = slot;
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
    // The line may hold secrets: wiped when dropped.
    let mut line = zeroize::Zeroizing::new(String::new());
    let bound = Duration::from_secs(10);
    tokio::time::timeout(bound, reader.read_line(&mut line))
        .await
        .map_err(|_| ConnectionError::Silent(bound))??;
    if line.is_empty() {
        return Ok(()); // a client that only checked the daemon listens
    }
    let request: Request = serde_json::from_str(&line).map_err(ConnectionError::Malformed)?;
    drop(line);
    let caller = Caller {
        uid,
        pid: cred.pid(),
    };
    let answered = match request {
        Request::Status => {
            let status = core.status().await;
            send(&mut write, &Response::Status(Box::new(status))).await
        }
        Request::Start(start) => {
            // The entrypoint must not hold the container up: acknowledge, then work.
            let worker = core.clone();
            tokio::spawn(async move { worker.start(start.secrets, caller).await });
            send(&mut write, &Response::Done { ok: true }).await
        }
        Request::Hook(hook) => {
            let (mut input, notes) = HookInput::checked(
                Some(hook.phase),
                hook.secrets,
                hook.settings,
                hook.cwd,
                caller,
                &core.life.remote,
            );
            input.ran_at = hook.ran_at;
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
        Request::Credentials { server } => {
            let answer = match core.credentials_for(uid, &server) {
                Ok(login) => Response::Credentials {
                    username: login.user,
                    secret: login.password,
                },
                Err(reason) => Response::Missing { reason },
            };
            send(&mut write, &answer).await
        }
        Request::Wait { seconds } => {
            let bound = Duration::from_secs(seconds).min(MAX_WAIT);
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

/// Tells a connection over the bounds why, without waiting for it (a fresh socket's buffer
/// takes the line), and closes it.
fn refuse_now(stream: &UnixStream, reason: String) {
    let mut line = serde_json::to_vec(&Response::Refused { reason }).unwrap_or_default();
    line.push(b'\n');
    let _ = stream.try_write(&line);
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
