//! `berth feature-options DECLARATION OUTPUT`: the options file, written by the feature's
//! `install.sh` from the options its `devcontainer-feature.json` declares (see
//! [`crate::settings::feature_options_file`]), so that `install.sh` lists none of them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

/// Runs the command.
pub fn run(declaration: &Path, output: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(declaration)
        .with_context(|| format!("cannot read {}", declaration.display()))?;
    let file = crate::settings::feature_options_file(
        &text,
        &declaration.display().to_string(),
        &crate::settings::env_var,
    )?;
    crate::atomic::write(output, file.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(ExitCode::SUCCESS)
}
