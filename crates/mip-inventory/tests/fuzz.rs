//! The `inventory` fuzz target's property, run by `cargo test` on stable: `parse` never panics
//! and every diagnostic renders on one line with a location (`fuzz/properties/inventory.rs`,
//! the very file the libFuzzer target includes), on the kept regressions, then on about ten
//! seconds of mutated seeds and random text (`fuzz/stable/driver.rs`). The seeds are the
//! examples and the malformed corpus. `MIP_FUZZ_SECONDS=600` runs it longer.

#[path = "../../../fuzz/stable/driver.rs"]
mod driver;
#[path = "../../../fuzz/properties/inventory.rs"]
mod property;

use driver::{Budget, Corpus};
use std::path::Path;
use std::time::Duration;

/// Checks raw bytes as the libFuzzer target sees them after its UTF-8 filter; here invalid
/// UTF-8 is repaired (U+FFFD) rather than dropped, so that no input is wasted.
fn check(bytes: &[u8]) {
    property::check(&String::from_utf8_lossy(bytes));
}

fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(root.join("../../examples"))
        .expect("examples/")
        .filter_map(|e| std::fs::read(e.expect("an entry").path().join("mip.yaml")).ok())
        .collect();
    assert!(seeds.len() >= 3, "the examples' mip.yaml are seeds");
    let malformed = driver::files(&root.join("tests/malformed"));
    assert!(malformed.len() >= 100, "the malformed corpus is seeds");
    seeds.extend(malformed.into_iter().map(|(_, bytes)| bytes));
    seeds.extend(driver::files(&driver::regressions_dir("inventory")).into_iter().map(|(_, b)| b));
    seeds
}

/// YAML's syntax, beyond the words of the seeds.
const TOKENS: &[&str] = &[
    ": ",
    "- ",
    "\n",
    "\n  ",
    "\n    - ",
    "\t",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "# ",
    "&a ",
    "*a",
    "!!str ",
    "!t ",
    "|",
    "|-\n  ",
    ">",
    "'",
    "\"",
    "? ",
    "%YAML 1.2\n",
    "---\n",
    "\n...\n",
    "<<: *a",
    "~",
    "null",
    "true",
    "0x1",
    "1e9",
    "-.inf",
    "\u{feff}",
    "\r\n",
    "\r",
    "\\",
    "\\u0000",
    "é",
    "\u{2028}",
    "\u{85}",
];

#[test]
fn kept_regressions_still_pass() {
    let kept = driver::replay("inventory", check);
    assert!(kept >= 1, "fuzz/regressions/inventory/ keeps the inputs fuzzing found");
}

#[test]
fn fuzz_inventory() {
    let corpus = Corpus::new(seeds(), TOKENS);
    let checked =
        driver::fuzz("inventory", &corpus, Budget { cases: 20_000, time: Duration::from_secs(10) }, check);
    assert!(checked >= 100, "only {checked} inputs in the time budget");
}
