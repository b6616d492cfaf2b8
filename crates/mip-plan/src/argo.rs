//! What Argo CD will change: an object Argo CD generates, as it is live, against the fields
//! mip models for it (project, sources with their revisions, destination, sync wave; a
//! project's repositories and destinations). Pure.
//!
//! A model names only some fields: the live object is *projected* onto them (what the model
//! leaves out is not compared, also inside list items: a live source's `helm` is not part of
//! the model), lists are compared as sets, a templated value (`{{ … }}`) is not compared, and a
//! live Application's single `source` counts as its one-item `sources`.

use mip_core::canonical;
use serde_json::{Map, Value};

/// The live value seen through the model's shape.
fn project(model: &Value, live: &Value) -> Value {
    match model {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let child = match (k.as_str(), live.get(k)) {
                    (_, Some(c)) => c.clone(),
                    // Argo CD keeps one source as `source`; the model always lists `sources`.
                    ("sources", None) => {
                        live.get("source").map_or(Value::Null, |s| Value::Array(vec![s.clone()]))
                    }
                    _ => Value::Null,
                };
                out.insert(k.clone(), project(v, &child));
            }
            Value::Object(out)
        }
        Value::String(s) if s.contains("{{") => model.clone(),
        Value::Array(items) => {
            let Some(have) = live.as_array() else { return live.clone() };
            // Each live item through the union of the model items' keys (objects), as is otherwise.
            let keys: Vec<&String> =
                items.iter().filter_map(Value::as_object).flat_map(|o| o.keys()).collect();
            if keys.is_empty() {
                return live.clone();
            }
            let shape = Value::Object(keys.into_iter().map(|k| (k.clone(), Value::Bool(true))).collect());
            Value::Array(
                have.iter().map(|h| if h.is_object() { pick(&shape, h) } else { h.clone() }).collect(),
            )
        }
        _ => live.clone(),
    }
}

