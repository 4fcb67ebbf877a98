//! The ECR GetAuthorizationToken call, signed with AWS Signature Version 4.
//!
//! One request: `POST /` to the region's ECR endpoint with the JSON 1.1 target header and
//! body `{}`, signed by `aws-sigv4` for service `ecr` and the registry's region. The answer's
//! `authorizationToken` is base64 of `AWS:<password>`. Errors are classified by HTTP status
//! first and then by the error code, which real ECR sends as JSON `__type` and some servers
//! as XML `<Code>`; only the code is ever reported, never a message body, which may echo
//! request details. The answer is read within [`crate::registry::body::ECR_LIMIT`]; the
//! expiry it gives is kept only when it is a sane time (`parse_token`).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;

use super::EcrHost;
use crate::secret::Secret;

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The longest one GetAuthorizationToken call may take: an endpoint that stalls costs at
/// most this, per attempt.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A registry login obtained from ECR.
#[derive(Clone, Debug)]
pub struct Token {
    /// The registry user (always `AWS` today).
    pub user: Secret,
    /// The registry password.
    pub password: Secret,
    /// When ECR says it expires, if it said something usable.
    pub expires_at: Option<SystemTime>,
}

/// Why ECR gave no token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EcrError {
    /// The access key id or secret is wrong, expired or not signed right.
    #[error(
        "AWS rejected the access keys ({code}); check the _USER (access key id) and \
         _PASSWORD (secret access key) secrets, and _AWS_SESSION_TOKEN for temporary keys"
    )]
    KeysRejected {
        /// AWS's error code.
        code: String,
    },
    /// The keys are valid but may not get a token.
    #[error(
        "AWS denied the request ({code}); the IAM user or role needs ecr:GetAuthorizationToken \
         (e.g. the AmazonEC2ContainerRegistryReadOnly policy)"
    )]
    AccessDenied {
        /// AWS's error code.
        code: String,
    },
    /// ECR asked to slow down.
    #[error("ECR is throttling requests ({code})")]
    Throttled {
        /// AWS's error code.
        code: String,
    },
    /// No answer from the endpoint.
    #[error(
        "cannot reach the ECR API at {endpoint}: {reason}; check the network, or AWS_ENDPOINT_URL_ECR"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed (a certificate problem): retrying will not mend it.
    #[error("cannot reach the ECR API at {endpoint}: {reason}")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// The problem, in words.
        reason: String,
    },
    /// ECR failed on its side.
    #[error("the ECR API at {endpoint} failed with HTTP {status}")]
    ServerError {
        /// The endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
    },
    /// An answer berth cannot use.
    #[error("the ECR API at {endpoint} gave an answer berth cannot use: {what}")]
    Malformed {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        what: String,
    },
}

impl EcrError {
    /// Whether trying again later may succeed without the user changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EcrError::Throttled { .. }
                | EcrError::Unreachable { .. }
                | EcrError::ServerError { .. }
        )
    }
}

/// What a GetAuthorizationToken call needs.
#[derive(Clone, Debug)]
pub struct TokenRequest<'a> {
    /// The registry.
    pub host: &'a EcrHost,
    /// The endpoint to call (see [`super::EndpointVars::endpoint_for`]).
    pub endpoint: &'a str,
    /// The access key id.
    pub access_key_id: &'a Secret,
    /// The secret access key.
    pub secret_access_key: &'a Secret,
    /// The session token of temporary keys.
    pub session_token: Option<&'a Secret>,
}

