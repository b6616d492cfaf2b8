//! `mip apps list|show`: the effective catalogue, an app the inventory defines, a built-in one
//! it overrides, and a federation's pin.

use crate::*;

/// The infra repository for both; an app defined, a built-in one overridden, one pinned.
fn inventory() -> String {
    Inventory::new("argocd")
        .repositories("https://example.org/infra.git", "https://example.org/infra.git")
        .yaml(
            "apps:
  exareme2:
    description: Exareme2 at the team's tested commit
  monitoring:
    scope: common
    namespace: monitoring
    applications:
      - name: prometheus
        project: mip-argo-project-common
        source: {repo: infra, path: common/monitoring/manifests}
commonApps:
  - name: monitoring
",
        )
        .federation(Federation::local("federation-A").app(App::new("exareme2").target_revision("0a9f1e2d")))
        .federation(Federation::local("federation-B").apps(&["exareme2"]))
        .to_yaml()
}

#[test]
fn apps_list_and_show_print_the_effective_catalogue() {
    let (_dir, inv) = temp_inventory(&inventory());
    let inv = inv.to_str().expect("utf8");
    let o = mip(&["apps", "list", "-i", inv, "--output", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(doc["format_version"], "1");
    let app = |name: &str| {
        doc["apps"].as_array().expect("apps").iter().find(|a| a["name"] == name).cloned().expect(name)
    };
    assert_eq!(app("monitoring")["origin"], "inventory");
    assert_eq!(app("exareme2")["origin"], "built-in, overridden");
    assert_eq!(app("exareme2")["description"], "Exareme2 at the team's tested commit");
    let used = app("exareme2")["used"].as_array().cloned().expect("used");
    assert_eq!(used.len(), 2);
    assert_eq!(used[0]["version"], "0a9f1e2d");
    assert!(used[0]["pinned_at"].as_str().expect("pin").ends_with("mip.yaml:24:45"), "{used:?}");
    assert_eq!(used[1]["version"], "c1d4eb3d9d90edcf868a3a6395cc37b19c934e66");
    assert!(used[1]["pinned_at"].is_null());
    assert_eq!(app("submariner")["used"], serde_json::json!([]));

    let o = mip(&["apps", "show", "exareme2", "-i", inv]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("# exareme2 (built-in, overridden)\n"), "{out}");
    assert!(out.contains("# federation `federation-A`: 0a9f1e2d (pinned at "), "{out}");
    assert!(out.contains("targetRevision: c1d4eb3d9d90edcf868a3a6395cc37b19c934e66"), "{out}");
    let o = mip(&["apps", "show", "mip-stack", "-i", inv, "--output", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(doc["definition"]["secrets"]["mip-secret"]["gateway-db.DB_ADMIN_USER"], "generate");
    let o = mip(&["apps", "show", "grafana", "-i", inv]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("no app `grafana` in the catalogue (hint: known apps: datacatalog,"),
        "{}",
        stderr(&o)
    );
}
