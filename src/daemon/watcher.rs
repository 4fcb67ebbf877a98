//! The `watcher` worker: the state folder, through notify.
//!
//! A hook that could not reach the daemon records its phase itself; the daemon learns of it
//! here, when the event record changes, without polling. The folder is watched rather than
//! the file (a watch on a file follows its inode), and an overflowed event queue makes the
//! daemon re-read the whole record.

use std::sync::Arc;

use notify::Watcher as _;
use tokio::sync::mpsc;

use super::{Core, Fatal};

/// Watches until the daemon stops.
pub async fn run(core: Arc<Core>) -> Result<(), Fatal> {
    let (tx, mut rx) = mpsc::channel::<bool>(16);
    let events_name = Some(std::ffi::OsString::from(crate::state::EVENTS));
    let _watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Reads raise access events too (the daemon's own reads among them): only a change
        // of the record matters.
        let relevant = match &res {
            Ok(ev) => {
                ev.need_rescan()
                    || (crate::engine::is_change(ev)
                        && ev
                            .paths
                            .iter()
                            .any(|p| p.file_name() == events_name.as_deref()))
            }
            Err(_) => true,
        };
        if relevant {
            // A full channel already holds a wake-up: dropping this one loses nothing.
            let _ = tx.try_send(res.map(|e| e.need_rescan()).unwrap_or(true));
        }
    })
    .and_then(|mut w| {
        w.watch(
            &core.life.state_dir.path,
            notify::RecursiveMode::NonRecursive,
        )?;
        Ok(w)
    })
    .map_err(|source| Fatal::WatchState {
        path: core.life.state_dir.path.clone(),
        source,
    })?;
    loop {
        tokio::select! {
            _ = core.cancel.cancelled() => return Ok(()),
            msg = rx.recv() => match msg {
                Some(rescan) => {
                    if rescan {
                        tracing::debug!("event queue overflowed; re-reading the record");
                    }
                    core.catch_up();
                }
                None => return Ok(()),
            }
        }
    }
}
