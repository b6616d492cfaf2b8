//! The cluster seam: what the engine needs from a Kubernetes API server, declared here and
//! implemented by `mip-kube` (the only crate that names `kube`). Objects travel as JSON.

use crate::ObjectRef;
use serde_json::Value;
use std::future::Future;

/// A kind, as discovery knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KindRef {
    /// API group, empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

impl KindRef {
    /// The kind of an address.
    pub fn of(addr: &ObjectRef) -> Self {
        KindRef { group: addr.group.clone(), version: addr.version.clone(), kind: addr.kind.clone() }
    }
}

/// What can go wrong talking to the API server. Messages name the object and never carry a
/// request body (which could hold secret values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The API server could not be reached within the timeout.
    #[error("API server `{server}` is unreachable: {reason}")]
    Unreachable {
        /// Server URL.
        server: String,
        /// Why (connection refused, timeout, TLS).
        reason: String,
    },
    /// Authenticated but not allowed.
    #[error("forbidden: cannot `{verb}` `{resource}`{}: {message}", .namespace.as_ref().map(|n| format!(" in namespace `{n}`")).unwrap_or_default())]
    Forbidden {
        /// The verb (get, list, patch, delete, create).
        verb: String,
        /// `group/resource`.
        resource: String,
        /// Namespace, if any.
        namespace: Option<String>,
        /// The server's message.
        message: String,
    },
    /// Server-side apply conflict with other field managers.
    #[error("apply of `{addr}` conflicts with field manager(s) {}: {message}", .managers.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "))]
    Conflict {
        /// The object.
        addr: ObjectRef,
        /// Managers that own the conflicting fields.
        managers: Vec<String>,
        /// The server's message.
        message: String,
    },
    /// The server rejected the object (validation).
    #[error("the API server rejected `{addr}`: {message}")]
    Invalid {
        /// The object.
        addr: ObjectRef,
        /// The server's message.
        message: String,
    },
    /// The kind is not served (CRD missing).
    #[error("the API server does not serve `{kind}` in `{api_version}`")]
    UnknownKind {
        /// apiVersion.
        api_version: String,
        /// Kind.
        kind: String,
    },
    /// Anything else.
    #[error("{operation} failed: {message}")]
    Other {
        /// What was attempted.
        operation: String,
        /// Why.
        message: String,
    },
}

/// A Kubernetes API server, as the engine uses it.
///
/// Reads are one LIST per kind (never one GET per object), so the request count of a plan
/// grows with the number of kinds, not of objects.
pub trait Cluster: Send + Sync {
    /// The API server URL in use.
    fn server_url(&self) -> String;

    /// Whether a kind is namespaced (from discovery).
    fn is_namespaced(&self, kind: &KindRef) -> impl Future<Output = Result<bool, ClusterError>> + Send;

    /// Every object of a kind, cluster-wide or in one namespace, optionally filtered by a
    /// label selector. Objects are full JSON (metadata, managedFields, status).
    fn list(
        &self,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Value>, ClusterError>> + Send;

    /// Whether this handle reaches objects on `cluster` (`None`: the management cluster, which
    /// every handle reaches; a handle over several clusters reaches those it is connected to).
    fn reaches(&self, cluster: Option<&str>) -> bool {
        cluster.is_none()
    }

    /// How this handle reaches remote cluster `cluster`: the kubeconfig context and the API
    /// server, kept in the state beside the objects written there (`None`: not a remote
    /// cluster of this handle).
    fn reached_via(&self, cluster: &str) -> Option<(String, String)> {
        let _ = cluster;
        None
    }

    /// [`list`](Cluster::list) on one of the clusters this handle reaches (the objects'
    /// addresses then carry that cluster). A handle that does not reach `cluster` lists nothing.
    fn list_in(
        &self,
        cluster: Option<&str>,
        kind: &KindRef,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Value>, ClusterError>> + Send {
        let here = cluster.is_none();
        async move { if here { self.list(kind, namespace, label_selector).await } else { Ok(Vec::new()) } }
    }

    /// One object, `None` when absent.
    fn get(&self, addr: &ObjectRef) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send;

    /// Server-side apply with field manager `mip`. Without `force`, a field owned by another
    /// manager with a different value is a [`ClusterError::Conflict`]; `dry_run` asks the server
    /// to compute the result without persisting it. Returns the resulting object: whole for a
    /// dry run, only its `metadata` (uid, resourceVersion, managedFields, …) for a real apply,
    /// so a Secret's values never come back.
    fn apply(
        &self,
        addr: &ObjectRef,
        manifest: &Value,
        opts: ApplyOptions,
    ) -> impl Future<Output = Result<Value, ClusterError>> + Send;

    /// Sets one annotation with a JSON merge patch under field manager `manager` (not `mip`:
    /// an annotation a controller removes again, such as Argo CD's
    /// `argocd.argoproj.io/refresh`, must never count as a field mip owns). `false` when the
    /// object does not exist.
    fn annotate(
        &self,
        addr: &ObjectRef,
        manager: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<bool, ClusterError>> + Send;

    /// Deletes an object (foreground propagation). `false` when it was already gone.
    fn delete(&self, addr: &ObjectRef) -> impl Future<Output = Result<bool, ClusterError>> + Send;

    /// Number of API requests made so far (for benchmarks and the zero-write guarantee).
    fn requests(&self) -> RequestCounts;
}

/// How to apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// `dryRun=All`: the server computes the result and persists nothing.
    pub dry_run: bool,
    /// `force=true`: take ownership of conflicting fields. Only for objects mip adopts from a
    /// known creator (the `default` AppProject, created by argocd-server), never by default.
    pub force: bool,
}

/// API request counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// GET/LIST requests (discovery included).
    pub reads: u64,
    /// PATCH/POST/PUT/DELETE requests, dry runs included.
    pub writes: u64,
    /// Of the writes, dry runs.
    pub dry_runs: u64,
}
