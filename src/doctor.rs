//! Why a pull would be refused: for every registry berth knows and every image it is to
//! pull, the steps from the secrets to the engine, each asking the real thing, stopping a
//! registry's checks at the first step that fails and saying what to change.
//!
//! 1. the secret set (where it was found, problems with names or values, never values);
//! 2. the server: name resolution, connection, TLS, the registry API at `/v2/` (over plain
//!    HTTP only for a registry the engine treats as insecure, as the pull path asks it);
//! 3. the login, as `docker login` judges it (basic auth on `/v2/`, or the token service
//!    without a scope, when the realm rule lets it have the login:
//!    [`crate::registry::realm`], the pull path's rule too), or for ECR the key swap;
//! 4. each image: a manifest request with pull scope, the registry's error code in words,
//!    and its rate limit (`ratelimit-remaining`) when it reports one;
//! 5. the Docker side, as the remote user meets it: which credentials the `docker` CLI will
//!    use for the registry (`credHelpers`, a default `credsStore`, `auths`), whether the
//!    engine answers for that user, whether the image is already there.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::account::Account;
use crate::docker_config::{DockerConfig, Location};
use crate::ecr::{EcrClient, EcrError, EndpointVars};
use crate::engine::{self, EngineTarget};
use crate::image::ImageRef;
use crate::inject::{Login, obtain_login};
use crate::registry::client::{Challenge, basic_authorization};
use crate::registry::{RegistryKind, Server, body, realm};
use crate::secrets::{Discovery, Finding, Registry};

/// How long each network step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The manifest types asked for, as the engine asks.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// One step of the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The secret set.
    Secrets,
    /// Name, connection, TLS, `/v2/`.
    Server,
    /// The credentials.
    Login,
    /// An image's manifest.
    Image,
    /// The registry's rate limit.
    RateLimit,
    /// What the Docker CLI and engine of the remote user will do.
    Docker,
}

impl Step {
    /// Its name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Step::Secrets => "secrets",
            Step::Server => "server",
            Step::Login => "login",
            Step::Image => "image",
            Step::RateLimit => "rate limit",
            Step::Docker => "docker",
        }
    }
}

/// What a step found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// As it should be.
    Ok,
    /// Worth knowing; nothing fails because of it.
    Note,
    /// A pull will fail (or the user's `docker` will): what to change is in `fix`.
    Problem,
}

/// One step's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The step.
    pub step: Step,
    /// Its verdict.
    pub verdict: Verdict,
    /// What it found, in words.
    pub found: String,
    /// What to change, for a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(step: Step, found: impl Into<String>) -> Check {
        Check {
            step,
            verdict: Verdict::Ok,
            found: found.into(),
            fix: None,
        }
    }

    fn note(step: Step, found: impl Into<String>) -> Check {
        Check {
            step,
            verdict: Verdict::Note,
            found: found.into(),
            fix: None,
        }
    }

    fn problem(step: Step, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            step,
            verdict: Verdict::Problem,
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

/// One image's checks.
#[derive(Clone, Debug, Serialize)]
pub struct ImageDiagnosis {
    /// The image, as given.
    pub image: String,
    /// Its checks, in order.
    pub checks: Vec<Check>,
}

/// One registry's checks.
#[derive(Clone, Debug, Serialize)]
pub struct RegistryDiagnosis {
    /// The secret set's identifier, when one names it.
    pub id: Option<String>,
    /// The registry, as its config key.
    pub server: String,
    /// The registry's own checks, in order; the last is the first problem, if any.
    pub checks: Vec<Check>,
    /// Its images' checks.
    pub images: Vec<ImageDiagnosis>,
}

impl RegistryDiagnosis {
    /// Every check, the images' included.
    pub fn all_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .chain(self.images.iter().flat_map(|i| &i.checks))
    }

    /// The first problem, in one line: what was found, then what to change.
    pub fn first_problem(&self) -> Option<String> {
        self.all_checks()
            .find(|c| c.verdict == Verdict::Problem)
            .map(|c| match &c.fix {
                Some(fix) => format!("{}: {}; {fix}", c.step.name(), c.found),
                None => format!("{}: {}", c.step.name(), c.found),
            })
    }
}

/// Everything doctor found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Diagnosis {
    /// Secret problems that belong to no usable registry (a skipped set, a bad name).
    pub secrets: Vec<Check>,
    /// Each registry, secret sets first, then registries known only from images.
    pub registries: Vec<RegistryDiagnosis>,
    /// The number of problems.
    pub problems: usize,
}

/// What doctor is given.
pub struct Inputs<'a> {
    /// The secrets, grouped.
    pub discovery: &'a Discovery,
    /// The images to check (parsed), with the names they were given as.
    pub images: Vec<ImageRef>,
    /// The remote user, whose Docker config and engine access are judged.
    pub user: &'a Account,
    /// That user's Docker config folder.
    pub location: &'a Location,
    /// The engine, and how it answered a ping (asked once, by the caller).
    pub engine: Option<(&'a EngineTarget, &'a Result<engine::Engine, String>)>,
    /// Registries the engine would reach over plain HTTP (loopback, its insecure list).
    pub insecure: &'a (dyn Fn(&Server) -> bool + Sync),
    /// GitHub's container registry (`ghcr.io`), whose refusals doctor explains in the
    /// terms of GitHub's package permissions.
    pub github_host: &'a str,
    /// Pull-through caches, per registry.
    pub mirrors: &'a [crate::mirror::Mirrors],
    /// The platform asked for (the `platform` option): an image without one for it would
    /// be refused.
    pub platform: Option<&'a crate::platform::Platform>,
}

