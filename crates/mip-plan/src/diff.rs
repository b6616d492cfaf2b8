//! Diff of a desired manifest against a live object, on the fields mip owns.
//!
//! Server defaults, `status`, and fields of other managers never show as changes: the live
//! side is reduced to the fields recorded for field manager `mip` in `metadata.managedFields`
//! (the server's own bookkeeping of server-side apply), and the desired side to what mip
//! sends. Equal ⇒ no-op without asking the server anything. Secrets compare only their key
//! set, type and labels: values are never read into a plan.

use mip_core::{FIELD_MANAGER, canonical};
use serde_json::{Map, Value};

/// The fields of `live` that field manager `manager` owns through server-side apply, as a
/// partial object; `None` when the manager owns nothing.
pub fn owned_fields(live: &Value, manager: &str) -> Option<Value> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let mut merged: Option<Value> = None;
    for e in entries {
        if e.get("manager").and_then(Value::as_str) != Some(manager)
            || e.get("operation").and_then(Value::as_str) != Some("Apply")
        {
            continue;
        }
        if e.get("subresource").and_then(Value::as_str).is_some_and(|s| !s.is_empty()) {
            continue;
        }
        let Some(fields) = e.get("fieldsV1").and_then(Value::as_object) else { continue };
        if let Some(part) = extract(live, fields) {
            merged = Some(match merged {
                None => part,
                Some(prev) => merge(prev, part),
            });
        }
    }
    merged
}

fn merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut x), Value::Object(y)) => {
            for (k, v) in y {
                let nv = match x.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                x.insert(k, nv);
            }
            Value::Object(x)
        }
        (_, b) => b,
    }
}

/// Walks a `fieldsV1` set over a live value.
fn extract(live: &Value, fields: &Map<String, Value>) -> Option<Value> {
    // A leaf (`{}` or only `.`) owns the whole value.
    if fields.keys().all(|k| k == ".") {
        return Some(live.clone());
    }
    match live {
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, sub) in fields {
                let Some(name) = k.strip_prefix("f:") else { continue };
                let Some(child) = obj.get(name) else { continue };
                let sub = sub.as_object().cloned().unwrap_or_default();
                if let Some(v) = extract(child, &sub) {
                    out.insert(name.to_owned(), v);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                for (k, sub) in fields {
                    let sub = sub.as_object().cloned().unwrap_or_default();
                    let hit = if let Some(key) = k.strip_prefix("k:") {
                        serde_json::from_str::<Map<String, Value>>(key)
                            .is_ok_and(|want| want.iter().all(|(f, v)| item.get(f) == Some(v)))
                    } else if let Some(val) = k.strip_prefix("v:") {
                        serde_json::from_str::<Value>(val).is_ok_and(|v| &v == item)
                    } else {
                        false
                    };
                    if hit {
                        if let Some(v) = extract(item, &sub) {
                            out.push(v);
                        }
                        break;
                    }
                }
            }
            for (k, sub) in fields {
                if let Some(i) = k.strip_prefix("i:").and_then(|i| i.parse::<usize>().ok())
                    && let Some(item) = items.get(i)
                {
                    let sub = sub.as_object().cloned().unwrap_or_default();
                    out.extend(extract(item, &sub));
                }
            }
            Some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// What mip sends, without identity fields (`apiVersion`, `kind`, name, namespace), which are
/// implicit in an address and never appear in `managedFields`.
pub fn comparable(desired: &Value) -> Value {
    let mut v = desired.clone();
    strip_identity(&mut v);
    v
}

fn strip_identity(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("name");
            meta.remove("namespace");
            if meta.is_empty() {
                m.remove("metadata");
            }
        }
    }
}

