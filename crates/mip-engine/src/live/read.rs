//! Reading the cluster: one LIST per kind, the inventory's guard, and the freshness check of a
//! saved plan.

use crate::Error;
use crate::load::Loaded;
use mip_core::ObjectRef;
use mip_core::cluster::{Cluster, ClusterError, KindRef};
use mip_plan::Plan;
use mip_state::Snapshot;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Checks the inventory's guard against the API server in use.
///
/// # Errors
/// [`Error::WrongCluster`].
pub fn check_guard(loaded: &Loaded, server: &str, context: Option<&str>) -> Result<(), Error> {
    let norm = |s: &str| s.trim_end_matches('/').to_owned();
    if let Some(want) = &loaded.inventory.argocd.api_server
        && norm(&want.value) != norm(server)
    {
        return Err(Error::WrongCluster {
            expected: format!("`{}` (argocd.apiServer)", want.value),
            actual: server.to_owned(),
        });
    }
    if let Some(want) = &loaded.inventory.argocd.context
        && Some(want.value.as_str()) != context
    {
        return Err(Error::WrongCluster {
            expected: format!(
                "context `{}` (argocd.context), not `{}`",
                want.value,
                context.unwrap_or("<none>")
            ),
            actual: server.to_owned(),
        });
    }
    Ok(())
}

/// Reads every object of interest with one LIST per kind and cluster (per namespace when all
/// objects of the kind share one namespace; cluster-wide otherwise; Secrets only with mip's
/// label). Objects on clusters the handle does not reach are not read.
///
/// # Errors
/// Cluster errors other than an unknown kind (a missing CRD means no objects of it).
pub async fn read_live<C: Cluster>(
    cluster: &C,
    addrs: &BTreeSet<ObjectRef>,
) -> Result<BTreeMap<ObjectRef, Value>, Error> {
    Ok(read_live_with_leftovers(cluster, addrs).await?.0)
}

