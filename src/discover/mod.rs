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
//!
//! Nothing a workspace holds can make discovery wait, or take time or memory beyond linear
//! in what it reads: each file is bounded where it is read (see `walk`, `compose`,
//! `dockerfile` and `interpolate`), and what is kept is bounded here: at most
//! [`MAX_IMAGES`] images, [`MAX_NOTES`] notes, and [`MAX_QUOTED`] characters of a file's
//! text quoted in a note.

mod compose;
mod dockerfile;
#[cfg(test)]
mod fixture;
mod interpolate;
mod walk;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::image::ImageRef;

use interpolate::Unresolved;
use walk::{Limits, read, shown, unread, walk};
pub use walk::{MAX_DEPTH, MAX_ENTRIES, MAX_FILE_SIZE};

/// The most images kept from one workspace, and from one file in it; the rest are noted
/// and left out. Each is pulled: a large monorepo names a few hundred; past a thousand, a
/// workspace is more likely a generated or hostile one, whose pulls would fill the queue.
pub const MAX_IMAGES: usize = 1_000;

/// The most notes kept from one workspace, and from one file in it; one last note counts
/// the rest. Each note is a line of a hook's output or the log: a hundred already say all
/// a reader can act on.
pub const MAX_NOTES: usize = 100;

/// How many characters of a file's text a note quotes (an image as written, a service's
/// name, a variable reference): enough to recognise it, and a note stays one line however
/// long the text is.
pub const MAX_QUOTED: usize = 100;

/// How many characters of a parser's message a note says: saphyr's and parse-dockerfile's
/// messages are a few dozen characters, but may quote the file (a heredoc's delimiter, an
/// unknown instruction), as long as it is.
const MAX_PARSER_MESSAGE: usize = 4 * MAX_QUOTED;

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

/// Notes, at most [`MAX_NOTES`]; the rest are only counted.
#[derive(Default)]
struct Notes {
    /// The notes kept.
    kept: Vec<String>,
    /// How many were left out.
    left_out: usize,
}

impl Notes {
    /// Keeps a note, unless [`MAX_NOTES`] are kept already.
    fn push(&mut self, note: String) {
        if self.kept.len() < MAX_NOTES {
            self.kept.push(note);
        } else {
            self.left_out += 1;
        }
    }

    /// The notes kept, and one that counts those left out (`about` says whose).
    fn into_vec(mut self, about: &str) -> Vec<String> {
        if self.left_out > 0 {
            self.kept.push(format!(
                "{about}{} more notes left out (berth keeps {MAX_NOTES})",
                self.left_out
            ));
        }
        self.kept
    }
}

