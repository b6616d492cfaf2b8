//! The Argo CD tier on a real test cluster: the real controllers sync an Application from the
//! local `file://` repository into the in-cluster destination, an ApplicationSet's Git
//! generator reads the same repository, and a new commit reaches the cluster.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use mip_test_support::argocd::{application_status, argo_resource};
use mip_test_support::{ArgoCd, ArgoCdOptions, TestCluster, TestClusterOptions};

const TIMEOUT: Duration = Duration::from_secs(180);

fn write(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn configmap(name: &str, namespace: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\ndata: {{value: '{value}'}}\n"
    )
}

/// Waits until every named Application is Synced (and Healthy: ConfigMaps have no health,
/// so their Applications are Healthy); on timeout, panics with every status and the logs.
async fn wait_synced(apps: &Api<DynamicObject>, names: &[&str], argocd: &ArgoCd) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut pending = Vec::new();
        for name in names {
            let status = match apps.get_opt(name).await.expect("get application") {
                Some(app) => {
                    let (sync, health) = application_status(&app);
                    if sync == "Synced" && health == "Healthy" {
                        continue;
                    }
                    format!("{sync}/{health} {}", app.data["status"]["conditions"])
                }
                None => "missing".to_owned(),
            };
            pending.push(format!("{name}: {status}"));
        }
        if pending.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not synced after {TIMEOUT:?}: {pending:?}\n{}",
            argocd.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_cd_syncs_from_the_local_repository() {
    let cluster = TestCluster::start(TestClusterOptions::default());
    let argocd = ArgoCd::start(&cluster, ArgoCdOptions::default());
    let started = Instant::now();
    let namespace = cluster.fresh_namespace("argocd-tier").await;
    let client = cluster.client().await;
    let ns = argocd.namespace().to_owned();

    // The tree: one plain directory and two directories for an ApplicationSet's Git generator.
    let tree = tempfile::tempdir().expect("tmp");
    write(&tree.path().join("plain/cm.yaml"), &configmap("plain", &namespace, "1"));
    for app in ["one", "two"] {
        write(
            &tree.path().join(format!("generated/{app}/cm.yaml")),
            &configmap(&format!("generated-{app}"), &namespace, app),
        );
    }
    argocd.commit_tree(tree.path(), "first tree");

    // The plain app reads the repository through file://, the ApplicationSet through HTTPS.
    let file_url = argocd.file_repo_url();
    let url = argocd.repo_url();
    let destination = serde_json::json!({"server": "https://kubernetes.default.svc", "namespace": namespace});
    let sync_policy = serde_json::json!({"automated": {"prune": true, "selfHeal": true}});
    let application = serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "plain", "namespace": ns},
        "spec": {"project": "default", "destination": destination, "syncPolicy": sync_policy,
                 "source": {"repoURL": file_url, "path": "plain", "targetRevision": "main"}},
    });
    let appset = serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
        "metadata": {"name": "generated", "namespace": ns},
        "spec": {
            "goTemplate": true,
            "generators": [{"git": {"repoURL": url, "revision": "main",
                                    "directories": [{"path": "generated/*"}]}}],
            "template": {
                "metadata": {"name": "gen-{{.path.basename}}"},
                "spec": {"project": "default", "destination": destination, "syncPolicy": sync_policy,
                         "source": {"repoURL": url, "path": "{{.path.path}}", "targetRevision": "main"}},
            },
        },
    });
    let apps: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &argo_resource("Application"));
    let appsets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &argo_resource("ApplicationSet"));
    let apply = PatchParams::apply("argocd-tier-test");
    apps.patch("plain", &apply, &Patch::Apply(&application)).await.expect("apply application");
    appsets.patch("generated", &apply, &Patch::Apply(&appset)).await.expect("apply appset");

    wait_synced(&apps, &["plain", "gen-one", "gen-two"], &argocd).await;
    let first_sync = started.elapsed();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let plain = configmaps.get("plain").await.expect("the synced ConfigMap exists");
    // mip-infra's tracking: the label named by argocd-cm's application.instanceLabelKey.
    assert_eq!(
        plain
            .metadata
            .labels
            .unwrap_or_default()
            .get("argocd.argoproj.io/instanceTracking")
            .map(String::as_str),
        Some("plain")
    );
    assert!(configmaps.get("generated-two").await.is_ok());

    // A new commit: the changed value arrives, a removed generator directory prunes its app.
    write(&tree.path().join("plain/cm.yaml"), &configmap("plain", &namespace, "2"));
    std::fs::remove_dir_all(tree.path().join("generated/two")).expect("rm");
    let sha = argocd.commit_tree(tree.path(), "second tree");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let value =
            configmaps.get("plain").await.expect("get").data.unwrap_or_default().get("value").cloned();
        let gone = apps.get_opt("gen-two").await.expect("get").is_none();
        if value.as_deref() == Some("2") && gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "commit {sha} not applied: value {value:?}, gen-two gone {gone}\n{}",
            argocd.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let app = apps.get("plain").await.expect("get");
    assert_eq!(app.data["status"]["sync"]["revision"].as_str(), Some(sha.as_str()));
    eprintln!(
        "argocd tier: Argo CD startup {:.1}s, first sync of 3 apps {:.1}s, new commit applied after {:.1}s",
        argocd.startup_duration().as_secs_f64(),
        first_sync.as_secs_f64(),
        (started.elapsed() - first_sync).as_secs_f64()
    );
}

#[test]
fn argo_cd_dies_with_its_owner() {
    let cluster = TestCluster::start(TestClusterOptions::default());
    // Argo CD watches a `sleep` instead of this process: when it is killed, the watchdog must
    // kill every Argo CD process and remove the data dir.
    let mut owner = std::process::Command::new("sleep").arg("600").spawn().expect("sleep");
    let argocd =
        ArgoCd::start(&cluster, ArgoCdOptions { watch_pid: Some(owner.id()), ..ArgoCdOptions::default() });
    let pids = argocd.component_pids();
    assert_eq!(pids.len(), 5, "{pids:?}");
    let dir = argocd.data_dir().to_owned();
    owner.kill().expect("kill the owner");
    let _ = owner.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|(_, pid)| mip_test_support::pid_alive(*pid)) || dir.exists() {
        assert!(
            Instant::now() < deadline,
            "still alive after its owner died: {pids:?}, dir {}",
            dir.exists()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(argocd);
}
