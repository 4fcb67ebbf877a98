//! The `signals` worker: SIGTERM and SIGINT stop the daemon through its one shutdown path.

use tokio::signal::unix::{SignalKind, signal as signal_stream};
use tokio_util::sync::CancellationToken;

use super::Fatal;

/// Waits for a stop signal (or a stop from elsewhere).
pub async fn run(cancel: CancellationToken) -> Result<(), Fatal> {
    let listen =
        |kind, signal| signal_stream(kind).map_err(|source| Fatal::Signal { signal, source });
    let mut term = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut int = listen(SignalKind::interrupt(), "SIGINT")?;
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "stopping"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "stopping"),
        _ = cancel.cancelled() => {}
    }
    Ok(())
}
