//! Helpers for the discover tests: a workspace of files, and what was found in it.

use std::fs;
use std::path::PathBuf;

use super::Discovered;
use super::walk::shown;

/// Writes files (path, content) under a fresh temporary folder.
pub(super) fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

/// A file's text from its lines, so that line numbers in the tests are easy to read.
pub(super) fn text(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The canonical name, file (relative to the workspace) and line of each image found.
pub(super) fn found(
    dir: &tempfile::TempDir,
    d: &Discovered,
) -> Vec<(String, String, Option<usize>)> {
    d.images
        .iter()
        .map(|f| (f.image.canonical(), shown(dir.path(), &f.file), f.line))
        .collect()
}

/// An expected entry of [`found`].
pub(super) fn at(image: &str, file: &str, line: usize) -> (String, String, Option<usize>) {
    let file = file.split('/').collect::<PathBuf>();
    (image.into(), file.display().to_string(), Some(line))
}

/// The canonical names of the images found.
pub(super) fn names(d: &Discovered) -> Vec<String> {
    d.images.iter().map(|f| f.image.canonical()).collect()
}
