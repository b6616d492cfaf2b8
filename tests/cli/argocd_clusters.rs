//! A federation on a second cluster with the real Argo CD controllers: two dedicated API
//! servers (each with its own etcd and CA), Argo CD on the first. `mip apply` registers the
//! second cluster (ServiceAccount, role and token there; the cluster Secret here), Argo CD
//! connects to it (its `argocd_cluster_connection_status` metric) and deploys the federation's
//! app there from the local Git repository, within the namespace the registration allows; a
//! hybrid federation runs its app on the first cluster and on its remote node, the second.
//! Removing the federation through Git and the inventory, mip deletes the namespace only once
//! Argo CD has removed the app and its workload; removing the cluster then leaves nothing of
//! mip's on either cluster.

use crate::clusters::{TwoClusters, two_clusters};
use crate::*;
use mip_test_support::{ArgoCd, ArgoCdOptions, TestCluster, TestClusterOptions};
use serde_json::Value;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(300);

/// The inventory: the second cluster (registered through its context) when `server` is given,
/// and the federation on it when `federation` is also set; its one app reads a ConfigMap from
/// the local repository at `pin`.
fn inventory(repo: &str, ns: &str, pin: &str, server: Option<&str>, federation: bool) -> String {
    let mut inventory = Inventory::new(ns).repositories(repo, repo).upstreams(&[]).yaml(&format!(
        "apps:
  settings:
    scope: federation
    description: The federation's settings, from the local repository at a pinned commit
    remoteNodes: true
    applications:
      - wave: 1
        sources:
          - {{repoURL: {repo}, targetRevision: {pin}, path: apps/settings}}
"
    ));
    if let Some(server) = server {
        inventory = inventory.cluster(Cluster::new("hospital", server).context("hospital"));
        if federation {
            inventory = inventory
                .federation(Federation::local("federation-H").on("hospital").apps(&["settings"]))
                .federation(Federation::hybrid("federation-Z", &["hospital"]).apps(&["settings"]));
        }
    }
    inventory.to_yaml()
}

fn get(cluster: &TestCluster, args: &[&str]) -> Option<Value> {
    let o = cluster.kubectl().args(["get", "-o", "json"]).args(args).output().expect("kubectl");
    o.status.success().then(|| serde_json::from_slice(&o.stdout).expect("json"))
}

