//! The users berth works with, looked up by name when it needs them.
//!
//! In a dev container the "remote user" (`vscode`, `node`, `dev`, or root) is often not
//! the user berth runs as: the daemon usually runs as root while lifecycle commands run as
//! the remote user. An [`Account`] carries what berth needs of a user: ids and groups, to
//! act as them ([`crate::privilege`]), and the home folder, where their Docker config
//! lives. A user is always looked up by name when a process starts, never remembered by
//! id: the Dev Containers CLI may give the remote user another uid after berth was
//! installed, and the name is what stays.

use std::ffi::CString;
use std::path::PathBuf;

use nix::unistd::{Gid, Group, Uid, User};

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: Uid,
    /// The primary group id.
    pub gid: Gid,
    /// Every group the user is in, the primary one included.
    pub groups: Vec<Gid>,
    /// The home folder.
    pub home: PathBuf,
}

/// A user that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No such user in the password database.
    #[error(
        "there is no user named {0:?} in this container's /etc/passwd (berth reads only that \
         file, not LDAP or SSSD); check the remote user's name"
    )]
    NoSuchUser(String),
    /// The database could not be read.
    #[error("cannot look up user {name:?}: {cause}")]
    Lookup {
        /// The user.
        name: String,
        /// Why.
        cause: nix::Error,
    },
}

impl Account {
    /// The user with this name, from the password and group databases.
    pub fn by_name(name: &str) -> Result<Account, AccountError> {
        match User::from_name(name) {
            Ok(Some(u)) => Ok(Account::from(u)),
            Ok(None) => Err(AccountError::NoSuchUser(name.to_string())),
            Err(cause) => Err(AccountError::Lookup {
                name: name.to_string(),
                cause,
            }),
        }
    }

    /// The user with this id, if the password database knows it.
    pub fn by_uid(uid: Uid) -> Option<Account> {
        User::from_uid(uid).ok().flatten().map(Account::from)
    }

    /// The user berth runs as, with the groups of this process. `HOME` is preferred to
    /// the database's home folder, as the Docker CLI does.
    pub fn current() -> Result<Account, AccountError> {
        let uid = Uid::effective();
        let mut account = match User::from_uid(uid) {
            Ok(Some(u)) => Account::from(u),
            _ => Account {
                name: uid.to_string(),
                uid,
                gid: Gid::effective(),
                groups: Vec::new(),
                home: PathBuf::from("/"),
            },
        };
        account.gid = Gid::effective();
        account.groups = nix::unistd::getgroups().unwrap_or_default();
        if !account.groups.contains(&account.gid) {
            account.groups.push(account.gid);
        }
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            account.home = PathBuf::from(home);
        }
        Ok(account)
    }

    /// Whether this is the user berth runs as.
    pub fn is_current(&self) -> bool {
        self.uid == Uid::effective()
    }

    /// The name of a group, or its number.
    pub fn group_name(gid: Gid) -> String {
        Group::from_gid(gid)
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_else(|| gid.to_string())
    }
}

impl From<User> for Account {
    fn from(u: User) -> Self {
        let mut groups = CString::new(u.name.as_bytes())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, u.gid).ok())
            .unwrap_or_default();
        if !groups.contains(&u.gid) {
            groups.push(u.gid);
        }
        Account {
            name: u.name,
            uid: u.uid,
            gid: u.gid,
            groups,
            home: u.dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_by_name_with_its_groups() {
        let root = Account::by_name("root").unwrap();
        assert!(root.uid.is_root());
        assert!(root.groups.contains(&root.gid));
        assert!(matches!(
            Account::by_name("no-such-user-here"),
            Err(AccountError::NoSuchUser(_))
        ));
    }
}
