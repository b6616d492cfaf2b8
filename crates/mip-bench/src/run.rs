//! `mip-bench run`: mip against kubectl on dedicated real test clusters.
//!
//! For each size N and each repetition, two fresh clusters are started, one for mip and one for
//! kubectl, so both start from the same empty state and neither sees the other's objects (a
//! cluster-wide LIST would otherwise return both sets). Then the four operations run in
//! lock step, each pair back to back (mip first on even repetitions, kubectl first on odd ones),
//! so machine noise hits both sides of a ratio:
//!
//! | operation | mip | kubectl |
//! |---|---|---|
//! | plan, empty cluster | `mip plan` | `kubectl diff --server-side -f objects.yaml` |
//! | apply from empty | `mip apply --auto-approve --wait-timeout 0` | `kubectl apply --server-side -f objects.yaml` |
//! | plan, no-op | `mip plan` | `kubectl diff --server-side -f objects.yaml` |
//! | apply, no-op | `mip apply --auto-approve --wait-timeout 0` | `kubectl apply --server-side -f objects.yaml` |
//!
//! Every command is a real process under `/usr/bin/time` (wall time, peak RSS). mip counts its
//! requests (`MIP_STATS=1`); kubectl's are counted from its `-v=6` log (one line per response).
//! Then `mip plan --offline` runs at every size and at the offline size (10 000 by default).

use crate::measure::{self, Sample, Tool};
use crate::{emit, generate, report};
use anyhow::{Context, bail};
use mip_test_support::{TestCluster, TestClusterOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Federation counts of the live benchmark.
    pub sizes: Vec<usize>,
    /// Repetitions of each live measurement.
    pub repeat: usize,
    /// Federation count of the extra offline-plan measurement.
    pub offline_size: usize,
    /// The `mip` binary (a release build).
    pub mip: PathBuf,
    /// Where `benchmarks.md` and `benchmarks.svg` go.
    pub docs: PathBuf,
}

/// The four live operations, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// Plan against an empty cluster (kubectl: `diff`).
    PlanEmpty,
    /// Apply everything to an empty cluster.
    ApplyEmpty,
    /// Plan after the apply: nothing to do.
    PlanNoop,
    /// Apply again: nothing to do.
    ApplyNoop,
}

impl Op {
    /// Every operation, in run order.
    pub const ALL: [Op; 4] = [Op::PlanEmpty, Op::ApplyEmpty, Op::PlanNoop, Op::ApplyNoop];

    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Op::PlanEmpty => "plan, empty cluster",
            Op::ApplyEmpty => "apply from empty",
            Op::PlanNoop => "plan, no-op",
            Op::ApplyNoop => "apply, no-op",
        }
    }

    /// The commands compared, as shown in the report.
    pub fn commands(self) -> (&'static str, &'static str) {
        match self {
            Op::PlanEmpty | Op::PlanNoop => ("mip plan", "kubectl diff --server-side"),
            Op::ApplyEmpty | Op::ApplyNoop => ("mip apply", "kubectl apply --server-side"),
        }
    }
}

/// The measurements of one size.
#[derive(Debug, Clone)]
pub struct SizeResult {
    /// Federations.
    pub federations: usize,
    /// mip-owned objects (= documents given to kubectl).
    pub objects: usize,
    /// mip's samples per operation.
    pub mip: BTreeMap<Op, Vec<Sample>>,
    /// kubectl's samples per operation.
    pub kubectl: BTreeMap<Op, Vec<Sample>>,
}

/// The offline-plan measurements of one size.
#[derive(Debug, Clone)]
pub struct OfflineResult {
    /// Federations.
    pub federations: usize,
    /// mip-owned objects in the plan.
    pub objects: usize,
    /// The samples.
    pub samples: Vec<Sample>,
}

