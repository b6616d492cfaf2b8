//! `mip show PLANFILE`: a saved plan, read back and verified (its digest), for any view.

use crate::Error;
use mip_plan::Plan;
use std::path::Path;

/// Reads a saved plan.
///
/// # Errors
/// [`Error::ReadPlanFile`]; [`Error::PlanFile`] when it is not a plan, from another format
/// version, or was modified after it was written (digest mismatch: exit 4).
pub fn show(path: &Path) -> Result<Plan, Error> {
    super::apply::read_plan_file(path)
}