/// Runs every check.
pub async fn diagnose(inputs: &Inputs<'_>) -> Diagnosis {
    let http = match crate::tls::http_client(STEP_TIMEOUT, STEP_TIMEOUT) {
        Ok(h) => h,
        Err(e) => {
            return Diagnosis {
                secrets: vec![Check::problem(
                    Step::Server,
                    format!("cannot make an HTTP client: {e}"),
                    "report this as a bug in berth",
                )],
                problems: 1,
                ..Default::default()
            };
        }
    };
    let docker = load_config(inputs.user, inputs.location).await;
    let engine = match inputs.engine {
        Some((target, pinged)) => Some(engine_check(target, pinged, inputs.user).await),
        None => None,
    };
    let mut out = Diagnosis {
        secrets: secret_findings(inputs.discovery),
        ..Default::default()
    };
    let mut keys: Vec<String> = Vec::new();
    for r in &inputs.discovery.registries {
        keys.push(r.server.config_key().to_string());
    }
    for image in &inputs.images {
        let key = image.server().config_key().to_string();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let ecr = EcrClient::new();
    let endpoints = EndpointVars::from_env();
    let ctx = Ctx {
        http: &http,
        ecr: &ecr,
        endpoints: &endpoints,
        docker: &docker,
        engine: engine.as_ref(),
        inputs,
    };
    // Every registry at once (each one's steps in order), reported in a stable order.
    let checks = keys.iter().map(|key| {
        let set = inputs
            .discovery
            .registries
            .iter()
            .find(|r| r.server.config_key() == key);
        let images: Vec<&ImageRef> = inputs
            .images
            .iter()
            .filter(|i| i.server().config_key() == key)
            .collect();
        let server = match set {
            Some(r) => r.server.clone(),
            None => images[0].server(),
        };
        let ctx = &ctx;
        async move { ctx.registry(&server, set, &images).await }
    });
    out.registries = futures_util::future::join_all(checks).await;
    out.problems = out
        .secrets
        .iter()
        .chain(out.registries.iter().flat_map(|r| r.all_checks()))
        .filter(|c| c.verdict == Verdict::Problem)
        .count();
    out
}

/// The one-line diagnosis of a pull that failed: the first problem the checks find for
/// `image` with the login the pull used (`id` names its secret set), `None` when they find
/// none. Bounded: a registry that does not answer costs at most 20 s.
pub async fn explain_failed_pull(
    image: &ImageRef,
    login: Option<&Login>,
    id: Option<&str>,
    user: &Account,
    github_host: &str,
) -> Option<String> {
    let server = image.server();
    let registries = login
        .map(|l| Registry {
            id: id.unwrap_or("?").to_string(),
            kind: RegistryKind::classify(&server, l.user.expose()),
            server: server.clone(),
            user: l.user.clone(),
            password: l.password.clone(),
            session_token: None,
            source: crate::secrets::Source::Environment,
            sources: Vec::new(),
        })
        .into_iter()
        .collect();
    let discovery = Discovery {
        registries,
        findings: Vec::new(),
    };
    let location = Location::for_account(user, None);
    let loopback = crate::registry::client::EngineRegistryConfig::loopback();
    let insecure = |s: &Server| crate::registry::client::insecure(s, &loopback);
    let inputs = Inputs {
        discovery: &discovery,
        images: vec![image.clone()],
        user,
        location: &location,
        engine: None,
        insecure: &insecure,
        github_host,
        mirrors: &[],
        platform: None,
    };
    let d = tokio::time::timeout(Duration::from_secs(20), diagnose(&inputs))
        .await
        .ok()?;
    d.registries.first()?.first_problem()
}

/// Where a set's secrets were found, by source: `REG1_CONTAINER_REGISTRY_SERVER, _USER and
/// _PASSWORD from the environment`, or each source with its names.
fn secrets_found(r: &Registry) -> String {
    let kind = match r.kind {
        RegistryKind::EcrAccessKeys(_) => "; AWS access keys for ECR",
        RegistryKind::EcrToken(_) => "; a ready ECR token",
        _ => "",
    };
    if r.id == crate::secrets::GITHUB_ID {
        return format!(
            "GITHUB_USER and GITHUB_TOKEN from {} (githubRegistry=auto)",
            r.source
        );
    }
    let mut by_source: Vec<(String, Vec<String>)> = Vec::new();
    for (field, source) in &r.sources {
        let source = match source {
            crate::secrets::Source::Environment => "the environment".to_string(),
            other => other.to_string(),
        };
        let name = field.secret_name(&r.id);
        match by_source.iter_mut().find(|(s, _)| *s == source) {
            Some((_, names)) => names.push(name),
            None => by_source.push((source, vec![name])),
        }
    }
    if by_source.is_empty() {
        return format!("{} found ({}){kind}", r.id, r.source);
    }
    let parts: Vec<String> = by_source
        .into_iter()
        .map(|(source, names)| format!("{} from {source}", names.join(", ")))
        .collect();
    format!("{}{kind}", parts.join("; "))
}

/// Findings about sets that are not usable, and names that are not valid, as checks.
fn secret_findings(discovery: &Discovery) -> Vec<Check> {
    discovery
        .findings
        .iter()
        .filter(|f| f.is_fatal_for_set())
        .map(|f| {
            let text = f.to_string();
            match text.split_once("; ") {
                Some((found, fix)) => Check::problem(Step::Secrets, found, fix),
                None => Check::problem(Step::Secrets, text.clone(), "see above"),
            }
        })
        .collect()
}

/// The findings about one usable set (warnings), as notes.
fn set_notes(discovery: &Discovery, id: &str) -> Vec<Check> {
    discovery
        .findings
        .iter()
        .filter(|f| !f.is_fatal_for_set() && finding_names(f, id))
        .map(|f| Check::note(Step::Secrets, f.to_string()))
        .collect()
}

fn finding_names(f: &Finding, id: &str) -> bool {
    match f {
        Finding::TrailingNewline { id: i, .. }
        | Finding::SessionTokenIgnored { id: i }
        | Finding::CaseConflict { id: i, .. } => i == id,
        Finding::DuplicateServer { kept, .. } => kept == id,
        _ => false,
    }
}

/// The remote user's Docker config, read as that user; or why it cannot be.
async fn load_config(user: &Account, location: &Location) -> Result<DockerConfig, String> {
    let location = location.clone();
    match crate::privilege::as_user_bounded(user, crate::inject::WORK_BOUND, move || {
        DockerConfig::load(&location)
    })
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether the engine answered, and answers for the remote user.
async fn engine_check(
    target: &EngineTarget,
    pinged: &Result<engine::Engine, String>,
    user: &Account,
) -> Result<engine::Engine, Check> {
    let engine = pinged.clone().map_err(|e| {
        Check::problem(
            Step::Docker,
            format!("the Docker engine at {target} does not answer: {e}"),
            "start the engine (the docker-in-docker feature starts one with the container), \
                 or set DOCKER_HOST to the one you use",
        )
    })?;
    if let Some(why) = engine::user_access(target, user).await {
        let (found, fix) = why
            .split_once(": ")
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or((why.clone(), "see above".into()));
        return Err(Check::problem(Step::Docker, found, fix));
    }
    Ok(engine)
}

/// How the registry wants to be asked, and where.
struct Endpoint {
    /// The registry.
    server: Server,
    /// `https://HOST`, or `http://HOST` for a registry the engine treats as insecure.
    base: String,
    /// Whether `base` is plain HTTP.
    plain_http: bool,
    challenge: Option<Challenge>,
}

/// The login to try, and where it came from.
struct Credentials {
    login: Login,
    from: String,
}

struct Ctx<'a> {
    http: &'a reqwest::Client,
    ecr: &'a EcrClient,
    endpoints: &'a EndpointVars,
    docker: &'a Result<DockerConfig, String>,
    engine: Option<&'a Result<engine::Engine, Check>>,
    inputs: &'a Inputs<'a>,
}

impl Ctx<'_> {
    /// One registry's checks, and its images'.
    async fn registry(
        &self,
        server: &Server,
        set: Option<&Registry>,
        images: &[&ImageRef],
    ) -> RegistryDiagnosis {
        let mut d = RegistryDiagnosis {
            id: set.map(|r| r.id.clone()),
            server: server.config_key().to_string(),
            checks: Vec::new(),
            images: images
                .iter()
                .map(|i| ImageDiagnosis {
                    image: i.to_string(),
                    checks: Vec::new(),
                })
                .collect(),
        };
        // 1. The secrets.
        let credentials = match set {
            Some(r) => {
                d.checks.push(Check::ok(Step::Secrets, secrets_found(r)));
                d.checks.extend(set_notes(self.inputs.discovery, &r.id));
                None
            }
            None => {
                let found = self
                    .docker
                    .as_ref()
                    .ok()
                    .and_then(|c| c.login(server.config_key()));
                d.checks.push(Check::note(
                    Step::Secrets,
                    match &found {
                        Some(_) => format!(
                            "no secret set names {}; the login in {} is used",
                            server.config_key(),
                            self.inputs.location.file().display()
                        ),
                        None => format!(
                            "no secret set names {}, and {} has no login for it: only public \
                             images can be pulled",
                            server.config_key(),
                            self.inputs.location.file().display()
                        ),
                    },
                ));
                found.map(|(user, password)| Credentials {
                    login: Login {
                        user,
                        password,
                        expires_at: None,
                    },
                    from: "the Docker config".into(),
                })
            }
        };
        if let Some(m) = self
            .inputs
            .mirrors
            .iter()
            .find(|m| m.origin == server.config_key())
        {
            d.checks.push(Check::note(
                Step::Server,
                format!(
                    "its images are pulled through {} first (mirrors), then from it",
                    m.caches.join(", then ")
                ),
            ));
        }
        // 3, first for ECR with access keys: the swap, at the ECR API (its own server).
        let credentials = match set {
            Some(r) => match self.login_of(r).await {
                Ok((c, check)) => {
                    d.checks.extend(check);
                    Some(c)
                }
                Err(check) => {
                    d.checks.push(check);
                    return d;
                }
            },
            None => credentials,
        };
        // 2. The server.
        let endpoint = match self.server(server).await {
            Ok((endpoint, check)) => {
                d.checks.push(check);
                endpoint
            }
            Err(check) => {
                d.checks.push(check);
                return d;
            }
        };
        // 3. The login, at the registry.
        match self.judge_login(&endpoint, credentials.as_ref(), set).await {
            Ok(check) => d.checks.push(check),
            Err(check) => {
                d.checks.push(check);
                return d;
            }
        }
        // 4. The images, and 5. the Docker side.
        let (endpoint, credentials) = (&endpoint, credentials.as_ref());
        let each = images.iter().map(|image| async move {
            let mut checks = self.image(endpoint, image, credentials, set).await;
            checks.extend(self.image_in_engine(image).await);
            checks
        });
        for (out, checks) in d
            .images
            .iter_mut()
            .zip(futures_util::future::join_all(each).await)
        {
            out.checks = checks;
        }
        d.checks.extend(self.docker_side(server, set));
        d
    }

    /// Step 2: name, connection, TLS, `/v2/`.
    async fn server(&self, server: &Server) -> Result<(Endpoint, Check), Check> {
        probe(self.http, server, (self.inputs.insecure)(server)).await
    }

    /// Step 3 for a secret set: its login (ECR's swap for access keys).
    async fn login_of(&self, r: &Registry) -> Result<(Credentials, Option<Check>), Check> {
        let from = format!("{}'s secrets", r.id);
        let RegistryKind::EcrAccessKeys(_) = &r.kind else {
            let login = Login {
                user: r.user.clone(),
                password: r.password.clone(),
                expires_at: None,
            };
            return Ok((Credentials { login, from }, None));
        };
        match obtain_login(self.ecr, self.endpoints, r).await {
            Ok(login) => {
                let until = login
                    .expires_at
                    .map(|t| {
                        let when = humantime::format_rfc3339_seconds(t).to_string();
                        if t < SystemTime::now() {
                            format!(", valid until {when} (already past: this ECR API's clock, or this container's, is off)")
                        } else {
                            format!(", valid until {when}")
                        }
                    })
                    .unwrap_or_default();
                let check = Check::ok(
                    Step::Login,
                    format!(
                        "ECR swapped {}'s access keys for a registry token{until}",
                        r.id
                    ),
                );
                Ok((Credentials { login, from }, Some(check)))
            }
            Err(e) => {
                let fix = match &e.error {
                    EcrError::KeysRejected { code } if code == "SignatureDoesNotMatch" => format!(
                        "check {id}_CONTAINER_REGISTRY_PASSWORD (the secret access key) and \
                         {id}_CONTAINER_REGISTRY_USER (the access key id); if both are right, \
                         this container's clock is off (AWS refuses signatures more than 5 \
                         minutes off)",
                        id = r.id
                    ),
                    EcrError::KeysRejected { .. } => format!(
                        "check {id}_CONTAINER_REGISTRY_USER (the access key id: active, not \
                         deleted) and _PASSWORD; temporary keys also need \
                         {id}_CONTAINER_REGISTRY_AWS_SESSION_TOKEN",
                        id = r.id
                    ),
                    EcrError::AccessDenied { .. } => "attach a policy that allows \
                         ecr:GetAuthorizationToken to the IAM user or role (for pulls also \
                         ecr:BatchGetImage and ecr:GetDownloadUrlForLayer: the \
                         AmazonEC2ContainerRegistryReadOnly policy has all three)"
                        .to_string(),
                    _ => "try again; if it persists, check the network and AWS_ENDPOINT_URL_ECR"
                        .to_string(),
                };
                let found = e.to_string();
                let found = found
                    .split_once("; ")
                    .map_or(found.clone(), |(a, _)| a.to_string());
                Err(Check::problem(Step::Login, found, fix))
            }
        }
    }

    /// Step 3 at the registry: see [`judge_login`].
    async fn judge_login(
        &self,
        endpoint: &Endpoint,
        credentials: Option<&Credentials>,
        set: Option<&Registry>,
    ) -> Result<Check, Check> {
        judge_login(self.http, endpoint, credentials, set).await
    }

    /// Step 4: the image's manifest, with pull scope; its rate limit.
    async fn image(
        &self,
        endpoint: &Endpoint,
        image: &ImageRef,
        credentials: Option<&Credentials>,
        set: Option<&Registry>,
    ) -> Vec<Check> {
        let reference = image.pull_tag();
        let path = image.path();
        let authorization = match &endpoint.challenge {
            None => None,
            Some(Challenge::Bearer { realm, service }) => {
                match self
                    .token(endpoint, realm, service.as_deref(), path, credentials)
                    .await
                {
                    Ok(t) => Some(t),
                    Err(check) => return vec![check],
                }
            }
            Some(_) => credentials.map(|c| basic_authorization(&c.login)),
        };
        let url = format!("{}/v2/{path}/manifests/{reference}", endpoint.base);
        let ask = |method: reqwest::Method| {
            let mut r = self
                .http
                .request(method, &url)
                .header(reqwest::header::ACCEPT, ACCEPT);
            if let Some(a) = &authorization {
                r = r.header(reqwest::header::AUTHORIZATION, a);
            }
            r.send()
        };
        let response = match ask(reqwest::Method::HEAD).await {
            Ok(r) => r,
            Err(e) => {
                return vec![Check::problem(
                    Step::Image,
                    format!(
                        "the manifest request failed: {}",
                        crate::tls::describe_error(&e)
                    ),
                    "try again; the registry stopped answering",
                )];
            }
        };
        let status = response.status().as_u16();
        let mut checks = Vec::new();
        let limit = rate_limit(response.headers());
        if (200..300).contains(&status) {
            let digest = response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(no digest given)")
                .to_string();
            let exists = format!(
                "{path}:{reference} exists ({digest}) and may be pulled with these credentials"
            );
            checks.push(match self.inputs.platform {
                None => Check::ok(Step::Image, exists),
                Some(asked) => {
                    let repository = format!("{}/v2/{path}", endpoint.base);
                    let digest = Some(digest.as_str()).filter(|d| d.contains(':'));
                    self.platform_check(
                        asked,
                        &repository,
                        digest,
                        authorization.as_deref(),
                        exists,
                    )
                    .await
                }
            });
        } else {
            // A HEAD has no body: ask again with GET for the registry's error code (a
            // manifest, should it answer with one, within a manifest's limit).
            let (mut code, mut message) = match ask(reqwest::Method::GET).await {
                Ok(r) => {
                    let limit = if r.status().is_success() {
                        body::MANIFEST_LIMIT
                    } else {
                        body::SMALL_LIMIT
                    };
                    match body::read(r, limit, "an answer to a manifest request").await {
                        Ok(body) => error_code(&body),
                        Err(e) => (None, Some(e.to_string())),
                    }
                }
                Err(_) => (None, None),
            };
            // Some registries say MANIFEST_UNKNOWN for a repository they do not have: its
            // tag list tells the two apart.
            if status == 404 {
                let mut tags = self
                    .http
                    .get(format!("{}/v2/{path}/tags/list", endpoint.base));
                if let Some(a) = &authorization {
                    tags = tags.header(reqwest::header::AUTHORIZATION, a);
                }
                if let Ok(r) = tags.send().await {
                    let known = match r.status().as_u16() {
                        200..=299 => Some("MANIFEST_UNKNOWN"),
                        404 => Some("NAME_UNKNOWN"),
                        _ => None,
                    };
                    if let Some(k) = known.filter(|k| code.as_deref() != Some(k)) {
                        code = Some(k.into());
                        message = None;
                    }
                }
            }
            let mut refusal = image_refusal(
                status,
                code.as_deref(),
                message.as_deref(),
                image,
                credentials,
                set,
            );
            if matches!(status, 401 | 403 | 404)
                && let Some(fix) = github_fix(image, set, self.inputs.github_host)
            {
                refusal.fix = Some(fix);
            }
            checks.push(refusal);
        }
        if let Some((remaining, window)) = limit {
            let window = window.map(|w| format!(" per {w} s")).unwrap_or_default();
            checks.push(if remaining == 0 {
                Check::problem(
                    Step::RateLimit,
                    format!(
                        "the registry's pull limit is used up (ratelimit-remaining: 0{window})"
                    ),
                    "wait for the window to pass, or log in with an account with a higher \
                     limit; this is not a permission problem",
                )
            } else {
                Check::note(
                    Step::RateLimit,
                    format!("{remaining} pulls left{window} (ratelimit-remaining)"),
                )
            });
        } else if status == 429 {
            checks.push(Check::problem(
                Step::RateLimit,
                format!(
                    "the registry asks to slow down (HTTP 429{})",
                    crate::registry::client::retry_after(response.headers())
                        .map(|d| format!(", retry after {} s", d.as_secs()))
                        .unwrap_or_default()
                ),
                "wait and pull again; this is not a permission problem",
            ));
        }
        checks
    }

    /// Whether the image has an image for the platform asked (its index's entries, or a
    /// single image's configuration), as a pull with that platform would check it:
    /// `repository` is `BASE/v2/PATH`, `digest` the manifest's, `exists` what the manifest
    /// request found.
    async fn platform_check(
        &self,
        asked: &crate::platform::Platform,
        repository: &str,
        digest: Option<&str>,
        authorization: Option<&str>,
        exists: String,
    ) -> Check {
        use crate::registry::manifest::{self, Manifest};
        let get = |u: String| {
            let mut r = self.http.get(u).header(reqwest::header::ACCEPT, ACCEPT);
            if let Some(a) = authorization {
                r = r.header(reqwest::header::AUTHORIZATION, a);
            }
            async move {
                let response = r.send().await.ok()?;
                if !response.status().is_success() {
                    return None;
                }
                body::read(response, body::MANIFEST_LIMIT, "a manifest")
                    .await
                    .ok()
            }
        };
        let unread = || {
            Check::note(
                Step::Image,
                format!("{exists}; berth could not read its manifest to see its platforms"),
            )
        };
        let Some(digest) = digest else {
            return unread();
        };
        let body = match get(format!("{repository}/manifests/{digest}")).await {
            Some(b) if manifest::digest_matches(digest, &b) => b,
            _ => return unread(),
        };
        let has: Vec<crate::platform::Platform> = match Manifest::parse(&body) {
            Manifest::Index(entries) => entries.into_iter().map(|e| e.platform).collect(),
            Manifest::Image { config, .. } => {
                match get(format!("{repository}/blobs/{config}")).await {
                    Some(c) if manifest::digest_matches(&config, &c) => {
                        manifest::config_platform(&c).into_iter().collect()
                    }
                    _ => return unread(),
                }
            }
            Manifest::Other => return unread(),
        };
        if has.iter().any(|p| asked.matches(p)) {
            return Check::ok(Step::Image, format!("{exists}, for {asked}"));
        }
        Check::problem(
            Step::Image,
            format!(
                "{exists}, but has no {asked} image (it has {})",
                crate::platform::list(&has)
            ),
            format!(
                "set the platform option to one it has, or leave it unset for the engine's own; or publish a {asked} image under this name"
            ),
        )
    }

    /// A pull token for `path` from the token service: with the login only where the
    /// realm rule lets it go, anonymously without one.
    async fn token(
        &self,
        endpoint: &Endpoint,
        realm: &str,
        service: Option<&str>,
        path: &str,
        credentials: Option<&Credentials>,
    ) -> Result<String, Check> {
        let parsed = match credentials {
            Some(_) => realm::check(&endpoint.server, endpoint.plain_http, realm)
                .map_err(|e| realm_refused(Step::Image, &e)),
            None => reqwest::Url::parse(realm).map_err(|_| {
                Check::problem(
                    Step::Image,
                    format!("the token service {realm} is not a URL"),
                    "report it to the registry's operator",
                )
            }),
        };
        let mut url = parsed?;
        if let Some(s) = service {
            url.query_pairs_mut().append_pair("service", s);
        }
        url.query_pairs_mut()
            .append_pair("scope", &format!("repository:{path}:pull"));
        let mut request = self.http.get(url);
        if let Some(c) = credentials {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                basic_authorization(&c.login),
            );
        }
        let response = request.send().await.map_err(|e| {
            Check::problem(
                Step::Image,
                format!(
                    "the token service did not answer: {}",
                    crate::tls::describe_error(&e)
                ),
                "try again",
            )
        })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(Check::problem(
                Step::Image,
                format!("the token service refused a pull token for {path} (HTTP {status})"),
                "give the user read access to the repository",
            ));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = body::read(response, body::SMALL_LIMIT, "a token answer")
            .await
            .map_err(|e| {
                Check::problem(
                    Step::Image,
                    e.to_string(),
                    "report it to the registry's operator",
                )
            })?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            Check::problem(
                Step::Image,
                "the token service's answer is not JSON with a token",
                "report it to the registry's operator",
            )
        })?;
        answer
            .token
            .or(answer.access_token)
            .map(|t| format!("Bearer {t}"))
            .ok_or_else(|| {
                Check::problem(
                    Step::Image,
                    "the token service gave no token",
                    "report it to the registry's operator",
                )
            })
    }

    /// Step 5 for an image: whether the engine has it already.
    async fn image_in_engine(&self, image: &ImageRef) -> Option<Check> {
        let Some(Ok(engine)) = self.engine else {
            return None;
        };
        match engine.docker.inspect_image(&image.to_string()).await {
            Ok(i) => {
                // Where it came from: a name it was pulled by at a pull-through cache.
                let origin = format!("{}@", image.repository());
                let from = i
                    .repo_digests
                    .unwrap_or_default()
                    .iter()
                    .find(|d| !d.starts_with(&origin))
                    .and_then(|d| d.split_once('@'))
                    .map(|(name, _)| format!(", pulled as {name} (a cache)"))
                    .unwrap_or_default();
                Some(Check::note(
                    Step::Docker,
                    format!(
                        "already in the engine ({}{from})",
                        i.id.as_deref().unwrap_or("?")
                    ),
                ))
            }
            Err(_) => Some(Check::note(Step::Docker, "not in the engine yet")),
        }
    }

    /// Step 5 for the registry: the credentials the remote user's `docker` will use, and
    /// the engine.
    fn docker_side(&self, server: &Server, set: Option<&Registry>) -> Vec<Check> {
        let key = server.config_key();
        let user = &self.inputs.user.name;
        let file = self.inputs.location.file();
        let mut checks = Vec::new();
        match self.docker {
            Err(e) => checks.push(Check::problem(
                Step::Docker,
                format!("{user}'s Docker config cannot be read: {e}"),
                format!("fix or remove {}", file.display()),
            )),
            Ok(config) => {
                let helper = config
                    .cred_helper(key)
                    .map(|h| (h.to_string(), "credHelpers"))
                    .or_else(|| config.creds_store().map(|h| (h.to_string(), "credsStore")));
                let has_entry = config.login(key).is_some();
                checks.push(match helper {
                    Some((h, _)) if h == crate::docker_config::HELPER_NAME => Check::ok(
                        Step::Docker,
                        format!("{user}'s docker asks berth's credential helper for {key}"),
                    ),
                    Some((h, "credHelpers")) if set.is_some() => Check::problem(
                        Step::Docker,
                        format!(
                            "{user}'s docker asks docker-credential-{h} for {key} (credHelpers in \
                             {}), not the credentials berth writes",
                            file.display()
                        ),
                        format!(
                            "remove credHelpers[\"{key}\"] from {}, or set it to \"berth\"",
                            file.display()
                        ),
                    ),
                    Some((h, "credsStore")) if set.is_some() => Check::problem(
                        Step::Docker,
                        format!(
                            "the default credsStore \"{h}\" in {} hides the entry for {key}: \
                             {user}'s docker asks docker-credential-{h}, not auths",
                            file.display()
                        ),
                        format!(
                            "add \"credHelpers\": {{\"{key}\": \"berth\"}} (berth's \
                             credentialHelper option does it), or remove credsStore"
                        ),
                    ),
                    Some((h, how)) => Check::note(
                        Step::Docker,
                        format!("{user}'s docker asks docker-credential-{h} for {key} ({how})"),
                    ),
                    None if has_entry => Check::ok(
                        Step::Docker,
                        format!(
                            "{user}'s docker uses the entry for {key} in {}",
                            file.display()
                        ),
                    ),
                    None if set.is_some() => Check::note(
                        Step::Docker,
                        format!(
                            "{} has no entry for {key} yet: berth writes it at injectAt (or \
                             run berth inject)",
                            file.display()
                        ),
                    ),
                    None => Check::note(
                        Step::Docker,
                        format!("{user}'s docker has no credentials for {key}"),
                    ),
                });
            }
        }
        match self.engine {
            Some(Err(check)) => checks.push(check.clone()),
            Some(Ok(e)) => checks.push(Check::ok(
                Step::Docker,
                format!("the engine answers for {user} (API {})", e.api_version),
            )),
            None => {}
        }
        checks
    }
}