/// A client for the ECR API. Its HTTPS client (which loads the system's certificates) is
/// made on the first call, so that berth pays nothing for it without ECR registries.
#[derive(Clone, Debug, Default)]
pub struct EcrClient {
    http: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl EcrClient {
    /// A client with bounded connect and request times, proxies from the environment, and
    /// the system's root certificates.
    pub fn new() -> EcrClient {
        EcrClient::default()
    }

    fn http(&self, endpoint: &str) -> Result<&reqwest::Client, EcrError> {
        if let Some(c) = self.http.get() {
            return Ok(c);
        }
        let client = crate::tls::http_client(Duration::from_secs(10), REQUEST_TIMEOUT).map_err(
            |reason| EcrError::Unreachable {
                endpoint: endpoint.to_string(),
                reason,
            },
        )?;
        Ok(self.http.get_or_init(|| client))
    }

    /// Calls GetAuthorizationToken once.
    pub async fn get_authorization_token(&self, req: &TokenRequest<'_>) -> Result<Token, EcrError> {
        let endpoint = req.endpoint.trim_end_matches('/');
        let url = format!("{endpoint}/");
        let body: &[u8] = b"{}";
        let identity = Credentials::new(
            req.access_key_id.expose(),
            req.secret_access_key.expose(),
            req.session_token.map(|t| t.expose().to_string()),
            None,
            "berth",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&req.host.region)
            .name("ecr")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| self.malformed(endpoint, format!("cannot sign: {e}")))?
            .into();
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| self.malformed(endpoint, format!("bad endpoint URL: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| self.malformed(endpoint, format!("cannot sign: {e}")))?
            .into_parts();
        let mut builder = self.http(endpoint)?.post(&url).body(body.to_vec());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        for (name, value) in instructions.headers() {
            builder = builder.header(name, value);
        }
        let response = builder.send().await.map_err(|e| {
            let reason = crate::tls::describe_error(&e);
            let endpoint = endpoint.to_string();
            if reason.starts_with(crate::tls::TLS_FAILED) {
                EcrError::Tls { endpoint, reason }
            } else {
                EcrError::Unreachable { endpoint, reason }
            }
        })?;
        let status = response.status().as_u16();
        let header_code = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(':').next().unwrap_or(s).to_string());
        use crate::registry::body::{self, BodyError};
        let text = body::read(response, body::ECR_LIMIT, "an ECR answer")
            .await
            .map_err(|e| match e {
                BodyError::Broken { reason, .. } => EcrError::Unreachable {
                    endpoint: endpoint.to_string(),
                    reason,
                },
                too_large @ BodyError::TooLarge { .. } => {
                    self.malformed(endpoint, too_large.to_string())
                }
            })?;
        if status == 200 {
            return parse_token(&text).map_err(|what| self.malformed(endpoint, what));
        }
        let code = header_code
            .or_else(|| error_code(&text))
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(classify(status, code, endpoint))
    }

    fn malformed(&self, endpoint: &str, what: String) -> EcrError {
        EcrError::Malformed {
            endpoint: endpoint.to_string(),
            what,
        }
    }
}

/// An error by status, then code.
fn classify(status: u16, code: String, endpoint: &str) -> EcrError {
    const REJECTED: &[&str] = &[
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "IncompleteSignature",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
    ];
    const DENIED: &[&str] = &[
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
    ];
    const THROTTLED: &[&str] = &[
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
    ];
    if status == 429 || THROTTLED.contains(&code.as_str()) {
        return EcrError::Throttled { code };
    }
    if status >= 500 {
        return EcrError::ServerError {
            endpoint: endpoint.to_string(),
            status,
        };
    }
    if REJECTED.contains(&code.as_str()) {
        return EcrError::KeysRejected { code };
    }
    if DENIED.contains(&code.as_str()) {
        return EcrError::AccessDenied { code };
    }
    match status {
        401 => EcrError::KeysRejected { code },
        403 => EcrError::AccessDenied { code },
        _ => EcrError::Malformed {
            endpoint: endpoint.to_string(),
            what: format!("HTTP {status} ({code})"),
        },
    }
}

/// The error code of an error body: JSON `__type` (`prefix#Code` or `Code:...`) or XML
/// `<Code>`.
fn error_code(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let t = v
            .get("__type")
            .or_else(|| v.get("code"))
            .and_then(|t| t.as_str())?;
        let t = t.rsplit('#').next().unwrap_or(t);
        return Some(t.split(':').next().unwrap_or(t).to_string());
    }
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    let code = text[start..end].trim();
    (!code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
        .then(|| code.to_string())
}

/// `authorizationData[0]` to a login. Its `expiresAt` (seconds since the epoch, as a
/// number) is kept only when it is a finite time after the epoch and before the year 5138
/// (1e11 s): `SystemTime` arithmetic on it then cannot overflow, and renewal clamps the
/// wait it implies ([`super::renewal::Schedule`]).
fn parse_token(body: &[u8]) -> Result<Token, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    let data = v
        .get("authorizationData")
        .and_then(|d| d.get(0))
        .ok_or("it has no authorizationData")?;
    let token = data
        .get("authorizationToken")
        .and_then(|t| t.as_str())
        .ok_or("it has no authorizationToken")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| "authorizationToken is not base64")?;
    let decoded = String::from_utf8(decoded).map_err(|_| "authorizationToken is not text")?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or("authorizationToken is not user:password")?;
    if user.is_empty() || password.is_empty() {
        return Err("authorizationToken has an empty user or password".into());
    }
    let expires_at = data
        .get("expiresAt")
        .and_then(|e| e.as_f64())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e11)
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s));
    Ok(Token {
        user: Secret::new(user),
        password: Secret::new(password),
        expires_at,
    })
}

