//! Asking a registry itself about an image, before the engine pulls it.
//!
//! The engine does not pass on what a registry says beyond its message: not a `429`'s
//! `Retry-After`, not whether a refusal was about the credentials or the image. So berth
//! asks first, with one `HEAD` of the image's manifest (which Docker Hub does not count as
//! a pull): the answer tells the digest (so that an image the engine already has costs no
//! pull), a permanent refusal (`401`, `403`, `404`) that no retry mends, how long to wait
//! (`429` with `Retry-After`), or a registry that is down. Authentication follows the
//! distribution specification: the registry's `/v2/` (asked once per process and host,
//! however many images are probed at once) names its scheme in `WWW-Authenticate` (parsed
//! by the `http-auth` crate); `Basic` is answered with the login, `Bearer` by asking the
//! named token service for a pull token with the login; then each image costs one manifest
//! request. Registries the engine treats as insecure (loopback, and those its configuration
//! lists) are asked over plain HTTP from the start; every other registry over HTTPS only,
//! never over plain HTTP after TLS failed. The login goes only to a token service the
//! realm rule allows ([`super::realm`]); bodies are read within limits ([`super::body`]).
//!
//! For an image the engine will pull, berth then reads what the name stands for
//! ([`RegistryClient::describe`], with the probe's authorization): the manifest by the
//! digest the `HEAD` gave, and for an index the image of the platform wanted, each checked
//! against its digest ([`super::manifest`]): the platforms the name has, and every layer's
//! size.

use std::time::{Duration, SystemTime};

use base64::Engine as _;

use super::body::{self, BodyError};
use super::manifest::{self, Layer, Manifest};
use super::realm::{self, RealmRefused};
use crate::image::ImageRef;
use crate::inject::Login;
use crate::platform::Platform;

/// The manifest types berth accepts, as the engine asks for them.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// What the registry said about an image.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The manifest's digest, when the registry sent it.
    pub digest: Option<String>,
    /// How to ask the same registry more of the same repository ([`RegistryClient::describe`]).
    access: Access,
}

/// Where a probed repository's manifests and blobs are, and the `Authorization` that
/// opened it (a token or the login itself: a secret).
#[derive(Clone, Debug)]
struct Access {
    /// `http(s)://host/v2/PATH`.
    repository: String,
    authorization: Option<crate::secret::Secret>,
}

/// What the registry says of the image berth is about to pull, for one platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// Whether the name stands for an index (one image per platform).
    pub index: bool,
    /// The platforms it has images for: an index's entries; a single image's own when its
    /// configuration was read; empty when not known.
    pub platforms: Vec<Platform>,
    /// The image for the platform wanted (an index's entry for it, or the single image),
    /// with its layers; `None` when an index has no image for it.
    pub image: Option<Chosen>,
}

/// The image of a [`Description`] that the engine will pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// Its platform, when known.
    pub platform: Option<Platform>,
    /// Its layers, with their sizes.
    pub layers: Vec<Layer>,
}

/// Why the registry did not describe the image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The credentials were refused (or there were none and the registry wants some).
    #[error("unauthorized: the registry refused the credentials (HTTP {status})")]
    Unauthorized {
        /// 401, or the token service's status.
        status: u16,
    },
    /// The credentials are valid but may not pull this repository.
    #[error("denied: the registry denied access to the repository (HTTP 403)")]
    Denied,
    /// No such repository, tag or digest.
    #[error("manifest unknown: the registry has no such repository, tag or digest (HTTP 404)")]
    NotFound,
    /// Too many requests; wait this long before asking again.
    #[error("the registry asks to slow down (HTTP 429{})", retry_note(.retry_after))]
    TooMany {
        /// What `Retry-After` said.
        retry_after: Option<Duration>,
    },
    /// The registry failed on its side.
    #[error("the registry failed (HTTP {status})")]
    Server {
        /// The status.
        status: u16,
    },
    /// No answer.
    #[error("cannot reach the registry: {reason}")]
    Unreachable {
        /// Why.
        reason: String,
    },
    /// An answer berth does not understand; the engine may still.
    #[error("the registry answered HTTP {status}, which berth does not act on")]
    Unexpected {
        /// The status.
        status: u16,
    },
    /// The registry names a token service that may not have the login.
    #[error(transparent)]
    RealmRefused(#[from] RealmRefused),
    /// An answer larger than berth reads, or cut short.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// A manifest or configuration that is not what its digest says.
    #[error("the registry sent a {what} for {digest} that does not match that digest")]
    Mismatch {
        /// What was read ("manifest", "image configuration").
        what: &'static str,
        /// The digest it was asked by.
        digest: String,
    },
}

