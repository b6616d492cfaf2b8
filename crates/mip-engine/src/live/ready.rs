//! When an object Argo CD reconciles is ready, in Argo CD's own words: an AppProject when it
//! exists; an ApplicationSet when it exists without an error condition; an Application at the
//! level asked for: it exists, it is Synced to the revision its spec tracks (no operation failed
//! or running), or it is also Healthy.

use mip_core::ObjectRef;
use serde_json::Value;

/// How far `apply` waits for what Argo CD reconciles (`--wait-for`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum WaitFor {
    /// The object exists.
    Exists,
    /// An Application is Synced to the revision its spec tracks.
    Synced,
    /// An Application is Synced and Healthy.
    #[default]
    Healthy,
}

impl WaitFor {
    /// As the flag names it.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitFor::Exists => "exists",
            WaitFor::Synced => "synced",
            WaitFor::Healthy => "healthy",
        }
    }
}

/// Why an object that does not exist is not ready.
pub(crate) const NOT_CREATED: &str = "not created yet";

/// Whether an object is ready, and if not, why (Argo CD's conditions and messages).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Readiness {
    /// Ready at the level asked for.
    Ready,
    /// Gone, as awaited: Argo CD removed it (and what it deployed).
    Gone,
    /// Not yet, or failed: why.
    NotReady(String),
}

impl Readiness {
    /// Whether ready.
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready | Readiness::Gone)
    }
}

fn text<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// `type: message` of every condition Argo CD reports whose type matches `bad`.
fn conditions(live: &Value, bad: impl Fn(&Value) -> bool) -> Vec<String> {
    live.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter(|c| bad(c))
                .map(|c| format!("{}: {}", text(c, "/type"), text(c, "/message").trim()))
                .collect()
        })
        .unwrap_or_default()
}

/// The target revisions an Application's spec tracks (one per source).
fn spec_revisions(app: &Value) -> Vec<&str> {
    match app.pointer("/spec/sources").and_then(Value::as_array) {
        Some(sources) => sources.iter().map(|s| text(s, "/targetRevision")).collect(),
        None => vec![text(app, "/spec/source/targetRevision")],
    }
}

/// The target revisions Argo CD last compared the live state with.
fn compared_revisions(app: &Value) -> Vec<&str> {
    match app.pointer("/status/sync/comparedTo/sources").and_then(Value::as_array) {
        Some(sources) => sources.iter().map(|s| text(s, "/targetRevision")).collect(),
        None => vec![text(app, "/status/sync/comparedTo/source/targetRevision")],
    }
}

/// The readiness of `addr` as `live` shows it (`None`: it does not exist).
pub fn readiness(addr: &ObjectRef, live: Option<&Value>, level: WaitFor) -> Readiness {
    let Some(live) = live else { return Readiness::NotReady(NOT_CREATED.to_owned()) };
    match addr.known_kind() {
        Some(mip_core::Kind::ApplicationSet) => {
            let errors = conditions(live, |c| {
                let (t, s) = (text(c, "/type"), text(c, "/status"));
                (t == "ErrorOccurred" && s == "True") || (t == "ParametersGenerated" && s == "False")
            });
            if errors.is_empty() { Readiness::Ready } else { Readiness::NotReady(errors.join("; ")) }
        }
        Some(mip_core::Kind::Application) if level > WaitFor::Exists => application(live, level),
        _ => Readiness::Ready,
    }
}