/// [`read_live`], and the Argo CD objects its LISTs returned that were not asked for: what Argo
/// CD generated that the desired state no longer has (it deletes them once it reads Git).
///
/// # Errors
/// As [`read_live`].
pub async fn read_live_with_leftovers<C: Cluster>(
    cluster: &C,
    addrs: &BTreeSet<ObjectRef>,
) -> Result<(BTreeMap<ObjectRef, Value>, BTreeMap<ObjectRef, Value>), Error> {
    let mut leftovers = BTreeMap::new();
    let mut by_kind: BTreeMap<(Option<String>, KindRef), BTreeSet<Option<String>>> = BTreeMap::new();
    for a in addrs.iter().filter(|a| cluster.reaches(a.cluster.as_deref())) {
        by_kind.entry((a.cluster.clone(), KindRef::of(a))).or_default().insert(a.namespace.clone());
    }
    let mut out = BTreeMap::new();
    for ((on, kind), namespaces) in by_kind {
        let selector =
            (kind.group.is_empty() && kind.kind == "Secret").then_some(mip_core::MANAGED_BY_SELECTOR);
        let ns = match namespaces.iter().collect::<Vec<_>>().as_slice() {
            [Some(one)] => Some(one.as_str()),
            _ => None,
        };
        let items = match cluster.list_in(on.as_deref(), &kind, ns, selector).await {
            Ok(items) => items,
            Err(ClusterError::UnknownKind { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let api_version = if kind.group.is_empty() {
            kind.version.clone()
        } else {
            format!("{}/{}", kind.group, kind.version)
        };
        for item in items {
            let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let namespace = item.pointer("/metadata/namespace").and_then(Value::as_str);
            let addr = ObjectRef {
                cluster: on.clone(),
                ..ObjectRef::new(&api_version, &kind.kind, namespace, name)
            };
            if addrs.contains(&addr) {
                out.insert(addr, item);
            } else if kind.group == "argoproj.io" {
                leftovers.insert(addr, item);
            }
        }
    }
    adoptable_secrets(cluster, addrs, &mut out).await?;
    Ok((out, leftovers))
}

/// Most namespaces whose unlabelled Secrets are listed one by one; beyond, one cluster-wide LIST.
const ADOPT_NAMESPACE_LISTS: usize = 8;

/// Secrets mip wants that exist without its label (made by hand, e.g. by the mip-infra README's
/// `gen_secrets.sh`): read so that the plan adopts them and keeps every existing value. Only
/// namespaces that can hold one are listed: not those of Namespaces mip wants that are absent
/// (a bootstrap from nothing costs no request). Unrelated Secrets a LIST returns are dropped
/// at once and never leave this function.
async fn adoptable_secrets<C: Cluster>(
    cluster: &C,
    addrs: &BTreeSet<ObjectRef>,
    out: &mut BTreeMap<ObjectRef, Value>,
) -> Result<(), Error> {
    let absent_namespace = |ns: &str| {
        let a = ObjectRef::new("v1", "Namespace", None, ns);
        addrs.contains(&a) && !out.contains_key(&a)
    };
    let wanted: Vec<&ObjectRef> = addrs
        .iter()
        .filter(|a| a.cluster.is_none() && a.is_secret() && !out.contains_key(*a))
        .filter(|a| a.namespace.as_deref().is_some_and(|ns| !absent_namespace(ns)))
        .collect();
    let namespaces: BTreeSet<&str> = wanted.iter().filter_map(|a| a.namespace.as_deref()).collect();
    if namespaces.is_empty() {
        return Ok(());
    }
    let kind = KindRef::of(wanted[0]);
    let lists: Vec<Option<&str>> = if namespaces.len() <= ADOPT_NAMESPACE_LISTS {
        namespaces.into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    for ns in lists {
        let items = match cluster.list(&kind, ns, None).await {
            Ok(items) => items,
            Err(ClusterError::UnknownKind { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for item in items {
            let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let namespace = item.pointer("/metadata/namespace").and_then(Value::as_str);
            let addr = ObjectRef::new("v1", "Secret", namespace, name);
            if wanted.contains(&&addr) {
                out.insert(addr, item);
            }
        }
    }
    Ok(())
}

/// Whether a live object carries mip's managed-by label.
pub(crate) fn labelled_mip(live: &Value) -> bool {
    live.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get(mip_core::MANAGED_BY_LABEL))
        .and_then(Value::as_str)
        == Some(mip_core::MANAGED_BY_VALUE)
}

/// Checks that a saved plan still applies: same state lineage and serial, and every planned
/// object's uid, existence and mip-owned fields unchanged (status changes do not count).
/// Returns the live objects of the plan's changes.
///
/// # Errors
/// [`Error::OtherState`] or [`Error::Stale`] naming the objects.
pub async fn check_fresh<C: Cluster>(
    cluster: &C,
    plan: &Plan,
    snapshot: &Snapshot,
) -> Result<BTreeMap<ObjectRef, Value>, Error> {
    // A plan made before any store existed carries no lineage: it fits a store that has not
    // recorded anything yet (serial 0), whatever its fresh lineage.
    if let Some(p) = &plan.state.lineage
        && *p != snapshot.lineage
    {
        return Err(Error::OtherState { plan: p.clone(), state: snapshot.lineage.clone() });
    }
    if snapshot.serial != plan.state.serial {
        return Err(Error::Stale {
            reason: format!(
                "the state moved from serial {} to {} (another apply ran)",
                plan.state.serial, snapshot.serial
            ),
        });
    }
    let addrs: BTreeSet<ObjectRef> = plan.changes.iter().map(|c| c.address.clone()).collect();
    let live = read_live(cluster, &addrs).await?;
    let changed: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| {
            let now =
                live.get(&c.address).map(|l| mip_plan::diff::live_fingerprint(l, c.address.is_secret()));
            now != c.live_fingerprint
        })
        .map(|c| format!("`{}`", c.address))
        .collect();
    if !changed.is_empty() {
        return Err(Error::Stale {
            reason: format!("changed in the cluster since the plan: {}", changed.join(", ")),
        });
    }
    Ok(live)
}
