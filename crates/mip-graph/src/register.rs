//! Remote clusters for Argo CD: the cluster Secret in Argo CD's namespace, and for a cluster mip
//! registers, what `argocd cluster add` creates on that cluster, declaratively. Pure.
//!
//! Registration writes, on the remote cluster, a ServiceAccount for Argo CD in `kube-system`, a
//! ClusterRole with every right, and a `kubernetes.io/service-account-token` Secret that the
//! cluster's token controller fills with a long-lived token and the cluster's CA. The role is
//! bound only in the namespaces mip itself creates on that cluster (RoleBindings: a ClusterRole
//! bound in a namespace grants nothing outside it), and the cluster Secret tells Argo CD to
//! work in those namespaces only (`namespaces`, `clusterResources: "false"`): least privilege
//! by default. `register: {clusterAdmin: true}` binds it cluster-wide instead, as
//! `argocd cluster add` does without `--namespace`.
//!
//! The token never passes through a plan: the cluster Secret's `config` names the token Secret
//! as its source ([`SensitiveSource::ServiceAccountToken`]), and the engine reads it at apply
//! time, after the token Secret is written and filled (the DAG orders it first).

use crate::model::{DesiredObject, Step};
use mip_core::{Location, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ObjectRef, Owner, SensitiveSource};
use mip_inventory::{Cluster, ClusterCredentials, Inventory, Registration};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The name of Argo CD's ServiceAccount, ClusterRole and bindings on a registered cluster.
pub const MANAGER: &str = "mip-argocd-manager";
/// The namespace of the ServiceAccount and its token Secret on a registered cluster.
pub const MANAGER_NAMESPACE: &str = "kube-system";
/// The name of the token Secret on a registered cluster.
pub const TOKEN_SECRET: &str = "mip-argocd-manager-token";
const RBAC: &str = "rbac.authorization.k8s.io/v1";

