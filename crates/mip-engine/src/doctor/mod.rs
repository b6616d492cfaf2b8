//! `mip doctor`: reads the cluster and names each known Argo CD failure mode with its fix.
//!
//! The detection is a pure function, [`diagnose`], over live objects ([`LiveObjects`]) and what
//! the inventory requires ([`Expectations`]), so every failure mode is unit-tested without a
//! cluster; [`read`] fetches the objects with one LIST per Argo CD kind in the Argo CD namespace
//! (plus the required Secrets one by one, keeping only their key *names*: no value leaves this
//! module, or is even kept in it).
//!
//! Failure modes (`../shared/research/argocd-facts.md` §5-§6), each a [`Code`]:
//! - `missing-project`: an Application (or an ApplicationSet's template) references a project
//!   that does not exist; Argo CD marks it `InvalidSpecError` and never syncs it.
//! - `repo-not-permitted` / `destination-not-permitted`: the project does not permit a source
//!   repository or the destination (decided by [`mip_graph::permit`], as Argo CD decides it).
//! - `missing-secret` / `missing-secret-keys`: a Secret the inventory's apps read is absent or
//!   lacks keys; the pods wait in `CreateContainerConfigError`.
//! - `sync-failed`: the last sync failed on the current revision; automated sync does not retry
//!   it (`Skipping auto-sync: failed previous sync attempt`), even with self-heal.
//! - `stuck-deletion`: an object is being deleted but finalizers hold it.
//! - `appset-error`: an ApplicationSet reports `ErrorOccurred=True`.
//! - `default-project-loosened`: the `default` project permits sources or destinations again.
//! - `argo-condition`: Argo CD reports an error condition on an Application itself.
//!
//! The cluster read lives in `read`, one check per failure mode in `checks`.

mod checks;
mod read;
#[cfg(test)]
mod tests;

pub use read::read;

use crate::Error;
use crate::load::Loaded;
use checks::{
    addr_of, check_application, check_application_conditions, check_application_set, check_application_state,
    check_default_project, check_deletion, check_secret, name_of,
};
use mip_core::ObjectRef;
use mip_core::cluster::Cluster;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Version of the JSON report.
pub const FORMAT_VERSION: &str = "1";

/// Deletions held longer than this are errors, shorter ones warnings (a finalizer at work).
pub const STUCK_AFTER_SECS: u64 = 120;

/// The Secrets whose absence stalls the MIP apps (names only are ever checked).
pub const WATCHED_SECRETS: [&str; 3] = ["keycloak-credentials", "mip-secret", "datacatalog-secrets"];

const ARGO_API: &str = "argoproj.io/v1alpha1";

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something is broken and will not heal by itself.
    Error,
    /// Something is wrong or may be transient.
    Warning,
}

impl Severity {
    /// Lowercase name, as in the text and JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// The failure modes, each with a stable kebab-case name (its JSON form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// An Application or an ApplicationSet's template references a project that does not exist.
    MissingProject,
    /// The project does not permit a source repository.
    RepoNotPermitted,
    /// The project does not permit the destination.
    DestinationNotPermitted,
    /// A Secret the apps read does not exist.
    MissingSecret,
    /// A Secret the apps read lacks keys.
    MissingSecretKeys,
    /// The last sync failed on the current revision.
    SyncFailed,
    /// A deletion is held by finalizers.
    StuckDeletion,
    /// An ApplicationSet reports `ErrorOccurred=True`.
    AppsetError,
    /// The `default` project is no longer locked down.
    DefaultProjectLoosened,
    /// Argo CD reports an error condition on an Application.
    ArgoCondition,
    /// An Application is OutOfSync at the revision its spec tracks, and no sync is failing.
    OutOfSync,
    /// An Argo CD cluster Secret gives no credentials: Argo CD cannot connect to that cluster.
    ClusterWithoutCredentials,
    /// An Application is Degraded.
    Degraded,
}

impl Code {
    /// The kebab-case name, as in the text and JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingProject => "missing-project",
            Code::RepoNotPermitted => "repo-not-permitted",
            Code::DestinationNotPermitted => "destination-not-permitted",
            Code::MissingSecret => "missing-secret",
            Code::MissingSecretKeys => "missing-secret-keys",
            Code::SyncFailed => "sync-failed",
            Code::StuckDeletion => "stuck-deletion",
            Code::AppsetError => "appset-error",
            Code::DefaultProjectLoosened => "default-project-loosened",
            Code::ArgoCondition => "argo-condition",
            Code::OutOfSync => "out-of-sync",
            Code::ClusterWithoutCredentials => "cluster-without-credentials",
            Code::Degraded => "degraded",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One failure mode found on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// Which failure mode.
    pub code: Code,
    /// The object.
    pub address: ObjectRef,
    /// What is wrong.
    pub what: String,
    /// How to fix it.
    pub fix: String,
}

/// The whole report (`mip doctor --output json`). Fields are added, never renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// [`FORMAT_VERSION`].
    pub format_version: &'static str,
    /// The Argo CD namespace examined.
    pub argocd_namespace: String,
    /// Whether nothing was found.
    pub healthy: bool,
    /// How many objects of each kind were examined.
    pub checked: BTreeMap<String, usize>,
    /// The findings, sorted by severity, address and code.
    pub findings: Vec<Finding>,
}

/// A Secret the inventory's apps need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredSecret {
    /// Its address.
    pub addr: ObjectRef,
    /// The keys the apps read.
    pub keys: BTreeSet<String>,
}

