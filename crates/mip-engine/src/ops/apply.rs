//! `mip apply [PLAN]`: a saved plan checked for staleness, or a fresh live plan shown first;
//! confirmation; the scheduler; the history.

use super::Conn;
use super::{Env, open, record_run};
use crate::Error;
use crate::load::{LoadOptions, Loaded};
use crate::seams::{Answer, Confirm, Connector, Event, Notice, Operation, SecretResolver};
use mip_core::ObjectRef;
use mip_core::cluster::Cluster;
use mip_plan::Plan;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::live::{ApplyOpts, ApplyOutcome, NotReady, WaitFor};
pub use mip_plan::safety::TARGET_WARNING;

/// What to apply.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// The inventory (also the base of relative secret files).
    pub load: LoadOptions,
    /// A saved plan; without it, mip plans first.
    pub plan_file: Option<PathBuf>,
    /// Secrets whose generated values are regenerated (addresses as typed).
    pub rotate: Vec<String>,
    /// Take ownership of fields other managers own.
    pub force_conflicts: bool,
    /// `--target` addresses, as typed: apply only these and what they depend on.
    pub targets: Vec<String>,
    /// `--allow-delete` addresses, as typed: protected objects this unattended apply may delete.
    pub allow_delete: Vec<String>,
    /// Scheduler options.
    pub opts: ApplyOpts,
}

/// What an apply did.
#[derive(Debug)]
pub enum Applied {
    /// The plan had nothing to write, and what Argo CD reconciles is ready (or not waited for).
    NoChanges,
    /// Nothing to write, but these objects Argo CD reconciles were not ready in time.
    NotReady(Vec<crate::live::NotReady>),
    /// The writes ran (completely or not: see the outcome).
    Ran(ApplyOutcome),
}

/// Reads and verifies a saved plan.
pub(crate) fn read_plan_file(path: &std::path::Path) -> Result<Plan, Error> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::ReadPlanFile { path: shown.clone(), source })?;
    Ok(mip_plan::planfile::from_bytes(&shown, &bytes)?)
}

/// Applies (see the [module docs](self)).
///
/// # Errors
/// Local input errors before the cluster is contacted; then cluster, state, staleness and
/// secret-source errors before anything is written; [`Error::Declined`] or
/// [`Error::NoConfirmation`] when not confirmed. Per-change failures are in the outcome.
pub async fn apply<K: Connector>(
    env: &Env<'_, K>,
    req: &ApplyRequest,
    secrets: &dyn SecretResolver,
    confirm: &dyn Confirm,
) -> Result<Applied, Error> {
    let loaded = env.load(&req.load)?;
    let rotate = super::targets::parse_addresses("--rotate", &req.rotate)?;
    let allowed = super::targets::parse_addresses("--allow-delete", &req.allow_delete)?;
    let saved = req.plan_file.as_deref().map(read_plan_file).transpose()?;
    if let Some(plan) = &saved {
        if plan.mode == mip_plan::Mode::Review {
            let shown = req.plan_file.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
            return Err(Error::ReviewPlan(shown));
        }
        // A saved plan is refused before the cluster is contacted.
        check_deletions(&loaded, plan, &allowed, confirm)?;
    }
    let cluster = Arc::new(env.connect(&loaded).await?);
    env.counted(&cluster, run(env, &loaded, &cluster, saved, &rotate, req, secrets, confirm)).await
}

