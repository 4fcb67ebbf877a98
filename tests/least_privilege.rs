//! Issue 10: least privilege. Each test is an attack a non-root remote user (`nobody`
//! here) can make with nothing but a shell in the container, against the real binaries: the
//! daemon started as root by the entrypoint, hooks run as the remote user, `berth inject`
//! run by root. Every target an attack aims at must keep its owner, mode and bytes.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use support::lifecycle::*;
use support::*;

/// What a folder holds, entry by entry: name, kind, owner, group, mode, and the bytes of
/// a file or the target of a link.
fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for p in entries {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("link to {}", std::fs::read_link(&p).unwrap().display())
        } else if m.is_file() {
            format!("{:?}", std::fs::read(&p).unwrap())
        } else {
            "folder".into()
        };
        out.push(format!(
            "{} {}:{} {:o} {what}",
            p.display(),
            m.uid(),
            m.gid(),
            m.mode() & 0o7777
        ));
    }
    out
}

/// Files of root's that an attacker would like: one readable by all (as `/etc/passwd`),
/// one private (as `/etc/shadow`), one holding JSON (as root's own Docker config), in a
/// folder others may enter but not write.
struct Victims {
    dir: PathBuf,
    before: Vec<String>,
}

impl Victims {
    fn new(root: &Path) -> Victims {
        let dir = root.join("root-files");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, mode, body) in [
            ("passwd", 0o644, "root:x:0:0:root:/root:/bin/bash\n"),
            ("shadow", 0o600, "root:$6$secret-hash:19000:0:99999:7:::\n"),
            (
                "config.json",
                0o644,
                "{\"auths\": {\"root-only.example\": {\"auth\": \"cm9vdDpwdw==\"}}}\n",
            ),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let before = snapshot(&dir);
        Victims { dir, before }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn assert_untouched(&self, after: &str) {
        assert_eq!(
            snapshot(&self.dir),
            self.before,
            "root's files changed after {after}"
        );
    }
}

/// Plants links named `names` in `dir`, as the remote user would, each to a victim.
fn plant_links(dir: &Path, links: &[(&str, PathBuf)]) {
    for (name, target) in links {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &link,
            Some(REMOTE_UID.into()),
            Some(REMOTE_UID.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
}

/// Links in the remote user's Docker folder, each named as a file berth writes there.
fn plant_docker_links(c: &Container, v: &Victims) {
    plant_links(
        &c.docker_config(),
        &[
            (".berth.lock", v.file("shadow")),
            ("berth-managed.json", v.file("passwd")),
            ("config.json", v.file("config.json")),
        ],
    );
}

fn lifecycle(c: &Container, extra: &[(&str, &str)]) -> String {
    let mut said = String::new();
    for phase in [
        "onCreate",
        "updateContent",
        "postCreate",
        "postStart",
        "postAttach",
    ] {
        let out = c.hook_as(phase, &both_registries(), REMOTE_UID, extra);
        assert!(out.status.success(), "{phase}: {}", text(&out));
        said.push_str(&text(&out));
    }
    said
}

#[test]
fn links_planted_in_the_docker_folder_leave_their_targets_untouched() {
    let c = Container::new(&[]);
    let v = Victims::new(c.root());
    plant_docker_links(&c, &v);
    c.entrypoint();
    let said = lifecycle(&c, &[]);
    v.assert_untouched("a lifecycle through the daemon");
    assert!(
        said.contains(
            ".berth.lock: it is a symbolic link, and berth takes its lock through no link"
        ),
        "the hook says why nothing was written: {said}"
    );
    // The whole folder replaced by a link to one of root's.
    std::fs::remove_dir_all(c.docker_config()).unwrap();
    std::os::unix::fs::symlink(&v.dir, c.docker_config()).unwrap();
    lifecycle(&c, &[]);
    v.assert_untouched("a lifecycle with ~/.docker linked to root's folder");
}

#[test]
fn links_planted_in_the_state_folder_leave_their_targets_untouched() {
    // As berth 0.1 left it: a state folder owned by the remote user, who filled it with
    // links to root's files (and root once made a hard link there).
    let c = Container::new(&[]);
    let v = Victims::new(c.root());
    std::fs::create_dir(c.state()).unwrap();
    nix::unistd::chown(&c.state(), Some(REMOTE_UID.into()), Some(REMOTE_UID.into())).unwrap();
    std::fs::set_permissions(c.state(), std::fs::Permissions::from_mode(0o700)).unwrap();
    plant_links(
        &c.state(),
        &[
            ("daemon.lock", v.file("shadow")),
            ("berth.log", v.file("passwd")),
        ],
    );
    std::fs::hard_link(v.file("config.json"), c.state().join("events.jsonl")).unwrap();
    let before_link = snapshot(&v.dir);
    c.entrypoint();
    lifecycle(&c, &[]);
    assert!(c.has_login(testbed().get("BERTH_TB_REG1")));
    // The hard link shares the victim's inode: its link count dropped back, nothing else.
    let after: Vec<String> = snapshot(&v.dir);
    assert_eq!(after, before_link, "root's files changed");
    let state = std::fs::metadata(c.state()).unwrap();
    assert_eq!(
        (state.uid(), state.mode() & 0o777),
        (0, 0o755),
        "the daemon took its folder over: only root may write it"
    );
    for name in ["daemon.lock", "berth.log", "events.jsonl", "berth.sock"] {
        let m = std::fs::symlink_metadata(c.state().join(name)).unwrap();
        assert!(!m.file_type().is_symlink(), "{name}");
        assert_eq!((m.uid(), m.nlink()), (0, 1), "{name}");
    }
    assert_eq!(
        std::fs::read_to_string(v.file("config.json")).unwrap(),
        "{\"auths\": {\"root-only.example\": {\"auth\": \"cm9vdDpwdw==\"}}}\n"
    );
}

#[test]
fn a_hooks_docker_config_naming_a_folder_the_remote_user_cannot_write_changes_nothing_there() {
    let c = Container::new(&[]);
    let v = Victims::new(c.root());
    let empty = c.root().join("root-empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o755)).unwrap();
    c.entrypoint();
    for dir in [&v.dir, &empty] {
        let before = snapshot(dir);
        let out = c.hook_as(
            "postCreate",
            &both_registries(),
            REMOTE_UID,
            &[("DOCKER_CONFIG", dir.to_str().unwrap())],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Permission denied"),
            "{}",
            text(&out)
        );
        assert_eq!(snapshot(dir), before, "{} changed", dir.display());
    }
    // A root hook's DOCKER_CONFIG is not the remote user's: it is set aside.
    let out = c.hook_as(
        "postStart",
        &both_registries(),
        0,
        &[("DOCKER_CONFIG", v.dir.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out));
    v.assert_untouched("a root hook naming root's folder");
}

#[test]
fn a_daemon_started_by_a_hook_holds_no_secret_in_its_environment() {
    let c = Container::new(&[]);
    let secrets = both_registries();
    let needles: Vec<&str> = secrets
        .iter()
        .filter(|(k, _)| k.ends_with("PASSWORD"))
        .map(|(_, v)| v.as_str())
        .collect();
    // Hooks ran before any entrypoint: a hook of the daemon's user (root) starts it.
    let out = c.hook_as(
        "postCreate",
        &secrets,
        0,
        &[("AWS_SECRET_ACCESS_KEY", "aws-secret-in-env")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let pid = c.daemon_pid().expect("the hook started a daemon");
    let environ = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
        .into_owned();
    for n in needles.iter().chain(&["aws-secret-in-env"]) {
        assert!(!environ.contains(n), "a secret in the daemon's environment");
    }
    assert!(
        !environ.contains("_CONTAINER_REGISTRY_"),
        "no registry secret's name either: {environ}"
    );
    // The secrets reached it over the socket.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("registry secrets found: REG1"),
        "{}",
        text(&out)
    );
    let handled = c
        .events()
        .into_iter()
        .find(|e| e["event"] == "phase" && e["phase"] == "postCreate")
        .unwrap();
    assert_eq!(handled["handler"], "daemon");
    // And it is the same daemon the entrypoint would have started.
    let out = c.entrypoint();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("already running (pid {pid})")),
        "{}",
        text(&out)
    );
}

#[test]
fn berth_inject_for_a_user_run_by_root_is_as_safe_as_the_daemon() {
    let c = Container::new(&[]);
    let v = Victims::new(c.root());
    plant_docker_links(&c, &v);
    let inject = |dir: &Path| {
        run(c
            .berth()
            .env("HOME", "/root")
            .envs(both_registries())
            .args(["inject", "--user", "nobody", "--docker-config"])
            .arg(dir))
    };
    let out = inject(&c.docker_config());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(".berth.lock: it is a symbolic link"),
        "{}",
        text(&out)
    );
    v.assert_untouched("berth inject --user nobody into links");
    let out = inject(&v.dir);
    assert!(!out.status.success(), "{}", text(&out));
    v.assert_untouched("berth inject --user nobody --docker-config <root's folder>");
    // In a folder of its own the same command works, and the files are nobody's.
    std::fs::remove_dir_all(c.docker_config()).unwrap();
    std::fs::create_dir(c.docker_config()).unwrap();
    nix::unistd::chown(
        &c.docker_config(),
        Some(REMOTE_UID.into()),
        Some(REMOTE_UID.into()),
    )
    .unwrap();
    let out = inject(&c.docker_config());
    assert!(out.status.success(), "{}", text(&out));
    for name in ["config.json", "berth-managed.json", ".berth.lock"] {
        let m = std::fs::metadata(c.docker_config().join(name)).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (REMOTE_UID, 0o600), "{name}");
    }
}

#[test]
fn a_hook_that_runs_before_the_entrypoint_hands_its_phase_to_the_entrypoints_daemon() {
    let c = Container::new(&[]);
    // The hook returns at once: it neither waits for the daemon nor starts one.
    let out = c.hook("onCreate", &both_registries());
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("berth's daemon is not running yet")
            && said.contains("this phase is handed to it")
            && said.contains("credentials deferred to postCreate"),
        "{said}"
    );
    assert!(c.daemon_pid().is_none(), "the remote user started a daemon");
    // The entrypoint comes now, as when an earlier feature's entrypoint held the chain:
    // the daemon it starts (as root) gets the phase from the hook's courier.
    c.entrypoint();
    let events = wait_for_events(&c, |e| {
        e.iter()
            .any(|e| e["event"] == "phase" && e["phase"] == "onCreate")
    });
    let on_create = events
        .iter()
        .find(|e| e["event"] == "phase" && e["phase"] == "onCreate")
        .unwrap();
    assert_eq!(on_create["handler"], "daemon");
    assert_eq!(on_create["uid"], REMOTE_UID);
    assert!(on_create["ran_at"].is_u64(), "{on_create}");
    let pid = c.daemon_pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
        "the daemon is the entrypoint's, as root: {status}"
    );
}

