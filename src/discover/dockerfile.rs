//! The `FROM` images of a Dockerfile, and the `ARG`s before the first `FROM` that give their
//! variables a value.
//!
//! The grammar is [`parse_dockerfile`]'s: it follows BuildKit's parser (parser directives such
//! as `# escape=`, line continuations, comments inside them, heredocs) and says where a file
//! is malformed. It hands over the words as written, so the variables and quotes in them are
//! resolved here, with [`super::interpolate`]. A Dockerfile it rejects is noted with the
//! crate's line and message, as BuildKit would refuse to build it. Other crates were looked at
//! and not taken: `dockerfile-parser` (pest) knows no `# escape=` directive and no heredocs.
//!
//! The work is linear in the file (the parser's is too, over at most
//! [`super::MAX_FILE_SIZE`] bytes): lines are counted once, stages are looked up in a set,
//! every value is at most [`super::interpolate::MAX_VALUE_LEN`] bytes and at most
//! [`MAX_ARGS`] `ARG`s are kept.

use std::collections::HashSet;

use parse_dockerfile::{FromInstruction, Instruction};

use super::interpolate::{Dialect, Var, Vars, expand};
use super::{Mention, Problems};

/// How many `ARG` names before the first `FROM` are kept; later ones are noted and not
/// read. BuildKit keeps them all, but a real Dockerfile declares a few before its first
/// `FROM` and a large one a few dozen; a thousand, each at most
/// [`super::interpolate::MAX_VALUE_LEN`] bytes, keep the table within 2 MiB whatever the
/// file declares.
const MAX_ARGS: usize = 1_000;

/// Why a Dockerfile cannot be read, and the 1-based line where it goes wrong (`None` when
/// the fault is the whole file's, such as having no `FROM`).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Invalid {
    /// The line.
    pub(super) line: Option<usize>,
    /// What is wrong, as the parser says it.
    pub(super) why: String,
}

/// The images of a Dockerfile's `FROM` instructions, except `scratch` and earlier stages,
/// with the problems found on the way.
pub(super) fn mentions(text: &str) -> Result<(Vec<Mention>, Problems), Invalid> {
    let dockerfile = parse_dockerfile::parse(text).map_err(|e| Invalid {
        line: Some(e.line()).filter(|&l| l > 0),
        why: format!("{e:#}"),
    })?;
    let escape = dockerfile
        .parser_directives
        .escape
        .as_ref()
        .map_or('\\', |d| d.value.value);
    let dialect = Dialect::Dockerfile { escape };
    let mut lines = Lines::new(text);
    let mut problems = Vec::new();
    let mut args = Vars::new();
    for arg in dockerfile.global_args() {
        let not_kept = declare_args(&arg.arguments.value, &mut args, dialect);
        if let Some(name) = not_kept
            && problems.is_empty()
        {
            problems.push((
                lines.at(arg.arg.span.start),
                format!(
                    "ARG {} and the new names after it: past the {MAX_ARGS} ARGs berth reads \
                     before the first FROM",
                    super::plain(name.chars(), super::MAX_QUOTED)
                ),
            ));
        }
    }
    let mut stages = HashSet::new();
    let mut mentions = Vec::new();
    for instruction in &dockerfile.instructions {
        if let Instruction::From(from) = instruction {
            let line = lines.at(from.from.span.start);
            from_mention(from, line, &args, dialect, &mut stages, &mut mentions);
        }
    }
    Ok((mentions, problems))
}

/// The 1-based lines of byte offsets in a text, counted on from the last offset asked (the
/// instructions come in order), so that the whole file is counted once.
struct Lines<'t> {
    /// The text.
    text: &'t str,
    /// The last offset asked.
    offset: usize,
    /// Its line.
    line: usize,
}

impl<'t> Lines<'t> {
    /// Lines of `text`.
    fn new(text: &'t str) -> Self {
        Lines {
            text,
            offset: 0,
            line: 1,
        }
    }

    /// The line of `offset`.
    fn at(&mut self, offset: usize) -> usize {
        if offset < self.offset {
            *self = Lines::new(self.text);
        }
        let bytes = &self.text.as_bytes()[self.offset..offset];
        self.line += bytes.iter().filter(|&&b| b == b'\n').count();
        self.offset = offset;
        self.line
    }
}

