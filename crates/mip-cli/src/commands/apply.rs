//! `mip apply [PLAN]`.

use crate::cli::{InventoryArgs, LockedClusterArgs, WaitForArg};
use crate::env::{Parts, Resolver, confirmation, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::signals::{self, Ended, Tracked};
use crate::views;
use mip_engine::live::{ApplyOpts, ApplyOutcome, WaitFor};
use mip_engine::ops::apply::{Applied, ApplyRequest, apply};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The flags of `mip apply`.
pub struct Args<'a> {
    /// A saved plan.
    pub plan_file: Option<&'a Path>,
    /// Inventory.
    pub inv: &'a InventoryArgs,
    /// Cluster and state.
    pub cluster: &'a LockedClusterArgs,
    /// `--auto-approve`.
    pub auto_approve: bool,
    /// `--parallelism`.
    pub parallelism: usize,
    /// `--wait-timeout`.
    pub wait_timeout: Duration,
    /// `--wait-for`.
    pub wait_for: WaitForArg,
    /// Not `--no-refresh`.
    pub refresh: bool,
    /// `--output json`: progress as JSON lines on stdout.
    pub json: bool,
    /// `--rotate`.
    pub rotate: &'a [String],
    /// `--force-conflicts`.
    pub force_conflicts: bool,
    /// `--target`.
    pub targets: &'a [String],
    /// `--allow-delete`.
    pub allow_delete: &'a [String],
}

/// Applies and reports.
///
/// # Errors
/// The engine's errors.
pub fn run(a: &Args<'_>) -> Result<ExitStatus, CliError> {
    let parts = Parts::locking(a.cluster);
    let req = ApplyRequest {
        load: super::load_options(a.inv),
        plan_file: a.plan_file.map(Path::to_path_buf),
        rotate: a.rotate.to_vec(),
        force_conflicts: a.force_conflicts,
        targets: a.targets.to_vec(),
        allow_delete: a.allow_delete.to_vec(),
        opts: ApplyOpts {
            parallelism: a.parallelism,
            wait_timeout: a.wait_timeout,
            wait_for: match a.wait_for {
                WaitForArg::Exists => WaitFor::Exists,
                WaitForArg::Synced => WaitFor::Synced,
                WaitForArg::Healthy => WaitFor::Healthy,
            },
            refresh: a.refresh,
            ..ApplyOpts::default()
        },
    };
    let resolver = Resolver { base: a.inv.inventory.parent().map(Path::to_path_buf).unwrap_or_default() };
    let confirm = confirmation(a.auto_approve);
    if !a.targets.is_empty() {
        views::note(&format!("warning: {}", mip_plan::safety::TARGET_WARNING));
    }
    parts.progress.set_json(a.json);
    let tracked = Arc::new(Tracked::new(Arc::clone(&parts.progress)));
    let mut env = parts.env();
    env.hook = Arc::clone(&tracked) as _;
    let grace = signals::grace(a.cluster.cluster.connect.request_timeout);
    let op = apply(&env, &req, &resolver, confirm.as_ref());
    let (ended, signal) = signals::guard(&runtime()?, &req.opts.interrupt, &tracked, grace, op)?;
    parts.progress.finish();
    let result = match ended {
        Ended::Returned(result) => result,
        Ended::Stopped => return Ok(signals::report_stopped(&tracked, signal.name())),
    };
    signals::report_returned(signal.name());
    if a.json
        && let Ok(applied) = &result
    {
        parts.progress.outcome(applied);
    }
    match result {
        Ok(Applied::NoChanges) => {
            views::note("No changes. Nothing to apply.");
            Ok(ExitStatus::Success)
        }
        Ok(Applied::NotReady(pending)) => {
            views::note("No changes to write, but Argo CD has not reconciled everything yet:");
            Ok(report(&ApplyOutcome { pending, ..ApplyOutcome::default() }))
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
        "Apply: {} done, {} failed, {} skipped, {} not ready in Argo CD; state serial {}.",
        o.applied.len(),
        o.failed.len(),
        o.skipped.len(),
        o.pending.len(),
        o.serial
    ));
    for p in &o.pending {
        views::note(&format!("  pending: {}: {}", p.address, p.reason));
    }
    if !o.pending.is_empty() {
        views::note("  (hint: `mip doctor` explains each; `--wait-for exists` waits only until they exist)");
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
            views::error(&f.error.to_string(), mip_engine::forbidden_hint(&f.error).as_deref());
        }
    }
}
