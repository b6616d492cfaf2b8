//! Addresses given on the command line (`--target`, `--rotate`, `--allow-delete`) and a plan
//! narrowed to the `--target`s: one feature of `plan`, `apply` and `review`, which all use it.

use crate::Error;
use mip_core::ObjectRef;
use mip_plan::Plan;
use std::collections::BTreeSet;

/// Parses addresses given on the command line.
pub(crate) fn parse_addresses(flag: &'static str, input: &[String]) -> Result<BTreeSet<ObjectRef>, Error> {
    input
        .iter()
        .map(|r| r.parse::<ObjectRef>().map_err(|e| Error::BadAddress { flag, reason: e.to_string() }))
        .collect()
}

/// The plan narrowed to `--target` addresses and what they depend on (unchanged without any).
///
/// # Errors
/// [`Error::BadAddress`], [`Error::UnknownTarget`].
pub(crate) fn narrow(plan: Plan, targets: &[String]) -> Result<Plan, Error> {
    if targets.is_empty() {
        return Ok(plan);
    }
    let targets = parse_addresses("--target", targets)?;
    Ok(mip_plan::safety::target(&plan, &targets)?)
}
