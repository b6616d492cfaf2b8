//! The plan: what mip will do, in order, and why.

use mip_core::{Action, ObjectRef, SensitiveSource};
use mip_graph::Step;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the plan JSON document and plan file. Fields are added, never renamed.
pub const FORMAT_VERSION: &str = "1";

/// How the plan was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Against the local state store only; no cluster was contacted.
    Offline,
    /// Against the live cluster.
    Live,
    /// Between two inventories (a pull request's base and head), with no cluster and no state:
    /// what the change does to mip's objects and to what Argo CD generates.
    Review,
}

/// The state a plan was based on (Terraform's lineage and serial).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StateRef {
    /// Fixed when the state is created; `None` for no state yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    /// Incremented on every state write.
    pub serial: u64,
}

/// What the state store remembers of the objects mip manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriorState {
    /// Lineage and serial.
    pub state: StateRef,
    /// Managed objects and the fingerprint of what was last applied.
    pub managed: BTreeMap<ObjectRef, String>,
    /// Secrets: key → salted hash of the value last applied (salt: the lineage).
    pub secret_hashes: BTreeMap<ObjectRef, BTreeMap<String, String>>,
}

/// Where a sensitive key's value comes from, for the plan (never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SensitiveKey {
    /// The Secret key.
    pub key: String,
    /// Its source.
    pub source: SensitiveSource,
}

fn no_keys(keys: &std::sync::Arc<[SensitiveKey]>) -> bool {
    keys.is_empty()
}

/// One planned change to a mip-owned object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Change {
    /// The object.
    pub address: ObjectRef,
    /// What mip does.
    pub action: Action,
    /// Its bootstrap step.
    pub step: Step,
    /// Why (config change, drift, ordering, not in state …).
    pub reason: String,
    /// What the object is for.
    pub purpose: String,
    /// Objects that must be done first, with the rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Dependency>,
    /// Sensitive keys (values never appear anywhere).
    // Shared between the changes whose objects have the same keys and sources.
    #[serde(default, skip_serializing_if = "no_keys")]
    pub sensitive: std::sync::Arc<[SensitiveKey]>,
    /// Fingerprint of the desired owned fields (sha256 of canonical JSON, no secret values).
    pub fingerprint: String,
    /// The manifest to apply (secret values empty); absent for deletions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<std::sync::Arc<serde_json::Value>>,
    /// Unified diff of mip's fields, live → desired (live plans; secrets show keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Live state the plan was based on: `None` when the object did not exist. Apply refuses a
    /// plan whose objects' uid or owned fields changed since (status changes do not count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_fingerprint: Option<String>,
    /// Take ownership of conflicting fields (only for objects adopted from a known creator).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// An ordering dependency.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Dependency {
    /// The object that comes first.
    pub address: ObjectRef,
    /// The rule that says so.
    pub rule: String,
}

/// An object Argo CD will generate and mip will wait for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Expectation {
    /// The object.
    pub address: ObjectRef,
    /// Always [`Action::Await`] in a plan.
    pub action: Action,
    /// Its step.
    pub step: Step,
    /// What it is.
    pub reason: String,
    /// The Application or ApplicationSet that generates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_by: Option<std::sync::Arc<ObjectRef>>,
    /// Live plans: whether it already exists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub present: bool,
    /// Review plans: unified diff of the fields mip models (project, sources, destination),
    /// base → head, for an object Argo CD will change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Live and review plans: the fields mip models for it (project, sources, destination, …):
    /// what mip expects Argo CD to hold once it has reconciled the rendered tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub model: Option<ExpectedModel>,
}

/// What a plan expects Argo CD to hold for an object it generates. While a plan is made it is
/// the desired state's typed model, shared rather than copied (at 1 000 federations the live
/// plan's 3 000 models as JSON took 13 MB); read back from a plan file it is the JSON written
/// there. Both write and compare as the same JSON ([`mip_graph::ArgoModel::to_value`]).
#[derive(Debug, Clone)]
pub enum ExpectedModel {
    /// The desired state's model.
    Typed(std::sync::Arc<mip_graph::ArgoModel>),
    /// As read from a plan file.
    Json(std::sync::Arc<serde_json::Value>),
}

