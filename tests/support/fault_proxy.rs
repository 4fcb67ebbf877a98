//! A loopback HTTP proxy in front of a real registry that injects the faults a real
//! registry does not produce on demand (a body reset mid-way, a 429 with Retry-After, a
//! 403), passes everything else through, and records every request. Built on hyper.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};

/// What to do with one request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward it to the registry.
    Pass,
    /// Answer it here: status, headers, body.
    Respond(u16, Vec<(String, String)>, String),
    /// Forward it, send the answer's headers and half its body, then cut the connection.
    ResetBody,
    /// Forward it with this `Authorization` when it has none: a login held for its
    /// callers (as a pull-through cache holds the origin's).
    PassWithLogin(String),
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET`, `HEAD`...
    pub method: String,
    /// The path.
    pub path: String,
    /// Its `User-Agent` (berth's requests say `berth/...`, the engine's `docker/...`).
    pub agent: String,
    /// The user its basic `Authorization` names (never the password), if any.
    pub user: Option<String>,
    /// Whether it had an `Authorization` header of any kind.
    pub authorized: bool,
    /// When.
    pub at: Instant,
}

/// The proxy; it serves until dropped.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: super::http::Server,
}

type Rule = dyn Fn(&str, &str) -> Fault + Send + Sync;

impl FaultProxy {
    /// Starts proxying to `upstream` (`127.0.0.1:PORT`), asking `rule(method, path)` what
    /// to do with each request.
    pub fn start(
        upstream: &str,
        rule: impl Fn(&str, &str) -> Fault + Send + Sync + 'static,
    ) -> FaultProxy {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (seen2, upstream) = (seen.clone(), upstream.to_string());
        let rule: Arc<Rule> = Arc::new(rule);
        berth::tls::install_crypto_provider();
        let client = reqwest::Client::new();
        let server = super::http::serve(move |req| {
            handle(
                req,
                seen2.clone(),
                upstream.clone(),
                rule.clone(),
                client.clone(),
            )
        });
        FaultProxy {
            addr: server.addr.clone(),
            seen,
            _server: server,
        }
    }

    /// An authorising proxy in front of `upstream` that answers every manifest request of
    /// `repository` with 403 and the registry error `DENIED: message`, and passes the rest.
    pub fn denying(upstream: &str, repository: &str, message: &str) -> FaultProxy {
        let prefix = format!("/v2/{repository}/manifests/");
        let body =
            serde_json::json!({"errors": [{"code": "DENIED", "message": message}]}).to_string();
        FaultProxy::start(upstream, move |method, path| {
            if path.starts_with(&prefix) && (method == "GET" || method == "HEAD") {
                Fault::Respond(
                    403,
                    vec![("content-type".into(), "application/json".into())],
                    body.clone(),
                )
            } else {
                Fault::Pass
            }
        })
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests whose path contains `part`.
    pub fn seen_of(&self, part: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.contains(part))
            .collect()
    }
}

use super::http::Body;

async fn handle(
    req: hyper::Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    upstream: String,
    rule: Arc<Rule>,
    client: reqwest::Client,
) -> Result<hyper::Response<Body>, Infallible> {
    let method = req.method().as_str().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let agent = req
        .headers()
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let user = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(b).ok()
        })
        .and_then(|plain| {
            let plain = String::from_utf8_lossy(&plain).into_owned();
            plain.split_once(':').map(|(u, _)| u.to_string())
        });
    let authorized = req.headers().contains_key(hyper::header::AUTHORIZATION);
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        agent,
        user,
        authorized,
        at: Instant::now(),
    });
    let fault = rule(&method, &path);
    if let Fault::Respond(status, headers, body) = fault {
        let mut r = hyper::Response::builder().status(status);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        let body = Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed();
        return Ok(r.body(body).unwrap());
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut forward = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("http://{upstream}{path}"),
    );
    for (k, v) in parts.headers.iter() {
        if k != hyper::header::HOST {
            forward = forward.header(k.as_str(), v.as_bytes());
        }
    }
    if let Fault::PassWithLogin(authorization) = &fault
        && !parts.headers.contains_key(hyper::header::AUTHORIZATION)
    {
        forward = forward.header(
            hyper::header::AUTHORIZATION.as_str(),
            authorization.as_str(),
        );
    }
    let answer = match forward.body(body).send().await {
        Ok(a) => a,
        Err(_) => {
            let body = Full::new(Bytes::new()).map_err(|e| match e {}).boxed();
            return Ok(hyper::Response::builder().status(502).body(body).unwrap());
        }
    };
    let mut r = hyper::Response::builder().status(answer.status().as_u16());
    for (k, v) in answer.headers() {
        r = r.header(k.as_str(), v.as_bytes());
    }
    let length = answer.content_length().unwrap_or(0);
    let reset = matches!(fault, Fault::ResetBody);
    let chunks =
        futures_util::stream::unfold((answer, 0u64), move |(mut answer, sent)| async move {
            if reset && sent >= length / 2 {
                return Some((
                    Err(std::io::Error::other("reset by the fault proxy")),
                    (answer, sent),
                ));
            }
            match answer.chunk().await {
                Ok(Some(c)) => {
                    let c = if reset {
                        c.slice(..((length / 2 + 1 - sent) as usize).min(c.len()))
                    } else {
                        c
                    };
                    let n = c.len() as u64;
                    Some((Ok(Frame::data(c)), (answer, sent + n)))
                }
                _ => None,
            }
        });
    Ok(r.body(BodyExt::boxed(StreamBody::new(chunks))).unwrap())
}
