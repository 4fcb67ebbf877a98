//! Issue 3: `berth inject` writes Docker's config so that the real docker CLI pulls from
//! private registries, keeps everything else, writes safely, and refuses bad input with a
//! plain message.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use support::*;

/// `berth inject` with these variables and arguments.
fn inject(root: &Path, vars: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = berth(root);
    cmd.arg("inject").args(args).envs(vars.iter().cloned());
    run(&mut cmd)
}

/// `docker pull -q` of an image with the config in `config`.
fn docker_pull(root: &Path, config: &Path, image: &str) -> Output {
    run(docker(root, config).args(["pull", "-q", image]))
}

fn config_dir(root: &Path) -> std::path::PathBuf {
    root.join("home/.docker")
}

fn read_config(root: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(config_dir(root).join("config.json")).unwrap()).unwrap()
}

#[test]
fn private_pulls_fail_before_inject_and_succeed_after_for_both_registries() {
    let tb = testbed();
    let dir = scratch();
    let root = dir.path();
    bin_dir(root, true, &[]);
    let config = config_dir(root);
    for n in ["1", "2"] {
        let image = tb.get(&format!("BERTH_TB_REG{n}_TINY"));
        let out = docker_pull(root, &config, image);
        assert!(
            !out.status.success(),
            "pulled {image} without credentials: {}",
            text(&out)
        );
        assert!(
            text(&out).contains("no basic auth credentials") || text(&out).contains("unauthorized"),
            "{}",
            text(&out)
        );
    }
    let out = inject(root, &both_registries(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("REG1") && stdout.contains(tb.get("BERTH_TB_REG1")),
        "{stdout}"
    );
    assert!(
        stdout.contains("REG2") && stdout.contains(tb.get("BERTH_TB_REG2")),
        "{stdout}"
    );
    for n in ["1", "2"] {
        let image = tb.get(&format!("BERTH_TB_REG{n}_TINY"));
        let out = docker_pull(root, &config, image);
        assert!(out.status.success(), "{image}: {}", text(&out));
    }
    // The folder was created private, the file is private.
    assert_eq!(std::fs::metadata(&config).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        std::fs::metadata(config.join("config.json"))
            .unwrap()
            .mode()
            & 0o777,
        0o600
    );
}

/// A credential store like the ones IDEs install: it knows nothing, as the host's store
/// would not know the test registries.
const EMPTY_STORE: &str = "#!/bin/sh\ncat >/dev/null\ncase \"$1\" in get) echo 'credentials not found in native keychain'; exit 1;; list) echo '{}';; esac\n";

#[test]
fn pulls_work_over_a_config_with_other_entries_unknown_keys_and_a_default_store() {
    let tb = testbed();
    let dir = scratch();
    let root = dir.path();
    bin_dir(root, true, &[("docker-credential-ide", EMPTY_STORE)]);
    let config = config_dir(root);
    std::fs::create_dir_all(&config).unwrap();
    let original = serde_json::json!({
        "auths": {"other.example.com:5000": {"auth": "dXNlcjpwYXNz", "email": "me@example.com"}},
        "credsStore": "ide",
        "credHelpers": {"gcr.io": "gcloud"},
        "psFormat": "table {{.ID}}\\t{{.Names}}",
        "plugins": {"x": {"y": [1, 2, {"z": null}]}},
        "currentContext": "default"
    });
    std::fs::write(
        config.join("config.json"),
        serde_json::to_vec_pretty(&original).unwrap(),
    )
    .unwrap();
    for n in ["1", "2"] {
        let out = docker_pull(root, &config, tb.get(&format!("BERTH_TB_REG{n}_TINY")));
        assert!(
            !out.status.success(),
            "the default store knows nothing: {}",
            text(&out)
        );
    }
    let out = inject(root, &both_registries(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    for n in ["1", "2"] {
        let out = docker_pull(root, &config, tb.get(&format!("BERTH_TB_REG{n}_TINY")));
        assert!(out.status.success(), "{}", text(&out));
    }
    let after = read_config(root);
    for key in ["credsStore", "psFormat", "plugins", "currentContext"] {
        assert_eq!(after[key], original[key], "{key} kept");
    }
    assert_eq!(
        after["auths"]["other.example.com:5000"],
        original["auths"]["other.example.com:5000"]
    );
    assert_eq!(after["credHelpers"]["gcr.io"], "gcloud");
    assert_eq!(after["credHelpers"][tb.get("BERTH_TB_REG1")], "berth");
    // The helper answers the docker CLI's question exactly as the CLI asks it.
    let out = run_with_stdin(
        std::process::Command::new(root.join("bin/docker-credential-berth"))
            .arg("get")
            .env("DOCKER_CONFIG", &config),
        tb.get("BERTH_TB_REG2").as_bytes(),
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["Username"], tb.get("BERTH_TB_REG2_USER"));
    assert_eq!(answer["Secret"], tb.get("BERTH_TB_REG2_PASSWORD"));
}

#[test]
fn a_default_store_without_berths_helper_still_lets_docker_pull() {
    // Issue 11: standalone `berth inject`, an IDE's default credsStore that knows nothing of
    // berth's registries, and no docker-credential-berth installed.
    let tb = testbed();
    let dir = scratch();
    let root = dir.path();
    bin_dir(root, false, &[("docker-credential-ide", EMPTY_STORE)]);
    let config = config_dir(root);
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.json"), r#"{"credsStore": "ide"}"#).unwrap();
    let out = inject(root, &both_registries(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("warning"), "{}", text(&out));
    let after = read_config(root);
    assert_eq!(after["credsStore"], "ide", "the user's store is kept");
    assert_eq!(
        after["credHelpers"][tb.get("BERTH_TB_REG1")],
        "",
        "the empty helper: the docker CLI reads auths for this host"
    );
    for n in ["1", "2"] {
        let out = docker_pull(root, &config, tb.get(&format!("BERTH_TB_REG{n}_TINY")));
        assert!(out.status.success(), "{}", text(&out));
    }
    // With credentialHelper=never berth leaves credHelpers alone, and says what follows.
    let dir = scratch();
    let root = dir.path();
    bin_dir(root, false, &[("docker-credential-ide", EMPTY_STORE)]);
    std::fs::create_dir_all(config_dir(root)).unwrap();
    std::fs::write(
        config_dir(root).join("config.json"),
        r#"{"credsStore": "ide"}"#,
    )
    .unwrap();
    let mut vars = both_registries();
    vars.push(("BERTH_CREDENTIAL_HELPER".into(), "never".into()));
    let out = inject(root, &vars, &[]);
    assert!(
        text(&out).contains("credsStore (ide)") && text(&out).contains("credentialHelper"),
        "{}",
        text(&out)
    );
    assert!(read_config(root).get("credHelpers").is_none());
}

#[test]
fn passwords_of_any_characters_reach_the_registry_exactly() {
    let tb = testbed();
    let dir = scratch();
    let root = dir.path();
    bin_dir(root, true, &[]);
    let symbols = tb.decoded("BERTH_TB_REG1_SYMBOLS_PASSWORD_B64");
    let unicode = tb.decoded("BERTH_TB_REG2_UNICODE_PASSWORD_B64");
    assert!(
        symbols.starts_with(' ')
            && symbols.contains('"')
            && symbols.contains('\\')
            && symbols.contains(':')
    );
    assert!(unicode.contains('🔑') && unicode.contains(':'));
    let mut vars = registry_env(
        "SYM",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_SYMBOLS_USER"),
        &symbols,
    );
    vars.extend(registry_env(
        "UNI",
        tb.get("BERTH_TB_REG2"),
        tb.get("BERTH_TB_REG2_UNICODE_USER"),
        &unicode,
    ));
    let long_token: String = (0..4096)
        .map(|i| char::from(b'!' + (i % 90) as u8))
        .collect();
    vars.extend(registry_env(
        "LONG",
        "long.example.com",
        "token-user",
        &long_token,
    ));
    let out = inject(root, &vars, &[]);
    assert!(out.status.success(), "{}", text(&out));
    for n in ["1", "2"] {
        let out = docker_pull(
            root,
            &config_dir(root),
            tb.get(&format!("BERTH_TB_REG{n}_TINY")),
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    // The registry only checks a bcrypt hash (72 bytes); the config holds the whole token.
    assert_eq!(
        decoded_auth(&read_config(root), "long.example.com"),
        Some(format!("token-user:{long_token}"))
    );
}

#[test]
fn writes_are_owned_private_and_skipped_when_nothing_changed() {
    let dir = scratch();
    let root = dir.path();
    bin_dir(root, true, &[]);
    // Written for another user (berth runs as root here), in a folder of our choosing
    // inside one of that user's: berth writes as that user.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = root.join("nobody-home");
    std::fs::create_dir(&home).unwrap();
    nix::unistd::chown(&home, Some(65534.into()), Some(65534.into())).unwrap();
    let target = home.join("docker");
    let for_nobody = [
        "--user",
        "nobody",
        "--docker-config",
        target.to_str().unwrap(),
    ];
    let out = inject(root, &both_registries(), &for_nobody);
    assert!(out.status.success(), "{}", text(&out));
    let file = target.join("config.json");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o600));
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), 65534);
    assert_eq!(
        std::fs::metadata(target.join("berth-managed.json"))
            .unwrap()
            .uid(),
        65534
    );
    // Run again: nothing written, same inode and time.
    let (ino, mtime) = (meta.ino(), meta.mtime_nsec());
    let out = inject(root, &both_registries(), &for_nobody);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already up to date"),
        "{}",
        text(&out)
    );
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.ino(), meta.mtime_nsec()), (ino, mtime));
    // A file someone made world-readable is made private again, even with nothing to write.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    inject(root, &both_registries(), &for_nobody);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn a_symlinked_config_is_written_at_its_target() {
    let dir = scratch();
    let root = dir.path();
    bin_dir(root, true, &[]);
    let shared = root.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("real.json"), r#"{"auths": {}}"#).unwrap();
    std::fs::create_dir_all(config_dir(root)).unwrap();
    std::os::unix::fs::symlink(
        shared.join("real.json"),
        config_dir(root).join("config.json"),
    )
    .unwrap();
    let out = inject(root, &both_registries(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        std::fs::symlink_metadata(config_dir(root).join("config.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let real: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shared.join("real.json")).unwrap()).unwrap();
    assert!(real["auths"][testbed().get("BERTH_TB_REG1")]["auth"].is_string());
}

#[test]
fn dry_run_writes_nothing_and_json_names_identifiers_and_servers() {
    let tb = testbed();
    let dir = scratch();
    let root = dir.path();
    let out = inject(root, &both_registries(), &["--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!config_dir(root).exists(), "a dry run creates nothing");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["written"], true);
    let regs = report["registries"].as_array().unwrap();
    assert_eq!(regs.len(), 2);
    assert_eq!(regs[0]["id"], "REG1");
    assert_eq!(regs[0]["server"], tb.get("BERTH_TB_REG1"));
    assert_eq!(regs[0]["kind"], "other");
    assert_eq!(regs[0]["change"], "added");
}

#[test]
fn prune_removes_only_berths_stale_entries() {
    let tb = testbed();
    let dir = scratch();
    let root = dir.path();
    bin_dir(root, true, &[]);
    std::fs::create_dir_all(config_dir(root)).unwrap();
    std::fs::write(
        config_dir(root).join("config.json"),
        r#"{"auths": {"mine.example.com": {"auth": "bWU6cHc="}}}"#,
    )
    .unwrap();
    inject(root, &both_registries(), &[]);
    // REG2's secrets are gone; prune removes its entry, keeps REG1 and the user's own.
    let reg1_only = registry_env(
        "REG1",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    );
    let out = inject(root, &reg1_only, &["--prune"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(tb.get("BERTH_TB_REG2")),
        "{}",
        text(&out)
    );
    let c = read_config(root);
    assert!(c["auths"].get(tb.get("BERTH_TB_REG2")).is_none());
    assert!(c["credHelpers"].get(tb.get("BERTH_TB_REG2")).is_none());
    assert!(c["auths"].get(tb.get("BERTH_TB_REG1")).is_some());
    assert!(c["auths"].get("mine.example.com").is_some());
    // With no secrets at all, prune removes nothing: the secrets may just be absent here.
    inject(root, &[], &["--prune"]);
    assert!(
        read_config(root)["auths"]
            .get(tb.get("BERTH_TB_REG1"))
            .is_some()
    );
}

/// One bad input: what is given, and what must be said.
struct Bad {
    name: &'static str,
    vars: Vec<(String, String)>,
    message: &'static [&'static str],
    /// The set is rejected (not merely warned about).
    rejected: bool,
}

#[test]
fn bad_secrets_each_give_their_message_and_the_good_registry_still_works() {
    let tb = testbed();
    let good = registry_env(
        "GOOD",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    );
    let cases = vec![
        Bad {
            name: "incomplete set",
            vars: vec![(
                "HALF_CONTAINER_REGISTRY_SERVER".into(),
                "half.example.com".into(),
            )],
            message: &[
                "registry HALF is skipped",
                "HALF_CONTAINER_REGISTRY_USER and HALF_CONTAINER_REGISTRY_PASSWORD",
                "missing",
            ],
            rejected: true,
        },
        Bad {
            name: "empty value",
            vars: registry_env("EMPTY", "empty.example.com", "u", ""),
            message: &[
                "registry EMPTY is skipped",
                "EMPTY_CONTAINER_REGISTRY_PASSWORD is empty",
            ],
            rejected: true,
        },
        Bad {
            name: "server not a host",
            vars: registry_env("NOHOST", "my registry!", "u", "p"),
            message: &[
                "registry NOHOST is skipped",
                "NOHOST_CONTAINER_REGISTRY_SERVER is not a registry host",
                "such as ghcr.io",
            ],
            rejected: true,
        },
        Bad {
            name: "single word server",
            vars: registry_env("WORD", "ghcr", "u", "p"),
            message: &["registry WORD is skipped", "single word"],
            rejected: true,
        },
        Bad {
            name: "two identifiers, one server",
            vars: registry_env(
                "ZDUP",
                &format!("https://{}/v2/", tb.get("BERTH_TB_REG1")),
                "u",
                "p",
            ),
            message: &["registries GOOD and ZDUP all name", "berth uses GOOD"],
            rejected: false,
        },
        Bad {
            name: "trailing newline",
            vars: registry_env("NL", "nl.example.com", "u", "pass\n"),
            message: &[
                "registry NL",
                "NL_CONTAINER_REGISTRY_PASSWORD ends with a newline",
                "removed",
            ],
            rejected: false,
        },
        Bad {
            name: "colon in user",
            vars: registry_env("COLON", "colon.example.com", "a:b", "p"),
            message: &["registry COLON is skipped", "contains ':'"],
            rejected: true,
        },
        Bad {
            name: "invalid identifier",
            vars: vec![(
                "MY-REG_CONTAINER_REGISTRY_SERVER".into(),
                "x.example.com".into(),
            )],
            message: &[
                "MY-REG_CONTAINER_REGISTRY_SERVER is ignored",
                "letters, digits and underscores",
            ],
            rejected: true,
        },
    ];
    for case in cases {
        let dir = scratch();
        let root = dir.path();
        let mut vars = good.clone();
        vars.extend(case.vars.clone());
        let out = inject(root, &vars, &[]);
        let all = text(&out);
        let expected = if case.rejected { 3 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{}: a bad set does not fail the others, and a rejected one says so in the exit code: {all}",
            case.name
        );
        for m in case.message {
            assert!(all.contains(m), "{}: expected {m:?} in\n{all}", case.name);
        }
        let config = read_config(root);
        assert!(
            config["auths"][tb.get("BERTH_TB_REG1")]["auth"].is_string(),
            "{}: GOOD written",
            case.name
        );
        // A secret value never appears in the message.
        for (k, v) in &case.vars {
            if k.ends_with("PASSWORD") && v.len() > 3 {
                assert!(!all.contains(v.trim()), "{}: value printed", case.name);
            }
        }
    }
}

#[test]
fn a_malformed_config_is_left_byte_for_byte_and_the_error_says_where() {
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "{\n  \"auths\": {\n    \"x\": {\"auth\": \"abc\"}\n  \n",
            "syntax",
            &[
                "is not valid JSON",
                "line 5",
                "left it as it is",
                "fix it or move it away",
            ],
        ),
        (
            "{\"auths\": [1, 2]}",
            "shape",
            &["\"auths\" is not a JSON object", "left it as it is"],
        ),
        ("[]", "top", &["top level is not a JSON object"]),
        (
            "{\"auths\": {}} trailing",
            "trailing",
            &["is not valid JSON", "line 1"],
        ),
    ];
    for (content, name, messages) in cases {
        let dir = scratch();
        let root = dir.path();
        std::fs::create_dir_all(config_dir(root)).unwrap();
        let file = config_dir(root).join("config.json");
        std::fs::write(&file, content).unwrap();
        let before = std::fs::metadata(&file).unwrap();
        let out = inject(root, &both_registries(), &[]);
        assert!(!out.status.success(), "{name}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        for m in messages {
            assert!(stderr.contains(m), "{name}: expected {m:?} in {stderr}");
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            content,
            "{name}: untouched"
        );
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), before.ino());
        let names: Vec<_> = std::fs::read_dir(config_dir(root))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")),
            "{name}: no temporary left: {names:?}"
        );
    }
}

