//! Registry servers: how a `<ID>_CONTAINER_REGISTRY_SERVER` value becomes the key Docker uses.
//!
//! Docker keys its credentials by registry: `https://index.docker.io/v1/` for Docker Hub and
//! `host[:port]` for every other registry. This module turns what a user typed (with or
//! without a scheme, a trailing path, upper-case letters, one of Docker Hub's many aliases)
//! into that key, rejects what is not a registry host at all, and classifies the registry for
//! the rest of berth (AWS ECR, Docker Hub, other). [`client`] talks to a registry's API,
//! [`manifest`] reads what its manifests say (platforms, layers and their sizes), [`realm`]
//! decides which token services get a registry's login, and [`body`] reads what servers
//! send within limits.

pub mod body;
pub mod client;
pub mod manifest;
pub mod realm;

use std::fmt;

use crate::ecr::EcrHost;

/// The key Docker uses for Docker Hub in `config.json`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The host that serves Docker Hub's registry API.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Host names that all mean Docker Hub.
const DOCKER_HUB_ALIASES: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.docker.io",
    "registry.hub.docker.com",
    "hub.docker.com",
];

/// A normalised registry server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Server {
    /// `host` or `host:port`, lower-case; for Docker Hub, `docker.io`.
    host: String,
    /// The port in `host`, if one is written (never for Docker Hub).
    port: Option<u16>,
    /// Whether this is Docker Hub.
    docker_hub: bool,
}

/// Why a server value is not a registry host. The variants never carry the value itself: a
/// password pasted into the SERVER secret by mistake must not end up in a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// Nothing but blanks.
    #[error("it is empty")]
    Empty,
    /// A scheme other than http or https.
    #[error("it has a scheme other than https:// or http://")]
    Scheme,
    /// `user@host`.
    #[error("it contains a user name before '@'; put the user in the _USER secret")]
    UserInfo,
    /// Blanks or characters a host name cannot have.
    #[error("it has characters a host name cannot have (only letters, digits, '-' and '.')")]
    Characters,
    /// No dot, no port and not localhost: a single word is not a registry host.
    #[error("it is a single word; a registry host has a dot, a port, or is localhost")]
    SingleWord,
    /// A label that is empty, too long, or starts or ends with '-'.
    #[error("it is not a valid host name")]
    Label,
    /// A port that is not a number from 1 to 65535.
    #[error("its port is not a number from 1 to 65535")]
    Port,
}

impl Server {
    /// Normalises a server value: drops the scheme and any path, lower-cases the host, keeps
    /// the port, and maps Docker Hub's aliases to Docker Hub. This is berth's one parser of
    /// registry hosts: image references hand it their registry part too.
    ///
    /// The scheme and path are cut off as the Docker CLI cuts them (at `://` and the first
    /// `/`), not by a URL parser: one would drop a default port written out (`x.io:443`) and
    /// rewrite hosts (`127.1`, percent-escapes, IDNA), and Docker keys credentials by the
    /// host as written.
    pub fn parse(raw: &str) -> Result<Server, ServerError> {
        let mut rest = raw.trim();
        if rest.is_empty() {
            return Err(ServerError::Empty);
        }
        if let Some(i) = rest.find("://") {
            let scheme = &rest[..i];
            if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
                return Err(ServerError::Scheme);
            }
            rest = &rest[i + 3..];
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(ServerError::UserInfo);
        }
        if authority.is_empty() {
            return Err(ServerError::Empty);
        }
        let (host, port) = split_port(authority)?;
        let host = host.to_ascii_lowercase();
        validate_host(&host, port.is_some())?;
        if DOCKER_HUB_ALIASES.contains(&host.as_str()) && matches!(port, None | Some(443)) {
            return Ok(Server {
                host: "docker.io".into(),
                port: None,
                docker_hub: true,
            });
        }
        let host = match port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        Ok(Server {
            host,
            port,
            docker_hub: false,
        })
    }

    /// The key of this registry in `config.json` (`auths` and `credHelpers`).
    pub fn config_key(&self) -> &str {
        if self.docker_hub {
            DOCKER_HUB_KEY
        } else {
            &self.host
        }
    }

    /// The host, with its port if it has one (`docker.io` for Docker Hub).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host without the port.
    pub fn host_name(&self) -> &str {
        match (self.port, self.host.rsplit_once(':')) {
            (Some(_), Some((name, _))) => name,
            _ => &self.host,
        }
    }

    /// Whether this is Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.docker_hub
    }

    /// The host that serves the registry API (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.docker_hub {
            DOCKER_HUB_API_HOST
        } else {
            &self.host
        }
    }

    /// Where to connect to the registry API: the host name (an IPv6 address without its
    /// brackets, as a socket address wants it) and the port, if one is written.
    pub fn api_address(&self) -> (&str, Option<u16>) {
        if self.docker_hub {
            return (DOCKER_HUB_API_HOST, None);
        }
        let name = self.host_name();
        let name = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        (name, self.port)
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.config_key())
    }
}

