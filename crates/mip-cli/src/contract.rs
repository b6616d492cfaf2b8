//! The JSON contracts of mip's outputs: the typed documents the CLI itself writes (validate
//! reports, apply progress events, state listings, the version), and the JSON Schema of every
//! JSON output, derived with `schemars` from the very types that serialise it.
//!
//! Why derived and not hand-written: a schema kept beside the code drifts from it silently; one
//! generated from the `Serialize` types cannot. `mip docs schema DIR` writes them
//! (`docs/schema/*.schema.json`); `tests/cli/schema.rs` fails when the committed files are not
//! what it writes, and checks real command outputs against them. Every document carries
//! `format_version` ([`FORMAT_VERSION`]): fields are added, never renamed or removed, within a
//! version.

use mip_core::{Action, ObjectRef};
use schemars::JsonSchema;
use serde::Serialize;

/// The version of the JSON documents the CLI writes itself.
pub const FORMAT_VERSION: &str = "1";

/// `mip validate -o json`: whether the inventory is valid, every diagnostic found, and (when
/// valid) what it declares. The fields of the first version keep their order; `diagnostics`
/// was added last.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ValidateReport {
    /// Always `"1"`.
    pub format_version: String,
    /// No error was found (warnings may remain).
    pub valid: bool,
    /// The inventory file as given.
    pub inventory: String,
    /// sha256 of the inventory bytes (valid inventories only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_digest: Option<String>,
    /// How many objects mip applies (valid inventories only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mip_owned: Option<usize>,
    /// How many objects mip expects Argo CD to generate (valid inventories only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argo_owned: Option<usize>,
    /// The warnings, each on one line as stderr shows them (kept for version-1 readers; see
    /// `diagnostics` for their fields).
    pub warnings: Vec<String>,
    /// Every object in bootstrap order (valid inventories only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<ObjectItem>>,
    /// Every problem found, errors and warnings, sorted by location.
    pub diagnostics: Vec<DiagnosticItem>,
}

/// One object of a valid inventory.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ObjectItem {
    /// Its address.
    pub address: ObjectRef,
    /// Who writes it.
    pub owner: mip_core::Owner,
    /// Its bootstrap step.
    pub step: mip_engine::ops::validate::Step,
}

/// One diagnostic: where, how bad, which rule, what, and how to fix it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DiagnosticItem {
    /// The file as the user named it (absent when the problem has no single place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 1-based column, in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// `error` stops the command; `warning` does not.
    pub severity: mip_core::Severity,
    /// The stable rule code, e.g. `unknown-key`.
    pub code: String,
    /// One line, user values in backticks.
    pub message: String,
    /// How to fix it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl From<&mip_core::Diagnostic> for DiagnosticItem {
    fn from(d: &mip_core::Diagnostic) -> DiagnosticItem {
        let loc = d.location.as_ref();
        DiagnosticItem {
            file: loc.map(|l| l.file.clone()),
            line: loc.map(|l| l.line),
            column: loc.map(|l| l.column),
            severity: d.severity,
            code: d.code.clone(),
            message: d.summary.clone(),
            hint: d.hint.clone(),
        }
    }
}

/// `mip version -o json`: what `mip --version` prints, field by field.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VersionInfo {
    /// Always `"1"`.
    pub format_version: String,
    /// The package version (semver).
    pub version: String,
    /// The Git commit built (12 hex digits), or `unknown`.
    pub commit: String,
    /// The build date (`YYYY-MM-DD`, UTC; `SOURCE_DATE_EPOCH` for reproducible builds), or
    /// `unknown`.
    pub built: String,
}

impl VersionInfo {
    /// This binary's.
    pub fn current() -> VersionInfo {
        VersionInfo {
            format_version: FORMAT_VERSION.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            commit: env!("MIP_COMMIT").to_owned(),
            built: env!("MIP_BUILT").to_owned(),
        }
    }
}

/// `mip state list -o json`: the state's identity and every object it manages.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StateListing {
    /// Always `"1"`.
    pub format_version: String,
    /// Fixed when the state was created.
    pub lineage: String,
    /// Incremented on every state write.
    pub serial: u64,
    /// The managed objects, by address.
    pub managed: Vec<StateEntry>,
}

/// One managed object as the state records it (also `mip state show ADDRESS`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct StateEntry {
    /// The object.
    pub address: ObjectRef,
    /// sha256 of what was applied (owned fields and secret *sources*; never a value).
    pub fingerprint: String,
    /// The object's `metadata.uid` after the apply, if known.
    pub uid: Option<String>,
    /// The serial at which this entry was written.
    pub serial: u64,
}

impl StateEntry {
    /// From the state's entry.
    pub fn new(address: &ObjectRef, e: &mip_engine::ops::state::ManagedEntry) -> StateEntry {
        StateEntry {
            address: address.clone(),
            fingerprint: e.fingerprint.clone(),
            uid: e.uid.clone(),
            serial: e.serial,
        }
    }
}

