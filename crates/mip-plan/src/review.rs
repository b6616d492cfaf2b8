//! The review plan: what a change of the inventory (a pull request's head against its base)
//! does, with no cluster and no state. Pure.
//!
//! Both inventories are resolved into desired states; this module compares them object by
//! object. mip-owned objects become [`Change`]s (create, update with a diff, delete), the
//! objects Argo CD generates become [`Expectation`]s whose action says what Argo CD will do
//! once the change is merged and synced: create, change (with a diff of the fields mip
//! models) or **delete**, which takes the workloads and volumes of an Application with it.
//! Unchanged objects are counted, not listed.

use crate::build::{PlanInput, change_of, count, deletion, expectation, fingerprint};
use crate::model::*;
use mip_core::{Action, ObjectRef, Owner, canonical};
use mip_graph::{Dag, Desired, DesiredObject};
use serde_json::Value;

/// One side of a review: a resolved inventory and its DAG.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// The desired state.
    pub desired: &'a Desired,
    /// Its order.
    pub dag: &'a Dag,
}

/// The plan of what `head` changes against `base` (see the [module docs](self)). `input`
/// describes the head; `base_ref` names the base.
pub fn review(base: Side<'_>, head: Side<'_>, input: &PlanInput<'_>, base_ref: BaseRef) -> Plan {
    let mut changes = Vec::new();
    let mut keys = crate::build::KeyLists::default();
    let mut expected = Vec::new();
    let mut summary = Summary::default();
    for (position, addr) in head.dag.order_nodes() {
        let o = &head.desired.objects[addr];
        let before = base.desired.objects.get(addr);
        if o.owner == Owner::ArgoCd {
            if let Some(e) = argo_change(before, o) {
                match e.action {
                    Action::Create => summary.argo_create += 1,
                    _ => summary.argo_update += 1,
                }
                expected.push(e);
            }
            continue;
        }
        let fp = fingerprint(o);
        let (action, reason, diff) = match before {
            None => (Action::Create, "added by this change".to_owned(), None),
            Some(b) if fingerprint(b) == fp => (Action::NoOp, String::new(), None),
            Some(b) => (Action::Update, "changed by this change".to_owned(), Some(mip_diff(b, o))),
        };
        count(&mut summary, action);
        if action != Action::NoOp {
            changes.push(Change {
                diff,
                ..change_of(o, head.dag.dependencies_at(position), action, reason, fp, &mut keys)
            });
        }
    }
    // What the head no longer has, in the base's deletion order: the reverse of its creation
    // order (dependents before what they depend on).
    for addr in base.dag.order().rev() {
        if head.desired.objects.contains_key(addr) {
            continue;
        }
        let b = &base.desired.objects[addr];
        if b.owner == Owner::ArgoCd {
            summary.argo_delete += 1;
            expected.push(expectation(b, Action::Delete, false));
        } else {
            summary.delete += 1;
            changes.push(Change {
                step: b.step,
                purpose: b.reason.clone(),
                ..deletion(addr, "removed by this change", fingerprint(b), None)
            });
        }
    }
    // Argo CD's deletions are listed after its creations and changes, like mip's own.
    expected.sort_by_key(|e| e.action == Action::Delete);
    Plan {
        format_version: FORMAT_VERSION.to_owned(),
        mip_version: input.mip_version.to_owned(),
        mode: Mode::Review,
        inventory: input.inventory.to_owned(),
        inventory_digest: input.inventory_digest.clone(),
        revision: head.desired.revision.clone(),
        prefix: head.desired.prefix.clone(),
        state: StateRef::default(),
        base: Some(base_ref),
        targets: Vec::new(),
        changes,
        expected,
        files: Vec::new(),
        summary,
    }
}

/// What Argo CD will do to one object it generates: `None` when the head models it as the
/// base did.
fn argo_change(before: Option<&DesiredObject>, o: &DesiredObject) -> Option<Expectation> {
    let (action, diff) = match before {
        None => (Action::Create, None),
        Some(b) => {
            let (was, now) = (b.body(), o.body());
            if canonical::canonicalize(&was) == canonical::canonicalize(&now) {
                return None;
            }
            (Action::Update, Some(unified(&was, &now)))
        }
    };
    Some(Expectation { diff, ..expectation(o, action, false) })
}

