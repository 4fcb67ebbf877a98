//! What the integration tests share: the test bed's addresses and credentials, the berth
//! binary run in a clean environment, and the real `docker` CLI pointed at the test bed.
//!
//! The test bed (`scripts/testbed up`) must be running: `scripts/test` starts it. Its
//! variables are read from the environment when `scripts/test` exported them, else from
//! `scripts/testbed env`. A test that needs the test bed fails, plainly, without it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;

pub mod engine;
pub mod fault_proxy;
pub mod http;
pub mod lifecycle;

/// The test bed's variables.
pub struct Testbed {
    vars: HashMap<String, String>,
}

impl Testbed {
    /// A variable, or a panic that says how to start the test bed.
    pub fn get(&self, name: &str) -> &str {
        self.vars.get(name).unwrap_or_else(|| {
            panic!("test bed variable {name} is missing: run scripts/testbed up")
        })
    }

    /// A base64 variable, decoded.
    pub fn decoded(&self, name: &str) -> String {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.get(name))
            .expect("base64");
        String::from_utf8(bytes).expect("utf-8")
    }

    /// A space-separated list.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// The test bed, read once.
pub fn testbed() -> &'static Testbed {
    static TB: OnceLock<Testbed> = OnceLock::new();
    TB.get_or_init(|| {
        if std::env::var_os("BERTH_TB_DOCKER_HOST").is_some() {
            return Testbed {
                vars: std::env::vars()
                    .filter(|(k, _)| k.starts_with("BERTH_T"))
                    .collect(),
            };
        }
        let out = Command::new(repo().join("scripts/testbed"))
            .arg("env")
            .output()
            .expect("scripts/testbed runs");
        assert!(
            out.status.success(),
            "scripts/testbed env failed: {}; run scripts/testbed up",
            String::from_utf8_lossy(&out.stderr)
        );
        Testbed {
            vars: parse_exports(&String::from_utf8_lossy(&out.stdout)),
        }
    })
}

/// `export NAME='value'` lines (single quotes, `'\''` for a quote) to a map.
fn parse_exports(text: &str) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("export ") else {
            continue;
        };
        let Some((name, raw)) = rest.split_once('=') else {
            continue;
        };
        vars.insert(name.to_string(), berth::shell::unquote(raw));
    }
    vars
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The berth binary under test.
pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// A folder of programs for `PATH`: `docker-credential-berth` linked to the binary under
/// test, plus `extra` helper scripts (name, body).
pub fn bin_dir(root: &Path, with_helper: bool, extra: &[(&str, &str)]) -> PathBuf {
    let dir = root.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    if with_helper {
        let link = dir.join("docker-credential-berth");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(berth_bin(), link).unwrap();
    }
    for (name, body) in extra {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    dir
}

/// `PATH` with `first` ahead of the system's folders.
pub fn path_with(first: &Path) -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        first.display()
    )
}

/// berth, in an environment with nothing of the caller's: only `PATH`, `HOME` and what the
/// test adds. No options file, and the state folder under `root`.
pub fn berth(root: &Path) -> Command {
    let mut cmd = Command::new(berth_bin());
    cmd.env_clear()
        .env("PATH", path_with(&root.join("bin")))
        .env("HOME", root.join("home"))
        .env("BERTH_OPTIONS_FILE", "/nonexistent")
        .env("BERTH_STATE_DIR", root.join("state"))
        .env("BERTH_CODESPACES_DIR", root.join("codespaces"))
        .current_dir(root);
    cmd
}

/// The real docker CLI (the one on `PATH`), talking to the test bed's engine with the
/// config in `config_dir`.
pub fn docker(root: &Path, config_dir: &Path) -> Command {
    let mut cmd = Command::new("docker");
    cmd.env_clear()
        .env("PATH", path_with(&root.join("bin")))
        .env("HOME", root.join("home"))
        .env("DOCKER_HOST", testbed().get("BERTH_TB_DOCKER_HOST"))
        .env("DOCKER_CONFIG", config_dir);
    cmd
}

