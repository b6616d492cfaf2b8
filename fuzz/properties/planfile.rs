//! The property of the `planfile` target, in one place: `fuzz_targets/planfile.rs` (libFuzzer,
//! nightly) and `crates/mip-plan/tests/fuzz.rs` (proptest, stable, in the test command) both
//! include this file, so the two fuzzers can never check different things.

use mip_plan::planfile::{self, Error};

/// Reads `data` as a plan file as it is (which mostly exercises the envelope and the digest
/// check), then, when it is JSON, as the `plan` of an envelope with the right digest: the JSON
/// itself and, when it has one, its `plan` member (so a mutated saved plan gets past the digest
/// check to the plan's own deserialisation). Reading never panics; a correctly digested
/// envelope is never called tampered with; a plan that reads writes and reads back unchanged;
/// an error renders on one line.
pub fn check(data: &[u8]) {
    round_trip(planfile::from_bytes("fuzz.mip", data));
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let member = json.get("plan").cloned();
    for plan in std::iter::once(json).chain(member) {
        let Ok(digest) = mip_core::canonical::digest(&plan) else { continue };
        let envelope = serde_json::json!({
            "format_version": mip_plan::FORMAT_VERSION, "kind": "mip-plan", "digest": digest, "plan": plan,
        });
        let bytes = serde_json::to_vec(&envelope).expect("a JSON value serialises");
        let read = planfile::from_bytes("fuzz.mip", &bytes);
        assert!(!matches!(read, Err(Error::Tampered { .. })), "a correct digest was refused");
        round_trip(read);
    }
}

fn round_trip(read: Result<mip_plan::Plan, Error>) {
    match read {
        Ok(plan) => {
            let bytes = planfile::to_bytes(&plan).expect("a plan that was read serialises");
            let again = planfile::from_bytes("fuzz.mip", &bytes).expect("a written plan reads back");
            assert_eq!(again, plan, "the plan changed in a write/read round trip");
        }
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains(['\n', '\r']), "error on several lines: {line:?}");
        }
    }
}
