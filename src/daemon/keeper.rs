//! The `keeper` worker: berth's entries stay in the remote user's config.
//!
//! The Docker CLI rewrites `config.json` without any lock, from what it read before; a
//! `docker login` running beside a berth write drops berth's entries (or berth would drop
//! its). The keeper watches the config's folder (notify, no polling) and, at every change,
//! compares the config with the logins berth wrote: an entry dropped or changed (its
//! `auths` login, or the `credHelpers` value that keeps it in force) is put back under
//! berth's lock, as the remote user, keeping everything the other writer added. It never
//! fights the user: an entry removed from `berth-managed.json` (`berth inject --prune`) or
//! whose secrets a later hook no longer has is forgotten, not restored.

use std::sync::Arc;

use notify::Watcher as _;
use tokio::sync::mpsc;

use super::{Core, Fatal};
use crate::docker_config::MANAGED_FILE;
use crate::inject::{self, Target};
use crate::state::Event;

/// Runs until the daemon stops.
pub async fn run(core: Arc<Core>) -> Result<(), Fatal> {
    let mut target_rx = core.guard.subscribe();
    loop {
        let target = target_rx.borrow_and_update().clone();
        let Some(target) = target else {
            tokio::select! {
                _ = core.cancel.cancelled() => return Ok(()),
                r = target_rx.changed() => { if r.is_err() { return Ok(()); } continue; }
            }
        };
        let (tx, mut rx) = mpsc::channel::<()>(1);
        let watched = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let relevant = match &res {
                Ok(ev) => {
                    ev.need_rescan()
                        || (crate::engine::is_change(ev)
                            && ev.paths.iter().any(|p| {
                                p.file_name()
                                    .is_some_and(|n| n == "config.json" || n == MANAGED_FILE)
                            }))
                }
                Err(_) => true,
            };
            if relevant {
                // A full channel already holds a wake-up.
                let _ = tx.try_send(());
            }
        })
        .and_then(|mut w| {
            w.watch(&target.location.dir, notify::RecursiveMode::NonRecursive)?;
            Ok(w)
        });
        let _watcher = match watched {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(dir = %target.location.dir.display(), error = %e, "cannot watch the Docker config folder; berth's entries are not kept in place");
                tokio::select! {
                    _ = core.cancel.cancelled() => return Ok(()),
                    r = target_rx.changed() => { if r.is_err() { return Ok(()); } continue; }
                }
            }
        };
        tracing::debug!(dir = %target.location.dir.display(), "keeping berth's entries in place");
        core.keep(&target).await;
        loop {
            tokio::select! {
                _ = core.cancel.cancelled() => return Ok(()),
                r = target_rx.changed() => { if r.is_err() { return Ok(()); } break; }
                msg = rx.recv() => {
                    if msg.is_none() { break; }
                    core.keep(&target).await;
                }
            }
        }
    }
}

impl Core {
    /// Puts back berth's entries that another writer dropped or changed in `target`'s
    /// config, and forgets those the user pruned.
    pub(super) async fn keep(&self, target: &Target) {
        let written: Vec<inject::KeptEntry> = self
            .memory
            .lock()
            .expect("memory lock")
            .written
            .values()
            .cloned()
            .collect();
        if written.is_empty() {
            return;
        }
        let _writer = self.inject_lock.lock().await;
        match inject::keep_entries(target, &written, self.life.settings.credential_helper) {
            Ok(kept) => {
                {
                    let mut mem = self.memory.lock().expect("memory lock");
                    for key in &kept.forgotten {
                        mem.written.remove(key);
                    }
                    for a in &kept.adopted {
                        mem.written.insert(a.key.clone(), a.clone());
                    }
                    for (key, stamp) in &kept.stamps {
                        if let Some(w) = mem.written.get_mut(key) {
                            w.stamp = *stamp;
                        }
                    }
                }
                if !kept.forgotten.is_empty() {
                    tracing::info!(entries = ?kept.forgotten, "berth's entries were pruned from its record; no longer kept");
                }
                if !kept.adopted.is_empty() {
                    let keys: Vec<&str> = kept.adopted.iter().map(|a| a.key.as_str()).collect();
                    tracing::info!(entries = ?keys, "another berth run changed these entries; keeping what it wrote");
                }
                if !kept.restored.is_empty() {
                    tracing::info!(ids = ?kept.restored, config = %kept.path.display(), "restored berth's entries another writer dropped or changed");
                    self.life.record(Event::Restored {
                        ids: kept.restored,
                        config: kept.path,
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot keep berth's entries in place"),
        }
    }
}
