//! Issue 22: a soak. A hostile remote user repeats the attacks of `hostile_user.rs` at
//! random while hooks run (each swapping ECR access keys for a token with the test bed's
//! ECR API, and writing every registry's login), images are pulled into a private engine,
//! and a prober asks the daemon for its status every 50 ms. Every status request must be
//! answered within a second, every hook must finish, every pull must complete, and once
//! the attacks stop the config must hold every login. It reports the worst status latency.
//!
//! `BERTH_SOAK_SECONDS` sets its length (60 s by default, what `scripts/test` runs); from
//! 360 s on, the renewer's own renewals (5 minutes apart at the least) happen too, and are
//! counted.

mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::protocol::{Answer, Request};
use support::engine::TestEngine;
use support::lifecycle::*;
use support::*;

/// The attacks, each a shell script run as the remote user in their Docker folder (`$D`).
const ATTACKS: &[(&str, &str)] = &[
    (
        "berth's record made a FIFO",
        "mkfifo \"$D/f\" && mv -T \"$D/f\" \"$D/berth-managed.json\"",
    ),
    (
        "the config made a FIFO",
        "mkfifo \"$D/f\" && mv -T \"$D/f\" \"$D/config.json\"",
    ),
    (
        "the config linked to /dev/zero",
        "ln -sfn /dev/zero \"$D/c\" && mv -T \"$D/c\" \"$D/config.json\"",
    ),
    (
        "berth's entries dropped",
        "echo '{}' > \"$D/x\" && mv -T \"$D/x\" \"$D/config.json\"",
    ),
    (
        "berth's lock held for a second",
        "flock \"$D/.berth.lock\" timeout 1 tail -f /dev/null 2>/dev/null; true",
    ),
    ("the folder removed", "rm -rf \"$D\""),
];

/// What one soak saw.
#[derive(Default)]
struct Seen {
    probes: u64,
    worst_probe: Duration,
    probe_failures: Vec<String>,
    hooks: u64,
    worst_hook: Duration,
    hook_failures: Vec<String>,
    attacks: std::collections::BTreeMap<&'static str, u64>,
}

