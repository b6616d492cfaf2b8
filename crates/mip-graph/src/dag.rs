//! The dependency DAG and its ordering rules.
//!
//! **An edge `a → b` means "`b` happens after `a`"** (create/update order). Deletion walks the
//! same graph in reverse. Edges come only from the named [`Rule`]s below, each documented once
//! with why it exists; a cycle is an error that names every object on it.

use crate::Lookup;
use crate::model::{DesiredObject, Step};
use mip_core::{ObjectRef, Owner};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::sync::Arc;

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
    /// A ServiceAccount exists before its token Secret: the token controller deletes a token
    /// Secret whose ServiceAccount does not exist.
    AccountFirst,
    /// An object whose secret values are read from another Secret comes after that Secret: one
    /// mip writes (a registered cluster's token), or the Application Argo CD deploys into its
    /// namespace (Submariner's broker, whose credentials are carried to remote nodes).
    SourceFirst,
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
            Rule::AccountFirst => "account-first",
            Rule::SourceFirst => "source-first",
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
    /// Node `i` is the `i`-th address in sorted order, so an address's node is found by binary
    /// search and each address is kept once (60 000 objects at 10 000 federations).
    graph: DiGraph<Arc<ObjectRef>, Rule>,
    /// Apply order.
    order: Vec<NodeIndex>,
    /// Depth of each node, by node index.
    level: Vec<usize>,
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
    o.addr.group == mip_core::Kind::Application.group() && o.addr.kind == kind
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
pub fn rule_edges(objects: &BTreeMap<Arc<ObjectRef>, DesiredObject>) -> Vec<Edge> {
    let addrs: Vec<&ObjectRef> = objects.keys().map(|a| &**a).collect();
    index_edges(objects)
        .into_iter()
        .map(|(a, b, rule)| Edge { from: addrs[a].clone(), to: addrs[b].clone(), rule })
        .collect()
}

/// The lookup tables the rules read. Hashed: each object looks up its namespace, project,
/// parent and sources, and a B-tree descent compares up to six strings per step (at 90 000
/// objects that was a third of the DAG's time). Nothing iterates them in an order that shows:
/// the edges are sorted at the end.
struct Tables<'a> {
    all: Vec<&'a DesiredObject>,
    position: Lookup<&'a ObjectRef, usize>,
    roots: Vec<usize>,
    infra_roots: Vec<usize>,
    projects: Lookup<(&'a Option<String>, &'a Option<String>, &'a str), usize>,
    mip_projects: Vec<usize>,
    namespaces: Lookup<(&'a Option<String>, &'a str), usize>,
    deployers: Lookup<(&'a Option<String>, &'a str), usize>,
    crds: Lookup<(&'a str, &'a str), usize>,
}

impl<'a> Tables<'a> {
    fn of(objects: &'a BTreeMap<Arc<ObjectRef>, DesiredObject>) -> Self {
        let all: Vec<&DesiredObject> = objects.values().collect();
        let position: Lookup<&ObjectRef, usize> =
            objects.keys().enumerate().map(|(i, a)| (&**a, i)).collect();
        let roots: Vec<usize> = (0..all.len())
            .filter(|&i| all[i].owner == Owner::Mip && is_argo(all[i], "Application"))
            .collect();
        let infra_roots: Vec<usize> = roots.iter().copied().filter(|&i| all[i].step == Step::Infra).collect();
        let projects: Lookup<(&Option<String>, &Option<String>, &str), usize> = (0..all.len())
            .filter(|&i| is_argo(all[i], "AppProject"))
            .map(|i| ((&all[i].addr.cluster, &all[i].addr.namespace, all[i].addr.name.as_str()), i))
            .collect();
        let mip_projects: Vec<usize> =
            (0..all.len()).filter(|&i| is_argo(all[i], "AppProject") && all[i].owner == Owner::Mip).collect();
        let namespaces: Lookup<(&Option<String>, &str), usize> = (0..all.len())
            .filter(|&i| all[i].addr.is(mip_core::Kind::Namespace))
            .map(|i| ((&all[i].addr.cluster, all[i].addr.name.as_str()), i))
            .collect();
        // Where Argo CD deploys each of the Applications it generates: a Secret another tool makes
        // there (a chart's) comes from that Application.
        let deployers: Lookup<(&Option<String>, &str), usize> = (0..all.len())
            .filter(|&i| all[i].owner == Owner::ArgoCd && is_argo(all[i], "Application"))
            .filter_map(|i| Some(((&all[i].addr.cluster, all[i].str_at("/spec/destination/namespace")?), i)))
            .collect();
        let crds: Lookup<(&str, &str), usize> = (0..all.len())
            .filter(|&i| all[i].addr.is(mip_core::Kind::CustomResourceDefinition))
            .filter_map(|i| Some(((all[i].str_at("/spec/group")?, all[i].str_at("/spec/names/kind")?), i)))
            .collect();
        Tables { all, position, roots, infra_roots, projects, mip_projects, namespaces, deployers, crds }
    }
}

