use crate::*;

#[test]
fn examples_are_valid() {
    for ex in ["examples/mip-infra/mip.yaml", "examples/minimal/mip.yaml"] {
        let o = mip(&["validate", "-i", ex]);
        assert_eq!(code(&o), 0, "{ex}: {}", stderr(&o));
        assert!(stdout(&o).contains("is valid"));
    }
    let (_d, p) = temp_inventory(MINIMAL);
    let o = mip(&["validate", "-i", p.to_str().expect("utf8"), "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["valid"], true);
    assert_eq!(v["diagnostics"], serde_json::json!([]), "{v}");
}

#[test]
fn json_reports_every_diagnostic_of_an_invalid_inventory() {
    // Found by a new user: `-o json` printed nothing on stdout for an invalid inventory.
    let text = MINIMAL
        .replace("kind: local", "kind: lokal")
        .replace("argocd: {namespace: argocd}", "argocd: {namespace: argocd, colour: blue}");
    let (_d, p) = temp_inventory(&text);
    let o = mip(&["validate", "-i", p.to_str().expect("utf8"), "-o", "json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is the JSON report ({e}): {:?}", stdout(&o)));
    assert_eq!(v["format_version"], "1");
    assert_eq!(v["valid"], false, "{v}");
    let diags = v["diagnostics"].as_array().expect("diagnostics");
    let unknown = diags.iter().find(|d| d["code"] == "unknown-key").unwrap_or_else(|| panic!("{v}"));
    assert_eq!(unknown["severity"], "error");
    assert_eq!(unknown["file"], p.to_str().expect("utf8"));
    assert_eq!(unknown["line"], 3, "{unknown}");
    assert!(unknown["column"].as_u64().is_some_and(|c| c > 1), "{unknown}");
    assert!(unknown["message"].as_str().is_some_and(|m| m.contains("`argocd.colour`")), "{unknown}");
    let kind = diags.iter().find(|d| d["code"] == "invalid-value").unwrap_or_else(|| panic!("{v}"));
    assert!(kind["message"].as_str().is_some_and(|m| m.contains("found `lokal`")), "{kind}");
    assert!(v.get("objects").is_none(), "no objects for an invalid inventory: {v}");
}

#[test]
fn json_reports_the_warnings_of_a_valid_inventory() {
    // A mirror of a repository no app reads is a warning: valid, and reported with its place.
    let text = MINIMAL.to_owned()
        + "mirrors:\n  - {upstream: 'https://example.org/nothing.git', mirror: 'http://m.local/x.git'}\n";
    let (_d, p) = temp_inventory(&text);
    let o = mip(&["validate", "-i", p.to_str().expect("utf8"), "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["valid"], true, "{v}");
    let diags = v["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diags.len(), 1, "{v}");
    let w = &diags[0];
    assert_eq!(w["severity"], "warning", "{w}");
    assert_eq!(w["code"], "unused-mirror", "{w}");
    assert_eq!(w["line"], 12, "{w}");
    assert!(w["hint"].as_str().is_some_and(|h| h.contains("mip apps show")), "{w}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = MINIMAL
        .replace("kind: local", "kind: lokal")
        .replace("argocd: {namespace: argocd}", "argocd: {namespace: argocd, colour: blue}")
        + "  - {name: Federation-a, kind: local, cluster: nowhere}\n";
    let (_d, p) = temp_inventory(&text);
    let o = mip(&["validate", "-i", p.to_str().expect("utf8")]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains(
            "error[invalid-value]: `federations[0].kind` must be `local` or `hybrid`, found `lokal`"
        ),
        "{err}"
    );
    assert!(err.contains("error[unknown-key]: unknown key `argocd.colour`"), "{err}");
    assert!(err.contains("error[unknown-cluster]"), "{err}");
    assert!(err.contains("error[duplicate]: duplicate federation `Federation-a`"), "{err}");
    assert!(err.contains("nothing was written"));
}

#[test]
fn permission_checks_name_the_fix() {
    let text = MINIMAL.replace("upstreamRepos: ['https://github.com/madgik/exareme2']\n", "");
    let (_d, p) = temp_inventory(&text);
    let o = mip(&["validate", "-i", p.to_str().expect("utf8")]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("application `federation-a-exareme2` sources repository `https://github.com/madgik/exareme2`, which project `mip-argo-project-federation-a` does not permit (hint: add `https://github.com/madgik/exareme2` to `upstreamRepos`)"),
        "{err}"
    );
    assert!(err.contains("mip.yaml:9:53: error[not-permitted]"), "located at the app: {err}");
}

#[test]
fn prerequisite_problems_point_into_the_manifest() {
    let (dir, p) = temp_inventory(&(MINIMAL.to_owned() + "prerequisites:\n  - file: rbac.yaml\n"));
    std::fs::write(dir.path().join("rbac.yaml"), "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: x}\n").expect("w");
    let o = mip(&["validate", "-i", p.to_str().expect("utf8")]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("rbac.yaml:1:1: error[invalid-manifest]: `Role` `r` has no `metadata.namespace`"),
        "{err}"
    );
    assert!(
        err.contains("rbac.yaml:6:1: error[invalid-manifest]: Secret `s` in a prerequisite file"),
        "{err}"
    );
    let (_d2, p2) = temp_inventory(&(MINIMAL.to_owned() + "prerequisites:\n  - file: missing.yaml\n"));
    let o = mip(&["validate", "-i", p2.to_str().expect("utf8")]);
    assert!(stderr(&o).contains("error[missing-file]: cannot read prerequisite"), "{}", stderr(&o));
}