/// One line of `mip apply --output json` (and of destroy's progress): JSON Lines on stdout, the
/// `event` field first. A run prints `plan`, then the write events, then one `outcome` last.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// The plan about to be applied: its counts and the state it was made against.
    Plan {
        /// Counts per action.
        summary: mip_engine::ops::Summary,
        /// Lineage and serial.
        state: mip_engine::ops::StateRef,
    },
    /// Writing starts.
    Writing {
        /// How many changes will be written.
        changes: usize,
    },
    /// A change starts.
    Start {
        /// The object.
        address: ObjectRef,
        /// What is done to it.
        action: Action,
    },
    /// A change finished and is recorded in the state.
    Done {
        /// The object.
        address: ObjectRef,
        /// What was done to it.
        action: Action,
    },
    /// A change failed.
    Failed {
        /// The object.
        address: ObjectRef,
        /// Why, on one line.
        error: String,
    },
    /// A change was not attempted.
    Skipped {
        /// The object.
        address: ObjectRef,
        /// Why.
        skip: mip_engine::seams::Skip,
    },
    /// An object Argo CD reconciles changed state.
    Readiness {
        /// The object.
        address: ObjectRef,
        /// Its state.
        readiness: mip_engine::seams::Readiness,
    },
    /// The final wait: how many objects are still not ready.
    Waiting {
        /// How many.
        not_ready: usize,
    },
    /// Something to know that changes nothing.
    Notice(NoticeEvent),
    /// The last line: what the run did.
    Outcome {
        /// Every change was done and everything waited for is ready.
        complete: bool,
        /// Changes done (and recorded), in the order they finished.
        applied: Vec<ObjectRef>,
        /// Changes that failed (when writes ran).
        #[serde(skip_serializing_if = "Option::is_none")]
        failed: Option<Vec<FailedItem>>,
        /// Changes not attempted, and why (when writes ran).
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<Vec<SkippedItem>>,
        /// Objects Argo CD reconciles that were not ready when the wait ended.
        #[serde(skip_serializing_if = "Option::is_none")]
        pending: Option<Vec<mip_engine::ops::apply::NotReady>>,
        /// The state serial after the run (when writes ran).
        #[serde(skip_serializing_if = "Option::is_none")]
        serial: Option<u64>,
        /// Whether the run was interrupted (when writes ran).
        #[serde(skip_serializing_if = "Option::is_none")]
        interrupted: Option<bool>,
    },
}

/// A notice, by its `notice` name.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "notice", rename_all = "kebab-case")]
pub enum NoticeEvent {
    /// A saved plan is applied although the inventory changed since it was made.
    InventoryChangedSincePlan {
        /// The inventory the plan names.
        inventory: String,
    },
    /// Destroy keeps a protected object (namespace, AppProject, CRD).
    KeptProtected {
        /// The object kept.
        address: ObjectRef,
    },
    /// `--wait-timeout 0`: these changes are written without waiting for what Argo CD
    /// generates that they depend on.
    NotWaiting {
        /// The changes.
        changes: Vec<ObjectRef>,
    },
}

/// A failed change in the outcome.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FailedItem {
    /// The object.
    pub address: ObjectRef,
    /// Why, on one line.
    pub error: String,
}

/// A change not attempted, in the outcome.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SkippedItem {
    /// The object.
    pub address: ObjectRef,
    /// Why.
    pub skip: mip_engine::seams::Skip,
}

/// The schema of `T`, draft 2020-12, titled `title`.
fn schema_of<T: JsonSchema>(id: &str, title: &str) -> schemars::Schema {
    let mut schema =
        schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
    schema.insert("$id".to_owned(), format!("https://mip.invalid/schema/{id}.schema.json").into());
    schema.insert("title".to_owned(), title.into());
    schema
}

/// Every published schema: its file stem (`docs/schema/STEM.schema.json`) and the schema.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("plan", schema_of::<mip_engine::ops::Plan>("plan", "mip plan -o json, mip show -o json")),
        ("drift", schema_of::<mip_engine::ops::drift::Drift>("drift", "mip drift -o json")),
        ("validate", schema_of::<ValidateReport>("validate", "mip validate -o json")),
        (
            "progress-event",
            schema_of::<ProgressEvent>(
                "progress-event",
                "mip apply --output json, mip destroy: one JSON line each",
            ),
        ),
        ("state-list", schema_of::<StateListing>("state-list", "mip state list -o json")),
        ("state-entry", schema_of::<StateEntry>("state-entry", "mip state show ADDRESS")),
        ("version", schema_of::<VersionInfo>("version", "mip version -o json")),
    ]
}

