//! Issue 4: ECR access keys become registry tokens, signed for the registry's region; errors
//! name the identifier and never a secret; tokens are renewed on schedule.

mod support;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth::clock::{Clock, ManualClock};
use berth::ecr::client::TokenRequest;
use berth::ecr::renewal::{self, Renewal, Schedule};
use berth::ecr::{EcrClient, EcrHost};
use berth::secret::Secret;
use support::*;

fn inject(root: &Path, vars: &[(String, String)]) -> Output {
    let mut cmd = berth(root);
    cmd.args(["inject", "--json"]).envs(vars.iter().cloned());
    run(&mut cmd)
}

fn login_in_config(root: &Path, server: &str) -> Option<String> {
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("home/.docker/config.json")).ok()?).ok()?;
    decoded_auth(&c, server)
}

fn ecr_vars(id: &str, region: &str, key: &str, secret: &str) -> Vec<(String, String)> {
    registry_env(id, &ecr_host(region), key, secret)
}

fn endpoint_var() -> (String, String) {
    (
        "AWS_ENDPOINT_URL_ECR".into(),
        testbed().get("BERTH_TB_ECR_ENDPOINT").into(),
    )
}

/// What moto received while `f` ran (its request recorder).
fn recorded(f: impl FnOnce()) -> Vec<serde_json::Value> {
    let endpoint = testbed().get("BERTH_TB_ECR_ENDPOINT");
    let post = |path: &str| {
        let out = run(std::process::Command::new("curl").args([
            "-sf",
            "-X",
            "POST",
            &format!("{endpoint}/moto-api/recorder/{path}"),
        ]));
        assert!(out.status.success(), "{}", text(&out));
    };
    post("reset-recording");
    post("start-recording");
    f();
    post("stop-recording");
    let out = run(std::process::Command::new("curl").args([
        "-sf",
        &format!("{endpoint}/moto-api/recorder/download-recording"),
    ]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn access_keys_become_a_token_signed_for_each_registrys_region() {
    let tb = testbed();
    let dir = scratch();
    let root = dir.path();
    let (key, secret) = (
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"),
    );
    let mut vars = ecr_vars("ECR", "ap-southeast-2", key, secret);
    vars.extend(ecr_vars("ECR_SA", "sa-east-1", key, secret));
    vars.push(endpoint_var());
    let mut out = None;
    let requests = recorded(|| out = Some(inject(root, &vars)));
    let out = out.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // The token a real AWS client gets from the same service, decoded the same way.
    let expected = boto3(
        "import boto3,os,base64\n\
         c=boto3.client('ecr',region_name='ap-southeast-2',endpoint_url=os.environ['ENDPOINT'],aws_access_key_id=os.environ['KEY'],aws_secret_access_key=os.environ['SECRET'])\n\
         print(base64.b64decode(c.get_authorization_token()['authorizationData'][0]['authorizationToken']).decode())",
    );
    assert_eq!(
        login_in_config(root, &ecr_host("ap-southeast-2")).as_deref(),
        Some(expected.trim())
    );
    assert_eq!(
        login_in_config(root, &ecr_host("sa-east-1")).as_deref(),
        Some(expected.trim())
    );
    // What moto received: one signed GetAuthorizationToken per registry, each for its region.
    for region in ["ap-southeast-2", "sa-east-1"] {
        let scope = format!("/{region}/ecr/aws4_request");
        let mine: Vec<_> = requests
            .iter()
            .filter(|r| {
                r["headers"]["Authorization"]
                    .as_str()
                    .is_some_and(|a| a.contains(&scope))
            })
            .collect();
        assert_eq!(mine.len(), 1, "{region}: {requests:#?}");
        let h = &mine[0]["headers"];
        assert_eq!(
            h["X-Amz-Target"],
            "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
        );
        assert_eq!(h["Content-Type"], "application/x-amz-json-1.1");
        assert!(
            h["Authorization"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AWS4-HMAC-SHA256 Credential={key}/"))
        );
        assert_eq!(mine[0]["method"], "POST");
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["registries"][0]["kind"], "ecr-access-keys");
}

#[test]
fn aws_endpoint_url_also_points_the_call() {
    let tb = testbed();
    let dir = scratch();
    let mut vars = ecr_vars(
        "ECR",
        "eu-west-1",
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"),
    );
    vars.push((
        "AWS_ENDPOINT_URL".into(),
        tb.get("BERTH_TB_ECR_ENDPOINT").into(),
    ));
    let out = inject(dir.path(), &vars);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        login_in_config(dir.path(), &ecr_host("eu-west-1"))
            .unwrap()
            .starts_with("AWS:")
    );
}

#[test]
fn temporary_keys_send_their_session_token() {
    let dir = scratch();
    let creds = boto3(
        "import boto3,os\n\
         s=boto3.client('sts',region_name='eu-west-1',endpoint_url=os.environ['ENDPOINT'],aws_access_key_id=os.environ['KEY'],aws_secret_access_key=os.environ['SECRET'])\n\
         c=s.assume_role(RoleArn=os.environ['ROLE'],RoleSessionName='berth-test')['Credentials']\n\
         print(c['AccessKeyId']);print(c['SecretAccessKey']);print(c['SessionToken'])",
    );
    let parts: Vec<&str> = creds.lines().collect();
    let (key, secret, token) = (parts[0], parts[1], parts[2]);
    let mut vars = ecr_vars("ECR", "eu-west-1", key, secret);
    vars.push(endpoint_var());
    vars.push((
        "ECR_CONTAINER_REGISTRY_AWS_SESSION_TOKEN".into(),
        token.into(),
    ));
    let out = inject(dir.path(), &vars);
    assert!(out.status.success(), "{}", text(&out));
    // Without the right session token, moto refuses the same keys.
    let mut bad = vars.clone();
    bad.last_mut().unwrap().1 = "not-the-token".into();
    let dir2 = scratch();
    let out = inject(dir2.path(), &bad);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("AWS rejected the access keys (InvalidClientTokenId)"),
        "{}",
        text(&out)
    );
}

/// What is wrong, the secrets, the endpoint, and the message expected.
type EcrCase<'a> = (&'a str, Vec<(String, String)>, &'a str, &'a str);

#[test]
fn each_ecr_error_names_the_identifier_and_never_the_secret_and_others_still_work() {
    let tb = testbed();
    let key = tb.get("BERTH_TB_ECR_ACCESS_KEY_ID");
    let good = registry_env(
        "REG1",
        tb.get("BERTH_TB_REG1"),
        tb.get("BERTH_TB_REG1_USER"),
        tb.get("BERTH_TB_REG1_PASSWORD"),
    );
    let garbage = FakeServer::start(|_| (200, "<html>maintenance</html>".into()));
    let failing = FakeServer::start(|_| (503, "{}".into()));
    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    let secret = "s3cr3t-value-that-must-not-leak";
    let cases: Vec<EcrCase> = vec![
        (
            "a wrong secret",
            ecr_vars("ECR_BAD", "eu-west-1", key, secret),
            tb.get("BERTH_TB_ECR_ENDPOINT"),
            "registry ECR_BAD: AWS rejected the access keys (SignatureDoesNotMatch)",
        ),
        (
            "keys without permission",
            ecr_vars(
                "ECR_DENIED",
                "eu-west-1",
                tb.get("BERTH_TB_ECR_DENIED_ACCESS_KEY_ID"),
                tb.get("BERTH_TB_ECR_DENIED_SECRET_ACCESS_KEY"),
            ),
            tb.get("BERTH_TB_ECR_ENDPOINT"),
            "registry ECR_DENIED: AWS denied the request (AccessDenied); the IAM user or role needs ecr:GetAuthorizationToken",
        ),
        (
            "an unreachable endpoint",
            ecr_vars("ECR_OFF", "eu-west-1", key, secret),
            &unreachable,
            "registry ECR_OFF: cannot reach the ECR API at http://127.0.0.1:",
        ),
        (
            "a malformed answer",
            ecr_vars("ECR_HTML", "eu-west-1", key, secret),
            &garbage.url,
            "registry ECR_HTML: the ECR API at http://127.0.0.1:",
        ),
        (
            "a server failing",
            ecr_vars("ECR_503", "eu-west-1", key, secret),
            &failing.url,
            "failed with HTTP 503",
        ),
    ];
    for (what, vars, endpoint, message) in cases {
        let dir = scratch();
        let mut all = good.clone();
        all.extend(vars.clone());
        all.push(("AWS_ENDPOINT_URL_ECR".into(), endpoint.to_string()));
        let out = inject(dir.path(), &all);
        let t = text(&out);
        assert!(!out.status.success(), "{what}: {t}");
        assert!(t.contains(message), "{what}: expected {message:?} in {t}");
        assert!(
            !t.contains(secret) && !t.contains(tb.get("BERTH_TB_ECR_DENIED_SECRET_ACCESS_KEY")),
            "{what}: a secret was printed: {t}"
        );
        assert!(
            login_in_config(dir.path(), tb.get("BERTH_TB_REG1")).is_some(),
            "{what}: the other registry is written"
        );
    }
    assert!(garbage.requests() >= 1);
    assert_eq!(
        failing.requests(),
        3,
        "a failing server is tried three times"
    );
}

#[test]
fn throttling_is_retried_with_backoff() {
    let throttle = FakeServer::start(|n| match n {
        0 | 1 => (
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into(),
        ),
        _ => (
            200,
            ecr_answer(
                "fresh-token",
                SystemTime::now() + Duration::from_secs(12 * 3600),
            ),
        ),
    });
    let dir = scratch();
    let mut vars = ecr_vars("ECR", "eu-west-1", "AKIAEXAMPLE", "secret");
    vars.push(("AWS_ENDPOINT_URL_ECR".into(), throttle.url.clone()));
    let out = inject(dir.path(), &vars);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(throttle.requests(), 3);
    assert_eq!(
        login_in_config(dir.path(), &ecr_host("eu-west-1")).as_deref(),
        Some("AWS:fresh-token")
    );
}

#[test]
fn a_ready_token_is_used_as_it_is_and_its_expiry_is_explained() {
    let dir = scratch();
    let vars = registry_env(
        "ECR",
        &ecr_host("eu-west-1"),
        "AWS",
        "eyJwYXlsb2FkIjoi-ready-token",
    );
    let out = inject(dir.path(), &vars);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        login_in_config(dir.path(), &ecr_host("eu-west-1")).as_deref(),
        Some("AWS:eyJwYXlsb2FkIjoi-ready-token")
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["registries"][0]["kind"], "ecr-token");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("expires within 12 hours")
            && warnings.contains("access key id and secret access key"),
        "{warnings}"
    );
}

