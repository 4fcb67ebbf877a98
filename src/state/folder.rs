//! The state folder: where it is, and how its owner opens what it keeps there.
//!
//! The daemon keeps its socket, lock, log and event record in one folder that only its
//! own user can write: `/var/lib/berth` when it runs as root (as the container's user
//! usually is), else `~/.local/state/berth` of its user; `BERTH_STATE_DIR` names another.
//! Everyone else reaches the daemon through its socket; the remote user may also read the
//! log and the record (group access), which hold no secret.
//!
//! The owner opens the folder once, without following a link, and keeps it open: every
//! file in it is opened relative to that handle, never through a link, and must be a
//! plain file of its own with a single name (a hard link to another file would let a
//! write land elsewhere); anything else found under one of its names is removed and made
//! anew. A folder that someone else owns or may write (as an earlier berth left it, owned
//! by the remote user) is taken over by a root owner, and refused by any other.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::{Record, parse_records};

/// The state folder of a daemon running as root.
pub const SYSTEM_DIR: &str = "/var/lib/berth";
/// The socket's name in the folder.
pub const SOCKET: &str = "berth.sock";
/// The single-instance lock's name (it holds the daemon's pid).
pub const LOCK: &str = "daemon.lock";
/// The event record's name.
pub const EVENTS: &str = "events.jsonl";
/// The log's name.
pub const LOG: &str = "berth.log";
/// A log larger than this is rotated to `berth.log.1` when it is opened.
const ROTATE_AT: u64 = 8 * 1024 * 1024;

/// Where a state folder is: what a client (a hook, `berth status`) needs to find the
/// daemon and read its record, as itself.
#[derive(Clone, Debug)]
pub struct StateDir {
    /// The folder.
    pub path: PathBuf,
}

/// Why the state folder cannot be used by this process.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// It belongs to someone else, and berth is not root.
    #[error(
        "the state folder {path} belongs to uid {owner} (or others may write it); berth runs as uid {me} and does not use it"
    )]
    NotOurs {
        /// The folder.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Who berth runs as.
        me: u32,
    },
    /// It cannot be created or opened.
    #[error("cannot open the state folder {path}: {cause}")]
    Open {
        /// The folder.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
}

impl StateDir {
    /// A state folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    /// The folder of a daemon running as `uid`: `explicit` if given, `/var/lib/berth` for
    /// root, else the user's `~/.local/state/berth`.
    pub fn of_user(explicit: Option<&Path>, uid: Uid) -> StateDir {
        if let Some(p) = explicit {
            return StateDir::new(p);
        }
        if uid.is_root() {
            return StateDir::new(SYSTEM_DIR);
        }
        let home = crate::account::Account::by_uid(uid)
            .map(|a| a.home)
            .unwrap_or_else(|| PathBuf::from("/nonexistent"));
        StateDir::new(home.join(".local/state/berth"))
    }

    /// The folder of this container's daemon, which runs as the container's user.
    pub fn of_daemon(explicit: Option<&Path>) -> StateDir {
        Self::of_user(
            explicit,
            crate::container::user().unwrap_or(Uid::from_raw(0)),
        )
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.path.join(SOCKET)
    }

    /// The daemon's single-instance lock (holds its pid).
    pub fn lock(&self) -> PathBuf {
        self.path.join(LOCK)
    }

    /// The event record.
    pub fn events(&self) -> PathBuf {
        self.path.join(EVENTS)
    }

    /// The JSON log.
    pub fn log(&self) -> PathBuf {
        self.path.join(LOG)
    }

    /// Every readable record, read as the caller.
    pub fn read_all(&self) -> Vec<Record> {
        self.read_from(0).0
    }

    /// Records from byte `offset` on, read as the caller, and the offset after the last
    /// complete line.
    pub fn read_from(&self, offset: u64) -> (Vec<Record>, u64) {
        match File::open(self.events()) {
            Ok(f) => read_records(f, offset),
            Err(_) => (Vec::new(), offset),
        }
    }

