//! `berth doctor` against real failures: each made real (a wrong password, an unknown
//! repository or tag, a registry down, an untrusted certificate, ECR's refusals, a
//! `credsStore` that hides berth's entry, an engine the remote user cannot open), or, where
//! no real part produces it on demand, by a loopback proxy in front of the real registry (a
//! user denied one repository, a used-up rate limit). Each diagnosis is asserted.
//!
//! Issue 24: what doctor asks of the engine (whether it answers, whether the remote user
//! can open it, what the hook says of a failed pull) is checked on every engine set-up
//! (docker.io 20.10, and 28.5 with either image store); what it asks of registries alone,
//! on 20.10.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::engine::Setup;
use support::fault_proxy::{Fault, FaultProxy};
use support::*;

/// `berth doctor ARGS` with these secrets, against the test bed's engine.
fn doctor(root: &Path, secrets: &[(String, String)], args: &[&str]) -> Output {
    doctor_on(Setup::Old, root, secrets, args)
}

/// `berth doctor ARGS` with these secrets, against the test bed's engine of `setup`.
fn doctor_on(setup: Setup, root: &Path, secrets: &[(String, String)], args: &[&str]) -> Output {
    let tb = testbed();
    let mut cmd = berth(root);
    cmd.env("DOCKER_HOST", setup.testbed_host())
        .env("AWS_ENDPOINT_URL_ECR", tb.get("BERTH_TB_ECR_ENDPOINT"))
        .envs(secrets.iter().map(|(k, v)| (k, v)))
        .arg("doctor")
        .args(args);
    run(&mut cmd)
}

/// `doctor --json`, parsed, with its exit code.
fn doctor_json(
    root: &Path,
    secrets: &[(String, String)],
    images: &[&str],
) -> (i32, serde_json::Value) {
    doctor_json_on(Setup::Old, root, secrets, images)
}

/// `doctor --json` against the test bed's engine of `setup`, parsed, with its exit code.
fn doctor_json_on(
    setup: Setup,
    root: &Path,
    secrets: &[(String, String)],
    images: &[&str],
) -> (i32, serde_json::Value) {
    let mut args = vec!["--json"];
    args.extend(images);
    let out = doctor_on(setup, root, secrets, &args);
    let json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code().unwrap(), json)
}

