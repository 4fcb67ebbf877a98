//! The `FROM` images of a Dockerfile: instructions joined across continuation lines, the
//! `# escape=` directive, heredoc bodies skipped, and the `ARG`s before the first `FROM`
//! that give their variables a value.

use super::Mention;
use super::interpolate::{Dialect, Vars, expand};

/// The images of a Dockerfile's `FROM` instructions, except `scratch` and earlier stages.
pub(super) fn mentions(text: &str) -> Vec<Mention> {
    let lines: Vec<&str> = text.lines().collect();
    let escape = escape_directive(&lines);
    let dialect = Dialect::Dockerfile { escape };
    let mut args = Vars::new();
    let mut stages: Vec<String> = Vec::new();
    let mut seen_from = false;
    let mut mentions = Vec::new();
    let mut next = 0;
    while next < lines.len() {
        let first = next;
        next += 1;
        let trimmed = lines[first].trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Join continuation lines, dropping comment and blank lines inside the instruction.
        let mut instruction = String::new();
        let mut current = lines[first].trim_end();
        loop {
            match current.strip_suffix(escape) {
                Some(body) => {
                    instruction.push_str(body);
                    let mut more = None;
                    while next < lines.len() {
                        let line = lines[next];
                        next += 1;
                        let t = line.trim_start();
                        if !t.is_empty() && !t.starts_with('#') {
                            more = Some(line.trim_end());
                            break;
                        }
                    }
                    match more {
                        Some(line) => current = line,
                        None => break,
                    }
                }
                None => {
                    instruction.push_str(current);
                    break;
                }
            }
        }
        let instruction = instruction.trim();
        let (keyword, rest) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((instruction, ""));
        let rest = rest.trim();
        if keyword.eq_ignore_ascii_case("ARG") {
            if !seen_from {
                declare_args(rest, &mut args, dialect);
            }
        } else if keyword.eq_ignore_ascii_case("FROM") {
            seen_from = true;
            from_mention(rest, first + 1, &args, dialect, &mut stages, &mut mentions);
        } else if ["RUN", "COPY", "ADD"]
            .iter()
            .any(|k| keyword.eq_ignore_ascii_case(k))
        {
            next = skip_heredocs(instruction, &lines, next);
        }
    }
    mentions
}

/// The escape character set by a `# escape=` parser directive at the top of the file.
fn escape_directive(lines: &[&str]) -> char {
    let mut escape = '\\';
    for line in lines {
        let Some(directive) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = directive.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        if key.eq_ignore_ascii_case("escape") {
            match value.trim() {
                "`" => escape = '`',
                "\\" => escape = '\\',
                _ => {}
            }
        }
    }
    escape
}

/// Records `ARG NAME[=default] ...`, resolving each default with the ARGs before it.
fn declare_args(rest: &str, args: &mut Vars, dialect: Dialect) {
    for word in split_words(rest) {
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name, expand(value, args, dialect).ok()),
            None => (word.as_str(), None),
        };
        if !name.is_empty() {
            args.insert(name.to_string(), value);
        }
    }
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

/// Reads `FROM [--flag=...] image [AS name]`.
fn from_mention(
    rest: &str,
    line: usize,
    args: &Vars,
    dialect: Dialect,
    stages: &mut Vec<String>,
    mentions: &mut Vec<Mention>,
) {
    let words = split_words(rest);
    let mut words = words.iter().skip_while(|w| w.starts_with("--"));
    let Some(written) = words.next() else {
        return;
    };
    let resolved = expand(written, args, dialect);
    let stage_name = match (words.next(), words.next()) {
        (Some(as_), Some(name)) if as_.eq_ignore_ascii_case("as") => Some(name.to_lowercase()),
        _ => None,
    };
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
            written: written.clone(),
            resolved,
        });
    }
    if let Some(name) = stage_name {
        stages.push(name);
    }
}

/// Skips the bodies of the heredocs (`<<EOF`, `<<-"EOF"`) an instruction opens; returns the
/// index of the line after the last one.
fn skip_heredocs(instruction: &str, lines: &[&str], mut next: usize) -> usize {
    for word in instruction.split_whitespace() {
        let Some(marker) = word.strip_prefix("<<") else {
            continue;
        };
        let (strip_tabs, marker) = match marker.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, marker),
        };
        let marker = ['"', '\'']
            .iter()
            .find_map(|q| marker.strip_prefix(*q).and_then(|m| m.strip_suffix(*q)))
            .unwrap_or(marker);
        if marker.is_empty()
            || !marker
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        while next < lines.len() {
            let line = lines[next];
            next += 1;
            let line = if strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if line == marker {
                break;
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::super::discover;
    use super::super::fixture::*;
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
        let err = |s: &str| e(s).unwrap_err();
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
}
