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
