//! Issue 25: no secret at rest. With `credentialStore: helper`, the remote user's
//! `config.json` names berth's credential helper for its registries and holds no login of
//! berth's; `docker-credential-berth get` asks the daemon, which answers from memory, only
//! the user it wrote for, within a hard deadline. The real Docker CLI and Debian's
//! docker-compose pull through it, as the remote user, from a private engine they may use.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use support::engine::{Setup, TestEngine};
use support::lifecycle::*;
use support::*;

/// A container in credential store `helper`, whose daemon uses `engine`, through
/// postCreate with both test registries' secrets.
fn helper_container(engine: Option<&TestEngine>) -> Container {
    let c = Container::new(&[("BERTH_CREDENTIAL_STORE", "helper")]);
    // The remote user's Docker commands find the helper on their PATH.
    let bin = bin_dir(c.root(), true, &[]);
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    match engine {
        Some(e) => c.entrypoint_with(&[("DOCKER_HOST", &e.host())]),
        None => c.entrypoint(),
    };
    for phase in ["onCreate", "updateContent", "postCreate"] {
        let out = c.hook(phase, &both_registries());
        assert!(out.status.success(), "{phase}: {}", text(&out));
    }
    c
}

/// An engine the remote user may use (its socket open to all: it is the test's own).
fn open_engine() -> TestEngine {
    open_engine_on(Setup::Old)
}

