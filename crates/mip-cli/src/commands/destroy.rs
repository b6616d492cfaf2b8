//! `mip destroy`.

use crate::cli::{InventoryArgs, LockedClusterArgs};
use crate::env::{Parts, confirmation, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::signals::{self, Ended, Tracked};
use crate::views;
use mip_engine::ops::destroy::{DestroyRequest, Destroyed, destroy};
use std::sync::Arc;

/// Destroys and reports.
///
/// # Errors
/// The engine's errors.
pub fn run(
    inv: &InventoryArgs,
    cluster: &LockedClusterArgs,
    auto_approve: bool,
    include_protected: bool,
    wait_timeout: std::time::Duration,
) -> Result<ExitStatus, CliError> {
    let parts = Parts::locking(cluster);
    let req = DestroyRequest {
        load: super::load_options(inv),
        include_protected,
        wait_timeout,
        interrupt: mip_engine::ops::Interrupt::default(),
    };
    let confirm = confirmation(auto_approve);
    let tracked = Arc::new(Tracked::new(Arc::clone(&parts.progress)));
    let mut env = parts.env();
    env.hook = Arc::clone(&tracked) as _;
    let grace = signals::grace(cluster.cluster.connect.request_timeout);
    let op = destroy(&env, &req, confirm.as_ref());
    let (ended, signal) = signals::guard(&runtime()?, &req.interrupt, &tracked, grace, op)?;
    parts.progress.finish();
    let result = match ended {
        Ended::Returned(result) => result,
        Ended::Stopped => return Ok(signals::report_stopped(&tracked, signal.name())),
    };
    signals::report_returned(signal.name());
    match result {
        Ok(Destroyed::Nothing { forgot }) => {
            views::note(&match forgot {
                0 => "Nothing to destroy.".to_owned(),
                n => format!(
                    "Nothing to destroy; {n} object(s) the state held were already gone and are forgotten."
                ),
            });
            Ok(ExitStatus::Success)
        }
        Ok(Destroyed::Ran(o)) => {
            views::note(&format!(
                "Destroy: {} deleted, {} failed, {} not started.",
                o.applied.len(),
                o.failed.len(),
                o.skipped.len()
            ));
            super::apply::forbidden(&o);
            Ok(if o.complete() { ExitStatus::Success } else { ExitStatus::PartialApply })
        }
        Err(mip_engine::Error::Declined { .. }) => Ok(ExitStatus::SafetyRefusal),
        Err(e) => Err(e.into()),
    }
}
