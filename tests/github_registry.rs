//! GitHub's container registry without extra secrets: in Codespaces (and Actions) the
//! lifecycle commands have `GITHUB_USER` and `GITHUB_TOKEN`, and berth logs in with them
//! when no secret set names the registry. A test registry stands in for ghcr.io through the
//! `githubRegistryHost` setting; its denial of a package is explained in GitHub's terms.

mod support;

use support::fault_proxy::FaultProxy;
use support::lifecycle::Container;
use support::*;

/// The codespace's variables, with registry 1's main user standing in for the token.
fn codespace_vars() -> Vec<(String, String)> {
    let tb = testbed();
    vec![
        ("GITHUB_USER".into(), tb.get("BERTH_TB_REG1_USER").into()),
        (
            "GITHUB_TOKEN".into(),
            tb.get("BERTH_TB_REG1_PASSWORD").into(),
        ),
    ]
}

#[test]
fn the_hooks_log_in_with_the_codespaces_own_token_and_docker_can_pull() {
    let tb = testbed();
    let reg = tb.get("BERTH_TB_REG1");
    let c = Container::new(&[("BERTH_GITHUB_REGISTRY_HOST", reg)]);
    c.entrypoint();
    let out = c.hook("postCreate", &codespace_vars());
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("credentials for GITHUB_TOKEN"), "{said}");
    assert!(!said.contains(tb.get("BERTH_TB_REG1_PASSWORD")), "{said}");
    let config = c.config().expect("a config");
    assert_eq!(
        decoded_auth(&config, reg).as_deref(),
        Some(
            format!(
                "{}:{}",
                tb.get("BERTH_TB_REG1_USER"),
                tb.get("BERTH_TB_REG1_PASSWORD")
            )
            .as_str()
        ),
        "{config}"
    );
    let pull = run(docker(c.root(), &c.docker_config()).args([
        "pull",
        "-q",
        tb.get("BERTH_TB_REG1_TINY"),
    ]));
    assert!(pull.status.success(), "{}", text(&pull));
    // The daemon keeps no token in its environment.
    let pid = c.daemon_pid().expect("the daemon runs");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains("GITHUB_TOKEN"));
}

#[test]
fn a_secret_set_for_the_registry_wins_and_never_turns_it_off() {
    let tb = testbed();
    let reg = tb.get("BERTH_TB_REG1");
    // A secret set names the registry with the other user: it is the one written.
    let c = Container::new(&[("BERTH_GITHUB_REGISTRY_HOST", reg)]);
    c.entrypoint();
    let mut vars = codespace_vars();
    vars.extend(registry_env(
        "GHCR",
        reg,
        tb.get("BERTH_TB_REG1_SYMBOLS_USER"),
        &tb.decoded("BERTH_TB_REG1_SYMBOLS_PASSWORD_B64"),
    ));
    let out = c.hook("postCreate", &vars);
    assert!(out.status.success(), "{}", text(&out));
    let config = c.config().expect("a config");
    assert!(
        decoded_auth(&config, reg)
            .is_some_and(|a| a.starts_with(&format!("{}:", tb.get("BERTH_TB_REG1_SYMBOLS_USER")))),
        "{config}"
    );
    assert!(!text(&out).contains("GITHUB_TOKEN"), "{}", text(&out));

    // githubRegistry=never: the variables are left alone.
    let c = Container::new(&[
        ("BERTH_GITHUB_REGISTRY_HOST", reg),
        ("BERTH_GITHUB_REGISTRY", "never"),
    ]);
    c.entrypoint();
    let out = c.hook("postCreate", &codespace_vars());
    assert!(out.status.success(), "{}", text(&out));
    assert!(!c.has_login(reg), "{:?}", c.config());
}

#[test]
fn doctor_explains_a_denied_package_in_githubs_terms() {
    let tb = testbed();
    let proxy = FaultProxy::denying(
        tb.get("BERTH_TB_REG1"),
        "team/tiny",
        "permission_denied: The token provided does not match expected scopes.",
    );
    let root = scratch();
    let out = run(berth(root.path())
        .env("DOCKER_HOST", tb.get("BERTH_TB_DOCKER_HOST"))
        .env("BERTH_GITHUB_REGISTRY_HOST", &proxy.addr)
        .envs(codespace_vars())
        .args(["doctor", "--json", &format!("{}/team/tiny:1", proxy.addr)]));
    let d: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(out.status.code(), Some(1), "{d:#}");
    let registry = &d["registries"][0];
    assert_eq!(registry["id"], "GITHUB_TOKEN");
    let login = registry["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == "login")
        .expect("a login check");
    assert_eq!(
        login["verdict"], "ok",
        "the token itself is accepted: {d:#}"
    );
    let image = &registry["images"][0]["checks"][0];
    assert_eq!(image["verdict"], "problem", "{d:#}");
    let fix = image["fix"].as_str().unwrap();
    for words in [
        "GITHUB_TOKEN reads only packages that inherit access from this repository",
        "Manage Codespaces access",
        "package tiny of team",
        "read:packages",
        "GHCR_CONTAINER_REGISTRY_SERVER",
    ] {
        assert!(fix.contains(words), "{words:?} in {fix}");
    }
}
