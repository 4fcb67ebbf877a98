//! Images named in a workspace: the `image:` of every Compose service and the `FROM` of every
//! Dockerfile, found by walking the folder.
//!
//! This module owns the entry point and what it returns; one file per concern does the work:
//! `walk` finds and reads the files within bounds, `compose` reads a Compose file's services,
//! `dockerfile` a Dockerfile's `FROM`s, and `interpolate` resolves the `${...}` variables
//! both write. Variables are resolved only from what the files themselves write
//! (`${VAR:-default}` in Compose, `ARG NAME=default` before the first `FROM`): berth's own
//! environment is not the project's, so it is never read. What cannot be resolved, parsed or
//! read is skipped with a note saying which file, which line and why; the images found are
//! de-duplicated by [`ImageRef`] equality and sorted by their canonical name.

mod compose;
mod dockerfile;
#[cfg(test)]
mod fixture;
mod interpolate;
mod walk;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::image::ImageRef;

use interpolate::Unresolved;
use walk::{Limits, read, shown, unread, walk};
pub use walk::{MAX_DEPTH, MAX_ENTRIES, MAX_FILE_SIZE};

/// How many characters of a file's text a note quotes (an image as written, a service's
/// name, a variable reference): enough to recognise it, and a note stays one line however
/// long the text is.
pub const MAX_QUOTED: usize = 100;

/// An image named in a workspace file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The image, normalised.
    pub image: ImageRef,
    /// The first file that named it (the workspace path joined with the file's path in it).
    pub file: PathBuf,
    /// The 1-based line of the `image:` value or the `FROM` instruction.
    pub line: Option<usize>,
}

/// `image (file:line)`, for logs and status output.
impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.image, self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(")")
    }
}

/// What [`discover`] found: the images, and what it skipped and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    /// The images, one per distinct [`ImageRef`], sorted by canonical name.
    pub images: Vec<Found>,
    /// One line per file or entry skipped, starting with the file (relative to the
    /// workspace) and, where known, the line.
    pub notes: Vec<String>,
}

/// Finds the images named by the Compose files and Dockerfiles of a workspace.
pub fn discover(workspace: &Path) -> Discovered {
    discover_within(
        workspace,
        Limits {
            depth: MAX_DEPTH,
            entries: MAX_ENTRIES,
            file_size: MAX_FILE_SIZE,
        },
    )
}

/// The kinds of file that name images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A Compose file or override.
    Compose,
    /// A Dockerfile or Containerfile.
    Dockerfile,
}

/// An image a file names, before the name is parsed.
#[derive(Debug, PartialEq, Eq)]
struct Mention {
    /// The 1-based line.
    line: usize,
    /// Where in the file: `service "app"`, `FROM`.
    place: String,
    /// The text as written.
    written: String,
    /// The text with its variables resolved, or why they cannot be.
    resolved: Result<String, Unresolved>,
}

/// Problems found in a file that parsed: (line, what is wrong).
type Problems = Vec<(usize, String)>;

