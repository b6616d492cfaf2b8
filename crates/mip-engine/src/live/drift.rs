//! Drift: what differs between the cluster and the inventory, with a stable fingerprint for
//! alert deduplication.

use mip_core::{Action, ObjectRef, canonical};
use mip_plan::Plan;

/// A drift report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Drift {
    /// `format_version` of the drift JSON.
    pub format_version: &'static str,
    /// sha256 over the sorted (address, action, live fingerprint) of every drifted object.
    pub fingerprint: String,
    /// Drifted mip-owned objects.
    pub changes: Vec<DriftItem>,
    /// Expected Argo-owned objects that are missing.
    pub missing: Vec<ObjectRef>,
}

/// One drifted object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DriftItem {
    /// The object.
    pub address: ObjectRef,
    /// What apply would do.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// Diff of mip's fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Drift {
    /// Whether anything drifted.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.missing.is_empty()
    }
}

/// Drift of a live plan.
pub fn drift_of(plan: &Plan) -> Drift {
    let drifted = || plan.changes.iter().filter(|c| c.action != Action::NoOp);
    let changes: Vec<DriftItem> = drifted()
        .map(|c| DriftItem {
            address: c.address.clone(),
            action: c.action,
            reason: c.reason.clone(),
            diff: c.diff.clone(),
        })
        .collect();
    let missing: Vec<ObjectRef> =
        plan.expected.iter().filter(|e| !e.present).map(|e| e.address.clone()).collect();
    let keyed: Vec<(String, &str, Option<&String>)> =
        drifted().map(|c| (c.address.to_string(), c.action.as_str(), c.live_fingerprint.as_ref())).collect();
    let fingerprint =
        canonical::digest(&serde_json::json!({ "changes": keyed, "missing": missing })).unwrap_or_default();
    Drift { format_version: "1", fingerprint, changes, missing }
}
