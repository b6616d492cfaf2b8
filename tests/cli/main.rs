//! End-to-end tests of the `mip` binary: exit codes, streams, formats, determinism, files.
//! Each test runs the real binary on the shipped examples or on a temporary inventory.

mod adopt;
mod apps;
mod argocd;
mod argocd_clusters;
mod argocd_healthy;
mod argocd_platform;
mod clusters;
mod docs;
mod doctor;
mod edit;
mod examples_live;
mod faults;
mod graph;
mod import;
mod live;
mod metrics;
mod operate;
mod plan;
mod rbac;
mod release;
mod render;
mod review;
mod secrets;
mod secrets_live;
mod state_cluster;
mod takeover;
mod validate;
mod workflow;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("root")
}

/// Runs `mip` with arguments, from the workspace root, with a clean environment.
pub fn mip(args: &[&str]) -> Output {
    mip_env(args, &[])
}

/// Runs `mip` with extra environment variables.
pub fn mip_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mip"));
    cmd.args(args).current_dir(root()).env_remove("MIP_INVENTORY").env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("mip runs")
}

/// Exit code.
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8")
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8")
}

/// Runs `git` in `dir` (as a throwaway identity, unsigned); its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

/// Writes an inventory into a temp dir and returns (dir, path).
pub fn temp_inventory(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mip.yaml");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

/// A valid minimal inventory text.
pub const MINIMAL: &str = "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {namespace: argocd}\nrevision: main\nrepositories:\n  infra: {url: 'https://example.org/infra.git'}\n  deployments: {url: 'https://example.org/deploy.git'}\nupstreamRepos: ['https://github.com/madgik/exareme2']\nfederations:\n  - {name: federation-A, kind: local, apps: [{name: exareme2}]}\n";
