//! Federations across clusters, on two dedicated real API servers (each with its own etcd and
//! CA): a federation that deploys to a second cluster is planned, applied, drifted and
//! destroyed there, through the second cluster's own kubeconfig context, while the cluster
//! Secret Argo CD uses lands on the management cluster.

use crate::*;
use mip_test_support::inventory::MIP_DEPLOYMENT;
use mip_test_support::{CONTEXT, Cluster, Federation, Inventory, Secret, TestCluster, TestClusterOptions};
use std::path::Path;

const TOKEN: &str = "CANARY-hospital-token-5e1f";

/// [`mip_in`] with the state in `state` and the hospital's token in `HOSPITAL_TOKEN`.
fn mip_two(dir: &Path, kubeconfig: &str) -> Mip {
    mip_in(dir, kubeconfig).state_dir("state").env("HOSPITAL_TOKEN", TOKEN)
}

/// Two dedicated API servers (each with its own etcd and CA): `main` with `options`, and
/// `hospital`, whose kubeconfig is copied into `dir` with its context renamed `hospital`;
/// `kubeconfig` merges both as kubectl merges `KUBECONFIG`.
pub(crate) struct TwoClusters {
    pub(crate) main: TestCluster,
    pub(crate) hospital: TestCluster,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) kubeconfig: String,
}

pub(crate) fn two_clusters(options: TestClusterOptions) -> TwoClusters {
    let main = TestCluster::start(options);
    let hospital = TestCluster::start(TestClusterOptions::default());
    let dir = tempfile::tempdir().expect("tmp");
    let renamed =
        std::fs::read_to_string(hospital.kubeconfig_path()).expect("kubeconfig").replace(CONTEXT, "hospital");
    let second = dir.path().join("hospital.kubeconfig");
    std::fs::write(&second, renamed).expect("write");
    let kubeconfig = format!("{}:{}", main.kubeconfig_path().display(), second.display());
    TwoClusters { main, hospital, dir, kubeconfig }
}

