//! Image references: what a user or a workspace file names as an image, checked and normalised.
//!
//! An image reference is read by the grammar of Docker's `distribution/reference` package: an
//! optional registry (`host`, `host:port`, an IPv4 or bracketed IPv6 address, `localhost`), a
//! lower-case repository path, an optional `:tag` and an optional `@algorithm:hex` digest.
//! Docker Hub's shorthands are expanded the way the Docker CLI does (`ubuntu` is
//! `docker.io/library/ubuntu:latest`, `index.docker.io` is `docker.io`), so that two spellings of
//! the same image compare equal. This module owns that normalisation and the forms the rest of
//! berth hands on: the registry [`Server`] whose credentials a pull needs, and the
//! `fromImage`/`tag` pair of the Engine API's image-create call.

use std::fmt;
use std::str::FromStr;

use crate::registry::Server;

/// The registry of images named without one.
const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// Docker Hub's old name, normalised to [`DOCKER_HUB_DOMAIN`].
const LEGACY_DOCKER_HUB_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images (`ubuntu` is `library/ubuntu`).
const OFFICIAL_PREFIX: &str = "library/";
/// The tag of a reference that names neither a tag nor a digest.
const DEFAULT_TAG: &str = "latest";
/// The longest a registry and repository path may be together (`domain/path`).
const NAME_MAX: usize = 255;
/// The longest a tag may be.
const TAG_MAX: usize = 128;
/// The digest algorithms Docker can verify, with the number of hex digits of each.
const DIGEST_ALGORITHMS: &[(&str, usize)] = &[("sha256", 64), ("sha384", 96), ("sha512", 128)];

/// A valid, normalised image reference.
///
/// Equality, hashing and ordering are on the normalised parts, so `ubuntu`,
/// `docker.io/library/ubuntu:latest` and `index.docker.io/library/ubuntu` are one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// The registry, lower-case: `docker.io`, `ghcr.io`, `127.0.0.1:5000`, `[::1]:5000`.
    domain: String,
    /// The repository path inside the registry: `library/ubuntu`, `owner/app`.
    path: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    tag: Option<String>,
    /// The digest, `algorithm:hex`.
    digest: Option<String>,
    /// The registry as berth keys its credentials; a function of `domain`.
    server: Server,
}

