//! Which token services get a registry's login: the one rule the pull path
//! ([`super::client`]) and `berth doctor` apply before they answer a `Bearer` challenge with
//! the login.
//!
//! Docker (distribution's token handler, with moby's credential store that ignores the
//! realm it is given) and containerd (`remotes/docker/authorizer.go`, which looks the login
//! up by the registry's host and sends it to whatever realm its challenge names) send the
//! login to any realm, `http://` included. berth sends it only where the registries it
//! serves need it:
//!
//! 1. the realm is `https://`, unless the registry itself is reached over plain HTTP (a
//!    loopback registry, or one in the engine's insecure-registries list: the login goes
//!    over plain HTTP to it anyway);
//! 2. the realm's host is the registry's host or a subdomain of it; or the registry's
//!    domain (its host without the first label, when at least two labels remain) or a
//!    subdomain of that; or a host the registry's family names ([`FAMILIES`]). The port
//!    does not matter (a token service beside the registry on another port is common);
//!    an IP address or a one-label host (`localhost`) has no domain: only itself.
//!
//! Checked against what the registries people use name: GHCR `https://ghcr.io/token`,
//! ACR `https://NAME.azurecr.io/oauth2/token`, GAR `https://REGION-docker.pkg.dev/v2/token`,
//! GCR `https://gcr.io/v2/token`, Harbor `https://HOST/service/token`, Quay
//! `https://quay.io/v2/auth`, NGC `https://nvcr.io/proxy_auth` (all the registry's own
//! host); Docker Hub `https://auth.docker.io/token` for `registry-1.docker.io` (the domain
//! `docker.io`, and listed as a family too); GitLab `https://gitlab.com/jwt/auth` for
//! `registry.gitlab.com`, and `https://gitlab.example.com/jwt/auth` for a self-managed
//! `registry.example.com` (the registry's domain); ECR answers `Basic` on the registry
//! itself, which this rule does not concern.
//!
//! What the rule does not stop: the registry's own operator (who could ask for `Basic`
//! and get the login directly), and on a domain many tenants share (`azurecr.io`,
//! `jfrog.io`) one tenant's registry naming another tenant's host, which only the operator
//! of both can write into a challenge berth receives over TLS. Without a login nothing is
//! sent, and any realm may be asked for an anonymous token.

use crate::registry::Server;

/// Token services that a registry family runs on another host than its registries, by the
/// registry's API host: Docker Hub's registry `registry-1.docker.io` names
/// `auth.docker.io`.
pub const FAMILIES: &[(&str, &[&str])] = &[("registry-1.docker.io", &["auth.docker.io"])];

/// The rule, in words, for messages.
pub const RULE: &str = "a registry's login goes only to a token service over https (plain \
    http only for a registry itself reached over plain http: loopback or the engine's \
    insecure-registries) on the registry's own host, its domain, or a host its family names \
    (auth.docker.io for Docker Hub)";

/// Why a realm does not get the login.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "berth will not send the login for {registry} to the token service {realm} it names: {why}; {RULE}"
)]
pub struct RealmRefused {
    /// The registry (its API host).
    pub registry: String,
    /// The realm, as the challenge named it.
    pub realm: String,
    /// What about the realm breaks the rule.
    pub why: Why,
}

/// What about a realm breaks the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Not an absolute http(s) URL with a host.
    NotAUrl,
    /// `http://` for a registry reached over https.
    PlainHttp,
    /// A host that is not the registry's, its domain's, or its family's.
    OtherHost,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Why::NotAUrl => "it is not an http(s) URL",
            Why::PlainHttp => "it is plain http, and the registry is reached over https",
            Why::OtherHost => "it is on another host than the registry's",
        })
    }
}

/// The realm's URL, if `registry` (reached over plain HTTP when `plain_http`) may send its
/// login there.
pub fn check(
    registry: &Server,
    plain_http: bool,
    realm: &str,
) -> Result<reqwest::Url, RealmRefused> {
    let refused = |why| RealmRefused {
        registry: registry.api_host().to_string(),
        realm: realm.to_string(),
        why,
    };
    let url = reqwest::Url::parse(realm).map_err(|_| refused(Why::NotAUrl))?;
    let host = match url.host_str() {
        Some(h) if matches!(url.scheme(), "https" | "http") => h.to_ascii_lowercase(),
        _ => return Err(refused(Why::NotAUrl)),
    };
    if url.scheme() == "http" && !plain_http {
        return Err(refused(Why::PlainHttp));
    }
    let (name, _) = registry.api_address();
    // The URL parser keeps an IPv6 address's brackets; the registry's address has none.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host_allowed(&name.to_ascii_lowercase(), host) {
        Ok(url)
    } else {
        Err(refused(Why::OtherHost))
    }
}

