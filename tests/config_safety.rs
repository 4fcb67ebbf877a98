//! config.json under faults, with berth writing as the remote user (root acting for
//! `nobody` through a dropped thread, as the daemon does): a writer killed at any moment
//! leaves the old file or the new one, never a torn one; writers at once lose nothing.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::*;

const NOBODY: u32 = 65534;

/// A folder of nobody's, in a scratch folder nobody may enter.
fn nobody_folder(root: &Path) -> PathBuf {
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = root.join("nobody-docker");
    std::fs::create_dir(&dir).unwrap();
    nix::unistd::chown(&dir, Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
    dir
}

/// `berth inject --user nobody` into `dir`, as root, with one registry `id` at `server`.
fn inject_for_nobody(root: &Path, dir: &Path, id: &str, server: &str) -> Command {
    let mut cmd = berth(root);
    cmd.envs(registry_env(
        id,
        server,
        "user",
        &format!("password-of-{id}"),
    ))
    .args(["inject", "--user", "nobody", "--docker-config"])
    .arg(dir)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

fn config(dir: &Path) -> serde_json::Value {
    let text = std::fs::read(dir.join("config.json")).unwrap();
    serde_json::from_slice(&text).unwrap_or_else(|e| {
        panic!(
            "config.json is not JSON ({e}): {}",
            String::from_utf8_lossy(&text)
        )
    })
}

#[test]
fn fifty_writers_at_once_lose_no_entry() {
    let dir = scratch();
    let cfg = nobody_folder(dir.path());
    let mut children: Vec<_> = (0..50)
        .map(|i| {
            inject_for_nobody(
                dir.path(),
                &cfg,
                &format!("W{i}"),
                &format!("registry-{i}.example.com"),
            )
            .spawn()
            .unwrap()
        })
        .collect();
    for c in &mut children {
        assert!(c.wait().unwrap().success());
    }
    let auths = config(&cfg)["auths"].as_object().unwrap().clone();
    let managed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.join("berth-managed.json")).unwrap()).unwrap();
    for i in 0..50 {
        let key = format!("registry-{i}.example.com");
        assert!(auths.contains_key(&key), "{key} lost");
        assert!(
            managed["entries"].get(&key).is_some(),
            "{key} lost from the record"
        );
    }
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(cfg.join("config.json")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (NOBODY, 0o600));
}

#[test]
fn a_writer_killed_at_any_moment_leaves_a_whole_config() {
    let dir = scratch();
    let cfg = nobody_folder(dir.path());
    // A config with others' entries, as big as an IDE's.
    let mut auths = serde_json::Map::new();
    for i in 0..200 {
        auths.insert(
            format!("other-{i}.example.com"),
            serde_json::json!({"auth": "dXNlcjpwYXNzd29yZA=="}),
        );
    }
    std::fs::write(
        cfg.join("config.json"),
        serde_json::to_vec_pretty(&serde_json::json!({ "auths": auths })).unwrap(),
    )
    .unwrap();
    nix::unistd::chown(
        &cfg.join("config.json"),
        Some(NOBODY.into()),
        Some(NOBODY.into()),
    )
    .unwrap();
    let mut killed = 0;
    for round in 0..200u32 {
        let mut child = inject_for_nobody(
            dir.path(),
            &cfg,
            "K",
            &format!("killed-{round}.example.com"),
        )
        .spawn()
        .unwrap();
        // The fault lands anywhere in the writer's few milliseconds (or after them).
        std::thread::sleep(std::time::Duration::from_micros(fastrand::u64(0..4000)));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let status = child.wait().unwrap();
        if std::os::unix::process::ExitStatusExt::signal(&status) == Some(9) {
            killed += 1;
        }
        let c = config(&cfg);
        let auths = c["auths"].as_object().unwrap();
        assert!(
            (0..200).all(|i| auths.contains_key(&format!("other-{i}.example.com"))),
            "round {round}: others' entries lost"
        );
    }
    assert!(
        killed >= 20,
        "only {killed} of 200 writers were killed before they finished"
    );
}
