//! Reading files and taking locks that someone else controls, with bounds.
//!
//! Much of what berth reads belongs to someone else: the remote user's Docker config and
//! berth's record beside it, a workspace's compose files and Dockerfiles, Codespaces'
//! secrets files. Any of them may be a FIFO (which blocks an `open` or a `read` until
//! someone writes), a device (`/dev/zero` never ends), a huge file, or a link to one of
//! those; a lock file in their folder may be held by them forever. berth serves everyone
//! in the container from one daemon, so none of that may stop it.
//!
//! Every such file is opened here without blocking (`O_NONBLOCK`, which also keeps a FIFO's
//! `open` from waiting for a writer), optionally without following a final link, checked
//! to be a regular file of at most the size its reader accepts, and read with that limit
//! (a file that grows while it is read is cut off, not followed). A lock is tried without
//! blocking until a deadline, then given up with an error that says who held it for how
//! long; the caller retries later. These are blocking calls, made in the thread that acts
//! as the file's user ([`crate::privilege`]), never on the daemon's runtime.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How much of a file a reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub u64);

impl Limit {
    /// A Docker config, berth's record beside it, a secrets file: 4 MiB is far above any
    /// real one (a config with a thousand registries is about 200 KB).
    pub const CONFIG: Limit = Limit(4 * 1024 * 1024);
    /// One workspace file berth reads for image names (a compose file, a Dockerfile).
    pub const WORKSPACE_FILE: Limit = Limit(1024 * 1024);
}

/// Whether the last component of a path may be a symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Follow it (as the file's own user, whose rights the kernel checks).
    Follow,
    /// Refuse it.
    Refuse,
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// There is no such file.
    #[error("{} does not exist", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// It is not a regular file.
    #[error("{} is {kind}, not a regular file; berth does not read it", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is ("a FIFO", "a device", ...).
        kind: &'static str,
    },
    /// It is larger than its reader accepts.
    #[error(
        "{} is larger than {} bytes (berth reads at most that much of it); not read",
        path.display(),
        limit
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Opening or reading it failed.
    #[error("cannot read {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
}

impl FileError {
    /// Whether the file simply does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, FileError::Missing { .. })
    }
}

/// Reads a whole regular file of at most `limit` bytes (see the module's description).
pub fn read(path: &Path, limit: Limit, links: Links) -> Result<Vec<u8>, FileError> {
    let mut file = open(path, links)?;
    read_open(&mut file, path, limit)
}

/// Reads a regular file, or `None` when there is none.
pub fn read_if_exists(
    path: &Path,
    limit: Limit,
    links: Links,
) -> Result<Option<Vec<u8>>, FileError> {
    match read(path, limit, links) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens a file for reading without blocking, and checks that it is a regular file.
pub fn open(path: &Path, links: Links) -> Result<File, FileError> {
    let mut flags = libc_flags::NONBLOCK | libc_flags::NOCTTY;
    if links == Links::Refuse {
        flags |= libc_flags::NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|cause| io_error(path, cause))?;
    check_regular(&file, path)?;
    Ok(file)
}

/// Reads an open regular file (from its current offset) with `limit`.
pub fn read_open(file: &mut File, path: &Path, limit: Limit) -> Result<Vec<u8>, FileError> {
    let too_large = || FileError::TooLarge {
        path: path.to_path_buf(),
        limit: limit.0,
    };
    let size = file
        .metadata()
        .map_err(|cause| io_error(path, cause))?
        .len();
    if size > limit.0 {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit.0.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|cause| io_error(path, cause))?;
    if bytes.len() as u64 > limit.0 {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Fails unless `file` is a regular file.
pub fn check_regular(file: &File, path: &Path) -> Result<(), FileError> {
    let kind = file
        .metadata()
        .map_err(|cause| io_error(path, cause))?
        .file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a folder"
    } else {
        "not a file"
    };
    Err(FileError::NotRegular {
        path: path.to_path_buf(),
        kind: what,
    })
}

fn io_error(path: &Path, cause: io::Error) -> FileError {
    if cause.kind() == io::ErrorKind::NotFound {
        FileError::Missing {
            path: path.to_path_buf(),
        }
    } else if cause.raw_os_error() == Some(nix::libc::ELOOP) {
        FileError::NotRegular {
            path: path.to_path_buf(),
            kind: "a symbolic link",
        }
    } else {
        FileError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
}

mod libc_flags {
    pub const NONBLOCK: i32 = nix::libc::O_NONBLOCK;
    pub const NOCTTY: i32 = nix::libc::O_NOCTTY;
    pub const NOFOLLOW: i32 = nix::libc::O_NOFOLLOW;
}

/// A lock someone else held past the deadline.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is locked by another process, still after {:.1} s; berth tries again later",
    path.display(),
    waited.as_secs_f64()
)]
pub struct LockHeld {
    /// The lock file.
    pub path: PathBuf,
    /// How long berth tried.
    pub waited: Duration,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone held it past the deadline.
    #[error(transparent)]
    Held(#[from] LockHeld),
    /// The lock file cannot be opened or locked.
    #[error("cannot lock {}: {cause}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
}

/// Takes an exclusive `flock` on `file` (the lock file at `path`), trying without
/// blocking, with a growing pause between tries (2 ms to 100 ms), until `bound` has passed.
/// A blocking `flock` would wait for as long as the holder wants.
pub fn lock(
    file: File,
    path: &Path,
    bound: Duration,
) -> Result<nix::fcntl::Flock<File>, LockError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    let mut file = file;
    loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((back, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR)) => {
                file = back;
            }
            Err((_, e)) => {
                return Err(LockError::Io {
                    path: path.to_path_buf(),
                    cause: e.into(),
                });
            }
        }
        let waited = started.elapsed();
        if waited >= bound {
            return Err(LockHeld {
                path: path.to_path_buf(),
                waited,
            }
            .into());
        }
        std::thread::sleep(pause.min(bound - waited));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read(&fifo, Limit::CONFIG, Links::Follow).unwrap_err();
        assert!(
            matches!(err, FileError::NotRegular { kind: "a FIFO", .. }),
            "{err}"
        );
    }

    #[test]
    fn a_link_to_a_device_is_refused_and_a_link_refused_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read(&link, Limit::CONFIG, Links::Follow).unwrap_err();
        assert!(
            matches!(
                err,
                FileError::NotRegular {
                    kind: "a device",
                    ..
                }
            ),
            "{err}"
        );
        let err = read(&link, Limit::CONFIG, Links::Refuse).unwrap_err();
        assert!(
            matches!(
                err,
                FileError::NotRegular {
                    kind: "a symbolic link",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused_and_one_at_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, vec![b'x'; 11]).unwrap();
        let err = read(&file, Limit(10), Links::Refuse).unwrap_err();
        assert!(
            matches!(err, FileError::TooLarge { limit: 10, .. }),
            "{err}"
        );
        assert_eq!(read(&file, Limit(11), Links::Refuse).unwrap().len(), 11);
        assert!(
            read_if_exists(&dir.path().join("none"), Limit(1), Links::Refuse)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_held_lock_is_given_up_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let holder = nix::fcntl::Flock::lock(
            File::create(&path).unwrap(),
            nix::fcntl::FlockArg::LockExclusive,
        )
        .unwrap();
        let err = lock(File::open(&path).unwrap(), &path, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, LockError::Held(_)), "{err}");
        drop(holder);
        assert!(lock(File::open(&path).unwrap(), &path, Duration::from_millis(50)).is_ok());
    }
}
