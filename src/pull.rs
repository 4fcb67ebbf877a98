//! Where images are pulled: one image into the engine through bollard, with the
//! credentials of its registry, with progress and one retry policy ([`pull`]).
//!
//! The engine already downloads three layers at a time, shares identical layers between
//! concurrent pulls and retries each layer itself; berth adds what it lacks: a tag or
//! digest always sent (an empty tag pulls every tag), an idle timeout and an overall
//! deadline (bollard's timeout covers only the response headers, and a stalled stream
//! never ends by itself), a question to the registry first (its digest, a permanent
//! refusal, `Retry-After`), retries with exponential backoff and jitter only for what
//! happens before the engine downloads anything, and an error naming the image, the
//! registry and the secret to check. Every wait a server asks for is capped by the pull's
//! own deadline, and every sum of what the engine reports saturates: nothing a registry or
//! cache sends can make the arithmetic overflow. A pull-through cache is used only when its
//! registry vouches for what it serves (`through_caches`).
//!
//! The platform asked for (the `platform` option) is the platform pulled: before the pull
//! berth reads the registry's manifest (or index) and refuses, in plain words, a name that
//! has no image for it; an image the engine holds counts as held only for the platforms
//! the engine has it for; after the pull the engine's own image is checked again. The
//! manifest also gives every layer's size, so that what berth reports is the real amount
//! whatever the engine's progress messages say (the containerd image store often says
//! only "Download complete"). Without `platform` the engine pulls its own platform as it
//! always did, and berth says which one it got.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::image::ImageRef;
use crate::inject::Login;
use crate::platform::{self, Platform};
use crate::registry::client::{
    Description, EngineRegistryConfig, Probe, ProbeError, RegistryClient,
};

/// One image to pull.
#[derive(Clone, Debug)]
pub struct PullSpec {
    /// The image.
    pub image: ImageRef,
    /// Its registry's login, if berth has one.
    pub login: Option<Login>,
    /// The secret identifier the login came from, for messages.
    pub id: Option<String>,
    /// Pull-through caches to try first, in order (the `mirrors` option).
    pub mirrors: Vec<crate::mirror::Mirror>,
}

/// How pulls behave.
#[derive(Clone, Debug)]
pub struct PullConfig {
    /// Platform to pull (`linux/arm64`); the engine's own when `None`.
    pub platform: Option<Platform>,
    /// A pull that reports nothing for this long is abandoned (and retried).
    pub idle_timeout: Duration,
    /// The most one image may take, retries included.
    pub deadline: Duration,
    /// Attempts at most.
    pub max_attempts: u32,
    /// The first retry delay; doubled each time.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
    /// Use a cache's image when the origin cannot give the digest it must have (the
    /// `mirrorsUnverified` option); the pull is then marked unverified.
    pub mirrors_unverified: bool,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            platform: None,
            idle_timeout: Duration::from_secs(90),
            deadline: Duration::from_secs(900),
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            mirrors_unverified: false,
        }
    }
}

/// Where one image's pull stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Layers finished (pulled or already there).
    pub layers_done: u32,
    /// Layers in all.
    pub layers: u32,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Bytes to download, as far as known.
    pub total: u64,
    /// Download rate over the pull so far, bytes per second.
    pub rate: f64,
}

impl Progress {
    /// The progress in words: layers, bytes and rate, with what is not known yet left out.
    pub fn describe(&self) -> String {
        use crate::status::human_bytes;
        if self.layers == 0 {
            return "starting".to_string();
        }
        let mut out = format!(
            "{}/{} layers, {}",
            self.layers_done,
            self.layers,
            human_bytes(self.bytes)
        );
        if self.total > 0 {
            out.push_str(&format!(" of {}", human_bytes(self.total)));
        }
        if self.bytes > 0 {
            out.push_str(&format!(", {}/s", human_bytes(self.rate as u64)));
        }
        out
    }
}

/// What happened, for the caller to show.
#[derive(Debug)]
pub enum PullEvent<'a> {
    /// An attempt starts (from 1).
    Attempt(u32),
    /// Progress, at most every `PROGRESS_EVERY`, and once at the end.
    Progress(&'a Progress),
    /// A pull-through cache is tried (`skipped: None`), or was passed over, and why.
    Cache {
        /// The cache, as configured.
        cache: &'a str,
        /// Why it was passed over.
        skipped: Option<&'a str>,
    },
    /// An attempt failed and another follows after `delay`.
    Retrying {
        /// The attempt that failed.
        attempt: u32,
        /// The wait before the next.
        delay: Duration,
        /// Why it failed.
        reason: &'a str,
    },
}

/// How often progress is reported while pulling.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// A finished pull.
#[derive(Clone, Debug, PartialEq)]
pub struct Pulled {
    /// The manifest digest.
    pub digest: Option<String>,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Seconds taken, retries included.
    pub seconds: f64,
    /// The engine had the image already.
    pub already_present: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The pull-through cache it came from, if not the origin.
    pub via: Option<String>,
    /// It came from a cache without the origin's word for its digest (`mirrorsUnverified`).
    pub unverified: bool,
    /// The platform of the image the engine holds now, when it says.
    pub platform: Option<Platform>,
}

/// Why an image was not pulled.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PullError {
    /// A failure that retrying will not mend.
    #[error("pull of {image} failed: {reason}{}", hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Permanent {
        /// The image.
        image: String,
        /// The engine's (or berth's) words.
        reason: String,
        /// What to check, when berth knows.
        hint: Option<String>,
    },
    /// Transient failures until the attempts or the deadline ran out.
    #[error("pull of {image} failed after {attempts} attempts: {reason}")]
    Exhausted {
        /// The image.
        image: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The daemon is stopping.
    #[error("pull of {image} stopped")]
    Cancelled {
        /// The image.
        image: String,
    },
}

impl PullError {
    /// Attempts made before giving up.
    pub fn attempts(&self) -> u32 {
        match self {
            PullError::Exhausted { attempts, .. } => *attempts,
            _ => 1,
        }
    }
}

/// Whether a failure may pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Retry.
    Transient,
    /// Do not.
    Permanent,
}

