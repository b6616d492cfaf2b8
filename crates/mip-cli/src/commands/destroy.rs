//! `mip destroy`.

use crate::cli::{ClusterArgs, InventoryArgs};
use crate::env::{Parts, confirmation, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_engine::ops::destroy::{DestroyRequest, Destroyed, destroy};

/// Destroys and reports.
///
/// # Errors
/// The engine's errors.
pub fn run(
    inv: &InventoryArgs,
    cluster: &ClusterArgs,
    auto_approve: bool,
    include_protected: bool,
) -> Result<ExitStatus, CliError> {
    let parts = Parts::new(cluster);
    let req = DestroyRequest { load: super::load_options(inv), include_protected };
    let confirm = confirmation(auto_approve);
    let result = runtime()?.block_on(destroy(&parts.env(), &req, confirm.as_ref()));
    parts.progress.finish();
    match result {
        Ok(Destroyed::Nothing) => {
            views::note("Nothing to destroy.");
            Ok(ExitStatus::Success)
        }
        Ok(Destroyed::Ran(o)) => {
            views::note(&format!("Destroy: {} deleted, {} failed.", o.applied.len(), o.failed.len()));
            super::apply::forbidden(&o);
            Ok(if o.complete() { ExitStatus::Success } else { ExitStatus::PartialApply })
        }
        Err(mip_engine::Error::Declined { .. }) => Ok(ExitStatus::SafetyRefusal),
        Err(e) => Err(e.into()),
    }
}
