//! Review safety, as pure checks of a plan: which deletions an unattended apply must refuse
//! (Terraform's `prevent_destroy`, here on by default for namespaces and Secrets), and
//! `--target`, which narrows a plan to some objects and what they depend on.

use crate::model::{Change, Plan, Summary};
use mip_core::{Action, ObjectRef};
use std::collections::BTreeSet;

/// Kinds whose deletion needs `--allow-delete` in an unattended apply when the inventory has no
/// `protect:` list: a namespace holds a federation's workloads and volumes, a Secret values
/// that may exist nowhere else (generated once, never shown).
pub const DEFAULT_PROTECTED_KINDS: [&str; 2] = ["Namespace", "Secret"];

/// What deletions need to be allowed by name: kinds, and single objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// Protected kinds (`Namespace`).
    pub kinds: BTreeSet<String>,
    /// Protected objects.
    pub addresses: BTreeSet<ObjectRef>,
}

impl Default for Protection {
    /// [`DEFAULT_PROTECTED_KINDS`].
    fn default() -> Self {
        Protection {
            kinds: DEFAULT_PROTECTED_KINDS.iter().map(|k| (*k).to_owned()).collect(),
            addresses: BTreeSet::new(),
        }
    }
}

impl Protection {
    /// The inventory's `protect:` list (`None`: the default; an empty list protects nothing).
    pub fn from_inventory(protect: Option<&[mip_inventory::Protected]>) -> Protection {
        let Some(list) = protect else { return Protection::default() };
        let mut p = Protection { kinds: BTreeSet::new(), addresses: BTreeSet::new() };
        for entry in list {
            match entry {
                mip_inventory::Protected::Kind(k) => {
                    p.kinds.insert(k.value.clone());
                }
                mip_inventory::Protected::Address(a) => {
                    p.addresses.insert(a.value.clone());
                }
            }
        }
        p
    }

    /// Whether deleting `addr` needs to be allowed by name.
    pub fn protects(&self, addr: &ObjectRef) -> bool {
        self.kinds.contains(&addr.kind) || self.addresses.contains(addr)
    }
}

/// The deletions of `plan` that are protected and not in `allowed`, in plan order. An
/// unattended apply must refuse the whole plan when this is not empty.
pub fn refused_deletions<'a>(
    plan: &'a Plan,
    protection: &Protection,
    allowed: &BTreeSet<ObjectRef>,
) -> Vec<&'a ObjectRef> {
    plan.changes
        .iter()
        .filter(|c| c.action == Action::Delete && protection.protects(&c.address))
        .map(|c| &c.address)
        .filter(|a| !allowed.contains(*a))
        .collect()
}

/// Terraform's warning for `-target`, in mip's words.
pub const TARGET_WARNING: &str = "Resource targeting is in effect: this plan holds only the targeted objects and what they depend on, so it may not be every change the inventory asks for. `--target` is not for routine use; it is for exceptional situations such as recovering from errors or mistakes. Run `mip plan` without it afterwards.";

/// `--target` named an object that is in neither the plan's changes nor its expectations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`--target {0}` is not an object of this plan")]
pub struct UnknownTarget(pub Box<ObjectRef>);

