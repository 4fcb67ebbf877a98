//! Issue 5: the daemon and the hooks through whole lifecycles: credentials appear exactly
//! when injectAt says, prebuilds defer with an explanation, a killed or restarted daemon
//! picks up where it was, and nobody but root and the remote user may talk to it.

mod support;

use nix::sys::signal::Signal;
use support::lifecycle::*;
use support::*;

fn reg1() -> String {
    testbed().get("BERTH_TB_REG1").to_string()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real uid of a process.
fn process_uid(pid: i32) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}")).unwrap().uid()
}

#[test]
fn credentials_appear_when_the_post_create_hook_returns_and_not_before() {
    let c = Container::new(&[]);
    let secrets = both_registries();
    c.entrypoint();
    for phase in ["onCreate", "updateContent"] {
        let out = c.hook(phase, &secrets);
        assert!(out.status.success(), "{phase}: {}", text(&out));
        assert!(!c.has_login(&reg1()), "{phase}: no credentials yet");
        assert!(
            stdout(&out).contains("credentials deferred to postCreate"),
            "{phase}: {}",
            text(&out)
        );
    }
    let out = c.hook("postCreate", &secrets);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        c.has_login(&reg1()) && c.has_login(testbed().get("BERTH_TB_REG2")),
        "written when postCreate returns"
    );
    assert!(
        stdout(&out).contains("credentials for REG1"),
        "{}",
        text(&out)
    );
    // The remote user's docker CLI can pull with what was written.
    let pull = run(docker(c.root(), &c.docker_config()).args([
        "pull",
        "-q",
        testbed().get("BERTH_TB_REG1_TINY"),
    ]));
    assert!(pull.status.success(), "{}", text(&pull));
    // The file belongs to the remote user, though the daemon runs as root.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(c.docker_config().join("config.json"))
            .unwrap()
            .uid(),
        REMOTE_UID
    );
    for phase in ["postStart", "postAttach"] {
        let out = c.hook(phase, &secrets);
        assert!(out.status.success(), "{phase}: {}", text(&out));
        assert!(c.has_login(&reg1()));
    }
    let status = c.status();
    let phases: Vec<&str> = status["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["phase"].as_str())
        .collect();
    for p in [
        "onCreate",
        "updateContent",
        "postCreate",
        "postStart",
        "postAttach",
    ] {
        assert!(phases.contains(&p), "{p} in the timeline: {status:#}");
    }
    assert_eq!(
        status["daemon"]["pid"].as_i64(),
        c.daemon_pid().map(i64::from)
    );
    // Every phase was handled by the daemon, as the remote user.
    let handled: Vec<_> = c
        .events()
        .into_iter()
        .filter(|e| e["event"] == "phase")
        .collect();
    assert_eq!(handled.len(), 5);
    assert!(
        handled
            .iter()
            .all(|e| e["handler"] == "daemon" && e["uid"] == REMOTE_UID)
    );
}

#[test]
fn inject_at_on_create_writes_at_the_on_create_hook() {
    let c = Container::new(&[("BERTH_INJECT_AT", "onCreate")]);
    c.entrypoint();
    let out = c.hook("onCreate", &both_registries());
    assert!(out.status.success(), "{}", text(&out));
    assert!(c.has_login(&reg1()), "{}", text(&out));
}

#[test]
fn a_prebuild_defers_with_an_explanation_and_the_rest_completes_later() {
    let c = Container::new(&[]);
    // The prebuild: no user secrets, no Docker engine; only onCreate and updateContent.
    c.entrypoint();
    for phase in ["onCreate", "updateContent"] {
        let out = c.hook_as(
            phase,
            &[],
            REMOTE_UID,
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        );
        assert!(out.status.success(), "{phase}: {}", text(&out));
        let said = stdout(&out);
        assert!(
            said.contains("no registry secrets here (<ID>_CONTAINER_REGISTRY_SERVER"),
            "{said}"
        );
        assert!(
            said.contains("credentials deferred to postCreate"),
            "{said}"
        );
        // The engine's state as it is, and no guess that this is a prebuild.
        assert!(
            said.contains(
                "the Docker engine at unix:///nonexistent/docker.sock is not answering yet; berth pre-pulls as soon as it answers"
            ),
            "{said}"
        );
        assert!(!said.contains("in a prebuild"), "{said}");
    }
    assert!(c.config().is_none());
    // The snapshot: the container stops (the daemon with it), and later a codespace starts
    // from it with the user's secrets.
    c.stop_daemon(Signal::SIGTERM);
    c.entrypoint();
    let out = c.hook("postCreate", &both_registries());
    assert!(out.status.success(), "{}", text(&out));
    assert!(c.has_login(&reg1()));
    let status = c.status();
    let whats: Vec<String> = status["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["what"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        whats
            .iter()
            .filter(|w| w.starts_with("daemon started"))
            .count(),
        2,
        "{whats:#?}"
    );
    assert!(whats.iter().any(|w| w.starts_with("daemon stopped")));
}