/// Runs a command, returning its output; panics if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd` with `input` on its standard input (closed after), its output kept.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// stdout and stderr as one text, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh scratch folder with `home/` inside.
pub fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-test-")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    dir
}

/// Registry secret variables for one identifier.
pub fn registry_env(id: &str, server: &str, user: &str, password: &str) -> Vec<(String, String)> {
    vec![
        (
            format!("{id}_CONTAINER_REGISTRY_SERVER"),
            server.to_string(),
        ),
        (format!("{id}_CONTAINER_REGISTRY_USER"), user.to_string()),
        (
            format!("{id}_CONTAINER_REGISTRY_PASSWORD"),
            password.to_string(),
        ),
    ]
}

/// Both test registries' secrets (REG1 and REG2), as a hook or a user would have them.
pub fn both_registries() -> Vec<(String, String)> {
    let tb = testbed();
    let mut v = registry_env(
        "REG1",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    );
    v.extend(registry_env(
        "REG2",
        tb.get("BERTH_TB_REG2"),
        tb.get("BERTH_TB_REG2_USER"),
        tb.get("BERTH_TB_REG2_PASSWORD"),
    ));
    v
}

/// A loopback HTTP server for faults a real part cannot produce: each request (counted
/// from 0) is answered with `answer(n)` = (status, body), as AWS's JSON protocol answers.
/// It serves until dropped.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _server: http::Server,
}

