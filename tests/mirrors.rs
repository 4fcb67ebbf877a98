//! Pull-through caches for any registry (the `mirrors` option), against a real cache:
//! distribution 2.8 in proxy mode on loopback, in front of a test registry, with the
//! origin's credentials in its `proxy` section. Pulls go through it and land under their
//! original name; a stopped cache falls back to the origin; a cache that serves another
//! image under the same tag is refused by the digest check; the cache's and the origin's
//! credentials are never mixed up.
//!
//! distribution's proxy mode gives its `proxy` credentials only to a token service (it
//! files them under the token realm), and the test registries use basic auth: a loopback
//! shim between the cache and the origin adds the origin's login to the cache's requests,
//! as the cache itself would with a token service.
//!
//! Issue 24: the pulls through a cache, the daemon's and doctor's run on every engine
//! set-up (docker.io 20.10, and 28.5 with either image store), and an image the engine
//! holds costs its cache no request; the fallbacks and refusals, which are berth's alone, on
//! 20.10.

mod support;

use std::path::Path;
use std::process::Output;

use support::engine::TestEngine;
use support::fault_proxy::{Fault, FaultProxy};
use support::*;

/// A registry of its own on loopback, with fresh storage: a pull-through cache of
/// `upstream` (with `user`'s credentials) when given, and with its own users (an htpasswd
/// file) when given, else open.
fn registry(
    storage: &Path,
    upstream: Option<(&str, &str, &str)>,
    htpasswd: Option<&str>,
) -> ExtraRegistry {
    ExtraRegistry::start_with(|config| {
        config["storage"] = serde_json::json!({
            "filesystem": {"rootdirectory": storage},
            "delete": {"enabled": true},
        });
        match htpasswd {
            Some(path) => {
                config["auth"] = serde_json::json!({"htpasswd": {"realm": "cache", "path": path}})
            }
            None => {
                config.as_object_mut().unwrap().remove("auth");
            }
        }
        if let Some((url, user, password)) = upstream {
            config["proxy"] = serde_json::json!({
                "remoteurl": format!("http://{url}"),
                "username": user,
                "password": password,
            });
        }
    })
}

/// Registry 1 behind a watching proxy (`origin`: every request that reaches the registry,
/// and as whom), and a distribution pull-through cache of it (`cache`), with its own users
/// when `own_users` names an htpasswd file.
struct Cached {
    origin: FaultProxy,
    _shim: FaultProxy,
    _storage: tempfile::TempDir,
    cache: ExtraRegistry,
}

impl Cached {
    fn start(own_users: Option<&str>) -> Cached {
        let tb = testbed();
        let origin = FaultProxy::start(tb.get("BERTH_TB_REG1"), |_, _| Fault::Pass);
        let shim = login_shim(&origin.addr);
        let storage = tempfile::tempdir().unwrap();
        let cache = registry(
            storage.path(),
            Some((
                &shim.addr,
                tb.get("BERTH_TB_REG1_USER"),
                tb.get("BERTH_TB_REG1_PASSWORD"),
            )),
            own_users,
        );
        Cached {
            origin,
            _shim: shim,
            _storage: storage,
            cache,
        }
    }
}

/// The shim that holds the origin's login (registry 1's main user) for a cache.
fn login_shim(origin: &str) -> FaultProxy {
    use base64::Engine as _;
    let tb = testbed();
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            tb.get("BERTH_TB_REG1_USER"),
            tb.get("BERTH_TB_REG1_PASSWORD")
        ))
    );
    FaultProxy::start(origin, move |_, _| {
        Fault::PassWithLogin(authorization.clone())
    })
}

/// `berth pull IMAGE` into `engine`, with these secrets and mirrors.
fn pull(
    root: &Path,
    engine: &TestEngine,
    secrets: &[(String, String)],
    mirrors: &str,
    image: &str,
) -> Output {
    run(berth(root)
        .env("DOCKER_HOST", engine.host())
        .env("BERTH_MIRRORS", mirrors)
        .envs(secrets.iter().map(|(k, v)| (k, v)))
        .args(["pull", image]))
}

/// `berth pull` of registry 1's tiny image (by the watched origin's name) through `cached`,
/// which must succeed through the cache; what it said.
fn pull_through(
    root: &Path,
    engine: &TestEngine,
    cached: &Cached,
    secrets: &[(String, String)],
) -> String {
    let image = format!("{}/team/tiny:1", cached.origin.addr);
    let mirrors = format!("{}={}", cached.origin.addr, cached.cache.addr);
    let out = pull(root, engine, secrets, &mirrors, &image);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("through the cache {}", cached.cache.addr)),
        "{said}"
    );
    said
}