#[test]
fn hosts_that_look_like_ecr_but_are_not_are_ordinary_registries() {
    let dir = scratch();
    let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example";
    let mut vars = registry_env("LOOKALIKE", host, "AKIAEXAMPLE", "plain-password");
    vars.push(endpoint_var());
    let requests = recorded(|| {
        let out = inject(dir.path(), &vars);
        assert!(out.status.success(), "{}", text(&out));
    });
    assert_eq!(
        login_in_config(dir.path(), host).as_deref(),
        Some("AKIAEXAMPLE:plain-password")
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.to_string().contains("AKIAEXAMPLE")),
        "no ECR call for a look-alike"
    );
}

// --- renewal, with a clock moved by hand -------------------------------------------------

struct Renewals {
    clock: Arc<ManualClock>,
    done: tokio::sync::watch::Receiver<(usize, usize)>,
    cancel: tokio_util::sync::CancellationToken,
}

impl Renewals {
    /// Starts a renewal loop against `endpoint`, counting (renewed, failed).
    fn start(endpoint: String, key: &str, secret: &str, clock: Arc<ManualClock>) -> Renewals {
        let (tx, done) = tokio::sync::watch::channel((0usize, 0usize));
        let cancel = tokio_util::sync::CancellationToken::new();
        let (c, k, s, cl) = (
            cancel.clone(),
            Secret::new(key),
            Secret::new(secret),
            clock.clone(),
        );
        tokio::spawn(async move {
            let host = EcrHost::parse(&ecr_host("eu-west-1")).unwrap();
            let client = EcrClient::new();
            let fetch = || {
                let req = TokenRequest {
                    host: &host,
                    endpoint: &endpoint,
                    access_key_id: &k,
                    secret_access_key: &s,
                    session_token: None,
                };
                let client = client.clone();
                async move { client.get_authorization_token(&req).await }
            };
            let apply = |r: Renewal<'_>| {
                tx.send_modify(|(ok, failed)| match r {
                    Renewal::Renewed(_) => *ok += 1,
                    Renewal::Failed(_) => *failed += 1,
                })
            };
            renewal::run(&*cl, &Schedule::default(), &c, Duration::ZERO, fetch, apply).await;
        });
        Renewals {
            clock,
            done,
            cancel,
        }
    }

    /// Waits (bounded, in real time) until the counts reach `want`, then until the loop is
    /// asleep again.
    async fn reach(&mut self, want: (usize, usize)) {
        let reached =
            tokio::time::timeout(Duration::from_secs(30), self.done.wait_for(|c| *c == want))
                .await
                .is_ok();
        assert!(reached, "expected {want:?}, have {:?}", *self.done.borrow());
        tokio::time::timeout(Duration::from_secs(30), self.clock.wait_for_sleepers(1))
            .await
            .unwrap();
    }

    /// Moves the clock, lets the loop look at it, and returns the counts.
    async fn advance(&mut self, d: Duration) -> (usize, usize) {
        self.clock.advance(d);
        // The loop runs on this same thread: yielding lets it see the new time.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        *self.done.borrow()
    }
}

