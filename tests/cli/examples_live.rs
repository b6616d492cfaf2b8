//! Fresh bootstraps of the shipped examples on dedicated real clusters (the examples name their
//! own Argo CD namespace), with the Argo-generated objects created from a separate thread as Argo
//! CD would, to release the gates; and crash safety: `kill -9` of mip during an apply.

use crate::*;
use mip_test_support::{TestCluster, TestClusterOptions};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn mip_on(cluster: &TestCluster, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mip"));
    cmd.args(args)
        .current_dir(dir)
        .env("KUBECONFIG", cluster.kubeconfig_path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Deep merge of `top` into `base`.
fn merge(base: &mut serde_json::Value, top: &serde_json::Value) {
    match (base, top) {
        (serde_json::Value::Object(b), serde_json::Value::Object(t)) => {
            for (k, v) in t {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, t) => *b = t.clone(),
    }
}

/// Creates, as Argo CD would (manager `argocd-controller`), every object the plan expects, with
/// the fields the plan says mip models for it (over a minimal valid spec).
pub(crate) fn play_argo(cluster: &TestCluster, expected: &[(String, serde_json::Value)]) {
    let mut docs = String::new();
    for (addr, model) in expected {
        let parts: Vec<&str> = addr.split('/').collect();
        let [_, _, kind, ns, name] = parts.as_slice() else { panic!("unexpected address {addr}") };
        let mut doc = match *kind {
            "AppProject" => serde_json::json!({"spec": {"description": "generated"}}),
            "Application" => serde_json::json!({"spec": {"project": "p",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"},
                "source": {"repoURL": "https://example.org/r.git", "path": "p"}}}),
            "ApplicationSet" => {
                serde_json::json!({"spec": {"generators": [], "template": {"metadata": {"name": "x"},
                "spec": {"project": "p", "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"}}}}})
            }
            other => panic!("unexpected kind {other}"),
        };
        if model.get("spec").and_then(|s| s.get("sources")).is_some()
            && let Some(spec) = doc.get_mut("spec").and_then(serde_json::Value::as_object_mut)
        {
            spec.remove("source");
        }
        if model.is_object() {
            merge(&mut doc, model);
        }
        merge(
            &mut doc,
            &serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": ns}}),
        );
        docs.push_str(&format!("---\n{doc}\n"));
    }
    let mut child = cluster
        .kubectl()
        .args(["apply", "--server-side", "--field-manager=argocd-controller", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(docs.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Reports every Application in `ns` Synced (compared with the revision its spec tracks) and
/// Healthy, as Argo CD's application controller does once it has synced (the Application CRD
/// has no status subresource).
pub(crate) fn report_healthy(cluster: &TestCluster, ns: &str) {
    let o =
        cluster.kubectl().args(["get", "applications", "-n", ns, "-o", "json"]).output().expect("kubectl");
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    for app in list["items"].as_array().cloned().unwrap_or_default() {
        let name = app["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let destination = app["spec"]["destination"].clone();
        let compared = match app["spec"]["sources"].as_array() {
            Some(sources) => serde_json::json!({ "sources": sources, "destination": destination }),
            None => serde_json::json!({ "source": app["spec"]["source"], "destination": destination }),
        };
        let status = serde_json::json!({"status": {
            "sync": {"status": "Synced", "comparedTo": compared},
            "health": {"status": "Healthy"}}});
        let o = cluster
            .kubectl()
            .args(["patch", "application", &name, "-n", ns, "--type", "merge", "-p", &status.to_string()])
            .output()
            .expect("kubectl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

fn exists(cluster: &TestCluster, ns: &str, name: &str) -> bool {
    cluster.kubectl().args(["get", "application", "-n", ns, name]).output().expect("kubectl").status.success()
}

fn bootstrap(example: &str, argocd_ns: &str, prepare: impl Fn(&Path) -> Vec<(String, String)>) {
    let cluster =
        TestCluster::start(TestClusterOptions { argocd_namespace: argocd_ns.into(), ..Default::default() });
    let dir = tempfile::tempdir().expect("tmp");
    let src = root().join("examples").join(example);
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).expect("rel");
        let dst = dir.path().join(rel);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &dst).expect("copy");
    }
    let env_owned = prepare(dir.path());
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let plan = mip_on(&cluster, dir.path(), &["plan", "-i", "mip.yaml", "--output", "json"], &env)
        .output()
        .expect("mip");
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let p: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("json");
    let expected: Vec<(String, serde_json::Value)> = p["expected"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| (e["address"].as_str().expect("a").to_owned(), e["model"].clone()))
        .collect();

    // A gate that never releases fails, naming what is missing.
    let short = mip_on(
        &cluster,
        dir.path(),
        &["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "2"],
        &env,
    )
    .output()
    .expect("mip");
    assert_eq!(code(&short), 5, "{}", stderr(&short));
    assert!(stderr(&short).contains("pending: argoproj.io/v1alpha1/AppProject/"), "{}", stderr(&short));
    assert!(stderr(&short).contains("not created yet"), "{}", stderr(&short));
    // The order holds across the Argo CD boundary: the argo-projects root was written, the
    // infra root waited at its gate for the projects Argo CD never generated.
    assert!(exists(&cluster, argocd_ns, "main-argo-projects"), "{}", stderr(&short));
    assert!(
        !exists(&cluster, argocd_ns, "main-infra-clusterset"),
        "infra root written before its gate opened"
    );
    assert!(stderr(&short).contains("skipped (waits for `argoproj.io/v1alpha1/"), "{}", stderr(&short));

    // "Argo CD" creates its objects from another thread while mip waits, and reports every
    // Application Synced and Healthy once it exists: the gates release, the final wait ends.
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let argo = std::thread::scope(|s| {
        let h = s.spawn(|| {
            std::thread::sleep(Duration::from_secs(2));
            play_argo(&cluster, &expected);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                report_healthy(&cluster, argocd_ns);
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let out = mip_on(
            &cluster,
            dir.path(),
            &["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "60"],
            &env,
        )
        .output()
        .expect("mip");
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        h.join().expect("argo thread");
        out
    });
    assert_eq!(code(&argo), 0, "{}", stderr(&argo));
    assert!(started.elapsed() < Duration::from_secs(60));
    let again = mip_on(&cluster, dir.path(), &["plan", "-i", "mip.yaml", "--detailed-exitcode"], &env)
        .output()
        .expect("mip");
    assert_eq!(code(&again), 0, "re-plan after bootstrap is not empty:\n{}", stdout(&again));
    let drift = mip_on(&cluster, dir.path(), &["drift", "-i", "mip.yaml"], &env).output().expect("mip");
    assert_eq!(code(&drift), 0, "{}", stdout(&drift));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn examples_minimal_bootstraps_from_scratch() {
    bootstrap("minimal", "argocd", |_| Vec::new());
}

#[test]
fn examples_mip_infra_bootstraps_from_scratch() {
    bootstrap("mip-infra", "argocd-mip-team", |dir| {
        // The SSH key file exists; the prompt becomes an env source for an unattended run.
        std::fs::write(
            dir.join("argocd-remote-key"),
            "-----BEGIN OPENSSH PRIVATE KEY-----\ntest-key\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .expect("key");
        let inv = std::fs::read_to_string(dir.join("mip.yaml"))
            .expect("inv")
            .replace("{prompt: \"Keycloak client secret\"}", "{env: MIP_KEYCLOAK_CLIENT_SECRET}");
        std::fs::write(dir.join("mip.yaml"), inv).expect("inv");
        vec![
            ("MIP_KEYCLOAK_CLIENT_ID".into(), "id".into()),
            ("MIP_KEYCLOAK_CLIENT_SECRET".into(), "secret".into()),
        ]
    });
}

#[test]
fn kill_9_during_apply_loses_nothing_and_the_next_apply_converges() {
    let cluster =
        TestCluster::start(TestClusterOptions { argocd_namespace: "argocd".into(), ..Default::default() });
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(root().join("examples/minimal/mip.yaml"), dir.path().join("mip.yaml")).expect("copy");
    for delay_ms in [50u64, 150, 400] {
        let mut child = mip_on(
            &cluster,
            dir.path(),
            &["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "0", "--parallelism", "1"],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = Command::new("kill").args(["-9", &child.id().to_string()]).status();
        let _ = child.wait();
        // The lock died with the process; the state is readable and consistent.
        let st =
            mip_on(&cluster, dir.path(), &["state", "list", "--output", "json"], &[]).output().expect("mip");
        assert_eq!(code(&st), 0, "after kill at {delay_ms} ms: {}", stderr(&st));
    }
    let done = mip_on(
        &cluster,
        dir.path(),
        &["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "0"],
        &[],
    )
    .output()
    .expect("mip");
    assert_eq!(code(&done), 0, "{}", stderr(&done));
    let plan = mip_on(&cluster, dir.path(), &["plan", "-i", "mip.yaml", "--detailed-exitcode"], &[])
        .output()
        .expect("mip");
    assert_eq!(code(&plan), 0, "not converged:\n{}", stdout(&plan));
    // No duplicates: exactly one root of each kind.
    let apps = cluster
        .kubectl()
        .args(["get", "applications", "-n", "argocd", "-o", "name"])
        .output()
        .expect("kubectl");
    let names = String::from_utf8_lossy(&apps.stdout);
    assert_eq!(names.lines().filter(|l| l.ends_with("main-argo-projects")).count(), 1, "{names}");
    let st: serde_json::Value = serde_json::from_slice(
        &mip_on(&cluster, dir.path(), &["state", "list", "--output", "json"], &[])
            .output()
            .expect("mip")
            .stdout,
    )
    .expect("json");
    let managed = st["managed"].as_array().expect("m");
    assert_eq!(managed.len(), 5, "{st}");
}