/// A reqwest error in a few words, without the URL's query (there is none) or any body.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_decode_and_expiry_is_kept_when_sane() {
        let body = br#"{"authorizationData":[{"authorizationToken":"QVdTOnBhc3M6d29yZA==","expiresAt":1.7e9,"proxyEndpoint":"https://x"}]}"#;
        let t = parse_token(body).unwrap();
        assert_eq!(t.user.expose(), "AWS");
        assert_eq!(t.password.expose(), "pass:word");
        assert!(t.expires_at.is_some());
        let body =
            br#"{"authorizationData":[{"authorizationToken":"QVdTOnA=","expiresAt":"soon"}]}"#;
        assert!(parse_token(body).unwrap().expires_at.is_none());
        let body =
            br#"{"authorizationData":[{"authorizationToken":"QVdTOnA=","expiresAt":1e300}]}"#;
        assert!(parse_token(body).unwrap().expires_at.is_none());
    }

    #[test]
    fn malformed_answers_are_named() {
        assert!(parse_token(b"<html>").unwrap_err().contains("not JSON"));
        assert!(
            parse_token(b"{}")
                .unwrap_err()
                .contains("authorizationData")
        );
        assert!(
            parse_token(br#"{"authorizationData":[{"authorizationToken":"!!"}]}"#)
                .unwrap_err()
                .contains("base64")
        );
        assert!(
            parse_token(br#"{"authorizationData":[{"authorizationToken":"QVdT"}]}"#)
                .unwrap_err()
                .contains("user:password")
        );
    }

    #[test]
    fn error_codes_from_json_and_xml() {
        assert_eq!(
            error_code(br#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"x"}"#),
            Some("UnrecognizedClientException".into())
        );
        assert_eq!(
            error_code(b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error></ErrorResponse>"),
            Some("SignatureDoesNotMatch".into())
        );
        assert_eq!(error_code(b"oops"), None);
    }

    #[test]
    fn classification_by_status_then_code() {
        let c = |s, code: &str| classify(s, code.to_string(), "e");
        assert!(matches!(
            c(400, "UnrecognizedClientException"),
            EcrError::KeysRejected { .. }
        ));
        assert!(matches!(
            c(403, "SignatureDoesNotMatch"),
            EcrError::KeysRejected { .. }
        ));
        assert!(matches!(
            c(400, "AccessDeniedException"),
            EcrError::AccessDenied { .. }
        ));
        assert!(matches!(c(403, "HTTP 403"), EcrError::AccessDenied { .. }));
        assert!(matches!(
            c(400, "ThrottlingException"),
            EcrError::Throttled { .. }
        ));
        assert!(matches!(c(429, "HTTP 429"), EcrError::Throttled { .. }));
        assert!(matches!(
            c(503, "AccessDenied"),
            EcrError::ServerError { .. }
        ));
        assert!(matches!(c(404, "HTTP 404"), EcrError::Malformed { .. }));
        assert!(c(503, "x").is_transient() && !c(403, "x").is_transient());
    }
}
