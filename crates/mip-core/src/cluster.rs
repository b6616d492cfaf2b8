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
    /// A deleted object is still there when the wait for it ends (the wait timed out, or a
    /// signal stopped it): what holds it, who should have released it, and what to do.
    #[error("{}", still_there(addr, finalizers, *interrupted, waited_s))]
    StillThere {
        /// The object.
        addr: ObjectRef,
        /// Its finalizers at the last look (`metadata.finalizers`, and a namespace's
        /// `spec.finalizers`).
        finalizers: Vec<String>,
        /// Whether a signal ended the wait (else its time ran out).
        interrupted: bool,
        /// How long it was waited for, in seconds.
        waited_s: u64,
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

/// Who removes a finalizer once its work is done, and what an operator does when it does not:
/// `(who removes it and when, hint)` for the finalizers mip's objects carry, `None` for any other.
pub fn finalizer_owner(finalizer: &str, addr: &ObjectRef) -> Option<(&'static str, String)> {
    let ns = addr.namespace.as_deref().unwrap_or("default");
    let resource = format!("{}.{}", addr.kind.to_lowercase(), addr.group);
    let remove = format!(
        "kubectl -n {ns} patch {resource} {} --type merge -p '{{\"metadata\":{{\"finalizers\":null}}}}'",
        addr.name
    );
    if finalizer.starts_with("resources-finalizer.argocd.argoproj.io")
        || finalizer.starts_with("post-delete-finalizer.argocd.argoproj.io")
    {
        return Some((
            "Argo CD's application controller removes it once it has deleted what the Application deployed",
            format!(
                "check that the controller runs (`kubectl -n {ns} get pods -l app.kubernetes.io/name=argocd-application-controller`) and what the Application reports (`kubectl -n {ns} get {resource} {} -o yaml`); to leave what it deployed in place instead, remove the finalizer: `{remove}`",
                addr.name
            ),
        ));
    }
    match finalizer {
        "kubernetes" => Some((
            "the namespace controller (kube-controller-manager) removes it once everything in the namespace is deleted",
            format!(
                "list what is left in it (`kubectl api-resources --verbs=list --namespaced -o name | xargs -n 1 kubectl get -n {} --ignore-not-found`) and what holds those",
                addr.name
            ),
        )),
        "foregroundDeletion" => Some((
            "the garbage collector (kube-controller-manager) removes it once the dependents are deleted",
            "check that kube-controller-manager runs and which dependents remain".to_owned(),
        )),
        "customresourcecleanup.apiextensions.k8s.io" => Some((
            "the API server removes it once every custom resource of the kind is deleted",
            format!("list those resources (`kubectl get {} -A`) and what holds them", addr.name),
        )),
        "kubernetes.io/pvc-protection" | "kubernetes.io/pv-protection" => Some((
            "the volume protection controller removes it once no pod uses the volume",
            "find and delete the pods that mount it".to_owned(),
        )),
        _ => None,
    }
}

/// The message of [`ClusterError::StillThere`]: one line, with the owner and a hint for each
/// finalizer mip knows.
fn still_there(addr: &ObjectRef, finalizers: &[String], interrupted: bool, waited_s: &u64) -> String {
    let when = if interrupted {
        format!("when interrupted ({waited_s} s after its deletion was asked)")
    } else {
        format!("after {waited_s} s")
    };
    let mut text = format!("`{addr}` is still there {when}");
    if finalizers.is_empty() {
        text.push_str(" with no finalizer left (its deletion is in progress; the next run deletes it again)");
        return text;
    }
    let names: Vec<String> = finalizers.iter().map(|f| format!("`{f}`")).collect();
    text.push_str(&format!(", held by finalizer {}", names.join(", ")));
    let known: Vec<(&str, String)> = finalizers.iter().filter_map(|f| finalizer_owner(f, addr)).collect();
    match known.as_slice() {
        [] => text.push_str(
            " (hint: find the controller that owns it; it removes the finalizer when its work is done)",
        ),
        [(owner, hint), ..] => text.push_str(&format!(": {owner} (hint: {hint})")),
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    fn still(addr: &str, finalizers: &[&str], interrupted: bool) -> String {
        ClusterError::StillThere {
            addr: addr.parse().expect("address"),
            finalizers: finalizers.iter().map(|f| (*f).to_owned()).collect(),
            interrupted,
            waited_s: 3,
        }
        .to_string()
    }

    #[test]
    fn an_object_still_there_names_its_finalizer_who_removes_it_and_the_fix_on_one_line() {
        let app = still(
            "argoproj.io/v1alpha1/Application/argocd/root",
            &["resources-finalizer.argocd.argoproj.io"],
            false,
        );
        assert_eq!(app.lines().count(), 1, "{app}");
        assert!(app.starts_with("`argoproj.io/v1alpha1/Application/argocd/root` is still there after 3 s, held by finalizer `resources-finalizer.argocd.argoproj.io`: Argo CD's application controller removes it"), "{app}");
        assert!(app.contains("kubectl -n argocd patch application.argoproj.io root --type merge"), "{app}");
        let ns = still("v1/Namespace/fed", &["kubernetes"], true);
        assert!(ns.contains("still there when interrupted (3 s after its deletion was asked)"), "{ns}");
        assert!(ns.contains("the namespace controller"), "{ns}");
        let other = still("v1/ConfigMap/ns/x", &["example.com/mine"], false);
        assert!(other.contains("hint: find the controller that owns it"), "{other}");
        let none = still("v1/ConfigMap/ns/x", &[], false);
        assert!(none.contains("no finalizer left"), "{none}");
    }
}
