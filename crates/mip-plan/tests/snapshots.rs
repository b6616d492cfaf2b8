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

/// A plan holds the desired state's typed models while it is made and their JSON once read
/// back from a plan file: the two write the same bytes and compare equal, so an apply of a
/// saved plan waits for what the plan showed.
#[test]
fn a_plan_file_keeps_the_models_it_was_made_with() {
    let made = plan();
    let typed = made.expected.iter().filter(|e| matches!(e.model, Some(mip_plan::ExpectedModel::Typed(_))));
    assert!(typed.count() >= 3, "the minimal example's expectations carry typed models");
    let bytes = mip_plan::planfile::to_bytes(&made).expect("serialises");
    let read = mip_plan::planfile::from_bytes("plan.json", &bytes).expect("reads back");
    assert!(read.expected.iter().all(|e| !matches!(e.model, Some(mip_plan::ExpectedModel::Typed(_)))));
    assert_eq!(read, made);
    assert_eq!(mip_plan::planfile::to_bytes(&read).expect("serialises"), bytes);
    for (r, m) in read.expected.iter().zip(&made.expected) {
        let (Some(r), Some(m)) = (&r.model, &m.model) else { continue };
        assert_eq!(*r.shared_value(), *m.value());
    }
}