impl FakeServer {
    /// Starts serving.
    pub fn start(answer: impl Fn(usize) -> (u16, String) + Send + Sync + 'static) -> FakeServer {
        use http_body_util::BodyExt as _;
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let answer = std::sync::Arc::new(answer);
        let counted = count.clone();
        let server = http::serve(move |req: hyper::Request<hyper::body::Incoming>| {
            let (count, answer) = (counted.clone(), answer.clone());
            async move {
                // The whole request is read before it is answered, as a server would.
                let _ = req.into_body().collect().await;
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (status, body) = answer(n);
                let body = http_body_util::Full::new(bytes::Bytes::from(body))
                    .map_err(|never| match never {})
                    .boxed();
                let response = hyper::Response::builder()
                    .status(status)
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(body)
                    .unwrap();
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        FakeServer {
            url: format!("http://{}", server.addr),
            count,
            _server: server,
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An ECR GetAuthorizationToken answer: `AWS:<password>`, expiring at `expires_at`.
pub fn ecr_answer(password: &str, expires_at: std::time::SystemTime) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    let secs = expires_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    format!(
        r#"{{"authorizationData":[{{"authorizationToken":"{token}","expiresAt":{secs},"proxyEndpoint":"https://x"}}]}}"#
    )
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a few lines of Python with the test bed's boto3 (a real AWS client), returning
/// its stdout; the test bed's ECR endpoint and keys are in its environment.
pub fn boto3(script: &str) -> String {
    let tb = testbed();
    let out = run(std::process::Command::new(format!(
        "{}/venv/bin/python",
        tb.get("BERTH_TESTBED_DIR")
    ))
    .args(["-c", script])
    .env_clear()
    .env("ENDPOINT", tb.get("BERTH_TB_ECR_ENDPOINT"))
    .env("KEY", tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"))
    .env("SECRET", tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"))
    .env("ROLE", tb.get("BERTH_TB_ECR_ROLE_ARN"))
    .env("AWS_CONFIG_FILE", "/dev/null")
    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"));
    assert!(out.status.success(), "boto3: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// An ECR registry host of the test bed's account in `region`.
pub fn ecr_host(region: &str) -> String {
    format!(
        "{}.dkr.ecr.{region}.amazonaws.com",
        testbed().get("BERTH_TB_ECR_ACCOUNT")
    )
}

/// The `user:password` a Docker config holds for a registry (its `auth`, decoded).
pub fn decoded_auth(config: &serde_json::Value, server: &str) -> Option<String> {
    let auth = config["auths"][server]["auth"].as_str()?;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?,
    )
    .ok()
}

/// An endpoint that stalls: it accepts every connection on loopback and never answers
/// (a fault no real server produces on demand). Connections are held until it is dropped.
pub struct Stall {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Connections accepted so far.
    pub accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Stall {
    /// Starts stalling.
    pub fn start() -> Stall {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(c) = conn {
                    a.fetch_add(1, Ordering::SeqCst);
                    held.push(c);
                }
            }
        });
        Stall {
            url: format!("http://{addr}"),
            addr,
            stop,
            accepted,
        }
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr); // wakes the accept loop
    }
}

/// Waits (event-driven, up to a minute) until `done` holds for the folder `dir`, checking
/// after every change in it; the last value seen is returned.
pub fn wait_for_folder<T>(dir: &Path, mut done: impl FnMut(&Path) -> Option<T>) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .unwrap();
    notify::Watcher::watch(&mut watcher, dir, notify::RecursiveMode::NonRecursive).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(v) = done(dir) {
            return v;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            rx.recv_timeout(left).is_ok(),
            "{} never got there",
            dir.display()
        );
    }
}

/// Starts the test bed's registry program (distribution) with `config`, and returns once it
/// says it listens (its log, read line by line: no polling); its log is drained after.
pub fn serve_registry(config: &Path) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(testbed().get("BERTH_TB_REGISTRY_BIN"))
        .arg("serve")
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut lines = log.lines();
    loop {
        let line = lines
            .next()
            .expect("the registry logs before it exits")
            .unwrap();
        if line.contains("listening on") {
            break;
        }
    }
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Another real registry (distribution) serving the first test registry's storage and
/// users on a loopback port of its own: a registry host the docker CLI can log in to.
pub struct ExtraRegistry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl ExtraRegistry {
    /// Starts one and waits (reading its log) until it listens.
    pub fn start() -> ExtraRegistry {
        Self::start_with(|_| {})
    }

    /// Starts one whose configuration `edit` changes first (TLS, for instance).
    pub fn start_with(edit: impl FnOnce(&mut serde_json::Value)) -> ExtraRegistry {
        let tb = testbed();
        let dir = tempfile::tempdir().unwrap();
        let mut config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(format!("{}/reg1/config.yml", tb.get("BERTH_TESTBED_DIR"))).unwrap(),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", closed_port());
        config["http"]["addr"] = addr.clone().into();
        config["log"]["level"] = "info".into();
        edit(&mut config);
        let path = dir.path().join("config.yml");
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        let child = serve_registry(&path);
        ExtraRegistry {
            addr,
            child,
            _dir: dir,
        }
    }
}

impl Drop for ExtraRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `docker login` to `server` as `user`, the password on stdin (never in the arguments),
/// with `docker` (a docker command whose environment is set: engine, DOCKER_CONFIG);
/// asserts that it succeeds.
pub fn docker_login(mut docker: Command, server: &str, user: &str, password: &str) {
    let out = run_with_stdin(
        docker.args(["login", "-u", user, "--password-stdin", server]),
        password.as_bytes(),
    );
    assert!(
        out.status.success(),
        "docker login {server}: {}",
        text(&out)
    );
}

/// Every check `berth doctor --json`'s answer `d` gives for registry `server`: its own,
/// then its images'.
pub fn doctor_checks<'a>(d: &'a serde_json::Value, server: &str) -> Vec<&'a serde_json::Value> {
    let r = d["registries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["server"] == server)
        .unwrap_or_else(|| panic!("{server} in {d:#}"));
    let mut all: Vec<&serde_json::Value> = r["checks"].as_array().unwrap().iter().collect();
    for i in r["images"].as_array().unwrap() {
        all.extend(i["checks"].as_array().unwrap());
    }
    all
}
