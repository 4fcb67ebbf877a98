//! The `${...}` variables of Compose files and Dockerfiles, resolved from values written in
//! the files only. Hand-written by necessity: no crate implements Compose's interpolation
//! (compose-go's `template` package) or BuildKit's word expansion (its `shell` lexer), and the
//! two differ (`$$` in Compose, the escape character and quotes in a Dockerfile).

use std::collections::HashMap;

/// How a file writes variables.
#[derive(Clone, Copy, Debug)]
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
pub(super) type Vars = HashMap<String, Option<String>>;

/// Resolves the variables of `text`, or says which one cannot be resolved.
pub(super) fn expand(text: &str, vars: &Vars, dialect: Dialect) -> Result<String, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    // Inside "...", a Dockerfile's single quotes are text and its escape character escapes
    // only `$`, `"` and itself, as in BuildKit's shell lexer.
    let mut in_double_quotes = false;
    while i < chars.len() {
        let c = chars[i];
        match dialect {
            Dialect::Dockerfile { escape }
                if c == escape
                    && chars.get(i + 1).is_some_and(|&next| {
                        !in_double_quotes || matches!(next, '$' | '"') || next == escape
                    }) =>
            {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            Dialect::Dockerfile { .. } if c == '"' => {
                in_double_quotes = !in_double_quotes;
                i += 1;
                continue;
            }
            Dialect::Dockerfile { .. } if c == '\'' && !in_double_quotes => {
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
            let why = got.expect_err(template);
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
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
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
            assert_eq!(got.expect_err(word), expected, "{word}");
        }
    }
}
