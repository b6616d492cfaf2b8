//! The whole platform **Healthy** on real Argo CD, as a site without internet runs it: every
//! common app (the four built-in ones and one the inventory defines), two local federations and a
//! hybrid one, the real leaf charts (Exareme2, the MIP stack, the data catalogue at mip-infra's
//! pins, Submariner's packaged charts) from `../shared/fixtures/upstream`, served by local mirrors
//! (Git repositories, and a static Helm repository for Submariner) that the inventory's
//! `mirrors:` maps the upstream URLs to, on simulated nodes that run pods (the workload tier).
//!
//! `mip apply` (default `--wait-for healthy`) returns 0 only once every Application is Synced
//! and Healthy; the test then asserts the exact set of Applications (the plan's, and their
//! number), each Synced and Healthy, named one by one if not. No Application is excluded. Then a
//! canary upgrade of one federation's app, made in the inventory only, is the one Application
//! the plan shows Argo CD moving, and Argo CD moves it while the other federation stays. Last, a
//! broken values file reference in one federation fails the next apply, naming that Application
//! and no other.

use crate::*;
use mip_test_support::platform::{self, DATACATALOG, EXAREME2, MIP_DEPLOYMENT, Mirrors};
use mip_test_support::{ArgoCd, ArgoCdOptions, TestCluster, TestClusterOptions, WorkloadOptions};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(420);
const APPS: &str = "applications.argoproj.io";
/// The Applications Argo CD generates from this tree (the plan lists the same; see below).
const APPLICATIONS: usize = 35;

/// The test Keycloak client's id and secret (from the env): canaries, long and unique.
const KC_ID: &str = "CANARY-kc-id-2b8e61f0c9d47a35e1b06c8f9d2a7e43";
const KC_SECRET: &str = "CANARY-kc-secret-9f1e3c7a0b5d8e2f64a1c9b7d03e5f82";

/// The test Keycloak client in the environment of `mip`.
pub(crate) const KC_ENV: [(&str, &str); 2] = [("MIP_TEST_KC_ID", KC_ID), ("MIP_TEST_KC_SECRET", KC_SECRET)];

/// The platform (kept as YAML text: not an ordinary inventory, it sets nearly every field the
/// typed builder leaves out); `notebooks` (an app the inventory defines, read from the local repository at
/// a pinned commit) runs in federation-A at `pin_a` and federation-B at the definition's `rev`;
/// federation-B's Exareme2 reads `b_values`.
fn inventory(
    repo: &str,
    ns: &str,
    m: &Mirrors,
    rev: Option<&str>,
    pin_a: Option<&str>,
    b_values: &str,
) -> String {
    let notebooks_def = rev.map_or_else(String::new, |rev| {
        format!(
            "  notebooks:
    scope: federation
    description: Notebook settings, from a directory of the repository at a pinned commit
    applications:
      - wave: 3
        sources:
          - {{repoURL: {repo}, targetRevision: {rev}, path: apps/notebooks}}
        syncOptions: [CreateNamespace=true]
"
        )
    });
    let notebooks = |pin: Option<&str>| match (rev, pin) {
        (None, _) => String::new(),
        (Some(_), None) => "\n      - name: notebooks".to_owned(),
        (Some(_), Some(p)) => format!("\n      - {{name: notebooks, targetRevision: {p}}}"),
    };
    let (mirrors, pins) = (m.inventory_lines(), m.pins());
    format!(
        "apiVersion: mip.ebrains.eu/v1alpha1
kind: Inventory
argocd:
  namespace: {ns}
revision: main
repositories:
  infra:
    url: {repo}
  deployments:
    url: {repo}
upstreamRepos: ['{EXAREME2}', '{MIP_DEPLOYMENT}', '{DATACATALOG}']
mirrors:
{mirrors}credentials:
  keycloak:
    clientId: {{env: MIP_TEST_KC_ID}}
    clientSecret: {{env: MIP_TEST_KC_SECRET}}
prerequisites:
  - file: rbac/nginx-public-rbac.yaml
  - file: rbac/submariner-rbac.yaml
apps:
{pins}  monitoring:
    scope: common
    description: A common app of the inventory's own, its manifests rendered by mip
    namespace: observability
    applications:
      - name: monitoring
        project: mip-argo-project-common
        source: {{repo: infra, path: common/monitoring/manifests}}
        syncOptions: [CreateNamespace=true]
    files:
      manifests/kustomization.yaml:
        - {{apiVersion: kustomize.config.k8s.io/v1beta1, kind: Kustomization, resources: [settings.yaml]}}
      manifests/settings.yaml:
        - {{apiVersion: v1, kind: ConfigMap, metadata: {{name: monitoring-settings}}, data: {{scrape: 30s}}}}
{notebooks_def}commonApps:
  - name: datacatalog
  - name: nginx-ingress
  - name: security
  - name: submariner
  - name: monitoring
federations:
  - name: federation-A
    kind: local
    apps:
      - {{name: exareme2, values: [exareme2-values.yaml]}}
      - {{name: mip-stack, values: [mip-stack-values.yaml]}}
      - name: exareme2-overlay{a}
  - name: federation-B
    kind: local
    apps:
      - {{name: exareme2, values: [{b_values}]}}{b}
  - name: federation-Z
    kind: hybrid
    apps:
      - {{name: exareme2, values: [exareme2-values.yaml]}}
",
        a = notebooks(pin_a),
        b = notebooks(None),
    )
}

