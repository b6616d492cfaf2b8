//! The cluster read: one LIST per Argo CD kind, the namespaces, and the required Secrets
//! reduced to their key names.

use super::{ClusterSecret, Expectations, LiveObjects};
use crate::Error;
use crate::live::read_live;
use mip_core::cluster::{Cluster, ClusterError, KindRef};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn argo_kind(kind: &str) -> KindRef {
    KindRef { group: "argoproj.io".into(), version: "v1alpha1".into(), kind: kind.into() }
}

async fn list_or_empty<C: Cluster>(cluster: &C, kind: &str, ns: &str) -> Result<Vec<Value>, Error> {
    match cluster.list(&argo_kind(kind), Some(ns), None).await {
        Ok(items) => Ok(items),
        // Argo CD's CRDs are not installed: nothing of that kind exists.
        Err(ClusterError::UnknownKind { .. }) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The key names of a Secret object (`data` and `stringData`).
fn key_names(secret: &Value) -> BTreeSet<String> {
    ["data", "stringData"]
        .iter()
        .filter_map(|k| secret.get(*k).and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect()
}

/// Reads what [`diagnose`] needs: one LIST per Argo CD kind in the Argo CD namespace, one LIST
/// of namespaces, and one GET per required Secret (reduced to its key names at once).
///
/// # Errors
/// Cluster errors (a missing Argo CD CRD is not one: it means no objects of that kind).
pub async fn read<C: Cluster>(cluster: &C, exp: &Expectations) -> Result<LiveObjects, Error> {
    let ns = exp.argocd_namespace.as_str();
    let projects = list_or_empty(cluster, "AppProject", ns).await?;
    let applications = list_or_empty(cluster, "Application", ns).await?;
    let application_sets = list_or_empty(cluster, "ApplicationSet", ns).await?;
    let namespaces = read_live(cluster, &exp.namespaces).await?.into_values().collect();
    let mut secret_keys = BTreeMap::new();
    for s in &exp.secrets {
        if let Some(obj) = cluster.get(&s.addr).await? {
            secret_keys.insert(s.addr.clone(), key_names(&obj));
        }
    }
    let secrets = KindRef { group: String::new(), version: "v1".into(), kind: "Secret".into() };
    let clusters = cluster
        .list(&secrets, Some(ns), Some("argocd.argoproj.io/secret-type=cluster"))
        .await?
        .iter()
        .map(|s| {
            let name = s.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
            (name, cluster_secret(s))
        })
        .collect();
    Ok(LiveObjects { projects, applications, application_sets, secret_keys, namespaces, clusters })
}

/// A cluster Secret reduced at once to its server and whether its `config` carries credentials
/// (the decoded values never leave this function).
pub(super) fn cluster_secret(secret: &Value) -> ClusterSecret {
    let field = |k: &str| {
        secret
            .pointer(&format!("/data/{k}"))
            .and_then(Value::as_str)
            .and_then(mip_plan::base64_decode)
            .or_else(|| {
                secret.pointer(&format!("/stringData/{k}")).and_then(Value::as_str).map(str::to_owned)
            })
    };
    let config: Value = field("config").and_then(|c| serde_json::from_str(&c).ok()).unwrap_or(Value::Null);
    let present = |p: &str| config.pointer(p).is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
    let has_credentials =
        ["/bearerToken", "/tlsClientConfig/certData", "/username", "/execProviderConfig", "/awsAuthConfig"]
            .iter()
            .any(|p| present(p));
    ClusterSecret { server: field("server").unwrap_or_default(), has_credentials }
}