#[test]
fn a_daemon_killed_between_phases_is_restarted_by_its_own_user_only() {
    let c = Container::new(&[]);
    let secrets = both_registries();
    c.entrypoint();
    c.hook("onCreate", &secrets);
    c.stop_daemon(Signal::SIGKILL);
    assert!(c.daemon_pid().is_none());
    // The remote user cannot start a daemon of the daemon's user (root), and does not wait
    // for one that already ran in this container: it does the work itself, at once.
    let started = std::time::Instant::now();
    let out = c.hook("updateContent", &secrets);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("berth's daemon (pid") && stdout(&out).contains("stopped"),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains("doing this phase's work here"),
        "{}",
        text(&out)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "no wait for a daemon that stopped"
    );
    assert!(c.daemon_pid().is_none(), "no daemon of the remote user's");
    // A hook of the daemon's own user (root here) starts it again, and is handled by it.
    let out = c.hook_as("postCreate", &secrets, 0, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let pid = c.daemon_pid().expect("the root hook started a daemon");
    // The remote user's next hook reaches it.
    let out = c.hook("postStart", &secrets);
    assert!(out.status.success(), "{}", text(&out));
    assert!(c.has_login(&reg1()), "{}", text(&out));
    assert_eq!(process_uid(pid), 0, "the daemon runs as root again");
    let events = c.events();
    let post_create = events
        .iter()
        .find(|e| e["event"] == "phase" && e["phase"] == "postCreate")
        .unwrap();
    assert_eq!(post_create["handler"], "daemon");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "daemon-started")
            .count(),
        2
    );
    // The restarted daemon read the record: its status has the whole timeline.
    let status = c.status();
    assert!(status["timeline"].to_string().contains("onCreate hook ran"));
}

#[test]
fn a_container_restart_runs_post_start_only_and_rewrites_nothing() {
    use std::os::unix::fs::MetadataExt;
    let c = Container::new(&[]);
    let secrets = both_registries();
    c.entrypoint();
    for phase in ["onCreate", "updateContent", "postCreate", "postStart"] {
        c.hook(phase, &secrets);
    }
    let file = c.docker_config().join("config.json");
    let before = std::fs::metadata(&file).unwrap();
    c.stop_daemon(Signal::SIGTERM);
    c.entrypoint();
    let out = c.hook("postStart", &secrets);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("already in"), "{}", text(&out));
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec()),
        "not rewritten"
    );
    let injected: Vec<_> = c
        .events()
        .into_iter()
        .filter(|e| e["event"] == "injected" && e["id"] == "REG1")
        .collect();
    assert_eq!(injected.last().unwrap()["change"], "unchanged");
}

#[test]
fn without_any_daemon_the_hook_does_the_work_itself() {
    // No entrypoint has started a daemon yet: the remote user's hook does not wait for
    // one; it writes the credentials itself, at once, and hands the phase over.
    let c = Container::new(&[]);
    let out = c.hook("postCreate", &both_registries());
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("berth's daemon is not running yet")
            && stdout(&out).contains("this phase is handed to it"),
        "{}",
        text(&out)
    );
    assert!(!stdout(&out).contains("waiting up to"), "{}", text(&out));
    assert!(c.has_login(&reg1()), "{}", text(&out));
    assert!(
        c.daemon_pid().is_none(),
        "the remote user started no daemon"
    );
}

#[test]
fn hooks_never_hang_on_a_daemon_that_does_not_answer() {
    let c = Container::new(&[("BERTH_HOOK_TIMEOUT", "2")]);
    c.entrypoint();
    let pid = nix::unistd::Pid::from_raw(c.daemon_pid().unwrap());
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    let started = std::time::Instant::now();
    let out = c.hook("postCreate", &both_registries());
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("did not finish within 2 s; carrying on"),
        "{}",
        text(&out)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded"
    );
}

