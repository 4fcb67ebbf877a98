//! Issue 22: nothing the remote user does can freeze, crash or fool the daemon. Each test
//! is an attack a non-root remote user (`nobody`) makes with a shell in the container,
//! against the real binaries: the daemon started as root by the entrypoint, hooks run as
//! the remote user. During and after each attack the daemon answers a status request
//! within a second, and what it refused is said plainly.

mod support;

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth::daemon::MAX_PER_USER;
use berth::protocol::{Answer, Request};
use support::lifecycle::*;
use support::*;

/// The daemon answers a status request within one second (a bound, not a measure: a
/// frozen daemon never answers).
fn answers_within_a_second(c: &Container) {
    let answer = berth::protocol::call(
        &c.state().join("berth.sock"),
        &Request::Status,
        Duration::from_secs(1),
        &mut |_, _| {},
    );
    assert!(
        matches!(answer, Ok(Answer::Status(_))),
        "the daemon did not answer within a second: {answer:?}"
    );
}

/// A shell command run as the remote user; panics if it fails.
fn as_remote_user(script: &str) {
    let out = run(Command::new("sh")
        .args(["-c", script])
        .uid(REMOTE_UID)
        .gid(REMOTE_UID));
    assert!(out.status.success(), "{script}: {}", text(&out));
}

/// The remote user holds a lock on `path` (with flock(1)) until the returned child's
/// stdin is closed; returns once the lock is held.
fn hold_lock(path: &Path) -> Child {
    let mut child = Command::new("flock")
        .arg(path)
        .args(["-c", "echo locked; exec cat"])
        .uid(REMOTE_UID)
        .gid(REMOTE_UID)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

fn release(mut holder: Child) {
    drop(holder.stdin.take());
    holder.wait().unwrap();
}

fn through_post_create(c: &Container) {
    c.entrypoint();
    for phase in ["onCreate", "updateContent", "postCreate"] {
        let out = c.hook(phase, &both_registries());
        assert!(out.status.success(), "{phase}: {}", text(&out));
    }
    assert!(c.has_login(testbed().get("BERTH_TB_REG1")));
}

/// A hook as the remote user, which must finish (the daemon answers it) and succeed.
fn hook_said(c: &Container, phase: &str) -> String {
    let out = c.hook(phase, &both_registries());
    assert!(out.status.success(), "{phase}: {}", text(&out));
    text(&out)
}

#[test]
fn a_fifo_or_a_device_in_the_docker_folder_never_freezes_the_daemon() {
    let c = Container::new(&[]);
    through_post_create(&c);
    let dir = c.docker_config();
    // berth's record becomes a FIFO: a status request reads it.
    as_remote_user(&format!(
        "cd {} && mkfifo f && mv -T f berth-managed.json",
        dir.display()
    ));
    answers_within_a_second(&c);
    // The config becomes a FIFO, then a link to /dev/zero: each hook says so and returns.
    as_remote_user(&format!(
        "cd {} && mkfifo f && mv -T f config.json",
        dir.display()
    ));
    let said = hook_said(&c, "postStart");
    assert!(
        said.contains("config.json is a FIFO, not a regular file; berth does not read it"),
        "{said}"
    );
    answers_within_a_second(&c);
    as_remote_user(&format!(
        "cd {} && rm config.json && ln -s /dev/zero config.json",
        dir.display()
    ));
    let said = hook_said(&c, "postAttach");
    assert!(
        said.contains("/dev/zero is a device, not a regular file; berth does not read it"),
        "{said}"
    );
    answers_within_a_second(&c);
    // And it still stops when asked.
    let pid = c.daemon_pid().expect("the daemon runs");
    c.stop_daemon(nix::sys::signal::Signal::SIGTERM);
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.contains(") Z "),
        "the daemon ignored SIGTERM: {state}"
    );
}

