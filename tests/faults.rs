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
