//! `mip-bench compare`: two builds of mip on the same generated inputs, in lock step.
//!
//! The check to run before stopping when a change touches the plan, diff, state or apply
//! path: the new build against the old one (`--base`), on the machine as it is. For every size
//! N and every repetition, two fresh test clusters start, one per build, and the four live
//! operations of `mip-bench run` (plan on the empty cluster, apply from empty, no-op plan,
//! no-op apply) run in lock step: new then old on even repetitions, old then new on odd ones.
//! `mip plan --offline` runs the same way at every N and at the offline size. Load on the
//! shared machine then hits both sides of each pair, and the ratio of a pair (new ÷ old) is
//! fairer than the ratio of two medians taken minutes apart.
//!
//! The report ([`crate::report::compare_markdown`]) goes to stdout; nothing is written.

use crate::measure::Sample;
use crate::run::{self, Contender, Machine, Op, Schedule};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What to compare.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Sizes, repetitions (pairs), time limit.
    pub schedule: Schedule,
    /// The new build's `mip` binary.
    pub new: PathBuf,
    /// The old build's `mip` binary (`--base`).
    pub base: PathBuf,
}

/// What a row of the comparison measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// One of the four live operations.
    Live(Op),
    /// `mip plan --offline` (no cluster).
    Offline,
}

impl Operation {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Operation::Live(op) => op.label(),
            Operation::Offline => "plan --offline (no cluster)",
        }
    }
}

/// Both builds' samples of one operation at one size; the `i`-th samples of both are a pair
/// (the same repetition, run back to back).
#[derive(Debug, Clone)]
pub struct Row {
    /// Federations.
    pub federations: usize,
    /// mip-owned objects.
    pub objects: usize,
    /// What was measured.
    pub operation: Operation,
    /// The new build's samples, by repetition.
    pub new: Vec<Sample>,
    /// The old build's samples, by repetition.
    pub old: Vec<Sample>,
}

/// Everything a comparison measured.
#[derive(Debug, Clone)]
pub struct CompareResults {
    /// The options used.
    pub options: CompareOptions,
    /// The new build's `mip --version`.
    pub new_version: String,
    /// The old build's `mip --version`.
    pub old_version: String,
    /// The rows, by N, then live operations in run order, then the offline plan.
    pub rows: Vec<Row>,
    /// Where and when (`kubectl_version` stays empty: kubectl does not run).
    pub machine: Machine,
}

fn version(mip: &Path) -> String {
    let mut command = Command::new(mip);
    command.arg("--version");
    run::first_line(command)
}

/// Runs the comparison.
///
/// # Errors
/// A binary is missing, a cluster does not start, or a command cannot run or fails.
pub fn run(options: &CompareOptions) -> anyhow::Result<CompareResults> {
    run::require_binary(&options.new, "--mip")?;
    run::require_binary(&options.base, "--base")?;
    let started = Instant::now();
    let mut machine = run::machine_now();
    run::progress(&format!("load average at start: {}", machine.load_start));
    let measured = options.schedule.measure(
        &[("new", &options.new), ("old", &options.base)],
        &[("new", Contender::Mip(options.new.clone())), ("old", Contender::Mip(options.base.clone()))],
    )?;
    let mut rows = Vec::new();
    for (federations, objects, samples) in measured.offline {
        let [new, old] = run::pair(samples)?;
        rows.push(Row { federations, objects, operation: Operation::Offline, new, old });
    }
    for (federations, objects, samples) in measured.live {
        let [mut new, mut old] = run::pair(samples)?;
        for op in Op::ALL {
            rows.push(Row {
                federations,
                objects,
                operation: Operation::Live(op),
                new: new.remove(&op).unwrap_or_default(),
                old: old.remove(&op).unwrap_or_default(),
            });
        }
    }
    rows.sort_by_key(|r| (r.federations, r.operation));
    machine.load_end = run::load_average();
    machine.total_seconds = started.elapsed().as_secs_f64();
    Ok(CompareResults {
        options: options.clone(),
        new_version: version(&options.new),
        old_version: version(&options.base),
        rows,
        machine,
    })
}