    /// Opens the folder as its owner (creating it if missing), for the daemon or a hook
    /// that runs as the daemon's user. Files in it get the group `group` (the remote
    /// user's), so that the remote user may read them and use the socket.
    pub fn open_owned(&self, group: Gid) -> Result<OwnedState, StateError> {
        let open_err = |cause| StateError::Open {
            path: self.path.clone(),
            cause,
        };
        if !self.path.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&self.path)
                .map_err(open_err)?;
        }
        let dir: OwnedFd = nix::fcntl::open(
            &self.path,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .map_err(|e| open_err(io::Error::from(e)))?;
        let meta = File::from(dir.try_clone().map_err(open_err)?)
            .metadata()
            .map_err(open_err)?;
        let me = Uid::effective();
        let writable_by_others = meta.mode() & 0o022 != 0;
        if meta.uid() != me.as_raw() || writable_by_others {
            if !me.is_root() {
                return Err(StateError::NotOurs {
                    path: self.path.clone(),
                    owner: meta.uid(),
                    me: me.as_raw(),
                });
            }
            nix::unistd::fchown(&dir, Some(me), Some(Gid::from_raw(0)))
                .map_err(|e| open_err(e.into()))?;
            tracing::warn!(path = %self.path.display(), previous_owner = meta.uid(), "took over the state folder");
        }
        if meta.mode() & 0o7777 != 0o755 {
            nix::sys::stat::fchmod(&dir, Mode::from_bits_truncate(0o755))
                .map_err(|e| open_err(e.into()))?;
        }
        Ok(OwnedState {
            path: self.path.clone(),
            dir,
            group,
        })
    }
}

/// The state folder, held open by its owner.
#[derive(Debug)]
pub struct OwnedState {
    path: PathBuf,
    dir: OwnedFd,
    group: Gid,
}

impl OwnedState {
    /// The folder's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder's location, for what clients see.
    pub fn dir(&self) -> StateDir {
        StateDir::new(&self.path)
    }

