//! Issues 3 and 5: no secret value ever appears in berth's stdout, stderr, log, state
//! files or process arguments, on any path, with the most verbose logging.

mod support;

use base64::Engine as _;
use support::lifecycle::*;
use support::*;

/// Every secret the test hands berth, raw and as Docker stores it.
fn needles(secrets: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let get = |id: &str, f: &str| {
        secrets
            .iter()
            .find(|(k, _)| k == &format!("{id}_CONTAINER_REGISTRY_{f}"))
            .map(|(_, v)| v.clone())
    };
    for (k, v) in secrets {
        if k.ends_with("_PASSWORD") || k.ends_with("_SESSION_TOKEN") {
            out.push(v.clone());
            let id = k.trim_end_matches("_CONTAINER_REGISTRY_PASSWORD");
            if let Some(user) = get(id, "USER") {
                out.push(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{v}")));
            }
        }
    }
    out
}

fn assert_clean(what: &str, haystack: &str, needles: &[String]) {
    for n in needles {
        assert!(
            !haystack.contains(n.as_str()),
            "{what} contains a secret ({} chars)",
            n.len()
        );
    }
}

fn all_secrets() -> Vec<(String, String)> {
    let tb = testbed();
    let mut s = both_registries();
    s.extend(registry_env(
        "SYM",
        "sym.example.com",
        "sym-user",
        &tb.decoded("BERTH_TB_REG1_SYMBOLS_PASSWORD_B64"),
    ));
    s.extend(registry_env(
        "ECR",
        &ecr_host("eu-west-1"),
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"),
    ));
    s.extend(registry_env(
        "ECR_BAD",
        &ecr_host("us-west-2"),
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        "a-wrong-secret-access-key-1234",
    ));
    s.extend(registry_env(
        "HALF",
        "half.example.com",
        "u",
        "half-set-password-5678",
    ));
    s.push((
        "HALF_CONTAINER_REGISTRY_SERVER".into(),
        "not a host 9abc".into(),
    ));
    s.push((
        "EMPTYUSER_CONTAINER_REGISTRY_SERVER".into(),
        "x.example.com".into(),
    ));
    s.push((
        "EMPTYUSER_CONTAINER_REGISTRY_PASSWORD".into(),
        "password-of-a-set-without-user".into(),
    ));
    s
}

#[test]
fn inject_prints_and_writes_no_secret_on_any_path() {
    let tb = testbed();
    let secrets = all_secrets();
    let n = needles(&secrets);
    let dir = scratch();
    let root = dir.path();
    bin_dir(root, true, &[]);
    let endpoint = (
        "AWS_ENDPOINT_URL_ECR".to_string(),
        tb.get("BERTH_TB_ECR_ENDPOINT").to_string(),
    );
    for args in [
        &["inject"][..],
        &["inject", "--json"],
        &["inject", "--dry-run"],
        &["inject", "--dry-run", "--json"],
        &["inject", "--prune"],
    ] {
        let out = run(berth(root)
            .args(["--log-level", "trace"])
            .args(args)
            .envs(secrets.iter().cloned())
            .env(&endpoint.0, &endpoint.1)
            .env("BERTH_LOG_LEVEL", "trace"));
        assert!(out.stdout.len() + out.stderr.len() > 0);
        assert_clean(&format!("{args:?} output"), &text(&out), &n);
    }
    // A malformed config, a missing secrets file: errors print no secret either.
    std::fs::write(root.join("home/.docker/config.json"), "{\"auths\": oops").unwrap();
    let out = run(berth(root)
        .args(["--log-level", "trace", "inject"])
        .envs(secrets.iter().cloned()));
    assert!(!out.status.success());
    assert_clean("error output", &text(&out), &n);
    // Beside config.json (the destination), nothing berth wrote holds a secret.
    for entry in walk(root) {
        if entry.ends_with("config.json") || entry.starts_with(root.join("bin")) {
            continue;
        }
        assert_clean(
            &entry.display().to_string(),
            &String::from_utf8_lossy(&std::fs::read(&entry).unwrap()),
            &n,
        );
    }
}

#[test]
fn the_daemon_and_hooks_log_and_record_no_secret_and_pass_none_in_arguments() {
    let tb = testbed();
    let secrets = all_secrets();
    let n = needles(&secrets);
    let c = Container::new(&[("BERTH_LOG_LEVEL", "trace")]);
    c.entrypoint();
    let daemon = c.daemon_pid().unwrap();
    // The daemon's own environment holds no secret: they reach it through the socket only.
    assert_clean(
        "the daemon's environment",
        &String::from_utf8_lossy(&std::fs::read(format!("/proc/{daemon}/environ")).unwrap()),
        &n,
    );
    let endpoint = ("AWS_ENDPOINT_URL_ECR", tb.get("BERTH_TB_ECR_ENDPOINT"));
    let mut outputs = String::new();
    for phase in [
        "onCreate",
        "updateContent",
        "postCreate",
        "postStart",
        "postAttach",
    ] {
        let out = c.hook_as(
            phase,
            &secrets,
            REMOTE_UID,
            &[endpoint, ("BERTH_LOG_LEVEL", "trace")],
        );
        outputs.push_str(&text(&out));
        // While the daemon works, no berth process has a secret in its arguments.
        let cmdlines = all_cmdlines();
        assert!(
            cmdlines.contains("daemon"),
            "the daemon is among them: {cmdlines}"
        );
        assert_clean("process arguments", &cmdlines, &n);
    }
    // The hook without a daemon (it does the work itself), and status and logs.
    c.stop_daemon(nix::sys::signal::Signal::SIGKILL);
    let alone = c.hook_as(
        "postStart",
        &secrets,
        REMOTE_UID,
        &[endpoint, ("BERTH_LOG_LEVEL", "trace")],
    );
    assert!(
        String::from_utf8_lossy(&alone.stdout).contains("doing this phase's work here"),
        "{}",
        text(&alone)
    );
    outputs.push_str(&text(&alone));
    outputs.push_str(&text(&run(c.berth().args(["status"]))));
    outputs.push_str(&text(&run(c.berth().args(["status", "--json"]))));
    outputs.push_str(&text(&run(c.berth().args(["logs"]))));
    assert!(
        outputs.contains("REG1 (") && outputs.contains("written to"),
        "the paths ran: {outputs}"
    );
    assert!(
        outputs.contains("registry ECR_BAD: AWS rejected the access keys"),
        "{outputs}"
    );
    assert_clean("hook, status and logs output", &outputs, &n);
    let log = std::fs::read_to_string(c.state().join("berth.log")).unwrap();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "verbose logging was on"
    );
    for entry in walk(&c.state()) {
        assert_clean(
            &entry.display().to_string(),
            &String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default()),
            &n,
        );
    }
}

/// Every file under a folder.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}

/// Every process's command line, as one text.
/// The arguments of every process running berth's binary (the daemon, hooks, couriers, the
/// credential helper): other tests running beside this one may pass their own test
/// passwords to their own tools' arguments, which says nothing of berth.
fn all_cmdlines() -> String {
    let berth = std::fs::canonicalize(berth_bin()).unwrap();
    let mut out = String::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if std::fs::read_link(e.path().join("exe")).ok().as_ref() != Some(&berth) {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            out.push_str(&String::from_utf8_lossy(&c).replace('\0', " "));
            out.push('\n');
        }
    }
    out
}
