//! Snapshots of the three plan views for the minimal example: a reviewer sees any change to
//! what users read. (`cargo insta review` after an intended change.)

use mip_plan::{Mode, PlanInput, PriorState, render};
use std::path::Path;

fn plan() -> mip_plan::Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/minimal/mip.yaml");
    let text = std::fs::read_to_string(path).expect("example");
    let inv = mip_inventory::parse("examples/minimal/mip.yaml", &text).expect("valid").inventory;
    let desired = mip_graph::resolve(&inv, &[], &Default::default()).expect("resolves");
    let dag = mip_graph::Dag::build(&desired.objects).expect("acyclic");
    let input = PlanInput {
        inventory: "examples/minimal/mip.yaml",
        inventory_digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
        mode: Mode::Offline,
        mip_version: "0.0.0-test",
    };
    mip_plan::plan(&desired, &dag, &PriorState::default(), &input)
}

#[test]
fn text_view() {
    insta::assert_snapshot!("minimal_text", render::text(&plan()));
}

#[test]
fn json_view() {
    insta::assert_snapshot!("minimal_json", render::json(&plan()));
}

#[test]
fn markdown_view() {
    insta::assert_snapshot!(
        "minimal_markdown",
        render::markdown(&plan(), &render::MarkdownOptions::default())
    );
}

#[test]
fn a_second_plan_after_apply_is_a_no_op_and_a_removed_object_is_deleted() {
    let first = plan();
    let mut prior = PriorState::default();
    for c in &first.changes {
        prior.managed.insert(c.address.clone(), c.fingerprint.clone());
    }
    let gone: mip_core::ObjectRef = "v1/Namespace/federation-old".parse().expect("addr");
    prior.managed.insert(gone.clone(), "sha256:old".into());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/minimal/mip.yaml");
    let inv =
        mip_inventory::parse("m.yaml", &std::fs::read_to_string(path).expect("r")).expect("v").inventory;
    let desired = mip_graph::resolve(&inv, &[], &Default::default()).expect("r");
    let dag = mip_graph::Dag::build(&desired.objects).expect("a");
    let input =
        PlanInput { inventory: "m", inventory_digest: "d".into(), mode: Mode::Offline, mip_version: "0" };
    let second = mip_plan::plan(&desired, &dag, &prior, &input);
    assert_eq!(second.summary.create, 0);
    assert_eq!(second.summary.delete, 1);
    assert_eq!(second.summary.no_op, first.summary.create);
    let last = second.changes.last().expect("delete last");
    assert_eq!(last.address, gone);
    assert_eq!(last.action, mip_core::Action::Delete);
}
