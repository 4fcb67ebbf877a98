//! Issue 11: faults and other writers. One slow registry never holds back the others,
//! berth's entries survive other writers, retries do not multiply, and what failed for
//! good is not tried again at every phase.

mod support;

use std::process::Stdio;

use support::lifecycle::*;
use support::*;

fn reg1() -> String {
    testbed().get("BERTH_TB_REG1").to_string()
}

/// REG1 and an ECR registry whose API stalls.
fn healthy_and_stalled(stall: &Stall) -> Vec<(String, String)> {
    let mut vars = registry_env(
        "REG1",
        &reg1(),
        testbed().get("BERTH_TB_REG1_USER"),
        testbed().get("BERTH_TB_REG1_PASSWORD"),
    );
    vars.extend(registry_env(
        "SLOW",
        &ecr_host("eu-west-1"),
        "AKIAIOSFODNN7EXAMPLE",
        "secret",
    ));
    vars.push(("AWS_ENDPOINT_URL_ECR".into(), stall.url.clone()));
    vars
}

#[test]
fn a_stalled_ecr_endpoint_does_not_hold_back_a_healthy_registry_in_berth_inject() {
    let stall = Stall::start();
    let dir = scratch();
    let config = dir.path().join("home/.docker");
    std::fs::create_dir_all(&config).unwrap();
    let mut child = berth(dir.path())
        .arg("inject")
        .envs(healthy_and_stalled(&stall))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The healthy registry is in the config while berth still waits for ECR.
    wait_for_folder(&config, |d| {
        let c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("config.json")).ok()?).ok()?;
        c["auths"][reg1()]["auth"].is_string().then_some(())
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "berth inject still waits for ECR"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_hook_returns_within_its_bound_naming_the_registry_ecr_has_not_answered_for() {
    let stall = Stall::start();
    // A hook bound of 6 s: the daemon waits 2 s for ECR, then names what is pending.
    let c = Container::new(&[("BERTH_HOOK_TIMEOUT", "6")]);
    c.entrypoint();
    let vars = healthy_and_stalled(&stall);
    let out = c.hook("postCreate", &vars);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(c.has_login(&reg1()), "{said}");
    assert!(
        said.contains("credentials for REG1") && said.contains("written to"),
        "{said}"
    );
    assert!(
        said.contains("ECR has not answered yet for SLOW")
            && said.contains("berth writes its token when it does"),
        "{said}"
    );
    assert!(
        !said.contains("did not finish within"),
        "the hook returned before its bound: {said}"
    );
}

/// Replaces the remote user's config as another program would (as the remote user, by a
/// temporary file renamed over it), with `config` as its whole content.
fn overwrite_as_remote_user(c: &Container, config: &serde_json::Value) {
    let dir = c.docker_config();
    let tmp = dir.join("config.json.other");
    let text = serde_json::to_string(config).unwrap();
    let out = run(std::process::Command::new("sh")
        .args([
            "-c",
            "printf '%s' \"$1\" > \"$2\" && mv \"$2\" \"$3\"",
            "sh",
        ])
        .arg(text)
        .arg(&tmp)
        .arg(dir.join("config.json"))
        .uid_gid(REMOTE_UID));
    assert!(out.status.success(), "{}", text_of(&out));
}

fn text_of(out: &std::process::Output) -> String {
    text(out)
}

trait AsUser {
    fn uid_gid(&mut self, id: u32) -> &mut Self;
}

impl AsUser for std::process::Command {
    fn uid_gid(&mut self, id: u32) -> &mut Self {
        std::os::unix::process::CommandExt::uid(self, id);
        std::os::unix::process::CommandExt::gid(self, id)
    }
}

/// Waits until the remote user's config satisfies `done`.
fn wait_for_config(c: &Container, done: impl Fn(&serde_json::Value) -> bool) {
    wait_for_folder(&c.docker_config(), |_| {
        c.config().filter(|v| done(v)).map(drop)
    });
}

fn through_post_create(c: &Container, secrets: &[(String, String)]) {
    c.entrypoint();
    for phase in ["onCreate", "updateContent", "postCreate"] {
        let out = c.hook(phase, secrets);
        assert!(out.status.success(), "{}", text(&out));
    }
}

#[test]
fn entries_another_writer_drops_are_put_back_and_its_own_kept() {
    let c = Container::new(&[]);
    through_post_create(&c, &both_registries());
    let reg2 = testbed().get("BERTH_TB_REG2").to_string();
    // Another program rewrites the file from an old copy: berth's entries are gone.
    overwrite_as_remote_user(
        &c,
        &serde_json::json!({"auths": {"other.example.com": {"auth": "bWU6cHc="}}}),
    );
    wait_for_config(&c, |v| {
        v["auths"][reg1()]["auth"].is_string() && v["auths"][&reg2]["auth"].is_string()
    });
    let config = c.config().unwrap();
    assert!(
        config["auths"]["other.example.com"]["auth"].is_string(),
        "{config}"
    );
    assert_eq!(
        config["credHelpers"][reg1()],
        "",
        "its credHelpers value too"
    );
    // The record says so (written just after the config).
    c.status_when(|s| s["timeline"].to_string().contains("restored REG1, REG2"));
    // A change of credHelpers that hides berth's entry is undone too.
    let mut hidden = c.config().unwrap();
    hidden["credHelpers"][reg1()] = "desktop".into();
    overwrite_as_remote_user(&c, &hidden);
    wait_for_config(&c, |v| v["credHelpers"][reg1()] == "");
    // The user writes other credentials with berth itself: berth keeps theirs, and puts
    // theirs back when another writer drops them.
    let out = run(c
        .berth()
        .arg("inject")
        .env("HOME", "/nonexistent")
        .env("DOCKER_CONFIG", c.docker_config())
        .envs(registry_env("REG1", &reg1(), "someone", "else"))
        .uid_gid(REMOTE_UID));
    assert!(out.status.success(), "{}", text(&out));
    // Once the daemon has seen their write (it says so in its log)...
    wait_for_folder(&c.state(), |state| {
        std::fs::read_to_string(state.join("berth.log"))
            .ok()
            .filter(|log| log.contains("another berth run changed these entries"))
    });
    overwrite_as_remote_user(&c, &serde_json::json!({}));
    wait_for_config(&c, |v| {
        decoded_auth(v, &reg1()).as_deref() == Some("someone:else")
            && v["auths"][&reg2]["auth"].is_string()
    });
}

#[test]
fn a_pruned_entry_or_a_removed_secret_set_is_not_put_back() {
    let c = Container::new(&[]);
    through_post_create(&c, &both_registries());
    let reg2 = testbed().get("BERTH_TB_REG2").to_string();
    // The user prunes REG2 (its secrets are gone from their shell).
    let reg1_only = registry_env(
        "REG1",
        &reg1(),
        testbed().get("BERTH_TB_REG1_USER"),
        testbed().get("BERTH_TB_REG1_PASSWORD"),
    );
    let out = run(c
        .berth()
        .args(["inject", "--prune"])
        .env("HOME", "/nonexistent")
        .env("DOCKER_CONFIG", c.docker_config())
        .envs(reg1_only.iter().cloned())
        .uid_gid(REMOTE_UID));
    assert!(out.status.success(), "{}", text(&out));
    // Then another writer drops REG1: berth puts REG1 back, and not REG2.
    overwrite_as_remote_user(&c, &serde_json::json!({}));
    wait_for_config(&c, |v| v["auths"][reg1()]["auth"].is_string());
    assert!(c.config().unwrap()["auths"].get(&reg2).is_none());
    // A hook whose secrets no longer have REG1: berth stops keeping it, and says so.
    let reg2_only = registry_env(
        "REG2",
        &reg2,
        testbed().get("BERTH_TB_REG2_USER"),
        testbed().get("BERTH_TB_REG2_PASSWORD"),
    );
    let out = c.hook("postStart", &reg2_only);
    assert!(out.status.success(), "{}", text(&out));
    let status = c.status();
    assert_eq!(
        status["without_secrets"][0]["id"], "REG1",
        "REG1's entry stays, without its secrets: {status:#}"
    );
    let human = run(c.berth().args(["status"]).uid_gid(REMOTE_UID));
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("berth inject --prune removes them"),
        "{}",
        text(&human)
    );
    overwrite_as_remote_user(&c, &serde_json::json!({}));
    wait_for_config(&c, |v| v["auths"][&reg2]["auth"].is_string());
    assert!(c.config().unwrap()["auths"].get(reg1()).is_none());
}

