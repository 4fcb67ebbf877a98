//! The `${...}` variables of Compose files and Dockerfiles, resolved from values written in
//! the files only. Hand-written by necessity: no crate implements Compose's interpolation
//! (compose-go's `template` package) or BuildKit's word expansion (its `shell` lexer), and the
//! two differ (`$$` in Compose, the escape character and quotes in a Dockerfile).
//!
//! Resolution takes time and memory linear in the text, whatever it holds: the braces are
//! matched in one pass, each character is then read once, by the level that owns it (a
//! default is never copied out to be read again), defaults nest at most [`MAX_NESTING`]
//! deep, and a value is at most [`MAX_VALUE_LEN`] bytes long. Beyond either bound the value
//! is not resolved, and [`Unresolved`] says which bound it passed.

use std::collections::HashMap;
use std::ops::Range;

/// How deep `${...}` may nest in defaults and alternatives (`${A:-${B:-x}}` is 2 deep).
/// Neither compose-go nor BuildKit bounds it: both recurse once per level on Go's growable
/// stack, so they accept any depth that fits in memory (compose-go also re-reads the rest
/// of the text at each level, quadratic in the depth). What they accept in their own tests
/// (`template_test.go`, `lex_test.go` and `envVarTest`) nests 2 deep, as real files do;
/// 32 is far beyond anything written by hand, and keeps the recursion here (two small
/// frames a level) shallow on any thread's stack.
pub(super) const MAX_NESTING: usize = 32;

/// The longest value, in bytes, a variable or an image may resolve to. The longest image
/// reference the grammar accepts is 1,665 characters (a 255-character name, a 128-character
/// tag, and a digest of a 255-character algorithm and 1,024 characters of hex), so nothing
/// longer can be an image. Without a bound, a few short lines of `ARG B=$A$A$A$A$A` (each
/// ARG five times the one before) would build values of gigabytes.
pub(super) const MAX_VALUE_LEN: usize = 2048;

/// How a file writes variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    /// Compose: `$$` is a `$`; values come only from defaults written in the file.
    Compose,
    /// A Dockerfile: the escape character escapes `$`, quotes are removed, and values come
    /// from the `ARG`s before the first `FROM`.
    Dockerfile {
        /// `\` or, after `# escape=`` ` ``, a backtick.
        escape: char,
    },
}

/// What a file says a variable holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Var {
    /// A value written in the file.
    Value(String),
    /// Declared (`ARG NAME`) with no default.
    NoDefault,
    /// Declared with a default that does not resolve, and why.
    Unresolved(Unresolved),
}

/// Variables by name.
pub(super) type Vars = HashMap<String, Var>;

