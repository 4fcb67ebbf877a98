//! Acting as another user: the one way berth touches what a less-privileged user controls.
//!
//! berth often runs as root inside someone else's container, and most of its work is for
//! the remote user: their Docker config, their workspace, the secrets files in their
//! folders, the Docker socket as they will meet it. Checking paths before opening them
//! as root is a race berth would lose to a planted link; so, as OpenSSH's privilege
//! separation and `sudoedit` do, berth does that user's work *with that user's
//! credentials* and lets the kernel refuse what the user could not do themselves.
//!
//! [`as_user`] runs a closure in a short-lived thread that has dropped to the user's uid,
//! gid and supplementary groups before it opens anything. On Linux credentials belong to
//! each thread: the raw `setgroups`, `setresgid` and `setresuid` system calls change the
//! calling thread only (the C library's wrappers would change every thread of the
//! process, which is why they are not used), and a thread that has left root this way has
//! no capabilities and cannot return to root. The rest of the process keeps its
//! privileges. A thread costs tens of microseconds where a fork and exec of a helper
//! costs milliseconds; the kernel's checks are the same. When berth already runs as that
//! user (or the user is root and so is berth) the closure simply runs in place.

use std::io;

use nix::libc;
use nix::unistd::{Gid, Uid};

use crate::account::Account;

/// Why berth could not act as a user.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// Only root may act as another user.
    #[error(
        "berth runs as uid {current} and cannot act as user {target} (uid {uid}); run it as root or as {target}"
    )]
    NotPermitted {
        /// Who berth runs as.
        current: u32,
        /// The user it was asked to act as.
        target: String,
        /// That user's id.
        uid: u32,
    },
    /// The kernel refused the change of credentials.
    #[error("cannot take the identity of user {target}: {cause}")]
    Switch {
        /// The user.
        target: String,
        /// Why.
        cause: io::Error,
    },
    /// The thread could not be started.
    #[error("cannot start a thread to act as user {target}: {cause}")]
    Thread {
        /// The user.
        target: String,
        /// Why.
        cause: io::Error,
    },
    /// The work did not finish within its bound (a file or lock of the user's held it);
    /// its thread is left to finish on its own.
    #[error(
        "work as user {target} did not finish within {:.1} s (something of theirs held it); berth goes on without it",
        bound.as_secs_f64()
    )]
    TimedOut {
        /// The user.
        target: String,
        /// The bound.
        bound: std::time::Duration,
    },
    /// Too much work for users is still unfinished (held, as above): no more is started
    /// until some of it ends.
    #[error(
        "{MAX_PENDING} pieces of work as other users are still unfinished; berth does not start more for user {target} until they end"
    )]
    Busy {
        /// The user.
        target: String,
    },
}

/// Whether work for `account` needs a change of credentials (berth runs as root, as
/// someone else), runs in place (berth is that user already), or cannot be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Run in place: berth already has exactly these privileges, or is root working for root.
    InPlace,
    /// Run in a thread dropped to the user.
    Drop,
    /// berth is neither root nor that user.
    Refused,
}

/// What acting as `account` takes from a process running as `euid`.
pub fn need(account: &Account, euid: Uid) -> Need {
    if account.uid == euid {
        Need::InPlace
    } else if euid.is_root() {
        Need::Drop
    } else {
        Need::Refused
    }
}

/// Runs `work` with the credentials of `account` (see the module's description) and
/// returns its result. A panic in `work` is resumed in the caller.
pub fn as_user<T: Send>(
    account: &Account,
    work: impl FnOnce() -> T + Send,
) -> Result<T, PrivilegeError> {
    match need(account, Uid::effective()) {
        Need::InPlace => Ok(work()),
        Need::Refused => Err(PrivilegeError::NotPermitted {
            current: Uid::effective().as_raw(),
            target: account.name.clone(),
            uid: account.uid.as_raw(),
        }),
        Need::Drop => std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name(format!("berth-as-{}", account.uid))
                .spawn_scoped(scope, || {
                    drop_thread_to(account.uid, account.gid, &account.groups).map_err(|cause| {
                        PrivilegeError::Switch {
                            target: account.name.clone(),
                            cause,
                        }
                    })?;
                    Ok(work())
                })
                .map_err(|cause| PrivilegeError::Thread {
                    target: account.name.clone(),
                    cause,
                })?;
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }),
    }
}

/// How many threads acting as users may be unfinished at once (those still running after
/// their caller stopped waiting count, until they end).
pub const MAX_PENDING: usize = 32;

