//! How long Argo CD takes to act on what mip applies, with and without mip's refresh: on a
//! dedicated real cluster with the real Argo CD controllers at Argo CD's default resync (180 s),
//! a bootstrap of a one-federation platform (`mip apply` until every object Argo CD generates
//! exists), then a second federation added through Git (`mip federation add`, `mip render`,
//! commit, `mip apply` until its Applications exist). Each run starts its own cluster and Argo CD.
//!
//! The refresh matters most for the second step: the roots do not change, so without the
//! `argocd.argoproj.io/refresh` and `application-set-refresh` annotations Argo CD only notices
//! the new commit at its next resync.

use crate::stats::summarize;
use anyhow::{Context, bail};
use mip_test_support::{ArgoCd, ArgoCdOptions, TestCluster, TestClusterOptions};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs per mode.
    pub repeat: usize,
    /// The mip binary.
    pub mip: PathBuf,
}

/// One run's two durations, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// From `mip apply` on an empty cluster to every generated object existing.
    pub bootstrap: f64,
    /// From `mip apply` after a federation was added in Git to its Applications existing.
    pub add_federation: f64,
}

fn inventory(repo: &str, ns: &str) -> String {
    format!(
        "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd:\n  namespace: {ns}\nrevision: main\n\
         repositories:\n  infra:\n    url: {repo}\n  deployments:\n    url: {repo}\n\
         upstreamRepos:\n  - https://github.com/madgik/exareme2\n\
         federations:\n  - name: federation-A\n    kind: local\n    apps:\n      - name: exareme2\n"
    )
}

fn mip(cluster: &TestCluster, dir: &Path, mip: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(mip)
        .args(args)
        .current_dir(dir)
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .env("NO_COLOR", "1")
        .env_remove("MIP_INVENTORY")
        .output()
        .with_context(|| format!("failed to run {}", mip.display()))?;
    if !out.status.success() {
        bail!("`mip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// `mip apply` until what Argo CD generates exists; its wall time in seconds.
fn timed_apply(cluster: &TestCluster, dir: &Path, exe: &Path, refresh: bool) -> anyhow::Result<f64> {
    let mut args =
        vec!["apply", "-i", "mip.yaml", "--auto-approve", "--wait-for", "exists", "--wait-timeout", "10m"];
    if !refresh {
        args.push("--no-refresh");
    }
    let started = Instant::now();
    mip(cluster, dir, exe, &args)?;
    Ok(started.elapsed().as_secs_f64())
}

fn one_run(options: &Options, refresh: bool) -> anyhow::Result<Sample> {
    let cluster = TestCluster::start(TestClusterOptions::default());
    let argocd =
        ArgoCd::start(&cluster, ArgoCdOptions { resync: Duration::from_secs(180), ..Default::default() });
    let dir = tempfile::tempdir().context("failed to create a temp dir")?;
    let d = dir.path();
    std::fs::write(d.join("mip.yaml"), inventory(&argocd.repo_url(), cluster.argocd_namespace()))?;
    mip(&cluster, d, &options.mip, &["render", "tree", "-i", "mip.yaml"])?;
    argocd.commit_tree(&d.join("tree"), "federation-A");
    let bootstrap = timed_apply(&cluster, d, &options.mip, refresh)?;
    mip(
        &cluster,
        d,
        &options.mip,
        &["federation", "add", "federation-B", "--kind", "local", "--app", "exareme2", "-i", "mip.yaml"],
    )?;
    mip(&cluster, d, &options.mip, &["render", "tree", "-i", "mip.yaml"])?;
    argocd.commit_tree(&d.join("tree"), "federation-B");
    let add_federation = timed_apply(&cluster, d, &options.mip, refresh)?;
    Ok(Sample { bootstrap, add_federation })
}

/// Runs both modes `repeat` times, interleaved; a Markdown section with medians and ranges.
///
/// # Errors
/// A cluster, Argo CD or mip that fails.
pub fn run(options: &Options) -> anyhow::Result<String> {
    let mut with = Vec::new();
    let mut without = Vec::new();
    for i in 0..options.repeat {
        for refresh in [i % 2 == 0, i % 2 != 0] {
            let s = one_run(options, refresh)?;
            crate::run::progress(&format!(
                "run {}: refresh={refresh} bootstrap {:.1} s, add federation {:.1} s",
                i + 1,
                s.bootstrap,
                s.add_federation
            ));
            if refresh { with.push(s) } else { without.push(s) }
        }
    }
    let cell = |xs: &[Sample], pick: fn(&Sample) -> f64| {
        let v: Vec<f64> = xs.iter().map(pick).collect();
        summarize(&v)
            .map_or_else(|| "-".to_owned(), |s| format!("{:.1} s ({:.1}–{:.1})", s.median, s.min, s.max))
    };
    let mut md = String::new();
    let _ = writeln!(md, "| step (Argo CD resync 180 s) | with refresh | `--no-refresh` |");
    let _ = writeln!(md, "|---|---|---|");
    let _ = writeln!(
        md,
        "| bootstrap: `mip apply` to every generated object existing | {} | {} |",
        cell(&with, |s| s.bootstrap),
        cell(&without, |s| s.bootstrap)
    );
    let _ = writeln!(
        md,
        "| a federation added in Git: `mip apply` to its Applications existing | {} | {} |",
        cell(&with, |s| s.add_federation),
        cell(&without, |s| s.add_federation)
    );
    let _ = writeln!(
        md,
        "\nMedian (min–max) of {} run(s) per mode, each on its own cluster and Argo CD.",
        options.repeat
    );
    Ok(md)
}