/// Why a text's variables cannot be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Unresolved {
    /// A Compose variable without a default beside it.
    #[error("${{{name}}} has no default in the file, and berth does not read the environment")]
    NoDefaultInFile {
        /// The variable.
        name: String,
    },
    /// A Dockerfile `ARG` declared without a default.
    #[error("ARG {name} has no default (only a --build-arg could set it)")]
    ArgWithoutDefault {
        /// The ARG.
        name: String,
    },
    /// A Dockerfile variable that no `ARG` before the first `FROM` declares with a default.
    #[error("${{{name}}} is not an ARG with a default before the first FROM")]
    NotAnArg {
        /// The variable.
        name: String,
    },
    /// A Dockerfile `ARG` whose own default does not resolve.
    #[error("ARG {name}'s default is not resolved: {why}")]
    ArgDefault {
        /// The ARG.
        name: String,
        /// Why its default is not resolved (never itself an `ArgDefault`).
        why: Box<Unresolved>,
    },
    /// `${` without its `}`.
    #[error("\"{text}\" is not closed by a '}}'")]
    NotClosed {
        /// The text from the `${`, shortened.
        text: String,
    },
    /// `${...}` that does not start with a name.
    #[error("\"${{{body}}}\" is not a variable reference")]
    NotAVariable {
        /// What the braces hold, shortened.
        body: String,
    },
    /// `${NAME:+alt}` or `${NAME+alt}` for a variable the file gives no value.
    #[error("\"${{{body}}}\" depends on whether {name} is set, which {}", outside(*.dialect))]
    DependsOnWhetherSet {
        /// What the braces hold, shortened.
        body: String,
        /// The variable.
        name: String,
        /// Where its value would come from.
        dialect: Dialect,
    },
    /// `${NAME:?error}` or `${NAME?error}`.
    #[error("\"${{{body}}}\" requires {name} to be set, which {}", outside(*.dialect))]
    Required {
        /// What the braces hold, shortened.
        body: String,
        /// The variable.
        name: String,
        /// Where its value would come from.
        dialect: Dialect,
    },
    /// A form other than the defaults and alternatives (`${NAME/a/b}`, `${NAME!}`, ...).
    #[error(
        "\"${{{body}}}\" uses a form berth does not resolve (it resolves ${{NAME}}, \
         ${{NAME:-default}} and ${{NAME-default}})"
    )]
    UnknownForm {
        /// What the braces hold, shortened.
        body: String,
    },
    /// Defaults nested deeper than [`MAX_NESTING`].
    #[error(
        "its ${{...}} nest deeper than {MAX_NESTING} levels, more than berth resolves; \
         write it with fewer nested defaults"
    )]
    TooDeep,
    /// A value longer than [`MAX_VALUE_LEN`].
    #[error("it resolves to more than {MAX_VALUE_LEN} bytes, longer than any image reference")]
    TooLong,
}

impl Unresolved {
    /// The first cause, under the `ARG`s whose defaults name one another.
    fn root(self) -> Unresolved {
        match self {
            Unresolved::ArgDefault { why, .. } => *why,
            other => other,
        }
    }
}

/// Resolves the variables of `text`, or says why it cannot be resolved.
pub(super) fn expand(text: &str, vars: &Vars, dialect: Dialect) -> Result<String, Unresolved> {
    expand_counting(text, vars, dialect).0
}

/// [`expand`], and how many steps it took: one per character read, in the brace matching
/// and in the resolution.
fn expand_counting(
    text: &str,
    vars: &Vars,
    dialect: Dialect,
) -> (Result<String, Unresolved>, usize) {
    let chars: Vec<char> = text.chars().collect();
    let mut expansion = Expansion {
        closes: closing_braces(&chars),
        vars,
        dialect,
        out: String::new(),
        steps: chars.len(),
    };
    let result = expansion.word(&chars, 0..chars.len(), 0);
    (result.map(|()| expansion.out), expansion.steps)
}

/// For each `${` of a text, the index of the `}` that closes it. Every `${` opens, even
/// after an escape, and every `}` closes the latest one still open, as compose-go's
/// `getFirstBraceClosingIndex` and berth have always matched them. One pass, with a stack.
fn closing_braces(chars: &[char]) -> HashMap<usize, usize> {
    let mut open = Vec::new();
    let mut closes = HashMap::new();
    for (i, pair) in chars.windows(2).enumerate() {
        match pair {
            ['$', '{'] => open.push(i),
            ['}', _] => {
                if let Some(start) = open.pop() {
                    closes.insert(start, i);
                }
            }
            _ => {}
        }
    }
    if chars.last() == Some(&'}')
        && let Some(start) = open.pop()
    {
        closes.insert(start, chars.len() - 1);
    }
    closes
}

/// One resolution of a text: its matched braces, and the value built so far.
struct Expansion<'v> {
    /// See [`closing_braces`].
    closes: HashMap<usize, usize>,
    /// The variables.
    vars: &'v Vars,
    /// How the text writes them.
    dialect: Dialect,
    /// The value, at most [`MAX_VALUE_LEN`] bytes.
    out: String,
    /// See [`expand_counting`].
    steps: usize,
}

