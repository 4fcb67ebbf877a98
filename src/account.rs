//! The user whose Docker config berth writes.
//!
//! In a dev container that is the "remote user" (`vscode`, `node`, `dev`, or root), which
//! is often not the user berth runs as: the daemon usually runs as root while lifecycle
//! commands run as the remote user. An [`Account`] carries what berth needs of that user:
//! ids for file ownership and the home folder.

use std::path::PathBuf;

use nix::unistd::{Gid, Uid, User};

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: Uid,
    /// The primary group id.
    pub gid: Gid,
    /// The home folder.
    pub home: PathBuf,
}

/// A user that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No such user in the password database.
    #[error("there is no user named {0:?} in this container; check the remote user's name")]
    NoSuchUser(String),
    /// The database could not be read.
    #[error("cannot look up user {name:?}: {source}")]
    Lookup {
        /// The user.
        name: String,
        /// Why.
        source: nix::Error,
    },
    /// Writing another user's files needs root.
    #[error(
        "berth runs as {current} and cannot write files of user {target}; run it as root or as {target}"
    )]
    NotPermitted {
        /// Who berth runs as.
        current: String,
        /// The user it was asked to write for.
        target: String,
    },
}

impl Account {
    /// The user with this name.
    pub fn by_name(name: &str) -> Result<Account, AccountError> {
        match User::from_name(name) {
            Ok(Some(u)) => Ok(Account::from(u)),
            Ok(None) => Err(AccountError::NoSuchUser(name.to_string())),
            Err(source) => Err(AccountError::Lookup {
                name: name.to_string(),
                source,
            }),
        }
    }

    /// The user berth runs as. `HOME` is preferred to the database's home folder, as the
    /// Docker CLI does.
    pub fn current() -> Result<Account, AccountError> {
        let uid = Uid::effective();
        let mut account = match User::from_uid(uid) {
            Ok(Some(u)) => Account::from(u),
            _ => Account {
                name: uid.to_string(),
                uid,
                gid: Gid::effective(),
                home: PathBuf::from("/"),
            },
        };
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            account.home = PathBuf::from(home);
        }
        Ok(account)
    }

    /// Whether this is the user berth runs as.
    pub fn is_current(&self) -> bool {
        self.uid == Uid::effective()
    }

    /// The owner to give files written for this user: `None` when berth runs as this user
    /// (files are theirs already), the user's ids when berth runs as root, and an error
    /// otherwise.
    pub fn file_owner(&self) -> Result<Option<(Uid, Gid)>, AccountError> {
        if self.is_current() {
            Ok(None)
        } else if Uid::effective().is_root() {
            Ok(Some((self.uid, self.gid)))
        } else {
            Err(AccountError::NotPermitted {
                current: Account::current()
                    .map(|a| a.name)
                    .unwrap_or_else(|_| Uid::effective().to_string()),
                target: self.name.clone(),
            })
        }
    }
}

impl From<User> for Account {
    fn from(u: User) -> Self {
        Account {
            name: u.name,
            uid: u.uid,
            gid: u.gid,
            home: u.dir,
        }
    }
}
