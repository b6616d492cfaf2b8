//! The dependency DAG and its ordering rules.
//!
//! **An edge `a → b` means "`b` happens after `a`"** (create/update order). Deletion walks the
//! same graph in reverse. Edges come only from the named [`Rule`]s below, each documented once
//! with why it exists; a cycle is an error that names every object on it.

use crate::model::{DesiredObject, Step};
use mip_core::{ObjectRef, Owner};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;

/// Why one object must come after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The `default` project is locked down before any other project exists, so nothing is
    /// ever created while it still permits everything.
    DefaultProjectFirst,
    /// A namespace exists before objects in it (the API server rejects them otherwise).
    NamespaceFirst,
    /// A CRD is established before its custom resources (no kind to create otherwise).
    CrdFirst,
    /// An AppProject exists before Applications and ApplicationSets that use it: Argo CD
    /// marks an app whose project is missing `InvalidSpecError` and does not retry a failed
    /// auto-sync.
    ProjectFirst,
    /// A Role or ClusterRole exists before the bindings that reference it.
    RoleFirst,
    /// Repository and cluster credentials exist before the Applications that need them
    /// (a cluster must exist before it appears in the infrastructure list generator).
    CredentialsFirst,
    /// Prerequisites, namespaces and secrets exist before the infrastructure, so that no
    /// generated app hangs waiting for a secret.
    BootstrapBeforeInfra,
    /// Every expected AppProject exists before the infrastructure root is applied: the
    /// infrastructure apps reference federation projects.
    ProjectsBeforeInfra,
    /// Argo CD generates the object from its parent (an Application or ApplicationSet).
    GeneratedBy,
}

impl Rule {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::DefaultProjectFirst => "default-project-first",
            Rule::NamespaceFirst => "namespace-first",
            Rule::CrdFirst => "crd-first",
            Rule::ProjectFirst => "project-first",
            Rule::RoleFirst => "role-first",
            Rule::CredentialsFirst => "credentials-first",
            Rule::BootstrapBeforeInfra => "bootstrap-before-infra",
            Rule::ProjectsBeforeInfra => "projects-before-infra",
            Rule::GeneratedBy => "generated-by",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dependency cycle, with the objects on it in order (the first is repeated at the end).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {}", .0.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(" → "))]
pub struct CycleError(pub Vec<ObjectRef>);

/// The ordered dependency graph of a desired state.
#[derive(Debug, Clone)]
pub struct Dag {
    graph: DiGraph<ObjectRef, Rule>,
    index: BTreeMap<ObjectRef, NodeIndex>,
    order: Vec<ObjectRef>,
    level: BTreeMap<ObjectRef, usize>,
}

/// One edge, for output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    /// Happens first.
    pub from: ObjectRef,
    /// Happens after.
    pub to: ObjectRef,
    /// Why.
    pub rule: Rule,
}

fn is_argo(o: &DesiredObject, kind: &str) -> bool {
    o.addr.group == "argoproj.io" && o.addr.kind == kind
}

fn project_of(o: &DesiredObject) -> Option<&str> {
    if is_argo(o, "Application") {
        o.str_at("/spec/project")
    } else if is_argo(o, "ApplicationSet") {
        o.str_at("/spec/template/spec/project")
    } else {
        None
    }
}

