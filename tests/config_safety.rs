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

/// The temporary files berth's writers left in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn the_next_run_removes_what_killed_writers_left_and_a_run_that_writes_nothing_creates_nothing() {
    let dir = scratch();
    let cfg = nobody_folder(dir.path());
    // Writers killed mid-write leave their temporary files (with credentials in them).
    let mut left = 0;
    // A kill at a random moment of the writer's life (which takes some milliseconds, more on
    // a busy machine) lands in its write now and then.
    for round in 0..300u32 {
        let mut child = inject_for_nobody(dir.path(), &cfg, "K", &format!("k{round}.example.com"))
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(fastrand::u64(0..20_000)));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        child.wait().unwrap();
        left = temporaries(&cfg).len();
        if left > 0 {
            break;
        }
    }
    assert!(left > 0, "no writer was killed mid-write in 300 rounds");
    let out = run(&mut inject_for_nobody(
        dir.path(),
        &cfg,
        "NEXT",
        "next.example.com",
    ));
    assert!(out.status.success());
    assert_eq!(
        temporaries(&cfg),
        Vec::<String>::new(),
        "the next run cleaned up"
    );
    // A run with nothing to change creates nothing, not even its lock.
    std::fs::remove_file(cfg.join(".berth.lock")).unwrap();
    use std::os::unix::fs::MetadataExt;
    let before = std::fs::metadata(cfg.join("config.json")).unwrap();
    let out = run(&mut inject_for_nobody(
        dir.path(),
        &cfg,
        "NEXT",
        "next.example.com",
    ));
    assert!(out.status.success());
    assert!(
        !cfg.join(".berth.lock").exists(),
        "no lock for a run that writes nothing"
    );
    let after = std::fs::metadata(cfg.join("config.json")).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
}

#[test]
fn a_full_disk_leaves_the_config_and_the_record_as_they_were() {
    let dir = scratch();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let disk = dir.path().join("small-disk");
    std::fs::create_dir(&disk).unwrap();
    // A real filesystem of 256 KiB (the tests run as root).
    let mounted = run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs"])
        .arg(&disk));
    assert!(mounted.status.success(), "{}", text(&mounted));
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.clone());
    let cfg = disk.join("nobody-docker");
    std::fs::create_dir(&cfg).unwrap();
    nix::unistd::chown(&cfg, Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
    let out = run(&mut inject_for_nobody(
        dir.path(),
        &cfg,
        "FIRST",
        "first.example.com",
    ));
    assert!(out.status.success());
    let config_before = std::fs::read(cfg.join("config.json")).unwrap();
    let record_before = std::fs::read(cfg.join("berth-managed.json")).unwrap();
    // Fill the disk (as root, who may use what is left), then ask for one more entry.
    let filler = disk.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    drop(f);
    let mut cmd = inject_for_nobody(dir.path(), &cfg, "SECOND", "second.example.com");
    let out = run(cmd.stderr(Stdio::piped()));
    assert!(!out.status.success(), "a full disk is an error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No space left on device"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(cfg.join("config.json")).unwrap(),
        config_before
    );
    assert_eq!(
        std::fs::read(cfg.join("berth-managed.json")).unwrap(),
        record_before,
        "the record claims nothing the config does not have"
    );
    assert_eq!(
        temporaries(&cfg),
        Vec::<String>::new(),
        "no half-written file left"
    );
}
