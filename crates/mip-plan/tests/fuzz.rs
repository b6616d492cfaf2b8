//! The `planfile` fuzz target's property, run by `cargo test` on stable: reading arbitrary
//! bytes as a plan file never panics, a correctly digested file is never called tampered with,
//! and a plan that reads writes and reads back unchanged (`fuzz/properties/planfile.rs`, the
//! very file the libFuzzer target includes). On the kept regressions, then on about ten seconds
//! of mutated seeds and random bytes (`fuzz/stable/driver.rs`). The seeds are saved plans of the
//! examples, built here through the crate's API (so always of the current format), as plan
//! files and as bare plans, and two bare envelopes. `MIP_FUZZ_SECONDS=600` runs it longer.

#[path = "../../../fuzz/stable/driver.rs"]
mod driver;
#[path = "../../../fuzz/properties/planfile.rs"]
mod property;

use driver::{Budget, Corpus};
use mip_plan::{Mode, Plan, PlanInput, PriorState, planfile};
use std::path::Path;
use std::time::Duration;

/// The offline plan of `examples/<name>/mip.yaml` from `prior`.
fn plan(name: &str, prior: &PriorState) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/{name}/mip.yaml"));
    let text = std::fs::read_to_string(path).expect("the example");
    let inv = mip_inventory::parse("mip.yaml", &text).expect("a valid example").inventory;
    let desired = mip_graph::resolve(&inv, &[], &Default::default()).expect("resolves");
    let dag = mip_graph::Dag::build(&desired.objects).expect("acyclic");
    let input = PlanInput {
        inventory: "mip.yaml",
        inventory_digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
        mode: Mode::Offline,
        mip_version: "0.0.0-fuzz",
    };
    mip_plan::plan(&desired, &dag, prior, &input)
}

/// Plans that create (from nothing) and that update, delete and leave alone (from a prior state
/// where one object changed, one is gone and the rest match), each as a plan file and as the
/// bare plan JSON.
fn seeds() -> Vec<Vec<u8>> {
    let mut plans = Vec::new();
    for name in ["minimal", "cron", "mip-infra"] {
        let first = plan(name, &PriorState::default());
        let mut prior = PriorState::default();
        for c in &first.changes {
            prior.managed.insert(c.address.clone(), c.fingerprint.clone());
        }
        if let Some(c) = first.changes.first() {
            prior.managed.insert(c.address.clone(), "sha256:changed".into());
        }
        prior
            .managed
            .insert("v1/Namespace/federation-gone".parse().expect("an address"), "sha256:gone".into());
        plans.push(plan(name, &prior));
        plans.push(first);
    }
    let mut seeds = Vec::new();
    for p in &plans {
        seeds.push(planfile::to_bytes(p).expect("a plan serialises"));
        seeds.push(serde_json::to_vec(p).expect("a plan serialises"));
    }
    // Bare envelopes: in a few dozen bytes a mutation lands in the envelope's own fields, where
    // in a saved plan's thousands of bytes it almost never does.
    for plan in ["{}", "null"] {
        let envelope = format!(
            r#"{{"format_version":"{}","kind":"mip-plan","digest":"sha256:00","plan":{plan}}}"#,
            mip_plan::FORMAT_VERSION
        );
        seeds.push(envelope.into_bytes());
    }
    seeds.extend(driver::files(&driver::regressions_dir("planfile")).into_iter().map(|(_, b)| b));
    seeds
}

/// JSON's syntax and the values that stress a reader, beyond the words of the seeds.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1e999",
    "-0",
    "18446744073709551616",
    "\"\"",
    "{}",
    "[]",
    "\\n",
    "\\u0000",
    "\\ud800",
    "\\\"",
    "\"plan\"",
    "\"digest\"",
    "\"format_version\"",
    "\"kind\"",
    "\"mip-plan\"",
    "\"sha256:",
    " ",
    "\n",
];

#[test]
fn kept_regressions_still_pass() {
    let kept = driver::replay("planfile", property::check);
    assert!(kept >= 1, "fuzz/regressions/planfile/ keeps the inputs fuzzing found");
}

#[test]
fn fuzz_planfile() {
    let corpus = Corpus::new(seeds(), TOKENS);
    let checked = driver::fuzz(
        "planfile",
        &corpus,
        Budget { cases: 20_000, time: Duration::from_secs(10) },
        property::check,
    );
    assert!(checked >= 100, "only {checked} inputs in the time budget");
}
