//! Images named in a workspace: the `image:` of every Compose service and the `FROM` of every
//! Dockerfile, found by walking the folder.
//!
//! The walk stays inside the workspace and stays small: it follows no symbolic link, skips
//! dependency, build and hidden folders (except `.devcontainer`), goes at most
//! [`MAX_DEPTH`] levels down, looks at no more than [`MAX_ENTRIES`] files and folders, and
//! reads no file over [`MAX_FILE_SIZE`]. Variables are resolved only from what the files
//! themselves write (`${VAR:-default}` in Compose, `ARG NAME=default` before the first
//! `FROM`): berth's own environment is not the project's, so it is never read. What cannot be
//! resolved, parsed or read is skipped with a note saying which file, which line and why; the
//! images found are de-duplicated by [`ImageRef`] equality and sorted by their canonical name.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::image::ImageRef;

/// How many folder levels below the workspace a file may be (`a/b/c/d/e/Dockerfile` is 6).
pub const MAX_DEPTH: usize = 6;
/// How many files and folders the walk looks at before it stops.
pub const MAX_ENTRIES: usize = 20_000;
/// The largest file that is read.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

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
/// How many mapping look-ups one `image` look-up may take through YAML merge keys, so that a
/// file of nested merges cannot keep the walk busy.
const MERGE_BUDGET: usize = 10_000;

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

/// The bounds of a walk.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// See [`MAX_DEPTH`].
    depth: usize,
    /// See [`MAX_ENTRIES`].
    entries: usize,
    /// See [`MAX_FILE_SIZE`].
    file_size: u64,
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
    resolved: Result<String, String>,
}

