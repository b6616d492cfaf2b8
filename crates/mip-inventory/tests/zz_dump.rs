// TEMPORARY: prints diagnostics for files given in DUMP env (not committed).
#[test]
fn dump() {
    let Ok(files) = std::env::var("DUMP") else { return };
    for f in files.split_whitespace() {
        let text = std::fs::read_to_string(f).unwrap();
        let name = std::path::Path::new(f).file_name().unwrap().to_str().unwrap();
        println!("=== {name}");
        match mip_inventory::parse(name, &text) {
            Ok(p) => { println!("OK warnings={}", p.warnings.iter().count()); for d in &p.warnings { println!("  {d}"); } }
            Err(ds) => for d in &ds { println!("  {d}"); },
        }
    }
}
