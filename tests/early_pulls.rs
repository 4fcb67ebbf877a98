//! Issue 13: images ready before anyone asks. The daemon pulls as soon as it knows the
//! secrets and the engine answers (from onCreate), giving the engine each registry's
//! credentials with the pull and writing nothing before `injectAt`; `pullAt=postCreate`
//! keeps the old order; what the engine holds costs no layer request, and an image named
//! by digest that it holds costs no request at all.
//!
//! Issue 24: the early pulls and the held checks run on every engine set-up (docker.io
//! 20.10, and 28.5 with either image store); the rest of the daemon's pull timing, which
//! does not depend on the engine, on 20.10.

mod support;

use std::os::unix::process::CommandExt as _;

use support::engine::*;
use support::fault_proxy::{Fault, FaultProxy};
use support::lifecycle::*;
use support::*;

fn reg(n: u8, what: &str) -> String {
    testbed().get(&format!("BERTH_TB_REG{n}{what}")).to_string()
}

fn pull_events(c: &Container) -> Vec<serde_json::Value> {
    c.events()
        .into_iter()
        .filter(|e| e["event"].as_str().is_some_and(|k| k.starts_with("pull-")))
        .collect()
}

crate::on_every_engine! {
    fn early_pulls_start_at_on_create_and_nothing_is_written_before_post_create(setup) {
        let engine = TestEngine::start_on(setup);
        let images = format!("{} {}", reg(1, "_TINY"), reg(2, "_TINY"));
        let c = Container::new(&[("BERTH_IMAGES", &images)]);
        c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
        let out = c.hook("onCreate", &both_registries());
        assert!(out.status.success(), "{}", text(&out));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("pre-pulling") && said.contains("pullAt=early"),
            "{said}"
        );
        // The images arrive while onCreate's commands would run...
        wait_for_events(&c, |e| {
            e.iter().filter(|e| e["event"] == "pull-done").count() == 2
        });
        for i in [reg(1, "_TINY"), reg(2, "_TINY")] {
            assert!(engine.repo_digests(&i).is_some(), "{i}");
        }
        // ...and the remote user's config holds no credential yet.
        assert!(!c.has_login(&reg(1, "")) && !c.has_login(&reg(2, "")));
        let out = c.hook("updateContent", &both_registries());
        assert!(out.status.success(), "{}", text(&out));
        assert!(!c.has_login(&reg(1, "")));
        // postCreate writes the credentials; the images need nothing more.
        let out = c.hook("postCreate", &both_registries());
        assert!(out.status.success(), "{}", text(&out));
        assert!(c.has_login(&reg(1, "")) && c.has_login(&reg(2, "")));
        assert_eq!(
            pull_events(&c)
                .iter()
                .filter(|e| e["event"] == "pull-started")
                .count(),
            2,
            "each image pulled once"
        );
    }
}

#[test]
fn pull_at_post_create_pulls_once_the_credentials_are_written() {
    let engine = TestEngine::start();
    let c = Container::new(&[
        ("BERTH_IMAGES", &reg(1, "_TINY")),
        ("BERTH_PULL_AT", "postCreate"),
        ("BERTH_WAIT_FOR_PULLS", "true"),
    ]);
    c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
    for phase in ["onCreate", "updateContent"] {
        let out = c.hook(phase, &both_registries());
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("pre-pulling"),
            "{}",
            text(&out)
        );
    }
    assert!(
        pull_events(&c).is_empty(),
        "nothing pulled before postCreate"
    );
    let out = c.hook("postCreate", &both_registries());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("pulled {}", reg(1, "_TINY"))),
        "{said}"
    );
    let events = c.events();
    let post_create = events
        .iter()
        .position(|e| e["event"] == "phase" && e["phase"] == "postCreate")
        .unwrap();
    let first_pull = events
        .iter()
        .position(|e| e["event"] == "pull-started")
        .unwrap();
    assert!(first_pull > post_create, "{events:#?}");
}

