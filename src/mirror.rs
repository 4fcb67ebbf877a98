//! Pull-through caches for any registry: the `mirrors` option maps a registry to the caches
//! that serve its images (distribution in proxy mode, Harbor proxy cache projects, ECR
//! pull-through cache rules, Artifactory remote repositories). The engine can use a mirror
//! only for Docker Hub (`registry-mirrors`), so berth rewrites the name itself: an image
//! `ORIGIN/PATH:TAG` is asked of `CACHE/PATH:TAG` (a cache may have a path prefix, as
//! `cache.internal:5000/ecr`), pulled from the first cache that has it with the digest the
//! origin names, then tagged in the engine under its original name. A cache is given only
//! its own login (a secret set that names it), never the origin's: a cache that needs the
//! origin's credentials holds them itself.
//!
//! The option's forms: a JSON object (`{"ORIGIN": "CACHE"}` or `{"ORIGIN": ["CACHE",
//! ...]}`), or `ORIGIN=CACHE[,CACHE...]` pairs separated by blanks or `;`.

use crate::image::ImageRef;
use crate::inject::Login;
use crate::registry::Server;

/// One registry's caches, in the order they are tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirrors {
    /// The origin, as its config key (`ghcr.io`, `123456789012.dkr.ecr.eu-west-1.amazonaws.com`).
    pub origin: String,
    /// Each cache: its host and an optional path prefix (`cache.internal:5000/ecr`).
    pub caches: Vec<String>,
}

/// Parses the option; on a problem, what is wrong, in one line.
pub fn parse(raw: &str) -> Result<Vec<Mirrors>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<(String, Vec<String>)> = if raw.starts_with('{') {
        let value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw)
            .map_err(|e| format!("is not a JSON object of registry to caches ({e})"))?;
        value
            .into_iter()
            .map(|(origin, caches)| {
                let caches = match caches {
                    serde_json::Value::String(c) => vec![c],
                    serde_json::Value::Array(list) => list
                        .into_iter()
                        .map(|c| match c {
                            serde_json::Value::String(c) => Ok(c),
                            other => Err(format!("the caches of {origin} must be strings, not {other}")),
                        })
                        .collect::<Result<_, _>>()?,
                    other => {
                        return Err(format!(
                            "the caches of {origin} must be a string or a list of strings, not {other}"
                        ));
                    }
                };
                Ok((origin, caches))
            })
            .collect::<Result<_, String>>()?
    } else {
        raw.split(|c: char| c == ';' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (origin, caches) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("{pair:?} is not REGISTRY=CACHE[,CACHE...]"))?;
                Ok((
                    origin.to_string(),
                    caches
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect(),
                ))
            })
            .collect::<Result<_, String>>()?
    };
    let mut out: Vec<Mirrors> = Vec::new();
    for (origin, caches) in pairs {
        let origin = Server::parse(origin.trim())
            .map_err(|e| format!("{origin:?} is not a registry ({e})"))?
            .config_key()
            .to_string();
        if caches.is_empty() {
            return Err(format!("{origin} has no cache"));
        }
        let mut checked = Vec::new();
        for cache in caches {
            let cache = cache.trim().trim_end_matches('/').to_string();
            let cache = cache
                .strip_prefix("https://")
                .or_else(|| cache.strip_prefix("http://"))
                .unwrap_or(&cache)
                .to_string();
            let host = cache.split('/').next().unwrap_or_default();
            Server::parse(host).map_err(|e| format!("cache {cache:?} of {origin}: {e}"))?;
            if ImageRef::parse(&format!("{cache}/x")).is_err() {
                return Err(format!("cache {cache:?} of {origin} is not HOST[/PATH]"));
            }
            checked.push(cache);
        }
        match out.iter_mut().find(|m| m.origin == origin) {
            Some(m) => m.caches.extend(checked),
            None => out.push(Mirrors {
                origin,
                caches: checked,
            }),
        }
    }
    Ok(out)
}

/// One cache to try for one image.
#[derive(Clone, Debug)]
pub struct Mirror {
    /// The cache, as configured (`cache.internal:5000/ecr`).
    pub cache: String,
    /// The image's name at the cache, with the origin's tag or digest.
    pub image: ImageRef,
    /// The cache's login: its own secret set's; none without one (only anonymous tokens
    /// are asked for then), never the origin's.
    pub login: Option<Login>,
    /// The secret set the login came from.
    pub id: Option<String>,
}

