//! `parse` never panics and never overflows the stack, whatever the input: arbitrary text,
//! mutations of the reference inventory, deep nesting and alias bombs. When it fails, every
//! diagnostic still has a location and renders on one line.

use mip_inventory::parse;
use proptest::prelude::*;
use std::time::{Duration, Instant};

const EXAMPLE: &str = include_str!("../../../examples/mip-infra/mip.yaml");

/// Parses and checks the invariants that hold for any input.
fn parse_checked(text: &str) {
    if let Err(diags) = parse("fuzz.yaml", text) {
        assert!(diags.has_errors(), "Err without an error for {text:?}: {diags:?}");
        for d in &diags {
            let s = d.to_string();
            assert!(!s.contains(['\n', '\r']), "diagnostic on several lines: {s:?}");
            let loc = d.location.as_ref().unwrap_or_else(|| panic!("diagnostic without location: {s}"));
            assert!(s.starts_with(&format!("fuzz.yaml:{}:{}: ", loc.line, loc.column)), "{s}");
            assert!(loc.line >= 1 && loc.column >= 1, "{s}");
        }
    }
}

/// Runs `f` on a thread with `mib` MiB of stack and returns its result (a stack overflow
/// aborts the whole test binary, which is a failure too).
fn on_stack<T: Send + 'static>(mib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(mib << 20).spawn(f).expect("spawn").join().expect("no panic")
}

/// One change to the reference inventory.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Insert(usize, String),
    InsertBytes(usize, Vec<u8>),
    Truncate(usize),
    Replace(usize, char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Characters that matter to YAML, plus anything.
    let yaml_chars = prop_oneof![
        prop::sample::select(vec![
            ":", "-", " ", "  ", "\t", "\n", "[", "]", "{", "}", ",", "#", "&a", "*a", "!", "|", ">", "'",
            "\"", "?", "%", "@", "`", "---", "...", "<<: *a", "~", "null", "true", "0x1", "1e9", "\u{feff}",
            "\r\n", "é",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), yaml_chars).prop_map(|(at, s)| Mutation::Insert(at, s)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Mutation::InsertBytes(at, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Mutation::Replace(at, c)),
    ]
}

/// The byte index of the `n`-th character boundary (modulo the number of boundaries).
fn boundary(text: &str, n: usize) -> usize {
    let count = text.chars().count() + 1;
    text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).nth(n % count).unwrap_or(0)
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    match m {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i % lines.len());
            lines.concat()
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let i = i % lines.len();
            lines.insert(i, lines[i]);
            lines.concat()
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            let n = lines.len();
            lines.swap(a % n, b % n);
            lines.concat()
        }
        Mutation::Insert(at, s) => {
            let i = boundary(text, *at);
            format!("{}{s}{}", &text[..i], &text[i..])
        }
        Mutation::InsertBytes(at, bytes) => {
            let i = boundary(text, *at);
            format!("{}{}{}", &text[..i], String::from_utf8_lossy(bytes), &text[i..])
        }
        Mutation::Truncate(at) => text[..boundary(text, *at)].to_owned(),
        Mutation::Replace(at, c) => {
            let i = boundary(text, *at);
            let rest = &text[i..];
            let skip = rest.chars().next().map_or(0, char::len_utf8);
            format!("{}{c}{}", &text[..i], &rest[skip..])
        }
        _ => text.to_owned(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        parse_checked(&text);
    }

    #[test]
    fn yaml_like_strings(text in "[a-zA-Z0-9:\\-\\[\\]{},#&*!|>'\"?%@ \t\n.~<]{0,300}") {
        parse_checked(&text);
    }

    #[test]
    fn arbitrary_bytes_lossy(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        parse_checked(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_reference_inventory(mutations in prop::collection::vec(mutation(), 1..5)) {
        let mut text = EXAMPLE.to_owned();
        for m in &mutations {
            text = apply(&text, m);
        }
        parse_checked(&text);
    }

    #[test]
    fn truncated_reference_inventory(at in any::<usize>()) {
        parse_checked(&EXAMPLE[..boundary(EXAMPLE, at)]);
    }
}

#[test]
fn reference_inventory_is_valid() {
    // The mutation tests start from a valid file; make sure it still is one.
    parse("mip.yaml", EXAMPLE).expect("examples/mip-infra/mip.yaml is valid");
}

/// The four nesting shapes: flow sequences, flow mappings, block sequences (compact, on one
/// line: `- - - x`) and block mappings (one more space per level, so quadratic in size).
fn nested(shape: usize, depth: usize) -> String {
    match shape {
        0 => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        1 => format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth)),
        2 => format!("{}x\n", "- ".repeat(depth)),
        3 => (0..depth).map(|i| format!("{}a:\n", " ".repeat(i))).collect(),
        _ => unreachable!(),
    }
}

fn parse_quickly(text: &str) {
    let started = Instant::now();
    parse_checked(text);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?} on {} bytes", text.len());
}