/// Records `ARG NAME[=default] ...`, resolving each default with the ARGs before it; the
/// first name not kept, past [`MAX_ARGS`] names.
fn declare_args(rest: &str, args: &mut Vars, dialect: Dialect) -> Option<String> {
    let mut not_kept = None;
    for word in split_words(rest) {
        let (name, var) = match word.split_once('=') {
            Some((name, value)) => match expand(value, args, dialect) {
                Ok(value) => (name, Var::Value(value)),
                Err(why) => (name, Var::Unresolved(why)),
            },
            None => (word.as_str(), Var::NoDefault),
        };
        if name.is_empty() {
            continue;
        }
        if args.len() >= MAX_ARGS && !args.contains_key(name) {
            not_kept.get_or_insert_with(|| name.to_string());
            continue;
        }
        args.insert(name.to_string(), var);
    }
    not_kept
}

/// Splits at blanks outside quotes, keeping the quotes for [`expand`] to remove.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Records the image of `FROM [--flag=...] image [AS name]`, unless it is `scratch` or an
/// earlier stage, and the stage's name.
fn from_mention(
    from: &FromInstruction<'_>,
    line: usize,
    args: &Vars,
    dialect: Dialect,
    stages: &mut HashSet<String>,
    mentions: &mut Vec<Mention>,
) {
    let written = &from.image.value;
    let resolved = expand(written, args, dialect);
    let skip = match &resolved {
        Ok(image) => {
            let image = image.to_lowercase();
            image == "scratch" || stages.contains(&image)
        }
        Err(_) => false,
    };
    if !skip {
        mentions.push(Mention {
            line,
            place: "FROM".into(),
            written: written.to_string(),
            resolved,
        });
    }
    if let Some((_, name)) = &from.as_ {
        stages.insert(name.value.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::{Kind, discover, images_in};
    use super::*;

    #[test]
    fn dockerfile_substitution_with_args() {
        let d = Dialect::Dockerfile { escape: '\\' };
        let mut vars = Vars::new();
        declare_args("BASE=ghcr.io/acme TAG=\"1.2\" EMPTY= NODEF", &mut vars, d);
        declare_args("FULL=${BASE}/img:$TAG", &mut vars, d);
        let e = |s: &str| expand(s, &vars, d);
        assert_eq!(e("${BASE}/app:${TAG}").unwrap(), "ghcr.io/acme/app:1.2");
        assert_eq!(e("$FULL").unwrap(), "ghcr.io/acme/img:1.2");
        assert_eq!(e("x:${EMPTY:-d}").unwrap(), "x:d");
        assert_eq!(e("x:${EMPTY-d}").unwrap(), "x:");
        assert_eq!(e("x:${NODEF:-d}").unwrap(), "x:d");
        assert_eq!(e("x:${TAG:+v}").unwrap(), "x:v");
        assert_eq!(e("x:${EMPTY:+v}").unwrap(), "x:");
        assert_eq!(e("x\\$TAG").unwrap(), "x$TAG");
        assert_eq!(e("'$TAG'").unwrap(), "$TAG");
        let err = |s: &str| e(s).unwrap_err().to_string();
        assert!(err("x:$NODEF").contains("ARG NODEF has no default"));
        assert!(err("x:$NOPE").contains("${NOPE} is not an ARG"));
        assert!(err("x:${NODEF:+v}").contains("only a --build-arg"));
    }

    #[test]
    fn dockerfile_multi_stage_with_args_platform_and_stage_references() {
        let dockerfile = text(&[
            "# syntax=docker/dockerfile:1",                                   // 1
            "ARG REGISTRY=ghcr.io/acme",                                      // 2
            "ARG GO=1.22 \\",                                                 // 3
            "    DEBIAN=bookworm",                                            // 4
            "ARG BUILD_ONLY",                                                 // 5
            "",                                                               // 6
            "# the build",                                                    // 7
            "from --platform=$BUILDPLATFORM golang:${GO}-${DEBIAN} As Build", // 8
            "ARG LATE=never",                                                 // 9
            "RUN go build ./...",                                             // 10
            "FROM build AS test",                                             // 11
            "FROM \\",                                                        // 12
            "  # a comment inside the instruction",                           // 13
            "  ${REGISTRY}/runtime:${LATE:-1} AS final",                      // 14
            "FROM scratch AS empty",                                          // 15
            "FROM BUILD",                                                     // 16
            "FROM ${BUILD_ONLY}",                                             // 17
            "FROM $UNDECLARED/x",                                             // 18
            "COPY --from=build /out /out",                                    // 19
        ]);
        let dir = workspace(&[("Dockerfile", &dockerfile)]);
        let d = discover(dir.path());
        assert_eq!(
            found(&dir, &d),
            vec![
                at("docker.io/library/golang:1.22-bookworm", "Dockerfile", 8),
                at("ghcr.io/acme/runtime:1", "Dockerfile", 12),
            ]
        );
        assert_eq!(
            d.notes,
            vec![
                "Dockerfile:17: FROM: image \"${BUILD_ONLY}\" skipped: ARG BUILD_ONLY has no \
                 default (only a --build-arg could set it)",
                "Dockerfile:18: FROM: image \"$UNDECLARED/x\" skipped: ${UNDECLARED} is not an \
                 ARG with a default before the first FROM",
            ]
        );
    }

    #[test]
    fn dockerfile_escape_directive_heredocs_and_file_names() {
        let windows = text(&[
            "# escape=`",
            "FROM mcr.microsoft.com/windows/servercore:ltsc2022 `",
            "  AS base",
            "RUN <<EOF",
            "FROM inside-a-heredoc",
            "EOF",
            "RUN <<-'END' cat",
            "\tFROM also-inside",
            "\tEND",
            "FROM base",
        ]);
        let dir = workspace(&[
            ("app.Dockerfile", &windows),
            ("docker/Dockerfile.dev", "FROM node:22\n"),
            ("Containerfile", "FROM quay.io/fedora/fedora:41\n"),
            ("tools/x.dockerfile", "FROM alpine:3.20\n"),
            ("Dockerfile.dockerignore", "FROM not-a-dockerfile\n"),
            ("README.md", "FROM nothing\n"),
        ]);
        let d = discover(dir.path());
        assert_eq!(
            found(&dir, &d),
            vec![
                at("docker.io/library/alpine:3.20", "tools/x.dockerfile", 1),
                at("docker.io/library/node:22", "docker/Dockerfile.dev", 1),
                at(
                    "mcr.microsoft.com/windows/servercore:ltsc2022",
                    "app.Dockerfile",
                    2
                ),
                at("quay.io/fedora/fedora:41", "Containerfile", 1),
            ]
        );
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        assert!(d.images[2].file.is_absolute() || !dir.path().is_absolute());
    }

    /// The images of a Dockerfile's text: (line, resolved image) per `FROM` kept.
    fn froms(lines: &[&str]) -> Vec<(usize, Result<String, String>)> {
        let (mentions, problems) = mentions(&text(lines)).expect("a valid Dockerfile");
        assert!(problems.is_empty(), "{problems:?}");
        mentions
            .into_iter()
            .map(|m| (m.line, m.resolved.map_err(|e| e.to_string())))
            .collect()
    }

    /// BuildKit's cases for `ARG` before `FROM` (`dockerfile2llb` and the frontend's
    /// `TestGlobalArg`, `TestArgDefaultExpansion` and their kin).
    #[test]
    fn buildkit_args_before_from() {
        let ok = |line: usize, image: &str| (line, Ok(image.to_string()));
        // A global ARG gives FROM its value; a later declaration overrides an earlier one,
        // and a default may use the ARGs above it.
        assert_eq!(
            froms(&[
                "ARG IMAGE=alpine",
                "ARG TAG=3.19",
                "ARG TAG=3.20",
                "ARG FULL=${IMAGE}:${TAG}",
                "FROM ${FULL}",
                "FROM $IMAGE:${TAG}",
            ]),
            vec![ok(5, "alpine:3.20"), ok(6, "alpine:3.20")]
        );
        // An ARG without a default can still fall back on `${NAME:-default}`.
        assert_eq!(
            froms(&["ARG TAG", "FROM busybox:${TAG:-stable}"]),
            vec![ok(2, "busybox:stable")]
        );
        // Several names on one ARG, with quotes.
        assert_eq!(
            froms(&["ARG A=\"nginx\" B='1.27'", "FROM $A:$B"]),
            vec![ok(2, "nginx:1.27")]
        );
        // An ARG after the first FROM belongs to its stage: later FROMs do not see it.
        let late = froms(&["FROM alpine AS a", "ARG LATE=x", "FROM ${LATE}/img"]);
        assert_eq!(late[0], ok(1, "alpine"));
        assert_eq!(
            late[1],
            (
                3,
                Err("${LATE} is not an ARG with a default before the first FROM".to_string())
            )
        );
    }

    /// BuildKit's `FROM` forms: flags, `AS name` in any case, stages referenced by name
    /// (only earlier ones), `scratch`.
    #[test]
    fn buildkit_from_forms_and_stage_names() {
        let ok = |line: usize, image: &str| (line, Ok(image.to_string()));
        assert_eq!(
            froms(&[
                "FROM --platform=linux/amd64 golang:1.22 AS build", // 1
                "FROM --platform=$BUILDPLATFORM node:22 as web",    // 2
                "FROM build",                                       // 3: a stage
                "FROM WEB AS again",                                // 4: stage names ignore case
                "FROM later",                                       // 5: not yet a stage
                "FROM debian AS later",                             // 6
                "FROM later",                                       // 7: now a stage
                "FROM scratch",                                     // 8
                "from Scratch",                                     // 9
            ]),
            vec![
                ok(1, "golang:1.22"),
                ok(2, "node:22"),
                ok(5, "later"),
                ok(6, "debian")
            ]
        );
    }

    /// BuildKit's lexer: continuations (with comments and blank lines inside), heredocs in
    /// their forms, and the `# escape=` directive only at the top.
    #[test]
    fn buildkit_continuations_heredocs_and_directives() {
        let ok = |line: usize, image: &str| (line, Ok(image.to_string()));
        assert_eq!(
            froms(&[
                "FROM \\",                  // 1
                "",                         // 2
                "# a comment",              // 3
                "    alpine:3.20 \\",       // 4
                "    AS base",              // 5
                "RUN <<EOF",                // 6
                "FROM not-an-image-1",      // 7
                "EOF",                      // 8
                "RUN <<-EOT",               // 9
                "\tFROM not-an-image-2",    // 10
                "\tEOT",                    // 11
                "COPY <<\"A\" <<'B' /dst/", // 12
                "FROM not-an-image-3",      // 13
                "A",                        // 14
                "FROM not-an-image-4",      // 15
                "B",                        // 16
                "FROM ubuntu",              // 17
            ]),
            vec![ok(1, "alpine:3.20"), ok(17, "ubuntu")]
        );
        // The escape directive, as the first line: the backtick continues lines.
        assert_eq!(
            froms(&["# escape=`", "FROM mcr.microsoft.com/windows `", "  AS w"]),
            vec![ok(2, "mcr.microsoft.com/windows")]
        );
        // After an instruction or a comment, `# escape=` is a comment.
        assert_eq!(
            froms(&["# a comment", "# escape=`", "FROM c:\\img\\x"]),
            vec![ok(3, "c:imgx")]
        );
        // Other directives before it do not end the directives (`# syntax=`).
        assert_eq!(
            froms(&[
                "# syntax=docker/dockerfile:1",
                "# escape=`",
                "FROM a `",
                "  AS b"
            ]),
            vec![ok(3, "a")]
        );
    }

    #[test]
    fn dockerfiles_buildkit_rejects_are_noted_with_the_line() {
        let notes = |lines: &[&str]| images_in(Kind::Dockerfile, &text(lines), "Dockerfile").1;
        assert_eq!(
            notes(&["FROM alpine", "RUNN echo"]),
            vec![
                "Dockerfile:2: not a valid Dockerfile (unknown instruction 'RUNN'); its images \
                 were skipped"
            ]
        );
        assert_eq!(
            notes(&["RUN echo", "FROM alpine"]),
            vec!["Dockerfile:1: not a valid Dockerfile (expected FROM); its images were skipped"]
        );
        assert_eq!(
            notes(&["# only a comment"]),
            vec![
                "Dockerfile: not a valid Dockerfile (expected at least one FROM instruction); \
                 its images were skipped"
            ]
        );
        assert_eq!(
            notes(&["FROM alpine AS a", "FROM alpine AS a"]),
            vec![
                "Dockerfile:2: not a valid Dockerfile (duplicate stage name 'a'); its images \
                 were skipped"
            ]
        );
        // The parser's message quotes the file: a note says it on one line.
        assert_eq!(
            notes(&["FROM alpine", "RUN <<'E", "OF' cat"]),
            vec![
                "Dockerfile:4: not a valid Dockerfile (expected end of here-document (E\\nOF), \
                 but reached eof); its images were skipped"
            ]
        );
        // ... and at most MAX_PARSER_MESSAGE characters of it.
        let long = "X".repeat(1_000);
        let note = &notes(&["FROM alpine", &long])[0];
        assert!(note.starts_with("Dockerfile:2: not a valid Dockerfile (unknown instruction 'XXX"));
        assert!(note.ends_with("XXX…); its images were skipped"), "{note}");
        assert!(note.chars().count() < 500, "{note}");
        // An unclosed heredoc is found where the file ends, after its last line.
        assert_eq!(
            notes(&["FROM alpine", "RUN <<EOF", "echo"]),
            vec![
                "Dockerfile:4: not a valid Dockerfile (expected end of here-document (EOF), but \
                 reached eof); its images were skipped"
            ]
        );
    }

    #[test]
    fn arg_values_past_the_bound_are_not_resolved() {
        // Each ARG ten times the one before: 100 bytes, then 1 KB, then 10 KB (past the
        // bound), and on to gigabytes if nothing stopped it.
        let mut lines = vec![format!("ARG A0={}", "a".repeat(100))];
        for i in 1..10 {
            lines.push(format!(
                "ARG A{i}={}",
                format!("${{A{}}}", i - 1).repeat(10)
            ));
        }
        lines.push("FROM ${A1}".to_string());
        lines.push("FROM $A9".to_string());
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let froms = froms(&lines);
        assert_eq!(froms[0], (11, Ok("a".repeat(1_000))));
        assert_eq!(
            froms[1],
            (
                12,
                Err(
                    "ARG A9's default is not resolved: it resolves to more than 2048 bytes, \
                     longer than any image reference"
                        .to_string()
                )
            )
        );
    }

    #[test]
    fn args_past_the_bound_are_noted_and_not_read() {
        let mut lines: Vec<String> = (0..=MAX_ARGS).map(|i| format!("ARG A{i}=x{i}")).collect();
        lines.push("ARG A0=again".to_string());
        lines.push(format!("FROM $A0:${{A{}}}", MAX_ARGS - 1));
        lines.push(format!("FROM $A{MAX_ARGS}"));
        let (images, notes) = images_in(Kind::Dockerfile, &lines.join("\n"), "Dockerfile");
        let images: Vec<String> = images.iter().map(|(_, i)| i.canonical()).collect();
        assert_eq!(images, ["docker.io/library/again:x999"]);
        assert_eq!(
            notes,
            [
                "Dockerfile:1001: ARG A1000 and the new names after it: past the 1000 ARGs \
                 berth reads before the first FROM; skipped",
                "Dockerfile:1004: FROM: image \"$A1000\" skipped: ${A1000} is not an ARG with a \
                 default before the first FROM",
            ]
        );
    }

    #[test]
    fn sixty_thousand_stages_are_read_with_their_lines() {
        // Each FROM names the stage before it: only the first is an image. Lines are
        // counted once for the whole file, stages looked up in a set.
        let mut lines = vec!["FROM alpine AS s0".to_string()];
        for i in 1..60_000 {
            lines.push(format!("FROM s{} AS s{i}", i - 1));
        }
        lines.push("FROM busybox".to_string());
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let ok = |line: usize, image: &str| (line, Ok(image.to_string()));
        assert_eq!(froms(&lines), vec![ok(1, "alpine"), ok(60_001, "busybox")]);
    }

    #[test]
    fn lines_are_counted_on_and_back() {
        let mut lines = Lines::new("a\nb\n\nc");
        assert_eq!(
            [0, 2, 4, 5, 6, 2, 0].map(|offset| lines.at(offset)),
            [1, 2, 3, 4, 4, 2, 1]
        );
    }
}
