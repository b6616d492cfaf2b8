//! `parse` never panics and never overflows the stack on the inputs random fuzzing hardly
//! builds: deep nesting and alias bombs, plus the regressions fuzzing found. When it fails,
//! every diagnostic still has a location and renders on one line. Arbitrary text and mutated
//! inventories are `tests/fuzz.rs`'s (the fuzz target's property, run by the test command).

#[path = "../../../fuzz/properties/inventory.rs"]
mod property;

use mip_inventory::parse;
use std::time::{Duration, Instant};

const EXAMPLE: &str = include_str!("../../../examples/mip-infra/mip.yaml");

/// The fuzz targets' property (`fuzz/properties/inventory.rs`): no panic, an `Err` holds an
/// error, every diagnostic on one line with a location.
fn parse_checked(text: &str) {
    property::check(text);
}

/// Runs `f` on a thread with `mib` MiB of stack and returns its result (a stack overflow
/// aborts the whole test binary, which is a failure too).
fn on_stack<T: Send + 'static>(mib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(mib << 20).spawn(f).expect("spawn").join().expect("no panic")
}

#[test]
fn reference_inventory_is_valid() {
    // Deep nesting and the alias bombs below build on a valid file; make sure it still is one.
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

/// The budget of events recorded for anchored nodes (100 000, `yaml::options`) stops alias
/// bombs; expanding up to it takes a fraction of a second in a release build but seconds in a
/// debug build, hence the generous bound there. What matters is that the time is bounded, not
/// exponential.
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

/// An anchored node is recorded event by event, to be replayed at its aliases; past 100 000
/// recorded events the document is refused (what stops an alias bomb early), alias or not.
/// Just below, the same document reads (and fails only on the unknown key).
#[test]
fn anchored_nodes_are_bounded_by_their_events() {
    let anchored = |n: usize| {
        let items = vec!["x"; n].join(", ");
        format!("{EXAMPLE}big: &big [{items}]\n")
    };
    let refused = parse("big.yaml", &anchored(100_001)).expect_err("refused");
    assert!(
        refused.iter().any(|d| d.code == "yaml-syntax" && d.summary.contains("size limits")),
        "{refused:?}"
    );
    let read = parse("big.yaml", &anchored(90_000)).expect_err("an unknown key");
    assert!(read.iter().all(|d| d.code != "yaml-syntax"), "{read:?}");
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