/// Polls `check` every 2 s until it holds or [`TIMEOUT`] passes (then panics with `what` and
/// Argo CD's log tails).
fn wait_until(argocd: &ArgoCd, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "after {TIMEOUT:?}: {what}\n{}", argocd.log_tails());
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn argo_cd_deploys_to_a_cluster_mip_registered_and_removal_is_clean_on_both_sides() {
    let TwoClusters { main, hospital, dir, kubeconfig: kc } = two_clusters(TestClusterOptions::default());
    let argocd = ArgoCd::start(&main, ArgoCdOptions::default());
    let ns = main.argocd_namespace().to_owned();
    let repo = argocd.repo_url();
    let d = dir.path();
    let server = hospital.server_url().to_owned();
    let write_inventory = |pin: &str, server: Option<&str>, federation: bool| {
        std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, pin, server, federation))
            .expect("inventory");
    };

    // The app's content first, at a commit the inventory pins; then the tree that uses it.
    let settings = d.join("tree/apps/settings");
    std::fs::create_dir_all(&settings).expect("mkdir");
    std::fs::write(
        settings.join("settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  site: hospital\n",
    )
    .expect("write");
    let pin = argocd.commit_tree(&d.join("tree"), "the federation's settings");
    write_inventory(&pin, Some(&server), true);
    argocd.render_and_commit(
        mip_in(d, &kc),
        d,
        "a federation on the hospital cluster, a hybrid one spanning both",
    );

    let apply = mip_in(d, &kc)
        .args(["apply", "--auto-approve", "--wait-timeout", "300", "--wait-for", "exists"])
        .run();
    assert_eq!(code(&apply), 0, "mip apply: {}\n{}\n{}", stdout(&apply), stderr(&apply), argocd.log_tails());

    // Argo CD reached the second cluster with the registered credentials…
    let connected = format!("server=\"{server}\"");
    wait_until(&argocd, "Argo CD never connected to the hospital cluster", || {
        argocd.controller_metrics().lines().any(|l| {
            l.starts_with("argocd_cluster_connection_status") && l.contains(&connected) && l.ends_with(" 1")
        })
    });
    // …and deployed the federation's app there.
    wait_until(&argocd, "the federation's ConfigMap never reached the hospital cluster", || {
        get(&hospital, &["configmap", "-n", "federation-h", "settings"])
            .is_some_and(|c| c["data"]["site"] == "hospital")
    });
    assert!(
        get(&main, &["configmap", "-n", "federation-h", "settings"]).is_none(),
        "not on the first cluster"
    );
    // The hybrid federation spans both clusters: its app on the first, and on its remote node.
    for (cluster, name) in [(&main, "main"), (&hospital, "hospital")] {
        wait_until(
            &argocd,
            &format!("the hybrid federation's ConfigMap never reached the {name} cluster"),
            || get(cluster, &["configmap", "-n", "federation-z", "settings"]).is_some(),
        );
    }
    let remote =
        get(&main, &["applications.argoproj.io", "-n", &ns, "federation-z-settings-hospital"]).expect("app");
    assert_eq!(remote["spec"]["destination"]["server"], server.as_str(), "{remote}");
    let app = get(&main, &["applications.argoproj.io", "-n", &ns, "federation-h-settings"]).expect("the app");
    assert_eq!(app["spec"]["destination"]["server"], server.as_str(), "{app}");
    wait_until(&argocd, "the federation's app never became Synced", || {
        get(&main, &["applications.argoproj.io", "-n", &ns, "federation-h-settings"])
            .is_some_and(|a| a["status"]["sync"]["status"] == "Synced")
    });
    let again = mip_in(d, &kc).args(["plan", "--detailed-exitcode"]).run();
    assert_eq!(code(&again), 0, "plan after apply: {}\n{}", stdout(&again), stderr(&again));

    // The federation goes from the inventory and from Git: Argo CD removes its app and the
    // app's workload on the hospital cluster before mip deletes the namespace there.
    write_inventory(&pin, Some(&server), false);
    argocd.render_and_commit(mip_in(d, &kc), d, "the federations removed");
    let removed = mip_in(d, &kc)
        .args([
            "apply",
            "--auto-approve",
            "--wait-timeout",
            "300",
            "--allow-delete",
            "hospital:v1/Namespace/federation-h",
            "--allow-delete",
            "hospital:v1/Namespace/federation-z",
            "--allow-delete",
            "v1/Namespace/federation-z",
            "--output",
            "json",
        ])
        .run();
    assert_eq!(code(&removed), 0, "{}\n{}\n{}", stdout(&removed), stderr(&removed), argocd.log_tails());
    assert!(
        get(&main, &["applications.argoproj.io", "-n", &ns, "federation-h-settings"]).is_none(),
        "the app is still there after the apply:\n{}\n{}",
        stdout(&removed),
        stderr(&removed)
    );
    let events: Vec<Value> = stdout(&removed).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let position = |f: &dyn Fn(&Value) -> bool| events.iter().position(f);
    let app = format!("argoproj.io/v1alpha1/Application/{ns}/federation-h-settings");
    let app_gone = position(&|e| {
        e["event"] == "readiness" && e["address"] == app.as_str() && e["readiness"]["state"] == "gone"
    });
    let ns_deleted =
        position(&|e| e["event"] == "start" && e["address"] == "hospital:v1/Namespace/federation-h");
    assert!(
        matches!((app_gone, ns_deleted), (Some(a), Some(n)) if a < n),
        "the namespace is deleted only after Argo CD removed the app: {app_gone:?} {ns_deleted:?}\n{}",
        stdout(&removed)
    );
    assert!(get(&main, &["applications.argoproj.io", "-n", &ns, "federation-z-settings-hospital"]).is_none());
    wait_until(&argocd, "the federations' namespaces are still on the hospital cluster", || {
        get(&hospital, &["namespace", "federation-h"]).is_none()
            && get(&hospital, &["namespace", "federation-z"]).is_none()
    });

    // The cluster goes: its registration there and its credentials here.
    write_inventory(&pin, None, false);
    argocd.render_and_commit(mip_in(d, &kc), d, "the hospital cluster removed");
    let unregistered = mip_in(d, &kc)
        .args([
            "apply",
            "--auto-approve",
            "--wait-timeout",
            "300",
            "--allow-delete",
            "hospital:v1/Secret/kube-system/mip-argocd-manager-token",
            "--allow-delete",
            &format!("v1/Secret/{ns}/mip-cluster-hospital"),
        ])
        .run();
    assert_eq!(code(&unregistered), 0, "{}\n{}", stdout(&unregistered), stderr(&unregistered));
    let managed = |c: &TestCluster, kind: &str| -> Vec<String> {
        get(c, &[kind, "-A", "-l", MANAGED_BY_SELECTOR])
            .map(|l| l["items"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
            .iter()
            .map(|i| format!("{kind}/{}", i["metadata"]["name"].as_str().unwrap_or_default()))
            .collect()
    };
    let left: Vec<String> =
        ["serviceaccounts", "secrets", "clusterroles", "rolebindings", "namespaces", "configmaps"]
            .iter()
            .flat_map(|k| managed(&hospital, k))
            .collect();
    assert!(left.is_empty(), "mip's objects left on the hospital cluster: {left:?}");
    assert!(get(&main, &["secret", "-n", &ns, "mip-cluster-hospital"]).is_none());
    let state = mip_in(d, &kc).args(["state", "list"]).run();
    assert!(!stdout(&state).contains("hospital:"), "{}", stdout(&state));
}