/// A text as a note quotes it with `{:?}` (which escapes it): its first [`MAX_QUOTED`]
/// characters, then `…`.
fn quoted(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

/// Text as a note says it as it is (a name, a parser's message, which may quote the file):
/// on one line, its control characters escaped, and its first `max` characters, then `…`.
fn plain(mut chars: impl Iterator<Item = char>, max: usize) -> String {
    let mut text = String::new();
    for c in chars.by_ref().take(max) {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    if chars.next().is_some() {
        text.push('…');
    }
    text
}

/// [`discover`] with the given bounds.
fn discover_within(workspace: &Path, limits: Limits) -> Discovered {
    let mut walk_notes = Vec::new();
    let files = walk(workspace, limits, &mut walk_notes);
    let mut notes = Notes::default();
    walk_notes.into_iter().for_each(|n| notes.push(n));
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut images_left_out = false;
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
        file_notes.into_iter().for_each(|n| notes.push(n));
        for (line, image) in images {
            if seen.contains(&image) {
                continue;
            }
            if seen.len() == MAX_IMAGES {
                if !std::mem::replace(&mut images_left_out, true) {
                    notes.push(format!(
                        "{shown}:{line}: the workspace names more than {MAX_IMAGES} images; \
                         this one and the rest were left out (list the images to pre-pull in \
                         the images option instead)"
                    ));
                }
                continue;
            }
            seen.insert(image.clone());
            found.push(Found {
                image,
                file: file.clone(),
                line: Some(line),
            });
        }
    }
    found.sort_by_cached_key(|f| f.image.canonical());
    Discovered {
        images: found,
        notes: notes.into_vec("the workspace: "),
    }
}

/// The images one file's text names (with their lines, at most [`MAX_IMAGES`]), and notes
/// on what was skipped (at most [`MAX_NOTES`], and one that counts the rest), each starting
/// with `shown` (how the file is named).
pub fn images_in(kind: Kind, text: &str, shown: &str) -> (Vec<(usize, ImageRef)>, Vec<String>) {
    let mut notes = Notes::default();
    let parsed = match kind {
        Kind::Dockerfile => dockerfile::mentions(text).map_err(|invalid| {
            let at = invalid.line.map(|l| format!(":{l}")).unwrap_or_default();
            format!(
                "{shown}{at}: not a valid Dockerfile ({}); its images were skipped",
                plain(invalid.why.chars(), MAX_PARSER_MESSAGE)
            )
        }),
        Kind::Compose => compose::mentions(text).map_err(|e| {
            format!(
                "{shown}:{}: not valid YAML ({}); its images were skipped",
                e.marker().line(),
                plain(e.info().chars(), MAX_PARSER_MESSAGE)
            )
        }),
    };
    let (mentions, problems) = match parsed {
        Ok(parsed) => parsed,
        Err(note) => return (Vec::new(), vec![note]),
    };
    let total = mentions.len();
    if total > MAX_IMAGES {
        notes.push(format!(
            "{shown}: names {total} images, more than berth keeps from one file \
             ({MAX_IMAGES}); those after the first {MAX_IMAGES} were skipped (list the \
             images to pre-pull in the images option instead)"
        ));
    }
    for (line, problem) in problems {
        notes.push(format!("{shown}:{line}: {problem}; skipped"));
    }
    let mut images = Vec::new();
    for m in mentions.into_iter().take(MAX_IMAGES) {
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
    (images, notes.into_vec(&format!("{shown}: ")))
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
    fn images_kept_are_bounded_per_file_and_per_workspace() {
        let compose = |from: usize, to: usize| {
            let services: String = (from..to)
                .map(|i| format!("  s{i}:\n    image: ghcr.io/acme/s{i}:1\n"))
                .collect();
            format!("services:\n{services}")
        };
        let (images, notes) = images_in(Kind::Compose, &compose(0, 1_500), "compose.yaml");
        assert_eq!(images.len(), MAX_IMAGES);
        assert_eq!(
            notes,
            vec![
                "compose.yaml: names 1500 images, more than berth keeps from one file (1000); \
                 those after the first 1000 were skipped (list the images to pre-pull in the \
                 images option instead)"
            ]
        );
        let dir = workspace(&[
            ("a/compose.yaml", &compose(0, 600)),
            ("b/compose.yaml", &compose(300, 900)),
            ("c/compose.yaml", &compose(900, 1_500)),
        ]);
        let d = discover(dir.path());
        assert_eq!(d.images.len(), MAX_IMAGES);
        // a's 600, b's 300 new ones, then c's first hundred.
        let b = at("", "b/compose.yaml", 0).1;
        let c = at("", "c/compose.yaml", 0).1;
        assert!(d.images.iter().any(|f| f.file.ends_with(&b)));
        assert!(
            d.images
                .iter()
                .any(|f| f.image.canonical() == "ghcr.io/acme/s999:1")
        );
        assert!(
            !d.images
                .iter()
                .any(|f| f.image.canonical() == "ghcr.io/acme/s1000:1")
        );
        assert_eq!(
            d.notes,
            vec![format!(
                "{c}:203: the workspace names more than 1000 images; this one and the rest \
                 were left out (list the images to pre-pull in the images option instead)"
            )]
        );
    }

    #[test]
    fn notes_kept_are_bounded_per_file_and_per_workspace() {
        let unresolved: String = (0..150)
            .map(|i| format!("  s{i}:\n    image: ${{IMAGE_{i}}}\n"))
            .collect();
        let compose = format!("services:\n{unresolved}");
        let (images, notes) = images_in(Kind::Compose, &compose, "compose.yaml");
        assert!(images.is_empty());
        assert_eq!(notes.len(), MAX_NOTES + 1);
        assert_eq!(
            notes[MAX_NOTES],
            "compose.yaml: 50 more notes left out (berth keeps 100)"
        );
        let dir = workspace(&[("a/compose.yaml", &compose), ("b/compose.yaml", &compose)]);
        let d = discover(dir.path());
        assert_eq!(d.notes.len(), MAX_NOTES + 1);
        assert_eq!(
            d.notes[MAX_NOTES],
            "the workspace: 102 more notes left out (berth keeps 100)"
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
