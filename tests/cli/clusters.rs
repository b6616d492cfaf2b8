//! Federations across clusters, on two dedicated real API servers (each with its own etcd and
//! CA): a federation that deploys to a second cluster is planned, applied, drifted and
//! destroyed there, through the second cluster's own kubeconfig context, while the cluster
//! Secret Argo CD uses lands on the management cluster.

use crate::*;
use mip_test_support::{CONTEXT, TestCluster, TestClusterOptions};
use std::path::Path;
use std::process::Command;

const TOKEN: &str = "CANARY-hospital-token-5e1f";

fn mip_in(dir: &Path, kubeconfig: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mip"))
        .args(args)
        .args(["-i", "mip.yaml", "--state-dir", "state"])
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .env("HOSPITAL_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .env_remove("MIP_INVENTORY")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("mip runs")
}

fn kubectl_on(cluster: &TestCluster, args: &[&str]) -> Output {
    cluster.kubectl().args(args).output().expect("kubectl runs")
}

#[test]
fn a_federation_on_a_second_cluster_is_planned_applied_drifted_and_destroyed_there() {
    let main =
        TestCluster::start(TestClusterOptions { argocd_namespace: "argocd".into(), ..Default::default() });
    let hospital = TestCluster::start(TestClusterOptions::default());
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    // One kubeconfig per cluster, merged as kubectl merges KUBECONFIG: the second one's
    // context is `hospital`.
    let second =
        std::fs::read_to_string(hospital.kubeconfig_path()).expect("kubeconfig").replace(CONTEXT, "hospital");
    std::fs::write(d.join("hospital.kubeconfig"), second).expect("write");
    let kubeconfig =
        format!("{}:{}", main.kubeconfig_path().display(), d.join("hospital.kubeconfig").display());
    let inventory = format!(
        "apiVersion: mip.ebrains.eu/v1alpha1\nkind: Inventory\nargocd: {{namespace: argocd}}\nrevision: main\n\
         repositories:\n  infra: {{url: 'https://example.org/mip-infra.git'}}\n  deployments: {{url: 'https://example.org/mip-deployments.git'}}\n\
         upstreamRepos: ['https://github.com/madgik/exareme2']\n\
         clusters:\n  - name: hospital\n    server: {server}\n    context: hospital\n    bearerToken: {{env: HOSPITAL_TOKEN}}\n\
         federations:\n  - {{name: federation-H, kind: local, cluster: hospital, apps: [{{name: exareme2}}]}}\n",
        server = hospital.server_url()
    );
    std::fs::write(d.join("mip.yaml"), inventory).expect("inventory");

    // The plan names the remote objects with their cluster.
    let plan = mip_in(d, &kubeconfig, &["plan"]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stdout(&plan).contains("+ hospital:v1/Namespace/federation-h"), "{}", stdout(&plan));

    let apply = mip_in(d, &kubeconfig, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    // The federation's namespace is on the second cluster, not on the first; Argo CD's cluster
    // Secret is on the first.
    assert!(kubectl_on(&hospital, &["get", "namespace", "federation-h"]).status.success());
    assert!(!kubectl_on(&main, &["get", "namespace", "federation-h"]).status.success());
    assert!(kubectl_on(&main, &["get", "secret", "-n", "argocd", "mip-cluster-hospital"]).status.success());
    let again = mip_in(d, &kubeconfig, &["plan", "--detailed-exitcode"]);
    assert_eq!(code(&again), 0, "re-plan after apply:\n{}", stdout(&again));
    let state = mip_in(d, &kubeconfig, &["state", "list"]);
    assert!(stdout(&state).contains("hospital:v1/Namespace/federation-h"), "{}", stdout(&state));

    // Drift on the second cluster names it.
    assert!(
        kubectl_on(&hospital, &["label", "namespace", "federation-h", "app.kubernetes.io/managed-by-"])
            .status
            .success()
    );
    let drift = mip_in(d, &kubeconfig, &["drift", "--mip-only"]);
    assert_eq!(code(&drift), 2, "{}", stdout(&drift));
    assert!(stdout(&drift).contains("hospital:v1/Namespace/federation-h"), "{}", stdout(&drift));
    let fix = mip_in(d, &kubeconfig, &["apply", "--auto-approve", "--wait-timeout", "0"]);
    assert_eq!(code(&fix), 0, "{}", stderr(&fix));
    let clean = mip_in(d, &kubeconfig, &["drift", "--mip-only"]);
    assert_eq!(
        code(&clean),
        0,
        "after the fix: {}{}\n(the fix: {})",
        stdout(&clean),
        stderr(&clean),
        stderr(&fix)
    );

    // A context that reaches another server than the inventory names is refused.
    let wrong =
        std::fs::read_to_string(main.kubeconfig_path()).expect("kubeconfig").replace(CONTEXT, "hospital");
    std::fs::write(d.join("wrong.kubeconfig"), wrong).expect("write");
    let crossed = format!("{}:{}", main.kubeconfig_path().display(), d.join("wrong.kubeconfig").display());
    let refused = mip_in(d, &crossed, &["plan"]);
    assert_eq!(code(&refused), 6, "{}", stderr(&refused));
    assert!(stderr(&refused).contains("clusters[hospital].server"), "{}", stderr(&refused));

    // Destroy removes what mip made on both clusters.
    let destroy = releasing_finalizers(&main, || {
        mip_in(d, &kubeconfig, &["destroy", "--auto-approve", "--include-protected"])
    });
    assert_eq!(code(&destroy), 0, "{}", stderr(&destroy));
    let gone = |c: &TestCluster, args: &[&str]| {
        let o = kubectl_on(c, args);
        !o.status.success() || String::from_utf8_lossy(&o.stdout).contains("Terminating")
    };
    assert!(gone(&hospital, &["get", "namespace", "federation-h", "-o", "jsonpath={.status.phase}"]));
    assert!(gone(&main, &["get", "secret", "-n", "argocd", "mip-cluster-hospital"]));

    // The token reached only the cluster Secret, never an output or the state.
    for o in [&plan, &apply, &again, &state, &drift, &destroy] {
        assert!(!stdout(o).contains(TOKEN) && !stderr(o).contains(TOKEN));
    }
    let mut files = Vec::new();
    collect(&d.join("state"), &mut files);
    for f in files {
        assert!(
            !String::from_utf8_lossy(&std::fs::read(&f).expect("read")).contains(TOKEN),
            "{}",
            f.display()
        );
    }
}

/// Plays Argo CD's application controller for deleted roots on `cluster` (it runs no Argo CD):
/// an Application being deleted loses its resources finalizer.
fn releasing_finalizers<T>(cluster: &TestCluster, f: impl FnOnce() -> T) -> T {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let o = kubectl_on(cluster, &["get", "applications", "-n", "argocd", "-o", "json"]);
                let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
                for app in list["items"].as_array().cloned().unwrap_or_default() {
                    if app["metadata"]["deletionTimestamp"].is_string() {
                        let name = app["metadata"]["name"].as_str().unwrap_or_default();
                        let patch = r#"{"metadata": {"finalizers": null}}"#;
                        kubectl_on(
                            cluster,
                            &["patch", "application", name, "-n", "argocd", "--type", "merge", "-p", patch],
                        );
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        let out = f();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    })
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}