/// A text as a note quotes it: its first [`MAX_QUOTED`] characters, then `…`.
fn quoted(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

/// [`discover`] with the given bounds.
fn discover_within(workspace: &Path, limits: Limits) -> Discovered {
    let mut notes = Vec::new();
    let files = walk(workspace, limits, &mut notes);
    let mut found = Vec::new();
    for (file, kind) in files {
        let shown = shown(workspace, &file);
        let text = match read(&file, limits.file_size) {
            Ok(text) => text,
            Err(e) => {
                notes.push(unread(&shown, &e));
                continue;
            }
        };
        let (images, file_notes) = images_in(kind, &text, &shown);
        notes.extend(file_notes);
        found.extend(images.into_iter().map(|(line, image)| Found {
            image,
            file: file.clone(),
            line: Some(line),
        }));
    }
    let mut seen = HashSet::new();
    found.retain(|f| seen.insert(f.image.clone()));
    found.sort_by_cached_key(|f| f.image.canonical());
    Discovered {
        images: found,
        notes,
    }
}

/// The images one file's text names (with their lines), and notes on what was skipped,
/// each starting with `shown` (how the file is named).
pub fn images_in(kind: Kind, text: &str, shown: &str) -> (Vec<(usize, ImageRef)>, Vec<String>) {
    let mut notes = Vec::new();
    let parsed = match kind {
        Kind::Dockerfile => dockerfile::mentions(text).map_err(|invalid| {
            let at = invalid.line.map(|l| format!(":{l}")).unwrap_or_default();
            format!(
                "{shown}{at}: not a valid Dockerfile ({}); its images were skipped",
                invalid.why
            )
        }),
        Kind::Compose => compose::mentions(text).map_err(|e| {
            format!(
                "{shown}:{}: not valid YAML ({}); its images were skipped",
                e.marker().line(),
                e.info()
            )
        }),
    };
    let (mentions, problems) = match parsed {
        Ok(parsed) => parsed,
        Err(note) => return (Vec::new(), vec![note]),
    };
    for (line, problem) in problems {
        notes.push(format!("{shown}:{line}: {problem}; skipped"));
    }
    let mut images = Vec::new();
    for m in mentions {
        let at = format!("{shown}:{}: {}", m.line, m.place);
        match m.resolved {
            Err(why) => notes.push(format!(
                "{at}: image {:?} skipped: {why}",
                quoted(&m.written)
            )),
            Ok(text) => match ImageRef::parse(&text) {
                Ok(image) => images.push((m.line, image)),
                Err(e) => notes.push(format!("{at}: {e}; skipped")),
            },
        }
    }
    (images, notes)
}

#[cfg(test)]
mod tests {
    use super::fixture::*;
    use super::*;

    #[test]
    fn duplicates_keep_the_first_file_and_results_are_sorted() {
        let compose = text(&[
            "services:",
            "  a:",
            "    image: ubuntu",
            "  b:",
            "    image: alpine",
        ]);
        let dockerfile = text(&[
            "FROM docker.io/library/ubuntu:latest",
            "FROM index.docker.io/library/alpine",
            "FROM busybox",
        ]);
        let dir = workspace(&[("compose.yaml", &compose), ("sub/Dockerfile", &dockerfile)]);
        let d = discover(dir.path());
        assert_eq!(
            found(&dir, &d),
            vec![
                at("docker.io/library/alpine:latest", "compose.yaml", 5),
                at("docker.io/library/busybox:latest", "sub/Dockerfile", 3),
                at("docker.io/library/ubuntu:latest", "compose.yaml", 3),
            ]
        );
    }

    #[test]
    fn found_displays_image_file_and_line() {
        let f = Found {
            image: ImageRef::parse("ubuntu").unwrap(),
            file: PathBuf::from("compose.yaml"),
            line: Some(3),
        };
        assert_eq!(
            f.to_string(),
            "docker.io/library/ubuntu:latest (compose.yaml:3)"
        );
    }

    #[test]
    fn long_images_are_quoted_short() {
        let image = format!("${{X:-{}}}", "a".repeat(5_000));
        let compose = format!("services:\n  s:\n    image: {image}\n");
        let (_, notes) = images_in(Kind::Compose, &compose, "compose.yaml");
        let expected = format!(
            "compose.yaml:3: service \"s\": image \"${{X:-{}…\" skipped: it resolves to more \
             than 2048 bytes, longer than any image reference",
            "a".repeat(MAX_QUOTED - 5)
        );
        assert_eq!(notes, vec![expected]);
    }

    /// The file that made `berth pull` abort: an image nesting `${A:-` 60,000 deep. It is
    /// noted with its file, line and the bound, and quoted short (the steps it takes are
    /// counted in `interpolate`'s tests).
    #[test]
    fn an_image_nested_sixty_thousand_deep_is_noted() {
        let deep = format!("{}x{}", "${A:-".repeat(60_000), "}".repeat(60_000));
        let compose = format!("services:\n  app:\n    image: '{deep}'\n");
        let dockerfile = format!("FROM alpine\nFROM {deep}\n");
        let why = "its ${...} nest deeper than 32 levels, more than berth resolves; write it \
                   with fewer nested defaults";
        let quoted = "${A:-".repeat(MAX_QUOTED / 5);
        let (images, notes) = images_in(Kind::Compose, &compose, "compose.yaml");
        assert!(images.is_empty());
        assert_eq!(
            notes,
            [format!(
                "compose.yaml:3: service \"app\": image \"{quoted}…\" skipped: {why}"
            )]
        );
        let (images, notes) = images_in(Kind::Dockerfile, &dockerfile, "Dockerfile");
        assert_eq!(images.len(), 1);
        assert_eq!(
            notes,
            [format!(
                "Dockerfile:2: FROM: image \"{quoted}…\" skipped: {why}"
            )]
        );
    }
}