/// Whether a registry accepts a login, as `docker login` judges it (basic auth on its
/// `/v2/`, or its token service with the account and no scope): doctor's login step, and
/// the check berth makes as soon as it writes (or hands to its helper) a registry's login,
/// so that a wrong password is named when it is written, not when a pull fails. `Ok` when
/// accepted (or when the registry needs no login), else doctor's verdict with what to do.
pub async fn check_login(
    http: &reqwest::Client,
    registry: &Registry,
    login: &Login,
) -> Result<Check, Check> {
    let loopback = crate::registry::client::EngineRegistryConfig::loopback();
    let insecure = crate::registry::client::insecure(&registry.server, &loopback);
    let (endpoint, _) = probe(http, &registry.server, insecure).await?;
    let credentials = Credentials {
        login: login.clone(),
        from: format!("{}'s secrets", registry.id),
    };
    judge_login(http, &endpoint, Some(&credentials), Some(registry)).await
}

/// Step 2: whether the server answers as a registry (name, connection, TLS, `/v2/`), as
/// the engine would reach it (`insecure`: over plain HTTP from the start), and how it
/// wants a login.
async fn probe(
    http: &reqwest::Client,
    server: &Server,
    insecure: bool,
) -> Result<(Endpoint, Check), Check> {
    let api = server.api_host().to_string();
    let (host, port) = server.api_address();
    let port = port.unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> =
        match tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => {
                return Err(Check::problem(
                    Step::Server,
                    format!("cannot resolve {host}: {e}"),
                    "check the host name in the SERVER secret (or the image name), and the \
                     container's DNS (/etc/resolv.conf, /etc/hosts)",
                ));
            }
            Err(_) => {
                return Err(Check::problem(
                    Step::Server,
                    format!("resolving {host} took over {} s", STEP_TIMEOUT.as_secs()),
                    "check the container's DNS (/etc/resolv.conf)",
                ));
            }
        };
    let mut connected = None;
    let mut last_error = String::from("no address");
    for addr in &addrs {
        match tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => {
                connected = Some(*addr);
                break;
            }
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = format!("no answer in {} s", STEP_TIMEOUT.as_secs()),
        }
    }
    let Some(addr) = connected else {
        return Err(Check::problem(
            Step::Server,
            format!("nothing answers at {api} ({last_error})"),
            format!(
                "the registry is down, or its port is wrong or blocked; check that \
                 {api} is where the registry listens"
            ),
        ));
    };
    // Plain HTTP from the start where the engine would use it, never after TLS failed.
    let scheme = if insecure { "http" } else { "https" };
    let base = format!("{scheme}://{api}");
    let response = match http.get(format!("{base}/v2/")).send().await {
        Ok(r) => r,
        Err(e) => {
            let why = crate::tls::describe_error(&e);
            let (found, fix) = match why.split_once("; ") {
                Some((a, b)) if why.starts_with("TLS failed") => (a.to_string(), b.to_string()),
                _ if why.starts_with("TLS failed") => (
                    why.clone(),
                    "fix the registry's certificate, or trust its authority in the image".into(),
                ),
                _ => (
                    format!("{base}/v2/ did not answer: {why}"),
                    "the registry is down or is not a registry; check the SERVER secret".into(),
                ),
            };
            return Err(Check::problem(Step::Server, found, fix));
        }
    };
    let status = response.status().as_u16();
    let challenge = match status {
        200..=299 => None,
        401 => Some(Challenge::parse(
            response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        )),
        _ => {
            return Err(Check::problem(
                Step::Server,
                format!("{base}/v2/ answered HTTP {status}: no registry API there"),
                "the SERVER secret must be the registry's host (and port), such as ghcr.io \
                 or myregistry.azurecr.io, not a web page",
            ));
        }
    };
    let how = match &challenge {
        None => "open, no login needed".to_string(),
        Some(Challenge::Basic) => "basic auth".to_string(),
        Some(Challenge::Bearer { realm, .. }) => format!("token service {realm}"),
        Some(Challenge::BearerWithoutRealm) => {
            "a bearer challenge without a token service".to_string()
        }
        Some(Challenge::Other(c)) => format!("challenge {c}"),
    };
    let check = Check::ok(
        Step::Server,
        format!(
            "{api} resolves ({}), connects; registry API at {base}/v2/ ({how})",
            addr.ip()
        ),
    );
    let endpoint = Endpoint {
        server: server.clone(),
        plain_http: insecure,
        base,
        challenge,
    };
    Ok((endpoint, check))
}