/// The rule edges as `(from, to, rule)` over node indices (the objects' positions in address
/// order), sorted and without duplicates. Working on indices keeps building the graph of
/// tens of thousands of objects cheap: no address is copied or compared per edge.
fn index_edges(objects: &BTreeMap<Arc<ObjectRef>, DesiredObject>) -> Vec<(usize, usize, Rule)> {
    let t = Tables::of(objects);
    let mut edges: Vec<(usize, usize, Rule)> = Vec::new();
    let mut add = |from: usize, to: usize, rule| {
        if from != to {
            edges.push((from, to, rule));
        }
    };
    for (i, o) in t.all.iter().enumerate() {
        ordering_edges(&t, i, o, &mut add);
        bootstrap_edges(&t, i, o, &mut add);
    }
    edges.sort_unstable();
    edges.dedup();
    edges
}

/// The rules that put what an object needs before it: default project, namespace, CRD,
/// project, role, account, source, parent.
fn ordering_edges(t: &Tables<'_>, i: usize, o: &DesiredObject, add: &mut impl FnMut(usize, usize, Rule)) {
    // default-project-first
    if o.step == Step::DefaultProject {
        for &p in &t.mip_projects {
            add(i, p, Rule::DefaultProjectFirst);
        }
    }
    // namespace-first (mip-owned objects only: Argo CD creates its own namespaces)
    if o.owner == Owner::Mip
        && let Some(&n) =
            o.addr.namespace.as_ref().and_then(|ns| t.namespaces.get(&(&o.addr.cluster, ns.as_str())))
    {
        add(n, i, Rule::NamespaceFirst);
    }
    // crd-first
    if let Some(&crd) = t.crds.get(&(o.addr.group.as_str(), o.addr.kind.as_str())) {
        add(crd, i, Rule::CrdFirst);
    }
    // project-first
    if let Some(&proj) = project_of(o).and_then(|p| t.projects.get(&(&o.addr.cluster, &o.addr.namespace, p)))
    {
        add(proj, i, Rule::ProjectFirst);
    }
    // role-first
    if o.addr.group == "rbac.authorization.k8s.io"
        && o.addr.kind.ends_with("Binding")
        && let (Some(kind), Some(name)) = (o.str_at("/roleRef/kind"), o.str_at("/roleRef/name"))
    {
        let role = ObjectRef {
            cluster: o.addr.cluster.clone(),
            group: "rbac.authorization.k8s.io".into(),
            version: "v1".into(),
            kind: kind.to_owned(),
            namespace: if kind == "Role" { o.addr.namespace.clone() } else { None },
            name: name.to_owned(),
        };
        if let Some(&r) = t.position.get(&role) {
            add(r, i, Rule::RoleFirst);
        }
    }
    // account-first
    if o.addr.is_secret()
        && o.str_at("/type") == Some("kubernetes.io/service-account-token")
        && let Some(sa) = o.str_at("/metadata/annotations/kubernetes.io~1service-account.name")
    {
        let account = ObjectRef::new("v1", "ServiceAccount", o.addr.namespace.as_deref(), sa)
            .on_cluster(o.addr.cluster.as_deref());
        if let Some(&a) = t.position.get(&account) {
            add(a, i, Rule::AccountFirst);
        }
    }
    // source-first
    for source in o.sensitive.values().filter_map(mip_core::SensitiveSource::reads) {
        let made_by = source.namespace.as_deref().and_then(|ns| t.deployers.get(&(&source.cluster, ns)));
        if let Some(&s) = t.position.get(source).or(made_by) {
            add(s, i, Rule::SourceFirst);
        }
    }
    // generated-by
    if let Some(&parent) = o.generated_by.as_deref().and_then(|p| t.position.get(p)) {
        add(parent, i, Rule::GeneratedBy);
    }
}