/// The diff of a mip-owned object between base and head: the manifest without its identity
/// fields; a Secret as its key set and the *source* of each value (values never exist here).
fn mip_diff(base: &DesiredObject, head: &DesiredObject) -> String {
    let view = |o: &DesiredObject| -> Value {
        if o.addr.is_secret() {
            let mut v = crate::diff::secret_view(&o.manifest);
            if let Some(m) = v.as_object_mut()
                && !o.sensitive.is_empty()
            {
                let sources = serde_json::to_value(&o.sensitive).unwrap_or(Value::Null);
                m.insert("sources".into(), sources);
            }
            v
        } else {
            crate::diff::comparable(&o.manifest)
        }
    };
    unified(&view(base), &view(head))
}

fn unified(base: &Value, head: &Value) -> String {
    let pretty =
        |v: &Value| serde_json::to_string_pretty(&canonical::canonicalize(v)).unwrap_or_default() + "\n";
    let (a, b) = (pretty(base), pretty(head));
    similar::TextDiff::from_lines(&a, &b).unified_diff().context_radius(2).header("base", "head").to_string()
}

/// The review plan with the edited files Argo CD reads (`files`, in path order; unread ones
/// already left out): each reader counts once in `argo_resync`, unless the plan already
/// creates, changes or deletes it.
pub fn with_files(mut plan: Plan, mut files: Vec<FileChange>) -> Plan {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    // An Application the change creates, changes or deletes anyway is counted there.
    let counted: std::collections::BTreeSet<&ObjectRef> = plan.expected.iter().map(|e| &e.address).collect();
    let readers: std::collections::BTreeSet<&ObjectRef> =
        files.iter().flat_map(|f| &f.read_by).filter(|a| !counted.contains(a)).collect();
    plan.summary.argo_resync = readers.len();
    plan.files = files;
    plan
}

