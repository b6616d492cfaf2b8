//! The whole GitOps loop with the real Argo CD controllers (the harness's Argo CD tier): `mip
//! render` of a small inventory is committed to the local Git repository, `mip apply`
//! bootstraps, Argo CD generates the projects and Applications from Git and mip's gates release
//! on exactly those (no test code creates an Argo-owned object); then plan/drift/doctor and a
//! federation added and removed through Git.
//!
//! No network: the federation's leaf Application (exareme2) reads its chart from GitHub, which
//! is unreachable here, so Argo CD reports a ComparisonError for it; every Application whose
//! sources are in the local repository must reach Synced.

use crate::*;
use mip_test_support::{ArgoCd, ArgoCdOptions, Federation, Inventory, TestCluster, TestClusterOptions};
use serde_json::Value;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(300);

fn inventory(repo: &str, ns: &str) -> String {
    Inventory::new(ns)
        .repositories(repo, repo)
        .federation(Federation::local("federation-A").apps(&["exareme2"]))
        .to_yaml()
}

/// True when every source of the Application is the local repository.
fn local_sources(app: &Value, repo: &str) -> bool {
    let spec = &app["spec"];
    let mut urls: Vec<&str> = spec["sources"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x["repoURL"].as_str()).collect())
        .unwrap_or_default();
    urls.extend(spec["source"]["repoURL"].as_str());
    !urls.is_empty() && urls.iter().all(|url| *url == repo)
}

