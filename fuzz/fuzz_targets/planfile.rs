//! Feeds arbitrary bytes to `mip_plan::planfile::from_bytes`, twice: as they are (which mostly
//! exercises the envelope and the digest check), and, when they are JSON, wrapped as the `plan`
//! of an envelope with the right digest (which gets past the digest check to the plan's own
//! deserialisation). It must return, never panic; a plan that reads must write and read back
//! to the same plan; a correctly digested envelope is never reported as tampered with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mip_plan::planfile::{self, Error};

fuzz_target!(|data: &[u8]| {
    check(planfile::from_bytes("fuzz.mip", data));
    let Ok(plan) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(digest) = mip_core::canonical::digest(&plan) else { return };
    let envelope = serde_json::json!({"format_version": "1", "kind": "mip-plan", "digest": digest, "plan": plan});
    let bytes = serde_json::to_vec(&envelope).expect("a JSON value serialises");
    let read = planfile::from_bytes("fuzz.mip", &bytes);
    assert!(!matches!(read, Err(Error::Tampered { .. })), "a correct digest was refused");
    check(read);
});

fn check(read: Result<mip_plan::Plan, Error>) {
    match read {
        Ok(plan) => {
            let bytes = planfile::to_bytes(&plan).expect("a plan that was read serialises");
            let again = planfile::from_bytes("fuzz.mip", &bytes).expect("a written plan reads back");
            assert_eq!(again, plan, "the plan changed in a write/read round trip");
        }
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "error on several lines: {line:?}");
        }
    }
}
