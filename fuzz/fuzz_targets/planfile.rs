//! Feeds arbitrary bytes to `mip_plan::planfile::from_bytes`, as they are and, when they are
//! JSON, wrapped in an envelope with the right digest. It must return, never panic; a plan that
//! reads must write and read back unchanged; a correctly digested envelope is never reported as
//! tampered with. The property is `../properties/planfile.rs`, which the stable harness in
//! `cargo test` runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../properties/planfile.rs"]
mod property;

fuzz_target!(|data: &[u8]| property::check(data));
