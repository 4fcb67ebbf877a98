//! Issue 6: berth pulls private images into a Docker engine with each registry's own
//! credentials, fails fast and clearly on what retrying cannot mend, retries what may pass,
//! waits for an engine that starts late, and pre-pulls before postCreate when asked.
//!
//! Issue 24: the pulls, the symbol passwords and the daemon's pre-pulls and restart run on
//! every engine set-up (docker.io 20.10, and 28.5 with either image store); the faults and
//! the waits for an engine, which berth handles the same whatever the engine, on 20.10.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::engine::*;
use support::lifecycle::*;
use support::*;

/// `berth pull` against an engine, with these secrets.
fn berth_pull(
    root: &std::path::Path,
    host: &str,
    secrets: &[(String, String)],
    images: &[&str],
) -> Command {
    let mut cmd = berth(root);
    cmd.arg("pull")
        .args(images)
        .env("DOCKER_HOST", host)
        .envs(secrets.iter().cloned());
    cmd
}

fn reg(n: u8, what: &str) -> String {
    testbed().get(&format!("BERTH_TB_REG{n}{what}")).to_string()
}

crate::on_every_engine! {
    fn each_registry_is_pulled_with_its_own_credentials(setup) {
        let engine = TestEngine::start_on(setup);
        let dir = scratch();
        let images = [
            reg(1, "_TINY"),
            reg(2, "_TINY"),
            format!("{}/team/app:1.0", reg(1, "")),
        ];
        let refs: Vec<&str> = images.iter().map(String::as_str).collect();
        let out = run(&mut berth_pull(
            dir.path(),
            &engine.host(),
            &both_registries(),
            &refs,
        ));
        assert!(out.status.success(), "{}", text(&out));
        for i in &images {
            assert!(
                engine
                    .repo_digests(i)
                    .is_some_and(|d| d.contains("sha256:")),
                "{i} in the engine"
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains(&format!("pulled {i} sha256:")),
                "{}",
                text(&out)
            );
        }
    }
}

#[test]
fn wrong_credentials_fail_at_once_naming_image_registry_and_secret() {
    let engine = TestEngine::start();
    let dir = scratch();
    let secrets = registry_env("TEAM", &reg(1, ""), &reg(1, "_USER"), "not-the-password");
    let image = reg(1, "_TINY");
    let out = run(&mut berth_pull(
        dir.path(),
        &engine.host(),
        &secrets,
        &[&image],
    ));
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains(&format!("pull of {image} failed")), "{t}");
    assert!(t.contains(&format!("check the secrets TEAM_CONTAINER_REGISTRY_USER and TEAM_CONTAINER_REGISTRY_PASSWORD for {}", reg(1, ""))), "{t}");
    assert!(!t.contains("retrying"), "no retry for a refusal: {t}");
    // Without any credentials the message says which secrets to add.
    let out = run(&mut berth_pull(dir.path(), &engine.host(), &[], &[&image]));
    assert!(
        text(&out).contains("berth has no credentials for 127.0.0.1:"),
        "{}",
        text(&out)
    );
}

crate::on_every_engine! {
    fn a_password_with_every_printable_symbol_reaches_the_registry_through_the_engine(setup) {
        let engine = TestEngine::start_on(setup);
        let dir = scratch();
        // The engine decodes X-Registry-Auth as base64url: symbols and unicode must survive it.
        for (n, user, password) in [
            (
                1,
                "BERTH_TB_REG1_SYMBOLS_USER",
                "BERTH_TB_REG1_SYMBOLS_PASSWORD_B64",
            ),
            (
                2,
                "BERTH_TB_REG2_UNICODE_USER",
                "BERTH_TB_REG2_UNICODE_PASSWORD_B64",
            ),
        ] {
            let secrets = registry_env(
                "SPECIAL",
                &reg(n, ""),
                testbed().get(user),
                &testbed().decoded(password),
            );
            let out = run(&mut berth_pull(
                dir.path(),
                &engine.host(),
                &secrets,
                &[&reg(n, "_TINY")],
            ));
            assert!(out.status.success(), "{user}: {}", text(&out));
        }
    }
}

