//! Feeds arbitrary UTF-8 to `mip_inventory::parse`: it must return (Ok or Err), never
//! panic, overflow the stack or hang, and every diagnostic must render on one line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(diags) = mip_inventory::parse("fuzz.yaml", text) {
        assert!(diags.has_errors());
        for d in &diags {
            let line = d.to_string();
            assert!(!line.contains('\n'), "diagnostic on several lines: {line:?}");
        }
    }
});