/// The machine and the conditions of the run.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal` in GiB.
    pub memory_gib: f64,
    /// `/proc/loadavg`'s first three fields at the start.
    pub load_start: String,
    /// The same at the end.
    pub load_end: String,
    /// UTC date and time of the start.
    pub date: String,
    /// `git describe --always --dirty` of the work tree.
    pub commit: String,
    /// kubectl's client version.
    pub kubectl_version: String,
    /// Total wall time of the run, seconds.
    pub total_seconds: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Results {
    /// The options used.
    pub options: RunOptions,
    /// Live results, by size.
    pub sizes: Vec<SizeResult>,
    /// Offline results, by size.
    pub offline: Vec<OfflineResult>,
    /// Where and when.
    pub machine: Machine,
}

pub(crate) fn progress(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "mip-bench: {message}");
}

fn first_line(mut command: Command) -> String {
    command
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().trim().to_owned())
        .unwrap_or_default()
}

fn machine_now() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let mut date = Command::new("date");
    date.args(["-u", "+%Y-%m-%d %H:%M UTC"]);
    let mut git = Command::new("git");
    git.args(["describe", "--always", "--dirty"]);
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_default(),
        memory_gib: mem_kb / 1024.0 / 1024.0,
        load_start: load_average(),
        date: first_line(date),
        commit: first_line(git),
        ..Machine::default()
    }
}

/// `/proc/loadavg`'s 1, 5 and 15 minute averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn mip_command(
    options: &RunOptions,
    cluster: &TestCluster,
    inventory: &Path,
    state: &Path,
    op: Op,
) -> Command {
    let mut command = Command::new(&options.mip);
    match op {
        Op::PlanEmpty | Op::PlanNoop => command.arg("plan"),
        Op::ApplyEmpty | Op::ApplyNoop => command.args(["apply", "--auto-approve", "--wait-timeout", "0"]),
    };
    command.arg("-i").arg(inventory).arg("--state-dir").arg(state);
    command.env("KUBECONFIG", cluster.kubeconfig_path()).env("MIP_STATS", "1").env("NO_COLOR", "1");
    for (key, value) in generate::ENV {
        command.env(key, value);
    }
    command
}

fn kubectl_command(cluster: &TestCluster, objects: &Path, cache: &Path, op: Op) -> Command {
    let mut command = cluster.kubectl();
    match op {
        Op::PlanEmpty | Op::PlanNoop => command.arg("diff"),
        Op::ApplyEmpty | Op::ApplyNoop => command.arg("apply"),
    };
    command.args(["--server-side", "-v=6", "-f"]).arg(objects).arg("--cache-dir").arg(cache);
    command
}

fn check(tool: Tool, op: Op, sample: &Sample) -> anyhow::Result<()> {
    // kubectl diff exits 1 when it finds differences. On an empty cluster it also fails (2) for
    // every object in a namespace that does not exist yet, after diffing the rest: kubectl cannot
    // preview a bootstrap; the report says so. Every other command must succeed.
    let ok = match (tool, op) {
        (Tool::Kubectl, Op::PlanEmpty) => sample.exit <= 2,
        (Tool::Kubectl, Op::PlanNoop) => sample.exit <= 1,
        _ => sample.exit == 0,
    };
    if !ok {
        bail!("{tool:?} `{}` exited with {}:\n{}", op.label(), sample.exit, sample.stderr_tail);
    }
    Ok(())
}

