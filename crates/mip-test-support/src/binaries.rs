//! Finding the control-plane binaries and the Argo CD CRDs through `tools/testcluster/build.sh`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Overrides the bin dir (skips `build.sh`); it must hold `etcd`, `kube-apiserver`,
/// `kube-controller-manager` and `kubectl`.
pub const BIN_DIR_ENV: &str = "MIP_TESTCLUSTER_BIN_DIR";
/// Overrides the directory holding the Argo CD `*-crd.yaml` files (skips `build.sh crds-dir`).
pub const CRDS_DIR_ENV: &str = "MIP_TESTCLUSTER_CRDS_DIR";

/// The binaries every cluster needs, all in one bin dir.
pub const BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
];

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
        cache_hit: log
            .lines()
            .any(|line| line.starts_with("build.sh: cache hit")),
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
    let output = child
        .wait_with_output()
        .context("failed to wait for build.sh")?;
    if !output.status.success() {
        bail!(
            "`bash {} {arg}` failed ({}):\n{log}",
            script.display(),
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if stdout.is_empty() {
        bail!(
            "`bash {} {arg}` printed no directory:\n{log}",
            script.display()
        );
    }
    Ok((stdout, log))
}