/// Splits `host:port` (or `[v6]:port`) and checks the port.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), ServerError> {
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let after = &authority[end + 1..];
                match after.strip_prefix(':') {
                    Some(p) => (&authority[..=end], Some(p)),
                    None if after.is_empty() => (&authority[..=end], None),
                    None => return Err(ServerError::Characters),
                }
            }
            None => return Err(ServerError::Characters),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err(ServerError::Port),
        },
    };
    Ok((host, port))
}

/// A host name (RFC 1123 labels), an IPv4 address, or a bracketed IPv6 address.
fn validate_host(host: &str, has_port: bool) -> Result<(), ServerError> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| ServerError::Characters);
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(ServerError::Characters);
    }
    if host.len() > 253 {
        return Err(ServerError::Label);
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return Err(ServerError::Label);
        }
    }
    if !host.contains('.') && !has_port && host != "localhost" {
        return Err(ServerError::SingleWord);
    }
    Ok(())
}

/// What kind of registry a secret set points at, which decides how berth logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryKind {
    /// AWS ECR with an access key id and secret: berth swaps them for a registry token.
    EcrAccessKeys(EcrHost),
    /// AWS ECR with USER=`AWS` and a token fetched beforehand: used as it is.
    EcrToken(EcrHost),
    /// Docker Hub.
    DockerHub,
    /// Any other registry: user and password used as they are.
    Other,
}

impl RegistryKind {
    /// Classifies a registry from its server and user name.
    pub fn classify(server: &Server, user: &str) -> RegistryKind {
        if server.is_docker_hub() {
            return RegistryKind::DockerHub;
        }
        match EcrHost::parse(server.host()) {
            Some(ecr) if user == "AWS" => RegistryKind::EcrToken(ecr),
            Some(ecr) => RegistryKind::EcrAccessKeys(ecr),
            None => RegistryKind::Other,
        }
    }