/// [`discover`] with the given bounds.
fn discover_within(workspace: &Path, limits: Limits) -> Discovered {
    let mut notes = Vec::new();
    let files = walk(workspace, limits, &mut notes);
    let mut found = Vec::new();
    for (file, kind) in files {
        let shown = shown(workspace, &file);
        let text = match read_capped(&file, limits.file_size) {
            Ok(Some(text)) => text,
            Ok(None) => {
                notes.push(format!(
                    "{shown}: larger than {} KiB; skipped",
                    limits.file_size / 1024
                ));
                continue;
            }
            Err(e) => {
                notes.push(format!("{shown}: cannot be read ({e}); skipped"));
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
    let mentions = match kind {
        Kind::Dockerfile => dockerfile_mentions(text),
        Kind::Compose => match compose_mentions(text) {
            Ok((mentions, problems)) => {
                for (line, problem) in problems {
                    notes.push(format!("{shown}:{line}: {problem}; skipped"));
                }
                mentions
            }
            Err(e) => {
                notes.push(format!(
                    "{shown}:{}: not valid YAML ({}); its images were skipped",
                    e.marker().line(),
                    e.info()
                ));
                return (Vec::new(), notes);
            }
        },
    };
    let mut images = Vec::new();
    for m in mentions {
        let at = format!("{shown}:{}: {}", m.line, m.place);
        match m.resolved {
            Err(why) => notes.push(format!("{at}: image {:?} skipped: {why}", m.written)),
            Ok(text) => match ImageRef::parse(&text) {
                Ok(image) => images.push((m.line, image)),
                Err(e) => notes.push(format!("{at}: {e}; skipped")),
            },
        }
    }
    (images, notes)
}

/// A path as notes show it: relative to the workspace.
fn shown(workspace: &Path, path: &Path) -> String {
    path.strip_prefix(workspace)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The Compose files and Dockerfiles of a workspace, breadth first, each folder in name order.
fn walk(workspace: &Path, limits: Limits, notes: &mut Vec<String>) -> Vec<(PathBuf, Kind)> {
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
            } else if file_type.is_file()
                && let Some(kind) = kind_of(name)
            {
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

/// Reads a file as text, or `None` when it is larger than `max` bytes.
fn read_capped(path: &Path, max: u64) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&bytes);
    Ok(Some(text.trim_start_matches('\u{feff}').to_string()))
}

// ---------------------------------------------------------------------------------------------
// Variables

/// How a file writes variables.
#[derive(Clone, Copy, Debug)]
enum Dialect {
    /// Compose: `$$` is a `$`; values come only from defaults written in the file.
    Compose,
    /// A Dockerfile: the escape character escapes `$`, quotes are removed, and values come
    /// from the `ARG`s before the first `FROM`.
    Dockerfile {
        /// `\` or, after `# escape=`` ` ``, a backtick.
        escape: char,
    },
}

/// What a variable is known to hold.
enum Value<'a> {
    /// A value written in the file.
    Known(&'a str),
    /// Declared (`ARG NAME`) with no default.
    NoDefault,
    /// Not declared at all.
    Unknown,
}

/// Variables with their values; `None` for an `ARG` declared without a default.
type Vars = HashMap<String, Option<String>>;

/// Resolves the variables of `text`, or says which one cannot be resolved.
fn expand(text: &str, vars: &Vars, dialect: Dialect) -> Result<String, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match dialect {
            Dialect::Dockerfile { escape } if c == escape && i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            Dialect::Dockerfile { .. } if c == '"' => {
                i += 1;
                continue;
            }
            Dialect::Dockerfile { .. } if c == '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .map_or(chars.len(), |p| i + 1 + p);
                out.extend(&chars[i + 1..end]);
                i = end + 1;
                continue;
            }
            Dialect::Compose if c == '$' && chars.get(i + 1) == Some(&'$') => {
                out.push('$');
                i += 2;
                continue;
            }
            _ => {}
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'{') {
            let Some(close) = closing_brace(&chars, i + 2) else {
                return Err(format!(
                    "\"{}\" is not closed by a '}}'",
                    chars[i..].iter().collect::<String>()
                ));
            };
            let body: String = chars[i + 2..close].iter().collect();
            out.push_str(&expand_braced(&body, vars, dialect)?);
            i = close + 1;
            continue;
        }
        let name_len = chars[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .count();
        if name_len == 0 || chars[i + 1].is_ascii_digit() {
            out.push('$');
            i += 1;
            continue;
        }
        let name: String = chars[i + 1..i + 1 + name_len].iter().collect();
        match lookup(&name, vars) {
            Value::Known(v) => out.push_str(v),
            other => return Err(unresolved(&name, &other, dialect)),
        }
        i += 1 + name_len;
    }
    Ok(out)
}

/// The index of the `}` that closes a `${` whose body starts at `start`.
fn closing_brace(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 1;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Resolves the body of `${...}`: `NAME`, `NAME:-default`, `NAME-default`, `NAME:+alt`,
/// `NAME+alt`; `NAME:?error` and `NAME?error` need a value from outside the file.
fn expand_braced(body: &str, vars: &Vars, dialect: Dialect) -> Result<String, String> {
    let name_len = body
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let (name, op) = body.split_at(name_len);
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return Err(format!("\"${{{body}}}\" is not a variable reference"));
    }
    let value = lookup(name, vars);
    let known = |allow_empty: bool| match value {
        Value::Known(v) if allow_empty || !v.is_empty() => Some(v.to_string()),
        _ => None,
    };
    if op.is_empty() {
        return known(true).ok_or_else(|| unresolved(name, &value, dialect));
    }
    if let Some(default) = op.strip_prefix(":-") {
        return known(false).map_or_else(|| expand(default, vars, dialect), Ok);
    }
    if let Some(default) = op.strip_prefix('-') {
        return known(true).map_or_else(|| expand(default, vars, dialect), Ok);
    }
    for (prefix, allow_empty) in [(":+", false), ("+", true)] {
        if let Some(alternative) = op.strip_prefix(prefix) {
            return match value {
                Value::Known(v) if allow_empty || !v.is_empty() => {
                    expand(alternative, vars, dialect)
                }
                Value::Known(_) => Ok(String::new()),
                _ => Err(format!(
                    "\"${{{body}}}\" depends on whether {name} is set, which {}",
                    outside(dialect)
                )),
            };
        }
    }
    if op.starts_with(":?") || op.starts_with('?') {
        return Err(format!(
            "\"${{{body}}}\" requires {name} to be set, which {}",
            outside(dialect)
        ));
    }
    Err(format!(
        "\"${{{body}}}\" uses a form berth does not resolve (it resolves ${{NAME}}, \
         ${{NAME:-default}} and ${{NAME-default}})"
    ))
}

/// What the file says a variable holds.
fn lookup<'a>(name: &str, vars: &'a Vars) -> Value<'a> {
    match vars.get(name) {
        Some(Some(v)) => Value::Known(v),
        Some(None) => Value::NoDefault,
        None => Value::Unknown,
    }
}