/// Addresses of a review's deletions, mip's and Argo CD's, most consequential first:
/// namespaces (a federation's data lives there), then Secrets, then the rest in plan order.
pub fn deletions(plan: &Plan) -> Vec<&ObjectRef> {
    let mut out: Vec<&ObjectRef> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| &c.address)
        .chain(plan.expected.iter().filter(|e| e.action == Action::Delete).map(|e| &e.address))
        .collect();
    out.sort_by_key(|a| match a.kind.as_str() {
        "Namespace" => 0,
        "Secret" => 1,
        _ => 2,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "apiVersion: mip.ebrains.eu/v1alpha1
kind: Inventory
argocd: {namespace: argocd-mip-team}
revision: main
repositories:
  infra: {url: 'https://github.com/Medical-Informatics-Platform/mip-infra.git'}
  deployments: {url: 'https://github.com/Medical-Informatics-Platform/mip-infra.git'}
upstreamRepos: ['https://github.com/madgik/exareme2']
federations:
  - name: federation-A
    kind: local
    apps: [{name: exareme2}]
";

    fn side(text: &str) -> (Desired, Dag) {
        let inv = mip_inventory::parse("mip.yaml", text).expect("valid").inventory;
        let desired = mip_graph::resolve(&inv, &[], &Default::default()).expect("resolves");
        let dag = Dag::build(&desired.objects).expect("acyclic");
        (desired, dag)
    }

    fn run(base: &str, head: &str) -> Plan {
        let (bd, bg) = side(base);
        let (hd, hg) = side(head);
        let input = PlanInput {
            inventory: "mip.yaml",
            inventory_digest: "sha256:h".into(),
            mode: Mode::Review,
            mip_version: "0",
        };
        let base_ref = BaseRef {
            inventory: "base.yaml".into(),
            inventory_digest: "sha256:b".into(),
            git_revision: None,
        };
        review(Side { desired: &bd, dag: &bg }, Side { desired: &hd, dag: &hg }, &input, base_ref)
    }

    #[test]
    fn the_same_inventory_changes_nothing() {
        let plan = run(BASE, BASE);
        assert!(plan.changes.is_empty() && plan.expected.is_empty(), "{plan:#?}");
        assert!(!plan.summary.changes_anything());
        assert!(plan.summary.no_op > 0);
    }

    #[test]
    fn a_new_federation_is_its_namespace_and_what_argo_cd_generates_for_it() {
        let head = format!("{BASE}  - name: federation-B\n    kind: local\n    apps: [{{name: exareme2}}]\n");
        let plan = run(BASE, &head);
        let created: Vec<String> =
            plan.changes.iter().map(|c| format!("{} {}", c.action.as_str(), c.address)).collect();
        assert_eq!(created, ["create v1/Namespace/federation-b"]);
        let argo: Vec<String> =
            plan.expected.iter().map(|e| format!("{} {}", e.action.as_str(), e.address.name)).collect();
        assert!(argo.contains(&"create mip-argo-project-federation-b".to_owned()), "{argo:?}");
        assert!(argo.contains(&"create federation-b-exareme2".to_owned()), "{argo:?}");
        assert!(
            plan.expected.iter().all(|e| e.action == Action::Create && e.address.name.contains("-b")),
            "{argo:?}"
        );
        assert_eq!(plan.summary.argo_create, plan.expected.len());
        assert_eq!((plan.summary.create, plan.summary.delete, plan.summary.argo_delete), (1, 0, 0));
    }

    #[test]
    fn a_removed_federation_is_deleted_namespace_first_in_the_list_of_deletions() {
        let head = format!("{BASE}  - name: federation-B\n    kind: local\n    apps: [{{name: exareme2}}]\n");
        let plan = run(&head, BASE);
        assert_eq!(plan.summary.delete, 1);
        assert!(plan.summary.argo_delete >= 3, "{:?}", plan.summary);
        let gone = deletions(&plan);
        assert_eq!(gone[0].to_string(), "v1/Namespace/federation-b");
        assert!(gone.iter().any(|a| a.kind == "Application" && a.name == "federation-b-exareme2"));
        assert!(plan.expected.iter().all(|e| e.action == Action::Delete));
    }

    #[test]
    fn an_upstream_repository_reaches_a_project_only_when_an_app_there_sources_it() {
        // Allowed but sourced by nothing: no project gains it (least privilege).
        let head = BASE.replace(
            "upstreamRepos: ['https://github.com/madgik/exareme2']",
            "upstreamRepos: ['https://github.com/madgik/exareme2', 'https://example.org/charts.git']",
        );
        let plan = run(BASE, &head);
        assert!(!plan.summary.changes_anything(), "{:#?}", plan.expected);
        // A common app that sources it: its project, and only its project, gains it.
        let base = format!("{BASE}credentials:\n  keycloak:\n    clientId: {{env: KC_ID}}\n    clientSecret: {{env: KC_SECRET}}\n")
            .replace("upstreamRepos: ['https://github.com/madgik/exareme2']", "upstreamRepos: ['https://github.com/madgik/exareme2', 'https://github.com/madgik/datacatalog']");
        let head = format!("{base}commonApps: [{{name: datacatalog}}]\n");
        let plan = run(&base, &head);
        let updated: Vec<&Expectation> = plan
            .expected
            .iter()
            .filter(|e| e.action == Action::Update && e.address.is(mip_core::Kind::AppProject))
            .collect();
        let names: Vec<&str> = updated.iter().map(|e| e.address.name.as_str()).collect();
        assert_eq!(names, ["mip-argo-project-common"], "{:#?}", plan.expected);
        let d = updated[0].diff.as_deref().expect("diff");
        assert!(d.contains("+") && d.contains("https://github.com/madgik/datacatalog"), "{d}");
        assert!(!d.contains("exareme2"), "the common project does not get the federations' charts: {d}");
        assert!(plan.summary.changes_anything());
    }

    #[test]
    fn a_secret_source_change_is_an_update_that_shows_the_source_not_a_value() {
        let base = format!(
            "{BASE}credentials:\n  keycloak:\n    clientId: {{env: KC_ID}}\n    clientSecret: {{env: KC_SECRET}}\ncommonApps: [{{name: datacatalog}}]\n"
        )
        .replace("upstreamRepos: ['https://github.com/madgik/exareme2']", "upstreamRepos: ['https://github.com/madgik/exareme2', 'https://github.com/madgik/datacatalog']");
        let head = base.replace("{env: KC_SECRET}", "{file: ./kc-secret}");
        let plan = run(&base, &head);
        let secret = plan.changes.iter().find(|c| c.address.is_secret()).expect("the Secret changes");
        assert_eq!(secret.action, Action::Update);
        let d = secret.diff.as_deref().expect("diff");
        assert!(d.contains("KC_SECRET") && d.contains("kc-secret"), "{d}");
    }
}