/// The Argo CD cluster Secret of each remote cluster, and the registration objects of the
/// clusters mip registers. `namespaces` holds, per cluster name, the namespaces mip creates
/// there: those a least-privilege registration is bound in.
pub fn cluster_objects(
    inv: &Inventory,
    argocd_ns: &str,
    namespaces: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<DesiredObject> {
    let mut out = Vec::new();
    let none = BTreeSet::new();
    for c in inv.clusters.iter().filter(|c| c.name.value != mip_inventory::IN_CLUSTER) {
        let nss = namespaces.get(&c.name.value).unwrap_or(&none);
        let token = c.registration().map(|r| registration(c, r, nss, &mut out));
        out.push(cluster_secret(c, argocd_ns, token, nss));
    }
    out
}

fn object(addr: ObjectRef, manifest: Value, reason: String, at: &Location) -> DesiredObject {
    DesiredObject {
        addr: addr.into(),
        owner: Owner::Mip,
        step: Step::Bootstrap,
        manifest: manifest.into(),
        model: None,
        sensitive: crate::model::no_secrets(),
        reason,
        origin: Some(at.clone()),
        generated_by: None,
    }
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut m = json!({ "name": name, "labels": { MANAGED_BY_LABEL: MANAGED_BY_VALUE } });
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

/// The registration objects on cluster `c`; returns the address of its token Secret.
fn registration(
    c: &Cluster,
    r: &Registration,
    namespaces: &BTreeSet<String>,
    out: &mut Vec<DesiredObject>,
) -> ObjectRef {
    let on = Some(c.name.value.as_str());
    let name = &c.name.value;
    let at = &r.at;
    let subject = json!([{ "kind": "ServiceAccount", "name": MANAGER, "namespace": MANAGER_NAMESPACE }]);
    let role_ref = json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": MANAGER });
    out.push(object(
        ObjectRef::new("v1", "ServiceAccount", Some(MANAGER_NAMESPACE), MANAGER).on_cluster(on),
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(MANAGER, Some(MANAGER_NAMESPACE)) }),
        format!("Argo CD's ServiceAccount on cluster `{name}` (declarative `argocd cluster add`)"),
        at,
    ));
    out.push(object(
        ObjectRef::new(RBAC, "ClusterRole", None, MANAGER).on_cluster(on),
        json!({
            "apiVersion": RBAC,
            "kind": "ClusterRole",
            "metadata": metadata(MANAGER, None),
            "rules": [
                { "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] },
                { "nonResourceURLs": ["*"], "verbs": ["*"] },
            ],
        }),
        format!("what Argo CD may do on cluster `{name}`, where it is bound"),
        at,
    ));
    if r.cluster_admin {
        out.push(object(
            ObjectRef::new(RBAC, "ClusterRoleBinding", None, MANAGER).on_cluster(on),
            json!({
                "apiVersion": RBAC,
                "kind": "ClusterRoleBinding",
                "metadata": metadata(MANAGER, None),
                "roleRef": role_ref,
                "subjects": subject,
            }),
            format!("Argo CD manages all of cluster `{name}` (`register.clusterAdmin`)"),
            at,
        ));
    } else {
        for ns in namespaces {
            out.push(object(
                ObjectRef::new(RBAC, "RoleBinding", Some(ns), MANAGER).on_cluster(on),
                json!({
                    "apiVersion": RBAC,
                    "kind": "RoleBinding",
                    "metadata": metadata(MANAGER, Some(ns)),
                    "roleRef": role_ref,
                    "subjects": subject,
                }),
                format!("Argo CD manages namespace `{ns}` of cluster `{name}` (and nothing else there)"),
                at,
            ));
        }
    }
    let token = ObjectRef::new("v1", "Secret", Some(MANAGER_NAMESPACE), TOKEN_SECRET).on_cluster(on);
    let mut meta = metadata(TOKEN_SECRET, Some(MANAGER_NAMESPACE));
    meta["annotations"] = json!({ "kubernetes.io/service-account.name": MANAGER });
    out.push(object(
        token.clone(),
        json!({ "apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "kubernetes.io/service-account-token" }),
        format!("the long-lived token of Argo CD's ServiceAccount on cluster `{name}`, filled by its token controller"),
        at,
    ));
    token
}

/// Argo CD's cluster Secret for `c`: its `config` from the registration's token Secret, or from
/// the token or client certificate the inventory gives.
fn cluster_secret(
    c: &Cluster,
    argocd_ns: &str,
    token: Option<ObjectRef>,
    namespaces: &BTreeSet<String>,
) -> DesiredObject {
    let name = format!("mip-cluster-{}", c.name.value);
    let ca_file = c.ca_file.as_ref().map(|f| f.value.clone());
    let source = match (&c.credentials, token) {
        (_, Some(secret)) => Some(SensitiveSource::ServiceAccountToken { secret }),
        (ClusterCredentials::BearerToken(t), None) => Some(SensitiveSource::ClusterConfig {
            token: Some(Box::new(t.source.clone())),
            client_certificate: None,
            client_key: None,
            ca_file,
        }),
        (ClusterCredentials::ClientCertificate { certificate, key }, None) => {
            Some(SensitiveSource::ClusterConfig {
                token: None,
                client_certificate: Some(Box::new(certificate.source.clone())),
                client_key: Some(Box::new(key.source.clone())),
                ca_file,
            })
        }
        // Refused by validation; nothing to carry.
        _ => None,
    };
    let mut data = json!({ "name": c.name.value, "server": c.server.value, "config": "" });
    if c.registration().is_some_and(|r| !r.cluster_admin) {
        // Argo CD works only in these namespaces and leaves cluster-scoped kinds alone: what
        // the RoleBindings above let it do.
        data["namespaces"] = json!(namespaces.iter().cloned().collect::<Vec<_>>().join(","));
        data["clusterResources"] = json!("false");
    }
    let mut meta = metadata(&name, Some(argocd_ns));
    meta["labels"]["argocd.argoproj.io/secret-type"] = json!("cluster");
    let manifest = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "stringData": data });
    let how = if c.registration().is_some() { "registered by mip" } else { "credentials from the inventory" };
    DesiredObject {
        sensitive: source
            .map_or_else(crate::model::no_secrets, |s| BTreeMap::from([("config".to_owned(), s)]).into()),
        ..object(
            ObjectRef::new("v1", "Secret", Some(argocd_ns), &name),
            manifest,
            format!("cluster credentials for `{}` ({how}; declarative `argocd cluster add`)", c.name.value),
            &c.name.at,
        )
    }
}
