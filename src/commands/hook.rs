//! `berth hook <phase>`: see [`crate::hook`].

use std::process::ExitCode;

use crate::phase::Phase;
use crate::settings::Settings;

/// Runs the command.
pub fn run(phase: Phase, settings: Settings) -> ExitCode {
    crate::hook::run(phase, settings)
}
