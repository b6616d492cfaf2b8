//! Drift: what differs between the cluster and the inventory, with a stable fingerprint for
//! alert deduplication. Two sides: mip's own objects (the live plan's changes), and what Argo CD
//! reconciles ([`ArgoDrift`]): Applications out of sync or degraded at the revision their spec
//! tracks, and generated objects whose spec differs from what the rendered tree says.

use mip_core::{Action, ObjectRef, Owner, canonical};
use mip_graph::Desired;
use mip_plan::Plan;
use serde_json::Value;
use std::collections::BTreeMap;

/// A drift report.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Drift {
    /// `format_version` of the drift JSON.
    pub format_version: &'static str,
    /// sha256 over the sorted (address, action, live fingerprint) of every drifted object.
    pub fingerprint: String,
    /// Drifted mip-owned objects.
    pub changes: Vec<DriftItem>,
    /// Expected Argo-owned objects that are missing.
    pub missing: Vec<ObjectRef>,
    /// What Argo CD reconciles and reports out of sync or degraded, or holds with another spec.
    pub argo: Vec<ArgoDrift>,
}

/// What is wrong on Argo CD's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ArgoDriftKind {
    /// An Application is OutOfSync with the revision its spec tracks.
    OutOfSync,
    /// An Application is Degraded.
    Degraded,
    /// A generated object's spec differs from what the rendered tree says.
    SpecDiffers,
}

impl ArgoDriftKind {
    /// As text and JSON show it.
    pub fn as_str(self) -> &'static str {
        match self {
            ArgoDriftKind::OutOfSync => "out-of-sync",
            ArgoDriftKind::Degraded => "degraded",
            ArgoDriftKind::SpecDiffers => "spec-differs",
        }
    }
}

/// One finding on Argo CD's side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ArgoDrift {
    /// The object.
    pub address: ObjectRef,
    /// What is wrong.
    pub kind: ArgoDriftKind,
    /// Argo CD's words, or the fields that differ.
    pub detail: String,
}

/// One drifted object.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
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
        self.changes.is_empty() && self.missing.is_empty() && self.argo.is_empty()
    }
}

/// Drift of a live plan, with the findings on Argo CD's side.
pub fn drift_of(plan: &Plan, argo: Vec<ArgoDrift>) -> Drift {
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
    let argo_keyed: Vec<(String, &str, &str)> =
        argo.iter().map(|a| (a.address.to_string(), a.kind.as_str(), a.detail.as_str())).collect();
    let doc = if argo.is_empty() {
        serde_json::json!({ "changes": keyed, "missing": missing })
    } else {
        serde_json::json!({ "changes": keyed, "missing": missing, "argo": argo_keyed })
    };
    let fingerprint = canonical::digest(&doc).unwrap_or_default();
    Drift { format_version: "1", fingerprint, changes, missing, argo }
}

fn text<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// The findings on Argo CD's side, from the objects a live plan read: every Application Argo CD
/// generates or mip writes that is OutOfSync with the revision its spec tracks, or Degraded;
/// every generated object whose live spec differs from the fields mip models for it.
pub fn argo_drift(desired: &Desired, plan: &Plan, live: &BTreeMap<ObjectRef, Value>) -> Vec<ArgoDrift> {
    let mut out = Vec::new();
    let apps = plan
        .changes
        .iter()
        .map(|c| &c.address)
        .chain(plan.expected.iter().map(|e| &e.address))
        .filter(|a| a.is(mip_core::Kind::Application));
    for addr in apps {
        let Some(app) = live.get(addr) else { continue };
        let current = text(app, "/status/sync/comparedTo/source/targetRevision")
            == text(app, "/spec/source/targetRevision");
        if current && text(app, "/status/sync/status") == "OutOfSync" {
            let detail = text(app, "/status/operationState/message").trim();
            let detail = if detail.is_empty() { "OutOfSync at the revision it tracks" } else { detail };
            out.push(ArgoDrift {
                address: addr.clone(),
                kind: ArgoDriftKind::OutOfSync,
                detail: detail.to_owned(),
            });
        }
        if text(app, "/status/health/status") == "Degraded" {
            let message = text(app, "/status/health/message").trim();
            let detail =
                if message.is_empty() { "Degraded".to_owned() } else { format!("Degraded: {message}") };
            out.push(ArgoDrift { address: addr.clone(), kind: ArgoDriftKind::Degraded, detail });
        }
    }
    for o in desired.objects.values().filter(|o| o.owner == Owner::ArgoCd) {
        let Some(l) = live.get(&o.addr) else { continue };
        let differing = mip_plan::argo::differing_fields(&o.body(), l);
        if !differing.is_empty() {
            out.push(ArgoDrift {
                address: (*o.addr).clone(),
                kind: ArgoDriftKind::SpecDiffers,
                detail: format!("differs from the rendered tree at {}", differing.join(", ")),
            });
        }
    }
    out.sort_by(|a, b| (&a.address, a.kind).cmp(&(&b.address, b.kind)));
    out
}

#[cfg(test)]
mod tests {
    use mip_plan::argo::differing_fields;
    use serde_json::json;

    #[test]
    fn only_the_fields_a_model_names_are_compared_and_lists_as_sets() {
        let model = json!({"spec": {"destinations": [{"server": "s", "namespace": "a"}, {"server": "s", "namespace": "b"}], "description": "x"}});
        let same = json!({"spec": {"destinations": [{"namespace": "b", "server": "s"}, {"server": "s", "namespace": "a"}], "description": "x", "extra": 1}});
        assert!(differing_fields(&model, &same).is_empty());
        let loosened =
            json!({"spec": {"destinations": [{"server": "*", "namespace": "*"}], "description": "x"}});
        assert_eq!(differing_fields(&model, &loosened), vec!["/spec/destinations"]);
        let templated = json!({"spec": {"template": {"spec": {"project": "{{ templated }}"}}}});
        assert!(
            differing_fields(&templated, &json!({"spec": {"template": {"spec": {"project": "p"}}}}))
                .is_empty()
        );
    }
}