/// What a bootstrap object comes before: credentials and everything else of the bootstrap
/// before the root Applications; generated projects before the infrastructure root.
fn bootstrap_edges(t: &Tables<'_>, i: usize, o: &DesiredObject, add: &mut impl FnMut(usize, usize, Rule)) {
    if o.owner == Owner::Mip && o.step == Step::Bootstrap {
        match o.str_at("/metadata/labels/argocd.argoproj.io~1secret-type") {
            // credentials-first
            Some("repository") => t.roots.iter().for_each(|&r| add(i, r, Rule::CredentialsFirst)),
            Some("cluster") => t.infra_roots.iter().for_each(|&r| add(i, r, Rule::CredentialsFirst)),
            // bootstrap-before-infra
            _ if !is_argo(o, "AppProject") => {
                t.infra_roots.iter().for_each(|&r| add(i, r, Rule::BootstrapBeforeInfra))
            }
            _ => {}
        }
    }
    // projects-before-infra
    if o.owner == Owner::ArgoCd && o.step == Step::AwaitProjects && is_argo(o, "AppProject") {
        t.infra_roots.iter().for_each(|&r| add(i, r, Rule::ProjectsBeforeInfra));
    }
}

impl Dag {
    /// Builds the DAG of a desired state from the built-in rules.
    ///
    /// # Errors
    /// [`CycleError`] naming the objects of a cycle.
    pub fn build(objects: &BTreeMap<Arc<ObjectRef>, DesiredObject>) -> Result<Self, CycleError> {
        // Shared with the desired state: each address is kept once.
        let addrs: Vec<Arc<ObjectRef>> = objects.keys().cloned().collect();
        let steps: Vec<Step> = objects.values().map(|o| o.step).collect();
        Self::from_indexed(addrs, steps, index_edges(objects))
    }

    /// Builds a DAG from nodes (with their step, used to break ties) and edges.
    ///
    /// # Errors
    /// [`CycleError`] naming the objects of a cycle.
    pub fn from_edges(nodes: &BTreeMap<ObjectRef, Step>, edges: Vec<Edge>) -> Result<Self, CycleError> {
        let addrs: Vec<Arc<ObjectRef>> = nodes.keys().map(|a| Arc::new(a.clone())).collect();
        let steps: Vec<Step> = nodes.values().copied().collect();
        let position: BTreeMap<&ObjectRef, usize> =
            addrs.iter().enumerate().map(|(i, a)| (&**a, i)).collect();
        let mut indexed: Vec<(usize, usize, Rule)> = edges
            .iter()
            .filter_map(|e| Some((*position.get(&e.from)?, *position.get(&e.to)?, e.rule)))
            .collect();
        indexed.sort_unstable();
        indexed.dedup();
        Self::from_indexed(addrs, steps, indexed)
    }

    /// `addrs` sorted (so a node's index orders like its address), `steps` parallel to it.
    fn from_indexed(
        addrs: Vec<Arc<ObjectRef>>,
        steps: Vec<Step>,
        edges: Vec<(usize, usize, Rule)>,
    ) -> Result<Self, CycleError> {
        let mut graph: DiGraph<Arc<ObjectRef>, Rule> = DiGraph::with_capacity(addrs.len(), edges.len());
        for a in addrs {
            graph.add_node(a);
        }
        for (a, b, rule) in edges {
            graph.add_edge(NodeIndex::new(a), NodeIndex::new(b), rule);
        }
        // Kahn's algorithm with a sorted ready-set: the order is a pure function of the graph
        // (step first, then address — node indices sort like addresses), never of insertion
        // or hash order.
        let n = graph.node_count();
        let mut indegree: Vec<usize> =
            graph.node_indices().map(|v| graph.neighbors_directed(v, petgraph::Incoming).count()).collect();
        let mut ready: BinaryHeap<Reverse<(Step, usize)>> =
            (0..n).filter(|&v| indegree[v] == 0).map(|v| Reverse((steps[v], v))).collect();
        let mut order_idx: Vec<usize> = Vec::with_capacity(n);
        let mut level: Vec<usize> = vec![0; n];
        while let Some(Reverse((_, v))) = ready.pop() {
            let node = NodeIndex::new(v);
            level[v] = graph
                .neighbors_directed(node, petgraph::Incoming)
                .map(|p| level[p.index()] + 1)
                .max()
                .unwrap_or(0);
            order_idx.push(v);
            for m in graph.neighbors_directed(node, petgraph::Outgoing) {
                indegree[m.index()] -= 1;
                if indegree[m.index()] == 0 {
                    ready.push(Reverse((steps[m.index()], m.index())));
                }
            }
        }
        if order_idx.len() != n {
            return Err(CycleError(find_cycle(&graph, &indegree)));
        }
        let order = order_idx.into_iter().map(NodeIndex::new).collect();
        Ok(Dag { graph, order, level })
    }

