//! Issue 7: the feature end to end, under the real Dev Containers CLI, in a dev container
//! whose own dockerd runs inside it (Docker-in-Docker), with a --secrets-file holding both
//! test registries and an ECR registry served by the test bed's ECR API.
//!
//! The feature used is the one `scripts/package-feature` staged in target/feature/offline
//! (the shipped feature without `installsAfter`, which the CLI would fetch from ghcr.io).
//! These tests take turns (`.config/nextest.toml`): the CLI builds every container's
//! features through one shared image tag, so two at once can swap their features.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::*;

/// The staged feature, or a plain failure saying how to make it.
fn staged_feature() -> PathBuf {
    let dir = repo().join("target/feature/offline/src/berth");
    assert!(
        dir.join("berth-x86_64.gz").is_file() && dir.join("devcontainer-feature.json").is_file(),
        "{} is missing: run scripts/package-feature (scripts/test does)",
        dir.display()
    );
    dir
}

/// A workspace with berth and Docker-in-Docker, whose user commands record what they saw.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(berth_options: serde_json::Value) -> Workspace {
        Self::custom(berth_options, serde_json::json!({}), |_| {})
    }

    /// A workspace whose Docker-in-Docker stand-in (tests/features/dind) has
    /// `dind_options`, and whose `devcontainer.json` `edit` changes. The lifecycle clock
    /// (tests/features/clock) is there too, for [`with_clock`].
    fn custom(
        berth_options: serde_json::Value,
        dind_options: serde_json::Value,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Workspace {
        let tb = testbed();
        let dir = scratch();
        let dc = dir.path().join("ws/.devcontainer");
        copy_dir(&staged_feature(), &dc.join("berth"));
        copy_dir(&repo().join("tests/features/dind"), &dc.join("dind"));
        copy_dir(&repo().join("tests/features/clock"), &dc.join("clock"));
        let (one, two) = (tb.get("BERTH_TB_REG1_TINY"), tb.get("BERTH_TB_REG2_TINY"));
        let mut config = serde_json::json!({
            "image": tb.get("BERTH_TB_IMAGE_DIND"),
            "runArgs": ["--network=host", "--cap-add=SYS_ADMIN", "--cap-add=NET_ADMIN", "--cap-add=MKNOD",
                        "--security-opt=seccomp=unconfined", "--security-opt=apparmor=unconfined", "--tmpfs=/var/lib/docker:exec"],
            "remoteUser": "dev",
            "containerEnv": {"AWS_ENDPOINT_URL_ECR": tb.get("BERTH_TB_ECR_ENDPOINT")},
            "features": {"./dind": dind_options, "./berth": berth_options},
            // What the shipped feature's installsAfter does (the offline copy has none).
            "overrideFeatureInstallOrder": ["./dind", "./berth"],
            // As in Codespaces, onCreate cannot pull (it waits for the engine, to fail for
            // the right reason), and postCreate can; it first notes which images are there.
            "onCreateCommand": format!("for i in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; docker pull {one} > /tmp/oncreate.log 2>&1 && echo PULLED >> /tmp/oncreate.log || echo FAILED >> /tmp/oncreate.log"),
            "postCreateCommand": format!("docker image inspect -f '{{{{.Id}}}}' {one} {two} > /tmp/postcreate.before 2>&1; echo rc=$? >> /tmp/postcreate.before; (docker pull {one} && docker pull {two}) > /tmp/postcreate.log 2>&1; echo rc=$? >> /tmp/postcreate.log"),
        });
        edit(&mut config);
        std::fs::write(
            dc.join("devcontainer.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let mut secrets = serde_json::Map::new();
        for (k, v) in both_registries() {
            secrets.insert(k, v.into());
        }
        for (k, v) in registry_env(
            "ECR",
            &ecr_host("eu-west-1"),
            tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
            tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"),
        ) {
            secrets.insert(k, v.into());
        }
        std::fs::write(
            dir.path().join("secrets.json"),
            serde_json::to_vec(&secrets).unwrap(),
        )
        .unwrap();
        Workspace { dir }
    }

    fn folder(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    fn cli(&self) -> Command {
        let mut cmd = Command::new(testbed().get("BERTH_TB_DEVCONTAINER"));
        cmd.env("DOCKER_HOST", testbed().get("BERTH_TB_DOCKER_HOST"));
        cmd
    }

    /// `devcontainer up`, with the secrets file or without (a prebuild has no user secrets).
    fn up(&self, extra: &[&str], with_secrets: bool) -> Output {
        self.up_with_env(extra, with_secrets, &[])
    }

    /// `up`, with `env` added to the CLI's environment.
    fn up_with_env(&self, extra: &[&str], with_secrets: bool, env: &[(&str, &str)]) -> Output {
        let mut cmd = self.up_command(extra, with_secrets);
        cmd.envs(env.iter().copied());
        run(&mut cmd)
    }

    /// The `devcontainer up` command of [`Workspace::up`], not started.
    fn up_command(&self, extra: &[&str], with_secrets: bool) -> Command {
        let mut cmd = self.cli();
        cmd.args(["up", "--workspace-folder"])
            .arg(self.folder())
            .args(extra);
        if with_secrets {
            cmd.arg("--secrets-file")
                .arg(self.dir.path().join("secrets.json"));
        }
        cmd
    }

    /// `devcontainer up` with the secrets, started, its output piped for the test to read
    /// as it comes.
    fn spawn_up(&self) -> std::process::Child {
        self.up_command(&[], true)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// A command in the container, as the remote user.
    fn exec(&self, args: &[&str]) -> Output {
        run(self
            .cli()
            .args(["exec", "--workspace-folder"])
            .arg(self.folder())
            .args(args))
    }

    /// A command in the container, as root.
    fn exec_root(&self, args: &[&str]) -> String {
        let out = self.docker(&[&["exec", "-u", "root", &self.container()][..], args].concat());
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn docker(&self, args: &[&str]) -> Output {
        run(Command::new("docker")
            .env("DOCKER_HOST", testbed().get("BERTH_TB_DOCKER_HOST"))
            .args(args))
    }

    fn container(&self) -> String {
        let out = self.docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!(
                "label=devcontainer.local_folder={}",
                self.folder().display()
            ),
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// An image tag of this workspace's own: `berth-test/NAME-<its folder's name>`.
    fn tag(&self, name: &str) -> String {
        format!(
            "berth-test/{name}-{}",
            self.dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        )
    }

    /// Commits the dev container as an image (as a prebuild's snapshot is kept), under
    /// [`Workspace::tag`]`(name)`; returns the tag.
    fn commit(&self, name: &str) -> String {
        let tag = self.tag(name);
        let committed = self.docker(&["commit", &self.container(), &tag]);
        assert!(committed.status.success(), "{}", text(&committed));
        tag
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let id = self.container();
        if !id.is_empty() {
            self.docker(&["rm", "-f", &id]);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn credentials_arrive_after_on_create_images_before_post_create_and_survive_a_restart() {
    let tb = testbed();
    let ws = Workspace::new(serde_json::json!({
        "images": format!("{} {}", tb.get("BERTH_TB_REG1_TINY"), tb.get("BERTH_TB_REG2_TINY")),
        "waitForPulls": true,
    }));
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    // onCreate could not pull (no credentials yet, as in Codespaces); the images were in the
    // inner engine when postCreateCommand started; the config has all three registries.
    assert_lifecycle_result(&ws, &said, "dev");

    let config: serde_json::Value =
        serde_json::from_str(&ws.exec_ok(&["cat", "/home/dev/.docker/config.json"])).unwrap();
    let auth = |server: &str| {
        decoded_auth(&config, server).unwrap_or_else(|| panic!("{server} in {config}"))
    };
    assert_eq!(
        auth(tb.get("BERTH_TB_REG1")),
        format!(
            "{}:{}",
            tb.get("BERTH_TB_REG1_USER"),
            tb.get("BERTH_TB_REG1_PASSWORD")
        )
    );
    assert_eq!(config["credHelpers"][tb.get("BERTH_TB_REG2")], "berth");

    // berth status in the container tells the story. (The deferral of onCreate is in it
    // unless onCreate, handed over, reached the daemon after postCreate had written the
    // credentials; the creation log says it either way.)
    let status = ws.exec_ok(&["berth", "status"]);
    for line in [
        "daemon: running",
        "onCreate hook ran (uid 1000",
        "postCreate hook ran",
        "credentials written to /home/dev/.docker/config.json:",
        &format!("REG1 ({}, added)", tb.get("BERTH_TB_REG1")),
        "credentials already in /home/dev/.docker/config.json:",
        "postStart hook ran",
        "postAttach hook ran",
    ] {
        assert!(status.contains(line), "{line:?} in\n{status}");
    }
    assert!(
        status.contains(&format!("{}  done", tb.get("BERTH_TB_REG1_TINY"))),
        "{status}"
    );

    // A restart: the container stops and starts again; postStart runs; berth comes back and
    // the inner engine (whose images were on a tmpfs) gets them again.
    let id = ws.container();
    assert!(ws.docker(&["stop", &id]).status.success());
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert!(
        said.contains("berth: postStart: credentials for ECR")
            && said.contains("already in /home/dev/.docker/config.json"),
        "{said}"
    );
    let pull = ws.exec(&["docker", "pull", "-q", tb.get("BERTH_TB_REG2_TINY")]);
    assert!(pull.status.success(), "{}", text(&pull));
    let status = ws.exec_ok(&["berth", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let starts = status["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["what"].as_str().unwrap().starts_with("daemon started"))
        .count();
    assert_eq!(starts, 2, "{status:#}");
}

#[test]
fn a_prebuild_explains_what_it_defers_and_the_rest_of_the_lifecycle_completes_it() {
    let ws = Workspace::new(serde_json::json!({}));
    // A prebuild: only onCreate and updateContent, and no user secrets.
    let pre = ws.up(&["--prebuild"], false);
    let said = text(&pre);
    assert!(pre.status.success(), "{said}");
    for line in [
        "berth: onCreate: no registry secrets here (",
        "berth: onCreate: credentials deferred to postCreate",
        "berth: updateContent: credentials deferred to postCreate",
    ] {
        assert!(said.contains(line), "{line:?} in\n{said}");
    }
    assert!(
        !said.contains("Running the postCreateCommand"),
        "a prebuild stops before postCreate: {said}"
    );
    assert!(
        !ws.exec(&["test", "-e", "/home/dev/.docker/config.json"])
            .status
            .success(),
        "nothing stored in the prebuild"
    );
    // Later, a codespace from that prebuild runs the rest, with the user's secrets.
    let rest = ws.up(&[], true);
    assert!(rest.status.success(), "{}", text(&rest));
    assert!(
        text(&rest).contains("berth: postCreate: credentials for ECR"),
        "{}",
        text(&rest)
    );
    assert!(ws.exec_ok(&["cat", "/tmp/postcreate.log"]).contains("rc=0"));
}

#[test]
fn the_feature_installs_by_reference_from_an_oci_registry_with_authentication() {
    let tb = testbed();
    // As users name a published feature; the CLI speaks plain HTTP to `localhost` only.
    let registry = format!(
        "localhost:{}",
        tb.get("BERTH_TB_REG1").rsplit(':').next().unwrap()
    );
    let namespace = format!("e2e-{:016x}/features", fastrand::u64(..));
    let reference = format!("{registry}/{namespace}/berth");
    let auth = format!(
        "{registry}|{}|{}",
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD")
    );
    let cli = || {
        let mut cmd = Command::new(tb.get("BERTH_TB_DEVCONTAINER"));
        cmd.env("DEVCONTAINERS_OCI_AUTH", &auth);
        cmd
    };

    // Published with the CLI's own `features publish`, as the release workflow's action does.
    let published = run(cli()
        .args(["features", "publish"])
        .arg(staged_feature().parent().unwrap())
        .args(["--registry", &registry, "--namespace", &namespace]));
    assert!(published.status.success(), "{}", text(&published));
    let said: serde_json::Value = serde_json::from_slice(&published.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&published)));
    let version = env!("CARGO_PKG_VERSION");
    let minor = version.rsplit_once('.').unwrap().0;
    let major = minor.split_once('.').unwrap().0;
    assert_eq!(
        said["berth"]["publishedTags"],
        serde_json::json!([major, minor, version, "latest"]),
        "{said}"
    );
    // The artifact is the Dev Containers one, and the registry hides it from strangers.
    let manifest = run(cli()
        .args([
            "features",
            "info",
            "manifest",
            &format!("{reference}:{major}"),
        ])
        .args(["--output-format", "json"]));
    let manifest_text = text(&manifest);
    assert!(
        manifest.status.success()
            && manifest_text.contains("application/vnd.devcontainers.layer.v1+tar"),
        "{manifest_text}"
    );
    let anonymous = run(Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!(
            "http://{}/v2/{namespace}/berth/tags/list",
            tb.get("BERTH_TB_REG1")
        )));
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "401");

    // A dev container that names it by reference: the CLI fetches it, with the credentials,
    // and installs it; no copy of the feature is in the workspace.
    let options = serde_json::json!({
        "images": format!("{} {}", tb.get("BERTH_TB_REG1_TINY"), tb.get("BERTH_TB_REG2_TINY")),
        "waitForPulls": true,
    });
    let by_reference = format!("{reference}:{major}");
    let ws = Workspace::custom(options.clone(), serde_json::json!({}), |config| {
        config["features"] = serde_json::json!({"./dind": {}, by_reference.clone(): options});
        config["overrideFeatureInstallOrder"] = serde_json::json!(["./dind", reference]);
    });
    std::fs::remove_dir_all(ws.folder().join(".devcontainer/berth")).unwrap();
    let up = ws.up_with_env(
        &["--log-level", "debug"],
        true,
        &[("DEVCONTAINERS_OCI_AUTH", &auth)],
    );
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    // The CLI fetched the feature from the registry, with the credentials.
    assert!(
        said.contains(&format!("* Processing feature: {by_reference}"))
            && said.contains(&format!("* Fetched feature: berth_1_oci version {version}")),
        "{said}"
    );
    assert_lifecycle_result(&ws, &said, "dev");
    assert_eq!(
        ws.exec_ok(&["berth", "--version"]).trim(),
        format!("berth {version}")
    );

    // Without the credentials, the same reference is refused by the registry.
    let refused = Workspace::custom(serde_json::json!({}), serde_json::json!({}), |config| {
        config["features"] = serde_json::json!({"./dind": {}, by_reference.clone(): {}});
    });
    let up = refused.up(&[], false);
    assert!(!up.status.success(), "{}", text(&up));
}

#[test]
fn the_tested_feature_is_the_shipped_one_without_installs_after() {
    let shipped: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("devcontainer-feature/src/berth/devcontainer-feature.json"))
            .unwrap(),
    )
    .unwrap();
    let mut tested: serde_json::Value = serde_json::from_slice(
        &std::fs::read(staged_feature().join("devcontainer-feature.json")).unwrap(),
    )
    .unwrap();
    let after: Vec<&str> = shipped["installsAfter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(after.contains(&"ghcr.io/devcontainers/features/docker-in-docker"));
    assert!(after.contains(&"ghcr.io/devcontainers/features/docker-outside-of-docker"));
    tested["installsAfter"] = shipped["installsAfter"].clone();
    assert_eq!(tested, shipped, "only installsAfter differs");
    for f in ["install.sh", "entrypoint.sh"] {
        assert_eq!(
            std::fs::read(repo().join("devcontainer-feature/src/berth").join(f)).unwrap(),
            std::fs::read(staged_feature().join(f)).unwrap(),
            "{f}"
        );
    }
}

/// The checks of a whole lifecycle with both registries, ECR, `waitForPulls` and the
/// images of both test registries, whatever the order entrypoints and hooks ran in.
fn assert_lifecycle_result(ws: &Workspace, said: &str, user: &str) {
    let tb = testbed();
    assert!(
        said.contains("berth: onCreate: credentials deferred to postCreate"),
        "{said}"
    );
    assert!(
        said.contains("berth: postCreate: the pre-pulls")
            && said.contains("(2 pulled, 0 already present, 0 failed)"),
        "{said}"
    );
    let on_create = ws.exec_ok(&["cat", "/tmp/oncreate.log"]);
    assert!(
        on_create.contains("FAILED") && on_create.contains("no basic auth credentials"),
        "{on_create}"
    );
    let before = ws.exec_ok(&["cat", "/tmp/postcreate.before"]);
    assert!(
        before.contains("rc=0") && before.matches("sha256:").count() == 2,
        "{before}"
    );
    assert!(ws.exec_ok(&["cat", "/tmp/postcreate.log"]).contains("rc=0"));
    let config: serde_json::Value =
        serde_json::from_str(&ws.exec_ok(&["cat", "/home/dev/.docker/config.json"])).unwrap();
    assert!(
        decoded_auth(&config, &ecr_host("eu-west-1")).is_some_and(|a| a.starts_with("AWS:")),
        "ECR token: {config}"
    );
    assert!(
        decoded_auth(&config, tb.get("BERTH_TB_REG1")).is_some(),
        "{config}"
    );
    assert_eq!(
        ws.exec_ok(&["stat", "-c", "%U:%a", "/home/dev/.docker/config.json"])
            .trim(),
        format!("{user}:600")
    );
    // The daemon runs as root, the container's user, with no secret in its environment,
    // and handled every phase.
    let pid = ws.exec_root(&["cat", "/var/lib/berth/daemon.lock"]);
    let pid = pid.trim();
    assert_eq!(
        ws.exec_ok(&["stat", "-c", "%U", &format!("/proc/{pid}")])
            .trim(),
        "root"
    );
    let environ = ws.exec_root(&["cat", &format!("/proc/{pid}/environ")]);
    assert!(!environ.contains("_CONTAINER_REGISTRY_"), "{environ}");
    let status = ws.exec_ok(&["berth", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(status["daemon"]["pid"].is_number(), "{status:#}");
    let records = ws.exec_ok(&["cat", "/var/lib/berth/events.jsonl"]);
    let phases: Vec<serde_json::Value> = records
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "phase")
        .collect();
    for p in [
        "onCreate",
        "updateContent",
        "postCreate",
        "postStart",
        "postAttach",
    ] {
        let e = phases
            .iter()
            .find(|e| e["phase"] == p)
            .unwrap_or_else(|| panic!("{p} recorded: {records}"));
        assert_eq!(e["handler"], "daemon", "{p}: {e}");
    }
    let pulls = status["pulls"].as_array().unwrap();
    assert!(
        pulls.len() == 2 && pulls.iter().all(|p| p["state"] == "done"),
        "{status:#}"
    );
}

/// The stand-in holds the entrypoint chain (berth's entrypoint with it) after its engine
/// answers, until the test writes to this FIFO.
const HOLD_FIFO: &str = "/var/tmp/release-entrypoints";

#[test]
fn hooks_that_start_before_berths_entrypoint_give_the_same_result() {
    // The chain is held until the postCreate hook waits for berth's daemon (waitForPulls):
    // onCreate and updateContent were handed over, and reach the daemon after postCreate's
    // request may have.
    use std::io::BufRead;
    let tb = testbed();
    let ws = Workspace::custom(
        serde_json::json!({
            "images": format!("{} {}", tb.get("BERTH_TB_REG1_TINY"), tb.get("BERTH_TB_REG2_TINY")),
            "waitForPulls": true,
        }),
        serde_json::json!({"holdFifo": HOLD_FIFO}),
        |_| {},
    );
    let mut up = ws.spawn_up();
    let stdout = up.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut s).unwrap();
        s
    });
    let mut said = String::new();
    let mut released = false;
    for line in std::io::BufReader::new(up.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if !released
            && line.contains(
                "berth: postCreate: berth's daemon is not running yet; waiting up to 900 s for it",
            )
        {
            // The entrypoints go on.
            let out = ws.docker(&[
                "exec",
                &ws.container(),
                "sh",
                "-c",
                &format!("echo go > {HOLD_FIFO}"),
            ]);
            assert!(out.status.success(), "{}", text(&out));
            released = true;
        }
        said.push_str(&line);
        said.push('\n');
    }
    let status = up.wait().unwrap();
    said.push_str(&out_reader.join().unwrap());
    assert!(status.success(), "{said}");
    assert!(
        released,
        "the postCreate hook waited for berth's daemon: {said}"
    );
    for phase in ["onCreate", "updateContent"] {
        assert!(
            said.contains(&format!("berth: {phase}: berth's daemon is not running yet (the container's entrypoint starts it")),
            "{phase} was handed over: {said}"
        );
    }
    assert!(
        !said.contains("doing this phase's work here"),
        "the daemon did every phase's work: {said}"
    );
    assert_lifecycle_result(&ws, &said, "dev");
}

#[test]
fn a_remote_user_whose_uid_changed_after_install_keeps_its_daemon_pulls_and_status() {
    let tb = testbed();
    let built = Workspace::new(serde_json::json!({
        "images": format!("{} {}", tb.get("BERTH_TB_REG1_TINY"), tb.get("BERTH_TB_REG2_TINY")),
        "waitForPulls": true,
    }));
    let tag = built.tag("uid");
    // The image with the features installed, as the Dev Containers CLI builds it...
    let build = run(built
        .cli()
        .args(["build", "--workspace-folder"])
        .arg(built.folder())
        .args(["--image-name", &format!("{tag}:installed")]));
    assert!(build.status.success(), "{}", text(&build));
    // ...then what updateRemoteUserUID does on a host whose user has another uid.
    let dockerfile =
        format!("FROM {tag}:installed\nRUN usermod -u 1500 dev && groupmod -g 1500 dev\n");
    let mut docker_build = Command::new("docker")
        .env("DOCKER_HOST", tb.get("BERTH_TB_DOCKER_HOST"))
        .args(["build", "-q", "-t", &format!("{tag}:uid1500"), "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut docker_build.stdin.take().unwrap(),
        dockerfile.as_bytes(),
    )
    .unwrap();
    let out = docker_build.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // A workspace on that image: the features and the lifecycle commands come with it.
    let ws = Workspace::custom(serde_json::json!({}), serde_json::json!({}), |config| {
        let keep = |k: &str| config[k].clone();
        *config = serde_json::json!({
            "image": format!("{tag}:uid1500"),
            "runArgs": keep("runArgs"),
            "remoteUser": "dev",
            "containerEnv": keep("containerEnv"),
        });
    });
    let up = ws.up(&[], true);
    let said = text(&up);
    for t in ["installed", "uid1500"] {
        built.docker(&["rmi", "-f", &format!("{tag}:{t}")]);
    }
    assert!(up.status.success(), "{said}");
    assert_eq!(ws.exec_ok(&["id", "-u"]).trim(), "1500");
    assert_lifecycle_result(&ws, &said, "dev");
    assert_eq!(
        ws.exec_ok(&["stat", "-c", "%u:%g", "/home/dev/.docker/config.json"])
            .trim(),
        "1500:1500"
    );
    // dev reaches the daemon: the socket is root's, for dev's group as it is now.
    assert_eq!(
        ws.exec_ok(&["stat", "-c", "%U:%g:%a", "/var/lib/berth/berth.sock"])
            .trim(),
        "root:1500:660"
    );
    let status = ws.exec_ok(&["berth", "status"]);
    assert!(status.contains("daemon: running"), "{status}");
    assert!(status.contains("postCreate hook ran (uid 1500"), "{status}");
}

#[test]
fn a_docker_socket_the_remote_user_cannot_open_is_named_in_the_creation_log() {
    let tb = testbed();
    let host_socket = tb
        .get("BERTH_TB_DOCKER_HOST")
        .strip_prefix("unix://")
        .unwrap()
        .to_string();
    // Docker-outside-of-Docker: the host's engine socket bind-mounted, root's and its
    // group's; the remote user dev is not in that group in the container.
    let ws = Workspace::custom(serde_json::json!({}), serde_json::json!({}), |config| {
        *config = serde_json::json!({
            "image": tb.get("BERTH_TB_IMAGE_DEBIAN"),
            "runArgs": ["--network=host"],
            "remoteUser": "dev",
            "mounts": [format!("source={host_socket},target=/var/run/docker.sock,type=bind")],
            "containerEnv": {"AWS_ENDPOINT_URL_ECR": tb.get("BERTH_TB_ECR_ENDPOINT")},
            "features": {"./berth": {}},
        });
    });
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert!(
        said.contains("berth: postCreate: Docker engine answers at unix:///var/run/docker.sock"),
        "{said}"
    );
    assert!(
        said.contains("berth: postCreate: user dev cannot open the Docker engine's socket /var/run/docker.sock")
            && said.contains("dev is not in group")
            && said.contains("docker-outside-of-docker feature"),
        "{said}"
    );
    let status = ws.exec_ok(&["berth", "status"]);
    assert!(
        status.contains("but user dev cannot open the Docker engine's socket"),
        "{status}"
    );
}

#[test]
fn a_container_run_as_the_remote_user_runs_the_daemon_as_that_user() {
    let tb = testbed();
    // An image whose own user is the remote user (as Codespaces' universal image): the
    // entrypoint, the daemon and the hooks all run as dev; berth keeps its state in dev's
    // home, and nothing of it is root's.
    let ws = Workspace::custom(serde_json::json!({}), serde_json::json!({}), |config| {
        *config = serde_json::json!({
            "image": tb.get("BERTH_TB_IMAGE_DEBIAN"),
            "runArgs": ["--network=host"],
            "containerUser": "dev",
            "remoteUser": "dev",
            "containerEnv": {"AWS_ENDPOINT_URL_ECR": tb.get("BERTH_TB_ECR_ENDPOINT")},
            "features": {"./berth": {}},
        });
    });
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    // The image has no root certificates (no ca-certificates): ECR works all the same.
    assert!(
        said.contains("berth: postCreate: credentials for ECR")
            && !said.contains("doing this phase's work here"),
        "{said}"
    );
    let state = "/home/dev/.local/state/berth";
    let pid = ws.exec_ok(&["cat", &format!("{state}/daemon.lock")]);
    assert_eq!(
        ws.exec_ok(&["stat", "-c", "%U", &format!("/proc/{}", pid.trim())])
            .trim(),
        "dev"
    );
    let status = ws.exec_ok(&["berth", "status"]);
    assert!(status.contains("daemon: running (pid"), "{status}");
    assert!(status.contains(", as dev)"), "{status}");
    assert!(status.contains("postCreate hook ran (uid 1000"), "{status}");
    assert!(
        !ws.exec(&["test", "-e", "/var/lib/berth/events.jsonl"])
            .status
            .success(),
        "no root state"
    );
    assert_eq!(
        ws.exec_ok(&["stat", "-c", "%U:%a", "/home/dev/.docker/config.json"])
            .trim(),
        "dev:600"
    );
}

/// The events of berth's record in a container.
fn container_events(ws: &Workspace) -> Vec<serde_json::Value> {
    ws.exec_ok(&["cat", "/var/lib/berth/events.jsonl"])
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn early_pulls_arrive_while_on_create_runs_and_config_json_waits_for_post_create() {
    // Issue 13. The user's onCreateCommand runs longer than the pulls (it waits for them
    // with `berth status --wait`, as a long `npm ci` would end later), and notes what it
    // saw then: the images, and the config.
    let tb = testbed();
    let (one, two) = (tb.get("BERTH_TB_REG1_TINY"), tb.get("BERTH_TB_REG2_TINY"));
    let app = format!("{}/team/app:1.0", tb.get("BERTH_TB_REG1"));
    let ws = Workspace::custom(
        serde_json::json!({"images": format!("{one} {two} {app}")}),
        serde_json::json!({}),
        |config| {
            config["onCreateCommand"] = format!(
                "berth status --wait > /tmp/oncreate.wait 2>&1; echo rc=$? >> /tmp/oncreate.wait; \
                 docker image inspect -f '{{{{.Id}}}}' {one} {two} {app} > /tmp/oncreate.images 2>&1; echo rc=$? >> /tmp/oncreate.images; \
                 (grep -c '\"auth\"' ~/.docker/config.json 2>/dev/null || echo 0) > /tmp/oncreate.config"
            )
            .into();
            config["postCreateCommand"] = format!(
                "docker image inspect -f '{{{{.Id}}}}' {one} {two} {app} > /tmp/postcreate.before 2>&1; echo rc=$? >> /tmp/postcreate.before"
            )
            .into();
        },
    );
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    // The onCreate hook started the pulls through the daemon, or (as the Docker-in-Docker
    // stand-in holds berth's entrypoint until its engine answers) handed them to it.
    assert!(
        said.contains("berth: onCreate: pre-pulling") && said.contains("pullAt=early")
            || said.contains(HANDED_OVER),
        "{said}"
    );
    let waited = ws.exec_ok(&["cat", "/tmp/oncreate.wait"]);
    assert!(
        waited.contains("the pre-pulls") && waited.contains("rc=0"),
        "{waited}"
    );
    let on_create = ws.exec_ok(&["cat", "/tmp/oncreate.images"]);
    assert!(
        on_create.contains("rc=0") && on_create.matches("sha256:").count() == 3,
        "the images arrived during onCreate: {on_create}"
    );
    assert_eq!(
        ws.exec_ok(&["cat", "/tmp/oncreate.config"]).trim(),
        "0",
        "no credential in config.json during onCreate"
    );
    let before = ws.exec_ok(&["cat", "/tmp/postcreate.before"]);
    assert!(before.contains("rc=0"), "{before}");
    // Each image was pulled once, and before the postCreate hook ran.
    let events = container_events(&ws);
    let post_create = events
        .iter()
        .position(|e| e["event"] == "phase" && e["phase"] == "postCreate")
        .unwrap();
    let pulled: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["event"] == "pull-started")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(pulled.len(), 3, "{events:#?}");
    assert!(pulled.iter().all(|i| *i < post_create), "{events:#?}");
}

#[test]
fn pull_at_post_create_pulls_after_the_credentials_are_written() {
    let tb = testbed();
    let ws = Workspace::new(serde_json::json!({
        "images": format!("{} {}", tb.get("BERTH_TB_REG1_TINY"), tb.get("BERTH_TB_REG2_TINY")),
        "pullAt": "postCreate",
        "waitForPulls": true,
    }));
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert!(!said.contains("pullAt=early"), "{said}");
    let events = container_events(&ws);
    let post_create = events
        .iter()
        .position(|e| e["event"] == "phase" && e["phase"] == "postCreate")
        .unwrap();
    let first_pull = events
        .iter()
        .position(|e| e["event"] == "pull-started")
        .expect("a pull");
    assert!(first_pull > post_create, "{events:#?}");
    let before = ws.exec_ok(&["cat", "/tmp/postcreate.before"]);
    assert!(before.contains("rc=0"), "with waitForPulls: {before}");
}

/// A Docker volume that is removed when dropped.
struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        run(Command::new("docker")
            .env("DOCKER_HOST", testbed().get("BERTH_TB_DOCKER_HOST"))
            .args(["volume", "rm", "-f", &self.0]));
    }
}

#[test]
fn a_restart_finds_the_images_already_present_without_a_registry_request() {
    // Issue 23. The inner engine keeps its images on a volume (as the real docker-in-docker
    // feature does); the registry is reached through a proxy that counts requests. After
    // `docker stop` and `devcontainer up`, berth's daemon starts again from its record,
    // checks the images in the engine, and asks the registry nothing.
    use support::fault_proxy::{Fault, FaultProxy};
    let tb = testbed();
    let proxy = FaultProxy::start(tb.get("BERTH_TB_REG1"), |_, _| Fault::Pass);
    let images = [
        format!("{}/team/tiny:1", proxy.addr),
        format!("{}/team/app:1.0", proxy.addr),
    ];
    let volume = Volume(format!("berth-test-dind-{:016x}", fastrand::u64(..)));
    let ws = Workspace::custom(
        serde_json::json!({"images": images.join(" "), "waitForPulls": true}),
        serde_json::json!({}),
        |config| {
            let args = config["runArgs"].as_array_mut().unwrap();
            args.retain(|a| a != "--tmpfs=/var/lib/docker:exec");
            config["mounts"] = serde_json::json!([format!(
                "source={},target=/var/lib/docker,type=volume",
                volume.0
            )]);
        },
    );
    let mut secrets: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(ws.dir.path().join("secrets.json")).unwrap())
            .unwrap();
    for (k, v) in registry_env(
        "PROXIED",
        &proxy.addr,
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    ) {
        secrets.insert(k, v.into());
    }
    std::fs::write(
        ws.dir.path().join("secrets.json"),
        serde_json::to_vec(&secrets).unwrap(),
    )
    .unwrap();
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert!(
        said.contains("(2 pulled, 0 already present, 0 failed)")
            && !proxy.seen_of("/blobs/").is_empty(),
        "the first start pulls: {said}"
    );
    let id = ws.container();
    assert!(ws.docker(&["stop", &id]).status.success());
    let before = proxy.seen().len();
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    // What the remote user sees once the postStart hook has run: each image checked.
    let waited = ws.exec(&["berth", "status", "--wait"]);
    let waited = text(&waited);
    let status = ws.exec_ok(&["berth", "status"]);
    // The login written again at postStart is checked as `docker login` would (issue 25):
    // `GET /v2/` and nothing else. No manifest, no blob: the images are checked in the engine.
    let after: Vec<_> = proxy.seen()[before..].to_vec();
    assert!(
        after.iter().all(|s| s.method == "GET" && s.path == "/v2/"),
        "no pull request to the registry after the restart, only the login check: {after:?}"
    );
    for i in &images {
        assert!(
            ws.exec(&["docker", "image", "inspect", i]).status.success(),
            "{i} is there"
        );
        for (what, text) in [("the wait", &waited), ("berth status", &status)] {
            assert!(
                text.lines()
                    .any(|l| l.contains(i.as_str()) && l.contains("already present (checked)")),
                "{i} already present (checked) in {what}:\n{text}\n{said}"
            );
        }
    }
    assert!(
        waited.contains("(0 pulled, 2 already present, 0 failed)"),
        "{waited}"
    );
    drop(ws);
    drop(volume);
}

#[test]
fn a_container_made_from_a_prebuild_snapshot_tells_its_own_story() {
    let tb = testbed();
    let tiny = tb.get("BERTH_TB_REG1_TINY");
    let pre = Workspace::new(serde_json::json!({"images": tiny}));
    // The prebuild: only onCreate and updateContent, here with the secrets (a prebuild
    // may be given them), so that early pulls go into the prebuild's engine.
    let up = pre.up(&["--prebuild"], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert!(
        said.contains("berth: onCreate: pre-pulling") || said.contains(HANDED_OVER),
        "{said}"
    );
    assert!(
        !pre.exec(&["grep", "-q", "auth", "/home/dev/.docker/config.json"])
            .status
            .success(),
        "no secret written in the prebuild"
    );
    // Its snapshot, and a new container made from it (the engine's images, on a tmpfs,
    // are not in the snapshot).
    let tag = pre.commit("prebuilt");
    let ws = Workspace::custom(serde_json::json!({}), serde_json::json!({}), |config| {
        let keep = |k: &str| config[k].clone();
        *config = serde_json::json!({
            "image": tag,
            "runArgs": keep("runArgs"),
            "remoteUser": "dev",
            "containerEnv": keep("containerEnv"),
        });
    });
    let up = ws.up(&[], true);
    let said = text(&up);
    pre.docker(&["rmi", "-f", &tag]);
    assert!(up.status.success(), "{said}");
    let status: serde_json::Value =
        serde_json::from_str(&ws.exec_ok(&["berth", "status", "--json"])).unwrap();
    assert!(
        status["timeline"].to_string().contains("a new container"),
        "{status:#}"
    );
    // Every pull shown as done was done in this container, and the image is there.
    let events = container_events(&ws);
    let started_here = events
        .iter()
        .rposition(|e| e["event"] == "daemon-started")
        .unwrap();
    for p in status["pulls"].as_array().unwrap() {
        let image = p["image"].as_str().unwrap();
        if p["state"] == "done" {
            assert!(
                events[started_here..]
                    .iter()
                    .any(|e| e["event"] == "pull-done" && e["image"] == image),
                "{image} shown done from the prebuild's record: {status:#}"
            );
            assert!(
                ws.exec(&["docker", "image", "inspect", image])
                    .status
                    .success(),
                "{image}"
            );
        }
    }
}

/// How a hook that ran before berth's daemon says so (the end of its line).
const HANDED_OVER: &str =
    "this phase is handed to it, and it starts the pre-pulls as soon as it runs";

/// Where the lifecycle clock and the user's commands note when each started.
const TIMES: &str = "/var/tmp/lifecycle.times";

/// Adds the lifecycle clock (tests/features/clock), installed after berth: each berth
/// command notes its start in [`TIMES`].
fn with_clock(config: &mut serde_json::Value) {
    config["features"]["./clock"] = serde_json::json!({});
    config["overrideFeatureInstallOrder"] = serde_json::json!(["./dind", "./berth", "./clock"]);
}

/// The first words of a user's lifecycle command of `phase`: it notes its start.
fn noted(phase: &str) -> String {
    format!("echo \"user {phase} $(date +%s%N)\" >> {TIMES}; ")
}

/// When each noted command first started (ns since the epoch), by its words
/// (`berth hook onCreate`, `user onCreate`).
fn lifecycle_times(ws: &Workspace) -> std::collections::HashMap<String, u128> {
    let mut times = std::collections::HashMap::new();
    for line in ws.exec_ok(&["cat", TIMES]).lines() {
        if let Some((words, ns)) = line.rsplit_once(' ')
            && let Ok(ns) = ns.parse::<u128>()
        {
            times.entry(words.to_string()).or_insert(ns);
        }
    }
    times
}

/// How long after berth's `phase` hook started the user's command of that phase started.
fn hook_delay(times: &std::collections::HashMap<String, u128>, phase: &str) -> Duration {
    let at = |words: &str| {
        *times
            .get(words)
            .unwrap_or_else(|| panic!("{words:?} noted in {times:?}"))
    };
    let (hook, user) = (
        at(&format!("berth hook {phase}")),
        at(&format!("user {phase}")),
    );
    assert!(
        user >= hook,
        "the user's {phase} command after berth's: {times:?}"
    );
    Duration::from_nanos((user - hook) as u64)
}

/// The bound issue 23 names: berth's onCreate and updateContent hooks hold the user's next
/// command up by less than this.
const HOOK_BOUND: Duration = Duration::from_secs(1);

/// Asserts the bound on the onCreate and updateContent hooks, and says every hook's delay.
fn assert_hooks_quick(ws: &Workspace, case: &str) {
    let times = lifecycle_times(ws);
    let delays: Vec<(&str, Duration)> = ["onCreate", "updateContent", "postCreate"]
        .into_iter()
        .map(|p| (p, hook_delay(&times, p)))
        .collect();
    println!(
        "{case}: the user's command started after berth's hook started: {}",
        delays
            .iter()
            .map(|(p, d)| format!("{p} {} ms", d.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (phase, delay) in &delays[..2] {
        assert!(
            *delay < HOOK_BOUND,
            "berth's {phase} hook held the user's command up {delay:?}: {times:?}"
        );
    }
}

/// Three private images of the two test registries.
fn three_images() -> [String; 3] {
    let tb = testbed();
    [
        tb.get("BERTH_TB_REG1_TINY").to_string(),
        tb.get("BERTH_TB_REG2_TINY").to_string(),
        format!("{}/team/app:1.0", tb.get("BERTH_TB_REG1")),
    ]
}

#[test]
fn the_usual_case_three_private_images_for_a_non_root_user() {
    // Issue 23, as a user has it: the remote user dev, three private images, waitForPulls,
    // an onCreateCommand of a few seconds (its own work, an `npm ci`), and the
    // Docker-in-Docker stand-in, which holds the entrypoint chain until its engine answers.
    let tb = testbed();
    let images = three_images().join(" ");
    let other = format!("{}/other/tools:stable", tb.get("BERTH_TB_REG2"));
    let ws = Workspace::custom(
        serde_json::json!({"images": images, "waitForPulls": true}),
        serde_json::json!({}),
        |config| {
            with_clock(config);
            config["onCreateCommand"] = format!("{}sleep 3", noted("onCreate")).into();
            config["updateContentCommand"] = noted("updateContent").into();
            config["postCreateCommand"] = format!(
                "{}docker image inspect -f '{{{{.Id}}}}' {images} > /tmp/postcreate.before 2>&1; echo rc=$? >> /tmp/postcreate.before; \
                 docker pull -q {other} > /tmp/postcreate.log 2>&1; echo rc=$? >> /tmp/postcreate.log",
                noted("postCreate")
            )
            .into();
        },
    );
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert!(
        said.contains("berth: postCreate: the pre-pulls")
            && said.contains("(3 pulled, 0 already present, 0 failed)"),
        "{said}"
    );
    // The user's postCreateCommand found every image, and pulled another private one with
    // the credentials berth wrote (through credHelpers).
    let before = ws.exec_ok(&["cat", "/tmp/postcreate.before"]);
    assert!(
        before.contains("rc=0") && before.matches("sha256:").count() == 3,
        "{before}"
    );
    let pulled = ws.exec_ok(&["cat", "/tmp/postcreate.log"]);
    assert!(pulled.contains("rc=0"), "{pulled}");
    let config: serde_json::Value =
        serde_json::from_str(&ws.exec_ok(&["cat", "/home/dev/.docker/config.json"])).unwrap();
    assert_eq!(config["credHelpers"][tb.get("BERTH_TB_REG2")], "berth");
    // The daemon is root's, with no secret in its environment.
    let pid = ws.exec_root(&["cat", "/var/lib/berth/daemon.lock"]);
    let environ = ws.exec_root(&["cat", &format!("/proc/{}/environ", pid.trim())]);
    assert!(!environ.contains("_CONTAINER_REGISTRY_"), "{environ}");
    assert_hooks_quick(&ws, "a fast engine");
}

#[test]
fn a_slow_engine_holds_up_no_hook_and_the_images_still_arrive_early() {
    // Issue 23. The stand-in's dockerd answers only after 20 s, and its entrypoint holds
    // the chain until then, berth's entrypoint with it: berth's first hooks run before its
    // daemon. They hand their phase over and return at once; the daemon, once started,
    // pulls as soon as the engine answers, while the user's onCreateCommand still runs
    // (here until the test has seen every pull done in berth's record, as a long `npm ci`
    // would), so that the images are there before the postCreate hook runs.
    let images = three_images();
    let list = images.join(" ");
    let hold = "/home/dev/hold-on-create";
    let ws = Workspace::custom(
        serde_json::json!({"images": list, "waitForPulls": true}),
        serde_json::json!({"startDelay": "20"}),
        |config| {
            with_clock(config);
            config["onCreateCommand"] = format!(
                "{}rm -f {hold}; mkfifo {hold}; echo user onCreateCommand: running until the test \"is done\"; read -r _ < {hold}",
                noted("onCreate")
            )
            .into();
            config["updateContentCommand"] = noted("updateContent").into();
            config["postCreateCommand"] = format!(
                "{}docker image inspect -f '{{{{.Id}}}}' {list} > /tmp/postcreate.before 2>&1; echo rc=$? >> /tmp/postcreate.before",
                noted("postCreate")
            )
            .into();
        },
    );
    let mut up = ws.spawn_up();
    let mut out = support::engine::Lines::read(up.stdout.take().unwrap());
    let mut log = support::engine::Lines::read(up.stderr.take().unwrap());
    log.wait_for(
        "user onCreateCommand: running until the test is done",
        Duration::from_secs(150),
    );
    // berth's record, as it grows (tail follows it with inotify), until every pull is done.
    let id = ws.container();
    let mut follow = Command::new("docker")
        .env("DOCKER_HOST", testbed().get("BERTH_TB_DOCKER_HOST"))
        .args(["exec", &id, "sh", "-c"])
        .arg("echo $$; exec tail -n +1 -F /var/lib/berth/events.jsonl 2>/dev/null")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut record = support::engine::Lines::read(follow.stdout.take().unwrap());
    let tail = record.wait_for("", Duration::from_secs(10));
    for _ in &images {
        record.wait_for("\"event\":\"pull-done\"", Duration::from_secs(120));
    }
    ws.exec_root(&["kill", tail.trim()]);
    let _ = follow.wait();
    ws.exec_root(&["sh", "-c", &format!("echo go > {hold}")]);
    let status = up.wait().unwrap();
    let said = format!("{}\n{}", out.rest(), log.rest());
    assert!(status.success(), "{said}");

    // The slow engine held the entrypoint chain: dockerd was started again at least once.
    let dind = ws.docker(&["logs", &id]);
    let dind = text(&dind);
    assert!(
        dind.contains("dockerd does not answer (round 1 of 5)")
            && dind.contains("dockerd answers (round"),
        "{dind}"
    );
    // No hook waited for it.
    assert!(
        said.contains("berth: onCreate: berth's daemon is not running yet (the container's entrypoint starts it"),
        "{said}"
    );
    assert_hooks_quick(&ws, "an engine that answers after 20 s");
    // The daemon did onCreate's work when it started (the phase handed over), and pulled
    // each image once the engine answered, before the postCreate hook ran.
    let events = container_events(&ws);
    let at = |i: usize| events[i]["at"].as_u64().unwrap();
    let find = |what: &str, phase: Option<&str>| {
        events
            .iter()
            .position(|e| e["event"] == what && phase.is_none_or(|p| e["phase"] == p))
            .unwrap_or_else(|| panic!("{what} {phase:?} in {events:#?}"))
    };
    let on_create = find("phase", Some("onCreate"));
    assert!(events[on_create]["ran_at"].is_u64(), "{events:#?}");
    let engine = find("engine-ready", None);
    let post_create = find("phase", Some("postCreate"));
    let post_create_hook = lifecycle_times(&ws)["berth hook postCreate"] / 1_000_000;
    let pulls = |what: &str| -> Vec<usize> {
        events
            .iter()
            .enumerate()
            .filter(|(_, e)| e["event"] == what)
            .map(|(i, _)| i)
            .collect()
    };
    let (started, done) = (pulls("pull-started"), pulls("pull-done"));
    assert_eq!((started.len(), done.len()), (3, 3), "{events:#?}");
    assert!(
        started.iter().all(|i| *i > engine) && done.iter().all(|i| *i < post_create),
        "{events:#?}"
    );
    assert!(
        done.iter().all(|i| u128::from(at(*i)) < post_create_hook),
        "every pull done before the postCreate hook started: {events:#?}"
    );
    println!(
        "an engine that answers after 20 s: the first pull started {} ms after the engine answered",
        at(started[0]) - at(engine)
    );
    assert!(
        said.contains("berth: postCreate: the pre-pulls had finished already (3 pulled, 0 already present, 0 failed)"),
        "{said}"
    );
    let before = ws.exec_ok(&["cat", "/tmp/postcreate.before"]);
    assert!(
        before.contains("rc=0") && before.matches("sha256:").count() == 3,
        "{before}"
    );
}

/// Issue 24: the Docker-in-Docker stand-in with a current engine, set up as Docker 29 sets
/// up a new install: Debian forky's docker.io with the containerd image store, refusing API
/// versions below 1.44.
#[test]
fn the_lifecycle_on_a_current_engine_with_the_containerd_image_store() {
    let tb = testbed();
    let (one, two) = (tb.get("BERTH_TB_REG1_TINY"), tb.get("BERTH_TB_REG2_TINY"));
    let ws = Workspace::custom(
        serde_json::json!({"images": format!("{one} {two}"), "waitForPulls": true}),
        serde_json::json!({"imageStore": "containerd", "minApiVersion": "1.44"}),
        |config| config["image"] = tb.get("BERTH_TB_IMAGE_DIND_MODERN").into(),
    );
    let up = ws.up(&[], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert_lifecycle_result(&ws, &said, "dev");
    // The engine inside is the current one (forky's docker.io is 28.5, API 1.51, as this is
    // written), set up as Docker 29 sets up a new install.
    let version = ws.exec_ok(&[
        "docker",
        "version",
        "-f",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
    ]);
    let (api, min) = version.trim().split_once(' ').unwrap();
    let minor = |v: &str| v.strip_prefix("1.").and_then(|m| m.parse::<u32>().ok());
    assert!(minor(api) >= Some(44) && min == "1.44", "{version}");
    let store = ws.exec_ok(&["docker", "info", "-f", "{{.DriverStatus}}"]);
    assert!(store.contains("io.containerd.snapshotter.v1"), "{store}");
    // berth says the platform it pulled and what it downloaded, which this store's progress
    // messages leave out for small layers (the CLI masks the registries, secrets' values, in
    // its log).
    let pulled: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("berth: postCreate: pulled "))
        .collect();
    assert!(
        pulled.len() == 2
            && pulled
                .iter()
                .all(|l| l.contains(" (linux/amd64, ") && !l.contains(" (linux/amd64, 0 B ")),
        "{said}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&ws.exec_ok(&["berth", "status", "--json"])).unwrap();
    assert_eq!(status["engine"]["api_version"], api, "{status:#}");
    for image in [one, two] {
        let p = status["pulls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["image"] == image)
            .unwrap_or_else(|| panic!("{image}: {status:#}"));
        assert!(
            p["platform"] == "linux/amd64" && p["bytes"].as_u64().unwrap() > 4096,
            "{p:#}"
        );
    }
}

/// The forms a secret could take in a file: as it is, base64 (alone, and as Docker's
/// `user:password`), and hex.
fn secret_forms(user: &str, secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        secret.to_string(),
        b64.encode(secret),
        b64.encode(format!("{user}:{secret}")),
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
    ]
}

#[test]
fn the_helper_store_under_the_cli_pulls_and_leaves_no_secret_in_a_prebuilds_snapshot() {
    // Issue 25, as a user has it: credentialStore helper with Docker-in-Docker under the Dev
    // Containers CLI, in a prebuild given the secrets with injectAt onCreate (the case where
    // a file store would put the logins into the snapshot), then the snapshot itself.
    let tb = testbed();
    let (one, two) = (tb.get("BERTH_TB_REG1_TINY"), tb.get("BERTH_TB_REG2_TINY"));
    let ws = Workspace::new(serde_json::json!({
        "images": one,
        "credentialStore": "helper",
        "injectAt": "onCreate",
    }));
    let up = ws.up(&["--prebuild"], true);
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    // Once berth's daemon has done the phases (a hook that ran before it handed them over),
    // the remote user's own pull of another private image goes through the helper.
    let waited = ws.exec(&["berth", "status", "--wait"]);
    assert!(waited.status.success(), "{}", text(&waited));
    let pulled = ws.exec(&["docker", "pull", two]);
    assert!(pulled.status.success(), "{}", text(&pulled));
    let config: serde_json::Value =
        serde_json::from_str(&ws.exec_ok(&["cat", "/home/dev/.docker/config.json"])).unwrap();
    for reg in [tb.get("BERTH_TB_REG1"), tb.get("BERTH_TB_REG2")] {
        assert_eq!(config["credHelpers"][reg], "berth", "{config}");
        assert!(config["auths"].get(reg).is_none(), "{config}");
    }
    // The snapshot: committed, a container made from it, its whole file system exported.
    let tag = ws.commit("helper-prebuilt");
    let created = ws.docker(&["create", &tag]);
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let export = ws.dir.path().join("snapshot.tar");
    let exported = ws.docker(&["export", "-o", &export.display().to_string(), &id]);
    ws.docker(&["rm", "-f", &id]);
    ws.docker(&["rmi", "-f", &tag]);
    assert!(exported.status.success(), "{}", text(&exported));
    // grep -F for every form of every secret in the whole archive; first, that it finds
    // what is there (the registries' names, in config.json).
    let grep = |patterns: &[String]| -> Option<i32> {
        let file = ws.dir.path().join("patterns");
        std::fs::write(&file, patterns.join("\n") + "\n").unwrap();
        let out = run(Command::new("grep").args([
            "-a",
            "-F",
            "-q",
            "-f",
            &file.display().to_string(),
            &export.display().to_string(),
        ]));
        std::fs::remove_file(&file).unwrap();
        out.status.code()
    };
    assert_eq!(
        grep(&[format!("\"{}\": \"berth\"", tb.get("BERTH_TB_REG2"))]),
        Some(0),
        "the snapshot holds the config with berth's credHelpers entry"
    );
    let mut secrets = Vec::new();
    for n in [1, 2] {
        secrets.extend(secret_forms(
            tb.get(&format!("BERTH_TB_REG{n}_USER")),
            tb.get(&format!("BERTH_TB_REG{n}_PASSWORD")),
        ));
    }
    secrets.extend(secret_forms(
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"),
    ));
    assert_eq!(
        grep(&secrets),
        Some(1),
        "no registry password or ECR secret key, raw, base64 or hex, in any file of the snapshot"
    );
}
