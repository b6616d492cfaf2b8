//! A federation running the real Exareme2 chart becomes **Healthy** in Argo CD's own terms:
//! real Argo CD controllers, simulated nodes that run pods (kwok, the test cluster's workload
//! tier), and the chart as upstream has it at mip-infra's pin (`../shared/fixtures/upstream`),
//! served by the local Git server through the inventory's `mirrors:` as a site without internet
//! would serve it. `mip apply` (default `--wait-for healthy`) returns only once every
//! Application is Synced and Healthy; the test then counts them, names any that is not, and
//! checks the chart's workloads in the cluster. A broken values file reference then fails the
//! next apply, naming the Application.

use crate::argocd_platform::{KC_ENV, not_healthy, text};
use crate::takeover::copy_tree;
use crate::*;
use mip_test_support::inventory::EXAREME2;
use mip_test_support::{
    App, ArgoCd, ArgoCdOptions, Federation, Inventory, TestCluster, TestClusterOptions, WorkloadOptions,
};
use serde_json::Value;

fn inventory(repo: &str, mirror: &str, ns: &str, pin: &str, values: &str) -> String {
    Inventory::new(ns)
        .repositories(repo, repo)
        .mirror(EXAREME2, mirror)
        .yaml(&format!("apps:\n  exareme2: {{targetRevision: {pin}}}\n"))
        .federation(Federation::local("federation-A").app(App::new("exareme2").values(values)))
        .to_yaml()
}

