//! The live plan: the cluster read with one LIST per kind, each mip-owned object diffed once,
//! and a server-side dry run only for objects whose owned fields differ.

use crate::Error;
use crate::load::{Loaded, prior_from};
use mip_core::cluster::{ApplyOptions, Cluster};
use mip_core::{ObjectRef, canonical};
use mip_plan::{LiveView, Mode, Plan, PlanInput, PriorState};
use mip_state::Snapshot;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The live object without what the server sets on every write, for comparing a dry run's
/// result with it.
fn volatile_stripped(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["managedFields", "resourceVersion", "generation", "creationTimestamp", "uid"] {
            meta.remove(k);
        }
    }
    canonical::canonicalize(&v)
}

/// Plans against the live cluster.
///
/// Reads with one LIST per kind; objects whose owned fields differ are confirmed with a
/// server-side dry run (never for unchanged objects), so server normalisation is not a change.
/// `snapshot` is the state (`None`: nothing applied yet).
///
/// # Errors
/// Cluster errors.
pub async fn plan_live<C: Cluster>(
    cluster: &C,
    loaded: &Loaded,
    snapshot: Option<&Snapshot>,
) -> Result<Plan, Error> {
    Ok(plan_live_read(cluster, loaded, snapshot).await?.0)
}

/// [`plan_live`], and every object it read (what Argo CD reconciles included, for drift).
///
/// # Errors
/// Cluster errors.
pub async fn plan_live_read<C: Cluster>(
    cluster: &C,
    loaded: &Loaded,
    snapshot: Option<&Snapshot>,
) -> Result<(Plan, BTreeMap<ObjectRef, Value>), Error> {
    let prior = snapshot.map(prior_from).unwrap_or_default();
    let mut addrs: BTreeSet<ObjectRef> = loaded.desired.objects.keys().map(|a| (**a).clone()).collect();
    addrs.extend(prior.managed.keys().cloned());
    let (objects, leftovers) = super::read::read_live_with_leftovers(cluster, &addrs).await?;
    let mut view = LiveView::new(&loaded.desired, objects).with_leftovers(leftovers);
    for (addr, manifest) in view.to_confirm(&loaded.desired) {
        let opts = ApplyOptions { dry_run: true, force: mip_plan::adopts(&addr) };
        if let Ok(result) = cluster.apply(&addr, &manifest, opts).await
            && view
                .objects
                .get(&addr)
                .is_some_and(|live| volatile_stripped(&result) == volatile_stripped(live))
        {
            view.confirm_unchanged(&addr);
        }
    }
    let input = PlanInput {
        inventory: &loaded.path,
        inventory_digest: loaded.digest.clone(),
        mode: Mode::Live,
        mip_version: env!("CARGO_PKG_VERSION"),
    };
    let plan = plan_reachable(loaded, &prior, &view, &input, |c| cluster.reaches(c))?;
    Ok((plan, view.objects))
}

/// Objects on clusters mip is not connected to (a remote cluster without a kubeconfig context)
/// are left out of a live plan rather than applied to the wrong cluster. Only then is the
/// desired state copied and its graph rebuilt.
fn plan_reachable(
    loaded: &Loaded,
    prior: &PriorState,
    view: &LiveView,
    input: &PlanInput<'_>,
    reaches: impl Fn(Option<&str>) -> bool,
) -> Result<Plan, Error> {
    let reached = |a: &ObjectRef| reaches(a.cluster.as_deref());
    if loaded.desired.objects.keys().all(|a| reached(a)) {
        return Ok(mip_plan::plan_live(&loaded.desired, &loaded.dag, prior, view, input));
    }
    let mut desired = loaded.desired.clone();
    desired.objects.retain(|a, _| reached(a));
    let steps = desired.objects.iter().map(|(a, o)| ((**a).clone(), o.step)).collect();
    let edges = loaded.dag.edges().into_iter().filter(|e| reached(&e.from) && reached(&e.to)).collect();
    let dag =
        mip_graph::Dag::from_edges(&steps, edges).map_err(|e| Error::Stale { reason: e.to_string() })?;
    Ok(mip_plan::plan_live(&desired, &dag, prior, view, input))
}
