//! Gates: the objects Argo CD reconciles that a write waits for. A change that depends on an
//! Argo-owned object (the infra root on the AppProjects the argo-projects root generates) is
//! written only once that object is ready ([`super::ready`]); with `--wait-for synced` or
//! `healthy` it also waits for the mip-owned Application that generates it. The same watch
//! serves the final wait for everything the plan expects.

use super::read::read_live;
use super::ready::{Readiness, WaitFor, readiness};
use crate::Error;
use crate::seams::{Event, Hook};
use mip_core::ObjectRef;
use mip_core::cluster::Cluster;
use mip_plan::{Change, Plan};
use std::collections::{BTreeMap, BTreeSet};

/// An object still not ready when the wait ended, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct NotReady {
    /// The object.
    pub address: ObjectRef,
    /// Argo CD's words (conditions, operation and health messages), or "not created yet".
    pub reason: String,
}

/// A set of objects watched for readiness at one level, each with its last seen state.
pub(crate) struct Watch {
    level: WaitFor,
    targets: Vec<ObjectRef>,
    /// For each target, whether it is waited for to be gone (an object Argo CD removes)
    /// rather than ready.
    gone: Vec<bool>,
    /// For each target, the fields the plan expects Argo CD to hold once it has reconciled
    /// (`None`: any state will do, e.g. a gate that only needs the object to exist).
    models: Vec<Option<std::sync::Arc<serde_json::Value>>>,
    state: Vec<Option<Readiness>>,
}

/// How the reason of a target that is there but not as planned starts.
const NOT_AS_PLANNED: &str = "not yet as planned";

/// Why a target waited for to be gone is not yet.
const STILL_PRESENT: &str = "still present: Argo CD has not removed it yet";

impl Watch {
    /// A watch where `gone[i]` says target `i` is waited for to be gone.
    pub(crate) fn new(targets: Vec<ObjectRef>, gone: Vec<bool>, level: WaitFor) -> Watch {
        let (state, models) = (vec![None; targets.len()], vec![None; targets.len()]);
        Watch { level, targets, gone, models, state }
    }

    /// The same watch, where a target is ready only once it also holds what the plan models
    /// for it (`models[i]`; at `synced` and `healthy`, not `exists`): after a change in Git (a
    /// pin, a values file), an Application that is Synced and Healthy on the old spec is not
    /// done.
    pub(crate) fn with_models(mut self, models: Vec<Option<std::sync::Arc<serde_json::Value>>>) -> Watch {
        debug_assert_eq!(models.len(), self.targets.len());
        self.models = models;
        self
    }

    pub(crate) fn len(&self) -> usize {
        self.targets.len()
    }

    pub(crate) fn address(&self, i: usize) -> &ObjectRef {
        &self.targets[i]
    }

    /// Whether target `i` existed at the last look but did not hold what the plan models.
    pub(crate) fn outdated(&self, i: usize) -> bool {
        matches!(&self.state[i], Some(Readiness::NotReady(why)) if why.starts_with(NOT_AS_PLANNED))
    }

    /// Whether target `i` existed at the last look.
    pub(crate) fn exists(&self, i: usize) -> bool {
        matches!(&self.state[i], Some(Readiness::Ready))
            || matches!(&self.state[i], Some(Readiness::NotReady(why)) if why != super::ready::NOT_CREATED)
    }

    pub(crate) fn is_ready(&self, i: usize) -> bool {
        self.state[i].as_ref().is_some_and(Readiness::is_ready)
    }

    /// Reads the targets in `which` (one LIST per kind) and returns those that became ready;
    /// every change of state is reported.
    pub(crate) async fn poll<C: Cluster>(
        &mut self,
        cluster: &C,
        which: &[usize],
        hook: &dyn Hook,
    ) -> Result<Vec<usize>, Error> {
        let addrs: BTreeSet<ObjectRef> = which.iter().map(|&i| self.targets[i].clone()).collect();
        let live = read_live(cluster, &addrs).await?;
        let mut opened = Vec::new();
        for &i in which {
            let now = match (self.gone[i], live.get(&self.targets[i])) {
                (true, None) => Readiness::Gone,
                (true, Some(_)) => Readiness::NotReady(STILL_PRESENT.to_owned()),
                (false, l) => {
                    let ready = readiness(&self.targets[i], l, self.level);
                    match (ready, l, self.models[i].as_deref()) {
                        // `--wait-for exists` waits for existence only.
                        (Readiness::Ready, Some(live), Some(model))
                            if !model.is_null() && self.level > WaitFor::Exists =>
                        {
                            let differs = mip_plan::argo::differing_fields(model, live);
                            if differs.is_empty() {
                                Readiness::Ready
                            } else {
                                Readiness::NotReady(format!(
                                    "{NOT_AS_PLANNED} ({}): Argo CD has not applied the change from Git",
                                    differs.join(", ")
                                ))
                            }
                        }
                        (ready, _, _) => ready,
                    }
                }
            };
            if self.state[i].as_ref() != Some(&now) {
                hook.event(Event::Ready(self.targets[i].clone(), now.clone()));
                if now.is_ready() {
                    opened.push(i);
                }
                self.state[i] = Some(now);
            }
        }
        Ok(opened)
    }

