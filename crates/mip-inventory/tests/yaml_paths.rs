//! `yaml::parse_document` reads the common YAML subset from the parser's events and leaves the
//! rest to serde-saphyr. These tests hold the two paths to the same tree, located the same:
//! on every YAML file of the repository, and on generated documents whose scalars are the
//! ones YAML types by their spelling. (The fuzz property checks it on mutated inputs too.)

use mip_inventory::yaml::{Node, parse_document_with_serde, read_common_subset};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            yaml_files(&path, out);
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
}

fn agree(text: &str) -> Option<Node> {
    let fast = read_common_subset(text)?;
    let slow = parse_document_with_serde("t.yaml", text);
    assert_eq!(slow.as_ref().ok(), Some(&fast), "the two YAML paths differ on {text:?}");
    Some(fast)
}

#[test]
fn both_paths_read_every_yaml_file_of_the_repository_alike() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["examples", "crates", "tests"] {
        yaml_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 100, "found {} YAML files", files.len());
    let mut fast = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("UTF-8");
        fast += usize::from(agree(&text).is_some());
    }
    // Most of the files (inventories, values, manifests) are in the subset; the malformed
    // corpus and the files with anchors or floats are not.
    assert!(fast * 2 > files.len(), "{fast} of {} files read from the events", files.len());
}

/// The examples' inventories are read from the events: the path that makes parsing fast.
#[test]
fn the_example_inventories_take_the_fast_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).expect("examples/") {
        let Ok(text) = std::fs::read_to_string(entry.expect("an entry").path().join("mip.yaml")) else {
            continue;
        };
        assert!(agree(&text).is_some(), "an example inventory left the fast path");
        seen += 1;
    }
    assert!(seen >= 3);
}

/// A document past serde-saphyr's default node budget (250 000), as an inventory of 12 000
/// federations is, reads on both paths, and alike.
#[test]
fn a_document_of_260_000_nodes_reads_on_both_paths() {
    let mut text = String::from("federations:\n");
    for i in 0..52_000 {
        text.push_str(&format!("  - {{name: federation-{i}, id: {i}}}\n"));
    }
    let tree = agree(&text).expect("read from the events");
    let mip_inventory::yaml::Value::Map(top) = &tree.value else { panic!("a mapping") };
    let mip_inventory::yaml::Value::Seq(items) = &top[0].1.value else { panic!("a list") };
    assert_eq!(items.len(), 52_000);
    assert_eq!(items[51_999].line, 52_001);
}

/// What the parser's options decide (runs of comments, long keys, deep flow nesting) both
/// paths decide alike: the same tree, or serde-saphyr's message.
#[test]
fn what_the_parser_reads_or_refuses_both_paths_treat_alike() {
    // Between a key and its block value the parser holds the comments (serde-saphyr's
    // default allowed 32: 40 federations commented out were refused).
    let comments = |n: usize| format!("a:\n{}  b: 2\n", "# note\n".repeat(n));
    assert!(parse_document_with_serde("t.yaml", &comments(200)).is_ok(), "200 comments in a row read");
    let key = |n: usize| format!("{}: 1\n", "k".repeat(n));
    let flow = |n: usize| format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
    for text in [comments(10), comments(40), comments(200), key(1000), key(1100), flow(20), flow(30)] {
        let either = mip_inventory::yaml::parse_document("t.yaml", &text).map_err(|d| d.to_string());
        let serde = parse_document_with_serde("t.yaml", &text).map_err(|d| d.to_string());
        assert_eq!(either, serde, "{text:.60?}");
    }
}