fn origin_secrets(server: &str) -> Vec<(String, String)> {
    let tb = testbed();
    registry_env(
        "ORIGIN",
        server,
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    )
}

crate::on_every_engine! {
    fn pulls_go_through_the_cache_and_keep_their_original_name(setup) {
        let root = scratch();
        let cached = &Cached::start(None);
        let Cached { origin, cache, .. } = cached;
        let engine = TestEngine::start_on(setup);
        let image = format!("{}/team/tiny:1", origin.addr);
        pull_through(root.path(), &engine, cached, &origin_secrets(&origin.addr));
        // In the engine under its original name, from the cache.
        let digests = engine.repo_digests(&image).expect("the original name");
        assert!(
            digests.contains(&format!("{}/team/tiny@sha256:", cache.addr)),
            "{digests}"
        );
        // The cache fetched the layers from the origin; the engine asked the origin for none.
        let engine_blobs = origin
            .seen_of("/blobs/")
            .into_iter()
            .filter(|s| s.agent.starts_with("docker/"))
            .count();
        assert_eq!(engine_blobs, 0, "{:?}", origin.seen());
        assert!(
            !origin.seen_of("/blobs/").is_empty(),
            "the cache fetched them"
        );
    }
}

#[test]
fn a_stopped_cache_falls_back_to_the_origin_and_says_why() {
    let tb = testbed();
    let root = scratch();
    let engine = TestEngine::start();
    let image = tb.get("BERTH_TB_REG1_TINY");
    let stopped = format!("127.0.0.1:{}", closed_port());
    let out = pull(
        root.path(),
        &engine,
        &origin_secrets(tb.get("BERTH_TB_REG1")),
        &format!("{}={stopped}", tb.get("BERTH_TB_REG1")),
        image,
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "cache {stopped} passed over: cannot reach the registry"
        )),
        "{said}"
    );
    assert!(!said.contains("through the cache"), "{said}");
    let digests = engine.repo_digests(image).expect("pulled from the origin");
    assert!(digests.contains(tb.get("BERTH_TB_REG1")), "{digests}");
}

#[test]
fn a_cache_serving_another_image_under_the_same_tag_is_refused() {
    let tb = testbed();
    let root = scratch();
    // A "cache" that is a plain registry holding another image as team/tiny:1.
    let storage = tempfile::tempdir().unwrap();
    let bad = registry(storage.path(), None, None);
    let engine = TestEngine::start();
    let other = tb.get("BERTH_TB_REG2_TINY");
    let mut cmd = engine.docker();
    cmd.env("DOCKER_CONFIG", root.path().join("d"));
    docker_login(
        cmd,
        tb.get("BERTH_TB_REG2"),
        tb.get("BERTH_TB_REG2_USER"),
        tb.get("BERTH_TB_REG2_PASSWORD"),
    );
    let planted = format!("{}/team/tiny:1", bad.addr);
    for args in [
        vec!["pull", "-q", other],
        vec!["tag", other, &planted],
        vec!["push", "-q", &planted],
        vec!["rmi", other, &planted],
    ] {
        let out = run(engine
            .docker()
            .env("DOCKER_CONFIG", root.path().join("d"))
            .args(&args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }

    let image = tb.get("BERTH_TB_REG1_TINY");
    let out = pull(
        root.path(),
        &engine,
        &origin_secrets(tb.get("BERTH_TB_REG1")),
        &format!("{}={}", tb.get("BERTH_TB_REG1"), bad.addr),
        image,
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "cache {} passed over: it serves sha256:",
            bad.addr
        )) && said.contains("a stale or tampered cache, refused"),
        "{said}"
    );
    let digests = engine.repo_digests(image).expect("pulled from the origin");
    assert!(!digests.contains(&bad.addr), "{digests}");
    assert!(digests.contains(tb.get("BERTH_TB_REG1")), "{digests}");
}

#[test]
fn the_caches_and_the_origins_credentials_are_never_mixed_up() {
    let tb = testbed();
    let root = scratch();
    // The origin, watched: who asks it, and as whom.
    // The cache has its own users (registry 2's: bob), and reaches the origin as alice.
    let cached = &Cached::start(Some(tb.get("BERTH_TB_REG2_HTPASSWD")));
    let Cached { origin, cache, .. } = cached;
    let engine = TestEngine::start();
    let mut secrets = origin_secrets(&origin.addr);
    secrets.extend(registry_env(
        "CACHE",
        &cache.addr,
        tb.get("BERTH_TB_REG2_USER"),
        tb.get("BERTH_TB_REG2_PASSWORD"),
    ));
    // bob got through the cache (alice would have been refused there, and the pull would
    // have fallen back to the origin)...
    let said = pull_through(root.path(), &engine, cached, &secrets);
    assert!(!said.contains("passed over"), "{said}");
    // ...and the origin only ever met alice.
    let users: std::collections::BTreeSet<String> =
        origin.seen().into_iter().filter_map(|s| s.user).collect();
    assert_eq!(
        users,
        [tb.get("BERTH_TB_REG1_USER").to_string()]
            .into_iter()
            .collect(),
        "{:?}",
        origin.seen()
    );
}