#[test]
fn a_lock_the_user_holds_delays_a_write_and_the_daemon_writes_when_it_is_free() {
    let c = Container::new(&[]);
    through_post_create(&c);
    let reg1 = testbed().get("BERTH_TB_REG1").to_string();
    let holder = hold_lock(&c.docker_config().join(".berth.lock"));
    // Another program drops berth's entries while the user holds berth's lock.
    std::fs::write(c.docker_config().join("config.json.new"), "{}").unwrap();
    as_remote_user(&format!(
        "cd {} && cp config.json.new x && mv -T x config.json",
        c.docker_config().display()
    ));
    answers_within_a_second(&c);
    // A hook cannot write either: it says so, and returns within its bound.
    let said = hook_said(&c, "postStart");
    assert!(
        said.contains("another process holds the lock of")
            && said.contains("berth writes the credentials of REG1, REG2 as soon as it is free"),
        "{said}"
    );
    answers_within_a_second(&c);
    assert!(!c.has_login(&reg1));
    // The log says the keeper tries again.
    wait_for_folder(&c.state(), |state| {
        std::fs::read_to_string(state.join("berth.log"))
            .ok()
            .filter(|log| {
                log.contains("the config's lock is held by another process; trying again")
            })
    });
    release(holder);
    wait_for_folder(&c.docker_config(), |_| c.has_login(&reg1).then_some(()));
    answers_within_a_second(&c);
}

#[test]
fn a_flood_of_connections_is_refused_plainly_and_the_daemon_still_answers() {
    let c = Container::new(&[]);
    c.entrypoint();
    let nobody = berth::account::Account::by_name("nobody").unwrap();
    let socket = c.state().join("berth.sock");
    // The remote user opens connections and sends nothing: the daemon accepts them in
    // order, serves the first MAX_PER_USER (waiting for their requests) and tells the
    // rest why it closes them.
    let mut streams: Vec<std::os::unix::net::UnixStream> = (0..MAX_PER_USER + 4)
        .map(|_| {
            let s = socket.clone();
            berth::privilege::as_user(&nobody, move || {
                std::os::unix::net::UnixStream::connect(&s).unwrap()
            })
            .unwrap()
        })
        .collect();
    let over = streams.split_off(MAX_PER_USER);
    for mut stream in over {
        // A bound on the read, so that a daemon that never answers fails the test.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut said = String::new();
        stream.read_to_string(&mut said).unwrap();
        assert!(
            said.contains("\"refused\"")
                && said.contains("already has 16 connections open to berth's daemon"),
            "{said}"
        );
    }
    let mut held = streams;
    // Others are still served: root, and the user's own status once they close some.
    answers_within_a_second(&c);
    drop(held.pop());
    let status = c.status();
    assert!(status["daemon"]["pid"].is_number(), "{status}");
    // A wait for ever is bounded, not a crash.
    let mut wait = held.pop().unwrap();
    wait.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    wait.write_all(b"{\"type\":\"wait\",\"seconds\":18446744073709551615}\n")
        .unwrap();
    let mut answer = String::new();
    wait.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("\"done\""), "{answer}");
    answers_within_a_second(&c);
}

/// Whether the config in `dir` holds a login for `server`.
fn has_login_in(dir: &Path, server: &str) -> bool {
    std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|c| c["auths"][server]["auth"].is_string())
}

#[test]
fn removing_the_docker_folder_is_not_fought_and_a_replaced_one_is_followed() {
    let c = Container::new(&[]);
    // The remote user's own home, which they may change as they like.
    let home = c.root().join("home-nobody");
    std::fs::create_dir(&home).unwrap();
    nix::unistd::chown(&home, Some(REMOTE_UID.into()), Some(REMOTE_UID.into())).unwrap();
    let dir = home.join(".docker");
    let dir_var = dir.display().to_string();
    let hook = |phase: &str| {
        let out = c.hook_as(
            phase,
            &both_registries(),
            REMOTE_UID,
            &[("DOCKER_CONFIG", &dir_var)],
        );
        assert!(out.status.success(), "{phase}: {}", text(&out));
    };
    c.entrypoint();
    for phase in ["onCreate", "updateContent", "postCreate"] {
        hook(phase);
    }
    let reg1 = testbed().get("BERTH_TB_REG1").to_string();
    assert!(has_login_in(&dir, &reg1));
    // Codespaces' own move, as the remote user: the folder goes (at the first try), and a
    // link to another folder takes its place.
    // (What is left, if rm fails: berth made something in the folder as it went.)
    as_remote_user(&format!(
        "rm -rf {0} || {{ ls -la {0}; exit 1; }}",
        dir.display()
    ));
    // The keeper says so, whether it was watching the folder or looked for it after.
    let log = wait_for_folder(&c.state(), |state| {
        std::fs::read_to_string(state.join("berth.log"))
            .ok()
            .filter(|log| {
                log.contains("the Docker config folder was removed or replaced")
                    || log.contains("no Docker config folder to keep entries in")
            })
    });
    assert!(!log.contains("cannot watch"), "{log}");
    assert!(!dir.exists(), "berth made the removed folder again");
    let share = home.join("persisted-share");
    as_remote_user(&format!(
        "mkdir {} && ln -sfn {} {}",
        share.display(),
        share.display(),
        dir.display()
    ));
    answers_within_a_second(&c);
    // The next hook writes where the folder is now, and the keeper watches it there.
    hook("postStart");
    assert!(has_login_in(&share, &reg1));
    as_remote_user(&format!(
        "cd {} && echo {{}} > x && mv -T x config.json",
        share.display()
    ));
    wait_for_folder(&share, |_| has_login_in(&share, &reg1).then_some(()));
    let log = std::fs::read_to_string(c.state().join("berth.log")).unwrap();
    assert!(
        log.contains("the Docker config folder is elsewhere now"),
        "{log}"
    );
}

