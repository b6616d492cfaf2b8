//! The remote nodes of hybrid federations: what Submariner's join needs on each remote cluster,
//! carried from the main cluster by mip. Pure.
//!
//! By hand (mip-infra's remote-node procedure) an operator reads the broker's token and CA and
//! the IPsec PSK on the main cluster and passes them to `helm install submariner-operator` on
//! the remote node with `--set-string`. mip carries them instead: on every remote cluster of a
//! hybrid federation it writes the namespace `submariner-operator` and the Secret
//! `submariner-broker-join` whose keys are read, at apply time and in memory only, from the
//! Secrets the broker chart and the operator made on the main cluster
//! ([`SensitiveSource::SecretKey`]). The Secret is written once Argo CD has deployed the
//! broker (the DAG's source-first rule ties it to the Application that deploys into the
//! source's namespace). See docs/federations.md, "Hybrid federations", for the step left to the remote
//! node's Helm release and why.

use crate::model::{DesiredObject, Step};
use mip_core::{Location, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ObjectRef, Owner, SensitiveSource};
use mip_inventory::{CommonAppKind, FederationKind, Inventory};
use serde_json::json;
use std::collections::BTreeMap;

/// The operator's namespace on every remote node (where the join Secret goes).
pub const OPERATOR_NAMESPACE: &str = "submariner-operator";
/// The Secret mip writes on each remote node.
pub const JOIN_SECRET: &str = "submariner-broker-join";

/// A remote node: a remote cluster of a hybrid federation, with the first federation that names
/// it and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNode {
    /// The cluster's inventory name.
    pub cluster: String,
    /// The (first) hybrid federation whose `remoteClusters` name it.
    pub federation: String,
    /// Where it names it.
    pub at: Location,
}

/// The remote nodes Submariner joins (each cluster once, by name), when the `submariner`
/// common app is on.
pub fn remote_nodes(inv: &Inventory) -> Vec<RemoteNode> {
    if inv.common_app(CommonAppKind::Submariner).is_none() {
        return Vec::new();
    }
    let mut seen = BTreeMap::new();
    for f in inv.federations.iter().filter(|f| f.kind.value == FederationKind::Hybrid) {
        for r in &f.remote_clusters {
            seen.entry(r.value.clone()).or_insert_with(|| (r.at.clone(), f.name.value.clone()));
        }
    }
    seen.into_iter().map(|(cluster, (at, federation))| RemoteNode { cluster, federation, at }).collect()
}

/// The main cluster's Secrets a join carries from (`joinSecrets` of the app definition that
/// joins remote nodes; the built-in `submariner` names the ones mip-infra's broker hook reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSources {
    /// The broker's token Secret (keys `token`, `ca.crt`).
    pub broker: ObjectRef,
    /// The IPsec pre-shared key Secret (key `psk`).
    pub psk: ObjectRef,
}

impl JoinSources {
    /// From the `submariner` definition's `joinSecrets` (role missing: the built-in default).
    pub fn of(inv: &Inventory) -> JoinSources {
        let def = inv.app_def("submariner");
        let get = |role: &str, default: (&str, &str)| {
            let (ns, name) = def
                .and_then(|d| d.join_secrets.get(role))
                .map_or(default, |(ns, name)| (ns.as_str(), name.as_str()));
            ObjectRef::new("v1", "Secret", Some(ns), name)
        };
        JoinSources {
            broker: get(
                "broker",
                ("submariner-k8s-broker", "submariner-broker-submariner-k8s-broker-client-token"),
            ),
            psk: get("psk", ("submariner-k8s-broker", "submariner-ipsec-psk")),
        }
    }
}

/// The join Secret of a remote node (in [`OPERATOR_NAMESPACE`] there, which the resolver
/// creates first): its keys carried from the main cluster's `sources` at apply time.
pub fn join_secret(node: &RemoteNode, sources: &JoinSources) -> DesiredObject {
    let (broker, psk) = (&sources.broker, &sources.psk);
    let carried = |secret: &ObjectRef, key: &str, encoded: bool| SensitiveSource::SecretKey {
        secret: secret.clone(),
        key: key.to_owned(),
        encoded,
    };
    let RemoteNode { cluster, at, .. } = node;
    let on = Some(cluster.as_str());
    let labels = json!({ MANAGED_BY_LABEL: MANAGED_BY_VALUE });
    let sensitive = BTreeMap::from([
        ("broker-token".to_owned(), carried(broker, "token", false)),
        ("broker-ca".to_owned(), carried(broker, "ca.crt", true)),
        ("ipsec-psk".to_owned(), carried(psk, "psk", false)),
    ]);
    let mut data: serde_json::Map<String, serde_json::Value> =
        sensitive.keys().map(|k| (k.clone(), json!(""))).collect();
    data.insert("broker-namespace".into(), json!(broker.namespace.clone().unwrap_or_default()));
    data.insert("cluster-id".into(), json!(cluster));
    DesiredObject {
        addr: ObjectRef::new("v1", "Secret", Some(OPERATOR_NAMESPACE), JOIN_SECRET).on_cluster(on).into(),
        owner: Owner::Mip,
        step: Step::RemoteNodes,
        manifest: json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": JOIN_SECRET, "namespace": OPERATOR_NAMESPACE, "labels": labels },
            "type": "Opaque",
            "stringData": data,
        })
        .into(),
        model: None,
        sensitive: sensitive.into(),
        reason: format!(
            "Submariner's broker token, CA and IPsec PSK carried from the main cluster to remote node `{cluster}`"
        ),
        origin: Some(at.clone()),
        generated_by: None,
    }
}
