//! Real parts a test owns: a private Docker engine of any engine set-up (empty, and
//! startable at any moment), a registry process serving a test bed registry's storage (to
//! stop and start again), a reader of a child's output lines, and a loopback proxy that
//! paces the bytes it forwards so that "in the middle of a pull" is a moment a test can
//! reach.
//!
//! The engine set-ups ([`Setup`]): Debian 12's docker.io 20.10 (API 1.41, classic image
//! store), and Debian forky's docker.io 28.5 (API 1.51, refusing clients older than 1.44
//! as Docker 29 does) chrooted into the test bed's forky root, with the classic image store
//! and with the containerd image store. [`on_every_engine!`] makes one test per set-up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

/// An engine set-up the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Debian 12's docker.io 20.10: API 1.41, the classic image store.
    Old,
    /// Debian forky's docker.io 28.5 with the classic image store, API 1.44 at least.
    Modern,
    /// Debian forky's docker.io 28.5 with the containerd image store, API 1.44 at least.
    ModernContainerd,
}

impl Setup {
    /// Every set-up.
    pub const ALL: [Setup; 3] = [Setup::Old, Setup::Modern, Setup::ModernContainerd];

    /// The test bed's own engine of this set-up (`unix://...`).
    pub fn testbed_host(self) -> String {
        testbed()
            .get(match self {
                Setup::Old => "BERTH_TB_DOCKER_HOST",
                Setup::Modern => "BERTH_TB_MODERN_DOCKER_HOST",
                Setup::ModernContainerd => "BERTH_TB_MODERN_CONTAINERD_DOCKER_HOST",
            })
            .to_string()
    }

    /// The docker CLI of this set-up's release (forky's 28.5 for the current engine: the
    /// engine refuses 20.10's API 1.41).
    pub fn docker_cli(self) -> String {
        match self {
            Setup::Old => "/usr/bin/docker".to_string(),
            Setup::Modern | Setup::ModernContainerd => {
                testbed().get("BERTH_TB_MODERN_DOCKER_CLI").to_string()
            }
        }
    }

    /// Whether its engine keeps images in the containerd image store.
    pub fn containerd_store(self) -> bool {
        self == Setup::ModernContainerd
    }
}

/// One test per engine set-up: `on_every_engine! { fn name(setup) { ... } }` makes the
/// module `name` with the tests `old`, `modern` and `modern_containerd`, each running the
/// body with its [`Setup`].
#[macro_export]
macro_rules! on_every_engine {
    ($(#[doc = $doc:literal])* fn $name:ident($setup:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($setup: $crate::support::engine::Setup) $body

            #[test]
            fn old() {
                body($crate::support::engine::Setup::Old)
            }

            #[test]
            fn modern() {
                body($crate::support::engine::Setup::Modern)
            }

            #[test]
            fn modern_containerd() {
                body($crate::support::engine::Setup::ModernContainerd)
            }
        }
    };
}

/// A private dockerd of one set-up with its own data, exec root and socket, under a short
/// /tmp path.
pub struct TestEngine {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Its set-up.
    pub setup: Setup,
}

impl TestEngine {
    /// A folder for an old engine, not started yet.
    pub fn prepare() -> TestEngine {
        TestEngine::prepare_on(Setup::Old)
    }

    /// A folder for an engine of `setup`, not started yet.
    pub fn prepare_on(setup: Setup) -> TestEngine {
        let dir = tempfile::Builder::new()
            .prefix("be-")
            .tempdir_in("/tmp")
            .unwrap();
        TestEngine {
            dir,
            child: None,
            setup,
        }
    }

    /// An old engine, started and answering.
    pub fn start() -> TestEngine {
        TestEngine::start_on(Setup::Old)
    }

    /// An engine of `setup`, started and answering.
    pub fn start_on(setup: Setup) -> TestEngine {
        let mut e = TestEngine::prepare_on(setup);
        e.launch();
        e.wait_ready();
        e
    }

