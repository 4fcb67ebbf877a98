//! Image references: what a user or a workspace file names as an image, checked and normalised.
//!
//! An image reference is read by the grammar of Docker's `distribution/reference` package, as
//! the `container_image_dist_ref` crate implements it: an optional registry (`host`,
//! `host:port`, an IPv4 or bracketed IPv6 address, `localhost`), a lower-case repository path,
//! an optional `:tag` and an optional `@algorithm:hex` digest. The crate owns the grammar;
//! this module owns the messages ([`ImageRefError`]). Docker Hub's shorthands are expanded the way the Docker CLI does (`ubuntu` is
//! `docker.io/library/ubuntu:latest`, `index.docker.io` is `docker.io`), so that two spellings of
//! the same image compare equal. This module owns that normalisation and the forms the rest of
//! berth hands on: the registry [`Server`] whose credentials a pull needs, and the
//! `fromImage`/`tag` pair of the Engine API's image-create call.

use std::fmt;
use std::str::FromStr;

use container_image_dist_ref::ImgRef;
use container_image_dist_ref::digest::Standard;
use container_image_dist_ref::digest::algorithm::Algorithm;
use container_image_dist_ref::err::Kind as ErrorKind;
use container_image_dist_ref::path::Path;
use container_image_dist_ref::tag::Tag;

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
/// The digest algorithms Docker can verify (those `go-digest` registers), with the number of
/// hex digits of each.
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
    ///
    /// Berth cuts the text the way the Docker CLI does (which first part is a registry, Docker
    /// Hub's shorthands), hands the normalised text to the grammar of `distribution/reference`
    /// ([`container_image_dist_ref`]), and narrows what that crate accepts to what Docker
    /// accepts: a digest algorithm Docker can verify, a registry [`Server::parse`] accepts.
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

        let name = text.split('@').next().unwrap_or_default();
        if name.is_empty() || name.starts_with(':') {
            return Err(ImageRefError::MissingName { image: image() });
        }

        let parts = Parts::cut(text);
        let server = match parts.written_domain {
            Some(written) => registry(written).ok_or_else(|| parts.domain_error(text))?,
            None => docker_hub(),
        };
        let normalised = parts.normalised();
        let parsed = ImgRef::new(&normalised).map_err(|_| parts.rejected(text))?;
        let path = parsed.path().to_str().to_string();
        let tag = parsed.tag().map(str::to_string);
        let digest = parsed.digest().map(|d| d.to_str().to_string());
        // The crate (0.3.0) accepts a tag of 129 characters; Docker's limit is 128.
        if let Some(tag) = &tag
            && tag.len() > TAG_MAX
        {
            return Err(ImageRefError::TagTooLong {
                image: image(),
                len: tag.len(),
            });
        }
        if let Some(digest) = &digest {
            check_digest(text, digest)?;
        }

        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t,
        };
        Ok(ImageRef {
            domain: parts.domain,
            path,
            tag,
            digest,
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

    /// The repository as the engine's image filters match it: Docker Hub's without its
    /// registry (and `library/`), `ubuntu`, `owner/app`; any other's with it.
    pub fn familiar_name(&self) -> String {
        if self.server.is_docker_hub() {
            return self
                .path
                .strip_prefix("library/")
                .unwrap_or(&self.path)
                .to_string();
        }
        self.repository()
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

/// A reference cut into its parts the way the Docker CLI cuts it (`splitDockerDomain` in
/// `distribution/reference`): the first part is a registry only if it has a '.' or a ':' or
/// is `localhost`; otherwise the whole name is a Docker Hub repository.
struct Parts<'a> {
    /// The registry as written, if there is one.
    written_domain: Option<&'a str>,
    /// The registry, lower-case, with Docker Hub's old name replaced.
    domain: String,
    /// The repository path as written.
    remote: &'a str,
    /// The repository path, with `library/` for Docker Hub's official images.
    path: String,
    /// The tag as written: what follows the path's first ':'.
    tag: Option<&'a str>,
    /// The digest as written: what follows the first '@'.
    digest: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn cut(text: &'a str) -> Parts<'a> {
        let (name_and_tag, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (text, None),
        };
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
        let mut domain =
            written_domain.map_or(DOCKER_HUB_DOMAIN.to_string(), |d| d.to_ascii_lowercase());
        if domain == LEGACY_DOCKER_HUB_DOMAIN {
            domain = DOCKER_HUB_DOMAIN.to_string();
        }
        let path = if domain == DOCKER_HUB_DOMAIN && !remote.contains('/') {
            format!("{OFFICIAL_PREFIX}{remote}")
        } else {
            remote.to_string()
        };
        Parts {
            written_domain,
            domain,
            remote,
            path,
            tag,
            digest,
        }
    }

    /// `domain/path[:tag][@digest]`, what `distribution/reference` parses after normalising.
    fn normalised(&self) -> String {
        let mut s = format!("{}/{}", self.domain, self.path);
        if let Some(tag) = self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }

    fn domain_error(&self, image: &str) -> ImageRefError {
        ImageRefError::Domain {
            image: image.to_string(),
            domain: self.written_domain.unwrap_or(DOCKER_HUB_DOMAIN).to_string(),
        }
    }

    /// Says which part of a reference with a valid registry the grammar rejected: the first
    /// part, in reading order, that the crate's own parser for that part rejects, or that is
    /// too long. The decision to reject was the crate's; this only picks the message. (The
    /// crate's error kind alone cannot: its `host-or-path` and `port-or-tag` kinds leave the
    /// part open, and its error positions are not reliable.)
    fn rejected(&self, image: &str) -> ImageRefError {
        let image = image.to_string();
        if self.remote.chars().any(|c| c.is_ascii_uppercase()) {
            return ImageRefError::Uppercase { image };
        }
        for component in self.remote.split('/') {
            if component.is_empty() {
                return ImageRefError::EmptyComponent { image };
            }
            // A part too long on its own is reported below, as the whole name's length.
            if Path::new(component).is_err_and(|e| !is_too_long(e.kind())) {
                return ImageRefError::Component {
                    image,
                    component: component.to_string(),
                };
            }
        }
        let len = self.domain.len() + 1 + self.path.len();
        if len > NAME_MAX {
            return ImageRefError::NameTooLong { image, len };
        }
        if let Some(tag) = self.tag {
            if tag.len() > TAG_MAX {
                return ImageRefError::TagTooLong {
                    image,
                    len: tag.len(),
                };
            }
            if Tag::new(tag).is_err() {
                return ImageRefError::Tag {
                    image,
                    tag: tag.to_string(),
                };
            }
        }
        let digest = self.digest.unwrap_or_default();
        check_digest(&image, digest)
            .err()
            .unwrap_or_else(|| ImageRefError::Digest {
                image,
                digest: digest.to_string(),
            })
    }
}

/// A registry part as written: read by the grammar (a registry, not a path component, when
/// a repository follows it) and keyed by [`Server::parse`], which also rejects ports above
/// 65535, labels longer than 63 characters and malformed IPv6 addresses.
fn registry(written: &str) -> Option<Server> {
    let probe = format!("{written}/x");
    let read = ImgRef::new(&probe).ok()?;
    if read.domain()?.to_str() != written {
        return None;
    }
    Server::parse(written).ok()
}

/// Whether the crate rejected a part for its length alone.
fn is_too_long(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::PathTooLong | ErrorKind::HostOrPathTooLong | ErrorKind::NameTooLong
    )
}

/// Docker Hub as a [`Server`].
fn docker_hub() -> Server {
    Server::parse(DOCKER_HUB_DOMAIN).expect("docker.io is a valid registry host")
}

/// Checks a digest the grammar accepted, or says why it rejected one: `algorithm:hex` by
/// `distribution/reference`'s grammar (the crate also accepts the OCI spec's wider one), then
/// an algorithm Docker can verify, with its number of lower-case hex digits.
fn check_digest(image: &str, digest: &str) -> Result<(), ImageRefError> {
    let malformed = || ImageRefError::Digest {
        image: image.to_string(),
        digest: digest.to_string(),
    };
    let (algorithm, hex) = digest.split_once(':').ok_or_else(malformed)?;
    let distribution_algorithm = Algorithm::from_exact_match(algorithm)
        .is_ok_and(|(_, c)| c.compliant_with(Standard::Distribution));
    if !distribution_algorithm || hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
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

    /// Cases from `distribution/reference`'s own tests (`normalize_test.go`,
    /// `reference_test.go`), read the way `ParseNormalizedNamed` reads them: the text and its
    /// normalised form.
    #[test]
    fn distribution_reference_valid_cases() {
        let f64 = "f".repeat(64);
        let cases = [
            // TestValidateReferenceName and TestValidateRemoteName.
            ("docker/docker", "docker.io/docker/docker:latest"),
            ("library/debian", "docker.io/library/debian:latest"),
            ("debian", "docker.io/library/debian:latest"),
            (
                "localhost/library/debian",
                "localhost/library/debian:latest",
            ),
            ("localhost/debian", "localhost/debian:latest"),
            ("docker.io/docker/docker", "docker.io/docker/docker:latest"),
            (
                "docker.io/library/debian",
                "docker.io/library/debian:latest",
            ),
            ("docker.io/debian", "docker.io/library/debian:latest"),
            (
                "index.docker.io/docker/docker",
                "docker.io/docker/docker:latest",
            ),
            (
                "index.docker.io/library/debian",
                "docker.io/library/debian:latest",
            ),
            ("index.docker.io/debian", "docker.io/library/debian:latest"),
            (
                "127.0.0.1:5000/docker/docker",
                "127.0.0.1:5000/docker/docker:latest",
            ),
            (
                "127.0.0.1:5000/library/debian",
                "127.0.0.1:5000/library/debian:latest",
            ),
            ("127.0.0.1:5000/debian", "127.0.0.1:5000/debian:latest"),
            ("192.168.0.1", "docker.io/library/192.168.0.1:latest"),
            ("192.168.0.1:80", "docker.io/library/192.168.0.1:80"),
            ("192.168.0.1:8/debian", "192.168.0.1:8/debian:latest"),
            (
                "192.168.0.2:25000/debian",
                "192.168.0.2:25000/debian:latest",
            ),
            (
                "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
                "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
            ),
            ("[fc00::1]:5000/docker", "[fc00::1]:5000/docker:latest"),
            (
                "[fc00::1]:5000/docker/docker",
                "[fc00::1]:5000/docker/docker:latest",
            ),
            (
                "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
                "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
            ),
            (
                "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a:latest",
            ),
            (
                "docker-rules/docker",
                "docker.io/docker-rules/docker:latest",
            ),
            (
                "docker---rules/docker",
                "docker.io/docker---rules/docker:latest",
            ),
            ("doc/docker", "docker.io/doc/docker:latest"),
            ("d/docker", "docker.io/d/docker:latest"),
            ("jess/t", "docker.io/jess/t:latest"),
            ("dock__er/docker", "docker.io/dock__er/docker:latest"),
            // TestParseRepositoryInfo: familiar, full and ambiguous names of one repository.
            ("localhost/fooo", "localhost/fooo:latest"),
            ("localhost/fooo/bar", "localhost/fooo/bar:latest"),
            ("fooo/bar", "docker.io/fooo/bar:latest"),
            ("docker.io/fooo/bar", "docker.io/fooo/bar:latest"),
            ("index.docker.io/fooo/bar", "docker.io/fooo/bar:latest"),
            ("ubuntu", "docker.io/library/ubuntu:latest"),
            (
                "docker.io/library/ubuntu",
                "docker.io/library/ubuntu:latest",
            ),
            ("library/ubuntu", "docker.io/library/ubuntu:latest"),
            ("nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu:latest"),
            ("other/library", "docker.io/other/library:latest"),
            (
                "127.0.0.1:8000/private/moonbase",
                "127.0.0.1:8000/private/moonbase:latest",
            ),
            (
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000/privatebase:latest",
            ),
            (
                "example.com/private/moonbase",
                "example.com/private/moonbase:latest",
            ),
            ("example.com/privatebase", "example.com/privatebase:latest"),
            (
                "example.com:8000/private/moonbase",
                "example.com:8000/private/moonbase:latest",
            ),
            (
                "example.com:8000/privatebasee",
                "example.com:8000/privatebasee:latest",
            ),
            (
                "ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base:latest",
            ),
            (
                "index.docker.io/library/ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base:latest",
            ),
            ("docker.io/foo", "docker.io/library/foo:latest"),
            ("library/foo/bar", "docker.io/library/foo/bar:latest"),
            ("store/foo/bar", "docker.io/store/foo/bar:latest"),
            // TestNormalizedSplitHostname.
            ("test.com/foo", "test.com/foo:latest"),
            ("test_com/foo", "docker.io/test_com/foo:latest"),
            ("docker/migrator", "docker.io/docker/migrator:latest"),
            ("test.com:8080/foo", "test.com:8080/foo:latest"),
            ("test-com:8080/foo", "test-com:8080/foo:latest"),
            ("xn--n3h.com/foo", "xn--n3h.com/foo:latest"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest"),
            (
                "docker.io/library/foo/bar",
                "docker.io/library/foo/bar:latest",
            ),
            // TestParseAnyReference: names that only look like IDs.
            (
                "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
                "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest",
            ),
            ("dbcc1", "docker.io/library/dbcc1:latest"),
            // TestReferenceParse, normalised.
            ("test_com", "docker.io/library/test_com:latest"),
            ("test.com:tag", "docker.io/library/test.com:tag"),
            ("test.com:5000", "docker.io/library/test.com:5000"),
            ("test.com/repo:tag", "test.com/repo:tag"),
            ("test:5000/repo", "test:5000/repo:latest"),
            ("test:5000/repo:tag", "test:5000/repo:tag"),
            (
                "lowercase:Uppercase",
                "docker.io/library/lowercase:Uppercase",
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux",
                "sub-dom1.foo.com/bar/baz/quux:latest",
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com",
                "b.gcr.io/test.example.com/my-app:test.example.com",
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com",
                "xn--n3h.com/myimage:xn--n3h.com",
            ),
            ("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080"),
            ("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080"),
            ("192.168.1.1", "docker.io/library/192.168.1.1:latest"),
            ("192.168.1.1:tag", "docker.io/library/192.168.1.1:tag"),
            ("192.168.1.1:5000", "docker.io/library/192.168.1.1:5000"),
            ("192.168.1.1/repo", "192.168.1.1/repo:latest"),
            ("192.168.1.1:5000/repo", "192.168.1.1:5000/repo:latest"),
            ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050"),
            ("[2001:db8::1]/repo", "[2001:db8::1]/repo:latest"),
            (
                "[2001:db8:1:2:3:4:5:6]/repo:tag",
                "[2001:db8:1:2:3:4:5:6]/repo:tag",
            ),
            ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000/repo:latest"),
            ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag"),
            ("[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo:latest"),
            ("[::1]:5000/repo", "[::1]:5000/repo:latest"),
        ];
        for (text, canonical) in cases {
            let parsed = ImageRef::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(parsed.canonical(), canonical, "{text:?}");
        }
        // With digests (TestReferenceParse, TestParseReferenceWithTagAndDigest).
        let digested = [
            format!("test:5000/repo@sha256:{f64}"),
            format!("test:5000/repo:tag@sha256:{f64}"),
            format!("[2001:db8::1]:5000/repo@sha256:{f64}"),
            format!("[2001:db8::1]:5000/repo:tag@sha256:{f64}"),
            format!("xn--7o8h.com/myimage:xn--7o8h.com@sha256:{f64}"),
        ];
        for text in &digested {
            assert_eq!(ImageRef::parse(text).unwrap().canonical(), *text);
        }
        let busybox = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
        assert_eq!(
            ImageRef::parse(busybox).unwrap().canonical(),
            format!("docker.io/library/{busybox}")
        );
        // distribution/reference's test leaves sha512 unregistered; Docker registers it.
        let sha512 = format!("validname@sha512:{}", "f".repeat(128));
        assert_eq!(
            ImageRef::parse(&sha512).unwrap().canonical(),
            format!("docker.io/library/{sha512}")
        );
    }

    /// Invalid cases from `distribution/reference`'s own tests, with berth's reason for each.
    #[test]
    fn distribution_reference_invalid_cases() {
        let f64 = "f".repeat(64);
        let long_namespace =
            "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_".repeat(4);
        let cases = [
            // TestReferenceParse.
            (String::new(), "Empty"),
            (":justtag".into(), "MissingName"),
            (format!("@sha256:{f64}"), "MissingName"),
            (format!("repo@sha256:{}", "f".repeat(34)), "DigestEncoded"),
            (format!("validname@invaliddigest:{f64}"), "DigestAlgorithm"),
            ("Uppercase:tag".into(), "Uppercase"),
            ("test:5000/Uppercase/lowercase:tag".into(), "Uppercase"),
            (format!("domain/{}:tag", "a".repeat(256)), "NameTooLong"),
            ("aa/asdf$$^/aa".into(), "Component"),
            ("[2001:db8::1]".into(), "Component"),
            ("[2001:db8::1]:5000".into(), "Component"),
            ("[2001:db8::1]:tag".into(), "Component"),
            ("[fe80::1%eth0]:5000/repo".into(), "Domain"),
            // TestValidateReferenceName.
            ("https://github.com/docker/docker".into(), "Scheme"),
            ("docker/Docker".into(), "Uppercase"),
            ("-docker".into(), "Component"),
            ("-docker/docker".into(), "Component"),
            ("-docker.io/docker/docker".into(), "Domain"),
            ("docker///docker".into(), "EmptyComponent"),
            ("docker.io/docker/Docker".into(), "Uppercase"),
            ("docker.io/docker///docker".into(), "EmptyComponent"),
            ("[fc00::1]".into(), "Component"),
            ("[fc00::1]:5000".into(), "Component"),
            ("fc00::1:5000/debian".into(), "Domain"),
            ("[fe80::1%eth0]:5000/debian".into(), "Domain"),
            ("[2001:db8:3:4::192.0.2.33]:5000/debian".into(), "Domain"),
            (
                "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a".into(),
                "ImageId",
            ),
            // TestValidateRemoteName.
            ("docker-/docker".into(), "Component"),
            ("-docker-/docker".into(), "Component"),
            ("____/____".into(), "Component"),
            ("_docker/_docker".into(), "Component"),
            // A '.' makes the first part a registry, as in Docker.
            ("dock..er/docker".into(), "Domain"),
            ("dock_.er/docker".into(), "Domain"),
            ("dock-.er/docker".into(), "Domain"),
            ("docker/".into(), "EmptyComponent"),
            (format!("{long_namespace}/docker"), "NameTooLong"),
            // TestInvalidReferenceComponents: WithTag(busybox, "-foo").
            ("busybox:-foo".into(), "Tag"),
        ];
        for (text, variant) in &cases {
            let err = ImageRef::parse(text).expect_err(text);
            let debug = format!("{err:?}");
            assert_eq!(
                debug.split([' ', '{']).next().unwrap(),
                *variant,
                "{text:?}: {err}"
            );
        }
    }

    /// Where berth is stricter than `distribution/reference` today, on purpose.
    #[test]
    fn stricter_than_distribution_reference() {
        // An upper-case first part is a registry to distribution/reference (v0.6 and later);
        // berth reads it as a Docker Hub namespace, as the Docker CLI long did, and names
        // the upper case, the likely mistake.
        for text in ["LOCALDOMAIN/debian", "Docker/docker", "DOCKER/docker"] {
            assert!(matches!(
                ImageRef::parse(text),
                Err(ImageRefError::Uppercase { .. })
            ));
        }
        // distribution/reference now limits the path alone to 255 characters; berth (and the
        // grammar crate, after distribution/reference v0.5) limit registry and path together.
        let long_path = format!("example.com/{}:tag", "a".repeat(255));
        let deep_path = format!("{}a:tag-puts-this-over-max", "a/".repeat(127));
        for text in [long_path, deep_path] {
            assert!(matches!(
                ImageRef::parse(&text),
                Err(ImageRefError::NameTooLong { .. })
            ));
        }
    }

    #[test]
    fn no_text_makes_the_parser_panic() {
        // A small stand-in for the fuzz target: random texts over the grammar's characters
        // and a few that are not ASCII; any that parses round-trips through its canonical
        // form, and a text without a digest is never rejected for its digest.
        let alphabet: Vec<char> = "ab9:/@.-_[]Aé€sha256f".chars().collect();
        let mut rng = fastrand::Rng::with_seed(16);
        for _ in 0..20_000 {
            let len = rng.usize(..24);
            let text: String = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            match ImageRef::parse(&text) {
                Ok(image) => {
                    assert_eq!(ImageRef::parse(&image.canonical()), Ok(image), "{text:?}")
                }
                Err(
                    ImageRefError::Digest { .. }
                    | ImageRefError::DigestAlgorithm { .. }
                    | ImageRefError::DigestEncoded { .. },
                ) => assert!(text.contains('@'), "{text:?}"),
                Err(_) => {}
            }
        }
    }
}