    /// Every object in apply order (deterministic).
    pub fn order(&self) -> impl DoubleEndedIterator<Item = &ObjectRef> + ExactSizeIterator + '_ {
        self.order.iter().map(|n| &*self.graph[*n])
    }

    /// [`Dag::order`] with each object's node: its position in address order, i.e. in the
    /// iteration order of the map the DAG was [built](Dag::build) from, so callers can look
    /// objects up by position instead of by address.
    pub fn order_nodes(&self) -> impl Iterator<Item = (usize, &ObjectRef)> + '_ {
        self.order.iter().map(|n| (n.index(), &*self.graph[*n]))
    }

    /// [`Dag::dependencies`] of the node at `position` (see [`Dag::order_nodes`]).
    pub fn dependencies_at(&self, position: usize) -> Vec<(ObjectRef, Rule)> {
        if position >= self.graph.node_count() {
            return Vec::new();
        }
        self.dependencies_of(NodeIndex::new(position))
    }

    /// Objects grouped by depth: everything in one wave may run in parallel once the
    /// previous waves are done.
    pub fn waves(&self) -> Vec<Vec<ObjectRef>> {
        let mut waves: Vec<Vec<ObjectRef>> = Vec::new();
        for n in &self.order {
            let (a, l) = (&*self.graph[*n], self.level[n.index()]);
            if waves.len() <= l {
                waves.resize_with(l + 1, Vec::new);
            }
            waves[l].push(a.clone());
        }
        waves
    }

    /// The node of an address (binary search: nodes are in address order).
    fn node(&self, addr: &ObjectRef) -> Option<NodeIndex> {
        let (mut lo, mut hi) = (0, self.graph.node_count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match (*self.graph[NodeIndex::new(mid)]).cmp(addr) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(NodeIndex::new(mid)),
            }
        }
        None
    }

    /// Every edge, sorted.
    pub fn edges(&self) -> Vec<Edge> {
        let mut v: Vec<Edge> = self
            .graph
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = self.graph.edge_endpoints(e)?;
                Some(Edge {
                    from: (*self.graph[a]).clone(),
                    to: (*self.graph[b]).clone(),
                    rule: self.graph[e],
                })
            })
            .collect();
        v.sort();
        v
    }

    /// Direct predecessors of an object, with the rule.
    pub fn dependencies(&self, addr: &ObjectRef) -> Vec<(ObjectRef, Rule)> {
        let Some(n) = self.node(addr) else { return Vec::new() };
        self.dependencies_of(n)
    }

    fn dependencies_of(&self, n: NodeIndex) -> Vec<(ObjectRef, Rule)> {
        let mut v: Vec<(ObjectRef, Rule)> = self
            .graph
            .edges_directed(n, petgraph::Incoming)
            .map(|e| ((*self.graph[petgraph::visit::EdgeRef::source(&e)]).clone(), *e.weight()))
            .collect();
        v.sort();
        v
    }
}

/// A cycle among the nodes Kahn's algorithm could not order (all have indegree > 0).
fn find_cycle(graph: &DiGraph<Arc<ObjectRef>, Rule>, indegree: &[usize]) -> Vec<ObjectRef> {
    let stuck: BTreeSet<NodeIndex> = graph.node_indices().filter(|n| indegree[n.index()] > 0).collect();
    // Every stuck node has a stuck predecessor; walking predecessors must revisit a node.
    let Some(&start) = stuck.iter().min_by_key(|n| &graph[**n]) else { return Vec::new() };
    let mut seen: BTreeMap<NodeIndex, usize> = BTreeMap::new();
    let mut path = vec![start];
    let mut cur = start;
    loop {
        seen.insert(cur, path.len() - 1);
        let Some(prev) = graph
            .neighbors_directed(cur, petgraph::Incoming)
            .filter(|p| stuck.contains(p))
            .min_by_key(|p| &graph[*p])
        else {
            break;
        };
        if let Some(&i) = seen.get(&prev) {
            let mut cycle: Vec<ObjectRef> = path[i..].iter().rev().map(|n| (*graph[*n]).clone()).collect();
            cycle.push((*graph[prev]).clone());
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
    path.iter().map(|n| (*graph[*n]).clone()).collect()
}