fn retry_note(after: &Option<Duration>) -> String {
    after
        .map(|d| format!(", retry after {} s", d.as_secs()))
        .unwrap_or_default()
}

impl ProbeError {
    /// Whether asking again (later) may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProbeError::TooMany { .. } | ProbeError::Server { .. } | ProbeError::Unreachable { .. }
        )
    }

    /// Whether the pull must stop here: a refusal that is about the image or the
    /// credentials (the engine would fail the same way), or a token service that may not
    /// have the login (the engine, given the login, would send it there).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ProbeError::Unauthorized { .. }
                | ProbeError::Denied
                | ProbeError::NotFound
                | ProbeError::RealmRefused(_)
        )
    }
}

/// How a registry wants to be asked, as its `/v2/` said.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scheme {
    /// No credentials needed.
    Open,
    /// The `WWW-Authenticate` challenge it sends.
    Challenge(String),
}

/// Where a registry answers and how it wants to be asked, as its `/v2/` said.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    /// `https://host`, or `http://host` for a registry the engine treats as insecure.
    base: String,
    /// Whether `base` is plain HTTP.
    plain_http: bool,
    /// Its authentication.
    scheme: Scheme,
}

/// The endpoints asked so far, by host and whether it is asked over plain HTTP.
type Endpoints = std::sync::Arc<
    std::sync::Mutex<
        std::collections::HashMap<(String, bool), std::sync::Arc<tokio::sync::OnceCell<Endpoint>>>,
    >,
>;

/// A client for registry APIs.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    /// Each registry's endpoint, by host: asked once per process, by the first probe
    /// (the others wait for its answer), so that each image then costs one manifest
    /// request. A failed question is not kept: the next probe asks again.
    endpoints: Endpoints,
}

impl RegistryClient {
    /// A client with bounded waits (10 s to connect, 30 s a request). It follows
    /// redirects as reqwest does, which drops `Authorization` whenever the scheme, host or
    /// port changes, so a redirect cannot carry the login (or a token) elsewhere or down
    /// to plain HTTP.
    pub fn new() -> Result<RegistryClient, String> {
        let http = crate::tls::http_client(Duration::from_secs(10), Duration::from_secs(30))?;
        Ok(RegistryClient {
            http,
            endpoints: Default::default(),
        })
    }

    /// Asks for `image`'s manifest (a `HEAD`), with `login` when there is one; `insecure`
    /// when the engine would use plain HTTP for this registry ([`insecure`]).
    pub async fn probe(
        &self,
        image: &ImageRef,
        login: Option<&Login>,
        insecure: bool,
    ) -> Result<Probe, ProbeError> {
        let host = image.server().api_host().to_string();
        let endpoint = self.endpoint(&host, insecure).await?;
        let url = format!(
            "{}/v2/{}/manifests/{}",
            endpoint.base,
            image.path(),
            image.pull_tag()
        );
        let head = || self.http.head(&url).header(reqwest::header::ACCEPT, ACCEPT);
        let mut access = Access {
            repository: format!("{}/v2/{}", endpoint.base, image.path()),
            authorization: None,
        };
        let challenge = match &endpoint.scheme {
            Scheme::Open => return answer(send(head()).await?, access),
            Scheme::Challenge(c) => c,
        };
        let plain_http = endpoint.plain_http;
        let Some(authorization) = self.authorize(challenge, image, login, plain_http).await? else {
            return Err(ProbeError::Unauthorized { status: 401 });
        };
        let response = send(head().header(reqwest::header::AUTHORIZATION, &authorization)).await?;
        access.authorization = Some(authorization.into());
        answer(response, access)
    }

