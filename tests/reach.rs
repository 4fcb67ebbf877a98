//! Reach: the packaged feature installs, and berth does its work, on the machines dev
//! containers run on: Debian 12 (the test bed's image), Debian 11 (glibc 2.31), an image
//! without glibc (musl, with busybox's `sh` running `install.sh`), and arm64 (the aarch64
//! binary under qemu: nothing here is arm64). Each runs `tests/reach/smoke.sh` in a fresh
//! container on the host network, against the test bed's registries and ECR API, with a
//! private engine for its pulls.

mod support;

use std::path::PathBuf;

use support::engine::TestEngine;
use support::*;

/// The staged feature folder, or a plain failure saying how to make it.
fn staged_feature() -> PathBuf {
    let dir = repo().join("target/feature/offline/src/berth");
    assert!(
        dir.join("berth-x86_64.gz").is_file() && dir.join("berth-aarch64.gz").is_file(),
        "{} is missing its binaries: run scripts/package-feature (scripts/test does)",
        dir.display()
    );
    dir
}

/// A built binary of the package, as scripts/build-binaries left it.
fn dist(arch: &str) -> PathBuf {
    let bin = repo().join("target/dist").join(format!("berth-{arch}"));
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/package-feature",
        bin.display()
    );
    bin
}

/// What a smoke run said, split at its "== STEP" lines.
struct Smoke {
    said: String,
}

impl Smoke {
    /// The output of one step (between its marker and the next).
    fn step(&self, name: &str) -> &str {
        let marker = format!("== {name}\n");
        let start = self
            .said
            .find(&marker)
            .unwrap_or_else(|| panic!("no step {name} in:\n{}", self.said))
            + marker.len();
        let rest = &self.said[start..];
        &rest[..rest.find("\n== ").map_or(rest.len(), |i| i + 1)]
    }

    /// The JSON document a step printed after `skip` lines.
    fn json(&self, name: &str, skip: usize) -> serde_json::Value {
        let text: String = self.step(name).lines().skip(skip).collect();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: step {name}:\n{text}"))
    }
}

/// Runs the smoke checks in a fresh container of `image` (on the test bed's engine), with
/// the aarch64 binary under qemu when `emulate`. The secrets: registry 1 by address,
/// registry 2 as `localhost:PORT` (name resolution in the image), and ECR through the test
/// bed's ECR API; the image to pre-pull is registry 1's tiny image, into `engine`.
fn smoke(image: &str, emulate: bool, engine: &TestEngine) -> Smoke {
    let tb = testbed();
    let root = scratch();
    let reg2_port = tb.get("BERTH_TB_REG2").rsplit(':').next().unwrap();
    let mut vars = registry_env(
        "REG1",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    );
    vars.extend(registry_env(
        "LOCAL",
        &format!("localhost:{reg2_port}"),
        tb.get("BERTH_TB_REG2_USER"),
        tb.get("BERTH_TB_REG2_PASSWORD"),
    ));
    vars.extend(registry_env(
        "ECR",
        &ecr_host("eu-west-1"),
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"),
    ));
    vars.push((
        "AWS_ENDPOINT_URL_ECR".into(),
        tb.get("BERTH_TB_ECR_ENDPOINT").into(),
    ));
    vars.push(("IMAGES".into(), tb.get("BERTH_TB_REG1_TINY").into()));
    let mount = |from: PathBuf, to: &str| format!("{}:{to}:ro", from.display());
    let mut cmd = docker(root.path(), &root.path().join("docker"));
    cmd.args(["run", "--rm", "--network", "host"])
        .args(["-v", &mount(staged_feature(), "/feature")])
        .args([
            "-v",
            &mount(repo().join("tests/reach/smoke.sh"), "/smoke.sh"),
        ])
        .args([
            "-v",
            &format!("{}:/var/run/docker.sock", engine.socket().display()),
        ]);
    if emulate {
        cmd.args([
            "-v",
            &mount(
                PathBuf::from(tb.get("BERTH_TB_QEMU_AARCH64")),
                "/emu/qemu-aarch64-static",
            ),
        ])
        .args(["-v", &mount(dist("aarch64"), "/emu/berth-aarch64")])
        .args(["-e", "EMULATE=/emu"]);
    }
    // Values through the docker CLI's environment, never its arguments.
    for (name, value) in &vars {
        cmd.args(["-e", name]).env(name, value);
    }
    let out = run(cmd.args([image, "sh", "/smoke.sh"]));
    let said = text(&out);
    assert!(
        out.status.success() && said.contains("== finished"),
        "{said}"
    );
    Smoke { said }
}

