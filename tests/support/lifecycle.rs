//! A dev container's lifecycle, played with the real binaries on this machine: the
//! entrypoint starts the daemon as root, and hooks run in order as the remote user
//! (`nobody`), each with the secrets a lifecycle command would see.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::*;

/// The remote user of these containers.
pub const REMOTE_UID: u32 = 65534;

/// One simulated container.
pub struct Container {
    dir: tempfile::TempDir,
    /// Options written as the feature's install.sh would.
    pub options: Vec<(String, String)>,
}

impl Container {
    /// A container whose remote user is `nobody`, with extra options.
    pub fn new(options: &[(&str, &str)]) -> Container {
        let dir = scratch();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Container {
            dir,
            options: Vec::new(),
        };
        std::fs::create_dir_all(c.docker_config()).unwrap();
        nix::unistd::chown(
            &c.docker_config(),
            Some(REMOTE_UID.into()),
            Some(REMOTE_UID.into()),
        )
        .unwrap();
        let mut all = vec![
            ("BERTH_REMOTE_USER", "nobody".to_string()),
            ("BERTH_STATE_DIR", c.state().display().to_string()),
            (
                "BERTH_CODESPACES_DIR",
                c.root().join("codespaces").display().to_string(),
            ),
            ("BERTH_WAIT_FOR_DOCKER", "false".to_string()),
        ];
        for (k, v) in options {
            all.retain(|(n, _)| n != k);
            all.push((k, v.to_string()));
        }
        let text: String = all.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        std::fs::write(c.options_file(), text).unwrap();
        c.options = all.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        c
    }

    /// The scratch folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The state folder.
    pub fn state(&self) -> PathBuf {
        self.root().join("state")
    }

    /// The options file.
    pub fn options_file(&self) -> PathBuf {
        self.root().join("options.env")
    }

    /// The remote user's Docker config folder.
    pub fn docker_config(&self) -> PathBuf {
        self.root().join("remote-docker")
    }

    /// berth with only what a container's process would have.
    pub fn berth(&self) -> Command {
        let mut cmd = Command::new(berth_bin());
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("BERTH_OPTIONS_FILE", self.options_file())
            .current_dir(self.root());
        cmd
    }

    /// The entrypoint: `berth daemon --background`, as root, without secrets.
    pub fn entrypoint(&self) -> Output {
        self.entrypoint_with(&[])
    }

    /// The entrypoint with more variables in the container's environment.
    pub fn entrypoint_with(&self, env: &[(&str, &str)]) -> Output {
        let out = run(self
            .berth()
            .args(["daemon", "--background"])
            .env("HOME", "/root")
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string()))));
        assert!(out.status.success(), "entrypoint: {}", text(&out));
        out
    }

    /// The entrypoint of a container whose own user is `uid`, not root.
    pub fn entrypoint_as(&self, uid: u32) -> Output {
        let out = run(self
            .berth()
            .args(["daemon", "--background"])
            .env("HOME", "/nonexistent")
            .uid(uid)
            .gid(uid));
        assert!(out.status.success(), "entrypoint: {}", text(&out));
        out
    }

    /// A hook, as the remote user, with these secrets in its environment.
    pub fn hook(&self, phase: &str, secrets: &[(String, String)]) -> Output {
        self.hook_as(phase, secrets, REMOTE_UID, &[])
    }

    /// A hook as any user, with extra variables.
    pub fn hook_as(
        &self,
        phase: &str,
        secrets: &[(String, String)],
        uid: u32,
        extra: &[(&str, &str)],
    ) -> Output {
        run(&mut self.hook_command(phase, secrets, uid, extra))
    }

    /// The command of a hook as any user, with extra variables, to run or spawn.
    pub fn hook_command(
        &self,
        phase: &str,
        secrets: &[(String, String)],
        uid: u32,
        extra: &[(&str, &str)],
    ) -> Command {
        let mut cmd = self.berth();
        cmd.args(["hook", phase])
            .env("HOME", "/nonexistent")
            .env("DOCKER_CONFIG", self.docker_config())
            .envs(secrets.iter().cloned())
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .uid(uid)
            .gid(uid);
        cmd
    }

    /// The daemon's pid, from its lock, if it runs.
    pub fn daemon_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.state().join("daemon.lock"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains("daemon")
            .then_some(pid)
    }

    /// Sends a signal to the daemon and waits for it to be gone (bounded).
    pub fn stop_daemon(&self, signal: nix::sys::signal::Signal) {
        let pid = self.daemon_pid().expect("a daemon runs");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
        wait_gone(pid);
    }

    /// The config the remote user has, if any.
    pub fn config(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(self.docker_config().join("config.json")).ok()?).ok()
    }

    /// Whether the config holds a login for `server`.
    pub fn has_login(&self, server: &str) -> bool {
        self.config()
            .is_some_and(|c| c["auths"][server]["auth"].is_string())
    }

    /// `berth status --wait`, as the remote user (a user's command waiting for the pre-pulls).
    pub fn status_wait(&self) -> Output {
        run(self
            .berth()
            .args(["status", "--wait"])
            .uid(REMOTE_UID)
            .gid(REMOTE_UID))
    }

    /// `berth status --json`, as the remote user.
    pub fn status(&self) -> serde_json::Value {
        let out = run(self
            .berth()
            .args(["status", "--json"])
            .uid(REMOTE_UID)
            .gid(REMOTE_UID));
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `berth status --json` once it satisfies `done`: checked now and after every change
    /// of the state folder (the daemon records what it did there), for up to a minute.
    pub fn status_when(&self, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        wait_for_folder(&self.state(), |_| Some(self.status()).filter(|s| done(s)))
    }

    /// The recorded events.
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.state().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_gone(pid);
        }
        // Couriers still waiting for a daemon of this container (hooks hand phases to
        // them when none runs yet) go too.
        let state = self.state().display().to_string();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            if args.contains(&&b"courier"[..]) && args.contains(&state.as_bytes()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Waits until a process is gone (bounded): its pidfd becomes readable when it exits.
pub fn wait_gone(pid: i32) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return; // already gone
    }
    // SAFETY: fd was just returned by pidfd_open and is owned here alone.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&owned),
        nix::poll::PollFlags::POLLIN,
    )];
    let _ = nix::poll::poll(
        &mut fds,
        nix::poll::PollTimeout::try_from(20_000u32).unwrap(),
    );
}

/// Waits (bounded) until the event record satisfies `done`: the daemon records as it goes.
pub fn wait_for_events(
    c: &Container,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .unwrap();
    notify::Watcher::watch(
        &mut watcher,
        &c.state(),
        notify::RecursiveMode::NonRecursive,
    )
    .unwrap();
    loop {
        let events = c.events();
        if done(&events) {
            return events;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            rx.recv_timeout(left).is_ok(),
            "the record never got there: {events:#?}"
        );
    }
}
