//! The desired state: objects, their owner and their step.

use mip_core::{Location, ObjectRef, Owner, SensitiveSource};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The named phases of a bootstrap, in order. Every object belongs to one.
///
/// The DAG orders objects inside and across steps by its rules; the step is what a reviewer
/// reads ("this happens while bootstrapping") and what `--target` can select.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Lock the `default` AppProject down before anything else exists.
    DefaultProject,
    /// The bootstrap project, credentials, prerequisites, namespaces and secrets.
    Bootstrap,
    /// The `<prefix>argo-projects` root Application.
    ArgoProjects,
    /// Argo CD creates the static and federation AppProjects; mip waits for them.
    AwaitProjects,
    /// The `<prefix>infra-clusterset` root Application.
    Infra,
    /// Argo CD creates the federation and common Applications; mip waits for them.
    AwaitApps,
    /// mip carries what joins the remote nodes of hybrid federations (Submariner's broker
    /// credentials) to their clusters, once Argo CD has deployed the broker.
    RemoteNodes,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 7] = [
        Step::DefaultProject,
        Step::Bootstrap,
        Step::ArgoProjects,
        Step::AwaitProjects,
        Step::Infra,
        Step::AwaitApps,
        Step::RemoteNodes,
    ];

    /// Kebab-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::DefaultProject => "default-project",
            Step::Bootstrap => "bootstrap",
            Step::ArgoProjects => "argo-projects",
            Step::AwaitProjects => "await-projects",
            Step::Infra => "infra",
            Step::AwaitApps => "await-apps",
            Step::RemoteNodes => "remote-nodes",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object of the desired state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredObject {
    /// Its address.
    pub addr: ObjectRef,
    /// Who writes it.
    pub owner: Owner,
    /// Its step.
    pub step: Step,
    /// For mip-owned objects the full manifest to apply, **without secret values** (Secret
    /// `stringData` values are empty strings; [`DesiredObject::sensitive`] says where each
    /// comes from). For Argo-owned objects the fields mip models and checks (project,
    /// sources, destination), not a full manifest. Shared (`Arc`) with the plan's changes, so a
    /// plan of 30 000 objects does not copy 30 000 manifests.
    pub manifest: std::sync::Arc<Value>,
    /// Secret keys and where their values come from.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sensitive: BTreeMap<String, SensitiveSource>,
    /// Why the object exists, for the plan.
    pub reason: String,
    /// The inventory entry that caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Location>,
    /// For Argo-owned objects: the Application or ApplicationSet that generates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_by: Option<ObjectRef>,
}

impl DesiredObject {
    /// A string field of the manifest by JSON pointer.
    pub fn str_at(&self, pointer: &str) -> Option<&str> {
        mip_core::canonical::at(&self.manifest, pointer).and_then(Value::as_str)
    }
}

/// A Kubernetes manifest read from a prerequisite file.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Where the document starts.
    pub at: Location,
    /// The document.
    pub value: Value,
}

/// Options that change resolution without editing the inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveOptions {
    /// `--revision BRANCH`: every repository revision becomes this branch, and the root
    /// Applications get its sanitised prefix.
    pub revision: Option<String>,
}

/// The resolved desired state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    /// Every object, mip-owned and Argo-owned, by address.
    pub objects: BTreeMap<ObjectRef, DesiredObject>,
    /// The revision in effect.
    pub revision: String,
    /// The root Application name prefix (`<sanitised revision>-`).
    pub prefix: String,
    /// Warnings of resolution (e.g. an object declared twice in the prerequisite files, taken
    /// as `kubectl apply` takes it: the later one wins).
    pub warnings: mip_core::Diagnostics,
}

impl Desired {
    /// Objects mip writes.
    pub fn mip_owned(&self) -> impl Iterator<Item = &DesiredObject> {
        self.objects.values().filter(|o| o.owner == Owner::Mip)
    }

    /// Objects Argo CD generates.
    pub fn argo_owned(&self) -> impl Iterator<Item = &DesiredObject> {
        self.objects.values().filter(|o| o.owner == Owner::ArgoCd)
    }
}