impl Expansion<'_> {
    /// Resolves the word of `chars` at `range`, inside `level` `${...}`, onto the value.
    fn word(
        &mut self,
        chars: &[char],
        range: Range<usize>,
        level: usize,
    ) -> Result<(), Unresolved> {
        let Range { mut start, end } = range;
        let at = |i: usize| (i < end).then(|| chars[i]);
        // Inside "...", a Dockerfile's single quotes are text and its escape character
        // escapes only `$`, `"` and itself, as in BuildKit's shell lexer.
        let mut in_double_quotes = false;
        while start < end {
            self.steps += 1;
            let (i, c) = (start, chars[start]);
            match self.dialect {
                Dialect::Dockerfile { escape }
                    if c == escape
                        && at(i + 1).is_some_and(|next| {
                            !in_double_quotes || matches!(next, '$' | '"') || next == escape
                        }) =>
                {
                    push(&mut self.out, chars[i + 1])?;
                    start += 2;
                    continue;
                }
                Dialect::Dockerfile { .. } if c == '"' => {
                    in_double_quotes = !in_double_quotes;
                    start += 1;
                    continue;
                }
                Dialect::Dockerfile { .. } if c == '\'' && !in_double_quotes => {
                    let close = chars[i + 1..end]
                        .iter()
                        .position(|&x| x == '\'')
                        .map_or(end, |p| i + 1 + p);
                    self.steps += close - i;
                    for &quoted in &chars[i + 1..close] {
                        push(&mut self.out, quoted)?;
                    }
                    start = close + 1;
                    continue;
                }
                Dialect::Compose if c == '$' && at(i + 1) == Some('$') => {
                    push(&mut self.out, '$')?;
                    start += 2;
                    continue;
                }
                _ => {}
            }
            if c != '$' {
                push(&mut self.out, c)?;
                start += 1;
                continue;
            }
            if at(i + 1) == Some('{') {
                // A `${` inside this word closes inside it too (see `closing_braces`).
                let Some(&close) = self.closes.get(&i).filter(|&&close| close < end) else {
                    return Err(Unresolved::NotClosed {
                        text: quoted(&chars[i..end]),
                    });
                };
                self.braced(chars, i + 2..close, level + 1)?;
                start = close + 1;
                continue;
            }
            let name_len = chars[i + 1..end]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count();
            if name_len == 0 || chars[i + 1].is_ascii_digit() {
                push(&mut self.out, '$')?;
                start += 1;
                continue;
            }
            let name: String = chars[i + 1..i + 1 + name_len].iter().collect();
            self.steps += name_len;
            let vars = self.vars;
            match vars.get(&name) {
                Some(Var::Value(v)) => push_str(&mut self.out, v)?,
                other => return Err(unresolved(&name, other, self.dialect)),
            }
            start += 1 + name_len;
        }
        Ok(())
    }

    /// Resolves the body of `${...}` (at `body`, the `level`th nested) onto the value:
    /// `NAME`, `NAME:-default`, `NAME-default`, `NAME:+alt`, `NAME+alt`; `NAME:?error` and
    /// `NAME?error` need a value from outside the file.
    fn braced(
        &mut self,
        text: &[char],
        body: Range<usize>,
        level: usize,
    ) -> Result<(), Unresolved> {
        if level > MAX_NESTING {
            return Err(Unresolved::TooDeep);
        }
        let chars = &text[body.clone()];
        let name_len = chars
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .count();
        self.steps += name_len;
        let shown = || quoted(chars);
        if name_len == 0 || chars[0].is_ascii_digit() {
            return Err(Unresolved::NotAVariable { body: shown() });
        }
        let name: String = chars[..name_len].iter().collect();
        let op = &chars[name_len..];
        let rest = |skip: usize| body.start + name_len + skip..body.end;
        let vars = self.vars;
        let value = vars.get(&name);
        let known = |allow_empty: bool| match value {
            Some(Var::Value(v)) if allow_empty || !v.is_empty() => Some(v),
            _ => None,
        };
        let (skip, allow_empty, default) = match op {
            [] => {
                return match known(true) {
                    Some(v) => push_str(&mut self.out, v),
                    None => Err(unresolved(&name, value, self.dialect)),
                };
            }
            [':', '-', ..] => (2, false, true),
            ['-', ..] => (1, true, true),
            [':', '+', ..] => (2, false, false),
            ['+', ..] => (1, true, false),
            [':', '?', ..] | ['?', ..] => {
                return Err(Unresolved::Required {
                    body: shown(),
                    name: quoted(&chars[..name_len]),
                    dialect: self.dialect,
                });
            }
            _ => return Err(Unresolved::UnknownForm { body: shown() }),
        };
        if default {
            return match known(allow_empty) {
                Some(v) => push_str(&mut self.out, v),
                None => self.word(text, rest(skip), level),
            };
        }
        match value {
            Some(Var::Value(_)) if known(allow_empty).is_some() => {
                self.word(text, rest(skip), level)
            }
            Some(Var::Value(_)) => Ok(()),
            _ => Err(Unresolved::DependsOnWhetherSet {
                body: shown(),
                name: quoted(&chars[..name_len]),
                dialect: self.dialect,
            }),
        }
    }
}

