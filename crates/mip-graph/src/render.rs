//! Drawings of the DAG: Graphviz DOT, Mermaid and JSON. Pure string builders.

use crate::dag::Dag;
use crate::model::{Desired, Step};
use mip_core::{ObjectRef, Owner};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Version of the `mip graph --format json` document.
pub const GRAPH_FORMAT_VERSION: &str = "1";

fn ids(dag: &Dag) -> BTreeMap<&ObjectRef, String> {
    dag.order().enumerate().map(|(i, a)| (a, format!("n{i}"))).collect()
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz DOT, one cluster per step; Argo-owned objects dashed.
pub fn dot(desired: &Desired, dag: &Dag) -> String {
    let ids = ids(dag);
    let mut out = String::from("digraph mip {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n");
    for step in Step::ALL {
        let members: Vec<&ObjectRef> = dag.order().filter(|a| desired.objects[*a].step == step).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  subgraph \"cluster_{step}\" {{\n    label=\"{step}\";");
        for a in members {
            let o = &desired.objects[a];
            let style = if o.owner == Owner::ArgoCd { ", style=dashed" } else { "" };
            let _ = writeln!(out, "    {} [label=\"{}\\n{}\"{style}];", ids[a], esc(&a.kind), esc(&a.name));
        }
        out.push_str("  }\n");
    }
    for e in dag.edges() {
        let _ = writeln!(out, "  {} -> {} [label=\"{}\", fontsize=8];", ids[&e.from], ids[&e.to], e.rule);
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart (renders in GitHub and GitLab Markdown).
pub fn mermaid(desired: &Desired, dag: &Dag) -> String {
    let ids = ids(dag);
    let mut out = String::from("flowchart LR\n");
    for step in Step::ALL {
        let members: Vec<&ObjectRef> = dag.order().filter(|a| desired.objects[*a].step == step).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  subgraph {step}");
        for a in members {
            let o = &desired.objects[a];
            let label = format!("{} {}", a.kind, a.name).replace('"', "#quot;");
            if o.owner == Owner::ArgoCd {
                let _ = writeln!(out, "    {}([\"{label}\"])", ids[a]);
            } else {
                let _ = writeln!(out, "    {}[\"{label}\"]", ids[a]);
            }
        }
        out.push_str("  end\n");
    }
    for e in dag.edges() {
        let _ = writeln!(out, "  {} -->|{}| {}", ids[&e.from], e.rule, ids[&e.to]);
    }
    out
}

#[derive(Serialize)]
struct JsonNode<'a> {
    address: &'a ObjectRef,
    owner: Owner,
    step: Step,
    wave: usize,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    generated_by: Option<&'a ObjectRef>,
}

#[derive(Serialize)]
struct JsonGraph<'a> {
    format_version: &'static str,
    nodes: Vec<JsonNode<'a>>,
    edges: Vec<crate::dag::Edge>,
}

/// JSON: nodes in apply order (with their wave) and edges with their rule.
pub fn json(desired: &Desired, dag: &Dag) -> String {
    let waves: BTreeMap<ObjectRef, usize> =
        dag.waves().into_iter().enumerate().flat_map(|(i, w)| w.into_iter().map(move |a| (a, i))).collect();
    let nodes = dag
        .order()
        .map(|a| {
            let o = &desired.objects[a];
            JsonNode {
                address: a,
                owner: o.owner,
                step: o.step,
                wave: waves[a],
                reason: &o.reason,
                generated_by: o.generated_by.as_deref(),
            }
        })
        .collect();
    let doc = JsonGraph { format_version: GRAPH_FORMAT_VERSION, nodes, edges: dag.edges() };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