#[test]
fn an_engine_socket_the_remote_user_cannot_open_is_named_with_the_fix() {
    let c = Container::new(&[("BERTH_WAIT_FOR_DOCKER", "true")]);
    let host = testbed().get("BERTH_TB_DOCKER_HOST");
    // The test bed's engine socket is root's and group docker's: root may, nobody may not.
    c.entrypoint_with(&[("DOCKER_HOST", host)]);
    let out = c.hook("postCreate", &both_registries());
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("Docker engine answers") || said.contains("Docker engine answered"),
        "{said}"
    );
    assert!(
        said.contains("user nobody cannot open the Docker engine's socket")
            && said.contains("not in group docker")
            && said.contains("usermod -aG docker nobody")
            && said.contains("docker-outside-of-docker"),
        "{said}"
    );
    let status = c.status();
    assert!(
        status["engine"]["user_access"]
            .as_str()
            .is_some_and(|s| s.contains("user nobody cannot open")),
        "{status:#}"
    );
}

#[test]
fn a_container_whose_own_user_is_the_remote_user_runs_the_daemon_as_that_user() {
    // As in images whose USER is the remote user (Codespaces' universal image): the
    // entrypoint, and so the daemon, run as that user, in a state folder of theirs.
    let c = Container::new(&[]);
    std::fs::create_dir(c.state()).unwrap();
    nix::unistd::chown(&c.state(), Some(REMOTE_UID.into()), Some(REMOTE_UID.into())).unwrap();
    c.entrypoint_as(REMOTE_UID);
    let pid = c.daemon_pid().expect("a daemon runs");
    // Its real user (the daemon is not dumpable, so its /proc files belong to root).
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some(REMOTE_UID.to_string().as_str()),
        "{uid_line}"
    );
    let said = lifecycle(&c, &[]);
    assert!(c.has_login(testbed().get("BERTH_TB_REG1")), "{said}");
    assert!(!said.contains("doing this phase's work here"), "{said}");
    let events = c.events();
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "phase")
            .all(|e| e["handler"] == "daemon"),
        "{events:#?}"
    );
    for name in ["events.jsonl", "berth.sock", "daemon.lock"] {
        let m = std::fs::metadata(c.state().join(name)).unwrap();
        assert_eq!(m.uid(), REMOTE_UID, "{name}");
    }
}