/// Waits until every Application with local sources is Synced; returns (name, sync, health,
/// first condition) of all Applications.
fn wait_local_synced(
    cluster: &TestCluster,
    repo: &str,
    argocd: &ArgoCd,
    want: &[&str],
) -> Vec<(String, String, String, String)> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut all = Vec::new();
        let mut pending = Vec::new();
        for app in &cluster.items("applications.argoproj.io", cluster.argocd_namespace()) {
            let text = |p: &str| app.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
            let name = text("/metadata/name");
            let (sync, health) = (text("/status/sync/status"), text("/status/health/status"));
            let condition = text("/status/conditions/0/message");
            if local_sources(app, repo) && sync != "Synced" {
                pending.push(format!("{name}: {sync}/{health} {condition}"));
            }
            all.push((name, sync, health, condition));
        }
        let missing: Vec<&&str> = want.iter().filter(|w| !all.iter().any(|(n, ..)| n == **w)).collect();
        if pending.is_empty() && missing.is_empty() {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "after {TIMEOUT:?}: not synced {pending:?}, missing {missing:?}\n{}",
            argocd.log_tails()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn mip_bootstraps_and_argo_cd_generates_the_rest() {
    let tier = Instant::now();
    let cluster = TestCluster::start(TestClusterOptions::default());
    let argocd = ArgoCd::start(&cluster, ArgoCdOptions::default());
    let ns = cluster.argocd_namespace().to_owned();
    let repo = argocd.repo_url();
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns)).expect("inventory");
    argocd.render_and_commit(mip_on(&cluster, d).inventory("mip.yaml"), d, "render federation-A");

    // 1. Bootstrap: the gates release on what Argo CD generates from the rendered tree.
    let t = Instant::now();
    let o = mip_on(&cluster, d)
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "300", "--wait-for", "exists"])
        .run();
    assert_eq!(code(&o), 0, "mip apply: {}\n{}\n{}", stdout(&o), stderr(&o), argocd.log_tails());
    let apply_time = t.elapsed();
    const APPS: &str = "applications.argoproj.io";
    const PROJECTS: &str = "appprojects.argoproj.io";
    let want = [
        "main-argo-projects",
        "main-infra-clusterset",
        "argo-project-federation-a-local-app",
        "deployments-local-a",
        "federation-a-exareme2",
    ];
    let all = wait_local_synced(&cluster, &repo, &argocd, &want);
    let synced_time = t.elapsed();
    assert!(cluster.exists(PROJECTS, &ns, "mip-argo-project-federation-a"));
    // The leaf app's chart is on GitHub: unreachable here, Argo CD says so.
    let leaf = all.iter().find(|(n, ..)| n == "federation-a-exareme2").expect("leaf app");
    eprintln!("argocd e2e: applications {all:#?}");
    assert_ne!(leaf.1, "Synced", "the upstream chart cannot be fetched without network: {leaf:?}");

    // The gates kept the order across the Argo CD boundary: the infra root was created only
    // after Argo CD had generated every AppProject it waits for.
    let created = |kind: &str, name: &str| {
        let o = cluster
            .kubectl()
            .args(["get", kind, "-n", &ns, name, "-o", "jsonpath={.metadata.creationTimestamp}"])
            .output()
            .expect("kubectl");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let infra_root = created(APPS, "main-infra-clusterset");
    for p in cluster.items(PROJECTS, &ns) {
        let name = p["metadata"]["name"].as_str().expect("name");
        if name.starts_with("mip-argo-project") {
            assert!(created(PROJECTS, name) <= infra_root, "infra root created before project `{name}`");
        }
    }
    // Waiting for Healthy names, in Argo CD's words, exactly what cannot get there (the leaf
    // whose chart is unreachable); the roots and everything local are ready.
    let o = mip_on(&cluster, d)
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "20s"])
        .run();
    assert_eq!(code(&o), 5, "apply --wait-for healthy: {}\n{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    let pending: Vec<&str> = err.lines().filter(|l| l.trim_start().starts_with("pending: ")).collect();
    assert!(pending.iter().any(|l| l.contains("/federation-a-exareme2: ")), "{err}");
    assert!(
        pending.iter().all(|l| !l.contains("/main-argo-projects:") && !l.contains("/main-infra-clusterset:")),
        "a root is not ready: {err}"
    );

    // What mip models of the generated objects matches what the real Argo CD made from the
    // rendered tree: no spec-differs finding on a fresh bootstrap.
    let o = mip_on(&cluster, d).args(["drift", "-i", "mip.yaml", "--output", "json"]).run();
    let dj: Value = serde_json::from_slice(&o.stdout).expect("drift json");
    let differs: Vec<&Value> =
        dj["argo"].as_array().expect("argo").iter().filter(|a| a["kind"] == "spec-differs").collect();
    assert!(differs.is_empty(), "the model of a generated object differs from Argo CD's: {differs:#?}");

    // 5. Right after: no changes, while Argo CD keeps rewriting Application status.
    let o = mip_on(&cluster, d).args(["plan", "-i", "mip.yaml", "--detailed-exitcode"]).run();
    assert_eq!(code(&o), 0, "plan after apply: {}\n{}", stdout(&o), stderr(&o));

    // 3. Loosen the locked-down default project behind mip's back: drift.
    let loosen = serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "default", "namespace": ns}, "spec": {"sourceRepos": ["*"]}});
    cluster.kubectl_apply(
        &loosen.to_string(),
        &["--server-side", "--force-conflicts", "--field-manager=someone-else"],
    );
    let o = mip_on(&cluster, d).args(["drift", "-i", "mip.yaml"]).run();
    assert_eq!(code(&o), 2, "drift after loosening default: {}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("AppProject/") && stdout(&o).contains("default"), "{}", stdout(&o));
    let o = mip_on(&cluster, d)
        .args([
            "apply",
            "-i",
            "mip.yaml",
            "--auto-approve",
            "--force-conflicts",
            "--wait-timeout",
            "300",
            "--wait-for",
            "exists",
        ])
        .run();
    assert_eq!(code(&o), 0, "re-apply restores default: {}\n{}", stdout(&o), stderr(&o));

    // 4. A repository its project does not permit: Argo CD marks the Application
    //    InvalidSpecError, and `mip doctor` names that condition in Argo CD's own words.
    let bad = serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "not-permitted", "namespace": ns},
        "spec": {"project": "mip-argo-project-federation-a",
                 "source": {"repoURL": "https://example.invalid/not-permitted.git", "path": "x", "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "federation-a"}}});
    cluster.kubectl_apply(&bad.to_string(), &["--server-side", "--field-manager=someone-else"]);
    let deadline = Instant::now() + TIMEOUT;
    let condition = loop {
        let app = cluster
            .items(APPS, &ns)
            .into_iter()
            .find(|a| a["metadata"]["name"] == "not-permitted")
            .expect("app");
        let c = app["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "InvalidSpecError").cloned());
        if let Some(c) = c {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "Argo CD never marked the app InvalidSpecError: {}\n{}",
            app["status"],
            argocd.log_tails()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    let o = mip_on(&cluster, d).args(["doctor", "-i", "mip.yaml"]).run();
    assert_eq!(code(&o), 2, "doctor: {}\n{}", stdout(&o), stderr(&o));
    let argo_message = condition["message"].as_str().expect("message");
    assert!(
        stdout(&o).contains(&format!("Argo CD reports `InvalidSpecError`: {argo_message}")),
        "doctor did not name Argo CD's condition `{argo_message}`:\n{}",
        stdout(&o)
    );
    assert!(argo_message.contains("not permitted in project"), "{argo_message}");
    assert!(
        cluster
            .kubectl()
            .args(["delete", "application", "-n", &ns, "not-permitted", "--wait=false"])
            .status()
            .expect("kubectl")
            .success()
    );

    // 2. A new federation through Git: its AppProject and Applications appear and sync.
    let o = mip_on(&cluster, d)
        .args(["federation", "add", "federation-B", "--kind", "local", "--app", "exareme2", "-i", "mip.yaml"])
        .run();
    assert_eq!(code(&o), 0, "federation add: {}", stderr(&o));
    argocd.render_and_commit(mip_on(&cluster, d).inventory("mip.yaml"), d, "render federation-B");
    let o = mip_on(&cluster, d)
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "300", "--wait-for", "exists"])
        .run();
    assert_eq!(code(&o), 0, "apply federation-B: {}\n{}\n{}", stdout(&o), stderr(&o), argocd.log_tails());
    wait_local_synced(
        &cluster,
        &repo,
        &argocd,
        &["argo-project-federation-b-local-app", "deployments-local-b", "federation-b-exareme2"],
    );
    assert!(cluster.exists(PROJECTS, &ns, "mip-argo-project-federation-b"));

    // ... and removed: Argo CD deletes them once the tree no longer has them.
    let o =
        mip_on(&cluster, d).args(["federation", "remove", "federation-B", "--yes", "-i", "mip.yaml"]).run();
    assert_eq!(code(&o), 0, "federation remove: {}", stderr(&o));
    argocd.render_and_commit(mip_on(&cluster, d).inventory("mip.yaml"), d, "remove federation-B");
    // Deleting a federation's namespace unattended must be named (review safety).
    let o = mip_on(&cluster, d)
        .args([
            "apply",
            "-i",
            "mip.yaml",
            "--auto-approve",
            "--wait-timeout",
            "300",
            "--wait-for",
            "exists",
            "--allow-delete",
            "v1/Namespace/federation-b",
        ])
        .run();
    assert_eq!(code(&o), 0, "apply without federation-B: {}\n{}", stdout(&o), stderr(&o));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let project = cluster.exists(PROJECTS, &ns, "mip-argo-project-federation-b");
        let app = cluster.exists(APPS, &ns, "federation-b-exareme2");
        let infra = cluster.exists(APPS, &ns, "deployments-local-b");
        if !project && !app && !infra {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "federation-B still there: project {project}, app {app}, infra app {infra}\n{}",
            argocd.log_tails()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "argocd e2e: cluster {:.1}s, Argo CD {:.1}s, bootstrap apply {:.1}s, all local apps Synced after {:.1}s, whole tier {:.1}s",
        cluster.startup_duration().as_secs_f64(),
        argocd.startup_duration().as_secs_f64(),
        apply_time.as_secs_f64(),
        synced_time.as_secs_f64(),
        tier.elapsed().as_secs_f64()
    );
}