    /// What the registry's manifests say of a probed image, for the platform `wanted`:
    /// the manifest (by the digest the probe gave, else by its tag), and for an index the
    /// entry for that platform's manifest. A single image's configuration, which names its
    /// platform, is read only with `read_config`. Everything read by digest is checked
    /// against it. Costs one to three requests; a registry that counts manifest requests
    /// as pulls (Docker Hub) counts them.
    pub async fn describe(
        &self,
        probe: &Probe,
        image: &ImageRef,
        wanted: Option<&Platform>,
        read_config: bool,
    ) -> Result<Description, ProbeError> {
        let reference = probe.digest.clone().unwrap_or_else(|| image.pull_tag());
        let first = self.manifest(&probe.access, &reference).await?;
        let (index, platforms, chosen) = match first {
            Manifest::Index(entries) => {
                let platforms: Vec<Platform> = entries.iter().map(|e| e.platform.clone()).collect();
                let entry = wanted.and_then(|w| entries.iter().find(|e| w.matches(&e.platform)));
                let chosen = match entry {
                    Some(e) => match self.manifest(&probe.access, &e.digest).await? {
                        Manifest::Image { layers, .. } => Some(Chosen {
                            platform: Some(e.platform.clone()),
                            layers,
                        }),
                        _ => None,
                    },
                    None => None,
                };
                (true, platforms, chosen)
            }
            Manifest::Image { config, layers } => {
                let platform = if read_config {
                    self.config_platform(&probe.access, &config).await?
                } else {
                    None
                };
                (
                    false,
                    platform.iter().cloned().collect(),
                    Some(Chosen { platform, layers }),
                )
            }
            Manifest::Other => (false, Vec::new(), None),
        };
        Ok(Description {
            index,
            platforms,
            image: chosen,
        })
    }

    /// A manifest of the repository, by tag or digest (checked against a digest), within
    /// a manifest's limit.
    async fn manifest(&self, access: &Access, reference: &str) -> Result<Manifest, ProbeError> {
        let url = format!("{}/manifests/{reference}", access.repository);
        let body = self
            .read(access, &url, "a manifest", body::MANIFEST_LIMIT)
            .await?;
        if reference.contains(':') && !manifest::digest_matches(reference, &body) {
            return Err(ProbeError::Mismatch {
                what: "manifest",
                digest: reference.to_string(),
            });
        }
        Ok(Manifest::parse(&body))
    }

    /// The platform an image's configuration blob names (checked against its digest).
    async fn config_platform(
        &self,
        access: &Access,
        digest: &str,
    ) -> Result<Option<Platform>, ProbeError> {
        let url = format!("{}/blobs/{digest}", access.repository);
        let body = self
            .read(access, &url, "an image configuration", body::MANIFEST_LIMIT)
            .await?;
        if !manifest::digest_matches(digest, &body) {
            return Err(ProbeError::Mismatch {
                what: "image configuration",
                digest: digest.to_string(),
            });
        }
        Ok(manifest::config_platform(&body))
    }