/// Step 3 at the registry: whether it accepts the login, as `docker login` judges it.
async fn judge_login(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    credentials: Option<&Credentials>,
    set: Option<&Registry>,
) -> Result<Check, Check> {
    let Some(challenge) = &endpoint.challenge else {
        return Ok(Check::ok(Step::Login, "the registry needs no login"));
    };
    let Some(c) = credentials else {
        return Ok(Check::note(
            Step::Login,
            "no credentials to give: the registry will answer as to anyone",
        ));
    };
    let user = c.login.user.expose().to_string();
    let fix = || match set {
        Some(r) if matches!(r.kind, RegistryKind::EcrToken(_)) => format!(
            "the ready ECR token in {id}_CONTAINER_REGISTRY_PASSWORD has expired (they last \
             12 hours) or is for another registry: give access keys instead, and berth \
             renews the token",
            id = r.id
        ),
        Some(r) => format!(
            "check {id}_CONTAINER_REGISTRY_USER and {id}_CONTAINER_REGISTRY_PASSWORD (a \
             token may have expired, been revoked, or lack the scope to read packages)",
            id = r.id
        ),
        None => format!(
            "log in again (docker login {}), or add a secret set for this registry",
            endpoint.base
        ),
    };
    let basic = basic_authorization(&c.login);
    let (url, what) = match challenge {
        Challenge::Basic => (format!("{}/v2/", endpoint.base), "basic auth".to_string()),
        Challenge::Bearer { realm, service } => {
            let mut url = realm::check(&endpoint.server, endpoint.plain_http, realm)
                .map_err(|e| realm_refused(Step::Login, &e))?;
            if let Some(s) = service {
                url.query_pairs_mut().append_pair("service", s);
            }
            url.query_pairs_mut().append_pair("account", &user);
            (url.to_string(), format!("the token service {realm}"))
        }
        Challenge::BearerWithoutRealm => {
            return Err(Check::problem(
                Step::Login,
                "the registry asks for a bearer token but names no token service",
                "report it to the registry's operator; the engine cannot log in either",
            ));
        }
        Challenge::Other(c) => {
            return Ok(Check::note(
                Step::Login,
                format!("the registry asks for {c}, which berth cannot check"),
            ));
        }
    };
    let response = http
        .get(&url)
        .header(reqwest::header::AUTHORIZATION, basic)
        .send()
        .await
        .map_err(|e| {
            Check::problem(
                Step::Login,
                format!("{what} did not answer: {}", crate::tls::describe_error(&e)),
                "try again; the registry's login service is down",
            )
        })?;
    match response.status().as_u16() {
        200..=299 => Ok(Check::ok(
            Step::Login,
            format!("{what} accepts {user}'s login (from {})", c.from),
        )),
        401 | 403 => Err(Check::problem(
            Step::Login,
            format!(
                "{what} refused {user}'s login (HTTP {}), as `docker login` would",
                response.status().as_u16()
            ),
            fix(),
        )),
        429 => Err(Check::problem(
            Step::RateLimit,
            format!("{what} asks to slow down (HTTP 429)"),
            "wait and run doctor again",
        )),
        s => Err(Check::problem(
            Step::Login,
            format!("{what} answered HTTP {s}"),
            "try again; the registry's login service failed",
        )),
    }
}