/// An engine of `setup` the remote user may use.
fn open_engine_on(setup: Setup) -> TestEngine {
    let engine = TestEngine::start_on(setup);
    let sock = engine.socket();
    std::fs::set_permissions(
        sock.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    engine
}

/// `docker-credential-berth get` for `server`, as `uid`, with the container's settings.
fn helper_get(c: &Container, server: &str, uid: u32) -> (Output, Duration) {
    let mut cmd = Command::new(c.root().join("bin/docker-credential-berth"));
    cmd.arg("get")
        .env_clear()
        .env("PATH", path_with(&c.root().join("bin")))
        .env("HOME", "/nonexistent")
        .env("DOCKER_CONFIG", c.docker_config())
        .env("BERTH_OPTIONS_FILE", c.options_file())
        .uid(uid)
        .gid(uid);
    let started = Instant::now();
    let out = run_with_stdin(&mut cmd, server.as_bytes());
    (out, started.elapsed())
}

/// The remote user's own command against `engine`, with their Docker config.
fn as_remote_user(c: &Container, engine: &TestEngine, program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", path_with(&c.root().join("bin")))
        .env("HOME", c.root())
        .env("DOCKER_CONFIG", c.docker_config())
        .env("DOCKER_HOST", engine.host())
        .env("BERTH_OPTIONS_FILE", c.options_file())
        .current_dir(c.root())
        .uid(REMOTE_UID)
        .gid(REMOTE_UID);
    cmd
}

/// Secrets of two sets: REG1 with registry 1's login, WRONG with registry 2's user and a
/// password it refuses.
fn good_and_wrong_logins() -> Vec<(String, String)> {
    let tb = testbed();
    let mut secrets = registry_env(
        "REG1",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    );
    secrets.extend(registry_env(
        "WRONG",
        tb.get("BERTH_TB_REG2"),
        tb.get("BERTH_TB_REG2_USER"),
        "not-the-password",
    ));
    secrets
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(files_under(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}

/// The forms a secret could take in a file: as it is, base64 (alone, and as Docker's
/// `user:password`), and hex.
fn forms(user: &str, secret: &str) -> Vec<(String, Vec<u8>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        ("raw".into(), secret.as_bytes().to_vec()),
        ("base64".into(), b64.encode(secret).into_bytes()),
        (
            "base64 of user:password".into(),
            b64.encode(format!("{user}:{secret}")).into_bytes(),
        ),
        ("hex".into(), hex.into_bytes()),
    ]
}

#[test]
fn no_secret_is_on_disk_and_the_docker_cli_and_compose_pull_through_the_helper() {
    let engine = open_engine();
    let c = helper_container(Some(&engine));
    let tb = testbed();
    let config = c.config().expect("a config");
    for n in [1, 2] {
        let reg = tb.get(&format!("BERTH_TB_REG{n}"));
        assert_eq!(config["credHelpers"][reg], "berth", "{config}");
        assert!(config["auths"].get(reg).is_none(), "{config}");
    }
    // Not in the config, berth's record, the daemon's record or log, in any form.
    let mut files = files_under(&c.docker_config());
    files.extend(files_under(&c.state()));
    for n in [1, 2] {
        let user = tb.get(&format!("BERTH_TB_REG{n}_USER"));
        let password = tb.get(&format!("BERTH_TB_REG{n}_PASSWORD"));
        for (form, needle) in forms(user, password) {
            for f in &files {
                let bytes = std::fs::read(f).unwrap();
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "registry {n}'s password, {form}, is in {}",
                    f.display()
                );
            }
        }
    }
    // The real docker CLI, as the remote user, through the helper.
    let tiny = tb.get("BERTH_TB_REG1_TINY");
    let out = run(as_remote_user(&c, &engine, "docker").args(["pull", tiny]));
    assert!(out.status.success(), "{}", text(&out));
    // docker-compose (Debian's 1.29, docker-py's own credential helper client).
    std::fs::write(
        c.root().join("docker-compose.yml"),
        format!(
            "services:\n  tools:\n    image: {}\n",
            tb.get("BERTH_TB_REG2_TINY")
        ),
    )
    .unwrap();
    let out = run(as_remote_user(&c, &engine, "docker-compose").args([
        "-f",
        &c.root().join("docker-compose.yml").display().to_string(),
        "pull",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(engine.repo_digests(tb.get("BERTH_TB_REG2_TINY")).is_some());
}

#[test]
fn a_buildx_build_from_a_private_image_gets_its_login_through_the_helper() {
    // BuildKit asks the CLI's credential helpers through its session: `docker buildx build`
    // of a Dockerfile that starts FROM a private image, as the remote user, with forky's
    // docker CLI and its buildx plugin (20.10 has no buildx), against a current engine with
    // the containerd image store, its embedded BuildKit doing the pull.
    let engine = open_engine_on(Setup::ModernContainerd);
    let c = helper_container(Some(&engine));
    let tb = testbed();
    let base = tb.get("BERTH_TB_REG2_TINY");
    let reg = tb.get("BERTH_TB_REG2");
    assert_eq!(c.config().expect("a config")["credHelpers"][reg], "berth");
    // The plugin, where the CLI looks for the user's own: DOCKER_CONFIG/cli-plugins.
    let plugins = c.docker_config().join("cli-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let buildx = Path::new(tb.get("BERTH_TB_MODERN_ROOT"))
        .join("usr/libexec/docker/cli-plugins/docker-buildx");
    std::fs::copy(&buildx, plugins.join("docker-buildx")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the test bed's forky root has docker-buildx)",
            buildx.display()
        )
    });
    let context = c.root().join("build");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {base}\nLABEL built.by=berth-test\n"),
    )
    .unwrap();
    let chown = |p: &Path| {
        std::os::unix::fs::chown(p, Some(REMOTE_UID), Some(REMOTE_UID)).unwrap();
    };
    for p in [
        &plugins,
        &plugins.join("docker-buildx"),
        &context,
        &context.join("Dockerfile"),
    ] {
        chown(p);
    }
    let out = run(
        as_remote_user(&c, &engine, &Setup::ModernContainerd.docker_cli()).args([
            "buildx",
            "build",
            "--no-cache",
            "--progress=plain",
            "-t",
            "berth-test/built:1",
            &context.display().to_string(),
        ]),
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    // The engine holds the result, built on the private image, which the registry gives only
    // with a login: the config names none but berth's helper.
    let label = run(engine.docker().args([
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"built.by\"}}",
        "berth-test/built:1",
    ]));
    assert_eq!(
        String::from_utf8_lossy(&label.stdout).trim(),
        "berth-test",
        "{said}\n{}",
        text(&label)
    );
    // Nothing of the login reached the build's output.
    let password = tb.get("BERTH_TB_REG2_PASSWORD");
    assert!(!said.contains(password), "{said}");
}

#[test]
fn a_daemon_restart_waits_for_the_next_hook_and_says_so() {
    let c = helper_container(None);
    let reg1 = testbed().get("BERTH_TB_REG1").to_string();
    let (out, _) = helper_get(&c, &reg1, REMOTE_UID);
    assert!(out.status.success(), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["Username"], testbed().get("BERTH_TB_REG1_USER"));
    assert_eq!(answer["Secret"], testbed().get("BERTH_TB_REG1_PASSWORD"));
    // The container restarts: a new daemon holds no secret until a hook brings them.
    c.stop_daemon(nix::sys::signal::Signal::SIGKILL);
    c.entrypoint();
    let (out, _) = helper_get(&c, &reg1, REMOTE_UID);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "berth has not received the secrets for {reg1} since its daemon started"
        )),
        "{}",
        text(&out)
    );
    let status = c.status();
    assert_eq!(status["awaiting_secrets"][0]["id"], "REG1", "{status:#}");
    let out = c.hook("postStart", &both_registries());
    assert!(out.status.success(), "{}", text(&out));
    let (out, _) = helper_get(&c, &reg1, REMOTE_UID);
    assert!(out.status.success(), "{}", text(&out));
    assert!(c.status().get("awaiting_secrets").is_none());
}

