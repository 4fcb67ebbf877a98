//! What berth's errors share: their causes said in one line.
//!
//! Errors are typed per module (`thiserror`), keep their causes as sources, and are turned
//! into text only where they are said: in a log line, a hook's output or the command line.

/// An error and its causes, outermost first: `cannot lock /x: Permission denied (os error 13)`.
/// A cause whose text its error already says (a message that quotes its cause) is not
/// repeated.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot lock {0}")]
    struct Lock(&'static str, #[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("worker failed")]
    struct Worker(#[source] Lock);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read /c: {0}")]
    struct Quoting(#[source] std::io::Error);

    #[test]
    fn causes_follow_outermost_first() {
        let e = Worker(Lock("/x", std::io::Error::other("disk gone")));
        assert_eq!(chain(&e), "worker failed: cannot lock /x: disk gone");
    }

    #[test]
    fn a_cause_already_said_is_not_repeated() {
        let e = Quoting(std::io::Error::other("disk gone"));
        assert_eq!(chain(&e), "cannot read /c: disk gone");
    }
}