impl ExpectedModel {
    /// The model as JSON (built on each call for a typed model).
    pub fn value(&self) -> std::borrow::Cow<'_, serde_json::Value> {
        match self {
            ExpectedModel::Typed(m) => std::borrow::Cow::Owned(m.to_value()),
            ExpectedModel::Json(v) => std::borrow::Cow::Borrowed(v),
        }
    }

    /// The model as shared JSON (built for a typed model, shared for one read from a file).
    pub fn shared_value(&self) -> std::sync::Arc<serde_json::Value> {
        match self {
            ExpectedModel::Typed(m) => std::sync::Arc::new(m.to_value()),
            ExpectedModel::Json(v) => std::sync::Arc::clone(v),
        }
    }
}

impl PartialEq for ExpectedModel {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ExpectedModel::Typed(a), ExpectedModel::Typed(b)) => a == b,
            _ => self.value() == other.value(),
        }
    }
}

impl Eq for ExpectedModel {}

impl Serialize for ExpectedModel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ExpectedModel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(|v| ExpectedModel::Json(std::sync::Arc::new(v)))
    }
}

/// Counts per action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    /// Objects to create.
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects to replace.
    pub replace: usize,
    /// Objects to delete.
    pub delete: usize,
    /// Objects unchanged.
    pub no_op: usize,
    /// Argo-owned objects to wait for.
    pub await_argo: usize,
    /// Review plans: objects Argo CD will create once the change is merged and synced.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub argo_create: usize,
    /// Review plans: objects Argo CD will change.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub argo_update: usize,
    /// Review plans: objects Argo CD will delete (with what they run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub argo_delete: usize,
    /// Review plans: Applications Argo CD re-syncs because a file they read changed (see
    /// [`Plan::files`]), whatever else changes in them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub argo_resync: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    /// Whether the plan writes anything.
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.replace + self.delete > 0
    }

    /// Whether anything changes, on mip's side or (review plans) on Argo CD's: what
    /// `--detailed-exitcode` reports.
    pub fn changes_anything(&self) -> bool {
        self.has_changes() || self.argo_create + self.argo_update + self.argo_delete + self.argo_resync > 0
    }
}

/// A whole plan. Its JSON form is the `mip plan --output json` contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// [`FORMAT_VERSION`].
    pub format_version: String,
    /// Version of mip that made it.
    pub mip_version: String,
    /// Offline or live.
    pub mode: Mode,
    /// The inventory file as given.
    pub inventory: String,
    /// sha256 of the inventory bytes.
    pub inventory_digest: String,
    /// Revision in effect.
    pub revision: String,
    /// Root Application prefix.
    pub prefix: String,
    /// The state it was based on.
    pub state: StateRef,
    /// Review plans: the base inventory the head was compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseRef>,
    /// `--target`: the plan was narrowed to these objects and what they depend on; it may not
    /// hold every change the inventory asks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<ObjectRef>,
    /// Changes to mip-owned objects, in apply order (deletions last, in reverse order).
    pub changes: Vec<Change>,
    /// Argo-owned objects to expect, in order.
    pub expected: Vec<Expectation>,
    /// Review plans: the files of the GitOps tree that the change edits and Argo CD reads
    /// (values files, patches, kustomizations, charts, manifests), in path order. A file no
    /// Application reads (documentation) is not listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileChange>,
    /// Counts.
    pub summary: Summary,
}

/// A file of the GitOps tree that a review's change edits, and who reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileChange {
    /// Its path in the tree.
    pub path: String,
    /// `added`, `modified` or `deleted`.
    pub status: FileStatus,
    /// The Applications that read it (Argo CD re-syncs each once the change is merged).
    pub read_by: Vec<ObjectRef>,
    /// The unified diff, base → head, with values under sensitive-looking keys masked.
    pub diff: String,
}

/// What a change does to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// New in the head.
    Added,
    /// Edited.
    Modified,
    /// Gone from the head.
    Deleted,
}

impl FileStatus {
    /// Its name in JSON and text.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Added => "added",
            FileStatus::Modified => "modified",
            FileStatus::Deleted => "deleted",
        }
    }
}

/// The base of a review plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BaseRef {
    /// The base inventory: a file as given, or `REV:path` for a Git revision.
    pub inventory: String,
    /// sha256 of its bytes.
    pub inventory_digest: String,
    /// The Git revision it was read at (`--base REF`), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_revision: Option<String>,
}