/// Computes the edges of every rule over a set of objects.
pub fn rule_edges(objects: &BTreeMap<ObjectRef, DesiredObject>) -> Vec<Edge> {
    let mut edges = BTreeSet::new();
    let mut add = |from: &ObjectRef, to: &ObjectRef, rule| {
        if from != to {
            edges.insert(Edge { from: from.clone(), to: to.clone(), rule });
        }
    };
    let roots: Vec<&DesiredObject> =
        objects.values().filter(|o| o.owner == Owner::Mip && is_argo(o, "Application")).collect();
    let infra_roots: Vec<&DesiredObject> = roots.iter().copied().filter(|o| o.step == Step::Infra).collect();
    let projects: BTreeMap<(&Option<String>, &Option<String>, &str), &DesiredObject> = objects
        .values()
        .filter(|o| is_argo(o, "AppProject"))
        .map(|o| ((&o.addr.cluster, &o.addr.namespace, o.addr.name.as_str()), o))
        .collect();
    let namespaces: BTreeMap<(&Option<String>, &str), &DesiredObject> = objects
        .values()
        .filter(|o| o.addr.group.is_empty() && o.addr.kind == "Namespace")
        .map(|o| ((&o.addr.cluster, o.addr.name.as_str()), o))
        .collect();
    let crds: BTreeMap<(String, String), &DesiredObject> = objects
        .values()
        .filter(|o| o.addr.kind == "CustomResourceDefinition")
        .filter_map(|o| Some(((o.str_at("/spec/group")?.to_owned(), o.str_at("/spec/names/kind")?.to_owned()), o)))
        .collect();

    for o in objects.values() {
        // default-project-first
        if o.step == Step::DefaultProject {
            for p in projects.values().filter(|p| p.addr != o.addr && p.owner == Owner::Mip) {
                add(&o.addr, &p.addr, Rule::DefaultProjectFirst);
            }
        }
        // namespace-first (mip-owned objects only: Argo CD creates its own namespaces)
        if o.owner == Owner::Mip
            && let Some(ns) = &o.addr.namespace
                && let Some(n) = namespaces.get(&(&o.addr.cluster, ns.as_str())) {
                    add(&n.addr, &o.addr, Rule::NamespaceFirst);
                }
        // crd-first
        if let Some(crd) = crds.get(&(o.addr.group.clone(), o.addr.kind.clone())) {
            add(&crd.addr, &o.addr, Rule::CrdFirst);
        }
        // project-first
        if let Some(p) = project_of(o)
            && let Some(proj) = projects.get(&(&o.addr.cluster, &o.addr.namespace, p)) {
                add(&proj.addr, &o.addr, Rule::ProjectFirst);
            }
        // role-first
        if o.addr.group == "rbac.authorization.k8s.io" && o.addr.kind.ends_with("Binding")
            && let (Some(kind), Some(name)) = (o.str_at("/roleRef/kind"), o.str_at("/roleRef/name")) {
                let ns = if kind == "Role" { o.addr.namespace.clone() } else { None };
                let role = mip_core::ObjectRef {
                    cluster: o.addr.cluster.clone(),
                    group: "rbac.authorization.k8s.io".into(),
                    version: "v1".into(),
                    kind: kind.to_owned(),
                    namespace: ns,
                    name: name.to_owned(),
                };
                if objects.contains_key(&role) {
                    add(&role, &o.addr, Rule::RoleFirst);
                }
            }
        // generated-by
        if let Some(parent) = &o.generated_by
            && objects.contains_key(parent) {
                add(parent, &o.addr, Rule::GeneratedBy);
            }
        if o.owner == Owner::Mip && o.step == Step::Bootstrap {
            let secret_type = o.str_at("/metadata/labels/argocd.argoproj.io~1secret-type");
            match secret_type {
                // credentials-first
                Some("repository") => roots.iter().for_each(|r| add(&o.addr, &r.addr, Rule::CredentialsFirst)),
                Some("cluster") => infra_roots.iter().for_each(|r| add(&o.addr, &r.addr, Rule::CredentialsFirst)),
                // bootstrap-before-infra
                _ if !is_argo(o, "AppProject") => {
                    infra_roots.iter().for_each(|r| add(&o.addr, &r.addr, Rule::BootstrapBeforeInfra));
                }
                _ => {}
            }
        }
        // projects-before-infra
        if o.owner == Owner::ArgoCd && o.step == Step::AwaitProjects && is_argo(o, "AppProject") {
            infra_roots.iter().for_each(|r| add(&o.addr, &r.addr, Rule::ProjectsBeforeInfra));
        }
    }
    edges.into_iter().collect()
}

impl Dag {
    /// Builds the DAG of a desired state from the built-in rules.
    ///
    /// # Errors
    /// [`CycleError`] naming the objects of a cycle.
    pub fn build(objects: &BTreeMap<ObjectRef, DesiredObject>) -> Result<Self, CycleError> {
        let steps: BTreeMap<ObjectRef, Step> = objects.iter().map(|(a, o)| (a.clone(), o.step)).collect();
        Self::from_edges(&steps, rule_edges(objects))
    }