crate::on_every_engine! {
    fn the_daemons_pre_pulls_go_through_the_cache_and_status_says_where_each_came_from(setup) {
        use support::lifecycle::Container;
        let tb = testbed();
        let Cached { origin, cache, .. } = &Cached::start(None);
        let engine = TestEngine::start_on(setup);
        let cached = format!("{}/team/tiny:1", origin.addr);
        let direct = tb.get("BERTH_TB_REG2_TINY");
        let c = Container::new(&[
            ("BERTH_IMAGES", &format!("{cached} {direct}")),
            ("BERTH_MIRRORS", &format!("{}={}", origin.addr, cache.addr)),
            ("BERTH_WAIT_FOR_PULLS", "true"),
            ("BERTH_WAIT_FOR_DOCKER", "true"),
        ]);
        c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
        let mut secrets = origin_secrets(&origin.addr);
        secrets.extend(both_registries());
        let out = c.hook("postCreate", &secrets);
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            said.contains(&format!("pulled {cached} ("))
                && said.contains(&format!("through the cache {})", cache.addr)),
            "{said}"
        );
        let status = text(&run(c.berth().arg("status")));
        assert!(
            status.contains(&format!("from the cache {}", cache.addr)),
            "{status}"
        );
        assert!(status.contains("from its registry"), "{status}");
        assert!(engine.repo_digests(&cached).is_some());
    }
}

crate::on_every_engine! {
    fn doctor_names_the_caches_and_where_an_image_came_from(setup) {
        let root = scratch();
        let cached = &Cached::start(None);
        let Cached { origin, cache, .. } = cached;
        let engine = TestEngine::start_on(setup);
        let image = format!("{}/team/tiny:1", origin.addr);
        let mirrors = format!("{}={}", origin.addr, cache.addr);
        let secrets = origin_secrets(&origin.addr);
        pull_through(root.path(), &engine, cached, &secrets);
        let out = run(berth(root.path())
            .env("DOCKER_HOST", engine.host())
            .env("BERTH_MIRRORS", &mirrors)
            .envs(secrets.iter().map(|(k, v)| (k, v)))
            .args(["doctor", &image]));
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        assert!(
            said.contains(&format!(
                "its images are pulled through {} first (mirrors), then from it",
                cache.addr
            )),
            "{said}"
        );
        assert!(
            said.contains(&format!("pulled as {}/team/tiny (a cache)", cache.addr)),
            "{said}"
        );
    }
}

crate::on_every_engine! {
    /// As a direct pull asks its registry nothing more for an image the engine holds, a
    /// pull through a cache asks the origin for the tag's digest and no cache at all.
    fn an_image_the_engine_holds_costs_its_cache_no_request(setup) {
        let root = scratch();
        let cached = &Cached::start(None);
        let watched = FaultProxy::start(&cached.cache.addr, |_, _| Fault::Pass);
        let engine = TestEngine::start_on(setup);
        let image = format!("{}/team/tiny:1", cached.origin.addr);
        let mirrors = format!("{}={}", cached.origin.addr, watched.addr);
        let secrets = origin_secrets(&cached.origin.addr);
        let out = pull(root.path(), &engine, &secrets, &mirrors, &image);
        assert!(
            out.status.success() && text(&out).contains(&format!("through the cache {}", watched.addr)),
            "{}",
            text(&out)
        );
        let (cache_before, origin_before) = (watched.seen().len(), cached.origin.seen().len());
        let out = pull(root.path(), &engine, &secrets, &mirrors, &image);
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        assert!(!said.contains("through the cache"), "{said}");
        assert_eq!(
            watched.seen().len(),
            cache_before,
            "the cache was asked: {:#?}",
            &watched.seen()[cache_before..]
        );
        let asked: Vec<_> = cached.origin.seen()[origin_before..]
            .iter()
            .filter(|s| s.agent.starts_with("berth/"))
            .map(|s| format!("{} {}", s.method, s.path))
            .collect();
        assert_eq!(
            asked.iter().filter(|a| a.contains("/manifests/")).count(),
            1,
            "one question for the tag's digest: {asked:?}"
        );
        assert!(!asked.iter().any(|a| a.contains("/blobs/")), "{asked:?}");
    }
}