    /// A `GET` with the probe's authorization; the body within `limit`, or why not.
    async fn read(
        &self,
        access: &Access,
        url: &str,
        what: &'static str,
        limit: usize,
    ) -> Result<Vec<u8>, ProbeError> {
        let mut request = self.http.get(url).header(reqwest::header::ACCEPT, ACCEPT);
        if let Some(a) = &access.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, a.expose());
        }
        let response = send(request).await?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(answer(response, access.clone())
                .err()
                .unwrap_or(ProbeError::Unexpected { status }));
        }
        Ok(body::read(response, limit, what).await?)
    }

    /// The registry's endpoint: its `/v2/` over HTTPS, or over plain HTTP from the start
    /// for a registry the engine treats as insecure; never plain HTTP after TLS failed,
    /// which anyone on the path can make happen. Asked once per process and host.
    async fn endpoint(&self, host: &str, insecure: bool) -> Result<Endpoint, ProbeError> {
        let cell = self
            .endpoints
            .lock()
            .expect("endpoints lock")
            .entry((host.to_string(), insecure))
            .or_default()
            .clone();
        let scheme = if insecure { "http" } else { "https" };
        cell.get_or_try_init(|| self.ask_v2(scheme, host))
            .await
            .cloned()
    }

    /// What the registry's `/v2/` at `scheme://host` says about authentication.
    async fn ask_v2(&self, scheme: &str, host: &str) -> Result<Endpoint, ProbeError> {
        let base = format!("{scheme}://{host}");
        let plain_http = scheme == "http";
        let response = send(self.http.get(format!("{base}/v2/"))).await?;
        let status = response.status().as_u16();
        let scheme = match status {
            200..=299 => Scheme::Open,
            401 => Scheme::Challenge(
                response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string(),
            ),
            429 => {
                return Err(ProbeError::TooMany {
                    retry_after: retry_after(response.headers()),
                });
            }
            500..=599 => return Err(ProbeError::Server { status }),
            _ => return Err(ProbeError::Unexpected { status }),
        };
        Ok(Endpoint {
            base,
            plain_http,
            scheme,
        })
    }

    /// The `Authorization` value that answers a challenge: Basic with the login, or a
    /// bearer token from the token service (asked with the login only when the realm rule
    /// allows it, [`realm::check`]; anonymously without a login). `None` without a login
    /// to give.
    async fn authorize(
        &self,
        challenge: &str,
        image: &ImageRef,
        login: Option<&Login>,
        plain_http: bool,
    ) -> Result<Option<String>, ProbeError> {
        let (realm, service) = match Challenge::parse(challenge) {
            Challenge::Bearer { realm, service } => (realm, service),
            Challenge::BearerWithoutRealm => return Err(ProbeError::Unexpected { status: 401 }),
            Challenge::Basic | Challenge::Other(_) => return Ok(login.map(basic_authorization)),
        };
        let mut url = match login {
            Some(_) => realm::check(&image.server(), plain_http, &realm)?,
            None => {
                reqwest::Url::parse(&realm).map_err(|_| ProbeError::Unexpected { status: 401 })?
            }
        };
        let basic = login.map(basic_authorization);
        url.query_pairs_mut()
            .append_pair("scope", &format!("repository:{}:pull", image.path()));
        if let Some(service) = service {
            url.query_pairs_mut().append_pair("service", &service);
        }
        let mut request = self.http.get(url);
        if let Some(b) = &basic {
            request = request.header(reqwest::header::AUTHORIZATION, b);
        }
        let response = send(request).await?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(ProbeError::Unauthorized { status });
        }
        if status >= 500 {
            return Err(ProbeError::Server { status });
        }
        if status == 429 {
            return Err(ProbeError::TooMany {
                retry_after: retry_after(response.headers()),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = body::read(response, body::SMALL_LIMIT, "a token answer").await?;
        let token: TokenAnswer =
            serde_json::from_slice(&body).map_err(|_| ProbeError::Unexpected { status })?;
        Ok(token
            .token
            .or(token.access_token)
            .map(|t| format!("Bearer {t}")))
    }
}

/// A registry's `WWW-Authenticate` challenge, as berth answers it (parsed by `http-auth`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Basic auth with the login.
    Basic,
    /// A token from the token service at `realm`.
    Bearer {
        /// The token service.
        realm: String,
        /// The `service` to name to it.
        service: Option<String>,
    },
    /// A bearer challenge that names no token service.
    BearerWithoutRealm,
    /// Neither: the header as sent.
    Other(String),
}

impl Challenge {
    /// The challenge berth answers in a `WWW-Authenticate` header: bearer first, then basic.
    pub fn parse(header: &str) -> Challenge {
        let challenges = http_auth::parse_challenges(header).unwrap_or_default();
        if let Some(bearer) = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        {
            let param = |name: &str| {
                bearer
                    .params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            return match param("realm") {
                Some(realm) => Challenge::Bearer {
                    realm,
                    service: param("service"),
                },
                None => Challenge::BearerWithoutRealm,
            };
        }
        if challenges
            .iter()
            .any(|c| c.scheme.eq_ignore_ascii_case("basic"))
        {
            return Challenge::Basic;
        }
        Challenge::Other(header.to_string())
    }
}

/// The `Authorization` value of basic auth with a login.
pub fn basic_authorization(login: &Login) -> String {
    let plain = zeroize::Zeroizing::new(format!(
        "{}:{}",
        login.user.expose(),
        login.password.expose()
    ));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(plain.as_bytes())
    )
}

async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ProbeError> {
    request.send().await.map_err(|e| ProbeError::Unreachable {
        reason: crate::tls::describe_error(&e),
    })
}

