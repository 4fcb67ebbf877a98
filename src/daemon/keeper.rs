//! The `keeper` worker: berth's entries stay in the remote user's config.
//!
//! The Docker CLI rewrites `config.json` without any lock, from what it read before; a
//! `docker login` running beside a berth write drops berth's entries (or berth would drop
//! its). The keeper watches the config's folder (notify, no polling) and, at every change,
//! compares the config with the logins berth wrote: an entry dropped or changed (its
//! `auths` login, or the `credHelpers` value that keeps it in force) is put back under
//! berth's lock, as the remote user, keeping everything the other writer added. It never
//! fights the user: an entry removed from `berth-managed.json` (`berth inject --prune`) or
//! whose secrets a later hook no longer has is forgotten, not restored; a config or record
//! the user deleted, or a whole folder removed (`rm -rf ~/.docker`), is left as they left
//! it, and nothing is created there: berth writes again at the next hook.
//!
//! The folder is resolved (as the user: `~/.docker` may be a link) each time a hook writes
//! and whenever the watched folder goes away, so that a `~/.docker` replaced by a link to
//! another folder (as Codespaces does with its persisted share) is followed there, and the
//! log says so. Logins the config's lock kept out of a write (the user may hold that lock)
//! are written here as soon as it is free: the keeper tries again after a pause that grows
//! from 1 s to 30 s, saying so in the log. All its work on the user's files runs in
//! threads acting as the user, within bounds, never on the daemon's runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher as _;
use tokio::sync::mpsc;

use super::{Core, Fatal};
use crate::docker_config::MANAGED_FILE;
use crate::inject::{self, Target};
use crate::state::Event;

/// The first pause before trying a held lock again, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What one round of keeping found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kept {
    /// Done (or nothing to do).
    Done,
    /// The watched folder is gone or was replaced.
    FolderGone,
    /// The config's lock was held past its bound: try again later.
    LockHeld,
}

/// Runs until the daemon stops.
pub async fn run(core: Arc<Core>) -> Result<(), Fatal> {
    let mut target_rx = core.guard.subscribe();
    let mut last_dir: Option<PathBuf> = None;
    loop {
        let target = target_rx.borrow_and_update().clone();
        let Some(target) = target else {
            tokio::select! {
                _ = core.cancel.cancelled() => return Ok(()),
                r = target_rx.changed() => { if r.is_err() { return Ok(()); } continue; }
            }
        };
        let (dir, identity) = match resolve(&target).await {
            Ok(found) => found,
            Err(e) => {
                tracing::info!(dir = %target.location.dir.display(), error = %e, "no Docker config folder to keep entries in; berth writes again at the next hook");
                tokio::select! {
                    _ = core.cancel.cancelled() => return Ok(()),
                    r = target_rx.changed() => { if r.is_err() { return Ok(()); } continue; }
                }
            }
        };
        if let Some(before) = last_dir.as_ref().filter(|d| **d != dir) {
            tracing::info!(from = %before.display(), to = %dir.display(), config = %target.location.dir.display(), "the Docker config folder is elsewhere now; keeping berth's entries there");
        }
        last_dir = Some(dir.clone());
        let (tx, mut rx) = mpsc::channel::<()>(1);
        let watched_dir = dir.clone();
        let watched = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let relevant = match &res {
                Ok(ev) => {
                    ev.need_rescan()
                        || ev.paths.contains(&watched_dir)
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
            w.watch(&dir, notify::RecursiveMode::NonRecursive)?;
            Ok(w)
        });
        let _watcher = match watched {
            Ok(w) => w,
            Err(e) => {
                // The folder may have gone between finding it and watching it.
                if core.keep(&target, Some(identity)).await == Kept::FolderGone {
                    say_folder_gone(&dir, &target);
                } else {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the Docker config folder; berth's entries are not kept in place");
                }
                tokio::select! {
                    _ = core.cancel.cancelled() => return Ok(()),
                    r = target_rx.changed() => { if r.is_err() { return Ok(()); } continue; }
                }
            }
        };
        tracing::debug!(dir = %dir.display(), "keeping berth's entries in place");
        let mut pause = RETRY_FIRST;
        let mut retry_at: Option<tokio::time::Instant>;
        let mut outcome = core.keep(&target, Some(identity)).await;
        loop {
            match outcome {
                Kept::FolderGone => {
                    say_folder_gone(&dir, &target);
                    tokio::select! {
                        _ = core.cancel.cancelled() => return Ok(()),
                        r = target_rx.changed() => { if r.is_err() { return Ok(()); } }
                    }
                    break;
                }
                Kept::LockHeld => {
                    tracing::info!(dir = %dir.display(), retry_in_s = pause.as_secs(), "the config's lock is held by another process; trying again");
                    retry_at = Some(tokio::time::Instant::now() + pause);
                    pause = (pause * 2).min(RETRY_MAX);
                }
                Kept::Done => {
                    retry_at = None;
                    pause = RETRY_FIRST;
                }
            }
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = core.cancel.cancelled() => return Ok(()),
                r = target_rx.changed() => { if r.is_err() { return Ok(()); } break; }
                msg = rx.recv() => {
                    if msg.is_none() { break; }
                    outcome = core.keep(&target, Some(identity)).await;
                }
                _ = retry => {
                    outcome = core.keep(&target, Some(identity)).await;
                }
            }
        }
    }
}

fn say_folder_gone(dir: &std::path::Path, target: &Target) {
    tracing::info!(dir = %dir.display(), config = %target.location.dir.display(), "the Docker config folder was removed or replaced; berth leaves it so and writes again at the next hook, where the folder is then");
}

/// Where the config folder is now, as its user sees it: its real path and its device and
/// inode.
async fn resolve(target: &Target) -> Result<(PathBuf, (u64, u64)), String> {
    let location = target.location.clone();
    crate::privilege::as_user_bounded(&target.account, inject::WORK_BOUND, move || {
        let real = std::fs::canonicalize(&location.dir)?;
        let identity = location.identity()?;
        std::io::Result::Ok((real, identity))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

impl Core {
    /// Puts back berth's entries that another writer dropped or changed in `target`'s
    /// config, writes those still pending, and forgets those the user pruned.
    pub(super) async fn keep(&self, target: &Target, watched: Option<(u64, u64)>) -> Kept {
        let written: Vec<inject::KeptEntry> = self
            .memory
            .lock()
            .expect("memory lock")
            .written
            .values()
            .cloned()
            .collect();
        if written.is_empty() {
            return Kept::Done;
        }
        let _writer = self.inject_lock.lock().await;
        match inject::keep_entries(target, written, self.life.settings.write_options(), watched)
            .await
        {
            Ok(kept) if kept.folder_gone => Kept::FolderGone,
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
                            w.pending = false;
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
                Kept::Done
            }
            Err(e) if e.is_lock_held() => Kept::LockHeld,
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep berth's entries in place");
                Kept::Done
            }
        }
    }
}
