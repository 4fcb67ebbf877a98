//! The `signals` worker: SIGTERM and SIGINT stop the daemon through its one shutdown path.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Waits for a stop signal (or a stop from elsewhere).
pub async fn run(cancel: CancellationToken) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "stopping"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "stopping"),
        _ = cancel.cancelled() => {}
    }
    Ok(())
}
