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
mod schema;
mod secrets;
mod secrets_live;
mod state_cluster;
mod takeover;
mod validate;
mod workflow;

pub use mip_core::{MANAGED_BY_LABEL, MANAGED_BY_SELECTOR, MANAGED_BY_VALUE};
pub use mip_test_support::{App, Cluster, Federation, Inventory, Mip, Secret};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("root")
}

/// The `mip` binary this crate builds.
pub const MIP_BIN: &str = env!("CARGO_BIN_EXE_mip");

/// The `mip` binary this crate builds, as a [`Mip`] runner: clean (`NO_COLOR=1`, no
/// `MIP_INVENTORY`, stdin empty), in the caller's directory until `.dir(…)`.
pub fn mip_cmd() -> Mip {
    Mip::new(MIP_BIN)
}

/// `mip` in `dir` against `cluster` (its admin kubeconfig in `KUBECONFIG`).
pub fn mip_on(cluster: &mip_test_support::TestCluster, dir: &Path) -> Mip {
    mip_cmd().kubeconfig(cluster.kubeconfig_path()).dir(dir)
}

/// `mip` in `dir` with `KUBECONFIG=kubeconfig` (paths joined by `:`) and `-i mip.yaml`.
pub fn mip_in(dir: &Path, kubeconfig: &str) -> Mip {
    mip_cmd().dir(dir).kubeconfig(kubeconfig).inventory("mip.yaml")
}

/// Runs `mip` with arguments, from the workspace root, with a clean environment.
pub fn mip(args: &[&str]) -> Output {
    mip_env(args, &[])
}

/// Runs `mip` with extra environment variables.
pub fn mip_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    mip_cmd().args(args).dir(root()).envs(env).run()
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

/// A valid minimal inventory text. Kept as text, not an [`Inventory`]: tests edit it as text
/// (`replace`, appended federations) and compare files with it byte for byte.
pub const MINIMAL: &str = "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {namespace: argocd}\nrevision: main\nrepositories:\n  infra: {url: 'https://example.org/infra.git'}\n  deployments: {url: 'https://example.org/deploy.git'}\nupstreamRepos: ['https://github.com/madgik/exareme2']\nfederations:\n  - {name: federation-A, kind: local, apps: [{name: exareme2}]}\n";

/// A secret value the leak canaries look for, and what it is (failures name that, never the
/// value).
pub struct Canary {
    /// What the value is (named in failures).
    pub what: String,
    /// The value.
    pub value: String,
}

impl Canary {
    /// A canary named `what`.
    pub fn new(what: impl Into<String>, value: impl Into<String>) -> Self {
        Self { what: what.into(), value: value.into() }
    }

    /// Every form the value may take in an artifact, by name: raw; base64 as Kubernetes stores
    /// a Secret's `data` value; and, for a value inside a larger base64-encoded blob (a whole
    /// manifest or `data:` map encoded), the run of characters its bytes encode to at each of
    /// the three alignments, in the standard and the URL-safe alphabets.
    fn forms(&self) -> Vec<(String, String)> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let v = self.value.as_bytes();
        let mut forms =
            vec![("raw".to_owned(), self.value.clone()), ("base64".to_owned(), STANDARD.encode(v))];
        for skip in 0..3 {
            let whole = (v.len() - skip) / 3 * 3;
            let core = &v[skip..skip + whole];
            forms.push((format!("base64 within a blob (offset {skip})"), STANDARD_NO_PAD.encode(core)));
            forms.push((format!("base64url within a blob (offset {skip})"), URL_SAFE_NO_PAD.encode(core)));
        }
        forms
    }
}

/// The canaries of every `data` value of a Secret (`kubectl get secret`), named by the Secret
/// and key, `what` added (e.g. "generated").
pub fn secret_canaries(mut kubectl: Command, ns: &str, name: &str, what: &str) -> Vec<Canary> {
    use base64::Engine as _;
    let o = kubectl.args(["get", "secret", "-n", ns, name, "-o", "json"]).output().expect("kubectl runs");
    assert!(o.status.success(), "kubectl get secret {ns}/{name}: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let data = v["data"].as_object().unwrap_or_else(|| panic!("Secret {ns}/{name} has no data"));
    data.iter()
        .map(|(key, b64)| {
            let raw =
                base64::engine::general_purpose::STANDARD.decode(b64.as_str().expect("str")).expect("base64");
            Canary::new(
                format!("{what} `{key}` of Secret {ns}/{name}"),
                String::from_utf8(raw).expect("utf-8"),
            )
        })
        .collect()
}

/// What a test's runs left (stdout, stderr, files), by name, for the leak canaries.
#[derive(Default)]
pub struct Artifacts(Vec<(String, Vec<u8>)>);

impl Artifacts {
    /// A run's stdout and stderr.
    pub fn keep(&mut self, what: &str, o: &Output) {
        self.bytes(&format!("{what}: stdout"), o.stdout.clone());
        self.bytes(&format!("{what}: stderr"), o.stderr.clone());
    }

    /// Any other bytes.
    pub fn bytes(&mut self, what: &str, bytes: Vec<u8>) {
        self.0.push((what.to_owned(), bytes));
    }

    /// A file, which must exist.
    pub fn file(&mut self, what: &str, path: &Path) {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{what} {}: {e}", path.display()));
        self.bytes(&format!("{what} {}", path.display()), bytes);
    }

    /// Every file under `dir` (`.git` directories left out: their objects are compressed), at
    /// least one.
    pub fn dir(&mut self, what: &str, dir: &Path) {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten()
            {
                let p = entry.path();
                if p.is_dir() {
                    if p.file_name().is_some_and(|n| n != ".git") {
                        walk(&p, out);
                    }
                } else {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(dir, &mut files);
        assert!(!files.is_empty(), "{what}: no file under {}", dir.display());
        for p in files {
            self.file(what, &p);
        }
    }

    /// No canary, in any of its forms, is in any artifact. A failure names the canary, the
    /// form and the artifact, never the value. Canaries shorter than 16 characters are refused:
    /// they would match by chance.
    pub fn assert_no_secret(&self, canaries: &[Canary]) {
        assert!(!canaries.is_empty() && !self.0.is_empty(), "nothing to check");
        let mut seen = std::collections::BTreeSet::new();
        let mut checks = Vec::new();
        for c in canaries.iter().filter(|c| seen.insert(c.value.as_str())) {
            assert!(
                c.value.len() >= 16,
                "canary {} is too short to be unique ({} chars)",
                c.what,
                c.value.len()
            );
            checks.push((c, c.forms()));
        }
        let mut leaks = Vec::new();
        for (what, bytes) in &self.0 {
            let text = String::from_utf8_lossy(bytes);
            for (c, forms) in &checks {
                // The first form found is enough (raw, then base64, then within a blob).
                if let Some((form, _)) = forms.iter().find(|(_, needle)| text.contains(needle.as_str())) {
                    leaks.push(format!("{} ({form}) in {what}", c.what));
                }
            }
        }
        let shown = leaks.len().min(30);
        assert!(
            leaks.is_empty(),
            "{} secret leak(s) (a secret, in the form named, in an artifact):\n  {}{}",
            leaks.len(),
            leaks[..shown].join("\n  "),
            if shown < leaks.len() {
                format!("\n  … and {} more", leaks.len() - shown)
            } else {
                String::new()
            }
        );
    }
}