fn soak_seconds() -> u64 {
    std::env::var("BERTH_SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

/// The remote user's Docker folder, emptied and made again. A hook writing there at the
/// same moment can make one `rm -rf` fail (the user's own race with their hook): it is
/// tried again, a bounded number of times.
fn restore(dir: &Path) {
    let mut last = None;
    for _ in 0..20 {
        let out = run(Command::new("sh")
            .arg("-c")
            .arg("rm -rf \"$D\" && mkdir -p \"$D\"")
            .env("D", dir)
            .uid(REMOTE_UID)
            .gid(REMOTE_UID));
        if out.status.success() {
            return;
        }
        last = Some(text(&out));
    }
    panic!("the folder could not be made again: {last:?}");
}

#[test]
fn a_hostile_user_at_random_never_stops_the_daemons_work() {
    let engine = TestEngine::start();
    let tb = testbed();
    let images: Vec<String> = [
        tb.get("BERTH_TB_REG1_TINY"),
        tb.get("BERTH_TB_REG2_TINY"),
        &format!("{}/team/app:1.0", tb.get("BERTH_TB_REG1")),
        &format!("{}/other/tools:stable", tb.get("BERTH_TB_REG2")),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let c = Container::new(&[("BERTH_IMAGES", &images.join(" "))]);
    let home = c.root().join("home-nobody");
    std::fs::create_dir(&home).unwrap();
    nix::unistd::chown(&home, Some(REMOTE_UID.into()), Some(REMOTE_UID.into())).unwrap();
    let dir: PathBuf = home.join(".docker");
    restore(&dir);
    let mut secrets = both_registries();
    secrets.extend(registry_env(
        "ECR",
        &ecr_host("eu-west-1"),
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"),
    ));
    let endpoint = tb.get("BERTH_TB_ECR_ENDPOINT").to_string();
    let dir_var = dir.display().to_string();
    let hook = |phase: &str| -> std::process::Output {
        run(&mut c.hook_command(
            phase,
            &secrets,
            REMOTE_UID,
            &[
                ("DOCKER_CONFIG", &dir_var),
                ("AWS_ENDPOINT_URL_ECR", &endpoint),
            ],
        ))
    };
    c.entrypoint_with(&[
        ("DOCKER_HOST", &engine.host()),
        ("AWS_ENDPOINT_URL_ECR", &endpoint),
    ]);
    for phase in ["onCreate", "updateContent", "postCreate"] {
        let out = hook(phase);
        assert!(out.status.success(), "{phase}: {}", text(&out));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let socket = c.state().join("berth.sock");
    let length = Duration::from_secs(soak_seconds());
    std::thread::scope(|scope| {
        // The prober: a status request every 50 ms, each bounded at a second.
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let answer = berth::protocol::call(
                    &socket,
                    &Request::Status,
                    Duration::from_secs(1),
                    &mut |_, _| {},
                );
                let took = started.elapsed();
                let mut s = seen.lock().unwrap();
                s.probes += 1;
                s.worst_probe = s.worst_probe.max(took);
                if !matches!(answer, Ok(Answer::Status(_))) {
                    s.probe_failures.push(format!("{answer:?} after {took:?}"));
                }
                drop(s);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // The attacker: one attack at a time, at random, then the folder made sane again
        // half of the time (as a user fixing what they broke).
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let (name, script) = ATTACKS[fastrand::usize(..ATTACKS.len())];
                let _ = Command::new("sh")
                    .arg("-c")
                    .arg(script)
                    .env("D", &dir)
                    .uid(REMOTE_UID)
                    .gid(REMOTE_UID)
                    .output();
                *seen.lock().unwrap().attacks.entry(name).or_default() += 1;
                if fastrand::bool() {
                    restore(&dir);
                }
            }
        });
        // The hooks: postStart and postAttach in turn, each of which must finish.
        scope.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let phase = if n.is_multiple_of(2) {
                    "postStart"
                } else {
                    "postAttach"
                };
                n += 1;
                let started = Instant::now();
                let out = hook(phase);
                let took = started.elapsed();
                let mut s = seen.lock().unwrap();
                s.hooks += 1;
                s.worst_hook = s.worst_hook.max(took);
                if !out.status.success() {
                    s.hook_failures.push(text(&out));
                }
            }
        });
        // The soak's own length: the one timed wait, which measures nothing.
        std::thread::sleep(length);
        stop.store(true, Ordering::SeqCst);
    });

    // The attacks are over: the next hook puts every login in place.
    restore(&dir);
    let out = hook("postStart");
    assert!(out.status.success(), "{}", text(&out));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    for server in [
        tb.get("BERTH_TB_REG1").to_string(),
        tb.get("BERTH_TB_REG2").to_string(),
        ecr_host("eu-west-1"),
    ] {
        assert!(
            config["auths"][&server]["auth"].is_string(),
            "{server}: {config}"
        );
    }
    // Every pull completed.
    let status = c.status_when(|s| {
        s["pulls"]
            .as_array()
            .is_some_and(|p| p.len() == images.len() && p.iter().all(|p| p["state"] == "done"))
    });
    let events = c.events();
    let count = |kind: &str, id: &str| {
        events
            .iter()
            .filter(|e| e["event"] == kind && (id.is_empty() || e["id"] == id))
            .count()
    };
    let s = seen.lock().unwrap();
    println!(
        "soak of {} s: {} status requests, the slowest answered in {:.1} ms; {} hooks, the \
         slowest {:.2} s; attacks {:?}; ECR tokens written {}, renewals {}; pulls {}",
        length.as_secs(),
        s.probes,
        s.worst_probe.as_secs_f64() * 1000.0,
        s.hooks,
        s.worst_hook.as_secs_f64(),
        s.attacks,
        count("injected", "ECR"),
        count("renewed", ""),
        status["pulls"].as_array().map_or(0, Vec::len)
    );
    assert!(s.probe_failures.is_empty(), "{:#?}", s.probe_failures);
    assert!(s.hook_failures.is_empty(), "{:#?}", s.hook_failures);
    assert!(s.probes > 0 && s.hooks > 0);
    assert!(count("injected", "ECR") > 0, "no ECR token was written");
    if length >= Duration::from_secs(360) {
        assert!(count("renewed", "") > 0, "the renewer never renewed");
    }
}