    /// A short stable name, for status output and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            RegistryKind::EcrAccessKeys(_) => "ecr-access-keys",
            RegistryKind::EcrToken(_) => "ecr-token",
            RegistryKind::DockerHub => "docker-hub",
            RegistryKind::Other => "other",
        }
    }

    /// The ECR host, for both ECR kinds.
    pub fn ecr(&self) -> Option<&EcrHost> {
        match self {
            RegistryKind::EcrAccessKeys(h) | RegistryKind::EcrToken(h) => Some(h),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        Server::parse(raw).unwrap().config_key().to_string()
    }

    #[test]
    fn docker_hub_aliases_map_to_the_index_key() {
        for raw in [
            "docker.io",
            "https://index.docker.io/v1/",
            "index.docker.io",
            "registry-1.docker.io",
            "https://registry-1.docker.io/v2/",
            "Docker.IO",
            "registry.hub.docker.com",
            "hub.docker.com",
            "docker.io:443",
        ] {
            assert_eq!(key(raw), DOCKER_HUB_KEY, "{raw}");
        }
        assert!(Server::parse("docker.io").unwrap().is_docker_hub());
    }

    #[test]
    fn scheme_and_path_are_dropped_case_folded_port_kept() {
        assert_eq!(key("https://GHCR.io/owner/repo"), "ghcr.io");
        assert_eq!(key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(key("MyReg.AzureCR.io"), "myreg.azurecr.io");
        assert_eq!(key("  eu.gcr.io\n"), "eu.gcr.io");
        assert_eq!(key("localhost"), "localhost");
        assert_eq!(key("registry:5000"), "registry:5000");
        assert_eq!(key("[::1]:5000"), "[::1]:5000");
        assert_eq!(key("docker.io:5000"), "docker.io:5000");
        assert_eq!(key("https://x.io:443/v2/"), "x.io:443");
        assert_eq!(key("http://x.io:80"), "x.io:80");
        assert_eq!(
            key("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn not_a_host_is_rejected() {
        assert_eq!(Server::parse(""), Err(ServerError::Empty));
        assert_eq!(Server::parse("https://"), Err(ServerError::Empty));
        assert_eq!(Server::parse("ftp://x.io"), Err(ServerError::Scheme));
        assert_eq!(Server::parse("me@x.io"), Err(ServerError::UserInfo));
        assert_eq!(
            Server::parse("my registry.io"),
            Err(ServerError::Characters)
        );
        assert_eq!(Server::parse("ghcr"), Err(ServerError::SingleWord));
        assert_eq!(Server::parse("x.io:0"), Err(ServerError::Port));
        assert_eq!(Server::parse("x.io:99999"), Err(ServerError::Port));
        assert_eq!(Server::parse("x.io:abc"), Err(ServerError::Port));
        assert_eq!(Server::parse("-x.io"), Err(ServerError::Label));
        assert_eq!(Server::parse("x..io"), Err(ServerError::Label));
        assert_eq!(Server::parse("p@ss:w0rd!"), Err(ServerError::UserInfo));
    }

    #[test]
    fn errors_never_contain_the_value() {
        let err = Server::parse("hunter2 secret").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn classification() {
        let ecr = Server::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap();
        assert_eq!(
            RegistryKind::classify(&ecr, "AKIAEXAMPLE").name(),
            "ecr-access-keys"
        );
        assert_eq!(RegistryKind::classify(&ecr, "AWS").name(), "ecr-token");
        let hub = Server::parse("docker.io").unwrap();
        assert_eq!(RegistryKind::classify(&hub, "me"), RegistryKind::DockerHub);
        let other = Server::parse("ghcr.io").unwrap();
        assert_eq!(RegistryKind::classify(&other, "AWS"), RegistryKind::Other);
    }

    #[test]
    fn host_name_without_port() {
        assert_eq!(Server::parse("x.io:5000").unwrap().host_name(), "x.io");
        assert_eq!(Server::parse("x.io").unwrap().host_name(), "x.io");
        assert_eq!(Server::parse("[::1]:5000").unwrap().host_name(), "[::1]");
        assert_eq!(Server::parse("[::1]").unwrap().host_name(), "[::1]");
    }

    #[test]
    fn hosts_and_ports_are_split() {
        let address = |raw| {
            let server = Server::parse(raw).unwrap();
            let (host, port) = server.api_address();
            (host.to_string(), port)
        };
        assert_eq!(address("ghcr.io"), ("ghcr.io".to_string(), None));
        assert_eq!(
            address("127.0.0.1:5000"),
            ("127.0.0.1".to_string(), Some(5000))
        );
        assert_eq!(address("[::1]:5000"), ("::1".to_string(), Some(5000)));
        assert_eq!(
            address("docker.io"),
            ("registry-1.docker.io".to_string(), None)
        );
    }
}