impl Drop for Renewals {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[tokio::test]
async fn a_past_expiry_renews_at_the_minimum_interval_and_never_spins() {
    let tb = testbed();
    let schedule = Schedule::default();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let mut r = Renewals::start(
        tb.get("BERTH_TB_ECR_ENDPOINT").into(),
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"),
        clock.clone(),
    );
    r.reach((1, 0)).await; // moto's token expired in 2015
    // Asleep: time standing still, nothing happens however often the loop is woken.
    for _ in 0..5 {
        assert_eq!(r.advance(Duration::ZERO).await, (1, 0));
    }
    assert_eq!(
        r.advance(schedule.min_interval - Duration::from_secs(1))
            .await,
        (1, 0)
    );
    clock.advance(Duration::from_secs(1));
    r.reach((2, 0)).await;
    // An hour of such tokens costs an hour / min_interval calls, no more.
    let per_hour = (3600 / schedule.min_interval.as_secs()) as usize;
    for i in 0..per_hour {
        clock.advance(schedule.min_interval);
        r.reach((3 + i, 0)).await;
    }
}

#[tokio::test]
async fn a_token_is_renewed_at_half_its_lifetime() {
    // moto always answers an expiry in 2015; a future expiry needs this loopback stand-in.
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let c = clock.clone();
    let fake = FakeServer::start(move |n| {
        (
            200,
            ecr_answer(
                &format!("token-{n}"),
                c.now() + Duration::from_secs(12 * 3600),
            ),
        )
    });
    let mut r = Renewals::start(fake.url.clone(), "AKIAEXAMPLE", "secret", clock.clone());
    r.reach((1, 0)).await;
    assert_eq!(
        r.advance(Duration::from_secs(6 * 3600 - 1)).await,
        (1, 0),
        "not before half the lifetime"
    );
    clock.advance(Duration::from_secs(1));
    r.reach((2, 0)).await;
    clock.advance(Duration::from_secs(6 * 3600));
    r.reach((3, 0)).await;
    assert_eq!(fake.requests(), 3);
}

#[tokio::test]
async fn failures_back_off_and_then_recover() {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let c = clock.clone();
    let fake = FakeServer::start(move |n| match n {
        0 => (
            200,
            ecr_answer("first", c.now() + Duration::from_secs(12 * 3600)),
        ),
        1 | 2 => (503, "{}".into()),
        _ => (
            200,
            ecr_answer("later", c.now() + Duration::from_secs(12 * 3600)),
        ),
    });
    let schedule = Schedule::default();
    let mut r = Renewals::start(fake.url.clone(), "AKIAEXAMPLE", "secret", clock.clone());
    r.reach((1, 0)).await;
    clock.advance(Duration::from_secs(6 * 3600));
    r.reach((1, 1)).await;
    // The first retry comes after backoff_base ±20%, the second after twice that.
    assert_eq!(r.advance(schedule.backoff_base.mul_f64(0.79)).await, (1, 1));
    clock.advance(schedule.backoff_base.mul_f64(0.42));
    r.reach((1, 2)).await;
    assert_eq!(
        r.advance((schedule.backoff_base * 2).mul_f64(0.79)).await,
        (1, 2)
    );
    clock.advance((schedule.backoff_base * 2).mul_f64(0.42));
    r.reach((2, 2)).await;
}

/// A real TLS server on loopback (Python's, on OpenSSL) with a self-signed certificate
/// made by the openssl tool: it answers nothing, the handshake is all that matters.
struct UntrustedTls {
    _dir: tempfile::TempDir,
    child: std::process::Child,
    port: u16,
}

impl UntrustedTls {
    fn start() -> UntrustedTls {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = run(std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        assert!(made.status.success(), "{}", text(&made));
        let script = format!(
            "import http.server, ssl\n\
             s = http.server.HTTPServer(('127.0.0.1', 0), http.server.BaseHTTPRequestHandler)\n\
             c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
             c.load_cert_chain({:?}, {:?})\n\
             s.socket = c.wrap_socket(s.socket, server_side=True)\n\
             print(s.server_address[1], flush=True)\n\
             s.serve_forever()\n",
            cert.display().to_string(),
            key.display().to_string()
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().expect("the server says its port");
        UntrustedTls {
            _dir: dir,
            child,
            port,
        }
    }
}

impl Drop for UntrustedTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ecr_works_in_a_container_without_root_certificates_and_names_a_refused_certificate() {
    // Issue 11: no root certificates at all (as in a slim image without ca-certificates).
    let tb = testbed();
    let no_roots = [
        (
            "SSL_CERT_FILE".to_string(),
            "/nonexistent/roots.pem".to_string(),
        ),
        ("SSL_CERT_DIR".to_string(), "/nonexistent".to_string()),
    ];
    let dir = scratch();
    let mut vars = ecr_vars(
        "ECR",
        "eu-west-1",
        tb.get("BERTH_TB_ECR_ACCESS_KEY_ID"),
        tb.get("BERTH_TB_ECR_SECRET_ACCESS_KEY"),
    );
    vars.push(endpoint_var());
    vars.extend(no_roots.iter().cloned());
    let out = inject(dir.path(), &vars);
    assert!(out.status.success(), "{}", text(&out));
    assert!(login_in_config(dir.path(), &ecr_host("eu-west-1")).is_some());
    // An https endpoint whose certificate no trusted authority signed: said plainly.
    let server = UntrustedTls::start();
    let dir = scratch();
    let mut vars = ecr_vars("ECR", "eu-west-1", "AKIAIOSFODNN7EXAMPLE", "secret");
    vars.push((
        "AWS_ENDPOINT_URL_ECR".into(),
        format!("https://127.0.0.1:{}", server.port),
    ));
    let out = inject(dir.path(), &vars);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("TLS failed: the server's certificate is self-signed")
            && text(&out).contains("SSL_CERT_FILE")
            && !text(&out).contains("attempts"),
        "{}",
        text(&out)
    );
}
