//! The one routine that writes whole files.
//!
//! Every file berth writes for a user (their Docker config, its record of the entries it
//! manages) goes through [`write`](fn@write): a temporary file created in the target's own folder
//! with the final mode, written, flushed to disk, renamed over the target, and the folder
//! flushed. A reader sees the old file or the new one, never half of either; a crash
//! leaves at most a stray temporary file, which is removed on any error berth sees. A
//! symlinked target is written where the link points, and nothing is written when the
//! content would not change.
//!
//! These routines never change a file's owner: they run with the privileges of the user
//! the file belongs to ([`crate::privilege::as_user`]), so what they create is that
//! user's, and the kernel refuses what that user could not do.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::Uid;

/// What [`write`](fn@write) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The content was new or different and was written.
    Written,
    /// The file already held exactly this content; at most its mode or owner was fixed.
    Unchanged,
    /// Another writer changed the file since the caller read it: nothing was written.
    Changed,
    /// The content was written, but the file it replaced was not the one the caller read:
    /// another writer's, given here. Apply the change again onto it, expecting the file to
    /// hold what was just written, so that nothing of theirs is lost.
    Displaced(Vec<u8>),
}

/// Writes `contents` to `path` atomically with permission bits `mode` (see the module's
/// description). A file that already holds `contents` is left as it is, its mode fixed;
/// one that holds them but belongs to someone else is replaced, so that it becomes the
/// writer's.
pub fn write(path: &Path, contents: &[u8], mode: u32) -> io::Result<Outcome> {
    write_over(path, contents, mode, None)
}

/// [`write`](fn@write) for a file that writers berth cannot lock out (the Docker CLI) may replace at
/// any moment: `read` is what the caller based `contents` on (empty for a file that did
/// not exist). The new file is swapped with the old one in one step (`renameat2` with
/// `RENAME_EXCHANGE`), and what was swapped out is compared with `read`: when another
/// writer came in between, their file is handed back ([`Outcome::Displaced`]) for the
/// caller to apply its change onto, rather than lost. Where the file system cannot swap,
/// the file is compared just before a plain rename ([`Outcome::Changed`] when it moved).
pub fn write_over(
    path: &Path,
    contents: &[u8],
    mode: u32,
    read: Option<&[u8]>,
) -> io::Result<Outcome> {
    let target = resolve_symlinks(path)?;
    let holds = |target: &Path, expected: &[u8]| -> io::Result<bool> {
        Ok(match read_bounded(target)? {
            Some(now) => now == expected,
            None => expected.is_empty(),
        })
    };
    if let Some(read) = read
        && !holds(&target, read)?
    {
        return Ok(Outcome::Changed);
    }
    if let Some(existing) = read_bounded(&target)?
        && existing == contents
        && fix_metadata(&target, mode)?
    {
        return Ok(Outcome::Unchanged);
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let (tmp_path, file) = create_temp(dir, &name.to_string_lossy(), mode)?;
    let result = (|| {
        let mut file = file;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        let outcome = match read {
            None => {
                fs::rename(&tmp_path, &target)?;
                Outcome::Written
            }
            Some(read) => replace_checked(&tmp_path, &target, read, &holds)?,
        };
        if matches!(outcome, Outcome::Written | Outcome::Displaced(_)) {
            sync_dir(dir)?;
        }
        Ok(outcome)
    })();
    let _ = fs::remove_file(&tmp_path); // after a swap it holds the old file
    result
}

/// Puts `tmp` in `target`'s place, telling whether the file replaced was `read`.
fn replace_checked(
    tmp: &Path,
    target: &Path,
    read: &[u8],
    holds: &dyn Fn(&Path, &[u8]) -> io::Result<bool>,
) -> io::Result<Outcome> {
    let swapped = if read.is_empty() {
        // There was no file: create it only if nobody did meanwhile.
        renameat2(tmp, target, RENAME_NOREPLACE)
    } else {
        renameat2(tmp, target, RENAME_EXCHANGE)
    };
    match swapped {
        Ok(()) if read.is_empty() => Ok(Outcome::Written),
        Ok(()) => {
            let displaced = read_bounded(tmp)?.unwrap_or_default();
            if displaced == read {
                Ok(Outcome::Written)
            } else {
                Ok(Outcome::Displaced(displaced))
            }
        }
        Err(nix::errno::Errno::EEXIST) => Ok(Outcome::Changed),
        Err(nix::errno::Errno::ENOENT) if !read.is_empty() => {
            // The file went away meanwhile: another writer's doing; start again.
            Ok(Outcome::Changed)
        }
        Err(
            nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS | nix::errno::Errno::EOPNOTSUPP,
        ) => {
            // A file system that cannot swap: compare, then rename.
            if !holds(target, read)? {
                return Ok(Outcome::Changed);
            }
            fs::rename(tmp, target)?;
            Ok(Outcome::Written)
        }
        Err(e) => Err(e.into()),
    }
}

/// `renameat2(2)`'s flags (linux/fs.h).
const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;

/// `renameat2(2)` on two paths, by its system call: nix offers it only with glibc, and
/// berth is also built against musl.
fn renameat2(from: &Path, to: &Path, flags: u32) -> nix::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| nix::errno::Errno::EINVAL)
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths, relative to the working folder.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_renameat2,
            nix::libc::AT_FDCWD,
            from.as_ptr(),
            nix::libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// Creates a folder (and missing parents) with `mode`. An existing folder is left as it is.
