//! Times each stage of `mip plan --offline` on one inventory, for profiling by stage
//! (`docs/benchmarks.md`): `cargo run --profile profiling -p mip-engine --example phases -- FILE [RUNS]`.
//! Prints the minimum over RUNS (default 3) of each stage's wall time; `both` is validation
//! and the DAG as `load` runs them (`validate_and_order`: side by side for a large state);
//! the total counts them one after the other.
//! `PHASES_RSS=1` prints the resident memory after each stage on stderr. Built with the
//! system allocator (mip's binary uses mimalloc), so memory and times differ a little.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a measuring tool: its output is the point

use std::time::{Duration, Instant};

fn time<T>(slot: &mut Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    *slot = (*slot).min(started.elapsed());
    if std::env::var_os("PHASES_RSS").is_some() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let rss = status.lines().find(|l| l.starts_with("VmRSS")).unwrap_or_default();
        eprintln!("{rss}");
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().expect("usage: phases FILE [RUNS]"));
    let runs: usize = args.next().map_or(3, |r| r.parse().expect("RUNS is a number"));
    let names = ["parse", "resolve", "validate", "dag", "both", "plan", "text", "drop"];
    let mut best = [Duration::MAX; 8];
    for _ in 0..runs {
        let text = std::fs::read_to_string(&path).expect("readable inventory");
        let parsed = time(&mut best[0], || mip_inventory::parse("mip.yaml", &text).expect("valid inventory"));
        let opts = mip_graph::ResolveOptions { revision: None };
        let mut desired =
            time(&mut best[1], || mip_graph::resolve(&parsed.inventory, &[], &opts).expect("resolves"));
        let checks = time(&mut best[2], || mip_graph::validate(&desired));
        assert!(!checks.has_errors());
        let dag = time(&mut best[3], || mip_graph::Dag::build(&desired.objects).expect("no cycle"));
        let input = mip_plan::PlanInput {
            inventory: "mip.yaml",
            inventory_digest: String::new(),
            mode: mip_plan::Mode::Offline,
            mip_version: "phases",
        };
        // What `load` does (side by side for a large state; not in the total).
        let _ = time(&mut best[4], || mip_engine::load::validate_and_order(&desired));
        // As `mip plan --offline` does (`Loaded::release_argo_models`): a plan needs only
        // their addresses.
        desired.objects.values_mut().for_each(|o| o.model = None);
        let plan = time(&mut best[5], || mip_plan::plan(&desired, &dag, &Default::default(), &input));
        let mut out = String::new();
        time(&mut best[6], || mip_plan::render::write_text(&plan, &mut out).expect("renders"));
        time(&mut best[7], || drop((parsed, desired, dag, plan, out)));
    }
    let total: Duration = best.iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, t)| *t).sum();
    for (name, t) in names.iter().zip(best) {
        println!(
            "{name:>9} {:>7.1} ms {:>5.1} %",
            t.as_secs_f64() * 1e3,
            100.0 * t.as_secs_f64() / total.as_secs_f64()
        );
    }
    println!("{:>9} {:>7.1} ms", "total", total.as_secs_f64() * 1e3);
}
