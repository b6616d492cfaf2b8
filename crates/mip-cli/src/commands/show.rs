//! `mip show PLANFILE`: a saved plan in text, JSON or Markdown, its digest verified (a
//! modified file exits 4).

use crate::cli::ShowArgs;
use crate::error::CliError;
use crate::exit::ExitStatus;

/// Reads, verifies and prints a saved plan.
///
/// # Errors
/// The engine's plan-file errors; IO errors writing stdout.
pub fn run(a: &ShowArgs) -> Result<ExitStatus, CliError> {
    let plan = mip_engine::ops::show::show(&a.plan)?;
    super::plan::show(&plan, a.output, &a.markdown)?;
    Ok(ExitStatus::Success)
}
