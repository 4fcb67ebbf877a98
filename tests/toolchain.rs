//! Issue 21: the project's own installation of the build toolchain works on a machine
//! nobody prepared. `scripts/install-build-tools` runs in a fresh Debian 12 container (the
//! test bed's base image: no package lists at all), with the apt sources and CA bundle of
//! a machine of this kind (`tests/toolchain/in-container.sh`), and must end with the
//! versions the build needs: a Rust at least Cargo.toml's `rust-version`, the standard
//! library's sources of the same version, and the pinned zig and cargo-zigbuild. Stale
//! package lists must not matter; a machine that cannot get a Rust new enough is told what
//! it has, what is needed and what to run, before anything too old is installed.

mod support;

use std::path::PathBuf;

use support::*;

/// Cargo.toml's rust-version, as cargo gives it to the crate.
const FLOOR: &str = env!("CARGO_PKG_RUST_VERSION");

/// The first `a.b.c` in `text`, as numbers.
fn version_in(text: &str) -> Option<(u32, u32, u32)> {
    text.split(|c: char| !c.is_ascii_digit() && c != '.')
        .find_map(|word| {
            let mut parts = word.split('.').map(|p| p.parse::<u32>().ok());
            match (parts.next(), parts.next(), parts.next()) {
                (Some(Some(a)), Some(Some(b)), Some(Some(c))) => Some((a, b, c)),
                _ => None,
            }
        })
}

/// A version pinned in scripts/install-build-tools (`NAME=VERSION`).
fn pinned(name: &str) -> String {
    let script = std::fs::read_to_string(repo().join("scripts/install-build-tools")).unwrap();
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("scripts/install-build-tools pins no {name}"))
        .to_string()
}

/// What one run in a container said: the install's own output and the versions after.
struct Run {
    said: String,
}

impl Run {
    /// The value of a `name=value` line.
    fn get(&self, name: &str) -> &str {
        let prefix = format!("{name}=");
        self.said
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {name}= line in:\n{}", self.said))
    }

    /// The exit code of scripts/install-build-tools.
    fn exit(&self) -> i32 {
        self.get_line("== exit ")
            .parse()
            .unwrap_or_else(|_| panic!("no exit code in:\n{}", self.said))
    }

    fn get_line(&self, prefix: &str) -> &str {
        self.said
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or("")
    }

    /// The install's own output (between "== install" and "== exit").
    fn install_output(&self) -> &str {
        let start = self.said.find("== install\n").map_or(0, |i| i + 11);
        let end = self.said.find("== exit").unwrap_or(self.said.len());
        &self.said[start..end]
    }
}

/// Runs the installation in a fresh container with package lists as `lists` says.
fn install_in_container(lists: &str) -> Run {
    let tb = testbed();
    let root = scratch();
    let sources = PathBuf::from("/etc/apt/sources.list.d/debian.sources");
    assert!(
        sources.is_file(),
        "this machine has no {}: the test gives the container the host's Debian sources",
        sources.display()
    );
    let ca = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
    let mount = |from: &std::path::Path, to: &str| format!("{}:{to}:ro", from.display());
    let mut cmd = docker(root.path(), &root.path().join("docker"));
    cmd.args(["run", "--rm", "--network", "host"])
        .args(["-v", &mount(&repo().join("scripts"), "/src/scripts")])
        .args(["-v", &mount(&repo().join("Cargo.toml"), "/src/Cargo.toml")])
        .args([
            "-v",
            &mount(
                &repo().join("tests/toolchain/in-container.sh"),
                "/run/host/in-container.sh",
            ),
        ])
        .args(["-v", &mount(&sources, "/run/host/debian.sources")])
        // The host's CA bundle, not /etc/ssl/certs: installing ca-certificates writes there.
        .args(["-v", &mount(&ca, "/run/host/ca.crt")])
        .args(["-e", "PIP_CERT=/run/host/ca.crt"])
        .args(["-e", "SSL_CERT_FILE=/run/host/ca.crt"])
        .args(["-e", &format!("LISTS={lists}")])
        .args([
            tb.get("BERTH_TB_IMAGE_DEBIAN"),
            "bash",
            "/run/host/in-container.sh",
        ]);
    let out = run(&mut cmd);
    let said = text(&out);
    assert!(out.status.success(), "the container failed: {said}");
    Run { said }
}

/// What a successful install must end with.
fn assert_toolchain_complete(run: &Run) {
    assert_eq!(
        run.exit(),
        0,
        "scripts/install-build-tools failed:\n{}",
        run.said
    );
    let floor = version_in(FLOOR).unwrap();
    for tool in ["rustc", "cargo"] {
        let found = version_in(run.get(tool))
            .unwrap_or_else(|| panic!("{tool} does not run:\n{}", run.said));
        assert!(
            found >= floor,
            "{tool} is {found:?}, below rust-version {FLOOR}:\n{}",
            run.said
        );
    }
    assert_eq!(
        run.get("rust-web-src"),
        run.get("rustc-web"),
        "the standard library's sources are not the compiler's version"
    );
    assert_eq!(run.get("zig"), pinned("ZIGLANG_VERSION"));
    assert!(
        run.get("cargo-zigbuild")
            .ends_with(&pinned("ZIGBUILD_VERSION")),
        "{}",
        run.get("cargo-zigbuild")
    );
    for tool in ["readelf", "jq"] {
        assert!(
            !run.get(tool).is_empty(),
            "{tool} is missing:\n{}",
            run.said
        );
    }
    assert!(
        run.install_output()
            .contains(&format!("berth needs {FLOOR} or newer")),
        "the install names no versions:\n{}",
        run.said
    );
}

#[test]
fn a_clean_debian_12_without_package_lists_gets_the_whole_toolchain() {
    let run = install_in_container("none");
    assert_toolchain_complete(&run);
}

#[test]
fn stale_package_lists_are_refreshed_before_anything_is_installed() {
    let run = install_in_container("stale");
    // The lists really were stale: they offered the main suite's older Rust.
    let before = version_in(run.get("candidate-before")).expect("a candidate before");
    assert!(
        before < version_in(FLOOR).unwrap(),
        "the stale lists already offered {before:?}; the case tests nothing:\n{}",
        run.said
    );
    assert_toolchain_complete(&run);
}

#[test]
fn a_machine_without_a_new_enough_rust_is_told_what_it_has_needs_and_runs() {
    let run = install_in_container("main");
    assert_ne!(
        run.exit(),
        0,
        "it succeeded without a Rust new enough:\n{}",
        run.said
    );
    let said = run.install_output();
    let errors: Vec<&str> = said.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors.len(),
        1,
        "one message, not {}:\n{said}",
        errors.len()
    );
    let error = errors[0];
    let found = run.get("candidate-before");
    for part in [
        format!("rustc-web: not installed, the package lists offer {found}"),
        format!("{FLOOR} or newer needed"),
        "bookworm-security".to_string(),
        "apt-get update && apt-get install -y rustc-web cargo-web rust-web-src".to_string(),
    ] {
        assert!(error.contains(&part), "the message lacks {part:?}: {error}");
    }
    // It said so before installing anything: no Rust too old to build berth was installed.
    for package in ["rustc-web", "cargo-web", "rust-web-src"] {
        assert_eq!(
            run.get(package),
            "",
            "{package} was installed though too old:\n{}",
            run.said
        );
    }
}
