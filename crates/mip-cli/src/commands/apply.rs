//! `mip apply [PLAN]`.

use crate::cli::{ClusterArgs, InventoryArgs};
use crate::env::{Parts, Resolver, confirmation, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::views;
use mip_engine::live::{ApplyOpts, ApplyOutcome};
use mip_engine::ops::apply::{Applied, ApplyRequest, apply};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// The flags of `mip apply`.
pub struct Args<'a> {
    /// A saved plan.
    pub plan_file: Option<&'a Path>,
    /// Inventory.
    pub inv: &'a InventoryArgs,
    /// Cluster and state.
    pub cluster: &'a ClusterArgs,
    /// `--auto-approve`.
    pub auto_approve: bool,
    /// `--parallelism`.
    pub parallelism: usize,
    /// `--wait-timeout` in seconds.
    pub wait_timeout: u64,
    /// `--rotate`.
    pub rotate: &'a [String],
    /// `--force-conflicts`.
    pub force_conflicts: bool,
}

/// Applies and reports.
///
/// # Errors
/// The engine's errors.
pub fn run(a: &Args<'_>) -> Result<ExitStatus, CliError> {
    let parts = Parts::new(a.cluster);
    let req = ApplyRequest {
        load: super::load_options(a.inv),
        plan_file: a.plan_file.map(Path::to_path_buf),
        rotate: a.rotate.to_vec(),
        force_conflicts: a.force_conflicts,
        opts: ApplyOpts {
            parallelism: a.parallelism,
            wait_timeout: Duration::from_secs(a.wait_timeout),
            ..ApplyOpts::default()
        },
    };
    let resolver = Resolver { base: a.inv.inventory.parent().map(Path::to_path_buf).unwrap_or_default() };
    let confirm = confirmation(a.auto_approve);
    let result = runtime()?.block_on(apply(&parts.env(), &req, &resolver, confirm.as_ref()));
    parts.progress.finish();
    match result {
        Ok(Applied::NoChanges) => {
            views::note("No changes. Nothing to apply.");
            Ok(ExitStatus::Success)
        }
        Ok(Applied::Ran(o)) => Ok(report(&o)),
        Err(mip_engine::Error::Declined { .. }) => {
            views::note("Apply cancelled.");
            Ok(ExitStatus::SafetyRefusal)
        }
        Err(e) => Err(e.into()),
    }
}

/// The summary of an apply, its pending objects and missing permissions; the exit status.
fn report(o: &ApplyOutcome) -> ExitStatus {
    views::note(&format!(
        "Apply: {} done, {} failed, {} skipped, {} still expected from Argo CD; state serial {}.",
        o.applied.len(),
        o.failed.len(),
        o.skipped.len(),
        o.pending.len(),
        o.serial
    ));
    for p in &o.pending {
        views::note(&format!(
            "  pending: {p} (Argo CD has not created it yet; check `mip doctor` or the Argo CD UI)"
        ));
    }
    forbidden(o);
    if o.complete() {
        ExitStatus::Success
    } else if o.all_refused() {
        // Every write was refused for want of permissions: nothing changed.
        ExitStatus::Error
    } else {
        ExitStatus::PartialApply
    }
}

/// One line per missing permission, however many objects it refused.
pub fn forbidden(o: &ApplyOutcome) {
    let mut shown = BTreeSet::new();
    for f in o.forbidden() {
        if let mip_core::cluster::ClusterError::Forbidden { verb, resource, namespace, .. } = &f.error
            && shown.insert((verb, resource, namespace))
        {
            let hint =
                mip_engine::forbidden_hint(&f.error).map(|h| format!(" (hint: {h})")).unwrap_or_default();
            views::note(&format!("error: {}{hint}", f.error));
        }
    }
}