/// The owned view of a Secret: labels, annotations, type and the *set* of keys (values
/// replaced by `(sensitive)`), from either a desired manifest (`stringData`) or a live one
/// (`data`).
pub fn secret_view(obj: &Value) -> Value {
    let mut keys: Vec<String> = Vec::new();
    for field in ["data", "stringData"] {
        if let Some(m) = obj.get(field).and_then(Value::as_object) {
            keys.extend(m.keys().cloned());
        }
    }
    keys.sort();
    keys.dedup();
    let mut out = Map::new();
    if let Some(meta) = obj.get("metadata") {
        let mut m = Map::new();
        for k in ["labels", "annotations"] {
            if let Some(v) = meta.get(k) {
                m.insert(k.to_owned(), v.clone());
            }
        }
        if !m.is_empty() {
            out.insert("metadata".into(), Value::Object(m));
        }
    }
    if let Some(t) = obj.get("type") {
        out.insert("type".into(), t.clone());
    }
    out.insert("keys".into(), Value::Array(keys.into_iter().map(Value::String).collect()));
    Value::Object(out)
}

/// The result of comparing one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDiff {
    /// Whether mip's fields differ.
    pub changed: bool,
    /// Unified diff of the owned view (`- live`, `+ desired`), empty when equal.
    pub text: String,
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(&canonical::canonicalize(v)).unwrap_or_default()
}