/// Where a value missing from the file would come from.
fn outside(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Compose => "only the environment could say (berth does not read it)",
        Dialect::Dockerfile { .. } => "only a --build-arg could say",
    }
}

/// Why a variable has no value.
fn unresolved(name: &str, value: &Value<'_>, dialect: Dialect) -> String {
    match (dialect, value) {
        (Dialect::Compose, _) => format!(
            "${{{name}}} has no default in the file, and berth does not read the environment"
        ),
        (Dialect::Dockerfile { .. }, Value::NoDefault) => {
            format!("ARG {name} has no default (only a --build-arg could set it)")
        }
        (Dialect::Dockerfile { .. }, _) => {
            format!("${{{name}}} is not an ARG with a default before the first FROM")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dockerfiles

/// The images of a Dockerfile's `FROM` instructions, except `scratch` and earlier stages.
fn dockerfile_mentions(text: &str) -> Vec<Mention> {
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

// ---------------------------------------------------------------------------------------------
// Compose files

/// A YAML node, with the line of each scalar. Aliases share the node of their anchor.
#[derive(Debug)]
enum Node {
    /// A scalar; `plain` when unquoted (so `null` and `~` mean nothing).
    Scalar {
        /// The text.
        value: String,
        /// Unquoted.
        plain: bool,
        /// The 1-based line.
        line: usize,
    },
    /// A sequence.
    Seq(Vec<Rc<Node>>),
    /// A mapping, in file order.
    Map(Vec<(Rc<Node>, Rc<Node>)>),
}

impl Node {
    /// The scalar's text, if this is a scalar that is not null.
    fn text(&self) -> Option<&str> {
        match self {
            Node::Scalar {
                plain: true, value, ..
            } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL") => None,
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether this is the merge key `<<`.
    fn is_merge_key(&self) -> bool {
        matches!(self, Node::Scalar { value, plain: true, .. } if value == "<<")
    }

    /// Whether this is null (an empty or `null` plain scalar).
    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { plain: true, .. }) && self.text().is_none()
    }

    /// The first line in the node.
    fn line(&self) -> Option<usize> {
        match self {
            Node::Scalar { line, .. } => Some(*line),
            Node::Seq(items) => items.iter().find_map(|n| n.line()),
            Node::Map(entries) => entries.iter().find_map(|(k, _)| k.line()),
        }
    }
}

/// Builds [`Node`]s from the parser's events.
#[derive(Default)]
struct TreeBuilder {
    /// Open sequences and mappings, with their anchor ids; a mapping holds a key awaiting
    /// its value.
    open: Vec<(Open, usize)>,
    /// Finished nodes by anchor id.
    anchors: HashMap<usize, Rc<Node>>,
    /// The documents of the stream.
    documents: Vec<Rc<Node>>,
}

/// A sequence or mapping being built.
enum Open {
    /// A sequence's items so far.
    Seq(Vec<Rc<Node>>),
    /// A mapping's entries so far, and a key awaiting its value.
    Map(Vec<(Rc<Node>, Rc<Node>)>, Option<Rc<Node>>),
}

impl TreeBuilder {
    /// Adds a finished node, recording it under its anchor.
    fn finish(&mut self, node: Node, anchor: usize) {
        let node = Rc::new(node);
        if anchor > 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        self.add(node);
    }

    /// Adds a node to the open sequence or mapping, or as a document.
    fn add(&mut self, node: Rc<Node>) {
        match self.open.last_mut() {
            None => self.documents.push(node),
            Some((Open::Seq(items), _)) => items.push(node),
            Some((Open::Map(entries, key), _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, style, anchor, _) => self.finish(
                Node::Scalar {
                    value,
                    plain: style == TScalarStyle::Plain,
                    line: mark.line(),
                },
                anchor,
            ),
            Event::Alias(anchor) => {
                let node = self.anchors.get(&anchor).cloned().unwrap_or_else(|| {
                    Rc::new(Node::Scalar {
                        value: String::new(),
                        plain: true,
                        line: mark.line(),
                    })
                });
                self.add(node);
            }
            Event::SequenceStart(anchor, _) => self.open.push((Open::Seq(Vec::new()), anchor)),
            Event::MappingStart(anchor, _) => {
                self.open.push((Open::Map(Vec::new(), None), anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((open, anchor)) = self.open.pop() {
                    let node = match open {
                        Open::Seq(items) => Node::Seq(items),
                        Open::Map(entries, _) => Node::Map(entries),
                    };
                    self.finish(node, anchor);
                }
            }
            _ => {}
        }
    }
}

/// The value of `key` in a mapping, looking through merge keys (`<<: *base`,
/// `<<: [*a, *b]`) when the mapping does not have it itself.
fn get<'a>(map: &'a Node, key: &str, budget: &mut usize) -> Option<&'a Rc<Node>> {
    let Node::Map(entries) = map else {
        return None;
    };
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    let own = entries
        .iter()
        .find(|(k, _)| !k.is_merge_key() && k.text() == Some(key));
    if let Some((_, value)) = own {
        return Some(value);
    }
    for (_, merged) in entries.iter().filter(|(k, _)| k.is_merge_key()) {
        let sources: &[Rc<Node>] = match &**merged {
            Node::Seq(items) => items,
            _ => std::slice::from_ref(merged),
        };
        for source in sources {
            if let Some(value) = get(source, key, budget) {
                return Some(value);
            }
        }
    }
    None
}

/// The keys of a mapping, its own first, then those it merges in.
fn keys<'a>(map: &'a Node, out: &mut Vec<&'a Rc<Node>>, budget: &mut usize) {
    let Node::Map(entries) = map else {
        return;
    };
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    for (k, _) in entries {
        if !k.is_merge_key() && !out.iter().any(|o| o.text() == k.text()) {
            out.push(k);
        }
    }
    for (_, merged) in entries.iter().filter(|(k, _)| k.is_merge_key()) {
        match &**merged {
            Node::Seq(items) => items.iter().for_each(|i| keys(i, out, budget)),
            node => keys(node, out, budget),
        }
    }
}

/// Problems found in a file that parsed: (line, what is wrong).
type Problems = Vec<(usize, String)>;

/// The `services.<name>.image` values of a Compose file, with the problems found on the way;
/// a YAML error fails the whole file.
fn compose_mentions(text: &str) -> Result<(Vec<Mention>, Problems), yaml_rust2::ScanError> {
    let mut builder = TreeBuilder::default();
    Parser::new_from_str(text).load(&mut builder, true)?;
    let mut mentions = Vec::new();
    let mut problems = Vec::new();
    for document in &builder.documents {
        let mut budget = MERGE_BUDGET;
        let Some(services) = get(document, "services", &mut budget) else {
            continue;
        };
        if services.is_null() {
            continue;
        }
        if !matches!(**services, Node::Map(_)) {
            problems.push((
                services.line().unwrap_or(1),
                "services is not a mapping of service names".to_string(),
            ));
            continue;
        }
        let mut names = Vec::new();
        keys(services, &mut names, &mut budget);
        for name_node in names {
            let Some(name) = name_node.text() else {
                continue;
            };
            let mut budget = MERGE_BUDGET;
            let Some(service) = get(services, name, &mut budget) else {
                continue;
            };
            let Some(image) = get(service, "image", &mut budget) else {
                continue;
            };
            let place = format!("service {name:?}");
            match (&**image, image.text()) {
                (Node::Scalar { line, .. }, Some(written)) => mentions.push(Mention {
                    line: *line,
                    resolved: expand(written, &Vars::new(), Dialect::Compose),
                    written: written.to_string(),
                    place,
                }),
                (Node::Scalar { .. }, None) => {}
                (node, _) => problems.push((
                    node.line().or(name_node.line()).unwrap_or(1),
                    format!("{place}: image is not a string"),
                )),
            }
        }
    }
    Ok((mentions, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes files (path, content) under a fresh temporary folder.
    fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    /// A file's text from its lines, so that line numbers in the tests are easy to read.
    fn text(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// The canonical name, file (relative to the workspace) and line of each image found.
    fn found(dir: &tempfile::TempDir, d: &Discovered) -> Vec<(String, String, Option<usize>)> {
        d.images
            .iter()
            .map(|f| (f.image.canonical(), shown(dir.path(), &f.file), f.line))
            .collect()
    }

    /// An expected entry of [`found`].
    fn at(image: &str, file: &str, line: usize) -> (String, String, Option<usize>) {
        let file = file.split('/').collect::<PathBuf>();
        (image.into(), file.display().to_string(), Some(line))
    }

    /// The canonical names of the images found.
    fn names(d: &Discovered) -> Vec<String> {
        d.images.iter().map(|f| f.image.canonical()).collect()
    }

    #[test]
    fn compose_interpolation_uses_only_defaults_in_the_file() {
        let e = |s: &str| expand(s, &Vars::new(), Dialect::Compose);
        assert_eq!(e("ubuntu:22.04").unwrap(), "ubuntu:22.04");
        assert_eq!(e("${REG:-ghcr.io}/app").unwrap(), "ghcr.io/app");
        assert_eq!(e("${REG-ghcr.io}/app:${TAG:-1}").unwrap(), "ghcr.io/app:1");
        assert_eq!(e("${REG:-${OTHER:-x.io}}/app").unwrap(), "x.io/app");
        assert_eq!(e("a$$b").unwrap(), "a$b");
        assert_eq!(e("price$").unwrap(), "price$");
        assert_eq!(e("${A:-}app").unwrap(), "app");
        let err = |s: &str| e(s).unwrap_err();
        assert!(err("${REG}/app").contains("${REG} has no default"));
        assert!(err("$REG/app").contains("${REG} has no default"));
        assert!(err("${REG:?set it}/app").contains("requires REG"));
        assert!(err("${REG:+x}/app").contains("depends on whether REG"));
        assert!(err("${REG/app").contains("not closed"));
        assert!(err("${}").contains("not a variable reference"));
        // The process environment is not consulted.
        assert_eq!(e("${PATH:-x}").unwrap(), "x");
        assert!(e("$HOME").is_err());
    }

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
    fn compose_with_anchors_merge_keys_and_defaults() {
        let compose = text(&[
            "x-base: &base",                                      // 1
            "  image: ${REGISTRY:-ghcr.io/acme}/base:${TAG-1.0}", // 2
            "  restart: always",                                  // 3
            "x-db: &db",                                          // 4
            "  image: postgres:16",                               // 5
            "services:",                                          // 6
            "  app:",                                             // 7
            "    <<: *base",                                      // 8
            "    ports: [\"80:80\"]",                             // 9
            "  worker:",                                          // 10
            "    <<: [*db, *base]",                               // 11
            "  own:",                                             // 12
            "    <<: *base",                                      // 13
            "    image: 'redis:7'",                               // 14
            "  builder:",                                         // 15
            "    build: .",                                       // 16
            "  nothing:",                                         // 17
            "  price:",                                           // 18
            "    image: ghcr.io/acme/a$$b",                       // 19
        ]);
        let dir = workspace(&[("compose.yaml", &compose)]);
        let d = discover(dir.path());
        assert_eq!(
            found(&dir, &d),
            vec![
                at("docker.io/library/postgres:16", "compose.yaml", 5),
                at("docker.io/library/redis:7", "compose.yaml", 14),
                at("ghcr.io/acme/base:1.0", "compose.yaml", 2),
            ]
        );
        // `a$$b` is `a$b`, which is not a valid repository: noted with its line.
        assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
        let expected = "compose.yaml:19: service \"price\": image \"ghcr.io/acme/a$b\": \
                        the repository part \"a$b\" must be";
        assert!(d.notes[0].starts_with(expected), "{}", d.notes[0]);
    }

    #[test]
    fn overrides_and_unresolved_variables() {
        let base = text(&["services:", "  web:", "    image: nginx:1.27"]);
        let overrides = text(&[
            "services:",
            "  web:",
            "    image: ${WEB_IMAGE}",
            "  cache:",
            "    image: \"${CACHE:-valkey/valkey}:8\"",
        ]);
        let prod = text(&["services:", "  web:", "    image: ghcr.io/acme/web:prod"]);
        let dir = workspace(&[
            ("docker-compose.yml", &base),
            ("docker-compose.override.yml", &overrides),
            ("compose.prod.yaml", &prod),
            ("compose.yaml.bak", "services:\n  x:\n    image: never\n"),
            ("other.yaml", "services:\n  x:\n    image: never\n"),
        ]);
        let d = discover(dir.path());
        assert_eq!(
            names(&d),
            vec![
                "docker.io/library/nginx:1.27",
                "docker.io/valkey/valkey:8",
                "ghcr.io/acme/web:prod",
            ]
        );
        assert_eq!(
            d.notes,
            vec![
                "docker-compose.override.yml:3: service \"web\": image \"${WEB_IMAGE}\" skipped: \
                 ${WEB_IMAGE} has no default in the file, and berth does not read the environment"
            ]
        );
    }

    #[test]
    fn malformed_yaml_is_noted_with_file_and_line() {
        let bad_indent = text(&[
            "services:",
            "  app:",
            "    image: ubuntu",
            "   bad: [unclosed",
        ]);
        let unknown_alias = text(&["services:", "  app:", "    image: *nope"]);
        let dir = workspace(&[
            ("sub/compose.yml", &bad_indent),
            ("compose.yaml", &unknown_alias),
        ]);
        let d = discover(dir.path());
        assert!(d.images.is_empty());
        assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
        assert!(
            d.notes[0].starts_with("compose.yaml:3: not valid YAML ("),
            "{}",
            d.notes[0]
        );
        let sub = at("", "sub/compose.yml", 0).1;
        let expected = format!("{sub}:4: not valid YAML (");
        assert!(d.notes[1].starts_with(&expected), "{}", d.notes[1]);
        assert!(
            d.notes[1].ends_with("); its images were skipped"),
            "{}",
            d.notes[1]
        );
    }

    #[test]
    fn invalid_image_names_and_odd_services_are_noted() {
        let compose = text(&[
            "services:",
            "  a:",
            "    image: Ghcr.io/Acme/App",
            "  b:",
            "    image: [x]",
            "  c:",
            "    image: null",
        ]);
        let dir = workspace(&[("compose.yaml", &compose)]);
        let d = discover(dir.path());
        assert!(d.images.is_empty());
        assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
        assert_eq!(
            d.notes[0],
            "compose.yaml:5: service \"b\": image is not a string; skipped"
        );
        let expected = "compose.yaml:3: service \"a\": image \"Ghcr.io/Acme/App\": \
                        the repository must be lower-case";
        assert!(d.notes[1].starts_with(expected), "{}", d.notes[1]);

        let dir = workspace(&[("compose.yaml", "services: [a, b]\n")]);
        let d = discover(dir.path());
        assert_eq!(
            d.notes,
            vec!["compose.yaml:1: services is not a mapping of service names; skipped"]
        );
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
    fn merge_chains_cannot_run_away() {
        // Each level merges the one before twice: 2^40 look-ups without a budget.
        let mut yaml = String::from("x0: &a0 {k: v}\n");
        for i in 1..40 {
            yaml.push_str(&format!("x{i}: &a{i} {{<<: [*a{p}, *a{p}]}}\n", p = i - 1));
        }
        yaml.push_str("services:\n  s:\n    <<: *a39\n");
        let (mentions, problems) = compose_mentions(&yaml).unwrap();
        assert!(mentions.is_empty() && problems.is_empty());
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
}