#[test]
fn docker_login_and_berth_writing_together_lose_neither_side() {
    let c = Container::new(&[]);
    through_post_create(&c, &both_registries());
    let reg2 = testbed().get("BERTH_TB_REG2").to_string();
    let extra: Vec<ExtraRegistry> = (0..4).map(|_| ExtraRegistry::start()).collect();
    // berth writers (other registries, as the remote user) and docker logins at once.
    let mut writers: Vec<_> = (0..60)
        .map(|i| {
            c.berth()
                .arg("inject")
                .env("HOME", "/nonexistent")
                .env("DOCKER_CONFIG", c.docker_config())
                .envs(registry_env(
                    &format!("W{i}"),
                    &format!("w{i}.example.com"),
                    "u",
                    "p",
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .uid_gid(REMOTE_UID)
                .spawn()
                .unwrap()
        })
        .collect();
    let tb = testbed();
    for r in &extra {
        let out = run(std::process::Command::new("sh")
            .args([
                "-c",
                "printf '%s' \"$1\" | docker login -u \"$2\" --password-stdin \"$3\"",
                "sh",
            ])
            .arg(tb.get("BERTH_TB_REG1_PASSWORD"))
            .arg(tb.get("BERTH_TB_REG1_USER"))
            .arg(&r.addr)
            .env("DOCKER_CONFIG", c.docker_config())
            .env("DOCKER_HOST", tb.get("BERTH_TB_DOCKER_HOST"))
            .env("HOME", c.root())
            .uid_gid(REMOTE_UID));
        assert!(out.status.success(), "{}", text(&out));
    }
    for w in &mut writers {
        assert!(w.wait().unwrap().success());
    }
    // berth's own entries are back (if a docker write dropped them), docker's stay.
    wait_for_config(&c, |v| {
        v["auths"][reg1()]["auth"].is_string() && v["auths"][&reg2]["auth"].is_string()
    });
    let config = c.config().unwrap();
    for r in &extra {
        assert!(
            config["auths"][&r.addr]["auth"].is_string(),
            "docker's entry for {} lost: {config:#}",
            r.addr
        );
    }
}

mod pulls {
    use super::*;
    use support::engine::*;
    use support::fault_proxy::{Fault, FaultProxy};

    fn reg1_secrets_for(server: &str) -> Vec<(String, String)> {
        registry_env(
            "TEAM",
            server,
            testbed().get("BERTH_TB_REG1_USER"),
            testbed().get("BERTH_TB_REG1_PASSWORD"),
        )
    }

    fn berth_pull(
        root: &std::path::Path,
        host: &str,
        server: &str,
        image: &str,
    ) -> std::process::Command {
        let mut cmd = berth(root);
        cmd.args(["pull", image])
            .env("DOCKER_HOST", host)
            .envs(reg1_secrets_for(server));
        cmd
    }

    /// The digest of the first layer of `repo:tag` on the first test registry.
    fn first_layer(repo: &str, tag: &str) -> String {
        let tb = testbed();
        let out = run(std::process::Command::new("curl").args([
            "-sf",
            "-u",
            &format!(
                "{}:{}",
                tb.get("BERTH_TB_REG1_USER"),
                tb.get("BERTH_TB_REG1_PASSWORD")
            ),
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            &format!(
                "http://{}/v2/{repo}/manifests/{tag}",
                tb.get("BERTH_TB_REG1")
            ),
        ]));
        assert!(out.status.success(), "{}", text(&out));
        let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        m["layers"][0]["digest"].as_str().unwrap().to_string()
    }

    #[test]
    fn a_layer_reset_on_every_request_costs_no_more_requests_than_docker_pull_alone() {
        let tb = testbed();
        let layer = first_layer("team/app", "1.0");
        let reset = move |m: &str, p: &str| {
            if m == "GET" && p.contains(&layer) {
                Fault::ResetBody
            } else {
                Fault::Pass
            }
        };
        let (for_docker, for_berth) = (
            FaultProxy::start(tb.get("BERTH_TB_REG1"), reset.clone()),
            FaultProxy::start(tb.get("BERTH_TB_REG1"), reset),
        );
        let (engine_d, engine_b) = (TestEngine::start(), TestEngine::start());
        let dir = scratch();
        let config = dir.path().join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        let mut login = engine_d.docker();
        login.env("DOCKER_CONFIG", &config);
        docker_login(
            login,
            &for_docker.addr,
            tb.get("BERTH_TB_REG1_USER"),
            tb.get("BERTH_TB_REG1_PASSWORD"),
        );
        // docker pull alone, and berth pull, each through its own proxy into its own
        // engine, at the same time.
        let docker_pull = {
            let mut cmd = engine_d.docker();
            cmd.env("DOCKER_CONFIG", &config)
                .args(["pull", &format!("{}/team/app:1.0", for_docker.addr)]);
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                (run(&mut cmd), started.elapsed())
            })
        };
        let started = std::time::Instant::now();
        let out = run(&mut berth_pull(
            dir.path(),
            &engine_b.host(),
            &for_berth.addr,
            &format!("{}/team/app:1.0", for_berth.addr),
        ));
        let berth_took = started.elapsed();
        let (docker_out, docker_took) = docker_pull.join().unwrap();
        assert!(!docker_out.status.success() && !out.status.success());
        let (d, b) = (
            for_docker.seen_of("/blobs/sha256:").len(),
            for_berth.seen_of("/blobs/sha256:").len(),
        );
        eprintln!(
            "blob requests: docker pull {d}, berth pull {b}; time: docker pull {:.1} s, berth pull {:.1} s",
            docker_took.as_secs_f64(),
            berth_took.as_secs_f64()
        );
        assert!(
            b <= d,
            "berth asked for {b} blobs, docker pull alone {d}: {}",
            text(&out)
        );
        assert!(
            text(&out).contains("after the engine's own retries"),
            "{}",
            text(&out)
        );
    }

    #[test]
    fn a_429_with_retry_after_is_waited_for() {
        let tb = testbed();
        let first = std::sync::atomic::AtomicBool::new(true);
        let proxy = FaultProxy::start(tb.get("BERTH_TB_REG1"), move |_, p| {
            if p.contains("/manifests/") && first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                Fault::Respond(429, vec![("Retry-After".into(), "2".into())], String::new())
            } else {
                Fault::Pass
            }
        });
        let engine = TestEngine::start();
        let dir = scratch();
        let image = format!("{}/team/tiny:1", proxy.addr);
        let out = run(&mut berth_pull(
            dir.path(),
            &engine.host(),
            &proxy.addr,
            &image,
        ));
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("retrying in 2.0 s"), "{}", text(&out));
        let manifests = proxy.seen_of("/manifests/");
        assert!(manifests.len() >= 2, "{manifests:?}");
        let waited = manifests[1].at.duration_since(manifests[0].at);
        assert!(
            waited >= std::time::Duration::from_secs(2),
            "the second request came {waited:?} after the 429"
        );
    }

    #[test]
    fn a_permanent_refusal_is_not_retried_at_later_phases() {
        let tb = testbed();
        let proxy = FaultProxy::start(tb.get("BERTH_TB_REG1"), |_, p| {
            if p.contains("/manifests/") {
                Fault::Respond(403, vec![], r#"{"errors":[{"code":"DENIED"}]}"#.into())
            } else {
                Fault::Pass
            }
        });
        let engine = TestEngine::start();
        let image = format!("{}/team/tiny:1", proxy.addr);
        let c = Container::new(&[("BERTH_IMAGES", &image), ("BERTH_WAIT_FOR_PULLS", "true")]);
        c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
        let secrets = reg1_secrets_for(&proxy.addr);
        for phase in ["onCreate", "updateContent", "postCreate"] {
            let out = c.hook(phase, &secrets);
            assert!(out.status.success(), "{}", text(&out));
        }
        let after_create = proxy.seen_of("/manifests/").len();
        assert!(after_create >= 1);
        let out = c.hook("postStart", &secrets);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("not pulling {image} again")),
            "{}",
            text(&out)
        );
        let out = c.hook("postAttach", &secrets);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            proxy.seen_of("/manifests/").len(),
            after_create,
            "no request to the registry at postStart or postAttach"
        );
        // New secrets for the registry: berth tries again.
        let out = c.hook(
            "postStart",
            &registry_env("TEAM", &proxy.addr, tb.get("BERTH_TB_REG1_USER"), "changed"),
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("not pulling"),
            "{}",
            text(&out)
        );
    }
}