fn start_cluster() -> anyhow::Result<TestCluster> {
    TestCluster::try_start(TestClusterOptions::default()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn live_size(options: &RunOptions, federations: usize) -> anyhow::Result<SizeResult> {
    let work = tempfile::tempdir().context("failed to create a work dir")?;
    let inventory = generate::write(work.path(), federations)?;
    let manifests = emit::manifests(&inventory)?;
    let objects_path = work.path().join("objects.yaml");
    std::fs::write(&objects_path, emit::objects(&inventory)?).context("failed to write objects.yaml")?;
    let mut result =
        SizeResult { federations, objects: manifests.len(), mip: BTreeMap::new(), kubectl: BTreeMap::new() };
    for rep in 0..options.repeat {
        progress(&format!(
            "N={federations} ({} objects), repetition {}/{}: starting two clusters",
            manifests.len(),
            rep + 1,
            options.repeat
        ));
        let mip_cluster = start_cluster()?;
        let kubectl_cluster = start_cluster()?;
        let state = work.path().join(format!("state-{rep}"));
        let cache = work.path().join(format!("kubectl-cache-{rep}"));
        for op in Op::ALL {
            let mip = mip_command(options, &mip_cluster, &inventory, &state, op);
            let kubectl = kubectl_command(&kubectl_cluster, &objects_path, &cache, op);
            let order = if rep % 2 == 0 {
                [(Tool::Mip, &mip), (Tool::Kubectl, &kubectl)]
            } else {
                [(Tool::Kubectl, &kubectl), (Tool::Mip, &mip)]
            };
            let mut line = format!("N={federations} rep {} {}:", rep + 1, op.label());
            for (tool, command) in order {
                let sample = measure::run(command, tool)?;
                check(tool, op, &sample)?;
                line.push_str(&format!(" {tool:?} {:.3} s", sample.seconds));
                let by_op = if tool == Tool::Mip { &mut result.mip } else { &mut result.kubectl };
                by_op.entry(op).or_default().push(sample);
            }
            progress(&line);
        }
    }
    Ok(result)
}

fn offline_size(options: &RunOptions, federations: usize) -> anyhow::Result<OfflineResult> {
    let work = tempfile::tempdir().context("failed to create a work dir")?;
    let inventory = generate::write(work.path(), federations)?;
    let objects = emit::manifests(&inventory)?.len();
    let mut samples = Vec::new();
    for _ in 0..options.repeat {
        let mut command = Command::new(&options.mip);
        command
            .args(["plan", "--offline", "-i"])
            .arg(&inventory)
            .arg("--state-dir")
            .arg(work.path().join("no-state"));
        let sample = measure::run(&command, Tool::Mip)?;
        if sample.exit != 0 {
            bail!(
                "`mip plan --offline` at N={federations} exited with {}:\n{}",
                sample.exit,
                sample.stderr_tail
            );
        }
        samples.push(sample);
    }
    progress(&format!(
        "offline N={federations}: {}",
        samples.iter().map(|s| format!("{:.3} s", s.seconds)).collect::<Vec<_>>().join(", ")
    ));
    Ok(OfflineResult { federations, objects, samples })
}

/// Runs the whole benchmark and writes `benchmarks.md` (the results section) and
/// `benchmarks.svg` into `options.docs`.
///
/// # Errors
/// A cluster that does not start, a command that cannot run or fails, or the docs cannot be
/// written. A no-op apply that writes is reported, and then an error.
pub fn run(options: &RunOptions) -> anyhow::Result<Results> {
    if !options.mip.is_file() {
        bail!(
            "no mip binary at `{}` (hint: `cargo build --release -p mip-cli`, or `--mip PATH`)",
            options.mip.display()
        );
    }
    let started = Instant::now();
    let mut machine = machine_now();
    progress(&format!("load average at start: {}", machine.load_start));
    let mut offline = Vec::new();
    let mut offline_sizes = options.sizes.clone();
    offline_sizes.push(options.offline_size);
    offline_sizes.sort_unstable();
    offline_sizes.dedup();
    for n in offline_sizes {
        offline.push(offline_size(options, n)?);
    }
    let mut sizes = Vec::new();
    for n in &options.sizes {
        sizes.push(live_size(options, *n)?);
    }
    if let Ok(bin) = mip_test_support::binaries::bin_dir() {
        let mut version = Command::new(bin.join("kubectl"));
        version.args(["version", "--client"]);
        machine.kubectl_version = first_line(version).replace("Client Version: ", "kubectl ");
    }
    machine.load_end = load_average();
    machine.total_seconds = started.elapsed().as_secs_f64();
    let results = Results { options: options.clone(), sizes, offline, machine };
    report::write(&results, &options.docs)?;
    let writing: Vec<String> = results
        .sizes
        .iter()
        .flat_map(|s| s.mip.get(&Op::ApplyNoop).into_iter().flatten().map(move |x| (s.federations, x)))
        .filter(|(_, x)| x.requests.is_none_or(|r| r.writes > 0))
        .map(|(n, x)| format!("N={n}: {:?}", x.requests))
        .collect();
    if !writing.is_empty() {
        bail!("a no-op `mip apply` wrote (or did not report its requests): {}", writing.join("; "));
    }
    Ok(results)
}