    /// Its socket (which exists once it runs).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// `unix://...`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Starts dockerd (does not wait): the host's, or the test bed's forky one, chrooted
    /// (scripts/lib/chroot-dockerd, whose process becomes that dockerd).
    pub fn launch(&mut self) {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let mut cmd = match self.setup {
            Setup::Old => {
                std::fs::write(
                    d.join("daemon.json"),
                    format!(r#"{{"deprecated-key-path": "{}/key.json"}}"#, d.display()),
                )
                .unwrap();
                let mut cmd = Command::new(testbed().get("BERTH_TB_DOCKERD_BIN"));
                cmd.args(["--config-file", &d.join("daemon.json").to_string_lossy()])
                    .args(["--data-root", &d.join("data").to_string_lossy()])
                    .args(["--exec-root", &d.join("x").to_string_lossy()])
                    .args(["--pidfile", &d.join("pid").to_string_lossy()])
                    .args(["-H", &self.host()])
                    .args(["--bridge=none", "--iptables=false", "--ip-forward=false"]);
                cmd
            }
            Setup::Modern | Setup::ModernContainerd => {
                let mut cmd = Command::new(repo().join("scripts/lib/chroot-dockerd"));
                let name = d.file_name().unwrap().to_string_lossy().into_owned();
                let store = if self.setup.containerd_store() {
                    "containerd"
                } else {
                    "classic"
                };
                cmd.arg(testbed().get("BERTH_TB_MODERN_ROOT"))
                    .arg(d)
                    .args([&name, store]);
                cmd
            }
        };
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Waits (bounded) until it answers, with berth's own readiness wait.
    pub fn wait_ready(&self) {
        let host = berth::engine::EngineTarget::own(
            berth::engine::DockerHost::from_value(Some(&self.host())).unwrap(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(berth::engine::wait_ready(
            &host,
            Duration::from_secs(90),
            &Default::default(),
        ))
        .unwrap_or_else(|e| {
            panic!(
                "test engine: {e}; log: {}",
                std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
            )
        });
    }

    /// The docker CLI of its release against this engine.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new(self.setup.docker_cli());
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("DOCKER_HOST", self.host());
        cmd
    }

    /// The digests the engine holds for an image, or `None` if it has none.
    pub fn repo_digests(&self, image: &str) -> Option<String> {
        let out =
            run(self
                .docker()
                .args(["image", "inspect", "-f", "{{json .RepoDigests}}", image]));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
        // Mounts dockerd leaves behind (its netns, overlay layers) must go before the folder.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let mut mine: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|m| m.starts_with(&*self.dir.path().to_string_lossy()))
                .collect();
            mine.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mine {
                let path = std::ffi::CString::new(m).unwrap();
                // SAFETY: a valid C string; umount2 has no other requirement.
                unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// A registry process serving test bed registry `n`'s storage and users on a port of its
/// own, which a test may stop and start again.
pub struct OwnRegistry {
    config: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl OwnRegistry {
    /// Starts one (and waits until it answers).
    pub fn start(n: u8) -> OwnRegistry {
        let tb = testbed();
        let dir = scratch();
        let port = closed_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{}/reg{n}/config.yml", tb.get("BERTH_TESTBED_DIR")))
                .unwrap(),
        )
        .unwrap();
        config["http"]["addr"] = serde_json::Value::String(addr.clone());
        config["log"]["level"] = serde_json::Value::String("info".into());
        let path = dir.path().join("config.yml");
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        let mut r = OwnRegistry {
            config: path,
            addr,
            child: None,
            _dir: dir,
        };
        r.resume();
        r
    }

    /// Starts the process again (same port, same storage), waiting until it listens.
    pub fn resume(&mut self) {
        self.child = Some(serve_registry(&self.config));
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The lines a child writes on a pipe, as they come.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    /// Every line so far.
    pub seen: Vec<String>,
}

impl Lines {
    /// Reads a pipe in a thread.
    pub fn read(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a line that contains `needle`.
    pub fn wait_for(&mut self, needle: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {bound:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Collects the rest until the pipe closes.
    pub fn rest(&mut self) -> String {
        while let Ok(line) = self.rx.recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// A count that a test can wait on, woken by each change (no polling).
#[derive(Default)]
pub struct Counter {
    value: std::sync::Mutex<u64>,
    changed: std::sync::Condvar,
}

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        *self.value.lock().unwrap() += n;
        self.changed.notify_all();
    }

    /// Waits (bounded) until the count reaches `n`.
    pub fn wait_until(&self, n: u64, bound: Duration) {
        let guard = self.value.lock().unwrap();
        let (guard, timeout) = self
            .changed
            .wait_timeout_while(guard, bound, |v| *v < n)
            .unwrap();
        assert!(!timeout.timed_out(), "the count stayed at {} < {n}", *guard);
    }
}

/// A loopback TCP proxy to `target` that forwards answers at a set pace and counts what it
/// forwarded and how often the target refused it.
pub struct PacedProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Bytes forwarded from the target so far.
    pub forwarded: Arc<Counter>,
    /// Connections the target refused.
    pub refused: Arc<Counter>,
    stop: Arc<AtomicBool>,
}

impl PacedProxy {
    /// Starts forwarding at `bytes_per_second`.
    pub fn start(target: &str, bytes_per_second: u64) -> PacedProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (forwarded, refused, stop) = (
            Arc::new(Counter::default()),
            Arc::new(Counter::default()),
            Arc::new(AtomicBool::new(false)),
        );
        let (f, r, s, target) = (
            forwarded.clone(),
            refused.clone(),
            stop.clone(),
            target.to_string(),
        );
        std::thread::spawn(move || {
            for down in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(down) = down else { continue };
                let Ok(up) = TcpStream::connect(&target) else {
                    r.add(1);
                    continue; // dropping `down` closes it: the client sees the target gone
                };
                let (mut d1, mut u1) = (down.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut d1, &mut u1);
                    let _ = u1.shutdown(std::net::Shutdown::Write);
                });
                let (mut d2, mut u2, f) = (down, up, f.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    let started = Instant::now();
                    let mut sent = 0u64;
                    loop {
                        let n = match u2.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if d2.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n as u64;
                        f.add(n as u64);
                        // Pacing is what this proxy is for; it synchronises nothing.
                        let due = Duration::from_secs_f64(sent as f64 / bytes_per_second as f64);
                        if let Some(ahead) = due.checked_sub(started.elapsed()) {
                            std::thread::sleep(ahead);
                        }
                    }
                    let _ = d2.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        PacedProxy {
            addr,
            forwarded,
            refused,
            stop,
        }
    }

    /// Waits (bounded) until `counter` reaches `n`.
    pub fn wait_until(counter: &Counter, n: u64, bound: Duration) {
        counter.wait_until(n, bound);
    }
}

impl Drop for PacedProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}
