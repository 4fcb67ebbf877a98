//! Issue 24: the platform a user asks for is the platform they get, on every engine set-up
//! (docker.io 20.10, and 28.5 with either image store), and the sizes berth says are the
//! registry's whatever the engine reports. The test bed's registry 1 serves team/tiny:1 (an
//! amd64 image alone), team/arm:index (an index with an arm64 image alone) and
//! team/multi:1 (an index of an amd64 and an arm64 image); the machines are x86_64, so
//! linux/arm64 is another platform than the engine's own.

mod support;

use std::path::Path;
use std::process::Output;

use support::engine::*;
use support::lifecycle::*;
use support::*;

fn reg(n: u8, what: &str) -> String {
    testbed().get(&format!("BERTH_TB_REG{n}{what}")).to_string()
}

/// The engines' own platform on these machines.
fn native() -> &'static str {
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "the platform tests take linux/arm64 for a platform other than the engine's: run them on x86_64"
    );
    "linux/amd64"
}

/// `berth pull IMAGE` into `engine` with registry 1's secrets, asking for `platform`.
fn pull(root: &Path, engine: &TestEngine, platform: Option<&str>, image: &str) -> Output {
    let mut cmd = berth(root);
    cmd.env("DOCKER_HOST", engine.host())
        .envs(both_registries())
        .args(["pull", image]);
    if let Some(p) = platform {
        cmd.env("BERTH_PLATFORM", p);
    }
    run(&mut cmd)
}

/// Whether the engine holds `image` for `platform`: the platform of its one image (20.10),
/// or one of those it holds the image for (28.5, whose CLI inspects one platform of it).
fn holds_for(engine: &TestEngine, image: &str, platform: &str) -> bool {
    let out = match engine.setup {
        Setup::Old => run(engine.docker().args([
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}}",
            image,
        ])),
        Setup::Modern | Setup::ModernContainerd => run(engine.docker().args([
            "image",
            "inspect",
            "--platform",
            platform,
            "-f",
            "{{.Os}}/{{.Architecture}}",
            image,
        ])),
    };
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == platform
}

/// The sum of the sizes of an image's layers, as registry 1's manifest lists them.
fn registry_layer_bytes(image: &str) -> u64 {
    let (repo, tag) = image
        .strip_prefix(&format!("{}/", reg(1, "")))
        .unwrap()
        .rsplit_once(':')
        .unwrap();
    let out = run(std::process::Command::new("curl")
        .args(["-sf", "-u"])
        .arg(format!("{}:{}", reg(1, "_USER"), reg(1, "_PASSWORD")))
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("http://{}/v2/{repo}/manifests/{tag}", reg(1, ""))));
    assert!(out.status.success(), "{}", text(&out));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum()
}

crate::on_every_engine! {
    /// The first case: an image for amd64 alone, asked for linux/arm64, was
    /// "pulled" and berth exited 0.
    fn a_single_image_of_another_platform_is_refused_plainly(setup) {
        native();
        let root = scratch();
        let engine = TestEngine::start_on(setup);
        let image = reg(1, "_TINY");
        let out = pull(root.path(), &engine, Some("linux/arm64"), &image);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains(&format!(
                "pull of {image} failed: it is an image for linux/amd64 alone (not an index of images for several platforms), and the platform option asks for linux/arm64; set the platform option to linux/amd64"
            )),
            "{said}"
        );
        assert!(!said.contains("check that"), "no hint that the image may not exist: {said}");
        assert!(engine.repo_digests(&image).is_none(), "nothing pulled");
    }
}

crate::on_every_engine! {
    fn an_index_without_the_platform_is_refused_plainly(setup) {
        let root = scratch();
        let engine = TestEngine::start_on(setup);
        let image = reg(1, "_MULTI");
        let out = pull(root.path(), &engine, Some("linux/riscv64"), &image);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains(&format!(
                "pull of {image} failed: {} has no linux/riscv64 image of it: its index has linux/amd64, linux/arm64; set the platform option to one of those",
                reg(1, "")
            )),
            "{said}"
        );
        assert!(!said.contains("check that"), "{said}");
        assert!(engine.repo_digests(&image).is_none(), "nothing pulled");
    }
}

