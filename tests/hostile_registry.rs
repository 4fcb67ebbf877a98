//! Issue 22: nothing a registry or cache sends can crash or fool berth. Each case is made
//! by a real part where one produces it (the test bed's registries, distribution with
//! htpasswd or with token auth naming a realm, distribution as a cache holding other bytes
//! under a tag), and by a loopback fake on hyper only where none does on demand (a
//! `Retry-After` no one would wait for, a body larger than berth reads). Each test asserts
//! the plain message, and that nothing went where it must not: no login to a foreign or
//! plain-HTTP token service, no credentials to a cache without a secret set of its own, no
//! request to a cache its registry cannot vouch for, no plain HTTP after TLS failed.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use support::engine::TestEngine;
use support::fault_proxy::{Fault, FaultProxy};
use support::lifecycle::Container;
use support::*;

fn reg1() -> &'static str {
    testbed().get("BERTH_TB_REG1")
}

/// Registry 1's main user's secret set, for `server`.
fn alice(server: &str) -> Vec<(String, String)> {
    let tb = testbed();
    registry_env(
        "ORIGIN",
        server,
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    )
}

/// `berth pull IMAGE` into `engine`, with these variables.
fn pull(root: &Path, engine: &TestEngine, vars: &[(String, String)], image: &str) -> Output {
    run(berth(root)
        .env("DOCKER_HOST", engine.host())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .args(["pull", image]))
}

fn var(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// The port of `127.0.0.1:PORT`.
fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

/// A body a fake sends: whole (with its `Content-Length`), or in chunks as they come
/// (chunked, no length declared).
enum Body {
    Whole(Vec<u8>),
    Chunks(Vec<Bytes>),
}

/// What a fake answers.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

impl Answer {
    fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: Body::Whole(body.as_bytes().to_vec()),
        }
    }
}

/// One request a fake received.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    /// Path and query.
    target: String,
    /// Its `Host`.
    host: String,
    /// Its `User-Agent`.
    agent: String,
}

/// A loopback server for what no real part sends on demand: it records every request and
/// answers each with `answer(request)`.
struct Fake {
    addr: String,
    received: Arc<Mutex<Vec<Received>>>,
    _server: http::Server,
}

