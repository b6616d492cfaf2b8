//! The destroy plan: what mip made, deleted in reverse dependency order.

use super::read::labelled_mip;
use crate::load::{Loaded, prior_from};
use mip_core::ObjectRef;
use mip_plan::{Change, Mode, Plan, PlanInput};
use mip_state::Snapshot;
use serde_json::Value;
use std::collections::BTreeMap;

/// Kinds whose deletion takes other things with it: a Namespace its workloads and volumes, an
/// AppProject its Applications' ability to sync, a CRD every custom resource of its kind.
pub fn is_protected(a: &ObjectRef) -> bool {
    matches!(
        a.known_kind(),
        Some(
            mip_core::Kind::Namespace | mip_core::Kind::AppProject | mip_core::Kind::CustomResourceDefinition
        )
    )
}

/// A destroy plan: every object in the state that still carries mip's label, deleted in
/// reverse dependency order. Never the `default` AppProject (argocd-server recreates it; mip
/// only forgets it), and protected kinds only with `include_protected`.
pub fn destroy_plan(
    loaded: &Loaded,
    snapshot: &Snapshot,
    live: &BTreeMap<ObjectRef, Value>,
    include_protected: bool,
) -> Plan {
    // Reverse creation order; objects the inventory no longer has go first (they were created
    // by an older inventory, nothing in this one depends on them).
    let rank: BTreeMap<&ObjectRef, usize> =
        loaded.dag.order().rev().enumerate().map(|(i, a)| (a, i + 1)).collect();
    let mut addrs: Vec<&ObjectRef> = snapshot
        .managed
        .keys()
        .filter(|a| !mip_plan::adopts(a) && (include_protected || !is_protected(a)))
        .filter(|a| live.get(*a).is_some_and(labelled_mip))
        .collect();
    addrs.sort_by_key(|a| (rank.get(a).copied().unwrap_or(0), *a));
    let changes: Vec<Change> = addrs
        .into_iter()
        .map(|a| {
            let live_fp = live.get(a).map(|l| mip_plan::diff::live_fingerprint(l, a.is_secret()));
            let base = mip_plan::deletion(a, "destroy", snapshot.managed[a].fingerprint.clone(), live_fp);
            match loaded.desired.objects.get(a) {
                Some(o) => Change { step: o.step, purpose: o.reason.clone(), ..base },
                None => base,
            }
        })
        .collect();
    let summary = mip_plan::Summary { delete: changes.len(), ..Default::default() };
    let input = PlanInput {
        inventory: &loaded.path,
        inventory_digest: loaded.digest.clone(),
        mode: Mode::Live,
        mip_version: env!("CARGO_PKG_VERSION"),
    };
    mip_plan::assemble(&loaded.desired, &prior_from(snapshot), &input, changes, Vec::new(), summary)
}

/// The protected objects a destroy without `include_protected` keeps (that still exist).
pub fn kept_protected<'s>(
    snapshot: &'s Snapshot,
    live: &BTreeMap<ObjectRef, Value>,
    include_protected: bool,
) -> impl Iterator<Item = &'s ObjectRef> {
    snapshot.managed.keys().filter(move |a| !include_protected && is_protected(a) && live.contains_key(*a))
}