/// A token service the realm rule keeps the login from, as a problem at `step`.
fn realm_refused(step: Step, e: &realm::RealmRefused) -> Check {
    Check::problem(
        step,
        e.to_string(),
        format!(
            "berth sent nothing there; ask the operator of {} to name a token service over \
             https on its own host or domain",
            e.registry
        ),
    )
}

/// What a refused manifest request means, and what to do.
fn image_refusal(
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
    image: &ImageRef,
    credentials: Option<&Credentials>,
    set: Option<&Registry>,
) -> Check {
    let path = image.path();
    let reference = image.pull_tag();
    let said = match (code, message) {
        (Some(c), Some(m)) => format!(" ({c}: {m})"),
        (Some(c), None) => format!(" ({c})"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    };
    let user = credentials
        .map(|c| c.login.user.expose().to_string())
        .unwrap_or_else(|| "anyone".into());
    let who = set.map_or_else(
        || "the credentials".to_string(),
        |r| format!("{}'s user", r.id),
    );
    match (status, code) {
        (404, Some("MANIFEST_UNKNOWN")) | (404, Some("TAG_INVALID")) => Check::problem(
            Step::Image,
            format!("repository {path} has no {reference}{said}"),
            "check the tag or digest: the repository exists, this version of it does not",
        ),
        (404, _) => Check::problem(
            Step::Image,
            format!(
                "no repository {path} on {}{said}",
                image.server().config_key()
            ),
            "check the image name (registries also answer so when the user may not see the \
             repository)",
        ),
        (401, _) if credentials.is_none() => Check::problem(
            Step::Image,
            format!("{path} needs a login{said}"),
            format!(
                "add a secret set for {} (<ID>_CONTAINER_REGISTRY_SERVER, _USER, _PASSWORD)",
                image.server().config_key()
            ),
        ),
        (401, _) | (403, _) => Check::problem(
            Step::Image,
            format!("{user} may not pull {path} (HTTP {status}){said}"),
            format!("give {who} read access to {path}, or use credentials that have it"),
        ),
        (429, _) => Check::problem(
            Step::Image,
            format!("the registry asks to slow down (HTTP 429){said}"),
            "wait and pull again; this is not a permission problem",
        ),
        (s, _) => Check::problem(
            Step::Image,
            format!("the manifest request failed with HTTP {s}{said}"),
            "try again; the registry failed on its side",
        ),
    }
}

/// What to change when GitHub's container registry refuses a pull, in the terms of its
/// package permissions; `None` for other registries.
fn github_fix(image: &ImageRef, set: Option<&Registry>, github_host: &str) -> Option<String> {
    let server = image.server();
    if server.config_key() != Server::parse(github_host).ok()?.config_key() {
        return None;
    }
    let path = image.path();
    let package = path.split('/').skip(1).collect::<Vec<_>>().join("/");
    let owner = path.split('/').next().unwrap_or_default();
    let pat = format!(
        "create a personal access token (classic) with the read:packages scope, from an \
         account with read access to the package, and store it as the secret set \
         GHCR_CONTAINER_REGISTRY_SERVER={host}, GHCR_CONTAINER_REGISTRY_USER=<that account>, \
         GHCR_CONTAINER_REGISTRY_PASSWORD=<the token>",
        host = server.config_key()
    );
    Some(match set {
        Some(r) if r.id == crate::secrets::GITHUB_ID => format!(
            "the codespace's own GITHUB_TOKEN reads only packages that inherit access from \
             this repository or grant it access: in the settings of package {package} of \
             {owner}, add this repository under \"Manage Codespaces access\" (or link the \
             package to the repository and let it inherit access); a codespace of a public \
             repository cannot read an internal package. If you cannot change the package, \
             {pat}"
        ),
        Some(r) => format!(
            "{id}'s token needs the read:packages scope (GitHub's container registry takes only \
             personal access tokens (classic), not fine-grained ones) and its account read \
             access to package {package} of {owner}: granted in the package's settings, or \
             inherited from the repository it is linked to",
            id = r.id
        ),
        None => format!(
            "package {package} of {owner} is private or internal: {pat}, or set \
             githubRegistry to auto so that a codespace's GITHUB_TOKEN is used"
        ),
    })
}

/// The first error's code and message in a registry's error body.
fn error_code(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Error>,
    }
    #[derive(serde::Deserialize)]
    struct Error {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) => e
            .errors
            .into_iter()
            .next()
            .map(|e| (e.code, e.message))
            .unwrap_or((None, None)),
        Err(_) => (None, None),
    }
}