/// Compares desired with live on mip's fields. `is_secret` switches to [`secret_view`].
pub fn diff(desired: &Value, live: &Value, is_secret: bool) -> ObjectDiff {
    let (want, have) = if is_secret {
        (secret_view(desired), {
            let owned = owned_fields(live, FIELD_MANAGER).unwrap_or(Value::Object(Map::new()));
            let mut view = secret_view(&owned);
            // Keys come from the live object: a desired key is there whoever wrote it last, and
            // a key mip owns but no longer wants is one to remove. Keys only others write (a
            // token controller's `token`) are theirs, not a difference.
            let names = |v: &Value| -> Vec<String> {
                v["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            };
            let (wanted, mine) = (names(&secret_view(desired)), names(&view));
            let keys: Vec<Value> = names(&secret_view(live))
                .into_iter()
                .filter(|k| wanted.contains(k) || mine.contains(k))
                .map(Value::String)
                .collect();
            if let Some(m) = view.as_object_mut() {
                m.insert("keys".into(), Value::Array(keys));
            }
            view
        })
    } else {
        let mut have = owned_fields(live, FIELD_MANAGER).unwrap_or(Value::Object(Map::new()));
        strip_identity(&mut have);
        (comparable(desired), have)
    };
    if canonical::canonicalize(&want) == canonical::canonicalize(&have) {
        return ObjectDiff { changed: false, text: String::new() };
    }
    let (a, b) = (pretty(&have), pretty(&want));
    let text = similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .header("live (fields owned by mip)", "desired")
        .to_string();
    ObjectDiff { changed: true, text }
}

/// The fingerprint of the live state of an object as far as a plan depends on it: its uid and
/// mip's fields (status and other managers' fields excluded, so Argo CD's constant status
/// writes never make a plan stale).
pub fn live_fingerprint(live: &Value, is_secret: bool) -> String {
    let uid = live.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
    let owned = owned_fields(live, FIELD_MANAGER).unwrap_or(Value::Null);
    let owned = if is_secret { secret_view(&owned) } else { owned };
    let keys = if is_secret { secret_view(live)["keys"].clone() } else { Value::Null };
    canonical::digest(&serde_json::json!({ "uid": uid, "owned": owned, "keys": keys })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live_with(fields: Value, body: Value) -> Value {
        let mut v = body;
        v["metadata"]["managedFields"] = json!([
            { "manager": "mip", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields },
            { "manager": "argocd-server", "operation": "Update", "fieldsV1": { "f:spec": { "f:clusterResourceWhitelist": {} } } },
        ]);
        v
    }

    #[test]
    fn only_mips_fields_count() {
        let desired = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": { "name": "default", "namespace": "argocd", "labels": { "app.kubernetes.io/managed-by": "mip" } },
            "spec": { "sourceRepos": [], "destinations": [{ "server": "https://x", "namespace": "a" }] }
        });
        let live = live_with(
            json!({ "f:metadata": { "f:labels": { "f:app.kubernetes.io/managed-by": {} } },
                    "f:spec": { "f:sourceRepos": {}, "f:destinations": {} } }),
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
                "metadata": { "name": "default", "namespace": "argocd", "uid": "u1", "resourceVersion": "9",
                              "labels": { "app.kubernetes.io/managed-by": "mip", "other": "x" } },
                "spec": { "sourceRepos": [], "destinations": [{ "server": "https://x", "namespace": "a" }],
                          "clusterResourceWhitelist": [{ "group": "*", "kind": "*" }] },
                "status": { "jwtTokensByRole": {} }
            }),
        );
        let d = diff(&desired, &live, false);
        assert!(!d.changed, "{}", d.text);
        let mut changed = desired.clone();
        changed["spec"]["sourceRepos"] = json!(["https://evil"]);
        let d = diff(&changed, &live, false);
        assert!(d.changed);
        assert!(d.text.lines().any(|l| l.starts_with('+') && l.contains("https://evil")), "{}", d.text);
    }

    #[test]
    fn keyed_lists_and_value_sets() {
        let live = json!({
            "spec": { "containers": [{ "name": "a", "image": "x:1", "args": ["p", "q"] }, { "name": "b", "image": "y" }],
                      "finalizers": ["one", "two"] }
        });
        let fields = json!({ "f:spec": {
            "f:containers": { "k:{\"name\":\"a\"}": { ".": {}, "f:name": {}, "f:image": {} } },
            "f:finalizers": { "v:\"two\"": {} } } });
        let owned = extract(&live, fields.as_object().expect("map")).expect("owned");
        assert_eq!(
            owned,
            json!({ "spec": { "containers": [{ "name": "a", "image": "x:1" }], "finalizers": ["two"] } })
        );
    }

    #[test]
    fn secrets_compare_keys_never_values() {
        let desired = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "s", "namespace": "n" },
                              "type": "Opaque", "stringData": { "a": "", "b": "" } });
        let live = live_with(
            json!({ "f:type": {}, "f:data": { "f:a": {}, "f:b": {} } }),
            json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "s", "namespace": "n", "uid": "u" },
                    "type": "Opaque", "data": { "a": "c2VjcmV0MQ==", "b": "c2VjcmV0Mg==" } }),
        );
        let d = diff(&desired, &live, true);
        assert!(!d.changed, "{}", d.text);
        let mut more = desired.clone();
        more["stringData"]["c"] = json!("");
        let d = diff(&more, &live, true);
        assert!(d.changed);
        assert!(!d.text.contains("c2VjcmV0"), "a value leaked into the diff: {}", d.text);
        assert!(!live_fingerprint(&live, true).contains("c2VjcmV0"));
    }

    #[test]
    fn keys_only_another_manager_writes_are_not_a_difference() {
        // A ServiceAccount token Secret: mip writes its type and annotation, the token
        // controller its keys.
        let desired = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "t", "namespace": "n" },
                              "type": "kubernetes.io/service-account-token" });
        let live = live_with(
            json!({ "f:type": {} }),
            json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "t", "namespace": "n", "uid": "u" },
                    "type": "kubernetes.io/service-account-token", "data": { "token": "dG9rZW4=", "ca.crt": "Y2E=" } }),
        );
        let d = diff(&desired, &live, true);
        assert!(!d.changed, "{}", d.text);
        // A key mip owns and no longer wants still is one.
        let owned = live_with(
            json!({ "f:type": {}, "f:data": { "f:old": {} } }),
            json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "t", "namespace": "n", "uid": "u" },
                    "type": "kubernetes.io/service-account-token", "data": { "old": "eA==" } }),
        );
        assert!(diff(&desired, &owned, true).changed);
    }
}