/// Every check of the registry `server`, as (step, verdict, found, fix).
fn checks(d: &serde_json::Value, server: &str) -> Vec<(String, String, String, String)> {
    doctor_checks(d, server)
        .into_iter()
        .map(|c| {
            (
                c["step"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
                c["found"].as_str().unwrap().to_string(),
                c["fix"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The one problem among `server`'s checks (there must be exactly one).
fn the_problem(d: &serde_json::Value, server: &str) -> (String, String, String) {
    let problems: Vec<_> = checks(d, server)
        .into_iter()
        .filter(|c| c.1 == "problem")
        .collect();
    assert_eq!(problems.len(), 1, "one problem for {server}: {d:#}");
    let (step, _, found, fix) = problems.into_iter().next().unwrap();
    (step, found, fix)
}

/// `doctor --json` of registry 1's tiny image through `proxy`, as the secret set `id`
/// (registry 1's main user).
fn doctor_behind(root: &Path, proxy: &FaultProxy, id: &str) -> (i32, serde_json::Value) {
    let tb = testbed();
    let secrets = registry_env(
        id,
        &proxy.addr,
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    );
    doctor_json(root, &secrets, &[&format!("{}/team/tiny:1", proxy.addr)])
}

fn reg1_with_password(password: &str) -> Vec<(String, String)> {
    let tb = testbed();
    registry_env(
        "REG1",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_USER"),
        password,
    )
}

crate::on_every_engine! {
    fn everything_in_order_exits_0_and_says_what_it_checked(setup) {
        let root = scratch();
        let tb = testbed();
        let image = tb.get("BERTH_TB_REG1_TINY");
        let (code, d) = doctor_json_on(
                setup,
            root.path(),
            &reg1_with_password(tb.get("BERTH_TB_REG1_PASSWORD")),
            &[image],
        );
        assert_eq!(code, 0, "{d:#}");
        assert_eq!(d["problems"], 0);
        let all = checks(&d, tb.get("BERTH_TB_REG1"));
        let steps: Vec<&str> = all.iter().map(|c| c.0.as_str()).collect();
        for step in ["secrets", "server", "login", "image", "docker"] {
            assert!(steps.contains(&step), "{step} in {steps:?}");
        }
        assert!(
            all.iter()
                .any(|c| c.0 == "login" && c.2.contains("accepts alice's login")),
            "{all:?}"
        );
        assert!(
            all.iter()
                .any(|c| c.0 == "image" && c.2.contains("exists (sha256:")),
            "{all:?}"
        );
        // The human form says the same, and never a secret.
        let out = doctor_on(
                setup,
            root.path(),
            &reg1_with_password(tb.get("BERTH_TB_REG1_PASSWORD")),
            &[image],
        );
        let said = text(&out);
        assert!(said.contains("doctor: no problem found"), "{said}");
        assert!(!said.contains(tb.get("BERTH_TB_REG1_PASSWORD")), "{said}");
    }
}

#[test]
fn a_wrong_password_is_refused_at_the_login_as_docker_login_would() {
    let root = scratch();
    let tb = testbed();
    let (code, d) = doctor_json(
        root.path(),
        &reg1_with_password("not-the-password"),
        &[tb.get("BERTH_TB_REG1_TINY")],
    );
    assert_eq!(code, 1);
    let (step, found, fix) = the_problem(&d, tb.get("BERTH_TB_REG1"));
    assert_eq!(step, "login");
    assert!(
        found.contains("refused alice's login (HTTP 401)"),
        "{found}"
    );
    assert!(fix.contains("REG1_CONTAINER_REGISTRY_PASSWORD"), "{fix}");
    // The images are not asked about once the login fails.
    assert!(!d.to_string().contains("\"image\",\"verdict\""));
    let out = doctor(root.path(), &reg1_with_password("not-the-password"), &[]);
    assert!(!text(&out).contains("not-the-password"));
}

#[test]
fn an_unknown_repository_and_an_unknown_tag_are_told_apart() {
    let root = scratch();
    let tb = testbed();
    let reg = tb.get("BERTH_TB_REG1");
    let secrets = reg1_with_password(tb.get("BERTH_TB_REG1_PASSWORD"));
    let (code, d) = doctor_json(
        root.path(),
        &secrets,
        &[&format!("{reg}/team/no-such-repo:1")],
    );
    assert_eq!(code, 1);
    let (step, found, fix) = the_problem(&d, reg);
    assert_eq!(step, "image");
    assert!(found.contains("no repository team/no-such-repo"), "{found}");
    assert!(fix.contains("check the image name"), "{fix}");

    let (code, d) = doctor_json(
        root.path(),
        &secrets,
        &[&format!("{reg}/team/tiny:no-such-tag")],
    );
    assert_eq!(code, 1);
    let (step, found, fix) = the_problem(&d, reg);
    assert_eq!(step, "image");
    assert!(
        found.contains("repository team/tiny has no no-such-tag"),
        "{found}"
    );
    assert!(fix.contains("check the tag"), "{fix}");
}

#[test]
fn a_registry_that_is_down_is_named_at_the_server_step() {
    let root = scratch();
    let server = format!("127.0.0.1:{}", closed_port());
    let (code, d) = doctor_json(root.path(), &registry_env("DOWN", &server, "u", "p"), &[]);
    assert_eq!(code, 1);
    let (step, found, fix) = the_problem(&d, &server);
    assert_eq!(step, "server");
    assert!(
        found.contains(&format!("nothing answers at {server}")),
        "{found}"
    );
    assert!(fix.contains("the registry is down"), "{fix}");
}

#[test]
fn ecr_keys_without_permission_and_a_wrong_secret_are_explained() {
    let root = scratch();
    let tb = testbed();
    let host = ecr_host("eu-west-1");
    let denied = registry_env(
        "ECR",
        &host,
        tb.get("BERTH_TB_ECR_DENIED_ACCESS_KEY_ID"),
        tb.get("BERTH_TB_ECR_DENIED_SECRET_ACCESS_KEY"),
    );
    let (code, d) = doctor_json(root.path(), &denied, &[]);
    assert_eq!(code, 1);
    let (step, found, fix) = the_problem(&d, &host);
    assert_eq!(step, "login");
    assert!(found.contains("AccessDenied"), "{found}");
    assert!(fix.contains("ecr:GetAuthorizationToken"), "{fix}");

    let wrong = registry_env(
        "ECR",
        &host,
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        "wrongwrongwrongwrongwrongwrongwrongwrong",
    );
    let (code, d) = doctor_json(root.path(), &wrong, &[]);
    assert_eq!(code, 1);
    let (step, found, fix) = the_problem(&d, &host);
    assert_eq!(step, "login");
    assert!(found.contains("SignatureDoesNotMatch"), "{found}");
    assert!(
        fix.contains("ECR_CONTAINER_REGISTRY_PASSWORD") && fix.contains("clock"),
        "{fix}"
    );
}

#[test]
fn a_default_creds_store_that_hides_berths_entry_is_a_problem() {
    let root = scratch();
    let tb = testbed();
    let reg = tb.get("BERTH_TB_REG1");
    let dir = root.path().join("home/.docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"credsStore": "desktop", "auths": {reg: {"auth": "YTpi"}}}).to_string(),
    )
    .unwrap();
    let (code, d) = doctor_json(
        root.path(),
        &reg1_with_password(tb.get("BERTH_TB_REG1_PASSWORD")),
        &[tb.get("BERTH_TB_REG1_TINY")],
    );
    assert_eq!(code, 1);
    let (step, found, fix) = the_problem(&d, reg);
    assert_eq!(step, "docker");
    assert!(
        found.contains("the default credsStore \"desktop\"") && found.contains("hides the entry"),
        "{found}"
    );
    assert!(fix.contains("credHelpers"), "{fix}");
}

crate::on_every_engine! {
    fn an_engine_the_remote_user_cannot_open_is_named(setup) {
        let root = scratch();
        let tb = testbed();
        // The test bed's engine socket is root's; nobody may not open it.
        let (code, d) = doctor_json_on(
                setup,
            root.path(),
            &reg1_with_password(tb.get("BERTH_TB_REG1_PASSWORD")),
            &["--user", "nobody"],
        );
        assert_eq!(code, 1);
        let (step, found, fix) = the_problem(&d, tb.get("BERTH_TB_REG1"));
        assert_eq!(step, "docker");
        assert!(
            found.contains("user nobody cannot open the Docker engine's socket"),
            "{found}"
        );
        assert!(!fix.is_empty());
    }
}

#[test]
fn a_user_denied_one_repository_is_told_who_may_not_pull_what() {
    // distribution's htpasswd cannot deny one user one repository; an authorising proxy in
    // front of the real registry does, as Harbor or a token service would.
    let root = scratch();
    let tb = testbed();
    let proxy = FaultProxy::denying(
        tb.get("BERTH_TB_REG1"),
        "team/tiny",
        "requested access to the resource is denied",
    );
    let (code, d) = doctor_behind(root.path(), &proxy, "PROXIED");
    assert_eq!(code, 1);
    let (step, found, fix) = the_problem(&d, &proxy.addr);
    assert_eq!(step, "image");
    assert!(
        found.contains("alice may not pull team/tiny (HTTP 403)") && found.contains("DENIED"),
        "{found}"
    );
    assert!(
        fix.contains("give PROXIED's user read access to team/tiny"),
        "{fix}"
    );
}

#[test]
fn a_used_up_rate_limit_is_not_mistaken_for_a_permission_problem() {
    let root = scratch();
    let tb = testbed();
    let proxy = FaultProxy::start(tb.get("BERTH_TB_REG1"), |method, path| {
        if path.starts_with("/v2/team/tiny/manifests/") && method == "HEAD" {
            Fault::Respond(
                200,
                vec![
                    ("ratelimit-limit".into(), "100;w=21600".into()),
                    ("ratelimit-remaining".into(), "0;w=21600".into()),
                    ("docker-content-digest".into(), "sha256:0000".into()),
                ],
                String::new(),
            )
        } else {
            Fault::Pass
        }
    });
    let (code, d) = doctor_behind(root.path(), &proxy, "LIMITED");
    assert_eq!(code, 1);
    let (step, found, fix) = the_problem(&d, &proxy.addr);
    assert_eq!(step, "rate-limit");
    assert!(
        found.contains("ratelimit-remaining: 0 per 21600 s"),
        "{found}"
    );
    assert!(fix.contains("not a permission problem"), "{fix}");
    assert!(
        checks(&d, &proxy.addr)
            .iter()
            .any(|c| c.0 == "image" && c.1 == "ok"),
        "the image itself may be pulled: {d:#}"
    );
}

#[test]
fn an_untrusted_certificate_is_named_at_the_server_step() {
    // A registry of its own with a self-signed certificate, under a name that is not
    // loopback (so that neither the engine nor berth would fall back to plain HTTP): doctor
    // runs in a container whose /etc/hosts maps the name to 127.0.0.1.
    let root = scratch();
    let tb = testbed();
    let certs = root.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let made = run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=registry.test",
            "-addext",
            "subjectAltName=DNS:registry.test",
        ])
        .arg("-keyout")
        .arg(certs.join("key.pem"))
        .arg("-out")
        .arg(certs.join("cert.pem")));
    assert!(made.status.success(), "{}", text(&made));
    let registry = ExtraRegistry::start_with(|config| {
        config["http"]["tls"] = serde_json::json!({
            "certificate": certs.join("cert.pem"),
            "key": certs.join("key.pem"),
        });
    });
    let port = registry.addr.rsplit(':').next().unwrap();
    let server = format!("registry.test:{port}");
    let mut cmd = docker(root.path(), &root.path().join("docker"));
    cmd.args([
        "run",
        "--rm",
        "--network",
        "host",
        "--add-host",
        "registry.test:127.0.0.1",
    ])
    .args(["-v", &format!("{}:/berth:ro", berth_bin().display())]);
    for (k, v) in registry_env("SELF", &server, "u", "p") {
        cmd.args(["-e", &k]).env(k, v);
    }
    let out = run(cmd.args([
        tb.get("BERTH_TB_IMAGE_DEBIAN"),
        "/berth",
        "doctor",
        "--json",
    ]));
    let d: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (step, found, fix) = the_problem(&d, &server);
    assert_eq!(step, "server");
    assert!(
        found.contains("TLS failed: the server's certificate is self-signed"),
        "{found}"
    );
    assert!(
        fix.contains("trust store") && fix.contains("SSL_CERT_FILE"),
        "{fix}"
    );
}

crate::on_every_engine! {
    fn the_post_create_hook_prints_the_diagnosis_of_a_failed_pull(setup) {
        use support::engine::TestEngine;
        use support::lifecycle::Container;
        let tb = testbed();
        let engine = TestEngine::start_on(setup);
        let missing = format!("{}/team/tiny:no-such-tag", tb.get("BERTH_TB_REG1"));
        let c = Container::new(&[
            ("BERTH_IMAGES", &missing),
            ("BERTH_WAIT_FOR_PULLS", "true"),
            ("BERTH_WAIT_FOR_DOCKER", "true"),
        ]);
        c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
        let out = c.hook("postCreate", &both_registries());
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            said.contains(
                "doctor: image: repository team/tiny has no no-such-tag (MANIFEST_UNKNOWN: manifest unknown); check the tag or digest"
            ),
            "{said}"
        );
        // berth status keeps the same words.
        let status = run(c.berth().arg("status"));
        assert!(
            text(&status).contains("doctor: image: repository team/tiny has no no-such-tag"),
            "{}",
            text(&status)
        );
    }
}

#[test]
fn the_secret_step_says_where_each_secret_was_found_never_its_value() {
    let root = scratch();
    let tb = testbed();
    let file = root.path().join("secrets.json");
    std::fs::write(
        &file,
        serde_json::json!({"REG1_CONTAINER_REGISTRY_PASSWORD": tb.get("BERTH_TB_REG1_PASSWORD")})
            .to_string(),
    )
    .unwrap();
    let mut vars = reg1_with_password("");
    vars.retain(|(k, _)| !k.ends_with("_PASSWORD"));
    vars.push(("BERTH_SECRETS_FILE".into(), file.display().to_string()));
    let (code, d) = doctor_json(root.path(), &vars, &[]);
    assert_eq!(code, 0, "{d:#}");
    let secrets = checks(&d, tb.get("BERTH_TB_REG1"))
        .into_iter()
        .find(|c| c.0 == "secrets")
        .unwrap();
    assert_eq!(
        secrets.2,
        format!(
            "REG1_CONTAINER_REGISTRY_SERVER, REG1_CONTAINER_REGISTRY_USER from the environment; \
             REG1_CONTAINER_REGISTRY_PASSWORD from secrets file {}",
            file.display()
        )
    );
    assert!(!d.to_string().contains(tb.get("BERTH_TB_REG1_PASSWORD")));
}

#[test]
fn with_discover_the_workspaces_images_are_checked_too() {
    let root = scratch();
    let tb = testbed();
    let ws = root.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let image = format!("{}/team/tiny:no-such-tag", tb.get("BERTH_TB_REG1"));
    std::fs::write(
        ws.join("docker-compose.yml"),
        format!("services:\n  app:\n    image: {image}\n"),
    )
    .unwrap();
    let mut vars = reg1_with_password(tb.get("BERTH_TB_REG1_PASSWORD"));
    vars.push(("BERTH_DISCOVER".into(), "true".into()));
    vars.push(("BERTH_WORKSPACE".into(), ws.display().to_string()));
    let (code, d) = doctor_json(root.path(), &vars, &[]);
    assert_eq!(code, 1, "{d:#}");
    let (step, found, _) = the_problem(&d, tb.get("BERTH_TB_REG1"));
    assert_eq!(step, "image");
    assert!(found.contains("has no no-such-tag"), "{found}");
}

#[test]
fn an_image_without_the_platform_asked_is_named_at_the_image_step() {
    // Issue 24: a pull with `platform` refuses a name with no image for it; doctor says so.
    let root = scratch();
    let tb = testbed();
    let multi = tb.get("BERTH_TB_REG1_MULTI");
    let mut vars = reg1_with_password(tb.get("BERTH_TB_REG1_PASSWORD"));
    vars.push(("BERTH_PLATFORM".into(), "linux/riscv64".into()));
    let (code, d) = doctor_json(root.path(), &vars, &[multi]);
    assert_eq!(code, 1, "{d:#}");
    let (step, found, fix) = the_problem(&d, tb.get("BERTH_TB_REG1"));
    assert_eq!(step, "image");
    assert!(
        found.contains("team/multi:1 exists (sha256:")
            && found.ends_with("but has no linux/riscv64 image (it has linux/amd64, linux/arm64)"),
        "{found}"
    );
    assert!(
        fix.contains("set the platform option to one it has"),
        "{fix}"
    );
    // For a platform it has, and for a single image of it, nothing stands in the way.
    vars.pop();
    vars.push(("BERTH_PLATFORM".into(), "linux/arm64".into()));
    let (code, d) = doctor_json(root.path(), &vars, &[multi, tb.get("BERTH_TB_REG1_ARM")]);
    assert_eq!(code, 0, "{d:#}");
    let images: Vec<_> = checks(&d, tb.get("BERTH_TB_REG1"))
        .into_iter()
        .filter(|c| c.0 == "image")
        .collect();
    assert!(
        images.len() == 2 && images.iter().all(|c| c.2.ends_with(", for linux/arm64")),
        "{images:?}"
    );
}
