//! Platforms: which operating system and processor an image is for (`linux/arm64`,
//! `linux/arm/v7`), as the `platform` option names one, a registry's index lists them, an
//! image's configuration and the engine describe them.
//!
//! Every spelling is normalised as containerd normalises it (its `platforms` package:
//! `aarch64` is `arm64`, `x86_64` is `amd64`, `armhf` is `arm/v7`, an arm64 `v8` is no
//! variant), so that two names of one platform are equal. A platform matches another when
//! the operating system, the architecture and the variant are the same after that; berth
//! does not take a neighbouring variant (`arm/v6` for `arm/v7`) for the one asked.

use std::fmt;

/// A platform, normalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// Why a value is not a platform. The value is the user's own setting: it is named.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a platform: write OS/ARCHITECTURE or OS/ARCHITECTURE/VARIANT, like linux/amd64, linux/arm64 or linux/arm/v7"
)]
pub struct PlatformError {
    /// What was given.
    pub value: String,
}

impl Platform {
    /// Parses `os/architecture[/variant]`.
    pub fn parse(value: &str) -> Result<Platform, PlatformError> {
        let err = || PlatformError {
            value: value.to_string(),
        };
        let parts: Vec<&str> = value.trim().split('/').collect();
        let word = |w: &str| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| word(p)) {
            return Err(err());
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }

    /// A platform from its parts as an OCI descriptor, an image configuration or the engine
    /// gives them (`None` without an operating system or architecture).
    pub fn of(
        os: Option<&str>,
        architecture: Option<&str>,
        variant: Option<&str>,
    ) -> Option<Platform> {
        let (os, architecture) = (os?.trim(), architecture?.trim());
        if os.is_empty() || architecture.is_empty() {
            return None;
        }
        Some(Platform::new(
            os,
            architecture,
            variant.map(str::trim).filter(|v| !v.is_empty()),
        ))
    }

    fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = match os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            other => other.to_string(),
        };
        let (architecture, variant) = normalise(
            &architecture.to_ascii_lowercase(),
            variant
                .map(str::to_ascii_lowercase)
                .as_deref()
                .unwrap_or(""),
        );
        Platform {
            os,
            architecture,
            variant: Some(variant).filter(|v| !v.is_empty()),
        }
    }

    /// Whether an image for `other` is what this platform asks for.
    pub fn matches(&self, other: &Platform) -> bool {
        self == other
    }

    /// The operating system (`linux`).
    pub fn os(&self) -> &str {
        &self.os
    }

    /// The architecture (`arm64`).
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The variant (`v7`), if it has one.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }
}

/// containerd's `normalizeArch`: one name per architecture, and the variant its default
/// spelling.
fn normalise(architecture: &str, variant: &str) -> (String, String) {
    let (a, v) = match architecture {
        "i386" => ("386", ""),
        "x86_64" | "x86-64" | "amd64" => ("amd64", if variant == "v1" { "" } else { variant }),
        "aarch64" | "arm64" => (
            "arm64",
            match variant {
                "8" | "v8" | "v8.0" => "",
                "9" | "9.0" | "v9.0" => "v9",
                other => other,
            },
        ),
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "arm" => (
            "arm",
            match variant {
                "" | "7" => "v7",
                "5" => "v5",
                "6" => "v6",
                "8" => "v8",
                other => other,
            },
        ),
        other => (other, variant),
    };
    (a.to_string(), v.to_string())
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A list of platforms in words: `linux/amd64, linux/arm64`, or `none` for an empty one.
pub fn list(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none".to_string();
    }
    platforms
        .iter()
        .map(Platform::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn spellings_of_one_platform_are_equal() {
        assert_eq!(p("linux/aarch64"), p("linux/arm64"));
        assert_eq!(p("linux/arm64/v8"), p("linux/arm64"));
        assert_eq!(p("Linux/X86_64"), p("linux/amd64"));
        assert_eq!(p("linux/armhf"), p("linux/arm/v7"));
        assert_eq!(p("linux/arm"), p("linux/arm/v7"));
        assert_eq!(p("linux/arm/7"), p("linux/arm/v7"));
        assert_eq!(p("linux/i386"), p("linux/386"));
        assert_eq!(p("macos/arm64"), p("darwin/arm64"));
        assert_eq!(p("linux/arm64").to_string(), "linux/arm64");
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        assert_eq!(p(" linux/amd64 ").to_string(), "linux/amd64");
    }

    #[test]
    fn other_platforms_do_not_match() {
        assert!(p("linux/arm64").matches(&p("linux/aarch64")));
        assert!(!p("linux/arm64").matches(&p("linux/amd64")));
        assert!(!p("linux/arm/v7").matches(&p("linux/arm/v6")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
        assert!(!p("linux/arm64").matches(&p("linux/arm64/v9")));
    }

    #[test]
    fn what_an_image_or_the_engine_says_is_read_alike() {
        assert_eq!(
            Platform::of(Some("linux"), Some("arm64"), Some("v8")),
            Some(p("linux/arm64"))
        );
        assert_eq!(
            Platform::of(Some("linux"), Some("x86_64"), None),
            Some(p("linux/amd64"))
        );
        assert_eq!(Platform::of(Some("linux"), Some(""), None), None);
        assert_eq!(Platform::of(None, Some("amd64"), None), None);
    }

    #[test]
    fn what_is_not_a_platform_is_named() {
        for bad in [
            "",
            "linux",
            "arm64",
            "linux/",
            "/arm64",
            "linux/arm/v7/x",
            "linux arm64",
            "linux/arm 64",
        ] {
            let e = Platform::parse(bad).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("{bad:?} is not a platform")),
                "{e}"
            );
        }
    }

    #[test]
    fn lists_read_as_words() {
        assert_eq!(
            list(&[p("linux/amd64"), p("linux/arm64")]),
            "linux/amd64, linux/arm64"
        );
        assert_eq!(list(&[]), "none");
    }
}
