//! `mip validate`.
//!
//! With `-o json` the report is written whatever the verdict: an invalid inventory gives
//! `"valid": false` and every diagnostic on stdout (exit 1, as in text), so a CI job or an
//! editor reads the problems from one document instead of scraping stderr.

use crate::cli::{DataFormat, InventoryArgs};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_core::Diagnostics;
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
    let loaded = match super::load(inv) {
        Ok(loaded) => loaded,
        Err(e) => {
            if let (DataFormat::Json, Some(diagnostics)) = (output, &e.diagnostics) {
                let shown = inv.inventory.display().to_string();
                views::stdout(&views::json_document(&views::validate_report(&shown, diagnostics)))?;
            }
            return Err(e);
        }
    };
    let mut found = Diagnostics::new();
    if let Some(dir) = tree {
        found.extend(crate::commands::render::user_files_check(&loaded, dir));
    }
    if branch_check && !found.has_errors() {
        found.extend(crate::commands::render::branch_check(&loaded, inv, branch, tree)?);
    }
    if found.has_errors() {
        if output == DataFormat::Json {
            let mut all = loaded.warnings.clone();
            all.extend(found);
            views::stdout(&views::json_document(&views::validate_report(&loaded.path, &all)))?;
        }
        return Ok(ExitStatus::Error);
    }
    views::stdout(&views::validate(&loaded, output))?;
    super::exit_without_freeing(loaded);
    Ok(ExitStatus::Success)
}
