//! Snapshots of the pull-request comment of a review plan (`mip plan --base … --output
//! markdown`): the hidden marker, the destructive banner, the commit and CI run, the Mermaid
//! picture, escaped code fences, truncation, and a failed plan. (`cargo insta review` after an
//! intended change.)

use mip_plan::render::{self, CiContext, MarkdownOptions};
use mip_plan::review::{Side, review};
use mip_plan::{BaseRef, Mode, Plan, PlanInput};
use std::path::Path;

fn example() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/minimal/mip.yaml");
    std::fs::read_to_string(path).expect("example")
}

/// The minimal example with a second federation (exareme2 and the overlay).
fn with_federation_b() -> String {
    format!(
        "{}  - name: federation-B\n    kind: local\n    apps:\n      - name: exareme2\n      - name: exareme2-overlay\n",
        example()
    )
}

fn review_of(base: &str, head: &str) -> Plan {
    let side = |text: &str| {
        let inv = mip_inventory::parse("mip.yaml", text).expect("valid").inventory;
        let desired = mip_graph::resolve(&inv, &[], &Default::default()).expect("resolves");
        let dag = mip_graph::Dag::build(&desired.objects).expect("acyclic");
        (desired, dag)
    };
    let (bd, bg) = side(base);
    let (hd, hg) = side(head);
    let input = PlanInput {
        inventory: "mip.yaml",
        inventory_digest: format!("sha256:{}", "1".repeat(64)),
        mode: Mode::Review,
        mip_version: "0.0.0-test",
    };
    let base_ref = BaseRef {
        inventory: "origin/main:mip.yaml".into(),
        inventory_digest: format!("sha256:{}", "0".repeat(64)),
        git_revision: Some("origin/main".into()),
    };
    review(Side { desired: &bd, dag: &bg }, Side { desired: &hd, dag: &hg }, &input, base_ref)
}

fn ci() -> CiContext {
    let vars = |k: &str| {
        match k {
            "GITHUB_SHA" => Some("0123456789abcdef0123456789abcdef01234567"),
            "GITHUB_SERVER_URL" => Some("https://github.com"),
            "GITHUB_REPOSITORY" => Some("Medical-Informatics-Platform/mip-deployments"),
            "GITHUB_RUN_ID" => Some("4242"),
            _ => None,
        }
        .map(str::to_owned)
    };
    CiContext::from_vars(vars)
}

#[test]
fn removing_a_federation_carries_the_banner_commit_run_link_and_marker() {
    let plan = review_of(&with_federation_b(), &example());
    let md = render::markdown(&plan, &MarkdownOptions { ci: ci(), ..MarkdownOptions::default() });
    assert!(md.starts_with("<!-- mip-plan -->\n"), "the marker comes first");
    let banner = md.find("[!CAUTION]").expect("banner");
    assert!(banner < md.find("**Plan:").expect("summary"), "the banner comes before the summary");
    assert!(md.contains("commit `0123456789ab`"));
    assert!(
        md.contains("(https://github.com/Medical-Informatics-Platform/mip-deployments/actions/runs/4242)")
    );
    insta::assert_snapshot!("review_remove_federation", md);
}

#[test]
fn adding_a_federation_with_the_mermaid_picture() {
    let plan = review_of(&example(), &with_federation_b());
    let md = render::markdown(&plan, &MarkdownOptions { mermaid: true, ..MarkdownOptions::default() });
    assert!(!md.contains("[!CAUTION]"), "nothing is deleted");
    assert!(md.contains("```mermaid\nflowchart LR\n"));
    insta::assert_snapshot!("review_add_federation_mermaid", md);
}

#[test]
fn the_same_inventory_says_no_changes() {
    let plan = review_of(&example(), &example());
    insta::assert_snapshot!("review_no_changes", render::markdown(&plan, &MarkdownOptions::default()));
    insta::assert_snapshot!("review_no_changes_text", render::text(&plan));
}

#[test]
fn removing_a_federation_as_text_warns_namespaces_first() {
    let plan = review_of(&with_federation_b(), &example());
    let text = render::text(&plan);
    let warning = text.find("Warning: this plan deletes").expect("warning");
    let first = &text[warning..].lines().nth(1).expect("a listed deletion");
    assert_eq!(*first, "  - v1/Namespace/federation-b");
    insta::assert_snapshot!("review_remove_federation_text", text);
}

#[test]
fn code_fences_inside_a_diff_cannot_close_the_block() {
    let mut plan = review_of(&example(), &with_federation_b());
    let change = plan.expected.iter_mut().next().expect("an Argo CD change");
    change.diff = Some("--- base\n+++ head\n-```\n+````yaml\n+</details>\n".into());
    let md = render::markdown(&plan, &MarkdownOptions::default());
    assert!(md.contains("`````diff\n--- base\n+++ head\n-```\n+````yaml\n+</details>\n`````\n"), "{md}");
    assert_eq!(render::fenced("diff", "a\n"), "```diff\na\n```\n");
}

#[test]
fn a_small_budget_truncates_with_a_notice_and_stays_within_it() {
    let plan = review_of(&with_federation_b(), &example());
    let budget = 1_800;
    let md = render::markdown(&plan, &MarkdownOptions { budget, ..MarkdownOptions::default() });
    assert!(md.len() <= budget, "{} > {budget}", md.len());
    assert!(md.contains("> **Plan truncated:**"));
    assert!(md.starts_with("<!-- mip-plan -->") && md.contains("[!CAUTION]"), "marker and banner survive");
    insta::assert_snapshot!("review_truncated", md);
}

#[test]
fn a_failed_plan_is_a_comment_too() {
    let details = vec![
        "mip.yaml:7:3: error[unknown-key]: unknown key `federations[0].knd` (hint: did you mean `kind`?)"
            .to_owned(),
    ];
    let md = render::markdown_failure("1 error(s) in `mip.yaml`; nothing was written", &details, None, &ci());
    assert!(md.starts_with("<!-- mip-plan -->\n### mip plan failed"));
    insta::assert_snapshot!("review_failed", md);
}

#[test]
fn ci_values_that_could_inject_markdown_are_left_out() {
    let vars = |k: &str| {
        match k {
            "GITHUB_SHA" => Some("abc)](https://evil"),
            "GITHUB_SERVER_URL" => Some("javascript:alert(1)"),
            "GITHUB_REPOSITORY" => Some("a/b"),
            "GITHUB_RUN_ID" => Some("1"),
            _ => None,
        }
        .map(str::to_owned)
    };
    assert_eq!(CiContext::from_vars(vars), CiContext::default());
    let head = |k: &str| (k == "MIP_HEAD_SHA").then(|| "deadbeef".to_owned());
    assert_eq!(CiContext::from_vars(head).commit.as_deref(), Some("deadbeef"));
    // On a push the workflow's `MIP_HEAD_SHA` is empty: the commit is GITHUB_SHA.
    let push = |k: &str| match k {
        "MIP_HEAD_SHA" => Some(String::new()),
        "GITHUB_SHA" => Some("cafe0123".to_owned()),
        _ => None,
    };
    assert_eq!(CiContext::from_vars(push).commit.as_deref(), Some("cafe0123"));
}
