//! Several clusters as one: the management cluster (where Argo CD runs and addresses carry no
//! cluster) and the remote clusters mip reaches through their own kubeconfig contexts
//! (addresses `<cluster>:group/version/Kind/…`). Every request goes to the cluster its address
//! names, so the stages above read, plan, apply, drift and destroy across clusters unchanged,
//! one LIST per kind per cluster.

use mip_core::ObjectRef;
use mip_core::cluster::{ApplyOptions, Cluster, ClusterError, KindRef, RequestCounts};
use serde_json::Value;
use std::collections::BTreeMap;

/// The management cluster and the remote clusters mip is connected to, by inventory name.
pub struct Clusters<C> {
    main: C,
    remote: BTreeMap<String, C>,
    /// The kubeconfig context each remote cluster was reached through.
    contexts: BTreeMap<String, String>,
}

impl<C: Cluster> Clusters<C> {
    /// Only the management cluster.
    pub fn single(main: C) -> Clusters<C> {
        Clusters { main, remote: BTreeMap::new(), contexts: BTreeMap::new() }
    }

    /// The management cluster.
    pub fn main(&self) -> &C {
        &self.main
    }

    /// Adds a remote cluster under its inventory name, reached through kubeconfig `context`.
    pub fn add(&mut self, name: String, cluster: C, context: String) {
        self.contexts.insert(name.clone(), context);
        self.remote.insert(name, cluster);
    }

    /// The names of the remote clusters.
    pub fn remote_names(&self) -> impl Iterator<Item = &str> {
        self.remote.keys().map(String::as_str)
    }

    fn of(&self, addr: &ObjectRef) -> Result<&C, ClusterError> {
        match &addr.cluster {
            None => Ok(&self.main),
            Some(name) => self.remote.get(name).ok_or_else(|| ClusterError::Other {
                operation: format!("reach cluster `{name}` for `{addr}`"),
                message: format!(
                    "mip has no connection to cluster `{name}` (set `clusters[].context` in the inventory)"
                ),
            }),
        }
    }
}

impl<C: Cluster> Cluster for Clusters<C> {
    fn server_url(&self) -> String {
        self.main.server_url()
    }

    async fn is_namespaced(&self, kind: &KindRef) -> Result<bool, ClusterError> {
        self.main.is_namespaced(kind).await
    }

    async fn list(
        &self,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.main.list(kind, namespace, label_selector).await
    }

    fn reaches(&self, cluster: Option<&str>) -> bool {
        cluster.is_none_or(|c| self.remote.contains_key(c))
    }

    fn reached_via(&self, cluster: &str) -> Option<(String, String)> {
        Some((self.contexts.get(cluster)?.clone(), self.remote.get(cluster)?.server_url()))
    }

    async fn list_in(
        &self,
        cluster: Option<&str>,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        match cluster {
            None => self.main.list(kind, namespace, label_selector).await,
            Some(name) => match self.remote.get(name) {
                Some(c) => c.list(kind, namespace, label_selector).await,
                None => Ok(Vec::new()),
            },
        }
    }

    async fn get(&self, addr: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        self.of(addr)?.get(&local(addr)).await
    }

    async fn apply(
        &self,
        addr: &ObjectRef,
        manifest: &Value,
        opts: ApplyOptions,
    ) -> Result<Value, ClusterError> {
        self.of(addr)?.apply(&local(addr), manifest, opts).await
    }

    async fn annotate(
        &self,
        addr: &ObjectRef,
        manager: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, ClusterError> {
        self.of(addr)?.annotate(&local(addr), manager, key, value).await
    }

    async fn delete(&self, addr: &ObjectRef) -> Result<bool, ClusterError> {
        self.of(addr)?.delete(&local(addr)).await
    }

    fn requests(&self) -> RequestCounts {
        self.remote.values().map(Cluster::requests).fold(self.main.requests(), |a, b| RequestCounts {
            reads: a.reads + b.reads,
            writes: a.writes + b.writes,
            dry_runs: a.dry_runs + b.dry_runs,
        })
    }
}

/// How `cluster` reaches the remote cluster of `addr`, for the state entry of an object written
/// there (`None` for the management cluster).
pub fn via_of<C: Cluster>(cluster: &C, addr: &ObjectRef) -> Option<mip_state::Via> {
    let (context, server) = cluster.reached_via(addr.cluster.as_deref()?)?;
    Some(mip_state::Via { context, server })
}

/// The address as the cluster it lives on knows it (without the cluster name).
fn local(addr: &ObjectRef) -> ObjectRef {
    ObjectRef { cluster: None, ..addr.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeCluster;
    use serde_json::json;

    #[tokio::test]
    async fn requests_go_to_the_cluster_the_address_names() {
        let mut clusters = Clusters::single(FakeCluster::new());
        clusters.add("hospital".into(), FakeCluster::new(), "hospital-ctx".into());
        let remote =
            ObjectRef { cluster: Some("hospital".into()), ..ObjectRef::new("v1", "Namespace", None, "fed") };
        let manifest = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fed"}});
        clusters.apply(&remote, &manifest, ApplyOptions::default()).await.expect("applied remotely");
        assert!(clusters.get(&remote).await.expect("get").is_some());
        let here = ObjectRef::new("v1", "Namespace", None, "fed");
        assert!(clusters.get(&here).await.expect("get").is_none(), "written to the management cluster");
        let kind = KindRef::of(&here);
        assert_eq!(clusters.list_in(Some("hospital"), &kind, None, None).await.expect("list").len(), 1);
        assert!(clusters.reaches(Some("hospital")) && !clusters.reaches(Some("elsewhere")));
        let (context, _) = clusters.reached_via("hospital").expect("remote");
        assert_eq!(context, "hospital-ctx");
        assert!(clusters.reached_via("elsewhere").is_none());
        let unknown = ObjectRef { cluster: Some("elsewhere".into()), ..here };
        let e = clusters.get(&unknown).await.expect_err("no connection");
        assert!(e.to_string().contains("clusters[].context"), "{e}");
        assert_eq!(clusters.requests().writes, 1);
    }
}