/// Adds a character to a value, within [`MAX_VALUE_LEN`].
fn push(out: &mut String, c: char) -> Result<(), Unresolved> {
    if out.len() + c.len_utf8() > MAX_VALUE_LEN {
        return Err(Unresolved::TooLong);
    }
    out.push(c);
    Ok(())
}

/// Adds text to a value, within [`MAX_VALUE_LEN`].
fn push_str(out: &mut String, text: &str) -> Result<(), Unresolved> {
    if out.len() + text.len() > MAX_VALUE_LEN {
        return Err(Unresolved::TooLong);
    }
    out.push_str(text);
    Ok(())
}

/// Characters as a message quotes them: on one line, at most [`super::MAX_QUOTED`].
fn quoted(chars: &[char]) -> String {
    super::plain(chars.iter().copied(), super::MAX_QUOTED)
}

/// Where a value missing from the file would come from.
fn outside(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Compose => "only the environment could say (berth does not read it)",
        Dialect::Dockerfile { .. } => "only a --build-arg could say",
    }
}

/// Why a variable has no value.
fn unresolved(name: &str, var: Option<&Var>, dialect: Dialect) -> Unresolved {
    let name = super::plain(name.chars(), super::MAX_QUOTED);
    match (dialect, var) {
        (Dialect::Compose, _) => Unresolved::NoDefaultInFile { name },
        (Dialect::Dockerfile { .. }, Some(Var::NoDefault)) => {
            Unresolved::ArgWithoutDefault { name }
        }
        (Dialect::Dockerfile { .. }, Some(Var::Unresolved(why))) => Unresolved::ArgDefault {
            name,
            why: Box::new(why.clone().root()),
        },
        (Dialect::Dockerfile { .. }, _) => Unresolved::NotAnArg { name },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = |s: &str| e(s).unwrap_err().to_string();
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

    /// compose-go's `template` cases (`template_test.go`), as berth resolves them: with no
    /// environment, a variable has a value only through a default written beside it.
    #[test]
    fn compose_go_template_cases() {
        let resolves = [
            // Escapes: `$$` is a `$`, even before a name or a brace (TestEscaped).
            ("$${foo}", "${foo}"),
            ("$$FOO", "$FOO"),
            ("a$$$$b", "a$$b"),
            // Defaults, with and without the colon, for an unset variable.
            ("${UNSET:-default}", "default"),
            ("${UNSET-default}", "default"),
            ("ok ${UNSET:-}", "ok "),
            ("${UNSET-}", ""),
            // Defaults holding what would end a plain name: colons, slashes, dashes.
            (
                "${REG:-registry.example.com:5000/team}/app",
                "registry.example.com:5000/team/app",
            ),
            ("${TAG:-1.2-alpine}", "1.2-alpine"),
            // Nested defaults, to any depth (TestNestedDefault...).
            ("${A:-${B:-c}}", "c"),
            ("${A:-${B:-${C:-deep}}}/x", "deep/x"),
            ("${A:-pre-${B:-mid}-post}", "pre-mid-post"),
            // A default's `$$` is an escape too.
            ("${A:-$$x}", "$x"),
            // A `}` after the reference is text.
            ("${UNSET:-a}}", "a}"),
            // `$` before what cannot start a name stays as written (berth is lenient here:
            // compose-go rejects a lone `$`; the image name check then says what is wrong).
            ("a$-b", "a$-b"),
            ("$1", "$1"),
        ];
        for (template, expected) in resolves {
            let got = expand(template, &Vars::new(), Dialect::Compose);
            assert_eq!(got.as_deref(), Ok(expected), "{template}");
        }
        let rejects = [
            // Unset without a default: only the environment could say.
            ("$FOO", "${FOO} has no default in the file"),
            ("${FOO}", "${FOO} has no default in the file"),
            ("${A:-${B}}", "${B} has no default in the file"),
            // Required (TestMandatoryVariable...): needs the environment.
            ("${FOO:?err}", "\"${FOO:?err}\" requires FOO to be set"),
            ("${FOO?err}", "\"${FOO?err}\" requires FOO to be set"),
            ("${FOO:?}", "\"${FOO:?}\" requires FOO to be set"),
            // Alternatives (TestPresentVariable...): depend on whether it is set.
            (
                "${FOO:+alt}",
                "\"${FOO:+alt}\" depends on whether FOO is set",
            ),
            ("${FOO+alt}", "\"${FOO+alt}\" depends on whether FOO is set"),
            // Invalid templates (TestInvalid).
            ("${", "\"${\" is not closed by a '}'"),
            ("${FOO:-x", "\"${FOO:-x\" is not closed by a '}'"),
            ("${A:-${B:-c}", "\"${A:-${B:-c}\" is not closed by a '}'"),
            ("${}", "\"${}\" is not a variable reference"),
            ("${ }", "\"${ }\" is not a variable reference"),
            ("${ foo}", "\"${ foo}\" is not a variable reference"),
            ("${1a}", "\"${1a}\" is not a variable reference"),
            ("${foo }", "\"${foo }\" uses a form berth does not resolve"),
            ("${foo!}", "\"${foo!}\" uses a form berth does not resolve"),
        ];
        for (template, expected) in rejects {
            let got = expand(template, &Vars::new(), Dialect::Compose);
            let why = got.expect_err(template).to_string();
            assert!(why.starts_with(expected), "{template}: {why}");
        }
    }

    /// BuildKit's word expansion (`frontend/dockerfile/shell`, `lex_test.go` and
    /// `envVarTest`), with the values an `ARG` before the first `FROM` gives.
    #[test]
    fn buildkit_word_expansion_cases() {
        let vars: Vars = [
            ("PWD", Some("/home")),
            ("EMPTY", Some("")),
            ("TAG", Some("1.2")),
            ("NODEF", None),
        ]
        .into_iter()
        .map(|(k, v)| {
            let var = v.map_or(Var::NoDefault, |v| Var::Value(v.to_string()));
            (k.to_string(), var)
        })
        .collect();
        let backslash = Dialect::Dockerfile { escape: '\\' };
        let backtick = Dialect::Dockerfile { escape: '`' };
        let resolves = [
            (backslash, "he$PWD", "he/home"),
            (backslash, "he${PWD}", "he/home"),
            (backslash, "he${PWD}x", "he/homex"),
            (backslash, "he\\$PWD", "he$PWD"),
            (backslash, "he\\${PWD}", "he${PWD}"),
            (backslash, "'he$PWD'", "he$PWD"),
            (backslash, "\"he$PWD\"", "he/home"),
            (backslash, "\"he'$PWD'\"", "he'/home'"),
            (backslash, "\"he\\$PWD\"", "he$PWD"),
            (backslash, "\"he\\x\"", "he\\x"),
            (backslash, "he\\x", "hex"),
            (backslash, "he$1x", "he$1x"),
            (backslash, "he$.x", "he$.x"),
            (backslash, "x:${TAG:-d}", "x:1.2"),
            (backslash, "x:${EMPTY:-d}", "x:d"),
            (backslash, "x:${EMPTY-d}", "x:"),
            (backslash, "x:${NODEF:-d}", "x:d"),
            (backslash, "x:${NODEF-d}", "x:d"),
            (backslash, "x:${TAG:+alt}", "x:alt"),
            (backslash, "x:${TAG+alt}", "x:alt"),
            (backslash, "x:${EMPTY:+alt}", "x:"),
            (backslash, "x:${EMPTY+alt}", "x:alt"),
            (backslash, "${UNDECLARED:-${TAG}}", "1.2"),
            // After `# escape=`` ` ``, the backtick escapes and a backslash is text.
            (backtick, "he`$PWD", "he$PWD"),
            (backtick, "c:\\$PWD", "c:\\/home"),
        ];
        for (dialect, word, expected) in resolves {
            let got = expand(word, &vars, dialect);
            assert_eq!(got.as_deref(), Ok(expected), "{word}");
        }
        let rejects = [
            (
                "$NODEF",
                "ARG NODEF has no default (only a --build-arg could set it)",
            ),
            (
                "${NOPE}",
                "${NOPE} is not an ARG with a default before the first FROM",
            ),
            (
                "${NODEF:+x}",
                "\"${NODEF:+x}\" depends on whether NODEF is set, which only a --build-arg could say",
            ),
            (
                "${TAG:?x}",
                "\"${TAG:?x}\" requires TAG to be set, which only a --build-arg could say",
            ),
            ("${PWD", "\"${PWD\" is not closed by a '}'"),
        ];
        for (word, expected) in rejects {
            let got = expand(word, &vars, backslash);
            assert_eq!(got.expect_err(word).to_string(), expected, "{word}");
        }
    }

    /// `${A:-` `depth` times around `x`.
    fn nested(depth: usize) -> String {
        format!("{}x{}", "${A:-".repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_resolves_and_past_it_is_refused() {
        for dialect in [Dialect::Compose, Dialect::Dockerfile { escape: '\\' }] {
            let e = |s: &str| expand(s, &Vars::new(), dialect);
            assert_eq!(e(&nested(MAX_NESTING)).as_deref(), Ok("x"));
            assert_eq!(e(&nested(MAX_NESTING + 1)), Err(Unresolved::TooDeep));
            // Depth is counted where the text is resolved: a default not taken may nest
            // deeper.
            let vars: Vars = [("SET".to_string(), Var::Value("v".into()))].into();
            let untaken = format!("${{SET:-{}}}", nested(MAX_NESTING + 10));
            assert_eq!(expand(&untaken, &vars, dialect).as_deref(), Ok("v"));
        }
        assert_eq!(
            Unresolved::TooDeep.to_string(),
            "its ${...} nest deeper than 32 levels, more than berth resolves; write it with \
             fewer nested defaults"
        );
    }

    /// The input that made `berth pull` abort: 60,000 nested defaults (360 KB). Each
    /// character is read a bounded number of times, however deep the nesting, balanced or
    /// not; what the message quotes is bounded too.
    #[test]
    fn deep_nesting_takes_linear_steps() {
        let deep = nested(60_000);
        let unclosed = "${A:-".repeat(60_000);
        let vars: Vars = [("SET".to_string(), Var::Value("v".into()))].into();
        let untaken = format!("${{SET:-{deep}}}");
        for dialect in [Dialect::Compose, Dialect::Dockerfile { escape: '\\' }] {
            let (got, steps) = expand_counting(&deep, &Vars::new(), dialect);
            assert_eq!(got, Err(Unresolved::TooDeep));
            assert!(
                steps <= 3 * deep.len(),
                "{steps} steps for {} bytes",
                deep.len()
            );

            let (got, steps) = expand_counting(&unclosed, &Vars::new(), dialect);
            let why = got.unwrap_err().to_string();
            assert!(why.ends_with("…\" is not closed by a '}'"), "{why}");
            assert!(why.chars().count() < 150, "{why}");
            assert!(steps <= 3 * unclosed.len(), "{steps} steps");

            let (got, steps) = expand_counting(&untaken, &vars, dialect);
            assert_eq!(got.as_deref(), Ok("v"));
            assert!(steps <= 3 * untaken.len(), "{steps} steps");
        }
    }

    #[test]
    fn values_past_the_limit_are_refused() {
        let d = Dialect::Dockerfile { escape: '\\' };
        let half = "a".repeat(MAX_VALUE_LEN / 2);
        let vars: Vars = [("HALF".to_string(), Var::Value(half.clone()))].into();
        assert_eq!(expand("$HALF$HALF", &vars, d), Ok(format!("{half}{half}")));
        assert_eq!(expand("$HALF$HALF.", &vars, d), Err(Unresolved::TooLong));
        assert_eq!(
            expand("${X:-$HALF}${X:-$HALF}x", &vars, d),
            Err(Unresolved::TooLong)
        );
        // A hundred thousand references stop at the bound: the work is the text's, plus
        // at most the bound copied.
        let many = "$HALF".repeat(100_000);
        let (got, steps) = expand_counting(&many, &vars, d);
        assert_eq!(got, Err(Unresolved::TooLong));
        assert!(steps <= 3 * many.len(), "{steps} steps");
        let text = "x".repeat(MAX_VALUE_LEN + 1);
        assert_eq!(
            expand(&text, &vars, Dialect::Compose),
            Err(Unresolved::TooLong)
        );
        assert_eq!(
            Unresolved::TooLong.to_string(),
            "it resolves to more than 2048 bytes, longer than any image reference"
        );
    }

    #[test]
    fn messages_quote_at_most_a_hundred_characters() {
        let body = format!("{}!", "A".repeat(1_000));
        let why = expand(&format!("${{{body}}}"), &Vars::new(), Dialect::Compose)
            .unwrap_err()
            .to_string();
        let expected = format!(
            "\"${{{}…}}\" uses a form",
            "A".repeat(super::super::MAX_QUOTED)
        );
        assert!(why.starts_with(&expected), "{why}");
    }

    #[test]
    fn messages_quote_long_names_short() {
        let name = "N".repeat(1_000);
        let short = format!("{}…", "N".repeat(super::super::MAX_QUOTED));
        let d = Dialect::Dockerfile { escape: '\\' };
        let why =
            |text: &str, dialect| expand(text, &Vars::new(), dialect).unwrap_err().to_string();
        assert_eq!(
            why(&format!("${name}"), Dialect::Compose),
            format!(
                "${{{short}}} has no default in the file, and berth does not read the environment"
            )
        );
        assert_eq!(
            why(&format!("${{{name}}}"), d),
            format!("${{{short}}} is not an ARG with a default before the first FROM")
        );
        for op in [":?", ":+"] {
            let got = why(&format!("${{{name}{op}x}}"), d);
            assert!(got.contains(&format!(" {short} ")), "{got}");
            assert!(got.len() < 400, "{got}");
        }
    }

    #[test]
    fn messages_stay_on_one_line() {
        let why = expand("${A\n!}", &Vars::new(), Dialect::Compose)
            .unwrap_err()
            .to_string();
        assert!(why.starts_with("\"${A\\n!}\" uses a form"), "{why}");
    }
}
