//! The generator and the emitter produce what the parsers accept (N=2). No timing is asserted:
//! benchmarks are not tests.

use serde_json::Value;

#[test]
fn generated_inventory_and_emitted_objects_parse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inventory = mip_bench::generate::write(dir.path(), 2).expect("generate");
    let yaml = mip_bench::emit::objects(&inventory).expect("emit (the real loader accepts the inventory)");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).expect("the emitted YAML parses");
    let named = |kind: &str, namespace: Option<&str>, name: &str| {
        docs.iter().any(|d| {
            d["kind"] == kind
                && d["metadata"]["name"] == name
                && d["metadata"]["namespace"].as_str() == namespace
        })
    };
    for fed in ["federation-00001", "federation-00002"] {
        assert!(named("Namespace", None, fed), "namespace {fed} missing");
        for secret in ["keycloak-credentials", "mip-secret"] {
            assert!(named("Secret", Some(fed), secret), "{fed}/{secret} missing");
        }
    }
    // Secrets carry dummy values, never empty ones; namespaces come before what lives in them.
    for d in docs.iter().filter(|d| d["kind"] == "Secret") {
        let data = d["stringData"].as_object().expect("stringData");
        assert!(data.values().all(|v| v.as_str().is_some_and(|s| !s.is_empty())), "{d}");
        let ns = d["metadata"]["namespace"].as_str().expect("namespace");
        let ns_at = docs.iter().position(|x| x["kind"] == "Namespace" && x["metadata"]["name"] == ns);
        let at = docs.iter().position(|x| x == d);
        assert!(ns_at.is_none() || ns_at < at, "{ns} after its Secret");
    }
    assert_eq!(yaml, mip_bench::emit::objects(&inventory).expect("emit again"), "emit is deterministic");
}
