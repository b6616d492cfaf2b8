//! `mip import DIR [-o FILE]`: an existing mip-infra checkout read back into an inventory,
//! printed on stdout (or written to FILE), with what it could not express on stderr.

use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use std::path::Path;

/// Imports the checkout at `dir`.
///
/// # Errors
/// The engine's errors: an unreadable checkout, no mip-infra tree there, an unwritable FILE.
pub fn run(dir: &Path, out: Option<&Path>) -> Result<ExitStatus, CliError> {
    let imported = mip_engine::ops::import::import(dir, out)?;
    for line in &imported.report {
        views::note(&format!("note: {line}"));
    }
    match out {
        Some(path) => views::note(&format!(
            "wrote `{}` ({} note(s) above); next: `mip render {} --check -i {}`",
            path.display(),
            imported.report.len(),
            dir.display(),
            path.display()
        )),
        None => views::stdout(&imported.inventory)?,
    }
    Ok(ExitStatus::Success)
}
