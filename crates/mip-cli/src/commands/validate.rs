//! `mip validate` (the operation is `mip_engine::ops::validate`).
//!
//! With `-o json` the report is written whatever the verdict: an invalid inventory gives
//! `"valid": false` and every diagnostic on stdout (exit 1, as in text), so a CI job or an
//! editor reads the problems from one document instead of scraping stderr.

use crate::cli::{DataFormat, InventoryArgs};
use crate::env::Progress;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_engine::ops::validate::{ValidateRequest, Validated, validate};
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
    let req = ValidateRequest {
        load: super::load_options(inv),
        tree: tree.map(Path::to_path_buf),
        branch_check,
        branch: branch.map(str::to_owned),
    };
    let validated = match validate(&req, &Progress::default()) {
        Ok(validated) => validated,
        Err(e) => {
            let e = CliError::from(e);
            if let (DataFormat::Json, Some(diagnostics)) = (output, &e.diagnostics) {
                let shown = inv.inventory.display().to_string();
                views::stdout(&views::json_document(&views::validate_report(&shown, diagnostics)))?;
            }
            return Err(e);
        }
    };
    show_checks(&req, &validated);
    if validated.has_errors() {
        if output == DataFormat::Json {
            let Validated { loaded, missing_files, branch } = validated;
            let mut all = loaded.warnings.clone();
            if let Some(missing) = missing_files {
                all.extend(missing);
            }
            if let Some(b) = branch {
                all.extend(b.offenders);
            }
            views::stdout(&views::json_document(&views::validate_report(&loaded.path, &all)))?;
        }
        return Ok(ExitStatus::Error);
    }
    views::stdout(&views::validate(&validated.loaded, output))?;
    super::exit_without_freeing(validated);
    Ok(ExitStatus::Success)
}

/// The `--tree` and `--branch-check` results on stderr, each problem on its own located line.
fn show_checks(req: &ValidateRequest, v: &Validated) {
    if let (Some(dir), Some(missing)) = (&req.tree, &v.missing_files)
        && !missing.is_empty()
    {
        views::diagnostics(missing);
        views::note(&format!(
            "{} file(s) named in the inventory are missing from `{}`",
            missing.error_count(),
            dir.display()
        ));
    }
    if let Some(b) = &v.branch {
        if b.offenders.is_empty() {
            views::note(&format!("branch check passed on `{}`", b.branch));
        } else {
            views::diagnostics(&b.offenders);
            views::note(&format!(
                "{} revision(s) do not match branch `{}`",
                b.offenders.error_count(),
                b.branch
            ));
        }
    }
}
