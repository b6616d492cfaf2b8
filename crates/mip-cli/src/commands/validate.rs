//! `mip validate`.

use crate::cli::{DataFormat, InventoryArgs};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use std::path::Path;

/// Checks the inventory (and with `--branch-check` its revisions against the branch).
///
/// # Errors
/// Load and IO errors.
pub fn run(
    inv: &InventoryArgs,
    output: DataFormat,
    branch_check: bool,
    branch: Option<&str>,
    tree: Option<&Path>,
) -> Result<ExitStatus, CliError> {
    let loaded = super::load(inv)?;
    if let Some(dir) = tree {
        let status = crate::commands::render::user_files_check(&loaded, dir);
        if status != ExitStatus::Success {
            return Ok(status);
        }
    }
    if branch_check {
        let status = crate::commands::render::branch_check(&loaded, inv, branch, tree)?;
        if status != ExitStatus::Success {
            return Ok(status);
        }
    }
    views::stdout(&views::validate(&loaded, output))?;
    super::exit_without_freeing(loaded);
    Ok(ExitStatus::Success)
}