static PENDING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `work` with the credentials of `account`, as [`as_user`] does, but always in a
/// thread of its own and waited for without blocking: the caller (the daemon's runtime)
/// goes on with other work meanwhile, and stops waiting after `bound`
/// ([`PrivilegeError::TimedOut`]). Work that outlives its bound keeps its thread until it
/// ends; while [`MAX_PENDING`] such threads are unfinished, no more are started. A panic
/// in `work` is resumed in the caller.
pub async fn as_user_bounded<T: Send + 'static>(
    account: &Account,
    bound: std::time::Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PrivilegeError> {
    use std::sync::atomic::Ordering;
    let need = need(account, Uid::effective());
    if need == Need::Refused {
        return Err(PrivilegeError::NotPermitted {
            current: Uid::effective().as_raw(),
            target: account.name.clone(),
            uid: account.uid.as_raw(),
        });
    }
    if PENDING.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING {
        PENDING.fetch_sub(1, Ordering::SeqCst);
        return Err(PrivilegeError::Busy {
            target: account.name.clone(),
        });
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let who = account.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("berth-as-{}", account.uid))
        .spawn(move || {
            let result = match need {
                Need::Drop => drop_thread_to(who.uid, who.gid, &who.groups)
                    .map_err(|cause| PrivilegeError::Switch {
                        target: who.name.clone(),
                        cause,
                    })
                    .map(|()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))),
                _ => Ok(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))),
            };
            PENDING.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(result);
        });
    if let Err(cause) = spawned {
        PENDING.fetch_sub(1, Ordering::SeqCst);
        return Err(PrivilegeError::Thread {
            target: account.name.clone(),
            cause,
        });
    }
    match tokio::time::timeout(bound, rx).await {
        Ok(Ok(Ok(Ok(value)))) => Ok(value),
        Ok(Ok(Ok(Err(panic)))) => std::panic::resume_unwind(panic),
        Ok(Ok(Err(e))) => Err(e),
        // The thread ended without answering: it cannot, since it always sends.
        Ok(Err(_)) => Err(PrivilegeError::Thread {
            target: account.name.clone(),
            cause: io::Error::other("the thread ended without an answer"),
        }),
        Err(_) => Err(PrivilegeError::TimedOut {
            target: account.name.clone(),
            bound,
        }),
    }
}

/// Gives the calling thread, and only it, these credentials for good.
fn drop_thread_to(uid: Uid, gid: Gid, groups: &[Gid]) -> io::Result<()> {
    let raw: Vec<libc::gid_t> = groups.iter().map(|g| g.as_raw()).collect();
    // SAFETY: raw system calls with plain integer arguments and a pointer to `raw`, which
    // outlives the call; they change the calling thread's credentials only.
    unsafe {
        check(libc::syscall(libc::SYS_setgroups, raw.len(), raw.as_ptr()))?;
        check(libc::syscall(
            libc::SYS_setresgid,
            gid.as_raw(),
            gid.as_raw(),
            gid.as_raw(),
        ))?;
        check(libc::syscall(
            libc::SYS_setresuid,
            uid.as_raw(),
            uid.as_raw(),
            uid.as_raw(),
        ))?;
    }
    // getuid and geteuid are plain system calls: they answer for this thread.
    if Uid::current() != uid || Uid::effective() != uid || Gid::effective() != gid {
        return Err(io::Error::other("the credentials did not change as asked"));
    }
    Ok(())
}

fn check(ret: libc::c_long) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn nobody() -> Account {
        Account {
            name: "nobody".into(),
            uid: Uid::from_raw(65534),
            gid: Gid::from_raw(65534),
            groups: vec![Gid::from_raw(65534)],
            home: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn need_depends_on_who_runs() {
        let n = nobody();
        assert_eq!(need(&n, Uid::from_raw(65534)), Need::InPlace);
        assert_eq!(need(&n, Uid::from_raw(0)), Need::Drop);
        assert_eq!(need(&n, Uid::from_raw(1000)), Need::Refused);
    }

    #[test]
    fn a_dropped_thread_meets_the_kernel_as_the_user_and_the_rest_stays_root() {
        if !Uid::effective().is_root() {
            // Outside root this is the in-place path, tested above.
            assert_eq!(need(&nobody(), Uid::effective()), Need::Refused);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("root-only");
        std::fs::write(&secret, b"x").unwrap();
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let (ids, opened) = as_user(&nobody(), || {
            (
                (Uid::current().as_raw(), Uid::effective().as_raw()),
                std::fs::File::open(&secret).map_err(|e| e.kind()),
            )
        })
        .unwrap();
        assert_eq!(ids, (65534, 65534));
        assert_eq!(opened.unwrap_err(), io::ErrorKind::PermissionDenied);
        // This thread, and the process, are still root.
        assert!(Uid::effective().is_root());
        assert!(std::fs::File::open(&secret).is_ok());
    }

    #[test]
    fn bounded_work_runs_as_the_user_off_the_runtime_and_is_given_up_at_its_bound() {
        let rt = crate::runtime().unwrap();
        rt.block_on(async {
            let me = Account::current().unwrap();
            let uid = as_user_bounded(&me, std::time::Duration::from_secs(5), || {
                Uid::effective().as_raw()
            })
            .await
            .unwrap();
            assert_eq!(uid, me.uid.as_raw());
            if Uid::effective().is_root() {
                let uid = as_user_bounded(&nobody(), std::time::Duration::from_secs(5), || {
                    Uid::effective().as_raw()
                })
                .await
                .unwrap();
                assert_eq!(uid, 65534);
            }
            // Work that never ends on its own: the caller is answered at the bound, and
            // the runtime (one thread) ran other tasks meanwhile: one that waited for the
            // work to start.
            let (release, held) = std::sync::mpsc::channel::<()>();
            let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
            let saw_start = tokio::spawn(started_rx);
            let err = as_user_bounded(&me, std::time::Duration::from_millis(100), move || {
                let _ = started_tx.send(());
                let _ = held.recv();
            })
            .await
            .unwrap_err();
            assert!(matches!(err, PrivilegeError::TimedOut { .. }), "{err}");
            assert!(
                saw_start.is_finished(),
                "the runtime was held while the work ran"
            );
            drop(release);
        });
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller() {
        let me = Account::current().unwrap();
        let r = std::panic::catch_unwind(|| {
            let _ = as_user(&me, || panic!("boom"));
        });
        assert!(r.is_err(), "in place");
        if Uid::effective().is_root() {
            let r = std::panic::catch_unwind(|| {
                let _ = as_user(&nobody(), || panic!("boom"));
            });
            assert!(r.is_err(), "in a dropped thread");
        }
    }
}