#[expect(clippy::too_many_arguments, reason = "the phases of one command, each argument used once")]
async fn run<K: Connector>(
    env: &Env<'_, K>,
    loaded: &Loaded,
    cluster: &Arc<Conn<K>>,
    saved: Option<Plan>,
    rotate: &BTreeSet<ObjectRef>,
    req: &ApplyRequest,
    secrets: &dyn SecretResolver,
    confirm: &dyn Confirm,
) -> Result<Applied, Error> {
    // The state is read again below, under the lock: the copy `connect` peeked at (to find
    // the clusters) is dropped rather than held through the apply (a no-op apply at 1 000
    // federations: 107 → 103 MB).
    drop(env.take_peeked());
    let backend = env.backend(loaded, Some(cluster.as_ref()))?;
    let store = open(backend.as_ref(), Operation::Apply, env.state.lock_timeout).await?;
    // One read of the state under the lock: the plan's prior, the check below, the history's
    // starting serial.
    let snapshot = store.snapshot()?;
    let mut plan = match saved {
        Some(plan) => {
            if plan.inventory_digest != loaded.digest {
                let inventory = plan.inventory.clone();
                env.hook.event(Event::Notice(Notice::InventoryChangedSincePlan { inventory }));
            }
            plan
        }
        None => {
            let prior = (!snapshot.is_fresh()).then_some(&snapshot);
            let plan = crate::live::plan_live(cluster.as_ref(), loaded, prior).await?;
            let plan = super::targets::narrow(plan, &req.targets)?;
            env.hook.plan(&plan, Operation::Apply);
            let allowed = super::targets::parse_addresses("--allow-delete", &req.allow_delete)?;
            check_deletions(loaded, &plan, &allowed, confirm)?;
            plan
        }
    };
    if req.force_conflicts {
        for c in &mut plan.changes {
            c.force = true;
        }
    }
    let writes = plan.changes.iter().filter(|c| c.action.is_write()).count();
    // An unchanged object the state does not know (its write landed, the record did not: a
    // `kill -9` in between) is recorded by a run with no writes.
    let unrecorded = plan
        .changes
        .iter()
        .any(|c| c.action == mip_core::Action::NoOp && !snapshot.managed.contains_key(&c.address));
    if writes == 0 && rotate.is_empty() && !unrecorded {
        // Nothing to write, and nothing to ask: done once Argo CD has reconciled (unless the
        // caller does not wait).
        if req.opts.wait_timeout.is_zero() {
            return Ok(Applied::NoChanges);
        }
        let pending = crate::live::wait_ready(cluster.as_ref(), &plan, &req.opts, env.hook.as_ref()).await?;
        return Ok(if pending.is_empty() { Applied::NoChanges } else { Applied::NotReady(pending) });
    }
    // Recording what is already in the cluster as planned changes nothing there: no question.
    if writes > 0 || !rotate.is_empty() {
        ask(confirm, Operation::Apply, &format!("Apply {writes} change(s) to `{}`?", cluster.server_url()))?;
    }
    let before = snapshot.serial;
    let run = crate::live::apply(
        Arc::clone(cluster),
        Arc::clone(&store),
        &plan,
        secrets,
        rotate,
        &req.opts,
        Arc::clone(&env.hook),
    )
    .await;
    let outcome = record_run(store.as_ref(), Operation::Apply, before, "applied", run)?;
    Ok(Applied::Ran(outcome))
}

/// Refuses a plan that deletes protected objects (the inventory's `protect:`, by default
/// namespaces and Secrets) that `--allow-delete` does not name, unless a person confirms it.
fn check_deletions(
    loaded: &Loaded,
    plan: &Plan,
    allowed: &BTreeSet<ObjectRef>,
    confirm: &dyn Confirm,
) -> Result<(), Error> {
    let protection = mip_plan::safety::Protection::from_inventory(loaded.inventory.protect.as_deref());
    let refused = mip_plan::safety::refused_deletions(plan, &protection, allowed);
    if refused.is_empty() || confirm.asks_a_person() {
        return Ok(());
    }
    Err(Error::ProtectedDeletion(refused.into_iter().cloned().collect()))
}

/// Asks before changing the cluster.
pub(crate) fn ask(confirm: &dyn Confirm, operation: Operation, question: &str) -> Result<(), Error> {
    match confirm.confirm(question) {
        Answer::Yes => Ok(()),
        Answer::No => Err(Error::Declined {
            operation: match operation {
                Operation::Destroy => "Destroy",
                _ => "Apply",
            },
        }),
        Answer::CannotAsk => Err(Error::NoConfirmation),
    }
}
