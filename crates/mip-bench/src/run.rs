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
//! With a time limit (`--timeout`), a command that outlives it is killed and reported as not
//! finished, with what it had done by then, instead of holding up the run.
//!
//! The lock step itself ([`Schedule::measure`]) takes any list of [`Contender`]s: `run` gives it
//! mip and kubectl, [`crate::compare`] two builds of mip.

use crate::measure::{self, Sample, Tool};
use crate::{emit, generate};
use anyhow::{Context, bail};
use mip_test_support::{TestCluster, TestClusterOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What to measure and how often: shared by `run` and [`crate::compare`].
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Federation counts of the live measurements.
    pub sizes: Vec<usize>,
    /// Repetitions of each measurement.
    pub repeat: usize,
    /// Federation count of the extra offline-plan measurement.
    pub offline_size: usize,
    /// The time limit of each measured command (`None`: none); a command that outlives it is
    /// killed and reported as not finished.
    pub limit: Option<Duration>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Sizes, repetitions, time limit.
    pub schedule: Schedule,
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

impl SizeResult {
    /// mip's no-op applies that count: those that finished, in repetitions whose apply from
    /// empty finished (after one killed at the time limit, the next apply has work left).
    pub fn mip_noop_applies(&self) -> impl Iterator<Item = &Sample> {
        let empty = self.mip.get(&Op::ApplyEmpty).map_or(&[][..], Vec::as_slice);
        self.mip.get(&Op::ApplyNoop).into_iter().flatten().enumerate().filter_map(move |(rep, x)| {
            let complete = empty.get(rep).is_some_and(|e| e.timed_out.is_none());
            (complete && x.timed_out.is_none()).then_some(x)
        })
    }
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

pub(crate) fn first_line(mut command: Command) -> String {
    command
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().trim().to_owned())
        .unwrap_or_default()
}

pub(crate) fn machine_now() -> Machine {
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

/// One side of a lock-step comparison: what runs the four operations on its own cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contender {
    /// A `mip` binary (`mip-bench run`: the one measured; `compare`: the new or the old build).
    Mip(PathBuf),
    /// `kubectl` (the one built with the test cluster) on the emitted objects.
    Kubectl,
}

impl Contender {
    /// How its requests are counted.
    pub fn tool(&self) -> Tool {
        match self {
            Contender::Mip(_) => Tool::Mip,
            Contender::Kubectl => Tool::Kubectl,
        }
    }

    /// The command for `op` on `cluster`; `scratch` is this contender's own directory for this
    /// repetition (mip's state, kubectl's discovery cache).
    fn command(&self, cluster: &TestCluster, inputs: &Inputs, scratch: &Path, op: Op) -> Command {
        match self {
            Contender::Mip(mip) => {
                let mut command = Command::new(mip);
                match op {
                    Op::PlanEmpty | Op::PlanNoop => command.arg("plan"),
                    Op::ApplyEmpty | Op::ApplyNoop => {
                        command.args(["apply", "--auto-approve", "--wait-timeout", "0"])
                    }
                };
                command.arg("-i").arg(&inputs.inventory).arg("--state-dir").arg(scratch.join("state"));
                command
                    .env("KUBECONFIG", cluster.kubeconfig_path())
                    .env("MIP_STATS", "1")
                    .env("NO_COLOR", "1");
                for (key, value) in generate::ENV {
                    command.env(key, value);
                }
                command
            }
            Contender::Kubectl => {
                let mut command = cluster.kubectl();
                match op {
                    Op::PlanEmpty | Op::PlanNoop => command.arg("diff"),
                    Op::ApplyEmpty | Op::ApplyNoop => command.arg("apply"),
                };
                command
                    .args(["--server-side", "-v=6", "-f"])
                    .arg(&inputs.objects_path)
                    .arg("--cache-dir")
                    .arg(scratch.join("kubectl-cache"));
                command
            }
        }
    }
}

fn check(tool: Tool, op: Op, sample: &Sample) -> anyhow::Result<()> {
    // kubectl diff exits 1 when it finds differences. On an empty cluster it also fails (2) for
    // every object in a namespace that does not exist yet, after diffing the rest: kubectl cannot
    // preview a bootstrap; the report says so. Every other command must succeed. A command
    // killed at the time limit is reported as such, not checked.
    let ok = sample.timed_out.is_some()
        || match (tool, op) {
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

/// The generated inputs of one size, shared by every contender.
struct Inputs {
    /// Owns the files below; removed on drop.
    work: tempfile::TempDir,
    /// Federations.
    federations: usize,
    /// The generated inventory.
    inventory: PathBuf,
    /// The same objects for kubectl.
    objects_path: PathBuf,
    /// How many objects (documents of `objects_path`).
    objects: usize,
}

impl Inputs {
    /// Generates the inventory of `federations` and emits its objects.
    fn generate(federations: usize) -> anyhow::Result<Inputs> {
        let work = tempfile::tempdir().context("failed to create a work dir")?;
        let inventory = generate::write(work.path(), federations)?;
        let manifests = emit::manifests(&inventory)?;
        let objects_path = work.path().join("objects.yaml");
        std::fs::write(&objects_path, emit::objects(&inventory)?).context("failed to write objects.yaml")?;
        Ok(Inputs { federations, inventory, objects_path, objects: manifests.len(), work })
    }
}

/// The order of the contenders in repetition `rep`: as given on even repetitions, reversed on
/// odd ones, so that machine noise hits both sides of each ratio alike.
pub fn turn_order(contenders: usize, rep: usize) -> Vec<usize> {
    if rep.is_multiple_of(2) { (0..contenders).collect() } else { (0..contenders).rev().collect() }
}

/// Samples per operation, one map per contender (in the order the contenders were given).
pub type Samples = Vec<BTreeMap<Op, Vec<Sample>>>;

/// The live lock step of one size: for every repetition one fresh cluster per contender, then
/// the four operations in turn, each operation run by every contender back to back in
/// [`turn_order`]. The `i`-th sample of an operation of each contender is from repetition `i`.
fn lock_step(
    inputs: &Inputs,
    contenders: &[(&str, Contender)],
    repeat: usize,
    limit: Option<Duration>,
) -> anyhow::Result<Samples> {
    let n = inputs.federations;
    let mut samples: Samples = vec![BTreeMap::new(); contenders.len()];
    for rep in 0..repeat {
        progress(&format!(
            "N={n} ({} objects), repetition {}/{repeat}: starting {} clusters",
            inputs.objects,
            rep + 1,
            contenders.len()
        ));
        // Started side by side (the start is not measured; it waits mostly on etcd and the
        // API server's readiness).
        let clusters = std::thread::scope(|scope| {
            let starting: Vec<_> = contenders.iter().map(|_| scope.spawn(start_cluster)).collect();
            starting
                .into_iter()
                .map(|s| s.join().map_err(|_| anyhow::anyhow!("a cluster start panicked"))?)
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        for op in Op::ALL {
            let mut line = format!("N={n} rep {} {}:", rep + 1, op.label());
            for i in turn_order(contenders.len(), rep) {
                let (name, contender) = &contenders[i];
                let scratch = inputs.work.path().join(format!("rep-{rep}-{i}"));
                let command = contender.command(&clusters[i], inputs, &scratch, op);
                let sample = measure::run(&command, contender.tool(), limit)?;
                check(contender.tool(), op, &sample)
                    .with_context(|| format!("{name} at N={n}, repetition {}", rep + 1))?;
                line.push_str(&format!(" {name} {:.3} s", sample.seconds));
                if sample.timed_out.is_some() {
                    line.push_str(" (killed at the limit)");
                }
                samples[i].entry(op).or_default().push(sample);
            }
            progress(&line);
        }
    }
    Ok(samples)
}

/// `mip plan --offline` of `federations` by each binary, `repeat` times, in [`turn_order`]:
/// the number of objects planned and the samples per binary.
fn offline_lock_step(
    mips: &[(&str, &Path)],
    federations: usize,
    repeat: usize,
    limit: Option<Duration>,
) -> anyhow::Result<(usize, Vec<Vec<Sample>>)> {
    let work = tempfile::tempdir().context("failed to create a work dir")?;
    let inventory = generate::write(work.path(), federations)?;
    let objects = emit::manifests(&inventory)?.len();
    let mut samples = vec![Vec::new(); mips.len()];
    for rep in 0..repeat {
        let mut line = format!("offline N={federations} rep {}:", rep + 1);
        for i in turn_order(mips.len(), rep) {
            let (name, mip) = mips[i];
            let mut command = Command::new(mip);
            command
                .args(["plan", "--offline", "-i"])
                .arg(&inventory)
                .arg("--state-dir")
                .arg(work.path().join("no-state"));
            let sample = measure::run(&command, Tool::Mip, limit)?;
            if sample.exit != 0 && sample.timed_out.is_none() {
                bail!(
                    "`{name} plan --offline` at N={federations} exited with {}:\n{}",
                    sample.exit,
                    sample.stderr_tail
                );
            }
            line.push_str(&format!(" {name} {:.3} s", sample.seconds));
            samples[i].push(sample);
        }
        progress(&line);
    }
    Ok((objects, samples))
}

/// What a [`Schedule`] measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Per offline size, ascending: N, the objects planned and the samples of each binary.
    pub offline: Vec<(usize, usize, Vec<Vec<Sample>>)>,
    /// Per live size, as given: N, the objects and the samples of each contender.
    pub live: Vec<(usize, usize, Samples)>,
}

impl Schedule {
    /// The sizes of the offline measurements: every live size and the extra offline size.
    pub fn offline_sizes(&self) -> Vec<usize> {
        let mut all = self.sizes.clone();
        all.push(self.offline_size);
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Runs the offline plan of `offline` binaries at every [`Schedule::offline_sizes`], then the
    /// live lock step of the `live` contenders at every size.
    ///
    /// # Errors
    /// A cluster that does not start, a command that cannot run or fails.
    pub fn measure(&self, offline: &[(&str, &Path)], live: &[(&str, Contender)]) -> anyhow::Result<Measured> {
        let mut measured = Measured { offline: Vec::new(), live: Vec::new() };
        for n in self.offline_sizes() {
            let (objects, samples) = offline_lock_step(offline, n, self.repeat, self.limit)?;
            measured.offline.push((n, objects, samples));
        }
        for n in &self.sizes {
            let inputs = Inputs::generate(*n)?;
            let samples = lock_step(&inputs, live, self.repeat, self.limit)
                .with_context(|| format!("the lock step at N={n}"))?;
            measured.live.push((*n, inputs.objects, samples));
        }
        Ok(measured)
    }
}

/// The two sides of a pair of lock-step results (`run`: mip and kubectl; `compare`: new and old).
pub(crate) fn pair<T>(sides: Vec<T>) -> anyhow::Result<[T; 2]> {
    sides.try_into().map_err(|_| anyhow::anyhow!("the lock step lost a contender"))
}

/// Fails with a hint when `mip` is not a file.
pub(crate) fn require_binary(mip: &Path, flag: &str) -> anyhow::Result<()> {
    if !mip.is_file() {
        bail!(
            "no mip binary at `{}` (hint: `cargo build --release -p mip-cli`, or `{flag} PATH`)",
            mip.display()
        );
    }
    Ok(())
}

/// kubectl's client version, as `kubectl v…` (empty when unknown).
pub(crate) fn kubectl_version() -> String {
    let Ok(bin) = mip_test_support::binaries::bin_dir() else { return String::new() };
    let mut version = Command::new(bin.join("kubectl"));
    version.args(["version", "--client"]);
    first_line(version).replace("Client Version: ", "kubectl ")
}

/// Runs the whole benchmark. The caller writes the report (`benchmarks.md`, `.svg`), then
/// checks the no-op applies ([`check_noop_applies`]), so a no-op apply that writes is reported
/// before it is an error.
///
/// # Errors
/// A cluster that does not start, or a command that cannot run or fails.
pub fn run(options: &RunOptions) -> anyhow::Result<Results> {
    require_binary(&options.mip, "--mip")?;
    let started = Instant::now();
    let mut machine = machine_now();
    progress(&format!("load average at start: {}", machine.load_start));
    let measured = options.schedule.measure(
        &[("mip", &options.mip)],
        &[("mip", Contender::Mip(options.mip.clone())), ("kubectl", Contender::Kubectl)],
    )?;
    let offline = measured
        .offline
        .into_iter()
        .map(|(federations, objects, mut samples)| OfflineResult {
            federations,
            objects,
            samples: samples.swap_remove(0),
        })
        .collect();
    let mut sizes = Vec::new();
    for (federations, objects, samples) in measured.live {
        let [mip, kubectl] = pair(samples)?;
        sizes.push(SizeResult { federations, objects, mip, kubectl });
    }
    machine.kubectl_version = kubectl_version();
    machine.load_end = load_average();
    machine.total_seconds = started.elapsed().as_secs_f64();
    Ok(Results { options: options.clone(), sizes, offline, machine })
}

/// A no-op `mip apply` writes nothing, and reports its requests.
///
/// # Errors
/// The sizes at which one wrote (or did not report its requests).
pub fn check_noop_applies(results: &Results) -> anyhow::Result<()> {
    let writing: Vec<String> = results
        .sizes
        .iter()
        .flat_map(|s| s.mip_noop_applies().map(move |x| (s.federations, x)))
        .filter(|(_, x)| x.requests.is_none_or(|r| r.writes > 0))
        .map(|(n, x)| format!("N={n}: {:?}", x.requests))
        .collect();
    if !writing.is_empty() {
        bail!("a no-op `mip apply` wrote (or did not report its requests): {}", writing.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_alternate_by_repetition() {
        assert_eq!(turn_order(2, 0), [0, 1]);
        assert_eq!(turn_order(2, 1), [1, 0]);
        assert_eq!(turn_order(2, 4), [0, 1]);
        assert_eq!(turn_order(1, 3), [0]);
    }
}