#[test]
fn a_federation_on_a_second_cluster_is_planned_applied_drifted_and_destroyed_there() {
    let TwoClusters { main, hospital, dir, kubeconfig } =
        two_clusters(TestClusterOptions { argocd_namespace: "argocd".into(), ..Default::default() });
    let d = dir.path();
    let inventory = Inventory::new("argocd")
        .cluster(
            Cluster::new("hospital", hospital.server_url())
                .context("hospital")
                .bearer_token(Secret::env("HOSPITAL_TOKEN")),
        )
        .federation(Federation::local("federation-H").on("hospital").apps(&["exareme2"]))
        .to_yaml();
    std::fs::write(d.join("mip.yaml"), inventory).expect("inventory");

    // The plan names the remote objects with their cluster.
    let plan = mip_two(d, &kubeconfig).args(["plan"]).run();
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stdout(&plan).contains("+ hospital:v1/Namespace/federation-h"), "{}", stdout(&plan));

    let apply = mip_two(d, &kubeconfig).args(["apply", "--auto-approve", "--wait-timeout", "0"]).run();
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    // The federation's namespace is on the second cluster, not on the first; Argo CD's cluster
    // Secret is on the first.
    assert!(hospital.kubectl_run(&["get", "namespace", "federation-h"]).status.success());
    assert!(!main.kubectl_run(&["get", "namespace", "federation-h"]).status.success());
    assert!(main.kubectl_run(&["get", "secret", "-n", "argocd", "mip-cluster-hospital"]).status.success());
    let again = mip_two(d, &kubeconfig).args(["plan", "--detailed-exitcode"]).run();
    assert_eq!(code(&again), 0, "re-plan after apply:\n{}", stdout(&again));
    let state = mip_two(d, &kubeconfig).args(["state", "list"]).run();
    assert!(stdout(&state).contains("hospital:v1/Namespace/federation-h"), "{}", stdout(&state));

    // Drift on the second cluster names it.
    assert!(
        hospital
            .kubectl_run(&["label", "namespace", "federation-h", &format!("{MANAGED_BY_LABEL}-")])
            .status
            .success()
    );
    let drift = mip_two(d, &kubeconfig).args(["drift", "--mip-only"]).run();
    assert_eq!(code(&drift), 2, "{}", stdout(&drift));
    assert!(stdout(&drift).contains("hospital:v1/Namespace/federation-h"), "{}", stdout(&drift));
    let fix = mip_two(d, &kubeconfig).args(["apply", "--auto-approve", "--wait-timeout", "0"]).run();
    assert_eq!(code(&fix), 0, "{}", stderr(&fix));
    let clean = mip_two(d, &kubeconfig).args(["drift", "--mip-only"]).run();
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
    let refused = mip_two(d, &crossed).args(["plan"]).run();
    assert_eq!(code(&refused), 6, "{}", stderr(&refused));
    assert!(stderr(&refused).contains("clusters[hospital].server"), "{}", stderr(&refused));

    // Destroy removes what mip made on both clusters.
    let destroy = releasing_finalizers(&main, || {
        mip_two(d, &kubeconfig).args(["destroy", "--auto-approve", "--include-protected"]).run()
    });
    assert_eq!(code(&destroy), 0, "{}", stderr(&destroy));
    let gone = |c: &TestCluster, args: &[&str]| {
        let o = c.kubectl_run(args);
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
                let o = cluster.kubectl_run(&["get", "applications", "-n", "argocd", "-o", "json"]);
                let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
                for app in list["items"].as_array().cloned().unwrap_or_default() {
                    if app["metadata"]["deletionTimestamp"].is_string() {
                        let name = app["metadata"]["name"].as_str().unwrap_or_default();
                        let patch = r#"{"metadata": {"finalizers": null}}"#;
                        cluster.kubectl_run(&[
                            "patch",
                            "application",
                            name,
                            "-n",
                            "argocd",
                            "--type",
                            "merge",
                            "-p",
                            patch,
                        ]);
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

/// `mip apply` registers a cluster the way `argocd cluster add` does, declaratively: Argo CD's
/// ServiceAccount, role and token on the second cluster, the cluster Secret carrying that
/// token and CA on the first. The credentials work and reach only the federation's namespace;
/// a deleted ServiceAccount is drift and is restored with a new token carried over; removing
/// the federation and then the cluster leaves nothing of mip's on either cluster; the token is
/// in no output, plan file or state.
#[test]
fn a_cluster_is_registered_restored_and_removed_with_least_privilege() {
    let TwoClusters { main, hospital, dir, kubeconfig } =
        two_clusters(TestClusterOptions { argocd_namespace: "argocd".into(), ..Default::default() });
    let d = dir.path();
    let head = Inventory::new("argocd").yaml("commonApps: [{name: security}]\n");
    let cluster = head.clone().cluster(Cluster::new("hospital", hospital.server_url()).context("hospital"));
    let federation =
        cluster.clone().federation(Federation::local("federation-H").on("hospital").apps(&["exareme2"]));
    let write_inventory = |inventory: &Inventory| inventory.write(&d.join("mip.yaml"));
    write_inventory(&federation);

    // With `security` on, the static projects permit the federation's namespace on the second
    // cluster: the inventory validates.
    let valid = mip_cmd().args(["validate", "-i", "mip.yaml"]).dir(d).run();
    assert_eq!(code(&valid), 0, "{}", stderr(&valid));

    let plan = mip_two(d, &kubeconfig).args(["plan", "--out", "registered.plan"]).run();
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let text = stdout(&plan);
    for line in [
        "+ hospital:v1/ServiceAccount/kube-system/mip-argocd-manager",
        "+ hospital:rbac.authorization.k8s.io/v1/ClusterRole/mip-argocd-manager",
        "+ hospital:rbac.authorization.k8s.io/v1/RoleBinding/federation-h/mip-argocd-manager",
        "+ hospital:v1/Secret/kube-system/mip-argocd-manager-token",
        "+ v1/Secret/argocd/mip-cluster-hospital",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(
        !text.contains("hospital:rbac.authorization.k8s.io/v1/ClusterRoleBinding"),
        "least privilege by default:\n{text}"
    );
    // The plan says what changes on each cluster, the management cluster first.
    let by_cluster = text.split("By cluster:\n").nth(1).unwrap_or_default();
    assert!(
        by_cluster.starts_with("  in-cluster: ")
            && by_cluster.contains("\n  hospital: 5 to create, 0 to update, 0 to replace, 0 to delete\n"),
        "{text}"
    );

    let apply = mip_two(d, &kubeconfig)
        .args(["apply", "registered.plan", "--auto-approve", "--wait-timeout", "0"])
        .run();
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    let token = registered_token(&hospital);
    let config = cluster_config(&main);
    assert_eq!(config["bearerToken"], token.as_str(), "the cluster Secret carries the registered token");
    let ca = std::fs::read(hospital.data_dir().join("ca.crt")).expect("ca");
    let ca_data = config["tlsClientConfig"]["caData"].as_str().expect("caData");
    assert_eq!(
        mip_plan::base64_decode(ca_data).expect("base64").as_bytes(),
        ca.as_slice(),
        "and the remote CA"
    );
    let secret = main.kubectl_run(&["get", "secret", "-n", "argocd", "mip-cluster-hospital", "-o", "json"]);
    let secret: serde_json::Value = serde_json::from_slice(&secret.stdout).expect("json");
    let field =
        |k: &str| mip_plan::base64_decode(secret["data"][k].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(field("namespaces"), "federation-h");
    assert_eq!(field("clusterResources"), "false");

    // What Argo CD can do with it, connecting as Argo CD would (server, CA data, token).
    let can_i = |args: &[&str]| {
        let kc = d.join("as-argocd.kubeconfig");
        std::fs::write(
            &kc,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters: [{{name: c, cluster: {{server: '{}', certificate-authority-data: {ca_data}}}}}]\n\
                 users: [{{name: u, user: {{token: {token}}}}}]\ncontexts: [{{name: a, context: {{cluster: c, user: u}}}}]\n",
                hospital.server_url()
            ),
        )
        .expect("write");
        let o = hospital
            .kubectl()
            .arg("--kubeconfig")
            .arg(&kc)
            .args(["auth", "can-i"])
            .args(args)
            .output()
            .expect("kubectl");
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    assert_eq!(can_i(&["create", "deployments.apps", "-n", "federation-h"]), "yes");
    assert_eq!(can_i(&["create", "deployments.apps", "-n", "default"]), "no");
    assert_eq!(can_i(&["create", "namespaces"]), "no");

    let again = mip_two(d, &kubeconfig).args(["plan", "--detailed-exitcode"]).run();
    assert_eq!(code(&again), 0, "re-plan after apply:\n{}{}", stdout(&again), stderr(&again));

    // A cluster Secret whose credentials were emptied by hand is what `mip doctor` names; the
    // value differs from its source, so apply (taking the field back) carries the token again.
    let patch = r#"{"stringData": {"config": "{\"tlsClientConfig\": {\"insecure\": false}}"}}"#;
    let emptied = main.kubectl_run(&[
        "patch",
        "secret",
        "-n",
        "argocd",
        "mip-cluster-hospital",
        "--type",
        "merge",
        "-p",
        patch,
    ]);
    assert!(emptied.status.success(), "{}", String::from_utf8_lossy(&emptied.stderr));
    let doctor = mip_two(d, &kubeconfig).args(["doctor"]).run();
    assert_eq!(code(&doctor), 2, "{}{}", stdout(&doctor), stderr(&doctor));
    assert!(
        stdout(&doctor).contains("error[cluster-without-credentials] v1/Secret/argocd/mip-cluster-hospital"),
        "{}",
        stdout(&doctor)
    );
    let restored = mip_two(d, &kubeconfig)
        .args(["apply", "--auto-approve", "--wait-timeout", "0", "--force-conflicts"])
        .run();
    assert_eq!(code(&restored), 0, "{}{}", stdout(&restored), stderr(&restored));
    assert_eq!(cluster_config(&main)["bearerToken"], token.as_str(), "carried again");

    // A deleted ServiceAccount (its token goes with it) is drift on the second cluster; apply
    // restores both and carries the new token to the cluster Secret.
    assert!(
        hospital
            .kubectl_run(&["delete", "serviceaccount", "-n", "kube-system", "mip-argocd-manager"])
            .status
            .success()
    );
    let drift = mip_two(d, &kubeconfig).args(["drift", "--mip-only"]).run();
    assert_eq!(code(&drift), 2, "{}{}", stdout(&drift), stderr(&drift));
    assert!(
        stdout(&drift).contains("hospital:v1/ServiceAccount/kube-system/mip-argocd-manager"),
        "{}",
        stdout(&drift)
    );
    let fix = mip_two(d, &kubeconfig).args(["apply", "--auto-approve", "--wait-timeout", "0", "-vvv"]).run();
    assert_eq!(code(&fix), 0, "{}{}", stdout(&fix), stderr(&fix));
    let new_token = registered_token(&hospital);
    assert_ne!(new_token, token, "a new token is issued");
    assert_eq!(cluster_config(&main)["bearerToken"], new_token.as_str(), "and carried over");
    // (The API server caches a token's authentication for a few seconds.)
    let dead = (0..60).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(500));
        // An unknown token is not authenticated at all: kubectl answers nothing on stdout.
        can_i(&["create", "deployments.apps", "-n", "federation-h"]) != "yes"
    });
    assert!(dead, "the old token still works");
    let clean = mip_two(d, &kubeconfig).args(["plan", "--detailed-exitcode"]).run();
    assert_eq!(code(&clean), 0, "after the fix:\n{}{}", stdout(&clean), stderr(&clean));

    // Removing the federation deletes its namespace and binding there; the registration stays.
    write_inventory(&cluster);
    let without_federation = mip_two(d, &kubeconfig)
        .args([
            "apply",
            "--auto-approve",
            "--wait-timeout",
            "0",
            "--allow-delete",
            "hospital:v1/Namespace/federation-h",
        ])
        .run();
    assert_eq!(
        code(&without_federation),
        0,
        "{}{}",
        stdout(&without_federation),
        stderr(&without_federation)
    );
    let absent = |c: &TestCluster, args: &[&str]| {
        let o = c.kubectl_run(args);
        !o.status.success() || String::from_utf8_lossy(&o.stdout).contains("Terminating")
    };
    assert!(absent(&hospital, &["get", "namespace", "federation-h", "-o", "jsonpath={.status.phase}"]));
    assert!(absent(&hospital, &["get", "rolebinding", "-n", "federation-h", "mip-argocd-manager"]));
    assert!(
        hospital
            .kubectl_run(&["get", "serviceaccount", "-n", "kube-system", "mip-argocd-manager"])
            .status
            .success()
    );

    // Removing the cluster from the inventory: mip still reaches it through the context the
    // state remembers, and deletes the registration there and the cluster Secret here.
    write_inventory(&head);
    let without_cluster = mip_two(d, &kubeconfig)
        .args([
            "apply",
            "--auto-approve",
            "--wait-timeout",
            "0",
            "--allow-delete",
            "hospital:v1/Secret/kube-system/mip-argocd-manager-token",
            "--allow-delete",
            "v1/Secret/argocd/mip-cluster-hospital",
        ])
        .run();
    assert_eq!(code(&without_cluster), 0, "{}{}", stdout(&without_cluster), stderr(&without_cluster));
    for args in [
        &["get", "serviceaccount", "-n", "kube-system", "mip-argocd-manager"][..],
        &["get", "secret", "-n", "kube-system", "mip-argocd-manager-token"],
        &["get", "clusterrole", "mip-argocd-manager"],
    ] {
        assert!(absent(&hospital, args), "{args:?} still on the second cluster");
    }
    assert!(absent(&main, &["get", "secret", "-n", "argocd", "mip-cluster-hospital"]));
    let state = mip_two(d, &kubeconfig).args(["state", "list"]).run();
    assert!(!stdout(&state).contains("hospital:"), "{}", stdout(&state));

    // Canary: neither token is in any output (the restoring apply logs at -vvv), the plan file
    // or the state.
    let outputs = [
        &valid,
        &plan,
        &apply,
        &again,
        &doctor,
        &restored,
        &drift,
        &fix,
        &clean,
        &without_federation,
        &without_cluster,
        &state,
    ];
    let mut files = vec![d.join("registered.plan")];
    collect(&d.join("state"), &mut files);
    for secret in [&token, &new_token] {
        for o in outputs {
            assert!(!stdout(o).contains(secret.as_str()) && !stderr(o).contains(secret.as_str()));
        }
        for f in &files {
            let bytes = std::fs::read(f).expect("read");
            assert!(!String::from_utf8_lossy(&bytes).contains(secret.as_str()), "{}", f.display());
        }
    }
}

/// The token the second cluster's token controller issued for Argo CD's ServiceAccount.
fn registered_token(cluster: &TestCluster) -> String {
    let o = cluster.kubectl_run(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        "mip-argocd-manager-token",
        "-o",
        "jsonpath={.data.token}",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    mip_plan::base64_decode(String::from_utf8_lossy(&o.stdout).trim()).expect("token")
}

/// The `config` JSON of Argo CD's cluster Secret for `hospital` on the management cluster.
fn cluster_config(cluster: &TestCluster) -> serde_json::Value {
    let o = cluster.kubectl_run(&[
        "get",
        "secret",
        "-n",
        "argocd",
        "mip-cluster-hospital",
        "-o",
        "jsonpath={.data.config}",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&mip_plan::base64_decode(String::from_utf8_lossy(&o.stdout).trim()).expect("b64"))
        .expect("config JSON")
}

/// A hybrid federation whose remote node is the second cluster: mip carries Submariner's broker
/// token and CA and the IPsec PSK from the main cluster (where the broker chart and the operator
/// made them; seeded here as they would) into the join Secret on the remote node, never showing
/// them, and a re-plan is empty.
#[test]
fn a_hybrid_federation_carries_the_submariner_join_to_its_remote_node() {
    const BROKER_TOKEN: &str = "CANARY-broker-token-71c2";
    const PSK: &str = "CANARY-ipsec-psk-0d9a";
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nCANARY-broker-ca-44e1\n-----END CERTIFICATE-----\n";
    let TwoClusters { main, hospital, dir, kubeconfig } =
        two_clusters(TestClusterOptions { argocd_namespace: "argocd".into(), ..Default::default() });
    let d = dir.path();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let ca_b64 = b64(CA_PEM);
    let seed = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: submariner-k8s-broker}}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {{name: submariner-operator}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: submariner-broker-submariner-k8s-broker-client-token, namespace: submariner-k8s-broker}}\n\
         data: {{token: {}, ca.crt: {ca_b64}}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: submariner-ipsec-psk, namespace: submariner-operator}}\ndata: {{psk: {}}}\n",
        b64(BROKER_TOKEN),
        b64(PSK)
    );
    std::fs::write(d.join("seed.yaml"), seed).expect("write");
    let seeded = main.kubectl_run(&["apply", "-f", &d.join("seed.yaml").display().to_string()]);
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let inventory = Inventory::new("argocd")
        .yaml("commonApps: [{name: submariner}]\n")
        .yaml("apps: {submariner: {joinSecrets: {psk: submariner-operator/submariner-ipsec-psk}}}\n")
        .cluster(Cluster::new("hospital", hospital.server_url()).context("hospital"))
        .federation(Federation::hybrid("federation-Z", &["hospital"]).apps(&["exareme2"]))
        .to_yaml();
    std::fs::write(d.join("mip.yaml"), inventory).expect("inventory");

    let plan = mip_two(d, &kubeconfig).args(["plan", "--out", "hybrid.plan"]).run();
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(text.contains("+ hospital:v1/Namespace/submariner-operator"), "{text}");
    assert!(text.contains("+ hospital:v1/Secret/submariner-operator/submariner-broker-join"), "{text}");
    assert!(
        // The broker Secret by the catalogue's default (mip-infra's name), the PSK where the
        // inventory's `joinSecrets` override says.
        text.contains("(sensitive, from key `token` of `v1/Secret/submariner-k8s-broker/submariner-broker-submariner-k8s-broker-client-token`)")
            && text.contains("(sensitive, from key `psk` of `v1/Secret/submariner-operator/submariner-ipsec-psk`)"),
        "{text}"
    );
    let apply = mip_two(d, &kubeconfig)
        .args(["apply", "hybrid.plan", "--auto-approve", "--wait-timeout", "0", "-vvv"])
        .run();
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    let join = hospital.kubectl_run(&[
        "get",
        "secret",
        "-n",
        "submariner-operator",
        "submariner-broker-join",
        "-o",
        "json",
    ]);
    assert!(join.status.success(), "{}", String::from_utf8_lossy(&join.stderr));
    let join: serde_json::Value = serde_json::from_slice(&join.stdout).expect("json");
    let field =
        |k: &str| mip_plan::base64_decode(join["data"][k].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(field("broker-token"), BROKER_TOKEN);
    assert_eq!(field("broker-ca"), ca_b64, "base64, as the chart's `broker.ca` wants it");
    assert_eq!(field("ipsec-psk"), PSK);
    assert_eq!(field("cluster-id"), "hospital");
    let again = mip_two(d, &kubeconfig).args(["plan", "--detailed-exitcode"]).run();
    assert_eq!(code(&again), 0, "re-plan after apply:\n{}{}", stdout(&again), stderr(&again));

    let mut files = vec![d.join("hybrid.plan")];
    collect(&d.join("state"), &mut files);
    for secret in [BROKER_TOKEN, PSK, "CANARY-broker-ca-44e1", ca_b64.as_str()] {
        for o in [&plan, &apply, &again] {
            assert!(!stdout(o).contains(secret) && !stderr(o).contains(secret), "{secret} shown");
        }
        for f in &files {
            let bytes = std::fs::read(f).expect("read");
            assert!(!String::from_utf8_lossy(&bytes).contains(secret), "{secret} in {}", f.display());
        }
    }
}