/// The caches to try for `image`, each with its own login: `login_of(KEY)` gives the
/// secret set (identifier, login) of a registry key, when there is one. A cache without a
/// set of its own gets no login: the origin's would go to a server it was not given for.
pub fn for_image(
    image: &ImageRef,
    mirrors: &[Mirrors],
    login_of: &dyn Fn(&str) -> Option<(String, Login)>,
) -> Vec<Mirror> {
    let origin = image.server();
    let Some(m) = mirrors.iter().find(|m| m.origin == origin.config_key()) else {
        return Vec::new();
    };
    let reference = match image.digest() {
        Some(d) => format!("@{d}"),
        None => format!(":{}", image.pull_tag()),
    };
    m.caches
        .iter()
        .filter_map(|cache| {
            let at = ImageRef::parse(&format!("{cache}/{}{reference}", image.path())).ok()?;
            let (id, login) = login_of(at.server().config_key()).unzip();
            Some(Mirror {
                cache: cache.clone(),
                image: at,
                login,
                id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_give_the_same_map() {
        let json = parse(r#"{"123456789012.dkr.ecr.eu-west-1.amazonaws.com": "cache.internal:5000/ecr", "ghcr.io": ["a.example", "b.example/ghcr"]}"#).unwrap();
        let pairs = parse(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com=cache.internal:5000/ecr; ghcr.io=a.example,b.example/ghcr",
        )
        .unwrap();
        assert_eq!(json.len(), 2);
        let sorted = |mut v: Vec<Mirrors>| {
            v.sort_by(|a, b| a.origin.cmp(&b.origin));
            v
        };
        assert_eq!(sorted(json), sorted(pairs));
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        assert!(parse("ghcr.io").unwrap_err().contains("REGISTRY=CACHE"));
        assert!(
            parse("{\"ghcr.io\": 3}")
                .unwrap_err()
                .contains("a string or a list")
        );
        assert!(parse("ghcr.io=").unwrap_err().contains("has no cache"));
        assert!(parse("ghcr.io=bad host").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn an_image_is_named_at_its_caches_with_its_tag_or_digest() {
        let mirrors = parse("ghcr.io=cache.internal:5000/gh,other.example").unwrap();
        let image = ImageRef::parse("ghcr.io/acme/api:1.4").unwrap();
        let none = |_: &str| None;
        let at: Vec<String> = for_image(&image, &mirrors, &none)
            .iter()
            .map(|m| m.image.to_string())
            .collect();
        assert_eq!(
            at,
            [
                "cache.internal:5000/gh/acme/api:1.4",
                "other.example/acme/api:1.4"
            ]
        );
        let pinned =
            ImageRef::parse(&format!("ghcr.io/acme/api@sha256:{}", "a".repeat(64))).unwrap();
        assert!(
            for_image(&pinned, &mirrors, &none)[0]
                .image
                .to_string()
                .ends_with(&format!("/gh/acme/api@sha256:{}", "a".repeat(64)))
        );
        let other = ImageRef::parse("docker.io/library/alpine:3").unwrap();
        assert!(for_image(&other, &mirrors, &none).is_empty());
    }

    #[test]
    fn a_cache_gets_its_own_login_and_never_the_origins() {
        let mirrors = parse("ghcr.io=cache.internal:5000/gh,other.example").unwrap();
        let image = ImageRef::parse("ghcr.io/acme/api:1.4").unwrap();
        let login = |user: &str| Login {
            user: crate::secret::Secret::new(user),
            password: crate::secret::Secret::new("p"),
            expires_at: None,
        };
        let login_of = |key: &str| match key {
            "ghcr.io" => Some(("ORIGIN".to_string(), login("origin"))),
            "cache.internal:5000" => Some(("CACHE".to_string(), login("cache"))),
            _ => None,
        };
        let caches = for_image(&image, &mirrors, &login_of);
        assert_eq!(caches[0].id.as_deref(), Some("CACHE"));
        assert_eq!(caches[0].login.as_ref().unwrap().user.expose(), "cache");
        assert!(caches[1].id.is_none() && caches[1].login.is_none());
    }
}
