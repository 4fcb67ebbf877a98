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
    let status = c.status();
    assert!(
        status["timeline"]
            .to_string()
            .contains("restored REG1, REG2"),
        "{status:#}"
    );
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