fn application(app: &Value, level: WaitFor) -> Readiness {
    let mut why = conditions(app, |c| text(c, "/type").ends_with("Error"));
    let phase = text(app, "/status/operationState/phase");
    let op_message = text(app, "/status/operationState/message").trim();
    match phase {
        "Failed" | "Error" => why.push(format!("sync {phase}: {op_message}")),
        "Running" | "Terminating" => why.push(format!("sync {}", phase.to_lowercase())),
        _ => {}
    }
    let sync = text(app, "/status/sync/status");
    if sync != "Synced" {
        why.push(format!("sync status {}", if sync.is_empty() { "unknown" } else { sync }));
    } else if compared_revisions(app) != spec_revisions(app) {
        why.push("compared with another revision than the spec tracks (refresh pending)".to_owned());
    }
    if level == WaitFor::Healthy {
        let health = text(app, "/status/health/status");
        if health != "Healthy" {
            let message = text(app, "/status/health/message").trim();
            let shown = if health.is_empty() { "unknown" } else { health };
            why.push(if message.is_empty() {
                format!("health {shown}")
            } else {
                format!("health {shown}: {message}")
            });
        }
    }
    if why.is_empty() { Readiness::Ready } else { Readiness::NotReady(why.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app() -> ObjectRef {
        ObjectRef::new("argoproj.io/v1alpha1", "Application", Some("argocd"), "a")
    }

    fn application(status: Value) -> Value {
        json!({"spec": {"source": {"repoURL": "r", "targetRevision": "main"}}, "status": status})
    }

    #[test]
    fn missing_objects_are_not_ready_and_projects_are_ready_once_they_exist() {
        assert!(!readiness(&app(), None, WaitFor::Exists).is_ready());
        let p = ObjectRef::new("argoproj.io/v1alpha1", "AppProject", Some("argocd"), "p");
        assert!(readiness(&p, Some(&json!({})), WaitFor::Healthy).is_ready());
    }

    #[test]
    fn an_application_at_each_level() {
        let synced = json!({"status": "Synced", "comparedTo": {"source": {"targetRevision": "main"}}});
        let degraded =
            application(json!({"sync": synced, "health": {"status": "Degraded", "message": "pod crashed"}}));
        assert!(readiness(&app(), Some(&degraded), WaitFor::Exists).is_ready());
        assert!(readiness(&app(), Some(&degraded), WaitFor::Synced).is_ready());
        assert_eq!(
            readiness(&app(), Some(&degraded), WaitFor::Healthy),
            Readiness::NotReady("health Degraded: pod crashed".into())
        );
        let healthy = application(json!({"sync": synced, "health": {"status": "Healthy"}}));
        assert!(readiness(&app(), Some(&healthy), WaitFor::Healthy).is_ready());
    }

    #[test]
    fn an_application_compared_with_an_old_revision_or_failing_is_not_synced() {
        let old = application(
            json!({"sync": {"status": "Synced", "comparedTo": {"source": {"targetRevision": "feat-x"}}}}),
        );
        assert!(!readiness(&app(), Some(&old), WaitFor::Synced).is_ready());
        let failed = application(json!({
            "sync": {"status": "OutOfSync"},
            "operationState": {"phase": "Failed", "message": "one or more objects failed to apply"},
            "conditions": [{"type": "ComparisonError", "message": "repository not accessible"}]
        }));
        let Readiness::NotReady(why) = readiness(&app(), Some(&failed), WaitFor::Synced) else {
            panic!("ready")
        };
        assert!(why.contains("ComparisonError: repository not accessible"), "{why}");
        assert!(why.contains("sync Failed: one or more objects failed to apply"), "{why}");
        assert!(why.contains("sync status OutOfSync"), "{why}");
    }

    #[test]
    fn an_application_set_with_an_error_condition_is_not_ready() {
        let set = ObjectRef::new("argoproj.io/v1alpha1", "ApplicationSet", Some("argocd"), "s");
        let bad = json!({"status": {"conditions": [
            {"type": "ErrorOccurred", "status": "True", "message": "project not found"},
            {"type": "ParametersGenerated", "status": "True", "message": "ok"}
        ]}});
        assert_eq!(
            readiness(&set, Some(&bad), WaitFor::Exists),
            Readiness::NotReady("ErrorOccurred: project not found".into())
        );
        assert!(readiness(&set, Some(&json!({"status": {}})), WaitFor::Exists).is_ready());
    }
}