/// Why a text is not an image reference. Every message quotes the text (image names are not
/// secret), says what is wrong and shows what a valid reference looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// Nothing but blanks.
    #[error("the image reference is empty; name an image, like ghcr.io/owner/app:1.0")]
    Empty,
    /// A URL scheme such as `https://` in front of the name.
    #[error(
        "image {image:?}: an image reference has no scheme (drop the http:// or https://), like ghcr.io/owner/app:1.0"
    )]
    Scheme {
        /// The text as given, trimmed.
        image: String,
    },
    /// Blanks inside the reference.
    #[error("image {image:?}: an image reference has no blanks in it, like ghcr.io/owner/app:1.0")]
    Blank {
        /// The text as given, trimmed.
        image: String,
    },
    /// 64 hex digits alone: an image ID, which cannot be pulled.
    #[error(
        "image {image:?}: 64 hex digits is an image ID, not a name; name the image, like ghcr.io/owner/app@sha256:<64 hex digits>"
    )]
    ImageId {
        /// The text as given, trimmed.
        image: String,
    },
    /// A tag or digest with no repository name before it.
    #[error(
        "image {image:?}: the repository name is missing before the tag or digest, like ghcr.io/owner/app:1.0"
    )]
    MissingName {
        /// The text as given, trimmed.
        image: String,
    },
    /// The registry part is not a host name, IPv4 or bracketed IPv6 address with an optional port.
    #[error(
        "image {image:?}: the registry {domain:?} is not a host name or IP address with an optional :port, like ghcr.io, localhost:5000 or [::1]:5000"
    )]
    Domain {
        /// The text as given, trimmed.
        image: String,
        /// The registry part as written.
        domain: String,
    },
    /// Upper-case letters in the repository path.
    #[error(
        "image {image:?}: the repository must be lower-case (letters, digits, and . _ - separators), like ghcr.io/owner/app:1.0"
    )]
    Uppercase {
        /// The text as given, trimmed.
        image: String,
    },
    /// An empty part in the repository path: a leading, trailing or doubled `/`.
    #[error(
        "image {image:?}: the repository has an empty part (a leading, trailing or doubled '/'), like ghcr.io/owner/app:1.0"
    )]
    EmptyComponent {
        /// The text as given, trimmed.
        image: String,
    },
    /// A part of the repository path with characters or separators the grammar does not allow.
    #[error(
        "image {image:?}: the repository part {component:?} must be lower-case letters and digits joined by one '.', one or two '_', or dashes, like ghcr.io/owner/app:1.0"
    )]
    Component {
        /// The text as given, trimmed.
        image: String,
        /// The offending part of the path.
        component: String,
    },
    /// The registry and repository path together are longer than 255 characters.
    #[error(
        "image {image:?}: the registry and repository together are {len} characters long, more than the {NAME_MAX} allowed; shorten the name, like ghcr.io/owner/app:1.0"
    )]
    NameTooLong {
        /// The text as given, trimmed.
        image: String,
        /// The length of `registry/repository`.
        len: usize,
    },
    /// A tag with characters the grammar does not allow, or an empty one.
    #[error(
        "image {image:?}: the tag {tag:?} must be letters, digits, '_', '.' or '-', not starting with '.' or '-', like ghcr.io/owner/app:1.0"
    )]
    Tag {
        /// The text as given, trimmed.
        image: String,
        /// The offending tag.
        tag: String,
    },
    /// A tag longer than 128 characters.
    #[error(
        "image {image:?}: the tag is {len} characters long; a tag has at most {TAG_MAX}, like ghcr.io/owner/app:1.0"
    )]
    TagTooLong {
        /// The text as given, trimmed.
        image: String,
        /// The tag's length.
        len: usize,
    },
    /// A digest that is not `algorithm:hex`.
    #[error(
        "image {image:?}: the digest {digest:?} is not algorithm:hex, like ghcr.io/owner/app@sha256:<64 hex digits>"
    )]
    Digest {
        /// The text as given, trimmed.
        image: String,
        /// The offending digest.
        digest: String,
    },
    /// A digest algorithm Docker cannot verify.
    #[error(
        "image {image:?}: the digest algorithm {algorithm:?} is not supported; use sha256, sha384 or sha512, like ghcr.io/owner/app@sha256:<64 hex digits>"
    )]
    DigestAlgorithm {
        /// The text as given, trimmed.
        image: String,
        /// The offending algorithm.
        algorithm: String,
    },
    /// A digest whose hex part has the wrong length for its algorithm, or upper-case digits.
    #[error(
        "image {image:?}: a {algorithm} digest is {expected} lower-case hex digits, not {found:?}, like ghcr.io/owner/app@sha256:<64 hex digits>"
    )]
    DigestEncoded {
        /// The text as given, trimmed.
        image: String,
        /// The digest's algorithm.
        algorithm: String,
        /// How many hex digits the algorithm has.
        expected: usize,
        /// The hex part as written.
        found: String,
    },
}