/// Sorts an engine or registry message into transient or permanent.
pub fn classify(message: &str) -> Kind {
    let m = message.to_ascii_lowercase();
    const TRANSIENT_FIRST: &[&str] = &["toomanyrequests", "too many requests", "rate limit"];
    const PERMANENT: &[&str] = &[
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "denied",
        "forbidden",
        "manifest unknown",
        "not found",
        "does not exist",
        "invalid reference",
        "no matching manifest",
        "name unknown",
        "unsupported",
    ];
    if TRANSIENT_FIRST.iter().any(|p| m.contains(p)) {
        return Kind::Transient;
    }
    if PERMANENT.iter().any(|p| m.contains(p)) {
        return Kind::Permanent;
    }
    Kind::Transient
}

/// What to check for a permanent failure, when berth knows: the secrets for a refusal,
/// the image's name for an image the registry does not have, the platform for a name
/// without an image of the platform wanted (the one `asked`, else the `engine`'s own;
/// `described`: what the registry said, if it was asked). Nothing for the rest: a hint
/// that is not true is worse than none.
fn hint(
    spec: &PullSpec,
    reason: &str,
    asked: Option<&Platform>,
    engine: Option<&Platform>,
    described: Option<&Description>,
) -> Option<String> {
    let registry = spec.image.server();
    let m = reason.to_ascii_lowercase();
    let auth = [
        "unauthorized",
        "authentication required",
        "no basic auth",
        "denied",
        "forbidden",
    ];
    if auth.iter().any(|p| m.contains(p)) {
        return Some(match &spec.id {
            Some(id) => format!(
                "check the secrets {id}_CONTAINER_REGISTRY_USER and {id}_CONTAINER_REGISTRY_PASSWORD for {registry}, and that this user may pull the image"
            ),
            None => format!(
                "berth has no credentials for {registry}: add <ID>_CONTAINER_REGISTRY_SERVER, _USER and _PASSWORD secrets for it"
            ),
        });
    }
    if m.contains("no matching manifest") || m.contains("does not provide the specified platform") {
        let has = described
            .filter(|d| !d.platforms.is_empty())
            .map(|d| format!(" (it has {})", platform::list(&d.platforms)))
            .unwrap_or_default();
        let what = match (asked, engine) {
            (Some(p), _) => p.to_string(),
            (None, Some(p)) => format!("the engine's platform, {p}"),
            (None, None) => "the engine's platform".to_string(),
        };
        return Some(format!(
            "{} exists on {registry} but has no image for {what}{has}: set the platform option to one it has",
            spec.image
        ));
    }
    let unknown = [
        "manifest unknown",
        "not found",
        "name unknown",
        "does not exist",
    ];
    unknown
        .iter()
        .any(|p| m.contains(p))
        .then(|| format!("check that {} exists on {registry}", spec.image))
}

/// The engine's credentials for a login.
fn credentials(spec: &PullSpec) -> Option<DockerCredentials> {
    spec.login.as_ref().map(|l| DockerCredentials {
        username: Some(l.user.expose().to_string()),
        password: Some(l.password.expose().to_string()),
        serveraddress: Some(spec.image.server().config_key().to_string()),
        ..Default::default()
    })
}

/// What pulls into one engine share: the engine, a client to ask registries, which
/// registries the engine treats as insecure, and the engine's own platform.
#[derive(Clone, Debug)]
pub struct Puller {
    /// The engine.
    pub docker: Docker,
    /// Asks registries before the engine pulls; `None` when it cannot be made.
    pub registry: Option<RegistryClient>,
    /// The engine's word on insecure registries.
    pub insecure: EngineRegistryConfig,
    /// The engine's own platform (what it pulls without `platform`), when it says.
    pub platform: Option<Platform>,
}

impl Puller {
    /// A puller for this engine (one `info` request; the registry client, which reads
    /// the system's root certificates, is made meanwhile).
    pub async fn new(docker: Docker) -> Puller {
        let client = tokio::task::spawn_blocking(RegistryClient::new);
        let info = docker.info().await.ok();
        let insecure = info.as_ref().map_or_else(
            EngineRegistryConfig::loopback,
            EngineRegistryConfig::from_info,
        );
        let platform = info
            .as_ref()
            .and_then(|i| Platform::of(i.os_type.as_deref(), i.architecture.as_deref(), None));
        let registry = client
            .await
            .map_err(|e| e.to_string())
            .and_then(|made| made)
            .map_err(|e| tracing::warn!(error = %e, "cannot make a registry client; the engine alone will pull"))
            .ok();
        Puller {
            docker,
            registry,
            insecure,
            platform,
        }
    }
}