#[test]
fn berth_waits_for_an_engine_that_starts_after_it() {
    let mut engine = TestEngine::prepare();
    let dir = scratch();
    let mut child = berth_pull(
        dir.path(),
        &engine.host(),
        &both_registries(),
        &[&reg(1, "_TINY")],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = Lines::read(child.stderr.take().unwrap());
    lines.wait_for(
        "waiting up to 90 s for the Docker engine",
        Duration::from_secs(30),
    );
    engine.launch();
    let status = child.wait().unwrap();
    let said = lines.rest();
    assert!(status.success(), "{said}");
    assert!(engine.repo_digests(&reg(1, "_TINY")).is_some());
}

#[test]
fn a_registry_that_is_down_is_retried_by_berth_until_it_is_back() {
    let engine = TestEngine::start();
    let dir = scratch();
    let mut registry = OwnRegistry::start(1);
    registry.kill();
    let image = format!("{}/team/tiny:1", registry.addr);
    let secrets = registry_env(
        "TEAM",
        &registry.addr,
        &reg(1, "_USER"),
        &reg(1, "_PASSWORD"),
    );
    let mut child = berth_pull(dir.path(), &engine.host(), &secrets, &[&image])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::read(child.stdout.take().unwrap());
    let retry = lines.wait_for("attempt 1 failed", Duration::from_secs(60));
    assert!(
        retry.to_ascii_lowercase().contains("connection refused"),
        "{retry}"
    );
    registry.resume();
    let status = child.wait().unwrap();
    let said = lines.rest();
    assert!(status.success(), "{said}");
    assert!(
        said.contains(&format!("pulled {image}")) && said.contains("attempts)"),
        "{said}"
    );
}

#[test]
fn a_registry_stopped_in_the_middle_of_a_pull_and_started_again_is_retried_to_success() {
    let engine = TestEngine::start();
    let dir = scratch();
    let mut registry = OwnRegistry::start(1);
    // 20 MB/s: the 100 MB layer takes seconds, so "the middle" can be reached.
    let proxy = PacedProxy::start(&registry.addr, 20_000_000);
    let image = format!("{}/team/big:latest", proxy.addr);
    let secrets = registry_env("TEAM", &proxy.addr, &reg(1, "_USER"), &reg(1, "_PASSWORD"));
    let mut child = berth_pull(dir.path(), &engine.host(), &secrets, &[&image])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::read(child.stdout.take().unwrap());
    PacedProxy::wait_until(&proxy.forwarded, 30_000_000, Duration::from_secs(120));
    registry.kill();
    // Someone (the engine or berth) tried again and found it gone; then it comes back.
    PacedProxy::wait_until(&proxy.refused, 1, Duration::from_secs(120));
    registry.resume();
    let status = child.wait().unwrap();
    let said = lines.rest();
    assert!(status.success(), "{said}");
    let digests = engine
        .repo_digests(&image)
        .expect("the image is in the engine");
    let full = run(engine
        .docker()
        .args(["image", "inspect", "-f", "{{.Size}}", &image]));
    let size: u64 = String::from_utf8_lossy(&full.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        size > 100_000_000,
        "the whole image arrived ({size} bytes; {digests})"
    );
}

#[test]
fn invalid_image_names_are_refused_plainly_and_the_rest_is_pulled() {
    let engine = TestEngine::start();
    let dir = scratch();
    let out = run(&mut berth_pull(
        dir.path(),
        &engine.host(),
        &both_registries(),
        &["Bad/Name:1", "x.io/a:b@sha256:1234", &reg(1, "_TINY")],
    ));
    let t = text(&out);
    assert!(
        t.contains("image \"Bad/Name:1\"") && t.contains("lower-case"),
        "{t}"
    );
    assert!(t.contains("image \"x.io/a:b@sha256:1234\""), "{t}");
    assert!(engine.repo_digests(&reg(1, "_TINY")).is_some(), "{t}");
    assert!(!out.status.success(), "a refused name is a failure: {t}");
}

crate::on_every_engine! {
    fn the_daemon_pre_pulls_before_post_create_returns_and_not_again_after_a_restart(setup) {
        let engine = TestEngine::start_on(setup);
        let images = format!(
            "{}, {} {}/team/app:1.0",
            reg(1, "_TINY"),
            reg(2, "_TINY"),
            reg(1, "")
        );
        let c = Container::new(&[
            ("BERTH_IMAGES", &images),
            ("BERTH_WAIT_FOR_PULLS", "true"),
            ("BERTH_WAIT_FOR_DOCKER", "true"),
        ]);
        let start = || {
            c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
        };
        start();
        for phase in ["onCreate", "updateContent"] {
            c.hook(phase, &both_registries());
        }
        let out = c.hook("postCreate", &both_registries());
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{said}");
        // When the hook returns (the user's postCreateCommand starts), the images are there.
        for i in [
            reg(1, "_TINY"),
            reg(2, "_TINY"),
            format!("{}/team/app:1.0", reg(1, "")),
        ] {
            assert!(
                engine.repo_digests(&i).is_some(),
                "{i} pulled before postCreate returned: {said}"
            );
            assert!(said.contains(&format!("pulled {i}")), "{said}");
        }
        assert!(
            said.contains("the pre-pulls finished")
                && said.contains("(3 pulled, 0 already present, 0 failed)"),
            "{said}"
        );
        let status = c.status();
        let pulls = status["pulls"].as_array().unwrap();
        assert_eq!(pulls.len(), 3);
        assert!(
            pulls
                .iter()
                .all(|p| p["state"] == "done" && p["digest"].as_str().unwrap().starts_with("sha256:")),
            "{status:#}"
        );
        // A container restart: the daemon comes back and asks no registry again.
        c.stop_daemon(nix::sys::signal::Signal::SIGTERM);
        start();
        let out = c.hook("postStart", &both_registries());
        assert!(out.status.success(), "{}", text(&out));
        let again = wait_for_events(&c, |e| {
            e.iter()
                .filter(|e| e["event"] == "pull-done" && e["already_present"] == true)
                .count()
                == 3
        });
        let restart = again
            .iter()
            .rposition(|e| e["event"] == "daemon-started")
            .unwrap();
        assert!(
            again[..restart]
                .iter()
                .any(|e| e["event"] == "pull-started"),
            "pulled before the restart"
        );
        assert!(
            !again[restart..]
                .iter()
                .any(|e| e["event"] == "pull-started"),
            "no pull after the restart: {again:#?}"
        );
    }
}

#[test]
fn the_post_create_hook_waits_for_an_engine_that_comes_late() {
    let mut engine = TestEngine::prepare();
    let c = Container::new(&[
        ("BERTH_IMAGES", &reg(1, "_TINY")),
        ("BERTH_WAIT_FOR_PULLS", "true"),
        ("BERTH_WAIT_FOR_DOCKER", "true"),
    ]);
    c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
    let mut hook = c.berth();
    hook.args(["hook", "postCreate"])
        .env("DOCKER_CONFIG", c.docker_config())
        .env("DOCKER_HOST", engine.host())
        .envs(both_registries())
        .uid(REMOTE_UID)
        .gid(REMOTE_UID)
        .stdout(Stdio::piped());
    let mut child = hook.spawn().unwrap();
    let mut lines = Lines::read(child.stdout.take().unwrap());
    lines.wait_for(
        "waiting up to 90 s for the Docker engine",
        Duration::from_secs(30),
    );
    engine.launch();
    assert!(child.wait().unwrap().success());
    let said = lines.rest();
    assert!(said.contains("Docker engine answered after"), "{said}");
    assert!(
        said.contains(&format!("pulled {}", reg(1, "_TINY"))),
        "{said}"
    );
    assert!(engine.repo_digests(&reg(1, "_TINY")).is_some());
}

#[test]
fn discover_pulls_the_workspaces_private_images_and_leaves_public_ones() {
    let engine = TestEngine::start();
    let c = Container::new(&[
        ("BERTH_DISCOVER", "true"),
        ("BERTH_WAIT_FOR_PULLS", "true"),
        ("BERTH_WAIT_FOR_DOCKER", "true"),
    ]);
    // The hook's working folder is the workspace (as the Dev Containers CLI runs it).
    std::fs::write(
        c.root().join("compose.yaml"),
        format!(
            "services:\n  app:\n    image: ${{APP_IMAGE:-{}}}\n  cache:\n    image: redis:7\n",
            reg(1, "_TINY")
        ),
    )
    .unwrap();
    std::fs::write(
        c.root().join("Dockerfile"),
        format!("FROM {} AS base\nFROM base\n", reg(2, "_TINY")),
    )
    .unwrap();
    c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
    let out = c.hook("postCreate", &both_registries());
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("(2 pulled, 0 already present, 0 failed)"),
        "{said}"
    );
    assert!(
        engine.repo_digests(&reg(1, "_TINY")).is_some()
            && engine.repo_digests(&reg(2, "_TINY")).is_some()
    );
    assert!(
        !said.contains("redis"),
        "a public image is left alone without discoverPublic: {said}"
    );
}
