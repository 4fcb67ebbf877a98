//! AWS ECR: recognising its registries, swapping access keys for registry tokens, and
//! deciding when to renew them.
//!
//! Codespaces lets `<ID>_CONTAINER_REGISTRY_USER`/`_PASSWORD` of an ECR registry be an AWS
//! access key id and secret access key; they are not a registry login but the means to get
//! one from ECR's GetAuthorizationToken, and that token lasts 12 hours. [`host`] recognises
//! the registry and its region, [`client`] makes the signed call, and [`renewal`] says when
//! the next one is due.

pub mod client;
pub mod host;
pub mod renewal;

pub use client::{EcrClient, EcrError, Token};
pub use host::{EcrHost, Partition};

/// The AWS variables that point ECR calls at another endpoint (the test bed's ECR API, a
/// VPC endpoint, a proxy): `AWS_ENDPOINT_URL_ECR`, then `AWS_ENDPOINT_URL`, both ignored
/// when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true, as the AWS SDKs do.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndpointVars {
    /// `AWS_ENDPOINT_URL_ECR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr: Option<String>,
    /// `AWS_ENDPOINT_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true.
    #[serde(default)]
    pub ignore: bool,
}

impl EndpointVars {
    /// The names of the variables, for forwarding them from a hook.
    pub const NAMES: [&'static str; 3] = [
        "AWS_ENDPOINT_URL_ECR",
        "AWS_ENDPOINT_URL",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ];

    /// Reads them from a variable lookup.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |n: &str| get(n).filter(|v| !v.trim().is_empty());
        EndpointVars {
            ecr: non_empty("AWS_ENDPOINT_URL_ECR"),
            global: non_empty("AWS_ENDPOINT_URL"),
            ignore: non_empty("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        }
    }

    /// Reads them from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|n| std::env::var(n).ok())
    }

    /// Whether any is set.
    pub fn is_empty(&self) -> bool {
        self.ecr.is_none() && self.global.is_none()
    }

    /// Keeps `self`'s values and fills the gaps from `other`.
    pub fn or(self, other: &EndpointVars) -> EndpointVars {
        if self.is_empty() && !self.ignore {
            other.clone()
        } else {
            self
        }
    }

    /// The endpoint to call for a registry.
    pub fn endpoint_for(&self, host: &EcrHost) -> String {
        let configured = if self.ignore {
            None
        } else {
            self.ecr.as_ref().or(self.global.as_ref())
        };
        configured
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| host.api_endpoint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_precedence() {
        let host = EcrHost::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com").unwrap();
        let vars = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            EndpointVars::from_lookup(|n| {
                pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
            })
        };
        assert_eq!(
            vars(&[]).endpoint_for(&host),
            "https://api.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            vars(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1/")]).endpoint_for(&host),
            "http://127.0.0.1:1"
        );
        assert_eq!(
            vars(&[
                ("AWS_ENDPOINT_URL", "http://a"),
                ("AWS_ENDPOINT_URL_ECR", "http://b")
            ])
            .endpoint_for(&host),
            "http://b"
        );
        assert_eq!(
            vars(&[
                ("AWS_ENDPOINT_URL_ECR", "http://b"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE")
            ])
            .endpoint_for(&host),
            "https://api.ecr.eu-west-1.amazonaws.com"
        );
    }
}
