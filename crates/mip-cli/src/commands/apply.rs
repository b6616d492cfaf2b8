//! `mip apply [PLAN]`.

use crate::cli::{ApplyArgs, ProgressFormat, WaitForArg};
use crate::env::{Parts, Resolver, confirmation, runtime};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::signals::{self, Ended, Tracked};
use crate::views;
use mip_engine::ops::apply::{
    Applied, ApplyOpts, ApplyOutcome, ApplyRequest, TARGET_WARNING, WaitFor, apply,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

impl From<&ApplyArgs> for ApplyRequest {
    /// The request of `mip apply`'s flags (the connection, state and output flags are the
    /// command's [`Env`](mip_engine::ops::Env) and view).
    fn from(a: &ApplyArgs) -> ApplyRequest {
        ApplyRequest {
            load: super::load_options(&a.inv),
            plan_file: a.plan.clone(),
            rotate: a.rotate.clone(),
            force_conflicts: a.force_conflicts,
            targets: a.targets.clone(),
            allow_delete: a.allow_delete.clone(),
            opts: ApplyOpts {
                parallelism: a.parallelism,
                wait_timeout: a.wait_timeout,
                wait_for: match a.wait_for {
                    WaitForArg::Exists => WaitFor::Exists,
                    WaitForArg::Synced => WaitFor::Synced,
                    WaitForArg::Healthy => WaitFor::Healthy,
                },
                refresh: !a.no_refresh,
                ..ApplyOpts::default()
            },
        }
    }
}

/// Applies and reports.
///
/// # Errors
/// The engine's errors.
pub fn run(a: &ApplyArgs) -> Result<ExitStatus, CliError> {
    let json = a.output == ProgressFormat::Json;
    let parts = Parts::locking(&a.cluster);
    let req = ApplyRequest::from(a);
    let resolver = Resolver { base: a.inv.inventory.parent().map(Path::to_path_buf).unwrap_or_default() };
    let confirm = confirmation(a.auto_approve);
    if !a.targets.is_empty() {
        views::note(&format!("warning: {}", TARGET_WARNING));
    }
    parts.progress.set_json(json);
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
    if json && let Ok(applied) = &result {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use std::time::Duration;

    fn request(args: &[&str]) -> ApplyRequest {
        let cli = Cli::try_parse_from([&["mip", "apply"], args].concat()).expect("flags parse");
        let Command::Apply(a) = cli.command else { panic!("apply") };
        ApplyRequest::from(&a)
    }

    #[test]
    fn the_request_carries_every_flag_under_its_own_name() {
        let req = request(&[
            "plan.mip",
            "-i",
            "inv.yaml",
            "--parallelism",
            "3",
            "--wait-timeout",
            "90s",
            "--wait-for",
            "synced",
            "--no-refresh",
            "--rotate",
            "v1/Secret/a/b",
            "--force-conflicts",
            "--allow-delete",
            "v1/Namespace/a",
        ]);
        assert_eq!(req.load.inventory, std::path::PathBuf::from("inv.yaml"));
        assert_eq!(req.plan_file.as_deref(), Some(Path::new("plan.mip")));
        assert_eq!((req.opts.parallelism, req.opts.wait_timeout), (3, Duration::from_secs(90)));
        assert_eq!(req.opts.wait_for, WaitFor::Synced);
        assert!(!req.opts.refresh && req.force_conflicts);
        assert_eq!(
            (req.rotate.as_slice(), req.allow_delete.as_slice()),
            (&["v1/Secret/a/b".to_owned()][..], &["v1/Namespace/a".to_owned()][..])
        );
        let defaults = request(&["--target", "v1/Namespace/a"]);
        assert_eq!(defaults.targets, vec!["v1/Namespace/a".to_owned()]);
        assert_eq!(
            (defaults.opts.wait_timeout, defaults.opts.wait_for),
            (Duration::from_secs(300), WaitFor::Healthy)
        );
        assert!(defaults.opts.refresh && defaults.plan_file.is_none());
    }
}
