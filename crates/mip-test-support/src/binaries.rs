//! Finding the control-plane binaries, the Argo CD CRDs and the opt-in tiers' binaries through
//! `tools/testcluster/build.sh`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Overrides the bin dir (skips `build.sh`); it must hold `etcd`, `kube-apiserver`,
/// `kube-controller-manager` and `kubectl`.
pub const BIN_DIR_ENV: &str = "MIP_TESTCLUSTER_BIN_DIR";
/// Overrides the directory holding the Argo CD `*-crd.yaml` files (skips `build.sh crds-dir`).
pub const CRDS_DIR_ENV: &str = "MIP_TESTCLUSTER_CRDS_DIR";

/// Overrides the Argo CD tier's bin dir (skips `build.sh argocd-bin-dir`); it must hold
/// [`ARGOCD_BINARIES`].
pub const ARGOCD_BIN_DIR_ENV: &str = "MIP_TESTCLUSTER_ARGOCD_BIN_DIR";

/// The Argo CD tier's binaries: one `argocd` binary (dispatching on its name, with a link per
/// component) and the tools the repo-server runs.
pub const ARGOCD_BINARIES: [&str; 6] = [
    "argocd",
    "argocd-application-controller",
    "argocd-applicationset-controller",
    "argocd-repo-server",
    "helm",
    "kustomize",
];

/// Overrides the workload tier's bin dir (skips `build.sh kwok-bin-dir`); it must hold
/// [`KWOK_BINARIES`] and [`KWOK_STAGES_FILE`].
pub const KWOK_BIN_DIR_ENV: &str = "MIP_TESTCLUSTER_KWOK_BIN_DIR";

/// The workload tier's binaries ([`crate::workloads`]): the node simulator and the scheduler
/// (built from the same Kubernetes module as [`BINARIES`]).
pub const KWOK_BINARIES: [&str; 2] = ["kwok", "kube-scheduler"];

/// kwok's Stage objects (`node-initialize`, `pod-ready`, `pod-complete`, `pod-delete` from
/// `kustomize/stage/` of the pinned kwok module), one YAML stream next to [`KWOK_BINARIES`],
/// passed to `kwok --config`.
pub const KWOK_STAGES_FILE: &str = "kwok-stages.yaml";

/// The binaries every cluster needs, all in one bin dir.
pub const BINARIES: [&str; 4] = ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"];

/// What one run of `build.sh` reported.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The directory holding [`BINARIES`].
    pub bin_dir: PathBuf,
    /// True when `build.sh` found every binary in its cache and compiled nothing.
    pub cache_hit: bool,
    /// Everything `build.sh` wrote to stderr (also forwarded to this process's stderr).
    pub log: String,
}

/// The build script, found relative to this crate's sources.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/testcluster/build.sh")
}

/// Runs `build.sh bin-dir`: a no-op cache hit when the binaries exist, else a Go build
/// (5-10 minutes cold on 2 cores). Build logs stream to stderr as they come.
pub fn build() -> Result<BuildReport> {
    let (stdout, log) = run_build_script("bin-dir")?;
    Ok(BuildReport {
        bin_dir: PathBuf::from(stdout),
        cache_hit: log.lines().any(|line| line.starts_with("build.sh: cache hit")),
        log,
    })
}

/// The bin dir: `$MIP_TESTCLUSTER_BIN_DIR` if set, else whatever [`build`] returns.
pub fn bin_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os(BIN_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => build()?.bin_dir,
    };
    for binary in BINARIES {
        let path = dir.join(binary);
        if !path.is_file() {
            bail!("`{}` is missing", path.display());
        }
    }
    Ok(dir)
}

/// The Argo CD tier's bin dir: `$MIP_TESTCLUSTER_ARGOCD_BIN_DIR` if set, else
/// `build.sh argocd-bin-dir` (a Go build of Argo CD, helm and kustomize when not cached).
pub fn argocd_bin_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os(ARGOCD_BIN_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(run_build_script("argocd-bin-dir")?.0),
    };
    for binary in ARGOCD_BINARIES {
        let path = dir.join(binary);
        if !path.is_file() {
            bail!("`{}` is missing", path.display());
        }
    }
    Ok(dir)
}

/// The workload tier's bin dir: `$MIP_TESTCLUSTER_KWOK_BIN_DIR` if set, else
/// `build.sh kwok-bin-dir` (a Go build of kwok and kube-scheduler when not cached: about 5
/// minutes cold on 2 cores, 1.5 after the control plane's build).
pub fn kwok_bin_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os(KWOK_BIN_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(run_build_script("kwok-bin-dir")?.0),
    };
    for file in KWOK_BINARIES.iter().chain([&KWOK_STAGES_FILE]) {
        let path = dir.join(file);
        if !path.is_file() {
            bail!("`{}` is missing", path.display());
        }
    }
    Ok(dir)
}

/// `redis-server` from `PATH` (Argo CD's cache). The test command installs Debian's package
/// when it is missing (`tools/testcluster/ensure-redis.sh`); the harness only looks.
pub fn redis_server() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "`redis-server` is not on PATH; install it with `bash {}` \
                 (Debian's redis-server package; `bash scripts/test` does this itself)",
                build_script().with_file_name("ensure-redis.sh").display()
            )
        })
}

/// The Argo CD CRD dir: `$MIP_TESTCLUSTER_CRDS_DIR` if set, else `build.sh crds-dir`.
pub fn crds_dir() -> Result<PathBuf> {
    match std::env::var_os(CRDS_DIR_ENV) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(PathBuf::from(run_build_script("crds-dir")?.0)),
    }
}

/// Runs the build script with one argument; returns (trimmed stdout, stderr). Stderr is
/// forwarded line by line, straight to fd 2, so a long build shows progress even under the
/// test harness's output capture.
fn run_build_script(arg: &str) -> Result<(String, String)> {
    let script = build_script();
    let mut child = Command::new("bash")
        .arg(&script)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to run `{}`", script.display()))?;
    let mut log = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("failed to read build.sh output")?;
            // Progress for humans; nothing to do if stderr is gone.
            let _ = writeln!(std::io::stderr(), "{line}");
            log.push_str(&line);
            log.push('\n');
        }
    }
    let output = child.wait_with_output().context("failed to wait for build.sh")?;
    if !output.status.success() {
        bail!("`bash {} {arg}` failed ({}):\n{log}", script.display(), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if stdout.is_empty() {
        bail!("`bash {} {arg}` printed no directory:\n{log}", script.display());
    }
    Ok((stdout, log))
}