impl Fake {
    fn start(answer: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> Fake {
        let received = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let log = received.clone();
        let server = http::serve(move |req: hyper::Request<hyper::body::Incoming>| {
            let (log, answer) = (log.clone(), answer.clone());
            async move {
                let header = |name: hyper::header::HeaderName| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let r = Received {
                    method: req.method().to_string(),
                    target: req
                        .uri()
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    host: header(hyper::header::HOST),
                    agent: header(hyper::header::USER_AGENT),
                };
                log.lock().unwrap().push(r.clone());
                let a = answer(&r);
                let mut response = hyper::Response::builder().status(a.status);
                for (k, v) in a.headers {
                    response = response.header(k, v);
                }
                let body: http::Body = match a.body {
                    Body::Whole(b) => http_body_util::Full::new(Bytes::from(b))
                        .map_err(|never| match never {})
                        .boxed(),
                    Body::Chunks(chunks) => {
                        let frames = futures_util::stream::iter(
                            chunks
                                .into_iter()
                                .map(|c| Ok::<_, std::io::Error>(hyper::body::Frame::data(c))),
                        );
                        BodyExt::boxed(http_body_util::StreamBody::new(frames))
                    }
                };
                Ok::<_, std::convert::Infallible>(response.body(body).unwrap())
            }
        });
        Fake {
            addr: server.addr.clone(),
            received,
            _server: server,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A token service that answers everyone with a token, and records who asked.
fn token_service() -> Fake {
    Fake::start(|_| Answer::json(200, r#"{"token":"a-token"}"#))
}

/// A registry of its own on loopback (distribution), with fresh storage in `storage`, as
/// `edit` configures it (no auth unless it adds one).
fn registry(storage: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> ExtraRegistry {
    ExtraRegistry::start_with(|config| {
        config["storage"] = serde_json::json!({
            "filesystem": {"rootdirectory": storage},
            "delete": {"enabled": true},
        });
        config.as_object_mut().unwrap().remove("auth");
        edit(config);
    })
}

/// Puts registry 2's tiny image (other bytes than registry 1's) at `target` (an open
/// registry), through `engine`, and leaves the engine without it; its digest there.
fn plant(engine: &TestEngine, root: &Path, target: &str) -> String {
    let tb = testbed();
    let config = root.join("planting");
    let docker = || {
        let mut cmd = engine.docker();
        cmd.env("DOCKER_CONFIG", &config);
        cmd
    };
    docker_login(
        docker(),
        tb.get("BERTH_TB_REG2"),
        tb.get("BERTH_TB_REG2_USER"),
        tb.get("BERTH_TB_REG2_PASSWORD"),
    );
    let other = tb.get("BERTH_TB_REG2_TINY");
    for args in [
        vec!["pull", "-q", other],
        vec!["tag", other, target],
        vec!["push", "-q", target],
    ] {
        let out = run(docker().args(&args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let digests = engine.repo_digests(target).unwrap();
    let out = run(docker().args(["rmi", other, target]));
    assert!(out.status.success(), "{}", text(&out));
    let at = digests.find("sha256:").expect("a digest");
    digests[at..at + 71].to_string()
}

/// A certificate authority and a certificate it signed for `name`, in `dir`: `ca.pem`,
/// `cert.pem`, `key.pem`.
fn certificates(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = run(Command::new("openssl").args(args).current_dir(dir));
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=berth test authority",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        "key.pem",
        "-out",
        "cert.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    dir.to_path_buf()
}

/// distribution with token auth naming `realm` as its token service (over TLS with the
/// certificates in `certs` when `tls`): a real registry whose challenge names that realm.
fn token_registry(storage: &Path, realm: &str, certs: &Path, tls: bool) -> ExtraRegistry {
    registry(storage, |config| {
        config["auth"] = serde_json::json!({"token": {
            "realm": realm,
            "service": "berth-test",
            "issuer": "berth-test",
            "rootcertbundle": certs.join("ca.pem"),
        }});
        if tls {
            config["http"]["tls"] = serde_json::json!({
                "certificate": certs.join("cert.pem"),
                "key": certs.join("key.pem"),
            });
        }
    })
}

/// The first problem doctor's JSON names for registry `server`: (step, found).
fn problem_of(d: &serde_json::Value, server: &str) -> (String, String) {
    let c = doctor_checks(d, server)
        .into_iter()
        .find(|c| c["verdict"] == "problem")
        .unwrap_or_else(|| panic!("a problem for {server}: {d:#}"));
    (
        c["step"].as_str().unwrap().to_string(),
        c["found"].as_str().unwrap().to_string(),
    )
}

// 1. A registry's answer never crashes a pull.

/// Registry 1 behind a proxy that answers every manifest request with 429 and this
/// `Retry-After`.
fn asking_to_wait(retry_after: &str) -> FaultProxy {
    let retry_after = retry_after.to_string();
    FaultProxy::start(reg1(), move |_, path| {
        if path.contains("/manifests/") {
            Fault::Respond(
                429,
                vec![("Retry-After".into(), retry_after.clone())],
                String::new(),
            )
        } else {
            Fault::Pass
        }
    })
}

#[test]
fn a_retry_after_no_one_would_wait_for_fails_the_pull_at_once_and_plainly() {
    let engine = TestEngine::start();
    for (retry_after, asked) in [
        (
            "18446744073709551615",
            "asks to wait 18446744073709551615 s",
        ),
        ("Fri, 31 Dec 9999 23:59:59 GMT", "asks to wait "),
    ] {
        let root = scratch();
        let proxy = asking_to_wait(retry_after);
        let image = format!("{}/team/tiny:1", proxy.addr);
        let out = pull(root.path(), &engine, &alice(&proxy.addr), &image);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(!said.contains("panicked"), "{said}");
        assert!(
            said.contains(&format!("pull of {image} failed after 1 attempts: the registry asks to slow down (HTTP 429, retry after"))
                && said.contains(&format!("{} {asked}", proxy.addr))
                && said.contains("s left of the pull's deadline (pullTimeout); berth does not wait that long"),
            "{said}"
        );
        assert!(
            said.contains("the registry asks to wait longer than the pull's deadline allows"),
            "the log says so: {said}"
        );
        // Asked once, not again; and the engine was never sent to pull it.
        assert_eq!(proxy.seen_of("/manifests/").len(), 1, "{:?}", proxy.seen());
        assert!(
            proxy.seen().iter().all(|s| s.agent.starts_with("berth/")),
            "{:?}",
            proxy.seen()
        );
        assert!(engine.repo_digests(&image).is_none());
    }
}

#[test]
fn the_daemon_says_such_a_pull_failed_and_goes_on() {
    let engine = TestEngine::start();
    let proxy = asking_to_wait("18446744073709551615");
    let image = format!("{}/team/tiny:1", proxy.addr);
    let c = Container::new(&[
        ("BERTH_IMAGES", &image),
        ("BERTH_WAIT_FOR_PULLS", "true"),
        ("BERTH_WAIT_FOR_DOCKER", "true"),
    ]);
    c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
    let out = c.hook("postCreate", &alice(&proxy.addr));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains(&format!(
            "pull of {image} failed after 1 attempts: the registry asks to slow down"
        )) && said.contains("asks to wait 18446744073709551615 s, more than the"),
        "{said}"
    );
    let status = c.status();
    let p = status["pulls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["image"] == image.as_str())
        .unwrap_or_else(|| panic!("{status:#}"));
    assert_eq!(p["state"], "failed", "{status:#}");
    assert!(c.daemon_pid().is_some(), "the daemon still runs");
}

// 2. Every body is read within a limit.

/// A registry (on its own fake) whose token service sends berth a token answer of 1 MiB,
/// in chunks, for `fake/bigtoken`, and whose error for `fake/bigerror`'s manifest is 8 MiB,
/// declared; everything else as a registry with token auth answers.
fn oversized() -> Fake {
    Fake::start(|r| {
        let target = r.target.as_str();
        if target == "/v2/" {
            let mut a = Answer::json(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
            a.headers.push((
                "www-authenticate",
                format!(r#"Bearer realm="http://{}/token",service="fake""#, r.host),
            ));
            return a;
        }
        if target.starts_with("/token") {
            if target.contains("bigtoken") && r.agent.starts_with("berth/") {
                let mut chunks = vec![Bytes::from_static(br#"{"token":""#)];
                chunks.extend((0..64).map(|_| Bytes::from(vec![b'a'; 16 << 10])));
                chunks.push(Bytes::from_static(br#""}"#));
                return Answer {
                    status: 200,
                    headers: vec![("content-type", "application/json".into())],
                    body: Body::Chunks(chunks),
                };
            }
            return Answer::json(200, r#"{"token":"a-token"}"#);
        }
        if target.contains("/tags/list") {
            return Answer::json(500, "{}");
        }
        if target.contains("bigerror/manifests/") && r.method == "GET" {
            return Answer {
                status: 404,
                headers: vec![("content-type", "application/json".into())],
                body: Body::Whole(vec![b' '; 8 << 20]),
            };
        }
        Answer::json(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
    })
}

#[test]
fn bodies_larger_than_berth_reads_are_refused_naming_the_server_and_the_limit() {
    let root = scratch();
    let fake = oversized();
    let secrets = registry_env("FAKE", &fake.addr, "u", "p");
    let big_token = format!("{}/fake/bigtoken:1", fake.addr);
    let big_error = format!("{}/fake/bigerror:1", fake.addr);
    // doctor: each image says which answer was too large, and where from.
    let out = run(berth(root.path())
        .envs(secrets.iter().map(|(k, v)| (k, v)))
        .args(["doctor", &big_token, &big_error]));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "{} sent a token answer larger than 64 KiB, the most berth reads of one; it was not read",
            fake.addr
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "{} sent an answer to a manifest request larger than 64 KiB, the most berth reads of one; it was not read",
            fake.addr
        )),
        "{said}"
    );
    // A pull: berth says why it could not tell, and the engine decides (the fake has no
    // such manifest).
    let engine = TestEngine::start();
    let out = pull(root.path(), &engine, &secrets, &big_token);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "{} sent a token answer larger than 64 KiB, the most berth reads of one",
            fake.addr
        )) && !said.contains("panicked"),
        "{said}"
    );
}

#[test]
fn an_ecr_answer_larger_than_berth_reads_is_refused_naming_the_endpoint_and_the_limit() {
    let root = scratch();
    let huge = FakeServer::start(|_| {
        (
            200,
            format!(
                r#"{{"authorizationData":[{{"authorizationToken":"{}"}}]}}"#,
                "A".repeat(1 << 20)
            ),
        )
    });
    let mut vars = registry_env(
        "ECR",
        &ecr_host("eu-west-1"),
        "AKIAIOSFODNN7EXAMPLE",
        "not-a-real-secret",
    );
    vars.push(var("AWS_ENDPOINT_URL_ECR", &huge.url));
    let out = run(berth(root.path())
        .arg("inject")
        .envs(vars.iter().map(|(k, v)| (k, v))));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    let addr = huge.url.trim_start_matches("http://");
    assert!(
        said.contains(&format!(
            "registry ECR: the ECR API at {} gave an answer berth cannot use: {addr} sent an ECR answer larger than 64 KiB, the most berth reads of one",
            huge.url
        )),
        "{said}"
    );
    assert_eq!(
        huge.requests(),
        1,
        "an answer too large is not asked for again"
    );
}

// 3. A cache is used only when its registry vouches for what it serves.

#[test]
fn a_tag_its_registry_says_does_not_exist_is_never_taken_from_a_cache() {
    let root = scratch();
    let engine = TestEngine::start();
    let storage = tempfile::tempdir().unwrap();
    let cache = registry(storage.path(), |_| {});
    // The cache holds other bytes under a tag registry 1 does not have.
    plant(
        &engine,
        root.path(),
        &format!("{}/team/tiny:absent", cache.addr),
    );
    let watched = FaultProxy::start(&cache.addr, |_, _| Fault::Pass);
    let image = format!("{}/team/tiny:absent", reg1());
    let mut vars = alice(reg1());
    vars.push(var(
        "BERTH_MIRRORS",
        &format!("{}={}", reg1(), watched.addr),
    ));
    let out = pull(root.path(), &engine, &vars, &image);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "pull of {image} failed: manifest unknown: the registry has no such repository, tag or digest (HTTP 404)"
        )),
        "the registry's answer: {said}"
    );
    assert!(
        said.contains(&format!(
            "cache {} passed over: {} says {image} does not exist, which no cache overrides",
            watched.addr,
            reg1()
        )),
        "{said}"
    );
    assert_cache_unasked_and_nothing_pulled(&watched, &engine, &image);
}

#[test]
fn a_cache_its_registry_cannot_vouch_for_is_passed_over_saying_why() {
    let root = scratch();
    let engine = TestEngine::start();
    let storage = tempfile::tempdir().unwrap();
    let cache = registry(storage.path(), |_| {});
    let origin = format!("127.0.0.1:{}", closed_port());
    plant(&engine, root.path(), &format!("{}/team/tiny:1", cache.addr));
    let watched = FaultProxy::start(&cache.addr, |_, _| Fault::Pass);
    let image = format!("{origin}/team/tiny:1");
    let vars = [
        var("BERTH_MIRRORS", &format!("{origin}={}", watched.addr)),
        var("BERTH_PULL_TIMEOUT", "3"),
    ];
    let out = pull(root.path(), &engine, &vars, &image);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "cache {} passed over: {origin} gave no digest for {image}: cannot reach the registry",
            watched.addr
        )) && said.contains(
            "so nothing vouches for what the cache serves (the mirrorsUnverified option allows it)"
        ),
        "{said}"
    );
    assert!(!said.contains("through the cache"), "{said}");
    assert_cache_unasked_and_nothing_pulled(&watched, &engine, &image);
}

#[test]
fn with_mirrors_unverified_the_caches_image_is_used_and_marked_unverified() {
    let root = scratch();
    let engine = TestEngine::start();
    let storage = tempfile::tempdir().unwrap();
    let cache = registry(storage.path(), |_| {});
    let origin = format!("127.0.0.1:{}", closed_port());
    let planted = plant(&engine, root.path(), &format!("{}/team/tiny:1", cache.addr));
    let image = format!("{origin}/team/tiny:1");
    let c = Container::new(&[
        ("BERTH_IMAGES", &image),
        ("BERTH_MIRRORS", &format!("{origin}={}", cache.addr)),
        ("BERTH_MIRRORS_UNVERIFIED", "true"),
        ("BERTH_WAIT_FOR_PULLS", "true"),
        ("BERTH_WAIT_FOR_DOCKER", "true"),
    ]);
    c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
    // The hook's output (the creation log).
    let out = c.hook("postCreate", &[]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains(&format!("pulled {image} ("))
            && said.contains(&format!(
                "through the cache {}, unverified (its registry gave no digest to check it against)",
                cache.addr
            )),
        "{said}"
    );
    // berth status, in words and in JSON.
    let status = text(&run(c.berth().arg("status")));
    assert!(
        status.contains(&format!(
            "from the cache {}, UNVERIFIED: its registry gave no digest to check it against",
            cache.addr
        )),
        "{status}"
    );
    let json = c.status();
    let p = json["pulls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["image"] == image.as_str())
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(
        (&p["state"], &p["via"], &p["unverified"], &p["digest"]),
        (
            &serde_json::json!("done"),
            &serde_json::json!(cache.addr),
            &serde_json::json!(true),
            &serde_json::json!(planted)
        ),
        "{json:#}"
    );
    // The daemon's log.
    let log = std::fs::read_to_string(c.state().join("berth.log")).unwrap();
    assert!(
        log.contains("pulling through the cache unverified") && log.contains(&origin),
        "{log}"
    );
    // In the engine under its original name, from the cache, by the digest it served.
    let digests = engine.repo_digests(&image).expect("the original name");
    assert!(
        digests.contains(&format!("{}/team/tiny@{planted}", cache.addr)),
        "{digests}"
    );
}

// 4. Credentials go only where they belong.

#[test]
fn a_login_never_goes_to_a_token_service_on_another_host() {
    let root = scratch();
    let realm_service = token_service();
    // localhost is loopback too, but not the registry's host (127.0.0.1).
    let realm = format!("http://localhost:{}/token", port(&realm_service.addr));
    let certs = certificates(&root.path().join("certs"), "registry.test");
    let storage = tempfile::tempdir().unwrap();
    let registry = token_registry(storage.path(), &realm, &certs, false);
    let secrets = registry_env("TOKENS", &registry.addr, "alice", "only-for-this-registry");
    let image = format!("{}/team/tiny:1", registry.addr);
    let refused = format!(
        "berth will not send the login for {} to the token service {realm} it names: it is on another host than the registry's; a registry's login goes only to a token service over https",
        registry.addr
    );
    // The pull stops there: neither berth nor the engine sends the login to that realm.
    let engine = TestEngine::start();
    let out = pull(root.path(), &engine, &secrets, &image);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("pull of {image} failed: {refused}"))
            && said.contains(&format!(
                "berth sent nothing there; ask the operator of {} to name a token service over https on its own host or domain",
                registry.addr
            )),
        "{said}"
    );
    // doctor, with the same rule.
    let out = run(berth(root.path())
        .envs(secrets.iter().map(|(k, v)| (k, v)))
        .args(["doctor", "--json", &image]));
    let d: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let (step, found) = problem_of(&d, &registry.addr);
    assert_eq!(step, "login", "{d:#}");
    assert!(found.starts_with(&refused), "{found}");
    assert!(
        realm_service.received().is_empty(),
        "the foreign realm was asked: {:?}",
        realm_service.received()
    );
}

#[test]
fn over_tls_a_login_never_goes_to_a_plain_http_token_service_and_plain_http_never_follows_a_tls_failure()
 {
    let root = scratch();
    let tb = testbed();
    let certs = certificates(&root.path().join("certs"), "registry.test");
    let realm_service = token_service();
    let realm = format!("http://registry.test:{}/token", port(&realm_service.addr));
    let storage = tempfile::tempdir().unwrap();
    let tls = token_registry(storage.path(), &realm, &certs, true);
    // A registry that speaks plain HTTP only, under a name the engine would not use plain
    // HTTP for.
    let plain = FaultProxy::start(reg1(), |_, _| Fault::Pass);
    let tls_server = format!("registry.test:{}", port(&tls.addr));
    let plain_server = format!("plain.test:{}", port(&plain.addr));
    let mut cmd = docker(root.path(), &root.path().join("docker"));
    cmd.args(["run", "--rm", "--network", "host"])
        .args(["--add-host", "registry.test:127.0.0.1"])
        .args(["--add-host", "plain.test:127.0.0.1"])
        .args(["-v", &format!("{}:/berth:ro", berth_bin().display())])
        .args(["-v", &format!("{}:/certs:ro", certs.display())])
        .args(["-e", "SSL_CERT_FILE=/certs/ca.pem"]);
    let mut secrets = registry_env("TLS", &tls_server, "alice", "only-for-this-registry");
    secrets.extend(alice(&plain_server));
    for (k, v) in secrets {
        cmd.args(["-e", &k]).env(k, v);
    }
    let out = run(cmd.args([
        tb.get("BERTH_TB_IMAGE_DEBIAN"),
        "/berth",
        "doctor",
        "--json",
        &format!("{tls_server}/team/tiny:1"),
        &format!("{plain_server}/team/tiny:1"),
    ]));
    let d: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (step, found) = problem_of(&d, &tls_server);
    assert_eq!(step, "login", "{d:#}");
    assert!(
        found.starts_with(&format!(
            "berth will not send the login for {tls_server} to the token service {realm} it names: it is plain http, and the registry is reached over https"
        )),
        "{found}"
    );
    let (step, found) = problem_of(&d, &plain_server);
    assert_eq!(
        (step.as_str(), found.starts_with("TLS failed")),
        ("server", true),
        "{found}"
    );
    assert!(
        realm_service.received().is_empty(),
        "the plain-HTTP realm was asked: {:?}",
        realm_service.received()
    );
    assert!(
        plain.seen().is_empty(),
        "plain HTTP followed a TLS failure: {:?}",
        plain.seen()
    );
}

#[test]
fn a_cache_without_its_own_secret_set_is_sent_no_credentials() {
    let tb = testbed();
    let root = scratch();
    let engine = TestEngine::start();
    // A cache that wants a login (registry 2's users), watched.
    let storage = tempfile::tempdir().unwrap();
    let cache = registry(storage.path(), |config| {
        config["auth"] = serde_json::json!({"htpasswd": {
            "realm": "cache",
            "path": tb.get("BERTH_TB_REG2_HTPASSWD"),
        }});
    });
    let watched = FaultProxy::start(&cache.addr, |_, _| Fault::Pass);
    let image = tb.get("BERTH_TB_REG1_TINY");
    let mut vars = alice(reg1());
    vars.push(var(
        "BERTH_MIRRORS",
        &format!("{}={}", reg1(), watched.addr),
    ));
    let out = pull(root.path(), &engine, &vars, image);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "cache {} passed over: unauthorized: the registry refused the credentials (HTTP 401)",
            watched.addr
        )),
        "{said}"
    );
    let seen = watched.seen();
    assert!(!seen.is_empty(), "the cache was asked");
    assert!(
        seen.iter().all(|s| !s.authorized),
        "the cache was sent credentials: {seen:?}"
    );
    let digests = engine
        .repo_digests(image)
        .expect("pulled from its registry");
    assert!(digests.contains(reg1()), "{digests}");
}

/// The cache behind `watched` was never asked, and the engine holds nothing under `image`.
fn assert_cache_unasked_and_nothing_pulled(watched: &FaultProxy, engine: &TestEngine, image: &str) {
    assert!(
        watched.seen().is_empty(),
        "the cache was asked: {:?}",
        watched.seen()
    );
    assert!(
        engine.repo_digests(image).is_none(),
        "nothing under its name"
    );
}