crate::on_every_engine! {
    /// `holds()` compared digests only: with the index's amd64 image held, a pull for
    /// linux/arm64 was reported done at once.
    fn an_image_held_for_another_platform_is_not_taken_for_the_one_asked(setup) {
        let root = scratch();
        let engine = TestEngine::start_on(setup);
        let image = reg(1, "_MULTI");
        let out = pull(root.path(), &engine, None, &image);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("({}, ", native())),
            "without platform, the engine's own, said: {}",
            text(&out)
        );
        assert!(holds_for(&engine, &image, native()));
        let out = pull(root.path(), &engine, Some("linux/arm64"), &image);
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("(linux/arm64, "), "{said}");
        assert!(!said.contains("(linux/arm64, 0 B"), "pulled, not taken as held: {said}");
        assert!(holds_for(&engine, &image, "linux/arm64"), "{said}");
    }
}

crate::on_every_engine! {
    fn an_index_with_both_gives_the_platform_asked_and_says_so_before_and_after_a_restart(setup) {
        let engine = TestEngine::start_on(setup);
        let image = reg(1, "_MULTI");
        let c = Container::new(&[
            ("BERTH_IMAGES", &image),
            ("BERTH_PLATFORM", "linux/arm64"),
            ("BERTH_WAIT_FOR_PULLS", "true"),
            ("BERTH_WAIT_FOR_DOCKER", "true"),
        ]);
        let start = || c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
        start();
        let out = c.hook("postCreate", &both_registries());
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{said}");
        assert!(said.contains(&format!("pulled {image} (linux/arm64, ")), "{said}");
        assert!(holds_for(&engine, &image, "linux/arm64"));
        let status = c.status();
        assert_eq!(status["pulls"][0]["platform"], "linux/arm64", "{status:#}");
        let shown = text(&run(c.berth().arg("status")));
        assert!(shown.contains("  for linux/arm64  "), "{shown}");
        // After a restart, the daemon finds it held for that platform.
        c.stop_daemon(nix::sys::signal::Signal::SIGTERM);
        start();
        let out = c.hook("postStart", &both_registries());
        assert!(out.status.success(), "{}", text(&out));
        let events = wait_for_events(&c, |e| {
            e.iter()
                .any(|e| e["event"] == "pull-done" && e["already_present"] == true)
        });
        let held = events
            .iter()
            .find(|e| e["event"] == "pull-done" && e["already_present"] == true)
            .unwrap();
        assert_eq!(held["platform"], "linux/arm64", "{held:#}");
    }
}

crate::on_every_engine! {
    /// The containerd image store sends a small layer's "Download complete" without counts:
    /// berth said `pulled … (0 B in 0.3 s)` of a real download.
    fn the_sizes_said_are_the_registrys_whatever_the_engine_reports(setup) {
        let engine = TestEngine::start_on(setup);
        let images = [reg(1, "_TINY"), format!("{}/team/app:1.0", reg(1, ""))];
        let c = Container::new(&[
            ("BERTH_IMAGES", &images.join(" ")),
            ("BERTH_WAIT_FOR_PULLS", "true"),
            ("BERTH_WAIT_FOR_DOCKER", "true"),
        ]);
        c.entrypoint_with(&[("DOCKER_HOST", &engine.host())]);
        let out = c.hook("postCreate", &both_registries());
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{said}");
        let events = c.events();
        for image in &images {
            let bytes = registry_layer_bytes(image);
            let done = events
                .iter()
                .find(|e| e["event"] == "pull-done" && e["image"] == image.as_str())
                .unwrap_or_else(|| panic!("{image} done: {events:#?}"));
            assert_eq!(done["bytes"], bytes, "{image}: {done:#}");
            assert!(
                said.contains(&format!(
                    "pulled {image} ({}, {} in ",
                    native(),
                    berth::status::human_bytes(bytes)
                )),
                "{said}"
            );
        }
    }
}

crate::on_every_engine! {
    /// Without a platform asked, the engine pulls its own, as always; a name without an
    /// image for it fails as the engine says, with a hint that is true (the name exists).
    fn an_index_without_the_engines_platform_gets_a_true_hint(setup) {
        let root = scratch();
        let engine = TestEngine::start_on(setup);
        let image = reg(1, "_ARM_INDEX");
        let out = pull(root.path(), &engine, None, &image);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains(&format!(
                "{image} exists on {} but has no image for the engine's platform, {} (it has linux/arm64): set the platform option to one it has",
                reg(1, ""),
                native()
            )),
            "{said}"
        );
        assert!(!said.contains("check that"), "{said}");
    }
}