crate::on_every_engine! {
    fn an_image_the_engine_holds_costs_no_layer_and_one_named_by_digest_no_request(setup) {
        let tb = testbed();
        let proxy = FaultProxy::start(tb.get("BERTH_TB_REG1"), |_, _| Fault::Pass);
        let engine = TestEngine::start_on(setup);
        let by_tag = format!("{}/team/tiny:1", proxy.addr);
        let secrets = registry_env(
            "TEAM",
            &proxy.addr,
            tb.get("BERTH_TB_REG1_USER"),
            tb.get("BERTH_TB_REG1_PASSWORD"),
        );
        let dir = scratch();
        let pull = |image: &str| {
            let mut cmd = berth(dir.path());
            cmd.args(["pull", image])
                .env("DOCKER_HOST", engine.host())
                .envs(secrets.iter().cloned());
            run(&mut cmd)
        };
        let out = pull(&by_tag);
        assert!(out.status.success(), "{}", text(&out));
        let digest = engine.repo_digests(&by_tag).unwrap();
        let digest = digest
            .split('@')
            .nth(1)
            .unwrap()
            .trim_end_matches(['"', ']'])
            .to_string();
        // Again by tag: one manifest question, no layer.
        let before = proxy.seen().len();
        let out = pull(&by_tag);
        assert!(out.status.success(), "{}", text(&out));
        let asked: Vec<_> = proxy.seen()[before..].to_vec();
        assert!(
            asked
                .iter()
                .filter(|s| s.path.contains("/manifests/"))
                .count()
                <= 1
                && !asked.iter().any(|s| s.path.contains("/blobs/")),
            "{asked:?}"
        );
        // By digest: nothing at all.
        let before = proxy.seen().len();
        let out = pull(&format!("{}/team/tiny@{digest}", proxy.addr));
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(proxy.seen().len(), before, "{:?}", &proxy.seen()[before..]);
    }
}

#[test]
fn status_shows_no_pull_as_done_before_the_daemon_checked_the_engine_again() {
    // A container's engine pulled; then the daemon starts again with an engine that lost
    // its images (a restart on a tmpfs, a container made from a snapshot).
    let first = TestEngine::start();
    let c = Container::new(&[("BERTH_IMAGES", &reg(1, "_TINY"))]);
    c.entrypoint_with(&[("DOCKER_HOST", &first.host())]);
    c.hook("onCreate", &both_registries());
    wait_for_events(&c, |e| e.iter().any(|e| e["event"] == "pull-done"));
    assert_eq!(c.status()["pulls"][0]["state"], "done");
    c.stop_daemon(nix::sys::signal::Signal::SIGTERM);
    let empty = TestEngine::start();
    c.entrypoint_with(&[("DOCKER_HOST", &empty.host())]);
    let status = c.status();
    assert!(
        status["pulls"].as_array().is_none_or(|p| p.is_empty()),
        "nothing shown as done before the daemon checked: {status:#}"
    );
    // The next hook checks, finds the image gone, and pulls it again.
    c.hook("postStart", &both_registries());
    wait_for_events(&c, |e| {
        e.iter().filter(|e| e["event"] == "pull-done").count() == 2
    });
    assert!(empty.repo_digests(&reg(1, "_TINY")).is_some());
}