pub fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

/// Removes the temporary files that writers of `name` in `dir` left behind when they were
/// killed: those whose writing process no longer exists. Call it under the lock that
/// keeps writers in turn; a file that cannot be removed is left (the next run tries
/// again).
pub fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.berth-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if gone && fs::remove_file(entry.path()).is_ok() {
            tracing::info!(path = %entry.path().display(), "removed a temporary file a killed writer left");
        }
    }
}

/// Follows a chain of symlinks to the file that is really written. A dangling link
/// resolves to where it points, so the write creates that file.
pub fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut cur = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&cur)?;
                cur = match cur.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(cur),
        }
    }
    Err(io::Error::other(format!(
        "{} is a loop of symbolic links",
        path.display()
    )))
}

fn create_temp(dir: &Path, name: &str, mode: u32) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let tmp = dir.join(format!(
            ".{name}.berth-{}-{:08x}.tmp",
            std::process::id(),
            fastrand::u32(..)
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => {
                // The process umask may have cleared bits of `mode`.
                f.set_permissions(fs::Permissions::from_mode(mode))?;
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary name")))
}

/// Gives an existing file of the writer's the mode it should have, without rewriting it.
/// `false` when the file belongs to someone else (only a rewrite makes it the writer's).
pub fn fix_metadata(path: &Path, mode: u32) -> io::Result<bool> {
    let meta = fs::metadata(path)?;
    if meta.uid() != Uid::effective().as_raw() {
        return Ok(false);
    }
    if meta.mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(true)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NONBLOCK)
        .open(dir)?
        .sync_all()
}

/// A file being replaced, read as [`crate::bounded`] reads what someone else controls (it
/// may be anything the user put there); `None` when there is none.
fn read_bounded(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use crate::bounded::{self, Limit, Links};
    bounded::read_if_exists(path, Limit::CONFIG, Links::Follow)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private() -> u32 {
        0o600
    }

    #[test]
    fn writes_replaces_and_skips_identical_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        assert_eq!(write(&p, b"one", private()).unwrap(), Outcome::Written);
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let inode = fs::metadata(&p).unwrap().ino();
        assert_eq!(write(&p, b"one", private()).unwrap(), Outcome::Unchanged);
        assert_eq!(
            fs::metadata(&p).unwrap().ino(),
            inode,
            "no rewrite when unchanged"
        );
        assert_eq!(write(&p, b"two", private()).unwrap(), Outcome::Written);
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_file_another_writer_replaced_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        fs::write(&p, b"theirs").unwrap();
        assert_eq!(
            write_over(&p, b"mine", 0o600, Some(b"what I read")).unwrap(),
            Outcome::Changed
        );
        assert_eq!(fs::read(&p).unwrap(), b"theirs");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary");
        assert_eq!(
            write_over(&p, b"mine", 0o600, Some(b"theirs")).unwrap(),
            Outcome::Written
        );
        assert_eq!(fs::read(&p).unwrap(), b"mine");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary");
        // A file that did not exist, and still does not.
        let q = dir.path().join("new.json");
        assert_eq!(
            write_over(&q, b"x", 0o600, Some(b"")).unwrap(),
            Outcome::Written
        );
        assert_eq!(fs::read(&q).unwrap(), b"x");
    }

    #[test]
    fn unchanged_content_still_gets_its_mode_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"x").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(write(&p, b"x", private()).unwrap(), Outcome::Unchanged);
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn symlinked_target_is_written_where_it_points() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real").join("config.json");
        fs::create_dir(dir.path().join("real")).unwrap();
        fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real/config.json", &link).unwrap();
        write(&link, b"new", private()).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }

    #[test]
    fn a_failed_write_leaves_the_target_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub");
        fs::create_dir(&target).unwrap(); // renaming a file over a folder fails
        fs::write(target.join("keep"), b"k").unwrap();
        assert!(write(&target, b"x", private()).is_err());
        assert_eq!(fs::read(target.join("keep")).unwrap(), b"k");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("sub")]);
    }

    #[test]
    fn temporary_files_of_gone_writers_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that does not exist (beyond pid_max) and one that does: this process.
        let gone = dir
            .path()
            .join(".config.json.berth-2147483000-0000abcd.tmp");
        let live = dir.path().join(format!(
            ".config.json.berth-{}-0000abcd.tmp",
            std::process::id()
        ));
        let other = dir.path().join(".other.json.berth-2147483000-0000abcd.tmp");
        for p in [&gone, &live, &other] {
            fs::write(p, b"x").unwrap();
        }
        remove_stale_temps(dir.path(), "config.json");
        assert!(!gone.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn ensure_dir_creates_private_folders() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b");
        ensure_dir(&d, 0o700).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
    }
}