/// What the inventory requires of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expectations {
    /// Where Argo CD's objects live.
    pub argocd_namespace: String,
    /// Whether the `default` project must be locked down (`defaultProject: lock-down`).
    pub lock_down_default: bool,
    /// Secrets on the cluster mip talks to (Secrets on remote clusters are not checked).
    pub secrets: Vec<RequiredSecret>,
    /// Namespaces mip creates (checked for stuck deletions).
    pub namespaces: BTreeSet<ObjectRef>,
}

/// The live objects the diagnosis looks at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveObjects {
    /// AppProjects in the Argo CD namespace.
    pub projects: Vec<Value>,
    /// Applications in the Argo CD namespace.
    pub applications: Vec<Value>,
    /// ApplicationSets in the Argo CD namespace.
    pub application_sets: Vec<Value>,
    /// The key names of each required Secret that exists (never a value).
    pub secret_keys: BTreeMap<ObjectRef, BTreeSet<String>>,
    /// The namespaces of [`Expectations::namespaces`] that exist.
    pub namespaces: Vec<Value>,
    /// Argo CD's cluster Secrets (`secret-type: cluster`) by name, each reduced to its server
    /// and whether its `config` carries credentials (never a value).
    pub clusters: BTreeMap<String, ClusterSecret>,
}

/// What the diagnosis keeps of an Argo CD cluster Secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterSecret {
    /// Its `server`.
    pub server: String,
    /// Whether its `config` names a bearer token, a client certificate, basic auth or an exec
    /// or cloud provider.
    pub has_credentials: bool,
}

/// What the loaded inventory requires.
pub fn expectations(loaded: &Loaded) -> Expectations {
    let secrets = loaded
        .desired
        .mip_owned()
        .filter(|o| o.addr.cluster.is_none() && o.addr.is(mip_core::Kind::Secret))
        .filter(|o| WATCHED_SECRETS.contains(&o.addr.name.as_str()))
        .map(|o| {
            let mut keys: BTreeSet<String> = o.sensitive.keys().cloned().collect();
            if let Some(data) = o.manifest.get("stringData").and_then(Value::as_object) {
                keys.extend(data.keys().cloned());
            }
            RequiredSecret { addr: (*o.addr).clone(), keys }
        })
        .collect();
    let namespaces = loaded
        .desired
        .mip_owned()
        .filter(|o| o.addr.cluster.is_none() && o.addr.is(mip_core::Kind::Namespace))
        .map(|o| (*o.addr).clone())
        .collect();
    Expectations {
        argocd_namespace: loaded.inventory.argocd.namespace.value.clone(),
        lock_down_default: loaded.inventory.argocd.default_project
            == mip_inventory::DefaultProjectPolicy::LockDown,
        secrets,
        namespaces,
    }
}

/// Reads the cluster and diagnoses it.
///
/// # Errors
/// Cluster errors.
pub async fn doctor<C: Cluster>(cluster: &C, loaded: &Loaded) -> Result<Report, Error> {
    let exp = expectations(loaded);
    let live = read(cluster, &exp).await?;
    Ok(report(&exp, &live, mip_state::now_unix()))
}

/// The report of a diagnosis.
pub fn report(exp: &Expectations, live: &LiveObjects, now_unix: u64) -> Report {
    let findings = diagnose(exp, live, now_unix);
    let checked = BTreeMap::from([
        ("AppProject".to_owned(), live.projects.len()),
        ("Application".to_owned(), live.applications.len()),
        ("ApplicationSet".to_owned(), live.application_sets.len()),
        ("Secret".to_owned(), exp.secrets.len()),
        ("Namespace".to_owned(), live.namespaces.len()),
        ("cluster Secret".to_owned(), live.clusters.len()),
    ]);
    Report {
        format_version: FORMAT_VERSION,
        argocd_namespace: exp.argocd_namespace.clone(),
        healthy: findings.is_empty(),
        checked,
        findings,
    }
}

/// Runs every check. Sorted by severity, address and code.
pub fn diagnose(exp: &Expectations, live: &LiveObjects, now_unix: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    let projects: BTreeMap<&str, &Value> = live.projects.iter().map(|p| (name_of(p), p)).collect();
    let ns = &exp.argocd_namespace;

    for app in &live.applications {
        check_application(app, &projects, ns, &mut out);
        check_application_conditions(app, &mut out);
        check_application_state(app, &mut out);
    }
    for set in &live.application_sets {
        check_application_set(set, &projects, ns, &mut out);
    }
    for s in &exp.secrets {
        check_secret(s, live.secret_keys.get(&s.addr), &mut out);
    }
    if exp.lock_down_default
        && let Some(default) = projects.get("default")
    {
        check_default_project(default, &mut out);
    }
    let deletable = [
        ("AppProject", &live.projects),
        ("Application", &live.applications),
        ("ApplicationSet", &live.application_sets),
    ];
    for (kind, objects) in deletable {
        for o in objects.iter() {
            check_deletion(addr_of(kind, o), o, now_unix, &mut out);
        }
    }
    for n in &live.namespaces {
        check_deletion(ObjectRef::new("v1", "Namespace", None, name_of(n)), n, now_unix, &mut out);
    }
    for (name, c) in live.clusters.iter().filter(|(_, c)| !c.has_credentials) {
        out.push(Finding {
            severity: Severity::Error,
            code: Code::ClusterWithoutCredentials,
            address: ObjectRef::new("v1", "Secret", Some(ns), name),
            what: format!("cluster Secret `{name}` gives Argo CD no credentials for `{}`: its Applications there cannot sync", c.server),
            fix: "declare the cluster with `context:` (mip registers it) or with `bearerToken` / `clientCertificate`, then `mip apply`".into(),
        });
    }
    out.sort_by(|a, b| {
        (a.severity, &a.address, a.code.as_str()).cmp(&(b.severity, &b.address, b.code.as_str()))
    });
    out
}