#[test]
fn deep_flow_nesting_10000() {
    // On the default test thread (2 MiB of stack): the parser's flow nesting limit stops
    // these before any deep recursion.
    parse_quickly(&nested(0, 10_000));
    parse_quickly(&nested(1, 10_000));
    parse_quickly(&format!("{}1{}", "{a:".repeat(10_000), "}".repeat(10_000)));
    parse_quickly(&format!("federations: {}{}", "[".repeat(10_000), "]".repeat(10_000)));
}

/// 8 MiB is the main-thread stack the `mip` binary runs `parse` on.
const MAIN_THREAD_STACK_MIB: usize = 8;

#[test]
fn deep_block_nesting() {
    on_stack(MAIN_THREAD_STACK_MIB, || {
        parse_quickly(&nested(2, 10_000));
        // 10_000 levels of block mappings would be 50 MB of indentation; 2_000 is 2 MB.
        parse_quickly(&nested(3, 2_000));
    });
}

#[test]
fn every_nesting_depth_up_to_the_limit() {
    // serde-saphyr's default budget allows 64 levels; 65 and more are a syntax error.
    on_stack(MAIN_THREAD_STACK_MIB, || {
        for shape in 0..4 {
            for depth in 1..=70 {
                parse_quickly(&nested(shape, depth));
            }
        }
    });
}

/// Regression: a document nested 64 levels deep (serde-saphyr's default depth budget) needed
/// 2-4 MiB of stack in a debug build and overflowed a 2 MiB thread (test threads, tokio
/// workers). `yaml::MAX_DEPTH` now bounds nesting well below that.
#[test]
fn every_nesting_depth_on_a_2mib_thread() {
    on_stack(2, || {
        for shape in 0..4 {
            for depth in [10, 20, 30, 40, 50, 64, 65, 100, 1000] {
                parse_quickly(&nested(shape, depth));
            }
        }
    });
}

fn billion_laughs(levels: usize, fanout: usize) -> String {
    let mut s = String::from("apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\n");
    s.push_str(&format!("l0: &l0 [{}]\n", vec!["\"lol\""; fanout].join(", ")));
    for i in 1..levels {
        s.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); fanout].join(", ")));
    }
    s
}

/// serde-saphyr's default budget (250_000 nodes) stops alias bombs; expanding up to the
/// budget takes ~0.4 s in a release build but several seconds in a debug build, hence the
/// generous bound there. What matters is that the time is bounded, not exponential.
fn bomb_bound() -> Duration {
    if cfg!(debug_assertions) { Duration::from_secs(60) } else { Duration::from_secs(5) }
}

fn parse_bomb(text: String) -> (Result<(), mip_core::Diagnostics>, Duration) {
    let started = Instant::now();
    let result = on_stack(MAIN_THREAD_STACK_MIB, move || parse("bomb.yaml", &text).map(|_| ()));
    (result, started.elapsed())
}

#[test]
fn alias_bombs_finish_quickly() {
    // The classic billion laughs (10^9 strings) and a 2^64 chain, in parallel.
    let handles: Vec<_> = [(9, 10), (64, 2)]
        .into_iter()
        .map(|(levels, fanout)| {
            std::thread::spawn(move || ((levels, fanout), parse_bomb(billion_laughs(levels, fanout))))
        })
        .collect();
    for h in handles {
        let ((levels, fanout), (result, took)) = h.join().expect("no panic");
        assert!(took < bomb_bound(), "{levels}x{fanout} alias bomb took {took:?}");
        let diags = result.expect_err("alias bomb accepted");
        assert!(diags.iter().any(|d| d.code == "yaml-syntax"), "{levels}x{fanout}: {diags:?}");
    }
}

#[test]
fn alias_bomb_where_the_decoder_reads_it() {
    // 10^8 strings as a federation app's `values`.
    let mut text = String::from(EXAMPLE);
    text.push_str("bomb0: &b0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        text.push_str(&format!("bomb{i}: &b{i} [{}]\n", vec![format!("*b{}", i - 1); 10].join(", ")));
    }
    let text = text.replacen("values: [customizations/exareme2-values.yaml]", "values: *b8", 1);
    let (result, took) = parse_bomb(text);
    assert!(took < bomb_bound(), "took {took:?}");
    assert!(result.is_err());
}

#[test]
fn many_small_aliases_are_fine() {
    // Legitimate reuse of an anchor must not trip the alias limits.
    let text = EXAMPLE.replace(
        "  - name: federation-Z",
        "  - name: federation-Y\n    kind: local\n    apps: &apps [{name: exareme2}]\n  - name: federation-X\n    kind: local\n    apps: *apps\n  - name: federation-Z",
    );
    parse("mip.yaml", &text).expect("anchors and aliases are allowed");
}

/// Regression, found by the `inventory` fuzz target: a plain scalar folded over several lines
/// keeps a line break when one of them ends in `\r`, and the `invalid-url` diagnostic that
/// quotes it rendered on two lines.
#[test]
fn a_value_with_a_line_break_is_quoted_on_one_line() {
    let text = EXAMPLE.replacen("url: https://", "url: https://ge` x\r\r\n        y-https://", 1);
    assert!(parse("fuzz.yaml", &text).is_err(), "the broken URL must be refused");
    parse_checked(&text);
}