/// Pulls one image. The retry policy (the README's "Retries"): berth asks the registry
/// itself first (a manifest `HEAD`); a refusal that no retry mends (unauthorized, denied,
/// unknown) fails at once; `429` waits as long as its `Retry-After` says, a registry that
/// is down or failing is asked again with backoff; an image the engine already holds with
/// the registry's digest (for the platform asked, when one is) is not pulled. Then berth
/// reads what the registry has under the name (the manifest or index: the platforms, the
/// layers' sizes) and refuses a platform it has no image for. Then the engine pulls, once:
/// it retries each layer itself, so a failure after any layer started downloading is
/// reported, not multiplied; only a failure before any download sends berth back to
/// asking the registry. Last, the engine's image is checked to be of the platform asked.
pub async fn pull(
    puller: &Puller,
    spec: &PullSpec,
    cfg: &PullConfig,
    cancel: &CancellationToken,
    on: &mut (dyn FnMut(PullEvent<'_>) + Send),
) -> Result<Pulled, PullError> {
    let started = Instant::now();
    let deadline = later(started, cfg.deadline);
    let image = spec.image.to_string();
    let insecure = crate::registry::client::insecure(&spec.image.server(), &puller.insecure);
    let wanted = cfg.platform.as_ref();
    // An image named by digest that the engine holds costs no request at all.
    if let Some(d) = spec.image.digest()
        && let Some(held) = holds(&puller.docker, &spec.image, d, wanted).await
    {
        return Ok(Pulled::held(d, started, 0, held));
    }
    if !spec.mirrors.is_empty()
        && let Some(mut pulled) = through_caches(puller, spec, cfg, cancel, deadline, on).await?
    {
        pulled.seconds = started.elapsed().as_secs_f64();
        return Ok(pulled);
    }
    if cancel.is_cancelled() {
        return Err(PullError::Cancelled { image });
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        on(PullEvent::Attempt(attempt));
        let mut digest = None;
        let mut retry_after = None;
        let asked = match &puller.registry {
            Some(rc) => {
                let probe = rc.probe(&spec.image, spec.login.as_ref(), insecure);
                tokio::select! {
                    _ = cancel.cancelled() => return Err(PullError::Cancelled { image }),
                    r = tokio::time::timeout_at(deadline.into(), probe) => r.ok(),
                }
            }
            None => None,
        };
        let mut probed = None;
        let failure = match asked {
            Some(Ok(probe)) => {
                digest = probe.digest.clone();
                probed = Some(probe);
                None
            }
            Some(Err(e)) if e.is_permanent() => return Err(refused(spec, &e)),
            Some(Err(e)) if e.is_transient() => {
                if let ProbeError::TooMany { retry_after: after } = &e {
                    retry_after = *after;
                }
                Some(e.to_string())
            }
            // Berth could not tell (an answer it does not act on, or larger than it
            // reads): the engine decides.
            Some(Err(e)) => {
                tracing::warn!(image = %image, reason = %e, "the registry's answer does not say whether the image can be pulled; the engine tries");
                None
            }
            // No answer in time, or no client to ask with: the engine decides.
            None => None,
        };
        let failure = match failure {
            Some(reason) => reason,
            None => {
                if let Some(d) = &digest
                    && let Some(held) = holds(&puller.docker, &spec.image, d, wanted).await
                {
                    return Ok(Pulled::held(d, started, attempt, held));
                }
                let expected = match &probed {
                    Some(probe) => {
                        let asked = expect(puller, probe, &spec.image, spec, cfg);
                        tokio::select! {
                            _ = cancel.cancelled() => return Err(PullError::Cancelled { image }),
                            r = tokio::time::timeout_at(deadline.into(), asked) => match r {
                                Ok(expected) => expected?,
                                Err(_) => Expected::default(),
                            },
                        }
                    }
                    None => Expected::default(),
                };
                let left = deadline.saturating_duration_since(Instant::now());
                let result = tokio::select! {
                    _ = cancel.cancelled() => return Err(PullError::Cancelled { image }),
                    r = tokio::time::timeout(left, attempt_once(&puller.docker, spec, cfg, &expected, on)) => {
                        r.unwrap_or_else(|_| Err(Failed {
                            kind: Kind::Transient,
                            reason: format!("the {} s deadline passed", cfg.deadline.as_secs()),
                            downloading: true,
                        }))
                    }
                };
                match result {
                    Ok(mut pulled) => {
                        pulled.platform =
                            platform_pulled(&puller.docker, spec, &spec.image, wanted).await?;
                        pulled.seconds = started.elapsed().as_secs_f64();
                        pulled.attempts = attempt;
                        pulled.digest = pulled.digest.or(digest);
                        return Ok(pulled);
                    }
                    Err(Failed {
                        kind: Kind::Permanent,
                        reason,
                        ..
                    }) => {
                        let hint = hint(
                            spec,
                            &reason,
                            wanted,
                            puller.platform.as_ref(),
                            expected.described.as_ref(),
                        );
                        return Err(PullError::Permanent {
                            image,
                            reason,
                            hint,
                        });
                    }
                    Err(Failed {
                        reason,
                        downloading: true,
                        ..
                    }) => {
                        // The engine retried its layers already: berth does not again.
                        return Err(PullError::Exhausted {
                            image,
                            attempts: attempt,
                            reason: format!(
                                "{reason} (after the engine's own retries of its layers)"
                            ),
                        });
                    }
                    Err(Failed { reason, .. }) => reason,
                }
            }
        };
        let exp = attempt.saturating_sub(1).min(16);
        let backoff = cfg
            .backoff_base
            .saturating_mul(1 << exp)
            .min(cfg.backoff_max)
            .mul_f64(0.5 + fastrand::f64());
        let delay = retry_after.unwrap_or(backoff);
        let left = deadline.saturating_duration_since(Instant::now());
        if attempt >= cfg.max_attempts || delay >= left {
            // A wait the server asks for is capped by the pull's deadline: berth gives up
            // now rather than wait past it (or overflow the clock).
            let reason = match retry_after.filter(|asked| *asked >= left) {
                Some(asked) if attempt < cfg.max_attempts => {
                    tracing::warn!(
                        image = %image,
                        registry = %spec.image.server(),
                        asked_s = asked.as_secs(),
                        left_s = left.as_secs(),
                        "the registry asks to wait longer than the pull's deadline allows; berth does not wait that long"
                    );
                    format!(
                        "{failure}: {} asks to wait {} s, more than the {} s left of the pull's deadline (pullTimeout); berth does not wait that long",
                        spec.image.server(),
                        asked.as_secs(),
                        left.as_secs()
                    )
                }
                _ => failure,
            };
            return Err(PullError::Exhausted {
                image,
                attempts: attempt,
                reason,
            });
        }
        on(PullEvent::Retrying {
            attempt,
            delay,
            reason: &failure,
        });
        tokio::select! {
            _ = cancel.cancelled() => return Err(PullError::Cancelled { image }),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// What the origin says a cache must serve for an image.
enum Vouch {
    /// This digest: the image's own, or the origin's answer for its tag.
    Digest(String),
    /// Nothing: the origin could not give a digest, and why.
    Cannot(String),
}

/// Pulls through the image's caches, the first that serves what the origin names: the
/// digest the origin gives for the tag (or the image's own digest) is asked of each cache,
/// a cache that serves another is refused (stale or tampered), and the image is pulled from
/// the cache by that digest (so the engine checks the content), then tagged under its
/// original name. `Ok(None)` when no cache served it: the caller pulls from the origin.
///
/// An image the engine holds with the digest the origin names (for the platform asked)
/// is not asked of any cache, as a direct pull asks its registry nothing more.
///
/// A cache is never taken on its own word: when the origin says the tag does not exist
/// (404), the pull fails with that answer; when the origin cannot give a digest (down,
/// refusing, no `Docker-Content-Digest`), every cache is passed over, saying why, unless
/// `mirrors_unverified` allows the cache's image, which is then marked unverified.
async fn through_caches(
    puller: &Puller,
    spec: &PullSpec,
    cfg: &PullConfig,
    cancel: &CancellationToken,
    deadline: Instant,
    on: &mut (dyn FnMut(PullEvent<'_>) + Send),
) -> Result<Option<Pulled>, PullError> {
    let ask = |image: &ImageRef, login: Option<&Login>| {
        let insecure = crate::registry::client::insecure(&image.server(), &puller.insecure);
        let (image, login) = (image.clone(), login.cloned());
        async move {
            let rc = puller.registry.as_ref()?;
            Some(
                tokio::time::timeout(ASK, rc.probe(&image, login.as_ref(), insecure))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ProbeError::Unreachable {
                            reason: format!("no answer in {} s", ASK.as_secs()),
                        })
                    }),
            )
        }
    };
    let origin = spec.image.server();
    let vouch = match spec.image.digest() {
        Some(d) => Vouch::Digest(d.to_string()),
        None => match ask(&spec.image, spec.login.as_ref()).await {
            Some(Ok(Probe {
                digest: Some(d), ..
            })) => {
                // What the engine holds with the digest the origin names costs no cache a
                // request, as a direct pull costs its registry none.
                if let Some(held) =
                    holds(&puller.docker, &spec.image, &d, cfg.platform.as_ref()).await
                {
                    return Ok(Some(Pulled::held(&d, Instant::now(), 1, held)));
                }
                Vouch::Digest(d)
            }
            Some(Ok(Probe { digest: None, .. })) => Vouch::Cannot(format!(
                "{origin} answered for {} without its digest (no Docker-Content-Digest)",
                spec.image
            )),
            Some(Err(e @ ProbeError::NotFound)) => {
                // What the registry says does not exist, no cache makes exist.
                for m in &spec.mirrors {
                    on(PullEvent::Cache {
                        cache: &m.cache,
                        skipped: Some(&format!(
                            "{origin} says {} does not exist, which no cache overrides",
                            spec.image
                        )),
                    });
                }
                return Err(refused(spec, &e));
            }
            Some(Err(e)) => {
                Vouch::Cannot(format!("{origin} gave no digest for {}: {e}", spec.image))
            }
            None => Vouch::Cannot(format!(
                "berth could not ask {origin} for the digest of {}",
                spec.image
            )),
        },
    };
    for m in &spec.mirrors {
        if cancel.is_cancelled() {
            return Ok(None);
        }
        let mut skip = |reason: String| {
            on(PullEvent::Cache {
                cache: &m.cache,
                skipped: Some(&reason),
            })
        };
        let (wanted, unverified) = match &vouch {
            Vouch::Digest(d) => (Some(d.clone()), None),
            Vouch::Cannot(why) if !cfg.mirrors_unverified => {
                skip(format!(
                    "{why}, so nothing vouches for what the cache serves (the mirrorsUnverified option allows it)"
                ));
                continue;
            }
            Vouch::Cannot(why) => (None, Some(why)),
        };
        let (served, probe) = match ask(&m.image, m.login.as_ref()).await {
            Some(Ok(p)) => (p.digest.clone(), Some(p)),
            Some(Err(e)) => {
                skip(e.to_string());
                continue;
            }
            None => (None, None),
        };
        if let (Some(w), Some(s)) = (&wanted, &served)
            && w != s
        {
            skip(format!(
                "it serves {s} for {}, but {origin} names {w}: a stale or tampered cache, refused",
                spec.image,
            ));
            continue;
        }
        // By digest whenever one is known (the origin's, else the cache's own word), so
        // that the engine checks the content against it.
        let pin = wanted.clone().or(served);
        let at = match &pin {
            Some(d) => ImageRef::parse(&format!("{}@{d}", m.image.repository()))
                .unwrap_or_else(|_| m.image.clone()),
            None => m.image.clone(),
        };
        let from_cache = PullSpec {
            image: at,
            login: m.login.clone(),
            id: m.id.clone(),
            mirrors: Vec::new(),
        };
        on(PullEvent::Cache {
            cache: &m.cache,
            skipped: None,
        });
        if let Some(why) = unverified {
            tracing::warn!(
                image = %spec.image,
                cache = %m.cache,
                reason = %why,
                "pulling through the cache unverified: the registry does not vouch for its digest (mirrorsUnverified)"
            );
        }
        // What the cache has under the digest: the platforms and the layers' sizes.
        let expected = match &probe {
            Some(probe) => {
                let asked = expect(puller, probe, &m.image, spec, cfg);
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(None),
                    r = tokio::time::timeout_at(deadline.into(), asked) => match r {
                        Ok(expected) => expected?,
                        Err(_) => Expected::default(),
                    },
                }
            }
            None => Expected::default(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let result = tokio::select! {
            _ = cancel.cancelled() => return Ok(None),
            r = tokio::time::timeout(left, attempt_once(&puller.docker, &from_cache, cfg, &expected, on)) => r,
        };
        match result {
            Ok(Ok(mut pulled)) => {
                pulled.platform = platform_pulled(
                    &puller.docker,
                    spec,
                    &from_cache.image,
                    cfg.platform.as_ref(),
                )
                .await?;
                if let Err(e) = tag_as(&puller.docker, &from_cache.image, &spec.image).await {
                    on(PullEvent::Cache {
                        cache: &m.cache,
                        skipped: Some(&format!(
                            "pulled, but the engine would not tag it as {}: {e}",
                            spec.image
                        )),
                    });
                    continue;
                }
                pulled.digest = pulled.digest.or(pin);
                pulled.via = Some(m.cache.clone());
                pulled.unverified = unverified.is_some();
                pulled.attempts = 1;
                return Ok(Some(pulled));
            }
            Ok(Err(f)) => on(PullEvent::Cache {
                cache: &m.cache,
                skipped: Some(&f.reason),
            }),
            Err(_) => on(PullEvent::Cache {
                cache: &m.cache,
                skipped: Some("the pull's deadline passed"),
            }),
        }
    }
    Ok(None)
}

/// The error of a pull the registry refused for good (`e.is_permanent()`), with what to
/// check.
fn refused(spec: &PullSpec, e: &ProbeError) -> PullError {
    let reason = e.to_string();
    let hint = match e {
        ProbeError::RealmRefused(r) => Some(format!(
            "berth sent nothing there; ask the operator of {} to name a token service over https on its own host or domain",
            r.registry
        )),
        _ => hint(spec, &reason, None, None, None),
    };
    PullError::Permanent {
        image: spec.image.to_string(),
        reason,
        hint,
    }
}

/// `start + wait`, with `wait` capped at a year (a `pullTimeout` no one waits for), so that
/// a deadline never overflows the clock.
fn later(start: Instant, wait: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    start.checked_add(wait.min(YEAR)).unwrap_or(start)
}

/// Tags a pulled image under its original name, so that `docker run ORIGINAL` finds it. An
/// image named by digest cannot be given that name (the engine records digests only as
/// pulled): it stays under the cache's name.
async fn tag_as(docker: &Docker, pulled: &ImageRef, original: &ImageRef) -> Result<(), String> {
    // A tag (an image named without one is pulled as the default tag); by digest alone: none.
    if original.tag().is_none() && original.digest().is_some() {
        return Ok(());
    }
    let tag = original.tag().unwrap_or("latest").to_string();
    let options = bollard::query_parameters::TagImageOptionsBuilder::new()
        .repo(&original.repository())
        .tag(&tag)
        .build();
    docker
        .tag_image(&pulled.canonical(), Some(options))
        .await
        .map_err(|e| engine_error_message(&e))
}

/// How long berth waits for a registry's answer to one question about an image, beyond
/// the pull's own deadline.
const ASK: Duration = Duration::from_secs(15);

impl Pulled {
    /// An image the engine holds already: nothing pulled, nothing measured.
    fn held(digest: &str, started: Instant, attempts: u32, held: Held) -> Pulled {
        Pulled {
            digest: Some(digest.to_string()),
            bytes: 0,
            seconds: started.elapsed().as_secs_f64(),
            already_present: true,
            attempts,
            via: None,
            unverified: false,
            platform: held.platform,
        }
    }
}

/// An image the engine holds with the digest asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The platform asked for (which the engine holds it for), or without one the platform
    /// the engine would run it as; `None` when the engine does not say.
    pub platform: Option<Platform>,
}

/// Whether the engine holds the image with this digest, for `wanted` when a platform is
/// asked (a local question, no registry): the digest it was pulled by must be the one
/// given, and with a platform asked, the engine must have it for that platform.
pub async fn holds(
    docker: &Docker,
    image: &ImageRef,
    digest: &str,
    wanted: Option<&Platform>,
) -> Option<Held> {
    let held = engine_image(docker, image).await?;
    if !held
        .repo_digests
        .iter()
        .any(|d| d.ends_with(&format!("@{digest}")))
    {
        return None;
    }
    match wanted {
        None => Some(Held {
            platform: held.default,
        }),
        Some(w) => held.platforms.iter().any(|p| w.matches(p)).then(|| Held {
            platform: Some(w.clone()),
        }),
    }
}

/// What the engine holds under an image's name.
struct EngineImage {
    /// The names with digests it was pulled by (`repo@sha256:...`).
    repo_digests: Vec<String>,
    /// The platforms it holds it for.
    platforms: Vec<Platform>,
    /// The platform `docker run` would use, when the engine says.
    default: Option<Platform>,
}

/// What the engine holds under `image`'s name, `None` when it holds nothing. The classic
/// image store keeps one image (one platform) per name; the containerd image store keeps
/// an index's images under its name, one per platform pulled, and says so in its image
/// list (`manifests`, API 1.47), which berth reads when the image is of that store (its
/// inspection has a descriptor).
async fn engine_image(docker: &Docker, image: &ImageRef) -> Option<EngineImage> {
    let i = docker.inspect_image(&image.canonical()).await.ok()?;
    let default = Platform::of(
        i.os.as_deref(),
        i.architecture.as_deref(),
        i.variant.as_deref(),
    );
    let mut platforms: Vec<Platform> = default.iter().cloned().collect();
    if i.descriptor.is_some()
        && let Some(id) = &i.id
    {
        let filters = HashMap::from([("reference".to_string(), vec![image.familiar_name()])]);
        let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
            .filters(&filters)
            .manifests(true)
            .build();
        if let Ok(list) = docker.list_images(Some(options)).await
            && let Some(manifests) = list
                .into_iter()
                .find(|summary| &summary.id == id)
                .and_then(|summary| summary.manifests)
        {
            platforms = manifests
                .iter()
                .filter(|m| {
                    m.available
                        && m.kind == Some(bollard::models::ImageManifestSummaryKindEnum::IMAGE)
                })
                .filter_map(|m| {
                    let p = &m.image_data.as_ref()?.platform;
                    Platform::of(
                        p.os.as_deref(),
                        p.architecture.as_deref(),
                        p.variant.as_deref(),
                    )
                })
                .collect();
        }
    }
    Some(EngineImage {
        repo_digests: i.repo_digests.unwrap_or_default(),
        platforms,
        default,
    })
}

/// The platform of the image the engine holds under `at` after a pull of `spec`: with a
/// platform asked, that one, or a refusal naming what the engine got instead (the classic
/// image store takes a single image of another platform with a mere warning, the
/// containerd store without one); without, the engine's word. `None` when the engine does
/// not say.
async fn platform_pulled(
    docker: &Docker,
    spec: &PullSpec,
    at: &ImageRef,
    wanted: Option<&Platform>,
) -> Result<Option<Platform>, PullError> {
    let Some(held) = engine_image(docker, at).await else {
        return Ok(None);
    };
    let Some(w) = wanted else {
        return Ok(held.default);
    };
    if held.platforms.iter().any(|p| w.matches(p)) {
        return Ok(Some(w.clone()));
    }
    let got = platform::list(&held.platforms);
    Err(PullError::Permanent {
        image: spec.image.to_string(),
        reason: format!(
            "the engine pulled it for {got}, not for {w}: {} serves no {w} image under this name",
            spec.image.server()
        ),
        hint: Some(format!(
            "set the platform option to {got}, or leave it unset; or publish a {w} image under this name"
        )),
    })
}

/// What berth expects the engine to pull, from the registry's word.
#[derive(Default)]
struct Expected {
    /// What the registry said, when berth asked.
    described: Option<Description>,
    /// The layers' sizes, by the names the engine gives them in its progress messages.
    sizes: HashMap<String, u64>,
}

/// Reads what the registry has under the name (`probe`d at `at`: the image's own registry,
/// or a cache serving the digest its registry names) and refuses, with a plain message, a
/// platform asked that it has no image for. Without a platform asked, a registry that
/// counts reading a manifest as a pull (Docker Hub) is not read: sizes are not worth a
/// user's pull limit. What berth cannot read (an error, another kind of manifest), the
/// engine decides.
async fn expect(
    puller: &Puller,
    probe: &Probe,
    at: &ImageRef,
    spec: &PullSpec,
    cfg: &PullConfig,
) -> Result<Expected, PullError> {
    let Some(rc) = &puller.registry else {
        return Ok(Expected::default());
    };
    let asked = cfg.platform.as_ref();
    if asked.is_none() && at.server().is_docker_hub() {
        return Ok(Expected::default());
    }
    let wanted = asked.or(puller.platform.as_ref());
    let described = match tokio::time::timeout(ASK, rc.describe(probe, at, wanted, asked.is_some()))
        .await
    {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            tracing::warn!(image = %spec.image, reason = %e, "cannot read the image's manifest; the engine pulls it without berth knowing its platforms and sizes");
            return Ok(Expected::default());
        }
        Err(_) => {
            tracing::warn!(image = %spec.image, seconds = ASK.as_secs(), "no manifest in time; the engine pulls it without berth knowing its platforms and sizes");
            return Ok(Expected::default());
        }
    };
    if let Some(asked) = asked {
        let refuse = |reason: String, hint: String| PullError::Permanent {
            image: spec.image.to_string(),
            reason,
            hint: Some(hint),
        };
        match &described.image {
            None if described.index => {
                return Err(refuse(
                    format!(
                        "{} has no {asked} image of it: its index has {}",
                        spec.image.server(),
                        platform::list(&described.platforms)
                    ),
                    format!(
                        "set the platform option to one of those, or leave it unset for the engine's own; or publish a {asked} image under this name"
                    ),
                ));
            }
            Some(chosen) => {
                if let Some(p) = chosen.platform.as_ref().filter(|p| !asked.matches(p)) {
                    return Err(refuse(
                        format!(
                            "it is an image for {p} alone (not an index of images for several platforms), and the platform option asks for {asked}"
                        ),
                        format!(
                            "set the platform option to {p}, or leave it unset; or publish an index with a {asked} image under this name"
                        ),
                    ));
                }
            }
            None => {}
        }
    }
    let sizes = described
        .image
        .iter()
        .flat_map(|c| &c.layers)
        .map(|l| (l.short_id().to_string(), l.size))
        .collect();
    Ok(Expected {
        described: Some(described),
        sizes,
    })
}

/// How one engine pull failed.
struct Failed {
    kind: Kind,
    reason: String,
    /// Whether any layer had started downloading (the engine then retried it itself).
    downloading: bool,
}

/// One engine pull: the stream to its end, or the first error, or the idle timeout.
async fn attempt_once(
    docker: &Docker,
    spec: &PullSpec,
    cfg: &PullConfig,
    expected: &Expected,
    on: &mut (dyn FnMut(PullEvent<'_>) + Send),
) -> Result<Pulled, Failed> {
    let mut opts = CreateImageOptionsBuilder::default()
        .from_image(&spec.image.repository())
        .tag(&spec.image.pull_tag());
    let platform = cfg.platform.as_ref().map(Platform::to_string);
    if let Some(p) = &platform {
        opts = opts.platform(p);
    }
    let stream = docker.create_image(Some(opts.build()), None, credentials(spec));
    let mut stream = std::pin::pin!(stream);
    let mut tracker = Tracker::new(expected.sizes.clone());
    loop {
        let next = tokio::time::timeout(cfg.idle_timeout, stream.next()).await;
        let item = match next {
            Err(_) => {
                return Err(Failed {
                    kind: Kind::Transient,
                    reason: format!("no progress for {} s", cfg.idle_timeout.as_secs()),
                    downloading: tracker.downloading(),
                });
            }
            Ok(None) => break,
            Ok(Some(item)) => item,
        };
        match item {
            Ok(info) => {
                if let Some(err) = info.error_detail.and_then(|e| e.message) {
                    return Err(Failed {
                        kind: classify(&err),
                        reason: err,
                        downloading: tracker.downloading(),
                    });
                }
                tracker.update(
                    info.id.as_deref(),
                    info.status.as_deref(),
                    info.progress_detail.as_ref(),
                );
                if let Some(p) = tracker.due() {
                    on(PullEvent::Progress(&p));
                }
            }
            Err(e) => {
                let message = engine_error_message(&e);
                let kind =
                    match &e {
                        bollard::errors::Error::DockerResponseServerError {
                            status_code, ..
                        } if *status_code == 404 => Kind::Permanent,
                        bollard::errors::Error::DockerResponseServerError { message, .. }
                        | bollard::errors::Error::DockerStreamError { error: message } => {
                            classify(message)
                        }
                        _ => Kind::Transient, // the engine went away, a reset, a timeout
                    };
                return Err(Failed {
                    kind,
                    reason: message,
                    downloading: tracker.downloading(),
                });
            }
        }
    }
    let progress = tracker.progress();
    on(PullEvent::Progress(&progress));
    Ok(Pulled {
        digest: tracker.digest,
        bytes: progress.bytes,
        seconds: 0.0,
        already_present: tracker.up_to_date,
        attempts: 0,
        via: None,
        unverified: false,
        platform: None,
    })
}

fn engine_error_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => format!("the Docker engine: {other}"),
    }
}

/// One layer's download.
#[derive(Clone, Copy, Debug, Default)]
struct Layer {
    /// Its size, from the manifest, when berth read it.
    size: Option<u64>,
    current: u64,
    total: u64,
    /// Its download started (or, as far as the engine said, happened).
    downloaded: bool,
    /// Its download is complete.
    complete: bool,
    /// The engine had it already.
    exists: bool,
    done: bool,
}

impl Layer {
    /// Its whole size: the manifest's, else the largest the engine said.
    fn whole(&self) -> u64 {
        self.size.unwrap_or(self.total.max(self.current))
    }

    /// The download is complete: all of it came, whatever the engine said of it (the
    /// containerd image store sends `Download complete` without counts).
    fn completed(&mut self) {
        self.downloaded = true;
        self.complete = true;
        self.current = self.whole().max(self.current);
    }
}

/// Follows the engine's progress messages for one pull, with the layers' sizes from the
/// manifest when berth read it.
struct Tracker {
    layers: BTreeMap<String, Layer>,
    sizes: HashMap<String, u64>,
    started: Instant,
    last: Option<Instant>,
    digest: Option<String>,
    up_to_date: bool,
}

impl Tracker {
    fn new(sizes: HashMap<String, u64>) -> Self {
        Tracker {
            layers: BTreeMap::new(),
            sizes,
            started: Instant::now(),
            last: None,
            digest: None,
            up_to_date: false,
        }
    }

    fn update(
        &mut self,
        id: Option<&str>,
        status: Option<&str>,
        detail: Option<&bollard::models::ProgressDetail>,
    ) {
        let status = status.unwrap_or_default();
        if let Some(d) = status.strip_prefix("Digest: ") {
            self.digest = Some(d.trim().to_string());
            return;
        }
        if status.starts_with("Status: Image is up to date") {
            self.up_to_date = true;
            return;
        }
        let Some(id) = id else { return };
        if status.starts_with("Pulling from") || status.starts_with("Status:") {
            return;
        }
        let size = self.sizes.get(id).copied();
        let layer = self.layers.entry(id.to_string()).or_insert_with(|| Layer {
            size,
            ..Layer::default()
        });
        let num = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok());
        match status {
            "Downloading" => {
                if let Some(d) = detail {
                    layer.current = num(d.current).unwrap_or(layer.current);
                    layer.total = num(d.total).unwrap_or(layer.total);
                }
                layer.downloaded = true;
                layer.complete = false;
            }
            "Download complete" | "Verifying Checksum" | "Extracting" => layer.completed(),
            "Pull complete" => {
                if !layer.exists {
                    layer.completed();
                }
                layer.done = true;
            }
            "Already exists" => {
                layer.exists = true;
                layer.done = true;
            }
            _ => {}
        }
    }

    /// Whether any layer started downloading.
    fn downloading(&self) -> bool {
        self.layers.values().any(|l| l.downloaded && !l.exists)
    }

    fn progress(&self) -> Progress {
        let fetched = || self.layers.values().filter(|l| !l.exists);
        // What the engine reports comes from the registry's manifests: sums saturate.
        let bytes = fetched()
            .filter(|l| l.downloaded)
            .fold(0u64, |sum, l| sum.saturating_add(l.current));
        // The whole of every layer to fetch, once its size is known (from the manifest,
        // from the start).
        let total = fetched()
            .filter(|l| l.downloaded || l.size.is_some())
            .fold(0u64, |sum, l| sum.saturating_add(l.whole()));
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        Progress {
            layers_done: self.layers.values().filter(|l| l.done).count() as u32,
            layers: self.layers.len() as u32,
            bytes,
            total,
            rate: bytes as f64 / secs,
        }
    }

    /// Progress, if enough time passed since the last report.
    fn due(&mut self) -> Option<Progress> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < PROGRESS_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(self.progress())
    }
}

/// The images to pre-pull: `listed` (the feature option and `BERTH_IMAGES`), and with
/// `discover` those named in the workspace's compose files and Dockerfiles, keeping only
/// the discovered images whose registry has credentials (`credentialed`) unless `public`.
/// The images a command works on: those named, else the configured ones and, with
/// `discover`, the workspace's ([`wanted`] says which).
pub fn wanted_by_command(
    named: Vec<String>,
    settings: &crate::settings::Settings,
    credentialed: &dyn Fn(&ImageRef) -> bool,
) -> Wanted {
    let workspace = (named.is_empty() && settings.discover)
        .then(|| {
            settings
                .workspace
                .clone()
                .or_else(|| std::env::current_dir().ok())
        })
        .flatten();
    let listed = if named.is_empty() {
        settings.images.clone()
    } else {
        named
    };
    wanted(
        &listed,
        workspace.as_deref(),
        settings.discover_public,
        credentialed,
    )
}

pub fn wanted(
    listed: &[String],
    discover: Option<&std::path::Path>,
    public: bool,
    credentialed: &dyn Fn(&ImageRef) -> bool,
) -> Wanted {
    let mut w = Wanted::default();
    for raw in listed {
        match ImageRef::parse(raw) {
            Ok(i) if !w.images.contains(&i) => w.images.push(i),
            Ok(_) => {}
            Err(e) => w.invalid.push(format!("{e}; not pulled")),
        }
    }
    if let Some(workspace) = discover {
        let found = crate::discover::discover(workspace);
        w.notes.extend(found.notes);
        let images = &mut w.images;
        for f in found.images {
            if images.contains(&f.image) {
                continue;
            }
            if public || credentialed(&f.image) {
                images.push(f.image);
            } else {
                tracing::debug!(image = %f.image, file = %f.file.display(), "discovered image of a registry without credentials; not pulled");
            }
        }
    }
    w
}

/// The images to pull, and what was left out.
#[derive(Debug, Default)]
pub struct Wanted {
    /// The images, without duplicates, in order.
    pub images: Vec<ImageRef>,
    /// Names that are not image references, each with its error: failures.
    pub invalid: Vec<String>,
    /// What discovery skipped, and why: information.
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_sorted() {
        for m in [
            "unauthorized: authentication required",
            "Get \"http://127.0.0.1:5000/v2/x/manifests/1\": no basic auth credentials",
            "pull access denied for x, repository does not exist or may require 'docker login'",
            "manifest for x:1 not found: manifest unknown: manifest unknown",
            "denied: requested access to the resource is denied",
        ] {
            assert_eq!(classify(m), Kind::Permanent, "{m}");
        }
        for m in [
            "toomanyrequests: You have reached your pull rate limit. denied?",
            "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused",
            "received unexpected HTTP status: 503 Service Unavailable",
            "read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer",
            "unexpected EOF",
        ] {
            assert_eq!(classify(m), Kind::Transient, "{m}");
        }
    }

    #[test]
    fn progress_says_only_what_is_known() {
        assert_eq!(Progress::default().describe(), "starting");
        let p = Progress {
            layers_done: 0,
            layers: 2,
            bytes: 0,
            total: 0,
            rate: 0.0,
        };
        assert_eq!(p.describe(), "0/2 layers, 0 B");
        let p = Progress {
            bytes: 1_500_000,
            total: 3_000_000,
            rate: 500_000.0,
            ..p
        };
        assert_eq!(p.describe(), "0/2 layers, 1.5 MB of 3.0 MB, 500.0 kB/s");
    }

    #[test]
    fn a_layer_downloaded_again_counts_once() {
        let mut t = Tracker::new(HashMap::new());
        let d = |c| bollard::models::ProgressDetail {
            current: Some(c),
            total: Some(1000),
        };
        t.update(Some("l1"), Some("Downloading"), Some(&d(600)));
        // The engine lost the connection and starts the layer again.
        t.update(Some("l1"), Some("Retrying in 5 seconds"), None);
        t.update(Some("l1"), Some("Downloading"), Some(&d(200)));
        assert_eq!(t.progress().bytes, 200);
        t.update(Some("l1"), Some("Download complete"), None);
        assert_eq!(t.progress().bytes, 1000);
    }

    #[test]
    fn sizes_come_from_the_manifest_whatever_the_engine_says() {
        // The containerd image store sends a small layer's "Download complete" without
        // counts, and may say nothing of a layer but that its pull is complete.
        let sizes = HashMap::from([
            ("aaa".to_string(), 4_096),
            ("bbb".to_string(), 1_000_000),
            ("ccc".to_string(), 50),
        ]);
        let mut t = Tracker::new(sizes);
        for id in ["aaa", "bbb", "ccc"] {
            t.update(Some(id), Some("Pulling fs layer"), None);
        }
        t.update(Some("ccc"), Some("Already exists"), None);
        let p = t.progress();
        assert_eq!(
            (p.bytes, p.total, p.layers_done, p.layers),
            (0, 1_004_096, 1, 3),
            "the whole amount is known before a byte arrives"
        );
        let no_counts = bollard::models::ProgressDetail {
            current: None,
            total: None,
        };
        t.update(Some("aaa"), Some("Download complete"), Some(&no_counts));
        assert_eq!(t.progress().bytes, 4_096);
        t.update(Some("bbb"), Some("Pull complete"), Some(&no_counts));
        t.update(Some("aaa"), Some("Pull complete"), Some(&no_counts));
        let p = t.progress();
        assert_eq!((p.bytes, p.total, p.layers_done), (1_004_096, 1_004_096, 3));
        assert!(t.downloading());
    }

    #[test]
    fn a_layer_the_engine_has_is_not_downloaded() {
        let mut t = Tracker::new(HashMap::from([("aaa".to_string(), 4_096)]));
        t.update(Some("aaa"), Some("Already exists"), None);
        t.update(Some("aaa"), Some("Pull complete"), None);
        let p = t.progress();
        assert_eq!((p.bytes, p.total, p.layers_done), (0, 0, 1));
        assert!(!t.downloading());
    }

    #[test]
    fn hints_only_when_true() {
        let spec = PullSpec {
            image: ImageRef::parse("reg.example/team/app:1").unwrap(),
            login: None,
            id: Some("TEAM".into()),
            mirrors: Vec::new(),
        };
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            hint(
                &spec,
                "manifest unknown: manifest unknown",
                None,
                None,
                None
            )
            .as_deref(),
            Some("check that reg.example/team/app:1 exists on reg.example")
        );
        assert!(
            hint(
                &spec,
                "unauthorized: authentication required",
                None,
                None,
                None
            )
            .unwrap()
            .contains("check the secrets TEAM_CONTAINER_REGISTRY_USER")
        );
        let described = Description {
            index: true,
            platforms: vec![Platform::parse("linux/arm64").unwrap()],
            image: None,
        };
        assert_eq!(
            hint(
                &spec,
                "no matching manifest for linux/amd64 in the manifest list entries",
                None,
                Some(&amd64),
                Some(&described)
            )
            .as_deref(),
            Some(
                "reg.example/team/app:1 exists on reg.example but has no image for the engine's platform, linux/amd64 (it has linux/arm64): set the platform option to one it has"
            )
        );
        // What berth cannot explain, it does not pretend to.
        assert_eq!(
            hint(&spec, "invalid reference format", None, None, None),
            None
        );
        let e = PullError::Permanent {
            image: "x".into(),
            reason: "invalid reference format".into(),
            hint: None,
        };
        assert_eq!(e.to_string(), "pull of x failed: invalid reference format");
    }

    #[test]
    fn progress_counts_downloaded_layers_only() {
        let mut t = Tracker::new(HashMap::new());
        let d = |c, t| bollard::models::ProgressDetail {
            current: Some(c),
            total: Some(t),
        };
        t.update(Some("1.0"), Some("Pulling from team/app"), None);
        t.update(Some("aaa"), Some("Already exists"), None);
        t.update(Some("bbb"), Some("Pulling fs layer"), None);
        t.update(Some("bbb"), Some("Downloading"), Some(&d(500, 1000)));
        let p = t.progress();
        assert_eq!(
            (p.layers_done, p.layers, p.bytes, p.total),
            (1, 2, 500, 1000)
        );
        t.update(Some("bbb"), Some("Download complete"), None);
        t.update(Some("bbb"), Some("Pull complete"), None);
        t.update(None, Some("Digest: sha256:abc"), None);
        let p = t.progress();
        assert_eq!((p.layers_done, p.bytes), (2, 1000));
        assert_eq!(t.digest.as_deref(), Some("sha256:abc"));
    }
}
