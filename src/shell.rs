//! Shell-style values: the one reading of a value quoted the way a shell script writes it.
//!
//! The `NAME=value` files berth reads are written the way shell scripts write them: the
//! feature's options file (by `berth feature-options`, which `install.sh` runs), GitHub
//! Codespaces' `.env-secrets`, and the test bed's `export` lines. Their values are bare,
//! 'single-quoted' (with `'\''` for a quote, as [`quote`] and the test bed write them) or
//! "double-quoted", and the quoted and bare pieces of one value join up, as in a shell.
//! Nothing is expanded: `$HOME` stays `$HOME`, since no shell is involved.

/// A value with its quotes removed: in single quotes every character stands for itself; in
/// double quotes and outside quotes a backslash takes the next character as it is. An
/// unclosed quote runs to the end of the value, and a trailing backslash is dropped.
pub fn unquote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => out.extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => out.extend(chars.next()),
                        c => out.push(c),
                    }
                }
            }
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// `value` in single quotes, a quote in it written `'\''`: how the options file is written,
/// read back by [`unquote`].
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_shell_scripts_write_them() {
        let cases = [
            ("abc", "abc"),
            ("", ""),
            ("''", ""),
            ("\"\"", ""),
            ("'a b'", "a b"),
            (r"'it'\''s'", "it's"),
            (r#""a \"b\"""#, r#"a "b""#),
            (r#""a\\b""#, r"a\b"),
            (r"a\ b", "a b"),
            (r#"'a'"b"c"#, "abc"),
            ("'$HOME'", "$HOME"),
            ("\"$HOME\"", "$HOME"),
            ("'a\"b'", "a\"b"),
            ("\"a'b\"", "a'b"),
            (r"'a\b'", r"a\b"),
            // The test bed's password of awkward characters, as sh_quote writes it.
            (
                r#"'pässwörd:"quoted"\back\slash€🔑'"#,
                r#"pässwörd:"quoted"\back\slash€🔑"#,
            ),
            // Lenient ends: an unclosed quote runs to the end; a trailing backslash goes.
            ("'abc", "abc"),
            ("\"abc", "abc"),
            (r"abc\", "abc"),
            // Base64, as Codespaces writes secrets: bare or quoted, unchanged.
            ("cGFzcw==", "cGFzcw=="),
            ("'cGFzcw=='", "cGFzcw=="),
        ];
        for (written, value) in cases {
            assert_eq!(unquote(written), value, "{written:?}");
        }
    }

    #[test]
    fn quoted_values_round_trip() {
        for value in [
            "",
            "a",
            "'",
            "''",
            "a'b'c",
            r#"\"$`'"#,
            "ghcr.io/a:1, x.io/b",
            "é'🔑",
        ] {
            assert_eq!(unquote(&quote(value)), value, "{value:?}");
        }
    }
}
