//! What a registry's manifests say of an image: an index (several images, one per
//! platform) or an image manifest (one image: its configuration and its layers, with their
//! sizes), read from the JSON the registry sends, and whether a body is what its digest
//! says.
//!
//! Both families are read alike: OCI (`application/vnd.oci.image.index.v1+json`,
//! `...manifest.v1+json`) and Docker's (`...manifest.list.v2+json`, `...manifest.v2+json`).
//! An index's entries without a platform, or with `unknown/unknown` (the attestations
//! BuildKit adds), are not images of a platform and are left out. Anything else (Docker's
//! schema 1, an artifact) is [`Manifest::Other`]: berth then knows nothing of it, and the
//! engine decides.

use crate::platform::Platform;

/// One layer of an image, as its manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Its digest (`sha256:...`).
    pub digest: String,
    /// Its size in bytes, compressed, as the registry serves it.
    pub size: u64,
}

impl Layer {
    /// The name the engine gives this layer in its progress messages: the first 12 hex
    /// digits of its digest.
    pub fn short_id(&self) -> &str {
        let hex = self
            .digest
            .split_once(':')
            .map_or(self.digest.as_str(), |(_, h)| h);
        &hex[..hex.len().min(12)]
    }
}

/// One image of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its manifest's digest.
    pub digest: String,
    /// Its platform.
    pub platform: Platform,
}

/// A manifest, as far as berth reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manifest {
    /// An index: one image per platform.
    Index(Vec<Entry>),
    /// One image.
    Image {
        /// Its configuration blob's digest (the configuration names its platform).
        config: String,
        /// Its layers.
        layers: Vec<Layer>,
    },
    /// Something berth does not read.
    Other,
}

impl Manifest {
    /// Reads a manifest's JSON; what is not JSON of a known shape is [`Manifest::Other`].
    pub fn parse(body: &[u8]) -> Manifest {
        #[derive(serde::Deserialize)]
        struct Descriptor {
            digest: Option<String>,
            size: Option<u64>,
            platform: Option<PlatformField>,
        }
        #[derive(serde::Deserialize)]
        struct PlatformField {
            os: Option<String>,
            architecture: Option<String>,
            variant: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Raw {
            manifests: Option<Vec<Descriptor>>,
            config: Option<Descriptor>,
            layers: Option<Vec<Descriptor>>,
        }
        let Ok(raw) = serde_json::from_slice::<Raw>(body) else {
            return Manifest::Other;
        };
        if let Some(entries) = raw.manifests {
            return Manifest::Index(
                entries
                    .into_iter()
                    .filter_map(|d| {
                        let p = d.platform?;
                        let platform = Platform::of(
                            p.os.as_deref(),
                            p.architecture.as_deref(),
                            p.variant.as_deref(),
                        )?;
                        (platform.os() != "unknown").then_some(Entry {
                            digest: d.digest?,
                            platform,
                        })
                    })
                    .collect(),
            );
        }
        match (raw.config.and_then(|c| c.digest), raw.layers) {
            (Some(config), Some(layers)) => {
                let layers: Option<Vec<Layer>> = layers
                    .into_iter()
                    .map(|l| {
                        Some(Layer {
                            digest: l.digest?,
                            size: l.size?,
                        })
                    })
                    .collect();
                match layers {
                    Some(layers) => Manifest::Image { config, layers },
                    None => Manifest::Other,
                }
            }
            _ => Manifest::Other,
        }
    }
}

/// The platform an image configuration names (`os`, `architecture`, `variant`).
pub fn config_platform(body: &[u8]) -> Option<Platform> {
    #[derive(serde::Deserialize)]
    struct Config {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let c: Config = serde_json::from_slice(body).ok()?;
    Platform::of(
        c.os.as_deref(),
        c.architecture.as_deref(),
        c.variant.as_deref(),
    )
}

/// Whether `body` is what `digest` (`sha256:...`, `sha384:...`, `sha512:...`) names.
pub fn digest_matches(digest: &str, body: &[u8]) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm = match algorithm {
        "sha256" => &ring::digest::SHA256,
        "sha384" => &ring::digest::SHA384,
        "sha512" => &ring::digest::SHA512,
        _ => return false,
    };
    let sum = ring::digest::digest(algorithm, body);
    let mut ours = String::with_capacity(sum.as_ref().len() * 2);
    for b in sum.as_ref() {
        ours.push_str(&format!("{b:02x}"));
    }
    ours == hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn an_index_lists_the_platforms_of_its_images_and_not_its_attestations() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":402,"digest":"sha256:aa","platform":{"architecture":"amd64","os":"linux"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":402,"digest":"sha256:bb","platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":566,"digest":"sha256:cc","platform":{"architecture":"unknown","os":"unknown"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":566,"digest":"sha256:dd"}]}"#;
        assert_eq!(
            Manifest::parse(body),
            Manifest::Index(vec![
                Entry {
                    digest: "sha256:aa".into(),
                    platform: p("linux/amd64")
                },
                Entry {
                    digest: "sha256:bb".into(),
                    platform: p("linux/arm64")
                },
            ])
        );
    }

    #[test]
    fn an_image_manifest_gives_its_configuration_and_layer_sizes() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1469,"digest":"sha256:c0"},
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":49882835,"digest":"sha256:536049455c12824a08069f6b2586a46091e3945101f8d4b97cd3bd5b5f532712"},
                      {"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":8391380,"digest":"sha256:b7da472b18e7858d99834f8689888e5da18afde242cad848bafaa784a5ba7b77"}]}"#;
        let Manifest::Image { config, layers } = Manifest::parse(body) else {
            panic!("an image manifest");
        };
        assert_eq!(config, "sha256:c0");
        assert_eq!(layers.iter().map(|l| l.size).sum::<u64>(), 58_274_215);
        assert_eq!(layers[0].short_id(), "536049455c12");
    }

    #[test]
    fn what_berth_does_not_read_is_other() {
        assert_eq!(Manifest::parse(b"not json"), Manifest::Other);
        assert_eq!(
            Manifest::parse(br#"{"schemaVersion":1,"fsLayers":[{"blobSum":"sha256:aa"}]}"#),
            Manifest::Other
        );
        // A size that is no size makes the whole manifest unread, not a wrong sum.
        assert_eq!(
            Manifest::parse(
                br#"{"config":{"digest":"sha256:c0"},"layers":[{"digest":"sha256:aa","size":-1}]}"#
            ),
            Manifest::Other
        );
    }

    #[test]
    fn a_configuration_names_its_platform() {
        assert_eq!(
            config_platform(br#"{"architecture":"arm64","os":"linux","rootfs":{}}"#),
            Some(p("linux/arm64"))
        );
        assert_eq!(config_platform(br#"{"rootfs":{}}"#), None);
    }

    #[test]
    fn a_body_is_checked_against_its_digest() {
        let body = b"hello";
        let sha256 = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert!(digest_matches(sha256, body));
        assert!(!digest_matches(sha256, b"hello!"));
        assert!(!digest_matches(
            "md5:5d41402abc4b2a76b9719d911017c592",
            body
        ));
        assert!(!digest_matches("nonsense", body));
    }
}
