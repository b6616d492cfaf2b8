//! The JSON contracts: `docs/schema/*.schema.json` are what `mip docs schema DIR` writes now
//! (derived from the Rust types that serialise each output), and real outputs match them.
//!
//! Real outputs are checked *strictly*: on top of the published schema, every object that
//! lists its properties gets `unevaluatedProperties: false`, so a field the output writes but
//! the schema does not name fails here. The published files stay open to added fields, as
//! version 1 promises ("fields are added, never renamed"), for readers validating newer output.
//! `MIP_UPDATE_DOCS=1` rewrites the files instead of failing on stale ones.

use super::*;
use std::collections::BTreeSet;

const INFRA: &str = "examples/mip-infra/mip.yaml";
const MINIMAL_EXAMPLE: &str = "examples/minimal/mip.yaml";

/// The published schema `name` (`docs/schema/NAME.schema.json`).
fn published(name: &str) -> serde_json::Value {
    let path = root().join("docs/schema").join(format!("{name}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `schema` made strict: `unevaluatedProperties: false` beside every `properties`, except
/// inside definitions that another object composes with its own properties (`$ref` beside
/// `properties`, as an internally tagged enum's newtype variant does): the composing object's
/// own `unevaluatedProperties` covers both.
fn strict(mut schema: serde_json::Value) -> serde_json::Value {
    fn composed(v: &serde_json::Value, into: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if map.contains_key("properties")
                    && let Some(r) = map.get("$ref").and_then(|r| r.as_str())
                {
                    into.insert(r.trim_start_matches("#/$defs/").to_owned());
                }
                map.values().for_each(|x| composed(x, into));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|x| composed(x, into)),
            _ => {}
        }
    }
    fn close(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                    map.insert("unevaluatedProperties".to_owned(), false.into());
                }
                map.values_mut().for_each(close);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(close),
            _ => {}
        }
    }
    let mut open = BTreeSet::new();
    composed(&schema, &mut open);
    let defs = schema.get_mut("$defs").and_then(|d| d.as_object_mut()).map(std::mem::take);
    close(&mut schema);
    if let Some(mut defs) = defs {
        for (name, def) in &mut defs {
            if !open.contains(name) {
                close(def);
            }
        }
        schema["$defs"] = serde_json::Value::Object(defs);
    }
    schema
}

/// Fails with every violation when `doc` does not match the published schema `name` (strictly).
pub fn assert_schema(name: &str, doc: &serde_json::Value) {
    let schema = strict(published(name));
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: bad schema: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("  at `{}`: {e} (schema: {})", e.instance_path(), e.schema_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "output does not match docs/schema/{name}.schema.json:\n{}",
        errors.join("\n")
    );
}

/// [`assert_schema`] for JSON Lines: every line is one document. Returns the documents.
pub fn assert_schema_lines(name: &str, text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let doc: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert_schema(name, &doc);
            doc
        })
        .collect()
}

/// stdout of a command as JSON.
fn json_out(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

#[test]
fn published_schemas_are_current() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = mip(&["docs", "schema", dir.path().to_str().expect("utf8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let listing = |d: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(d)
            .map(|r| r.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    let published_dir = root().join("docs/schema");
    let update = std::env::var_os("MIP_UPDATE_DOCS").is_some_and(|v| v == "1");
    let generated = listing(dir.path());
    if update {
        std::fs::create_dir_all(&published_dir).expect("mkdir");
        for stale in listing(&published_dir).difference(&generated) {
            std::fs::remove_file(published_dir.join(stale)).expect("remove a stale schema");
        }
    }
    let mut stale = Vec::new();
    for name in &generated {
        let fresh = std::fs::read_to_string(dir.path().join(name)).expect("generated");
        let committed = std::fs::read_to_string(published_dir.join(name)).unwrap_or_default();
        if fresh != committed {
            if update {
                std::fs::write(published_dir.join(name), &fresh).expect("write the schema");
            } else {
                stale.push(name.clone());
            }
        }
    }
    let extra: Vec<_> = listing(&published_dir).difference(&generated).cloned().collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "docs/schema is out of date (stale: {stale:?}, no longer generated: {extra:?}); run: \
         mip docs schema docs/schema (or MIP_UPDATE_DOCS=1 cargo test -p mip-cli --test cli -- schema::)"
    );
}

#[test]
fn offline_plans_and_saved_plans_match_the_plan_schema() {
    for inventory in [MINIMAL_EXAMPLE, INFRA] {
        let o = mip(&["plan", "--offline", "-i", inventory, "-o", "json"]);
        assert_eq!(code(&o), 0, "{inventory}: {}", stderr(&o));
        assert_schema("plan", &json_out(&o));
    }
    let dir = tempfile::tempdir().expect("tmp");
    let saved = dir.path().join("plan.mip");
    let o = mip(&["plan", "--offline", "-i", INFRA, "--out", saved.to_str().expect("utf8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = mip(&["show", saved.to_str().expect("utf8"), "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_schema("plan", &json_out(&o));
}

#[test]
fn validate_reports_match_the_validate_schema() {
    for inventory in [MINIMAL_EXAMPLE, INFRA] {
        let o = mip(&["validate", "-i", inventory, "-o", "json"]);
        assert_eq!(code(&o), 0, "{inventory}: {}", stderr(&o));
        assert_schema("validate", &json_out(&o));
    }
    let text = MINIMAL.replace("kind: local", "kind: lokal");
    let (_d, p) = temp_inventory(&text);
    let o = mip(&["validate", "-i", p.to_str().expect("utf8"), "-o", "json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let report = json_out(&o);
    assert_schema("validate", &report);
    assert_eq!(report["valid"], false, "{report}");
}

#[test]
fn version_matches_the_version_schema() {
    let o = mip(&["version", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_schema("version", &json_out(&o));
}
