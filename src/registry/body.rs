//! Reading what a server sends, within a limit: every response body berth reads (a
//! registry's manifest or error, a token service's answer, ECR's answer) goes through
//! [`read`], chunk by chunk, and stops at the limit with an error naming the server and the
//! limit, so that a server cannot make berth hold more than that in memory. A declared
//! `Content-Length` above the limit is refused before anything is read.
//!
//! Headers need no limit of berth's: hyper, under reqwest (HTTP/1.1 only: berth builds
//! reqwest without HTTP/2), refuses a response head of more than 100 headers or larger than
//! its read buffer (8 KiB + 400 KiB), and every client berth makes has a request timeout,
//! so a server that sends its head or its body slowly is given up too.

/// The largest manifest berth reads: 4 MiB, distribution's own limit on a manifest it
/// accepts (`registry/handlers`' `maxManifestBodySize`).
pub const MANIFEST_LIMIT: usize = 4 << 20;

/// The largest token answer or registry error body berth reads: 64 KiB (a token is a few
/// KiB; an error is a few lines of JSON).
pub const SMALL_LIMIT: usize = 64 << 10;

/// The largest ECR answer berth reads: 64 KiB (GetAuthorizationToken answers about 3 KiB).
pub const ECR_LIMIT: usize = 64 << 10;

/// Why a body was not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More than the limit: said before reading when `Content-Length` declares it.
    #[error(
        "{server} sent {what} larger than {}, the most berth reads of one; it was not read",
        human(*.limit)
    )]
    TooLarge {
        /// The server (`host[:port]`).
        server: String,
        /// What was being read ("a token answer").
        what: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body stopped before its end (a reset, a timeout).
    #[error("{server} stopped sending {what}: {reason}")]
    Broken {
        /// The server.
        server: String,
        /// What was being read.
        what: &'static str,
        /// Why, in words.
        reason: String,
    },
}

/// Reads `response`'s body, at most `limit` bytes of it; `what` names it in errors ("a
/// token answer").
pub async fn read(
    mut response: reqwest::Response,
    limit: usize,
    what: &'static str,
) -> Result<Vec<u8>, BodyError> {
    let server = server_of(response.url());
    let too_large = |server: String| BodyError::TooLarge {
        server,
        what,
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large(server));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large(server));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(BodyError::Broken {
                    server,
                    what,
                    reason: crate::tls::describe_error(&e),
                });
            }
        }
    }
}

/// `host[:port]` of a URL, as messages name a server.
pub fn server_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// A limit in words: `4 MiB`, `64 KiB`.
fn human(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_in_words() {
        assert_eq!(human(MANIFEST_LIMIT), "4 MiB");
        assert_eq!(human(SMALL_LIMIT), "64 KiB");
        assert_eq!(human(1000), "1000 bytes");
        let e = BodyError::TooLarge {
            server: "127.0.0.1:5000".into(),
            what: "a token answer",
            limit: SMALL_LIMIT,
        };
        assert_eq!(
            e.to_string(),
            "127.0.0.1:5000 sent a token answer larger than 64 KiB, the most berth reads of one; it was not read"
        );
    }
}