    /// Opens (creating) one of the folder's files, never through a link and never a file
    /// that is not this process's own single-named plain file; gives it the folder's
    /// group and `mode`.
    fn open_file(&self, name: &str, access: OFlag, mode: u32) -> io::Result<File> {
        let me = Uid::effective().as_raw();
        let mut last = None;
        for _ in 0..3 {
            let opened = nix::fcntl::openat(
                &self.dir,
                name,
                access | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
                Mode::from_bits_truncate(mode),
            );
            let fd = match opened {
                Ok(fd) => fd,
                Err(Errno::ELOOP) => {
                    self.remove_stray(name, "a symbolic link")?;
                    last = Some(Errno::ELOOP.into());
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let file = File::from(fd);
            let meta = file.metadata()?;
            if !meta.is_file() || meta.uid() != me || meta.nlink() != 1 {
                drop(file);
                self.remove_stray(name, "not a plain file of berth's own")?;
                last = Some(io::Error::other(format!("{name} was replaced")));
                continue;
            }
            nix::fcntl::fcntl(&file, FcntlArg::F_SETFL(access & !OFlag::O_NONBLOCK))?;
            if meta.gid() != self.group.as_raw() {
                // Only root may give a file a group it is not in; elsewhere it stays ours.
                let _ = std::os::unix::fs::fchown(&file, None, Some(self.group.as_raw()));
            }
            if meta.mode() & 0o7777 != mode {
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            return Ok(file);
        }
        Err(last.unwrap_or_else(|| io::Error::other("cannot open")))
    }

    fn remove_stray(&self, name: &str, what: &str) -> io::Result<()> {
        tracing::warn!(path = %self.path.join(name).display(), found = what, "removed a stray entry from the state folder");
        match nix::unistd::unlinkat(&self.dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the daemon's single-instance lock and writes this process's pid into it;
    /// `None` if another daemon holds it.
    pub fn lock(&self) -> io::Result<Option<nix::fcntl::Flock<File>>> {
        // The daemon's alone (0600): a user who could open it could hold it, and make the
        // next daemon believe another one runs.
        let file = self.open_file(LOCK, OFlag::O_RDWR, 0o600)?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                lock.set_len(0)?;
                writeln!(&*lock, "{}", std::process::id())?;
                Ok(Some(lock))
            }
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(e.into()),
        }
    }

    /// Opens the log for appending, rotating a large one first.
    pub fn open_log(&self) -> io::Result<File> {
        let large = nix::sys::stat::fstatat(&self.dir, LOG, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map(|st| st.st_size as u64 > ROTATE_AT)
            .unwrap_or(false);
        if large {
            let _ = nix::fcntl::renameat(&self.dir, LOG, &self.dir, "berth.log.1");
        }
        self.open_file(LOG, OFlag::O_WRONLY | OFlag::O_APPEND, 0o640)
    }

    /// Appends one line to the event record in one write, flushed to disk. A line torn by
    /// a crash does not swallow this one.
    pub fn append_line(&self, line: &[u8]) -> io::Result<()> {
        let mut f = self.open_file(EVENTS, OFlag::O_RDWR | OFlag::O_APPEND, 0o640)?;
        let mut out = Vec::with_capacity(line.len() + 2);
        let len = f.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            f.seek(SeekFrom::Start(len - 1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                out.push(b'\n');
            }
        }
        out.extend_from_slice(line);
        out.push(b'\n');
        f.write_all(&out)?;
        f.sync_data()
    }

    /// Records from byte `offset` on, and the offset after the last complete line.
    pub fn read_from(&self, offset: u64) -> (Vec<Record>, u64) {
        let opened = nix::fcntl::openat(
            &self.dir,
            EVENTS,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        );
        match opened {
            Ok(fd) => read_records(File::from(fd), offset),
            Err(_) => (Vec::new(), offset),
        }
    }

    /// Every readable record.
    pub fn read_all(&self) -> Vec<Record> {
        self.read_from(0).0
    }

    /// Binds the daemon's socket (replacing a stale one), for the folder's group.
    pub fn bind_socket(&self) -> io::Result<tokio::net::UnixListener> {
        match nix::unistd::unlinkat(&self.dir, SOCKET, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        // A socket is bound by path: make sure the path still leads to the folder held
        // open (only its owner may change what is in it).
        let held = nix::sys::stat::fstat(&self.dir)?;
        let named = nix::sys::stat::stat(&self.path)?;
        if (held.st_dev, held.st_ino) != (named.st_dev, named.st_ino) {
            return Err(io::Error::other(format!(
                "{} no longer leads to the state folder berth opened",
                self.path.display()
            )));
        }
        let listener = tokio::net::UnixListener::bind(self.path.join(SOCKET))?;
        nix::sys::stat::fchmodat(
            &self.dir,
            SOCKET,
            Mode::from_bits_truncate(0o660),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
        let _ = nix::unistd::fchownat(
            &self.dir,
            SOCKET,
            None,
            Some(self.group),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        Ok(listener)
    }

    /// Removes the socket (the daemon is stopping).
    pub fn remove_socket(&self) {
        let _ = nix::unistd::unlinkat(&self.dir, SOCKET, UnlinkatFlags::NoRemoveDir);
    }

    /// The folder's handle, for watching it.
    pub fn fd(&self) -> impl AsFd + '_ {
        &self.dir
    }
}

fn read_records(mut f: File, offset: u64) -> (Vec<Record>, u64) {
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return (Vec::new(), offset);
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return (Vec::new(), offset);
    }
    parse_records(&buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(dir: &Path) -> OwnedState {
        StateDir::new(dir)
            .open_owned(Gid::effective())
            .expect("opens")
    }

    #[test]
    fn a_planted_link_is_replaced_and_its_target_untouched() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let target = root.path().join("precious");
        std::fs::write(&target, b"keep me").unwrap();
        for name in [LOCK, EVENTS, LOG] {
            std::os::unix::fs::symlink(&target, state.join(name)).unwrap();
        }
        let s = owned(&state);
        assert!(s.lock().unwrap().is_some());
        s.append_line(b"{}").unwrap();
        s.open_log().unwrap().write_all(b"x\n").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        for (name, mode) in [(LOCK, 0o600), (EVENTS, 0o640), (LOG, 0o640)] {
            let meta = std::fs::symlink_metadata(state.join(name)).unwrap();
            assert!(meta.is_file(), "{name} is a plain file now");
            assert_eq!(meta.mode() & 0o777, mode, "{name}");
        }
    }

    #[test]
    fn a_hard_link_is_replaced_and_its_other_name_untouched() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let target = root.path().join("precious");
        std::fs::write(&target, b"keep me").unwrap();
        std::fs::hard_link(&target, state.join(EVENTS)).unwrap();
        owned(&state).append_line(b"{}").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        assert_eq!(std::fs::read(state.join(EVENTS)).unwrap(), b"{}\n");
    }

    #[test]
    fn a_folder_that_is_a_link_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", root.path().join("state")).unwrap();
        let err = StateDir::new(root.path().join("state"))
            .open_owned(Gid::effective())
            .unwrap_err();
        assert!(matches!(err, StateError::Open { .. }), "{err}");
    }

    #[test]
    fn the_folder_is_made_writable_by_its_owner_alone() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        let _ = owned(&state);
        assert_eq!(
            std::fs::metadata(&state).unwrap().mode() & 0o777,
            0o755,
            "others may look, not write"
        );
    }

    #[test]
    fn appends_survive_a_torn_line() {
        let root = tempfile::tempdir().unwrap();
        let s = owned(root.path());
        s.append_line(br#"{"at":1,"event":"daemon-stopped","pid":1}"#)
            .unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(root.path().join(EVENTS))
            .unwrap();
        f.write_all(b"{\"at\":5,\"event\":\"pha").unwrap();
        s.append_line(br#"{"at":2,"event":"daemon-stopped","pid":2}"#)
            .unwrap();
        let all = s.read_all();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].at, 2);
    }
}