#[test]
fn status_wait_returns_once_the_pulls_are_done() {
    // No daemon: nothing can be pulling, and berth says so.
    let c = Container::new(&[(
        "BERTH_IMAGES",
        &format!("{} {}", reg(1, "_TINY"), reg(2, "_TINY")),
    )]);
    let out = run(c.berth().args(["status", "--wait"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no daemon answers"), "{}", text(&out));
    // A user's onCreateCommand waits for the images without polling.
    let engine = TestEngine::start();
    c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
    let out = c.hook("onCreate", &both_registries());
    assert!(out.status.success(), "{}", text(&out));
    let out = c.status_wait();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for i in [reg(1, "_TINY"), reg(2, "_TINY")] {
        assert!(
            engine.repo_digests(&i).is_some(),
            "{i} is there when the wait ends: {said}"
        );
        assert!(said.contains(&format!("pulled {i}")), "{said}");
    }
    assert!(said.contains("the pre-pulls"), "{said}");
}

#[test]
fn status_wait_names_what_is_still_running_when_its_time_runs_out() {
    let stall = Stall::start();
    let server = stall.url.trim_start_matches("http://").to_string();
    let stalled = format!("{server}/team/app:1");
    let c = Container::new(&[("BERTH_IMAGES", &format!("{} {stalled}", reg(1, "_TINY")))]);
    let engine = TestEngine::start();
    c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
    let mut secrets = both_registries();
    secrets.extend(registry_env("STALLED", &server, "user", "password"));
    let out = c.hook("onCreate", &secrets);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(c
        .berth()
        .args(["status", "--json", "--wait", "--timeout", "1"])
        .uid(REMOTE_UID)
        .gid(REMOTE_UID));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is the JSON status");
    let of = |image: &str| {
        status["pulls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["image"] == image)
            .map(|p| p["state"].clone())
    };
    assert_ne!(of(&stalled), Some("done".into()), "{status:#}");
    assert!(of(&stalled).is_some(), "{status:#}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("still running after 1 s"), "{said}");
}

crate::on_every_engine! {
    fn each_registry_is_asked_for_its_scheme_once_however_many_images_are_checked_at_once(setup) {
        // Four images of one registry, checked at the same moment: one `/v2/` question from
        // berth (the first probe asks, the others wait for its answer), then a manifest
        // `HEAD` each and, for an image the engine lacks, that manifest once by its digest
        // (its layers' sizes); after the daemon has pulled them, one `HEAD` each.
        let tb = testbed();
        let proxy = FaultProxy::start(tb.get("BERTH_TB_REG1"), |_, _| Fault::Pass);
        let engine = TestEngine::start_on(setup);
        let images: Vec<String> = [
            "team/tiny:1",
            "team/app:1.0",
            "team/app:1.1",
            "team/base:bookworm",
        ]
        .iter()
        .map(|i| format!("{}/{i}", proxy.addr))
        .collect();
        let c = Container::new(&[("BERTH_IMAGES", &images.join(" "))]);
        c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
        let secrets = registry_env(
            "TEAM",
            &proxy.addr,
            tb.get("BERTH_TB_REG1_USER"),
            tb.get("BERTH_TB_REG1_PASSWORD"),
        );
        let out = c.hook("onCreate", &secrets);
        assert!(out.status.success(), "{}", text(&out));
        let out = c.status_wait();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let berths = |part: &str| {
            proxy
                .seen()
                .into_iter()
                .filter(|s| s.agent.starts_with("berth/") && s.path.ends_with(part))
                .count()
        };
        assert_eq!(berths("/v2/"), 1, "{:#?}", proxy.seen());
        let manifests = |method: &str, by_digest: bool| {
            proxy
                .seen()
                .iter()
                .filter(|s| {
                    s.agent.starts_with("berth/")
                        && s.method == method
                        && s.path.contains("/manifests/")
                        && s.path.contains("/manifests/sha256:") == by_digest
                })
                .count()
        };
        assert_eq!(manifests("HEAD", false), images.len(), "{:#?}", proxy.seen());
        assert_eq!(manifests("GET", true), images.len(), "{:#?}", proxy.seen());
        assert_eq!(manifests("GET", false), 0, "{:#?}", proxy.seen());
        // `berth pull` in a process of its own: the same, one question and one manifest
        // request each, and no layer (the engine holds them all).
        let before = proxy.seen().len();
        let out = run(c
            .berth()
            .arg("pull")
            .args(&images)
            .env("DOCKER_HOST", engine.host())
            .envs(secrets.iter().cloned()));
        assert!(out.status.success(), "{}", text(&out));
        let asked = proxy.seen()[before..].to_vec();
        assert_eq!(
            asked.iter().filter(|s| s.path.ends_with("/v2/")).count(),
            1,
            "{asked:#?}"
        );
        assert_eq!(asked.len(), 1 + images.len(), "{asked:#?}");
        assert!(
            !asked.iter().any(|s| s.path.contains("/blobs/")),
            "{asked:#?}"
        );
    }
}