/// The plan narrowed to `targets` and, transitively, what they depend on (`depends_on`);
/// Argo CD objects are kept when targeted or generated (transitively) by a kept object. The
/// summary is recounted; the plan records its targets.
///
/// # Errors
/// [`UnknownTarget`] for the first target the plan does not have.
pub fn target(plan: &Plan, targets: &BTreeSet<ObjectRef>) -> Result<Plan, UnknownTarget> {
    if let Some(t) = targets.iter().find(|t| {
        !plan.changes.iter().any(|c| c.address == **t) && !plan.expected.iter().any(|e| e.address == **t)
    }) {
        return Err(UnknownTarget(Box::new(t.clone())));
    }
    let by_addr: std::collections::BTreeMap<&ObjectRef, &Change> =
        plan.changes.iter().map(|c| (&c.address, c)).collect();
    let mut keep: BTreeSet<ObjectRef> = BTreeSet::new();
    let mut todo: Vec<ObjectRef> = targets.iter().cloned().collect();
    while let Some(a) = todo.pop() {
        if !keep.insert(a.clone()) {
            continue;
        }
        if let Some(c) = by_addr.get(&a) {
            todo.extend(c.depends_on.iter().map(|d| d.address.clone()));
        }
    }
    // Argo CD objects of kept ones: a generator comes before what it generates in the plan.
    let mut expected = Vec::new();
    for e in &plan.expected {
        if keep.contains(&e.address) || e.generated_by.as_ref().is_some_and(|g| keep.contains(g)) {
            keep.insert(e.address.clone());
            expected.push(e.clone());
        }
    }
    let changes: Vec<Change> = plan.changes.iter().filter(|c| keep.contains(&c.address)).cloned().collect();
    let mut summary = Summary::default();
    for c in &changes {
        match c.action {
            Action::Create => summary.create += 1,
            Action::Update => summary.update += 1,
            Action::Replace => summary.replace += 1,
            Action::Delete => summary.delete += 1,
            _ => summary.no_op += 1,
        }
    }
    for e in &expected {
        match e.action {
            Action::Await => summary.await_argo += 1,
            Action::Create => summary.argo_create += 1,
            Action::Update => summary.argo_update += 1,
            Action::Delete => summary.argo_delete += 1,
            _ => {}
        }
    }
    Ok(Plan { changes, expected, summary, targets: targets.iter().cloned().collect(), ..plan.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/mip-infra/mip.yaml");
        let text = std::fs::read_to_string(path).expect("example");
        let inv = mip_inventory::parse("mip.yaml", &text).expect("valid").inventory;
        let desired = mip_graph::resolve(&inv, &[], &Default::default()).expect("resolves");
        let dag = mip_graph::Dag::build(&desired.objects).expect("acyclic");
        let input = crate::PlanInput {
            inventory: "mip.yaml",
            inventory_digest: "sha256:0".into(),
            mode: crate::Mode::Offline,
            mip_version: "0",
        };
        crate::plan(&desired, &dag, &Default::default(), &input)
    }

    fn addr(s: &str) -> ObjectRef {
        s.parse().expect("address")
    }

    #[test]
    fn a_target_keeps_itself_and_what_it_depends_on_transitively_and_nothing_else() {
        let full = plan();
        let t = addr("v1/Secret/federation-a/mip-secret");
        let narrowed = target(&full, &BTreeSet::from([t.clone()])).expect("known");
        let kept: BTreeSet<String> = narrowed.changes.iter().map(|c| c.address.to_string()).collect();
        assert!(kept.contains("v1/Secret/federation-a/mip-secret"));
        assert!(kept.contains("v1/Namespace/federation-a"), "its namespace comes first: {kept:?}");
        assert!(!kept.contains("v1/Namespace/mip-common-datacatalog"), "{kept:?}");
        // Every kept change's dependencies are kept (closure), and the order is the plan's.
        for c in &narrowed.changes {
            for d in &c.depends_on {
                assert!(kept.contains(&d.address.to_string()), "{} needs {}", c.address, d.address);
            }
        }
        let order: Vec<&ObjectRef> =
            full.changes.iter().map(|c| &c.address).filter(|a| kept.contains(&a.to_string())).collect();
        assert_eq!(order, narrowed.changes.iter().map(|c| &c.address).collect::<Vec<_>>());
        assert_eq!(narrowed.summary.create, narrowed.changes.len());
        assert!(narrowed.expected.is_empty(), "a Secret generates nothing: {:?}", narrowed.expected);
        assert_eq!(narrowed.targets, vec![t]);
    }

    #[test]
    fn targeting_a_root_application_keeps_what_argo_cd_generates_from_it() {
        let full = plan();
        let root = full.changes.iter().find(|c| c.address.name.ends_with("argo-projects")).expect("root");
        let narrowed = target(&full, &BTreeSet::from([root.address.clone()])).expect("known");
        assert!(!narrowed.expected.is_empty());
        assert!(narrowed.expected.len() < full.expected.len(), "the infra Applications are not kept");
        assert_eq!(narrowed.summary.await_argo, narrowed.expected.len());
    }

    #[test]
    fn an_unknown_target_is_an_error_naming_it() {
        let t = addr("v1/Namespace/nope");
        assert_eq!(target(&plan(), &BTreeSet::from([t.clone()])), Err(UnknownTarget(Box::new(t))));
    }

    #[test]
    fn namespaces_and_secrets_are_protected_by_default_and_allow_delete_names_them() {
        let mut p = plan();
        let ns = addr("v1/Namespace/federation-old");
        let secret = addr("v1/Secret/federation-old/mip-secret");
        let project = addr("argoproj.io/v1alpha1/AppProject/argocd-mip-team/old");
        for a in [&secret, &project, &ns] {
            p.changes.push(crate::deletion(a, "gone", "sha256:x".into(), None));
        }
        let none = BTreeSet::new();
        let refused = refused_deletions(&p, &Protection::default(), &none);
        assert_eq!(refused, vec![&secret, &ns]);
        let allowed = BTreeSet::from([ns.clone()]);
        assert_eq!(refused_deletions(&p, &Protection::default(), &allowed), vec![&secret]);
        let nothing = Protection { kinds: BTreeSet::new(), addresses: BTreeSet::new() };
        assert!(refused_deletions(&p, &nothing, &none).is_empty(), "`protect: []` protects nothing");
        let one = Protection { kinds: BTreeSet::new(), addresses: BTreeSet::from([project.clone()]) };
        assert_eq!(refused_deletions(&p, &one, &none), vec![&project]);
    }
}
