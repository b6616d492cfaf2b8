use crate::*;

#[test]
fn graph_formats() {
    let dot = mip(&["graph", "-i", "examples/mip-infra/mip.yaml", "--format", "dot"]);
    assert_eq!(code(&dot), 0);
    let d = stdout(&dot);
    assert!(d.starts_with("digraph mip {"));
    assert!(d.contains("label=\"project-first\""));
    assert!(d.contains("subgraph \"cluster_await-apps\""));
    let mm = stdout(&mip(&["graph", "-i", "examples/mip-infra/mip.yaml", "--format", "mermaid"]));
    assert!(mm.starts_with("flowchart LR\n"));
    assert!(mm.contains("-->|namespace-first|"));
    let js: serde_json::Value = serde_json::from_slice(
        &mip(&["graph", "-i", "examples/mip-infra/mip.yaml", "--format", "json"]).stdout,
    )
    .expect("json");
    assert_eq!(js["format_version"], "1");
    let nodes = js["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 19 + 38);
    assert_eq!(nodes[0]["address"], "argoproj.io/v1alpha1/AppProject/argocd-mip-team/default");
    assert!(js["edges"].as_array().expect("edges").iter().any(|e| e["rule"] == "generated-by"));
}