/// Scalars whose type YAML settles by their spelling, and some that need quoting.
const WORDS: &[&str] = &[
    "a",
    "main",
    "federation-1",
    "./key",
    "/abs",
    "x.y",
    "~",
    "",
    "null",
    "Null",
    "NULL",
    "true",
    "True",
    "TRUE",
    "false",
    "FALSE",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "n",
    "0",
    "1",
    "42",
    "-7",
    "-0",
    "007",
    "+1",
    "1.5",
    ".5",
    "1e3",
    "0x1F",
    "0o17",
    "1_000",
    ".inf",
    "-.inf",
    ".NaN",
    "nan",
    "inf",
    "Infinity",
    "12345678901234567890",
    "-9223372036854775808",
    "9223372036854775807",
    "2026-12-07",
    "<<",
    "=",
    "a b",
    "it's",
    "tab\there",
    "ünï",
    "#x",
    "a#b",
    "key:",
    "@at",
    "`tick",
    "%p",
    "&x",
    "*y",
    "!t",
    "|",
    ">",
    "- x",
    "[a]",
    "{a}",
    "a,b",
];

fn scalar_text() -> impl Strategy<Value = String> {
    let word = prop::sample::select(WORDS).prop_map(str::to_owned);
    prop_oneof![
        4 => word.clone(),
        1 => word.clone().prop_map(|w| format!("'{}'", w.replace('\'', "''"))),
        1 => word.prop_map(|w| format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))),
        1 => "[a-z0-9.:/_-]{1,12}",
    ]
}

#[derive(Debug, Clone)]
enum Doc {
    Scalar(String),
    Seq(Vec<Doc>),
    Map(Vec<(String, Doc)>),
}

fn doc() -> impl Strategy<Value = Doc> {
    scalar_text().prop_map(Doc::Scalar).prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Doc::Seq),
            prop::collection::vec((scalar_text(), inner), 0..5).prop_map(Doc::Map),
        ]
    })
}

/// Block style, with flow style for the collections at `flow_from` depth and below.
fn render(doc: &Doc, indent: usize, flow: bool, out: &mut String) {
    let pad = " ".repeat(indent);
    match doc {
        Doc::Scalar(s) => out.push_str(s),
        Doc::Seq(items) if flow || items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i > 0 { ", " } else { "" });
                render(item, indent, true, out);
            }
            out.push(']');
        }
        Doc::Map(entries) if flow || entries.is_empty() => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                out.push_str(if i > 0 { ", " } else { "" });
                out.push_str(k);
                out.push_str(": ");
                render(v, indent, true, out);
            }
            out.push('}');
        }
        Doc::Seq(items) => {
            for item in items {
                out.push_str(&format!("\n{pad}- "));
                render(item, indent + 2, false, out);
            }
        }
        Doc::Map(entries) => {
            for (k, v) in entries {
                out.push_str(&format!("\n{pad}{k}: "));
                render(v, indent + 2, false, out);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Wherever the events path reads a generated document, serde-saphyr reads the same tree.
    #[test]
    fn both_paths_agree_on_generated_documents(d in doc(), flow in any::<bool>()) {
        let mut text = String::new();
        render(&d, 0, flow, &mut text);
        agree(&text);
    }
}

/// Empty documents, a byte-order mark, block scalars as values and keys, quoting, nested
/// lists, folded plain scalars and comments in flow collections: the same tree on both paths,
/// and most of them read from the events.
#[test]
fn edge_cases_agree() {
    let texts = [
        "---\n",
        "--- \n...\n",
        "a: |\n  x\n  y\n",
        "? |\n  k\n: v\n",
        "a: >-\n  x\n\n  y\n",
        "\u{feff}a: 1\n",
        "a:   \n  - \n",
        "'a': \"b\"\n",
        "a: 'it''s'\n",
        "- - - x\n",
        "a: {b: [c, {d: e}]}\n",
        "a:\n  - b: 1\n    c: 2\n",
        "a: b c\n  d\n",
        "x: 1 # c\ny: [1, # c\n 2]\n",
    ];
    let fast = texts.iter().filter(|t| agree(t).is_some()).count();
    assert!(fast >= 12, "{fast} of {} read from the events", texts.len());
}