    /// The targets in `which` that are not ready, with the last reason seen.
    pub(crate) fn not_ready(&self, which: impl IntoIterator<Item = usize>) -> Vec<NotReady> {
        which
            .into_iter()
            .filter(|&i| !self.is_ready(i))
            .map(|i| NotReady {
                address: self.targets[i].clone(),
                reason: match &self.state[i] {
                    Some(Readiness::NotReady(why)) => why.clone(),
                    _ => "not looked at before the wait ended".to_owned(),
                },
            })
            .collect()
    }
}

/// The gates of a run.
pub(crate) struct Gates {
    /// The objects waited for.
    pub(crate) targets: Vec<ObjectRef>,
    /// For each gate, the change of this run that makes Argo CD generate it (its generator, or
    /// the generator's generator), if any: when that change fails, the gate can never open.
    pub(crate) parents: Vec<Option<ObjectRef>>,
    /// For each gate, whether it waits for its object to be gone.
    pub(crate) gone: Vec<bool>,
    /// For each change (by position), the gates it waits for (by position).
    pub(crate) per_change: Vec<Vec<usize>>,
}

/// The gates of a run. Dependencies written by the same run are not gates.
///
/// Deleting what mip made that is not an Argo CD object (a federation's namespace and
/// Secrets, a cluster's registration and credentials) waits until Argo CD has removed every
/// object the plan expects it to remove: Argo CD still needs the namespace, and the cluster's
/// credentials, to delete the workloads it deployed there.
pub(crate) fn gates_of(plan: &Plan, changes: &[&Change], level: WaitFor) -> Gates {
    let written: BTreeSet<&ObjectRef> = changes.iter().map(|c| &c.address).collect();
    let expected: BTreeMap<&ObjectRef, Option<&ObjectRef>> =
        plan.expected.iter().map(|e| (&e.address, e.generated_by.as_deref())).collect();
    let removed: Vec<&ObjectRef> = plan
        .expected
        .iter()
        .filter(|e| e.action == mip_core::Action::Delete && e.address.is(mip_core::Kind::Application))
        .map(|e| &e.address)
        .collect();
    let mut gates: Vec<ObjectRef> = Vec::new();
    let mut index: BTreeMap<ObjectRef, usize> = BTreeMap::new();
    let mut gate = |a: &ObjectRef| -> usize {
        *index.entry(a.clone()).or_insert_with(|| {
            gates.push(a.clone());
            gates.len() - 1
        })
    };
    let per_change: Vec<Vec<usize>> = changes
        .iter()
        .map(|c| {
            let mut mine = BTreeSet::new();
            for d in c.depends_on.iter().map(|d| &d.address).filter(|a| !written.contains(a)) {
                let Some(parent) = expected.get(d) else { continue };
                mine.insert(gate(d));
                // What Argo CD generated is only as good as the sync that generated it.
                if level > WaitFor::Exists
                    && let Some(parent) =
                        parent.filter(|p| p.is(mip_core::Kind::Application) && !expected.contains_key(p))
                {
                    mine.insert(gate(parent));
                }
            }
            if c.action == mip_core::Action::Delete && c.address.group != "argoproj.io" {
                for e in &removed {
                    mine.insert(gate(e));
                }
            }
            mine.into_iter().collect()
        })
        .collect();
    let parents = gates.iter().map(|g| written_ancestor(g, &expected, &written)).collect();
    let gone = gates.iter().map(|g| removed.contains(&g)).collect();
    Gates { targets: gates, parents, gone, per_change }
}

/// The nearest generator of `addr` that this run writes.
fn written_ancestor(
    addr: &ObjectRef,
    expected: &BTreeMap<&ObjectRef, Option<&ObjectRef>>,
    written: &BTreeSet<&ObjectRef>,
) -> Option<ObjectRef> {
    let mut at = addr;
    for _ in 0..expected.len() + 1 {
        if written.contains(at) {
            return Some(at.clone());
        }
        at = (*expected.get(at)?)?;
    }
    None
}

/// What the final wait watches: every object the plan expects from Argo CD, and every
/// Application mip writes or keeps (the roots).
pub(crate) fn final_targets(plan: &Plan) -> Vec<ObjectRef> {
    let roots = plan
        .changes
        .iter()
        .filter(|c| c.address.is(mip_core::Kind::Application))
        .filter(|c| c.action != mip_core::Action::Delete)
        .map(|c| c.address.clone());
    let expected = plan.expected.iter().map(|e| e.address.clone());
    roots.chain(expected).collect::<BTreeSet<_>>().into_iter().collect()
}