/// `ratelimit-remaining: N;w=SECONDS` (Docker Hub's form), as (N, window).
fn rate_limit(headers: &reqwest::header::HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get("ratelimit-remaining")?.to_str().ok()?;
    let mut parts = value.split(';');
    let remaining = parts.next()?.trim().parse().ok()?;
    let window = parts
        .find_map(|p| p.trim().strip_prefix("w="))
        .and_then(|w| w.parse().ok());
    Some((remaining, window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_read_in_docker_hubs_form() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("ratelimit-remaining", "0;w=21600".parse().unwrap());
        assert_eq!(rate_limit(&h), Some((0, Some(21600))));
        h.insert("ratelimit-remaining", "76".parse().unwrap());
        assert_eq!(rate_limit(&h), Some((76, None)));
        h.insert("ratelimit-remaining", "many".parse().unwrap());
        assert_eq!(rate_limit(&h), None);
    }

    #[test]
    fn error_bodies_give_their_first_code() {
        assert_eq!(
            error_code(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#),
            (
                Some("MANIFEST_UNKNOWN".into()),
                Some("manifest unknown".into())
            )
        );
        assert_eq!(error_code(b"<html>"), (None, None));
    }

    #[test]
    fn challenges_name_their_scheme() {
        assert!(matches!(
            Challenge::parse(r#"Bearer realm="https://auth.example/token",service="reg""#),
            Challenge::Bearer { realm, service: Some(s) } if realm == "https://auth.example/token" && s == "reg"
        ));
        assert!(matches!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Challenge::Basic
        ));
    }
}