impl ImageRef {
    /// Parses and normalises an image reference; surrounding blanks are ignored.
    pub fn parse(s: &str) -> Result<ImageRef, ImageRefError> {
        let text = s.trim();
        let image = || text.to_string();
        if text.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if text.contains("://") {
            return Err(ImageRefError::Scheme { image: image() });
        }
        if text.chars().any(char::is_whitespace) {
            return Err(ImageRefError::Blank { image: image() });
        }
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ImageRefError::ImageId { image: image() });
        }

        let (name_and_tag, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (text, None),
        };
        if name_and_tag.is_empty() || name_and_tag.starts_with(':') {
            return Err(ImageRefError::MissingName { image: image() });
        }

        // The first part is a registry only if it looks like a host (the Docker CLI's rule);
        // otherwise the whole name is a Docker Hub repository.
        let (written_domain, remainder) = match name_and_tag.split_once('/') {
            Some((first, rest))
                if first == "localhost" || first.contains('.') || first.contains(':') =>
            {
                (Some(first), rest)
            }
            _ => (None, name_and_tag),
        };
        // A repository path has no ':', so the first one starts the tag.
        let (remote, tag) = match remainder.split_once(':') {
            Some((r, t)) => (r, Some(t)),
            None => (remainder, None),
        };

        let (domain, server) = match written_domain {
            Some(d) => {
                let server = check_domain(d).ok_or_else(|| ImageRefError::Domain {
                    image: image(),
                    domain: d.to_string(),
                })?;
                let mut domain = d.to_ascii_lowercase();
                if domain == LEGACY_DOCKER_HUB_DOMAIN {
                    domain = DOCKER_HUB_DOMAIN.to_string();
                }
                (domain, server)
            }
            None => (DOCKER_HUB_DOMAIN.to_string(), docker_hub()),
        };

        if remote.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ImageRefError::Uppercase { image: image() });
        }
        for component in remote.split('/') {
            if component.is_empty() {
                return Err(ImageRefError::EmptyComponent { image: image() });
            }
            if !is_path_component(component) {
                return Err(ImageRefError::Component {
                    image: image(),
                    component: component.to_string(),
                });
            }
        }
        let path = if domain == DOCKER_HUB_DOMAIN && !remote.contains('/') {
            format!("{OFFICIAL_PREFIX}{remote}")
        } else {
            remote.to_string()
        };
        let len = domain.len() + 1 + path.len();
        if len > NAME_MAX {
            return Err(ImageRefError::NameTooLong {
                image: image(),
                len,
            });
        }

        if let Some(tag) = tag {
            if tag.len() > TAG_MAX {
                return Err(ImageRefError::TagTooLong {
                    image: image(),
                    len: tag.len(),
                });
            }
            if !is_tag(tag) {
                return Err(ImageRefError::Tag {
                    image: image(),
                    tag: tag.to_string(),
                });
            }
        }
        if let Some(digest) = digest {
            check_digest(text, digest)?;
        }

        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(ImageRef {
            domain,
            path,
            tag,
            digest: digest.map(str::to_string),
            server,
        })
    }

    /// The registry, lower-case: `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/ubuntu`, `owner/app`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag; `Some("latest")` when the reference named neither a tag nor a digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:...`), if the reference named one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The registry whose credentials a pull of this image needs; Docker Hub for `docker.io`.
    pub fn server(&self) -> Server {
        self.server.clone()
    }

    /// The repository with its registry, `docker.io/library/ubuntu`: the Engine API's
    /// `fromImage` parameter.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The Engine API's `tag` parameter: the digest if there is one, else the tag. Never
    /// empty, since an empty tag would pull every tag of the repository.
    pub fn pull_tag(&self) -> String {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
            .to_string()
    }

    /// The full normalised form: `docker.io/library/ubuntu:latest`, `x.io/a/b:1@sha256:...`.
    pub fn canonical(&self) -> String {
        let mut s = self.repository();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// Docker Hub as a [`Server`].
fn docker_hub() -> Server {
    Server::parse(DOCKER_HUB_DOMAIN).expect("docker.io is a valid registry host")
}

/// Checks a registry part against the grammar (`domain-name` or `[IPv6]`, then an optional
/// `:port`) and returns it as a [`Server`], which also rejects ports above 65535, labels
/// longer than 63 characters and malformed IPv6 addresses.
fn check_domain(domain: &str) -> Option<Server> {
    let (host, port) = if domain.starts_with('[') {
        let end = domain.find(']')?;
        let inner = &domain[1..end];
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return None;
        }
        let after = &domain[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => (&domain[..=end], Some(p)),
            None if after.is_empty() => (&domain[..=end], None),
            None => return None,
        }
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        };
        if !host.split('.').all(is_domain_component) {
            return None;
        }
        (host, port)
    };
    if host.is_empty() {
        return None;
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Server::parse(domain).ok()
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`, with `\w` the ASCII word characters.
fn is_tag(tag: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*`.
fn is_digest_algorithm(alg: &str) -> bool {
    alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    })
}