/// What a manifest request's answer means.
fn answer(response: reqwest::Response, access: Access) -> Result<Probe, ProbeError> {
    let status = response.status().as_u16();
    match status {
        200..=299 => Ok(Probe {
            digest: response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            access,
        }),
        401 => Err(ProbeError::Unauthorized { status }),
        403 => Err(ProbeError::Denied),
        404 => Err(ProbeError::NotFound),
        429 => Err(ProbeError::TooMany {
            retry_after: retry_after(response.headers()),
        }),
        500..=599 => Err(ProbeError::Server { status }),
        _ => Err(ProbeError::Unexpected { status }),
    }
}

/// `Retry-After`: seconds, or an HTTP date; what the server asked, saturated at
/// `Duration::MAX` for a number of seconds too large to hold (the caller caps the wait).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            value
                .parse::<u64>()
                .map_or(Duration::MAX, Duration::from_secs),
        );
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Whether the engine treats a registry as insecure (plain HTTP allowed): listed in its
/// `insecure-registries` (the index configurations it reports), or an IP address in one of
/// its insecure ranges (127.0.0.0/8 by default), or `localhost`.
pub fn insecure(server: &crate::registry::Server, engine: &EngineRegistryConfig) -> bool {
    if let Some(secure) = engine.secure_by_name.get(server.host()) {
        return !secure;
    }
    let name = server
        .host_name()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if name == "localhost" {
        return true;
    }
    let Ok(ip) = name.parse::<std::net::IpAddr>() else {
        return false;
    };
    engine
        .insecure_ranges
        .iter()
        .any(|range| in_range(ip, range))
}

/// What the engine says of registries' security.
#[derive(Clone, Debug, Default)]
pub struct EngineRegistryConfig {
    /// Registries it names, and whether each is secure.
    pub secure_by_name: std::collections::HashMap<String, bool>,
    /// Address ranges it treats as insecure (`127.0.0.0/8`).
    pub insecure_ranges: Vec<String>,
}

impl EngineRegistryConfig {
    /// The engine's own words (`docker info`'s `RegistryConfig`).
    pub async fn of(docker: &bollard::Docker) -> EngineRegistryConfig {
        match docker.info().await {
            Ok(info) => EngineRegistryConfig::from_info(&info),
            Err(_) => EngineRegistryConfig::loopback(),
        }
    }

    /// What an `info` answer says of it.
    pub fn from_info(info: &bollard::models::SystemInfo) -> EngineRegistryConfig {
        let Some(rc) = info.registry_config.clone() else {
            return EngineRegistryConfig::loopback();
        };
        EngineRegistryConfig {
            secure_by_name: rc
                .index_configs
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(name, c)| Some((name, c.secure?)))
                .collect(),
            insecure_ranges: rc.insecure_registry_cidrs.unwrap_or_default(),
        }
    }

    /// What an engine allows by default: loopback.
    pub fn loopback() -> EngineRegistryConfig {
        EngineRegistryConfig {
            secure_by_name: Default::default(),
            insecure_ranges: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

/// Whether `ip` is in the CIDR range `range`.
fn in_range(ip: std::net::IpAddr, range: &str) -> bool {
    let Some((base, bits)) = range.split_once('/') else {
        return false;
    };
    let (Ok(base), Ok(bits)) = (base.parse::<std::net::IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, base) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "10".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(10)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        h.insert(reqwest::header::RETRY_AFTER, later.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        // What no one would wait for is kept as asked, saturated; the caller caps it.
        h.insert(
            reqwest::header::RETRY_AFTER,
            "18446744073709551615".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_secs(u64::MAX)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "99999999999999999999999999".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::MAX));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Fri, 31 Dec 9999 23:59:59 GMT".parse().unwrap(),
        );
        assert!(retry_after(&h).unwrap() > Duration::from_secs(7000 * 365 * 86400));
    }

    #[test]
    fn insecure_as_the_engine_judges_it() {
        let server = |s| crate::registry::Server::parse(s).unwrap();
        let cfg = EngineRegistryConfig::loopback();
        assert!(insecure(&server("127.0.0.1:5000"), &cfg));
        assert!(insecure(&server("localhost:5000"), &cfg));
        assert!(!insecure(&server("ghcr.io"), &cfg));
        assert!(!insecure(&server("10.0.0.1:5000"), &cfg));
        let mut named = cfg.clone();
        named
            .secure_by_name
            .insert("reg.internal:5000".into(), false);
        assert!(insecure(&server("reg.internal:5000"), &named));
    }
}