pub(crate) fn text(v: &Value, p: &str) -> String {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn write(dir: &Path, rel: &str, text: &str) {
    platform::write(dir, rel, text).expect("write");
}

fn notebooks_manifest(version: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notebooks\ndata:\n  version: '{version}'\n")
}

fn render(cluster: &TestCluster, d: &Path, art: &mut Artifacts) {
    let o = mip_on(cluster, d).envs(&KC_ENV).args(["render", "tree", "-i", "mip.yaml"]).run();
    art.keep("render tree", &o);
    assert_eq!(code(&o), 0, "mip render: {}", stderr(&o));
}

fn configmap_version(cluster: &TestCluster, ns: &str) -> String {
    let o = cluster
        .kubectl()
        .args(["get", "configmap", "-n", ns, "notebooks", "-o", "json"])
        .output()
        .expect("kubectl");
    if !o.status.success() {
        return String::new();
    }
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    text(&v, "/data/version")
}

/// Every Application in the Argo CD namespace that is not Synced and Healthy, with why.
pub(crate) fn not_healthy(apps: &[Value]) -> Vec<String> {
    apps.iter()
        .filter(|a| {
            text(a, "/status/sync/status") != "Synced" || text(a, "/status/health/status") != "Healthy"
        })
        .map(|a| {
            format!(
                "{}: {} {} {}",
                text(a, "/metadata/name"),
                text(a, "/status/sync/status"),
                text(a, "/status/health/status"),
                text(a, "/status/conditions/0/message")
            )
        })
        .collect()
}

#[test]
fn the_whole_platform_is_healthy_from_mirrors_and_a_canary_upgrade_moves_one_federation() {
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
    // Every run's stdout and stderr, for the canary at the end.
    let mut art = Artifacts::default();
    let mut mirrors = Mirrors::serve(&argocd, d).expect("mirrors");
    let b_values = "exareme2-values.yaml";
    write(
        d,
        "rbac/nginx-public-rbac.yaml",
        &std::fs::read_to_string(root().join("examples/mip-infra/rbac/nginx-public-rbac.yaml"))
            .expect("rbac"),
    );
    write(
        d,
        "rbac/submariner-rbac.yaml",
        &platform::submariner_cluster_rbac(&argocd.bin_dir().join("helm")).expect("rbac"),
    );
    // The values files of mip-infra's own federations and data catalogue, as the upstream tree
    // has them (federation-B is a second local federation: federation-A's, in its namespace).
    platform::write_values(&tree, &["federation-b"]).expect("values");

    // The notebooks' first version, at a commit the inventory then pins.
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, &mirrors, None, None, b_values))
        .expect("inventory");
    render(&cluster, d, &mut art);
    mirrors.adapt_operator(&tree).expect("the operator kustomization");
    write(&tree, "apps/notebooks/settings.yaml", &notebooks_manifest("1"));
    let v1 = argocd.commit_tree(&tree, "notebooks v1");
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, &mirrors, Some(&v1), None, b_values))
        .expect("inventory");
    render(&cluster, d, &mut art);
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["render", "tree", "--check", "-i", "mip.yaml"]).run();
    art.keep("mip render tree --check", &o);
    assert_eq!(code(&o), 0, "the tree is complete: {}\n{}", stdout(&o), stderr(&o));
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["validate", "-i", "mip.yaml", "--tree", "tree"]).run();
    art.keep("mip validate --tree tree", &o);
    assert_eq!(code(&o), 0, "the inventory and its tree validate: {}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "no mirror is unused, nothing is missing: {}", stderr(&o));
    argocd.commit_tree(&tree, "the platform");

    // The plan names what Argo CD will generate: those Applications, and no other, must exist.
    let o = mip_on(&cluster, d)
        .envs(&KC_ENV)
        .args(["plan", "-i", "mip.yaml", "-o", "json", "--out", "plan.mip"])
        .run();
    art.keep("mip plan -o json --out plan.mip", &o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan: Value = serde_json::from_str(&stdout(&o)).expect("plan json");
    let applications = |list: &str| -> Vec<String> {
        plan[list]
            .as_array()
            .expect("list")
            .iter()
            .filter(|e| text(e, "/address").contains("/Application/"))
            .map(|e| text(e, "/address").rsplit('/').next().unwrap_or_default().to_owned())
            .collect()
    };
    let mut expected = applications("expected");
    expected.extend(applications("changes"));
    expected.sort();
    for app in [
        "federation-a-exareme2",
        "federation-a-mip-stack",
        "federation-a-exareme2-overlay",
        "federation-b-exareme2",
        "federation-z-exareme2",
        "datacatalog",
        "nginx-public-ingress",
        "submariner-broker",
        "submariner-operator",
        "netpol-federation-z-hybrid",
        "netpol-mip-common-datacatalog",
        "monitoring",
    ] {
        assert!(expected.iter().any(|e| e == app), "the plan expects `{app}`: {expected:#?}");
    }
    assert_eq!(expected.len(), APPLICATIONS, "{expected:#?}");

    let started = Instant::now();
    let o = mip_on(&cluster, d)
        .envs(&KC_ENV)
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "600"])
        .run();
    art.keep("mip apply --auto-approve --wait-timeout 600", &o);
    assert_eq!(
        code(&o),
        0,
        "mip apply (--wait-for healthy): {}\n{}\n{}",
        stdout(&o),
        stderr(&o),
        argocd.log_tails()
    );
    eprintln!(
        "argocd platform: {APPLICATIONS} Applications Healthy {:?} after apply started",
        started.elapsed()
    );

    // The canaries: every value of every Secret mip made (generated, and the Keycloak client's
    // from the env), as the state lists them, and the client's id and secret as given.
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["state", "list", "-o", "json", "-i", "mip.yaml"]).run();
    art.keep("mip state list -o json", &o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let listed: Value = serde_json::from_slice(&o.stdout).expect("state list json");
    let mut canaries = vec![
        Canary::new("the Keycloak client id (env)", KC_ID),
        Canary::new("the Keycloak client secret (env)", KC_SECRET),
    ];
    for m in listed["managed"].as_array().expect("managed") {
        let addr = text(m, "/address");
        if let ["v1", "Secret", ns, name] = addr.split('/').collect::<Vec<_>>().as_slice() {
            canaries.extend(secret_canaries(cluster.kubectl(), ns, name, "the value"));
        }
    }
    // federation-A's keycloak-credentials (2) and mip-secret (10), datacatalog-secrets (4).
    assert!(canaries.len() >= 2 + 12 + 4, "{} canaries", canaries.len());

    // Every Application: exactly the plan's, each Synced and Healthy, named one by one if not.
    let apps = cluster.items(APPS, &ns);
    let mut names: Vec<String> = apps.iter().map(|a| text(a, "/metadata/name")).collect();
    names.sort();
    assert_eq!(names, expected, "Argo CD generated exactly the Applications the plan named");
    let unhealthy = not_healthy(&apps);
    assert!(unhealthy.is_empty(), "not Synced and Healthy: {unhealthy:#?}");
    // The leaf charts' workloads run in their namespaces (Argo CD 3 keeps per-resource health
    // out of the status, so they are read from the cluster), on the nodes they select.
    for namespace in [
        "federation-a",
        "federation-b",
        "federation-z",
        "mip-common-datacatalog",
        "ingress-nginx",
        "submariner-operator",
    ] {
        for kind in ["deployments", "statefulsets"] {
            for w in cluster.items(kind, namespace) {
                let want = w["spec"]["replicas"].as_u64().unwrap_or(1);
                let ready = w["status"]["readyReplicas"].as_u64().unwrap_or(0);
                assert_eq!(ready, want, "{namespace}/{kind}/{} ready", text(&w, "/metadata/name"));
            }
        }
    }
    assert!(!cluster.items("deployments", "federation-a").is_empty(), "the MIP stack runs");
    assert!(!cluster.items("deployments", "mip-common-datacatalog").is_empty(), "the data catalogue runs");
    let operator = cluster.items("deployments", "submariner-operator");
    assert!(operator.iter().any(|w| text(w, "/metadata/name") == "submariner-operator"), "{operator:#?}");
    // The chart's cluster RBAC came from the prerequisite, not from Argo CD.
    let role = cluster.kubectl_json(&["get", "clusterrole", "submariner-operator"]);
    assert!(
        !text(&role, "/metadata/labels/app.kubernetes.io~1instance").contains("submariner"),
        "Argo CD does not own it: {role}"
    );
    let policies = cluster.items("networkpolicies", "federation-a");
    assert!(
        policies.iter().any(|p| text(p, "/metadata/name") == "federation-namespace-isolation"),
        "{policies:?}"
    );
    assert_eq!(configmap_version(&cluster, "federation-a"), "1");
    assert_eq!(configmap_version(&cluster, "federation-b"), "1");
    // Nothing to do, and nothing Argo CD would change: the models match what Argo CD generated.
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["plan", "-i", "mip.yaml", "--detailed-exitcode"]).run();
    art.keep("mip plan --detailed-exitcode (after apply)", &o);
    assert_eq!(code(&o), 0, "plan after apply: {}\n{}", stdout(&o), stderr(&o));

    // The canary: a new version in Git, pinned for federation-A only, in the inventory.
    write(&tree, "apps/notebooks/settings.yaml", &notebooks_manifest("2"));
    let v2 = argocd.commit_tree(&tree, "notebooks v2");
    std::fs::write(d.join("mip.yaml"), inventory(&repo, &ns, &mirrors, Some(&v1), Some(&v2), b_values))
        .expect("inventory");
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["plan", "-i", "mip.yaml", "--detailed-exitcode"]).run();
    art.keep("mip plan --detailed-exitcode (the canary upgrade)", &o);
    assert_eq!(code(&o), 2, "the plan shows what Argo CD will move: {}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("~ argoproj.io/v1alpha1/Application/") && out.contains("/federation-a-notebooks"),
        "{out}"
    );
    let line = |sign: char, rev: &str| {
        out.lines().any(|l| {
            l.trim_start().starts_with(sign) && l.contains(&format!("\"targetRevision\": \"{rev}\""))
        })
    };
    assert!(line('-', &v1) && line('+', &v2), "{out}");
    assert!(
        !out.contains(&format!("~ argoproj.io/v1alpha1/Application/{ns}/federation-b-notebooks")),
        "{out}"
    );
    assert!(out.contains("Argo CD will create 0, change 1 and delete 0"), "{out}");
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["render", "tree", "--check", "-i", "mip.yaml"]).run();
    art.keep("mip render tree --check", &o);
    assert_eq!(code(&o), 1, "render --check fails until the tree is re-rendered");
    assert!(
        stdout(&o).contains("deployments/local/federations/federation-A/kustomization.yaml"),
        "{}",
        stdout(&o)
    );
    render(&cluster, d, &mut art);
    argocd.commit_tree(&tree, "federation-A on notebooks v2");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let apps = cluster.items(APPS, &ns);
        let rev = |name: &str| {
            apps.iter()
                .find(|a| text(a, "/metadata/name") == name)
                .map(|a| (text(a, "/spec/sources/0/targetRevision"), text(a, "/status/sync/status")))
                .unwrap_or_default()
        };
        let (a, b) = (rev("federation-a-notebooks"), rev("federation-b-notebooks"));
        if a == (v2.clone(), "Synced".to_owned()) && configmap_version(&cluster, "federation-a") == "2" {
            assert_eq!(b.0, v1, "federation-B stays on the first version");
            break;
        }
        assert!(Instant::now() < deadline, "federation-A never moved: {a:?} {b:?}\n{}", argocd.log_tails());
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(configmap_version(&cluster, "federation-b"), "1");
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["plan", "-i", "mip.yaml", "--detailed-exitcode"]).run();
    art.keep("mip plan --detailed-exitcode (after the upgrade)", &o);
    assert_eq!(code(&o), 0, "plan after the upgrade: {}\n{}", stdout(&o), stderr(&o));

    // Negative: federation-B's Exareme2 reads a values file the tree does not have. Argo CD
    // cannot render that Application; the next apply fails naming it, and only it.
    std::fs::write(
        d.join("mip.yaml"),
        inventory(&repo, &ns, &mirrors, Some(&v1), Some(&v2), "no-such-values.yaml"),
    )
    .expect("inventory");
    let o = mip_on(&cluster, d).envs(&KC_ENV).args(["render", "tree", "-i", "mip.yaml"]).run();
    art.keep("mip render tree (a broken values reference)", &o);
    assert_eq!(code(&o), 0, "render only warns of a missing file: {}", stderr(&o));
    argocd.commit_tree(&tree, "a broken values reference in federation-B");
    let deadline = Instant::now() + TIMEOUT;
    while !not_healthy(&cluster.items(APPS, &ns)).iter().any(|a| a.contains("no-such-values.yaml")) {
        assert!(Instant::now() < deadline, "Argo CD never reported the missing file\n{}", argocd.log_tails());
        std::thread::sleep(Duration::from_secs(2));
    }
    let o = mip_on(&cluster, d)
        .envs(&KC_ENV)
        .args(["apply", "-i", "mip.yaml", "--auto-approve", "--wait-timeout", "60"])
        .run();
    art.keep("mip apply --auto-approve --wait-timeout 60 (a broken values reference)", &o);
    assert_eq!(code(&o), 5, "{}\n{}", stdout(&o), stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("federation-b-exareme2"), "the failure names the Application: {all}");
    let apps = cluster.items(APPS, &ns);
    let unhealthy = not_healthy(&apps);
    assert!(
        unhealthy.len() == 1
            && unhealthy[0].starts_with("federation-b-exareme2:")
            && unhealthy[0].contains("no-such-values.yaml"),
        "only federation-B's Exareme2 is broken, for its values file: {unhealthy:#?}"
    );

    // No secret value, raw or base64, in any run's output, the plan file, the rendered tree or
    // the state store.
    art.file("plan file", &d.join("plan.mip"));
    art.dir("rendered tree", &tree);
    art.dir("state store", &d.join("state"));
    art.assert_no_secret(&canaries);
}
