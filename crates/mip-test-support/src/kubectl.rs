//! Blocking helpers on a [`TestCluster`] through its `kubectl`, for tests without a runtime or
//! a kube client of their own (the `mip` CLI tests).

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::TestCluster;

impl TestCluster {
    /// [`TestCluster::fresh_namespace`] from a plain (non-async) test.
    ///
    /// # Panics
    ///
    /// If the namespace cannot be created.
    pub fn fresh_namespace_blocking(&self, prefix: &str) -> String {
        let created = crate::block_on_private_thread("fresh namespace", async {
            anyhow::Ok(self.fresh_namespace(prefix).await)
        });
        created.unwrap_or_else(|error| panic!("{error:#}"))
    }

    /// `kubectl ARGS` run to the end.
    ///
    /// # Panics
    ///
    /// If kubectl cannot be started.
    pub fn kubectl_run(&self, args: &[&str]) -> Output {
        self.kubectl().args(args).output().expect("kubectl runs")
    }

    /// `kubectl ARGS -o json`, parsed.
    ///
    /// # Panics
    ///
    /// If kubectl fails or prints no JSON.
    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let o = self.kubectl().args(args).args(["-o", "json"]).output().expect("kubectl runs");
        assert!(o.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).expect("kubectl prints JSON")
    }

    /// The objects of `kind` in namespace `ns` (`kubectl get <kind> -n <ns> -o json` items).
    ///
    /// # Panics
    ///
    /// If kubectl fails.
    pub fn items(&self, kind: &str, ns: &str) -> Vec<Value> {
        self.kubectl_json(&["get", kind, "-n", ns])["items"].as_array().cloned().unwrap_or_default()
    }

    /// Whether the object `kind` `ns`/`name` exists.
    ///
    /// # Panics
    ///
    /// If kubectl fails for another reason than the object's absence.
    pub fn exists(&self, kind: &str, ns: &str, name: &str) -> bool {
        let o = self.kubectl_run(&["get", kind, "-n", ns, name, "--ignore-not-found", "-o", "name"]);
        assert!(o.status.success(), "kubectl get {kind} {ns}/{name}: {}", String::from_utf8_lossy(&o.stderr));
        !o.stdout.is_empty()
    }

    /// `kubectl apply -f -` of `manifest` (as the cluster admin), with extra `flags`.
    ///
    /// # Panics
    ///
    /// If kubectl fails.
    pub fn kubectl_apply(&self, manifest: &str, flags: &[&str]) {
        let mut kubectl = self.kubectl();
        kubectl.args(["apply", "-f", "-"]).args(flags);
        let out = run_piped(kubectl, manifest);
        assert!(
            out.status.success(),
            "kubectl apply {flags:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `command` with `input` on its stdin (written from a thread of its own, so a command
/// that prints while it reads cannot block) and returns its output.
///
/// # Panics
///
/// If the command cannot be started.
pub fn run_piped(mut command: Command, input: impl Into<Vec<u8>>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{command:?} does not start: {error}"));
    let input = input.into();
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || stdin.write_all(&input));
    }
    child.wait_with_output().unwrap_or_else(|error| panic!("wait for {command:?}: {error}"))
}
