//! The property of the `inventory` target, in one place: `fuzz_targets/inventory.rs` (libFuzzer,
//! nightly) and `crates/mip-inventory/tests/fuzz.rs` (proptest, stable, in the test command)
//! both include this file, so the two fuzzers can never check different things.

/// `mip_inventory::parse` returns (an inventory or diagnostics) and never panics; an `Err` holds
/// at least one error; every diagnostic, error or warning, renders on one line, and an error
/// has a location (`fuzz.yaml:line:column: `, both from 1). And the YAML tree read from the
/// parser's events, where that path reads the text, is serde-saphyr's tree, located the same.
pub fn check(text: &str) {
    if let Some(fast) = mip_inventory::yaml::read_common_subset(text) {
        let slow = mip_inventory::yaml::parse_document_with_serde("fuzz.yaml", text);
        assert_eq!(slow.as_ref().ok(), Some(&fast), "the two YAML paths differ on {text:?}");
    }
    match mip_inventory::parse("fuzz.yaml", text) {
        Ok(parsed) => {
            assert!(!parsed.warnings.has_errors(), "Ok with an error: {:?}", parsed.warnings);
            for d in &parsed.warnings {
                one_line(&d.to_string());
            }
        }
        Err(diags) => {
            assert!(diags.has_errors(), "Err without an error: {diags:?}");
            for d in &diags {
                let line = d.to_string();
                one_line(&line);
                let Some(loc) = d.location.as_ref() else { panic!("diagnostic without location: {line}") };
                assert!(loc.line >= 1 && loc.column >= 1, "location before 1:1: {line}");
                let prefix = format!("fuzz.yaml:{}:{}: ", loc.line, loc.column);
                assert!(line.starts_with(&prefix), "diagnostic not starting with {prefix:?}: {line}");
            }
        }
    }
}

fn one_line(line: &str) {
    assert!(!line.contains(['\n', '\r']), "diagnostic on several lines: {line:?}");
}
