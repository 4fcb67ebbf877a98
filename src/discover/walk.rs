//! The bounded walk through a workspace: which folders are entered, which files name images
//! (their [`Kind`]), and how a file is read. The walk follows no symbolic link, skips
//! dependency, build and hidden folders (except `.devcontainer`), goes at most [`MAX_DEPTH`]
//! levels down, looks at no more than [`MAX_ENTRIES`] files and folders, and reads no file over
//! [`MAX_FILE_SIZE`]; what it stops at or cannot read becomes a note. Files are read through
//! [`crate::bounded`], which never waits: a FIFO, a device or a socket with a Compose file's
//! or a Dockerfile's name (or one put in a file's place after the folder was listed) is
//! noted and skipped, never opened for reading.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use crate::bounded::{self, FileError, Limit, Links};

use super::Kind;

/// How many folder levels below the workspace a file may be (`a/b/c/d/e/Dockerfile` is 6).
pub const MAX_DEPTH: usize = 6;
/// How many files and folders the walk looks at before it stops.
pub const MAX_ENTRIES: usize = 20_000;
/// The largest file that is read: [`Limit::WORKSPACE_FILE`].
pub const MAX_FILE_SIZE: u64 = Limit::WORKSPACE_FILE.0;

/// Folders never entered: dependencies, build output, virtual environments.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    "vendor",
    ".venv",
    "dist",
    "build",
];
/// The one hidden folder that is entered.
const KEPT_HIDDEN_DIR: &str = ".devcontainer";

/// The bounds of a walk.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// See [`MAX_DEPTH`].
    pub(super) depth: usize,
    /// See [`MAX_ENTRIES`].
    pub(super) entries: usize,
    /// See [`MAX_FILE_SIZE`].
    pub(super) file_size: u64,
}
/// A path as notes show it: relative to the workspace.
pub(super) fn shown(workspace: &Path, path: &Path) -> String {
    path.strip_prefix(workspace)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The Compose files and Dockerfiles of a workspace, breadth first, each folder in name order.
pub(super) fn walk(
    workspace: &Path,
    limits: Limits,
    notes: &mut Vec<String>,
) -> Vec<(PathBuf, Kind)> {
    let mut files = Vec::new();
    let mut queue = VecDeque::from([(workspace.to_path_buf(), 0usize)]);
    let mut visited = 0usize;
    while let Some((dir, depth)) = queue.pop_front() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                let shown = match shown(workspace, &dir) {
                    s if s.is_empty() => dir.display().to_string(),
                    s => s,
                };
                notes.push(format!("{shown}: cannot list the folder ({e}); skipped"));
                continue;
            }
        };
        let mut entries: Vec<fs::DirEntry> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            visited += 1;
            if visited > limits.entries {
                notes.push(format!(
                    "the search stopped after {} files and folders; the rest of the workspace \
                     was not looked at",
                    limits.entries
                ));
                return files;
            }
            // `file_type` does not follow symbolic links, so links are neither files nor folders.
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if file_type.is_dir() {
                if depth + 1 < limits.depth && enters(name) {
                    queue.push_back((entry.path(), depth + 1));
                }
            } else if !file_type.is_symlink()
                && let Some(kind) = kind_of(name)
            {
                // Regular files, and FIFOs, devices and sockets by those names, which
                // `read` refuses with a note.
                files.push((entry.path(), kind));
            }
        }
    }
    files
}

/// Whether the walk enters a folder of this name.
fn enters(name: &str) -> bool {
    if name == KEPT_HIDDEN_DIR {
        return true;
    }
    !name.starts_with('.') && !SKIPPED_DIRS.contains(&name)
}

/// Which kind of file a name is, if it names images.
fn kind_of(name: &str) -> Option<Kind> {
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"));
    if let Some(stem) = stem
        && (stem == "compose"
            || stem == "docker-compose"
            || stem.starts_with("compose.")
            || stem.starts_with("docker-compose."))
    {
        return Some(Kind::Compose);
    }
    if name.ends_with(".dockerignore") {
        return None;
    }
    if name == "Dockerfile"
        || name == "dockerfile"
        || name == "Containerfile"
        || name.starts_with("Dockerfile.")
        || name.ends_with(".Dockerfile")
        || name.ends_with(".dockerfile")
    {
        return Some(Kind::Dockerfile);
    }
    None
}

/// Reads a regular file of at most `max` bytes as text, without waiting (see
/// [`bounded::read`]) and without following a link (the walk follows none).
pub(super) fn read(path: &Path, max: u64) -> Result<String, FileError> {
    let bytes = bounded::read(path, Limit(max), Links::Refuse)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.trim_start_matches('\u{feff}').to_string())
}