/// What every smoke run must show: the version, inject's config for root with all three
/// registries, the hooks' config for dev (dev's, 0600), the pre-pull in the engine.
fn assert_worked(smoke: &Smoke, engine: &TestEngine, executable: &str) {
    let tb = testbed();
    let reg2_port = tb.get("BERTH_TB_REG2").rsplit(':').next().unwrap();
    let local = format!("localhost:{reg2_port}");
    assert_eq!(
        smoke.step("version").trim(),
        format!("berth {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        smoke
            .step("install")
            .contains("installed for remote user dev"),
        "{}",
        smoke.said
    );
    let reg1_auth = format!(
        "{}:{}",
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD")
    );
    assert!(
        smoke.step("inject").contains("3 registries for user root"),
        "{}",
        smoke.said
    );
    for config in [
        smoke.json("root's config", 0),
        smoke.json("dev's config", 1),
    ] {
        assert_eq!(
            decoded_auth(&config, tb.get("BERTH_TB_REG1")).as_deref(),
            Some(reg1_auth.as_str()),
            "{config}"
        );
        assert!(
            config["auths"].get(&local).is_some() || config["credHelpers"].get(&local).is_some(),
            "{local} in {config}"
        );
        assert!(
            decoded_auth(&config, &ecr_host("eu-west-1")).is_some_and(|a| a.starts_with("AWS:")),
            "an ECR token in {config}"
        );
    }
    assert_eq!(smoke.step("dev's config").lines().next(), Some("dev 600"));
    let status = smoke.step("status");
    assert!(
        status.contains(&format!("daemon command line: {executable} ")),
        "{status}"
    );
    assert!(status.contains("postCreate hook ran (uid 1000"), "{status}");
    assert!(
        engine
            .repo_digests(tb.get("BERTH_TB_REG1_TINY"))
            .is_some_and(|d| d.contains("sha256:")),
        "the pre-pull is in the engine: {status}"
    );
}

#[test]
fn debian_12() {
    let engine = TestEngine::start();
    let smoke = smoke(testbed().get("BERTH_TB_IMAGE_DEBIAN"), false, &engine);
    assert_worked(&smoke, &engine, "/usr/local/bin/berth daemon");
}

#[test]
fn debian_11_with_glibc_2_31() {
    let engine = TestEngine::start();
    let smoke = smoke(testbed().get("BERTH_TB_IMAGE_BULLSEYE"), false, &engine);
    assert_worked(&smoke, &engine, "/usr/local/bin/berth daemon");
}

#[test]
fn musl_without_glibc_under_busybox_sh() {
    let tb = testbed();
    let image = tb.get("BERTH_TB_IMAGE_MUSL");
    // The image is what it claims: busybox's sh, musl's loader, no glibc.
    let probe = run(docker(scratch().path(), &scratch().path().join("d")).args([
        "run",
        "--rm",
        image,
        "sh",
        "-c",
        "readlink /bin/sh; ls /lib; ls /lib/*-linux-gnu /lib64 2>&1 || true",
    ]));
    let said = text(&probe);
    assert!(said.contains("/bin/busybox"), "{said}");
    assert!(said.contains("ld-musl-"), "{said}");
    assert!(!said.contains("libc.so.6"), "{said}");

    let engine = TestEngine::start();
    let smoke = smoke(image, false, &engine);
    assert_worked(&smoke, &engine, "/usr/local/bin/berth daemon");
}

#[test]
fn arm64_under_emulation() {
    // The binary is what it claims: AArch64 (e_machine 183), static (no interpreter).
    let elf = std::fs::read(dist("aarch64")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183);
    assert!(
        !elf.windows(b"ld-linux".len()).any(|w| w == b"ld-linux"),
        "no dynamic loader named"
    );

    let engine = TestEngine::start();
    let smoke = smoke(testbed().get("BERTH_TB_IMAGE_DEBIAN"), true, &engine);
    assert_worked(
        &smoke,
        &engine,
        "/emu/qemu-aarch64-static /emu/berth-aarch64 daemon",
    );
}

/// install.sh on a machine berth has no binary for, with `uname -m` saying `machine`: a
/// shell function, since busybox's `sh` runs its own `uname` before any on `PATH`.
fn install_on(image: &str, machine: &str) -> String {
    let root = scratch();
    let out = run(docker(root.path(), &root.path().join("docker")).args([
        "run",
        "--rm",
        "-v",
        &format!("{}:/feature:ro", staged_feature().display()),
        image,
        "sh",
        "-c",
        &format!(
            "(uname() {{ echo {machine}; }}; cd /feature && . ./install.sh); echo rc=$?; ls /usr/local/bin"
        ),
    ]));
    text(&out)
}

#[test]
fn an_unsupported_machine_gets_a_precise_message_and_nothing_installed() {
    let tb = testbed();
    let supported = "supported: Linux on x86_64 (amd64) or aarch64 (arm64), with any libc";
    for (image, libc) in [
        ("BERTH_TB_IMAGE_DEBIAN", "glibc 2.36"),
        ("BERTH_TB_IMAGE_BULLSEYE", "glibc 2.31"),
        ("BERTH_TB_IMAGE_MUSL", "musl"),
    ] {
        let said = install_on(tb.get(image), "riscv64");
        assert!(
            said.contains(&format!(
                "berth feature: this image runs on riscv64 ({libc}), for which berth has no binary; {supported}"
            )),
            "{said}"
        );
        assert!(said.contains("rc=1"), "{said}");
        assert!(!said.contains("berth\n"), "nothing installed: {said}");
    }
}