#[test]
fn the_daemons_lock_is_its_own_and_its_memory_is_not_readable() {
    let c = Container::new(&[]);
    std::fs::create_dir(c.state()).unwrap();
    nix::unistd::chown(&c.state(), Some(REMOTE_UID.into()), Some(REMOTE_UID.into())).unwrap();
    c.entrypoint_as(REMOTE_UID);
    let lock = c.state().join("daemon.lock");
    // A daemon run as the remote user: its lock is private to it, and even its own user's
    // other processes cannot read its memory or environment (it is not dumpable).
    let meta = std::fs::metadata(&lock).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    let pid = c.daemon_pid().expect("the daemon runs");
    let environ = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap();
    assert_eq!(
        environ.uid(),
        0,
        "a dumpable process's /proc files belong to its user"
    );
    let read = Command::new("cat")
        .arg(format!("/proc/{pid}/environ"))
        .uid(REMOTE_UID)
        .gid(REMOTE_UID)
        .output()
        .unwrap();
    assert!(!read.status.success(), "{}", text(&read));
}

#[test]
fn a_root_daemons_lock_cannot_be_held_by_the_remote_user() {
    let c = Container::new(&[]);
    c.entrypoint();
    let lock = c.state().join("daemon.lock");
    assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
    let out = run(Command::new("flock")
        .args(["-n"])
        .arg(&lock)
        .arg("true")
        .uid(REMOTE_UID)
        .gid(REMOTE_UID));
    assert!(!out.status.success(), "{}", text(&out));
    // So a root entrypoint after a crash finds no false "already running".
    c.stop_daemon(nix::sys::signal::Signal::SIGKILL);
    let out = c.entrypoint();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("daemon started"),
        "{}",
        text(&out)
    );
}

#[test]
fn escape_sequences_a_user_sends_reach_the_terminal_as_text() {
    let c = Container::new(&[]);
    c.entrypoint();
    let out = c.hook_as(
        "postStart",
        &both_registries(),
        REMOTE_UID,
        &[("DOCKER_HOST", "ssh://\u{1b}]0;owned\u{7}\u{1b}[2J")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let logs = run(c.berth().args(["logs"]));
    let shown = String::from_utf8_lossy(&logs.stdout);
    assert!(shown.contains("\\u{1b}]0;owned\\u{7}"), "{shown}");
    assert!(!logs.stdout.contains(&0x1b), "{shown}");
    assert!(!out.stdout.contains(&0x1b), "{}", text(&out));
}

#[test]
fn a_hooks_images_go_only_into_an_engine_its_caller_can_open() {
    let engine = support::engine::TestEngine::start();
    let c = Container::new(&[]);
    c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
    let tiny = testbed().get("BERTH_TB_REG1_TINY").to_string();
    let out = c.hook_as(
        "postCreate",
        &both_registries(),
        REMOTE_UID,
        &[("BERTH_IMAGES", &tiny)],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("not pulling the images this hook named ({tiny})"))
            && said.contains("user nobody cannot open the Docker engine's socket"),
        "{said}"
    );
    let status = c.status();
    assert!(
        status["pulls"].as_array().is_none_or(|p| p.is_empty()),
        "{status:#}"
    );
    assert!(engine.repo_digests(&tiny).is_none(), "the image was pulled");
}