/// The note for a file [`read`] refused, which `shown` names.
pub(super) fn unread(shown: &str, e: &FileError) -> String {
    match e {
        FileError::TooLarge { limit, .. } => {
            format!("{shown}: larger than {} KiB; skipped", limit / 1024)
        }
        FileError::NotRegular { kind, .. } => {
            format!("{shown}: is {kind}, not a regular file; skipped")
        }
        FileError::Missing { .. } => {
            format!("{shown}: was removed while the workspace was searched; skipped")
        }
        FileError::Io { cause, .. } => format!("{shown}: cannot be read ({cause}); skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::{discover, discover_within};
    use super::*;

    #[cfg(unix)]
    #[test]
    fn skipped_folders_and_symlinks() {
        let dir = workspace(&[
            (
                ".devcontainer/compose.yaml",
                "services:\n  dev:\n    image: ghcr.io/acme/dev:1\n",
            ),
            (
                ".devcontainer/Dockerfile",
                "FROM mcr.microsoft.com/devcontainers/base:debian\n",
            ),
            ("node_modules/pkg/Dockerfile", "FROM skipped/node-modules\n"),
            ("target/Dockerfile", "FROM skipped/target\n"),
            ("vendor/Dockerfile", "FROM skipped/vendor\n"),
            (".venv/Dockerfile", "FROM skipped/venv\n"),
            ("dist/Dockerfile", "FROM skipped/dist\n"),
            ("build/Dockerfile", "FROM skipped/build\n"),
            (".git/Dockerfile", "FROM skipped/git\n"),
            (".github/Dockerfile", "FROM skipped/hidden\n"),
            ("services/api/build-tools/Dockerfile", "FROM kept/nested\n"),
        ]);
        let outside = workspace(&[("Dockerfile", "FROM skipped/symlinked\n")]);
        std::os::unix::fs::symlink(outside.path(), dir.path().join("linked")).unwrap();
        let linked_file = outside.path().join("Dockerfile");
        std::os::unix::fs::symlink(linked_file, dir.path().join("Dockerfile")).unwrap();
        let d = discover(dir.path());
        assert_eq!(
            names(&d),
            vec![
                "docker.io/kept/nested:latest",
                "ghcr.io/acme/dev:1",
                "mcr.microsoft.com/devcontainers/base:debian",
            ]
        );
        assert!(d.notes.is_empty(), "{:?}", d.notes);
    }

    #[test]
    fn depth_limit() {
        let dir = workspace(&[
            ("a/b/c/d/e/Dockerfile", "FROM at/depth-six\n"),
            ("a/b/c/d/e/f/Dockerfile", "FROM at/depth-seven\n"),
        ]);
        let d = discover(dir.path());
        assert_eq!(names(&d), vec!["docker.io/at/depth-six:latest"]);
        assert!(d.notes.is_empty(), "{:?}", d.notes);
    }

    #[test]
    fn entry_limit_is_noted() {
        let dir = workspace(&[
            ("a/Dockerfile", "FROM first\n"),
            ("b/Dockerfile", "FROM second\n"),
            ("c/Dockerfile", "FROM third\n"),
        ]);
        let limits = Limits {
            depth: MAX_DEPTH,
            entries: 5,
            file_size: MAX_FILE_SIZE,
        };
        // a, b, c, then a/Dockerfile and b/Dockerfile: five entries.
        let d = discover_within(dir.path(), limits);
        assert_eq!(
            names(&d),
            vec![
                "docker.io/library/first:latest",
                "docker.io/library/second:latest"
            ]
        );
        assert_eq!(
            d.notes,
            vec![
                "the search stopped after 5 files and folders; the rest of the workspace was not \
                 looked at"
            ]
        );
    }

    #[test]
    fn files_over_one_mib_are_noted() {
        let big = format!("FROM big\n{}", "# padding\n".repeat(110_000));
        let dir = workspace(&[("Dockerfile", &big), ("sub/Dockerfile", "FROM small\n")]);
        let d = discover(dir.path());
        assert_eq!(names(&d), vec!["docker.io/library/small:latest"]);
        assert_eq!(d.notes, vec!["Dockerfile: larger than 1024 KiB; skipped"]);
    }

    #[test]
    fn missing_workspace_is_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let d = discover(&dir.path().join("gone"));
        assert!(d.images.is_empty());
        assert_eq!(d.notes.len(), 1);
        assert!(
            d.notes[0].contains("cannot list the folder"),
            "{}",
            d.notes[0]
        );
    }

    #[test]
    fn fifos_are_noted_not_waited_on() {
        let dir = workspace(&[("sub/Dockerfile", "FROM kept\n")]);
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
        for name in ["compose.yaml", "Dockerfile"] {
            nix::unistd::mkfifo(&dir.path().join(name), mode).unwrap();
        }
        // No one ever writes to them: a blocking open or read would wait here for ever.
        let d = discover(dir.path());
        assert_eq!(names(&d), vec!["docker.io/library/kept:latest"]);
        assert_eq!(
            d.notes,
            vec![
                "Dockerfile: is a FIFO, not a regular file; skipped",
                "compose.yaml: is a FIFO, not a regular file; skipped",
            ]
        );
    }

    #[test]
    fn files_that_change_after_the_listing_are_noted() {
        let dir = workspace(&[]);
        let shown_as = |path: &Path| unread("Dockerfile", &read(path, MAX_FILE_SIZE).unwrap_err());
        let fifo = dir.path().join("fifo");
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
        nix::unistd::mkfifo(&fifo, mode).unwrap();
        assert_eq!(
            shown_as(&fifo),
            "Dockerfile: is a FIFO, not a regular file; skipped"
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        assert_eq!(
            shown_as(&link),
            "Dockerfile: is a symbolic link, not a regular file; skipped"
        );
        assert_eq!(
            shown_as(&dir.path().join("gone")),
            "Dockerfile: was removed while the workspace was searched; skipped"
        );
    }
}