#[test]
fn a_federation_on_the_real_exareme2_chart_from_a_mirror_is_healthy_on_simulated_nodes() {
    let cluster = TestCluster::start(TestClusterOptions {
        workloads: Some(WorkloadOptions::default()),
        ..Default::default()
    });
    let argocd = ArgoCd::start(&cluster, ArgoCdOptions::default());
    let ns = cluster.argocd_namespace().to_owned();
    let repo = argocd.repo_url();
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let tree = d.join("tree");
    let fed = "deployments/local/federations/federation-A";

    // The mirror: a repository of its own holding the chart as upstream has it at the pinned
    // revision, at the path the definition reads (`kubernetes/`); the inventory pins that
    // commit. (One repository at two revisions in one Application is refused by Argo CD, so
    // the mirror cannot be the GitOps repository itself; `mip validate` says so.)
    let fixture = root().join("../shared/fixtures/upstream/exareme2/kubernetes");
    assert!(fixture.join("Chart.yaml").is_file(), "the fixture chart is missing at {}", fixture.display());
    let upstream = d.join("upstream");
    std::fs::create_dir_all(upstream.join("kubernetes")).expect("mkdir");
    copy_tree(&fixture, &upstream.join("kubernetes"));
    let (mirror, pin) = argocd.serve_repo("exareme2", &upstream, "exareme2 at mip-infra's pin");
    std::fs::create_dir_all(tree.join(fed)).expect("mkdir");
    // federation-A's values as mip-infra has them: its namespace (the chart's default is
    // `default`, which the federation's project does not permit), managed storage (claims of
    // the chart's storage class, bound by the workload tier's provisioner).
    std::fs::write(
        tree.join(fed).join("exareme2-values.yaml"),
        "log_level: DEBUG\nmanaged_cluster: true\nnamespace: federation-a\nlocalnodes: 2\n",
    )
    .expect("values");
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &mirror, &ns, &pin, "exareme2-values.yaml"))
        .expect("inventory");
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["render", "tree", "-i", "mip.yaml"]).run();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["render", "tree", "--check", "-i", "mip.yaml"]).run();
    assert_eq!(code(&o), 0, "the tree is complete: {}{}", stdout(&o), stderr(&o));
    argocd.commit_tree(&tree, "the platform");

    // The plan names what Argo CD will generate: those Applications, and no other, must exist.
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["plan", "-i", "mip.yaml", "-o", "json"]).run();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan: Value = serde_json::from_str(&stdout(&o)).expect("plan json");
    let mut expected: Vec<String> = plan["expected"]
        .as_array()
        .expect("expected")
        .iter()
        .filter(|e| text(e, "/address").contains("/Application/"))
        .map(|e| text(e, "/address").rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    let roots: Vec<String> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| text(c, "/address").contains("/Application/"))
        .map(|c| text(c, "/address").rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    expected.extend(roots);
    expected.sort();
    assert!(expected.contains(&"federation-a-exareme2".to_owned()), "{expected:?}");

    let o = mip_on(&cluster, d)
        .envs(&KC_ENV)
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "420"])
        .run();
    assert_eq!(
        code(&o),
        0,
        "mip apply (--wait-for healthy): {}\n{}\n{}",
        stdout(&o),
        stderr(&o),
        argocd.log_tails()
    );

    // Every Application: exactly the plan's, each Synced and Healthy, named one by one if not.
    let apps = cluster.kubectl_json(&["get", "applications.argoproj.io", "-n", &ns]);
    let apps = apps["items"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<String> = apps.iter().map(|a| text(a, "/metadata/name")).collect();
    names.sort();
    assert_eq!(names, expected, "Argo CD generated exactly the Applications the plan named");
    let unhealthy = not_healthy(&apps);
    assert!(unhealthy.is_empty(), "not Synced and Healthy: {unhealthy:#?}");
    // The chart's workloads run: the controller, the global worker and both local workers
    // (Argo CD 3 keeps per-resource health out of the Application's status, so they are read
    // from the cluster), placed by the scheduler on the nodes their `nodeSelector`s ask for.
    let exareme2 = apps.iter().find(|a| text(a, "/metadata/name") == "federation-a-exareme2").expect("app");
    let kinds: Vec<String> = exareme2["status"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| matches!(r["kind"].as_str(), Some("Deployment" | "StatefulSet")))
        .map(|r| format!("{}/{}", text(r, "/kind"), text(r, "/name")))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:#?}");
    for kind in ["deployments", "statefulsets"] {
        let list = cluster.kubectl_json(&["get", kind, "-n", "federation-a"]);
        for w in list["items"].as_array().into_iter().flatten() {
            let want = w["spec"]["replicas"].as_u64().unwrap_or(1);
            let ready = w["status"]["readyReplicas"].as_u64().unwrap_or(0);
            assert_eq!(ready, want, "{kind}/{} ready", text(w, "/metadata/name"));
        }
    }
    let claims = cluster.kubectl_json(&["get", "persistentvolumeclaims", "-n", "federation-a"]);
    let unbound: Vec<String> = claims["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| text(c, "/status/phase") != "Bound")
        .map(|c| text(c, "/metadata/name"))
        .collect();
    assert!(unbound.is_empty(), "claims not bound: {unbound:?}");
    let pods = cluster.kubectl_json(&["get", "pods", "-n", "federation-a"]);
    let running: Vec<String> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| text(p, "/status/phase") == "Running")
        .map(|p| format!("{} on {}", text(p, "/metadata/name"), text(p, "/spec/nodeName")))
        .collect();
    assert!(running.iter().filter(|p| p.contains(" on mip-worker-")).count() >= 2, "{running:#?}");
    assert!(running.iter().any(|p| p.contains(" on mip-master")), "{running:#?}");

    // Negative: a values file the tree does not have. Argo CD cannot render the Application;
    // the same check names it, and the next apply fails naming it.
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &mirror, &ns, &pin, "no-such-values.yaml"))
        .expect("inventory");
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["render", "tree", "-i", "mip.yaml"]).run();
    assert_eq!(code(&o), 0, "render only warns of a missing file: {}", stderr(&o));
    argocd.commit_tree(&tree, "a broken values reference");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let broken = loop {
        let a =
            cluster.kubectl_json(&["get", "applications.argoproj.io", "-n", &ns, "federation-a-exareme2"]);
        let state = format!(
            "{} {} {}",
            text(&a, "/status/sync/status"),
            text(&a, "/status/health/status"),
            text(&a, "/status/conditions/0/message")
        );
        if state.contains("no-such-values.yaml") {
            break state;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Argo CD never reported the missing file: {state}\n{}",
            argocd.log_tails()
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    };
    assert!(!broken.starts_with("Synced Healthy"), "{broken}");
    let o = mip_on(&cluster, d)
        .envs(&KC_ENV)
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "30"])
        .run();
    assert_eq!(code(&o), 5, "{}\n{}", stdout(&o), stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("federation-a-exareme2"), "the failure names the Application: {all}");
}
