//! The dev container lifecycle phases berth's hooks report, and what each one means for
//! berth.
//!
//! A dev container runs, in order: the features' entrypoints at container start, then for
//! each of onCreate, updateContent, postCreate, postStart and postAttach the features'
//! command before the user's. A prebuild runs only onCreate and updateContent. Codespaces
//! writes registry credentials after onCreate and before postCreate; berth does the same by
//! default, and earlier when asked ([`InjectAt`]).

use std::fmt;
use std::str::FromStr;

use crate::settings::InjectAt;

/// A lifecycle phase, in the order they run.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// `onCreateCommand`: first command after creation; runs in prebuilds.
    OnCreate,
    /// `updateContentCommand`: after onCreate, and again when content changes; runs in prebuilds.
    UpdateContent,
    /// `postCreateCommand`: once, after creation; not in prebuilds.
    PostCreate,
    /// `postStartCommand`: at every start.
    PostStart,
    /// `postAttachCommand`: at every attach of a tool.
    PostAttach,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 5] = [
        Phase::OnCreate,
        Phase::UpdateContent,
        Phase::PostCreate,
        Phase::PostStart,
        Phase::PostAttach,
    ];

    /// Its name as in `devcontainer.json` without `Command`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::OnCreate => "onCreate",
            Phase::UpdateContent => "updateContent",
            Phase::PostCreate => "postCreate",
            Phase::PostStart => "postStart",
            Phase::PostAttach => "postAttach",
        }
    }

    /// Whether credentials are written when this phase's hook runs.
    pub fn injects(self, at: InjectAt) -> bool {
        match at {
            InjectAt::Start | InjectAt::OnCreate => true,
            InjectAt::PostCreate => self >= Phase::PostCreate,
        }
    }

    /// Whether this phase's hook waits for the Docker engine (with `waitForDocker`): after
    /// creation and after a restart, when Docker-in-Docker may still be starting; not at
    /// postAttach, which runs at every attach and must not hold a tool up.
    pub fn waits_for_docker(self) -> bool {
        matches!(self, Phase::PostCreate | Phase::PostStart)
    }

    /// Whether this phase runs in a prebuild.
    pub fn in_prebuild(self) -> bool {
        self <= Phase::UpdateContent
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A phase name that is not one of the five.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown lifecycle phase {0:?}; expected onCreate, updateContent, postCreate, postStart or postAttach"
)]
pub struct UnknownPhase(String);

impl FromStr for Phase {
    type Err = UnknownPhase;

    /// Accepts `postCreate`, `postcreate`, `postCreateCommand` and `post-create`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        let key = key.strip_suffix("command").unwrap_or(&key);
        Phase::ALL
            .into_iter()
            .find(|p| p.name().to_ascii_lowercase() == key)
            .ok_or_else(|| UnknownPhase(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling() {
        for s in [
            "postCreate",
            "postcreate",
            "postCreateCommand",
            "post-create",
            "POST_CREATE",
        ] {
            assert_eq!(s.parse::<Phase>().unwrap(), Phase::PostCreate, "{s}");
        }
        assert!("later".parse::<Phase>().is_err());
    }

    #[test]
    fn injection_follows_inject_at() {
        use InjectAt::*;
        assert!(!Phase::OnCreate.injects(PostCreate));
        assert!(!Phase::UpdateContent.injects(PostCreate));
        assert!(Phase::PostCreate.injects(PostCreate));
        assert!(Phase::PostAttach.injects(PostCreate));
        assert!(Phase::OnCreate.injects(OnCreate));
        assert!(Phase::OnCreate.injects(Start));
    }
}