/// The keys of `shape` present in `live`, each projected one level down as the model would.
fn pick(shape: &Value, live: &Value) -> Value {
    let mut out = Map::new();
    if let (Some(s), Some(l)) = (shape.as_object(), live.as_object()) {
        for k in s.keys() {
            if let Some(v) = l.get(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The JSON pointers where `live` differs from `model` (see the [module docs](self)).
pub fn differing_fields(model: &Value, live: &Value) -> Vec<String> {
    let seen = project(model, live);
    let mut out = Vec::new();
    walk(model, &seen, String::new(), &mut out);
    out
}

fn walk(model: &Value, seen: &Value, at: String, out: &mut Vec<String>) {
    match model {
        Value::Object(m) => {
            for (k, v) in m {
                walk(v, seen.get(k).unwrap_or(&Value::Null), format!("{at}/{k}"), out);
            }
        }
        Value::String(s) if s.contains("{{") => {}
        Value::Array(items) => {
            let canon = |v: &Value| canonical::canonicalize(v).to_string();
            let mut want: Vec<String> = items.iter().map(canon).collect();
            let mut have: Vec<String> =
                seen.as_array().map(|a| a.iter().map(canon).collect()).unwrap_or_default();
            want.sort();
            have.sort();
            if want != have {
                out.push(at);
            }
        }
        leaf => {
            if leaf != seen {
                out.push(at);
            }
        }
    }
}

/// What Argo CD will change on this object, as a unified diff of the modelled fields (live →
/// inventory); `None` when they agree.
pub fn argo_diff(model: &Value, live: &Value) -> Option<String> {
    // A released model (`null`, see the engine's offline plan) models nothing.
    if model.is_null() || differing_fields(model, live).is_empty() {
        return None;
    }
    let pretty =
        |v: &Value| serde_json::to_string_pretty(&canonical::canonicalize(v)).unwrap_or_default() + "\n";
    let (a, b) = (pretty(&project(model, live)), pretty(model));
    Some(
        similar::TextDiff::from_lines(&a, &b)
            .unified_diff()
            .context_radius(2)
            .header("live", "inventory")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(rev: &str) -> Value {
        json!({
            "metadata": { "name": "federation-a-exareme2", "annotations": { "argocd.argoproj.io/sync-wave": "1", "other": "x" } },
            "spec": {
                "project": "mip-argo-project-federation-a",
                "sources": [
                    { "repoURL": "https://github.com/madgik/exareme2", "targetRevision": rev, "path": "kubernetes",
                      "helm": { "valueFiles": ["values.yaml", "$values/deployments/local/federations/federation-A/v.yaml"] } },
                    { "repoURL": "https://example.org/d.git", "targetRevision": "main", "ref": "values" },
                ],
                "destination": { "server": "https://kubernetes.default.svc", "namespace": "federation-a" },
                "syncPolicy": { "automated": { "selfHeal": true } },
            },
            "status": { "sync": { "status": "Synced" } },
        })
    }

    fn model(rev: &str) -> Value {
        json!({
            "metadata": { "annotations": { "argocd.argoproj.io/sync-wave": "1" } },
            "spec": {
                "project": "mip-argo-project-federation-a",
                "sources": [
                    { "repoURL": "https://github.com/madgik/exareme2", "targetRevision": rev, "path": "kubernetes" },
                    { "repoURL": "https://example.org/d.git", "targetRevision": "main", "ref": "values" },
                ],
                "destination": { "server": "https://kubernetes.default.svc", "namespace": "federation-a" },
            },
        })
    }

    #[test]
    fn only_modelled_fields_count_also_inside_list_items() {
        assert!(differing_fields(&model("c1d4"), &app("c1d4")).is_empty());
        assert_eq!(argo_diff(&model("c1d4"), &app("c1d4")), None);
    }

    #[test]
    fn an_upgrade_shows_the_revision_argo_cd_will_move_to() {
        assert_eq!(differing_fields(&model("0a9f"), &app("c1d4")), ["/spec/sources"]);
        let d = argo_diff(&model("0a9f"), &app("c1d4")).expect("a change");
        assert!(
            d.contains("-        \"targetRevision\": \"c1d4\"\n+        \"targetRevision\": \"0a9f\"\n"),
            "{d}"
        );
        assert!(!d.contains("valueFiles"), "unmodelled fields stay out: {d}");
    }

    #[test]
    fn a_single_source_is_a_one_item_list_and_templates_are_not_compared() {
        let live = json!({"spec": {"source": {"repoURL": "r", "targetRevision": "main", "path": "p"}, "project": "x"}});
        let m = json!({"spec": {"sources": [{"repoURL": "r", "targetRevision": "main", "path": "p"}], "project": "{{ templated }}"}});
        assert!(differing_fields(&m, &live).is_empty());
        let moved =
            json!({"spec": {"sources": [{"repoURL": "r", "targetRevision": "feature", "path": "p"}]}});
        assert_eq!(differing_fields(&moved, &live), ["/spec/sources"]);
    }

    #[test]
    fn lists_are_sets_and_a_missing_field_differs() {
        let m = json!({"spec": {"destinations": [{"server": "s", "namespace": "a"}, {"server": "s", "namespace": "b"}], "sourceRepos": ["x", "y"]}});
        let live = json!({"spec": {"destinations": [{"namespace": "b", "server": "s", "name": "n"}, {"server": "s", "namespace": "a"}], "sourceRepos": ["y", "x"]}});
        assert!(differing_fields(&m, &live).is_empty());
        let loosened =
            json!({"spec": {"destinations": [{"server": "*", "namespace": "*"}], "sourceRepos": ["y", "x"]}});
        assert_eq!(differing_fields(&m, &loosened), ["/spec/destinations"]);
        assert_eq!(differing_fields(&json!({"spec": {"project": "p"}}), &json!({})), ["/spec/project"]);
    }
}