/// Writes every schema into `dir` (created if missing), one pretty file each, and returns the
/// files written.
///
/// # Errors
/// IO errors.
pub fn write_schemas(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (stem, schema) in schemas() {
        let path = dir.join(format!("{stem}.schema.json"));
        let text = serde_json::to_string_pretty(&schema).map_err(std::io::Error::other)?;
        std::fs::write(&path, format!("{text}\n"))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The typed events write the very bytes the `json!` values they replaced wrote (keys in
    /// the same order), so readers of version 1 see no change.
    #[test]
    fn progress_events_serialise_as_the_ad_hoc_json_did() {
        let a: ObjectRef = "v1/Namespace/federation-a".parse().expect("address");
        let b: ObjectRef = "v1/Secret/federation-a/s".parse().expect("address");
        let skip = mip_engine::seams::Skip::DependencyFailed(a.clone());
        let ready = mip_engine::seams::Readiness::NotReady("OutOfSync".into());
        let pending =
            vec![mip_engine::ops::apply::NotReady { address: b.clone(), reason: "not created yet".into() }];
        let summary = mip_engine::ops::Summary { create: 2, ..Default::default() };
        let state = mip_engine::ops::StateRef { lineage: Some("l".into()), serial: 3 };
        let outcome = |failed, skipped, pending, serial, interrupted| ProgressEvent::Outcome {
            complete: false,
            applied: vec![a.clone()],
            failed,
            skipped,
            pending,
            serial,
            interrupted,
        };
        let cases: Vec<(ProgressEvent, serde_json::Value)> = vec![
            (
                ProgressEvent::Plan { summary: summary.clone(), state: state.clone() },
                json!({ "event": "plan", "summary": summary, "state": state }),
            ),
            (ProgressEvent::Writing { changes: 2 }, json!({ "event": "writing", "changes": 2 })),
            (
                ProgressEvent::Start { address: a.clone(), action: Action::Create },
                json!({ "event": "start", "address": a, "action": Action::Create }),
            ),
            (
                ProgressEvent::Done { address: a.clone(), action: Action::Create },
                json!({ "event": "done", "address": a, "action": Action::Create }),
            ),
            (
                ProgressEvent::Failed { address: a.clone(), error: "boom".into() },
                json!({ "event": "failed", "address": a, "error": "boom" }),
            ),
            (
                ProgressEvent::Skipped { address: b.clone(), skip: skip.clone() },
                json!({ "event": "skipped", "address": b, "skip": skip }),
            ),
            (
                ProgressEvent::Readiness { address: b.clone(), readiness: ready.clone() },
                json!({ "event": "readiness", "address": b, "readiness": ready }),
            ),
            (ProgressEvent::Waiting { not_ready: 1 }, json!({ "event": "waiting", "not_ready": 1 })),
            (
                ProgressEvent::Notice(NoticeEvent::InventoryChangedSincePlan {
                    inventory: "mip.yaml".into(),
                }),
                json!({ "event": "notice", "notice": "inventory-changed-since-plan", "inventory": "mip.yaml" }),
            ),
            (
                ProgressEvent::Notice(NoticeEvent::KeptProtected { address: a.clone() }),
                json!({ "event": "notice", "notice": "kept-protected", "address": a }),
            ),
            (
                ProgressEvent::Notice(NoticeEvent::NotWaiting { changes: vec![a.clone()] }),
                json!({ "event": "notice", "notice": "not-waiting", "changes": [a] }),
            ),
            (
                outcome(None, None, None, None, None),
                json!({ "event": "outcome", "complete": false, "applied": [a] }),
            ),
            (
                outcome(None, None, Some(pending.clone()), None, None),
                json!({ "event": "outcome", "complete": false, "applied": [a], "pending": pending }),
            ),
            (
                outcome(
                    Some(vec![FailedItem { address: b.clone(), error: "boom".into() }]),
                    Some(vec![SkippedItem { address: b.clone(), skip: skip.clone() }]),
                    Some(pending.clone()),
                    Some(4),
                    Some(false),
                ),
                json!({
                    "event": "outcome",
                    "complete": false,
                    "applied": [a],
                    "failed": [json!({ "address": b, "error": "boom" })],
                    "skipped": [json!({ "address": b, "skip": skip })],
                    "pending": pending,
                    "serial": 4,
                    "interrupted": false,
                }),
            ),
        ];
        for (event, before) in cases {
            assert_eq!(serde_json::to_string(&event).expect("json"), before.to_string());
        }
    }

    #[test]
    fn every_schema_is_draft_2020_12_with_an_id_and_a_title() {
        for (stem, schema) in schemas() {
            let v = schema.as_value();
            assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema", "{stem}");
            assert!(
                v["$id"].as_str().is_some_and(|id| id.ends_with(&format!("/{stem}.schema.json"))),
                "{stem}"
            );
            assert!(v["title"].is_string(), "{stem}");
        }
    }
}
