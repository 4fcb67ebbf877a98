//! Issue 2: every part of the test bed is real and answers.

mod support;

use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use support::*;

fn engine() -> Docker {
    Docker::connect_with_unix(
        testbed().get("BERTH_TB_DOCKER_HOST"),
        60,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap()
}

/// Pulls with bollard; `Err` carries the engine's message. Bounded, so a hang fails.
async fn pull(
    docker: &Docker,
    image: &str,
    creds: Option<DockerCredentials>,
) -> Result<(), String> {
    let (repo, tag) = image.rsplit_once(':').unwrap();
    let opts = CreateImageOptionsBuilder::default()
        .from_image(repo)
        .tag(tag)
        .build();
    let stream = docker.create_image(Some(opts), None, creds);
    let drained = async {
        let mut s = std::pin::pin!(stream);
        while let Some(item) = s.next().await {
            item.map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(120), drained)
        .await
        .map_err(|_| "the pull hung".to_string())?
}

fn creds(user: &str, password: &str, server: &str) -> Option<DockerCredentials> {
    Some(DockerCredentials {
        username: Some(user.into()),
        password: Some(password.into()),
        serveraddress: Some(server.into()),
        ..Default::default()
    })
}

#[tokio::test]
async fn engine_answers_and_negotiates_api_1_41() {
    let docker = engine()
        .negotiate_version()
        .await
        .expect("the engine answers /version");
    assert_eq!(docker.client_version().to_string(), "1.41");
    let pong = docker.ping().await.unwrap();
    assert_eq!(pong, "OK");
}

#[tokio::test]
async fn the_current_engines_answer_in_both_image_stores_and_refuse_clients_older_than_1_44() {
    let tb = testbed();
    for (var, containerd) in [
        ("BERTH_TB_MODERN_DOCKER_HOST", false),
        ("BERTH_TB_MODERN_CONTAINERD_DOCKER_HOST", true),
    ] {
        let host = tb.get(var);
        let docker = Docker::connect_with_unix(host, 60, bollard::API_DEFAULT_VERSION)
            .unwrap()
            .negotiate_version()
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        // A current engine (forky's docker.io is 28.5, API 1.51, as this is written).
        let api = docker.client_version();
        assert!(
            (api.major_version, api.minor_version) >= (1, 44),
            "{host}: API {api}"
        );
        let version = docker.version().await.unwrap();
        assert_eq!(version.min_api_version.as_deref(), Some("1.44"), "{host}");
        let info = docker.info().await.unwrap();
        let store = format!("{:?}", info.driver_status);
        assert_eq!(
            store.contains("io.containerd.snapshotter.v1"),
            containerd,
            "{host}: {:?} {store}",
            info.driver
        );
        // As Docker 29 does: a request of API 1.41 (Docker 20.10's CLI) is refused.
        let answer = {
            use std::io::{Read, Write};
            let path = host.trim_start_matches("unix://");
            let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
            s.write_all(b"GET /v1.41/info HTTP/1.0\r\nHost: docker\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        };
        assert!(
            answer.starts_with("HTTP/1.0 400") && answer.contains("client version 1.41 is too old"),
            "{host}: {answer}"
        );
    }
}

#[tokio::test]
async fn each_registry_demands_its_own_credentials() {
    let tb = testbed();
    let docker = engine().negotiate_version().await.unwrap();
    for n in ["1", "2"] {
        let reg = tb.get(&format!("BERTH_TB_REG{n}"));
        let image = tb.get(&format!("BERTH_TB_REG{n}_TINY"));
        let user = tb.get(&format!("BERTH_TB_REG{n}_USER"));
        let password = tb.get(&format!("BERTH_TB_REG{n}_PASSWORD"));
        pull(&docker, image, creds(user, password, reg))
            .await
            .unwrap_or_else(|e| panic!("{image}: {e}"));
        for (what, c) in [
            ("wrong password", creds(user, "not-the-password", reg)),
            ("no credentials", None),
        ] {
            let err = pull(&docker, image, c).await.expect_err(what);
            assert!(
                err.contains("unauthorized")
                    || err.contains("no basic auth credentials")
                    || err.contains("authentication required"),
                "{image} with {what}: {err}"
            );
        }
    }
    // The other registry's user is refused: the registries do not share users.
    let err = pull(
        &docker,
        tb.get("BERTH_TB_REG2_TINY"),
        creds(
            tb.get("BERTH_TB_REG1_USER"),
            tb.get("BERTH_TB_REG1_PASSWORD"),
            tb.get("BERTH_TB_REG2"),
        ),
    )
    .await
    .expect_err("registry 1's user on registry 2");
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
}

#[tokio::test]
async fn ecr_api_gives_tokens_and_checks_signatures() {
    let tb = testbed();
    let host = berth::ecr::EcrHost::parse(&format!(
        "{}.dkr.ecr.eu-west-1.amazonaws.com",
        tb.get("BERTH_TB_ECR_ACCOUNT")
    ))
    .unwrap();
    let client = berth::ecr::EcrClient::new();
    let endpoint = tb.get("BERTH_TB_ECR_ENDPOINT");
    let key = berth::secret::Secret::new(tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"));
    let good = berth::secret::Secret::new(tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"));
    let request = |secret| berth::ecr::client::TokenRequest {
        host: &host,
        endpoint,
        access_key_id: &key,
        secret_access_key: secret,
        session_token: None,
    };
    let token = client
        .get_authorization_token(&request(&good))
        .await
        .expect("a token");
    assert_eq!(token.user.expose(), "AWS");
    assert!(!token.password.is_empty());
    let wrong = berth::secret::Secret::new("wrong-secret");
    let err = client
        .get_authorization_token(&request(&wrong))
        .await
        .expect_err("a wrong secret is refused");
    assert!(
        matches!(err, berth::ecr::EcrError::KeysRejected { .. }),
        "{err:?}"
    );
}

#[test]
fn devcontainer_cli_answers_and_starts_a_container() {
    let tb = testbed();
    let cli = tb.get("BERTH_TB_DEVCONTAINER");
    let out = run(std::process::Command::new(cli).arg("--version"));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0.89.0");

    let dir = scratch();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join(".devcontainer")).unwrap();
    std::fs::write(
        ws.join(".devcontainer/devcontainer.json"),
        format!(
            r#"{{"image": "{}", "runArgs": ["--network=host"]}}"#,
            tb.get("BERTH_TB_IMAGE_DEBIAN")
        ),
    )
    .unwrap();
    let devcontainer = |args: &[&str]| {
        let mut cmd = std::process::Command::new(cli);
        cmd.args(args)
            .env("DOCKER_HOST", tb.get("BERTH_TB_DOCKER_HOST"));
        run(&mut cmd)
    };
    let up = devcontainer(&["up", "--workspace-folder", ws.to_str().unwrap()]);
    let _cleanup = ContainerCleanup(ws.clone());
    assert!(up.status.success(), "{}", text(&up));
    let exec = devcontainer(&[
        "exec",
        "--workspace-folder",
        ws.to_str().unwrap(),
        "cat",
        "/etc/debian_version",
    ]);
    assert!(exec.status.success(), "{}", text(&exec));
    assert!(
        String::from_utf8_lossy(&exec.stdout)
            .trim()
            .starts_with("12."),
        "{}",
        text(&exec)
    );
}

/// Removes the containers `devcontainer up` made for a workspace.
struct ContainerCleanup(std::path::PathBuf);

impl Drop for ContainerCleanup {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            std::process::Command::new("docker")
                .args(args)
                .env("DOCKER_HOST", testbed().get("BERTH_TB_DOCKER_HOST"))
                .output()
        };
        let label = format!("label=devcontainer.local_folder={}", self.0.display());
        if let Ok(out) = docker(&["ps", "-aq", "--filter", &label]) {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = docker(&["rm", "-f", id]);
            }
        }
    }
}