/// The second cluster's API server down: plan and apply fail naming it, nothing is written on
/// either cluster and the state is unchanged; once it is back, nothing is left to do.
#[test]
fn a_remote_cluster_that_is_down_fails_the_run_by_name_and_loses_nothing() {
    let TwoClusters { main: _main, mut hospital, dir, kubeconfig } =
        two_clusters(TestClusterOptions { argocd_namespace: "argocd".into(), ..Default::default() });
    let d = dir.path();
    let inventory = |apps: &[&str]| {
        Inventory::new("argocd")
            .upstream(MIP_DEPLOYMENT)
            .keycloak(Secret::env("HOSPITAL_TOKEN"), Secret::env("HOSPITAL_TOKEN"))
            .cluster(Cluster::new("hospital", hospital.server_url()).context("hospital"))
            .federation(Federation::local("federation-H").on("hospital").apps(apps))
    };
    inventory(&["exareme2"]).write(&d.join("mip.yaml"));
    let apply = mip_two(d, &kubeconfig).args(["apply", "--auto-approve", "--wait-timeout", "0"]).run();
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    let state_before = stdout(&mip_two(d, &kubeconfig).args(["state", "list"]).run());

    // A change that writes on both clusters (the federation's Secrets there), while the second
    // cluster is down.
    inventory(&["exareme2", "mip-stack"]).write(&d.join("mip.yaml"));
    hospital.kill_apiserver();
    let port = hospital.server_url().rsplit(':').next().expect("port").to_owned();
    for args in [&["plan"][..], &["apply", "--auto-approve", "--wait-timeout", "0"]] {
        let o = mip_two(d, &kubeconfig).args(args).run();
        assert_eq!(code(&o), 1, "{args:?}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(&port), "{args:?} names the server that is down: {}", stderr(&o));
        assert!(!stderr(&o).contains(TOKEN));
    }
    assert_eq!(
        stdout(&mip_two(d, &kubeconfig).args(["state", "list"]).run()),
        state_before,
        "the state is unchanged"
    );

    hospital.start_apiserver().expect("the API server comes back");
    let apply = mip_two(d, &kubeconfig).args(["apply", "--auto-approve", "--wait-timeout", "0"]).run();
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    assert!(hospital.kubectl_run(&["get", "secret", "-n", "federation-h", "mip-secret"]).status.success());
    let again = mip_two(d, &kubeconfig).args(["plan", "--detailed-exitcode"]).run();
    assert_eq!(code(&again), 0, "{}{}", stdout(&again), stderr(&again));
}