#[test]
fn fail_on_error_makes_a_failed_hook_fail_and_only_then() {
    for (fail_on_error, code) in [("false", 0), ("true", 1)] {
        let c = Container::new(&[("BERTH_FAIL_ON_ERROR", fail_on_error)]);
        std::fs::write(c.docker_config().join("config.json"), "{ not json").unwrap();
        c.entrypoint();
        let out = c.hook("postCreate", &both_registries());
        assert_eq!(
            out.status.code(),
            Some(code),
            "failOnError={fail_on_error}: {}",
            text(&out)
        );
        assert!(stdout(&out).contains("is not valid JSON"), "{}", text(&out));
        assert_eq!(
            std::fs::read_to_string(c.docker_config().join("config.json")).unwrap(),
            "{ not json"
        );
    }
}

#[test]
fn only_root_and_the_remote_user_may_talk_to_the_daemon() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let c = Container::new(&[]);
    c.entrypoint();
    let socket = c.state().join("berth.sock");
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(
        (meta.mode() & 0o777, meta.uid(), meta.gid()),
        (0o660, 0, REMOTE_UID),
        "root's, open to the remote user's group, not to the world"
    );
    let stranger = 4321;
    // The socket's mode keeps a stranger out: the hook cannot reach the daemon, cannot
    // start one or write for the remote user, and says so; the lifecycle goes on.
    let out = c.hook_as("postCreate", &both_registries(), stranger, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!c.has_login(&reg1()), "nothing written for a stranger");
    // Even through a state folder and socket opened to everyone, the daemon checks who is
    // calling.
    std::fs::set_permissions(c.state(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = c.hook_as("postCreate", &both_registries(), stranger, &[]);
    assert!(
        stdout(&out).contains("the daemon refused this hook: uid 4321 may not use berth's daemon"),
        "{}",
        text(&out)
    );
    assert!(!c.has_login(&reg1()));
    assert!(
        !c.events()
            .iter()
            .any(|e| e["event"] == "phase" && e["uid"] == stranger),
        "no phase recorded for a stranger"
    );
    // Root may.
    let out = c.hook_as(
        "postCreate",
        &both_registries(),
        0,
        &[("DOCKER_CONFIG", "/unused")],
    );
    assert!(
        out.status.success() && !stdout(&out).contains("refused"),
        "{}",
        text(&out)
    );
}

#[test]
fn one_daemon_per_container_and_a_clean_stop() {
    let c = Container::new(&[]);
    c.entrypoint();
    let first = c.daemon_pid().unwrap();
    let out = c.entrypoint();
    assert!(
        stdout(&out).contains(&format!("daemon already running (pid {first})")),
        "{}",
        text(&out)
    );
    assert_eq!(c.daemon_pid(), Some(first));
    c.stop_daemon(Signal::SIGTERM);
    assert!(
        !c.state().join("berth.sock").exists(),
        "the socket is removed"
    );
    let last = c.events().pop().unwrap();
    assert_eq!(last["event"], "daemon-stopped");
}

#[test]
fn a_phase_handed_over_after_a_later_one_defers_nothing() {
    // Issue 23. A courier and the postCreate hook reach a new daemon together, and the
    // phase the courier carries may come second: the daemon does its work then, but does
    // not record credentials as deferred to postCreate, which has written them.
    let c = Container::new(&[]);
    c.entrypoint();
    let out = c.hook("postCreate", &both_registries());
    assert!(out.status.success(), "{}", text(&out));
    let ran_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 1000;
    // The courier of an onCreate hook that ran a second earlier, arriving now.
    let mut courier = c
        .berth()
        .args(["courier", "--state-dir"])
        .arg(c.state())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let request =
        serde_json::json!({"phase": "onCreate", "secrets": [], "cwd": null, "ran_at": ran_at});
    std::io::Write::write_all(
        &mut courier.stdin.take().unwrap(),
        format!("{request}\n").as_bytes(),
    )
    .unwrap();
    assert!(courier.wait().unwrap().success(), "delivered");
    let events = c.events();
    let on_create = events
        .iter()
        .position(|e| e["event"] == "phase" && e["phase"] == "onCreate")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(events[on_create]["ran_at"], ran_at, "{events:#?}");
    assert!(
        !events.iter().any(|e| e["event"] == "deferred"),
        "{events:#?}"
    );
    let status = c.status();
    assert!(
        !status.to_string().contains("credentials deferred"),
        "{status:#}"
    );
}