#[test]
fn the_helper_never_hangs_on_a_daemon_that_does_not_answer_or_is_gone() {
    let c = helper_container(None);
    let reg1 = testbed().get("BERTH_TB_REG1").to_string();
    let pid = nix::unistd::Pid::from_raw(c.daemon_pid().unwrap());
    // A daemon that accepts nothing and answers nothing (stopped).
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let (out, took) = helper_get(&c, &reg1, REMOTE_UID);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "credentials not found in native keychain"
    );
    assert!(
        took < Duration::from_secs(10),
        "the helper took {took:?} with its deadline at 3 s"
    );
    // No daemon at all.
    c.stop_daemon(nix::sys::signal::Signal::SIGKILL);
    let (out, _) = helper_get(&c, &reg1, REMOTE_UID);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "credentials not found in native keychain"
    );
}

#[test]
fn another_users_get_is_refused() {
    let c = helper_container(None);
    let reg1 = testbed().get("BERTH_TB_REG1").to_string();
    let (out, _) = helper_get(&c, &reg1, 0);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("berth keeps registry credentials for nobody only; uid 0 gets none"),
        "{}",
        text(&out)
    );
    assert!(!said.contains(testbed().get("BERTH_TB_REG1_PASSWORD")));
}

#[test]
fn a_refused_login_is_named_when_it_is_written_and_a_good_one_accepted() {
    let c = Container::new(&[]);
    c.entrypoint();
    let tb = testbed();
    let secrets = good_and_wrong_logins();
    let out = c.hook("postCreate", &secrets);
    assert!(out.status.success(), "{}", text(&out));
    let mut said = text(&out);
    // The checks run beside the hook, which does not wait for them: once the record has
    // both answers, the next phase says them if postCreate could not.
    c.status_when(|s| {
        s["registries"]
            .as_array()
            .is_some_and(|r| r.iter().filter(|r| r["login"].is_string()).count() == 2)
    });
    let out = c.hook("postStart", &secrets);
    assert!(out.status.success(), "{}", text(&out));
    said.push_str(&text(&out));
    assert!(
        said.contains(&format!(
            "REG1 ({}): the registry accepts this login",
            tb.get("BERTH_TB_REG1")
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "WRONG ({}): the registry refused this login",
            tb.get("BERTH_TB_REG2")
        )) && said
            .contains("check WRONG_CONTAINER_REGISTRY_USER and WRONG_CONTAINER_REGISTRY_PASSWORD"),
        "{said}"
    );
    assert_eq!(
        said.matches("the registry refused this login").count(),
        1,
        "said once: {said}"
    );
    let status = c.status();
    let registries = status["registries"].as_array().unwrap();
    let login = |id: &str| {
        registries
            .iter()
            .find(|r| r["id"] == id)
            .and_then(|r| r["login"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(login("REG1"), "accepted");
    assert!(login("WRONG").starts_with("refused: "), "{status:#}");
}

#[test]
fn with_check_logins_false_no_login_is_checked_or_said() {
    // The same wrong password as above, with the checks turned off: nothing is said of it,
    // and berth status has no verdict. The pull of registry 1's image, which the postCreate
    // hook waits for, starts after the checks would have started and takes longer than
    // they take: once it is done, a check would have been answered.
    let engine = open_engine();
    let tb = testbed();
    let c = Container::new(&[
        ("BERTH_CHECK_LOGINS", "false"),
        ("BERTH_IMAGES", tb.get("BERTH_TB_REG1_TINY")),
        ("BERTH_WAIT_FOR_PULLS", "true"),
    ]);
    c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
    let secrets = good_and_wrong_logins();
    let mut said = String::new();
    for phase in ["onCreate", "updateContent", "postCreate", "postStart"] {
        let out = c.hook(phase, &secrets);
        assert!(out.status.success(), "{phase}: {}", text(&out));
        said.push_str(&text(&out));
    }
    assert!(
        said.contains("(1 pulled, 0 already present, 0 failed)"),
        "{said}"
    );
    assert!(!said.contains("this login"), "no verdict is said: {said}");
    let status = c.status();
    let registries = status["registries"].as_array().unwrap();
    assert_eq!(registries.len(), 2, "{status:#}");
    assert!(
        registries.iter().all(|r| r["login"].is_null()),
        "no verdict in berth status: {status:#}"
    );
}

#[test]
fn a_new_ecr_token_replaces_the_one_the_helper_gives_and_nothing_is_rewritten() {
    // A loopback ECR API that gives a new token at each call (moto's never changes), each
    // with an expiry already past, as moto gives: each hook swaps the keys again.
    let ecr = FakeServer::start(|n| {
        (
            200,
            ecr_answer(
                &format!("token-{n}"),
                std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
            ),
        )
    });
    let c = Container::new(&[("BERTH_CREDENTIAL_STORE", "helper")]);
    bin_dir(c.root(), true, &[]);
    std::fs::set_permissions(c.root().join("bin"), std::fs::Permissions::from_mode(0o755)).unwrap();
    c.entrypoint();
    let host = ecr_host("eu-west-1");
    let secrets = registry_env("ECR", &host, "AKIAEXAMPLEKEY", "the-secret-access-key");
    let hook = |phase: &str| {
        let out = c.hook_as(
            phase,
            &secrets,
            REMOTE_UID,
            &[("AWS_ENDPOINT_URL_ECR", &ecr.url)],
        );
        assert!(out.status.success(), "{phase}: {}", text(&out));
    };
    let secret_now = || {
        let (out, _) = helper_get(&c, &host, REMOTE_UID);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["Secret"].as_str().unwrap().to_string()
    };
    hook("postCreate");
    let first = secret_now();
    assert_eq!(first, "token-0");
    let config = c.docker_config().join("config.json");
    let before = std::fs::metadata(&config).unwrap();
    hook("postStart");
    assert_eq!(secret_now(), "token-1", "the helper gives the new token");
    let after = std::fs::metadata(&config).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec()),
        "config.json was rewritten for a new token"
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("token-"), "{text}");
    assert_eq!(ecr.requests(), 2);
}
