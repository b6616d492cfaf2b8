//! Feeds arbitrary UTF-8 to `mip_inventory::parse`: it must return (Ok or Err), never panic,
//! overflow the stack or hang, and every diagnostic must render on one line. The property is
//! `../properties/inventory.rs`, which the stable harness in `cargo test` runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../properties/inventory.rs"]
mod property;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    property::check(text);
});