/// Whether `realm` (a host name or address, lower-case) may get the login of the registry
/// at `registry` (likewise).
fn host_allowed(registry: &str, realm: &str) -> bool {
    if realm == registry {
        return true;
    }
    if FAMILIES
        .iter()
        .any(|(r, realms)| *r == registry && realms.contains(&realm))
    {
        return true;
    }
    let is_address = |h: &str| h.parse::<std::net::IpAddr>().is_ok();
    if is_address(registry) || is_address(realm) {
        return false;
    }
    let within = |domain: &str| {
        realm == domain
            || realm
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1)
    };
    if within(registry) {
        return true;
    }
    match registry.split_once('.') {
        Some((_, domain)) if domain.contains('.') => within(domain),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_of(registry: &str, plain_http: bool, realm: &str) -> Result<(), Why> {
        let server = Server::parse(registry).unwrap();
        check(&server, plain_http, realm)
            .map(drop)
            .map_err(|e| e.why)
    }

    #[test]
    fn the_realms_registries_name_are_allowed() {
        for (registry, realm) in [
            ("ghcr.io", "https://ghcr.io/token"),
            ("docker.io", "https://auth.docker.io/token"),
            ("myreg.azurecr.io", "https://myreg.azurecr.io/oauth2/token"),
            (
                "europe-docker.pkg.dev",
                "https://europe-docker.pkg.dev/v2/token",
            ),
            ("gcr.io", "https://gcr.io/v2/token"),
            (
                "harbor.example.com",
                "https://harbor.example.com/service/token",
            ),
            ("quay.io", "https://quay.io/v2/auth"),
            ("nvcr.io", "https://nvcr.io/proxy_auth"),
            ("registry.gitlab.com", "https://gitlab.com/jwt/auth"),
            (
                "registry.example.com",
                "https://gitlab.example.com/jwt/auth",
            ),
            (
                "registry.example.com:5000",
                "https://registry.example.com:5001/auth",
            ),
            (
                "registry.example.com",
                "https://auth.registry.example.com/token",
            ),
            ("GHCR.io", "https://GHCR.IO/token"),
        ] {
            assert_eq!(
                check_of(registry, false, realm),
                Ok(()),
                "{registry} {realm}"
            );
        }
    }

    #[test]
    fn plain_http_only_for_a_registry_reached_over_plain_http() {
        assert_eq!(
            check_of("ghcr.io", false, "http://ghcr.io/token"),
            Err(Why::PlainHttp)
        );
        assert_eq!(
            check_of("127.0.0.1:5000", true, "http://127.0.0.1:5001/token"),
            Ok(())
        );
        assert_eq!(
            check_of("127.0.0.1:5000", true, "https://127.0.0.1/token"),
            Ok(())
        );
        assert_eq!(
            check_of("localhost:5000", true, "http://localhost:5001/token"),
            Ok(())
        );
    }

    #[test]
    fn other_hosts_are_refused() {
        for (registry, realm) in [
            ("ghcr.io", "https://evil.example/token"),
            ("ghcr.io", "https://ghcr.io.evil.example/token"),
            ("ghcr.io", "https://notghcr.io/token"),
            ("ghcr.io", "https://io/token"),
            ("myreg.azurecr.io", "https://azurecr.io.evil.example/token"),
            ("docker.io", "https://auth.docker.io.evil.example/token"),
            ("docker.io", "https://evildocker.io/token"),
            ("127.0.0.1:5000", "http://localhost:5001/token"),
            ("localhost:5000", "http://127.0.0.1:5001/token"),
            ("127.0.0.1:5000", "http://127.0.0.2/token"),
            ("10.0.0.1:5000", "https://0.0.1/token"),
            ("[::1]:5000", "http://[::2]/token"),
        ] {
            assert_eq!(
                check_of(registry, true, realm),
                Err(Why::OtherHost),
                "{registry} {realm}"
            );
        }
        assert_eq!(check_of("[::1]:5000", true, "http://[::1]:5001/t"), Ok(()));
    }

    #[test]
    fn what_is_not_an_http_url_is_refused() {
        for realm in [
            "",
            "/token",
            "ghcr.io/token",
            "ftp://ghcr.io/token",
            "file:///etc/passwd",
        ] {
            assert_eq!(
                check_of("ghcr.io", true, realm),
                Err(Why::NotAUrl),
                "{realm:?}"
            );
        }
    }

    #[test]
    fn the_message_names_the_registry_the_realm_and_the_rule() {
        let server = Server::parse("127.0.0.1:5000").unwrap();
        let e = check(&server, true, "http://localhost:9/token").unwrap_err();
        let said = e.to_string();
        assert!(said.contains("for 127.0.0.1:5000"), "{said}");
        assert!(said.contains("http://localhost:9/token"), "{said}");
        assert!(said.contains("on another host"), "{said}");
        assert!(said.contains("its domain"), "{said}");
    }
}