    /// Builds a DAG from nodes (with their step, used to break ties) and edges.
    ///
    /// # Errors
    /// [`CycleError`] naming the objects of a cycle.
    pub fn from_edges(nodes: &BTreeMap<ObjectRef, Step>, edges: Vec<Edge>) -> Result<Self, CycleError> {
        let mut graph = DiGraph::new();
        let mut index = BTreeMap::new();
        for addr in nodes.keys() {
            index.insert(addr.clone(), graph.add_node(addr.clone()));
        }
        for e in edges {
            if let (Some(&a), Some(&b)) = (index.get(&e.from), index.get(&e.to)) {
                graph.add_edge(a, b, e.rule);
            }
        }
        // Kahn's algorithm with a sorted ready-set: the order is a pure function of the
        // graph (step first, then address), never of insertion or hash order.
        let mut indegree: Vec<usize> = graph.node_indices().map(|n| graph.neighbors_directed(n, petgraph::Incoming).count()).collect();
        let key = |n: NodeIndex| (nodes[&graph[n]], graph[n].clone(), n);
        let mut ready: BinaryHeap<Reverse<(Step, ObjectRef, NodeIndex)>> =
            graph.node_indices().filter(|n| indegree[n.index()] == 0).map(|n| Reverse(key(n))).collect();
        let mut order = Vec::with_capacity(graph.node_count());
        let mut level: BTreeMap<ObjectRef, usize> = BTreeMap::new();
        while let Some(Reverse((_, addr, n))) = ready.pop() {
            let lvl = graph.neighbors_directed(n, petgraph::Incoming).map(|p| level[&graph[p]] + 1).max().unwrap_or(0);
            level.insert(addr.clone(), lvl);
            order.push(addr);
            for m in graph.neighbors_directed(n, petgraph::Outgoing) {
                indegree[m.index()] -= 1;
                if indegree[m.index()] == 0 {
                    ready.push(Reverse(key(m)));
                }
            }
        }
        if order.len() != graph.node_count() {
            return Err(CycleError(find_cycle(&graph, &indegree)));
        }
        Ok(Dag { graph, index, order, level })
    }

    /// Every object in apply order (deterministic).
    pub fn order(&self) -> &[ObjectRef] {
        &self.order
    }

    /// Objects grouped by depth: everything in one wave may run in parallel once the
    /// previous waves are done.
    pub fn waves(&self) -> Vec<Vec<ObjectRef>> {
        let mut waves: Vec<Vec<ObjectRef>> = Vec::new();
        for a in &self.order {
            let l = self.level[a];
            if waves.len() <= l {
                waves.resize_with(l + 1, Vec::new);
            }
            waves[l].push(a.clone());
        }
        waves
    }

    /// Every edge, sorted.
    pub fn edges(&self) -> Vec<Edge> {
        let mut v: Vec<Edge> = self
            .graph
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = self.graph.edge_endpoints(e)?;
                Some(Edge { from: self.graph[a].clone(), to: self.graph[b].clone(), rule: self.graph[e] })
            })
            .collect();
        v.sort();
        v
    }

    /// Direct predecessors of an object, with the rule.
    pub fn dependencies(&self, addr: &ObjectRef) -> Vec<(ObjectRef, Rule)> {
        let Some(&n) = self.index.get(addr) else { return Vec::new() };
        let mut v: Vec<(ObjectRef, Rule)> = self
            .graph
            .edges_directed(n, petgraph::Incoming)
            .map(|e| (self.graph[petgraph::visit::EdgeRef::source(&e)].clone(), *e.weight()))
            .collect();
        v.sort();
        v
    }
}

/// A cycle among the nodes Kahn's algorithm could not order (all have indegree > 0).
fn find_cycle(graph: &DiGraph<ObjectRef, Rule>, indegree: &[usize]) -> Vec<ObjectRef> {
    let stuck: BTreeSet<NodeIndex> = graph.node_indices().filter(|n| indegree[n.index()] > 0).collect();
    // Every stuck node has a stuck predecessor; walking predecessors must revisit a node.
    let Some(&start) = stuck.iter().min_by_key(|n| &graph[**n]) else { return Vec::new() };
    let mut seen: BTreeMap<NodeIndex, usize> = BTreeMap::new();
    let mut path = vec![start];
    let mut cur = start;
    loop {
        seen.insert(cur, path.len() - 1);
        let Some(prev) = graph.neighbors_directed(cur, petgraph::Incoming).filter(|p| stuck.contains(p)).min_by_key(|p| &graph[*p])
        else {
            break;
        };
        if let Some(&i) = seen.get(&prev) {
            let mut cycle: Vec<ObjectRef> = path[i..].iter().rev().map(|n| graph[*n].clone()).collect();
            cycle.push(graph[prev].clone());
            // Rotate so the smallest address leads (stable message), then close the loop.
            let body = &cycle[..cycle.len() - 1];
            let min = body.iter().enumerate().min_by_key(|(_, a)| *a).map_or(0, |(i, _)| i);
            let mut rotated: Vec<ObjectRef> = body[min..].iter().chain(&body[..min]).cloned().collect();
            rotated.push(rotated[0].clone());
            return rotated;
        }
        path.push(prev);
        cur = prev;
    }
    path.iter().map(|n| graph[*n].clone()).collect()
}