#[test]
fn bad_secrets_files_and_users_give_plain_errors() {
    let dir = scratch();
    let root = dir.path();
    let missing = root.join("missing.json");
    let out = inject(root, &[], &["--secrets-file", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("cannot read the secrets file") && text(&out).contains("missing.json"),
        "{}",
        text(&out)
    );

    let bad = root.join("bad.json");
    std::fs::write(
        &bad,
        "{\"A_CONTAINER_REGISTRY_PASSWORD\": \"hunter2\", oops}",
    )
    .unwrap();
    let out = inject(root, &[], &["--secrets-file", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let all = text(&out);
    assert!(
        all.contains("bad.json is not a JSON object of names to string values")
            && all.contains("line 1"),
        "{all}"
    );
    assert!(!all.contains("hunter2"));

    std::fs::write(&bad, "{\"A_CONTAINER_REGISTRY_PASSWORD\": 42}").unwrap();
    let out = inject(root, &[], &["--secrets-file", bad.to_str().unwrap()]);
    assert!(
        text(&out).contains("the value of A_CONTAINER_REGISTRY_PASSWORD is not a string"),
        "{}",
        text(&out)
    );

    let out = inject(root, &both_registries(), &["--user", "no-such-user-here"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("there is no user named \"no-such-user-here\""),
        "{}",
        text(&out)
    );
}

#[test]
fn a_secrets_file_is_read_and_wins_over_the_environment() {
    let tb = testbed();
    let dir = scratch();
    let root = dir.path();
    let file = root.join("secrets.json");
    let mut map = serde_json::Map::new();
    for (k, v) in both_registries() {
        map.insert(k, serde_json::Value::String(v));
    }
    map.insert("UNRELATED_TOKEN".into(), serde_json::json!("x"));
    std::fs::write(&file, serde_json::to_vec(&map).unwrap()).unwrap();
    // The environment has a wrong password for REG1: the file's value is used.
    let env = registry_env(
        "REG1",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_USER"),
        "stale",
    );
    let out = inject(
        root,
        &env,
        &["--secrets-file", file.to_str().unwrap(), "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["registries"][0]["source"]
            .as_str()
            .unwrap()
            .contains("secrets file")
    );
    let plain = decoded_auth(&read_config(root), tb.get("BERTH_TB_REG1")).unwrap();
    assert!(plain.ends_with(tb.get("BERTH_TB_REG1_PASSWORD")));
}

#[test]
fn codespaces_secret_files_are_read() {
    let tb = testbed();
    let dir = scratch();
    let root = dir.path();
    std::fs::create_dir_all(root.join("codespaces")).unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let lines: Vec<String> = both_registries()
        .iter()
        .map(|(k, v)| format!("{k}={}", b64(v)))
        .collect();
    std::fs::write(root.join("codespaces/.env-secrets"), lines.join("\n")).unwrap();
    let out = inject(root, &[], &["--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["registries"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert!(
        report["registries"][0]["source"]
            .as_str()
            .unwrap()
            .contains("Codespaces")
    );
    assert!(read_config(root)["auths"][tb.get("BERTH_TB_REG2")].is_object());
}

#[test]
fn messages_are_said_once_plainly_and_without_colour_codes() {
    // Issue 11: each message case.
    let tb = testbed();
    // A DOCKER_CONFIG that is a file.
    let dir = scratch();
    let root = dir.path();
    let file = root.join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let mut vars = both_registries();
    vars.push(("DOCKER_CONFIG".into(), file.display().to_string()));
    let out = inject(root, &vars, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("is a file, not a folder") && !text(&out).contains("File exists"),
        "{}",
        text(&out)
    );
    // An OS error is said once, and nothing on stderr is coloured when it is not a terminal.
    let dir = scratch();
    let root = dir.path();
    std::fs::create_dir_all(config_dir(root)).unwrap();
    std::fs::write(config_dir(root).join("config.json"), "{}").unwrap();
    std::fs::set_permissions(
        config_dir(root).join("config.json"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let as_nobody = |root: &Path| {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cmd = berth(root);
        cmd.arg("inject")
            .envs(both_registries())
            .env("DOCKER_CONFIG", config_dir(root));
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
        run(&mut cmd)
    };
    std::fs::set_permissions(root.join("home"), std::fs::Permissions::from_mode(0o755)).unwrap();
    nix::unistd::chown(&config_dir(root), Some(65534.into()), Some(65534.into())).unwrap();
    let out = as_nobody(root);
    let all = text(&out);
    assert_eq!(
        all.matches("Permission denied").count(),
        1,
        "said once: {all}"
    );
    assert!(!all.contains('\u{1b}'), "no colour codes: {all:?}");
    // Every registry failed: the last line does not say the config is up to date.
    let dir = scratch();
    let root = dir.path();
    let mut vars = registry_env(
        "ECR_BAD",
        &ecr_host("eu-west-1"),
        "AKIAIOSFODNN7EXAMPLE",
        "wrong-secret",
    );
    vars.push((
        "AWS_ENDPOINT_URL_ECR".into(),
        tb.get("BERTH_TB_ECR_ENDPOINT").into(),
    ));
    let out = inject(root, &vars, &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains("left as it was") && !all.contains("already up to date"),
        "{all}"
    );
    assert!(!all.contains("berth retries"), "{all}");
    // Every set rejected: not "no registry secrets found".
    let dir = scratch();
    let root = dir.path();
    let out = inject(root, &registry_env("EMPTY", "e.example.com", "u", ""), &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains("every secret set was rejected") && !all.contains("no registry secrets found"),
        "{all}"
    );
}