/// Checks `algorithm:hex` by the grammar, then that the algorithm is one Docker verifies and
/// the hex part has its length, in lower case.
fn check_digest(image: &str, digest: &str) -> Result<(), ImageRefError> {
    let malformed = || ImageRefError::Digest {
        image: image.to_string(),
        digest: digest.to_string(),
    };
    let (algorithm, hex) = digest.split_once(':').ok_or_else(malformed)?;
    if !is_digest_algorithm(algorithm)
        || hex.is_empty()
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(malformed());
    }
    let expected = DIGEST_ALGORITHMS
        .iter()
        .find(|(name, _)| *name == algorithm)
        .map(|(_, len)| *len)
        .ok_or_else(|| ImageRefError::DigestAlgorithm {
            image: image.to_string(),
            algorithm: algorithm.to_string(),
        })?;
    if hex.len() != expected || hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ImageRefError::DigestEncoded {
            image: image.to_string(),
            algorithm: algorithm.to_string(),
            expected,
            found: hex.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::DOCKER_HUB_KEY;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Parses `text` and checks its parts; an empty expected tag or digest means none.
    fn check(text: &str, domain: &str, path: &str, tag: &str, digest: &str) {
        let r = ImageRef::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let given = |s: &str| (!s.is_empty()).then(|| s.to_string());
        assert_eq!(r.domain(), domain, "{text:?}");
        assert_eq!(r.path(), path, "{text:?}");
        assert_eq!(r.tag().map(String::from), given(tag), "{text:?}");
        assert_eq!(r.digest().map(String::from), given(digest), "{text:?}");
        assert_eq!(r, r.canonical().parse().unwrap(), "{text:?} round trip");
    }

    #[test]
    fn valid_references_and_their_parts() {
        let cases = [
            // Docker Hub forms.
            ("ubuntu", "docker.io", "library/ubuntu", "latest", ""),
            ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", ""),
            ("  ubuntu\n", "docker.io", "library/ubuntu", "latest", ""),
            (
                "library/ubuntu",
                "docker.io",
                "library/ubuntu",
                "latest",
                "",
            ),
            (
                "docker.io/ubuntu",
                "docker.io",
                "library/ubuntu",
                "latest",
                "",
            ),
            (
                "index.docker.io/library/ubuntu",
                "docker.io",
                "library/ubuntu",
                "latest",
                "",
            ),
            (
                "Docker.IO/library/ubuntu",
                "docker.io",
                "library/ubuntu",
                "latest",
                "",
            ),
            ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", ""),
            ("x.io", "docker.io", "library/x.io", "latest", ""),
            (
                "registry-1.docker.io/ubuntu",
                "registry-1.docker.io",
                "ubuntu",
                "latest",
                "",
            ),
            // Other registries, ports, IP addresses, localhost.
            ("ghcr.io/owner/app:1.0", "ghcr.io", "owner/app", "1.0", ""),
            ("GHCR.io/owner/app", "ghcr.io", "owner/app", "latest", ""),
            (
                "127.0.0.1:5000/team/app",
                "127.0.0.1:5000",
                "team/app",
                "latest",
                "",
            ),
            ("[::1]:5000/app:dev", "[::1]:5000", "app", "dev", ""),
            ("[2001:db8::1]/x", "[2001:db8::1]", "x", "latest", ""),
            ("localhost/x", "localhost", "x", "latest", ""),
            ("localhost:5000/x:1", "localhost:5000", "x", "1", ""),
            ("registry:5000/a", "registry:5000", "a", "latest", ""),
            // No '/': the Docker Hub image `localhost` with tag `5000`, as the Docker CLI reads it.
            (
                "localhost:5000",
                "docker.io",
                "library/localhost",
                "5000",
                "",
            ),
            // Paths and separators.
            ("x.io/a/b/c/d/e/f", "x.io", "a/b/c/d/e/f", "latest", ""),
            ("x.io/a__b", "x.io", "a__b", "latest", ""),
            ("x.io/a_b", "x.io", "a_b", "latest", ""),
            ("x.io/a--b", "x.io", "a--b", "latest", ""),
            ("x.io/a---b-c", "x.io", "a---b-c", "latest", ""),
            ("x.io/a.b/c.d.e", "x.io", "a.b/c.d.e", "latest", ""),
            ("x.io/0/9z", "x.io", "0/9z", "latest", ""),
            // Tags.
            ("ubuntu:Latest", "docker.io", "library/ubuntu", "Latest", ""),
            ("ubuntu:_x.y-Z", "docker.io", "library/ubuntu", "_x.y-Z", ""),
        ];
        for (text, domain, path, tag, digest) in cases {
            check(text, domain, path, tag, digest);
        }
        let tag128 = format!("t{}", "a".repeat(127));
        check(&format!("x.io/a:{tag128}"), "x.io", "a", &tag128, "");
        // Digests, alone and with a tag.
        check(
            &format!("ubuntu@{SHA}"),
            "docker.io",
            "library/ubuntu",
            "",
            SHA,
        );
        check(&format!("x.io/a/b:1@{SHA}"), "x.io", "a/b", "1", SHA);
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        check(&format!("x.io/a@{sha512}"), "x.io", "a", "", &sha512);
        let sha384 = format!("sha384:{}", "0".repeat(96));
        check(&format!("x.io/a@{sha384}"), "x.io", "a", "", &sha384);
    }

    #[test]
    fn longest_name_is_accepted() {
        // "x.io/" is 5 characters; 250 more make 255.
        let name = format!("x.io/{}", "a".repeat(250));
        assert!(ImageRef::parse(&name).is_ok());
        let name = format!("x.io/{}", "a".repeat(251));
        assert!(matches!(
            ImageRef::parse(&name),
            Err(ImageRefError::NameTooLong { len: 256, .. })
        ));
    }

    #[test]
    fn invalid_references_and_their_errors() {
        let long_name = format!("{}/a", "b".repeat(255));
        let long_tag = format!("ubuntu:{}", "a".repeat(129));
        let upper_hex = format!("ubuntu@sha256:{}", "AB".repeat(32));
        let no_name = format!("@{SHA}");
        let two_digests = format!("ubuntu@{SHA}@x");
        let long_hex = format!("ubuntu@{SHA}0");
        let image_id = &SHA["sha256:".len()..];
        let cases = [
            ("", "Empty"),
            ("   \t", "Empty"),
            ("http://x.io/a", "Scheme"),
            ("https://ghcr.io/owner/app:1", "Scheme"),
            ("ubuntu 22.04", "Blank"),
            ("my app", "Blank"),
            (image_id, "ImageId"),
            (":tag", "MissingName"),
            (&no_name, "MissingName"),
            ("x_y.io/a", "Domain"),
            ("-x.io/a", "Domain"),
            ("x.io:port/a", "Domain"),
            ("x.io:/a", "Domain"),
            ("x.io:99999/a", "Domain"),
            ("[zz]:5000/a", "Domain"),
            ("[::1]x/a", "Domain"),
            // A ':' before the first '/' makes that part a registry, as in Docker.
            ("ubuntu:a/b", "Domain"),
            ("Foo/bar", "Uppercase"),
            ("ubuntu/Foo", "Uppercase"),
            ("x.io/Owner/app", "Uppercase"),
            ("UBUNTU:latest", "Uppercase"),
            ("ubuntu/", "EmptyComponent"),
            ("x.io/", "EmptyComponent"),
            ("/ubuntu", "EmptyComponent"),
            ("a//b", "EmptyComponent"),
            ("x.io/a//b", "EmptyComponent"),
            ("-a", "Component"),
            ("a-/b", "Component"),
            ("a___b", "Component"),
            ("a..b", "Component"),
            ("a._b", "Component"),
            ("ubu!ntu", "Component"),
            ("x.io/a+b", "Component"),
            ("x.io/é", "Component"),
            (&long_name, "NameTooLong"),
            ("ubuntu:", "Tag"),
            ("ubuntu:.x", "Tag"),
            ("ubuntu:-x", "Tag"),
            ("ubuntu:a+b", "Tag"),
            ("x.io/a:b:c", "Tag"),
            (&long_tag, "TagTooLong"),
            ("ubuntu@", "Digest"),
            ("ubuntu@sha256", "Digest"),
            ("ubuntu@sha256:", "Digest"),
            ("ubuntu@sha256:xyz", "Digest"),
            ("ubuntu@1sha:0123456789abcdef0123456789abcdef", "Digest"),
            ("ubuntu@sha-:0123456789abcdef0123456789abcdef", "Digest"),
            (&two_digests, "Digest"),
            (
                "ubuntu@md5:0123456789abcdef0123456789abcdef",
                "DigestAlgorithm",
            ),
            ("ubuntu@sha256:abc", "DigestEncoded"),
            (&long_hex, "DigestEncoded"),
            (&upper_hex, "DigestEncoded"),
        ];
        for (text, variant) in cases {
            let err = ImageRef::parse(text).expect_err(text);
            let debug = format!("{err:?}");
            let name = debug.split([' ', '{']).next().unwrap();
            assert_eq!(name, variant, "{text:?}: {err}");
            let message = err.to_string();
            if err != ImageRefError::Empty {
                assert!(message.contains(&format!("{:?}", text.trim())), "{message}");
            }
            assert!(message.contains(", like "), "{message}");
        }
    }

    #[test]
    fn the_uppercase_message_reads_as_documented() {
        assert_eq!(
            ImageRef::parse("Foo/bar").unwrap_err().to_string(),
            "image \"Foo/bar\": the repository must be lower-case (letters, digits, and . _ - \
             separators), like ghcr.io/owner/app:1.0"
        );
    }

    #[test]
    fn docker_hub_spellings_are_one_key() {
        let spellings = [
            "ubuntu",
            "docker.io/library/ubuntu:latest",
            "index.docker.io/library/ubuntu",
            "docker.io/ubuntu",
            " library/ubuntu:latest ",
        ];
        let set: std::collections::HashSet<ImageRef> =
            spellings.iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(set.len(), 1);
        assert_ne!(
            ImageRef::parse("ubuntu").unwrap(),
            ImageRef::parse("ubuntu:24.04").unwrap()
        );
    }

    #[test]
    fn server_and_engine_forms() {
        let hub = ImageRef::parse("ubuntu").unwrap();
        assert_eq!(hub.server().config_key(), DOCKER_HUB_KEY);
        assert!(hub.server().is_docker_hub());
        assert_eq!(hub.repository(), "docker.io/library/ubuntu");
        assert_eq!(hub.pull_tag(), "latest");
        assert_eq!(hub.canonical(), "docker.io/library/ubuntu:latest");
        assert_eq!(hub.to_string(), hub.canonical());

        let local = ImageRef::parse("127.0.0.1:5000/team/app:2").unwrap();
        assert_eq!(local.server().config_key(), "127.0.0.1:5000");
        assert_eq!(local.repository(), "127.0.0.1:5000/team/app");
        assert_eq!(local.pull_tag(), "2");

        let ghcr = ImageRef::parse("GHCR.IO/owner/app").unwrap();
        assert_eq!(ghcr.server().config_key(), "ghcr.io");
        let v6 = ImageRef::parse("[::1]:5000/app").unwrap();
        assert_eq!(v6.server().config_key(), "[::1]:5000");

        let pinned = ImageRef::parse(&format!("x.io/a/b:1@{SHA}")).unwrap();
        assert_eq!(pinned.pull_tag(), SHA);
        assert_eq!(pinned.canonical(), format!("x.io/a/b:1@{SHA}"));
        let digest_only = ImageRef::parse(&format!("x.io/a@{SHA}")).unwrap();
        assert_eq!(digest_only.canonical(), format!("x.io/a@{SHA}"));
        assert_eq!(digest_only.pull_tag(), SHA);
        assert_eq!(digest_only.tag(), None);
    }
}
