//! Property tests of the DAG: any acyclic edge set is respected by the order, the order is
//! deterministic, and a cycle is reported with every object on it.

use mip_core::ObjectRef;
use mip_graph::{Dag, Edge, Rule, Step};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn node(i: usize) -> ObjectRef {
    ObjectRef::new("v1", "ConfigMap", Some("ns"), &format!("n{i:03}"))
}

fn nodes(n: usize) -> BTreeMap<ObjectRef, Step> {
    (0..n).map(|i| (node(i), Step::ALL[i % Step::ALL.len()])).collect()
}

proptest! {
    #[test]
    fn every_edge_is_respected(n in 1usize..40, raw in proptest::collection::vec((0usize..40, 0usize..40), 0..120)) {
        // Only forward edges (i < j in a random permutation-free numbering) make a DAG.
        let edges: Vec<Edge> = raw.into_iter()
            .filter(|(a, b)| a < b && *b < n)
            .map(|(a, b)| Edge { from: node(a), to: node(b), rule: Rule::GeneratedBy })
            .collect();
        let dag = Dag::from_edges(&nodes(n), edges.clone()).expect("acyclic by construction");
        prop_assert_eq!(dag.order().len(), n);
        let pos: BTreeMap<&ObjectRef, usize> = dag.order().enumerate().map(|(i, a)| (a, i)).collect();
        for e in &edges {
            prop_assert!(pos[&e.from] < pos[&e.to]);
        }
        // Waves: every edge goes to a later wave.
        let wave: BTreeMap<ObjectRef, usize> = dag.waves().into_iter().enumerate().flat_map(|(i, w)| w.into_iter().map(move |a| (a, i))).collect();
        for e in &edges {
            prop_assert!(wave[&e.from] < wave[&e.to]);
        }
        // Deterministic: the same input in another order gives the same order.
        let mut reversed = edges.clone();
        reversed.reverse();
        let again = Dag::from_edges(&nodes(n), reversed).expect("acyclic");
        prop_assert!(again.order().eq(dag.order()));
        // Positions are address order, and lookups by position agree with lookups by address.
        let sorted: Vec<ObjectRef> = nodes(n).into_keys().collect();
        for (position, addr) in dag.order_nodes() {
            prop_assert_eq!(&sorted[position], addr);
            prop_assert_eq!(dag.dependencies_at(position), dag.dependencies(addr));
        }
        prop_assert!(dag.dependencies_at(n).is_empty());
    }

    #[test]
    fn a_cycle_is_named(n in 2usize..20, extra in proptest::collection::vec((0usize..20, 0usize..20), 0..30)) {
        let mut edges: Vec<Edge> = (0..n).map(|i| Edge { from: node(i), to: node((i + 1) % n), rule: Rule::ProjectFirst }).collect();
        edges.extend(extra.into_iter().filter(|(a, b)| *a < n && *b < n).map(|(a, b)| Edge { from: node(a), to: node(b), rule: Rule::GeneratedBy }));
        let err = Dag::from_edges(&nodes(n), edges.clone()).expect_err("has a cycle");
        let cycle = &err.0;
        prop_assert!(cycle.len() >= 2);
        prop_assert_eq!(cycle.first(), cycle.last());
        // Consecutive members are joined by real edges.
        for w in cycle.windows(2) {
            prop_assert!(edges.iter().any(|e| e.from == w[0] && e.to == w[1]), "no edge {} -> {}", w[0], w[1]);
        }
        prop_assert!(err.to_string().starts_with("dependency cycle: `"));
    }
}
